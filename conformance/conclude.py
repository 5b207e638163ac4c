"""What ends a results file: divergences, agreement counts and the summary, from the result lines.

One function for the two places that finish a results file: the plugin at the end of a run
and ``lossparity merge``, which recomputes them over the merged results (shards that ran
different frameworks only meet in the merged file).
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from typing import Iterable


def conclude(results: Iterable[dict]) -> tuple[list[dict], dict]:
    """The divergence and agreement lines of these result lines, and the summary line."""
    from lossparity.adapters import all_bindings
    from lossparity.conformance.divergence import find_divergences
    from lossparity.conformance.known import load_known, stale
    from lossparity.conformance.specs import SPECS

    from lossparity.conformance.tolerances import TOLERANCES

    results = [r for r in results if r.get("kind") == "result"]
    bindings = {b.key: b for b in all_bindings()}
    # Only results this lossparity knows how to compare (a merged file may hold others).
    comparable = [r for r in results if r["spec"] in SPECS and r["dtype"] in TOLERANCES]
    divergences, agreement = find_divergences(comparable, bindings, SPECS)
    used = {r["known"].get("id") for r in results if isinstance(r.get("known"), dict)}
    summary = {
        "kind": "summary",
        "counts": dict(Counter(r["verdict"] for r in results)),
        "divergences": dict(Counter(d["status"] for d in divergences)
                            + Counter(_explained_by(d) for d in divergences if d["status"] == "explained")),
        "stale_known": stale(load_known(), used, results),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return divergences + agreement, summary


def _explained_by(divergence: dict) -> str:
    """by_conventions: the conventions close the whole gap; by_known: a registered deviation does."""
    return "by_conventions" if (divergence["attribution"] or {}).get("status") == "explained" else "by_known"
