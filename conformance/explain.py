"""``lossparity explain``: one case through one or two bindings, stage by stage, and why they differ.

The case is given as a user would pass it to the framework (its layout, its dtype). Each
binding reads it its own way: the spec it computes decides whether the numbers are
probabilities, logits or log-probabilities and whether the last axis holds classes; its
``class_axis`` convention decides which axis of a batched input that is. For each binding
this module calls the framework for real (and its gradient), computes the oracle under the
binding's conventions with a :class:`~lossparity.reference.trace.Trace`, and for a pair finds
the first stage at which the traces part and attributes the difference of the predictions
to the knobs in which the two settings differ (``conformance/attribution.py``).

The result is a plain dict that ``reports/explain_text.py`` prints and ``--json`` dumps;
its schema is ``$defs/explanation`` in ``lossparity/core/results.schema.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossparity.adapters.base import py_literal
from lossparity.conformance import calls, sandbox
from lossparity.conformance.attribution import ARGUMENTS, INPUT_DTYPE, LOSS, attribute, knobs, unverified
from lossparity.conformance.compare import compare
from lossparity.conformance.divergence import reason
from lossparity.conformance.known import KnownDeviation, load_known, match
from lossparity.conformance.registry import adapter_for, all_bindings
from lossparity.conformance.runner import (
    differentiated,
    expect,
    expect_gradients,
    gradient_verdicts,
    modelled_stages,
    rounding_scales,
    verdict,
    weighted,
)
from lossparity.conformance.specs import PARAMETERS, SPECS
from lossparity.core.dtypes import DTYPES, numpy_dtype, tolerance
from lossparity.core.model import (
    ARRAY_PARAMS,
    GIVEN,
    MASK_PARAMS,
    Binding,
    Case,
    CaseError,
    Spec,
    canonical_layout,
    framework_layout,
)
from lossparity.core.records import decode_array, encode_array
from lossparity.core.verdicts import RANK
from lossparity.reference import transforms as transforms_math
from lossparity.reference.errors import OracleError
from lossparity.reference.masked import class_axes, to_rows
from lossparity.reference.reduction import keras_weighted_shape
from lossparity.reference.trace import Trace

#: The "framework" of a side that is a spec name: the oracle alone, no framework call.
ORACLE = "oracle"


class ExplainError(CaseError):
    """Bad input to ``explain``: one line naming what is wrong and what would be accepted."""


@dataclass
class Side:
    """One side of an explanation: a binding reading its own call, the spec it computes and two
    views of the case: ``case`` as the oracle reads it (documented kinds, the side's transforms
    applied in float64 and rounded to its dtype as the framework stores them) and ``call_case``
    as the framework is given it (the kinds written, the transforms left to the framework)."""

    binding: Binding
    spec: Spec
    case: Case
    call_case: Case
    params: dict  # the effective parameters, spec vocabulary
    axis: int  # the class axis in the side's layout (the last axis for specs without classes)
    dtype: str
    mode: str
    raw: dict  # the arrays in the side's layout, as the oracle reads them (transformed, documented kinds)
    text: str  # the call as the user wrote it, or the binding id
    note: str | None = None  # what was assumed reading it (Keras' default backend)
    #: the binding whose call text runs, where it is not ``binding`` (whose conventions the oracle
    #: takes): Keras on TensorFlow given keras.ops.sigmoid(z) computes its from_logits twin on z
    call_binding: Binding | None = None
    domain: list = dataclasses.field(default_factory=list)  # why the case is outside the documented domain

    @property
    def held(self) -> str:
        """The dtype the side's framework holds its ``dtype`` arrays in, in its mode
        (``FrameworkAdapter.held_dtype``: float32 for float64 in JAX without ``jax_enable_x64``)."""
        if self.binding.framework == ORACLE:
            return self.dtype
        return adapter_for(self.binding.framework).held_dtype(self.dtype, self.mode)


def explain(
    ids: list[str],
    raw: Mapping[str, np.ndarray],
    params: Mapping[str, Any],
    *,
    dtype: str | tuple = "float32",
    mode: str | tuple = "eager",
    grad: bool = False,
    known: list[KnownDeviation] | None = None,
) -> dict:
    """Run the calls named by ``ids`` (one or two: binding ids, which read ``raw`` and ``params``,
    or call texts as the user wrote them, which read their arrays by name from ``raw``,
    ``conformance/calls.py``) and explain the result. ``dtype`` and ``mode``: one for both sides,
    or one per side (``("float64", "float32")``, ``"eager,jit"``); a cast in a call sets its side's
    dtype. ``known``: the known deviations a finding is matched against (default: the suite's)."""
    if not 1 <= len(ids) <= 2:
        raise ExplainError(f"explain takes one or two bindings or calls, got {len(ids)}")
    dtypes, modes = _each(dtype, len(ids), "dtype"), _each(mode, len(ids), "mode")
    for d in dtypes:
        if d not in DTYPES:
            raise ExplainError(f"unknown dtype {d!r}; accepted: {', '.join(DTYPES)}")
    sides = [resolve(i, raw, params, d, m) for i, d, m in zip(ids, dtypes, modes)]
    known = load_known() if known is None else known
    shown = [_show(s, grad, known) for s in sides]
    out: dict[str, Any] = {
        "kind": "explanation",
        "dtype": ",".join(dict.fromkeys(s.dtype for s in sides)),
        "mode": ",".join(dict.fromkeys(s.mode for s in sides)),
        "device": "cpu",
        "case": {
            "arrays": {k: encode_array(v) for k, v in raw.items()},
            "params": {k: _jsonable(v) for k, v in params.items()},
        },
        "bindings": shown,
        "parting": None,
        "attribution": None,
        "summary": [],
    }
    if len(sides) == 2:
        a, b = sides
        out["parting"] = parting(shown[0]["stages"], shown[1]["stages"])
        out["attribution"] = _attribute(a, b)
        out["gradient_attribution"] = _gradient_attributions(sides, shown)
    out["summary"] = _summary(sides, shown, out["parting"], out["attribution"])
    out["summary"] += _gradient_words(shown, out.get("gradient_attribution") or {})
    if grad:  # a side whose framework computes values only says so, and why
        for s in sides:
            adapter = None if s.binding.framework == ORACLE else adapter_for(s.binding.framework)
            if adapter is not None and not adapter.differentiates:
                why = getattr(adapter, "no_gradients", f"{adapter.framework} computes values only")
                out["summary"].append(f"No gradients of {s.binding.id}: unsupported ({why}).")
    return out


def _gradient_attributions(sides: list[Side], shown: list[dict]) -> dict:
    """For each argument both sides were differentiated with respect to, untransformed, whose two
    gradients differ beyond the narrower dtype's tolerance: the attribution of that difference (two
    backends taking different slopes at a clip bound: ``clip_tie``)."""
    a, b = sides
    out = {}
    precision = max(a.binding.result_dtype(a.held), b.binding.result_dtype(b.held), key=DTYPES.index)
    for name in shown[0]["gradients"]:
        ga, gb = shown[0]["gradients"].get(name, {}), shown[1]["gradients"].get(name, {})
        if "value" not in ga or "value" not in gb or ga["value"]["shape"] != gb["value"]["shape"]:
            continue
        if a.call_case.transforms.get(name) or b.call_case.transforms.get(name):
            continue  # a slope in z against one in sigmoid(z): not the same quantity
        x, y = decode_array(ga["value"]), decode_array(gb["value"])
        if compare(x, y, tolerance(b.spec.name, precision), precision).ok:
            continue
        out[name] = _attribute(a, b, part=name)
    return out


def _gradient_words(shown: list[dict], attributions: Mapping[str, dict]) -> list[str]:
    lines = []
    for name, att in attributions.items():
        said = {
            "same": "both are predicted to take the same slope, so the difference is each side's own",
            "shape": "the predictions differ in shape alone",
            "explained": reason(shown[0]["binding"], shown[1]["binding"], att),
            "unexplained": reason(shown[0]["binding"], shown[1]["binding"], att),
        }[att["status"]]
        lines.append(f"Their gradients with respect to {name} differ: {said}.")
    return lines


def _each(value, n: int, what: str) -> list[str]:
    """One value per side: ``"float32"`` for both, ``"float64,float32"`` or a pair for each."""
    values = value.split(",") if isinstance(value, str) else list(value)
    values = [v.strip() for v in values]
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ExplainError(f"--{what} takes one value, or one per side ({n}); got {len(values)}: {','.join(values)}")
    return values


# -- reading the case -----------------------------------------------------------------------


def _by_id() -> dict[str, list[Binding]]:
    out: dict[str, list[Binding]] = {}
    for b in all_bindings():
        out.setdefault(b.id, []).append(b)
    return out


def resolve(
    text: str, raw: Mapping[str, np.ndarray], params: Mapping[str, Any], dtype: str, mode: str = "eager"
) -> Side:
    """The side ``text`` names: a call as the user wrote it (``calls.is_call``), read into its
    binding, arrays and parameters; or a binding id reading ``raw`` and ``params``. A binding id
    binds one spec per kind of target (``torch.nn.CrossEntropyLoss``); ``SPEC:ID`` names the
    spec where the case alone cannot (a Keras loss class bound on probabilities and, with
    from_logits=True, on logits reads any numbers as probabilities)."""
    if calls.is_call(text):
        if params:
            raise ExplainError(
                f"--param applies to sides given as binding ids; write the parameters of {text!r} as its keywords"
            )
        call = calls.parse(text, raw)
        problems = []
        for binding in _candidates(call.binding_id, None, dtype, mode):
            try:
                bound = calls.bind(call, [binding])
                twin = calls.recovered_logits(binding, bound.transforms, bound.dtype or dtype, mode)
                if twin is not None:
                    return _recovered(binding, twin, bound, dtype, mode, call)
                return _side(
                    binding,
                    SPECS[binding.spec],
                    bound.arrays,
                    bound.params,
                    bound.dtype or dtype,
                    mode,
                    transforms=bound.transforms,
                    text=call.text,
                    note=call.note,
                )
            except CaseError as exc:
                problems.append(str(exc).removeprefix(f"{call.text}: "))
        problems = list(dict.fromkeys(problems))
        raise ExplainError(f"{call.text}: " + ("; or ".join(problems) if problems else "no binding takes it"))
    if "input" not in raw:
        raise ExplainError(f"{text} is a binding id, which reads --input (and --target); none given")
    only, sep, rest = text.partition(":")
    if sep and only in SPECS:
        text = rest
    else:
        only = None
    note = None
    if text not in SPECS and text not in _by_id():  # nn.BCELoss, or a Keras id without its backend
        named, note = calls.binding_id(text)
        if named in _by_id():
            text = named
    if only is not None and not any(b.spec == only for b in _by_id().get(text, ())):
        raise ExplainError(f"{text!r} has no binding of spec {only!r} ('lossparity list' shows them all)")
    if text in SPECS:  # the oracle alone: a spec has every parameter and no convention
        spec = SPECS[text]
        # and takes the inputs some binding of it takes (mean_pairwise_squared_error: a batch, rank 1 or more)
        min_rank = min((b.min_rank for bs in _by_id().values() for b in bs if b.spec == spec.name), default=0)
        oracle = Binding(
            spec.name,
            spec.name,
            ORACLE,
            "",
            params={p: p for p in spec.defaults},
            dtypes=tuple(DTYPES),
            min_rank=min_rank,
        )
        return _side(oracle, spec, raw, params, dtype, mode, text=text)
    problems = []
    candidates = _candidates(text, only, dtype, mode)
    chosen = calls.by_fixed_keywords(candidates, params)  # --param from_logits=true picks that form
    if chosen is not None:
        candidates, params = chosen
    for binding in candidates:
        spec = SPECS[binding.spec]
        try:
            return _side(binding, spec, raw, params, dtype, mode, text=text, note=note)
        except CaseError as exc:
            problems.append((spec.name, str(exc)))
    if len(problems) == 1:
        raise ExplainError(f"{text}: {problems[0][1]}")
    raise ExplainError(f"{text} cannot read this case: " + "; ".join(f"as {name}, {why}" for name, why in problems))


def _recovered(binding: Binding, twin: str, bound, dtype: str, mode: str, call) -> Side:
    """The side of a Keras-on-TensorFlow probability loss given keras.ops.sigmoid(z) (or softmax):
    the call runs as written, and the oracle computes the binding's from_logits twin on z."""
    logits = next((b for b in _by_id()[binding.id] if b.spec == twin), None)
    if logits is None:
        raise ExplainError(f"{binding.id} reads the logits back, but its from_logits form on {twin} is not bound")
    ((transform, _, family),) = bound.transforms["input"]
    side = _side(
        logits,
        SPECS[twin],
        bound.arrays,
        bound.params,
        bound.dtype or dtype,
        mode,
        transforms={k: v for k, v in bound.transforms.items() if k != "input"},
        text=call.text,
        note=(
            f"{binding.id} reads the logits back from "
            + (
                f"keras.ops.{transform}'s output (its _keras_logits"
                if family == "keras"
                else f"the {transform} op's output (in {mode} mode, by its op type"
            )
            + f", taken by the TensorFlow backend's _get_logits: {calls.LOGITS_SOURCE}), so it computes its "
            f"from_logits=True loss ({twin}) on the array given to {transform}"
            + (f"; {call.note}" if call.note else "")
        ),
    )
    call_case = dataclasses.replace(side.call_case, transforms=dict(bound.transforms))
    return dataclasses.replace(side, call_binding=binding, call_case=call_case)


def _candidates(binding_id: str, only: str | None, dtype: str, mode: str) -> list[Binding]:
    """The bindings of one id (one per spec) that can run here in ``dtype`` and ``mode``."""
    candidates = [b for b in _by_id().get(binding_id, ()) if only in (None, b.spec)]
    if not candidates:
        close = difflib.get_close_matches(binding_id, list(_by_id()), n=3, cutoff=0.6)
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else "a binding id is a public dotted name such as torch.nn.BCELoss"
        )
        raise ExplainError(f"unknown binding {binding_id!r}; {hint} ('lossparity list' shows them all)")
    binding = candidates[0]
    adapter = adapter_for(binding.framework)
    why = adapter.unavailable()
    if why:
        raise ExplainError(f"{binding_id} needs {binding.framework}, which cannot be used here: {why}")
    if mode not in adapter.modes:
        raise ExplainError(
            f"mode {mode!r} is not available for {binding.framework}; accepted: {', '.join(adapter.modes)}"
        )
    if all(dtype not in b.dtypes for b in candidates):
        raise ExplainError(f"{binding_id} is bound in {', '.join(binding.dtypes)} only, not {dtype}")
    return candidates


def _side(
    binding: Binding,
    spec: Spec,
    raw: Mapping[str, np.ndarray],
    params: Mapping[str, Any],
    dtype: str,
    mode: str,
    *,
    transforms: Mapping[str, tuple] | None = None,
    text: str,
    note: str | None = None,
) -> Side:
    transforms = dict(transforms or {})
    raw = {k: _kind_of_empty(spec, k, np.asarray(v)) for k, v in raw.items()}
    if np.ndim(raw["input"]) < binding.min_rank:  # Binding.takes: Keras' axis=1 on an unbatched input
        why = "its class axis is axis 1" if binding.conventions.get("class_axis") == 1 else "a batch [batch_size, ...]"
        raise ExplainError(
            f"it takes inputs of rank {binding.min_rank} or more ({why}), not shape {np.shape(raw['input'])}"
        )
    # a value the binding is bound with alone is implied (kl_divergence_with_log_targets: log_target=True)
    implied = {k: v for k, v in binding.requires.items() if v is not GIVEN and k not in params}
    given = _params_for(binding, spec, {**implied, **params})
    class_axis = binding.conventions.get("class_axis", -1)
    documented, domain = _documented(spec, raw, transforms, dtype, class_axis)
    time_major = binding.conventions.get("time_major", False)
    documented, how = _documented_shapes(binding, spec, documented)
    held = dtype if binding.framework == ORACLE else adapter_for(binding.framework).held_dtype(dtype, mode)
    narrowed = (
        f"{binding.framework} holds {dtype} arrays in {held} in {mode} mode (JAX's default configuration, "
        f"jax_enable_x64 off; --mode jit_x64 enables it)"
        if held != dtype
        else None
    )
    note = "; ".join(n for n in (note, how, narrowed) if n) or None
    case = build_case(spec, documented, given, class_axis, time_major=time_major)
    call_case = build_case(
        spec, _documented_shapes(binding, spec, raw)[0], given, class_axis, as_given=True, time_major=time_major
    )
    # the framework is given the arrays as written (their shapes too); the checks above are the oracle's
    call_case = dataclasses.replace(
        call_case,
        transforms=transforms,
        arrays={
            **call_case.arrays,
            **canonical_layout({k: np.asarray(v) for k, v in raw.items()}, class_axis, time_major),
        },
    )
    effective = binding.effective_params(spec, case.params)
    if effective is None:
        need = ", ".join(
            f"{k}={'<any value>' if not isinstance(v, (bool, int, float, str)) else v}"
            for k, v in binding.requires.items()
        )
        raise ExplainError(f"it takes only cases with {need} (add --param {need.replace(', ', ' --param ')})")
    if dtype not in binding.dtypes:
        raise ExplainError(f"it is bound in {', '.join(binding.dtypes)} only, not {dtype}")
    domain += _outside_range(spec, case)
    ndim = np.ndim(raw["input"])
    axis = 1 if class_axis == 1 and ndim >= 2 else max(ndim - 1, 0)
    return Side(
        binding, spec, case, call_case, effective, axis, dtype, mode, documented, text, note=note, domain=domain
    )


def _documented_shapes(binding: Binding, spec: Spec, raw: Mapping[str, np.ndarray]) -> tuple[dict, str | None]:
    """The target in the shape the spec reads where the binding documents another it accepts:
    Keras' ``(N, 1)`` class indices, torch's ``(1,)`` index of an unbatched input, ``tf.nn``'s
    probability targets broadcast against the logits; and a sentence saying so."""
    out = dict(raw)
    x, t = np.asarray(raw.get("input")), raw.get("target")
    if t is None or x.ndim == 0:
        return out, None
    t = np.asarray(t)
    fw = binding.framework
    if spec.target == "index" and "target_lengths" not in spec.arrays:
        if fw.startswith("keras") and t.shape == (*x.shape[:-1], 1):
            out["target"] = t[..., 0]
            return out, f"{binding.id} reads the {t.shape} class indices as {out['target'].shape} (Keras squeezes them)"
        if fw == "torch" and x.ndim == 1 and t.shape == (1,):
            out["target"] = t.reshape(())
            return out, f"{binding.id} reads the (1,) class index of an unbatched input as a 0-d one"
    if spec.target == "same" and fw == "tensorflow" and t.shape != x.shape and _broadcasts(t.shape, x.shape):
        if np.broadcast_shapes(t.shape, x.shape) == x.shape:
            out["target"] = np.broadcast_to(t, x.shape).copy()
            return out, f"{binding.id} broadcasts the {t.shape} target against the {x.shape} logits"
    return out, None


def _documented(spec: Spec, raw: Mapping[str, np.ndarray], transforms: Mapping[str, tuple], dtype: str, class_axis):
    """The arrays as the oracle reads them, and why any is not of the documented kind: a
    transformed argument is the transform's float64 value of the array in ``dtype``, rounded to
    ``dtype`` after each step (the framework stores each step's tensor); an integer array where
    floating-point values are documented, or floats where integers are, is noted (and read as the
    documented kind, when it can be)."""
    out, notes = {}, []
    for name, a in raw.items():
        a = np.asarray(a)
        steps = transforms.get(name, ())
        if steps:
            along = 1 if class_axis == 1 and a.ndim >= 2 else -1
            out[name] = transforms_math.through(steps, a.astype(np.float64), numpy_dtype(dtype), along)[0]
            continue
        kind = documented_kind(spec, name)
        out[name] = a
        integers = kind == "i"
        if kind == "b":
            continue
        if a.dtype.kind in "iu" and not integers:
            notes.append(
                f"{name} is given as integers ({a.dtype}) where {spec.name} documents floating-point values "
                "(the framework receives it so)"
            )
        elif a.dtype.kind == "f" and integers:
            what = {"target": "class indices", "input": "values"}.get(name, "lengths")
            notes.append(f"{name} is given as floating-point values where {spec.name} documents integer {what}")
    return out, notes


def _kind_of_empty(spec: Spec, name: str, a: np.ndarray) -> np.ndarray:
    """An empty array has no kind of its own (``[]`` is read as floats): it takes the documented one."""
    if a.size:
        return a
    kind = documented_kind(spec, name)
    return a.astype(bool if kind == "b" else np.int64 if kind == "i" else np.float64)


def documented_kind(spec: Spec, name: str) -> str:
    """``"i"`` where the spec's array ``name`` holds integers (class indices, lengths, the -1-padded
    label lists of a multi-label margin loss), ``"b"`` a mask (any numbers: nonzero is True),
    ``"f"`` where it holds floating-point values, as the
    suite's own edge rows give it (which every binding is called with), else by the shape rule."""
    for row in spec.edges:
        a = getattr(row, "arrays", {}).get(name)
        if a is not None and a.dtype.kind in "biuf":
            return "b" if a.dtype.kind == "b" else "i" if a.dtype.kind in "iu" else "f"
    return "i" if (name == "target" and spec.target == "index") or name.endswith("_lengths") else "f"


def _outside_range(spec: Spec, case: Case) -> list[str]:
    """A sentence for each array with finite values outside the range the spec documents."""
    notes = []
    for name, (lo, hi) in spec.domain.items():
        a = case.arrays.get(name)
        if a is None or a.size == 0:
            continue
        finite = a[np.isfinite(a)]
        outside = finite[(finite < lo) | (finite > hi)]
        if outside.size:
            what = {(0.0, 1.0): "probabilities, in [0, 1]", (-np.inf, 0.0): "log-probabilities, <= 0"}.get(
                (lo, hi), f"values in [{lo}, {hi}]"
            )
            notes.append(f"{name} holds {outside[0]:g}, where {spec.name} documents {what}")
    return notes


def _params_for(binding: Binding, spec: Spec, params: Mapping[str, Any]) -> dict:
    """The user's parameters in spec vocabulary, checked against what the binding takes."""
    out = {}
    takes = [p for p in binding.params if p in spec.defaults] + [p for p in binding.requires if p not in binding.params]
    for name, value in params.items():
        if name not in takes and name in binding.fixed and not isinstance(value, np.ndarray):
            if value == binding.fixed[name]:  # what the API always does (a Keras function never reduces)
                continue
        if name not in takes:
            accepted = ", ".join(takes) if takes else "no parameters"
            raise ExplainError(f"no parameter {name!r} here; it takes: {accepted}")
        reverse = {v: k for k, v in binding.values.get(name, {}).items()}
        if not isinstance(value, np.ndarray):
            value = reverse.get(value, value)
        out[name] = check_param(name, value)
    return out


def check_param(name: str, value):
    """A parameter value in the domain ``specs.PARAMETERS`` declares, or a CaseError saying what is."""
    domain = PARAMETERS[name]
    if name in MASK_PARAMS:  # a bool mask (or 0/1); its shape is checked against the input's (build_case)
        value = np.asarray(value)
        if value.dtype.kind not in "biuf" or not np.all((value == 0) | (value == 1)):
            raise CaseError(f"{name} is a mask: each entry true/false (or 0/1), got {_shown(value)}")
        return value != 0
    if domain is np.ndarray:
        if not isinstance(value, np.ndarray):
            value = np.asarray(value)
        if value.dtype.kind not in "iuf":
            raise CaseError(f"{name} must be an array of numbers, got {_shown(value)}")
        return value.astype(np.float64)
    if isinstance(domain, tuple):
        if isinstance(value, (np.ndarray, bool)) or value not in domain:
            raise CaseError(f"{name}={_shown(value)} is not accepted; accepted: {', '.join(map(str, domain))}")
        return value
    if domain is bool and isinstance(value, bool):
        return value
    if domain is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if name == "label_smoothing" and not 0.0 <= value <= 1.0:  # a share of the target's mass
            raise CaseError(f"label_smoothing must be between 0 and 1, got {_shown(value)}")
        return float(value)
    if domain is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if domain is tuple:  # axes: one integer or a list of them (``[1, 2]`` is read as an array)
        if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iu":
            value = [int(a) for a in value]
        axes = value if isinstance(value, (list, tuple)) else [value]
        if all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
            return value if isinstance(value, int) else tuple(axes)
    kinds = {bool: "true or false", int: "an integer", float: "a number", tuple: "an axis or a list of axes"}
    raise CaseError(f"{name} must be {kinds[domain]}, got {_shown(value)}")


def _shown(value) -> str:
    """A value on one line, as the user could have typed it."""
    if isinstance(value, np.ndarray):
        return np.array2string(value, separator=", ", threshold=20).replace("\n", "")
    return repr(value)


#: A further array a call may leave out, and what it then is: optax's ``where`` mask (every item valid).
ARRAY_DEFAULTS = {"where": lambda x: np.ones(np.shape(x), bool)}


def build_case(
    spec: Spec,
    raw: Mapping[str, np.ndarray],
    params: Mapping[str, Any],
    class_axis: int,
    *,
    as_given: bool = False,
    time_major: bool = False,
) -> Case:
    """The canonical case (class axis last) that a binding of ``spec`` with ``class_axis`` reads
    from arrays in its own layout; a CaseError says why the arrays do not fit. The arrays are
    read as the documented kind (float64, int64 class indices), or with ``as_given`` kept in the
    kind they were given (integers where floats are documented: what the framework receives)."""
    x = np.asarray(raw["input"])
    if x.dtype.kind not in "iuf":
        raise CaseError(f"the input must hold numbers, got {x.dtype}")
    arrays = {"input": x if as_given and x.dtype.kind in "iu" else x.astype(np.float64)}
    if spec.target is None:
        if "target" in raw:
            raise CaseError(f"{spec.name} takes no --target (it is a function of the input alone)")
    else:
        if "target" not in raw:
            raise CaseError(f"{spec.name} needs a --target")
        t = np.asarray(raw["target"])
        if spec.target == "index":
            if t.dtype.kind == "f":
                if not np.all(np.isfinite(t)) or np.any(t != np.round(t)) or np.any(np.abs(t) >= 2**63):
                    raise CaseError("the target holds class indices, which must be integers (of 64 bits)")
            t = t if as_given and t.dtype.kind == "f" else t.astype(np.int64)
        else:
            documented = np.int64 if documented_kind(spec, "target") == "i" else np.float64
            t = t if as_given and t.dtype.kind in "iuf" else t.astype(documented)
        arrays["target"] = t
    if spec.classes and x.ndim == 0:
        raise CaseError(f"{spec.name} needs an input with a class axis; got a scalar")
    canonical = canonical_layout(arrays, class_axis, time_major)
    x = canonical["input"]
    if spec.classes and x.shape[-1] == 0:
        raise CaseError(
            f"{spec.name} needs at least one class; the input's class axis is empty (shape {np.shape(raw['input'])})"
        )
    if "target" in canonical:
        want = x.shape[:-1] if spec.target == "index" else x.shape
        if spec.target == "index" and params.get("axis", -1) != -1:  # optax: labels lack the class axes
            with contextlib.suppress(ValueError, TypeError):  # a bad axis is reported below
                want = to_rows(x, class_axes(params["axis"], x.ndim)).shape[:-1]
        if "target_lengths" in spec.arrays:  # label sequences, padded: (N, S) for any S
            want = (*x.shape[:-2], *canonical["target"].shape[x.ndim - 2 :])
        if canonical["target"].shape != want:
            kind = "a class-index target" if spec.target == "index" else "the target"
            raise CaseError(
                f"{kind} must have shape {want} for an input of shape {np.shape(raw['input'])}; "
                f"got {canonical['target'].shape}"
            )
    for name in spec.arrays:  # the spec's further arrays (a variance, a second input, lengths)
        if name not in raw and name in ARRAY_DEFAULTS:
            canonical[name] = ARRAY_DEFAULTS[name](x)
            continue
        if name not in raw:
            raise CaseError(f"{spec.name} needs --array {name}=[...]")
        a = np.asarray(raw[name])
        if a.dtype.kind not in "iuf" and not (a.dtype.kind == "b" and name in ARRAY_DEFAULTS):  # a mask may be bool
            raise CaseError(f"--array {name} must hold numbers, got {a.dtype}")
        if name in ARRAY_DEFAULTS:  # a mask of the input's entries: 1 (or nonzero) keeps one
            canonical[name] = _mask(name, a, x.shape)
            continue
        canonical[name] = a if as_given else a.astype(np.int64 if a.dtype.kind in "iu" else np.float64)
    extra = sorted(set(raw) - {"input", "target", *spec.arrays})
    if extra:
        raise CaseError(
            f"{spec.name} takes no --array {extra[0]}; its arrays are input, target"
            + "".join(f", {n}" for n in spec.arrays)
        )
    for name in ARRAY_PARAMS:
        if name in params and name not in MASK_PARAMS:
            w = params[name]
            if name == "sample_weight":  # Keras' weights of the per-sample losses, (N, ...) of an (N, ..., C) input
                try:
                    keras_weighted_shape(x.shape[:-1], w.shape)
                except ValueError as exc:
                    raise CaseError(str(exc)) from None
                continue
            if spec.classes and w.shape != x.shape[-1:]:
                raise CaseError(f"{name} holds one number per class: shape {x.shape[-1:]}, got {w.shape}")
            if not _broadcasts(w.shape, x.shape) or np.broadcast_shapes(w.shape, x.shape) != x.shape:
                raise CaseError(f"{name} of shape {w.shape} does not broadcast to the input's {x.shape}")
    if params.get("axis") is not None:  # the reduced axes of the input, as NumPy numbers them
        axes = params["axis"] if isinstance(params["axis"], tuple) else (params["axis"],)
        if not all(-x.ndim <= a < x.ndim for a in axes):
            raise CaseError(
                f"axis {params['axis']} is out of range for an input of shape {x.shape}: "
                f"axes go from {-x.ndim} to {x.ndim - 1}"
            )
        if len({a % x.ndim for a in axes}) < len(axes):
            raise CaseError(f"axis {params['axis']} names an axis twice")
    for name in MASK_PARAMS:  # optax's where: of the input's shape, or without its class axes (expanded there)
        if params.get(name) is not None:
            axes = class_axes(params.get("axis", -1), x.ndim)
            w = params[name]
            # softmax_cross_entropy expands a lower-rank mask at the axes, the others broadcast it
            lower = w.ndim + len(axes) == x.ndim and not _broadcasts(w.shape, x.shape)
            expanded = np.expand_dims(w, axes) if lower else w
            _mask(name, expanded, x.shape, given=w.shape)
    return Case(spec.name, "explain", {"table": "command line"}, canonical, dict(params))


def _same_params(a: Mapping, b: Mapping) -> bool:
    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) or isinstance(b[k], np.ndarray) else a[k] == b[k]
        for k in a
    )


def _as_suite_case(binding: Binding, spec: Spec, case: Case) -> Case:
    """The case given on the command line, under the id of the suite's edge row with the same
    arrays that this binding computes with the same parameters (its own fixed ones included:
    a Keras function form always has reduction 'none'), so that a known deviation placed on
    that row matches here as in a run (``edge-saturated-gamma-zero``); else as given."""
    mine = binding.effective_params(spec, case.params)
    for edge in spec.edges:
        if not isinstance(edge, Case) or edge.arrays.keys() != case.arrays.keys():
            continue
        if not all(
            np.shape(edge.arrays[k]) == np.shape(case.arrays[k])
            and np.array_equal(edge.arrays[k], case.arrays[k], equal_nan=True)
            for k in case.arrays
        ):
            continue
        theirs = binding.effective_params(spec, edge.params)
        if mine is not None and theirs is not None and _same_params(mine, theirs):
            return dataclasses.replace(case, id=edge.id, origin=dict(edge.origin))
    return case


def _mask(name: str, a: np.ndarray, shape: tuple, given: tuple | None = None) -> np.ndarray:
    """``a`` as a bool mask of the entries of an input of ``shape``, or a CaseError: it must
    broadcast to that shape and hold 0/1 (or bool) values."""
    if not _broadcasts(a.shape, shape) or np.broadcast_shapes(a.shape, shape) != shape:
        raise CaseError(
            f"{name}, a mask of the input's entries, of shape {given or a.shape} does not "
            f"broadcast to the input's {shape}"
        )
    if not np.all((a == 0) | (a == 1)):
        raise CaseError(f"{name} is a mask: each entry 0 or 1, got {_shown(a)}")
    return a != 0


def _broadcasts(a: tuple, b: tuple) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def _attribute(a: Side, b: Side, part: str | None = None) -> dict:
    """Which knobs in which the two sides differ turn A's prediction into B's
    (``conformance/attribution.py``). Each side's case travels with its loss: switching ``loss``
    from A's spec to B's reads B's own arguments (its transforms included); two sides of one spec
    given different arrays differ in the knob ``arguments``, and sides given in different dtypes in
    ``input dtype``. Closeness is judged in the narrower of the two compute dtypes."""
    sa, sb = _setting(a, b.spec), _setting(b, a.spec)
    if a.dtype != b.dtype:
        sa[INPUT_DTYPE], sb[INPUT_DTYPE] = a.dtype, b.dtype
    same_spec = a.spec.name == b.spec.name
    if same_spec and not _same_arrays(a.raw, b.raw):
        sa[ARGUMENTS], sb[ARGUMENTS] = "A's", "B's"

    def case_for(setting: Mapping[str, Any]) -> Case:
        side = a if setting[LOSS] == a.spec.name and (not same_spec or setting.get(ARGUMENTS) != "B's") else b
        spec = SPECS[setting[LOSS]]
        params = {k: v for k, v in side.case.params.items() if k in spec.defaults}
        return build_case(spec, side.raw, params, 1 if setting.get("class_axis") == 1 else -1)

    precision = max(a.binding.result_dtype(a.held), b.binding.result_dtype(b.held), key=DTYPES.index)
    found = attribute(sa, sb, SPECS, case_for, precision, part=part, shares=part is None)
    # every cause printed is one the oracle, run again, bears out; one that is not is not printed
    problems = unverified(found, sa, sb, SPECS, case_for, precision, part=part)
    if problems:
        found.update(status="unexplained", conventions=[], unverified=problems)
    return found


def _same_arrays(x: Mapping[str, np.ndarray], y: Mapping[str, np.ndarray]) -> bool:
    return x.keys() == y.keys() and all(
        np.shape(x[k]) == np.shape(y[k]) and np.array_equal(x[k], y[k], equal_nan=True) for k in x
    )


def _setting(side: Side, other: Spec) -> dict:
    setting = knobs(side.spec, side.binding, side.params, names=other.conventions, dtype=side.held)
    setting["class_axis"] = side.axis
    return setting


# -- running and tracing ---------------------------------------------------------------------


#: An explained side's verdict where its case lies outside the binding's documented domain and it
#: returned something other than the formula's value: not a departure from its documentation.
OUTSIDE = "outside_domain"


def _show(side: Side, grad: bool, known: list[KnownDeviation]) -> dict:
    binding, spec, dtype, mode = side.binding, side.spec, side.dtype, side.mode
    case = _as_suite_case(binding, spec, side.case)
    trace = Trace()
    held = side.held  # float64 is float32 in JAX without jax_enable_x64
    result_dtype = binding.result_dtype(held)
    try:
        expected = expect(spec, case, side.params, binding.conventions, result_dtype, trace=trace, given=dtype)
        expected_rec = {"value": encode_array(expected)}
    except OracleError as exc:
        expected, expected_rec = None, {"error": exc.kind, "message": str(exc)}
    if binding.framework == ORACLE:
        return _show_oracle(side, trace, expected_rec)
    adapter = adapter_for(binding.framework)
    runs = side.call_binding or binding
    # every differentiable argument given in floating point (an integer tensor has no gradient)
    given = {**side.call_case.arrays, **{k: v for k, v in side.call_case.params.items() if isinstance(v, np.ndarray)}}
    arguments = differentiated(spec) + weighted(side.call_case.params, dtype)
    wrt = tuple(n for n in arguments if n in given and given[n].dtype.kind == "f") if grad else ()
    wrt = wrt if adapter.differentiates else ()  # values only (SciPy, Keras' NumPy backend): see _gradient_words
    if adapter.process == "main":
        outcome = adapter.call(runs, side.call_case, dtype, mode=mode, wrt=wrt)
    else:  # a framework that must be imported alone (a Keras backend) is called in its own process
        outcome = sandbox.call(runs, side.call_case, dtype, mode=mode, wrt=wrt)
    if outcome.error_type is None:
        actual = {"value": encode_array(outcome.value), "dtype": outcome.dtype}
    else:
        actual = {"error": outcome.error_type, "message": outcome.error_message}
    modelled = _modelled_case(side, case)  # the case as a run's model reads it: the given arrays and their transforms
    stages = () if modelled is None else modelled_stages(binding, modelled)
    result, errors = verdict(
        expected,
        expected_rec,
        outcome,
        tolerance(spec.name, result_dtype),
        result_dtype,
        model=(lambda: (rounding_scales(binding, spec, modelled, side.params, held) or {}).get("value"))
        if stages
        else None,
        stages=stages,
    )
    record = {
        "binding": binding.id,
        "spec": spec.name,
        "case_id": case.id,
        "params": dict(side.params),  # a known entry may be placed on a condition of them (known.py)
        "dtype": dtype,
        "mode": mode,
        "verdict": result,
        "value_verdict": result,
        "expected": expected_rec,
        "actual": actual,
        "errors": errors,
        "computes_in": result_dtype,
    }
    if wrt and expected is not None and outcome.grads:
        # judged as a run judges them: against the oracle's, with the rounding model; a transformed
        # argument's gradient is the oracle's carried back through the transform (the chain rule)
        expected_grads = _through_transforms(
            side, expect_gradients(spec, case, side.params, binding.conventions, result_dtype, given=dtype)
        )
        model = (lambda: rounding_scales(binding, spec, modelled, side.params, held)) if stages else None
        got = {n: g for n, g in outcome.grads.items() if n in expected_grads}
        record["gradients"] = gradient_verdicts(binding, spec, held, got, expected_grads, model=model, stages=stages)
        worst = [result, *(g["verdict"] for g in record["gradients"].values())]
        record["verdict"] = result = max(worst, key=RANK.__getitem__)
    found = match(record, known, any_case=True) if result != "conform" else None
    entries = found.entries if found is not None and found.complete else []
    if entries:  # every failing part is a registered deviation: the verdict a run gives it
        result = "known"
    elif side.domain and result != "conform":
        # outside the documented domain: a refusal (an error) is the documented outcome, and any
        # other value is not held to the formula
        result = "conform" if outcome.error_type is not None else OUTSIDE
    reading = trace.stages[0].note if trace.stages else ""
    if binding.conventions.get("class_axis") == 1 and np.ndim(case.arrays["input"]) >= 2:
        reading += f" (the classes on dim 1 of the tensor {binding.framework} is given)"
    steps = side.call_case.transforms.get("input", ())
    if steps:  # what the side's framework computed from the array given before the loss saw it
        reading += (
            f", {' of '.join(t for t, *_ in reversed(steps))} of the array given, computed by {binding.framework}"
        )
    return {
        "binding": binding.id,
        "framework": binding.framework,
        "spec": spec.name,
        "summary": spec.summary,
        "call": side.text,
        "note": side.note,
        "dtype": dtype,
        "computes_in": result_dtype,
        "mode": mode,
        "reading": reading,
        "domain": side.domain,
        "params": {k: _jsonable(v) for k, v in side.params.items() if not isinstance(v, np.ndarray)},
        "conventions": {k: _jsonable(v) for k, v in binding.conventions.items()},
        "expected": expected_rec,
        "actual": actual,
        "verdict": result,
        "value_verdict": record["value_verdict"],
        "errors": errors,
        "known": entries[0].as_dict() if entries else None,
        "known_ids": [k.id for k in entries],
        "gradients": _gradients_shown(side, outcome, record.get("gradients") or {}) if wrt else {},
        "stages": [{"name": s.name, "note": s.note, "value": encode_array(s.value)} for s in trace.stages],
        "reproducer": adapter.reproducer(runs, side.call_case, dtype, mode=mode, wrt=wrt),
    }


def _through_transforms(side: Side, grads: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The oracle's gradients with respect to the loss's arguments (canonical layout), carried
    back through each argument's transforms to the array the user gave (``sigmoid(z)``: d/dz)."""
    transforms = side.call_case.transforms
    if not transforms:
        return dict(grads)
    class_axis = side.binding.conventions.get("class_axis", -1)
    layout = framework_layout(dict(grads), class_axis)  # the transforms act in the side's own layout
    for name, steps in transforms.items():
        if name not in layout:
            continue
        x = side.call_case.arrays[name]
        x = framework_layout({"input": x}, class_axis)["input"] if name == "input" else x
        along = 1 if class_axis == 1 and x.ndim >= 2 else -1
        _, inputs = transforms_math.through(steps, x.astype(np.float64), numpy_dtype(side.dtype), along)
        layout[name] = transforms_math.pull_back(inputs, layout[name])
    return canonical_layout(layout, class_axis)


def _gradients_shown(side: Side, outcome, judged: Mapping[str, Mapping]) -> dict:
    """Each differentiated argument's gradient in the layout the user gave, with the oracle's and
    the verdict on it (or why there is none)."""
    class_axis = side.binding.conventions.get("class_axis", -1)
    out = {}
    for name, got in outcome.grads.items():
        if isinstance(got, tuple):
            # back into the layout the user gave
            g = framework_layout({name: got[0], **({"input": got[0]} if name != "input" else {})}, class_axis)[name]
            shown: dict[str, Any] = {"value": encode_array(g)}
        else:
            shown = {"error": got}
        j = judged.get(name)
        if j:
            shown.update(verdict=j["verdict"], errors=j.get("errors"), expected=j["expected"])
        out[name] = shown
    return out


def _modelled_case(side: Side, case: Case) -> Case | None:
    """``case`` (the oracle's view, transforms applied) as a run's rounding model reads it
    (``runner.rounding_scales``): the arrays the user gave with the transforms the framework applies
    to them, over the canonical class axis, the last. None where the side's transforms run over
    another axis (a channels-first call): no model there, as before one was written."""
    transforms = side.call_case.transforms
    if not transforms:
        return case
    for name, steps in transforms.items():
        ndim = np.ndim(side.call_case.arrays[name])
        if side.axis not in (-1, ndim - 1) or any(a not in (None, -1, ndim - 1) for _, a, *_ in steps):
            return None
    given = {name: side.call_case.arrays[name] for name in transforms}
    return dataclasses.replace(case, arrays={**case.arrays, **given}, transforms=dict(transforms))


def _show_oracle(side: Side, trace: Trace, expected: dict) -> dict:
    """A spec explained alone: the oracle's stages, and a snippet that calls the oracle."""
    spec, case, dtype = side.spec, side.case, side.dtype
    arrays = case.in_dtype(dtype)
    args = ", ".join(
        [f"np.array({py_literal(arrays['input'])})"]
        + ([f"np.array({py_literal(arrays['target'])})"] if "target" in arrays else [])
        + [
            f"{k}=np.array({py_literal(arrays[k])})" if k in ARRAY_PARAMS else f"{k}={v!r}"
            for k, v in case.params.items()
        ]
    )
    snippet = (
        f"import numpy as np\nfrom {spec.oracle.__module__} import {spec.oracle.__name__}\n\n"
        f"print({spec.oracle.__name__}({args}, dtype=np.{dtype}))\n"
    )
    return {
        "binding": spec.name,
        "framework": ORACLE,
        "spec": spec.name,
        "summary": spec.summary,
        "call": side.text,
        "note": None,
        "dtype": dtype,
        "computes_in": dtype,
        "mode": side.mode,
        "reading": trace.stages[0].note if trace.stages else "",
        "domain": side.domain,
        "params": {k: _jsonable(v) for k, v in side.params.items() if not isinstance(v, np.ndarray)},
        "conventions": {},
        "expected": expected,
        "actual": expected,
        "verdict": ORACLE,
        "errors": None,
        "known": None,
        "known_ids": [],
        "gradients": {},
        "stages": [{"name": s.name, "note": s.note, "value": encode_array(s.value)} for s in trace.stages],
        "reproducer": snippet,
    }


def parting(a: list[dict], b: list[dict]) -> dict | None:
    """The first stage at which two traces differ: in the step taken, how it is done, or its values."""
    for i in range(max(len(a), len(b))):
        if i >= len(a) or i >= len(b):
            longer, which = (a, "A") if i < len(a) else (b, "B")
            return {
                "index": i,
                "how": "step",
                "a": _stage_name(a, i),
                "b": _stage_name(b, i),
                "why": f"only {which} goes on, to '{longer[i]['name']}'",
            }
        x, y = a[i], b[i]
        if x["name"] != y["name"]:
            return {
                "index": i,
                "how": "step",
                "a": x["name"],
                "b": y["name"],
                "why": f"A's next step is '{x['name']}', B's is '{y['name']}'",
            }
        if x["note"] != y["note"]:
            why = (
                "they read the input differently"
                if x["name"] == "input"
                else f"both take the step '{x['name']}', but not the same way"
            )
            return {"index": i, "how": "reading", "a": x["name"], "b": y["name"], "why": why}
        if x["value"] != y["value"]:
            return {
                "index": i,
                "how": "values",
                "a": x["name"],
                "b": y["name"],
                "why": f"the step '{x['name']}' gives different values",
            }
    return None


def _stage_name(stages, i):
    return stages[i]["name"] if i < len(stages) else None


# -- the words -------------------------------------------------------------------------------


def _summary(sides: list[Side], shown: list[dict], part: dict | None, attribution: dict | None) -> list[str]:
    notes = [s.note + "." for s in sides if s.note]
    if len(sides) == 1:
        return [
            *notes,
            f"{shown[0]['binding']} {shown[0]['reading']}.",
            *_domains(shown),
            *_departures(shown, pair=False),
        ]
    (a, b), (sa, sb) = sides, shown
    lines = [*notes, f"{sa['binding']} {sa['reading']}, while {sb['binding']} {sb['reading']}."]
    if a.spec.name != b.spec.name:
        lines.append(
            f"They compute different losses: {a.spec.name} ({a.spec.summary}) and {b.spec.name} ({b.spec.summary})."
        )
    if a.dtype != b.dtype:
        lines.append(f"A is given {a.dtype} arrays and B {b.dtype} ones.")
    if part is not None:
        lines.append(
            f"The oracle's stages part at stage {part['index'] + 1} ({part['a'] or part['b']}): {part['why']}."
        )
    lines += _domains(shown)
    if attribution is not None:
        if attribution["status"] == "same":
            lines.append("Under their declared conventions both are predicted to give the same result here.")
            va, vb = sa["actual"].get("value"), sb["actual"].get("value")
            if va and vb and va != vb and sa["verdict"] == sb["verdict"] == "conform":
                lines.append(
                    "Their values differ by rounding alone: each is within its own allowance of that prediction "
                    f"(A computes in {sa['computes_in']}, B in {sb['computes_in']})."
                )
        elif attribution["status"] == "shape":
            lines.append(
                f"The predictions differ only in the result's shape ({attribution['shapes'][0]} against "
                f"{attribution['shapes'][1]}); their values are the same, and no convention is credited."
            )
        else:
            lines.append(
                "The difference of the predictions is " + reason(sa["binding"], sb["binding"], attribution) + "."
            )
    lines += _departures(shown, pair=True)
    va, vb = sa["actual"].get("value"), sb["actual"].get("value")
    if va and vb:
        if va == vb:
            lines.append("Their values are identical.")
        elif va["data"] == vb["data"] and va["dtype"] == vb["dtype"]:
            lines.append(
                f"Their values are identical; only the result's shape differs ({tuple(va['shape'])} against "
                f"{tuple(vb['shape'])})."
            )
    return lines


def _domains(shown: list[dict]) -> list[str]:
    """A sentence for each side whose case lies outside its documented domain, and what it did."""
    lines = []
    for s in shown:
        if not s.get("domain"):
            continue
        why = "; ".join(s["domain"])
        if "error" in s["actual"]:
            did = f"it refuses it (raises {s['actual']['error']}), a documented outcome"
        elif s["verdict"] == OUTSIDE:
            did = "its value there is not held to the formula (nor is the oracle's: it shows the formula's)"
        else:
            did = "it still returns the formula's value"
        lines.append(f"{s['binding']} is given a case outside its documented domain ({why}): {did}.")
    return lines


def _departures(shown: list[dict], *, pair: bool) -> list[str]:
    """A sentence for each binding that departs from its own documentation here, with the
    registered known deviation that explains it, if one does (``pair``: two bindings compared)."""
    lines = []
    for s in shown:
        rounding = (s.get("errors") or {}).get("rounding") if s["verdict"] == "conform" else None
        if rounding:
            lines.append(
                f"{s['binding']} is off the exact loss by more than one rounding, but within the bound of "
                f"the computation it declares: {rounding['summary']}."
            )
        if s["verdict"] not in ("conform", ORACLE, OUTSIDE):
            what = s["verdict"]
            if what == "known":  # the verdict its failing part earned before the entry explained it
                what = s["value_verdict"] if s["value_verdict"] != "conform" else "in a gradient"
            lines.append(
                f"{s['binding']} does not do what its own documentation says on this case ({what})"
                + (": that part of the difference is its own deviation, not a convention." if pair else ".")
                + _what_fails(s)
                + (
                    f" It is a registered known deviation, {s['known']['id']}: {s['known']['explanation']} "
                    f"({s['known']['link'] or s['known'].get('reproducer', '')})"
                    if s.get("known")
                    else ""
                )
            )
    return lines


def _what_fails(side: Mapping) -> str:
    """The first line of the error figures of what fails: the value, else the first gradient that does."""
    failing = [(n, g) for n, g in (side.get("gradients") or {}).items() if g.get("verdict") not in (None, "conform")]
    if side.get("value_verdict", side["verdict"]) == "conform" and failing:
        name, g = failing[0]
        summary = (g.get("errors") or {}).get("summary", "")
        return (
            f" Its gradient with respect to {name} does: {summary.splitlines()[0].rstrip('.')}."
            if summary
            else f" Its gradient with respect to {name} does."
        )
    return f" {side['errors']['summary'].splitlines()[0].rstrip('.')}." if side.get("errors") else ""


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return encode_array(v)
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v
