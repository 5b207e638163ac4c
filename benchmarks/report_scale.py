"""How long ``lossparity report`` takes on a big results file, and how much memory and page it makes.

Targets (issue 20): 1,000,000 lines in 30 s or less, peak RSS 2 GiB or less, a page of 20 MB or
less, with lines as large as a real run's. ``lossparity report`` reads with every core (``-j
auto``): the CPU time printed is its processes' together (``wait4`` counts the workers it waited
for), the peak RSS its largest process's. Usage::

    .venv/bin/python benchmarks/report_scale.py [--lines N] [--keep] [--source FILE] [--every K]

The results file is built from a real run's own lines (``--source``, default
/tmp/full9/results.jsonl, the default run's results): every K-th line of it (``--every``,
default 10: a sample of each kind of line, verdict, spec, binding, dtype and mode as often as
the run has them, at their real sizes) is repeated until the file has N lines, each copy's case
ids made its own (``r<copy>-`` before each ``"case_id"``), between the run's meta line and a
summary whose counts are the copies'. The lines are written as ``lossparity run`` writes them
(``ResultsWriter``: gzip, a flush per batch), so the report reads what it reads from a run.
Everything generated lives under /tmp; ``--keep`` keeps the results file and the page (a later
run with the same N reuses the file).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lossparity.core.records import ResultsWriter, json_line, raw_lines  # noqa: E402

WORK = Path("/tmp/lossparity_report_scale")
SOURCE = Path("/tmp/full9/results.jsonl")


def sample(source: Path, every: int) -> tuple[dict, list[bytes], dict | None]:
    """(the run's meta line, every ``every``-th of its other lines as written, its summary line)."""
    meta, lines, summary = None, [], None
    for i, line in enumerate(raw_lines(source)):
        if not line.strip():
            continue
        if meta is None:
            meta = orjson.loads(line)
        elif line.startswith(b'{"kind":"summary"'):
            summary = orjson.loads(line)
        elif i % every == 0:
            lines.append(line)
    if meta is None or not lines:
        raise SystemExit(f"{source}: no lines to sample")
    return meta, lines, summary


def make_results(path: Path, n_lines: int, source: Path, every: int) -> Counter:
    """Write a results file of ``n_lines`` lines built from ``source``'s; return the count of
    each kind of line (results by verdict, divergences by status)."""
    meta, lines, summary = sample(source, every)
    if n_lines - 2 < len(lines):  # fewer lines than the sample: every few of it, not its beginning
        lines = lines[:: -(-len(lines) // max(1, n_lines - 2))]
    kinds = []
    for line in lines:
        r = orjson.loads(line)
        kinds.append(
            (
                r["kind"],
                r.get("verdict") if r["kind"] == "result" else r.get("status") if r["kind"] == "divergence" else "",
            )
        )
    counts: Counter = Counter()
    writer = ResultsWriter(path)
    try:
        writer.write_lines(json_line({**meta, "command": "benchmarks/report_scale.py"}))
        batch: list[bytes] = []
        for i in range(n_lines - 2):  # the meta and summary lines
            k = i % len(lines)
            copy = i // len(lines)
            line = lines[k] if copy == 0 else lines[k].replace(b'"case_id":"', b'"case_id":"r%d-' % copy)
            batch.append(line)
            counts[kinds[k]] += 1
            if len(batch) == 512:  # as a run's workers write: a flush per batch
                writer.write_lines(b"\n".join(batch).decode())
                batch = []
        if batch:
            writer.write_lines(b"\n".join(batch).decode())
        tail = dict(summary or {"kind": "summary"})
        tail["counts"] = {v: n for (kind, v), n in sorted(counts.items()) if kind == "result"}
        tail["divergences"] = {v: n for (kind, v), n in sorted(counts.items()) if kind == "divergence"}
        writer.write_lines(json_line(tail))
    finally:
        writer.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines of the results file (default 1,000,000)")
    ap.add_argument("--keep", action="store_true", help="keep the results file and the page under " + str(WORK))
    ap.add_argument("--source", type=Path, default=SOURCE, help=f"the real run's results to sample (default {SOURCE})")
    ap.add_argument("--every", type=int, default=10, help="sample every K-th line of the source (default 10)")
    args = ap.parse_args(argv)

    results, page = WORK / f"results-{args.lines}.jsonl", WORK / f"report-{args.lines}.html"
    if results.is_file():
        print(f"reusing {results}")
    else:
        t0 = time.perf_counter()
        counts = make_results(results, args.lines, args.source, args.every)
        mean = sum(len(x) + 1 for x in raw_lines(results)) / args.lines
        print(
            f"wrote {results}: {args.lines} lines of {mean:,.0f} bytes on average, "
            f"{results.stat().st_size / 1e6:.0f} MB compressed, {time.perf_counter() - t0:.1f} s; "
            + ", ".join(f"{' '.join(filter(None, k))} {v}" for k, v in sorted(counts.items()))
        )
    try:
        t0 = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "lossparity", "report", str(results), "-o", str(page)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        stderr = child.stderr.read()
        # wait4: the peak RSS and CPU time of this child alone
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
        returncode = os.waitstatus_to_exitcode(status)
        peak = usage.ru_maxrss * 1024  # KiB on Linux
        if returncode not in (0, 1):
            print(stderr.decode(errors="replace")[-2000:], file=sys.stderr)
            print(f"lossparity report failed: exit {returncode}")
            return 1
        size = page.stat().st_size
        print(
            f"lossparity report: {args.lines} lines in {wall:.1f} s wall, {usage.ru_utime + usage.ru_stime:.1f} s CPU "
            f"(user+sys), peak RSS {peak / 2**30:.2f} GiB (largest process), "
            f"page {size / 1e6:.1f} MB (exit {returncode})"
        )
        ok = wall <= 30 and peak <= 2 * 2**30 and size <= 20e6
        print("targets (30 s, 2 GiB, 20 MB): " + ("met" if ok else "NOT met"))
        return 0 if ok else 1
    finally:
        if not args.keep:
            for p in (results, page):
                if p.exists():
                    os.unlink(p)


if __name__ == "__main__":
    sys.exit(main())
