"""The pytest plugin end to end, through pytester: results file, schema, report, xdist."""

import json
import subprocess
import sys

import pytest

# Imported here, before pytester's first in-process run, so that they stay the same modules
# for every run: pytester removes the modules a run imported when it ends, and a Case made
# from one import of ``lossparity.core.model`` could not be pickled under the next one.
import lossparity.conformance.plugin  # noqa: F401
import lossparity.conformance.selection  # noqa: F401
import lossparity.conformance.specs  # noqa: F401
from lossparity.core.records import read_records

pytest.importorskip("torch")

ARGS = [
    "--pyargs",
    "lossparity.conformance.suite",
    "-p",
    "no:cacheprovider",
    "--lp-frameworks",
    "torch",
    "--lp-losses",
    "binary_cross_entropy_with_logits",
    "--lp-examples",
    "6",
    "--lp-dtypes",
    "float32",
]


def test_run_writes_valid_results_and_report(pytester):
    out = pytester.path / "out"
    result = pytester.runpytest(*ARGS, "--lp-out", str(out))
    records = read_records(out / "results.jsonl", validate=True)  # every line against the schema
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "meta" and kinds[-1] == "summary"
    results = [r for r in records if r["kind"] == "result"]
    outcomes = result.parseoutcomes()  # one test per binding and dtype, holding all its results
    tests = outcomes.get("passed", 0) + outcomes.get("failed", 0) + outcomes.get("xfailed", 0)
    assert tests == len({(r["binding"], r["dtype"]) for r in results}) and len(results) > tests
    assert records[-1]["counts"] == {
        v: sum(r["verdict"] == v for r in results) for v in {r["verdict"] for r in results}
    }
    assert "torch" in records[0]["versions"]
    html = (out / "report.html").read_text()
    assert "binary_cross_entropy_with_logits" in html and "Content-Security-Policy" in html
    result.stdout.fnmatch_lines(["*lossparity*", "verdicts:*", f"report:*{out / 'report.html'}"])


def test_deviation_fails_the_test_and_carries_a_runnable_reproducer(pytester):
    # +-inf logits: PyTorch's formula computes (1 - y) * x + ... = 0 * inf = nan where the
    # documented limit is 0 (edge row inf-logits-right).
    out = pytester.path / "out"
    pytester.runpytest(*ARGS, "--lp-out", str(out), "--lp-cases", "*inf-logits-right")
    records = [r for r in read_records(out / "results.jsonl") if r["kind"] == "result"]
    finding = next(r for r in records if r["verdict"] in ("deviate", "known"))
    printed = subprocess.run(
        [sys.executable, "-c", finding["reproducer"]], capture_output=True, text=True, check=True
    ).stdout
    actual = finding["actual"]["value"]["data"]
    assert json.loads(printed.replace("nan", '"nan"')) == actual


def test_nothing_is_written_without_lp_out(pytester):
    pytester.runpytest(*ARGS)
    assert not list(pytester.path.rglob("results.jsonl"))


def test_xdist_workers_do_not_write_and_results_match(pytester):
    pytest.importorskip("xdist")
    serial, parallel = pytester.path / "serial", pytester.path / "parallel"
    # both in fresh processes: the comparison is of one process against two workers, not of this
    # test process's state (modules imported and cases drawn by earlier tests) against a fresh one
    pytester.runpytest_subprocess(*ARGS, "--lp-out", str(serial))
    pytester.runpytest_subprocess(*ARGS, "--lp-out", str(parallel), "-n", "2")

    def key(path):
        return sorted(
            (r["binding"], r["case_id"], r["dtype"], r["verdict"], json.dumps(r["actual"]))
            for r in read_records(path / "results.jsonl")
            if r["kind"] == "result"
        )

    assert key(serial) == key(parallel)


def test_the_summary_says_what_each_known_deviation_explained(pytester):
    # +-inf logits: torch-bce-logits-infinite-logits explains the functional form's NaN, its
    # module twin BCEWithLogitsLoss's
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(*ARGS, "--lp-out", str(out), "--lp-cases", "*inf-logits-*")
    records = read_records(out / "results.jsonl", validate=True)
    rows = {e["id"]: e for e in records[-1]["known_entries"]}
    used = rows["torch-bce-logits-infinite-logits"]
    known = [r for r in records if r["kind"] == "result" and r["verdict"] == "known"]
    assert used["status"] == "used" and used["results"] == sum(
        "torch-bce-logits-infinite-logits" in [e["id"] for e in r["known"]["entries"]] for r in known
    )
    assert used["results"] > 0 and rows["torch-l1-zero-weight-infinite-residual"]["status"] == "not run"
    standing = {s: sum(e["status"] == s for e in rows.values()) for s in ("used", "stale", "not run")}
    result.stdout.fnmatch_lines(
        [
            f"known deviations: {standing['used']} used, {standing['stale']} stale, "
            f"{standing['not run']} not run (of {len(rows)} entries)",
            f"*{used['results']} results*{used['divergences']} divergences  torch-bce-logits-infinite-logits",
        ]
    )


def test_a_run_reads_the_known_deviations_file_it_is_given(pytester):
    path = pytester.path / "known.toml"
    path.write_text("", encoding="utf-8")  # no entries: every finding stands
    out = pytester.path / "out"
    pytester.runpytest_subprocess(
        *ARGS, "--lp-out", str(out), "--lp-cases", "*inf-logits-right", "--lp-known", str(path)
    )
    records = read_records(out / "results.jsonl")
    assert not any(r.get("verdict") == "known" for r in records) and records[-1]["known_entries"] == []
    path.write_text('[[deviation]]\nid = "x"\n', encoding="utf-8")
    result = pytester.runpytest_subprocess(*ARGS, "--lp-out", str(out), "--lp-known", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: known deviations {path}: entry 'x': binding is missing"])


def test_bindings_that_share_a_compiler_and_dtype_share_a_worker():
    """``lossparity run -n N`` distributes with ``--dist loadgroup``: optax's and Keras-on-JAX's
    bindings of one dtype are one group (one worker: one JAX compilation serves the next), each
    dtype JAX holds another (float64 is float32's); a framework that compiles nothing is left to
    any worker; past 8 workers a group is split by spec, the same way for every binding of the spec."""
    from lossparity.conformance.plugin import LpItem, _group
    from lossparity.conformance.registry import all_bindings
    from lossparity.conformance.specs import SPECS

    by_id = {b.id: b for b in all_bindings()}

    def group(binding_id, dtype, workers=2):
        binding = by_id[binding_id]
        return _group(LpItem(binding, SPECS[binding.spec], dtype, units=[]), workers)

    assert group("optax.losses.huber_loss", "float32") == group("keras.losses.Huber[jax]", "float32") == "xla-float32"
    assert group("optax.losses.huber_loss", "float16") == "xla-float16"
    # JAX without x64 holds float64 as float32: those batches compute on the float32 batches' shapes and dtype
    assert group("optax.losses.huber_loss", "float64") == group("keras.losses.Huber[jax]", "float64") == "xla-float32"
    assert group("keras.losses.Huber[tensorflow]", "float32") == "tensorflow-float32"
    assert group("keras.losses.Huber[tensorflow]", "float64") == "tensorflow-float64"
    assert group("torch.nn.HuberLoss", "float32") is None and group("keras.losses.Huber[torch]", "float32") is None
    assert _group(LpItem(by_id["optax.losses.huber_loss"], unavailable="optax is not installed"), 2) is None
    split = {
        (b, s): group(b, "float32", workers=16)
        for b, s in [("optax.losses.huber_loss", "huber"), ("keras.losses.Huber[jax]", "huber")]
    }
    assert len(set(split.values())) == 1 and next(iter(split.values())).startswith("xla-float32-")
    parts = {group(b.id, "float32", workers=16) for b in all_bindings() if b.framework == "jax"}
    assert parts == {"xla-float32-0", "xla-float32-1"}


def test_grouped_workers_give_the_serial_results(pytester):
    """With the groups (``--dist loadgroup``, as ``lossparity run -n 2`` passes) the results are
    those of one process: which worker ran a binding changes its timings only."""
    pytest.importorskip("xdist")
    pytest.importorskip("optax")
    args = [*ARGS[:4], "--lp-frameworks", "jax,torch", "--lp-losses", "huber", "--lp-examples", "4"]
    args += ["--lp-dtypes", "float32,float16", "--lp-no-shrink"]
    serial, parallel = pytester.path / "serial", pytester.path / "parallel"
    pytester.runpytest_subprocess(*args, "--lp-out", str(serial))
    pytester.runpytest_subprocess(*args, "--lp-out", str(parallel), "-n", "2", "--dist", "loadgroup")

    def key(path):
        return sorted(
            (r["binding"], r["case_id"], r["dtype"], r["mode"], r["verdict"], json.dumps(r["actual"]))
            for r in read_records(path / "results.jsonl")
            if r["kind"] == "result"
        )

    assert key(serial) == key(parallel) and any(k[0].startswith("optax") for k in key(serial))


def test_the_benchmark_reads_where_a_runs_time_went_from_its_results_file(pytester, capsys):
    """``benchmarks/bench.py --results FILE``: the calls' seconds and compilations per framework and
    mode, edge rows against generated cases, and the coverage, as the file's results add up."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"
    spec = importlib.util.spec_from_file_location("lossparity_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = pytester.path / "out"
    pytester.runpytest_subprocess(*ARGS, "--lp-out", str(out), "--lp-no-shrink")
    results = [r for r in read_records(out / "results.jsonl") if r["kind"] == "result"]
    b = bench.breakdown(out / "results.jsonl")
    (row,) = b["per_mode"]
    assert (row["framework"], row["mode"], row["results"]) == ("torch", "eager", len(results))
    edges = [r for r in results if r["case_id"].startswith("edge-")]
    assert row["edge_results"] == len(edges) > 0 and row["generated_results"] == len(results) - len(edges)
    assert row["call_s"] == pytest.approx(sum(r["seconds"]["call"] for r in results))
    assert row["compiled"] == row["compile_s"] == 0  # torch's eager calls compile nothing
    (spec,) = b["per_spec"]  # one spec ran: all the calls' seconds are its own
    assert (spec["spec"], spec["results"]) == ("binary_cross_entropy_with_logits", len(results))
    assert spec["call_s"] == pytest.approx(b["call_s"]) and spec["edge_call_s"] == pytest.approx(row["edge_call_s"])
    coverage = b["coverage"]
    assert coverage["bindings"] == len({(r["spec"], r["binding"]) for r in results})
    assert coverage["edge_rows"] == len({r["case_id"] for r in edges})
    per = [
        sum(r["binding"] == x and not r["case_id"].startswith("edge-") for r in results)
        for x in {r["binding"] for r in results}
    ]
    assert coverage["generated_per_binding_dtype_min"] == min(per) >= 6

    def shapes(r):
        return tuple(sorted((k, tuple(v["shape"])) for k, v in r["inputs"].items()))

    generated = {shapes(r) for r in results if not r["case_id"].startswith("edge-")}
    at = {r["case_id"] for r in edges if shapes(r) in generated}
    assert coverage["edge_rows_at_generated_shapes"] == len(at) < coverage["edge_rows"]
    assert b["wall_s"] is not None and b["overhead_s"] is not None
    bench.print_breakdown(b)
    out = capsys.readouterr().out
    assert "coverage:" in out and f"{len(at)} of {coverage['edge_rows']}" in out
