"""Classification losses beyond cross-entropy: focal (binary on probabilities and on logits,
categorical), PolyLoss, generalized cross-entropy, and the binary and multiclass sparsemax
losses. Oracles in ``reference/classification.py``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from lossparity.conformance.bindings import (
    AXIS_WHERE,
    KERAS_EPS,
    keras_channels_first,
    keras_pair,
    keras_sample_weight,
    optax_axis_where,
    optax_loss,
)
from lossparity.conformance.edges import edge
from lossparity.conformance.generate import (
    CLASS_MENU,
    FLAG,
    SHAPE_MENU,
    _set,
    arrays,
    batch_shapes,
    case_strategy,
    floats,
    pick,
    pick_shape,
    reductions,
)
from lossparity.core.model import GIVEN, PROBABILITY, Binding, Spec
from lossparity.reference import classification as cl

INF = float("inf")
GAMMAS = [2.0, 2.0, 0.0, 0.5, 1.0, 3.0]  # 0: plain cross-entropy; < 1: infinite slope at m = 0
ALPHAS = [0.25, 0.5, 0.75, 0.0, 1.0]  # 0 and 1 silence one class entirely


def _soft_or_hard(draw, shape, n=None):
    """Binary targets: hard {0, 1} or soft in [0, 1]."""
    if draw(st.booleans()):
        return draw(arrays(shape, st.sampled_from([0.0, 1.0])))
    return draw(arrays(shape, floats(0, 1)))


def _distribution(draw, shape):
    """Probability vectors over the last axis: one-hot or soft (an all-zero draw: uniform)."""
    n = shape[-1]
    if draw(st.booleans()):
        idx = draw(arrays(shape[:-1], st.integers(0, n - 1), dtype=np.int64))
        return (np.arange(n) == idx[..., None]).astype(np.float64)
    raw = draw(arrays(shape, floats(0, 1)))
    sums = raw.sum(axis=-1, keepdims=True)
    return np.where(sums > 0, raw / np.where(sums > 0, sums, 1), 1.0 / n)


@case_strategy
def binary_focal(draw, logits: bool):
    shape = draw(batch_shapes(min_dims=1))
    x = draw(arrays(shape, floats(-20, 20) if logits else floats(0, 1)))
    y = _soft_or_hard(draw, shape)
    params = {"reduction": draw(reductions())}
    _set(params, "apply_class_balancing", draw(pick(FLAG)), False)
    if draw(pick(FLAG)):
        params["alpha"] = draw(pick(ALPHAS))
    _set(params, "gamma", draw(pick(GAMMAS)), 2.0)
    _set(params, "label_smoothing", draw(pick([0.0, 0.0, 0.1])), 0.0)
    return {"input": x, "target": y}, params


@case_strategy
def categorical_focal(draw):
    shape = draw(batch_shapes()) + (draw(pick_shape(CLASS_MENU)),)
    from_logits = draw(pick(FLAG))
    if from_logits:
        x = draw(arrays(shape, floats(-15, 15)))
    else:
        raw = draw(arrays(shape, floats(0.001, 1)))
        x = raw / raw.sum(axis=-1, keepdims=True)
    params = {"reduction": draw(reductions())}
    _set(params, "from_logits", from_logits, False)
    which = draw(pick(["default", "alpha", "weight"]))
    if which == "alpha":
        params["alpha"] = draw(pick([1.0, 0.5, 0.0]))
    elif which == "weight":  # Keras' alpha as a list, one factor per class
        params["weight"] = draw(arrays(shape[-1:], floats(0.25, 4)))
    _set(params, "gamma", draw(pick(GAMMAS)), 2.0)
    _set(params, "label_smoothing", draw(pick([0.0, 0.0, 0.1])), 0.0)
    return {"input": x, "target": _distribution(draw, shape)}, params


@case_strategy
def poly_loss(draw):
    shape = draw(batch_shapes()) + (draw(pick_shape(CLASS_MENU)),)
    x = draw(arrays(shape, floats(-15, 15)))
    params = {"reduction": draw(reductions())}
    _set(params, "epsilon", draw(pick([2.0, 2.0, -1.0, 0.0, 1.0, 5.0])), 2.0)
    return {"input": x, "target": _distribution(draw, shape)}, params


@case_strategy
def generalized_ce(draw):
    shape = draw(batch_shapes())
    n = draw(pick_shape(CLASS_MENU))
    raw = draw(arrays(shape + (n,), floats(0.01, 1)))
    x = raw / raw.sum(axis=-1, keepdims=True)
    t = draw(arrays(shape, st.integers(0, n - 1), dtype=np.int64))
    # q is always given: Keras' function form has no default for it
    params = {"reduction": draw(reductions()), "q": draw(pick([0.5, 0.1, 0.9, 0.7, 1e-3]))}
    return {"input": x, "target": t}, params


@case_strategy
def binary_sparsemax(draw):
    shape = draw(batch_shapes())
    # scores around the joints of sparse_plus at +-1, on a grid of 1/4 half the time (the
    # joints themselves)
    x = draw(arrays(shape, floats(-3, 3)))
    if draw(st.booleans()):
        x = np.round(x * 4.0) / 4.0
    y = draw(arrays(shape, st.sampled_from([0.0, 1.0])))
    return {"input": x, "target": y}, {"reduction": draw(reductions())}


@case_strategy
def multiclass_sparsemax(draw):
    # optax vmaps over the first axis: a batch of vectors, (N, C), nothing else
    shape = draw(pick_shape(SHAPE_MENU[1])) + (draw(pick_shape(CLASS_MENU)),)
    x = draw(arrays(shape, floats(-3, 3)))
    if draw(st.booleans()):  # a half grid: ties, and scores exactly at the support's edge
        x = np.round(x * 2.0) / 2.0
    t = draw(arrays(shape[:-1], st.integers(0, shape[-1] - 1), dtype=np.int64))
    return {"input": x, "target": t}, {"reduction": draw(reductions())}


# fmt: off
BINARY_FOCAL = [
    edge("keras-doc", "Keras' docstring: [[0, 1], [0, 0]] / [[0.6, 0.4], [0.4, 0.6]] with gamma 2 is [0.330, 0.206]",
         [[0.6, 0.4], [0.4, 0.6]], [[0.0, 1.0], [0.0, 0.0]], reduction="none"),
    edge("gamma-zero", "gamma 0: the focal factor is 1, the loss is the binary cross-entropy",
         [[0.3, 0.8, 0.5]], [[1.0, 0.0, 0.5]], gamma=0.0, reduction="none"),
    edge("alpha-zero", "alpha 0 with class balancing: positives cost nothing, negatives in full",
         [0.3, 0.8], [1.0, 0.0], apply_class_balancing=True, alpha=0.0, reduction="sum"),
    edge("alpha-one", "alpha 1 with class balancing: negatives cost nothing",
         [0.3, 0.8], [1.0, 0.0], apply_class_balancing=True, alpha=1.0, reduction="sum"),
    edge("p-exact", "p exactly 0 and 1: the logs need the 1e-7 clip, the focal factor is 0 or 1",
         [0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0], reduction="none"),
    edge("gamma-half-confident", "gamma 0.5 at a right, confident p: m = 0 and m^(gamma-1) is infinite",
         [0.0, 1.0], [0.0, 1.0], gamma=0.5, reduction="none"),
    edge("smoothed", "label smoothing 0.2 squeezes the targets to 0.1 and 0.9 (towards 1/2)",
         [[0.2, 0.9]], [[0.0, 1.0]], label_smoothing=0.2),
]
# fmt: on

# fmt: off
BINARY_FOCAL_LOGITS = [
    edge("saturated", "logits +-100: sigmoid is 0 or 1 in every float type; Keras' clip costs -log(1e-7)",
         [100.0, -100.0, 100.0, -100.0], [1.0, 0.0, 0.0, 1.0], reduction="none"),
    edge("saturated-gamma-zero", "logits +-100 at gamma 0: the binary cross-entropy with logits",
         [100.0, -100.0, 100.0, -100.0], [1.0, 0.0, 0.0, 1.0], gamma=0.0, reduction="none"),
    edge("gamma-zero", "gamma 0, moderate logits: the focal factor is exactly 1",
         [[1.5, -0.5, 0.0]], [[1.0, 0.0, 0.5]], gamma=0.0, reduction="none"),
    edge("alpha-zero", "alpha 0 with class balancing (optax: alpha given): positives cost nothing",
         [2.0, -1.0], [1.0, 0.0], apply_class_balancing=True, alpha=0.0, reduction="none"),
    edge("alpha-one", "alpha 1 with class balancing: negatives cost nothing",
         [2.0, -1.0], [1.0, 0.0], apply_class_balancing=True, alpha=1.0, reduction="none"),
    edge("soft-labels", "soft labels: optax takes log(1 - p_t) by a weighted log-sum-exp",
         [[3.0, -3.0], [0.25, 40.0]], [[0.3, 0.7], [0.5, 0.9]], gamma=1.0, reduction="none"),
    edge("gamma-half", "gamma 0.5 below 1: the focal slope grows as 1/sqrt(m) at confident logits",
         [12.0, -12.0], [1.0, 0.0], gamma=0.5, reduction="none"),
    edge("sigmoid-below-clip-bound", "logit 15.9: the exact sigmoid 1 - 1.24e-7 lies just below Keras' clip bound "
         "1 - 1e-7, and its float32 rounding is that bound exactly (a tie of the clip)",
         [15.9], [0.0], gamma=0.0, reduction="none"),
]
# fmt: on

# fmt: off
CATEGORICAL_FOCAL = [
    edge("keras-doc", "Keras' docstring: [[0, 1, 0], [0, 0, 1]] / [[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]] "
         "is [2.634e-4, 0.6759]",
         [[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]], [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], reduction="none"),
    edge("gamma-zero-alpha-one", "gamma 0 and alpha 1: the categorical cross-entropy",
         [[0.2, 0.3, 0.5]], [[0.0, 0.0, 1.0]], gamma=0.0, alpha=1.0, reduction="none"),
    edge("zero-prob-target", "probability 0 on the target class: the clip at 1e-7 bounds the log",
         [[0.0, 1.0]], [[1.0, 0.0]], reduction="none"),
    edge("unnormalized", "probabilities that do not sum to 1 are renormalized first",
         [[0.2, 0.2, 0.6], [1.0, 2.0, 1.0]], [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], reduction="none"),
    edge("logits-saturated", "logits +-100 from_logits: softmax is one-hot, the clip bounds the log",
         [[100.0, -100.0], [-100.0, 100.0]], [[1.0, 0.0], [1.0, 0.0]], from_logits=True, reduction="none"),
    edge("alpha-per-class", "a per-class alpha (Keras' alpha as a list) scales each class's term",
         [[0.1, 0.3, 0.6]], [[0.2, 0.3, 0.5]], weight=[0.5, 1.0, 2.0], reduction="none"),
    edge("alpha-zero", "alpha 0: every term vanishes", [[0.1, 0.9]], [[1.0, 0.0]], alpha=0.0),
]
# fmt: on

# fmt: off
POLY_LOSS = [
    edge("epsilon-zero", "epsilon 0: the softmax cross-entropy",
         [[2.0, -1.0, 3.0]], [[0.0, 0.0, 1.0]], epsilon=0.0, reduction="none"),
    edge("epsilon-minus-one", "epsilon -1 (the paper's detection setting): ce - (1 - p_t), still >= 0",
         [[2.0, -1.0, 3.0], [0.0, 0.0, 0.0]], [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]], epsilon=-1.0, reduction="none"),
    edge("saturated", "logits +-100: p_t within 1e-87 of 1 keeps 1 - p_t as expm1 of log p_t",
         [[100.0, -100.0], [-100.0, 100.0]], [[1.0, 0.0], [1.0, 0.0]], reduction="none"),
    edge("unnormalized", "targets that do not sum to 1 are used as given",
         [[1.0, 2.0]], [[0.7, 0.7]], reduction="none"),
]
# fmt: on

# fmt: off
GENERALIZED_CE = [
    edge("keras-doc", "Keras' docstring example with its default q = 0.5",
         [[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]], np.array([0, 1, 0, 1])),
    edge("q-one", "q = 1: 1 - p_y (mean absolute error); Keras' class form rejects q outside (0, 1)",
         [[0.7, 0.3], [0.2, 0.8]], np.array([1, 1]), q=1.0, reduction="none"),
    edge("q-tiny", "q = 1e-6: within 1e-6 of the cross-entropy -log p_y; 1 - p^q would cancel",
         [[0.7, 0.3], [0.999, 0.001]], np.array([0, 1]), q=1e-6, reduction="none"),
    edge("q-zero", "q = 0: 0/0 as written (NaN), or a ValueError from the class form",
         [[0.7, 0.3]], np.array([0]), q=0.0, reduction="none"),
    edge("p-zero", "probability 0 on the target class costs 1/q; the slope -p^(q-1) is infinite",
         [[0.0, 1.0]], np.array([0]), q=0.5, reduction="none"),
]
# fmt: on

# fmt: off
BINARY_SPARSEMAX = [
    edge("joints", "scores exactly at the joints of sparse_plus (+-1) and in between",
         [-1.0, 1.0, 0.0, -1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0, 1.0, 1.0], reduction="none"),
    edge("saturated", "scores +-100: 0 on the right side, linear on the wrong one",
         [100.0, -100.0, 100.0, -100.0], [1.0, 0.0, 0.0, 1.0], reduction="none"),
]
# fmt: on

# fmt: off
MULTICLASS_SPARSEMAX = [
    edge("all-equal", "all-equal scores: sparsemax is uniform, the loss (1 - 1/C)/2",
         [[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]], np.array([0, 2]), reduction="none"),
    edge("tie-top", "two tied top scores share the mass; a third at the support's edge gets 0",
         [[1.0, 1.0, 0.0], [2.0, 2.0, 1.0]], np.array([0, 2]), reduction="none"),
    edge("one-hot", "a margin of 1 or more: sparsemax is one-hot, the loss 0 on the right label",
         [[3.0, 1.0, 0.0], [3.0, 2.0, -1.0]], np.array([0, 1]), reduction="none"),
    edge("saturated", "scores +-100: one-hot sparsemax, a loss of 200 on a wrong label",
         [[100.0, -100.0], [-100.0, 100.0]], np.array([0, 0]), reduction="none"),
]
# fmt: on


_FOCAL_DEFAULTS = {
    "apply_class_balancing": False,
    "alpha": 0.25,
    "gamma": 2.0,
    "label_smoothing": 0.0,
    "reduction": "mean",
}

# fmt: off
SPECS: list[Spec] = [
    Spec("binary_focal_cross_entropy",
         "binary focal cross-entropy on probabilities: alpha_t (1 - p_t)^gamma BCE",
         cl.binary_focal_cross_entropy, _FOCAL_DEFAULTS, ("prob_eps", "sample_axis", "clip_tie"),
         binary_focal(logits=False), BINARY_FOCAL, classes=False,
         gradient=cl.binary_focal_cross_entropy_grad,
         error_model=cl.binary_focal_cross_entropy_error, stages=cl.BINARY_FOCAL_STAGES,
         domain={"input": PROBABILITY, "target": PROBABILITY}),
    Spec("binary_focal_cross_entropy_with_logits",
         "binary focal cross-entropy on logits: that of sigmoid(x)",
         cl.binary_focal_cross_entropy_with_logits, _FOCAL_DEFAULTS, ("prob_eps", "sample_axis", "clip_tie"),
         binary_focal(logits=True), BINARY_FOCAL_LOGITS, classes=False,
         gradient=cl.binary_focal_cross_entropy_with_logits_grad,
         error_model=cl.binary_focal_cross_entropy_with_logits_error,
         stages=(*cl.SIGMOID_FOCAL_STAGES, *cl.KERAS_SIGMOID_FOCAL_STAGES),
         domain={"target": PROBABILITY}),
    Spec("categorical_focal_cross_entropy",
         "categorical focal cross-entropy: sum_c alpha_c (1 - q_c)^gamma (-y_c log q_c)",
         cl.categorical_focal_cross_entropy,
         {"alpha": 0.25, "weight": None, "gamma": 2.0, "from_logits": False, "label_smoothing": 0.0,
          "reduction": "mean"},
         ("prob_eps", "renormalize", "clip_tie"),
         categorical_focal(), CATEGORICAL_FOCAL, gradient=cl.categorical_focal_cross_entropy_grad,
         error_model=cl.categorical_focal_cross_entropy_error, stages=cl.FOCAL_STAGES),
    Spec("poly_loss_cross_entropy",
         "Poly-1 loss: softmax cross-entropy + epsilon (1 - p_t), probability targets",
         cl.poly_loss_cross_entropy, {"epsilon": 2.0, "reduction": "mean"}, (),
         poly_loss(), POLY_LOSS, gradient=cl.poly_loss_cross_entropy_grad,
         error_model=cl.poly_loss_cross_entropy_error, stages=cl.POLY_STAGES),
    Spec("categorical_generalized_cross_entropy",
         "generalized cross-entropy (1 - p_y^q) / q on probabilities, class-index targets",
         cl.categorical_generalized_cross_entropy, {"q": 0.5, "reduction": "mean"}, ("q_domain",),
         generalized_ce(), GENERALIZED_CE, target="index",
         gradient=cl.categorical_generalized_cross_entropy_grad,
         error_model=cl.categorical_generalized_cross_entropy_error, stages=cl.GCE_STAGES,
         domain={"input": PROBABILITY}),
    Spec("sparsemax_loss",
         "binary sparsemax loss: sparse_plus of the signed score, elementwise",
         cl.sparsemax_loss, {"reduction": "mean"}, (),
         binary_sparsemax(), BINARY_SPARSEMAX, classes=False,
         gradient=cl.sparsemax_loss_grad, wrt=("input",),
         error_model=cl.sparsemax_loss_error, stages=cl.SPARSE_PLUS_STAGES),
    Spec("multiclass_sparsemax_loss",
         "multiclass sparsemax loss: Fenchel-Young loss of sparsemax, class-index targets",
         cl.multiclass_sparsemax_loss, {"reduction": "mean"}, (),
         multiclass_sparsemax(), MULTICLASS_SPARSEMAX, target="index",
         gradient=cl.multiclass_sparsemax_loss_grad,
         error_model=cl.multiclass_sparsemax_loss_error, stages=cl.SPARSEMAX_PROJECTION_STAGES),
]
# fmt: on
SPECS = [optax_axis_where(s, keeps=("epsilon",)) if s.name == "poly_loss_cross_entropy" else s for s in SPECS]

#: The specs whose Keras classes take ``sample_weight`` (``bindings.keras_sample_weight``): each
#: per-sample loss (the last axis reduced) reads its own sample's row only.
KERAS_WEIGHTED = (
    "binary_focal_cross_entropy",
    "binary_focal_cross_entropy_with_logits",
    "categorical_focal_cross_entropy",
    "categorical_generalized_cross_entropy",
)
SPECS = [keras_sample_weight(s) if s.name in KERAS_WEIGHTED else s for s in SPECS]

# fmt: off
PARAMETERS: dict[str, object] = {
    "apply_class_balancing": bool,
    "alpha": float,
    "gamma": float,
    "from_logits": bool,
    "epsilon": float,
    "q": float,
}
# fmt: on


# ----------------------------------------------------------------------------- bindings
# Each framework's APIs of these specs (``conformance/bindings.py`` says how they are declared).

# keras
_FOCAL = {
    "apply_class_balancing": "apply_class_balancing",
    "alpha": "alpha",
    "gamma": "gamma",
    "label_smoothing": "label_smoothing",
}
_CAT_FOCAL = {"alpha": "alpha", "gamma": "gamma", "from_logits": "from_logits", "label_smoothing": "label_smoothing"}
# Keras' alpha as a per-class list is the spec's array parameter `weight`: one framework keyword cannot
# carry two spec parameters, so it is bound by a binding of its own (``_alpha_list``).

# fmt: off
BINDINGS: list[Binding] = [
    # -- jax (optax.losses) --
    # sigmoid_focal_loss balances the classes whenever alpha is given (its alpha defaults to
    # None): so, against the spec's Keras-shaped parameters, its own defaults are
    # apply_class_balancing=True with alpha=None (which the oracle reads as no balancing). It
    # computes its log-sigmoids, log-sum-exp and exp in the logits' dtype (no upcast:
    # optax/losses/_classification.py, v0.2.8, L903-L927): the value's error model.
    optax_loss("sigmoid_focal_loss", "binary_focal_cross_entropy_with_logits",
               params={"alpha": "alpha", "gamma": "gamma"},
               defaults={"apply_class_balancing": True, "alpha": None}, stages=cl.SIGMOID_FOCAL_STAGES),
    # softmax, 1 - p, log_softmax, the products and sums, each in the logits' dtype (no upcast:
    # optax/losses/_classification.py, v0.2.8, L520-L525, and jax.nn.log_softmax / softmax in
    # jax/_src/nn/functions.py): the log_softmax stage of the Poly-1 error model.
    optax_loss("poly_loss_cross_entropy", "poly_loss_cross_entropy", params={"epsilon": "epsilon", **AXIS_WHERE},
               stages=cl.POLY_STAGES),
    # jax.nn.sparse_plus's (z + 1)**2 / 4 in the scores' dtype (no upcast: optax/losses/
    # _classification.py, v0.2.8, sparsemax_loss; jax/_src/nn/functions.py, sparse_plus)
    optax_loss("sparsemax_loss", "sparsemax_loss", stages=cl.SPARSE_PLUS_STAGES),
    # under x64 the simplex projection's prefix sum, tau and x - tau stay in the scores' dtype
    # (optax/projections/_projections.py: the int64 support size promotes to it; 1 / k is float64)
    optax_loss("multiclass_sparsemax_loss", "multiclass_sparsemax_loss", stages=cl.SPARSEMAX_PROJECTION_STAGES),
    # -- keras --
    # on probabilities: the cast, clip, logs, 1 - p_t, power and products in the compute dtype (no
    # upcast: keras/src/losses/losses.py, v3.15.1, L2497-L2520; the jax and tensorflow backends'
    # binary_crossentropy); torch's is F.binary_cross_entropy's kernel and backward: not modelled.
    # ops.clip is jnp.clip on JAX, which passes half the slope at a bound (clip_tie).
    *keras_pair("BinaryFocalCrossentropy", "binary_focal_crossentropy", "binary_focal_cross_entropy",
                "from_logits=False", params=_FOCAL, conventions={"prob_eps": KERAS_EPS, "sample_axis": "mean"},
                backends={"jax": {"clip_tie": "split"}},
                stages={"jax": cl.BINARY_FOCAL_STAGES, "tensorflow": cl.BINARY_FOCAL_STAGES, "torch": ()},
                sample_weight=True),
    # from_logits=True takes ops.sigmoid and then the probability form, clip included; on the
    # TensorFlow backend that sigmoid carries its logits (_keras_logits) and
    # ops.binary_crossentropy uses tf.nn.sigmoid_cross_entropy_with_logits instead: no clip. On
    # JAX and torch the clip is decided on the sigmoid rounded to the compute dtype: the sigmoid
    # stage (cl.keras_sigmoid_focal_error); the probability form's own rounding is modelled on JAX.
    *keras_pair("BinaryFocalCrossentropy", "binary_focal_crossentropy", "binary_focal_cross_entropy_with_logits",
                "from_logits=True", params=_FOCAL, conventions={"prob_eps": KERAS_EPS, "sample_axis": "mean"},
                backends={"tensorflow": {"prob_eps": None}, "jax": {"clip_tie": "split"}},
                stages={"jax": cl.KERAS_SIGMOID_FOCAL_STAGES, "torch": ("sigmoid",), "tensorflow": (), "numpy": ()},
                sample_weight=True),
    # categorical_focal_crossentropy: softmax (from_logits), output / sum(output), ops.clip, log,
    # power(1 - output, gamma) and the products and sum, each in the input's dtype (no upcast:
    # keras/src/losses/losses.py, v3.15.1, L2284-L2303); ops.clip is jnp.clip on JAX (clip_tie).
    *keras_pair("CategoricalFocalCrossentropy", "categorical_focal_crossentropy", "categorical_focal_cross_entropy",
                params=_CAT_FOCAL, conventions={"prob_eps": KERAS_EPS, "renormalize": "before_clip"},
                backends={"jax": {"clip_tie": "split"}}, stages=cl.FOCAL_STAGES, sample_weight=True),
    # (1 - ops.power(p, q)) / q in the input's dtype, q a Python float rounded to it (no upcast:
    # keras/src/losses/losses.py, v3.15.1, L2782-L2791): the power stage of the error model.
    *keras_pair("CategoricalGeneralizedCrossEntropy", None, "categorical_generalized_cross_entropy",
                params={"q": "q"}, conventions={"q_domain": "ValueError"}, stages=cl.GCE_STAGES, sample_weight=True),
    # the function form has no default q
    *keras_pair(None, "categorical_generalized_cross_entropy", "categorical_generalized_cross_entropy",
                params={"q": "q"}, requires={"q": GIVEN}, stages=cl.GCE_STAGES),
]
# fmt: on


def _alpha_list(b: Binding) -> Binding:
    """Keras' categorical focal loss with ``alpha`` given as a list, one factor per class: ``alpha``
    is multiplied into the (..., C) terms, so a (C,) alpha broadcasts over the class axis
    (``keras/src/losses/losses.py``, v3.15.1, ``ops.multiply(modulating_factor, alpha)``). It is
    the spec's per-class ``weight``; the binding takes only the cases that pass one (the plain
    binding of the same API checks the scalar ``alpha``)."""
    params = {k: v for k, v in b.params.items() if k != "alpha"}
    return replace(b, id=f"{b.id}+alpha_list", params={**params, "weight": "alpha"}, requires={"weight": GIVEN})


# the class and function forms of CategoricalFocalCrossentropy, each with a per-class alpha
BINDINGS += [_alpha_list(b) for b in BINDINGS if b.spec == "categorical_focal_cross_entropy"]

# Keras' channels-first calls (issue 19): the focal losses (not the per-class alpha forms, whose alpha indexes
# the last axis, nor the generalized cross-entropy, which has no axis) with axis=1 on (N, C, d1, ...) arrays
BINDINGS += [
    keras_channels_first(b)
    for b in BINDINGS
    if b.framework == "keras" and "+" not in b.id and b.spec != "categorical_generalized_cross_entropy"
]
