"""Analytic float64 gradients of the oracle (``<oracle>_grad``, ``Spec.gradient``), checked three ways.

1. Central differences of the float64 oracle itself, on every spec's edge table and generated
   cases, under each convention value that changes the derivative (dtypes float32, float64,
   float16 and bfloat16 where a clip rounds its bounds). An element is compared only where the
   loss is smooth at the scale of the step: its value must be finite at x +- h, and two central
   differences (steps h and h/4) must agree, as must the two one-sided ones; a clip bound or a
   log clamp within a step fails that. The smoothness test reads the forward oracle only, so a
   wrong gradient cannot excuse itself, and each spec must compare at least half of what it
   tries (the rest: exact zeros of generated distributions, infinite losses).
   Step h = 1e-6 max(|x|, 0.01); tolerance RTOL |g| + ATOL plus the rounding of the differenced
   values (16 EPS of their magnitude, over h).
2. mpmath at 50 digits: the exact gradient of the independent mpmath losses of
   ``oracle_helpers.py`` (their values are checked by ``test_oracle_mpmath.py``), by a central
   difference at the float64 point with a relative step of 2^-(prec + gap + 20) at
   2 (prec + gap) + 64 bits (prec = 169 at 50 digits; ``gap``: how many bits the slope lies
   below the summed values), at hand-chosen points with saturation (probabilities 1e-12 and
   1 - 1e-12, logits +-30, +-700 and -740, 1000 classes). Bound: ULP_BOUND = 4 float64 ULPs
   of the exact value; a point above it may exceed it by what the conditioning of the slope
   in its inputs explains, as in ``test_oracle_mpmath.py`` (label smoothing's rounded
   1 - y', a renormalized soft target). ``test_zz_largest_gradient_error`` prints the
   largest errors: ``pytest tests/test_oracle_gradients.py -s -k "mpmath or largest"``.
3. The conventions at their edges, each against a hand-derived closed form or an exact 0/NaN.
"""

from __future__ import annotations

import inspect
import math
from collections import defaultdict

import mpmath
import numpy as np
import pytest
from mpmath import mp, mpf
from oracle_helpers import (  # the finite differences, the independent mpmath losses
    BF16,
    EPS,
    F16,
    F32,
    F64,
    INFORMATION,
    _arguments,
    _mp_bce,
    _mp_bce_logits,
    _mp_categorical_ce,
    _mp_cross_entropy,
    _mp_entropy,
    _mp_kl_div,
    _mp_kl_div_probs,
    _mp_kl_divergence,
    _mp_nll,
    _mp_softmax_ce,
    _mp_softmax_ce_soft,
    _mp_sparse_categorical_ce,
    _obj,
    fd_failures,
)

from lossparity.conformance.runner import differentiated
from lossparity.conformance.specs import SPECS
from lossparity.reference import OracleError

# One worker runs the whole module (``make test``: ``-n 2 --dist loadgroup``): its last test
# reports and bounds the errors the others recorded in this process.
pytestmark = pytest.mark.xdist_group("oracle_gradients")


def _has_target_grad(spec):
    return spec.target == "same"


# ============================================================================= 1. finite differences

EPS7_32, EPS7_64 = {"prob_eps": 1e-7, "dtype": F32}, {"prob_eps": 1e-7, "dtype": F64}
#: Convention sets per spec: each value that changes a derivative, alone or combined.
FD_CONVENTIONS = {
    "binary_cross_entropy": [
        {},
        {"log_min": -100.0},
        EPS7_32,
        EPS7_64,
        {"prob_eps": 1e-7, "dtype": BF16},
        {"sample_axis": "mean"},
        {"sample_axis": "sum", "log_min": -100.0},
    ],
    "binary_cross_entropy_with_logits": [{}, {"sample_axis": "mean"}],
    "softmax_cross_entropy": [{}, {"mean_by": "weights"}, {"zero_division": "zero", "mean_by": "weights"}],
    "softmax_cross_entropy_soft": [{}],
    "categorical_cross_entropy": [
        {},
        EPS7_32,
        {"renormalize": "before_clip"},
        {"renormalize": "after_clip", **EPS7_32},
        {"renormalize": "before_clip", "prob_eps": 1e-3, "dtype": F16},
    ],
    "sparse_categorical_cross_entropy": [
        {},
        EPS7_32,
        {"renormalize": "before_clip", **EPS7_64},
        {"renormalize": "after_clip", "zero_division": "zero"},
    ],
    "nll_loss": [{}, {"mean_by": "weights"}],
    "kl_div": [{}, {"sample_axis": "mean"}, {"sample_axis": "sum"}],
    "kl_div_probs": [{}, EPS7_32],
    "entropy": [
        {},
        {"renormalize": "before_clip"},
        EPS7_32,
        {"prob_eps": "finfo", "dtype": BF16},
        {"renormalize": "before_clip", "prob_eps": "finfo", "dtype": F32},
    ],
    "cross_entropy": [{}, {"renormalize": "before_clip", "base": 2}, {"prob_eps": "finfo", "dtype": F16}],
    "kl_divergence": [{}, {"renormalize": "before_clip"}, EPS7_32],
}


@pytest.mark.parametrize("spec_name", sorted(FD_CONVENTIONS))
def test_gradient_matches_finite_differences(spec_name):
    failures = fd_failures(spec_name, FD_CONVENTIONS[spec_name])
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(failures[:10])


# ============================================================================= 2. mpmath

DPS = 50
ULP_BOUND = 4
PERTURB = mpf("1e-15")  # relative step of the conditioning estimate
MAX_CONDITIONED = 64  # inputs: beyond this a point gets no conditioning allowance (it would be slow)
MAX_GAP = 1100  # bits: a slope the oracle rounds to 0 is resolved down to 2^-1100 of the values
#: spec -> the mpmath loss (``oracle_helpers.py``) it is checked against
MP_REFERENCE = {
    "binary_cross_entropy": _mp_bce,
    "binary_cross_entropy_with_logits": _mp_bce_logits,
    "softmax_cross_entropy": _mp_softmax_ce,
    "softmax_cross_entropy_soft": _mp_softmax_ce_soft,
    "categorical_cross_entropy": _mp_categorical_ce,
    "sparse_categorical_cross_entropy": _mp_sparse_categorical_ce,
    "nll_loss": _mp_nll,
    "kl_div": _mp_kl_div,
    "kl_div_probs": _mp_kl_div_probs,
    "entropy": _mp_entropy,
    "cross_entropy": _mp_cross_entropy,
    "kl_divergence": _mp_kl_divergence,
}
#: spec -> [largest raw ULP error, largest relative error, largest ULP beyond conditioning, where]
WORST_MP: dict[str, list] = defaultdict(lambda: [0.0, 0.0, 0.0, None])

A = np.array
NEAR0, NEAR1 = 1e-12, 1 - 1e-12
WIDE = np.linspace(-30.0, 30.0, 1000)
#: (spec, [input, target], keyword arguments[, the (argument, index) checked]): points away
#: from kinks and from cancellation of the slope's own terms, saturated where it matters.
MP_POINTS = [
    ("binary_cross_entropy", [A([NEAR0, NEAR1, 0.3, 0.5]), A([1.0, 0.0, 0.25, 1.0])], {"reduction": "none"}),
    (
        "binary_cross_entropy",
        [A([[NEAR0, 0.7, NEAR1], [0.2, 0.45, 0.9]]), A([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0]])],
        {"log_min": -100.0, "weight": A([2.0, 0.5, 1.0]), "label_smoothing": 0.1},
    ),
    (
        "binary_cross_entropy",
        [A([[1e-3, 0.6], [1e-9, 0.999]]), A([[1.0, 0.3], [1.0, 0.0]])],
        {"prob_eps": 1e-7, "dtype": F32, "sample_axis": "mean", "reduction": "sum"},
    ),
    (
        "binary_cross_entropy_with_logits",
        [A([30.0, -30.0, 700.0, -700.0, -740.0, 0.5, -2.0]), A([1.0, 0.0, 1.0, 0.0, 0.0, 0.3, 1.0])],
        {"reduction": "none"},
    ),
    (
        "binary_cross_entropy_with_logits",
        [A([[1.5, -0.5, 30.0], [0.0, 2.0, -30.0]]), A([[1.0, 0.0, 0.5], [0.3, 1.0, 1.0]])],
        {"pos_weight": A([3.0, 0.5, 2.0]), "weight": A([1.0, 2.0, 0.5]), "label_smoothing": 0.1, "sample_axis": "mean"},
    ),
    (
        "softmax_cross_entropy",
        [A([[30.0, 0.0, -30.0], [700.0, 0.0, -700.0], [0.5, -0.25, 1.0], [-700.0, 700.0, 0.0]]), A([0, 0, 2, 0])],
        {"reduction": "none"},
    ),
    (
        "softmax_cross_entropy",
        [A([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [5.0, -5.0, 0.5]]), A([0, -100, 2])],
        {"weight": A([3.0, 1.0, 0.5]), "ignore_index": -100, "label_smoothing": 0.2, "mean_by": "weights"},
    ),
    (
        "softmax_cross_entropy",
        [A([WIDE, -WIDE]), A([999, 3])],
        {},
        [("input", i) for i in [(0, 0), (0, 500), (0, 998), (0, 999), (1, 0), (1, 3), (1, 999)]],
    ),
    (
        "softmax_cross_entropy",
        [A([[1.0, 2.0], [0.5, -0.5]]), A([5, -1])],
        {"invalid_label": "wrap", "reduction": "sum"},
    ),
    (
        "nll_loss",
        [A([[-NEAR0, -30.0, -700.0], [-0.5, -1.5, -2.5]]), A([0, 2])],
        {"weight": A([2.0, 1.0, 0.5]), "mean_by": "weights"},
    ),
    (
        "softmax_cross_entropy_soft",
        [A([[30.0, 0.0], [-700.0, 700.0], [0.5, 1.5]]), A([[1.0, 0.0], [0.25, 0.75], [0.5, 0.5]])],
        {"weight": A([2.0, 0.5]), "label_smoothing": 0.1, "reduction": "sum"},
    ),
    (
        "categorical_cross_entropy",
        [A([[NEAR0, NEAR1], [0.2, 0.8]]), A([[0.5, 0.5], [0.0, 1.0]])],
        {"reduction": "none"},
    ),
    (
        "categorical_cross_entropy",
        [A([[1e-9, 0.3, 0.7], [0.2, 0.3, 0.6]]), A([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]])],
        {"prob_eps": 1e-7, "dtype": F32, "renormalize": "after_clip", "label_smoothing": 0.1},
    ),
    (
        "categorical_cross_entropy",
        [A([[0.2, 0.3, 0.6], [NEAR0, 0.5, 0.5]]), A([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]])],
        {"renormalize": "before_clip", "reduction": "sum"},
    ),
    # A confident prediction, renormalized (the target's slope -log q inherits finding C of
    # test_oracle_mpmath.py there, so only the input's is checked).
    (
        "categorical_cross_entropy",
        [A([[NEAR1, NEAR0, NEAR0 / 2], [0.25, 0.5, 0.25]]), A([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])],
        {"renormalize": "before_clip", "reduction": "none"},
        [("input", i) for i in np.ndindex(2, 3)],
    ),
    ("entropy", [A([[NEAR1, NEAR0, NEAR0 / 2]])], {"renormalize": "before_clip"}),
    ("sparse_categorical_cross_entropy", [A([[0.05, 0.95, NEAR0], [0.1, 0.8, 0.1]]), A([2, 1])], {"reduction": "none"}),
    (
        "sparse_categorical_cross_entropy",
        [A([[0.0, 0.95, 0.05], [0.2, 0.3, 0.6], [NEAR0, 0.5, 0.5]]), A([1, 0, 0])],
        {"prob_eps": 1e-7, "dtype": F32, "renormalize": "before_clip"},
    ),
    ("kl_div", [A([[-NEAR0, -30.0], [-700.0, -2.5]]), A([[0.5, NEAR0], [0.25, 0.25]])], {"reduction": "batchmean"}),
    (
        "kl_div",
        [A([[-NEAR0, -30.0], [-700.0, -2.5]]), A([[-NEAR0, -30.0], [-700.0, -0.5]])],
        {"log_target": True, "sample_axis": "mean"},
    ),
    ("kl_div_probs", [A([[NEAR0, NEAR1], [0.3, 0.7]]), A([[0.5, 0.5], [0.6, 0.2]])], {"reduction": "none"}),
    ("kl_div_probs", [A([[1e-9, NEAR1], [0.3, 0.7]]), A([[0.0, 0.5], [0.6, 0.2]])], {"prob_eps": 1e-7, "dtype": F32}),
    ("entropy", [A([[NEAR0, NEAR1], [0.25, 0.75]])], {}),
    ("entropy", [A([[1.0, 2.0, NEAR0], [1e-9, 0.25, 0.5]])], {"base": 2, "renormalize": "before_clip"}),
    ("entropy", [A([[1e-9, 0.25, 0.75]])], {"prob_eps": "finfo", "dtype": F32}),
    ("cross_entropy", [A([[NEAR0, NEAR1], [0.3, 0.7]]), A([[0.5, 0.5], [0.2, 0.8]])], {}),
    ("cross_entropy", [A([[1.0, 2.0, NEAR0]]), A([[0.2, 0.5, 0.3]])], {"base": 2, "renormalize": "before_clip"}),
    ("kl_divergence", [A([[NEAR0, NEAR1], [0.3, 0.7]]), A([[0.5, 0.5], [0.2, 0.8]])], {}),
    ("kl_divergence", [A([[1e-9, 0.3, 0.7]]), A([[0.3, 0.3, 0.4]])], {"prob_eps": 1e-7, "dtype": F32, "base": 2}),
]


def _to_mp(v):
    return _obj(v) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v


def _exact_slope(ref, m_args, m_kw, pos, idx, hint):
    """d sum(ref(...)) / d m_args[pos][idx] at the exact float64 point, to about 2^-(prec + 40).

    A central difference with a relative step 2^-(prec + gap + 20), where ``gap`` is how many
    bits the slope (estimated by ``hint``) lies below the summed values, evaluated at
    2 (prec + gap) + 64 bits so that the difference of the two sums keeps prec bits.
    """
    values = lambda a: np.array(ref(*a, **m_kw), dtype=object).ravel()  # noqa: E731
    x = m_args[pos][idx]
    prec = mp.prec
    size = mpmath.fsum(abs(v) for v in values(m_args)) + 1e-300
    scale = abs(x) if x else mpf(1)
    gap = MAX_GAP
    if math.isfinite(hint) and hint:
        gap = max(0, int(mpmath.log(size / (scale * abs(hint)), 2)) + 1)
    sides = []
    with mp.workprec(2 * (prec + gap) + 64):
        h = scale * mpf(2) ** -(prec + gap + 20)
        for step in (h, -h):
            moved = list(m_args)
            moved[pos] = m_args[pos].copy()
            moved[pos][idx] = x + step
            sides.append(mpmath.fsum(values(moved)))
        slope = (sides[0] - sides[1]) / (2 * h)
    return +slope


def _conditioning(ref, m_args, m_kw, pos, idx, exact):
    """sum_i |x_i d(slope)/d x_i| over the float inputs (arrays and weights): what a relative
    perturbation of one ULP of each input moves the exact slope by, in units of EPS."""
    cond = mpf(0)
    inputs = [(i, None) for i, a in enumerate(m_args) if a.dtype == object]
    inputs += [(None, k) for k, v in m_kw.items() if isinstance(v, np.ndarray) and v.dtype == object]
    for i, k in inputs:
        arr = m_args[i] if k is None else m_kw[k]
        for j in np.ndindex(arr.shape):
            if not arr[j] or not mpmath.isfinite(arr[j]):
                continue
            bumped = arr.copy()
            bumped[j] = arr[j] * (1 - PERTURB)
            args2 = [bumped if n == i else a for n, a in enumerate(m_args)]
            kw2 = m_kw if k is None else {**m_kw, k: bumped}
            cond += abs(_exact_slope(ref, args2, kw2, pos, idx, float(exact)) - exact) / PERTURB
    return cond


def _check_mp(spec_name, args, kw, only=None):
    """Each checked gradient element against its exact value; returns the failures.

    The error is in float64 ULPs of the exact value. Above ULP_BOUND, what the conditioning of
    the slope explains (EPS * sum_i |x_i d(slope)/d x_i|: no float64 algorithm that rounds an
    input-sized intermediate does better) is taken off first, as in test_oracle_mpmath.py,
    except at points too large to estimate it quickly (the 1000 classes).
    """
    spec, ref = SPECS[spec_name], MP_REFERENCE[spec_name]
    kw = {"dtype": F32, **kw}
    grads = spec.gradient(*args, **kw)
    failures = []
    with mp.workdps(DPS):
        m_args = [_to_mp(a) for a in args]
        m_kw = {k: _to_mp(v) for k, v in kw.items() if k in inspect.signature(ref).parameters}
        keys = ["input", "target"] if _has_target_grad(spec) else ["input"]
        for key, idx in only or [(k, i) for k, a in zip(keys, args) for i in np.ndindex(a.shape)]:
            pos = keys.index(key)
            got = float(grads[key][idx])
            exact = _exact_slope(ref, m_args, m_kw, pos, idx, got)
            err = abs(mpf(got) - exact)
            ulp = mpf(float(np.spacing(abs(float(exact)))))
            raw = float(err / ulp)
            residual = raw
            if raw > ULP_BOUND and sum(np.size(a) for a in args) <= MAX_CONDITIONED:
                allowed = EPS * _conditioning(ref, m_args, m_kw, pos, idx, exact)
                residual = max(0.0, float((err - allowed) / ulp))
            rel = float(err / abs(exact)) if abs(exact) >= 2.0**-1022 else 0.0  # subnormals: ULPs only
            where = f"{spec_name} d/d{key}{list(map(int, idx))} at {args!r} {kw!r}"
            worst = WORST_MP[spec_name]
            worst[0], worst[1] = max(worst[0], raw), max(worst[1], rel)
            if residual > worst[2]:
                worst[2], worst[3] = residual, where
            if not residual <= ULP_BOUND:
                failures.append(
                    f"{where}: oracle {got!r}, exact {mpmath.nstr(exact, 20)}, "
                    f"{raw:.3g} ULP, {residual:.3g} beyond conditioning"
                )
    return failures


@pytest.mark.parametrize(
    "spec_name, args, kw, only",
    [(*p, None)[:4] for p in MP_POINTS],
    ids=[f"{p[0]}-{i}" for i, p in enumerate(MP_POINTS)],
)
def test_gradient_matches_mpmath(spec_name, args, kw, only):
    failures = _check_mp(spec_name, args, kw, only)
    assert not failures, "\n".join(failures)


# ============================================================================= 3. conventions at their edges


def grad(spec_name, *args, **kw):
    with np.errstate(all="ignore"):
        return SPECS[spec_name].gradient(*[np.asarray(a) for a in args], **kw)


def softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


@pytest.mark.parametrize("spec_name", sorted(SPECS))
def test_every_spec_has_a_gradient_taking_the_oracles_arguments(spec_name):
    spec = SPECS[spec_name]
    assert spec.gradient is not None and spec.gradient.__name__ == spec.oracle.__name__ + "_grad"
    assert inspect.signature(spec.gradient) == inspect.signature(spec.oracle)
    case = spec.edges[0]
    args, kw = _arguments(case)
    got = spec.gradient(*args, **kw, dtype=np.dtype("float32"), trace=lambda n, v, note="": v)
    assert sorted(got) == sorted(differentiated(spec))
    arrays = {**dict(zip(["input", "target"], args)), **kw}
    for key in got:
        assert got[key].shape == np.shape(arrays[key]) and got[key].dtype == np.float64


LO32, HI32 = float(np.float32(1e-7)), float(np.float32(1 - 1e-7))


def test_clip_passes_the_gradient_at_and_inside_its_bounds_only():
    p = [0.0, 1e-9, LO32, 0.5, HI32, 1.0]
    y = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    g = grad("binary_cross_entropy", p, y, prob_eps=1e-7, dtype=F32, reduction="none")
    np.testing.assert_array_equal(g["input"], [0.0, 0.0, -1 / LO32, -2.0, 1 / (1 - HI32), 0.0])
    # The target's slope is that of the clipped logs, everywhere.
    np.testing.assert_array_equal(g["target"][[0, 5]], [np.log1p(-LO32) - np.log(LO32), np.log1p(-HI32) - np.log(HI32)])
    # bfloat16 (and float16) rounds 1 - 1e-7 to 1: p = 1 is then at the bound, and passes.
    g = grad("binary_cross_entropy", [1.0, 1.0], [1.0, 0.0], prob_eps=1e-7, dtype=BF16, reduction="none")
    np.testing.assert_array_equal(g["input"], [-1.0, np.inf])
    g = grad("categorical_cross_entropy", [[0.0, 1.0]], [[1.0, 0.0]], prob_eps=1e-7, dtype=F32, reduction="none")
    np.testing.assert_array_equal(g["input"], [[0.0, 0.0]])
    g = grad("kl_div_probs", [[1e-9, 1.0]], [[0.0, 1.0]], prob_eps=1e-7, dtype=F32, reduction="none")
    np.testing.assert_array_equal(g["input"], [[0.0, -1.0]])
    assert g["target"][0, 0] == 0.0 and g["target"][0, 1] == 1.0
    eps16 = float(np.finfo(np.float16).eps)
    g = grad("entropy", [1e-5, 0.5], prob_eps="finfo", dtype=F16)
    np.testing.assert_array_equal(g["input"], [-np.log(float(np.float16(eps16))), -(np.log(0.5) + 1)])


def test_log_clamp_passes_the_gradient_at_equality_only():
    tiny = 1e-44  # log(1e-44) = -101.3 < -100
    at = float(np.log(3e-40))  # a log_min that log(3e-40) meets exactly
    g = grad("binary_cross_entropy", [tiny, 3e-40, 1.0], [1.0, 1.0, 1.0], log_min=at, reduction="none")
    np.testing.assert_array_equal(g["input"], [0.0, -1 / 3e-40, -1.0])
    np.testing.assert_array_equal(g["target"], [np.log1p(-tiny) - at, np.log1p(-3e-40) - at, at])


def test_clip_tie_split_passes_half_the_slope_at_a_bound_only():
    """clip_tie="split" (jnp.clip): at p exactly 1 - eps, which is 1 in float16, half of -y/p
    reaches p; strictly inside, the whole slope; strictly outside, none."""
    from lossparity.reference import crossentropy as ce

    p, y = np.array([[0.25, 0.75], [1.0, 0.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])
    kw = dict(reduction="sum", prob_eps=1e-7, dtype=np.float16)
    whole = ce.categorical_cross_entropy_grad(p, y, **kw)["input"]
    split = ce.categorical_cross_entropy_grad(p, y, **kw, clip_tie="split")["input"]
    assert split[1, 0] == 0.5 * whole[1, 0] == -0.5  # on the bound 1 (1 - 1e-7 rounds to 1)
    assert split[1, 1] == whole[1, 1] == 0.0  # 0 is below eps: outside, no slope either way
    np.testing.assert_array_equal(split[0], whole[0])  # inside: untouched
    # in float32 the upper bound is 0.99999988: p = 1 is outside, and the tie never arises
    f32 = dict(kw, dtype=np.float32)
    assert ce.categorical_cross_entropy_grad(p, y, **f32, clip_tie="split")["input"][1, 0] == 0.0


def test_zero_coefficients_take_the_limit_and_infinite_logs_stay_infinite():
    # xlogy(y, p): slope y/p in p is 0 where y = 0, even at p = 0; slope log p in y is -inf there.
    g = grad("categorical_cross_entropy", [[0.0, 1.0]], [[0.0, 1.0]], reduction="none")
    np.testing.assert_array_equal(g["input"], [[0.0, -1.0]])
    np.testing.assert_array_equal(g["target"], [[np.inf, -0.0]])
    g = grad("binary_cross_entropy", [0.0, 1.0], [0.0, 1.0], reduction="none")
    np.testing.assert_array_equal(g["input"], [1.0, -1.0])
    np.testing.assert_array_equal(g["target"], [np.inf, -np.inf])
    g = grad("kl_div", [[-1.0, -np.inf]], [[0.0, 1.0]], reduction="sum")
    np.testing.assert_array_equal(g["input"], [[-0.0, -1.0]])
    assert g["target"][0, 0] == -np.inf and g["target"][0, 1] == np.inf
    g = grad("kl_div", [[-1.0, -2.0]], [[-np.inf, 0.0]], log_target=True, reduction="none")
    np.testing.assert_array_equal(g["input"], [[-0.0, -1.0]])
    np.testing.assert_array_equal(g["target"], [[0.0, 3.0]])
    g = grad("entropy", [0.0, 1.0])
    np.testing.assert_array_equal(g["input"], [np.inf, -1.0])
    # KL outside the support is a constant +inf: slope 0, as for a masked assignment.
    g = grad("kl_divergence", [0.0, 1.0], [0.5, 0.5])
    assert g["input"][0] == 0.0 and g["target"][0] == 0.0 and np.isfinite(g["input"][1])


def test_infinite_logits_follow_the_limits():
    x, y = [np.inf, -np.inf, np.inf, -np.inf, 1e4], [1.0, 0.0, 0.0, 1.0, 1.0]
    g = grad("binary_cross_entropy_with_logits", x, y, reduction="none")
    np.testing.assert_array_equal(g["input"], [0.0, 0.0, 1.0, -1.0, 0.0])
    np.testing.assert_array_equal(g["target"], [-np.inf, np.inf, -np.inf, np.inf, -1e4])
    g = grad("binary_cross_entropy_with_logits", x, y, pos_weight=[2.0, 0.0, 2.0, 0.0, 2.0], reduction="none")
    np.testing.assert_array_equal(g["target"], [-np.inf, 0.0, -np.inf, 0.0, -1e4])
    g = grad("softmax_cross_entropy", [[-np.inf, 0.0, 1e4], [np.inf, 0.0, 0.0]], [0, 0], reduction="none")
    np.testing.assert_array_equal(g["input"][0], [-1.0, 0.0, 1.0])
    assert np.isnan(g["input"][1]).all()


INDEXED = ["softmax_cross_entropy", "nll_loss", "sparse_categorical_cross_entropy"]
PROBS = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])


def _indexed_input(spec_name):
    return {
        "softmax_cross_entropy": np.log(PROBS) + 1.0,
        "nll_loss": np.log(PROBS),
        "sparse_categorical_cross_entropy": PROBS,
    }[spec_name]


def _per_row(spec_name, t):
    """Each row's slope, closed form: softmax - onehot, -onehot, -onehot / p."""
    onehot = np.eye(3)[t]
    return {
        "softmax_cross_entropy": PROBS - onehot,
        "nll_loss": -onehot,
        "sparse_categorical_cross_entropy": -onehot / PROBS,
    }[spec_name]


@pytest.mark.parametrize("spec_name", INDEXED)
def test_ignored_targets_get_exactly_zero_and_are_not_counted(spec_name):
    x = _indexed_input(spec_name).copy()
    x[1] = [np.nan, np.inf, -np.inf]  # whatever an ignored row holds
    g = grad(spec_name, x, [2, -100, 0], ignore_index=-100)["input"]
    np.testing.assert_array_equal(g[1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(g[[0, 2]], _per_row(spec_name, np.array([2, 0, 0]))[[0, 2]] / 2, rtol=1e-14)


@pytest.mark.parametrize("spec_name", INDEXED)
@pytest.mark.parametrize("zero_division", ["nan", "zero"])
def test_all_ignored_mean_has_zero_gradient(spec_name, zero_division):
    x = _indexed_input(spec_name).copy()
    x[0, 0] = np.nan
    g = grad(spec_name, x, [-100, -100, -100], ignore_index=-100, zero_division=zero_division)["input"]
    np.testing.assert_array_equal(g, np.zeros((3, 3)))
    assert SPECS[spec_name].gradient(np.zeros((0, 3)), np.zeros(0, np.int64))["input"].shape == (0, 3)


@pytest.mark.parametrize("spec_name", INDEXED)
def test_invalid_label_gives_a_nan_row(spec_name):
    x = _indexed_input(spec_name)
    g = grad(spec_name, x, [5, 1, -100], ignore_index=-100, invalid_label="nan")["input"]
    assert np.isnan(g[0]).all() and not np.isnan(g[1:]).any()
    np.testing.assert_array_equal(g[2], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(g[1], _per_row(spec_name, np.array([0, 1, 0]))[1] / 2, rtol=1e-14)
    wrapped = grad(spec_name, x, [5, 1, 2], invalid_label="wrap")["input"]
    np.testing.assert_array_equal(wrapped, grad(spec_name, x, [2, 1, 2])["input"])
    with pytest.raises(OracleError) as raised:
        grad(spec_name, x, [5, 1, 2], invalid_label="IndexError")
    assert raised.value.kind == "IndexError"


def test_mean_by_weights_divides_by_the_counted_targets_weights():
    x, t, w = np.log(PROBS), np.array([2, 0, -100]), np.array([3.0, 1.0, 0.5])
    want = w[t[:2], None] * (PROBS[:2] - np.eye(3)[t[:2]]) / (0.5 + 3.0)
    g = grad("softmax_cross_entropy", x, t, weight=w, ignore_index=-100, mean_by="weights")["input"]
    np.testing.assert_allclose(g[:2], want, rtol=1e-14)
    np.testing.assert_array_equal(g[2], [0.0, 0.0, 0.0])
    # Counted targets whose weights sum to 0: the mean is 0/0; its slope 1/0 * 0 is NaN, or 0
    # where zero_division makes the value the constant 0.
    zero = np.array([0.0, 1.0, 1.0])
    assert np.isnan(grad("nll_loss", x, [0, 0, 0], weight=zero, mean_by="weights")["input"]).any()
    np.testing.assert_array_equal(
        grad("nll_loss", x, [0, 0, 0], weight=zero, mean_by="weights", zero_division="zero")["input"], np.zeros((3, 3))
    )


@pytest.mark.parametrize("weighted", [False, True])
def test_label_smoothing_mixes_in_the_uniform_target(weighted):
    s, t = 0.2, np.array([2, 0, 1])
    w = np.array([3.0, 1.0, 0.5]) if weighted else np.ones(3)
    x = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [30.0, -30.0, 0.5]])
    p = softmax(x)
    want = ((1 - s) * w[t, None] * (p - np.eye(3)[t]) + s / 3 * (p * w.sum() - w)) / 3
    kw = {"weight": w} if weighted else {}
    g = grad("softmax_cross_entropy", x, t, label_smoothing=s, **kw)["input"]
    np.testing.assert_allclose(g, want, rtol=1e-13, atol=1e-300)
    soft = grad("softmax_cross_entropy_soft", x, np.eye(3)[t], label_smoothing=s, **kw)["input"]
    np.testing.assert_allclose(soft, want, rtol=1e-13, atol=1e-300)
    y = np.array([1.0, 0.0, 0.5])
    g = grad("binary_cross_entropy_with_logits", [0.5, -1.0, 2.0], y, label_smoothing=s, reduction="sum")
    np.testing.assert_allclose(
        g["input"], 1 / (1 + np.exp(-np.array([0.5, -1.0, 2.0]))) - (y * (1 - s) + s / 2), rtol=1e-14
    )
    np.testing.assert_allclose(g["target"], -(1 - s) * np.array([0.5, -1.0, 2.0]), rtol=1e-15)
    # pos_weight = 1 is the plain loss, also near x = 0, where its two softplus terms cancel.
    x = np.array([1e-8, -3e-5, 0.0, 4.0])
    plain, ones = (
        grad("binary_cross_entropy_with_logits", x, [0.5, 1.0, 0.2, 0.0], reduction="none", **extra)
        for extra in ({}, {"pos_weight": np.ones(4)})
    )
    for key in ("input", "target"):
        np.testing.assert_array_equal(ones[key], plain[key])


@pytest.mark.parametrize(
    "spec_name, kw",
    [
        ("categorical_cross_entropy", {"renormalize": "before_clip"}),
        ("categorical_cross_entropy", {"renormalize": "after_clip"}),
        ("sparse_categorical_cross_entropy", {"renormalize": "before_clip"}),
        ("entropy", {"renormalize": "before_clip"}),
        ("cross_entropy", {"renormalize": "before_clip"}),
        ("kl_divergence", {"renormalize": "before_clip", "base": 2}),
    ],
)
def test_renormalized_losses_are_flat_along_the_scale(spec_name, kw):
    """L(c p) = L(p) after p / sum(p): the gradient is orthogonal to p (and to the target,
    which the information measures renormalize too)."""
    spec = SPECS[spec_name]
    p = np.array([[0.3, 1.2, 0.5], [2.0, 0.25, 0.75]])
    args = [p] + (
        [np.array([2, 0]) if spec.target == "index" else np.array([[0.2, 0.5, 0.3], [1.0, 1.0, 2.0]])]
        if spec.target
        else []
    )
    g = grad(spec_name, *args, **kw)
    for key, a in zip(["input", "target"] if spec_name in INFORMATION else ["input"], args):
        np.testing.assert_allclose(np.sum(g[key] * a, axis=-1), 0.0, atol=1e-14)


def test_reductions_scale_the_per_element_gradient():
    x, y = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -3.0]]), np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]])
    none = grad("binary_cross_entropy_with_logits", x, y, reduction="none")["input"]
    for kw, factor in [
        ({"reduction": "sum"}, 1.0),
        ({"reduction": "mean"}, 1 / 6),
        ({"reduction": "sum", "sample_axis": "mean"}, 1 / 3),
        ({"reduction": "mean", "sample_axis": "sum"}, 1 / 2),
    ]:
        np.testing.assert_allclose(
            grad("binary_cross_entropy_with_logits", x, y, **kw)["input"], none * factor, rtol=1e-15
        )
    batchmean = grad("kl_div", np.log(softmax(x)), softmax(-x), reduction="batchmean")
    total = grad("kl_div", np.log(softmax(x)), softmax(-x), reduction="sum")
    for key in ("input", "target"):
        np.testing.assert_allclose(batchmean[key], total[key] / 2, rtol=1e-15)


def test_gradient_raises_where_the_oracle_documents_an_error():
    with pytest.raises(OracleError) as raised:
        grad("binary_cross_entropy", [0.5, 1.5], [1.0, 0.0], prob_domain="RuntimeError")
    assert raised.value.kind == "RuntimeError"


def test_zz_largest_gradient_error():
    """Runs last in the module: prints the largest gradient errors against mpmath (``pytest -s``):
    raw ULPs, relative (over exact values in the normal range), and ULPs beyond conditioning."""
    if not WORST_MP:
        pytest.skip("no mpmath comparison ran (selected alone)")
    width = max(map(len, WORST_MP))
    lines = [
        f"  {n:<{width}}  {raw:7.3g} ULP  {rel:9.3g} relative  {res:6.3g} ULP beyond conditioning"
        for n, (raw, rel, res, _) in sorted(WORST_MP.items())
    ]
    raw, rel, res = (max(v[k] for v in WORST_MP.values()) for k in range(3))
    worst = max(WORST_MP.values(), key=lambda v: v[2])[3]
    print(
        f"\nlargest oracle gradient error vs mpmath: {raw:.3g} ULP raw, {rel:.3g} relative, "
        f"{res:.3g} ULP beyond conditioning\n" + "\n".join(lines) + f"\n  worst beyond conditioning: {worst}"
    )
    assert res <= ULP_BOUND


# -- gradients with respect to the weights (runner.weight_gradients) -----------------------------


def test_the_slope_of_a_ratio_of_affine_functions_is_read_exactly_from_three_values():
    from lossparity.conformance.runner import mobius_slope

    def ratio(t):
        return (3.0 * t + 1.0) / (2.0 * t + 5.0)

    t, h = 0.7, 0.25
    exact = (3.0 * 5.0 - 1.0 * 2.0) / (2.0 * t + 5.0) ** 2  # (ad - bc) / (ct + d)^2
    assert mobius_slope(ratio(t - h), ratio(t), ratio(t + h), h) == pytest.approx(exact, rel=1e-14)
    assert mobius_slope(1.0 - 2 * h, 1.0, 1.0 + 2 * h, h) == pytest.approx(2.0, rel=1e-14)  # affine, slope 2
    assert mobius_slope(4.0, 4.0, 4.0, h) == 0.0  # flat: a class no target takes
    assert math.isnan(mobius_slope(math.inf, 1.0, 2.0, h))
    assert mobius_slope(-math.inf, 1.0, math.inf, h) == math.inf  # a weight of 0 on an infinite term


def test_weight_gradient_of_a_weighted_mean_is_derived_in_closed_form():
    """Cross-entropy's weighted mean L = sum_i w[y_i] l_i / sum_i w[y_i]: d L / d w_k =
    sum_{i: y_i = k} (l_i - L) / sum_i w[y_i]; its pos_weight analogue for BCE on logits is the sum
    of y softplus(-x) over the elements, divided by their count."""
    from lossparity.conformance.runner import expect_gradients
    from lossparity.core.model import Case

    x = np.array([[0.2, 1.5, -0.3], [2.0, 0.1, 0.4], [0.0, -1.0, 1.0]])
    y = np.array([1, 0, 1])
    w = np.array([0.5, 2.0, 3.0])
    spec = SPECS["softmax_cross_entropy"]
    case = Case(spec.name, "t", {}, {"input": x, "target": y}, {"weight": w})
    conventions = {"mean_by": "weights"}
    g = expect_gradients(spec, case, {"weight": w, "reduction": "mean"}, conventions, "float64")
    lse = np.log(np.exp(x).sum(axis=1))
    losses = lse - x[np.arange(3), y]
    wy = w[y]
    mean = np.sum(wy * losses) / np.sum(wy)
    derived = np.array([np.sum((losses - mean)[y == k]) for k in range(3)]) / np.sum(wy)
    np.testing.assert_allclose(g["weight"], derived, rtol=1e-9, atol=1e-12)

    z, t, pw = np.array([[0.5, -1.0], [2.0, 0.3]]), np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([2.0, 0.5])
    spec = SPECS["binary_cross_entropy_with_logits"]
    case = Case(spec.name, "t", {}, {"input": z, "target": t}, {"pos_weight": pw})
    g = expect_gradients(spec, case, {"pos_weight": pw, "reduction": "mean"}, {}, "float64")
    softplus = np.log1p(np.exp(-z))  # softplus(-z)
    np.testing.assert_allclose(g["pos_weight"], (t * softplus).sum(axis=0) / z.size, rtol=1e-9)
