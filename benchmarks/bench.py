"""lossparity's speed, measured: what the suite adds to each framework call, how often it
compiles, and what a whole run costs.

    .venv/bin/python benchmarks/bench.py                      # all four parts
    .venv/bin/python benchmarks/bench.py --skip-bindings      # the default run: its time, where it went, coverage
    .venv/bin/python benchmarks/bench.py --skip-run --frameworks torch   # per binding only
    .venv/bin/python benchmarks/bench.py --results reports/latest/results.jsonl   # a run already made

1. **Per binding and mode** (float32 by default, the default cases): the suite's cost per
   case against the floor, a bare loop in the same process calling the same framework API
   (the function the reproducer prints, already compiled) on the same cases' tensors, value
   and gradient, results fetched to the host. Two ratios: ``call`` is the adapter's call path
   (tensors from the case, the call, the values and gradients back in canonical layout);
   ``case`` is everything the suite does for a case (oracle once per case, shared by its
   modes, the call, the verdicts, the record and its JSON line). Each is the median of
   ``--repeats`` passes over the cases, after a warm-up pass that compiles. The floor makes
   each case's framework arrays anew, as any loop over cases must; the suite makes them once
   per case for all its modes where the framework's arrays are immutable (JAX, TensorFlow).
2. **Compilations**: the warm-up pass counts every jit compile and tf.function trace
   (``Outcome.compiled``) next to the cases and their distinct call structures (buckets).
3. **The whole run**: ``lossparity run`` with the default selection, each with JAX's
   compilation cache empty: wall time, peak memory of the whole process tree (PSS, sampled
   twice a second), the speedup, whether the two results files hold the same results, and the
   frameworks' own share (the calls' seconds in the results).
   ``--workers auto`` (the default) is the default run alone; ``--workers 1,2`` gives the speedup.
4. **Where a run's time went** (after each whole run, or alone with ``--results FILE`` for a
   run already made, from its results file only): per framework and mode the results, the
   calls' seconds, the compilations and the seconds spent compiling; edge rows against
   generated cases; the oracle; the suite's own overhead (the workers' time less the calls and
   the oracle); and next to it the coverage (bindings, results, generated cases per binding
   and dtype, edge rows), so that a faster run that checks less shows it.

Each framework process (torch, TensorFlow and JAX share one; each Keras backend has its own)
is measured in a subprocess of its own, as a run does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from lossparity.core.records import raw_lines

HERE = Path(__file__).resolve().parent


# -- part 1 and 2: in one framework process ---------------------------------------------------


def _bare_loop(adapter, binding, spec, cases, dtype, mode, wrt_of):
    """The floor: per case, the framework's arrays made from the case's (C-contiguous, in the
    framework's layout) with its plain constructor (``torch.tensor``, ``tf.constant``,
    ``jnp.asarray``), the binding's own function called (the one the reproducer prints,
    compiled by the warm-up), value and gradients fetched to the host. Returns a function
    timing one pass."""
    prepared = []
    for case in cases:
        ready = adapter.prepare_case(binding, case, dtype)
        wrt = [n for n in wrt_of(case) if n in ready.args]
        functions = adapter._functions(ready.source, ready.args, wrt, mode)
        prepared.append(
            (functions["value_and_grad"] if wrt else functions["loss_fn"], {n: ready.arrays[n] for n in ready.args})
        )
    to_framework = adapter.to_framework

    def one_pass() -> float:
        start = time.perf_counter()
        for fn, arrays in prepared:
            try:
                _fetch(fn(**{n: to_framework(a, dtype) for n, a in arrays.items()}))
            except Exception:  # noqa: BLE001 - a case the binding rejects costs the floor its raise
                pass
        return time.perf_counter() - start

    return one_pass


def _fetch(out):
    import numpy as np

    if isinstance(out, tuple):
        value, grads = out
        np.asarray(value.detach() if hasattr(value, "detach") else value)
        for g in grads:
            if g is not None:
                np.asarray(g.detach() if hasattr(g, "detach") else g)
    else:
        np.asarray(out.detach() if hasattr(out, "detach") else out)


def measure(process: str, frameworks, losses, dtype: str, examples: int, repeats: int) -> list[dict]:
    from lossparity.conformance.options import split_csv
    from lossparity.conformance.registry import adapter_for
    from lossparity.conformance.runner import differentiated, evaluate
    from lossparity.conformance.selection import Selection
    from lossparity.conformance.specs import SPECS
    from lossparity.core.records import json_line

    selection = Selection(
        frameworks=split_csv(frameworks), losses=split_csv(losses), dtypes=(dtype,), examples=examples
    ).validate()
    rows, cases_of = [], {}
    for binding in selection.bindings():
        adapter = adapter_for(binding.framework)
        if adapter.process != process or adapter.unavailable() or adapter.missing(binding):
            continue
        spec = SPECS[binding.spec]
        if spec.name not in cases_of:
            cases_of[spec.name] = selection.cases(spec.name)
        cases = [
            c
            for c in cases_of[spec.name]
            if binding.effective_params(spec, c.params) is not None and (not c.dtypes or dtype in c.dtypes)
        ]
        if dtype not in binding.dtypes or not cases:
            continue
        modes = selection.modes_of(adapter)

        def suite_pass(oracle_shared=True):
            start, compiled, n = time.perf_counter(), {m: 0 for m in modes}, 0
            oracle: dict = {}
            for case in cases:
                for mode in modes:
                    r = evaluate(adapter, binding, spec, case, dtype, mode=mode, oracle=oracle)
                    if r is not None:
                        json_line(r)
                        compiled[mode] += r.get("compiled", 0)
                        n += 1
            return time.perf_counter() - start, compiled, n

        first, compiles, results = suite_pass()  # warm-up: the compilations of a run
        suite = statistics.median(suite_pass()[0] for _ in range(repeats)) / len(cases)

        def call_pass():
            """Case by case, each in every mode, as a run's batch calls them: prepared once for
            all its modes (counted in the first, whose call makes the framework's arrays)."""
            spent = dict.fromkeys(modes, 0.0)
            wrt = differentiated(spec) if adapter.differentiates else ()
            for case in cases:
                start = time.perf_counter()
                prepared = adapter.prepare_case(binding, case, dtype)
                for mode in modes:
                    adapter.call(binding, case, dtype, mode=mode, wrt=wrt, prepared=prepared)
                    spent[mode] += time.perf_counter() - start
                    start = time.perf_counter()
            return spent

        def wrt_of(_case):
            return differentiated(spec) if adapter.differentiates else ()

        buckets = len(
            {
                (
                    adapter.source(binding, c),
                    tuple((n, a.shape) for n, a in sorted(adapter.framework_arrays(binding, c, dtype).items())),
                )
                for c in cases
            }
        )
        calls = [call_pass() for _ in range(repeats)]
        for mode in modes:
            bare = _bare_loop(adapter, binding, spec, cases, dtype, mode, wrt_of)
            floor = statistics.median(bare() for _ in range(repeats)) / len(cases)
            call = statistics.median(c[mode] for c in calls) / len(cases)
            rows.append(
                {
                    "binding": binding.id,
                    "framework": binding.framework,
                    "mode": mode,
                    "cases": len(cases),
                    "buckets": buckets,
                    "compiles": compiles[mode],
                    "floor_us": floor * 1e6,
                    "call_us": call * 1e6,
                    "call_ratio": call / floor,
                }
            )
        # the oracle and the record are per case, shared by the modes: spread over them
        per_mode_case = suite / len(modes)
        for row in rows[-len(modes) :]:
            row["case_us"] = per_mode_case * 1e6
            row["case_ratio"] = per_mode_case / (row["floor_us"] / 1e6)
            row["first_pass_s"] = first
        print(f"  measured {binding.id}", file=sys.stderr, flush=True)
    return rows


# -- part 3: whole runs -------------------------------------------------------------------------


def _tree_memory(root: int) -> int:
    """Memory of a process and all its descendants, in bytes: the sum of their proportional set
    sizes (PSS: a page shared by n processes counts 1/n in each, so the frameworks' shared
    libraries count once, not once per worker)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
                total += next(int(line.split()[1]) * 1024 for line in fh if line.startswith(b"Pss:"))
        except (OSError, StopIteration, ValueError):
            pass
        todo += children.get(pid, [])
    return total


def whole_run(workers: str, out: Path, extra: list[str]) -> dict:
    """One ``lossparity run -n workers`` (a count or ``auto``), cold: JAX's compilation cache
    starts empty (LOSSPARITY_CACHE)."""
    cmd = [sys.executable, "-m", "lossparity.cli", "run", "-n", str(workers), "--out", str(out), *extra]
    env = {**os.environ, "LOSSPARITY_CACHE": str(out) + "-cache"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_memory(proc.pid))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.communicate()[0]
    wall = time.perf_counter() - start
    sampler.join()
    tail = [line for line in output.splitlines() if line.startswith(("verdicts:", "divergences:"))]
    results = _comparable(out / "results.jsonl")
    return {
        "workers": workers,
        "exit": proc.returncode,
        "wall_s": wall,
        "peak_pss_gib": peak[0] / 2**30,
        "results": len(results),
        "summary": tail,
        "breakdown": breakdown(out / "results.jsonl"),
        "_key": results,
    }


def _comparable(path: Path) -> list[str]:
    """The result lines without their timings and compile counts (which worker compiled a
    shape first is the schedule's), sorted: equal for equal runs."""
    out = []
    for line in raw_lines(path):  # the file is compressed: its lines as written, decompressed
        if line.startswith(b'{"kind":"result"'):
            r = json.loads(line)
            r.pop("seconds", None)
            r.pop("compiled", None)
            out.append(json.dumps(r, sort_keys=True))
    return sorted(out)


# -- where a run's time went: read back from its results file ------------------------------------


def _stream(path: Path):
    """The records of a results file, one at a time (a default run's file is hundreds of MB)."""
    import orjson

    for line in raw_lines(path):  # compressed or plain: its lines as written
        if line.strip():
            yield orjson.loads(line)


def breakdown(path: Path) -> dict:
    """Where the time of the run that wrote ``path`` went, and what it covered, from the file alone.

    Per framework and mode: results, the calls' seconds (``seconds.call``: the framework's own
    work, arrays in and out included), compilations (``compiled``) and the seconds spent
    compiling, estimated as what the calls that compiled took past the median call of that
    framework and mode that did not; the same split by edge rows and generated cases; the oracle's
    seconds (``seconds.oracle``); and the suite's own overhead: the workers' time
    (wall time x workers, from the meta line's ``started``, the summary's ``finished`` and the
    command's ``-n``) less the calls and the oracle. Coverage: bindings (each API bound to a
    spec, as ``lossparity list`` counts them), results, generated cases
    per binding and dtype (fewest, median, how many under the run's ``--examples``), edge rows
    (distinct rows; results). ``per_spec``: each spec's results, calls' seconds (of which on edge
    rows) and compilations, costliest first: where the calls' time concentrates (in /tmp/full11,
    CTC, whose eager ``lax.scan`` JAX compiles anew at every call: 720 s of the 2,956)."""
    import datetime as dt
    import re

    meta, summary, shrunk_s = {}, {}, 0.0
    calls: dict[tuple, list[float]] = {}  # (framework, mode) -> call seconds (for the medians)
    rows: dict[tuple, list] = {}  # (framework, mode, origin) -> [results, call s, compiled, oracle s]
    compiled_s: dict[tuple, list[float]] = {}  # (framework, mode) -> call seconds of calls that compiled
    generated: dict[tuple, set] = {}  # (spec, binding, dtype) -> generated case ids
    edge_rows, bindings, unsupported = set(), set(), set()
    # a spec's argument shapes (name, shape) per generated case and per edge row: an edge row at a
    # shape its spec's generated cases use reuses their compilations (eager JAX: every primitive)
    shapes: dict[tuple, set] = {}  # (spec, "edge"|"generated") -> argument shapes
    edge_shape: dict[tuple, tuple] = {}  # (spec, row) -> its argument shapes
    specs: dict[str, list] = {}  # spec -> [results, call s, of which on edge rows, compiled]
    for r in _stream(path):
        kind = r.get("kind")
        if kind == "meta":
            meta = r
        elif kind == "summary":
            summary = r
        elif kind == "shrunk":
            shrunk_s += r.get("seconds") or 0.0
        elif kind == "result" and not r.get("seconds"):
            unsupported.add((r["spec"], r["binding"]))  # no call was made: the framework cannot run it
        elif kind == "result":
            seconds, fm = r["seconds"], (r["framework"], r["mode"])
            origin = "edge" if "table" in r["origin"] else "generated"
            row = rows.setdefault((*fm, origin), [0, 0.0, 0, 0.0])
            call = seconds.get("call", 0.0)
            row[0] += 1
            row[1] += call
            row[2] += r.get("compiled", 0)
            row[3] += seconds.get("oracle", 0.0)
            (compiled_s if r.get("compiled") else calls).setdefault(fm, []).append(call)
            spec = specs.setdefault(r["spec"], [0, 0.0, 0.0, 0])
            spec[0] += 1
            spec[1] += call
            spec[2] += call if origin == "edge" else 0.0
            spec[3] += r.get("compiled", 0)
            bindings.add((r["spec"], r["binding"]))
            signature = tuple(sorted((k, tuple(v.get("shape", ()))) for k, v in (r.get("inputs") or {}).items()))
            shapes.setdefault((r["spec"], origin), set()).add(signature)
            if origin == "edge":
                edge_rows.add((r["spec"], r["origin"]["row"]))
                edge_shape[r["spec"], r["origin"]["row"]] = signature
            else:
                generated.setdefault((r["spec"], r["binding"], r["dtype"]), set()).add(r["case_id"])
    per_mode = {}
    for (framework, mode, origin), (n, call, compiled, oracle) in sorted(rows.items()):
        m = per_mode.setdefault((framework, mode), {"results": 0, "call_s": 0.0, "compiled": 0, "oracle_s": 0.0})
        m["results"] += n
        m["call_s"] += call
        m["compiled"] += compiled
        m["oracle_s"] += oracle
        m[f"{origin}_results"] = n
        m[f"{origin}_call_s"] = call
    for fm, m in per_mode.items():
        plain = statistics.median(calls[fm]) if calls.get(fm) else 0.0
        m["compile_s"] = sum(max(0.0, c - plain) for c in compiled_s.get(fm, ()))
    found = re.search(r"(?:^|\s)(?:-n|--workers)[ =]?(\d+|auto)\b", meta.get("command", ""))
    if found and found.group(1) != "auto":
        workers = int(found.group(1))
    else:  # -n auto, the default: the machine's cores
        workers = meta.get("cpu_count") or 1
    wall = None
    if meta.get("started") and summary.get("finished"):
        wall = (
            dt.datetime.fromisoformat(summary["finished"]) - dt.datetime.fromisoformat(meta["started"])
        ).total_seconds()
    call_s = sum(m["call_s"] for m in per_mode.values())
    oracle_s = sum(m["oracle_s"] for m in per_mode.values())
    per_binding = sorted(len(v) for v in generated.values())
    return {
        "file": str(path),
        "command": meta.get("command"),
        "workers": workers,
        "wall_s": wall,
        "per_mode": [{"framework": f, "mode": mo, **m} for (f, mo), m in sorted(per_mode.items())],
        "per_spec": [
            {"spec": name, "results": n, "call_s": call, "edge_call_s": edge, "compiled": compiled}
            for name, (n, call, edge, compiled) in sorted(specs.items(), key=lambda kv: (-kv[1][1], kv[0]))
        ],
        "call_s": call_s,
        "oracle_s": oracle_s,
        "shrink_s": shrunk_s,
        "overhead_s": wall * workers - call_s - oracle_s if wall is not None else None,
        "coverage": {
            "bindings": len(bindings),
            "unsupported_bindings": len(unsupported - bindings),
            "results": sum(m["results"] for m in per_mode.values()),
            "generated_per_binding_dtype_min": per_binding[0] if per_binding else 0,
            "generated_per_binding_dtype_median": statistics.median(per_binding) if per_binding else 0,
            "binding_dtypes": len(per_binding),
            "examples": meta.get("examples"),
            "binding_dtypes_under": sum(n < (meta.get("examples") or 0) for n in per_binding),
            "edge_rows": len(edge_rows),
            "edge_rows_at_generated_shapes": sum(
                sig in shapes.get((spec, "generated"), ()) for (spec, _), sig in edge_shape.items()
            ),
            "edge_results": sum(m.get("edge_results", 0) for m in per_mode.values()),
            "generated_results": sum(m.get("generated_results", 0) for m in per_mode.values()),
        },
    }


def print_breakdown(b: dict) -> None:
    """``breakdown``'s figures as a table: the time first, the coverage next to it."""
    wall = f"{b['wall_s']:.0f} s wall" if b["wall_s"] is not None else "wall time unknown (no summary line)"
    print(f"\n{b['command'] or b['file']}: {wall} on {b['workers']} worker(s)")
    print(
        f"{'framework':<18} {'mode':<9} {'results':>8} {'call s':>8} {'ms/call':>8} {'compiles':>8} "
        f"{'compile s':>9} {'edge n':>7} {'edge s':>7} {'edge ms':>7} {'gen n':>7} {'gen s':>7} {'gen ms':>7}"
    )
    for m in b["per_mode"]:
        en, es = m.get("edge_results", 0), m.get("edge_call_s", 0.0)
        gn, gs = m.get("generated_results", 0), m.get("generated_call_s", 0.0)
        print(
            f"{m['framework']:<18} {m['mode']:<9} {m['results']:>8} {m['call_s']:>8.1f} "
            f"{1e3 * m['call_s'] / max(m['results'], 1):>8.2f} {m['compiled']:>8} {m['compile_s']:>9.1f} "
            f"{en:>7} {es:>7.1f} {1e3 * es / max(en, 1):>7.2f} {gn:>7} {gs:>7.1f} {1e3 * gs / max(gn, 1):>7.2f}"
        )
    tot = b["per_mode"]
    print(
        f"{'all':<28} {sum(m['results'] for m in tot):>8} {b['call_s']:>8.1f} {'':>8} "
        f"{sum(m['compiled'] for m in tot):>8} {sum(m['compile_s'] for m in tot):>9.1f}"
    )
    costliest = b["per_spec"][:8]
    print(
        "costliest specs, calls' seconds (share; of which on edge rows; compilations): "
        + "; ".join(
            f"{p['spec']} {p['call_s']:.0f} s ({100 * p['call_s'] / max(b['call_s'], 1e-9):.0f}%; "
            f"{p['edge_call_s']:.0f} s; {p['compiled']})"
            for p in costliest
        )
    )
    print(f"oracle: {b['oracle_s']:.1f} s; shrinking (its lines' own seconds): {b['shrink_s']:.1f} s")
    if b["overhead_s"] is not None:
        busy = b["wall_s"] * b["workers"]
        print(
            f"workers' time {busy:.0f} s (wall x {b['workers']}): framework calls {b['call_s']:.0f} s "
            f"({100 * b['call_s'] / busy:.0f}%), oracle {b['oracle_s']:.0f} s, the suite's own overhead "
            f"{b['overhead_s']:.0f} s ({100 * b['overhead_s'] / busy:.0f}%: cases, verdicts, records, sandbox, "
            "shrinking, the controller's conclusions, idle workers)"
        )
    c = b["coverage"]
    print(
        f"coverage: {c['bindings']} bindings run ({c['unsupported_bindings']} unsupported), {c['results']} results "
        f"({c['edge_results']} on {c['edge_rows']} edge rows, {c['generated_results']} on generated cases); "
        f"generated cases per binding and dtype: fewest "
        f"{c['generated_per_binding_dtype_min']}, median {c['generated_per_binding_dtype_median']:g} over "
        f"{c['binding_dtypes']} binding-dtypes ({c['binding_dtypes_under']} under the {c['examples']} asked)"
    )
    print(
        f"edge rows at a shape their spec's generated cases use (so their compilations are shared): "
        f"{c['edge_rows_at_generated_shapes']} of {c['edge_rows']}"
    )


# -- the command ----------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frameworks", help="comma-separated frameworks (default: all)")
    p.add_argument("--losses", help="comma-separated globs over specs and bindings (default: all)")
    p.add_argument("--dtype", default="float32", help="dtype of the per-binding part (default float32)")
    p.add_argument("--examples", type=int, default=100, help="generated cases per spec (default 100)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per binding and mode; the median counts")
    p.add_argument("--skip-bindings", action="store_true", help="skip parts 1 and 2")
    p.add_argument("--skip-run", action="store_true", help="skip part 3, the whole runs")
    p.add_argument("--run-args", default="", help="extra arguments of the whole runs (default: none, the default run)")
    p.add_argument("--keep", help="write the whole runs' results here (default: a temporary folder)")
    p.add_argument(
        "--workers",
        default="auto",
        help="worker counts of the whole runs, comma-separated (default auto, the default run; 1,2: the speedup)",
    )
    p.add_argument("--json", help="also write every figure to this file")
    p.add_argument(
        "--results",
        metavar="JSONL",
        help="only print where the time of the run that wrote this results file went, and its coverage",
    )
    p.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one framework process
    args = p.parse_args()

    if args.results:
        figures = breakdown(Path(args.results))
        print_breakdown(figures)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")
        return 0

    if args.measure:
        rows = measure(args.measure, args.frameworks, args.losses, args.dtype, args.examples, args.repeats)
        json.dump(rows, sys.stdout)
        return 0

    from lossparity.conformance.registry import adapter_modules

    figures: dict = {}
    if not args.skip_bindings:
        processes = sorted({m.ADAPTER.process for m in adapter_modules().values()})
        rows = []
        for process in processes:
            print(f"measuring the bindings of process {process!r} ...", file=sys.stderr, flush=True)
            cmd = [
                sys.executable,
                __file__,
                "--measure",
                process,
                "--dtype",
                args.dtype,
                "--examples",
                str(args.examples),
                "--repeats",
                str(args.repeats),
            ]
            cmd += (["--frameworks", args.frameworks] if args.frameworks else []) + (
                ["--losses", args.losses] if args.losses else []
            )
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            rows += json.loads(done.stdout)
        figures["bindings"] = rows
        print(
            f"\n{'binding':<62} {'mode':<12} {'cases':>5} {'buckets':>7} {'compiles':>8} {'floor us':>9} "
            f"{'call us':>8} {'call x':>6} {'case us':>8} {'case x':>6}"
        )
        for r in rows:
            print(
                f"{r['binding']:<62} {r['mode']:<12} {r['cases']:>5} {r['buckets']:>7} {r['compiles']:>8} "
                f"{r['floor_us']:>9.0f} {r['call_us']:>8.0f} {r['call_ratio']:>6.2f} {r['case_us']:>8.0f} "
                f"{r['case_ratio']:>6.2f}"
            )
        if rows:
            worst_call = max(rows, key=lambda r: r["call_ratio"])
            worst_case = max(rows, key=lambda r: r["case_ratio"])
            calls = sorted(r["call_ratio"] for r in rows)
            print(
                f"\n{len(rows)} binding-modes; call ratio median {statistics.median(calls):.2f}, "
                f"{sum(c <= 1.5 for c in calls)} of {len(calls)} at 1.5x or less; worst "
                f"{worst_call['call_ratio']:.2f}x ({worst_call['binding']} {worst_call['mode']})"
            )
            print(
                f"case ratio (oracle, verdicts and record included) median "
                f"{statistics.median(r['case_ratio'] for r in rows):.2f}; worst {worst_case['case_ratio']:.2f}x "
                f"({worst_case['binding']} {worst_case['mode']})"
            )
            print(
                f"compilations: {sum(r['compiles'] for r in rows)} for {sum(r['cases'] for r in rows)} cases "
                f"in {sum(r['buckets'] for r in rows)} buckets (per binding-mode: most "
                f"{max(r['compiles'] for r in rows)}, cases per binding most {max(r['cases'] for r in rows)})"
            )
    if not args.skip_run:
        extra = args.run_args.split()
        runs = []
        with tempfile.TemporaryDirectory() as tmp:
            for workers in (w.strip() for w in args.workers.split(",")):
                print(f"whole run, {workers} worker(s) ...", file=sys.stderr, flush=True)
                runs.append(whole_run(workers, Path(args.keep or tmp) / f"n{workers}", extra))
        keys = [r.pop("_key") for r in runs]
        figures["runs"] = runs
        print()
        for r in runs:
            b = r["breakdown"]
            print(
                f"lossparity run -n {r['workers']} {' '.join(extra)}: {r['wall_s']:.0f} s (the report included), "
                f"peak memory {r['peak_pss_gib']:.2f} GiB (PSS of the process tree), {r['results']} results, "
                f"{sum(m['compiled'] for m in b['per_mode'])} compilations, exit {r['exit']}"
            )
            per_worker = b["call_s"] / b["workers"]
            print(
                f"    the frameworks' own calls: {b['call_s']:.0f} s of CPU in all, "
                f"{per_worker:.0f} s per worker: "
                f"the run's wall time is {r['wall_s'] / per_worker:.2f}x that"
            )
            for line in r["summary"]:
                print("   ", line)
            print_breakdown(r["breakdown"])
        if len(runs) == 2:
            print(
                f"speedup of -n {runs[1]['workers']}: {runs[0]['wall_s'] / runs[1]['wall_s']:.2f}x; "
                f"identical results: {keys[0] == keys[1]}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
