"""TensorFlow: the losses of ``tf.nn``, and those of ``tf.compat.v1.losses`` and ``tf.compat.v1.nn``
that older code still calls. (Keras' losses, on this and its other backends, run through
``adapters/keras.py``.)

Their bindings, with the conventions taken from the documentation and source of TensorFlow
2.x, are declared beside their specs (``conformance/families/<family>.py``, tensorflow
sections): ``tf.nn`` losses never reduce; they return one loss per element (sigmoid) or per
sample (softmax). ``tf.compat.v1.losses`` weight and reduce them (``weights``, ``reduction``:
``reference/reduction.py``, ``tf_v1_reduce``). In TensorFlow 2 they all run eagerly and under
``tf.function``, this adapter's modes.
"""

from __future__ import annotations

import numpy as np

from lossparity.adapters.base import FrameworkAdapter, py_literal


class TensorFlowAdapter(FrameworkAdapter):
    framework = "tensorflow"
    module = "tensorflow"
    imports = (
        "import os\nos.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')\nimport numpy as np\nimport tensorflow as tf\n"
    )
    transforms = {
        "sigmoid": "tf.sigmoid({x})",
        "softmax": "tf.nn.softmax({x}, axis={axis})",
        "log_softmax": "tf.nn.log_softmax({x}, axis={axis})",
        "log": "tf.math.log({x})",
        "exp": "tf.math.exp({x})",
    }
    modes = ("eager", "function", "function_jit")
    compiler = "tensorflow"
    # XLA compiles through TensorFlow at about half a second per call structure: 70% of a
    # default run's time for one mode among nine. Run it when asked for (--modes).
    opt_in_modes = ("function_jit",)
    reuses_arrays = True

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

    def compilations(self, functions):
        """Traces of the call text's ``tf.function`` objects (with ``jit_compile=True`` each
        trace is also one XLA compilation)."""
        return sum(
            f.experimental_get_tracing_count()
            for f in (functions.get("loss_fn"), functions.get("value_and_grad"))
            if hasattr(f, "experimental_get_tracing_count")
        )

    def public_losses(self):
        """The ``tf.nn`` and ``tf.compat.v1.nn`` losses (names ending ``_loss`` or ``_loss_v2``, or holding
        ``cross_entropy``) and every function of ``tf.compat.v1.losses`` (its class ``Reduction`` is
        the ``reduction`` parameter's values)."""
        tf = self.namespace()["tf"]

        def lossy(n):
            return not n.startswith("_") and (n.endswith(("_loss", "_loss_v2")) or "cross_entropy" in n)

        v1 = tf.compat.v1.losses
        return [
            *(f"tf.nn.{n}" for n in dir(tf.nn) if lossy(n)),
            *(f"tf.compat.v1.nn.{n}" for n in dir(tf.compat.v1.nn) if lossy(n)),
            *(f"tf.compat.v1.losses.{n}" for n in dir(v1) if not n.startswith("_") and n != "Reduction"),
        ]

    def program(self, args, wrt, mode):
        sig, ws = ", ".join(args), ", ".join(wrt)
        lines = (
            [
                f"def value_and_grad({sig}):",
                "    with tf.GradientTape() as tape:",
                f"        tape.watch([{ws}])",
                f"        loss = loss_fn({sig})",
                "        total = tf.reduce_sum(loss)  # inside the tape, or the sum is not recorded",
                f"    return loss, tape.gradient(total, [{ws}], unconnected_gradients=tf.UnconnectedGradients.ZERO)",
            ]
            if wrt
            else []
        )
        if mode != "eager":
            options = "jit_compile=True" if mode == "function_jit" else ""
            lines += [f"loss_fn = tf.function(loss_fn{', ' * bool(options)}{options})"]
            lines += [f"value_and_grad = tf.function(value_and_grad{', ' * bool(options)}{options})"] if wrt else []
        return "\n".join(lines) + "\n"


ADAPTER = TensorFlowAdapter()

#: Public loss APIs deliberately left unbound, and why.
EXCLUDED = {
    "tf.nn.nce_loss": "samples negative classes at random (tf.random.log_uniform_candidate_sampler) inside "
    "the call and takes a weight matrix and biases: a training-time estimate, not a loss "
    "of given inputs",
    "tf.nn.sampled_softmax_loss": "samples classes at random inside the call, like nce_loss: a training-time "
    "estimate of softmax cross-entropy, not a loss of given inputs",
    "tf.nn.compute_average_loss": "a reduction helper for distribution strategies (sum / global batch size) "
    "that takes an already computed per-example loss",
    "tf.nn.scale_regularization_loss": "a helper dividing a regularization term by the number of replicas, "
    "not a loss of predictions and targets",
    # -- tf.compat.v1.nn --
    "tf.compat.v1.nn.nce_loss": "the v1 spelling of nce_loss (remove_accidental_hits, partition_strategy): "
    "it samples negative classes at random inside the call, like tf.nn.nce_loss",
    "tf.compat.v1.nn.sampled_softmax_loss": "the v1 spelling of sampled_softmax_loss: it samples classes at "
    "random inside the call, like tf.nn.sampled_softmax_loss",
    "tf.compat.v1.nn.compute_average_loss": "the same function object as tf.nn.compute_average_loss (an alias), "
    "a reduction helper, excluded there",
    "tf.compat.v1.nn.scale_regularization_loss": "the same function object as tf.nn.scale_regularization_loss "
    "(an alias), excluded there",
    "tf.compat.v1.nn.l2_loss": "the same function object as tf.nn.l2_loss (an alias), which is bound: the same "
    "cases would run twice",
    "tf.compat.v1.nn.log_poisson_loss": "the same function object as tf.nn.log_poisson_loss (an alias), which "
    "is bound: the same cases would run twice",
    # -- tf.compat.v1.losses --
    "tf.compat.v1.losses.compute_weighted_loss": "the reduction helper every tf.compat.v1.losses loss ends in, "
    "taking already computed losses: bound through them (reference/reduction.py, tf_v1_reduce)",
    "tf.compat.v1.losses.add_loss": "adds a tensor to a graph collection of losses (a no-op eagerly); not a loss",
    "tf.compat.v1.losses.get_losses": "reads a graph collection of losses (empty eagerly); not a loss of inputs",
    "tf.compat.v1.losses.get_regularization_loss": "sums the graph's regularization-loss collection; not a loss "
    "of predictions and targets",
    "tf.compat.v1.losses.get_regularization_losses": "reads the graph's regularization-loss collection; not a "
    "loss of predictions and targets",
    "tf.compat.v1.losses.get_total_loss": "sums the graph's loss collections; not a loss of predictions and targets",
}
