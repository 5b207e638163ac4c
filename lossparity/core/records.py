"""The results file: JSON Lines, one complete object per line, written and flushed line by line.

Line kinds (``"kind"``): ``meta`` (first line: versions, platform, seed, command line),
``result`` (one verdict of one binding on one case, dtype, mode and device),
``divergence`` (two bindings of one spec disagreeing on one case), ``agreement`` (one compared
pair of bindings: on how many cases they disagree), ``summary`` (last line of a run that
finished: counts and stale known deviations). The schema is
``lossparity/core/results.schema.json``; a run killed mid-way leaves a file whose every line is valid.

Arrays are stored exactly: ``{"dtype", "shape", "data"}`` with ``data`` flat, floats as
JSON numbers (Python's repr round-trips every float64, and so every float32) and the
non-finite values as the strings ``"nan"``, ``"inf"``, ``"-inf"``.

On disk the lines are gzip-compressed (``ResultsWriter``): a default run's 600 MB of JSON Lines
take about 45 MB, every array of every result kept (the lines repeat their keys, metadata,
explanations and call text, which deflate removes). Each batch of lines is flushed to a byte
boundary (``Z_SYNC_FLUSH``), so a run killed at any instant leaves a stream whose whole lines
all decompress; ``iter_records`` reads such a stream without its end marker, several gzip
members one after the other (a resumed run appends one), and plain JSON Lines (schema 1 and 2
files written before compression, or by hand) alike. ``zcat results.jsonl | head`` shows it.

A baseline (``baseline_record``) is a results file cut down to what ``lossparity diff`` compares:
verdicts, error figures, errors, known ids, and the findings' reproducers; no arrays.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import itertools
import json
import math
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import orjson

SCHEMA_VERSION = 2
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")


class ResultsFileError(ValueError):
    """A results file that is not one: names the file, line and problem in one line."""


def encode_array(a) -> dict:
    a = np.asarray(a)
    if a.dtype.kind in "iub":
        return {"dtype": "int64", "shape": list(a.shape), "data": [int(x) for x in a.ravel().tolist()]}
    kind = _DTYPE_NAMES.get(a.dtype) or _DTYPE_NAMES.setdefault(a.dtype, str(a.dtype))  # str() is slow
    data = a.ravel().tolist()
    if not np.isfinite(a).all():
        data = [_float(x) for x in data]
    return {"dtype": kind, "shape": list(a.shape), "data": data}


_DTYPE_NAMES: dict = {}


def _float(x: float):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def decode_array(d: dict) -> np.ndarray:
    # NumPy reads the strings "nan", "inf" and "-inf" as float() does, in C: no Python loop.
    dtype = np.int64 if d["dtype"] == "int64" else np.float64
    return np.array(d["data"], dtype=dtype).reshape(d["shape"])


def encode_value(v: Any):
    """Parameters and values for JSON: arrays encoded, numpy scalars unwrapped."""
    if isinstance(v, np.ndarray):
        return encode_array(v)
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return _float(v)
    return v


def json_line(record: dict) -> str:
    """A record as one results-file line (without its newline): strict JSON, compact."""
    return json.dumps(record, allow_nan=False, separators=(",", ":"))


#: The first two bytes of a gzip stream: how ``iter_records`` tells a compressed file from plain lines.
GZIP_MAGIC = b"\x1f\x8b"
#: deflate level of a results file: 6 takes a default run's 604 MB to 43 MB in about 6 s of CPU
#: spread over the run; a baseline, written once, takes 9.
LEVEL = 6


class ResultsWriter:
    """Appends one JSON object per line and flushes it, so a killed run leaves whole lines.

    ``compress`` (the default) writes one gzip member; appending to a file adds a member after
    it (a plain file is appended to in plain lines, so that one file is never both)."""

    def __init__(self, path: Path, *, append: bool = False, compress: bool = True, level: int = LEVEL):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if append and compress and self.path.is_file() and self.path.stat().st_size:
            with open(self.path, "rb") as fh:
                compress = fh.read(2) == GZIP_MAGIC
        mode = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        self._fd: int | None = os.open(self.path, mode, 0o644)
        # wbits 31: a gzip header and trailer around the deflate stream, so zcat and gzip read it.
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31) if compress else None

    def write(self, record: dict) -> None:
        # One write(2) per line, no userspace buffer: a process killed at any instant leaves
        # whole lines (the kernel finishes a write to a regular file once it has begun).
        self.write_lines(json_line(record))

    def write_lines(self, text: str) -> None:
        """Append lines already serialized (``json_line``), newline-separated, in one write."""
        raw = (text + "\n").encode("utf-8")
        if self._z is not None:
            # A sync flush ends the batch on a byte boundary: everything written so far decompresses.
            raw = self._z.compress(raw) + self._z.flush(zlib.Z_SYNC_FLUSH)
        self._write(raw)

    def _write(self, raw: bytes) -> None:
        data = memoryview(raw)
        while data:
            data = data[os.write(self._fd, data) :]

    def close(self) -> None:
        if self._fd is not None:
            if self._z is not None:
                self._write(self._z.flush(zlib.Z_FINISH))  # the gzip trailer: length and CRC
                self._z = None
            os.close(self._fd)
            self._fd = None


class Skimmed(dict):
    """A record read without its arrays' numbers (``iter_records(skim=True)``): each encoded
    array's ``data`` is empty; :meth:`whole` parses its line in full when they are wanted.
    ``at``: (batch, index in it) where ``map_batches`` read it, else None."""

    __slots__ = ("raw", "where", "checked", "at")

    def whole(self) -> dict:
        """The record with its arrays, each checked to fill its shape (ResultsFileError if not);
        checked once only: a line read with ``validate`` had its arrays checked then."""
        record = _parse_line(self.raw, self.where)
        if not isinstance(record, dict):
            raise ResultsFileError(f"{self.where}: not a lossparity record")
        if self.checked:
            return record
        problem = None if all(map(_fits, _arrays(record))) else _array_problem(record)
        if problem is not None:
            raise ResultsFileError(f"{self.where}: {problem}")
        return record


class Held:
    """A skimmed record kept by its line's bytes alone (``hold``): what a reader keeps of the
    thousands of lines it may show (a report's findings, divergences, plots' sample) is their
    bytes, about a third of the parsed record's memory. :meth:`whole` reads the record, as
    :meth:`Skimmed.whole`. A ``map_batches`` worker sends one by its place alone (``at``): the
    reading process still has the batch's lines, and takes the line's bytes from them."""

    __slots__ = ("raw", "where", "checked", "at")

    def __init__(self, raw: bytes, where: str, checked: bool, at: tuple | None = None) -> None:
        self.raw, self.where, self.checked, self.at = raw, where, checked, at

    whole = Skimmed.whole

    def __reduce__(self):
        if _IN_WORKER and self.at is not None:
            return _sent_line, (self.at, self.where, self.checked)
        return Held, (self.raw, self.where, self.checked)


def hold(record: dict) -> dict | Held:
    """What a reader keeps of ``record`` for later: a skimmed one's line (:class:`Held`), any other itself."""
    return Held(record.raw, record.where, record.checked, record.at) if isinstance(record, Skimmed) else record


#: In a ``map_batches`` worker (set by its initializer): a held line is sent by its place.
_IN_WORKER = False
#: In the reading process: the lines of each batch in flight, by the batch's first place.
_SENT: dict[int, list[bytes]] = {}


def _sent_line(at: tuple[int, int], where: str, checked: bool) -> Held:
    batch, index = at
    return Held(_SENT[batch][index], where, checked)


def _worker_init() -> None:
    global _IN_WORKER
    _IN_WORKER = True
    gc.disable()


def whole(record: dict | Held) -> dict:
    """``record`` with its arrays: a skimmed or held one parsed in full, any other as it is."""
    return record.whole() if isinstance(record, (Skimmed, Held)) else record


def iter_records(path: Path, *, validate: bool = False, skim: bool = False) -> Iterator[dict]:
    """Yield the records of a results file; raise ResultsFileError on the first bad line.

    Reading never evaluates anything: lines are parsed as JSON only (``_parse_line``). One
    line at a time: a file of a million lines streams through in bounded memory.

    ``validate``: each line is checked against its kind's schema (``_schema_error``) and each of
    its encoded arrays to fill its shape (``_array_problem``).

    ``skim``: yield each line that holds arrays as a :class:`Skimmed` record, its arrays' numbers
    dropped once read (and checked, with ``validate``): a report keeps thousands of records (the
    findings it shows, the plots' sample) and reads the numbers of those it shows only, again
    from the line's bytes (:meth:`Skimmed.whole`). The line is parsed whole all the same: orjson
    parses a line's numbers faster than a regular expression could cut them out.
    """
    path = Path(path)
    name = _one_line(str(path))  # a name with a line break must not break the one-line message
    first = True
    for number, raw in _numbered_lines(path, name):
        yield _record(raw, f"{name}:{number}", first, validate, skim)
        first = False
    if first:
        raise ResultsFileError(f"{name}: empty; a results file starts with the run's 'meta' record")


def _numbered_lines(path: Path, name: str) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of each line of a results file that is not blank, compressed or not."""
    if not path.is_file():
        raise ResultsFileError(f"{name}: no such results file")
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise ResultsFileError(f"{name}: cannot read: {exc.strerror}") from None
    with fh:
        lines = _gunzip_lines(fh, name) if fh.peek(2)[:2] == GZIP_MAGIC else fh
        for number, raw in enumerate(lines, 1):
            if raw and not raw.isspace():  # isspace: strip()'s whitespace, without a copy of the line
                yield number, raw


def _record(raw: bytes, where: str, first: bool, validate: bool, skim: bool, at: tuple | None = None) -> dict:
    """One line of a results file (``where``: "file:line") as ``iter_records`` yields it, or
    ResultsFileError; ``first``: whether it is the file's first line (which must be the meta)."""
    record = _parse_line(raw, where)
    if not isinstance(record, dict) or "kind" not in record:
        raise ResultsFileError(f"{where}: not a lossparity record (no 'kind')")
    if first and record["kind"] != "meta":
        raise ResultsFileError(f"{where}: the first line must be the run's 'meta' record")
    arrays: list | None = None
    if validate:
        # Validate against the line kind's own definition: the same schema as the
        # top-level oneOf, without trying every kind on every line (ten times faster).
        kind = record["kind"] if record["kind"] in LINE_KINDS else None
        error = _schema_error(kind, record)
        if error is not None:
            at = _one_line("/".join(map(str, error.absolute_path))) or "record"
            message = " ".join(error.message.split())[:200]
            raise ResultsFileError(f"{where}: {at}: {message}")
        arrays = _arrays(record)
        problem = None if all(map(_fits, arrays)) else _array_problem(record)
        if problem is not None:
            raise ResultsFileError(f"{where}: {problem}")
    if skim:
        if arrays is None:
            arrays = _arrays(record)
        if arrays:
            # The numbers go once read and checked: a record kept by a reader (a report
            # keeps its findings' and plots' lines) holds its line's bytes, not its floats.
            for node in arrays:
                node["data"] = []
            record = Skimmed(record)
            record.raw, record.where, record.checked, record.at = raw, where, validate, at
    return record


#: Lines of a batch that ``map_batches`` hands to one worker at most, and their bytes at most.
BATCH_LINES = 4096
BATCH_BYTES = 16 << 20


T = TypeVar("T")


def map_batches(
    path: Path,
    fold: Callable[[Iterator[dict], int], T],
    *,
    validate: bool = False,
    skim: bool = False,
    workers: int = 1,
) -> Iterator[T]:
    """``fold(records, before)`` of each batch of a results file's lines, in file order: the
    records of the batch as ``iter_records(path, validate=validate, skim=skim)`` yields them
    (the same errors, raised in file order: the first bad line is the one named) and how many
    records come before it in the file. ``fold`` is a module-level function whose result pickles.

    ``workers``: processes that parse, check and fold the batches (``lossparity report`` gives
    every core: ``-j auto``), while this process decompresses the file, cuts it into batches of
    BATCH_LINES lines and gathers what they fold to. A file of one batch, or ``workers`` 1, is
    read in this process. At most two batches a worker are in flight, so memory does not grow
    with the file. The cyclic garbage collector is off while the lines are read, here and in
    the workers: records are trees, freed by their reference counts, and the collector's passes
    over what a reader keeps were a fifth of a report's time."""
    path = Path(path)
    name = _one_line(str(path))
    batches = _batches(path, name)
    with _no_gc():
        first = next(batches, None)
        if first is None:
            raise ResultsFileError(f"{name}: empty; a results file starts with the run's 'meta' record")
        second = next(batches, None)
        if workers <= 1 or second is None:
            for batch in itertools.chain([first], [second] if second is not None else [], batches):
                yield _fold_batch(fold, name, batch, validate, skim)
            return
        import multiprocessing

        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with context.Pool(workers, initializer=_worker_init) as pool:
            pending: collections.deque = collections.deque()
            try:
                for batch in itertools.chain([first, second], batches):
                    _SENT[batch[0]] = batch[2]  # before it is sent: its answer is unpickled as it comes
                    pending.append((batch[0], pool.apply_async(_fold_batch, (fold, name, batch, validate, skim))))
                    if len(pending) >= 2 * workers:
                        yield _answer(*pending.popleft())
                while pending:
                    yield _answer(*pending.popleft())
            finally:
                for before, _ in pending:
                    _SENT.pop(before, None)


def _answer(before: int, result):
    try:
        return result.get()
    finally:
        del _SENT[before]


def _batches(path: Path, name: str) -> Iterator[tuple[int, list[int], list[bytes]]]:
    """A results file's non-blank lines in batches: (records before the batch, line numbers, lines)."""
    before, numbers, lines, size = 0, [], [], 0
    for number, raw in _numbered_lines(path, name):
        numbers.append(number)
        lines.append(raw)
        size += len(raw)
        if len(lines) == BATCH_LINES or size >= BATCH_BYTES:
            yield before, numbers, lines
            before, numbers, lines, size = before + len(lines), [], [], 0
    if lines:
        yield before, numbers, lines


def _fold_batch(fold, name: str, batch: tuple, validate: bool, skim: bool):
    before, numbers, lines = batch
    records = (
        _record(raw, f"{name}:{number}", before + i == 0, validate, skim, (before, i))
        for i, (number, raw) in enumerate(zip(numbers, lines))
    )
    return fold(records, before)


@contextlib.contextmanager
def _no_gc():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def raw_lines(path: Path) -> Iterator[bytes]:
    """The lines of a results file as written (bytes, without their newlines), compressed or
    not: for a test or a tool that compares lines byte for byte. Read as far as it is written."""
    with open(path, "rb") as fh:
        if fh.peek(2)[:2] == GZIP_MAGIC:
            yield from _gunzip_lines(fh, _one_line(str(path)))
        else:
            for line in fh:
                yield line.rstrip(b"\n")


def _gunzip_lines(fh, name: str, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The lines of a gzip stream (each with its newline, the last maybe without), read in
    chunks: members one after another, the last one maybe without its end (a killed run)."""
    z, pending = zlib.decompressobj(31), b""
    while data := fh.read(chunk):
        while data:
            try:
                out = z.decompress(data)
            except zlib.error as exc:
                raise ResultsFileError(f"{name}: not a readable gzip stream ({_one_line(str(exc))[:80]})") from None
            if z.eof:  # a member ended: what follows is the next member (or padding, which gzip ignores)
                data, z = z.unused_data.lstrip(b"\0"), zlib.decompressobj(31)
            else:
                data = b""
            if out:
                lines = (pending + out).split(b"\n")
                pending = lines.pop()
                yield from lines
    if pending:
        yield pending  # a line cut short: its parse fails and names it


def _reject_constant(token: str):
    raise ValueError(f"{token} is not JSON")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(f"{token} is out of the range of a float64")
    return value


#: What may hide a token the writer never writes: NaN/Infinity, a float that overflows (a
#: 3-digit exponent or 309 digits), an escaped surrogate. Only such lines are parsed again strictly.
_SUSPECT = re.compile(rb"NaN|Infinity|[eE][+-]?\d{3}|\d{309}|\\u[dD][89a-fA-F]")


def _parse_line(raw: bytes, where: str):
    """One line as JSON, strictly: UTF-8, no NaN/Infinity tokens or numbers that overflow a
    float64 (the writer stores those as the strings "nan", "inf", "-inf"), no nesting deeper than
    the parser's stack, no lone surrogates (which no UTF-8 file can hold, nor an HTML page).

    orjson reads a line first: several times faster than ``json`` (a report may read a million
    lines) and as strict, for it refuses invalid UTF-8, NaN/Infinity, floats that overflow, lone
    surrogates and nesting past 1024 itself. A line it refuses takes the ``json`` path below,
    which decides and words the error as before. (orjson reads an integer beyond 64 bits as a
    float; no line the writer writes holds one, and the schema takes 1e30 as an integer too.)"""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        text = raw.decode("utf-8")
        record = json.loads(text)
        suspect = _SUSPECT.search(raw) is not None
        if suspect:
            record = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnicodeError as exc:
        raise ResultsFileError(f"{where}: not a JSON line ({exc.__class__.__name__})") from None
    except RecursionError:
        raise ResultsFileError(f"{where}: not a JSON line (nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, a rejected number, an integer of too many digits
        name = exc.__class__.__name__ if isinstance(exc, json.JSONDecodeError) else str(exc)[:80]
        raise ResultsFileError(f"{where}: not a JSON line ({_one_line(name)})") from None
    if suspect:
        try:
            json.dumps(record, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ResultsFileError(f"{where}: not a JSON line (a lone surrogate escape)") from None
    return record


def _array_problem(record: dict) -> str | None:
    """The first encoded array (``{"dtype", "shape", "data"}``) whose data does not fill its
    shape, which the schema cannot say and every reader of an array relies on; None if none.
    Walks the record without recursion: a line may nest as deep as ``json.loads`` allows."""
    stack: list[tuple[tuple, Any]] = [((), record)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, list):  # only what may hold an array: not a list's every number
            stack.extend(((*where, i), v) for i, v in enumerate(node) if isinstance(v, (list, dict)))
        elif isinstance(node, dict):
            shape, data = node.get("shape"), node.get("data")
            if (
                node.keys() == {"dtype", "shape", "data"}
                and isinstance(shape, list)
                and isinstance(data, list)
                and all((type(n) is int or type(n) is float and n.is_integer()) and n >= 0 for n in shape)
            ):
                if math.prod(int(n) for n in shape) != len(data):
                    at = _one_line("/".join(map(str, where)))[:200] or "record"
                    small = len(shape) <= 8 and max(shape, default=0) < 10**12
                    shown = str([int(n) for n in shape]) if small else "[...]"
                    return f"{at}: {len(data)} numbers do not fill an array of shape {shown}"
            else:
                stack.extend(((*where, k), v) for k, v in node.items())
    return None


def _one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped, for a one-line message."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def read_records(path: Path, *, validate: bool = True) -> list[dict]:
    return list(iter_records(path, validate=validate))


#: The kinds of results-file line, each a definition of the schema.
LINE_KINDS = ("meta", "result", "divergence", "agreement", "summary")


def _schema_error(kind: str | None, record: dict):
    """The first way ``record`` breaks the schema of its line kind (``kind``; None: the whole
    schema), or None. A million lines do not each go through jsonschema (about a millisecond a
    line): the compiled check (``_check``) decides, and only a line it refuses goes to jsonschema,
    for the error's path and wording."""
    try:
        if _check(kind)(record):
            return None
    except RecursionError:  # nesting deeper than Python recurses: jsonschema decides
        pass
    return next(iter(_validator(kind).iter_errors(record)), None)


def _arrays(record) -> list:
    """Every encoded array (``{"dtype", "shape", "data"}``) in ``record``."""
    if type(record) is dict and record.keys() == _ARRAY_KEYS:
        return [record]
    found: list = []
    try:
        _arrays_in(record, found)
    except RecursionError:  # nesting deeper than Python recurses (in a field the schema leaves free)
        return _arrays_deep(record)
    return found


def _arrays_in(node, found: list) -> None:
    # Recursive, only into containers: a stack of every value was twice as slow.
    for v in node.values() if type(node) is dict else node:
        t = type(v)
        if t is dict:
            if v.keys() == _ARRAY_KEYS:
                found.append(v)
            else:
                _arrays_in(v, found)
        elif t is list:
            _arrays_in(v, found)


def _arrays_deep(record) -> list:
    """``_arrays`` without recursion, for a record nested past Python's recursion limit."""
    found, stack = [], [record]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            if node.keys() == _ARRAY_KEYS:
                found.append(node)
            else:
                stack.extend(node.values())
        elif type(node) is list:
            stack.extend(x for x in node if type(x) is dict or type(x) is list)
    return found


_ARRAY_KEYS = {"dtype", "shape", "data"}


def _fits(node: dict) -> bool:
    """Whether an encoded array's data fills its shape of non-negative ints (else
    ``_array_problem`` decides and names what is wrong)."""
    shape, data = node["shape"], node["data"]
    return (
        type(shape) is list
        and type(data) is list
        and all(type(n) is int and n >= 0 for n in shape)
        and math.prod(shape) == len(data)
    )


# -- the schema compiled to checks -----------------------------------------------------------

#: The forms (keys and their values' types) of one schema object whose plans are kept at most.
_PLANS = 4096
_ANNOTATIONS = frozenset({"description", "title", "$schema", "$id", "$defs"})
_TYPES = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
    # jsonschema's integer: an int, or a float with no fraction (2.0); never a bool
    "integer": lambda v: type(v) is int or (type(v) is float and v.is_integer()),
    "number": lambda v: type(v) is int or type(v) is float,
}

#: The Python types of each JSON type (an integral float is an integer too: tested apart).
_PY_TYPES = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),),
    "integer": (int,), "number": (int, float),
}  # fmt: skip


@cache
def _check(definition: str | None) -> Any:
    """A function ``value -> bool``: whether ``value`` is valid under the schema (a results line)
    or one of its ``$defs``, as jsonschema decides it. The schema is compiled once into nested
    closures of type tests, so a valid line (nearly all) costs about one Python call per object of
    it and no jsonschema; an invalid one is given to jsonschema for its error's path and wording.

    Compiled keywords: type, enum/const of strings, properties, required, additionalProperties,
    items, minItems, maxItems, minimum, oneOf, anyOf, $ref to ``#/$defs/...`` (annotations are
    skipped). A subschema with any other keyword (an enum of numbers: JSON equality, where 1 ==
    1.0 and true != 1) is decided by jsonschema itself, so nothing the compiler does not know is
    guessed.

    Where a subschema is decided by its value's Python type alone (``_by_type``: a string, a
    number, ``#/$defs/number``'s number), an object's property of it is tested in the object's
    own loop, with no call, and a list of such items (an array's ``data``, its ``shape``) by the
    set of its items' types, in C: a list holding any other type ("nan", an integral float for an
    integer) is tested item by item."""
    schema = json.loads(SCHEMA_PATH.read_text())
    defs = schema["$defs"]
    compiled: dict[str, Any] = {}

    compiling: set[str] = set()

    def ref(name: str):
        if name in compiled:
            return compiled[name]
        if name not in compiling:  # compiled now, so a reference costs no call of its own
            compiling.add(name)
            return compiled.setdefault(name, compile_(defs[name]))
        cell: list = []

        def check(v):  # a definition that refers to itself: resolved at the first call
            if not cell:
                cell.append(compiled[name])
            return cell[0](v)

        return check

    def shortcut(node: dict) -> tuple[frozenset | None, bool]:
        """How ``oneOf`` may skip an option without calling it: (the keys an object needs to
        be valid under it, or None; whether it takes only objects)."""
        while set(node) - _ANNOTATIONS == {"$ref"} and node["$ref"].startswith("#/$defs/"):
            node = defs[node["$ref"].removeprefix("#/$defs/")]
        required = frozenset(node["required"]) if "required" in node else None
        return required, node.get("type") == "object"

    def by_type(node: dict, seen: frozenset = frozenset()) -> tuple[frozenset, Any]:
        """(types, least): every value whose Python type is in ``types`` (and, where ``least`` is
        not None, a number no less than ``least``) is valid under ``node``; other values may be
        too (an integral float for an integer, a string of an enum), which ``node``'s check decides."""
        keys = set(node) - _ANNOTATIONS
        if keys == {"$ref"} and node["$ref"].startswith("#/$defs/"):
            name = node["$ref"].removeprefix("#/$defs/")
            return by_type(defs[name], seen | {name}) if name not in seen else (frozenset(), None)
        if keys == {"anyOf"}:  # the union of its options' types, where none has a minimum
            found = [by_type(s, seen) for s in node["anyOf"]]
            if any(least is not None for _, least in found):
                return frozenset(), None
            return frozenset().union(*(types for types, _ in found)), None
        if "type" not in node or not keys <= {"type", "minimum"}:
            return frozenset(), None
        names = [node["type"]] if isinstance(node["type"], str) else node["type"]
        types = frozenset(t for n in names for t in _PY_TYPES[n])
        least = node.get("minimum")
        if least is not None and not types <= {int, float}:
            return frozenset(), None  # a minimum over numbers among other types: not by type alone
        return types, least

    def compile_(node: dict):
        keys = set(node) - _ANNOTATIONS
        known = {"type", "enum", "const", "properties", "required", "additionalProperties", "items"}
        known |= {"minItems", "maxItems", "minimum", "oneOf", "anyOf", "$ref"}
        literal = [x for k in ("enum", "const") if k in node for x in (node[k] if k == "enum" else [node[k]])]
        if keys - known or not all(type(x) is str for x in literal):
            import jsonschema

            return jsonschema.Draft202012Validator({"$defs": defs, **node}).is_valid
        tests = []
        type_test = None
        if "type" in node:
            names = [node["type"]] if isinstance(node["type"], str) else node["type"]
            if len(names) == 1:
                type_test = _TYPES[names[0]]
            else:  # a tuple of Python types, one test in C; an integral float where integer is allowed
                exact = tuple(t for n in names for t in _PY_TYPES[n])
                integral = "integer" in names and "number" not in names
                type_test = lambda v: type(v) in exact or (integral and type(v) is float and v.is_integer())  # noqa: E731
        # An object's or list's own check tests its type itself, where the node has no other test.
        fused = type_test is not None and (
            (keys <= {"type", "properties", "required", "additionalProperties"} and type_test({}))
            or (keys <= {"type", "items", "minItems", "maxItems"} and type_test([]))
        )
        if type_test is not None and not fused:
            tests.append(type_test)
        if "enum" in node:
            allowed = frozenset(node["enum"])
            tests.append(lambda v: type(v) is str and v in allowed)
        if "const" in node:
            const = node["const"]
            tests.append(lambda v: type(v) is str and v == const)
        if "$ref" in node:
            tests.append(ref(node["$ref"].removeprefix("#/$defs/")))
        if keys & {"properties", "required", "additionalProperties"}:
            properties = node.get("properties", {})
            props = {k: compile_(s) for k, s in properties.items()}
            # properties decided by their value's type alone: tested in the loop, no call
            plain = {}
            for k, s in properties.items():
                types, least = by_type(s)
                if types and least is None:
                    plain[k] = types
            required = frozenset(node.get("required", ()))
            extra = node.get("additionalProperties", True)
            other = None if extra is True else (lambda v: False) if extra is False else compile_(extra)
            empty: frozenset = frozenset()
            other_plain = by_type(extra) if isinstance(extra, dict) else (empty, None)
            other_plain = other_plain[0] if other_plain[1] is None else empty
            not_dict = type_test if fused else (lambda v: True)

            def plan(v: dict) -> tuple | None:
                """The checks ``v`` needs beyond its keys and their values' types, as (key,
                check) pairs; None where its keys or those types already break ``node``."""
                if not required <= v.keys():
                    return None
                calls = []
                for k, x in v.items():
                    fn = props.get(k)
                    if fn is None:
                        if other is None or type(x) in other_plain:
                            continue
                        fn = other
                    elif type(x) in plain.get(k, empty):
                        continue
                    calls.append((k, fn))
                return tuple(calls)

            # An object's keys and its values' types (built in C) decide all but the calls its
            # plan lists: a results file's objects take a few dozen such forms, planned once each.
            plans: dict[tuple, tuple | None] = {}

            def obj(v):
                if type(v) is not dict:
                    return not_dict(v)
                form = (*v, *map(type, v.values()))
                calls = plans.get(form, False)
                if calls is False:
                    calls = plan(v)
                    if len(plans) < _PLANS:
                        plans[form] = calls
                if calls is None:
                    return False
                for k, fn in calls:
                    if not fn(v[k]):
                        return False
                return True

            tests.append(obj)
        if keys & {"items", "minItems", "maxItems"}:
            item = compile_(node["items"]) if "items" in node else None
            item_types, item_least = by_type(node["items"]) if "items" in node else (frozenset(), None)
            low, high = node.get("minItems", 0), node.get("maxItems")
            not_list = type_test if fused else (lambda v: True)

            def arr(v):
                if type(v) is not list:
                    return not_list(v)
                if len(v) < low or (high is not None and len(v) > high):
                    return False
                if item is None:
                    return True
                # The items' types in C: a list of numbers (an array's data) costs no call per number.
                if (
                    item_types
                    and set(map(type, v)) <= item_types
                    and (item_least is None or not v or min(v) >= item_least)
                ):
                    return True
                return all(map(item, v))

            tests.append(arr)
        if "minimum" in node:
            least = node["minimum"]
            tests.append(lambda v: not (type(v) is int or type(v) is float) or v >= least)
        if "oneOf" in node:
            options = [(compile_(s), *shortcut(s)) for s in node["oneOf"]]

            def one(v):
                found = 0
                is_dict = type(v) is dict
                for o, required, dict_only in options:
                    # an option that cannot hold: an object without its required keys, or not an object
                    if (required is not None and not required <= v.keys()) if is_dict else dict_only:
                        continue
                    found += o(v)
                return found == 1

            tests.append(one)
        if "anyOf" in node:
            options = [compile_(s) for s in node["anyOf"]]

            def some(v):
                for o in options:
                    if o(v):
                        return True
                return False

            tests.append(some)
        if not tests:
            return (lambda v: True) if type_test is None else type_test
        check = tests[0]
        for test in tests[1:]:  # nested ``and``s: no generator per value
            check = (lambda a, b: lambda v: a(v) and b(v))(check, test)
        return check

    return compile_(schema if definition is None else {"$ref": f"#/$defs/{definition}"})


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
    return [
        f"{'/'.join(map(str, e.absolute_path)) or 'record'}: {e.message}"
        for e in _validator(definition).iter_errors(record)
    ]


#: What a baseline keeps of a result line: the identity, the verdicts, the error figures (a
#: finding's summary too), the known ids and a finding's reproducer (``lossparity diff``'s classes
#: and its report); not the arrays, which a baseline is never compared on.
_BASELINE_RESULT = (
    "kind", "spec", "binding", "framework", "dtype", "device", "mode", "case_id", "origin", "params",
    "tolerance", "value_verdict", "verdict", "rerun",
)  # fmt: skip
#: The verdicts whose line keeps its summaries, known deviation and reproducer in a baseline.
_QUIET = ("conform", "unsupported")


def baseline_record(record: dict) -> dict | None:
    """``record`` as a baseline keeps it (``lossparity merge --baseline``), or None where a
    baseline has no such line (divergence and agreement lines: ``merge`` recomputes nothing
    from a baseline, which holds no values to compare).

    A result keeps its identity, verdicts and error figures (a quiet one's ULP errors only,
    ``_figures``); its outcomes only as errors (an
    error's class and message; a value outcome is null: ``inputs`` is empty, ``expected`` null);
    a finding keeps its summaries, known deviation and reproducer too. Meta (marked
    ``"form": "baseline"``), shrunk and summary lines are kept whole. ``record`` may be
    :class:`Skimmed` (``merge --baseline`` reads lines so): it is read whole where what a
    baseline keeps of it holds an array."""
    kind = record.get("kind")
    if kind == "meta":
        return {**record, "form": "baseline"}
    if kind in ("divergence", "agreement"):
        return None
    if kind != "result":
        return whole(record)
    out = _baseline_result(record)
    if isinstance(record, Skimmed) and _holds_array(out):
        out = _baseline_result(record.whole())  # an array among what it keeps (a weight): its numbers
    return out


def _baseline_result(record: dict) -> dict:
    finding = record.get("verdict") not in _QUIET
    # A quiet result's origin (left empty) and tolerance, which diff does not read, go too (a
    # default run's 149,295 conforming lines are most of a baseline).
    keep = _BASELINE_RESULT if finding else [k for k in _BASELINE_RESULT if k != "tolerance"]
    out = {k: record[k] for k in keep if k in record}
    if not finding and "origin" in out:
        out["origin"] = {}
    out.update(inputs={}, expected=None, actual=_error_only(record.get("actual")))
    out["errors"] = _figures(record.get("errors"), finding)
    grads = record.get("gradients")
    if isinstance(grads, dict):
        out["gradients"] = {
            name: {
                "expected": None,
                "actual": _error_only(g.get("actual")),
                "verdict": g.get("verdict"),
                "errors": _figures(g.get("errors"), finding, exact_ulp=False),
            }
            for name, g in grads.items()
        }
    else:
        out["gradients"] = grads
    out["known"] = record.get("known") if finding else None
    # A finding's reproducer; not a known result's: its entry in known_deviations.toml has one,
    # and diff reads none (a sixth of a default run's baseline was known results' reproducers).
    out["reproducer"] = record.get("reproducer") if finding and record.get("verdict") != "known" else None
    return out


def _holds_array(node) -> bool:
    """Whether an encoded array (``{"dtype", "shape", "data"}``) is anywhere in ``node``."""
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.keys() == _ARRAY_KEYS:
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _error_only(outcome):
    """An outcome without its value: an error's fields, or None for a value."""
    if isinstance(outcome, dict) and "error" in outcome:
        return {k: v for k, v in outcome.items() if k != "stderr"}
    return None


def _figures(errors, finding: bool, *, exact_ulp: bool = True):
    """Error figures without the arrays (a rounding model's bound); a finding's whole, with its
    summary text; a quiet result's only as far as diff reads them: its ULP error and the count of
    its mismatched elements, not its summary, absolute and relative errors nor index (their digits,
    which deflate cannot shrink, were a third of a baseline: a default run's is 8.9 MB without
    them, 11.4 MB with them to three digits). ``max_ulp`` stays exact where diff's value drift
    compares it (a value's, ``exact_ulp``); a gradient's, which diff does not read, is to three
    significant digits."""
    if not isinstance(errors, dict):
        return errors
    if finding:
        return {k: v for k, v in errors.items() if k != "rounding_bound"}
    return {
        k: float(f"{v:.3g}") if k == "max_ulp" and not exact_ulp and type(v) is float else v
        for k, v in errors.items()
        if k not in _QUIET_DROPS
    }


#: What a quiet result's error figures lose in a baseline (``_figures``).
_QUIET_DROPS = frozenset({"rounding_bound", "summary", "max_abs", "max_rel", "index"})


def is_baseline(meta: dict) -> bool:
    return meta.get("form") == "baseline"


def write_all(path: Path, records: Iterable[dict], *, level: int = LEVEL) -> None:
    """Write ``records`` as a new (compressed) results file."""
    writer = ResultsWriter(path, level=level)
    try:
        batch: list[str] = []
        for r in records:
            batch.append(json_line(r))
            if len(batch) == 512:  # a flush per batch, not per line: deflate sees more at once
                writer.write_lines("\n".join(batch))
                batch = []
        if batch:
            writer.write_lines("\n".join(batch))
    finally:
        writer.close()
