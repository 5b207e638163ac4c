"""Fuzzing the command line's contract on bad input, with Hypothesis.

The contract (``lossparity/cli.py``): bad input to any command is exactly one line on stderr,
``lossparity: error: <message naming the problem>``, exit code 2, and no traceback; a results
file is only ever parsed with ``json.loads``, never executed. Every property calls
``lossparity.cli.main`` in-process and reads its output with ``capsys``.

Each property takes its number of examples from the ``EXAMPLES`` table below (``fuzz(name)``),
which is the file's whole budget: about 20 s on two cores (``LOSSPARITY_FUZZ_SCALE=20`` for a
longer soak). A bug found that lies outside ``lossparity/core/records.py`` and ``lossparity/literals.py``
is pinned by a strict xfail test (``test_known_*``) with the input that reproduces it, and the
properties set exactly those inputs aside (``_known_bug``) so that they keep testing the rest.
When such a bug is fixed, its xfail test passes, which fails the suite (strict): then move it to
the regressions at the end and drop its ``_known_bug`` entry. The regressions are the bugs these
properties found, each with the input that showed it.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import fake_records
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lossparity.cli import main
from lossparity.conformance.specs import PARAMETERS, SPECS
from lossparity.core.records import schema_errors
from lossparity.literals import MAX_DIMS, LiteralError, parse_array, parse_value

PREFIX = "lossparity: error: "

#: Examples per property: the fuzzing budget of this file, in one place.
EXAMPLES = {
    "truncated": 60,
    "random_bytes": 60,
    "invalid_utf8": 40,
    "wrong_shape": 80,
    "mutated": 100,
    "non_finite": 30,
    "deep": 30,
    "explain_spec": 200,
    "explain_well_formed": 200,
    "explain_binding": 30,
    "run_argv": 150,
    "other_argv": 150,
    "parse_array_text": 500,
    "parse_array_soup": 300,
    "parse_value_text": 300,
    "literal_round_trip": 100,
}


#: A longer soak: LOSSPARITY_FUZZ_SCALE=20 runs twenty times as many examples of each property.
SCALE = float(os.environ.get("LOSSPARITY_FUZZ_SCALE", "1"))


def fuzz(name: str):
    """The settings of one property: its number of examples, no deadline (a first example may
    import a framework); the fixtures are reset by hand between examples (``capsys`` is read
    after every call, the files are written anew)."""
    return settings(
        max_examples=max(1, round(EXAMPLES[name] * SCALE)),
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
            HealthCheck.data_too_large,
        ],
    )


# -- the contract --------------------------------------------------------------------------------


def call(capsys, argv: list) -> tuple[int, str, str]:
    """``main(argv)``: its exit code, stdout and stderr; never a traceback on either."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out and "Traceback" not in err, (argv, out[-2000:], err[-2000:])
    return rc, out, err


def assert_usage_error(rc: int, err: str, argv) -> None:
    """Exit code 2 and exactly one line: ``lossparity: error: <message>``."""
    assert rc == 2, (argv, rc, err)
    assert err.startswith(PREFIX), (argv, err)
    assert err.endswith("\n") and err.count("\n") == 1 and "\r" not in err, (argv, err)
    assert err[len(PREFIX) :].strip(), (argv, err)


def assert_contract(rc: int, err: str, argv) -> None:
    """Either the command read good input (0 or 1) or it is the one-line usage error."""
    assert rc in (0, 1, 2), (argv, rc)
    if rc == 2:
        assert_usage_error(rc, err, argv)


# -- known bugs outside this file's reach ----------------------------------------------------------


def _frames(exc: BaseException) -> list[str]:
    return [f.name for f in traceback.extract_tb(exc.__traceback__)]


def _known_bug(exc: BaseException, argv: list[str]) -> str | None:
    """Which pinned bug (a strict-xfail ``test_known_*``) raised ``exc`` on ``argv``, or None: a
    new bug. None are pinned now: every bug these properties found is fixed and kept below as a
    regression test."""
    return None


def call_or_set_aside(capsys, argv: list) -> tuple[int, str, str]:
    """``call``, except that an input that hits a pinned known bug is set aside (rejected)."""
    try:
        return call(capsys, argv)
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is a pinned bug
        if _known_bug(exc, [str(a) for a in argv]) is None:
            raise
        capsys.readouterr()
        reject()


# -- a valid results file --------------------------------------------------------------------------

META = {
    "kind": "meta",
    "schema": 1,
    "lossparity": "0.1.0",
    "versions": {"torch": "2.13.0", "numpy": "2.4"},
    "python": "3.11.7",
    "platform": "Linux-x86_64",
    "device": "cpu",
    "seed": 0,
    "command": "lossparity run --examples 3",
    "started": "2025-01-01T00:00:00+00:00",
    "dtypes": ["float32"],
    "frameworks": ["torch", "tensorflow"],
}


def _array(values, shape=None) -> dict:
    data = list(values)
    return {"dtype": "float32", "shape": [len(data)] if shape is None else shape, "data": data}


def result(
    case: str,
    binding: str = "torch.nn.BCELoss",
    framework: str = "torch",
    *,
    verdict: str = "conform",
    value=(0.25, 0.5),
    error: str | None = None,
    message: str = "m",
    ulp=0.5,
) -> dict:
    actual = (
        {"error": error, "message": message, "classes": [error, "Exception"]}
        if error
        else {"value": _array(value), "dtype": "float32"}
    )
    return fake_records.result(
        binding,
        verdict,
        framework=framework,
        case_id=case,
        origin={"table": "edges", "row": 1, "why": "p at the edge"},
        params={"reduction": "none"},
        inputs={"input": _array([0.5, 1.0]), "target": _array([1.0, 0.0])},
        tolerance={"rtol": 1e-5, "atol": 1e-7},
        expected={"value": _array((0.25, 0.5))},
        actual=actual,
        errors={
            "ok": verdict == "conform",
            "mismatched": 0,
            "total": 2,
            "max_abs": 0.0,
            "max_rel": 0.0,
            "max_ulp": ulp,
            "index": [1],
            "summary": "ok",
        },
        reproducer="import torch\nprint(torch.nn.BCELoss(reduction='none')(x, y))",
        seconds={"call": 0.01},
    )


RECORDS = [
    META,
    result("c1"),
    result("c1", "keras.losses.BinaryCrossentropy", "tensorflow", value=(0.25, "nan"), verdict="deviate"),
    result("µ-ü-✓ 日本", error="ValueError", message="bad — ✓ 日本\nsecond line", verdict="error_mismatch"),
    fake_records.agreement("binary_cross_entropy", "torch.nn.BCELoss", "keras.losses.BinaryCrossentropy", 1, 0, 1),
    fake_records.summary(
        {"conform": 1, "deviate": 1, "error_mismatch": 1},
        divergences={"unexplained": 1},
        finished="2025-01-01T00:01:00+00:00",
    ),
]
assert all(not schema_errors(r) for r in RECORDS), [schema_errors(r) for r in RECORDS]


def dump(records, *, ascii_only: bool = True) -> bytes:
    """Records as a results file, as ``ResultsWriter`` writes it (``ascii_only``) or with raw UTF-8."""
    return "".join(json.dumps(r, ensure_ascii=ascii_only, separators=(",", ":")) + "\n" for r in records).encode()


GOOD = {True: dump(RECORDS), False: dump(RECORDS, ascii_only=False)}
#: The other file given to diff and merge: small, since every command validates it again.
PARTNER = dump(RECORDS[:2])


@dataclass
class Files:
    dir: Path
    good: Path
    bad: Path


@pytest.fixture
def files(tmp_path, monkeypatch):
    """A valid results file and the path of the file under test, in a scratch working folder
    (so that nothing a fuzzed command line writes lands in the repository)."""
    monkeypatch.chdir(tmp_path)
    good = tmp_path / "good.jsonl"
    good.write_bytes(PARTNER)
    return Files(tmp_path, good, tmp_path / "bad.jsonl")


def check_results_file(capsys, files: Files, content: bytes, *, bad: bool) -> None:
    """``report``, ``diff`` and ``merge`` on ``content``: the one-line usage error naming the
    file if it is ``bad``, else the contract (and then ``diff`` the other way round too)."""
    files.bad.write_bytes(content)
    commands = [
        ["report", files.bad, "-o", files.dir / "out.html"],
        ["diff", files.good, files.bad],
        ["merge", files.good, files.bad, "-o", files.dir / "merged.jsonl"],
    ]
    for argv in commands + ([] if bad else [["diff", files.bad, files.good]]):
        rc, _, err = call_or_set_aside(capsys, argv)
        if bad:
            assert_usage_error(rc, err, argv)
            assert str(files.bad) in err, err  # the message names the file
        else:
            assert_contract(rc, err, argv)


def test_the_valid_file_is_read(files, capsys):
    for ascii_only in (True, False):
        files.bad.write_bytes(GOOD[ascii_only])
        assert call(capsys, ["report", files.bad, "-o", files.dir / "out.html"])[0] == 1  # one deviation
        assert call(capsys, ["diff", files.good, files.bad])[0] == 0
        assert call(capsys, ["merge", files.good, files.bad, "-o", files.dir / "m.jsonl"])[0] == 0


# -- 1. results files: report, diff, merge ---------------------------------------------------------


def _line_spans(content: bytes) -> list[tuple[int, int]]:
    """(start, end) of every line, end at its newline."""
    spans, start = [], 0
    while start < len(content):
        end = content.index(b"\n", start)
        spans.append((start, end))
        start = end + 1
    return spans


@fuzz("truncated")
@given(ascii_only=st.booleans(), data=st.data(), splice=st.booleans())
def test_a_truncated_results_file_is_one_line(files, capsys, ascii_only, data, splice):
    """A file cut inside a line (a run killed mid-write, a partial copy), possibly in the
    middle of a UTF-8 character; ``splice``: the lines after the cut are still there."""
    content = GOOD[ascii_only]
    start, end = data.draw(st.sampled_from(_line_spans(content)), label="line")
    cut = data.draw(st.integers(start + 1, end - 1), label="cut")
    check_results_file(capsys, files, content[:cut] + (content[end:] if splice else b""), bad=True)


@fuzz("random_bytes")
@given(
    content=st.one_of(
        st.binary(max_size=3000),
        st.binary(max_size=3000).map(lambda b: GOOD[True].splitlines(keepends=True)[0] + b),
        st.binary(max_size=300).map(lambda b: GOOD[True] + b),
    )
)
@example(content=b"")
@example(content=b"\n\n \n")
@example(content=b"\x00" * 64)
def test_random_bytes_are_one_line(files, capsys, content):
    """Any bytes at all: alone, after a valid meta line, or after a whole valid file."""
    check_results_file(capsys, files, content, bad=False)


INVALID_UTF8 = [
    b"\xff",
    b"\xfe\xff",
    b"\x80",
    b"\xc3\x28",
    b"\xc0\xaf",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
]


@fuzz("invalid_utf8")
@given(data=st.data(), junk=st.sampled_from(INVALID_UTF8))
def test_invalid_utf8_is_one_line(files, capsys, data, junk):
    """A valid file with a byte sequence that is not UTF-8 put anywhere in it."""
    content = GOOD[False]
    at = data.draw(st.integers(0, len(content)), label="at")
    check_results_file(capsys, files, content[:at] + junk + content[at:], bad=True)


def test_a_huge_single_line_is_one_line(files, capsys):
    """5 MB on one line: unclosed brackets, an unterminated string, a number of 5 million
    digits, a valid object missing every field."""
    size = 5_000_000
    for content in (
        b"[" * size,
        b"{" * size,
        b'"' + b"a" * size,
        b"1" * size,
        b'{"kind":"meta","x":"' + b"a" * size + b'"}\n',
        b'{"kind":' + b" " * size + b'"meta"}',
    ):
        check_results_file(capsys, files, content, bad=True)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=15,
)
records_ish = st.builds(
    lambda kind, rest: {**rest, "kind": kind},
    st.sampled_from(["meta", "result", "divergence", "agreement", "summary", "explanation", "Meta", "", "result "])
    | json_values,
    st.dictionaries(st.sampled_from(sorted({*META, *RECORDS[1]})) | st.text(max_size=6), json_values, max_size=8),
)


@fuzz("wrong_shape")
@given(value=json_values | records_ish, first=st.booleans(), ascii_only=st.booleans())
def test_json_of_the_wrong_shape_is_one_line(files, capsys, value, first, ascii_only):
    """Any JSON value as a line: first, or after a valid meta line. The commands must refuse
    exactly what the schema refuses (and a first line that is not the meta record)."""
    line = json.dumps(value, ensure_ascii=ascii_only).encode() + b"\n"
    content = line if first else GOOD[True].splitlines(keepends=True)[0] + line
    bad = (
        not isinstance(value, dict)
        or "kind" not in value
        or bool(schema_errors(value))
        or (first and value["kind"] != "meta")
    )
    check_results_file(capsys, files, content, bad=bad)


OTHER_JSON = {
    "a list": [1, 2, 3],
    "a number": 42,
    "a string": "results",
    "null": None,
    "true": True,
    "an empty object": {},
    "kind only": {"kind": "result"},
    "meta kind only": {"kind": "meta"},
    "kind a number": {"kind": 1},
    "kind a list": {"kind": ["meta"]},
    "kind an object": {"kind": {"kind": "meta"}},
    "kind null": {"kind": None},
    "wrong-typed fields": {**RECORDS[1], "spec": 1, "case_id": None, "verdict": "great", "inputs": []},
    "a result missing its verdict": {k: v for k, v in RECORDS[1].items() if k != "verdict"},
    "meta with a string seed": {**META, "seed": "0"},
    "meta of another schema version": {**META, "schema": 3},
    "package.json": {
        "name": "lossparity",
        "version": "1.0.0",
        "scripts": {"test": "jest"},
        "dependencies": {"left-pad": "^1.3.0"},
    },
    "GeoJSON": {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"kind": "meta"},
                "geometry": {"type": "Point", "coordinates": [2.35, 48.85]},
            }
        ],
    },
    "a JSON schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"const": "meta"}},
    },
    "a Jupyter notebook": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
}


@pytest.mark.parametrize("first", [True, False], ids=["first-line", "after-meta"])
@pytest.mark.parametrize("name", sorted(OTHER_JSON))
def test_other_json_is_one_line(files, capsys, name, first):
    line = json.dumps(OTHER_JSON[name]).encode() + b"\n"
    content = line if first else GOOD[True].splitlines(keepends=True)[0] + line
    check_results_file(capsys, files, content, bad=True)


def _paths(record, prefix=()):
    """Every path into a record (keys and list indexes), the record itself first."""
    yield prefix
    if isinstance(record, dict):
        for k, v in record.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(record, list):
        for i, v in enumerate(record):
            yield from _paths(v, (*prefix, i))


WRONG_VALUES = (
    st.sampled_from(
        [
            None,
            True,
            0,
            -1,
            1.5,
            10**30,
            "",
            "nan",
            "x\ny",
            [],
            {},
            [1, "a"],
            {"dtype": "float64", "shape": [3], "data": [1]},
            {"dtype": "int64", "shape": [2, 2], "data": [1, 2, 3, 4]},
        ]
    )
    | json_values
)


@fuzz("mutated")
@given(
    data=st.data(),
    which=st.integers(0, len(RECORDS) - 1),
    how=st.sampled_from(["delete", "replace"]),
    value=WRONG_VALUES,
)
def test_a_record_with_missing_or_wrong_typed_fields(files, capsys, data, which, how, value):
    """One field of one record of a valid file deleted or replaced by another value (a missing
    field, a wrong type, an array whose data does not fill its shape...): the commands refuse
    it in one line when the schema does, and otherwise read it without a traceback."""
    # The file: the meta line and two results of one case (so that merge compares them), and
    # the agreement or summary line if that is the one changed.
    records = [json.loads(json.dumps(r)) for r in RECORDS[:3] + ([RECORDS[which]] if which >= 3 else [])]
    changed = records[min(which, 3)]
    path = data.draw(st.sampled_from([p for p in _paths(changed) if p]), label="path")
    parent = changed
    for step in path[:-1]:
        parent = parent[step]
    if how == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    bad = bool(schema_errors(changed)) or (which == 0 and changed.get("kind") != "meta")
    check_results_file(capsys, files, dump(records), bad=bad)


NON_FINITE = ["NaN", "-NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1E+999", "123.5e4567", "1" + "0" * 400 + ".5"]
SENTINEL = 0.123456789


@fuzz("non_finite")
@given(token=st.sampled_from(NON_FINITE), where=st.sampled_from(["max_ulp", "data", "rtol", "params", "meta"]))
def test_non_finite_numbers_are_one_line(files, capsys, token, where):
    """NaN and Infinity tokens and numbers past float64's range: ``json.loads`` takes them, but
    a results file stores non-finite values as the strings "nan", "inf", "-inf" only."""
    records = json.loads(json.dumps(RECORDS))
    target = records[0] if where == "meta" else records[1]
    if where == "max_ulp":
        target["errors"]["max_ulp"] = SENTINEL
    elif where == "data":
        target["actual"]["value"]["data"][0] = SENTINEL
    elif where == "rtol":
        target["tolerance"]["rtol"] = SENTINEL
    elif where == "params":
        target["params"]["label_smoothing"] = SENTINEL
    else:
        target["cpu_count"] = {"x": SENTINEL}  # in meta: wrong type, and a non-finite number
    content = dump(records).replace(repr(SENTINEL).encode(), token.encode())
    check_results_file(capsys, files, content, bad=True)


@fuzz("deep")
@given(
    depth=st.integers(1, 100_000) | st.integers(1, 1100) | st.integers(4000, 6000),
    where=st.sampled_from(["line", "unclosed", "params", "gradients", "origin"]),
)
@example(depth=100_000, where="line")
@example(depth=100_000, where="gradients")
@example(depth=990, where="gradients")
def test_deeply_nested_json_is_one_line(files, capsys, depth, where):
    """Nested lists, as a whole line (closed or not) or inside a field the schema leaves free:
    deep enough, ``json.loads`` raises RecursionError, which must not escape."""
    nested = "[" * depth + "]" * depth
    if where == "line":
        content, bad = (nested + "\n").encode(), True
    elif where == "unclosed":
        content, bad = ("[" * depth).encode(), True
    else:
        record = {**RECORDS[2], where: {"x": "PLACE"}}  # a deviation: the report shows it in full
        line = json.dumps(record).replace('"PLACE"', nested)
        content, bad = GOOD[True].splitlines(keepends=True)[0] + line.encode() + b"\n", depth > 5000
    check_results_file(capsys, files, content, bad=bad)


class _Payload:
    """Pickles to a call of os.system: loading the pickle would run it."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("kind", ["python", "pickle", "pickle-0", "yaml", "jsonpickle", "strings"])
def test_reading_a_results_file_executes_nothing(files, capsys, monkeypatch, kind):
    """A results file that is Python source, a pickle, YAML with a python tag, or JSON whose
    strings are code: reading it runs none of it (the payload would create a marker file)."""
    marker = files.dir / "EXECUTED"
    command = f"touch {marker}"
    code = f"__import__('os').system({command!r})"
    first = GOOD[True].splitlines(keepends=True)[0]
    bad = True
    if kind == "python":
        content = f"{code}\nimport os; os.system({command!r})\nexec({code!r})\n".encode()
    elif kind == "pickle":
        content = pickle.dumps(_Payload(command), protocol=pickle.HIGHEST_PROTOCOL)
    elif kind == "pickle-0":
        content = first + pickle.dumps(_Payload(command), protocol=0)
    elif kind == "yaml":
        content = f"kind: meta\npayload: !!python/object/apply:os.system [{command!r}]\n".encode()
    elif kind == "jsonpickle":
        content = (
            first
            + json.dumps(
                {
                    "kind": "result",
                    "py/reduce": [{"py/function": "os.system"}, {"py/tuple": [command]}],
                    "__reduce__": code,
                    "__class__": "os.system",
                }
            ).encode()
            + b"\n"
        )
    else:  # a valid file whose every free string is code: it is read, shown, never run
        records = json.loads(json.dumps(RECORDS))
        for r in records[1:4]:
            r.update(
                case_id=code,
                reproducer=code + "\n" + f"exec({code!r})",
                params={"reduction": code},
                origin={"why": f"{{{{ {code} }}}} <script>{code}</script>"},
            )
        records[3]["actual"]["message"] = f"{{% for x in ().__class__ %}}{code}{{% endfor %}}"
        content, bad = dump(records), False
    calls = []  # and none of the ways to run it is taken while the commands read it
    for module, name in ((os, "system"), (os, "popen"), (pickle, "loads"), (pickle, "load"), (subprocess, "Popen")):
        monkeypatch.setattr(module, name, lambda *a, _n=name, **k: calls.append(_n))
    check_results_file(capsys, files, content, bad=bad)
    assert not marker.exists() and calls == []


# -- 2. explain: fuzzed literals and parameters ----------------------------------------------------


def _render(a: np.ndarray, style: str) -> str:
    """An array as a user would type it: JSON, NumPy's printed form, or a call of np.array."""
    if style == "json":

        def conv(x):
            return (
                "[" + ", ".join(conv(y) for y in x) + "]"
                if isinstance(x, list)
                else (repr(x) if isinstance(x, float) else str(x))
            )

        return conv(a.tolist())
    text = (
        np.array2string(
            a, separator=", " if style == "numpy-commas" else " ", threshold=sys.maxsize, floatmode="unique"
        )
        if a.ndim
        else repr(a.item())
    )
    return f"np.array({text}, dtype=float32)" if style == "call" else text


def _render_ragged(v, commas: bool) -> str:
    if isinstance(v, list):
        return "[" + (", " if commas else " ").join(_render_ragged(x, commas) for x in v) + "]"
    return repr(v) if isinstance(v, float) else str(v)


NUMBER_TEXT = st.sampled_from(
    [
        "nan",
        "NaN",
        "-inf",
        "Infinity",
        "1e400",
        "-1e400",
        "1e-400",
        "0",
        "-0.0",
        "1",
        "0.5",
        "2",
        "-1",
        "1_0",
        "١٢",
        "0x10",
        "9" * 30,
        "9" * 5000,
        "1e",
        ".",
        "+",
        "-",
    ]
)
ARRAY_TEXT = st.builds(
    _render,
    hnp.arrays(
        st.sampled_from([np.float64, np.int64]), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
    ),
    st.sampled_from(["json", "numpy", "numpy-commas", "call"]),
)
RAGGED_TEXT = st.builds(
    _render_ragged,
    st.recursive(
        st.floats() | st.integers(-(10**25), 10**25) | NUMBER_TEXT,
        lambda inner: st.lists(inner, max_size=4),
        max_leaves=12,
    ),
    st.booleans(),
)
SOUP_TEXT = st.lists(
    st.sampled_from(
        [
            "[",
            "]",
            "(",
            ")",
            ",",
            " ",
            "\n",
            "1",
            "0.5",
            "nan",
            "1e400",
            "-2",
            "array(",
            "np.array(",
            "dtype=float32",
            "tensor(",
            "True",
            "None",
            "x",
        ]
    ),
    max_size=20,
).map("".join)
LITERAL_TEXT = st.one_of(
    ARRAY_TEXT,
    ARRAY_TEXT,
    RAGGED_TEXT,
    SOUP_TEXT,
    NUMBER_TEXT,
    st.text(max_size=30),
    st.sampled_from(
        ["[" * 40 + "1" + "]" * 40, "[" * 10_000, "[]", "[[]]", "()", "[[], []]", "[[1, 2], [3]]", "[1, [2]]"]
    ),
)
PARAM_VALUE = st.one_of(
    LITERAL_TEXT,
    st.sampled_from(
        ["sum", "mean", "none", "batchmean", "true", "false", "True", "None", "null", "e", "2", "0.1", "-100", "", " "]
    ),
)
PARAM = st.one_of(
    st.builds("{}={}".format, st.sampled_from(sorted(PARAMETERS)) | st.text(max_size=8), PARAM_VALUE),
    st.text(max_size=12),
)


def _explain_argv(binding: str, inp: str, tgt: str | None, params: list[str], extra: list[str]) -> list[str]:
    return (
        ["explain", binding, "--input", inp]
        + (["--target", tgt] if tgt is not None else [])
        + [a for p in params for a in ("--param", p)]
        + extra
    )


@fuzz("explain_spec")
@given(
    spec=st.sampled_from(sorted(SPECS)),
    inp=LITERAL_TEXT,
    tgt=st.none() | LITERAL_TEXT,
    params=st.lists(PARAM, max_size=3),
    extra=st.sampled_from(
        [
            [],
            ["--dtype", "float64"],
            ["--json"],
            ["--grad"],
            ["--dtype", "float16"],
            ["--mode", "graph"],
            ["--dtype", "bfloat16", "--json"],
        ]
    ),
)
@example(spec="kl_divergence", inp="[0.5, 0.5]", tgt="[0.2, 0.8]", params=["base=2"], extra=[])
@example(spec="kl_divergence", inp="9" * 5000, tgt=None, params=[], extra=[])
@example(spec="kl_divergence", inp="[" * 100_000, tgt=None, params=[], extra=[])
@example(spec="binary_cross_entropy", inp="[0.5]", tgt="[1.0]", params=["reduction=" + "9" * 5000], extra=[])
def test_explain_a_spec_with_fuzzed_literals(capsys, spec, inp, tgt, params, extra):
    """``explain SPEC`` (the oracle alone: no framework) on any --input/--target text and any
    --param: a result (0 or 1) or the one-line usage error."""
    argv = _explain_argv(spec, inp, tgt, params, extra)
    rc, _, err = call_or_set_aside(capsys, argv)
    assert_contract(rc, err, argv)


PROBABILITY = st.floats(0, 1) | st.sampled_from([0.0, 1.0, 0.5, 1e-45, 1 - 2**-53, 1e-300])
ELEMENT = PROBABILITY | st.floats() | st.integers(-3, 5).map(float)
STYLE = st.sampled_from(["json", "numpy", "numpy-commas", "call"])


def _param_value(draw, name: str, shape: tuple) -> str:
    """A value for the spec parameter ``name``: mostly in its domain, sometimes just outside."""
    domain = PARAMETERS[name]
    if domain is np.ndarray:
        w_shape = draw(st.sampled_from([shape[-1:], shape[-1:], shape, (), (2, 3), (0,)]))
        return _render(draw(hnp.arrays(np.float64, w_shape, elements=ELEMENT)), draw(STYLE))
    if isinstance(domain, tuple):
        return str(draw(st.sampled_from([*domain, *domain, "MEAN", "mean ", "avg", "2.0", "3", "[1]", "[]"])))
    if domain is float:
        return draw(
            st.sampled_from(["0", "0.1", "1", "-0.5", "2", "nan", "inf", "1e400", "x", "[0.1]"]) | st.floats().map(repr)
        )
    if domain is int:
        return draw(st.sampled_from(["-100", "0", "1", "4", "1.5", "x", "[1]"]) | st.integers(-10, 10).map(str))
    return draw(st.sampled_from(["true", "false", "True", "1", "0", "yes", "[true]"]))


@st.composite
def well_formed_case(draw, spec_name: str):
    """--input, --target and --param as a user of ``spec_name`` would type them: arrays of one
    shape (the target's fitting the spec), any floats in them (nan, inf, subnormals, 1e308),
    and parameters mostly in their domain; an empty axis, a scalar, a 3-D batch all happen."""
    spec = SPECS[spec_name]
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    inp = _render(draw(hnp.arrays(np.float64, shape, elements=ELEMENT)), draw(STYLE))
    if spec.target is None:
        tgt = None
    elif spec.target == "index":
        t_shape = shape[:-1] if shape else ()
        tgt = _render(
            draw(hnp.arrays(draw(st.sampled_from([np.int64, np.float64])), t_shape, elements=st.integers(-2, 5))),
            draw(STYLE),
        )
    else:
        tgt = _render(draw(hnp.arrays(np.float64, shape, elements=PROBABILITY)), draw(STYLE))
    names = draw(st.lists(st.sampled_from(sorted(spec.defaults)), max_size=3, unique=True)) if spec.defaults else []
    return inp, tgt, [f"{n}={_param_value(draw, n, shape)}" for n in names]


@fuzz("explain_well_formed")
@given(
    data=st.data(),
    spec=st.sampled_from(sorted(SPECS)),
    extra=st.sampled_from([[], ["--dtype", "float64"], ["--json"], ["--grad"]]),
)
def test_explain_a_spec_on_well_formed_cases(capsys, data, spec, extra):
    """``explain SPEC`` on cases that read as the spec's arrays: the oracle runs on them, and
    whatever it meets (nan, inf, empty axes, weights of any shape) is a result or one line."""
    inp, tgt, params = data.draw(well_formed_case(spec), label="case")
    argv = _explain_argv(spec, inp, tgt, params, extra)
    rc, _, err = call_or_set_aside(capsys, argv)
    assert_contract(rc, err, argv)


@fuzz("explain_binding")
@given(
    case=well_formed_case("binary_cross_entropy")
    | st.tuples(LITERAL_TEXT, st.none() | LITERAL_TEXT, st.lists(PARAM, max_size=2)),
    grad=st.sampled_from([[], ["--grad"], ["--json"]]),
)
def test_explain_a_binding_with_fuzzed_literals(capsys, case, grad):
    """The same through a real binding, torch.nn.BCELoss (fewer examples: it calls torch)."""
    pytest.importorskip("torch")
    inp, tgt, params = case
    argv = _explain_argv("torch.nn.BCELoss", inp, tgt, params, grad)
    rc, _, err = call_or_set_aside(capsys, argv)
    assert_contract(rc, err, argv)


# -- 3. fuzzed command lines -----------------------------------------------------------------------

#: Text that can stand in a command line (no NUL), line breaks included, and nothing that asks
#: for --help (which prints the help and exits 0: valid, not fuzzable here).
SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12).filter(
    lambda s: not s.startswith(("-h", "--h"))
)
UNKNOWN_OPTION = st.builds("--zz{}".format, SAFE_TEXT)  # no option of any command starts with --zz
NOT_AN_OPTION = SAFE_TEXT.filter(lambda s: not s.startswith("-"))


def _not_an_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return True
    return False


def _run_fragments(out: str):
    valid = st.sampled_from(
        [
            ["--frameworks", "torch"],
            ["--frameworks", "torch,jax"],
            ["--losses", "binary_cross_*"],
            ["--dtypes", "float64"],
            ["--examples", "3"],
            ["--examples", "0"],
            ["--seed", "7"],
            ["-n", "1"],
            ["-v"],
            ["--out", out],
        ]
    )
    invalid = st.one_of(
        st.builds(lambda t: ["--frameworks", "zz" + t], SAFE_TEXT),
        st.builds(lambda t: ["--losses", "zz-no-such-loss-" + t], SAFE_TEXT),
        st.builds(lambda t: ["--dtypes", "float8," + t], SAFE_TEXT),
        st.sampled_from(
            [
                ["--frameworks", ","],
                ["--losses", " , "],
                ["--dtypes", " ,, "],
                ["--dtypes", "int8"],
                ["--examples", "-3"],
                ["--examples", "abc"],
                ["--examples", "1.5"],
                ["--examples", ""],
                ["--seed", "abc"],
                ["--seed", "1e3"],
                ["-n", "-3"],
                ["-n", "0"],
                ["-n", "x"],
                ["--workers", "-1"],
                ["--examples"],
                ["--seed"],
                ["-n"],
                ["--frameworks"],
                ["--out"],
                ["--verbose=1"],
            ]
        ),
        st.builds(lambda t: [t], UNKNOWN_OPTION),
        st.builds(lambda t: [t], NOT_AN_OPTION),  # a stray positional argument
        st.builds(lambda o, t: [o, t], st.sampled_from(["--examples", "--seed", "-n"]), SAFE_TEXT.filter(_not_an_int)),
    )
    return valid, invalid


@fuzz("run_argv")
@given(data=st.data())
@example(data=None)
def test_run_with_an_invalid_argument_is_one_line(files, capsys, monkeypatch, data):
    """``run`` with valid options and then one invalid element (last, so that nothing overrides
    it): always the one-line usage error, and the suite never starts."""
    monkeypatch.setattr(pytest, "main", lambda *a, **k: pytest.fail("the conformance suite was started"))
    valid, invalid = _run_fragments(str(files.dir / "out"))
    if data is None:
        argv = ["run", "-n", "-3"]
    else:
        argv = [
            "run",
            *[a for f in data.draw(st.lists(valid, max_size=4), label="valid") for a in f],
            *data.draw(invalid, label="invalid"),
        ]
    rc, out, err = call(capsys, argv)
    assert_usage_error(rc, err, argv)
    assert out == ""


def _output_paths(files: Files):
    return st.sampled_from(
        [
            str(files.dir / "o.html"),
            "rel/sub/o.html",
            "o.jsonl",
            str(files.good),
            "/proc/lossparity-fuzz/o.html",
            str(files.dir),
            "",
        ]
    )


@fuzz("other_argv")
@given(data=st.data(), command=st.sampled_from(["list", "report", "diff", "merge", "explain"]))
def test_other_commands_with_fuzzed_argv(files, capsys, data, command):
    """``list``, ``report``, ``diff``, ``merge`` and ``explain`` with a fuzzed argument list:
    the contract always, and the usage error whenever it holds an unknown option."""
    files.good.write_bytes(PARTNER)  # a fuzzed -o may have written over it
    files.bad.write_bytes(b"{not json\n")
    paths = st.sampled_from(
        [str(files.good), str(files.bad), str(files.dir / "missing.jsonl"), str(files.dir), "good.jsonl", ""]
    )
    options = {
        "list": [["--json"]],
        "report": [["-o", data.draw(_output_paths(files))]],
        "diff": [
            ["-o", data.draw(_output_paths(files))],
            ["--markdown", data.draw(_output_paths(files))],
            ["--json"],
            [
                "--fail-on",
                data.draw(st.sampled_from(["coverage", "value_drift,new_binding", "bogus", ",", ""]) | SAFE_TEXT),
            ],
            [
                "--drift-ulps",
                data.draw(st.sampled_from(["0", "4", "-1", "nan", "inf", "-inf", "1e400", "x", ""]) | SAFE_TEXT),
            ],
        ],
        "merge": [["-o", data.draw(_output_paths(files))]],
        "explain": [
            ["--input", data.draw(LITERAL_TEXT)],
            ["--target", data.draw(LITERAL_TEXT)],
            ["--param", data.draw(PARAM)],
            ["--dtype", data.draw(st.sampled_from(["float32", "float64", "x"]))],
            ["--mode", data.draw(st.sampled_from(["eager", "graph", "jit", "x"]) | SAFE_TEXT)],
            ["--grad"],
            ["--json"],
        ],
    }[command]
    positional = {
        "list": st.nothing(),
        "report": paths,
        "diff": paths,
        "merge": paths,
        "explain": st.sampled_from(
            ["kl_divergence", "entropy", "nll_loss", "no.such.Loss", "torch.nn.BCE", "binary_cross_entropy"]
        ),
    }[command]
    fragment = st.one_of(
        st.sampled_from(options),
        st.builds(lambda p: [p], positional),
        st.builds(lambda t: ["unknown", t], UNKNOWN_OPTION),
        st.builds(lambda t: ["text", t], NOT_AN_OPTION),
        st.sampled_from([["--"], ["-"], ["--json=1"]]),
    )
    fragments = data.draw(st.lists(fragment, max_size=5), label="fragments")
    # A bare option that takes a value takes the next argument as its value (-o /any/path): last only.
    bare = data.draw(st.sampled_from([[], [], ["-o"], ["--input"], ["--param"], ["--drift-ulps"]]), label="bare")
    unknown = any(f[0] == "unknown" for f in fragments) and ["--"] not in fragments
    argv = [command, *[a for f in fragments for a in (f[1:] if f[0] in ("unknown", "text") else f)], *bare]
    rc, _, err = call_or_set_aside(capsys, argv)
    assert_contract(rc, err, argv)
    if unknown:
        assert_usage_error(rc, err, argv)


def test_no_arguments_and_bare_commands_are_one_line(capsys):
    for argv in (
        [],
        ["report"],
        ["diff"],
        ["diff", "a"],
        ["merge", "a"],
        ["explain"],
        ["explain", "entropy"],
        ["run", "--frameworks"],
        ["list", "extra"],
        ["--json"],
        ["-n", "-3"],
    ):
        rc, _, err = call(capsys, argv)
        assert_usage_error(rc, err, argv)


# -- literals: parse_array and parse_value ---------------------------------------------------------


def _check_array(text: str) -> None:
    try:
        array = parse_array(text)
    except LiteralError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(array, np.ndarray) and array.ndim <= MAX_DIMS
    # numbers are int64 or float64; a mask (every item true or false) is bool
    assert array.dtype in (np.int64, np.float64) or (array.dtype == np.bool_ and array.size)


@fuzz("parse_array_text")
@given(text=st.text())
@example(text="9" * 5000)
@example(text="[" * 100_000)
@example(text="[" * 100 + "1" + "]" * 100)
@example(text="[99999999999999999999]")
def test_parse_array_any_text_returns_or_raises_literal_error(text):
    _check_array(text)


@fuzz("parse_array_soup")
@given(text=LITERAL_TEXT)
def test_parse_array_literal_like_text(text):
    _check_array(text)


@fuzz("parse_value_text")
@given(text=st.text() | LITERAL_TEXT | st.builds("{} {}".format, NUMBER_TEXT, st.text(max_size=5)))
@example(text="9" * 5000)
@example(text=" [" * 50)
def test_parse_value_any_text_returns_or_raises_literal_error(text):
    try:
        value = parse_value(text)
    except LiteralError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert value is None or isinstance(value, (bool, int, float, str, np.ndarray))


@fuzz("literal_round_trip")
@given(
    array=hnp.arrays(
        st.sampled_from([np.float64, np.int64]), hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3)
    ),
    style=st.sampled_from(["json", "numpy", "numpy-commas", "call"]),
)
def test_literals_round_trip(array, style):
    """What NumPy prints (or JSON) reads back as the same array, exactly."""
    got = parse_array(_render(array, style))
    assert got.shape == array.shape and got.dtype == array.dtype
    np.testing.assert_array_equal(got, array)


def test_literal_errors_name_the_problem():
    with pytest.raises(LiteralError, match="does not fit in 64 bits"):
        parse_array("[1, 99999999999999999999]")
    with pytest.raises(LiteralError, match=r"\(5000 digits\) does not fit in 64 bits"):
        parse_array("9" * 5000)
    with pytest.raises(LiteralError, match=f"more than {MAX_DIMS} nested lists"):
        parse_array("[" * 100 + "1" + "]" * 100)
    assert parse_array("[" * MAX_DIMS + "1" + "]" * MAX_DIMS).ndim == MAX_DIMS
    assert parse_array("1e400") == math.inf and parse_array("-9223372036854775808").dtype == np.int64


# -- regressions: the bugs these properties found, each with the input that showed it -----------


@pytest.mark.parametrize(
    "argv",
    [  # an empty class axis: ZeroDivisionError / IndexError in the oracle
        ["explain", "categorical_cross_entropy", "--input", "[]", "--target", "[]", "--param", "label_smoothing=0.1"],
        [
            "explain",
            "softmax_cross_entropy_soft",
            "--input",
            "[[]]",
            "--target",
            "[[]]",
            "--param",
            "label_smoothing=0.1",
        ],
        ["explain", "nll_loss", "--input", "[[]]", "--target", "[0]", "--param", "weight=[]"],
        ["explain", "softmax_cross_entropy", "--input", "[]", "--target", "0", "--param", "weight=[]"],
    ],
)
def test_regression_explain_empty_class_axis(capsys, argv):
    rc, _, err = call(capsys, argv)
    assert_usage_error(rc, err, argv)
    assert "needs at least one class; the input's class axis is empty" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["explain", "entropy", "--input", "5"],  # a CaseError for a spec name escaped cmd_explain
        ["explain", "kl_div", "--input", "[]"],
        ["explain", "nll_loss", "--input", "[[0.5]]", "--target", "[[0]]"],
        ["explain", "entropy", "--input", "[0.5, 0.5]", "--param", "base=3"],
        # an array for a parameter that takes one of a few values: "truth value of an array" ValueError
        ["explain", "kl_divergence", "--input", "[0.5, 0.5]", "--target", "[0.2, 0.8]", "--param", "base=[1, 2]"],
        ["explain", "binary_cross_entropy", "--input", "[0.5]", "--target", "[1.0]", "--param", "reduction=[]"],
        # a weight that broadcasts with the input but not to it: ValueError in the oracle's broadcast_to
        [
            "explain",
            "binary_cross_entropy",
            "--input",
            "[0.5, 0.5]",
            "--target",
            "[1.0, 0.0]",
            "--param",
            "weight=[[1, 2], [3, 4]]",
        ],
        [
            "explain",
            "binary_cross_entropy_with_logits",
            "--input",
            "-1.0",
            "--target",
            "1.0",
            "--param",
            "pos_weight=[[]]",
        ],
        # a float class index past int64 was cast to a garbage index (RuntimeWarning, exit 0)
        ["explain", "softmax_cross_entropy", "--input", "[[1.0, 2.0]]", "--target", "[1e300]"],
        # a 2-D array in a message was repr()'d over two lines
        [
            "explain",
            "binary_cross_entropy",
            "--input",
            "[0.5]",
            "--target",
            "[1.0]",
            "--param",
            "label_smoothing=[[1, 2], [3, 4]]",
        ],
    ],
)
def test_regression_explain_bad_case_is_one_line(capsys, argv):
    rc, _, err = call(capsys, argv)
    assert_usage_error(rc, err, argv)


@pytest.mark.parametrize(
    "argv",
    [
        # user text with a line break was printed raw inside the one-line error
        ["list", "--x\ny"],
        ["explain", "kl_divergence", "--input", "[0.5]", "--param", "a\nb=[1,"],
        ["run", "--out", "/proc/x\ny"],
        ["report", "GOOD", "-o", "/proc/x\ny/r.html"],
        ["merge", "GOOD", "-o", "GOOD"],
        ["report", "no\nsuch.jsonl"],
        # a list of blanks, ' , ', passed the list check (options.csv_list): a TypeError for --dtypes,
        # the whole suite for --frameworks and --losses, the default policy for --fail-on
        ["run", "--dtypes", " , "],
        ["run", "--frameworks", " , "],
        ["run", "--losses", " ,, "],
        ["diff", "GOOD", "GOOD", "--fail-on", " , "],
    ],
)
def test_regression_command_line_is_one_line(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pytest, "main", lambda *a, **k: pytest.fail("the conformance suite was started"))
    good = tmp_path / "line\nbreak.jsonl"  # a path with a line break in it
    good.write_bytes(GOOD[True])
    argv = [str(good) if a == "GOOD" else a for a in argv] + (
        ["--out", "out"] if argv[:2] != ["run", "--out"] and argv[0] == "run" else []
    )
    rc, _, err = call(capsys, argv)
    assert_usage_error(rc, err, argv)


@pytest.mark.parametrize("command", ["report", "diff", "merge"])
@pytest.mark.parametrize(
    "record, change",
    [
        (1, {"spec": "no_such_spec"}),  # merge: SPECS[spec] in find_divergences
        (1, {"dtype": "float8"}),  # merge: TOLERANCES[dtype]
        (1, {"known": {"explanation": "no id"}, "verdict": "known"}),  # merge: known["id"] in conclude
        (2, {"errors": {"max_abs": 1.0, "total": 2}}),  # report: errors["mismatched"] in _headline
        (1, {"errors": {"max_ulp": 10**400}}),  # diff: float(max_ulp) overflows in _ulp
    ],
    ids=["unknown-spec", "unknown-dtype", "known-without-id", "errors-without-mismatched", "huge-integer-ulp"],
)
def test_regression_schema_valid_records_are_read(files, capsys, command, record, change):
    """Records the schema accepts, which the commands once read with a traceback."""
    records = json.loads(json.dumps(RECORDS))
    for r in (records[1], records[2]) if "spec" in change or "dtype" in change else (records[record],):
        r.update(change)
    assert not any(schema_errors(r) for r in records)
    files.bad.write_bytes(dump(records))
    argv = {
        "report": ["report", files.bad, "-o", files.dir / "out.html"],
        "diff": ["diff", files.good, files.bad],
        "merge": ["merge", files.good, files.bad, "-o", files.dir / "merged.jsonl"],
    }[command]
    rc, _, err = call(capsys, argv)
    assert rc in (0, 1), err


def test_regression_results_files(files, capsys):
    """What records.py now refuses in one line, which once was a traceback or passed silently."""
    first = GOOD[True].splitlines(keepends=True)[0]
    one = json.loads(json.dumps(RECORDS[2]))
    one["actual"]["value"]["shape"] = [5]  # 2 numbers for 5: IndexError in the HTML report
    huge = json.loads(json.dumps(RECORDS[2]))
    huge["actual"]["value"]["shape"] = [10**12]  # MemoryError in the HTML report
    for content, problem in [
        (b"[" * 100_000, "nested too deeply"),  # RecursionError
        (
            first + GOOD[True].splitlines(keepends=True)[1].replace(b'"max_ulp":0.5', b'"max_ulp":NaN'),
            "NaN is not JSON",
        ),  # merge: ValueError from json.dumps(allow_nan=False)
        (
            first + GOOD[True].splitlines(keepends=True)[1].replace(b'"max_ulp":0.5', b'"max_ulp":1e400'),
            "out of the range of a float64",
        ),
        (
            first + GOOD[True].splitlines(keepends=True)[1].replace(b'"max_ulp":0.5', b'"max_ulp":' + b"9" * 5000),
            "not a JSON line",
        ),  # ValueError: more digits than int() converts
        (first + json.dumps({**RECORDS[1], "binding": "\ud800"}).encode() + b"\n", "lone surrogate"),
        (b"", "empty"),  # merge: IndexError (no meta at all)
        (b"\n" + GOOD[True].splitlines(keepends=True)[1], "2: the first line must be"),  # a blank first line
        # skipped the meta check (merge: IndexError)
        (first + json.dumps({**RECORDS[1], "inputs": {"a\nb": 5}}).encode() + b"\n", "inputs/a\\nb"),
        (first + json.dumps(one).encode() + b"\n", "do not fill an array of shape [5]"),
        (first + json.dumps(huge).encode() + b"\n", "do not fill an array of shape"),
    ]:
        check_results_file(capsys, files, content, bad=True)
        rc, _, err = call(capsys, ["report", files.bad, "-o", files.dir / "out.html"])
        assert problem in err, (problem, err)


def test_regression_label_smoothing_out_of_range_and_no_warnings(capsys):
    argv = [
        "explain",
        "softmax_cross_entropy",
        "--input",
        "[[1.0, 2.0]]",
        "--target",
        "[1]",
        "--param",
        "label_smoothing=1e400",
    ]
    rc, _, err = call(capsys, argv)
    assert rc == 2 and err == "lossparity: error: label_smoothing must be between 0 and 1, got inf\n"
    rc, _, err = call(capsys, ["explain", "entropy", "--input", "[-1.]"])
    assert rc in (0, 1) and err == ""  # no RuntimeWarning: the case's nan is the answer, not a problem
