"""Crash isolation: a broken adapter, installed as a third party's is, segfaults, aborts, hangs,
allocates without bound, exits and returns garbage on chosen cases; the run records each as a
crash, timeout or error with its reproducer, and keeps every other result."""

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from lossparity.core.records import read_records

FAULTY = Path(__file__).parent / "faulty"


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    """One run of the faulty adapter's bindings, float64, 3 s per case, 256 MiB of memory."""
    tmp = tmp_path_factory.mktemp("faulty")
    info = tmp / "site" / "lp_faulty-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lp-faulty\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lossparity.adapters]\nfaulty = lp_faulty\n")
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp / 'site'}:{FAULTY}"}
    out = tmp / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lossparity.cli",
            "run",
            "--frameworks",
            "faulty",
            "--dtypes",
            "float64",
            "--examples",
            "10",
            "--timeout",
            "3",
            "--memory-limit",
            "0.25",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    sys.path.insert(0, str(FAULTY))
    try:
        import lp_faulty
    finally:
        sys.path.remove(str(FAULTY))
    return proc, read_records(out / "results.jsonl"), lp_faulty


EXPECTED = {  # fault -> (verdict, start of the recorded message)
    "segfault": ("crash", "the process was killed by SIGSEGV"),
    "abort": ("crash", "the process was killed by SIGABRT"),
    "hang": ("timeout", "no answer within the time limit of 3 s; the process was killed"),
    "oom": ("crash", "the process grew to "),
    "exit": ("crash", "the process exited with status 3 during the call"),
    "wrong_shape": ("deviate", None),
    "wrong_type": ("error_mismatch", "TypeError"),
}


def test_every_fault_is_recorded_and_every_other_case_kept(faulty_run):
    proc, records, lp_faulty = faulty_run
    assert proc.returncode == 1, proc.stderr[-2000:]  # findings, not a failed run
    results = [r for r in records if r["kind"] == "result"]
    by_binding = {}
    for r in results:
        by_binding.setdefault(r["binding"].removeprefix("lp_faulty."), []).append(r)
    assert set(by_binding) == set(lp_faulty.FAULTS)
    cases = {r["case_id"] for r in results}
    struck = {r["case_id"] for r in results if lp_faulty.hit(__import__("numpy").zeros(r["inputs"]["input"]["shape"]))}
    assert struck and struck < cases  # some cases are struck, the others must conform
    injected = 0
    for fault, rows in by_binding.items():
        assert {r["case_id"] for r in rows} == cases, fault  # nothing lost after a crash
        verdict, message = EXPECTED[fault]
        for r in rows:
            if r["case_id"] not in struck:
                assert r["verdict"] == "conform", (fault, r["case_id"], r["actual"])
                continue
            injected += 1
            assert r["verdict"] == verdict, (fault, r["case_id"], r["actual"])
            assert r["reproducer"] and f"lp_faulty.{fault}(input)" in r["reproducer"]
            if verdict in ("crash", "timeout"):
                assert r["actual"]["error"] == verdict and r["actual"]["message"].startswith(message)
                assert r["expected"]["value"]  # the oracle's expectation is kept
            elif verdict == "error_mismatch":
                assert r["actual"]["error"] == message
            else:
                shape = tuple(r["expected"]["value"]["shape"])
                assert r["errors"]["summary"] == f"Shape mismatch: got (7,), expected {shape}"
    assert injected == len(struck) * len(lp_faulty.FAULTS)
    assert Counter(r["verdict"] for r in results)["timeout"] == len(struck)
    assert records[-1]["kind"] == "summary" and records[-1]["counts"]["crash"] == 4 * len(struck)


def test_the_limits_are_options_with_one_line_errors(capsys):
    from lossparity.cli import main

    assert main(["run", "--timeout", "-1"]) == 2
    assert capsys.readouterr().err == "lossparity: error: --timeout must be a number >= 0 (0: no limit), got -1.0\n"
    assert main(["run", "--memory-limit", "nan"]) == 2
    assert capsys.readouterr().err == (
        "lossparity: error: --memory-limit must be a number >= 0 (0: no limit), got nan\n"
    )
