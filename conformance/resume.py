"""Resuming a run that was stopped: its results file is the checkpoint.

Every results line is whole (``reports/records.ResultsWriter``), so a run killed at any point
leaves a file of valid lines. ``lossparity run --resume`` keeps its meta line, its result
lines and the ``shrunk`` lines of its groups of findings, drops any conclusions (divergences,
agreement, summary: they are recomputed over all results at the end), and runs only the cases
that have no result yet. It refuses a file made
with another selection or other framework versions: the two halves would not be one run.
"""

from __future__ import annotations

from pathlib import Path

from lossparity.core.records import ResultsFileError, read_records
from lossparity.reports.merge import result_key


class ResumeError(ValueError):
    """The results file cannot be resumed by this run; the message says why, in one line."""


def load(path: Path, meta_now: dict) -> tuple[dict, list[dict]]:
    """The meta line and result lines of the results file at ``path`` (with the ``shrunk`` lines
    of its groups of findings: ``conformance/shrink.py``; a divergence's are recomputed at the
    end), checked against the meta line this run would write."""
    path = Path(path)
    if not path.is_file():
        raise ResumeError(f"--resume: there is no {path} to resume")
    try:
        records = read_records(path, validate=True)
    except ResultsFileError as exc:
        raise ResumeError(f"--resume: {exc}") from None
    if not records or records[0].get("kind") != "meta":
        raise ResumeError(f"--resume: {path} does not start with a meta line")
    meta = records[0]
    for name in ("seed", "examples", "dtypes", "modes", "device", "tf32", "frameworks", "losses", "versions"):
        if meta.get(name) != meta_now.get(name):
            raise ResumeError(
                f"--resume: {path} was made with {name} {_show(meta.get(name))}, this run has "
                f"{_show(meta_now.get(name))}; resume with the same selection and versions"
            )
    return meta, [
        r for r in records if r.get("kind") == "result" or (r.get("kind") == "shrunk" and "divergence" not in r)
    ]


def done(results: list[dict]) -> set[tuple]:
    """Keys of the cases that have a result (a binding skipped as unsupported is asked again)."""
    return {result_key(r) for r in results if r.get("kind", "result") == "result" and r["verdict"] != "unsupported"}


def _show(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in sorted(value.items())) or "-"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "all"
    return str(value)
