"""Registered known deviations (``known_deviations.toml``) and matching them against results.

An entry names a binding (a glob over binding ids, brackets literal: ``keras.losses.Huber[*]``),
optionally the spec, case ids (glob), dtype, mode, verdict and part (``value`` or ``gradient``:
where the finding is) it covers, with the explanation and the upstream issue link. A result
that is not ``conform`` and matches an entry becomes ``known``; an entry that matched
nothing in a run that exercised its binding is reported as stale.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

KNOWN_PATH = Path(__file__).with_name("known_deviations.toml")
_FIELDS = ("binding", "spec", "case", "dtype", "mode", "verdict", "part")


@dataclass(frozen=True)
class KnownDeviation:
    id: str
    binding: str
    explanation: str
    link: str
    spec: str = "*"
    case: str = "*"
    dtype: str = "*"
    mode: str = "*"
    verdict: str = "*"
    part: str = "*"

    def matches(self, record: dict, fields=_FIELDS) -> bool:
        values = {
            "binding": record["binding"],
            "spec": record["spec"],
            "case": record["case_id"],
            "dtype": record["dtype"],
            "mode": record.get("mode", "eager"),
            "verdict": record["verdict"],
            "part": part(record),
        }
        return all(fnmatchcase(str(values[f]), _literal_brackets(getattr(self, f))) for f in fields)

    def as_dict(self) -> dict:
        return {"id": self.id, "explanation": self.explanation, "link": self.link}


def _literal_brackets(pattern: str) -> str:
    """A glob whose ``[`` is a character, not a set: ``keras.losses.Huber[*]`` matches every
    Keras backend's binding."""
    return pattern.replace("[", "[[]")


def part(record: dict) -> str:
    """Where a result's finding is: its value, or (the value conforming) a gradient."""
    return "value" if record.get("value_verdict", record["verdict"]) != "conform" else "gradient"


def load_known(path: Path = KNOWN_PATH) -> list[KnownDeviation]:
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    entries = []
    for raw in data.get("deviation", []):
        missing = {"id", "binding", "explanation", "link"} - raw.keys()
        if missing:
            raise ValueError(f"{path}: entry {raw.get('id', '?')} lacks {sorted(missing)}")
        entries.append(KnownDeviation(**raw))
    return entries


def match(record: dict, known: list[KnownDeviation]) -> KnownDeviation | None:
    return next((k for k in known if k.matches(record)), None)


def stale(known: list[KnownDeviation], used: set[str], ran: Iterable[tuple]) -> list[dict]:
    """Entries that matched nothing although a case they describe ran in this run: ``ran``
    holds (binding, spec, case id, dtype, mode) of every result that was not ``unsupported``."""
    by_binding: dict[str, list[tuple]] = {}
    for r in ran:
        by_binding.setdefault(r[0], []).append(r)
    out = []
    for k in known:
        if k.id in used:
            continue
        patterns = [_literal_brackets(p) for p in (k.spec, k.case, k.dtype, k.mode)]
        if any(
            all(fnmatchcase(str(v), p) for v, p in zip(r[1:], patterns))
            for b, rows in by_binding.items()
            if fnmatchcase(b, _literal_brackets(k.binding))
            for r in rows
        ):
            out.append(k.as_dict())
    return out
