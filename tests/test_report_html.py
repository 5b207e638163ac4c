"""The HTML report: counts, self-containment, escaping, and rendering from records alone."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from html import unescape

import numpy as np
import pytest
from fake_records import (
    BCE,
    SYNTHETIC_BINDINGS,
    agreement,
    bce_clamp_divergence,
    divergence,
    gradient,
    result,
    summary,
    synthetic,
)
from markupsafe import escape

from lossparity.core.records import encode_array, write_all
from lossparity.reports.format import format_array
from lossparity.reports.report import render_report, write_report

SCRIPT = "<script>alert(1)</script>"
ATTR = '"><img src=x onerror=alert(1)>'
LINK = "https://github.com/pytorch/pytorch/issues/12345"
SCE = "softmax_cross_entropy"


def records(*, hostile: bool = False) -> list[dict]:
    evil = (SCRIPT + ATTR) if hostile else ""
    meta = {
        "kind": "meta",
        "versions": {"torch": "2.13.0+cpu", "numpy": "2.1.0"},
        "python": "3.11.7",
        "platform": "Linux-x86_64",
        "cpu": "x86_64",
        "device": "cpu",
        "seed": 7,
        "examples": 25,
        "command": "lossparity run --out reports/latest" + (" --losses '" + evil + "'" if hostile else ""),
        "started": "2026-01-01T00:00:00",
    }
    conform = result("torch.nn.BCELoss", "conform")
    deviate = result(
        "torch.nn.functional.binary_cross_entropy" + (ATTR if hostile else ""),
        "deviate",
        case_id="edge-p-zero-y-one",
        params={"reduction": "none", "label": "x" + evil},
        actual={"value": encode_array(np.array([100.0, 0.6931471805599453])), "dtype": "float32"},
        expected={"value": encode_array(np.array([16.11809565095832, 0.6931471805599453]))},
        errors={
            "ok": False,
            "mismatched": 1,
            "total": 2,
            "max_abs": 83.88190434904168,
            "max_rel": 5.204,
            "max_ulp": 1.0e7,
            "index": [0],
            "summary": "Mismatched elements: 1 / 2 (50.0%)\nGreatest absolute difference: 83.8819 at index (0,)",
        },
        reproducer="import torch\nloss = torch.nn.functional.binary_cross_entropy(input, target)\nprint(loss)\n",
    )
    crash = result(
        "torch.nn.BCELoss",
        "crash",
        case_id="edge-p-nan",
        actual={"error": "RuntimeError", "message": "boom " + evil, "classes": ["RuntimeError", "Exception"]},
        errors={"summary": "expected a value; raised RuntimeError"},
        reproducer="import torch\n",
    )
    known = result(
        "torch.nn.BCELoss",
        "known",
        case_id="edge-p-one-y-zero",
        known={
            "id": "torch-bce-log-clamp",
            "explanation": "PyTorch clamps the log at -100.",
            "link": LINK,
            "verdict": "deviate",
        },
        errors={"summary": "Mismatched elements: 1 / 1", "max_abs": 1.0, "max_rel": 1.0, "max_ulp": 1.0},
        reproducer="import torch\n",
    )
    unsupported = result(
        "keras.losses.BinaryCrossentropy",
        "unsupported",
        framework="tensorflow",
        case_id="-",
        inputs={},
        expected=None,
        actual={"error": "unsupported", "message": "tensorflow is not installed"},
    )
    explained = bce_clamp_divergence(
        attribution={
            "status": "explained",
            "differing": [
                {"name": "log_min", "a": None, "b": -100.0, "alone": 0.25, "share": 0.5},
                {"name": "prob_eps", "a": 1e-7, "b": None, "alone": -0.125, "share": 0.5},
            ],
            "conventions": ["log_min", "prob_eps"],
            "closed": 1.0,
        },
        reason="explained by log_min + prob_eps: keras uses None and 1e-07, torch uses -100.0",
    )
    end = summary(
        {"conform": 1, "deviate": 1, "crash": 1, "known": 1, "unsupported": 1},
        divergences={"explained": 1, "unexplained": 0},
        stale_known=[
            {
                "id": "tf-stale-entry",
                "explanation": "fixed upstream",
                "link": "https://github.com/tensorflow/tensorflow/issues/1",
            },
            {"id": "js-link", "explanation": "not a web link", "link": "javascript:alert(1)"},
        ],
    )
    return [meta, conform, deviate, crash, known, unsupported, explained, end]


@pytest.fixture(scope="module")
def page() -> str:
    return render_report(records())


def _tile(page: str, label: str) -> int:
    m = re.search(r'<div class="c">(\d+)</div><div class="l">' + re.escape(label) + "</div>", page)
    assert m, label
    return int(m.group(1))


def test_counts_per_verdict_and_divergence(page):
    verdicts = ("conform", "deviate", "error_mismatch", "unsupported", "crash", "timeout", "unconfirmed", "known")
    assert {v: _tile(page, v) for v in verdicts} == {
        "conform": 1,
        "deviate": 1,
        "error_mismatch": 0,
        "unsupported": 1,
        "crash": 1,
        "timeout": 0,
        "unconfirmed": 0,
        "known": 1,
    }
    assert _tile(page, "explained divergences") == 1
    assert _tile(page, "unexplained divergences") == 0
    assert "summary line counts differently" not in page


def test_run_metadata_and_sections(page):
    for text in (
        "2.13.0+cpu",
        "3.11.7",
        "Linux-x86_64",
        "lossparity run --out reports/latest",
        "2026-01-01T00:00:00",
        "2026-01-01T00:01:00",
    ):
        assert text in page
    assert "tensorflow is not installed" in page  # the unsupported column, with its reason
    assert "tf-stale-entry" in page  # stale known deviations
    assert "explained by log_min + prob_eps" in page  # the divergence's reason


def test_findings_are_details_with_everything_a_reader_needs(page):
    blocks = re.findall(r'<details class="item f-(\w+)"', page)
    assert sorted(blocks) == ["crash", "deviate", "explained", "known"]  # not conform, not unsupported
    assert "import torch\nloss = torch.nn.functional.binary_cross_entropy(input, target)" in page
    assert "seed 000: BCE is 0.3190" in page  # origin
    assert "[16.11809565095832, 0.6931471805599453]" in page  # expected, exactly
    assert "[0.800000011920929, 0.20000000298023224, 0.4000000059604645]" in page  # float32 inputs, exactly
    assert "Greatest absolute difference: 83.8819 at index (0,)" in page
    assert "83.8819" in page and "5.204" in page  # max_abs, max_rel
    assert "PyTorch clamps the log at -100." in page
    # everything is visible without JavaScript: only the filter bar starts hidden
    assert page.count(" hidden") == 1 and '<div id="filters" hidden>' in page


def test_self_contained_with_csp(page):
    # the one inline script may run, by its hash: no other script, inline or injected, can
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert (
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        f"style-src 'unsafe-inline'; script-src 'sha256-{digest}'; img-src data:\">"
    ) in page
    lowered = page.lower()
    assert "<script src" not in lowered and "<link" not in lowered and "@import" not in lowered
    assert not re.search(r"""\bsrc\s*=\s*["']?(https?:)?//""", lowered)
    assert not re.search(r"url\((?!#)", lowered)  # only the inline plots' references to their own clip paths
    # the only web addresses are the known-deviation links, as plain links
    hrefs = re.findall(r'href="([^"#][^"]*)"', page)
    assert sorted(hrefs) == sorted([LINK, "https://github.com/tensorflow/tensorflow/issues/1"])
    assert 'href="javascript:' not in lowered  # a non-web link is shown as text only


def test_hostile_strings_are_escaped():
    page = render_report(records(hostile=True))
    for raw in (SCRIPT, ATTR):
        assert raw not in page
        assert str(escape(raw)) in page
    assert page.count("<script>") == 1  # ours only
    assert "<img" not in page


def test_unfinished_run_without_summary():
    page = render_report(records()[:-1])
    assert "did not finish" in page
    assert _tile(page, "deviate") == 1


def test_write_report(tmp_path):
    out = write_report(records(), tmp_path / "sub" / "report.html")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_format_array_is_exact_and_summarised():
    a = np.array([[0.1, np.nan], [-np.inf, 1e-300]])
    assert format_array(encode_array(a)) == "[[0.1, nan],\n [-inf, 1e-300]]"
    assert format_array(encode_array(np.arange(4))) == "[0, 1, 2, 3]"
    assert format_array(encode_array(np.float64(2.5))) == "2.5"
    assert format_array(encode_array(np.arange(1000.0))) == "[0.0, 1.0, 2.0, ..., 997.0, 998.0, 999.0]"


def test_renders_from_a_results_file_without_any_framework(tmp_path):
    results = tmp_path / "results.jsonl"
    write_all(results, records(hostile=True))
    code = (
        "import sys\n"
        # the plots measure ULPs as the comparison does: with its pure-NumPy module, nothing else of it
        "SHARED = {'lossparity.conformance', 'lossparity.conformance.compare', 'lossparity.core.dtypes'}\n"
        "from lossparity.core.records import read_records\n"
        "from lossparity.reports.report import write_report\n"
        f"write_report(read_records({str(results)!r}, validate=False), {str(tmp_path / 'r.html')!r})\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow', 'jax', 'jaxlib',"
        " 'keras', 'optax') or m.startswith(('lossparity.adapters', 'lossparity.conformance')) and m not in SHARED)\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().replace("'", '"')) == []
    assert (tmp_path / "r.html").stat().st_size > 1000


# -- divergences: attribution by ablation ---------------------------------------------------


def _divergence(
    attribution, *, status="explained", reason="", a="keras.losses.BinaryCrossentropy", b="torch.nn.BCELoss"
):
    return divergence(
        result(a, framework="tensorflow", case_id="edge-p-nan", actual={"value": encode_array(np.float64(np.nan))}),
        result(
            b,
            case_id="edge-p-nan",
            actual={"error": "RuntimeError", "message": "all elements of input should be between 0 and 1"},
        ),
        status=status,
        attribution=attribution,
        reason=reason,
    )


def _knob_rows(page: str) -> dict[str, list[str]]:
    """knob name -> [row class, a's value, b's value, closes alone, share] of the attribution table."""
    table = re.search(r'<table class="knobs">(.*?)</table>', page, re.S)
    assert table, "no attribution table"
    rows = {}
    for cls, cells in re.findall(r'<tr(?: class="(\w+)")?>(<td>.*?)</tr>', table.group(1), re.S):
        texts = [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)]
        rows[texts[0].split()[0] if texts[0] else ""] = [cls] + texts[1:]
    return rows


def test_divergence_attribution_table_marks_the_explaining_knob():
    reason = (
        "explained by prob_domain: keras.losses.BinaryCrossentropy uses 'nan', torch.nn.BCELoss uses 'RuntimeError'"
    )
    attribution = {
        "status": "explained",
        "differing": [
            {"name": "log_min", "a": None, "b": -100.0, "alone": 0.0, "share": -0.12},
            {"name": "prob_domain", "a": "nan", "b": "RuntimeError", "alone": 1.0, "share": 1.12},
            {"name": "default ignore_index", "a": None, "b": -100, "alone": None, "share": None},
        ],
        "conventions": ["prob_domain"],
        "closed": 1.0,
    }
    page = render_report([_divergence(attribution, reason=reason)])
    rows = _knob_rows(page)
    assert rows["prob_domain"] == ["explains", "'nan'", "'RuntimeError'", "100%", "112%"]
    assert rows["log_min"] == ["", "None", "-100.0", "0%", "-12%"]
    assert rows["default"] == ["", "None", "-100", "—", "—"]  # null shares are a dash, not 0%
    assert '<code>prob_domain</code> <span class="tag">explanation</span>' in page
    assert page.count('class="tag">explanation') == 1  # only the knob in `conventions`
    assert str(escape(reason)) in page
    # the table comes before the reason sentence, and an explained case says nothing of "unexplained"
    assert page.index('<table class="knobs">') < page.index(str(escape(reason)))
    assert "Unexplained:" not in page and "singles" not in page


def test_unexplained_attribution_says_what_switching_everything_closes():
    attribution = {
        "status": "unexplained",
        "differing": [
            {"name": "log_min", "a": None, "b": -100.0, "alone": 0.25, "share": 0.3},
            {"name": "prob_eps", "a": 1e-7, "b": None, "alone": 0.1, "share": 0.1},
        ],
        "conventions": [],
        "closed": 0.4,
    }
    page = render_report([_divergence(attribution, status="unexplained", reason="no declared difference explains it")])
    assert "switching every declared difference closes 40% of the gap" in page
    assert "explanation</span>" not in page  # no knob is marked as the explanation
    rows = _knob_rows(page)
    assert rows["log_min"][3:] == ["25%", "30%"] and rows["prob_eps"][3:] == ["10%", "10%"]
    assert rows["all"][3] == "40%"  # what all of them together close
    assert _tile(page, "unexplained divergences") == 1


@pytest.mark.parametrize(
    "attribution",
    [
        None,
        "garbage",
        [],
        {},
        {"differing": "x", "conventions": "prob_domain", "closed": "most"},
        {
            "status": "explained",
            "differing": [None, 3, {"name": None}, {"a": [1, 2]}],
            "conventions": [None],
            "closed": None,
        },
        {
            "status": "unexplained",
            "differing": [{"name": "loss", "a": "x", "b": "y", "alone": "nan", "share": True}],
            "conventions": [],
            "closed": float("nan"),
        },
        # the old shape (singles, no shares) still renders
        {
            "differing": [{"name": "log_min", "a": None, "b": -100.0}],
            "singles": [{"switch": ["log_min"], "closes": True}],
            "conventions": ["log_min"],
        },
    ],
)
def test_broken_attributions_render(attribution):
    page = render_report([_divergence(attribution, reason=SCRIPT)])
    assert SCRIPT not in page and str(escape(SCRIPT)) in page


def test_hostile_attribution_is_escaped():
    attribution = {
        "status": "unexplained",
        "differing": [{"name": SCRIPT, "a": ATTR, "b": SCRIPT, "alone": 0.5, "share": 0.5}],
        "conventions": [SCRIPT],
        "closed": 0.5,
    }
    page = render_report([_divergence(attribution, reason=ATTR)])
    assert SCRIPT not in page and ATTR not in page and "<img" not in page
    assert page.count("<script>") == 1


# -- who agrees with whom --------------------------------------------------------------------


def _agreement_table(page: str, spec: str) -> tuple[list[str], dict[tuple[str, str], tuple[str, str, str]]]:
    """The columns of one spec's matrix, and (row, column) -> (cell class, text, title)."""
    m = re.search(r'<table class="agree">\s*<caption>' + re.escape(spec) + r"</caption>(.*?)</table>", page, re.S)
    assert m, spec
    body = m.group(1)
    plain = lambda html: re.sub(r"<[^>]+>", "", html)  # noqa: E731
    columns = [plain(c) for c in re.findall(r'<th class="col">(.*?)</th>', body)]
    cells = {}
    for row, tds in re.findall(r"<tr><th>(.*?)</th>(.*?)</tr>", body.split("<tbody>")[1], re.S):
        found = re.findall(r'<td class="a-(\w+)"(?: title="([^"]*)")?>(.*?)</td>', tds)
        assert len(found) == len(columns)
        for col, (cls, title, text) in zip(columns, found):
            cells[plain(row), col] = (cls, plain(text), title)
    return columns, cells


def test_agreement_matrix_counts_both_halves_and_escapes():
    records = [
        result("torch.nn.CrossEntropyLoss", "conform", spec="softmax_cross_entropy"),
        agreement(SCE, "torch.nn.CrossEntropyLoss", "torch.nn.functional.cross_entropy", 52),
        agreement(SCE, "optax.losses.softmax_cross_entropy_with_integer_labels", "torch.nn.CrossEntropyLoss", 40, 3, 0),
        agreement(SCE, "keras.losses.SparseCategoricalCrossentropy[tensorflow]", "torch.nn.CrossEntropyLoss", 16, 1, 2),
        agreement(SCE, "keras.losses.SparseCategoricalCrossentropy[tensorflow]", SCRIPT, 7, 0, 5),
        agreement(BCE, "torch.nn.BCELoss", "keras.losses.BinaryCrossentropy", 5, 2, 0),
    ]
    page = render_report(records)
    assert "Who agrees with whom" in page
    # after what needs attention and the lists of findings and divergences, with the matrices
    order = [page.index(f'id="{i}"') for i in ("attention", "findings", "divergences", "matrix", "agreement", "run")]
    assert order == sorted(order)
    columns, cells = _agreement_table(page, "softmax_cross_entropy")
    torch, f_torch = "torch.nn.CrossEntropyLoss", "torch.nn.functional.cross_entropy"
    optax = "optax.losses.softmax_cross_entropy_with_integer_labels"
    keras = "keras.losses.SparseCategoricalCrossentropy[tensorflow]"
    # grouped by framework (torch first: the results matrix's order), sorted within
    assert columns[:4] == [torch, f_torch, optax, keras]  # then jax, keras[tensorflow] by name
    assert columns[4] == str(escape(SCRIPT))  # framework unknown: last
    # 3 of 40, all explained: both halves
    for pair in ((optax, torch), (torch, optax)):
        cls, text, title = cells[pair]
        assert (cls, text) == ("explained", "3 / 40")
        assert "disagree on 3 of 40 compared cases: 3 explained, 0 unexplained" in title
    # unexplained ones highlighted, both halves
    for pair in ((keras, torch), (torch, keras)):
        assert cells[pair][:2] == ("unexplained", "3 / 162 unexplained")
        assert "disagree on 3 of 16 compared cases: 1 explained, 2 unexplained" in cells[pair][2]
    assert '3 / 16<span class="ux">2 unexplained</span>' in page
    # agreeing everywhere: "=", both halves
    assert cells[torch, f_torch][:2] == cells[f_torch, torch][:2] == ("agree", "=")
    assert "agree on all 52 compared cases" in cells[f_torch, torch][2]
    # never compared: "·"; the diagonal is empty
    assert cells[optax, keras][:2] == cells[keras, optax][:2] == ("none", "·")
    assert cells[f_torch, optax][:2] == ("none", "·")
    assert cells[torch, torch][:2] == ("self", "")
    # the hostile binding id: its cells are there, and it is escaped everywhere
    assert cells[keras, str(escape(SCRIPT))][:2] == ("unexplained", "5 / 75 unexplained")
    assert SCRIPT not in page and page.count("<script>") == 1
    # the other spec has its own matrix
    _, bce = _agreement_table(page, "binary_cross_entropy")
    assert bce["torch.nn.BCELoss", "keras.losses.BinaryCrossentropy"][:2] == ("explained", "2 / 5")
    assert set(bce) == {
        (r, c)
        for r in ("torch.nn.BCELoss", "keras.losses.BinaryCrossentropy")
        for c in ("torch.nn.BCELoss", "keras.losses.BinaryCrossentropy")
    }


def test_agreement_sides_are_grouped_by_their_bindings_framework():
    """A side the result lines name, or the binding of a mode agreement's side, has their framework;
    a Keras id names its backend; other ids their framework's module; the rest are last."""
    keras = "keras.losses.Huber[jax]"
    records = [
        result(keras, "conform", framework="keras[jax]", spec="huber"),
        agreement("huber", f"{keras} [eager]", f"{keras} [jit]", 4),
        agreement("huber", "keras.losses.Huber[torch]", "optax.losses.huber_loss", 4),
        agreement("huber", "keras.losses.Huber", "torch.nn.HuberLoss", 4),
    ]
    page = render_report(records)
    head = re.search(r'<table class="agree">\s*<caption>huber</caption>\s*<thead>(.*?)</thead>', page, re.S)
    groups = re.findall(r'<th class="fw" colspan="(\d+)">(.*?)</th>', head.group(1))
    assert groups == [("2", "keras[jax]"), ("1", "jax"), ("1", "keras[torch]"), ("1", "torch"), ("1", "?")]


def test_no_agreement_records_no_matrix(page):
    assert 'id="agreement"' not in page and "Who agrees with whom" not in page


def test_broken_agreement_records_render():
    page = render_report(
        [
            {"kind": "agreement"},
            {"kind": "agreement", "spec": "s", "a": "x", "b": "x"},
            {
                "kind": "agreement",
                "spec": "s",
                "a": "x",
                "b": "y",
                "compared": "many",
                "explained": -1,
                "unexplained": None,
            },
            "not a record",
        ]
    )
    _, cells = _agreement_table(page, "s")
    assert cells["x", "y"][:2] == ("none", "·")


# -- gradients, execution modes, devices, dtypes ---------------------------------------------

BINDING = "torch.nn.CrossEntropyLoss"
GRAD_OK, GRAD_BAD = [[0.25, -0.125]], [[0.5, -0.125]]


def gradient_records() -> list[dict]:
    """One binding's findings in its value, its input gradient, its target gradient; one older line."""
    ok = gradient(GRAD_OK, GRAD_OK)
    return [
        result(BINDING, "conform", value_verdict="conform", gradients={"input": ok}),
        result(
            BINDING,
            "deviate",
            case_id="grad-only",
            value_verdict="conform",
            gradients={"input": gradient(GRAD_OK, GRAD_BAD)},
        ),
        result(
            BINDING, "deviate", case_id="value-only", mode="compile", value_verdict="deviate", gradients={"input": ok}
        ),
        result(
            BINDING,
            "known",
            case_id="both",
            dtype="float64",
            value_verdict="deviate",
            gradients={"input": ok, "target": gradient(GRAD_OK, GRAD_BAD, dtype="float64")},
        ),
        result(
            BINDING,
            "conform",
            dtype="bfloat16",
            device="cuda",
            value_verdict="conform",
            gradients={"input": ok, "target": ok},
        ),
        result(
            "keras.losses.BinaryCrossentropy",
            "deviate",
            framework="tensorflow",
            case_id="old-line",
            mode="function",
            device="cuda",
        ),  # no value_verdict, no gradients: an older file's line
    ]


def _plain(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html)).strip()


def _counts(html: str) -> dict[str, int]:
    """Verdict badges and "value 3" / "gradient 2" tags of a cell, as {name: count}."""
    return {k: int(n) for k, n in re.findall(r'(?:title="|class="part p-)(\w+)">(?:\w+ )?(\d+)</span>', html)}


def _bindings_table(page: str) -> tuple[list[str], dict[str, tuple[dict, list]]]:
    """The column heads, and binding -> (its findings-in counts, [(dtype, mode, device, {column: counts})])."""
    table = re.search(r'<table class="bindings">(.*?)</table>', page, re.S).group(1)
    head = [_plain(h) for h in re.findall(r"<th>(.*?)</th>", table.split("</thead>")[0])]
    out = {}
    for body in re.findall(r"<tbody>(.*?)</tbody>", table, re.S):
        top = re.search(r'<tr class="binding"><th[^>]*><code>(.*?)</code>(.*?)</th>', body, re.S)
        rows = []
        for tr in re.findall(r"<tr>(<td>.*?)</tr>", body, re.S):
            cells = re.findall(r"<td>(.*?)</td>", tr, re.S)
            rows.append((*cells[:3], {h: _counts(c) for h, c in zip(head[3:], cells[3:])}))
        out[_plain(top.group(1))] = (_counts(top.group(2)), rows)
    return head, out


def _finding_block(page: str, case_id: str) -> str:
    (block,) = [b for b in page.split('<details class="item')[1:] if f" · {case_id} · " in b.split("</summary>")[0]]
    return block.split("</details>")[0]


def test_gradient_columns_count_value_and_gradient_verdicts():
    head, table = _bindings_table(render_report(gradient_records()))
    assert head == ["dtype", "mode", "device", "result", "value", "∂input", "∂target", "findings in"]
    found, rows = table[BINDING]
    assert found == {"value": 2, "gradient": 2}  # "both" counts in each
    assert rows == [  # binding x dtype x mode x device, dtypes and modes in their order
        (
            "float64",
            "eager",
            "cpu",
            {
                "result": {"known": 1},
                "value": {"deviate": 1},
                "∂input": {"conform": 1},
                "∂target": {"deviate": 1},
                "findings in": {"value": 1, "gradient": 1},
            },
        ),
        (
            "float32",
            "eager",
            "cpu",
            {
                "result": {"conform": 1, "deviate": 1},
                "value": {"conform": 2},
                "∂input": {"conform": 1, "deviate": 1},
                "∂target": {},
                "findings in": {"gradient": 1},
            },
        ),
        (
            "float32",
            "compile",
            "cpu",
            {
                "result": {"deviate": 1},
                "value": {"deviate": 1},
                "∂input": {"conform": 1},
                "∂target": {},
                "findings in": {"value": 1},
            },
        ),
        (
            "bfloat16",
            "eager",
            "cuda",
            {
                "result": {"conform": 1},
                "value": {"conform": 1},
                "∂input": {"conform": 1},
                "∂target": {"conform": 1},
                "findings in": {},
            },
        ),
    ]
    # the older line: its value verdict is its verdict, and it has no gradients
    assert table["keras.losses.BinaryCrossentropy"] == (
        {"value": 1},
        [
            (
                "float32",
                "function",
                "cuda",
                {
                    "result": {"deviate": 1},
                    "value": {"deviate": 1},
                    "∂input": {},
                    "∂target": {},
                    "findings in": {"value": 1},
                },
            )
        ],
    )


def test_a_finding_only_in_its_gradient_shows_as_a_gradient_finding():
    page = render_report(gradient_records())
    block = _finding_block(page, "grad-only")
    assert block.startswith(' f-deviate" data-filter')
    assert 'data-mode="eager" data-device="cpu" data-in="gradient"' in block
    summary = block.split("</summary>")[0]
    assert '<span class="part p-gradient">gradient</span>' in summary and "p-value" not in summary
    assert _plain(summary.split('<span class="head">')[1]) == "∂input: max abs 0.25, max rel 1, 1/2 mismatched"
    body = block.split("</summary>")[1]
    assert re.search(
        r'result <span class="b v-deviate".*value <span class="b v-conform"'
        r'.*∂input <span class="b v-deviate"',
        body,
    )
    assert "<h4>gradient ∂input" in body and '<span class="b v-deviate" title="deviate">deviate</span></h4>' in body
    assert "[[0.25, -0.125]]" in body and "[[0.5, -0.125]]" in body  # expected and actual
    assert "Mismatched elements: 1 / 2" in body and "<i>max_abs</i> 0.25" in body
    # a finding in both: both tags; one in its value only: the value's
    assert 'data-in="value gradient"' in _finding_block(page, "both")
    assert 'data-in="value"' in _finding_block(page, "value-only")
    assert 'data-in="value"' in _finding_block(page, "old-line")


def _options(page: str) -> dict[str, tuple[str, list[str]]]:
    """Filter name -> (its label, the values it offers)."""
    bar = re.search(r'<div id="filters" hidden>(.*?)</div>', page, re.S).group(1)
    return {
        name: (label, re.findall(r"<option>(.*?)</option>", opts))
        for label, name, opts in re.findall(r'<label>(.*?) <select name="(\w+)">(.*?)</select>', bar)
    }


def test_mode_device_and_finding_in_filters():
    options = _options(render_report(gradient_records()))
    assert options["mode"] == ("mode", ["eager", "function", "compile"])  # of the findings only, in mode order
    assert options["device"] == ("device", ["cpu", "cuda"])
    assert options["in"] == ("finding in", ["value", "gradient"])
    assert options["dtype"] == ("dtype", ["float64", "float32"])
    assert options["status"] == ("divergence", ["explained", "unexplained"])
    assert list(options) == ["framework", "spec", "verdict", "dtype", "mode", "device", "in", "status"]


def test_older_lines_without_value_verdict_or_gradients_render(page):
    head, table = _bindings_table(page)
    assert head == ["dtype", "mode", "device", "result", "value", "findings in"]  # no gradient columns
    for _, rows in table.values():
        for *_, cells in rows:
            assert cells["value"] == cells["result"]
    assert table["torch.nn.BCELoss"][0] == {"value": 2}  # crash, known
    assert set(re.findall(r'data-in="([\w ]+)"', page)) == {"value"}
    assert "<h4>gradient" not in page


def test_plots_are_inline_svg_per_binding_and_dtype_with_unique_ids():
    page = render_report(synthetic(120))
    blocks = re.findall(r'<details class="plots"><summary>(.*?)</summary>(.*?)</details>', page, re.S)
    assert len(blocks) == len(SYNTHETIC_BINDINGS)
    for heading, svgs in blocks:
        assert "float64, float32, float16, bfloat16" in heading
        assert svgs.count('<svg class="plot"') == 4
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page and "<metadata" not in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    refs = set(re.findall(r'(?:url\(#|href="#)([^)"]+)', page))
    assert refs and refs <= set(ids)  # every clip path and marker an SVG uses is its own


# -- reports that scale: one pass, capped details, paging ---------------------------------------


def test_write_report_reads_a_generator_once(tmp_path):
    """``write_report`` consumes its records lazily, once: the controller passes ``iter_records``."""
    taken = []

    def lines():
        for r in records():
            taken.append(r)
            yield r

    out = write_report(lines(), tmp_path / "report.html")
    assert len(taken) == len(records())
    assert "<h1>lossparity report</h1>" in out.read_text(encoding="utf-8")


def test_a_capped_group_says_how_many_are_shown_of_how_many(monkeypatch):
    import lossparity.reports.report as report

    monkeypatch.setattr(report, "MAX_PER_GROUP", 3)
    hostile = "torch.nn." + SCRIPT
    lines = (
        [records()[0]]
        + [result(hostile, "deviate", case_id=f"c{i}") for i in range(7)]
        + [result("torch.nn.BCELoss", "crash", case_id="lone")]
    )
    page = render_report(iter(lines))
    assert page.count('<details class="item f-deviate"') == 3  # the first 3 of the group in full
    assert page.count('<details class="item f-crash"') == 1  # a group under the cap: whole
    assert "4 of 8 findings shown in full" in page
    assert "3 of 7 shown" in page
    assert "findings (8)" in page  # the count is every finding's, not the shown ones'
    assert SCRIPT not in page and str(escape(hostile)) in page  # group names are escaped too


def test_many_groups_share_the_page(monkeypatch):
    import lossparity.reports.report as report

    monkeypatch.setattr(report, "MAX_DETAILS", 4)
    lines = [result(f"b{i}", "deviate", case_id=f"c{i}-{j}") for i in range(6) for j in range(2)]
    page = render_report(lines)
    assert page.count('<details class="item f-deviate"') == 6  # one of each group at least
    assert "6 of 12 findings shown in full" in page and page.count("1 of 2 shown") == 6


def test_known_and_explained_blocks_fill_only_the_room_left(monkeypatch):
    """Findings and unexplained divergences show one block per group at least, however many
    groups; known results and explained divergences (nothing to act on) only up to MAX_DETAILS
    blocks, the rest of their groups counted in the table."""
    import lossparity.reports.report as report

    monkeypatch.setattr(report, "MAX_DETAILS", 4)
    lines = [result(f"b{i}", "deviate", case_id=f"c{i}") for i in range(6)]
    lines += [result(f"k{i}", "known", case_id=f"k{i}") for i in range(5)]
    a, b = result("x"), result("y")
    lines += [divergence({**a, "dtype": dt}, b, status="unexplained") for dt in ("float16", "float32", "float64")]
    lines += [divergence({**a, "mode": m}, b) for m in ("m1", "m2", "m3", "m4", "m5", "m6")]
    page = render_report(lines)
    assert page.count('<details class="item f-deviate"') == 6  # every group of findings
    assert page.count('<details class="item f-known"') == 0  # no room left after them
    assert "6 of 11 findings shown in full" in page and page.count("0 of 1 shown") == 5 + 5
    assert page.count('<details class="item f-unexplained"') == 3  # each unexplained group
    assert page.count('<details class="item f-explained"') == 1  # the room the 4 blocks leave
    assert "4 of 9 divergences shown in full" in page


def test_the_filter_bar_pages_the_blocks(page):
    bar = re.search(r'<div id="filters" hidden>(.*?)\n</div>', page, re.S).group(1)
    assert 'id="prev"' in bar and 'id="next"' in bar and 'id="page"' in bar
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    assert "PAGE = 100" in script and "innerHTML" not in script


def test_the_known_deviations_table_shows_what_each_entry_explained():
    rows = [
        {"id": "few", "symptom": "zero", "status": "used", "results": 3, "partly": 0, "divergences": 1},
        {"id": "many", "symptom": "bound max_ulp<=8", "status": "used", "results": 40, "partly": 2, "divergences": 7},
        {"id": "gone", "symptom": "nonfinite", "status": "stale", "results": 0, "partly": 0, "divergences": 0},
        {"id": "elsewhere" + SCRIPT, "symptom": "sign", "status": "not run", "results": 0, "divergences": 0},
        "not an entry",
    ]
    html = render_report([result(), summary({"conform": 1}, known_entries=rows)])
    table = html[html.index('<h2 id="known">') : html.index("</table>", html.index('<h2 id="known">'))]
    cells = [
        [unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]
    ]
    assert cells == [
        ["many", "bound max_ulp<=8", "40", "2", "7", "used"],
        ["few", "zero", "3", "0", "1", "used"],
        ["gone", "nonfinite", "0", "0", "0", "stale"],
        ["elsewhere" + SCRIPT, "sign", "0", "0", "0", "not run"],
    ]
    assert SCRIPT not in html and 'href="#known"' in html


def test_a_result_known_by_several_entries_names_each_and_its_part():
    known = {
        "id": "nan-value",
        "explanation": "NaN where 0 is due",
        "link": LINK,
        "symptom": "nonfinite",
        "verdict": "deviate",
        "entries": [
            {"id": "nan-value", "explanation": "NaN where 0 is due", "link": LINK, "symptom": "nonfinite"},
            {"id": "slope", "explanation": "no upstream report", "link": "", "reproducer": "lossparity explain x"},
        ],
        "parts": {"value": "nan-value", "gradient:input": "slope"},
    }
    html = unescape(
        re.sub(r"<[^>]+>", "", render_report([result(verdict="known", known=known), summary({"known": 1})]))
    )
    for text in ("known deviation nan-value", "symptom: nonfinite", "and slope", "reproducer: lossparity explain x"):
        assert text in html
    assert "value: nan-value · gradient:input: slope" in html


def test_a_crash_not_reproduced_alone_is_a_finding_of_its_own_with_its_rerun():
    """An unconfirmed crash: its own tile, filter value and block, listed after the confirmed
    crashes and timeouts and before the deviations, with what the rerun alone gave and the state
    of the process it first crashed in."""
    rerun = {
        "reproduced": False,
        "outcome": {
            "verdict": "conform",
            "value_verdict": "conform",
            "gradients": {"input": "conform"},
            "actual": {"value": encode_array(np.float64(0.31900406)), "dtype": "float32"},
            "seconds": 0.0021,
        },
        "before": {
            "cases": 1234,
            "batches": 56,
            "compiled": 789,
            "previous": "torch.nn.BCELoss float32 gen-0-3 eager",
            "seconds": 612.5,
            "rss_mib": 2048.5,
            "peak_rss_mib": 2100.0,
            "maps": 61234,
        },
    }
    summary_ = "crash, not reproduced alone: the process was killed by SIGSEGV; rerun alone in a fresh process, ..."
    lines = [
        result("torch.nn.BCELoss", "deviate", case_id="dev", errors={"summary": "off"}),
        result(
            "torch.nn.BCELoss",
            "unconfirmed",
            case_id="lone",
            value_verdict="unconfirmed",
            actual={"error": "crash", "message": "the process was killed by SIGSEGV"},
            errors={"summary": summary_},
            rerun=rerun,
        ),
        result("torch.nn.BCELoss", "crash", case_id="hard", actual={"error": "crash", "message": "SIGABRT"}),
    ]
    page = render_report(lines)
    assert _tile(page, "unconfirmed") == 1 and _tile(page, "crash") == 1
    assert "crash or timeout not reproduced alone" in page  # the tile says what it counts
    assert re.findall(r'<details class="item f-(\w+)"', page) == ["crash", "unconfirmed", "deviate"]
    assert _options(page)["verdict"] == ("verdict", ["crash", "unconfirmed", "deviate"])
    block = _finding_block(page, "lone")
    assert '<span class="head">crash, not reproduced alone: the process was killed by SIGSEGV;' in block
    rows = dict(
        re.findall(
            r"<tr><th>([^<]+)</th><td>([^<]*)</td></tr>", block.split("<h4>rerun alone in a fresh process</h4>")[1]
        )
    )
    assert rows == {
        "reproduced alone": "no",
        "rerun gave": "conform: value 0.31900406; ∂input conform (0.0021 s)",
        "the process before": "1234 units run (56 batches), 789 compilations, 2048.5 MiB resident (peak 2100.0 MiB), "
        "612.5 s old, 61234 memory mappings when last counted",
        "unit run just before": "torch.nn.BCELoss float32 gen-0-3 eager",
    }
    assert "rerun alone" not in _finding_block(page, "hard")  # a line from before reruns: none shown


def test_the_page_opens_on_what_needs_attention():
    """Unexplained findings by binding and unexplained divergences by pair, most first, before
    the known deviations and everything else; a known finding or an explained divergence is
    not among them."""
    from fake_records import divergence, result, summary

    a, b = (
        result("torch.nn.BCELoss", "deviate"),
        result("keras.losses.BinaryCrossentropy", "conform", framework="keras"),
    )
    records = [
        result("torch.nn.BCELoss", "deviate", case_id="c1"),
        result("torch.nn.BCELoss", "deviate", case_id="c2", dtype="float16"),
        result("optax.losses.sigmoid_binary_cross_entropy", "known", framework="jax"),
        result("torch.nn.functional.binary_cross_entropy", "error_mismatch"),
        divergence(a, b, status="unexplained"),
        divergence(a, b, status="explained"),
        summary(
            {"deviate": 2, "known": 1, "error_mismatch": 1},
            divergences={"unexplained": 1, "explained": 1},
            known_entries=[
                {
                    "id": "optax-entry",
                    "symptom": "nonfinite",
                    "status": "used",
                    "results": 1,
                    "partly": 0,
                    "divergences": 0,
                }
            ],
        ),
    ]
    page = render_report(records)
    start, end = page.index('id="attention"'), page.index('id="findings"')
    assert start < page.index('id="known"') < end
    section = page[start:end]
    rows = re.findall(r"<tr><td class=\"num\">(\d+)</td>(.*?)</tr>", section, re.S)
    assert [(n, "torch.nn.BCELoss" in t, "error_mismatch" in t) for n, t in rows[:2]] == [
        ("2", True, False),
        ("1", False, True),
    ]
    assert "float32, float16" in rows[0][1]
    assert "sigmoid_binary" not in section[: section.index('id="known"')]  # known: not a matter for attention
    assert len(rows) == 3 and "divergence" in rows[2][1] and "BinaryCrossentropy" in rows[2][1]
    calm = render_report([result(), summary({"conform": 1})])
    assert "Nothing: every finding is a known deviation" in calm


# -- reading a big file: lines skimmed, numbers read where the page shows them -----------------


def test_the_report_of_a_file_read_skimmed_is_the_report_of_its_whole_records(tmp_path, monkeypatch):
    """``lossparity report`` reads lines without their arrays' numbers and reads in full only
    those it shows (findings, divergences, the plots' sample): the page is byte for byte the
    page of the whole records, every shown finding's inputs, outputs and figures included."""
    import lossparity.reports.report as report
    from lossparity.cli import main

    monkeypatch.setattr(report, "PLOT_DRAWN", 5)  # 120 results over 24 series: some series sampled
    lines = [*synthetic(400), *records()[1:]]
    path = tmp_path / "results.jsonl"
    write_all(path, lines)
    assert main(["report", str(path), "-o", str(tmp_path / "report.html")]) == 1  # it has findings
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page == render_report(lines)
    assert "results plotted, the 8 farthest from the oracle and 5 drawn at random" in page
    assert page.count('<details class="item f-deviate"') > 10 and '<pre class="arr">' in page


def test_a_skimmed_line_reads_whole_on_demand_and_its_arrays_are_still_checked(tmp_path):
    from lossparity.core.records import ResultsFileError, Skimmed, iter_records, read_records, whole

    lines = synthetic(4)
    path = tmp_path / "results.jsonl"
    write_all(path, lines)
    skimmed = list(iter_records(path, validate=True, skim=True))
    assert skimmed[0] == lines[0] and not isinstance(skimmed[0], Skimmed)  # no arrays: as it is
    assert isinstance(skimmed[1], Skimmed) and skimmed[1]["inputs"]["input"]["data"] == []
    assert [whole(r) for r in skimmed] == lines
    # Numbers that do not fill their shape: counted while skimming, refused as a whole read refuses them.
    broken = {**lines[1], "inputs": {"input": {"dtype": "float32", "shape": [2, 3], "data": [1.0, "nan"]}}}
    write_all(path, [*lines, broken])
    n = len(lines) + 1
    for skim in (True, False):
        with pytest.raises(ResultsFileError, match=rf"results.jsonl:{n}: inputs/input: 2 numbers do not fill"):
            list(iter_records(path, validate=True, skim=skim))
    with pytest.raises(ResultsFileError, match=rf"results.jsonl:{n}"):
        read_records(path)


def test_the_plots_sample_keeps_the_results_farthest_from_the_oracle(monkeypatch):
    """Of a series of many results, the plot draws the PLOT_WORST largest errors whatever their
    place in the file, and a random draw of the rest (the same whatever the order)."""
    import lossparity.reports.report as report

    monkeypatch.setattr(report, "PLOT_DRAWN", 3)
    lines = [r for r in synthetic(2000) if r["kind"] == "result"]
    far = {**lines[1234], "case_id": "far", "verdict": "deviate", "errors": {"max_ulp": 1e9}}
    far["actual"] = {
        **far["actual"],
        "value": encode_array(np.full(np.shape(np.array(far["actual"]["value"]["data"])), 1e30)),
    }
    data = report.collect([far, *lines])
    series = (far["spec"], far["binding"], far["dtype"])
    worst, _ = data.plot_sample[series]
    assert "far" in {e[3]["case_id"] for e in worst} and len(data.plotted_lines(series)) == report.PLOT_WORST + 3
    again = report.collect([*reversed(lines), far])
    ids = sorted(r["case_id"] for r in data.plotted_lines(series))
    assert ids == sorted(r["case_id"] for r in again.plotted_lines(series))


def test_the_report_read_by_several_processes_is_the_report_read_by_one(tmp_path, monkeypatch, capsys):
    """``lossparity report -j N`` parses batches of lines in N processes and merges their data
    in file order (``map_batches``, ``ReportData.merge``): the page is byte for byte the page of
    one process reading every line, the plots' sample and the capped groups included; a bad line
    in a later batch is named, with its number, in one line (exit 2)."""
    import lossparity.core.records as reading
    import lossparity.reports.report as report
    from lossparity.cli import main

    monkeypatch.setattr(reading, "BATCH_LINES", 37)  # many batches, each group and series across several
    monkeypatch.setattr(report, "PLOT_DRAWN", 5)
    monkeypatch.setattr(report, "MAX_PER_GROUP", 3)
    lines = [*synthetic(400), *records()[1:]]
    path = tmp_path / "results.jsonl"
    write_all(path, lines)
    pages = []
    for jobs in ("1", "3"):
        assert main(["report", str(path), "-o", str(tmp_path / f"report{jobs}.html"), "-j", jobs]) == 1
        pages.append((tmp_path / f"report{jobs}.html").read_text(encoding="utf-8"))
    assert pages[0] == pages[1] == render_report(lines)
    assert "results plotted, the 8 farthest from the oracle and 5 drawn at random" in pages[1]
    capsys.readouterr()
    broken = {**lines[1], "verdict": "no such verdict"}
    write_all(path, [*lines[:300], broken, *lines[300:]])
    assert main(["report", str(path), "-o", str(tmp_path / "broken.html"), "-j", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "results.jsonl:301: verdict: " in err
