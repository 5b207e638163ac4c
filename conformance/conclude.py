"""What ends a results file: divergences, agreement counts and the summary, from the result lines.

Divergences are looked for among the results of one case (``divergence.case_key``) and among
those on common ground (``pairs.ground_keys``: a case of one spec and the case derived from it
for its paired spec).

One piece for the places that finish a results file: the plugin at the end of a run (from the
file it wrote, ``conclude_file``: the results are read back group by group, never all held)
and ``lossparity merge``, which recomputes them over the merged results (shards that ran
different frameworks only meet in the merged file).
"""

from __future__ import annotations

import datetime as _dt
import json
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from lossparity.core.records import raw_lines
from lossparity.core.verdicts import SILENT, finding_label


class _Tally:
    """What the summary needs of every result line, kept small: counts, the results each known
    deviation explained (wholly, or some parts of), what ran (for stale ones), the findings per
    (spec, binding, finding): the finding is its verdict, or what an unconfirmed one did ("crash,
    not reproduced alone": ``finding_label``)."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.findings: Counter = Counter()
        self.explained: Counter = Counter()  # entry id -> results it helped make known
        self.partly: Counter = Counter()  # entry id -> results it explained only some parts of
        self.ran: set[tuple] = set()
        self.rounded = 0  # conforming results with a part within its rounding model

    def add(self, r: dict) -> None:
        from lossparity.conformance.known import known_ids, partly_known_ids, ran_params

        self.counts[r["verdict"]] += 1
        self.rounded += rounded(r)
        if r["verdict"] not in SILENT:
            self.findings[r["spec"], r["binding"], finding_label(r)] += 1
        self.explained.update(set(known_ids(r)))
        self.partly.update(set(partly_known_ids(r)))
        if r["verdict"] != "unsupported":
            place = (r["binding"], r["spec"], r["case_id"], r["dtype"], r.get("mode", "eager"))
            self.ran.add((*place, ran_params(r.get("params"))))

    def summary(self, divergences: list[dict], known: list | None = None) -> dict:
        from lossparity.conformance.known import judge, load_known

        known = load_known() if known is None else known
        standing = judge(known, set(self.explained) | set(self.partly), self.ran)
        by_known = Counter(
            i
            for d in divergences
            if d["status"] == "explained" and _explained_by(d) == "by_known"
            for i in dict.fromkeys(d.get("known") or ())
        )
        return {
            "kind": "summary",
            "counts": dict(self.counts),
            "rounding": self.rounded,
            "divergences": dict(
                Counter(d["status"] for d in divergences)
                + Counter(_explained_by(d) for d in divergences if d["status"] == "explained")
            ),
            "stale_known": [k.as_dict() for k in known if standing[k.id] == "stale"],
            "known_entries": [
                {
                    "id": k.id,
                    "symptom": k.as_dict()["symptom"],
                    "status": standing[k.id],
                    "results": self.explained[k.id],
                    "partly": self.partly[k.id],
                    "divergences": by_known[k.id],
                }
                for k in known
            ],
            "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }


def _comparable(r: dict) -> bool:
    """Only results this lossparity knows how to compare (a merged file may hold others)."""
    from lossparity.conformance.divergence import comparable_result
    from lossparity.conformance.specs import SPECS
    from lossparity.core.dtypes import TOLERANCES

    return comparable_result(r) and r["spec"] in SPECS and r["dtype"] in TOLERANCES


def _finish(
    groups: Iterable[list[dict]], ground: Iterable[tuple[tuple, list[dict]]], tally: _Tally, known: list | None
) -> tuple[list[dict], dict]:
    """Divergences of each case's results (``groups``), then of the pairs on common ground
    (``ground``: ``pairs.ground_keys`` with their results), their agreement lines, the summary."""
    from lossparity.conformance.divergence import divergences_by_case, divergences_on_common_ground
    from lossparity.conformance.registry import all_bindings
    from lossparity.conformance.specs import SPECS

    bindings = {b.key: b for b in all_bindings()}
    divergences, agreement = divergences_by_case(groups, bindings, SPECS)
    common, common_agreement = divergences_on_common_ground(ground, bindings, SPECS)
    divergences += common
    return divergences + agreement + common_agreement, tally.summary(divergences, known)


def conclude(results: Iterable[dict], known: list | None = None) -> tuple[list[dict], dict]:
    """The divergence and agreement lines of these result lines, and the summary line (the
    known deviations judged: ``known``, default the suite's)."""
    from lossparity.conformance.divergence import case_key
    from lossparity.conformance.pairs import ground_keys

    tally, groups, ground, sides = _Tally(), {}, {}, {}
    for r in results:
        if r.get("kind") != "result":
            continue
        tally.add(r)
        if _comparable(r):
            groups.setdefault(case_key(r), []).append(r)
            for key, side in ground_keys(r):
                ground.setdefault(key, []).append(r)
                sides.setdefault(key, set()).add(side)
    return _finish(groups.values(), [(k, v) for k, v in ground.items() if len(sides[k]) == 2], tally, known)


def conclude_file(path: Path, known: list | None = None) -> tuple[list[dict], dict, Counter]:
    """``conclude`` over the result lines of a results file, and the findings per (spec,
    binding, finding: ``_Tally``). One pass keeps each comparable line's offset by case; the divergences
    are then found one case at a time, reading just that case's lines back."""
    from lossparity.conformance.divergence import case_key
    from lossparity.conformance.pairs import ground_keys

    tally, groups, ground, sides = _Tally(), {}, {}, {}
    # The file is compressed (``core/records.py``), so it cannot be read back at an offset: the
    # comparable lines are copied, plain, to a spill file beside it, which is read back instead.
    with tempfile.TemporaryFile(dir=Path(path).parent, prefix=".conclude-") as spill:
        offset = 0
        for raw in raw_lines(path):
            r = json.loads(raw) if raw.strip() else {}
            if r.get("kind") == "result":
                tally.add(r)
                if _comparable(r):
                    groups.setdefault(case_key(r), []).append(offset)
                    for key, side in ground_keys(r):
                        ground.setdefault(key, []).append(offset)
                        sides.setdefault(key, set()).add(side)
                    spill.write(raw + b"\n")
                    offset += len(raw) + 1
        spill.flush()

        def read_back(keyed: dict) -> Iterator[tuple[tuple, list[dict]]]:
            for key, offsets in keyed.items():
                group = []
                for at in offsets:
                    spill.seek(at)
                    group.append(json.loads(spill.readline()))
                yield key, group

        by_case = (group for _, group in read_back(groups))
        both = {k: v for k, v in ground.items() if len(sides[k]) == 2}  # a case and the one derived from it
        lines, summary = _finish(by_case, read_back(both), tally, known)
    return lines, summary, tally.findings


def _explained_by(divergence: dict) -> str:
    """by_known: a registered deviation explains a side (which then does not return its documented
    result); by_conventions: the conventions close the whole gap; by_rounding: both sides conform
    to one prediction (``divergence.rounding_reason``)."""
    if divergence.get("known"):  # a side does not return its documented result: the entry comes first
        return "by_known"
    if (divergence["attribution"] or {}).get("status") == "explained":
        return "by_conventions"
    return "by_rounding" if divergence.get("rounding") else "by_known"


def rounded(r: dict) -> bool:
    """Whether a conforming result holds a part within its rounding model, not the tolerance."""
    parts = [r.get("errors")] + [g.get("errors") for g in (r.get("gradients") or {}).values()]
    return r["verdict"] == "conform" and any(isinstance(e, dict) and e.get("rounding") for e in parts)
