"""Edge tables: hand-picked extreme inputs, one table per spec, in its family. Every row says why it is there.

A table is a list of :func:`edge` rows, one call per row, the data by name (as JAX's
``op_record`` tables are written)::

    HUBER = [
        edge("at-delta-half", "|r| = delta = 0.5: the boundary of a non-default delta",
             [0.5, -0.5, 0.25], [0.0, 0.0, 0.0], reduction="none", delta=0.5),
        ...
    ]

The spec declares its table (``Spec(..., edges=HUBER)``); ``conformance/specs.py``, where each
spec is known, turns the rows into cases with :func:`cases`: the spec's own declarations say
which names are arrays and whether an integer target holds class indices.

Rows are canonical (class axis last). A row restricted to some dtypes says so: one ULP
inside [0, 1] is a different number in float32 and float64.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossparity.core.model import Case, Spec, activations

F32_TINY = float(np.nextafter(np.float32(0), np.float32(1)))  # smallest float32 subnormal
F32_BELOW_ONE = float(np.nextafter(np.float32(1), np.float32(0)))  # 1 - 2**-24
F64_TINY = float(np.nextafter(0.0, 1.0))
F64_BELOW_ONE = float(np.nextafter(1.0, 0.0))
INF, NAN = float("inf"), float("nan")


@dataclass(frozen=True)
class Edge:
    """One row of an edge table, as written: its id (the case is ``edge-<row>``), why it is
    there, its arrays and parameters by name in the order written, and the dtypes it is
    restricted to (none: every dtype)."""

    row: str
    why: str
    values: tuple[tuple[str, Any], ...]
    dtypes: tuple[str, ...] = ()
    transforms: tuple[tuple[str, str], ...] = ()


def edge(
    row: str, why: str, /, *arrays, dtypes: Sequence[str] = (), transforms: Mapping[str, str] | None = None, **named
) -> Edge:
    """One edge row: ``edge(row, why, input[, target], name=value, ..., dtypes=(...))``.

    ``input`` and ``target`` come by position (``target`` left out where the spec has none),
    or by name beside the spec's further arrays (``input=..., input2=..., target=...``).
    A name the spec reads as an array (input, target, ``Spec.arrays``) is an array, any other
    a parameter of the spec. Lists read as float64, except an all-integer ``target`` of a spec
    with class-index targets (int64); other integer arrays are given as NumPy arrays.
    ``transforms``: an argument the user's call wraps in a function the framework applies inside
    the call (``{"input": "sigmoid"}``: ``loss(sigmoid(z), y)``, the row giving z), over the class axis.
    """
    if len(arrays) > 2:
        raise TypeError(f"edge {row!r}: input and target by position, then names; {len(arrays)} positional arrays")
    values = (*zip(("input", "target"), arrays), *named.items())
    if len(dict(values)) != len(values):
        raise TypeError(f"edge {row!r}: input or target given twice")
    return Edge(row, why, values, tuple(dtypes), tuple((transforms or {}).items()))


def cases(spec: Spec) -> tuple[Case, ...]:
    """The rows of ``spec.edges`` (:class:`Edge`) as cases, one per row, in table order."""
    array_names = ("input", "target", *spec.arrays)
    out = []
    for row in spec.edges:
        arrays, params = {}, {}
        for name, value in row.values:
            if name == "target" and spec.target == "index" and _all_ints(value):
                arrays[name] = _a(value, np.int64)
            elif name in array_names:
                arrays[name] = _a(value)
            elif name in spec.defaults:
                params[name] = _a(value) if isinstance(value, list) else value
            else:
                raise TypeError(
                    f"{spec.name} edge {row.row!r}: {name!r} is neither an array nor a parameter of the spec"
                )
        out.append(
            Case(
                spec.name,
                f"edge-{row.row}",
                {"table": "edges", "row": row.row, "why": row.why},
                arrays,
                params,
                row.dtypes,
                transforms=activations(dict(row.transforms)),
            )
        )
    return tuple(out)


def _a(values, dtype=np.float64):
    if isinstance(values, np.ndarray):
        return values
    return np.array(values, dtype=dtype)


def _all_ints(x):
    if isinstance(x, list):
        return all(_all_ints(v) for v in x)
    return isinstance(x, int) or (isinstance(x, np.ndarray) and x.dtype.kind == "i")
