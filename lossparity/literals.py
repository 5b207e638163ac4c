"""Arrays and values typed on the command line: JSON or NumPy-style literals.

Accepted: JSON (``[0.8, 0.2, 0.4]``, ``[[1, 0], [0, 1]]``), NumPy's printed form
(``[0.8 0.2 0.4]``, ``array([1., 0.], dtype=float32)``, ``[[1 2]\\n [3 4]]``), and a bare
scalar (``0.5``); non-finite values as ``nan``, ``inf``, ``-inf`` (or ``NaN``, ``Infinity``);
a mask as ``[true, false]`` (or ``True``/``False``), a bool array.
Commas between numbers are optional; an empty array of any shape is ``np.empty((0, 3))``.
Nothing is evaluated: the text is tokenized and every
number goes through ``int`` or ``float``.
"""

from __future__ import annotations

import re

import numpy as np

#: An empty array of a shape nested lists cannot spell: ``np.empty((0, 3))``, ``zeros((2, 0))``.
_EMPTY = re.compile(
    r"^\s*(?:(?:np|numpy|torch|jnp)\.)?(?:empty|zeros)\(\s*\(?([\d\s,]*?)\)?\s*(?:,\s*dtype\s*=\s*[\w.]+)?\)\s*$"
)
_WRAPPER = re.compile(r"^\s*(?:(?:np|numpy)\.)?(?:array|asarray|tensor)\((.*?)(?:,\s*dtype\s*=\s*[\w.]+)?\)\s*$", re.S)
_TOKEN = re.compile(r"\[|\]|\(|\)|,|[^\s\[\](),]+")
_INT = re.compile(r"^[+-]?\d+$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: NumPy 1.x allows 32 dimensions, 2.x 64: no loss input comes near either.
MAX_DIMS = 32


class LiteralError(ValueError):
    """A literal that is not a number or a rectangular nested list of numbers."""


def _number(token: str):
    if token.lower() in ("true", "false"):  # a mask: JSON's true/false, Python's True/False
        return token.lower() == "true"
    if _INT.match(token):
        try:
            value = int(token)
        except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
            value = None
        if value is None or not _INT64_MIN <= value <= _INT64_MAX:
            shown = token if len(token) <= 30 else f"{token[:12]}...{token[-12:]} ({len(token)} digits)"
            raise LiteralError(
                f"the integer {shown} does not fit in 64 bits; "
                "write it as a float (with a '.' or an exponent) if that is what you mean"
            )
        return value
    try:
        return float(token)
    except ValueError:
        raise LiteralError(f"{token!r} is not a number") from None


def parse_array(text: str) -> np.ndarray:
    """The array a literal spells: int64 when every number is an integer, else float64; an
    empty one of any shape as ``np.empty((0, 3))``."""
    empty = _EMPTY.match(text)
    if empty:
        shape = tuple(int(n) for n in empty.group(1).replace(",", " ").split())
        if 0 not in shape:
            raise LiteralError(f"np.empty{shape} has elements; give their values as a list")
        return np.zeros(shape, np.float64)
    match = _WRAPPER.match(text)
    body = match.group(1) if match else text
    tokens = _TOKEN.findall(body)
    if not tokens:
        raise LiteralError("empty literal; expected a number or a list such as [0.8, 0.2, 0.4]")
    stack: list[list] = [[]]
    for token in tokens:
        if token in "[(":
            if len(stack) > MAX_DIMS:
                raise LiteralError(f"more than {MAX_DIMS} nested lists; an array has at most {MAX_DIMS} dimensions")
            stack.append([])
        elif token in "])":
            if len(stack) == 1:
                raise LiteralError(f"unbalanced {token!r}")
            inner = stack.pop()
            stack[-1].append(inner)
        elif token != ",":
            stack[-1].append(_number(token))
    if len(stack) != 1:
        raise LiteralError("unbalanced '[': a closing ']' is missing")
    if len(stack[0]) != 1:
        raise LiteralError(
            "expected one number or one list; separate the items of a list with "
            "commas inside brackets, e.g. [0.8, 0.2, 0.4]"
        )
    value = stack[0][0]
    try:
        array = np.array(value)
    except ValueError:
        raise LiteralError("the rows have different lengths; an array must be rectangular") from None
    if array.dtype == object:
        raise LiteralError("the rows have different lengths; an array must be rectangular")
    if array.dtype.kind == "b":
        return array
    if any(isinstance(v, bool) for v in _flatten(value)):  # NumPy made the booleans numbers
        raise LiteralError("booleans and numbers mixed in one array; a mask is all true/false (or 0/1)")
    if array.dtype.kind == "i":
        return array.astype(np.int64)
    return array.astype(np.float64)


def _flatten(value):
    if isinstance(value, list):
        for v in value:
            yield from _flatten(v)
    else:
        yield value


def parse_value(text: str):
    """A parameter value: a bool, None (``None`` or ``null``), a number, an array, or else the
    text itself (``mean``, ``none``)."""
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if stripped in ("None", "null"):  # not "none": that is a reduction
        return None
    if stripped.startswith(("[", "(")) or _WRAPPER.match(stripped):
        return parse_array(stripped)
    try:
        return _number(stripped)
    except LiteralError:
        return stripped
