"""The one shared reduction: weighting, ignore masks, per-sample axis, and none/sum/mean/batchmean.

Every oracle hands its per-element loss here, so a convention about how ``mean`` is
weighted or what an empty mean returns is written once (compare Keras'
``keras/src/losses/loss.py``).
"""

from __future__ import annotations

import math

import numpy as np

from lossparity.reference.trace import NO_TRACE

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
        return trace("reduction", np.float64(_divide(total, n, zero_division)),
                     f"batchmean: sum / batch size {n}")
    if reduction != "mean":
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {REDUCTIONS}")
    counted = np.ones(loss.shape, dtype=bool) if mask is None else np.asarray(mask, bool)
    if mean_by == "weights" and denom_weight is not None:
        den = exact_sum(np.where(counted, denom_weight, 0.0))
        how = "sum of the counted targets' weights"
    else:
        den = float(np.count_nonzero(counted))
        how = "number of counted elements"
    return trace("reduction", np.float64(_divide(total, den, zero_division)),
                 f"mean: sum / {how} ({den:g})")
