"""Entropy, cross-entropy and KL divergence of discrete distributions (seeds 003-004).

Distributions lie on the last axis. ``base`` is e (nats) or 2 (bits). The identity
H(P, Q) = H(P) + KL(P || Q) holds exactly in real arithmetic; the project's tests check it.

Each oracle ``f`` has a gradient ``f_grad`` with the same arguments, returning
``{"input": ...}`` (and ``"target"`` for the two with a target), d sum(out) / d each,
float64, in its shape; see ``reference/crossentropy.py`` for the rules they share. With
``renormalize`` the gradient goes through p / sum(p) as well.
"""

from __future__ import annotations

import math

import numpy as np

from lossparity.reference._math import clip_bounds, clip_grad, machine_eps, normalize_grad, over, times
from lossparity.reference.trace import NO_TRACE, reading


def _unit(base):
    return ("nats", 1.0) if base in (None, "e", math.e) else ("bits", math.log(float(base)))


def _bounds(prob_eps, dtype):
    """The clip bounds, or None: ``"finfo"`` is the dtype's machine epsilon (torch.distributions'
    ``clamp_probs``)."""
    if prob_eps is None:
        return None
    return clip_bounds(machine_eps(dtype) if prob_eps == "finfo" else prob_eps, dtype)


def _log(p, prob_eps, dtype):
    """log p, of p clipped into [eps, 1 - eps] first when the binding clips."""
    bounds = _bounds(prob_eps, dtype)
    if bounds is not None:
        p = np.clip(p, *bounds)
    with np.errstate(divide="ignore"):
        return np.log(p)


def _log_slope(coef, p, prob_eps, dtype):
    """d/dp of coef * _log(p) with coef held: coef / p, 0 where coef == 0 and strictly outside the clip."""
    bounds = _bounds(prob_eps, dtype)
    if bounds is None:
        return over(coef, p)
    return clip_grad(p, *bounds, over(coef, np.clip(p, *bounds)))


def _reads(x, name):
    return reading(x, "probabilities", classes=True) + f": the distribution {name}"


def _normalize(p, renormalize, trace, name):
    p = np.asarray(p, np.float64)
    if renormalize:
        with np.errstate(invalid="ignore", divide="ignore"):
            p = trace(f"normalize {name}", p / np.sum(p, axis=-1, keepdims=True), f"{name} / sum({name})")
    return p


def _pullback(given, grad, renormalize, scale):
    """A gradient in the used distribution, in units, pulled back to the ``given`` one."""
    grad = grad / scale
    return normalize_grad(given, grad) if renormalize else grad


def entropy(input, *, base="e", renormalize=None, prob_eps=None, dtype=np.float64, trace=NO_TRACE):
    """H(P) = -sum_x p(x) log p(x); p = 0 contributes 0."""
    unit, scale = _unit(base)
    p = _normalize(trace("input", np.asarray(input, np.float64), _reads(input, "P")), renormalize, trace, "p")
    info = trace("information", -times(p, _log(p, prob_eps, dtype)), "-p log p per outcome, in nats")
    return trace("reduction", np.sum(info, axis=-1) / scale, f"sum over outcomes, in {unit}")


def entropy_grad(input, *, base="e", renormalize=None, prob_eps=None, dtype=np.float64, trace=NO_TRACE):
    """d H / d input, ``(..., n)``: -(log p + 1) / ln(base) per outcome, with the log of the
    clipped p and the 1 only inside the clip; +inf at p = 0 when nothing clips (the slope of
    -p log p there)."""
    given = np.asarray(input, np.float64)
    p = _normalize(given, renormalize, NO_TRACE, "p")
    with np.errstate(invalid="ignore"):
        d_p = -(_log(p, prob_eps, dtype) + _log_slope(p, p, prob_eps, dtype))
        return {"input": _pullback(given, d_p, renormalize, _unit(base)[1])}


def cross_entropy(input, target, *, base="e", renormalize=None, prob_eps=None, dtype=np.float64, trace=NO_TRACE):
    """H(P, Q) = -sum_x p(x) log q(x), with ``target`` = P and ``input`` = Q."""
    unit, scale = _unit(base)
    q = _normalize(trace("input", np.asarray(input, np.float64), _reads(input, "Q")), renormalize, trace, "q")
    p = _normalize(np.asarray(target, np.float64), renormalize, trace, "p")
    info = trace("information", -times(p, _log(q, prob_eps, dtype)), "-p log q per outcome, in nats")
    return trace("reduction", np.sum(info, axis=-1) / scale, f"sum over outcomes, in {unit}")


def cross_entropy_grad(input, target, *, base="e", renormalize=None, prob_eps=None, dtype=np.float64, trace=NO_TRACE):
    """Gradients of :func:`cross_entropy`, both ``(..., n)``: d/dq = -p/q (0 where p = 0, 0 strictly
    outside the clip), d/dp = -log q (of the clipped q; +inf at q = 0), over ln(base)."""
    given_q, given_p = np.asarray(input, np.float64), np.asarray(target, np.float64)
    q, p = _normalize(given_q, renormalize, NO_TRACE, "q"), _normalize(given_p, renormalize, NO_TRACE, "p")
    scale = _unit(base)[1]
    with np.errstate(invalid="ignore"):
        return {
            "input": _pullback(given_q, -_log_slope(p, q, prob_eps, dtype), renormalize, scale),
            "target": _pullback(given_p, -_log(q, prob_eps, dtype), renormalize, scale),
        }


def _outside_support(q, p):
    """Where KL is +inf because q = 0 < p: the value there is a constant, whatever the clip."""
    return (q == 0) & (p > 0)


def kl_divergence(
    input,
    target,
    *,
    base="e",
    renormalize=None,
    prob_eps=None,
    zero_term_slope="limit",
    dtype=np.float64,
    trace=NO_TRACE,
):
    """KL(P || Q) = sum_x p(x) log(p(x) / q(x)), with ``target`` = P and ``input`` = Q
    (``zero_term_slope`` only concerns the gradient)."""
    unit, scale = _unit(base)
    q = _normalize(trace("input", np.asarray(input, np.float64), _reads(input, "Q")), renormalize, trace, "q")
    p = _normalize(np.asarray(target, np.float64), renormalize, trace, "p")
    with np.errstate(invalid="ignore"):
        info = times(p, _log(p, prob_eps, dtype) - _log(q, prob_eps, dtype))
        # A clip only guards the logs: q = 0 where p > 0 is outside the support, KL is +inf.
        info = trace(
            "information", np.where(_outside_support(q, p), np.inf, info), "p (log p - log q) per outcome, in nats"
        )
    return trace("reduction", np.sum(info, axis=-1) / scale, f"sum over outcomes, in {unit}")


def kl_divergence_grad(
    input,
    target,
    *,
    base="e",
    renormalize=None,
    prob_eps=None,
    zero_term_slope="limit",
    dtype=np.float64,
    trace=NO_TRACE,
):
    """Gradients of :func:`kl_divergence`, both ``(..., n)``, over ln(base): d/dq = -p/q and
    d/dp = log p + 1 - log q (logs of the clipped values, the 1 only inside the clip; -inf
    at p = 0 < q, NaN at p = q = 0 unclipped). An outcome outside the support (q = 0 < p),
    whose +inf is a constant, has slope 0 in both, as a framework that writes that +inf
    with a masked assignment (torch.distributions) differentiates it.

    ``zero_term_slope``: at p = 0 the slope in p is its one-sided limit ("limit", above),
    or 0 ("zero") where the framework writes the term of p = 0 as a constant 0 (a masked
    assignment, torch.distributions' ``t[p == 0] = 0``; a select, jax.scipy's rel_entr), and
    so differentiates a constant there; with ``renormalize`` that 0 is then pulled back
    through p / sum(p) like any slope."""
    given_q, given_p = np.asarray(input, np.float64), np.asarray(target, np.float64)
    q, p = _normalize(given_q, renormalize, NO_TRACE, "q"), _normalize(given_p, renormalize, NO_TRACE, "p")
    scale, outside = _unit(base)[1], _outside_support(q, p)
    with np.errstate(invalid="ignore"):
        d_q = np.where(outside, 0.0, -_log_slope(p, q, prob_eps, dtype))
        d_p = np.where(
            outside, 0.0, _log(p, prob_eps, dtype) - _log(q, prob_eps, dtype) + _log_slope(p, p, prob_eps, dtype)
        )
        if zero_term_slope == "zero":
            d_p = np.where(p == 0, 0.0, d_p)
        return {
            "input": _pullback(given_q, d_q, renormalize, scale),
            "target": _pullback(given_p, d_p, renormalize, scale),
        }
