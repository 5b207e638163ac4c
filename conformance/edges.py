"""Hand tables of extreme inputs, one per spec. Every row says why it is there.

Rows are canonical (class axis last). A row restricted to some dtypes says so: one ULP
inside [0, 1] is a different number in float32 and float64.
"""

from __future__ import annotations

import numpy as np

from lossparity.core.model import Case

F32_TINY = float(np.nextafter(np.float32(0), np.float32(1)))  # smallest float32 subnormal
F32_BELOW_ONE = float(np.nextafter(np.float32(1), np.float32(0)))  # 1 - 2**-24
F64_TINY = float(np.nextafter(0.0, 1.0))
F64_BELOW_ONE = float(np.nextafter(1.0, 0.0))
INF, NAN = float("inf"), float("nan")


def _a(values, dtype=np.float64):
    if isinstance(values, np.ndarray):
        return values
    return np.array(values, dtype=dtype)


def _rows(spec: str, table) -> tuple[Case, ...]:
    out = []
    for row in table:
        name, why, inp, tgt, params, *dtypes = row
        tdtype = np.int64 if _all_ints(tgt) and spec_uses_index(spec) else np.float64
        if isinstance(inp, dict):  # every array by name: {"input": ..., "input2": ..., "target": ...}
            arrays = {k: _a(v) for k, v in inp.items()}
        else:
            arrays = {"input": _a(inp)} if tgt is None else {"input": _a(inp), "target": _a(tgt, tdtype)}
        out.append(Case(spec, f"edge-{name}", {"table": "edges", "row": name, "why": why}, arrays,
                        {k: (_a(v) if isinstance(v, list) else v) for k, v in params.items()},
                        tuple(dtypes[0]) if dtypes else ()))
    return tuple(out)


def _all_ints(x):
    if isinstance(x, list):
        return all(_all_ints(v) for v in x)
    return isinstance(x, int) or (isinstance(x, np.ndarray) and x.dtype.kind == "i")


def spec_uses_index(spec):
    return spec in ("softmax_cross_entropy", "nll_loss", "sparse_categorical_cross_entropy")
