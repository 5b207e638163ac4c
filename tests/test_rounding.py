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


def test_an_element_the_model_leaves_unbounded_is_held_to_the_tolerance():
    """An infinite scale (the model cannot bound the element) neither excuses nor condemns it:
    within the tolerance it is fine, past it the part is not consistent with the model."""
    expected, scale = np.array([0.5, 4.0]), np.array([8.0, np.inf])
    tol = TOLERANCES["float16"]
    inside = expected + [2.0**-10, 2.0**-9]  # the second within 0.001 * 4
    assert within_rounding(inside, expected, scale, tol, "float16", ("s",)) is not None
    past = expected + [2.0**-10, 0.01]
    assert within_rounding(past, expected, scale, tol, "float16", ("s",)) is None


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


def test_torch_cross_entropy_declares_the_stored_log_softmax():
    """PyTorch's CPU softmax kernels accumulate half precision in float and store the result in
    the input's dtype: "stored_log_softmax", never the whole algorithm in half. (Its binary
    cross-entropy kernels compute in scalar_t: test_torch_bce_computes_in_half.)"""
    torch_ce = [
        b for b in all_bindings() if b.framework == "torch" and "cross_entropy" in b.id and "binary" not in b.spec
    ]
    assert torch_ce and all(b.stages == ("stored_log_softmax",) for b in torch_ce)


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_stored_log_softmax_model_bounds_torchs_computation(dtype):
    """torch.log_softmax of a half tensor on CPU: float accumulation, one rounding to the dtype;
    then -sum(y * log_prob) in the dtype, and the backward exp(out) * sum(g) - ... from the
    stored output. The whole-half model would also hold; this one is tighter, and still needed."""
    t, plain_misses = HALF[dtype], 0
    for x, y, _ in _cases(seed=7):
        x = x.astype(t).astype(np.float64)
        y = y.astype(t).astype(np.float64)
        model = ce.softmax_cross_entropy_soft_error(x, y, reduction="none", stages=("stored_log_softmax",))
        full = ce.softmax_cross_entropy_soft_error(x, y, reduction="none", stages=("log_softmax",))
        ls = ce.log_softmax(x.astype(np.float32).astype(np.float64)).astype(np.float32).astype(t)
        yt = y.astype(t)
        value = -np.sum(yt * ls, axis=-1, dtype=t)
        grad_x = np.exp(ls) * np.sum(yt, axis=-1, keepdims=True, dtype=t) - yt
        exact = ce.softmax_cross_entropy_soft(x, y, reduction="none")
        grads = ce.softmax_cross_entropy_soft_grad(x, y, reduction="none")
        for got, want, part in (
            (value, exact, "value"),
            (grad_x, grads["input"], "input"),
            (-ls, grads["target"], "target"),
        ):
            ok, plain = _check(got.astype(np.float64), want, model[part], dtype)
            assert ok, (part, x, y)
            assert np.all(model[part] <= full[part] + 1e-12)  # tighter than the whole-half model
            plain_misses += not plain
    assert plain_misses > 20


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
    with np.errstate(over="ignore"):  # left out: the expectation as the dtype holds it (inf past its range)
        held = np.asarray(expected).astype(HALF[dtype]).astype(np.float64)
    ok, plain = _check(np.where(open_, held, actual), expected, np.where(open_, 0.0, scale), dtype)
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


# ============================================================================ ctc (h-ctc)
# optax.losses.ctc_loss under jax_enable_x64: jax.nn.log_softmax in the logits' dtype, the
# recursion in float64 (stage "log_softmax"); Keras: everything in float32 whatever the input
# ("float32 log_softmax", "float32 lattice").

from lossparity.conformance.families import ctc as ctc_family  # noqa: E402
from lossparity.reference import ctc  # noqa: E402


def _ctc_cases(n_cases, seed, scale=8.0):
    """Random CTC cases over the generator's menus: (x, target, input lengths, target lengths, blank)."""
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        n = int(rng.integers(1, 4))
        t, s = ctc_family.TS_MENU[int(rng.integers(len(ctc_family.TS_MENU)))]
        c = int(rng.choice(ctc_family.CTC_CLASSES))
        blank = int(rng.choice([0, c - 1]))
        x = rng.uniform(-scale, scale, (n, t, c))
        if rng.random() < 0.75:
            x = ctc_family._log_softmax(x)
        others = [k for k in range(c) if k != blank]
        target, tl, il = np.zeros((n, s), np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
        for i in range(n):
            labels = rng.choice(others, int(rng.integers(0, s + 1)))
            while ctc_family._needed(labels) > t:
                labels = labels[:-1]
            target[i, : len(labels)], tl[i] = labels, len(labels)
            il[i] = t if rng.random() < 0.7 else max(ctc_family._needed(labels), 1)
        yield x, target, il, tl, blank


def _emulated_ctc(x, target, il, tl, blank, ls_dtype, lattice_dtype):
    """Loss and d(sum loss)/dx of the forward-backward algorithm with the log_softmax (and its
    pullback) rounded to ``ls_dtype`` op by op and the recursion to ``lattice_dtype``: the
    lattice of reference/ctc.py, each state a logaddexp of its incoming edges in turn."""
    from lossparity.reference.ctc import _lattice

    t_ls, t_lat = ls_dtype, lattice_dtype
    xs = x.astype(t_ls)
    d = xs - xs.max(axis=-1, keepdims=True)
    e = np.exp(d)
    s_ = np.sum(e, axis=-1, keepdims=True, dtype=t_ls)
    lp = d - np.log(s_)
    losses, grads = np.zeros(x.shape[0]), np.zeros(x.shape)
    for i in range(x.shape[0]):
        (src, dst, cls, pen), init, final, _, _ = _lattice(tuple(int(v) for v in target[i, : tl[i]]), blank, None)
        lpi = lp[i, : il[i]].astype(t_lat)
        K, T = len(init), lpi.shape[0]
        alphas = [init.astype(t_lat)]
        with np.errstate(all="ignore"):
            for t in range(T):
                new = np.full(K, -np.inf, t_lat)
                for j in range(len(src)):
                    v = alphas[-1][src[j]] + pen[j] + lpi[t, cls[j]]
                    new[dst[j]] = np.logaddexp(new[dst[j]], v).astype(t_lat)
                alphas.append(new)
            log_z = alphas[-1][final[0]]
            for f in final[1:]:
                log_z = np.logaddexp(log_z, alphas[-1][f]).astype(t_lat)
            beta = np.full(K, -np.inf, t_lat)
            beta[final] = 0
            occ = np.zeros(lpi.shape, t_lat)
            for t in range(T - 1, -1, -1):
                nb = np.full(K, -np.inf, t_lat)
                for j in range(len(src)):
                    v = beta[dst[j]] + pen[j] + lpi[t, cls[j]]
                    occ[t, cls[j]] += np.exp(alphas[t][src[j]] + v - log_z).astype(t_lat)
                    nb[src[j]] = np.logaddexp(nb[src[j]], v).astype(t_lat)
                beta = nb
        losses[i] = -float(log_z)
        ct = (-occ).astype(t_ls)  # the cotangent enters the log_softmax's dtype
        total = np.sum(ct, axis=-1, keepdims=True, dtype=t_ls)
        grads[i, : il[i]] = ct + e[i, : il[i]] * (-total / s_[i, : il[i]])
    return losses, grads


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_ctc_log_softmax_model_bounds_optax_under_x64(dtype):
    """optax: log_softmax in the half dtype, the recursion in float64; 300 cases, value and
    gradient within the model, the tolerance alone failing many of them."""
    t, plain_misses, worst = HALF[dtype], 0, 0.0
    for x, target, il, tl, blank in _ctc_cases(300, seed=3):
        x = x.astype(t).astype(np.float64)
        kw = dict(input_lengths=il, target_lengths=tl, blank=blank, reduction="none", log_softmax_input=True)
        model = ctc.ctc_loss_error(x, target, **kw, dtype=t, stages=("log_softmax",))
        value, grad = _emulated_ctc(x, target, il, tl, blank, t, np.float64)
        exact, want = ctc.ctc_loss(x, target, **kw), ctc.ctc_loss_grad(x, target, **kw)["input"]
        for got, expected, part in ((value, exact, "value"), (grad, want, "input")):
            ok, plain = _check(got, expected, model[part], dtype)
            assert ok, (part, x, target, il, tl, blank)
            plain_misses += not plain
        # the float64 value's error stays within the entries' fixed bound (260 u, generated cases)
        worst = max(worst, float(np.max(np.abs(value - exact))) / unit_roundoff(dtype))
    assert plain_misses > 20 and worst < 260


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_ctc_float32_model_bounds_keras(dtype):
    """Keras: the logits cast to float32 (float64 ones too), log_softmax and recursion there."""
    plain_misses = 0
    for x, target, il, tl, blank in _ctc_cases(150, seed=4):
        x = x.astype(dtype).astype(np.float64)
        kw = dict(input_lengths=il, target_lengths=tl, blank=blank, reduction="none", log_softmax_input=True)
        model = ctc.ctc_loss_error(x, target, **kw, dtype=np.dtype(dtype), stages=ctc.CTC_STAGES[2:])
        value, grad = _emulated_ctc(x, target, il, tl, blank, np.float32, np.float32)
        exact, want = ctc.ctc_loss(x, target, **kw), ctc.ctc_loss_grad(x, target, **kw)["input"]
        tol = TOLERANCES[dtype]
        for got, expected, part in ((value, exact, "value"), (grad, want, "input")):
            got = got.astype(dtype).astype(np.float64)  # returned in the input's dtype
            fit = within_rounding(got, expected, model[part], tol, dtype, ("s",))
            assert fit is not None, (part, dtype, x, target, il, tl, blank)
            plain_misses += not np.all(np.abs(got - expected) <= tol.atol + tol.rtol * np.abs(expected))
    if dtype == "float64":
        assert plain_misses > 10  # float32 arithmetic fails float64's tolerance: the model is needed


def test_ctc_model_is_not_an_excuse():
    """A halved gradient, a NaN, a dropped frame stay outside the bound; no stage, no bound."""
    x = ctc_family._LP.astype(ml_dtypes.bfloat16).astype(np.float64)
    kw = dict(input_lengths=np.array([4, 3]), target_lengths=np.array([2, 1]), reduction="none", log_softmax_input=True)
    target = np.array([[1, 2], [2, 0]])
    model = ctc.ctc_loss_error(x, target, **kw, dtype=ml_dtypes.bfloat16, stages=("log_softmax",))
    exact, grad = ctc.ctc_loss(x, target, **kw), ctc.ctc_loss_grad(x, target, **kw)["input"]
    tol = TOLERANCES["bfloat16"]
    assert np.all(model["value"] < 40 * np.abs(exact))  # a few tens of u of the loss at most
    assert within_rounding(exact * 0.5, exact, model["value"], tol, "bfloat16", ("s",)) is None
    assert within_rounding(grad * 0.5, grad, model["input"], tol, "bfloat16", ("s",)) is None
    assert (
        within_rounding(np.where(grad == grad.max(), np.nan, grad), grad, model["input"], tol, "bfloat16", ("s",))
        is None
    )
    dropped = ctc.ctc_loss(x[:, :3], target, **{**kw, "input_lengths": np.array([3, 3])})
    assert within_rounding(dropped, exact, model["value"], tol, "bfloat16", ("s",)) is None
    none = ctc.ctc_loss_error(x, target, **kw, dtype=ml_dtypes.bfloat16, stages=())
    assert np.all(none["value"] == 0) and np.all(none["input"] == 0)


# ============================================================================ binary cross-entropy
# Emulations, every operation rounded to the dtype, of the algorithms the BCE bindings declare
# (conformance/families/crossentropy.py): Keras' clip + logs and PyTorch's BCE kernel on
# probabilities; on logits, the log_sigmoid form (optax, Keras on JAX: softplus = logaddexp,
# its slope exp(v - softplus(v))), TensorFlow's max/abs form and its autodiff, the weighted form,
# and PyTorch's kernel and backward.


def _binary_cases(n_cases=300, seed=3, logits=False):
    rng = np.random.default_rng(seed)
    for i in range(n_cases):
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 6)))
        if logits:
            x = rng.normal(0, float(rng.choice([1.0, 4.0, 12.0])), shape)
        else:
            x = np.clip(rng.beta(*rng.choice([0.3, 1.0, 3.0], 2), shape), 0.0, 1.0)
        y = rng.choice([0.0, 1.0], shape) if i % 2 else rng.uniform(0, 1, shape)
        yield x, y, ("none", "mean", "sum")[i % 3], (0.0, 0.1)[i % 5 == 0]


def _rounded(a, t):
    return np.asarray(a, np.float64).astype(t).astype(np.float64)


def _sample_mean(per, t, reduction):
    """Keras: mean over the last axis, then the reduction, each in t."""
    m = (np.sum(per, axis=-1, dtype=t) / t(per.shape[-1])).astype(t)
    return _reduce_in(m, t, reduction)


def _reduce_in(m, t, reduction):
    return {"none": m, "sum": np.sum(m, dtype=t), "mean": np.asarray(np.sum(m, dtype=t) / t(m.size), t)}[reduction]


def _cotangent(shape, t, reduction, sample):
    n = shape[-1] if sample else 1
    rows = int(np.prod(shape)) // n
    g = t(1.0) / t(n) if sample else t(1.0)
    if reduction == "mean":
        g = t(g / t(rows))
    return np.full(shape, g, t)


def _keras_bce_emulated(p, y, t, reduction, s):
    """Keras binary_crossentropy on probabilities (jnp.clip, log, log(1 - p)) and its VJP."""
    eps = t(1e-7)
    pt, yt = p.astype(t), y.astype(t)
    if s:
        yt = (yt * t(1.0 - s) + t(0.5 * s)).astype(t)
    q = np.clip(pt, eps, t(1.0 - 1e-7))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lp, lq = np.log(q), np.log(t(1) - q)
        per = -(yt * lp + (t(1) - yt) * lq)
        value = _sample_mean(per.astype(t), t, reduction)
        g = _cotangent(p.shape, t, reduction, True)
        d_q = -(g * yt) / q + (g * (t(1) - yt)) / (t(1) - q)
        inside = (pt > eps) & (pt < t(1.0 - 1e-7))
        d_p = np.where(inside, d_q, np.where((pt == eps) | (pt == t(1.0 - 1e-7)), d_q * t(0.5), t(0)))
        d_y = (-(g * lp) + g * lq) * t(1.0 - s)
    return value, d_p.astype(t), d_y.astype(t)


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_binary_probability_model_bounds_keras_bce(dtype):
    t, plain_misses, checked = HALF[dtype], 0, 0
    for p, y, reduction, s in _binary_cases():
        p, y = _rounded(p, t), _rounded(y, t)
        if np.any(p >= float(t(1.0 - 1e-7))):
            continue  # the upper bound rounds to 1: log(0), and Keras' 0 * -inf (a known deviation)
        kw = dict(label_smoothing=s, reduction=reduction, prob_eps=1e-7, sample_axis="mean", clip_tie="split", dtype=t)
        model = ce.binary_cross_entropy_error(p, y, **kw, stages=ce.BINARY_STAGES)
        want = {"value": ce.binary_cross_entropy(p, y, **kw), **ce.binary_cross_entropy_grad(p, y, **kw)}
        got = dict(zip(("value", "input", "target"), _keras_bce_emulated(p, y, t, reduction, s)))
        for part in ("value", "input", "target"):
            if np.any(np.abs(want[part]) > float(ml_dtypes.finfo(t).max)):
                continue  # past the dtype's range the expectation is its infinity: no rounding to bound
            ok, plain = _check(np.asarray(got[part], np.float64), want[part], model[part], dtype)
            assert ok, (part, p, y, reduction, s)
            checked += 1
            plain_misses += not plain
    assert checked > 600 and plain_misses > 20


def _torch_bce_emulated(p, y, t):
    """PyTorch's CPU kernel in scalar_t: (y - 1) max(log1p(-p), -100) - y max(log p, -100), its
    backward (p - y) / max((1 - p) p, EPSILON), and its target slope -log(p / (1 - p))."""
    pt, yt = p.astype(t), y.astype(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = np.maximum(np.log(pt.astype(np.float32)).astype(t), t(-100))
        lq = np.maximum(np.log1p(-pt.astype(np.float32)).astype(t), t(-100))
        value = ((yt - t(1)) * lq - yt * lp).astype(t)
        d_p = ((pt - yt) / np.maximum((t(1) - pt) * pt, t(1e-12))).astype(t)
        d_y = (-np.log((pt / (t(1) - pt)).astype(t).astype(np.float32))).astype(t)
    return value, d_p, d_y


def test_torch_bce_computes_in_half():
    """The declared stage: torch's float16 BCE and its backward equal the emulation above bit for bit."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p, y = rng.uniform(0.001, 0.999, 4000).astype(np.float16), rng.uniform(0, 1, 4000).astype(np.float16)
    pt = torch.tensor(p).requires_grad_()
    loss = torch.nn.functional.binary_cross_entropy(pt, torch.tensor(y), reduction="none")
    loss.sum().backward()
    yt = torch.tensor(y).requires_grad_()
    torch.nn.functional.binary_cross_entropy(pt.detach(), yt, reduction="none").sum().backward()
    value, d_p, d_y = _torch_bce_emulated(p, y, np.float16)
    assert np.array_equal(loss.detach().numpy(), value) and np.array_equal(pt.grad.numpy(), d_p)
    assert np.array_equal(yt.grad.numpy(), d_y)
    once = (y.astype(np.float32) - 1) * np.log1p(-p.astype(np.float32)) - y * np.log(p.astype(np.float32))
    assert not np.array_equal(once.astype(np.float16), value)  # a float32 computation differs


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_binary_probability_model_bounds_torch_bce(dtype):
    t, plain_misses = HALF[dtype], 0
    for p, y, _, _ in _binary_cases(seed=4):
        p, y = _rounded(np.clip(p, 0.01, 0.99), t), _rounded(y, t)
        if np.any((p <= 0) | (p >= 1)):
            continue
        kw = dict(reduction="none", log_min=-100.0, dtype=t)
        model = ce.binary_cross_entropy_error(p, y, **kw, stages=ce.BINARY_STAGES)
        value, d_p, d_y = _torch_bce_emulated(p, y, t)
        want = {"value": ce.binary_cross_entropy(p, y, **kw), **ce.binary_cross_entropy_grad(p, y, **kw)}
        for got, part in ((value, "value"), (d_p, "input"), (d_y, "target")):
            exp = want[part]
            ok, plain = _check(got.astype(np.float64), exp, model[part], dtype)
            assert ok, (part, p, y)
            plain_misses += not plain
    assert plain_misses > 5


def _softplus_t(v, t):
    """jnp.logaddexp(v, 0) in t: max(v, 0) + log1p(exp(-|v|))."""
    return (np.maximum(v, t(0)) + np.log1p(np.exp(-np.abs(v)))).astype(t)


def _log_sigmoid_emulated(x, y, t, reduction, sample):
    """optax.sigmoid_binary_cross_entropy / Keras on JAX: -y log_sigmoid(x) - (1-y) log_sigmoid(-x),
    log_sigmoid(x) = -softplus(-x); the VJP of softplus(v) is exp(v - softplus(v))."""
    xt, yt = x.astype(t), y.astype(t)
    ls_p, ls_n = -_softplus_t(-xt, t), -_softplus_t(xt, t)
    per = (-yt * ls_p - (t(1) - yt) * ls_n).astype(t)
    value = _sample_mean(per, t, reduction) if sample else _reduce_in(per, t, reduction)
    g = _cotangent(x.shape, t, reduction, sample)
    sig_n = np.exp(-xt - _softplus_t(-xt, t)).astype(t)  # d softplus(-x) / d(-x)
    sig_p = np.exp(xt - _softplus_t(xt, t)).astype(t)
    d_x = (-(g * yt) * sig_n + (g * (t(1) - yt)) * sig_p).astype(t)
    d_y = (-(g * ls_p) + g * ls_n).astype(t)
    return value, d_x, d_y


def _tf_sigmoid_emulated(x, y, t):
    """tf.nn.sigmoid_cross_entropy_with_logits and its autodiff (reduction none)."""
    xt, yt = x.astype(t), y.astype(t)
    cond = xt >= 0
    e = np.exp(np.where(cond, -xt, xt)).astype(t)
    value = ((np.where(cond, xt, t(0)) - xt * yt) + np.log1p(e)).astype(t)
    d_sp = (t(1) / (t(1) + e) * e).astype(t)  # log1p's VJP times exp's
    d_x = ((cond.astype(t) - yt) + np.where(cond, -d_sp, d_sp)).astype(t)
    return value, d_x, -xt


def _torch_logits_emulated(x, y, q, t):
    """PyTorch's binary_cross_entropy_with_logits (reduction none) and its input backward."""
    xt, yt, qt = x.astype(t), y.astype(t), q.astype(t)
    m = np.maximum(-xt, t(0))
    lw = ((qt - t(1)) * yt + t(1)).astype(t)
    soft = (np.log(np.exp(-m) + np.exp(-xt - m)) + m).astype(t)
    value = ((t(1) - yt) * xt + lw * soft).astype(t)
    sig = (t(1) / (t(1) + np.exp(-xt.astype(np.float32)))).astype(t)
    tq = (qt * yt).astype(t)
    d_x = (((tq + t(1)) - yt) * sig - tq).astype(t)
    return value, d_x


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_binary_logit_models_bound_the_emulated_algorithms(dtype):
    t = HALF[dtype]
    misses = {"log_sigmoid": 0, "tf": 0, "torch": 0}
    for x, y, reduction, _ in _binary_cases(logits=True):
        x, y = _rounded(x, t), _rounded(y, t)
        q = _rounded(np.random.default_rng(int(x.size)).uniform(0.25, 4, x.shape[-1]), t)
        kw = dict(reduction=reduction, sample_axis="mean")
        model = ce.binary_cross_entropy_with_logits_error(x, y, **kw, stages=("log_sigmoid",))
        want = {
            "value": ce.binary_cross_entropy_with_logits(x, y, **kw),
            **ce.binary_cross_entropy_with_logits_grad(x, y, **kw),
        }
        got = dict(zip(("value", "input", "target"), _log_sigmoid_emulated(x, y, t, reduction, True)))
        for part in got:
            ok, plain = _check(np.asarray(got[part], np.float64), want[part], model[part], dtype)
            assert ok, ("log_sigmoid", part, x, y, reduction)
            misses["log_sigmoid"] += not plain
        for name, (value, d_x, *d_y), kw in (
            ("tf", _tf_sigmoid_emulated(x, y, t), {}),
            ("torch", _torch_logits_emulated(x, y, q, t), {"pos_weight": q}),
        ):
            model = ce.binary_cross_entropy_with_logits_error(x, y, reduction="none", **kw, stages=("max_log1p_exp",))
            grads = ce.binary_cross_entropy_with_logits_grad(x, y, reduction="none", **kw)
            parts = [(value, ce.binary_cross_entropy_with_logits(x, y, reduction="none", **kw), "value")]
            parts += [(d_x, grads["input"], "input")] + [(d, grads["target"], "target") for d in d_y]
            for got_, want_, part in parts:
                ok, plain = _check(np.asarray(got_, np.float64), want_, model[part], dtype)
                assert ok, (name, part, x, y)
                misses[name] += not plain
    assert all(n > 10 for n in misses.values()), misses


def test_binary_models_are_not_vacuous():
    """Where nothing cancels the bound is a few tens of u of the result at most, and a halved
    slope, a NaN, a doubled loss stay outside it."""
    t, dtype = np.float16, "float16"
    p, y = np.array([[0.2, 0.7, 0.9]]), np.array([[1.0, 0.0, 1.0]])
    kw = dict(reduction="none", prob_eps=1e-7, sample_axis="mean", dtype=t)
    model = ce.binary_cross_entropy_error(p, y, **kw, stages=ce.BINARY_STAGES)
    want = {"value": ce.binary_cross_entropy(p, y, **kw), **ce.binary_cross_entropy_grad(p, y, **kw)}
    u = unit_roundoff(dtype)
    for part in ("value", "input", "target"):
        assert np.all(u * model[part] <= 40 * u * np.abs(want[part]) + 1e-12), part
        assert not _check(want[part] * 0.5, want[part], model[part], dtype)[0], part
        assert not _check(np.full_like(want[part], np.nan), want[part], model[part], dtype)[0], part
    x, y = np.array([-3.0, 0.5, 4.0]), np.array([0.0, 1.0, 1.0])
    for stage in ce.BINARY_LOGIT_STAGES:
        model = ce.binary_cross_entropy_with_logits_error(x, y, reduction="none", stages=(stage,))
        want = ce.binary_cross_entropy_with_logits_grad(x, y, reduction="none")["input"]
        assert not _check(want * 0.5, want, model["input"], dtype)[0], stage
        value = ce.binary_cross_entropy_with_logits(x, y, reduction="none")
        assert not _check(value * 2, value, model["value"], dtype)[0], stage


def test_keras_torch_backend_bce_inherits_torch_clamp_and_check():
    """Keras' torch backend clips, then calls torch's binary_cross_entropy
    (keras/src/backend/torch/nn.py): in half precision p = 1 passes the clip (1 - 1e-7 rounds to
    1) and torch clamps log(1 - p) at -100; a NaN probability fails torch's domain check. The
    binding declares both, and the oracle under them gives torch's numbers."""
    torch = pytest.importorskip("torch")
    binding = next(b for b in all_bindings() if b.key == "binary_cross_entropy:keras.losses.binary_crossentropy[torch]")
    assert binding.conventions["log_min"] == -100.0 and binding.conventions["prob_domain"] == "RuntimeError"
    p, y = np.array([1.0, 0.25]), np.array([0.0, 1.0])
    kw = {k: v for k, v in binding.conventions.items() if k != "sample_axis"}
    want = ce.binary_cross_entropy(p, y, reduction="none", dtype=np.float16, **kw)
    clipped = torch.clip(torch.tensor(p, dtype=torch.float16), 1e-7, 1.0 - 1e-7)
    got = torch.nn.functional.binary_cross_entropy(clipped, torch.tensor(y, dtype=torch.float16), reduction="none")
    assert np.allclose(got.double().numpy(), want, rtol=2e-3) and want[0] == 100.0
    with pytest.raises(RuntimeError):
        torch.nn.functional.binary_cross_entropy(torch.tensor([float("nan")]), torch.tensor([1.0]))


# ============================================================================ family: kl
# Keras' kl_divergence on probabilities: clip y and p into [1e-7, 1], then
# sum(y * log(y / p), axis=-1) in the inputs' dtype (keras/src/losses/losses.py), and the
# backward of that graph as JAX differentiates it (and torch / TensorFlow: (y / p) / p).

from lossparity.reference import kl  # noqa: E402


def _kl_cases(t, n_cases=300, seed=3):
    """(p, y) rounded to t: Dirichlet rows, some with exact 0s and 1s, some with p near y, p kept above 2^-7 in
    float16 (below 2^-8, 1 / p^2 overflows in JAX's backward: not a rounding)."""
    rng = np.random.default_rng(seed)
    floor = 2.0**-7 if t is np.float16 else 1e-6
    for _ in range(n_cases):
        n, c = int(rng.integers(1, 5)), int(rng.integers(1, 9))
        p = rng.dirichlet(np.full(c, float(rng.choice([0.3, 1.0, 5.0]))), n)
        y = rng.dirichlet(np.full(c, float(rng.choice([0.2, 1.0, 5.0]))), n)
        if rng.random() < 0.2:  # one-hot targets: y = 1 on the clip's upper bound, 0 below it
            y = np.eye(c)[rng.integers(0, c, n)]
        elif rng.random() < 0.4:  # p near y: a small KL of terms that cancel
            p = y * rng.uniform(0.8, 1.25, y.shape)
            p = p / p.sum(axis=-1, keepdims=True)
        p = np.maximum(p, floor)
        yield p.astype(t).astype(np.float64), y.astype(t).astype(np.float64)


def _emulated_keras_kl(p, y, t, eps, backward):
    """Value and gradients (cotangent 1 per sample) of Keras' kl_divergence in dtype t, every
    operation rounded to t, the sum sequential (the worst order); ``backward`` "jax" or "torch"."""
    lo, one, g = t(eps), t(1), t(1)
    # (np.clip of ml_dtypes' bfloat16 returns float32: the clip is exact, so cast it back)
    pc, yc = np.clip(p.astype(t), lo, one).astype(t), np.clip(y.astype(t), lo, one).astype(t)
    r = yc / pc
    log_r = np.log(r)
    terms = yc * log_r
    value = np.zeros(terms.shape[:-1], t)
    for k in range(terms.shape[-1]):
        value = (value + terms[..., k]).astype(t)
    d_r = (yc * g) / r
    if backward == "jax":
        d_p = -((d_r * (one / (pc * pc))) * yc)
    else:
        d_p = -(d_r * ((yc / pc) / pc))
    d_y = g * log_r + d_r / pc

    def through_clip(x, x_c, grad):  # jnp.clip: half at a bound; torch.clip: whole
        at = (x == x_c) & ((x == lo) | (x == one))
        grad = np.where(at & (backward == "jax"), grad * t(0.5), grad)
        return np.where(x.astype(t) == x_c, grad, t(0))

    return value, through_clip(p.astype(t), pc, d_p), through_clip(y.astype(t), yc, d_y)


@pytest.mark.parametrize("dtype", sorted(HALF))
@pytest.mark.parametrize("backward", ["jax", "torch"])
def test_kl_log_ratio_model_bounds_keras_kl_divergence(dtype, backward):
    t, eps, checked, plain_misses = HALF[dtype], 1e-7, 0, 0
    kw = dict(reduction="none", prob_eps=eps, dtype=t, clip_tie="split" if backward == "jax" else "pass")
    for p, y in _kl_cases(t):
        model = kl.kl_div_probs_error(p, y, **kw, stages=kl.KL_STAGES)
        exact = kl.kl_div_probs(p, y, **kw)
        grads = kl.kl_div_probs_grad(p, y, **kw)
        value, d_p, d_y = _emulated_keras_kl(p, y, t, eps, backward)
        for got, want, part in (
            (value, exact, "value"),
            (d_p, grads["input"], "input"),
            (d_y, grads["target"], "target"),
        ):
            ok, plain = _check(got.astype(np.float64), want, model[part], dtype)
            assert ok, (part, p, y, got, want)
            checked += 1
            plain_misses += not plain
    assert checked == 900 and plain_misses > 30  # the tolerance alone fails many of them


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_kl_log_ratio_model_is_tight_and_rejects_what_rounding_cannot_do(dtype):
    """A few tens of u relative to the value at most (not vacuous); a halved slope, the whole
    slope at a split tie, NaN and an overflow's inf stay outside the bound."""
    t = HALF[dtype]
    p, y = np.array([[0.25, 0.375, 0.375], [0.5, 0.25, 0.25]]), np.array([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]])
    kw = dict(reduction="none", prob_eps=1e-7, dtype=t, clip_tie="split")
    model = kl.kl_div_probs_error(p, y, **kw)
    exact, grads = kl.kl_div_probs(p, y, **kw), kl.kl_div_probs_grad(p, y, **kw)
    assert np.all(model["value"] * unit_roundoff(t) <= 60 * unit_roundoff(t) * np.abs(exact) + 1e-6)
    assert np.all(model["input"] <= 40 * np.abs(grads["input"]) + 1e-3)
    for part in ("input", "target"):
        want = grads[part]
        for bad in (want * 0.5, want * 2, np.where(want == want.flat[0], np.nan, want)):
            assert _check(bad, want, model[part], dtype)[0] is False, (part, bad)
    # y = 1 sits on the upper bound: the whole slope is twice the split one, and outside the bound
    whole = kl.kl_div_probs_grad(p, y, **dict(kw, clip_tie="pass"))["target"]
    assert whole[1, 0] == 2 * grads["target"][1, 0] and not _check(whole, grads["target"], model["target"], dtype)[0]
    inf = exact.copy()
    inf[0] = np.inf
    assert not _check(inf, exact, model["value"], dtype)[0]


def test_kl_div_probs_clip_tie_split_halves_the_slope_at_the_bound_one_only():
    """Keras on JAX clips with jnp.clip (clip_tie="split"): a target or prediction of exactly 1
    sits on the upper bound 1 in every dtype, and gets half its slope; inside, the whole."""
    p, y = np.array([[0.5, 0.5], [1.0, 0.0]]), np.array([[0.0, 1.0], [0.5, 0.5]])
    kw = dict(reduction="none", prob_eps=1e-7, dtype=np.float32)
    whole, split = kl.kl_div_probs_grad(p, y, **kw), kl.kl_div_probs_grad(p, y, **kw, clip_tie="split")
    assert split["target"][0, 1] == 0.5 * whole["target"][0, 1] == 0.5 * (1 + np.log(2))  # edge-zero-target
    assert split["input"][1, 0] == 0.5 * whole["input"][1, 0] == -0.25  # edge-zero-prediction
    assert split["input"][1, 1] == whole["input"][1, 1] == 0.0  # p = 0 is below eps: no slope either way
    np.testing.assert_array_equal(split["input"][0], whole["input"][0])
    np.testing.assert_array_equal(kl.kl_div_probs(p, y, **kw, clip_tie="split"), kl.kl_div_probs(p, y, **kw))


TORCH_KL = {"float16": "float16", "bfloat16": "bfloat16", "float32": "float32"}


def _torch_kl_div(x, t, dtype, **kw):
    """torch.nn.functional.kl_div in ``dtype`` (a name): value and the gradients (input, target)."""
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, dtype=getattr(torch, dtype)).requires_grad_()
    tt = torch.tensor(t, dtype=getattr(torch, dtype)).requires_grad_()
    out = torch.nn.functional.kl_div(xt, tt, **kw)
    out.sum().backward()
    f64 = lambda a: a.detach().to(torch.float64).numpy()  # noqa: E731
    return f64(out), f64(xt.grad), f64(tt.grad)


def _kl_div_cases(dtype, n_cases=150, seed=7):
    """(log q, p or log p, kw): rows of C probabilities rounded to the dtype, some of them
    subnormal in float32 (the (g t) / t underflow), every reduction, log_target both ways."""
    rng = np.random.default_rng(seed)
    t = HALF.get(dtype, np.float32)
    for i in range(n_cases):
        n, c = int(rng.integers(1, 4)), int(rng.integers(2, 7))
        q = rng.dirichlet(np.full(c, 1.0), n)
        p = np.where(rng.random((n, c)) < 0.8, q * np.exp(rng.normal(0, 0.05, (n, c))), rng.dirichlet(np.ones(c), n))
        if dtype == "float32" and i % 3 == 0:  # a subnormal target: 1 to 7 times 2^-149
            p[0, 0] = int(rng.integers(1, 8)) * 2.0**-149
        log_target = bool(i % 4 == 3)
        kw = {
            "reduction": ["mean", "sum", "batchmean", "none"][i % 4 if not log_target else i % 3],
            "log_target": log_target,
        }
        x = np.log(q).astype(t).astype(np.float64)
        target = (np.log(p) if log_target else p).astype(t).astype(np.float64)
        yield x, target, kw


@pytest.mark.parametrize("dtype", sorted(TORCH_KL))
def test_kl_div_terms_model_bounds_torch_kl_div(dtype):
    """torch's kl_div (xlogy(t, t) - t x, exp(t) (t - x)) and its autograd backward, run in the
    dtype, stay within kl_div_error's bound of the float64 oracle; the tolerance alone fails many."""
    t, plain_misses, checked = HALF.get(dtype, np.float32), 0, 0
    for x, target, kw in _kl_div_cases(dtype):
        model = kl.kl_div_error(x, target, **kw, dtype=t, stages=kl.KL_DIV_STAGES)
        want = {"value": kl.kl_div(x, target, **kw, dtype=t), **kl.kl_div_grad(x, target, **kw, dtype=t)}
        for got, part in zip(_torch_kl_div(x, target, dtype, **kw), ("value", "input", "target")):
            ok, plain = _check(got, want[part], model[part], dtype)
            assert ok, (part, x, target, kw, got, want[part])
            checked += 1
            plain_misses += not plain
    assert checked == 450 and plain_misses > 10, plain_misses


@pytest.mark.parametrize(("dtype", "tiny"), [("float32", 3 * 2.0**-149), ("float16", 2.0**-23)])
def test_kl_div_terms_model_derives_the_subnormal_target_underflow(dtype, tiny):
    """'mean' over 4 (g = 0.25): g t underflows for a subnormal t (float32 3 * 2^-149, gen-0-b0-11;
    float16 2^-23, gen-0-b0-57, where g t = 2^-25 ties to 0 and the whole g is lost), so torch's
    d/d target misses the tolerance; the model's h / t term bounds it, and only it: without that
    term the bound is a few u of the slope."""
    t = HALF.get(dtype, np.float32)
    x = np.log(np.array([0.25, 0.25, 0.25, 0.25])).astype(t).astype(np.float64)
    target = np.array([tiny, 0.5, 0.25, 0.25])
    kw = {"reduction": "mean", "log_target": False}
    _, _, d_t = _torch_kl_div(x, target, dtype, **kw)
    want = kl.kl_div_grad(x, target, **kw)["target"]
    model = kl.kl_div_error(x, target, **kw, dtype=t)["target"]
    assert _check(d_t, want, model, dtype) == (True, False)
    normal_only = model.copy()
    normal_only[0] = 0.25 * (5 * abs(np.log(target[0])) + 5 + 4 * abs(x[0]))  # no h / t
    assert _check(d_t, want, normal_only, dtype)[0] is False


def test_kl_div_terms_model_is_not_an_excuse():
    """What rounding cannot do stays a deviation: the zero target's NaN slope (its part fails the
    model whatever its other elements do; torch-kl-div-zero-target-gradient explains it), a slope
    without xlogy's t / t term (g short by one cotangent), a doubled value; and the bound is a few
    tens of u of the terms, not a blanket."""
    x = np.log(np.array([[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]]))
    target = np.array([[0.0, 0.5, 0.5], [0.25, 0.25, 0.5]])
    for dtype in ("float16", "float32"):
        t = HALF.get(dtype, np.float32)
        xd, td = x.astype(t).astype(np.float64), target.astype(t).astype(np.float64)
        kw = {"reduction": "sum", "log_target": False}
        value, _, d_t = _torch_kl_div(xd, td, dtype, **kw)
        model = kl.kl_div_error(xd, td, **kw, dtype=t)
        want = kl.kl_div_grad(xd, td, **kw)["target"]
        assert np.isnan(d_t[0, 0]) and want[0, 0] == -np.inf
        assert _check(d_t, want, model["target"], dtype)[0] is False
        rest = (slice(1, None),)
        assert _check(d_t[rest], want[rest], model["target"][rest], dtype)[0] is True
        assert _check(want[rest] - 1.0, want[rest], model["target"][rest], dtype)[0] is False  # no t / t term
        exact = kl.kl_div(xd, td, **kw)
        assert _check(2 * exact, exact, model["value"], dtype)[0] is False
        assert model["value"] <= 60 * np.sum(
            np.abs(td * (np.log(np.where(td > 0, td, 1)) - xd))
        ) + 1e-3 / unit_roundoff(t)


@pytest.mark.parametrize(("zero", "verdict"), [(True, "deviate"), (False, "conform")])
def test_a_torch_kl_div_part_the_model_does_not_explain_still_deviates(tmp_path, zero, verdict):
    """Through the runner (``lossparity explain``, no known entries): float32, a subnormal target
    beside a zero one (gen-0-b0-11's shape). The subnormal's underflow is within kl_div_error,
    so without the zero target the part conforms by the model; the zero target's NaN is past any
    rounding, and the part deviates (the registry's torch-kl-div-zero-target-gradient explains it)."""
    import json
    import subprocess
    import sys

    pytest.importorskip("torch")
    empty = tmp_path / "none.toml"
    empty.write_text("")
    target = [0.0 if zero else 0.25, 2.0**-149, 0.5, 0.25]
    argv = [sys.executable, "-m", "lossparity", "explain", "torch.nn.functional.kl_div", "--dtype", "float32"]
    argv += ["--input", str([float(np.log(np.float32(0.25)))] * 4), "--target", str(target), "--grad", "--json"]
    done = subprocess.run([*argv, "--known", str(empty)], capture_output=True, text=True, check=True)
    (shown,) = json.loads(done.stdout)["bindings"]
    part = shown["gradients"]["target"]
    assert part["verdict"] == verdict and shown["verdict"] == verdict
    assert ("rounding" in part["errors"]) is not zero  # the model fits the part only without the NaN


def test_torch_kl_div_declares_its_terms_and_optax_does_not():
    """The model is PyTorch's order of operations: optax's kl_divergence computes
    targets * (log(targets) - log_predictions) and sums it per row, another computation."""
    stages = {b.id: b.stages for b in all_bindings() if b.spec == "kl_div"}
    assert stages["torch.nn.functional.kl_div"] == stages["torch.nn.KLDivLoss"] == kl.KL_DIV_STAGES
    assert all(not s for name, s in stages.items() if name.startswith("optax"))


def test_zero_term_slope_zero_is_what_torch_distributions_differentiates():
    """torch.distributions' KL of categoricals writes the p = 0 term as t[p == 0] = 0: its slope
    in p is 0 there (zero_term_slope="zero"), pulled back through p / sum(p); the plain slope
    is the one-sided limit, log(eps) + ... with torch's clamp. Elsewhere both agree."""
    torch = pytest.importorskip("torch")
    from lossparity.reference import information as info

    q, p = np.array([[0.5, 0.5], [0.25, 0.75]]), np.array([[1.0, 0.0], [0.5, 0.5]])
    kw = dict(renormalize="before", prob_eps="finfo", dtype=np.float64)
    plain, zero = info.kl_divergence_grad(q, p, **kw), info.kl_divergence_grad(q, p, **kw, zero_term_slope="zero")
    tp = torch.tensor(p, requires_grad=True)
    tq = torch.tensor(q, requires_grad=True)
    kl_t = torch.distributions.kl.kl_divergence(
        torch.distributions.Categorical(probs=tp), torch.distributions.Categorical(probs=tq)
    )
    kl_t.sum().backward()
    np.testing.assert_allclose(tp.grad.numpy(), zero["target"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tq.grad.numpy(), zero["input"], rtol=1e-12, atol=1e-12)
    assert abs(zero["target"][0, 1] - plain["target"][0, 1]) > 30  # the cut log(eps) - log q term
    np.testing.assert_array_equal(zero["target"][1], plain["target"][1])
    np.testing.assert_array_equal(
        info.kl_divergence(q, p, **kw, zero_term_slope="zero"), info.kl_divergence(q, p, **kw)
    )


# ============================================================================ family: information
# torch.distributions.Categorical(probs=p).entropy(): q = p / p.sum(-1), l = log(q.clamp(eps, 1 - eps))
# (eps the dtype's machine epsilon), -(l * q).sum(-1), and torch's autograd of it, every op in
# the dtype; jax.scipy.special.entr(x).sum(-1): -x log x and its JVP -(log x + 1).

from lossparity.reference import information as info  # noqa: E402


def _entropy_cases(t, n_cases=300, seed=5):
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        n, c = int(rng.integers(1, 4)), int(rng.integers(2, 8))
        p = rng.dirichlet(np.full(c, float(rng.choice([0.3, 1.0, 5.0]))), n)
        if rng.random() < 0.3:
            p = p * rng.uniform(0.5, 2.0, (n, 1))  # unnormalized rows
        if rng.random() < 0.2:
            p[:, 0] = 0.0  # an outcome of probability 0: clamped to eps, slope -log(eps)
            p[:, 1] += 0.5  # (a row of sum ~1e-4 would have float16 slopes past 65504: not a rounding)
        yield p.astype(t).astype(np.float64)


def _emulated_torch_entropy(p, t):
    """Value and d/dp (cotangent 1) of Categorical(probs=p).entropy() in dtype t."""
    import ml_dtypes

    eps = t(ml_dtypes.finfo(t).eps)
    pt = p.astype(t)
    s = np.zeros(pt.shape[:-1] + (1,), t)
    for k in range(pt.shape[-1]):
        s = (s + pt[..., k : k + 1]).astype(t)
    q = (pt / s).astype(t)
    qc = np.clip(q, eps, t(1) - eps).astype(t)
    log_q = np.log(qc)
    terms = (log_q * q).astype(t)
    value = np.zeros(terms.shape[:-1], t)
    for k in range(terms.shape[-1]):
        value = (value - terms[..., k]).astype(t)
    g = t(-1)
    d_log = (g * q).astype(t)
    d_q = ((g * log_q).astype(t) + np.where(q == qc, (d_log / qc).astype(t), t(0))).astype(t)
    d_s = np.zeros_like(s)
    for k in range(q.shape[-1]):  # div backward for the denominator: -grad * ((self / other) / other), summed
        ratio = ((pt[..., k : k + 1] / s).astype(t) / s).astype(t)
        d_s = (d_s - (d_q[..., k : k + 1] * ratio).astype(t)).astype(t)
    return value, ((d_q / s).astype(t) + d_s).astype(t)


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_entropy_model_bounds_torch_categorical_entropy(dtype):
    t, checked, plain_misses = HALF[dtype], 0, 0
    kw = dict(renormalize="before", prob_eps="finfo", dtype=t)
    for p in _entropy_cases(t):
        model = info.entropy_error(p, **kw, stages=info.ENTROPY_STAGES)
        value, grad = _emulated_torch_entropy(p, t)
        for got, want, part in (
            (value, info.entropy(p, **kw), "value"),
            (grad, info.entropy_grad(p, **kw)["input"], "input"),
        ):
            ok, plain = _check(got.astype(np.float64), want, model[part], dtype)
            assert ok, (part, p, got, want)
            checked += 1
            plain_misses += not plain
    assert checked == 600 and plain_misses > 20


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_entropy_model_bounds_jax_entr(dtype):
    t, plain_misses = HALF[dtype], 0
    for p in _entropy_cases(t, seed=6):
        p = np.where(p == 0, 0.25, p)  # entr's slope at 0 is +inf, as the oracle's
        model = info.entropy_error(p, dtype=t, stages=("log",))
        pt = p.astype(t)
        log_p = np.log(pt)
        terms = (-(pt * log_p)).astype(t)
        value = np.zeros(terms.shape[:-1], t)
        for k in range(terms.shape[-1]):
            value = (value + terms[..., k]).astype(t)
        grad = (-(log_p + t(1))).astype(t)
        for got, want, part in ((value, info.entropy(p), "value"), (grad, info.entropy_grad(p)["input"], "input")):
            ok, plain = _check(got.astype(np.float64), want, model[part], dtype)
            assert ok, (part, p, got, want)
            plain_misses += not plain
    assert plain_misses > 20


def test_entropy_model_rejects_a_lost_slope_term_and_is_not_vacuous():
    """The slope's 1 (the log's backward) dropped, or a NaN, stays outside the bound; where a
    probability sits within rounding of the clamp's bound the model admits either side."""
    p = np.array([[0.25, 0.25, 0.5], [0.1, 0.3, 0.6]])
    kw = dict(renormalize="before", prob_eps="finfo", dtype=np.float16)
    model = info.entropy_error(p, **kw, stages=info.ENTROPY_STAGES)
    want = info.entropy_grad(p, **kw)["input"]
    assert np.all(model["input"] * unit_roundoff(np.float16) < 0.05)  # a few hundredths at most
    dropped = info.entropy_grad(p, **dict(kw, prob_eps=None))["input"] * 0 + want + 1.0  # the 1 lost
    assert not _check(dropped, want, model["input"], "float16")[0]
    assert not _check(np.where(want == want.flat[0], np.nan, want), want, model["input"], "float16")[0]
    edge = np.array([[0.0, 0.9999998807907104, 1.0992943089149776e-07]])  # gen-0-6: q_1 on 1 - eps in float32
    assert (
        info.entropy_error(edge, renormalize="before", prob_eps="finfo", dtype=np.float32, stages=("normalize",))[
            "input"
        ].min()
        * unit_roundoff(np.float32)
        > 0.9
    )


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


# ----------------------------------------------------------------------------- the sigmoid before Keras' clip
# Keras' binary focal loss with from_logits=True on the JAX and torch backends clips the sigmoid
# rounded to the compute dtype: the clip is decided on that value (issue 19, replacing the entries
# fitted to generated case ids). The model derives the rounded sigmoid, never widens blindly.

from lossparity.reference.rounding import sigmoid_in_dtype  # noqa: E402

F32_BOUND = float(np.float32(1.0 - 1e-7))  # 1 - 2^-23: Keras' upper clip bound in float32
ON_BOUND = 16.438156127929688  # the float32 sigmoid is the bound; the exact one lies above it
ABOVE = 16.9  # both the float32 and the exact sigmoid lie above the bound
_SIGMOID_KW = dict(apply_class_balancing=True, alpha=0.0, gamma=1.0, prob_eps=1e-7, reduction="none", dtype=np.float32)


def test_the_derived_float32_sigmoid_is_what_jax_and_torch_compute():
    import jax
    import torch

    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(14, 19, 4000), rng.uniform(-19, -14, 4000), rng.uniform(-30, 30, 4000)])
    x = x.astype(np.float32)
    p, candidates = sigmoid_in_dtype(x.astype(np.float64), np.float32)
    for got in (np.asarray(jax.nn.sigmoid(x)), torch.sigmoid(torch.from_numpy(x)).numpy()):
        got = got.astype(np.float64)
        assert np.all(np.any([got == c for c in candidates], axis=0))
        near = x >= 14  # near the upper bound: one value, the derived one
        assert np.all(got[near] == p[near])
    assert sigmoid_in_dtype(np.array(ON_BOUND), np.float32)[0] == F32_BOUND < 1.0 / (1.0 + np.exp(-ON_BOUND))
    assert sigmoid_in_dtype(np.array(ABOVE), np.float32)[0] == 1.0


@pytest.mark.parametrize(("tie", "slope"), [("pass", 1.0), ("split", 0.5)])
def test_a_float32_sigmoid_rounded_onto_the_clip_bound_is_modelled_per_backend(tie, slope):
    """At x = 16.44, target 0 (gamma 1, alpha_t 1), the exact sigmoid is clipped (no slope through the
    clip) but the float32 one is the bound p itself, where torch.clamp passes the whole slope and
    jnp.clip half of it: d/dx gains p (1 / (1 - p)) p (1 - p) = p^2 times that share. The backend's
    share is within the model; twice it is not (JAX's model rejects torch's whole slope)."""
    x, y = np.array([ON_BOUND]), np.array([0.0])
    due = cl.binary_focal_cross_entropy_with_logits_grad(x, y, **_SIGMOID_KW, clip_tie=tie)["input"]
    model = cl.keras_sigmoid_focal_error(x, y, **_SIGMOID_KW, clip_tie=tie, stages=("sigmoid",))
    tol = TOLERANCES["float32"]
    assert abs(due[0]) < 2e-6  # the oracle: clipped, only the focal factor's slope
    for share, fits in ((slope, True), (2 * slope, False)):
        framework = due + share * F32_BOUND**2
        fit = within_rounding(framework, due, model["input"], tol, "float32", ("sigmoid",))
        assert (fit is not None) == fits, (tie, share, due, model["input"])


def test_the_sigmoid_model_is_not_an_excuse():
    """Where the rounded sigmoid does not cross a bound the model allows only its rounding: a halved
    slope inside the clip, and a slope through the clip where both sigmoids lie above the bound,
    still deviate (in both backends' tie rules)."""
    tol = TOLERANCES["float32"]
    for tie in ("pass", "split"):
        inside = np.array([3.0, -2.0]), np.array([0.3, 1.0])
        due = cl.binary_focal_cross_entropy_with_logits_grad(*inside, **_SIGMOID_KW, clip_tie=tie)["input"]
        model = cl.keras_sigmoid_focal_error(*inside, **_SIGMOID_KW, clip_tie=tie, stages=("sigmoid", "probabilities"))
        assert within_rounding(due * (1 + 1e-6), due, model["input"], tol, "float32", ("sigmoid",)) is not None
        assert within_rounding(due / 2, due, model["input"], tol, "float32", ("sigmoid",)) is None
        above = np.array([ABOVE]), np.array([0.0])
        due = cl.binary_focal_cross_entropy_with_logits_grad(*above, **_SIGMOID_KW, clip_tie=tie)["input"]
        model = cl.keras_sigmoid_focal_error(*above, **_SIGMOID_KW, clip_tie=tie, stages=("sigmoid",))
        assert within_rounding(due + 0.5, due, model["input"], tol, "float32", ("sigmoid",)) is None


def test_jax_binary_focal_bindings_halve_the_slope_at_a_clip_bound():
    """clip_tie: Keras' ops.clip is jnp.clip on JAX (half the slope at a bound), torch.clamp and
    tf.clip_by_value elsewhere (the whole slope); a probability exactly float32(1e-7) is on the bound."""
    by_id = {b.id: b for b in all_bindings() if b.spec.startswith("binary_focal")}
    for bid, b in by_id.items():
        if bid.startswith("keras."):
            assert b.conventions.get("clip_tie", "pass") == ("split" if bid.endswith("[jax]") else "pass"), bid
    p, y = np.array([float(np.float32(1e-7))]), np.array([0.8])
    kw = dict(prob_eps=1e-7, reduction="none", dtype=np.float32)
    whole = cl.binary_focal_cross_entropy_grad(p, y, **kw)["input"]
    half = cl.binary_focal_cross_entropy_grad(p, y, **kw, clip_tie="split")["input"]
    focal = cl.binary_focal_cross_entropy_grad(p, y, **kw, clip_tie="split", gamma=0.0)["input"]
    assert whole[0] < half[0] < 0 and focal[0] == pytest.approx(0.5 * -0.8 / p[0], rel=1e-6)


# ----------------------------------------------------------------------------- optax's multiclass hinge
# scores + 1.0 - one_hot(labels) rounded to the scores' dtype before jnp.max: rounding makes a tie.


def test_a_tie_that_half_precision_rounding_makes_is_within_the_multiclass_hinge_model():
    """Label 0 scores 1 (augmented 1), classes 1 and 2 score 0 (augmented 1): three tie exactly. A
    fourth score of -1.0e-5 augments to 0.99999, which rounds to 1 in float16: optax's jnp.max then
    splits the slope among four (1/4) where the oracle splits it among three (1/3). Within the
    model, not within the tolerance; with -0.01 (no tie made) the same 1/4 split is rejected."""
    import jax
    import jax.numpy as jnp
    import optax

    tol, kw = TOLERANCES["float16"], dict(reduction="sum", invalid_label="zeros", flush_subnormals=True)
    for last, made in ((-1.00136e-05, True), (-0.01, False)):
        x, y = np.array([[1.0, 0.0, 0.0, last]], np.float16), np.array([0])
        xe = x.astype(np.float64)
        due = mg.multiclass_hinge_grad(xe, y, **kw, dtype=np.float16)["input"]
        model = mg.multiclass_hinge_error(xe, y, **kw, dtype=np.float16, stages=mg.MULTICLASS_HINGE_STAGES)
        labels = jnp.asarray(y)
        got = jax.grad(lambda s, t=labels: optax.losses.multiclass_hinge_loss(s, t).sum())(jnp.asarray(x))
        got = np.asarray(got, np.float64)
        assert within_rounding(got, due, model["input"], tol, "float16", ("augmented_scores",)) is not None
        quarter = np.array([[-0.75, 0.25, 0.25, 0.25]])
        assert np.array_equal(got, quarter) == made
        assert (
            within_rounding(quarter, due, model["input"], tol, "float16", ("augmented_scores",)) is not None
        ) == made
        assert np.allclose(quarter, due, atol=tol.atol, rtol=tol.rtol) is False


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


# ============================================================================ multiclass sparsemax
def _optax_sparsemax_loss_emulated(x, labels, t):
    """optax.losses.multiclass_sparsemax_loss under x64: the projection's cumsum, / k and x - tau
    in dtype t, then + 1/k and the loss in float64; x - x_y in t."""
    xt = x.astype(t)
    u = -np.sort(-xt, axis=-1)
    cumsum = np.cumsum(u, axis=-1, dtype=t)
    ind = np.arange(1, x.shape[-1] + 1)
    cond = (1.0 / ind + (u.astype(np.float64) - (cumsum / ind.astype(t)).astype(np.float64))) > 0
    k = np.sum(cond, axis=-1, keepdims=True)
    tau = np.take_along_axis(cumsum, k - 1, axis=-1) / k.astype(t)
    p = np.maximum(1.0 / k + (xt - tau).astype(np.float64), 0.0)
    w = (xt - np.take_along_axis(xt, labels[..., None], axis=-1)).astype(np.float64)
    return np.sum(p * np.where(p > 0, w, 0.0), axis=-1) + 0.5 * (1.0 - np.sum(p * p, axis=-1))


@pytest.mark.parametrize("dtype", sorted(HALF))
def test_multiclass_sparsemax_projection_model_bounds_optax(dtype):
    t, plain_misses = HALF[dtype], 0
    for x, _, labels in _cases(seed=11):
        x = x.astype(t).astype(np.float64)
        model = cl.multiclass_sparsemax_loss_error(x, labels, reduction="none", dtype=t)
        got = _optax_sparsemax_loss_emulated(x, labels, t)
        ok, plain = _check(got, cl.multiclass_sparsemax_loss(x, labels, reduction="none"), model["value"], dtype)
        assert ok, (x, labels, got)
        plain_misses += not plain
    assert plain_misses > 10


def test_per_backend_stages_keep_each_backends_conventions():
    """keras_pair(stages={...}) beside backends={...}: a backend named in both keeps its
    conventions and gets its stages; one named in the conventions only keeps them."""
    from lossparity.conformance.bindings import keras_pair, on_backend

    (b,) = [
        x
        for x in keras_pair(
            None,
            "f",
            "softmax_cross_entropy",
            backends={"jax": {"invalid_label": "zeros"}, "torch": {"invalid_label": "IndexError"}},
            stages={"jax": ("log_softmax",)},
        )
    ]
    jax_b, torch_b = on_backend("jax", [b])[0], on_backend("torch", [b])[0]
    assert jax_b.conventions == {"invalid_label": "zeros"} and jax_b.stages == ("log_softmax",)
    assert torch_b.conventions == {"invalid_label": "IndexError"} and torch_b.stages == ()
