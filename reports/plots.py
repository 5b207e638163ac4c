"""Error plots: how far each binding's values and gradients are from the oracle, in ULPs.

One small inline SVG per binding x dtype (modes and devices pooled), two panels:

(a) the distribution of the per-element ULP error, |actual - expected| / ulp(expected) in the
    result's dtype (``conformance.compare``'s measure), in buckets 0, (0, 1], (1, 2], (2, 4],
    ... and one for non-finite mismatches; one series for the value, one per gradient;
(b) the same errors against the magnitude of the input that produced them (a sample).

Bounded cost whatever the number of results: :meth:`ErrorPlots.add` takes one result record
at a time and holds its arrays only until :data:`BATCH` elements are pending over all
bindings; a batch is then folded, with NumPy, into a histogram (a fixed array of counts) and
a sample of at most :data:`POINTS` points per bucket: those with the smallest pseudo-random
keys, drawn from a fixed seed, so the same results give the same sample, and the same bytes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from lossparity.core.dtypes import DTYPES, ulp
from lossparity.core.records import decode_array

#: Buckets: 0 exactly; (2^(k-1), 2^k] ULPs for k = 0..TOP (k = 0: (0, 1]); > 2^TOP; non-finite
#: (one side inf or NaN and the other not the same, or an expected value the dtype cannot hold).
TOP = 63
NONFINITE = TOP + 3
N_BUCKETS = TOP + 4
#: Bars per series at most, besides 0 and non-finite (adjacent buckets merge where needed).
BARS = 16
#: Scatter points kept per series and bucket: a default run's 979 plots held 192,000 of them,
#: two thirds of their bytes; 6 still show each bucket's spread over the input's magnitudes.
POINTS = 6
#: Elements held, over all bindings, before they are folded into histograms and samples.
BATCH = 1 << 20
COLORS = ("#0969da", "#bc4c00", "#8250df", "#1a7f37", "#9a6700")


def ulp_errors(actual: Any, expected: Any, dtype: str) -> np.ndarray:
    """Per element, |actual - expected| in ULPs of ``dtype`` at ``expected`` (float64 array):
    0 where they are equal (NaN and NaN, the same infinity), ``inf`` where the error is not
    finite (a non-finite value on one side only, or ``expected`` beyond the dtype's range)."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    with np.errstate(all="ignore"):
        u = np.abs(a - e) / ulp(e, dtype)
        same = (a == e) | (np.isnan(a) & np.isnan(e))
    return np.where(same, 0.0, np.where(np.isfinite(u), u, np.inf))


def buckets(u: np.ndarray) -> np.ndarray:
    """The histogram bucket of each ULP error (see TOP)."""
    u = np.asarray(u, np.float64)
    b = np.full(u.shape, NONFINITE, np.int64)
    b[u == 0] = 0
    pos = np.isfinite(u) & (u > 0)
    b[pos] = 1 + np.clip(np.ceil(np.log2(u[pos])), 0, TOP + 1).astype(np.int64)
    return b


def histogram(u: np.ndarray) -> np.ndarray:
    return np.bincount(buckets(u).ravel(), minlength=N_BUCKETS)


def bucket_label(i: int) -> str:
    """The bucket's upper bound: "0", "1", "2", ... "512", "2^10", ..., ">2^63", "inf/nan"."""
    if i == NONFINITE:
        return "inf/nan"
    if i == 0:
        return "0"
    k = i - 1
    return f">2^{TOP}" if k > TOP else str(2**k) if k < 10 else f"2^{k}"


def magnitude(inp: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """|input| for each element of an output of ``shape`` (flat): elementwise where the shapes
    agree; where the output drops trailing axes (per-sample losses, the class axis; a scalar
    loss drops all) the largest |input| over the elements reduced into it; else the case's."""
    a, n = np.abs(inp), math.prod(shape)
    if a.shape == shape:
        return a.ravel()
    if a.size and n and a.shape[: len(shape)] == shape:
        return a.reshape(n, -1).max(axis=1)
    return np.full(n, a.max() if a.size else np.nan)


class _Series:
    """One binding x dtype x (value or gradient): pending arrays, histogram, sample."""

    def __init__(self) -> None:
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.counts = np.zeros(N_BUCKETS, np.int64)
        self.sample = np.empty((4, 0))  # rows: key, bucket, |input|, ULP error
        self.rng = np.random.default_rng(0)

    def fold(self, dtype: str) -> None:
        if not self.pending:
            return
        e, a, x = (np.concatenate(c) for c in zip(*self.pending))
        self.pending = []
        u = ulp_errors(a, e, dtype)
        b = buckets(u)
        self.counts += np.bincount(b, minlength=N_BUCKETS)
        s = np.concatenate([self.sample, [self.rng.random(u.size), b, x, u]], axis=1)
        order = np.lexsort((s[0], s[1]))  # by bucket, then key
        sb = s[1, order]
        rank = np.arange(sb.size) - np.searchsorted(sb, sb)
        self.sample = s[:, order[rank < POINTS]]


class ErrorPlots:
    """Collects result records one at a time; :meth:`svgs` draws the plots at the end."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, str], dict[str, _Series]] = defaultdict(dict)
        self._pending = 0

    def add(self, r: dict) -> None:
        """Take one record (a parsed line: dicts; anything else in it is skipped)."""
        # Called once per result line: plain dict checks (JSON gives dicts), cheaper than Mapping.
        dtype = r.get("dtype")
        inputs = r.get("inputs")
        if dtype not in DTYPES or not isinstance(inputs, dict):
            return
        inp = _decode(inputs.get("input"))
        grads = r.get("gradients") if isinstance(r.get("gradients"), dict) else {}
        parts = [("value", r)] + [(f"∂{name}", g) for name, g in grads.items() if isinstance(g, dict)]
        series = self._series[str(r.get("spec", "?")), str(r.get("binding", "?")), dtype]
        for label, part in parts:
            e, a = _decode(_field(part.get("expected"))), _decode(_field(part.get("actual")))
            if e is None or a is None or e.shape != a.shape or not e.size:
                continue
            x = magnitude(inp, e.shape) if inp is not None else np.full(e.size, np.nan)
            if label not in series:
                series[label] = _Series()
            series[label].pending.append((e.ravel(), a.ravel(), x))
            self._pending += e.size
        if self._pending >= BATCH:
            self._fold()

    def _fold(self) -> None:
        for (_, _, dtype), series in self._series.items():
            for s in series.values():
                s.fold(dtype)
        self._pending = 0

    def svgs(self) -> dict[tuple[str, str], list[tuple[str, Markup]]]:
        """(spec, binding) -> [(dtype, inline SVG)], dtypes in DTYPES order, ids unique on the page."""
        self._fold()
        out: dict[tuple[str, str], list[tuple[str, Markup]]] = {}
        keys = sorted((k for k, v in self._series.items() if v), key=lambda k: (k[0], k[1], DTYPES.index(k[2])))
        for n, (spec, binding, dtype) in enumerate(keys):
            series = sorted(self._series[spec, binding, dtype].items(), key=lambda kv: (kv[0] != "value", kv[0]))
            svg = render_svg(f"{binding} · {dtype}", series, f"plot{n}-")
            out.setdefault((spec, binding), []).append((dtype, svg))
        return out


def _field(o: Any) -> Any:
    return o.get("value") if isinstance(o, dict) else None


def _decode(v: Any) -> np.ndarray | None:
    if not (isinstance(v, dict) and v.get("dtype") != "int64"):
        return None
    try:
        return decode_array(v).astype(np.float64)
    except (KeyError, TypeError, ValueError):  # a broken array is not plotted
        return None


def _log_axis(v: np.ndarray) -> tuple[np.ndarray, tuple[float, float], list[float], list[str]]:
    """Positions of values >= 0 on a log axis with 0 drawn one tick below its smallest decade
    and inf/NaN one tick above its largest: (positions, limits, ticks, tick labels)."""
    pos = v[np.isfinite(v) & (v > 0)]  # within 1e-200..1e200, so that 0 and inf have a place too
    lo = max(-200, math.floor(math.log10(pos.min()))) if pos.size else 0
    hi = min(200, max(lo + 1, math.ceil(math.log10(pos.max())))) if pos.size else 1
    step = _step(lo, hi)
    zero, top = 10.0 ** (lo - step), 10.0 ** (hi + step)
    with np.errstate(invalid="ignore"):
        at = np.where(v == 0, zero, np.where(np.isfinite(v), np.clip(v, 10.0**lo, 10.0**hi), top))
    ticks, labels = _decades(lo, hi)
    return at, (zero / 3, top * 3), [zero, *ticks, top], ["0", *labels, "inf/nan"]


def _step(lo: int, hi: int) -> int:
    return max(1, math.ceil((hi - lo) / 5))


def _decades(lo: int, hi: int) -> tuple[list[float], list[str]]:
    """At most six ticks at powers of ten from 10^lo to 10^hi, labelled as plain text."""
    powers = range(lo, hi + 1, _step(lo, hi))
    return [10.0**d for d in powers], [str(10**d) if 0 <= d < 3 else f"1e{d}" for d in powers]


#: The drawing, in SVG user units (the page scales it to its width): two panels side by side.
WIDTH, HEIGHT = 560, 188
#: Each panel's plotting area: (left, right, top, bottom).
_HIST_BOX = (44.0, 282.0, 36.0, 150.0)
_SCATTER_BOX = (338.0, 538.0, 36.0, 150.0)  # room for the last tick label


def render_svg(title: str, series: list[tuple[str, _Series]], prefix: str = "") -> Markup:
    """The two panels as SVG markup to inline in a page, drawn here from the histograms and
    samples (no plotting library: a page of a thousand plots was 17.6 MB of matplotlib's SVG and
    two minutes of drawing; this is a few kB and about a millisecond each).

    Safe to mark up: drawn from numbers; its only text from records (``title``, the gradient
    names) is escaped. It defines no ids, so plots never collide on one page (``prefix`` is
    kept for callers and unused)."""
    out = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="7.5">',
        f'<text x="{WIDTH / 2:g}" y="11" text-anchor="middle" font-size="9">{escape(title)}</text>',
    ]
    out += _legend(series)
    out += _histogram_panel(series)
    out += _scatter_panel(series)
    out.append("</svg>")
    return Markup("".join(out))


def _n(v: float) -> str:
    """A coordinate to a tenth of a unit (invisible at a plot's size), shortest form."""
    text = f"{v:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _legend(series) -> list[str]:
    """One swatch and label per series, centred in a line under the title."""
    labels = [f"{label} ({int(s.counts.sum())} elements)" for label, s in series]
    widths = [14 + 4.2 * len(t) for t in labels]  # about 4.2 units a character at font-size 7.5
    x = (WIDTH - sum(widths) - 10 * (len(labels) - 1)) / 2
    out = []
    for i, (text, w) in enumerate(zip(labels, widths)):
        out.append(
            f'<rect x="{_n(x)}" y="18" width="8" height="8" fill="{COLORS[i % len(COLORS)]}"/>'
            f'<text x="{_n(x + 11)}" y="25">{escape(text)}</text>'
        )
        x += w + 10
    return out


def _axes(box, xticks, yticks, xlabel: str, ylabel: str) -> list[str]:
    """A panel's left and bottom axes, tick marks and labels; ticks are (pixel, label)."""
    left, right, top, bottom = box
    path = [f"M{_n(left)} {_n(top)}V{_n(bottom)}H{_n(right)}"]
    path += [f"M{_n(x)} {_n(bottom)}v3" for x, _ in xticks] + [f"M{_n(left)} {_n(y)}h-3" for _, y in yticks]
    out = [f'<path d="{"".join(path)}" fill="none" stroke="#333" stroke-width="0.7"/>']
    out += [f'<text x="{_n(x)}" y="{_n(bottom + 11)}" text-anchor="middle">{escape(t)}</text>' for x, t in xticks]
    out += [f'<text x="{_n(left - 5)}" y="{_n(y + 2.5)}" text-anchor="end">{escape(t)}</text>' for t, y in yticks]
    mid = (top + bottom) / 2
    out.append(f'<text x="{_n((left + right) / 2)}" y="{_n(bottom + 24)}" text-anchor="middle">{escape(xlabel)}</text>')
    out.append(
        f'<text x="{_n(left - 32)}" y="{_n(mid)}" text-anchor="middle" '
        f'transform="rotate(-90 {_n(left - 32)} {_n(mid)})">{escape(ylabel)}</text>'
    )
    return out


def _histogram_panel(series) -> list[str]:
    """Elements per ULP-error bucket, one bar per series, on a log count axis."""
    left, right, top, bottom = _HIST_BOX
    counts = np.array([s.counts for _, s in series])
    nonzero = np.flatnonzero(counts[:, 1:NONFINITE].any(axis=0))
    last = int(nonzero.max()) + 1 if nonzero.size else 1
    merge = math.ceil(last / BARS)  # wide ranges (float64: up to 2^60 ULPs) in fewer, wider buckets
    groups = [[0], *(list(range(i, min(i + merge, last + 1))) for i in range(1, last + 1, merge)), [NONFINITE]]
    at = np.arange(len(groups)) + (np.arange(len(groups)) == len(groups) - 1)  # a gap before inf/nan
    slot = (right - left) / (at[-1] + 1)

    def px(position):
        return left + (position + 0.5) * slot

    top_decade = max(1, math.ceil(math.log10(counts.sum(axis=1).max())))
    low, high = math.log10(0.7), math.log10(counts.sum(axis=1).max() * 1.5)

    def py(count):
        return bottom - (math.log10(count) - low) / (high - low) * (bottom - top)

    width = 0.85 / len(series)
    out = []
    for i, (_, s) in enumerate(series):
        c = [int(s.counts[g].sum()) for g in groups]
        bars = "".join(
            f"M{_n(px(at[j] + (i - (len(series) - 1) / 2) * width - width / 2))} {_n(bottom)}"
            f"V{_n(py(n))}h{_n(width * slot)}V{_n(bottom)}z"
            for j, n in enumerate(c)
            if n > 0
        )
        if bars:
            out.append(f'<path d="{bars}" fill="{COLORS[i % len(COLORS)]}"/>')
    ticks = sorted({*range(0, len(groups), math.ceil(len(groups) / 9)), len(groups) - 1})
    yticks, ylabels = _decades(0, top_decade)
    out += _axes(
        _HIST_BOX,
        [(px(at[j]), bucket_label(groups[j][-1])) for j in ticks],
        [(label, py(v)) for v, label in zip(yticks, ylabels) if 0.7 <= v <= 10**high],
        "ULP error, up to",
        "elements",
    )
    return out


def _scatter_panel(series) -> list[str]:
    """The sample's ULP errors against |input|, both on log axes (0 and inf/nan given a place)."""
    left, right, top, bottom = _SCATTER_BOX
    x, xlim, xticks, xlabels = _log_axis(np.concatenate([s.sample[2] for _, s in series]))
    y, ylim, yticks, ylabels = _log_axis(np.concatenate([s.sample[3] for _, s in series]))
    (x0, x1), (y0, y1) = np.log10(xlim), np.log10(ylim)

    def px(v):
        return left + (np.log10(v) - x0) / (x1 - x0) * (right - left)

    def py(v):
        return bottom - (np.log10(v) - y0) / (y1 - y0) * (bottom - top)

    out, start = [], 0
    with np.errstate(all="ignore"):  # a NaN |input| (no input array) is not drawn
        xs, ys = px(x), py(y)
    for i, (_, s) in enumerate(series):
        end = start + s.sample.shape[1]
        # Each point a zero-length line with round caps: a dot in a dozen bytes.
        dots = "".join(
            f"M{_n(a)} {_n(b)}h0" for a, b in zip(xs[start:end], ys[start:end]) if np.isfinite(a) and np.isfinite(b)
        )
        start = end
        if dots:
            out.append(
                f'<path d="{dots}" fill="none" stroke="{COLORS[i % len(COLORS)]}" stroke-opacity="0.7" '
                f'stroke-width="3.2" style="stroke-linecap:round"/>'
            )
    out += _axes(
        _SCATTER_BOX,
        [(float(px(v)), label) for v, label in zip(xticks, xlabels)],
        [(label, float(py(v))) for v, label in zip(yticks, ylabels)],
        "|input| (per element; max over the inputs reduced into it)",
        "ULP error (sample)",
    )
    return out
