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

Two ways to write a model: closed forms of the magnitudes (``log_softmax_error``,
``reduction_error``; the cross-entropies, KL, CTC and regression models), or the framework's
forward and backward replayed operation by operation on :class:`Rounded` quantities, which
carry each value with its running bound (the focal, generalized and Poly-1 cross-entropies).

The model never explains a non-finite result, a wrong dtype or shape, or an element where the
oracle is not finite: those stay findings, as does anything past the bound (a halved slope of a
term that does not cancel is past it by a factor of about 1 / (2 u)).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from lossparity.reference._math import log_softmax, times

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


def subnormal_spacing(dtype) -> float:
    """Half the spacing of ``dtype``'s subnormal numbers (float16 2^-25, bfloat16 2^-134): the
    absolute rounding error of a result that lands below the smallest normal number, where the
    relative bound u no longer holds (Keras' clip bound 1e-7 is itself a float16 subnormal)."""
    import ml_dtypes

    return float(ml_dtypes.finfo(dtype).smallest_subnormal) / 2


class Rounded:
    """A quantity computed in a dtype of unit roundoff u: ``v`` its exact value (float64) and
    ``e`` a bound on the error of the computed one, |computed - v| <= u e (first order).

    The standard model: each operation's result is the exact result of its (computed) operands
    times (1 + d), |d| <= u, plus an absolute error below half the smallest normal number
    (a subnormal or flushed result; ``tiny``, in units of u). So, to first order in u:

    - a +- b: e = e_a + e_b + r(a +- b), r(z) = |z| + tiny the result's own rounding;
    - a b: e = |b| e_a + |a| e_b + r(a b) (an exact zero factor wins over an infinite one, but
      not over one whose computed value may be infinite: no bound there, 0 * inf is NaN);
    - a / b: e = e_a / |b| + |a / b| e_b / |b| + r(a / b);
    - log a: e = e_a / |a| + r(log a); exp a: e = exp(a) e_a + r(exp a);
    - a^g (a >= 0): the exact spread of t^g over the interval a +- u e_a (clamped at 0, so no
      linearization where the interval reaches 0 or a pole), plus r(a^g);
    - a sum of n terms (recursive, the worst order): sum e_k + (n - 1) sum |a_k| + n tiny, n
      counting the terms that are not exactly 0 (adding an exact 0 is exact);
    - a constant the framework writes as a Python float is rounded to the dtype once: its
      error is |fl(c) - c| / u, known exactly; 0, 1 and the inputs (cases are rounded to their
      dtype before any framework sees them) are exact; a negation, a selection and a product by
      a power of two (the 1/2 of jnp.clip's tie) are exact.

    A result that may reach the dtype's largest finite number (an overflow to inf) has no bound
    (e = inf), nor has anything computed from it: such elements stay findings.
    """

    __slots__ = ("dtype", "e", "top", "u", "v")

    def __init__(self, v, e=0.0, dtype=np.float16):
        self.v = np.asarray(v, np.float64)
        self.e = np.array(np.broadcast_to(np.asarray(e, np.float64), self.v.shape))
        self.dtype = dtype
        info = ml_dtypes.finfo(dtype)
        self.u = unit_roundoff(dtype)
        self.top = float(info.max)
        with np.errstate(invalid="ignore", over="ignore"):
            self.e[np.abs(self.v) + self.u * self.e >= self.top] = np.inf

    @property
    def tiny(self) -> float:
        return float(ml_dtypes.finfo(self.dtype).smallest_normal) / 2 / self.u

    def _new(self, v, e):
        return Rounded(v, e, self.dtype)

    def _r(self, v):
        return np.abs(v) + self.tiny

    def __add__(self, other):
        o = self._lift(other)
        with np.errstate(invalid="ignore"):
            v = self.v + o.v
            return self._new(v, self.e + o.e + self._r(v))

    def __sub__(self, other):
        return self + (-self._lift(other))

    def __rsub__(self, other):
        return self._lift(other) - self

    def __neg__(self):
        return self._new(-self.v, self.e)

    def __mul__(self, other):
        o = self._lift(other)
        # a zero factor wins over an infinite one (``times``), in the value and in the errors
        # ... unless the computed factor may itself be infinite (its error is): 0 * inf is NaN
        v = np.where((self.v == 0) | (o.v == 0), 0.0, self.v * o.v)
        e = times(self.e, np.abs(o.v)) + times(np.abs(self.v), o.e) + self._r(v)
        pole = ((self.v == 0) & ~np.isfinite(o.e)) | ((o.v == 0) & ~np.isfinite(self.e))
        return self._new(v, np.where(pole, np.inf, e))

    def __truediv__(self, other):
        o = self._lift(other)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = self.v / o.v
            return self._new(v, (self.e + np.abs(v) * o.e) / np.abs(o.v) + self._r(v))

    def _lift(self, other):
        return other if isinstance(other, Rounded) else self._new(other, 0.0)

    def const(self, c):
        """The Python constant ``c`` as the framework writes it in the dtype: rounded once."""
        c = np.asarray(c, np.float64)
        return self._new(c, np.abs(c.astype(self.dtype).astype(np.float64) - c) / self.u)

    def log(self):
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.log(self.v)
            return self._new(v, self.e / np.abs(self.v) + self._r(v))

    def log1p(self):
        """log(1 + a), a > -1: the argument's error divided by 1 + a, plus one rounding."""
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.log1p(self.v)
            return self._new(v, self.e / np.abs(1.0 + self.v) + self._r(v))

    def exp(self):
        with np.errstate(over="ignore", invalid="ignore"):
            v = np.exp(self.v)
            return self._new(v, v * self.e + self._r(v))

    def power(self, g):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            v = np.power(self.v, g)
            spread = np.maximum(
                np.abs(np.power(self.v + self.u * self.e, g) - v),
                np.abs(np.power(np.maximum(self.v - self.u * self.e, 0.0), g) - v),
            )
            return self._new(v, spread / self.u + self._r(v))

    def sum(self, axis=-1):
        n = np.sum((self.v != 0) | (self.e != 0), axis=axis, keepdims=True)
        with np.errstate(invalid="ignore"):
            return self._new(
                np.sum(self.v, axis=axis, keepdims=True),
                np.sum(self.e, axis=axis, keepdims=True)
                + np.maximum(n - 1, 0) * np.sum(np.abs(self.v), axis=axis, keepdims=True)
                + n * self.tiny,
            )

    def where(self, mask, other):
        """The selection where(mask, self, other): exact."""
        o = self._lift(other)
        return self._new(np.where(mask, self.v, o.v), np.where(mask, self.e, o.e))


# The activation a user wraps the loss's argument in (``loss(sigmoid(z), y)``, ``Case.transforms``),
# computed by the framework in the argument's dtype. The oracle reads the activation's exact value
# rounded to the dtype once (``reference/transforms.py``: ``through``); a framework computes it with
# one rounding per operation (TensorFlow's and JAX's float16 and bfloat16 sigmoid and softmax are
# not the correctly rounded value: 3.2 and 35 units of u past it were measured on TF 2.21 and
# JAX 0.8, float16 and bfloat16 respectively), and the loss then reads that value.

#: The transforms whose rounding is modelled, and the stage name a fit reports.
TRANSFORM_STAGES = {"sigmoid": "sigmoid", "softmax": "softmax"}


def transform_error(name: str, x: np.ndarray, axis: int, dtype) -> np.ndarray:
    """|computed transform(x) - the oracle's value| in units of ``dtype``'s u, elementwise, where
    the oracle's value is the exact transform of ``x`` (exact in ``dtype``) rounded once to ``dtype``,
    and the computed one is the standard algorithm with every operation rounded:

    - sigmoid, 1 / (1 + exp(-x)), p the exact value, E = exp(-x): exp rounds (u E), the sum
      carries it and rounds (u (E + 1 + E)), the reciprocal's relative error is then
      u (E / (1 + E) + 1) plus its own rounding: 3 u p at most; the oracle's rounding u p more:
      4 p. (Measured on every float16 and bfloat16 value in [-30, 30]: 2.5 u p at most.)
    - softmax over ``axis`` (the stable algorithm of ``log_softmax_error``: d_c = x_c - m,
      e_c = exp(d_c), S = sum e_c, p_c = e_c / S): e_c's relative error u (|d_c| + 1), S's
      u (sum_k p_k (|d_k| + 1) + C - 1), the division's u: u p_c (|d_c| + sum_k p_k (|d_k| + 1)
      + C + 1), and the oracle's rounding u p_c more.

    A result near the smallest normal number may be flushed to 0 (XLA's CPU bfloat16 softmax
    flushes subnormals; TensorFlow's flushes an exact 2.1e-38, 1.8 times the smallest normal,
    through its subnormal intermediates) or come from an exp that overflowed (a float16 sigmoid
    of -12 is 0): an absolute error of at most twice the smallest normal number, added to every
    element."""
    x = np.asarray(x, np.float64)
    u = unit_roundoff(dtype)
    tiny = 2.0 * float(ml_dtypes.finfo(dtype).smallest_normal) / u
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "sigmoid":
            p = 1.0 / (1.0 + np.exp(-x))
            return 4.0 * p + tiny
        if name == "softmax":
            if not x.ndim:
                return np.zeros_like(x)  # softmax of one number is exactly 1
            m = np.max(x, axis=axis, keepdims=True)
            d = np.abs(x - m)
            e = np.exp(x - m)
            p = e / np.sum(e, axis=axis, keepdims=True)
            a = np.sum(p * (d + 1.0), axis=axis, keepdims=True) + x.shape[axis] + 2.0
            return p * (d + a) + tiny
    raise ValueError(f"no rounding model of the transform {name!r}")


def sigmoid_in_dtype(x: np.ndarray, dtype) -> tuple[np.ndarray, list[np.ndarray]]:
    """(p, candidates): the sigmoid of ``x`` (float64 holding values of ``dtype``) as the backends
    compute it in ``dtype``, and every value it may take there, elementwise, each a value of
    ``dtype`` (float64 arrays).

    ``p`` is 1 / (1 + exp(-x)) with every operation rounded to ``dtype`` (float16 and bfloat16
    computed in float32 and rounded once, as torch's CPU kernels do): the algorithm of
    ``jax.nn.sigmoid`` (XLA's logistic expansion on CPU) and ``torch.sigmoid``. On x >= 0 it is
    what both return, bit for bit, but where exp's own error (a few ULPs) carries 1 + exp(-x)
    across a rounding midpoint: measured equal on 200,000 float32 logits in [14, 19] for both
    (near 1 the result is decided by the rounding of 1 + exp(-x) to a neighbour of 1, which exp's
    error of about 1e-14 there cannot move), and on [0, 30] but 0.8% of them, one ULP off: the
    candidates add p computed from exp(-x) (1 + 2ku), k = -2..2, exp's neighbours within 2 ULPs,
    so those are derived too. On x < 0 their quotient differs from this one by up to 2 ULPs of
    the correctly rounded value (measured): the candidates there are the correctly rounded value
    and its neighbours within 2 ULPs. JAX's float16 and bfloat16 sigmoid of a negative logit is
    farther off (measured up to 255 ULPs in float16): not modelled, its findings stay findings."""
    x = np.asarray(x, np.float64)
    dtype = np.dtype(dtype).type
    work = np.float32 if np.dtype(dtype).itemsize < 4 else dtype
    with np.errstate(over="ignore", invalid="ignore"):
        xv = x.astype(dtype).astype(work)
        e = np.exp(-xv).astype(work)
        p = (work(1.0) / (work(1.0) + e)).astype(work).astype(dtype).astype(np.float64)
        # exp's own error (a few ULPs, the one operation not reproduced bit for bit) moves p only
        # where 1 + exp(-x) lies that close to a rounding midpoint: p from exp's neighbours
        uw = unit_roundoff(work)
        shifted = [
            (work(1.0) / (work(1.0) + (e * work(1.0 + k * 2.0 * uw)).astype(work))).astype(work)
            for k in (-2.0, -1.0, 1.0, 2.0)
        ]
        shifted = [c.astype(dtype).astype(np.float64) for c in shifted]
        exact = 1.0 / (1.0 + np.exp(-x))
        nearest = exact.astype(dtype).astype(np.float64)
    candidates = [p, *shifted]
    info = ml_dtypes.finfo(dtype)
    with np.errstate(divide="ignore"):
        _, exponent = np.frexp(nearest)
    spacing = np.maximum(np.ldexp(1.0, exponent - 1 - int(info.nmant)), float(info.smallest_subnormal))
    neg = x < 0
    for k in (-2, -1, 0, 1, 2):
        step = (nearest + k * spacing).astype(dtype).astype(np.float64)
        candidates.append(np.where(neg, step, p))
    candidates[1:5] = [np.where(neg, p, c) for c in candidates[1:5]]
    return p, candidates


def transform_backward_error(name: str, p: np.ndarray, axis: int, g: np.ndarray) -> np.ndarray:
    """The rounding of the transform's backward step in the dtype, in units of its u, elementwise:
    the cotangent ``g`` (with respect to the transform's output ``p``) rounded to the dtype once,
    then carried back, each operation rounded:

    - sigmoid, g p (1 - p): g's rounding, 1 - p's, the two products': 4 |g p (1 - p)|;
    - softmax, p_c (g_c - s), s = sum_k g_k p_k: g's rounding carried (p_c (|g_c| + sum_k p_k
      |g_k|)), the products g_k p_k and the sum's C - 1 additions ((C + 1) p_c sum_k p_k |g_k|),
      the difference's (p_c |g_c - s|) and the product's own (|p_c (g_c - s)|).
    """
    p, g = np.asarray(p, np.float64), np.asarray(g, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        if name == "sigmoid":
            return 4.0 * np.abs(g * p * (1.0 - p))
        if name == "softmax":
            if not p.ndim:
                return np.zeros_like(p)
            pg = np.sum(p * np.abs(g), axis=axis, keepdims=True)
            s = np.sum(p * g, axis=axis, keepdims=True)
            return p * (np.abs(g) + (p.shape[axis] + 2.0) * pg + 2.0 * np.abs(g - s))
    raise ValueError(f"no rounding model of the transform {name!r}")
