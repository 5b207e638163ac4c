"""Gradient verdicts, dtypes and execution modes through the real frameworks, on hand-worked cases.

Every expected number is derived here from the mathematics (softmax minus one-hot, the slope of
a clamped log), never taken from a framework.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest

from lossparity.conformance.divergence import find_divergences
from lossparity.conformance.known import load_known
from lossparity.conformance.registry import adapter_for, all_bindings, family
from lossparity.conformance.runner import evaluate
from lossparity.conformance.specs import SPECS
from lossparity.core.dtypes import numpy_dtype
from lossparity.core.model import Case
from lossparity.core.records import decode_array

SEED_LOGITS = [[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]]  # seed 001: labels [2, 0]
SEED_LABELS = [2, 0]


def binding(binding_id, spec):
    return next(b for b in all_bindings() if b.id == binding_id and b.spec == spec)


def case(spec, inp, tgt, target_dtype=np.float64, **params) -> Case:
    arrays = {"input": np.asarray(inp, np.float64), "target": np.asarray(tgt, target_dtype)}
    return Case(spec, "hand", {"table": "test"}, arrays, params)


def run(binding_id, spec, c, dtype="float32", mode="eager"):
    b = binding(binding_id, spec)
    pytest.importorskip({"jax": "optax"}.get(b.framework, family(b.framework)))
    return evaluate(adapter_for(b.framework), b, SPECS[spec], c, dtype, mode=mode, known=load_known())


def softmax_minus_onehot(logits, labels):
    out = []
    for row, y in zip(logits, labels):
        z = sum(math.exp(v) for v in row)
        out.append([math.exp(v) / z - (c == y) for c, v in enumerate(row)])
    return np.array(out)


SEED = case("softmax_cross_entropy", SEED_LOGITS, SEED_LABELS, np.int64, reduction="none")


@pytest.mark.parametrize(
    "binding_id, mode",
    [
        ("tf.nn.sparse_softmax_cross_entropy_with_logits", "eager"),
        ("tf.nn.sparse_softmax_cross_entropy_with_logits", "function"),
        ("tf.nn.sparse_softmax_cross_entropy_with_logits", "function_jit"),
        ("optax.losses.softmax_cross_entropy_with_integer_labels", "eager"),
        ("optax.losses.softmax_cross_entropy_with_integer_labels", "jit"),
        ("optax.losses.softmax_cross_entropy_with_integer_labels", "jit_x64"),
        ("torch.nn.functional.cross_entropy", "eager"),
    ],
)
def test_seed_gradient_is_softmax_minus_one_hot_in_every_mode(binding_id, mode):
    r = run(binding_id, "softmax_cross_entropy", SEED, "float32", mode)
    assert r["mode"] == mode and r["verdict"] == r["value_verdict"] == "conform", r["errors"]
    g = r["gradients"]["input"]
    assert g["verdict"] == "conform" and g["actual"]["dtype"] == "float32"
    np.testing.assert_allclose(
        decode_array(g["expected"]["value"]), softmax_minus_onehot(SEED_LOGITS, SEED_LABELS), rtol=1e-15
    )
    assert set(r["gradients"]) == {"input"}  # class indices are not differentiated


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_inputs_are_rounded_first_and_measured_in_their_ulps(dtype):
    r = run(
        "optax.losses.softmax_cross_entropy_with_integer_labels",
        "softmax_cross_entropy",
        case("softmax_cross_entropy", [[0.1, 0.2, 0.3]], [1], np.int64),
        dtype,
    )
    given = decode_array(r["inputs"]["input"])
    assert given[0, 0] != 0.1 and given[0, 0] == float(np.asarray(0.1).astype(numpy_dtype(dtype)))
    assert r["actual"]["dtype"] == dtype and r["tolerance"]["rtol"] in (1e-3, 1.6e-2)
    assert f"in {dtype} ULPs" in r["errors"]["summary"]


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_jax_default_configuration_holds_float64_in_float32_and_the_oracle_expects_it(mode):
    """JAX's default configuration (jax_enable_x64 off) makes a float64 array float32 ("JAX by
    default enforces single-precision numbers", the sharp bits' "Double (64bit) precision"): the
    loss is that of the float32-rounded logits, computed and returned in float32, and so is the
    gradient. 0.1 is not a float32, so a float64 expectation would differ from it by ~1e-9."""
    logits = [[0.1, 0.2, 0.3]]
    r = run(
        "optax.losses.softmax_cross_entropy_with_integer_labels",
        "softmax_cross_entropy",
        case("softmax_cross_entropy", logits, [1], np.int64, reduction="none"),
        "float64",
        mode,
    )
    assert r["computes_in"] == "float32" and r["actual"]["dtype"] == "float32"
    assert r["verdict"] == "conform", r["errors"]
    held = np.asarray(logits, np.float32).astype(np.float64)[0]
    lse = math.log(sum(math.exp(v) for v in held))
    assert decode_array(r["expected"]["value"])[0] == pytest.approx(lse - held[1], rel=1e-15)
    assert decode_array(r["expected"]["value"])[0] != pytest.approx(
        math.log(sum(math.exp(v) for v in logits[0])) - 0.2, rel=1e-12
    )
    assert r["gradients"]["input"]["actual"]["dtype"] == "float32"
    assert r["gradients"]["input"]["verdict"] == "conform"


def test_jax_x64_mode_computes_float64_and_its_reproducer_enables_x64():
    r = run(
        "optax.losses.softmax_cross_entropy_with_integer_labels",
        "softmax_cross_entropy",
        case("softmax_cross_entropy", [[0.1, 0.2, 0.3]], [1], np.int64, reduction="none"),
        "float64",
        "jit_x64",
    )
    assert "computes_in" not in r and r["actual"]["dtype"] == "float64" and r["verdict"] == "conform"
    expected = math.log(sum(math.exp(v) for v in (0.1, 0.2, 0.3))) - 0.2
    assert decode_array(r["actual"]["value"])[0] == pytest.approx(expected, rel=1e-14)


def test_keras_class_computes_in_float32_and_says_so():
    r = run(
        "keras.losses.BinaryCrossentropy[tensorflow]",
        "binary_cross_entropy",
        case("binary_cross_entropy", [0.8, 0.2, 0.4], [1.0, 0.0, 0.0]),
        "float16",
    )
    assert r["computes_in"] == "float32" and r["actual"]["dtype"] == "float32"
    assert r["value_verdict"] == "conform", r["errors"]
    assert r["gradients"]["input"]["actual"]["dtype"] == "float16"  # back in the input's dtype


def test_a_result_in_another_dtype_than_due_is_a_finding():
    b = dataclasses.replace(
        binding("keras.losses.BinaryCrossentropy[tensorflow]", "binary_cross_entropy"), computes_in=None
    )
    pytest.importorskip("tensorflow")
    r = evaluate(
        adapter_for(b.framework),
        b,
        SPECS["binary_cross_entropy"],
        case("binary_cross_entropy", [0.8, 0.2, 0.4], [1.0, 0.0, 0.0]),
        "float16",
    )
    assert r["value_verdict"] == "deviate" and r["errors"]["dtype"] == "float32"
    assert r["errors"]["summary"].startswith("Returned float32 where float16 was due.")


def test_torch_bce_gradient_at_a_saturated_probability_is_a_known_gradient_finding():
    # p = 0, y = 0: log p is clamped at -100 (slope 0), -(1-y) log(1-p) has slope 1/(1-p) = 1.
    r = run(
        "torch.nn.BCELoss",
        "binary_cross_entropy",
        case("binary_cross_entropy", [0.0, 0.5], [0.0, 0.0], reduction="none"),
        "float64",
    )
    assert r["value_verdict"] == "conform"
    g = r["gradients"]["input"]
    np.testing.assert_array_equal(decode_array(g["expected"]["value"]), [1.0, 2.0])
    assert g["verdict"] == "deviate" and decode_array(g["actual"]["value"])[0] != 1.0
    assert r["verdict"] == "known" and r["known"]["id"] == "torch-bce-gradient-saturated-probabilities"


def test_xla_mode_returns_nan_where_eager_raises_and_modes_diverge():
    pytest.importorskip("tensorflow")
    bad = case("softmax_cross_entropy", [[1.0, 2.0]], [2], np.int64, reduction="none")
    eager = run("tf.nn.sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy", bad, mode="eager")
    xla = run("tf.nn.sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy", bad, mode="function_jit")
    assert eager["verdict"] == "conform" and eager["actual"]["error"] == "InvalidArgumentError"
    assert xla["verdict"] == "known" and xla["known"]["id"] == "tf-sparse-softmax-ce-xla-invalid-label"
    bindings = {b.key: b for b in all_bindings()}
    divergences, agreement = find_divergences([eager, xla], bindings, SPECS)
    (d,) = divergences
    assert (d["a"]["mode"], d["b"]["mode"], d["status"]) == ("eager", "function_jit", "explained")
    assert any(p["a"].endswith("[eager]") and p["compared"] == 1 for p in agreement)


def test_jit_reproducer_runs_the_same_program_and_prints_the_gradient():
    pytest.importorskip("optax")
    b = binding("optax.losses.softmax_cross_entropy_with_integer_labels", "softmax_cross_entropy")
    script = adapter_for("jax").reproducer(b, SEED, "float64", mode="jit_x64", wrt=("input",))
    assert "value_and_grad = jax.jit(value_and_grad)" in script
    assert 'jax.config.update("jax_enable_x64", True)' in script  # float64 is float64 only under x64
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("[")]
    np.testing.assert_allclose(eval(lines[1]), softmax_minus_onehot(SEED_LOGITS, SEED_LABELS), rtol=1e-12)  # noqa: S307


def test_framework_arrays_are_c_contiguous_and_keep_their_rank():
    b = binding("torch.nn.functional.cross_entropy", "softmax_cross_entropy")
    unbatched = case("softmax_cross_entropy", [0.8, 0.2, 0.4], 0, np.int64)
    spatial = case("softmax_cross_entropy", np.zeros((2, 3, 4)), np.zeros((2, 3), np.int64), np.int64)
    arrays = adapter_for("torch").framework_arrays(b, unbatched, "float32")
    assert arrays["input"].shape == (3,) and arrays["target"].shape == ()  # a 0-d target stays 0-d
    moved = adapter_for("torch").framework_arrays(b, spatial, "float32")
    assert moved["input"].shape == (2, 4, 3) and moved["input"].flags.c_contiguous


def test_a_confident_bfloat16_loss_rounded_to_zero_conforms_to_its_rounding_model():
    """optax's integer-label cross-entropy is logsumexp(x) - x[y] in the logits' dtype: in
    bfloat16, 8 + log(1 + e^-8 + e^-9) rounds to 8, so a loss of 4.6e-4 comes out 0, past the
    tolerance but within the logsumexp model's bound (reference/rounding.py); the record says so."""
    r = run(
        "optax.losses.softmax_cross_entropy_with_integer_labels",
        "softmax_cross_entropy",
        case("softmax_cross_entropy", [[8.0, 0.0, -1.0]], [0], np.int64, reduction="none"),
        "bfloat16",
    )
    assert decode_array(r["actual"]["value"])[0] == 0.0 and decode_array(r["expected"]["value"])[0] > 4e-4
    assert r["value_verdict"] == "conform" and not r["errors"]["ok"]  # outside the tolerance, inside the model
    summary = r["errors"]["rounding"]["summary"]
    assert summary.startswith("consistent with computing logsumexp in bfloat16: the largest error, 0.000")
    # the same call in float32 is held to the tolerance and meets it
    r32 = run(
        "optax.losses.softmax_cross_entropy_with_integer_labels",
        "softmax_cross_entropy",
        case("softmax_cross_entropy", [[8.0, 0.0, -1.0]], [0], np.int64, reduction="none"),
        "float32",
    )
    assert r32["verdict"] == "conform" and r32["errors"]["ok"] and "rounding" not in r32["errors"]


def test_a_rounded_result_is_a_valid_schema_2_line(tmp_path):
    from lossparity.core.records import SCHEMA_VERSION, json_line, read_records

    r = run(
        "optax.losses.softmax_cross_entropy_with_integer_labels",
        "softmax_cross_entropy",
        case("softmax_cross_entropy", [[8.0, 0.0, -1.0]], [0], np.int64, reduction="none"),
        "bfloat16",
    )
    meta = {
        "kind": "meta",
        "schema": SCHEMA_VERSION,
        "lossparity": "0.1.0",
        "versions": {},
        "python": "3.11",
        "platform": "Linux",
        "device": "cpu",
        "seed": 0,
        "command": "test",
        "started": "2026-12-06T00:00:00",
    }
    path = tmp_path / "results.jsonl"
    path.write_text(json_line(meta) + "\n" + json_line(r) + "\n")
    (_, back) = read_records(path)
    assert SCHEMA_VERSION == 2 and back["errors"]["rounding"]["stages"] == ["logsumexp"]
    broken = {**r, "errors": {**r["errors"], "rounding": {"summary": "no figures"}}}
    path.write_text(json_line(meta) + "\n" + json_line(broken) + "\n")
    with pytest.raises(ValueError, match="rounding"):
        read_records(path)
