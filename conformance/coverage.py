"""The coverage table: which bindings each spec has in each framework (``lossparity list``)."""

from __future__ import annotations

from lossparity.conformance.registry import adapter_modules, bindings, broken_adapters, excluded, family
from lossparity.conformance.runner import differentiated
from lossparity.conformance.specs import SPECS
from lossparity.core.dtypes import DTYPES


def coverage() -> dict:
    modules = adapter_modules()
    frameworks = {
        name: {
            "available": m.ADAPTER.unavailable() is None,
            "reason": m.ADAPTER.unavailable(),
            "bindings": len(bindings(name)),
            "modes": list(m.ADAPTER.modes),
            "opt_in_modes": list(m.ADAPTER.opt_in_modes),
            "excluded": excluded(name),
        }
        for name, m in modules.items()
    }
    frameworks.update(
        {
            name: {"available": False, "reason": why, "bindings": 0, "modes": [], "opt_in_modes": [], "excluded": {}}
            for name, why in broken_adapters().items()
        }
    )
    specs = []
    for spec in SPECS.values():
        row = {"spec": spec.name, "summary": spec.summary, "bindings": {}}
        for name, m in modules.items():
            row["bindings"][name] = [
                {
                    "id": b.id,
                    "params": sorted(b.params),
                    "fixed": dict(b.fixed),
                    "conventions": {k: v for k, v in b.conventions.items()},
                    "dtypes": list(b.dtypes),
                    "computes_in": b.computes_in,
                    "modes": list(m.ADAPTER.modes),
                    "gradients": list(differentiated(spec)),
                }
                for b in bindings(name)
                if b.spec == spec.name
            ]
        specs.append(row)
    return {"frameworks": frameworks, "specs": specs}


def format_coverage(table: dict) -> str:
    names = list(table["frameworks"])
    lines = []
    for spec in table["specs"]:
        lines.append(f"{spec['spec']}  -  {spec['summary']}")
        for fw in names:
            bindings = spec["bindings"].get(fw, [])
            lines.append(f"  {fw:<11} " + ("-" if not bindings else ""))
            lines += [f"    {b['id']:<58} {_dtypes(b)}" for b in bindings]
    lines.append("")
    for fw, info in table["frameworks"].items():
        state = "available" if info["available"] else f"skipped: {info['reason']}"
        modes = ", ".join(m + (" (opt-in)" if m in info["opt_in_modes"] else "") for m in info["modes"])
        lines.append(f"{fw}: {info['bindings']} bindings, modes {modes or '-'}; {state}")
    lines.append("Every binding is differentiated with respect to its input (and probability targets).")
    lines += ["", "Public loss APIs deliberately not bound:"]
    for info in table["frameworks"].values():
        lines += [f"  {api}: {why}" for api, why in info["excluded"].items()]
    return "\n".join(lines)


def format_markdown(table: dict) -> str:
    """The coverage table as Markdown for the README: one row per spec, one column per framework
    family (a Keras binding once, for its three backends), each cell the binding ids."""
    families = list(dict.fromkeys(family(fw) for fw in table["frameworks"]))
    rows = ["| spec | " + " | ".join(families) + " |", "|" + " --- |" * (len(families) + 1)]
    for spec in table["specs"]:
        cells = []
        for fam in families:
            ids = dict.fromkeys(
                b["id"].split("[")[0] for fw, bs in spec["bindings"].items() if family(fw) == fam for b in bs
            )
            cells.append("<br>".join(f"`{i}`" for i in ids) or "-")
        rows.append(f"| `{spec['spec']}` | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _dtypes(binding: dict) -> str:
    """'float64 float32 float16 bfloat16', with a documented compute dtype noted."""
    text = " ".join(d if d in binding["dtypes"] else "-" * len(d) for d in DTYPES)
    return text + (f"  (computes in {binding['computes_in']})" if binding["computes_in"] else "")
