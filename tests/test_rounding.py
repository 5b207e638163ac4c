"""Rounding-error models (``reference/rounding.py``, ``Spec.error_model``, ``Binding.stages``).

1. Sound: the declared computation, emulated stage by stage in NumPy float16 and ml_dtypes
   bfloat16 (every operation rounded to the dtype, in the frameworks' order), stays within
   the model's bound of the exact float64 oracle on hundreds of random cases, value and
   gradients, while the plain tolerance does not (so the model is needed, and not vacuous).
2. Not an excuse: the bound rejects a halved slope, a NaN, an infinity, an element where the
   oracle is not finite, and a result past the bound; a binding that declares no stage is
   held to the tolerance.
3. Declared: every binding's stages are stages its spec's model knows.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from lossparity.conformance.registry import all_bindings
from lossparity.conformance.runner import within_rounding
from lossparity.conformance.specs import SPECS
from lossparity.core.dtypes import TOLERANCES
from lossparity.reference import crossentropy as ce
from lossparity.reference.rounding import unit_roundoff

HALF = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def _cases(n_cases=300, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
        scale = float(rng.choice([1.0, 4.0, 12.0]))
        x = rng.normal(0, scale, (n, c))
        y = rng.dirichlet(np.full(c, float(rng.choice([0.2, 1.0, 5.0]))), n)
        yield x, y, rng.integers(0, c, n)


def _emulated_log_softmax(x, t):
    """jax.nn.log_softmax in dtype t: shifted - log(sum(exp(shifted))), every op rounded."""
    x = x.astype(t)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True, dtype=t))


def _emulated_logsumexp_ce(x, labels, t):
    """optax's integer-label cross-entropy in dtype t: logsumexp(x) - x[label]."""
    x = x.astype(t)
    m = x.max(axis=-1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True, dtype=t))
    return (lse[..., 0] - np.take_along_axis(x, labels[..., None], -1)[..., 0]), np.exp(x - lse)


def _check(actual, expected, scale, dtype):
    tol = TOLERANCES[dtype]
    fit = within_rounding(actual, expected, scale, tol, dtype, ("stage",))
    plain = np.all(np.abs(actual - expected) <= tol.atol + tol.rtol * np.abs(expected))
    return fit is not None, bool(plain)


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_softmax_soft_model_bounds_the_emulated_computation(dtype):
    t, fits, plain_misses = HALF[dtype], 0, 0
    for x, y, _ in _cases():
        x = x.astype(t).astype(np.float64)  # the case, rounded to its dtype as a run does
        y = y.astype(t).astype(np.float64)
        model = ce.softmax_cross_entropy_soft_error(x, y, reduction="none", stages=("log_softmax",))
        ls = _emulated_log_softmax(x, t)
        value = -np.sum(y.astype(t) * ls, axis=-1, dtype=t)
        grad_x = np.exp(ls) * np.sum(y.astype(t), axis=-1, keepdims=True, dtype=t) - y.astype(t)
        grad_y = -ls
        exact = ce.softmax_cross_entropy_soft(x, y, reduction="none")
        grads = ce.softmax_cross_entropy_soft_grad(x, y, reduction="none")
        for got, want, part in (
            (value, exact, "value"),
            (grad_x, grads["input"], "input"),
            (grad_y, grads["target"], "target"),
        ):
            ok, plain = _check(got.astype(np.float64), want, model[part], dtype)
            assert ok, (part, x, y)
            fits += 1
            plain_misses += not plain
    assert fits == 900 and plain_misses > 50  # the tolerance alone fails many of them


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_integer_label_logsumexp_model_bounds_the_emulated_computation(dtype):
    t, plain_misses = HALF[dtype], 0
    for x, _, labels in _cases(seed=1):
        x = x.astype(t).astype(np.float64)
        model = ce.softmax_cross_entropy_error(x, labels, reduction="none", stages=("logsumexp",))
        value, p = _emulated_logsumexp_ce(x, labels, t)
        onehot = np.eye(x.shape[-1], dtype=t)[labels]
        grad = p - onehot
        exact = ce.softmax_cross_entropy(x, labels, reduction="none")
        want_grad = ce.softmax_cross_entropy_grad(x, labels, reduction="none")["input"]
        for got, want, part in ((value, exact, "value"), (grad, want_grad, "input")):
            ok, plain = _check(got.astype(np.float64), want, model[part], dtype)
            assert ok, (part, x, labels)
            plain_misses += not plain
    assert plain_misses > 20


@pytest.mark.parametrize("dtype", sorted(HALF))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_probability_model_bounds_keras_categorical_crossentropy(dtype, reduction):
    """Keras on probabilities: output / sum(output), clip, -sum(target * log(output)) in t."""
    t, eps = HALF[dtype], 1e-7
    lo, hi = float(np.asarray(eps, t)), float(np.asarray(1 - eps, t))
    for x, y, _ in _cases(seed=2):
        p = np.exp(x / 4) * np.random.default_rng(0).uniform(0.5, 2.0, x.shape[-1])
        p = p.astype(t).astype(np.float64)
        y = y.astype(t).astype(np.float64)
        kw = dict(reduction=reduction, prob_eps=eps, renormalize="before_clip", dtype=t)
        model = ce.categorical_cross_entropy_error(p, y, **kw, stages=ce.PROBABILITY_STAGES)
        pt, yt = p.astype(t), y.astype(t)
        q = np.clip(pt / np.sum(pt, axis=-1, keepdims=True, dtype=t), t(lo), t(hi))
        per = -np.sum(yt * np.log(q), axis=-1, dtype=t)
        value = {"none": per, "sum": np.sum(per, dtype=t), "mean": np.sum(per, dtype=t) / t(per.size)}[reduction]
        ok, _ = _check(np.asarray(value, np.float64), ce.categorical_cross_entropy(p, y, **kw), model["value"], dtype)
        assert ok, (p, y)


def test_within_rounding_rejects_what_rounding_cannot_do():
    expected = np.array([0.5, -1.25, 2.0, 0.01])
    scale = np.full(4, 4.0)  # a bound of 4 u: 2^-9 in float16
    ok = within_rounding(expected + 2.0**-11, expected, scale, TOLERANCES["float16"], "float16", ("s",))
    assert ok is not None and 0 < ok["ratio"] < 1 and "consistent with computing s in float16" in ok["summary"]
    halved = expected.copy()
    halved[1] /= 2
    for bad in (
        halved,
        np.where(np.arange(4) == 0, np.nan, expected),
        np.where(np.arange(4) == 2, np.inf, expected),
        expected + 8 * 2.0**-11 * 4,  # past the bound
    ):
        assert within_rounding(bad, expected, scale, TOLERANCES["float16"], "float16", ("s",)) is None
    # where the oracle is not finite, only the same non-finite value is fine
    oracle = np.array([np.inf, 1.0])
    assert (
        within_rounding(np.array([65504.0, 1.0]), oracle, np.full(2, 1e9), TOLERANCES["float16"], "float16", ("s",))
        is None
    )
    assert within_rounding(
        np.array([np.inf, 1.0 + 2.0**-10]), oracle, np.full(2, 4.0), TOLERANCES["float16"], "float16", ("s",)
    )
    # a model that has no bound for the part explains nothing
    assert within_rounding(expected + 2.0**-11, expected, None, TOLERANCES["float16"], "float16", ("s",)) is None


def test_bound_scales_with_the_unit_roundoff():
    assert unit_roundoff("float16") == 2.0**-11 and unit_roundoff("bfloat16") == 2.0**-8
    assert unit_roundoff(np.dtype(ml_dtypes.bfloat16)) == 2.0**-8 and unit_roundoff(np.float32) == 2.0**-24


def test_every_declared_stage_is_modelled():
    declared = [b for b in all_bindings() if b.stages]
    assert declared, "no binding declares a stage"
    for b in declared:
        spec = SPECS[b.spec]
        assert spec.error_model is not None, b.id
        assert set(b.stages) <= set(spec.stages), (b.id, b.stages, spec.stages)


def test_torch_cross_entropy_declares_no_stage():
    """PyTorch's CPU kernels accumulate half precision in float: held to the tolerance."""
    torch_ce = [b for b in all_bindings() if b.framework == "torch" and "cross_entropy" in b.id]
    assert torch_ce and not any(b.stages for b in torch_ce)


# ============================================================================= regression
# log_cosh (Keras' r + softplus(-2r) - log 2 on the JAX, TensorFlow and torch backends, optax's
# logaddexp(r, -r) - log 2) and Keras' squared logarithmic error on JAX: each framework's
# algorithm emulated op by op in the half dtype, against ``reference/regression.py``'s models.

from lossparity.reference import regression as reg  # noqa: E402


def _residual_cases(n_cases=300, seed=10, lo=-20.0, hi=20.0):
    """(x, y) rows of 1-6 elements: residuals spread over [lo - hi, hi - lo], a third of the
    cases small (|r| < 0.05, where every form cancels), some exact ties."""
    rng = np.random.default_rng(seed)
    for i in range(n_cases):
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 7)))
        x = rng.uniform(lo, hi, shape)
        y = x - rng.uniform(-0.05, 0.05, shape) if i % 3 == 0 else rng.uniform(lo, hi, shape)
        if i % 7 == 0:
            y = np.where(rng.random(shape) < 0.3, x, y)
        yield x, y


def _row_mean(v, t):
    return np.sum(v, axis=-1, dtype=t) / t(v.shape[-1]), t(1.0 / v.shape[-1])


def _emulated_keras_log_cosh(x, y, t, backend):
    """Keras' log_cosh function form in dtype t: r + softplus(-2r) - log2, its mean over the
    last axis, and the slope in r by reverse mode, with the backend's softplus and its slope:
    JAX's logaddexp(m, 0) (jvp exp(m - s)), TensorFlow's thresholded Eigen kernel
    (SoftplusGrad g / (exp(-m) + 1)), torch's float opmath (one rounding)."""
    x, y = x.astype(t), y.astype(t)
    r = x - y
    m = r * t(-2.0)
    lg2 = t(np.log(2.0))
    if backend == "jax":
        s = np.maximum(m, t(0)) + np.log1p(np.exp(-np.abs(m)))
    elif backend == "tensorflow":
        thr = np.log(np.asarray(reg._EIGEN_EPS[np.dtype(t).name], t)) + t(2)
        s = np.where(m > -thr, m, np.where(m < thr, np.exp(m), np.log1p(np.exp(m))))
    else:
        s = np.logaddexp(m.astype(np.float32), np.float32(0)).astype(t)
    value, ct = _row_mean((r + s) - lg2, t)
    ct = np.full(r.shape, ct, t)
    if backend == "jax":
        sig = ct * np.exp(m - s)
    elif backend == "tensorflow":
        sig = ct / (np.exp(-m) + t(1))
    else:
        sig = (ct.astype(np.float32) / (np.float32(1) + np.exp(-m.astype(np.float32)))).astype(t)
    return value, ct + sig * t(-2.0)


def _emulated_optax_log_cosh(x, y, t):
    """optax.losses.log_cosh in dtype t: logaddexp(r, -r) - log 2, elementwise, and its slope
    g exp(r - s) - g exp(-r - s) (JAX's logaddexp jvp, g = 1)."""
    x, y = x.astype(t), y.astype(t)
    r = x - y
    s = np.maximum(r, -r) + np.log1p(np.exp(-np.abs(r - (-r))))
    return s - t(np.log(2.0)), np.exp(r - s) - np.exp(-r - s)


def _check_parts(pairs, model, dtype):
    misses = 0
    for got, want, part in pairs:
        ok, plain = _check(np.asarray(got, np.float64), want, model[part], dtype)
        assert ok, part
        misses += not plain
    return misses


@pytest.mark.parametrize("dtype", sorted(HALF))
@pytest.mark.parametrize("backend", ["jax", "tensorflow", "torch"])
def test_keras_log_cosh_model_bounds_the_emulated_computation(dtype, backend):
    t, misses = HALF[dtype], 0
    stages = ("softplus_form", "eigen_softplus") if backend == "tensorflow" else ("softplus_form",)
    kw = dict(reduction="none", sample_axis="mean")
    for x, y in _residual_cases():
        x, y = x.astype(t).astype(np.float64), y.astype(t).astype(np.float64)
        model = reg.log_cosh_error(x, y, **kw, dtype=t, stages=stages)
        value, d_r = _emulated_keras_log_cosh(x, y, t, backend)
        grads = reg.log_cosh_grad(x, y, **kw)
        pairs = [(value, reg.log_cosh(x, y, **kw), "value"), (d_r, grads["input"], "input")]
        misses += _check_parts(pairs + [(-d_r, grads["target"], "target")], model, dtype)
    assert misses > 30  # the tolerance alone fails many of them


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_optax_log_cosh_model_bounds_the_emulated_computation(dtype):
    t, misses = HALF[dtype], 0
    for x, y in _residual_cases(seed=11):
        x, y = x.astype(t).astype(np.float64), y.astype(t).astype(np.float64)
        model = reg.log_cosh_error(x, y, reduction="none", dtype=t, stages=("logaddexp_form",))
        value, d_r = _emulated_optax_log_cosh(x, y, t)
        grads = reg.log_cosh_grad(x, y, reduction="none")
        misses += _check_parts(
            [(value, reg.log_cosh(x, y, reduction="none"), "value"), (d_r, grads["input"], "input")], model, dtype
        )
    assert misses > 30


def test_tensorflow_softplus_truncation_needs_its_stage():
    """In bfloat16 TensorFlow's kernel returns softplus(m) = m for m > 2.84 (0.055 off at
    m = 2.86, about 14 u): r + softplus(-2r) - log 2 for r just below -1.42 misses the
    rounding-only bound, and is within it once the kernel's truncation is declared."""
    t = HALF["bfloat16"]
    r = -np.linspace(0.3, 6, 2000).astype(t).astype(np.float64)
    x, y = r[:, None], np.zeros((r.size, 1))
    value, _ = _emulated_keras_log_cosh(x, y, t, "tensorflow")
    exact = reg.log_cosh(x, y, reduction="none", sample_axis="mean")
    missed = {}
    for stages in (("softplus_form",), ("softplus_form", "eigen_softplus")):
        model = reg.log_cosh_error(x, y, reduction="none", sample_axis="mean", dtype=t, stages=stages)
        missed[stages] = sum(
            not _check(
                np.asarray(value[i : i + 1], np.float64), exact[i : i + 1], model["value"][i : i + 1], "bfloat16"
            )[0]
            for i in range(r.size)
        )
    assert missed[("softplus_form",)] > 5 and missed[("softplus_form", "eigen_softplus")] == 0


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_log_cosh_model_is_not_an_excuse(dtype):
    """Away from the cancellation (|r| >= 0.5) the bound is a few tens of u relative, and a
    halved slope, a slope of the other sign or a NaN stays outside it."""
    t = HALF[dtype]
    u = unit_roundoff(dtype)
    r = np.linspace(0.5, 12, 47) * np.where(np.arange(47) % 2, 1, -1)
    x, y = r.astype(t).astype(np.float64)[None], np.zeros((1, 47))
    for stages in (("softplus_form",), ("softplus_form", "eigen_softplus"), ("logaddexp_form",)):
        model = reg.log_cosh_error(x, y, reduction="none", dtype=t, stages=stages)
        slope = reg.log_cosh_grad(x, y, reduction="none")["input"]
        value = reg.log_cosh(x, y, reduction="none")
        assert np.max(u * model["input"] / np.abs(slope)) < 40 * u
        assert np.max(u * model["value"] / np.abs(value)) < 40 * u
        for bad in (slope / 2, -slope, np.where(np.arange(47) == 3, np.nan, slope)):
            assert not _check(bad, slope, model["input"], dtype)[0]


def _emulated_keras_msle(x, y, t, eps):
    """Keras' mean_squared_logarithmic_error on JAX in dtype t: log(maximum(v, eps) + 1), the
    square of the difference, its mean over the last axis; the slope in x and y by reverse
    mode (square: 2 d g, log: g / (f + 1), maximum: the tie split in half)."""
    x, y = x.astype(t), y.astype(t)
    e = t(eps)
    fx, fy = np.maximum(x, e), np.maximum(y, e)
    ax, ay = fx + t(1.0), fy + t(1.0)
    d = np.log(ax) - np.log(ay)
    value, ct = _row_mean(np.square(d), t)
    cd = np.full(d.shape, ct, t) * (t(2) * d)
    tie_x = np.where(x > e, t(1), np.where(x == e, t(0.5), t(0)))
    tie_y = np.where(y > e, t(1), np.where(y == e, t(0.5), t(0)))
    return value, (cd / ax) * tie_x, -(cd / ay) * tie_y


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_keras_msle_model_bounds_the_emulated_computation(dtype):
    t, misses = HALF[dtype], 0
    kw = dict(reduction="none", sample_axis="mean", value_floor=1e-7, floor_tie="half")
    for x, y in _residual_cases(seed=12, lo=-1.0, hi=40.0):
        x, y = x.astype(t).astype(np.float64), y.astype(t).astype(np.float64)
        model = reg.mean_squared_logarithmic_error_error(x, y, **kw, dtype=t, stages=reg.MSLE_STAGES)
        value, d_x, d_y = _emulated_keras_msle(x, y, t, reg._floor(1e-7, t))
        want = reg.mean_squared_logarithmic_error_grad(x, y, **kw, dtype=t)
        pairs = [
            (value, reg.mean_squared_logarithmic_error(x, y, **kw, dtype=t), "value"),
            (d_x, want["input"], "input"),
            (d_y, want["target"], "target"),
        ]
        misses += _check_parts(pairs, model, dtype)
    assert misses > 30


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_msle_model_is_not_an_excuse(dtype):
    """Where the logs differ by O(1), the bound is a few tens of u relative; a halved slope
    (the floor's tie split where it is not a tie) stays outside it."""
    t, u = HALF[dtype], unit_roundoff(dtype)
    x = np.linspace(0.5, 30, 40).astype(t).astype(np.float64)[None]
    y = (x * 3).astype(t).astype(np.float64)  # |d| >= 0.5: no cancellation
    kw = dict(reduction="none", value_floor=1e-7, floor_tie="half", dtype=t)
    model = reg.mean_squared_logarithmic_error_error(x, y, **kw, stages=reg.MSLE_STAGES)
    value = reg.mean_squared_logarithmic_error(x, y, **kw)
    slope = reg.mean_squared_logarithmic_error_grad(x, y, **kw)["input"]
    assert np.max(u * model["value"] / value) < 40 * u and np.max(u * model["input"] / np.abs(slope)) < 40 * u
    assert not _check(slope / 2, slope, model["input"], dtype)[0]
    assert not _check(np.full_like(slope, np.nan), slope, model["input"], dtype)[0]


# ============================================================================= margin
# Keras' categorical hinge in the half dtype: sum(y * x), max((1 - y) * x), neg - pos + 1.0.

from lossparity.reference import margin as mg  # noqa: E402


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_categorical_hinge_model_bounds_the_emulated_computation(dtype):
    t, misses, rng = HALF[dtype], 0, np.random.default_rng(20)
    for i in range(300):
        n, c = int(rng.integers(1, 5)), int(rng.integers(2, 7))
        y = np.eye(c)[rng.integers(0, c, n)]
        x = rng.normal(0, 2, (n, c))
        if i % 2:  # margins nearly met: the target's score about 1 above the best other
            x = x + y * (np.max(x * (1 - y), axis=-1, keepdims=True) - np.sum(x * y, axis=-1, keepdims=True) + 1)
            x = x + rng.normal(0, 0.01, (n, c))
        x = x.astype(t).astype(np.float64)
        kw = dict(reduction="none", hinge_neg="masked_product")
        model = mg.categorical_hinge_error(x, y, **kw, dtype=t, stages=mg.CATEGORICAL_HINGE_STAGES)
        xt, yt = x.astype(t), y.astype(t)
        z = np.max((t(1) - yt) * xt, axis=-1) - np.sum(yt * xt, axis=-1, dtype=t) + t(1.0)
        ok, plain = _check(
            np.maximum(z, t(0)).astype(np.float64), mg.categorical_hinge(x, y, **kw), model["value"], dtype
        )
        assert ok, (x, y)
        misses += not plain
    assert misses > 3  # margins nearly met cancel to a few u absolute


# ============================================================================= segmentation
# Keras' dice and tversky in the half dtype: products, sums over every axis, quotient, 1 - index.

from lossparity.reference import segmentation as sg  # noqa: E402


@pytest.mark.parametrize("dtype", sorted(HALF))
@pytest.mark.parametrize("loss", ["dice", "tversky"])
def test_keras_overlap_model_bounds_the_emulated_computation(dtype, loss):
    t, misses, rng = HALF[dtype], 0, np.random.default_rng(30)
    for i in range(300):
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 9)))
        y = (rng.random(shape) < 0.5).astype(np.float64) if i % 2 else rng.random(shape)
        p = np.clip(y + rng.normal(0, [0.02, 0.3][i % 3 == 0], shape), 0, 1) if i % 4 else rng.random(shape)
        p, y = p.astype(t).astype(np.float64), y.astype(t).astype(np.float64)
        if not (p.any() or y.any()):
            continue  # empty masks: float16's eps^2 underflows, a NaN slope (a known deviation, not rounding)
        pt, yt, eps = p.astype(t), y.astype(t), t(1e-7)
        inter = np.sum(yt * pt, dtype=t)
        ct = t(-1.0)  # the cotangent of the index, 1 - index's
        if loss == "dice":
            den = np.sum(yt, dtype=t) + np.sum(pt, dtype=t) + eps
            got = t(1) - (t(2) * inter) / den
            # JAX's div: g / y for the numerator, (-g x) * y^-2 for the denominator
            slope = t(2) * (ct / den) * yt + (-ct * (t(2) * inter)) * (t(1) / (den * den))
            exact, want = sg.dice(p, y, dice_eps=1e-7, dtype=t), sg.dice_grad(p, y, dice_eps=1e-7, dtype=t)
            model = sg.dice_error(p, y, dice_eps=1e-7, dtype=t, stages=sg.OVERLAP_STAGES)
        else:
            fp, fn = np.sum((t(1) - pt) * yt, dtype=t), np.sum(pt * (t(1) - yt), dtype=t)
            den = inter + fp * t(0.5) + fn * t(0.5) + eps
            got = t(1) - inter / den
            ct_den = (-ct * inter) * (t(1) / (den * den))
            slope = (ct / den + ct_den) * yt + (ct_den * t(0.5)) * -yt + (ct_den * t(0.5)) * (t(1) - yt)
            exact, want = sg.tversky(p, y, dice_eps=1e-7, dtype=t), sg.tversky_grad(p, y, dice_eps=1e-7, dtype=t)
            model = sg.tversky_error(p, y, dice_eps=1e-7, dtype=t, stages=sg.OVERLAP_STAGES)
        misses += _check_parts(
            [(np.asarray(got, np.float64), exact, "value"), (slope, want["input"], "input")], model, dtype
        )
    assert misses > 3


# ============================================================================= likelihood
# The Poisson NLL op by op in the half dtype: tf.nn.log_poisson_loss and torch's poisson_nll_loss.

from lossparity.reference import likelihood as lk  # noqa: E402


def _emulated_poisson(x, y, t, log_input, full, eps):
    """exp(c) - y c (or x - y log(x + eps)) and the Stirling term where y > 1, every op in t,
    with the reverse-mode slopes (g = 1)."""
    x, y = x.astype(t), y.astype(t)
    if log_input:
        e = np.exp(x)
        loss, d_x, d_y = e - y * x, e - y, -x
    else:
        a = x + t(eps)
        loss, d_x, d_y = x - y * np.log(a), t(1) - y * (t(1) / a), -np.log(a)
    if full:
        two_pi_y = t(2 * np.pi) * y
        s = y * np.log(y) - y + t(0.5) * np.log(two_pi_y)
        mask = y > 1
        loss = np.where(mask, loss + s, loss)
        ds = np.log(y) + y * (t(1) / y) - t(1) + t(0.5) * (t(2 * np.pi) * (t(1) / two_pi_y))
        d_y = np.where(mask, d_y + ds, d_y)
    return loss, d_x, d_y


@pytest.mark.parametrize("dtype", sorted(HALF))
@pytest.mark.parametrize("log_input", [True, False])
def test_poisson_model_bounds_the_emulated_computation(dtype, log_input):
    t, misses, rng = HALF[dtype], 0, np.random.default_rng(40)
    for i in range(300):
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 6)))
        x = rng.uniform(-3, 3, shape) if log_input else rng.uniform(0.05, 20, shape)
        y = np.floor(rng.uniform(0, 12, shape))
        x, y = x.astype(t).astype(np.float64), y.astype(t).astype(np.float64)
        kw = dict(log_input=log_input, full=bool(i % 2), eps=1e-8, reduction="none", dtype=t)
        model = lk.poisson_nll_error(x, y, **kw, stages=lk.POISSON_STAGES)
        loss, d_x, d_y = _emulated_poisson(x, y, t, log_input, kw["full"], 1e-8)
        grads = lk.poisson_nll_grad(x, y, **kw)
        pairs = [(loss, lk.poisson_nll(x, y, **kw), "value"), (d_x, grads["input"], "input")]
        misses += _check_parts(pairs + [(d_y, grads["target"], "target")], model, dtype)
    assert misses > 30


# ============================================================================= embedding
# torch's cosine_embedding_loss op by op in the half dtype (sums accumulated in float, as PyTorch's
# CPU reductions of half do, and, for the bound's other case, in the half dtype itself).

from lossparity.reference import embedding as em  # noqa: E402


@pytest.mark.parametrize("dtype", sorted(HALF))
@pytest.mark.parametrize("accumulate", ["float32", "half"])
def test_cosine_embedding_model_bounds_the_emulated_computation(dtype, accumulate):
    t, misses, rng = HALF[dtype], 0, np.random.default_rng(50)
    acc = np.float32 if accumulate == "float32" else t

    def total(v):
        return np.sum(v.astype(acc), axis=-1, dtype=acc).astype(t)

    for i in range(300):
        n, d = int(rng.integers(1, 5)), int(rng.integers(2, 9))
        a = rng.normal(0, 1, (n, d))
        b = a + rng.normal(0, [0.01, 1.0][i % 2], (n, d))  # near-parallel pairs cancel in 1 - cos
        y = rng.choice([-1, 1], n)
        margin = float(rng.choice([0.0, 0.5]))
        a, b = a.astype(t).astype(np.float64), b.astype(t).astype(np.float64)
        at, bt = a.astype(t), b.astype(t)
        cos = total(at * bt) / np.sqrt((total(at * at) + t(1e-12)) * (total(bt * bt) + t(1e-12)))
        got = np.where(y == 1, t(1) - cos, np.maximum(cos - t(margin), t(0)))
        kw = dict(input2=b, margin=margin, reduction="none", sq_norm_add=1e-12, dtype=t)
        model = em.cosine_embedding_error(a, y, **kw, stages=em.COSINE_EMBEDDING_STAGES)
        ok, plain = _check(got.astype(np.float64), em.cosine_embedding(a, y, **kw), model["value"], dtype)
        assert ok, (a, b, y, margin)
        misses += not plain
    assert misses > 10


@pytest.mark.parametrize("dtype", sorted(HALF))
@pytest.mark.parametrize("form", ["elementwise", "keras_mean", "torch_weighted"])
def test_squared_error_model_bounds_the_emulated_computation(dtype, form):
    """(x - y) rounded, squared (times a weight) in the half dtype; Keras' mean over the last
    axis, PyTorch's weighted mean sum(w r^2) / sum(w); slopes 2 r g w by reverse mode."""
    t, misses, rng = HALF[dtype], 0, np.random.default_rng(60)
    for x, y in _residual_cases(seed=13, lo=-10, hi=10):
        x, y = x.astype(t).astype(np.float64), y.astype(t).astype(np.float64)
        w = rng.uniform(0.25, 4, x.shape).astype(t).astype(np.float64) if form == "torch_weighted" else None
        kw = dict(reduction="none") if form == "elementwise" else dict(reduction="mean")
        if form == "keras_mean":
            kw = dict(reduction="none", sample_axis="mean")
        if form == "torch_weighted":
            kw.update(weight=w, mean_by="weights")
        model = reg.squared_error_error(x, y, **kw, dtype=t, stages=reg.SQUARED_ERROR_STAGES)
        r = x.astype(t) - y.astype(t)
        sq = r * r
        if form == "elementwise":
            value, g = sq, np.ones_like(r)
        elif form == "keras_mean":
            value, ct = _row_mean(sq, t)
            g = np.full(r.shape, ct, t)
        else:
            wt = w.astype(t)
            value = np.sum(sq * wt, dtype=t) / np.sum(wt, dtype=t)
            g = (t(1) / np.sum(wt, dtype=t)) * wt
        slope = (g * (t(2) * r)).astype(np.float64)
        want = reg.squared_error_grad(x, y, **kw)
        pairs = [(value, reg.squared_error(x, y, **kw), "value"), (slope, want["input"], "input")]
        misses += _check_parts(pairs + [(-slope, want["target"], "target")], model, dtype)
    # the float16 tolerance (rtol ~ 2u) misses r^2 rounded twice; bfloat16 (rtol 4u) and the means mostly do not
    assert misses > 10 or (form, dtype) != ("elementwise", "float16")


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_squared_hinge_model_bounds_the_emulated_computation(dtype):
    """Keras: mean(square(maximum(1 - y x, 0)), axis=-1) in the half dtype, its slope by reverse mode."""
    t, misses, rng = HALF[dtype], 0, np.random.default_rng(70)
    for i in range(300):
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 6)))
        y = rng.choice([-1.0, 1.0], shape)
        x = y * rng.uniform(-3, 1.2, shape) if i % 2 else rng.normal(0, 3, shape)
        x = x.astype(t).astype(np.float64)
        kw = dict(reduction="none", sample_axis="mean")
        model = mg.squared_hinge_error(x, y, **kw, dtype=t, stages=mg.SQUARED_HINGE_STAGES)
        h = np.maximum(t(1.0) - y.astype(t) * x.astype(t), t(0))
        value, ct = _row_mean(np.square(h), t)
        slope = (np.full(h.shape, ct, t) * (t(2) * h)) * -y.astype(t)
        pairs = [(value, mg.squared_hinge(x, y, **kw), "value")]
        pairs.append((slope, mg.squared_hinge_grad(x, y, **kw)["input"], "input"))
        misses += _check_parts(pairs, model, dtype)
    assert misses > 3 or dtype == "bfloat16"


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_mape_value_model_bounds_the_emulated_computation(dtype):
    """Keras: 100 * mean(abs((y - x) / maximum(abs(y), eps)), axis=-1) in the half dtype."""
    t, misses = HALF[dtype], 0
    for x, y in _residual_cases(seed=14, lo=-20, hi=20):
        x, y = x.astype(t).astype(np.float64), y.astype(t).astype(np.float64)
        kw = dict(reduction="none", sample_axis="mean", denominator_eps=1e-7, dtype=t)
        model = reg.mean_absolute_percentage_error_error(x, y, **kw, stages=reg.MAPE_STAGES)
        xt, yt = x.astype(t), y.astype(t)
        q = np.abs((yt - xt) / np.maximum(np.abs(yt), t(1e-7)))
        value = t(100.0) * _row_mean(q, t)[0]
        exact = reg.mean_absolute_percentage_error(x, y, **kw)
        ok, plain = _check(np.asarray(value, np.float64), exact, model["value"], dtype)
        assert ok, (x, y)
        misses += not plain
    assert misses > 3 or dtype == "bfloat16"


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_gaussian_nll_model_bounds_the_emulated_computation(dtype):
    """torch: 0.5 * (log(var) + (x - t)**2 / var), the mean, and the reverse-mode slopes."""
    t, misses, rng = HALF[dtype], 0, np.random.default_rng(80)
    for _ in range(300):
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 6)))
        x, y = rng.normal(0, 2, shape), rng.normal(0, 2, shape)
        v = rng.uniform(0.05, 5, shape)
        x, y, v = (a.astype(t).astype(np.float64) for a in (x, y, v))
        kw = dict(var=v, reduction="mean", eps=1e-6, var_clamp_grad="ignore", dtype=t)
        model = lk.gaussian_nll_error(x, y, **kw, stages=lk.GAUSSIAN_STAGES)
        xt, yt, vt = x.astype(t), y.astype(t), np.maximum(v.astype(t), t(1e-6))
        r = xt - yt
        loss = t(0.5) * (np.log(vt) + r**2 / vt)
        value = np.sum(loss, dtype=t) / t(loss.size)
        g = np.full(r.shape, t(1.0 / loss.size), t) * t(0.5)
        d_x = (g / vt) * (t(2) * r)
        d_v = g / vt + (-g * (r**2)) * (t(1) / (vt * vt))
        want = lk.gaussian_nll_grad(x, y, **kw)
        pairs = [(value, lk.gaussian_nll(x, y, **kw), "value"), (d_x, want["input"], "input")]
        misses += _check_parts(pairs + [(d_v, want["var"], "var")], model, dtype)
    assert misses > 3 or dtype == "bfloat16"


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_mape_slope_model_bounds_the_emulated_computation(dtype):
    """Keras' percentage error by reverse mode in the half dtype (TensorFlow's order: the
    quotient's slope in m as -(ct (y - x) / m) / m, which does not overflow)."""
    t, misses = HALF[dtype], 0
    for x, y in _residual_cases(seed=15, lo=-20, hi=20):
        y = np.where(np.abs(y) < 1, 1.0, y)  # no slope past float16's range (100 |r| / m^2)
        x, y = x.astype(t).astype(np.float64), y.astype(t).astype(np.float64)
        kw = dict(reduction="none", sample_axis="mean", denominator_eps=1e-7, dtype=t)
        model = reg.mean_absolute_percentage_error_error(x, y, **kw, stages=reg.MAPE_STAGES)
        xt, yt = x.astype(t), y.astype(t)
        a, m = yt - xt, np.maximum(np.abs(yt), t(1e-7))
        ct = np.full(a.shape, t(100.0) * t(1.0 / a.shape[-1]), t) * np.sign(a / m)
        ct_a, ct_m = ct / m, -((ct * a) / m) / m
        want = reg.mean_absolute_percentage_error_grad(x, y, **kw)
        pairs = [(-ct_a, want["input"], "input"), (ct_a + ct_m * np.sign(yt), want["target"], "target")]
        misses += _check_parts(pairs, model, dtype)
    assert misses > 10 or dtype == "bfloat16"
