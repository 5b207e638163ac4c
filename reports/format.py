"""Records as a reader sees them: exact arrays and numbers, outcomes, error figures, findings.

Pure functions of the records of a results file (``lossparity/core/records.py``), shared by
the report (``reports/report.py``), the regression page (``reports/regression.py``) and the
terminal form of an explanation (``reports/explain_text.py``). Nothing here renders a page:
the dicts and strings it returns are what the templates show, and every string from a
record is left as text for Jinja2's autoescape (``breakable`` escapes its own).
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup, escape

from lossparity.core.verdicts import VERDICTS

#: What a result's gradients are taken with respect to, in the order columns show them.
GRADIENTS = ("input", "target")
#: Where a finding lies (the "finding in" filter).
PARTS = ("value", "gradient")
#: Arrays larger than this print their first and last EDGE_ITEMS elements per axis only.
MAX_ELEMENTS = 200
EDGE_ITEMS = 3


def rank(value: str, order: tuple[str, ...]) -> tuple[int, str]:
    """Sort key: the values of ``order`` in that order, then the others by name."""
    return (order.index(value) if value in order else len(order), value)


# -- a result's parts ------------------------------------------------------------------------


def value_verdict(r: Mapping) -> str:
    """The verdict of the value alone; older results files have none: then the verdict's."""
    return str(r.get("value_verdict", r.get("verdict", "?")))


def gradients(r: Mapping) -> list[tuple[str, Mapping]]:
    """A result's gradients, (what was differentiated, its record), input first."""
    g = r.get("gradients")
    if type(g) is not dict and not isinstance(g, Mapping):  # a dict first: an ABC test is slow
        return []
    found = [(k if type(k) is str else str(k), v) for k, v in g.items() if type(v) is dict or isinstance(v, Mapping)]
    if len(found) > 1:
        found.sort(key=lambda kv: rank(kv[0], GRADIENTS))
    return found


def finding_in(r: Mapping) -> list[str]:
    """Where a finding lies: in its value, its gradients, or both (the value where neither says)."""
    bad = {"value": value_verdict(r) != "conform", "gradient": any(_wrong(g) for _, g in gradients(r))}
    return [p for p in PARTS if bad[p]] or ["value"]


def _wrong(gradient: Mapping) -> bool:
    """Whether a gradient was compared and does not conform."""
    return gradient.get("verdict") not in (None, "conform")


def message(actual: Any) -> str:
    """The message of an outcome that is an error ("" for a value)."""
    if isinstance(actual, Mapping):
        msg = actual.get("message") or actual.get("error") or ""
        return str(msg)
    return ""


# -- names and counts ------------------------------------------------------------------------


def breakable(name: str) -> Markup:
    """A binding id that may wrap after each dot or underscore (escaped here, so safe to mark up)."""
    return Markup("").join(
        escape(part) + (Markup("<wbr>") if part[-1:] in "._" else "") for part in re.split(r"(?<=[._])", name)
    )


def badges(counter: Mapping[str, int]) -> list[tuple[str, int]]:
    """(verdict, count) of the non-zero counts: the known verdicts in their order, then the others."""
    known = [(v, counter[v]) for v in VERDICTS if counter.get(v)]
    return known + [(v, n) for v, n in sorted(counter.items()) if v not in VERDICTS and n]


# -- the run's metadata ----------------------------------------------------------------------

_META_FIELDS = (  # (label, keys it may be stored under)
    ("python", ("python",)),
    ("platform", ("platform",)),
    ("cpu", ("cpu",)),
    ("device", ("device", "devices")),
    ("seed", ("seed",)),
    ("examples", ("examples", "max_examples")),
    ("started", ("started", "start", "started_at", "start_time")),
    ("finished", ("finished", "finish", "finished_at", "finish_time")),
)
_META_SKIP = {"kind", "versions", "command", "argv", "command_line", "schema", "schema_version"}


def meta_rows(meta: Mapping) -> list[tuple[str, str]]:
    """(label, text) of a meta record's fields: the usual ones first, under one label each."""
    rows, used = [], set()
    for label, keys in _META_FIELDS:
        for k in keys:
            if k in meta:
                rows.append((label, _text(meta[k])))
                used.add(k)
                break
    rows += [(k, _text(v)) for k, v in meta.items() if k not in used and k not in _META_SKIP]
    return [(k, v) for k, v in rows if v not in ("", "null")]


def versions(meta: Mapping) -> list[tuple[str, str]]:
    """(package, version) of a meta record."""
    v = meta.get("versions") or meta.get("frameworks") or {}
    if isinstance(v, Mapping):
        return [(str(k), _text(x)) for k, x in v.items()]
    return [("versions", _text(v))]


def command(meta: Mapping) -> str | None:
    """The command line a meta record says the run was started with, if it says one."""
    for k in ("command", "command_line", "argv"):
        if k in meta:
            v = meta[k]
            if isinstance(v, (list, tuple)):
                return shlex.join(str(x) for x in v)
            return str(v)
    return None


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return repr(v)
    return json.dumps(v, ensure_ascii=False, default=str)


# -- findings and divergences ----------------------------------------------------------------


def _origin(origin: Any) -> str:
    if not isinstance(origin, Mapping):
        return _text(origin)
    if origin.get("table") is not None or "why" in origin:
        row = origin.get("row", "?")
        return f"{origin.get('table', 'edge')} table, row {row}: {origin.get('why', '')}".rstrip(": ")
    if "generator" in origin or "seed" in origin:
        parts = [f"{origin.get('generator', 'generator')}"]
        parts += [f"{k} {_text(origin[k])}" for k in ("seed", "index") if k in origin]
        rest = [f"{k}={_text(v)}" for k, v in origin.items() if k not in ("generator", "seed", "index")]
        return ", ".join(parts + rest)
    return ", ".join(f"{k}={_text(v)}" for k, v in origin.items())


def _params(params: Any) -> list[tuple[str, str]]:
    if not isinstance(params, Mapping):
        return []
    return [(str(k), _value_text(v)) for k, v in params.items()]


def _value_text(v: Any) -> str:
    """A parameter as Python source would spell it (the reproducers are Python)."""
    if _is_array(v):
        return format_array(v)
    if v is None or isinstance(v, (bool, int, float, str)):
        return repr(v)
    return _text(v)


def _is_array(v: Any) -> bool:
    return isinstance(v, Mapping) and "data" in v and "shape" in v


def _outcome(o: Any) -> dict | None:
    """An expected/actual field as {'value', 'shape', 'dtype'} or {'error', 'message'}."""
    if not isinstance(o, Mapping):
        return None
    if "value" in o:
        v = o["value"]
        if _is_array(v):
            dtype = o.get("dtype") or ("int64" if v.get("dtype") == "int64" else None)
            return {"value": format_array(v), "shape": _shape(v), "dtype": dtype, "short": _short(v)}
        return {"value": _text(v), "shape": "", "dtype": o.get("dtype"), "short": _text(v)[:60]}
    classes = o.get("classes") or []
    return {
        "error": str(o.get("error", "?")),
        "message": str(o.get("message") or ""),
        "classes": " < ".join(map(str, classes)) if len(classes) > 1 else "",
        "stderr": str(o.get("stderr") or ""),
        "short": str(o.get("error", "?")),
    }


def _short(v: Mapping) -> str:
    """A one-line glimpse of a value for a summary line: small arrays whole, others elided."""
    if len(v.get("data") or []) <= 4:
        return format_array(v).replace("\n", "")
    return f"array{_shape(v)}"


def _shape(v: Mapping) -> str:
    shape = v.get("shape") or []
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _errors(e: Any) -> dict | None:
    if not isinstance(e, Mapping):
        return None
    figures = []
    if e.get("mismatched") is not None and e.get("total") is not None:
        figures.append(("mismatched", f"{e['mismatched']} / {e['total']}"))
    for k in ("max_abs", "max_rel", "max_ulp"):
        if e.get(k) is not None:
            figures.append((k, format_scalar(e[k])))
    if e.get("index"):
        figures.append(("at index", _text(e["index"])))
    return {"summary": str(e.get("summary") or ""), "figures": figures}


def format_known(k: Any) -> dict | None:
    """A known-deviation entry (of a result, or a stale one of the summary); its link an
    ``href`` only if it is a plain web link. A result's ``known`` may name several entries,
    one per failing part (``entries``, ``parts``): ``also`` holds the others, ``parts`` which
    entry explains which part."""
    if not isinstance(k, Mapping):
        return None
    link = str(k.get("link") or "")
    entries = k.get("entries") if isinstance(k.get("entries"), list) else []
    parts = k.get("parts") if isinstance(k.get("parts"), Mapping) else {}
    return {
        "id": str(k.get("id", "?")),
        "explanation": str(k.get("explanation") or ""),
        "link": link,
        "href": link if _safe_link(link) else None,
        "reproducer": str(k.get("reproducer") or ""),
        "symptom": str(k.get("symptom") or ""),
        "verdict": k.get("verdict"),
        "also": [f for f in map(format_known, entries[1:]) if f],
        "parts": [(str(p), str(i)) for p, i in parts.items()] if len(parts) > 1 else [],
    }


def format_known_entry(e: Any) -> dict | None:
    """One row of the summary's table of known deviations: id, symptom, standing, counts."""
    if not isinstance(e, Mapping):
        return None
    return {
        "id": str(e.get("id", "?")),
        "symptom": str(e.get("symptom") or ""),
        "status": str(e.get("status") or "?"),
        "results": _count(e.get("results")),
        "partly": _count(e.get("partly")),
        "divergences": _count(e.get("divergences")),
    }


def _count(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _safe_link(link: str) -> bool:
    """Only plain web links become <a href>: never javascript:, data: or relative ones."""
    low = link.strip().lower()
    return (low.startswith("https://") or low.startswith("http://")) and not any(c in link for c in "\"'<> \n\t")


def _headline(r: Mapping, where: list[str]) -> str:
    """One line on what is wrong: the value's error figures, then each wrong gradient's."""
    parts = [_headline_of(r)] if "value" in where else []
    parts += [f"∂{name}: {_headline_of(g) or g.get('verdict')}" for name, g in gradients(r) if _wrong(g)]
    return "; ".join(p for p in parts if p)


def _headline_of(r: Mapping) -> str:
    """The headline of one compared quantity (a result's value, or a gradient)."""
    e = r.get("errors") if isinstance(r.get("errors"), Mapping) else {}
    if e.get("max_abs") is not None:
        return f"max abs {format_scalar(e['max_abs'])}, max rel {format_scalar(e.get('max_rel'))}" + (
            f", {e['mismatched']}/{e['total']} mismatched"
            if e.get("total") is not None and e.get("mismatched") is not None
            else ""
        )
    if e.get("summary"):
        return str(e["summary"]).splitlines()[0][:160]
    actual = r.get("actual")
    if isinstance(actual, Mapping) and "error" in actual:
        message = str(actual.get("message") or "")[:120]
        return f"{actual.get('error')}: {message}" if message else str(actual.get("error"))
    return ""


def _place(r: Mapping) -> dict:
    """Where a result or a group of them lies: verdict, spec, binding, framework, dtype, mode, device."""
    return {k: str(r.get(k, "?")) for k in ("verdict", "spec", "binding", "framework", "dtype", "mode", "device")}


def format_finding(r: Mapping) -> dict:
    """A result line as its detailed block shows it: the case, both outcomes, the error figures
    of the value and of each gradient, the known deviation, the reproducer."""
    errors = _errors(r.get("errors"))
    where = finding_in(r)
    tol = r.get("tolerance") if isinstance(r.get("tolerance"), Mapping) else {}
    inputs = r.get("inputs") if isinstance(r.get("inputs"), Mapping) else {}
    return {
        **_place(r),
        "case_id": str(r.get("case_id", "?")),
        "origin": _origin(r.get("origin")),
        "params": _params(r.get("params")),
        "tolerance": ", ".join(f"{k} {format_scalar(v)}" for k, v in tol.items()),
        # Float inputs are stored as float64 holding values already rounded to the case's dtype.
        "inputs": [
            (str(k), _shape(v), "int64" if v.get("dtype") == "int64" else "", format_array(v))
            if _is_array(v)
            else (str(k), "", "", _text(v))
            for k, v in inputs.items()
        ],
        "expected": _outcome(r.get("expected")),
        "actual": _outcome(r.get("actual")),
        "errors": errors,
        "value_verdict": value_verdict(r),
        "in": " ".join(where),
        "parts": [(p, None) for p in where],
        "headline": _headline(r, where),
        "gradients": [
            {
                "name": name,
                "verdict": str(g.get("verdict", "?")),
                "expected": _outcome(g.get("expected")),
                "actual": _outcome(g.get("actual")),
                "errors": _errors(g.get("errors")),
            }
            for name, g in gradients(r)
        ],
        "known": format_known(r.get("known")),
        "rerun": _rerun(r.get("rerun")),
        "reproducer": str(r["reproducer"]) if r.get("reproducer") else None,
        "seconds": ", ".join(
            f"{k} {v:.3g} s" for k, v in (r.get("seconds") or {}).items() if isinstance(v, (int, float))
        ),
    }


def _rerun(rerun: Any) -> list[tuple[str, str]] | None:
    """The rows of a crash's or timeout's rerun alone in a fresh process: whether it reproduced,
    what the rerun gave, the state of the process the unit first failed in."""
    if not isinstance(rerun, Mapping):
        return None
    got = rerun.get("outcome") if isinstance(rerun.get("outcome"), Mapping) else {}
    before = rerun.get("before") if isinstance(rerun.get("before"), Mapping) else {}
    verdict = str(got.get("verdict", "?"))
    if got.get("message") is not None:
        gave = f"{verdict}: {got['message']}"
    else:
        o = _outcome(got.get("actual")) or {}
        gave = f"{verdict}: " + (f"{o['error']}: {o['message']}" if "error" in o else f"value {o.get('short', '?')}")
        grads = got.get("gradients")
        if isinstance(grads, Mapping) and grads:
            gave += "; " + ", ".join(f"∂{k} {v}" for k, v in grads.items())
    if isinstance(got.get("seconds"), (int, float)):
        gave += f" ({got['seconds']:.3g} s)"
    state = (
        f"{_text(before.get('cases'))} units run ({_text(before.get('batches'))} batches), "
        f"{_text(before.get('compiled'))} compilations, {_text(before.get('rss_mib'))} MiB resident "
        f"(peak {_text(before.get('peak_rss_mib'))} MiB), {_text(before.get('seconds'))} s old"
    )
    if before.get("maps") is not None:
        state += f", {_text(before['maps'])} memory mappings when last counted"
    rows = [
        ("reproduced alone", "yes" if rerun.get("reproduced") else "no"),
        ("rerun gave", gave),
        ("the process before", state),
    ]
    if before.get("previous"):
        rows.append(("unit run just before", str(before["previous"])))
    return rows


def _percent(v: Any) -> str:
    """A share of the gap as a percentage ("100%", "-12%", "99.6%"); "—" when not a number.

    Whole percent, except where rounding would claim a full (or no) closure that is not exact.
    """
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "—"
    pct = v * 100.0
    text = f"{pct:.0f}"
    if text in ("100", "0", "-0", "-100") and abs(pct - round(pct)) > 1e-9:
        text = f"{pct:.1f}"
    return ("0" if text.strip("-0.") == "" else text) + "%"


def _attribution(attribution: Any) -> dict | None:
    """The attribution of a divergence: each differing knob with A's and B's values, what it
    closes alone and its share, the explaining ones marked; status and what all together close."""
    if not isinstance(attribution, Mapping):
        return None
    conventions = attribution.get("conventions")
    explaining = [str(c) for c in conventions] if isinstance(conventions, (list, tuple)) else []
    differing = attribution.get("differing")
    knobs = [
        {
            "name": str(x.get("name", "?")),
            "a": _value_text(x.get("a")),
            "b": _value_text(x.get("b")),
            "alone": _percent(x.get("alone")),
            "share": _percent(x.get("share")),
            "explains": str(x.get("name", "?")) in explaining,
        }
        for x in (differing if isinstance(differing, (list, tuple)) else [])
        if isinstance(x, Mapping)
    ]
    closed = attribution.get("closed")
    return {
        "status": str(attribution.get("status") or ""),
        "knobs": knobs,
        "conventions": explaining,
        "closed": _percent(closed) if closed is not None else None,
    }


def format_divergence(d: Mapping) -> dict:
    """A divergence line as its detailed block shows it: both sides (on common ground, each
    with its spec and case), their comparison in their common form, the part that disagrees
    (the value or a gradient), the attribution of the gap to the conventions that differ (of
    the first differing part; ``parts``: those of the others)."""
    sides = []
    for s in ("a", "b"):
        side = d.get(s) if isinstance(d.get(s), Mapping) else {}
        sides.append(
            {
                "binding": str(side.get("binding", "?")),
                "framework": str(side.get("framework", "?")),
                "verdict": str(side.get("verdict", "?")),
                "actual": _outcome(side.get("actual")),
                # on common ground each side is its own spec and case (``gen-0-7~sigmoid``)
                "spec": str(side.get("spec") or ""),
                "case_id": str(side.get("case_id") or ""),
            }
        )
    comparison = d.get("comparison")
    return {
        "status": str(d.get("status", "unexplained")),
        "spec": str(d.get("spec", "?")),
        "case_id": str(d.get("case_id", "?")),
        "dtype": str(d.get("dtype", "?")),
        "mode": str(d.get("mode", "?")),
        "device": str(d.get("device", "?")),
        "a": sides[0],
        "b": sides[1],
        "frameworks": " ".join(dict.fromkeys(s["framework"] for s in sides)),
        "verdicts": " ".join(dict.fromkeys(s["verdict"] for s in sides)),
        "comparison": _errors(comparison),
        "reason": str(d.get("reason") or ""),
        "attribution": _attribution(d.get("attribution")),
        "known": [str(k) for k in d.get("known") or []],
        # what disagrees (the value, or "d/d input"), in which common form, of which pair of specs
        "part": str(d.get("part") or "value"),
        "form": str(d.get("form") or ""),
        "pair": str(d.get("pair") or ""),
        "parts": [
            {"part": str(p.get("part", "?")), "attribution": _attribution(p.get("attribution"))}
            for p in d.get("parts") or []
            if isinstance(p, Mapping)
        ][1:],
    }


# -- numbers and arrays ----------------------------------------------------------------------


def format_scalar(v: Any) -> str:
    """Error figures: 6 significant digits; the records' 'nan'/'inf' strings as they are."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _elem(x: Any, is_int: bool) -> str:
    if isinstance(x, str):  # "nan", "inf", "-inf"
        return x
    if is_int:
        return str(int(x))
    return repr(float(x))  # shortest string that reads back as the same float64: exact


def format_array(d: Mapping) -> str:
    """An encoded array (``{"dtype", "shape", "data"}``) printed exactly, nested like NumPy.

    Floats print with ``repr`` (shortest round-trip form), so the text is the stored value
    exactly. Arrays over MAX_ELEMENTS elements keep EDGE_ITEMS items at each end of every
    axis, with ``...`` between, like ``numpy.array2string``'s summarisation. Works on the
    flat list directly: no decoding, which keeps tens of thousands of findings fast.
    """
    data = d.get("data") or []
    shape = [int(s) for s in d.get("shape") or []]
    is_int = d.get("dtype") == "int64"
    if not shape:
        return _elem(data[0], is_int) if data else "[]"
    summarise = len(data) > MAX_ELEMENTS
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * shape[i + 1]

    def rec(axis: int, offset: int) -> str:
        n = shape[axis]
        idx: list[int | None] = list(range(n))
        if summarise and n > 2 * EDGE_ITEMS:
            idx = list(range(EDGE_ITEMS)) + [None] + list(range(n - EDGE_ITEMS, n))
        if axis == len(shape) - 1:
            items = ["..." if i is None else _elem(data[offset + i], is_int) for i in idx]
            return "[" + ", ".join(items) + "]"
        sep = "," + "\n" * (len(shape) - axis - 1) + " " * (axis + 1)
        items = ["..." if i is None else rec(axis + 1, offset + i * strides[axis]) for i in idx]
        return "[" + sep.join(items) + "]"

    if 0 in shape:
        return "[]"
    return rec(0, 0)


# -- shrunk cases (conformance/shrink.py) --------------------------------------------------------


def format_shrunk(r: Mapping) -> dict:
    """A ``shrunk`` line as its block shows it: the group (binding, spec, dtype, mode, verdict,
    each failing part's symptom, the known entries), the smallest case and the original one (each
    as :func:`format_finding` shows a result), elements before and after, the steps, why it
    stopped, the ``lossparity explain`` command."""
    el = r.get("elements") if isinstance(r.get("elements"), Mapping) else {}
    symptom = [s for s in r.get("symptom") or [] if isinstance(s, Mapping)]
    case, original = r.get("case"), r.get("original")
    return {
        **_place(r),
        "symptom": " · ".join(f"{s.get('part')}: {s.get('symptom')}" for s in symptom),
        "known": ", ".join(map(str, r.get("known") or [])),
        "results": r.get("results"),
        "before": el.get("before"),
        "after": el.get("after"),
        "steps": r.get("steps"),
        "kept": r.get("kept"),
        "seconds": format_scalar(r.get("seconds")) if isinstance(r.get("seconds"), (int, float)) else "",
        "stopped": str(r.get("stopped", "?")),
        "explain": str(r.get("explain") or ""),
        "case": format_finding(case) if isinstance(case, Mapping) else None,
        "original": format_finding(original) if isinstance(original, Mapping) else None,
        "divergence": _shrunk_divergence(r.get("divergence")),
    }


def _shrunk_divergence(d: Any) -> dict | None:
    """The other side of a shrunk divergence: its binding, its outcome on the smallest case and on
    the original, the reason, the explain command of both."""
    if not isinstance(d, Mapping):
        return None
    case, original = d.get("case"), d.get("original")
    return {
        "binding": str(d.get("binding", "?")),
        "reason": str(d.get("reason", "")),
        "explain": str(d.get("explain") or ""),
        "case": _outcome(case.get("actual")) if isinstance(case, Mapping) else None,
        "original": _outcome(original.get("actual")) if isinstance(original, Mapping) else None,
        "crashed": message((d.get("crashed") or {}).get("actual")) if isinstance(d.get("crashed"), Mapping) else None,
    }
