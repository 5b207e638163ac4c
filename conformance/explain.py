"""``lossparity explain``: one case through one or two bindings, stage by stage, and why they differ.

The case is given as a user would pass it to the framework (its layout, its dtype). Each
binding reads it its own way: the spec it computes decides whether the numbers are
probabilities, logits or log-probabilities and whether the last axis holds classes; its
``class_axis`` convention decides which axis of a batched input that is. For each binding
this module calls the framework for real (and its gradient), computes the oracle under the
binding's conventions with a :class:`~lossparity.reference.trace.Trace`, and for a pair finds
the first stage at which the traces part and attributes the difference of the predictions
to the knobs in which the two settings differ (``conformance/attribution.py``).

The result is a plain dict that ``reports/explain_text.py`` prints and ``--json`` dumps;
its schema is ``$defs/explanation`` in ``lossparity/core/results.schema.json``.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossparity.adapters.base import py_literal
from lossparity.conformance import sandbox
from lossparity.conformance.attribution import LOSS, attribute, knobs
from lossparity.conformance.divergence import reason
from lossparity.conformance.known import KnownDeviation, load_known, match
from lossparity.conformance.registry import adapter_for, all_bindings
from lossparity.conformance.runner import expect, expect_gradients, gradient_verdicts, rounding_scales, verdict
from lossparity.conformance.specs import PARAMETERS, SPECS
from lossparity.core.dtypes import DTYPES, tolerance
from lossparity.core.model import ARRAY_PARAMS, Binding, Case, CaseError, Spec, canonical_layout, framework_layout
from lossparity.core.records import encode_array
from lossparity.core.verdicts import RANK
from lossparity.reference.errors import OracleError
from lossparity.reference.trace import Trace

#: The "framework" of a side that is a spec name: the oracle alone, no framework call.
ORACLE = "oracle"


class ExplainError(CaseError):
    """Bad input to ``explain``: one line naming what is wrong and what would be accepted."""


@dataclass
class Side:
    """One binding reading the user's case: the spec it computes and the canonical case."""

    binding: Binding
    spec: Spec
    case: Case
    params: dict  # the effective parameters, spec vocabulary
    axis: int  # the class axis in the user's layout (the last axis for specs without classes)


def explain(
    ids: list[str],
    raw: Mapping[str, np.ndarray],
    params: Mapping[str, Any],
    *,
    dtype: str = "float32",
    mode: str = "eager",
    grad: bool = False,
    known: list[KnownDeviation] | None = None,
) -> dict:
    """Run the bindings named by ``ids`` (one or two) on the case and explain the result;
    ``known``: the known deviations a finding is matched against (default: the suite's)."""
    if not 1 <= len(ids) <= 2:
        raise ExplainError(f"explain takes one or two bindings, got {len(ids)}")
    if dtype not in DTYPES:
        raise ExplainError(f"unknown dtype {dtype!r}; accepted: {', '.join(DTYPES)}")
    sides = [resolve(i, raw, params, dtype, mode) for i in ids]
    known = load_known() if known is None else known
    shown = [_show(s, dtype, grad, mode, known) for s in sides]
    out: dict[str, Any] = {
        "kind": "explanation",
        "dtype": dtype,
        "mode": mode,
        "device": "cpu",
        "case": {
            "arrays": {k: encode_array(v) for k, v in raw.items()},
            "params": {k: _jsonable(v) for k, v in params.items()},
        },
        "bindings": shown,
        "parting": None,
        "attribution": None,
        "summary": [],
    }
    if len(sides) == 2:
        a, b = sides
        out["parting"] = parting(shown[0]["stages"], shown[1]["stages"])
        out["attribution"] = attribute(
            _setting(a, b.spec, dtype),
            _setting(b, a.spec, dtype),
            SPECS,
            lambda setting: _case_for(setting, raw, params),
            dtype,
        )
    out["summary"] = _summary(sides, shown, out["parting"], out["attribution"], dtype)
    return out


# -- reading the case -----------------------------------------------------------------------


def _by_id() -> dict[str, list[Binding]]:
    out: dict[str, list[Binding]] = {}
    for b in all_bindings():
        out.setdefault(b.id, []).append(b)
    return out


def resolve(binding_id: str, raw: Mapping[str, np.ndarray], params: Mapping[str, Any], dtype: str, mode: str) -> Side:
    """The binding named ``binding_id`` and the spec it computes on this case (a binding id
    such as ``torch.nn.CrossEntropyLoss`` binds one spec per kind of target). A binding key
    ``SPEC:ID`` names the spec where the case alone cannot (a Keras loss class bound on
    probabilities and, with from_logits=True, on logits reads any numbers as probabilities)."""
    only, sep, rest = binding_id.partition(":")
    if sep and only in SPECS:
        if not any(b.spec == only for b in _by_id().get(rest, ())):
            raise ExplainError(f"{rest!r} has no binding of spec {only!r} ('lossparity list' shows them all)")
        binding_id = rest
    else:
        only = None
    if binding_id in SPECS:  # the oracle alone: a spec has every parameter and no convention
        spec = SPECS[binding_id]
        oracle = Binding(spec.name, spec.name, ORACLE, "", params={p: p for p in spec.defaults}, dtypes=tuple(DTYPES))
        return _side(oracle, spec, raw, params, dtype)
    candidates = [b for b in _by_id().get(binding_id, ()) if only in (None, b.spec)]
    if not candidates:
        close = difflib.get_close_matches(binding_id, list(_by_id()), n=3, cutoff=0.6)
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else "a binding id is a public dotted name such as torch.nn.BCELoss"
        )
        raise ExplainError(f"unknown binding {binding_id!r}; {hint} ('lossparity list' shows them all)")
    binding = candidates[0]
    adapter = adapter_for(binding.framework)
    why = adapter.unavailable()
    if why:
        raise ExplainError(f"{binding_id} needs {binding.framework}, which cannot be used here: {why}")
    if mode not in adapter.modes:
        raise ExplainError(
            f"mode {mode!r} is not available for {binding.framework}; accepted: {', '.join(adapter.modes)}"
        )
    if all(dtype not in b.dtypes for b in candidates):
        raise ExplainError(f"{binding_id} is bound in {', '.join(binding.dtypes)} only, not {dtype}")
    problems = []
    for binding in candidates:
        spec = SPECS[binding.spec]
        try:
            side = _side(binding, spec, raw, params, dtype)
        except CaseError as exc:
            problems.append((spec.name, str(exc)))
            continue
        return side
    if len(problems) == 1:
        raise ExplainError(f"{binding_id}: {problems[0][1]}")
    raise ExplainError(
        f"{binding_id} cannot read this case: " + "; ".join(f"as {name}, {why}" for name, why in problems)
    )


def _side(binding: Binding, spec: Spec, raw, params, dtype) -> Side:
    given = _params_for(binding, spec, params)
    class_axis = binding.conventions.get("class_axis", -1)
    case = build_case(spec, raw, given, class_axis)
    effective = binding.effective_params(spec, case.params)
    if effective is None:
        need = ", ".join(
            f"{k}={'<any value>' if not isinstance(v, (bool, int, float, str)) else v}"
            for k, v in binding.requires.items()
        )
        raise ExplainError(f"it takes only cases with {need} (add --param {need.replace(', ', ' --param ')})")
    if dtype not in binding.dtypes:
        raise ExplainError(f"it is bound in {', '.join(binding.dtypes)} only, not {dtype}")
    ndim = np.ndim(raw["input"])
    axis = 1 if class_axis == 1 and ndim >= 2 else max(ndim - 1, 0)
    return Side(binding, spec, case, effective, axis)


def _params_for(binding: Binding, spec: Spec, params: Mapping[str, Any]) -> dict:
    """The user's parameters in spec vocabulary, checked against what the binding takes."""
    out = {}
    takes = [p for p in binding.params if p in spec.defaults] + [p for p in binding.requires if p not in binding.params]
    for name, value in params.items():
        if name not in takes:
            accepted = ", ".join(takes) if takes else "no parameters"
            raise ExplainError(f"no parameter {name!r} here; it takes: {accepted}")
        reverse = {v: k for k, v in binding.values.get(name, {}).items()}
        if not isinstance(value, np.ndarray):
            value = reverse.get(value, value)
        out[name] = check_param(name, value)
    return out


def check_param(name: str, value):
    """A parameter value in the domain ``specs.PARAMETERS`` declares, or a CaseError saying what is."""
    domain = PARAMETERS[name]
    if domain is np.ndarray:
        if not isinstance(value, np.ndarray):
            value = np.asarray(value)
        if value.dtype.kind not in "iuf":
            raise CaseError(f"{name} must be an array of numbers, got {_shown(value)}")
        return value.astype(np.float64)
    if isinstance(domain, tuple):
        if isinstance(value, (np.ndarray, bool)) or value not in domain:
            raise CaseError(f"{name}={_shown(value)} is not accepted; accepted: {', '.join(map(str, domain))}")
        return value
    if domain is bool and isinstance(value, bool):
        return value
    if domain is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if name == "label_smoothing" and not 0.0 <= value <= 1.0:  # a share of the target's mass
            raise CaseError(f"label_smoothing must be between 0 and 1, got {_shown(value)}")
        return float(value)
    if domain is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if domain is tuple:  # axes: one integer or a list of them
        axes = value if isinstance(value, (list, tuple)) else [value]
        if all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
            return value if isinstance(value, int) else tuple(axes)
    kinds = {bool: "true or false", int: "an integer", float: "a number", tuple: "an axis or a list of axes"}
    raise CaseError(f"{name} must be {kinds[domain]}, got {_shown(value)}")


def _shown(value) -> str:
    """A value on one line, as the user could have typed it."""
    if isinstance(value, np.ndarray):
        return np.array2string(value, separator=", ", threshold=20).replace("\n", "")
    return repr(value)


def build_case(spec: Spec, raw: Mapping[str, np.ndarray], params: Mapping[str, Any], class_axis: int) -> Case:
    """The canonical case (class axis last) that a binding of ``spec`` with ``class_axis`` reads
    from arrays in its own layout; a CaseError says why the arrays do not fit."""
    x = np.asarray(raw["input"])
    if x.dtype.kind not in "iuf":
        raise CaseError(f"the input must hold numbers, got {x.dtype}")
    arrays = {"input": x.astype(np.float64)}
    if spec.target is None:
        if "target" in raw:
            raise CaseError(f"{spec.name} takes no --target (it is a function of the input alone)")
    else:
        if "target" not in raw:
            raise CaseError(f"{spec.name} needs a --target")
        t = np.asarray(raw["target"])
        if spec.target == "index":
            if t.dtype.kind == "f":
                if not np.all(np.isfinite(t)) or np.any(t != np.round(t)) or np.any(np.abs(t) >= 2**63):
                    raise CaseError("the target holds class indices, which must be integers (of 64 bits)")
            t = t.astype(np.int64)
        else:
            t = t.astype(np.float64)
        arrays["target"] = t
    if spec.classes and x.ndim == 0:
        raise CaseError(f"{spec.name} needs an input with a class axis; got a scalar")
    canonical = canonical_layout(arrays, class_axis)
    x = canonical["input"]
    if spec.classes and x.shape[-1] == 0:
        raise CaseError(
            f"{spec.name} needs at least one class; the input's class axis is empty (shape {np.shape(raw['input'])})"
        )
    if "target" in canonical:
        want = x.shape[:-1] if spec.target == "index" else x.shape
        if canonical["target"].shape != want:
            kind = "a class-index target" if spec.target == "index" else "the target"
            raise CaseError(
                f"{kind} must have shape {want} for an input of shape {np.shape(raw['input'])}; "
                f"got {canonical['target'].shape}"
            )
    for name in spec.arrays:  # the spec's further arrays (a variance, a second input, lengths)
        if name not in raw:
            raise CaseError(f"{spec.name} needs --array {name}=[...]")
        a = np.asarray(raw[name])
        if a.dtype.kind not in "iuf":
            raise CaseError(f"--array {name} must hold numbers, got {a.dtype}")
        canonical[name] = a.astype(np.int64 if a.dtype.kind in "iu" else np.float64)
    extra = sorted(set(raw) - {"input", "target", *spec.arrays})
    if extra:
        raise CaseError(
            f"{spec.name} takes no --array {extra[0]}; its arrays are input, target"
            + "".join(f", {n}" for n in spec.arrays)
        )
    for name in ARRAY_PARAMS:
        if name in params:
            w = params[name]
            if spec.classes and w.shape != x.shape[-1:]:
                raise CaseError(f"{name} holds one number per class: shape {x.shape[-1:]}, got {w.shape}")
            if not _broadcasts(w.shape, x.shape) or np.broadcast_shapes(w.shape, x.shape) != x.shape:
                raise CaseError(f"{name} of shape {w.shape} does not broadcast to the input's {x.shape}")
    return Case(spec.name, "explain", {"table": "command line"}, canonical, dict(params))


def _same_params(a: Mapping, b: Mapping) -> bool:
    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) or isinstance(b[k], np.ndarray) else a[k] == b[k]
        for k in a
    )


def _as_suite_case(binding: Binding, spec: Spec, case: Case) -> Case:
    """The case given on the command line, under the id of the suite's edge row with the same
    arrays that this binding computes with the same parameters (its own fixed ones included:
    a Keras function form always has reduction 'none'), so that a known deviation placed on
    that row matches here as in a run (``edge-saturated-gamma-zero``); else as given."""
    mine = binding.effective_params(spec, case.params)
    for edge in spec.edges:
        if not isinstance(edge, Case) or edge.arrays.keys() != case.arrays.keys():
            continue
        if not all(
            np.shape(edge.arrays[k]) == np.shape(case.arrays[k])
            and np.array_equal(edge.arrays[k], case.arrays[k], equal_nan=True)
            for k in case.arrays
        ):
            continue
        theirs = binding.effective_params(spec, edge.params)
        if mine is not None and theirs is not None and _same_params(mine, theirs):
            return dataclasses.replace(case, id=edge.id, origin=dict(edge.origin))
    return case


def _broadcasts(a: tuple, b: tuple) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def _case_for(setting: Mapping[str, Any], raw, params) -> Case:
    spec = SPECS[setting[LOSS]]
    given = {k: v for k, v in params.items() if k in spec.defaults}
    return build_case(
        spec, raw, {k: check_param(k, v) for k, v in given.items()}, 1 if setting.get("class_axis") == 1 else -1
    )


def _setting(side: Side, other: Spec, dtype: str) -> dict:
    setting = knobs(side.spec, side.binding, side.params, names=other.conventions, dtype=dtype)
    setting["class_axis"] = side.axis
    return setting


# -- running and tracing ---------------------------------------------------------------------


def _show(side: Side, dtype: str, grad: bool, mode: str, known: list[KnownDeviation]) -> dict:
    binding, spec = side.binding, side.spec
    case = _as_suite_case(binding, spec, side.case)
    trace = Trace()
    result_dtype = binding.result_dtype(dtype)
    try:
        expected = expect(spec, case, side.params, binding.conventions, result_dtype, trace=trace, given=dtype)
        expected_rec = {"value": encode_array(expected)}
    except OracleError as exc:
        expected, expected_rec = None, {"error": exc.kind, "message": str(exc)}
    if binding.framework == ORACLE:
        return _show_oracle(side, dtype, trace, expected_rec)
    adapter = adapter_for(binding.framework)
    wrt = ("input",) if grad else ()
    if adapter.process == "main":
        outcome = adapter.call(binding, case, dtype, mode=mode, wrt=wrt)
    else:  # a framework that must be imported alone (a Keras backend) is called in its own process
        outcome = sandbox.call(binding, case, dtype, mode=mode, wrt=wrt)
    if outcome.error_type is None:
        actual = {"value": encode_array(outcome.value), "dtype": outcome.dtype}
    else:
        actual = {"error": outcome.error_type, "message": outcome.error_message}
    result, errors = verdict(
        expected,
        expected_rec,
        outcome,
        tolerance(spec.name, result_dtype),
        result_dtype,
        model=(lambda: (rounding_scales(binding, spec, case, side.params, dtype) or {}).get("value"))
        if binding.stages
        else None,
        stages=binding.stages,
    )
    record = {
        "binding": binding.id,
        "spec": spec.name,
        "case_id": case.id,
        "dtype": dtype,
        "mode": mode,
        "verdict": result,
        "value_verdict": result,
        "expected": expected_rec,
        "actual": actual,
        "errors": errors,
        "computes_in": result_dtype,
    }
    if grad and expected is not None and outcome.grads:
        # the gradient is judged as a run judges it: against the oracle's, with the rounding model
        expected_grads = expect_gradients(spec, case, side.params, binding.conventions, result_dtype, given=dtype)
        model = (lambda: rounding_scales(binding, spec, case, side.params, dtype)) if binding.stages else None
        record["gradients"] = gradient_verdicts(
            binding, spec, dtype, {"input": outcome.grads["input"]}, expected_grads, model=model
        )
        record["verdict"] = result = max([result, record["gradients"]["input"]["verdict"]], key=RANK.__getitem__)
    found = match(record, known) if result != "conform" else None
    known_entry = found.entries[0] if found is not None and found.complete else None
    reading = trace.stages[0].note if trace.stages else ""
    if binding.conventions.get("class_axis") == 1 and np.ndim(case.arrays["input"]) >= 2:
        reading += f" (the classes on dim 1 of the tensor {binding.framework} is given)"
    gradient = None
    if grad:
        got = outcome.grads.get("input", "no value, so no gradient")
        if isinstance(got, tuple):
            # back into the layout the user gave
            g = framework_layout({"input": got[0]}, binding.conventions.get("class_axis", -1))["input"]
            gradient = {"value": encode_array(g)}
        else:
            gradient = {"error": got}
        judged = (record.get("gradients") or {}).get("input")
        if judged:  # the oracle's gradient and the verdict on the framework's (canonical layout)
            gradient.update(verdict=judged["verdict"], errors=judged.get("errors"), expected=judged["expected"])
    return {
        "binding": binding.id,
        "framework": binding.framework,
        "spec": spec.name,
        "summary": spec.summary,
        "reading": reading,
        "params": {k: _jsonable(v) for k, v in side.params.items() if not isinstance(v, np.ndarray)},
        "conventions": {k: _jsonable(v) for k, v in binding.conventions.items()},
        "expected": expected_rec,
        "actual": actual,
        "verdict": result,
        "value_verdict": record["value_verdict"],
        "errors": errors,
        "known": known_entry.as_dict() if known_entry else None,
        "known_ids": [k.id for k in found.entries] if found is not None and found.complete else [],
        "gradient": gradient,
        "stages": [{"name": s.name, "note": s.note, "value": encode_array(s.value)} for s in trace.stages],
        "reproducer": adapter.reproducer(binding, case, dtype, mode=mode, wrt=wrt),
    }


def _show_oracle(side: Side, dtype: str, trace: Trace, expected: dict) -> dict:
    """A spec explained alone: the oracle's stages, and a snippet that calls the oracle."""
    spec, case = side.spec, side.case
    arrays = case.in_dtype(dtype)
    args = ", ".join(
        [f"np.array({py_literal(arrays['input'])})"]
        + ([f"np.array({py_literal(arrays['target'])})"] if "target" in arrays else [])
        + [
            f"{k}=np.array({py_literal(arrays[k])})" if k in ARRAY_PARAMS else f"{k}={v!r}"
            for k, v in case.params.items()
        ]
    )
    snippet = (
        f"import numpy as np\nfrom {spec.oracle.__module__} import {spec.oracle.__name__}\n\n"
        f"print({spec.oracle.__name__}({args}, dtype=np.{dtype}))\n"
    )
    return {
        "binding": spec.name,
        "framework": ORACLE,
        "spec": spec.name,
        "summary": spec.summary,
        "reading": trace.stages[0].note if trace.stages else "",
        "params": {k: _jsonable(v) for k, v in side.params.items() if not isinstance(v, np.ndarray)},
        "conventions": {},
        "expected": expected,
        "actual": expected,
        "verdict": ORACLE,
        "errors": None,
        "known": None,
        "known_ids": [],
        "gradient": None,
        "stages": [{"name": s.name, "note": s.note, "value": encode_array(s.value)} for s in trace.stages],
        "reproducer": snippet,
    }


def parting(a: list[dict], b: list[dict]) -> dict | None:
    """The first stage at which two traces differ: in the step taken, how it is done, or its values."""
    for i in range(max(len(a), len(b))):
        if i >= len(a) or i >= len(b):
            longer, which = (a, "A") if i < len(a) else (b, "B")
            return {
                "index": i,
                "how": "step",
                "a": _stage_name(a, i),
                "b": _stage_name(b, i),
                "why": f"only {which} goes on, to '{longer[i]['name']}'",
            }
        x, y = a[i], b[i]
        if x["name"] != y["name"]:
            return {
                "index": i,
                "how": "step",
                "a": x["name"],
                "b": y["name"],
                "why": f"A's next step is '{x['name']}', B's is '{y['name']}'",
            }
        if x["note"] != y["note"]:
            why = (
                "they read the input differently"
                if x["name"] == "input"
                else f"both take the step '{x['name']}', but not the same way"
            )
            return {"index": i, "how": "reading", "a": x["name"], "b": y["name"], "why": why}
        if x["value"] != y["value"]:
            return {
                "index": i,
                "how": "values",
                "a": x["name"],
                "b": y["name"],
                "why": f"the step '{x['name']}' gives different values",
            }
    return None


def _stage_name(stages, i):
    return stages[i]["name"] if i < len(stages) else None


# -- the words -------------------------------------------------------------------------------


def _summary(
    sides: list[Side], shown: list[dict], part: dict | None, attribution: dict | None, dtype: str
) -> list[str]:
    if len(sides) == 1:
        return [f"{shown[0]['binding']} {shown[0]['reading']}.", *_departures(shown, pair=False)]
    (a, b), (sa, sb) = sides, shown
    lines = [f"{sa['binding']} {sa['reading']}, while {sb['binding']} {sb['reading']}."]
    if a.spec.name != b.spec.name:
        lines.append(
            f"They compute different losses: {a.spec.name} ({a.spec.summary}) and {b.spec.name} ({b.spec.summary})."
        )
    if part is not None:
        lines.append(
            f"The oracle's stages part at stage {part['index'] + 1} ({part['a'] or part['b']}): {part['why']}."
        )
    if attribution is not None:
        if attribution["status"] == "same":
            lines.append("Under their declared conventions both are predicted to give the same result here.")
        else:
            lines.append(
                "The difference of the predictions is " + reason(sa["binding"], sb["binding"], attribution) + "."
            )
    lines += _departures(shown, pair=True)
    if sa["actual"].get("value") and sb["actual"].get("value") and sa["actual"]["value"] == sb["actual"]["value"]:
        lines.append("Their values are identical.")
    return lines


def _departures(shown: list[dict], *, pair: bool) -> list[str]:
    """A sentence for each binding that departs from its own documentation here, with the
    registered known deviation that explains it, if one does (``pair``: two bindings compared)."""
    lines = []
    for s in shown:
        rounding = (s.get("errors") or {}).get("rounding") if s["verdict"] == "conform" else None
        if rounding:
            lines.append(
                f"{s['binding']} is off the exact loss by more than one rounding, but within the bound of "
                f"the computation it declares: {rounding['summary']}."
            )
        if s["verdict"] not in ("conform", ORACLE):
            lines.append(
                f"{s['binding']} does not do what its own documentation says on this case "
                f"({s['verdict']})"
                + (": that part of the difference is its own deviation, not a convention." if pair else ".")
                + _what_fails(s)
                + (
                    f" It is a registered known deviation, {s['known']['id']}: {s['known']['explanation']} "
                    f"({s['known']['link'] or s['known'].get('reproducer', '')})"
                    if s.get("known")
                    else ""
                )
            )
    return lines


def _what_fails(side: Mapping) -> str:
    """The first line of the error figures of what fails: the value, else the gradient."""
    g = side.get("gradient") or {}
    if side.get("value_verdict", side["verdict"]) == "conform" and g.get("verdict") not in (None, "conform"):
        summary = (g.get("errors") or {}).get("summary", "")
        return f" Its gradient does: {summary.splitlines()[0].rstrip('.')}." if summary else " Its gradient does."
    return f" {side['errors']['summary'].splitlines()[0].rstrip('.')}." if side.get("errors") else ""


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return encode_array(v)
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v
