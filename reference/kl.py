"""KL divergence: PyTorch/optax style (log-space input) and Keras style (probabilities).

Each oracle ``f`` has a gradient ``f_grad`` with the same arguments, returning
``{"input": ..., "target": ...}`` (d sum(out) / d each, float64, in its shape); see
``reference/crossentropy.py`` for the rules they share.
"""

from __future__ import annotations

import numpy as np

from lossparity.reference._math import clip_bounds, clip_grad, over, times, xlogy
from lossparity.reference.reduction import chain, reduce, reduce_grad
from lossparity.reference.rounding import reduction_error, subnormal_spacing, unit_roundoff
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
    clip_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """sum_c y_c log(y_c / p_c) over the last axis, for probabilities ``input`` = p and ``target`` = y.

    With ``prob_eps`` both are clipped into [eps, 1] first (Keras KLDivergence); ``clip_tie``
    only concerns the gradient.
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
    clip_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradients of :func:`kl_div_probs`, both ``(..., C)``.

    d/dp = -y/p (0 where y = 0); d/dy = log y + 1 - log p (-inf at y = 0, the slope of
    y log y there); each 0 strictly outside its ``prob_eps`` clip into [eps, 1], and at a
    bound (exactly eps or 1: every probability of 1) whole with ``clip_tie="pass"``
    (torch.clamp, tf.clip_by_value), halved with ``"split"`` (jnp.clip, Keras on JAX).
    """
    p, y, bounds, p_c, y_c = _clipped_pair(input, target, prob_eps, dtype, NO_TRACE)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_p, d_y = -over(y_c, p_c), np.log(y_c) - np.log(p_c) + 1.0
    if bounds is not None:
        d_p, d_y = clip_grad(p, *bounds, d_p, clip_tie), clip_grad(y, *bounds, d_y, clip_tie)
    g = reduce_grad(np.shape(d_p)[:-1], reduction=reduction)
    return {"input": chain(g, d_p), "target": chain(g, d_y)}


# ----------------------------------------------------------------------------- rounding model
# ``Spec.error_model`` of kl_div_probs (``reference/rounding.py`` states the model): the
# first-order bound, in units of the compute dtype's unit roundoff u, of Keras' kl_divergence
# computed as written, ``sum(y * log(y / p), axis=-1)`` on the clipped y and p, in that dtype.

#: The stage the model knows: y * log(y / p) and its sum over the classes, in the dtype.
KL_STAGES = ("log_ratio",)


def kl_div_probs_error(
    input,
    target,
    *,
    reduction="mean",
    prob_eps=None,
    clip_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`kl_div_probs` computed as ``sum_c y_c * log(y_c / p_c)`` in the
    compute dtype (stage ``log_ratio``): {"value", "input", "target"}, units of u, in the shapes
    of the value and of the ``(..., C)`` gradients.

    Per class, y and p clipped (a clip is exact), r = y / p, l = log r, t = y l; h = eta / u,
    eta half the subnormal spacing (a rounded result x below the smallest normal is off by
    eta, not u |x|):

    - r: one rounding, u r + eta; l = log r carries it relatively and rounds once:
      err(l) = u (1 + |l|) + eta / r;
    - t = y l: y err(l) + u |t| + eta = u (y + 2 |t|) + eta (p + 1), as y eta / r = eta p;
    - the sum over C classes, recursive: (C - 1) u sum |t|. Per sample:
      sum_c (y_c + (C + 1) |t_c| + h (p_c + 1)); a reduction adds ``reduction_error``'s.

    Gradients, with g the sample's cotangent (``reduce_grad``; its own rounding one more u):

    - d/dy = g l + g: the product's path g l carries err(l) and rounds once, u |g| (1 + 2|l|)
      + |g| eta / r; the ratio's path (g y / r / p, or times 1 / r: JAX, torch and TensorFlow's
      log and division backwards) has the value g and rounds g y, the division by r (r's own
      error too) and by p, at most 5 u |g| + |g| eta (1 / r + 1 / y + 1 / p); the sum once.
    - d/dp = -g y / p: d r = g y / r as above, then times y / p^2, formed as (y / p) / p
      (torch, TensorFlow) or 1 / (p p) and y (JAX): at most 8 roundings of |g y / p| in all,
      plus eta relative to each intermediate (g y, g p, p^2, g y / p).

    Each gradient bound is pulled back through the clips like the slope itself (0 strictly
    outside, halved at a bound with ``clip_tie="split"``). An overflow (y / p or y / p^2 past
    float16's 65504) is not first order and gives inf: the model does not explain it.
    """
    p, y, bounds, p_c, y_c = _clipped_pair(input, target, prob_eps, dtype, NO_TRACE)
    h = subnormal_spacing(dtype) / unit_roundoff(dtype)
    n = p_c.shape[-1]
    g = np.abs(np.asarray(reduce_grad(np.shape(p_c)[:-1], reduction=reduction), np.float64))
    g_c = np.broadcast_to(g[..., None], p_c.shape)
    some = y_c != 0  # an unclipped y = 0: the term is 0 (a framework's 0 log 0 is NaN: not modelled)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = np.where(some, y_c / p_c, 1.0)
        log_r = np.log(r)
        t = np.abs(y_c * log_r)
        per = np.sum(np.abs(y_c) + (n + 1) * t + h * (p_c + 1), axis=-1)
        loss = kl_div_probs(p, y, reduction="none", prob_eps=prob_eps, dtype=dtype)
        # eta relative to each intermediate x of a path costs |path| h / |x|
        small_y = np.where(some, h * (1 / r + 1 / y_c + 1 / p_c), 0.0)
        e_y = g_c * (6 + 2 * np.abs(log_r) + small_y) + 2 * g_c * np.abs(log_r + 1) + h
        slope_p = g_c * y_c / p_c
        small_p = np.where(some & (g_c > 0), h * (1 / r + 1 / (g_c * y_c) + 1 / (g_c * p_c) + 1 / p_c**2), 0.0)
        e_p = slope_p * (9 + small_p) + h
    if bounds is not None:
        e_p, e_y = clip_grad(p, *bounds, e_p, clip_tie), clip_grad(y, *bounds, e_y, clip_tie)
    return {"value": reduction_error(per, loss, g, reduction), "input": e_p, "target": e_y}


# ``Spec.error_model`` of kl_div: the first-order bound, in units of the compute dtype's unit
# roundoff u, of PyTorch's kl_div (ATen Loss.cpp) computed as written, each operation rounded
# to the input's dtype (CPU half precision: each op in float, its result stored in the dtype).

#: The stage the model knows: the pointwise terms, their reduction, and their autograd backward.
KL_DIV_STAGES = ("kl_div_terms",)


def kl_div_error(
    input,
    target,
    *,
    log_target=False,
    reduction="mean",
    sample_axis=None,
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`kl_div` as PyTorch computes it (stage ``kl_div_terms``):
    {"value", "input", "target"}, units of u, the value's shape and the input's (= target's).

    x = input, t = target, G = |g| the element's cotangent (``reduce_grad``: 1, 1/N, 1/batch;
    computed in the dtype as 1/N, one rounding: u G on each path), h = eta / u with eta half
    the smallest subnormal (a rounded result below the smallest normal is off by up to eta).
    Without ``log_target`` (``xlogy(t, t) - t * x``; l = log t):

    - value: xlogy rounds log t and the product, 2 u |t l| + eta; t x, u |t x| + eta; the
      difference u |loss| + eta: per = 2 |t l| + |t x| + |loss| + 3 h, then ``reduction_error``;
      the cancellation of t l against t x is why a small loss can be wrong by many ULPs (or 0);
    - d/dx = -(g t) (mul's backward grad * other): G t (g's rounding, the product's) + h;
    - d/dt, three paths summed (autograd accumulates, two roundings of partial sums of size
      G (|l| + 1 + |x|)): xlogy's self path g * xlogy(t != 0, t) = g l (log, product: 2 G |l|);
      xlogy's other path (g * t) / t (tools/autograd/derivatives.yaml: ``grad * self / other``):
      g t rounds (u G t, or eta where it is subnormal: a subnormal t underflows g t, up to the
      whole g lost), then the division rounds: 2 G + h / t; mul's path -(g x): G |x|. In all
      G (5 |l| + 5 + 4 |x|) + h / t + 3 h. At t = 0 the bound is infinite: the element is not
      modelled (PyTorch's 0 / 0 = NaN there stays a finding, ``torch-kl-div-zero-target-gradient``).

    With ``log_target`` (``exp(t) * (t - x)``; e = exp t, d = t - x): value 3 e |d| + 2 h; d/dx
    = -(g e), 3 G e + h; d/dt = (g d) e + g e (exp's backward grad * result, then the sum):
    G e (6 |d| + 4) + 3 h. ``sample_axis`` (optax's per-row sums) is not modelled: ValueError.
    """
    if sample_axis is not None:
        raise ValueError("the kl_div error model is PyTorch's (no sample_axis)")
    x, t = np.asarray(input, np.float64), np.asarray(target, np.float64)
    h = subnormal_spacing(dtype) / unit_roundoff(dtype)
    g = np.abs(np.asarray(reduce_grad(np.shape(x), reduction=reduction), np.float64))
    g = np.broadcast_to(g, np.shape(x))
    loss = np.asarray(kl_div(x, t, log_target=log_target, reduction="none", dtype=dtype), np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if log_target:
            e, d = np.exp(t), np.abs(t - x)
            per = times(e, 3 * d) + 2 * h
            e_x = 3 * g * e + h
            e_t = times(g * e, 6 * d + 4) + 3 * h
        else:
            log_t = np.abs(np.log(t))
            tl = np.where(t == 0, 0.0, t * log_t)
            per = 2 * tl + np.abs(times(t, x)) + np.abs(loss) + 3 * h
            e_x = 2 * g * t + h
            e_t = g * (5 * log_t + 5 + 4 * np.abs(x)) + h / t + 3 * h
    return {"value": reduction_error(per, loss, g, reduction), "input": e_x, "target": e_t}
