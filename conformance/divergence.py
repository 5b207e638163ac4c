"""Divergences: two bindings of one spec that disagree on the same case, or two calls users treat
as equivalent that disagree on common ground (``conformance/pairs.py``), and why.

Two results are compared when they share spec, case, dtype, mode and device and computed
with the same parameters, except parameters one binding takes from its own defaults
(PyTorch's ``ignore_index=-100``); on common ground, the twin bindings of a pair of specs on
a case and the case derived from it. They are compared in a common form (as returned, or the
per-sample means where one is per element: ``pairs.common_form``), the value and each
gradient both have: two bindings that agree on the loss and take different slopes diverge.
A divergence is *explained* when both bindings conform to their own oracle (or to a registered
known deviation), so that the difference is accounted for by the settings in which they
differ: ``conformance/attribution.py`` switches those from A's value to B's and names the
smallest set that turns A's expectation into B's, with each one's share of the gap (each
differing part, value or gradient, attributed by the oracle's prediction of that part).
Otherwise it is *unexplained*: one side departs from its own documented behaviour, and that
deviation is its own finding.

Every pair compared is counted, so the report can show which bindings agree with which.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Any

import numpy as np

from lossparity.conformance.attribution import COMPUTE, DEFAULT, LOSS, attribute, knobs
from lossparity.conformance.compare import compare
from lossparity.conformance.known import known_ids
from lossparity.conformance.pairs import BY_NAME, SEP, common_form, describe_form, to_common
from lossparity.conformance.specs import SPECS
from lossparity.core.dtypes import DTYPES, tolerance
from lossparity.core.model import ARRAY_PARAMS, Binding, Case, Spec
from lossparity.core.records import decode_array, encode_array
from lossparity.core.verdicts import CONFORMING


def case_from_record(record: dict) -> Case:
    """Rebuild the (already dtype-rounded) case a result line was computed on."""
    inputs = {k: decode_array(v) for k, v in record["inputs"].items()}
    spec = SPECS.get(record["spec"])
    # a spec's own array of a parameter's name (ranking_softmax's where) is an array of the case
    param = {k for k in inputs if k in ARRAY_PARAMS and not (spec and k in spec.arrays)}
    arrays = {k: v for k, v in inputs.items() if k not in param}
    params = {
        **{k: v for k, v in record["params"].items() if v is not None},
        **{k: v for k, v in inputs.items() if k in param},
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
    if x[1].shape == y[1].shape and np.array_equal(x[1], y[1], equal_nan=True):
        return True  # most compared parts are identical: no comparison's figures needed
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
        attributions: dict = {}  # the oracle's predictions are the mode's: one attribution serves all
        for results in by_mode.values():
            out += _binding_divergences(results, bindings, specs, pairs, attributions)
        for results in by_binding.values():
            mode_out += _mode_divergences(results, mode_pairs)
    return out + mode_out, list(pairs.values()) + list(mode_pairs.values())


def _binding_divergences(
    results: list[dict], bindings: Mapping[str, Binding], specs: Mapping[str, Spec], pairs: dict, attributions: dict
) -> list[dict]:
    """The divergences between bindings among the results of one case in one mode
    (``attributions``: those of the case's other modes, by pair of bindings and part)."""
    out = []
    for ra, rb in combinations(sorted(results, key=lambda r: r["binding"]), 2):
        spec_name = ra["spec"]
        a, b = bindings.get(f"{spec_name}:{ra['binding']}"), bindings.get(f"{spec_name}:{rb['binding']}")
        if a is None or b is None or not _comparable(ra, rb, a, b):
            continue
        tally = {"kind": "agreement", "spec": spec_name, "a": a.id, "b": b.id}
        found = _compare(specs, a, b, ra, rb, pairs, (spec_name, a.id, b.id), tally, attributions, grads=None)
        if found is not None:
            out.append(found)
    return out


def divergences_on_common_ground(
    groups: Iterable[tuple[tuple, list[dict]]], bindings: Mapping[str, Binding], specs: Mapping[str, Spec]
) -> tuple[list[dict], list[dict]]:
    """The divergences between the twin bindings of each pair of specs (``pairs.PAIRS``) over
    results grouped by ``pairs.ground_keys`` (``(key, results)``: A's case and the case derived
    from it, in one dtype and device), mode by mode, each compared in their common form; and one ``agreement``
    record per twin pair, its ``spec`` the pair's caption and its sides named by how they read
    the input (``torch.nn.BCELoss [on sigmoid(z)]``)."""
    out: list[dict] = []
    tallies: dict[tuple, dict[str, Any]] = {}
    for key, group in groups:
        pair, attributions = BY_NAME[key[0]], {}
        side_a = {(r["binding"], r["mode"]): r for r in group if r["spec"] == pair.a and SEP not in r["case_id"]}
        side_b = {
            (r["binding"], r["mode"]): r for r in group if r["spec"] == pair.b and r["case_id"].endswith(SEP + pair.tag)
        }
        modes = dict.fromkeys(r["mode"] for r in group)
        for (a_id, b_id), mode in ((twins, mode) for twins in pair.bindings for mode in modes):
            ra, rb = side_a.get((a_id, mode)), side_b.get((b_id, mode))
            a, b = bindings.get(f"{pair.a}:{a_id}"), bindings.get(f"{pair.b}:{b_id}")
            if (
                ra is None
                or rb is None
                or a is None
                or b is None
                or not _comparable(ra, rb, a, b, (specs[pair.a], specs[pair.b]))
            ):
                continue
            tally = {
                "kind": "agreement",
                "spec": pair.label(),
                "a": f"{a_id} [{pair.sides[0]}]",
                "b": f"{b_id} [{pair.sides[1]}]",
            }
            found = _compare(
                specs, a, b, ra, rb, tallies, (pair.name, a_id, b_id), tally, attributions, grads=pair.grads, pair=pair
            )
            if found is not None:
                out.append(found)
    return out, list(tallies.values())


def _compare(
    specs,
    a: Binding,
    b: Binding,
    ra,
    rb,
    tallies: dict,
    key: tuple,
    tally: dict,
    attributions: dict,
    *,
    grads,
    pair=None,
):
    """Compare two results in their common form (``pairs.common_form``), value and gradients
    (those named in ``grads``; None: every one both have), counting the pair in ``tallies``;
    the divergence, or None where they agree or cannot be brought to one form."""
    xa, xb = _outcome(ra["actual"]), _outcome(rb["actual"])
    form, shape = ("as returned", None), None
    if xa[0] == "value" and xb[0] == "value":
        form = common_form(xa[1].shape, xb[1].shape)
        if form is None:
            return None  # no common form (a different output structure) is not a number
        if form[1] is not None:
            shape = xb[1].shape if form[1] == "a" else xa[1].shape
    pair_tally = tallies.setdefault(key, {**tally, "compared": 0, "explained": 0, "unexplained": 0})
    pair_tally["compared"] += 1
    precision = _precision(ra, rb)
    tol = tolerance(rb["spec"], precision)
    parts = _common_parts(ra, rb, xa, xb, shape, grads)
    differing = [(name, pa, pb) for name, pa, pb in parts if not _same(pa, pb, tol, precision)]
    if not differing:
        return None
    divergence = _divergence(specs, a, b, ra, rb, differing, form, shape, tol, precision, pair, attributions)
    pair_tally[divergence["status"]] += 1
    return divergence


def _common_parts(ra, rb, xa, xb, shape, grads) -> list[tuple[str, Any, Any]]:
    """(part, A's outcome, B's outcome) in the common form of ``shape`` (None: as returned):
    the value, then each gradient both results have (of those named in ``grads``)."""

    def bring(x, value):
        if shape is None or x is None or x[0] != "value":
            return x
        of = None if value is None else value[1].shape
        return ("value", to_common(x[1], shape, of))

    out = [("value", bring(xa, None), bring(xb, None))]
    ga, gb = ra.get("gradients") or {}, rb.get("gradients") or {}
    for name in sorted(set(ga) & set(gb)):
        if grads is None or name in grads:
            ya, yb = _outcome(ga[name]["actual"]), _outcome(gb[name]["actual"])
            out.append((f"d/d {name}", bring(ya, xa), bring(yb, xb)))
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


def _comparable(ra, rb, a: Binding, b: Binding, ground: tuple[Spec, Spec] | None = None) -> bool:
    """Computed with the same parameters (but those one binding takes from its own defaults),
    on the same arrays: all of them, or on common ground (``ground``: the two specs) all but the
    input, which the pair's transform relates; there a parameter only one spec has must be at
    its default (``label_smoothing=0.0`` of cross-entropy against NLL, which has none)."""
    for k in set(ra["params"]) | set(rb["params"]):
        if ground and (k in ra["params"]) != (k in rb["params"]):
            spec, record = (ground[0], ra) if k in ra["params"] else (ground[1], rb)
            if record["params"][k] != spec.defaults.get(k):
                return False
            continue
        if ra["params"].get(k) != rb["params"].get(k) and k not in a.defaults and k not in b.defaults:
            return False
    if ground:
        return {k: v for k, v in ra["inputs"].items() if k != "input"} == {
            k: v for k, v in rb["inputs"].items() if k != "input"
        }
    return ra["inputs"] == rb["inputs"]


def _describe(x) -> Any:
    return {"error": x[1]} if x[0] == "error" else {"value": encode_array(x[1])}


def _side(binding: Binding, record: dict, x) -> dict:
    return {
        "binding": binding.id,
        "framework": binding.framework,
        "verdict": record["verdict"],
        "actual": _describe(x),
    }


def _divergence(specs, a, b, ra, rb, differing, form, shape, tol, precision, pair=None, attributions=None) -> dict:
    """The divergence record of two results whose ``differing`` parts ((part, A's, B's outcome)
    in the common ``form``) disagree: each part attributed (the value, or the gradient, as the
    oracle predicts it under each setting), the record explained when every part is (or a
    known deviation covers a side)."""
    spec_a, spec_b = specs[ra["spec"]], specs[rb["spec"]]
    part, xa, xb = differing[0]
    record = {
        "kind": "divergence",
        "spec": spec_a.name if pair is None else pair.label(),
        "case_id": ra["case_id"],
        "dtype": ra["dtype"],
        "mode": ra["mode"],
        "device": ra["device"],
        "a": {**_side(a, ra, xa), **({"spec": spec_a.name, "case_id": ra["case_id"]} if pair else {})},
        "b": {**_side(b, rb, xb), **({"spec": spec_b.name, "case_id": rb["case_id"]} if pair else {})},
        "comparison": (
            compare(xa[1], xb[1], tol, precision).as_dict()
            if xa is not None and xb is not None and xa[0] == xb[0] == "value" and xa[1].shape == xb[1].shape
            else None
        ),
        "part": part,
    }
    if pair is not None:
        record["pair"] = pair.name
    if form != ("as returned", None) or pair is not None:
        record["form"] = describe_form(form, a.id, b.id, pair)
    known = _known(ra, rb)
    if ra["verdict"] in CONFORMING and rb["verdict"] in CONFORMING:
        case_a, case_b = case_from_record(ra), case_from_record(rb)
        dtype = ra["dtype"]
        names_a, names_b = (spec_b.conventions, spec_a.conventions) if pair else ((), ())
        parts = []
        attributions = {} if attributions is None else attributions
        for name, _, _ in differing:
            at_key = (a.key, b.key, name, shape)  # the same case in another mode: the same predictions
            if at_key not in attributions:
                attributions[at_key] = attribute(
                    knobs(spec_a, a, ra["params"], names_a, dtype=dtype),
                    knobs(spec_b, b, rb["params"], names_b, dtype=dtype),
                    specs,
                    lambda setting: case_b if setting[LOSS] == spec_b.name and pair else case_a,
                    dtype,
                    ignore=("class_axis", "time_major"),
                    part=None if name == "value" else name.removeprefix("d/d "),
                    shape=shape,
                    shares=name == "value",  # a run has many gradient divergences: their shares are left out
                )
            attribution = attributions[at_key]
            rounding = attribution["status"] == "same" and ra["verdict"] == rb["verdict"] == "conform"
            parts.append((name, attribution, rounding))
        explained = all(at["status"] == "explained" or rounding for _, at, rounding in parts) or bool(known)
        rounding = all(r for _, _, r in parts)
        said: dict[str, list[str]] = {}  # one sentence per cause, naming the parts it explains
        for name, attribution, r in parts:
            text = rounding_reason(a.id, b.id, ra, rb) if r else reason(a.id, b.id, attribution, known)
            said.setdefault(text, []).append(name)
        words = [text if names == ["value"] else f"{' and '.join(names)}: {text}" for text, names in said.items()]
        record.update(
            status="explained" if explained else "unexplained",
            attribution=parts[0][1],
            known=known,
            reason="; ".join(words),
        )
        if len(parts) > 1:
            record["parts"] = [
                {"part": name, "attribution": at, **({"rounding": True} if r else {})} for name, at, r in parts
            ]
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
    for other in attribution.get("alternatives", ()):
        knobs_words += " (or, as well, by " + "; ".join(_knob_words(by[n], a_id, b_id) for n in other) + ")"
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
