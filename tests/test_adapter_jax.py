"""The JAX adapter on hand-worked examples: the oracle, the real optax call and the reproducer agree."""

from __future__ import annotations

import ast
import math
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("optax")

from lossparity.adapters.jax import ADAPTER  # noqa: E402
from lossparity.conformance.registry import bindings  # noqa: E402
from lossparity.conformance.specs import SPECS  # noqa: E402
from lossparity.core.model import Case  # noqa: E402


def binding(binding_id: str):
    return next(b for b in bindings("jax") if b.id == binding_id)


def oracle(b, case: Case, dtype: str):
    spec = SPECS[b.spec]
    params = b.effective_params(spec, case.params)
    arrays = case.in_dtype(dtype)
    args = [arrays["input"]] + ([arrays["target"]] if "target" in arrays else [])
    kw = {k: v for k, v in params.items() if v is not None}
    kw.update({k: v for k, v in b.conventions.items() if k in spec.conventions})
    return spec.oracle(*args, **kw, dtype=np.dtype(dtype))


def call(b, case: Case, dtype: str) -> np.ndarray:
    # float64 is float64 only with jax_enable_x64: the jit_x64 mode (JAX's default holds it in float32)
    outcome = ADAPTER.call(b, case, dtype, mode="jit_x64" if dtype == "float64" else "eager")
    assert outcome.error_type is None, outcome.error_message
    assert outcome.dtype == dtype
    return outcome.value


def _case(spec: str, inp, tgt, **params) -> Case:
    return Case(spec, "hand", {"table": "test"}, {"input": np.asarray(inp), "target": np.asarray(tgt)}, params)


LOGITS = [[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]]
LABELS = [2, 0]


def _seed_by_hand() -> list[float]:
    # -log softmax(x)[y] = log(sum_j exp(x_j)) - x_y, row by row
    return [math.log(sum(math.exp(v) for v in row)) - row[y] for row, y in zip(LOGITS, LABELS)]


def test_seed_001_integer_labels():
    expected = _seed_by_hand()
    np.testing.assert_allclose(expected, [0.32656264, 0.4643688], rtol=1e-6)  # the seed document's figures
    b = binding("optax.losses.softmax_cross_entropy_with_integer_labels")
    case = _case("softmax_cross_entropy", np.array(LOGITS), np.array(LABELS, np.int64), reduction="none")
    for dtype in ("float32", "float64"):
        np.testing.assert_allclose(oracle(b, case, dtype), expected, rtol=1e-6)
        np.testing.assert_allclose(call(b, case, dtype), expected, rtol=1e-6)


def test_label_out_of_range_is_nan():
    # take_along_axis's default mode="fill" reads NaN for a label >= C; nothing is raised
    b = binding("optax.losses.softmax_cross_entropy_with_integer_labels")
    case = _case("softmax_cross_entropy", np.array(LOGITS), np.array([3, 0], np.int64), reduction="none")
    for value in (oracle(b, case, "float32"), call(b, case, "float32")):
        assert math.isnan(value[0])
        assert value[1] == pytest.approx(_seed_by_hand()[1], rel=1e-6)


def test_sigmoid_bce_at_logit_zero_is_log_2():
    # sigmoid(0) = 1/2, so -[y log 1/2 + (1 - y) log 1/2] = log 2 whatever y is
    b = binding("optax.losses.sigmoid_binary_cross_entropy")
    case = _case("binary_cross_entropy_with_logits", [0.0, 0.0, 0.0], [1.0, 0.0, 0.3])
    for dtype in ("float32", "float64"):
        np.testing.assert_allclose(call(b, case, dtype), [math.log(2)] * 3, rtol=1e-6)
        np.testing.assert_allclose(oracle(b, case, dtype), [math.log(2)] * 3, rtol=1e-12)


def test_kl_divergence_of_identical_distributions_is_zero():
    p = np.array([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]])
    with np.errstate(divide="ignore"):
        log_p = np.log(p)
    b = binding("optax.losses.kl_divergence")
    case = _case("kl_div", np.where(p > 0, log_p, -1.0), p)  # log q where p = 0 is never read
    for dtype in ("float32", "float64"):
        np.testing.assert_allclose(call(b, case, dtype), [0.0, 0.0, 0.0], atol=1e-7)
        # log p is rounded to the dtype before the oracle sees it: 0 up to that rounding
        np.testing.assert_allclose(oracle(b, case, dtype), [0.0, 0.0, 0.0], atol=1e-7 if dtype == "float32" else 1e-15)


def test_kl_divergence_bindings_split_cases_by_log_target():
    spec = SPECS["kl_div"]
    plain = binding("optax.losses.kl_divergence")
    logt = binding("optax.losses.kl_divergence_with_log_targets")
    # axis and where: optax's, at their defaults (the last axis, every entry)
    assert plain.effective_params(spec, {}) == {"axis": -1, "log_target": False, "reduction": "none", "where": None}
    assert plain.effective_params(spec, {"log_target": True}) is None
    assert logt.effective_params(spec, {}) is None  # probability targets are not log targets
    assert logt.effective_params(spec, {"log_target": True, "reduction": "sum"}) == {
        "axis": -1,
        "log_target": True,
        "reduction": "none",
        "where": None,
    }


def test_reproducer_prints_the_value_call_returns():
    b = binding("optax.losses.softmax_cross_entropy_with_integer_labels")
    case = _case("softmax_cross_entropy", np.array(LOGITS), np.array(LABELS, np.int64), reduction="none")
    script = ADAPTER.reproducer(b, case, "float32")
    assert "jax_enable_x64" not in script and "dtype=jnp.float32" in script  # JAX as configured by default
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    printed = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert printed == call(b, case, "float32").tolist()


def test_literal_keeps_empty_shapes():
    text = ADAPTER.literal("input", np.zeros((0, 3)), "float32")
    assert text == "input = jnp.array([], dtype=jnp.float32).reshape(0, 3)"
    b = binding("optax.losses.softmax_cross_entropy_with_integer_labels")
    case = _case("softmax_cross_entropy", np.zeros((0, 3)), np.zeros((0,), np.int64), reduction="none")
    assert call(b, case, "float32").shape == (0,)


def test_jnp_clip_splits_the_slope_at_a_bound():
    """The fact behind the clip_tie="split" convention of Keras on JAX: jnp.clip's gradient is
    1/2 at each bound, 1 inside, 0 outside (torch.clamp and tf.clip_by_value give 1 at a bound)."""
    import jax
    import jax.numpy as jnp

    slope = jax.grad(lambda x: jnp.clip(x, 0.25, 1.0).sum())(jnp.array([1.0, 0.5, 0.25, 0.0, 2.0]))
    np.testing.assert_array_equal(np.asarray(slope), [0.5, 1.0, 0.5, 0.0, 0.0])


def test_xla_cpu_flushes_float32_subnormals():
    """The fact behind the flush_subnormals convention on JAX: XLA on CPU reads a float32
    subnormal as a zero of its sign, so |x|'s slope (select(x >= 0, 1, -1)) is +1 at -1.4e-45
    and a subnormal ties with 0 in a max, which splits the slope."""
    import jax
    import jax.numpy as jnp

    x = jnp.array([-1.4e-45, -4.4e-39, -1e-30], jnp.float32)
    np.testing.assert_array_equal(np.asarray(jax.grad(lambda v: jnp.abs(v).sum())(x)), [1.0, 1.0, -1.0])
    share = jax.grad(lambda v: jnp.max(jnp.stack([jnp.zeros((), jnp.float32), v[0]])))(x)
    np.testing.assert_array_equal(np.asarray(share), [0.5, 0.0, 0.0])


_COMPILES = """
import os, sys
os.environ["KERAS_BACKEND"] = "jax"
import jax, jax.numpy as jnp
from jax import monitoring
n = [0]
monitoring.register_event_duration_secs_listener(
    lambda event, _d, **_k: n.__setitem__(0, n[0] + (event == "/jax/core/compile/backend_compile_duration"))
)
x = jnp.linspace(0.5, 2.0, 12, dtype=jnp.float32).reshape(3, 4)
if sys.argv[1] == "shared":
    import optax
    jax.value_and_grad(lambda p: optax.losses.squared_error(p, x).mean())(x * 0.5)
before = n[0]
import keras
jax.value_and_grad(lambda p: keras.losses.mean_squared_error(x, p).mean())(x * 0.5)
print(n[0] - before)
"""


def test_keras_on_jax_shares_jaxs_process_and_its_compiled_primitives():
    """Keras on JAX runs in JAX's own worker process, so the eager primitives optax compiled for a
    case's shapes serve Keras' call of the same case: it compiles less after optax than alone."""
    from lossparity.conformance.registry import adapter_for

    assert adapter_for("keras[jax]").process == ADAPTER.process == "jax"
    assert adapter_for("keras[tensorflow]").process not in (ADAPTER.process, adapter_for("tensorflow").process)
    env = {**os.environ, "LOSSPARITY_CACHE": "off"}
    counts = {
        how: int(
            subprocess.run(
                [sys.executable, "-c", _COMPILES, how], capture_output=True, text=True, timeout=180, check=True, env=env
            ).stdout.split()[-1]
        )
        for how in ("alone", "shared")
    }
    assert 0 <= counts["shared"] < counts["alone"], counts


def test_arrays_and_eager_cotangent_compile_nothing_and_keep_every_bit():
    """A case's arrays reach JAX by a host cast and ``jax.device_put``, and eager mode's cotangent is
    made on the host: neither compiles (``jnp.asarray(x, dtype=...)`` and ``jnp.ones_like`` compiled
    once per new shape and dtype, most of all at the edge rows' shapes). The arrays are the bits
    ``jnp.asarray`` gave, subnormals, signed zeros and non-finite values included, and float64 is
    float32 unless x64 is on."""
    import jax
    import jax.numpy as jnp

    ADAPTER.use("cpu")
    ADAPTER.prepare()
    tiny = [5.9604644775390625e-08, -1.401298464324817e-45, 9.183549615799121e-41]
    raw = np.array([[0.0, -0.0, np.inf], [-np.inf, np.nan, 1.5], tiny], np.float64)
    dtypes = ("float16", "bfloat16", "float32", "float64")
    exact = {d: Case("x", "x", {}, {"input": raw}, {}).in_dtype(d)["input"] for d in dtypes}  # as a run gives them
    before = ADAPTER.compilations({})
    got = {d: ADAPTER.to_framework(exact[d], d) for d in dtypes}
    with jax.enable_x64(True):
        wide = ADAPTER.to_framework(exact["float64"], "float64")
    labels = ADAPTER.to_framework(np.array([[2, -100, 7]], np.int64), "float32")
    mask = ADAPTER.to_framework(np.array([[True, False, True]]), "float32")
    ones = jax.device_put(np.ones(np.shape(labels), got["bfloat16"].dtype))  # eager mode's cotangent
    assert ADAPTER.compilations({}) == before
    assert [str(got[d].dtype) for d in dtypes] == ["float16", "bfloat16", "float32", "float32"]
    assert (wide.dtype, labels.dtype, mask.dtype, ones.dtype) == (jnp.float64, jnp.int32, jnp.bool_, jnp.bfloat16)
    for d in dtypes:
        want = jnp.asarray(exact[d], dtype=got[d].dtype)  # the former way
        bits = np.uint16 if got[d].dtype.itemsize == 2 else np.uint32
        assert np.array_equal(np.asarray(got[d]).view(bits), np.asarray(want).view(bits)), d
    np.testing.assert_array_equal(np.asarray(labels), [[2, -100, 7]])
    eager, jit = (ADAPTER.function_source("jnp.sum(x ** 2)", ["x"], ["x"], m) for m in ("eager", "jit"))
    assert "np.ones(np.shape(loss), loss.dtype)" in eager and "jnp.ones_like(loss)" in jit
    namespace = dict(ADAPTER.namespace())
    exec(compile(eager, "<test>", "exec"), namespace)  # noqa: S102 - the adapter's own program
    loss, (grad,) = namespace["value_and_grad"](got["float32"][1:2, 2:])
    np.testing.assert_array_equal(np.asarray(grad), [[3.0]])
