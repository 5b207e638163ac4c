"""What the oracle tests share (``tests/test_oracle_*.py``): the float dtypes their convention
sets name, the finite-difference check of the oracle's analytic gradients that each family's
test module runs (``fd_failures``), and the independent mpmath losses (``test_oracle_mpmath.py``
checks the oracle's values against them, ``test_oracle_gradients.py`` its gradients).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict

import mpmath
import numpy as np
import pytest
from mpmath import mp, mpf

from lossparity.conformance.generate import draw_cases
from lossparity.conformance.runner import differentiated
from lossparity.conformance.specs import SPECS
from lossparity.core.model import ARRAY_PARAMS
from lossparity.reference import OracleError

try:
    import ml_dtypes
except ImportError:  # it comes with the frameworks; float16 also rounds 1 - 1e-7 up to 1
    ml_dtypes = None

EPS = 2.0**-52
F32, F64, F16 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)
BF16 = np.dtype(ml_dtypes.bfloat16) if ml_dtypes else F16

INFORMATION = ("entropy", "cross_entropy", "kl_divergence")  # these renormalize target and input alike


# ============================================================================= finite differences
# The method and its bounds: ``test_oracle_gradients.py``'s docstring, part 1.

RTOL, ATOL = 1e-5, 1e-7
EXAMPLES = 12  # generated cases per spec and convention set
PER_CASE = 6  # elements tried per differentiable argument of a case
MIN_COMPARED = 0.5  # share of the tried elements each spec must compare (KL: about 0.57)
COMPARED: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # spec -> [compared, tried]


def _value(fn, args, kw):
    with np.errstate(all="ignore"):
        return np.asarray(fn(*args, **kw), np.float64)


def _moved(args, pos, idx, step):
    """args with args[pos][idx] moved by ``step``, and the step actually taken (after rounding)."""
    x = args[pos].copy()
    x[idx] = x[idx] + step
    moved = list(args)
    moved[pos] = x
    return moved, float(x[idx] - args[pos][idx])


def _differences(fn, args, kw, pos, idx, h, base):
    """(central, forward, backward, noise) differences of sum(out) at step h, or None where a
    value is not finite.

    The outputs are differenced elementwise before summing, so that unaffected elements add
    nothing (not even their rounding); ``noise`` bounds the rounding of the affected ones, at
    least one of the size of the largest value (a change below its rounding moves nothing).
    """
    sides = []
    for step in (h, -h):
        moved, taken = _moved(args, pos, idx, step)
        out = _value(fn, moved, kw)
        if not (np.all(np.isfinite(out)) and np.all(np.isfinite(base))):
            return None
        sides.append((math.fsum((out - base).ravel()), abs(taken), out != base))
    (up, h_up, moved_up), (down, h_down, moved_down) = sides
    if not (h_up and h_down):
        return None
    affected = max(1, np.count_nonzero(moved_up | moved_down))
    noise = 16 * EPS * affected * float(np.max(np.abs(base), initial=0.0)) / min(h_up, h_down)
    return (up - down) / (h_up + h_down), up / h_up, -down / h_down, noise


def _fd_check(spec, args, kw, rng):
    """Compare the analytic gradient with central differences at up to PER_CASE elements per
    differentiated argument. ``args`` holds the positional arrays (input, target); ``kw`` the
    keywords, the spec's further arrays (``Spec.arrays``) among them."""
    grads = spec.gradient(*args, **kw)
    # and the slope in a weight the oracle derives exactly where the case sets one (Keras' sample_weight)
    keys = list(differentiated(spec)) + [n for n in grads if n in ARRAY_PARAMS and isinstance(kw.get(n), np.ndarray)]
    assert sorted(grads) == sorted(keys)
    names = ["input", "target"][: len(args)]
    base = _value(spec.oracle, args, kw)
    failures = []
    for key in keys:

        def fn(*moved, _key=key):  # the oracle as a function of the argument ``key`` at position 0
            if _key in names:
                return spec.oracle(*[moved[0] if n == _key else a for n, a in zip(names, args)], **kw)
            return spec.oracle(*args, **{**kw, _key: moved[0]})

        x, g = (args[names.index(key)] if key in names else kw[key]), grads[key]
        assert g.shape == x.shape and g.dtype == np.float64, (key, g.shape, x.shape)
        flat = rng.permutation(x.size)[:PER_CASE]
        for idx in (np.unravel_index(i, x.shape) for i in flat):
            COMPARED[spec.name][1] += 1
            if not np.isfinite(x[idx]):
                continue
            h = 1e-6 * max(abs(float(x[idx])), 1e-2)
            wide, narrow = (_differences(fn, [x], {}, 0, idx, s, base) for s in (h, h / 4))
            if wide is None or narrow is None:
                continue
            (c1, _, _, n1), (c2, fwd, bwd, n2) = wide, narrow
            tol = RTOL * max(abs(c1), abs(c2)) + ATOL + n2
            if abs(c1 - c2) > tol or abs(fwd - bwd) > 0.5 * max(abs(fwd), abs(bwd)) + tol:
                continue  # a kink within the step
            COMPARED[spec.name][0] += 1
            if not abs(g[idx] - c1) <= RTOL * abs(c1) + ATOL + n1:
                failures.append(f"{key}{list(map(int, idx))}: analytic {g[idx]!r}, differences {c1!r}")
    return failures


def _fd_cases(spec_name):
    """The edge table and generated cases; generated distributions (which put exact zeros where
    entropy and KL have no derivative) also mixed with the uniform one, 0.9 p + 0.1 / n."""
    spec = SPECS[spec_name]
    drawn = draw_cases(spec_name, spec.generate, examples=EXAMPLES, seed_value=0)
    if spec_name in INFORMATION:
        drawn += [
            dataclasses.replace(
                c, id=c.id + "-mixed", arrays={k: 0.9 * a + 0.1 / a.shape[-1] for k, a in c.arrays.items()}
            )
            for c in drawn
        ]
    return [*spec.edges, *drawn]


def _arguments(case):
    """Positional arrays and keywords (parameters, further arrays) of a case, as
    ``conformance/runner.py`` passes them."""
    arrays = case.in_dtype("float64")
    args = [arrays["input"]] + ([arrays["target"]] if "target" in arrays else [])
    kw = {k: (arrays[k] if isinstance(v, np.ndarray) else v) for k, v in case.params.items() if v is not None}
    kw.update({k: v for k, v in arrays.items() if k not in ("input", "target") and k not in case.params})
    return args, kw


def fd_failures(spec_name, convention_sets):
    """Every mismatch between ``Spec.gradient`` and central differences of ``Spec.oracle`` on
    the spec's edge table and generated cases, under each convention set (a dict of convention
    keywords, ``dtype`` included); asserts that at least MIN_COMPARED of the tried elements
    were smooth enough to compare. Other test modules call this for their specs."""
    spec = SPECS[spec_name]
    failures = []
    for conv_index, conv in enumerate(convention_sets):
        for case_index, case in enumerate(_fd_cases(spec_name)):
            args, params = _arguments(case)
            kw = {"dtype": F32, **params, **conv}
            if conv.get("sample_axis") and args[0].ndim == 0:
                continue
            try:
                found = _fd_check(spec, args, kw, np.random.default_rng([conv_index, case_index]))
            except OracleError:
                with pytest.raises(OracleError):
                    spec.oracle(*args, **kw)
                continue
            failures += [f"{case.id} {conv} {f}" for f in found]
    compared, tried = COMPARED[spec_name]
    assert compared >= MIN_COMPARED * tried, f"only {compared} of {tried} elements compared"
    return failures


# ============================================================================= the mpmath losses
# Written from the mathematics and the documented conventions, not from the oracle's code:
# ``test_oracle_mpmath.py``'s docstring.


def _obj(a) -> np.ndarray:
    """float64 array -> object array of exact mpf (any shape, 0-d included)."""
    a = np.asarray(a, np.float64)
    out = np.empty(a.shape, dtype=object)
    for i in np.ndindex(a.shape):
        out[i] = mpf(float(a[i]))
    return out


def _times(c, v):
    """c * v, with 0 where c == 0 even if v is infinite (a zero coefficient contributes nothing)."""
    return mpf(0) if c == 0 else c * v


def _log(x):
    return mpf("-inf") if x == 0 else mpmath.log(x)


def _log_normalized(v, c):
    """log(v[c] / sum(v)) without forming a quotient that rounds to 1: -log1p(others / v[c])."""
    others = mpmath.fsum(v[j] for j in range(len(v)) if j != c)
    if v[c] == 0:
        return mp.nan if others == 0 else mpf("-inf")
    return -mpmath.log1p(others / v[c])


def _log_softmax(x, c):
    """log softmax(x)[c] = -log(1 + sum_{j != c} exp(x_j - x_c))."""
    return -mpmath.log1p(mpmath.fsum(mpmath.exp(x[j] - x[c]) for j in range(len(x)) if j != c))


def _clip_bounds(eps, dtype, upper_one=False):
    """The clip bounds [eps, 1 - eps] as the framework writes them: Python floats rounded to dtype."""
    lo = float(np.asarray(eps, dtype=dtype))
    hi = 1.0 if upper_one else float(np.asarray(1.0 - eps, dtype=dtype))
    return mpf(lo), mpf(hi)


def _clip(x, lo, hi):
    return min(max(x, lo), hi)


def _div(num, den, zero_division):
    if den == 0:
        if zero_division == "zero":
            return mpf(0)
        return mp.nan if (num == 0 or mpmath.isnan(num)) else mpmath.sign(num) * mp.inf
    return num / den


def _reduce(loss, reduction, *, mask=None, denom=None, mean_by="elements", zero_division="nan", sample_axis=None):
    """The documented reductions over an object array of exact per-element losses."""
    loss = np.array(loss, dtype=object)
    if mask is not None:
        loss = np.where(mask, loss, mpf(0))
    if sample_axis is not None:
        n = loss.shape[-1]
        out = np.empty(loss.shape[:-1], dtype=object)
        for i in np.ndindex(out.shape):
            s = mpmath.fsum(loss[i])
            out[i] = s / n if sample_axis == "mean" else s
        loss, mask, denom = out, None, None
    if reduction == "none":
        return loss
    total = mpmath.fsum(loss.ravel())
    if reduction == "sum":
        return total
    if reduction == "batchmean":
        return _div(total, loss.shape[0] if loss.ndim else 1, zero_division)
    counted = np.ones(loss.shape, bool) if mask is None else mask
    if mean_by == "weights" and denom is not None:
        den = mpmath.fsum(d for d, m in zip(denom.ravel(), counted.ravel()) if m)
    else:
        den = int(np.count_nonzero(counted))
    return _div(total, den, zero_division)


# ----------------------------------------------------------------------------- mpmath references


def _mp_bce(
    p,
    y,
    *,
    weight=None,
    label_smoothing=0.0,
    reduction="mean",
    log_min=None,
    prob_eps=None,
    prob_domain="nan",
    sample_axis=None,
    dtype=np.float32,
):
    s = mpf(label_smoothing)
    if prob_eps is not None:
        lo, hi = _clip_bounds(prob_eps, dtype)
    # the checking kernel sees the clipped probabilities and the smoothed targets (Keras' torch backend)
    checked = [v if prob_eps is None or v != v else min(max(v, lo), hi) for v in p.ravel()]
    outside = [v for v in checked if not 0 <= v <= 1]
    if outside and prob_domain != "nan":
        raise OracleError(prob_domain, f"probability {float(outside[0])} is outside [0, 1]")
    outside = [v for v in y.ravel() if not 0 <= v * (1 - s) + s / 2 <= 1]
    if outside and prob_domain != "nan":
        raise OracleError(prob_domain, f"target {float(outside[0])} is outside [0, 1]")
    loss = np.empty(p.shape, dtype=object)
    for i in np.ndindex(p.shape):
        pi, yi = p[i], y[i]
        yi = yi * (1 - s) + s / 2
        if prob_eps is not None:
            pi = _clip(pi, lo, hi)
        log_p = _log(pi)
        log_q = mpf("-inf") if pi == 1 else mpmath.log1p(-pi)
        if log_min is not None:
            log_p, log_q = max(log_p, mpf(log_min)), max(log_q, mpf(log_min))
        loss[i] = -(_times(yi, log_p) + _times(1 - yi, log_q))
    if weight is not None:
        w = np.broadcast_to(weight, p.shape)
        loss = np.array([_times(w[i], loss[i]) for i in np.ndindex(p.shape)], dtype=object).reshape(p.shape)
    return _reduce(loss, reduction, sample_axis=sample_axis)


def _mp_bce_logits(x, y, *, weight=None, pos_weight=None, label_smoothing=0.0, reduction="mean", sample_axis=None):
    """-[pw * y * log sigmoid(x) + (1 - y) * log(1 - sigmoid(x))], sigmoid(x) = 1 / (1 + e^-x)."""
    s = mpf(label_smoothing)
    pw = None if pos_weight is None else np.broadcast_to(pos_weight, x.shape)
    w = None if weight is None else np.broadcast_to(weight, x.shape)
    loss = np.empty(x.shape, dtype=object)
    for i in np.ndindex(x.shape):
        yi = y[i] * (1 - s) + s / 2
        neg_log_sig = mpmath.log1p(mpmath.exp(-x[i]))  # -log(1 / (1 + e^-x))
        neg_log_1msig = mpmath.log1p(mpmath.exp(x[i]))  # -log(1 - 1 / (1 + e^-x))
        pos = _times(yi, neg_log_sig)
        if pw is not None:
            pos = _times(pw[i], pos)
        v = pos + _times(1 - yi, neg_log_1msig)
        loss[i] = v if w is None else _times(w[i], v)
    return _reduce(loss, reduction, sample_axis=sample_axis)


def _class_index(t, n, ignore_index, invalid_label):
    """(counted, index to use or None for an invalid 'nan' target); raises for an error name."""
    if ignore_index is not None and t == ignore_index:
        return False, None
    if 0 <= t < n:
        return True, int(t)
    if invalid_label == "clamp":
        return True, min(max(int(t), 0), n - 1)
    if invalid_label == "wrap":
        return True, int(t) % n
    if invalid_label == "nan":
        return True, None
    raise OracleError(invalid_label, f"target {t} is outside [0, {n})")


def _mp_indexed(
    logp_row, x, target, *, weight, ignore_index, label_smoothing, reduction, mean_by, zero_division, invalid_label
):
    """Shared mathematics of class-index losses: w[y] * -log p[y], smoothed, masked, reduced.

    ``logp_row(i, c)`` is log p_c of batch element ``i``.
    """
    n = x.shape[-1]
    batch = target.shape
    w = None if weight is None else weight
    s = mpf(label_smoothing)
    loss = np.empty(batch, dtype=object)
    mask = np.ones(batch, bool)
    denom = np.empty(batch, dtype=object)
    for i in np.ndindex(batch):
        counted, c = _class_index(int(target[i]), n, ignore_index, invalid_label)
        mask[i] = counted
        if not counted:
            loss[i], denom[i] = mpf(0), mpf(0)
            continue
        if c is None:
            loss[i], denom[i] = mp.nan, (mpf(1) if w is None else w[0])
            continue
        w_y = mpf(1) if w is None else w[c]
        v = _times(w_y, -logp_row(i, c))
        if s:
            smooth = mpmath.fsum(_times(mpf(1) if w is None else w[k], -logp_row(i, k)) for k in range(n)) / n
            v = (1 - s) * v + s * smooth
        loss[i], denom[i] = v, w_y
    return _reduce(loss, reduction, mask=mask, denom=denom, mean_by=mean_by, zero_division=zero_division)


def _mp_softmax_ce(
    x,
    target,
    *,
    weight=None,
    ignore_index=None,
    label_smoothing=0.0,
    reduction="mean",
    mean_by="elements",
    zero_division="nan",
    invalid_label="nan",
):
    return _mp_indexed(
        lambda i, c: _log_softmax(x[i], c),
        x,
        target,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        reduction=reduction,
        mean_by=mean_by,
        zero_division=zero_division,
        invalid_label=invalid_label,
    )


def _mp_nll(
    logp,
    target,
    *,
    weight=None,
    ignore_index=None,
    reduction="mean",
    mean_by="elements",
    zero_division="nan",
    invalid_label="nan",
):
    return _mp_indexed(
        lambda i, c: logp[i][c],
        logp,
        target,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=0.0,
        reduction=reduction,
        mean_by=mean_by,
        zero_division=zero_division,
        invalid_label=invalid_label,
    )


def _mp_softmax_ce_soft(x, y, *, weight=None, label_smoothing=0.0, reduction="mean"):
    n = x.shape[-1]
    s = mpf(label_smoothing)
    loss = np.empty(x.shape[:-1], dtype=object)
    for i in np.ndindex(loss.shape):
        terms = []
        for c in range(n):
            yc = y[i][c] * (1 - s) + s / n
            term = _times(yc, _log_softmax(x[i], c))
            terms.append(term if weight is None else _times(weight[c], term))
        loss[i] = -mpmath.fsum(terms)
    return _reduce(loss, reduction)


def _mp_fenchel_young(x, y, *, reduction="mean"):
    """logsumexp(x) - <y, x> per row, in 40 digits: the Fenchel-Young loss of log-sum-exp."""
    loss = np.empty(x.shape[:-1], dtype=object)
    for i in np.ndindex(loss.shape):
        row = list(x[i])
        m = max(row)  # shifted: at 40 digits exp(1e-300) is 1, and the tiny score would be lost
        lse = m + mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in row))
        loss[i] = lse - mpmath.fsum(y[i][c] * row[c] for c in range(len(row)))
    return _reduce(loss, reduction)


def _mp_log_probs(p_row, *, prob_eps, renormalize, dtype):
    """log of the predicted probabilities after the documented clip / renormalization, per class."""
    n = len(p_row)
    if prob_eps is not None:
        lo, hi = _clip_bounds(prob_eps, dtype)
    if renormalize == "before_clip":
        total = mpmath.fsum(p_row)
        out = []
        for c in range(n):
            q = p_row[c] / total if total != 0 else mp.nan
            if prob_eps is not None and not mpmath.isnan(q) and (q < lo or q > hi):
                out.append(mpmath.log(_clip(q, lo, hi)))
            else:
                out.append(_log_normalized(p_row, c))
        return out
    q = [_clip(v, lo, hi) for v in p_row] if prob_eps is not None else list(p_row)
    if renormalize == "after_clip":
        return [_log_normalized(q, c) for c in range(n)]
    return [_log(v) for v in q]


def _mp_categorical_ce(
    p, y, *, label_smoothing=0.0, reduction="mean", prob_eps=None, renormalize=None, dtype=np.float32
):
    n = p.shape[-1]
    s = mpf(label_smoothing)
    loss = np.empty(p.shape[:-1], dtype=object)
    for i in np.ndindex(loss.shape):
        logs = _mp_log_probs(p[i], prob_eps=prob_eps, renormalize=renormalize, dtype=dtype)
        loss[i] = -mpmath.fsum(_times(y[i][c] * (1 - s) + s / n, logs[c]) for c in range(n))
    return _reduce(loss, reduction)


def _mp_sparse_categorical_ce(
    p,
    target,
    *,
    ignore_index=None,
    reduction="mean",
    prob_eps=None,
    renormalize=None,
    zero_division="nan",
    invalid_label="nan",
    dtype=np.float32,
):
    logs = {}

    def logp_row(i, c):
        if i not in logs:
            logs[i] = _mp_log_probs(p[i], prob_eps=prob_eps, renormalize=renormalize, dtype=dtype)
        return logs[i][c]

    return _mp_indexed(
        logp_row,
        p,
        target,
        weight=None,
        ignore_index=ignore_index,
        label_smoothing=0.0,
        reduction=reduction,
        mean_by="elements",
        zero_division=zero_division,
        invalid_label=invalid_label,
    )


def _mp_kl_div(log_q, t, *, log_target=False, reduction="mean", sample_axis=None):
    """Pointwise p (log p - log q); the target is p, or log p with ``log_target``."""
    loss = np.empty(log_q.shape, dtype=object)
    for i in np.ndindex(log_q.shape):
        if log_target:
            loss[i] = mpmath.exp(t[i]) * (t[i] - log_q[i])
        else:
            loss[i] = _times(t[i], _log(t[i]) - log_q[i])
    return _reduce(loss, reduction, sample_axis=sample_axis)


def _mp_kl_div_probs(q, p, *, reduction="mean", prob_eps=None, dtype=np.float32):
    """sum_c p_c log(p_c / q_c) per sample; with ``prob_eps`` both clipped into [eps, 1] first."""
    loss = np.empty(q.shape[:-1], dtype=object)
    if prob_eps is not None:
        lo, hi = _clip_bounds(prob_eps, dtype, upper_one=True)
    for i in np.ndindex(loss.shape):
        terms = []
        for c in range(q.shape[-1]):
            qc, pc = q[i][c], p[i][c]
            if prob_eps is not None:
                qc, pc = _clip(qc, lo, hi), _clip(pc, lo, hi)
            terms.append(_times(pc, _log(pc) - _log(qc)))
        loss[i] = mpmath.fsum(terms)
    return _reduce(loss, reduction)


def _info_logs(v, *, renormalize, prob_eps, dtype):
    """(probabilities, their logs) of one distribution after the documented normalization and clip."""
    n = len(v)
    total = mpmath.fsum(v)
    probs = [v[c] / total if total else mp.nan for c in range(n)] if renormalize else list(v)
    if prob_eps is None:
        logs = [_log_normalized(v, c) for c in range(n)] if renormalize else [_log(x) for x in v]
        return probs, logs
    eps = float(np.finfo(dtype).eps) if prob_eps == "finfo" else prob_eps
    lo, hi = _clip_bounds(eps, dtype)
    logs = []
    for c in range(n):
        if probs[c] < lo or probs[c] > hi:
            logs.append(mpmath.log(_clip(probs[c], lo, hi)))
        else:
            logs.append(_log_normalized(v, c) if renormalize else mpmath.log(probs[c]))
    return probs, logs


def _unit(base):
    return mpf(1) if base == "e" else mpmath.log(base)


def _mp_entropy(p, *, base="e", renormalize=None, prob_eps=None, dtype=np.float64):
    out = np.empty(p.shape[:-1], dtype=object)
    for i in np.ndindex(out.shape):
        probs, logs = _info_logs(p[i], renormalize=renormalize, prob_eps=prob_eps, dtype=dtype)
        out[i] = -mpmath.fsum(_times(a, b) for a, b in zip(probs, logs)) / _unit(base)
    return out


def _mp_cross_entropy(q, p, *, base="e", renormalize=None, prob_eps=None, dtype=np.float64):
    out = np.empty(q.shape[:-1], dtype=object)
    for i in np.ndindex(out.shape):
        pp, _ = _info_logs(p[i], renormalize=renormalize, prob_eps=prob_eps, dtype=dtype)
        _, lq = _info_logs(q[i], renormalize=renormalize, prob_eps=prob_eps, dtype=dtype)
        out[i] = -mpmath.fsum(_times(a, b) for a, b in zip(pp, lq)) / _unit(base)
    return out


def _mp_kl_divergence(q, p, *, base="e", renormalize=None, prob_eps=None, dtype=np.float64):
    out = np.empty(q.shape[:-1], dtype=object)
    for i in np.ndindex(out.shape):
        pp, lp = _info_logs(p[i], renormalize=renormalize, prob_eps=prob_eps, dtype=dtype)
        qq, lq = _info_logs(q[i], renormalize=renormalize, prob_eps=prob_eps, dtype=dtype)
        terms = [mp.inf if (b == 0 and a > 0) else _times(a, la - lb) for a, b, la, lb in zip(pp, qq, lp, lq)]
        out[i] = mpmath.fsum(terms) / _unit(base)
    return out
