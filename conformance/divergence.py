"""Divergences: two bindings of one spec that disagree on the same case, and why.

Two results are compared when they share spec, case, dtype, mode and device and computed
with the same parameters, except parameters one binding takes from its own defaults
(PyTorch's ``ignore_index=-100``). A divergence is *explained* when both bindings conform to
their own oracle, so the difference is accounted for by the declared conventions (and
defaults) in which they differ; attribution switches those from A's setting to B's, singly
and then in combination, and reports the smallest set that turns A's expectation into B's.
Otherwise it is *unexplained* (one side deviates; that deviation is its own finding).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any, Iterable, Mapping

import numpy as np

from lossparity.conformance.compare import compare
from lossparity.conformance.model import ARRAY_PARAMS, Binding, Case, Spec
from lossparity.conformance.runner import expect
from lossparity.conformance.tolerances import tolerance
from lossparity.reference.conventions import CONVENTIONS
from lossparity.reference.errors import OracleError
from lossparity.reports.records import decode_array, encode_array

MAX_COMBINATION = 3


def case_from_record(record: dict) -> Case:
    """Rebuild the (already dtype-rounded) case a result line was computed on."""
    inputs = {k: decode_array(v) for k, v in record["inputs"].items()}
    arrays = {k: v for k, v in inputs.items() if k not in ARRAY_PARAMS}
    params = {**{k: v for k, v in record["params"].items() if v is not None},
              **{k: v for k, v in inputs.items() if k in ARRAY_PARAMS}}
    return Case(record["spec"], record["case_id"], record["origin"], arrays, params)


def _outcome(value_record: Mapping | None):
    """('value', array) or ('error', kind) from an expected/actual record field."""
    if value_record is None:
        return None
    if "value" in value_record:
        return ("value", decode_array(value_record["value"]))
    return ("error", value_record["error"])


def _same(x, y, tol, dtype) -> bool:
    if x is None or y is None:
        return False
    if x[0] != y[0]:
        return False
    if x[0] == "error":
        return True
    return compare(x[1], y[1], tol, dtype).ok


def _knobs(spec: Spec, binding: Binding) -> dict[str, Any]:
    knobs = {n: binding.conventions.get(n, CONVENTIONS[n].plain) for n in spec.conventions}
    knobs.update({f"default {p}": v for p, v in binding.defaults.items()})
    return knobs


def _oracle(spec, case, params, knobs, dtype):
    params = dict(params)
    params.update({k.removeprefix("default "): v for k, v in knobs.items() if k.startswith("default ")})
    conventions = {k: v for k, v in knobs.items() if not k.startswith("default ")}
    try:
        return ("value", expect(spec, case, params, conventions, dtype))
    except OracleError as exc:
        return ("error", exc.kind)


def attribute(spec: Spec, a: Binding, b: Binding, case: Case, params: Mapping, dtype: str) -> dict:
    """Which of the knobs in which A and B differ turn A's expectation into B's."""
    tol = tolerance(spec.name, dtype)
    ka, kb = _knobs(spec, a), _knobs(spec, b)
    for k in set(ka) | set(kb):
        ka.setdefault(k, None if k.startswith("default ") else CONVENTIONS[k].plain)
        kb.setdefault(k, None if k.startswith("default ") else CONVENTIONS[k].plain)
    differing = sorted(k for k in ka if ka[k] != kb[k] and k != "class_axis")
    target = _oracle(spec, case, params, kb, dtype)
    singles, found = [], None
    for size in range(1, min(len(differing), MAX_COMBINATION) + 1):
        for combo in combinations(differing, size):
            switched = _oracle(spec, case, params, {**ka, **{k: kb[k] for k in combo}}, dtype)
            closes = _same(switched, target, tol, dtype)
            if size == 1:
                singles.append({"switch": list(combo), "closes": closes})
            if closes and found is None:
                found = list(combo)
        if found is not None:
            break
    if found is None and len(differing) > MAX_COMBINATION:
        if _same(_oracle(spec, case, params, kb, dtype), target, tol, dtype):
            found = differing
    return {
        "differing": [{"name": k, "a": _plain(ka[k]), "b": _plain(kb[k])} for k in differing],
        "singles": singles,
        "conventions": found or [],
    }


def _plain(v):
    return v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)


def find_divergences(records: Iterable[dict], bindings: Mapping[str, Binding],
                     specs: Mapping[str, Spec]) -> list[dict]:
    """Every disagreeing pair of results on the same case, each with its explanation."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if r.get("kind") == "result" and r["verdict"] not in ("unsupported",) and r.get("actual"):
            groups.setdefault((r["spec"], r["case_id"], r["dtype"], r["mode"], r["device"]), []).append(r)
    out = []
    for (spec_name, case_id, dtype, mode, device), results in groups.items():
        spec = specs[spec_name]
        tol = tolerance(spec_name, dtype)
        for ra, rb in combinations(sorted(results, key=lambda r: r["binding"]), 2):
            a, b = bindings.get(f"{spec_name}:{ra['binding']}"), bindings.get(f"{spec_name}:{rb['binding']}")
            if a is None or b is None or not _comparable(ra, rb, a, b):
                continue
            xa, xb = _outcome(ra["actual"]), _outcome(rb["actual"])
            if xa[0] == "value" and xb[0] == "value" and xa[1].shape != xb[1].shape:
                continue  # a different output structure (per-sample vs per-element) is not a number
            if _same(xa, xb, tol, dtype):
                continue
            out.append(_divergence(spec, a, b, ra, rb, xa, xb, dtype, mode, device, tol))
    return out


def _comparable(ra, rb, a: Binding, b: Binding) -> bool:
    for k in set(ra["params"]) | set(rb["params"]):
        if ra["params"].get(k) != rb["params"].get(k) and k not in a.defaults and k not in b.defaults:
            return False
    return ra["inputs"] == rb["inputs"]


def _describe(x) -> Any:
    return {"error": x[1]} if x[0] == "error" else {"value": encode_array(x[1])}


def _divergence(spec, a, b, ra, rb, xa, xb, dtype, mode, device, tol) -> dict:
    record = {
        "kind": "divergence", "spec": spec.name, "case_id": ra["case_id"], "dtype": dtype,
        "mode": mode, "device": device,
        "a": {"binding": a.id, "framework": a.framework, "verdict": ra["verdict"], "actual": _describe(xa)},
        "b": {"binding": b.id, "framework": b.framework, "verdict": rb["verdict"], "actual": _describe(xb)},
        "comparison": (compare(xa[1], xb[1], tol, dtype).as_dict()
                       if xa[0] == xb[0] == "value" else None),
    }
    conforming = {"conform", "known"}
    if ra["verdict"] in conforming and rb["verdict"] in conforming:
        case = case_from_record(ra)
        attribution = attribute(spec, a, b, case, ra["params"], dtype)
        known = [r["known"]["id"] for r in (ra, rb) if r.get("known")]
        explained = bool(attribution["conventions"]) or bool(known)
        record.update(status="explained" if explained else "unexplained", attribution=attribution,
                      known=known, reason=_reason(a, b, attribution, known))
    else:
        deviating = [r["binding"] for r in (ra, rb) if r["verdict"] not in conforming]
        record.update(status="unexplained", attribution=None, known=[],
                      reason=f"{' and '.join(deviating)} departs from its own documented behaviour "
                             f"on this case (see its {ra['verdict'] if ra['binding'] in deviating else rb['verdict']} result)")
    return record


def _reason(a, b, attribution, known) -> str:
    if attribution["conventions"]:
        parts = []
        for item in attribution["differing"]:
            if item["name"] in attribution["conventions"]:
                parts.append(f"{item['name']}: {a.id} uses {item['a']!r}, {b.id} uses {item['b']!r}")
        return "explained by " + "; ".join(parts)
    if known:
        return "explained by the known deviation(s) " + ", ".join(known)
    return ("both conform to their oracles, yet no declared convention accounts for the "
            "difference (a convention is missing from the bindings)")
