"""The regression page: a :class:`~lossparity.reports.diff.Diff` of two results files as HTML.

Both runs' metadata side by side, counts per change class, then the changes grouped by
framework and spec, regressions (the classes of ``fail_on``) first; each change shows the
case as the newer run recorded it (else the older) and both runs' reproducers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from lossparity.core.dtypes import DTYPES
from lossparity.reports.diff import CLASSES, Change, Diff, rows
from lossparity.reports.format import (
    breakable,
    command,
    format_finding,
    format_scalar,
    format_shrunk,
    meta_rows,
    rank,
    versions,
)
from lossparity.reports.render import render, write_page

#: Changes of one class for one binding of one spec shown in full; the rest as table rows.
MAX_DETAILED = 25


def render_regression(d: Diff, fail_on: Iterable[str], drift_ulps: float) -> str:
    """The regression page for a :class:`~lossparity.reports.diff.Diff`: both runs' metadata
    side by side, counts per change class, then the changes grouped by framework and spec."""
    return render("regression.html.j2", _regression_context(d, tuple(fail_on), drift_ulps))


def write_regression(d: Diff, path: str | Path, fail_on: Iterable[str], drift_ulps: float) -> Path:
    return write_page(path, render_regression(d, fail_on, drift_ulps))


def _regression_context(d: Diff, fail_on: tuple[str, ...], drift_ulps: float) -> dict:
    counts = d.counts()
    order = {k: i for i, k in enumerate(sorted(CLASSES, key=lambda k: (k not in fail_on, CLASSES.index(k))))}
    ordered = sorted(d.changes, key=lambda c: (c.framework, c.key[0], order.get(c.kind, 99), c.key[1], c.key))
    frameworks: dict[str, dict] = {}
    shown: Counter = Counter()
    for change, n in rows(ordered):
        fw = frameworks.setdefault(change.framework, {"framework": change.framework, "counts": Counter(), "specs": {}})
        spec = fw["specs"].setdefault(
            change.key[0], {"spec": change.key[0], "counts": Counter(), "items": [], "more": []}
        )
        fw["counts"][change.kind] += n
        spec["counts"][change.kind] += n
        group = (change.key[0], change.key[1], change.kind)
        shown[group] += 1
        item = _change(change, n, change.kind in fail_on)
        (spec["items"] if shown[group] <= MAX_DETAILED else spec["more"]).append(item)
    regressions = len(d.regressions(fail_on))
    return {
        "regressions": regressions,
        "matched": d.matched,
        "fail_on": list(fail_on),
        "drift_ulps": format_scalar(drift_ulps),
        "meta": _meta_pairs(d.base_meta, d.new_meta),
        "commands": [(side, command(m)) for side, m in (("BASE", d.base_meta), ("NEW", d.new_meta)) if command(m)],
        "classes": [(k, counts.get(k, 0), k in fail_on) for k in sorted(CLASSES, key=order.get)],
        "frameworks": [
            {
                **fw,
                "counts": _class_counts(fw["counts"], order),
                "specs": [{**s, "counts": _class_counts(s["counts"], order)} for s in fw["specs"].values()],
            }
            for fw in frameworks.values()
        ],
        "filters": [
            ("framework", "framework", sorted(frameworks)),
            ("spec", "spec", sorted({c.key[0] for c in d.changes})),
            ("kind", "kind", sorted({c.kind for c in d.changes}, key=order.get)),
            ("dtype", "dtype", sorted({c.key[2] for c in d.changes}, key=lambda v: rank(v, DTYPES))),
        ],
    }


def _class_counts(counts: Counter, order: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: order.get(kv[0], 99))


def _change(change: Change, n: int, regression: bool) -> dict:
    spec, binding, dtype, device, mode, case_id = change.key
    base = format_finding(change.base) if change.base else None
    new = format_finding(change.new) if change.new else None
    repro_new, repro_base = (new or {}).get("reproducer"), (base or {}).get("reproducer")
    return {
        "kind": change.kind,
        "regression": regression,
        "cases": n,
        "framework": change.framework,
        "spec": spec,
        "binding": breakable(binding),
        "dtype": dtype,
        "device": device,
        "mode": mode,
        "case_id": case_id,
        "detail": change.detail,
        "case": new or base,
        "base": base,
        "new": new,
        "reproducers": [
            (label, r)
            for label, r in (("NEW", repro_new), ("BASE", repro_base))
            if r and not (label == "BASE" and r == repro_new)
        ],
        "smallest": format_shrunk(change.smallest) if change.smallest else None,
    }


def _meta_pairs(base: Mapping, new: Mapping) -> list[tuple[str, str, str, bool]]:
    """(field, BASE's value, NEW's value, whether they differ): versions first, then the run."""
    pairs = []
    vb, vn = dict(versions(base)), dict(versions(new))
    for name in sorted(set(vb) | set(vn)):
        pairs.append((name, vb.get(name, "–"), vn.get(name, "–"), vb.get(name) != vn.get(name)))
    mb, mn = dict(meta_rows(base)), dict(meta_rows(new))
    for name in dict.fromkeys([*mb, *mn]):
        if name in ("started", "finished", "losses") or name in vb or name in vn:
            continue
        pairs.append((name, mb.get(name, "–"), mn.get(name, "–"), mb.get(name) != mn.get(name)))
    return pairs
