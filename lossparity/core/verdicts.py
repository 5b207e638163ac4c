"""The verdict vocabulary: one list, read by the runner, the conclusions, the diff and the report."""

from __future__ import annotations

#: Every verdict a result line can carry, in the order summaries show them.
VERDICTS = ("conform", "deviate", "error_mismatch", "unsupported", "crash", "timeout", "known")

#: Unexplained findings: a run that has one exits 1 (the order a report lists them in).
FINDINGS = ("crash", "timeout", "error_mismatch", "deviate")

#: Results that agree with the oracle, as such or as a registered known deviation.
CONFORMING = ("conform", "known")

#: Results that say nothing about the binding's correctness (no finding, nothing to explain).
SILENT = ("conform", "unsupported")

#: How far a value or gradient verdict is from conforming (the worst one wins).
RANK = {"conform": 0, "deviate": 1, "error_mismatch": 2}
