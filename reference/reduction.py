"""The one shared reduction: weighting, ignore masks, per-sample axis, and none/sum/mean/batchmean.

Every oracle hands its per-element loss here, so a convention about how ``mean`` is
weighted or what an empty mean returns is written once (compare Keras'
``keras/src/losses/loss.py``); so is its gradient, :func:`reduce_grad`, which every
oracle's gradient applies with :func:`chain`.
"""

from __future__ import annotations

import math

import numpy as np

from lossparity.reference._math import times
from lossparity.reference.trace import NO_TRACE

#: Every reduction a spec may take (``batchmean``: KL divergence's sum over the batch size). The
#: one list: the ``reduction`` parameter's domain and the generators' menus read it.
REDUCTIONS = ("none", "sum", "mean", "batchmean")


def exact_sum(x: np.ndarray) -> float:
    """Correctly rounded sum of all elements (``math.fsum``), IEEE semantics for inf/nan."""
    flat = np.asarray(x, dtype=np.float64).ravel()
    if not np.all(np.isfinite(flat)):
        return float(np.sum(flat))
    return math.fsum(flat)


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
