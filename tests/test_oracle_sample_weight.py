"""Keras' ``sample_weight`` and reductions in the oracle (``reference/reduction.py``): the shared
weighted reduction against hand-derived values, its cotangent against central differences, the
specs' weighted oracles on the Keras docstrings' own examples (their numbers derived here from
the formulas, with mpmath), and class weights as ``Model.fit`` passes them (``weight[y]``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from mpmath import mp, mpf

from lossparity.conformance.runner import mobius_slope, weight_gradients
from lossparity.conformance.specs import SPECS
from lossparity.core.model import Case
from lossparity.reference.errors import OracleError
from lossparity.reference.reduction import (
    KERAS_REDUCTIONS,
    REDUCTIONS,
    keras_reduce,
    keras_reduce_grad,
    keras_reduce_weight_grad,
    keras_weighted_shape,
)

SPEC = SPECS  # name -> spec
L = np.array([1.0, 2.0, 4.0])


def test_keras_reductions_are_in_the_one_list():
    assert set(KERAS_REDUCTIONS) <= set(REDUCTIONS)


@pytest.mark.parametrize(
    ("reduction", "expected"),
    [
        ("none", [0.5, 0.0, 8.0]),
        ("sum", 8.5),  # 0.5 * 1 + 0 * 2 + 2 * 4
        ("mean", 8.5 / 3),  # over the number of weighted elements, the zero weight's included
        ("sum_over_batch_size", 8.5 / 3),
        ("mean_with_sample_weight", 8.5 / 2.5),  # over the weights' sum 0.5 + 0 + 2
    ],
)
def test_per_sample_weights(reduction, expected):
    got = keras_reduce(L, np.array([0.5, 0.0, 2.0]), reduction=reduction)
    np.testing.assert_array_equal(got, np.asarray(expected))


def test_a_zero_divisor_gives_zero():
    """divide_no_nan: the weights' sum 0 gives 0, whatever the weighted sum (here 1 - 1 + 0)."""
    assert keras_reduce(L, np.zeros(3), reduction="mean_with_sample_weight") == 0.0
    assert keras_reduce(L, np.array([1.0, -0.5, 0.0]), reduction="mean_with_sample_weight") == 0.0
    np.testing.assert_array_equal(keras_reduce_grad((3,), np.zeros(3), reduction="mean_with_sample_weight"), 0.0)


def test_negative_weights_divide_by_their_signed_sum():
    assert keras_reduce(L, np.array([-1.0, 1.0, 1.0]), reduction="mean_with_sample_weight") == 5.0  # (-1+2+4)/1


def test_broadcast_shapes():
    # (N,) losses, (N, 1) weights: the losses get a trailing 1, the result is (N, 1)
    got = keras_reduce(L, np.array([[2.0], [1.0], [0.5]]), reduction="none")
    np.testing.assert_array_equal(got, [[2.0], [2.0], [2.0]])
    # (N, 1) losses, (N,) weights: the weights get a trailing 1
    np.testing.assert_array_equal(keras_reduce(L[:, None], np.array([1.0, 1.0, 0.25]), reduction="sum"), 4.0)
    # (N, d) losses, (N, 1) weights broadcast along d; the mean counts N * d elements, the
    # weighted mean the 2 weights only (their unbroadcast sum)
    v = np.array([[1.0, 3.0], [2.0, 6.0]])
    w = np.array([[1.0], [0.5]])
    assert keras_reduce(v, w, reduction="sum_over_batch_size") == (1 + 3 + 1 + 3) / 4
    assert keras_reduce(v, w, reduction="mean_with_sample_weight") == 8.0 / 1.5
    # (N, d) losses, (N, d, 1) weights: the trailing 1 is squeezed
    assert keras_reduce(v, np.ones((2, 2, 1)), reduction="sum") == 12.0
    assert keras_weighted_shape((2, 3), (2, 3, 1)) == (2, 3)


def test_unreduced_shapes_are_returned_as_they_are():
    """reduce_values returns weighted values of shape () or (0,) unreduced, whatever the reduction."""
    assert keras_reduce(np.float64(3.0), np.float64(2.0), reduction="mean").shape == ()
    assert keras_reduce(np.float64(3.0), np.float64(2.0), reduction="mean") == 6.0
    assert keras_reduce(np.zeros(0), np.zeros(0), reduction="sum_over_batch_size").shape == (0,)


def test_a_weight_of_the_wrong_shape_is_a_one_line_error():
    with pytest.raises(OracleError, match=r"sample_weight of shape \(2,\) does not broadcast") as raised:
        keras_reduce(L, np.ones(2), reduction="sum")
    assert raised.value.kind == "ValueError"  # what Keras' broadcast raises: the documented outcome


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", *KERAS_REDUCTIONS])
@pytest.mark.parametrize(
    ("shape", "w"),
    [((3,), [0.5, 0.0, 2.0]), ((3,), [[2.0], [1.0], [0.5]]), ((2, 2), [[1.0], [0.5]]), ((2, 1), [3.0, -1.0])],
)
def test_cotangent_is_the_derivative(reduction, shape, w):
    """d sum(keras_reduce) / d values: exact for a function linear in the values (a central
    difference of step 1 is exact up to the sums' rounding)."""
    w = np.asarray(w)
    values = np.arange(1.0, 1.0 + math.prod(shape)).reshape(shape)
    g = keras_reduce_grad(shape, w, reduction=reduction)
    assert g.shape == shape
    for k in np.ndindex(shape):
        up, down = values.copy(), values.copy()
        up[k] += 1.0
        down[k] -= 1.0
        total = lambda v: np.sum(keras_reduce(v, w, reduction=reduction))  # noqa: E731
        slope = (total(up) - total(down)) / 2
        assert g[k] == pytest.approx(slope, rel=1e-14, abs=1e-15)


# ----------------------------------------------------------------------------- Keras' docstrings


def _case(spec, input_, target, **params):
    t = np.asarray(target, np.int64 if SPEC[spec].target == "index" else np.float64)
    params = {k: np.asarray(v, np.float64) if isinstance(v, list) else v for k, v in params.items()}
    return np.asarray(input_, np.float64), t, params


def _keras_oracle(spec: str, input_, target, **params):
    """The spec's oracle under its Keras class binding's conventions."""
    from lossparity.conformance.registry import bindings  # noqa: PLC0415 - the one registry

    binding = next(b for b in bindings("keras[tensorflow]") if b.spec == spec and b.params.get("sample_weight"))
    x, t, params = _case(spec, input_, target, **params)
    conv = {k: v for k, v in binding.conventions.items() if k in SPEC[spec].conventions}
    return float(SPEC[spec].oracle(x, t, **params, **conv, dtype=np.float32))


def test_categorical_crossentropy_docstring():
    """CategoricalCrossentropy()(y_true, y_pred, sample_weight=[0.3, 0.7]) on Keras' example:
    the per-sample losses are -log 0.95 and -log 0.1 (the 0 is clipped, on a class with target 0),
    weighted and summed over the batch size 2."""
    mp.dps = 30
    want = (mpf("0.3") * -mp.log(mpf("0.95")) + mpf("0.7") * -mp.log(mpf("0.1"))) / 2
    got = _keras_oracle(
        "categorical_cross_entropy",
        [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]],
        [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        sample_weight=[0.3, 0.7],
    )
    assert got == pytest.approx(float(want), rel=1e-12)


def test_sparse_categorical_crossentropy_docstring():
    """SparseCategoricalCrossentropy renormalizes after its clip: the first sample's 0 becomes 1e-7
    and its 0.95 is divided by 1 + 1e-7."""
    mp.dps = 30
    eps = mpf(float(np.float32(1e-7)))  # Keras' epsilon, a float32 in a float32 computation
    per = [-mp.log(mpf("0.95") / (1 + eps)), -mp.log(mpf("0.1"))]
    args = ([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], [1, 2])
    got = _keras_oracle("sparse_categorical_cross_entropy", *args, sample_weight=[0.3, 0.7])
    assert got == pytest.approx(float((mpf("0.3") * per[0] + mpf("0.7") * per[1]) / 2), rel=1e-12)
    got = _keras_oracle(
        "sparse_categorical_cross_entropy", *args, sample_weight=[0.3, 0.7], reduction="mean_with_sample_weight"
    )
    assert got == pytest.approx(float((mpf("0.3") * per[0] + mpf("0.7") * per[1]) / 1), rel=1e-12)


def test_binary_crossentropy_from_logits_docstring():
    """BinaryCrossentropy(from_logits=True), example 2, sample_weight=[0.8, 0.2]: each sample's
    mean over its two logits of softplus(x) (target 0) or softplus(-x) (target 1)."""
    mp.dps = 30

    def softplus(x):
        return mp.log(1 + mp.exp(mpf(x)))

    first = (softplus("-18.6") + softplus("-0.51")) / 2  # targets 0, 1
    second = (softplus("2.94") + softplus("-12.8")) / 2  # targets 0, 0
    want = (mpf("0.8") * first + mpf("0.2") * second) / 2
    got = _keras_oracle(
        "binary_cross_entropy_with_logits",
        [[-18.6, 0.51], [2.94, -12.8]],
        [[0.0, 1.0], [0.0, 0.0]],
        sample_weight=[0.8, 0.2],
    )
    assert got == pytest.approx(float(want), rel=1e-12)


# ----------------------------------------------------------------------------- class weights


def test_class_weight_is_sample_weight_of_the_target():
    """Model.fit(class_weight=w) passes sample_weight = w[y]: the weighted spec with its class
    ``weight`` and the mean over the samples (``mean_by="elements"``) is that; torch's mean divides
    by the sum of the targets' weights instead."""
    spec = SPEC["softmax_cross_entropy"]
    x = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [0.5, 0.5, 0.5]])
    t = np.array([0, 2, 1])
    w = np.array([3.0, 1.0, 0.5])
    per = spec.oracle(x, t, reduction="none")
    for reduction in ("none", "sum", "mean"):
        by_class = spec.oracle(x, t, weight=w, reduction=reduction, mean_by="elements")
        by_sample = spec.oracle(x, t, sample_weight=w[t], reduction=reduction)
        np.testing.assert_allclose(by_class, by_sample, rtol=1e-15)
    torch_mean = spec.oracle(x, t, weight=w, reduction="mean", mean_by="weights")
    assert torch_mean == pytest.approx(float(np.sum(w[t] * per) / np.sum(w[t])), rel=1e-15)
    keras_weighted_mean = spec.oracle(x, t, sample_weight=w[t], reduction="mean_with_sample_weight")
    assert keras_weighted_mean == pytest.approx(float(torch_mean), rel=1e-15)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", *KERAS_REDUCTIONS])
@pytest.mark.parametrize("w", [[0.5, 0.0, 2.0], [[1.5], [0.25], [1.0]]])
def test_input_gradient_with_sample_weight(reduction, w):
    """The weighted spec's gradient against a central difference of its own oracle."""
    spec = SPEC["softmax_cross_entropy"]
    x = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [0.5, -0.5, 0.25]])
    t = np.array([0, 2, 1])
    w = np.asarray(w)
    g = spec.gradient(x, t, sample_weight=w, reduction=reduction)["input"]
    h = 1e-6
    for k in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[k] += h
        down[k] -= h
        f = np.sum(spec.oracle(up, t, sample_weight=w, reduction=reduction))
        b = np.sum(spec.oracle(down, t, sample_weight=w, reduction=reduction))
        assert g[k] == pytest.approx((f - b) / (2 * h), rel=1e-6, abs=1e-9)


def test_sample_weight_gradient_of_the_weighted_mean():
    """d/dw_k of sum(w L) / sum(w) is (L_k - mean) / sum(w), read by the run's Möbius slope."""
    spec = SPEC["softmax_cross_entropy"]
    x = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]])
    t = np.array([0, 2])
    w = np.array([0.5, 2.0])
    params = {"sample_weight": w, "reduction": "mean_with_sample_weight"}
    case = Case(spec.name, "t", {}, {"input": x, "target": t}, params)
    got = weight_gradients(spec, case, params, {}, "float64", None)["sample_weight"]
    per = spec.oracle(x, t, reduction="none")
    mean = np.sum(w * per) / np.sum(w)
    np.testing.assert_allclose(got, (per - mean) / np.sum(w), rtol=1e-9)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", *KERAS_REDUCTIONS])
@pytest.mark.parametrize(
    ("values", "w"),
    [([1.0, 2.0, 4.0], [0.5, 0.25, 2.0]), ([[1.0, 3.0], [2.0, 6.0]], [[1.0], [0.5]]), ([1.0, 2.0], [[2.0], [-1.0]])],
)
def test_sample_weight_gradient_is_the_derivative(reduction, values, w):
    """The analytic d/d sample_weight against the run's exact slope of a ratio of affine functions."""
    values, w = np.asarray(values), np.asarray(w)
    got = keras_reduce_weight_grad(values, w, reduction=reduction)
    assert got.shape == w.shape
    for k in np.ndindex(w.shape):
        up, down = w.copy(), w.copy()
        up[k] += 0.125
        down[k] -= 0.125
        total = [float(np.sum(keras_reduce(values, v, reduction=reduction))) for v in (down, w, up)]
        assert got[k] == pytest.approx(mobius_slope(*total, 0.125), rel=1e-12, abs=1e-15)


def test_sample_weight_gradient_at_a_zero_divisor_is_zero():
    """All weights 0 under mean_with_sample_weight: divide_no_nan is the constant 0 there (a slope
    read from neighbouring values would see the jump to L_k, not a derivative)."""
    got = keras_reduce_weight_grad(np.array([1.0, 2.0]), np.zeros(2), reduction="mean_with_sample_weight")
    np.testing.assert_array_equal(got, [0.0, 0.0])
    spec = SPEC["softmax_cross_entropy"]
    x, t = np.array([[1.0, 2.0], [0.5, -0.5]]), np.array([0, 1])
    grads = spec.gradient(x, t, sample_weight=np.zeros(2), reduction="mean_with_sample_weight")
    np.testing.assert_array_equal(grads["sample_weight"], [0.0, 0.0])
    np.testing.assert_array_equal(grads["input"], np.zeros((2, 2)))


def test_regression_classes_weight_their_per_sample_means():
    """MeanSquaredError's per-sample losses are the means of the last axis: (0.01 + 0.01) / 2 and
    (0.25 + 0.25) / 2; weights [2, 0] give 0.02, over the weights' sum 2."""
    got = _keras_oracle(
        "squared_error",
        [[0.9, 0.1], [0.5, 0.5]],
        [[1.0, 0.0], [0.0, 1.0]],
        sample_weight=[2.0, 0.0],
        reduction="mean_with_sample_weight",
    )
    assert got == pytest.approx(0.01, rel=1e-12)


def test_a_reduction_keras_or_tf_v1_does_not_have_is_their_documented_value_error():
    """Keras' Loss(reduction="batchmean") and tf.compat.v1's Reduction.validate refuse a name they do
    not have with ValueError: the oracle's outcome, not a crash of the oracle (found by the fuzz test
    of ``explain binary_cross_entropy --param sample_weight=... --param reduction=batchmean``)."""
    from lossparity.reference.reduction import keras_reduce, tf_v1_reduce

    for reduce in (keras_reduce, tf_v1_reduce):
        with pytest.raises(OracleError, match="no reduction 'batchmean'") as err:
            reduce(np.array([0.5, 1.0]), np.array([1.0, 1.0]), reduction="batchmean")
        assert err.value.kind == "ValueError"
