"""The TensorFlow and Keras (on TensorFlow) adapters on hand-worked examples: every expected number is derived here."""

from __future__ import annotations

import ast
import math
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from lossparity.adapters.tensorflow import ADAPTER  # noqa: E402
from lossparity.conformance.registry import adapter_for, all_bindings  # noqa: E402
from lossparity.conformance.specs import SPECS  # noqa: E402
from lossparity.core.model import Case  # noqa: E402


def binding(binding_id: str, spec: str):
    return next(b for b in all_bindings() if b.id == binding_id and b.spec == spec)


def case(spec: str, inp, tgt, params=None, target_dtype=np.float64) -> Case:
    arrays = {"input": np.asarray(inp, np.float64), "target": np.asarray(tgt, target_dtype)}
    return Case(spec, "hand", {"table": "test"}, arrays, dict(params or {}))


# Seed 001: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=[2, 0],
# logits=[[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]]) is [0.32656264, 0.4643688].
SEED_LOGITS = [[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]]
SEED_LABELS = [2, 0]
SEED_VALUE = [0.32656264, 0.4643688]


def test_seed_by_hand():
    # -log softmax(x)[y] = log(sum_c exp(x_c)) - x_y
    by_hand = [math.log(sum(math.exp(v) for v in row)) - row[y] for row, y in zip(SEED_LOGITS, SEED_LABELS)]
    np.testing.assert_allclose(by_hand, SEED_VALUE, rtol=1e-6)


def test_seed_oracle():
    spec = SPECS["softmax_cross_entropy"]
    got = spec.oracle(np.array(SEED_LOGITS), np.array(SEED_LABELS), reduction="none")
    np.testing.assert_allclose(got, SEED_VALUE, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_seed_tf_nn(dtype):
    b = binding("tf.nn.sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy")
    out = ADAPTER.call(b, case("softmax_cross_entropy", SEED_LOGITS, SEED_LABELS, target_dtype=np.int64), dtype)
    assert out.error_type is None, out.error_message
    assert out.dtype == dtype
    np.testing.assert_allclose(out.value, SEED_VALUE, rtol=1e-6)


@pytest.mark.parametrize(
    "binding_id", ["keras.losses.binary_crossentropy[tensorflow]", "keras.losses.BinaryCrossentropy[tensorflow]"]
)
def test_keras_bce_clips_at_epsilon(binding_id):
    # p = 0 is clipped to float32(1e-7); with y = 1 the loss is -log(float32(1e-7)), about 16.118,
    # and the (1 - y) log(1 - p) term is 0. One element: the mean over the last axis is that value.
    b = binding(binding_id, "binary_cross_entropy")
    expected = -math.log(float(np.float32(1e-7)))
    assert expected == pytest.approx(16.118, abs=1e-3)
    out = adapter_for(b.framework).call(b, case("binary_cross_entropy", [0.0], [1.0]), "float32")
    assert out.error_type is None, out.error_message
    assert out.dtype == "float32"
    np.testing.assert_allclose(out.value, expected, rtol=1.3e-6)


def test_invalid_label_raises_the_declared_class():
    b = binding("tf.nn.sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy")
    out = ADAPTER.call(b, case("softmax_cross_entropy", [[1.0, 2.0]], [2], target_dtype=np.int64), "float32")
    assert b.conventions["invalid_label"] in out.error_mro


def test_weighted_binding_takes_only_cases_with_pos_weight():
    spec = SPECS["binary_cross_entropy_with_logits"]
    b = binding("tf.nn.weighted_cross_entropy_with_logits", spec.name)
    assert b.effective_params(spec, {}) is None
    # x = 0 is sigmoid 1/2: the loss is q*y*log 2 + (1 - y)*log 2 = (3*1 + 0) log 2 for q = 3, y = 1.
    c = case(spec.name, [0.0], [1.0], {"pos_weight": np.array([3.0])})
    out = ADAPTER.call(b, c, "float64")
    np.testing.assert_allclose(out.value, [3 * math.log(2)], rtol=1e-12)


def test_literal_of_empty_batch_keeps_its_shape():
    ns = dict(ADAPTER.namespace())
    exec(ADAPTER.literal("x", np.zeros((0, 3)), "float32"), ns)  # noqa: S102 - our own literal
    assert tuple(ns["x"].shape) == (0, 3) and ns["x"].dtype.name == "float32"


def test_reproducer_prints_what_call_returns():
    b = binding("keras.losses.CategoricalCrossentropy[tensorflow]", "softmax_cross_entropy_soft")
    keras_adapter = adapter_for(b.framework)
    c = case(
        "softmax_cross_entropy_soft",
        SEED_LOGITS,
        [[0.0, 0.0, 1.0], [0.5, 0.25, 0.25]],
        {"label_smoothing": 0.1, "reduction": "sum"},
    )
    out = keras_adapter.call(b, c, "float32")
    script = keras_adapter.reproducer(b, c, "float32")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    printed = ast.literal_eval(run.stdout.strip().splitlines()[-1])
    assert np.asarray(printed, np.float64).tolist() == out.value.tolist()


def test_tensorflow_cpu_flushes_float32_subnormals():
    """The fact behind the flush_subnormals convention on TensorFlow: its CPU kernels run with
    flush-to-zero and denormals-are-zero, so sign(x), |x|'s slope, is 0 at a float32 subnormal."""
    import tensorflow as tf

    x = tf.constant(np.array([-1.4e-45, 4.4e-39, -1e-30], np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(tf.abs(x))
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [0.0, 0.0, -1.0])
