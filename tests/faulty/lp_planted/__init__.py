"""Planted faults for the shrinker's tests, installed the way a third party's adapter is (an entry
point in the group ``lossparity.adapters``).

Its "framework" is the oracle itself (``absolute_error``), so each binding conforms except on the
cases its fault strikes: ``nan_at_zero`` returns NaN whenever any element of the input is exactly
0 (its smallest trigger: a one-element input of 0); ``raises_past_3_rows`` raises ``ValueError``
when the batch has more than 3 rows (its smallest trigger: a batch of 4); ``crash_at_one``
returns NaN as ``nan_at_zero`` does but segfaults on a one-element input, which no run draws
with a 0 in it and shrinking meets (a crash while shrinking: a finding of its own).
"""

import ctypes

import numpy as np

from lossparity.adapters.base import FrameworkAdapter, py_literal
from lossparity.core.model import Binding
from lossparity.reference.regression import absolute_error


def nan_at_zero(input, target, reduction="mean"):
    out = absolute_error(input, target, reduction=reduction, dtype=input.dtype)
    return out * np.nan if np.any(input == 0) else out


def raises_past_3_rows(input, target, reduction="mean"):
    if np.ndim(input) >= 1 and np.shape(input)[0] > 3:
        raise ValueError(f"batches of more than 3 rows are not supported, got {np.shape(input)[0]}")
    return absolute_error(input, target, reduction=reduction, dtype=input.dtype)


def crash_at_one(input, target, reduction="mean"):
    if np.size(input) == 1:
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    return nan_at_zero(input, target, reduction)


class PlantedAdapter(FrameworkAdapter):
    framework = "planted"
    differentiates = False  # NumPy has no automatic differentiation
    module = "numpy"
    imports = "import numpy as np\nimport lp_planted\n"

    def to_framework(self, array, dtype):
        return array.astype(dtype)

    def literal(self, name, array, dtype):
        return f"{name} = np.array({py_literal(array)}, dtype=np.{dtype})"

    def to_numpy(self, result):
        result = np.asarray(result)
        return result.astype(np.float64), str(result.dtype)


ADAPTER = PlantedAdapter()
BINDINGS = [
    Binding(
        f"lp_planted.{name}",
        "absolute_error",
        "planted",
        f"lp_planted.{name}(input, target{{kw}})",
        params={"reduction": "reduction"},
        dtypes=("float64",),
    )
    for name in ("nan_at_zero", "raises_past_3_rows", "crash_at_one")
]
