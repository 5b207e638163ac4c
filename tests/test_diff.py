"""`lossparity diff`: every kind of change classified, exit code by policy, bad input."""

import json

import fake_records
import numpy as np
import pytest

from lossparity.cli import main
from lossparity.core.records import encode_array, read_records, schema_errors, write_all
from lossparity.reports.diff import diff, diff_files, markdown, rows
from lossparity.reports.regression import MAX_DETAILED, render_regression


def result(
    binding="torch.nn.BCELoss", case="c1", verdict="conform", *, error=None, ulp=0.5, spec="binary_cross_entropy"
):
    actual = {"error": error, "message": "m"} if error else {"value": encode_array(np.array(0.5)), "dtype": "float32"}
    return fake_records.result(
        binding,
        verdict,
        framework=binding.split(".")[0],
        spec=spec,
        case_id=case,
        origin={"table": "t"},
        params={},
        inputs={},
        tolerance=None,
        expected=None,
        actual=actual,
        errors={"max_ulp": ulp, "summary": "Mismatched elements: 1 / 1 (100.0%)"},
        reproducer="print(1)",
        seconds=None,
    )


META = {
    "kind": "meta",
    "schema": 1,
    "lossparity": "0",
    "versions": {"torch": "2.12.0"},
    "python": "3.11",
    "platform": "p",
    "device": "cpu",
    "seed": 0,
    "command": "c",
    "started": "s",
}

BASE = [
    result(case="stays"),
    result(case="breaks"),
    result(case="heals", verdict="deviate"),
    result(case="raises", verdict="error_mismatch", error="ValueError"),
    result(case="drifts", ulp=0.5),
    result(case="wobbles", ulp=0.5),
    result(case="dropped"),
    result(binding="keras.losses.Gone", case="c1"),
]
NEW = [
    result(case="stays"),
    result(case="breaks", verdict="deviate"),
    result(case="heals"),
    result(case="raises", verdict="error_mismatch", error="RuntimeError"),
    result(case="drifts", ulp=9.0),
    result(case="wobbles", ulp=3.0),
    result(binding="optax.losses.New", case="c1"),
]


def test_every_change_is_classified():
    d = diff([META, *BASE], [{**META, "versions": {"torch": "2.13.0"}}, *NEW], drift_ulps=4)
    got = {(c.kind, c.key[1], c.key[5]) for c in d.changes}
    assert got == {
        ("new_deviation", "torch.nn.BCELoss", "breaks"),
        ("fixed_deviation", "torch.nn.BCELoss", "heals"),
        ("changed_error", "torch.nn.BCELoss", "raises"),
        ("value_drift", "torch.nn.BCELoss", "drifts"),  # 0.5 -> 9 ULPs; 0.5 -> 3 is within 4
        ("coverage", "torch.nn.BCELoss", "dropped"),
        ("removed_binding", "keras.losses.Gone", "c1"),
        ("new_binding", "optax.losses.New", "c1"),
    }
    assert d.matched == 6


def _files(tmp_path):
    base, new = tmp_path / "base.jsonl", tmp_path / "new.jsonl"
    write_all(base, [META, *BASE])
    write_all(new, [{**META, "versions": {"torch": "2.13.0"}}, *NEW])
    assert all(not schema_errors(r) for r in [META, *BASE, *NEW])
    return str(base), str(new)


def test_files_are_diffed_as_baselines_and_the_changes_read_whole(tmp_path):
    """diff_files keeps each result as a baseline does (no arrays) and classifies exactly as the
    whole records do; the changes' results, which the regression report shows, come back whole."""
    base, new = tmp_path / "base.jsonl", tmp_path / "new.jsonl"
    write_all(base, [META, *BASE])
    arrays = {"input": encode_array(np.array([0.25, 0.75], dtype=np.float32))}
    changed = [{**r, "inputs": arrays} if r["case_id"] in ("breaks", "drifts") else r for r in NEW]
    write_all(new, [{**META, "versions": {"torch": "2.13.0"}}, *changed])
    whole = diff(read_records(base), read_records(new), drift_ulps=4)
    d = diff_files(base, new, drift_ulps=4)
    assert [(c.kind, c.key, c.detail) for c in d.changes] == [(c.kind, c.key, c.detail) for c in whole.changes]
    assert d.matched == whole.matched == 6 and d.base_meta == whole.base_meta and d.new_meta == whole.new_meta
    assert [(c.base, c.new) for c in d.changes] == [(c.base, c.new) for c in whole.changes]
    breaks = next(c for c in d.changes if c.key[5] == "breaks")
    assert breaks.new["inputs"]["input"]["data"] == [0.25, 0.75]  # read whole in the second pass
    # a baseline as BASE: its results stay as the baseline keeps them (it has nothing more)
    merged = tmp_path / "baseline.jsonl"
    assert main(["merge", str(base), "-o", str(merged), "--baseline"]) == 0
    d = diff_files(merged, new, drift_ulps=4)
    assert {(c.kind, c.key[5]) for c in d.changes} == {(c.kind, c.key[5]) for c in whole.changes}
    assert next(c for c in d.changes if c.key[5] == "drifts").base["inputs"] == {}


def test_exit_code_follows_the_policy(tmp_path, capsys):
    base, new = _files(tmp_path)
    assert main(["diff", base, new]) == 1
    out = capsys.readouterr().out
    assert "3 regressions" in out and "| torch | 2.12.0 -> 2.13.0 |" in out
    assert main(["diff", base, new, "--fail-on", "coverage"]) == 1
    assert main(["diff", base, new, "--fail-on", "value_drift", "--drift-ulps", "10"]) == 0
    assert main(["diff", base, base]) == 0
    capsys.readouterr()
    md = tmp_path / "summary.md"
    assert main(["diff", base, new, "--json", "--markdown", str(md)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["counts"] == {
        "new_deviation": 1,
        "fixed_deviation": 1,
        "changed_error": 1,
        "value_drift": 1,
        "coverage": 1,
        "removed_binding": 1,
        "new_binding": 1,
    }
    assert data["regressions"] == 3 and md.read_text().startswith("### lossparity diff: ❌ 3 regressions")


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--fail-on", "everything"],
            "--fail-on: unknown change class 'everything'; accepted: new_deviation, "
            "changed_error, value_drift, removed_binding, coverage, new_binding, fixed_deviation",
        ),
        (["--drift-ulps", "-1"], "--drift-ulps must be a number >= 0, got -1.0"),
    ],
)
def test_bad_options_are_one_line(tmp_path, capsys, argv, message):
    base, new = _files(tmp_path)
    assert main(["diff", base, new, *argv]) == 2
    assert capsys.readouterr().err == f"lossparity: error: {message}\n"


def test_a_missing_file_is_one_line(tmp_path, capsys):
    base, _ = _files(tmp_path)
    assert main(["diff", base, str(tmp_path / "nope.jsonl")]) == 2
    assert capsys.readouterr().err == f"lossparity: error: {tmp_path / 'nope.jsonl'}: no such results file\n"


def unsupported(binding, reason):
    return {
        **result(binding=binding, case="-"),
        "dtype": "-",
        "device": "-",
        "mode": "-",
        "verdict": "unsupported",
        "actual": {"error": "unavailable", "message": reason},
        "errors": None,
        "reproducer": None,
    }


def test_a_binding_new_in_a_release_is_one_row_with_its_reason():
    why = "optax.losses.New does not exist in optax 0.2.2"
    d = diff(
        [META, unsupported("optax.losses.New", why)],
        [META, *(result(binding="optax.losses.New", case=f"c{i}") for i in range(3))],
    )
    assert [(c.kind, c.detail) for c in d.changes] == [("new_binding", f"did not run in BASE: {why}")] * 3
    assert [(c.key[5], n) for c, n in rows(d.changes)] == [("c0", 3)]
    assert (
        f"| new_binding | binary_cross_entropy | `optax.losses.New` | all | all | all | 3 cases | "
        f"did not run in BASE: {why} |"
    ) in markdown(d)


HOSTILE = '<img src=x onerror="alert(1)">'


def test_html_regression_report(tmp_path, capsys):
    base, new = _files(tmp_path)
    records = read_records(new, validate=False)
    records[2]["actual"] = {"error": "RuntimeError", "message": HOSTILE}  # 'breaks' now raises, hostile text
    write_all(new, records)
    page_path = tmp_path / "out" / "regression.html"
    assert main(["diff", base, new, "-o", str(page_path)]) == 1
    assert capsys.readouterr().err == f"regression report: {page_path}\n"
    page = page_path.read_text()
    assert "3 regressions" in page and HOSTILE not in page and "&lt;img src=x onerror=" in page
    # both runs side by side, the changed version marked; grouped by framework, then spec
    assert '<tr class="changed"><th>torch</th><td class="mono">2.12.0</td><td class="mono">2.13.0</td></tr>' in page
    assert page.index('id="fw-keras"') < page.index('id="fw-optax"') < page.index('id="fw-torch"')
    torch_part = page[page.index('id="fw-torch"') :]
    kinds = [
        k
        for k in ("new_deviation", "changed_error", "coverage", "value_drift", "fixed_deviation")
        if f'data-kind="{k}"' in torch_part
    ]
    assert kinds == ["new_deviation", "changed_error", "coverage", "value_drift", "fixed_deviation"]
    assert torch_part.index('data-kind="changed_error"') < torch_part.index('data-kind="value_drift"')
    assert (
        page.count("<h4>reproducer (NEW)</h4>") == 5 and page.count("<h4>reproducer (BASE)</h4>") == 2
    )  # 'Gone', 'dropped'
    assert main(["diff", base, new, "-o", str(tmp_path)]) == 2  # a folder
    assert capsys.readouterr().err.startswith(f"lossparity: error: cannot write {tmp_path}: ")


def test_html_details_are_capped_per_binding_and_class():
    base = [META, *(result(case=f"c{i:02d}", ulp=0.0) for i in range(MAX_DETAILED + 5))]
    new = [META, *(result(case=f"c{i:02d}", ulp=99.0) for i in range(MAX_DETAILED + 5))]
    page = render_regression(diff(base, new), ("new_deviation",), 4)
    assert page.count('<details class="item') == MAX_DETAILED
    assert "5 more changes in binary_cross_entropy, listed without detail" in page
    assert "error against the oracle 0 -&gt; 99 ULPs" in page
