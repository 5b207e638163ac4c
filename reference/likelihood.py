"""Likelihood losses: Poisson and Gaussian negative log-likelihood, and the generalized KL divergence.

Each oracle ``f`` has a gradient ``f_grad`` with the same arguments, returning float64 arrays
of d sum(out) / d each differentiated argument, in its shape; see ``reference/crossentropy.py``
for the rules they share. Parameters that a framework adds to the input in its own dtype
(``eps``) are rounded to ``dtype`` first, as ``input + eps`` and ``clamp(var, eps)`` do.
"""

from __future__ import annotations

import math

import numpy as np

from lossparity.reference._math import clip_grad, over, times, xlogy
from lossparity.reference.errors import OracleError
from lossparity.reference.reduction import chain, reduce, reduce_grad
from lossparity.reference.rounding import reduction_error
from lossparity.reference.trace import NO_TRACE, reading

STIRLING_CUTOFFS = ("above_one", "unit_interval")
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _in_dtype(value: float, dtype) -> float:
    """A Python float parameter as the framework's tensor of ``dtype`` holds it (1e-8 is 0 in float16)."""
    return float(np.asarray(value, dtype=dtype).astype(np.float64))


# ============================================================================= Poisson


def _stirling_mask(t, stirling_cutoff):
    """Where the Stirling term t log t - t + log(2 pi t) / 2 is added."""
    if stirling_cutoff == "above_one":
        return t > 1.0  # torch: masked_fill(target <= 1, 0)
    if stirling_cutoff == "unit_interval":
        return ~((t >= 0.0) & (t <= 1.0))  # tf.nn: where(0 <= t <= 1, 0, stirling)
    raise ValueError(f"unknown stirling_cutoff {stirling_cutoff!r}; expected one of {STIRLING_CUTOFFS}")


def poisson_nll(
    input,
    target,
    *,
    log_input=False,
    full=False,
    eps=0.0,
    reduction="mean",
    sample_axis=None,
    stirling_cutoff="above_one",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Poisson negative log-likelihood of counts ``target`` under rates ``input`` (same shapes).

    ``log_input``: the input is the log rate c and the loss exp(c) - t c; else the input is the
    rate x and the loss x - t log(x + eps). A zero count contributes no t log term at all (its
    limit, even at rate 0 or log rate -inf). ``full`` adds Stirling's approximation of log t!,
    t log t - t + log(2 pi t) / 2, where ``stirling_cutoff`` says (plain: for t > 1 only).
    """
    x = trace(
        "input", np.asarray(input, np.float64), reading(input, "log rates" if log_input else "rates", classes=False)
    )
    t = np.asarray(target, np.float64)
    with np.errstate(all="ignore"):
        if log_input:
            loss = trace("per-element loss", np.exp(x) - times(t, x), "exp(c) - t c, 0 where t = 0")
        else:
            e = _in_dtype(eps, dtype)
            loss = trace("per-element loss", x - xlogy(t, x + e), f"x - t log(x + {e:g}), 0 where t = 0")
        if full:
            stirling = xlogy(t, t) - t + 0.5 * np.log(2.0 * np.pi * t)
            loss = trace(
                "Stirling term",
                loss + np.where(_stirling_mask(t, stirling_cutoff), stirling, 0.0),
                f"t log t - t + log(2 pi t) / 2 added where {stirling_cutoff}",
            )
    return reduce(loss, reduction=reduction, sample_axis=sample_axis, trace=trace)


def poisson_nll_grad(
    input,
    target,
    *,
    log_input=False,
    full=False,
    eps=0.0,
    reduction="mean",
    sample_axis=None,
    stirling_cutoff="above_one",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradients of :func:`poisson_nll`, both in the input's shape.

    d/d input = exp(c) - t (log input) or 1 - t / (x + eps), whose second term is 0 where t = 0
    (the t log term is constantly 0 there). d/d target = -c or -log(x + eps), plus
    log t + 1 / (2 t) where the Stirling term is added (it is constantly 0 elsewhere).
    """
    x, t = np.broadcast_arrays(np.asarray(input, np.float64), np.asarray(target, np.float64))
    with np.errstate(all="ignore"):
        if log_input:
            d_x, d_t = np.exp(x) - t, -x
        else:
            e = _in_dtype(eps, dtype)
            d_x, d_t = 1.0 - over(t, x + e), -np.log(x + e)
        if full:
            d_t = d_t + np.where(_stirling_mask(t, stirling_cutoff), np.log(t) + 0.5 / t, 0.0)
    g = reduce_grad(np.shape(x), reduction=reduction, sample_axis=sample_axis)
    return {"input": chain(g, d_x), "target": chain(g, d_t)}


# ============================================================================= Gaussian


def _gaussian_var(input, var):
    """``var`` shaped to broadcast against the input, by PyTorch's documented rule: the
    input's shape, that shape without its last dimension (a trailing 1 is added), or that shape
    with exactly one dimension of 1 (the mismatched extents of var sum to 1); anything else,
    and any negative entry, is a ValueError."""
    x, v = np.asarray(input, np.float64), np.asarray(var, np.float64)
    if np.any(v < 0):
        raise OracleError("ValueError", "var has negative entry/entries")
    if v.shape == x.shape:
        return v
    if x.ndim >= 1 and x.shape[:-1] == v.shape:
        return v[..., None]
    if x.ndim == v.ndim and sum(b for a, b in zip(x.shape, v.shape) if a != b) == 1:
        return v
    raise OracleError("ValueError", f"var is of incorrect size {v.shape} for input {x.shape}")


def gaussian_nll(
    input,
    target,
    *,
    var,
    full=False,
    eps=0.0,
    reduction="mean",
    var_clamp_grad="zero",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gaussian negative log-likelihood of ``target`` under means ``input`` and variances ``var``.

    (log v + (x - t)^2 / v) / 2 per element, v = max(var, eps) (eps rounded to ``dtype``), plus
    log(2 pi) / 2 with ``full``. ``input`` and ``target`` have one shape; ``var`` that shape,
    or it without its last dimension, or it with one dimension of 1 (homoscedastic); a negative
    variance raises ValueError. ``var_clamp_grad`` changes only the gradient.
    """
    x = trace("input", np.asarray(input, np.float64), reading(input, "means", classes=False))
    t = np.asarray(target, np.float64)
    v = _gaussian_var(x, var)
    e = _in_dtype(eps, dtype)
    vc = trace("clamp", np.maximum(v, e) if e > 0 else v, f"var clamped from below at {e:g}")
    with np.errstate(all="ignore"):
        d = x - t
        loss = 0.5 * (np.log(vc) + d * d / vc)
        loss = trace(
            "per-element loss",
            loss + HALF_LOG_2PI if full else loss,
            "(log v + (x - t)^2 / v) / 2" + (" + log(2 pi) / 2" if full else ""),
        )
    return reduce(loss, reduction=reduction, trace=trace)


def _unbroadcast(grad, shape):
    """Sum ``grad`` back down to ``shape`` (the pullback of NumPy broadcasting)."""
    grad = np.asarray(grad, np.float64)
    lead = grad.ndim - len(shape)
    grad = np.sum(grad, axis=tuple(range(lead))) if lead else grad
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return np.sum(grad, axis=axes, keepdims=True).reshape(shape) if axes else grad.reshape(shape)


def gaussian_nll_grad(
    input,
    target,
    *,
    var,
    full=False,
    eps=0.0,
    reduction="mean",
    var_clamp_grad="zero",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradients of :func:`gaussian_nll`: ``input`` (its shape) and ``var`` (its own shape, summed
    over the dimensions it was broadcast along).

    d/dx = (x - t) / v; d/dvar = (1 / v - (x - t)^2 / v^2) / 2 at v = max(var, eps), times the
    slope of the clamp: 0 below eps, 1 at and above it (``var_clamp_grad="zero"``), or 1
    everywhere (``"ignore"``: PyTorch clamps under no_grad, documented as "ignored with respect
    to autograd").
    """
    x, t = np.asarray(input, np.float64), np.asarray(target, np.float64)
    var = np.asarray(var, np.float64)
    v = _gaussian_var(x, var)
    e = _in_dtype(eps, dtype)
    vc = np.maximum(v, e) if e > 0 else v
    with np.errstate(all="ignore"):
        d = x - t
        d_x = np.broadcast_to(d / vc, np.broadcast_shapes(x.shape, t.shape, v.shape))
        d_v = 0.5 * (1.0 / vc - (d / vc) ** 2)
    if var_clamp_grad == "zero":
        d_v = clip_grad(np.broadcast_to(v, d_v.shape), e, None, d_v)
    elif var_clamp_grad != "ignore":
        raise ValueError(f"unknown var_clamp_grad {var_clamp_grad!r}; expected 'zero' or 'ignore'")
    g = reduce_grad(d_x.shape, reduction=reduction)
    return {
        "input": _unbroadcast(chain(g, d_x), x.shape),
        "var": _unbroadcast(chain(g, d_v), v.shape).reshape(var.shape),
    }


# ============================================================================= generalized KL


def _expm1_minus_x(r):
    """exp(r) - 1 - r for r <= 1 without cancellation: a Taylor series where |r| < 1/2 (the
    first term r^2 / 2 carries the value; expm1(r) - r would lose -log2 |r| bits), else
    expm1(r) - r, which is at least 0.1 |r| there; +inf at r = -inf."""
    r = np.asarray(r, np.float64)
    small = np.abs(r) < 0.5
    rs = np.where(small, r, 0.0)
    term, series = rs * rs / 2.0, np.zeros_like(rs)
    for k in range(3, 24):  # 0.5^23 / 23! is far below one ULP of 0.5^2 / 2
        series += term
        term = term * rs / k
    with np.errstate(invalid="ignore"):
        return np.where(small, series, np.expm1(r) - r)


def generalized_kl_div(
    input,
    target,
    *,
    reduction="mean",
    sample_axis=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Generalized KL divergence of unnormalized measures: t log(t / q) - t + q per element,
    ``input`` = log q, ``target`` = t >= 0 (same shapes).

    The Bregman divergence of x log x - x; with q and t both summing to 1 over the last axis it
    is :func:`~lossparity.reference.kl.kl_div` (the -t + q terms cancel in the sum),
    and elementwise it is the Poisson NLL of t under log rate ``input`` minus its minimum, at
    rate t. A zero target contributes q (its t log term is 0, even at log q = -inf).
    Written t (e^r - 1 - r) with r = input - log t, so that near the minimum (q close to t)
    nothing cancels.
    """
    c = trace("input", np.asarray(input, np.float64), reading(input, "log-measure", classes=False))
    t = np.asarray(target, np.float64)
    c, t = np.broadcast_arrays(c, t)
    with np.errstate(all="ignore"):
        r = c - np.log(t)
        big = r > 1.0  # exp(c) dominates: t e^r may overflow alone
        loss = np.where(big, np.exp(c) - t * (1.0 + r), t * _expm1_minus_x(np.where(big, 0.0, r)))
        loss = np.where(t == 0, np.exp(c), loss)
    loss = trace("per-element loss", loss, "t log(t / q) - t + q, q = exp(input); q where t = 0")
    return reduce(loss, reduction=reduction, sample_axis=sample_axis, trace=trace)


def generalized_kl_div_grad(
    input,
    target,
    *,
    reduction="mean",
    sample_axis=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradients of :func:`generalized_kl_div`, both in the input's shape.

    d/d input = q - t = t expm1(r); d/d target = log t - input = -r: -inf at t = 0 (the slope
    of t log t there) and NaN where the input is -inf too.
    """
    c, t = np.broadcast_arrays(np.asarray(input, np.float64), np.asarray(target, np.float64))
    with np.errstate(all="ignore"):
        r = c - np.log(t)
        d_c = np.where((t == 0) | (r > 1.0), np.exp(c) - t, t * np.expm1(r))
        d_t = -r
    g = reduce_grad(np.shape(c), reduction=reduction, sample_axis=sample_axis)
    return {"input": chain(g, d_c), "target": chain(g, d_t)}


# ============================================================================= rounding models
# ``Spec.error_model`` of the Poisson NLL: the first-order bound, in units of the compute dtype's
# unit roundoff u, of computing it op by op in that dtype (``reference/rounding.py`` states the
# model), returning {"value": ..., "input": ..., "target": ...}.

#: "poisson_terms": exp(c) - t c (or x - t log(x + eps)) and the Stirling term, each elementwise
#: op rounded to the input dtype: tf.nn.log_poisson_loss (tensorflow/python/ops/nn_impl.py at
#: v2.21.0) and torch's poisson_nll_loss (composite ATen ops, aten/src/ATen/native/Loss.cpp).
POISSON_STAGES = ("poisson_terms",)


def poisson_nll_error(
    input,
    target,
    *,
    log_input=False,
    full=False,
    eps=0.0,
    reduction="mean",
    sample_axis=None,
    stirling_cutoff="above_one",
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`poisson_nll` with ``poisson_terms``, per element:

    - log rates: exp(c) (u e^c), t c (u |t c|), their difference (u |v|);
    - rates: x + eps (relative u: u absolute through the log), the log (u |l|), l = log(x + e),
      t l (|t| (1 + |l|) carried, u |t l|), x - t l (u |v|);
    - Stirling, where added: log t carried by t (|t log t|) and the product's, the difference
      with t (|t log t - t|), log(2 pi t) (2 pi t rounded twice: 2u absolute, and its own u
      |log(2 pi t)|) halved exactly, the sum (|S|) and the loss plus S (|loss|).

    Slopes (reverse mode, g the reduction's cotangent, its rounding u |g slope|):

    - d/dc = g exp(c) - g t: exp's rounding reused and the product, 2 u e^c, u |t|, the
      difference u |slope|; d/dx = g - g t / (x + e): x + e, the division and the product,
      3 u |t / (x + e)|, the difference;
    - d/dt = -g c (u |c|) or -g l (u (1 + 2 |l|)); with Stirling the terms log t (2 u |log t|),
      t (g / t) (2 u), -1, (0.5 / t) from log(2 pi t) (4 u: 2 pi t, the division, the product)
      and the rate's term are summed: 4 u times the sum of their magnitudes.
    """
    if sample_axis is not None:
        raise ValueError("the Poisson model takes no sample axis")
    x, t = np.broadcast_arrays(np.asarray(input, np.float64), np.asarray(target, np.float64))
    with np.errstate(all="ignore"):
        if log_input:
            e_c = np.exp(x)
            loss = e_c - times(t, x)
            per = e_c + np.abs(times(t, x)) + np.abs(loss)
            d_x = e_c - t
            err_x = 2 * e_c + np.abs(t) + np.abs(d_x)
            rate, err_rate = -x, np.abs(x)
        else:
            e = _in_dtype(eps, dtype)
            lg = np.log(x + e)
            loss = x - times(t, lg)
            per = np.abs(t) * (1 + np.abs(lg)) + np.abs(times(t, lg)) + np.abs(loss)
            d_x = 1.0 - over(t, x + e)
            err_x = 3 * np.abs(over(t, x + e)) + np.abs(d_x)
            rate, err_rate = -lg, 1 + 2 * np.abs(lg)
        d_t, err_t = rate, err_rate + np.abs(rate)
        if full:
            mask = _stirling_mask(t, stirling_cutoff)
            lt = np.log(t)
            stirling = xlogy(t, t) - t + 0.5 * np.log(2.0 * np.pi * t)
            s_err = 2 * np.abs(xlogy(t, t)) + np.abs(xlogy(t, t) - t) + (2 + np.abs(np.log(2 * np.pi * t))) / 2
            total = loss + stirling
            per = per + np.where(mask, s_err + np.abs(stirling) + np.abs(total), 0.0)
            loss = np.where(mask, total, loss)
            terms = np.abs(lt) + 2 + 0.5 / np.abs(t) + np.abs(rate)
            s_slope = 2 * np.abs(lt) + 2 + 2 / np.abs(t) + 4 * terms
            d_t = np.where(mask, rate + lt + 0.5 / t, rate)
            err_t = np.where(mask, err_rate + s_slope, err_t)
        g = np.abs(reduce_grad(np.shape(x), reduction=reduction, sample_axis=sample_axis))
        value = reduction_error(per, loss, reduce_grad(np.shape(x), reduction=reduction), reduction)
        return {
            "value": value,
            "input": times(g, err_x + np.abs(d_x)),
            "target": times(g, err_t + np.abs(d_t)),
        }


#: "gaussian_terms": torch's gaussian_nll_loss, 0.5 * (log(var) + (input - target)**2 / var)
#: (+ 0.5 log(2 pi)) op by op in the input dtype (torch/nn/functional.py, gaussian_nll_loss).
GAUSSIAN_STAGES = ("gaussian_terms",)


def gaussian_nll_error(
    input,
    target,
    *,
    var,
    full=False,
    eps=0.0,
    reduction="mean",
    var_clamp_grad="zero",
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`gaussian_nll` with ``gaussian_terms``, per element (v the
    clamped variance, r = x - t, q = r^2 / v):

    - log v: u |log v|; r rounded (relative u), squared (2 u + u), divided (u): 4 u q; their
      sum u |log v + q|; halved exactly; with ``full`` log(2 pi) / 2 rounded (u 0.92) and the
      add (u |loss|); then the reduction.

    Slopes (reverse mode, g the cotangent, its rounding u |g slope|): d/dx = g r / v: r's
    rounding, the pow's backward 2 r ct, the division's: 4 u |slope| more; d/dv = g (1/v -
    q/v) / 2: 1/v's two roundings (the log's backward and the product), q/v's (q's 4 u, the
    division and the product: 6 u), their sum u |slope|; summed over the axes a broadcast var
    spans, (k - 1) u sum |terms| more.
    """
    x, t = np.asarray(input, np.float64), np.asarray(target, np.float64)
    v = _gaussian_var(x, var)
    e = _in_dtype(eps, dtype)
    vc = np.maximum(v, e) if e > 0 else v
    with np.errstate(all="ignore"):
        r = x - t
        q = r * r / vc
        lv = np.log(vc)
        loss = 0.5 * (lv + q) + (HALF_LOG_2PI if full else 0.0)
        per = 0.5 * (np.abs(lv) + 4 * q + np.abs(lv + q)) + ((HALF_LOG_2PI + np.abs(loss)) if full else 0.0)
        shape = np.broadcast_shapes(x.shape, t.shape, v.shape)
        loss, per = np.broadcast_to(loss, shape), np.broadcast_to(per, shape)
        value = reduction_error(per, loss, reduce_grad(shape, reduction=reduction), reduction)
        g = np.abs(reduce_grad(shape, reduction=reduction))
        d_x = np.abs(np.broadcast_to(r / vc, shape))
        d_v = np.broadcast_to(0.5 * (1.0 / vc - q / vc), shape)
        terms = np.broadcast_to(0.5 * (1.0 / vc + q / vc), shape)
        err_v = g * (0.5 * 2 / np.broadcast_to(vc, shape) + 0.5 * 6 * np.broadcast_to(q / vc, shape) + 2 * np.abs(d_v))
        k = int(np.prod(shape)) // max(int(np.prod(v.shape)), 1)
        err_v = _unbroadcast(err_v, v.shape) + max(k - 1, 0) * _unbroadcast(g * terms, v.shape)
    return {
        "value": value,
        "input": _unbroadcast(g * 6 * d_x, x.shape),
        "var": err_v.reshape(np.shape(var)),
    }
