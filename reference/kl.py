"""KL divergence: PyTorch/optax style (log-space input) and Keras style (probabilities).

Each oracle ``f`` has a gradient ``f_grad`` with the same arguments, returning
``{"input": ..., "target": ...}`` (d sum(out) / d each, float64, in its shape); see
``reference/crossentropy.py`` for the rules they share.
"""

from __future__ import annotations

import numpy as np

from lossparity.reference._math import clip_bounds, clip_grad, over, times, xlogy
from lossparity.reference.reduction import chain, reduce, reduce_grad
from lossparity.reference.trace import NO_TRACE, reading


def kl_div(
    input,
    target,
    *,
    log_target=False,
    reduction="mean",
    sample_axis=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Pointwise p * (log p - input), ``input`` = log q; with ``log_target`` the target is log p.

    Same shapes for both; ``batchmean`` divides the sum by ``input.shape[0]``.
    """
    log_q = trace("input", np.asarray(input, np.float64), reading(input, "log-probabilities", classes=False))
    t = np.asarray(target, np.float64)
    if log_target:
        with np.errstate(invalid="ignore"):
            loss = times(np.exp(t), t - log_q)
        note = "exp(t) * (t - log q), target given as log p"
    else:
        with np.errstate(invalid="ignore"):
            loss = xlogy(t, t) - times(t, log_q)
        note = "p log p - p log q, 0 where p = 0"
    loss = trace("per-element loss", loss, note)
    return reduce(loss, reduction=reduction, sample_axis=sample_axis, trace=trace)


def kl_div_grad(
    input,
    target,
    *,
    log_target=False,
    reduction="mean",
    sample_axis=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradients of :func:`kl_div`, both in the input's shape.

    d/d input = -p, or -exp(t) with ``log_target``. d/d target = log p + 1 - input: -inf at
    p = 0 (the slope of p log p there) and NaN where the input is -inf too; with
    ``log_target`` exp(t) (t + 1 - input), 0 at t = -inf, where the term is constantly 0.
    """
    log_q, t = np.asarray(input, np.float64), np.asarray(target, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if log_target:
            p = np.exp(t)
            d_t = times(p, t - log_q + 1.0)
        else:
            p = t
            d_t = np.log(t) - log_q + 1.0
    g = reduce_grad(np.shape(d_t), reduction=reduction, sample_axis=sample_axis)
    return {"input": chain(g, -np.broadcast_to(p, np.shape(d_t))), "target": chain(g, d_t)}


def _clipped_pair(input, target, prob_eps, dtype, trace):
    """(p, y) as given, the clip bounds [eps, 1] (or None), and (p, y) clipped."""
    p = trace("input", np.asarray(input, np.float64), reading(input, "probabilities", classes=True))
    y = np.asarray(target, np.float64)
    if prob_eps is None:
        return p, y, None, p, y
    bounds = clip_bounds(prob_eps, dtype, upper_one=True)
    return (
        p,
        y,
        bounds,
        trace("clip", np.clip(p, *bounds), f"q clipped into [{prob_eps}, 1]"),
        trace("clip target", np.clip(y, *bounds), f"p clipped into [{prob_eps}, 1]"),
    )


def kl_div_probs(
    input,
    target,
    *,
    reduction="mean",
    prob_eps=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """sum_c y_c log(y_c / p_c) over the last axis, for probabilities ``input`` = p and ``target`` = y.

    With ``prob_eps`` both are clipped into [eps, 1] first (Keras KLDivergence).
    """
    *_, p, y = _clipped_pair(input, target, prob_eps, dtype, trace)
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = xlogy(y, y) - xlogy(y, p)
    loss = trace("per-sample loss", np.sum(loss, axis=-1), "sum_c p_c log(p_c / q_c)")
    return reduce(loss, reduction=reduction, trace=trace)


def kl_div_probs_grad(
    input,
    target,
    *,
    reduction="mean",
    prob_eps=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradients of :func:`kl_div_probs`, both ``(..., C)``.

    d/dp = -y/p (0 where y = 0); d/dy = log y + 1 - log p (-inf at y = 0, the slope of
    y log y there); each 0 strictly outside its ``prob_eps`` clip into [eps, 1].
    """
    p, y, bounds, p_c, y_c = _clipped_pair(input, target, prob_eps, dtype, NO_TRACE)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_p, d_y = -over(y_c, p_c), np.log(y_c) - np.log(p_c) + 1.0
    if bounds is not None:
        d_p, d_y = clip_grad(p, *bounds, d_p), clip_grad(y, *bounds, d_y)
    g = reduce_grad(np.shape(d_p)[:-1], reduction=reduction)
    return {"input": chain(g, d_p), "target": chain(g, d_y)}
