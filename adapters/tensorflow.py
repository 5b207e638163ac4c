"""TensorFlow: ``tf.nn`` cross-entropies, and Keras 3 losses on the TensorFlow backend.

Conventions are taken from the documentation and source of TensorFlow 2.x and Keras 3:

- ``tf.nn`` losses never reduce; they return one loss per element (sigmoid) or per sample
  (softmax). ``sparse_softmax_cross_entropy_with_logits`` documents that an out-of-range
  label raises on CPU: ``tf.errors.InvalidArgumentError`` ("Received a label value of ...").
- Keras clips probabilities into ``[epsilon, 1 - epsilon]`` with ``backend.epsilon()`` = 1e-7
  (``keras/src/backend/tensorflow/nn.py``); ``categorical_crossentropy`` divides by the sum
  over classes *before* the clip, ``sparse_categorical_crossentropy`` takes the log of the
  clipped probabilities and hands them to ``tf.nn.sparse_softmax_cross_entropy_with_logits``,
  which renormalizes *after* the clip. ``KLDivergence`` clips both arguments into [1e-7, 1].
- ``binary_crossentropy`` is the mean over the last axis: one loss per sample.
- Keras reduces with ``sum_over_batch_size`` (the mean), and ``divide_no_nan``: a mean over
  nothing (every target ``ignore_class``) is 0 (``keras/src/losses/loss.py``).
- Keras loss *classes* compute in ``keras.backend.floatx()`` (float32) unless given a
  ``dtype``: both arguments are converted first, and the result is float32 whatever the
  inputs' dtype (``computes_in``). The function forms keep the input dtype.
- Keras takes ``(y_true, y_pred)``: the target comes first.
"""

from __future__ import annotations

import numpy as np

from lossparity.adapters._base import FrameworkAdapter, py_literal
from lossparity.conformance.model import GIVEN, Binding


class TensorFlowAdapter(FrameworkAdapter):
    framework = "tensorflow"
    module = "tensorflow"
    # The Keras backend is chosen once, when keras is first imported, so it is set before.
    imports = (
        "import os\n"
        "os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')\n"
        "os.environ.setdefault('KERAS_BACKEND', 'tensorflow')\n"
        "import numpy as np\n"
        "import tensorflow as tf\n"
        "import keras\n"
    )
    modes = ("eager", "function", "function_jit")

    def version_modules(self):
        return ("tensorflow", "keras")

    def prepare(self):
        keras = self.namespace()["keras"]
        if keras.backend.backend() != "tensorflow":
            raise RuntimeError(
                f"keras was imported with the {keras.backend.backend()!r} backend before the "
                "TensorFlow adapter ran; set KERAS_BACKEND=tensorflow")

    def to_framework(self, array, dtype):
        tf = self.namespace()["tf"]
        if array.dtype.kind == "f":
            return tf.constant(array, dtype=getattr(tf, dtype))
        # tf.nn.sparse_softmax_cross_entropy_with_logits takes int32 or int64 labels.
        return tf.constant(array, dtype=tf.int64)

    def literal(self, name, array, dtype):
        kind = f"tf.{dtype}" if array.dtype.kind == "f" else "tf.int64"
        text = f"tf.constant({py_literal(array)}, dtype={kind})"
        if array.size == 0 and array.ndim != 1:
            text = f"tf.reshape({text}, {tuple(array.shape)})"
        return f"{name} = {text}"

    def to_numpy(self, result):
        tf = self.namespace()["tf"]
        result = tf.convert_to_tensor(result)
        return np.array(result.numpy(), dtype=np.float64), result.dtype.name

    def device_unavailable(self):
        if self.device == "cpu":
            return None
        if not self.namespace()["tf"].config.list_physical_devices("GPU"):
            return "TensorFlow sees no GPU (tensorflow-cpu, or no CUDA device)"
        return None

    def settings(self):
        if self.device == "cpu":
            return ""
        return f"tf.config.experimental.enable_tensor_float_32_execution({self.tf32})\n"

    def program(self, args, wrt, mode):
        sig, ws = ", ".join(args), ", ".join(wrt)
        lines = [f"def value_and_grad({sig}):",
                 "    with tf.GradientTape() as tape:",
                 f"        tape.watch([{ws}])",
                 f"        loss = loss_fn({sig})",
                 "        total = tf.reduce_sum(loss)  # inside the tape, or the sum is not recorded",
                 f"    return loss, tape.gradient(total, [{ws}], unconnected_gradients=tf.UnconnectedGradients.ZERO)"
                 ] if wrt else []
        if mode != "eager":
            options = "jit_compile=True" if mode == "function_jit" else ""
            lines += [f"loss_fn = tf.function(loss_fn{', ' * bool(options)}{options})"]
            lines += [f"value_and_grad = tf.function(value_and_grad{', ' * bool(options)}{options})"] if wrt else []
        return "\n".join(lines) + "\n"


ADAPTER = TensorFlowAdapter()

_NONE = {"reduction": "none"}
_EPS = 1e-7  # keras.backend.epsilon()
_INVALID = "InvalidArgumentError"  # tf.errors.InvalidArgumentError, raised on CPU


def _keras(cls: str, fn: str, spec: str, from_logits: bool, *, params=None, conventions=None,
           defaults=None) -> list[Binding]:
    """The class form (reduces; computes in floatx, float32) and the function form (per sample) of one loss."""
    params = dict(params or {})
    flag = f"from_logits={from_logits}"
    common = dict(conventions=conventions or {}, defaults=defaults or {})
    return [
        Binding(f"keras.losses.{cls}", spec, "tensorflow",
                f"keras.losses.{cls}({flag}{{kw}})(target, input)",
                params={"reduction": "reduction", **params},
                values={"reduction": {"mean": "sum_over_batch_size"}},
                computes_in="float32", **common),
        Binding(f"keras.losses.{fn}", spec, "tensorflow",
                f"keras.losses.{fn}(target, input, {flag}{{kw}})",
                params=params, fixed=_NONE, **common),
    ]


_SMOOTH = {"label_smoothing": "label_smoothing"}
_IGNORE = {"ignore_index": "ignore_class"}

BINDINGS: list[Binding] = [
    Binding("tf.nn.sigmoid_cross_entropy_with_logits", "binary_cross_entropy_with_logits", "tensorflow",
            "tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=input)", fixed=_NONE),
    # pos_weight has no default here: the binding takes only the cases that set it.
    Binding("tf.nn.weighted_cross_entropy_with_logits", "binary_cross_entropy_with_logits", "tensorflow",
            "tf.nn.weighted_cross_entropy_with_logits(labels=target, logits=input{kw})",
            params={"pos_weight": "pos_weight"}, requires={"pos_weight": GIVEN}, fixed=_NONE),
    Binding("tf.nn.softmax_cross_entropy_with_logits", "softmax_cross_entropy_soft", "tensorflow",
            "tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=input)", fixed=_NONE),
    Binding("tf.nn.sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy", "tensorflow",
            "tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=input)",
            fixed=_NONE, conventions={"invalid_label": _INVALID}),
    *_keras("BinaryCrossentropy", "binary_crossentropy", "binary_cross_entropy", False,
            params=_SMOOTH, conventions={"prob_eps": _EPS, "sample_axis": "mean"}),
    *_keras("BinaryCrossentropy", "binary_crossentropy", "binary_cross_entropy_with_logits", True,
            params=_SMOOTH, conventions={"sample_axis": "mean"}),
    *_keras("CategoricalCrossentropy", "categorical_crossentropy", "categorical_cross_entropy", False,
            params=_SMOOTH, conventions={"prob_eps": _EPS, "renormalize": "before_clip"}),
    *_keras("CategoricalCrossentropy", "categorical_crossentropy", "softmax_cross_entropy_soft", True,
            params=_SMOOTH),
    *_keras("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
            "sparse_categorical_cross_entropy", False, params=_IGNORE,
            conventions={"prob_eps": _EPS, "renormalize": "after_clip", "zero_division": "zero",
                         "invalid_label": _INVALID}),
    *_keras("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
            "softmax_cross_entropy", True, params=_IGNORE,
            conventions={"zero_division": "zero", "invalid_label": _INVALID}),
    Binding("keras.losses.KLDivergence", "kl_div_probs", "tensorflow",
            "keras.losses.KLDivergence({kw})(target, input)",
            params={"reduction": "reduction"}, values={"reduction": {"mean": "sum_over_batch_size"}},
            conventions={"prob_eps": _EPS}, computes_in="float32"),
    Binding("keras.losses.kl_divergence", "kl_div_probs", "tensorflow",
            "keras.losses.kl_divergence(target, input)", fixed=_NONE, conventions={"prob_eps": _EPS}),
]
