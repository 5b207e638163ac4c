"""One case through one binding: the oracle's expectation, the real call, the verdict, the record.

Data flows one way: case -> (oracle, binding) -> outcome -> verdict -> record.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from lossparity.conformance.compare import compare
from lossparity.conformance.known import match
from lossparity.core.dtypes import DTYPES, TOLERANCES, numpy_dtype, tolerance
from lossparity.core.model import ARRAY_PARAMS, WEIGHT_PARAMS, Binding, Case, Spec
from lossparity.core.records import encode_array, encode_value
from lossparity.core.verdicts import RANK
from lossparity.reference import transforms as transforms_math
from lossparity.reference.errors import OracleError
from lossparity.reference.rounding import TRANSFORM_STAGES, transform_backward_error, transform_error, unit_roundoff
from lossparity.reference.trace import NO_TRACE


def oracle_kwargs(
    spec: Spec, params: Mapping[str, Any], arrays: Mapping[str, np.ndarray], conventions: Mapping[str, Any]
) -> dict:
    """Keyword arguments of the spec's oracle: set parameters (array ones rounded) and conventions."""
    kw = {}
    for name, value in params.items():
        if value is None:
            continue
        kw[name] = arrays[name] if name in ARRAY_PARAMS else value
    kw.update({n: v for n, v in conventions.items() if n in spec.conventions})
    return kw


def oracle_arrays(case: Case, given: str | None, dtype: str) -> dict[str, np.ndarray]:
    """The case's arrays as the oracle reads them: given in ``given`` (default ``dtype``), computed
    in ``dtype``; an argument the case transforms (``Case.transforms``: the user's call writes
    ``loss(sigmoid(z), y)``, and the framework applies the sigmoid inside the call, in a compiled
    mode inside the compiled function) is the transform's value of the array, each step rounded
    to the given dtype (``reference/transforms.py``), over the canonical class axis, the last."""
    arrays = case.in_dtype(*([given] if given else []), dtype)
    for name, steps in case.transforms.items():
        arrays[name] = transforms_math.through(steps, arrays[name], numpy_dtype(given or dtype), -1)[0]
    return arrays


def _through_transforms(case: Case, grads: dict[str, np.ndarray], given: str | None, dtype: str) -> dict:
    """Gradients with respect to the loss's arguments carried back through each argument's transforms
    to the array the case gives (``sigmoid(z)``: d/dz)."""
    for name, steps in case.transforms.items():
        if name in grads:
            held = case.in_dtype(*([given] if given else []), dtype)[name]
            _, inputs = transforms_math.through(steps, held, numpy_dtype(given or dtype), -1)
            grads[name] = transforms_math.pull_back(inputs, grads[name])
    return grads


def _oracle_call(
    fn,
    spec: Spec,
    case: Case,
    params: Mapping[str, Any],
    conventions: Mapping[str, Any],
    dtype: str,
    given: str | None,
    trace,
):
    return _call_on(fn, spec, oracle_arrays(case, given, dtype), params, conventions, dtype, trace)


def _call_on(fn, spec: Spec, arrays: Mapping[str, np.ndarray], params, conventions, dtype: str, trace):
    """``fn`` (the spec's oracle, gradient or error model) on the arrays as the oracle reads them."""
    positional = [arrays["input"]] + ([arrays["target"]] if "target" in arrays else [])
    kw = oracle_kwargs(spec, params, arrays, conventions)
    kw.update({n: arrays[n] for n in spec.arrays})
    return fn(*positional, **kw, dtype=numpy_dtype(dtype), trace=trace)


def expect(
    spec: Spec,
    case: Case,
    params: Mapping[str, Any],
    conventions: Mapping[str, Any],
    dtype: str,
    trace=NO_TRACE,
    *,
    given: str | None = None,
) -> np.ndarray:
    """The oracle's value for the case under these parameters and conventions (may raise
    OracleError), computing in ``dtype`` from inputs given in ``given`` (default ``dtype``)."""
    return np.asarray(_oracle_call(spec.oracle, spec, case, params, conventions, dtype, given, trace), np.float64)


def expect_gradients(
    spec: Spec,
    case: Case,
    params: Mapping[str, Any],
    conventions: Mapping[str, Any],
    dtype: str,
    *,
    given: str | None = None,
) -> dict[str, np.ndarray]:
    """The oracle's gradients of the summed loss by argument name: the analytic ones of
    ``Spec.gradient``, and those with respect to the weight arrays the case sets (``weight``,
    ``pos_weight``: :func:`weight_gradients`), unless ``Spec.gradient`` gives one itself (Keras'
    ``sample_weight``, ``reference/reduction.py``)."""
    grads = _oracle_call(spec.gradient, spec, case, params, conventions, dtype, given, NO_TRACE)
    out = _through_transforms(case, {k: np.asarray(v, np.float64) for k, v in grads.items()}, given, dtype)
    return {**weight_gradients(spec, case, params, conventions, dtype, given, skip=tuple(out)), **out}


#: The dtypes a weight's gradient is checked in. In float16 and bfloat16 the slope of a weighted
#: mean, (l_k - L) / sum(w), is a difference of two rounded quantities for which no rounding
#: model is declared yet (``reference/rounding.py``): held to the tolerance it would be a finding
#: of the check's own making, so a run does not differentiate the weights there.
WEIGHT_GRADIENT_DTYPES = ("float64", "float32")


def weighted(params: Mapping[str, Any], dtype: str = "float64") -> tuple[str, ...]:
    """The weight arrays a case sets, which a run differentiates the loss with respect to too
    (in :data:`WEIGHT_GRADIENT_DTYPES`)."""
    if dtype not in WEIGHT_GRADIENT_DTYPES:
        return ()
    return tuple(p for p in WEIGHT_PARAMS if isinstance(params.get(p), np.ndarray))


def weight_gradients(
    spec: Spec,
    case: Case,
    params: Mapping[str, Any],
    conventions: Mapping[str, Any],
    dtype: str,
    given: str | None,
    skip: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """d sum(loss) / d each weight the case sets, derived from the oracle itself.

    Every loss here is, in each one weight w_k with the others fixed, a ratio of two affine
    functions (a w_k + b) / (c w_k + d): affine where the reduction is a sum or a mean by count,
    and a ratio where it is a mean weighted by the weights themselves (``mean_by="weights"``).
    Such a function's slope at w is read exactly from its values at w - h, w and w + h:
    (f(w+h) - f(w)) (f(w) - f(w-h)) / (h (f(w+h) - f(w-h)) / 2) (an affine f gives its slope, a
    ratio its derivative (ad - bc) / (c w + d)^2, whatever h), with only the roundings of the three
    values as error. The weights are perturbed past the dtype's rounding (they are float64 here).
    ``skip``: the weights whose gradient the spec's own gives."""
    names = [p for p in weighted(params, dtype) if p in spec.defaults and p not in skip]
    if not names:
        return {}
    arrays = oracle_arrays(case, given, dtype)

    def total(name: str, w: np.ndarray) -> float:
        held = {**arrays, name: w}
        positional = [held["input"]] + ([held["target"]] if "target" in held else [])
        kw = oracle_kwargs(spec, params, held, conventions)
        kw.update({n: held[n] for n in spec.arrays})
        with np.errstate(all="ignore"):
            return float(np.sum(spec.oracle(*positional, **kw, dtype=numpy_dtype(dtype))))

    out = {}
    for name in names:
        w = np.asarray(arrays[name], np.float64)
        f0 = total(name, w)
        g = np.zeros(w.shape)
        for k in np.ndindex(w.shape):
            h = 2.0**-8 * max(1.0, abs(w[k]))
            up, down = w.copy(), w.copy()
            up[k] += h
            down[k] -= h
            g[k] = mobius_slope(total(name, down), f0, total(name, up), h)
        out[name] = g
    return out


def mobius_slope(below: float, at: float, above: float, h: float) -> float:
    """The derivative at t of f(t) = (a t + b) / (c t + d), from f(t - h), f(t), f(t + h); 0 where
    f is flat there. Where f(t) is finite and f steps from -inf to +inf across t (a weight of 0 on
    an infinite term: a w with |a| infinite), the slope is infinite with that sign; any other
    non-finite value leaves it undefined (nan)."""
    if not (math.isfinite(below) and math.isfinite(at) and math.isfinite(above)):
        if math.isfinite(at) and math.isinf(below) and math.isinf(above) and below == -above:
            return above
        return math.nan
    rise = (above - at) * (at - below)
    run = h * (above - below) / 2
    if run == 0.0:
        return 0.0 if rise == 0.0 else math.nan
    return rise / run


def rounding_scales(
    binding: Binding, spec: Spec, case: Case, params: Mapping[str, Any], dtype: str
) -> dict[str, np.ndarray] | None:
    """The spec's error model (``Spec.error_model``) on the case, for a binding that declares
    stages it computes in its dtype: each part's bound in units of the compute dtype's unit
    roundoff (``reference/rounding.py``); None for a binding that declares none, or a case the
    model cannot take."""
    own = bool(binding.stages) and spec.error_model is not None
    if not own and not case.transforms:
        return None
    result = binding.result_dtype(dtype)
    scales = {}
    try:
        if own:
            fn = functools.partial(spec.error_model, stages=binding.stages)
            scales = _oracle_call(fn, spec, case, params, binding.conventions, result, dtype, NO_TRACE)
            scales = {k: np.asarray(v, np.float64) for k, v in scales.items()}
        if case.transforms:
            scales = _transform_scales(binding, spec, case, params, dtype, scales)
    except (OracleError, ValueError, IndexError):
        return None
    return scales


def modelled_stages(binding: Binding, case: Case) -> tuple[str, ...]:
    """The stages a rounding fit of this binding's result on this case reports: the binding's own
    (``Binding.stages``) and the activations the case asks the framework to compute in the
    argument's dtype (``Case.transforms``, ``reference/rounding.py``: ``TRANSFORM_STAGES``)."""
    steps = [t for chain in case.transforms.values() for t, *_ in chain]
    return (*binding.stages, *(TRANSFORM_STAGES[t] for t in steps if t in TRANSFORM_STAGES))


def _transform_scales(binding: Binding, spec: Spec, case: Case, params, dtype: str, own: dict) -> dict:
    """The error model of a case whose argument the framework transforms in the dtype (``loss(sigmoid(z),
    y)``): the binding's own bounds (``own``, with respect to the loss's arguments; the input's carried
    back through the transform) plus what the transform's rounding costs, in units of the u each part
    is checked with (the value the result dtype's, a gradient the narrower of it and the input's).

    The transform's output p (float64, the exact value rounded to ``dtype``, as the oracle reads it)
    may be off by ``delta`` = u ``transform_error`` elementwise. The value moves by at most
    sum |d value / d p| delta (first order; each output element's own row, reduced over the trailing
    axes its value does not have). A gradient, the backward written in p (``backward_at``: the
    frameworks carry the cotangent back through the stored output) and the target's, is evaluated
    at p +- delta on each class index in turn (every row at once: each row's terms depend on its own
    row only), and each element's largest move is summed over the class indices; the backward's own
    rounding (``transform_backward_error``) is added. Raises ValueError where a transform has no
    model (a chain, or one that is not modelled), or the spec no gradient."""
    result = binding.result_dtype(dtype)
    precision = max(dtype, result, key=DTYPES.index)
    given = numpy_dtype(dtype)
    u_given, u_value, u_grad = unit_roundoff(given), unit_roundoff(result), unit_roundoff(precision)
    if spec.gradient is None or any(len(c) != 1 or c[0][0] not in TRANSFORM_STAGES for c in case.transforms.values()):
        raise ValueError("no rounding model of this transform")
    held = case.in_dtype(dtype)
    arrays = oracle_arrays(case, dtype, result)
    conventions = binding.conventions

    def grads_at(arrays) -> dict:
        g = _call_on(spec.gradient, spec, arrays, params, conventions, result, NO_TRACE)
        g = {k: np.asarray(v, np.float64) for k, v in g.items()}
        for name, ((transform, *_),) in case.transforms.items():
            if name in g:
                g[name] = transforms_math.backward_at(transform, arrays[name], -1, g[name])
        return g

    value = np.asarray(_call_on(spec.oracle, spec, arrays, params, conventions, result, NO_TRACE), np.float64)
    raw = {
        k: np.asarray(v, np.float64)
        for k, v in _call_on(spec.gradient, spec, arrays, params, conventions, result, NO_TRACE).items()
    }
    base = grads_at(arrays)
    out = {**own, "value": np.array(own.get("value", np.zeros(value.shape)), np.float64)}
    out.update({k: np.array(own.get(k, np.zeros(v.shape)), np.float64) for k, v in base.items()})
    for name, ((transform, *_),) in case.transforms.items():
        p = arrays[name]
        delta = u_given * transform_error(transform, held[name], -1, given)
        moved = np.abs(raw[name]) * delta
        while moved.ndim > value.ndim:
            moved = moved.sum(axis=-1)
        if moved.shape != value.shape:  # not one row per output element: every element may move by all of it
            moved = np.full(value.shape, moved.sum())
        out["value"] = out["value"] + moved / u_value
        if name in own:  # the binding's own bound on d loss / d p, carried back to z
            out[name] = _carried(transform, p, np.broadcast_to(own[name], p.shape))
        out[name] = out[name] + u_given * transform_backward_error(transform, p, -1, raw[name]) / u_grad
        for c in range(p.shape[-1] if p.ndim else 1):
            worst = {k: np.zeros(v.shape) for k, v in base.items()}
            for sign in (1.0, -1.0):
                step = np.zeros_like(p)
                step[..., c] = sign * delta[..., c] if p.ndim else sign * delta
                with np.errstate(invalid="ignore"):
                    moved_at = grads_at({**arrays, name: np.clip(p + step, 0.0, 1.0)})
                for k, v in moved_at.items():
                    worst[k] = np.maximum(worst[k], np.abs(v - base[k]))
            for k in base:
                out[k] = out[k] + worst[k] / u_grad
    return out


def _carried(transform: str, p: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """A bound (>= 0) on the error of a cotangent with respect to the transform's output ``p``, carried
    back to its input through the backward's absolute values: p (1 - p) b; p_c (b_c + sum_k p_k b_k)."""
    if transform == "sigmoid":
        return p * (1.0 - p) * bound
    return p * (bound + np.sum(p * bound, axis=-1, keepdims=True)) if p.ndim else np.zeros_like(p)


def rounding_bound(expected: np.ndarray, scale: np.ndarray | None, tol, dtype: str) -> np.ndarray | None:
    """Each element's allowance under the error model: atol + rtol |e| + u * scale (``scale``
    in units of ``dtype``'s unit roundoff), in ``expected``'s shape; None without a model."""
    if scale is None:
        return None
    e = np.asarray(expected, np.float64)
    try:
        scale = np.broadcast_to(np.asarray(scale, np.float64), e.shape)
    except ValueError:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        return tol.atol + tol.rtol * np.abs(e) + unit_roundoff(dtype) * scale


def within_rounding(
    actual: np.ndarray, expected: np.ndarray, scale: np.ndarray | None, tol, dtype: str, stages: tuple[str, ...]
) -> dict | None:
    """Whether a part that misses the tolerance is within its error model's bound (``scale``,
    units of ``dtype``'s unit roundoff) of the oracle, elementwise: {"stages", "dtype", "error",
    "bound", "ratio", "summary"} at the element nearest its bound, or None if an element is past
    it, or not finite where the oracle's is, or differs where the oracle's is not finite. An
    expectation past the dtype's range is its infinity, as ``compare`` takes it."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    bound = rounding_bound(e, scale, tol, dtype)
    if bound is None or a.shape != e.shape or e.size == 0:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        rounded = e.astype(numpy_dtype(dtype)).astype(np.float64)
        e = np.where(np.isinf(rounded) & np.isfinite(e), rounded, e)
        same = (a == e) | (np.isnan(a) & np.isnan(e))
        diff = np.abs(a - e)
        finite = np.isfinite(a) & np.isfinite(e)
        plain = finite & (diff <= tol.atol + tol.rtol * np.abs(e))  # within the tolerance, model or not
        fine = same | plain | (finite & np.isfinite(bound) & (diff <= bound))
        if not fine.all():
            return None
        ratio = np.where(same | plain, 0.0, diff / bound)
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if ratio.size else ()
    err, lim, r = float(diff[worst]), float(bound[worst]), float(ratio[worst])
    what = ", ".join(stages)
    return {
        "stages": list(stages),
        "dtype": dtype,
        "error": err,
        "bound": lim,
        "ratio": r,
        "summary": (
            f"consistent with computing {what} in {dtype}: the largest error, {err:.3g}, is {r:.2f} of "
            f"its bound {lim:.3g} (first-order rounding model of {what})"
        ),
    }


def _judged_by_model(errors: dict, actual, expected, scale, tol, dtype: str, stages) -> dict | None:
    """The rounding fit of a part that misses the tolerance (None if it does not fit); where
    it does not, ``errors["rounding_bound"]`` keeps each element's allowance under the model,
    so that a known deviation's symptom describes only the elements past it (a NaN among
    elements off by rounding)."""
    fit = within_rounding(actual, expected, scale, tol, dtype, stages)
    if fit is not None:
        errors["rounding"] = fit
    else:
        bound = rounding_bound(expected, scale, tol, dtype)
        if bound is not None and np.shape(bound) == np.shape(actual):
            # an element the model leaves unbounded (an infinite scale) is held to the tolerance
            errors["rounding_bound"] = encode_array(np.where(np.isfinite(bound), bound, 0.0))
    return fit


def differentiated(spec: Spec, case: Case | None = None) -> tuple[str, ...]:
    """What a run differentiates the loss with respect to: the input, and probability targets
    (or what the spec says: ``Spec.wrt``); of ``case``, only its float arrays: an integer array
    given where floats are documented (an int64 target, issue 19) has no gradient to ask for."""
    if spec.gradient is None:
        return ()
    names = spec.wrt if spec.wrt is not None else ("input", "target") if spec.target == "same" else ("input",)
    if case is None:
        return names
    return tuple(n for n in names if n not in case.arrays or case.arrays[n].dtype.kind == "f")


def spells(adapter, case: Case) -> bool:
    """Whether the adapter writes every transform the case asks the framework to apply (Keras' NumPy
    backend has no sigmoid or softmax of its own: such a case is not its users' call)."""
    steps = [step for chain in case.transforms.values() for step in chain]
    return all(t in adapter.spelling(family[0] if family else "") for t, _, *family in steps)


def scalar_params(params: Mapping[str, Any]) -> dict:
    return {k: encode_value(v) for k, v in params.items() if not isinstance(v, np.ndarray)}


def evaluate(
    adapter,
    binding: Binding,
    spec: Spec,
    case: Case,
    dtype: str,
    *,
    mode: str = "eager",
    device: str = "cpu",
    known=(),
    oracle: dict | None = None,
) -> dict | None:
    """Run one case through one binding; None when the binding cannot take the case.

    ``oracle``: a dict the caller keeps across the modes of one binding's case (``Batch``):
    the oracle's value and gradients depend on the binding, case and dtype, not on the mode,
    so they are computed once and every mode is checked against the same expectation; so is
    the call prepared (``FrameworkAdapter.prepare_case``: its text, layout and, where they are
    immutable, the framework's arrays)."""
    oracle = {} if oracle is None else oracle
    if not spells(adapter, case):
        return None
    held = adapter.held_dtype(dtype, mode)  # float64 is float32 in JAX without jax_enable_x64
    key = (binding.key, case.id, dtype, device, held)
    if key not in oracle:
        oracle.clear()  # the cases of a batch come in order: one case's expectations at a time
        oracle[key] = begin(binding, spec, case, dtype, mode=mode, device=device, held=held)
    started = oracle[key]
    if started is None:
        return None
    template, expected, params = started
    record = {**template, "mode": mode, "seconds": dict(template["seconds"])}
    wrt = differentiated(spec, case) + weighted(params, held) if expected is not None and adapter.differentiates else ()
    if (key, "call") not in oracle:
        oracle[key, "call"] = adapter.prepare_case(binding, case, dtype)
    outcome = adapter.call(binding, case, dtype, mode=mode, wrt=wrt, prepared=oracle[key, "call"])
    if outcome.error_type is None:
        record["actual"] = {"value": encode_array(outcome.value), "dtype": outcome.dtype}
    else:
        record["actual"] = {
            "error": outcome.error_type,
            "message": outcome.error_message,
            "classes": list(outcome.error_mro),
        }
    record["seconds"]["call"] = outcome.seconds
    if outcome.compiled:
        record["compiled"] = outcome.compiled
    result = binding.result_dtype(held)

    def model() -> dict | None:  # the error model's bounds, computed once per case, when a part misses
        if (key, "rounding") not in oracle:
            oracle[key, "rounding"] = rounding_scales(binding, spec, case, params, held)
        return oracle[key, "rounding"]

    stages = modelled_stages(binding, case)
    record["value_verdict"], record["errors"] = verdict(
        expected,
        record["expected"],
        outcome,
        tolerance(spec.name, result),
        result,
        model=(lambda: (model() or {}).get("value")) if stages else None,
        stages=stages,
    )
    if outcome.grads:
        if (key, "gradients") not in oracle:
            oracle[key, "gradients"] = expect_gradients(spec, case, params, binding.conventions, result, given=dtype)
        record["gradients"] = gradient_verdicts(
            binding, spec, held, outcome.grads, oracle[key, "gradients"], model=model if stages else None, stages=stages
        )
    parts = [record["value_verdict"], *(g["verdict"] for g in (record["gradients"] or {}).values())]
    record["verdict"] = max(parts, key=RANK.__getitem__)
    return finish(record, adapter, binding, case, known)


def gradient_verdicts(
    binding: Binding, spec: Spec, dtype: str, grads: Mapping, expected: Mapping, model=None, stages=None
) -> dict:
    """Each gradient the framework gave (or failed to give) against the oracle's
    (``expect_gradients``), in the precision of the narrower of the input's dtype and the
    compute dtype (a gradient is computed in the one and returned in the other). ``stages``:
    what a rounding fit names (``modelled_stages``; default the binding's)."""
    stages = binding.stages if stages is None else stages
    result = binding.result_dtype(dtype)
    precision = max(dtype, result, key=DTYPES.index)
    tol = tolerance(spec.name, precision)
    out = {}
    for name, got in grads.items():
        if name in binding.nondifferentiable:  # the framework declares no gradient here: it must refuse
            out[name] = _refused(binding, name, got)
            continue
        entry = {"expected": {"value": encode_array(expected[name])}}
        if isinstance(got, str):
            entry.update(
                actual={"error": got},
                verdict="error_mismatch",
                errors={"summary": f"expected a gradient; raised {got}"},
            )
        else:
            value, got_dtype = got
            comparison = compare(value, expected[name], tol, precision)
            entry.update(
                actual={"value": encode_array(value), "dtype": got_dtype},
                verdict="conform" if comparison.ok else "deviate",
                errors=comparison.as_dict(),
            )
            wrong = got_dtype != dtype
            if wrong:
                entry.update(verdict="deviate", errors=_wrong_dtype(entry["errors"], got_dtype, dtype))
            if not comparison.ok and model is not None:  # are the numbers those of the declared computation?
                scale = (model() or {}).get(name)
                fit = _judged_by_model(entry["errors"], value, expected[name], scale, tol, precision, stages)
                if fit is not None and not wrong:
                    entry["verdict"] = "conform"
        out[name] = entry
    return out


def _refused(binding: Binding, name: str, got) -> dict:
    """The verdict on a gradient the framework declares it does not take (``Binding.nondifferentiable``):
    a refusal conforms; a value is a change from what it declares."""
    expected = {"error": "not differentiable", "message": f"{binding.framework} declares no gradient for {name}"}
    if isinstance(got, str):
        return {
            "expected": expected,
            "actual": {"error": got},
            "verdict": "conform",
            "errors": {"summary": f"not differentiable with respect to {name}, as {binding.framework} declares: {got}"},
        }
    value, got_dtype = got
    return {
        "expected": expected,
        "actual": {"value": encode_array(value), "dtype": got_dtype},
        "verdict": "error_mismatch",
        "errors": {"summary": f"a gradient with respect to {name}, where {binding.framework} declares none"},
    }


def _wrong_dtype(errors: dict, got: str, due: str) -> dict:
    return {
        **errors,
        "ok": False,
        "dtype": got,
        "summary": f"Returned {got} where {due} was due.\n" + errors["summary"],
    }


def begin(
    binding: Binding,
    spec: Spec,
    case: Case,
    dtype: str,
    *,
    mode: str = "eager",
    device: str = "cpu",
    held: str | None = None,
) -> tuple[dict, np.ndarray | None, dict] | None:
    """The record of a case before the framework is called: case, parameters, the oracle's
    expectation (value, or the error it documents), and the binding's effective parameters;
    None when the binding cannot take the case. ``held``: the dtype the framework holds the
    case's ``dtype`` arrays in, in this mode (``FrameworkAdapter.held_dtype``: float32 for float64
    in JAX without ``jax_enable_x64``); the binding computes from there."""
    params = binding.effective_params(spec, case.params)
    if params is None or (case.dtypes and dtype not in case.dtypes) or dtype not in binding.dtypes:
        return None
    result = binding.result_dtype(held or dtype)
    tol = tolerance(spec.name, result)
    record: dict[str, Any] = {
        "kind": "result",
        "spec": spec.name,
        "binding": binding.id,
        "framework": binding.framework,
        "dtype": dtype,
        "device": device,
        "mode": mode,
        "case_id": case.id,
        "origin": dict(case.origin),
        "params": scalar_params(params),
        "inputs": {k: encode_array(v) for k, v in case.in_dtype(dtype).items()},
        "tolerance": {"rtol": tol.rtol, "atol": tol.atol},
        "expected": None,
        "actual": None,
        "errors": None,
        "gradients": None,
        "known": None,
        "reproducer": None,
    }
    if result != dtype:
        record["computes_in"] = result
    start = time.perf_counter()
    try:
        expected = expect(spec, case, params, binding.conventions, result, given=dtype)
        record["expected"] = {"value": encode_array(expected)}
    except OracleError as exc:
        expected = None
        record["expected"] = {"error": exc.kind, "message": str(exc)}
    record["seconds"] = {"oracle": time.perf_counter() - start}
    return record, expected, params


def finish(record: dict, adapter, binding: Binding, case: Case, known=()) -> dict:
    """A finding gets its reproducer, and registered known deviations that explain each of its
    failing parts (``known.match``) turn it into ``known``."""
    if record["verdict"] != "conform":
        grads = "gradients" in record and record["gradients"] and record.get("value_verdict") == "conform"
        record["reproducer"] = adapter.reproducer(
            binding, case, record["dtype"], mode=record["mode"], wrt=tuple(record["gradients"]) if grads else ()
        )
        found = match(record, known) if known else None  # none given: never matched (``lost``)
        if found is not None and found.complete:  # every failing part explained, each by its most specific entry
            record["known"] = found.known(record["verdict"])
            record["verdict"] = "known"
        elif found is not None and found.entries:  # some parts explained, not all: the finding stands
            record["partly_known"] = found.partly()
    return record


def lost(
    adapter,
    binding: Binding,
    spec: Spec,
    case: Case,
    dtype: str,
    verdict_: str,
    message: str,
    seconds: float,
    *,
    mode: str = "eager",
    device: str = "cpu",
    known=(),
    rerun: dict | None = None,
    stderr: str = "",
) -> dict | None:
    """The record of a call that never returned: the process died (``crash``) or ran past its
    time limit (``timeout``). Everything but the outcome is as for any other case; the outcome
    keeps the last lines the process wrote to its stderr (``stderr``), where it wrote any.

    ``rerun``: what the unit gave when rerun alone in a fresh process (``sandbox.rerun``), with
    ``reproduced`` and the state of the process it first failed in (``before``). A crash or
    timeout that did not reproduce is ``unconfirmed``: a finding of its own kind, which no known
    deviation may explain (it says nothing certain about the binding), so it is never matched."""
    started = begin(binding, spec, case, dtype, mode=mode, device=device, held=adapter.held_dtype(dtype, mode))
    if started is None:
        return None
    record = started[0]
    record["actual"] = {"error": verdict_, "message": message} | ({"stderr": stderr} if stderr else {})
    record["seconds"]["call"] = seconds
    record["verdict"] = record["value_verdict"] = verdict_
    record["errors"] = {"summary": message}
    if rerun is not None:
        record["rerun"] = rerun
        if not rerun["reproduced"]:
            record["verdict"] = record["value_verdict"] = "unconfirmed"
            record["errors"] = {"summary": f"{verdict_}, not reproduced alone: {message}; {_rerun_text(rerun)}"}
            known = ()  # never matched: see above
    return finish(record, adapter, binding, case, known)


def _rerun_text(rerun: dict) -> str:
    """One line on the rerun of an unconfirmed crash and on the process it first failed in."""
    got, before = rerun["outcome"], rerun["before"]
    if got["verdict"] in ("conform", "deviate", "error_mismatch"):
        what = "raised " + got["actual"]["error"] if "error" in got["actual"] else "returned a value"
        what += f" ({got['verdict']})"
    else:
        what = f"gave {got['verdict']}: {got.get('message')}"
    return (
        f"rerun alone in a fresh process, it {what}. The process it first failed in had run "
        f"{before['cases']} units, compiled {before['compiled']} times, and used {before['rss_mib']:g} MiB."
    )


def verdict(expected, expected_rec, outcome, tol, dtype, *, model=None, stages=()) -> tuple[str, dict | None]:
    """The verdict on an outcome's value, and its error figures, given the oracle's value (or
    error) and the dtype the value is due in. ``model``: a callable giving the value's
    rounding-error bound (``rounding_scales``), for a binding that declares ``stages``; a value
    that misses the tolerance but is within that bound conforms, and ``errors["rounding"]``
    says so with its figures."""
    if expected is None:
        if outcome.error_type is None:
            return "error_mismatch", {"summary": f"expected {expected_rec['error']} to be raised; a value was returned"}
        if expected_rec["error"] in outcome.error_mro:
            return "conform", None
        return "error_mismatch", {"summary": f"expected {expected_rec['error']}, raised {outcome.error_type}"}
    if outcome.error_type is not None:
        return "error_mismatch", {"summary": f"expected a value; raised {outcome.error_type}: {outcome.error_message}"}
    comparison = compare(outcome.value, expected, tol, dtype)
    errors = comparison.as_dict()
    wrong = outcome.dtype != dtype
    if wrong:
        errors = _wrong_dtype(errors, outcome.dtype, dtype)
    if not comparison.ok and model is not None:  # are the numbers those of the declared computation?
        fit = _judged_by_model(errors, outcome.value, expected, model(), tol, dtype, stages)
        if fit is not None and not wrong:
            return "conform", errors
    if wrong:
        return "deviate", errors
    if not comparison.ok:
        narrower = next(
            (d for d in DTYPES[DTYPES.index(dtype) + 1 :] if compare(outcome.value, expected, TOLERANCES[d], d).ok),
            None,
        )
        if narrower:
            errors["precision"] = f"within {narrower}'s tolerance: consistent with computing in {narrower}"
    return ("conform" if comparison.ok else "deviate"), errors


def unsupported_record(binding: Binding, reason: str) -> dict:
    """The one line that stands for a binding whose framework cannot be imported."""
    return {
        "kind": "result",
        "spec": binding.spec,
        "binding": binding.id,
        "framework": binding.framework,
        "dtype": "-",
        "device": "-",
        "mode": "-",
        "case_id": "-",
        "origin": {"table": "none"},
        "params": {},
        "inputs": {},
        "tolerance": None,
        "expected": None,
        "actual": {"error": "unavailable", "message": reason},
        "errors": None,
        "gradients": None,
        "known": None,
        "reproducer": None,
        "seconds": None,
        "verdict": "unsupported",
    }
