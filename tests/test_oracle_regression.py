"""The regression oracles (``reference/regression.py``) checked three ways.

1. Against independent mpmath re-derivations at 50 digits, at hand-chosen points (saturated
   log-cosh, tiny and huge residuals, clamped denominators, floored logs): each value within
   ULP_BOUND float64 ULPs of the exact one. Each ``_mp_*`` below is written from the
   mathematics and the conventions' documented meaning, not from the oracle's code
   (``log(cosh r)`` directly, ``max`` and ``log1p`` at 50 digits).
2. Their gradients against central differences of the oracle (``fd_failures`` of
   ``oracle_helpers.py``), under every convention value that changes a derivative.
3. Closed forms at the edges: the kinks (slope 0 at r = 0), |r| = delta, delta = 0, a zero
   target of the percentage error, negative values under the MSLE floor, and the documented
   examples of Keras and TensorFlow.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from mpmath import mp, mpf
from oracle_helpers import F16, F32, fd_failures

from lossparity.conformance.specs import SPECS
from lossparity.reference import regression as reg
from lossparity.reference.errors import OracleError

ULP_BOUND = 4
A = np.array
INF, NAN = float("inf"), float("nan")

# ============================================================================= 1. mpmath


def _mp_abs(x, y, **_):
    return abs(x - y)


def _mp_sq(x, y, half_square=False, **_):
    return (x - y) ** 2 / (2 if half_square else 1)


def _mp_huber(x, y, delta=1.0, huber_form="huber", **_):
    r, d = abs(x - y), mpf(delta)
    if huber_form == "smooth_l1":
        if d == 0:
            return r
        return r * r / (2 * d) if r < d else r - d / 2
    return r * r / 2 if r <= d else d * r - d * d / 2


def _mp_log_cosh(x, y, **_):
    return mp.log(mp.cosh(x - y))


def _f32(v):
    return mpf(float(np.float32(v)))


def _mp_mape(x, y, denominator_eps=None, **_):
    den = abs(y) if denominator_eps is None else max(abs(y), _f32(denominator_eps))
    return 100 * abs(y - x) / den


def _mp_msle(x, y, value_floor=None, **_):
    if value_floor is not None:
        x, y = max(x, _f32(value_floor)), max(y, _f32(value_floor))
    return (mp.log1p(x) - mp.log1p(y)) ** 2


#: (oracle, mpmath function, input, target, keywords): elementwise points (reduction "none").
MP_POINTS = [
    (reg.absolute_error, _mp_abs, [1e30, 3.5, -2.25, 1e-300], [-1e30, 3.5, 0.125, -1e-300], {}),
    (reg.squared_error, _mp_sq, [1e150, 0.1, -3.0, 1e-160], [-1e150, 0.3, 7.0, 0.0], {}),
    (reg.squared_error, _mp_sq, [0.1, -3.0, 2e19], [0.3, 7.0, 0.0], {"half_square": True}),
    (reg.huber, _mp_huber, [0.3, -0.9, 1.0, 2.5, -1e30, 1e-200], [0.0, 0.1, 0.0, 0.0, 0.0, 0.0], {}),
    (reg.huber, _mp_huber, [0.3, -0.9, 0.5, 2.5, 1e20], [0.0, 0.1, 0.0, 0.0, 0.0], {"delta": 0.5}),
    (
        reg.huber,
        _mp_huber,
        [0.3, -0.9, 0.5, 2.5, 1e20],
        [0.0, 0.1, 0.0, 0.0, 0.0],
        {"delta": 0.5, "huber_form": "smooth_l1"},
    ),
    (reg.huber, _mp_huber, [0.3, -0.9, 2.5], [0.0, 0.1, 0.0], {"delta": 0.0, "huber_form": "smooth_l1"}),
    (reg.log_cosh, _mp_log_cosh, [1e-8, 1e-3, 0.3, -1.0, 5.0, 19.75, 20.0, 36.0, -700.0, 1e30], [0.0] * 10, {}),
    (reg.log_cosh, _mp_log_cosh, [2.0, 0.5], [1.9999999, -0.25], {}),
    (reg.mean_absolute_percentage_error, _mp_mape, [1.0, -3.0, 2.5, 1e-3], [0.3, 7.0, -1e-5, 1e-3 + 1e-9], {}),
    (
        reg.mean_absolute_percentage_error,
        _mp_mape,
        [1.0, 0.5, -3.0, 1.0],
        [0.0, 1e-9, 7.0, -2e-7],
        {"denominator_eps": 1e-7, "dtype": F32},
    ),
    (reg.mean_squared_logarithmic_error, _mp_msle, [3.0, 1e-10, 1e30, 0.5], [0.5, 2.0, 1.0, 1e-12], {}),
    (
        reg.mean_squared_logarithmic_error,
        _mp_msle,
        [3.0, -0.5, 0.0, 1e30],
        [0.5, 2.0, 4.0, -7.0],
        {"value_floor": 1e-7, "dtype": F32},
    ),
]


@pytest.mark.parametrize("index", range(len(MP_POINTS)))
def test_oracle_matches_mpmath(index):
    oracle, exact_fn, x, y, kw = MP_POINTS[index]
    mp.dps = 50
    got = oracle(A(x), A(y), reduction="none", **kw)
    for i, (xi, yi) in enumerate(zip(x, y)):
        exact = exact_fn(mpf(xi), mpf(yi), **kw)
        ulp = np.spacing(abs(float(exact))) if exact != 0 else 2.0**-1074
        err = float(abs(mpf(float(got[i])) - exact)) / ulp
        assert err <= ULP_BOUND, f"{oracle.__name__}({xi}, {yi}, {kw}) = {got[i]!r}, exact {exact}: {err:.2f} ULP"


def test_l2_loss_matches_mpmath():
    mp.dps = 50
    t = [0.1, -3.7, 2e19, 1e-170, 5.5]
    exact = sum(mpf(v) ** 2 for v in t)
    for half in (False, True):
        want = exact / 2 if half else exact
        got = reg.l2_loss(A(t), half_square=half)
        assert abs(mpf(float(got)) - want) <= ULP_BOUND * np.spacing(float(want))


# ============================================================================= 2. gradients

FD_CONVENTIONS = {  # each convention value that changes a derivative, combined to keep this quick
    "absolute_error": [{"sample_axis": "mean", "mean_by": "weights"}],
    "squared_error": [{"half_square": True, "mean_by": "weights"}],
    "huber": [{}, {"huber_form": "smooth_l1", "sample_axis": "mean"}],
    "log_cosh": [{}],
    "mean_absolute_percentage_error": [{"denominator_eps": 1e-7, "dtype": F16, "sample_axis": "mean"}],
    "mean_squared_logarithmic_error": [{"value_floor": 1e-7, "dtype": F32, "sample_axis": "mean"}],
    "l2_loss": [{"half_square": True}],
}


@pytest.mark.parametrize("spec_name", sorted(FD_CONVENTIONS))
def test_gradient_matches_finite_differences(spec_name):
    failures = fd_failures(spec_name, FD_CONVENTIONS[spec_name])
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(failures[:10])


# ============================================================================= 3. closed forms


def _g(fn, x, y, **kw):
    return fn(A(x), A(y), reduction="none", **kw)


def test_zero_residual_has_slope_zero():
    """At r = 0 |r| has the slope autodiff takes, sign(0) = 0; the smooth losses have 0 anyway."""
    for fn in (
        reg.absolute_error_grad,
        reg.squared_error_grad,
        reg.huber_grad,
        reg.log_cosh_grad,
        reg.mean_absolute_percentage_error_grad,
    ):
        got = _g(fn, [1.5, -2.0], [1.5, -2.0])
        assert np.all(got["input"] == 0) and np.all(got["target"] == 0), fn.__name__
    sl1 = _g(reg.huber_grad, [0.0, 2.0], [0.0, 0.0], delta=0.0, huber_form="smooth_l1")
    assert list(sl1["input"]) == [0.0, 1.0]


def test_huber_at_delta_is_continuous():
    """|r| = delta: both branches give delta^2 / 2 and slope +-delta (smooth L1: 1/2 delta, +-1)."""
    assert list(_g(reg.huber, [0.5, -0.5], [0.0, 0.0], delta=0.5)) == [0.125, 0.125]
    assert list(_g(reg.huber_grad, [0.5, -0.5], [0.0, 0.0], delta=0.5)["input"]) == [0.5, -0.5]
    assert list(_g(reg.huber, [0.5, -0.5], [0.0, 0.0], delta=0.5, huber_form="smooth_l1")) == [0.25, 0.25]
    assert list(_g(reg.huber_grad, [0.5], [0.0], delta=0.5, huber_form="smooth_l1")["input"]) == [1.0]


def test_huber_delta_zero_and_checks():
    """delta = 0: Huber is 0, smooth L1 is |r|; PyTorch's check raises for huber at 0, smooth L1 below."""
    assert list(_g(reg.huber, [1.5, -2.0], [0.0, 0.0], delta=0.0)) == [0.0, 0.0]
    assert list(_g(reg.huber, [1.5, -2.0], [0.0, 0.0], delta=0.0, huber_form="smooth_l1")) == [1.5, 2.0]
    with pytest.raises(OracleError):
        _g(reg.huber, [1.0], [0.0], delta=0.0, nonpositive_delta="RuntimeError")
    _g(reg.huber, [1.0], [0.0], delta=0.0, huber_form="smooth_l1", nonpositive_delta="RuntimeError")
    with pytest.raises(OracleError):
        _g(reg.huber, [1.0], [0.0], delta=-1.0, huber_form="smooth_l1", nonpositive_delta="RuntimeError")


def test_documented_examples():
    """Keras' docstrings (MSE 0.02, huber 0.155, log_cosh 0.108) and tf.nn.l2_loss([1, 2, 3]) = 7."""
    assert reg.squared_error(A([0.9, 0.1, 0.8]), A([1.0, 0.0, 1.0])) == pytest.approx(0.02)
    assert reg.huber(A([[0.6, 0.4], [0.4, 0.6]]), A([[0.0, 1.0], [0.0, 0.0]]), sample_axis="mean") == pytest.approx(
        0.155
    )
    assert reg.log_cosh(A([[1.0, 1.0], [0.0, 0.0]]), A([[0.0, 1.0], [0.0, 0.0]]), sample_axis="mean") == pytest.approx(
        0.108, abs=5e-4
    )
    assert reg.l2_loss(A([1.0, 2.0, 3.0]), half_square=True) == 7.0


def test_weighted_means():
    """mean_by='weights' (PyTorch l1_loss/mse_loss) divides by sum(w); a zero weight beats inf."""
    x, y, w = A([[1.0, -2.0]]), A([[0.0, 0.0]]), A([[1.0, 3.0]])
    assert reg.absolute_error(x, y, weight=w, mean_by="weights") == 7.0 / 4.0
    assert reg.absolute_error(x, y, weight=w) == 7.0 / 2.0
    assert reg.absolute_error(A([[INF, 1.0]]), y, weight=A([[0.0, 1.0]]), reduction="sum") == 1.0


def test_percentage_error_zero_target():
    """y = 0: plain |x| / 0 = inf (0/0 = nan); Keras' clamp gives 100 |x| / float32(1e-7), and no
    slope reaches y through the clamped denominator."""
    plain = _g(reg.mean_absolute_percentage_error, [0.5, 0.0], [0.0, 0.0])
    assert plain[0] == INF and np.isnan(plain[1])
    eps = float(np.float32(1e-7))
    got = _g(reg.mean_absolute_percentage_error, [0.5, 0.0], [0.0, 0.0], denominator_eps=1e-7, dtype=F32)
    assert list(got) == [50.0 / eps, 0.0]
    grad = _g(reg.mean_absolute_percentage_error_grad, [0.5], [0.0], denominator_eps=1e-7, dtype=F32)
    assert grad["input"][0] == 100.0 / eps and grad["target"][0] == -100.0 / eps


def test_msle_floor():
    """Keras raises negative values and 0 to eps: log1p(-0.5) would be log 0.5, and x = -1 is -inf
    plain; floored, the slope in x is 0."""
    plain = _g(reg.mean_squared_logarithmic_error, [-1.0, -2.0], [1.0, 1.0])
    assert plain[0] == INF and np.isnan(plain[1])
    eps = float(np.float32(1e-7))
    got = _g(reg.mean_squared_logarithmic_error, [-0.5], [1.0], value_floor=1e-7, dtype=F32)
    assert got[0] == pytest.approx((np.log1p(eps) - np.log(2.0)) ** 2, rel=1e-15)
    grad = _g(reg.mean_squared_logarithmic_error_grad, [-0.5], [1.0], value_floor=1e-7, dtype=F32)
    assert grad["input"][0] == 0.0 and grad["target"][0] > 0  # raising y raises the gap


def test_log_cosh_infinite_and_nan():
    """log cosh(+-inf) = +inf with slope +-1; NaN propagates."""
    got = _g(reg.log_cosh, [INF, -INF, NAN], [0.0, 0.0, 0.0])
    assert got[0] == INF and got[1] == INF and np.isnan(got[2])
    assert list(_g(reg.log_cosh_grad, [INF, -INF], [0.0, 0.0])["input"]) == [1.0, -1.0]


def test_floor_tie():
    """|y| == eps exactly: TensorFlow's Maximum passes the slope to |y| whole, torch.maximum and
    jnp.maximum half of it (floor_tie)."""
    eps = float(np.float32(1e-7))
    kw = dict(denominator_eps=1e-7, dtype=F32)
    whole = _g(reg.mean_absolute_percentage_error_grad, [1.0], [eps], **kw)["target"][0]
    half = _g(reg.mean_absolute_percentage_error_grad, [1.0], [eps], floor_tie="half", **kw)["target"][0]
    d_x = 100.0 * -1.0 / eps  # the numerator's part, d/dy of 100 |y - x| / m with m held
    assert half - d_x == pytest.approx(0.5 * (whole - d_x), rel=1e-15)
    msle = _g(reg.mean_squared_logarithmic_error_grad, [eps], [2.0], value_floor=1e-7, dtype=F32, floor_tie="half")
    assert msle["input"][0] == pytest.approx(0.5 * 2 * (np.log1p(eps) - np.log(3.0)) / (1 + eps), rel=1e-15)


def test_abs_zero_slope():
    """r = 0: slope 0 (sign(0), PyTorch and TensorFlow) or, for Keras on JAX (|y - x| with JAX's
    abs slope +1 at 0), -1 for the input and +1 for the target."""
    got = _g(reg.absolute_error_grad, [1.0, 2.0], [1.0, 0.0], abs_zero_slope=-1.0)
    assert list(got["input"]) == [-1.0, 1.0] and list(got["target"]) == [1.0, -1.0]
    mape = _g(reg.mean_absolute_percentage_error_grad, [2.0], [2.0], abs_zero_slope=-1.0)
    assert mape["input"][0] == -50.0


def test_flush_subnormals_puts_a_subnormal_residual_on_the_kink():
    """flush_subnormals: a float32 (or bfloat16) subnormal residual reads as +-0, so |r| takes
    its slope at 0 (abs_zero_slope); a normal one and a float16 computation keep sign(r)."""
    x, y = np.array([1.4e-45, -4.4e-39, 1e-30, 0.5]), np.zeros(4)
    kw = dict(reduction="none", abs_zero_slope=-1.0)
    kept = reg.absolute_error_grad(x, y, **kw)["input"]
    flushed = reg.absolute_error_grad(x, y, **kw, flush_subnormals=True)["input"]
    np.testing.assert_array_equal(kept, [1.0, -1.0, 1.0, 1.0])
    np.testing.assert_array_equal(flushed, [-1.0, -1.0, 1.0, 1.0])
    np.testing.assert_array_equal(reg.absolute_error(x, y, reduction="none", flush_subnormals=True), [0, 0, 1e-30, 0.5])
    f16 = reg.absolute_error_grad(x, y, **kw, flush_subnormals=True, dtype=np.float16)["input"]
    np.testing.assert_array_equal(f16, kept)


def test_a_sum_past_float64s_range_is_infinite_and_one_back_in_range_is_exact():
    """math.fsum raises OverflowError on a partial sum past 1.8e308 (the fuzz test's absolute
    error of two 1.8e308 residuals); the reduction's exact sum is then IEEE's +-inf, and a sum
    that comes back into range (m + m - m) is exact."""
    from lossparity.reference.reduction import exact_sum

    m = float(np.finfo(np.float64).max)
    assert exact_sum(np.array([m, m])) == math.inf and exact_sum(np.array([-m, -m])) == -math.inf
    assert exact_sum(np.array([m, m, -m])) == m
    x = np.array([[0.0, 0.0], [m, m]])
    assert SPECS["absolute_error"].oracle(x, np.zeros_like(x), reduction="mean") == math.inf
