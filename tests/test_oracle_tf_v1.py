"""The oracle of ``tf.compat.v1.losses`` and ``tf.compat.v1.nn``: ``compute_weighted_loss``'s weights and
reductions (``reference/reduction.py``, ``weighting="tf_v1"``), and the labels' stopped gradient of the v1
softmax cross-entropies (``label_gradient="stopped"``), on values derived by hand from
``tensorflow/python/ops/losses/losses_impl.py`` and from the docstring examples there (mpmath where a
log or an exp is involved)."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from lossparity.conformance.registry import bindings
from lossparity.conformance.specs import SPECS
from lossparity.reference.errors import OracleError
from lossparity.reference.reduction import (
    TF_V1_REDUCTION_VALUES,
    TF_V1_WEIGHTINGS,
    tf_v1_reduce,
    tf_v1_reduce_grad,
    tf_v1_reduce_weight_grad,
)

LOSSES = np.array([[1.0, 2.0], [3.0, 4.0]])
# weights of shape (2, 1): row 0 dropped, row 1 times 3; weighted losses [[0, 0], [9, 12]], sum 21
W = np.array([[0.0], [3.0]])


@pytest.mark.parametrize(
    ("reduction", "want"),
    [
        ("sum", 21.0),
        ("sum_by_nonzero_weights", 21.0 / 2),  # the default: 2 non-zero weights once broadcast to (2, 2)
        ("mean_with_sample_weight", 21.0 / 6),  # Reduction.MEAN: over sum(ones_like(losses) * w) = 3 + 3
        ("mean", 21.0 / 4),  # SUM_OVER_BATCH_SIZE: over the 4 losses
        ("sum_over_batch_size", 21.0 / 4),
    ],
)
def test_each_reduction_divides_by_its_own_divisor(reduction, want):
    assert tf_v1_reduce(LOSSES, W, reduction=reduction) == pytest.approx(want, rel=1e-15)


def test_none_gives_the_weighted_losses_and_no_weight_is_one():
    np.testing.assert_array_equal(tf_v1_reduce(LOSSES, W, reduction="none"), [[0.0, 0.0], [9.0, 12.0]])
    # weights=1.0, the default: every reduction but SUM is the plain mean 10 / 4
    assert tf_v1_reduce(LOSSES, None, reduction="sum_by_nonzero_weights") == 2.5
    assert tf_v1_reduce(LOSSES, None, reduction="mean_with_sample_weight") == 2.5
    assert tf_v1_reduce(LOSSES, 2.0, reduction="sum_by_nonzero_weights") == 5.0  # a scalar weight counts every loss


def test_all_zero_weights_divide_by_zero_with_div_no_nan():
    """_safe_mean is div_no_nan: 0 whatever the sum, even a NaN one (0 * inf)."""
    losses = np.array([np.inf, 1.0])
    for reduction in ("sum_by_nonzero_weights", "mean_with_sample_weight"):
        assert tf_v1_reduce(losses, np.zeros(2), reduction=reduction) == 0.0
        assert tf_v1_reduce(losses, 0.0, reduction=reduction) == 0.0
    assert np.isnan(tf_v1_reduce(losses, np.zeros(2), reduction="sum"))  # no quotient: IEEE's 0 * inf


def test_zero_d_and_empty_losses_still_reduce_to_a_scalar():
    assert tf_v1_reduce(np.float64(5.0), 2.0, reduction="sum_by_nonzero_weights") == 10.0
    assert tf_v1_reduce(np.float64(5.0), 2.0, reduction="mean_with_sample_weight") == 5.0
    empty = tf_v1_reduce(np.zeros((0,)), None, reduction="sum_by_nonzero_weights")
    assert np.shape(empty) == () and empty == 0.0  # 0 / 0 -> 0
    assert tf_v1_reduce(np.zeros((0,)), None, reduction="none").shape == (0,)


@pytest.mark.parametrize("w_shape", [(2,), (2, 2, 1), (3, 1), (1, 3)])
def test_weights_that_assert_broadcastable_refuses_raise_value_error(w_shape):
    """A scalar, or the losses' rank with each extent 1 or the losses': no squeeze or expand (Keras'
    (N,) weight against (N, D) losses is refused here)."""
    with pytest.raises(OracleError) as err:
        tf_v1_reduce(LOSSES, np.ones(w_shape), reduction="sum")
    assert err.value.kind == "ValueError"


def test_gradients_by_hand_and_by_finite_differences():
    # d/d losses: each loss's broadcast weight over the divisor (2 non-zero weights)
    np.testing.assert_allclose(
        tf_v1_reduce_grad(LOSSES.shape, W, reduction="sum_by_nonzero_weights"), [[0.0, 0.0], [1.5, 1.5]]
    )
    # d/d w: the row's losses over the count (a count of weights does not move with them)
    np.testing.assert_allclose(tf_v1_reduce_weight_grad(LOSSES, W, reduction="sum_by_nonzero_weights"), [[1.5], [3.5]])
    # MEAN divides by the weights' sum: d/d w_i = sum_row (l - result) / den, result 3.5, den 6
    np.testing.assert_allclose(
        tf_v1_reduce_weight_grad(LOSSES, W, reduction="mean_with_sample_weight"), [[-4.0 / 6], [0.0]], atol=1e-15
    )
    w = np.array([[0.5], [3.0]])  # away from 0, where the count is flat
    for reduction in ("sum", "sum_by_nonzero_weights", "mean_with_sample_weight", "mean"):
        h, fd = 1e-6, np.zeros(w.shape)
        for i in range(w.size):
            e = np.zeros(w.size)
            e[i] = h
            up = tf_v1_reduce(LOSSES, w + e.reshape(w.shape), reduction=reduction)
            down = tf_v1_reduce(LOSSES, w - e.reshape(w.shape), reduction=reduction)
            fd.flat[i] = (up - down) / (2 * h)
        np.testing.assert_allclose(tf_v1_reduce_weight_grad(LOSSES, w, reduction=reduction), fd, rtol=1e-7)


def test_mean_squared_error_docstring_example():
    """losses_impl.py's mean_squared_error example: labels [1, 2, 3], predictions [1, 3, 5], weights
    [0, 1, 0.25]: squares [0, 1, 4], weighted [0, 1, 1]; over the 2 non-zero weights 1.0 (the default),
    over the 3 losses 2/3 (SUM_OVER_BATCH_SIZE, documented as 0.66667)."""
    spec = SPECS["squared_error"]
    x, y, w = np.array([1.0, 3.0, 5.0]), np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.25])
    default = spec.oracle(x, y, sample_weight=w, weighting="tf_v1", reduction="sum_by_nonzero_weights")
    assert default == 1.0
    assert spec.oracle(x, y, sample_weight=w, weighting="tf_v1", reduction="mean") == pytest.approx(2 / 3, rel=1e-15)
    # Keras' sample_weight on the same case (its per-sample mean of a 1-D input is one sample): another divisor
    assert spec.oracle(x, y, sample_weight=np.float64(1.0), weighting="keras", reduction="mean") != default


def test_softmax_cross_entropy_docstring_example():
    """losses_impl.py's softmax_cross_entropy example: logits [[0.05, 0.95, 0], [0.1, 0.8, 0.1]], one-hot
    [[0, 1, 0], [0, 0, 1]], weights [0.3, 0.7], label_smoothing 0.2 (labels * 0.8 + 0.2 / 3), the default
    reduction: sum(w * loss) / 2 non-zero weights, documented as 0.57618."""
    logits = [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]
    labels = [[0, 1, 0], [0, 0, 1]]
    weights, s = [0.3, 0.7], mpmath.mpf("0.2")
    mpmath.mp.dps = 40
    total = 0
    for x, y, w in zip(logits, labels, weights):
        xs = [mpmath.mpf(v) for v in x]
        lse = mpmath.log(sum(mpmath.exp(v) for v in xs))
        total += mpmath.mpf(w) * -sum((yc * (1 - s) + s / 3) * (xc - lse) for xc, yc in zip(xs, y))
    want = float(total / 2)
    assert round(want, 5) == 0.57618
    got = SPECS["softmax_cross_entropy_soft"].oracle(
        np.array(logits),
        np.array(labels, np.float64),
        sample_weight=np.array(weights),
        label_smoothing=0.2,
        weighting="tf_v1",
        reduction="sum_by_nonzero_weights",
    )
    assert got == pytest.approx(want, rel=1e-13)


def test_v1_softmax_cross_entropies_stop_the_labels_gradient():
    spec = SPECS["softmax_cross_entropy_soft"]
    x, y = np.array([[1.0, -2.0, 0.5]]), np.array([[0.2, 0.3, 0.5]])
    flows = spec.gradient(x, y)
    stopped = spec.gradient(x, y, label_gradient="stopped")
    np.testing.assert_array_equal(stopped["target"], np.zeros((1, 3)))
    np.testing.assert_array_equal(stopped["input"], flows["input"])  # softmax - y: the logits' slope unchanged
    assert np.all(flows["target"] != 0)  # v2's -log softmax(x) / N


def test_the_v1_bindings_spell_every_reduction_as_tensorflow_does():
    """Each spec reduction a v1 binding takes becomes one of tf.compat.v1.losses.Reduction's values
    (read from TensorFlow), its default SUM_BY_NONZERO_WEIGHTS; weights=1.0 reduces like the spec's mean."""
    tf = pytest.importorskip("tensorflow")
    assert set(TF_V1_REDUCTION_VALUES.values()) == set(tf.compat.v1.losses.Reduction.all())
    # mean_pairwise_squared_error has no reduction and weights of its own (tested below)
    v1 = [b for b in bindings("tensorflow") if b.id.startswith("tf.compat.v1.losses.") and "pairwise" not in b.id]
    assert len(v1) == 9
    for b in v1:
        assert b.params["sample_weight"] == "weights" and b.conventions["weighting"] in TF_V1_WEIGHTINGS
        assert b.kwargs({"reduction": "mean"}) == {"reduction": tf.compat.v1.losses.Reduction.SUM_OVER_BATCH_SIZE}
        assert b.kwargs({"reduction": "mean_with_sample_weight"}) == {"reduction": tf.compat.v1.losses.Reduction.MEAN}
        assert b.defaults["reduction"] == "sum_by_nonzero_weights"


def test_sparse_softmax_cross_entropy_squeezes_a_trailing_one_of_the_weights():
    """_remove_squeezable_dimensions: a (N, 1) weight for (N,) losses loses its last axis (the other v1
    losses refuse it); a last extent other than 1 cannot be squeezed."""
    losses, w = np.array([1.0, 2.0]), np.array([[0.0], [3.0]])
    assert tf_v1_reduce(losses, w, reduction="sum_by_nonzero_weights", squeeze=True) == 6.0  # 3 * 2 over 1 weight
    np.testing.assert_array_equal(tf_v1_reduce_weight_grad(losses, w, reduction="sum", squeeze=True), [[1.0], [2.0]])
    with pytest.raises(OracleError) as err:
        tf_v1_reduce(losses, w, reduction="sum")
    assert err.value.kind == "ValueError"
    with pytest.raises(OracleError) as err:
        tf_v1_reduce(losses, np.ones((2, 2)), reduction="sum", squeeze=True)
    assert err.value.kind == "InvalidArgumentError"
    spec = SPECS["softmax_cross_entropy"]
    x, t = np.array([[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]]), np.array([2, 0])
    per = spec.oracle(x, t, reduction="none")
    got = spec.oracle(x, t, sample_weight=w, weighting="tf_v1_squeeze", reduction="sum_by_nonzero_weights")
    assert got == pytest.approx(3.0 * per[1], rel=1e-15)


def test_the_v1_regression_losses_compute_in_float32():
    """losses_impl.py casts predictions and labels to float32 before absolute_difference, mean_squared_error
    and huber_loss: float32 whatever the inputs' dtype; the cross-entropies keep the logits' dtype."""
    by_id = {b.id: b for b in bindings("tensorflow")}
    for name in ("absolute_difference", "mean_squared_error", "huber_loss"):
        assert by_id[f"tf.compat.v1.losses.{name}"].result_dtype("float16") == "float32"
    for name in ("sigmoid_cross_entropy", "softmax_cross_entropy", "sparse_softmax_cross_entropy"):
        assert by_id[f"tf.compat.v1.losses.{name}"].result_dtype("float16") == "float16"
    assert by_id["tf.compat.v1.losses.sparse_softmax_cross_entropy"].conventions["weighting"] == "tf_v1_squeeze"


def test_the_float32_weighting_stage_rounds_the_weighting_in_float32():
    """compute_weighted_loss casts the losses and weights to float32: for float64 logits its products and
    sum round in float32, 2^29 float64 unit roundoffs each (the stage WEIGHTING_STAGE of the v1 bindings)."""
    from lossparity.reference.reduction import WEIGHTING_STAGE

    spec = SPECS["softmax_cross_entropy"]
    x, t, w = np.array([[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]]), np.array([2, 0]), np.array([0.5, 3.0])
    kw = dict(sample_weight=w, weighting="tf_v1", reduction="sum", dtype=np.float64)
    plain = spec.error_model(x, t, stages=("log_softmax",), **kw)
    f32 = spec.error_model(x, t, stages=("log_softmax", WEIGHTING_STAGE), **kw)
    weighted = np.sum(np.abs(w * spec.oracle(x, t, reduction="none")))
    assert f32["value"] - plain["value"] == pytest.approx((2.0**29 - 1) * weighted, rel=1e-12)
    np.testing.assert_array_equal(f32["input"], plain["input"])  # the logits' slopes: the loss's own stages
    assert np.all(f32["sample_weight"] > 2.0**28 * np.abs(spec.oracle(x, t, reduction="none")))
    assert (
        WEIGHTING_STAGE
        in next(b for b in bindings("tensorflow") if b.id.endswith("v1.losses.softmax_cross_entropy")).stages
    )


def test_hinge_loss_converts_every_label_to_2y_minus_1():
    """losses_impl.py's hinge_loss: labels = 2 labels - 1 (whatever they are), relu(1 - labels * logits)
    elementwise. Labels [0, 1, -1], logits [0.5, 0.3, 0.2]: signed labels [-1, 1, -3], losses
    [1.5, 0.7, 1.6]; weights [1, 0, 2]: (1.5 + 3.2) / 2 non-zero weights = 2.35 (the default reduction).
    Keras' binary_if_all reads the labels as given (not every one is 0 or 1): [1, 0.7, 1.2]."""
    spec = SPECS["hinge"]
    x, y, w = np.array([0.5, 0.3, 0.2]), np.array([0.0, 1.0, -1.0]), np.array([1.0, 0.0, 2.0])
    v1 = dict(hinge_labels="binary", hinge_kink=0.0)
    np.testing.assert_allclose(spec.oracle(x, y, reduction="none", **v1), [1.5, 0.7, 1.6], rtol=1e-15)
    got = spec.oracle(x, y, sample_weight=w, weighting="tf_v1", reduction="sum_by_nonzero_weights", **v1)
    assert got == pytest.approx(2.35, rel=1e-15)
    keras = spec.oracle(x, y, reduction="none", hinge_labels="binary_if_all")
    np.testing.assert_allclose(keras, [1.0, 0.7, 1.2], rtol=1e-15)
    # d/dx = -(2y - 1) where violated; relu's slope at 0 is 0 (ReluGrad: features > 0), so z = 0 gives 0
    g = spec.gradient(np.array([0.5, 1.0, -1.0]), np.array([0.0, 1.0, 0.0]), reduction="sum", **v1)["input"]
    np.testing.assert_array_equal(g, [1.0, 0.0, 0.0])
    b = next(b for b in bindings("tensorflow") if b.id == "tf.compat.v1.losses.hinge_loss")
    assert b.conventions["hinge_labels"] == "binary" and b.result_dtype("float64") == "float32"


def test_log_loss_adds_epsilon_inside_the_logs():
    """losses_impl.py's log_loss: -y log(p + eps) - (1 - y) log(1 - p + eps), eps = 1e-7, nothing clipped
    (log_shift), with mpmath; Keras' clip into [eps, 1 - eps] (prob_eps) gives other values near 0 and 1,
    and a zero slope where it clips, where log_loss's slope is (1 - y) / (1 - p + eps) = 1e7 at p = 1."""
    spec = SPECS["binary_cross_entropy"]
    p, y = np.array([0.9, 0.2, 1.0, 0.0, 0.5]), np.array([1.0, 0.0, 0.0, 1.0, 0.3])
    mpmath.mp.dps = 40
    eps = mpmath.mpf(1e-7)
    want = [
        float(
            -mpmath.mpf(yi) * mpmath.log(mpmath.mpf(pi) + eps)
            - (1 - mpmath.mpf(yi)) * mpmath.log(1 - mpmath.mpf(pi) + eps)
        )
        for pi, yi in zip(p, y)
    ]
    got = spec.oracle(p, y, reduction="none", log_shift=1e-7)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    assert got[2] == pytest.approx(-math.log(1e-7), rel=1e-6)  # p = 1, y = 0: -log(eps), 16.118
    clipped = spec.oracle(p, y, reduction="none", prob_eps=1e-7, dtype=np.float64)
    assert abs(clipped[0] - got[0]) > 1e-8  # log(0.9 + eps) is not log(0.9)
    g = spec.gradient(p, y, reduction="none", log_shift=1e-7)
    slope = [
        float(-mpmath.mpf(yi) / (mpmath.mpf(pi) + eps) + (1 - mpmath.mpf(yi)) / (1 - mpmath.mpf(pi) + eps))
        for pi, yi in zip(p, y)
    ]
    np.testing.assert_allclose(g["input"], slope, rtol=1e-14)
    assert g["input"][2] == pytest.approx(1e7, rel=1e-12)
    assert spec.gradient(p, y, reduction="none", prob_eps=1e-7, dtype=np.float64)["input"][2] == 0.0
    # d/dy = log(1 - p + eps) - log(p + eps), by finite differences
    h = 1e-6
    fd = (
        spec.oracle(p, y + h, reduction="none", log_shift=1e-7)
        - spec.oracle(p, y - h, reduction="none", log_shift=1e-7)
    ) / (2 * h)
    np.testing.assert_allclose(g["target"], fd, rtol=1e-7)


def test_log_loss_outside_its_domain_is_nan():
    """Nothing clips log_loss's probabilities: p = -0.1 makes log(p + eps) NaN, and its product with a label
    of 0 is IEEE's NaN (no 0 log 0 = 0 limit applies to the log of a negative number); p in [0, 1] is finite."""
    spec = SPECS["binary_cross_entropy"]
    got = spec.oracle(np.array([-0.1, 0.3, 1.2]), np.array([0.0, 1.0, 1.0]), reduction="none", log_shift=1e-7)
    assert np.isnan(got[0]) and np.isnan(got[2]) and got[1] == pytest.approx(-math.log(0.3 + 1e-7), rel=1e-15)
    # without the shift the oracle keeps its limit convention: the zero label's term drops
    assert np.isfinite(spec.oracle(np.array([-0.1]), np.array([0.0]), reduction="none"))[0]


def test_log_loss_binding_holds_epsilon_as_its_convention():
    b = next(b for b in bindings("tensorflow") if b.id == "tf.compat.v1.losses.log_loss")
    assert b.conventions["log_shift"] == 1e-7 and b.result_dtype("float16") == "float32"
    assert "epsilon" not in b.params


def test_cosine_distance_is_one_minus_the_dot_product_with_the_axis_kept():
    """losses_impl.py's cosine_distance: 1 - reduce_sum(predictions * labels, axis, keepdims=True), the inputs
    documented as unit-normalised and not normalised: for unit vectors 1 - cos; for others the formula
    (labels [3, 4] against themselves: 1 - 25 = -24, where 1 - cos = 0)."""
    spec = SPECS["unit_cosine_distance"]
    x = np.array([[0.6, 0.8], [3.0, 4.0], [1.0, 0.0]])
    y = np.array([[0.8, -0.6], [3.0, 4.0], [-1.0, 0.0]])
    got = spec.oracle(x, y, axis=-1, reduction="none")
    np.testing.assert_array_equal(got, [[1.0], [-24.0], [2.0]])  # orthogonal, unnormalised, antiparallel
    assert spec.oracle(x, y, axis=0, reduction="none").shape == (1, 2)
    # weights of the losses' shape (3, 1): [0, 1, 2] drop the first, (-24 + 4) / 2 non-zero weights = -10
    w = np.array([[0.0], [1.0], [2.0]])
    got = spec.oracle(x, y, axis=-1, sample_weight=w, weighting="tf_v1", reduction="sum_by_nonzero_weights")
    assert got == -10.0
    # a weight of shape (3,), rank one below the losses', is refused as assert_broadcastable refuses it
    with pytest.raises(OracleError) as err:
        spec.oracle(x, y, axis=-1, sample_weight=np.ones(3), weighting="tf_v1", reduction="sum")
    assert err.value.kind == "ValueError"


def test_cosine_distance_gradients_are_minus_the_other_vector():
    spec = SPECS["unit_cosine_distance"]
    x, y = np.array([[0.6, 0.8], [1.0, 0.0]]), np.array([[0.8, -0.6], [0.0, 2.0]])
    g = spec.gradient(x, y, axis=-1, reduction="sum")
    np.testing.assert_array_equal(g["input"], -y)
    np.testing.assert_array_equal(g["target"], -x)
    # weighted (tf_v1, weights (2, 1)): each vector's slope times its weight, the mean over 1 non-zero weight
    w = np.array([[0.0], [3.0]])
    gw = spec.gradient(x, y, axis=-1, sample_weight=w, weighting="tf_v1", reduction="sum_by_nonzero_weights")
    np.testing.assert_array_equal(gw["input"], [[0.0, 0.0], [0.0, -6.0]])
    # d/dw_i = l_i / 1 (the count of non-zero weights is piecewise constant): both losses are 1 - 0
    np.testing.assert_array_equal(gw["sample_weight"], [[1.0], [1.0]])
    b = next(b for b in bindings("tensorflow") if b.id == "tf.compat.v1.losses.cosine_distance")
    assert b.params["axis"] == "axis" and b.result_dtype("float64") == "float32"
    assert b.effective_params(SPECS["unit_cosine_distance"], {"reduction": "sum"}) is None  # axis has no default


# ----------------------------------------------------------------------------- mean_pairwise_squared_error
# labels [[1, 2, 3], [0, 0, 0]], predictions [[1, 3, 5], [1, 0, 2]]: residuals [0, 1, 2] and [1, 0, 2]
PAIR_X = np.array([[1.0, 3.0, 5.0], [1.0, 0.0, 2.0]])
PAIR_Y = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])


def _pairs_by_hand(r):
    """The docstring's definition: the mean over the pairs i < j of (r_i - r_j)^2."""
    pairs = [(r[i] - r[j]) ** 2 for i in range(len(r)) for j in range(i + 1, len(r))]
    return sum(pairs) / len(pairs) if pairs else 0.0


def test_mean_pairwise_squared_error_is_the_mean_over_pairs_within_each_sample():
    from lossparity.reference.regression import mean_pairwise_squared_error as mpse

    # the docstring's example: labels [0, 0.5, 1], predictions [1, 1, 1]: (0.25 + 1 + 0.25) / 3
    assert float(mpse(np.array([[1.0, 1.0, 1.0]]), np.array([[0.0, 0.5, 1.0]]))) == pytest.approx(0.5)
    # (1 + 4 + 1) / 3 + (1 + 1 + 4) / 3, never across the two samples (which would count 15 pairs)
    want = _pairs_by_hand([0.0, 1.0, 2.0]) + _pairs_by_hand([1.0, 0.0, 2.0])
    assert want == 4.0
    assert float(mpse(PAIR_X, PAIR_Y)) == pytest.approx(4.0)
    # one element per sample: no pair, div_no_nan's 0
    assert float(mpse(np.array([[1.0], [4.0]]), np.zeros((2, 1)))) == 0.0


def test_mean_pairwise_squared_error_of_an_empty_batch_is_zero_and_a_scalar_is_no_batch(capsys):
    # found by test_fuzz: an empty batch crashed the oracle's reshape (no -1 to infer from 0 elements), and a
    # 0-d input, which the documented [batch_size, d0, ... dN] excludes, was a traceback in explain
    from lossparity.cli import main

    spec = SPECS["mean_pairwise_squared_error"]
    for shape in [(0,), (0, 3), (2, 0)]:
        x = np.zeros(shape)
        assert spec.oracle(x, x) == 0.0
        assert spec.gradient(x, x)["input"].shape == shape
    assert main(["explain", "mean_pairwise_squared_error", "--input", "0.0", "--target", "0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "rank 1 or more" in err and "shape ()" in err


def test_mean_pairwise_squared_error_weights():
    from lossparity.reference.regression import mean_pairwise_squared_error as mpse

    assert float(mpse(PAIR_X, PAIR_Y, sample_weight=np.array(2.0))) == pytest.approx(8.0)
    assert float(mpse(PAIR_X, PAIR_Y, sample_weight=np.array([[1.0], [2.0]]))) == pytest.approx(2 + 2 * 2)
    # a zero weight: n = 2 in the first sample, whose S = 5 and T = 3 still count all three residuals:
    # 2 * 5 / 1 - 2 * 9 / 2 = 1, times its weights' sum 2; the second 2 times 3
    w = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    assert float(mpse(PAIR_X, PAIR_Y, sample_weight=w)) == pytest.approx(1 * 2 + 2 * 3)
    assert float(mpse(PAIR_X, PAIR_Y, sample_weight=np.zeros((2, 3)))) == 0.0
    # the documented [batch_size] weights for a batch of rank 2: assert_broadcastable's ValueError
    with pytest.raises(OracleError) as raised:
        mpse(PAIR_X, PAIR_Y, sample_weight=np.array([1.0, 2.0]))
    assert raised.value.kind == "ValueError"


def test_mean_pairwise_squared_error_gradients_by_hand_and_by_finite_differences():
    from lossparity.reference.regression import mean_pairwise_squared_error as mpse
    from lossparity.reference.regression import mean_pairwise_squared_error_grad as grad

    w = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    g = grad(PAIR_X, PAIR_Y, sample_weight=w)
    # first sample: n = 2, weights' sum 2, T = 3: 2 (4 r_k / 1 - 4 * 3 / 2) at r = [0, 1, 2]
    np.testing.assert_allclose(g["input"][0], [-12.0, -4.0, 4.0])
    np.testing.assert_allclose(g["target"], -g["input"])
    # the weights' slope: each sample's mean (1 and 2), for each of its weights
    np.testing.assert_allclose(g["sample_weight"], [[1.0] * 3, [2.0] * 3])
    h = 1e-6
    for k in np.ndindex(PAIR_X.shape):
        up, down = PAIR_X.copy(), PAIR_X.copy()
        up[k] += h
        down[k] -= h
        slope = (float(mpse(up, PAIR_Y, sample_weight=w)) - float(mpse(down, PAIR_Y, sample_weight=w))) / (2 * h)
        assert g["input"][k] == pytest.approx(slope, rel=1e-6, abs=1e-6)


def test_mean_pairwise_squared_error_binding_takes_weights_and_computes_in_float32():
    (b,) = [b for b in bindings("tensorflow") if b.id == "tf.compat.v1.losses.mean_pairwise_squared_error"]
    assert b.params == {"sample_weight": "weights"}
    assert b.computes_in == "float32"
    assert "weights=" not in b.call and "{kw}" in b.call


def test_tensorflow_mean_pairwise_counts_the_batch_eagerly_and_refuses_batch_size_weights():
    """What the known entry tf-v1-mean-pairwise-eager-counts-the-batch and the batch-size-weights edge row
    say of TensorFlow itself: the documented 4.0 under tf.function, 2.8 eagerly (n = 6, the batch's
    elements), and [batch_size] weights refused with ValueError in both."""
    tf = pytest.importorskip("tensorflow")
    f = tf.compat.v1.losses.mean_pairwise_squared_error
    labels, predictions = tf.constant(PAIR_Y, tf.float32), tf.constant(PAIR_X, tf.float32)
    assert float(tf.function(f)(labels, predictions)) == pytest.approx(4.0)
    # eagerly each sample's n is 6: 2 * 5 / 5 - 2 * 9 / 30 = 1.4, twice
    assert float(f(labels, predictions)) == pytest.approx(2.8)
    with pytest.raises(ValueError, match="weights can not be broadcast"):
        f(labels, predictions, weights=tf.constant([1.0, 2.0]))


# ----------------------------------------------------------------------------- tf.compat.v1.nn.ctc_loss
def _ctc(x, labels, in_len, tg_len, **conv):
    from lossparity.reference.ctc import ctc_loss

    return ctc_loss(
        np.asarray(x, np.float64),
        np.asarray(labels, np.int64),
        input_lengths=np.asarray(in_len),
        target_lengths=np.asarray(tg_len),
        reduction="none",
        log_softmax_input=True,
        **conv,
    )


def test_ctc_blank_last_is_the_last_class_whatever_the_blank_parameter():
    # two frames of logits [1, 2, 3] (p = softmax), target [0], the blank 2: the alignments (0, 0), (0, b),
    # (b, 0): p0^2 + 2 p0 p2; class 0 is an ordinary label
    x = np.array([[[1.0, 2.0, 3.0]] * 2])
    z = math.e + math.e**2 + math.e**3
    p0, p2 = math.e / z, math.e**3 / z
    want = -math.log(p0**2 + 2 * p0 * p2)
    assert float(_ctc(x, [[0]], [2], [1], ctc_blank="last")[0]) == pytest.approx(want)
    assert float(_ctc(x, [[0]], [2], [1], ctc_blank="last", blank=0)[0]) == pytest.approx(want)
    # the given blank 0 would make class 0 the blank too: another loss
    assert float(_ctc(x, [[0]], [2], [1], blank=0)[0]) != pytest.approx(want)


@pytest.mark.parametrize(
    ("labels", "in_len", "tg_len", "message"),
    [
        ([[1], [0]], [2, 2], [1, 0], "Labels length is zero in batch 1"),
        ([[1, 0, 1], [1, 0, 0]], [2, 2], [3, 1], "required: 3, available: 2"),
        ([[1], [0]], [0, 2], [1, 1], "required: 1, available: 0"),
    ],
)
def test_ctc_label_checks_raise_invalid_argument_error(labels, in_len, tg_len, message):
    x = np.zeros((2, 2, 3))
    with pytest.raises(OracleError, match=message) as raised:
        _ctc(x, labels, in_len, tg_len, ctc_blank="last", ctc_label_checks="tf_v1")
    assert raised.value.kind == "InvalidArgumentError"
    # without the checks the same case has a loss per sample (+inf for a target longer than its input)
    assert _ctc(x, labels, in_len, tg_len, ctc_blank="last").shape == (2,)


def test_ctc_label_checks_pass_repeats_that_need_a_blank_they_cannot_have():
    # [1, 1] in two frames: 2 labels, 2 frames, the check passes; no alignment: +inf
    out = _ctc(np.zeros((1, 2, 3)), [[1, 1]], [2], [2], ctc_blank="last", ctc_label_checks="tf_v1")
    assert out[0] == np.inf


def test_tensorflow_v1_ctc_loss_as_bound():
    """The binding's call on TensorFlow itself: the SparseTensor of the dense labels and lengths, time-major
    logits, blank C - 1 (tf.nn.ctc_loss with blank_index=C - 1 agrees), and the kernel's two refusals."""
    tf = pytest.importorskip("tensorflow")
    (b,) = [b for b in bindings("tensorflow") if b.id == "tf.compat.v1.nn.ctc_loss"]
    assert b.conventions["ctc_blank"] == "last" and b.conventions["time_major"] is True
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    target, tg_len, in_len = np.array([[0, 1], [1, 0]]), np.array([2, 1]), np.array([4, 3])

    def call(target, tg_len, in_len):
        env = {"tf": tf, "input": tf.constant(np.transpose(x, (1, 0, 2)), tf.float64)}
        env.update(target=tf.constant(target), target_lengths=tf.constant(tg_len), input_lengths=tf.constant(in_len))
        return eval(b.call.replace("{kw}", ""), env).numpy()  # noqa: S307 - the binding's own call text

    want = _ctc(x, target, in_len, tg_len, ctc_blank="last")
    np.testing.assert_allclose(call(target, tg_len, in_len), want, rtol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Labels length is zero"):
        call(target, np.array([2, 0]), in_len)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Not enough time"):
        call(target, tg_len, np.array([1, 3]))
