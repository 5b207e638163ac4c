"""Keras on its NumPy backend (``keras[numpy]``) on hand-worked examples: every expected number is
derived here. Keras fixes its backend when it is first imported, so each check that calls Keras
runs in a fresh Python process of its own (this test process may already hold Keras on another
backend)."""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("ml_dtypes")

from lossparity.adapters.numpy_backend import NO_GRADIENTS  # noqa: E402
from lossparity.conformance.registry import adapter_for, bindings  # noqa: E402

FRAMEWORK = "keras[numpy]"


def _in_fresh_process(body: str, env: dict | None = None) -> dict:
    """Run ``body`` (which sets ``out``, a JSON-able dict) in a fresh interpreter; return ``out``."""
    script = (
        "import json, numpy as np\n"
        "from lossparity.conformance.registry import adapter_for, bindings\n"
        "from lossparity.core.model import Case\n"
        f"A = adapter_for({FRAMEWORK!r})\n"
        "def B(i, s): return next(b for b in bindings(A.framework) if b.id == i and b.spec == s)\n"
        "def C(s, x, y, **p): return Case(s, 'hand', {'table': 'test'}, "
        "{'input': np.asarray(x, np.float64), 'target': np.asarray(y, np.float64)}, p)\n"
        + body
        + "\nprint(json.dumps(out))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_column_is_eager_values_only():
    adapter = adapter_for(FRAMEWORK)
    assert adapter.modes == ("eager",) and not adapter.opt_in_modes  # no compiler
    assert adapter.differentiates is False  # no autodiff: a run asks no gradient
    assert adapter.held_dtype("float64", "eager") == "float32" and adapter.held_dtype("bfloat16", "eager") == "bfloat16"
    ids = {b.id for b in bindings(FRAMEWORK)}
    # every Keras binding has its [numpy] copy, the same as on JAX
    assert {i.replace("[numpy]", "[jax]") for i in ids} == {b.id for b in bindings("keras[jax]")}
    assert "keras.losses.MeanSquaredError[numpy]" in ids


@pytest.mark.skipif(adapter_for(FRAMEWORK).unavailable() is not None, reason="keras is not installed")
def test_values_dtypes_and_refused_gradients_by_hand():
    # MeanSquaredError() of y = [[0, 1], [1, 1]], p = [[0.5, 0.5], [1, 3]]: squared errors
    # [[0.25, 0.25], [0, 4]], per-sample means [0.25, 2], and sum_over_batch_size: 1.125, exactly
    # representable in every dtype. The class computes in floatx (float32).
    y, p = [[0.0, 1.0], [1.0, 1.0]], [[0.5, 0.5], [1.0, 3.0]]
    # binary_crossentropy(y=[1], p=[0]): p is clipped to epsilon 1e-7 in the input's dtype
    # (float32: float32(1e-7)), so the loss is -log(float32(1e-7)) ~ 16.118.
    out = _in_fresh_process(
        f"""
mse = B('keras.losses.MeanSquaredError[numpy]', 'squared_error')
bce = B('keras.losses.binary_crossentropy[numpy]', 'binary_cross_entropy')
out = {{}}
for dt in ('float32', 'float64', 'float16', 'bfloat16'):
    o = A.call(mse, C('squared_error', {p!r}, {y!r}), dt)
    out['mse-' + dt] = [None if o.value is None else o.value.tolist(), o.dtype, o.error_message]
o = A.call(bce, C('binary_cross_entropy', [0.0], [1.0]), 'float32', wrt=('input',))
out['bce'] = [o.value.tolist(), o.dtype, o.grads]
o = A.call(bce, C('binary_cross_entropy', [0.0], [1.0]), 'float64')
out['bce64'] = [o.value.tolist(), o.dtype]
import keras
out['backend'] = keras.backend.backend()
"""
    )
    assert out["backend"] == "numpy"
    for dt in ("float32", "float64", "float16", "bfloat16"):
        value, got_dtype, error = out[f"mse-{dt}"]
        assert error is None
        assert value == 1.125 and got_dtype == "float32", dt  # the class computes in floatx
    expected = -math.log(float(np.float32(1e-7)))
    assert expected == pytest.approx(16.118, abs=1e-3)
    value, got_dtype, grads = out["bce"]
    assert got_dtype == "float32"
    np.testing.assert_allclose(value, [expected], rtol=1.3e-6)
    # asked for anyway (explain --grad), the gradient is refused with the reason
    assert grads == {"input": f"NotImplementedError: {NO_GRADIENTS}"}
    # float64 is held as float32 (Keras' result_type maps 64-bit to 32-bit off TensorFlow)
    value, got_dtype = out["bce64"]
    assert got_dtype == "float32"
    np.testing.assert_allclose(value, [expected], rtol=1.3e-6)


@pytest.mark.skipif(adapter_for(FRAMEWORK).unavailable() is not None, reason="keras is not installed")
def test_keras_backend_is_set_by_the_worker_and_the_reproducer():
    """KERAS_BACKEND=jax in the environment does not reach the numpy column: its worker and its
    reproducer set numpy before Keras is imported, and the reproducer prints what ``call`` gives."""
    out = _in_fresh_process(
        """
b = B('keras.losses.Huber[numpy]', 'huber')
c = C('huber', [[0.5, 3.0]], [[0.0, 0.0]])
o = A.call(b, c, 'bfloat16')
import keras
out = {'value': o.value.tolist(), 'dtype': o.dtype, 'script': A.reproducer(b, c, 'bfloat16'),
       'backend': keras.backend.backend()}
""",
        env={"KERAS_BACKEND": "jax"},
    )
    assert out["backend"] == "numpy"
    script = out["script"]
    assert "os.environ['KERAS_BACKEND'] = 'numpy'" in script and "ml_dtypes.bfloat16" in script
    # Huber(delta=1) of residuals 0.5 and 3: 0.5 * 0.5^2 = 0.125 and 1 * (3 - 0.5) = 2.5; mean 1.3125
    assert out["value"] == 1.3125
    run = subprocess.run(
        [sys.executable, "-c", script + "print(keras.backend.backend())"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    *_, printed, backend = run.stdout.strip().splitlines()
    assert backend == "numpy"
    assert ast.literal_eval(printed) == out["value"]


@pytest.mark.skipif(adapter_for(FRAMEWORK).unavailable() is not None, reason="keras is not installed")
def test_explain_grad_says_the_gradients_are_unsupported_and_why():
    """``explain --grad`` of a keras[numpy] binding shows its value and no gradient, and says why."""
    run = subprocess.run(
        [sys.executable, "-m", "lossparity", "explain", "squared_error:keras.losses.MeanSquaredError[numpy]"]
        + ["--input", "[[0.5, 0.5], [1.0, 3.0]]", "--target", "[[0.0, 1.0], [1.0, 1.0]]", "--grad", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout)
    (side,) = out["bindings"]
    assert side["gradients"] == {} and side["verdict"] == "conform"
    from lossparity.core.records import decode_array

    assert decode_array(side["actual"]["value"]).tolist() == 1.125  # the mean of [[0.25, 0.25], [0, 4]]
    assert f"No gradients of keras.losses.MeanSquaredError[numpy]: unsupported ({NO_GRADIENTS})." in out["summary"]
