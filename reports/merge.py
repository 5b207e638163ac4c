"""Merging results files: shards, CI matrix jobs or machines into one results file.

A result is identified by spec, binding, dtype, device, mode and case. The same result in
two files (equal but for its timings) is a duplicate: kept once and counted. Two different
results under one identity are a conflict: the first file's line is kept and every conflict
is reported, never silently dropped. Divergences, agreement counts and the summary are not
merged but recomputed over the merged results (``conformance/conclude.py``), since shards
that ran different frameworks only meet here.

A baseline (``records.baseline_record``: verdicts and error figures, no arrays) merges too: when
asked for one, or when any source is one, every line is cut down to a baseline's as it is read
and the merged file is a baseline, whose divergences cannot be recomputed (it keeps no values).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lossparity.core.records import baseline_record, is_baseline, iter_records

#: What identifies one result across files.
KEY = ("spec", "binding", "dtype", "device", "mode", "case_id")
#: Fields that may differ between two runs of the same result without it being another result.
VOLATILE = ("seconds",)


def result_key(record: dict) -> tuple:
    return tuple(record[k] for k in KEY)


def _stable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in VOLATILE}


@dataclass
class Merged:
    meta: dict
    results: list[dict] = field(default_factory=list)
    duplicates: int = 0
    conflicts: list[str] = field(default_factory=list)  # one line each
    shrunk: list[dict] = field(default_factory=list)  # each group's smallest case (a divergence's: recomputed)
    warnings: list[str] = field(default_factory=list)  # sources that differ in versions or platform
    baseline: bool = False  # a baseline: results cut down to what diff compares, no divergences


def merge(paths: Iterable[Path], *, baseline: bool = False) -> Merged:
    """Read every file (validated against the schema) and merge its result lines; with
    ``baseline``, or when a source is a baseline, into a baseline (``Merged.baseline``)."""
    paths = [Path(p) for p in paths]
    baseline = baseline or any(is_baseline(next(iter_records(p))) for p in paths)
    out = Merged(meta={}, baseline=baseline)
    metas: list[dict] = []
    seen: dict[tuple, tuple[dict, Path]] = {}
    shrunk_seen: set[tuple] = set()
    for path in paths:
        # A baseline keeps no arrays: its lines are read without their numbers (most of the time).
        for record in iter_records(path, validate=True, skim=baseline):
            if baseline and (record := baseline_record(record)) is None:
                continue
            if record["kind"] == "meta":
                metas.append({"path": str(path), **record})
            elif record["kind"] == "shrunk" and "divergence" not in record:
                group = (*(record[k] for k in KEY[:5]), record["original"]["case_id"], str(record["symptom"]))
                if group not in shrunk_seen:  # the same group of the same case, from two files: once
                    shrunk_seen.add(group)
                    out.shrunk.append(record)
            elif record["kind"] == "result":
                key = result_key(record)
                if key not in seen:
                    seen[key] = (record, path)
                elif _stable(seen[key][0]) == _stable(record):
                    out.duplicates += 1
                else:
                    first, where = seen[key]
                    out.conflicts.append(
                        f"{'/'.join(map(str, key))}: {where} says {_says(first)}, "
                        f"{path} says {_says(record)} (kept {where})"
                    )
    out.results = [record for record, _ in seen.values()]
    out.meta, out.warnings = _meta(metas)
    return out


def _says(record: dict) -> str:
    actual = record.get("actual") or {}
    what = actual.get("error") or (actual.get("value") or {}).get("data")
    if what is None and actual.get("value") is None:  # a baseline keeps no values: its error figures
        what = f"max_ulp {(record.get('errors') or {}).get('max_ulp')}"
    return f"{record['verdict']} ({what})"


def _meta(metas: list[dict]) -> tuple[dict, list[str]]:
    """The first file's metadata with every source's versions and frameworks joined, and each
    source's own under ``sources``; a version, platform or device that differs is warned of."""
    first = {k: v for k, v in metas[0].items() if k != "path"}
    warnings = []
    versions = dict(first.get("versions") or {})
    frameworks = list(first.get("frameworks") or [])
    for other in metas[1:]:
        for name, version in (other.get("versions") or {}).items():
            if versions.setdefault(name, version) != version:
                warnings.append(f"{other['path']} ran {name} {version}, {metas[0]['path']} {versions[name]}")
        frameworks += [f for f in other.get("frameworks") or [] if f not in frameworks]
        for name in ("platform", "python", "device"):
            if other.get(name) != first.get(name):
                warnings.append(
                    f"{other['path']} differs from {metas[0]['path']} in {name}: "
                    f"{other.get(name)!r} vs {first.get(name)!r}"
                )
    if any(m.get("form") for m in metas):
        first["form"] = "baseline"
    first.update(
        versions=versions,
        frameworks=frameworks,
        command="lossparity merge " + " ".join(m["path"] for m in metas),
        sources=[
            {
                "path": m["path"],
                "command": m.get("command"),
                "versions": m.get("versions"),
                "platform": m.get("platform"),
                "device": m.get("device"),
                "seed": m.get("seed"),
            }
            for m in metas
        ],
    )
    return first, warnings
