"""Keras 3: every loss of ``keras.losses``, on each of Keras' three backends.

Keras chooses its backend once per process, when ``keras`` is first imported (the
``KERAS_BACKEND`` variable), and one loss can behave differently on TensorFlow, JAX and
PyTorch. So each backend is a framework column of its own, ``keras[tensorflow]``,
``keras[jax]`` and ``keras[torch]``, whose calls run in a worker process of their own
(``FrameworkAdapter.process``), and every binding id names its backend:
``keras.losses.Huber[jax]``. Arrays, modes and gradients are the backend's: each Keras
adapter is its backend's adapter with ``keras`` imported on top.

Conventions are taken from the documentation and source of Keras 3 (``keras/src/losses/``):

- Keras takes ``(y_true, y_pred)``: the target comes first.
- Loss *classes* reduce with ``sum_over_batch_size`` (the mean) and ``divide_no_nan``: a
  mean over nothing (every target ``ignore_class``) is 0 (``keras/src/losses/loss.py``).
  They compute in ``keras.backend.floatx()`` (float32) unless given a ``dtype``: both
  arguments are converted first, and the result is float32 whatever the inputs' dtype
  (``computes_in``). The *function* forms keep the input dtype and return one loss per
  sample: most reduce the last axis with a mean (``sample_axis="mean"``).
- Probabilities are clipped into ``[epsilon, 1 - epsilon]`` with ``backend.epsilon()`` = 1e-7;
  ``categorical_crossentropy`` divides by the sum over classes *before* the clip,
  ``sparse_categorical_crossentropy`` takes the log of the clipped probabilities and
  renormalizes *after* the clip. ``KLDivergence`` clips both arguments into [1e-7, 1].
- An out-of-range class index raises ``InvalidArgumentError`` on the TensorFlow backend (its
  ``sparse_softmax_cross_entropy_with_logits`` checks on CPU); the other backends gather
  without a check (a per-backend convention).
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace

from lossparity.adapters.base import AdapterEntry
from lossparity.adapters.jax import JaxAdapter
from lossparity.adapters.tensorflow import TensorFlowAdapter
from lossparity.adapters.torch import TorchAdapter
from lossparity.core.model import GIVEN, Binding

#: Each backend and the adapter of its framework, whose arrays, modes and gradients Keras' uses.
BACKENDS = {"tensorflow": TensorFlowAdapter, "jax": JaxAdapter, "torch": TorchAdapter}


def _adapter_class(backend: str, base: type) -> type:

    class KerasAdapter(base):
        __doc__ = f"Keras 3 on the {backend} backend, in a process of its own."
        framework = f"keras[{backend}]"
        module = "keras"
        process = f"keras-{backend}"
        # The backend is fixed when keras is first imported, so it is set before, and forced:
        # the worker process is this backend's alone.
        imports = f"import os\nos.environ['KERAS_BACKEND'] = {backend!r}\n" + base.imports + "import keras\n"

        def unavailable(self):
            for name in ("keras", base.module):
                if importlib.util.find_spec(name) is None:
                    return f"{name} is not installed"
            return None

        def version_modules(self):
            return tuple(dict.fromkeys(("keras", base.module, *base.version_modules(self))))

        def prepare(self):
            super().prepare()
            found = self.namespace()["keras"].backend.backend()
            if found != backend:
                raise RuntimeError(f"keras was imported with the {found!r} backend in the {backend} worker; "
                                   f"KERAS_BACKEND must be set before keras is first imported")

        def public_losses(self):
            """Every public loss class (a ``keras.losses.Loss`` subclass) and function of
            ``keras.losses``, with this backend in the id."""
            import inspect

            losses = self.namespace()["keras"].losses
            names = [n for n in dir(losses) if not n.startswith("_")
                     and (inspect.isfunction(getattr(losses, n))
                          or inspect.isclass(getattr(losses, n)) and issubclass(getattr(losses, n), losses.Loss))]
            return [f"keras.losses.{n}[{backend}]" for n in names]

        def missing(self, binding):
            return super().missing(replace(binding, id=binding.id.split("[")[0]))

    KerasAdapter.__name__ = KerasAdapter.__qualname__ = f"Keras{base.__name__}"
    return KerasAdapter


_NONE = {"reduction": "none"}
_EPS = 1e-7  # keras.backend.epsilon()
_MEAN = {"reduction": "reduction"}
_MEAN_VALUES = {"reduction": {"mean": "sum_over_batch_size"}}


def _keras(cls: str | None, fn: str | None, spec: str, flags: str = "", *, params=None, conventions=None,
           defaults=None, requires=None, backends=None, class_conventions=None) -> list[Binding]:
    """The class form (reduces; computes in floatx, float32) and the function form (per sample)
    of one loss, for the backend-less id; ``flags`` is keyword source both take
    (``"from_logits=True"``), ``backends`` per-backend convention overrides
    (``{"jax": {"invalid_label": "nan"}}``), ``class_conventions`` those of the class form only.
    :func:`on` makes each backend's copy. Either form may be None where Keras has only one."""
    params = dict(params or {})
    common = dict(defaults=defaults or {}, requires=requires or {})
    conv = dict(conventions or {})
    out = []
    if cls:
        out.append(Binding(f"keras.losses.{cls}", spec, "keras", f"keras.losses.{cls}({flags}{{kw}})(target, input)",
                           params={**_MEAN, **params}, values=_MEAN_VALUES, computes_in="float32",
                           conventions={**conv, **(class_conventions or {})}, **common))
    if fn:
        out.append(Binding(f"keras.losses.{fn}", spec, "keras",
                           f"keras.losses.{fn}(target, input{', ' * bool(flags)}{flags}{{kw}})",
                           params=params, fixed=_NONE, conventions=conv, **common))
    return [replace(b, conventions={**b.conventions, "_backends": backends}) if backends else b for b in out]


def on(backend: str, bindings: list[Binding]) -> list[Binding]:
    """Each backend-less binding as it runs on ``backend``: its id and framework name it."""
    out = []
    for b in bindings:
        conv = dict(b.conventions)
        conv.update((conv.pop("_backends", None) or {}).get(backend, {}))
        out.append(replace(b, id=f"{b.id}[{backend}]", framework=f"keras[{backend}]", conventions=conv))
    return out


_SMOOTH = {"label_smoothing": "label_smoothing"}
_IGNORE = {"ignore_index": "ignore_class"}
# The JAX backend one-hot encodes the labels (jax.nn.one_hot: an invalid label is a row of
# zeros) and, on probabilities, divides by the sum *before* the clip; the torch backend hands
# logits to torch's cross_entropy and clipped log-probabilities to nll_loss (renormalized before
# the clip too), which raise IndexError for a label out of range (and ignore -100, their default).
_SPARSE_LOGITS = {"jax": {"invalid_label": "zeros"}, "torch": {"invalid_label": "IndexError"}}
_SPARSE_PROBS = {"jax": {"invalid_label": "zeros", "renormalize": "before_clip"},
                 "torch": {"invalid_label": "IndexError", "renormalize": "before_clip"}}

#: Every binding once, without a backend.
# classification (reference/classification.py)
_FOCAL = {"apply_class_balancing": "apply_class_balancing", "alpha": "alpha", "gamma": "gamma",
          "label_smoothing": "label_smoothing"}
_CAT_FOCAL = {"alpha": "alpha", "gamma": "gamma", "from_logits": "from_logits",
              "label_smoothing": "label_smoothing"}
# Keras' alpha as a per-class list is the spec's array parameter `weight`: not bound (one framework
# keyword cannot carry two spec parameters).

# margin (reference/margin.py)
# _HINGE_TIE: ops.maximum(z, 0) splits a tie's slope evenly on JAX and PyTorch (jnp.maximum,
# torch.maximum); tf.maximum gives it all to its first argument, z.
_HINGE_TIE = {"tensorflow": {"hinge_kink": 1.0}}

# regression (reference/regression.py)
_PER_SAMPLE = {"sample_axis": "mean"}  # keras' regression losses average the last axis, both forms
_HALF_TIE = {"torch": {"floor_tie": "half"}, "jax": {"floor_tie": "half"}}  # maximum's slope at a tie
_JAX_ABS = {"jax": {"abs_zero_slope": -1.0}}  # jax's |u| has slope +1 at u = 0; Keras writes u = y - x

KERAS: list[Binding] = [
    *_keras("BinaryCrossentropy", "binary_crossentropy", "binary_cross_entropy", "from_logits=False",
            params=_SMOOTH, conventions={"prob_eps": _EPS, "sample_axis": "mean"}),
    *_keras("BinaryCrossentropy", "binary_crossentropy", "binary_cross_entropy_with_logits", "from_logits=True",
            params=_SMOOTH, conventions={"sample_axis": "mean"}),
    *_keras("CategoricalCrossentropy", "categorical_crossentropy", "categorical_cross_entropy", "from_logits=False",
            params=_SMOOTH, conventions={"prob_eps": _EPS, "renormalize": "before_clip"}),
    *_keras("CategoricalCrossentropy", "categorical_crossentropy", "softmax_cross_entropy_soft", "from_logits=True",
            params=_SMOOTH),
    *_keras("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
            "sparse_categorical_cross_entropy", "from_logits=False", params=_IGNORE,
            conventions={"prob_eps": _EPS, "renormalize": "after_clip", "zero_division": "zero",
                         "invalid_label": "InvalidArgumentError"}, backends=_SPARSE_PROBS),
    *_keras("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
            "softmax_cross_entropy", "from_logits=True", params=_IGNORE,
            conventions={"zero_division": "zero", "invalid_label": "InvalidArgumentError"}, backends=_SPARSE_LOGITS),
    *_keras("KLDivergence", "kl_divergence", "kl_div_probs", conventions={"prob_eps": _EPS}),
    # -- likelihood (reference/likelihood.py) --
    # y_pred - y_true log(y_pred + epsilon) on rates, epsilon = backend.epsilon() = 1e-7 in the
    # input's dtype, mean over the last axis.
    *_keras("Poisson", "poisson", "poisson_nll", defaults={"eps": _EPS}, conventions={"sample_axis": "mean"}),
    # -- ctc (reference/ctc.py) --
    # keras.losses.ctc reads y_pred as logits (log_softmax per backend), takes every frame
    # (input length T) and counts the labels that are not 0 as the target length; blank is 0.
    # The JAX backend is a copy of optax's recursion (log_epsilon = -1e5).
    *_keras("CTC", "ctc", "ctc", conventions={"log_softmax_input": True, "ctc_lengths": "keras"},
            backends={"jax": {"log_epsilon": -1e5}}),
    # The op under it takes the lengths and the blank (mask_index).
    Binding("keras.ops.ctc_loss", "ctc", "keras",
            "keras.ops.ctc_loss(target, input, target_lengths, input_lengths{kw})",
            params={"blank": "mask_index"}, fixed=_NONE,
            conventions={"log_softmax_input": True, "_backends": {"jax": {"log_epsilon": -1e5}}}),
    # -- classification (reference/classification.py) --
    *_keras("BinaryFocalCrossentropy", "binary_focal_crossentropy", "binary_focal_cross_entropy",
            "from_logits=False", params=_FOCAL, conventions={"prob_eps": _EPS, "sample_axis": "mean"}),
    # from_logits=True takes ops.sigmoid and then the probability form, clip included; on the
    # TensorFlow backend that sigmoid carries its logits (_keras_logits) and
    # ops.binary_crossentropy uses tf.nn.sigmoid_cross_entropy_with_logits instead: no clip.
    *_keras("BinaryFocalCrossentropy", "binary_focal_crossentropy", "binary_focal_cross_entropy_with_logits",
            "from_logits=True", params=_FOCAL, conventions={"prob_eps": _EPS, "sample_axis": "mean"},
            backends={"tensorflow": {"prob_eps": None}}),
    *_keras("CategoricalFocalCrossentropy", "categorical_focal_crossentropy", "categorical_focal_cross_entropy",
            params=_CAT_FOCAL, conventions={"prob_eps": _EPS, "renormalize": "before_clip"}),
    *_keras("CategoricalGeneralizedCrossEntropy", None, "categorical_generalized_cross_entropy",
            params={"q": "q"}, conventions={"q_domain": "ValueError"}),
    # the function form has no default q
    *_keras(None, "categorical_generalized_cross_entropy", "categorical_generalized_cross_entropy",
            params={"q": "q"}, requires={"q": GIVEN}),
    # -- margin (reference/margin.py) --
    *_keras("Hinge", "hinge", "hinge",
            conventions={"hinge_labels": "binary_if_all", "sample_axis": "mean"}, backends=_HINGE_TIE),
    *_keras("SquaredHinge", "squared_hinge", "squared_hinge",
            conventions={"hinge_labels": "binary_if_all", "sample_axis": "mean"}),
    *_keras("CategoricalHinge", "categorical_hinge", "categorical_hinge",
            conventions={"hinge_neg": "masked_product"}, backends=_HINGE_TIE),
    # -- regression (reference/regression.py) --
    *_keras("MeanAbsoluteError", "mean_absolute_error", "absolute_error", conventions=_PER_SAMPLE,
            backends=_JAX_ABS),
    *_keras("MeanSquaredError", "mean_squared_error", "squared_error", conventions=_PER_SAMPLE),
    *_keras("Huber", "huber", "huber", params={"delta": "delta"}, conventions=_PER_SAMPLE),
    *_keras("LogCosh", "log_cosh", "log_cosh", conventions=_PER_SAMPLE),
    *_keras("MeanAbsolutePercentageError", "mean_absolute_percentage_error", "mean_absolute_percentage_error",
            conventions={**_PER_SAMPLE, "denominator_eps": _EPS},
            backends={"torch": {"floor_tie": "half"}, "jax": {"floor_tie": "half", "abs_zero_slope": -1.0}}),
    *_keras("MeanSquaredLogarithmicError", "mean_squared_logarithmic_error", "mean_squared_logarithmic_error",
            conventions={**_PER_SAMPLE, "value_floor": _EPS}, backends=_HALF_TIE),
    # -- segmentation (reference/segmentation.py) --
    *_keras("Dice", "dice", "dice", params={"axis": "axis"}, conventions={"dice_eps": _EPS}),
    *_keras("Tversky", "tversky", "tversky", params={"axis": "axis", "alpha": "alpha", "beta": "beta"},
            conventions={"dice_eps": _EPS}),
    # -- embedding (reference/embedding.py) --
    # -sum(l2_normalize(y_true) * l2_normalize(y_pred)); keras.ops.normalize floors each norm
    # at backend.epsilon() = 1e-7 as x * min(rsqrt(sum x^2), 1 / 1e-7) (keras/src/ops/nn.py).
    *_keras("CosineSimilarity", "cosine_similarity", "cosine_similarity", params={"axis": "axis"},
            conventions={"cosine_form": "negative", "norm_floor": _EPS}),
    # ref_labels / ref_embeddings of the function form are left at None (the batch itself).
    # The class form's losses carry a Keras mask (loss > 0), so its mean counts only those.
    *_keras("Circle", "circle", "circle",
            params={"gamma": "gamma", "margin": "margin", "remove_diagonal": "remove_diagonal"},
            class_conventions={"mean_over": "positive", "zero_division": "zero"}),
]

#: Public names of ``keras.losses`` deliberately left unbound, and why (on every backend).
EXCLUDED = {
    "keras.losses.Loss": "the base class every loss class derives from; it computes nothing itself",
    "keras.losses.get": "looks a loss up by name or config (serialization), it computes nothing",
    "keras.losses.serialize": "turns a loss into its config, it computes nothing",
    "keras.losses.deserialize": "builds a loss from its config, it computes nothing",
}


def _entry(backend: str) -> AdapterEntry:
    return AdapterEntry(_adapter_class(backend, BACKENDS[backend])(), on(backend, KERAS),
                  {f"{k}[{backend}]": why for k, why in EXCLUDED.items()})


ON_TENSORFLOW, ON_JAX, ON_TORCH = (_entry(b) for b in BACKENDS)
