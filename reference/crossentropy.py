"""Cross-entropy family: binary (probabilities, logits), softmax (class index, soft targets),
categorical on probabilities, and negative log-likelihood.

Shapes are canonical: the class axis is last, ``input`` is ``(..., C)`` and a class-index
``target`` is ``input.shape[:-1]``. A binding whose class axis is elsewhere (PyTorch's
dim 1) has its arrays moved by its adapter; that is the ``class_axis`` convention.

Conventions are keyword arguments (``reference/conventions.py``); their defaults are the
plain mathematics. ``dtype`` is the binding's compute dtype, used only to round the
constants a framework writes in its own dtype (clip bounds). A target of exactly 0
multiplying an infinite log contributes 0, the limit (``xlogy``).

Each oracle ``f`` has a gradient ``f_grad`` with the same arguments: a dict of float64
arrays, ``"input"`` = d sum(out) / d input in the input's shape, and ``"target"`` where the
target is an array of probabilities. It is the analytic derivative of the forward as written
here, conventions included: the reduction's cotangent (``reduction.reduce_grad``), clips
that pass the gradient at and inside their bounds (``_math.clip_grad``), and a zero
coefficient whose term, and so whose slope, is 0 (``_math.over``). Targets that are class
indices have no gradient.
"""

from __future__ import annotations

import functools

import numpy as np

from lossparity.reference._math import (
    clip_bounds,
    clip_grad,
    log_softmax,
    log_softmax_grad,
    normalize_grad,
    over,
    sigmoid,
    softplus,
    times,
    xlogy,
)
from lossparity.reference.errors import OracleError
from lossparity.reference.reduction import chain, reduce, reduce_grad
from lossparity.reference.rounding import log_softmax_error, reduction_error
from lossparity.reference.trace import NO_TRACE, reading


def _smooth(y, s, n, n_name, trace):
    """Targets mixed with the uniform distribution over ``n`` outcomes: y(1 - s) + s/n."""
    if not s:
        return y
    return trace("smoothing", y * (1.0 - s) + s / n, f"y(1-s) + s/{n_name} with s={s}")


def _weighted(loss, weight):
    """``loss`` times a weight broadcast to its shape; a weight of 0 wins over an infinite loss."""
    if weight is None:
        return loss
    return times(np.broadcast_to(np.asarray(weight, np.float64), np.shape(loss)), loss)


def _bce_stages(input, target, label_smoothing, log_min, prob_eps, prob_domain, dtype, trace, log_shift=None):
    """BCE up to its logs: p as given, smoothed y, clip bounds (or None), clipped p, and the
    pair (log p, log(1-p)) before and after the ``log_min`` clamp; ``log_shift`` (eps, tf.compat.v1's
    log_loss) takes log(p + eps) and log(1 - p + eps) instead (``clipped`` stays p)."""
    p = trace("input", np.asarray(input, np.float64), reading(input, "probabilities", classes=False))
    y = _smooth(np.asarray(target, np.float64), label_smoothing, 2, "2", trace)
    bounds, clipped = None, p
    if prob_eps is not None:
        bounds = clip_bounds(prob_eps, dtype)
        clipped = trace("clip", np.clip(p, *bounds), f"clipped into [eps, 1-eps], eps={prob_eps}")
    # the check sees what the checking kernel is given: Keras' torch backend clips p first (only a
    # NaN is left outside), and hands torch the smoothed targets, which torch checks as well
    # (aten/src/ATen/native/Loss.cpp binary_cross_entropy: "all elements of target should be between 0 and 1")
    for name, values in (("probability", clipped), ("target", y)):
        outside = ~((values >= 0) & (values <= 1))
        if prob_domain != "nan" and outside.any():
            raise OracleError(prob_domain, f"{name} {values[outside].ravel()[0]} is outside [0, 1]")
    with np.errstate(divide="ignore", invalid="ignore"):
        if log_shift is None:
            raw = (np.log(clipped), np.log1p(-clipped))
        else:  # log(p + eps) and log((1 - p) + eps): 1 - p is exact for p in [1/2, 1], so near 1 only + eps rounds
            raw = (np.log(clipped + log_shift), np.log((1.0 - clipped) + log_shift))
    logs = raw if log_min is None else tuple(np.maximum(v, log_min) for v in raw)
    clamped = "" if log_min is None else f", each clamped at {log_min}"
    shifted = "" if log_shift is None else f" of p + eps and 1 - p + eps, eps={log_shift}"
    trace("log", np.array(logs), "log p and log(1-p)" + shifted + clamped)
    return p, y, bounds, clipped, raw, logs


def binary_cross_entropy(
    input,
    target,
    *,
    weight=None,
    label_smoothing=0.0,
    reduction="mean",
    log_min=None,
    prob_eps=None,
    prob_domain="nan",
    sample_axis=None,
    clip_tie="pass",
    log_shift=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """-[y log p + (1 - y) log(1 - p)] for probabilities ``p`` (any shape), weighted elementwise."""
    _, y, _, _, _, (log_p, log_1mp) = _bce_stages(
        input, target, label_smoothing, log_min, prob_eps, prob_domain, dtype, trace, log_shift
    )
    if log_shift is None:  # a zero coefficient drops its term, even an infinite log (the limit 0 log 0 = 0)
        loss = _weighted(-(times(y, log_p) + times(1.0 - y, log_1mp)), weight)
    else:  # the logs are finite on [0, 1]; outside [-eps, 1 + eps] a log is NaN and so is its IEEE product
        with np.errstate(invalid="ignore"):
            loss = _weighted(-(y * log_p + (1.0 - y) * log_1mp), weight)
    loss = trace("per-element loss", loss, "-(y log p + (1-y) log(1-p))" + (" * weight" if weight is not None else ""))
    return reduce(loss, reduction=reduction, sample_axis=sample_axis, trace=trace)


def binary_cross_entropy_grad(
    input,
    target,
    *,
    weight=None,
    label_smoothing=0.0,
    reduction="mean",
    log_min=None,
    prob_eps=None,
    prob_domain="nan",
    sample_axis=None,
    clip_tie="pass",
    log_shift=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradients of :func:`binary_cross_entropy`, ``input`` and ``target``, in the input's shape.

    d/dp = w (-y/p + (1-y)/(1-p)); each term is 0 where its log is clamped (below
    ``log_min``; at equality it passes), or where its coefficient is 0 (so p = 0 with y = 0 is
    finite), and the whole is 0 strictly outside the ``prob_eps`` clip; y is the smoothed
    target. d/dy = w (1-s) (log(1-p) - log p) with the clamped logs: +-inf at p = 0 or 1 when
    nothing clamps. A NaN p has NaN slopes; a p outside [0, 1] (``prob_domain="nan"``) gets
    the formula's values, finite in p where the log itself is NaN. Under ``log_shift`` (eps inside the
    logs) the quotients are y / (p + eps) and (1 - y) / (1 - p + eps), and the logs in d/dy are shifted.
    """
    p, y, bounds, clipped, (raw_p, raw_1mp), (log_p, log_1mp) = _bce_stages(
        input, target, label_smoothing, log_min, prob_eps, prob_domain, dtype, NO_TRACE, log_shift
    )
    s = log_shift or 0.0  # the logs' arguments: p + eps and 1 - p + eps
    with np.errstate(invalid="ignore"):
        d_p = clip_grad(raw_1mp, log_min, None, over(1.0 - y, 1.0 - clipped + s)) - clip_grad(
            raw_p, log_min, None, over(y, clipped + s)
        )
        d_y = (1.0 - label_smoothing) * (log_1mp - log_p)
    if bounds is not None:
        d_p = clip_grad(p, *bounds, d_p, clip_tie)
    g = reduce_grad(np.shape(d_p), reduction=reduction, sample_axis=sample_axis)
    return {"input": chain(g, _weighted(d_p, weight)), "target": chain(g, _weighted(d_y, weight))}


def binary_cross_entropy_with_logits(
    input,
    target,
    *,
    weight=None,
    pos_weight=None,
    label_smoothing=0.0,
    reduction="mean",
    sample_axis=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """pos_weight * y * softplus(-x) + (1 - y) * softplus(x), i.e. BCE of sigmoid(x), without overflow.

    ``pos_weight`` broadcasts against the last (class) axis as in PyTorch.
    """
    x = trace(
        "input",
        np.asarray(input, np.float64),
        reading(input, "logits", classes=False, then="takes the sigmoid of each (folded into softplus)"),
    )
    y = _smooth(np.asarray(target, np.float64), label_smoothing, 2, "2", trace)
    loss = _weighted(_weighted(times(y, softplus(-x)), pos_weight) + times(1.0 - y, softplus(x)), weight)
    loss = trace("per-element loss", loss, "pos_weight*y*softplus(-x) + (1-y)*softplus(x)")
    return reduce(loss, reduction=reduction, sample_axis=sample_axis, trace=trace)


def binary_cross_entropy_with_logits_grad(
    input,
    target,
    *,
    weight=None,
    pos_weight=None,
    label_smoothing=0.0,
    reduction="mean",
    sample_axis=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradients of :func:`binary_cross_entropy_with_logits`, in the input's shape.

    d/dx = w ((1-y) sigmoid(x) - pos_weight y sigmoid(-x)): sigmoid(x) - y without
    pos_weight, kept as two terms so that a saturated sigmoid (x = 30, y = 1) keeps its
    relative accuracy; 1 or 0 at x = +-inf, as the slope of softplus. d/dy =
    w (1-s) (pos_weight softplus(-x) - softplus(x)), which is -x without pos_weight (-+inf at
    x = +-inf).
    """
    x = np.asarray(input, np.float64)
    y = _smooth(np.asarray(target, np.float64), label_smoothing, 2, "2", NO_TRACE)
    d_x = times(1.0 - y, sigmoid(x)) - _weighted(times(y, sigmoid(-x)), pos_weight)
    with np.errstate(invalid="ignore"):
        if pos_weight is None:
            d_y = -x
        else:  # softplus(-x) - softplus(x) = -x exactly; the two would cancel near x = 0
            pw = np.asarray(pos_weight, np.float64)
            d_y = np.where(np.isfinite(x), (pw - 1.0) * softplus(-x) - x, times(pw, softplus(-x)) - softplus(x))
    d_y = (1.0 - label_smoothing) * d_y
    g = reduce_grad(np.shape(d_x), reduction=reduction, sample_axis=sample_axis)
    return {"input": chain(g, _weighted(d_x, weight)), "target": chain(g, _weighted(d_y, weight))}


def _class_targets(target, n_classes, ignore_index, invalid_label, trace, float_labels="cast"):
    """Mask of counted targets, the safe gather indices, and the elements that are invalid.

    A float ``target`` is cast to integers (truncating toward 0) unless ``float_labels`` names the
    error the binding raises for a float label array (whatever its values)."""
    target = np.asarray(target)
    if target.dtype.kind == "f" and float_labels != "cast":
        raise OracleError(float_labels, "class indices must be an integer array, got a float array")
    if target.dtype.kind == "f":
        target = trace("labels", target.astype(np.int64), "float labels cast to integers, truncating toward 0")
    t = np.asarray(target, np.int64)
    counted = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
    invalid = counted & ((t < 0) | (t >= n_classes))
    if invalid.any():
        bad = t[invalid].ravel()[0]
        if invalid_label not in ("nan", "clamp", "wrap", "wrap_negative", "zeros"):
            raise OracleError(invalid_label, f"target {bad} is outside [0, {n_classes})")
        trace("invalid labels", invalid, f"{invalid_label}: target {bad} outside [0, {n_classes})")
    if invalid_label == "clamp":
        safe = np.clip(t, 0, max(n_classes - 1, 0))
    elif invalid_label == "wrap":
        safe = np.mod(t, n_classes) if n_classes else t * 0
    elif invalid_label == "wrap_negative":  # NumPy indexing: -C <= t < 0 reads t + C, the rest nan
        wraps = invalid & (t < 0) & (t >= -n_classes)
        invalid = invalid & ~wraps
        safe = np.where(counted & ~invalid, np.where(wraps, t + n_classes, t), 0)
    else:
        safe = np.where(counted & ~invalid, t, 0)
    if invalid_label in ("clamp", "wrap"):
        invalid = np.zeros_like(invalid)
    return counted, safe, invalid


def _gather(a, idx):
    if a.shape[-1] == 0:
        return np.full(idx.shape, np.nan)
    return np.take_along_axis(a, idx[..., None], axis=-1)[..., 0]


def _class_weights(weight, n_classes, safe):
    """The per-class weights (ones without ``weight``) and each target's own weight."""
    if weight is None:
        return np.ones(n_classes), np.ones(safe.shape)
    w = np.asarray(weight, np.float64)
    return w, w[safe]


def _indexed_loss(
    logp,
    target,
    weight,
    ignore_index,
    label_smoothing,
    reduction,
    mean_by,
    zero_division,
    invalid_label,
    trace,
    float_labels="cast",
):
    """Shared tail of softmax cross-entropy and NLL: gather, weight, smooth, reduce."""
    n_classes = logp.shape[-1]
    counted, safe, invalid = _class_targets(target, n_classes, ignore_index, invalid_label, trace, float_labels)
    w, w_t = _class_weights(weight, n_classes, safe)
    nll = np.where(invalid, np.nan, -_gather(logp, safe))
    loss = np.where(invalid, np.nan, times(w_t, nll))  # a weight of 0 must not hide the nan
    if invalid_label == "zeros":  # a one-hot row of zeros: the label selects nothing, and costs 0
        loss = np.where(invalid, 0.0, loss)
    if label_smoothing:
        smooth = -np.sum(times(w, logp), axis=-1) / n_classes
        loss = trace(
            "smoothing",
            (1.0 - label_smoothing) * loss + label_smoothing * smooth,
            f"(1-s) * w[y] * nll + s/C * sum_c w[c] * -log p_c, s={label_smoothing}",
        )
    loss = trace("per-element loss", loss, "w[y] * -log p[y]" if not label_smoothing else "smoothed")
    return reduce(
        loss,
        reduction=reduction,
        mask=counted,
        denom_weight=w_t,
        mean_by=mean_by,
        zero_division=zero_division,
        trace=trace,
    )


def _indexed_grad(
    n_classes, target, weight, ignore_index, label_smoothing, reduction, mean_by, zero_division, invalid_label
):
    """The gradient of :func:`_indexed_loss` in log p, as ``(a, g)``: d sum(out) / d log p is
    ``-chain(g, a)``, where ``a`` ``(..., C)`` holds each element's coefficients of -log p_c,
    (1-s) w[y] onehot(y) + s w / C (a NaN row for an invalid label), and ``g`` is the
    reduction's cotangent (0 for ignored targets)."""
    counted, safe, invalid = _class_targets(target, n_classes, ignore_index, invalid_label, NO_TRACE)
    w, w_t = _class_weights(weight, n_classes, safe)
    a = np.where(np.arange(n_classes) == safe[..., None], w_t[..., None], 0.0)
    if label_smoothing:
        a = (1.0 - label_smoothing) * a + label_smoothing * w / n_classes
    a = np.where(invalid[..., None], 0.0 if invalid_label == "zeros" else np.nan, a)
    g = reduce_grad(
        safe.shape, reduction=reduction, mask=counted, denom_weight=w_t, mean_by=mean_by, zero_division=zero_division
    )
    return a, g


def softmax_cross_entropy(
    input,
    target,
    *,
    weight=None,
    ignore_index=None,
    label_smoothing=0.0,
    reduction="mean",
    mean_by="elements",
    zero_division="nan",
    invalid_label="nan",
    float_labels="cast",
    class_axis=-1,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """-log softmax(x)[y] for logits ``(..., C)`` and class indices ``(...)``.

    ``weight`` is per class; ``ignore_index`` targets contribute 0 and are not counted;
    label smoothing mixes in the (weighted) mean over classes as PyTorch documents.
    """
    x = trace(
        "input",
        np.asarray(input, np.float64),
        reading(input, "logits", classes=True, then="takes a softmax over the classes"),
    )
    logp = trace("log_softmax", log_softmax(x), "x - logsumexp(x) over the class axis")
    return _indexed_loss(
        logp,
        target,
        weight,
        ignore_index,
        label_smoothing,
        reduction,
        mean_by,
        zero_division,
        invalid_label,
        trace,
        float_labels,
    )


def softmax_cross_entropy_grad(
    input,
    target,
    *,
    weight=None,
    ignore_index=None,
    label_smoothing=0.0,
    reduction="mean",
    mean_by="elements",
    zero_division="nan",
    invalid_label="nan",
    float_labels="cast",
    class_axis=-1,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/dx of :func:`softmax_cross_entropy`, ``(..., C)``.

    Per element w[y] (softmax(x) - onehot(y)); with smoothing (1-s) w[y] (p - onehot(y)) +
    s/C (p sum(w) - w); times the reduction's cotangent. Ignored targets: exactly 0 (also
    where their logits are NaN); a counted invalid label read as "nan": a NaN row.
    """
    x = np.asarray(input, np.float64)
    a, g = _indexed_grad(
        x.shape[-1], target, weight, ignore_index, label_smoothing, reduction, mean_by, zero_division, invalid_label
    )
    return {"input": chain(g, log_softmax_grad(x, a))}


def nll_loss(
    input,
    target,
    *,
    weight=None,
    ignore_index=None,
    reduction="mean",
    mean_by="elements",
    zero_division="nan",
    invalid_label="nan",
    float_labels="cast",
    class_axis=-1,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """-w[y] * input[y] for log-probabilities ``(..., C)`` and class indices ``(...)``."""
    logp = trace(
        "input",
        np.asarray(input, np.float64),
        reading(input, "log-probabilities", classes=True, then="applies no activation"),
    )
    return _indexed_loss(
        logp, target, weight, ignore_index, 0.0, reduction, mean_by, zero_division, invalid_label, trace, float_labels
    )


def nll_loss_grad(
    input,
    target,
    *,
    weight=None,
    ignore_index=None,
    reduction="mean",
    mean_by="elements",
    zero_division="nan",
    invalid_label="nan",
    float_labels="cast",
    class_axis=-1,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/d input of :func:`nll_loss`, ``(..., C)``: -w[y] onehot(y) times the reduction's
    cotangent, whatever the input's values (a -inf log-probability included)."""
    a, g = _indexed_grad(
        np.shape(input)[-1], target, weight, ignore_index, 0.0, reduction, mean_by, zero_division, invalid_label
    )
    return {"input": chain(g, -a)}


def _logsumexp(x: np.ndarray) -> np.ndarray:
    """logsumexp over the last axis, shifted by a finite max as jax.scipy.special.logsumexp
    shifts it (a non-finite max is not subtracted: +inf gives +inf, a row of -inf gives -inf)."""
    if x.shape[-1] == 0:
        return np.full(x.shape[:-1], -np.inf)
    m = np.max(x, axis=-1, keepdims=True)
    finite = np.isfinite(m)
    m = np.where(finite, m, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        e = np.exp(x - m)
        plain = np.log(np.sum(e, axis=-1))
        # the max's own exp(0) = 1 taken out of the sum, log1p of the rest: log(1 + 7.7e-11) keeps
        # its digits (as reference/_math.py's log_softmax does)
        first = np.argmax(x, axis=-1)[..., None]
        rest = np.sum(np.where(np.arange(x.shape[-1]) == first, 0.0, e), axis=-1)
        return np.where(finite[..., 0], np.log1p(rest), plain) + m[..., 0]


def fenchel_young_logsumexp(input, target, *, reduction="mean", dtype=np.float32, trace=NO_TRACE):
    """The Fenchel-Young loss of the log-sum-exp, logsumexp(x) - <y, x> over the last axis, for
    scores ``x`` and targets ``y`` both ``(..., C)``: ``optax.losses.make_fenchel_young_loss``
    with ``max_fun=jax.scipy.special.logsumexp`` (its docstring's example), which maps any
    leading axes and reduces the last (``jnp.vectorize`` of ``jnp.vdot``).

    Where the targets sum to 1 this is softmax cross-entropy; otherwise the two differ by
    (sum(y) - 1) logsumexp(x), and no normalisation is documented. The dot product follows
    IEEE arithmetic as written: a target 0 against an infinite score is NaN, not the limit 0.
    """
    x = trace(
        "input",
        np.asarray(input, np.float64),
        reading(input, "scores", classes=True, then="takes their log-sum-exp"),
    )
    y = np.asarray(target, np.float64)
    lse = trace("logsumexp", _logsumexp(x), "max(x) + log(sum(exp(x - max(x)))) over the last axis")
    with np.errstate(invalid="ignore"):
        dot = trace("<y, x>", np.sum(y * x, axis=-1), "the targets' dot product with the scores (vdot)")
        loss = trace("per-sample loss", lse - dot, "logsumexp(x) - <y, x>")
    return reduce(loss, reduction=reduction, trace=trace)


def fenchel_young_logsumexp_grad(input, target, *, reduction="mean", dtype=np.float32, trace=NO_TRACE):
    """Gradients of :func:`fenchel_young_logsumexp`, both ``(..., C)``: d/dx = softmax(x) - y
    (the softmax as JAX's logsumexp differentiates it, exp(x - m) / sum exp(x - m)) and
    d/dy = -x."""
    x = np.asarray(input, np.float64)
    y = np.asarray(target, np.float64)
    g = reduce_grad(x.shape[:-1], reduction=reduction)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if x.shape[-1]:
            m = np.max(x, axis=-1, keepdims=True)
            e = np.exp(x - np.where(np.isfinite(m), m, 0.0))
            p = e / np.sum(e, axis=-1, keepdims=True)
        else:
            p = x.copy()
        return {"input": chain(g, p - y), "target": chain(g, -x)}


#: The stages of :func:`fenchel_young_logsumexp_error`: optax computes both in the scores' dtype.
FENCHEL_YOUNG_STAGES = ("logsumexp", "vdot")


def fenchel_young_logsumexp_error(input, target, *, reduction="mean", dtype=np.float32, trace=NO_TRACE, stages=()):
    """Rounding model (units of the compute dtype's u) of :func:`fenchel_young_logsumexp`
    computed as jax.scipy.special.logsumexp and jnp.vdot write it, in the scores' dtype (m the
    row's finite max, d_c = x_c - m, S = sum exp(d_c), p_c = exp(d_c) / S, C classes):

    - ``logsumexp`` = m + log S: as :func:`~lossparity.reference.rounding.log_softmax_error`
      derives it, log S is off by sum_k p_k |d_k| + C + |log S| and adding m back rounds at
      |logsumexp|;
    - ``vdot`` = sum_c y_c x_c: each product one rounding, the sum of C terms at most C - 1
      more, so C sum_c |y_c x_c|;
    - the difference: one rounding of the loss.

    d/dx = g (p - y): p_c = exp(d_c) / S carries d_c's rounding (|d_c|), S's relative error
    (sum_k p_k (|d_k| + 1) + C) and two roundings of its own, relative; the difference and the
    cotangent's product one each. d/dy = -g x: one rounding of the product (none for g = 1)."""
    x = np.asarray(input, np.float64)
    y = np.asarray(target, np.float64)
    loss = fenchel_young_logsumexp(x, y, reduction="none")
    g = reduce_grad(x.shape[:-1], reduction=reduction)
    c = x.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        m = np.max(x, axis=-1, keepdims=True) if c else np.zeros(x.shape[:-1] + (1,))
        m = np.where(np.isfinite(m), m, 0.0)
        d = x - m
        e = np.exp(d)
        big_s = np.sum(e, axis=-1, keepdims=True)
        p = e / big_s
        spread = np.sum(p * np.abs(d), axis=-1, keepdims=True)
        lse_err = spread + c + np.abs(np.log(big_s)) + np.abs(m + np.log(big_s))
        dot_err = c * np.sum(np.abs(y * x), axis=-1, keepdims=True)
        per = np.abs(loss)
        if "logsumexp" in stages:
            per = per + lse_err[..., 0]
        if "vdot" in stages:
            per = per + dot_err[..., 0]
        d_x = np.abs(g)[..., None] * (p * (np.abs(d) + spread + 2 * c + 2) + np.abs(p - y))
        d_y = np.abs(g)[..., None] * np.abs(x)
    return {"value": reduction_error(per, loss, g, reduction), "input": d_x, "target": d_y}


def softmax_cross_entropy_soft(
    input,
    target,
    *,
    weight=None,
    label_smoothing=0.0,
    reduction="mean",
    class_axis=-1,
    label_gradient="flows",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """-sum_c w[c] y_c log softmax(x)_c for logits and probability targets, both ``(..., C)``."""
    x = trace(
        "input",
        np.asarray(input, np.float64),
        reading(input, "logits", classes=True, then="takes a softmax over the classes"),
    )
    y = _smooth(np.asarray(target, np.float64), label_smoothing, x.shape[-1], "C", trace)
    logp = trace("log_softmax", log_softmax(x), "x - logsumexp(x) over the class axis")
    terms = _weighted(times(y, logp), weight)
    loss = trace("per-element loss", -np.sum(terms, axis=-1), "-sum_c w_c y_c log p_c")
    return reduce(loss, reduction=reduction, trace=trace)


def softmax_cross_entropy_soft_grad(
    input,
    target,
    *,
    weight=None,
    label_smoothing=0.0,
    reduction="mean",
    class_axis=-1,
    label_gradient="flows",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradients of :func:`softmax_cross_entropy_soft`, both ``(..., C)``.

    d/dx = p sum(w y) - w y (y smoothed); d/dy = -(1-s) w log p, +inf where a logit is -inf
    (that target's slope; its term itself is 0 at y = 0). ``label_gradient="stopped"``: the
    labels pass through ``tf.stop_gradient`` (``tf.compat.v1``'s softmax cross-entropies), d/dy = 0.
    """
    x = np.asarray(input, np.float64)
    y = _smooth(np.asarray(target, np.float64), label_smoothing, x.shape[-1], "C", NO_TRACE)
    logp = log_softmax(x)
    g = reduce_grad(logp.shape[:-1], reduction=reduction)
    return {
        "input": chain(g, log_softmax_grad(x, _weighted(y, weight))),
        "target": np.zeros(np.shape(y))
        if label_gradient == "stopped"
        else chain(g, -(1.0 - label_smoothing) * _weighted(logp, weight)),
    }


def _predicted(p, prob_eps, renormalize, dtype, trace, clip_tie="pass"):
    """Predicted probabilities after the binding's renormalization and clip, in its order, and
    the pullback of that chain (a gradient in its output -> the gradient in ``p``)."""
    pullbacks = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for step in ("before_clip", "clip", "after_clip"):
            if step == "clip" and prob_eps is not None:
                bounds = clip_bounds(prob_eps, dtype)
                pullbacks.append(functools.partial(clip_grad, p, *bounds, tie=clip_tie))
                p = trace("clip", np.clip(p, *bounds), f"clipped into [eps, 1-eps], eps={prob_eps}")
            elif step != "clip" and step == renormalize:
                pullbacks.append(functools.partial(normalize_grad, p))
                p = trace("renormalize", p / np.sum(p, axis=-1, keepdims=True), "p / sum(p)")

    def pullback(grad):
        for back in reversed(pullbacks):
            grad = back(grad)
        return grad

    return p, pullback


def categorical_cross_entropy(
    input,
    target,
    *,
    label_smoothing=0.0,
    reduction="mean",
    prob_eps=None,
    renormalize=None,
    clip_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """-sum_c y_c log p_c for predicted probabilities and probability targets, both ``(..., C)``."""
    p = trace("input", np.asarray(input, np.float64), reading(input, "probabilities", classes=True))
    y = _smooth(np.asarray(target, np.float64), label_smoothing, p.shape[-1], "C", trace)
    p, _ = _predicted(p, prob_eps, renormalize, dtype, trace)
    loss = trace("per-element loss", -np.sum(xlogy(y, p), axis=-1), "-sum_c y_c log p_c")
    return reduce(loss, reduction=reduction, trace=trace)


def categorical_cross_entropy_grad(
    input,
    target,
    *,
    label_smoothing=0.0,
    reduction="mean",
    prob_eps=None,
    renormalize=None,
    clip_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradients of :func:`categorical_cross_entropy`, both ``(..., C)``.

    d/dp = -y/p (0 where y = 0, -inf where p = 0 < y), pulled back through the clip and the
    renormalization in the binding's order; d/dy = -(1-s) log p of the final p (+inf at 0).
    """
    p = np.asarray(input, np.float64)
    y = _smooth(np.asarray(target, np.float64), label_smoothing, p.shape[-1], "C", NO_TRACE)
    q, pullback = _predicted(p, prob_eps, renormalize, dtype, NO_TRACE, clip_tie)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_y = -(1.0 - label_smoothing) * np.log(q)
        d_p = pullback(-over(y, q))
    g = reduce_grad(q.shape[:-1], reduction=reduction)
    return {"input": chain(g, d_p), "target": chain(g, d_y)}


def sparse_categorical_cross_entropy(
    input,
    target,
    *,
    ignore_index=None,
    reduction="mean",
    prob_eps=None,
    renormalize=None,
    clip_tie="pass",
    zero_division="nan",
    invalid_label="nan",
    float_labels="cast",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """-log p[y] for predicted probabilities ``(..., C)`` and class indices ``(...)``."""
    p = trace("input", np.asarray(input, np.float64), reading(input, "probabilities", classes=True))
    p, _ = _predicted(p, prob_eps, renormalize, dtype, trace)
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = trace("log", np.log(p), "log p")
    return _indexed_loss(
        logp, target, None, ignore_index, 0.0, reduction, "elements", zero_division, invalid_label, trace, float_labels
    )


def sparse_categorical_cross_entropy_grad(
    input,
    target,
    *,
    ignore_index=None,
    reduction="mean",
    prob_eps=None,
    renormalize=None,
    clip_tie="pass",
    zero_division="nan",
    invalid_label="nan",
    float_labels="cast",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/dp of :func:`sparse_categorical_cross_entropy`, ``(..., C)``: -onehot(y) / p, pulled
    back through the clip and the renormalization, times the reduction's cotangent."""
    q, pullback = _predicted(np.asarray(input, np.float64), prob_eps, renormalize, dtype, NO_TRACE, clip_tie)
    a, g = _indexed_grad(
        q.shape[-1], target, None, ignore_index, 0.0, reduction, "elements", zero_division, invalid_label
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"input": chain(g, pullback(-over(a, q)))}


# ----------------------------------------------------------------------------- rounding models
# ``Spec.error_model`` of each softmax and categorical cross-entropy: the first-order bound, in
# units of the compute dtype's unit roundoff, of computing the loss stage by stage in that
# dtype (``reference/rounding.py`` states the model). Each takes the oracle's arguments and
# returns {"value": ..., "input": ..., "target": ...} in the shapes of the value and gradients.

#: The stages the cross-entropy models know: a binding declares those it computes in its dtype.
SOFTMAX_STAGES = ("log_softmax", "logsumexp", "stored_log_softmax")
PROBABILITY_STAGES = ("renormalize", "log")


def _coefficient_error(a: np.ndarray, logp: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The per-element loss -sum_c a_c log p_c and its error in units of u, given each log's
    (``err``): the logs' errors carried, one rounding per product, n - 1 for the sum of the n
    nonzero terms, 2 for a smoothed coefficient's own rounding."""
    with np.errstate(invalid="ignore"):
        terms = np.abs(times(a, logp))
        n = np.sum(a != 0, axis=-1)
        loss = -np.sum(times(a, logp), axis=-1)
        return loss, np.sum(times(np.abs(a), err), axis=-1) + (n + 2) * np.sum(terms, axis=-1)


def _softmax_model(x, a, g, reduction, stages):
    """Value and d/dx error of -sum_c a_c log_softmax(x)_c reduced with cotangent ``g``.

    d/dx_c = g (p_c sum(a) - a_c): p_c = exp(log p_c) carries log p_c's error relative plus
    one rounding; the sum of the n nonzero a's costs (n - 1) sum |a|; the product and the
    difference one rounding each, the cotangent's product another."""
    stage = next((s for s in ("logsumexp", "stored_log_softmax") if s in stages), "log_softmax")
    logp, p, err = log_softmax_error(x, stage)
    loss, per = _coefficient_error(a, logp, err)
    n = np.sum(a != 0, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        total = np.sum(np.abs(a), axis=-1, keepdims=True)
        slope = p * np.sum(a, axis=-1, keepdims=True) - a
        d_x = np.abs(g)[..., None] * (p * total * (err + n + 2) + np.abs(a) + 2 * np.abs(slope))
    return reduction_error(per, loss, g, reduction), d_x, logp, err


def softmax_cross_entropy_error(
    input,
    target,
    *,
    weight=None,
    ignore_index=None,
    label_smoothing=0.0,
    reduction="mean",
    mean_by="elements",
    zero_division="nan",
    invalid_label="nan",
    float_labels="cast",
    class_axis=-1,
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`softmax_cross_entropy` with ``log_softmax`` in the compute dtype."""
    x = np.asarray(input, np.float64)
    a, g = _indexed_grad(
        x.shape[-1], target, weight, ignore_index, label_smoothing, reduction, mean_by, zero_division, invalid_label
    )
    value, d_x, _, _ = _softmax_model(x, a, g, reduction, stages)
    return {"value": value, "input": d_x}


def softmax_cross_entropy_soft_error(
    input,
    target,
    *,
    weight=None,
    label_smoothing=0.0,
    reduction="mean",
    class_axis=-1,
    label_gradient="flows",
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`softmax_cross_entropy_soft` with ``log_softmax`` in the compute
    dtype; d/dy_c = -(1-s) w_c log p_c carries log p_c's error plus two roundings."""
    x = np.asarray(input, np.float64)
    y = _smooth(np.asarray(target, np.float64), label_smoothing, x.shape[-1], "C", NO_TRACE)
    a = _weighted(y, weight)
    g = reduce_grad(x.shape[:-1], reduction=reduction)
    value, d_x, logp, err = _softmax_model(x, a, g, reduction, stages)
    with np.errstate(invalid="ignore"):
        w = np.abs(_weighted(np.ones_like(x), weight)) * (1.0 - label_smoothing)
        d_y = np.abs(g)[..., None] * w * (err + 2 * np.abs(logp) + 2)
    if label_gradient == "stopped":  # an exact 0
        d_y = np.zeros(np.shape(d_y))
    return {"value": value, "input": d_x, "target": d_y}


def _clipped(p, prob_eps, renormalize, dtype) -> np.ndarray:
    """Where the clip holds a probability at a bound it was outside of (its slope is 0 there:
    no rounding of it reaches the gradient)."""
    if prob_eps is None:
        return np.zeros(np.shape(p), bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        pre = p / np.sum(p, axis=-1, keepdims=True) if renormalize == "before_clip" else p
    lo, hi = clip_bounds(prob_eps, dtype)
    return (pre < lo) | (pre > hi)


def _probability_model(p, y, prob_eps, renormalize, dtype, reduction):
    """Value, d/dp and d/dy error of -sum_c y_c log q_c, q the renormalized and clipped p.

    Renormalizing costs q_c a relative (C - 1) u (the sum) + u (the division); a clip is exact;
    log q_c adds one rounding of the result: err(log q_c) = u (C r + |log q_c|), r = 1 with a
    renormalization. d/dq_c = -y_c / q_c carries q's relative error plus one rounding; its
    pullback through q = p / S is (d/dq_j - sum_c d/dq_c q_c) / S: the two terms' errors, the
    sum's (C - 1), the difference and the division."""
    n_classes = p.shape[-1]
    q, _ = _predicted(p, prob_eps, renormalize, dtype, NO_TRACE)
    r = n_classes if renormalize is not None else 0
    with np.errstate(divide="ignore", invalid="ignore"):
        logq = np.log(q)
        err = r + np.abs(logq) + 1
        loss, per = _coefficient_error(y, logq, err)
        g = reduce_grad(q.shape[:-1], reduction=reduction)
        dq = np.abs(over(y, q))
        total = np.sum(np.abs(y), axis=-1, keepdims=True)
        if renormalize is not None:
            s = np.sum(p, axis=-1, keepdims=True)
            d_p = (dq * (r + 3) + total * (r + n_classes + 3)) / s
        else:
            d_p = dq * 2
        d_p = np.abs(g)[..., None] * np.where(_clipped(p, prob_eps, renormalize, dtype), 0.0, d_p)
        d_y = np.abs(g)[..., None] * (err + 2 * np.abs(logq))
    return reduction_error(per, loss, g, reduction), d_p, d_y


def categorical_cross_entropy_error(
    input,
    target,
    *,
    label_smoothing=0.0,
    reduction="mean",
    prob_eps=None,
    renormalize=None,
    clip_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`categorical_cross_entropy` (renormalization and log in the
    compute dtype)."""
    p = np.asarray(input, np.float64)
    y = _smooth(np.asarray(target, np.float64), label_smoothing, p.shape[-1], "C", NO_TRACE)
    value, d_p, d_y = _probability_model(p, y, prob_eps, renormalize, dtype, reduction)
    return {"value": value, "input": d_p, "target": (1.0 - label_smoothing) * d_y}


def sparse_categorical_cross_entropy_error(
    input,
    target,
    *,
    ignore_index=None,
    reduction="mean",
    prob_eps=None,
    renormalize=None,
    clip_tie="pass",
    zero_division="nan",
    invalid_label="nan",
    float_labels="cast",
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`sparse_categorical_cross_entropy` (renormalization and log in
    the compute dtype)."""
    p = np.asarray(input, np.float64)
    a, g = _indexed_grad(
        p.shape[-1], target, None, ignore_index, 0.0, reduction, "elements", zero_division, invalid_label
    )
    q, _ = _predicted(p, prob_eps, renormalize, dtype, NO_TRACE)
    r = p.shape[-1] if renormalize is not None else 0
    with np.errstate(divide="ignore", invalid="ignore"):
        logq = np.log(q)
        loss, per = _coefficient_error(a, logq, r + np.abs(logq) + 1)
        dq = np.abs(over(a, q))
        total = np.sum(np.abs(a), axis=-1, keepdims=True)
        if renormalize is not None:
            d_p = (dq * (r + 3) + total * (2 * r + 3)) / np.sum(p, axis=-1, keepdims=True)
        else:
            d_p = dq * 2
        d_p = np.abs(g)[..., None] * np.where(_clipped(p, prob_eps, renormalize, dtype), 0.0, d_p)
    return {"value": reduction_error(per, loss, g, reduction), "input": d_p}


# ----------------------------------------------------------------------------- binary models
# ``Spec.error_model`` of the binary cross-entropies, on probabilities and on logits: the same
# first-order bound (``reference/rounding.py``), in units of u, for a binding that computes the
# named stages in its input's dtype with no wider accumulator.

#: Probabilities: clip (exact) and the logs of p and 1 - p in the dtype (Keras on every backend,
#: PyTorch's binary_cross_entropy kernel for Half/BFloat16).
BINARY_STAGES = ("log",)
#: Logits, by algorithm: "log_sigmoid" is -(y log_sigmoid(x) + (1-y) log_sigmoid(-x)) (optax,
#: Keras on JAX, torch's multilabel_soft_margin_loss); "max_log1p_exp" is the stable form
#: max(x, 0) - x y + log1p(exp(-|x|)) or (1-y) x + l (log1p(exp(-|x|)) + max(-x, 0)),
#: l = 1 + (pos_weight - 1) y (tf.nn, Keras on TensorFlow, torch's BCE with logits).
BINARY_LOGIT_STAGES = ("log_sigmoid", "max_log1p_exp")


def _binary_reduced_error(per, loss, reduction, sample_axis):
    """The value's error (units of u) from each element's (``per``) and the elementwise loss:
    ``sample_axis`` first (the n terms of the last axis summed, (n - 1) sum |terms| + a mean's
    division: 2 n sum |g loss|, as ``reduction_error``), then the reduction."""
    per, loss = np.asarray(per, np.float64), np.asarray(loss, np.float64)
    if sample_axis is not None and loss.ndim:
        n = loss.shape[-1]
        g = 1.0 / n if sample_axis == "mean" and n else 1.0
        with np.errstate(invalid="ignore"):
            per = g * np.sum(per, axis=-1) + 2 * n * g * np.sum(np.abs(loss), axis=-1)
        loss = reduce(loss, reduction="none", sample_axis=sample_axis)
    return reduction_error(per, loss, reduce_grad(np.shape(loss), reduction=reduction), reduction)


def binary_cross_entropy_error(
    input,
    target,
    *,
    weight=None,
    label_smoothing=0.0,
    reduction="mean",
    log_min=None,
    prob_eps=None,
    prob_domain="nan",
    sample_axis=None,
    clip_tie="pass",
    log_shift=None,
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`binary_cross_entropy` with its logs (stage ``"log"``) in the
    compute dtype: {"value", "input", "target"} in units of u, in their shapes.

    The inputs are exact; so is the clip (its bounds are rounded to the dtype, as the oracle
    rounds them) and a log clamped at ``log_min`` (-100 is exact). Per element, with
    A = y |log p| and B = (1-y) |log(1-p)| (L = A + B):

    - log p: one rounding, u |log p|; 1 - p: one rounding, u (1-p), which log(1-p) turns into
      an absolute u, plus its own rounding: u (1 + |log(1-p)|) (log1p(-p) costs less);
    - a smoothed target y(1-s) + s/2: the constant, the product and the sum, 3u y (``ey``);
      1 - y: one rounding, u (1-y), plus y's error;
    - the products y log p and (1-y) log(1-p), one rounding each, and their sum, u L.

    So err(L) <= u [(2 + ey) A + 3 B + (1-y) + ey y |log(1-p)| + L], times w plus w's product
    (u w L); the per-sample mean (``sample_axis``) and the reduction add theirs
    (``_binary_reduced_error``).

    d/dp = g w (T2 - T1), T1 = y / p, T2 = (1-y) / (1-p) (the clamped term's 0 as the oracle):
    reverse mode rounds the cotangent g (1/n and 1/N: two roundings), its products with y and
    1 - y (one each, plus 1 - y's own), the quotients by p and by 1 - p (one, plus 1 - p's
    relative u) and the sum of the two (u |T2 - T1|): u g w [(6 + ey) T1 + (7 + ey) T2 +
    |T2 - T1|]. PyTorch's (p - y) / max(p(1-p), 1e-12) costs 5u |d/dp|, which is less. The
    clip is exact: 0 strictly outside, half at a split tie, as the oracle's slope.
    d/dy = g w (1-s) (log(1-p) - log p): each log's error, its product with the cotangent and
    the cotangent's two roundings, the difference and the smoothing's product:
    u g w (1-s) [4 |log p| + 4 |log(1-p)| + 1 + 3 |d/dy|].
    """
    p, y, bounds, clipped, (raw_p, raw_1mp), (log_p, log_1mp) = _bce_stages(
        input, target, label_smoothing, log_min, prob_eps, prob_domain, dtype, NO_TRACE, log_shift
    )
    ey = 3.0 if label_smoothing else 0.0
    # log_shift: p + eps and (1 - p) + eps round once more each, an absolute u in each log (``es``)
    s, es = (0.0, 0.0) if log_shift is None else (log_shift, 1.0)
    w = np.abs(_weighted(np.ones(np.shape(p)), weight))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        a, b = times(y, np.abs(log_p)), times(1.0 - y, np.abs(log_1mp))
        loss = a + b
        per = (
            (2.0 + ey) * a
            + 3.0 * b
            + (1.0 - y)
            + times(ey * y, np.abs(log_1mp))
            + loss
            + es * (np.abs(y) + np.abs(1 - y))
        )
        if weight is not None:
            per = times(w, per + loss)
        value = _binary_reduced_error(per, times(w, loss), reduction, sample_axis)
        t1 = np.abs(clip_grad(raw_p, log_min, None, over(y, clipped + s)))
        t2 = np.abs(clip_grad(raw_1mp, log_min, None, over(1.0 - y, 1.0 - clipped + s)))
        d_p = (6.0 + ey + es) * t1 + (7.0 + ey + es) * t2 + np.abs(t2 - t1)
        if bounds is not None:
            d_p = np.abs(clip_grad(p, *bounds, d_p, clip_tie))
        d_y = (1.0 - label_smoothing) * (
            4.0 * np.abs(log_p) + 4.0 * np.abs(log_1mp) + 1.0 + 2 * es + 3.0 * np.abs(log_1mp - log_p)
        )
    g = np.abs(reduce_grad(np.shape(p), reduction=reduction, sample_axis=sample_axis))
    return {"value": value, "input": chain(g, times(w, d_p)), "target": chain(g, times(w, d_y))}


def binary_cross_entropy_with_logits_error(
    input,
    target,
    *,
    weight=None,
    pos_weight=None,
    label_smoothing=0.0,
    reduction="mean",
    sample_axis=None,
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`binary_cross_entropy_with_logits` computed in the compute
    dtype by one of two algorithms (``BINARY_LOGIT_STAGES``): {"value", "input", "target"} in
    units of u.

    Notation: q = pos_weight (1 without), l = 1 + (q-1) y, e = exp(-|x|), s = log1p(e),
    S+ = softplus(x) = max(x, 0) + s, S- = softplus(-x) = max(-x, 0) + s, L = q y S- + (1-y) S+;
    ``ey`` = 3 for a smoothed target (its three roundings), else 0. exp(-|x|) rounds once
    (u e), log1p carries that (u e) and rounds (u s).

    ``"log_sigmoid"``: softplus(v) = max(v, 0) + log1p(exp(-|v|)) (jnp.logaddexp) costs
    u (e + s + S_v); the products and the sum: err(L) <= u [(e + s)(q y + 1 - y) + (2 + ey) q y S-
    + 3 (1-y) S+ + ey y S+ + L]. Its slope sigmoid(v) is exp(v - softplus(v)) (logaddexp's JVP):
    the difference's absolute error, u (|x| + 3 s + e), becomes sigmoid's relative one, plus
    exp's rounding; the products with y, 1 - y, and the cotangent (two roundings) and the sum:
    err(d/dx) <= u g w [(q y sigmoid(-x) + (1-y) sigmoid(x)) (|x| + 3 s + e + 5 + ey)
    + (1-y) sigmoid(x) + |d/dx|]. d/dy = softplus(-x) - softplus(x) from the two rounded
    softpluses: u g w (1-s') [2 (q S- + S+) + 2 (e + s) + 2 |d/dy|].

    ``"max_log1p_exp"``: the terms of size |x| cancel. tf.nn.sigmoid_cross_entropy_with_logits:
    x y (u |x y|, plus ey), max(x, 0) - x y (u |max(x,0) - x y|), log1p(exp(-|x|)) and the sum;
    the weighted form and PyTorch's: (1-y) x (two roundings), l (u (2 |q-1| y + l)), s + max(-x, 0)
    and l times it, PyTorch's log(exp(-m) + exp(-x-m)) one more u per term:
    err(L) <= u [2 (1-y) |x| + (2 + 2 ey) y |x| + |max(x,0) - x y| + 2 l (1 + e + s)
    + 2 l (s + max(-x, 0)) + (2 + ey) |q-1| y (s + max(-x, 0)) + L] (both algorithms' terms).
    The slope is a sum of up to four terms, each computed with a few roundings: TensorFlow's
    autodiff adds [x >= 0], -y (or 1 - y and -l [x < 0]) and -+l sigmoid(-|x|) (1 + e and
    the quotient: 3u relative); PyTorch's backward forms (q y + 1 - y) sigmoid(x) - q y:
    err(d/dx) <= u g w [4 ([x >= 0] + q y + (1-y) + l [x < 0]) + 6 l (sigmoid(-|x|) + sigmoid(x))
    + 2 |d/dx|] (a near-zero slope formed from O(1) terms costs an absolute u, which is what
    the bound allows). d/dy = -x (+ (q-1) S- with pos_weight): u g w (1-s') [2 |x|
    + |q-1| (3 S- + 2) + 2 |d/dy|]; with pos_weight PyTorch forms it as log_sigmoid(-x)
    - q log_sigmoid(x), two rounded terms that cancel near x = 0: + 3 (q S- + S+).

    ``weight`` w multiplies each element (one more rounding); the per-sample mean and the
    reduction add theirs (``_binary_reduced_error``).
    """
    x = np.asarray(input, np.float64)
    y = _smooth(np.asarray(target, np.float64), label_smoothing, 2, "2", NO_TRACE)
    y = np.broadcast_to(y, np.broadcast_shapes(x.shape, y.shape))
    ey = 3.0 if label_smoothing else 0.0
    q = np.broadcast_to(np.asarray(1.0 if pos_weight is None else pos_weight, np.float64), y.shape)
    w = np.abs(_weighted(np.ones(y.shape), weight))
    with np.errstate(invalid="ignore", over="ignore"):
        ax = np.abs(x)
        e, s = np.exp(-ax), np.log1p(np.exp(-ax))
        pos, neg = np.maximum(x, 0.0), np.maximum(-x, 0.0)
        s_pos, s_neg = pos + s, neg + s
        qy, ny = q * y, 1.0 - y
        loss = times(qy, s_neg) + times(ny, s_pos)
        sig_p, sig_n = sigmoid(x), sigmoid(-x)
        d_x = np.abs(times(ny, sig_p) - times(qy, sig_n))
        d_y = np.abs(times(q, s_neg) - s_pos) if pos_weight is not None else ax
        if "log_sigmoid" in stages:
            per = (
                (e + s) * (qy + ny)
                + (2.0 + ey) * times(qy, s_neg)
                + 3.0 * times(ny, s_pos)
                + ey * times(y, s_pos)
                + loss
            )
            slope = (times(qy, sig_n) + times(ny, sig_p)) * (ax + 3.0 * s + e + 5.0 + ey)
            d_x = slope + times(ny, sig_p) + d_x
            d_y = 2.0 * (times(q, s_neg) + s_pos) + 2.0 * (e + s) + 2.0 * d_y
        else:
            l_ = 1.0 + (q - 1.0) * y
            kinked = times(np.abs(q - 1.0) * y, s + neg)
            per = (
                2.0 * times(ny, ax)
                + (2.0 + 2.0 * ey) * times(y, ax)
                + np.abs(pos - times(y, x))
                + 2.0 * l_ * (1.0 + e + s)
                + 2.0 * times(l_, s + neg)
                + (2.0 + ey) * kinked
                + loss
            )
            terms = (x >= 0) + qy + ny + l_ * (x < 0)
            d_x = 4.0 * terms + 6.0 * l_ * (sigmoid(-ax) + sig_p) + 2.0 * d_x
            d_y = 2.0 * ax + np.abs(q - 1.0) * (3.0 * s_neg + 2.0) + 2.0 * d_y
            if pos_weight is not None:  # PyTorch: log_sigmoid(-x) - q log_sigmoid(x), two rounded terms
                d_y = d_y + 3.0 * (times(q, s_neg) + s_pos)
        if weight is not None:
            per = times(w, per + loss)
        value = _binary_reduced_error(per, times(w, loss), reduction, sample_axis)
    g = np.abs(reduce_grad(y.shape, reduction=reduction, sample_axis=sample_axis))
    return {
        "value": value,
        "input": chain(g, times(w, d_x)),
        "target": chain(g, times(w, (1.0 - label_smoothing) * d_y)),
    }
