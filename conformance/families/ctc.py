"""CTC: the Connectionist Temporal Classification negative log-likelihood.

Cases are canonical: ``input`` ``(N, T, C)`` batch-major scores, ``target`` ``(N, S)`` int64
labels right-padded with 0, and the further arrays ``input_lengths`` and ``target_lengths``
``(N,)`` int64 (``Spec.arrays``). Shapes come from small fixed menus (N from
:data:`~lossparity.conformance.generate.SHAPE_MENU`'s batches, C from ``CLASS_MENU``, (T, S)
from :data:`TS_MENU`): a compiled mode traces once per shape. Generated cases always admit an
alignment (the input is long enough for the labels and the blanks their repeats need); the
impossible ones, whose value each framework writes its own way, are edge rows.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lossparity.conformance import generate as g
from lossparity.conformance.bindings import NO_REDUCTION, OPTAX, keras_pair, keras_sample_weight
from lossparity.conformance.edges import edge
from lossparity.core.model import GIVEN, Binding, Spec
from lossparity.reference import ctc

#: (frames T, label slots S): one frame and one label, and two longer sequences.
TS_MENU = ((1, 1), (4, 2), (6, 3))
#: Class counts: the blank and at least one label.
CTC_CLASSES = tuple(c for c in g.CLASS_MENU if c >= 2)


def _log_softmax(raw):
    raw = np.asarray(raw, np.float64)
    m = raw.max(axis=-1, keepdims=True)
    return raw - m - np.log(np.sum(np.exp(raw - m), axis=-1, keepdims=True))


def _needed(labels) -> int:
    """Frames an alignment of ``labels`` needs: one per label, one more per adjacent repeat."""
    return len(labels) + int(np.count_nonzero(labels[1:] == labels[:-1])) if len(labels) else 0


@g.case_strategy
def ctc_cases(draw):
    n = draw(g.batch_shapes(min_dims=1, max_dims=1))[0]
    t, s = draw(g.pick_shape(TS_MENU))
    c = draw(g.pick_shape(CTC_CLASSES))
    blank = draw(g.pick([0, 0, c - 1]))
    raw = draw(g.arrays((n, t, c), g.floats(-8, 8)))
    # Mostly normalized log-probabilities (what PyTorch documents); sometimes raw scores, which
    # PyTorch uses as given and optax, tf.nn and Keras normalize with a log_softmax.
    x = _log_softmax(raw) if draw(st.sampled_from([True, True, True, False])) else raw
    others = [k for k in range(c) if k != blank]
    target = np.zeros((n, s), np.int64)
    in_len, tg_len = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for i in range(n):
        labels = np.array(draw(st.lists(st.sampled_from(others), min_size=0, max_size=s)), np.int64)
        while _needed(labels) > t:  # keep an alignment possible
            labels = labels[:-1]
        target[i, : len(labels)] = labels
        tg_len[i] = len(labels)
        in_len[i] = draw(st.sampled_from([t, t, max(_needed(labels), 1)]))
    params = {"reduction": draw(g.reductions())}
    g._set(params, "blank", blank, 0)
    g._set(params, "zero_infinity", draw(g.pick([False, False, True])), False)
    return {"input": x, "target": target, "input_lengths": in_len, "target_lengths": tg_len}, params


def _case(x, target, input_lengths, target_lengths):
    """The arrays of one edge row by name (``edge(row, why, **_case(...))``): labels and lengths int64."""
    return {
        "input": np.asarray(x, np.float64),
        "target": np.array(target, np.int64),
        "input_lengths": np.array(input_lengths, np.int64),
        "target_lengths": np.array(target_lengths, np.int64),
    }


_RAW = np.array(
    [
        [[0.5, 1.0, -0.5], [0.2, -1.0, 1.5], [1.0, 0.3, 0.0], [-0.5, 0.8, 0.4]],
        [[0.0, 0.7, 1.2], [1.1, -0.3, 0.6], [-0.2, 0.9, 0.1], [0.4, 0.0, -0.8]],
    ]
)
_LP = _log_softmax(_RAW)  # (2, 4, 3) log-probabilities
_SAT = _log_softmax(np.array([[[-1e4, 0.0, -1e4], [0.0, -1e4, -1e4], [-1e4, -1e4, 0.0]]] * 2))
_GARBAGE = _LP.copy()
_GARBAGE[0, 2:] = [[1e4, -1e4, 0.0], [-1e4, 1e4, 3e3]]  # frames past the input length

# fmt: off
CTC = [
    edge("basic", "two alignable samples, the second with a shorter input and target: the plain "
                  "forward algorithm (Graves et al. 2006)",
         **_case(_LP, [[1, 2], [2, 0]], [4, 3], [2, 1]), reduction="none"),
    edge("mean-over-lengths", "'mean' with target lengths 1 and 2: PyTorch divides each loss by its "
                              "target length before the batch mean, Keras and the plain mean do not",
         **_case(_LP, [[1, 2], [2, 0]], [4, 4], [2, 1])),
    edge("impossible-target-longer", "three labels in two frames: no alignment, the loss is +inf "
                                     "(optax: large finite through log_epsilon; TensorFlow: about 707)",
         **_case(_LP[:, :2], [[1, 2, 1], [2, 1, 0]], [2, 2], [3, 2]), reduction="none"),
    edge("impossible-repeat-needs-blank", "labels [1, 1] need a blank between them: two frames cannot "
                                          "hold them (+inf), three hold exactly one alignment 1, blank, 1",
         **_case(_LP[:, :3], [[1, 1], [1, 1]], [2, 3], [2, 2]), reduction="none"),
    edge("impossible-zero-infinity", "PyTorch's zero_infinity: the infinite loss and its gradient are "
                                     "0, the other sample keeps its loss in the sum",
         **_case(_LP[:, :2], [[1, 2, 1], [2, 0, 0]], [2, 2], [3, 1]),
         reduction="sum", zero_infinity=True),
    edge("target-length-zero", "an empty target: the only alignment is all blanks, the loss is "
                               "-sum_t log p(blank); PyTorch's 'mean' divides by max(0, 1)",
         **_case(_LP, [[0, 0], [0, 0]], [4, 2], [0, 0])),
    edge("label-equals-blank", "label 0 is the blank class: by position it is still a label state "
                               "(Keras counts label 0 as padding)",
         **_case(_LP, [[0, 1], [2, 0]], [4, 4], [2, 2]), reduction="none"),
    edge("blank-last", "blank = C - 1, so class 0 is an ordinary label (TensorFlow rotates the "
                       "classes, optax and PyTorch index it)",
         **_case(_LP, [[0, 1], [1, 1]], [4, 3], [2, 2]), reduction="none", blank=2),
    edge("short-input-garbage", "frames past the input length hold +-1e4: they must not enter the "
                                "loss or receive a gradient",
         **_case(_GARBAGE, [[1, 0], [2, 1]], [2, 4], [1, 2]), reduction="none"),
    edge("one-frame", "T = 1: a single label (-log p(label)) or the empty target (-log p(blank))",
         **_case(_LP[:, :1], [[2], [0]], [1, 1], [1, 0]), reduction="none"),
    edge("input-length-zero", "no frames at all: the empty target has probability 1 (loss 0), a "
                              "non-empty one 0 (+inf)",
         **_case(_LP[:, :2], [[1], [0]], [0, 0], [1, 0]), reduction="none"),
    edge("saturated", "one-hot log-probabilities (0 and -1e4): the right target costs about 0, a "
                      "wrong one must pass through two frames of -1e4 (2e4); logaddexp must not "
                      "lose either",
         **_case(_SAT, [[1, 2], [2, 1]], [3, 3], [2, 2]), reduction="none"),
    edge("unnormalized-input", "raw scores that are not log-probabilities: PyTorch sums them as "
                               "given, optax/tf.nn/Keras take a log_softmax first",
         **_case(_RAW, [[1, 2], [2, 0]], [4, 3], [2, 1]), reduction="none"),
]
# fmt: on

# fmt: off
SPECS: list[Spec] = [
    Spec("ctc", "CTC negative log-likelihood -log p(target | input), summed over alignments",
         ctc.ctc_loss,
         {"blank": 0, "zero_infinity": False, "reduction": "mean"},
         ("log_softmax_input", "log_epsilon", "mean_by_length", "ctc_lengths", "time_major", "ctc_blank",
          "ctc_label_checks"),
         ctc_cases(), CTC, target="index", classes=True, gradient=ctc.ctc_loss_grad,
         arrays=("input_lengths", "target_lengths"), wrt=("input",),
         error_model=ctc.ctc_loss_error, stages=ctc.CTC_STAGES),
]
# fmt: on


def _frames_and_classes(params: dict, ndim: int) -> tuple[int, ...]:
    """Keras' ctc gives one loss per sequence: the input (N, T, C) less its frames and classes."""
    return (ndim - 2, ndim - 1)


def _blank_zero(arrays: dict, params: dict) -> tuple[dict, dict]:
    """The same CTC case with blank 0, Keras' class's only blank (its ctc has no mask_index): classes
    0 and the case's blank swap places in the input's class axis and in the labels."""
    blank = params.pop("blank", 0)
    if blank == 0:
        return arrays, params
    order = np.arange(arrays["input"].shape[-1])
    order[[0, blank]] = order[[blank, 0]]
    labels = arrays["target"]
    swapped = np.where(labels == blank, 0, np.where(labels == 0, blank, labels))
    # the padding past each target length stays 0
    padded = np.arange(labels.shape[-1]) >= arrays["target_lengths"][..., None]
    return {**arrays, "input": arrays["input"][..., order], "target": np.where(padded, 0, swapped)}, params


#: The Keras CTC class takes ``sample_weight`` (``bindings.keras_sample_weight``), per sequence.
SPECS = [
    keras_sample_weight(s, _frames_and_classes, ("zero_infinity",), _blank_zero) if s.name == "ctc" else s
    for s in SPECS
]

#: What each new parameter accepts.
# fmt: off
PARAMETERS: dict[str, object] = {
    "blank": int,
    "zero_infinity": bool,
}
# fmt: on


# ----------------------------------------------------------------------------- bindings
# Each framework's APIs of these specs (``conformance/bindings.py`` says how they are declared).

# torch
_CTC = dict(
    params={"reduction": "reduction", "blank": "blank", "zero_infinity": "zero_infinity"},
    # log_probs are (T, N, C); 'mean' divides each loss by its target length (clamped to 1)
    # before the batch mean (torch.nn.functional.ctc_loss documentation).
    conventions={"time_major": True, "mean_by_length": True},
    # The ATen CTC kernels dispatch float and double only ("ctc_loss_cpu" not implemented for 'Half').
    dtypes=("float64", "float32"),
)

# jax: optax takes float padding masks (1.0 = padding), not lengths: the call text builds them
# from the case's lengths, right-padded as optax requires.
_CTC_PADDINGS = (
    "(jnp.arange(input.shape[1])[None, :] >= input_lengths[:, None]).astype(input.dtype), target, "
    "(jnp.arange(target.shape[1])[None, :] >= target_lengths[:, None]).astype(input.dtype)"
)
# log_softmax of the logits, log 0 read as log_epsilon = -1e5 (the default).
# Stages: jax.nn.log_softmax(logits) runs in the logits' dtype (optax/losses/_classification.py
# L729 at v0.2.8); everything after it is promoted to float64 under jax_enable_x64 (this suite's
# setting): jax.nn.one_hot's default dtype (L739: the einsum of the log-probabilities with it)
# and the initial log-alphas jnp.ones(...) * log_epsilon (L743-L747) are float64, so the scan's
# recursion runs in float64 and the loss comes back float64 (a dtype finding of its own). The
# gradient is pulled back into the half log_softmax: rounded to its dtype there.
_CTC_OPTAX = dict(
    params={"blank": "blank_id"},
    fixed=NO_REDUCTION,
    conventions={"log_softmax_input": True, "log_epsilon": -1e5},
    stages=("log_softmax",),
)
# Keras casts the logits to backend.result_type(dtype, "float32") and float64 to float32
# (keras/src/backend/{jax,tensorflow,torch}/nn.py ctc_loss at v3.15.1: "to match tf.nn.ctc_loss"),
# then takes the log_softmax and runs the recursion there: float32 whatever the input.
_KERAS_CTC_STAGES = ("float32 log_softmax", "float32 lattice")

# fmt: off
BINDINGS: list[Binding] = [
    # -- torch --
    Binding("torch.nn.functional.ctc_loss", "ctc", "torch",
            "F.ctc_loss(input, target, input_lengths, target_lengths{kw})", **_CTC),
    Binding("torch.nn.CTCLoss", "ctc", "torch",
            "torch.nn.CTCLoss({kw})(input, target, input_lengths, target_lengths)", **_CTC),
    # -- tensorflow (tf.nn) --
    # Reads logits: "This class performs the softmax operation for you"; one loss per sample.
    Binding("tf.nn.ctc_loss", "ctc", "tensorflow",
            "tf.nn.ctc_loss(labels=target, logits=input, label_length=target_lengths, "
            "logit_length=input_lengths, logits_time_major=False{kw})",
            params={"blank": "blank_index"}, fixed=NO_REDUCTION, conventions={"log_softmax_input": True}),
    # tf.compat.v1.nn.ctc_loss_v2: the v1 name of the dense-label CTC (a function of its own, same arguments)
    Binding("tf.compat.v1.nn.ctc_loss_v2", "ctc", "tensorflow",
            "tf.compat.v1.nn.ctc_loss_v2(labels=target, logits=input, label_length=target_lengths, "
            "logit_length=input_lengths, logits_time_major=False{kw})",
            params={"blank": "blank_index"}, fixed=NO_REDUCTION, conventions={"log_softmax_input": True}),
    # tf.compat.v1.nn.ctc_loss: labels an int32 SparseTensor (built from the dense labels and their lengths, as
    # users do: tf.RaggedTensor.from_tensor(...).to_sparse(); tf.sparse.from_dense would drop label 0), inputs
    # time-major logits by default, the blank the last class (no argument: the cases that set the spec's blank,
    # to C - 1), one loss per sample; its kernel refuses empty and too-long targets (ctc_label_checks). Half
    # logits are cast to float32 and the loss back (ctc_ops.py _ctc_loss_impl).
    Binding("tf.compat.v1.nn.ctc_loss", "ctc", "tensorflow",
            "tf.compat.v1.nn.ctc_loss(tf.RaggedTensor.from_tensor(tf.cast(target, tf.int32), "
            "lengths=target_lengths).to_sparse(), input, tf.cast(input_lengths, tf.int32){kw})",
            fixed=NO_REDUCTION, requires={"blank": GIVEN},
            conventions={"log_softmax_input": True, "time_major": True, "ctc_blank": "last",
                         "ctc_label_checks": "tf_v1"}),
    # -- jax (optax.losses) --
    Binding(f"{OPTAX}.ctc_loss", "ctc", "jax",
            f"{OPTAX}.ctc_loss(input, {_CTC_PADDINGS}{{kw}})", **_CTC_OPTAX),
    Binding(f"{OPTAX}.ctc_loss_with_forward_probs", "ctc", "jax",
            f"{OPTAX}.ctc_loss_with_forward_probs(input, {_CTC_PADDINGS}{{kw}})[0]", **_CTC_OPTAX),
    # -- keras --
    # keras.losses.ctc reads y_pred as logits (log_softmax per backend), takes every frame
    # (input length T) and counts the labels that are not 0 as the target length; blank is 0.
    # The JAX backend is a copy of optax's recursion (log_epsilon = -1e5), and so is the NumPy backend's.
    *keras_pair("CTC", "ctc", "ctc", conventions={"log_softmax_input": True, "ctc_lengths": "keras"},
                backends={"jax": {"log_epsilon": -1e5}, "numpy": {"log_epsilon": -1e5}}, stages=_KERAS_CTC_STAGES,
                sample_weight=True),
    # The op under it takes the lengths and the blank (mask_index).
    Binding("keras.ops.ctc_loss", "ctc", "keras",
            "keras.ops.ctc_loss(target, input, target_lengths, input_lengths{kw})",
            params={"blank": "mask_index"}, fixed=NO_REDUCTION,
            conventions={"log_softmax_input": True,
                         "_backends": {"jax": {"log_epsilon": -1e5}, "numpy": {"log_epsilon": -1e5}}},
            stages=_KERAS_CTC_STAGES),
]
# fmt: on
