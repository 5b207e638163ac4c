"""The lossparity pytest plugin (entry point ``pytest11``).

Inert unless the conformance suite is collected. Options live in the ``lossparity`` group.
Each test's verdict travels in its report's ``user_properties``; only the controlling
process (never an xdist worker) writes ``results.jsonl`` line by line, and at session end
finds divergences, stale known deviations, writes the summary line and renders the report
once.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
import time
import zlib
from collections import Counter
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from lossparity import __version__
from lossparity.conformance import options

SUITE = "lossparity.conformance.suite"


def pytest_addoption(parser):
    group = parser.getgroup("lossparity", "lossparity conformance suite")
    for option in options.OPTIONS:  # lossparity run's options come from the same table
        if option.lp:
            option.add_to_pytest(group)


def _selection(config):
    return options.selection(options.of_pytest(config))


class LpItem:
    """One binding's cases in one dtype, each in every mode of the run (``units``: (case,
    mode) pairs, case by case), or one unavailable binding. ``run()`` gives the results as
    (JSON line, verdict) pairs.

    One test per binding and dtype, not per case: a case costs a framework microseconds to
    milliseconds, a pytest item and its report about as much again. The cases of an item run
    in one request to the sandbox's child, which computes each case's oracle once for all its
    modes and streams the lines back."""

    def __init__(self, binding, spec=None, dtype=None, units=(), selection=None, unavailable=None, known=()):
        self.binding, self.spec, self.dtype, self.units = binding, spec, dtype, list(units)
        self.selection, self.unavailable, self.known = selection, unavailable, known

    def run(self) -> list[tuple[str, str]]:
        """The results as (JSON line, verdict) pairs, then (unless ``--lp-no-shrink``) the
        ``shrunk`` lines of the batch's groups of findings, as (JSON line, ``"shrunk"``)."""
        from lossparity.conformance import sandbox
        from lossparity.conformance.runner import unsupported_record
        from lossparity.core.records import json_line

        if self.unavailable:
            return [(json_line(unsupported_record(self.binding, self.unavailable)), "unsupported")]
        device, tf32 = self.selection.device, self.selection.tf32
        started = time.perf_counter()
        if _ISOLATED:
            lines = list(
                sandbox.run_batch(
                    self.binding, self.spec, self.dtype, self.units, device=device, tf32=tf32, known=self.known
                )
            )
        else:
            lines = self._in_process(device, tf32)
        if _SHRINK:
            lines += self.shrink(lines, time.perf_counter() - started)
        return lines

    def shrink(self, lines: list[tuple[str, str]], seconds: float) -> list[tuple[str, str]]:
        """The ``shrunk`` lines of this batch's groups of findings (``conformance/shrink.py``),
        marked ``"shrunk"``, and the result lines of findings met while shrinking; each step runs
        where the batch ran (the sandbox's child, or this process). ``seconds``: the batch's time,
        added to what this process's shrinking may take a share of."""
        import json

        from lossparity.conformance import sandbox, shrink
        from lossparity.conformance.registry import adapter_for
        from lossparity.conformance.runner import evaluate
        from lossparity.core.records import json_line

        shrink.BUDGET.ran += seconds
        findings = [json.loads(line) for line, verdict in lines if verdict in shrink.BUDGET.verdicts()]
        if not findings:
            return []
        device, tf32 = self.selection.device, self.selection.tf32

        def judge(case, mode):
            if _ISOLATED:
                got = list(
                    sandbox.run_batch(
                        self.binding, self.spec, self.dtype, [(case, mode)], device=device, tf32=tf32,
                        known=self.known, keep=True,
                    )
                )  # fmt: skip
                return json.loads(got[0][0]) if got else None
            adapter = adapter_for(self.binding.framework)
            return evaluate(
                adapter, self.binding, self.spec, case, self.dtype, mode=mode, device=device, known=self.known
            )

        out = shrink.shrink_batch(
            self.binding, self.spec, self.dtype, self.units, findings, judge, timeout_s=sandbox._LIMITS[0]
        )
        return [(json_line(r), "shrunk" if r["kind"] == "shrunk" else r["verdict"]) for r in out]

    def _in_process(self, device, tf32) -> list[tuple[str, str]]:
        from lossparity.conformance.registry import adapter_for
        from lossparity.conformance.runner import evaluate
        from lossparity.core.records import json_line

        adapter = adapter_for(self.binding.framework)
        adapter.use(device, tf32)
        oracle: dict = {}
        records = (
            evaluate(
                adapter,
                self.binding,
                self.spec,
                case,
                self.dtype,
                mode=mode,
                device=device,
                known=self.known,
                oracle=oracle,
            )
            for case, mode in self.units
        )
        lines = [(json_line(r), r["verdict"]) for r in records if r is not None]
        adapter.release()
        return lines

    @property
    def id(self):
        if self.unavailable:
            return f"{self.binding.spec}/{self.binding.id}/unavailable"
        return f"{self.spec.name}/{self.binding.id}/{self.dtype}"


def pytest_generate_tests(metafunc):
    if "lp_item" not in metafunc.fixturenames:
        return
    from lossparity.conformance import pairs
    from lossparity.conformance.known import KnownError, load_known
    from lossparity.conformance.registry import adapter_for
    from lossparity.conformance.specs import SPECS

    values = options.of_pytest(metafunc.config)
    selection = options.selection(values).validate()
    worker = getattr(metafunc.config, "workerinput", None)
    if worker:  # each worker collects every binding: the workers draw the specs' cases between them
        selection.prefetch(int(worker["workerid"].removeprefix("gw")), worker["workercount"])
    try:
        known = tuple(load_known(values.known))
    except KnownError as exc:
        raise pytest.UsageError(str(exc)) from None
    items = []
    finished = _finished(metafunc.config)
    case_globs = values.cases
    for binding in selection.bindings():
        adapter = adapter_for(binding.framework)
        reason = adapter.unavailable() or _cannot_run(adapter, binding, selection)
        if reason:
            items.append(LpItem(binding, unavailable=reason))
            continue
        spec = SPECS[binding.spec]
        # its own cases, and those derived from a paired spec's (common ground: ``pairs.py``)
        cases = [*selection.cases_for(binding), *pairs.cases_for(selection, binding, spec)]
        taken = [c for c in cases if not case_globs or any(fnmatchcase(c.id, g) for g in case_globs)]
        modes = selection.modes_of(adapter)
        for dtype in selection.dtypes:
            if dtype not in binding.dtypes:
                continue
            units = [
                (case, mode)
                for case in taken
                if not case.dtypes or dtype in case.dtypes
                for mode in modes
                if (spec.name, binding.id, dtype, selection.device, mode, case.id) not in finished
            ]
            if units:
                items.append(LpItem(binding, spec, dtype, units, selection, known=known))
    workers = getattr(metafunc.config, "workerinput", {}).get("workercount", 1)
    params = [pytest.param(i, id=i.id, marks=_group_mark(i, workers)) for i in items]
    metafunc.parametrize("lp_item", params)


#: Groups per (compiler, dtype) are split in this many parts per this many workers (below).
_GROUPS_PER_WORKERS = 8


def _group(item: LpItem, workers: int) -> str | None:
    """The xdist group of an item (``lossparity run`` distributes with ``--dist loadgroup``):
    the bindings of one compiler (``FrameworkAdapter.compiler``) in one dtype run on one worker,
    so that what one binding compiled (eager JAX: each primitive per shape and dtype, in memory
    and in JAX's persistent cache) is there for the next, and no two workers compile the same
    executables at the same time. None (no group: any worker) for a framework that compiles
    nothing, or an unavailable binding.

    Measured (jax and keras[jax], 8 specs, float32 and float16, -n 2, cache empty): the same
    results, and about as many compilations as the default distribution (4,150 against 4,005;
    jit's exactly as many): what compiles is each binding's own functions at its spec's shapes
    and each edge row's, which no schedule shares; only shared shapes would.

    The dtype is the one the framework holds the arrays in, in its first mode
    (``FrameworkAdapter.held_dtype``): JAX without x64 holds float64 as float32, so a float64 batch
    of eager JAX or Keras on JAX computes on the float32 batch's shapes and dtype, and in the same
    process it compiles next to nothing (in /tmp/full10, eager float64 compiled 3,316 primitives for
    optax and 3,645 for Keras on JAX, each on its own worker).

    Compilers and dtypes make up to 8 groups; on more than 8 workers each is split by spec (a spec's
    bindings share its cases' shapes) into ``ceil(workers / 8)`` parts, so every worker has one."""
    from lossparity.conformance.registry import adapter_for

    if item.unavailable:
        return None
    adapter = adapter_for(item.binding.framework)
    if adapter.compiler is None:
        return None
    parts = -(-workers // _GROUPS_PER_WORKERS)
    part = f"-{zlib.crc32(item.spec.name.encode()) % parts}" if parts > 1 else ""
    return f"{adapter.compiler}-{adapter.held_dtype(item.dtype, adapter.modes[0])}{part}"


def _group_mark(item: LpItem, workers: int) -> tuple:
    group = _group(item, workers)
    return (pytest.mark.xdist_group(group),) if group else ()


def _cannot_run(adapter, binding, selection) -> str | None:
    """Why the installed framework cannot run the binding on the selected device, or None."""
    if _ISOLATED:
        from lossparity.conformance import sandbox

        return sandbox.missing(binding, selection.device, selection.tf32)
    adapter.use(selection.device, selection.tf32)
    return adapter.device_unavailable() or adapter.missing(binding)


def _finished(config) -> set[tuple]:
    """With ``--lp-resume``, the keys of the cases the results file already has."""
    out = config.getoption("lp_out", None)
    if not (out and config.getoption("lp_resume", False)):
        return set()
    from lossparity.conformance.resume import done
    from lossparity.core.records import read_records

    return done([r for r in read_records(Path(out) / "results.jsonl", validate=False) if r.get("kind") == "result"])


def run_meta(selection, command: str) -> dict:
    """The meta line of a run of this selection in this environment."""
    from lossparity.conformance.registry import adapter_modules
    from lossparity.core.records import SCHEMA_VERSION

    versions = {"lossparity": __version__, "numpy": __import__("numpy").__version__}
    for name, module in adapter_modules().items():
        if selection.takes(name) and not module.ADAPTER.unavailable():
            versions.update(module.ADAPTER.versions())
    return {
        "kind": "meta",
        "schema": SCHEMA_VERSION,
        "lossparity": __version__,
        "versions": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": selection.device,
        "tf32": selection.tf32,
        "seed": selection.seed,
        "examples": selection.examples,
        "dtypes": list(selection.dtypes),
        "modes": list(selection.modes or []),
        "frameworks": list(selection.frameworks or []),
        "losses": list(selection.losses or []),
        "command": command,
        "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


class Recorder:
    """Controller-side: writes lines as reports arrive, finishes the run at session end."""

    def __init__(self, config, out: Path):
        from lossparity.conformance.known import KnownError, load_known
        from lossparity.core.records import ResultsWriter

        self.config, self.out = config, out
        self.started = time.monotonic()  # the run's time, of which shrinking divergences takes a share
        try:  # checked before anything runs: a bad entry is a usage error, not a failed run
            self.known = tuple(load_known(options.of_pytest(config).known))  # a tuple: match memoizes by place
        except KnownError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.summary: dict | None = None
        self.findings: Counter = Counter()
        path = out / "results.jsonl"
        if config.getoption("lp_resume"):
            from lossparity.conformance.resume import load
            from lossparity.core.records import write_all

            meta, results = load(path, self.meta())
            partial = path.with_name(path.name + ".resuming")
            write_all(partial, [meta, *results])  # the conclusions go: they are recomputed
            os.replace(partial, path)
            self.writer, self.resumed = ResultsWriter(path, append=True), len(results)
        else:
            self.writer, self.resumed = ResultsWriter(path), None

    def shrink_divergences(self, path: Path, lines: list[dict]) -> list[dict]:
        """The ``shrunk`` lines of the run's unexplained divergences between two bindings
        (``shrink.shrink_divergences``), each step a one-case batch of each side in its sandbox
        child (or in this process), within what is left of the run's time share."""
        import json

        from lossparity.conformance import sandbox, shrink
        from lossparity.conformance.registry import adapter_for
        from lossparity.conformance.runner import evaluate
        from lossparity.conformance.specs import SPECS

        selection = _selection(self.config)
        device, tf32 = selection.device, selection.tf32

        def judge(binding, case, dtype, mode):
            spec = SPECS[binding.spec]
            if _ISOLATED:
                got = list(
                    sandbox.run_batch(
                        binding, spec, dtype, [(case, mode)], device=device, tf32=tf32, known=self.known, keep=True
                    )
                )
                return json.loads(got[0][0]) if got else None
            adapter = adapter_for(binding.framework)
            adapter.use(device, tf32)
            return evaluate(adapter, binding, spec, case, dtype, mode=mode, device=device, known=self.known)

        budget = shrink.Budget(steps=shrink.BUDGET.steps, ran=time.monotonic() - self.started)
        divergences = [r for r in lines if r.get("kind") == "divergence"]
        return shrink.shrink_divergences(path, divergences, judge, budget=budget)

    def meta(self) -> dict:
        return run_meta(_selection(self.config), self.config.getoption("lp_command") or " ".join(sys.argv))

    def finish(self) -> dict:
        """Conclusions from the results file (read back, not held: a run's results can be
        larger than the memory the controller should take), then the report."""
        from lossparity.conformance.conclude import conclude_file
        from lossparity.core.records import iter_records
        from lossparity.reports.report import write_report

        path = self.out / "results.jsonl"
        lines, self.summary, self.findings = conclude_file(path, self.known)
        for record in lines:
            self.writer.write(record)
        if _SHRINK:
            for record in self.shrink_divergences(path, lines):
                self.writer.write(record)
        self.writer.write(self.summary)
        self.writer.close()
        write_report(iter_records(path), self.out / "report.html")
        return self.summary

    # -- hooks (this object is registered as a plugin on the controller) ----------------
    def pytest_sessionstart(self, session):
        if self.resumed is None:
            self.writer.write(self.meta())

    def pytest_runtest_logreport(self, report):
        if report.when == "call":
            for name, value in report.user_properties:
                if name == "lossparity":
                    self.writer.write_lines(value)

    def pytest_sessionfinish(self, session, exitstatus):
        summary = self.finish()
        if summary["divergences"].get("unexplained") and session.exitstatus == 0:
            session.exitstatus = 1

    def pytest_terminal_summary(self, terminalreporter):
        if self.summary is None:
            return
        s, tr = self.summary, terminalreporter
        tr.section("lossparity")
        from lossparity.core.verdicts import VERDICTS

        tr.write_line("verdicts:    " + "  ".join(f"{v} {s['counts'].get(v, 0)}" for v in VERDICTS))
        if s.get("rounding"):
            tr.write_line(f"             ({s['rounding']} of the conforming within their declared rounding model)")
        d = s["divergences"]
        tr.write_line(
            f"divergences: {d.get('explained', 0)} explained ({d.get('by_conventions', 0)} by "
            f"conventions, {d.get('by_rounding', 0)} by rounding, {d.get('by_known', 0)} by known deviations), "
            f"{d.get('unexplained', 0)} unexplained"
        )
        findings = self.findings
        shown = sorted(findings.items())[:15]
        width = max([15] + [len(finding) for (_, _, finding), _ in shown])  # "crash, not reproduced alone"
        for (spec, binding, finding), n in shown:
            tr.write_line(f"  {finding:<{width}} {n:>4}  {binding}  [{spec}]")
        if len(findings) > 15:
            tr.write_line(f"  ... and {len(findings) - 15} more groups in the report")
        self._known_summary(tr, s.get("known_entries") or [])
        if s["stale_known"]:
            tr.write_line("stale known deviations: " + ", ".join(k["id"] for k in s["stale_known"]))
        tr.write_line(f"results: {self.out / 'results.jsonl'}")
        tr.write_line(f"report:  {self.out / 'report.html'}")

    @staticmethod
    def _known_summary(tr, entries: list[dict]) -> None:
        """How many known deviations were used, stale or not run; then, for each one used, the
        results it made known (and those it explained only some parts of) and the divergences
        it explained, most first."""
        used = [e for e in entries if e["status"] == "used"]
        standing = Counter(e["status"] for e in entries)
        tr.write_line(
            f"known deviations: {standing['used']} used, {standing['stale']} stale, "
            f"{standing['not run']} not run (of {len(entries)} entries)"
        )
        for e in sorted(used, key=lambda e: (-e["results"], -e["divergences"], e["id"])):
            partly = f" (+{e['partly']} in part)" if e["partly"] else ""
            tr.write_line(f"  {e['results']:>6} results{partly}  {e['divergences']:>5} divergences  {e['id']}")


#: Whether framework calls run in the sandbox's child process (``--lp-isolation``); set per
#: test process by ``pytest_configure``.
_ISOLATED = True
#: Whether each batch's groups of findings are shrunk (not ``--lp-no-shrink``, steps > 0); likewise.
_SHRINK = True


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    global _ISOLATED, _SHRINK
    _ISOLATED = config.getoption("lp_isolation", "process") == "process"
    values = options.of_pytest(config)
    _SHRINK = not values.no_shrink and values.shrink_steps > 0
    if _SHRINK:
        from lossparity.conformance import shrink

        # this test process's own share
        shrink.BUDGET = shrink.Budget(steps=values.shrink_steps, known=values.shrink_known)
    if _ISOLATED:
        from lossparity.conformance import sandbox

        sandbox.configure(values.timeout, values.memory_limit)
    out = config.getoption("lp_out", None)
    if out and not hasattr(config, "workerinput"):  # never on an xdist worker
        config.pluginmanager.register(Recorder(config, Path(out)), "lossparity-recorder")


def pytest_unconfigure(config):
    from lossparity.conformance import sandbox

    sandbox.shutdown()
