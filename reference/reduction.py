"""The one shared reduction: weighting, ignore masks, per-sample axis, and none/sum/mean/batchmean.

Every oracle hands its per-element loss here, so a convention about how ``mean`` is
weighted or what an empty mean returns is written once (compare Keras'
``keras/src/losses/loss.py``); so is its gradient, :func:`reduce_grad`, which every
oracle's gradient applies with :func:`chain`.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from lossparity.reference._math import times
from lossparity.reference.errors import OracleError
from lossparity.reference.rounding import reduction_error, unit_roundoff
from lossparity.reference.trace import NO_TRACE

#: The reductions only Keras' loss classes take (``keras/src/losses/loss.py``, ``reduce_values``):
#: ``sum_over_batch_size``, Keras' default, is the same mean as ``mean`` (the sum over the number of
#: elements); ``mean_with_sample_weight`` divides the weighted sum by the sum of the sample weights
#: (by the number of elements when no weight is given). Both divide with ``divide_no_nan``.
KERAS_REDUCTIONS = ("sum_over_batch_size", "mean_with_sample_weight")

#: The reduction only ``tf.compat.v1.losses`` takes, its default (``Reduction.SUM_BY_NONZERO_WEIGHTS``,
#: the same string as ``SUM_OVER_NONZERO_WEIGHTS``): the weighted sum over the number of non-zero
#: weights (broadcast to the losses), ``div_no_nan``. Without weights, the mean.
TF_V1_REDUCTIONS = ("sum_by_nonzero_weights",)

#: Every reduction a spec may take (``batchmean``: KL divergence's sum over the batch size). The
#: one list: the ``reduction`` parameter's domain and the generators' menus read it.
REDUCTIONS = ("none", "sum", "mean", "batchmean", *KERAS_REDUCTIONS, *TF_V1_REDUCTIONS)

#: The weighted reductions (``reference/reduction.py``'s ``sample_weight`` mechanism), whose mean
#: without a weight is the plain mean.
WEIGHTED_REDUCTIONS = (*KERAS_REDUCTIONS, *TF_V1_REDUCTIONS)


def exact_sum(x: np.ndarray) -> float:
    """Correctly rounded sum of all elements (``math.fsum``), IEEE semantics for inf/nan."""
    flat = np.asarray(x, dtype=np.float64).ravel()
    if not np.all(np.isfinite(flat)):
        return float(np.sum(flat))
    try:
        return math.fsum(flat)
    except OverflowError:  # a partial sum past float64's range (1.8e308 + 1.8e308): halved, summed,
        # doubled, the sum is +-inf when it is out of range and exact when it is back in range
        return math.fsum(flat * 0.5) * 2.0


def _divide(num: float, den: float, zero_division: str) -> float:
    if den == 0:
        if zero_division == "zero":
            return 0.0
        return math.nan if num == 0 or math.isnan(num) else math.copysign(math.inf, num)
    return num / den


def reduce(
    loss: np.ndarray,
    *,
    reduction: str,
    mask: np.ndarray | None = None,
    denom_weight: np.ndarray | None = None,
    sample_axis: str | None = None,
    mean_by: str = "elements",
    zero_division: str = "nan",
    trace=NO_TRACE,
) -> np.ndarray:
    """Reduce an already weighted per-element ``loss`` (float64, any shape).

    ``mask`` (same shape, bool) marks the counted elements: masked-out elements
    contribute exactly 0 whatever their loss (an ignored target with an infinite loss
    is still ignored). ``denom_weight`` is what ``mean_by="weights"`` divides by
    (PyTorch: the class weight of each counted target). ``sample_axis`` first reduces
    the last axis ("mean" or "sum"), giving one loss per sample.
    """
    loss = np.asarray(loss, dtype=np.float64)
    if reduction in WEIGHTED_REDUCTIONS:  # without sample weights, the mean (over the counted elements)
        reduction = "mean"
    if mask is not None:
        loss = trace("mask", np.where(mask, loss, 0.0), "ignored targets contribute 0")
    if sample_axis is not None:
        if loss.ndim == 0:
            raise ValueError("sample_axis needs at least one axis")
        if sample_axis == "mean":
            n = loss.shape[-1]
            loss = np.sum(loss, axis=-1) / n if n else np.full(loss.shape[:-1], math.nan)
        else:
            loss = np.sum(loss, axis=-1)
        loss = trace(f"{sample_axis} over last axis", loss, "one loss per sample")
        mask = None if mask is None else np.any(mask, axis=-1)
        denom_weight = None
    if reduction == "none":
        return trace("reduction", loss, "none: the per-element losses")
    total = exact_sum(loss)
    if reduction == "sum":
        return trace("reduction", np.float64(total), "sum")
    if reduction == "batchmean":
        n = loss.shape[0] if loss.ndim else 1
        return trace("reduction", np.float64(_divide(total, n, zero_division)), f"batchmean: sum / batch size {n}")
    if reduction != "mean":
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {REDUCTIONS}")
    den, how = _mean_denominator(loss.shape, mask, denom_weight, mean_by)
    return trace("reduction", np.float64(_divide(total, den, zero_division)), f"mean: sum / {how} ({den:g})")


def _mean_denominator(shape, mask, denom_weight, mean_by) -> tuple[float, str]:
    """What 'mean' divides by, and its name: the counted elements, or the sum of their weights."""
    counted = np.ones(shape, dtype=bool) if mask is None else np.asarray(mask, bool)
    if mean_by == "weights" and denom_weight is not None:
        return exact_sum(np.where(counted, denom_weight, 0.0)), "sum of the counted targets' weights"
    return float(np.count_nonzero(counted)), "number of counted elements"


def reduce_grad(
    shape: tuple[int, ...],
    *,
    reduction: str,
    mask=None,
    denom_weight=None,
    sample_axis=None,
    mean_by: str = "elements",
    zero_division: str = "nan",
) -> np.ndarray:
    """The cotangent of :func:`reduce`: d sum(out) / d loss, float64 of the loss's ``shape``.

    Takes the keywords of :func:`reduce`; the output's cotangent is ones, so each per-element
    loss is multiplied by 1 ('none', 'sum'), 1/den ('mean'), 1/batch ('batchmean'), times
    1/n for ``sample_axis="mean"``. Masked-out elements get exactly 0; callers multiply with
    ``times`` so that 0 also wins over an infinite or NaN slope. A zero denominator gives 0
    with zero_division="zero" (the value is then the constant 0) and 1/0 = inf otherwise,
    which only counted elements whose weights all are 0 can meet (an all-ignored batch has
    no counted element, so its gradient is 0 everywhere).
    """
    shape = tuple(shape)
    if reduction in WEIGHTED_REDUCTIONS:
        reduction = "mean"
    counted = np.ones(shape, dtype=bool) if mask is None else np.broadcast_to(np.asarray(mask, bool), shape)
    outer, per_sample = counted, 1.0
    if sample_axis is not None:
        if not shape:
            raise ValueError("sample_axis needs at least one axis")
        outer, denom_weight = np.any(counted, axis=-1), None
        per_sample = 1.0 / shape[-1] if sample_axis == "mean" and shape[-1] else 1.0
    if reduction in ("none", "sum"):
        scale = 1.0
    elif reduction == "batchmean":
        scale = _divide(1.0, outer.shape[0] if outer.ndim else 1, zero_division)
    elif reduction == "mean":
        scale = _divide(1.0, _mean_denominator(outer.shape, outer, denom_weight, mean_by)[0], zero_division)
    else:
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {REDUCTIONS}")
    return np.where(counted, scale * per_sample, 0.0)


def chain(g: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """``grad`` (d loss / d x: the loss's shape, or that plus a trailing class axis) times the
    cotangent ``g`` of :func:`reduce_grad`, with 0 wherever ``g`` is 0 (masked elements),
    whatever their slope."""
    g = np.asarray(g, np.float64)
    grad = np.asarray(grad, np.float64)
    return times(g.reshape(g.shape + (1,) * (grad.ndim - g.ndim)), grad)


# ----------------------------------------------------------------------------- Keras' sample_weight
# A Keras loss class computes its loss function's per-sample output (``values``), then
# ``reduce_weighted_values`` (``keras/src/losses/loss.py``) multiplies it by ``sample_weight`` and
# reduces: one mechanism for every class, written here once. Its conventions:
# - how weights broadcast: ``squeeze_or_expand_to_same_rank(values, sample_weight)`` first (where the
#   ranks differ by one and the longer one ends in 1: a rank-1 other side gets a trailing 1, else the
#   1 is squeezed), then NumPy broadcasting (trailing axes first);
# - what the mean divides by: ``sum_over_batch_size`` and ``mean`` by the number of elements of the
#   weighted values, ``mean_with_sample_weight`` by the sum of the (aligned, unbroadcast) weights; a
#   zero divisor gives 0 (``divide_no_nan``), whatever the sum;
# - weighted values of shape () or (0,) are returned as they are, whatever the reduction.


def _keras_align(shape: tuple[int, ...], w_shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The shapes of ``values`` and ``sample_weight`` after Keras' ``squeeze_or_expand_to_same_rank``."""
    vs, ws = tuple(shape), tuple(w_shape)
    if len(vs) == len(ws) + 1 and vs and vs[-1] == 1:
        if len(ws) == 1:
            ws = ws + (1,)
        else:
            vs = vs[:-1]
    elif len(ws) == len(vs) + 1 and ws and ws[-1] == 1:
        if len(vs) == 1:
            vs = vs + (1,)
        else:
            ws = ws[:-1]
    return vs, ws


def _keras_weighting(shape, sample_weight):
    """(aligned values shape, aligned weights float64, weighted shape); OracleError("ValueError")
    where Keras' broadcasting fails (a weight of the wrong shape): Keras raises it."""
    w = np.asarray(sample_weight, np.float64)
    vs, ws = _keras_align(tuple(shape), w.shape)
    try:
        out = np.broadcast_shapes(vs, ws)
    except ValueError:  # Keras' own broadcast raises: the documented outcome is that error
        raise OracleError(
            "ValueError",
            f"sample_weight of shape {w.shape} does not broadcast against the per-sample losses "
            f"of shape {tuple(shape)}",
        ) from None
    return vs, w.reshape(ws), out


def keras_weighted_shape(shape: tuple[int, ...], w_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of Keras' weighted values for per-sample losses of ``shape`` and a
    ``sample_weight`` of ``w_shape``; ValueError (one line) where Keras cannot broadcast them."""
    try:
        return _keras_weighting(shape, np.zeros(w_shape))[2]
    except OracleError as exc:
        raise ValueError(str(exc)) from None


def _keras_scale(w: np.ndarray, out: tuple[int, ...], reduction: str) -> tuple[np.ndarray, float | None, str]:
    """Each weighted value's factor in the result (``w / divisor``, broadcast to ``out``), the
    divisor (None: no division) and its name."""
    unreduced = reduction == "none" or out in ((), (0,))
    if unreduced or reduction == "sum":
        return np.broadcast_to(w, out), None, ""
    if reduction in ("mean", "sum_over_batch_size"):
        den, how = float(math.prod(out)), "number of weighted elements"
    elif reduction == "mean_with_sample_weight":
        den, how = exact_sum(w), "sum of the sample weights"
    elif reduction == "sum_by_nonzero_weights":  # tf.compat.v1's _num_present: weights already broadcast
        den, how = float(np.count_nonzero(np.broadcast_to(w, out))), "number of non-zero weights"
    else:
        # Keras' Loss(reduction=...) refuses it (losses/loss.py standardize_reduction): a ValueError
        raise OracleError(
            "ValueError", f"Keras has no reduction {reduction!r}; expected one of none, sum, mean, {KERAS_REDUCTIONS}"
        )
    factor = np.zeros(out) if den == 0 else np.broadcast_to(w, out) / den
    return factor, den, how


def keras_reduce(values: np.ndarray, sample_weight: np.ndarray, *, reduction: str, trace=NO_TRACE) -> np.ndarray:
    """Keras' ``reduce_weighted_values`` of a loss function's per-sample ``values`` (float64, any
    shape) under ``sample_weight`` (the shapes above), float64: the weighted values ('none', or
    weighted values of shape () or (0,)), their sum, or the sum over the divisor of ``reduction``
    (0 where that divisor is 0, ``divide_no_nan``). ``reduction`` is a spec reduction: 'none',
    'sum', 'mean' or one of :data:`KERAS_REDUCTIONS`."""
    values = np.asarray(values, np.float64)
    vs, w, out = _keras_weighting(values.shape, sample_weight)
    with np.errstate(invalid="ignore"):  # IEEE as the framework multiplies: 0 * inf is nan
        weighted = trace("sample weight", values.reshape(vs) * w, "per-sample loss * sample_weight (Keras' broadcast)")
    if reduction == "none" or out in ((), (0,)):
        return trace("reduction", weighted, "none: the weighted per-sample losses")
    total = exact_sum(weighted)
    if reduction == "sum":
        return trace("reduction", np.float64(total), "sum")
    _, den, how = _keras_scale(w, out, reduction)
    value = 0.0 if den == 0 else total / den
    return trace("reduction", np.float64(value), f"{reduction}: sum / {how} ({den:g}), 0 if that is 0")


def keras_reduce_grad(shape: tuple[int, ...], sample_weight: np.ndarray, *, reduction: str) -> np.ndarray:
    """The cotangent of :func:`keras_reduce`: d sum(out) / d values, float64 of ``shape`` (the
    weights held fixed): each value's weight over the divisor, summed over the axes the weights
    broadcast it along."""
    vs, w, out = _keras_weighting(shape, sample_weight)
    factor, _, _ = _keras_scale(w, out, reduction)
    return _sum_to(factor, vs).reshape(tuple(shape))


def keras_reduce_weight_grad(values: np.ndarray, sample_weight: np.ndarray, *, reduction: str) -> np.ndarray:
    """d sum(:func:`keras_reduce`) / d ``sample_weight`` (the values held fixed), float64 of the
    weight's shape: the values each weight multiplies, summed, over the divisor; for
    ``mean_with_sample_weight`` less the result over the divisor (the weights' sum is the
    divisor). Where the divisor is 0, ``divide_no_nan`` is the constant 0 there: slope 0."""
    values = np.asarray(values, np.float64)
    vs, w, out = _keras_weighting(values.shape, sample_weight)
    with np.errstate(invalid="ignore"):
        spread = np.broadcast_to(values.reshape(vs), out)
        _, den, _ = _keras_scale(w, out, reduction)
        if den is None:
            g = _sum_to(spread, w.shape)
        elif den == 0:
            g = np.zeros(w.shape)
        elif reduction == "mean_with_sample_weight":
            g = _sum_to(spread, w.shape) / den - exact_sum(spread * np.broadcast_to(w, out)) / den**2
        else:
            g = _sum_to(spread, w.shape) / den
    return np.asarray(g, np.float64).reshape(np.shape(sample_weight))


def _sum_to(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` (a broadcast of an array of ``shape``) summed back to ``shape``: over its leading
    axes and those where ``shape`` has 1."""
    a = np.asarray(a, np.float64)
    lead = a.ndim - len(shape)
    a = np.sum(a, axis=tuple(range(lead))) if lead else a
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and a.shape[i] != 1)
    return np.sum(a, axis=axes, keepdims=True) if axes else a


# ----------------------------------------------------------------------------- tf.compat.v1.losses' weights
# ``tf.compat.v1.losses.*`` compute their losses (elementwise, or one per sample for the softmax
# cross-entropies), then ``compute_weighted_loss`` (``tensorflow/python/ops/losses/losses_impl.py``)
# weights and reduces them: the same products, sums and quotients as Keras' mechanism above, with
# these conventions of their own (``weighting="tf_v1"``):
# - how weights broadcast: ``weights_broadcast_ops.assert_broadcastable``: a scalar, or of the
#   losses' rank with each extent 1 or the losses' (no squeeze or expand: a ``(N,)`` weight against
#   ``(N, D)`` losses raises ``ValueError``); the default ``weights=1.0``;
# - what each ``Reduction`` divides by: ``SUM_OVER_BATCH_SIZE`` the number of losses, ``MEAN`` the sum
#   of the weights broadcast to the losses (``ones_like(losses) * weights``), ``SUM_BY_NONZERO_WEIGHTS``
#   (the default; ``SUM_OVER_NONZERO_WEIGHTS`` is the same string) the number of non-zero weights so
#   broadcast (``_num_present``); every quotient ``div_no_nan`` (0 where the divisor is 0, whatever the
#   sum: all-zero weights give 0);
# - ``sparse_softmax_cross_entropy`` first squeezes the last axis of weights one rank above the labels
#   (``_remove_squeezable_dimensions``: a ``(N, 1)`` weight for ``(N,)`` losses), ``weighting="tf_v1_squeeze"``;
# - the result is one scalar for every reduction but ``NONE`` (empty or 0-d losses included);
# - they cast the losses and weights to float32 and the result back to the losses' dtype.

#: The spec's reduction -> ``tf.compat.v1.losses.Reduction``'s value (``Binding.values``): the spec's
#: ``mean`` (the sum over the number of elements) is ``SUM_OVER_BATCH_SIZE``, ``mean_with_sample_weight``
#: (over the sum of the weights) is ``MEAN``.
TF_V1_REDUCTION_VALUES = {
    "none": "none",
    "sum": "weighted_sum",
    "mean": "weighted_sum_over_batch_size",
    "sum_over_batch_size": "weighted_sum_over_batch_size",
    "mean_with_sample_weight": "weighted_mean",
    "sum_by_nonzero_weights": "weighted_sum_by_nonzero_weights",
}
_TF_V1_AS_KERAS = {"mean": "sum_over_batch_size"}  # the divisor of Keras' reduction of that name
#: The values of the ``weighting`` convention that are tf.compat.v1's (the default, ``"keras"``, is Keras').
TF_V1_WEIGHTINGS = ("tf_v1", "tf_v1_squeeze")


def tf_v1_weights(shape: tuple[int, ...], weights, squeeze: bool = False) -> np.ndarray:
    """``weights`` (None: 1.0) broadcast to losses of ``shape``, float64; OracleError("ValueError")
    where ``assert_broadcastable`` refuses them (TensorFlow raises it). ``squeeze``: weights one rank
    above the losses first lose their last axis, which must be 1 (``array_ops.squeeze`` raises
    InvalidArgumentError otherwise)."""
    w = np.asarray(1.0 if weights is None else weights, np.float64)
    shape = tuple(shape)
    if squeeze and w.ndim == len(shape) + 1:
        if w.shape[-1] != 1:
            raise OracleError(
                "InvalidArgumentError", f"Can not squeeze dim[{w.ndim - 1}] of weights of shape {w.shape}"
            )
        w = w[..., 0]
    if w.ndim and (w.ndim != len(shape) or any(a not in (1, b) for a, b in zip(w.shape, shape))):
        raise OracleError(
            "ValueError",
            f"weights can not be broadcast to values: weights of shape {w.shape}, losses of shape {shape} "
            "(a scalar, or the losses' rank with each extent 1 or the losses')",
        )
    return np.broadcast_to(w, shape)


def _tf_v1_flat(shape, weights, reduction, squeeze=False):
    """Losses of ``shape`` as one row ``(1, n)`` (so Keras' mechanism reduces 0-d and empty losses
    too), the broadcast weights in that row, and the Keras reduction of the same divisor."""
    if reduction not in TF_V1_REDUCTION_VALUES:
        raise OracleError(  # Reduction.validate: "Invalid Reduction Key"
            "ValueError",
            f"tf.compat.v1.losses has no reduction {reduction!r}; expected one of {tuple(TF_V1_REDUCTION_VALUES)}",
        )
    w = tf_v1_weights(shape, weights, squeeze)
    return (1, w.size), w.reshape(1, w.size), _TF_V1_AS_KERAS.get(reduction, reduction)


def tf_v1_reduce(losses: np.ndarray, weights, *, reduction: str, squeeze: bool = False, trace=NO_TRACE) -> np.ndarray:
    """``tf.compat.v1.losses.compute_weighted_loss(losses, weights, reduction=...)`` of ``losses``
    (float64, any shape) under ``weights`` (None: 1.0; a scalar or the losses' rank, each extent 1 or
    the losses'), float64: the weighted losses (``none``) or one scalar. ``reduction`` is a spec
    reduction (:data:`TF_V1_REDUCTION_VALUES`); ``squeeze``: see :func:`tf_v1_weights`."""
    losses = np.asarray(losses, np.float64)
    flat, w, keras = _tf_v1_flat(losses.shape, weights, reduction, squeeze)
    out = keras_reduce(losses.reshape(flat), w, reduction=keras, trace=trace)
    return out.reshape(losses.shape) if reduction == "none" else out


def tf_v1_reduce_grad(shape: tuple[int, ...], weights, *, reduction: str, squeeze: bool = False) -> np.ndarray:
    """The cotangent of :func:`tf_v1_reduce`: d sum(out) / d losses, float64 of ``shape``: each
    loss's broadcast weight over the divisor (a count of weights: constant in the weights)."""
    flat, w, keras = _tf_v1_flat(shape, weights, reduction, squeeze)
    return keras_reduce_grad(flat, w, reduction=keras).reshape(tuple(shape))


def tf_v1_reduce_weight_grad(losses: np.ndarray, weights, *, reduction: str, squeeze: bool = False) -> np.ndarray:
    """d sum(:func:`tf_v1_reduce`) / d ``weights``, float64 of the weights' shape: the broadcast
    weights' slopes (Keras' :func:`keras_reduce_weight_grad` of that divisor) summed back over the
    axes the weights broadcast along; ``MEAN``'s divisor is the weights' sum, the others' a count."""
    losses = np.asarray(losses, np.float64)
    flat, w, keras = _tf_v1_flat(losses.shape, weights, reduction, squeeze)
    g = keras_reduce_weight_grad(losses.reshape(flat), w, reduction=keras).reshape(losses.shape)
    shape = np.shape(1.0 if weights is None else weights)
    squeezed = shape[:-1] if squeeze and len(shape) == losses.ndim + 1 else shape
    return _sum_to(g, squeezed).reshape(shape)


def sample_weighted(oracle):
    """``oracle`` with a ``sample_weight`` keyword and the ``weighting`` convention that reads it:
    ``"keras"`` (default): without a weight, the oracle itself; with one, its per-sample losses
    (``reduction="none"``, under the same conventions) reduced by :func:`keras_reduce`.
    ``"tf_v1"``: its losses always reduced by :func:`tf_v1_reduce` (no weight: ``weights=1.0``,
    ``tf.compat.v1.losses``' default)."""

    @functools.wraps(oracle)
    def weighted(*args, sample_weight=None, weighting="keras", **kw):
        if sample_weight is None and weighting not in TF_V1_WEIGHTINGS:
            return oracle(*args, **kw)
        reduction = kw.pop("reduction", "mean")
        per = oracle(*args, reduction="none", **kw)
        trace = kw.get("trace", NO_TRACE)
        if weighting in TF_V1_WEIGHTINGS:
            squeeze = weighting == "tf_v1_squeeze"
            return tf_v1_reduce(per, sample_weight, reduction=reduction, squeeze=squeeze, trace=trace)
        return keras_reduce(per, sample_weight, reduction=reduction, trace=trace)

    return weighted


def sample_weighted_grad(gradient, oracle, reduced=None):
    """``gradient`` (a spec's: d sum(out) / d each argument, by name) with Keras' ``sample_weight``:
    each argument's gradient of the per-sample losses (``reduction="none"``) times its sample's
    cotangent (:func:`keras_reduce_grad`). Exact for losses whose per-sample output depends on
    that sample's row alone (an argument's leading axes are the per-sample shape). Also gives
    ``sample_weight``'s own (:func:`keras_reduce_weight_grad`), whose divide_no_nan at a zero
    divisor a numerical slope cannot read. ``reduced(kw, ndim)``: the axes of an argument of rank
    ``ndim`` that the per-sample loss reduces, where they are not its trailing ones (Keras'
    ``cosine_similarity(axis=0)``, ``dice(axis=(1, 2))``): the cotangent is spread along them."""

    @functools.wraps(gradient)
    def weighted(*args, sample_weight=None, weighting="keras", **kw):
        if sample_weight is None and weighting not in TF_V1_WEIGHTINGS:
            return gradient(*args, **kw)
        reduction = kw.pop("reduction", "mean")
        kw.pop("trace", None)
        with np.errstate(all="ignore"):
            per = np.asarray(oracle(*args, reduction="none", **kw), np.float64)
        if weighting in TF_V1_WEIGHTINGS:
            v1 = {"reduction": reduction, "squeeze": weighting == "tf_v1_squeeze"}
            g = tf_v1_reduce_grad(per.shape, sample_weight, **v1)
        else:
            g = keras_reduce_grad(per.shape, sample_weight, reduction=reduction)
        grads = gradient(*args, reduction="none", **kw)
        out = {name: _per_sample_times(g, d, name, reduced and reduced(kw, np.ndim(d))) for name, d in grads.items()}
        if sample_weight is None:
            return out
        if weighting in TF_V1_WEIGHTINGS:
            out["sample_weight"] = tf_v1_reduce_weight_grad(per, sample_weight, **v1)
        else:
            out["sample_weight"] = keras_reduce_weight_grad(per, sample_weight, reduction=reduction)
        return out

    return weighted


def _per_sample_times(g: np.ndarray, d: np.ndarray, name: str, axes=None) -> np.ndarray:
    """Each per-sample cotangent ``g`` times the slopes ``d`` of its sample's elements: ``g``'s
    shape is ``d``'s leading axes, or ``d``'s shape less ``axes`` (the reduced ones), or ``d``'s
    with the reduced axes kept at extent 1."""
    d = np.asarray(d, np.float64)
    if axes is not None and d.shape[: g.ndim] != g.shape:
        axes = sorted(a % d.ndim for a in axes) if d.ndim else []
        if g.shape == tuple(n for i, n in enumerate(d.shape) if i not in axes):
            with np.errstate(invalid="ignore"):
                return np.expand_dims(g, tuple(axes)) * d
    if d.shape[: g.ndim] != g.shape and g.ndim == d.ndim and all(n in (1, m) for n, m in zip(g.shape, d.shape)):
        # per-sample losses that keep their reduced axes (extent 1: tf.compat.v1's cosine_distance)
        with np.errstate(invalid="ignore"):
            return g * d
    if d.shape[: g.ndim] != g.shape:
        raise ValueError(f"the gradient of {name!r} ({d.shape}) is not laid out per sample ({g.shape})")
    with np.errstate(invalid="ignore"):  # IEEE, as the framework's chain rule: 0 * inf is nan
        return g.reshape(g.shape + (1,) * (d.ndim - g.ndim)) * d


def _weight_slope_error(per_loss, per_scale, sample_weight, reduction: str, r: float = 1.0) -> np.ndarray:
    """The rounding of d/d ``sample_weight`` (:func:`keras_reduce_weight_grad`) in units of u: the
    values each weight multiplies, with their own errors (``per_scale``) and one rounding each,
    over the divisor; ``mean_with_sample_weight``'s slope (l_k - mean) / sum(w) is a difference of
    two such terms, each carried (the mean's own error: :func:`reduction_error`), however small
    the difference (a sample whose loss is the mean has slope 0 and a rounding of l_k / sum(w)).
    ``r``: the weighting's roundoff in units of u (:data:`WEIGHTING_STAGE`)."""
    loss = np.where(np.isfinite(per_loss), per_loss, 0.0)
    vs, w, out = _keras_weighting(loss.shape, sample_weight)
    terms = np.broadcast_to(r * np.abs(loss.reshape(vs)) + np.reshape(per_scale, vs), out)
    _, den, _ = _keras_scale(w, out, reduction)
    if den is None:
        return _sum_to(terms, w.shape).reshape(np.shape(sample_weight))
    if den == 0:
        return np.zeros(np.shape(sample_weight))
    own = _sum_to(terms, w.shape) / abs(den)
    if reduction == "mean_with_sample_weight":
        g = keras_reduce_grad(loss.shape, sample_weight, reduction=reduction)
        mean = abs(exact_sum(loss.reshape(vs) * w)) / abs(den)
        own = own + r * (reduction_error(per_scale, loss, g, "sum") + mean) / abs(den) * np.ones(w.shape)
    return np.asarray(own, np.float64).reshape(np.shape(sample_weight))


#: The error-model stage of a weighting computed in float32 whatever the losses' dtype
#: (``tf.compat.v1.losses.compute_weighted_loss`` casts the losses and weights to float32): its
#: products, sum and quotient, and the losses' cast, round in float32 (u32 / u units of u each).
WEIGHTING_STAGE = "float32 weighting"


def sample_weighted_error(model, oracle, reduced=None):
    """An error model (``reference/rounding.py``; called like the oracle, with ``stages``) with
    Keras' ``sample_weight``: the per-sample model (``reduction="none"``) carried through the
    weighting, whose product, sum and division each add one rounding per term
    (:func:`~lossparity.reference.rounding.reduction_error`); gradients scaled by each sample's
    |cotangent| (``reduced``: as :func:`sample_weighted_grad`'s)."""

    @functools.wraps(model)
    def weighted(*args, sample_weight=None, weighting="keras", stages=(), **kw):
        if sample_weight is None and weighting not in TF_V1_WEIGHTINGS:
            return model(*args, stages=stages, **kw)
        reduction = kw.pop("reduction", "mean")
        kw.pop("trace", None)
        r = 2.0**-24 / unit_roundoff(np.dtype(kw.get("dtype", np.float32))) if WEIGHTING_STAGE in stages else 1.0
        stages = tuple(x for x in stages if x != WEIGHTING_STAGE)
        scales = model(*args, stages=stages, reduction="none", **kw)
        with np.errstate(all="ignore"):
            per_loss = np.asarray(oracle(*args, reduction="none", **kw), np.float64)
        given = sample_weight
        if weighting in TF_V1_WEIGHTINGS:  # the same products, sums and quotient as Keras' on the broadcast weights
            sample_weight = tf_v1_weights(per_loss.shape, sample_weight, weighting == "tf_v1_squeeze")
            reduction = _TF_V1_AS_KERAS.get(reduction, reduction)
        g = keras_reduce_grad(per_loss.shape, sample_weight, reduction=reduction)
        out = {}
        for name, s in scales.items():
            s = np.asarray(s, np.float64)
            if name == "value":
                terms = np.abs(g * np.where(np.isfinite(per_loss), per_loss, 0.0))
                if reduction == "none" or per_loss.shape in ((), (0,)):
                    vs, w, shape = _keras_weighting(per_loss.shape, sample_weight)
                    loss = np.where(np.isfinite(per_loss), per_loss, 0.0).reshape(vs)
                    out[name] = np.abs(np.broadcast_to(w, shape)) * s.reshape(vs) + r * np.abs(w * loss)
                else:
                    out[name] = reduction_error(s, per_loss, g, "sum") + r * np.sum(terms)
            else:
                out[name] = _per_sample_times(np.abs(g), s, name, reduced and reduced(kw, np.ndim(s)))
        if given is not None:
            slope = _weight_slope_error(per_loss, np.asarray(scales["value"], np.float64), sample_weight, reduction, r)
            shape = np.shape(given)
            squeezed = shape[:-1] if len(shape) == per_loss.ndim + 1 else shape
            out["sample_weight"] = _sum_to(slope, squeezed).reshape(shape)
        return out

    return weighted
