"""Known deviations: symptoms, matching by part and by specificity, checks when loaded, the
standing and counts of each entry after a run, and the registry itself."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_records import gradient, result

from lossparity.cli import build_parser, main
from lossparity.conformance.calls import is_call, named_binding
from lossparity.conformance.conclude import conclude
from lossparity.conformance.known import KNOWN_PATH, KnownError, binding_matches, judge, load_known, match, ran_params
from lossparity.conformance.registry import all_bindings
from lossparity.conformance.runner import finish
from lossparity.conformance.symptoms import KINDS
from lossparity.core.records import encode_array

ROOT = Path(__file__).resolve().parents[1]
PLACE = 'binding = "torch.nn.BCELoss"\ncase = "edge-seed-000"\n'
LINK = 'link = "https://example.org/issue/1"\n'
DUE = 0.31900406  # fake_records.result's expected value
GRAD = [0.5, -0.2, 0.1]


def toml(tmp_path, *entries: str) -> Path:
    """A known-deviations file of ``entries`` (each the body of one [[deviation]] table)."""
    path = tmp_path / "known.toml"
    path.write_text("".join(f"[[deviation]]\n{e}\n" for e in entries), encoding="utf-8")
    return path


def entry(id_: str, symptom: str, place: str = PLACE, extra: str = "") -> str:
    return f'id = "{id_}"\n{place}{extra}symptom = {symptom}\nexplanation = "why"\n{LINK}'


def load(tmp_path, *entries: str):
    return load_known(toml(tmp_path, *entries))


def value(x) -> dict:
    return {"value": encode_array(np.asarray(x, np.float64)), "dtype": "float32"}


def finding(verdict: str = "deviate", **fields) -> dict:
    """A BCELoss result on edge-seed-000 whose value deviates (or whatever ``fields`` say)."""
    return result(verdict=verdict, value_verdict=fields.pop("value_verdict", verdict), **fields)


def in_gradient(actual) -> dict:
    """A result whose value conforms and whose input gradient is ``actual`` (GRAD is due)."""
    return result(
        verdict="deviate", value_verdict="conform", gradients={"input": gradient(np.array(GRAD), np.array(actual))}
    )


#: One result per symptom kind, each showing that kind and no other.
SHOWS = {
    "crash": lambda: finding("crash", actual={"error": "crash", "message": "killed by SIGSEGV"}),
    "timeout": lambda: finding("timeout", actual={"error": "timeout", "message": "ran past 60 s"}),
    "error": lambda: finding("error_mismatch", actual={"error": "RuntimeError", "message": "no", "classes": []}),
    "no_error": lambda: finding("error_mismatch", expected={"error": "ValueError", "message": "m"}, actual=value(0.3)),
    "wrong_error": lambda: finding(
        "error_mismatch",
        expected={"error": "ValueError", "message": "m"},
        actual={"error": "TypeError", "message": "t", "classes": []},
    ),
    "dtype": lambda: finding(actual={**value(DUE), "dtype": "float64"}, errors={"ok": False, "dtype": "float64"}),
    "shape": lambda: finding(actual=value([DUE, DUE, DUE])),
    "nonfinite": lambda: finding(actual=value(np.nan)),
    "finite": lambda: finding(expected={"value": encode_array(np.float64(np.nan))}, actual=value(0.3)),
    "zero": lambda: in_gradient([0.0, -0.2, 0.1]),
    "sign": lambda: in_gradient([-0.5, -0.2, 0.1]),
    "factor": lambda: in_gradient([0.25, -0.1, 0.05]),
    "bound": lambda: finding(actual=value(DUE + 3e-5)),
}
#: The symptom, in the file's syntax, that each of SHOWS's results shows.
SYMPTOM = {
    **{k: f'"{k}"' for k in ("crash", "timeout", "no_error", "shape", "nonfinite", "finite", "zero", "sign")},
    "error": '{ kind = "error", error = "RuntimeError" }',
    "wrong_error": '{ kind = "wrong_error", error = "TypeError" }',
    "dtype": '{ kind = "dtype", dtype = "float64" }',
    "factor": '{ kind = "factor", factor = 0.5 }',
    "bound": '{ kind = "bound", max_abs = 1e-4 }',
}


def test_every_kind_has_a_result_that_shows_it():
    assert set(SHOWS) == set(SYMPTOM) == set(KINDS)


@pytest.fixture(scope="module")
def by_kind(tmp_path_factory):
    """One entry per kind, all on the same binding and case, any part and verdict."""
    path = tmp_path_factory.mktemp("kinds")
    entries = load(path, *(entry(k.replace("_", "-"), SYMPTOM[k]) for k in KINDS))
    return dict(zip(KINDS, entries))


@pytest.mark.parametrize("kind", KINDS)
def test_a_result_is_known_by_the_entry_of_its_symptom(by_kind, kind):
    found = match(SHOWS[kind](), list(by_kind.values()))
    assert found.complete and [e.id for e in found.entries] == [by_kind[kind].id]


@pytest.mark.parametrize("kind, shown", [(k, s) for k in KINDS for s in KINDS if s != k])
def test_another_symptom_on_the_same_binding_and_case_stays_unexplained(by_kind, kind, shown):
    assert not match(SHOWS[shown](), [by_kind[kind]]).entries


def test_a_crash_matches_only_a_crash_entry(by_kind):
    crash = SHOWS["crash"]()
    assert [k for k, e in by_kind.items() if match(crash, [e]).complete] == ["crash"]
    timeout = SHOWS["timeout"]()
    assert [k for k, e in by_kind.items() if match(timeout, [e]).complete] == ["timeout"]


@pytest.mark.parametrize(
    "symptom, shown, fits",
    [
        ('{ kind = "nonfinite", nonfinite = "nan" }', finding(actual=value(np.inf)), False),
        ('{ kind = "nonfinite", nonfinite = "inf" }', finding(actual=value(np.inf)), True),
        ('"nonfinite"', finding(expected={"value": encode_array(np.float64(np.inf))}, actual=value(np.nan)), False),
        (
            '{ kind = "nonfinite", nonfinite = "nan", oracle = "inf" }',
            finding(expected={"value": encode_array(np.float64(np.inf))}, actual=value(np.nan)),
            True,
        ),
        ('{ kind = "error", error = "ValueError" }', SHOWS["error"](), False),
        ('{ kind = "error", error = ["ValueError", "RuntimeError"] }', SHOWS["error"](), True),
        ('"wrong_error"', SHOWS["wrong_error"](), True),
        ('{ kind = "dtype", dtype = "float16" }', SHOWS["dtype"](), False),
        ('{ kind = "bound", max_abs = 1e-5 }', SHOWS["bound"](), False),
        ('{ kind = "bound", max_abs = 1e-4, max_rel = 1e-5 }', SHOWS["bound"](), False),
        ('{ kind = "bound", max_ulp = 1000 }', SHOWS["bound"](), False),  # 3e-5 is 1007 float32 ULPs of 0.319
        ('{ kind = "bound", max_ulp = 1100 }', SHOWS["bound"](), True),
        ('{ kind = "factor", factor = 2 }', SHOWS["factor"](), False),
        ('["zero", "sign"]', in_gradient([0.0, 0.2, 0.1]), True),  # one element of each
        ('["zero", "sign"]', in_gradient([0.0, -0.3, 0.1]), False),  # -0.3 for -0.2: neither
    ],
)
def test_a_symptom_matches_only_what_its_arguments_say(tmp_path, symptom, shown, fits):
    (k,) = load(tmp_path, entry("x", symptom))
    assert match(shown, [k]).complete is fits


def test_a_wrong_dtype_is_judged_in_the_narrower_dtype(tmp_path):
    # float64 case, float32 result: the oracle's 5e39 is past float32's range, so inf is due
    (k,) = load(tmp_path, entry("x", '{ kind = "dtype", dtype = "float32" }', extra='dtype = "float64"\n'))
    huge = {"value": encode_array(np.float64(5e39))}
    errors = {"ok": False, "dtype": "float32"}
    overflow = finding(dtype="float64", expected=huge, actual={**value(np.inf), "dtype": "float32"}, errors=errors)
    assert match(overflow, [k]).complete
    wrong = finding(dtype="float64", expected=huge, actual={**value(np.nan), "dtype": "float32"}, errors=errors)
    assert not match(wrong, [k]).complete


def test_a_wrong_dtype_whose_numbers_are_within_the_rounding_model_fits_a_plain_dtype_symptom(tmp_path):
    """A float16 case returned as float64 whose numbers are a float16 stage's rounding away
    (``errors.rounding``, set by the runner from the binding's error model) fits
    ``{kind = "dtype", dtype = "float64"}``; the same numbers without the model do not."""
    (k,) = load(tmp_path, entry("x", '{ kind = "dtype", dtype = "float64" }', extra='dtype = "float16"\n'))
    due = {"value": encode_array(np.float64(0.25))}
    off = {**value(0.2513), "dtype": "float64"}  # 0.0013 off: past float16's tolerance
    rounding = {"stages": ["log_softmax"], "dtype": "float16", "error": 0.0013, "bound": 0.002, "ratio": 0.65}
    modelled = finding(
        dtype="float16", expected=due, actual=off, errors={"ok": False, "dtype": "float64", "rounding": rounding}
    )
    assert match(modelled, [k]).complete
    bare = finding(dtype="float16", expected=due, actual=off, errors={"ok": False, "dtype": "float64"})
    assert not match(bare, [k]).complete


def test_a_wrong_dtype_with_elementwise_kinds(tmp_path):
    """[dtype, nonfinite]: a float64 value of a float16 case whose numbers agree but for a NaN;
    a NaN alone in the right dtype, or a wrong dtype whose odd element is not NaN, do not fit;
    the plain dtype symptom does not take the NaN."""
    (k,) = load(
        tmp_path,
        entry(
            "x",
            '[{ kind = "dtype", dtype = "float64" }, { kind = "nonfinite", nonfinite = "nan" }]',
            extra='dtype = "float16"\n',
        ),
    )
    (tmp_path / "p").mkdir()
    (plain,) = load(tmp_path / "p", entry("p", '{ kind = "dtype", dtype = "float64" }', extra='dtype = "float16"\n'))
    due = {"value": encode_array(np.array([0.25, 0.5]))}
    errors = {"ok": False, "dtype": "float64"}
    nan = finding(
        dtype="float16", expected=due, actual={**value(np.array([np.nan, 0.5])), "dtype": "float64"}, errors=errors
    )
    assert match(nan, [k]).complete and not match(nan, [plain]).complete
    off = finding(
        dtype="float16", expected=due, actual={**value(np.array([0.3, 0.5])), "dtype": "float64"}, errors=errors
    )
    assert not match(off, [k]).complete
    same_dtype = finding(dtype="float16", expected=due, actual=value(np.array([np.nan, 0.5])))
    assert not match(same_dtype, [k]).complete


def test_elements_within_the_rounding_model_are_not_part_of_the_symptom(tmp_path):
    """A NaN beside elements off by rounding: with the model's allowance kept by the runner
    (``errors["rounding_bound"]``) the part shows only the NaN and fits "nonfinite"; without
    it the rounded neighbours are mismatched too and the symptom does not fit."""
    (k,) = load(tmp_path, entry("x", '{ kind = "nonfinite", nonfinite = "nan" }', extra='part = "gradient"\n'))
    got = np.array(GRAD, np.float64) + [np.nan, 4e-4, 0.0]
    kept = in_gradient(got)
    kept["gradients"]["input"]["errors"]["rounding_bound"] = encode_array(np.full(len(GRAD), 1e-3))
    assert match(kept, [k]).complete
    assert not match(in_gradient(got), [k]).complete


def test_an_entry_on_one_gradient_matches_that_gradient_only(tmp_path):
    """``part = "gradient:weight"``: a NaN slope for a weight fits, the same NaN in the input's does not."""
    (k,) = load(tmp_path, entry("x", '{ kind = "nonfinite", nonfinite = "nan" }', extra='part = "gradient:weight"\n'))
    got = np.array(GRAD, np.float64) + [np.nan, 0.0, 0.0]
    on_input = in_gradient(got)
    assert not match(on_input, [k]).complete
    on_weight = dict(on_input, gradients={"weight": on_input["gradients"]["input"]})
    assert match(on_weight, [k]).complete


# -- several parts, several entries ------------------------------------------------------------


def two_parts() -> dict:
    """A NaN value and, besides, an input gradient a few units off."""
    return result(
        verdict="deviate",
        value_verdict="deviate",
        actual=value(np.nan),
        gradients={"input": gradient(np.array(GRAD), np.array([0.5, -0.2, 0.10003]))},
    )


class Adapter:
    def reproducer(self, binding, case, dtype, *, mode, wrt):
        return "print('reproduce')"


def test_a_value_entry_does_not_absorb_a_failing_gradient(tmp_path):
    value_entry = entry("nan-value", '"nonfinite"', extra='part = "value"\n')
    (k,) = load(tmp_path, value_entry)
    record = finish(two_parts(), Adapter(), None, None, [k])
    assert record["verdict"] == "deviate" and record["known"] is None
    assert record["partly_known"] == {"value": "nan-value", "gradient:input": None}


def test_each_failing_part_is_explained_by_its_own_entry(tmp_path):
    known = load(
        tmp_path,
        entry("nan-value", '"nonfinite"', extra='part = "value"\n'),
        entry("slope", '{ kind = "bound", max_ulp = 10000 }', extra='part = "gradient"\n'),
    )
    record = finish(two_parts(), Adapter(), None, None, known)
    assert record["verdict"] == "known" and "partly_known" not in record
    k = record["known"]
    assert (k["id"], k["verdict"]) == ("nan-value", "deviate")
    assert k["parts"] == {"value": "nan-value", "gradient:input": "slope"}
    assert [e["id"] for e in k["entries"]] == ["nan-value", "slope"]
    assert k["symptom"] == "nonfinite" and k["entries"][1]["symptom"] == "bound max_ulp<=10000"


# -- the most specific entry ---------------------------------------------------------------------


def test_the_most_specific_entry_wins_over_an_earlier_looser_one(tmp_path):
    known = load(
        tmp_path,
        entry("any-torch-nan", '"nonfinite"', place='binding = "torch.nn*"\n'),  # first in the file
        entry("bce-seed-nan", '"nonfinite"'),
        entry("bce-seed-zero", '"zero"'),  # narrower still, but another symptom
    )
    assert known[0].coverage > known[1].coverage
    assert [e.id for e in match(SHOWS["nonfinite"](), known).entries] == ["bce-seed-nan"]
    # in any order
    assert [e.id for e in match(SHOWS["nonfinite"](), known[::-1]).entries] == ["bce-seed-nan"]


def test_of_equal_places_the_narrower_symptom_wins_then_the_smaller_id(tmp_path):
    known = load(
        tmp_path,
        entry("b-any-nonfinite", '"nonfinite"'),
        entry("c-nan", '{ kind = "nonfinite", nonfinite = "nan" }'),
    )
    assert [e.id for e in match(SHOWS["nonfinite"](), known).entries] == ["c-nan"]
    tie = load(
        tmp_path,
        entry("z-runtime", '{ kind = "error", error = "RuntimeError" }'),
        entry("a-runtime", '{ kind = "error", error = ["RuntimeError"] }'),
    )
    assert tie[0].rank[:2] == tie[1].rank[:2]
    assert [e.id for e in match(SHOWS["error"](), tie).entries] == ["a-runtime"]


# -- checked when loaded ---------------------------------------------------------------------------


def bad(tmp_path, body: str) -> str:
    path = toml(tmp_path, body)
    with pytest.raises(KnownError) as info:
        load_known(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"known deviations {path}: ")
    return text.removeprefix(f"known deviations {path}: ")


@pytest.mark.parametrize(
    "body, problem",
    [
        (
            entry("x", '"weird"'),
            "entry 'x': symptom: unknown kind 'weird'; kinds: crash, timeout, error, no_error, wrong_error, dtype, "
            "shape, nonfinite, finite, zero, sign, factor, bound",
        ),
        (entry("x", '"bound"'), "entry 'x': symptom bound: give at least one of max_ulp, max_rel, max_abs"),
        (entry("x", '{ kind = "error" }'), "entry 'x': symptom error: error is required"),
        (
            entry("x", '{ kind = "zero", max_ulp = 3 }'),
            "entry 'x': symptom zero: unknown argument 'max_ulp' (arguments: none)",
        ),
        (
            entry("x", '["crash", "zero"]'),
            "entry 'x': symptom: 'crash' is about the whole part and cannot be in a list",
        ),
        (
            entry("x", '"nonfinite"', place='binding = "torch.nn.Nope*"\n'),
            "entry 'x': binding glob 'torch.nn.Nope*' matches no binding",
        ),
        (
            entry("x", '"nonfinite"', place='binding = "torch.nn.BCELoss"\nspec = "no_such_spec"\n'),
            "entry 'x': spec 'no_such_spec' matches no spec",
        ),
        (
            entry("x", '"nonfinite"', place='binding = "torch.nn.BCELoss"\nspec = "huber"\n'),
            "entry 'x': binding glob 'torch.nn.BCELoss' matches no binding of spec 'huber'",
        ),
        (
            entry("x", '"nonfinite"', place='binding = "torch.nn.BCELoss"\ncase = "edge-nope"\n'),
            "entry 'x': case 'edge-nope' matches no case of its bindings' specs",
        ),
        (
            entry("x", '"nonfinite"', extra='dtype = "float8"\n'),
            "entry 'x': dtype 'float8' matches no dtype (float64, float32, float16, bfloat16)",
        ),
        (
            entry("x", '"nonfinite"', extra='mode = "jit"\n'),
            "entry 'x': mode 'jit' matches no mode of its bindings' frameworks",
        ),
        (
            entry("x", '"nonfinite"', extra='verdict = "known"\n'),
            "entry 'x': verdict 'known' matches no finding (crash, timeout, error_mismatch, deviate)",
        ),
        (
            entry("x", '"nonfinite"', extra='part = "values"\n'),
            "entry 'x': part 'values': accepted: value, gradient, *, gradient:input, gradient:target, gradient:var, "
            "gradient:input2, gradient:positive, gradient:negative, gradient:weight, gradient:pos_weight",
        ),
        (
            entry("x", '"crash"', extra='verdict = "deviate"\n'),
            "entry 'x': symptom crash is a crash finding, not one of verdict 'deviate'",
        ),
        (
            entry("x", '"no_error"', extra='part = "gradient"\n'),
            "entry 'x': symptom no_error concerns the value, not a gradient",
        ),
        (
            entry("x", '"nonfinite"', extra='symtom = "zero"\n'),
            "entry 'x': unknown field 'symtom' (fields: id, binding, "
            "spec, case, dtype, mode, verdict, part, params, symptom, explanation, link, reproducer)",
        ),
        ('id = "x"\n' + PLACE + 'explanation = "why"\n' + LINK, "entry 'x': symptom is missing"),
        (
            f'id = "x"\n{PLACE}symptom = "zero"\nexplanation = "why"\n',
            "entry 'x': no link and no reproducer: an entry without an upstream report carries a reproducer",
        ),
        (
            f'id = "x"\n{PLACE}symptom = "zero"\nexplanation = "why"\nreproducer = "python repro.py"\n',
            "entry 'x': reproducer must be a 'lossparity explain ...' command line",
        ),
        (
            'id = "x"\n' + PLACE + 'symptom = "zero"\nexplanation = "why"\nlink = "see the forum"\n',
            "entry 'x': link 'see the forum' is not a web address",
        ),
        ("id = 'x'\nbinding = [", None),  # not TOML: the parser's own words
    ],
)
def test_a_bad_entry_is_one_line_naming_it(tmp_path, body, problem):
    text = bad(tmp_path, body)
    assert text == problem if problem else text.startswith("not valid TOML: ")


def test_ids_are_unique_and_exact_duplicates_are_refused(tmp_path):
    path = toml(tmp_path, entry("x", '"zero"'), entry("x", '"sign"'))
    with pytest.raises(KnownError, match=re.escape(f"{path}: entry 'x': id used twice (entries 1 and 2)")):
        load_known(path)
    path = toml(tmp_path, entry("x", '"zero"'), entry("y", '"zero"'))
    with pytest.raises(KnownError, match="entries 'x' and 'y' are exact duplicates \\(the same place and symptom\\)"):
        load_known(path)


def test_brackets_are_literal_in_binding_globs_and_sets_in_case_globs(tmp_path):
    (k,) = load(tmp_path, entry("x", '"zero"', place='binding = "keras.losses.Huber[*]"\ncase = "edge-[ih]*"\n'))
    assert k.coverage > 0


@pytest.mark.parametrize("command", ["run", "explain"])
@pytest.mark.parametrize(
    "body, problem",
    [
        (entry("x", '"weird"'), "entry 'x': symptom: unknown kind 'weird'"),
        (entry("x", '"zero"', place='binding = "torch.nn.Nope*"\n'), "entry 'x': binding glob 'torch.nn.Nope*'"),
        (entry("x", '"zero"', place='binding = "torch.nn.BCELoss"\nspec = "nope"\n'), "entry 'x': spec 'nope'"),
    ],
    ids=["malformed", "glob-matching-no-binding", "unknown-spec"],
)
def test_the_command_line_says_a_bad_entry_in_one_line_and_exits_2(tmp_path, capsys, command, body, problem):
    path = toml(tmp_path, body)
    argv = {
        "run": ["run", "--known", str(path), "--losses", "binary_cross_entropy", "--out", str(tmp_path / "out")],
        "explain": ["explain", "torch.nn.BCELoss", "--input", "[0.5]", "--target", "[1]", "--known", str(path)],
    }[command]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"lossparity: error: known deviations {path}: {problem}")
    assert not (tmp_path / "out" / "results.jsonl").exists()


# -- after a run -------------------------------------------------------------------------------------


def test_every_entry_is_judged_used_stale_or_not_run(tmp_path):
    known = load(
        tmp_path,
        entry("used", '"zero"'),
        entry("stale", '"sign"', place='binding = "torch.nn.BCELoss"\ncase = "edge-p-nan"\n'),
        entry(
            "not-run", '"sign"', place='binding = "torch.nn.BCELoss"\ncase = "edge-p-nan"\n', extra='mode = "compile"\n'
        ),
        entry("other-binding", '"zero"', place='binding = "tf.nn.l2_loss"\n'),
    )
    ran = {("torch.nn.BCELoss", "binary_cross_entropy", c, "float32", "eager") for c in ("edge-seed-000", "edge-p-nan")}
    assert judge(known, {"used"}, ran) == {
        "used": "used",
        "stale": "stale",
        "not-run": "not run",
        "other-binding": "not run",
    }


def test_an_entry_is_stale_only_where_a_case_met_its_params_condition(tmp_path):
    """``params`` is part of an entry's place for ``judge`` as for matching: a run whose cases
    of the entry's binding all have label_smoothing 0 never exercised an entry placed on
    ``label_smoothing > 0``, so it is not run, not stale; one case with 0.1 makes it stale."""
    known = load(
        tmp_path,
        entry("smoothed", '"sign"', place='binding = "torch.nn.BCELoss"\n', extra='params = "label_smoothing > 0"\n'),
    )
    place = ("torch.nn.BCELoss", "binary_cross_entropy", "gen-0-1", "float32", "eager")
    assert judge(known, set(), {(*place, ran_params({"label_smoothing": 0.0, "reduction": "mean"}))}) == {
        "smoothed": "not run"
    }
    assert judge(known, set(), {(*place, ran_params({"label_smoothing": 0.1}))}) == {"smoothed": "stale"}
    assert judge(known, set(), {place}) == {"smoothed": "not run"}  # parameters unknown: no condition met
    # and the same through the summary a run ends with (conclude reads each result's params)
    plain = finding(verdict="conform", value_verdict="conform", params={"label_smoothing": 0.0})
    smoothed = {**plain, "case_id": "edge-seed-001", "params": {"label_smoothing": 0.1}}
    status = {k["id"]: k["status"] for k in conclude([plain], known)[1]["known_entries"]}
    assert status == {"smoothed": "not run"}
    status = {k["id"]: k["status"] for k in conclude([plain, smoothed], known)[1]["known_entries"]}
    assert status == {"smoothed": "stale"}


def test_the_summary_counts_what_each_entry_explained(tmp_path):
    known = load(
        tmp_path,
        entry("nan-value", '"nonfinite"', extra='part = "value"\n'),
        entry("slope", '{ kind = "bound", max_ulp = 10000 }', extra='part = "gradient"\n'),
        entry("never", '"sign"', place='binding = "torch.nn.BCELoss"\ncase = "edge-p-nan"\n'),
    )
    both = finish(two_parts(), Adapter(), None, None, known)  # known by nan-value and slope
    nan_only = finish(finding(actual=value(np.nan)), Adapter(), None, None, known)
    nan_only["binding"] = "torch.nn.functional.binary_cross_entropy"  # the same case by another binding
    partly = finish(two_parts(), Adapter(), None, None, known[:1])
    partly["dtype"] = "float64"
    _, summary = conclude([both, nan_only, partly, result(case_id="edge-p-nan")], known)
    rows = {e["id"]: e for e in summary["known_entries"]}
    assert (rows["nan-value"]["results"], rows["nan-value"]["partly"], rows["nan-value"]["status"]) == (2, 1, "used")
    assert (rows["slope"]["results"], rows["slope"]["partly"]) == (1, 0)
    assert rows["never"]["status"] == "stale" and [k["id"] for k in summary["stale_known"]] == ["never"]
    # the two bindings' NaN values are identical: no divergence; every one is counted, none here
    assert all(e["divergences"] == 0 for e in rows.values())


def test_a_divergence_explained_by_known_deviations_is_counted_for_each(tmp_path):
    known = load(tmp_path, entry("nan-value", '"nonfinite"'), entry("zero-value", '"zero"'))
    nan = finish(finding(actual=value(np.nan)), Adapter(), None, None, known)
    zero = finish(finding(actual=value(0.0)), Adapter(), None, None, known)
    zero["binding"] = "torch.nn.functional.binary_cross_entropy"
    lines, summary = conclude([nan, zero], known)
    (d,) = [x for x in lines if x["kind"] == "divergence"]
    assert d["status"] == "explained" and d["known"] == ["nan-value", "zero-value"]
    assert {e["id"]: e["divergences"] for e in summary["known_entries"]} == {"nan-value": 1, "zero-value": 1}


# -- the registry ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry():
    return load_known()


def test_the_registry_loads_and_every_entry_states_its_symptom(registry):
    assert len(registry) > 150 and all(k.symptom for k in registry)


def test_the_torch_kl_div_entries_mean_torchs_kl_div(registry):
    ids = {b.id for b in all_bindings() if b.spec == "kl_div" and b.framework == "torch"}
    assert ids == {"torch.nn.functional.kl_div", "torch.nn.KLDivLoss"}
    torch_entries = [k for k in registry if k.id.startswith("torch-kl-div-")]
    assert torch_entries  # the zero target's NaN slope (the rounding is kl_div_error's, not an entry's)
    for k in torch_entries:
        assert {b.id for b in all_bindings() if binding_matches(b.id, k.binding) and b.spec == k.spec} == ids


def test_every_reproducer_is_an_explain_command_line_of_its_entrys_bindings(registry):
    parser = build_parser()
    with_reproducer = [k for k in registry if k.reproducer]
    assert with_reproducer
    for k in with_reproducer:
        args = parser.parse_args(shlex.split(k.reproducer)[1:])
        assert args.command == "explain"
        for named in args.bindings:
            # a binding id (SPEC:ID), or a call as written, which names its binding
            binding = named_binding(named) if is_call(named) else named.split(":", 1)[-1]
            assert binding_matches(binding, k.binding), (k.id, named)


def test_a_reproducer_runs_and_shows_its_deviation(registry):
    pytest.importorskip("optax")
    (k,) = [k for k in registry if k.id == "optax-multiclass-sparsemax-x64-float32-f32-dtype-float64"]
    argv = [sys.executable, "-m", "lossparity", *shlex.split(k.reproducer)[1:]]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=True)
    said = "".join(done.stdout.split())  # the text wraps, at hyphens too
    assert said.count("".join(f"It is a registered known deviation, {k.id}:".split())) == 1
    (shown,) = json.loads(subprocess.run([*argv, "--json"], capture_output=True, text=True, check=True).stdout)[
        "bindings"
    ]
    # the value comes back float64; with --grad, jax.grad raises: two parts, two entries
    assert shown["value_verdict"] == "deviate" and shown["verdict"] == "known"
    assert shown["known_ids"] == [k.id, "optax-multiclass-sparsemax-x64-float32-f32-error-typeerror"]
    assert shown["errors"]["summary"].startswith("Returned float64 where float32 was due.")
    gradient = shown["gradients"]["input"]
    assert gradient["verdict"] == "error_mismatch" and gradient["error"].startswith("TypeError")


def _entries_with_reproducers():
    return [pytest.param(k, id=k.id) for k in load_known(KNOWN_PATH) if k.reproducer]


@pytest.mark.parametrize("entry", _entries_with_reproducers())
def test_every_reproducer_makes_explain_name_its_entry(entry, capsys):
    """An entry without an upstream report is proven by its reproducer: run as written (in
    process, --json added), explain judges the value (and the gradient with --grad) as a run
    does, on the suite's case of the same arrays and parameters, and names this entry."""
    from lossparity.cli import main

    argv = shlex.split(entry.reproducer)[1:]
    assert main([*argv, "--json"]) in (0, 1)
    shown = json.loads(capsys.readouterr().out)["bindings"]
    assert any(entry.id in side["known_ids"] for side in shown), [
        (s["binding"], s["verdict"], s["known_ids"]) for s in shown
    ]


def test_the_registry_is_the_default(registry):
    assert [k.id for k in load_known(KNOWN_PATH)] == [k.id for k in registry]


# -- scripts/derive-symptoms -----------------------------------------------------------------------


def test_derive_symptoms_groups_an_entrys_results_and_splits_it_on_write(tmp_path):
    from lossparity.core.records import write_all

    marker = "  # symptom from the explanation, not yet seen in a run"
    path = toml(
        tmp_path,
        f'id = "open"\nbinding = "torch.nn.BCELoss"\nexplanation = "why"\n{LINK}',
        entry("kept", '"sign"'),
        f'id = "guessed"\nbinding = "torch.nn.BCELoss"\ncase = "edge-p-nan"\ndtype = "float64"\n'
        f'symptom = "zero"{marker}\nexplanation = "why"\n{LINK}',
    )
    old = {"id": "open", "explanation": "why", "link": "x", "verdict": "deviate"}  # before symptoms
    results = [
        finding(case_id="edge-p-zero-y-one", actual=value(np.nan), verdict="known", value_verdict="deviate", known=old),
        {**in_gradient([0.0, -0.2, 0.1]), "case_id": "edge-p-one-y-zero", "verdict": "known", "known": old},
        # edge-seed-000: "kept" is narrower than "open", which the run chose
        finding(actual=value(np.nan), verdict="known", value_verdict="deviate", known=old),
        finding(case_id="edge-p-nan", dtype="float64", actual=value(np.inf)),  # unexplained, in "guessed"'s place
    ]
    write_all(tmp_path / "results.jsonl", results)
    script = [sys.executable, str(ROOT / "scripts" / "derive-symptoms"), str(tmp_path / "results.jsonl")]
    shown = subprocess.run([*script, "--known", str(path)], capture_output=True, text=True, check=True).stdout
    assert "open: 2 parts\n       1  nonfinite nan\n       1  zero\n" in shown
    assert "kept: 1 parts  (has a symptom: kept)\n       1  nonfinite nan   [also in the place of open (1)]\n" in shown
    assert "guessed: 1 parts\n       1  nonfinite inf   [also in the place of open (1)]\n" in shown
    subprocess.run([*script, "--known", str(path), "--write"], capture_output=True, text=True, check=True)
    written = {k.id: k for k in load_known(path)}
    assert list(written) == ["open-nonfinite-nan", "open-zero", "kept", "guessed"]
    assert [s.text() for s in written["open-nonfinite-nan"].symptom] == ["nonfinite nan"]
    assert [s.text() for s in written["kept"].symptom] == ["sign"]
    assert [s.text() for s in written["guessed"].symptom] == ["nonfinite inf"] and marker not in path.read_text()
