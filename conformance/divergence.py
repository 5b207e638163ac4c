"""Divergences: two bindings of one spec that disagree on the same case, and why.

Two results are compared when they share spec, case, dtype, mode and device and computed
with the same parameters, except parameters one binding takes from its own defaults
(PyTorch's ``ignore_index=-100``). A divergence is *explained* when both bindings conform to
their own oracle (or to a registered known deviation), so that the difference is accounted
for by the settings in which they differ: ``conformance/attribution.py`` switches those from
A's value to B's and names the smallest set that turns A's expectation into B's, with each
one's share of the gap. Otherwise it is *unexplained*: one side departs from its own
documented behaviour, and that deviation is its own finding.

Every pair compared is counted, so the report can show which bindings agree with which.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Any

from lossparity.conformance.attribution import COMPUTE, DEFAULT, LOSS, attribute, knobs
from lossparity.conformance.compare import compare
from lossparity.conformance.known import known_ids
from lossparity.core.dtypes import DTYPES, tolerance
from lossparity.core.model import ARRAY_PARAMS, Binding, Case, Spec
from lossparity.core.records import decode_array, encode_array
from lossparity.core.verdicts import CONFORMING


def case_from_record(record: dict) -> Case:
    """Rebuild the (already dtype-rounded) case a result line was computed on."""
    inputs = {k: decode_array(v) for k, v in record["inputs"].items()}
    arrays = {k: v for k, v in inputs.items() if k not in ARRAY_PARAMS}
    params = {
        **{k: v for k, v in record["params"].items() if v is not None},
        **{k: v for k, v in inputs.items() if k in ARRAY_PARAMS},
    }
    return Case(record["spec"], record["case_id"], record["origin"], arrays, params)


def _outcome(value_record: Mapping | None):
    """('value', array) or ('error', kind) from an expected/actual record field."""
    if value_record is None:
        return None
    if "value" in value_record:
        return ("value", decode_array(value_record["value"]))
    return ("error", value_record["error"])


def _precision(ra: dict, rb: dict) -> str:
    """The dtype two results are compared in: the narrower of what each computed in (a Keras
    loss class computes float64 inputs in float32: two such results agree to float32's tolerance)."""
    return max(ra.get("computes_in", ra["dtype"]), rb.get("computes_in", rb["dtype"]), key=DTYPES.index)


def _same(x, y, tol, dtype) -> bool:
    if x is None or y is None or x[0] != y[0]:
        return False
    if x[0] == "error":
        return True
    return compare(x[1], y[1], tol, dtype).ok


def case_key(record: dict) -> tuple:
    """The results that can be compared with one another: one case of one spec in one dtype on
    one device (across bindings, in one mode; across modes, of one binding)."""
    return record["spec"], record["case_id"], record["dtype"], record["device"]


def comparable_result(record: dict) -> bool:
    return record.get("kind") == "result" and record["verdict"] != "unsupported" and bool(record.get("actual"))


def find_divergences(
    records: Iterable[dict], bindings: Mapping[str, Binding], specs: Mapping[str, Spec]
) -> tuple[list[dict], list[dict]]:
    """Every disagreeing pair of results on the same case, each with its explanation, and
    one ``agreement`` record per pair of bindings: how many cases they were compared on and
    how many of those they disagree on, explained and unexplained."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if comparable_result(r):
            groups.setdefault(case_key(r), []).append(r)
    return divergences_by_case(groups.values(), bindings, specs)


def divergences_by_case(
    groups: Iterable[list[dict]], bindings: Mapping[str, Binding], specs: Mapping[str, Spec]
) -> tuple[list[dict], list[dict]]:
    """``find_divergences`` over results already grouped by ``case_key`` (each group in run
    order), one group at a time: a caller may read the groups from a file one by one."""
    out, mode_out = [], []
    pairs: dict[tuple, dict[str, Any]] = {}
    mode_pairs: dict[tuple, dict[str, Any]] = {}
    for group in groups:
        by_mode: dict[str, list[dict]] = {}
        by_binding: dict[str, list[dict]] = {}
        for r in group:
            by_mode.setdefault(r["mode"], []).append(r)
            by_binding.setdefault(r["binding"], []).append(r)
        for results in by_mode.values():
            out += _binding_divergences(results, bindings, specs, pairs)
        for results in by_binding.values():
            mode_out += _mode_divergences(results, mode_pairs)
    return out + mode_out, list(pairs.values()) + list(mode_pairs.values())


def _binding_divergences(
    results: list[dict], bindings: Mapping[str, Binding], specs: Mapping[str, Spec], pairs: dict
) -> list[dict]:
    """The divergences between bindings among the results of one case in one mode."""
    out = []
    for ra, rb in combinations(sorted(results, key=lambda r: r["binding"]), 2):
        spec_name, dtype, mode, device = ra["spec"], ra["dtype"], ra["mode"], ra["device"]
        a, b = bindings.get(f"{spec_name}:{ra['binding']}"), bindings.get(f"{spec_name}:{rb['binding']}")
        if a is None or b is None or not _comparable(ra, rb, a, b):
            continue
        xa, xb = _outcome(ra["actual"]), _outcome(rb["actual"])
        if xa[0] == "value" and xb[0] == "value" and xa[1].shape != xb[1].shape:
            continue  # a different output structure (per-sample vs per-element) is not a number
        pair = pairs.setdefault(
            (spec_name, a.id, b.id),
            {
                "kind": "agreement",
                "spec": spec_name,
                "a": a.id,
                "b": b.id,
                "compared": 0,
                "explained": 0,
                "unexplained": 0,
            },
        )
        pair["compared"] += 1
        precision = _precision(ra, rb)
        tol = tolerance(spec_name, precision)
        if _same(xa, xb, tol, precision):
            continue
        divergence = _divergence(specs, specs[spec_name], a, b, ra, rb, xa, xb, dtype, mode, device, tol, precision)
        pair[divergence["status"]] += 1
        out.append(divergence)
    return out


def _parts(record: dict) -> list:
    """The value and each gradient of a result, as outcomes, in a fixed order."""
    grads = record.get("gradients") or {}
    return [_outcome(record["actual"])] + [_outcome(grads[k]["actual"]) for k in sorted(grads)]


def _mode_divergences(results: list[dict], pairs: dict) -> list[dict]:
    """One binding run in two execution modes (eager and jax.jit, tf.function, ...) on the
    same case (``results``): every disagreement of value or gradient is a divergence. The modes share the
    binding's documentation and so its oracle: a disagreement is explained only where a
    registered known deviation covers a side; otherwise one mode departs from it."""
    out = []
    if len(results) > 1:
        spec_name, case_id, dtype, device, binding = (
            results[0][k] for k in ("spec", "case_id", "dtype", "device", "binding")
        )
        for ra, rb in combinations(results, 2):  # in run order: eager first
            pair = pairs.setdefault(
                (spec_name, binding, ra["mode"], rb["mode"]),
                {
                    "kind": "agreement",
                    "spec": spec_name,
                    "a": f"{binding} [{ra['mode']}]",
                    "b": f"{binding} [{rb['mode']}]",
                    "compared": 0,
                    "explained": 0,
                    "unexplained": 0,
                },
            )
            pair["compared"] += 1
            precision = _precision(ra, rb)
            tol = tolerance(spec_name, precision)
            pa, pb = _parts(ra), _parts(rb)
            if len(pa) == len(pb) and all(
                (x is None and y is None) or _same(x, y, tol, precision) for x, y in zip(pa, pb)
            ):
                continue
            known = _known(ra, rb)
            rounding = ra["verdict"] == rb["verdict"] == "conform"
            status = "explained" if known or rounding else "unexplained"
            pair[status] += 1
            xa, xb = pa[0], pb[0]
            out.append(
                {
                    "kind": "divergence",
                    "spec": spec_name,
                    "case_id": case_id,
                    "dtype": dtype,
                    "mode": rb["mode"],
                    "device": device,
                    "a": {
                        "binding": binding,
                        "framework": ra["framework"],
                        "mode": ra["mode"],
                        "verdict": ra["verdict"],
                        "actual": _describe(xa),
                    },
                    "b": {
                        "binding": binding,
                        "framework": rb["framework"],
                        "mode": rb["mode"],
                        "verdict": rb["verdict"],
                        "actual": _describe(xb),
                    },
                    "comparison": (
                        compare(xa[1], xb[1], tol, precision).as_dict()
                        if xa[0] == xb[0] == "value" and xa[1].shape == xb[1].shape
                        else None
                    ),
                    "status": status,
                    "attribution": None,
                    "known": known,
                    **({"rounding": True} if rounding and not known else {}),
                    "reason": (
                        f"{binding} gives different results in {ra['mode']} and {rb['mode']} mode: "
                        + (
                            "explained by the known deviation(s) " + ", ".join(known)
                            if known
                            else rounding_reason(ra["mode"], rb["mode"], ra, rb)
                            if rounding
                            else "the same documented call, so one mode departs from it"
                        )
                    ),
                }
            )
    return out


def _comparable(ra, rb, a: Binding, b: Binding) -> bool:
    for k in set(ra["params"]) | set(rb["params"]):
        if ra["params"].get(k) != rb["params"].get(k) and k not in a.defaults and k not in b.defaults:
            return False
    return ra["inputs"] == rb["inputs"]


def _describe(x) -> Any:
    return {"error": x[1]} if x[0] == "error" else {"value": encode_array(x[1])}


def _divergence(specs, spec, a, b, ra, rb, xa, xb, dtype, mode, device, tol, precision) -> dict:
    record = {
        "kind": "divergence",
        "spec": spec.name,
        "case_id": ra["case_id"],
        "dtype": dtype,
        "mode": mode,
        "device": device,
        "a": {"binding": a.id, "framework": a.framework, "verdict": ra["verdict"], "actual": _describe(xa)},
        "b": {"binding": b.id, "framework": b.framework, "verdict": rb["verdict"], "actual": _describe(xb)},
        "comparison": (compare(xa[1], xb[1], tol, precision).as_dict() if xa[0] == xb[0] == "value" else None),
    }
    known = _known(ra, rb)
    if ra["verdict"] in CONFORMING and rb["verdict"] in CONFORMING:
        case = case_from_record(ra)
        attribution = attribute(
            knobs(spec, a, ra["params"], dtype=dtype),
            knobs(spec, b, rb["params"], dtype=dtype),
            specs,
            lambda _setting: case,
            dtype,
            ignore=("class_axis", "time_major"),
        )
        rounding = attribution["status"] == "same" and ra["verdict"] == rb["verdict"] == "conform"
        explained = attribution["status"] == "explained" or bool(known) or rounding
        record.update(
            status="explained" if explained else "unexplained",
            attribution=attribution,
            known=known,
            reason=rounding_reason(a.id, b.id, ra, rb) if rounding else reason(a.id, b.id, attribution, known),
        )
        if rounding:
            record["rounding"] = True
    else:
        deviating = [r for r in (ra, rb) if r["verdict"] not in CONFORMING]
        record.update(
            status="unexplained",
            attribution=None,
            known=known,
            reason=" and ".join(
                f"{r['binding']} departs from its own documented behaviour on this case (its result: {r['verdict']})"
                for r in deviating
            ),
        )
    return record


def _known(ra: dict, rb: dict) -> list[str]:
    """The known deviations that explain either side, each once (a side may need several: one
    per failing part)."""
    return list(dict.fromkeys(i for r in (ra, rb) for i in known_ids(r)))


def _roundings(record: Mapping) -> list[str]:
    """What a conforming result's parts say of their rounding model (``errors["rounding"]``)."""
    parts = [("value", record.get("errors"))] + [
        (f"d/d {k}", g.get("errors")) for k, g in sorted((record.get("gradients") or {}).items())
    ]
    return [f"{name} {e['rounding']['summary']}" for name, e in parts if isinstance(e, Mapping) and e.get("rounding")]


def rounding_reason(a_id: str, b_id: str, ra: Mapping, rb: Mapping) -> str:
    """Why two results that conform to the same prediction differ: each is within its own
    tolerance of it (or its rounding model's bound, ``runner.within_rounding``), and their
    difference is at most the sum of those two allowances: two roundings, not a departure."""
    models = [f"{side}: " + "; ".join(r) for side, r in ((a_id, _roundings(ra)), (b_id, _roundings(rb))) if r]
    return (
        "explained by rounding: both conform to the same prediction, each within its own allowance "
        "(tolerance or rounding model), and differ by no more than the two allowances"
        + (" (" + "; ".join(models) + ")" if models else "")
    )


def _knob_words(knob: Mapping, a_id: str, b_id: str) -> str:
    name, va, vb = knob["name"], knob["a"], knob["b"]
    if name == LOSS:
        return f"the loss itself: {a_id} computes {va}, {b_id} computes {vb}"
    if name == COMPUTE:
        return f"the compute dtype: {a_id} computes in {va}, {b_id} in {vb}"
    if name.startswith(DEFAULT):
        return f"{name.removeprefix(DEFAULT)}: {a_id} computes with {va!r}, {b_id} with {vb!r} (a default)"
    return f"{name}: {a_id} uses {va!r}, {b_id} uses {vb!r}"


def reason(a_id: str, b_id: str, attribution: Mapping, known=()) -> str:
    """One sentence: what explains the difference between A's and B's results. A side that is a
    known deviation does not return its expectation, so its entry comes first; the conventions
    that part the two expectations come after (Keras on torch returning a value for label -100,
    where Keras on TensorFlow raises, is torch's default ignore_index: the entry; the expectations
    differ in invalid_label)."""
    by = {d["name"]: d for d in attribution["differing"]}
    knobs_words = "; ".join(_knob_words(by[name], a_id, b_id) for name in attribution["conventions"])
    if known:
        said = "explained by the known deviation(s) " + ", ".join(known)
        if attribution["status"] == "explained":
            said += f" (a side departs from its documented result); their documented results differ by {knobs_words}"
        return said
    if attribution["status"] == "explained":
        return "explained by " + knobs_words
    if attribution["status"] == "same":
        return (
            "both bindings are predicted to agree here, yet their results differ beyond "
            "tolerance (within each one's own tolerance of the prediction)"
        )
    return (
        f"unexplained: switching every declared difference closes {attribution['closed']:.0%} "
        f"of the gap (a convention is missing from the bindings)"
    )
