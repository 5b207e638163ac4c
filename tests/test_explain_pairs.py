"""``lossparity explain`` on pairs of calls that users reported (or a framework documents) as
giving different numbers: docs/discrepancies.md has each case, its link, the arrays and the cause.

Each test passes the two calls as the user wrote them (the call-text form of ``explain``), with
the user's arrays, and asserts
- the numbers: each side's actual value and the oracle's expected value, against a number derived
  here from the documented mathematics in float64 (NumPy; never a framework's output), and
- the cause: the attribution's status and the knobs it credits (``attribution["conventions"]``:
  those the difference needs, and no knob whose switch changes nothing), named in the summary.

Shapes: the arrays are the users' own layouts (batch first, classes last for Keras and TensorFlow,
at dim 1 for PyTorch); the expected values are derived in those layouts.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lossparity.cli import main
from lossparity.core.records import decode_array

pytest.importorskip("torch")

EPS = 1e-7  # keras.config.epsilon(), the clip of Keras' probability losses
#: The knob for what each side applies to its arguments before the loss (sigmoid, softmax...):
#: ``transform`` in the interface's description, ``arguments`` ("which side's arrays a spec
#: reads", conformance/attribution.py) in its implementation.
TRANSFORM = {"transform", "arguments"}
LN2 = math.log(2.0)
#: Relative tolerance of a framework's result against the derived number, per result dtype: a
#: few roundings of the result (float16 is only ever compared where the result is inf).
RTOL = {"float64": 1e-9, "float32": 4e-6}


# -- the documented mathematics, float64 ------------------------------------------------------


def f32(v) -> np.ndarray:
    """v as the float32 the framework holds, back in float64."""
    return np.asarray(v, np.float32).astype(np.float64)


def softplus(z):
    return np.logaddexp(0.0, z)


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, np.float64)))


def log_softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    return x - np.logaddexp.reduce(x, axis=axis, keepdims=True)


def bce_logits(z, y):
    """BCE of sigmoid(z), elementwise: softplus(z) - y z (BCEWithLogitsLoss' documented formula)."""
    return softplus(z) - y * z


def bce_probs(p, y, *, log_min=None):
    """BCE on probabilities, elementwise; ``log_min``: PyTorch's clamp of each log."""
    with np.errstate(divide="ignore"):
        lp, l1p = np.log(p), np.log1p(-p)
    if log_min is not None:
        lp, l1p = np.maximum(lp, log_min), np.maximum(l1p, log_min)
    return -(y * lp + (1 - y) * l1p)


def keras_clip(p, dtype):
    """Keras' clip of probabilities into [eps, 1 - eps], both bounds held in ``dtype``."""
    lo, hi = float(np.asarray(EPS, dtype)), float(np.asarray(1 - EPS, dtype))
    return np.clip(np.asarray(p, np.float64), lo, hi)


# -- running explain --------------------------------------------------------------------------


def explain_pair(capsys, call_a: str, call_b: str, /, *, dtype: str = "float32", **arrays) -> dict:
    """``lossparity explain A B --json`` on the named arrays (``input`` and ``target`` through
    ``--input``/``--target``); the literals keep the dtype written (a list of floats is float)."""
    argv = ["explain", call_a, call_b, "--dtype", dtype, "--json"]
    for name, values in arrays.items():
        text = json.dumps(values)
        argv += [f"--{name}", text] if name in ("input", "target") else ["--array", f"{name}={text}"]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def value(side: dict, key: str = "actual") -> np.ndarray:
    record = side[key]
    assert "value" in record, f"{side['binding']} {key}: {record}"
    return decode_array(record["value"])


def assert_values(side: dict, want, dtype: str, *, atol: float = 0.0):
    """The side's actual value within a few roundings of ``dtype`` of the derived ``want``, and the
    oracle's expectation (float64 under the binding's conventions) closer still."""
    want = np.asarray(want, np.float64)
    for key, rtol in (("actual", RTOL[dtype]), ("expected", min(RTOL[dtype], 1e-6))):
        got = value(side, key)
        assert got.shape == want.shape, (side["binding"], key, got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"{side['binding']} {key}")


def summary(e: dict) -> str:
    return " ".join(" ".join(e["summary"]).split())


def assert_cause(e: dict, must: set[str], allowed: set[str] = frozenset()):
    """The difference is explained; the knobs credited include ``must`` (without them the
    predictions cannot meet) and nothing outside ``must | allowed`` (knobs that change nothing
    here); each knob of ``must`` is named in the printed summary."""
    attribution = e["attribution"]
    assert attribution["status"] == "explained", attribution
    credited = set(attribution["conventions"])
    assert must <= credited <= must | set(allowed), attribution
    words = summary(e)
    for name in must:
        assert name in words, (name, e["summary"])


def assert_no_knob(e: dict, status: str):
    """Nothing to explain: status ``status`` and no knob credited with any share."""
    attribution = e["attribution"]
    assert attribution["status"] == status, attribution
    assert attribution["conventions"] == [], attribution
    assert not any((d.get("share") or 0.0) > 1e-9 for d in attribution["differing"]), attribution


def domain(side: dict) -> str:
    """What the side says is outside its documented domain ("" where nothing is)."""
    found = side.get("domain") or ""
    return " ".join(found) if isinstance(found, list) else found


def verdicts(e: dict) -> list[str]:
    return [side["verdict"] for side in e["bindings"]]


# -- logits against probabilities -------------------------------------------------------------


# https://github.com/pytorch/pytorch/issues/39435 (BCEWithLogitsLoss() not equal to BCELoss() with
# sigmoid(); "Error still occurs with float64"): rows of the report's 20, float32 and float64.
@pytest.mark.parametrize(
    "dtype, pred, targ",
    [
        ("float32", [0.51216, -9.5367, 24.377, 35.349], [1.0, 0.0, 0.0, 0.0]),
        ("float64", [0.51216, -9.5367, 193.40], [1.0, 0.0, 0.0]),
    ],
    ids=["float32", "float64"],
)
def test_torch_logits_against_sigmoid_of_saturated_logits(capsys, dtype, pred, targ):
    e = explain_pair(
        capsys,
        "torch.nn.BCEWithLogitsLoss()(pred, targ)",
        "torch.nn.BCELoss()(torch.sigmoid(pred), targ)",
        dtype=dtype,
        pred=pred,
        targ=targ,
    )
    z = f32(pred) if dtype == "float32" else np.array(pred)
    y = np.array(targ)
    logits, probs = e["bindings"]
    assert (logits["binding"], probs["binding"]) == ("torch.nn.BCEWithLogitsLoss", "torch.nn.BCELoss")
    assert_values(logits, bce_logits(z, y).mean(), dtype)
    # sigmoid(z) is held in the dtype: 1 - sigmoid(z) = e^-z / (1 + e^-z) is below half an ulp of 1
    # for the large logits (float32: z > 17.3; float64: z > 36.7), so p rounds to exactly 1 and
    # BCELoss' clamp turns log(1 - p) = -inf into -100.
    p = sigmoid(z).astype(dtype).astype(np.float64)
    assert np.all(p[z > 37] == 1.0)
    want = bce_probs(p, y, log_min=-100.0)
    assert np.count_nonzero(want == 100.0) == np.count_nonzero(z > 20)
    assert_values(probs, want.mean(), dtype)
    assert verdicts(e) == ["conform", "conform"]
    # Without the clamp at -100 B's prediction would be inf: log_min is needed, and it is named.
    assert_cause(e, {"log_min"}, {"loss", *TRANSFORM})


# https://github.com/pytorch/pytorch/issues/139916: the same two calls on moderate logits agree
# (the report prints tensor(0.7205) for both); as the reporter wrote them (keywords throughout,
# torch.sigmoid(input=...) is its documented signature) and with positional arguments.
@pytest.mark.parametrize(
    "call_a, call_b",
    [
        pytest.param(
            "nn.BCEWithLogitsLoss()(input=tensor1, target=tensor2)",
            "nn.BCELoss()(input=torch.sigmoid(input=tensor1), target=tensor2)",
            id="as-reported",
        ),
        pytest.param(
            "nn.BCEWithLogitsLoss()(tensor1, tensor2)", "nn.BCELoss()(torch.sigmoid(tensor1), tensor2)", id="positional"
        ),
    ],
)
def test_torch_logits_against_sigmoid_of_moderate_logits_agree(capsys, call_a, call_b):
    tensor1, tensor2 = [0.4, 0.8, 0.6, 0.3, 0.0, 0.5], [0.2, 0.9, 0.4, 0.1, 0.8, 0.5]
    e = explain_pair(capsys, call_a, call_b, tensor1=tensor1, tensor2=tensor2)
    want = bce_logits(f32(tensor1), f32(tensor2)).mean()
    assert abs(want - 0.7205) < 5e-5  # the report's four digits, from the formula
    for side in e["bindings"]:
        assert_values(side, want, "float32")
    assert verdicts(e) == ["conform", "conform"]
    assert_no_knob(e, "same")


# https://github.com/pytorch/pytorch/issues/102894: BCEWithLogitsLoss(inf) is nan where the
# documented loss (and BCELoss on sigmoid(inf) = 1) is finite; the registered known deviation
# torch-bce-logits-module-infinite-logits (whose link is that issue) is named.
def explain_infinite_logit(capsys) -> dict:
    return explain_pair(
        capsys,
        "torch.nn.BCEWithLogitsLoss()(x, y)",
        "torch.nn.BCELoss()(x.sigmoid(), y)",
        x=[math.inf, 1.0],
        y=[1.0, 0.0],
    )


def test_torch_logits_infinite_logit_is_the_known_deviation(capsys):
    e = explain_infinite_logit(capsys)
    logits, probs = e["bindings"]
    # -[y log sigmoid(x) + (1-y) log(1 - sigmoid(x))]: 0 at x = inf, y = 1; softplus(1) at x = 1, y = 0
    want = (0.0 + softplus(1.0)) / 2
    assert np.isnan(value(logits)).all()
    np.testing.assert_allclose(value(logits, "expected"), want, rtol=1e-6)
    assert_values(probs, want, "float32")
    assert probs["verdict"] == "conform"
    known = logits["known"]
    assert (known if isinstance(known, str) else known["id"]) == "torch-bce-logits-module-infinite-logits"
    assert "torch-bce-logits-module-infinite-logits" in summary(e)
    assert e["attribution"]["status"] == "same"


def test_torch_logits_infinite_logit_verdict_is_known(capsys):
    logits, _ = explain_infinite_logit(capsys)["bindings"]
    assert logits["verdict"] == "known"


# https://github.com/pytorch/pytorch/issues/123339: BCELoss raises for a target outside [0, 1]
# (documented range: a conforming error), BCEWithLogitsLoss evaluates the formula (-0.0259).
def test_torch_bce_target_outside_the_documented_range(capsys):
    e = explain_pair(capsys, "torch.nn.BCEWithLogitsLoss()(x, t)", "torch.nn.BCELoss()(x, t)", x=[0.5], t=[2.0])
    logits, probs = e["bindings"]
    want = bce_logits(0.5, 2.0)
    assert abs(want - (-0.0259)) < 5e-5
    assert_values(logits, want, "float32")
    assert probs["actual"].get("error") == "RuntimeError"
    assert probs["verdict"] == "conform"  # the documented check, not a deviation
    assert "target" in domain(probs)


# Stack Overflow 75735708 (https://example-a.com/answer/75735708): Keras BinaryCrossentropy with
# from_logits=True against the same class on tf.sigmoid of the logits; cause: the clip at eps.
def test_keras_logits_against_sigmoid_probabilities(capsys):
    a = [[0, 0, 1, 1], [0, 1, 0, 1.0]]
    b = [[18, -20, 20, 20], [-18, 0.0, -10, 12]]
    e = explain_pair(
        capsys,
        "tf.keras.losses.BinaryCrossentropy(from_logits=True)(a, b)",
        "tf.keras.losses.BinaryCrossentropy()(a, tf.sigmoid(b))",
        dtype="float64",
        a=a,
        b=b,
    )
    y, z = np.array(a), np.array(b)
    logits, probs = e["bindings"]
    # Both classes compute in float32 (their dtype defaults to floatx()); these inputs are exact there.
    assert_values(logits, bce_logits(z, y).mean(), "float32")
    # sigmoid(18) and sigmoid(20) round to 1 in float32 and are clipped to f32(1 - eps) = 1 - 2^-23:
    # the (target 0, logit 18) element costs 23 log 2 instead of 18.
    p = keras_clip(f32(sigmoid(z)), np.float32)
    assert p[0, 0] == 1 - 2.0**-23
    assert_values(probs, bce_probs(p, y).mean(), "float32")
    assert verdicts(e) == ["conform", "conform"]
    assert_cause(e, {"prob_eps"}, {"loss", *TRANSFORM})


# -- one loss, class against function ---------------------------------------------------------


# Keras' Loss class computes in its dtype, floatx() = float32 by default (the Loss documentation;
# https://github.com/keras-team/keras-core/issues/922); the function form in the input's dtype.
# In float16 the clip bound 1 - eps rounds to 1 (https://github.com/keras-team/keras/issues/377).
@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_keras_class_against_function_computes_in_float32(capsys, dtype):
    y, p = [[0.0, 1.0]], [[1.0, 0.5]]
    e = explain_pair(
        capsys,
        "keras.losses.binary_crossentropy(y, p)",
        "keras.losses.BinaryCrossentropy(reduction='none')(y, p)",
        dtype=dtype,
        y=y,
        p=p,
    )
    function, cls = e["bindings"]
    # The class in float32: p = 1 is clipped to 1 - 2^-23, log(1 - p) = -23 log 2.
    assert_values(cls, [(23 * LN2 + LN2) / 2], "float32")
    if dtype == "float16":
        # 1 - 1e-7 is 1 in float16: the clip leaves p = 1 and log(1 - p) = -inf.
        assert np.float16(1 - EPS) == 1.0
        assert np.isposinf(value(function)).all() and np.isposinf(value(function, "expected")).all()
    else:
        assert_values(function, [(-math.log(EPS) + LN2) / 2], "float64")
    assert verdicts(e) == ["conform", "conform"]
    assert_cause(e, {"compute dtype"})


# -- targets: class indices against probabilities on one binding ------------------------------


# https://discuss.pytorch.org/t/weight-in-cross-entropy-loss/78256: with class weights, 'mean'
# divides by the sum of the targets' weights for class indices (1.7529) and by N for class
# probabilities (the user's manual 0.6662), as CrossEntropyLoss documents.
def test_torch_cross_entropy_index_against_probability_targets_with_weights(capsys):
    x, sc = [[3.0, 4.0], [6.0, 9.0]], [0.4, 0.36]
    e = explain_pair(
        capsys,
        "nn.CrossEntropyLoss(weight=sc)(input, target)",
        "nn.CrossEntropyLoss(weight=sc)(input, onehot)",
        input=x,
        target=[1, 0],
        onehot=[[0.0, 1.0], [1.0, 0.0]],
        sc=sc,
    )
    losses = -log_softmax(f32(x))[[0, 1], [1, 0]]  # log(1 + e^-1), log(1 + e^3)
    w = f32(sc)[[1, 0]]
    index, probs = e["bindings"]
    assert index["spec"] == "softmax_cross_entropy" and probs["spec"] == "softmax_cross_entropy_soft"
    assert_values(index, (w * losses).sum() / w.sum(), "float32")
    assert_values(probs, (w * losses).sum() / 2, "float32")
    assert abs((w * losses).sum() / w.sum() - 1.7529) < 5e-5
    assert verdicts(e) == ["conform", "conform"]
    attribution = e["attribution"]
    assert attribution["status"] == "explained"
    mean_by = next(d for d in attribution["differing"] if d["name"] == "mean_by")
    assert (mean_by["a"], mean_by["b"], mean_by["alone"]) == ("weights", "elements", 1.0)


def test_torch_cross_entropy_weighted_mean_is_named(capsys):
    e = explain_pair(
        capsys,
        "nn.CrossEntropyLoss(weight=sc)(input, target)",
        "nn.CrossEntropyLoss(weight=sc)(input, onehot)",
        input=[[3.0, 4.0], [6.0, 9.0]],
        target=[1, 0],
        onehot=[[0.0, 1.0], [1.0, 0.0]],
        sc=[0.4, 0.36],
    )
    assert_cause(e, {"mean_by"}, {"loss"})


# The same pair without weights: one-hot probabilities and class indices give the same mean.
def test_torch_cross_entropy_index_against_one_hot_targets_agree(capsys):
    x = [[3.0, 4.0], [6.0, 9.0]]
    e = explain_pair(
        capsys,
        "nn.CrossEntropyLoss()(input, target)",
        "nn.CrossEntropyLoss()(input, onehot)",
        input=x,
        target=[1, 0],
        onehot=[[0.0, 1.0], [1.0, 0.0]],
    )
    want = -log_softmax(f32(x))[[0, 1], [1, 0]].mean()
    for side in e["bindings"]:
        assert_values(side, want, "float32")
    assert_no_knob(e, "same")


# -- reductions and shapes ------------------------------------------------------------------


# https://github.com/tensorflow/tensorflow/issues/27190 (comment of 2020-06-22, its arrays) and
# https://github.com/tensorflow/tensorflow/issues/35004: Keras averages the last axis where
# PyTorch's reduction='none' keeps every element.
def test_torch_reduction_none_against_keras_per_sample(capsys):
    a = [[0.3, 0.4], [0.5, 0.6]]  # targets
    b = [[0.312, 0.433], [0.555, 0.66]]  # predicted probabilities
    e = explain_pair(
        capsys,
        "torch.nn.BCELoss(reduction='none')(b, a)",
        "keras.losses.binary_crossentropy(a, b)",
        dtype="float64",
        a=a,
        b=b,
    )
    per_element = bce_probs(np.array(b), np.array(a))
    torch_side, keras_side = e["bindings"]
    assert_values(torch_side, per_element, "float64")
    assert_values(keras_side, per_element.mean(axis=-1), "float64")
    assert verdicts(e) == ["conform", "conform"]
    # No probability is near 0 or 1: the clamp and the clip change nothing and are not credited.
    assert_cause(e, {"sample_axis"})


# The same two calls where the last axis has length 1: the same numbers, shapes (3, 1) and (3,).
# Issue 18: sample_axis was credited with a share where only the shape differed.
def test_a_pair_that_differs_only_in_shape(capsys):
    p, y = [[0.9], [0.2], [0.6]], [[1.0], [0.0], [1.0]]
    e = explain_pair(
        capsys,
        "torch.nn.BCELoss(reduction='none')(p, y)",
        "keras.losses.binary_crossentropy(y, p)",
        dtype="float64",
        p=p,
        y=y,
    )
    per_element = -np.log([[0.9], [0.8], [0.6]])
    torch_side, keras_side = e["bindings"]
    assert_values(torch_side, per_element, "float64")
    assert_values(keras_side, per_element[:, 0], "float64")
    assert_no_knob(e, "shape")
    assert "shape" in summary(e)


# https://github.com/pytorch/pytorch/issues/4867 and Stack Overflow 67615051 (the answer's arrays):
# PyTorch clamps log 0 at -100, Keras clips p into [eps, 1 - eps].
def test_torch_bce_against_keras_bce_at_zero_and_one(capsys):
    y, p = [[1.0, 1.0, 1.0]], [[1.0, 1.0, 0.0]]
    e = explain_pair(capsys, "torch.nn.BCELoss()(p, y)", "tf.keras.losses.BinaryCrossentropy()(y, p)", y=y, p=p)
    torch_side, keras_side = e["bindings"]
    assert_values(torch_side, bce_probs(np.array(p), np.array(y), log_min=-100.0).mean(), "float32")
    assert_values(keras_side, bce_probs(keras_clip(p, np.float32), np.array(y)).mean(), "float32")
    assert abs(value(torch_side) - 100 / 3) < 1e-4
    assert verdicts(e) == ["conform", "conform"]
    # One sample: Keras' per-sample mean is the mean; once p is clipped the clamp never acts.
    assert e["attribution"]["status"] == "explained" and e["attribution"]["conventions"] == ["prob_eps"]
    assert "prob_eps" in summary(e)


# Stack Overflow 76495702 (https://example-a.com/answer/76495702, its arrays): the softmax of the
# logits has e^-30, clipped up to eps by Keras; 15.0 against 8.059 on average.
def test_tf_softmax_cross_entropy_on_logits_against_keras_on_softmax(capsys):
    X = [[30.0, 10.0, 10.0], [-10.0, 20.0, 50.0]]
    Y = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    e = explain_pair(
        capsys,
        "tf.nn.softmax_cross_entropy_with_logits(logits=X, labels=Y)",
        "keras.losses.categorical_crossentropy(Y, tf.math.softmax(X))",
        dtype="float64",
        X=X,
        Y=Y,
    )
    lsm = log_softmax(X)
    tf_side, keras_side = e["bindings"]
    # tf.nn forms logsumexp(x) - x_y: its rounding is that of the logits' size (30), a few 1e-15.
    assert_values(tf_side, -(np.array(Y) * lsm).sum(-1), "float64", atol=1e-14)
    clipped = keras_clip(np.exp(lsm), np.float64)
    assert_values(keras_side, -(np.array(Y) * np.log(clipped)).sum(-1), "float64", atol=1e-15)
    np.testing.assert_allclose(value(keras_side).mean(), (-math.log(1 - EPS) - math.log(EPS)) / 2, rtol=1e-9)
    assert verdicts(e) == ["conform", "conform"]
    assert_cause(e, {"prob_eps"}, {"loss", *TRANSFORM})


# Stack Overflow 68427532 and the example of tf.keras.backend.categorical_crossentropy (a row
# [.5, .89, .6] gives 0.80467); the PyTorch equivalent offered on discuss.pytorch.org (topic
# 85165): nn.NLLLoss()(torch.log(y_pred), y_true). Keras renormalizes each row first.
def test_keras_categorical_crossentropy_renormalizes_where_nll_of_log_does_not(capsys):
    y_pred = [[0.9, 0.05, 0.05], [0.5, 0.89, 0.6], [0.05, 0.01, 0.94]]
    e = explain_pair(
        capsys,
        "nn.NLLLoss(reduction='none')(torch.log(y_pred), t)",
        "keras.losses.categorical_crossentropy(y_true, y_pred)",
        y_pred=y_pred,
        t=[0, 1, 2],
        y_true=np.eye(3).tolist(),
    )
    p = f32(y_pred)
    torch_side, keras_side = e["bindings"]
    assert_values(torch_side, -np.log(np.diag(p)), "float32")
    assert_values(keras_side, -np.log(np.diag(p / p.sum(-1, keepdims=True))), "float32")
    assert abs(value(keras_side)[1] - 0.80467) < 5e-6
    assert verdicts(e) == ["conform", "conform"]
    assert_cause(e, {"renormalize"}, {"loss", *TRANSFORM})


# -- what a side applies to its argument ----------------------------------------------------


# https://github.com/sebastian-hofstaetter/matchmaker/issues/18 (and pytorch/pytorch#5282):
# KLDivLoss given softmax(scores) where it documents log-probabilities.
def test_torch_kl_div_given_probabilities_against_log_probabilities(capsys):
    scores, labels = [[1.0, 2.0, 0.5]], [[0.2, 0.1, 1.5]]
    e = explain_pair(
        capsys,
        "torch.nn.KLDivLoss(reduction='batchmean')(scores.softmax(-1), labels.softmax(-1))",
        "torch.nn.KLDivLoss(reduction='batchmean')(F.log_softmax(scores, dim=-1), F.softmax(labels, dim=-1))",
        scores=scores,
        labels=labels,
    )
    log_q, log_p = log_softmax(f32(labels)), log_softmax(f32(scores))
    q = np.exp(log_q)
    wrong, right = e["bindings"]
    assert_values(wrong, (q * (log_q - np.exp(log_p))).sum() / 1, "float32")
    assert_values(right, (q * (log_q - log_p)).sum() / 1, "float32")
    assert value(wrong) < 0 < value(right)  # a "KL divergence" below 0 is the symptom users see
    attribution = e["attribution"]
    assert attribution["status"] == "explained" and len(attribution["conventions"]) == 1
    assert set(attribution["conventions"]) <= TRANSFORM


# https://github.com/pytorch/pytorch/issues/48595 and HuberLoss' documentation: smooth L1 with
# beta is the Huber loss with delta = beta divided by delta.
def test_torch_smooth_l1_against_huber(capsys):
    x, y = [0.2, 1.5, -2.0], [0.0, 0.0, 0.0]
    e = explain_pair(capsys, "nn.SmoothL1Loss(beta=0.5)(x, y)", "nn.HuberLoss(delta=0.5)(x, y)", x=x, y=y)
    r, d = np.abs(f32(x)), 0.5
    huber = np.where(r <= d, r * r / 2, d * (r - d / 2))
    smooth, hub = e["bindings"]
    assert_values(hub, huber.mean(), "float32")
    assert_values(smooth, (huber / d).mean(), "float32")
    assert verdicts(e) == ["conform", "conform"]
    assert e["attribution"]["status"] == "explained" and e["attribution"]["conventions"] == ["huber_form"]
    assert "huber_form" in summary(e)


# https://github.com/pytorch/pytorch/issues/148884: PyTorch's label smoothing mixes the target
# with the uniform distribution, (1 - e) onehot + e / K, as Keras does: the two calls agree.
def test_label_smoothing_torch_against_keras_agree(capsys):
    x, t = [[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]], [2, 0]
    e = explain_pair(
        capsys,
        "nn.CrossEntropyLoss(label_smoothing=0.1)(x, t)",
        "keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(y, x)",
        x=x,
        t=t,
        y=np.eye(3)[t].tolist(),
    )
    q = 0.9 * np.eye(3)[t] + 0.1 / 3
    want = -(q * log_softmax(f32(x))).sum(-1).mean()
    for side in e["bindings"]:
        assert_values(side, want, "float32")
    assert verdicts(e) == ["conform", "conform"]
    assert_no_knob(e, "same")


# A Stack Overflow question read at https://isolution.pro/q/so75394509/: from_logits=True on a
# softmax output takes a softmax again (2.3575358 for a 27-class prediction that is right).
def test_keras_from_logits_given_probabilities(capsys):
    y_pred = [
        1.1868494e-08, 1.8747659e-09, 1.2777099e-11, 3.6140797e-08, 6.5852622e-11, 2.2888577e-10,
        1.4515833e-09, 2.8392664e-09, 4.7054605e-10, 9.5605066e-11, 9.3647139e-13, 2.6149302e-10,
        2.5338919e-14, 4.8815413e-10, 3.9381631e-14, 2.1434269e-06, 9.9999785e-01, 3.0857247e-08,
        1.3536775e-09, 4.6811921e-10, 3.0638234e-10, 2.0818169e-09, 2.9950772e-10, 1.0457132e-10,
        3.2959850e-11, 3.4232595e-10, 5.1689473e-12,
    ]  # fmt: skip
    y_true = np.eye(27)[[16]].tolist()
    e = explain_pair(
        capsys,
        "tf.keras.losses.categorical_crossentropy(y_true, y_pred, from_logits=True)",
        "tf.keras.losses.categorical_crossentropy(y_true, y_pred)",
        y_true=y_true,
        y_pred=[y_pred],
    )
    p = f32([y_pred])
    logits, probs = e["bindings"]
    assert_values(logits, np.logaddexp.reduce(p, axis=-1) - p[:, 16], "float32")
    # -log(p_16 / sum p), about 2.2e-6: float32 holds 1 - 2.2e-6 to about 6e-8.
    assert_values(probs, -np.log(p[:, 16] / p.sum(-1)), "float32", atol=1e-7)
    assert verdicts(e) == ["conform", "conform"]
    assert_cause(e, {"loss"}, {"renormalize", "prob_eps", *TRANSFORM})


# https://github.com/tensorflow/tensorflow/issues/31930 (Dense(1, activation='sigmoid') against
# sigmoid applied after the layer: different BCE; x = 1000, y = 0) and #33936: Keras' TensorFlow
# backend reads the logits back from the output of its own sigmoid (keras.ops.sigmoid keeps them
# as _keras_logits) and computes the from_logits form; tf.sigmoid's output carries nothing, and
# the probability is clipped at 1 - eps.
def test_keras_ops_sigmoid_against_tf_sigmoid(capsys):
    z, y = [[1000.0, 18.0, -3.0]], [[0.0, 0.0, 1.0]]
    e = explain_pair(
        capsys,
        "keras.losses.binary_crossentropy(y, keras.ops.sigmoid(z))",
        "keras.losses.binary_crossentropy(y, tf.sigmoid(z))",
        dtype="float64",
        z=z,
        y=y,
    )
    logits_read, clipped = e["bindings"]
    assert_values(logits_read, bce_logits(np.array(z), np.array(y)).mean(-1), "float64")
    assert_values(clipped, bce_probs(keras_clip(sigmoid(z), np.float64), np.array(y)).mean(-1), "float64")
    assert verdicts(e) == ["conform", "conform"]
    # Read as probabilities without the clip, sigmoid(18) and sigmoid(1000) would cost about 18 and
    # 1000 as on the logits: the clip is what separates them.
    assert_cause(e, {"prob_eps"}, {"loss", *TRANSFORM})


# Keras' class weights as Model.fit passes them (sample_weight = class_weight[y]) against torch's
# weight on the same case: both weight each sample's loss by its target's class weight; torch's
# mean divides by the sum of those weights, Keras' by the number of samples (issue 19).
def test_torch_weight_against_keras_class_weight_is_named(capsys):
    x, t, w = [[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]], [0, 2], [3.0, 1.0, 0.5]
    argv = ["explain", "torch.nn.CrossEntropyLoss", "keras.losses.SparseCategoricalCrossentropy+class_weight[jax]"]
    argv += ["--input", json.dumps(x), "--target", json.dumps(t), "--param", f"weight={json.dumps(w)}"]
    code = main([*argv, "--dtype", "float32", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    e = json.loads(out)
    losses = -log_softmax(f32(x))[[0, 1], t]
    sw = f32(w)[t]
    torch_side, keras_side = e["bindings"]
    assert_values(torch_side, (sw * losses).sum() / sw.sum(), "float32")
    assert_values(keras_side, (sw * losses).sum() / 2, "float32")
    assert verdicts(e) == ["conform", "conform"]
    assert_cause(e, {"mean_by"}, {"loss"})
