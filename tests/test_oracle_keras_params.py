"""The Keras parameters bound for issue 19 beyond the cross-entropy and regression classes: each
class's ``sample_weight`` (``bindings.keras_sample_weight`` on the specs of KLDivergence, Poisson,
the focal and generalized cross-entropies, the hinges, CosineSimilarity, Dice, Tversky and CTC)
and CategoricalFocalCrossentropy's per-class ``alpha`` list. Values are derived here from the
documented formulas; gradients against central differences.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lossparity.conformance.generate import draw_cases
from lossparity.conformance.registry import bindings
from lossparity.conformance.specs import SPECS

#: spec -> the Keras class whose call now takes sample_weight
WEIGHTED = {
    "kl_div_probs": "KLDivergence",
    "poisson_nll": "Poisson",
    "binary_focal_cross_entropy": "BinaryFocalCrossentropy",
    "binary_focal_cross_entropy_with_logits": "BinaryFocalCrossentropy",
    "categorical_focal_cross_entropy": "CategoricalFocalCrossentropy",
    "categorical_generalized_cross_entropy": "CategoricalGeneralizedCrossEntropy",
    "hinge": "Hinge",
    "squared_hinge": "SquaredHinge",
    "categorical_hinge": "CategoricalHinge",
    "cosine_similarity": "CosineSimilarity",
    "dice": "Dice",
    "tversky": "Tversky",
    "ctc": "CTC",
}


def _class_binding(spec: str, cls: str):
    (b,) = [b for b in bindings("keras[jax]") if b.spec == spec and b.id == f"keras.losses.{cls}[jax]"]
    return b


@pytest.mark.parametrize("spec", sorted(WEIGHTED))
def test_the_class_binds_sample_weight_and_takes_the_weighted_cases(spec):
    """Every generated weighted case is one the Keras class can run (the parameters it has no
    keyword for are left out of them), and some seed among 0-3 draws weighted cases."""
    b = _class_binding(spec, WEIGHTED[spec])
    assert b.params.get("sample_weight") == "sample_weight" and "sample_weight" in b.call_keywords
    weighted = []
    for seed in range(4):
        cases = draw_cases(spec, SPECS[spec].generate, examples=24, seed_value=seed)
        weighted += [c for c in cases if "sample_weight" in c.params]
        if weighted:
            break
    assert weighted
    for case in weighted:
        assert b.effective_params(SPECS[spec], case.params) is not None, case.params


def test_kl_divergence_weighted_per_sample():
    """sum_c y log(y / p) per row, times its weight, over the number of samples (2)."""
    y = np.array([[0.5, 0.5], [0.25, 0.75]])
    p = np.array([[0.25, 0.75], [0.5, 0.5]])
    kl = [0.5 * math.log(2.0) + 0.5 * math.log(0.5 / 0.75), 0.25 * math.log(0.5) + 0.75 * math.log(1.5)]
    oracle = SPECS["kl_div_probs"].oracle
    got = oracle(p, y, sample_weight=np.array([2.0, 0.5]), reduction="sum_over_batch_size", prob_eps=1e-7)
    assert got == pytest.approx((2.0 * kl[0] + 0.5 * kl[1]) / 2, rel=1e-14)
    got = oracle(p, y, sample_weight=np.array([2.0, 0.5]), reduction="mean_with_sample_weight", prob_eps=1e-7)
    assert got == pytest.approx((2.0 * kl[0] + 0.5 * kl[1]) / 2.5, rel=1e-14)


def test_poisson_weighted_mean_of_the_last_axis():
    """Keras' poisson: mean_c (p - y log(p + 1e-7)); per-element weights (2, 2) of shape (2, 1):
    the trailing 1 is squeezed against the (2,) per-sample losses."""
    p = np.array([[1.0, 2.0], [0.5, 4.0]])
    y = np.array([[1.0, 0.0], [2.0, 3.0]])
    per = np.mean(p - y * np.log(p + 1e-7), axis=-1)
    got = SPECS["poisson_nll"].oracle(
        p, y, sample_weight=np.array([[3.0], [0.0]]), reduction="sum", eps=1e-7, sample_axis="mean"
    )
    assert got == pytest.approx(3.0 * per[0], rel=1e-14)


def test_hinge_zero_weight_drops_a_sample():
    """mean(max(1 - y x, 0)) per row; weights [0, 1], 'mean' over both samples."""
    x = np.array([[0.5, -2.0], [0.25, 3.0]])
    y = np.array([[1.0, 1.0], [-1.0, 1.0]])
    got = SPECS["hinge"].oracle(
        x, y, sample_weight=np.array([0.0, 1.0]), reduction="mean", sample_axis="mean", hinge_labels="binary_if_all"
    )
    assert got == pytest.approx((1.25 + 0.0) / 2 / 2, rel=1e-14)  # row 2: (1.25 + 0) / 2, halved by the count


def test_categorical_focal_alpha_list_scales_each_class():
    """sum_c alpha_c (1 - q_c)^2 (-y_c log q_c): alpha [0.5, 2, 1], one-hot target on class 1,
    q = [0.2, 0.7, 0.1]: 2 * 0.3^2 * -log 0.7."""
    oracle = SPECS["categorical_focal_cross_entropy"].oracle
    got = oracle(np.array([[0.2, 0.7, 0.1]]), np.array([[0.0, 1.0, 0.0]]), weight=np.array([0.5, 2.0, 1.0]))
    assert got == pytest.approx(2.0 * 0.09 * -math.log(0.7), rel=1e-14)
    # with a soft target every class's alpha counts
    got = oracle(np.array([[0.2, 0.7, 0.1]]), np.array([[0.5, 0.5, 0.0]]), weight=np.array([0.5, 2.0, 1.0]))
    expected = 0.5 * 0.8**2 * 0.5 * -math.log(0.2) + 2.0 * 0.3**2 * 0.5 * -math.log(0.7)
    assert got == pytest.approx(expected, rel=1e-14)


def test_alpha_list_bindings_pass_the_weight_as_alpha():
    ids = {
        b.id: b
        for b in bindings("keras[tensorflow]")
        if b.spec == "categorical_focal_cross_entropy" and "+alpha_list" in b.id
    }
    assert set(ids) == {
        "keras.losses.CategoricalFocalCrossentropy+alpha_list[tensorflow]",
        "keras.losses.categorical_focal_crossentropy+alpha_list[tensorflow]",
    }
    spec = SPECS["categorical_focal_cross_entropy"]
    for b in ids.values():
        assert b.params["weight"] == "alpha" and "alpha" not in b.params
        assert b.kwargs({"weight": np.ones(3)})["alpha"].shape == (3,)
        assert b.effective_params(spec, {"alpha": 0.5}) is None  # the scalar alpha is the plain binding's


def _fd(f, x, h=1e-6):
    g = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[k] += h
        down[k] -= h
        g[k] = (f(up) - f(down)) / (2 * h)
    return g


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean_with_sample_weight", "sum", "none"])
def test_cosine_similarity_over_axis_zero_spreads_each_weight_along_it(reduction):
    """axis=0: one loss per column (the batch axis reduced), weights of shape (3,); the gradient
    of the weighted loss matches central differences."""
    spec = SPECS["cosine_similarity"]
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    w = np.array([2.0, 0.0, 0.5])
    kw = dict(sample_weight=w, reduction=reduction, axis=0, cosine_form="negative", norm_floor=1e-7)
    per = spec.oracle(x, y, axis=0, reduction="none", cosine_form="negative", norm_floor=1e-7)
    assert per.shape == (3,)
    assert np.sum(spec.oracle(x, y, **kw)) == pytest.approx(
        {"sum_over_batch_size": np.sum(w * per) / 3, "mean_with_sample_weight": np.sum(w * per) / 2.5}.get(
            reduction, np.sum(w * per)
        ),
        rel=1e-13,
    )
    g = spec.gradient(x, y, **kw)
    np.testing.assert_allclose(g["input"], _fd(lambda a: np.sum(spec.oracle(a, y, **kw)), x), rtol=1e-6, atol=1e-8)


def test_dice_weights_one_loss_per_mask_left_by_axis():
    """Keras' dice over axis=(1,): one loss per (sample, class) of a (2, 3, 2) input; weights of
    shape (2, 1) broadcast over the classes; gradient against central differences."""
    spec = SPECS["dice"]
    rng = np.random.default_rng(1)
    x, t = rng.uniform(0.1, 0.9, size=(2, 3, 2)), rng.uniform(0, 1, size=(2, 3, 2))
    w = np.array([[1.5], [0.25]])
    kw = dict(sample_weight=w, reduction="sum", axis=(1,), dice_eps=1e-7)
    inter = np.sum(x * t, axis=1)
    per = 1 - 2 * inter / (np.sum(t, axis=1) + np.sum(x, axis=1) + 1e-7)
    assert spec.oracle(x, t, **kw) == pytest.approx(np.sum(w * per), rel=1e-12)
    g = spec.gradient(x, t, **kw)
    np.testing.assert_allclose(g["input"], _fd(lambda a: float(spec.oracle(a, t, **kw)), x), rtol=1e-6, atol=1e-8)


def test_dice_default_axis_is_one_loss_for_the_batch():
    """axis=None: Keras' dice reduces everything, a scalar per batch; a scalar weight scales it."""
    spec = SPECS["dice"]
    x, t = np.array([[0.2, 0.8], [0.6, 0.4]]), np.array([[0.0, 1.0], [1.0, 0.0]])
    loss = 1 - 2 * (0.8 + 0.6) / (2.0 + 2.0 + 1e-7)
    assert spec.oracle(x, t, sample_weight=np.array(3.0), reduction="sum", dice_eps=1e-7) == pytest.approx(
        3.0 * loss, rel=1e-12
    )


def test_ctc_weights_one_loss_per_sequence():
    """Keras' CTC: one loss per sequence of the (N, T, C) input; its weighted cases have (N,)-shaped
    per-sample losses, and the weighted gradient is each sequence's times its weight."""
    spec = SPECS["ctc"]
    cases = draw_cases("ctc", spec.generate, examples=40, seed_value=0)
    weighted = [c for c in cases if "sample_weight" in c.params]
    assert weighted
    for c in weighted:
        n = c.arrays["input"].shape[0]
        assert np.shape(c.params["sample_weight"]) in ((n,), (n, 1), ())
    x = np.log(np.full((2, 3, 3), 1 / 3))
    tgt = np.array([[1, 2], [1, 0]])
    arrays = dict(input_lengths=np.array([3, 3]), target_lengths=np.array([2, 1]))
    conv = dict(log_softmax_input=True, ctc_lengths="keras")
    w = np.array([0.5, 2.0])
    per = spec.oracle(x, tgt, reduction="none", **arrays, **conv)
    got = spec.oracle(x, tgt, sample_weight=w, reduction="sum", **arrays, **conv)
    assert got == pytest.approx(float(np.sum(w * per)), rel=1e-13)
    g, g1 = (
        spec.gradient(x, tgt, sample_weight=w, reduction="sum", **arrays, **conv),
        spec.gradient(x, tgt, reduction="none", **arrays, **conv),
    )
    np.testing.assert_allclose(g["input"], w[:, None, None] * g1["input"], rtol=1e-13)


def test_circle_against_a_reference_set_by_hand():
    """One query [1, 0] (label 0) against [1, 0] (label 0) and [0, 1] (label 1), gamma 1, margin
    0.25, the diagonal kept: d = 0 to its positive, 1 to its negative; a_p = 0.25, a_n = 0.25;
    -gamma a_p (m - d) = -0.0625 and gamma a_n (1 - m - d) = -0.0625: softplus(-0.125)."""
    oracle = SPECS["circle_ref"].oracle
    e, r = np.array([[1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    kw = dict(ref_embeddings=r, ref_labels=np.array([0, 1]), gamma=1.0, margin=0.25, reduction="none")
    got = oracle(e, np.array([0]), remove_diagonal=False, **kw)
    np.testing.assert_allclose(got, [math.log1p(math.exp(-0.125))], rtol=1e-15)
    # remove_diagonal drops pair (0, 0) of the (1, 2) mask: no positive left, the loss is 0
    np.testing.assert_array_equal(oracle(e, np.array([0]), remove_diagonal=True, **kw), [0.0])


def test_circle_reference_gradients_match_central_differences():
    """d/d input = g_dot @ r and d/d ref_embeddings = g_dot^T @ e, away from the kink at d = 0."""
    spec = SPECS["circle_ref"]
    e = np.array([[0.8, 0.6], [-0.6, 0.8]])
    r = np.array([[0.6, 0.8], [0.0, 1.0], [1.0, 0.0]])
    kw = dict(ref_labels=np.array([0, 1, 0]), gamma=16.0, margin=0.25, reduction="none")
    t = np.array([0, 1])
    g = spec.gradient(e, t, ref_embeddings=r, **kw)
    np.testing.assert_allclose(
        g["input"], _fd(lambda a: float(np.sum(spec.oracle(a, t, ref_embeddings=r, **kw))), e), rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(
        g["ref_embeddings"],
        _fd(lambda a: float(np.sum(spec.oracle(e, t, ref_embeddings=a, **kw))), r),
        rtol=1e-6,
        atol=1e-8,
    )


def test_circle_ref_binding_passes_the_reference_set():
    (b,) = [b for b in bindings("keras[jax]") if b.spec == "circle_ref"]
    assert b.call == ("keras.losses.circle(target, input, ref_labels=ref_labels, ref_embeddings=ref_embeddings{kw})")
    cases = draw_cases("circle_ref", SPECS["circle_ref"].generate, examples=12, seed_value=0)
    assert any(np.shape(c.arrays["ref_embeddings"])[0] != np.shape(c.arrays["input"])[0] for c in cases)


def test_ctc_weighted_cases_take_keras_blank_zero_by_swapping_classes():
    """Keras' CTC class has blank 0 only: a case drawn with blank 2 is given with classes 0 and 2
    swapped in the input and the labels, which leaves its loss unchanged."""
    from lossparity.conformance.families.ctc import _blank_zero

    rng = np.random.default_rng(3)
    x = np.log(rng.dirichlet(np.ones(3), size=(2, 4)))
    arrays = dict(input=x, target=np.array([[1, 0], [0, 0]]), input_lengths=np.array([4, 4]))
    arrays["target_lengths"] = np.array([2, 1])
    swapped, params = _blank_zero(arrays, {"blank": 2, "reduction": "none"})
    assert params == {"reduction": "none"}
    np.testing.assert_array_equal(swapped["target"], [[1, 2], [2, 0]])
    oracle, conv = SPECS["ctc"].oracle, dict(log_softmax_input=True)
    lengths = dict(input_lengths=arrays["input_lengths"], target_lengths=arrays["target_lengths"])
    before = oracle(x, arrays["target"], blank=2, reduction="none", **lengths, **conv)
    after = oracle(swapped["input"], swapped["target"], blank=0, reduction="none", **lengths, **conv)
    np.testing.assert_allclose(after, before, rtol=1e-13)
