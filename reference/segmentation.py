"""Overlap losses of segmentation (Dice, Tversky, optax's generalized Dice) and the ranking softmax loss.

Overlap losses compare a predicted mask ``p`` with a target mask ``t`` through three sums over
the *overlap axes*: the intersection ``I = sum p t``, the predicted mass ``P = sum p`` and the
target mass ``T = sum t``; false positives are ``P - I = sum p (1 - t)`` and false negatives
``T - I = sum t (1 - p)``. Every overlap oracle here is one Tversky index

    loss = 1 - (I + n0) / (I + alpha (P - I) + beta (T - I) + d0)

with Dice its alpha = beta = 1/2 case: ``1 - (2 I + s) / (P + T + s)`` is the Tversky form
with ``n0 = d0 = s / 2``. So ``dice`` and ``tversky`` share :func:`_tversky_loss`, and a Dice
binding and a Tversky binding at alpha = beta = 1/2 disagree only by their smoothing.

Each oracle ``f`` has a gradient ``f_grad`` with the same arguments, returning ``{"input": ...}``
(d sum(out) / d input, float64, in the input's shape); targets are masks, not differentiated.
"""

from __future__ import annotations

import numpy as np

from lossparity.reference._math import _log_softmax_parts, times
from lossparity.reference.errors import OracleError
from lossparity.reference.reduction import chain, reduce, reduce_grad
from lossparity.reference.rounding import reduction_error
from lossparity.reference.trace import NO_TRACE, reading

# ----------------------------------------------------------------------------- shared stages


def _sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exp is only taken of -|x|."""
    x = np.asarray(x, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _probabilities(x, from_logits, prob_check, dtype, trace):
    """The predicted probabilities: ``x`` itself, or (``from_logits``, optax's ``apply_softmax``)
    a sigmoid of each element when the class axis has one entry and a softmax over the class
    axis otherwise. ``prob_check="ValueError"``: probabilities that do not sum to 1 over the
    class axis (``allclose``, rtol 1e-5, atol 1e-8) raise, as optax checks them."""
    x = np.asarray(x, np.float64)
    if from_logits:
        if x.ndim == 0:
            raise OracleError("IndexError", "a 0-d input has no class axis to choose an activation on")
        if x.shape[-1] == 1:
            return trace("activation", _sigmoid(x), "sigmoid of each logit (a class axis of one)")
        return trace("activation", _log_softmax_parts(x)[1], "softmax over the class axis")
    if prob_check is not None:
        # the framework's sum is rounded to the input dtype before allclose compares it with 1
        sums = np.sum(x, axis=-1).astype(dtype).astype(np.float64)
        if not np.all(np.abs(sums - 1.0) <= 1e-8 + 1e-5):
            raise OracleError(prob_check, "predictions must be probability distributions over the class axis")
    return x


def _activation_grad(x, p, from_logits, d_p):
    """Pull d/dp back to the input through the activation of :func:`_probabilities`."""
    if not from_logits:
        return d_p
    if np.shape(x)[-1] == 1:
        return d_p * p * (1.0 - p)
    return p * (d_p - np.sum(d_p * p, axis=-1, keepdims=True))


def _axes(ndim, axis, overlap_axes):
    """The overlap axes as a sorted tuple of non-negative ints: ``axis`` as given, or by
    ``overlap_axes`` every axis ("all", Keras' ``axis=None``) or every axis but the first and
    the last ("inner", optax's default: the spatial axes between batch and class)."""
    if axis is None:
        return tuple(range(ndim)) if overlap_axes == "all" else tuple(range(1, ndim - 1))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(sorted(int(a) % ndim for a in axes))


def _core(p, t, alpha, beta, n0, d0, axes, extra=None):
    """(loss, numerator, denominator) of the Tversky index over ``axes``.

    The loss is written (alpha FP + beta FN + d0 - n0) / denominator, not 1 - ratio: near a
    perfect overlap the ratio is within an ULP of 1 and the subtraction would lose every digit
    of Keras' eps / (P + T + eps)."""
    inter = np.sum(p * t, axis=axes)
    fp = np.sum(p * (1.0 - t), axis=axes)
    fn = np.sum(t * (1.0 - p), axis=axes)
    num = inter + n0
    den = inter + alpha * fp + beta * fn + d0
    with np.errstate(divide="ignore", invalid="ignore"):
        return (alpha * fp + beta * fn + (d0 - n0 if extra is None else extra)) / den, num, den


def _core_grad(p, t, alpha, beta, num, den, axes, g):
    """d sum(g * loss) / dp for the loss of :func:`_core` (g of the reduced shape)."""
    expand = lambda a: np.expand_dims(a, axes)  # noqa: E731 - back to p's shape
    num, den, g = expand(num), expand(den), expand(g)
    # d num / dp = t, d den / dp = t + alpha (1 - t) - beta t
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = -(t * den - num * (t + alpha * (1.0 - t) - beta * t)) / (den * den)
    return times(g, slope)


def _unbroadcast(g, shape):
    """Sum ``g`` down to ``shape``, the shape it was broadcast from (the adjoint of broadcasting)."""
    g = np.asarray(g, np.float64)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, n in enumerate(shape):
        if n == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


def _eps(dice_eps, dtype):
    """Keras' epsilon as the framework adds it: the Python float rounded to the tensor's dtype."""
    return 0.0 if dice_eps is None else float(np.asarray(dice_eps, dtype=dtype).astype(np.float64))


def _binary(x, t, binary_channel):
    """optax ``binary_dice_loss``: a class axis of one is appended unless the last axis already is one."""
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    if binary_channel and (x.ndim == 0 or x.shape[-1] != 1):
        return x[..., None], t[..., None], True
    return x, t, False


def _tversky_loss(
    x,
    t,
    *,
    alpha,
    beta,
    n0,
    d0,
    extra,
    axis,
    weight,
    ignore_background,
    class_reduction,
    reduction,
    from_logits,
    prob_check,
    overlap_axes,
    binary_channel,
    dtype,
    trace,
    grad=False,
):
    """Shared pipeline: activation, overlap sums, Tversky index, class weights, background,
    class reduction (the last remaining axis: ``sample_axis`` of the shared reduction), reduction."""
    x, t, _ = _binary(x, t, binary_channel)
    trace("input", x, reading(x, "logits" if from_logits else "probabilities", classes=True))
    p = _probabilities(x, from_logits, prob_check, dtype, trace)
    axes = _axes(p.ndim, axis, overlap_axes)
    loss, num, den = _core(p, t, alpha, beta, n0, d0, axes, extra)
    trace("overlap", np.stack(np.broadcast_arrays(num, den)), f"numerator and denominator over axes {axes}")
    loss = trace("per-mask loss", loss, f"1 - (I + {n0:g}) / (I + {alpha:g} FP + {beta:g} FN + {d0:g})")
    w = np.ones(()) if weight is None else np.asarray(weight, np.float64)
    weighted = loss * w  # optax broadcasts the (C,) weights against the remaining axes
    if weight is not None:
        weighted = trace("class weights", weighted, "each class's loss times its weight")
    # optax drops entry 0 of the last remaining axis (class 0) when the input has more than one class
    keep = slice(1, None) if ignore_background and p.shape[-1] > 1 and weighted.ndim else slice(None)
    kept = weighted[..., keep] if weighted.ndim else weighted
    if keep.start:
        kept = trace("ignore background", kept, "class 0 dropped")
    # a mask summed over every axis has no class axis left to reduce: the class reduction is the identity
    sample_axis = None if class_reduction == "none" or kept.ndim == 0 else class_reduction
    out = reduce(kept, reduction=reduction, sample_axis=sample_axis, trace=trace)
    if not grad:
        return out
    g = reduce_grad(kept.shape, reduction=reduction, sample_axis=sample_axis)
    g_w = np.zeros(weighted.shape)
    if weighted.ndim:
        g_w[..., keep] = g
    else:
        g_w = g
    d_p = _core_grad(
        p, t, alpha, beta, num, den, axes, _unbroadcast(times(g_w, np.broadcast_to(w, g_w.shape)), np.shape(loss))
    )
    return _activation_grad(x, p, from_logits, d_p)


def _unbinary(d, x, binary_channel):
    return d[..., 0] if _binary(x, x, binary_channel)[2] else d


# ----------------------------------------------------------------------------- Dice


def dice(
    input,
    target,
    *,
    smooth=0.0,
    axis=None,
    weight=None,
    ignore_background=False,
    class_reduction="none",
    from_logits=False,
    reduction="none",
    dice_eps=None,
    smooth_form="dice",
    overlap_axes="all",
    prob_check=None,
    binary_channel=False,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Soft Dice loss ``1 - (2 sum p t + s) / (sum p + sum t + s)`` over the overlap axes.

    ``input`` (..., C) probabilities (or logits with ``from_logits``: sigmoid for C = 1, else
    softmax over C), ``target`` the same shape (masks in [0, 1]). The sums run over ``axis``
    (or, for None, the ``overlap_axes`` convention); what remains is one loss per mask, then
    times ``weight[c]`` (C,), class 0 dropped with ``ignore_background`` (C > 1), the class
    axis reduced by ``class_reduction`` (none/mean/sum), then ``reduction``.

    Conventions: ``dice_eps`` is added to the denominator only (Keras: 1 - 2I/(P+T+eps), 0/0
    of two empty masks is then a loss of 1); ``smooth_form="tversky"`` adds ``smooth`` to I and
    to the Tversky denominator (I + (P-I)/2 + (T-I)/2), which is Dice-form smoothing of
    ``2 smooth`` (optax); ``binary_channel`` appends a class axis of one unless there is one.
    """
    n0 = smooth / 2.0 if smooth_form == "dice" else float(smooth)
    return _tversky_loss(
        input,
        target,
        alpha=0.5,
        beta=0.5,
        n0=n0,
        d0=n0 + _eps(dice_eps, dtype) / 2.0,
        extra=_eps(dice_eps, dtype) / 2.0,
        axis=axis,
        weight=weight,
        ignore_background=ignore_background,
        class_reduction=class_reduction,
        reduction=reduction,
        from_logits=from_logits,
        prob_check=prob_check,
        overlap_axes=overlap_axes,
        binary_channel=binary_channel,
        dtype=dtype,
        trace=trace,
    )


def dice_grad(
    input,
    target,
    *,
    smooth=0.0,
    axis=None,
    weight=None,
    ignore_background=False,
    class_reduction="none",
    from_logits=False,
    reduction="none",
    dice_eps=None,
    smooth_form="dice",
    overlap_axes="all",
    prob_check=None,
    binary_channel=False,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradient of :func:`dice` in the input: per mask -2 t / D + N / D^2 (N = 2I + s, D = P + T + s),
    through the sigmoid/softmax. Empty masks with no smoothing (D = 0) give NaN/inf, as 0/0 does."""
    n0 = smooth / 2.0 if smooth_form == "dice" else float(smooth)
    d = _tversky_loss(
        input,
        target,
        alpha=0.5,
        beta=0.5,
        n0=n0,
        d0=n0 + _eps(dice_eps, dtype) / 2.0,
        extra=_eps(dice_eps, dtype) / 2.0,
        axis=axis,
        weight=weight,
        ignore_background=ignore_background,
        class_reduction=class_reduction,
        reduction=reduction,
        from_logits=from_logits,
        prob_check=prob_check,
        overlap_axes=overlap_axes,
        binary_channel=binary_channel,
        dtype=dtype,
        trace=NO_TRACE,
        grad=True,
    )
    return {"input": _unbinary(d, np.asarray(input), binary_channel)}


# ----------------------------------------------------------------------------- Tversky


def tversky(
    input,
    target,
    *,
    alpha=0.5,
    beta=0.5,
    smooth=0.0,
    axis=None,
    weight=None,
    ignore_background=False,
    class_reduction="none",
    from_logits=False,
    reduction="none",
    dice_eps=None,
    overlap_axes="all",
    prob_check=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Tversky loss ``1 - (I + s) / (I + alpha FP + beta FN + s)`` (Salehi et al. 2017), alpha on
    the false positives ``sum p (1 - t)``, beta on the false negatives ``sum t (1 - p)``.

    Shapes, ``axis``, ``weight``, ``ignore_background``, ``class_reduction``, ``from_logits`` and
    the conventions as in :func:`dice`; ``dice_eps`` is added to the Tversky denominator.
    alpha = beta = 1/2 is Dice with Dice-form smoothing ``2 s``; alpha = beta = 1 is Jaccard.
    """
    return _tversky_loss(
        input,
        target,
        alpha=alpha,
        beta=beta,
        n0=float(smooth),
        d0=float(smooth) + _eps(dice_eps, dtype),
        extra=_eps(dice_eps, dtype),
        axis=axis,
        weight=weight,
        ignore_background=ignore_background,
        class_reduction=class_reduction,
        reduction=reduction,
        from_logits=from_logits,
        prob_check=prob_check,
        overlap_axes=overlap_axes,
        binary_channel=False,
        dtype=dtype,
        trace=trace,
    )


def tversky_grad(
    input,
    target,
    *,
    alpha=0.5,
    beta=0.5,
    smooth=0.0,
    axis=None,
    weight=None,
    ignore_background=False,
    class_reduction="none",
    from_logits=False,
    reduction="none",
    dice_eps=None,
    overlap_axes="all",
    prob_check=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradient of :func:`tversky` in the input: per mask -(t D - N (t + alpha (1 - t) - beta t)) / D^2."""
    d = _tversky_loss(
        input,
        target,
        alpha=alpha,
        beta=beta,
        n0=float(smooth),
        d0=float(smooth) + _eps(dice_eps, dtype),
        extra=_eps(dice_eps, dtype),
        axis=axis,
        weight=weight,
        ignore_background=ignore_background,
        class_reduction=class_reduction,
        reduction=reduction,
        from_logits=from_logits,
        prob_check=prob_check,
        overlap_axes=overlap_axes,
        binary_channel=False,
        dtype=dtype,
        trace=NO_TRACE,
        grad=True,
    )
    return {"input": d}


# ----------------------------------------------------------------------------- generalized Dice


def _frequency_weights(t, weight_eps, dtype, trace):
    """optax's automatic class weights: 1 / (F_c^2 + eps) for the target mass F_c of each class
    over every axis but the last, normalized to sum to the number of classes."""
    t = np.asarray(t, np.float64)
    freq = np.sum(t, axis=tuple(range(t.ndim - 1)))
    eps = _eps(weight_eps, dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = 1.0 / (freq * freq + eps)
        w = w / np.sum(w) * w.size
    return trace("class weights", w, f"1 / (F_c^2 + {eps:g}), normalized to sum to {w.size}")


def generalized_dice(
    input,
    target,
    *,
    smooth=0.0,
    from_logits=False,
    ignore_background=False,
    reduction="mean",
    weight_eps=None,
    smooth_form="dice",
    overlap_axes="all",
    prob_check=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Mean over every mask and class of ``w_c * dice_c`` (optax's "multiclass generalized Dice").

    ``input`` (..., C) probabilities or logits (``from_logits``), ``target`` the same shape;
    ``w_c`` are the inverse squared target masses of :func:`_frequency_weights` (plain: no
    epsilon, so a class absent from the target has an infinite weight; ``weight_eps`` adds one).
    Unlike Sudre et al.'s ratio of weighted sums, optax weights the per-class Dice *losses*.
    """
    w = _frequency_weights(target, weight_eps, dtype, trace)
    return dice(
        input,
        target,
        smooth=smooth,
        weight=w,
        ignore_background=ignore_background,
        from_logits=from_logits,
        reduction=reduction,
        smooth_form=smooth_form,
        overlap_axes=overlap_axes,
        prob_check=prob_check,
        dtype=dtype,
        trace=trace,
    )


def generalized_dice_grad(
    input,
    target,
    *,
    smooth=0.0,
    from_logits=False,
    ignore_background=False,
    reduction="mean",
    weight_eps=None,
    smooth_form="dice",
    overlap_axes="all",
    prob_check=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradient of :func:`generalized_dice` in the input (the weights depend on the target only)."""
    w = _frequency_weights(target, weight_eps, dtype, NO_TRACE)
    return dice_grad(
        input,
        target,
        smooth=smooth,
        weight=w,
        ignore_background=ignore_background,
        from_logits=from_logits,
        reduction=reduction,
        smooth_form=smooth_form,
        overlap_axes=overlap_axes,
        prob_check=prob_check,
        dtype=dtype,
    )


# ----------------------------------------------------------------------------- ranking


def _ranking_parts(x, t, where, weight):
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    valid = np.ones(x.shape, bool) if where is None else np.broadcast_to(np.asarray(where) != 0, x.shape)
    y = np.where(valid, t, 0.0)
    if weight is not None:
        y = y * np.asarray(weight, np.float64)
    s = np.where(valid, x, -np.inf)
    return x, valid, y, s


def ranking_softmax(
    input,
    target,
    *,
    where=None,
    weight=None,
    reduction="mean",
    zero_division="nan",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Listwise softmax loss ``-sum_i y_i w_i log softmax(s)_i`` over the valid items of each list.

    ``input`` (..., L) scores, ``target`` (..., L) relevance labels (not normalized: graded
    labels weigh their items), ``where`` (..., L) bool: invalid items leave both the softmax
    and the sum; ``weight`` (..., L) multiplies the labels. One loss per list, then
    ``reduction`` over the lists that have a valid item (a list with none contributes 0; a
    mean over no list is 0 with ``zero_division="zero"``, optax's ``_safe_reduce``).
    """
    x, valid, y, s = _ranking_parts(input, target, where, weight)
    trace("input", x, reading(x, "scores", classes=True))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        rows = np.any(valid, axis=-1)
        safe = np.where(rows[..., None], s, 0.0)  # a list with no valid item has no softmax
        logp = trace(
            "log-softmax",
            np.where(valid, _log_softmax_parts(safe)[0] if safe.shape[-1] else safe, 0.0),
            "over the valid items",
        )
        loss = -np.sum(np.where(valid, y * logp, 0.0), axis=-1)
    loss = trace("per-list loss", loss, "-sum_i y_i log p_i over valid items")
    return reduce(loss, reduction=reduction, mask=rows, zero_division=zero_division, trace=trace)


def ranking_softmax_grad(
    input,
    target,
    *,
    where=None,
    weight=None,
    reduction="mean",
    zero_division="nan",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradient of :func:`ranking_softmax` in the scores: ``(sum_j y_j) p_i - y_i`` on valid
    items, 0 on invalid ones and in lists with no valid item."""
    x, valid, y, s = _ranking_parts(input, target, where, weight)
    rows = np.any(valid, axis=-1)
    safe = np.where(rows[..., None], s, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        p = _log_softmax_parts(safe)[1] if safe.shape[-1] else safe
        y_valid = np.where(valid, y, 0.0)
        d = np.where(valid, np.sum(y_valid, axis=-1, keepdims=True) * p - y_valid, 0.0)
    g = reduce_grad(rows.shape, reduction=reduction, mask=rows, zero_division=zero_division)
    return {"input": chain(g, d)}


# ----------------------------------------------------------------------------- rounding models
# ``Spec.error_model`` of Keras' dice and tversky: the first-order bound, in units of the compute
# dtype's unit roundoff u, of computing the loss in that dtype (``reference/rounding.py`` states
# the model), value and slope.

#: "overlap_sums": Keras' products, sums over the axes, the index's quotient and 1 - index in
#: the input dtype (keras/src/losses/losses.py, dice and tversky, at v3.15.1: no upcast).
OVERLAP_STAGES = ("overlap_sums",)


def _overlap_error(input, target, alpha, beta, eps, dice_form, axis, overlap_axes, reduction, rest):
    """The error of Keras' 1 - index (units of u), reduced, with n the elements per mask:

    - I = sum t p: the products' u sum |t p| and the sum's (n - 1): err(I) = n sum |t p|;
    - dice: D = sum t + sum p + eps: the sums' (n - 1) (sum |t| + sum |p|) and two adds, 2 |D|;
      the index 2I / D;
    - tversky: FP' = sum (1 - p) t and FN' = sum p (1 - t) (Keras' names; 1 - v and the
      product: (n + 1) sum |terms| each), D = I + alpha FP' + beta FN' + eps: err(I) + the
      coefficients' products, k err + k |FP'| (k = max(|alpha|, |beta|)), and three adds,
      3 (|I| + k |FP'| + k |FN'| + eps); the index I / D;
    - the quotient q = c I / D (c = 2 or 1): (c err(I) + |q| err(D)) / |D| + |q| (the
      division); 1 - q: |loss|.

    Near a perfect overlap q is within a few u of 1 and the loss is a few u absolute.

    Slope in p_k (reverse mode, g the reduction's cotangent): the numerator's path c t_k / D
    (the division and the product with t: relative rho_D + 2, rho_D = err(D) / |D|) and the
    denominator's c I / D^2 times dD/dp_k (1 for dice; t_k (1 - alpha) + beta (1 - t_k) for
    tversky, one rounding per coefficient): (c err(I) + c |I| (2 rho_D + 4)) / D^2 (I's error,
    D^2's, the products), then the terms' sum (2 or 3 roundings of their magnitudes) and g's
    own rounding. Where p_k's two paths nearly cancel (a mask almost covered) the slope is a
    few u of c / D absolute.
    """
    if any(v not in (None, False, "none") for v in rest):
        raise ValueError("the Keras overlap model takes no weight, background or class reduction")
    p, t = np.asarray(input, np.float64), np.asarray(target, np.float64)
    axes = _axes(p.ndim, axis, overlap_axes)
    n = int(np.prod([p.shape[a] for a in axes])) if axes else 1
    with np.errstate(divide="ignore", invalid="ignore"):
        inter = np.sum(t * p, axis=axes)
        err_i = n * np.sum(np.abs(t * p), axis=axes)
        if dice_form:
            den = np.sum(t, axis=axes) + np.sum(p, axis=axes) + eps
            err_d = (n - 1) * (np.sum(np.abs(t), axis=axes) + np.sum(np.abs(p), axis=axes)) + 2 * np.abs(den)
            c = 2.0
        else:
            k = max(abs(alpha), abs(beta))
            fp, fn = np.sum(np.abs((1 - p) * t), axis=axes), np.sum(np.abs(p * (1 - t)), axis=axes)
            den = inter + alpha * np.sum((1 - p) * t, axis=axes) + beta * np.sum(p * (1 - t), axis=axes) + eps
            err_d = err_i + k * (n + 1) * (fp + fn) + k * (fp + fn) + 3 * (np.abs(inter) + k * (fp + fn) + abs(eps))
            c = 1.0
        q = c * inter / den
        loss = 1.0 - q
        per = (c * err_i + np.abs(q) * err_d) / np.abs(den) + np.abs(q) + np.abs(loss)
        value = reduction_error(per, loss, reduce_grad(np.shape(loss), reduction=reduction), reduction)
        g = np.abs(np.expand_dims(reduce_grad(np.shape(loss), reduction=reduction), axes))
        den_x, inter_x, rho = (np.expand_dims(np.abs(v), axes) for v in (den, inter, err_d / np.abs(den)))
        err_ix = np.expand_dims(err_i, axes)
        coef = np.ones(p.shape) if dice_form else np.abs(t) * (1 + abs(alpha)) + abs(beta) * np.abs(1 - t)
        t1 = c * np.abs(t) / den_x
        q_term = c * inter_x / den_x**2 * coef
        q_err = c * (err_ix + inter_x * (2 * rho + 5)) / den_x**2 * coef
        d_p = g * (t1 * (rho + 2) + q_err + 4 * (t1 + q_term))
    return value, d_p


def dice_error(
    input,
    target,
    *,
    smooth=0.0,
    axis=None,
    weight=None,
    ignore_background=False,
    class_reduction="none",
    from_logits=False,
    reduction="none",
    dice_eps=None,
    smooth_form="dice",
    overlap_axes="all",
    prob_check=None,
    binary_channel=False,
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`dice` as Keras computes it (``overlap_sums``): 1 - 2I / (T + P + eps)."""
    rest = (weight, ignore_background, class_reduction, from_logits, binary_channel, smooth or None)
    value, d_p = _overlap_error(
        input, target, 0.5, 0.5, _eps(dice_eps, dtype), True, axis, overlap_axes, reduction, rest
    )
    return {"value": value, "input": d_p}


def tversky_error(
    input,
    target,
    *,
    alpha=0.5,
    beta=0.5,
    smooth=0.0,
    axis=None,
    weight=None,
    ignore_background=False,
    class_reduction="none",
    from_logits=False,
    reduction="none",
    dice_eps=None,
    overlap_axes="all",
    prob_check=None,
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`tversky` as Keras computes it (``overlap_sums``): 1 - I / D."""
    rest = (weight, ignore_background, class_reduction, from_logits, smooth or None)
    value, d_p = _overlap_error(
        input, target, alpha, beta, _eps(dice_eps, dtype), False, axis, overlap_axes, reduction, rest
    )
    return {"value": value, "input": d_p}
