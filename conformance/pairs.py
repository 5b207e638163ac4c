"""Pairs of calls users treat as equivalent, across specs and result shapes: one table, as data.

A divergence is looked for between two bindings of one spec on one case (``divergence.py``),
and between the twin bindings of a :class:`Pair` of specs on *common ground*: side B runs
on cases derived from side A's (``derived_cases``: A's input through the pair's transform,
computed in float64 and rounded to the run's dtype by ``Case.in_dtype`` as every case is), so
``torch.nn.BCEWithLogitsLoss()(z, y)`` meets ``torch.nn.BCELoss()(sigmoid(z), y)``. A derived
case is an ordinary case of B's spec as well, judged against B's oracle; its id is A's case id
with ``~<transform>`` after it (``gen-0-7~sigmoid``), so the known deviations keyed ``gen-*``
cover it.

The results are compared in a *common form* (:func:`common_form`): as returned where both
have one shape; where one is the other with a last axis more (torch's ``reduction="none"``
per-element BCE against Keras' per-sample BCE), that one's last axis averaged (the per-sample
mean), its gradients divided by that axis' length (the slope of the per-sample mean). The
gradients compared are those with respect to the same argument on both sides (``Pair.grads``:
the target, which no transform touches; the input too where the pair feeds both the same
tensors); a slope in ``z`` against one in ``sigmoid(z)`` is not compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np

from lossparity.conformance.generate import is_domain
from lossparity.core.model import Binding, Case
from lossparity.reference.transforms import forward

#: Where a derived case's id says what it was derived by: ``gen-0-7~sigmoid``.
SEP = "~"


#: The transforms a pair applies to side A's input (float64 in, float64 out: the oracle's, the same
#: ``reference/transforms.py`` computes for ``lossparity explain``), over the last (class) axis.
TRANSFORMS = {
    "same": lambda z: z,
    **{name: partial(forward, name, axis=-1) for name in ("sigmoid", "softmax", "log_softmax")},
}


@dataclass(frozen=True)
class Pair:
    """Two specs whose twin bindings users treat as one call: B on A's cases through ``transform``.

    ``bindings``: (A binding id, B binding id) twins; ``sides``: how each side reads the
    common input (shown beside a binding's id in the agreement matrix); ``grads``: the
    gradients compared (with respect to the same argument on both sides); ``examples``: at
    most this many of A's generated cases are derived (the run time a pair adds); ``edges``:
    A's edge rows derived as well."""

    name: str
    a: str
    b: str
    transform: str
    bindings: tuple[tuple[str, str], ...]
    sides: tuple[str, str]
    grads: tuple[str, ...] = ("target",)
    examples: int = 50
    edges: tuple[str, ...] = ()

    @property
    def tag(self) -> str:
        return self.name if self.transform == "same" else self.transform

    def derived_id(self, case_id: str) -> str:
        return f"{case_id}{SEP}{self.tag}"

    def label(self) -> str:
        """The caption of the pair's agreement matrix."""
        return f"{self.a} {self.sides[0]} ~ {self.b} {self.sides[1]}"


def _keras(a: str, b: str) -> list[tuple[str, str]]:
    """Keras class and function twins, one per backend (the backend names the id)."""
    return [(f"keras.losses.{a}[{be}]", f"keras.losses.{b}[{be}]") for be in _BACKENDS]


_BACKENDS = ("tensorflow", "jax", "torch")

# fmt: off
PAIRS: tuple[Pair, ...] = (
    # BCEWithLogitsLoss(z, y) and BCELoss(sigmoid(z), y): where sigmoid rounds to 1 (z > 16.6 in
    # float32) BCE clamps the log at -100 (torch) or clips p at 1 - 1e-7 (Keras); optax has no BCE
    # on probabilities: its twin is Keras' on JAX.
    Pair("logits-probabilities", "binary_cross_entropy_with_logits", "binary_cross_entropy", "sigmoid",
         (("torch.nn.BCEWithLogitsLoss", "torch.nn.BCELoss"),
          ("torch.nn.functional.binary_cross_entropy_with_logits", "torch.nn.functional.binary_cross_entropy"),
          *_keras("BinaryCrossentropy", "BinaryCrossentropy"),
          *_keras("binary_crossentropy", "binary_crossentropy"),
          ("optax.losses.sigmoid_binary_cross_entropy", "keras.losses.binary_crossentropy[jax]")),
         ("on logits z", "on sigmoid(z)")),
    # CategoricalCrossentropy(from_logits=True) on z and CategoricalCrossentropy() on softmax(z).
    Pair("softmax-probabilities", "softmax_cross_entropy_soft", "categorical_cross_entropy", "softmax",
         (*_keras("CategoricalCrossentropy", "CategoricalCrossentropy"),
          *_keras("categorical_crossentropy", "categorical_crossentropy"),
          ("optax.losses.softmax_cross_entropy", "keras.losses.categorical_crossentropy[jax]")),
         ("on logits z", "on softmax(z)")),
    # CrossEntropyLoss(z, t) is documented as NLLLoss(log_softmax(z), t).
    Pair("cross_entropy-nll", "softmax_cross_entropy", "nll_loss", "log_softmax",
         (("torch.nn.CrossEntropyLoss", "torch.nn.NLLLoss"),
          ("torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss")),
         ("on logits z", "on log_softmax(z)"), grads=()),
    # The seed documents' question: BCELoss and CrossEntropyLoss on the same tensors
    # ([0.8, 0.2, 0.4] / [1, 0, 0]: 0.3190 and 0.7971): two different losses.
    Pair("bce-ce", "binary_cross_entropy", "softmax_cross_entropy_soft", "same",
         (("torch.nn.BCELoss", "torch.nn.CrossEntropyLoss"),
          ("torch.nn.functional.binary_cross_entropy", "torch.nn.functional.cross_entropy")),
         ("as BCE", "as cross-entropy"), grads=("input", "target"), examples=25, edges=("seed-000",)),
)
# fmt: on

BY_NAME = {p.name: p for p in PAIRS}


def derived_cases(pair: Pair, source: Iterable[Case]) -> list[Case]:
    """B's cases derived from A's (``source``): at most ``pair.examples`` of the generated ones,
    evenly spaced (the generator lists its cases structure bucket by bucket: every bucket gives
    some), and the edge rows ``pair.edges``; each A's arrays and parameters with the input
    through the pair's transform, in float64. Never the domain buckets' cases (``generate.domain``:
    integer targets where floats are documented, targets outside [0, 1], float labels, an activation
    inside the call): what each binding does with those is its own spec's convention (``int_targets``,
    ``prob_domain``, ``float_labels``), not ground the two calls share."""
    source = [c for c in source if not is_domain(c.origin.get("bucket", 0))]
    generated = [c for c in source if "generator" in c.origin]
    step = max(1, -(-len(generated) // pair.examples)) if pair.examples else 0
    taken = {id(c) for c in generated[::step][: pair.examples]} if step else set()
    out = []
    fn = TRANSFORMS[pair.transform]
    for case in source:
        if id(case) not in taken and ("generator" in case.origin or case.origin.get("row") not in pair.edges):
            continue
        arrays = {**case.arrays, "input": fn(np.asarray(case.arrays["input"], np.float64))}
        origin = {**case.origin, "derived": {"pair": pair.name, "from": f"{pair.a} {case.id}", "by": pair.transform}}
        out.append(Case(pair.b, pair.derived_id(case.id), origin, arrays, dict(case.params), case.dtypes))
    return out


def cases_for(selection, binding: Binding, spec) -> list[Case]:
    """The derived cases ``binding`` runs in a run of ``selection``: those of each pair whose B
    side it is, where the selection runs A's twin too (else nothing meets them), that it can
    take (``Binding.takes``: BCE on probabilities has no ``pos_weight``)."""
    out = []
    selected = {b.id for b in selection.bindings()}
    for pair in PAIRS:
        if pair.b != binding.spec:
            continue
        twins = [a for a, b in pair.bindings if b == binding.id and a in selected]
        if not twins:
            continue
        for case in derived_cases(pair, selection.cases(pair.a)):
            if binding.takes(spec, case):
                out.append(case)
    return out


def ground_keys(record: Mapping) -> list[tuple[tuple, str]]:
    """The common-ground groups a result belongs to, ``(pair, A's case id, dtype, device)``, each
    with the side it is on: ``"a"`` (its case not derived) or ``"b"`` (a case derived by the
    pair); every mode. A group is compared only where it holds both sides."""
    out = []
    spec, binding, case_id = record["spec"], record["binding"], record["case_id"]
    rest = (record["dtype"], record["device"])
    for pair in PAIRS:
        if spec == pair.a and SEP not in case_id and any(a == binding for a, _ in pair.bindings):
            out.append(((pair.name, case_id, *rest), "a"))
        if spec == pair.b and case_id.endswith(SEP + pair.tag) and any(b == binding for _, b in pair.bindings):
            out.append(((pair.name, case_id.removesuffix(SEP + pair.tag), *rest), "b"))
    return out


def common_form(shape_a: tuple, shape_b: tuple) -> tuple[str, str | None] | None:
    """How two results of these shapes are compared: ``("as returned", None)`` for one shape;
    ``("per-sample mean", side)`` where ``side``'s ("a" or "b") result is the other's with a
    last axis more (its per-element losses, averaged over that axis); None otherwise."""
    shape_a, shape_b = tuple(shape_a), tuple(shape_b)
    if shape_a == shape_b:
        return ("as returned", None)
    if len(shape_a) == len(shape_b) + 1 and shape_a[:-1] == shape_b:
        return ("per-sample mean", "a")
    if len(shape_b) == len(shape_a) + 1 and shape_b[:-1] == shape_a:
        return ("per-sample mean", "b")
    return None


def to_common(value: np.ndarray, shape: tuple, gradient_of: tuple | None = None) -> np.ndarray:
    """A value (or, with ``gradient_of`` the shape of its value, a gradient of its sum) brought
    to the common shape ``shape``: a value with a last axis more is averaged over it, and its
    gradient divided by that axis' length; anything else is returned as it is."""
    of = tuple(np.shape(value)) if gradient_of is None else tuple(gradient_of)
    if of == tuple(shape) or len(of) != len(shape) + 1 or of[:-1] != tuple(shape):
        return value
    with np.errstate(invalid="ignore", divide="ignore"):
        if gradient_of is not None:
            return np.asarray(value, np.float64) / of[-1]
        return np.mean(np.asarray(value, np.float64), axis=-1) if of[-1] else np.full(shape, np.nan)


def describe_form(form: tuple[str, str | None], a_id: str, b_id: str, pair: Pair | None = None) -> str:
    """The common form in words, for the divergence record; on common ground, with the gradients
    compared (those with respect to the same argument on both sides)."""
    name, side = form
    if side is not None:
        name = f"{name}: {a_id if side == 'a' else b_id}'s per-element losses averaged over the last axis"
    if pair is None:
        return name
    if pair.transform == "same":
        return f"{name}, on the same tensors; gradients: {', '.join(f'd/d {g}' for g in pair.grads) or 'none'}"
    grads = ", ".join(f"d/d {g}" for g in pair.grads)
    return (
        f"{name}, B on {pair.transform}(A's input); gradients: {grads + ' only' if grads else 'not compared'} "
        f"(the input's slope is in z on one side, in {pair.transform}(z) on the other)"
    )
