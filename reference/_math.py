"""Careful elementwise building blocks shared by the oracles and their gradients (float64 throughout)."""

from __future__ import annotations

import numpy as np


def xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x * log(y), with 0 where x == 0 (the limit; a zero coefficient contributes nothing)."""
    x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log(y))


def times(coef: np.ndarray, value: np.ndarray) -> np.ndarray:
    """coef * value, with 0 where coef == 0 even if value is infinite."""
    coef, value = np.broadcast_arrays(np.asarray(coef, np.float64), np.asarray(value, np.float64))
    with np.errstate(invalid="ignore"):
        return np.where(coef == 0, 0.0, coef * value)


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) without overflow or cancellation."""
    return np.logaddexp(0.0, np.asarray(x, np.float64))


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """x - logsumexp(x), shifted by the max so that no exp overflows.

    The max's own exp(0) = 1 is taken out of the sum and ``log1p`` of the rest is used, so
    the most likely class keeps full relative accuracy (-log p near 0). Rows whose max is
    +-inf or nan follow IEEE arithmetic (inf - inf = nan).
    """
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    if x.shape[-1] == 0:
        return np.moveaxis(x.copy(), -1, axis)
    return np.moveaxis(_log_softmax_parts(x)[0], -1, axis)


def _log_softmax_parts(x: np.ndarray):
    """(log_softmax(x), softmax(x)) over the last axis, which is not empty.

    softmax is exp(x - max) / sum(exp(x - max)), not exp(log_softmax): that would carry the
    rounding of x - logsumexp (about |log p| ULPs) into every small probability. A row whose
    max is not finite has no softmax: NaN (its log_softmax holds a NaN too).
    """
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(x, axis=-1, keepdims=True)
        finite = np.isfinite(m)
        shifted = x - np.where(finite, m, 0.0)
        e = np.exp(shifted)
        top = np.argmax(x, axis=-1)[..., None]
        rest = e.copy()
        np.put_along_axis(rest, top, 0.0, axis=-1)
        total = np.sum(e, axis=-1, keepdims=True)
        logp = shifted - np.where(finite, np.log1p(np.sum(rest, axis=-1, keepdims=True)), np.log(total))
        return logp, np.where(finite, e / total, np.nan)


def machine_eps(dtype) -> float:
    """The machine epsilon of ``dtype``; bfloat16 and the other ml_dtypes types included."""
    try:
        return float(np.finfo(dtype).eps)
    except ValueError:  # NumPy's finfo knows only its own float types
        import ml_dtypes

        return float(ml_dtypes.finfo(dtype).eps)


def clip_bounds(eps: float, dtype, upper_one: bool = False) -> tuple[float, float]:
    """The bounds [eps, 1 - eps] (``upper_one``: [eps, 1], Keras KLDivergence) rounded to
    ``dtype``, as the framework writes them.

    Keras writes ``clip(p, epsilon, 1.0 - epsilon)``: the Python float ``1.0 - 1e-7`` is
    rounded to the tensor's dtype, so in float32 the bounds are 1.0000000117e-07 and
    0.99999988 (in bfloat16 the upper bound rounds to 1).
    """
    lo = float(np.asarray(eps, dtype=dtype).astype(np.float64))
    hi = 1.0 if upper_one else float(np.asarray(1.0 - eps, dtype=dtype).astype(np.float64))
    return lo, hi


# ----------------------------------------------------------------------------- derivatives


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), the slope of softplus, to about 1 ULP: exp is taken of -|x| only,
    so nothing overflows, and the saturated side keeps its relative accuracy (sigmoid(-700))."""
    x = np.asarray(x, np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def over(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    """coef / x, with 0 where coef == 0: the slope in x of ``xlogy(coef, x)``, which is
    constantly 0 where coef == 0, even at x = 0."""
    coef, x = np.broadcast_arrays(np.asarray(coef, np.float64), np.asarray(x, np.float64))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(coef == 0, 0.0, coef / x)


def clip_grad(x: np.ndarray, lo: float | None, hi: float | None, grad: np.ndarray, tie: str = "pass") -> np.ndarray:
    """Pull ``grad`` back through clip(x, lo, hi): 0 strictly outside [lo, hi], passed through
    inside and for NaN, whose clip is NaN. At a bound (x exactly lo or hi) ``tie="pass"``
    passes it whole, as torch.clamp and tf.clip_by_value do; ``"split"`` passes half, as
    jnp.clip does (``minimum(maximum(x, lo), hi)``: each splits a tie between its arguments;
    the ``clip_tie`` convention). ``None`` is an absent bound."""
    x = np.asarray(x, np.float64)
    outside = np.zeros(x.shape, bool)
    at = np.zeros(x.shape, bool)
    if lo is not None:
        outside |= x < lo
        at |= x == lo
    if hi is not None:
        outside |= x > hi
        at |= x == hi
    if tie == "split":
        grad = np.where(at, 0.5 * np.asarray(grad, np.float64), grad)
    return np.where(outside, 0.0, grad)


def sum_of_others(a: np.ndarray) -> np.ndarray:
    """sum_{j != c} a_j for every c of the last axis, added up from the entries before and after
    c, never as sum(a) - a_c, which cancels where a_c dominates (a saturated prediction)."""
    a = np.asarray(a, np.float64)
    edge = np.zeros(a.shape[:-1] + (1,))
    before = np.cumsum(np.concatenate([edge, a[..., :-1]], axis=-1), axis=-1)
    after = np.flip(np.cumsum(np.concatenate([edge, np.flip(a, axis=-1)[..., :-1]], axis=-1), axis=-1), axis=-1)
    return (before + after)[..., : a.shape[-1]]


def normalize_grad(p: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Pull ``grad`` (d/dq) back through q = p / sum(p) over the last axis.

    d/dp_j = (grad_j - sum_c grad_c q_c) / sum(p), written sum_{c != j} q_c (grad_j - grad_c)
    / sum(p) (the same, as sum(q) = 1): where q_j is near 1 and the rest near 0 (a confident
    prediction) the textbook form cancels and loses every digit. A q_c of 0 contributes
    nothing even where grad_c is infinite (the ``times`` rule of the forward).
    """
    p, grad = np.broadcast_arrays(np.asarray(p, np.float64), np.asarray(grad, np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        total = np.sum(p, axis=-1, keepdims=True)
        q = p / total
        return (times(sum_of_others(q), grad) - sum_of_others(times(q, grad))) / total


def log_softmax_grad(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d/dx of -sum_c a_c log_softmax(x)_c, for logits ``x`` and coefficients ``a``, ``(..., C)``.

    The textbook p * sum(a) - a is written a (p - 1) + p sum_{j != c} a_j with p - 1 =
    expm1(log p): where softmax saturates (p within 1e-13 of 1) p - 1 keeps its relative
    accuracy, which rounding p first would lose entirely (and the other classes are summed
    by :func:`sum_of_others`). A -inf logit has p = 0 and slope -a; a row with a +inf or NaN
    logit is all NaN (as its softmax).
    """
    x, a = np.asarray(x, np.float64), np.asarray(a, np.float64)
    if x.shape[-1] == 0:
        return np.zeros(np.broadcast_shapes(x.shape, a.shape))
    logp, p = _log_softmax_parts(x)
    with np.errstate(invalid="ignore"):
        return a * np.expm1(logp) + p * sum_of_others(a)
