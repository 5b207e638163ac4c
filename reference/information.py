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


# ----------------------------------------------------------------------------- rounding model
# ``Spec.error_model`` of entropy (``reference/rounding.py`` states the model): the first-order
# bound, in units of the compute dtype's unit roundoff u, of computing -sum q log q in that dtype.

#: The stages the model knows: q = p / sum(p) ("normalize") and the log, the products and the
#: sum over the outcomes ("log"), each in the dtype.
ENTROPY_STAGES = ("normalize", "log")


def entropy_error(input, *, base="e", renormalize=None, prob_eps=None, dtype=np.float64, trace=NO_TRACE, stages=()):
    """Rounding model of :func:`entropy`: {"value", "input"}, units of u, in the shapes of the
    value and of the ``(..., n)`` gradient, for -sum_c q_c log clip(q_c) computed in the dtype
    (torch.distributions.Categorical: q = p / sum(p), log of the clamped q, product, sum; jax's
    entr: -x log x and the binding's sum, no normalization). Per outcome, n outcomes:

    - q: with ``normalize``, the sum (n - 1) u and the division u: relative error r u, r = n
      (r = 0 without); a clip is exact;
    - l = log clip(q): r carried (relative to absolute) plus one rounding: u (r + |l|);
    - t = q l: q err(l) + |l| r u q + u |t| = u (r q + (r + 2) |t|); the sum (n - 1) u sum |t|.
      Value: sum_c (r q_c + (r + 2) |t_c|) + (n - 1) sum_c |t_c|.

    Gradient, cotangent g per distribution: the product's backward -g l (err(l) carried, one
    rounding) and the log's -g q / q (two roundings, inside the clip), added (one rounding):
    E_c = |g| (r + 2 |l_c| + 2) + |d_c|, d_c = -g (l_c + 1) (the 1 only inside the clip). With
    ``normalize`` the pullback through q = p / S (torch's division backward: d_c / S and
    -sum_c d_c ((p_c / S) / S), S rounded with (n - 1) u) costs
    (E_j + n |d_j|) / S + sum_c (E_c + 3 n |d_c|) q_c / S + |slope_j|. Where q lies within its
    own rounding (r u q) of a clip bound, the dtype may put it on either side, and the slope's
    1 is there or not: that element's E_c gains |g| / u (a branch, not a rounding, bounded by
    the jump). A non-natural ``base`` divides by ln(base), one more rounding.
    """
    from lossparity.reference.rounding import unit_roundoff

    given = np.asarray(input, np.float64)
    p = _normalize(given, renormalize, NO_TRACE, "p")
    n = p.shape[-1]
    r = n if (renormalize and "normalize" in stages) else 0
    scale = _unit(base)[1]
    bounds = _bounds(prob_eps, dtype)
    u = unit_roundoff(dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_q = _log(p, prob_eps, dtype)
        t = np.abs(times(p, log_q))
        value = np.sum(r * p + (r + 2) * t, axis=-1) + (n - 1) * np.sum(t, axis=-1)
        inside = np.ones(p.shape, bool) if bounds is None else (p >= bounds[0]) & (p <= bounds[1])
        d = np.abs(log_q + inside)
        e = r + 2 * np.abs(log_q) + 2 + d
        if bounds is not None:
            near = np.zeros(p.shape, bool)
            for b in bounds:
                near |= np.abs(p - b) <= 2 * max(r, 1) * u * np.abs(p)
            e = e + near / u
        if renormalize:
            s = np.sum(given, axis=-1, keepdims=True)
            slope = np.abs(normalize_grad(given, -(log_q + inside)))
            grad = (e + n * d) / s + np.sum((e + 3 * n * d) * p, axis=-1, keepdims=True) / s + slope
        else:
            grad = e
    if scale != 1.0:
        h = np.abs(entropy(given, base=base, renormalize=renormalize, prob_eps=prob_eps, dtype=dtype))
        g_abs = np.abs(entropy_grad(given, base=base, renormalize=renormalize, prob_eps=prob_eps, dtype=dtype)["input"])
        return {"value": value / scale + h, "input": grad / scale + g_abs}
    return {"value": value, "input": grad}
