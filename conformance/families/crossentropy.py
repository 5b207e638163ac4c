"""Cross-entropy losses: binary (on probabilities and on logits), softmax (class-index and
probability targets), categorical and sparse categorical (on probabilities), and the negative
log-likelihood. Oracles in ``reference/crossentropy.py``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from lossparity.conformance.bindings import (
    AXIS_WHERE,
    KERAS_EPS,
    KERAS_VALUES,
    NO_REDUCTION,
    REDUCTION,
    integer_target_spec,
    keras_channels_first,
    keras_pair,
    keras_sample_weight,
    last_axis_only_spec,
    optax_axis_where,
    optax_loss,
    tf_v1_loss,
    torch_pair,
    with_convention,
)
from lossparity.conformance.edges import F32_BELOW_ONE, F32_TINY, F64_BELOW_ONE, F64_TINY, INF, NAN, edge
from lossparity.conformance.generate import (
    CLASS_MENU,
    FLAG,
    _set,
    arrays,
    batch_shapes,
    case_strategy,
    domain,
    floats,
    inside,
    pick,
    pick_shape,
    reductions,
)
from lossparity.core.model import GIVEN, LOG_PROBABILITY, PROBABILITY, Binding, Spec
from lossparity.reference import crossentropy as ce
from lossparity.reference.reduction import REDUCTIONS

#: What each parameter accepts: a tuple of values, a type, or ``np.ndarray`` for array
#: parameters. Checked where a user types parameters (``lossparity explain --param``).
# fmt: off
PARAMETERS: dict[str, object] = {
    "reduction": REDUCTIONS,
    "label_smoothing": float,
    "ignore_index": int,
    "weight": np.ndarray,
    "pos_weight": np.ndarray,
    "sample_weight": np.ndarray,
    "where": np.ndarray,  # optax's mask of the entries read: bool (explain.check_param)
}
# fmt: on


# ----------------------------------------------------------------------------- strategies


#: The domain choices of the binary cross-entropies (``generate.domain``), each taken in a domain bucket
#: of its own: int64 labels of 0 and 1 (the convention ``int_targets`` says what each binding does with
#: them), targets outside [0, 1] (PyTorch's binary_cross_entropy checks its target: ``prob_domain``; the
#: others compute the formula), and, on probabilities, the user's ``loss(sigmoid(z), y)`` (the activation
#: inside the call) or, on logits, a class ``weight`` without ``pos_weight`` (which torch's
#: MultiLabelSoftMarginLoss takes, and no standard bucket draws for it).
BINARY_DOMAIN = {False: ("float", "int64", "outside", "sigmoid"), True: ("float", "int64", "outside", "weight")}


@case_strategy
def binary(draw, logits: bool):
    """Probabilities or logits, hard or soft targets, a reduction, weights and smoothing; in the domain
    buckets (``generate.domain``, a tenth more cases) one of :data:`BINARY_DOMAIN` each."""
    shape = draw(batch_shapes(min_dims=1))
    x = draw(arrays(shape, floats(-20, 20) if logits else floats(0, 1)))
    hard = draw(st.booleans())
    y = draw(arrays(shape, st.sampled_from([0.0, 1.0]) if hard else floats(0, 1)))
    params = {"reduction": draw(reductions())}
    if draw(pick(FLAG)):
        params["weight"] = draw(arrays(shape[-1:], floats(0.25, 4)))
    if logits and draw(pick(FLAG)):
        params["pos_weight"] = draw(arrays(shape[-1:], floats(0.25, 4)))
    _set(params, "label_smoothing", draw(pick([0.0, 0.0, 0.1])), 0.0)
    kind = draw(domain(BINARY_DOMAIN[logits]))
    if kind == "int64":  # the hard targets, a soft one rounded to its nearer label
        y = np.round(y).astype(np.int64)
    elif kind == "outside":  # targets in [-0.5, 1.5], at least one outside [0, 1]
        y = draw(arrays(shape, floats(-0.5, 1.5)))
        if np.all((y >= 0) & (y <= 1)):
            y.flat[0] = 1.25
    elif kind == "sigmoid":  # logits whose sigmoid keeps off 0 and 1 and off Keras' clip in every dtype
        x = draw(arrays(shape, floats(-4, 4)))
        params = inside(params, input="sigmoid")
    elif kind == "weight":
        params["weight"] = draw(arrays(shape[-1:], floats(0.25, 4)))
    return {"input": x, "target": y}, params


#: The class-index specs' domain choice: the labels as a float array (the convention ``float_labels``).
CLASS_INDEX_DOMAIN = ("int64", "float64")


@case_strategy
def class_index(draw, log_probs: bool = False, probs: bool = False, smoothing: bool = True, weights: bool = True):
    """Logits (or log-probabilities, or probability rows) and class indices, a reduction, class
    weights, an ignored index and smoothing; in the domain bucket the indices as a float64 array of
    whole numbers (:data:`CLASS_INDEX_DOMAIN`)."""
    shape = draw(batch_shapes())
    n_classes = draw(pick_shape(CLASS_MENU))
    if probs:
        raw = draw(arrays(shape + (n_classes,), floats(0.01, 1)))
        x = raw / raw.sum(axis=-1, keepdims=True)
    else:
        x = draw(arrays(shape + (n_classes,), floats(-15, 15)))
        if log_probs:
            x = x - np.log(np.sum(np.exp(x), axis=-1, keepdims=True))
    t = draw(arrays(shape, st.integers(0, n_classes - 1), dtype=np.int64))
    params = {"reduction": draw(reductions())}
    if weights and draw(pick(FLAG)):
        params["weight"] = draw(arrays((n_classes,), floats(0.25, 4)))
    ignore = draw(pick([None, -100, 0]))
    if ignore is not None:
        params["ignore_index"] = ignore
        if t.ndim and ignore == -100:
            t = np.where(draw(arrays(t.shape, st.booleans(), dtype=bool)), -100, t)
    if smoothing:
        _set(params, "label_smoothing", draw(pick([0.0, 0.0, 0.1, 0.3])), 0.0)
    if draw(domain(CLASS_INDEX_DOMAIN)) == "float64":
        t = t.astype(np.float64)
    return {"input": x, "target": t}, params


#: The soft-target specs' domain choice: on probabilities, the user's ``loss(softmax(z), y)`` (the
#: activation inside the call); on logits, label smoothing in the plain structure (which Keras'
#: ``categorical_crossentropy(from_logits=True)`` function and its channels-first forms take, and
#: no standard bucket draws for them: smoothing comes there with a weight, a sample weight or a mask).
SOFT_DOMAIN = {True: ("plain", "softmax"), False: ("plain", "smoothing")}


@case_strategy
def soft_targets(draw, probs_input: bool, weights: bool = True):
    shape = draw(batch_shapes())
    n_classes = draw(pick_shape(CLASS_MENU))
    if probs_input:
        raw = draw(arrays(shape + (n_classes,), floats(0.001, 1)))
        x = raw / raw.sum(axis=-1, keepdims=True)
    else:
        x = draw(arrays(shape + (n_classes,), floats(-15, 15)))
    raw_t = draw(arrays(shape + (n_classes,), floats(0, 1)))
    sums = raw_t.sum(axis=-1, keepdims=True)
    y = np.where(sums > 0, raw_t / np.where(sums > 0, sums, 1), 1.0 / n_classes)
    params = {"reduction": draw(reductions())}
    if weights and draw(pick(FLAG)):
        params["weight"] = draw(arrays((n_classes,), floats(0.25, 4)))
    _set(params, "label_smoothing", draw(pick([0.0, 0.0, 0.1])), 0.0)
    kind = draw(domain(SOFT_DOMAIN[probs_input]))
    if kind == "softmax":  # logits whose softmax keeps off 0 and 1 in every dtype (one class: exactly 1)
        x = draw(arrays(shape + (n_classes,), floats(-4, 4)))
        params = inside(params, input="softmax")
    elif kind == "smoothing":  # another amount than the standard buckets' 0.1
        params["label_smoothing"] = 0.2
    return {"input": x, "target": y}, params


@case_strategy
def fenchel_young(draw):
    """Scores and targets for the log-sum-exp Fenchel-Young loss: probability vectors (where it
    is softmax cross-entropy), one-hot rows, and non-negative targets that do not sum to 1 (where
    it is not)."""
    shape = draw(batch_shapes()) + (draw(pick_shape(CLASS_MENU)),)
    x = draw(arrays(shape, floats(-15, 15)))
    raw = draw(arrays(shape, floats(0, 1)))
    kind = draw(pick(["simplex", "simplex", "one-hot", "unnormalized"]))
    if kind == "simplex":
        sums = raw.sum(axis=-1, keepdims=True)
        y = np.where(sums > 0, raw / np.where(sums > 0, sums, 1), 1.0 / shape[-1])
    elif kind == "one-hot":
        y = (raw == raw.max(axis=-1, keepdims=True)).astype(np.float64)
        y = np.where(y.sum(axis=-1, keepdims=True) == 1, y, np.eye(shape[-1])[0])
    else:
        y = raw * 2.0
    return {"input": x, "target": y}, {"reduction": draw(reductions())}


# ----------------------------------------------------------------------------- edge tables

# fmt: off
BINARY_CROSS_ENTROPY = [
    edge("seed-000", "seed 000: nn.BCELoss() on [0.8, 0.2, 0.4] / [1, 0, 0] is 0.3190",
         [0.8, 0.2, 0.4], [1.0, 0.0, 0.0]),
    edge("p-zero-y-one", "log(0) = -inf: PyTorch clamps the log at -100, Keras clips p at 1e-7",
         [0.0, 0.5], [1.0, 0.0], reduction="none"),
    edge("p-one-y-zero", "log(1 - 1) = -inf from the other side",
         [1.0, 0.5], [0.0, 1.0], reduction="none"),
    edge("p-exact-agree", "p exactly 0 and 1 on the right target: every log is multiplied by 0",
         [0.0, 1.0], [0.0, 1.0], reduction="none"),
    edge("p-ulp-f32", "one float32 ULP inside (0, 1): the first values a clip changes",
         [F32_TINY, F32_BELOW_ONE], [1.0, 0.0], reduction="none", dtypes=("float32",)),
    edge("p-ulp-f64", "one float64 ULP inside (0, 1)",
         [F64_TINY, F64_BELOW_ONE], [1.0, 0.0], reduction="none", dtypes=("float64",)),
    edge("p-nan", "a NaN probability propagates; nothing documents a check",
         [NAN, 0.5], [1.0, 0.0], reduction="none"),
    edge("soft-target", "targets strictly between 0 and 1 are documented as allowed",
         [0.3, 0.7], [0.25, 0.9], reduction="sum"),
    edge("empty", "an empty batch: the mean divides 0 by 0",
         [], []),
    edge("weighted", "a per-element weight rescales each term; mean stays over elements",
         [[0.3, 0.6], [0.9, 0.1]], [[1.0, 0.0], [1.0, 1.0]], weight=[2.0, 0.5]),
    # issue 19, the whole input domain: probabilities and targets outside [0, 1]
    edge("p-above-one", "p = 1.2 > 1: PyTorch raises RuntimeError ('all elements of input should be between "
                        "0 and 1'), Keras clips it to 1 - 1e-7 first (its torch backend too, then calls torch)",
         [0.8, 1.2, 0.4], [1.0, 0.0, 0.0]),
    edge("p-below-zero", "p = -0.1 < 0: PyTorch raises RuntimeError, Keras clips it to 1e-7",
         [-0.1, 0.3], [0.0, 1.0], reduction="none"),
    edge("target-above-one", "target 1.2 > 1: PyTorch checks its target too (RuntimeError 'all elements of "
                             "target should be between 0 and 1'; so does Keras' torch backend), Keras' other "
                             "backends compute the formula",
         [0.8, 0.3], [1.2, 0.0], reduction="none"),
    edge("target-below-zero", "target -0.1 < 0: PyTorch raises RuntimeError, Keras computes the formula",
         [0.8, 0.3], [1.0, -0.1]),
    # issue 19, the whole input domain: int64 labels where float targets are documented
    edge("int-target", "int64 targets [1, 0]: PyTorch raises RuntimeError ('Found dtype Long but expected "
                       "Float'), Keras casts them to the input's dtype: -(log 0.8 + log 0.7) / 2",
         [0.8, 0.3], np.array([1, 0], np.int64)),
    # issue 19: the activation inside the same call (and, in a compiled mode, the same compiled function)
    edge("sigmoid-inside", "the user's loss(sigmoid(z), y), z given: the framework's own sigmoid runs inside the "
                           "call (jax.jit, tf.function: one compiled function, which may fuse it with the log); "
                           "the oracle reads sigmoid(z) rounded to the dtype; in float16 and bfloat16 the "
                           "framework's own rounding of it is modelled (reference/rounding.py, transform_error)",
         [[2.0, -1.0, 0.5], [-3.0, 0.25, 1.5]], [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], transforms={"input": "sigmoid"}),
]
# fmt: on

# fmt: off
BINARY_CROSS_ENTROPY_WITH_LOGITS = [
    edge("huge-logits", "logits of +-1e4: exp overflows in a naive sigmoid, softplus must not",
         [1e4, -1e4, 1e4, -1e4], [1.0, 0.0, 0.0, 1.0], reduction="none"),
    edge("inf-logits-right", "+-inf logits on the right side: the limit is a loss of 0",
         [INF, -INF], [1.0, 0.0], reduction="none"),
    edge("inf-logits-wrong", "+-inf logits on the wrong side: the limit is an infinite loss",
         [INF, -INF], [0.0, 1.0], reduction="none"),
    edge("nan-logit", "a NaN logit propagates",
         [NAN, 0.0], [1.0, 0.0], reduction="none"),
    edge("zero-logit", "logit 0 is probability 1/2: the loss is log 2 whatever the target",
         [0.0, 0.0], [1.0, 0.3], reduction="none"),
    edge("pos-weight", "pos_weight scales only the positive term",
         [[1.5, -0.5, 2.0]], [[1.0, 0.0, 0.5]], pos_weight=[3.0, 3.0, 0.5]),
    edge("empty", "an empty batch: the mean divides 0 by 0",
         [], []),
    # Keras' BinaryCrossentropy docstring, example 2, with sample_weight=[0.8, 0.2]: each sample's
    # mean of its two terms, weighted, over the batch size 2
    edge("keras-doc-sample-weight", "Keras' docstring: per-sample BCE means weighted by [0.8, 0.2], / 2",
         [[-18.6, 0.51], [2.94, -12.8]], [[0.0, 1.0], [0.0, 0.0]], sample_weight=[0.8, 0.2]),
    edge("sample-weight-column", "(N, 1) weights on (N, 2) logits: Keras' per-sample losses (N,) get a trailing 1",
         [[1.5, -0.5], [0.25, 2.0]], [[1.0, 0.0], [0.5, 1.0]], sample_weight=[[2.0], [0.5]], reduction="sum"),
    # issue 19, the whole input domain: targets outside [0, 1], and smoothing on Keras' logits form
    edge("target-outside", "targets 1.2 and -0.1 outside [0, 1]: no logits form documents a check "
                           "(PyTorch, tf.nn, optax, Keras): the formula's value",
         [0.8, -0.3], [1.2, -0.1], reduction="none"),
    # issue 19, the whole input domain: int64 labels where float targets are documented
    edge("int-target", "int64 targets [1, 0]: PyTorch raises RuntimeError (the result type Float can't be "
                       "cast to Long), tf.nn InvalidArgumentError, optax promotes, Keras casts: "
                       "softplus(-0.8), softplus(-0.3)",
         [0.8, -0.3], np.array([1, 0], np.int64), reduction="none"),
    edge("smoothing-logits", "label smoothing on the logits form (Keras BinaryCrossentropy(from_logits=True, "
                             "label_smoothing=0.2)): targets y(1-s) + s/2",
         [[2.0, -1.0, 0.5]], [[1.0, 0.0, 1.0]], label_smoothing=0.2),
]
# fmt: on

# fmt: off
SOFTMAX_CROSS_ENTROPY = [
    edge("seed-000", "seed 000: nn.CrossEntropyLoss() reads [0.8, 0.2, 0.4] as one unbatched "
                     "sample's logits; target 0 gives 0.7971",
         [0.8, 0.2, 0.4], 0),
    edge("seed-001", "seed 001: tf.nn.sparse_softmax_cross_entropy_with_logits on labels [2, 0] "
                     "gives [0.32656264, 0.4643688]",
         [[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]], [2, 0], reduction="none"),
    edge("huge-logits", "logits of +-1e4: logsumexp must shift by the max",
         [[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], [0, 0], reduction="none"),
    edge("inf-logit", "a +inf logit: inf - inf in the shifted logsumexp",
         [[INF, 0.0, 0.0]], [0], reduction="none"),
    edge("neg-inf-logit", "a -inf logit is probability 0: fine unless it is the target",
         [[-INF, 0.0, 1.0], [-INF, 0.0, 1.0]], [1, 0], reduction="none"),
    edge("nan-logit", "a NaN logit poisons its sample's softmax",
         [[NAN, 0.0], [1.0, 0.0]], [1, 1], reduction="none"),
    edge("one-class", "a single class: softmax is 1, the loss is 0",
         [[3.0], [-2.0]], [0, 0]),
    edge("some-ignored", "ignored targets contribute 0 and are not counted by the mean",
         [[1.0, 2.0], [0.5, -0.5], [3.0, 0.0]], [1, -100, 0], ignore_index=-100),
    edge("all-ignored", "every target ignored: mean over nothing (PyTorch: nan)",
         [[1.0, 2.0], [0.5, -0.5]], [-100, -100], ignore_index=-100),
    edge("default-minus-100", "label -100 with no ignore_index given: PyTorch ignores it by default, "
                              "elsewhere it is an invalid label",
         [[1.0, 2.0], [0.5, -0.5]], [-100, 1], reduction="sum"),
    edge("label-too-big", "label C is out of range: documented as an error in PyTorch and tf.nn",
         [[1.0, 2.0], [0.5, -0.5]], [0, 2], reduction="none"),
    edge("label-negative", "label -1 is out of range (not ignored): error, wrap or nan?",
         [[1.0, 2.0], [0.5, -0.5]], [0, -1], reduction="none"),
    edge("empty", "an empty batch of 3 classes",
         np.zeros((0, 3)), np.zeros((0,), np.int64)),
    edge("spatial", "(N, d1, C) canonical = (N, C, d1) in PyTorch: the class axis moves",
         [[[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]]], [[2, 0]], reduction="none"),
    edge("weighted-mean", "a weighted mean divides by the targets' weights in PyTorch",
         [[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]], [0, 2], weight=[3.0, 1.0, 0.5]),
    edge("smoothing-weighted", "label smoothing with class weights: PyTorch weights the smoothing term",
         [[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]], [0, 2], weight=[3.0, 1.0, 0.5], label_smoothing=0.2),
    edge("sample-weight-all-zero", "Keras: every sample weight 0, mean_with_sample_weight divides 0 by 0: "
                                   "divide_no_nan gives 0",
         [[1.0, 2.0], [0.5, -0.5]], [0, 1], sample_weight=[0.0, 0.0], reduction="mean_with_sample_weight"),
    edge("sample-weight-some-zero", "Keras: a zero weight drops its sample, still counted by sum_over_batch_size",
         [[1.0, 2.0], [0.5, -0.5], [3.0, 0.0]], [0, 1, 1], sample_weight=[1.0, 0.0, 2.0],
         reduction="sum_over_batch_size"),
    edge("sample-weight-negative", "Keras documents no sign for sample_weight: a negative weight subtracts its "
                                   "sample, and the weights' sum is the divisor",
         [[1.0, 2.0], [0.5, -0.5]], [0, 1], sample_weight=[-1.0, 3.0], reduction="mean_with_sample_weight"),
    edge("sample-weight-spatial", "Keras: per-element weights on (N, d1) per-sample losses",
         [[[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]]], [[2, 0]], sample_weight=[[0.5, 2.0]], reduction="mean"),
    edge("sample-weight-unreduced", "Keras' reduction None: the weighted per-sample losses, (N, 1) weights "
                                    "expanding (N,) losses to (N, 1)",
         [[1.0, 2.0], [0.5, -0.5]], [0, 1], sample_weight=[[2.0], [0.25]], reduction="none"),
    # issue 19, the whole input domain: float class labels, and smoothing with ignored labels
    edge("float-labels", "class indices as a float array [2.0, 0.0]: PyTorch raises RuntimeError (Long or "
                         "Byte expected), tf.nn and optax TypeError; Keras casts them to integers",
         [[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]], [2.0, 0.0], reduction="none"),
    edge("smoothing-ignored", "label smoothing with an ignored target: PyTorch drops the ignored sample's "
                              "smoothing term too, and the mean counts the other one",
         [[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]], [2, -100], ignore_index=-100, label_smoothing=0.2),
    edge("smoothing-ignored-weighted", "smoothing, an ignored target and class weights: the weighted mean "
                                       "divides by the counted targets' weights",
         [[1.0, 2.0, 3.0], [1.0, 0.0, -1.0], [0.5, 0.5, -2.0]], [2, -100, 0], ignore_index=-100,
         label_smoothing=0.2, weight=[3.0, 1.0, 0.5]),
]
# fmt: on

# fmt: off
FENCHEL_YOUNG = [
    edge("simplex-is-ce", "targets on the simplex: softmax cross-entropy, logsumexp(x) - <y, x>",
         [[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], reduction="none"),
    edge("unnormalized", "targets summing to 2: (sum(y) - 1) logsumexp(x) away from cross-entropy",
         [[1.0, 2.0, 3.0]], [[1.0, 1.0, 0.0]], reduction="none"),
    edge("zero-target", "all-zero targets: the loss is logsumexp(x) alone",
         [[0.0, 0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 0.0]], reduction="none"),
    edge("neg-inf-score-zero-target", "a -inf score with target 0: vdot's 0 * -inf is NaN (IEEE, no limit taken)",
         [[-INF, 0.0, 1.0]], [[0.0, 0.5, 0.5]], reduction="none"),
    edge("huge-scores", "scores of +-1e4: the max shift keeps logsumexp finite",
         [[1e4, -1e4, 0.0]], [[0.5, 0.0, 0.5]], reduction="none"),
    edge("leading-axes", "two leading axes: the loss maps over them and reduces the last",
         np.arange(12.0).reshape(2, 2, 3) / 4.0, np.full((2, 2, 3), 1.0 / 3.0), reduction="none"),
    edge("unbatched", "one (C,) vector: a 0-d loss",
         [0.5, -0.5, 2.0], [0.25, 0.25, 0.5], reduction="none"),
]
# fmt: on

# fmt: off
SOFTMAX_CROSS_ENTROPY_SOFT = [
    edge("one-hot", "one-hot probability targets equal class-index targets",
         [[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]], [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], reduction="none"),
    edge("huge-logits", "logits of +-1e4 with a soft target",
         [[1e4, -1e4, 0.0]], [[0.5, 0.0, 0.5]], reduction="none"),
    edge("neg-inf-zero-target", "a -inf logit with target 0 there: 0 * -inf, the limit is 0",
         [[-INF, 0.0, 1.0]], [[0.0, 0.5, 0.5]], reduction="none"),
    edge("unnormalized", "targets that do not sum to 1 are used as given (nothing documents a check)",
         [[1.0, 2.0]], [[0.7, 0.7]], reduction="none"),
    edge("unbatched", "an unbatched (C) input",
         [0.8, 0.2, 0.4], [1.0, 0.0, 0.0]),
    # issue 19: label smoothing on the logits forms (Keras CategoricalCrossentropy(from_logits=True), torch)
    edge("smoothing-logits", "label smoothing on logits: targets y(1-s) + s/C, Keras' from_logits=True and "
                             "torch's probability targets alike",
         [[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]], [[0.0, 0.0, 1.0], [0.7, 0.3, 0.0]], label_smoothing=0.2),
]
# fmt: on

# fmt: off
CATEGORICAL_CROSS_ENTROPY = [
    edge("zero-prob-target", "probability 0 on the target class: Keras clips at 1e-7",
         [[0.0, 1.0], [0.5, 0.5]], [[1.0, 0.0], [0.0, 1.0]], reduction="none"),
    edge("unnormalized", "predictions that do not sum to 1: Keras renormalizes",
         [[0.2, 0.2, 0.2]], [[0.0, 1.0, 0.0]], reduction="none"),
    # Keras' CategoricalCrossentropy docstring with sample_weight=[0.3, 0.7]: (0.3 (-log 0.95) + 0.7 (-log 0.1)) / 2
    edge("keras-doc-sample-weight", "Keras' docstring: per-sample losses -log 0.95, -log 0.1 weighted "
                                    "by [0.3, 0.7], / 2",
         [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], sample_weight=[0.3, 0.7]),
    # issue 19: the activation inside the same call (and, in a compiled mode, the same compiled function)
    edge("softmax-inside", "the user's loss(softmax(z), y), z given: the framework's own softmax over the class "
                           "axis runs inside the call (jax.jit, tf.function: one compiled function); the oracle "
                           "reads softmax(z) rounded to the dtype; in float16 and bfloat16 the framework's "
                           "own rounding of it is modelled (reference/rounding.py, transform_error)",
         [[2.0, -1.0, 0.5], [0.0, 1.0, -2.0]], [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]], transforms={"input": "softmax"}),
]
# fmt: on

# fmt: off
SPARSE_CATEGORICAL_CROSS_ENTROPY = [
    edge("keras-doc", "the Keras docstring example: [0.0513, 2.303]",
         [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], [1, 2], reduction="none"),
    edge("zero-prob-target", "probability 0 on the target class: clipped at 1e-7",
         [[0.0, 1.0]], [0], reduction="none"),
    edge("all-ignored", "every target ignored: Keras' divide_no_nan gives 0",
         [[0.5, 0.5], [0.2, 0.8]], [1, 1], ignore_index=1),
    # Keras' SparseCategoricalCrossentropy docstring with sample_weight=[0.3, 0.7]
    edge("keras-doc-sample-weight", "Keras' docstring: [0.0513, 2.303] weighted by [0.3, 0.7], / 2",
         [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], [1, 2], sample_weight=[0.3, 0.7]),
    edge("sample-weight-mean-by-weights", "Keras' mean_with_sample_weight: the weighted sum / the weights' sum",
         [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], [1, 2], sample_weight=[0.3, 0.7], reduction="mean_with_sample_weight"),
    # issue 19, the whole input domain: Keras' sparse losses cast float labels to integers
    edge("float-labels", "the Keras docstring example with labels [1.0, 2.0] as floats: Keras casts them",
         [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], [1.0, 2.0], reduction="none"),
]
# fmt: on

# fmt: off
NLL_LOSS = [
    edge("seed-002", "seed 002's formula l_n = -w[y_n] x[n, y_n]; here the log-softmax of [1, 2, 3]",
         [[-2.40760596444438, -1.40760596444438, -0.40760596444438]], [2]),
    edge("some-ignored", "ignored targets contribute 0 and are not counted",
         [[-0.5, -1.0], [-2.0, -0.1]], [-100, 0], ignore_index=-100),
    edge("all-ignored", "every target ignored: 0 / 0",
         [[-0.5, -1.0]], [-100], ignore_index=-100),
    edge("label-too-big", "label C is out of range: documented error",
         [[-0.5, -1.0]], [2]),
    edge("neg-inf-target", "log-probability -inf on the target: the loss is +inf",
         [[-INF, 0.0]], [0], reduction="none"),
    # issue 19, the whole input domain
    edge("float-labels", "class indices as a float array: PyTorch raises RuntimeError ('expected target "
                         "dtype to be Long or Byte, but got Float')",
         [[-0.5, -1.0], [-2.0, -0.1]], [1.0, 0.0]),
]
# fmt: on


# ----------------------------------------------------------------------------- specs

# fmt: off
SPECS: list[Spec] = [
    Spec("binary_cross_entropy", "BCE on probabilities: -[y log p + (1-y) log(1-p)]",
         ce.binary_cross_entropy,
         {"weight": None, "label_smoothing": 0.0, "reduction": "mean"},
         ("log_min", "prob_eps", "prob_domain", "sample_axis", "clip_tie", "log_shift"),
         binary(logits=False), BINARY_CROSS_ENTROPY, classes=False,
         gradient=ce.binary_cross_entropy_grad,
         error_model=ce.binary_cross_entropy_error, stages=ce.BINARY_STAGES,
         domain={"input": PROBABILITY, "target": PROBABILITY}),
    Spec("binary_cross_entropy_with_logits", "BCE on logits: BCE of sigmoid(x), with pos_weight",
         ce.binary_cross_entropy_with_logits,
         {"weight": None, "pos_weight": None, "label_smoothing": 0.0, "reduction": "mean"},
         ("sample_axis",),
         binary(logits=True), BINARY_CROSS_ENTROPY_WITH_LOGITS, classes=False,
         gradient=ce.binary_cross_entropy_with_logits_grad,
         error_model=ce.binary_cross_entropy_with_logits_error, stages=ce.BINARY_LOGIT_STAGES,
         domain={"target": PROBABILITY}),
    Spec("softmax_cross_entropy", "softmax cross-entropy on logits with class-index targets",
         ce.softmax_cross_entropy,
         {"weight": None, "ignore_index": None, "label_smoothing": 0.0, "reduction": "mean"},
         ("class_axis", "mean_by", "zero_division", "invalid_label", "float_labels"),
         class_index(), SOFTMAX_CROSS_ENTROPY, target="index",
         gradient=ce.softmax_cross_entropy_grad,
         error_model=ce.softmax_cross_entropy_error, stages=ce.SOFTMAX_STAGES),
    Spec("softmax_cross_entropy_soft", "softmax cross-entropy on logits with probability targets",
         ce.softmax_cross_entropy_soft,
         {"weight": None, "label_smoothing": 0.0, "reduction": "mean"},
         ("class_axis", "label_gradient"),
         soft_targets(probs_input=False), SOFTMAX_CROSS_ENTROPY_SOFT,
         gradient=ce.softmax_cross_entropy_soft_grad,
         error_model=ce.softmax_cross_entropy_soft_error, stages=ce.SOFTMAX_STAGES,
         domain={"target": PROBABILITY}),
    Spec("fenchel_young_logsumexp", "Fenchel-Young loss of log-sum-exp: logsumexp(x) - <y, x> over the last axis",
         ce.fenchel_young_logsumexp, {"reduction": "mean"}, (),
         fenchel_young(), FENCHEL_YOUNG,
         gradient=ce.fenchel_young_logsumexp_grad,
         error_model=ce.fenchel_young_logsumexp_error, stages=ce.FENCHEL_YOUNG_STAGES),
    Spec("categorical_cross_entropy", "cross-entropy of predicted probabilities against probability targets",
         ce.categorical_cross_entropy,
         {"label_smoothing": 0.0, "reduction": "mean"},
         ("prob_eps", "renormalize", "clip_tie"),
         soft_targets(probs_input=True, weights=False), CATEGORICAL_CROSS_ENTROPY,
         gradient=ce.categorical_cross_entropy_grad,
         error_model=ce.categorical_cross_entropy_error, stages=ce.PROBABILITY_STAGES,
         domain={"input": PROBABILITY, "target": PROBABILITY}),
    Spec("sparse_categorical_cross_entropy", "cross-entropy of predicted probabilities against class indices",
         ce.sparse_categorical_cross_entropy,
         {"ignore_index": None, "reduction": "mean"},
         ("prob_eps", "renormalize", "zero_division", "invalid_label", "clip_tie", "float_labels"),
         class_index(probs=True, smoothing=False, weights=False), SPARSE_CATEGORICAL_CROSS_ENTROPY,
         target="index", gradient=ce.sparse_categorical_cross_entropy_grad,
         error_model=ce.sparse_categorical_cross_entropy_error, stages=ce.PROBABILITY_STAGES,
         domain={"input": PROBABILITY}),
    Spec("nll_loss", "negative log-likelihood on log-probabilities with class-index targets",
         ce.nll_loss,
         {"weight": None, "ignore_index": None, "reduction": "mean"},
         ("class_axis", "mean_by", "zero_division", "invalid_label", "float_labels"),
         class_index(log_probs=True, smoothing=False), NLL_LOSS, target="index",
         gradient=ce.nll_loss_grad,
         domain={"input": LOG_PROBABILITY}),
]
# fmt: on

#: The specs whose Keras classes take ``sample_weight`` (``bindings.keras_sample_weight``): each
#: per-sample loss reads its own sample's row only.
KERAS_WEIGHTED = (
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "softmax_cross_entropy",
    "softmax_cross_entropy_soft",
    "categorical_cross_entropy",
    "sparse_categorical_cross_entropy",
)
#: The specs whose optax functions take ``axis`` and ``where`` (``bindings.optax_axis_where``).
OPTAX_AXIS_WHERE = ("softmax_cross_entropy", "softmax_cross_entropy_soft")
SPECS = [keras_sample_weight(s) if s.name in KERAS_WEIGHTED else s for s in SPECS]
# both optax functions expand a lower-rank where at the axes (optax/losses/_classification.py at v0.2.8)
SPECS = [optax_axis_where(s, expand=True) if s.name in OPTAX_AXIS_WHERE else s for s in SPECS]
#: The specs whose edge rows give an integer target (issue 19): each binding's documented outcome is
#: its ``int_targets`` convention (plain: promoted to the input's dtype).
INT_TARGETS = ("binary_cross_entropy", "binary_cross_entropy_with_logits")
SPECS = [integer_target_spec(s) if s.name in INT_TARGETS else s for s in SPECS]
# Keras' TensorFlow backend computes the sparse cross-entropies along the last axis only (convention
# last_axis_only, set on its channels-first bindings below)
LAST_AXIS_ONLY = ("softmax_cross_entropy", "sparse_categorical_cross_entropy")
SPECS = [last_axis_only_spec(s) if s.name in LAST_AXIS_ONLY else s for s in SPECS]


# ----------------------------------------------------------------------------- bindings
# Each framework's APIs of these specs (``conformance/bindings.py`` says how they are declared).

# torch (PyTorch 2.x documentation): BCELoss clamps each log at -100; cross_entropy/nll_loss put
# classes on dim 1, ignore -100 by default, divide a weighted 'mean' by the sum of the targets'
# weights, and raise IndexError ("Target N is out of bounds") for an invalid class index; class
# indices must be int64 (or uint8): a float target of the indices' shape raises RuntimeError
# ("expected target dtype to be Long or Byte, but got Float"; aten/src/ATen/native/LossNLL.cpp).
_CE = dict(class_axis=1, mean_by="weights", invalid_label="IndexError", float_labels="RuntimeError")
# Their kernels have no derivative for the weights (derivatives.yaml): a gradient with respect to
# weight or pos_weight raises "is not differentiable with respect to argument 'weight'"
# (pytorch/pytorch#19254, #60610); cross_entropy with probability targets (a composite of
# log_softmax and a weighted sum) and multilabel_soft_margin_loss, written in Python, have one.
_NO_WEIGHT_GRAD = ("weight", "pos_weight")

# tensorflow: sparse_softmax_cross_entropy_with_logits documents that an out-of-range label
# raises on CPU: tf.errors.InvalidArgumentError ("Received a label value of ..."). Its labels are
# documented as int32 or int64 (the op's Tlabels attribute): float labels raise TypeError ("Value passed
# to parameter 'labels' has DataType float32 not in list of allowed values") when the op is built in a
# graph (tf.function); eagerly the same check is an InvalidArgumentError (known entry
# tf-sparse-xent-float-labels-eager-invalid-argument).
_INVALID = "InvalidArgumentError"

# keras: probabilities are clipped into [epsilon, 1 - epsilon] with backend.epsilon() = 1e-7;
# categorical_crossentropy divides by the sum over classes *before* the clip,
# sparse_categorical_crossentropy takes the log of the clipped probabilities and renormalizes
# *after* the clip. An out-of-range class index raises InvalidArgumentError on the TensorFlow
# backend (its sparse_softmax_cross_entropy_with_logits checks on CPU); the other backends
# gather without a check (a per-backend convention):
_SMOOTH = {"label_smoothing": "label_smoothing"}
_IGNORE = {"ignore_index": "ignore_class"}
# The JAX backend one-hot encodes the labels (jax.nn.one_hot: an invalid label is a row of
# zeros) and, on probabilities, divides by the sum *before* the clip; the torch backend hands
# logits to torch's cross_entropy and clipped log-probabilities to nll_loss (renormalized before
# the clip too), which raise IndexError for a label out of range (and ignore -100, their default).
# Keras' JAX backend clips with jnp.clip, which passes half the slope at a bound (clip_tie).
_JNP_CLIP = {"jax": {"clip_tie": "split"}}
_SPARSE_LOGITS = {"jax": {"invalid_label": "zeros"}, "torch": {"invalid_label": "IndexError"}}
_SPARSE_PROBS = {
    "jax": {"invalid_label": "zeros", "renormalize": "before_clip", "clip_tie": "split"},
    "torch": {"invalid_label": "IndexError", "renormalize": "before_clip"},
}

# Rounding (``reference/rounding.py``): where a binding takes the log-softmax or the log of
# renormalized probabilities in its input's dtype, with no wider accumulator, its error is
# bounded by the spec's error model, not by one rounding of the result.
# - jax.nn.log_softmax (optax softmax_cross_entropy and safe_; Keras' JAX backend):
#   ``shifted - log(sum(exp(shifted)))`` in the input's dtype (jax/_src/nn/functions.py);
# - optax.softmax_cross_entropy_with_integer_labels: ``logsumexp(logits) - label_logit``;
# - tf.nn's xent kernels (core/kernels/xent_op.h, sparse_xent_op.h; Keras' TensorFlow backend
#   calls them) compute max, exp, sum and log in T;
# - PyTorch's CPU log_softmax kernel for Half/BFloat16 (aten/src/ATen/native/cpu/SoftMaxKernel.cpp)
#   accumulates in float and stores log_softmax in the input's dtype, and its backward forms
#   softmax - y from that stored output: "stored_log_softmax" (cross_entropy; Keras' torch
#   backend, whose categorical form calls torch.log_softmax and sums target * log_prob in the
#   input's dtype, and whose sparse form on logits calls torch's cross_entropy).
# - Keras on probabilities (every backend): ``output / sum(output)``, clip and ``log`` in the
#   input's dtype.
# - binary cross-entropy on probabilities (stage "log"): Keras clips and takes both logs in the
#   input's dtype on every backend (keras/src/backend/{jax,tensorflow}/nn.py
#   binary_crossentropy; the torch backend hands the clipped p to torch's kernel); PyTorch's
#   binary_cross_entropy CPU kernel evaluates (y - 1) max(log1p(-p), -100) - y max(log p, -100)
#   and its backward (p - y) / max((1 - p) p, EPSILON) in scalar_t (aten/src/ATen/native/Loss.cpp;
#   tests/test_rounding.py checks that a float16 emulation of it matches torch bit for bit).
# - on logits: "log_sigmoid" where the loss is -(y log_sigmoid(x) + (1-y) log_sigmoid(-x)) in the
#   dtype (optax/losses/_classification.py, Keras' JAX backend, torch's multilabel_soft_margin_loss
#   in torch/nn/functional.py); "max_log1p_exp" where it is the stable max/abs form built of
#   separate ops in the dtype (tf.nn's nn_impl.py and Keras' TensorFlow backend on it; PyTorch's
#   binary_cross_entropy_with_logits in Loss.cpp, and Keras' torch backend on it).
_BCE_PROBS = ce.BINARY_STAGES
_LOG_SIGMOID = ("log_sigmoid",)
_MAX_LOG1P_EXP = ("max_log1p_exp",)
_KERAS_BCE_LOGITS = {"jax": _LOG_SIGMOID, "tensorflow": _MAX_LOG1P_EXP, "torch": _MAX_LOG1P_EXP}
# Keras' torch backend computes BCE on probabilities with torch's binary_cross_entropy
# (keras/src/backend/torch/nn.py), which clamps each log at -100 and raises RuntimeError for a
# probability outside [0, 1]: after Keras' clip only NaN is, and in half precision p = 1 (the
# upper bound rounds to 1) has log(1 - p) clamped.
_KERAS_BCE_PROBS = {"jax": {"clip_tie": "split"}, "torch": {"log_min": -100.0, "prob_domain": "RuntimeError"}}
_LOG_SOFTMAX = ("log_softmax",)
_TF_XENT = ("log_softmax",)
_KERAS_PROBS = ce.PROBABILITY_STAGES
_TORCH_LOG_SOFTMAX = ("stored_log_softmax",)
_KERAS_LOGITS = {"jax": _LOG_SOFTMAX, "tensorflow": _LOG_SOFTMAX, "torch": _TORCH_LOG_SOFTMAX, "numpy": _LOG_SOFTMAX}

# fmt: off
BINDINGS: list[Binding] = [
    # -- torch --
    *torch_pair("binary_cross_entropy", "BCELoss", "binary_cross_entropy",
                params={**REDUCTION, "weight": "weight"},
                conventions={"log_min": -100.0, "prob_domain": "RuntimeError"},
                stages=_BCE_PROBS, nondifferentiable=_NO_WEIGHT_GRAD),
    *torch_pair("binary_cross_entropy_with_logits", "BCEWithLogitsLoss", "binary_cross_entropy_with_logits",
                params={**REDUCTION, "weight": "weight", "pos_weight": "pos_weight"},
                stages=_MAX_LOG1P_EXP, nondifferentiable=_NO_WEIGHT_GRAD),
    *torch_pair("cross_entropy", "CrossEntropyLoss", "softmax_cross_entropy",
                params={**REDUCTION, "weight": "weight", "ignore_index": "ignore_index",
                        "label_smoothing": "label_smoothing"},
                defaults={"ignore_index": -100}, conventions=_CE, stages=_TORCH_LOG_SOFTMAX,
                nondifferentiable=_NO_WEIGHT_GRAD),
    *torch_pair("cross_entropy", "CrossEntropyLoss", "softmax_cross_entropy_soft",
                params={**REDUCTION, "weight": "weight", "label_smoothing": "label_smoothing"},
                conventions={"class_axis": 1}, stages=_TORCH_LOG_SOFTMAX),
    *torch_pair("nll_loss", "NLLLoss", "nll_loss",
                params={**REDUCTION, "weight": "weight", "ignore_index": "ignore_index"},
                defaults={"ignore_index": -100}, conventions=_CE, nondifferentiable=_NO_WEIGHT_GRAD),
    # the mean over the classes of BCE with logits
    *torch_pair("multilabel_soft_margin_loss", "MultiLabelSoftMarginLoss", "binary_cross_entropy_with_logits",
                params={**REDUCTION, "weight": "weight"}, conventions={"sample_axis": "mean"}, stages=_LOG_SIGMOID),
    # -- tensorflow (tf.nn: never reduces; one loss per element (sigmoid) or per sample (softmax)) --
    Binding("tf.nn.sigmoid_cross_entropy_with_logits", "binary_cross_entropy_with_logits", "tensorflow",
            "tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=input)", fixed=NO_REDUCTION,
            stages=_MAX_LOG1P_EXP),
    # pos_weight has no default here: the binding takes only the cases that set it.
    Binding("tf.nn.weighted_cross_entropy_with_logits", "binary_cross_entropy_with_logits", "tensorflow",
            "tf.nn.weighted_cross_entropy_with_logits(labels=target, logits=input{kw})",
            params={"pos_weight": "pos_weight"}, requires={"pos_weight": GIVEN}, fixed=NO_REDUCTION,
            stages=_MAX_LOG1P_EXP),
    Binding("tf.nn.softmax_cross_entropy_with_logits", "softmax_cross_entropy_soft", "tensorflow",
            "tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=input)", fixed=NO_REDUCTION,
            stages=_TF_XENT),
    Binding("tf.nn.sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy", "tensorflow",
            "tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=input)",
            fixed=NO_REDUCTION, conventions={"invalid_label": _INVALID, "float_labels": "TypeError"},
            stages=_TF_XENT),
    # -- tensorflow (tf.compat.v1.nn: the v1 signatures, keyword-only after a _sentinel) --
    Binding("tf.compat.v1.nn.sigmoid_cross_entropy_with_logits", "binary_cross_entropy_with_logits", "tensorflow",
            "tf.compat.v1.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=input)", fixed=NO_REDUCTION,
            stages=_MAX_LOG1P_EXP),
    # v1 also takes the labels as `targets`, deprecated ("use labels instead")
    Binding("tf.compat.v1.nn.weighted_cross_entropy_with_logits", "binary_cross_entropy_with_logits", "tensorflow",
            "tf.compat.v1.nn.weighted_cross_entropy_with_logits(labels=target, logits=input{kw})",
            params={"pos_weight": "pos_weight"}, requires={"pos_weight": GIVEN}, fixed=NO_REDUCTION,
            stages=_MAX_LOG1P_EXP),
    # v1's softmax_cross_entropy_with_logits stops the gradient into the labels (nn_ops.py: "labels
    # ... no gradient", stop_gradient); its _v2 (the same as tf.nn's) lets it flow
    Binding("tf.compat.v1.nn.softmax_cross_entropy_with_logits", "softmax_cross_entropy_soft", "tensorflow",
            "tf.compat.v1.nn.softmax_cross_entropy_with_logits(labels=target, logits=input)", fixed=NO_REDUCTION,
            conventions={"label_gradient": "stopped"}, stages=_TF_XENT),
    Binding("tf.compat.v1.nn.softmax_cross_entropy_with_logits_v2", "softmax_cross_entropy_soft", "tensorflow",
            "tf.compat.v1.nn.softmax_cross_entropy_with_logits_v2(labels=target, logits=input)", fixed=NO_REDUCTION,
            stages=_TF_XENT),
    Binding("tf.compat.v1.nn.sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy", "tensorflow",
            "tf.compat.v1.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=input)",
            fixed=NO_REDUCTION, conventions={"invalid_label": _INVALID, "float_labels": "TypeError"},
            stages=_TF_XENT),
    # -- tensorflow (tf.compat.v1.losses: weights and reductions, bindings.tf_v1_loss) --
    # sigmoid_cross_entropy: labels * (1 - s) + 0.5 s, then tf.nn.sigmoid_cross_entropy_with_logits, elementwise
    tf_v1_loss("sigmoid_cross_entropy", "binary_cross_entropy_with_logits", "multi_class_labels", "logits",
               params=_SMOOTH, stages=_MAX_LOG1P_EXP),
    # softmax_cross_entropy: labels * (1 - s) + s / C, stop_gradient on them, then
    # tf.nn.softmax_cross_entropy_with_logits_v2: one loss per sample
    tf_v1_loss("softmax_cross_entropy", "softmax_cross_entropy_soft", "onehot_labels", "logits",
               params=_SMOOTH, conventions={"label_gradient": "stopped"}, stages=_TF_XENT),
    # sparse_softmax_cross_entropy squeezes the last axis of a weight one rank above the labels ((N, 1))
    tf_v1_loss("sparse_softmax_cross_entropy", "softmax_cross_entropy", "labels", "logits",
               conventions={"invalid_label": _INVALID, "weighting": "tf_v1_squeeze", "float_labels": "TypeError"},
               stages=_TF_XENT),
    # log_loss: -y log(p + epsilon) - (1 - y) log(1 - p + epsilon) elementwise, epsilon=1e-7 added inside the
    # logs (no clip: log_shift); predictions and labels cast to float32 first (losses_impl.py), so it computes in
    # and returns float32 (computes_in); epsilon is held at its default (parameter_exclusions.py)
    tf_v1_loss("log_loss", "binary_cross_entropy", "labels", "predictions", conventions={"log_shift": 1e-7},
               computes_in="float32"),
    # -- jax (optax.losses, 0.2: optax/losses/_classification.py) --
    # softmax_cross_entropy multiplies labels * log_softmax(logits) as IEEE floats, so a -inf
    # logit with label 0 gives NaN; safe_softmax_cross_entropy is documented to take that term
    # as 0 (0 log 0 = 0).
    optax_loss("sigmoid_binary_cross_entropy", "binary_cross_entropy_with_logits", stages=_LOG_SIGMOID),
    optax_loss("softmax_cross_entropy", "softmax_cross_entropy_soft", params=AXIS_WHERE, stages=_LOG_SOFTMAX),
    optax_loss("safe_softmax_cross_entropy", "softmax_cross_entropy_soft", stages=_LOG_SOFTMAX),
    # optax/losses/_fenchel_young.py, v0.2.8: make_fenchel_young_loss(max_fun) maps max_fun and vdot
    # over the last axis; bound with the log-sum-exp of its docstring's example
    Binding("optax.losses.make_fenchel_young_loss", "fenchel_young_logsumexp", "jax",
            "optax.losses.make_fenchel_young_loss(max_fun=jax.scipy.special.logsumexp)(input, target{kw})",
            fixed=NO_REDUCTION, stages=ce.FENCHEL_YOUNG_STAGES),
    # softmax_cross_entropy_with_integer_labels gathers the target logit with
    # jnp.take_along_axis in its default mode="fill": a label >= C reads NaN, so the loss is NaN
    # and nothing is raised. Labels in [-C, 0) are wrapped NumPy-style (-1 is class C - 1;
    # take_along_axis's legacy wrap_negative_indices): the oracle's invalid_label="wrap_negative".
    # Float labels raise TypeError (utils.check_subdtype(labels, jnp.integer), in eager and jit alike).
    optax_loss("softmax_cross_entropy_with_integer_labels", "softmax_cross_entropy", params=AXIS_WHERE,
               conventions={"invalid_label": "wrap_negative", "float_labels": "TypeError"}, stages=("logsumexp",)),
    # -- keras --
    *keras_pair("BinaryCrossentropy", "binary_crossentropy", "binary_cross_entropy", "from_logits=False",
                params=_SMOOTH, conventions={"prob_eps": KERAS_EPS, "sample_axis": "mean"}, backends=_KERAS_BCE_PROBS,
                stages=_BCE_PROBS, sample_weight=True),
    *keras_pair("BinaryCrossentropy", "binary_crossentropy", "binary_cross_entropy_with_logits", "from_logits=True",
                params=_SMOOTH, conventions={"sample_axis": "mean"}, stages=_KERAS_BCE_LOGITS, sample_weight=True),
    *keras_pair("CategoricalCrossentropy", "categorical_crossentropy", "categorical_cross_entropy",
                "from_logits=False", params=_SMOOTH,
                conventions={"prob_eps": KERAS_EPS, "renormalize": "before_clip"}, stages=_KERAS_PROBS,
                backends=_JNP_CLIP, sample_weight=True),
    *keras_pair("CategoricalCrossentropy", "categorical_crossentropy", "softmax_cross_entropy_soft",
                "from_logits=True", params=_SMOOTH, stages=_KERAS_LOGITS, sample_weight=True),
    *keras_pair("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
                "sparse_categorical_cross_entropy", "from_logits=False", params=_IGNORE,
                conventions={"prob_eps": KERAS_EPS, "renormalize": "after_clip", "zero_division": "zero",
                             "invalid_label": "InvalidArgumentError"}, backends=_SPARSE_PROBS,
                stages=_KERAS_PROBS, sample_weight=True),
    *keras_pair("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
                "softmax_cross_entropy", "from_logits=True", params=_IGNORE,
                conventions={"zero_division": "zero", "invalid_label": "InvalidArgumentError"},
                backends=_SPARSE_LOGITS, stages=_KERAS_LOGITS, sample_weight=True),
]
# fmt: on


def _class_weighted(b: Binding) -> Binding:
    """Keras' class weights as users pass them: ``Model.fit(class_weight=...)`` gives the loss
    ``sample_weight = class_weight[y]`` (``keras/src/trainers/data_adapters/data_adapter_utils.py``,
    ``class_weight_to_sample_weights``). Bound to the spec's class ``weight``, so that torch's
    ``weight`` and Keras' are one case: Keras' mean divides by the number of samples
    (``mean_by="elements"``), torch's by the targets' weights (``mean_by="weights"``)."""
    return replace(
        b,
        id=f"{b.id}+class_weight",  # no parentheses: explain reads those as a call
        call=b.call.replace("{call_kw}", ", sample_weight=keras.ops.take(weight, target)"),
        params=REDUCTION,
        values=KERAS_VALUES,
        call_keywords=(),
        requires={"weight": GIVEN},
        conventions={**b.conventions, "mean_by": "elements"},
    )


# the class form of SparseCategoricalCrossentropy(from_logits=True), the last binding above
BINDINGS.append(_class_weighted(BINDINGS[-2]))

# What each binding documents for an integer target (issue 19; convention int_targets, plain "promote": computed in
# the input's float dtype). PyTorch's binary_cross_entropy requires the target's dtype to be the input's
# (RuntimeError "Found dtype Long but expected Float", pytorch/pytorch#842, #45373), and
# binary_cross_entropy_with_logits writes into the target's dtype (RuntimeError "result type Float can't be cast to
# the desired output type Long", pytorch/pytorch#40357: "expects both preds and labels to be floating point").
# tf.nn.sigmoid_cross_entropy_with_logits documents labels "of the same type and shape as logits": in a graph the
# Mul op's definition refuses int64 (TypeError); eagerly the same check is an InvalidArgumentError
# (tensorflow/tensorflow#22224; known entry tf-sigmoid-xent-int-target-eager-invalid-argument). tf.compat.v1.nn's
# is the same function (listed here, not on its binding line, which is tf.compat.v1's). Keras casts y_true to
# y_pred's dtype, optax (jnp) and tf.compat.v1.losses (a cast to the logits' dtype) promote: the plain reading.
_INT_TARGETS = {
    "torch.nn.functional.binary_cross_entropy": "RuntimeError",
    "torch.nn.BCELoss": "RuntimeError",
    "torch.nn.functional.binary_cross_entropy_with_logits": "RuntimeError",
    "torch.nn.BCEWithLogitsLoss": "RuntimeError",
    "tf.nn.sigmoid_cross_entropy_with_logits": "TypeError",
    "tf.compat.v1.nn.sigmoid_cross_entropy_with_logits": "TypeError",
}
BINDINGS = with_convention(BINDINGS, "int_targets", _INT_TARGETS, INT_TARGETS)

# Keras' channels-first calls (issue 19): each Keras binding above (not the class-weight one, which gathers
# along the last axis) with axis=1 on (N, C, d1, ...) arrays, the class axis where torch has it
# The sparse ones on the TensorFlow backend raise ValueError("Only axis=-1 is currently supported") for a class
# axis other than the last (keras/src/backend/tensorflow/nn.py, v3.15.1, sparse_categorical_crossentropy): a
# documented limit of that backend, the convention last_axis_only. (The JAX and NumPy backends check the labels'
# shape against the input's without its last axis whatever the axis: keras-team/keras#21097, a known entry.)
_TF_LAST_AXIS_ONLY = {"tensorflow": {"last_axis_only": "ValueError"}}
BINDINGS += [
    keras_channels_first(b, _TF_LAST_AXIS_ONLY if b.spec in LAST_AXIS_ONLY else None)
    for b in BINDINGS
    if b.framework == "keras" and "+" not in b.id
]
