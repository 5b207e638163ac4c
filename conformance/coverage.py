"""The coverage table: which bindings each spec has in each framework (``lossparity list``)."""

from __future__ import annotations

from lossparity.adapters import adapter_modules, broken_adapters
from lossparity.conformance.specs import SPECS


def coverage() -> dict:
    modules = adapter_modules()
    frameworks = {
        name: {"available": m.ADAPTER.unavailable() is None, "reason": m.ADAPTER.unavailable(),
               "bindings": len(m.BINDINGS)}
        for name, m in modules.items()
    }
    frameworks.update({name: {"available": False, "reason": why, "bindings": 0}
                       for name, why in broken_adapters().items()})
    specs = []
    for spec in SPECS.values():
        row = {"spec": spec.name, "summary": spec.summary, "bindings": {}}
        for name, m in modules.items():
            row["bindings"][name] = [
                {"id": b.id, "params": sorted(b.params), "fixed": dict(b.fixed),
                 "conventions": {k: v for k, v in b.conventions.items()}, "dtypes": list(b.dtypes)}
                for b in m.BINDINGS if b.spec == spec.name
            ]
        specs.append(row)
    return {"frameworks": frameworks, "specs": specs}


def format_coverage(table: dict) -> str:
    names = list(table["frameworks"])
    lines = []
    for spec in table["specs"]:
        lines.append(f"{spec['spec']}  -  {spec['summary']}")
        for fw in names:
            ids = [b["id"] for b in spec["bindings"].get(fw, [])]
            lines.append(f"  {fw:<11} " + (", ".join(ids) if ids else "-"))
    lines.append("")
    for fw, info in table["frameworks"].items():
        state = "available" if info["available"] else f"skipped: {info['reason']}"
        lines.append(f"{fw}: {info['bindings']} bindings, {state}")
    return "\n".join(lines)
