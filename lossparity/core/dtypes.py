"""The one per-dtype tolerance table, with partial per-spec overrides.

``actual`` passes when |actual - expected| <= atol + rtol * |expected| elementwise (the
oracle is always the ``expected`` side). Figures are PyTorch's defaults for
``torch.testing.assert_close`` (``torch/testing/_comparison.py``). They are never scaled by
array size; an override needs a comment saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # NumPy is imported where it is used: the pytest plugin reads DTYPES in every session
    import numpy as np


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(rtol=1e-7, atol=1e-7),
    "float32": Tolerance(rtol=1.3e-6, atol=1e-5),
    "float16": Tolerance(rtol=1e-3, atol=1e-5),
    "bfloat16": Tolerance(rtol=1.6e-2, atol=1e-5),
}

#: The dtypes a run can use, widest first.
DTYPES = tuple(TOLERANCES)


@cache
def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype of a dtype name; bfloat16 is ``ml_dtypes``' (what JAX and TensorFlow use)."""
    import numpy as np

    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


# (spec, dtype) -> Tolerance. None yet: no spec has needed one.
OVERRIDES: dict[tuple[str, str], Tolerance] = {}


def tolerance(spec: str, dtype: str) -> Tolerance:
    return OVERRIDES.get((spec, dtype), TOLERANCES[dtype])


def ulp(x: np.ndarray, dtype: str) -> np.ndarray:
    """The spacing of ``dtype`` at |x| (float64 result); at 0 the smallest subnormal."""
    import numpy as np

    x = np.abs(np.asarray(x, np.float64))
    dt = numpy_dtype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.spacing(x.astype(dt)).astype(np.float64)
