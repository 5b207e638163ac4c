"""The CTC oracle (``reference/ctc.py``) checked three ways.

(a) Against an independent mpmath (50 digits) derivation that shares nothing with the oracle's
    lattice: it enumerates every frame labelling pi in C^T, collapses it (merge repeats, drop
    blanks) and sums prod exp(lp[t, pi_t]) over those that collapse to the target. Error in
    float64 ULPs of the exact value, beyond what the conditioning explains
    (``EPS * sum |lp| * |d loss / d lp|``, as in ``test_oracle_mpmath.py``): at most 4.
(b) The analytic forward-backward gradient against finite differences of the oracle
    (``fd_failures`` of ``oracle_helpers.py``), under each convention set.
(c) Closed forms at the edges: one frame, the empty target, a repeat with its one alignment,
    zero_infinity, PyTorch's mean over target lengths, optax's log_epsilon with no frames.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from mpmath import mp, mpf
from oracle_helpers import fd_failures

from lossparity.reference.ctc import ctc_loss, ctc_loss_grad

DPS = 50
EPS = 2.0**-52
ULP_BOUND = 4


# ----------------------------------------------------------------------------- (a) mpmath


def _collapse(path, blank):
    out, prev = [], None
    for k in path:
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return tuple(out)


def _mp_ctc(x, labels, blank, log_softmax_input):
    """(loss, cond) of one sample by enumeration at DPS digits: x is (T, C) float64."""
    with mp.workdps(DPS):
        rows = [[mpf(float(v)) for v in row] for row in x]
        if log_softmax_input:
            rows = [[v - mp.log(mp.fsum(mp.exp(u) for u in row)) for v in row] for row in rows]
        T, C = len(rows), len(rows[0]) if rows else 0
        total, occupancy = mpf(0), {}
        for path in itertools.product(range(C), repeat=T):
            if _collapse(path, blank) != tuple(labels):
                continue
            w = mp.exp(mp.fsum(rows[t][k] for t, k in enumerate(path)))
            total += w
            for t, k in enumerate(path):
                occupancy[t, k] = occupancy.get((t, k), mpf(0)) + w
        loss = -mp.log(total)
        # conditioning in the inputs: sum |x| |d loss / d x|; d loss / d lp = -occupancy / Z
        grad = [[-occupancy.get((t, k), mpf(0)) / total for k in range(C)] for t in range(T)]
        if log_softmax_input:
            grad = [[g + mp.exp(rows[t][k]) * -mp.fsum(grad[t]) for k, g in enumerate(grad[t])] for t in range(T)]
        cond = mp.fsum(abs(mpf(float(x[t][k])) * grad[t][k]) for t in range(T) for k in range(C))
        return loss, cond


def _lp(raw):
    raw = np.asarray(raw, np.float64)
    m = raw.max(-1, keepdims=True)
    return raw - m - np.log(np.exp(raw - m).sum(-1, keepdims=True))


A = np.array
#: (x (T, C), labels, blank, log_softmax_input): typical, saturated, repeated, long-path points.
MP_POINTS = [
    (_lp(A([[0.5, 1.0, -0.5], [0.2, -1.0, 1.5], [1.0, 0.3, 0.0], [-0.5, 0.8, 0.4]])), [1, 2], 0, False),
    (_lp(A([[0.5, 1.0, -0.5], [0.2, -1.0, 1.5], [1.0, 0.3, 0.0], [-0.5, 0.8, 0.4]])), [1, 1], 0, False),
    (_lp(A([[30.0, 0.0, -30.0], [0.0, 30.0, 0.0], [-30.0, 0.0, 30.0]])), [1, 2], 0, False),
    (_lp(A([[-700.0, 0.0, 0.0], [0.0, -700.0, 0.0], [0.0, 0.0, -700.0]])), [2, 1], 0, False),
    (A([[0.5, 1.0, -0.5], [0.2, -1.0, 1.5], [1.0, 0.3, 0.0], [-0.5, 0.8, 0.4]]), [2, 0], 1, True),
    (
        A([[8.0, -8.0, 0.5, 1.0], [3.0, 2.0, -1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [-2.0, 7.5, 1.0, 0.25]]),
        [3, 1, 3],
        0,
        True,
    ),
    (_lp(A([[1e-3, 0.0, 2e-3]] * 4)), [], 0, False),
    (A([[0.25, -1.5, 2.0, 0.5]]), [3], 2, False),
]


@pytest.mark.parametrize("point", range(len(MP_POINTS)))
def test_oracle_matches_mpmath_enumeration(point):
    x, labels, blank, lsi = MP_POINTS[point]
    exact, cond = _mp_ctc(x, labels, blank, lsi)
    got = ctc_loss(
        x[None],
        A([labels + [0]], np.int64)[:, : max(len(labels), 1)],
        input_lengths=A([len(x)]),
        target_lengths=A([len(labels)]),
        blank=blank,
        reduction="none",
        log_softmax_input=lsi,
    )[0]
    with mp.workdps(DPS):
        ulp = float(np.spacing(abs(float(exact)))) or 2.0**-1074
        residual = (abs(mpf(float(got)) - exact) - EPS * cond) / ulp
    assert residual <= ULP_BOUND, (point, float(got), float(exact), float(residual))


@pytest.mark.parametrize("point", [0, 2, 5])
def test_gradient_matches_mpmath_enumeration(point):
    """The forward-backward gradient against the mpmath derivative by enumeration (the
    occupancy of each class at each frame), to 1e-12 relative to the largest entry."""
    x, labels, blank, lsi = MP_POINTS[point]
    with mp.workdps(DPS):

        def loss_at(t, k, h):
            y = [[mpf(float(v)) for v in row] for row in x]
            y[t][k] += h
            rows = y
            if lsi:
                rows = [[v - mp.log(mp.fsum(mp.exp(u) for u in row)) for v in row] for row in rows]
            tot = mp.fsum(
                mp.exp(mp.fsum(rows[s][j] for s, j in enumerate(p)))
                for p in itertools.product(range(len(rows[0])), repeat=len(rows))
                if _collapse(p, blank) == tuple(labels)
            )
            return -mp.log(tot)

        h = mpf(10) ** -20
        exact = np.array(
            [
                [float((loss_at(t, k, h) - loss_at(t, k, -h)) / (2 * h)) for k in range(x.shape[1])]
                for t in range(x.shape[0])
            ]
        )
    got = ctc_loss_grad(
        x[None],
        A([labels], np.int64),
        input_lengths=A([len(x)]),
        target_lengths=A([len(labels)]),
        blank=blank,
        reduction="sum",
        log_softmax_input=lsi,
    )["input"][0]
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-12 * np.abs(exact).max())


# ----------------------------------------------------------------------------- (b) finite differences

#: Each convention that changes a derivative, all combined in one set to keep the module fast
#: (every set draws its cases anew): plain (PyTorch's kernel), and optax's lattice with Keras'
#: lengths and PyTorch's mean over target lengths.
FD_CONVENTIONS = [
    {},
    {"log_softmax_input": True, "log_epsilon": -1e5, "ctc_lengths": "keras", "mean_by_length": True},
]


def test_gradient_matches_finite_differences():
    failures = fd_failures("ctc", FD_CONVENTIONS)
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(failures[:10])


# ----------------------------------------------------------------------------- (c) closed forms

LP = _lp(A([[0.5, 1.0, -0.5], [0.2, -1.0, 1.5], [1.0, 0.3, 0.0]]))


def _one(x, labels, **kw):
    return ctc_loss(
        x[None],
        A([labels or [0]], np.int64),
        input_lengths=A([len(x)]),
        target_lengths=A([len(labels)]),
        reduction="none",
        **kw,
    )[0]


def test_one_frame_is_minus_log_p_of_the_label():
    assert _one(LP[:1], [2]) == -LP[0, 2]


def test_empty_target_is_all_blanks():
    assert _one(LP, [], blank=1) == pytest.approx(-LP[:, 1].sum(), rel=4 * EPS)


def test_repeat_in_three_frames_has_one_alignment():
    assert _one(LP, [1, 1]) == pytest.approx(-(LP[0, 1] + LP[1, 0] + LP[2, 1]), rel=4 * EPS)
    assert _one(LP[:2], [1, 1]) == math.inf
    g = ctc_loss_grad(LP[None, :2], A([[1, 1]]), input_lengths=A([2]), target_lengths=A([2]), reduction="sum")["input"]
    assert np.isnan(g).all()


def test_zero_infinity_and_mean_over_target_lengths():
    x = np.stack([LP[:2], LP[:2]])
    kw = dict(input_lengths=A([2, 2]), target_lengths=A([3, 1]))
    t = A([[1, 2, 1], [2, 0, 0]])
    ok = -np.logaddexp.reduce([LP[0, 2] + LP[1, 0], LP[0, 0] + LP[1, 2], LP[0, 2] + LP[1, 2]])
    assert ctc_loss(x, t, **kw, reduction="sum") == math.inf
    assert ctc_loss(x, t, **kw, reduction="sum", zero_infinity=True) == pytest.approx(ok, rel=4 * EPS)
    g = ctc_loss_grad(x, t, **kw, reduction="sum", zero_infinity=True)["input"]
    assert (g[0] == 0).all() and np.isfinite(g[1]).all()
    t2 = A([[1, 2, 0], [2, 0, 0]])
    kw2 = dict(input_lengths=A([2, 2]), target_lengths=A([2, 1]))
    per = ctc_loss(x, t2, **kw2, reduction="none")
    assert ctc_loss(x, t2, **kw2, mean_by_length=True) == pytest.approx((per[0] / 2 + per[1]) / 2, rel=4 * EPS)
    assert ctc_loss(x, t2, **kw2) == pytest.approx(per.mean(), rel=4 * EPS)


def test_log_epsilon_without_frames():
    """No frames and one label: optax's states P[1] and E[0] both start at log_epsilon, so the
    loss is -(log_epsilon + log 2), not +inf."""
    got = ctc_loss(
        LP[None, :0], A([[1]]), input_lengths=A([0]), target_lengths=A([1]), reduction="none", log_epsilon=-1e5
    )[0]
    assert got == pytest.approx(1e5 - math.log(2), rel=EPS)
    assert (
        ctc_loss(LP[None, :0], A([[1]]), input_lengths=A([0]), target_lengths=A([1]), reduction="none")[0] == math.inf
    )


def test_keras_lengths_read_the_arrays():
    """keras.losses.ctc: every frame, and as many labels as are not 0 (wherever they are)."""
    x = np.stack([LP, LP])
    t = A([[1, 2], [2, 0]])
    got = ctc_loss(x, t, input_lengths=A([1, 1]), target_lengths=A([0, 0]), reduction="none", ctc_lengths="keras")
    want = ctc_loss(x, t, input_lengths=A([3, 3]), target_lengths=A([2, 1]), reduction="none")
    np.testing.assert_array_equal(got, want)
