"""Properties of the float64 oracle that hold whatever the exact values are.

Identities between losses (H(P, Q) = H(P) + KL(P || Q), logits against probabilities, one-hot
targets against class indices, nll_loss after log_softmax against cross-entropy), the shared
reduction, the conventions about empty means and invalid labels, the named stages of a trace,
and the worked numbers of the seed documents. The values themselves are checked against
mpmath in ``test_oracle_mpmath.py``.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lossparity.reference import OracleError, Trace, kl
from lossparity.reference import crossentropy as ce
from lossparity.reference import information as info
from lossparity.reference._math import log_softmax

EPS = 2.0**-52
SETTINGS = settings(max_examples=100, deadline=None, derandomize=True)

BATCH = st.sampled_from([(), (1,), (3,), (2, 2)])
CLASSES = st.integers(1, 6)
LOGITS = st.one_of(st.floats(-30.0, 30.0), st.sampled_from([0.0, 30.0, -30.0]))
WEIGHTS = st.floats(0.0, 5.0)
PROBS = st.one_of(
    st.floats(0.0, 1.0, exclude_min=True, exclude_max=True), st.sampled_from([1e-300, 1e-12, 0.5, 1 - 1e-12])
)
REDUCTION = st.sampled_from(["none", "sum", "mean"])


def arr(draw, shape, elements, dtype=np.float64):
    return draw(hnp.arrays(dtype, shape, elements=elements))


def distribution(draw, shape):
    """Rows that sum to 1 (up to rounding), some outcomes impossible, some nearly so."""
    w = arr(draw, shape, st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1e-300, 1e-20, 1.0])))
    w[..., 0] = np.maximum(w[..., 0], 1e-3)  # at least one possible outcome per row
    return w / np.sum(w, axis=-1, keepdims=True)


def assert_close_ulp(actual, desired, ulp, *, scale=None):
    """|actual - desired| <= ulp float64 ULPs of ``scale`` (default: of |desired|), elementwise."""
    actual, desired = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
    assert actual.shape == desired.shape
    scale = np.abs(desired) if scale is None else np.asarray(scale, np.float64)
    both_nan = np.isnan(actual) & np.isnan(desired)
    same = (actual == desired) | both_nan
    err = np.where(same, 0.0, np.abs(actual - desired))
    allowed = ulp * np.spacing(scale)
    bad = ~same & ~(err <= allowed)
    assert not bad.any(), (
        f"{np.count_nonzero(bad)} of {bad.size} values off by more than {ulp} ULP: "
        f"actual {actual[bad][:3]!r}, desired {desired[bad][:3]!r}, "
        f"error {err[bad][:3] / np.spacing(scale[bad][:3] if scale.ndim else scale)!r} ULP"
    )


# ----------------------------------------------------------------------------- information identities


@pytest.mark.parametrize("base", ["e", 2])
@SETTINGS
@given(data=st.data())
def test_cross_entropy_is_entropy_plus_kl(base, data):
    """H(P, Q) = H(P) + KL(P || Q) (seeds 003-004), in nats and in bits.

    Each of the three is within about 3 ULP of max(H(P), H(P, Q)) (by Gibbs' inequality that
    is H(P, Q)), and the addition rounds once more: 10 ULP (7 seen in 6000 draws).
    """
    shape = data.draw(BATCH) + (data.draw(CLASSES),)
    p, q = distribution(data.draw, shape), distribution(data.draw, shape)
    q = np.where(p > 0, np.maximum(q, 1e-300), q)  # keep KL finite
    h_pq = info.cross_entropy(q, p, base=base)
    h_p = info.entropy(p, base=base)
    d = info.kl_divergence(q, p, base=base)
    assert_close_ulp(h_p + d, h_pq, 10, scale=np.maximum(h_pq, h_p))


@pytest.mark.parametrize("base", ["e", 2])
@SETTINGS
@given(data=st.data())
def test_kl_of_a_distribution_with_itself_is_zero(base, data):
    shape = data.draw(BATCH) + (data.draw(CLASSES),)
    p = distribution(data.draw, shape)
    assert np.all(info.kl_divergence(p, p, base=base) == 0.0)
    assert np.all(kl.kl_div_probs(p, p, reduction="none") == 0.0)
    with np.errstate(divide="ignore"):
        log_p = np.log(p)
    assert np.all(kl.kl_div(log_p, p, reduction="none") == 0.0)
    assert np.all(kl.kl_div(log_p, log_p, log_target=True, reduction="none") == 0.0)


@SETTINGS
@given(data=st.data())
def test_entropy_in_bits_is_entropy_in_nats_over_ln2(data):
    shape = data.draw(BATCH) + (data.draw(CLASSES),)
    p, q = distribution(data.draw, shape), distribution(data.draw, shape)
    q = np.where(p > 0, np.maximum(q, 1e-300), q)
    for fn, args in [(info.entropy, (p,)), (info.cross_entropy, (q, p)), (info.kl_divergence, (q, p))]:
        bits, nats = fn(*args, base=2), fn(*args, base="e")
        assert_close_ulp(bits, nats / math.log(2.0), 1)


# ----------------------------------------------------------------------------- identities between losses


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """sigmoid(x) correctly rounded (mpmath at 40 digits)."""
    with mpmath.mp.workdps(40):
        return np.vectorize(lambda v: float(1 / (1 + mpmath.exp(-mpmath.mpf(float(v))))), otypes=[float])(x)


@SETTINGS
@given(data=st.data())
def test_bce_with_logits_is_bce_of_sigmoid(data):
    """BCE on logits x equals BCE on the probabilities sigmoid(x), away from saturation.

    BCE on probabilities sees sigmoid(x) rounded, so log(1 - p) carries a relative error of
    about EPS * p / (1 - p) <= EPS * e^|x|: with |x| <= 8 that is below 1e-12.
    """
    shape = data.draw(BATCH) + (data.draw(CLASSES),)
    x = arr(data.draw, shape, st.floats(-8.0, 8.0))
    y = arr(data.draw, shape, st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)))
    weight = arr(data.draw, shape[-1:], WEIGHTS) if data.draw(st.booleans()) else None
    reduction = data.draw(REDUCTION)
    got = ce.binary_cross_entropy_with_logits(x, y, weight=weight, reduction=reduction)
    want = ce.binary_cross_entropy(_sigmoid(x), y, weight=weight, reduction=reduction)
    np.testing.assert_allclose(got, want, rtol=2e-12, atol=0)


@SETTINGS
@given(data=st.data())
def test_one_hot_probability_targets_equal_class_indices(data):
    n, batch = data.draw(CLASSES), data.draw(BATCH)
    x = arr(data.draw, batch + (n,), LOGITS)
    t = arr(data.draw, batch, st.integers(0, n - 1), dtype=np.int64)
    one_hot = np.eye(n)[t]
    kw = dict(reduction=data.draw(REDUCTION), label_smoothing=data.draw(st.sampled_from([0.0, 0.1, 0.5])))
    if data.draw(st.booleans()):
        kw["weight"] = arr(data.draw, (n,), WEIGHTS)
    soft = ce.softmax_cross_entropy_soft(x, one_hot, **kw)
    hard = ce.softmax_cross_entropy(x, t, **kw)
    # Equal in real arithmetic; smoothing sums the classes in a different order.
    assert_close_ulp(soft, hard, 0 if kw["label_smoothing"] == 0 else 8)


@SETTINGS
@given(data=st.data())
def test_nll_loss_of_log_softmax_is_softmax_cross_entropy(data):
    n, batch = data.draw(CLASSES), data.draw(BATCH)
    x = arr(data.draw, batch + (n,), LOGITS)
    ignore_index = data.draw(st.sampled_from([None, -100, 0]))
    t = arr(data.draw, batch, st.integers(0, n - 1), dtype=np.int64)
    if ignore_index is not None:
        t = np.where(arr(data.draw, batch, st.booleans(), dtype=np.bool_), ignore_index, t)
    kw = dict(
        reduction=data.draw(REDUCTION),
        ignore_index=ignore_index,
        mean_by=data.draw(st.sampled_from(["elements", "weights"])),
    )
    if data.draw(st.booleans()):
        kw["weight"] = arr(data.draw, (n,), WEIGHTS)
    with np.errstate(invalid="ignore", divide="ignore"):
        assert_close_ulp(ce.nll_loss(log_softmax(x), t, **kw), ce.softmax_cross_entropy(x, t, **kw), 0)


# ----------------------------------------------------------------------------- the shared reduction


def _cases(draw):
    """(name, oracle, args, kwargs, counted mask) for losses with elementwise 'none' output."""
    n, batch = draw(CLASSES), draw(st.sampled_from([(1,), (3,), (2, 2)]))
    shape = batch + (n,)
    x = arr(draw, shape, LOGITS)
    p = arr(draw, shape, PROBS)
    y = arr(draw, shape, st.floats(0.0, 1.0))
    t = arr(draw, batch, st.integers(0, n - 1), dtype=np.int64)
    t = np.where(arr(draw, batch, st.booleans(), dtype=np.bool_), -100, t)
    w = arr(draw, (n,), WEIGHTS)
    all_counted = np.ones(shape, bool)
    return draw(
        st.sampled_from(
            [
                ("binary_cross_entropy", ce.binary_cross_entropy, (p, y), {"weight": w}, all_counted),
                (
                    "binary_cross_entropy_with_logits",
                    ce.binary_cross_entropy_with_logits,
                    (x, y),
                    {"pos_weight": w},
                    all_counted,
                ),
                (
                    "softmax_cross_entropy",
                    ce.softmax_cross_entropy,
                    (x, t),
                    {"weight": w, "ignore_index": -100},
                    t != -100,
                ),
                ("nll_loss", ce.nll_loss, (-np.abs(x), t), {"ignore_index": -100}, t != -100),
                (
                    "sparse_categorical_cross_entropy",
                    ce.sparse_categorical_cross_entropy,
                    (p, t),
                    {"ignore_index": -100},
                    t != -100,
                ),
                ("softmax_cross_entropy_soft", ce.softmax_cross_entropy_soft, (x, y), {}, np.ones(batch, bool)),
                ("categorical_cross_entropy", ce.categorical_cross_entropy, (p, y), {}, np.ones(batch, bool)),
                ("kl_div", kl.kl_div, (-np.abs(x), y), {}, all_counted),
                ("kl_div_probs", kl.kl_div_probs, (p, y), {}, np.ones(batch, bool)),
            ]
        )
    )


@SETTINGS
@given(data=st.data())
def test_sum_and_mean_reduce_the_elementwise_losses(data):
    """'sum' is the correctly rounded sum of 'none'; 'mean' divides it by the counted elements."""
    name, fn, args, kw, counted = _cases(data.draw)
    none = fn(*args, reduction="none", **kw)
    assert none.shape == counted.shape, name
    total = math.fsum(np.where(counted, none, 0.0).ravel())
    assert fn(*args, reduction="sum", **kw) == total, name
    mean = fn(*args, reduction="mean", **kw)
    count = np.count_nonzero(counted)
    if count:
        assert mean == total / count, name
    else:
        assert math.isnan(mean), name


@SETTINGS
@given(data=st.data())
def test_batchmean_divides_by_the_batch_size(data):
    shape = data.draw(st.sampled_from([(1,), (3,), (2, 3), (4, 2, 2)]))
    log_q = arr(data.draw, shape, st.floats(-30.0, 0.0))
    p = arr(data.draw, shape, st.floats(0.0, 1.0))
    total = kl.kl_div(log_q, p, reduction="sum")
    assert kl.kl_div(log_q, p, reduction="batchmean") == total / shape[0]


@SETTINGS
@given(data=st.data())
def test_mean_by_weights_divides_by_the_targets_weights(data):
    n, batch = data.draw(CLASSES), data.draw(st.sampled_from([(1,), (3,), (2, 2)]))
    x = arr(data.draw, batch + (n,), LOGITS)
    t = arr(data.draw, batch, st.integers(0, n - 1), dtype=np.int64)
    t = np.where(arr(data.draw, batch, st.booleans(), dtype=np.bool_), -100, t)
    w = arr(data.draw, (n,), st.floats(0.0, 5.0))
    for fn, inp in [(ce.softmax_cross_entropy, x), (ce.nll_loss, -np.abs(x))]:
        kw = dict(weight=w, ignore_index=-100)
        none = fn(inp, t, reduction="none", **kw)
        den = math.fsum(w[t[t != -100]])
        got = fn(inp, t, reduction="mean", mean_by="weights", **kw)
        if den:
            assert got == math.fsum(none.ravel()) / den
        else:
            assert math.isnan(got)
        by_count = fn(inp, t, reduction="mean", **kw)
        count = np.count_nonzero(t != -100)
        assert (by_count == math.fsum(none.ravel()) / count) if count else math.isnan(by_count)


# ----------------------------------------------------------------------------- empty means, invalid labels

INDEXED = [
    ("softmax_cross_entropy", ce.softmax_cross_entropy, np.array([[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]])),
    ("nll_loss", ce.nll_loss, np.log(np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]))),
    (
        "sparse_categorical_cross_entropy",
        ce.sparse_categorical_cross_entropy,
        np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]),
    ),
]


@pytest.mark.parametrize("name, fn, inp", INDEXED, ids=[c[0] for c in INDEXED])
@pytest.mark.parametrize("ignore_index", [-100, 1])
def test_all_ignored_mean_follows_zero_division(name, fn, inp, ignore_index):
    t = np.full(inp.shape[:-1], ignore_index)
    assert math.isnan(fn(inp, t, ignore_index=ignore_index, reduction="mean"))
    assert math.isnan(fn(inp, t, ignore_index=ignore_index, reduction="mean", zero_division="nan"))
    assert fn(inp, t, ignore_index=ignore_index, reduction="mean", zero_division="zero") == 0.0
    assert fn(inp, t, ignore_index=ignore_index, reduction="sum") == 0.0
    np.testing.assert_array_equal(fn(inp, t, ignore_index=ignore_index, reduction="none"), [0.0, 0.0])
    empty = np.zeros((0, 3))
    assert math.isnan(fn(empty, np.zeros(0, np.int64), reduction="mean"))
    assert fn(empty, np.zeros(0, np.int64), reduction="mean", zero_division="zero") == 0.0


@pytest.mark.parametrize("name, fn, inp", INDEXED, ids=[c[0] for c in INDEXED])
@pytest.mark.parametrize("kind", ["IndexError", "InvalidArgumentError"])
@pytest.mark.parametrize("target, bad", [([0, 3], 3), ([-1, 7], -1), ([1, -5], -5)])
def test_invalid_label_raises_the_named_error(name, fn, inp, kind, target, bad):
    with pytest.raises(OracleError) as info_:
        fn(inp, np.array(target), invalid_label=kind)
    assert info_.value.kind == kind
    assert str(info_.value) == f"target {bad} is outside [0, 3)"
    # An ignored target is never invalid, whatever its value.
    fn(inp, np.array([-100, 2]), ignore_index=-100, invalid_label=kind)


@pytest.mark.parametrize("name, fn, inp", INDEXED, ids=[c[0] for c in INDEXED])
def test_invalid_label_values(name, fn, inp):
    t = np.array([5, 2])
    assert np.isnan(fn(inp, t, invalid_label="nan", reduction="none")[0])
    assert math.isnan(fn(inp, t, invalid_label="nan", reduction="mean"))
    np.testing.assert_array_equal(
        fn(inp, t, invalid_label="clamp", reduction="none"), fn(inp, np.array([2, 2]), reduction="none")
    )
    np.testing.assert_array_equal(
        fn(inp, t, invalid_label="wrap", reduction="none"), fn(inp, np.array([5 % 3, 2]), reduction="none")
    )


@pytest.mark.parametrize("bad, shown", [(1.5, "1.5"), (-0.25, "-0.25"), (math.nan, "nan")])
def test_prob_domain_raises_the_named_error(bad, shown):
    """PyTorch's binary_cross_entropy checks its input: prob_domain names the error it raises."""
    with pytest.raises(OracleError) as info_:
        ce.binary_cross_entropy([0.5, bad, 2.0], [1.0, 0.0, 1.0], prob_domain="RuntimeError")
    assert info_.value.kind == "RuntimeError"
    assert str(info_.value) == f"probability {shown} is outside [0, 1]"
    # The plain mathematics has no domain check: a log of a negative number is nan.
    assert math.isnan(ce.binary_cross_entropy([0.5, bad], [0.5, 0.5]))
    # 0 and 1 are inside the domain.
    inside = ce.binary_cross_entropy([0.0, 1.0], [1.0, 0.0], prob_domain="RuntimeError", log_min=-100)
    assert inside == 100.0


# ----------------------------------------------------------------------------- traces

TRACES = [
    (
        "binary_cross_entropy",
        lambda tr: ce.binary_cross_entropy([0.8, 0.2, 0.4], [1, 0, 0], trace=tr),
        ["input", "log", "per-element loss", "reduction"],
    ),
    (
        "binary_cross_entropy keras",
        lambda tr: ce.binary_cross_entropy([0.8, 0.2, 0.4], [1, 0, 0], prob_eps=1e-7, label_smoothing=0.1, trace=tr),
        ["input", "smoothing", "clip", "log", "per-element loss", "reduction"],
    ),
    (
        "binary_cross_entropy_with_logits",
        lambda tr: ce.binary_cross_entropy_with_logits([0.5, -1.0], [1, 0], sample_axis="mean", trace=tr),
        ["input", "per-element loss", "mean over last axis", "reduction"],
    ),
    (
        "softmax_cross_entropy",
        lambda tr: ce.softmax_cross_entropy([[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]], [2, 0], trace=tr),
        ["input", "log_softmax", "per-element loss", "mask", "reduction"],
    ),
    (
        "softmax_cross_entropy torch",
        lambda tr: ce.softmax_cross_entropy(
            [[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]], [2, -100], ignore_index=-100, label_smoothing=0.1, trace=tr
        ),
        ["input", "log_softmax", "smoothing", "per-element loss", "mask", "reduction"],
    ),
    (
        "categorical_cross_entropy",
        lambda tr: ce.categorical_cross_entropy(
            [0.2, 0.3, 0.5], [0, 0, 1], prob_eps=1e-7, renormalize="before_clip", trace=tr
        ),
        ["input", "renormalize", "clip", "per-element loss", "reduction"],
    ),
    ("entropy", lambda tr: info.entropy([0.5, 0.25, 0.25], base=2, trace=tr), ["input", "information", "reduction"]),
]


@pytest.mark.parametrize("name, run, stages", TRACES, ids=[t[0] for t in TRACES])
def test_trace_records_the_named_stages_in_order(name, run, stages):
    tr = Trace()
    value = run(tr)
    assert [s.name for s in tr.stages] == stages
    assert all(isinstance(s.note, str) and s.note for s in tr.stages)
    np.testing.assert_array_equal(tr.stages[-1].value, value)  # the last stage is the answer


def test_trace_keeps_copies_and_no_trace_changes_nothing():
    tr = Trace()
    p = np.array([0.8, 0.2, 0.4])
    value = ce.binary_cross_entropy(p, [1, 0, 0], trace=tr)
    p[0] = 0.5
    np.testing.assert_array_equal(tr.stages[0].value, [0.8, 0.2, 0.4])
    assert value == ce.binary_cross_entropy([0.8, 0.2, 0.4], [1, 0, 0])
    assert tr.stages[1].value.shape == (2, 3)  # log p and log(1 - p)


# ----------------------------------------------------------------------------- seed numbers


def test_seed_000_bce_and_cross_entropy():
    """nn.BCELoss() on [0.8, 0.2, 0.4] / [1, 0, 0] is 0.3190; nn.CrossEntropyLoss() 0.7971."""
    assert round(float(ce.binary_cross_entropy([0.8, 0.2, 0.4], [1, 0, 0], log_min=-100)), 4) == 0.3190
    assert round(float(ce.softmax_cross_entropy([0.8, 0.2, 0.4], 0)), 4) == 0.7971


def test_seed_001_sparse_softmax_cross_entropy():
    """tf.nn.sparse_softmax_cross_entropy_with_logits on labels [2, 0]."""
    got = ce.softmax_cross_entropy([[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]], [2, 0], reduction="none")
    np.testing.assert_allclose(got, [0.32656264, 0.4643688], rtol=1e-7)
