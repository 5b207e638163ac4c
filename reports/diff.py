"""Regression diff between two results files: what changed in loss behaviour from BASE to NEW.

Results are matched by spec, binding, dtype, device, mode and case (``reports/merge.KEY``).
Each change gets one class:

- ``new_deviation``: conformed (or was a registered known deviation) in BASE, does not in NEW;
- ``fixed_deviation``: did not conform in BASE, does in NEW;
- ``changed_error``: the same verdict class, but a different error raised (or an error where
  a value was, or the other way round);
- ``value_drift``: conforms in both, but the greatest error against the oracle grew by more
  than ``drift_ulps`` units in the last place of the result's dtype;
- ``new_binding`` / ``removed_binding``: a binding present in one run only;
- ``coverage``: a case of a binding present in both runs that only one of them ran.

Which classes count as regressions (exit code 1) is a policy: :data:`DEFAULT_FAIL_ON`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lossparity.core.records import baseline_record, is_baseline, iter_records
from lossparity.core.verdicts import CONFORMING, FINDINGS
from lossparity.reports.merge import KEY, result_key

CLASSES = (
    "new_deviation",
    "changed_error",
    "value_drift",
    "removed_binding",
    "coverage",
    "new_binding",
    "fixed_deviation",
)
DEFAULT_FAIL_ON = ("new_deviation", "changed_error", "removed_binding")
#: Drift is growth of the error against the oracle, in ULPs of the result's dtype: past a
#: few ULPs a changed kernel (another summation order, a fused op) is visible to users.
DEFAULT_DRIFT_ULPS = 4.0

_GOOD, _BAD = CONFORMING, FINDINGS


@dataclass
class Change:
    kind: str
    key: tuple
    base: dict | None
    new: dict | None
    detail: str
    #: the ``shrunk`` line of the finding's group (``conformance/shrink.py``), from the file whose
    #: side is the finding (NEW, else BASE); None where that file has none
    smallest: dict | None = None

    @property
    def framework(self) -> str:
        return str((self.new or self.base or {}).get("framework", "?"))

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            **dict(zip(KEY, self.key)),
            "detail": self.detail,
            "base_verdict": (self.base or {}).get("verdict"),
            "new_verdict": (self.new or {}).get("verdict"),
            "reproducer": (self.new or self.base or {}).get("reproducer"),
            **({"smallest": _smallest_dict(self.smallest)} if self.smallest else {}),
        }


@dataclass
class Diff:
    base_meta: dict
    new_meta: dict
    changes: list[Change] = field(default_factory=list)
    matched: int = 0

    def counts(self) -> dict[str, int]:
        return dict(Counter(c.kind for c in self.changes))

    def regressions(self, fail_on=DEFAULT_FAIL_ON) -> list[Change]:
        return [c for c in self.changes if c.kind in fail_on]


#: Classes that concern a whole binding: shown once per binding with its count of cases.
BINDING_CLASSES = ("new_binding", "removed_binding")


def rows(changes: list[Change]) -> list[tuple[Change, int]]:
    """The changes as they are listed to a reader: one row per case, except that a binding
    present in one run only is one row (its first change) with the number of its cases."""
    out: list[tuple[Change, int]] = []
    at: dict[tuple, int] = {}
    for c in changes:
        if c.kind in BINDING_CLASSES:
            group = (c.kind, c.key[0], c.key[1])
            if group in at:
                first, n = out[at[group]]
                out[at[group]] = (first, n + 1)
                continue
            at[group] = len(out)
        out.append((c, 1))
    return out


def _error(record: dict) -> str | None:
    actual = record.get("actual") or {}
    return actual.get("error")


def _ulp(record: dict) -> float:
    value = (record.get("errors") or {}).get("max_ulp")
    if not isinstance(value, (int, float)):
        return 0.0
    try:
        return float(value)
    except OverflowError:  # an integer past the float range: as far off as can be
        return float("inf")


def classify(base: dict, new: dict, drift_ulps: float) -> tuple[str, str] | None:
    """The class of the change from one result to the other, with a one-line detail, or None."""
    vb, vn = base["verdict"], new["verdict"]
    if vb in _GOOD and vn in _BAD:
        return "new_deviation", f"{vb} -> {vn}: " + _summary(new)
    if vb in _BAD and vn in _GOOD:
        return "fixed_deviation", f"{vb} -> {vn}"
    eb, en = _error(base), _error(new)
    if eb != en:
        return "changed_error", f"{eb or 'a value'} -> {en or 'a value'}"
    if vb == vn == "conform" and _ulp(new) - _ulp(base) > drift_ulps:
        return "value_drift", f"error against the oracle {_ulps(_ulp(base))} -> {_ulps(_ulp(new))} ULPs"
    return None


def _ulps(n: float) -> str:
    return f"{n:,.0f}" if n >= 100 else f"{n:.3g}"


def _summary(record: dict) -> str:
    errors = record.get("errors") or {}
    return (errors.get("summary") or "").splitlines()[0] if errors.get("summary") else record["verdict"]


def diff(base_records: list[dict], new_records: list[dict], *, drift_ulps: float = DEFAULT_DRIFT_ULPS) -> Diff:
    """Every change from BASE's results to NEW's."""

    def index(records):
        return {result_key(r): r for r in records if r.get("kind") == "result" and r["verdict"] != "unsupported"}

    def unavailable(records):  # (spec, binding) -> why the binding did not run
        return {
            (r["spec"], r["binding"]): (r.get("actual") or {}).get("message") or "unavailable"
            for r in records
            if r.get("kind") == "result" and r["verdict"] == "unsupported"
        }

    def meta(records):
        return next((r for r in records if r.get("kind") == "meta"), {})

    base, new = index(base_records), index(new_records)
    shrunk_base, shrunk_new = shrunk_index(base_records), shrunk_index(new_records)
    out = Diff(meta(base_records), meta(new_records))
    base_bindings = {(k[0], k[1]) for k in base}
    new_bindings = {(k[0], k[1]) for k in new}
    base_why, new_why = unavailable(base_records), unavailable(new_records)
    for key in sorted(set(base) | set(new)):
        b, n = base.get(key), new.get(key)
        if b is not None and n is not None:
            out.matched += 1
            found = classify(b, n, drift_ulps)
            if found:
                out.changes.append(Change(found[0], key, b, n, found[1]))
        elif n is not None:
            kind = "new_binding" if (key[0], key[1]) not in base_bindings else "coverage"
            why = base_why.get((key[0], key[1]))
            out.changes.append(Change(kind, key, None, n, f"did not run in BASE: {why}" if why else "only in NEW"))
        else:
            kind = "removed_binding" if (key[0], key[1]) not in new_bindings else "coverage"
            why = new_why.get((key[0], key[1]))
            out.changes.append(Change(kind, key, b, None, f"did not run in NEW: {why}" if why else "only in BASE"))
    for c in out.changes:
        finding = c.new if c.new is not None and c.new["verdict"] != "conform" else c.base
        if finding is not None and finding["verdict"] != "conform":
            c.smallest = smallest(shrunk_new if finding is c.new else shrunk_base, finding)
    return out


def diff_files(base_path: Path, new_path: Path, *, drift_ulps: float = DEFAULT_DRIFT_ULPS) -> Diff:
    """:func:`diff` of two results files (or baselines), in the memory of their baselines.

    Each file is read once, every line checked against the schema, and each result kept as a
    baseline keeps it (``records.baseline_record``: verdicts, error figures, errors, a finding's
    summary and reproducer): what :func:`classify` reads, so the classes are those of the whole
    records. Holding whole records took about 6 GB for a default run against itself (324,510
    results); a baseline's are a tenth of that. The results of the changes, whose inputs and
    outcomes the regression report shows, are then read whole from their file in a second pass
    (not from a baseline, which keeps none)."""
    base, new = _read_side(base_path), _read_side(new_path)
    d = diff(base, new, drift_ulps=drift_ulps)
    for side, path, records in (("base", base_path, base), ("new", new_path, new)):
        wanted = {c.key: c for c in d.changes if getattr(c, side) is not None}
        if not wanted or is_baseline(next((r for r in records if r.get("kind") == "meta"), {})):
            continue
        for record in iter_records(path):  # checked in the first pass
            if record.get("kind") == "result" and record["verdict"] != "unsupported":
                change = wanted.get(result_key(record))
                if change is not None:
                    setattr(change, side, record)
    return d


def _read_side(path: Path) -> list[dict]:
    """A results file's lines as :func:`diff_files` keeps them: meta as it is, results cut to a
    baseline's, shrunk and summary lines whole; no divergence or agreement lines (diff reads none)."""
    out = []
    for record in iter_records(path, validate=True, skim=True):
        kept = record if record.get("kind") == "meta" else baseline_record(record)
        if kept is not None:
            out.append(kept)
    return out


# -- the smallest case of a finding's group (``shrunk`` lines) ----------------------------------


def shrunk_index(records: list[dict]) -> dict[tuple, list[dict]]:
    """The ``shrunk`` lines of a file by (spec, binding, dtype, device, mode, verdict)."""
    out: dict[tuple, list[dict]] = {}
    for r in records:
        if r.get("kind") == "shrunk":
            key = tuple(str(r.get(k)) for k in ("spec", "binding", "dtype", "device", "mode", "verdict"))
            out.setdefault(key, []).append(r)
    return out


def smallest(index: dict[tuple, list[dict]], record: dict) -> dict | None:
    """The ``shrunk`` line of the group a finding belongs to: of its binding, dtype, device, mode
    and verdict, the one shrunk from this very case if any, else the first (the file alone cannot
    tell the symptom kinds apart without the oracle's code, so the first of the verdict's groups)."""
    key = tuple(str(record.get(k)) for k in ("spec", "binding", "dtype", "device", "mode", "verdict"))
    lines = index.get(key) or []
    own = [r for r in lines if (r.get("original") or {}).get("case_id") == record.get("case_id")]
    return (own or lines or [None])[0]


def _smallest_dict(line: dict) -> dict:
    case = line.get("case") or {}
    return {
        "explain": line.get("explain"),
        "elements": line.get("elements"),
        "case_id": case.get("case_id"),
        "inputs": case.get("inputs"),
        "params": case.get("params"),
    }


def metadata_changes(d: Diff) -> list[str]:
    """The differences between the two runs' metadata, versions first."""
    lines = []
    vb, vn = d.base_meta.get("versions") or {}, d.new_meta.get("versions") or {}
    for name in sorted(set(vb) | set(vn)):
        if vb.get(name) != vn.get(name):
            lines.append(f"{name}: {vb.get(name, '-')} -> {vn.get(name, '-')}")
    for name in ("platform", "python", "device", "seed", "examples"):
        if d.base_meta.get(name) != d.new_meta.get(name):
            lines.append(f"{name}: {d.base_meta.get(name)} -> {d.new_meta.get(name)}")
    return lines


def markdown(d: Diff, fail_on=DEFAULT_FAIL_ON, *, limit: int = 20) -> str:
    """A summary short enough for a pull-request comment or a CI job summary."""
    regressions = d.regressions(fail_on)
    counts = d.counts()
    lines = [
        f"### lossparity diff: {f'❌ {len(regressions)} regressions' if regressions else '✅ no regressions'}",
        "",
        f"{d.matched} results matched.",
    ]
    meta = metadata_changes(d)
    if meta:
        lines += ["", "| changed | base -> new |", "| --- | --- |"]
        lines += [f"| {m.split(': ', 1)[0]} | {m.split(': ', 1)[1]} |" for m in meta]
    lines += ["", "| change | count | regression |", "| --- | ---: | :---: |"]
    lines += [f"| {k} | {counts.get(k, 0)} | {'yes' if k in fail_on else ''} |" for k in CLASSES]
    others = [c for c in d.changes if c.kind not in fail_on]
    for title, changes, n_rows in (("regression", regressions, limit), ("other change", others, limit // 2)):
        if changes:
            lines += _table(title, changes, n_rows)
    return "\n".join(lines) + "\n"


def _table(title: str, changes: list[Change], limit: int) -> list[str]:
    lines = [
        "",
        f"| {title} | spec | binding | dtype | mode | device | case | detail |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    listed = rows(changes)
    for c, n in listed[:limit]:
        spec, binding, dtype, device, mode, case = c.key
        if n > 1:
            dtype = mode = device = "all"
            case = f"{n} cases"
        detail = c.detail.replace("|", "\\|")
        lines.append(f"| {c.kind} | {spec} | `{binding}` | {dtype} | {mode} | {device} | {case} | {detail} |")
    if len(listed) > limit:
        lines.append(f"\n... and {len(listed) - limit} more rows (see the JSON or HTML diff).")
    return lines
