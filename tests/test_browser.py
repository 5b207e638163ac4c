"""The HTML report in a real browser: Debian's headless Chromium driven by Playwright.

What only a browser can tell: the inline filter script runs under the page's own
Content-Security-Policy and hides exactly the blocks it should, a finding expands to show
what a reader needs, hostile strings from a results file stay text, and the page loads
nothing from anywhere. Playwright's own browser downloads are never used: it launches the
system's ``chromium`` (``.ci/run`` installs Debian's package where it is missing).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from fake_records import bce_clamp_divergence, gradient, result, summary

from lossparity.core.records import encode_array, read_records, write_all
from lossparity.reports.report import write_report


def _chromium() -> str | None:
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


CHROMIUM = _chromium()
if CHROMIUM is None:
    pytest.skip(
        "Chromium is not installed (no `chromium` on PATH, none at /usr/bin/chromium; "
        "Debian: apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -c constraints.txt -e '.[dev]')"
)

TITLE = "lossparity report"
IMG = """<img src=x onerror="document.title='pwned'">"""
SCRIPT = "<script>document.title='pwned'</script>"
ATTR = """"><img src=x onerror="document.title='pwned'">"""
HOSTILE = IMG + SCRIPT + ATTR
REPRO = "import torch\nloss = torch.nn.functional.binary_cross_entropy(input, target)\nprint(loss)\n"


# -- the results file ------------------------------------------------------------------------

BCE, CE, HUBER = "binary_cross_entropy", "cross_entropy", "huber"  # CE: a substring of BCE


def _records() -> list[dict]:
    meta = {
        "kind": "meta",
        "schema": 1,
        "lossparity": "0.1.0",
        "versions": {"torch": "2.13.0+cpu", "jax": "0.10.2", "tensorflow": "2.21.0"},
        "python": "3.11.7",
        "platform": "Linux-x86_64",
        "device": "cpu",
        "seed": 7,
        "examples": 25,
        "command": "lossparity run",
        "started": "2026-01-01T00:00:00",
    }
    conform = [
        result("torch.nn.BCELoss", "conform", framework="torch", spec=BCE),
        result("keras.losses.binary_crossentropy", "conform", framework="tensorflow", spec=BCE),
        result("optax.losses.softmax_cross_entropy", "conform", framework="jax", spec=CE, case_id="gen-1"),
    ]
    deviate = result(
        "torch.nn.functional.binary_cross_entropy",
        "deviate",
        framework="torch",
        spec=BCE,
        case_id="edge-p-zero-y-one",
        params={"reduction": "none"},
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
        reproducer=REPRO,
    )
    in_gradient = result(  # its value conforms, its input gradient does not
        "keras.losses.BinaryCrossentropy",
        "deviate",
        framework="tensorflow",
        spec=BCE,
        case_id="gen-7",
        mode="function",
        value_verdict="conform",
        gradients={"input": gradient([[0.25, -0.125, 0.5]], [[0.5, -0.125, 0.5]])},
    )
    mismatch = result(
        "optax.losses.softmax_cross_entropy",
        "error_mismatch",
        framework="jax",
        spec=CE,
        case_id="edge-bad-axis",
        mode="jit",
        device="cuda",
        expected={"error": "ValueError", "message": "axis out of range"},
        actual={"error": "TypeError", "message": "bad axis " + HOSTILE, "classes": ["TypeError", "Exception"]},
        errors={"summary": "expected ValueError; raised TypeError"},
        reproducer="import optax\n",
    )
    known = result(
        "keras.losses.Huber",
        "known",
        framework="tensorflow",
        spec=HUBER,
        case_id="edge-delta-zero",
        dtype="float64",
        known={
            "id": "keras-huber-delta-zero",
            "explanation": "Keras divides by delta.",
            "link": "https://github.com/keras-team/keras/issues/1",
            "verdict": "deviate",
        },
        errors={"summary": "Mismatched elements: 1 / 1", "max_abs": 1.0, "max_rel": 1.0, "max_ulp": 1.0},
        reproducer="import keras\n",
    )
    explained = bce_clamp_divergence(
        spec=BCE,
        attribution={
            "status": "explained",
            "differing": [{"name": "log_min", "a": None, "b": -100.0, "alone": 1.0, "share": 1.0}],
            "conventions": ["log_min"],
            "closed": 1.0,
        },
        reason="explained by log_min: keras uses None, torch uses -100.0",
    )
    end = summary(
        {"conform": 3, "deviate": 2, "error_mismatch": 1, "known": 1}, divergences={"explained": 1, "unexplained": 0}
    )
    return [meta, *conform, deviate, in_gradient, mismatch, known, explained, end]


#: The filtered blocks: (framework, spec, verdict, status) of each, as the page should mark them.
DEVIATE = ("torch", BCE, "deviate")
GRADIENT = ("tensorflow", BCE, "deviate")  # in its input gradient only; mode "function"
MISMATCH = ("jax", CE, "error_mismatch")  # mode "jit", device "cuda"
KNOWN = ("tensorflow", HUBER, "known")
DIVERGENCE = ("tensorflow torch", BCE, "conform")
ALL = {DEVIATE, GRADIENT, MISMATCH, KNOWN, DIVERGENCE}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("browser")
    results = d / "results.jsonl"
    write_all(results, _records())
    return write_report(read_records(results), d / "report.html")  # validated against the schema


@pytest.fixture(scope="module")
def browser():
    pw = sync_api.sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()
    finally:
        pw.stop()


@pytest.fixture
def page(browser, report):
    """The report, loaded. Kept on the page: every request, response and failed request
    (url -> reason) and every script or console error it causes."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.set_default_timeout(10_000)
    p.requests, p.responses, p.failed, p.errors = [], [], {}, []
    p.on("request", lambda r: p.requests.append(r.url))
    p.on("response", lambda r: p.responses.append(r.url))
    p.on("requestfailed", lambda r: p.failed.__setitem__(r.url, r.failure))
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    p.on("console", lambda m: p.errors.append(m.text) if m.type == "error" else None)
    p.goto(report.as_uri())
    yield p
    context.close()


def _block(page, key):
    fw, spec, verdict = key
    return page.locator(f'details[data-filter][data-framework="{fw}"][data-spec="{spec}"][data-verdict="{verdict}"]')


def _visible(page) -> set[tuple[str, str, str]]:
    blocks = page.locator("details[data-filter]")
    out = set()
    for i in range(blocks.count()):
        b = blocks.nth(i)
        if b.is_visible():
            out.add(tuple(b.get_attribute(f"data-{k}") for k in ("framework", "spec", "verdict")))
    return out


def _shown(findings: int, divergences: int) -> str:
    return f"{findings} findings, {divergences} divergences shown"


# -- the tests -------------------------------------------------------------------------------


def test_filters_show_only_matching_blocks(page):
    expect = sync_api.expect
    bar, shown = page.locator("#filters"), page.locator("#shown")
    expect(bar).to_be_visible()  # hidden in the markup, shown by the inline script: it ran under the CSP
    expect(shown).to_have_text("")
    assert page.locator("details[data-filter]").count() == len(ALL)
    assert _visible(page) == ALL

    def pick(name, value, want, counts):
        bar.locator(f'select[name="{name}"]').select_option(value)
        expect(shown).to_have_text(_shown(*counts))
        assert _visible(page) == want, (name, value)
        for key in ALL - want:
            expect(_block(page, key)).to_be_hidden()

    def reset(name):
        bar.locator(f'select[name="{name}"]').select_option("")
        expect(shown).to_have_text("")
        assert _visible(page) == ALL

    # the menus offer what the blocks carry, nothing else
    options = {
        name: bar.locator(f'select[name="{name}"] option').all_inner_texts()
        for name in ("framework", "spec", "verdict", "dtype", "mode", "device", "in", "status")
    }
    assert sorted(options["framework"]) == sorted(["all", "jax", "tensorflow", "torch"])
    assert sorted(options["spec"]) == sorted(["all", BCE, CE, HUBER])
    assert options["verdict"] == ["all", "error_mismatch", "deviate", "known", "conform"]
    assert sorted(options["dtype"]) == ["all", "float32", "float64"]
    assert options["mode"] == ["all", "eager", "function", "jit"]
    assert options["device"] == ["all", "cpu", "cuda"]
    assert options["in"] == ["all", "value", "gradient"]
    assert options["status"] == ["all", "explained", "unexplained"]

    pick("framework", "torch", {DEVIATE, DIVERGENCE}, (1, 1))  # a divergence belongs to both its frameworks
    pick("framework", "jax", {MISMATCH}, (1, 0))
    pick("framework", "tensorflow", {GRADIENT, KNOWN, DIVERGENCE}, (2, 1))
    reset("framework")

    pick("spec", BCE, {DEVIATE, GRADIENT, DIVERGENCE}, (2, 1))
    pick("spec", CE, {MISMATCH}, (1, 0))  # a whole value, not a substring of another
    pick("spec", HUBER, {KNOWN}, (1, 0))
    reset("spec")

    pick("verdict", "deviate", {DEVIATE, GRADIENT}, (2, 0))
    pick("verdict", "error_mismatch", {MISMATCH}, (1, 0))
    pick("verdict", "conform", {DIVERGENCE}, (0, 1))  # the divergence's sides both conform
    reset("verdict")

    pick("dtype", "float64", {KNOWN}, (1, 0))
    reset("dtype")

    pick("status", "explained", {DIVERGENCE}, (0, 1))  # findings carry no status
    pick("status", "unexplained", set(), (0, 0))
    reset("status")

    pick("mode", "function", {GRADIENT}, (1, 0))
    pick("mode", "jit", {MISMATCH}, (1, 0))
    pick("mode", "eager", {DEVIATE, KNOWN, DIVERGENCE}, (2, 1))
    reset("mode")

    pick("device", "cuda", {MISMATCH}, (1, 0))
    pick("device", "cpu", ALL - {MISMATCH}, (3, 1))
    reset("device")

    pick("in", "gradient", {GRADIENT}, (1, 0))
    pick("in", "value", ALL - {GRADIENT}, (3, 1))  # a divergence is one of values
    reset("in")

    # filters combine: each further one narrows what the others left
    pick("framework", "torch", {DEVIATE, DIVERGENCE}, (1, 1))
    pick("verdict", "known", set(), (0, 0))
    pick("verdict", "", {DEVIATE, DIVERGENCE}, (1, 1))
    pick("status", "explained", {DIVERGENCE}, (0, 1))
    pick("framework", "tensorflow", {DIVERGENCE}, (0, 1))
    pick("status", "", {GRADIENT, KNOWN, DIVERGENCE}, (2, 1))
    pick("in", "gradient", {GRADIENT}, (1, 0))
    pick("mode", "eager", set(), (0, 0))
    for name in ("framework", "verdict", "status", "in", "mode"):
        bar.locator(f'select[name="{name}"]').select_option("")
    expect(shown).to_have_text("")
    assert _visible(page) == ALL
    assert page.errors == []


def test_a_finding_expands_to_show_its_case(page, tmp_path):
    expect = sync_api.expect
    block = _block(page, DEVIATE)
    body = block.locator(".body")
    expect(body).to_be_hidden()  # collapsed
    block.locator("summary").click()
    expect(block).to_have_attribute("open", "")
    expect(body).to_be_visible()
    expect(body.locator("pre.repro")).to_be_visible()
    assert body.locator("pre.repro").inner_text() == REPRO
    arrays = body.locator("pre.arr")  # inputs, then expected, then actual
    texts = arrays.all_inner_texts()
    assert texts[-2:] == ["[16.11809565095832, 0.6931471805599453]", "[100.0, 0.6931471805599453]"]
    assert "[0.800000011920929, 0.20000000298023224, 0.4000000059604645]" in texts
    assert "Greatest absolute difference: 83.8819 at index (0,)" in body.locator("pre.sum").inner_text()
    figures = body.locator(".figs").inner_text()
    assert "83.8819" in figures and "5.204" in figures and "1 / 2" in figures
    expect(block.locator("summary .head")).to_have_text("max abs 83.8819, max rel 5.204, 1/2 mismatched")
    # the other findings stay collapsed
    expect(_block(page, KNOWN).locator(".body")).to_be_hidden()

    # the error_mismatch finding: both errors, and its summary
    other = _block(page, MISMATCH)
    other.locator("summary").click()
    errs = other.locator(".err")
    expect(errs).to_have_count(2)
    expect(errs.nth(0)).to_have_text("ValueError: axis out of range")
    assert errs.nth(1).inner_text().startswith("TypeError: bad axis ")
    expect(other.locator("pre.sum")).to_have_text("expected ValueError; raised TypeError")

    shot = tmp_path / "finding.png"
    block.screenshot(path=str(shot))
    assert shot.stat().st_size > 1000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.errors == []


def test_a_gradient_finding_and_the_error_plots(page):
    expect = sync_api.expect
    block = _block(page, GRADIENT)
    expect(block.locator("summary .part")).to_have_text("gradient")
    expect(block.locator("summary .head")).to_have_text("∂input: max abs 0.25, max rel 1, 1/3 mismatched")
    block.locator("summary").click()
    arrays = block.locator(".pair pre.arr")  # the gradient's expected and actual, side by side
    assert arrays.all_inner_texts() == ["[[0.25, -0.125, 0.5]]", "[[0.5, -0.125, 0.5]]"]

    plots = page.locator("details.plots")
    assert plots.count() == 6  # one per binding with values: none for unsupported or errors only
    first = plots.first
    svg = first.locator("svg.plot")
    expect(svg).to_be_hidden()  # collapsed
    first.locator("summary").click()
    expect(svg).to_be_visible()
    box = svg.bounding_box()
    assert box["width"] > 300 and box["height"] > 100
    assert "ULP error" in svg.text_content() and "value (" in svg.text_content()
    assert page.errors == []


def test_hostile_strings_stay_text(page):
    other = _block(page, MISMATCH)
    other.locator("summary").click()
    err = other.locator(".err").nth(1)
    sync_api.expect(err).to_be_visible()
    assert err.inner_text() == "TypeError: bad axis " + HOSTILE  # shown as the very characters
    assert page.title() == TITLE
    assert page.evaluate("document.title") == TITLE
    assert page.locator("img").count() == 0
    assert page.evaluate("document.scripts.length") == 1  # the page's own filter script only
    assert page.errors == []


def test_nothing_is_loaded_and_the_csp_blocks_external_loads(page, report):
    page.wait_for_load_state("load")
    assert page.requests == [report.as_uri()]
    # Try to load from outside, as injected markup would: the page's CSP must refuse both.
    with page.expect_event("requestfailed", lambda r: r.url.endswith("/probe.png")) as refused:
        violations = page.evaluate("""() => new Promise(resolve => {
            const seen = [];
            const done = () => resolve(seen.sort());
            document.addEventListener("securitypolicyviolation", e => {
                seen.push(e.effectiveDirective + " " + e.blockedURI);
                if (seen.length === 2) done();
            });
            const img = document.createElement("img");
            img.src = "http://127.0.0.1:9/probe.png";
            document.body.appendChild(img);
            fetch("http://127.0.0.1:9/probe.json").catch(() => {});
            setTimeout(done, 5000);  // only if a load was not refused
        })""")
    assert violations == ["connect-src http://127.0.0.1:9/probe.json", "img-src http://127.0.0.1:9/probe.png"]
    # Chromium reports the refused image as a request that failed for the CSP, with no response.
    assert "csp" in refused.value.failure.lower()
    outside = [u for u in page.requests if not u.startswith("file://")]
    assert all("csp" in (page.failed.get(u) or "").lower() for u in outside), (outside, page.failed)
    assert page.responses == [report.as_uri()]


def test_a_script_that_escaping_let_through_would_not_run(browser, report, tmp_path):
    """Second line of defence: the policy allows the page's own script by its SHA-256 only."""
    planted = tmp_path / "planted.html"
    planted.write_text(
        report.read_text().replace(
            "<h1>", "<script>document.title = 'pwned'</script><img src=x onerror=\"document.title = 'pwned'\"><h1>", 1
        )
    )
    context = browser.new_context()
    p = context.new_page()
    p.goto(planted.as_uri())
    sync_api.expect(p.locator("#filters")).to_be_visible()  # the page's own script still runs
    assert p.evaluate("document.title") == TITLE
    context.close()


def test_the_matrix_stays_readable_at_250_bindings_on_a_laptop(browser, tmp_path):
    """A default run's 250-odd bindings in the specs x bindings matrix at a laptop's width: every
    binding id keeps whole words (it breaks only at its dots and underscores: no id one character
    a line), the page opens on what needs attention, and the matrix scrolls sideways if it must."""
    frameworks = ("torch", "tensorflow", "jax", "keras[tensorflow]", "keras[jax]", "keras[torch]")
    records, ids = [], []
    for i in range(264):
        fw = frameworks[i % len(frameworks)]
        binding = f"{fw.split('[')[0]}.losses.SparseCategoricalCrossentropyWithLogits_{i}" + (
            f"[{fw.split('[')[1]}" if "[" in fw else ""
        )
        ids.append(binding)
        spec = f"spec_{i % 40}"
        records += [result(binding, "conform", framework=fw, spec=spec, case_id=f"c{k}") for k in range(3)]
    records.append(result(ids[0], "deviate", framework="torch", spec="spec_0", case_id="bad"))
    path = write_report(records, tmp_path / "wide.html")
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.goto(path.as_uri())
    assert page.locator("h2").nth(1).get_attribute("id") == "attention"
    codes = page.locator("table.matrix td.cell code")
    assert codes.count() == 264
    line = page.evaluate("parseFloat(getComputedStyle(document.querySelector('table.matrix td.cell code')).lineHeight)")
    boxes = page.evaluate(
        "[...document.querySelectorAll('table.matrix td.cell code')].map(c => [c.getBoundingClientRect().width,"
        " c.getBoundingClientRect().height, c.textContent])"
    )
    for width, height, text in boxes:
        # "SparseCategoricalCrossentropyWithLogits_" is one word: the id breaks after its dots
        # and underscores into at most four lines, each as wide as its widest word.
        assert height <= 4.5 * line and width >= 150, (text, width, height)
    shot = tmp_path / "matrix.png"
    page.locator("table.matrix").screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    context.close()
