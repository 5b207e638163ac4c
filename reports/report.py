"""The self-contained HTML report, rendered from the records of a results file alone.

The page reads only records (``lossparity/core/records.py``): no adapter, no framework, no oracle
is imported, so a report can be rebuilt on a machine with none of them installed. It is
one file that loads nothing from anywhere and shows everything with JavaScript off
(``reports/render.py``); records are shown through ``reports/format.py``.

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

import heapq
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lossparity.core.dtypes import DTYPES
from lossparity.core.records import hold, map_batches, whole
from lossparity.core.verdicts import FINDINGS, SILENT, VERDICTS
from lossparity.reports.format import (
    GRADIENTS,
    PARTS,
    badges,
    breakable,
    command,
    finding_in,
    format_divergence,
    format_finding,
    format_known,
    format_known_entry,
    format_shrunk,
    gradients,
    message,
    meta_rows,
    rank,
    value_verdict,
    versions,
)
from lossparity.reports.plots import ErrorPlots
from lossparity.reports.render import render, write_page

#: The verdicts of the detailed blocks: the findings, most severe first, then the others that
#: are not silent (known deviations).
FINDING_ORDER = (*FINDINGS, *(v for v in VERDICTS if v not in FINDINGS and v not in SILENT))
#: Execution modes in the order tables show them; others follow by name.
MODES = ("eager", "function", "function_jit", "jit", "jit_x64", "compile")

#: Findings of one group (spec, binding, verdict, dtype, mode) kept whole while reading, and so
#: shown in full at most; divergences of one group (spec, status, dtype, mode, the two bindings)
#: likewise. The rest of a group is counted only: a file of a million lines holds in memory.
MAX_PER_GROUP = 20
#: Detailed blocks on the page at most (findings and divergences each): when groups are many,
#: every group shows fewer than MAX_PER_GROUP; a group of findings or of unexplained divergences
#: one at least, a group of known results or explained divergences only while there is room
#: (see ``_shown``). A block is 3 to 6 kB: 400 of each keep the page a few MB (600 of each made the
#: default run of 407 bindings a 21.5 MB page, past issue 20's 20 MB).
MAX_DETAILS = 400
#: Result lines per binding x dtype whose arrays feed the error plots: the PLOT_WORST farthest
#: from the oracle (their greatest ``max_ulp``, value or gradient) and PLOT_DRAWN more drawn
#: at random (the smallest CRC-32 of their identity: the same lines whatever the file's order).
#: Only these lines are read with their numbers (``Skimmed.whole``), which is most of a line's
#: parsing: a default run's 212,724 lines take a few seconds, not a minute.
PLOT_WORST = 8
PLOT_DRAWN = 24


def write_report(records: Iterable[dict], path: str | Path) -> Path:
    """Render ``records`` (any iterable, read once: ``iter_records(path)`` streams a file of a
    million lines in bounded memory) and write the page to ``path`` (parents created); return it."""
    return collect(records).write(path)


def render_report(records: Iterable[dict]) -> str:
    """The report page for the parsed lines of one results file (any order; ``meta`` first),
    read once, lazily: ``records`` may be a generator over a file of any length."""
    return collect(records).page()


def collect(records: Iterable[dict], before: int = 0) -> ReportData:
    """The report's data from ``records``, consumed one at a time (see :class:`ReportData`);
    ``before``: how many records of their file come before them (``map_batches``)."""
    collector = ReportData()
    collector.seen = before
    for r in records:
        collector.add(r)
    return collector


def collect_file(path: str | Path, *, workers: int = 1) -> ReportData:
    """The report's data from a results file, every line validated (``iter_records(validate=True)``'s
    errors, the first bad line named), read in batches by ``workers`` processes (``map_batches``),
    each batch's data merged into the file's in file order (:meth:`ReportData.merge`): the same
    data as ``collect(iter_records(path, validate=True, skim=True))``."""
    data = ReportData()
    for part in map_batches(Path(path), collect, validate=True, skim=True, workers=workers):
        data.merge(part)
    return data


class ReportData:
    """The report's data, gathered from records one at a time, in one pass over a results file.

    A tally of the result lines by one tuple each (the tables are folded from it when the page is
    made) and counters for the rest; whole records only for the first MAX_PER_GROUP findings and
    divergences of each group (with each group's count), so memory does not grow with the file.
    """

    def __init__(self) -> None:
        self.meta: dict = {}
        self.summary: dict | None = None
        # (spec, binding, framework, dtype, mode, device, verdict, value verdict, ((gradient,
        # verdict), ...), where a finding lies) -> result lines: one tuple per line, in C; the
        # tables below are folded from it once, when the page is made (``_fold``)
        self.tally: Counter = Counter()
        self.seen = 0  # records of the file read before the next: a line's place, which breaks ties
        # the tables folded from the tally (``_fold``); empty until then, so that a batch's data pickles
        self.counts: Counter = Counter()
        self.matrix: dict[str, dict[str, dict[str, Counter]]] = {}
        self.unsupported: dict[tuple[str, str], dict] = {}
        # group -> [its count, the first records of it]
        self.findings: dict[tuple, list] = {}
        self.divergences: dict[tuple, list] = {}
        self.div_counts: Counter = Counter()
        self.agreements: list[Mapping] = []
        self.shrunk: list[Mapping] = []  # one per group of findings of a batch: the first MAX_DETAILS kept
        self.n_shrunk = 0
        self.frameworks: dict[str, None] = {}
        self.framework_of: dict[str, str] = {}  # binding id -> framework, as the result lines say
        # (spec, binding) -> (dtype, mode, device) -> column ("all", "value", "∂input", "in") -> counts
        self.bindings: dict[tuple[str, str], dict] = {}
        self.gradient_names: dict[str, None] = {}
        self.plotted: Counter = Counter()  # (spec, binding, dtype) -> result lines seen
        # (spec, binding, dtype) -> (the worst lines: heap of (ulp, -key, n, r), the least keys: heap of (-key, -n, r)),
        # n the line's place among the file's records
        self.plot_sample: dict[tuple, tuple[list, list]] = {}
        self.failing = False  # a deviation, error mismatch, crash, timeout or unexplained divergence

    def add(self, r: Any) -> None:
        self.seen += 1
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
            group = (
                str(r.get("spec")),
                status,
                str(r.get("dtype")),
                str(r.get("mode")),
                *(str(side.get("binding")) for side in sides),
            )
            _keep(self.divergences, group, hold(r))
        elif kind == "agreement":
            self.agreements.append(r)  # one per compared pair of bindings: few
        elif kind == "shrunk":
            self.n_shrunk += 1
            if len(self.shrunk) < MAX_DETAILS:
                self.shrunk.append(hold(r))
        elif kind == "meta" and not self.meta:
            self.meta = r
        elif kind == "summary":
            self.summary = r

    def _result(self, r: Mapping) -> None:
        get = r.get
        verdict, spec, binding, fw, dtype, mode, device = (
            x if type(x) is str else str(x)
            for x in (
                get("verdict", "?"),
                get("spec", "?"),
                get("binding", "?"),
                get("framework", "?"),
                get("dtype", "?"),
                get("mode", "?"),
                get("device", "?"),
            )
        )
        self.failing |= verdict in FINDINGS
        grads = gradients(r)
        self.tally[
            spec,
            binding,
            fw,
            dtype,
            mode,
            device,
            verdict,
            value_verdict(r),
            tuple([(name, str(g.get("verdict", "?"))) for name, g in grads]),
            () if verdict in SILENT else tuple(finding_in(r)),
        ] += 1
        series = (spec, binding, dtype)
        self.plotted[series] += 1
        self._sample(series, r, grads)
        if verdict == "unsupported":
            reason = message(r.get("actual"))
            group = self.unsupported.setdefault((fw, reason), {"framework": fw, "reason": reason, "bindings": {}})
            group["bindings"][f"{binding} ({spec})"] = None
        elif verdict != "conform":
            _keep(self.findings, (spec, binding, verdict, dtype, mode), hold(r))

    def _fold(self) -> None:
        """The tables of the result lines (counts, the specs x frameworks matrix, each binding's
        rows, the frameworks in the order the lines name them) from ``tally``, in its order."""
        self.counts, self.matrix = Counter(), defaultdict(lambda: defaultdict(dict))
        self.bindings = defaultdict(lambda: defaultdict(lambda: defaultdict(Counter)))
        self.frameworks, self.framework_of, self.gradient_names = {}, {}, {}
        for (spec, binding, fw, dtype, mode, device, verdict, value, grads, found), n in self.tally.items():
            self.counts[verdict] += n
            self.frameworks.setdefault(fw)
            self.framework_of.setdefault(binding, fw)
            cell = self.matrix[spec][fw]
            (cell.get(binding) or cell.setdefault(binding, Counter()))[verdict] += n
            row = self.bindings[spec, binding][dtype, mode, device]
            row["all"][verdict] += n
            row["value"][value] += n
            for name, g in grads:
                self.gradient_names.setdefault(name)
                row["∂" + name][g] += n
            for part in found:
                row["in"][part] += n

    def _sample(self, series: tuple, r: Mapping, grads: list) -> None:
        """Keep ``r`` for the error plots if it is among the PLOT_WORST farthest from the oracle
        or the PLOT_WORST + PLOT_DRAWN of least key of its series (heaps: a line in, the least kept
        out); ``plots`` draws PLOT_DRAWN of the latter that are not among the former. Ties are
        broken by the line's place, never by comparing records."""
        worst, drawn = self.plot_sample.get(series) or self.plot_sample.setdefault(series, ([], []))
        key = zlib.crc32(f"{r.get('case_id')}|{r.get('mode')}|{r.get('device')}".encode())
        _offer(worst, drawn, (_max_ulp(r, grads), -key, self.seen), r)

    def merge(self, later: ReportData) -> None:
        """Fold in the data of the records that follow this data's in the file (a batch of
        ``map_batches``): the data of the two read one after the other."""
        if not self.meta:
            self.meta = later.meta
        if later.summary is not None:
            self.summary = later.summary
        self.seen = later.seen
        self.failing |= later.failing
        self.tally.update(later.tally)
        self.plotted.update(later.plotted)
        self.div_counts.update(later.div_counts)
        for groups, more in ((self.findings, later.findings), (self.divergences, later.divergences)):
            for group, (count, kept) in more.items():
                entry = groups.get(group) or groups.setdefault(group, [0, []])
                entry[0] += count
                entry[1] += kept[: MAX_PER_GROUP - len(entry[1])]
        for series, (worst, drawn) in later.plot_sample.items():
            mine = self.plot_sample.get(series) or self.plot_sample.setdefault(series, ([], []))
            for ulp, key, n, r in worst:  # each line of the batch was offered to both: each heap once
                _offer(*mine, (ulp, key, n), r, to_drawn=False)
            for key, neg_n, r in drawn:
                _offer(*mine, (0.0, key, -neg_n), r, to_worst=False)
        for where, group in later.unsupported.items():
            mine = self.unsupported.setdefault(where, {**group, "bindings": {}})
            mine["bindings"].update(group["bindings"])
        self.agreements += later.agreements
        self.shrunk += later.shrunk[: MAX_DETAILS - len(self.shrunk)]
        self.n_shrunk += later.n_shrunk

    def plots(self) -> ErrorPlots:
        """The error plots of the sampled lines (``plotted_lines``), read with their numbers."""
        plots = ErrorPlots()
        for series in sorted(self.plot_sample):
            for r in self.plotted_lines(series):
                plots.add(whole(r))
        return plots

    def plotted_lines(self, series: tuple) -> list:
        """The lines of ``series`` (spec, binding, dtype) that its plot draws, in file order: the
        PLOT_WORST farthest from the oracle, and the PLOT_DRAWN of least key of the others."""
        worst, drawn = self.plot_sample.get(series, ([], []))
        chosen = {n: r for _, _, n, r in worst}
        held = {-neg_n: r for _, neg_n, r in drawn}
        others = sorted((-key, n) for key, n in ((key, -neg_n) for key, neg_n, _ in drawn) if n not in chosen)
        chosen.update((n, held[n]) for _, n in others[:PLOT_DRAWN])
        return [chosen[n] for n in sorted(chosen)]

    def page(self) -> str:
        return render("report.html.j2", self.context())

    def write(self, path: str | Path) -> Path:
        """Write the page to ``path`` (parents created); return the path."""
        return write_page(path, self.page())

    def context(self) -> dict:
        self._fold()
        order = {v: i for i, v in enumerate(FINDING_ORDER)}
        findings, finding_groups = _shown(
            self.findings,
            lambda g: (order.get(g[2], len(order)), g[0], g[1], rank(g[3], DTYPES), rank(g[4], MODES)),
            lambda g: g[2] in FINDINGS,
        )
        findings = [whole(r) for r in findings]
        findings.sort(
            key=lambda r: (
                order.get(r.get("verdict"), len(order)),
                str(r.get("spec")),
                str(r.get("binding")),
                str(r.get("dtype")),
                str(r.get("case_id")),
            )
        )
        divergences, divergence_groups = _shown(
            self.divergences, lambda g: (g[1] != "unexplained", *g), lambda g: g[1] == "unexplained"
        )
        divergences = [whole(d) for d in divergences]
        divergences.sort(
            key=lambda d: (
                d.get("status") != "unexplained",
                str(d.get("spec")),
                str(d.get("case_id")),
                str(d.get("dtype")),
            )
        )
        fw_list = list(self.frameworks)
        gradient_columns = sorted(self.gradient_names, key=lambda g: rank(g, GRADIENTS))
        summary, counts = self.summary, self.counts
        plotted = {k: n for k, n in self.plotted.items() if n > PLOT_WORST + PLOT_DRAWN}
        return {
            "meta": meta_rows(self.meta),
            "versions": versions(self.meta),
            "command": command(self.meta),
            "finished": (summary or {}).get("finished"),
            "complete": summary is not None,
            "verdicts": [(v, counts.get(v, 0)) for v in VERDICTS]
            + [(v, n) for v, n in sorted(counts.items()) if v not in VERDICTS],
            "total": sum(counts.values()),
            "rounding": (summary or {}).get("rounding", 0),
            "summary_mismatch": _summary_mismatch(summary, counts),
            "div_counts": {
                "explained": self.div_counts.get("explained", 0),
                "unexplained": self.div_counts.get("unexplained", 0),
            },
            "frameworks": fw_list,
            "matrix": _matrix(self.matrix, fw_list),
            "gradient_columns": gradient_columns,
            "bindings": _binding_rows(
                self.bindings, self.framework_of, fw_list, gradient_columns, self.plots().svgs(), plotted
            ),
            "agreement": agreement_matrices(self.agreements, self.framework_of, fw_list),
            "unsupported": sorted(
                ({**g, "bindings": list(g["bindings"])} for g in self.unsupported.values()),
                key=lambda g: (g["framework"], g["reason"]),
            ),
            "plot_sample": (PLOT_WORST, PLOT_DRAWN),
            "findings": [format_finding(r) for r in findings],
            "n_findings": sum(n for n, _ in self.findings.values()),
            "finding_groups": finding_groups,
            "divergences": [format_divergence(d) for d in divergences],
            "n_divergences": sum(n for n, _ in self.divergences.values()),
            "divergence_groups": divergence_groups,
            "stale": [k for k in map(format_known, (summary or {}).get("stale_known") or []) if k],
            "known_entries": _known_entries((summary or {}).get("known_entries")),
            "filters": _filters(findings, divergences),
            **_attention(self.findings, self.divergences),
            **_shrunk_context(self.shrunk, self.n_shrunk, order),
        }


def _offer(worst: list, drawn: list, entry: tuple, r: Mapping, *, to_worst: bool = True, to_drawn: bool = True) -> None:
    """Offer a line, ``entry`` = (its greatest ULP error, -its key, its place n), to a series'
    plot sample: ``worst`` keeps the PLOT_WORST greatest entries, ``drawn`` the PLOT_WORST +
    PLOT_DRAWN least (key, n) as (-key, -n). A line is held (``hold``), not its record."""
    ulp, key, n = entry
    if to_worst and (len(worst) < PLOT_WORST or entry > worst[0][:3]):
        r = hold(r)
        (heapq.heappush if len(worst) < PLOT_WORST else heapq.heapreplace)(worst, (ulp, key, n, r))
    if to_drawn and (len(drawn) < PLOT_WORST + PLOT_DRAWN or (key, -n) > drawn[0][:2]):
        r = hold(r)
        (heapq.heappush if len(drawn) < PLOT_WORST + PLOT_DRAWN else heapq.heapreplace)(drawn, (key, -n, r))


def _attention(findings: Mapping[tuple, list], divergences: Mapping[tuple, list]) -> dict:
    """What the page opens on: the findings no known deviation explains, by (spec, binding,
    verdict), and the unexplained divergences, by (spec, the two bindings), each with its count,
    most first; the dtypes and modes each group spans."""
    found: dict[tuple, list] = {}
    for (spec, binding, verdict, dtype, mode), (count, _) in findings.items():
        if verdict != "known":
            entry = found.setdefault((spec, binding, verdict), [0, {}, {}])
            entry[0] += count
            entry[1][dtype], entry[2][mode] = None, None
    split: dict[tuple, list] = {}
    for (spec, status, dtype, mode, a, b), (count, _) in divergences.items():
        if status == "unexplained":
            entry = split.setdefault((spec, a, b), [0, {}, {}])
            entry[0] += count
            entry[1][dtype], entry[2][mode] = None, None

    def rows(groups):
        return [
            {"group": g, "count": n, "dtypes": ", ".join(d), "modes": ", ".join(m)}
            for g, (n, d, m) in sorted(groups.items(), key=lambda kv: (-kv[1][0], kv[0]))
        ]

    return {"attention_findings": rows(found), "attention_divergences": rows(split)}


def _shrunk_context(shrunk: list[Mapping], count: int, order: Mapping[str, int]) -> dict:
    """The smallest case of each group of findings (``shrunk`` lines), findings first, as the
    finding blocks are ordered; ``n_shrunk``: how many groups the file holds."""
    rows = sorted(
        map(whole, shrunk),
        key=lambda r: (
            order.get(str(r.get("verdict")), len(order)),
            str(r.get("spec")),
            str(r.get("binding")),
            rank(str(r.get("dtype")), DTYPES),
            rank(str(r.get("mode")), MODES),
        ),
    )
    return {"shrunk": [format_shrunk(r) for r in rows], "n_shrunk": count}


def _known_entries(entries: Any) -> list[dict]:
    """The summary's known deviations, those that explained most first, then the stale ones,
    then those that did not run."""
    rows = [e for e in map(format_known_entry, entries if isinstance(entries, list) else []) if e]
    order = {"used": 0, "stale": 1, "not run": 2}
    return sorted(rows, key=lambda e: (order.get(e["status"], 3), -e["results"], -e["divergences"], e["id"]))


def _max_ulp(r: Mapping, grads: list | None = None) -> float:
    """The greatest ``max_ulp`` of a result's value and gradients (inf where one is not a number);
    ``grads``: ``gradients(r)`` where the caller has it."""
    worst = 0.0
    for errors in [r.get("errors"), *(g.get("errors") for _, g in (gradients(r) if grads is None else grads))]:
        if type(errors) is dict and type(errors.get("max_ulp")) is float:  # nearly every line: no ABC test
            u = errors["max_ulp"]
            worst = max(worst, u if u == u else float("inf"))
        elif isinstance(errors, Mapping) and "max_ulp" in errors:
            u = errors["max_ulp"]
            try:
                u = float(u) if isinstance(u, (int, float)) and not isinstance(u, bool) else float("inf")
            except OverflowError:  # an integer past the float range: as far off as can be
                u = float("inf")
            worst = max(worst, u if u == u else float("inf"))
    return worst


# -- groups: the first few of each, kept whole -----------------------------------------------


def _keep(groups: dict[tuple, list], group: tuple, record: Mapping) -> None:
    """Count ``record`` in its group; keep it whole if the group has fewer than MAX_PER_GROUP."""
    entry = groups.get(group)
    if entry is None:
        groups[group] = [1, [record]]
    else:
        entry[0] += 1
        if len(entry[1]) < MAX_PER_GROUP:
            entry[1].append(record)


def _shown(groups: dict[tuple, list], key, urgent) -> tuple[list[Mapping], list[dict]]:
    """The records to show in full, and every capped group as ``{"group", "shown", "count"}``
    (sorted by ``key``): the first K of each group, K = MAX_PER_GROUP unless the groups are so
    many that MAX_DETAILS blocks would not hold them; then fewer. A group for which ``urgent``
    is true (findings, unexplained divergences) always shows one at least; the others (known
    deviations, explained divergences: what needs no attention) only while the page has room
    for MAX_DETAILS blocks, and are listed with their counts beyond it. A default run's 1,190
    groups of known results and 2,791 of explained divergences, one block each, were 14.7 MB
    of its 38 MB page."""
    per_group = max(1, min(MAX_PER_GROUP, MAX_DETAILS // max(1, len(groups))))
    shown: list[Mapping] = []
    capped = []
    for group in sorted(groups, key=key):
        count, kept = groups[group]
        take = min(per_group, len(kept))
        if not urgent(group):
            take = min(take, max(0, MAX_DETAILS - len(shown)))
        shown += kept[:take]
        if count > take:
            capped.append({"group": group, "shown": take, "count": count})
    return shown, capped


# -- the matrices ----------------------------------------------------------------------------


def _binding_rows(
    bindings: Mapping,
    framework_of: Mapping[str, str],
    frameworks: list[str],
    gradient_columns: list[str],
    plots: Mapping,
    plotted: Mapping = {},
) -> list[dict]:
    """Per binding (by spec, framework, id): a row of verdict counts per dtype x mode x device
    (all, value, each gradient, where the findings lie), and its error plots per dtype;
    ``plotted``: (spec, binding, dtype) -> results, where only a sample of them fed the plot."""
    order = {fw: i for i, fw in enumerate(frameworks)}
    out = []
    for (spec, binding), rows in sorted(
        bindings.items(), key=lambda kv: (kv[0][0], order.get(framework_of.get(kv[0][1]), len(order)), kv[0][1])
    ):
        found: Counter = Counter()
        table = []
        for (dtype, mode, device), c in sorted(
            rows.items(), key=lambda kv: (rank(kv[0][0], DTYPES), rank(kv[0][1], MODES), kv[0][2])
        ):
            found.update(c["in"])
            table.append(
                {
                    "dtype": dtype,
                    "mode": mode,
                    "device": device,
                    "all": badges(c["all"]),
                    "value": badges(c["value"]),
                    "gradients": [badges(c["∂" + g]) for g in gradient_columns],
                    "in": [(p, c["in"][p]) for p in PARTS if c["in"][p]],
                }
            )
        svgs = plots.get((spec, binding), [])
        out.append(
            {
                "spec": spec,
                "binding": breakable(binding),
                "framework": framework_of.get(binding, "?"),
                "rows": table,
                "in": [(p, found[p]) for p in PARTS if found[p]],
                "plots": svgs,
                "plots_capped": [
                    (dtype, plotted[spec, binding, dtype]) for dtype, _ in svgs if (spec, binding, dtype) in plotted
                ],
            }
        )
    return out


def _matrix(matrix: Mapping[str, Mapping[str, Mapping[str, Counter]]], frameworks: list[str]) -> list:
    """Rows (spec, [cell per framework], totals); a cell lists (binding, badges), by binding id."""
    rows = []
    for spec in sorted(matrix):
        cells = [
            [(breakable(b), badges(matrix[spec][fw][b])) for b in sorted(matrix[spec].get(fw, {}))] for fw in frameworks
        ]
        totals: Counter = Counter()
        for by_binding in matrix[spec].values():
            for c in by_binding.values():
                totals.update(c)
        rows.append((breakable(spec), cells, badges(totals)))
    return rows


#: Framework of a binding id by its first dotted component, where no result line says it.
_PREFIX_FRAMEWORK = {"torch": "torch", "tf": "tensorflow", "jax": "jax", "optax": "jax"}
#: A mode agreement's side: one binding in one execution mode, "keras.losses.Huber[jax] [eager]".
_MODE = re.compile(r" \[[^\]]*\]$")
#: A Keras id names its backend, and so its framework column: "keras.losses.Huber[jax]" is "keras[jax]".
_KERAS = re.compile(r"keras\..*\[(\w+)\]")


def _framework(binding: str, framework_of: Mapping[str, str]) -> str:
    """An agreement side's framework: what the result lines of its binding say, else its id."""
    name = _MODE.sub("", binding)
    for fw in (framework_of.get(binding), framework_of.get(name)):
        if fw and fw != "?":
            return fw
    keras = _KERAS.fullmatch(name)
    return f"keras[{keras.group(1)}]" if keras else _PREFIX_FRAMEWORK.get(name.split(".", 1)[0], "")


def _count(v: Any) -> int:
    """A count from a record: a non-negative int, anything else 0 (a broken line must not raise)."""
    if isinstance(v, bool):
        return 0
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v if isinstance(v, int) and v >= 0 else 0


def agreement_matrices(
    agreements: Iterable[Mapping], framework_of: Mapping[str, str] | None = None, framework_order: Iterable[str] = ()
) -> list[dict]:
    """Who agrees with whom: per spec, a symmetric bindings x bindings matrix of agreement records.

    Each spec gives ``{"spec", "groups": [(framework, n bindings)], "bindings": [(id, framework)],
    "rows": [(id, [cell per column])]}``, bindings grouped by framework (the frameworks in
    ``framework_order`` first, in that order, then the others by name; bindings whose framework
    is unknown last) and sorted by id within; ``groups`` is empty when no framework is known.
    A binding's framework is what ``framework_of`` (the result lines) says of it (of a mode
    agreement's "torch.nn.L1Loss [eager]", of torch.nn.L1Loss), else its id: a Keras id names its
    backend (``keras[jax]``), others their framework's module. A cell is ``{"kind", "text", "unexplained",
    "title"}`` where kind is ``self`` (the diagonal), ``none`` (no record: not compared),
    ``agree`` (no disagreement on any compared case), ``explained`` (every disagreement
    explained) or ``unexplained``; ``text`` is ``"disagreeing / compared"``. One record
    fills both halves; several records for one pair (either order) add up.
    """
    framework_of = framework_of or {}
    order = {fw: i for i, fw in enumerate(dict.fromkeys(framework_order))}
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
        ids = sorted(members[spec], key=lambda b: (fws[b] == "", order.get(fws[b], len(order)), fws[b], b))
        groups = [(fw, sum(1 for b in ids if fws[b] == fw)) for fw in dict.fromkeys(fws[b] for b in ids)]
        rows = [
            (breakable(row), [_agreement_cell(row, col, pairs[spec].get(frozenset((row, col)))) for col in ids])
            for row in ids
        ]
        out.append(
            {
                "spec": spec,
                "groups": groups if any(fw for fw, _ in groups) else [],
                "bindings": [(breakable(b), fws[b]) for b in ids],
                "rows": rows,
            }
        )
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
        return {
            "kind": "agree",
            "text": "=",
            "unexplained": 0,
            "title": f"{who} agree on all {compared} compared case{'s' * (compared != 1)}",
        }
    return {
        "kind": "unexplained" if unexplained else "explained",
        "text": f"{disagree} / {compared}",
        "unexplained": unexplained,
        "title": f"{who} disagree on {disagree} of {compared} compared case{'s' * (compared != 1)}: "
        f"{explained} explained, {unexplained} unexplained",
    }


# -- the filters and the summary line -------------------------------------------------------

#: The report's filters: (name of the blocks' data- attribute, label, order of its values).
_FILTERS = (
    ("framework", "framework", ()),
    ("spec", "spec", ()),
    ("verdict", "verdict", FINDING_ORDER + SILENT),
    ("dtype", "dtype", DTYPES),
    ("mode", "mode", MODES),
    ("device", "device", ("cpu", "cuda")),
    ("in", "finding in", PARTS),
)


def _filters(findings: list[dict], divergences: list[dict]) -> list[tuple[str, str, list[str]]]:
    """(name, label, values) of each filter menu: the values of the blocks they filter, nothing else."""
    seen: dict[str, set[str]] = {name: set() for name, _, _ in _FILTERS}
    for r in findings:
        for k in ("framework", "spec", "verdict", "dtype", "mode", "device"):
            seen[k].add(str(r.get(k)))
        seen["in"].update(finding_in(r))
    for d in divergences:
        for k in ("spec", "dtype", "mode", "device"):
            seen[k].add(str(d.get(k)))
        seen["in"].add("value")  # a divergence is two bindings' values disagreeing
        for side in (d.get("a"), d.get("b")):
            if isinstance(side, Mapping):
                seen["framework"].add(str(side.get("framework")))
                seen["verdict"].add(str(side.get("verdict")))
    return [
        (name, label, sorted(seen[name] - {"None"}, key=lambda v: rank(v, values))) for name, label, values in _FILTERS
    ] + [("status", "divergence", ["explained", "unexplained"])]


def _summary_mismatch(summary: dict | None, counts: Counter) -> str | None:
    """A note when the run's own summary line disagrees with the result lines in the file."""
    if not summary or not isinstance(summary.get("counts"), dict):
        return None
    said = {k: v for k, v in summary["counts"].items() if v}
    if said == {k: v for k, v in counts.items() if v}:
        return None
    return ", ".join(f"{k}: {v}" for k, v in said.items())
