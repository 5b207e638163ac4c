"""Entropy, cross-entropy and KL divergence of discrete distributions (seeds 003-004).

Distributions lie on the last axis. ``base`` is e (nats) or 2 (bits). The identity
H(P, Q) = H(P) + KL(P || Q) holds exactly in real arithmetic; the project's tests check it.
"""

from __future__ import annotations

import math

import numpy as np

from lossparity.reference._math import clip_in_dtype, times
from lossparity.reference.trace import NO_TRACE, reading


def _unit(base):
    return ("nats", 1.0) if base in (None, "e", math.e) else ("bits", math.log(float(base)))


def _log(p, prob_eps, dtype):
    """log p, of p clipped into [eps, 1 - eps] first when the binding clips (``"finfo"``: the
    dtype's machine epsilon, as torch.distributions' ``clamp_probs``)."""
    if prob_eps is not None:
        eps = float(np.finfo(dtype).eps) if prob_eps == "finfo" else prob_eps
        p = clip_in_dtype(p, eps, dtype)
    with np.errstate(divide="ignore"):
        return np.log(p)


def _reads(x, name):
    return reading(x, "probabilities", classes=True) + f": the distribution {name}"


def _normalize(p, renormalize, trace, name):
    p = np.asarray(p, np.float64)
    if renormalize:
        with np.errstate(invalid="ignore", divide="ignore"):
            p = trace(f"normalize {name}", p / np.sum(p, axis=-1, keepdims=True), f"{name} / sum({name})")
    return p


def entropy(input, *, base="e", renormalize=None, prob_eps=None, dtype=np.float64, trace=NO_TRACE):
    """H(P) = -sum_x p(x) log p(x); p = 0 contributes 0."""
    unit, scale = _unit(base)
    p = _normalize(trace("input", np.asarray(input, np.float64), _reads(input, "P")), renormalize, trace, "p")
    info = trace("information", -times(p, _log(p, prob_eps, dtype)), "-p log p per outcome, in nats")
    return trace("reduction", np.sum(info, axis=-1) / scale, f"sum over outcomes, in {unit}")


def cross_entropy(input, target, *, base="e", renormalize=None, prob_eps=None, dtype=np.float64,
                  trace=NO_TRACE):
    """H(P, Q) = -sum_x p(x) log q(x), with ``target`` = P and ``input`` = Q."""
    unit, scale = _unit(base)
    q = _normalize(trace("input", np.asarray(input, np.float64), _reads(input, "Q")), renormalize, trace, "q")
    p = _normalize(np.asarray(target, np.float64), renormalize, trace, "p")
    info = trace("information", -times(p, _log(q, prob_eps, dtype)), "-p log q per outcome, in nats")
    return trace("reduction", np.sum(info, axis=-1) / scale, f"sum over outcomes, in {unit}")


def kl_divergence(input, target, *, base="e", renormalize=None, prob_eps=None, dtype=np.float64,
                  trace=NO_TRACE):
    """KL(P || Q) = sum_x p(x) log(p(x) / q(x)), with ``target`` = P and ``input`` = Q."""
    unit, scale = _unit(base)
    q = _normalize(trace("input", np.asarray(input, np.float64), _reads(input, "Q")), renormalize, trace, "q")
    p = _normalize(np.asarray(target, np.float64), renormalize, trace, "p")
    with np.errstate(invalid="ignore"):
        info = times(p, _log(p, prob_eps, dtype) - _log(q, prob_eps, dtype))
        # A clip only guards the logs: q = 0 where p > 0 is outside the support, KL is +inf.
        info = trace("information", np.where((q == 0) & (p > 0), np.inf, info),
                     "p (log p - log q) per outcome, in nats")
    return trace("reduction", np.sum(info, axis=-1) / scale, f"sum over outcomes, in {unit}")
