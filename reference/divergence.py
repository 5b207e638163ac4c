"""KL divergence: PyTorch/optax style (log-space input) and Keras style (probabilities)."""

from __future__ import annotations

import numpy as np

from lossparity.reference._math import clip_in_dtype, times, xlogy
from lossparity.reference.reduction import reduce
from lossparity.reference.trace import NO_TRACE, reading


def kl_div(
    input, target, *, log_target=False, reduction="mean", sample_axis=None,
    dtype=np.float32, trace=NO_TRACE,
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


def kl_div_probs(
    input, target, *, reduction="mean", prob_eps=None, dtype=np.float32, trace=NO_TRACE,
):
    """sum_c y_c log(y_c / p_c) over the last axis, for probabilities ``input`` = p and ``target`` = y.

    With ``prob_eps`` both are clipped into [eps, 1] first (Keras KLDivergence).
    """
    p = trace("input", np.asarray(input, np.float64), reading(input, "probabilities", classes=True))
    y = np.asarray(target, np.float64)
    if prob_eps is not None:
        p = trace("clip", clip_in_dtype(p, prob_eps, dtype, upper_one=True), f"q clipped into [{prob_eps}, 1]")
        y = trace("clip target", clip_in_dtype(y, prob_eps, dtype, upper_one=True), f"p clipped into [{prob_eps}, 1]")
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = xlogy(y, y) - xlogy(y, p)
    loss = trace("per-sample loss", np.sum(loss, axis=-1), "sum_c p_c log(p_c / q_c)")
    return reduce(loss, reduction=reduction, trace=trace)
