"""Symptoms: what a finding looks like, read from its result record alone.

A result that is not ``conform`` has one or more *failing parts*: its value (``value``; a crash
or a timeout is always one value part) and each gradient whose verdict is not ``conform``
(``gradient:input``, ``gradient:target``, ...). A known deviation's ``symptom`` says what such a
part shows, and an entry matches a part only if the part shows it (``fits``). A symptom is one
kind, or a list of elementwise kinds (each mismatched element shows one of them).

Written in ``known_deviations.toml`` as a string (a kind without arguments) or an inline table
``{ kind = "...", ... }``, or a list of those:

==============  ==============================================================================
kind            the part shows (arguments)
==============  ==============================================================================
``crash``       the process died (verdict ``crash``); the only kind that matches a crash
``timeout``     the call ran past its time limit (verdict ``timeout``); likewise
``error``       an error was raised where a value (or gradient) was due: ``error = "TypeError"``,
                the class name, or a list of names (any of them), required
``no_error``    a value was returned where the oracle documents an error
``wrong_error`` another error than the documented one was raised (``error``: the one raised, or
                a list of names, optional)
``dtype``       the value came back in ``dtype = "float64"`` (required) where another was due; its
                numbers agree with the oracle's to the tolerance of the narrower of the two dtypes
                (a float32 result of a float64 case: float32's, past whose range inf is due), or
                within the binding's rounding model in the due dtype (``errors.rounding``), or
                within the bound given (``max_ulp`` / ``max_rel`` / ``max_abs``, in that dtype)
``shape``       the value's shape is not the oracle's
--------------  ------------------------------------------------------------------------------
elementwise     every element outside the tolerance (at least one) shows, in the due dtype:
``nonfinite``   NaN or +-inf where the oracle's element is finite; ``nonfinite = "nan"`` or
                ``"inf"`` narrows what the framework gives, ``oracle = "inf" | "nan" |
                "nonfinite" | "any"`` what the oracle gives instead of finite (default)
``finite``      a finite number where the oracle's is NaN or +-inf
``zero``        exactly 0 where the oracle's is not 0 (NaN and +-inf are not 0)
``sign``        the other sign than the oracle's (both nonzero)
``factor``      the oracle's times ``factor`` (required, e.g. 0.5 or 2), to the tolerance or
                within the bound given
``bound``       a finite number within the bound given of the oracle's finite one: at least one of
                ``max_ulp`` (ULPs of the due dtype at the oracle's value), ``max_rel``,
                ``max_abs``; every one given must hold (the "quoted magnitude" of an explanation)
==============  ==============================================================================

Elementwise kinds need a value of the due dtype and shape: a wrong dtype is ``dtype``'s, a wrong
shape ``shape``'s; a list may hold one ``dtype`` with elementwise kinds: a value of that wrong
dtype whose numbers agree (as ``dtype`` judges them) except for elements showing those kinds
(``[{ kind = "dtype", dtype = "float64" }, { kind = "nonfinite", nonfinite = "nan" }]``). Examples::

    symptom = "nonfinite"
    symptom = { kind = "nonfinite", nonfinite = "nan", oracle = "inf" }
    symptom = { kind = "error", error = "NotImplementedError" }
    symptom = { kind = "bound", max_ulp = 16 }
    symptom = ["nonfinite", { kind = "bound", max_ulp = 8 }]

The figures are those of ``conformance/compare.py``: an element is outside the tolerance when
|actual - expected| > atol + rtol |expected| (or, for a binding with a rounding model, past the
model's allowance where the runner kept it, ``errors["rounding_bound"]``) (NaN equals NaN, an infinity only itself, an
expectation past the dtype's range is its infinity); ULPs are ``core.dtypes.ulp`` of the
expectation in the dtype the part is compared in (the value: the binding's compute dtype; a
gradient: the narrower of that and the inputs' dtype).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from lossparity.core.dtypes import DTYPES, TOLERANCES, Tolerance, numpy_dtype, tolerance, ulp
from lossparity.core.records import decode_array

#: Kinds about the part as a whole (never in a list).
WHOLE = ("crash", "timeout", "error", "no_error", "wrong_error", "dtype", "shape")
#: Kinds about each element outside the tolerance.
ELEMENTWISE = ("nonfinite", "finite", "zero", "sign", "factor", "bound")
KINDS = WHOLE + ELEMENTWISE
BOUNDS = ("max_ulp", "max_rel", "max_abs")
NONFINITE = ("nan", "inf")
ORACLE = ("finite", "inf", "nan", "nonfinite", "any")

#: kind -> {argument: required?}; the bound arguments where a kind takes them.
_ARGS: dict[str, dict[str, bool]] = {
    "crash": {},
    "timeout": {},
    "error": {"error": True},
    "no_error": {},
    "wrong_error": {"error": False},
    "dtype": {"dtype": True, **dict.fromkeys(BOUNDS, False)},
    "shape": {},
    "nonfinite": {"nonfinite": False, "oracle": False},
    "finite": {},
    "zero": {},
    "sign": {},
    "factor": {"factor": True, **dict.fromkeys(BOUNDS, False)},
    "bound": dict.fromkeys(BOUNDS, False),
}

#: The verdict a part has when it shows the kind.
VERDICT_OF = {
    "crash": "crash",
    "timeout": "timeout",
    "error": "error_mismatch",
    "no_error": "error_mismatch",
    "wrong_error": "error_mismatch",
    **dict.fromkeys(("dtype", "shape", *ELEMENTWISE), "deviate"),
}
#: Kinds a gradient part cannot show: a gradient is always due as a value, never crashes alone.
VALUE_ONLY = ("crash", "timeout", "no_error", "wrong_error", "shape")


class SymptomError(ValueError):
    """A malformed symptom; the message says what is wrong in one line."""


@dataclass(frozen=True)
class Symptom:
    """One kind with its arguments (``args``: sorted (name, value) pairs)."""

    kind: str
    args: tuple[tuple[str, Any], ...] = ()

    def get(self, name: str, default=None):
        return dict(self.args).get(name, default)

    @property
    def bounds(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.args if k in BOUNDS}

    def text(self) -> str:
        """Short words: ``bound max_ulp<=8``, ``nonfinite nan oracle=inf``, ``error TypeError``."""
        words = [self.kind]
        for name, value in self.args:
            if name in BOUNDS:
                words.append(f"{name}<={_number(value)}")
            elif name == "oracle":
                words.append(f"oracle={value}")
            elif isinstance(value, tuple):
                words.append("|".join(value))
            else:
                words.append(_number(value) if isinstance(value, (int, float)) else str(value))
        return " ".join(words)

    def toml(self) -> str:
        if not self.args:
            return f'"{self.kind}"'
        items = [f'kind = "{self.kind}"'] + [f"{k} = {_toml_value(v)}" for k, v in self.args]
        return "{ " + ", ".join(items) + " }"


def _toml_value(v) -> str:
    if isinstance(v, tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return _number(v) if isinstance(v, (int, float)) else f'"{v}"'


def _number(x: float) -> str:
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return str(int(x)) if x.is_integer() and abs(x) < 1e6 else f"{x:.6g}"  # also valid TOML: 9.1e+15


def text(symptoms: Iterable[Symptom]) -> str:
    return " | ".join(s.text() for s in symptoms)


def toml(symptoms: tuple[Symptom, ...]) -> str:
    return symptoms[0].toml() if len(symptoms) == 1 else "[" + ", ".join(s.toml() for s in symptoms) + "]"


# -- reading a symptom -------------------------------------------------------------------------


def parse(raw: Any) -> tuple[Symptom, ...]:
    """A ``symptom`` value of the TOML file as symptoms (several: a list of elementwise kinds)."""
    if isinstance(raw, list):
        if not raw:
            raise SymptomError("symptom: an empty list")
        out = tuple(_one(r) for r in raw)
        whole = [s.kind for s in out if s.kind in WHOLE]
        if whole == ["dtype"] and len(out) > 1:  # a wrong dtype whose numbers show these kinds
            return tuple(sorted(out, key=lambda s: s.kind != "dtype"))
        if len(out) > 1 and whole:
            raise SymptomError(
                f"symptom: {whole[0]!r} is about the whole part and cannot be in a list"
                + (" (a list may hold one dtype with elementwise kinds)" if "dtype" in whole else "")
            )
        if len(set(out)) != len(out):
            raise SymptomError("symptom: the list names one symptom twice")
        return out
    return (_one(raw),)


def _one(raw: Any) -> Symptom:
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, Mapping):
        raise SymptomError(f"symptom: expected a kind, a table or a list, got {type(raw).__name__}")
    kind = raw.get("kind")
    if kind not in _ARGS:
        raise SymptomError(f"symptom: unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    allowed = _ARGS[kind]
    args = {k: v for k, v in raw.items() if k != "kind"}
    for name in args:
        if name not in allowed:
            known = ", ".join(allowed) or "none"
            raise SymptomError(f"symptom {kind}: unknown argument {name!r} (arguments: {known})")
    for name, required in allowed.items():
        if required and name not in args:
            raise SymptomError(f"symptom {kind}: {name} is required")
    for name, value in args.items():
        if name == "error" and isinstance(value, list):  # any of these classes
            if not value:
                raise SymptomError(f"symptom {kind}: error is an empty list")
            for v in value:
                _check_arg(kind, name, v)
            args[name] = tuple(value)
            continue
        _check_arg(kind, name, value)
    if kind == "bound" and not args:
        raise SymptomError("symptom bound: give at least one of max_ulp, max_rel, max_abs")
    return Symptom(kind, tuple(sorted(args.items())))


def _check_arg(kind: str, name: str, value: Any) -> None:
    if name in BOUNDS or name == "factor":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SymptomError(f"symptom {kind}: {name} must be a finite number, got {value!r}")
        if name in BOUNDS and value < 0:
            raise SymptomError(f"symptom {kind}: {name} must be >= 0, got {value!r}")
        if name == "factor" and value in (0, 1):
            raise SymptomError(f"symptom factor: a factor of {value} is {'zero' if value == 0 else 'no deviation'}")
        return
    choices = {"nonfinite": NONFINITE, "oracle": ORACLE, "dtype": DTYPES}.get(name)
    if not isinstance(value, str) or not value or (choices and value not in choices):
        accepted = f"; accepted: {', '.join(choices)}" if choices else ""
        raise SymptomError(
            f"symptom {kind}: {name} must be a {'name' if choices else 'string'}{accepted}, got {value!r}"
        )


def strictness(symptoms: tuple[Symptom, ...]) -> tuple:
    """How narrow a symptom is (smaller: narrower), to rank entries of equal place: the loosest
    alternative's score, the number of alternatives, then the bounds (tighter first)."""

    def score(s: Symptom) -> int:
        if s.kind in ("crash", "timeout", "error", "no_error"):
            return 0
        if s.kind in ("wrong_error", "dtype"):
            return 0 if s.get("error") or (s.kind == "dtype" and not s.bounds) else 1
        if s.kind == "nonfinite":
            return 1 + (s.get("nonfinite") is None) + (s.get("oracle") in ("nonfinite", "any"))
        return {"shape": 1, "zero": 1, "sign": 1, "factor": 1, "finite": 2, "bound": 3}[s.kind]

    bounds = [s.bounds for s in symptoms if s.bounds]
    return (
        max(score(s) for s in symptoms),
        len(symptoms),
        tuple(max((b.get(k, math.inf) for b in bounds), default=math.inf) for k in BOUNDS),
    )


# -- the failing parts of a result -------------------------------------------------------------


@dataclass
class Part:
    """One failing part of a result: its verdict, outcomes, error figures, and the dtype and
    tolerance it was compared in."""

    name: str  # "value" or "gradient:<argument>"
    verdict: str
    expected: Mapping | None
    actual: Mapping | None
    errors: Mapping | None
    dtype: str
    tol: Tolerance = field(default_factory=lambda: TOLERANCES["float64"])

    @property
    def documented(self) -> str | None:
        """The error the oracle documents, or None where a value is due."""
        return self.expected.get("error") if isinstance(self.expected, Mapping) else None

    @property
    def raised(self) -> str | None:
        """The class name of the error raised (a gradient's error text is ``Class: message``)."""
        if not isinstance(self.actual, Mapping) or "error" not in self.actual:
            return None
        return str(self.actual["error"]).split(":")[0].strip()

    @property
    def wrong_dtype(self) -> str | None:
        return (self.errors or {}).get("dtype") if isinstance(self.errors, Mapping) else None

    @cached_property
    def values(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(actual, expected) as float64 arrays, or None unless both are values."""
        try:
            return (
                np.asarray(decode_array(self.actual["value"]), np.float64),
                np.asarray(decode_array(self.expected["value"]), np.float64),
            )
        except (KeyError, TypeError, ValueError):
            return None

    @cached_property
    def mismatched(self) -> tuple[np.ndarray, np.ndarray, str] | None:
        """The elements outside the tolerance, (actual, expected) flat, and the dtype they were
        judged in, as ``compare`` judges them (an expectation past the dtype's range is its
        infinity); None for differing shapes."""
        return self._mismatched(self.dtype, self.tol, self._model_bound)

    @cached_property
    def _model_bound(self) -> np.ndarray | None:
        """Each element's allowance under the binding's rounding model, where the runner kept
        it (``errors["rounding_bound"]``: the part failed the model somewhere): an element
        within it shows rounding, not the symptom."""
        raw = self.errors.get("rounding_bound") if isinstance(self.errors, Mapping) else None
        try:
            return None if raw is None else np.asarray(decode_array(raw), np.float64)
        except (KeyError, TypeError, ValueError):
            return None

    @cached_property
    def mismatched_as_returned(self) -> tuple[np.ndarray, np.ndarray, str] | None:
        """``mismatched`` for a value of a wrong dtype: judged in the narrower of the due and the
        returned dtype, with that one's tolerance (a float64 value computed in float32 carries
        float32's rounding, and overflows where float32 does)."""
        got = self.wrong_dtype
        if got not in DTYPES or DTYPES.index(got) <= DTYPES.index(self.dtype):
            return self.mismatched
        return self._mismatched(got, TOLERANCES[got])

    def _mismatched(
        self, dtype: str, tol: Tolerance, model: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, str] | None:
        if self.values is None or self.values[0].shape != self.values[1].shape:
            return None
        actual, expected = self.values
        with np.errstate(all="ignore"):
            rounded = expected.astype(numpy_dtype(dtype)).astype(np.float64)
            expected = np.where(np.isinf(rounded) & np.isfinite(expected), rounded, expected)
            same = (np.isnan(actual) & np.isnan(expected)) | (np.isinf(actual) & (actual == expected))
            finite = np.isfinite(actual) & np.isfinite(expected)
            allowed = tol.atol + tol.rtol * np.abs(expected)
            if model is not None and model.shape == expected.shape:
                allowed = np.maximum(allowed, model)
            close = same | (finite & (np.abs(actual - expected) <= allowed))
        bad = ~close
        return actual[bad].ravel(), expected[bad].ravel(), dtype


def failing_parts(record: Mapping) -> list[Part]:
    """The failing parts of a result record (its original verdicts, also after it became
    ``known``), value first, then the gradients by name."""
    verdict = record.get("value_verdict") or (record.get("known") or {}).get("verdict") or record.get("verdict")
    dtype = str(record.get("dtype"))
    result = str(record.get("computes_in", dtype))
    out = []
    if verdict not in ("conform", "known", "unsupported", None):
        tol = record.get("tolerance")
        out.append(
            Part(
                "value",
                str(verdict),
                record.get("expected"),
                record.get("actual"),
                record.get("errors"),
                result,
                Tolerance(tol["rtol"], tol["atol"]) if isinstance(tol, Mapping) else _tolerance(record, result),
            )
        )
    grads = record.get("gradients")
    if verdict not in ("crash", "timeout") and isinstance(grads, Mapping):
        precision = max(dtype, result, key=lambda d: DTYPES.index(d) if d in DTYPES else -1)
        for name in sorted(grads):
            g = grads[name]
            if isinstance(g, Mapping) and g.get("verdict") not in ("conform", None):
                tol = _tolerance(record, precision)
                out.append(
                    Part(
                        f"gradient:{name}",
                        g["verdict"],
                        g.get("expected"),
                        g.get("actual"),
                        g.get("errors"),
                        precision,
                        tol,
                    )
                )
    return out


def _tolerance(record: Mapping, dtype: str) -> Tolerance:
    if dtype not in TOLERANCES:
        return TOLERANCES["float64"]
    return tolerance(str(record.get("spec")), dtype)


# -- does a part show a symptom ----------------------------------------------------------------


def fits(symptoms: tuple[Symptom, ...], part: Part) -> bool:
    """Whether the part shows the symptom (a list: each mismatched element shows one of them)."""
    first = symptoms[0]
    if first.kind == "dtype" and len(symptoms) > 1:
        return _dtype_with(first, symptoms[1:], part)
    if first.kind in WHOLE:
        return _whole(first, part)
    if part.verdict != "deviate" or part.wrong_dtype or part.mismatched is None:
        return False
    actual, expected, _ = part.mismatched
    if actual.size == 0:
        return False
    shown = np.zeros(actual.shape, bool)
    for s in symptoms:
        shown |= _elements(s, actual, expected, part)
    return bool(shown.all())


def _whole(s: Symptom, part: Part) -> bool:
    kind = s.kind
    if kind in ("crash", "timeout"):
        return part.verdict == kind
    if part.verdict in ("crash", "timeout"):
        return False
    if kind == "error":
        return part.documented is None and part.raised is not None and part.raised in _names(s.get("error"))
    if kind == "no_error":
        return part.documented is not None and part.values is None and part.raised is None and bool(part.actual)
    if kind == "wrong_error":
        raised = part.raised
        named = s.get("error")
        return (
            part.documented is not None
            and raised not in (None, part.documented)
            and (named is None or raised in _names(named))
        )
    if kind == "shape":
        return part.values is not None and part.values[0].shape != part.values[1].shape
    # dtype
    if part.wrong_dtype != s.get("dtype") or part.mismatched_as_returned is None:
        return False
    if isinstance(part.errors, Mapping) and part.errors.get("rounding"):
        return True  # the numbers are within the binding's rounding model, judged in the due dtype
    actual, expected, dtype = part.mismatched_as_returned
    if not s.bounds:
        return actual.size == 0
    return bool(_within(actual, expected, s.bounds, dtype).all())


def _dtype_with(d: Symptom, kinds: tuple[Symptom, ...], part: Part) -> bool:
    """A value of the wrong dtype ``d`` names whose numbers, judged as the dtype ``d`` symptom
    judges them, agree except for elements that each show one of the elementwise ``kinds`` (a
    float64 value of a float16 case that is NaN where the oracle is finite)."""
    if part.wrong_dtype != d.get("dtype") or part.mismatched_as_returned is None:
        return False
    if isinstance(part.errors, Mapping) and part.errors.get("rounding"):
        return True  # the numbers are within the binding's rounding model
    actual, expected, dtype = part.mismatched_as_returned
    if actual.size == 0:
        return True  # nothing but the dtype
    shown = _within(actual, expected, d.bounds, dtype) if d.bounds else np.zeros(actual.shape, bool)
    for s in kinds:
        shown |= _elements(s, actual, expected, part)
    return bool(shown.all())


def _names(error) -> tuple[str, ...]:
    return error if isinstance(error, tuple) else (error,)


def _elements(s: Symptom, a: np.ndarray, e: np.ndarray, part: Part) -> np.ndarray:
    """Which mismatched elements (actual ``a``, expected ``e``) show the elementwise kind."""
    with np.errstate(all="ignore"):
        if s.kind == "nonfinite":
            got = {"nan": np.isnan(a), "inf": np.isinf(a)}.get(s.get("nonfinite"), ~np.isfinite(a))
            oracle = s.get("oracle", "finite")
            due = {
                "finite": np.isfinite(e),
                "inf": np.isinf(e),
                "nan": np.isnan(e),
                "nonfinite": ~np.isfinite(e),
            }.get(oracle, np.ones(e.shape, bool))
            return got & due
        if s.kind == "finite":
            return np.isfinite(a) & ~np.isfinite(e)
        if s.kind == "zero":
            return (a == 0) & (e != 0)
        if s.kind == "sign":
            return ((a > 0) & (e < 0)) | ((a < 0) & (e > 0))
        if s.kind == "factor":
            scaled = e * float(s.get("factor"))
            if s.bounds:
                return _within(a, scaled, s.bounds, part.dtype)
            ok = np.isfinite(a) & np.isfinite(scaled)
            return ok & (np.abs(a - scaled) <= part.tol.atol + part.tol.rtol * np.abs(scaled))
        return _within(a, e, s.bounds, part.dtype)  # bound


def _within(a: np.ndarray, e: np.ndarray, bounds: Mapping[str, float], dtype: str) -> np.ndarray:
    """Finite elements within every bound given of the (finite) expectation."""
    with np.errstate(all="ignore"):
        diff = np.abs(a - e)
        ok = np.isfinite(a) & np.isfinite(e)
        if "max_abs" in bounds:
            ok &= diff <= bounds["max_abs"]
        if "max_rel" in bounds:
            ok &= diff <= bounds["max_rel"] * np.abs(e)
        if "max_ulp" in bounds:
            ok &= diff <= bounds["max_ulp"] * ulp(e, dtype)
    return ok


# -- what a part shows: deriving a symptom (scripts/derive-symptoms) ---------------------------

#: Past this many ULPs a bound is stated as max_abs (an oracle value near 0 makes ULPs meaningless).
MAX_ULP_STATED = 1e6


def derive(part: Part) -> tuple[Symptom, ...] | None:
    """The narrowest symptom the part shows, with the bound figures it reaches (all three, exact:
    ``summarize`` chooses and rounds them over a group); None where no kind describes it (a
    wrong dtype with non-finite elements)."""
    if part.verdict in ("crash", "timeout"):
        return (Symptom(part.verdict),)
    if part.verdict == "error_mismatch" or part.raised is not None:
        if part.documented is None:
            return (Symptom("error", (("error", part.raised),)),) if part.raised else None
        if part.raised is None:
            return (Symptom("no_error"),)
        return (Symptom("wrong_error", (("error", part.raised),)),)
    if part.values is not None and part.values[0].shape != part.values[1].shape:
        return (Symptom("shape"),)
    if part.wrong_dtype:
        if part.mismatched_as_returned is None:
            return None
        a, e, dtype = part.mismatched_as_returned
        if a.size == 0:
            return (Symptom("dtype", (("dtype", part.wrong_dtype),)),)
        if not (np.isfinite(a) & np.isfinite(e)).all():
            return None
        return (Symptom("dtype", (("dtype", part.wrong_dtype), *_figures(a, e, dtype))),)
    if part.mismatched is None:
        return None
    a, e, _ = part.mismatched
    out: list[Symptom] = []
    left = np.ones(a.shape, bool)
    with np.errstate(all="ignore"):
        for oracle, due in (("finite", np.isfinite(e)), ("inf", np.isinf(e)), ("nan", np.isnan(e))):
            for got, mask in (("nan", np.isnan(a)), ("inf", np.isinf(a))):
                if (left & due & mask).any():
                    args = (("nonfinite", got),) + ((("oracle", oracle),) if oracle != "finite" else ())
                    out.append(Symptom("nonfinite", args))
                    left &= ~(due & mask)
        taken = left & (a == 0) & (e != 0)
        if taken.any():
            out.append(Symptom("zero"))
            left &= ~taken
        taken = left & np.isfinite(a) & ~np.isfinite(e)
        if taken.any():
            out.append(Symptom("finite"))
            left &= ~taken
        for factor in (0.5, 2.0):
            scaled = e * factor
            taken = left & (np.abs(a - scaled) <= part.tol.atol + part.tol.rtol * np.abs(scaled))
            if taken.any():
                out.append(Symptom("factor", (("factor", factor),)))
                left &= ~taken
        opposite = ((a > 0) & (e < 0)) | ((a < 0) & (e > 0))
        taken = left & opposite & (np.abs(a) >= np.abs(e) / 2) & (np.abs(a) <= 2 * np.abs(e))
        if taken.any():
            out.append(Symptom("sign"))
            left &= ~taken
    if left.any():
        out.append(Symptom("bound", _figures(a[left], e[left], part.dtype)))
    return tuple(out) or None


def _figures(a: np.ndarray, e: np.ndarray, dtype: str) -> tuple[tuple[str, float], ...]:
    with np.errstate(all="ignore"):
        diff = np.abs(a - e)
        rel = np.where(diff == 0, 0.0, diff / np.abs(e))
        ulps = np.where(diff == 0, 0.0, diff / ulp(e, dtype))
    return (("max_abs", float(diff.max())), ("max_rel", float(rel.max())), ("max_ulp", float(ulps.max())))


def signature(symptoms: tuple[Symptom, ...]) -> tuple:
    """What a derived symptom is, its bound figures aside: the key results are grouped by."""
    return tuple((s.kind, tuple((k, v) for k, v in s.args if k not in BOUNDS)) for s in symptoms)


def summarize(derived: list[tuple[Symptom, ...]]) -> tuple[Symptom, ...]:
    """One symptom for derived symptoms of one signature: each bound is the largest figure
    reached, rounded up to two significant digits, stated in ULPs; past ``MAX_ULP_STATED``
    ULPs (a float32 rounding in a float64 case, an oracle value near 0) as a relative bound
    where that stays below 1, else as an absolute one."""
    first = derived[0]
    out = []
    for i, s in enumerate(first):
        if s.kind not in ("bound", "dtype") or not s.bounds:
            out.append(s)
            continue
        # a derived symptom of the same signature without a figure did not reach it (a dtype alone)
        worst = {k: max(d[i].bounds.get(k, 0.0) for d in derived) for k in BOUNDS}
        name = "max_ulp" if worst["max_ulp"] <= MAX_ULP_STATED else "max_rel" if worst["max_rel"] <= 1 else "max_abs"
        kept = tuple((k, v) for k, v in s.args if k not in BOUNDS)
        out.append(Symptom(s.kind, tuple(sorted((*kept, (name, round_up(worst[name])))))))
    return tuple(out)


def round_up(x: float) -> float:
    """``x`` rounded up to two significant digits (14.2 -> 15, 1546 -> 1600, 0.00123 -> 0.0013)."""
    if x <= 0 or not math.isfinite(x):
        return x
    step = 10 ** (math.floor(math.log10(x)) - 1)
    up = math.ceil(round(x / step, 9)) * step
    return float(f"{up:.2g}") if up < 1e15 else up
