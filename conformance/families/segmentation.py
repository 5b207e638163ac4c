"""Segmentation overlap losses (Dice, Tversky, optax's generalized Dice) and the listwise ranking softmax loss.

Oracles in ``reference/segmentation.py``. Dice and Tversky share one oracle (Dice is the
Tversky index at alpha = beta = 1/2), so a Dice binding and a Tversky binding differ only by
their declared smoothing conventions.
"""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import strategies as st

from lossparity.conformance.bindings import (
    KERAS_EPS,
    NO_REDUCTION,
    OPTAX,
    Source,
    keras_pair,
    keras_sample_weight,
    optax_loss,
)
from lossparity.conformance.edges import edge
from lossparity.conformance.generate import (
    CLASS_MENU,
    FLAG,
    _set,
    arrays,
    batch_shapes,
    case_strategy,
    domain,
    floats,
    pick,
    pick_shape,
    reductions,
)
from lossparity.core.model import Binding, Spec
from lossparity.reference import segmentation as seg

# ----------------------------------------------------------------------------- strategies


def _inner_axes(ndim):
    """Non-empty sets of axes that leave the last (class) axis alone: what every binding reads alike."""
    axes = range(ndim - 1)
    return [c for r in range(1, ndim) for c in itertools.combinations(axes, r)]


@case_strategy
def overlap(draw, tversky: bool = False):
    """Masks (..., C) with one of three readings of the input: unset ``from_logits`` (values in
    [0, 1], read as probabilities by Keras and as logits by optax's default), logits, or
    probability rows summing to 1 (optax's ``apply_softmax=False`` checks that). In the domain bucket
    (``generate.domain``) an ``axis`` in the plain structure: every axis but the class axis, which Keras'
    ``dice`` and ``tversky`` functions take (the standard buckets draw an axis beside a parameter those
    functions have no keyword for: ``sample_weight``, ``weight``, ``ignore_background``)."""
    shape = draw(batch_shapes(min_dims=0, max_dims=2)) + (draw(pick_shape(CLASS_MENU)),)
    params = {"reduction": draw(reductions())}
    how = draw(pick(["unset", "unset", "logits", "rows"]))
    if how == "logits":
        x = draw(arrays(shape, floats(-10, 10)))
        params["from_logits"] = True
    elif how == "rows":
        raw = draw(arrays(shape, floats(0.01, 1)))
        x = raw / raw.sum(axis=-1, keepdims=True)
        params["from_logits"] = False
    else:
        x = draw(arrays(shape, floats(0, 1)))
    kind = draw(st.sampled_from(["hard", "soft", "one-hot"]))
    if kind == "one-hot":
        t = np.eye(shape[-1])[draw(arrays(shape[:-1], st.integers(0, shape[-1] - 1), dtype=np.int64))]
    else:
        t = draw(arrays(shape, st.sampled_from([0.0, 1.0]) if kind == "hard" else floats(0, 1)))
    if len(shape) >= 2 and draw(pick(FLAG)):
        params["axis"] = draw(pick(_inner_axes(len(shape))))
    if draw(pick([False, False, True])):
        params["smooth"] = draw(pick([0.0, 1.0, 1e-5]))
    if draw(pick([False, False, False, True])):
        params["weight"] = draw(arrays(shape[-1:], floats(0.25, 4)))
    if draw(pick([False, False, False, True])):
        params["ignore_background"] = True
    _set(params, "class_reduction", draw(pick(["none", "none", "mean", "sum"])), "none")
    if tversky:
        # alpha = beta only: Keras' Tversky swaps alpha and beta (keras-team/keras#23333), so
        # asymmetric weights live in the edge table, where the known deviation names them
        ab = draw(pick([0.5, 0.5, 0.3, 0.7, 1.0]))
        _set(params, "alpha", ab, 0.5)
        _set(params, "beta", ab, 0.5)
    if draw(domain(("plain", "axis"))) == "axis" and len(shape) >= 2:
        params["axis"] = _inner_axes(len(shape))[-1]  # every axis but the class axis
    return {"input": x, "target": t}, params


@case_strategy
def generalized(draw):
    shape = draw(batch_shapes(min_dims=1, max_dims=2)) + (draw(pick_shape(CLASS_MENU)),)
    params = {}
    if draw(pick((True, False))):  # logits first: the default reading
        x = draw(arrays(shape, floats(-10, 10)))
    else:
        raw = draw(arrays(shape, floats(0.01, 1)))
        x = raw / raw.sum(axis=-1, keepdims=True)
        params["from_logits"] = False
    t = np.eye(shape[-1])[draw(arrays(shape[:-1], st.integers(0, shape[-1] - 1), dtype=np.int64))]
    if draw(st.booleans()):
        t = draw(arrays(shape, floats(0.05, 1)))  # soft masks: every class present
    _set(params, "smooth", draw(pick([1.0, 1.0, 0.5, 1e-3])), 1.0)
    if draw(pick([False, False, True])):
        params["ignore_background"] = True
    return {"input": x, "target": t}, params


@case_strategy
def ranking(draw):
    shape = draw(batch_shapes(min_dims=0, max_dims=2)) + (draw(pick_shape(CLASS_MENU)),)
    x = draw(arrays(shape, floats(-10, 10)))
    graded = draw(st.booleans())
    t = draw(arrays(shape, st.sampled_from([0.0, 1.0, 2.0, 3.0]) if graded else floats(0, 1)))
    mask = draw(st.sampled_from(["all", "some", "some"]))
    where = np.ones(shape, bool) if mask == "all" else draw(arrays(shape, st.booleans(), dtype=bool))
    params = {"reduction": draw(reductions())}
    if draw(pick(FLAG)):
        params["weight"] = draw(arrays(shape, floats(0.25, 4)))
    return {"input": x, "target": t, "where": where}, params


# ----------------------------------------------------------------------------- edge tables

# Keras' docstring example (keras/src/losses/losses.py, Dice): (2, 2, 2, 1) masks
_KX_TRUE = [[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]]
_KX_PRED = [[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]]

# fmt: off
DICE = [
    edge("keras-doc-axis", "Keras' Dice docstring: axis=(1, 2, 3) gives [0.5, 0.75757575]",
         _KX_PRED, _KX_TRUE, axis=(1, 2, 3), reduction="none"),
    edge("keras-doc-all", "Keras' Dice docstring: axis=None over everything gives 0.6164384",
         _KX_PRED, _KX_TRUE),
    edge("empty-masks", "all-zero prediction and target: 0/0 unless smoothed (Keras: eps in the "
         "denominator only, a loss of 1; optax apply_softmax=False rejects rows not summing to 1)",
         [[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]], axis=(0,), reduction="none"),
    edge("empty-masks-smooth", "empty masks with smooth=1: (0 + s) / (0 + s), a loss of 0",
         [[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]], axis=(0,), smooth=1.0, reduction="none"),
    edge("perfect-overlap", "p = t exactly (one-hot rows): 2I = P + T, a loss of 0 (Keras: eps/(2T+eps))",
         [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]],
         axis=(0,), from_logits=False, reduction="none"),
    edge("disjoint", "p and t never overlap (I = 0): a loss of exactly 1, whatever the eps",
         [[0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]], axis=(0,), from_logits=False, reduction="none"),
    edge("one-class-logits", "a class axis of one: optax applies a sigmoid, not a (constant) softmax",
         [[[2.0], [-1.0], [0.5]], [[-3.0], [4.0], [0.0]]], [[[1.0], [0.0], [1.0]], [[0.0], [1.0], [0.0]]],
         from_logits=True),
    edge("saturated-logits", "logits of +-30: probabilities 1 - 1e-13 and 1e-13, perfect overlap",
         [[30.0, -30.0], [-30.0, 30.0]], [[1.0, 0.0], [0.0, 1.0]], from_logits=True, axis=(0,)),
    edge("weighted-background", "class weights and class 0 dropped, mean over the other classes",
         [[[0.2, 0.8, 0.0], [0.6, 0.1, 0.3]]], [[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]],
         weight=[0.5, 2.0, 1.0], ignore_background=True, class_reduction="mean", from_logits=False),
    edge("soft-targets", "targets strictly inside (0, 1): sum t (1 - p) and T - I agree",
         [[0.3, 0.9], [0.6, 0.2]], [[0.25, 0.5], [0.75, 1.0]], reduction="sum"),
]
# fmt: on

# fmt: off
TVERSKY = [
    edge("asym-fp-heavy", "alpha=0.7 on false positives, beta=0.3 on false negatives: one FP, two FNs "
         "(Keras applies alpha to the FNs, keras-team/keras#23333)",
         [[1.0], [1.0], [0.0], [0.0]], [[1.0], [0.0], [1.0], [1.0]], alpha=0.7, beta=0.3, from_logits=False),
    edge("asym-fn-heavy", "alpha=0.2, beta=0.8 with soft predictions",
         [[0.9, 0.1], [0.4, 0.6], [0.3, 0.7]], [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]],
         alpha=0.2, beta=0.8, axis=(0,), from_logits=False, reduction="none"),
    edge("jaccard", "alpha = beta = 1 is the Jaccard (IoU) loss 1 - I / (P + T - I)",
         [[0.9, 0.1], [0.4, 0.6]], [[1.0, 0.0], [0.0, 1.0]], alpha=1.0, beta=1.0, axis=(0,)),
    edge("dice-relation", "alpha = beta = 0.5 is Dice: the same numbers as the dice spec's soft-targets row",
         [[0.3, 0.9], [0.6, 0.2]], [[0.25, 0.5], [0.75, 1.0]], reduction="sum"),
    edge("empty-masks", "all-zero masks: 0/0 unless smoothed; Keras' eps makes the loss 1",
         [[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]], axis=(0,), reduction="none"),
    edge("perfect-overlap", "p = t: no FP, no FN, a loss of 0",
         [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]], axis=(0,), from_logits=False, alpha=0.3, beta=0.3),
    edge("disjoint", "no overlap: I = 0, a loss of 1",
         [[0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]], axis=(0,), from_logits=False),
]
# fmt: on

# fmt: off
GENERALIZED_DICE = [
    edge("absent-class", "class 2 never in the target: weight 1 / (0 + eps) dominates (plain: an infinite weight)",
         [[[2.0, 0.5, -1.0], [0.0, 1.0, 0.3]]], [[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]),
    edge("balanced", "every class once: equal weights, the mean of the per-class Dice losses",
         [[[2.0, 0.5, -1.0], [0.0, 1.0, 0.3], [-1.0, 0.0, 2.0]]],
         [[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]], ignore_background=True),
    edge("probabilities", "apply_softmax=False with rows that sum to 1",
         [[[0.7, 0.3], [0.2, 0.8]], [[0.5, 0.5], [0.9, 0.1]]], [[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]],
         from_logits=False),
    edge("not-probabilities", "apply_softmax=False with rows not summing to 1: optax raises ValueError",
         [[[0.7, 0.7], [0.2, 0.8]]], [[[1.0, 0.0], [0.0, 1.0]]], from_logits=False),
]
# fmt: on

_B = np.array
# fmt: off
RANKING_SOFTMAX = [
    edge("optax-doc", "optax docstring: scores [2, 1, 3], labels [1, 0, 0] give 1.408",
         input=[2.0, 1.0, 3.0], target=[1.0, 0.0, 0.0], where=_B([True, True, True])),
    edge("optax-doc-where", "optax docstring: the batch with a where mask gives 0.497",
         input=[[2.0, 1.0, 0.0], [1.0, 0.5, 1.5]], target=[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
         where=_B([[True, True, False], [True, True, True]])),
    edge("where-all-false", "no valid item anywhere: every list is left out; optax's mean of nothing is 0",
         input=[[2.0, 1.0], [0.5, -1.0]], target=[[1.0, 0.0], [0.0, 1.0]], where=_B([[False, False], [False, False]])),
    edge("where-one-list-false", "one list with no valid item: it counts neither in the sum nor the mean",
         input=[[2.0, 1.0], [0.5, -1.0]], target=[[1.0, 0.0], [0.0, 1.0]], where=_B([[True, True], [False, False]]),
         reduction="none"),
    edge("tied-labels", "all labels equal: the loss is y * sum_i (logsumexp - s_i), no preferred item",
         input=[[0.5, -0.5, 2.0], [1.0, 1.0, 1.0]], target=[[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]],
         where=_B([[True, True, True], [True, True, True]]), reduction="none"),
    edge("tied-scores", "equal scores: a uniform softmax, loss sum(y) log L",
         input=[[3.0, 3.0, 3.0, 3.0]], target=[[2.0, 1.0, 0.0, 0.0]], where=_B([[True, True, True, True]]),
         reduction="sum"),
    edge("zero-labels", "no relevant item: every term is 0, and so is the gradient",
         input=[[0.3, 2.0]], target=[[0.0, 0.0]], where=_B([[True, True]])),
    edge("huge-scores", "scores of +-1e4: log-softmax must not overflow",
         input=[[1e4, -1e4, 0.0]], target=[[0.0, 1.0, 1.0]], where=_B([[True, True, True]]), reduction="none"),
    edge("weighted-masked", "weights multiply the labels; a masked item's weight and label are dropped",
         input=[[1.0, 2.0, 3.0]], target=[[1.0, 2.0, 1.0]], where=_B([[True, False, True]]), weight=[[2.0, 5.0, 0.5]],
         reduction="sum"),
]
# fmt: on

# ----------------------------------------------------------------------------- specs

_OVERLAP = {
    "smooth": 0.0,
    "axis": None,
    "weight": None,
    "ignore_background": False,
    "class_reduction": "none",
    "from_logits": False,
    "reduction": "mean",
}

# fmt: off
SPECS: list[Spec] = [
    Spec("dice", "soft Dice loss 1 - (2 sum p t + s) / (sum p + sum t + s) over the overlap axes",
         seg.dice, _OVERLAP, ("dice_eps", "smooth_form", "overlap_axes", "prob_check", "binary_channel"),
         overlap(), DICE, gradient=seg.dice_grad, wrt=("input",),
         error_model=seg.dice_error, stages=seg.OVERLAP_STAGES),
    Spec("tversky", "Tversky loss 1 - (I + s) / (I + alpha FP + beta FN + s); Dice at alpha = beta = 1/2",
         seg.tversky, {**_OVERLAP, "alpha": 0.5, "beta": 0.5}, ("dice_eps", "overlap_axes", "prob_check"),
         overlap(tversky=True), TVERSKY, gradient=seg.tversky_grad, wrt=("input",),
         error_model=seg.tversky_error, stages=seg.OVERLAP_STAGES),
    Spec("generalized_dice", "mean of per-class Dice losses weighted by inverse squared target mass (optax)",
         seg.generalized_dice, {"smooth": 0.0, "from_logits": False, "ignore_background": False, "reduction": "mean"},
         ("weight_eps", "smooth_form", "overlap_axes", "prob_check"),
         generalized(), GENERALIZED_DICE, gradient=seg.generalized_dice_grad, wrt=("input",)),
    Spec("ranking_softmax", "listwise softmax loss -sum_i y_i log softmax(s)_i over valid items",
         seg.ranking_softmax, {"weight": None, "reduction": "mean"}, ("zero_division",),
         ranking(), RANKING_SOFTMAX, gradient=seg.ranking_softmax_grad, arrays=("where",), wrt=("input",)),
]
# fmt: on


def _overlap_axes(params: dict, ndim: int) -> tuple[int, ...]:
    """The axes Keras' dice and tversky sum over: their ``axis``, or every axis (None)."""
    axis = params.get("axis")
    return tuple(range(ndim)) if axis is None else tuple(axis)


#: The specs whose Keras classes take ``sample_weight`` (``bindings.keras_sample_weight``): one
#: loss per mask, the input less the overlap axes (a scalar with Keras' default axis=None).
_KERAS_HAS_NO = ("from_logits", "smooth", "ignore_background", "class_reduction", "weight")
SPECS = [keras_sample_weight(s, _overlap_axes, _KERAS_HAS_NO) if s.name in ("dice", "tversky") else s for s in SPECS]

# fmt: off
PARAMETERS: dict[str, object] = {
    "smooth": float,
    "axis": tuple,
    "ignore_background": bool,
    "class_reduction": ("none", "mean", "sum"),
    "from_logits": bool,
    "alpha": float,
    "beta": float,
}
# fmt: on


# ----------------------------------------------------------------------------- bindings
# Each framework's APIs of these specs (``conformance/bindings.py`` says how they are declared).

# jax
_DICE = dict(
    params={
        "smooth": "smooth",
        "axis": "axis",
        "weight": "class_weights",
        "ignore_background": "ignore_background",
        "class_reduction": "reduction",
        "from_logits": "apply_softmax",
    },
    defaults={"smooth": 1.0, "class_reduction": "mean", "from_logits": True},
    fixed=NO_REDUCTION,
    conventions={"smooth_form": "tversky", "overlap_axes": "inner", "prob_check": "ValueError"},
)
_OVERLAP_CONV = {"overlap_axes": "inner", "prob_check": "ValueError"}

# fmt: off
BINDINGS: list[Binding] = [
    # -- jax (optax.losses) --
    optax_loss("dice_loss", "dice", **_DICE),
    optax_loss("dice_loss", "tversky", **{**_DICE, "params": {**_DICE["params"], "alpha": "alpha", "beta": "beta"},
                                          "conventions": _OVERLAP_CONV}),
    optax_loss("binary_dice_loss", "dice", params={"smooth": "smooth", "from_logits": "apply_sigmoid"},
               defaults={"smooth": 1.0, "from_logits": True}, fixed={"reduction": "none", "class_reduction": "mean"},
               conventions={"smooth_form": "tversky", "overlap_axes": "inner", "prob_check": "ValueError",
                            "binary_channel": True}),
    optax_loss("multiclass_generalized_dice_loss", "generalized_dice",
               params={"smooth": "smooth", "from_logits": "apply_softmax", "ignore_background": "ignore_background"},
               defaults={"smooth": 1.0, "from_logits": True}, fixed={"reduction": "mean"},
               conventions={"weight_eps": 1e-7, "smooth_form": "tversky", "overlap_axes": "inner",
                            "prob_check": "ValueError"}),
    Binding(f"{OPTAX}.ranking_softmax_loss", "ranking_softmax", "jax",
            f"{OPTAX}.ranking_softmax_loss(input, target, where=where.astype(bool){{kw}})",
            params={"weight": "weights", "reduction": "reduce_fn"},
            values={"reduction": {"mean": Source("jnp.mean"), "sum": Source("jnp.sum"), "none": None}},
            conventions={"zero_division": "zero"}),
    # -- keras --
    # products, sums, quotient and 1 - index in y_pred's dtype, no upcast (keras/src/losses/losses.py at v3.15.1)
    *keras_pair("Dice", "dice", "dice", params={"axis": "axis"}, conventions={"dice_eps": KERAS_EPS},
                stages=seg.OVERLAP_STAGES, sample_weight=True),
    *keras_pair("Tversky", "tversky", "tversky", params={"axis": "axis", "alpha": "alpha", "beta": "beta"},
                conventions={"dice_eps": KERAS_EPS}, stages=seg.OVERLAP_STAGES, sample_weight=True),
]
# fmt: on
