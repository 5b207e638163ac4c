"""Registered known deviations (``known_deviations.toml``): reading and checking them, matching
them against results by place and symptom, and judging each one after a run.

An entry (a ``[[deviation]]`` table) names

- its **place**: ``binding``, a glob over binding ids whose brackets are literal
  (``keras.losses.Huber[*]`` is every Keras backend's), or several joined by ``|`` (any of them:
  ``keras.losses.X[jax]|keras.losses.X+channels_first[jax]``); and optionally ``spec``, ``case`` (case
  ids), ``dtype``, ``mode`` (globs, default ``*``), ``verdict`` (a glob over ``deviate``,
  ``error_mismatch``, ``crash``, ``timeout``) and ``part`` (``value``, ``gradient`` (any), one
  gradient such as ``gradient:weight``, or ``*``); and ``params``, conditions on the case's
  parameters (``"label_smoothing > 0"``; several joined by `` and ``; each a parameter of the
  entry's specs, an operator of ``>``, ``>=``, ``<``, ``<=``, ``==``, ``!=`` and a number: a
  result whose parameter is unset or not a number is outside the place);
- its **symptom** (required): what the finding looks like, see ``conformance/symptoms.py``;
- the ``explanation``, and an upstream ``link``; an entry without an upstream report carries a
  ``reproducer`` instead: a ``lossparity explain ...`` command line that shows the deviation.

**Matching.** A result that is not ``conform`` is split into its failing parts (its value, each
failing gradient: ``symptoms.failing_parts``). An entry explains a part when the result lies in
its place (``verdict`` and ``part`` read of the part) and the part shows its symptom. Among the
entries that explain a part, the **most specific** one is chosen, never the first in the file:
the one whose place covers the fewest cells (``coverage``: (binding, case, dtype, mode, part)
combinations, counted when the file is loaded against the real bindings, their dtypes, their
adapters' modes and the specs' cases, the generated ones as ``GENERATED`` lists them), then the
narrowest symptom (``symptoms.strictness``), then the
smaller id (so that reordering the file never changes a verdict). A result becomes ``known``
only when every failing part is explained, by one entry or several: its ``known`` field says
which entry explains which part (``parts``). One with some parts explained and others not
keeps its verdict and records the explained ones in ``partly_known``.

**Checked when loaded** (``load_known``): every field known and of the right type; the binding
glob matches a binding, with the spec glob a binding of that spec; the spec, case, dtype, mode
and verdict globs each match a real value (of the entry's specs, bindings and adapters); part is
``value``, ``gradient`` or ``*``; the symptom well formed and possible there (a crash symptom
only with a crash verdict, a gradient never ``no_error``); ids unique; a ``link`` or a
``reproducer`` present; no two entries the same place and symptom. A bad entry is a
``KnownError`` naming the file, the entry and the problem in one line.

**After a run** (``judge``) every entry is ``used`` (it explained a part of some result),
``stale`` (a case of its place ran and it explained nothing), or ``not run`` (no case of its
place ran: a restricted run, an opt-in mode).
"""

from __future__ import annotations

import math
import re
import shlex
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path

from lossparity.conformance.symptoms import (
    VALUE_ONLY,
    VERDICT_OF,
    Part,
    Symptom,
    SymptomError,
    failing_parts,
    fits,
    parse,
    strictness,
    text,
)
from lossparity.core.dtypes import DTYPES
from lossparity.core.verdicts import FINDINGS

KNOWN_PATH = Path(__file__).with_name("known_deviations.toml")
PLACE = ("binding", "spec", "case", "dtype", "mode", "verdict", "part")
FIELDS = ("id", *PLACE, "params", "symptom", "explanation", "link", "reproducer")
PARTS = ("value", "gradient", "*")
#: The arguments a part ``gradient:<name>`` may name: what a run differentiates.
GRADIENT_ARGUMENTS = ("input", "target", "var", "input2", "positive", "negative", "weight", "pos_weight")
#: The generated case ids an entry's case glob is checked and counted against: the default
#: run's (seed 0, 100 examples), and the further cases of a structure bucket (``gen-0-b1-7``;
#: ``conformance/generate.py``'s ``more_cases``, buckets beyond its four for bindings that
#: take none of them; bucket 8 among them, which tops the channels-first bindings up to 100
#: batched cases).
GENERATED = tuple(f"gen-0-{i}" for i in range(100)) + tuple(f"gen-0-b{b}-{i}" for b in range(9) for i in range(100))
_ID = re.compile(r"[a-z0-9][a-z0-9.-]*\Z")
#: One condition of ``params``: a parameter, an operator and a number.
_CONDITION = re.compile(r"\s*([A-Za-z_]\w*)\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\Z")
_OPERATORS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _conditions(text: str) -> tuple[tuple[str, str, float], ...]:
    """``params`` read: (parameter, operator, number) for each condition joined by ``and``."""
    out = []
    for part in text.split(" and "):
        m = _CONDITION.match(part)
        if m is None:
            raise KnownError(f"params: {part.strip()!r} is not 'parameter <op> number' (op: {', '.join(_OPERATORS)})")
        out.append((m.group(1), m.group(2), float(m.group(3))))
    return tuple(out)


#: The findings an entry can explain: never a crash or timeout that its rerun alone did not repeat.
MATCHABLE = tuple(v for v in FINDINGS if v != "unconfirmed")


class KnownError(ValueError):
    """A known-deviations file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class KnownDeviation:
    id: str
    binding: str
    explanation: str
    symptom: tuple[Symptom, ...]
    link: str = ""
    reproducer: str = ""
    spec: str = "*"
    case: str = "*"
    dtype: str = "*"
    mode: str = "*"
    verdict: str = "*"
    part: str = "*"
    params: str = ""
    #: the (binding, case, dtype, mode, part) cells its place covers; set by ``load_known``
    coverage: float = field(default=math.inf, compare=False)

    @cached_property
    def rank(self) -> tuple:
        """Smaller is more specific: the entry chosen where several explain a part."""
        return (self.coverage, strictness(self.symptom), self.id)

    @cached_property
    def every_generated(self) -> bool:
        """Whether the entry's case glob covers every generated case (``*``, ``gen-*``)."""
        return all(fnmatchcase(c, self.case) for c in GENERATED)

    def holds(self, binding: str, spec: str, dtype: str, mode: str) -> bool:
        """Whether results of this binding, spec, dtype and mode can lie in the entry's place
        (what ``in_place`` asks of them, the case, verdict and part aside)."""
        return (
            binding_matches(binding, self.binding)
            and fnmatchcase(spec, self.spec)
            and fnmatchcase(dtype, self.dtype)
            and fnmatchcase(mode, self.mode)
        )

    def in_place(self, record: Mapping, part: Part, any_case: bool = False) -> bool:
        """Whether the result's part lies in the entry's place (``any_case``: whatever its case)."""
        if not self.holds(*_place(record)):
            return False
        values = (
            (record.get("case_id"), "*" if any_case else self.case),
            (part.verdict, self.verdict),
            (part.name, "gradient:*" if self.part == "gradient" else self.part),
        )
        return all(fnmatchcase(str(v), p) for v, p in values) and self.params_hold(record.get("params"))

    def params_hold(self, params) -> bool:
        """Whether the case's parameters meet the entry's ``params`` conditions (none: always)."""
        if not self.params:
            return True
        given = params if isinstance(params, Mapping) else {}
        for name, op, number in _conditions(self.params):
            value = given.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return False
            if not _OPERATORS[op](value, number):
                return False
        return True

    def explains(self, record: Mapping, part: Part, any_case: bool = False) -> bool:
        return self.in_place(record, part, any_case) and fits(self.symptom, part)

    def as_dict(self) -> dict:
        """What a result's ``known`` field says of the entry."""
        out = {"id": self.id, "explanation": self.explanation, "link": self.link, "symptom": text(self.symptom)}
        if self.reproducer:
            out["reproducer"] = self.reproducer
        return out


def binding_matches(binding: str, pattern: str) -> bool:
    """Whether a binding id lies in an entry's binding glob (``|``: any of several)."""
    return any(fnmatchcase(binding, _literal_brackets(p)) for p in pattern.split("|"))


def _literal_brackets(pattern: str) -> str:
    """A glob whose ``[`` is a character, not a set: ``keras.losses.Huber[*]`` matches every
    Keras backend's binding. Only binding globs: case globs may use sets (``edge-[sz]*``)."""
    return pattern.replace("[", "[[]")


# -- matching ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """Which entry explains each failing part of a result (None: none does)."""

    parts: dict[str, KnownDeviation | None]

    @property
    def complete(self) -> bool:
        return bool(self.parts) and all(e is not None for e in self.parts.values())

    @property
    def entries(self) -> list[KnownDeviation]:
        """The entries that explain a part, in part order, each once."""
        return list({e.id: e for e in self.parts.values() if e is not None}.values())

    def known(self, verdict: str) -> dict:
        """The result's ``known`` field: the first entry's words (as before several could
        explain one result), every entry, which part each explains, the result's own verdict."""
        entries = self.entries
        return {
            **entries[0].as_dict(),
            "verdict": verdict,
            "entries": [e.as_dict() for e in entries],
            "parts": {p: e.id for p, e in self.parts.items()},
        }

    def partly(self) -> dict:
        """The ``partly_known`` field: part -> the entry that explains it, or None."""
        return {p: (e.id if e else None) for p, e in self.parts.items()}


def match(record: Mapping, known: Iterable[KnownDeviation], *, any_case: bool = False) -> Match:
    """For each failing part of ``record``, the most specific entry that explains it.

    ``any_case``: match by what the result is and shows, not only by the id of its case (a case
    typed into ``lossparity explain`` has an id only where it is one of the suite's rows): the
    binding, spec, dtype, mode, verdict, part and symptom must fit. Entries whose case glob holds
    the case's id come first, then those placed on every generated case (a place of binding, dtype
    and symptom alone), and last those placed on other rows of the table, matched by their symptom."""
    ranked = list(_placed(known, record))
    if any_case:
        case_id = str(record.get("case_id"))
        ranked.sort(key=lambda k: 0 if fnmatchcase(case_id, k.case) else 1 if k.every_generated else 2)
    return Match(
        {p.name: next((k for k in ranked if k.explains(record, p, any_case)), None) for p in failing_parts(record)}
    )


def _place(record: Mapping) -> tuple[str, str, str, str]:
    return (
        str(record.get("binding")),
        str(record.get("spec")),
        str(record.get("dtype")),
        str(record.get("mode", "eager")),
    )


#: ``_placed``'s memo: the id of the last tuple of entries matched against, the tuple, and its
#: entries by place. A run matches tens of thousands of results against one tuple, a batch's
#: results share their place, and an entry's place rarely holds a given binding: scanning every
#: entry's globs per result took a few milliseconds each (33,000 known results in a default run).
_PLACED: dict[int, tuple[tuple, dict]] = {}


def _placed(known: Iterable[KnownDeviation], record: Mapping) -> list[KnownDeviation]:
    """The entries whose place can hold the result (``KnownDeviation.holds``), most specific first;
    the others explain none of its parts. Memoized for a tuple of entries (immutable)."""
    place = _place(record)
    if not isinstance(known, tuple):
        return [k for k in sorted(known, key=lambda k: k.rank) if k.holds(*place)]
    held, by_place = _PLACED.get(id(known), (None, {}))
    if held is not known:
        _PLACED.clear()  # one tuple at a time: a run's, or the one explain loads
        by_place = {}
        _PLACED[id(known)] = (known, by_place)
    found = by_place.get(place)
    if found is None:
        found = by_place[place] = [k for k in sorted(known, key=lambda k: k.rank) if k.holds(*place)]
    return found


def known_ids(record: Mapping) -> list[str]:
    """The ids of the entries that explain a result (its ``known`` field; files from before
    several entries could explain one result hold only ``id``)."""
    k = record.get("known")
    if not isinstance(k, Mapping):
        return []
    entries = k.get("entries")
    if isinstance(entries, list) and entries:
        return [str(e.get("id", "?")) if isinstance(e, Mapping) else str(e) for e in entries]
    return [str(k.get("id", "?"))]


def partly_known_ids(record: Mapping) -> list[str]:
    p = record.get("partly_known")
    return [str(v) for v in dict.fromkeys(p.values()) if v] if isinstance(p, Mapping) else []


# -- loading and checking ----------------------------------------------------------------------


def load_known(path: Path | str | None = None, *, symptoms: bool = True) -> list[KnownDeviation]:
    """The entries of a known-deviations file (default: the suite's), in file order, checked
    and with their coverage counted; a bad file raises ``KnownError``. ``symptoms=False``:
    their places alone, symptoms neither required nor read (for ``scripts/derive-symptoms``,
    which finds the symptoms of a file that has none yet)."""
    path = Path(path) if path else KNOWN_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KnownError(f"known deviations {path}: cannot read it: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise KnownError(f"known deviations {path}: not valid TOML: {exc}") from None
    extra = sorted(set(data) - {"deviation"})
    if extra:
        raise KnownError(f"known deviations {path}: unknown table {extra[0]!r} (entries are [[deviation]] tables)")
    raws = data.get("deviation", [])
    if not isinstance(raws, list):
        raise KnownError(f"known deviations {path}: 'deviation' must be an array of tables ([[deviation]])")
    world = _World.get()
    entries: list[KnownDeviation] = []
    seen: dict[str, int] = {}
    places: dict[tuple, str] = {}
    for i, raw in enumerate(raws, 1):
        name = raw.get("id") if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) else f"#{i}"
        try:
            entry = _entry(raw, world, symptoms)
        except (KnownError, SymptomError) as exc:
            raise KnownError(f"known deviations {path}: entry {name!r}: {exc}") from None
        if entry.id in seen:
            raise KnownError(
                f"known deviations {path}: entry {entry.id!r}: id used twice (entries {seen[entry.id]} and {i})"
            )
        seen[entry.id] = i
        key = (*(getattr(entry, f) for f in PLACE), entry.params, entry.symptom)
        if key in places and symptoms:
            raise KnownError(
                f"known deviations {path}: entries {places[key]!r} and {entry.id!r} are exact duplicates "
                "(the same place and symptom)"
            )
        places[key] = entry.id
        entries.append(entry)
    return entries


class _World:
    """What entries are checked and counted against: bindings, their specs' cases, modes."""

    _cached: _World | None = None

    def __init__(self):
        from lossparity.conformance.registry import adapter_for, all_bindings
        from lossparity.conformance.specs import SPECS

        self.bindings = all_bindings()
        self.specs = sorted(SPECS)
        self.cases = {name: [c.id for c in spec.edges] + list(GENERATED) for name, spec in SPECS.items()}
        self.parameters = {name: set(spec.defaults) for name, spec in SPECS.items()}
        self.modes = {}
        for b in self.bindings:
            if b.framework not in self.modes:
                adapter = adapter_for(b.framework)
                self.modes[b.framework] = tuple(dict.fromkeys((*adapter.modes, *adapter.opt_in_modes)))
        self.all_modes = sorted({m for modes in self.modes.values() for m in modes})

    @classmethod
    def get(cls) -> _World:
        if cls._cached is None:
            cls._cached = cls()
        return cls._cached


def _entry(raw, world: _World, symptoms: bool = True) -> KnownDeviation:
    if not isinstance(raw, Mapping):
        raise KnownError("not a table")
    unknown = [k for k in raw if k not in FIELDS]
    if unknown:
        raise KnownError(f"unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
    for name in ("id", "binding", "explanation", *(("symptom",) if symptoms else ())):
        if name not in raw:
            raise KnownError(f"{name} is missing")
    for name in FIELDS:
        if name != "symptom" and name in raw and not isinstance(raw[name], str):
            raise KnownError(f"{name} must be a string, got {type(raw[name]).__name__}")
    if not _ID.match(raw["id"]):
        raise KnownError("id: lower-case letters, digits, '.' and '-' only")
    if not raw["explanation"].strip():
        raise KnownError("explanation is empty")
    link, reproducer = raw.get("link", "").strip(), raw.get("reproducer", "").strip()
    if not link and not reproducer:
        raise KnownError("no link and no reproducer: an entry without an upstream report carries a reproducer")
    if link and not re.match(r"https?://\S+\Z", link):
        raise KnownError(f"link {link!r} is not a web address")
    if reproducer:
        try:
            words = shlex.split(reproducer)
        except ValueError as exc:
            raise KnownError(f"reproducer: {exc}") from None
        if words[:2] != ["lossparity", "explain"]:
            raise KnownError("reproducer must be a 'lossparity explain ...' command line")
    symptom = parse(raw["symptom"]) if symptoms else ()
    entry = KnownDeviation(**{**raw, "symptom": symptom})
    return replace(entry, coverage=_coverage(entry, world))


def _coverage(k: KnownDeviation, world: _World) -> int:
    """Check the place's globs against the world; the number of cells it covers."""
    for glob in k.binding.split("|"):
        if not any(fnmatchcase(b.id, _literal_brackets(glob)) for b in world.bindings):
            raise KnownError(f"binding glob {glob!r} matches no binding")
    bindings = [b for b in world.bindings if binding_matches(b.id, k.binding)]
    if not bindings:
        raise KnownError(f"binding glob {k.binding!r} matches no binding")
    specs = [s for s in world.specs if fnmatchcase(s, k.spec)]
    if not specs:
        raise KnownError(f"spec {k.spec!r} matches no spec")
    bindings = [b for b in bindings if fnmatchcase(b.spec, k.spec)]
    if not bindings:
        raise KnownError(f"binding glob {k.binding!r} matches no binding of spec {k.spec!r}")
    if not any(fnmatchcase(c, k.case) for b in bindings for c in world.cases.get(b.spec, ())):
        raise KnownError(f"case {k.case!r} matches no case of its bindings' specs")
    if not any(fnmatchcase(d, k.dtype) for d in DTYPES):
        raise KnownError(f"dtype {k.dtype!r} matches no dtype ({', '.join(DTYPES)})")
    if not any(fnmatchcase(d, k.dtype) for b in bindings for d in b.dtypes):
        raise KnownError(f"dtype {k.dtype!r} matches no dtype its bindings take")
    if not any(fnmatchcase(m, k.mode) for m in world.all_modes):
        raise KnownError(f"mode {k.mode!r} matches no mode ({', '.join(world.all_modes)})")
    if not any(fnmatchcase(m, k.mode) for b in bindings for m in world.modes[b.framework]):
        raise KnownError(f"mode {k.mode!r} matches no mode of its bindings' frameworks")
    verdicts = [v for v in MATCHABLE if fnmatchcase(v, k.verdict)]
    if not verdicts:
        raise KnownError(f"verdict {k.verdict!r} matches no finding ({', '.join(MATCHABLE)})")
    if k.part not in PARTS and k.part.removeprefix("gradient:") not in GRADIENT_ARGUMENTS:
        accepted = ", ".join([*PARTS, *(f"gradient:{n}" for n in GRADIENT_ARGUMENTS)])
        raise KnownError(f"part {k.part!r}: accepted: {accepted}")
    for s in k.symptom:
        if VERDICT_OF[s.kind] not in verdicts:
            raise KnownError(f"symptom {s.kind} is a {VERDICT_OF[s.kind]} finding, not one of verdict {k.verdict!r}")
        if s.kind in VALUE_ONLY and k.part.startswith("gradient"):
            raise KnownError(f"symptom {s.kind} concerns the value, not a gradient")
    for name, _, _ in _conditions(k.params) if k.params else ():
        if not all(name in world.parameters.get(b.spec, ()) for b in bindings):
            raise KnownError(f"params: {name!r} is not a parameter of every spec of its bindings")
    parts = 2 if k.part == "*" else 1
    return sum(
        sum(fnmatchcase(c, k.case) for c in world.cases.get(b.spec, ()))
        * sum(fnmatchcase(d, k.dtype) for d in b.dtypes)
        * sum(fnmatchcase(m, k.mode) for m in world.modes[b.framework])
        * parts
        for b in bindings
    )


# -- after a run -------------------------------------------------------------------------------


def judge(known: Iterable[KnownDeviation], used: set[str], ran: Iterable[tuple]) -> dict[str, str]:
    """Each entry's standing after a run: ``used``, ``stale`` or ``not run``. ``ran`` holds
    (binding, spec, case id, dtype, mode, params) of every result that was not ``unsupported``;
    ``params`` as ``ran_params`` keeps them (a 5-tuple without it: parameters unknown, taken as
    meeting no ``params`` condition). An entry's place includes its ``params`` conditions: a case
    whose parameters miss them exercises it no more than a case of another binding does."""
    by_binding: dict[str, list[tuple]] = {}
    for r in ran:
        by_binding.setdefault(r[0], []).append(r)
    out = {}
    for k in known:
        if k.id in used:
            out[k.id] = "used"
            continue
        patterns = (k.spec, k.case, k.dtype, k.mode)
        exercised = any(
            all(fnmatchcase(str(v), p) for v, p in zip(r[1:5], patterns))
            and k.params_hold(dict(r[5]) if len(r) > 5 else None)
            for b, rows in by_binding.items()
            if binding_matches(b, k.binding)
            for r in rows
        )
        out[k.id] = "stale" if exercised else "not run"
    return out


def ran_params(params) -> tuple[tuple[str, float], ...]:
    """A result's parameters as ``judge``'s ``ran`` keeps them: the numeric ones (all a ``params``
    condition can read), sorted, hashable; booleans and lists are left out as conditions leave them."""
    if not isinstance(params, Mapping):
        return ()
    return tuple(
        sorted((str(n), v) for n, v in params.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    )
