"""Crash isolation: a broken adapter, installed as a third party's is, segfaults, aborts, hangs,
allocates without bound, exits and returns garbage on chosen cases; the run records each as a
crash, timeout or error with its reproducer, and keeps every other result. Each crash and
timeout is rerun alone in a fresh process: one that happens again is confirmed; one that
happens only after other calls ran in the process (``segfault_after_first``) is
``unconfirmed``, a finding no known deviation may absorb."""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from lossparity.conformance import runner, sandbox
from lossparity.core.model import Case
from lossparity.core.records import encode_array, read_records

FAULTY = Path(__file__).parent / "faulty"


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    """One run of the faulty adapter's bindings, float64, 2 s per case, 256 MiB of memory."""
    tmp = tmp_path_factory.mktemp("faulty")
    env = {**os.environ, "PYTHONPATH": _installed(tmp)}
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
            "5",
            "--timeout",
            "2",
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
    return proc, read_records(out / "results.jsonl"), _lp_faulty()


def _installed(tmp: Path) -> str:
    """The PYTHONPATH under which lp_faulty is an installed adapter (its entry point found)."""
    info = tmp / "site" / "lp_faulty-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lp-faulty\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lossparity.adapters]\nfaulty = lp_faulty\n")
    return f"{tmp / 'site'}:{FAULTY}"


def _lp_faulty():
    sys.path.insert(0, str(FAULTY))
    try:
        import lp_faulty
    finally:
        sys.path.remove(str(FAULTY))
    return lp_faulty


EXPECTED = {  # fault -> (verdict, start of the recorded message)
    "segfault": ("crash", "the process was killed by SIGSEGV"),
    "abort": ("crash", "the process was killed by SIGABRT"),
    "hang": ("timeout", "no answer within the time limit of 2 s; the process was killed"),
    "oom": ("crash", "the process grew to "),
    "exit": ("crash", "the process exited with status 3 during the call"),
    "wrong_shape": ("deviate", None),
    "wrong_type": ("error_mismatch", "TypeError"),
    "segfault_after_first": ("unconfirmed", "the process was killed by SIGSEGV"),
}
#: What faulthandler prints on the child's stderr at a fatal signal.
FATAL = {
    "segfault": "Fatal Python error: Segmentation fault",
    "abort": "Fatal Python error: Aborted",
    "segfault_after_first": "Fatal Python error: Segmentation fault",
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
            if verdict in ("crash", "timeout"):  # confirmed: the rerun alone did it again
                assert r["actual"]["error"] == verdict and r["actual"]["message"].startswith(message)
                assert r["expected"]["value"]  # the oracle's expectation is kept
                rerun = r["rerun"]
                assert rerun["reproduced"] is True and rerun["outcome"]["verdict"] == verdict
                assert rerun["outcome"]["message"].startswith(message)
                if fault in FATAL:  # the child's faulthandler printed the stack of the call, kept
                    for got in (r["actual"], rerun["outcome"]):
                        assert FATAL[fault] in got["stderr"] and "in _call" in got["stderr"], got
                else:  # killed from outside or exited: nothing on stderr
                    assert "stderr" not in r["actual"] and "stderr" not in rerun["outcome"]
                assert rerun["before"]["cases"] >= 0 and rerun["before"]["compiled"] == 0  # NumPy compiles nothing
            elif verdict == "unconfirmed":
                _check_unconfirmed(r, message)
            elif verdict == "error_mismatch":
                assert r["actual"]["error"] == message
            else:
                shape = tuple(r["expected"]["value"]["shape"])
                assert r["errors"]["summary"] == f"Shape mismatch: got (7,), expected {shape}"
            if r["verdict"] not in ("crash", "timeout", "unconfirmed"):
                assert "rerun" not in r  # only what never returned is rerun
    assert injected == len(struck) * len(lp_faulty.FAULTS)
    counts = Counter(r["verdict"] for r in results)
    assert counts["timeout"] == counts["unconfirmed"] == len(struck)
    assert records[-1]["kind"] == "summary" and records[-1]["counts"]["crash"] == 4 * len(struck)
    assert records[-1]["counts"]["unconfirmed"] == len(struck)
    # the terminal summary names it for what it is
    assert f"  crash, not reproduced alone {len(struck):>4}  lp_faulty.segfault_after_first  [entropy]" in proc.stdout


def _check_unconfirmed(r, message):
    """A segfault that happens only when another call ran before in the process: alone, in a
    fresh process, the case returns the oracle's value; the record says so and what the process
    it crashed in had done (at least one call before, the one just before named)."""
    assert r["actual"]["error"] == "crash" and r["actual"]["message"] == message
    assert FATAL["segfault_after_first"] in r["actual"]["stderr"] and "in _call" in r["actual"]["stderr"]
    rerun, before = r["rerun"], r["rerun"]["before"]
    assert rerun["reproduced"] is False
    assert rerun["outcome"]["verdict"] == rerun["outcome"]["value_verdict"] == "conform"
    assert rerun["outcome"]["actual"]["value"] == r["expected"]["value"]  # the oracle is NumPy too
    assert before["cases"] >= 1 and before["previous"].startswith("lp_faulty.")
    assert before["previous"].endswith(" eager") and " float64 " in before["previous"]
    assert before["compiled"] == 0 and 0 < before["rss_mib"] <= before["peak_rss_mib"]
    assert r["errors"]["summary"] == (
        f"crash, not reproduced alone: {message}; rerun alone in a fresh process, it returned a value (conform). "
        f"The process it first failed in had run {before['cases']} units, compiled 0 times, "
        f"and used {before['rss_mib']:g} MiB."
    )
    assert r["known"] is None and r["reproducer"]


def _lost(known, reproduced: bool) -> dict:
    """``runner.lost`` of a segfault of the faulty adapter, rerun with or without a crash."""
    lp_faulty = _lp_faulty()
    from lossparity.conformance.specs import SPECS

    case = Case(
        "entropy", "gen-0-1", {"generator": "test", "seed": 0, "index": 1}, {"input": np.full((1, 2, 3), 1 / 3)}
    )
    outcome = (
        {"verdict": "crash", "message": "the process was killed by SIGSEGV", "seconds": 0.01}
        if reproduced
        else {
            "verdict": "conform",
            "value_verdict": "conform",
            "gradients": None,
            "actual": {"value": encode_array(np.full((1, 2), np.log(3))), "dtype": "float64"},
            "seconds": 0.001,
        }
    )
    before = {"cases": 7, "batches": 1, "compiled": 2, "previous": "b float64 c eager", "seconds": 3.0, "maps": None}
    return runner.lost(
        lp_faulty.ADAPTER,
        lp_faulty.BINDINGS[-1],
        SPECS["entropy"],
        case,
        "float64",
        "crash",
        "the process was killed by SIGSEGV",
        0.01,
        known=known,
        rerun={
            "reproduced": reproduced,
            "outcome": outcome,
            "before": {**before, "rss_mib": 123.4, "peak_rss_mib": 130},
        },
    )


def test_a_crash_not_reproduced_alone_is_never_matched_by_a_known_deviation(monkeypatch):
    """The known-deviation matcher (whatever it is) is not even asked about an unconfirmed
    crash; a confirmed one goes to it as any finding does."""
    asked = []
    entry = {"id": "matches-everything", "explanation": "-", "link": "-"}
    everything = SimpleNamespace(complete=True, entries=[entry], known=lambda verdict: {**entry, "verdict": verdict})
    monkeypatch.setattr(runner, "match", lambda record, known: asked.append(record["verdict"]) or everything)
    confirmed = _lost(known=[everything], reproduced=True)
    assert confirmed["verdict"] == "known" and confirmed["known"]["verdict"] == "crash"
    assert confirmed["errors"]["summary"] == "the process was killed by SIGSEGV"
    unconfirmed = _lost(known=[everything], reproduced=False)
    assert asked == ["crash"]
    assert unconfirmed["verdict"] == unconfirmed["value_verdict"] == "unconfirmed" and unconfirmed["known"] is None
    assert unconfirmed["errors"]["summary"] == (
        "crash, not reproduced alone: the process was killed by SIGSEGV; rerun alone in a fresh process, it "
        "returned a value (conform). The process it first failed in had run 7 units, compiled 2 times, and used "
        "123.4 MiB."
    )
    assert unconfirmed["rerun"]["before"]["previous"] == "b float64 c eager"
    assert unconfirmed["reproducer"] and "lp_faulty.segfault_after_first(input)" in unconfirmed["reproducer"]


def test_the_limits_are_options_with_one_line_errors(capsys):
    from lossparity.cli import main

    assert main(["run", "--timeout", "-1"]) == 2
    assert capsys.readouterr().err == "lossparity: error: --timeout must be a number >= 0 (0: no limit), got -1.0\n"
    assert main(["run", "--memory-limit", "nan"]) == 2
    assert capsys.readouterr().err == (
        "lossparity: error: --memory-limit must be a number >= 0 (0: no limit), got nan\n"
    )


def test_a_worn_child_is_replaced_between_requests(tmp_path, monkeypatch):
    """A child past half the memory mappings a process may hold (``max_maps``), or past half its
    memory limit, is replaced by a fresh one before the next request, which then succeeds; one
    under both is kept. (A JAX child can run out of mappings long before it runs out of memory.)"""
    monkeypatch.setenv("PYTHONPATH", _installed(tmp_path))
    missing = ("missing", ("faulty", "lp_faulty.segfault", "cpu", False))  # None: the binding exists
    box = sandbox.Sandbox(timeout_s=30, memory_gib=None)
    try:
        box.look_every = 0.0  # look before every request
        assert box.ask(missing)[:2] == ("ok", None)
        first = box.proc.pid
        assert box.ask(missing)[:2] == ("ok", None)
        assert box.proc.pid == first and box.recycled == 0 and 0 < box.maps < box.max_maps
        assert box.max_maps == sandbox._max_map_count() // 2
        box.max_maps = box.maps - 1
        assert box.ask(missing)[:2] == ("ok", None)
        second = box.proc.pid
        assert second != first and box.recycled == box.restarts == 1
        box.max_maps = 10**9
        box.memory_bytes = int(box._look() * 1.5)  # resident past half the limit, under the limit
        assert box.ask(missing)[:2] == ("ok", None)
        assert box.proc.pid != second and box.recycled == 2
        box.memory_bytes = None
        assert box.ask(missing)[:2] == ("ok", None) and box.recycled == 2
    finally:
        box.close()
