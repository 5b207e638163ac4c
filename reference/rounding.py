"""Rounding-error models: what computing a loss in a narrow dtype may cost, bounded.

A binding that evaluates named stages of its loss in its compute dtype, with no wider
accumulator (Keras on JAX takes ``jax.nn.log_softmax`` of float16 logits in float16), can be
off the exact loss by far more than one rounding of the result: the stages produce O(1)
intermediate terms that cancel (``log_softmax`` of the top class is ``(x - max) - log(sum exp)``,
two terms near 0; ``softmax - onehot`` near 1 - 1). The tolerance assumes one rounding of the
result, so such a binding fails it in float16 and bfloat16 without departing from anything it
documents.

An error model (``Spec.error_model``) bounds that cost to first order, in the standard model of
floating-point arithmetic: every operation's result is the exact result of its rounded operands
times (1 + d), |d| <= u, the compute dtype's unit roundoff; inputs are exact (a case is rounded
to its dtype before any framework sees it). The bound is the sum, over the operations of the
declared stages, of each rounding's effect on the output, with every magnitude taken in
absolute value, so it holds for any order of the operations within a stage and any sign of the
terms; recursive summation of n terms costs (n - 1) u sum |terms| (the worst order; a
pairwise or wider accumulator costs less). The model returns that bound in units of ``u``
(``scale``), per element of the value and of each gradient; a part whose every element is
within ``atol + rtol |expected| + u * scale`` of the oracle is consistent with the declared
computation. Second-order terms (u^2) are dropped; they are below the tolerance's ``atol``.

The model never explains a non-finite result, a wrong dtype or shape, or an element where the
oracle is not finite: those stay findings, as does anything past the bound (a halved slope of a
term that does not cancel is past it by a factor of about 1 / (2 u)).
"""

from __future__ import annotations

import numpy as np

from lossparity.reference._math import log_softmax

#: Unit roundoff (half the machine epsilon) of each dtype: round-to-nearest's relative error.
UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}


def unit_roundoff(dtype) -> float:
    """The unit roundoff of a dtype (a name or a NumPy dtype; ml_dtypes' bfloat16 included)."""
    return UNIT_ROUNDOFF[np.dtype(dtype).name if not isinstance(dtype, str) else dtype]


def summed(n: int, magnitude: np.ndarray) -> np.ndarray:
    """The rounding error of adding n terms whose absolute values sum to ``magnitude``,
    in units of u: (n - 1) sum |terms| (recursive summation)."""
    return max(n - 1, 0) * np.asarray(magnitude, np.float64)


def log_softmax_error(x: np.ndarray, stage: str = "log_softmax") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log_softmax(x), softmax(x), error of log_softmax in units of u), over the last axis.

    The stable algorithm, stage by stage, in a dtype with unit roundoff u (C classes, m the
    row's max, d_c = x_c - m, e_c = exp(d_c), S = sum e_c, p_c = e_c / S):

    - d_c = x_c - m: one rounding, u |d_c|;
    - e_c = exp(d_c): d_c's error relative, plus one rounding: u e_c (|d_c| + 1);
    - S: the e_c's errors plus the sum's: u S (sum_k p_k (|d_k| + 1) + C - 1);
    - log S: S's relative error plus one rounding: u (sum_k p_k (|d_k| + 1) + C - 1 + |log S|);
    - d_c - log S: both errors plus one rounding of the result: u |log p_c|.

    So |err(log p_c)| <= u (|d_c| + |log p_c| + A), A = sum_k p_k |d_k| + C + |log S| (one
    per row). ``stage="logsumexp"``: log p_c is x_c - logsumexp(x), logsumexp = m + log S
    (optax's integer-label cross-entropy, ``jax.nn.logsumexp``): adding m back rounds at the
    logsumexp's magnitude, so |err(log p_c)| <= u (|logsumexp| + |log p_c| + A).
    ``stage="stored_log_softmax"``: computed with a float accumulator and stored in the dtype
    (PyTorch's CPU kernels for Half and BFloat16), one rounding of a result whose own float32
    error is below u: |err(log p_c)| <= u (|log p_c| + 1). A framework
    that computes log(softmax(x)) has another algorithm (a softmax that underflows to 0 gives
    -inf): that is neither stage.
    """
    x = np.asarray(x, np.float64)
    ls = log_softmax(x)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(x, axis=-1, keepdims=True)
        d = x - m
        p = np.exp(ls)
        log_s = np.log(np.sum(np.exp(d), axis=-1, keepdims=True))
        a = np.sum(p * np.abs(d), axis=-1, keepdims=True) + x.shape[-1] + np.abs(log_s)
        if stage == "logsumexp":
            return ls, p, np.abs(m + log_s) + np.abs(ls) + a
        if stage == "stored_log_softmax":
            return ls, p, np.abs(ls) + 1.0
        return ls, p, np.abs(d) + np.abs(ls) + a


def reduction_error(per: np.ndarray, loss: np.ndarray, g: np.ndarray, reduction: str) -> np.ndarray:
    """The error of a reduced loss in units of u, from each element's (``per``, units of u)
    and the reduction's cotangent ``g`` (``reduce_grad``: 1, 1/N, w_i / sum w; 0 where masked).

    'none': the elements' own. 'sum' and a mean: sum_i |g_i| per_i (the elements' errors,
    carried) + 2n sum_i |g_i loss_i| (the numerator's sum of n terms, a weighted mean's
    denominator sum, the division). Masked elements (g = 0) cost nothing.
    """
    per, loss = np.asarray(per, np.float64), np.asarray(loss, np.float64)
    if reduction == "none":
        return per
    g = np.broadcast_to(np.asarray(g, np.float64), loss.shape)
    counted = g != 0
    with np.errstate(invalid="ignore"):
        carried = np.sum(np.where(counted, np.abs(g) * per, 0.0))
        terms = np.sum(np.where(counted, np.abs(g * loss), 0.0))
    return np.asarray(carried + 2 * int(np.sum(counted)) * terms)
