"""Connectionist Temporal Classification (CTC): -log p(target | input), summed over alignments.

Shapes are canonical: ``input`` is ``(N, T, C)`` batch-major, a score per class and frame
(log-probabilities, or logits under ``log_softmax_input``); ``target`` is ``(N, S)`` integer
labels, right-padded (what lies beyond a sample's target length is never read);
``input_lengths`` and ``target_lengths`` are ``(N,)`` integers. A binding that reads
time-major ``(T, N, C)`` (PyTorch) has its input moved by its adapter (``time_major``).

The loss of sample n is -log sum over alignments pi of length ``input_lengths[n]`` that
collapse (merge repeats, then drop blanks) to ``target[n, :target_lengths[n]]`` of
prod_t exp(input[n, t, pi_t]) (Graves et al., 2006). It is +inf where no alignment exists:
a target longer than the input, or repeated labels that need a blank between them and have no
frame left for it. Frames at and beyond ``input_lengths[n]`` do not enter the loss.

The alignments are walked on a lattice of 2L + 1 states for a target of length L, indexed by
position: P[n], "the last frame was a blank after n labels" (n = 0..L), and E[n], "the last
frame emitted label n + 1" (n = 0..L-1). Per frame: P[n] -> P[n] (blank), E[n-1] -> P[n]
(blank), P[n] -> E[n] (label n+1), E[n] -> E[n] (label n+1, a repeat that merges) and
E[n-1] -> E[n] (label n+1 straight after label n, only where the two differ). Before the
first frame only P[0] is occupied; the loss reads P[L] and E[L-1] after the last frame. A
label equal to the blank class is still a label state (its position decides, as in
PyTorch's and TensorFlow's extended label sequences).

Conventions (``reference/conventions.py``): ``log_softmax_input`` (the input is logits),
``log_epsilon`` (log 0 replaced by a large negative number: every impossible transition is
taken at that cost, optax's lattice), ``mean_by_length`` (PyTorch's 'mean' divides each loss
by its target length first), ``ctc_lengths="keras"`` (lengths read off the arrays),
``time_major`` (layout only), ``ctc_blank="last"`` (the blank is the last class, C - 1, whatever the
``blank`` parameter: ``tf.compat.v1.nn.ctc_loss``), ``ctc_label_checks="tf_v1"`` (TensorFlow's CTCLoss
kernel refuses an empty target and a target longer than its input with InvalidArgumentError).
``zero_infinity`` is PyTorch's parameter: an infinite loss (and
its gradient) is replaced by 0.

Sums over alignments are taken in log space (``np.logaddexp``), so that nothing underflows
however long or improbable the alignment.
"""

from __future__ import annotations

import functools

import numpy as np

from lossparity.reference._math import log_softmax, log_softmax_grad, times
from lossparity.reference.errors import OracleError
from lossparity.reference.reduction import chain, reduce, reduce_grad
from lossparity.reference.trace import NO_TRACE


def _edges(labels, blank, log_epsilon):
    """The lattice of one target as arrays (src, dst, class, penalty) per frame, the number of
    states, and the initial log-weights.

    States 0..L are P[0..L], L+1..2L are E[0..L-1]. ``penalty`` is 0 for an allowed
    transition; under ``log_epsilon`` the forbidden ones are present at cost log_epsilon:
    every state but P[0] starts at log_epsilon, and the skip E[n-1] -> E[n] between equal
    labels costs log_epsilon. optax also counts E[n-1] -> P[n] twice, once through its
    epsilon transition and once as a blank transition, one of the two at log_epsilon: the
    edge carries log(1 + e^log_epsilon), 0 in float64 for -1e5.
    """
    L = len(labels)
    eps = -np.inf if log_epsilon is None else float(log_epsilon)

    def P(n):
        return n

    def E(n):
        return L + 1 + n

    def cost(forbidden):
        return eps if forbidden else 0.0

    src, dst, cls, pen = [], [], [], []

    def edge(a, b, c, p):
        src.append(a), dst.append(b), cls.append(int(c)), pen.append(p)

    for n in range(L + 1):
        edge(P(n), P(n), blank, 0.0)
        if n >= 1:
            edge(E(n - 1), P(n), blank, 0.0 if log_epsilon is None else float(np.logaddexp(0.0, eps)))
    for n in range(L):
        edge(P(n), E(n), labels[n], 0.0)
        edge(E(n), E(n), labels[n], 0.0)
        if n >= 1:
            edge(E(n - 1), E(n), labels[n], cost(labels[n - 1] == labels[n]))
    init = np.full(2 * L + 1, eps)
    init[P(0)] = 0.0
    final = [P(L)] + ([E(L - 1)] if L else [])
    return (np.array(src), np.array(dst), np.array(cls), np.array(pen)), init, final


def _grouped(index, size):
    """For each of ``size`` slots the ids of the edges whose ``index`` is that slot, padded with
    the sentinel id ``len(index)`` (a -inf appended to the edge values): at most three each."""
    groups = [np.flatnonzero(index == k) for k in range(size)]
    width = max((len(g) for g in groups), default=0)
    out = np.full((size, max(width, 1)), len(index))
    for k, ids in enumerate(groups):
        out[k, : len(ids)] = ids
    return out


@functools.lru_cache(maxsize=4096)
def _lattice(labels, blank, log_epsilon):
    """:func:`_edges` with the incoming and outgoing edges of each state (cached per target)."""
    (src, dst, cls, pen), init, final = _edges(np.array(labels, np.int64), blank, log_epsilon)
    return (src, dst, cls, pen), init, final, _grouped(dst, len(init)), _grouped(src, len(init))


def _lse_groups(values, groups):
    """log sum exp of the edge ``values`` within each state's group (-inf for none)."""
    padded = np.append(values, -np.inf)[groups]
    with np.errstate(invalid="ignore"):
        return np.logaddexp.reduce(padded, axis=1)


def _sample(lp, labels, blank, log_epsilon, want_grad):
    """-log p and (optionally) d(-log p)/d lp for one sample: ``lp`` is ``(T_n, C)``, the
    frames within its input length, ``labels`` its ``L`` labels."""
    (src, dst, cls, pen), init, final, incoming, outgoing = _lattice(
        tuple(int(v) for v in labels), int(blank), None if log_epsilon is None else float(log_epsilon)
    )
    K, T = len(init), lp.shape[0]
    alphas = [init]
    for t in range(T):
        alphas.append(_lse_groups(alphas[-1][src] + pen + lp[t, cls], incoming))
    log_z = np.logaddexp.reduce(alphas[-1][final])
    loss = 0.0 - log_z  # +0, not -0, for a certain alignment
    if not want_grad:
        return loss, None
    grad = np.zeros(lp.shape)
    if log_z == -np.inf:  # no alignment: the loss is +inf around this point, its slope undefined
        return loss, np.full(lp.shape, np.nan)
    beta = np.full(K, -np.inf)
    beta[final] = 0.0
    for t in range(T - 1, -1, -1):
        # each edge's share of all alignments at frame t: alpha(src) w beta(dst) / Z
        occupancy = np.exp(alphas[t][src] + pen + lp[t, cls] + beta[dst] - log_z)
        np.add.at(grad[t], cls, -occupancy)
        beta = _lse_groups(beta[dst] + pen + lp[t, cls], outgoing)
    return loss, grad


def _lengths(input, target, input_lengths, target_lengths, ctc_lengths):
    """The lengths the binding reads: given, or (``"keras"``) T for every sample and the number
    of labels that are not 0 (keras.losses.ctc ignores any lengths and masks label 0)."""
    n, t = input.shape[:2]
    if ctc_lengths == "keras":
        return np.full(n, t, np.int64), np.count_nonzero(target != 0, axis=-1).astype(np.int64)
    if ctc_lengths != "given":
        raise ValueError(f"unknown ctc_lengths {ctc_lengths!r}")
    return (
        np.broadcast_to(np.asarray(input_lengths, np.int64), (n,)),
        np.broadcast_to(np.asarray(target_lengths, np.int64), (n,)),
    )


def _forward(
    input, target, input_lengths, target_lengths, blank, log_softmax_input, log_epsilon, ctc_lengths, trace, want_grad
):
    x = trace(
        "input",
        np.asarray(input, np.float64),
        f"reads {np.shape(input)} as (batch, frames, classes) "
        + (
            "logits, and takes a log_softmax over the classes"
            if log_softmax_input
            else "log-probabilities, used as given (no normalization)"
        ),
    )
    lp = trace("log_softmax", log_softmax(x), "x - logsumexp(x) over the classes") if log_softmax_input else x
    target = np.asarray(target, np.int64)
    in_len, tg_len = _lengths(x, target, input_lengths, target_lengths, ctc_lengths)
    trace(
        "lengths",
        np.stack([in_len, tg_len]),
        "input lengths, target lengths"
        + (" (keras: T, and the labels that are not 0)" if ctc_lengths == "keras" else ""),
    )
    losses, grads = np.zeros(x.shape[0]), np.zeros(x.shape)
    for i in range(x.shape[0]):
        losses[i], g = _sample(lp[i, : in_len[i]], target[i, : tg_len[i]], blank, log_epsilon, want_grad)
        if want_grad:
            grads[i, : in_len[i]] = g
    note = "-log sum over alignments of prod exp(log p)" + (
        f", log 0 read as {log_epsilon}" if log_epsilon is not None else ""
    )
    trace("per-sample loss", losses, note)
    return x, lp, tg_len, losses, grads


def ctc_loss(
    input,
    target,
    *,
    input_lengths,
    target_lengths,
    blank=0,
    zero_infinity=False,
    reduction="mean",
    log_softmax_input=False,
    log_epsilon=None,
    mean_by_length=False,
    ctc_lengths="given",
    time_major=False,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """CTC negative log-likelihood of ``target`` ``(N, S)`` under ``input`` ``(N, T, C)``.

    Returns one loss per sample (``reduction="none"``, shape ``(N,)``) or their sum or mean.
    ``blank`` is the blank class; ``zero_infinity`` replaces an infinite loss by 0;
    ``mean_by_length`` divides each loss by max(target length, 1) before 'mean' (PyTorch).
    """
    _, _, tg_len, loss, _ = _forward(
        input, target, input_lengths, target_lengths, blank, log_softmax_input, log_epsilon, ctc_lengths, trace, False
    )
    if zero_infinity:
        loss = trace("zero_infinity", np.where(loss == np.inf, 0.0, loss), "an infinite loss is 0")
    if mean_by_length and reduction == "mean":
        loss = trace(
            "per target length", loss / np.maximum(tg_len, 1), "each loss / max(target length, 1) before the mean"
        )
    return reduce(loss, reduction=reduction, trace=trace)


def ctc_loss_grad(
    input,
    target,
    *,
    input_lengths,
    target_lengths,
    blank=0,
    zero_infinity=False,
    reduction="mean",
    log_softmax_input=False,
    log_epsilon=None,
    mean_by_length=False,
    ctc_lengths="given",
    time_major=False,
    dtype=np.float32,
    trace=NO_TRACE,
):
    """d sum(out) / d input of :func:`ctc_loss`, ``(N, T, C)``.

    Per sample, d(-log p)/d log p[t, c] = -(the share of all alignments that emit c at frame
    t), by the forward-backward algorithm; 0 at frames beyond the input length; NaN within it
    where no alignment exists (the loss is +inf there: PyTorch computes inf - inf), and 0 for
    such a sample under ``zero_infinity``. With ``log_softmax_input`` it is pulled back
    through the log_softmax: softmax(x) - occupancy within the input length.
    """
    x, _, tg_len, loss, g = _forward(
        input, target, input_lengths, target_lengths, blank, log_softmax_input, log_epsilon, ctc_lengths, NO_TRACE, True
    )
    if log_softmax_input:
        # the loss moves by sum_c g_c d log_softmax(x)_c: log_softmax_grad's -sum a log p with a = -g
        g = log_softmax_grad(x, -g)
        in_len, _ = _lengths(x, target, input_lengths, target_lengths, ctc_lengths)
        g = np.where(np.arange(x.shape[1])[None, :, None] < in_len[:, None, None], g, 0.0)
    if zero_infinity:
        g = np.where((loss == np.inf)[:, None, None], 0.0, g)
    scale = np.ones(loss.shape)
    if mean_by_length and reduction == "mean":
        scale = 1.0 / np.maximum(tg_len, 1)
    cot = times(reduce_grad(loss.shape, reduction=reduction), scale)
    return {"input": chain(cot, g)}


# ----------------------------------------------------------------------------- rounding models
# ``Spec.error_model`` of CTC: the first-order bound, in units of the unit roundoff u of the
# dtype a part is judged in, of computing the loss stage by stage in a narrower dtype
# (``reference/rounding.py`` states the model). It returns {"value": (N,) or (), "input": (N, T, C)}.

#: The stages the CTC model knows. ``log_softmax``: the log_softmax of the logits (and its
#: pullback) in the binding's dtype; ``lattice``: the forward(-backward) recursion in the
#: binding's dtype; ``float32 log_softmax``, ``float32 lattice``: the same in float32 whatever
#: the input's dtype (Keras casts the logits to result_type(dtype, float32), and float64 ones
#: to float32: the rounding of a float64 input to float32 is then part of the stage).
CTC_STAGES = ("log_softmax", "lattice", "float32 log_softmax", "float32 lattice")


def _ratios(stages, dtype) -> tuple[float, float, float]:
    """(log_softmax, lattice, input cast) roundoffs in units of ``dtype``'s: 1 for a stage in
    the binding's dtype, u32 / u for one in float32, 0 for a stage not declared."""
    from lossparity.reference.rounding import unit_roundoff

    u = unit_roundoff(np.dtype(dtype))
    r32 = 2.0**-24 / u
    r_ls = max(1.0 if "log_softmax" in stages else 0.0, r32 if "float32 log_softmax" in stages else 0.0)
    r_lat = max(1.0 if "lattice" in stages else 0.0, r32 if "float32 lattice" in stages else 0.0)
    cast = r32 if "float32 log_softmax" in stages and u < 2.0**-24 else 0.0
    return r_ls, r_lat, cast


def _lse_error(values, errors, local, groups, r_lat):
    """One step of a recursion in log space with its error: each state's log sum exp of its
    edges' ``values`` (``_lse_groups``) and the error of the result (units of u): the edges'
    errors (carried ``errors`` plus this step's ``local``) weighted by their share
    w = exp(value - result) (the derivative of log sum exp: a convex combination, so an
    improbable edge, log_epsilon's included, carries its error at its tiny weight), plus the
    log sum exp's own rounding r_lat (|result| + 2k + 1) for k finite terms: m + log(sum exp(v -
    m)) rounds each v - m (u |v - m| relative in its exp, w |v - m| <= 1/e each), each exp, the
    k - 1 additions, the log (u |log S| <= u log k, plus the sum's relative error) and the
    final addition of m (u |result|); pairwise logaddexp costs no more."""
    out = _lse_groups(values, groups)
    padded_v = np.append(values, -np.inf)[groups]
    padded_e = np.append(errors + local, 0.0)[groups]
    with np.errstate(invalid="ignore", over="ignore"):
        w = np.where(np.isfinite(padded_v), np.exp(padded_v - out[:, None]), 0.0)
        w = np.where(np.isfinite(w), w, 0.0)
        k = np.sum(np.isfinite(padded_v), axis=1)
        err = np.sum(np.where(w > 0, w * padded_e, 0.0), axis=1) + r_lat * (
            np.where(np.isfinite(out), np.abs(out), 0) + 2 * k + 1
        )
    return out, err


def _sample_error(lp, e_ls, labels, blank, log_epsilon, r_lat, want_grad):
    """Loss, its error, and (optionally) -occupancy per (frame, class) with its error, for one
    sample (units of u). ``e_ls`` bounds each log-probability's error (its stage's figure).

    Forward: alpha_t(s) = lse over edges (alpha_{t-1}(src) + pen + lp[t, c]); an edge's value
    carries alpha's error, e_ls[t, c], and the two additions' r_lat 2 (|alpha| + |pen| + |lp|).
    Backward likewise for beta, each edge adding r_lat 2 (|alpha_t(src)| + |alpha_{t+1}(dst)|)
    too: reverse-mode through the forward scan (JAX) forms w = exp(v - alpha_{t+1}(dst)) instead
    of beta, whose errors telescope along a path to the same alpha and e_ls terms plus these
    subtractions. An edge's occupancy exp(alpha + pen + lp + beta - log Z) then has the relative
    error err(alpha) + e_ls + err(beta) + err(log Z) + r_lat (4 sum of the five magnitudes + 1)
    (four additions, the exp): log occupancy is that sum, each term's perturbation bounded.
    A class's -occupancy sums its edges (at most 2L + 1): r_lat n sum occupancy more.
    """
    (src, dst, cls, pen), init, final, incoming, outgoing = _lattice(
        tuple(int(v) for v in labels), int(blank), None if log_epsilon is None else float(log_epsilon)
    )
    K, T = len(init), lp.shape[0]
    apen = np.abs(pen)
    alphas, errs = [init], [np.zeros(K)]
    with np.errstate(invalid="ignore", over="ignore"):
        for t in range(T):
            a = alphas[-1]
            v = a[src] + pen + lp[t, cls]
            local = e_ls[t, cls] + r_lat * 2 * (
                np.where(np.isfinite(a[src]), np.abs(a[src]), 0) + apen + np.abs(lp[t, cls])
            )
            new, err = _lse_error(v, errs[-1][src], local, incoming, r_lat)
            alphas.append(new)
            errs.append(err)
        fin = np.zeros(K, bool)
        fin[final] = True
        log_z, err_z = _lse_error(alphas[-1], errs[-1], 0.0, np.array([final]), r_lat)
        log_z, err_z = float(log_z[0]), float(err_z[0])
    loss = -log_z
    if not want_grad:
        return loss, err_z, None, None
    occ_cls, err_cls = np.zeros(lp.shape), np.zeros(lp.shape)
    if not np.isfinite(log_z):
        return loss, err_z, np.full(lp.shape, np.nan), np.full(lp.shape, np.nan)
    beta = np.full(K, -np.inf)
    beta[final] = 0.0
    berr = np.zeros(K)
    fa = lambda z: np.where(np.isfinite(z), np.abs(z), 0.0)  # noqa: E731
    with np.errstate(invalid="ignore", over="ignore"):
        for t in range(T - 1, -1, -1):
            a_src, a_dst = alphas[t][src], alphas[t + 1][dst]
            occ = np.exp(a_src + pen + lp[t, cls] + beta[dst] - log_z)
            occ = np.where(np.isfinite(occ), occ, 0.0)
            rel = (
                errs[t][src]
                + e_ls[t, cls]
                + berr[dst]
                + err_z
                + r_lat * (4 * (fa(a_src) + apen + np.abs(lp[t, cls]) + fa(beta[dst]) + abs(log_z)) + 1)
            )
            n_edges = np.bincount(cls, minlength=lp.shape[1])
            np.add.at(occ_cls[t], cls, occ)
            np.add.at(err_cls[t], cls, np.where(occ > 0, occ * rel, 0.0))
            err_cls[t] += r_lat * n_edges * occ_cls[t]
            v = beta[dst] + pen + lp[t, cls]
            local = e_ls[t, cls] + r_lat * 2 * (fa(beta[dst]) + apen + np.abs(lp[t, cls]) + fa(a_src) + fa(a_dst))
            beta, berr = _lse_error(v, berr[dst], local, outgoing, r_lat)
    return loss, err_z, -occ_cls, err_cls


def ctc_loss_error(
    input,
    target,
    *,
    input_lengths,
    target_lengths,
    blank=0,
    zero_infinity=False,
    reduction="mean",
    log_softmax_input=False,
    log_epsilon=None,
    mean_by_length=False,
    ctc_lengths="given",
    time_major=False,
    dtype=np.float32,
    trace=NO_TRACE,
    stages=(),
):
    """Rounding model of :func:`ctc_loss` and :func:`ctc_loss_grad`: {"value", "input"} bounds
    in units of ``dtype``'s u, for the ``stages`` (:data:`CTC_STAGES`) a binding computes
    narrower than float64.

    - ``log_softmax`` (x to lp): each lp[t, c] is off by at most e_ls = |d_c| + |lp_c| + A
      (``rounding.log_softmax_error``: d = x - max, A per frame); an input rounded from float64
      to float32 first (``float32 log_softmax`` of a float64 case) adds |x_c| + sum_k p_k |x_k|,
      lp's derivative (I - p) applied to a relative perturbation of x.
    - The loss is -log Z, and d(-log Z)/d lp[t, c] = -occupancy[t, c], which sums to 1 over the
      classes of a frame: the log-probabilities' errors cost at most sum_t max_c e_ls, carried
      exactly (as occupancy-weighted sums) by the recursion of :func:`_sample_error`, with the
      ``lattice`` stage's roundings, T steps of log sum exp of at most three terms.
    - The gradient with respect to lp is G = -occupancy (error: :func:`_sample_error`); with
      respect to logits (``log_softmax_input``) it is pulled back through log_softmax in its
      stage's dtype: grad_c = G_c - e_c sum(G) / S (e_c = exp(d_c), S = sum e): the cotangent
      rounded into that dtype on its way in (2 r_ls |G_c|: the blank column takes two
      contributions and adds them), the G errors carried (|dG_c| + p_c sum |dG|), e_c's
      relative error |d_c| + 1 (+ the cast's), S's sum_k p_k (|d_k| + 1) + C - 1, the sum of
      the C cotangents C - 1, the division and the product 2, and the final difference's
      rounding |grad_c|.
    - The reduction, in the result's dtype: ``rounding.reduction_error``.
    """
    from lossparity.reference.rounding import log_softmax_error, reduction_error

    r_ls, r_lat, cast = _ratios(stages, dtype)
    x = np.asarray(input, np.float64)
    target = np.asarray(target, np.int64)
    in_len, tg_len = _lengths(x, target, input_lengths, target_lengths, ctc_lengths)
    if log_softmax_input:
        lp, p, e = log_softmax_error(x)
        with np.errstate(invalid="ignore"):
            e_cast = np.abs(x) + np.sum(p * np.abs(x), axis=-1, keepdims=True)
        e_ls = r_ls * e + cast * e_cast
    else:
        lp, p = x, np.exp(x)
        e_ls = np.zeros(x.shape)
    n = x.shape[0]
    losses, per = np.zeros(n), np.zeros(n)
    g_lp, err_lp = np.zeros(x.shape), np.zeros(x.shape)
    for i in range(n):
        k = in_len[i]
        losses[i], per[i], g, ge = _sample_error(
            lp[i, :k], e_ls[i, :k], target[i, : tg_len[i]], blank, log_epsilon, r_lat, True
        )
        g_lp[i, :k], err_lp[i, :k] = g, ge
    if zero_infinity:
        per = np.where(losses == np.inf, 0.0, per)
    scale = np.ones(n)
    if mean_by_length and reduction == "mean":
        losses, per = losses / np.maximum(tg_len, 1), per / np.maximum(tg_len, 1)
        scale = 1.0 / np.maximum(tg_len, 1)
    cot = times(reduce_grad(losses.shape, reduction=reduction), scale)
    value = reduction_error(
        per, np.where(np.isfinite(losses), losses, 0.0), reduce_grad(losses.shape, reduction=reduction), reduction
    )
    if log_softmax_input:
        d = x - np.max(x, axis=-1, keepdims=True)
        with np.errstate(invalid="ignore"):
            total = np.sum(g_lp, axis=-1, keepdims=True)
            rel_s = np.sum(p * (np.abs(d) + 1), axis=-1, keepdims=True) + x.shape[-1] - 1
            grad = g_lp - p * total
            err = (
                err_lp
                + p * np.sum(err_lp, axis=-1, keepdims=True)
                + r_ls
                * (2 * np.abs(g_lp) + p * np.abs(total) * (np.abs(d) + 1 + rel_s + x.shape[-1] + 1) + np.abs(grad))
                + cast * p * np.abs(total) * e_cast
            )
    else:
        err = err_lp
    if zero_infinity:
        err = np.where((losses == np.inf)[:, None, None], 0.0, err)
    return {"value": value, "input": np.abs(cot)[:, None, None] * err}


# ----------------------------------------------------------------------------- tf.compat.v1.nn.ctc_loss
# Its documentation: "the largest value (num_classes - 1) is reserved for the blank label", and labels take
# values in [0, num_labels); no blank argument (``ctc_blank="last"``). Its kernel (CTCLoss, core/kernels/
# ctc_loss_op.cc) checks each sample before the lattice: "Labels length is zero in batch b" for an empty
# target, and "Not enough time for target transition sequence (required: L, available: T_b)" where the
# target's L labels outnumber the input's frames, both InvalidArgumentError (the second a zero loss and
# gradient under ignore_longer_outputs_than_inputs=True, not bound here). Repeated labels that need blanks
# between them and have no frame for those pass the check and cost +inf (the lattice's), as in the others.


def tf_v1_conventions(fn):
    """``fn`` (:func:`ctc_loss`, its gradient or its error model) with the conventions ``ctc_blank``
    (``"given"``: the ``blank`` parameter; ``"last"``: the class C - 1 of an ``(N, T, C)`` input) and
    ``ctc_label_checks`` (None; ``"tf_v1"``: OracleError("InvalidArgumentError") for a sample whose
    target is empty or longer than its input length, in canonical layout)."""

    @functools.wraps(fn)
    def checked(input, target, *args, ctc_blank="given", ctc_label_checks=None, **kw):
        if ctc_blank == "last":
            kw["blank"] = np.shape(input)[-1] - 1
        elif ctc_blank != "given":
            raise ValueError(f"unknown ctc_blank {ctc_blank!r}")
        if ctc_label_checks == "tf_v1":
            in_len, tg_len = _lengths(
                np.asarray(input), np.asarray(target), kw["input_lengths"], kw["target_lengths"], "given"
            )
            for b, (t_b, l_b) in enumerate(zip(in_len, tg_len)):
                if l_b == 0:
                    raise OracleError("InvalidArgumentError", f"Labels length is zero in batch {b}")
                if l_b > t_b:
                    raise OracleError(
                        "InvalidArgumentError",
                        f"Not enough time for target transition sequence (required: {l_b}, available: {t_b}) "
                        f"in batch {b}",
                    )
        elif ctc_label_checks is not None:
            raise ValueError(f"unknown ctc_label_checks {ctc_label_checks!r}")
        return fn(input, target, *args, **kw)

    return checked


ctc_loss = tf_v1_conventions(ctc_loss)
ctc_loss_grad = tf_v1_conventions(ctc_loss_grad)
ctc_loss_error = tf_v1_conventions(ctc_loss_error)
