"""How long ``lossparity report`` takes on a big results file, and how much memory and page it makes.

Targets (issue 7): 1,000,000 lines in 30 s or less, peak RSS 2 GiB or less, a page of 20 MB or
less. Usage::

    .venv/bin/python benchmarks/report_scale.py [--lines N] [--keep] [--seed-run DIR]

The results file is made from a small real run (``--seed-run``, default /tmp/rep_seed; made with
``lossparity run --frameworks torch --losses softmax_cross_entropy,binary_cross_entropy --dtypes
float32 --examples 20 --out /tmp/rep_seed`` when missing): its result lines are replicated with
new case ids, bindings spread over a few aliases, modes and dtypes, and a realistic mix of
verdicts (mostly conform, a few percent findings, a few divergences between bindings), then
agreement lines and a summary. Everything generated lives under /tmp; ``--keep`` keeps the
results file and the page (a later run with the same N reuses the file).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' record builders: one home for fake records

from fake_records import agreement, divergence, summary  # noqa: E402

WORK = Path("/tmp/lossparity_report_scale")
SEED_COMMAND = [
    "run",
    "--frameworks",
    "torch",
    "--losses",
    "softmax_cross_entropy,binary_cross_entropy",
    "--dtypes",
    "float32",
    "--examples",
    "20",
]

#: Out of 1000 result lines: how many have each verdict (the rest conform): about 3% findings,
#: as a run over many frameworks shows. Known ones are the seed run's own.
MIX = (("deviate", 15), ("error_mismatch", 5), ("crash", 3), ("timeout", 1), ("known", 6), ("unsupported", 6))
#: Out of 1000 result lines: how often a divergence line follows.
DIVERGENCE_PER_MILLE = 5
#: Every binding of the seed run also appears under these prefixes (as if more bindings ran).
ALIASES = ("", "alias1.", "alias2.", "alias3.", "alias4.", "alias5.", "alias6.", "alias7.")
MODES = ("eager", "eager", "eager", "compile")
DTYPES = ("float32", "float32", "float64", "float16")


def dumps(record: dict) -> bytes:
    """One line as ``ResultsWriter`` writes it (json's float spelling, e.g. 9.1e-05, not orjson's)."""
    return json.dumps(record, allow_nan=False, separators=(",", ":")).encode() + b"\n"


def seed_records(seed_run: Path) -> tuple[dict, list[dict]]:
    results = seed_run / "results.jsonl"
    if not results.is_file():
        print(f"making the seed run in {seed_run} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "lossparity", *SEED_COMMAND, "--out", str(seed_run)],
            cwd=ROOT,
            check=False,
            stdout=subprocess.DEVNULL,
        )
    lines = [orjson.loads(line) for line in results.read_bytes().splitlines() if line.strip()]
    meta = next(r for r in lines if r["kind"] == "meta")
    return meta, [r for r in lines if r["kind"] == "result"]


def as_verdict(r: dict, verdict: str) -> dict:
    """A copy of a conforming result line turned into a finding of ``verdict``, shaped as the suite
    writes one (error figures, the actual outcome, a reproducer)."""
    r = copy.deepcopy(r)
    r["verdict"] = verdict
    r["reproducer"] = f"import torch\n# {r['binding']} on {r['case_id']}\nprint(torch.__version__)\n"
    if verdict == "deviate" and isinstance((r.get("actual") or {}).get("value"), dict):
        v = r["actual"]["value"]
        v["data"] = [x * 1.01 + 1e-3 if isinstance(x, float) else x for x in v["data"]]
        r["value_verdict"] = "deviate"
        r["errors"] = {
            **(r.get("errors") or {}),
            "ok": False,
            "mismatched": 1,
            "total": len(v["data"]),
            "max_abs": 1e-3,
            "max_rel": 0.01,
            "max_ulp": 80000.0,
            "summary": f"Mismatched elements: 1 / {len(v['data'])}\nGreatest absolute difference: 0.001",
        }
    elif verdict in ("error_mismatch", "crash", "timeout"):
        error = {"error_mismatch": "ValueError", "crash": "Segfault", "timeout": "Timeout"}[verdict]
        r["actual"] = {"error": error, "message": f"{error.lower()} in {r['binding']}", "classes": [error]}
        r["value_verdict"] = verdict
        r["errors"] = {"summary": f"expected a value; raised {error}"}
        r["gradients"] = None
    elif verdict == "unsupported":
        r.update(
            actual={"error": "unsupported", "message": "float16 is not supported on cpu"},
            expected=None,
            errors=None,
            gradients=None,
            value_verdict="unsupported",
            reproducer=None,
        )
    return r


def divergence_of(a: dict, b: dict) -> dict:
    """A divergence of two result lines, a quarter of them unexplained."""
    status = "unexplained" if hash((a["case_id"], b["binding"])) % 4 == 0 else "explained"
    return divergence(
        a,
        b,
        status=status,
        comparison={
            "ok": False,
            "mismatched": 1,
            "total": 1,
            "max_abs": 0.01,
            "max_rel": 0.02,
            "max_ulp": 1e5,
            "index": [],
            "summary": "Mismatched elements: 1 / 1",
        },
        attribution={
            "status": status,
            "differing": [{"name": "log_min", "a": None, "b": -100.0, "alone": 1.0, "share": 1.0}],
            "conventions": [] if status == "unexplained" else ["log_min"],
            "closed": 1.0,
        },
        reason="explained by log_min" if status == "explained" else "no declared difference explains it",
    )


def make_results(path: Path, n_lines: int, seed_run: Path) -> Counter:
    """Write a results file of ``n_lines`` lines; return the count of each verdict written."""
    meta, seeds = seed_records(seed_run)
    conform = [r for r in seeds if r["verdict"] == "conform"]
    variants = {v: [as_verdict(r, v) for r in conform] for v, _ in MIX if v != "known"}
    variants["known"] = [r for r in seeds if r["verdict"] == "known"] or conform
    variants[None] = seeds = conform
    schedule = [v for v, n in MIX for _ in range(n)]
    counts: Counter = Counter()
    agreements: Counter = Counter()
    n_results = max(0, n_lines - 1 - 1 - 2 * len(ALIASES))  # meta, summary, agreement lines
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 1
    with open(path, "wb", buffering=1 << 22) as fh:
        fh.write(dumps({**meta, "command": "benchmarks/report_scale.py", "examples": n_results}))
        for i in range(n_results):
            if written >= n_lines - 1 - 2 * len(ALIASES):
                break
            k = i % len(seeds)
            slot = (i * 7919) % 1000  # spread the findings through the file
            verdict = schedule[slot] if slot < len(schedule) else None
            base = variants[verdict][k % len(variants[verdict])]
            alias = ALIASES[(i // len(seeds)) % len(ALIASES)]
            r = dict(
                base,
                case_id=f"{base['case_id']}-{i}",
                binding=alias + base["binding"],
                mode=MODES[i % len(MODES)],
                dtype=DTYPES[(i // 3) % len(DTYPES)],
            )
            counts[r["verdict"]] += 1
            fh.write(dumps(r))
            written += 1
            if slot < DIVERGENCE_PER_MILLE and written < n_lines - 1 - 2 * len(ALIASES):
                other = dict(seeds[k - 1 if k else 1], binding=alias + "other." + seeds[k]["binding"])
                d = divergence_of(r, other)
                counts["divergence " + d["status"]] += 1
                agreements[r["spec"], r["binding"], other["binding"], d["status"]] += 1
                fh.write(dumps(d))
                written += 1
        specs = sorted({r["spec"] for r in seeds})
        for alias in ALIASES:
            for spec in specs:
                bindings = sorted({alias + r["binding"] for r in seeds if r["spec"] == spec})
                a, b = bindings[0], bindings[-1]
                explained = sum(
                    n for (s, x, _, st), n in agreements.items() if s == spec and x == a and st == "explained"
                )
                fh.write(dumps(agreement(spec, a, b, 1000, explained, 0)))
        fh.write(
            dumps(
                summary(
                    {k: v for k, v in counts.items() if not k.startswith("divergence")},
                    divergences={
                        "explained": counts["divergence explained"],
                        "unexplained": counts["divergence unexplained"],
                    },
                    finished=meta.get("started"),
                )
            )
        )
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines of the results file (default 1,000,000)")
    ap.add_argument("--keep", action="store_true", help="keep the results file and the page under " + str(WORK))
    ap.add_argument("--seed-run", type=Path, default=Path("/tmp/rep_seed"), help="the small real run to replicate")
    args = ap.parse_args(argv)

    results, page = WORK / f"results-{args.lines}.jsonl", WORK / f"report-{args.lines}.html"
    if results.is_file():
        print(f"reusing {results}")
    else:
        t0 = time.perf_counter()
        counts = make_results(results, args.lines, args.seed_run)
        print(
            f"wrote {results}: {args.lines} lines, {results.stat().st_size / 1e6:.0f} MB, "
            f"{time.perf_counter() - t0:.1f} s; " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
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
        # wait4: the peak RSS of this child alone (RUSAGE_CHILDREN would count the seed run too)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
        child.returncode = returncode = os.waitstatus_to_exitcode(status)
        peak = usage.ru_maxrss * 1024  # KiB on Linux
        if returncode not in (0, 1):
            print(stderr.decode(errors="replace")[-2000:], file=sys.stderr)
            print(f"lossparity report failed: exit {returncode}")
            return 1
        size = page.stat().st_size
        print(
            f"lossparity report: {args.lines} lines in {wall:.1f} s, peak RSS {peak / 2**30:.2f} GiB, "
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
