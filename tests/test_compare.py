"""The ULP measure and the comparison on hand-made values, in all four dtypes."""

import ml_dtypes
import numpy as np
import pytest

from lossparity.conformance.compare import compare
from lossparity.core.dtypes import DTYPES, TOLERANCES, numpy_dtype, ulp

# (dtype, mantissa bits after the point, smallest subnormal)
FORMATS = [
    ("float64", 52, 2.0**-1074),
    ("float32", 23, 2.0**-149),
    ("float16", 10, 2.0**-24),
    ("bfloat16", 7, 2.0**-133),
]


@pytest.mark.parametrize("dtype, bits, tiny", FORMATS)
def test_ulp_at_one_zero_and_in_the_subnormals(dtype, bits, tiny):
    assert ulp(1.0, dtype) == 2.0**-bits
    assert ulp(-1.5, dtype) == 2.0**-bits  # the spacing at |x|
    assert ulp(0.0, dtype) == tiny  # at 0: the smallest subnormal
    assert ulp(3 * tiny, dtype) == tiny  # subnormals are evenly spaced
    assert ulp(2.0**10, dtype) == 2.0 ** (10 - bits)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_ulp_past_the_range_is_nan_not_an_overflow(dtype):
    big = float(ml_dtypes.finfo(numpy_dtype(dtype)).max) * 4
    assert np.isnan(ulp(big, dtype)) and np.isnan(ulp(np.inf, dtype)) and np.isnan(ulp(np.nan, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_step_apart_is_one_ulp(dtype):
    dt = numpy_dtype(dtype)
    x = np.array([0.3, 1.0, 7.5, 2.0**-20], dt)
    up = (x.astype(np.float64) + ulp(x.astype(np.float64), dtype)).astype(dt)  # the next number up
    assert (up > x).all()
    c = compare(up.astype(np.float64), x.astype(np.float64), TOLERANCES[dtype], dtype)
    assert c.max_ulp == 1.0
    assert c.mismatched == 0  # one ULP is within every dtype's tolerance


def test_nan_matches_nan_and_infinities_match_only_themselves():
    tol = TOLERANCES["float32"]
    same = compare(np.array([np.nan, np.inf, -np.inf]), np.array([np.nan, np.inf, -np.inf]), tol, "float32")
    assert same.ok and same.max_ulp == 0.0 and same.max_abs == 0.0
    off = compare(np.array([np.nan, 1e30, np.inf]), np.array([1.0, np.inf, -np.inf]), tol, "float32")
    assert not off.ok and off.mismatched == 3 and off.max_ulp == np.inf and off.max_abs == np.inf


def test_zero_expected_is_measured_in_subnormal_steps():
    c = compare(np.array([2.0**-148]), np.array([0.0]), TOLERANCES["float32"], "float32")
    assert c.max_ulp == 2.0 and c.ok  # within atol: a tolerance, not a ULP count, decides
    c = compare(np.array([1e-3]), np.array([0.0]), TOLERANCES["float16"], "float16")
    assert c.max_ulp == 1e-3 / 2.0**-24 and not c.ok


def test_summary_names_the_dtype_of_the_ulps():
    c = compare(np.array([1.0 + 2.0**-6]), np.array([1.0]), TOLERANCES["bfloat16"], "bfloat16")
    assert c.max_ulp == 2.0 and "Greatest difference in bfloat16 ULPs: 2" in c.summary


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_an_expectation_past_the_range_is_due_as_the_infinity(dtype):
    big = -float(ml_dtypes.finfo(numpy_dtype(dtype)).max) * 128  # rounds to -inf in the dtype
    assert compare(np.array([-np.inf]), np.array([big]), TOLERANCES[dtype], dtype).ok
    assert not compare(np.array([np.inf]), np.array([big]), TOLERANCES[dtype], dtype).ok
