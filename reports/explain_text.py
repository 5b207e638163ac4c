"""The terminal form of an explanation (``conformance/explain.py``): readable tables, exact numbers."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import numpy as np

from lossparity.core.dtypes import numpy_dtype
from lossparity.core.records import decode_array
from lossparity.reports.format import format_array

WIDTH = 100


def _outcome(o: Mapping | None, dtype: str | None = None) -> str:
    """A value in the shortest digits that identify it in ``dtype`` (float32: 0.31903759), or its error."""
    if not o:
        return "-"
    if "value" in o:
        if dtype in ("float32", "float16", "bfloat16"):
            values = decode_array(o["value"]).astype(numpy_dtype(dtype))
            return np.array2string(values, separator=", ", floatmode="unique", threshold=64)
        return format_array(o["value"])
    return f"raises {o['error']}" + (f": {o['message']}" if o.get("message") else "")


def _indent(text: str, prefix: str) -> str:
    return textwrap.indent(text, prefix)


def _wrap(text: str, prefix: str) -> str:
    return textwrap.fill(text, WIDTH, initial_indent=prefix, subsequent_indent=" " * len(prefix))


def _percent(x) -> str:
    return "-" if x is None else f"{x:.0%}"


def format_explanation(e: Mapping) -> str:
    letters = "AB"
    sides = e["bindings"]
    out = [
        f"lossparity explain: {' vs '.join(s['binding'] for s in sides)}   ({e['dtype']}, {e['mode']}, {e['device']})",
        "",
    ]
    for name, arr in e["case"]["arrays"].items():
        out.append(f"  {name:<7} " + format_array(arr).replace("\n", "\n" + " " * 10))
    for name, value in e["case"]["params"].items():
        out.append(f"  {name:<7} " + (format_array(value) if isinstance(value, Mapping) else repr(value)))
    out.append("")
    for letter, s in zip(letters, sides):
        out.append(f"{letter if len(sides) > 1 else ' '}  {s['binding']}   [{s['spec']}: {s['summary']}]")
        if s.get("call") and s["call"] != s["binding"]:
            out.append(f"   call      {s['call']}")
        if len(e["dtype"].split(",")) > 1 or len(e["mode"].split(",")) > 1:
            out.append(f"   given     {s['dtype']}, {s['mode']}")
        for why in s.get("domain") or ():
            out.append(_wrap(f"outside the documented domain: {why}", "   domain    "))
        actual = s["actual"]
        if s["framework"] != "oracle":
            dtype = f"  ({actual['dtype']})" if actual.get("dtype") else ""
            out.append(f"   value     {_outcome(actual, actual.get('dtype'))}{dtype}".replace("\n", "\n" + " " * 13))
        shown = s["verdict"] if s.get("domain") else s.get("value_verdict", s["verdict"])
        verdict = f"   -> {shown}" if s["framework"] != "oracle" else ""
        out.append(f"   oracle    {_outcome(s['expected'])}{verdict}".replace("\n", "\n" + " " * 13))
        for name, g in (s.get("gradients") or {}).items():
            text = format_array(g["value"]) if "value" in g else f"none: {g['error']}"
            judged = f"   -> {g['verdict']}" if g.get("verdict") else ""
            out.append("   gradient  " + text.replace("\n", "\n" + " " * 13) + f"   (d sum(loss) / d {name}){judged}")
            if g.get("expected") and "value" in g["expected"]:
                out.append("   oracle    " + format_array(g["expected"]["value"]).replace("\n", "\n" + " " * 13))
        if s["conventions"]:
            out.append("   conventions  " + ", ".join(f"{k}={v!r}" for k, v in s["conventions"].items()))
    out += ["", "In plain words"]
    out += [_wrap(line, "  * ") for line in e["summary"]]

    out += ["", "Oracle stages (float64, under each binding's conventions; classes on the last axis)"]
    part = e.get("parting")
    for i in range(max(len(s["stages"]) for s in sides)):
        mark = "   <-- they part here" if part is not None and part["index"] == i else ""
        out.append(f"  stage {i + 1}{mark}")
        for letter, s in zip(letters, sides):
            if i >= len(s["stages"]):
                out.append(f"    {letter if len(sides) > 1 else ' '}  (no further stage)")
                continue
            st = s["stages"][i]
            head = f"    {letter if len(sides) > 1 else ' '}  {st['name']}: "
            out.append(_wrap(st["note"], head) if st["note"] else head.rstrip())
            out.append(" " * 9 + format_array(st["value"]).replace("\n", "\n" + " " * 9))

    attribution = e.get("attribution")
    if attribution is not None:
        out += [
            "",
            "Attribution by ablation: A's setting switched to B's, knob by knob "
            "(share of the gap between the two predictions)",
        ]
        rows = attribution["differing"]
        if not rows:
            out.append("  the two settings do not differ")
        else:
            explaining = set(attribution["conventions"])
            w_name = max(len("knob"), *(len(r["name"]) for r in rows))
            w_a = max(len("A"), *(len(repr(r["a"])) for r in rows))
            w_b = max(len("B"), *(len(repr(r["b"])) for r in rows))
            out.append(f"  {'knob':<{w_name}}  {'A':<{w_a}}  {'B':<{w_b}}  {'alone':>6}  {'share':>6}")
            for r in rows:
                star = "  *" if r["name"] in explaining else ""
                out.append(
                    f"  {r['name']:<{w_name}}  {r['a']!r:<{w_a}}  {r['b']!r:<{w_b}}  "
                    f"{_percent(r['alone']):>6}  {_percent(r['share']):>6}{star}"
                )
            if explaining:
                out.append("  * the smallest set of switches that turns A's prediction into B's")
            elif attribution["status"] == "unexplained":
                out.append(f"  unexplained: switching every knob closes {_percent(attribution['closed'])} of the gap")

    for letter, s in zip(letters, sides):
        out += ["", f"Reproducer{' ' + letter if len(sides) > 1 else ''} ({s['binding']})"]
        out.append(_indent(s["reproducer"].rstrip("\n"), "    "))
    return "\n".join(out) + "\n"
