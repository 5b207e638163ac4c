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


# ============================================================================ classification
# Models of reference/classification.py: Keras' categorical focal and generalized cross-entropies
# and optax's Poly-1 loss, each emulated op by op in the half dtype (forward, then the backward
# in autodiff's order), against the oracle and the model's bound.

from lossparity.reference import classification as cl  # noqa: E402


def _keras_focal_emulated(x, y, t, *, gamma, alpha, smoothing, from_logits, tie):
    """Keras' categorical_focal_crossentropy in dtype t, rows (N, C), and its autodiff: (loss,
    d/dx, d/dy), every op rounded to t; jnp.clip's tie ("split") or torch.clamp's ("pass")."""
    x, y = x.astype(t), y.astype(t)
    c = x.shape[-1]
    y0 = y
    if smoothing:
        y = y * t(1.0 - smoothing) + t(smoothing) / t(c)
    if from_logits:
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        p = e / np.sum(e, axis=-1, keepdims=True, dtype=t)
    else:
        p = x
    s = np.sum(p, axis=-1, keepdims=True, dtype=t)
    pre = p / s
    lo, hi = t(1e-7), t(1.0 - 1e-7)
    q = np.clip(pre, lo, hi)
    log_q = np.log(q)
    cce = -y * log_q
    m = t(1.0) - q
    f = np.power(m, t(gamma))
    a = t(alpha)
    w = f * a
    loss = np.sum(w * cce, axis=-1, dtype=t)
    # backward, cotangent 1 per row
    d_cce = w
    d_f = cce * a
    slope = (t(gamma) * np.power(m, t(gamma - 1.0))) if gamma else np.zeros_like(m)
    d_m = d_f * slope
    d_q = (d_cce * -y) / q - d_m
    inside = ((pre > lo) & (pre < hi)).astype(t)
    at = ((pre == lo) | (pre == hi)).astype(t)
    d_q = d_q * (inside + (t(0.5) if tie == "split" else t(1.0)) * at)
    d_p = d_q / s - np.sum(d_q * pre / s, axis=-1, keepdims=True, dtype=t)
    if from_logits:
        d_p = p * (d_p - np.sum(p * d_p, axis=-1, keepdims=True, dtype=t))
    d_y = -(d_cce * log_q)
    if smoothing:
        d_y = d_y * t(1.0 - smoothing)
    del y0
    return loss, d_p, d_y


def _check_bounded(actual, expected, scale, dtype):
    """_check where the model gives a bound; an element it leaves unbounded (an infinite scale:
    its rounding may reach a pole, such as (1 - q)^(gamma - 1) at q = 1) is left out and counted.
    (fits, the tolerance alone holds, some element was unbounded)."""
    actual, scale = actual.astype(np.float64), np.broadcast_to(scale, np.shape(expected))
    open_ = ~np.isfinite(scale) & np.isfinite(expected)
    ok, plain = _check(np.where(open_, expected, actual), expected, np.where(open_, 0.0, scale), dtype)
    return ok, plain, bool(open_.any())


@pytest.mark.parametrize("dtype", sorted(HALF))
@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_focal_model_bounds_keras(dtype, from_logits):
    t, plain_misses, unbounded, rng = HALF[dtype], 0, 0, np.random.default_rng(3)
    tie = "split"
    for x, y, labels in _cases(seed=4):
        gamma = float(rng.choice([2.0, 2.0, 0.0, 0.5, 1.0, 3.0]))
        alpha = float(rng.choice([0.25, 0.5, 1.0]))
        smoothing = float(rng.choice([0.0, 0.0, 0.1]))
        if rng.random() < 0.5:
            y = np.eye(x.shape[-1])[labels]
        if not from_logits:
            x = np.exp(x / 4)
            x = x / x.sum(axis=-1, keepdims=True)
        x = x.astype(t).astype(np.float64)
        y = y.astype(t).astype(np.float64)
        kw = dict(
            alpha=alpha,
            gamma=gamma,
            from_logits=from_logits,
            label_smoothing=smoothing,
            reduction="none",
            prob_eps=1e-7,
            renormalize="before_clip",
            clip_tie=tie,
            dtype=t,
        )
        model = cl.categorical_focal_cross_entropy_error(x, y, **kw, stages=cl.FOCAL_STAGES)
        exact = cl.categorical_focal_cross_entropy(x, y, **kw)
        grads = cl.categorical_focal_cross_entropy_grad(x, y, **kw)
        got = _keras_focal_emulated(
            x, y, t, gamma=gamma, alpha=alpha, smoothing=smoothing, from_logits=from_logits, tie=tie
        )
        for g, want, part in zip(got, (exact, grads["input"], grads["target"]), ("value", "input", "target")):
            ok, plain, open_ = _check_bounded(g, want, model[part], dtype)
            assert ok, (part, gamma, alpha, smoothing, x, y, g, want, model[part])
            plain_misses += not plain
            unbounded += open_
    assert plain_misses > 30 and unbounded < 200, (plain_misses, unbounded)


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_generalized_ce_model_bounds_keras(dtype):
    """Keras: (1 - power(p_y, q)) / q in t, q rounded to t; backward -(1/q) q p_y^(q-1)."""
    t, plain_misses, rng = HALF[dtype], 0, np.random.default_rng(5)
    for x, _, labels in _cases(seed=6):
        q = float(rng.choice([0.5, 0.1, 0.9, 0.7]))
        p = np.exp(x / 4)
        p = (p / p.sum(axis=-1, keepdims=True)).astype(t).astype(np.float64)
        model = cl.categorical_generalized_cross_entropy_error(p, labels, q=q, reduction="none", dtype=t)
        exact = cl.categorical_generalized_cross_entropy(p, labels, q=q, reduction="none")
        want = cl.categorical_generalized_cross_entropy_grad(p, labels, q=q, reduction="none")["input"]
        p_y = np.take_along_axis(p.astype(t), labels[:, None], -1)[:, 0]
        value = (t(1.0) - np.power(p_y, t(q))) / t(q)
        slope = -(t(1.0) / t(q)) * (t(q) * np.power(p_y, t(q) - t(1.0)))
        grad = np.where(np.eye(p.shape[-1], dtype=bool)[labels], slope[:, None], t(0.0))
        for got, expected, part in ((value, exact, "value"), (grad, want, "input")):
            ok, plain, _ = _check_bounded(got, expected, model[part], dtype)
            assert ok, (part, q, p, labels)
            plain_misses += not plain
    assert plain_misses > 10, plain_misses


def test_generalized_ce_model_leaves_a_cancelled_value_unbounded():
    """q = 1e-6 in float16: p^q rounds to 1 and the loss to 0, every digit cancelled: no bound."""
    model = cl.categorical_generalized_cross_entropy_error(
        np.array([[0.7, 0.3]]), np.array([0]), q=1e-6, reduction="none", dtype=np.float16
    )
    assert np.isinf(model["value"]).all()


# ============================================================================ classification (2)
# Models of reference/classification.py added after the focal and generalized ones: optax's
# Poly-1 loss, emulated op by op in the half dtype (forward, then autodiff's backward).


def _optax_poly_emulated(x, y, t, epsilon):
    """optax.losses.poly_loss_cross_entropy in dtype t, rows (N, C), and its autodiff from a
    cotangent of 1 per row: (loss, d/dx, d/dy), every op rounded to t."""
    x, y = x.astype(t), y.astype(t)
    eps = t(epsilon)
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    p = e / np.sum(e, axis=-1, keepdims=True, dtype=t)
    one_minus = t(1.0) - p
    poly = np.sum(y * one_minus, axis=-1, dtype=t)
    total = np.sum(np.exp(shifted), axis=-1, keepdims=True, dtype=t)
    logp = shifted - np.log(total)
    ce = -np.sum(y * logp, axis=-1, dtype=t)
    loss = ce + eps * poly
    d_poly = eps
    d_p = -(d_poly * y)
    d_logp = -y
    d_s = d_logp + e * (-np.sum(d_logp, axis=-1, keepdims=True, dtype=t) / total)
    c = p * d_p
    d_x = (c - p * np.sum(c, axis=-1, keepdims=True, dtype=t)) + d_s
    d_y = d_poly * one_minus + t(-1.0) * logp
    return loss, d_x, d_y


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_poly_loss_model_bounds_optax(dtype):
    t, plain_misses, rng = HALF[dtype], 0, np.random.default_rng(7)
    for x, y, labels in _cases(seed=8):
        epsilon = float(rng.choice([2.0, 2.0, -1.0, 0.0, 1.0, 5.0]))
        if rng.random() < 0.5:
            y = np.eye(x.shape[-1])[labels]
        x, y = x.astype(t).astype(np.float64), y.astype(t).astype(np.float64)
        kw = dict(epsilon=epsilon, reduction="none")
        model = cl.poly_loss_cross_entropy_error(x, y, **kw, dtype=t, stages=cl.POLY_STAGES)
        exact = cl.poly_loss_cross_entropy(x, y, **kw)
        grads = cl.poly_loss_cross_entropy_grad(x, y, **kw)
        got = _optax_poly_emulated(x, y, t, epsilon)
        for g, want, part in zip(got, (exact, grads["input"], grads["target"]), ("value", "input", "target")):
            ok, plain, open_ = _check_bounded(g, want, model[part], dtype)
            assert ok and not open_, (part, epsilon, x, y, g, want, model[part])
            plain_misses += not plain
    assert plain_misses > 30, plain_misses


def test_poly_loss_model_is_not_vacuous():
    """The bound is a few tens of u relative (float16 logits), and rejects a halved slope."""
    x, y = np.array([[1.0, -0.5, 2.0]]), np.array([[0.0, 0.0, 1.0]])
    model = cl.poly_loss_cross_entropy_error(x, y, reduction="none", dtype=np.float16, stages=cl.POLY_STAGES)
    exact = cl.poly_loss_cross_entropy(x, y, reduction="none")
    grads = cl.poly_loss_cross_entropy_grad(x, y, reduction="none")
    assert np.all(model["value"] < 40 * np.abs(exact))
    # the target class's slope (1 + eps p_t)(p_t - 1) + ... sums terms of order 1 to 0.74
    assert np.all(model["input"] < 64 * np.max(np.abs(grads["input"])))
    assert (
        within_rounding(grads["input"] / 2, grads["input"], model["input"], TOLERANCES["float16"], "float16", ("s",))
        is None
    )


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_sparsemax_loss_model_bounds_optax(dtype):
    """optax.losses.sparsemax_loss: jax.nn.sparse_plus(where(y, -x, x)), (z + 1)**2 / 4 in t,
    and its autodiff (g / 4) (2 (z + 1)), every op rounded; scores around the joints at +-1."""
    t, plain_misses, rng = HALF[dtype], 0, np.random.default_rng(9)
    for _ in range(300):
        x = rng.uniform(-3, 3, (int(rng.integers(8, 33)),)).astype(t).astype(np.float64)
        y = rng.integers(0, 2, x.shape).astype(np.float64)
        model = cl.sparsemax_loss_error(x, y, reduction="none", dtype=t, stages=cl.SPARSE_PLUS_STAGES)
        exact = cl.sparsemax_loss(x, y, reduction="none")
        want = cl.sparsemax_loss_grad(x, y, reduction="none")["input"]
        z = np.where(y != 0, -x, x).astype(t)
        s = z + t(1.0)
        value = np.where(z <= -1, t(0.0), np.where(z >= 1, z, (s * s) / t(4.0)))
        slope = np.where(z <= -1, t(0.0), np.where(z >= 1, t(1.0), (t(1.0) / t(4.0)) * (s * t(2.0))))
        grad = np.where(y != 0, -slope, slope)
        for got, expected, part in ((value, exact, "value"), (grad, want, "input")):
            ok, plain, open_ = _check_bounded(got, expected, model[part], dtype)
            assert ok and not open_, (part, x, y, got, expected, model[part])
            plain_misses += not plain
    # bfloat16's tolerance already spans these three roundings; float16's does not
    assert plain_misses > (2 if dtype == "float16" else -1), plain_misses


def _optax_sigmoid_focal_emulated(x, y, t, gamma, alpha):
    """optax.losses.sigmoid_focal_loss's value in dtype t, every op rounded: log-sigmoids by
    softplus = max(v, 0) + log1p(exp(-|v|)), the b-weighted logsumexp, exp(gamma l), products."""
    x, y = x.astype(t), y.astype(t)

    def softplus(v):
        return np.maximum(v, t(0.0)) + np.log1p(np.exp(-np.abs(v)))

    log_p, log_q = -softplus(-x), -softplus(x)
    ce = (-y) * log_p - (t(1.0) - y) * log_q
    a = np.stack([log_p, log_q], -1)
    b = np.stack([t(1.0) - y, y], -1)
    a = np.where(b != 0, a, t(-np.inf))
    top = a.max(-1, keepdims=True)
    lomp = np.log(np.sum(np.exp(a - top) * b, axis=-1, dtype=t)) + top[..., 0]
    loss = ce * np.exp(t(gamma) * lomp)
    if alpha is not None:
        loss = (t(alpha) * y + (t(1.0) - t(alpha)) * (t(1.0) - y)) * loss
    return loss


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_sigmoid_focal_value_model_bounds_optax(dtype):
    t, plain_misses, rng = HALF[dtype], 0, np.random.default_rng(11)
    for _ in range(300):
        shape = (int(rng.integers(1, 9)),)
        x = rng.uniform(-20, 20, shape).astype(t).astype(np.float64)
        y = (rng.integers(0, 2, shape) if rng.random() < 0.5 else rng.uniform(0, 1, shape)).astype(t).astype(np.float64)
        gamma = float(rng.choice([2.0, 0.0, 0.5, 1.0, 3.0]))
        alpha = None if rng.random() < 0.5 else float(rng.choice([0.25, 0.5, 0.75, 0.0, 1.0]))
        kw = dict(apply_class_balancing=True, alpha=alpha, gamma=gamma, reduction="none")
        model = cl.binary_focal_cross_entropy_with_logits_error(x, y, **kw, dtype=t, stages=cl.SIGMOID_FOCAL_STAGES)
        exact = cl.binary_focal_cross_entropy_with_logits(x, y, **kw)
        with np.errstate(all="ignore"):
            got = _optax_sigmoid_focal_emulated(x, y, t, gamma, alpha)
        ok, plain, open_ = _check_bounded(got, exact, model["value"], dtype)
        assert ok, (x, y, gamma, alpha, got, exact, model["value"])
        plain_misses += not plain
    assert plain_misses > 5, plain_misses
    assert set(model) == {"value"}  # the gradients are held to the tolerance


def _keras_binary_focal_emulated(p, y, t, gamma, alpha, smoothing):
    """Keras' binary_focal_crossentropy on probabilities in dtype t (JAX backend), rows (N, C),
    mean over the last axis, and its autodiff from a cotangent of 1 per row, every op rounded:
    (loss, d/dp, d/dy)."""
    p, y = p.astype(t), y.astype(t)
    if smoothing:
        y = y * t(1.0 - smoothing) + t(0.5 * smoothing)
    lo, hi = t(1e-7), t(1.0 - 1e-7)
    o = np.clip(p, lo, hi)
    not_y = t(1.0) - y
    log_o, one_m_o = np.log(o), t(1.0) - o
    log_1mo = np.log(one_m_o)
    bce = -(y * log_o + not_y * log_1mo)
    one_m_p = t(1.0) - p
    m = t(1.0) - (y * p + not_y * one_m_p)
    f = np.power(m, t(gamma))
    fb = f * bce
    w = (y * t(alpha) + not_y * t(1.0 - alpha)) if alpha is not None else None
    loss = w * fb if w is not None else fb
    n = p.shape[-1]
    value = np.sum(loss, axis=-1, dtype=t) / t(n)
    g = np.full(p.shape, t(1.0 / n))
    d_fb = g * w if w is not None else g
    d_f, d_bce = d_fb * bce, d_fb * f
    slope = (np.power(m, t(gamma - 1.0)) * t(gamma)) if gamma else np.zeros_like(m)
    d_pt = -(d_f * slope)
    d_b = -d_bce
    d_o = (d_b * y) / o - (d_b * not_y) / one_m_o
    d_p = np.where((p >= lo) & (p <= hi), d_o, t(0.0)) + (d_pt * y - d_pt * not_y)
    d_y = (d_b * log_o - d_b * log_1mo) + (d_pt * p - d_pt * one_m_p)
    if w is not None:
        d_w = g * fb
        d_y = d_y + (d_w * t(alpha) - d_w * t(1.0 - alpha))
    if smoothing:
        d_y = d_y * t(1.0 - smoothing)
    return value, d_p, d_y


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_binary_focal_model_bounds_keras(dtype):
    t, plain_misses, unbounded, rng = HALF[dtype], 0, 0, np.random.default_rng(13)
    for _ in range(300):
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 5)))
        p = rng.uniform(0, 1, shape) ** float(rng.choice([1.0, 4.0]))
        if rng.random() < 0.3:
            p = 1.0 - p
        y = rng.integers(0, 2, shape) if rng.random() < 0.5 else rng.uniform(0, 1, shape)
        p, y = p.astype(t).astype(np.float64), y.astype(t).astype(np.float64)
        gamma = float(rng.choice([2.0, 0.0, 0.5, 1.0, 3.0]))
        alpha = None if rng.random() < 0.5 else float(rng.choice([0.25, 0.5, 0.75]))
        smoothing = float(rng.choice([0.0, 0.0, 0.1]))
        kw = dict(
            apply_class_balancing=alpha is not None,
            alpha=alpha,
            gamma=gamma,
            label_smoothing=smoothing,
            reduction="none",
            prob_eps=1e-7,
            sample_axis="mean",
            dtype=t,
        )
        model = cl.binary_focal_cross_entropy_error(p, y, **kw, stages=cl.BINARY_FOCAL_STAGES)
        exact = cl.binary_focal_cross_entropy(p, y, **kw)
        grads = cl.binary_focal_cross_entropy_grad(p, y, **kw)
        with np.errstate(all="ignore"):
            got = _keras_binary_focal_emulated(p, y, t, gamma, alpha, smoothing)
        for g, want, part in zip(got, (exact, grads["input"], grads["target"]), ("value", "input", "target")):
            if not np.all(np.isfinite(want)) or not np.all(np.isfinite(np.asarray(g, np.float64))):
                continue  # 1 - 1e-7 rounds to 1 in half precision: log(0) (the entries' nonfinite)
            ok, plain, open_ = _check_bounded(g, want, model[part], dtype)
            assert ok, (part, p, y, gamma, alpha, smoothing, g, want, model[part])
            plain_misses += not plain
            unbounded += open_
    assert plain_misses > 30 and unbounded < 300, (plain_misses, unbounded)
