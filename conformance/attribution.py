"""Attribution by ablation: which named differences turn one binding's expectation into another's.

What a binding is expected to return on a case is fixed by its *setting*, a set of knobs:

- ``loss``: the spec it computes (``binary_cross_entropy`` or ``softmax_cross_entropy_soft``);
- each convention of either spec (``log_min``, ``prob_eps``, ``mean_by``, ...), the plain
  value where a binding declares none;
- ``class_axis``, where the two bindings read one array in different layouts;
- ``default <param>`` for each parameter whose effective value differs between the two
  because one binding takes it from its own defaults (PyTorch's ``ignore_index=-100``).

Switching a set S of knobs from A's value to B's and recomputing the oracle gives a
prediction; ``closes(S)`` is the share of the gap between A's and B's predictions that S
closes (1 when the prediction matches B's within tolerance). Each knob is reported with
what it closes *alone* and its *share*: its Shapley value, the average of what it adds over
every order of switching, so the shares add up to what switching everything closes. The
smallest set that closes the gap completely is the explanation; what no set closes is
unexplained. ``lossparity explain`` and the divergences of a run both use :func:`attribute`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import combinations
from math import factorial
from typing import Any

import numpy as np

from lossparity.conformance.compare import compare
from lossparity.conformance.pairs import to_common
from lossparity.conformance.runner import expect, expect_gradients
from lossparity.core.dtypes import numpy_dtype, tolerance
from lossparity.core.model import ARRAY_PARAMS, Binding, Case, Spec
from lossparity.reference.conventions import CONVENTIONS
from lossparity.reference.errors import OracleError
from lossparity.reference.trace import NO_TRACE

LOSS = "loss"
DEFAULT = "default "
#: The dtype a binding computes in (``Binding.computes_in``: a Keras loss class computes float16
#: inputs in float32), a knob where two bindings of one case compute in different dtypes.
COMPUTE = "compute dtype"
#: The dtype a side's arrays are given in, a knob where two calls of ``lossparity explain`` are
#: given different ones (a float64 tensor and its float32 twin).
INPUT_DTYPE = "input dtype"
#: Which side's arrays a spec reads, a knob where two calls of one spec are given different ones
#: (``BCELoss()(torch.sigmoid(z), y)`` against ``BCELoss()(p, y)``): ``"A's"`` or ``"B's"``.
ARGUMENTS = "arguments"
#: Exhaustive ablation costs 2**k oracle calls; above this many knobs only singles are tried.
MAX_EXHAUSTIVE = 10


@dataclass(frozen=True)
class Prediction:
    """An oracle outcome: a float64 value, or the class name of the error it documents."""

    value: np.ndarray | None = None
    error: str | None = None


def knobs(
    spec: Spec, binding: Binding, params: Mapping[str, Any], names: tuple[str, ...] = (), dtype: str | None = None
) -> dict:
    """The binding's setting on a case: its loss, conventions (``names`` adds another spec's),
    the scalar parameters it computes with, as ``default <param>`` knobs, and (given the case's
    ``dtype``) the dtype it computes in."""
    out: dict[str, Any] = {LOSS: spec.name}
    if dtype is not None:
        out[COMPUTE] = binding.result_dtype(dtype)
    for name in dict.fromkeys(spec.conventions + tuple(names)):
        out[name] = binding.conventions.get(name, CONVENTIONS[name].plain)
    for name, value in params.items():
        if name not in ARRAY_PARAMS:
            out[DEFAULT + name] = value
    return out


def predict(
    setting: Mapping[str, Any],
    specs: Mapping[str, Spec],
    case_for: Callable[[Mapping], Case],
    dtype: str,
    trace=NO_TRACE,
    *,
    part: str | None = None,
    shape: tuple | None = None,
) -> Prediction:
    """The oracle's outcome under a setting; ``case_for`` reads the case as that setting would
    (a probability spec reads ``sigmoid(z)`` where its logits twin reads ``z``). ``part``: the
    gradient of the summed loss with respect to that argument (``runner.expect_gradients``),
    not the value. ``shape``: the common form's shape (``pairs.to_common``): a per-element value
    is brought to it by its per-sample mean, and its gradient accordingly."""
    spec = specs[setting[LOSS]]
    case = case_for(setting)
    params = {
        k.removeprefix(DEFAULT): v
        for k, v in setting.items()
        if k.startswith(DEFAULT) and k.removeprefix(DEFAULT) in spec.defaults and v is not None
    }
    params.update({k: v for k, v in case.params.items() if k in ARRAY_PARAMS and k in spec.defaults})
    conventions = {k: v for k, v in setting.items() if k in spec.conventions}
    given = setting.get(INPUT_DTYPE) or dtype
    compute = setting.get(COMPUTE) or given
    try:
        if part is None:
            computed = expect(spec, case, params, conventions, compute, trace=trace, given=given)
            return Prediction(value=computed if shape is None else to_common(computed, shape))
        if spec.gradient is None:
            return Prediction(error="no gradient")
        try:
            grads = expect_gradients(spec, case, params, conventions, compute, given=given)
        except (ValueError, IndexError) as exc:  # a setting whose case this gradient cannot read
            return Prediction(error=type(exc).__name__)
        if part not in grads:
            return Prediction(error="no gradient")
        if shape is None:
            return Prediction(value=grads[part])
        # the slope of the per-sample mean, where this setting's value is per element
        value = expect(spec, case, params, conventions, compute, given=given)
        return Prediction(value=to_common(grads[part], shape, value.shape))
    except OracleError as exc:
        return Prediction(error=exc.kind)


def gap_closed(x: Prediction, a: Prediction, b: Prediction, spec_name: str, dtype: str) -> float:
    """The share of the gap from ``a`` to ``b`` that ``x`` closes: 1 at ``b``, 0 at ``a`` or when
    incomparable, negative when ``x`` lies further from ``b`` than ``a`` does.

    Distances are L1 over the elements that differ beyond tolerance; when ``a`` misses ``b``
    by a non-finite amount (an inf or nan where a number was due) they are counts of such
    elements instead.
    """
    if same(x, b, spec_name, dtype):
        return 1.0
    if x.error is not None or b.error is not None or a.error is not None:
        return 0.0
    d0, dx = _distance(a.value, b.value, spec_name, dtype), _distance(x.value, b.value, spec_name, dtype)
    if d0 is None or dx is None:
        return 0.0
    if d0[0]:  # counts of non-finite misses
        return (d0[0] - dx[0]) / d0[0]
    if dx[0] or d0[1] == 0:
        return 0.0
    return 1.0 - dx[1] / d0[1]


def _distance(x: np.ndarray, y: np.ndarray, spec_name: str, dtype: str):
    if x.shape != y.shape:
        return None
    tol = tolerance(spec_name, dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        both_nan = np.isnan(x) & np.isnan(y)
        same_inf = np.isinf(x) & (x == y)
        finite = np.isfinite(x) & np.isfinite(y)
        close = both_nan | same_inf | (finite & (np.abs(x - y) <= tol.atol + tol.rtol * np.abs(y)))
        nonfinite_miss = int(np.count_nonzero(~close & ~finite))
        l1 = float(np.sum(np.where(close | ~finite, 0.0, np.abs(x - y))))
    return nonfinite_miss, l1


def same(x: Prediction, y: Prediction, spec_name: str, dtype: str) -> bool:
    """Whether two predictions agree: the same error, or values within ``dtype``'s tolerance,
    each past the dtype's range read as its infinity (as ``compare`` reads an expectation): two
    predictions of 2.1e8 for a float16 result are both inf."""
    if x.error is not None or y.error is not None:
        return x.error == y.error
    if np.shape(x.value) == np.shape(y.value) and np.array_equal(x.value, y.value, equal_nan=True):
        return True
    with np.errstate(over="ignore"):
        held = np.asarray(x.value, np.float64).astype(numpy_dtype(dtype)).astype(np.float64)
    value = np.where(np.isinf(held) & np.isfinite(x.value), held, x.value)
    return compare(value, y.value, tolerance(spec_name, dtype), dtype).ok


def shape_only(x: Prediction, y: Prediction, spec_name: str, dtype: str) -> bool:
    """Whether two predictions hold the same values in different shapes (a per-sample mean over
    a last axis of one element against the per-element losses)."""
    if x.value is None or y.value is None or np.shape(x.value) == np.shape(y.value):
        return False
    if np.size(x.value) != np.size(y.value):
        return False
    flat = Prediction(value=np.ravel(x.value))
    return same(flat, Prediction(value=np.ravel(y.value)), spec_name, dtype)


def attribute(
    a_setting: Mapping[str, Any],
    b_setting: Mapping[str, Any],
    specs: Mapping[str, Spec],
    case_for: Callable[[Mapping], Case],
    dtype: str,
    *,
    ignore: tuple[str, ...] = (),
    part: str | None = None,
    shape: tuple | None = None,
    shares: bool = True,
) -> dict:
    """Which knobs in which settings A and B differ turn A's prediction into B's, and by how much.

    ``part`` and ``shape`` (:func:`predict`): the gradient with respect to ``part`` is
    attributed, not the value; every prediction is brought to the common form of ``shape``
    first, so a knob that changes only a result's shape (``sample_axis`` against a
    per-element result in the per-sample form) closes nothing and is never credited.
    ``shares=False`` leaves each knob's Shapley share out (``None``): it costs every subset's
    prediction, where the smallest explaining set is usually found among the first few.

    Returns ``differing`` (each knob with A's and B's value, what it closes alone and its
    share), ``conventions`` (the smallest set that closes the gap completely, empty when
    none does; where several sets of that size do, the first with the loss itself tried last, and
    the others as ``alternatives``), ``closed`` (what switching every differing knob closes) and ``status``:
    ``same`` (the predictions already agree), ``shape`` (the same values in another shape:
    ``shapes`` gives both, and no knob is credited), ``explained`` or ``unexplained``.
    """
    sa, sb = _aligned(a_setting, b_setting)
    differing = [k for k in sa if k not in ignore and sa[k] != sb[k]]
    # the ignored knobs (a layout: where the adapter puts the class axis) change no canonical value
    # and are credited with nothing, but they travel with any switch: a convention that depends on
    # the layout (last_axis_only: only a last class axis is supported) is tried in B's
    layout = {k: sb[k] for k in ignore if k in sb}
    cache: dict[frozenset, Prediction] = {}

    def run(switched: frozenset) -> Prediction:
        if switched not in cache:
            setting = {**sa, **(layout if switched else {}), **{k: sb[k] for k in switched}}
            cache[switched] = predict(setting, specs, case_for, dtype, part=part, shape=shape)
        return cache[switched]

    # Closeness is judged in the spec B computes, whose tolerance its value is held to.
    spec_name, empty, full = sb[LOSS], frozenset(), frozenset(differing)
    pa, pb = run(empty), predict(sb, specs, case_for, dtype, part=part, shape=shape)

    def closes(s: frozenset) -> float:
        return gap_closed(run(s), pa, pb, spec_name, dtype)

    alternatives: list[list[str]] = []
    if same(pa, pb, spec_name, dtype):
        status, smallest = "same", []
    elif shape_only(pa, pb, spec_name, dtype):
        # the same numbers in another shape ((3, 1) against (3,)): no knob changes a value here
        return {
            "status": "shape",
            "differing": [
                {"name": k, "a": _plain(sa[k]), "b": _plain(sb[k]), "alone": None, "share": None} for k in differing
            ],
            "conventions": [],
            "closed": 0.0,
            "shapes": [list(np.shape(pa.value)), list(np.shape(pb.value))],
        }
    else:
        smallest = None
        exhaustive = len(differing) <= MAX_EXHAUSTIVE
        # The loss is tried last: where a convention of the two closes the gap as well, that
        # convention is the more telling cause (a weighted mean's divisor, not "another loss").
        order = [k for k in differing if k != LOSS] + [k for k in differing if k == LOSS]
        for size in range(1, len(differing) + 1 if exhaustive else 2):
            closing = [list(c) for c in combinations(order, size) if same(run(frozenset(c)), pb, spec_name, dtype)]
            if closing:
                smallest, alternatives = closing[0], closing[1:]
                break
        if smallest is None and same(run(full), pb, spec_name, dtype):
            smallest, alternatives = list(differing), []
        status = "explained" if smallest else "unexplained"
    shares = _shapley(differing, closes) if shares and status != "same" and len(differing) <= MAX_EXHAUSTIVE else {}
    return {
        "status": status,
        "differing": [
            {
                "name": k,
                "a": _plain(sa[k]),
                "b": _plain(sb[k]),
                "alone": None if status == "same" else closes(frozenset([k])),
                "share": shares.get(k),
            }
            for k in differing
        ],
        "conventions": smallest or [],
        "closed": 1.0 if status == "same" else closes(full),
        **({"alternatives": alternatives} if alternatives else {}),
    }


def _aligned(a_setting: Mapping[str, Any], b_setting: Mapping[str, Any]) -> tuple[dict, dict]:
    """Both settings over the same knobs: a knob one side lacks takes its plain value there."""
    names = list(dict.fromkeys([*a_setting, *b_setting]))
    fill = {
        k: (None if k.startswith(DEFAULT) or k in (LOSS, COMPUTE, INPUT_DTYPE, ARGUMENTS) else CONVENTIONS[k].plain)
        for k in names
    }
    return {k: a_setting.get(k, fill[k]) for k in names}, {k: b_setting.get(k, fill[k]) for k in names}


def unverified(
    attribution: Mapping,
    a_setting: Mapping[str, Any],
    b_setting: Mapping[str, Any],
    specs: Mapping[str, Spec],
    case_for: Callable[[Mapping], Case],
    dtype: str,
    *,
    part: str | None = None,
) -> list[str]:
    """The claims of an attribution that running the oracle again does not bear out (empty when
    every one holds): ``same`` and ``shape`` are what the two predictions are; an explanation's
    knobs, switched together, turn A's prediction into B's, and each one is needed (without it,
    the others do not). ``lossparity explain`` prints no cause that fails this."""
    sa, sb = _aligned(a_setting, b_setting)
    spec_name = sb[LOSS]

    def run(switched) -> Prediction:
        return predict({**sa, **{k: sb[k] for k in switched}}, specs, case_for, dtype, part=part)

    pa, pb = run(()), predict(sb, specs, case_for, dtype, part=part)
    status, named = attribution["status"], list(attribution["conventions"])
    out = []
    if status == "same" and not same(pa, pb, spec_name, dtype):
        out.append("the predictions are said to agree, and do not")
    if status == "shape" and not shape_only(pa, pb, spec_name, dtype):
        out.append("the predictions are said to differ in shape alone, and do not")
    if status == "explained":
        if not same(run(named), pb, spec_name, dtype):
            out.append(f"switching {', '.join(named)} does not turn A's prediction into B's")
        for k in named:
            if len(named) > 1 and same(run([n for n in named if n != k]), pb, spec_name, dtype):
                out.append(f"{k} is named, and the others alone already turn A's prediction into B's")
            if len(named) == 1 and same(pa, pb, spec_name, dtype):
                out.append(f"{k} is named, and the predictions agree without it")
    return out


def _shapley(players: list[str], value: Callable[[frozenset], float]) -> dict[str, float]:
    n = len(players)
    out = {}
    for p in players:
        others = [q for q in players if q != p]
        total = 0.0
        for size in range(n):
            weight = factorial(size) * factorial(n - size - 1) / factorial(n)
            for combo in combinations(others, size):
                s = frozenset(combo)
                total += weight * (value(s | {p}) - value(s))
        out[p] = total
    return out


def _plain(v):
    return v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)
