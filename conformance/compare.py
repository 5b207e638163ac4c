"""Comparing an actual value with the expected one: closeness, ULPs, and a torch-style summary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossparity.core.dtypes import Tolerance, numpy_dtype, ulp


@dataclass
class Comparison:
    ok: bool
    mismatched: int
    total: int
    max_abs: float
    max_rel: float
    max_ulp: float
    index: list[int] | None  # multi-index of the greatest absolute difference
    summary: str

    def as_dict(self) -> dict:
        from lossparity.core.records import encode_value

        return {k: encode_value(v) for k, v in self.__dict__.items()}


def compare(actual: np.ndarray, expected: np.ndarray, tol: Tolerance, dtype: str) -> Comparison:
    """Elementwise closeness; NaN equals NaN, infinities equal when signs agree."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        return Comparison(
            False,
            max(actual.size, expected.size),
            expected.size,
            float("nan"),
            float("nan"),
            float("nan"),
            None,
            f"Shape mismatch: got {actual.shape}, expected {expected.shape}",
        )
    if expected.size == 0:
        return Comparison(True, 0, 0, 0.0, 0.0, 0.0, None, "Both empty.")
    with np.errstate(over="ignore"):
        # Past the dtype's range the correctly rounded result is the infinity: that is due.
        rounded = expected.astype(numpy_dtype(dtype))
    if np.isfinite(rounded).all() and np.isfinite(actual).all():
        return _finite(actual, expected, rounded, tol, dtype)
    rounded = rounded.astype(np.float64)
    expected = np.where(np.isinf(rounded) & np.isfinite(expected), rounded, expected)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        both_nan = np.isnan(actual) & np.isnan(expected)
        same_inf = np.isinf(actual) & (actual == expected)
        diff = np.where(both_nan | same_inf, 0.0, np.abs(actual - expected))
        diff = np.where(np.isnan(diff), np.inf, diff)
        # An infinite expectation admits no tolerance: only the same infinity matches it.
        finite = np.isfinite(actual) & np.isfinite(expected)
        close = both_nan | same_inf | (finite & (diff <= tol.atol + tol.rtol * np.abs(expected)))
        rel = np.where(diff == 0, 0.0, diff / np.abs(expected))
        ulps = np.where(diff == 0, 0.0, diff / ulp(expected, dtype))
    bad = int(np.count_nonzero(~close))
    max_rel = float(np.nan_to_num(rel, nan=np.inf, posinf=np.inf).max())
    max_ulp = float(np.nan_to_num(ulps, nan=np.inf, posinf=np.inf).max())
    return _comparison(diff, bad, max_rel, max_ulp, tol, dtype)


def _finite(actual, expected, rounded, tol: Tolerance, dtype: str) -> Comparison:
    """``compare`` where every value is finite in float64 and the expectation in ``dtype``
    (nearly every comparison of a run): the same figures in a third of the array operations."""
    diff = np.abs(actual - expected)
    magnitude = np.abs(expected)
    bad = int(np.count_nonzero(diff > tol.atol + tol.rtol * magnitude))
    if not diff.any():
        return _comparison(diff, bad, 0.0, 0.0, tol, dtype)
    nonzero = diff > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rel = diff[nonzero] / magnitude[nonzero]
        ulps = diff[nonzero] / np.spacing(np.abs(rounded[nonzero])).astype(np.float64)
    return _comparison(diff, bad, float(rel.max()), float(ulps.max()), tol, dtype)


def _comparison(diff: np.ndarray, bad: int, max_rel: float, max_ulp: float, tol: Tolerance, dtype: str) -> Comparison:
    total = diff.size
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    max_abs = float(diff.max())
    where = f" at index {tuple(int(i) for i in worst)}" if diff.ndim else ""
    summary = (
        f"Mismatched elements: {bad} / {total} ({100.0 * bad / total:.1f}%)\n"
        f"Greatest absolute difference: {max_abs:.6g}{where} (up to {tol.atol:g} allowed)\n"
        f"Greatest relative difference: {max_rel:.6g} (up to {tol.rtol:g} allowed)\n"
        f"Greatest difference in {dtype} ULPs: {max_ulp:.6g}"
    )
    return Comparison(
        bad == 0, bad, total, max_abs, max_rel, max_ulp, [int(i) for i in worst] if diff.ndim else [], summary
    )
