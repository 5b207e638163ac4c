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
import os
from pathlib import Path

import numpy as np

from lossparity.adapters.base import FrameworkAdapter, py_literal
from lossparity.core.model import Binding


def compilation_cache() -> Path | None:
    """Where JAX's compiled executables are kept between processes and runs:
    ``$LOSSPARITY_CACHE/jax`` (default ``~/.cache/lossparity``); ``LOSSPARITY_CACHE=off``
    keeps none."""
    root = os.environ.get("LOSSPARITY_CACHE", "")
    if root.lower() in ("off", "0", "none"):
        return None
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lossparity"
    return base / "jax"


class JaxAdapter(FrameworkAdapter):
    framework = "jax"
    module = "jax"
    imports = ("import numpy as np\nimport jax\njax.config.update(\"jax_enable_x64\", True)\n"
               "import jax.numpy as jnp\nimport optax\n")
    modes = ("eager", "jit")
    reuses_arrays = True

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
            out = jnp.asarray(array, dtype=getattr(jnp, dtype))
        else:
            out = jnp.asarray(array, dtype=jnp.int32)
        return out if self.device == "cpu" else self.namespace()["jax"].device_put(out, self._devices()[0])

    def literal(self, name, array, dtype):
        kind = f"jnp.{dtype}" if array.dtype.kind == "f" else "jnp.int32"
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
        return [f"optax.losses.{n}" for n in dir(losses)
                if not n.startswith("_") and callable(getattr(losses, n))]

    counts_process_wide = True  # eager JAX compiles each primitive per shape, outside our functions

    def prepare(self):
        super().prepare()
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
        lines = [f"def value_and_grad({sig}):",
                 f"    loss, vjp = jax.vjp(lambda {ws}: loss_fn({sig}), {ws})",
                 "    return loss, list(vjp(jnp.ones_like(loss)))"] if wrt else []
        if mode == "jit":
            lines += ["loss_fn = jax.jit(loss_fn)"] + (["value_and_grad = jax.jit(value_and_grad)"] if wrt else [])
        return "\n".join(lines) + "\n"


ADAPTER = JaxAdapter()

_NONE = {"reduction": "none"}  # optax returns one loss per element or sample, never a batch reduction
_OPTAX = "optax.losses"

# ctc (reference/ctc.py)
# optax takes float padding masks (1.0 = padding), not lengths: the call text builds them
# from the case's lengths, right-padded as optax requires.
_CTC_PADDINGS = ("(jnp.arange(input.shape[1])[None, :] >= input_lengths[:, None]).astype(input.dtype), target, "
                 "(jnp.arange(target.shape[1])[None, :] >= target_lengths[:, None]).astype(input.dtype)")
# log_softmax of the logits, log 0 read as log_epsilon = -1e5 (the default).
_CTC_OPTAX = dict(params={"blank": "blank_id"}, fixed=_NONE,
                  conventions={"log_softmax_input": True, "log_epsilon": -1e5})

# segmentation (reference/segmentation.py)
class _Source:
    """A keyword value written as source: optax's reduce_fn takes a function (jnp.mean)."""
    def __init__(self, text): self.text = text
    def __repr__(self): return self.text
    def __eq__(self, other): return isinstance(other, _Source) and other.text == self.text
    def __hash__(self): return hash(self.text)

_DICE = dict(params={"smooth": "smooth", "axis": "axis", "weight": "class_weights",
                     "ignore_background": "ignore_background", "class_reduction": "reduction",
                     "from_logits": "apply_softmax"},
             defaults={"smooth": 1.0, "class_reduction": "mean", "from_logits": True}, fixed=_NONE,
             conventions={"smooth_form": "tversky", "overlap_axes": "inner", "prob_check": "ValueError"})
_OVERLAP_CONV = {"overlap_axes": "inner", "prob_check": "ValueError"}

def _optax(name: str, spec: str, *, fixed=_NONE, **kw) -> Binding:
    """An ``optax.losses`` function called as ``f(input, target, **kw)``; optax never reduces over the batch."""
    return Binding(f"{_OPTAX}.{name}", spec, "jax", f"{_OPTAX}.{name}(input, target{{kw}})", fixed=fixed, **kw)


BINDINGS: list[Binding] = [
    _optax("sigmoid_binary_cross_entropy", "binary_cross_entropy_with_logits"),
    _optax("softmax_cross_entropy", "softmax_cross_entropy_soft"),
    _optax("safe_softmax_cross_entropy", "softmax_cross_entropy_soft"),
    _optax("softmax_cross_entropy_with_integer_labels", "softmax_cross_entropy",
            conventions={"invalid_label": "wrap_negative"}),
    _optax("kl_divergence", "kl_div",
            conventions={"sample_axis": "sum"}),
    _optax("kl_divergence_with_log_targets", "kl_div",
            requires={"log_target": True}, conventions={"sample_axis": "sum"}),
    Binding("jax.scipy.special.entr", "entropy", "jax", "jax.scipy.special.entr(input{kw}).sum(-1)"),
    Binding("jax.scipy.special.rel_entr", "kl_divergence", "jax",
            "jax.scipy.special.rel_entr(target, input{kw}).sum(-1)"),
    # -- likelihood (reference/likelihood.py) --
    # t log(t / q) - t + q summed over the last axis, input log q; convex_kl_divergence is its
    # deprecated alias (it warns, and calls generalized_kl_divergence).
    _optax("generalized_kl_divergence", "generalized_kl_div",
            conventions={"sample_axis": "sum"}),
    _optax("convex_kl_divergence", "generalized_kl_div",
            conventions={"sample_axis": "sum"}),
    # -- ctc (reference/ctc.py) --
    Binding(f"{_OPTAX}.ctc_loss", "ctc", "jax",
            f"{_OPTAX}.ctc_loss(input, {_CTC_PADDINGS}{{kw}})", **_CTC_OPTAX),
    Binding(f"{_OPTAX}.ctc_loss_with_forward_probs", "ctc", "jax",
            f"{_OPTAX}.ctc_loss_with_forward_probs(input, {_CTC_PADDINGS}{{kw}})[0]", **_CTC_OPTAX),
    # -- classification (reference/classification.py) --
    # sigmoid_focal_loss balances the classes whenever alpha is given (its alpha defaults to
    # None): so, against the spec's Keras-shaped parameters, its own defaults are
    # apply_class_balancing=True with alpha=None (which the oracle reads as no balancing).
    _optax("sigmoid_focal_loss", "binary_focal_cross_entropy_with_logits", params={"alpha": "alpha", "gamma": "gamma"},
            defaults={"apply_class_balancing": True, "alpha": None}),
    _optax("poly_loss_cross_entropy", "poly_loss_cross_entropy", params={"epsilon": "epsilon"}),
    _optax("sparsemax_loss", "sparsemax_loss"),
    _optax("multiclass_sparsemax_loss", "multiclass_sparsemax_loss"),
    # -- margin (reference/margin.py) --
    # jnp.maximum and jnp.max split a tie's slope evenly: hinge_kink=0.5 (the plain value).
    # perceptron_loss / multiclass_perceptron_loss are the hinge / multiclass hinge at margin 0.
    # jax.nn.one_hot gives an all-zero row for a label outside [0, C): invalid_label="zeros".
    _optax("hinge_loss", "hinge"),
    _optax("perceptron_loss", "hinge", fixed={**_NONE, "margin": 0.0}),
    _optax("multiclass_hinge_loss", "multiclass_hinge",
        conventions={"invalid_label": "zeros"}),
    _optax("multiclass_perceptron_loss", "multiclass_hinge", fixed={**_NONE, "margin": 0.0},
        conventions={"invalid_label": "zeros"}),
    # -- regression (reference/regression.py) --
    # optax's regression losses are elementwise and never reduce; `targets` defaults to None,
    # documented as a zero target: the no-target calls are bound to the l2_loss spec.
    _optax("squared_error", "squared_error"),
    _optax("l2_loss", "squared_error", conventions={"half_square": True}),
    Binding(f"{_OPTAX}.squared_error", "l2_loss", "jax", f"{_OPTAX}.squared_error(input{{kw}})", fixed=_NONE),
    Binding(f"{_OPTAX}.l2_loss", "l2_loss", "jax", f"{_OPTAX}.l2_loss(input{{kw}})",
            fixed=_NONE, conventions={"half_square": True}),
    _optax("huber_loss", "huber", params={"delta": "delta"}),
    _optax("log_cosh", "log_cosh"),
    # -- segmentation (reference/segmentation.py) --
    _optax("dice_loss", "dice", **_DICE),
    _optax("dice_loss", "tversky", **{**_DICE, "params": {**_DICE["params"], "alpha": "alpha", "beta": "beta"},
               "conventions": _OVERLAP_CONV}),
    _optax("binary_dice_loss", "dice", params={"smooth": "smooth", "from_logits": "apply_sigmoid"},
            defaults={"smooth": 1.0, "from_logits": True}, fixed={"reduction": "none", "class_reduction": "mean"},
            conventions={"smooth_form": "tversky", "overlap_axes": "inner", "prob_check": "ValueError",
                         "binary_channel": True}),
    _optax("multiclass_generalized_dice_loss", "generalized_dice", params={"smooth": "smooth", "from_logits": "apply_softmax", "ignore_background": "ignore_background"},
            defaults={"smooth": 1.0, "from_logits": True}, fixed={"reduction": "mean"},
            conventions={"weight_eps": 1e-7, "smooth_form": "tversky", "overlap_axes": "inner",
                         "prob_check": "ValueError"}),
    Binding(f"{_OPTAX}.ranking_softmax_loss", "ranking_softmax", "jax",
            f"{_OPTAX}.ranking_softmax_loss(input, target, where=where.astype(bool){{kw}})",
            params={"weight": "weights", "reduction": "reduce_fn"},
            values={"reduction": {"mean": _Source("jnp.mean"), "sum": _Source("jnp.sum"), "none": None}},
            conventions={"zero_division": "zero"}),
    # -- embedding (reference/embedding.py) --
    _optax("cosine_similarity", "cosine_similarity", params={"epsilon": "epsilon", "axis": "axis"}),
    _optax("cosine_distance", "cosine_similarity", params={"epsilon": "epsilon", "axis": "axis"},
            conventions={"cosine_form": "distance"}),
    # No swap parameter; eps goes into the sum of powers, and the differences are raised to
    # norm_degree without their absolute value (read in optax/losses/_self_supervised.py).
    Binding(f"{_OPTAX}.triplet_margin_loss", "triplet_margin", "jax",
            f"{_OPTAX}.triplet_margin_loss(input, positive, negative{{kw}})",
            params={"margin": "margin", "p": "norm_degree", "eps": "eps", "axis": "axis"},
            defaults={"eps": 1e-6}, fixed=_NONE,
            conventions={"distance_eps": "power_sum", "power_abs": False}),
    # Cosines with epsilon=jnp.finfo(embeddings.dtype).eps on the squared norms; the mean over
    # positive pairs is built in (a scalar).
    _optax("ntxent", "ntxent", fixed={}, params={"temperature": "temperature"}, conventions={"sq_norm_eps": "finfo"}),
]

#: Public loss APIs deliberately left unbound, and why.
EXCLUDED = {
    "optax.losses.smooth_labels": "not a loss: it returns smoothed labels (1 - alpha) y + alpha / C, the "
                                  "label-smoothing convention the cross-entropy specs apply themselves",
    "optax.losses.make_fenchel_young_loss": "a factory of losses from a user's max function; its logsumexp "
                                            "instance, logsumexp(x) - <y, x>, equals softmax cross-entropy only "
                                            "where the targets sum to 1 and has target gradient -x: it needs a "
                                            "spec of its own, not yet written",
}
