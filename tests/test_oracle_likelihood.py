"""The likelihood oracles (``reference/likelihood.py``): Poisson NLL, Gaussian NLL, generalized KL.

1. mpmath at 50 digits: each loss re-derived from its formula at hand-chosen points (saturated
   exponentials, counts around the Stirling cutoff, variances at the clamp, measures near the
   minimum of the divergence). Bound: 4 float64 ULPs of the exact value beyond what the
   conditioning of the value in its inputs explains (``EPS * sum |x_i d out / d x_i|``, as in
   ``test_oracle_mpmath.py``).
2. The analytic gradients against central differences of the oracle (``fd_failures``).
3. Closed forms: documented constants, the conventions at their edges, and the identities that
   tie the generalized KL to ``kl_div`` and to the Poisson NLL.
"""

from __future__ import annotations

import dataclasses
import math

import mpmath
import numpy as np
import pytest
from mpmath import mp, mpf
from oracle_helpers import fd_failures

from lossparity.conformance.specs import SPECS
from lossparity.reference import likelihood as lk
from lossparity.reference.errors import OracleError
from lossparity.reference.kl import kl_div

DPS = 50
EPS = 2.0**-52
ULP_BOUND = 4
PERTURB = mpf("1e-20")
F32 = np.float32


# ============================================================================= 1. mpmath


def _mp_poisson(x, t, *, log_input=False, full=False, eps=0.0, stirling_cutoff="above_one", dtype=F32):
    """exp(c) - t c, or x - t log(x + eps); + t log t - t + log(2 pi t) / 2 where the cutoff says."""
    e = mpf(float(np.asarray(eps, dtype)))
    if log_input:
        loss = mpmath.exp(x) - (0 if t == 0 else t * x)
    else:
        loss = x - (0 if t == 0 else t * mpmath.log(x + e))
    added = t > 1 if stirling_cutoff == "above_one" else not (0 <= t <= 1)
    if full and added:
        loss += t * mpmath.log(t) - t + mpmath.log(2 * mp.pi * t) / 2
    return loss


def _mp_gaussian(x, t, v, *, full=False, eps=0.0, dtype=F32):
    v = max(v, mpf(float(np.asarray(eps, dtype))))
    loss = (mpmath.log(v) + (x - t) ** 2 / v) / 2
    return loss + mpmath.log(2 * mp.pi) / 2 if full else loss


def _mp_generalized_kl(c, t):
    q = mpmath.exp(c)
    return q if t == 0 else t * mpmath.log(t) - t * c - t + q


def _elementwise_check(oracle_values, mp_fn, columns, kw):
    """Each element of ``oracle_values`` against ``mp_fn`` of the element's inputs (one float64
    array per input in ``columns``), allowing EPS * conditioning beyond ULP_BOUND ULPs."""
    worst = 0.0
    for i in np.ndindex(oracle_values.shape):
        args = [mpf(float(a[i])) for a in columns]
        exact = mp_fn(*args, **kw)
        cond = mpf(0)
        for k, a in enumerate(args):
            if a == 0:
                continue
            h = a * PERTURB
            up = mp_fn(*[b + h if j == k else b for j, b in enumerate(args)], **kw)
            down = mp_fn(*[b - h if j == k else b for j, b in enumerate(args)], **kw)
            cond += abs(a * (up - down) / (2 * h))
        got = float(oracle_values[i])
        ulp = float(np.spacing(abs(float(exact))))
        residual = (abs(mpf(got) - exact) - EPS * cond) / ulp
        worst = max(worst, float(residual))
        assert residual <= ULP_BOUND, (i, got, float(exact), float(residual))
    return worst


A = np.array
POISSON_POINTS = [
    (A([30.0, -30.0, 700.0, -700.0, 0.5, 2.0]), A([3.0, 0.0, 1.0, 2.0, 7.0, 0.5]), {"log_input": True}),
    (A([1e-12, 0.3, 5.0, 1e6, 0.0]), A([1.0, 2.0, 0.0, 3.0, 4.0]), {"eps": 1e-8, "dtype": np.float64}),
    (A([0.5, 0.5, 0.5, 0.5]), A([1.0, 1.0000001, 2.0, 150.0]), {"log_input": True, "full": True}),
    (A([2.0, 0.25]), A([-0.5, 3.0]), {"log_input": True, "full": True, "stirling_cutoff": "above_one"}),
    (A([2.0, 0.25, 1e-3]), A([0.5, 3.0, 11.0]), {"full": True, "eps": 1e-3}),
]
GAUSSIAN_POINTS = [
    (A([1.0, -3.0, 1e4, 0.5]), A([0.0, -3.0, -1e4, 0.25]), A([1e-9, 2.0, 1e-6, 1e8]), {"eps": 1e-6}),
    (A([0.1, 7.5, 0.0]), A([0.2, -7.5, 1e-300]), A([0.5, 1.0, 1e-300]), {"full": True}),
]
GKL_POINTS = [
    (A([0.0, 1e-4, -1e-4, 30.0, -30.0, 700.0]), A([1.0, 1.0, 1.0, 2.0, 0.5, 1e-300])),
    (A([math.log(2.5) + 1e-3, -2.0, 0.0, -700.0]), A([2.5, 0.0, 1e-12, 3.0])),
]


@pytest.mark.parametrize("x, t, kw", POISSON_POINTS)
def test_poisson_nll_matches_mpmath(x, t, kw):
    mp.dps = DPS
    got = lk.poisson_nll(x, t, reduction="none", **kw)
    _elementwise_check(got, _mp_poisson, [x, t], kw)


@pytest.mark.parametrize("x, t, v, kw", GAUSSIAN_POINTS)
def test_gaussian_nll_matches_mpmath(x, t, v, kw):
    mp.dps = DPS
    got = lk.gaussian_nll(x, t, var=v, reduction="none", **kw)
    _elementwise_check(got, _mp_gaussian, [x, t, v], kw)


@pytest.mark.parametrize("c, t", GKL_POINTS)
def test_generalized_kl_matches_mpmath(c, t):
    mp.dps = DPS
    got = lk.generalized_kl_div(c, t, reduction="none")
    _elementwise_check(got, _mp_generalized_kl, [c, t], {})


def test_reduced_values_match_mpmath():
    """A sum and a mean (correctly rounded by the shared reduction) within 6 ULPs."""
    mp.dps = DPS
    x, t = A([[0.5, 2.0, -1.0], [3.0, 0.0, 1.5]]), A([[1.0, 3.0, 0.0], [20.0, 1.0, 2.0]])
    exact = mpmath.fsum(_mp_poisson(mpf(a), mpf(b), log_input=True, full=True) for a, b in zip(x.ravel(), t.ravel()))
    got = lk.poisson_nll(x, t, log_input=True, full=True, reduction="sum")
    assert abs(mpf(float(got)) - exact) <= 6 * np.spacing(float(exact))
    exact = mpmath.fsum(_mp_generalized_kl(mpf(a), mpf(b)) for a, b in zip(x.ravel(), t.ravel())) / 6
    got = lk.generalized_kl_div(x, t, reduction="mean")
    assert abs(mpf(float(got)) - exact) <= 6 * np.spacing(float(exact))


# ============================================================================= 2. gradients

FD_CONVENTIONS = {
    "poisson_nll": [{}, {"stirling_cutoff": "unit_interval"}, {"sample_axis": "mean"}],
    # "ignore" is by design not the forward's derivative below eps: it has closed-form tests below.
    "gaussian_nll": [{}, {"eps": 1e-3}, {"full": True, "eps": 1e-6, "dtype": np.float64}],
    "generalized_kl_div": [{}, {"sample_axis": "sum"}],
}


def _no_zero_var(spec):
    """The Gaussian spec without its rows of a var in [0, 2e-8): a central difference (step at
    least 1e-8) there steps to a negative variance, which raises (documented), so the slope near
    0 has closed-form tests instead."""

    def keep(arrays):
        v = np.asarray(arrays["var"])
        return not np.any((v >= 0) & (v < 2e-8))

    return dataclasses.replace(
        spec,
        name=spec.name + "_fd",
        edges=tuple(c for c in spec.edges if keep(c.arrays)),
        generate=spec.generate.filter(lambda drawn: keep(drawn[0])),
    )


@pytest.mark.parametrize("spec_name", sorted(FD_CONVENTIONS))
def test_gradient_matches_finite_differences(spec_name, monkeypatch):
    if spec_name == "gaussian_nll":
        spec = _no_zero_var(SPECS[spec_name])
        monkeypatch.setitem(SPECS, spec.name, spec)
        failures = fd_failures(spec.name, FD_CONVENTIONS[spec_name])
    else:
        failures = fd_failures(spec_name, FD_CONVENTIONS[spec_name])
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(failures[:10])


# ============================================================================= 3. closed forms


def test_poisson_by_hand_and_limits():
    np.testing.assert_array_equal(lk.poisson_nll(A([1.0, 2.0]), A([1.0, 0.0]), reduction="none"), [1.0, 2.0])
    # a zero count contributes no t log term, even at rate 0 or log rate -inf
    np.testing.assert_array_equal(lk.poisson_nll(A([0.0]), A([0.0]), reduction="none"), [0.0])
    np.testing.assert_array_equal(lk.poisson_nll(A([-np.inf]), A([0.0]), log_input=True, reduction="none"), [0.0])
    # eps is rounded to the dtype: 1e-8 is 0 in float16, so rate 0 with count 2 costs +inf there
    assert lk.poisson_nll(A([0.0]), A([2.0]), eps=1e-8, dtype=np.float16, reduction="sum") == np.inf
    assert lk.poisson_nll(A([0.0]), A([2.0]), eps=1e-8, dtype=np.float64, reduction="sum") == pytest.approx(
        -2 * math.log(1e-8), rel=1e-15
    )


def test_stirling_cutoff():
    x, t = A([0.5, 0.5, 0.5, 0.5]), A([-0.5, 0.0, 1.0, 2.0])
    base = np.exp(0.5) - t * 0.5
    stirling2 = 2 * math.log(2) - 2 + 0.5 * math.log(4 * math.pi)
    torch_like = lk.poisson_nll(x, t, log_input=True, full=True, reduction="none")
    np.testing.assert_allclose(torch_like, base + A([0.0, 0.0, 0.0, stirling2]), rtol=1e-15)
    tf_like = lk.poisson_nll(x, t, log_input=True, full=True, stirling_cutoff="unit_interval", reduction="none")
    assert np.isnan(tf_like[0])
    np.testing.assert_array_equal(tf_like[1:], torch_like[1:])
    g = lk.poisson_nll_grad(x, t, log_input=True, full=True, reduction="none")["target"]
    np.testing.assert_allclose(g, [-0.5, -0.5, -0.5, -0.5 + math.log(2) + 0.25], rtol=1e-15)


def test_gaussian_constant_clamp_and_shapes():
    half_log_2pi = 0.9189385332046727
    assert lk.gaussian_nll(A([0.5]), A([0.5]), var=A([1.0]), full=True, reduction="sum") == pytest.approx(
        half_log_2pi, rel=1e-16
    )
    eps = float(np.float32(1e-6))
    got = lk.gaussian_nll(A([1.0]), A([0.0]), var=A([0.0]), eps=1e-6, reduction="sum")
    assert got == pytest.approx(0.5 * (math.log(eps) + 1 / eps), rel=1e-15)
    # the clamp's slope: 0 below eps (plain), that of the loss at eps where autograd ignores it
    zero = lk.gaussian_nll_grad(A([1.0, 1.0]), A([0.0, 0.0]), var=A([0.0, 2.0]), eps=1e-6, reduction="sum")
    ignore = lk.gaussian_nll_grad(
        A([1.0, 1.0]), A([0.0, 0.0]), var=A([0.0, 2.0]), eps=1e-6, reduction="sum", var_clamp_grad="ignore"
    )
    assert zero["var"][0] == 0.0 and zero["var"][1] == ignore["var"][1] == pytest.approx(0.5 * (0.5 - 0.25))
    assert ignore["var"][0] == pytest.approx(0.5 * (1 / eps - 1 / eps**2), rel=1e-15)
    # homoscedastic var: one fewer dim, or a dimension of 1; its gradient sums over the broadcast
    x, t = A([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]), A([[0.0, 2.5, 0.5], [1.0, 1.0, 1.0]])
    fewer = lk.gaussian_nll_grad(x, t, var=A([0.5, 2.0]), reduction="sum")["var"]
    last = lk.gaussian_nll_grad(x, t, var=A([[0.5], [2.0]]), reduction="sum")["var"]
    np.testing.assert_array_equal(fewer, last.ravel())
    d = x - t
    np.testing.assert_allclose(fewer, np.sum(0.5 * (1 / A([[0.5], [2.0]]) - d**2 / A([[0.25], [4.0]])), axis=1))
    for bad in (A([-1.0, 1.0]), A([[0.5]]), A([0.5, 1.0, 2.0])):
        with pytest.raises(OracleError) as raised:
            lk.gaussian_nll(x[:, :2] if bad.shape == (2,) else x, t[:, :2] if bad.shape == (2,) else t, var=bad)
        assert raised.value.kind == "ValueError"


def test_generalized_kl_is_kl_when_normalized_and_poisson_minus_its_minimum():
    q, p = A([[0.2, 0.8], [0.5, 0.5]]), A([[0.3, 0.7], [0.9, 0.1]])
    np.testing.assert_allclose(
        lk.generalized_kl_div(np.log(q), p, reduction="none", sample_axis="sum"),
        kl_div(np.log(q), p, reduction="none", sample_axis="sum"),
        rtol=1e-14,
    )
    c, t = A([0.5, -2.0, 3.0, 1.0]), A([1.0, 0.25, 7.0, 0.0])
    poisson = lk.poisson_nll(c, t, log_input=True, reduction="none")
    at_minimum = lk.poisson_nll(np.log(np.where(t > 0, t, 1.0)), t, log_input=True, reduction="none")
    np.testing.assert_allclose(
        lk.generalized_kl_div(c, t, reduction="none"), poisson - np.where(t > 0, at_minimum, 0), rtol=1e-13
    )
    # exactly 0 at the minimum, with slope 0 in the input; t = 0 contributes q
    np.testing.assert_array_equal(lk.generalized_kl_div(A([0.0]), A([1.0]), reduction="none"), [0.0])
    g = lk.generalized_kl_div_grad(A([0.0, 1.0]), A([1.0, 0.0]), reduction="none")
    np.testing.assert_array_equal(g["input"], [0.0, math.e])
    assert g["target"][0] == 0.0 and g["target"][1] == -np.inf


def test_edge_tables_evaluate():
    """Every edge row of the three specs evaluates (a value, or its documented ValueError)."""
    for name in FD_CONVENTIONS:
        spec = SPECS[name]
        for case in spec.edges:
            arrays = case.in_dtype("float64")
            args = [arrays["input"]] + ([arrays["target"]] if "target" in arrays else [])
            kw = {**case.params, **{k: arrays[k] for k in spec.arrays}}
            try:
                spec.oracle(*args, **kw)
                spec.gradient(*args, **kw)
            except OracleError as exc:
                assert exc.kind == "ValueError", case.id
