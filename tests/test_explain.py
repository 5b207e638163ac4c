"""`lossparity explain`, attribution by ablation, and the command-line literals they read."""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from lossparity.cli import main
from lossparity.conformance.attribution import attribute, knobs
from lossparity.conformance.divergence import find_divergences
from lossparity.conformance.explain import ExplainError, explain
from lossparity.conformance.specs import SPECS
from lossparity.core.model import Binding, Case
from lossparity.core.records import encode_array, schema_errors
from lossparity.literals import LiteralError, parse_array, parse_value

BCE = SPECS["binary_cross_entropy"]


def run_cli(capsys, *argv):
    code = main(["explain", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- seed 000, end to end ----------------------------------------------------------------------


#: The seed documents' question: BCELoss and CrossEntropyLoss on the same tensors.
SEED = ("torch.nn.BCELoss", "torch.nn.CrossEntropyLoss", "--input", "[0.8, 0.2, 0.4]", "--target", "[1., 0., 0.]")


def test_seed_bce_vs_cross_entropy_in_plain_words(capsys):
    code, out, err = run_cli(capsys, *SEED)
    assert code == 0, err
    value_lines = [line for line in out.splitlines() if line.strip().startswith("value")]
    assert "0.3190" in value_lines[0] and "0.7971" in value_lines[1]
    words = " ".join(out.split())
    assert "torch.nn.BCELoss reads the three numbers as three independent probabilities" in words
    assert (
        "torch.nn.CrossEntropyLoss reads the three numbers as the logits of one unbatched sample "
        "over three classes, and takes a softmax over the classes"
    ) in words
    assert "part at stage 1 (input): they read the input differently" in words
    assert "stage 1   <-- they part here" in out
    # Both reproducers are printed, and each one runs the module the user named.
    assert "loss = torch.nn.BCELoss()(input, target)" in out
    assert "loss = torch.nn.CrossEntropyLoss()(input, target)" in out


def test_seed_json_validates_and_attributes_the_gap_to_the_loss(capsys):
    code, out, _ = run_cli(capsys, *SEED, "--json", "--grad")
    assert code == 0
    e = json.loads(out)
    assert schema_errors(e, "explanation") == []
    a, b = e["bindings"]
    assert (a["spec"], b["spec"]) == ("binary_cross_entropy", "softmax_cross_entropy_soft")
    assert a["verdict"] == b["verdict"] == "conform"
    assert e["parting"] == {
        "index": 0,
        "how": "reading",
        "a": "input",
        "b": "input",
        "why": "they read the input differently",
    }
    attribution = e["attribution"]
    assert attribution["status"] == "explained" and attribution["conventions"] == ["loss"]
    loss = next(k for k in attribution["differing"] if k["name"] == "loss")
    assert loss["alone"] == 1.0 and loss["share"] == pytest.approx(1.0)
    # d/dx of softmax cross-entropy is softmax(x) - y: derived here, not copied from torch.
    x = np.array([0.8, 0.2, 0.4], np.float32).astype(np.float64)
    softmax = np.exp(x) / np.exp(x).sum()
    grad = np.array(b["gradients"]["input"]["value"]["data"])
    np.testing.assert_allclose(grad, softmax - [1, 0, 0], rtol=1e-6, atol=1e-7)


def test_a_schema_violation_is_caught():
    e = explain(["torch.nn.BCELoss"], {"input": np.array([0.5]), "target": np.array([1.0])}, {})
    assert schema_errors(e, "explanation") == []
    e["bindings"][0]["verdict"] = "fine"
    assert schema_errors(e, "explanation")


def test_same_spec_across_frameworks_parts_at_keras_clip():
    e = explain(
        ["torch.nn.functional.binary_cross_entropy", "keras.losses.binary_crossentropy[tensorflow]"],
        {"input": np.array([1.0, 0.0]), "target": np.array([0.0, 1.0])},
        {},
    )
    a, b = e["bindings"]
    assert a["actual"]["value"]["data"] == [100.0]  # each log clamped at -100
    assert b["verdict"] == "conform"
    assert e["parting"]["index"] == 1 and (e["parting"]["a"], e["parting"]["b"]) == ("log", "clip")
    assert e["attribution"]["conventions"] == ["prob_eps"]


def test_a_rounded_result_is_explained_by_its_declared_computation():
    pytest.importorskip("optax")
    e = explain(
        ["optax.losses.softmax_cross_entropy_with_integer_labels"],
        {"input": np.array([[8.0, 0.0, -1.0]]), "target": np.array([0])},
        {},
        dtype="bfloat16",
    )
    (side,) = e["bindings"]
    assert side["verdict"] == "conform" and side["errors"]["rounding"]["stages"] == ["logsumexp"]
    assert any(
        "within the bound of the computation it declares: consistent with computing logsumexp" in line
        for line in e["summary"]
    )


def test_class_axis_of_a_batched_spatial_input_is_a_knob():
    # (1, 2, 2): torch reads dim 1 as the classes, optax the last axis.
    e = explain(
        ["torch.nn.functional.cross_entropy", "optax.losses.softmax_cross_entropy_with_integer_labels"],
        {"input": np.array([[[2.0, -1.0], [3.0, 0.5]]]), "target": np.array([[1, 0]])},
        {},
    )
    names = {k["name"]: k for k in e["attribution"]["differing"]}
    assert names["class_axis"]["a"] == 1 and names["class_axis"]["b"] == 2
    assert e["attribution"]["status"] == "explained"
    assert "class_axis" in e["attribution"]["conventions"]


def test_one_spec_alone_is_a_tutorial_in_bits():
    e = explain(["entropy"], {"input": np.array([0.5, 0.25, 0.25])}, {"base": 2}, dtype="float64")
    (side,) = e["bindings"]
    assert side["framework"] == "oracle" and side["expected"]["value"]["data"] == [1.5]
    assert [s["name"] for s in side["stages"]] == ["input", "information", "reduction"]
    assert "in bits" in side["stages"][-1]["note"]
    assert e["attribution"] is None and e["parting"] is None


# -- attribution on pairs whose difference is known by construction -----------------------------


def _binding(**conventions):
    return Binding("x", BCE.name, "test", "", params={"reduction": "reduction"}, conventions=conventions)


def _attribute(a, b, case, params):
    return attribute(knobs(BCE, a, params), knobs(BCE, b, params), SPECS, lambda _s: case, "float64")


SATURATED = Case(
    BCE.name, "c", {}, {"input": np.array([[1.0, 0.0], [0.5, 0.5]]), "target": np.array([[0.0, 1.0], [1.0, 0.0]])}
)


def test_one_convention_explains_all_of_the_gap():
    out = _attribute(_binding(), _binding(prob_eps=1e-7), SATURATED, {"reduction": "mean"})
    assert out["status"] == "explained" and out["conventions"] == ["prob_eps"]
    assert [(k["name"], k["alone"], k["share"]) for k in out["differing"]] == [("prob_eps", 1.0, 1.0)]


def test_two_conventions_are_needed_together_and_share_the_gap():
    # Per-element losses: the clip changes the saturated values, the per-sample mean the shape.
    a, b = _binding(), _binding(prob_eps=1e-7, sample_axis="mean")
    out = _attribute(a, b, SATURATED, {"reduction": "none"})
    assert out["status"] == "explained" and out["conventions"] == ["prob_eps", "sample_axis"]
    alone = {k["name"]: k["alone"] for k in out["differing"]}
    assert alone["prob_eps"] < 1 and alone["sample_axis"] < 1
    assert sum(k["share"] for k in out["differing"]) == pytest.approx(out["closed"]) == pytest.approx(1.0)


def test_a_convention_that_cannot_matter_here_explains_nothing():
    # Probabilities strictly inside (0, 1): the -100 clamp never bites, the predictions agree.
    inside = Case(BCE.name, "c", {}, {"input": np.array([0.3, 0.6]), "target": np.array([1.0, 0.0])})
    out = _attribute(_binding(), _binding(log_min=-100.0), inside, {"reduction": "mean"})
    assert out["status"] == "same" and out["conventions"] == []


def _result(binding, value, verdict="conform"):
    return {
        "kind": "result",
        "spec": BCE.name,
        "binding": binding.id,
        "framework": "test",
        "dtype": "float64",
        "mode": "eager",
        "device": "cpu",
        "case_id": "c",
        "origin": {},
        "params": {"reduction": "mean"},
        "inputs": {"input": encode_array(np.array([0.3, 0.6])), "target": encode_array(np.array([1.0, 0.0]))},
        "actual": {"value": encode_array(np.array(value))},
        "verdict": verdict,
        "known": None,
    }


def test_two_conforming_results_of_one_prediction_differ_by_rounding():
    """No convention separates a from b here (their predictions agree): results that both
    conform are each within their own allowance of it, so their difference is two roundings,
    explained as such; one that deviates departs from its own documentation: unexplained."""
    a = Binding("a.loss", BCE.name, "test", "", params={"reduction": "reduction"})
    b = Binding("b.loss", BCE.name, "test", "", params={"reduction": "reduction"}, conventions={"log_min": -100.0})
    bindings = {x.key: x for x in (a, b)}
    divergences, agreement = find_divergences([_result(a, 0.8), _result(b, 0.9)], bindings, SPECS)
    (d,) = divergences
    assert d["status"] == "explained" and d["attribution"]["status"] == "same"
    assert d["reason"].startswith("explained by rounding: both conform to the same prediction")
    assert agreement == [
        {
            "kind": "agreement",
            "spec": BCE.name,
            "a": "a.loss",
            "b": "b.loss",
            "compared": 1,
            "explained": 1,
            "unexplained": 0,
        }
    ]
    divergences, agreement = find_divergences([_result(a, 0.8, "deviate"), _result(b, 0.9)], bindings, SPECS)
    assert divergences[0]["status"] == "unexplained"
    assert divergences[0]["reason"].startswith("a.loss departs from its own documented behaviour")
    assert agreement[0]["unexplained"] == 1


def test_the_compute_dtype_is_a_knob():
    """A loss class that computes float16 inputs in float32 (Keras' floatx) against a function
    that computes in float16: Keras' clip bound 1 - 1e-7 is 0.99999988 in float32 and 1 in
    float16, so p = 1 costs -log(1.2e-7) in the one and -log(0) = inf in the other; the compute
    dtype, and nothing else, turns one prediction into the other."""
    klass = Binding("k.Class", BCE.name, "test", "", conventions={"prob_eps": 1e-7}, computes_in="float32")
    function = Binding("k.function", BCE.name, "test", "", conventions={"prob_eps": 1e-7})
    case = Case(BCE.name, "c", {}, {"input": np.array([1.0]), "target": np.array([0.0])}, {"reduction": "none"})
    params = {"reduction": "none"}
    at = attribute(
        knobs(BCE, klass, params, dtype="float16"),
        knobs(BCE, function, params, dtype="float16"),
        SPECS,
        lambda _setting: case,
        "float16",
    )
    assert at["status"] == "explained" and at["conventions"] == ["compute dtype"]
    (row,) = at["differing"]
    assert (row["a"], row["b"], row["alone"]) == ("float32", "float16", 1.0)
    # without the case's dtype the knob is absent, and nothing explains the gap
    at = attribute(knobs(BCE, klass, params), knobs(BCE, function, params), SPECS, lambda _s: case, "float16")
    assert at["status"] == "same"


def test_predictions_past_the_dtypes_range_are_its_infinity():
    """Two predictions of 2.1e8 for a float16 result are both inf to float16: the same (Keras'
    MAPE at a zero target, a float32 class form against its float16 function)."""
    from lossparity.conformance.attribution import Prediction, same

    big = Prediction(value=np.array([2.097152e8, 875.0]))
    assert same(big, Prediction(value=np.array([2.5e8, 875.0])), "mean_absolute_percentage_error", "float16")
    assert not same(big, Prediction(value=np.array([2.5e8, 875.0])), "mean_absolute_percentage_error", "float32")
    assert not same(big, Prediction(value=np.array([6.0e4, 875.0])), "mean_absolute_percentage_error", "float16")


def test_a_rounding_model_is_named_in_the_divergence_it_explains():
    a = Binding("a.loss", BCE.name, "test", "", params={"reduction": "reduction"})
    b = Binding("b.loss", BCE.name, "test", "", params={"reduction": "reduction"})
    rounded = _result(a, 0.8)
    summary = "consistent with computing log in bfloat16: the largest error, 0.1, is 0.5 of its bound 0.2"
    rounded["errors"] = {"rounding": {"summary": summary}}
    (d,), _ = find_divergences([rounded, _result(b, 0.9)], {x.key: x for x in (a, b)}, SPECS)
    assert d["status"] == "explained" and f"a.loss: value {summary}" in d["reason"]


# -- bad input: one line, exit code 2 -------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["torch.nn.BCELos", "--input", "[0.5]", "--target", "[1]"],
            "unknown binding 'torch.nn.BCELos'; did you mean torch.nn.BCELoss, torch.nn.MSELoss, "
            "torch.nn.CTCLoss? ('lossparity list' shows them all)",
        ),
        (
            ["torch.nn.BCELoss", "--input", "[0.5, 0.2]", "--target", "[1]"],
            "torch.nn.BCELoss: the target must have shape (2,) for an input of shape (2,); got (1,)",
        ),
        (
            ["torch.nn.CrossEntropyLoss", "--input", "[[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]]", "--target", "[2, 0, 1]"],
            "torch.nn.CrossEntropyLoss cannot read this case: as softmax_cross_entropy, a class-index target must "
            "have shape (2,) for an input of shape (2, 3); got (3,); as softmax_cross_entropy_soft, the target "
            "must have shape (2, 3) for an input of shape (2, 3); got (3,)",
        ),
        (
            ["torch.nn.BCELoss", "--input", "[0.5]", "--target", "[1]", "--param", "ignore_index=3"],
            "torch.nn.BCELoss: no parameter 'ignore_index' here; it takes: reduction, weight",
        ),
        (
            ["torch.nn.BCELoss", "--input", "[0.5]", "--target", "[1]", "--param", "reduction=avg"],
            "torch.nn.BCELoss: reduction='avg' is not accepted; accepted: none, sum, mean, batchmean, "
            "sum_over_batch_size, mean_with_sample_weight, sum_by_nonzero_weights",
        ),
        (
            ["torch.nn.BCELoss", "--input", "[0.5,", "--target", "[1]"],
            "--input: unbalanced '[': a closing ']' is missing",
        ),
        (
            ["torch.nn.BCELoss", "--input", "[[0.5], [0.1, 0.2]]", "--target", "[1]"],
            "--input: the rows have different lengths; an array must be rectangular",
        ),
        (["torch.nn.BCELoss", "--input", "[0.5, x]", "--target", "[1]"], "--input: 'x' is not a number"),
        (
            ["torch.nn.BCELoss", "--input", "[0.5]", "--target", "[1]", "--param", "reduction"],
            "--param 'reduction': expected NAME=VALUE, e.g. reduction=sum",
        ),
        (
            ["keras.losses.BinaryCrossentropy[tensorflow]", "--input", "[0.5]", "--target", "[1]", "--dtype", "float8"],
            "unknown dtype 'float8'; accepted: float64, float32, float16, bfloat16",
        ),
        (
            ["torch.nn.GaussianNLLLoss", "--input", "[1.0]", "--target", "[1.5]"],
            "torch.nn.GaussianNLLLoss: gaussian_nll needs --array var=[...]",
        ),
        (
            ["torch.nn.BCELoss", "--input", "[0.5]", "--target", "[1]", "--array", "var=[1.0]"],
            "torch.nn.BCELoss: binary_cross_entropy takes no --array var; its arrays are input, target",
        ),
        (
            ["torch.nn.BCELoss", "--input", "[0.5]", "--target", "[1]", "--mode", "jit"],
            "mode 'jit' is not available for torch; accepted: eager, compile",
        ),
        (
            ["torch.nn.NLLLoss", "--input", "[[-0.5, -1.0]]", "--target", "[0.5]"],
            "torch.nn.NLLLoss: the target holds class indices, which must be integers (of 64 bits)",
        ),
        (
            ["tf.nn.weighted_cross_entropy_with_logits", "--input", "[-1.0]", "--target", "[1.0]"],
            "tf.nn.weighted_cross_entropy_with_logits: it takes only cases with pos_weight=<any value> "
            "(add --param pos_weight=<any value>)",
        ),
        (["torch.nn.BCELoss", "--input", "[0.5]"], "torch.nn.BCELoss: binary_cross_entropy needs a --target"),
        (["a", "b", "c", "--input", "[0.5]"], "explain takes one or two bindings or calls, got 3"),
        (
            # Keras' sample_weight weights the per-sample losses, (2,) here: (3,) cannot broadcast to them
            ["keras.losses.SparseCategoricalCrossentropy[jax]", "--input", "[[0.1, 0.9], [0.5, 0.5]]"]
            + ["--target", "[1, 0]", "--param", "sample_weight=[1.0, 2.0, 3.0]"],
            "keras.losses.SparseCategoricalCrossentropy[jax] cannot read this case: as "
            "sparse_categorical_cross_entropy, sample_weight of shape (3,) does not broadcast against the "
            "per-sample losses of shape (2,); as softmax_cross_entropy, sample_weight of shape (3,) does not "
            "broadcast against the per-sample losses of shape (2,)",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err == f"lossparity: error: {message}\n"


def test_explain_error_is_a_value_error_for_library_callers():
    with pytest.raises(ExplainError, match="unknown dtype 'float17'; accepted: float64, float32, float16, bfloat16"):
        explain(["torch.nn.BCELoss"], {"input": np.array([0.5]), "target": np.array([1.0])}, {}, dtype="float17")


# -- literals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[0.8, 0.2, 0.4]", np.array([0.8, 0.2, 0.4])),
        ("[0.8 0.2 0.4]", np.array([0.8, 0.2, 0.4])),
        ("array([1., 0.], dtype=float32)", np.array([1.0, 0.0])),
        ("np.array([[1, 2], [3, 4]])", np.array([[1, 2], [3, 4]])),
        ("[[1 2]\n [3 4]]", np.array([[1, 2], [3, 4]])),
        ("0.5", np.array(0.5)),
        ("[nan, -inf, inf, 1e-7]", np.array([np.nan, -np.inf, np.inf, 1e-7])),
        ("np.empty((0, 3))", np.zeros((0, 3))),  # a shape nested lists cannot spell
        ("zeros((2, 0))", np.zeros((2, 0))),
    ],
)
def test_literals_json_and_numpy_forms(text, expected):
    got = parse_array(text)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == (np.int64 if expected.dtype.kind == "i" else np.float64)


def test_a_mask_literal_is_bool_and_is_not_mixed_with_numbers():
    got = parse_array("[true, false, True]")
    assert got.dtype == np.bool_ and got.tolist() == [True, False, True]
    for mixed in ("[true, 0.5]", "[True, 1]"):
        with pytest.raises(LiteralError, match="booleans and numbers mixed in one array"):
            parse_array(mixed)


def test_a_bool_where_mask_reaches_optax(capsys):
    """--array where=[true, false, true]: the second item is left out of ranking_softmax_loss's
    softmax: -y log softmax over the kept scores, [1, 0.5], with the label on the first."""
    (rank,) = explain_json(
        capsys,
        "optax.losses.ranking_softmax_loss",
        "--input",
        "[2.0, 9.0, 0.5]",
        "--target",
        "[1., 0., 0.]",
        "--array",
        "where=[true, false, true]",
    )["bindings"]
    kept = np.array([2.0, 0.5])
    assert rank["verdict"] == "conform"
    assert rank["actual"]["value"]["data"] == [pytest.approx(np.log(np.sum(np.exp(kept))) - 2.0, rel=1e-6)]


def test_literal_values():
    assert parse_value("none") == "none" and parse_value("None") is None
    assert parse_value("true") is True and parse_value("-100") == -100 and parse_value("0.1") == 0.1
    assert parse_value("mean") == "mean"
    with pytest.raises(LiteralError, match="unbalanced"):
        parse_array("[1, 2]]")


def test_further_arrays_come_from_the_command_line():
    e = explain(
        ["torch.nn.GaussianNLLLoss"],
        {"input": np.array([1.0, 2.0]), "target": np.array([1.5, 2.0]), "var": np.array([0.5, 2.0])},
        {},
    )
    # (log v + (x - t)^2 / v) / 2, mean of (log 0.5 + 0.5) / 2 and (log 2 + 0) / 2: the logs cancel
    assert e["bindings"][0]["expected"]["value"]["data"] == [pytest.approx(0.125, rel=1e-12)]
    assert e["bindings"][0]["verdict"] == "conform"


# -- each side its own call (issue 18) ---------------------------------------------------------


def explain_json(capsys, *argv):
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code in (0, 1), err
    e = json.loads(out)
    assert schema_errors(e, "explanation") == []
    return e


def test_logits_against_the_sigmoid_of_the_logits(capsys):
    """BCEWithLogitsLoss(z) against BCELoss(sigmoid(z)), the sigmoid computed by torch inside the call.
    At z = 30 the float32 sigmoid is 1 (1 - sigmoid(30) = 9.4e-14 is below half a float32 ulp of 1),
    so BCELoss takes log(1 - 1) = -inf, clamped at -100: 100, where the logits form gives
    softplus(30) = 30 + log1p(exp(-30))."""
    assert np.float32(1.0 / (1.0 + np.exp(-30.0))) == 1.0
    e = explain_json(
        capsys,
        "torch.nn.BCEWithLogitsLoss()(z, y)",
        "nn.BCELoss()(torch.sigmoid(z), y)",
        "--array",
        "z=[30.0]",
        "--array",
        "y=[0.0]",
    )
    a, b = e["bindings"]
    assert a["spec"] == "binary_cross_entropy_with_logits" and b["spec"] == "binary_cross_entropy"
    assert a["actual"]["value"]["data"] == [pytest.approx(30.0 + np.log1p(np.exp(-30.0)), rel=1e-7)]
    assert b["actual"]["value"]["data"] == [100.0] and b["expected"]["value"]["data"] == [100.0]
    assert a["verdict"] == b["verdict"] == "conform"
    assert "torch.sigmoid(input)" in b["reproducer"]  # the framework computes the transform
    assert e["attribution"]["status"] == "explained" and sorted(e["attribution"]["conventions"]) == ["log_min", "loss"]


def test_a_transformed_arguments_gradient_is_carried_back_through_the_transform(capsys):
    """d/dz of mean BCE(sigmoid(z), y) is (sigmoid(z) - y) / n, for torch and the oracle alike."""
    z, y = np.array([0.5, -1.0]), np.array([1.0, 0.0])
    e = explain_json(
        capsys, "nn.BCELoss()(torch.sigmoid(z), y)", "--array", "z=[0.5, -1.0]", "--array", "y=[1.0, 0.0]", "--grad"
    )
    (side,) = e["bindings"]
    derived = (1.0 / (1.0 + np.exp(-z)) - y) / 2
    g = side["gradients"]["input"]
    assert g["verdict"] == "conform"
    np.testing.assert_allclose(g["value"]["data"], derived, rtol=1e-6)
    np.testing.assert_allclose(g["expected"]["value"]["data"], derived, rtol=1e-6)
    assert set(side["gradients"]) == {"input", "target"}  # a probability target is differentiated too


def test_keras_on_tensorflow_reads_the_logits_back_from_keras_ops_sigmoid(capsys):
    """The same Keras call on two backends: TensorFlow's takes z back from keras.ops.sigmoid's output
    and computes softplus(30) = 30; JAX's clips sigmoid(30) = 1 to float32(1 - 1e-7) = 1 - 2**-23 and
    gives -log(2**-23) = 23 log 2."""
    e = explain_json(
        capsys,
        "keras.losses.binary_crossentropy[tensorflow](y, keras.ops.sigmoid(z))",
        "keras.losses.binary_crossentropy[jax](y, keras.ops.sigmoid(z))",
        "--array",
        "z=[[30.0]]",
        "--array",
        "y=[[0.0]]",
    )
    on_tf, on_jax = e["bindings"]
    assert on_tf["spec"] == "binary_cross_entropy_with_logits" and "_keras_logits" in on_tf["note"]
    assert on_tf["actual"]["value"]["data"] == [pytest.approx(30.0, rel=1e-7)]
    assert on_jax["spec"] == "binary_cross_entropy" and on_jax["note"] is None
    assert np.float32(1 - 1e-7) == 1 - 2.0**-23
    assert on_jax["actual"]["value"]["data"] == [pytest.approx(23 * np.log(2), rel=1e-6)]
    assert on_tf["verdict"] == on_jax["verdict"] == "conform"
    assert e["attribution"]["status"] == "explained" and "loss" in e["attribution"]["conventions"]


@pytest.mark.parametrize(
    ("argv", "raised", "why"),
    [
        (  # float class labels: torch refuses them, and that is its documented outcome
            ["torch.nn.CrossEntropyLoss", "--input", "[[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]", "--target", "[0., 2.]"],
            "RuntimeError",
            "target is given as floating-point values where softmax_cross_entropy documents integer class indices",
        ),
        (  # an integer variance literal reaches torch as int64
            ["torch.nn.GaussianNLLLoss", "--input", "[0.5, 1.0]", "--target", "[0.0, 1.5]", "--array", "var=[1, 2]"],
            "RuntimeError",
            "var is given as integers (int64) where gaussian_nll documents floating-point values",
        ),
        (  # a logit given where a probability is due
            ["torch.nn.BCELoss", "--input", "[-30.0, 0.5]", "--target", "[1., 0.]"],
            "RuntimeError",
            "input holds -30, where binary_cross_entropy documents probabilities, in [0, 1]",
        ),
        (  # torch checks the target's range too
            ["torch.nn.BCELoss", "--input", "[0.5]", "--target", "[2.0]"],
            "RuntimeError",
            "target holds 2, where binary_cross_entropy documents probabilities, in [0, 1]",
        ),
    ],
)
def test_outside_the_documented_domain_a_refusal_conforms(capsys, argv, raised, why):
    (side,) = explain_json(capsys, *argv)["bindings"]
    assert side["actual"]["error"] == raised and side["verdict"] == "conform"
    assert side["domain"] == [why + (" (the framework receives it so)" if "integers" in why else "")]
    words = " ".join(main_words(capsys, *argv))
    assert "outside its documented domain" in words and "a documented outcome" in words
    assert "does not do what its own documentation says" not in words


def main_words(capsys, *argv):
    code, out, _ = run_cli(capsys, *argv)
    assert code in (0, 1)
    return out.split()


def test_keras_given_a_logit_as_a_probability_is_flagged_not_trusted(capsys):
    (side,) = explain_json(
        capsys, "keras.losses.BinaryCrossentropy[jax]", "--input", "[-30.0, 0.5]", "--target", "[1., 0.]"
    )["bindings"]
    assert side["domain"] == ["input holds -30, where binary_cross_entropy documents probabilities, in [0, 1]"]
    assert "value" in side["actual"]


def test_every_differentiable_argument_has_its_gradient_and_verdict(capsys):
    """Gaussian NLL, mean of (log v + (x - t)^2 / v) / 2:
    d/dx = (x - t) / (v n), d/dv = (1/v - (x - t)^2 / v^2) / (2n)."""
    x, t, v = np.array([0.5, 1.0]), np.array([0.0, 1.5]), np.array([0.5, 2.0])
    (side,) = explain_json(
        capsys,
        "torch.nn.GaussianNLLLoss",
        "--input",
        "[0.5, 1.0]",
        "--target",
        "[0.0, 1.5]",
        "--array",
        "var=[0.5, 2.0]",
        "--dtype",
        "float64",
        "--grad",
    )["bindings"]
    assert set(side["gradients"]) == {"input", "var"}
    for name, derived in (("input", (x - t) / (v * 2)), ("var", (1 / v - (x - t) ** 2 / v**2) / 4)):
        g = side["gradients"][name]
        assert g["verdict"] == "conform"
        np.testing.assert_allclose(g["value"]["data"], derived, rtol=1e-12)


def test_each_side_its_own_dtype_and_the_rounding_between_them(capsys):
    e = explain_json(
        capsys,
        "nn.MSELoss()(x, y)",
        "nn.MSELoss()(x, y)",
        "--array",
        "x=[0.1, 0.2, 0.7]",
        "--array",
        "y=[0.3, 0.3, 0.3]",
        "--dtype",
        "float64,float32",
    )
    a, b = e["bindings"]
    assert (a["dtype"], b["dtype"]) == ("float64", "float32") and e["dtype"] == "float64,float32"
    assert a["actual"]["dtype"] == "float64" and b["actual"]["dtype"] == "float32"
    assert e["attribution"]["status"] == "same"
    assert {k["name"] for k in e["attribution"]["differing"]} == {"compute dtype", "input dtype"}
    assert any(line.startswith("Their values differ by rounding alone") for line in e["summary"])


def test_a_cast_in_the_call_sets_its_sides_dtype(capsys):
    e = explain_json(capsys, "nn.MSELoss()(x.double(), y.double())", "--array", "x=[0.1]", "--array", "y=[0.3]")
    assert e["bindings"][0]["dtype"] == "float64" and e["bindings"][0]["actual"]["dtype"] == "float64"


def test_a_pair_that_differs_only_in_shape(capsys):
    """torch's per-element BCE of an (N, 1) input against Keras' per-sample mean over its last axis of one."""
    e = explain_json(
        capsys,
        "nn.BCELoss(reduction='none')(p, y)",
        "keras.losses.binary_crossentropy[torch](y, p)",
        "--array",
        "p=[[0.3], [0.2]]",
        "--array",
        "y=[[0.], [1.]]",
    )
    a, b = e["bindings"]
    assert a["actual"]["value"]["shape"] == [2, 1] and b["actual"]["value"]["shape"] == [2]
    attribution = e["attribution"]
    assert attribution["status"] == "shape" and attribution["conventions"] == []
    assert attribution["shapes"] == [[2, 1], [2]]
    assert all(k["share"] is None for k in attribution["differing"])
    assert any("differ only in the result's shape" in line for line in e["summary"])


def test_torch_per_element_against_keras_per_sample_means(capsys):
    e = explain_json(
        capsys,
        "nn.BCELoss(reduction='none')(p, y)",
        "keras.losses.binary_crossentropy[torch](y, p)",
        "--array",
        "p=[[0.3, 0.9], [0.2, 0.5]]",
        "--array",
        "y=[[0., 1.], [1., 0.]]",
    )
    a, b = e["bindings"]
    p, y = np.array([[0.3, 0.9], [0.2, 0.5]], np.float32).astype(float), np.array([[0.0, 1.0], [1.0, 0.0]])
    per_element = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    np.testing.assert_allclose(np.reshape(a["actual"]["value"]["data"], (2, 2)), per_element, rtol=1e-6)
    np.testing.assert_allclose(b["actual"]["value"]["data"], per_element.mean(axis=-1), rtol=1e-6)
    assert e["attribution"]["conventions"] == ["sample_axis"]


def test_each_side_its_own_mode(capsys):
    e = explain_json(
        capsys,
        "optax.losses.sigmoid_binary_cross_entropy(z, y)",
        "optax.losses.sigmoid_binary_cross_entropy(z, y)",
        "--array",
        "z=[0.5, -3.0]",
        "--array",
        "y=[1.0, 0.0]",
        "--mode",
        "eager,jit",
    )
    assert [s["mode"] for s in e["bindings"]] == ["eager", "jit"] and "jax.jit" in e["bindings"][1]["reproducer"]
    assert "Their values are identical." in e["summary"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["nn.BCELoss()(p, y)", "--array", "p=[0.5]", "--array", "y=[1.]", "--param", "reduction=sum"],
            "--param applies to sides given as binding ids; write the parameters of 'nn.BCELoss()(p, y)' as its "
            "keywords",
        ),
        (
            ["torch.nn.BCELoss", "torch.nn.BCELoss", "--input", "[0.5]", "--target", "[1.]", "--dtype", "a,b,c"],
            "--dtype takes one value, or one per side (2); got 3: a,b,c",
        ),
        (
            ["torch.nn.BCELoss", "--array", "p=[0.5]"],
            "torch.nn.BCELoss is a binding id, which reads --input (and --target); none given",
        ),
    ],
)
def test_per_side_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err == f"lossparity: error: {message}\n"


# -- every cause named is one the oracle bears out -----------------------------------------------

#: Pairs of calls users compare, each read on the seeded cases of the first one's spec.
CLAIM_PAIRS = [
    ("torch.nn.BCELoss", "torch.nn.CrossEntropyLoss", "binary_cross_entropy"),
    ("torch.nn.BCELoss", "keras.losses.BinaryCrossentropy[jax]", "binary_cross_entropy"),
    (
        "torch.nn.functional.binary_cross_entropy",
        "keras.losses.binary_crossentropy[tensorflow]",
        "binary_cross_entropy",
    ),
    ("torch.nn.CrossEntropyLoss", "tf.nn.sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy"),
    ("torch.nn.CrossEntropyLoss", "keras.losses.SparseCategoricalCrossentropy[torch]", "softmax_cross_entropy"),
    ("optax.losses.softmax_cross_entropy", "keras.losses.CategoricalCrossentropy[torch]", "softmax_cross_entropy_soft"),
    ("torch.nn.HuberLoss", "torch.nn.SmoothL1Loss", "huber"),
    ("torch.nn.HuberLoss", "keras.losses.Huber[jax]", "huber"),
    ("torch.nn.KLDivLoss", "keras.losses.KLDivergence[jax]", "kl_div"),
]


@pytest.mark.parametrize(("a_id", "b_id", "spec_name"), CLAIM_PAIRS)
def test_no_cause_is_named_that_switching_it_does_not_bear_out(a_id, b_id, spec_name):
    """On 25 seeded cases of each pair, every attribution's claim holds when the oracle is run again
    (``attribution.unverified``): its named knobs together turn A's prediction into B's, and each is
    needed; "same" and "shape" are what the predictions are. ``explain`` prints no claim that fails."""
    from lossparity.conformance.explain import _attribute, resolve
    from lossparity.conformance.generate import draw_cases

    statuses = collections.Counter()
    for case in draw_cases(spec_name, SPECS[spec_name].generate, examples=25, seed_value=0):
        raw = {k: v for k, v in case.arrays.items() if k in ("input", "target")}
        try:
            a = resolve(a_id, raw, {}, "float32")
            b = resolve(b_id, raw, {}, "float32")
        except ExplainError:
            continue  # a case one of the two cannot read (a shape, a parameter)
        with np.errstate(all="ignore"):
            attribution = _attribute(a, b)
        assert "unverified" not in attribution, (case.id, attribution["unverified"])
        statuses[attribution["status"]] += 1
    assert sum(statuses.values()) >= 5, f"only {sum(statuses.values())} of the seeded cases could be read by both"
    assert statuses["explained"] or statuses["same"] == sum(statuses.values()), statuses


# -- every form a user calls (issue 19, item 7) --------------------------------------------------


def test_keras_documented_from_logits_example(capsys):
    """keras.losses.BinaryCrossentropy's documentation: y_true [0, 1, 0, 0] (integers, as written),
    logits [-18.6, 0.51, 2.94, -12.8], from_logits=True; the loss is the mean of
    max(x, 0) - x y + log1p(exp(-|x|)), about 0.865."""
    y, x = np.array([0.0, 1.0, 0.0, 0.0]), np.array([-18.6, 0.51, 2.94, -12.8], np.float32).astype(float)
    derived = np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x))))
    assert round(derived, 3) == 0.865
    for argv in (
        ["keras.losses.BinaryCrossentropy(from_logits=True)(y_true, y_pred)"]
        + ["--array", "y_true=[0, 1, 0, 0]", "--array", "y_pred=[-18.6, 0.51, 2.94, -12.8]"],
        ["keras.losses.BinaryCrossentropy", "--input", "[-18.6, 0.51, 2.94, -12.8]", "--target", "[0, 1, 0, 0]"]
        + ["--param", "from_logits=true"],
    ):
        e = explain_json(capsys, *argv)
        (side,) = e["bindings"]
        assert side["binding"] == "keras.losses.BinaryCrossentropy[tensorflow]"
        assert side["spec"] == "binary_cross_entropy_with_logits" and side["verdict"] == "conform"
        assert side["actual"]["value"]["data"] == [pytest.approx(derived, rel=1e-6)]
        assert "Keras' default backend, tensorflow" in e["summary"][0]


def test_pytorch_documented_multilabel_margin_example(capsys):
    """torch.nn.MultiLabelMarginLoss's documentation: x [[0.1, 0.2, 0.4, 0.8]], y [[3, 0, -1, 1]]
    (labels 3 and 0): 1/4 sum over j in {3, 0}, i in {1, 2} of max(0, 1 - (x[j] - x[i])) = 0.85."""
    x = np.array([0.1, 0.2, 0.4, 0.8], np.float32).astype(float)
    derived = sum(max(0.0, 1 - (x[j] - x[i])) for j in (3, 0) for i in (1, 2)) / 4
    (side,) = explain_json(
        capsys, "torch.nn.MultiLabelMarginLoss", "--input", "[[0.1, 0.2, 0.4, 0.8]]", "--target", "[[3, 0, -1, 1]]"
    )["bindings"]
    assert side["verdict"] == "conform" and side["domain"] == []
    assert side["actual"]["value"]["data"] == [pytest.approx(derived, rel=1e-6)] and round(derived, 2) == 0.85


def test_ctc_labels_need_not_fill_every_frame(capsys):
    """torch's time-major (T, N, C) log-probabilities with 3 frames, one sample, labels [1, 2]: the
    CTC loss is -log of the summed probability of the alignments of 1 2 in 3 frames."""
    lp = np.array([[[-1.2, -0.5, -2.0]], [[-0.3, -1.5, -2.2]], [[-1.0, -1.0, -1.1]]], np.float32).astype(float)
    p = np.exp(lp[:, 0, :])  # (T, C), blank 0
    paths = [(1, 2, 2), (1, 1, 2), (1, 2, 0), (1, 0, 2), (0, 1, 2)]
    derived = -np.log(sum(np.prod([p[t, c] for t, c in enumerate(path)]) for path in paths)) / 2  # mean by length
    (side,) = explain_json(
        capsys,
        "torch.nn.CTCLoss",
        "--input",
        "[[[-1.2, -0.5, -2.0]], [[-0.3, -1.5, -2.2]], [[-1.0, -1.0, -1.1]]]",
        "--target",
        "[[1, 2]]",
        "--array",
        "input_lengths=[3]",
        "--array",
        "target_lengths=[2]",
    )["bindings"]
    assert side["verdict"] == "conform"
    assert side["actual"]["value"]["data"] == [pytest.approx(derived, rel=1e-6)]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["keras.losses.SparseCategoricalCrossentropy[jax]", "--input", "[[0.2, 0.8], [0.6, 0.4]]"]
            + ["--target", "[[1], [0]]"],
            "reads the (2, 1) class indices as (2,) (Keras squeezes them)",
        ),
        (
            ["torch.nn.CrossEntropyLoss", "--input", "[0.2, 0.8, 0.1]", "--target", "[1]"],
            "reads the (1,) class index of an unbatched input as a 0-d one",
        ),
        (
            ["tf.nn.softmax_cross_entropy_with_logits", "--input", "[[0.2, 0.8], [0.6, 0.4]]", "--target", "[0., 1.]"],
            "broadcasts the (2,) target against the (2, 2) logits",
        ),
    ],
)
def test_target_shapes_a_framework_documents(capsys, argv, said):
    e = explain_json(capsys, *argv)
    (side,) = e["bindings"]
    assert side["verdict"] == "conform" and said in side["note"]


def test_implied_parameters_and_masks_are_not_demanded(capsys):
    (kl,) = explain_json(
        capsys, "optax.losses.kl_divergence_with_log_targets", "--input", "[-1.0, -0.5]", "--target", "[-0.7, -0.7]"
    )["bindings"]
    assert kl["params"]["log_target"] is True and kl["verdict"] == "conform"
    # optax's where=None means every item is valid: -sum y log softmax(s)
    s_, y = np.array([1.0, 2.0, 0.5], np.float32).astype(float), np.array([0.0, 1.0, 0.0])
    derived = -np.sum(y * (s_ - np.log(np.sum(np.exp(s_)))))
    (rank,) = explain_json(
        capsys, "optax.losses.ranking_softmax_loss", "--input", "[1.0, 2.0, 0.5]", "--target", "[0., 1., 0.]"
    )["bindings"]
    assert rank["verdict"] == "conform"
    assert rank["actual"]["value"]["data"] == [pytest.approx(derived, rel=1e-6)]


def test_an_unqualified_keras_id_runs_on_the_default_backend_and_says_so(capsys, monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    e = explain_json(capsys, "keras.losses.binary_crossentropy", "--input", "[0.3]", "--target", "[1.]")
    assert e["bindings"][0]["binding"] == "keras.losses.binary_crossentropy[tensorflow]"
    assert e["summary"][0].startswith("keras.losses.binary_crossentropy runs on Keras' default backend, tensorflow")


def test_a_known_side_is_named_before_the_conventions_of_the_expectations():
    """Keras on torch returns a value for label -100 (torch's default ignore_index, a registered
    entry) where Keras on TensorFlow raises: the entry is the cause of the difference of results;
    invalid_label only parts their documented ones."""
    from lossparity.conformance.divergence import reason

    attribution = {
        "status": "explained",
        "differing": [
            {"name": "invalid_label", "a": "InvalidArgumentError", "b": "IndexError", "alone": 1, "share": 1}
        ],
        "conventions": ["invalid_label"],
        "closed": 1.0,
    }
    said = reason("A", "B", attribution, ["keras-torch-sparse-ce-ignores-minus-100"])
    assert said.startswith(
        "explained by the known deviation(s) keras-torch-sparse-ce-ignores-minus-100 (a side departs"
    )
    assert said.endswith(
        "their documented results differ by invalid_label: A uses 'InvalidArgumentError', B uses 'IndexError'"
    )
    assert reason("A", "B", attribution).startswith("explained by invalid_label")


def test_weights_are_differentiated_where_the_framework_takes_a_gradient(capsys):
    """torch's l1_loss with an elementwise weight is the weighted mean sum w |d| / sum w (its value
    conforms), so d/dw_k = (|d_k| - L) / sum w; cross_entropy's kernel declares no gradient for its
    class weights and refuses one (pytorch/pytorch#19254): a conforming refusal, not a finding."""
    d = np.abs(np.array([[0.2, 0.7], [0.4, 0.9]], np.float32).astype(float) - [[0.0, 1.0], [1.0, 0.0]])
    w = np.array([[1.0, 2.0], [3.0, 4.0]])
    mean = np.sum(w * d) / np.sum(w)
    (l1,) = explain_json(
        capsys,
        "torch.nn.functional.l1_loss",
        "--input",
        "[[0.2, 0.7], [0.4, 0.9]]",
        "--target",
        "[[0., 1.], [1., 0.]]",
        "--param",
        "weight=[[1., 2.], [3., 4.]]",
        "--grad",
    )["bindings"]
    g = l1["gradients"]["weight"]
    assert g["verdict"] == "conform"
    np.testing.assert_allclose(np.reshape(g["value"]["data"], (2, 2)), (d - mean) / np.sum(w), rtol=1e-5)
    (ce,) = explain_json(
        capsys,
        "torch.nn.CrossEntropyLoss",
        "--input",
        "[[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]",
        "--target",
        "[0, 2]",
        "--param",
        "weight=[1.0, 2.0, 3.0]",
        "--grad",
    )["bindings"]
    refused = ce["gradients"]["weight"]
    assert (
        refused["verdict"] == "conform" and "not differentiable with respect to argument 'weight'" in refused["error"]
    )
    assert ce["verdict"] == "conform"


def test_a_parameter_the_api_always_has_is_accepted_and_any_other_value_refused(capsys):
    """Keras' function forms never reduce (their binding fixes reduction='none'): saying so is
    accepted, asking for another reduction is not (the shrunk cases' explain commands say so)."""
    keras_bce = ("keras.losses.binary_crossentropy[jax]", "--input", "[0.3]", "--target", "[1.]")
    (side,) = explain_json(capsys, *keras_bce, "--param", "reduction=none")["bindings"]
    assert side["verdict"] == "conform"
    code, out, err = run_cli(capsys, *keras_bce, "--param", "reduction=sum")
    assert code == 2 and err == (
        "lossparity: error: keras.losses.binary_crossentropy[jax] cannot read this case: as binary_cross_entropy, "
        "no parameter 'reduction' here; it takes: label_smoothing; as binary_cross_entropy_with_logits, no "
        "parameter 'reduction' here; it takes: label_smoothing\n"
    )


def test_an_empty_array_takes_its_documented_kind(capsys):
    (side,) = explain_json(capsys, "torch.nn.CrossEntropyLoss", "--input", "np.empty((0, 3))", "--target", "[]")[
        "bindings"
    ]
    assert side["domain"] == [] and side["actual"]["value"]["data"] == ["nan"]  # the mean of no sample


def test_two_backends_taking_different_slopes_at_a_clip_bound(capsys):
    """Keras' BCE at p = float32(1e-7), its clip's lower bound: the values agree, but jnp.clip
    passes half the slope at the bound (-1/p / 2 / n with n = 2) where tf.clip_by_value passes it
    all (-1/p / n): the gradients differ, and the cause named is clip_tie."""
    p = float(np.float32(1e-7))
    e = explain_json(
        capsys,
        "keras.losses.binary_crossentropy[jax]",
        "keras.losses.binary_crossentropy[tensorflow]",
        "--input",
        "[1e-7, 0.5]",
        "--target",
        "[1., 0.]",
        "--grad",
    )
    on_jax, on_tf = (s["gradients"]["input"]["value"]["data"][0] for s in e["bindings"])
    assert on_jax == pytest.approx(-1 / p / 2 / 2, rel=1e-6) and on_tf == pytest.approx(-1 / p / 2, rel=1e-6)
    assert "Their values are identical." in e["summary"]
    att = e["gradient_attribution"]["input"]
    assert att["status"] == "explained" and att["conventions"] == ["clip_tie"]
    assert list(e["gradient_attribution"]) == ["input"]  # the target's slopes agree
    assert any(
        line.startswith("Their gradients with respect to input differ: explained by clip_tie") for line in e["summary"]
    )
