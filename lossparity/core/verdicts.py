"""The verdict vocabulary: one list, read by the runner, the conclusions, the diff and the report."""

from __future__ import annotations

from collections.abc import Mapping

#: Every verdict a result line can carry, in the order summaries show them. ``crash`` and
#: ``timeout`` are confirmed: the unit did it again when rerun alone in a fresh process;
#: ``unconfirmed`` is a crash or timeout that did not (it depended on what the process had done
#: before, or on the machine), still a finding and never a known deviation.
VERDICTS = ("conform", "deviate", "error_mismatch", "unsupported", "crash", "timeout", "unconfirmed", "known")

#: Unexplained findings: a run that has one exits 1 (the order a report lists them in).
FINDINGS = ("crash", "timeout", "unconfirmed", "error_mismatch", "deviate")

#: Results that agree with the oracle, as such or as a registered known deviation.
CONFORMING = ("conform", "known")

#: Results that say nothing about the binding's correctness (no finding, nothing to explain).
SILENT = ("conform", "unsupported")

#: How far a value or gradient verdict is from conforming (the worst one wins).
RANK = {"conform": 0, "deviate": 1, "error_mismatch": 2}


def finding_label(record: Mapping) -> str:
    """How summaries name a result's finding: its verdict, except that an ``unconfirmed`` one
    says what did not reproduce: "crash, not reproduced alone" (or "timeout, ...")."""
    verdict = str(record.get("verdict", "?"))
    if verdict != "unconfirmed":
        return verdict
    actual = record.get("actual") if isinstance(record.get("actual"), Mapping) else {}
    return f"{actual.get('error', 'crash')}, not reproduced alone"
