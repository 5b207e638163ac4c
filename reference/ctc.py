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
``time_major`` (layout only). ``zero_infinity`` is PyTorch's parameter: an infinite loss (and
its gradient) is replaced by 0.

Sums over alignments are taken in log space (``np.logaddexp``), so that nothing underflows
however long or improbable the alignment.
"""

from __future__ import annotations

import functools

import numpy as np

from lossparity.reference._math import log_softmax, log_softmax_grad, times
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
