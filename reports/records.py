"""The results file: JSON Lines, one complete object per line, written and flushed line by line.

Line kinds (``"kind"``): ``meta`` (first line: versions, platform, seed, command line),
``result`` (one verdict of one binding on one case, dtype, mode and device),
``divergence`` (two bindings of one spec disagreeing on one case), ``agreement`` (one compared
pair of bindings: on how many cases they disagree), ``summary`` (last line of a run that
finished: counts and stale known deviations). The schema is
``reports/results.schema.json``; a run killed mid-way leaves a file whose every line is valid.

Arrays are stored exactly: ``{"dtype", "shape", "data"}`` with ``data`` flat, floats as
JSON numbers (Python's repr round-trips every float64, and so every float32) and the
non-finite values as the strings ``"nan"``, ``"inf"``, ``"-inf"``.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

import numpy as np

SCHEMA_VERSION = 1
#: Every verdict a result line can carry, in the order summaries show them.
VERDICTS = ("conform", "deviate", "error_mismatch", "unsupported", "crash", "timeout", "known")
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")


class ResultsFileError(ValueError):
    """A results file that is not one: names the file, line and problem in one line."""


def encode_array(a) -> dict:
    a = np.asarray(a)
    kind = "int64" if a.dtype.kind in "iub" else str(a.dtype)
    data = [(_float(x) if a.dtype.kind == "f" else int(x)) for x in a.ravel().tolist()]
    return {"dtype": kind, "shape": list(a.shape), "data": data}


def _float(x: float):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def decode_array(d: dict) -> np.ndarray:
    dtype = np.int64 if d["dtype"] == "int64" else np.float64
    return np.array([float(v) if isinstance(v, str) else v for v in d["data"]],
                    dtype=dtype).reshape(d["shape"])


def encode_value(v: Any):
    """Parameters and values for JSON: arrays encoded, numpy scalars unwrapped."""
    if isinstance(v, np.ndarray):
        return encode_array(v)
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return _float(v)
    return v


class ResultsWriter:
    """Appends one JSON object per line and flushes it, so a killed run leaves whole lines."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = open(self.path, "w", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._fh.write(json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def iter_records(path: Path, *, validate: bool = False) -> Iterator[dict]:
    """Yield the records of a results file; raise ResultsFileError on the first bad line.

    Reading never evaluates anything: lines are parsed with ``json.loads`` only.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsFileError(f"{path}: no such results file")
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ResultsFileError(f"{path}:{number}: not a JSON line ({exc.__class__.__name__})") from None
            if not isinstance(record, dict) or "kind" not in record:
                raise ResultsFileError(f"{path}:{number}: not a lossparity record (no 'kind')")
            if number == 1 and record["kind"] != "meta":
                raise ResultsFileError(f"{path}:1: the first line must be the run's 'meta' record")
            if validate:
                # Validate against the line kind's own definition: the same schema as the
                # top-level oneOf, without trying every kind on every line (ten times faster).
                kind = record["kind"] if record["kind"] in LINE_KINDS else None
                error = next(iter(_validator(kind).iter_errors(record)), None)
                if error is not None:
                    where = "/".join(map(str, error.absolute_path)) or "record"
                    message = " ".join(error.message.split())[:200]
                    raise ResultsFileError(f"{path}:{number}: {where}: {message}")
            yield record


def read_records(path: Path, *, validate: bool = True) -> list[dict]:
    return list(iter_records(path, validate=validate))


#: The kinds of results-file line, each a definition of the schema.
LINE_KINDS = ("meta", "result", "divergence", "agreement", "summary")


@cache
def _validator(definition: str | None = None):
    """The schema's validator: for a results line, or for one of its ``$defs`` (``explanation``)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    if definition is not None:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return jsonschema.Draft202012Validator(schema)


def schema_errors(record: dict, definition: str | None = None) -> list[str]:
    """Every way ``record`` breaks the schema (of a results line, or of a ``$defs`` entry)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or 'record'}: {e.message}"
            for e in _validator(definition).iter_errors(record)]


def write_all(path: Path, records: Iterable[dict]) -> None:
    writer = ResultsWriter(path)
    try:
        for r in records:
            writer.write(r)
    finally:
        writer.close()
