"""Margin losses: binary hinge (plain, squared), categorical and multiclass hinge, PyTorch's
hinge-embedding, soft-margin, multi-margin, multilabel-margin and margin-ranking losses.

Shapes are canonical (class axis last). Binary losses are elementwise over an ``input`` of any
shape with a ``target`` of the same shape holding labels (+-1; 0/1 where a convention converts
them); class losses read ``input`` as ``(..., C)`` scores and give one loss per sample.

Every loss here is built from ``max(0, z)`` ("the hinge") of a margin violation ``z``; its
slope is 1 where ``z > 0``, 0 where ``z < 0``, and at ``z == 0`` exactly (a margin exactly
met) any value in [0, 1] is a subgradient. What a framework returns there is the
``hinge_kink`` convention: ``jnp.maximum`` and ``torch.maximum`` split a tie evenly (0.5,
the plain value), ``tf.maximum`` and ``torch.clamp_min`` pass the whole slope to their first
argument (1), PyTorch's hand-written margin kernels test ``z > 0`` (0). A ``max`` over classes
that is tied splits its slope evenly among the tied entries (``jnp.max``, ``tf.reduce_max``,
``torch.amax``).

Each oracle ``f`` has a gradient ``f_grad`` with the same arguments, a dict of float64 arrays:
d sum(out) / d each differentiated argument (``Spec.wrt``), the input (and ``input2`` of the
ranking loss). Labels, +-1 or class indices, are never differentiated.
"""

from __future__ import annotations

import numpy as np

from lossparity.reference._math import sigmoid, softplus, times
from lossparity.reference.errors import OracleError
from lossparity.reference.reduction import chain, reduce, reduce_grad
from lossparity.reference.regression import flush_to_zero
from lossparity.reference.rounding import reduction_error, unit_roundoff
from lossparity.reference.trace import NO_TRACE, reading


def _hinge_slope(z, hinge_kink):
    """d max(0, z) / dz: 1 above 0, 0 below, ``hinge_kink`` at 0, NaN for NaN."""
    z = np.asarray(z, np.float64)
    return np.where(np.isnan(z), np.nan, np.where(z > 0, 1.0, np.where(z < 0, 0.0, hinge_kink)))


def _tie_share(a, axis=-1):
    """The slope of max over ``axis`` with respect to each entry: 1/k at each of the k tied
    maxima (+inf ones included), 0 elsewhere (NaN rows: NaN); an empty axis or an all -inf row
    (no candidate at all) shares nothing."""
    a = np.asarray(a, np.float64)
    if a.shape[axis] == 0:
        return np.zeros(a.shape)
    with np.errstate(invalid="ignore"):
        m = np.max(a, axis=axis, keepdims=True)
        top = (a == m) & (m > -np.inf)
        k = np.sum(top, axis=axis, keepdims=True)
        share = np.where(top, 1.0 / np.maximum(k, 1), 0.0)
    return np.where(np.isnan(m), np.nan, share)


# ============================================================================ binary hinge


def _signed_labels(target, hinge_labels, trace):
    """The +-1 labels a binary hinge multiplies by: as given, Keras' 0/1 -> -1/+1 when every target is
    0 or 1 (``"binary_if_all"``), or 2y - 1 whatever they are (``"binary"``: tf.compat.v1.losses.hinge_loss)."""
    y = np.asarray(target, np.float64)
    if hinge_labels == "binary":
        return trace("labels", 2.0 * y - 1.0, "labels read as 0/1 and converted to 2y - 1 (tf.compat.v1)")
    if hinge_labels == "binary_if_all" and np.all((y == 0) | (y == 1)):
        return trace("labels", 2.0 * y - 1.0, "every target is 0 or 1: converted to 2y - 1 (Keras)")
    return y


def _violation(input, target, margin, hinge_labels, trace, flush=False, dtype=np.float32):
    x = trace("input", np.asarray(input, np.float64), reading(input, "scores", classes=False))
    if flush:  # a subnormal score reads as +-0: at margin 0 it sits on the kink
        x = trace("flushed input", flush_to_zero(x, dtype), "subnormals read as +-0")
    y = _signed_labels(target, hinge_labels, trace)
    return x, y, trace("margin violation", margin - y * x, f"z = {margin:g} - y x")


def hinge(
    input,
    target,
    *,
    margin=1.0,
    reduction="mean",
    hinge_labels="signed",
    sample_axis=None,
    hinge_kink=0.5,
    flush_subnormals=False,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """max(0, margin - y x) elementwise, for scores ``x`` and labels ``y`` in {-1, +1}, any
    shape (same for both). ``margin=0`` is the perceptron loss max(0, -y x).

    ``hinge_labels="binary_if_all"``: when every target is 0 or 1, they are read as 2y - 1
    (Keras ``hinge``, ``squared_hinge``). ``hinge_kink`` is used by the gradient only.
    ``flush_subnormals``: subnormal scores read as +-0 (XLA and TensorFlow on CPU).
    """
    _, _, z = _violation(input, target, margin, hinge_labels, trace, flush_subnormals, dtype)
    loss = trace("per-element loss", np.maximum(z, 0.0), "max(0, z)")
    return reduce(loss, reduction=reduction, sample_axis=sample_axis, trace=trace)


def hinge_grad(
    input,
    target,
    *,
    margin=1.0,
    reduction="mean",
    hinge_labels="signed",
    sample_axis=None,
    hinge_kink=0.5,
    flush_subnormals=False,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/dx = -y where the margin is violated (z > 0), 0 where it is met with room (z < 0),
    -y * ``hinge_kink`` at z == 0."""
    _, y, z = _violation(input, target, margin, hinge_labels, NO_TRACE, flush_subnormals, dtype)
    g = reduce_grad(np.shape(z), reduction=reduction, sample_axis=sample_axis)
    return {"input": chain(g, times(_hinge_slope(z, hinge_kink), -y))}


def squared_hinge(
    input,
    target,
    *,
    reduction="mean",
    hinge_labels="signed",
    sample_axis=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """max(0, 1 - y x)^2 elementwise (see :func:`hinge` for shapes and ``hinge_labels``)."""
    _, _, z = _violation(input, target, 1.0, hinge_labels, trace)
    loss = trace("per-element loss", np.square(np.maximum(z, 0.0)), "max(0, z)^2")
    return reduce(loss, reduction=reduction, sample_axis=sample_axis, trace=trace)


def squared_hinge_grad(
    input,
    target,
    *,
    reduction="mean",
    hinge_labels="signed",
    sample_axis=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/dx = -2 y max(0, z): continuous, 0 at the kink whatever subgradient max takes."""
    _, y, z = _violation(input, target, 1.0, hinge_labels, NO_TRACE)
    g = reduce_grad(np.shape(z), reduction=reduction, sample_axis=sample_axis)
    return {"input": chain(g, -2.0 * y * np.maximum(z, 0.0))}


# ============================================================================ categorical hinge


def _categorical_parts(input, target, hinge_neg, trace, flush=False, dtype=np.float32):
    """(x, y, candidates of the negative score, neg, pos, z) of the categorical hinge; with
    ``flush`` the scores' subnormals read as +-0 (:func:`~lossparity.reference.regression.flush_to_zero`)."""
    x = trace("input", np.asarray(input, np.float64), reading(input, "scores", classes=True))
    if flush:
        x = trace("flushed input", flush_to_zero(x, dtype), "subnormals read as +-0")
    y = np.asarray(target, np.float64)
    pos = trace("positive score", np.sum(y * x, axis=-1), "pos = sum_c y_c x_c")
    prod = (1.0 - y) * x
    if hinge_neg == "masked_product":
        cand = prod  # a target class's product is 0 and competes as a score of 0 (Keras)
        note = "neg = max_c (1 - y_c) x_c over every class, a target class reading 0"
    else:
        cand = np.where(y == 1, -np.inf, prod)
        note = "neg = max over the non-target classes of (1 - y_c) x_c (-inf if none)"
    neg = trace("negative score", np.max(cand, axis=-1, initial=-np.inf), note)
    with np.errstate(invalid="ignore"):
        z = trace("margin violation", neg - pos + 1.0, "z = neg - pos + 1")
    return x, y, cand, z


def categorical_hinge(
    input,
    target,
    *,
    reduction="mean",
    hinge_neg="others",
    hinge_kink=0.5,
    flush_subnormals=False,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """max(0, 1 + neg - pos) per sample: ``input`` ``(..., C)`` scores, ``target`` one-hot
    ``(..., C)``; pos is the target class's score, neg the best other class's.

    For targets that are not one-hot the products are used as written: pos = sum_c y_c x_c,
    neg = max of (1 - y_c) x_c over the classes with y_c != 1. ``hinge_neg="masked_product"``
    (Keras) takes that max over every class, so a target class competes with a score of 0.
    """
    *_, z = _categorical_parts(input, target, hinge_neg, trace, flush_subnormals, dtype)
    loss = trace("per-sample loss", np.maximum(z, 0.0), "max(0, z)")
    return reduce(loss, reduction=reduction, trace=trace)


def categorical_hinge_grad(
    input,
    target,
    *,
    reduction="mean",
    hinge_neg="others",
    hinge_kink=0.5,
    flush_subnormals=False,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/dx_c = slope(z) ((1 - y_c) s_c - y_c), s the even share of the max among tied
    candidates (a masked target class's share carries slope 0)."""
    _, y, cand, z = _categorical_parts(input, target, hinge_neg, NO_TRACE, flush_subnormals, dtype)
    d_z = (1.0 - y) * _tie_share(cand) - y
    g = reduce_grad(np.shape(z), reduction=reduction)
    return {"input": chain(g, times(_hinge_slope(z, hinge_kink)[..., None], d_z))}


# ============================================================================ class-index helpers


def _labels(target, n_classes, invalid_label, trace):
    """Class indices, the mask of invalid ones (outside [0, C)), and safe gather indices;
    ``invalid_label`` naming an exception class raises it."""
    t = np.asarray(target, np.int64)
    invalid = (t < 0) | (t >= n_classes)
    if invalid.any():
        bad = t[invalid].ravel()[0]
        if invalid_label not in ("nan", "zeros"):
            raise OracleError(invalid_label, f"target {bad} is outside [0, {n_classes})")
        trace("invalid labels", invalid, f"{invalid_label}: target {bad} outside [0, {n_classes})")
    return t, invalid, np.where(invalid, 0, np.clip(t, 0, max(n_classes - 1, 0)))


def _one_hot(safe, invalid, n_classes):
    """One-hot rows of the labels; an invalid label's row is all 0 (``jax.nn.one_hot``)."""
    return (np.arange(n_classes) == safe[..., None]) & ~invalid[..., None]


# ============================================================================ multiclass hinge


def _multiclass_parts(input, target, margin, invalid_label, trace, flush_subnormals=False, dtype=np.float32):
    x = trace("input", np.asarray(input, np.float64), reading(input, "scores", classes=True))
    if flush_subnormals:
        x = trace("flushed input", flush_to_zero(x, dtype), "subnormals read as +-0")
    n = x.shape[-1]
    _, invalid, safe = _labels(target, n, invalid_label, trace)
    onehot = _one_hot(safe, invalid, n)
    a = trace("augmented scores", x + margin * (1.0 - onehot), f"x_c + {margin:g} [c != y]")
    return x, invalid, onehot, a


def multiclass_hinge(
    input,
    target,
    *,
    margin=1.0,
    reduction="mean",
    invalid_label="nan",
    flush_subnormals=False,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """max_c (x_c + margin [c != y]) - x_y per sample (Crammer-Singer): ``input`` ``(..., C)``
    scores, ``target`` ``(...)`` class indices. The max includes c = y (whose term is 0), so
    the loss is max(0, margin + max_{c != y} x_c - x_y); ``margin=0`` is the multiclass
    perceptron loss max_c x_c - x_y.

    A label outside [0, C) gives NaN (plain), raises (an exception class name), or with
    ``invalid_label="zeros"`` has an all-zero one-hot row (``jax.nn.one_hot``): max_c x_c + margin.
    ``flush_subnormals``: subnormal scores read as +-0 (XLA on CPU), so they tie with 0.
    """
    x, invalid, onehot, a = _multiclass_parts(input, target, margin, invalid_label, trace, flush_subnormals, dtype)
    with np.errstate(invalid="ignore"):
        loss = np.max(a, axis=-1, initial=-np.inf) - np.sum(np.where(onehot, x, 0.0), axis=-1)
    loss = np.where(invalid & (invalid_label == "nan"), np.nan, loss)
    loss = trace("per-sample loss", loss, "max_c a_c - x_y")
    return reduce(loss, reduction=reduction, trace=trace)


def multiclass_hinge_grad(
    input,
    target,
    *,
    margin=1.0,
    reduction="mean",
    invalid_label="nan",
    flush_subnormals=False,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/dx_c = s_c - [c = y], s the even share of the max among tied augmented scores (at a
    margin exactly met the target's own entry ties with the best other class: -1/2, +1/2)."""
    _, invalid, onehot, a = _multiclass_parts(input, target, margin, invalid_label, NO_TRACE, flush_subnormals, dtype)
    d = _tie_share(a) - onehot
    d = np.where((invalid & (invalid_label == "nan"))[..., None], np.nan, d)
    g = reduce_grad(np.shape(a)[:-1], reduction=reduction)
    return {"input": chain(g, d)}


# ============================================================================ PyTorch: multi-margin


def _multi_margin_parts(input, target, p, margin, weight, invalid_label, p_values, trace):
    if p_values is not None and p not in (1, 2):
        raise OracleError(p_values, f"p = {p}: only p == 1 and p == 2 are supported")
    x = trace("input", np.asarray(input, np.float64), reading(input, "scores", classes=True))
    n = x.shape[-1]
    _, invalid, safe = _labels(target, n, invalid_label, trace)
    x_y = np.take_along_axis(x, safe[..., None], axis=-1)
    others = ~_one_hot(safe, invalid, n)
    z = trace("margin violations", margin - x_y + x, f"z_i = {margin:g} - x_y + x_i")
    w = np.ones(safe.shape) if weight is None else np.asarray(weight, np.float64)[safe]
    return x, invalid, others, z, w, n


def multi_margin(
    input,
    target,
    *,
    p=1,
    margin=1.0,
    weight=None,
    reduction="mean",
    invalid_label="nan",
    p_values=None,
    hinge_kink=0.5,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """sum_{i != y} w[y] max(0, margin - x_y + x_i)^p / C per sample (Weston-Watkins, PyTorch's
    MultiMarginLoss as documented): ``input`` ``(C,)`` or ``(N, C)``, ``target`` ``()`` or ``(N,)``
    class indices, ``weight`` ``(C,)`` class weights (of the target class). ``p_values`` naming
    an exception class: p outside {1, 2} raises it.
    """
    _, invalid, others, z, w, n = _multi_margin_parts(input, target, p, margin, weight, invalid_label, p_values, trace)
    terms = trace("hinge terms", np.where(others, np.maximum(z, 0.0) ** p, 0.0), f"max(0, z_i)^{p} for i != y")
    with np.errstate(invalid="ignore", divide="ignore"):
        loss = times(w, np.sum(terms, axis=-1)) / n
    loss = trace("per-sample loss", np.where(invalid, np.nan, loss), f"w[y] * sum / C, C = {n}")
    return reduce(loss, reduction=reduction, trace=trace)


def multi_margin_grad(
    input,
    target,
    *,
    p=1,
    margin=1.0,
    weight=None,
    reduction="mean",
    invalid_label="nan",
    p_values=None,
    hinge_kink=0.5,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/dx_i = w[y] p max(0, z_i)^(p-1) slope(z_i) / C for i != y (p = 1: the hinge slope,
    ``hinge_kink`` at z_i = 0), and d/dx_y = minus their sum."""
    _, invalid, others, z, w, n = _multi_margin_parts(
        input, target, p, margin, weight, invalid_label, p_values, NO_TRACE
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = _hinge_slope(z, hinge_kink) if p == 1 else p * np.maximum(z, 0.0) ** (p - 1)
        d = np.where(others, slope, 0.0) * (w / n)[..., None]
    d = d - (~others) * np.sum(d, axis=-1, keepdims=True)
    d = np.where(invalid[..., None], np.nan, d)
    g = reduce_grad(np.shape(z)[:-1], reduction=reduction)
    return {"input": chain(g, d)}


# ============================================================================ PyTorch: multilabel margin


def _multilabel_parts(input, target, invalid_label, trace):
    """x, per-sample lists of target classes (up to the first -1), and the is-target mask."""
    x = trace("input", np.asarray(input, np.float64), reading(input, "scores", classes=True))
    n = x.shape[-1]
    t = np.asarray(target, np.int64)
    # Only the entries before a row's first -1 are targets: everything after is padding, even
    # a valid index or an out-of-range one.
    before = np.cumsum(t == -1, axis=-1) == 0
    _labels(np.where(before, t, 0), n, invalid_label, trace)
    safe = np.where(before & (t >= 0) & (t < n), t, 0)
    bad = np.any(before & ((t < 0) | (t >= n)), axis=-1)
    is_target = np.zeros(x.shape, bool)
    for idx in np.ndindex(t.shape[:-1]):
        is_target[idx][safe[idx][before[idx]]] = True
    trace("target classes", is_target, "the indices before the first -1")
    return x, n, before, safe, is_target, bad


def multilabel_margin(
    input,
    target,
    *,
    reduction="mean",
    invalid_label="nan",
    hinge_kink=0.5,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """sum_{j} sum_{i not a target} max(0, 1 - (x[y_j] - x_i)) / C per sample: ``input``
    ``(C,)`` or ``(N, C)`` scores, ``target`` the same shape of class indices, read up to the
    first -1 (PyTorch MultiLabelMarginLoss). A class listed twice counts twice. An index
    outside [0, C) before the first -1 gives NaN (or raises, ``invalid_label``).
    """
    x, n, before, safe, is_target, bad = _multilabel_parts(input, target, invalid_label, trace)
    x_t = np.take_along_axis(x, safe, axis=-1)  # (..., J)
    z = 1.0 - x_t[..., :, None] + x[..., None, :]  # (..., J, C)
    use = before[..., :, None] & ~is_target[..., None, :]
    terms = np.where(use, np.maximum(z, 0.0), 0.0)
    loss = np.sum(terms, axis=(-2, -1)) / n if n else np.full(x.shape[:-1], np.nan)
    loss = trace("per-sample loss", np.where(bad, np.nan, loss), f"sum of max(0, 1 - x[y_j] + x_i) / C, C = {n}")
    return reduce(loss, reduction=reduction, trace=trace)


def multilabel_margin_grad(
    input,
    target,
    *,
    reduction="mean",
    invalid_label="nan",
    hinge_kink=0.5,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Each counted pair (j, i) adds slope(z)/C to x_i and takes it from x[y_j]."""
    x, n, before, safe, is_target, bad = _multilabel_parts(input, target, invalid_label, NO_TRACE)
    x_t = np.take_along_axis(x, safe, axis=-1)
    z = 1.0 - x_t[..., :, None] + x[..., None, :]
    use = before[..., :, None] & ~is_target[..., None, :]
    s = np.where(use, _hinge_slope(z, hinge_kink), 0.0) / max(n, 1)  # (..., J, C)
    d = np.sum(s, axis=-2)  # into each x_i
    out_of_target = np.sum(s, axis=-1)  # out of each x[y_j]
    for idx in np.ndindex(x.shape[:-1]):
        np.add.at(d[idx], safe[idx], -out_of_target[idx])
    d = np.where(bad[..., None], np.nan, d)
    g = reduce_grad(np.shape(x)[:-1], reduction=reduction)
    return {"input": chain(g, d)}


# ============================================================================ PyTorch: binary margin losses


def _sign_terms(input, target, invalid_sign):
    x = np.asarray(input, np.float64)
    y = np.asarray(target, np.float64)
    if invalid_sign == "both":  # torch: where(y != 1, hinge, 0) + where(y != -1, x, 0)
        return x, y != 1, y != -1, np.zeros(y.shape, bool)
    odd = ~((y == 1) | (y == -1))
    return x, y == -1, y == 1, odd


def hinge_embedding(
    input,
    target,
    *,
    margin=1.0,
    reduction="mean",
    invalid_sign="nan",
    hinge_kink=0.5,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """x where y = 1, max(0, margin - x) where y = -1, elementwise (PyTorch
    HingeEmbeddingLoss; ``input`` is a distance, any shape). A target outside {-1, 1} gives
    NaN, or with ``invalid_sign="both"`` both terms (PyTorch's ``where`` form)."""
    trace("input", np.asarray(input, np.float64), reading(input, "distances", classes=False))
    x, neg, pos, odd = _sign_terms(input, target, invalid_sign)
    z = margin - x
    loss = np.where(neg, np.maximum(z, 0.0), 0.0) + np.where(pos, x, 0.0)
    loss = trace("per-element loss", np.where(odd, np.nan, loss), f"x if y = 1, max(0, {margin:g} - x) if y = -1")
    return reduce(loss, reduction=reduction, trace=trace)


def hinge_embedding_grad(
    input,
    target,
    *,
    margin=1.0,
    reduction="mean",
    invalid_sign="nan",
    hinge_kink=0.5,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/dx = 1 where y = 1, -slope(margin - x) where y = -1 (both summed under "both")."""
    x, neg, pos, odd = _sign_terms(input, target, invalid_sign)
    d = np.where(neg, -_hinge_slope(margin - x, hinge_kink), 0.0) + np.where(pos, 1.0, 0.0)
    g = reduce_grad(np.shape(x), reduction=reduction)
    return {"input": chain(g, np.where(odd, np.nan, d))}


def soft_margin(input, target, *, reduction="mean", dtype=np.float32, trace=NO_TRACE):
    """log(1 + exp(-y x)) elementwise, any shape, as a softplus (no overflow for large -y x)."""
    x = trace("input", np.asarray(input, np.float64), reading(input, "scores", classes=False))
    y = np.asarray(target, np.float64)
    loss = trace("per-element loss", softplus(-y * x), "softplus(-y x)")
    return reduce(loss, reduction=reduction, trace=trace)


def soft_margin_grad(input, target, *, reduction="mean", dtype=np.float32, trace=NO_TRACE):
    """d/dx = -y sigmoid(-y x)."""
    x, y = np.asarray(input, np.float64), np.asarray(target, np.float64)
    g = reduce_grad(np.shape(x), reduction=reduction)
    return {"input": chain(g, times(-y, sigmoid(-y * x)))}


def margin_ranking(
    input,
    target,
    *,
    input2,
    margin=0.0,
    reduction="mean",
    hinge_kink=0.5,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """max(0, -y (x1 - x2) + margin) elementwise: ``input`` = x1, ``input2`` = x2 and ``target``
    y (+-1: which of the two should rank higher) of one shape."""
    x1 = trace("input", np.asarray(input, np.float64), reading(input, "scores", classes=False))
    y = np.asarray(target, np.float64)
    with np.errstate(invalid="ignore"):
        z = -y * (x1 - np.asarray(input2, np.float64)) + margin
    z = trace("margin violation", z, f"z = -y (x1 - x2) + {margin:g}")
    return reduce(trace("per-element loss", np.maximum(z, 0.0), "max(0, z)"), reduction=reduction, trace=trace)


def margin_ranking_grad(
    input,
    target,
    *,
    input2,
    margin=0.0,
    reduction="mean",
    hinge_kink=0.5,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/dx1 = -y slope(z), d/dx2 = +y slope(z)."""
    y = np.asarray(target, np.float64)
    with np.errstate(invalid="ignore"):
        z = -y * (np.asarray(input, np.float64) - np.asarray(input2, np.float64)) + margin
    d = times(_hinge_slope(z, hinge_kink), y)
    g = reduce_grad(np.shape(z), reduction=reduction)
    return {"input": chain(g, -d), "input2": chain(g, d)}


# ============================================================================ rounding models
# ``Spec.error_model`` of the categorical hinge: the first-order bound, in units of the compute
# dtype's unit roundoff u, of computing it in that dtype (``reference/rounding.py`` states the
# model). It returns {"value": ..., "input": ...} in the shapes of the value and gradient.

#: "hinge_terms": Keras' sum(y * x), max((1 - y) * x), neg - pos + 1.0 and maximum(., 0) in the
#: input dtype (keras/src/losses/losses.py, categorical_hinge, at v3.15.1).
CATEGORICAL_HINGE_STAGES = ("hinge_terms",)


def categorical_hinge_error(
    input,
    target,
    *,
    reduction="mean",
    hinge_neg="others",
    hinge_kink=0.5,
    flush_subnormals=False,
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`categorical_hinge` with ``hinge_terms`` (C classes):

    - pos = sum_c y_c x_c: the products' u |y_c x_c| and the sum's (C - 1) u sum |y_c x_c|:
      C u sum |y_c x_c|;
    - neg = max_c (1 - y_c) x_c: 1 - y_c and the product, 2 u |neg| (exact for one-hot y,
      where max picks an exact score);
    - z = neg - pos + 1: u |neg - pos| and u |z|.

    err(z) = u (C sum |y x| + 2 |neg| + |neg - pos| + |z|) per sample; max(z, 0) adds nothing
    (|max(a, 0) - max(b, 0)| <= |a - b|); for a small z (a margin nearly met) the terms of
    about 1 cancel and the bound is a few u absolute. The reduction costs what
    :func:`~lossparity.reference.rounding.reduction_error` says.

    The slope is 1, -1 or a share of the max: exact, times the cotangent g (its rounding: u
    |g slope|), except where the computed z may be on the other side of the kink (|z| <=
    err(z)): there it may be anything between 0 and the whole slope, |g slope| u / u.
    """
    u = unit_roundoff(dtype)
    x, y, cand, z = _categorical_parts(input, target, hinge_neg, NO_TRACE, flush_subnormals, dtype)
    with np.errstate(invalid="ignore"):
        pos, neg = np.sum(y * x, axis=-1), np.max(cand, axis=-1, initial=-np.inf)
        neg = np.where(np.isfinite(neg), neg, 0.0)
        err = x.shape[-1] * np.sum(np.abs(y * x), axis=-1) + 2 * np.abs(neg) + np.abs(neg - pos) + np.abs(z)
        loss = np.maximum(z, 0.0)
        g = reduce_grad(np.shape(z), reduction=reduction)
        slope = np.abs(chain(g, times(_hinge_slope(z, 1.0)[..., None], (1.0 - y) * _tie_share(cand) - y)))
        full = np.abs(chain(g, (1.0 - y) * _tie_share(cand) - y))
        d_x = np.where((np.abs(z) <= u * err)[..., None], full / u, slope)
    return {"value": reduction_error(err, loss, g, reduction), "input": d_x}


#: "augmented_scores": optax's scores + 1.0 - one_hot(labels) in the scores' dtype (multiclass_hinge_loss).
MULTICLASS_HINGE_STAGES = ("augmented_scores",)


def multiclass_hinge_error(
    input,
    target,
    *,
    margin=1.0,
    reduction="mean",
    invalid_label="nan",
    flush_subnormals=False,
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`multiclass_hinge` as optax computes it in the scores' dtype
    (``optax/losses/_classification.py``, v0.2.8, multiclass_hinge_loss: jnp.max(scores + 1.0 -
    one_hot(labels)) - sum(scores one_hot(labels))): the augmented scores are rounded to the dtype,
    and jnp.max splits its slope evenly among the maxima of the rounded scores, not the exact ones.

    The rounded augmented scores are derived, each candidate a value the computation may give:
    fl(fl(x + margin) - [c = y]) (two roundings, the expression's order), fl(x + margin - [c = y])
    (one, where XLA fuses the sum in float32 and rounds once) and the exact ones (none). Rounding
    can make a tie (a score of -1.0e-5 plus 1 rounds to 1 in float16, onto other classes' 1) or
    break one. For each candidate the slope is tie_share(a) - onehot, exactly; the allowance of the
    input's gradient is the largest move from the oracle's over the candidates, times the cotangent
    |g|, plus the cotangent's rounding (u |g slope|). The value: |max(a) - max(exact a)| over the
    candidates plus the final subtraction's rounding (u |loss|); sum(scores one_hot) is exact (one
    nonzero product). At margin 0 (the perceptron) nothing is augmented: the exact scores only.
    {"value", "input"} in units of u."""
    u = unit_roundoff(dtype)
    x, invalid, onehot, a = _multiclass_parts(input, target, margin, invalid_label, NO_TRACE, flush_subnormals, dtype)
    candidates = [a]
    if margin:
        with np.errstate(over="ignore", invalid="ignore"):
            xd = x.astype(dtype)
            plus = (xd + np.asarray(margin, dtype)).astype(dtype)
            two = (plus - onehot.astype(dtype)).astype(dtype).astype(np.float64)
            one = (x + margin - onehot).astype(dtype).astype(np.float64)
        candidates += [two, one]
    due = _tie_share(a) - onehot
    with np.errstate(invalid="ignore"):
        top = np.max(a, axis=-1, initial=-np.inf)
        loss = top - np.sum(np.where(onehot, x, 0.0), axis=-1)
        moved_top = np.zeros(top.shape)
        moved = np.zeros(a.shape)
        for c in candidates:
            gap = np.abs(np.max(c, axis=-1, initial=-np.inf) - top)
            moved_top = np.fmax(moved_top, np.where(np.isfinite(gap), gap, 0.0))
            moved = np.fmax(moved, np.abs((_tie_share(c) - onehot) - due))
        g = reduce_grad(np.shape(loss), reduction=reduction)
        per = moved_top / u + np.where(np.isfinite(loss), np.abs(loss), 0.0)
        d_x = np.abs(chain(g, moved)) / u + np.abs(chain(g, due))
    return {"value": reduction_error(per, loss, g, reduction), "input": d_x}


#: "squared_margin": Keras' mean(square(maximum(1 - y x, 0)), axis=-1) in the input dtype
#: (keras/src/losses/losses.py, squared_hinge, at v3.15.1).
SQUARED_HINGE_STAGES = ("squared_margin",)


def squared_hinge_error(
    input,
    target,
    *,
    reduction="mean",
    hinge_labels="signed",
    sample_axis=None,
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`squared_hinge` with ``squared_margin``, per element:

    - z = 1 - y x: the product's u |y x| (0 for y = +-1) and the difference's u |z|:
      err(z) = u (|y x| + |z|);
    - max(z, 0)^2: 2 |z| err(z) carried and the square's u z^2; then the mean over the last
      axis (the same as :mod:`~lossparity.reference.regression`'s function forms) and the
      reduction.

    Slope -2 y max(z, 0) g: z's error carried, 2 |y g| err(z), and the products with y and g
    and g's own rounding, 3 u |slope|; where the computed z may be on either side of 0
    (z > -err(z)), else 0 exactly.
    """
    u = unit_roundoff(dtype)
    _, y, z = _violation(input, target, 1.0, hinge_labels, NO_TRACE)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(y * np.asarray(input, np.float64)) + np.abs(z)
        h = np.maximum(z, 0.0)
        per = np.where(z > 0, 2 * h * err + np.square(h), 0.0)
        loss = np.square(h)
        if sample_axis == "mean":
            n = loss.shape[-1]
            mean = np.mean(loss, axis=-1)
            per = np.mean(per, axis=-1) + (n - 1) * np.mean(np.abs(loss), axis=-1) + np.abs(mean)
            loss = mean
        value = reduction_error(per, loss, reduce_grad(np.shape(loss), reduction=reduction), reduction)
        g = np.abs(reduce_grad(np.shape(z), reduction=reduction, sample_axis=sample_axis))
        slope = 2 * np.abs(y) * h
        d_x = np.where(z > -u * err, g * (2 * np.abs(y) * err + 3 * slope), 0.0)
    return {"value": value, "input": d_x}
