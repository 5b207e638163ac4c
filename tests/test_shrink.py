"""Shrinking (``conformance/shrink.py``): faults planted in an adapter installed as a third
party's is (``tests/faulty/lp_planted``, an entry point in ``lossparity.adapters``) shrink to
their minimal trigger, each step a real call judged as the run judges: NaN whenever an input
element is 0 shrinks to a one-element input of 0; an error past 3 batch rows, to a batch of 4.
A crash while shrinking is a finding of its own; the budget stops a group; ``--no-shrink``
turns it off; the results file records each group's shrunk case, and the report shows it (the
smallest case first, the original beside it, the ``lossparity explain`` command, which runs)."""

import html
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_records import result, shrunk

from lossparity.conformance import shrink
from lossparity.conformance.runner import evaluate
from lossparity.conformance.specs import SPECS
from lossparity.core.model import Case
from lossparity.core.records import decode_array, encode_array, read_records
from lossparity.reports.report import render_report

FAULTY = Path(__file__).parent / "faulty"
RUN = ["--frameworks", "planted", "--dtypes", "float64", "--examples", "12", "--seed", "2", "--timeout", "20"]


def _installed(tmp: Path) -> str:
    """The PYTHONPATH under which lp_planted is an installed adapter (its entry point found)."""
    info = tmp / "site" / "lp_planted-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lp-planted\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lossparity.adapters]\nplanted = lp_planted\n")
    return f"{tmp / 'site'}:{FAULTY}"


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """``run(*options)``: a run of the planted bindings (seed 2 draws a batch of 4 rows), its
    process, records, output folder and environment."""
    tmp = tmp_path_factory.mktemp("planted")
    env = {**os.environ, "PYTHONPATH": _installed(tmp)}

    def run(*options: str, name: str = "out"):
        out = tmp / name
        proc = subprocess.run(
            [sys.executable, "-m", "lossparity.cli", "run", *RUN, *options, "--out", str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        return proc, read_records(out / "results.jsonl"), out, env

    return run


@pytest.fixture(scope="module")
def shrunk_run(planted):
    """The two planted faults (crash_at_one runs alone: its crash and rerun cost the time share)."""
    return planted("--losses", "lp_planted.nan_at_zero,lp_planted.raises_past_3_rows")


def _groups(records, binding: str) -> list[dict]:
    return [r for r in records if r["kind"] == "shrunk" and r["binding"] == f"lp_planted.{binding}"]


def _inputs(record) -> dict[str, np.ndarray]:
    return {k: decode_array(v) for k, v in record["inputs"].items()}


def test_nan_at_zero_shrinks_to_a_one_element_input_of_zero(shrunk_run):
    proc, records, _, _ = shrunk_run
    assert proc.returncode == 1, proc.stderr[-2000:]
    groups = _groups(records, "nan_at_zero")
    assert groups
    for g in groups:
        assert g["symptom"] == [{"part": "value", "verdict": "deviate", "symptom": "nonfinite nan"}]
        case = g["case"]
        x = _inputs(case)
        assert x["input"].size == 1 and x["input"].item() == 0.0, x
        assert g["elements"]["after"] == 2 and g["stopped"] == "minimal"
        assert case["params"]["reduction"] == "mean"  # back at its default
        assert np.isnan(decode_array(case["actual"]["value"])).all()
        assert np.isfinite(decode_array(case["expected"]["value"])).all()
        assert case["case_id"] == g["original"]["case_id"] + "~shrunk"
    assert max(g["elements"]["before"] for g in groups) > 2  # something was cut


def test_raising_past_3_rows_shrinks_to_a_batch_of_4(shrunk_run):
    _, records, _, _ = shrunk_run
    (g,) = _groups(records, "raises_past_3_rows")
    assert g["verdict"] == "error_mismatch"
    assert g["symptom"] == [{"part": "value", "verdict": "error_mismatch", "symptom": "error ValueError"}]
    x = _inputs(g["case"])
    assert x["input"].shape == (4,) and not x["input"].any() and not x["target"].any()
    assert g["case"]["params"]["reduction"] == "mean"  # the original's reduction=sum went back to its default
    assert g["original"]["params"]["reduction"] == "sum"


def test_a_crash_while_shrinking_is_a_finding(planted):
    proc, records, _, _ = planted("--losses", "lp_planted.crash_at_one", name="crash")
    assert proc.returncode == 1
    (g,) = _groups(records, "crash_at_one")
    assert g["stopped"] == "crash" and g["elements"]["after"] > 2
    crashes = [
        r
        for r in records
        if r["kind"] == "result" and r["binding"] == "lp_planted.crash_at_one" and "~shrink" in r["case_id"]
    ]
    assert len(crashes) == 1
    (c,) = crashes
    assert c["verdict"] == "crash" and c["rerun"]["reproduced"] is True  # confirmed alone, as in a run
    assert c["origin"] == {"table": "shrink", "from": g["original"]["case_id"]}
    assert _inputs(c)["input"].size == 1


def test_the_explain_command_reproduces_the_shrunk_case(shrunk_run):
    _, records, _, env = shrunk_run
    g = _groups(records, "nan_at_zero")[0]
    words = shlex.split(g["explain"])
    assert words[:3] == ["lossparity", "explain", "lp_planted.nan_at_zero"]
    proc = subprocess.run(
        [sys.executable, "-m", "lossparity.cli", *words[1:]], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "value     nan" in proc.stdout and "deviate" in proc.stdout


def test_results_file_and_report_show_each_groups_shrunk_case(shrunk_run, tmp_path):
    proc, records, out, env = shrunk_run
    assert sum(r["kind"] == "shrunk" for r in records) >= 3  # validated against the schema by read_records
    rebuilt = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "lossparity.cli", "report", str(out / "results.jsonl"), "-o", str(rebuilt)],
        env={**env, "PYTHONPATH": ""},  # from the file alone: no adapter installed
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1 and rebuilt.exists(), done.stderr  # 1: the file holds findings
    for page in ((out / "report.html").read_text(), rebuilt.read_text()):
        assert 'id="shrunk"' in page and page.index('id="shrunk"') < page.index('id="findings"')
        g = _groups(records, "raises_past_3_rows")[0]
        assert g["explain"] in html.unescape(page)
        block = page[page.index('id="shrunk"') : page.index('id="findings"')]
        assert block.index("smallest case") < block.index("original case")


def test_no_shrink_records_the_same_results_without_shrunk_lines(planted, shrunk_run):
    proc, records, _, _ = planted(
        "--no-shrink", "--losses", "lp_planted.nan_at_zero,lp_planted.raises_past_3_rows", name="no-shrink"
    )
    assert proc.returncode == 1
    assert not [r for r in records if r["kind"] == "shrunk"]

    def verdicts(rs):
        return sorted((r["binding"], r["case_id"], r["verdict"]) for r in rs if r["kind"] == "result")

    with_shrinking = [r for r in shrunk_run[1] if "~shrink" not in r.get("case_id", "")]
    assert verdicts(records) == verdicts(with_shrinking)


def test_known_groups_are_shrunk_only_with_shrink_known(planted, tmp_path):
    """A group of known deviations keeps its results, judged known, but is shrunk only when asked:
    its entry already carries a reproducer."""
    known = tmp_path / "known.toml"
    known.write_text(
        "[[deviation]]\n"
        'id = "planted-nan-at-zero"\n'
        'binding = "lp_planted.nan_at_zero"\n'
        'symptom = { kind = "nonfinite", nonfinite = "nan" }\n'
        'explanation = "the planted fault: NaN whenever an element of the input is 0"\n'
        'reproducer = "lossparity explain lp_planted.nan_at_zero --input 0.0 --target 1.0"\n'
    )
    runs = {
        flag: planted("--known", str(known), "--losses", "lp_planted.nan_at_zero", *flag, name=f"known{len(flag)}")
        for flag in ((), ("--shrink-known",))
    }
    for proc, records, _, _ in runs.values():
        assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]  # 1: a deviate left
        assert any(r["kind"] == "result" and r["verdict"] == "known" for r in records)

    def shrunk_verdicts(flag):
        return {g["verdict"] for g in _groups(runs[flag][1], "nan_at_zero")}

    assert "known" not in shrunk_verdicts(())
    assert "known" in shrunk_verdicts(("--shrink-known",))
    assert shrink.Budget().verdicts() == ("deviate", "error_mismatch", "crash", "timeout")
    assert "known" in shrink.Budget(known=True).verdicts()


def test_the_step_limit_stops_a_group(planted):
    proc, records, _, _ = planted("--shrink-steps", "1", name="one-step")
    groups = [r for r in records if r["kind"] == "shrunk"]
    assert groups and all(g["steps"] <= 1 for g in groups)
    assert any(g["stopped"] == "steps" for g in groups)


# -- in process: the search itself ---------------------------------------------------------------


def _planted():
    sys.path.insert(0, str(FAULTY))
    try:
        import lp_planted
    finally:
        sys.path.remove(str(FAULTY))
    return lp_planted


def _search(binding_name: str, case: Case, **kwargs):
    lp = _planted()
    binding = next(b for b in lp.BINDINGS if b.id == f"lp_planted.{binding_name}")
    spec = SPECS["absolute_error"]

    def judge(c):
        return evaluate(lp.ADAPTER, binding, spec, c, "float64")

    first = judge(case)
    key = shrink.group_key(first)
    return first, shrink.search(spec, binding, case, first, judge, lambda r: shrink.group_key(r) == key, **kwargs)


def _case(x: np.ndarray, **params) -> Case:
    rng = np.random.default_rng(0)
    return Case("absolute_error", "big", {"table": "test"}, {"input": x, "target": rng.normal(size=x.shape)}, params)


def test_a_large_case_shrinks_to_its_trigger_in_few_steps():
    x = np.random.default_rng(1).uniform(1.0, 3.0, (9, 3))
    x[6, 1] = 0.0
    first, got = _search("nan_at_zero", _case(x, reduction="sum"))
    assert first["verdict"] == "deviate"
    assert got.case.arrays["input"].shape == () and got.case.arrays["input"] == 0.0
    assert got.case.arrays["target"] == 0.0 and got.case.params == {}
    assert got.stopped == "minimal" and got.steps <= 30

    x = np.random.default_rng(2).uniform(1.0, 3.0, (9, 3))
    first, got = _search("raises_past_3_rows", _case(x))
    assert first["verdict"] == "error_mismatch"
    assert got.case.arrays["input"].shape == (4,) and not got.case.arrays["input"].any()


def test_the_time_budget_stops_a_group_before_its_first_step():
    x = np.array([1.0, 0.0, 2.0])
    _, got = _search("nan_at_zero", _case(x), time_left=lambda: 0.0)
    assert got.stopped == "time" and got.steps == 0 and got.case.arrays["input"].shape == (3,)
    budget = shrink.Budget(ran=100.0, spent=10.0, grace=0.0)
    assert budget.left() == pytest.approx(5.0)  # 15% of 100 s, less the 10 s spent


def test_report_from_records_shows_the_shrunk_case_beside_the_original():
    original = result(
        "torch.nn.BCELoss",
        "deviate",
        case_id="gen-0-7",
        inputs={"input": encode_array(np.full((5, 3), 0.25)), "target": encode_array(np.ones((5, 3)))},
        actual={"value": encode_array(np.float64("nan")), "dtype": "float32"},
    )
    small = result(
        "torch.nn.BCELoss",
        "deviate",
        case_id="gen-0-7~shrunk",
        inputs={"input": encode_array(np.array([0.0])), "target": encode_array(np.array([1.0]))},
        actual={"value": encode_array(np.float64("nan")), "dtype": "float32"},
    )
    line = shrunk(original, small)
    assert line["elements"] == {"before": 30, "after": 2}
    page = render_report([result(), original, line])
    block = page[page.index('id="shrunk"') : page.index('id="findings"')]
    assert "30 → 2 elements" in block and "gen-0-7~shrunk" in block and "gen-0-7</span>" in block
    assert block.index("gen-0-7~shrunk") < block.index("original case")
    assert "lossparity explain torch.nn.BCELoss" in block


def test_a_divergence_shrinks_to_the_smallest_case_on_which_both_sides_keep_their_symptoms():
    """NaN at any 0 against an error past 3 rows: they disagree the same way (a NaN, b raises) on
    a batch of 4 with a 0, and on nothing smaller."""
    lp = _planted()
    a, b = (next(x for x in lp.BINDINGS if x.id == f"lp_planted.{n}") for n in ("nan_at_zero", "raises_past_3_rows"))
    spec = SPECS["absolute_error"]
    x = np.random.default_rng(3).uniform(1.0, 3.0, (9, 3))
    x[7, 2] = 0.0
    case = _case(x, reduction="none")

    def judge(binding, c):
        return evaluate(lp.ADAPTER, binding, spec, c, "float64")

    ra, rb = judge(a, case), judge(b, case)
    assert shrink.still_unexplained(ra, rb, a, b)
    got, got_b = shrink.shrink_divergence(spec, a, b, case, ra, rb, judge)
    assert got.case.arrays["input"].shape == (4,) and not got.case.arrays["input"].any()
    assert got.case.params == {}
    assert got.record["verdict"] == "deviate" and got_b["verdict"] == "error_mismatch"


def test_a_runs_unexplained_divergences_are_shrunk_and_recorded(shrunk_run):
    _, records, out, _ = shrunk_run
    lines = [r for r in records if r["kind"] == "shrunk" and "divergence" in r]
    assert lines  # validated against $defs/shrunk by read_records
    for line in lines:
        assert line["divergence"]["binding"] != line["binding"]
        assert line["divergence"]["explain"].startswith(f"lossparity explain {line['binding']} ")
    assert "divergence from" in (out / "report.html").read_text()


def test_merge_and_resume_keep_each_groups_shrunk_line(shrunk_run, planted, tmp_path):
    from lossparity.conformance.resume import done, load
    from lossparity.reports.merge import merge

    _, records, out, _ = shrunk_run
    _, _, plain, _ = planted("--no-shrink", "--losses", "lp_planted.nan_at_zero", name="plain")
    groups = [r for r in records if r["kind"] == "shrunk" and "divergence" not in r]
    merged = merge([out / "results.jsonl", plain / "results.jsonl", out / "results.jsonl"])
    assert merged.shrunk == groups  # each once; a divergence's is recomputed with the divergences
    meta, kept = load(out / "results.jsonl", records[0])
    assert [r for r in kept if r["kind"] == "shrunk"] == groups
    assert done(kept) == done([r for r in records if r["kind"] == "result"])


def test_run_help_lists_the_shrink_options(capsys):
    from lossparity.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["run", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "--no-shrink" in text
        and "--shrink-steps" in text
        and "--shrink-known" in text
        and "at most 15% of a worker's run time" in text
    )
    assert shrink.DEFAULT_STEPS == 40 and f"(default {shrink.DEFAULT_STEPS};" in text
