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

import io
import math
import re
from collections import defaultdict
from typing import Any

import numpy as np
from markupsafe import Markup

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
_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "lossparity",
    "font.size": 7,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "text.parse_math": False,  # a "$" in a binding id is text, not mathtext
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_NO_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


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


def render_svg(title: str, series: list[tuple[str, _Series]], prefix: str) -> Markup:
    """The two panels as SVG markup to inline in a page, every id prefixed with ``prefix``.

    Safe to mark up: drawn from numbers; its only text from records (``title``, the gradient
    names) goes through matplotlib's SVG writer, which escapes it."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.4, 2.5))
        FigureCanvasSVG(fig)
        hist, scatter = fig.subplots(1, 2, gridspec_kw={"width_ratios": (1.15, 1), "wspace": 0.3})
        fig.subplots_adjust(left=0.07, right=0.97, bottom=0.19, top=0.78)
        fig.suptitle(title, fontsize=8, y=0.98)
        _histogram_panel(hist, series)
        _scatter_panel(scatter, series)
        fig.legend(loc="upper center", bbox_to_anchor=(0.5, 0.91), ncols=len(series), frameon=False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata=_NO_METADATA)
    return Markup(_inline(buf.getvalue(), prefix))


def _histogram_panel(ax, series) -> None:
    counts = np.array([s.counts for _, s in series])
    nonzero = np.flatnonzero(counts[:, 1:NONFINITE].any(axis=0))
    last = int(nonzero.max()) + 1 if nonzero.size else 1
    merge = math.ceil(last / BARS)  # wide ranges (float64: up to 2^60 ULPs) in fewer, wider buckets
    groups = [[0], *(list(range(i, min(i + merge, last + 1))) for i in range(1, last + 1, merge)), [NONFINITE]]
    at = np.arange(len(groups)) + (np.arange(len(groups)) == len(groups) - 1)  # a gap before inf/nan
    width = 0.85 / len(series)
    for i, (label, s) in enumerate(series):
        c = np.array([s.counts[g].sum() for g in groups])
        ax.bar(
            at[c > 0] + (i - (len(series) - 1) / 2) * width,
            c[c > 0],
            width,
            color=COLORS[i % len(COLORS)],
            label=f"{label} ({int(s.counts.sum())} elements)",
        )
    ax.set_yscale("log")
    ax.set_ylim(0.7, counts.sum(axis=1).max() * 1.5)
    ax.set_yticks(*_decades(0, max(1, math.ceil(math.log10(counts.sum(axis=1).max())))))
    ticks = sorted({*range(0, len(groups), math.ceil(len(groups) / 9)), len(groups) - 1})
    ax.set_xticks(at[ticks], [bucket_label(groups[j][-1]) for j in ticks])
    ax.set_xlabel("ULP error, up to")
    ax.set_ylabel("elements")
    ax.minorticks_off()


def _scatter_panel(ax, series) -> None:
    x, xlim, xticks, xlabels = _log_axis(np.concatenate([s.sample[2] for _, s in series]))
    y, ylim, yticks, ylabels = _log_axis(np.concatenate([s.sample[3] for _, s in series]))
    start = 0
    for i, (_, s) in enumerate(series):
        end = start + s.sample.shape[1]
        ax.scatter(x[start:end], y[start:end], s=5, color=COLORS[i % len(COLORS)], linewidths=0, alpha=0.7)
        start = end
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_xticks(xticks, xlabels)
    ax.set_yticks(yticks, ylabels)
    ax.minorticks_off()
    ax.set_xlabel("|input| (per element; max over the inputs reduced into it)")
    ax.set_ylabel("ULP error (sample)")


_ID = re.compile(r' id="([^"]*)"')
_REFERENCE = re.compile(r'(url\(#|href="#)([^)"]+)')


#: Attributes holding coordinates, which matplotlib writes to six decimals and a line per command.
_GEOMETRY = re.compile(r'(\s(?:d|x|y|x1|x2|y1|y2|cx|cy|width|height|transform)=")([^"]*)"')
_DECIMALS = re.compile(r"(\d+\.\d)\d+")


def _short(value: str) -> str:
    """Coordinates to a tenth of a point (a plot is 533 x 180 pt: no visible change), one space
    between tokens: a page of a thousand plots is a third of the size."""
    return " ".join(_DECIMALS.sub(r"\1", value).split())


def _inline(svg: str, prefix: str) -> str:
    """Matplotlib's SVG document as markup for inside an HTML page: no XML prolog, doctype,
    metadata or global style sheet; the ids nothing refers to dropped; the others short
    (``prefix`` and a number); coordinates to a tenth of a point; a scatter's shared style set
    once on its group, not on each of its points (most of a plot's bytes)."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>|<style[^>]*>.*?</style>", "", svg, flags=re.S)
    svg = re.sub(r">\s+<", "><", svg).replace("<defs></defs>", "")
    used = {name: f"{prefix}{n}" for n, name in enumerate(dict.fromkeys(m[2] for m in _REFERENCE.finditer(svg)))}
    svg = _ID.sub(lambda m: f' id="{used[m[1]]}"' if m[1] in used else "", svg)
    svg = _REFERENCE.sub(lambda m: m[1] + used.get(m[2], prefix + m[2]), svg)
    svg = _GEOMETRY.sub(lambda m: m[1] + _short(m[2]) + '"', svg)
    svg = _POINTS.sub(_hoist, svg)
    svg = re.sub(r' transform="rotate\(-0 [^)"]*\)"', "", svg)  # a tick label's identity rotation
    return svg.strip().replace("<svg ", '<svg class="plot" ', 1)


#: A group of markers (``<use>``), as matplotlib draws a scatter: each point with the same style.
_POINTS = re.compile(r'(<g clip-path="[^"]*")>((?:<use [^>]*/>)+)</g>')
_STYLE = re.compile(r' style="([^"]*)"')


def _hoist(m: re.Match) -> str:
    """The group with its points' one style on itself (SVG: a ``use`` inherits it), or as it was."""
    styles = set(_STYLE.findall(m[2]))
    if len(styles) != 1 or m[2].count("<use ") != m[2].count(" style="):
        return m[0]
    return f'{m[1]} style="{styles.pop()}">{_STYLE.sub("", m[2])}</g>'
