"""Kill-safety, resume and determinism, on real runs of the torch BCE bindings.

A run killed (SIGKILL) or interrupted (SIGINT) at random points leaves a results file whose
every line is valid; ``lossparity report`` rebuilds the report from it; ``--resume`` completes
it, and the completed run equals an uninterrupted one case for case. The same seed gives the
same lines, timings aside, with one worker or two.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("torch")

from lossparity.core.records import raw_lines, read_records  # noqa: E402

#: --shrink-known: its findings are all known deviations, whose groups a run shrinks only when asked;
#: the shrunk lines are part of what must not depend on the workers
RUN = ["--frameworks", "torch", "--losses", "binary_cross_entropy", "--examples", "10", "--shrink-known"]
#: (signal, results lines written before it is sent); the counts are drawn once, seeded.
_rng = random.Random(20261121)
KILLS = [(signal.SIGKILL, _rng.randint(2, 60)) for _ in range(3)] + [(signal.SIGINT, _rng.randint(2, 60))]


def lossparity(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "lossparity.cli", *args], capture_output=True, text=True, timeout=300, **kw
    )


def comparable(path):
    """The run's lines that must not depend on timing or on how the run was cut up (``shrunk``
    lines do: how far a group shrinks depends on its worker's time share; see ``minimal``)."""
    out = []
    for r in read_records(path):
        if r["kind"] in ("meta", "summary", "shrunk"):
            continue
        r = dict(r)
        r.pop("seconds", None)
        out.append(json.dumps(r, sort_keys=True))
    return sorted(out)


@pytest.fixture(scope="module")
def reference_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    assert lossparity("run", *RUN, "--out", str(out)).returncode in (0, 1)
    return out / "results.jsonl"


@pytest.fixture(scope="module")
def reference(reference_file):
    return comparable(reference_file)


def minimal(path) -> dict:
    """The groups whose shrinking ended at a minimal case (not stopped by the budget), by group:
    the case they reached, which depends on nothing but the group's case and the framework."""
    return {
        (r["binding"], r["dtype"], r["mode"], r["original"]["case_id"], json.dumps(r["symptom"])): r["case"]["inputs"]
        for r in read_records(path)
        if r["kind"] == "shrunk" and r["stopped"] == "minimal"
    }


def test_the_same_seed_gives_the_same_lines_with_one_worker_or_two(reference, reference_file, tmp_path):
    assert lossparity("run", *RUN, "-n", "2", "--out", str(tmp_path)).returncode in (0, 1)
    assert comparable(tmp_path / "results.jsonl") == reference
    a, b = minimal(reference_file), minimal(tmp_path / "results.jsonl")
    assert set(a) & set(b) and all(a[k] == b[k] for k in set(a) & set(b))


def _lines(path):
    try:  # the file is compressed: its lines are counted as they decompress
        return sum(1 for _ in raw_lines(path))
    except (FileNotFoundError, ValueError):  # not there yet, or its gzip header not yet whole
        return 0


@pytest.mark.parametrize("sig, after", KILLS, ids=[f"{signal.Signals(s).name}-after-{n}" for s, n in KILLS])
def test_a_killed_run_leaves_valid_lines_and_resumes(reference, tmp_path, sig, after):
    results = tmp_path / "results.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lossparity.cli", "run", *RUN, "--out", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while _lines(results) < after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT and proc.returncode == 2:
        assert err.strip().splitlines()[-1] == (
            f"lossparity: error: interrupted; the results so far are in "
            f"{results}, and the same command with --resume completes the run"
        )
    kept = read_records(results)  # every line parses and is valid against the schema
    assert kept[0]["kind"] == "meta"
    report = lossparity("report", str(results), "-o", str(tmp_path / "partial.html"))
    assert report.returncode in (0, 1), report.stderr
    assert (tmp_path / "partial.html").stat().st_size > 0
    resumed = lossparity("run", *RUN, "--out", str(tmp_path), "--resume")
    assert resumed.returncode in (0, 1), resumed.stderr
    assert comparable(results) == reference
    final = {line.decode() for line in raw_lines(results)}
    assert all(
        json.dumps(r, allow_nan=False, separators=(",", ":")) in final for r in kept if r["kind"] == "result"
    )  # kept byte for byte (timings too): not run again


def test_resume_refuses_another_selection(tmp_path):
    from lossparity.conformance.plugin import run_meta
    from lossparity.conformance.selection import Selection

    meta = run_meta(Selection(("torch",), ("binary_cross_entropy",), ("float32", "float64"), 10, 1), "")
    (tmp_path / "results.jsonl").write_text(json.dumps(meta) + "\n")
    proc = lossparity("run", *RUN, "--out", str(tmp_path), "--resume")
    assert proc.returncode == 2
    assert proc.stderr == (
        f"lossparity: error: --resume: {tmp_path / 'results.jsonl'} was made with seed 1, "
        f"this run has 0; resume with the same selection and versions\n"
    )
    proc = lossparity("run", *RUN, "--out", str(tmp_path / "none"), "--resume")
    assert proc.stderr == f"lossparity: error: --resume: there is no {tmp_path / 'none' / 'results.jsonl'} to resume\n"
