"""JAX: ``optax.losses`` and the ``jax.scipy.special`` information measures.

Their bindings, with the conventions taken from the optax 0.2 docstrings and source and the
``jax.numpy`` documentation, are declared beside their specs (``conformance/families/<family>.py``,
jax sections): optax losses never reduce over the batch; each returns one loss per element
(``sigmoid_binary_cross_entropy``) or per sample, summed over the last axis (the others).
XLA on CPU flushes subnormal numbers to zero (float32 and float64).

JAX runs as it is configured by default: ``jax_enable_x64`` off, where a float64 array is made
float32 ("JAX by default enforces single-precision numbers": the sharp bits of the JAX
documentation, "Double (64bit) precision"), so a float64 case computes in float32 and returns
float32 (``held_dtype``). Enabling x64 is a mode of its own, ``jit_x64`` (``jax.jit`` under
``jax.enable_x64(True)``; its reproducers set ``jax_enable_x64``): there float64 is float64, and
the arrays JAX creates itself (``jax.nn.one_hot``'s rows, ``jnp.ones``) default to float64 too,
which promotes some losses of narrower inputs. Class-index labels are ``int32``, the integer type
of a JAX program that does not enable x64, in every mode.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from lossparity.adapters.base import FrameworkAdapter, py_literal
from lossparity.core.cache import cache_dir
from lossparity.core.dtypes import numpy_dtype


def compilation_cache() -> Path | None:
    """Where JAX's compiled executables are kept between processes and runs:
    ``$LOSSPARITY_CACHE/jax`` (``lossparity.core.cache``); ``LOSSPARITY_CACHE=off`` keeps none."""
    return cache_dir("jax")


class JaxAdapter(FrameworkAdapter):
    framework = "jax"
    #: A process of its own, which Keras on JAX shares (adapters/keras.py): eager JAX compiles each
    #: primitive once per process, shape and dtype, and keras.ops on JAX binds the same primitives
    #: as optax on the same cases, so sharing saves Keras on JAX about a third of its compilations
    #: (885 to 609 on eight specs' float32 eager cases, the verdicts identical).
    process = "jax"
    module = "jax"
    imports = "import numpy as np\nimport jax\nimport jax.numpy as jnp\nimport optax\n"
    transforms = {
        "sigmoid": "jax.nn.sigmoid({x})",
        "softmax": "jax.nn.softmax({x}, axis={axis})",
        "log_softmax": "jax.nn.log_softmax({x}, axis={axis})",
        "log": "jnp.log({x})",
        "exp": "jnp.exp({x})",
    }
    modes = ("eager", "jit", "jit_x64")
    compiler = "xla"
    reuses_arrays = True

    def held_dtype(self, dtype, mode):
        return "float32" if dtype == "float64" and mode != "jit_x64" else dtype

    def mode_context(self, mode):
        return self.namespace()["jax"].enable_x64(True) if mode == "jit_x64" else super().mode_context(mode)

    def mode_settings(self, mode):
        return 'jax.config.update("jax_enable_x64", True)\n' if mode == "jit_x64" else ""

    def unavailable(self):
        reason = super().unavailable()
        if reason is None and importlib.util.find_spec("optax") is None:
            return "optax is not installed"  # every binding but two is optax's
        return reason

    def version_modules(self):
        return ("jax", "jaxlib", "optax")

    def to_framework(self, array, dtype):
        """The case's array as a JAX array of ``dtype`` (float64 without x64: float32, ``held_dtype``).

        Cast by NumPy on the host, then put on the device (``jax.device_put``): ``jnp.asarray``
        compiles an XLA convert (or copy) for every shape and dtype it meets, one compilation per
        argument of each new shape, in every mode (edge rows have many shapes). The values are
        the same bits: a case's floats are already exact in ``dtype`` (``Case.in_dtype``), so the
        cast is exact, subnormals included; labels are small integers, exact in int32."""
        jax = self.namespace()["jax"]
        if array.dtype.kind == "b":  # a mask (optax's where)
            host = array.astype(bool)
        elif array.dtype.kind == "f":  # float64 is float32 unless x64 is on (in this thread: jit_x64's context)
            host = array.astype(jax.dtypes.canonicalize_dtype(numpy_dtype(dtype)))
        else:
            host = array.astype(np.int32)
        return jax.device_put(host, None if self.device == "cpu" else self._devices()[0])

    def literal(self, name, array, dtype):
        kind = f"jnp.{dtype}" if array.dtype.kind == "f" else "bool" if array.dtype.kind == "b" else "jnp.int32"
        text = f"jnp.array({py_literal(array)}, dtype={kind})"
        if array.size == 0 and array.ndim != 1:
            text += f".reshape{tuple(array.shape)}"
        if self.device != "cpu":
            text = f"jax.device_put({text}, jax.devices({self.device!r})[0])"
        return f"{name} = {text}"

    def to_numpy(self, result):
        return np.array(result, dtype=np.float64), str(result.dtype)

    def _devices(self):
        return self.namespace()["jax"].devices(self.device)

    def device_unavailable(self):
        if self.device == "cpu":
            return None
        try:
            self._devices()
        except RuntimeError as exc:
            return f"jax.devices({self.device!r}) fails: {str(exc).splitlines()[0]}"
        return None

    def settings(self):
        if self.device == "cpu":
            return ""
        precision = "tensorfloat32" if self.tf32 else "highest"
        return f"jax.config.update('jax_default_matmul_precision', {precision!r})\n"

    def public_losses(self):
        """Every public callable of ``optax.losses``."""
        losses = self.namespace()["optax"].losses
        return [f"optax.losses.{n}" for n in dir(losses) if not n.startswith("_") and callable(getattr(losses, n))]

    counts_process_wide = True  # eager JAX compiles each primitive per shape, outside our functions

    def prepare(self):
        super().prepare()
        # JAX's default configuration, whatever JAX_ENABLE_X64 says: the x64 mode enables it per call.
        self.namespace()["jax"].config.update("jax_enable_x64", False)
        self._backend_compiles = 0
        # JAX's persistent compilation cache: eager JAX compiles every primitive for every
        # shape and dtype it meets, and a run meets thousands; cached on disk, a second worker
        # or the next run loads them. The executables are the same, so are the numbers.
        cache = compilation_cache()
        if cache is not None:
            jax = self.namespace()["jax"]
            jax.config.update("jax_compilation_cache_dir", str(cache))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
        # Every XLA compilation, jitted function or eager primitive, reports its duration here.
        from jax import monitoring

        def count(event, _duration, **_kw):
            if event == "/jax/core/compile/backend_compile_duration":  # jax._src.dispatch.BACKEND_COMPILE_EVENT
                self._backend_compiles += 1

        monitoring.register_event_duration_secs_listener(count)

    def compilations(self, functions):
        self.namespace()
        return self._backend_compiles

    def program(self, args, wrt, mode):
        sig, ws = ", ".join(args), ", ".join(wrt)
        # the summed loss's cotangent, ones: in eager mode made on the host, as jnp.ones_like
        # compiles a broadcast for every shape and dtype of a loss (in jit it is part of the program)
        ones = "jax.device_put(np.ones(np.shape(loss), loss.dtype))" if mode == "eager" else "jnp.ones_like(loss)"
        lines = (
            [
                f"def value_and_grad({sig}):",
                f"    loss, vjp = jax.vjp(lambda {ws}: loss_fn({sig}), {ws})",
                f"    return loss, list(vjp({ones}))",
            ]
            if wrt
            else []
        )
        if mode in ("jit", "jit_x64"):  # jit_x64: jax.jit under jax_enable_x64 (mode_context)
            lines += ["loss_fn = jax.jit(loss_fn)"] + (["value_and_grad = jax.jit(value_and_grad)"] if wrt else [])
        return "\n".join(lines) + "\n"


ADAPTER = JaxAdapter()

#: Public loss APIs deliberately left unbound, and why.
EXCLUDED = {
    "optax.losses.smooth_labels": "not a loss: it returns smoothed labels (1 - alpha) y + alpha / C, the "
    "label-smoothing convention the cross-entropy specs apply themselves",
}
