"""Careful elementwise building blocks shared by the oracles (float64 throughout)."""

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
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(x, axis=-1, keepdims=True)
        finite = np.isfinite(m)
        shifted = x - np.where(finite, m, 0.0)
        e = np.exp(shifted)
        top = np.argmax(x, axis=-1)[..., None]
        rest = e.copy()
        np.put_along_axis(rest, top, 0.0, axis=-1)
        lse = np.where(finite, np.log1p(np.sum(rest, axis=-1, keepdims=True)),
                       np.log(np.sum(e, axis=-1, keepdims=True)))
        return np.moveaxis(shifted - lse, -1, axis)


def clip_in_dtype(p: np.ndarray, eps: float, dtype, upper_one: bool = False) -> np.ndarray:
    """Clip into [eps, 1 - eps] with both bounds rounded to ``dtype``, as the framework does.

    Keras writes ``clip(p, epsilon, 1.0 - epsilon)``: the Python float ``1.0 - 1e-7`` is
    rounded to the tensor's dtype, so in float32 the bounds are 1.0000000117e-07 and
    0.99999988. ``upper_one`` clips into [eps, 1] instead (Keras KLDivergence).
    """
    lo = float(np.asarray(eps, dtype=dtype).astype(np.float64))
    hi = 1.0 if upper_one else float(np.asarray(1.0 - eps, dtype=dtype).astype(np.float64))
    return np.clip(np.asarray(p, np.float64), lo, hi)
