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
