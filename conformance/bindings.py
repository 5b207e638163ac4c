"""How our bindings are declared: the helpers and conventions shared by the family modules.

A binding (:class:`~lossparity.core.model.Binding`) is data: the call text a user types, the
spec parameters it takes and the conventions it documents. Each family module
(``conformance/families/<family>.py``) declares ``BINDINGS``, the bindings of its specs in
every framework, beside the specs, edge tables and generators; ``conformance/registry.py``
gives each framework its own, and the adapters (``adapters/<framework>.py``) run them. This
module imports no framework: the call texts are source, run in the adapter's worker process.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from lossparity.conformance.generate import keras_sample_weights, optax_axes
from lossparity.core.model import Binding, Spec
from lossparity.reference.errors import integer_targets, last_axis_only
from lossparity.reference.masked import over_rows
from lossparity.reference.reduction import (
    TF_V1_REDUCTION_VALUES,
    WEIGHTING_STAGE,
    sample_weighted,
    sample_weighted_error,
    sample_weighted_grad,
)

#: The reduction keyword is the spec's (``torch.nn`` losses: ``reduction="mean"``).
REDUCTION = {"reduction": "reduction"}
#: APIs that never reduce over the batch: ``tf.nn``, optax, Keras' loss functions.
NO_REDUCTION = {"reduction": "none"}


# ----------------------------------------------------------------------------- torch


def torch_pair(fn: str, module: str, spec: str, **kw) -> list[Binding]:
    """The functional form and the module form of one loss share everything but the call."""
    return [
        Binding(f"torch.nn.functional.{fn}", spec, "torch", f"F.{fn}(input, target{{kw}})", **kw),
        Binding(f"torch.nn.{module}", spec, "torch", f"torch.nn.{module}({{kw}})(input, target)", **kw),
    ]


# ----------------------------------------------------------------------------- jax

OPTAX = "optax.losses"


def optax_loss(name: str, spec: str, *, fixed=NO_REDUCTION, **kw) -> Binding:
    """An ``optax.losses`` function called as ``f(input, target, **kw)``; optax never reduces over the batch."""
    return Binding(f"{OPTAX}.{name}", spec, "jax", f"{OPTAX}.{name}(input, target{{kw}})", fixed=fixed, **kw)


def optax_axis_where(
    spec: Spec,
    *,
    empty=0.0,
    layouts: bool = True,
    keeps: tuple[str, ...] = (),
    plain: tuple[str, ...] = (),
    expand: bool = False,
) -> Spec:
    """``spec`` with optax's ``axis`` (default -1: the last) and ``where`` (default None: every entry)
    parameters: its oracle, gradient and error model read each sample's included entries over
    the axes (``reference/masked.py``), and its generator draws masks and axes for some cases
    (``generate.optax_axes``). ``empty``: the loss of a row with no entry included (a number, or a
    function of the conventions); ``layouts=False`` for a spec whose cases draw their own axis;
    ``keeps``: the spec's parameters that optax takes beside these (a masked case keeps only those),
    ``plain`` those of them a ``where`` case leaves at their defaults;
    ``expand``: optax expands a ``where`` of lower rank at the axes (a mask of samples)."""
    index = spec.target == "index"
    own = "axis" in spec.defaults  # the oracle takes an int axis itself (the cosine)
    wrap = functools.partial(over_rows, index=index, empty=empty, own_axis=own, expand=expand)
    return replace(
        spec,
        oracle=wrap(spec.oracle, "value"),
        gradient=spec.gradient and wrap(spec.gradient, "grad"),
        error_model=spec.error_model and wrap(spec.error_model, "error"),
        defaults={"axis": -1, **spec.defaults, "where": None},
        generate=None
        if spec.generate is None
        else optax_axes(spec.generate, index=index, layouts=layouts, keeps=keeps, plain=plain, expand=expand),
    )


#: The keywords of an optax loss that takes ``axis`` and ``where`` (specs made by :func:`optax_axis_where`).
AXIS_WHERE = {"axis": "axis", "where": "where"}


class Source:
    """A keyword value written as source: optax's reduce_fn takes a function (jnp.mean)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text

    def __eq__(self, other):
        return isinstance(other, Source) and other.text == self.text

    def __hash__(self):
        return hash(self.text)


# ----------------------------------------------------------------------------- tensorflow (tf.compat.v1)
# ``tf.compat.v1.losses.*`` (tensorflow/python/ops/losses/losses_impl.py) compute their losses, then
# ``compute_weighted_loss``: ``weights`` (default 1.0) is the spec's ``sample_weight`` under the
# convention ``weighting="tf_v1"`` (``reference/reduction.py``: how weights broadcast, what each
# ``Reduction`` divides by); ``reduction`` is the spec's, spelled as ``tf.compat.v1.losses.Reduction``'s
# values, its default ``SUM_BY_NONZERO_WEIGHTS`` (the spec's ``sum_by_nonzero_weights``).
TF_V1 = "tf.compat.v1.losses"
TF_V1_WEIGHTS = {"reduction": "reduction", "sample_weight": "weights"}


def tf_v1_loss(
    name: str, spec: str, labels: str, predictions: str, *, params=None, conventions=None, stages=(), **kw
) -> Binding:
    """``tf.compat.v1.losses.<name>(<labels>=target, <predictions>=input, weights=..., reduction=...)``;
    ``stages``: those of the loss before its weights, which then round in float32 (``WEIGHTING_STAGE``)."""
    return Binding(
        f"{TF_V1}.{name}",
        spec,
        "tensorflow",
        f"{TF_V1}.{name}({labels}=target, {predictions}=input{{kw}})",
        params={**TF_V1_WEIGHTS, **(params or {})},
        values={"reduction": TF_V1_REDUCTION_VALUES},
        defaults={"reduction": "sum_by_nonzero_weights"},
        conventions={"weighting": "tf_v1", **(conventions or {})},
        stages=(*stages, WEIGHTING_STAGE) if stages else (),
        **kw,
    )


# ----------------------------------------------------------------------------- keras
# Keras 3 runs each loss on three backends, each a framework column of its own
# (``keras[tensorflow]``, ``keras[jax]``, ``keras[torch]``, see ``adapters/keras.py``). A Keras
# binding is declared once, without a backend (framework ``"keras"``); the registry makes each
# backend's copy with :func:`on_backend` (``keras.losses.Huber[jax]``).
#
# Conventions are taken from the documentation and source of Keras 3 (``keras/src/losses/``):
# - Keras takes ``(y_true, y_pred)``: the target comes first.
# - Loss *classes* reduce with ``sum_over_batch_size`` (the mean) and ``divide_no_nan``: a mean
#   over nothing (every target ``ignore_class``) is 0 (``keras/src/losses/loss.py``). They
#   compute in ``keras.backend.floatx()`` (float32) unless given a ``dtype``: both arguments
#   are converted first, and the result is float32 whatever the inputs' dtype (``computes_in``).
#   The *function* forms keep the input dtype and return one loss per sample: most reduce the
#   last axis with a mean (``sample_axis="mean"``).

KERAS_EPS = 1e-7  # keras.backend.epsilon()
# - A class takes every reduction Keras has: the spec's ``mean``, ``sum`` and the Keras-only
#   ``sum_over_batch_size`` and ``mean_with_sample_weight`` (``reference/reduction.py``) under their
#   own names; the spec's ``none`` as ``None`` (Keras' ``"none"`` is the same branch of
#   ``reduce_values``). Left unset, the class reduces with its default, ``sum_over_batch_size``.
# - Its call takes ``sample_weight`` (``keras_pair(..., sample_weight=True)``, for specs wrapped by
#   :func:`keras_sample_weight`), which Keras applies to the loss function's per-sample output.
KERAS_VALUES = {"reduction": {"none": None}}
SAMPLE_WEIGHT = {"sample_weight": "sample_weight"}


def keras_pair(
    cls: str | None,
    fn: str | None,
    spec: str,
    flags: str = "",
    *,
    params=None,
    conventions=None,
    defaults=None,
    requires=None,
    backends=None,
    class_conventions=None,
    stages=(),
    sample_weight: bool = False,
) -> list[Binding]:
    """The class form (reduces; computes in floatx, float32) and the function form (per sample)
    of one loss, for the backend-less id; ``flags`` is keyword source both take
    (``"from_logits=True"``), ``backends`` per-backend convention overrides
    (``{"jax": {"invalid_label": "nan"}}``), ``class_conventions`` those of the class form only.
    ``stages``: the error-model stages both forms compute in their dtype (``Binding.stages``),
    or a dict of them per backend (``{"jax": ("log_softmax",), "torch": ()}``).
    ``sample_weight``: the class's call takes the spec's ``sample_weight`` (a spec wrapped by
    :func:`keras_sample_weight`).
    :func:`on_backend` makes each backend's copy. Either form may be None where Keras has only one."""
    params = dict(params or {})
    common = dict(defaults=defaults or {}, requires=requires or {})
    if isinstance(stages, dict):  # per backend, beside the backends' own conventions
        backends = dict(backends or {})
        for backend, named in stages.items():
            backends[backend] = {**backends.get(backend, {}), "_stages": tuple(named)}
    else:
        common["stages"] = tuple(stages)
    conv = dict(conventions or {})
    out = []
    if cls:
        out.append(
            Binding(
                f"keras.losses.{cls}",
                spec,
                "keras",
                f"keras.losses.{cls}({flags}{{kw}})(target, input{{call_kw}})",
                params={**REDUCTION, **params, **(SAMPLE_WEIGHT if sample_weight else {})},
                values=KERAS_VALUES,
                call_keywords=tuple(SAMPLE_WEIGHT.values()) if sample_weight else (),
                computes_in="float32",
                conventions={**conv, **(class_conventions or {})},
                **common,
            )
        )
    if fn:
        out.append(
            Binding(
                f"keras.losses.{fn}",
                spec,
                "keras",
                f"keras.losses.{fn}(target, input{', ' * bool(flags)}{flags}{{kw}})",
                params=params,
                fixed=NO_REDUCTION,
                conventions=conv,
                **common,
            )
        )
    return [replace(b, conventions={**b.conventions, "_backends": backends}) if backends else b for b in out]


def keras_channels_first(b: Binding, backends=None) -> Binding:
    """A Keras cross-entropy or focal binding as users call it on channels-first data, ``(N, C, d1, ...)``:
    ``axis=1`` (Keras' own tests), the class axis where torch has it (the ``class_axis=1`` convention: the
    adapter moves the canonical last axis to axis 1 and the gradients back, so the oracle is that of the
    channels-last binding on the transposed arrays). Inputs of rank 2 or more only (``min_rank``): an
    unbatched ``(C,)`` input has no axis 1. ``axis`` goes in the constructor of a class form, beside the
    function form's other keywords. ``backends``: per-backend conventions of the channels-first form, over
    the binding's own (``{"tensorflow": {"last_axis_only": "ValueError"}}``)."""
    head, sep, tail = b.call.partition("{kw}")
    call = f"{head}{'' if head.endswith('(') else ', '}axis=1{sep}{tail}"
    conventions = {**b.conventions, "class_axis": 1}
    if backends:
        own = conventions.get("_backends") or {}
        conventions["_backends"] = {k: {**own.get(k, {}), **backends.get(k, {})} for k in {*own, *backends}}
    return replace(b, id=f"{b.id}+channels_first", call=call, conventions=conventions, min_rank=2)


def with_convention(bindings: list[Binding], name: str, by_id: dict[str, str], specs) -> list[Binding]:
    """``bindings`` with convention ``name`` set to ``by_id[b.id]`` on those whose id it names and whose
    spec is one of ``specs`` (the specs that take the convention); the others as they are."""
    return [
        replace(b, conventions={**b.conventions, name: by_id[b.id]}) if b.id in by_id and b.spec in specs else b
        for b in bindings
    ]


def on_backend(backend: str, bindings: list[Binding]) -> list[Binding]:
    """Each backend-less binding as it runs on ``backend``: its id and framework name it
    (``keras.losses.Huber[jax]`` of ``keras[jax]``), and its per-backend conventions apply."""
    out = []
    for b in bindings:
        conv = dict(b.conventions)
        conv.update((conv.pop("_backends", None) or {}).get(backend, {}))
        stages = conv.pop("_stages", b.stages)
        out.append(
            replace(
                b,
                id=f"{b.id}[{backend}]",
                framework=f"{b.framework}[{backend}]",
                conventions=conv,
                stages=stages,
            )
        )
    return out


def keras_sample_weight(spec: Spec, reduced=None, drop: tuple[str, ...] = (), adapt=None) -> Spec:
    """``spec`` with Keras' ``sample_weight`` parameter (default None): its oracle, gradient and
    error model weight and reduce the per-sample losses as Keras' ``reduce_weighted_values`` does
    (``reference/reduction.py``), or, under the convention ``weighting="tf_v1"``, as
    ``tf.compat.v1.losses.compute_weighted_loss`` does (whose ``weights`` the parameter binds), and its
    generator draws weights (and then Keras' reductions) for
    some cases. For specs whose Keras classes bind it (``keras_pair(..., sample_weight=True)``) and
    whose per-sample loss reads its own sample's elements only. ``reduced(params, ndim)``: the axes
    of an input of rank ``ndim`` that Keras' loss function reduces under the case's ``params``
    (None: the last one), which the generated weights' shape leaves out
    (:func:`~lossparity.conformance.generate.keras_sample_weights`) and along which the gradients
    spread each sample's cotangent. ``drop``: spec parameters the Keras class has no keyword for,
    left at their defaults in weighted cases (the spec's other bindings vary them); ``adapt``: see
    :func:`~lossparity.conformance.generate.keras_sample_weights`."""
    return replace(
        spec,
        oracle=sample_weighted(spec.oracle),
        gradient=spec.gradient and sample_weighted_grad(spec.gradient, spec.oracle, reduced),
        error_model=spec.error_model and sample_weighted_error(spec.error_model, spec.oracle, reduced),
        defaults={**spec.defaults, "sample_weight": None},
        conventions=(*spec.conventions, "weighting"),
        stages=(*spec.stages, WEIGHTING_STAGE) if spec.error_model else spec.stages,
        generate=None if spec.generate is None else keras_sample_weights(spec.generate, reduced, drop, adapt),
    )


def last_axis_only_spec(spec: Spec) -> Spec:
    """``spec`` (a class-axis spec) with the convention ``last_axis_only``: its oracle, gradient and
    error model raise the error class a binding declares where the binding reads the class axis
    elsewhere than last (``reference.errors.last_axis_only``; ``class_axis`` is read for it)."""
    return replace(
        spec,
        oracle=last_axis_only(spec.oracle),
        gradient=spec.gradient and last_axis_only(spec.gradient),
        error_model=spec.error_model and last_axis_only(spec.error_model),
        conventions=tuple(dict.fromkeys((*spec.conventions, "class_axis", "last_axis_only"))),
    )


def integer_target_spec(spec: Spec) -> Spec:
    """``spec`` (float targets) with the conventions ``int_targets`` and ``int_inputs``: its oracle,
    gradient and error model take an integer target or input array as the binding documents it,
    promoted (plain), cast or refused with the error class the binding declares
    (``reference.errors.integer_targets``)."""
    return replace(
        spec,
        oracle=integer_targets(spec.oracle),
        gradient=spec.gradient and integer_targets(spec.gradient),
        error_model=spec.error_model and integer_targets(spec.error_model),
        conventions=(*spec.conventions, "int_targets", "int_inputs"),
    )
