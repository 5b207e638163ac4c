"""The margin oracles (``reference/margin.py``): mpmath, finite differences, closed forms.

(a) Each oracle against an independent mpmath re-derivation (50 digits) written from the
    formulas in the docstrings and the frameworks' documentation, at hand-chosen points with
    saturation (scores of 1e4, 1e30, +-700) and margins exactly met; bound: 4 float64 ULPs of
    the exact value (a margin violation is one rounded subtraction, softplus one log1p/exp).
(b) ``Spec.gradient`` against central differences of the oracle, under each convention value
    that changes a derivative (``fd_failures`` of ``oracle_helpers.py``).
(c) Closed forms at the edges: the kink subgradients, padding, invalid labels, the Keras
    conventions, PyTorch's documented example.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from mpmath import mp, mpf
from oracle_helpers import fd_failures

from lossparity.reference import OracleError
from lossparity.reference import margin as m

ULP_BOUND = 4
A = np.array
I = lambda v: np.array(v, dtype=np.int64)  # noqa: E731 - class indices


# ============================================================================= (a) mpmath


def _mp(v):
    return mpf(float(v))


def _mp_hinge(x, y, margin=1.0, power=1, labels="signed"):
    y = [float(v) for v in np.ravel(y)]
    if labels == "binary_if_all" and all(v in (0.0, 1.0) for v in y):
        y = [2 * v - 1 for v in y]
    return [max(mpf(0), _mp(margin) - _mp(b) * _mp(a)) ** power for a, b in zip(np.ravel(x), y)]


def _mp_soft_margin(x, y):
    return [mpmath.log1p(mpmath.exp(-_mp(b) * _mp(a))) for a, b in zip(np.ravel(x), np.ravel(y))]


def _mp_categorical(x, y, neg="others"):
    out = []
    for row_x, row_y in zip(np.reshape(x, (-1, x.shape[-1])), np.reshape(y, (-1, y.shape[-1]))):
        pos = mpmath.fsum(_mp(a) * _mp(b) for a, b in zip(row_x, row_y))
        cand = [(1 - _mp(b)) * _mp(a) for a, b in zip(row_x, row_y) if neg == "masked_product" or b != 1]
        out.append(max(mpf(0), max(cand) - pos + 1) if cand else mpf(0))
    return out


def _mp_multiclass(x, t, margin=1.0):
    out = []
    for row, c in zip(np.reshape(x, (-1, x.shape[-1])), np.ravel(t)):
        others = [_mp(v) for j, v in enumerate(row) if j != c]
        out.append(max(mpf(0), _mp(margin) + max(others) - _mp(row[c])) if others else mpf(0))
    return out


def _mp_multi_margin(x, t, p=1, margin=1.0, weight=None):
    out = []
    for row, c in zip(np.reshape(x, (-1, x.shape[-1])), np.ravel(t)):
        w = mpf(1) if weight is None else _mp(weight[c])
        terms = [max(mpf(0), _mp(margin) - _mp(row[c]) + _mp(v)) ** p for j, v in enumerate(row) if j != c]
        out.append(w * mpmath.fsum(terms) / len(row))
    return out


def _mp_multilabel(x, t):
    out = []
    for row, labels in zip(np.reshape(x, (-1, x.shape[-1])), np.reshape(t, (-1, t.shape[-1]))):
        targets = []
        for lab in labels:
            if lab == -1:
                break
            targets.append(int(lab))
        others = [j for j in range(len(row)) if j not in targets]
        out.append(mpmath.fsum(max(mpf(0), 1 - _mp(row[j]) + _mp(row[i])) for j in targets for i in others) / len(row))
    return out


def _mp_hinge_embedding(x, y, margin=1.0):
    return [_mp(a) if b == 1 else max(mpf(0), _mp(margin) - _mp(a)) for a, b in zip(np.ravel(x), np.ravel(y))]


def _mp_ranking(x1, x2, y, margin=0.0):
    return [
        max(mpf(0), -_mp(c) * (_mp(a) - _mp(b)) + _mp(margin))
        for a, b, c in zip(np.ravel(x1), np.ravel(x2), np.ravel(y))
    ]


def _check(got, exact):
    got = np.ravel(np.asarray(got, np.float64))
    assert got.size == len(exact)
    for g, e in zip(got, exact):
        e64 = float(e)
        ulp = float(np.spacing(abs(e64))) if e64 else 2.0**-1074
        assert abs(mpf(float(g)) - e) <= ULP_BOUND * ulp, (g, e)


BIG = [[1e4, -1e4, 0.5, 1.0], [1e30, -1e30, 3.0, -0.25]]
SIGNS = [[1.0, -1.0, -1.0, 1.0], [-1.0, 1.0, 1.0, -1.0]]
MP_POINTS = [
    ("hinge", lambda: m.hinge(A(BIG), A(SIGNS), reduction="none"), lambda: _mp_hinge(A(BIG), A(SIGNS))),
    (
        "hinge-margin",
        lambda: m.hinge(A(BIG), A(SIGNS), margin=0.5, reduction="none"),
        lambda: _mp_hinge(A(BIG), A(SIGNS), 0.5),
    ),
    (
        "hinge-binary",
        lambda: m.hinge(A([[0.3, 1e-300, -2.0]]), A([[0.0, 1.0, 1.0]]), reduction="none", hinge_labels="binary_if_all"),
        lambda: _mp_hinge(A([[0.3, 1e-300, -2.0]]), A([[0.0, 1.0, 1.0]]), labels="binary_if_all"),
    ),
    (
        "squared-hinge",
        lambda: m.squared_hinge(A(BIG[:1]), A(SIGNS[:1]), reduction="none"),
        lambda: _mp_hinge(A(BIG[:1]), A(SIGNS[:1]), power=2),
    ),
    (
        "soft-margin",
        lambda: m.soft_margin(
            A([1e4, -1e4, 700.0, -700.0, 30.0, 1e-20, 0.0]), A([1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0]), reduction="none"
        ),
        lambda: _mp_soft_margin([1e4, -1e4, 700.0, -700.0, 30.0, 1e-20, 0.0], [1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0]),
    ),
    (
        "categorical",
        lambda: m.categorical_hinge(
            A([[0.5, -1.0, -2.0], [1e30, 3.0, 2.0]]), A([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), reduction="none"
        ),
        lambda: _mp_categorical(A([[0.5, -1.0, -2.0], [1e30, 3.0, 2.0]]), A([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])),
    ),
    (
        "categorical-keras",
        lambda: m.categorical_hinge(
            A([[0.5, -1.0, -2.0], [0.25, 0.5, -0.5]]),
            A([[1.0, 0.0, 0.0], [1.0, -1.0, -1.0]]),
            reduction="none",
            hinge_neg="masked_product",
        ),
        lambda: _mp_categorical(
            A([[0.5, -1.0, -2.0], [0.25, 0.5, -0.5]]), A([[1.0, 0.0, 0.0], [1.0, -1.0, -1.0]]), "masked_product"
        ),
    ),
    (
        "multiclass",
        lambda: m.multiclass_hinge(A([[2.0, 1.0, 0.0], [0.0, 1e4, -3.0]]), I([1, 0]), reduction="none"),
        lambda: _mp_multiclass(A([[2.0, 1.0, 0.0], [0.0, 1e4, -3.0]]), [1, 0]),
    ),
    (
        "multi-margin",
        lambda: m.multi_margin(
            A([[4.0, 1e4, 2.0], [0.0, 2.0, 8.0]]), I([0, 1]), p=2, weight=A([3.0, 0.5, 1.0]), reduction="none"
        ),
        lambda: _mp_multi_margin(A([[4.0, 1e4, 2.0], [0.0, 2.0, 8.0]]), [0, 1], 2, 1.0, [3.0, 0.5, 1.0]),
    ),
    (
        "multilabel",
        lambda: m.multilabel_margin(
            A([[0.1, 0.2, 0.4, 0.8], [4.0, 1e4, -2.0, 8.0]]), I([[3, 0, -1, 1], [2, -1, 5, 9]]), reduction="none"
        ),
        lambda: _mp_multilabel(A([[0.1, 0.2, 0.4, 0.8], [4.0, 1e4, -2.0, 8.0]]), I([[3, 0, -1, 1], [2, -1, 5, 9]])),
    ),
    (
        "hinge-embedding",
        lambda: m.hinge_embedding(
            A([1e30, -1e30, 0.75, 2.0]), A([1.0, -1.0, -1.0, -1.0]), margin=2.0, reduction="none"
        ),
        lambda: _mp_hinge_embedding([1e30, -1e30, 0.75, 2.0], [1.0, -1.0, -1.0, -1.0], 2.0),
    ),
    (
        "ranking",
        lambda: m.margin_ranking(
            A([1e4, 0.5, 3.0]), A([-1.0, 1.0, 1.0]), input2=A([-2.0, 0.5, 1e-10]), margin=0.5, reduction="none"
        ),
        lambda: _mp_ranking([1e4, 0.5, 3.0], [-2.0, 0.5, 1e-10], [-1.0, 1.0, 1.0], 0.5),
    ),
]


@pytest.mark.parametrize("name,oracle,exact", MP_POINTS, ids=[p[0] for p in MP_POINTS])
def test_oracle_matches_mpmath(name, oracle, exact):
    with mp.workdps(50):
        _check(oracle(), exact())


def test_mean_matches_mpmath():
    """The batch mean of Keras' per-sample means, against the exact mean of means."""
    with mp.workdps(50):
        per = _mp_hinge(A(BIG), A(SIGNS))
        exact = (mpmath.fsum(per[:4]) / 4 + mpmath.fsum(per[4:]) / 4) / 2
        _check(m.hinge(A(BIG), A(SIGNS), sample_axis="mean"), [exact])


# ============================================================================= (b) gradients

#: Convention sets per spec. The kink conventions other than the plain 0.5 are checked by the
#: closed forms of (c), not here: across a kink of a piecewise-linear loss a central difference
#: is the mean of the two one-sided slopes, which is the 0.5 subgradient, and the smoothness
#: test of ``fd_failures`` cannot tell such a kink (both step sizes give the same mean).
FD_CONVENTIONS = {
    "hinge": [{}, {"hinge_labels": "binary_if_all", "sample_axis": "mean"}],
    "squared_hinge": [{}, {"hinge_labels": "binary_if_all", "sample_axis": "mean"}],
    "categorical_hinge": [{}, {"hinge_neg": "masked_product"}],
    "multiclass_hinge": [{}, {"invalid_label": "zeros"}],
    "multi_margin": [{}, {"invalid_label": "RuntimeError", "p_values": "ValueError"}],
    "multilabel_margin": [{}],
    "hinge_embedding": [{}, {"invalid_sign": "both"}],
    "soft_margin": [{}],
    "margin_ranking": [{}],
}


def _squared_kink(failure: str) -> bool:
    """max(0, z)^2 at z = 0 exactly (a generated kink): its slope is 0, but a central difference
    there is h/2 (h = 1e-6 |x|), which the smoothness test cannot tell from a slope."""
    analytic, differences = failure.split("analytic ")[1].split(", differences ")
    return float(analytic.removeprefix("np.float64(").rstrip(")")) == 0.0 and abs(float(differences)) < 1e-6


@pytest.mark.parametrize("spec_name", sorted(FD_CONVENTIONS))
def test_gradient_matches_finite_differences(spec_name):
    failures = fd_failures(spec_name, FD_CONVENTIONS[spec_name])
    if spec_name == "squared_hinge":
        failures = [f for f in failures if not _squared_kink(f)]
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(failures[:10])


# ============================================================================= (c) closed forms


@pytest.mark.parametrize("kink,slope", [(0.5, -0.5), (1.0, -1.0), (0.0, 0.0)])
def test_hinge_kink_subgradient(kink, slope):
    """y x = 1 exactly: loss 0, slope -y times the convention's share."""
    x, y = A([1.0, -1.0]), A([1.0, -1.0])
    assert np.all(m.hinge(x, y, reduction="none") == 0)
    np.testing.assert_array_equal(m.hinge_grad(x, y, reduction="sum", hinge_kink=kink)["input"], [slope, -slope])


def test_keras_binary_labels_convert_only_when_all_binary():
    x = A([0.3, -0.7])
    assert m.hinge(x, A([0.0, 1.0]), reduction="none", hinge_labels="binary_if_all").tolist() == [1.3, 1.7]
    assert m.hinge(x, A([0.0, 1.0]), reduction="none").tolist() == [1.0, 1.7]  # optax: 0 as given
    mixed = m.hinge(A([0.3, -0.7, 0.2]), A([0.0, 1.0, -1.0]), reduction="none", hinge_labels="binary_if_all")
    assert mixed.tolist() == [1.0, 1.7, 1.2]


def test_categorical_hinge_masked_product():
    """Keras lets the target class compete as a 0: with every other score negative neg = 0."""
    x, y = A([[0.5, -1.0, -2.0]]), A([[1.0, 0.0, 0.0]])
    assert m.categorical_hinge(x, y, reduction="none").tolist() == [0.0]  # 1 - 1 - 0.5 < 0
    assert m.categorical_hinge(x, y, reduction="none", hinge_neg="masked_product").tolist() == [0.5]
    one = m.categorical_hinge(A([[0.25]]), A([[1.0]]), reduction="none", hinge_neg="masked_product")
    assert one.tolist() == [0.75] and m.categorical_hinge(A([[0.25]]), A([[1.0]]), reduction="none") == 0


def test_multiclass_hinge_ties_and_invalid_labels():
    """At the margin the target's own entry ties the best other: slopes -1/2 and +1/2."""
    g = m.multiclass_hinge_grad(A([[2.0, 1.0, 0.0]]), I([0]), reduction="sum")["input"]
    np.testing.assert_array_equal(g, [[-0.5, 0.5, 0.0]])
    # an infinite other score is the max (slope 1); an infinite target score: inf - inf
    inf = m.multiclass_hinge(A([[0.0, math.inf], [math.inf, 0.0]]), I([0, 0]), reduction="none")
    assert inf[0] == math.inf and np.isnan(inf[1])
    g = m.multiclass_hinge_grad(A([[0.0, math.inf]]), I([0]), reduction="sum")["input"]
    np.testing.assert_array_equal(g, [[-1.0, 1.0]])
    x = A([[1.0, 2.0]])
    assert np.isnan(m.multiclass_hinge(x, I([2]), reduction="none")).all()
    assert m.multiclass_hinge(x, I([2]), reduction="none", invalid_label="zeros").tolist() == [3.0]
    assert m.multiclass_hinge(x, I([-1]), reduction="none", invalid_label="zeros", margin=0.0).tolist() == [2.0]


def test_multi_margin_closed_forms():
    x, t, w = A([[0.2, 0.9, -0.3]]), I([0]), A([2.0, 1.0, 0.5])
    # p = 2: w[y] (max(0, 1 - 0.2 + 0.9)^2 + max(0, 1 - 0.2 - 0.3)^2) / 3
    assert m.multi_margin(x, t, p=2, weight=w) == pytest.approx(2.0 * (1.7**2 + 0.5**2) / 3, rel=1e-15)
    with pytest.raises(OracleError) as err:
        m.multi_margin(x, t, p=3, p_values="ValueError")
    assert err.value.kind == "ValueError"
    assert m.multi_margin(x, t, p=3) == pytest.approx((1.7**3 + 0.5**3) / 3, rel=1e-15)
    with pytest.raises(OracleError):
        m.multi_margin(x, I([3]), invalid_label="RuntimeError")
    # x_y - x_i = margin exactly: PyTorch's kernel (z > 0) gives slope 0, the plain split 1/2
    g = m.multi_margin_grad(A([[2.0, 1.0, 0.5]]), t, reduction="sum", hinge_kink=0.0)["input"]
    np.testing.assert_array_equal(g, [[0.0, 0.0, 0.0]])
    g = m.multi_margin_grad(A([[2.0, 1.0, 0.5]]), t, reduction="sum")["input"]
    np.testing.assert_allclose(g, [[-0.5 / 3, 0.5 / 3, 0.0]], rtol=1e-15)


def test_multilabel_margin_padding():
    """PyTorch's documented example: 0.85; -1 first is no target (0); junk after -1 unread."""
    x = A([[0.1, 0.2, 0.4, 0.8]])
    assert m.multilabel_margin(x, I([[3, 0, -1, 1]])) == pytest.approx(0.85, rel=1e-15)
    assert m.multilabel_margin(x, I([[-1, 3, 0, 1]]), reduction="none").tolist() == [0.0]
    assert m.multilabel_margin(x, I([[3, 0, -1, 9]])) == pytest.approx(0.85, rel=1e-15)
    assert np.isnan(m.multilabel_margin(x, I([[4, -1, 0, 0]]), reduction="none")).all()
    with pytest.raises(OracleError):
        m.multilabel_margin(x, I([[-2, -1, 0, 0]]), invalid_label="RuntimeError")


def test_hinge_embedding_and_ranking_edges():
    x = A([0.3, 1.5])
    assert np.isnan(m.hinge_embedding(x, A([0.0, 1.0]), reduction="none")[0])
    # PyTorch's where-form: target 0 gets x + max(0, margin - x) = margin when x < margin
    assert m.hinge_embedding(x, A([0.0, 1.0]), reduction="none", invalid_sign="both").tolist() == [1.0, 1.5]
    g = m.margin_ranking_grad(A([0.5]), A([1.0]), input2=A([0.5]), reduction="sum", hinge_kink=1.0)
    assert g["input"].tolist() == [-1.0] and g["input2"].tolist() == [1.0]
    assert m.margin_ranking(A([1.5]), A([0.0]), input2=A([0.5]), margin=0.5) == 0.5


def test_soft_margin_saturates_without_overflow():
    assert m.soft_margin(A([1e4]), A([-1.0]), reduction="none").tolist() == [1e4]
    assert m.soft_margin_grad(A([1e4, -1e4]), A([-1.0, -1.0]), reduction="sum")["input"].tolist() == [1.0, 0.0]
    assert m.soft_margin(A([0.0]), A([1.0])) == pytest.approx(math.log(2), rel=1e-16)


def test_flush_subnormals_ties_a_subnormal_score_with_the_masked_target():
    """Keras' categorical hinge takes max((1 - y) x): a subnormal negative score flushed to -0
    ties with the target's masked 0, and the max's slope is shared between them."""
    x = np.array([[-1.4e-45, -0.5]])
    y = np.array([[0.0, 1.0]])
    kw = dict(reduction="sum", hinge_neg="masked_product")
    kept = m.categorical_hinge_grad(x, y, **kw)["input"]
    flushed = m.categorical_hinge_grad(x, y, **kw, flush_subnormals=True)["input"]
    np.testing.assert_array_equal(kept, [[0.0, -1.0]])
    np.testing.assert_array_equal(flushed, [[0.5, -1.0]])


def test_flush_subnormals_puts_a_subnormal_score_on_the_perceptron_kink():
    """At margin 0 a flushed subnormal score gives z = 0: the kink's slope (jnp.maximum: 1/2)."""
    x, y = np.array([-2.8e-45, 0.5]), np.array([-1.0, -1.0])
    kw = dict(margin=0.0, reduction="none")
    np.testing.assert_array_equal(m.hinge_grad(x, y, **kw)["input"], [0.0, 1.0])
    np.testing.assert_array_equal(m.hinge_grad(x, y, **kw, flush_subnormals=True)["input"], [0.5, 1.0])


def test_multiclass_hinge_reads_a_flushed_subnormal_score_as_a_tie():
    """flush_subnormals (XLA on CPU): a float32 subnormal score reads as 0 and ties with the
    zeros beside it, so the perceptron's max splits its slope among them; unflushed it wins."""
    x, y = np.array([[0.0, 1.4e-45, 0.0, -1.0]]), np.array([3])
    plain = m.multiclass_hinge_grad(x, y, margin=0.0, reduction="sum", dtype=np.float32)["input"]
    flushed = m.multiclass_hinge_grad(x, y, margin=0.0, reduction="sum", dtype=np.float32, flush_subnormals=True)
    np.testing.assert_array_equal(plain, [[0.0, 1.0, 0.0, -1.0]])
    np.testing.assert_allclose(flushed["input"], [[1 / 3, 1 / 3, 1 / 3, -1.0]])
    # float64 keeps its subnormals
    f64 = m.multiclass_hinge_grad(x, y, margin=0.0, reduction="sum", dtype=np.float64, flush_subnormals=True)
    np.testing.assert_array_equal(f64["input"], plain)
