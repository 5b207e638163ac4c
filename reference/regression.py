"""Regression losses: absolute, squared, Huber (and smooth L1), log-cosh, percentage and
squared-logarithmic errors, and the halved squared norm of one tensor (``tf.nn.l2_loss``).

Every loss here is elementwise in the residual r = input - target (``input`` the prediction,
``target`` the ground truth, both of one shape, no class axis). Keras writes y_true - y_pred
for some of them: the sign is immaterial to |r|, r^2 and the even Huber and log-cosh.
Keras' function forms then take the mean over the last axis (convention
``sample_axis="mean"``), optax's return the elementwise losses, PyTorch reduces with
none/sum/mean, PyTorch's ``l1_loss``/``mse_loss``/``huber_loss`` also take an elementwise
``weight`` of the input's shape.

Each oracle ``f`` has a gradient ``f_grad`` with the same arguments returning
``{"input": ..., "target": ...}`` (d sum(out) / d each, float64, in the input's shape). At a
kink the slope is the one autodiff frameworks take: |r| has slope sign(r), 0 at r = 0 (the
derivative rule of abs in PyTorch, TensorFlow and JAX). A ``max(a, eps)`` passes its slope to
``a`` at a tie ``a == eps`` (TensorFlow's Maximum gradient), or half of it with
``floor_tie="half"`` (torch.maximum, jnp.maximum). Huber and
smooth L1 are continuously differentiable: at |r| = delta both branches have slope
sign(r) delta, so no convention is needed there.

``dtype`` is the binding's compute dtype, used only to round the constants a framework writes
in its own dtype (Keras' epsilon).
"""

from __future__ import annotations

import numpy as np

from lossparity.reference._math import clip_grad, sigmoid, softplus, times
from lossparity.reference.errors import OracleError
from lossparity.reference.reduction import _sum_to, chain, reduce, reduce_grad, tf_v1_weights
from lossparity.reference.rounding import reduction_error, unit_roundoff
from lossparity.reference.trace import NO_TRACE, reading

# ----------------------------------------------------------------------------- shared stages


def _residual(input, target, trace):
    """r = input - target, float64 (exact for float32 inputs: the difference of two float32
    numbers is a float64 number, short of overflow, which float64 leaves no room for)."""
    x = trace("input", np.asarray(input, np.float64), reading(input, "predictions", classes=False))
    y = np.asarray(target, np.float64)
    with np.errstate(invalid="ignore"):
        return trace("residual", x - y, "r = input - target")


def _flushed_residual(input, target, flush, dtype, trace):
    """r = input - target, with the inputs and r flushed where the framework flushes
    subnormals (``flush_subnormals``; the difference of two float32 numbers is exact)."""
    if not flush:
        return _residual(input, target, trace)
    x, y = flush_to_zero(input, dtype), flush_to_zero(target, dtype)
    r = _residual(x, y, trace)
    return trace("flushed residual", flush_to_zero(r, dtype), "subnormals read as +-0")


def _reduced(loss, weight, reduction, sample_axis, mean_by, trace):
    """Weight the per-element loss (a weight of 0 wins over an infinite loss) and reduce it."""
    if weight is not None:
        weight = np.broadcast_to(np.asarray(weight, np.float64), np.shape(loss))
        loss = trace("weight", times(weight, loss), "w * loss, elementwise")
    return reduce(loss, reduction=reduction, sample_axis=sample_axis, denom_weight=weight, mean_by=mean_by, trace=trace)


def _pulled(slope_x, slope_y, weight, reduction, sample_axis, mean_by):
    """Chain the per-element slopes (d loss / d input, d loss / d target) through the weight
    and the reduction."""
    shape = np.shape(slope_x)
    g = reduce_grad(
        shape,
        reduction=reduction,
        sample_axis=sample_axis,
        mean_by=mean_by,
        denom_weight=None if weight is None else np.broadcast_to(np.asarray(weight, np.float64), shape),
    )
    if weight is not None:
        g = times(np.broadcast_to(np.asarray(weight, np.float64), shape), g)
    out = {"input": chain(g, slope_x)}
    if slope_y is not None:
        out["target"] = chain(g, slope_y)
    return out


def _sign(r, at_zero=0.0):
    """sign(r), the slope of |r|: NaN at NaN, and at r = 0 the slope d loss / d input that the
    framework's autodiff takes (``abs_zero_slope``): 0 (PyTorch, TensorFlow: sign(0)), or -1
    for Keras on JAX, which writes |y_true - y_pred| and whose abs has slope +1 at 0."""
    r = np.asarray(r, np.float64)
    return np.where(r == 0, at_zero, np.sign(r)) if at_zero else np.sign(r)


#: The smallest normal number of the precision each dtype is computed in on a CPU: float32's for
#: float32 and bfloat16 (XLA and Eigen compute bfloat16 in float32), none for float16 (its
#: subnormals are normal float32 numbers, in which XLA and Eigen compute it).
_TINY = {
    "float32": float(np.finfo(np.float32).tiny),
    "bfloat16": float(np.finfo(np.float32).tiny),
    "float64": float(np.finfo(np.float64).tiny),
}


def flush_to_zero(x, dtype, flush=True):
    """``x`` with the subnormal numbers of its compute precision replaced by a zero of their
    sign (``flush_subnormals=True``): XLA on CPU marks every function denormal-fp-math=
    preserve-sign and TensorFlow runs its kernels with flush-to-zero and denormals-are-zero
    set, so a float32 subnormal input reads as +-0 and compares equal to 0 (a subnormal
    residual has |r|'s slope at 0, a subnormal score ties with 0). Shared by the regression
    and margin oracles."""
    x = np.asarray(x, np.float64)
    tiny = _TINY.get(np.dtype(dtype).name, 0.0) if flush else 0.0
    return np.where(np.abs(x) < tiny, np.copysign(0.0, x), x) if tiny else x


def _floor_grad(v, eps, grad, floor_tie):
    """Pull ``grad`` back through max(v, eps): passed where v > eps (and at NaN, which max
    propagates), 0 where v < eps, and at a tie v == eps passed whole (``floor_tie="pass"``,
    TensorFlow's Maximum gradient) or halved (``"half"``: torch.maximum and jnp.maximum split
    a tie between their two arguments)."""
    v = np.asarray(v, np.float64)
    out = clip_grad(v, eps, None, grad)
    if floor_tie == "half":
        out = np.where(v == eps, 0.5 * out, out)
    return out


def _floor(eps, dtype):
    """The floor ``eps`` rounded to ``dtype``, as a framework writes it in the tensor's dtype."""
    return float(np.asarray(eps, dtype=dtype).astype(np.float64))


# ----------------------------------------------------------------------------- absolute error


def absolute_error(
    input,
    target,
    *,
    weight=None,
    reduction="mean",
    sample_axis=None,
    mean_by="elements",
    abs_zero_slope=0.0,
    flush_subnormals=False,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """|input - target| elementwise, both of one shape; an optional ``weight`` of that shape
    multiplies each term (PyTorch's ``l1_loss``, whose mean then divides by sum(weight):
    ``mean_by="weights"``). ``flush_subnormals``: inputs and residual flushed to +-0 below
    the compute precision's smallest normal (:func:`flush_to_zero`)."""
    r = _flushed_residual(input, target, flush_subnormals, dtype, trace)
    loss = trace("per-element loss", np.abs(r), "|r|")
    return _reduced(loss, weight, reduction, sample_axis, mean_by, trace)


def absolute_error_grad(
    input,
    target,
    *,
    weight=None,
    reduction="mean",
    sample_axis=None,
    mean_by="elements",
    abs_zero_slope=0.0,
    flush_subnormals=False,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/d input = sign(r) (``abs_zero_slope`` at r = 0), d/d target = -sign(r)."""
    r = _flushed_residual(input, target, flush_subnormals, dtype, NO_TRACE)
    s = _sign(r, abs_zero_slope)
    return _pulled(s, -s, weight, reduction, sample_axis, mean_by)


# ----------------------------------------------------------------------------- squared error


def squared_error(
    input,
    target,
    *,
    weight=None,
    reduction="mean",
    sample_axis=None,
    mean_by="elements",
    half_square=False,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """(input - target)^2 elementwise, both of one shape; ``half_square`` halves it (optax's
    ``l2_loss``, Bishop's convention); ``weight`` as in :func:`absolute_error`."""
    r = _residual(input, target, trace)
    loss = np.square(r)
    loss = trace("per-element loss", 0.5 * loss if half_square else loss, "r^2 / 2" if half_square else "r^2")
    return _reduced(loss, weight, reduction, sample_axis, mean_by, trace)


def squared_error_grad(
    input,
    target,
    *,
    weight=None,
    reduction="mean",
    sample_axis=None,
    mean_by="elements",
    half_square=False,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/d input = 2 r (r with ``half_square``), d/d target its negative."""
    r = _residual(input, target, NO_TRACE)
    s = r if half_square else 2.0 * r
    return _pulled(s, -s, weight, reduction, sample_axis, mean_by)


# ----------------------------------------------------------------------------- l2_loss (no target)


def l2_loss(input, *, reduction="sum", half_square=False, dtype=np.float32, trace=NO_TRACE):
    """The squared L2 norm of one tensor, sum(t^2) (``reduction="sum"``), or its elementwise
    terms t^2 (``"none"``: optax's ``squared_error``/``l2_loss`` with ``targets=None``, whose
    target is documented as zeros); ``half_square`` halves it (``tf.nn.l2_loss``:
    sum(t^2) / 2)."""
    t = trace("input", np.asarray(input, np.float64), reading(input, "values", classes=False))
    loss = np.square(t)
    loss = trace("per-element loss", 0.5 * loss if half_square else loss, "t^2 / 2" if half_square else "t^2")
    return reduce(loss, reduction=reduction, trace=trace)


def l2_loss_grad(input, *, reduction="sum", half_square=False, dtype=np.float32, trace=NO_TRACE):
    """d/d input = 2 t (t with ``half_square``)."""
    t = np.asarray(input, np.float64)
    g = reduce_grad(np.shape(t), reduction=reduction)
    return {"input": chain(g, t if half_square else 2.0 * t)}


# ----------------------------------------------------------------------------- Huber, smooth L1


def _check_delta(delta, huber_form, nonpositive_delta):
    """Raise where the binding documents a check on delta: PyTorch's huber_loss takes delta > 0
    only, its smooth_l1_loss beta >= 0 (beta = 0 is the L1 loss)."""
    if nonpositive_delta is None:
        return
    bad = delta < 0 if huber_form == "smooth_l1" else delta <= 0
    if bad:
        raise OracleError(nonpositive_delta, f"delta (beta) = {delta} is out of the documented range")


def huber(
    input,
    target,
    *,
    delta=1.0,
    weight=None,
    reduction="mean",
    sample_axis=None,
    mean_by="elements",
    huber_form="huber",
    nonpositive_delta=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Huber loss of r = input - target: r^2 / 2 where |r| <= delta, else delta (|r| - delta/2).

    ``huber_form="smooth_l1"`` divides it by delta (PyTorch's smooth L1 loss with beta =
    delta: r^2 / (2 beta) inside, |r| - beta/2 outside), and is |r| at delta = 0, its limit
    (PyTorch documents beta = 0 as the L1 loss). The plain Huber loss at delta = 0 is 0.
    ``nonpositive_delta`` names the error raised for a delta out of the documented range.
    """
    _check_delta(delta, huber_form, nonpositive_delta)
    r = _residual(input, target, trace)
    a = np.abs(r)
    with np.errstate(invalid="ignore", over="ignore"):
        # delta (|r| - delta/2) rather than delta |r| - delta^2 / 2: one rounding fewer, and no
        # 0 * inf at delta = 0 (the plain loss is then identically 0).
        loss = np.where(a <= delta, 0.5 * np.square(r), times(delta, a - 0.5 * delta))
        loss = np.where(np.isnan(r), np.nan, loss)
        note = "r^2/2 if |r| <= delta else delta (|r| - delta/2)"
        if huber_form == "smooth_l1":
            loss = a if delta == 0 else np.where(a < delta, 0.5 * np.square(r) / delta, a - 0.5 * delta)
            note = "|r|, beta = 0" if delta == 0 else "r^2/(2 beta) if |r| < beta else |r| - beta/2"
    loss = trace("per-element loss", loss, note)
    return _reduced(loss, weight, reduction, sample_axis, mean_by, trace)


def huber_grad(
    input,
    target,
    *,
    delta=1.0,
    weight=None,
    reduction="mean",
    sample_axis=None,
    mean_by="elements",
    huber_form="huber",
    nonpositive_delta=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/d input = r where |r| <= delta, else sign(r) delta: clip(r, -delta, delta) (divided by
    delta for smooth L1; sign(r) at beta = 0),
    d/d target its negative. Continuous at |r| = delta, where both branches give +-delta."""
    _check_delta(delta, huber_form, nonpositive_delta)
    r = _residual(input, target, NO_TRACE)
    # clip(r, -delta, delta) for delta >= 0, written as the slope of the branch each element
    # takes, which is also what Keras and optax differentiate for a (meaningless) delta < 0
    with np.errstate(invalid="ignore"):
        s = np.where(np.abs(r) <= delta, r, _sign(r) * delta)
    if huber_form == "smooth_l1":
        s = _sign(r) if delta == 0 else s / delta
    return _pulled(s, -s, weight, reduction, sample_axis, mean_by)


# ----------------------------------------------------------------------------- log-cosh


def log_cosh(
    input,
    target,
    *,
    reduction="mean",
    sample_axis=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """log(cosh(r)) of r = input - target, +inf at r = +-inf.

    Written log1p(cosh r - 1) with cosh r - 1 = expm1(a)^2 / (2 e^a), a = |r|: every step is
    accurate in relative terms, where log(e^r + e^-r) - log 2 (optax) and
    r + softplus(-2r) - log 2 (Keras) cancel against log 2 for small |r|. For a >= 20, where
    e^a would overflow first, it is a - log 2 + softplus(-2a), with nothing left to cancel.
    """
    r = _residual(input, target, trace)
    a = np.abs(r)
    with np.errstate(over="ignore", invalid="ignore"):
        m = np.minimum(a, 20.0)
        moderate = np.log1p(np.square(np.expm1(m)) / (2.0 * np.exp(m)))
        large = (a - np.log(2.0)) + softplus(-2.0 * a)
        loss = np.where(a < 20.0, moderate, large)
    loss = trace("per-element loss", loss, "log cosh r")
    return reduce(loss, reduction=reduction, sample_axis=sample_axis, trace=trace)


def log_cosh_grad(
    input,
    target,
    *,
    reduction="mean",
    sample_axis=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/d input = tanh(r) (+-1 at r = +-inf), d/d target = -tanh(r)."""
    r = _residual(input, target, NO_TRACE)
    s = np.tanh(r)
    return _pulled(s, -s, None, reduction, sample_axis, "elements")


# ----------------------------------------------------------------------------- percentage error


def mean_absolute_percentage_error(
    input,
    target,
    *,
    reduction="mean",
    sample_axis=None,
    denominator_eps=None,
    floor_tie="pass",
    abs_zero_slope=0.0,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """100 |target - input| / |target| elementwise (in percent of the target).

    ``denominator_eps`` clamps the denominator from below: max(|target|, eps), eps rounded to
    the compute dtype (Keras: ``backend.epsilon()`` = 1e-7 converted to y_pred's dtype). Plain,
    a zero target gives +inf (NaN where the input is 0 too).
    """
    r = _residual(input, target, trace)
    y = np.asarray(target, np.float64)
    den = np.abs(y)
    if denominator_eps is not None:
        den = trace("clamp", np.maximum(den, _floor(denominator_eps, dtype)), f"max(|target|, {denominator_eps})")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        loss = trace("per-element loss", 100.0 * (np.abs(r) / den), "100 |r| / |target|")
    return reduce(loss, reduction=reduction, sample_axis=sample_axis, trace=trace)


def mean_absolute_percentage_error_grad(
    input,
    target,
    *,
    reduction="mean",
    sample_axis=None,
    denominator_eps=None,
    floor_tie="pass",
    abs_zero_slope=0.0,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/d input = 100 sign(r) / m, m = max(|y|, eps), sign(0) being ``abs_zero_slope``;
    d/d target = -100 sign(r) / m - 100 |r| sign(y) / m^2, the second term only where
    |y| >= eps (at a tie |y| = eps whole or halved: ``floor_tie``), and 0 at y = 0 whatever
    (sign(0) = 0)."""
    r = _residual(input, target, NO_TRACE)
    y = np.asarray(target, np.float64)
    a = np.abs(y)
    den = a if denominator_eps is None else np.maximum(a, _floor(denominator_eps, dtype))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d_x = 100.0 * _sign(r, abs_zero_slope) / den
        d_den = -100.0 * np.abs(r) / np.square(den)
        if denominator_eps is not None:
            d_den = _floor_grad(a, _floor(denominator_eps, dtype), d_den, floor_tie)
        d_y = -d_x + times(_sign(y), d_den)
    return _pulled(d_x, d_y, None, reduction, sample_axis, "elements")


# ----------------------------------------------------------------------------- squared log error


def _log1p_floored(v, value_floor, dtype, trace, name):
    if value_floor is not None:
        v = trace(f"floor {name}", np.maximum(v, _floor(value_floor, dtype)), f"max({name}, {value_floor})")
    with np.errstate(divide="ignore", invalid="ignore"):
        return v, np.log1p(v)


def mean_squared_logarithmic_error(
    input,
    target,
    *,
    reduction="mean",
    sample_axis=None,
    value_floor=None,
    floor_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """(log(1 + input) - log(1 + target))^2 elementwise, with log1p.

    ``value_floor`` first raises both to at least eps (Keras: ``backend.epsilon()`` = 1e-7,
    so negative values count as 1e-7). Plain, a value below -1 gives NaN and -1 gives +inf.
    """
    x = trace("input", np.asarray(input, np.float64), reading(input, "predictions", classes=False))
    _, lx = _log1p_floored(x, value_floor, dtype, trace, "input")
    _, ly = _log1p_floored(np.asarray(target, np.float64), value_floor, dtype, trace, "target")
    with np.errstate(invalid="ignore"):
        loss = trace("per-element loss", np.square(lx - ly), "(log1p(input) - log1p(target))^2")
    return reduce(loss, reduction=reduction, sample_axis=sample_axis, trace=trace)


def mean_squared_logarithmic_error_grad(
    input,
    target,
    *,
    reduction="mean",
    sample_axis=None,
    value_floor=None,
    floor_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/d input = 2 (lx - ly) / (1 + x), 0 where the floor holds (x < eps); d/d target
    = -2 (lx - ly) / (1 + y), likewise; at a tie x == eps whole or halved (``floor_tie``)."""
    x, y = np.asarray(input, np.float64), np.asarray(target, np.float64)
    fx, lx = _log1p_floored(x, value_floor, dtype, NO_TRACE, "input")
    fy, ly = _log1p_floored(y, value_floor, dtype, NO_TRACE, "target")
    with np.errstate(invalid="ignore", divide="ignore"):
        d = 2.0 * (lx - ly)
        d_x, d_y = d / (1.0 + fx), -d / (1.0 + fy)
    if value_floor is not None:
        eps = _floor(value_floor, dtype)
        d_x, d_y = _floor_grad(x, eps, d_x, floor_tie), _floor_grad(y, eps, d_y, floor_tie)
    return _pulled(d_x, d_y, None, reduction, sample_axis, "elements")


# ----------------------------------------------------------------------------- rounding models
# ``Spec.error_model`` of log-cosh and of the squared logarithmic error: the first-order bound,
# in units of the compute dtype's unit roundoff u, of computing the loss stage by stage in that
# dtype (``reference/rounding.py`` states the model). Each takes the oracle's arguments and
# returns {"value": ..., "input": ..., "target": ...} in the shapes of the value and gradients.
# Notation: r the exact residual of the (rounded) inputs, a = |r|, L = log 2.

#: The stages the log-cosh model knows. "softplus_form": Keras' r + softplus(-2r) - log 2 in
#: the input dtype; "eigen_softplus": that softplus is TensorFlow's CPU kernel, which returns
#: m for m > -T and exp(m) for m < T, T = log(eps) + 2 in the dtype (an approximation, not a
#: rounding: its exact error is added); "logaddexp_form": optax's logaddexp(r, -r) - log 2.
LOG_COSH_STAGES = ("softplus_form", "eigen_softplus", "logaddexp_form")
#: The stage of the squared logarithmic error model: Keras' log(max(v, eps) + 1) in the input
#: dtype (the JAX backend, where the float32 epsilon is weakly typed and promotes nothing).
MSLE_STAGES = ("log_plus_one",)

#: Eigen's NumTraits<T>::epsilon() (the machine epsilon, 2u), which sets TensorFlow's softplus
#: thresholds.
_EIGEN_EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}


def _row_error(per, loss, reduction, sample_axis):
    """The error (units of u) of the reduced loss from each element's (``per``): a mean over
    the last axis (``sample_axis="mean"``, Keras' function forms) costs each row its
    elements' errors / n, the sum's (n - 1) sum |terms| / n and the division's |mean|; then
    the reduction costs what :func:`~lossparity.reference.rounding.reduction_error` says."""
    per, loss = np.asarray(per, np.float64), np.asarray(loss, np.float64)
    if sample_axis == "mean":
        n = loss.shape[-1]
        if not n:
            per, loss = np.zeros(loss.shape[:-1]), np.zeros(loss.shape[:-1])
        else:
            with np.errstate(invalid="ignore", over="ignore"):
                mean = np.mean(loss, axis=-1)
                per = np.mean(per, axis=-1) + (n - 1) * np.mean(np.abs(loss), axis=-1) + np.abs(mean)
                loss = mean
    return reduction_error(per, loss, reduce_grad(np.shape(loss), reduction=reduction), reduction)


def _slope_error(per, slope, reduction, sample_axis):
    """A gradient's error (units of u) from its per-element error ``per`` (for a unit
    cotangent) and exact ``slope``: both times |g|, the reduction's cotangent, whose own
    rounding (1/n in the dtype) costs |g slope| more."""
    g = np.abs(reduce_grad(np.shape(slope), reduction=reduction, sample_axis=sample_axis))
    with np.errstate(invalid="ignore"):
        return times(g, np.asarray(per, np.float64) + np.abs(slope))


def _softplus_truncation(m, dtype):
    """|softplus(m) - eigen_softplus(m)|: TensorFlow's CPU softplus returns m where m > -T and
    exp(m) where m < T, T = log(eps) + 2 in the dtype (tensorflow/core/kernels/softplus_op.h),
    so it is log1p(exp(-m)) off above and exp(m) - log1p(exp(m)) below: up to 2 e^2 u / m and
    e^2 u relative (about 14.8 u / m and 7.4 u; 0.056 absolute in bfloat16 at m = 2.85)."""
    name = np.dtype(dtype).name
    t = float(np.asarray(np.log(np.asarray(_EIGEN_EPS.get(name, 2.0**-23), dtype)) + 2.0, dtype))
    with np.errstate(over="ignore", invalid="ignore"):
        above = np.log1p(np.exp(-np.abs(m)))
        below = np.exp(np.minimum(m, 0.0)) - np.log1p(np.exp(np.minimum(m, 0.0)))
        return np.where(m > -t, above, np.where(m < t, below, 0.0))


def log_cosh_error(input, target, *, reduction="mean", sample_axis=None, dtype=np.float32, trace=NO_TRACE, stages=()):
    """Rounding model of :func:`log_cosh` computed in the compute dtype (``stages``).

    Every form first rounds the residual, r(1 + d): its effect is the slope times u |r|, so
    u a |tanh r| on the value and u a sech^2 r on the slope. Then, with t = log1p(exp(-2a))
    (in (0, log 2]) and s = softplus(m), m = -2r (exact: a power of 2):

    ``softplus_form`` (Keras: r + softplus(-2r) - log 2; the JAX, TensorFlow and PyTorch
    backends' softplus each bounded):

    - s: JAX's logaddexp(m, 0) = max(m, 0) + log1p(exp(-|m|)) costs exp's rounding carried
      through log1p (u z / (1 + z) <= u t_m, t_m = log1p(exp(-|m|))), log1p's u t_m, and the
      add's min(u s, t_m) (a representable max(m, 0) is never more than t_m away); Eigen's
      log1p(exp(m)) costs u sigma(m) (exp's, carried) + u s; PyTorch's float opmath one
      rounding: e_s <= u (sigma(m) + s + 2 t_m), plus, with ``eigen_softplus``, TensorFlow's
      truncation (:func:`_softplus_truncation`), exact, over u;
    - r + s: u |r + s|; log 2 rounded to the dtype: u L; the final difference: u |v|.

    Value: u (a |tanh r| + e_s + |r + s| + L + |v|) per element. The slope is, in reverse mode,
    g + (-2) g sigma(m): sigma(m) is exp(m - s) in JAX's logaddexp jvp (relative error e_s +
    u softplus(-m) (the subtraction of m - s = -softplus(-m)) + u (exp)), 1 / (exp(-m) + 1)
    in TensorFlow's SoftplusGrad (3 u: exp, the add, the division), float opmath in PyTorch
    (u); the product with g one rounding more, the final add u |tanh r|, g's own rounding u
    |tanh r|: u |g| (a sech^2 r + 2 sigma(m) (rho + 1) + 2 |tanh r|), rho the largest of the
    three.

    ``logaddexp_form`` (optax: logaddexp(r, -r) - log 2 = a + t - L, max(r, -r) exact, the
    difference 2r exact): value u (a |tanh r| + 2t + min(a + t, t / u) + L + |v|); slope
    g exp(r - s) - g exp(-r - s) (the jvp of logaddexp), each exp of relative error e_s +
    u |x_i - s| + u, each product one rounding, their sum u |tanh r|:
    u |g| (a sech^2 r + sum_i sigma(+-2r) (rho_i + 1) + 2 |tanh r|).

    For small |r| every form cancels O(1) terms to v = r^2 / 2: the bound is then a few u
    absolute (3.5 u at r = 0), the accuracy the computation has, not a relative one.
    """
    u = unit_roundoff(dtype)
    r = _residual(input, target, NO_TRACE)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        a = np.abs(r)
        v = np.asarray(log_cosh(input, target, reduction="none"), np.float64)
        tanh, sech2 = np.tanh(r), 1.0 / np.square(np.cosh(np.minimum(a, 350.0)))
        residual_v, residual_g = a * np.abs(tanh), a * sech2
        lg2 = np.log(2.0)
        if "logaddexp_form" in stages:
            t = np.log1p(np.exp(-2.0 * a))
            s = a + t
            e_s = 2 * t + np.minimum(s, t / u)
            per_v = residual_v + e_s + lg2 + np.abs(v)
            rho = [e_s + np.abs(x - s) + 1 for x in (r, -r)]
            per_g = residual_g + sum(sigmoid(x) * (p + 1) for x, p in zip((2 * r, -2 * r), rho)) + np.abs(tanh)
        else:
            m = -2.0 * r
            s, sig = softplus(m), sigmoid(m)
            t_m = np.log1p(np.exp(-np.abs(m)))
            e_s = sig + s + 2 * t_m
            if "eigen_softplus" in stages:
                e_s = e_s + _softplus_truncation(m, dtype) / u
            per_v = residual_v + e_s + np.abs(r + s) + lg2 + np.abs(v)
            rho = np.maximum(2 * t_m + np.minimum(s, t_m / u) + softplus(-m) + 1, 3.0)
            per_g = residual_g + 2 * sig * (rho + 1) + np.abs(tanh)
        value = _row_error(per_v, v, reduction, sample_axis)
        d_r = _slope_error(per_g, tanh, reduction, sample_axis)
    return {"value": value, "input": d_r, "target": d_r}


def mean_squared_logarithmic_error_error(
    input,
    target,
    *,
    reduction="mean",
    sample_axis=None,
    value_floor=None,
    floor_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`mean_squared_logarithmic_error` with ``log_plus_one``: Keras'
    log(max(v, eps) + 1.0), the logs' difference, its square and the mean over the last axis
    in the compute dtype (the floor max(v, eps) is exact).

    - l_v = log(fl(f + 1)), f the floored value: the add's relative u becomes u absolute
      through the log, the log's rounding u |l_v|: err(l_v) = u (1 + |l_v|);
    - d = l_x - l_y: err(d) = u (2 + |l_x| + |l_y| + |d|);
    - d^2: |(d + E)^2 - d^2| <= 2 |d| E + E^2, E = err(d), plus the square's rounding u d^2,
      per element (E^2, second order, is kept: where the logs cancel, d is smaller than E
      and E^2 is the larger term), then the row's mean (:func:`_row_error`).

    Slope in x (reverse mode, JAX's jvp rules): 2 d g (g the cotangent: its rounding and the
    product's, 2 u |d|, plus err(d)), divided by fl(f + 1) (the division's u and the sum's u:
    2 u |d| more): u |g| 2 (err(d) + 4 |d|) / (1 + f), times the floor's slope (1 above eps,
    0 below, 1/2 at a tie under ``floor_tie="half"``); likewise in y. Where x and y nearly
    agree, d is a few u of O(1) logs that cancel, which the bound states: the slope is then
    a few u / (1 + f) absolute.
    """
    x, y = np.asarray(input, np.float64), np.asarray(target, np.float64)
    eps = None if value_floor is None else _floor(value_floor, dtype)
    fx, lx = _log1p_floored(x, value_floor, dtype, NO_TRACE, "input")
    fy, ly = _log1p_floored(y, value_floor, dtype, NO_TRACE, "target")
    u = unit_roundoff(dtype)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        d = lx - ly
        err_d = 2 + np.abs(lx) + np.abs(ly) + np.abs(d)
        per = 2 * np.abs(d) * err_d + u * np.square(err_d) + np.square(d)
        value = _row_error(per, np.square(d), reduction, sample_axis)
        g = np.abs(reduce_grad(np.shape(d), reduction=reduction, sample_axis=sample_axis))
        out = {}
        for name, v, f in (("input", x, fx), ("target", y, fy)):
            per = times(g, 2 * (err_d + 4 * np.abs(d)) / (1 + f))
            out[name] = per if eps is None else np.abs(_floor_grad(v, eps, per, floor_tie))
    return {"value": value, **out}


#: "residual_square": (input - target)^2 with the residual rounded to the compute dtype first,
#: then its square (and a weight's product) rounded: optax's squared_error / l2_loss, Keras'
#: mean_squared_error (square(y_true - y_pred), then the mean over the last axis), PyTorch's
#: mse_loss (ATen's mse kernel diff * diff; the weighted form pow(input - target, 2) * weight).
SQUARED_ERROR_STAGES = ("residual_square",)


def squared_error_error(
    input,
    target,
    *,
    weight=None,
    reduction="mean",
    sample_axis=None,
    mean_by="elements",
    half_square=False,
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`squared_error` with ``residual_square``, per element:

    - r = x - y rounded (relative u), squared: 2 u r^2, the square's rounding u r^2, a weight's
      product u |w r^2|: 3 u |w| r^2 + u |w r^2| (half_square halves exactly);
    - then the mean over the last axis (:func:`_row_error`) or the reduction (a weighted
      mean's denominator sum and division included,
      :func:`~lossparity.reference.rounding.reduction_error`).

    Slope 2 r (r with half_square) times w and the cotangent g: r's rounding, the products
    with g and w, the cotangent's own rounding: 4 u |slope| + u |slope| (g = 1/n rounded).
    """
    r = _residual(input, target, NO_TRACE)
    w = np.ones(np.shape(r)) if weight is None else np.broadcast_to(np.asarray(weight, np.float64), np.shape(r))
    c = 0.5 if half_square else 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        loss = times(w, c * np.square(r))
        per = 4 * np.abs(loss)
        if sample_axis == "mean":
            value = _row_error(per, loss, reduction, sample_axis)
        else:
            g = reduce_grad(
                np.shape(r), reduction=reduction, mean_by=mean_by, denom_weight=None if weight is None else w
            )
            value = reduction_error(per, loss, g, reduction)
        slope = 2 * c * r
        out = _pulled(slope, -slope, weight, reduction, sample_axis, mean_by)
    return {"value": value, "input": 5 * np.abs(out["input"]), "target": 5 * np.abs(out["target"])}


#: "percentage_quotient": Keras' abs((y_true - y_pred) / maximum(abs(y_true), eps)), its mean
#: over the last axis and the product with 100 in the input dtype (keras/src/losses/losses.py,
#: mean_absolute_percentage_error, at v3.15.1).
MAPE_STAGES = ("percentage_quotient",)


def mean_absolute_percentage_error_error(
    input,
    target,
    *,
    reduction="mean",
    sample_axis=None,
    denominator_eps=None,
    floor_tie="pass",
    abs_zero_slope=0.0,
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`mean_absolute_percentage_error` with ``percentage_quotient``:
    q = |r| / m, m = max(|y|, eps), costs the residual's rounding and the division's, 2 u q
    per element (the floor is exact); the mean over the last axis what :func:`_row_error`
    says; the product with 100 one rounding of the result.

    Slopes (reverse mode): the cotangent 100 g (the product with 100 and the mean's 1/n: 2
    roundings) reaches r through the division, a = 100 g sign(r) / m (3 u |a|), and m
    through -ct r / m^2 = b (r's rounding, m^2, its reciprocal and two products: 7 u |b|,
    passed by the floor only where |y| >= eps, halved at a tie under ``floor_tie="half"``):
    d/dx = -a, d/dy = a + sign(y) b, their sum one rounding. Near x = 0 both terms are
    about 100 / |y| and cancel, so the bound is a few u of 100 / |y| absolute.
    """
    r = _residual(input, target, NO_TRACE)
    y = np.asarray(target, np.float64)
    den = np.abs(y) if denominator_eps is None else np.maximum(np.abs(y), _floor(denominator_eps, dtype))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        q = np.abs(r) / den
        if sample_axis == "mean":
            n = q.shape[-1]
            mean = np.mean(q, axis=-1)
            per = 100 * (np.mean(2 * q, axis=-1) + (n - 1) * mean + mean) + 100 * mean
            loss = 100 * mean
        else:
            per, loss = 3 * 100 * q, 100 * q
        value = reduction_error(per, loss, reduce_grad(np.shape(loss), reduction=reduction), reduction)
        g = np.abs(reduce_grad(np.shape(r), reduction=reduction, sample_axis=sample_axis))
        a = 100 * g / den
        b = 100 * g * np.abs(r) / np.square(den)
        if denominator_eps is not None:
            b = np.abs(_floor_grad(np.abs(y), _floor(denominator_eps, dtype), b, floor_tie))
        d_x = 3 * a
        d_y = 3 * a + 7 * b + np.abs(a) + b
    return {"value": value, "input": d_x, "target": d_y}


# ----------------------------------------------------------------------------- mean pairwise squared error
# tf.compat.v1.losses.mean_pairwise_squared_error (tensorflow/python/ops/losses/losses_impl.py), as its
# docstring defines it: within each sample of a batch ``[batch_size, d0, ... dN]`` (never across samples),
# the mean over the n (n - 1) / 2 pairs {i, j} of its elements of ((y_i - y_j) - (x_i - x_j))^2, then the
# samples' losses, each times its weights, summed: one scalar. With the residuals r = x - y of a sample,
# sum_{i<j} (r_i - r_j)^2 = n S - T^2 (S = sum r^2, T = sum r), so the sample's mean is
# 2 S / (n - 1) - 2 T^2 / (n (n - 1)), each quotient div_no_nan (0 for a sample of n <= 1 present elements).
# ``weights`` (None: the default 1.0) are those of ``_num_present``'s docstring: a scalar, or of the input's
# rank with each extent 1 or the input's (``assert_broadcastable``; the documented ``[batch_size]`` shape of
# a batch of rank 2 or more is refused with ValueError: ``reduction.tf_v1_weights``); n is the number of
# non-zero weights in the sample once broadcast to it (S and T still sum every residual), and each sample's
# mean is multiplied by its weights (a scalar: the weight; per sample: its weight; per element: the sum of
# its weights, ``(term1 - term2) * weights`` summed); the loss is 0 where no element is present at all.


def _pairwise_parts(input, target, sample_weight):
    """r (N, m) (the samples' residuals, flattened), n (N,) the present counts, the samples' weights
    ``weights`` broadcast against one (N, 1, ..., 1) loss per sample, and the loss of each sample."""
    x, y = np.asarray(input, np.float64), np.asarray(target, np.float64)
    if x.ndim < 1:
        raise ValueError("mean_pairwise_squared_error takes a batch [batch_size, d0, ... dN]")
    w = tf_v1_weights(x.shape, sample_weight)  # OracleError("ValueError") where TensorFlow refuses them
    given = np.asarray(1.0 if sample_weight is None else sample_weight, np.float64)
    flat = (len(x), int(np.prod(x.shape[1:], dtype=np.int64)))  # explicit: an empty batch has no -1 to infer
    with np.errstate(invalid="ignore", over="ignore"):
        r = (x - y).reshape(flat)
    n = np.count_nonzero(w.reshape(flat), axis=1).astype(np.float64)
    per_loss = (len(x),) + (1,) * (x.ndim - 1)
    # (term1 - term2) (N, 1, ..., 1) times the weights as given: each sample's multiplier is the sum of its
    # weights over the product's extents (the given weights' own, not the input's)
    scale = _sum_to_samples(np.broadcast_to(given, np.broadcast_shapes(per_loss, given.shape)), len(x))
    return r, n, scale


def _sum_to_samples(a: np.ndarray, batch: int) -> np.ndarray:
    """``a`` (a broadcast product with a leading batch axis of ``batch`` or 1, or 0-d) summed per sample, (batch,)."""
    a = np.asarray(a, np.float64)
    if a.ndim == 0:
        return np.full(batch, float(a))
    return np.broadcast_to(a.reshape(a.shape[0], int(np.prod(a.shape[1:], dtype=np.int64))).sum(axis=1), (batch,))


def _safe(num, den):
    """div_no_nan: num / den, 0 where den is 0."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(den == 0, 0.0, num / np.where(den == 0, 1.0, den))


def mean_pairwise_squared_error(input, target, *, sample_weight=None, dtype=np.float32, trace=NO_TRACE):
    """The mean over each sample's element pairs of the squared difference of their residuals, times the
    sample's weights, summed over the batch (``input``, ``target``: ``(N, d0, ...)``; see above); a 0-d
    float64 scalar."""
    shape = np.shape(input)
    trace(
        "input",
        np.asarray(input, np.float64),
        f"reads {shape} as a batch of {shape[0] if shape else 0} samples of predictions, each compared with its "
        "target as the pairs of its own elements (never across samples); one scalar for the batch",
    )
    r, n, scale = _pairwise_parts(input, target, sample_weight)
    with np.errstate(invalid="ignore", over="ignore"):
        s, t = np.sum(r * r, axis=1), np.sum(r, axis=1)
        per = 2.0 * _safe(s, np.maximum(n - 1, 0)) - 2.0 * _safe(t * t, np.maximum(n * (n - 1), 0))
        trace("per-sample loss", per, "2 S / (n - 1) - 2 T^2 / (n (n - 1)), S = sum r^2, T = sum r, n present")
        total = np.sum(per * scale)
    return np.asarray(total if np.sum(n) > 0 else 0.0, np.float64)


def mean_pairwise_squared_error_grad(input, target, *, sample_weight=None, dtype=np.float32, trace=NO_TRACE):
    """d loss / d input = the sample's multiplier times 4 r_k / (n - 1) - 4 T / (n (n - 1)) (each term 0 where
    its div_no_nan divisor is 0); d / d target its negative; d / d ``sample_weight``: each sample's mean
    summed back to the weights' shape (the count n is piecewise constant in them: TensorFlow's where)."""
    x = np.asarray(input, np.float64)
    r, n, scale = _pairwise_parts(input, target, sample_weight)
    present = np.sum(n) > 0
    with np.errstate(invalid="ignore", over="ignore"):
        s, t = np.sum(r * r, axis=1), np.sum(r, axis=1)
        d1, d2 = np.maximum(n - 1, 0), np.maximum(n * (n - 1), 0)
        per = 2.0 * _safe(s, d1) - 2.0 * _safe(t * t, d2)
        dr = scale[:, None] * (_safe(4.0 * r, d1[:, None]) - _safe(4.0 * t, d2)[:, None])
    dr = (dr if present else np.zeros_like(r)).reshape(x.shape)
    out = {"input": dr, "target": -dr}
    if sample_weight is not None:
        w = np.asarray(sample_weight, np.float64)
        per_loss = per.reshape((len(x),) + (1,) * (x.ndim - 1))
        g = np.broadcast_to(
            per_loss if present else np.zeros_like(per_loss), np.broadcast_shapes(per_loss.shape, w.shape)
        )
        out["sample_weight"] = _sum_to(g, w.shape).reshape(w.shape) if w.ndim else np.asarray(np.sum(g))
    return out


#: The stage :func:`mean_pairwise_squared_error_error` models: the residuals, their sums S and T, the two
#: quotients and their difference, the weights' products and the batch sum, all in the compute dtype.
PAIRWISE_STAGES = ("pairwise_sums",)


def mean_pairwise_squared_error_error(
    input, target, *, sample_weight=None, dtype=np.float32, trace=NO_TRACE, stages=PAIRWISE_STAGES
):
    """Rounding model of :func:`mean_pairwise_squared_error`, computed in ``dtype`` (float32: the inputs are
    cast to it, which rounds a float64 input), in units of u, per sample of m elements:

    - r_k = x_k - y_k: the casts and the difference, u (|x_k| + |y_k| + |r_k|) (= e_k);
    - S = sum r^2: 2 |r_k| e_k + r_k^2 per square, (m - 1) S for the sum; T = sum r: sum e_k + (m - 1) sum |r|;
    - term1 = 2 S / (n - 1): (e_S + S) 2 / (n - 1); term2 = 2 T^2 / (n (n - 1)): (2 |T| e_T + 2 T^2) 2 / (n (n - 1));
      their difference d: + |d| (the cancellation of term1 and term2 is what this bounds);
    - d times each of the sample's K weights and the batch sum of those products: |d| |scale| (1 + (K_all - 1)),
      with scale the sum of |weights|.

    The slope scale (4 r_k / (n - 1) - 4 T / (n (n - 1))) likewise: 4 (e_k + 2 |r_k|) / (n - 1) and
    4 (e_T + 2 |T|) / (n (n - 1)), its difference's rounding, and the weights' sum into it (K - 1)."""
    x, y = np.asarray(input, np.float64), np.asarray(target, np.float64)
    r, n, _ = _pairwise_parts(input, target, sample_weight)
    given = np.abs(np.asarray(1.0 if sample_weight is None else sample_weight, np.float64))
    per_loss = (len(x),) + (1,) * (x.ndim - 1)
    product = np.broadcast_shapes(per_loss, given.shape)
    scale = _sum_to_samples(np.broadcast_to(given, product), len(x))
    k_all = int(np.prod(product))  # the weighted products the batch sum adds
    k = max(k_all // max(len(x), 1), 1)  # those of one sample (the weights summed into its slope)
    m = r.shape[1]
    with np.errstate(invalid="ignore", over="ignore"):
        e = (np.abs(x) + np.abs(y)).reshape(r.shape) + np.abs(r)
        s, t, abs_sum = np.sum(r * r, axis=1), np.sum(r, axis=1), np.sum(np.abs(r), axis=1)
        e_s = np.sum(2 * np.abs(r) * e + r * r, axis=1) + (m - 1) * s
        e_t = np.sum(e, axis=1) + (m - 1) * abs_sum
        d1, d2 = np.maximum(n - 1, 0), np.maximum(n * (n - 1), 0)
        t1, t2 = 2.0 * _safe(s, d1), 2.0 * _safe(t * t, d2)
        e_d = 2.0 * _safe(e_s + s, d1) + 2.0 * _safe(2 * np.abs(t) * e_t + 2 * t * t, d2) + np.abs(t1 - t2)
        value = np.sum(scale * (e_d + np.abs(t1 - t2) * k_all))
        g1, g2 = _safe(4.0 * np.abs(r), d1[:, None]), _safe(4.0 * np.abs(t), d2)[:, None]
        slope = scale[:, None] * (
            _safe(4.0 * (e + 2 * np.abs(r)), d1[:, None])
            + _safe(4.0 * (e_t + 2 * np.abs(t)), d2)[:, None]
            + np.abs(g1 - g2) * k
        )
    slope = slope.reshape(x.shape) if np.sum(n) > 0 else np.zeros(x.shape)
    return {"value": np.asarray(value), "input": slope, "target": slope}
