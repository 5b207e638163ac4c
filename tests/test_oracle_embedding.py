"""The embedding oracles (``reference/embedding.py``): mpmath re-derivations, gradients, closed forms.

1. Each oracle against an independent 50-digit mpmath evaluation written from the
   mathematics and the documented conventions, at hand-chosen points (zero and tiny vectors
   under each floor, near-parallel vectors, saturated log-sum-exps), within ULP_BOUND float64
   ULPs of the exact value, plus what the conditioning of the point explains (EPS times the
   sum of |x_i d out/d x_i|, from the oracle's own gradient; a cosine of near-parallel vectors
   is ill-conditioned in its inputs).
2. The analytic gradients against central differences (``fd_failures``) under each
   convention set that changes a derivative.
3. A few closed-form values at the edges.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from mpmath import mp, mpf
from oracle_helpers import F16, F32, F64, fd_failures

from lossparity.reference import OracleError
from lossparity.reference import embedding as emb

EPS = 2.0**-52
ULP_BOUND = 4
A = np.array


# ----------------------------------------------------------------------------- mpmath side


def _mp_rows(x):
    x = np.asarray(x, np.float64)
    return [[mpf(float(v)) for v in row] for row in x.reshape(-1, x.shape[-1])]


def _mp_cos(a, b, sq_eps=0, norm_floor=None, sq_add=0):
    sa, sb = sum(v * v for v in a) + sq_add, sum(v * v for v in b) + sq_add
    na, nb = mp.sqrt(max(sa, sq_eps)), mp.sqrt(max(sb, sq_eps))
    if norm_floor is not None:
        na, nb = max(na, norm_floor), max(nb, norm_floor)
    return sum(x * y for x, y in zip(a, b)) / (na * nb)


def _mp_cosine_similarity(input, target, epsilon=0.0, cosine_form="similarity", norm_floor=None):
    out = []
    for a, b in zip(_mp_rows(input), _mp_rows(target)):
        c = _mp_cos(a, b, mpf(epsilon), None if norm_floor is None else mpf(norm_floor))
        out.append({"similarity": c, "negative": -c, "distance": 1 - c}[cosine_form])
    return out


def _mp_cosine_embedding(input, input2, target, margin=0.0, sq_add=0.0):
    out = []
    for a, b, y in zip(_mp_rows(input), _mp_rows(input2), np.ravel(target)):
        c = _mp_cos(a, b, sq_add=mpf(sq_add))
        out.append(1 - c if y == 1 else max(c - mpf(margin), mpf(0)) if y == -1 else mpf(0))
    return out


def _mp_pnorm(v, p, shift=0, absolute=True):
    p = mpf(p)
    total = sum((abs(x) if absolute else x) ** p for x in v) + shift
    return mpf("nan") if total < 0 else total ** (1 / p)  # a real root of a negative sum: none


def _mp_triplet(a, pos, neg, margin=1.0, p=2.0, eps=0.0, swap=False, distance_eps="difference", power_abs=True):
    out = []
    for x, y, z in zip(_mp_rows(a), _mp_rows(pos), _mp_rows(neg)):
        e = mpf(eps)

        def d(u, w):
            if distance_eps == "difference":
                return _mp_pnorm([s - t + e for s, t in zip(u, w)], p)
            return _mp_pnorm([s - t for s, t in zip(u, w)], p, e, power_abs)

        dn = d(x, z)
        if swap:
            dn = min(dn, d(y, z))
        value = mpf(margin) + d(x, y) - dn
        out.append(value if mp.isnan(value) else max(value, mpf(0)))
    return out


def _mp_ntxent(e, labels, temperature, sq_eps=0):
    rows = _mp_rows(e)
    n = len(rows)
    s = [[_mp_cos(rows[i], rows[j], sq_eps) / mpf(temperature) for j in range(n)] for i in range(n)]
    terms = []
    for i in range(n):
        for j in range(n):
            if i != j and labels[i] == labels[j]:
                z = mp.exp(s[i][j]) + sum(mp.exp(s[i][k]) for k in range(n) if labels[k] != labels[i])
                terms.append(mp.log(z) - s[i][j])
    return [sum(terms) / len(terms)]


def _mp_circle(e, labels, gamma=80.0, margin=0.4, remove_diagonal=True):
    rows, g, m = _mp_rows(e), mpf(gamma), mpf(margin)
    out = []
    for i, r in enumerate(rows):
        ps, ns = [], []
        for j, q in enumerate(rows):
            d = max(1 - sum(x * y for x, y in zip(r, q)), mpf(0))
            if labels[i] == labels[j] and not (remove_diagonal and i == j):
                ps.append(-g * max(m + d, 0) * (m - d))
            elif labels[i] != labels[j]:
                ns.append(g * max(1 + m - d, 0) * (1 - m - d))
        if not ps or not ns:
            out.append(mpf(0))
            continue
        lse = mp.log(sum(mp.exp(v) for v in ps)) + mp.log(sum(mp.exp(v) for v in ns))
        out.append(mp.log1p(mp.exp(lse)))
    return out


def _conditioning(grads, arrays):
    return sum(float(np.nansum(np.abs(grads[k] * arrays[k]))) for k in grads)  # NaN slopes: NaN values


def _check(got, exact, cond=0.0):
    mp.dps = 50
    got = np.ravel(np.asarray(got, np.float64))
    assert len(got) == len(exact)
    for g, x in zip(got, exact):
        x = float(x)
        if math.isnan(x):
            assert math.isnan(g), (g, x)
            continue
        allowance = ULP_BOUND * np.spacing(abs(x)) + EPS * cond + 4 * 2.0**-1074
        assert abs(g - x) <= allowance, (g, x, abs(g - x) / np.spacing(abs(x)))


mp.dps = 50
NEAR = A([[1.0, 1e-9, 0.0]])  # near-parallel to (1, 0, 0): 1 - cos ~ 5e-19


@pytest.mark.parametrize(
    "a, b, kw",
    [
        (A([[3.0, 4.0], [1.0, -2.0], [0.0, 0.0]]), A([[4.0, 3.0], [-2.0, 4.0], [1.0, 1.0]]), {"epsilon": 1e-6}),
        (
            A([[1e-8, 0.0], [3e-4, 4e-4]]),
            A([[1.0, 1.0], [1.0, 2.0]]),
            {"cosine_form": "negative", "norm_floor": 1e-7, "dtype": F64},
        ),
        (A([[0.0, 0.0], [1e-200, 2e-200]]), A([[1.0, 1.0], [2e200, 1e200]]), {"norm_floor": 1e-7, "dtype": F64}),
        (A([[1.0, 2.0, 3.0]]), A([[1.0, 2.0, 3.000001]]), {"cosine_form": "distance"}),
    ],
)
def test_cosine_similarity_mpmath(a, b, kw):
    got = emb.cosine_similarity(a, b, reduction="none", **kw)
    mpkw = {k: v for k, v in kw.items() if k != "dtype"}
    grads = emb.cosine_similarity_grad(a, b, reduction="sum", **kw)
    _check(got, _mp_cosine_similarity(a, b, **mpkw), _conditioning(grads, {"input": a, "target": b}))


def test_cosine_embedding_mpmath():
    x1, x2 = A([[0.0, 0.0], [1.0, 2.0], [1.0, 0.5], [1e-7, 0.0]]), A([[1.0, 2.0], [2.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    y = A([1, -1, 1, -1])
    kw = dict(input2=x2, margin=0.1, sq_norm_add=1e-12, dtype=F64)
    got = emb.cosine_embedding(x1, y, reduction="none", **kw)
    grads = emb.cosine_embedding_grad(x1, y, reduction="sum", **kw)
    _check(got, _mp_cosine_embedding(x1, x2, y, 0.1, 1e-12), _conditioning(grads, {"input": x1, "input2": x2}))


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"p": 1.0},
        {"p": 3.0, "swap": True},
        {"eps": 1e-6, "distance_eps": "power_sum"},
        {"eps": 1e-6, "p": 3.0, "distance_eps": "power_sum", "power_abs": False},
        {"eps": 1e-6},
    ],
)
def test_triplet_margin_mpmath(kw):
    a = A([[0.0, 1.0, -1.0], [1e-3, 2.0, 0.5], [1.0, 1.0, 1.0]])
    p = A([[0.5, 0.0, 0.0], [0.0, 2.0, 0.5], [1.0, 1.0, 1.0]])
    n = A([[2.0, -1.0, 1.0], [0.1, 2.5, 0.0], [1.5, 1.0, 0.0]])
    got = emb.triplet_margin(a, positive=p, negative=n, reduction="none", dtype=F64, **kw)
    grads = emb.triplet_margin_grad(a, positive=p, negative=n, reduction="sum", dtype=F64, **kw)
    exact = _mp_triplet(a, p, n, **kw)
    _check(got, exact, _conditioning(grads, {"input": a, "positive": p, "negative": n}))


@pytest.mark.parametrize("temperature", [0.07, 0.01, 100.0])
def test_ntxent_mpmath(temperature):
    e = A([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-0.2, 1.0], [1e-5, 0.0]])
    labels = A([0, 0, 1, 1, 1])
    kw = dict(temperature=temperature, sq_norm_eps="finfo", dtype=F32)
    got = emb.ntxent(e, labels, **kw)
    grads = emb.ntxent_grad(e, labels, **kw)
    exact = _mp_ntxent(e, labels, temperature, mpf(float(np.finfo(np.float32).eps)))
    _check(got, exact, _conditioning(grads, {"input": e}))


@pytest.mark.parametrize("kw", [{}, {"gamma": 1.0, "margin": 0.25}, {"remove_diagonal": False}])
def test_circle_mpmath(kw):
    e = A([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6], [0.8, -0.6]])
    labels = A([0, 0, 1, 1, 2])
    got = emb.circle(e, labels, reduction="none", **kw)
    grads = emb.circle_grad(e, labels, reduction="sum", **kw)
    _check(got, _mp_circle(e, labels, **kw), _conditioning(grads, {"input": e}))


# ----------------------------------------------------------------------------- gradients

FD_CONVENTIONS = {
    "cosine_similarity": [
        {},
        {"cosine_form": "negative", "norm_floor": 1e-7},
        {"cosine_form": "distance"},
        {"norm_floor": 1e-7, "dtype": F16},
    ],
    "cosine_embedding": [{}, {"sq_norm_add": 1e-12}],
    "triplet_margin": [
        {},
        {"distance_eps": "power_sum"},
        {"distance_eps": "power_sum", "power_abs": False},
        {"margin_domain": "ValueError"},
    ],
    "ntxent": [{}, {"sq_norm_eps": "finfo"}, {"sq_norm_eps": "finfo", "dtype": F64}],
    "circle": [{}, {"mean_over": "positive", "zero_division": "zero"}],
}


def _diagonal_artifact(failure):
    """Circle with remove_diagonal=False: each sample is its own positive at d_ii = max(1 -
    |e_i|^2, 0), on the clamp for unit vectors. The loss is flat there to first order (its
    slope 2 gamma d vanishes) but curved on one side only, so a central difference of step
    1e-6 is off by O(gamma h), just under the kink detection of ``fd_failures``. Such an
    element is re-checked with a step of 1e-9 instead (:func:`_fine_difference`)."""
    return failure.startswith("gen-") and " input[" in failure


def _fine_difference(case_id, where, analytic):
    from lossparity.conformance.generate import draw_cases
    from lossparity.conformance.specs import SPECS

    case = next(c for c in draw_cases("circle", SPECS["circle"].generate, examples=12, seed_value=0) if c.id == case_id)
    assert case.params.get("remove_diagonal") is False
    e, labels = case.in_dtype("float64")["input"], case.arrays["target"]
    kw = {k: v for k, v in case.params.items() if k != "reduction"}
    up, down = e.copy(), e.copy()
    up[where] += 1e-9
    down[where] -= 1e-9
    fine = (emb.circle(up, labels, reduction="sum", **kw) - emb.circle(down, labels, reduction="sum", **kw)) / 2e-9
    return abs(fine - analytic) <= 1e-6 * abs(analytic) + 1e-6


@pytest.mark.parametrize("spec_name", sorted(FD_CONVENTIONS))
def test_gradient_matches_finite_differences(spec_name):
    failures = fd_failures(spec_name, FD_CONVENTIONS[spec_name])
    if spec_name == "circle":
        left = []
        for f in failures:
            case_id, rest = f.split(" ", 1)
            idx = tuple(int(i) for i in rest.split("input[")[1].split("]")[0].split(","))
            analytic = float(rest.split("analytic np.float64(")[1].split(")")[0])
            if not (_diagonal_artifact(f) and _fine_difference(case_id, idx, analytic)):
                left.append(f)
        failures = left
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(failures[:10])


# ----------------------------------------------------------------------------- closed forms


def test_keras_docstring_values():
    # keras.losses.cosine_similarity's example: [-0., -0.99999994, 0.99999994] (float32)
    got = emb.cosine_similarity(
        A([[1.0, 0.0], [1.0, 1.0], [-1.0, -1.0]]),
        A([[0.0, 1.0], [1.0, 1.0], [1.0, 1.0]]),
        reduction="none",
        cosine_form="negative",
        norm_floor=1e-7,
    )
    assert np.allclose(got, [0.0, -1.0, 1.0], rtol=0, atol=1e-15)


def test_zero_vector_under_each_floor():
    a, b = A([[0.0, 0.0]]), A([[1.0, 2.0]])
    assert np.isnan(emb.cosine_similarity(a, b, reduction="none")[0])
    assert emb.cosine_similarity(a, b, reduction="none", norm_floor=1e-7)[0] == 0.0
    assert emb.cosine_similarity(a, b, reduction="none", epsilon=1e-6)[0] == 0.0
    # Keras' 1/1e-7 is inf in float16: no floor, 0 * inf = NaN
    assert np.isnan(emb.cosine_similarity(a, b, reduction="none", norm_floor=1e-7, dtype=np.float16)[0])
    # torch cosine_embedding_loss: sqrt((0 + 1e-12)(5 + 1e-12)) > 0, cos = 0
    assert emb.cosine_embedding(a, A([1]), input2=b, reduction="none", sq_norm_add=1e-12)[0] == 1.0
    # the slope under Keras' floor is b / (1e-7 |b|), negated
    g = emb.cosine_similarity_grad(a, b, reduction="sum", cosine_form="negative", norm_floor=1e-7, dtype=F64)
    assert np.allclose(g["input"], -b / math.sqrt(5.0) * 1e7)


def test_triplet_swap_and_eps_placement():
    a, p, n = A([[0.0, 0.0]]), A([[1.5, 0.0]]), A([[2.0, 0.0]])
    assert emb.triplet_margin(a, positive=p, negative=n, reduction="none")[0] == 0.5
    assert emb.triplet_margin(a, positive=p, negative=n, reduction="none", swap=True)[0] == 2.0
    # anchor = positive: torch's |0 + eps|_2 = eps sqrt(D); optax's (0 + eps)^(1/2)
    same = dict(positive=a, negative=A([[5.0, 0.0]]), margin=10.0, eps=1e-6, reduction="none", dtype=F64)
    assert math.isclose(emb.triplet_margin(a, **same)[0], 10.0 + 1e-6 * math.sqrt(2) - math.hypot(5 - 1e-6, 1e-6))
    assert math.isclose(emb.triplet_margin(a, distance_eps="power_sum", **same)[0], 10.0 + 1e-3 - math.sqrt(25 + 1e-6))
    # optax's missing |.|: p = 1 gives the signed sum of differences
    p1 = dict(positive=A([[0.5, 0.0]]), negative=A([[2.0, -1.0]]), p=1.0, reduction="none")
    assert emb.triplet_margin(A([[0.0, 1.0]]), **p1)[0] == max(1 + 1.5 - 4.0, 0)
    assert emb.triplet_margin(A([[0.0, 1.0]]), power_abs=False, distance_eps="power_sum", **p1)[0] == 1 + 0.5 - 0.0
    with pytest.raises(OracleError):
        emb.triplet_margin(a, positive=p, negative=n, margin=0.0, margin_domain="ValueError")


def test_ntxent_edges():
    e = A([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert np.isnan(emb.ntxent(e, A([0, 1, 2])))  # no positive pair: 0/0
    assert emb.ntxent(e, A([0, 0, 0])) == 0.0  # no negatives: -log(1)
    # optax's docstring: 1-D embeddings of one sign have cos = 1 everywhere: log 3
    one_d = A([[0.08969027], [1.6291292], [0.8622629], [0.13612625]])
    assert math.isclose(emb.ntxent(one_d, A([0, 0, 1, 1]), sq_norm_eps="finfo"), math.log(3), rel_tol=1e-12)


def test_circle_mask_mean():
    e = A([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]])
    labels = A([0, 1, 1, 2])
    per = emb.circle(e, labels, reduction="none")
    assert per[0] == 0.0 and per[3] == 0.0 and per[1] > 0 and per[2] > 0
    assert math.isclose(emb.circle(e, labels, mean_over="positive", zero_division="zero"), (per[1] + per[2]) / 2)
    assert emb.circle(e, A([0, 0, 0, 0]), mean_over="positive", zero_division="zero") == 0.0


def test_circle_floor_tie_halves_or_passes_the_kink_slope():
    """Identical unit vectors of different labels sit on the kink of d = max(1 - cos, 0):
    floor_tie="pass" (tf.maximum) gives the pair the slope of the side d = 1 - cos > 0,
    "half" (jnp.maximum, torch.maximum) the mean of both sides' slopes (the other side,
    cos > 1, has d = 0 and slope 0)."""
    e = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    labels = np.array([0, 1, 0, 1])
    kw = dict(gamma=16.0, reduction="sum")
    whole = emb.circle_grad(e, labels, floor_tie="pass", **kw)["input"]
    half = emb.circle_grad(e, labels, floor_tie="half", **kw)["input"]
    inside, outside = e.copy(), e.copy()
    inside[1] = [np.cos(1e-7), np.sin(1e-7)]  # cos < 1: d = 1 - cos, slope -1
    outside[1] = [1.0 + 1e-9, 0.0]  # cos > 1: d = 0, slope 0
    one_sided = [emb.circle_grad(v, labels, floor_tie="pass", **kw)["input"] for v in (inside, outside)]
    assert np.abs(one_sided[0] - one_sided[1]).max() > 1  # the kink carries a real slope here
    np.testing.assert_allclose(whole, one_sided[0], atol=1e-4)
    np.testing.assert_allclose(half, (one_sided[0] + one_sided[1]) / 2, atol=1e-4)
    assert emb.circle(e, labels, floor_tie="pass", **kw) == emb.circle(e, labels, floor_tie="half", **kw)
