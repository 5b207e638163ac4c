"""Divergences on common ground: pairs of calls users treat as equivalent, compared across specs
and result shapes (``conformance/pairs.py``), their attribution, and gradients compared too."""

from __future__ import annotations

import numpy as np
import pytest
from fake_records import result

from lossparity.conformance import pairs
from lossparity.conformance.attribution import attribute, knobs
from lossparity.conformance.conclude import conclude
from lossparity.conformance.generate import is_domain
from lossparity.conformance.known import load_known
from lossparity.conformance.registry import adapter_for, all_bindings
from lossparity.conformance.runner import evaluate, expect, expect_gradients
from lossparity.conformance.selection import Selection
from lossparity.conformance.specs import SPECS
from lossparity.core.model import Case
from lossparity.core.records import decode_array, encode_array, schema_errors
from lossparity.reports.report import agreement_matrices, render_report

BINDINGS = {b.key: b for b in all_bindings()}
BCE, BCE_LOGITS, CE_SOFT = "binary_cross_entropy", "binary_cross_entropy_with_logits", "softmax_cross_entropy_soft"


def run(binding_id: str, spec: str, case: Case, dtype: str = "float32") -> dict:
    b = BINDINGS[f"{spec}:{binding_id}"]
    return evaluate(adapter_for(b.framework), b, SPECS[spec], case, dtype, known=load_known())


def generated(spec: str, case_id: str, inp, tgt, **params) -> Case:
    origin = {"generator": "test", "seed": 0, "index": 0}
    return Case(spec, case_id, origin, {"input": np.asarray(inp, float), "target": np.asarray(tgt, float)}, params)


def split(lines):
    return [x for x in lines if x["kind"] == "divergence"], [x for x in lines if x["kind"] == "agreement"]


def test_every_twin_is_a_registered_binding_of_its_side():
    for pair in pairs.PAIRS:
        for a, b in pair.bindings:
            assert f"{pair.a}:{a}" in BINDINGS and f"{pair.b}:{b}" in BINDINGS, (pair.name, a, b)


def test_derived_cases_feed_the_transform_in_float64_and_keep_the_gen_ids():
    z = generated(BCE_LOGITS, "gen-0-3", [-2.0, 0.0, 30.0], [1.0, 0.0, 0.0], reduction="none")
    (p,) = pairs.derived_cases(pairs.BY_NAME["logits-probabilities"], [z])
    assert p.spec == BCE and p.id == "gen-0-3~sigmoid" and p.params == {"reduction": "none"}
    np.testing.assert_array_equal(p.arrays["target"], z.arrays["target"])
    np.testing.assert_allclose(p.arrays["input"], 1 / (1 + np.exp(-z.arrays["input"])), rtol=1e-15)
    assert p.arrays["input"][2] < 1.0  # float64 keeps 1 - 9.4e-14: rounding to the dtype comes later
    assert p.in_dtype("float32")["input"][2] == 1.0


def test_pairs_never_take_the_domain_buckets_integer_targets():
    # /tmp/full11: the domain bucket's int64 0/1 labels (generate.domain) reached CrossEntropyLoss through
    # bce-ce, which raised "Expected floating point type for target with class probabilities, got Long":
    # what a binding does with an integer target is its own spec's convention (int_targets), not ground
    # the two calls share
    # (nor the other domain buckets' targets outside [0, 1] and activations inside the call: each binding's own)
    selection = Selection(losses=(BCE, CE_SOFT), examples=20)
    domain = [c for c in selection.cases(BCE) if is_domain(c.origin.get("bucket", 0))]
    assert domain and any(np.asarray(c.arrays["target"]).dtype.kind == "i" for c in domain)
    assert any(c.transforms for c in domain) and any(np.any(c.arrays["target"] > 1) for c in domain)
    ce = BINDINGS[f"{CE_SOFT}:torch.nn.CrossEntropyLoss"]
    derived = pairs.cases_for(selection, ce, SPECS[CE_SOFT])
    assert any(c.id.startswith("gen-") for c in derived)
    assert all(np.asarray(c.arrays["target"]).dtype.kind == "f" for c in derived)
    assert not {c.id.split(pairs.SEP)[0] for c in derived} & {c.id for c in domain}


def test_a_run_derives_cases_only_for_the_twins_it_selects_and_only_those_they_take():
    selection = Selection(losses=(BCE, BCE_LOGITS), examples=20)
    bce = BINDINGS[f"{BCE}:torch.nn.BCELoss"]
    derived = pairs.cases_for(selection, bce, SPECS[BCE])
    assert derived and all(c.id.startswith("gen-0-") and c.id.endswith("~sigmoid") for c in derived)
    # BCE on probabilities has no pos_weight: the logits cases that set it are not derived
    source = {c.id: c for c in selection.cases(BCE_LOGITS)}
    assert all("pos_weight" not in source[c.id.removesuffix("~sigmoid")].params for c in derived)
    assert any("pos_weight" in c.params for c in source.values())
    assert not pairs.cases_for(Selection(losses=(BCE,), examples=20), bce, SPECS[BCE])  # no twin runs


def test_seed_bce_against_cross_entropy_is_a_divergence_attributed_to_the_loss():
    # The seed documents (docs/DESIGN.md, seed 000): nn.BCELoss() on [0.8, 0.2, 0.4] / [1, 0, 0]
    # is 0.3190, nn.CrossEntropyLoss() on the same tensors 0.7971.
    seed = next(c for c in SPECS[BCE].edges if c.origin.get("row") == "seed-000")
    (ce_case,) = pairs.derived_cases(pairs.BY_NAME["bce-ce"], [seed])
    records = [run("torch.nn.BCELoss", BCE, seed), run("torch.nn.CrossEntropyLoss", CE_SOFT, ce_case)]
    (d,), agreements = split(conclude(records)[0])
    assert d["pair"] == "bce-ce" and d["form"].startswith("as returned, on the same tensors") and d["part"] == "value"
    assert float(decode_array(d["a"]["actual"]["value"])) == pytest.approx(0.3190, abs=5e-5)
    assert float(decode_array(d["b"]["actual"]["value"])) == pytest.approx(0.7971, abs=5e-5)
    assert d["status"] == "explained" and d["attribution"]["conventions"] == ["loss"]
    # the gradients are with respect to the same tensors: compared, and the loss explains them too
    assert {p["part"] for p in d["parts"]} == {"value", "d/d input", "d/d target"}
    assert all(p["attribution"]["conventions"] == ["loss"] for p in d["parts"])
    (agreement,) = agreements
    assert not schema_errors(d) and not schema_errors(agreement)  # lines of a results file
    assert (agreement["a"], agreement["b"]) == (
        "torch.nn.BCELoss [as BCE]",
        "torch.nn.CrossEntropyLoss [as cross-entropy]",
    )
    (matrix,) = agreement_matrices(agreements)
    assert matrix["spec"] == pairs.BY_NAME["bce-ce"].label()
    assert [c["kind"] for _, cells in matrix["rows"] for c in cells].count("explained") == 2


def test_logits_against_sigmoid_of_logits_saturated_in_float32_is_the_loss_and_the_log_clamp():
    # BCEWithLogitsLoss(30, 0) is 30; sigmoid(30) = 1 - 9.4e-14 rounds to 1 in float32 and
    # BCELoss clamps log(1 - 1) at -100: 100. Reported as
    # https://github.com/pytorch/pytorch/issues/39435 (logits 24-193 on target 0).
    z = generated(BCE_LOGITS, "gen-0-1", [30.0, 1.0], [0.0, 1.0], reduction="none")
    (p,) = pairs.derived_cases(pairs.BY_NAME["logits-probabilities"], [z])
    records = [run("torch.nn.BCEWithLogitsLoss", BCE_LOGITS, z), run("torch.nn.BCELoss", BCE, p)]
    (d,), (agreement,) = split(conclude(records)[0])
    np.testing.assert_allclose(decode_array(d["a"]["actual"]["value"]), [30.0, np.log1p(np.exp(-1.0))], rtol=1e-6)
    assert decode_array(d["b"]["actual"]["value"])[0] == 100.0
    assert d["status"] == "explained"
    assert sorted(d["attribution"]["conventions"]) == ["log_min", "loss"]
    assert "log_min" in d["reason"] and "the loss itself" in d["reason"]
    assert agreement["compared"] == 1 and agreement["explained"] == 1
    # only the target's slope is with respect to the same argument (the input is z on one side,
    # sigmoid(z) on the other): d/d input is not compared
    assert all(p["part"] != "d/d input" for p in d.get("parts", [{"part": d["part"]}]))


def test_unsaturated_logits_and_probabilities_agree():
    z = generated(BCE_LOGITS, "gen-0-2", [-3.0, 0.5, 2.0], [1.0, 0.0, 1.0])
    (p,) = pairs.derived_cases(pairs.BY_NAME["logits-probabilities"], [z])
    records = [run("torch.nn.BCEWithLogitsLoss", BCE_LOGITS, z, "float64"), run("torch.nn.BCELoss", BCE, p, "float64")]
    divergences, (agreement,) = split(conclude(records)[0])
    assert not divergences and agreement["compared"] == 1


@pytest.mark.parametrize("backend", ["tensorflow"])
def test_torch_per_element_against_keras_per_sample_in_the_common_form(backend):
    # torch's BCE with reduction="none" is one loss per element, Keras' binary_crossentropy one
    # per sample (the mean over the last axis; reported as
    # https://github.com/tensorflow/tensorflow/issues/35004, answered by tf.nn's per-element loss):
    # compared as per-sample means. Where they agree there, the shape alone is no divergence.
    keras_id, torch_id = f"keras.losses.binary_crossentropy[{backend}]", "torch.nn.functional.binary_cross_entropy"
    pytest.importorskip(backend)
    agree = generated(BCE, "gen-0-4", [[0.3, 0.6, 0.9], [0.2, 0.5, 0.7]], [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    agree = Case(BCE, agree.id, agree.origin, agree.arrays, {"reduction": "none"})
    records = [run(torch_id, BCE, agree), run(keras_id, BCE, agree)]
    assert decode_array(records[0]["actual"]["value"]).shape == (2, 3)
    assert decode_array(records[1]["actual"]["value"]).shape == (2,)
    divergences, (agreement,) = split(conclude(records)[0])
    assert not divergences and agreement["compared"] == 1
    # p = 0 with y = 1: torch clamps the log at -100 (100), Keras clips p at 1e-7 (16.118); the
    # per-sample means differ by a third of that, and it is the clamp and the clip, not sample_axis
    clipped = Case(
        BCE,
        "gen-0-5",
        agree.origin,
        {"input": np.array([[0.0, 0.5, 0.5]]), "target": np.array([[1.0, 0.0, 1.0]])},
        {"reduction": "none"},
    )
    records = [run(torch_id, BCE, clipped), run(keras_id, BCE, clipped)]
    (d,), _ = split(conclude(records)[0])
    assert d["form"].startswith("per-sample mean: torch.nn.functional.binary_cross_entropy's per-element")
    side = {d[k]["binding"]: decode_array(d[k]["actual"]["value"]) for k in "ab"}  # a: the first by id
    np.testing.assert_allclose(side[torch_id], [(100 + 2 * np.log(2)) / 3], rtol=1e-6)
    np.testing.assert_allclose(side[keras_id], [(-np.log(np.float32(1e-7)) + 2 * np.log(2)) / 3], rtol=1e-5)
    assert d["status"] == "explained" and "sample_axis" not in d["attribution"]["conventions"]
    by = {k["name"]: k for k in d["attribution"]["differing"]}
    assert by["sample_axis"]["alone"] == 0.0 and by["sample_axis"]["share"] == pytest.approx(0.0, abs=1e-12)
    assert {"log_min", "prob_eps"} <= set(d["attribution"]["conventions"])


def _grad_result(binding: str, spec: str, case: Case, dtype: str, conventions: dict, **fields) -> dict:
    """A conforming result whose value and input gradient are the oracle's under ``conventions``."""
    s = SPECS[spec]
    value = expect(s, case, {"reduction": "sum"}, conventions, dtype)
    grad = expect_gradients(s, case, {"reduction": "sum"}, conventions, dtype)["input"]
    part = {"expected": {"value": encode_array(grad)}, "actual": {"value": encode_array(grad), "dtype": dtype}}
    return result(
        binding,
        spec=spec,
        case_id=case.id,
        dtype=dtype,
        params={"reduction": "sum", "weight": None, "label_smoothing": 0.0},
        inputs={k: encode_array(v) for k, v in case.in_dtype(dtype).items()},
        expected={"value": encode_array(value)},
        actual={"value": encode_array(value), "dtype": dtype},
        gradients={"input": {**part, "verdict": "conform", "errors": None}},
        **fields,
    )


def test_a_gradient_divergence_at_a_kink_is_found_and_attributed_to_the_tie_rule():
    # Keras' JAX backend clips with jnp.clip = minimum(maximum(x, lo), hi), which passes half the
    # slope at a bound (the clip_tie convention "split", keras/src/backend/jax/nn.py
    # binary_crossentropy); TensorFlow's clip_by_value passes all of it. At p exactly
    # 1e-7 (the bound, in float32) the values agree and the slopes do not.
    eps = float(np.float32(1e-7))
    case = generated(BCE, "gen-0-6", [eps, 0.5], [1.0, 0.0], reduction="sum")
    tf_id, jax_id = "keras.losses.binary_crossentropy[tensorflow]", "keras.losses.binary_crossentropy[jax]"
    tf_conv, jax_conv = (BINDINGS[f"{BCE}:{i}"].conventions for i in (tf_id, jax_id))
    records = [
        _grad_result(tf_id, BCE, case, "float32", tf_conv, framework="keras[tensorflow]"),
        _grad_result(jax_id, BCE, case, "float32", jax_conv, framework="keras[jax]"),
    ]
    ga, gb = (decode_array(r["gradients"]["input"]["actual"]["value"]) for r in records)
    assert ga[0] == pytest.approx(2 * gb[0])  # half the slope at the tie
    (d,), (agreement,) = split(conclude(records)[0])
    assert d["part"] == "d/d input" and d["status"] == "explained"
    assert d["attribution"]["conventions"] == ["clip_tie"]
    assert agreement["explained"] == 1
    # the same gradients on both sides: no divergence
    records[1]["gradients"] = records[0]["gradients"]
    divergences, _ = split(conclude(records)[0])
    assert not divergences


def test_a_gradient_that_departs_from_its_oracle_is_an_unexplained_divergence():
    case = generated(BCE, "gen-0-7", [0.3, 0.5], [1.0, 0.0], reduction="sum")
    conv = BINDINGS[f"{BCE}:torch.nn.BCELoss"].conventions
    a = _grad_result("torch.nn.BCELoss", BCE, case, "float32", conv)
    b = _grad_result("torch.nn.functional.binary_cross_entropy", BCE, case, "float32", conv)
    b["gradients"]["input"]["actual"]["value"] = encode_array(np.array([5.0, 5.0]))
    b["gradients"]["input"]["verdict"] = b["verdict"] = "deviate"
    (d,), _ = split(conclude([a, b])[0])
    assert d["part"] == "d/d input" and d["status"] == "unexplained"
    assert "torch.nn.functional.binary_cross_entropy departs from its own documented behaviour" in d["reason"]


def test_attribution_in_the_common_form_credits_no_knob_for_a_shape():
    # The per-element and per-sample predictions of one case differ in shape only: in the
    # per-sample form they are the same prediction, and nothing is credited.
    case = generated(BCE, "gen-0-8", [[0.3, 0.6]], [[1.0, 0.0]], reduction="none")
    spec = SPECS[BCE]
    torch_b, keras_b = BINDINGS[f"{BCE}:torch.nn.BCELoss"], BINDINGS[f"{BCE}:keras.losses.binary_crossentropy[jax]"]
    sa = knobs(spec, torch_b, {"reduction": "none"}, dtype="float64")
    sb = knobs(spec, keras_b, {"reduction": "none"}, dtype="float64")
    got = attribute(sa, sb, SPECS, lambda _: case, "float64", shape=(1,))
    assert got["status"] == "same" and got["conventions"] == []
    assert attribute(sa, sb, SPECS, lambda _: case, "float64")["conventions"] == ["sample_axis"]  # as returned


def test_to_common_averages_a_value_and_scales_its_gradient():
    v = np.array([[1.0, 2.0, 6.0]])
    np.testing.assert_allclose(pairs.to_common(v, (1,)), [3.0])
    np.testing.assert_allclose(pairs.to_common(np.ones((1, 3)), (1,), gradient_of=(1, 3)), np.full((1, 3), 1 / 3))
    assert pairs.to_common(v, (1, 3)) is v and pairs.common_form((2, 3), (2, 4)) is None
    assert pairs.common_form((), (3,)) == ("per-sample mean", "b")


def test_cross_entropy_and_nll_of_log_softmax_agree_with_label_smoothing_left_at_its_default():
    # PyTorch documents CrossEntropyLoss(z, t) as NLLLoss(log_softmax(z), t); NLL has no
    # label_smoothing, so cross-entropy's 0.0 is its default and the two are compared.
    z = Case(
        "softmax_cross_entropy",
        "gen-0-9",
        {"generator": "test"},
        {"input": np.array([[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]]), "target": np.array([2, 0])},
        {},
    )
    (lp,) = pairs.derived_cases(pairs.BY_NAME["cross_entropy-nll"], [z])
    records = [run("torch.nn.CrossEntropyLoss", "softmax_cross_entropy", z), run("torch.nn.NLLLoss", "nll_loss", lp)]
    assert records[0]["params"]["label_smoothing"] == 0.0 and "label_smoothing" not in records[1]["params"]
    divergences, (agreement,) = split(conclude(records)[0])
    assert not divergences and agreement["compared"] == 1


def test_the_report_shows_the_common_form_and_the_pairs_matrix():
    z = generated(BCE_LOGITS, "gen-0-1", [30.0, 1.0], [0.0, 1.0], reduction="none")
    (p,) = pairs.derived_cases(pairs.BY_NAME["logits-probabilities"], [z])
    records = [run("torch.nn.BCEWithLogitsLoss", BCE_LOGITS, z), run("torch.nn.BCELoss", BCE, p)]
    lines, summary = conclude(records)
    page = render_report([*records, *lines, summary])
    label = pairs.BY_NAME["logits-probabilities"].label()
    assert f"<caption>{label}</caption>" in page
    assert (
        "torch.nn.BCELoss [on sigmoid(z)]" in page
        and "Compared as returned, B on sigmoid(A&#39;s input); gradients: d/d target only" in page
    )
    assert "gen-0-1~sigmoid" in page
