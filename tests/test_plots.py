"""The error plots: ULP errors and their buckets, the input magnitudes, bounded samples, and
SVG that is the same bytes for the same results, escapes what it shows and collides with nothing."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from fake_records import result, synthetic

from lossparity.core.records import encode_array
from lossparity.reports import plots
from lossparity.reports.plots import NONFINITE, ErrorPlots, bucket_label, buckets, histogram, magnitude, ulp_errors
from lossparity.reports.report import render_report

INF, NAN = np.inf, np.nan
E32 = 2.0**-23  # float32's spacing at 1


def test_ulp_errors_and_their_buckets():
    #           expected  actual            ULPs  bucket
    cases = [
        (1.0, 1.0, 0, 0),  # exact
        (0.0, 0.0, 0, 0),
        (0.0, -0.0, 0, 0),
        (INF, INF, 0, 0),  # the same infinity matches
        (NAN, NAN, 0, 0),  # NaN where NaN was due matches
        (1.0, 1.0 + E32 / 2, 0.5, 1),  # (0, 1]
        (1.0, 1.0 + E32, 1, 1),
        (1.0, 1.0 - 3 * E32, 3, 3),  # (2, 4]
        (0.0, 2.0**-149, 1, 1),  # at 0 the smallest subnormal is one ULP
        (1.0, 2.0, 2**23, 24),
        (INF, -INF, INF, NONFINITE),
        (1.0, INF, INF, NONFINITE),
        (INF, 1.0, INF, NONFINITE),
        (1.0, NAN, INF, NONFINITE),
        (NAN, 1.0, INF, NONFINITE),
    ]
    expected, actual, ulps, bucket = map(np.array, zip(*cases))
    u = ulp_errors(actual, expected, "float32")
    np.testing.assert_array_equal(u, ulps)
    np.testing.assert_array_equal(buckets(u), bucket)
    counts = histogram(u)
    assert counts.sum() == len(cases)
    assert {i: int(n) for i, n in enumerate(counts) if n} == {0: 5, 1: 3, 3: 1, 24: 1, NONFINITE: 5}


def test_ulps_of_each_dtype():
    assert ulp_errors([1.0 + 2.0**-52], [1.0], "float64")[0] == 1
    assert ulp_errors([1.0 + 2.0**-10], [1.0], "float16")[0] == 1
    assert ulp_errors([1.0 + 2.0**-7], [1.0], "bfloat16")[0] == 1
    assert ulp_errors([3.0], [1.0], "bfloat16")[0] == 2**8
    # an expected value float16 cannot hold has no ULP: a non-finite error unless matched exactly
    np.testing.assert_array_equal(ulp_errors([1e6 + 1, 1e6], [1e6, 1e6], "float16"), [INF, 0])
    assert buckets(np.array([2.0**70]))[0] == NONFINITE - 1  # beyond the last power of two


def test_bucket_labels():
    assert [bucket_label(i) for i in (0, 1, 2, 3, 10, 11, NONFINITE - 1, NONFINITE)] == [
        "0",
        "1",
        "2",
        "4",
        "512",
        "2^10",
        ">2^63",
        "inf/nan",
    ]


def test_input_magnitude_per_output_element():
    x = np.array([[1.0, -5.0, 2.0], [-0.5, 0.25, 0.0]])
    np.testing.assert_array_equal(magnitude(x, (2, 3)), [1, 5, 2, 0.5, 0.25, 0])  # elementwise
    np.testing.assert_array_equal(magnitude(x, (2,)), [5, 0.5])  # per sample: over the class axis
    np.testing.assert_array_equal(magnitude(x, ()), [5])  # a reduction to a scalar
    np.testing.assert_array_equal(magnitude(x, (3,)), [5, 5, 5])  # no axis correspondence: the case's


@pytest.mark.filterwarnings("error")
def test_extreme_magnitudes_have_a_place_on_the_axes():
    at, (low, high), ticks, labels = plots._log_axis(np.array([0.0, 5e-324, 1.0, 1e308, INF, NAN]))
    assert 0 < low < at.min() and at.max() < high < INF and ticks == sorted(ticks)
    assert at[0] == ticks[0] and labels[0] == "0" and at[-1] == at[-2] == ticks[-1] and labels[-1] == "inf/nan"
    x = np.array([[5e-324, -1e308], [np.inf, np.nan]])
    record = result(
        "b",
        "deviate",
        inputs={"input": encode_array(x)},
        expected={"value": encode_array(np.array([0.0, 1.0]))},
        actual={"value": encode_array(np.array([5e-324, np.inf])), "dtype": "float64"},
    )
    assert _svgs([record])  # drawn, without a warning


def _series(p: ErrorPlots):
    p._fold()
    return {k: {label: (s.counts.copy(), s.sample.copy()) for label, s in v.items()} for k, v in p._series.items()}


def test_samples_are_bounded_and_independent_of_batching(monkeypatch):
    results = [r for r in synthetic(300) if r["kind"] == "result"]
    whole = ErrorPlots()
    for r in results:
        whole.add(r)
    monkeypatch.setattr(plots, "BATCH", 50)  # fold every few records
    batched = ErrorPlots()
    for r in results:
        batched.add(r)
        assert batched._pending < 50 + 36  # what a record adds at most
    a, b = _series(whole), _series(batched)
    assert a.keys() == b.keys() and len(a) == 12  # 3 bindings x 4 dtypes
    for key in a:
        assert sorted(a[key]) == ["value", "∂input", "∂target"]
        for label, (counts, sample) in a[key].items():
            np.testing.assert_array_equal(counts, b[key][label][0])
            np.testing.assert_array_equal(sample, b[key][label][1])
            per_bucket = np.bincount(sample[1].astype(int), minlength=plots.N_BUCKETS)
            assert (per_bucket <= np.minimum(plots.POINTS, counts)).all()
            assert (per_bucket[counts > 0] == np.minimum(plots.POINTS, counts[counts > 0])).all()


def test_records_without_plottable_values_are_skipped():
    p = ErrorPlots()
    base = result("b", "crash", actual={"error": "RuntimeError", "message": "x"})
    for r in (
        base,
        {**base, "dtype": "int8"},
        {**base, "dtype": None},
        {**base, "inputs": None},
        {**base, "actual": {"value": {"dtype": "float32", "shape": [2], "data": [1.0]}}},
        {**base, "actual": {"value": {"dtype": "float32", "shape": [2], "data": "xx"}}},
        {**base, "actual": {"value": {"dtype": "int64", "shape": [], "data": [1]}}},
        {**base, "gradients": {"input": None, "target": {"expected": None, "actual": {"error": "E: m"}}}},
        {**base, "gradients": "garbage"},
        {**base, "expected": None},
    ):
        p.add(r)
    assert p.svgs() == {}


def _svgs(records) -> list[str]:
    p = ErrorPlots()
    for r in records:
        if r["kind"] == "result":
            p.add(r)
    return [str(svg) for v in p.svgs().values() for _, svg in v]


def test_same_results_same_bytes():
    results = synthetic(6)
    first, second = _svgs(results), _svgs(results)
    assert len(first) == 6 and first == second
    svg = first[0]
    assert svg.startswith('<svg class="plot" ') and svg.endswith("</svg>")
    assert not re.search(r"<\?xml|<!DOCTYPE|<metadata|<style|<script|\d{4}-\d\d-\d\dT", svg)
    # Compact: drawn by hand, a path per series and panel, coordinates to a tenth of a unit.
    assert 1_500 < len(svg) < 5_000
    assert not re.search(r'="[^"]*\d\.\d\d', svg) and svg.count("<path") <= 2 * 3 + 2
    assert "value (4 elements)" in svg and "ULP error, up to" in svg and "inf/nan" in svg


def test_every_bar_and_point_is_drawn():
    """The histogram has a bar per non-empty bucket group of each series, the scatter a dot per
    sampled point whose |input| is known: the drawing shows what the series hold, not less."""
    p = ErrorPlots()
    for r in synthetic(8):
        if r["kind"] == "result":
            p.add(r)
    svgs = p.svgs()
    p._fold()
    for (spec, binding, dtype), series in p._series.items():
        svg = str(dict(svgs[spec, binding])[dtype])
        paths = re.findall(r'<path d="([^"]*)" fill="(#[0-9a-f]+)"', svg)
        for i, (label, s) in enumerate(sorted(series.items(), key=lambda kv: (kv[0] != "value", kv[0]))):
            bars = next((d for d, color in paths if color == plots.COLORS[i]), "")
            assert bars.count("z") == np.count_nonzero(s.counts), (label, bars)
            dots = re.search(rf'<path d="([^"]*)" fill="none" stroke="{plots.COLORS[i]}"', svg)
            assert (dots[1].count("h0") if dots else 0) == np.isfinite(s.sample[2]).sum()


def test_same_bytes_in_another_process():
    """No hash seed, clock or process state reaches the SVG: two interpreters draw the same."""
    code = (
        "import hashlib, sys\nsys.path.insert(0, 'tests')\n"
        "from test_plots import _svgs\nfrom fake_records import synthetic\n"
        "print(hashlib.sha256(''.join(_svgs(synthetic(6))).encode()).hexdigest())\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert digests == {hashlib.sha256("".join(_svgs(synthetic(6))).encode()).hexdigest()}


HOSTILE = "</svg><script>alert(1)</script><img src=x onerror=alert(1)> $\\frac{1}{0}$ \"&'"


@pytest.mark.parametrize("binding", [HOSTILE, "$", "a$b$c", "x\ny"])
def test_text_from_records_is_escaped(binding):
    records = [{**r, "binding": binding} for r in synthetic(8)]
    (svg, *_) = _svgs(records)
    assert "<script" not in svg and "<img" not in svg and svg.count("</svg>") == 1
    if binding == HOSTILE:
        assert "&lt;/svg&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in svg  # shown, as text
        assert "$\\frac{1}{0}$" in svg  # not mathtext
    page = render_report(records)
    assert page.count("<script") == 1 and "<img" not in page


def test_plots_define_no_ids():
    """Many plots share a page: with no id defined or referenced, none can collide."""
    for svg in _svgs(synthetic(6)):
        assert not re.search(r'\bid="|url\(#|href="#', svg)
