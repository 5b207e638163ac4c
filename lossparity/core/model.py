"""The vocabulary as data: Spec (a canonical loss), Binding (a public API bound to a spec), Case.

Specs and their bindings are declared by their family (``conformance/families/<family>.py``;
specs collected in ``conformance/specs.py``, each framework's bindings in
``conformance/registry.py``, with those of third-party adapter modules); everything else
reads these tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossparity.core.dtypes import DTYPES, numpy_dtype


class CaseError(ValueError):
    """Arrays or parameters that a spec cannot read (a target of the wrong shape)."""


#: Spec parameters that are weight arrays (passed to the framework as tensors, and differentiated).
#: ``sample_weight`` is Keras' per-sample (or broadcast per-element) weight of a loss class's call
#: (``reference/reduction.py``).
WEIGHT_PARAMS = ("weight", "pos_weight", "sample_weight")
#: Spec parameters that are bool masks (passed as bool tensors, never differentiated): optax's
#: ``where``, the entries a loss reads (``reference/masked.py``).
MASK_PARAMS = ("where",)
#: Spec parameters that are arrays.
ARRAY_PARAMS = WEIGHT_PARAMS + MASK_PARAMS

#: The functions users wrap a loss argument in, which a case may ask the framework to apply
#: (``Case.transforms``): each adapter spells them in its framework (``FrameworkAdapter.transforms``).
TRANSFORMS = ("sigmoid", "softmax", "log_softmax", "log", "exp")


def activations(transforms: Mapping[str, str]) -> dict[str, tuple[tuple[str, int | None, str], ...]]:
    """``Case.transforms`` of a case whose arguments the framework wraps in one function each, over
    the class axis, as the user writes them (``{"input": "sigmoid"}``: ``loss(sigmoid(z), y)``): an
    edge row's ``transforms``, a generated case's (``generate.inside``)."""
    return {name: ((transform, None, ""),) for name, transform in transforms.items()}


#: Documented value ranges (``Spec.domain``): probabilities, log-probabilities.
PROBABILITY = (0.0, 1.0)
LOG_PROBABILITY = (-np.inf, 0.0)

#: In ``Binding.requires``: the case must set this parameter, to any value.
GIVEN = object()


@dataclass(frozen=True)
class Spec:
    """One mathematical loss: its oracle, parameter space, conventions, and case sources.

    ``defaults`` holds every parameter's default (the value a case leaves unset);
    ``conventions`` the names of the oracle's convention keywords;
    ``generate`` a hypothesis strategy of cases; ``edges`` the hand table (a family declares
    its rows with ``conformance.edges.edge``; the collected spec holds them as cases).
    ``target`` is the shape rule of the target: ``"same"`` (the input's shape),
    ``"index"`` (class indices, the input's shape without its class axis) or ``None``
    (no target); ``classes`` says whether the last axis of the input is a class axis.
    ``gradient`` takes the oracle's arguments and returns d sum(out) / d input (and / d target
    for probability targets) as ``{"input": ..., "target": ...}`` float64 arrays.
    ``arrays`` names the case's further array arguments beyond input and target (a second
    input, a variance, sequence lengths): the oracle takes them as keywords and the binding's
    call text as variables of the same names. ``wrt`` overrides what a run differentiates
    with respect to (default: the input, and a target of the input's shape).
    ``error_model`` bounds the cost of computing the loss in a narrow dtype
    (``reference/rounding.py``): it takes the oracle's arguments and returns, for the value and
    each gradient, the first-order rounding error in units of the compute dtype's unit
    roundoff; ``stages`` names the stages it models, of which a binding declares those it
    evaluates in its compute dtype (``Binding.stages``).
    ``domain`` is the documented range of an array's values (``{"input": PROBABILITY}``):
    ``lossparity explain`` flags a case outside it (a logit given where a probability is due) and
    does not hold the binding to the formula there.
    """

    name: str
    summary: str
    oracle: Callable[..., np.ndarray]
    defaults: Mapping[str, Any]
    conventions: tuple[str, ...]
    generate: Any = None
    edges: tuple = ()
    target: str | None = "same"
    classes: bool = True
    gradient: Callable[..., dict] | None = None
    arrays: tuple[str, ...] = ()
    wrt: tuple[str, ...] | None = None
    error_model: Callable[..., dict] | None = None
    stages: tuple[str, ...] = ()
    domain: Mapping[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Binding:
    """One public framework API bound to a spec.

    ``call`` is the Python expression a user types, over the variables ``input``,
    ``target`` (and ``weight``/``pos_weight`` where passed), with ``{kw}`` where the
    keyword arguments go; it is both what runs and what the reproducer prints.
    ``params`` maps each supported spec parameter to the framework's keyword name,
    ``values`` translates parameter values (``{"reduction": {"mean": "sum_over_batch_size"}}``),
    ``defaults`` are the binding's own defaults where they differ from the spec's
    (PyTorch's ``ignore_index=-100``), ``fixed`` are parameters the API has no choice
    over (``tf.nn`` losses never reduce: ``{"reduction": "none"}``). ``requires`` restricts
    the binding to the cases that set a parameter to one value
    (``optax.losses.kl_divergence_with_log_targets``: ``{"log_target": True}``, where
    ``fixed`` would wrongly read probability targets as log-probabilities) or, with
    :data:`GIVEN`, to any value at all (``tf.nn.weighted_cross_entropy_with_logits`` cannot
    be called without ``pos_weight``). ``computes_in`` is a documented compute dtype: the
    inputs are converted to it and the result has it (Keras loss classes compute in
    ``keras.backend.floatx()``, float32, unless given a ``dtype``). ``stages`` are the named
    stages of the spec's error model (``Spec.stages``) that the binding evaluates in its
    compute dtype, with no wider accumulator (Keras on JAX: ``("log_softmax",)``); a result
    within the model's bound is consistent with that computation. Empty: the result is held
    to one rounding of the exact loss (the tolerance). ``call_keywords`` are the framework
    keywords (values of ``params``) that a class form takes in its call, not its constructor
    (Keras' ``sample_weight``): they go where the call text has ``{call_kw}``. ``min_rank`` is the
    least rank of input the binding takes (Keras' channels-first ``axis=1`` names an axis 1, which
    an unbatched ``(C,)`` input does not have): a case of lower rank is not its (:meth:`takes`).
    """

    id: str
    spec: str
    framework: str
    call: str
    params: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    conventions: Mapping[str, Any] = field(default_factory=dict)
    requires: Mapping[str, Any] = field(default_factory=dict)
    dtypes: tuple[str, ...] = DTYPES
    computes_in: str | None = None  # documented compute dtype, whatever the inputs' (Keras' floatx)
    stages: tuple[str, ...] = ()
    #: Arguments the framework declares it does not differentiate (PyTorch's loss kernels have no
    #: derivative formula for ``weight``: tools/autograd/derivatives.yaml): a gradient with respect
    #: to one is expected to raise.
    nondifferentiable: tuple[str, ...] = ()
    call_keywords: tuple[str, ...] = ()
    min_rank: int = 0

    def result_dtype(self, dtype: str) -> str:
        """The dtype this binding computes in and returns for inputs of ``dtype``."""
        return self.computes_in or dtype

    @property
    def key(self) -> str:
        return f"{self.spec}:{self.id}"

    def effective_params(self, spec: Spec, case_params: Mapping[str, Any]) -> dict | None:
        """The parameters this binding computes with on a case, or None if it cannot take the case."""
        eff = {**spec.defaults, **self.defaults}
        for name, value in case_params.items():
            if name in self.fixed:
                continue
            if name not in self.params and name not in self.requires and not _same(value, eff.get(name)):
                return None
            eff[name] = value
        for name, want in self.requires.items():
            if (name not in case_params) if want is GIVEN else not _same(eff.get(name), want):
                return None
        eff.update(self.fixed)
        return eff

    def takes(self, spec: Spec, case: Case) -> bool:
        """Whether the binding can take ``case``: its parameters (:meth:`effective_params`) and its
        input's rank (``min_rank``)."""
        return np.ndim(case.arrays["input"]) >= self.min_rank and self.effective_params(spec, case.params) is not None

    def kwargs(self, case_params: Mapping[str, Any]) -> dict:
        """The framework keyword arguments for the case's explicitly set parameters."""
        out = {}
        for name, value in case_params.items():
            if name in self.params and name not in self.fixed:
                value = self.values.get(name, {}).get(value, value) if not isinstance(value, np.ndarray) else value
                out[self.params[name]] = value
        return out


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    return a == b


@dataclass(frozen=True)
class Case:
    """Concrete inputs in canonical layout (class axis last), float64 values, and parameters.

    ``arrays`` holds ``input``, ``target`` and any array parameters; ``params`` the
    explicitly set scalar and array parameters (unset ones take the defaults).
    ``origin`` says where it came from: an edge-table row with its reason, or the
    generator with its seed and index.
    """

    spec: str
    id: str
    origin: Mapping[str, Any]
    arrays: Mapping[str, np.ndarray]
    params: Mapping[str, Any] = field(default_factory=dict)
    dtypes: tuple[str, ...] = ()  # an edge row meaningful in some dtypes only (one ULP of float32)
    #: What the framework applies to an argument before the loss, in the same call (``lossparity
    #: explain`` of ``BCELoss()(torch.sigmoid(z), y)``): argument name -> ((transform, axis, family),
    #: ...), innermost first, each one of :data:`TRANSFORMS`; ``family`` is ``"keras"`` where the
    #: call wrote ``keras.ops.sigmoid`` (``FrameworkAdapter.spelling``), else ``""``. The arrays are
    #: the untransformed ones.
    transforms: Mapping[str, tuple[tuple[str, int | None, str], ...]] = field(default_factory=dict)

    def in_dtype(self, *dtypes: str) -> dict[str, np.ndarray]:
        """Arrays rounded to each of ``dtypes`` in turn (floats only), returned as float64
        holding exactly those values (float16 inputs to a float32 computation: ``"float16",
        "float32"``)."""
        out = {}
        for name, a in {**self.arrays, **{k: v for k, v in self.params.items() if isinstance(v, np.ndarray)}}.items():
            if a.dtype.kind == "f":
                for dtype in dtypes:
                    a = a.astype(numpy_dtype(dtype))
                a = a.astype(np.float64)
            out[name] = a
        return out


def _soft(arrays: Mapping[str, np.ndarray]) -> bool:
    return "target" in arrays and arrays["target"].shape == arrays["input"].shape


def _move_class_axis(arrays: Mapping[str, np.ndarray], class_axis: int, source: int, dest: int) -> dict:
    out = dict(arrays)
    if class_axis == 1 and out["input"].ndim >= 2:
        for name in ("input", "target") if _soft(out) else ("input",):
            out[name] = np.moveaxis(out[name], source, dest)
    return out


def _time_major(arrays: Mapping[str, np.ndarray], time_major: bool) -> dict:
    out = dict(arrays)
    if time_major and out["input"].ndim >= 3:
        out["input"] = np.swapaxes(out["input"], 0, 1)
    return out


def framework_layout(
    arrays: Mapping[str, np.ndarray], class_axis: int, time_major: bool = False
) -> dict[str, np.ndarray]:
    """Canonical arrays (class axis last, batch first) in the layout of a binding whose class
    axis is ``class_axis`` and whose sequences are time-major (``(T, N, C)``: torch's CTC).

    Only the class axis of a batched input moves (an unbatched ``(C,)`` input has nowhere
    else to put it), with a probability target of the same shape moving alongside.
    """
    return _time_major(_move_class_axis(arrays, class_axis, -1, 1), time_major)


def canonical_layout(
    arrays: Mapping[str, np.ndarray], class_axis: int, time_major: bool = False
) -> dict[str, np.ndarray]:
    """The inverse of :func:`framework_layout`: arrays as a binding reads them, in canonical layout."""
    return _move_class_axis(_time_major(arrays, time_major), class_axis, 1, -1)
