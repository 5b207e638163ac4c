"""The segmentation oracles: mpmath re-derivation, gradients against finite differences, closed forms.

The mpmath side is written from the formulas in the frameworks' documentation (Keras'
``1 - 2 sum(y p) / (sum y + sum p)``, optax's per-class Tversky index with ``smooth`` on both
sides, optax's ranking softmax definition), element by element at 50 digits, not from the
oracle's vectorized code.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from mpmath import mpf
from oracle_helpers import fd_failures

from lossparity.conformance.specs import SPECS
from lossparity.reference import segmentation as seg
from lossparity.reference.errors import OracleError

mpmath.mp.dps = 50
ULPS = 4


def _ulps(oracle, exact):
    """|oracle - exact| in float64 ULPs of the exact value (elementwise, max)."""
    o = np.atleast_1d(np.asarray(oracle, np.float64)).ravel()
    x = [mpf(v) for v in np.atleast_1d(np.asarray(exact, dtype=object)).ravel()]
    worst = 0.0
    for a, b in zip(o, x):
        if math.isnan(a) or mpmath.isnan(b):
            assert math.isnan(a) and mpmath.isnan(b)
            continue
        worst = max(worst, float(abs(mpf(a) - b) / mpf(np.spacing(abs(float(b))))))
    return worst


# ----------------------------------------------------------------------------- mpmath references


def _mp_sigmoid(x):
    return 1 / (1 + mpmath.exp(-mpf(x)))


def _mp_tversky_masks(p, t, alpha, beta, n0, d0):
    """One mask: lists of probabilities and targets."""
    i = mpmath.fsum(mpf(a) * mpf(b) for a, b in zip(p, t))
    fp = mpmath.fsum(mpf(a) * (1 - mpf(b)) for a, b in zip(p, t))
    fn = mpmath.fsum(mpf(b) * (1 - mpf(a)) for a, b in zip(p, t))
    return 1 - (i + n0) / (i + alpha * fp + beta * fn + d0)


def _mp_keras_dice(p, t, eps):
    """Keras: 1 - 2 sum(y p) / (sum y + sum p + eps), over everything."""
    p, t = [mpf(v) for v in np.ravel(p)], [mpf(v) for v in np.ravel(t)]
    return 1 - 2 * mpmath.fsum(a * b for a, b in zip(p, t)) / (mpmath.fsum(t) + mpmath.fsum(p) + mpf(eps))


def _mp_ranking(s, y, where):
    valid = [i for i in range(len(s)) if where[i]]
    if not valid:
        return mpf(0)
    lse = mpmath.log(mpmath.fsum(mpmath.exp(mpf(s[i])) for i in valid))
    return -mpmath.fsum(mpf(y[i]) * (mpf(s[i]) - lse) for i in valid)


# ----------------------------------------------------------------------------- (a) mpmath


@pytest.mark.parametrize(
    "p, t",
    [
        ([0.3, 0.9, 0.6, 0.2], [0.25, 0.5, 0.75, 1.0]),
        ([1e-30, 0.5, 1 - 2**-40], [0.0, 1.0, 1.0]),  # near-empty and near-perfect entries
        ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),  # empty masks: 0 / eps, a loss of exactly 1
        ([1.0, 1.0], [1.0, 1.0]),  # perfect overlap: eps / (4 + eps)
    ],
)
def test_keras_dice_against_mpmath(p, t):
    eps = float(np.float32(1e-7))
    got = seg.dice(np.array(p), np.array(t), dice_eps=1e-7, dtype=np.float32, reduction="none")
    assert _ulps(got, _mp_keras_dice(p, t, eps)) <= ULPS


@pytest.mark.parametrize("alpha, beta, smooth", [(0.7, 0.3, 0.0), (0.2, 0.8, 1.0), (1.0, 1.0, 1e-5)])
def test_tversky_against_mpmath(alpha, beta, smooth):
    p = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7]])
    t = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    got = seg.tversky(p, t, alpha=alpha, beta=beta, smooth=smooth, axis=(0,), reduction="none")
    exact = [_mp_tversky_masks(p[:, c], t[:, c], mpf(alpha), mpf(beta), mpf(smooth), mpf(smooth)) for c in range(2)]
    assert _ulps(got, exact) <= ULPS


def test_optax_dice_logits_against_mpmath():
    """optax dice_loss defaults: softmax over classes, spatial sums, smooth 1 on both sides, class mean."""
    x = np.array([[[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]], [[-20.0, 20.0, 0.0], [1.0, 1.0, 1.0]]])
    t = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    got = seg.dice(
        x,
        t,
        smooth=1.0,
        from_logits=True,
        class_reduction="mean",
        reduction="none",
        smooth_form="tversky",
        overlap_axes="inner",
    )
    exact = []
    for n in range(2):
        probs = []
        for h in range(2):
            e = [mpmath.exp(mpf(v)) for v in x[n, h]]
            probs.append([v / mpmath.fsum(e) for v in e])
        per = [
            _mp_tversky_masks([probs[h][c] for h in range(2)], t[n, :, c], mpf("0.5"), mpf("0.5"), 1, 1)
            for c in range(3)
        ]
        exact.append(mpmath.fsum(per) / 3)
    assert _ulps(got, exact) <= ULPS


def test_binary_dice_sigmoid_against_mpmath():
    x = np.array([[2.0, -1.0, 0.5], [-3.0, 4.0, 0.0]])
    t = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    got = seg.dice(
        x,
        t,
        smooth=1.0,
        from_logits=True,
        class_reduction="mean",
        reduction="none",
        smooth_form="tversky",
        overlap_axes="inner",
        binary_channel=True,
    )
    exact = [_mp_tversky_masks([_mp_sigmoid(v) for v in x[n]], t[n], mpf("0.5"), mpf("0.5"), 1, 1) for n in range(2)]
    assert _ulps(got, exact) <= ULPS


@pytest.mark.parametrize(
    "s, y, where",
    [
        ([2.0, 1.0, 3.0], [1.0, 0.0, 0.0], [True, True, True]),
        ([1e4, -1e4, 0.0], [0.0, 1.0, 1.0], [True, True, True]),  # saturated softmax
        ([1.0, 2.0, 3.0], [2.0, 2.0, 2.0], [True, False, True]),  # tied labels, one item masked
    ],
)
def test_ranking_softmax_against_mpmath(s, y, where):
    got = seg.ranking_softmax(np.array(s), np.array(y), where=np.array(where), reduction="none")
    assert _ulps(got, _mp_ranking(s, y, where)) <= ULPS


# ----------------------------------------------------------------------------- (b) gradients

FD = {
    "dice": [
        {},
        {"dice_eps": 1e-7},
        {"smooth_form": "tversky", "overlap_axes": "inner"},
        {"smooth_form": "tversky", "overlap_axes": "inner", "binary_channel": True},
    ],
    "tversky": [{}, {"dice_eps": 1e-7}, {"overlap_axes": "inner"}],
    "generalized_dice": [{"weight_eps": 1e-7, "smooth_form": "tversky", "overlap_axes": "inner"}],
    "ranking_softmax": [{}, {"zero_division": "zero"}],
}


@pytest.mark.parametrize("spec_name", sorted(FD))
def test_gradients_match_finite_differences(spec_name):
    failures = fd_failures(spec_name, FD[spec_name])
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(failures[:10])


# ----------------------------------------------------------------------------- (c) closed forms


def test_keras_docstring_values():
    edges = {c.id: c for c in SPECS["dice"].edges}
    case = edges["edge-keras-doc-axis"]
    got = seg.dice(case.arrays["input"], case.arrays["target"], axis=(1, 2, 3), reduction="none")
    np.testing.assert_allclose(got, [0.5, 25 / 33], rtol=1e-15)
    got = seg.dice(case.arrays["input"], case.arrays["target"], reduction="mean")
    np.testing.assert_allclose(got, 1 - 2 * 1.4 / (4 + 3.3), rtol=1e-15)  # I = 1.4, T = 4, P = 3.3; Keras: 0.6164384


def test_empty_masks():
    z = np.zeros((2, 2))
    assert np.all(np.isnan(seg.dice(z, z, axis=(0,), reduction="none")))  # 0/0
    assert np.all(seg.dice(z, z, axis=(0,), reduction="none", dice_eps=1e-7) == 1.0)  # Keras: 0/eps
    assert np.all(seg.dice(z, z, axis=(0,), smooth=1.0, reduction="none") == 0.0)  # smoothed: s/s


def test_dice_is_tversky_at_one_half():
    rng = np.random.default_rng(0)
    p, t = rng.uniform(size=(3, 4, 2)), rng.uniform(size=(3, 4, 2))
    np.testing.assert_allclose(
        seg.dice(p, t, smooth=2.0, reduction="none", overlap_axes="inner"),
        seg.tversky(p, t, smooth=1.0, reduction="none", overlap_axes="inner"),
        rtol=1e-14,
    )


def test_optax_docstring_ranking():
    s, y = np.array([2.0, 1.0, 3.0]), np.array([1.0, 0.0, 0.0])
    assert f"{seg.ranking_softmax(s, y):.3f}" == "1.408"
    g = seg.ranking_softmax_grad(s, y)["input"]
    assert [float(f"{v:.3f}") for v in g] == [-0.755, 0.09, 0.665]
    where = np.array([[True, True, False], [True, True, True]])
    s2, y2 = np.array([[2.0, 1.0, 0.0], [1.0, 0.5, 1.5]]), np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert f"{seg.ranking_softmax(s2, y2, where=where):.3f}" == "0.497"


def test_ranking_where_all_false():
    s, y, w = np.ones((2, 3)), np.ones((2, 3)), np.zeros((2, 3), bool)
    assert math.isnan(seg.ranking_softmax(s, y, where=w))
    assert seg.ranking_softmax(s, y, where=w, zero_division="zero") == 0.0
    assert np.all(seg.ranking_softmax_grad(s, y, where=w, zero_division="zero")["input"] == 0.0)


def test_prob_check_raises():
    with pytest.raises(OracleError):
        seg.dice(np.array([[0.7, 0.7]]), np.array([[1.0, 0.0]]), prob_check="ValueError")
