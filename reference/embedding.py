"""Embedding losses: cosine similarity, cosine embedding, triplet margin, NT-Xent and Circle.

Shapes: the embedding (feature) axis is the last one (``axis`` moves another there first);
every leading axis is a batch axis, and the per-sample losses go to the shared reduction
(``reference/reduction.py``). Extra embeddings (``input2``, ``positive``, ``negative``) have
the input's shape; labels (``target`` of ``cosine_embedding``, ``ntxent``, ``circle``) are
integers, never differentiated.

Each oracle ``f`` has ``f_grad`` with the same arguments, returning d sum(out) / d each
differentiated array (``Spec.wrt``) as float64 arrays of its shape. At the kinks of
``max(x, 0)`` the slope is taken as passed at equality (torch's ``clamp_min``); a floor on a
norm that is active makes the norm a constant (no slope through it).
"""

from __future__ import annotations

import math

import numpy as np

from lossparity.reference._math import machine_eps, sigmoid, softplus
from lossparity.reference.errors import OracleError
from lossparity.reference.reduction import chain, reduce, reduce_grad
from lossparity.reference.rounding import reduction_error
from lossparity.reference.trace import NO_TRACE


def _reading(x, what):
    """How the input is read, for the ``input`` stage of a trace."""
    shape = np.shape(x)
    if len(shape) < 1:
        return "reads a scalar, which has no feature axis"
    n = int(np.prod(shape[:-1]))
    batch = "one unbatched vector" if len(shape) == 1 else f"{n} vectors (batch shape {tuple(shape[:-1])})"
    return f"reads {batch} of {shape[-1]} features each as {what}, the last axis being the feature axis"


def _f(x):
    return np.asarray(x, np.float64)


def _norm(x):
    """sqrt(sum x^2) over the last axis, scaled by max |x| so that no square overflows or underflows."""
    m = np.max(np.abs(x), axis=-1) if x.shape[-1] else np.zeros(x.shape[:-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(m[..., None] > 0, x / np.where(m > 0, m, 1.0)[..., None], 0.0)
        return m * np.sqrt(np.sum(scaled * scaled, axis=-1))


def _in_dtype(value, dtype):
    """A Python constant as the framework writes it into a tensor of ``dtype``."""
    with np.errstate(over="ignore"):
        return float(np.asarray(value, dtype=dtype).astype(np.float64))


def _norms(x, sq_eps, norm_floor, sq_add, dtype):
    """The (floored) norm of each vector over the last axis, and where it is a plain sqrt(sum x^2).

    ``sq_eps``: the squared norm is clipped from below (optax: sqrt(max(s, eps)), the same as
    max(|x|, sqrt(eps))); ``norm_floor``: Keras' x * min(rsqrt(s), 1/floor), 1/floor rounded
    to ``dtype`` (float16's 1e7 is inf: no floor); ``sq_add``: torch's sqrt(s + 1e-12), written
    hypot(|x|, 1e-6) (always smooth). Norms are never squared, so nothing overflows.
    """
    n = _norm(x)
    live = np.ones(n.shape, bool)
    if sq_add is not None:
        n = np.hypot(n, math.sqrt(_in_dtype(sq_add, dtype)))
    if sq_eps:
        root = math.sqrt(_in_dtype(sq_eps, dtype))
        live &= n >= root
        n = np.maximum(n, root)
    if norm_floor is not None:
        with np.errstate(divide="ignore"):
            floor = 1.0 / _in_dtype(1.0 / norm_floor, dtype)
        live &= n >= floor
        n = np.maximum(n, floor)
    return n, live


def _cos_and_grads(a, b, sq_eps=0.0, norm_floor=None, sq_add=None, dtype=np.float32):
    """cos(a, b) over the last axis with floored norms, and d cos/da, d cos/db."""
    na, la = _norms(a, sq_eps, norm_floor, sq_add, dtype)
    nb, lb = _norms(b, sq_eps, norm_floor, sq_add, dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        ua, ub = a / na[..., None], b / nb[..., None]
        cos = np.sum(ua * ub, axis=-1)
        # d/da of dot / (na nb): b/(na nb), minus cos a/na^2 where na follows a (not floored)
        da = ub / na[..., None] - np.where(la, cos / na, 0.0)[..., None] * ua
        db = ua / nb[..., None] - np.where(lb, cos / nb, 0.0)[..., None] * ub
    return cos, da, db


def _one_minus_cos(a, b, sq_eps, norm_floor, dtype, fallback):
    """1 - cos as |u - v|^2 / 2 for the unit vectors u, v where neither norm is floored: near
    parallel vectors keep their relative accuracy, which 1 - (rounded cos) loses entirely."""
    na, la = _norms(a, sq_eps, norm_floor, None, dtype)
    nb, lb = _norms(b, sq_eps, norm_floor, None, dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = a / na[..., None] - b / nb[..., None]
        half = 0.5 * np.sum(diff * diff, axis=-1)
    return np.where(la & lb & (na > 0) & (nb > 0), half, fallback)


_FORM = {"similarity": (0.0, 1.0, "cos"), "negative": (0.0, -1.0, "-cos"), "distance": (1.0, -1.0, "1 - cos")}


def cosine_of_nothing(cosine_form="similarity", **_):
    """The loss of a row with no entry included (optax's ``where``, ``reference/masked.py``): a
    cosine of sums over nothing, 0, in the binding's form (``cosine_distance``: 1 - 0)."""
    return _FORM[cosine_form][0]


def cosine_similarity(
    input,
    target,
    *,
    epsilon=0.0,
    axis=-1,
    reduction="mean",
    cosine_form="similarity",
    norm_floor=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """cos(input, target) over ``axis``, one value per sample.

    ``epsilon`` clips each squared norm from below (optax: sqrt(max(|x|^2, eps)); 0 is the
    plain cosine, NaN for a zero vector). Conventions: ``cosine_form`` "negative" returns
    -cos (Keras), "distance" 1 - cos (optax cosine_distance); ``norm_floor`` divides by
    max(|x|, floor) in Keras' rsqrt form, so a zero vector gives 0.
    """
    a = np.moveaxis(_f(trace("input", input, _reading(input, "embeddings"))), axis, -1)
    b = np.moveaxis(_f(target), axis, -1)
    cos, _, _ = _cos_and_grads(a, b, epsilon, norm_floor, None, dtype)
    cos = trace("cosine", cos, "dot / (|a| |b|), norms floored")
    off, sign, note = _FORM[cosine_form]
    loss = off + sign * cos
    if cosine_form == "distance":
        loss = _one_minus_cos(a, b, epsilon, norm_floor, dtype, loss)
    loss = trace("per-sample loss", loss, note)
    return reduce(loss, reduction=reduction, trace=trace)


def cosine_similarity_grad(
    input,
    target,
    *,
    epsilon=0.0,
    axis=-1,
    reduction="mean",
    cosine_form="similarity",
    norm_floor=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/da = b/(|a||b|) - cos a/|a|^2 (the second term 0 where |a| is floored), times the
    sign of ``cosine_form``; likewise for the target."""
    a, b = np.moveaxis(_f(input), axis, -1), np.moveaxis(_f(target), axis, -1)
    cos, da, db = _cos_and_grads(a, b, epsilon, norm_floor, None, dtype)
    sign = _FORM[cosine_form][1]
    g = reduce_grad(cos.shape, reduction=reduction)
    return {"input": np.moveaxis(chain(g, sign * da), -1, axis), "target": np.moveaxis(chain(g, sign * db), -1, axis)}


def unit_cosine_distance(input, target, *, axis=-1, reduction="mean", dtype=np.float32, trace=NO_TRACE):
    """1 - sum(input * target, axis) with the summed axis kept (extent 1), for inputs documented as
    unit-normalised (tf.compat.v1.losses.cosine_distance): nothing is normalised, so for unit vectors it
    is 1 - cos, and for any others the formula itself (1 minus the dot product), which is what the
    documented computation gives. The per-vector losses have the input's shape with ``axis`` of extent 1
    (tf.compat.v1's weights broadcast against that shape), then ``reduction``."""
    a = np.asarray(trace("input", input, _reading(input, "embeddings")), np.float64)
    b = np.asarray(target, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        dot = np.sum(a * b, axis=axis, keepdims=True)
    loss = trace("per-vector loss", 1.0 - dot, "1 - sum(x * y) over the axis, kept (no normalisation)")
    return reduce(loss, reduction=reduction, trace=trace)


def unit_cosine_distance_grad(input, target, *, axis=-1, reduction="mean", dtype=np.float32, trace=NO_TRACE):
    """d/dx = -y and d/dy = -x, each times its vector's cotangent (the kept axis broadcasts along the vector)."""
    a, b = np.asarray(input, np.float64), np.asarray(target, np.float64)
    shape = tuple(1 if i == axis % a.ndim else n for i, n in enumerate(a.shape))  # the losses': axis kept
    g = np.broadcast_to(np.asarray(reduce_grad(shape, reduction=reduction), np.float64).reshape(shape), a.shape)
    return {"input": chain(g, -b), "target": chain(g, -a)}


def _embedding_terms(input, input2, target, margin, sq_norm_add, dtype):
    a, b = _f(input), _f(input2)
    y = np.asarray(target)
    cos, da, db = _cos_and_grads(a, b, 0.0, None, sq_norm_add, dtype)
    pos, neg = y == 1, y == -1
    return cos, da, db, pos, neg


def cosine_embedding(
    input,
    target,
    *,
    input2,
    margin=0.0,
    reduction="mean",
    sq_norm_add=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """1 - cos(x1, x2) where the target is 1, max(0, cos - margin) where it is -1, 0 for any
    other target; x1 = ``input``, x2 = ``input2`` are ``(N, D)`` or ``(D,)``, the target ``(N,)``
    or ``()``. ``sq_norm_add`` adds a constant to each squared norm (torch: 1e-12, in the
    input dtype), so a zero vector has cos 0.
    """
    trace("input", input, _reading(input, "embeddings"))
    cos, _, _, pos, neg = _embedding_terms(input, input2, target, margin, sq_norm_add, dtype)
    cos = trace("cosine", cos, "dot / sqrt((|x1|^2 + e)(|x2|^2 + e))")
    loss = np.where(pos, 1.0 - cos, np.where(neg, np.maximum(cos - margin, 0.0), 0.0))
    loss = trace("per-sample loss", loss, f"1 - cos (y=1), max(0, cos - {margin}) (y=-1)")
    return reduce(loss, reduction=reduction, trace=trace)


def cosine_embedding_grad(
    input,
    target,
    *,
    input2,
    margin=0.0,
    reduction="mean",
    sq_norm_add=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """-dcos where y = 1; dcos where y = -1 and cos >= margin (passed at equality, torch's
    clamp_min); 0 elsewhere."""
    cos, da, db, pos, neg = _embedding_terms(input, input2, target, margin, sq_norm_add, dtype)
    coef = np.where(pos, -1.0, np.where(neg & (cos - margin >= 0), 1.0, 0.0))
    g = reduce_grad(cos.shape, reduction=reduction)
    return {"input": chain(g, coef[..., None] * da), "input2": chain(g, coef[..., None] * db)}


# ----------------------------------------------------------------------------- triplet margin


def _distance(x, y, p, eps, distance, distance_eps, power_abs, dtype):
    """d(x, y) over the last axis and its slope in x (the slope in y is minus it for the
    p-norm; for the cosine distance it is returned too): (d, dd/dx, dd/dy)."""
    if distance == "cosine":  # 1 - cos with each norm floored at eps (torch cosine_similarity)
        floor = eps if eps else None
        cos, dx, dy = _cos_and_grads(x, y, 0.0, floor, None, np.float64)
        return _one_minus_cos(x, y, 0.0, floor, np.float64, 1.0 - cos), -dx, -dy
    v = x - y
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if distance_eps == "difference":  # torch pairwise_distance: |x - y + eps|_p
            v = v + _in_dtype(eps, dtype)
            shift = 0.0
        else:  # optax: (sum |x - y|^p + eps)^(1/p)
            shift = _in_dtype(eps, dtype)
        m = np.max(np.abs(v), axis=-1, keepdims=True)
        if power_abs:
            if p == 1:
                s = np.sum(np.abs(v), axis=-1)
                d = s + shift
                slope = np.sign(v)
                return d, slope, -slope
            if shift == 0.0:  # scaled by the largest |v| so that |v|^p neither overflows nor underflows
                r = np.where(m > 0, np.abs(v) / np.where(m > 0, m, 1.0), 0.0)
                d = m[..., 0] * np.sum(r**p, axis=-1) ** (1.0 / p)
            else:
                d = (np.sum(np.abs(v) ** p, axis=-1) + shift) ** (1.0 / p)
            # d|v|_p/dv = sign(v) |v|^(p-1) / d^(p-1); 0 where d = 0 (torch's norm backward)
            slope = np.where(
                d[..., None] > 0, np.sign(v) * (np.abs(v) / np.where(d > 0, d, 1.0)[..., None]) ** (p - 1), 0.0
            )
        else:  # no absolute value: sum v^p (odd p: a signed sum, not a norm)
            s = np.sum(np.power(v, p), axis=-1) + shift
            d = np.power(s, 1.0 / p)
            slope = np.power(v, p - 1) * np.power(s, 1.0 / p - 1.0)[..., None]
    return d, slope, -slope


def _triplet_parts(
    input, positive, negative, margin, p, eps, swap, axis, distance, distance_eps, power_abs, margin_domain, dtype
):
    if margin_domain is not None and not margin > 0:
        raise OracleError(margin_domain, f"margin must be greater than 0, got {margin}")
    a, pp, nn = (np.moveaxis(_f(x), axis, -1) for x in (input, positive, negative))
    args = (p, eps, distance, distance_eps, power_abs, dtype)
    dp, dp_a, dp_p = _distance(a, pp, *args)
    dn, dn_a, dn_n = _distance(a, nn, *args)
    swapped = np.zeros(dn.shape)  # the share of the negative distance's slope that d(p, n) takes
    ds, ds_p, ds_n = dn, None, None
    if swap:
        ds, ds_p, ds_n = _distance(pp, nn, *args)
        swapped = np.where(ds < dn, 1.0, np.where(ds == dn, 0.5, 0.0))  # a tie splits, as torch.minimum
    dneg = np.minimum(dn, ds)
    return dp, dneg, (dp_a, dp_p, dn_a, dn_n, ds_p, ds_n, swapped)


def triplet_margin(
    input,
    *,
    positive,
    negative,
    margin=1.0,
    p=2.0,
    eps=0.0,
    swap=False,
    axis=-1,
    distance="pairwise",
    reduction="mean",
    distance_eps="difference",
    power_abs=True,
    margin_domain=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """max(margin + d(a, p) - d(a, n), 0) per sample, a = ``input`` (the anchor).

    ``distance="pairwise"``: the p-norm of the difference over the last axis, with ``eps``
    added to the difference (``distance_eps="difference"``, torch's pairwise_distance) or to
    the sum of powers before the root (``"power_sum"``, optax); ``power_abs=False`` raises the
    differences to the power without their absolute value (optax). ``distance="cosine"``:
    1 - cos, each norm floored at ``eps`` (torch's cosine_similarity). ``swap`` uses
    min(d(a, n), d(p, n)). ``margin_domain``: a margin <= 0 raises that error (torch).
    """
    trace("input", input, _reading(input, "anchor embeddings"))
    dp, dneg, _ = _triplet_parts(
        input, positive, negative, margin, p, eps, swap, axis, distance, distance_eps, power_abs, margin_domain, dtype
    )
    trace(
        "distances",
        np.stack([dp, dneg]),
        "d(anchor, positive), d(anchor, negative)" + (" or d(positive, negative)" if swap else ""),
    )
    loss = trace("per-sample loss", np.maximum(margin + dp - dneg, 0.0), f"max({margin} + d_pos - d_neg, 0)")
    return reduce(loss, reduction=reduction, trace=trace)


def triplet_margin_grad(
    input,
    *,
    positive,
    negative,
    margin=1.0,
    p=2.0,
    eps=0.0,
    swap=False,
    axis=-1,
    distance="pairwise",
    reduction="mean",
    distance_eps="difference",
    power_abs=True,
    margin_domain=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Slopes of the distances where the hinge is active (at equality too, torch's clamp_min);
    with ``swap``, the negative distance's slope goes to whichever pair was the closer, half to
    each at a tie (torch.minimum and jnp.minimum)."""
    dp, dneg, (dp_a, dp_p, dn_a, dn_n, ds_p, ds_n, sw) = _triplet_parts(
        input, positive, negative, margin, p, eps, swap, axis, distance, distance_eps, power_abs, margin_domain, dtype
    )
    hinge = margin + dp - dneg
    # the hinge's slope multiplies the distances' slopes (0 where inactive, and for a NaN
    # hinge, as jax.lax.max and torch's clamp_min give): a NaN slope stays NaN, as in autodiff
    on = np.where(hinge >= 0, 1.0, 0.0)[..., None]
    sw = sw[..., None]
    zero = np.zeros_like(dp_a)
    with np.errstate(invalid="ignore"):
        g_a = on * (dp_a - (1.0 - sw) * dn_a)
        g_p = on * (dp_p - (sw * ds_p if ds_p is not None else zero))
        g_n = on * (-(1.0 - sw) * dn_n - (sw * ds_n if ds_n is not None else zero))
    g = reduce_grad(dp.shape, reduction=reduction)
    return {k: np.moveaxis(chain(g, v), -1, axis) for k, v in (("input", g_a), ("positive", g_p), ("negative", g_n))}


# ----------------------------------------------------------------------------- NT-Xent


def _unit_rows(e, sq_norm_eps, dtype):
    """Rows of ``e`` divided by their norms, squared norms clipped at ``sq_norm_eps``."""
    eps = machine_eps(dtype) if sq_norm_eps == "finfo" else float(sq_norm_eps or 0.0)
    n, live = _norms(e, eps, None, None, dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        return e / n[:, None], n, live


def _rows(input, target):
    """Embeddings as rows (N, D) and labels (N,): a single (D,) embedding is one row, and
    further batch axes are flattened into N."""
    e, labels = _f(input), np.asarray(target)
    return e.reshape(-1, e.shape[-1]), labels.reshape(-1)


def _ntxent_parts(input, target, temperature, sq_norm_eps, dtype):
    e, labels = _rows(input, target)
    u, n, live = _unit_rows(e, sq_norm_eps, dtype)
    s = (u @ u.T) / temperature
    same = labels[:, None] == labels[None, :]
    pos = same & ~np.eye(len(labels), dtype=bool)
    neg = ~same
    return e, u, n, live, s, pos, neg


def ntxent(input, target, *, temperature=0.07, sq_norm_eps=None, dtype=np.float32, trace=NO_TRACE):
    """NT-Xent of embeddings ``(N, D)`` with group labels ``(N,)``: the mean over positive pairs
    (i, j) (same label, i != j) of -s_ij + log(exp(s_ij) + sum_{k: other label} exp(s_ik)),
    s = cos / temperature. A batch with no positive pair is 0/0 = NaN (slope 0). ``sq_norm_eps``:
    each squared norm is clipped from below ("finfo": the dtype's machine epsilon, optax).
    """
    trace("input", input, _reading(input, "embeddings"))
    _, _, _, _, s, pos, neg = _ntxent_parts(input, target, temperature, sq_norm_eps, dtype)
    s = trace("similarities", s, f"cos / {temperature}")
    terms = []
    for i, j in zip(*np.nonzero(pos)):
        others = np.append(s[i][neg[i]], s[i, j])
        terms.append(np.logaddexp.reduce(others) - s[i, j])
    trace("pair losses", np.array(terms), "-log softmax of each positive against the row's negatives")
    with np.errstate(invalid="ignore"):
        total = np.float64(np.sum(terms)) / len(terms) if terms else np.float64(np.nan)
    return trace("reduction", total, "mean over positive pairs")


def ntxent_grad(input, target, *, temperature=0.07, sq_norm_eps=None, dtype=np.float32, trace=NO_TRACE):
    """Through s = u u^T / T, u = e / |e|: d/de_i = P_i (sum_k (G_ik + G_ki) u_k) / (T |e_i|),
    P_i = I - u_i u_i^T (I where the norm is floored), G = dL/ds."""
    e, u, n, live, s, pos, neg = _ntxent_parts(input, target, temperature, sq_norm_eps, dtype)
    pairs = list(zip(*np.nonzero(pos)))
    G = np.zeros(s.shape)
    for i, j in pairs:
        idx = np.append(np.nonzero(neg[i])[0], j)
        with np.errstate(invalid="ignore"):
            w = np.exp(s[i, idx] - np.logaddexp.reduce(s[i, idx]))
        G[i, idx] += w
        G[i, j] -= 1.0
    # no positive pair: the loss is the constant 0/0; autodiff (optax's where over an empty
    # mask) gives it the slope 0, taken here too
    G = G / len(pairs) if pairs else np.zeros(s.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = ((G + G.T) @ u) / temperature
        proj = v - np.where(live, np.sum(v * u, axis=-1), 0.0)[:, None] * u
        return {"input": (proj / n[:, None]).reshape(np.shape(input))}


# ----------------------------------------------------------------------------- Circle


def _circle_parts(input, target, gamma, margin, remove_diagonal, ref_embeddings=None, ref_labels=None):
    """The pairwise parts of the Circle loss of the query rows (``input``, ``target``) against the
    reference rows (``ref_embeddings`` (M, D), ``ref_labels`` (M,); each defaults to the queries'
    own, as Keras' ``circle`` does): (N, M) matrices but for the queries (e), the reference rows
    (r) and the log-sum-exps (p, n)."""
    e, labels = _rows(input, target)
    r = e if ref_embeddings is None else _f(ref_embeddings).reshape(-1, e.shape[-1])
    ref = labels if ref_labels is None else np.asarray(ref_labels).reshape(-1)
    dot = e @ r.T
    d = np.maximum(1.0 - dot, 0.0)
    same = labels[:, None] == ref[None, :]
    # Keras removes the diagonal of the (N, M) mask, i == j, whether or not the references are the queries
    pos = same & ~np.eye(len(labels), len(ref), dtype=bool) if remove_diagonal else same
    neg = ~same
    wp = np.maximum((margin + d) * pos, 0.0)
    wn = np.maximum((1.0 + margin - d) * neg, 0.0)
    pw = -gamma * wp * (margin - d)
    nw = gamma * wn * ((1.0 - margin) - d)
    with np.errstate(divide="ignore"):
        p = np.logaddexp.reduce(np.where(pos, pw, -np.inf), axis=1) if len(e) else np.zeros(0)
        n = np.logaddexp.reduce(np.where(neg, nw, -np.inf), axis=1) if len(e) else np.zeros(0)
    return e, r, dot, d, pos, neg, wp, wn, pw, nw, p, n


def _circle_mask(loss, mean_over, dtype):
    if mean_over != "positive":
        return None
    with np.errstate(over="ignore", under="ignore"):
        return np.asarray(loss, dtype=dtype).astype(np.float64) > 0  # Keras masks losses <= 0 in its dtype


def circle(
    input,
    target,
    *,
    gamma=80.0,
    margin=0.4,
    remove_diagonal=True,
    ref_embeddings=None,
    ref_labels=None,
    reduction="mean",
    mean_over=None,
    zero_division="nan",
    floor_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Circle loss of embeddings ``(N, D)`` (meant to be L2-normalized; used as given) with
    integer labels ``(N,)``: softplus(LSE_pos(-gamma a_p (m - d)) + LSE_neg(gamma a_n (1 - m - d)))
    per sample, d = max(1 - e_i . r_j, 0), a_p = max(m + d, 0), a_n = max(1 + m - d, 0), over
    the reference rows r_j ``(M, D)`` with labels ``(M,)`` (``ref_embeddings``, ``ref_labels``;
    each the batch's own when None); ``remove_diagonal`` drops the pairs i == j from the positives.
    A sample with no positive (or no negative) has LSE = -inf and loss 0. ``mean_over=
    "positive"``: the mean divides by the number of losses > 0 in ``dtype`` (Keras' loss mask).
    """
    trace("input", input, _reading(input, "embeddings"))
    *_, p, n = _circle_parts(input, target, gamma, margin, remove_diagonal, ref_embeddings, ref_labels)
    trace("log-sum-exps", np.stack([p, n]), "over positives, over negatives")
    loss = trace("per-sample loss", softplus(p + n).reshape(np.shape(input)[:-1]), "softplus(lse_pos + lse_neg)")
    return reduce(
        loss, reduction=reduction, mask=_circle_mask(loss, mean_over, dtype), zero_division=zero_division, trace=trace
    )


def circle_grad(
    input,
    target,
    *,
    gamma=80.0,
    margin=0.4,
    remove_diagonal=True,
    ref_embeddings=None,
    ref_labels=None,
    reduction="mean",
    mean_over=None,
    zero_division="nan",
    floor_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """sigmoid(p + n) times the softmax weights of each log-sum-exp, through the weights
    (max at equality passes) and d = max(1 - dot, 0) to the dot products, and
    d dot_ij / d e = e_j, e_i. At dot = 1 exactly (identical unit vectors; a sample and itself
    with ``remove_diagonal=False``) d sits on its kink: ``floor_tie="pass"`` passes the slope
    whole (tf.maximum's gradient goes to its first argument where x >= y), ``"half"`` halves
    it (jnp.maximum and torch.maximum split a tie between their arguments). With reference rows
    given, d dot_ij / d e_i = r_j and d dot_ij / d r_j = e_i: the gradients of ``input`` (N, D)
    and ``ref_embeddings`` (M, D); without, both are the batch's own."""
    e, r, dot, d, pos, neg, wp, wn, pw, nw, p, n = _circle_parts(
        input, target, gamma, margin, remove_diagonal, ref_embeddings, ref_labels
    )
    loss = softplus(p + n).reshape(np.shape(input)[:-1])
    g = reduce_grad(
        loss.shape, reduction=reduction, mask=_circle_mask(loss, mean_over, dtype), zero_division=zero_division
    )
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        outer = g.reshape(-1) * sigmoid(p + n)
        sp = np.where(pos, np.exp(pw - np.where(np.isfinite(p), p, 0.0)[:, None]), 0.0)
        sn = np.where(neg, np.exp(nw - np.where(np.isfinite(n), n, 0.0)[:, None]), 0.0)
        dpw = -gamma * (np.where(pos & (margin + d >= 0), margin - d, 0.0) - wp)
        dnw = gamma * (-np.where(neg & (1.0 + margin - d >= 0), (1.0 - margin) - d, 0.0) - wn)
        g_d = outer[:, None] * (sp * dpw + sn * dnw)
        g_d = np.where(outer[:, None] == 0, 0.0, g_d)
        # d = max(1 - dot, 0) at 1 - dot = 0 exactly: the floor_tie convention
        tie = 0.5 if floor_tie == "half" else 1.0
        g_dot = -np.where(1.0 - dot > 0, 1.0, np.where(1.0 - dot == 0, tie, 0.0)) * g_d
    if ref_embeddings is None:
        return {"input": ((g_dot + g_dot.T) @ e).reshape(np.shape(input))}
    return {
        "input": (g_dot @ r).reshape(np.shape(input)),
        "ref_embeddings": (g_dot.T @ e).reshape(np.shape(ref_embeddings)),
    }


# ----------------------------------------------------------------------------- rounding models
# ``Spec.error_model`` of the cosine embedding loss: the first-order bound, in units of the
# compute dtype's unit roundoff u, of computing it op by op in that dtype (``reference/rounding.py``
# states the model). It bounds the value only: a gradient is held to the tolerance.

#: "cosine_terms": torch's cosine_embedding_loss, composite ATen ops in the input dtype
#: (aten/src/ATen/native/Loss.cpp: sum(x1 * x2), sum(x * x) + EPSILON, sqrt(m1 * m2), the
#: quotient, 1 - cos and cos - margin).
COSINE_EMBEDDING_STAGES = ("cosine_terms",)


def cosine_embedding_error(
    input,
    target,
    *,
    input2,
    margin=0.0,
    reduction="mean",
    sq_norm_add=None,
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`cosine_embedding` with ``cosine_terms`` (D elements per vector):

    - dot = sum a b and m = sum x^2 (+ e): the products' rounding and the sum's (D - 1), at
      most D sum |terms| whatever the accumulator (PyTorch's CPU sum of half accumulates in
      float, which costs less), the added e one more rounding, |m|;
    - den = sqrt(m1 m2): the norms' relative errors halved, the product's and the root's:
      rho = (err(m1) / m1 + err(m2) / m2 + 1) / 2 + 1 relative;
    - cos = dot / den: err(dot) / den + |cos| (rho + 1);
    - 1 - cos (u |1 - cos|) or cos - margin (u |cos - margin|), its clamp exact.

    For a pair near parallel (y = 1) or a cosine near the margin (y = -1) the loss is a
    difference of O(1) terms and the bound a few u absolute. Then the reduction's cost.
    """
    a, b = _f(input), _f(input2)
    y = np.asarray(target)
    e = 0.0 if sq_norm_add is None else float(np.asarray(sq_norm_add, dtype).astype(np.float64))
    n = a.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        dot = np.sum(a * b, axis=-1)
        m1, m2 = np.sum(a * a, axis=-1) + e, np.sum(b * b, axis=-1) + e
        den = np.sqrt(m1 * m2)
        rho = ((n * (m1 - e) + m1) / m1 + (n * (m2 - e) + m2) / m2 + 1) / 2 + 1
        cos = dot / den
        err = n * np.sum(np.abs(a * b), axis=-1) / den + np.abs(cos) * (rho + 1)
        pos, neg = y == 1, y == -1
        loss = np.where(pos, 1.0 - cos, np.where(neg, np.maximum(cos - margin, 0.0), 0.0))
        per = np.where(pos, err + np.abs(1.0 - cos), np.where(neg, err + np.abs(cos - margin), 0.0))
    return {"value": reduction_error(per, loss, reduce_grad(np.shape(loss), reduction=reduction), reduction)}
