"""`lossparity merge`: shards become the unsharded run; duplicates and conflicts are reported."""

import json
from pathlib import Path

import pytest

import lossparity
from lossparity.cli import main
from lossparity.core.records import read_records

pytest.importorskip("torch")
pytest.importorskip("jax")

ARGS = [
    "--pyargs",
    "lossparity.conformance.suite",
    "-p",
    "no:cacheprovider",
    "--lp-losses",
    "binary_cross_entropy_with_logits",
    "--lp-examples",
    "4",
    "--lp-dtypes",
    "float32",
]


INI = Path(lossparity.__file__).with_name("pytest-conformance.ini")


def _content(path):
    """Result, divergence and agreement lines (timings aside) and the summary's counts."""
    records = read_records(path, validate=True)
    lines = sorted(
        json.dumps({k: v for k, v in r.items() if k != "seconds"}, sort_keys=True)
        for r in records
        if r["kind"] in ("result", "divergence", "agreement")
    )
    summary = next(r for r in records if r["kind"] == "summary")
    return lines, {k: v for k, v in summary.items() if k != "finished"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two framework shards and the unsharded run, each a real (small) conformance run."""
    root = tmp_path_factory.mktemp("runs")
    paths = {}
    for name, frameworks in (("torch", "torch"), ("jax", "jax"), ("both", "torch,jax")):
        out = root / name
        pytest.main(
            [
                *ARGS,
                "--lp-frameworks",
                frameworks,
                "--lp-out",
                str(out),
                "-q",
                "--tb=no",
                "-c",
                str(INI),
                "--rootdir",
                str(root),
            ]
        )
        paths[name] = out / "results.jsonl"
    return paths


def test_merging_framework_shards_equals_the_unsharded_run(runs, tmp_path, capsys):
    merged = tmp_path / "merged.jsonl"
    assert main(["merge", str(runs["torch"]), str(runs["jax"]), "-o", str(merged)]) == 0
    out = capsys.readouterr().out
    assert "0 duplicates dropped, 0 conflicts" in out
    lines, summary = _content(merged)
    assert (lines, summary) == _content(runs["both"])
    # Cross-framework divergences only exist once the shards meet.
    assert any('"kind": "divergence"' in line and "optax" in line and "torch" in line for line in lines)
    meta = read_records(merged)[0]
    assert {"torch", "jax", "optax"} <= set(meta["versions"]) and len(meta["sources"]) == 2


def test_duplicates_are_counted_and_conflicts_reported(runs, tmp_path, capsys):
    records = read_records(runs["torch"])
    changed = [dict(r) for r in records]
    victim = next(r for r in changed if r["kind"] == "result" and r["verdict"] == "conform")
    victim["verdict"] = "deviate"
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps(r) + "\n" for r in changed))
    merged = tmp_path / "merged.jsonl"
    assert main(["merge", str(runs["torch"]), str(other), "-o", str(merged)]) == 1
    out, err = capsys.readouterr()
    n_results = sum(r["kind"] == "result" for r in records)
    assert f"{n_results} results, {n_results - 1} duplicates dropped, 1 conflicts" in out
    key = "/".join(str(victim[k]) for k in ("spec", "binding", "dtype", "device", "mode", "case_id"))
    assert err.startswith(f"lossparity: conflict: {key}: {runs['torch']} says conform")
    assert f"{other} says deviate" in err and f"(kept {runs['torch']})" in err
    kept = [
        r
        for r in read_records(merged)
        if r["kind"] == "result" and r["case_id"] == victim["case_id"] and r["binding"] == victim["binding"]
    ]
    assert [r["verdict"] for r in kept] == ["conform"]


def test_bad_inputs_are_one_line_and_exit_2(runs, tmp_path, capsys):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"kind": "meta"\n')
    assert main(["merge", str(runs["torch"]), str(broken), "-o", str(tmp_path / "m.jsonl")]) == 2
    assert capsys.readouterr().err == f"lossparity: error: {broken}:1: not a JSON line (JSONDecodeError)\n"
    assert main(["merge", str(runs["torch"]), "-o", str(runs["torch"])]) == 2
    assert capsys.readouterr().err == (
        f"lossparity: error: -o {runs['torch']} is one of the inputs; write the merged file elsewhere\n"
    )
