"""The coverage table: which bindings each spec has in each framework, and each binding's
parameters with their status (``lossparity list``; the parameters from ``conformance/parameters.py``)."""

from __future__ import annotations

from lossparity.conformance.registry import adapter_modules, bindings, broken_adapters, excluded, family
from lossparity.conformance.runner import differentiated
from lossparity.conformance.specs import SPECS
from lossparity.core.dtypes import DTYPES


def coverage(parameters: bool = False) -> dict:
    """Specs x frameworks with each binding's ids, conventions and dtypes, and each framework's
    state and excluded APIs. ``parameters``: also each binding's parameters with their status
    (``conformance/parameters.py``: read from the installed frameworks, in their worker
    processes), under the binding's ``parameters`` (None where not read), and each framework's
    ``parameters``: the counts per status and the ``problems`` (none on a healthy install)."""
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
    if parameters:
        _add_parameters(frameworks, specs)
    return {"frameworks": frameworks, "specs": specs}


def _add_parameters(frameworks: dict, specs: list) -> None:
    from lossparity.conformance.parameters import coverage as parameter_coverage

    found = parameter_coverage([fw for fw, info in frameworks.items() if info["available"]])
    for fw, info in frameworks.items():
        got = found.get(fw)
        info["parameters"] = None if got is None else {"counts": got["counts"], "problems": got["problems"]}
    for row in specs:
        for fw, bs in row["bindings"].items():
            for b in bs:
                b["parameters"] = found[fw]["bindings"].get(f"{row['spec']}:{b['id']}") if fw in found else None


def format_coverage(table: dict) -> str:
    names = list(table["frameworks"])
    reasons: dict[str, int] = {}  # each exclusion's reason once, numbered, under the table
    lines = []
    for spec in table["specs"]:
        lines.append(f"{spec['spec']}  -  {spec['summary']}")
        for fw in names:
            bindings = spec["bindings"].get(fw, [])
            lines.append(f"  {fw:<11} " + ("-" if not bindings else ""))
            for b in bindings:
                lines.append(f"    {b['id']:<58} {_dtypes(b)}")
                if "parameters" in b:
                    lines += _parameter_lines(b["parameters"], reasons)
    lines.append("")
    for fw, info in table["frameworks"].items():
        state = "available" if info["available"] else f"skipped: {info['reason']}"
        modes = ", ".join(m + (" (opt-in)" if m in info["opt_in_modes"] else "") for m in info["modes"])
        lines.append(f"{fw}: {info['bindings']} bindings, modes {modes or '-'}; {state}")
    lines.append("Every binding is differentiated with respect to its input (and probability targets).")
    lines += ["", "Public loss APIs deliberately not bound:"]
    for info in table["frameworks"].values():
        lines += [f"  {api}: {why}" for api, why in info["excluded"].items()]
    if any("parameters" in info for info in table["frameworks"].values()):
        lines += ["", *format_parameter_counts(table), "", "Parameters deliberately not bound [n]:"]
        lines += [f"  [{n}] {why}" for why, n in reasons.items()]
    return "\n".join(lines)


def format_parameter_counts(table: dict) -> list[str]:
    """The figures the README's coverage section quotes: per framework, its bindings' parameters
    (one per binding and parameter of its API) that are bound, excluded, unbound."""
    lines = [
        "Parameters of each binding's API (init: a class's constructor; <p>: spec parameter p, which the "
        "cases vary; name=expr: the call text's own argument):"
    ]
    for fw, info in table["frameworks"].items():
        found = info.get("parameters")
        if found is None:
            lines.append(f"  {fw}: not read ({info['reason'] or 'no signatures'})")
            continue
        c = found["counts"]
        total = c["given"] + c["excluded"] + c["unbound"]
        lines.append(
            f"  {fw}: {total} parameters, {c['given']} bound ({c['bound']} spec parameters, {c['argument']} arrays "
            f"of the case, {c['fixed']} fixed), {c['excluded']} excluded, {c['unbound']} unbound"
        )
        lines += [f"    problem: {p}" for p in found["problems"]]
    return lines


def _parameter_lines(params: list | None, reasons: dict[str, int]) -> list[str]:
    """``init  weight=<weight> reduction=<reduction>  excluded: size_average[1] reduce[1]``: a line per part."""
    if params is None:
        return ["      (parameters not read)"]
    out = []
    for part in dict.fromkeys(p["part"] for p in params):
        given, excluded, unbound = [], [], []
        for p in params:
            if p["part"] != part:
                continue
            if p["status"] == "bound":
                given.append(f"{p['name']}=<{p['detail']}>")
            elif p["status"] in ("argument", "fixed"):
                text = p["detail"] if len(p["detail"]) <= 24 else p["detail"][:21] + "..."
                given.append(f"{p['name']}={text}")
            elif p["status"] == "excluded":
                excluded.append(f"{p['name']}[{reasons.setdefault(p['detail'], len(reasons) + 1)}]")
            else:
                unbound.append(p["name"])
        text = f"      {part:<5} " + " ".join(given)
        text += f"  excluded: {' '.join(excluded)}" if excluded else ""
        text += f"  UNBOUND: {' '.join(unbound)}" if unbound else ""
        out.append(text)
    return out


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
