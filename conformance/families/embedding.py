"""Embedding losses: cosine similarity, cosine embedding, triplet margin, NT-Xent, Circle.

Oracles in ``reference/embedding.py``. The last axis of every embedding array is its
feature axis (declared as ``classes=True``: like a class axis it must exist and be non-empty)
(D, drawn from CLASS_MENU); the batch shapes come from SHAPE_MENU, so a compiled mode traces
once per shape. Labels (``target`` of cosine_embedding, ntxent and circle) are int64 arrays and
are never differentiated.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lossparity.conformance.bindings import (
    AXIS_WHERE,
    KERAS_EPS,
    NO_REDUCTION,
    OPTAX,
    keras_pair,
    keras_sample_weight,
    optax_axis_where,
    optax_loss,
    tf_v1_loss,
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
from lossparity.core.model import GIVEN, Binding, Spec
from lossparity.reference import embedding as emb

I64 = np.int64


def _labels(values):
    return np.array(values, dtype=I64)


def _no_zero_vectors(x):
    """Vectors of all zeros (a favourite of hypothesis) replaced by ones, and entries below 1e-2
    in magnitude flushed to 0 first: a zero or tiny vector (whose slopes, ~1/|x|, are
    dominated by the rounding of the framework dtype), where each framework's norm floor
    decides (and a float32 square underflows), lives in the edge tables."""
    x = np.asarray(x, np.float64)
    x = np.where(np.abs(x) < 1e-2, 0.0, x)
    return np.where(np.all(x == 0, axis=-1, keepdims=True), 1.0, x)


def _unit(rows):
    rows = np.asarray(rows, np.float64)
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


# ----------------------------------------------------------------------------- strategies


@case_strategy
def cosine_cases(draw):
    shape = draw(batch_shapes()) + (draw(pick_shape(CLASS_MENU)),)
    axis = draw(pick([-1, -1, 0])) if len(shape) >= 2 else -1

    def vectors():
        x = np.moveaxis(draw(arrays(shape, floats(-5, 5))), axis, -1)
        return np.moveaxis(_no_zero_vectors(x), -1, axis)

    a, b = vectors(), vectors()
    params = {"reduction": draw(reductions())}
    # floors far from the drawn norms (>= 1e-2): a norm within rounding of its floor flips the
    # slope between dtypes; tiny norms (slopes ~1/|x| carrying float32 noise) are edge rows
    _set(params, "epsilon", draw(pick([0.0, 0.0, 1e-12, 0.01])), 0.0)
    _set(params, "axis", axis, -1)
    return {"input": a, "target": b}, params


@case_strategy
def unit_cosine_cases(draw):
    """tf.compat.v1's cosine_distance: a batch of vectors along ``axis`` (always given: the API has no
    default), unit-normalised as documented in most cases, as drawn in the rest (the formula's value)."""
    shape = draw(batch_shapes()) + (draw(pick_shape(CLASS_MENU)),)
    axis = draw(pick([-1, -1, 0])) if len(shape) >= 2 else -1
    unit = draw(pick([True, True, False]))

    def vectors():
        x = np.moveaxis(_no_zero_vectors(np.moveaxis(draw(arrays(shape, floats(-5, 5))), axis, -1)), -1, axis)
        return x / np.linalg.norm(x, axis=axis, keepdims=True) if unit else x

    return {"input": vectors(), "target": vectors()}, {"reduction": draw(reductions()), "axis": axis}


@case_strategy
def cosine_embedding_cases(draw):
    shape = draw(pick_shape(SHAPE_MENU[0] + SHAPE_MENU[1]))  # torch: (N, D) or (D,)
    d = draw(pick_shape(CLASS_MENU))
    x1 = _no_zero_vectors(draw(arrays(shape + (d,), floats(-5, 5))))
    x2 = _no_zero_vectors(draw(arrays(shape + (d,), floats(-5, 5))))
    y = draw(arrays(shape, st.sampled_from([1, -1]), dtype=I64))
    params = {"reduction": draw(reductions())}
    _set(params, "margin", draw(pick([0.0, 0.0, 0.5, -0.3])), 0.0)
    return {"input": x1, "input2": x2, "target": y}, params


@case_strategy
def triplet_cases(draw):
    shape = draw(batch_shapes(max_dims=2)) + (draw(pick_shape(CLASS_MENU)),)
    params = {"reduction": draw(reductions())}
    _set(params, "margin", draw(pick([1.0, 1.0, 0.5, 2.0])), 1.0)
    _set(params, "swap", draw(pick(FLAG)), False)
    if draw(pick(FLAG)):  # only the explicit cosine distance takes it
        params["distance"] = "cosine"
    else:
        _set(params, "p", draw(pick([2.0, 2.0, 1.0, 3.0])), 2.0)
        eps = draw(pick([None, None, 0.0, 1e-3]))
        if eps is not None:
            params["eps"] = eps
        if len(shape) >= 2:
            _set(params, "axis", draw(pick([-1, -1, -1, 0])), -1)
    axis = params.get("axis", -1)

    def no_zero(x):  # along the vectors' axis
        return np.moveaxis(_no_zero_vectors(np.moveaxis(x, axis, -1)), -1, axis)

    a, p, n = (no_zero(draw(arrays(shape, floats(-3, 3)))) for _ in range(3))
    # no two of them equal (hypothesis' favourite): a zero difference without eps is the
    # norm's kink, which the edge table covers
    p = a - no_zero(a - p)
    n = a - no_zero(a - n)
    n = p - no_zero(p - n)
    return {"input": a, "positive": p, "negative": n}, params


_GROUPS = [(4, 1), (4, 2), (4, 3), (4, 5), (2, 4), (3, 1)]  # (N, D), N and D from the menus


@case_strategy
def ntxent_cases(draw):
    shape = draw(pick_shape(_GROUPS))
    e = _no_zero_vectors(draw(arrays(shape, floats(-3, 3))))
    labels = draw(arrays(shape[:1], st.integers(0, 1), dtype=I64))
    params = {}
    _set(params, "temperature", draw(pick([0.07, 0.07, 0.5, 1.0, 0.02, 10.0])), 0.07)
    return {"input": e, "target": labels}, params


@case_strategy
def circle_cases(draw):
    # D >= 2: 1-D unit vectors are +-1, every cosine sits on the kink of max(1 - cos, 0)
    shape = draw(pick_shape([s for s in _GROUPS if s[1] > 1]))
    e = _no_zero_vectors(draw(arrays(shape, floats(-1, 1))))
    e = e / np.linalg.norm(e, axis=-1, keepdims=True)  # unit rows, as documented
    labels = draw(arrays(shape[:1], st.integers(0, 2), dtype=I64))
    params = {"reduction": draw(reductions())}
    _set(params, "gamma", draw(pick([80.0, 80.0, 16.0, 1.0])), 80.0)
    _set(params, "margin", draw(pick([0.4, 0.4, 0.25, 0.1])), 0.4)
    _set(params, "remove_diagonal", draw(pick((True, False))), True)
    return {"input": np.float32(e).astype(np.float64), "target": labels}, params


@case_strategy
def circle_ref_cases(draw):
    """Queries (N, D) against a reference batch (M, D) of its own size, M from the batch menu;
    unit rows, labels in 0-2 on both sides (so most queries have positives and negatives)."""
    n, dim = draw(pick_shape([s for s in _GROUPS if s[1] > 1]))
    m = draw(pick_shape([4, 2, 3, 5]))

    def unit_rows(rows):
        e = _no_zero_vectors(draw(arrays((rows, dim), floats(-1, 1))))
        return np.float32(e / np.linalg.norm(e, axis=-1, keepdims=True)).astype(np.float64)

    e, r = unit_rows(n), unit_rows(m)
    labels, ref_labels = (draw(arrays((k,), st.integers(0, 2), dtype=I64)) for k in (n, m))
    params = {}
    _set(params, "gamma", draw(pick([80.0, 80.0, 16.0, 1.0])), 80.0)
    _set(params, "margin", draw(pick([0.4, 0.4, 0.25, 0.1])), 0.4)
    _set(params, "remove_diagonal", draw(pick((True, False))), True)
    return {"input": e, "target": labels, "ref_embeddings": r, "ref_labels": ref_labels}, params


# ----------------------------------------------------------------------------- edge tables

# fmt: off
COSINE_SIMILARITY = [
    edge("keras-doc", "Keras' docstring example: [-0., -0.99999994, 0.99999994] as -cos",
         [[1.0, 0.0], [1.0, 1.0], [-1.0, -1.0]], [[0.0, 1.0], [1.0, 1.0], [1.0, 1.0]], reduction="none"),
    edge("zero-vector", "a zero vector: 0/0 = NaN without a floor; Keras' floor 1e-7 and optax's "
         "epsilon give 0 (Keras documents 0)", [[0.0, 0.0], [3.0, 4.0]], [[1.0, 2.0], [0.0, 0.0]], reduction="none"),
    edge("zero-vector-eps", "optax epsilon clips the squared norm: a zero vector gives cos 0",
         [[0.0, 0.0, 0.0]], [[1.0, -2.0, 0.5]], reduction="none", epsilon=1e-6),
    edge("tiny-norm-eps", "|a| = 5e-4 is below sqrt(epsilon) = 1e-2: the floor, not |a|, divides",
         [[3e-4, 4e-4]], [[1.0, 1.0]], reduction="none", epsilon=1e-4),
    edge("identical", "identical vectors: cos exactly 1 up to the rounding of the norms",
         [[0.6, 0.8], [2.0, 2.0]], [[0.6, 0.8], [2.0, 2.0]], reduction="none"),
    edge("antiparallel", "antiparallel vectors: cos = -1",
         [[1.0, -2.0, 3.0]], [[-2.0, 4.0, -6.0]], reduction="none"),
    edge("orthogonal", "orthogonal vectors: cos = 0 exactly, the slope is b/(|a||b|)",
         [[1.0, 0.0], [0.0, 2.0]], [[0.0, 5.0], [3.0, 0.0]], reduction="sum"),
    edge("axis-0", "axis=0 takes the cosine over the batch axis: one value per feature",
         [[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]], [[2.0, 0.0], [1.0, 1.0], [-1.0, 3.0]], reduction="none", axis=0),
    edge("unbatched", "one unbatched vector: a scalar loss", [1.0, 2.0, 2.0], [2.0, 1.0, -2.0]),
    edge("large", "values of 1e18: squares of 1e36 are near float32's limit; the scaled norm is exact",
         [[1e18, 2e18]], [[2e18, 1e18]], reduction="none", dtypes=("float32", "float64")),
]
# fmt: on

# fmt: off
UNIT_COSINE_DISTANCE = [
    edge("identical-unit", "identical unit vectors: 1 - 1 = 0", _unit([[0.6, 0.8], [1.0, 1.0]]),
         _unit([[0.6, 0.8], [1.0, 1.0]]), reduction="none", axis=-1),
    edge("antiparallel-unit", "antiparallel unit vectors: 1 - (-1) = 2", _unit([[1.0, -2.0, 2.0]]),
         _unit([[-1.0, 2.0, -2.0]]), reduction="none", axis=-1),
    edge("orthogonal-unit", "orthogonal unit vectors: 1 - 0 = 1; the slopes are -y and -x",
         [[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]], reduction="sum", axis=1),
    edge("not-normalised", "vectors not unit-normalised (documented as assumed): nothing normalises them, "
                           "1 - 3*3 - 4*4 = -24, and 1 - 0 = 1 for a zero vector",
         [[3.0, 4.0], [0.0, 0.0]], [[3.0, 4.0], [1.0, 2.0]], reduction="none", axis=-1),
    edge("axis-0", "axis=0 sums over the batch axis: one loss per feature, shape (1, D)",
         _unit([[1.0, 2.0], [3.0, -1.0]]), _unit([[2.0, 0.0], [1.0, 1.0]]), reduction="none", axis=0),
    edge("unbatched", "one unbatched vector: a loss of shape (1,)", [0.6, 0.8], [0.8, -0.6], axis=-1),
    edge("nan", "a NaN entry makes its vector's loss NaN", [[np.nan, 1.0], [0.6, 0.8]], [[1.0, 0.0], [0.6, 0.8]],
         reduction="none", axis=-1),
]
# fmt: on

# fmt: off
COSINE_EMBEDDING = [
    edge("similar-dissimilar", "y = 1 gives 1 - cos, y = -1 gives max(0, cos - margin)",
         input=[[1.0, 2.0], [1.0, 0.5]], input2=[[2.0, 1.0], [1.0, 1.0]], target=_labels([1, -1]),
         reduction="none"),
    edge("zero-vector", "a zero vector: torch adds 1e-12 to each squared norm, so cos = 0 (1 for "
         "y = 1, 0 for y = -1); in float16 1e-12 rounds to 0 and 0/0 = NaN",
         input=[[0.0, 0.0], [0.0, 0.0]], input2=[[1.0, 2.0], [1.0, 2.0]], target=_labels([1, -1]),
         reduction="none"),
    edge("margin-boundary", "orthogonal pair with y = -1, margin 0: cos - margin = 0 exactly, the "
         "hinge's kink (value 0, slope passed as torch's clamp_min does)",
         input=[[1.0, 0.0]], input2=[[0.0, 2.0]], target=_labels([-1]), reduction="none"),
    edge("negative-margin", "margin -0.5: a y = -1 pair costs max(0, cos + 0.5): 0 antiparallel, "
         "1 at 60 degrees",
         input=[[1.0, 0.0], [1.0, 0.0]], input2=[[-1.0, 0.0], [1.0, 1.7320508075688772]], target=_labels([-1, -1]),
         reduction="none", margin=-0.5),
    edge("identical", "identical vectors with y = 1: 1 - cos = 0 up to the 1e-12",
         input=[[0.6, 0.8]], input2=[[0.6, 0.8]], target=_labels([1]), reduction="sum"),
    edge("antiparallel", "antiparallel with y = 1: the largest loss, 2",
         input=[[1.0, 2.0]], input2=[[-3.0, -6.0]], target=_labels([1]), reduction="sum"),
    edge("target-zero", "a target that is neither 1 nor -1 contributes 0 (torch's where on y == 1 "
         "and y == -1); nothing checks it",
         input=[[1.0, 2.0], [1.0, 0.5]], input2=[[2.0, 1.0], [1.0, 1.0]], target=_labels([0, 1])),
    edge("unbatched", "a 1-D pair with a 0-D target",
         input=[1.0, 2.0, 3.0], input2=[3.0, 2.0, 1.0], target=_labels(-1), margin=0.5),
]
# fmt: on

# fmt: off
TRIPLET_MARGIN = [
    edge("optax-doc", "optax's docstring example: [0.1414 0.1414]",
         input=[[0.0, 0.0], [1.0, 1.0]], positive=[[0.1, 0.1], [1.1, 1.1]], negative=[[1.0, 0.0], [0.0, 1.0]],
         reduction="none"),
    edge("identical-positive", "anchor = positive: the distance is |eps|_p (torch) or eps^(1/p) "
         "(optax), not 0",
         input=[[1.0, 2.0]], positive=[[1.0, 2.0]], negative=[[1.5, 2.0]], reduction="none"),
    edge("identical-no-eps", "anchor = positive with eps = 0: distance 0, where the 2-norm has no "
         "slope (torch's norm gives 0; sqrt'(0) is infinite in optax's form)",
         input=[[1.0, 2.0]], positive=[[1.0, 2.0]], negative=[[1.5, 2.0]],
         reduction="none", eps=0.0),
    edge("p1", "p = 1: the L1 distance; a negative difference shows whether |.| is taken",
         input=[[0.0, 1.0]], positive=[[0.5, 0.0]], negative=[[2.0, -1.0]],
         reduction="none", p=1.0),
    edge("p3", "p = 3 with negative differences",
         input=[[0.0, 1.0, -1.0]], positive=[[0.5, 0.0, 0.0]], negative=[[2.0, -1.0, 1.0]],
         reduction="none", p=3.0),
    edge("swap", "swap: d(positive, negative) = 0.5 < d(anchor, negative) = 2, so the swap "
         "raises the loss from 0 to 0.5",
         input=[[0.0, 0.0]], positive=[[1.5, 0.0]], negative=[[2.0, 0.0]],
         reduction="none", swap=True, eps=0.0),
    edge("no-swap", "the same triplet without swap: 1 + 1.5 - 2 = 0.5",
         input=[[0.0, 0.0]], positive=[[1.5, 0.0]], negative=[[2.0, 0.0]],
         reduction="none", eps=0.0),
    edge("inactive", "the negative far beyond the margin: loss 0, no slope",
         input=[[0.0, 0.0]], positive=[[0.1, 0.0]], negative=[[5.0, 0.0]], reduction="sum"),
    edge("margin-zero", "margin 0: torch documents a margin > 0 and raises ValueError; optax computes",
         input=[[0.0, 0.0]], positive=[[1.0, 0.0]], negative=[[0.0, 2.0]], margin=0.0),
    edge("cosine-distance", "the explicit distance 1 - cos (torch's cosine_similarity, eps 1e-8)",
         input=[[1.0, 0.0], [1.0, 1.0]], positive=[[1.0, 1.0], [1.0, 0.0]], negative=[[0.0, 1.0], [-1.0, 1.0]],
         reduction="none", distance="cosine"),
    edge("unbatched", "one unbatched triplet: a scalar",
         input=[1.0, -1.0, 0.5], positive=[0.5, -1.0, 0.0], negative=[1.0, 1.0, 1.0]),
]
# fmt: on

# fmt: off
NTXENT = [
    edge("optax-doc", "optax's docstring example: 1.0986123 = log 3 for 1-D embeddings of one sign",
         input=[[0.08969027], [1.6291292], [0.8622629], [0.13612625]], target=_labels([0, 0, 1, 1])),
    # (4, 2): a shape the generator draws (_GROUPS), so compiled modes reuse its executables
    edge("no-positive", "every label different: no positive pair, 0/0 = NaN",
         input=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.5]], target=_labels([0, 1, 2, 3])),
    edge("no-negative", "one group only: each pair's softmax is over itself, loss 0",
         input=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.5]], target=_labels([0, 0, 0, 0])),
    edge("zero-vector", "a zero embedding: optax clips squared norms at the dtype's eps, so its "
         "cosines are 0", input=[[0.0, 0.0], [1.0, 0.0], [0.5, 0.5], [-1.0, 0.2]], target=_labels([0, 0, 1, 1])),
    edge("tiny-norm", "|e| = 1e-4 < sqrt(float32 eps) = 3.5e-4: the floor divides, not |e|",
         input=[[1e-4, 0.0], [1.0, 0.0], [0.5, 0.5], [-1.0, 0.2]], target=_labels([0, 0, 1, 1])),
    edge("cold", "temperature 0.05: similarities up to 20, exp(20) overflows float16: the "
         "log-sum-exp must be shifted (0.01 would put float32 slopes among the subnormals XLA flushes)",
         input=[[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-0.2, 1.0]], target=_labels([0, 0, 1, 1]),
         temperature=0.05),
    edge("hot", "temperature 100: every similarity near 0, loss near log(#negatives + 1)",
         input=[[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-0.2, 1.0]], target=_labels([0, 0, 1, 1]),
         temperature=100.0),
]
# fmt: on

# fmt: off
CIRCLE = [
    edge("two-groups", "two groups of two unit vectors, Keras' defaults gamma 80, margin 0.4",
         input=_unit([[1.0, 0.1], [0.9, 0.3], [-0.2, 1.0], [0.1, 1.0]]), target=_labels([0, 0, 1, 1]),
         reduction="none"),
    edge("no-positive", "a sample alone in its group: its positive log-sum-exp is -inf, loss 0, "
         "and the class form's mean leaves it out (Keras masks losses <= 0)",
         input=_unit([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]]), target=_labels([0, 1, 1, 2])),
    edge("keep-diagonal", "remove_diagonal=False: each sample is its own positive at distance 0",
         input=_unit([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]]), target=_labels([0, 1, 1, 0]),
         reduction="none", remove_diagonal=False),
    edge("antipodal-negatives", "negatives at distance 2 (d clipped at 0 only from below): "
         "a_n = max(1 + m - d, 0) = 0, they are silenced",
         input=np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]]), target=_labels([0, 0, 1, 1]),
         reduction="none"),
    edge("all-same", "one group: no negatives, every loss 0; the class form's mean over no "
         "positive loss is 0 (divide_no_nan)",
         input=_unit([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]), target=_labels([0, 0, 0])),
    edge("identical-negatives", "two identical unit vectors (exact in every dtype) with different labels: cos = 1, d = "
         "max(1 - cos, 0) on its kink; jnp/torch.maximum split the slope there, tf.maximum passes it whole "
         "(the floor_tie convention)",
         input=np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]), target=_labels([0, 1, 0, 1]),
         reduction="none", gamma=16.0),
    edge("small-gamma", "gamma 1, margin 0.25: no saturation",
         input=_unit([[1.0, 0.2], [0.7, 0.7], [-0.3, 1.0], [0.2, -1.0]]), target=_labels([0, 1, 0, 1]),
         reduction="none", gamma=1.0, margin=0.25),
]
# fmt: on


# fmt: off
CIRCLE_REF = [
    edge("keep-diagonal-by-hand", "one query [1, 0] (label 0) against [1, 0] (0) and [0, 1] (1), gamma 1, margin "
         "0.25, diagonal kept: d = 0 and 1, both log-sum-exps -0.0625, loss softplus(-0.125)",
         input=np.array([[1.0, 0.0]]), target=_labels([0]), ref_embeddings=np.array([[1.0, 0.0], [0.0, 1.0]]),
         ref_labels=_labels([0, 1]), gamma=1.0, margin=0.25, remove_diagonal=False),
    edge("diagonal-of-another-set", "remove_diagonal drops pair (0, 0) of the (N, M) mask even though the "
         "reference rows are not the queries: query 0's only positive goes, its loss is 0",
         input=_unit([[1.0, 0.2], [0.3, 1.0]]), target=_labels([0, 1]),
         ref_embeddings=_unit([[1.0, 0.1], [0.2, 1.0], [-1.0, 0.4]]), ref_labels=_labels([0, 1, 1])),
    edge("more-references", "two queries against four references of three groups, Keras' defaults",
         input=_unit([[1.0, 0.1], [-0.2, 1.0]]), target=_labels([0, 1]),
         ref_embeddings=_unit([[0.9, 0.3], [0.1, 1.0], [0.6, -0.8], [1.0, 0.0]]), ref_labels=_labels([0, 1, 2, 0])),
]
# fmt: on


# ----------------------------------------------------------------------------- specs

# fmt: off
SPECS: list[Spec] = [
    Spec("cosine_similarity", "cosine of two vectors over an axis, one value per sample",
         emb.cosine_similarity, {"epsilon": 0.0, "axis": -1, "reduction": "mean"},
         ("cosine_form", "norm_floor"), cosine_cases(), COSINE_SIMILARITY, classes=True,
         gradient=emb.cosine_similarity_grad),
    Spec("unit_cosine_distance", "1 - sum(x * y) over an axis (kept), inputs assumed unit-normalised (not normalised)",
         emb.unit_cosine_distance, {"axis": -1, "reduction": "mean"}, (), unit_cosine_cases(), UNIT_COSINE_DISTANCE,
         classes=True, gradient=emb.unit_cosine_distance_grad),
    Spec("cosine_embedding", "1 - cos for similar pairs (y = 1), max(0, cos - margin) for dissimilar (y = -1)",
         emb.cosine_embedding, {"margin": 0.0, "reduction": "mean"}, ("sq_norm_add",),
         cosine_embedding_cases(), COSINE_EMBEDDING, target="index", classes=True,
         gradient=emb.cosine_embedding_grad, arrays=("input2",), wrt=("input", "input2"),
         error_model=emb.cosine_embedding_error, stages=emb.COSINE_EMBEDDING_STAGES),
    Spec("triplet_margin", "max(margin + d(anchor, positive) - d(anchor, negative), 0)",
         emb.triplet_margin,
         {"margin": 1.0, "p": 2.0, "eps": 0.0, "swap": False, "axis": -1, "distance": "pairwise",
          "reduction": "mean"},
         ("distance_eps", "power_abs", "margin_domain"), triplet_cases(), TRIPLET_MARGIN, target=None,
         classes=True, gradient=emb.triplet_margin_grad, arrays=("positive", "negative"),
         wrt=("input", "positive", "negative")),
    Spec("ntxent", "NT-Xent: mean over positive pairs of -log softmax of cos / temperature",
         emb.ntxent, {"temperature": 0.07}, ("sq_norm_eps",), ntxent_cases(), NTXENT,
         target="index", classes=True, gradient=emb.ntxent_grad, wrt=("input",)),
    Spec("circle", "Circle loss of unit embeddings with integer group labels",
         emb.circle, {"gamma": 80.0, "margin": 0.4, "remove_diagonal": True, "reduction": "mean"},
         ("mean_over", "zero_division", "floor_tie"), circle_cases(), CIRCLE, target="index", classes=True,
         gradient=emb.circle_grad, wrt=("input",)),
    Spec("circle_ref", "Circle loss of unit query embeddings against a reference set with its own labels",
         emb.circle, {"gamma": 80.0, "margin": 0.4, "remove_diagonal": True, "reduction": "none"},
         ("floor_tie",), circle_ref_cases(), CIRCLE_REF, target="index", classes=True,
         gradient=emb.circle_grad, arrays=("ref_embeddings", "ref_labels"), wrt=("input", "ref_embeddings")),
]
# fmt: on
# optax: a cosine over no included entry is 0 (a sum of nothing), its distance 1
SPECS = [
    optax_axis_where(s, empty=emb.cosine_of_nothing, layouts=False, keeps=("epsilon", "axis"))
    if s.name == "cosine_similarity"
    else s
    for s in SPECS
]


def _cosine_axis(params: dict, ndim: int) -> tuple[int, ...]:
    """The axis Keras' cosine_similarity sums over (its ``axis``, default -1)."""
    return (params.get("axis", -1),)


#: CosineSimilarity's call takes ``sample_weight`` (``bindings.keras_sample_weight``): one loss
#: per vector along ``axis``. Circle's does too, but its per-sample loss reads every row of the
#: batch (the weighted gradient is not the per-sample one): left out, see parameter_exclusions.py.
SPECS = [keras_sample_weight(s, _cosine_axis, ("epsilon",)) if s.name == "cosine_similarity" else s for s in SPECS]


def _kept_axis(params: dict, ndim: int) -> tuple[int, ...]:
    """No axis: tf.compat.v1's cosine_distance keeps the summed axis (extent 1) in its losses."""
    return ()


#: tf.compat.v1's cosine_distance takes weights (``weighting="tf_v1"``) against its losses, which keep the summed
#: axis (extent 1): the generated weights are drawn for the input's whole shape, so a per-sample weight
#: (N, 1, ...) broadcasts, and a per-element one (the summed axis not 1) or one with a trailing 1 (a rank
#: above the losses') is refused by both, a ValueError (``SAMPLE_WEIGHT_SHAPES``).
SPECS = [keras_sample_weight(s, _kept_axis) if s.name == "unit_cosine_distance" else s for s in SPECS]

# fmt: off
PARAMETERS: dict[str, object] = {
    "epsilon": float,
    "margin": float,
    "p": float,
    "eps": float,
    "swap": bool,
    "distance": ("pairwise", "cosine"),
    "temperature": float,
    "gamma": float,
    "remove_diagonal": bool,
}
# fmt: on


# ----------------------------------------------------------------------------- bindings
# Each framework's APIs of these specs (``conformance/bindings.py`` says how they are declared).

# torch
_TRIPLET = {"margin": "margin", "swap": "swap", "reduction": "reduction"}
_POSITIVE_MARGIN = {"margin_domain": "ValueError"}

# fmt: off
BINDINGS: list[Binding] = [
    # -- torch --
    # composite ATen ops, each rounded to the input dtype (aten/src/ATen/native/Loss.cpp, cosine_embedding_loss)
    Binding("torch.nn.functional.cosine_embedding_loss", "cosine_embedding", "torch",
            "F.cosine_embedding_loss(input, input2, target{kw})",
            params={"margin": "margin", "reduction": "reduction"}, conventions={"sq_norm_add": 1e-12},
            stages=emb.COSINE_EMBEDDING_STAGES),
    Binding("torch.nn.CosineEmbeddingLoss", "cosine_embedding", "torch",
            "torch.nn.CosineEmbeddingLoss({kw})(input, input2, target)",
            params={"margin": "margin", "reduction": "reduction"}, conventions={"sq_norm_add": 1e-12},
            stages=emb.COSINE_EMBEDDING_STAGES),
    Binding("torch.nn.functional.triplet_margin_loss", "triplet_margin", "torch",
            "F.triplet_margin_loss(input, positive, negative{kw})",
            params={**_TRIPLET, "p": "p", "eps": "eps"}, defaults={"eps": 1e-6},
            conventions=_POSITIVE_MARGIN),
    Binding("torch.nn.TripletMarginLoss", "triplet_margin", "torch",
            "torch.nn.TripletMarginLoss({kw})(input, positive, negative)",
            params={**_TRIPLET, "p": "p", "eps": "eps"}, defaults={"eps": 1e-6},
            conventions=_POSITIVE_MARGIN),
    # The default distance is torch.pairwise_distance(x1, x2): p = 2, eps = 1e-6.
    Binding("torch.nn.functional.triplet_margin_with_distance_loss", "triplet_margin", "torch",
            "F.triplet_margin_with_distance_loss(input, positive, negative{kw})",
            params=_TRIPLET, defaults={"eps": 1e-6}, conventions=_POSITIVE_MARGIN),
    Binding("torch.nn.TripletMarginWithDistanceLoss", "triplet_margin", "torch",
            "torch.nn.TripletMarginWithDistanceLoss({kw})(input, positive, negative)",
            params=_TRIPLET, defaults={"eps": 1e-6}, conventions=_POSITIVE_MARGIN),
    # An explicit distance_function in the call: 1 - cosine_similarity (its eps 1e-8 floors each norm).
    Binding("torch.nn.functional.triplet_margin_with_distance_loss(cosine)", "triplet_margin", "torch",
            "F.triplet_margin_with_distance_loss(input, positive, negative, "
            "distance_function=lambda a, b: 1.0 - F.cosine_similarity(a, b, dim=-1){kw})",
            params=_TRIPLET, requires={"distance": "cosine"}, defaults={"eps": 1e-8},
            conventions=_POSITIVE_MARGIN),
    # -- tensorflow (tf.compat.v1.losses: weights and reductions, bindings.tf_v1_loss) --
    # cosine_distance: 1 - reduce_sum(predictions * labels, axis, keepdims=True) after casting both to float32
    # (computes_in); documented to assume unit-normalised inputs, which it does not normalise; axis has no
    # default (None raises ValueError), so the binding takes the cases that give it
    tf_v1_loss("cosine_distance", "unit_cosine_distance", "labels", "predictions", params={"axis": "axis"},
               requires={"axis": GIVEN}, computes_in="float32"),
    # -- jax (optax.losses) --
    optax_loss("cosine_similarity", "cosine_similarity", params={"epsilon": "epsilon", **AXIS_WHERE}),
    optax_loss("cosine_distance", "cosine_similarity", params={"epsilon": "epsilon", **AXIS_WHERE},
               conventions={"cosine_form": "distance"}),
    # No swap parameter; eps goes into the sum of powers, and the differences are raised to
    # norm_degree without their absolute value (read in optax/losses/_self_supervised.py).
    Binding(f"{OPTAX}.triplet_margin_loss", "triplet_margin", "jax",
            f"{OPTAX}.triplet_margin_loss(input, positive, negative{{kw}})",
            params={"margin": "margin", "p": "norm_degree", "eps": "eps", "axis": "axis"},
            defaults={"eps": 1e-6}, fixed=NO_REDUCTION,
            conventions={"distance_eps": "power_sum", "power_abs": False}),
    # Cosines with epsilon=jnp.finfo(embeddings.dtype).eps on the squared norms; the mean over
    # positive pairs is built in (a scalar).
    optax_loss("ntxent", "ntxent", fixed={}, params={"temperature": "temperature"},
               conventions={"sq_norm_eps": "finfo"}),
    # -- keras --
    # -sum(l2_normalize(y_true) * l2_normalize(y_pred)); keras.ops.normalize floors each norm
    # at backend.epsilon() = 1e-7 as x * min(rsqrt(sum x^2), 1 / 1e-7) (keras/src/ops/nn.py).
    *keras_pair("CosineSimilarity", "cosine_similarity", "cosine_similarity", params={"axis": "axis"},
                conventions={"cosine_form": "negative", "norm_floor": KERAS_EPS}, sample_weight=True),
    # ref_labels / ref_embeddings of the function form are left at None (the batch itself) here; the
    # circle_ref spec's binding passes a reference set.
    # The class form's losses carry a Keras mask (loss > 0), so its mean counts only those.
    # d = ops.maximum(1 - dot, 0.0): at dot = 1 jnp.maximum and torch.maximum split the slope,
    # tf.maximum passes it whole (keras/src/losses/losses.py L2705 at v3.15.1).
    *keras_pair("Circle", "circle", "circle",
                params={"gamma": "gamma", "margin": "margin", "remove_diagonal": "remove_diagonal"},
                class_conventions={"mean_over": "positive", "zero_division": "zero"},
                backends={"jax": {"floor_tie": "half"}, "torch": {"floor_tie": "half"}}),
    # the function form against a reference set of its own size (Keras: ``ref_embeddings``, ``ref_labels``)
    *keras_pair(None, "circle", "circle_ref", "ref_labels=ref_labels, ref_embeddings=ref_embeddings",
                params={"gamma": "gamma", "margin": "margin", "remove_diagonal": "remove_diagonal"},
                backends={"jax": {"floor_tie": "half"}, "torch": {"floor_tie": "half"}}),
]
# fmt: on
