"""Classification losses beyond cross-entropy: focal (binary and categorical), PolyLoss,
generalized cross-entropy, and the sparsemax losses (binary and multiclass).

Shapes are canonical: a class axis is last. Conventions are keyword arguments
(``reference/conventions.py``) whose defaults are the plain mathematics; ``dtype`` is the
binding's compute dtype, used only to round the clip bounds a framework writes in it. The
rules of ``reference/crossentropy.py`` hold here too: a zero coefficient wins over an
infinite log (``times``), gradients are d sum(out) / d each differentiated argument, pulled
back through the one shared reduction (``reduction.reduce_grad`` and ``chain``), and a clip
passes the gradient at and inside its bounds.
"""

from __future__ import annotations

import numpy as np

from lossparity.reference._math import (
    clip_bounds,
    clip_grad,
    log_softmax,
    log_softmax_grad,
    over,
    sigmoid,
    softplus,
    times,
)
from lossparity.reference.crossentropy import _gather, _predicted, _smooth
from lossparity.reference.errors import OracleError
from lossparity.reference.reduction import chain, reduce, reduce_grad
from lossparity.reference.rounding import (
    Rounded,
    reduction_error,
    sigmoid_in_dtype,
    transform_backward_error,
    unit_roundoff,
)
from lossparity.reference.trace import NO_TRACE, reading


def _power(m, gamma):
    """m ** gamma for m >= 0, with 0 ** 0 = 1 (``ops.power`` and ``exp(gamma log m)`` at
    gamma = 0 alike: gamma = 0 turns the focal loss back into plain cross-entropy)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.power(np.asarray(m, np.float64), gamma)


def _power_slope(m, gamma):
    """d/dm of m ** gamma, gamma m ** (gamma - 1): 0 at gamma = 0 even where m = 0 (the
    factor is then the constant 1), +inf at m = 0 for 0 < gamma < 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return times(np.full(np.shape(m), float(gamma)), np.power(np.asarray(m, np.float64), gamma - 1.0))


def _balance(y, apply_class_balancing, alpha):
    """alpha_t = alpha y + (1 - alpha)(1 - y) where class balancing applies (Keras'
    ``apply_class_balancing=True``; optax whenever ``alpha`` is given), else None."""
    if not apply_class_balancing or alpha is None:
        return None
    return alpha * y + (1.0 - alpha) * (1.0 - y)


def _focal_terms(x, y, from_logits, prob_eps, dtype, trace):
    """(bce, m, p_or_sigmoid): the binary cross-entropy of each element, the focal base
    m = 1 - p_t = y (1 - p) + (1 - y) p, and the probability p.

    On logits without a clip, bce = y softplus(-x) + (1-y) softplus(x) and m is written
    with sigmoid(+-x), so neither saturates to a rounded 1 - p. With a clip
    (``prob_eps``), bce reads the clipped probability while m reads the unclipped one, as
    Keras computes its focal factor from ``y_pred`` and its cross-entropy from the clipped
    output.
    """
    if from_logits:
        p, q = sigmoid(x), sigmoid(-x)
        p = trace("sigmoid", p, "p = sigmoid(x)")
    else:
        p, q = x, 1.0 - x
    m = trace("focal base", times(y, q) + times(1.0 - y, p), "1 - p_t = y (1-p) + (1-y) p")
    if prob_eps is None:
        if from_logits:
            bce = times(y, softplus(-x)) + times(1.0 - y, softplus(x))
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                bce = -(times(y, np.log(p)) + times(1.0 - y, np.log1p(-p)))
    else:
        bounds = clip_bounds(prob_eps, dtype)
        pc = trace("clip", np.clip(p, *bounds), f"clipped into [eps, 1-eps], eps={prob_eps}")
        bce = -(times(y, np.log(pc)) + times(1.0 - y, np.log1p(-pc)))
    return trace("cross-entropy", bce, "-(y log p + (1-y) log(1-p))"), m, p


def _binary_focal(
    x,
    target,
    from_logits,
    apply_class_balancing,
    alpha,
    gamma,
    label_smoothing,
    reduction,
    prob_eps,
    sample_axis,
    dtype,
    trace,
):
    y = _smooth(np.asarray(target, np.float64), label_smoothing, 2, "2", trace)
    bce, m, _ = _focal_terms(x, y, from_logits, prob_eps, dtype, trace)
    loss = times(_power(m, gamma), bce)
    w = _balance(y, apply_class_balancing, alpha)
    if w is not None:
        loss = times(w, loss)
    loss = trace(
        "per-element loss", loss, f"alpha_t (1 - p_t)^{gamma} bce" if w is not None else f"(1 - p_t)^{gamma} bce"
    )
    return reduce(loss, reduction=reduction, sample_axis=sample_axis, trace=trace)


def _binary_focal_grad(
    x,
    target,
    from_logits,
    apply_class_balancing,
    alpha,
    gamma,
    label_smoothing,
    reduction,
    prob_eps,
    sample_axis,
    dtype,
    clip_tie="pass",
):
    """d/dx and d/dy of alpha_t m^gamma bce (see :func:`binary_focal_cross_entropy_grad`); at a
    clip bound the cross-entropy's slope passes whole, or half with ``clip_tie="split"``."""
    y = _smooth(np.asarray(target, np.float64), label_smoothing, 2, "2", NO_TRACE)
    bce, m, p = _focal_terms(x, y, from_logits, prob_eps, dtype, NO_TRACE)
    f, df = _power(m, gamma), _power_slope(m, gamma)
    if from_logits:
        s, sm = sigmoid(x), sigmoid(-x)
        dp_dx = s * sm  # sigmoid'(x), exact on both saturated sides
        dm_dy = sm - s  # d/dy of y sigmoid(-x) + (1-y) sigmoid(x)
    else:
        dp_dx, dm_dy = np.ones(np.shape(x)), 1.0 - 2.0 * p
    dm_dx = (1.0 - 2.0 * y) * dp_dx
    if prob_eps is None and from_logits:
        dbce_dx = times(1.0 - y, sigmoid(x)) - times(y, sigmoid(-x))
        dbce_dy = np.asarray(-x, np.float64) * np.ones(np.shape(y))  # softplus(x) - softplus(-x)
    else:
        pc = p if prob_eps is None else np.clip(p, *clip_bounds(prob_eps, dtype))
        with np.errstate(divide="ignore", invalid="ignore"):
            dbce_dp = over(1.0 - y, 1.0 - pc) - over(y, pc)
            dbce_dy = np.log1p(-pc) - np.log(pc)
        if prob_eps is not None:
            dbce_dp = clip_grad(p, *clip_bounds(prob_eps, dtype), dbce_dp, tie=clip_tie)
        dbce_dx = dbce_dp * dp_dx
    with np.errstate(invalid="ignore"):
        d_x = times(df, dm_dx * bce) + times(f, dbce_dx)
        d_y = times(df, dm_dy * bce) + times(f, dbce_dy)
        w = _balance(y, apply_class_balancing, alpha)
        if w is not None:
            d_y = times(w, d_y) + (2.0 * alpha - 1.0) * times(f, bce)
            d_x = times(w, d_x)
    d_y = (1.0 - label_smoothing) * d_y
    if 0.0 < gamma < 1.0:
        # m^gamma has an infinite slope at m = 0, and autodiff multiplies it by the zero
        # coefficient of one of p_t's terms (y p or (1-y)(1-p); optax's log-space form by
        # exp(-inf) = 0): every framework gives NaN there, and so does the oracle
        d_x, d_y = np.where(m == 0, np.nan, d_x), np.where(m == 0, np.nan, d_y)
    g = reduce_grad(np.shape(d_x), reduction=reduction, sample_axis=sample_axis)
    return {"input": chain(g, d_x), "target": chain(g, d_y)}


def binary_focal_cross_entropy(
    input,
    target,
    *,
    apply_class_balancing=False,
    alpha=None,
    gamma=2.0,
    label_smoothing=0.0,
    reduction="mean",
    prob_eps=None,
    sample_axis=None,
    clip_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Binary focal cross-entropy on probabilities ``p`` (any shape), targets ``y`` of the same shape.

    ``alpha=None`` (optax's default) means no class balancing, whatever
    ``apply_class_balancing`` says: optax balances exactly where alpha is given.

    alpha_t (1 - p_t)^gamma * -(y log p + (1-y) log(1-p)), p_t = y p + (1-y)(1-p),
    alpha_t = alpha y + (1-alpha)(1-y) only with ``apply_class_balancing`` (and alpha not
    None); targets are first smoothed towards 1/2: y (1-s) + s/2 (Lin et al. 2017; Keras
    ``binary_focal_crossentropy``). gamma = 0 is the binary cross-entropy. ``prob_eps``
    clips p inside the logs only; the focal factor reads p as given.
    """
    p = trace("input", np.asarray(input, np.float64), reading(input, "probabilities", classes=False))
    return _binary_focal(
        p,
        target,
        False,
        apply_class_balancing,
        alpha,
        gamma,
        label_smoothing,
        reduction,
        prob_eps,
        sample_axis,
        dtype,
        trace,
    )


def binary_focal_cross_entropy_grad(
    input,
    target,
    *,
    apply_class_balancing=False,
    alpha=None,
    gamma=2.0,
    label_smoothing=0.0,
    reduction="mean",
    prob_eps=None,
    sample_axis=None,
    clip_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradients of :func:`binary_focal_cross_entropy`, both in the input's shape.

    With m = y(1-p) + (1-y)p and f = m^gamma: d/dp = alpha_t (gamma m^(gamma-1) (1-2y) bce
    + f (-y/p + (1-y)/(1-p))), the second term 0 strictly outside the clip; d/dy = (1-s)
    (alpha_t (gamma m^(gamma-1) (1-2p) bce + f (log(1-p) - log p)) + (2 alpha - 1) f bce).
    At gamma = 0 the focal slope is exactly 0 (also where m = 0); for 0 < gamma < 1 it is
    infinite where m = 0 (a confident, right prediction), where autodiff gives NaN (the
    infinite slope times a zero coefficient), as the oracle does.
    """
    return _binary_focal_grad(
        np.asarray(input, np.float64),
        target,
        False,
        apply_class_balancing,
        alpha,
        gamma,
        label_smoothing,
        reduction,
        prob_eps,
        sample_axis,
        dtype,
        clip_tie,
    )


def binary_focal_cross_entropy_with_logits(
    input,
    target,
    *,
    apply_class_balancing=False,
    alpha=None,
    gamma=2.0,
    label_smoothing=0.0,
    reduction="mean",
    prob_eps=None,
    sample_axis=None,
    clip_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Binary focal cross-entropy on logits ``x`` (any shape): that of p = sigmoid(x).

    Without ``prob_eps`` the cross-entropy is y softplus(-x) + (1-y) softplus(x) and
    1 - p_t = y sigmoid(-x) + (1-y) sigmoid(x), exact at saturated logits (optax
    ``sigmoid_focal_loss``, which takes log(1 - p_t) by a log-sum-exp). With ``prob_eps``
    the sigmoid is clipped before the logs (Keras' jax and torch backends compute
    ``sigmoid`` and then the probability form), so a logit beyond about +-16 costs at most
    -log(1e-7) = 16.1.
    """
    x = trace(
        "input",
        np.asarray(input, np.float64),
        reading(input, "logits", classes=False, then="takes the sigmoid of each"),
    )
    return _binary_focal(
        x,
        target,
        True,
        apply_class_balancing,
        alpha,
        gamma,
        label_smoothing,
        reduction,
        prob_eps,
        sample_axis,
        dtype,
        trace,
    )


def binary_focal_cross_entropy_with_logits_grad(
    input,
    target,
    *,
    apply_class_balancing=False,
    alpha=None,
    gamma=2.0,
    label_smoothing=0.0,
    reduction="mean",
    prob_eps=None,
    sample_axis=None,
    clip_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradients of :func:`binary_focal_cross_entropy_with_logits`, both in the input's shape.

    The probability form's slopes times sigmoid'(x) = sigmoid(x) sigmoid(-x); without a clip
    the cross-entropy's slope is (1-y) sigmoid(x) - y sigmoid(-x) and its target slope -x;
    with one, 0 where sigmoid(x) lies strictly outside the clip.
    """
    return _binary_focal_grad(
        np.asarray(input, np.float64),
        target,
        True,
        apply_class_balancing,
        alpha,
        gamma,
        label_smoothing,
        reduction,
        prob_eps,
        sample_axis,
        dtype,
        clip_tie,
    )


# ----------------------------------------------------------------------------- categorical focal


def _class_alpha(alpha, weight, n):
    """The per-class balancing factor: ``weight`` (Keras' ``alpha`` given as a list, one per
    class) replaces the scalar ``alpha``."""
    return np.full(n, float(alpha)) if weight is None else np.asarray(weight, np.float64)


def _categorical_probs(x, from_logits, prob_eps, renormalize, dtype, trace, clip_tie="pass"):
    """(q, log q, 1 - q, pullback): the probabilities the loss reads and the pullback of a
    gradient in q to one in the input. Logits without a clip or renormalization keep log q =
    log_softmax(x) and 1 - q = -expm1(log q) (no rounded 1 - q at saturation)."""
    if from_logits and prob_eps is None and renormalize is None:
        logq = trace("log_softmax", log_softmax(x), "x - logsumexp(x) over the class axis")
        q = np.exp(logq)
        return q, logq, -np.expm1(logq), lambda grad: _softmax_pullback(x, grad)
    p = x
    if from_logits:
        p = trace("softmax", np.exp(log_softmax(x)), "softmax over the class axis")
    q, pullback = _predicted(p, prob_eps, renormalize, dtype, trace, clip_tie)
    with np.errstate(divide="ignore"):
        logq = np.log(q)
    if from_logits:
        return q, logq, 1.0 - q, lambda grad: _softmax_pullback(x, pullback(grad))
    return q, logq, 1.0 - q, pullback


def _softmax_pullback(x, grad):
    """d/dx of sum_c grad_c softmax(x)_c: p (grad - <p, grad>), with a zero p contributing 0."""
    p = np.exp(log_softmax(x))
    with np.errstate(invalid="ignore"):
        inner = np.sum(times(p, grad), axis=-1, keepdims=True)
        return times(p, grad - inner)


def categorical_focal_cross_entropy(
    input,
    target,
    *,
    alpha=0.25,
    weight=None,
    gamma=2.0,
    from_logits=False,
    label_smoothing=0.0,
    reduction="mean",
    prob_eps=None,
    renormalize=None,
    clip_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """sum_c alpha_c (1 - q_c)^gamma * -y_c log q_c over the class axis, ``(..., C)`` -> ``(...)``.

    q is the input (probabilities) or its softmax (``from_logits``), then renormalized and
    clipped as the conventions say (Keras renormalizes and then clips into [1e-7, 1 - 1e-7],
    as its ``categorical_crossentropy``); the focal factor reads the same q. alpha_c is the
    scalar ``alpha`` or the per-class ``weight``. Targets are smoothed towards 1/C first.
    gamma = 0 and alpha = 1 give the categorical cross-entropy.
    """
    x = trace(
        "input",
        np.asarray(input, np.float64),
        reading(input, "logits" if from_logits else "probabilities", classes=True),
    )
    y = _smooth(np.asarray(target, np.float64), label_smoothing, x.shape[-1], "C", trace)
    q, logq, one_minus_q, _ = _categorical_probs(x, from_logits, prob_eps, renormalize, dtype, trace)
    a = _class_alpha(alpha, weight, x.shape[-1])
    terms = times(a * _power(one_minus_q, gamma), -times(y, logq))
    loss = trace("per-sample loss", np.sum(terms, axis=-1), f"sum_c alpha_c (1-q_c)^{gamma} (-y_c log q_c)")
    return reduce(loss, reduction=reduction, trace=trace)


def categorical_focal_cross_entropy_grad(
    input,
    target,
    *,
    alpha=0.25,
    weight=None,
    gamma=2.0,
    from_logits=False,
    label_smoothing=0.0,
    reduction="mean",
    prob_eps=None,
    renormalize=None,
    clip_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradients of :func:`categorical_focal_cross_entropy`, both ``(..., C)``.

    d/dq_c = alpha_c (gamma (1-q_c)^(gamma-1) y_c log q_c - (1-q_c)^gamma y_c / q_c), pulled
    back through the clip, the renormalization and the softmax; d/dy_c = -(1-s) alpha_c
    (1-q_c)^gamma log q_c. At a clip bound the slope passes whole, or half with ``clip_tie="split"``
    (jnp.clip, Keras on JAX): the focal factor reads the clipped q, so both of d/dq's terms do.
    """
    x = np.asarray(input, np.float64)
    y = _smooth(np.asarray(target, np.float64), label_smoothing, x.shape[-1], "C", NO_TRACE)
    q, logq, one_minus_q, pullback = _categorical_probs(
        x, from_logits, prob_eps, renormalize, dtype, NO_TRACE, clip_tie
    )
    a = _class_alpha(alpha, weight, x.shape[-1])
    f = _power(one_minus_q, gamma)
    with np.errstate(invalid="ignore"):
        d_q = a * (times(_power_slope(one_minus_q, gamma), times(y, logq)) - times(f, over(y, q)))
        d_y = -(1.0 - label_smoothing) * times(a * f, logq)
    g = reduce_grad(x.shape[:-1], reduction=reduction)
    return {"input": chain(g, pullback(d_q)), "target": chain(g, d_y)}


# ----------------------------------------------------------------------------- PolyLoss


def poly_loss_cross_entropy(
    input,
    target,
    *,
    epsilon=2.0,
    reduction="mean",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Poly-1 loss on logits and probability targets, ``(..., C)`` -> ``(...)``:
    -sum_c y_c log p_c + epsilon sum_c y_c (1 - p_c), p = softmax(x) (Leng et al. 2022).

    1 - p_c is -expm1(log p_c), exact where p_c is near 1. Targets are used as given (a
    target that does not sum to 1 scales both terms).
    """
    x = trace(
        "input",
        np.asarray(input, np.float64),
        reading(input, "logits", classes=True, then="takes a softmax over the classes"),
    )
    y = np.asarray(target, np.float64)
    logp = trace("log_softmax", log_softmax(x), "x - logsumexp(x) over the class axis")
    ce = trace("cross-entropy", -np.sum(times(y, logp), axis=-1), "-sum_c y_c log p_c")
    poly = trace("poly-1 term", np.sum(times(y, -np.expm1(logp)), axis=-1), "sum_c y_c (1 - p_c)")
    loss = trace("per-sample loss", ce + epsilon * poly, f"ce + {epsilon} * (1 - p_t)")
    return reduce(loss, reduction=reduction, trace=trace)


def poly_loss_cross_entropy_grad(
    input,
    target,
    *,
    epsilon=2.0,
    reduction="mean",
    dtype=np.float32,
    trace=NO_TRACE,
):
    """Gradients of :func:`poly_loss_cross_entropy`, both ``(..., C)``.

    d/dx_j = (p_j sum(y) - y_j) + epsilon p_j (<y, p> - y_j); d/dy_c = -log p_c + epsilon (1 - p_c).
    """
    x = np.asarray(input, np.float64)
    y = np.asarray(target, np.float64)
    logp = log_softmax(x)
    p = np.exp(logp)
    with np.errstate(invalid="ignore"):
        d_x = log_softmax_grad(x, y) + epsilon * p * (np.sum(y * p, axis=-1, keepdims=True) - y)
        d_y = -logp - epsilon * np.expm1(logp)
    g = reduce_grad(x.shape[:-1], reduction=reduction)
    return {"input": chain(g, d_x), "target": chain(g, d_y)}


# ----------------------------------------------------------------------------- generalized CE


def _labels(t, n_classes):
    """Class indices and a mask of those outside [0, C): nothing documents what these
    bindings do with them (Keras' one_hot gives a zero row, JAX's gather clamps), so their
    loss is NaN (they are never generated); the safe indices read class 0 instead."""
    t = np.asarray(t, np.int64)
    invalid = (t < 0) | (t >= n_classes)
    return np.where(invalid, 0, t), invalid


def _gce_target_prob(input, target, q, q_domain, trace):
    if q_domain is not None and not 0 < q < 1:
        raise OracleError(q_domain, f"q = {q} is outside (0, 1)")
    p = trace("input", np.asarray(input, np.float64), reading(input, "probabilities", classes=True))
    t, invalid = _labels(target, p.shape[-1])
    p_y = np.where(invalid, np.nan, _gather(p, t))
    return p, t, trace("target probability", p_y, "p[y]")


def categorical_generalized_cross_entropy(
    input,
    target,
    *,
    q=0.5,
    reduction="mean",
    q_domain=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """(1 - p_y^q) / q for predicted probabilities ``(..., C)`` and class indices ``(...)``
    (Zhang & Sabuncu 2018): -log p_y as q -> 0, 1 - p_y at q = 1.

    Written -expm1(q log p_y) / q, exact for small q; q = 0 is 0/0 = NaN as the formula is
    written (Keras' function form), and ``q_domain`` names the error raised for q outside
    (0, 1) (Keras' class form checks). p_y = 0 costs 1/q. The probabilities are used as
    given: no clip, no renormalization.
    """
    _, _, p_y = _gce_target_prob(input, target, q, q_domain, trace)
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = -np.expm1(q * np.log(p_y)) / q if q else np.full(p_y.shape, np.nan)
    loss = trace("per-sample loss", loss, f"(1 - p_y^{q}) / {q}")
    return reduce(loss, reduction=reduction, trace=trace)


def categorical_generalized_cross_entropy_grad(
    input,
    target,
    *,
    q=0.5,
    reduction="mean",
    q_domain=None,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d/dp of :func:`categorical_generalized_cross_entropy`, ``(..., C)``: -p_y^(q-1) at the
    target class (written -(q p_y^(q-1)) / q as autodiff does: NaN at q = 0, -1 at q = 1
    whatever p_y), 0 elsewhere; at p_y = 0 with q < 1 the slope is -inf, at q = 0 NaN, and the
    other classes of the row get NaN (0 * -inf, 0 * NaN), as autodiff through Keras' one-hot
    product gives."""
    p, t, p_y = _gce_target_prob(input, target, q, q_domain, NO_TRACE)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = -(q * np.power(p_y, q - 1.0)) / q if q else np.full(p_y.shape, np.nan)
    onehot = np.arange(p.shape[-1]) == t[..., None]
    # a slope that is not finite (p_y = 0 with q < 1: -inf; q = 0: NaN) reaches the other
    # classes of its row as 0 * inf or 0 * NaN: Keras gathers p_y as sum(p * onehot(y)), so
    # autodiff gives the whole row NaN
    d_p = np.where(onehot, slope[..., None], np.where(~np.isfinite(slope)[..., None], np.nan, 0.0))
    d_p = np.where(np.isnan(p_y)[..., None], np.nan, d_p)
    g = reduce_grad(p_y.shape, reduction=reduction)
    return {"input": chain(g, d_p)}


# ----------------------------------------------------------------------------- sparsemax


def _sparse_plus(z):
    """0 for z <= -1, (z + 1)^2 / 4 inside, z for z >= 1 (jax.nn.sparse_plus): C1, its slope
    0, (z + 1)/2, 1 continuous at both joints."""
    return np.where(z <= -1.0, 0.0, np.where(z >= 1.0, z, (z + 1.0) ** 2 / 4.0))


def sparsemax_loss(input, target, *, reduction="mean", dtype=np.float32, trace=NO_TRACE):
    """Binary sparsemax loss, elementwise: sparse_plus(-x) where the label is 1 (any nonzero
    label, as optax's ``jnp.where(labels, ...)`` reads it), sparse_plus(x) where it is 0
    (Blondel et al. 2020, sec. 4.4). Zero exactly where sparse_sigmoid(x) equals the label."""
    x = trace("input", np.asarray(input, np.float64), reading(input, "logits", classes=False))
    z = trace("signed score", np.where(np.asarray(target) != 0, -x, x), "-x where y = 1, x where y = 0")
    loss = trace("per-element loss", _sparse_plus(z), "sparse_plus(z)")
    return reduce(loss, reduction=reduction, trace=trace)


def sparsemax_loss_grad(input, target, *, reduction="mean", dtype=np.float32, trace=NO_TRACE):
    """d/dx of :func:`sparsemax_loss`: +-slope of sparse_plus (0, (z+1)/2 or 1); the label
    is a condition, with no gradient."""
    x = np.asarray(input, np.float64)
    pos = np.asarray(target) != 0
    z = np.where(pos, -x, x)
    slope = np.where(z <= -1.0, 0.0, np.where(z >= 1.0, 1.0, (z + 1.0) / 2.0))
    g = reduce_grad(np.shape(x), reduction=reduction)
    return {"input": chain(g, np.where(pos, -slope, slope))}


def sparsemax(x):
    """The Euclidean projection of each row of ``x`` (last axis) onto the probability simplex
    (Martins & Astudillo 2016), float64: p = max(x - tau, 0) with tau chosen so that sum(p) = 1.

    The support size k is the largest k with 1 + k u_k > sum_{j<=k} u_j over the scores
    sorted descending; tied scores pass or fail that test together, so ties need no rule.
    Scores are shifted by their max first, which changes nothing but keeps the cumulative
    sums near the values that decide the support.
    """
    x = np.asarray(x, np.float64)
    shifted = x - np.max(x, axis=-1, keepdims=True)
    u = -np.sort(-shifted, axis=-1)
    cums = np.cumsum(u, axis=-1)
    ks = np.arange(1, x.shape[-1] + 1)
    k = np.sum(1.0 + ks * u > cums, axis=-1, keepdims=True)
    tau = (np.take_along_axis(cums, k - 1, axis=-1) - 1.0) / k
    return np.maximum(shifted - tau, 0.0)


def _multiclass_sparsemax(x, target, trace):
    p = trace("sparsemax", sparsemax(x), "projection of the scores onto the simplex")
    t, invalid = _labels(target, x.shape[-1])
    x_y = np.where(invalid, np.nan, _gather(x, t))[..., None]
    # sum over the support of p_c (x_c - x_y): the form optax writes, which never multiplies
    # a score outside the support
    inner = np.sum(np.where(p > 0, p * (x - x_y), 0.0), axis=-1)
    return p, t, inner + 0.5 * (1.0 - np.sum(p * p, axis=-1))


def multiclass_sparsemax_loss(input, target, *, reduction="mean", dtype=np.float32, trace=NO_TRACE):
    """Multiclass sparsemax loss for scores ``(N, C)`` and class indices ``(N,)``: the
    Fenchel-Young loss of the Gini negentropy, <p, x> - x_y + (1 - ||p||^2) / 2, p = sparsemax(x).

    Zero exactly where sparsemax(x) is onehot(y); all-equal scores give p = 1/C.
    """
    x = trace(
        "input",
        np.asarray(input, np.float64),
        reading(input, "scores", classes=True, then="projects them onto the simplex (sparsemax)"),
    )
    _, _, loss = _multiclass_sparsemax(x, target, trace)
    loss = trace("per-sample loss", loss, "<p, x - x_y> + (1 - |p|^2)/2")
    return reduce(loss, reduction=reduction, trace=trace)


def multiclass_sparsemax_loss_grad(input, target, *, reduction="mean", dtype=np.float32, trace=NO_TRACE):
    """d/dx of :func:`multiclass_sparsemax_loss`: sparsemax(x) - onehot(y), the gradient of
    every Fenchel-Young loss; continuous, so ties and scores at the support's edge need no rule."""
    x = np.asarray(input, np.float64)
    p, t, loss = _multiclass_sparsemax(x, target, NO_TRACE)
    g = reduce_grad(p.shape[:-1], reduction=reduction)
    d_x = np.where(np.isnan(loss)[..., None], np.nan, p - (np.arange(x.shape[-1]) == t[..., None]))
    return {"input": chain(g, d_x)}


# ----------------------------------------------------------------------------- rounding models
# ``Spec.error_model`` of the focal, generalized and Poly-1 cross-entropies: the first-order
# bound, in units of the compute dtype's unit roundoff u, of computing the loss and its
# gradients op by op in that dtype (``reference/rounding.py`` states the model). Each model is
# the framework's own computation written with :class:`Rounded` quantities, forward and then
# backward in the order autodiff takes it, so each operation adds exactly one rounding and
# carries its operands' errors; the derivation of every rule is in :class:`Rounded`.

#: Stages the models know. ``probabilities``: Keras' renormalize, clip, log, 1 - q, power and
#: products on probabilities; ``softmax``: the softmax before them (from_logits);
#: ``log_softmax``: optax's softmax and log-softmax (Poly-1); ``power``: (1 - p^q) / q.
FOCAL_STAGES = ("softmax", "probabilities")
POLY_STAGES = ("log_softmax",)
GCE_STAGES = ("power",)


def _softmax_rounded(x: Rounded):
    """(softmax, exp(x - max), sum of them) as jax.nn.softmax computes them: exp(x - max) /
    sum(exp(x - max)), the max exact (a selection)."""
    m = np.max(x.v, axis=-1, keepdims=True)
    e = (x - m).exp()
    z = e.sum()
    return e / z, e, z


def _softmax_back(p: Rounded, grad: Rounded) -> Rounded:
    """jax.nn.softmax's custom JVP, transposed: p (grad - sum(p grad))."""
    return p * (grad - (p * grad).sum())


def _clip_back(pre, bounds, grad: Rounded, tie: str) -> Rounded:
    """A gradient pulled back through clip(pre, lo, hi) (``clip_grad``'s rules), where ``pre``
    is the rounded quantity clipped: 0 strictly outside, halved at a bound under ``tie="split"``.
    Where the computed pre may sit on either side of a bound (within u e of it) the framework's
    selection may differ from the oracle's: the whole slope (its half at a split tie) is then
    part of the error."""
    lo, hi = bounds
    with np.errstate(invalid="ignore"):
        near = np.zeros(pre.v.shape, bool)
        for b in (lo, hi):
            near |= np.abs(pre.v - b) <= pre.u * pre.e
    passed = clip_grad(pre.v, lo, hi, grad.v, tie=tie)
    scale = clip_grad(pre.v, lo, hi, np.ones(pre.v.shape), tie=tie)
    e = scale * grad.e + np.where(near, np.abs(grad.v) / grad.u + grad.e, 0.0)
    return Rounded(passed, e, grad.dtype)


def _cotangent(shape, reduction, dtype, **kw) -> Rounded:
    """The reduction's cotangent (1, 1/N, ...) as the framework's backward computes it: rounded once."""
    g = np.asarray(reduce_grad(shape, reduction=reduction, **kw), np.float64)
    return Rounded(g, 0.0, dtype).const(np.broadcast_to(g, shape))


def categorical_focal_cross_entropy_error(
    input,
    target,
    *,
    alpha=0.25,
    weight=None,
    gamma=2.0,
    from_logits=False,
    label_smoothing=0.0,
    reduction="mean",
    prob_eps=None,
    renormalize=None,
    clip_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`categorical_focal_cross_entropy` as Keras computes it in its
    dtype (``keras/src/losses/losses.py``, categorical_focal_crossentropy), rows ``(..., C)``:

    y <- y (1 - s) + s / C; p <- softmax(x) (``from_logits``); q = clip(p / sum(p)); cce =
    -y log q; f = (1 - q)^gamma; t = (f alpha) cce; loss = sum_c t_c. Backward, as autodiff
    takes it: dcce = g (f alpha), df = g cce alpha, d(1 - q) = df gamma (1 - q)^(gamma - 1),
    dq = (g (f alpha) (-y)) / q - d(1 - q), through the clip (``_clip_back``), dp = dq / S -
    sum_c (dq_c q_c / S) (the division's two operands), and the softmax's JVP; dy = -(dcce
    log q) (1 - s). Each operation is one :class:`Rounded` step, so the bound is that of this
    exact sequence under the standard model. Returns {"value", "input", "target"} in units of u.
    """
    x = Rounded(input, 0.0, dtype)
    n_classes = x.v.shape[-1]
    y = Rounded(target, 0.0, dtype)
    if label_smoothing:
        y = y * y.const(1.0 - label_smoothing) + y.const(label_smoothing) / n_classes
    if from_logits:
        p, _, _ = _softmax_rounded(x)
    else:
        p = x
    bounds = clip_bounds(prob_eps, dtype) if prob_eps is not None else (None, None)
    s = p.sum() if renormalize is not None else None
    pre = p / s if s is not None else p
    q = pre
    if prob_eps is not None:
        clipped = np.clip(pre.v, *bounds)
        # the clip is exact where the computed value lies on the same side of a bound as the
        # exact one; within its error of a bound it may not, and the clip (1-Lipschitz) keeps it
        near = np.abs(pre.v - clipped) <= pre.u * pre.e
        q = Rounded(clipped, np.where(near, pre.e, 0.0), dtype)
    log_q = q.log()
    cce = -y * log_q
    m = 1.0 - q
    f = m.power(gamma)
    a = x.const(_class_alpha(alpha, weight, n_classes))
    w = f * a
    terms = w * cce
    loss = terms.sum()
    per_v, per_e = loss.v[..., 0], loss.e[..., 0]
    g = _cotangent(per_v.shape, reduction, dtype)
    gc = Rounded(g.v[..., None], g.e[..., None], dtype)
    d_cce = gc * w
    d_f = (gc * cce) * a
    slope = m.power(gamma - 1.0) * float(gamma) if gamma else Rounded(np.zeros(m.v.shape), 0.0, dtype)
    d_m = d_f * slope
    d_q = (d_cce * -y) / q - d_m
    if prob_eps is not None:
        d_q = _clip_back(pre, bounds, d_q, clip_tie)
    d_p = d_q
    if s is not None:
        d_p = d_q / s - ((d_q * pre) / s).sum()
    d_x = _softmax_back(p, d_p) if from_logits else d_p
    d_y = -(d_cce * log_q)
    if label_smoothing:
        d_y = d_y * y.const(1.0 - label_smoothing)
    value = reduction_error(per_e, per_v, g.v, reduction)
    return {"value": value, "input": d_x.e, "target": d_y.e}


def _spread(p, exponents, exact):
    """max over the exponents a framework may compute with of |p^e - p^exact|: the exact,
    deterministic cost of an exponent written as a Python float and rounded to the dtype."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        base = _power(p, exact)
        return np.max([np.abs(_power(p, e) - base) for e in exponents], axis=0)


def categorical_generalized_cross_entropy_error(
    input,
    target,
    *,
    q=0.5,
    reduction="mean",
    q_domain=None,
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`categorical_generalized_cross_entropy` as Keras computes it in
    its dtype (``keras/src/losses/losses.py``, v3.15.1, L2782-L2791): p_y = sum(p onehot(y))
    (exact: one nonzero product by 1), t = power(p_y, q), (1 - t) / q, with q a Python float
    rounded to the dtype (fl(q)) in both places; backward d/dp_y = -(g / q) q p_y^(q - 1), whose
    exponent q - 1 is computed from q or fl(q), in the dtype or not (the backends differ): the
    spread of p_y^e over those exponents is part of the error, exactly (``_spread``).

    The first-order model holds while the error is below the quantity: where 1 - t's bound
    reaches |1 - t| itself (q so small that p_y^q rounds to within an ULP or two of 1, every
    digit cancelled), the value has no bound (inf) and stays a finding. {"value", "input"} in
    units of u.
    """
    p, t_idx, p_y = _gce_target_prob(input, target, q, q_domain, NO_TRACE)
    u = unit_roundoff(dtype)
    qh = float(np.asarray(q, dtype))
    one = Rounded(1.0, 0.0, dtype)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t = Rounded(_power(p_y, q), 0.0, dtype)
        t = Rounded(t.v, _spread(p_y, [qh], q) / u + t._r(t.v), dtype)
        n = one - t
        qr = one.const(np.full(p_y.shape, float(q)))
        loss = n / qr
        value_e = np.where(u * n.e >= np.abs(n.v), np.inf, loss.e)
        g = _cotangent(p_y.shape, reduction, dtype)
        d_n = g / qr
        exps = [q - 1.0, qh - 1.0, float(np.asarray(qh - 1.0, dtype))]
        powed = Rounded(_power(p_y, q - 1.0), 0.0, dtype)
        powed = Rounded(powed.v, _spread(p_y, exps, q - 1.0) / u + powed._r(powed.v), dtype)
        d_p = -(d_n * (qr * powed))
    onehot = np.arange(p.shape[-1]) == t_idx[..., None]
    # the other classes get d_p * 0 exactly (the one-hot product's backward)
    d_in = np.where(onehot, d_p.e[..., None], 0.0)
    return {"value": reduction_error(value_e, loss.v, g.v, reduction), "input": d_in}


def _softmax_transpose(p: Rounded, grad: Rounded) -> Rounded:
    """jax.nn.softmax's custom JVP y (x' - sum(y x')) transposed as JAX transposes it, op by op:
    c = p grad (the product's transpose), then c - p sum(c) (the subtraction's and the sum's)."""
    c = p * grad
    return c - p * c.sum()


def poly_loss_cross_entropy_error(
    input,
    target,
    *,
    epsilon=2.0,
    reduction="mean",
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`poly_loss_cross_entropy` as optax computes it in the input's
    dtype (``optax/losses/_classification.py``, v0.2.8, poly_loss_cross_entropy and
    softmax_cross_entropy; ``jax/_src/nn/functions.py`` softmax and log_softmax), rows ``(..., C)``:

    p = e / sum(e), e = exp(x - max x); poly = sum_c y_c (1 - p_c); log p = s - log(sum exp(s)),
    s = x - max x (the max a selection, under stop_gradient); ce = -sum_c y_c log p_c; loss =
    ce + fl(epsilon) poly. Backward, as autodiff takes it from a cotangent g per row: the
    softmax's custom JVP transposed (:func:`_softmax_transpose`) of d/dp = -(g fl(eps)) y; the
    log-softmax's d/ds = d/dlogp + exp(s) (-sum(d/dlogp) / sum exp(s)), d/dlogp = -g y; the two
    pullbacks added; d/dy = (g fl(eps)) (1 - p) + (-g) log p. Each operation is one
    :class:`Rounded` step (its derivation there). Returns {"value", "input", "target"} in
    units of u: a bound of a few tens of u relative to the result where nothing cancels.
    """
    x = Rounded(input, 0.0, dtype)
    y = Rounded(target, 0.0, dtype)
    p, _, _ = _softmax_rounded(x)
    one_minus = 1.0 - p
    poly = (y * one_minus).sum()
    shifted = x - np.max(x.v, axis=-1, keepdims=True)
    exps = shifted.exp()
    total = exps.sum()
    logp = shifted - total.log()
    ce = -(y * logp).sum()
    eps = x.const(np.full(poly.v.shape, float(epsilon)))
    loss = ce + eps * poly
    per_v, per_e = loss.v[..., 0], loss.e[..., 0]
    g = _cotangent(per_v.shape, reduction, dtype)
    gc = Rounded(g.v[..., None], g.e[..., None], dtype)
    d_poly = gc * eps
    d_p = -(d_poly * y)
    d_logp = -gc * y
    d_s = d_logp + exps * (-d_logp.sum() / total)
    d_x = _softmax_transpose(p, d_p) + d_s
    d_y = d_poly * one_minus + (-gc) * logp
    value = reduction_error(per_e, per_v, g.v, reduction)
    return {"value": value, "input": d_x.e, "target": d_y.e}


#: ``sparse_plus``: jax.nn.sparse_plus's (z + 1)^2 / 4 in the scores' dtype (optax sparsemax_loss).
SPARSE_PLUS_STAGES = ("sparse_plus",)


def sparsemax_loss_error(input, target, *, reduction="mean", dtype=np.float32, trace=NO_TRACE, stages=()):
    """Rounding model of :func:`sparsemax_loss` as optax computes it in the scores' dtype
    (``optax/losses/_classification.py``, v0.2.8, sparsemax_loss: jax.nn.sparse_plus of
    where(labels, -x, x); ``jax/_src/nn/functions.py``: where(z <= -1, 0, where(z >= 1, z,
    (z + 1)**2 / 4))): z exact (a negation and a selection); s = z + 1 one rounding, s**2 one
    more and the product's propagation (2 |s| e_s), / 4 counted as one (exact but for
    subnormals): the value within 4u |(z + 1)^2 / 4|; the linear and zero branches exact.
    Backward from the cotangent g: (g / 4) (2 s), s carrying its rounding: within 3u of the
    slope. Elementwise, in the input's shape; {"value", "input"} in units of u.
    """
    pos = np.asarray(target) != 0
    z = Rounded(np.where(pos, -np.asarray(input, np.float64), np.asarray(input, np.float64)), 0.0, dtype)
    s = z + 1.0
    inner = (s * s) / 4.0
    low, high = z.v <= -1.0, z.v >= 1.0
    per_e = np.where(low, 0.0, np.where(high, 0.0, inner.e))
    per_v = _sparse_plus(z.v)
    g = _cotangent(per_v.shape, reduction, dtype)
    slope = (g / 4.0) * (s * 2.0)
    d_e = np.where(low, 0.0, np.where(high, g.e, slope.e))
    return {"value": reduction_error(per_e, per_v, g.v, reduction), "input": d_e}


#: ``log_sigmoid``: optax sigmoid_focal_loss's log-sigmoids, log-sum-exp and exp in the logits' dtype.
SIGMOID_FOCAL_STAGES = ("log_sigmoid",)


def _softplus_rounded(v: Rounded) -> Rounded:
    """jax.nn.softplus(v) = logaddexp(v, 0) as lax.logaddexp computes it: max(v, 0) + log1p(exp(-|v|)),
    the max and -|v| exact (the difference v - 0 is v)."""
    amax = v.where(v.v > 0, 0.0)
    tail = v.where(v.v >= 0, -v)  # |v|, exact
    return amax + (-tail).exp().log1p()


def binary_focal_cross_entropy_with_logits_error(
    input,
    target,
    *,
    apply_class_balancing=False,
    alpha=None,
    gamma=2.0,
    label_smoothing=0.0,
    reduction="mean",
    prob_eps=None,
    sample_axis=None,
    clip_tie="pass",
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of the value of :func:`binary_focal_cross_entropy_with_logits` as optax's
    sigmoid_focal_loss computes it in the logits' dtype (``optax/losses/_classification.py``,
    v0.2.8, L903-L927; no clip, no smoothing): log p = -softplus(-x), log q = -softplus(x)
    (:func:`_softplus_rounded`); ce = -y log p - (1 - y) log q; l = logsumexp([log p, log q],
    b=[1 - y, y]) as jax.scipy.special.logsumexp takes it (a term with b = 0 dropped exactly, the
    max of the others a selection, exp(a - max) b summed, log, + max); w = exp(fl(gamma) l);
    loss = ce w, times fl(alpha) y + (1 - fl(alpha)) (1 - y) where alpha is given. Each
    operation one :class:`Rounded` step. Only the value is modelled: the gradients are held to
    the tolerance. {"value"} in units of u, the reduction's error included.

    With ``prob_eps`` (Keras' form, stage ``sigmoid``): :func:`keras_sigmoid_focal_error`.
    """
    if prob_eps is not None and "sigmoid" in stages:
        return keras_sigmoid_focal_error(
            input,
            target,
            apply_class_balancing=apply_class_balancing,
            alpha=alpha,
            gamma=gamma,
            label_smoothing=label_smoothing,
            reduction=reduction,
            prob_eps=prob_eps,
            sample_axis=sample_axis,
            clip_tie=clip_tie,
            dtype=dtype,
            stages=stages,
        )
    if prob_eps is not None or label_smoothing:
        raise ValueError("modelled: optax's sigmoid_focal_loss (no clip, no label smoothing)")
    x = Rounded(input, 0.0, dtype)
    y = Rounded(np.broadcast_to(np.asarray(target, np.float64), x.v.shape), 0.0, dtype)
    log_p = -_softplus_rounded(-x)
    log_q = -_softplus_rounded(x)
    not_y = 1.0 - y
    ce = (-y) * log_p - not_y * log_q
    keep_p, keep_q = not_y.v != 0, y.v != 0
    with np.errstate(invalid="ignore"):
        top_v = np.maximum(np.where(keep_p, log_p.v, -np.inf), np.where(keep_q, log_q.v, -np.inf))
    on_p = keep_p & (np.where(keep_p, log_p.v, -np.inf) == top_v)
    top = log_p.where(on_p, log_q)
    zero = Rounded(np.zeros(x.v.shape), 0.0, dtype)
    term_p = ((log_p - top).exp() * not_y).where(keep_p, zero)
    term_q = ((log_q - top).exp() * y).where(keep_q, zero)
    # the sum of the two terms: one rounding where both are kept (an exact 0 adds exactly)
    both = keep_p & keep_q
    total = Rounded(
        term_p.v + term_q.v, term_p.e + term_q.e + np.where(both, term_p._r(term_p.v + term_q.v), 0.0), dtype
    )
    lomp = total.log() + top
    weight = (x.const(np.full(x.v.shape, float(gamma))) * lomp).exp()
    loss = ce * weight
    if apply_class_balancing and alpha is not None:
        a = x.const(np.full(x.v.shape, float(alpha)))
        loss = (a * y + (1.0 - a) * not_y) * loss
    g = reduce_grad(np.shape(x.v), reduction=reduction, sample_axis=sample_axis)
    return {"value": reduction_error(loss.e, loss.v, g, reduction)}


#: ``sigmoid``: Keras' from_logits=True on the JAX and torch backends, ops.sigmoid(x) in the compute
#: dtype before the probability form's clip (``keras_sigmoid_focal_error``); with ``probabilities``, the
#: probability form's own rounding too (JAX; torch's binary cross-entropy kernel is not modelled).
KERAS_SIGMOID_FOCAL_STAGES = ("sigmoid", "probabilities")


def keras_sigmoid_focal_error(
    input,
    target,
    *,
    apply_class_balancing=False,
    alpha=None,
    gamma=2.0,
    label_smoothing=0.0,
    reduction="mean",
    prob_eps=1e-7,
    sample_axis=None,
    clip_tie="pass",
    dtype=np.float32,
    stages=("sigmoid",),
):
    """Rounding model of :func:`binary_focal_cross_entropy_with_logits` as Keras computes it with
    ``from_logits=True`` on the JAX and torch backends (``keras/src/losses/losses.py``, v3.15.1,
    L2503-L2510): p = ops.sigmoid(x) in the compute dtype, then the probability form, whose clip
    to [eps, 1 - eps] is decided on that rounded p, not on the exact sigmoid.

    The dtype's sigmoid is derived, not bounded: ``rounding.sigmoid_in_dtype`` gives the value the
    backends compute (and, for negative logits, its few possible neighbours). For each such value
    c the probability form is evaluated exactly at c, its clip decided on c and a slope at a bound
    taken as the backend takes it (``clip_tie``: jnp.clip halves it, torch.clamp passes it whole),
    the input's slope carried back through sigmoid's backward as autodiff takes it, from the stored
    output: d/dp c (1 - c). The model's allowance for each part is the largest move from the
    oracle's (the exact sigmoid, clipped where it lies) over those values, elementwise: where the
    rounded sigmoid lands on, or across, a clip bound that the exact one does not, this is the
    clipped slope itself (a logit of 16.44 in float32: the exact sigmoid 1 - 7.3e-8 lies above
    the bound fl(1 - 1e-7) = 1 - 2^-23 and has no slope through the clip; 1 + exp(-x) rounds to
    1 + 2^-23 and the float32 sigmoid is the bound itself, where JAX passes p / 2 and torch p);
    elsewhere only the sigmoid's rounding moving a smooth loss. Then, with the ``probabilities``
    stage, the probability form's own rounding at the derived p (:func:`binary_focal_cross_entropy_error`,
    carried back through p (1 - p)), and sigmoid's backward's rounding
    (``rounding.transform_backward_error``). {"value", "input", "target"} in units of u.
    """
    x = np.asarray(input, np.float64)
    y = np.broadcast_to(np.asarray(target, np.float64), x.shape)
    u = unit_roundoff(dtype)
    kw = dict(
        apply_class_balancing=apply_class_balancing,
        alpha=alpha,
        gamma=gamma,
        label_smoothing=label_smoothing,
        prob_eps=prob_eps,
        dtype=dtype,
    )
    p, candidates = sigmoid_in_dtype(x, dtype)
    flat = dict(reduction="none", sample_axis=None)
    due_loss = _binary_focal(x, y, True, *_focal_args(kw, **flat), NO_TRACE)
    due = _binary_focal_grad(x, y, True, *_focal_args(kw, reduction=reduction, sample_axis=sample_axis), clip_tie)
    moved_loss = np.zeros(x.shape)
    moved = {k: np.zeros(np.shape(v)) for k, v in due.items()}
    for c in candidates:
        with np.errstate(invalid="ignore", over="ignore"):
            loss = _binary_focal(c, y, False, *_focal_args(kw, **flat), NO_TRACE)
            at = _binary_focal_grad(
                c, y, False, *_focal_args(kw, reduction=reduction, sample_axis=sample_axis), clip_tie
            )
            at["input"] = at["input"] * c * (1.0 - c)
            # a non-finite part is never within a model (rounding.py): only finite moves count
            moved_loss = np.fmax(moved_loss, _finite_gap(loss, due_loss))
            for k in moved:
                moved[k] = np.fmax(moved[k], _finite_gap(at[k], due[k]))
    g = np.abs(np.asarray(reduce_grad(x.shape, reduction=reduction, sample_axis=sample_axis), np.float64))
    value = g * moved_loss
    if reduction == "none":
        value = value.sum(axis=-1) if sample_axis == "mean" else value
    else:
        value = np.sum(value)
    out = {"value": value / u, "input": moved["input"] / u, "target": moved["target"] / u}
    with np.errstate(invalid="ignore", over="ignore"):
        d_p = _binary_focal_grad(p, y, False, *_focal_args(kw, reduction=reduction, sample_axis=sample_axis), clip_tie)
        out["input"] = out["input"] + transform_backward_error("sigmoid", p, -1, d_p["input"])
        if "probabilities" in stages:
            own = binary_focal_cross_entropy_error(
                p, y, **kw, reduction=reduction, sample_axis=sample_axis, clip_tie=clip_tie
            )
            out["value"] = out["value"] + own["value"]
            out["input"] = out["input"] + np.asarray(own["input"]) * p * (1.0 - p)
            out["target"] = out["target"] + np.asarray(own["target"])
    return out


def _focal_args(kw, *, reduction, sample_axis):
    """The positional arguments of ``_binary_focal`` and ``_binary_focal_grad`` after (x, target, from_logits)."""
    return (
        kw["apply_class_balancing"],
        kw["alpha"],
        kw["gamma"],
        kw["label_smoothing"],
        reduction,
        kw["prob_eps"],
        sample_axis,
        kw["dtype"],
    )


def _finite_gap(a, b) -> np.ndarray:
    """|a - b| where both are finite, else 0 (a non-finite part is never explained by rounding)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        gap = np.abs(a - b)
    return np.where(np.isfinite(gap), gap, 0.0)


#: ``probabilities``: Keras' binary focal on probabilities, every op in the compute dtype.
BINARY_FOCAL_STAGES = ("probabilities",)


def binary_focal_cross_entropy_error(
    input,
    target,
    *,
    apply_class_balancing=False,
    alpha=None,
    gamma=2.0,
    label_smoothing=0.0,
    reduction="mean",
    prob_eps=None,
    sample_axis=None,
    dtype=np.float32,
    clip_tie="pass",
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`binary_focal_cross_entropy` as Keras computes it in its dtype
    (``keras/src/losses/losses.py``, v3.15.1, binary_focal_crossentropy; the JAX and TensorFlow
    backends' binary_crossentropy: clip, y log o + (1 - y) log(1 - o)), elementwise then a mean
    over the last axis: p and y cast to the dtype (rounded once where they are wider); y <- y
    fl(1 - s) + fl(s / 2); o = clip(p); bce = -(y log o + (1 - y) log(1 - o)); p_t = y p +
    (1 - y)(1 - p); f = (1 - p_t)^gamma (1 - p_t cancels where p_t is near 1: its error is
    relative to p_t, not to it); t = f bce, times y fl(alpha) + (1 - y) fl(1 - alpha) with
    balancing. Backward from the cotangent g: d/dbce = g f, d/df = g bce, d/dm = d/df gamma
    m^(gamma - 1), d/dp_t = -d/dm; d/do = (-d/dbce y) (1 / o) - (-d/dbce (1 - y)) (1 / (1 - o))
    (TensorFlow's log gradient is grad * reciprocal(x): two roundings, JAX's one), through the
    clip (a computed p within its error of a bound may fall on either side: the slope is then
    part of the error); d/dp = that + d/dp_t (y - (1 - y)); d/dy the mirror. Products' first-order
    bounds do not depend on their order. {"value", "input", "target"} in units of u.
    """
    if prob_eps is None:
        raise ValueError("modelled: Keras' clipped form")
    zero = Rounded(0.0, 0.0, dtype)
    p = zero.const(np.asarray(input, np.float64))
    y = zero.const(np.broadcast_to(np.asarray(target, np.float64), p.v.shape))
    if label_smoothing:
        y = y * y.const(1.0 - label_smoothing) + y.const(0.5 * label_smoothing)
    lo, hi = clip_bounds(prob_eps, dtype)
    clipped = np.clip(p.v, lo, hi)
    near = (np.abs(p.v - clipped) <= p.u * p.e) & (p.e > 0)
    o = Rounded(clipped, np.where(near | (clipped == p.v), p.e, 0.0), dtype)
    log_o, one_m_o = o.log(), 1.0 - o
    log_1mo = one_m_o.log()
    not_y = 1.0 - y
    bce = -(y * log_o + not_y * log_1mo)
    one_m_p = 1.0 - p
    m = 1.0 - (y * p + not_y * one_m_p)
    f = m.power(gamma)
    fb = f * bce
    w = None
    if apply_class_balancing and alpha is not None:
        w = y * y.const(float(alpha)) + not_y * y.const(1.0 - float(alpha))
        loss = w * fb
    else:
        loss = fb
    n = loss.v.shape[-1] if sample_axis == "mean" else 1
    g = np.asarray(reduce_grad(loss.v.shape, reduction=reduction, sample_axis=sample_axis), np.float64)
    if sample_axis == "mean":
        per = loss.sum() / float(n)
        per_v, per_e = per.v[..., 0], per.e[..., 0]
        g_per = np.asarray(reduce_grad(per_v.shape, reduction=reduction), np.float64)
    else:
        per_v, per_e, g_per = loss.v, loss.e, g
    value = reduction_error(per_e, per_v, g_per, reduction)
    # backward: the reduction's cotangent and the mean's 1/n, rounded
    gc = zero.const(np.broadcast_to(g, loss.v.shape))
    d_fb = gc * w if w is not None else gc
    d_f, d_bce = d_fb * bce, d_fb * f
    slope = m.power(gamma - 1.0) * float(gamma) if gamma else Rounded(np.zeros(m.v.shape), 0.0, dtype)
    d_pt = -(d_f * slope)
    d_b = -d_bce
    d_o = (d_b * y) * (o._lift(1.0) / o) - (d_b * not_y) * (o._lift(1.0) / one_m_o)
    passed = clip_grad(p.v, lo, hi, d_o.v, tie=clip_tie)
    scale = clip_grad(p.v, lo, hi, np.ones(p.v.shape), tie=clip_tie)
    with np.errstate(invalid="ignore"):
        d_clip = Rounded(passed, scale * d_o.e + np.where(near, np.abs(d_o.v) / p.u + d_o.e, 0.0), dtype)
    d_p = d_clip + (d_pt * y - d_pt * not_y)
    d_y = (d_b * log_o - d_b * log_1mo) + (d_pt * p - d_pt * one_m_p)
    if w is not None:
        d_w = gc * fb
        d_y = d_y + (d_w * y.const(float(alpha)) - d_w * y.const(1.0 - float(alpha)))
    if label_smoothing:
        d_y = d_y * y.const(1.0 - label_smoothing)
    return {"value": value, "input": d_p.e, "target": d_y.e}


#: optax's simplex projection under x64: the prefix sum of the sorted scores, its division by
#: the support size and the differences x_j - tau in the scores' dtype; the rest in float64.
SPARSEMAX_PROJECTION_STAGES = ("projection",)


def multiclass_sparsemax_loss_error(input, target, *, reduction="mean", dtype=np.float32, trace=NO_TRACE, stages=()):
    """Rounding model of optax's multiclass sparsemax loss, whose projection
    (optax/projections/_projections.py, ``_projection_unit_simplex``) computes, for the k
    largest scores u_1 >= ... >= u_k of the support, c = cumsum(u)[k - 1], tau = c / k and
    x_j - tau in the scores' dtype (JAX promotes the int64 k to it), and only then adds the
    float64 1 / k (a Python float over the int64 k, float64 under x64): p_j = relu(1/k + x_j - tau).
    In units of u: err(c) = (k - 1) sum_{i<=k} |u_i| (any order of the prefix sum), err(tau) =
    err(c) / k + |tau|, err(x_j - tau) = err(tau) + |x_j - tau|; relu is 1-Lipschitz, so a p_j
    within that of 0 (outside the support, or at its edge) carries it too. The loss is then
    sum_j p_j w_j + (1 - sum_j p_j^2) / 2 in float64 with w_j = x_j - x_y rounded in the dtype
    (one rounding, |w_j|): err(loss) = sum_j (err(p_j) |w_j| + p_j |w_j| + p_j err(p_j)).
    No gradient: jax.grad raises under x64 (its custom JVP's dtypes differ)."""
    x = np.asarray(input, np.float64)
    p, t, loss = _multiclass_sparsemax(x, target, NO_TRACE)
    k = np.maximum(np.sum(p > 0, axis=-1, keepdims=True), 1)
    top = -np.sort(-x, axis=-1)
    rank = np.arange(x.shape[-1])
    in_top = rank < k
    with np.errstate(invalid="ignore", over="ignore"):
        c = np.sum(np.where(in_top, top, 0.0), axis=-1, keepdims=True)
        e_c = (k - 1) * np.sum(np.where(in_top, np.abs(top), 0.0), axis=-1, keepdims=True)
        tau = c / k
        e_tau = e_c / k + np.abs(tau)
        d = x - tau
        e_d = e_tau + np.abs(d)
        u = unit_roundoff(dtype)
        e_p = np.where(1.0 / k + d + u * e_d > 0, e_d, 0.0)
        w = x - np.take_along_axis(x, np.clip(t, 0, x.shape[-1] - 1)[..., None], axis=-1)
        per = np.sum(e_p * np.abs(w) + p * np.abs(w) + p * e_p, axis=-1)
    g = reduce_grad(loss.shape, reduction=reduction)
    return {"value": reduction_error(per, loss, g, reduction)}
