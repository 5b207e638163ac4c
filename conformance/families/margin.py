"""Margin losses: binary, squared and categorical hinge (Keras, optax), multiclass hinge and
perceptron (optax), and PyTorch's hinge-embedding, soft-margin, multi-margin,
multilabel-margin and margin-ranking losses. Oracles in ``reference/margin.py``.

PyTorch's multilabel soft-margin loss is the mean over classes of a weighted BCE on logits:
it is bound to ``binary_cross_entropy_with_logits`` (``sample_axis="mean"``), not declared again.

Generated scores mix continuous values with the few numbers at which a margin is met exactly
(0, +-0.5, +-1, +-2 against margins 0, 0.5, 1, 2), so that kinks are drawn, not only tabled.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lossparity.conformance.bindings import (
    NO_REDUCTION,
    REDUCTION,
    keras_pair,
    keras_sample_weight,
    optax_loss,
    tf_v1_loss,
    torch_pair,
)
from lossparity.conformance.edges import INF, NAN, edge
from lossparity.conformance.generate import (
    CLASS_MENU,
    FLAG,
    _set,
    arrays,
    batch_shapes,
    case_strategy,
    floats,
    pick,
    pick_shape,
    reductions,
)
from lossparity.core.model import Binding, Spec
from lossparity.reference import margin as m

#: Scores: continuous, or exactly where a margin of 0, 0.5, 1 or 2 is met.
SCORES = st.one_of(floats(-3, 3), floats(-3, 3), st.sampled_from([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0]))
MARGINS = pick([1.0, 1.0, 0.0, 0.5, 2.0])
SIGNS = st.sampled_from([-1.0, 1.0])
I64 = np.int64


def _ints(values):
    return np.array(values, dtype=I64)


# ============================================================================ strategies


@case_strategy
def binary_hinge(draw, margin: bool):
    """Elementwise hinge: +-1 labels, or 0/1 (which Keras converts), any batch shape."""
    shape = draw(batch_shapes(min_dims=1))
    x = draw(arrays(shape, SCORES))
    labels = draw(st.sampled_from([SIGNS, SIGNS, st.sampled_from([0.0, 1.0])]))
    y = draw(arrays(shape, labels))
    params = {"reduction": draw(reductions())}
    if margin:
        _set(params, "margin", draw(MARGINS), 1.0)
    return {"input": x, "target": y}, params


@case_strategy
def categorical(draw):
    """One-hot targets over (..., C) scores; a quarter coded -1/+1 (which Keras documents)."""
    shape = draw(batch_shapes(max_dims=2))
    n = draw(pick_shape(CLASS_MENU))
    x = draw(arrays(shape + (n,), SCORES))
    t = draw(arrays(shape, st.integers(0, n - 1), dtype=I64))
    y = (np.arange(n) == t[..., None]).astype(np.float64)
    if draw(st.booleans()) and draw(st.booleans()):
        y = 2.0 * y - 1.0
    return {"input": x, "target": y}, {"reduction": draw(reductions())}


@case_strategy
def class_scores(draw, torch_shapes: bool, p: bool = False, weights: bool = False, margin_values=MARGINS):
    """(..., C) scores and class indices; PyTorch's multi-margin takes (C,) or (N, C) only."""
    shape = draw(pick_shape([(), (1,), (4,)]) if torch_shapes else batch_shapes())
    n = draw(pick_shape(CLASS_MENU))
    x = draw(arrays(shape + (n,), SCORES))
    t = draw(arrays(shape, st.integers(0, n - 1), dtype=I64))
    params = {"reduction": draw(reductions())}
    _set(params, "margin", draw(margin_values), 1.0)
    if p:
        _set(params, "p", draw(pick([1, 2])), 1)
    if weights and draw(pick(FLAG)):
        params["weight"] = draw(arrays((n,), floats(0.25, 4)))
    return {"input": x, "target": t}, params


@case_strategy
def multilabel(draw):
    """Each row: distinct target classes, then -1, then leftovers that must be ignored."""
    shape = draw(pick_shape([(), (1,), (4,)]))
    n = draw(pick_shape(CLASS_MENU))
    x = draw(arrays(shape + (n,), SCORES))
    rows = []
    for _ in range(int(np.prod(shape, dtype=int))):
        classes = draw(st.permutations(range(n)))
        k = draw(st.integers(0, n))
        tail = [-1] + [int(c) for c in draw(st.lists(st.integers(-1, n - 1), min_size=n, max_size=n))]
        rows.append((list(classes[:k]) + tail)[:n])
    t = np.array(rows, dtype=I64).reshape(shape + (n,))
    return {"input": x, "target": t}, {"reduction": draw(reductions())}


@case_strategy
def signed(draw, lo, hi, margin_values=None, default=1.0):
    """Elementwise scores against +-1 targets, any shape (a scalar included)."""
    shape = draw(batch_shapes())
    x = draw(arrays(shape, st.one_of(floats(lo, hi), SCORES)))
    y = draw(arrays(shape, SIGNS))
    params = {"reduction": draw(reductions())}
    if margin_values is not None:
        _set(params, "margin", draw(margin_values), default)
    return {"input": x, "target": y}, params


@case_strategy
def ranking(draw):
    """Pairs of scores (ties included) and which of the two should rank higher."""
    shape = draw(batch_shapes())
    x1 = draw(arrays(shape, floats(-3, 3)))
    tie = draw(arrays(shape, st.sampled_from([True, False, False, False]), dtype=bool))
    x2 = np.where(tie, x1, draw(arrays(shape, floats(-3, 3))))
    y = draw(arrays(shape, SIGNS))
    params = {"reduction": draw(reductions())}
    _set(params, "margin", draw(pick([0.0, 0.0, 0.5, 1.0])), 0.0)
    return {"input": x1, "input2": x2, "target": y}, params


# ============================================================================ edge tables

# fmt: off
HINGE = [
    edge("at-margin", "y x = 1 exactly: the loss is 0 and the slope is a subgradient choice "
                      "(jnp/torch.maximum: half, tf.maximum: all)",
         [[1.0, -1.0, 0.5]], [[1.0, -1.0, 1.0]], reduction="none"),
    edge("zero-margin-at-zero", "margin 0 (the perceptron loss) with x = 0: the kink at the origin",
         [[0.0, 0.0, 2.0]], [[1.0, -1.0, -1.0]], margin=0.0, reduction="none"),
    edge("binary-labels", "all targets 0/1: Keras converts them to -1/+1, optax uses 0 as given",
         [[0.3, -0.7], [2.0, 0.5]], [[0.0, 1.0], [1.0, 0.0]], reduction="none"),
    edge("mixed-labels", "targets -1, 0 and 1 mixed: not all binary, so Keras converts nothing",
         [[0.3, -0.7, 0.2]], [[0.0, 1.0, -1.0]], reduction="none"),
    edge("label-outside", "a target of 2 is outside {-1, 1}: used as given by every formula",
         [[0.3, -0.7]], [[2.0, -1.0]], reduction="none"),
    edge("huge", "scores of 1e30: the loss is linear, no overflow in float32",
         [[1e30, -1e30]], [[-1.0, -1.0]], reduction="none"),
    edge("inf", "infinite scores: 0 on the right side, inf on the wrong one",
         [[INF, -INF]], [[1.0, 1.0]], reduction="none"),
    edge("nan", "a NaN score propagates",
         [[NAN, 0.0]], [[1.0, 1.0]], reduction="none"),
    edge("mean", "the batch mean over samples of the per-sample means",
         [[0.2, -0.4, 1.5], [0.0, 0.9, -2.0]], [[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]]),
]
# fmt: on

# fmt: off
SQUARED_HINGE = [
    edge("at-margin", "y x = 1 exactly: the square makes the slope 0 whatever max takes",
         [[1.0, -1.0, 0.5]], [[1.0, -1.0, 1.0]], reduction="none"),
    edge("binary-labels", "all targets 0/1: Keras converts them to -1/+1",
         [[0.3, -0.7], [2.0, 0.5]], [[0.0, 1.0], [1.0, 0.0]], reduction="none"),
    edge("huge", "a violation of 1e20 squares to 1e40: float32 overflows to inf",
         [[1e20, -3.0]], [[-1.0, -1.0]], reduction="none"),
    edge("nan", "a NaN score propagates",
         [[NAN, 0.0]], [[1.0, 1.0]], reduction="none"),
]
# fmt: on

# fmt: off
CATEGORICAL_HINGE = [
    edge("margin-met", "target score exactly 1 above the best other: the loss is 0 at the kink",
         [[2.0, 1.0, -1.0]], [[1.0, 0.0, 0.0]], reduction="none"),
    edge("negative-others", "every other score negative: Keras' masked product lets the target "
                            "class compete as a 0 (neg = 0, not -1)",
         [[0.5, -1.0, -2.0]], [[1.0, 0.0, 0.0]], reduction="none"),
    edge("tied-others", "two other classes tie for the max: its slope is shared",
         [[0.0, 0.7, 0.7]], [[1.0, 0.0, 0.0]], reduction="none"),
    edge("one-class", "a single class: no other class (plain: loss 0; Keras: max(0, 1 - x))",
         [[0.25], [3.0]], [[1.0], [1.0]], reduction="none"),
    edge("signed-targets", "-1/+1 coded targets, which Keras documents: (1 - y) x doubles the others",
         [[0.5, 0.2, -0.3]], [[1.0, -1.0, -1.0]], reduction="none"),
    edge("nan", "a NaN score poisons its sample",
         [[NAN, 0.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]], reduction="none"),
]
# fmt: on

# fmt: off
MULTICLASS_HINGE = [
    edge("margin-met", "target 1 above the best other: the target's own entry ties the max",
         [[2.0, 1.0, 0.0]], _ints([0]), reduction="none"),
    edge("tied-others", "two other classes tie for the max, the target below them",
         [[0.0, 0.5, 0.5]], _ints([0]), reduction="none"),
    edge("zero-margin", "margin 0 (the perceptron loss) on a correct prediction: loss 0",
         [[3.0, 1.0], [1.0, 3.0]], _ints([0, 0]), margin=0.0, reduction="none"),
    edge("label-too-big", "label C: outside [0, C); jax.nn.one_hot gives a zero row",
         [[1.0, 2.0], [0.5, -0.5]], _ints([0, 2]), reduction="none"),
    edge("label-negative", "label -1: outside [0, C); a zero one-hot row as well",
         [[1.0, 2.0], [0.5, -0.5]], _ints([-1, 1]), reduction="none"),
    edge("one-class", "a single class: the loss is max(0, 0) = 0",
         [[3.0], [-2.0]], _ints([0, 0])),
    edge("inf", "an infinite other score: inf loss; an infinite target score: inf - inf",
         [[0.0, INF], [INF, 0.0]], _ints([0, 0]), reduction="none"),
]
# fmt: on

# fmt: off
MULTI_MARGIN = [
    edge("margin-met", "x_y - x_i = margin exactly: PyTorch's kernel tests z > 0 (slope 0)",
         [[2.0, 1.0, 0.5]], _ints([0]), reduction="none"),
    edge("p2-weighted", "p = 2 with class weights: the weight multiplies the squared term once",
         [[0.2, 0.9, -0.3], [1.0, 0.0, 0.4]], _ints([0, 2]), p=2, weight=[2.0, 1.0, 0.5]),
    edge("large-p", "p = 3: PyTorch documents 1 and 2 as the only supported values",
         [[0.2, 0.9, -0.3]], _ints([0]), p=3),
    edge("zero-margin", "margin 0: only strictly better other classes count",
         [[0.2, 0.9, 0.2]], _ints([0]), margin=0.0, reduction="none"),
    edge("label-too-big", "label C is outside [0, C): PyTorch checks it",
         [[0.2, 0.9]], _ints([2]), reduction="none"),
    edge("label-negative", "label -1 is outside [0, C)",
         [[0.2, 0.9]], _ints([-1]), reduction="none"),
    edge("unbatched", "a (C,) input with a scalar target",
         [0.2, 0.9, -0.3], _ints(1)),
    edge("one-class", "a single class: no other class, the loss is 0",
         [[3.0], [-2.0]], _ints([0, 0])),
]
# fmt: on

# fmt: off
MULTILABEL_MARGIN = [
    edge("padding-first", "-1 first: no target class, the loss is 0",
         [[0.1, 0.2, 0.4, 0.8]], _ints([[-1, 3, 0, 1]]), reduction="none"),
    edge("after-padding", "PyTorch's doc example: only 3 and 0 count, the 1 after -1 is ignored "
                          "(0.85)",
         [[0.1, 0.2, 0.4, 0.8]], _ints([[3, 0, -1, 1]])),
    edge("all-targets", "every class a target: no non-target class, the loss is 0",
         [[0.1, 0.2]], _ints([[1, 0]]), reduction="none"),
    edge("margin-met", "x[y] - x_i = 1 exactly: PyTorch's kernel tests z > 0 (slope 0)",
         [[2.0, 1.0, 0.5]], _ints([[0, -1, -1]]), reduction="none"),
    edge("duplicate", "a target listed twice counts twice",
         [[0.3, 0.5, 0.1]], _ints([[0, 0, -1]]), reduction="none"),
    edge("label-too-big", "index C before the padding: outside [0, C)",
         [[0.3, 0.5, 0.1]], _ints([[3, -1, 0]]), reduction="none"),
    edge("label-below", "index -2 before the padding: outside [0, C), not padding",
         [[0.3, 0.5, 0.1]], _ints([[-2, -1, 0]]), reduction="none"),
    edge("junk-after", "an out-of-range index after the -1 is padding and is never read",
         [[0.3, 0.5, 0.1]], _ints([[1, -1, 7]]), reduction="none"),
    edge("unbatched", "a (C,) input",
         [0.3, 0.5, 0.1], _ints([2, 0, -1])),
]
# fmt: on

# fmt: off
HINGE_EMBEDDING = [
    edge("at-margin", "x = margin with y = -1: the kink of max(0, margin - x)",
         [1.0, 0.5, 2.0], [-1.0, -1.0, 1.0], reduction="none"),
    edge("zero-margin", "margin 0: a negative pair costs max(0, -x)",
         [0.0, -0.5, 0.5], [-1.0, -1.0, -1.0], margin=0.0, reduction="none"),
    edge("target-zero", "target 0 is outside {-1, 1}: PyTorch's where-form adds both terms",
         [0.3, 1.5], [0.0, 1.0], reduction="none"),
    edge("target-two", "target 2: outside {-1, 1}",
         [0.3, 1.5], [2.0, -1.0], reduction="none"),
    edge("negative-distance", "a negative input with y = 1 is a negative loss, as the formula says",
         [-0.5, 0.25], [1.0, 1.0]),
]
# fmt: on

# fmt: off
SOFT_MARGIN = [
    edge("huge-wrong", "-y x = 100 and 1e4: log(1 + exp(100)) overflows exp in float32; the "
                       "loss is about -y x",
         [100.0, 1e4, -1e4], [-1.0, -1.0, 1.0], reduction="none"),
    edge("huge-right", "y x = 1e4: the loss underflows to 0, the slope too",
         [1e4, -1e4], [1.0, -1.0], reduction="none"),
    edge("zero", "x = 0: log 2 whatever the target",
         [0.0, 0.0], [1.0, -1.0], reduction="none"),
    edge("target-zero", "target 0 is outside {-1, 1}: the formula gives log 2",
         [3.0], [0.0], reduction="none"),
    edge("inf", "an infinite score on the right side: 0; on the wrong side: inf",
         [INF, INF], [1.0, -1.0], reduction="none"),
]
# fmt: on

# fmt: off
MARGIN_RANKING = [
    edge("tie-zero-margin", "x1 = x2 and margin 0: the kink of max(0, z) at z = 0",
         input=[0.5, -1.0], input2=[0.5, -1.0], target=[1.0, -1.0], reduction="none"),
    edge("at-margin", "x1 - x2 = margin exactly, y = 1",
         input=[1.5, 0.0], input2=[0.5, 1.0], target=[1.0, -1.0],
         margin=1.0, reduction="none"),
    edge("target-zero", "target 0 is outside {-1, 1}: the formula gives max(0, margin)",
         input=[1.5, 0.0], input2=[0.5, 1.0], target=[0.0, 0.0],
         margin=0.5, reduction="none"),
    edge("inf", "x1 = x2 = inf: inf - inf is NaN",
         input=[INF, 1.0], input2=[INF, 0.0], target=[1.0, -1.0], reduction="none"),
]
# fmt: on


# ============================================================================ specs


def _spec(name, summary, oracle, defaults, conventions, generate, edges, **kw):
    return Spec(
        name,
        summary,
        oracle,
        defaults,
        conventions,
        generate,
        edges,
        gradient=getattr(m, oracle.__name__ + "_grad"),
        **kw,
    )


_R = {"reduction": "mean"}
# fmt: off
SPECS: list[Spec] = [
    _spec("hinge", "binary hinge max(0, margin - y x) on +-1 labels (margin 0: perceptron)", m.hinge,
          {"margin": 1.0, **_R}, ("hinge_labels", "sample_axis", "hinge_kink", "flush_subnormals"),
          binary_hinge(margin=True), HINGE, classes=False, wrt=("input",)),
    _spec("squared_hinge", "squared hinge max(0, 1 - y x)^2 on +-1 labels", m.squared_hinge,
          dict(_R), ("hinge_labels", "sample_axis"),
          binary_hinge(margin=False), SQUARED_HINGE, classes=False, wrt=("input",),
          error_model=m.squared_hinge_error, stages=m.SQUARED_HINGE_STAGES),
    _spec("categorical_hinge", "max(0, 1 + best other score - target score), one-hot targets",
          m.categorical_hinge, dict(_R), ("hinge_neg", "hinge_kink", "flush_subnormals"),
          categorical(), CATEGORICAL_HINGE, wrt=("input",),
          error_model=m.categorical_hinge_error, stages=m.CATEGORICAL_HINGE_STAGES),
    _spec("multiclass_hinge", "Crammer-Singer max_c(x_c + margin [c != y]) - x_y, class indices "
                              "(margin 0: multiclass perceptron)",
          m.multiclass_hinge, {"margin": 1.0, **_R}, ("invalid_label", "flush_subnormals"),
          class_scores(torch_shapes=False), MULTICLASS_HINGE, target="index",
          error_model=m.multiclass_hinge_error, stages=m.MULTICLASS_HINGE_STAGES),
    _spec("multi_margin", "Weston-Watkins sum_{i != y} w[y] max(0, margin - x_y + x_i)^p / C",
          m.multi_margin, {"p": 1, "margin": 1.0, "weight": None, **_R},
          ("invalid_label", "p_values", "hinge_kink"),
          class_scores(torch_shapes=True, p=True, weights=True), MULTI_MARGIN, target="index"),
    _spec("multilabel_margin", "sum over target j, non-target i of max(0, 1 - x[y_j] + x_i) / C, "
                               "targets padded with -1",
          m.multilabel_margin, dict(_R), ("invalid_label", "hinge_kink"),
          multilabel(), MULTILABEL_MARGIN, wrt=("input",)),
    _spec("hinge_embedding", "x for y = 1, max(0, margin - x) for y = -1 (distances)",
          m.hinge_embedding, {"margin": 1.0, **_R}, ("invalid_sign", "hinge_kink"),
          signed(-1, 3, MARGINS), HINGE_EMBEDDING, classes=False, wrt=("input",)),
    _spec("soft_margin", "logistic loss log(1 + exp(-y x)) on +-1 labels", m.soft_margin,
          dict(_R), (), signed(-20, 20), SOFT_MARGIN, classes=False, wrt=("input",)),
    _spec("margin_ranking", "max(0, -y (x1 - x2) + margin) for pairs of scores", m.margin_ranking,
          {"margin": 0.0, **_R}, ("hinge_kink",), ranking(), MARGIN_RANKING, classes=False,
          arrays=("input2",), wrt=("input", "input2")),
]
# fmt: on

#: The specs whose Keras classes take ``sample_weight`` (``bindings.keras_sample_weight``): each
#: per-sample loss reduces its own row's last axis.
KERAS_WEIGHTED = ("hinge", "squared_hinge", "categorical_hinge")
SPECS = [keras_sample_weight(s, drop=("margin",)) if s.name in KERAS_WEIGHTED else s for s in SPECS]

PARAMETERS: dict[str, object] = {
    "margin": float,
}


# ----------------------------------------------------------------------------- bindings
# Each framework's APIs of these specs (``conformance/bindings.py`` says how they are declared).

# keras: ops.maximum(z, 0) splits a tie's slope evenly on JAX and PyTorch (jnp.maximum,
# torch.maximum); tf.maximum gives it all to its first argument, z.
_HINGE_TIE = {"tensorflow": {"hinge_kink": 1.0}}

# fmt: off
BINDINGS: list[Binding] = [
    # -- torch --
    # PyTorch's margin kernels: hinge_embedding_loss and margin_ranking_loss clamp with clamp_min,
    # whose slope passes at equality (hinge_kink=1); multi_margin_loss and multilabel_margin_loss
    # have hand-written backward kernels that count a term only where z > 0 (hinge_kink=0).
    *torch_pair("hinge_embedding_loss", "HingeEmbeddingLoss", "hinge_embedding",
                params={**REDUCTION, "margin": "margin"}, conventions={"invalid_sign": "both", "hinge_kink": 1.0}),
    *torch_pair("soft_margin_loss", "SoftMarginLoss", "soft_margin", params=REDUCTION),
    *torch_pair("multi_margin_loss", "MultiMarginLoss", "multi_margin",
                params={**REDUCTION, "p": "p", "margin": "margin", "weight": "weight"},
                conventions={"invalid_label": "RuntimeError", "p_values": "ValueError", "hinge_kink": 0.0},
                nondifferentiable=("weight",)),
    *torch_pair("multilabel_margin_loss", "MultiLabelMarginLoss", "multilabel_margin",
                params=REDUCTION, conventions={"invalid_label": "RuntimeError", "hinge_kink": 0.0}),
    Binding("torch.nn.functional.margin_ranking_loss", "margin_ranking", "torch",
            "F.margin_ranking_loss(input, input2, target{kw})",
            params={**REDUCTION, "margin": "margin"}, conventions={"hinge_kink": 1.0}),
    Binding("torch.nn.MarginRankingLoss", "margin_ranking", "torch",
            "torch.nn.MarginRankingLoss({kw})(input, input2, target)",
            params={**REDUCTION, "margin": "margin"}, conventions={"hinge_kink": 1.0}),
    # -- jax (optax.losses) --
    # jnp.maximum and jnp.max split a tie's slope evenly: hinge_kink=0.5 (the plain value).
    # perceptron_loss / multiclass_perceptron_loss are the hinge / multiclass hinge at margin 0.
    # jax.nn.one_hot gives an all-zero row for a label outside [0, C): invalid_label="zeros".
    # XLA on CPU flushes float32 subnormals (openxla/xla#22858): a subnormal score is on the perceptron's kink
    optax_loss("hinge_loss", "hinge", conventions={"flush_subnormals": True}),
    optax_loss("perceptron_loss", "hinge", fixed={**NO_REDUCTION, "margin": 0.0},
               conventions={"flush_subnormals": True}),
    # scores + 1.0 - one_hot(labels) in the scores' dtype before jnp.max (optax/losses/_classification.py,
    # v0.2.8, multiclass_hinge_loss): rounding makes or breaks ties of the max (augmented_scores)
    optax_loss("multiclass_hinge_loss", "multiclass_hinge",
               conventions={"invalid_label": "zeros", "flush_subnormals": True}, stages=m.MULTICLASS_HINGE_STAGES),
    optax_loss("multiclass_perceptron_loss", "multiclass_hinge", fixed={**NO_REDUCTION, "margin": 0.0},
               conventions={"invalid_label": "zeros", "flush_subnormals": True}),
    # -- tensorflow (tf.compat.v1.losses: weights and reductions, bindings.tf_v1_loss) --
    # hinge_loss: relu(1 - (2 labels - 1) logits) elementwise, the labels converted whatever they are
    # (hinge_labels="binary"), in float32 (logits and labels cast first: computes_in); relu's slope at 0 is 0
    tf_v1_loss("hinge_loss", "hinge", "labels", "logits",
               conventions={"hinge_labels": "binary", "hinge_kink": 0.0}, computes_in="float32"),
    # -- keras --
    *keras_pair("Hinge", "hinge", "hinge",
                conventions={"hinge_labels": "binary_if_all", "sample_axis": "mean"}, backends=_HINGE_TIE,
                sample_weight=True),
    *keras_pair("SquaredHinge", "squared_hinge", "squared_hinge",
                conventions={"hinge_labels": "binary_if_all", "sample_axis": "mean"},
                stages=m.SQUARED_HINGE_STAGES, sample_weight=True),  # square(maximum(1 - y x, 0)) in y_pred's dtype
    # XLA and TensorFlow on CPU flush float32 subnormals (openxla/xla#22858): a subnormal score ties with
    # the masked target's 0 in max((1 - y) * x), and the max's slope is shared between them
    *keras_pair("CategoricalHinge", "categorical_hinge", "categorical_hinge",
                conventions={"hinge_neg": "masked_product"},
                backends={"tensorflow": {**_HINGE_TIE["tensorflow"], "flush_subnormals": True},
                          "jax": {"flush_subnormals": True}},
                # no upcast: pos, neg and neg - pos + 1 in y_pred's dtype
                stages=m.CATEGORICAL_HINGE_STAGES, sample_weight=True),
]
# fmt: on
