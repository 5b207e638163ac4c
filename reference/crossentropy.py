"""Cross-entropy family: binary (probabilities, logits), softmax (class index, soft targets),
categorical on probabilities, and negative log-likelihood.

Shapes are canonical: the class axis is last, ``input`` is ``(..., C)`` and a class-index
``target`` is ``input.shape[:-1]``. A binding whose class axis is elsewhere (PyTorch's
dim 1) has its arrays moved by its adapter; that is the ``class_axis`` convention.

Conventions are keyword arguments (``reference/conventions.py``); their defaults are the
plain mathematics. ``dtype`` is the binding's compute dtype, used only to round the
constants a framework writes in its own dtype (clip bounds). A target of exactly 0
multiplying an infinite log contributes 0, the limit (``xlogy``).
"""

from __future__ import annotations

import numpy as np

from lossparity.reference._math import clip_in_dtype, log_softmax, softplus, times, xlogy
from lossparity.reference.errors import OracleError
from lossparity.reference.reduction import reduce
from lossparity.reference.trace import NO_TRACE, reading


def binary_cross_entropy(
    input, target, *, weight=None, label_smoothing=0.0, reduction="mean",
    log_min=None, prob_eps=None, prob_domain="nan", sample_axis=None, dtype=np.float32, trace=NO_TRACE,
):
    """-[y log p + (1 - y) log(1 - p)] for probabilities ``p`` (any shape), weighted elementwise."""
    p = trace("input", np.asarray(input, np.float64), reading(input, "probabilities", classes=False))
    outside = ~((p >= 0) & (p <= 1))
    if prob_domain != "nan" and outside.any():
        raise OracleError(prob_domain, f"probability {p[outside].ravel()[0]} is outside [0, 1]")
    y = np.asarray(target, np.float64)
    if label_smoothing:
        y = trace("smoothing", y * (1.0 - label_smoothing) + 0.5 * label_smoothing,
                  f"y(1-s) + s/2 with s={label_smoothing}")
    if prob_eps is not None:
        p = trace("clip", clip_in_dtype(p, prob_eps, dtype), f"clipped into [eps, 1-eps], eps={prob_eps}")
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p, log_1mp = np.log(p), np.log1p(-p)
    if log_min is not None:
        log_p, log_1mp = np.maximum(log_p, log_min), np.maximum(log_1mp, log_min)
        trace("log", np.stack([log_p, log_1mp]) if p.ndim else np.array([log_p, log_1mp]),
              f"log p and log(1-p), each clamped at {log_min}")
    else:
        trace("log", np.array([log_p, log_1mp]), "log p and log(1-p)")
    loss = -(times(y, log_p) + times(1.0 - y, log_1mp))
    if weight is not None:
        loss = times(np.broadcast_to(np.asarray(weight, np.float64), loss.shape), loss)
    loss = trace("per-element loss", loss, "-(y log p + (1-y) log(1-p))" + (" * weight" if weight is not None else ""))
    return reduce(loss, reduction=reduction, sample_axis=sample_axis, trace=trace)


def binary_cross_entropy_with_logits(
    input, target, *, weight=None, pos_weight=None, label_smoothing=0.0, reduction="mean",
    sample_axis=None, dtype=np.float32, trace=NO_TRACE,
):
    """pos_weight * y * softplus(-x) + (1 - y) * softplus(x), i.e. BCE of sigmoid(x), without overflow.

    ``pos_weight`` broadcasts against the last (class) axis as in PyTorch.
    """
    x = trace("input", np.asarray(input, np.float64), reading(
        input, "logits", classes=False, then="takes the sigmoid of each (folded into softplus)"))
    y = np.asarray(target, np.float64)
    if label_smoothing:
        y = trace("smoothing", y * (1.0 - label_smoothing) + 0.5 * label_smoothing,
                  f"y(1-s) + s/2 with s={label_smoothing}")
    pos = times(y, softplus(-x))
    if pos_weight is not None:
        pos = times(np.broadcast_to(np.asarray(pos_weight, np.float64), pos.shape), pos)
    loss = pos + times(1.0 - y, softplus(x))
    if weight is not None:
        loss = times(np.broadcast_to(np.asarray(weight, np.float64), loss.shape), loss)
    loss = trace("per-element loss", loss, "pos_weight*y*softplus(-x) + (1-y)*softplus(x)")
    return reduce(loss, reduction=reduction, sample_axis=sample_axis, trace=trace)


def _class_targets(target, n_classes, ignore_index, invalid_label, trace):
    """Mask of counted targets, the safe gather indices, and the elements that are invalid."""
    t = np.asarray(target, np.int64)
    counted = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
    invalid = counted & ((t < 0) | (t >= n_classes))
    if invalid.any():
        bad = t[invalid].ravel()[0]
        if invalid_label not in ("nan", "clamp", "wrap", "wrap_negative"):
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


def _indexed_loss(logp, target, weight, ignore_index, label_smoothing, reduction,
                  mean_by, zero_division, invalid_label, trace):
    """Shared tail of softmax cross-entropy and NLL: gather, weight, smooth, reduce."""
    n_classes = logp.shape[-1]
    counted, safe, invalid = _class_targets(target, n_classes, ignore_index, invalid_label, trace)
    nll = np.where(invalid, np.nan, -_gather(logp, safe))
    w_t = np.ones(nll.shape) if weight is None else np.asarray(weight, np.float64)[safe]
    loss = np.where(invalid, np.nan, times(w_t, nll))  # a weight of 0 must not hide the nan
    if label_smoothing:
        w = np.ones(n_classes) if weight is None else np.asarray(weight, np.float64)
        smooth = -np.sum(times(w, logp), axis=-1) / n_classes
        loss = trace("smoothing", (1.0 - label_smoothing) * loss + label_smoothing * smooth,
                     f"(1-s) * w[y] * nll + s/C * sum_c w[c] * -log p_c, s={label_smoothing}")
    loss = trace("per-element loss", loss, "w[y] * -log p[y]" if not label_smoothing else "smoothed")
    return reduce(loss, reduction=reduction, mask=counted, denom_weight=w_t, mean_by=mean_by,
                  zero_division=zero_division, trace=trace)


def softmax_cross_entropy(
    input, target, *, weight=None, ignore_index=None, label_smoothing=0.0, reduction="mean",
    mean_by="elements", zero_division="nan", invalid_label="nan", class_axis=-1,
    dtype=np.float32, trace=NO_TRACE,
):
    """-log softmax(x)[y] for logits ``(..., C)`` and class indices ``(...)``.

    ``weight`` is per class; ``ignore_index`` targets contribute 0 and are not counted;
    label smoothing mixes in the (weighted) mean over classes as PyTorch documents.
    """
    x = trace("input", np.asarray(input, np.float64),
              reading(input, "logits", classes=True, then="takes a softmax over the classes"))
    logp = trace("log_softmax", log_softmax(x), "x - logsumexp(x) over the class axis")
    return _indexed_loss(logp, target, weight, ignore_index, label_smoothing, reduction,
                         mean_by, zero_division, invalid_label, trace)


def nll_loss(
    input, target, *, weight=None, ignore_index=None, reduction="mean",
    mean_by="elements", zero_division="nan", invalid_label="nan", class_axis=-1,
    dtype=np.float32, trace=NO_TRACE,
):
    """-w[y] * input[y] for log-probabilities ``(..., C)`` and class indices ``(...)``."""
    logp = trace("input", np.asarray(input, np.float64), reading(
        input, "log-probabilities", classes=True, then="applies no activation"))
    return _indexed_loss(logp, target, weight, ignore_index, 0.0, reduction,
                         mean_by, zero_division, invalid_label, trace)


def softmax_cross_entropy_soft(
    input, target, *, weight=None, label_smoothing=0.0, reduction="mean", class_axis=-1,
    dtype=np.float32, trace=NO_TRACE,
):
    """-sum_c w[c] y_c log softmax(x)_c for logits and probability targets, both ``(..., C)``."""
    x = trace("input", np.asarray(input, np.float64),
              reading(input, "logits", classes=True, then="takes a softmax over the classes"))
    y = np.asarray(target, np.float64)
    n_classes = x.shape[-1]
    if label_smoothing:
        y = trace("smoothing", y * (1.0 - label_smoothing) + label_smoothing / n_classes,
                  f"y(1-s) + s/C with s={label_smoothing}")
    logp = trace("log_softmax", log_softmax(x), "x - logsumexp(x) over the class axis")
    terms = times(y, logp)
    if weight is not None:
        terms = times(np.asarray(weight, np.float64), terms)
    loss = trace("per-element loss", -np.sum(terms, axis=-1), "-sum_c w_c y_c log p_c")
    return reduce(loss, reduction=reduction, trace=trace)


def categorical_cross_entropy(
    input, target, *, label_smoothing=0.0, reduction="mean", prob_eps=None, renormalize=None,
    dtype=np.float32, trace=NO_TRACE,
):
    """-sum_c y_c log p_c for predicted probabilities and probability targets, both ``(..., C)``."""
    p = trace("input", np.asarray(input, np.float64), reading(input, "probabilities", classes=True))
    y = np.asarray(target, np.float64)
    n_classes = p.shape[-1]
    if label_smoothing:
        y = trace("smoothing", y * (1.0 - label_smoothing) + label_smoothing / n_classes,
                  f"y(1-s) + s/C with s={label_smoothing}")
    with np.errstate(divide="ignore", invalid="ignore"):
        if renormalize == "before_clip":
            p = trace("renormalize", p / np.sum(p, axis=-1, keepdims=True), "p / sum(p)")
        if prob_eps is not None:
            p = trace("clip", clip_in_dtype(p, prob_eps, dtype), f"clipped into [eps, 1-eps], eps={prob_eps}")
        if renormalize == "after_clip":
            p = trace("renormalize", p / np.sum(p, axis=-1, keepdims=True), "p / sum(p)")
    loss = trace("per-element loss", -np.sum(xlogy(y, p), axis=-1), "-sum_c y_c log p_c")
    return reduce(loss, reduction=reduction, trace=trace)


def sparse_categorical_cross_entropy(
    input, target, *, ignore_index=None, reduction="mean", prob_eps=None, renormalize=None,
    zero_division="nan", invalid_label="nan", dtype=np.float32, trace=NO_TRACE,
):
    """-log p[y] for predicted probabilities ``(..., C)`` and class indices ``(...)``."""
    p = trace("input", np.asarray(input, np.float64), reading(input, "probabilities", classes=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        if renormalize == "before_clip":
            p = trace("renormalize", p / np.sum(p, axis=-1, keepdims=True), "p / sum(p)")
        if prob_eps is not None:
            p = trace("clip", clip_in_dtype(p, prob_eps, dtype), f"clipped into [eps, 1-eps], eps={prob_eps}")
        if renormalize == "after_clip":
            p = trace("renormalize", p / np.sum(p, axis=-1, keepdims=True), "p / sum(p)")
        logp = trace("log", np.log(p), "log p")
    return _indexed_loss(logp, target, None, ignore_index, 0.0, reduction,
                         "elements", zero_division, invalid_label, trace)
