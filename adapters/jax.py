"""JAX: ``optax.losses`` and the ``jax.scipy.special`` information measures.

Conventions are taken from the optax 0.2 docstrings and source (``optax/losses/_classification.py``)
and the ``jax.numpy`` documentation:

- optax losses never reduce over the batch: each returns one loss per element
  (``sigmoid_binary_cross_entropy``) or per sample, summed over the last axis (the others).
- ``softmax_cross_entropy_with_integer_labels`` gathers the target logit with
  ``jnp.take_along_axis`` in its default ``mode="fill"``: a label ``>= C`` reads NaN, so the
  loss is NaN and nothing is raised. Labels in ``[-C, 0)`` are wrapped NumPy-style (``-1``
  is class ``C - 1``; ``take_along_axis``'s legacy ``wrap_negative_indices``): the
  oracle's ``invalid_label="wrap_negative"``.
- ``softmax_cross_entropy`` multiplies ``labels * log_softmax(logits)`` as IEEE floats, so a
  ``-inf`` logit with label 0 gives NaN; ``safe_softmax_cross_entropy`` is documented to
  take that term as 0 (``0 log 0 = 0``).
- ``kl_divergence`` takes the targets as probabilities ("expected to be strictly positive";
  a target of 0 contributes ``0 * (0 - log q)``), ``kl_divergence_with_log_targets`` as
  log-probabilities; both sum over the last axis.
- XLA on CPU flushes subnormal numbers to zero (float32 and float64): ``rel_entr`` reads a
  subnormal ``q`` as 0 (``q > 0`` is false) and returns ``inf`` where the oracle's value is finite.

Float64 cases need ``jax_enable_x64``, set in ``imports`` so that every reproducer sets it too.
Class-index labels are ``int32``, the integer type of a JAX program that does not enable x64.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from lossparity.adapters._base import FrameworkAdapter, py_literal
from lossparity.conformance.model import Binding

_DTYPES = {"float32": "float32", "float64": "float64"}


class JaxAdapter(FrameworkAdapter):
    framework = "jax"
    module = "jax"
    imports = ("import numpy as np\nimport jax\njax.config.update(\"jax_enable_x64\", True)\n"
               "import jax.numpy as jnp\nimport optax\n")

    def unavailable(self):
        reason = super().unavailable()
        if reason is None and importlib.util.find_spec("optax") is None:
            return "optax is not installed"  # every binding but two is optax's
        return reason

    def version_modules(self):
        return ("jax", "jaxlib", "optax")

    def to_framework(self, array, dtype):
        jnp = self.namespace()["jnp"]
        if array.dtype.kind == "f":
            return jnp.asarray(array, dtype=getattr(jnp, _DTYPES[dtype]))
        return jnp.asarray(array, dtype=jnp.int32)

    def literal(self, name, array, dtype):
        kind = f"jnp.{_DTYPES[dtype]}" if array.dtype.kind == "f" else "jnp.int32"
        text = f"jnp.array({py_literal(array)}, dtype={kind})"
        if array.size == 0 and array.ndim != 1:
            text += f".reshape{tuple(array.shape)}"
        return f"{name} = {text}"

    def to_numpy(self, result):
        return np.array(result, dtype=np.float64), str(result.dtype)

    def value_and_grad(self, fn, x):
        jax, jnp = self.namespace()["jax"], self.namespace()["jnp"]
        value, vjp = jax.vjp(fn, x)
        return value, vjp(jnp.ones_like(value))[0]

    def grad_lines(self, source):
        return [f"loss, vjp = jax.vjp(lambda input: {source}, input)", self.print_statement("loss"),
                "(grad,) = vjp(jnp.ones_like(loss))", self.print_statement("grad")]


ADAPTER = JaxAdapter()

_NONE = {"reduction": "none"}  # optax returns one loss per element or sample, never a batch reduction
_OPTAX = "optax.losses"

BINDINGS: list[Binding] = [
    Binding(f"{_OPTAX}.sigmoid_binary_cross_entropy", "binary_cross_entropy_with_logits", "jax",
            f"{_OPTAX}.sigmoid_binary_cross_entropy(input, target{{kw}})", fixed=_NONE),
    Binding(f"{_OPTAX}.softmax_cross_entropy", "softmax_cross_entropy_soft", "jax",
            f"{_OPTAX}.softmax_cross_entropy(input, target{{kw}})", fixed=_NONE),
    Binding(f"{_OPTAX}.safe_softmax_cross_entropy", "softmax_cross_entropy_soft", "jax",
            f"{_OPTAX}.safe_softmax_cross_entropy(input, target{{kw}})", fixed=_NONE),
    Binding(f"{_OPTAX}.softmax_cross_entropy_with_integer_labels", "softmax_cross_entropy", "jax",
            f"{_OPTAX}.softmax_cross_entropy_with_integer_labels(input, target{{kw}})", fixed=_NONE,
            conventions={"invalid_label": "wrap_negative"}),
    Binding(f"{_OPTAX}.kl_divergence", "kl_div", "jax",
            f"{_OPTAX}.kl_divergence(input, target{{kw}})", fixed=_NONE,
            conventions={"sample_axis": "sum"}),
    Binding(f"{_OPTAX}.kl_divergence_with_log_targets", "kl_div", "jax",
            f"{_OPTAX}.kl_divergence_with_log_targets(input, target{{kw}})", fixed=_NONE,
            requires={"log_target": True}, conventions={"sample_axis": "sum"}),
    Binding("jax.scipy.special.entr", "entropy", "jax", "jax.scipy.special.entr(input{kw}).sum(-1)"),
    Binding("jax.scipy.special.rel_entr", "kl_divergence", "jax",
            "jax.scipy.special.rel_entr(target, input{kw}).sum(-1)"),
]
