"""The results file on disk: gzip-compressed lines that survive a kill, resume and old files;
a baseline cut down to what ``lossparity diff`` compares, from which diff and merge work."""

import gzip
import json
import os
import shutil

import numpy as np
import pytest
from test_diff import BASE, META, NEW, result

from lossparity.cli import main
from lossparity.core.records import (
    GZIP_MAGIC,
    ResultsFileError,
    ResultsWriter,
    baseline_record,
    encode_array,
    json_line,
    read_records,
    write_all,
)


def _with_arrays(r: dict) -> dict:
    """A result as a run writes one: inputs, expected and actual values, a gradient, a summary."""
    x = np.linspace(-3.0, 3.0, 64)
    value = {"value": encode_array(np.array(0.25)), "dtype": "float32"}
    grad = {"value": encode_array(x / 7), "dtype": "float32"}
    errors = {"ok": r["verdict"] == "conform", "mismatched": 0, "total": 1, "max_abs": 0.0, "max_rel": 0.0}
    return {
        **r,
        "inputs": {"input": encode_array(x), "target": encode_array(np.arange(64) % 3)},
        "expected": value if "error" not in r["actual"] else r["expected"],
        "errors": {**errors, **r["errors"]},
        "gradients": {"input": {"expected": grad, "actual": grad, "verdict": "conform", "errors": errors}},
        "reproducer": None if r["verdict"] == "conform" else r["reproducer"],  # as a run writes it
    }


RECORDS = [META, *(_with_arrays(r) for r in BASE)]


def test_round_trip_is_compressed_and_exact(tmp_path):
    path = tmp_path / "results.jsonl"
    write_all(path, RECORDS)
    raw = path.read_bytes()
    assert raw[:2] == GZIP_MAGIC
    plain = "".join(json_line(r) + "\n" for r in RECORDS).encode()
    assert gzip.decompress(raw) == plain  # any gzip reader (zcat) reads it
    assert len(raw) < len(plain) / 4
    assert read_records(path) == RECORDS


def test_a_killed_writer_leaves_every_written_line_readable(tmp_path):
    """Each batch ends on a flush point: the file as it stands before close (no gzip trailer,
    what a SIGKILL leaves) reads whole, line by line."""
    path, copy = tmp_path / "results.jsonl", tmp_path / "killed.jsonl"
    writer = ResultsWriter(path)
    for r in RECORDS:
        writer.write(r)
        shutil.copyfile(path, copy)
        assert read_records(copy) == RECORDS[: RECORDS.index(r) + 1]
    writer.close()
    assert read_records(path) == RECORDS


def test_resume_appends_a_member_and_a_plain_file_stays_plain(tmp_path):
    path = tmp_path / "results.jsonl"
    write_all(path, RECORDS[:3])
    writer = ResultsWriter(path, append=True)  # what --resume does after rewriting the file
    for r in RECORDS[3:]:
        writer.write(r)
    writer.close()
    assert read_records(path) == RECORDS
    # A file of plain lines (written before compression, or by hand) is read, and appended to plainly.
    old = tmp_path / "old.jsonl"
    old.write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:3]))
    writer = ResultsWriter(old, append=True)
    for r in RECORDS[3:]:
        writer.write(r)
    writer.close()
    assert old.read_bytes()[:1] == b"{" and read_records(old) == RECORDS


def test_a_damaged_stream_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    write_all(path, RECORDS)
    raw = bytearray(path.read_bytes())
    raw[40:60] = os.urandom(20)  # the deflate stream broken past its header
    path.write_bytes(bytes(raw))
    with pytest.raises(ResultsFileError, match="results.jsonl"):
        read_records(path)
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert "results.jsonl" in err and len(err.splitlines()) == 1


def _baseline(tmp_path, records, name="base"):
    full, base = tmp_path / f"{name}-full.jsonl", tmp_path / f"{name}.jsonl"
    write_all(full, records)
    assert main(["merge", "--baseline", str(full), "-o", str(base)]) == 0
    return full, base


def test_a_baseline_keeps_what_diff_compares_and_no_arrays(tmp_path):
    full, base = _baseline(tmp_path, RECORDS)
    records = read_records(base)  # valid against the schema

    def size(rs):
        return sum(len(json_line(r)) for r in rs if r["kind"] == "result")

    assert size(records) < size(read_records(full)) / 4
    assert records[0]["form"] == "baseline"
    assert '"data"' not in "".join(map(json_line, records))
    by_case = {r["case_id"]: r for r in records if r["kind"] == "result"}
    assert by_case["raises"]["actual"] == {"error": "ValueError", "message": "m"}
    assert by_case["heals"]["reproducer"] == "print(1)" and by_case["heals"]["errors"]["summary"]
    assert "summary" not in by_case["stays"]["errors"]
    assert by_case["drifts"]["errors"]["max_ulp"] == 0.5
    # a conforming line: no origin nor tolerance, nor the absolute and relative errors and index diff does not read
    assert by_case["stays"]["origin"] == {} and by_case["heals"]["origin"] == {"table": "t"}
    errors = {"ok": True, "mismatched": 0, "total": 3, "max_abs": 0.0123456, "max_rel": 1 / 3, "max_ulp": 2 / 3}
    quiet = baseline_record({**RECORDS[1], "errors": {**errors, "index": [0], "summary": "s"}})
    assert quiet["errors"] == {"ok": True, "mismatched": 0, "total": 3, "max_ulp": 2 / 3}
    # a finding keeps them all
    found = baseline_record({**RECORDS[1], "verdict": "deviate", "errors": {**errors, "index": [0], "summary": "s"}})
    assert found["errors"] == {**errors, "index": [0], "summary": "s"}
    assert [r["kind"] for r in records].count("summary") == 1


def test_diff_from_a_baseline_finds_what_diff_from_the_full_file_finds(tmp_path, capsys):
    full, base = _baseline(tmp_path, RECORDS)
    capsys.readouterr()
    new = tmp_path / "new.jsonl"
    write_all(new, [{**META, "versions": {"torch": "2.13.0"}}, *(_with_arrays(r) for r in NEW)])
    answers = []
    for b in (full, base):
        code = main(["diff", str(b), str(new), "--json"])
        changes = json.loads(capsys.readouterr().out)["changes"]
        answers.append((code, sorted((c["kind"], json.dumps(c, sort_keys=True)) for c in changes)))
    assert answers[0] == answers[1] and answers[0][0] == 1
    kinds = {k for k, _ in answers[1][1]}
    assert {"new_deviation", "fixed_deviation", "changed_error", "value_drift"} <= kinds


def test_merge_of_baselines_is_a_baseline_and_reports_conflicts(tmp_path, capsys):
    _, a = _baseline(tmp_path, RECORDS[:5], "a")
    _, b = _baseline(tmp_path, [META, *RECORDS[4:]], "b")
    out = tmp_path / "merged.jsonl"
    assert main(["merge", str(a), str(b), "-o", str(out)]) == 0
    assert "into a baseline" in capsys.readouterr().out
    merged = read_records(out)
    assert merged[0]["form"] == "baseline"
    assert sorted(r["case_id"] for r in merged if r["kind"] == "result") == sorted(r["case_id"] for r in BASE)
    # A full file merged with a baseline: cut down alike, so the same result is a duplicate.
    full = tmp_path / "full.jsonl"
    write_all(full, RECORDS)
    assert main(["merge", str(full), str(a), "-o", str(tmp_path / "m2.jsonl")]) == 0
    assert "4 duplicates" in capsys.readouterr().out
    # A changed verdict under one identity is a conflict, baseline or not.
    changed = [META, {**RECORDS[1], "verdict": "deviate"}]
    _, c = _baseline(tmp_path, changed, "c")
    assert main(["merge", str(a), str(c), "-o", str(tmp_path / "m3.jsonl")]) == 1


def test_baseline_record_drops_divergences():
    assert baseline_record({"kind": "divergence"}) is None
    assert baseline_record({"kind": "agreement"}) is None
    r = baseline_record(_with_arrays(result(case="x")))
    assert r["inputs"] == {} and r["expected"] is None and r["actual"] is None
    assert r["gradients"]["input"]["actual"] is None and r["gradients"]["input"]["verdict"] == "conform"


def test_a_baseline_keeps_a_value_s_ulps_exact_and_no_known_result_s_reproducer(tmp_path):
    grad = {"expected": None, "actual": None, "verdict": "conform", "errors": {"max_ulp": 2 / 3, "max_abs": 1 / 3}}
    quiet = baseline_record({**RECORDS[1], "errors": {"max_ulp": 2 / 3}, "gradients": {"input": grad}})
    assert quiet["errors"]["max_ulp"] == 2 / 3  # diff's value drift compares it
    assert quiet["gradients"]["input"]["errors"] == {"max_ulp": 0.667}
    known = baseline_record({**RECORDS[3], "verdict": "known", "known": {"id": "k"}, "reproducer": "print(1)"})
    assert known["reproducer"] is None and known["known"] == {"id": "k"}
    deviate = baseline_record({**RECORDS[3], "verdict": "deviate", "reproducer": "print(1)"})
    assert deviate["reproducer"] == "print(1)"


def test_a_baseline_read_skimmed_keeps_the_arrays_it_keeps(tmp_path):
    """``merge --baseline`` reads lines without their numbers; a field it keeps that holds an
    array (a parameter's weight) is read whole, so the baseline's arrays fill their shapes."""
    weight = encode_array(np.array([0.25, 0.5, 2.0]))
    records = [META, *RECORDS[1:], {**RECORDS[1], "case_id": "weighted", "params": {"weight": weight}}]
    full, base = _baseline(tmp_path, records)
    by_case = {r["case_id"]: r for r in read_records(base) if r["kind"] == "result"}  # validated
    assert by_case["weighted"]["params"]["weight"] == weight
    assert by_case["weighted"]["inputs"] == {} and by_case["weighted"]["gradients"]["input"]["expected"] is None
    whole = [b for b in map(baseline_record, read_records(full)) if b is not None and b["kind"] == "result"]
    assert whole == [r for r in read_records(base) if r["kind"] == "result"]  # as if read whole


#: Values a field of a line is replaced by: each JSON type, integral and negative numbers, the
#: strings of the enums, and arrays whose items break the item schema only past the first.
_MUTANTS = (
    None, True, 0, -1, 2.0, 1.5, "", "nan", "conform", "float32", [], {}, [1, 2.0], [0, -1], [1, "nan"], [1, True],
    {"dtype": "float64", "shape": [1], "data": ["nan"]}, {"dtype": "float64", "shape": [2.0], "data": [1, 2]},
    {"dtype": "float8", "shape": [1], "data": [1]}, {"value": 1}, {"error": "E", "extra": 1},
)  # fmt: skip


def _paths(node, path=()):
    yield path
    children = node.items() if isinstance(node, dict) else enumerate(node[:3]) if isinstance(node, list) else ()
    for k, v in children:
        yield from _paths(v, (*path, k))


def test_the_compiled_schema_decides_every_line_as_jsonschema_does():
    """The compiled check (objects planned once per form of keys and value types, lists of
    numbers tested by their items' types) against jsonschema, on every one-field change of a
    result with arrays and gradients, of a divergence and of an agreement: each checked after the
    unchanged line, so a plan made for a valid line is what decides the changed one."""
    from fake_records import agreement, divergence, gradient

    from lossparity.core.records import _check, _validator

    a = _with_arrays(RECORDS[1])
    b = {**a, "binding": "jax.other", "gradients": {"input": gradient([1.0, 2.0], [1.0, float("nan")])}}
    lines = [a, b, divergence(a, b), agreement("bce", "x", "y", 3, 1)]
    checked = invalid = 0
    for line in lines:
        kind = line["kind"]
        assert _check(kind)(line) and _validator(kind).is_valid(line)
        for path in [p for p in _paths(line) if p]:
            for how in ("delete", *range(len(_MUTANTS))):
                changed = json.loads(json.dumps(line))
                parent = changed
                for step in path[:-1]:
                    parent = parent[step]
                if how == "delete":
                    if not isinstance(parent, dict):
                        continue
                    del parent[path[-1]]
                else:
                    parent[path[-1]] = json.loads(json.dumps(_MUTANTS[how]))
                expected = _validator(kind).is_valid(changed)
                assert _check(kind)(changed) == expected, (kind, path, how)
                checked += 1
                invalid += not expected
    assert checked > 2000 and invalid > checked // 4  # the changes do break lines, and not all of them
