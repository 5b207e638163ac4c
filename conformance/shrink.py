"""The smallest case that shows it: each group of findings shrunk to a minimal reproducer.

A finding is a result that is not ``conform`` (``deviate``, ``error_mismatch``, ``crash``,
``timeout``, ``known``; ``unconfirmed`` is left alone: it did not reproduce alone, so no case
shows it on demand). Findings are grouped by what they show (:func:`group_key`): spec, binding,
dtype, mode, verdict, and for each failing part (``symptoms.failing_parts``) its name, its
verdict and its *symptom kind* (the first kind of ``symptoms.derive``, its bound figures aside:
``nonfinite nan``, ``error ValueError``, ``bound``); a ``known`` result also by the entry that
explains each part (``known.Match``). For each group, the case of fewest elements is shrunk: a
candidate is kept when the real framework call on it, judged exactly as a run judges
(``runner.evaluate``, with the run's known deviations, under the original case id so that an
entry placed on that case still applies), gives a result of the same group key.

Why a delta-debugging pass of our own and not Hypothesis' shrinker. The cases are drawn by
Hypothesis (``conformance/generate.py``), but (1) the finding is decided after the framework
call, in the sandbox's child, one batch per binding and dtype, long after the draw: Hypothesis
shrinks the choice sequence of a failing ``@given`` test, which a run neither keeps nor replays;
(2) a case's shapes and parameters are pinned per structure bucket (``generate._Bucket``), so
Hypothesis could shrink values but never the batch or the rank, which is most of the gain;
(3) the edge-table cases, a large share of the findings, were never drawn at all; (4) its
shrinker takes hundreds of calls, and every new shape costs JAX and Keras on JAX a compilation.
The pass here works on the case itself, knows the spec's shape rules, and tries few, large moves
first, each step one real call:

1. **parameters** back at their defaults (all at once, then one by one);
2. **shape**: along each axis of the input (batch rows first, then the others, classes last),
   keep a half, then drop a quarter, then (8 or fewer) one index; an axis of length 1 that is
   not the class axis is dropped (a lower rank). Arrays tied to the axis are cut alike: a target
   of the input's shape, class indices (the input's shape without its class axis), a per-class
   weight, the spec's further arrays of the input's shape or of its leading axes; a candidate
   that ``explain.build_case`` refuses is never called;
3. **values**: each float array filled with 0, then 1; then each element replaced by a simpler
   one (0, 1, -1, 0.5, -0.5, 2, -2, its nearest power of two, its integer), simpler by
   :func:`complexity`; class indices towards 0. An extreme (an infinity, NaN, a huge or tiny
   number) that the symptom needs stays, since no simpler value shows it.

Budget (:class:`Budget`): a per-group step limit (``DEFAULT_STEPS`` calls) and a per-process
share of time: the shrinking of a test process never takes more than ``SHARE`` (15%) of the time
its batches took, plus ``GRACE_S`` seconds (checked before each step). A timeout group is shrunk
only when the budget left covers a step at the time limit and its rerun. ``--no-shrink`` turns
it off.

In a run each step is a one-case batch of the sandbox's child (``sandbox.run_batch``): a step
that crashes or hangs is rerun alone and recorded like any other (``runner.lost``). In a crash
group such a step is a step kept (the same symptom); elsewhere it is a finding of its own, a
``result`` line whose case id is ``<original>~shrink<step>`` (``origin.table`` ``shrink``), and
the shrinking of the group stops there.

The outcome is one ``shrunk`` line per group (schema ``$defs/shrunk``): the shrunk case's result
record and the original's, each whole (values, the oracle's value, the framework's, the
reproducer), elements before and after, steps, seconds, why it stopped, and the
``lossparity explain`` command that reproduces the shrunk case.

Divergences (:func:`divergence_key`, :func:`shrink_divergence`): an unexplained divergence
between two bindings is shrunk, in a lighter version, to the smallest case on which the two
still disagree in the same way: both results of the same group key as on the original case, and
the two values still apart beyond the tolerance (``divergence._same``), through the same moves.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import shlex
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from lossparity.conformance.options import DEFAULT_SHRINK_STEPS, SHRINK_SHARE
from lossparity.core.model import ARRAY_PARAMS, Binding, Case, Spec, framework_layout
from lossparity.core.records import encode_value, raw_lines

#: Calls (steps) one group's shrinking may take at most (``--shrink-steps``' default).
DEFAULT_STEPS = DEFAULT_SHRINK_STEPS
#: The share of a test process's batch time its shrinking may take at most.
SHARE = SHRINK_SHARE
#: Verdicts whose groups are shrunk (``unconfirmed``: not reproducible alone); ``known`` only with
#: ``--shrink-known`` (``Budget.known``): a known deviation's entry already carries its reproducer,
#: and shrinking every known group again took a tenth of a default run's worker time.
SHRUNK_VERDICTS = ("deviate", "error_mismatch", "crash", "timeout", "known")
#: Why a group's shrinking stopped.
STOPPED = ("minimal", "steps", "time", "crash")

#: Simple values, simplest first: what an element is replaced by.
SIMPLE = (0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0)


#: Seconds of shrinking a test process may take before its batches have earned any: without it
#: a first batch with findings could never be shrunk (a default run's worker earns 60 s or more).
GRACE_S = 2.0


@dataclass
class Budget:
    """What shrinking may still spend in this process: ``steps`` per group; in time, ``share`` of
    the batch time seen so far (``ran``, seconds) and ``grace`` seconds, less what shrinking has
    taken (``spent``)."""

    steps: int = DEFAULT_STEPS
    share: float = SHARE
    ran: float = 0.0
    spent: float = 0.0
    grace: float = GRACE_S
    known: bool = False  # groups of known deviations shrunk too (``--shrink-known``)

    def left(self) -> float:
        return self.share * self.ran + self.grace - self.spent

    def verdicts(self) -> tuple[str, ...]:
        """The verdicts whose groups this budget shrinks."""
        return SHRUNK_VERDICTS if self.known else tuple(v for v in SHRUNK_VERDICTS if v != "known")


#: This process's budget (one per test process: each xdist worker keeps its own share).
BUDGET = Budget()


# -- what a finding shows ------------------------------------------------------------------------


def _kind(part) -> tuple:
    """The symptom kind of a failing part: the first kind ``derive`` finds, with its arguments but
    not its bound figures (``("nonfinite", (("nonfinite", "nan"),))``), or the part's verdict
    where no kind describes it."""
    from lossparity.conformance.symptoms import derive, signature

    derived = derive(part)
    return signature(derived)[0] if derived else (part.verdict, ())


def group_key(record: Mapping) -> tuple:
    """What makes two results one finding group: spec, binding, dtype, mode, device, verdict, each
    failing part's (name, verdict, symptom kind), and for a known result the entry of each part."""
    from lossparity.conformance.symptoms import failing_parts

    parts = tuple((p.name, p.verdict, _kind(p)) for p in failing_parts(record))
    known = record.get("known") or {}
    explained = tuple(sorted((known.get("parts") or {}).items())) if record.get("verdict") == "known" else ()
    return (
        record.get("spec"),
        record.get("binding"),
        record.get("dtype"),
        record.get("mode"),
        record.get("device"),
        record.get("verdict"),
        parts,
        explained,
    )


def symptom_words(key: tuple) -> list[dict]:
    """A group key's failing parts as the ``shrunk`` line says them: part, verdict, symptom."""
    out = []
    for name, verdict, (kind, args) in key[6]:
        words = " ".join([kind, *(str(v) if k != "oracle" else f"oracle={v}" for k, v in args)])
        out.append({"part": name, "verdict": verdict, "symptom": words})
    return out


def elements(case_or_record) -> int:
    """How many numbers a case holds: every array's elements (input, target, further arrays, array
    parameters); for a record, its ``inputs``."""
    if isinstance(case_or_record, Case):
        arrays = [*case_or_record.arrays.values(), *(v for v in case_or_record.params.values() if _is_array(v))]
        return int(sum(np.size(a) for a in arrays))
    return int(sum(math.prod(a.get("shape", ())) for a in (case_or_record.get("inputs") or {}).values()))


def _is_array(v) -> bool:
    return isinstance(v, np.ndarray)


# -- the search ----------------------------------------------------------------------------------


def complexity(x: float) -> int:
    """How simple a number reads (smaller: simpler): 0; +-1; +-0.5 and +-2; other powers of two;
    other integers; NaN and infinities; anything else."""
    if x == 0:
        return 0
    if not math.isfinite(x):
        return 5
    a = abs(x)
    if a == 1:
        return 1
    if a in (0.5, 2.0):
        return 2
    m, _ = math.frexp(a)
    if m == 0.5:
        return 3
    if x == round(x):
        return 4
    return 6


def _simpler(x: float, integer: bool) -> list[float]:
    """Values simpler than ``x`` to try in its place, simplest first (class indices: 0)."""
    if integer:
        return [0] if x != 0 else []
    out = list(SIMPLE)
    if math.isfinite(x) and x != 0:
        out.append(math.copysign(2.0 ** round(math.log2(abs(x))), x))
        out.append(float(round(x)))
    seen, tried = set(), []
    for v in out:
        if v not in seen and complexity(v) < complexity(x):
            seen.add(v)
            tried.append(v)
    return tried


def _ties(spec: Spec, case: Case) -> dict[str, list[int | None]]:
    """For every array of the case but the input, which input axis each of its axes is cut with
    (None: broadcast or not tied: left whole)."""
    x = case.arrays["input"]
    out: dict[str, list[int | None]] = {}
    named = {**case.arrays, **{k: v for k, v in case.params.items() if _is_array(v)}}
    for name, a in named.items():
        if name == "input":
            continue
        shape = np.shape(a)
        if name == "target" and spec.target == "index":
            offset = 0  # the input's shape without its class axis
        elif len(shape) == x.ndim:
            offset = 0
        elif name not in ARRAY_PARAMS and x.shape[: len(shape)] == shape:
            offset = 0  # a per-sample array: the input's leading axes
        else:
            offset = x.ndim - len(shape)  # broadcasting: aligned on the right (a per-class weight)
        axes: list[int | None] = []
        for k, n in enumerate(shape):
            i = k + offset
            axes.append(i if 0 <= i < x.ndim and n == x.shape[i] and n != 1 else None)
        out[name] = axes
    return out


def _cut(spec: Spec, case: Case, axis: int, keep: np.ndarray | None) -> Case:
    """The case with the input's ``axis`` cut to the indices ``keep`` (None: the axis, of length
    1, dropped), every tied array alike."""
    ties = _ties(spec, case)

    def one(name: str, a: np.ndarray) -> np.ndarray:
        if name == "input":
            return np.squeeze(a, axis) if keep is None else np.take(a, keep, axis=axis)
        axes = ties[name]
        if axis in axes:
            k = axes.index(axis)
            return np.squeeze(a, k) if keep is None else np.take(a, keep, axis=k)
        if keep is None and len(axes) == case.arrays["input"].ndim and a.shape[axis] == 1:
            return np.squeeze(a, axis)  # a broadcast axis of the same place goes with it
        return a

    arrays = {n: one(n, a) for n, a in case.arrays.items()}
    params = {n: (one(n, v) if _is_array(v) else v) for n, v in case.params.items()}
    return dataclasses.replace(case, arrays=arrays, params=params)


def _valid(spec: Spec, binding: Binding, case: Case, dtype: str) -> bool:
    """Whether the case keeps the spec's shape rules (``explain.build_case`` accepts it) and the
    binding's oracle can read it (``runner.begin``: an OracleError is a documented error, a
    case; any other error says the case is malformed, as a rank the binding's conventions
    cannot reduce over), so that no step is spent on a case a run would never hold."""
    from lossparity.conformance.explain import build_case
    from lossparity.conformance.runner import begin

    try:
        build_case(spec, dict(case.arrays), {k: v for k, v in case.params.items() if _is_array(v)}, -1)
        with np.errstate(all="ignore"):
            return begin(binding, spec, case, dtype) is not None
    except (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError):  # CaseError is a ValueError
        return False


def _moves(spec: Spec, binding: Binding, case: Case) -> Iterator[Case]:
    """Candidate cases smaller or simpler than ``case``, biggest gains first."""
    # 1. parameters back at their defaults (those the binding requires stay)
    free = [n for n in case.params if n not in binding.requires]
    if len(free) > 1:
        yield dataclasses.replace(case, params={k: v for k, v in case.params.items() if k not in free})
    for name in free:
        yield dataclasses.replace(case, params={k: v for k, v in case.params.items() if k != name})
    # 2. shape: each axis of the input, halves, quarters, single indices; length 1 dropped
    x = case.arrays["input"]
    for axis in range(x.ndim):
        n = x.shape[axis]
        last = spec.classes and axis == x.ndim - 1
        if n == 1:
            if not last:
                yield _cut(spec, case, axis, None)
            continue
        half = n // 2
        yield _cut(spec, case, axis, np.arange(half))
        yield _cut(spec, case, axis, np.arange(half, n))
        if n > 8:
            q = math.ceil(n / 4)
            for start in range(0, n, q):
                yield _cut(spec, case, axis, np.r_[0:start, min(n, start + q) : n])
        elif n > 2:
            for i in range(n):
                yield _cut(spec, case, axis, np.delete(np.arange(n), i))
    # 3. values: whole arrays at 0 and 1, then element by element
    floats = [n for n, a in _named(case).items() if a.dtype.kind == "f"]
    for name in floats:
        a = _named(case)[name]
        for fill in (0.0, 1.0):
            if a.size > 1 and not np.all(a == fill):
                yield _with(case, name, np.full_like(a, fill))
    for name, a in _named(case).items():
        integer = a.dtype.kind in "iu"
        if integer and name != "target":
            continue  # lengths and the like: their values are shape rules of their own
        for i in range(a.size):
            for v in _simpler(float(a.flat[i]), integer):
                b = a.copy()
                b.flat[i] = v
                yield _with(case, name, b)


def _named(case: Case) -> dict[str, np.ndarray]:
    return {**case.arrays, **{k: v for k, v in case.params.items() if _is_array(v)}}


def _with(case: Case, name: str, a: np.ndarray) -> Case:
    if name in case.arrays:
        return dataclasses.replace(case, arrays={**case.arrays, name: a})
    return dataclasses.replace(case, params={**case.params, name: a})


def _fingerprint(case: Case) -> tuple:
    def one(v):
        return (v.shape, v.dtype.str, v.tobytes()) if _is_array(v) else repr(v)

    return (
        tuple(sorted((k, one(v)) for k, v in case.arrays.items())),
        tuple(sorted((k, one(v)) for k, v in case.params.items())),
    )


@dataclass
class Outcome:
    """Where one group's shrinking ended: the smallest case kept and its record, the steps taken
    (calls), those kept, the seconds, why it stopped, and the findings met on the way (crashes
    and hangs of steps that were not the group's symptom: result records)."""

    case: Case
    record: Mapping
    steps: int = 0
    kept: int = 0
    seconds: float = 0.0
    stopped: str = "minimal"
    findings: list[dict] = field(default_factory=list)


def search(
    spec: Spec,
    binding: Binding,
    case: Case,
    record: Mapping,
    judge: Callable[[Case], Mapping | None],
    accept: Callable[[Mapping], bool],
    *,
    steps: int = DEFAULT_STEPS,
    time_left: Callable[[], float] = lambda: math.inf,
    step_cost: float = 0.0,
) -> Outcome:
    """Greedy delta debugging from ``case`` (whose result is ``record``): take the first move of
    :func:`_moves` whose result ``judge`` gives and ``accept`` takes, start the moves again from
    it, until none is taken (``minimal``), ``steps`` calls were made, or ``time_left()`` falls
    below ``step_cost`` (``time``). A result that ``accept`` refuses and that crashed, hung or
    did not reproduce alone ends the search (``crash``) and is kept in ``findings``."""
    started = time.perf_counter()
    out = Outcome(case, record)
    tried: set[tuple] = {_fingerprint(case)}
    improved = True
    while improved:
        improved = False
        for candidate in _moves(spec, binding, out.case):
            fp = _fingerprint(candidate)
            if fp in tried:
                continue
            tried.add(fp)
            if elements(candidate) > elements(out.case) or not _valid(spec, binding, candidate, record["dtype"]):
                continue
            if out.steps >= steps:
                out.stopped = "steps"
                break
            if time_left() <= step_cost:
                out.stopped = "time"
                break
            out.steps += 1
            got = judge(candidate)
            if got is not None and accept(got):
                out.case, out.record, out.kept = candidate, got, out.kept + 1
                improved = True
                break
            if got is not None and got.get("verdict") in ("crash", "timeout", "unconfirmed"):
                out.findings.append(dict(got))
                out.stopped = "crash"
                break
        if out.stopped != "minimal":
            break
    out.seconds = time.perf_counter() - started
    return out


# -- groups of a batch ---------------------------------------------------------------------------


def groups(records: Iterable[Mapping], verdicts: tuple[str, ...] = SHRUNK_VERDICTS) -> dict[tuple, list[Mapping]]:
    """The findings among ``records`` of ``verdicts`` by :func:`group_key`, in order of first appearance."""
    out: dict[tuple, list[Mapping]] = {}
    for r in records:
        if r.get("kind") == "result" and r.get("verdict") in verdicts:
            out.setdefault(group_key(r), []).append(r)
    return out


def shrink_batch(
    binding: Binding,
    spec: Spec,
    dtype: str,
    units: Iterable[tuple[Case, str]],
    records: Iterable[Mapping],
    judge: Callable[[Case, str], Mapping | None],
    *,
    budget: Budget | None = None,
    timeout_s: float | None = None,
) -> list[dict]:
    """The ``shrunk`` lines of one batch (one binding in one dtype), and the result lines of the
    findings met while shrinking: each group of ``records`` (:func:`groups`) shrunk from its case
    of fewest elements. ``units``: the batch's (case, mode) pairs, to find each record's case;
    ``judge(case, mode)``: the record of one case through the binding, as the run judges it."""
    budget = BUDGET if budget is None else budget
    began = time.perf_counter()  # everything here is charged to the budget, not the steps alone
    cases = {c.id: c for c, _ in units}
    out: list[dict] = []
    for key, members in groups(records, budget.verdicts()).items():
        first = min(members, key=elements)
        case = cases.get(first["case_id"])
        if case is None:
            continue
        mode = first["mode"]
        cost = 2 * timeout_s if key[5] == "timeout" and timeout_s else 0.0
        found = search(
            spec,
            binding,
            case,
            first,
            lambda c, mode=mode: judge(c, mode),
            lambda r, key=key: group_key(r) == key,
            steps=budget.steps,
            time_left=lambda: budget.left() - (time.perf_counter() - began),
            step_cost=cost,
        )
        for i, finding in enumerate(found.findings):
            out.append(_renamed(finding, f"{case.id}~shrink{found.steps}" + (f".{i}" if i else ""), case.id))
        out.append(shrunk_line(key, binding, spec, first, found, len(members)))
    budget.spent += time.perf_counter() - began
    return out


def _renamed(record: Mapping, case_id: str, original: str) -> dict:
    """A record judged under the original case id, as a line of its own: a case id of its own."""
    return {**record, "case_id": case_id, "origin": {"table": "shrink", "from": original}}


def shrunk_line(key: tuple, binding: Binding, spec: Spec, original: Mapping, found: Outcome, count: int) -> dict:
    """The ``shrunk`` line of one group (schema ``$defs/shrunk``)."""
    shrunk = dict(found.record)
    if found.kept:
        shrunk = _renamed(shrunk, f"{original['case_id']}~shrunk", original["case_id"])
    return {
        "kind": "shrunk",
        "spec": spec.name,
        "binding": binding.id,
        "framework": binding.framework,
        "dtype": original["dtype"],
        "device": original.get("device", "cpu"),
        "mode": original["mode"],
        "verdict": original["verdict"],
        "symptom": symptom_words(key),
        "known": list(dict.fromkeys(e for _, e in key[7])),
        "results": count,
        "elements": {"before": elements(original), "after": elements(shrunk)},
        "steps": found.steps,
        "kept": found.kept,
        "seconds": round(found.seconds, 3),
        "stopped": found.stopped,
        "explain": explain_command(binding, spec, found.case, original["dtype"], original["mode"], key),
        "case": shrunk,
        "original": dict(original),
    }


# -- the command that reproduces it --------------------------------------------------------------


def _literal(a) -> str:
    """An array as ``lossparity explain`` reads it: nested lists, shortest round-trip floats,
    ``nan``, ``inf``, ``-inf``."""
    a = np.asarray(a)
    if a.size == 0 and a.ndim != 1:  # nested lists cannot spell (0, 3)
        return f"np.empty({tuple(a.shape)})"
    if a.ndim == 0:
        v = a.item()
        if isinstance(v, float):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        return str(int(v)) if not isinstance(v, bool) else str(v).lower()
    return "[" + ", ".join(_literal(x) for x in a) + "]"


def _param(value) -> str:
    if _is_array(value):
        return _literal(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    v = encode_value(value)
    return str(v)


@functools.cache
def _shared_ids() -> frozenset[str]:
    """Binding ids bound to more than one spec (``explain`` needs ``SPEC:ID`` for them); the
    registry is read once per process (``all_bindings`` takes about 50 ms)."""
    from collections import Counter

    from lossparity.conformance.registry import all_bindings

    return frozenset(i for i, n in Counter(b.id for b in all_bindings()).items() if n > 1)


def explain_command(
    binding: Binding, spec: Spec, case: Case, dtype: str, mode: str, key: tuple = (), *, other: Binding | None = None
) -> str:
    """The ``lossparity explain`` command line that runs the binding (and ``other`` beside it: a
    divergence) on the case: its arrays in the binding's own layout (its class axis), its
    parameters in the spec's vocabulary, the dtype and mode, ``--grad`` where a gradient part
    fails. A binding id bound to several specs is named ``SPEC:ID``."""
    names = [f"{spec.name}:{b.id}" if b.id in _shared_ids() else b.id for b in (binding, other) if b is not None]
    arrays = framework_layout(dict(case.arrays), binding.conventions.get("class_axis", -1))
    words = ["lossparity", "explain", *names, "--input", _literal(arrays["input"])]
    if "target" in arrays:
        words += ["--target", _literal(arrays["target"])]
    for n in spec.arrays:
        if n in arrays:
            words += ["--array", f"{n}={_literal(arrays[n])}"]
    for n, v in case.params.items():
        if v is not None:
            words += ["--param", f"{n}={_param(v)}"]
    words += ["--dtype", dtype, "--mode", mode]
    if any(part.startswith("gradient:") for part, _, _ in (key[6] if key else ())):
        words.append("--grad")
    return " ".join(shlex.quote(w) for w in words)


# -- divergences ---------------------------------------------------------------------------------


def still_unexplained(ra: Mapping, rb: Mapping, a: Binding, b: Binding) -> bool:
    """Whether two results of one case (bindings ``a`` and ``b``, one mode) make an unexplained
    divergence, judged as the end of a run judges it (``divergence.divergences_by_case``: the
    comparison, the attribution by conventions, the known deviations)."""
    from lossparity.conformance.divergence import comparable_result, divergences_by_case
    from lossparity.conformance.specs import SPECS

    if not (comparable_result(dict(ra)) and comparable_result(dict(rb))):
        return False
    found, _ = divergences_by_case([[dict(ra), dict(rb)]], {a.key: a, b.key: b}, SPECS)
    return any(d["status"] == "unexplained" and d["a"]["binding"] != d["b"]["binding"] for d in found)


def shrink_divergence(
    spec: Spec,
    a: Binding,
    b: Binding,
    case: Case,
    ra: Mapping,
    rb: Mapping,
    judge: Callable[[Binding, Case], Mapping | None],
    *,
    steps: int = DEFAULT_STEPS,
    time_left: Callable[[], float] = lambda: math.inf,
) -> tuple[Outcome, Mapping]:
    """The smallest case on which bindings ``a`` and ``b`` still disagree the same way as on
    ``case`` (results ``ra``, ``rb``): each side keeps its group key (:func:`group_key`: the same
    verdict and symptom kinds, the same known entries) and the two still make an unexplained
    divergence (:func:`still_unexplained`). ``judge(binding, case)`` runs one side; a step is
    two calls (b's only where a's result keeps its key). The moves are :func:`_moves` of ``a``,
    with the parameters either binding requires kept. Returns the outcome (``record``: a's result
    on the case kept) and b's result on it."""
    key_a, key_b = group_key(ra), group_key(rb)
    last: dict[str, Mapping] = {"b": rb}

    def both(c: Case) -> Mapping | None:
        got_a = judge(a, c)
        if got_a is None or group_key(got_a) != key_a:
            return got_a
        got_b = judge(b, c)
        if got_b is None or group_key(got_b) != key_b or not still_unexplained(got_a, got_b, a, b):
            return None
        last["b"] = got_b
        return {**got_a, "_kept": True}

    requires = dataclasses.replace(a, requires={**b.requires, **a.requires})
    found = search(spec, requires, case, ra, both, lambda r: bool(r.get("_kept")), steps=steps, time_left=time_left)
    found.record = {k: v for k, v in found.record.items() if k != "_kept"}
    return found, last["b"]


def shrink_divergences(
    path,
    divergences: Iterable[Mapping],
    judge: Callable[[Binding, Case, str, str], Mapping | None],
    *,
    budget: Budget,
) -> list[dict]:
    """The ``shrunk`` lines of a run's unexplained divergences between two bindings (one per
    spec, dtype, mode, device and pair of bindings: its first divergence), each with its
    ``divergence`` field: the other binding's result on the smallest case and on the original.
    ``path``: the results file, read once for the two sides' result lines and for the seconds its
    ``shrunk`` lines took (counted as spent from ``budget``); ``judge(binding, case, dtype,
    mode)``: one side's result on a case, as the run judges it. Divergences between
    two modes of one binding are left as they are (each side's finding, if any, is shrunk with its
    group)."""
    from lossparity.conformance.divergence import case_from_record
    from lossparity.conformance.registry import all_bindings
    from lossparity.conformance.specs import SPECS

    firsts: dict[tuple, Mapping] = {}
    for d in divergences:
        if d.get("status") == "unexplained" and d["a"]["binding"] != d["b"]["binding"]:
            group = (d["spec"], d["dtype"], d["mode"], d["device"], d["a"]["binding"], d["b"]["binding"])
            firsts.setdefault(group, d)
    if not firsts:
        return []
    wanted = {(g[0], side, g[1], g[3], g[2], d["case_id"]): None for g, d in firsts.items() for side in (g[4], g[5])}
    for raw in raw_lines(path):  # the results file is compressed: its lines as written, decompressed
        if b'"shrunk"' in raw[:40]:
            budget.spent += float(json.loads(raw).get("seconds") or 0.0)  # the workers' shrinking
            continue
        if b'"result"' not in raw[:40]:
            continue
        r = json.loads(raw)
        k = tuple(r.get(f) for f in ("spec", "binding", "dtype", "device", "mode", "case_id"))
        if k in wanted:
            wanted[k] = r
    bindings = {(b.spec, b.id): b for b in all_bindings()}
    out = []
    for (spec_name, dtype, mode, device, ia, ib), d in firsts.items():
        ra, rb = (
            wanted[spec_name, ia, dtype, device, mode, d["case_id"]],
            wanted[spec_name, ib, dtype, device, mode, d["case_id"]],
        )
        a, b = bindings.get((spec_name, ia)), bindings.get((spec_name, ib))
        if ra is None or rb is None or a is None or b is None or spec_name not in SPECS:
            continue
        spec = SPECS[spec_name]
        start = time.perf_counter()
        found, got_b = shrink_divergence(
            spec,
            a,
            b,
            case_from_record(ra),
            ra,
            rb,
            lambda binding, c, dtype=dtype, mode=mode: judge(binding, c, dtype, mode),
            steps=budget.steps,
            time_left=lambda start=start: budget.left() - (time.perf_counter() - start),
        )
        budget.spent += found.seconds
        line = shrunk_line(group_key(ra), a, spec, ra, found, 1)
        b_case = _renamed(got_b, f"{ra['case_id']}~shrunk", ra["case_id"]) if found.kept else dict(rb)
        line["divergence"] = {
            "binding": b.id,
            "framework": b.framework,
            "reason": str(d.get("reason", "")),
            "case": b_case,
            "original": dict(rb),
            "explain": explain_command(a, spec, found.case, dtype, mode, other=b),
        }
        if found.findings:  # a step crashed or hung: kept here (the run's results are concluded by now)
            line["divergence"]["crashed"] = _renamed(found.findings[0], f"{ra['case_id']}~shrink", ra["case_id"])
        out.append(line)
    return out
