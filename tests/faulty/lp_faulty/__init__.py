"""A deliberately broken framework adapter, installed in the tests the way a third party's is
(an entry point in the group ``lossparity.adapters``).

Its "framework" is the oracle itself, so every binding conforms, except that on the cases
:func:`hit` chooses (the three-dimensional inputs) each binding does one thing a real framework
sometimes does: segfault, abort, hang, allocate without bound, exit, return the wrong shape or
the wrong type, or segfault only when it is not the first call in its process (a crash that
depends on what ran before it, and does not reproduce alone).
"""

import ctypes
import os
import time

import numpy as np

from lossparity.adapters.base import FrameworkAdapter, py_literal
from lossparity.core.model import Binding
from lossparity.reference.information import entropy

FAULTS = ("segfault", "abort", "hang", "oom", "exit", "wrong_shape", "wrong_type", "segfault_after_first")

_calls = 0  # calls of any binding in this process


def hit(x) -> bool:
    """The cases a fault strikes: those with a three-dimensional input."""
    return np.ndim(x) == 3


def _call(fault: str, x):
    global _calls
    _calls += 1
    x = np.asarray(x)
    if hit(x):
        if fault == "segfault":
            ctypes.string_at(0)  # reads address 0: SIGSEGV
        elif fault == "abort":
            os.abort()
        elif fault == "hang":
            time.sleep(3600)
        elif fault == "oom":
            hog = []
            while True:
                hog.append(np.ones(2**26))  # 512 MiB at a time, written, so resident
        elif fault == "exit":
            os._exit(3)
        elif fault == "wrong_shape":
            return np.zeros(7)
        elif fault == "wrong_type":
            return {"not": "an array"}
        elif fault == "segfault_after_first" and _calls > 1:
            ctypes.string_at(0)
    return entropy(x, dtype=x.dtype)


def _fault(name):
    def call(x):
        return _call(name, x)

    call.__name__ = name
    return call


globals().update({name: _fault(name) for name in FAULTS})


class FaultyAdapter(FrameworkAdapter):
    framework = "faulty"
    differentiates = False  # NumPy has no automatic differentiation
    module = "numpy"
    imports = "import numpy as np\nimport lp_faulty\n"

    def to_framework(self, array, dtype):
        return array.astype(dtype)

    def literal(self, name, array, dtype):
        return f"{name} = np.array({py_literal(array)}, dtype=np.{dtype})"

    def to_numpy(self, result):
        if not isinstance(result, (np.ndarray, np.floating, float)):
            raise TypeError(f"the loss returned a {type(result).__name__}, not an array")
        result = np.asarray(result)
        return result.astype(np.float64), str(result.dtype)


ADAPTER = FaultyAdapter()
BINDINGS = [
    Binding(f"lp_faulty.{name}", "entropy", "faulty", f"lp_faulty.{name}(input)", dtypes=("float64", "float32"))
    for name in FAULTS
]
