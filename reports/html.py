"""The self-contained HTML report, rendered from the records of a results file alone.

The page reads only records (``lossparity/core/records.py``): no adapter, no framework, no oracle
is imported, so a report can be rebuilt on a machine with none of them installed. It is
one file with inline CSS and a few lines of inline JavaScript (filters), loads nothing
from anywhere (its Content-Security-Policy says so), and shows everything with
JavaScript off. Every string from the records goes through Jinja2's autoescape.

Aggregates (counts, the specs x frameworks matrix, each binding's value and gradient
verdicts per dtype x mode x device, unsupported bindings, the bindings x bindings agreement
matrix of each spec, the error plots of ``reports/plots.py``) are computed here in one pass
over the records, read lazily (:class:`ReportData`); only findings (results that are not
``conform`` or ``unsupported``) and divergences get a detailed block, and only the first few
of each group (spec, binding, verdict, dtype, mode), the page saying how many of how many: so
a results file of a million lines renders in bounded memory to a page of a few MB. The page's
script filters the blocks and shows them a hundred at a time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping

import jinja2
from markupsafe import Markup, escape

from lossparity.core.dtypes import DTYPES
from lossparity.reports.plots import ErrorPlots
from lossparity.core.verdicts import FINDINGS, SILENT, VERDICTS

#: Findings, most severe first.
FINDING_ORDER = (*FINDINGS, "known")
#: Execution modes in the order tables show them; others follow by name.
MODES = ("eager", "function", "function_jit", "jit", "compile")
#: What a result's gradients are taken with respect to, in the order columns show them.
GRADIENTS = ("input", "target")
#: Where a finding lies (the "finding in" filter).
PARTS = ("value", "gradient")
#: Arrays larger than this print their first and last EDGE_ITEMS elements per axis only.
MAX_ELEMENTS = 200
EDGE_ITEMS = 3

_ENV: jinja2.Environment | None = None


def _env() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        _ENV = jinja2.Environment(
            loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=True,  # every value from a results file is untrusted text
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        _ENV.filters["fmt"] = _fmt_scalar
    return _ENV


#: Stands in the page's Content-Security-Policy until the script's hash is known.
_SCRIPT_SOURCE = "LOSSPARITY-SCRIPT-HASH"
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def _render(template: str, context: dict) -> str:
    """Render a page and allow exactly its own inline script: the policy names the script's
    SHA-256, so a script that escaping ever let through would still not run."""
    page = _env().get_template(template).render(SCRIPT_SOURCE=_SCRIPT_SOURCE, **context)
    scripts = _SCRIPT.findall(page)
    digest = "".join(f" 'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                     for s in scripts).strip() or "'none'"
    return page.replace(_SCRIPT_SOURCE, digest, 1)


def write_report(records: Iterable[dict], path: str | Path) -> Path:
    """Render ``records`` (any iterable, read once: ``iter_records(path)`` streams a file of a
    million lines in bounded memory) and write the page to ``path`` (parents created); return it."""
    return collect(records).write(path)


def _write_page(path: str | Path, page: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def render_regression(d, fail_on: Iterable[str], drift_ulps: float) -> str:
    """The regression page for a :class:`~lossparity.reports.diff.Diff`: both runs' metadata
    side by side, counts per change class, then the changes grouped by framework and spec."""
    return _render("regression.html.j2", _regression_context(d, tuple(fail_on), drift_ulps))


def write_regression(d, path: str | Path, fail_on: Iterable[str], drift_ulps: float) -> Path:
    return _write_page(path, render_regression(d, fail_on, drift_ulps))


#: Changes of one class for one binding of one spec shown in full; the rest as table rows.
MAX_DETAILED = 25


def _regression_context(d, fail_on: tuple[str, ...], drift_ulps: float) -> dict:
    from lossparity.reports.diff import CLASSES, rows

    counts = d.counts()
    rank = {k: i for i, k in enumerate(sorted(CLASSES, key=lambda k: (k not in fail_on, CLASSES.index(k))))}
    ordered = sorted(d.changes, key=lambda c: (c.framework, c.key[0], rank.get(c.kind, 99), c.key[1], c.key))
    frameworks: dict[str, dict] = {}
    shown: Counter = Counter()
    for change, n in rows(ordered):
        fw = frameworks.setdefault(change.framework, {"framework": change.framework, "counts": Counter(),
                                                        "specs": {}})
        spec = fw["specs"].setdefault(change.key[0], {"spec": change.key[0], "counts": Counter(),
                                                      "items": [], "more": []})
        fw["counts"][change.kind] += n
        spec["counts"][change.kind] += n
        group = (change.key[0], change.key[1], change.kind)
        shown[group] += 1
        item = _change(change, n, change.kind in fail_on)
        (spec["items"] if shown[group] <= MAX_DETAILED else spec["more"]).append(item)
    regressions = len(d.regressions(fail_on))
    return {
        "regressions": regressions,
        "matched": d.matched,
        "fail_on": list(fail_on), "drift_ulps": _fmt_scalar(drift_ulps),
        "meta": _meta_pairs(d.base_meta, d.new_meta),
        "commands": [(side, _command(m)) for side, m in (("BASE", d.base_meta), ("NEW", d.new_meta)) if _command(m)],
        "classes": [(k, counts.get(k, 0), k in fail_on) for k in sorted(CLASSES, key=rank.get)],
        "frameworks": [{**fw, "counts": _class_counts(fw["counts"], rank),
                        "specs": [{**s, "counts": _class_counts(s["counts"], rank)} for s in fw["specs"].values()]}
                       for fw in frameworks.values()],
        "filters": [("framework", "framework", sorted(frameworks)),
                    ("spec", "spec", sorted({c.key[0] for c in d.changes})),
                    ("kind", "kind", sorted({c.kind for c in d.changes}, key=rank.get)),
                    ("dtype", "dtype", sorted({c.key[2] for c in d.changes}, key=lambda v: _rank(v, DTYPES)))],
    }


def _class_counts(counts: Counter, rank: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: rank.get(kv[0], 99))


def _change(change, n: int, regression: bool) -> dict:
    spec, binding, dtype, device, mode, case_id = change.key
    base = _finding(change.base) if change.base else None
    new = _finding(change.new) if change.new else None
    repro_new, repro_base = (new or {}).get("reproducer"), (base or {}).get("reproducer")
    return {
        "kind": change.kind, "regression": regression, "cases": n,
        "framework": change.framework, "spec": spec, "binding": _breakable(binding), "dtype": dtype,
        "device": device, "mode": mode, "case_id": case_id, "detail": change.detail,
        "case": new or base, "base": base, "new": new,
        "reproducers": [(label, r) for label, r in (("NEW", repro_new), ("BASE", repro_base))
                        if r and not (label == "BASE" and r == repro_new)],
    }


def _meta_pairs(base: Mapping, new: Mapping) -> list[tuple[str, str, str, bool]]:
    """(field, BASE's value, NEW's value, whether they differ): versions first, then the run."""
    rows = []
    vb, vn = dict(_versions(base)), dict(_versions(new))
    for name in sorted(set(vb) | set(vn)):
        rows.append((name, vb.get(name, "–"), vn.get(name, "–"), vb.get(name) != vn.get(name)))
    mb, mn = dict(_meta_rows(base)), dict(_meta_rows(new))
    for name in dict.fromkeys([*mb, *mn]):
        if name in ("started", "finished", "losses") or name in vb or name in vn:
            continue
        rows.append((name, mb.get(name, "–"), mn.get(name, "–"), mb.get(name) != mn.get(name)))
    return rows


# -- the page's data ------------------------------------------------------------------------

#: Findings of one group (spec, binding, verdict, dtype, mode) kept whole while reading, and so
#: shown in full at most; divergences of one group (spec, status, dtype, mode, the two bindings)
#: likewise. The rest of a group is counted only: a file of a million lines holds in memory.
MAX_PER_GROUP = 20
#: Detailed blocks on the page at most (findings and divergences each): when groups are many,
#: every group shows fewer than MAX_PER_GROUP (at least one), so the page stays a few MB.
MAX_DETAILS = 2000
#: Result lines per binding x dtype whose arrays feed the error plots; the others are counted, and
#: the plot says so. Decoding arrays costs more than reading a line: this bounds the plots' time.
MAX_PLOTTED = 500


class ReportData:
    """The report's data, gathered from records one at a time, in one pass over a results file.

    Counters for every aggregate; whole records only for the first MAX_PER_GROUP findings and
    divergences of each group (with each group's count), so memory does not grow with the file.
    """

    def __init__(self) -> None:
        self.meta: dict = {}
        self.summary: dict | None = None
        self.counts: Counter = Counter()
        self.matrix: dict[str, dict[str, dict[str, Counter]]] = defaultdict(lambda: defaultdict(dict))
        self.unsupported: dict[tuple[str, str], dict] = {}
        # group -> [its count, the first records of it]
        self.findings: dict[tuple, list] = {}
        self.divergences: dict[tuple, list] = {}
        self.div_counts: Counter = Counter()
        self.agreements: list[Mapping] = []
        self.frameworks: dict[str, None] = {}
        self.framework_of: dict[str, str] = {}  # binding id -> framework, as the result lines say
        # (spec, binding) -> (dtype, mode, device) -> column ("all", "value", "∂input", "in") -> counts
        self.bindings: dict[tuple[str, str], dict] = defaultdict(lambda: defaultdict(lambda: defaultdict(Counter)))
        self.gradient_names: dict[str, None] = {}
        self.plots = ErrorPlots()
        self.plotted: Counter = Counter()  # (spec, binding, dtype) -> result lines seen
        self.failing = False  # a deviation, error mismatch, crash, timeout or unexplained divergence

    def add(self, r: Any) -> None:
        if not isinstance(r, Mapping):
            return
        kind = r.get("kind")
        if kind == "result":
            self._result(r)
        elif kind == "divergence":
            status = str(r.get("status", "unexplained"))
            self.div_counts[status] += 1
            self.failing |= status == "unexplained"
            sides = [r.get(s) if isinstance(r.get(s), Mapping) else {} for s in ("a", "b")]
            group = (str(r.get("spec")), status, str(r.get("dtype")), str(r.get("mode")),
                     *(str(side.get("binding")) for side in sides))
            _keep(self.divergences, group, r)
        elif kind == "agreement":
            self.agreements.append(r)  # one per compared pair of bindings: few
        elif kind == "meta" and not self.meta:
            self.meta = r
        elif kind == "summary":
            self.summary = r

    def _result(self, r: Mapping) -> None:
        verdict = str(r.get("verdict", "?"))
        spec, binding, fw = str(r.get("spec", "?")), str(r.get("binding", "?")), str(r.get("framework", "?"))
        dtype, mode = str(r.get("dtype", "?")), str(r.get("mode", "?"))
        self.counts[verdict] += 1
        self.failing |= verdict in FINDINGS
        self.frameworks.setdefault(fw)
        self.framework_of.setdefault(binding, fw)
        cell = self.matrix[spec][fw]
        (cell.get(binding) or cell.setdefault(binding, Counter()))[verdict] += 1
        row = self.bindings[spec, binding][dtype, mode, str(r.get("device", "?"))]
        row["all"][verdict] += 1
        row["value"][_value_verdict(r)] += 1
        for name, g in _gradients(r):
            self.gradient_names.setdefault(name)
            row["∂" + name][str(g.get("verdict", "?"))] += 1
        if verdict not in SILENT:
            row["in"].update(_finding_in(r))
        series = (spec, binding, dtype)
        self.plotted[series] += 1
        if self.plotted[series] <= MAX_PLOTTED:
            self.plots.add(r)
        if verdict == "unsupported":
            reason = _message(r.get("actual"))
            group = self.unsupported.setdefault((fw, reason), {"framework": fw, "reason": reason, "bindings": {}})
            group["bindings"][f"{binding} ({spec})"] = None
        elif verdict != "conform":
            _keep(self.findings, (spec, binding, verdict, dtype, mode), r)

    def page(self) -> str:
        return _render("report.html.j2", self.context())

    def write(self, path: str | Path) -> Path:
        """Write the page to ``path`` (parents created); return the path."""
        return _write_page(path, self.page())

    def context(self) -> dict:
        order = {v: i for i, v in enumerate(FINDING_ORDER)}
        findings, finding_groups = _shown(self.findings, lambda g: (
            order.get(g[2], len(order)), g[0], g[1], _rank(g[3], DTYPES), _rank(g[4], MODES)))
        findings.sort(key=lambda r: (order.get(r.get("verdict"), len(order)), str(r.get("spec")),
                                     str(r.get("binding")), str(r.get("dtype")), str(r.get("case_id"))))
        divergences, divergence_groups = _shown(self.divergences, lambda g: (g[1] != "unexplained", *g))
        divergences.sort(key=lambda d: (d.get("status") != "unexplained", str(d.get("spec")),
                                        str(d.get("case_id")), str(d.get("dtype"))))
        fw_list = list(self.frameworks)
        gradient_columns = sorted(self.gradient_names, key=lambda g: _rank(g, GRADIENTS))
        summary, counts = self.summary, self.counts
        plotted = {k: n for k, n in self.plotted.items() if n > MAX_PLOTTED}
        return {
            "meta": _meta_rows(self.meta),
            "versions": _versions(self.meta),
            "command": _command(self.meta),
            "finished": (summary or {}).get("finished"),
            "complete": summary is not None,
            "verdicts": [(v, counts.get(v, 0)) for v in VERDICTS] +
                        [(v, n) for v, n in sorted(counts.items()) if v not in VERDICTS],
            "total": sum(counts.values()),
            "summary_mismatch": _summary_mismatch(summary, counts),
            "div_counts": {"explained": self.div_counts.get("explained", 0),
                           "unexplained": self.div_counts.get("unexplained", 0)},
            "frameworks": fw_list,
            "matrix": _matrix(self.matrix, fw_list),
            "gradient_columns": gradient_columns,
            "bindings": _binding_rows(self.bindings, self.framework_of, fw_list, gradient_columns,
                                      self.plots.svgs(), plotted),
            "agreement": agreement_matrices(self.agreements, self.framework_of, fw_list),
            "unsupported": sorted(({**g, "bindings": list(g["bindings"])} for g in self.unsupported.values()),
                                  key=lambda g: (g["framework"], g["reason"])),
            "max_plotted": MAX_PLOTTED,
            "findings": [_finding(r) for r in findings],
            "n_findings": sum(n for n, _ in self.findings.values()),
            "finding_groups": finding_groups,
            "divergences": [_divergence(d) for d in divergences],
            "n_divergences": sum(n for n, _ in self.divergences.values()),
            "divergence_groups": divergence_groups,
            "stale": [k for k in map(_known, (summary or {}).get("stale_known") or []) if k],
            "filters": _filters(findings, divergences),
        }


def _keep(groups: dict[tuple, list], group: tuple, record: Mapping) -> None:
    """Count ``record`` in its group; keep it whole if the group has fewer than MAX_PER_GROUP."""
    entry = groups.get(group)
    if entry is None:
        groups[group] = [1, [record]]
    else:
        entry[0] += 1
        if len(entry[1]) < MAX_PER_GROUP:
            entry[1].append(record)


def _shown(groups: dict[tuple, list], key) -> tuple[list[Mapping], list[dict]]:
    """The records to show in full, and every capped group as ``{"group", "shown", "count"}``
    (sorted by ``key``): the first K of each group, K = MAX_PER_GROUP unless the groups are so
    many that MAX_DETAILS blocks would not hold them; then fewer, but one of each at least."""
    per_group = max(1, min(MAX_PER_GROUP, MAX_DETAILS // max(1, len(groups))))
    shown: list[Mapping] = []
    capped = []
    for group in sorted(groups, key=key):
        count, kept = groups[group]
        shown += kept[:per_group]
        if count > per_group:
            capped.append({"group": group, "shown": min(per_group, len(kept)), "count": count})
    return shown, capped


def render_report(records: Iterable[dict]) -> str:
    """The report page for the parsed lines of one results file (any order; ``meta`` first),
    read once, lazily: ``records`` may be a generator over a file of any length."""
    return collect(records).page()


def collect(records: Iterable[dict]) -> ReportData:
    """The report's data from ``records``, consumed one at a time (see :class:`ReportData`)."""
    collector = ReportData()
    for r in records:
        collector.add(r)
    return collector


def _rank(value: str, order: tuple[str, ...]) -> tuple[int, str]:
    """Sort key: the values of ``order`` in that order, then the others by name."""
    return (order.index(value) if value in order else len(order), value)


def _value_verdict(r: Mapping) -> str:
    """The verdict of the value alone; older results files have none: then the verdict's."""
    return str(r.get("value_verdict", r.get("verdict", "?")))


def _gradients(r: Mapping) -> list[tuple[str, Mapping]]:
    """A result's gradients, (what was differentiated, its record), input first."""
    g = r.get("gradients")
    if not isinstance(g, Mapping):
        return []
    return sorted(((str(k), v) for k, v in g.items() if isinstance(v, Mapping)), key=lambda kv: _rank(kv[0], GRADIENTS))


def _finding_in(r: Mapping) -> list[str]:
    """Where a finding lies: in its value, its gradients, or both (the value where neither says)."""
    bad = {"value": _value_verdict(r) != "conform",
           "gradient": any(g.get("verdict") not in (None, "conform") for _, g in _gradients(r))}
    return [p for p in PARTS if bad[p]] or ["value"]


def _binding_rows(bindings: Mapping, framework_of: Mapping[str, str], frameworks: list[str],
                  gradient_columns: list[str], plots: Mapping, plotted: Mapping = {}) -> list[dict]:
    """Per binding (by spec, framework, id): a row of verdict counts per dtype x mode x device
    (all, value, each gradient, where the findings lie), and its error plots per dtype;
    ``plotted``: (spec, binding, dtype) -> results, where more than MAX_PLOTTED fed no plot."""
    rank = {fw: i for i, fw in enumerate(frameworks)}
    out = []
    for (spec, binding), rows in sorted(bindings.items(), key=lambda kv: (
            kv[0][0], rank.get(framework_of.get(kv[0][1]), len(rank)), kv[0][1])):
        found: Counter = Counter()
        table = []
        for (dtype, mode, device), c in sorted(rows.items(), key=lambda kv: (
                _rank(kv[0][0], DTYPES), _rank(kv[0][1], MODES), kv[0][2])):
            found.update(c["in"])
            table.append({"dtype": dtype, "mode": mode, "device": device,
                          "all": _badges(c["all"]), "value": _badges(c["value"]),
                          "gradients": [_badges(c["∂" + g]) for g in gradient_columns],
                          "in": [(p, c["in"][p]) for p in PARTS if c["in"][p]]})
        out.append({"spec": spec, "binding": _breakable(binding), "framework": framework_of.get(binding, "?"),
                    "rows": table, "in": [(p, found[p]) for p in PARTS if found[p]],
                    "plots": plots.get((spec, binding), []),
                    "plots_capped": [(dtype, plotted[spec, binding, dtype]) for dtype, _ in plots.get((spec, binding), [])
                                     if (spec, binding, dtype) in plotted]})
    return out


def _matrix(matrix: Mapping[str, Mapping[str, Mapping[str, Counter]]], frameworks: list[str]) -> list:
    """Rows (spec, [cell per framework], totals); a cell lists (binding, badges), by binding id."""
    rows = []
    for spec in sorted(matrix):
        cells = [[(_breakable(b), _badges(matrix[spec][fw][b])) for b in sorted(matrix[spec].get(fw, {}))]
                 for fw in frameworks]
        totals: Counter = Counter()
        for by_binding in matrix[spec].values():
            for c in by_binding.values():
                totals.update(c)
        rows.append((_breakable(spec), cells, _badges(totals)))
    return rows


#: Framework of a binding id by its first dotted component, where no result line says it.
_PREFIX_FRAMEWORK = {"torch": "torch", "tf": "tensorflow", "keras": "tensorflow", "jax": "jax", "optax": "jax"}


def _framework(binding: str, framework_of: Mapping[str, str]) -> str:
    fw = framework_of.get(binding)
    if fw and fw != "?":
        return fw
    return _PREFIX_FRAMEWORK.get(binding.split(".", 1)[0], "")


def _count(v: Any) -> int:
    """A count from a record: a non-negative int, anything else 0 (a broken line must not raise)."""
    if isinstance(v, bool):
        return 0
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v if isinstance(v, int) and v >= 0 else 0


def agreement_matrices(agreements: Iterable[Mapping], framework_of: Mapping[str, str] | None = None,
                       framework_order: Iterable[str] = ()) -> list[dict]:
    """Who agrees with whom: per spec, a symmetric bindings x bindings matrix of agreement records.

    Each spec gives ``{"spec", "groups": [(framework, n bindings)], "bindings": [(id, framework)],
    "rows": [(id, [cell per column])]}``, bindings grouped by framework (the frameworks in
    ``framework_order`` first, in that order, then the others by name; bindings whose framework
    is unknown last) and sorted by id within; ``groups`` is empty when no framework is known.
    A binding's framework is what ``framework_of`` (the result lines) says, else its id's prefix. A cell is ``{"kind", "text", "unexplained",
    "title"}`` where kind is ``self`` (the diagonal), ``none`` (no record: not compared),
    ``agree`` (no disagreement on any compared case), ``explained`` (every disagreement
    explained) or ``unexplained``; ``text`` is ``"disagreeing / compared"``. One record
    fills both halves; several records for one pair (either order) add up.
    """
    framework_of = framework_of or {}
    rank = {fw: i for i, fw in enumerate(dict.fromkeys(framework_order))}
    pairs: dict[str, dict[frozenset, list[int]]] = defaultdict(dict)
    members: dict[str, dict[str, None]] = defaultdict(dict)
    for r in agreements:
        if not isinstance(r, Mapping):
            continue
        spec, a, b = str(r.get("spec", "?")), str(r.get("a", "?")), str(r.get("b", "?"))
        members[spec].setdefault(a)
        members[spec].setdefault(b)
        tally = pairs[spec].setdefault(frozenset((a, b)), [0, 0, 0])
        for i, k in enumerate(("compared", "explained", "unexplained")):
            tally[i] += _count(r.get(k))
    out = []
    for spec in sorted(members):
        fws = {b: _framework(b, framework_of) for b in members[spec]}
        order = sorted(members[spec], key=lambda b: (fws[b] == "", rank.get(fws[b], len(rank)), fws[b], b))
        groups = [(fw, sum(1 for b in order if fws[b] == fw)) for fw in dict.fromkeys(fws[b] for b in order)]
        rows = [(_breakable(row), [_agreement_cell(row, col, pairs[spec].get(frozenset((row, col))))
                                   for col in order])
                for row in order]
        out.append({"spec": spec, "groups": groups if any(fw for fw, _ in groups) else [],
                    "bindings": [(_breakable(b), fws[b]) for b in order], "rows": rows})
    return out


def _agreement_cell(row: str, col: str, tally: list[int] | None) -> dict:
    if row == col and tally is None:
        return {"kind": "self", "text": "", "unexplained": 0, "title": ""}
    if tally is None:
        return {"kind": "none", "text": "·", "unexplained": 0, "title": f"{row} and {col}: not compared"}
    compared, explained, unexplained = tally
    disagree = explained + unexplained
    who = f"{row} and {col}"
    if not compared and not disagree:
        return {"kind": "none", "text": "·", "unexplained": 0, "title": f"{who}: compared on no case"}
    if not disagree:
        return {"kind": "agree", "text": "=", "unexplained": 0,
                "title": f"{who} agree on all {compared} compared case{'s' * (compared != 1)}"}
    return {"kind": "unexplained" if unexplained else "explained", "text": f"{disagree} / {compared}",
            "unexplained": unexplained,
            "title": f"{who} disagree on {disagree} of {compared} compared case{'s' * (compared != 1)}: "
                     f"{explained} explained, {unexplained} unexplained"}


#: The report's filters: (name of the blocks' data- attribute, label, order of its values).
_FILTERS = (("framework", "framework", ()), ("spec", "spec", ()), ("verdict", "verdict", FINDING_ORDER + ("conform",)),
            ("dtype", "dtype", DTYPES), ("mode", "mode", MODES), ("device", "device", ("cpu", "cuda")),
            ("in", "finding in", PARTS))


def _filters(findings: list[dict], divergences: list[dict]) -> list[tuple[str, str, list[str]]]:
    """(name, label, values) of each filter menu: the values of the blocks they filter, nothing else."""
    seen: dict[str, set[str]] = {name: set() for name, _, _ in _FILTERS}
    for r in findings:
        for k in ("framework", "spec", "verdict", "dtype", "mode", "device"):
            seen[k].add(str(r.get(k)))
        seen["in"].update(_finding_in(r))
    for d in divergences:
        for k in ("spec", "dtype", "mode", "device"):
            seen[k].add(str(d.get(k)))
        seen["in"].add("value")  # a divergence is two bindings' values disagreeing
        for side in (d.get("a"), d.get("b")):
            if isinstance(side, Mapping):
                seen["framework"].add(str(side.get("framework")))
                seen["verdict"].add(str(side.get("verdict")))
    return [(name, label, sorted(seen[name] - {"None"}, key=lambda v: _rank(v, order)))
            for name, label, order in _FILTERS] + [("status", "divergence", ["explained", "unexplained"])]


def _breakable(name: str) -> Markup:
    """A binding id that may wrap after each dot or underscore (escaped here, so safe to mark up)."""
    return Markup("").join(escape(part) + (Markup("<wbr>") if part[-1:] in "._" else "")
                           for part in re.split(r"(?<=[._])", name))


def _badges(counter: Mapping[str, int]) -> list[tuple[str, int]]:
    known = [(v, counter[v]) for v in VERDICTS if counter.get(v)]
    return known + [(v, n) for v, n in sorted(counter.items()) if v not in VERDICTS and n]


def _summary_mismatch(summary: dict | None, counts: Counter) -> str | None:
    """A note when the run's own summary line disagrees with the result lines in the file."""
    if not summary or not isinstance(summary.get("counts"), dict):
        return None
    said = {k: v for k, v in summary["counts"].items() if v}
    if said == {k: v for k, v in counts.items() if v}:
        return None
    return ", ".join(f"{k}: {v}" for k, v in said.items())


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


def _meta_rows(meta: Mapping) -> list[tuple[str, str]]:
    rows, used = [], set()
    for label, keys in _META_FIELDS:
        for k in keys:
            if k in meta:
                rows.append((label, _text(meta[k])))
                used.add(k)
                break
    rows += [(k, _text(v)) for k, v in meta.items() if k not in used and k not in _META_SKIP]
    return [(k, v) for k, v in rows if v not in ("", "null")]


def _versions(meta: Mapping) -> list[tuple[str, str]]:
    v = meta.get("versions") or meta.get("frameworks") or {}
    if isinstance(v, Mapping):
        return [(str(k), _text(x)) for k, x in v.items()]
    return [("versions", _text(v))]


def _command(meta: Mapping) -> str | None:
    for k in ("command", "command_line", "argv"):
        if k in meta:
            v = meta[k]
            if isinstance(v, (list, tuple)):
                import shlex

                return shlex.join(str(x) for x in v)
            return str(v)
    return None


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return repr(v)
    return json.dumps(v, ensure_ascii=False, default=str)


def _message(actual: Any) -> str:
    if isinstance(actual, Mapping):
        msg = actual.get("message") or actual.get("error") or ""
        return str(msg)
    return ""


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
            return {"value": format_array(v), "shape": _shape(v), "dtype": dtype,
                    "short": _short(v)}
        return {"value": _text(v), "shape": "", "dtype": o.get("dtype"), "short": _text(v)[:60]}
    classes = o.get("classes") or []
    return {"error": str(o.get("error", "?")), "message": str(o.get("message") or ""),
            "classes": " < ".join(map(str, classes)) if len(classes) > 1 else "",
            "short": str(o.get("error", "?"))}


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
            figures.append((k, _fmt_scalar(e[k])))
    if e.get("index"):
        figures.append(("at index", _text(e["index"])))
    return {"summary": str(e.get("summary") or ""), "figures": figures}


def _known(k: Any) -> dict | None:
    if not isinstance(k, Mapping):
        return None
    link = str(k.get("link") or "")
    return {"id": str(k.get("id", "?")), "explanation": str(k.get("explanation") or ""),
            "link": link, "href": link if _safe_link(link) else None,
            "verdict": k.get("verdict")}


def _safe_link(link: str) -> bool:
    """Only plain web links become <a href>: never javascript:, data: or relative ones."""
    low = link.strip().lower()
    return (low.startswith("https://") or low.startswith("http://")) and not any(c in link for c in "\"'<> \n\t")


def _headline(r: Mapping, where: list[str]) -> str:
    """One line on what is wrong: the value's error figures, then each wrong gradient's."""
    parts = [_headline_of(r)] if "value" in where else []
    parts += [f"∂{name}: {_headline_of(g) or g.get('verdict')}" for name, g in _gradients(r)
              if g.get("verdict") not in (None, "conform")]
    return "; ".join(p for p in parts if p)


def _headline_of(r: Mapping) -> str:
    """The headline of one compared quantity (a result's value, or a gradient)."""
    e = r.get("errors") if isinstance(r.get("errors"), Mapping) else {}
    if e.get("max_abs") is not None:
        return (f"max abs {_fmt_scalar(e['max_abs'])}, max rel {_fmt_scalar(e.get('max_rel'))}"
                + (f", {e['mismatched']}/{e['total']} mismatched"
                   if e.get("total") is not None and e.get("mismatched") is not None else ""))
    if e.get("summary"):
        return str(e["summary"]).splitlines()[0][:160]
    actual = r.get("actual")
    if isinstance(actual, Mapping) and "error" in actual:
        message = str(actual.get("message") or "")[:120]
        return f"{actual.get('error')}: {message}" if message else str(actual.get("error"))
    return ""


def _finding(r: Mapping) -> dict:
    errors = _errors(r.get("errors"))
    where = _finding_in(r)
    tol = r.get("tolerance") if isinstance(r.get("tolerance"), Mapping) else {}
    inputs = r.get("inputs") if isinstance(r.get("inputs"), Mapping) else {}
    return {
        "verdict": str(r.get("verdict", "?")),
        "spec": str(r.get("spec", "?")), "binding": str(r.get("binding", "?")),
        "framework": str(r.get("framework", "?")), "dtype": str(r.get("dtype", "?")),
        "mode": str(r.get("mode", "?")), "device": str(r.get("device", "?")),
        "case_id": str(r.get("case_id", "?")), "origin": _origin(r.get("origin")),
        "params": _params(r.get("params")),
        "tolerance": ", ".join(f"{k} {_fmt_scalar(v)}" for k, v in tol.items()),
        # Float inputs are stored as float64 holding values already rounded to the case's dtype.
        "inputs": [(str(k), _shape(v), "int64" if v.get("dtype") == "int64" else "", format_array(v))
                   if _is_array(v)
                   else (str(k), "", "", _text(v)) for k, v in inputs.items()],
        "expected": _outcome(r.get("expected")),
        "actual": _outcome(r.get("actual")),
        "errors": errors,
        "value_verdict": _value_verdict(r),
        "in": " ".join(where), "parts": [(p, None) for p in where],
        "headline": _headline(r, where),
        "gradients": [{"name": name, "verdict": str(g.get("verdict", "?")), "expected": _outcome(g.get("expected")),
                       "actual": _outcome(g.get("actual")), "errors": _errors(g.get("errors"))}
                      for name, g in _gradients(r)],
        "known": _known(r.get("known")),
        "reproducer": str(r["reproducer"]) if r.get("reproducer") else None,
        "seconds": ", ".join(f"{k} {v:.3g} s" for k, v in (r.get("seconds") or {}).items()
                             if isinstance(v, (int, float))),
    }


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
    knobs = [{"name": str(x.get("name", "?")), "a": _value_text(x.get("a")), "b": _value_text(x.get("b")),
              "alone": _percent(x.get("alone")), "share": _percent(x.get("share")),
              "explains": str(x.get("name", "?")) in explaining}
             for x in (differing if isinstance(differing, (list, tuple)) else []) if isinstance(x, Mapping)]
    closed = attribution.get("closed")
    return {"status": str(attribution.get("status") or ""), "knobs": knobs,
            "conventions": explaining,
            "closed": _percent(closed) if closed is not None else None}


def _divergence(d: Mapping) -> dict:
    sides = []
    for s in ("a", "b"):
        side = d.get(s) if isinstance(d.get(s), Mapping) else {}
        sides.append({"binding": str(side.get("binding", "?")), "framework": str(side.get("framework", "?")),
                      "verdict": str(side.get("verdict", "?")), "actual": _outcome(side.get("actual"))})
    comparison = d.get("comparison")
    return {
        "status": str(d.get("status", "unexplained")),
        "spec": str(d.get("spec", "?")), "case_id": str(d.get("case_id", "?")),
        "dtype": str(d.get("dtype", "?")), "mode": str(d.get("mode", "?")), "device": str(d.get("device", "?")),
        "a": sides[0], "b": sides[1],
        "frameworks": " ".join(dict.fromkeys(s["framework"] for s in sides)),
        "verdicts": " ".join(dict.fromkeys(s["verdict"] for s in sides)),
        "comparison": _errors(comparison),
        "reason": str(d.get("reason") or ""),
        "attribution": _attribution(d.get("attribution")),
        "known": [str(k) for k in d.get("known") or []],
    }


# -- numbers and arrays ----------------------------------------------------------------------

def _fmt_scalar(v: Any) -> str:
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
