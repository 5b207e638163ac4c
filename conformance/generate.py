"""The drawing engine: the pieces spec strategies are built from, and the seeded drawing of a
reproducible list of cases. Each spec's own strategy lives in its family
(``conformance/families/<family>.py``).

Values are drawn as float32-representable numbers (``width=32``) so that a float64 and
a float32 run of the same case see the same inputs. Shapes cover unbatched inputs,
batches and extra spatial dimensions; parameters cover each spec's parameter space.

A case's *structure* is what a compiled mode (``jax.jit``, ``tf.function``, XLA) traces
once for: the shapes and dtypes of its arrays and its non-array parameters, which are
written into the call text (``reduction``, ``label_smoothing``, whether a ``weight`` is
passed). :func:`draw_cases` draws a spec's cases in :data:`BUCKETS` structure buckets, so a
run compiles each binding at most ``BUCKETS`` times per dtype and mode, however many cases
it draws. Strategies make every structural choice with :func:`pick` or :func:`pick_shape`
(and the helpers built on them: :func:`reductions`, :func:`batch_shapes`) inside a
:func:`case_strategy`; values (array elements, hard or soft targets, ties, masks) stay free
hypothesis draws.
"""

from __future__ import annotations

import contextlib
import functools
import zlib

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lossparity.core.model import Case, activations
from lossparity.reference.masked import class_axes, from_rows, to_rows
from lossparity.reference.reduction import KERAS_REDUCTIONS, REDUCTIONS, WEIGHTED_REDUCTIONS

#: Structure buckets per spec and seed: a run compiles each binding at most this many times
#: per dtype and mode. Bucket 0 is the plain one (every parameter at its first, plain
#: choice: what the bindings that take no parameters at all, tf.nn's and optax's, can run);
#: the others pick every choice from its menu in shuffled blocks (:class:`_Bucket`). 4, not
#: 5: the menus that matter most are small (reductions and most parameter menus: 3 or fewer
#: entries, flags: 2, class counts: 4), so three varied buckets show every reduction and
#: both sides of every flag, and four shape picks every class count, in one run; a fifth
#: bucket would complete no further menu (shapes have 7 entries, gammas 6) and cost every
#: compiled binding a quarter more compilations. Other seeds draw other structures.
BUCKETS = 4

#: The buckets of the whole input domain (issue 19): the plain bucket's structure with one
#: :func:`domain` choice taken in each, beside the standard buckets' ``examples``, for a spec whose
#: strategy makes such a choice. A domain choice of ``k + 1`` options is taken in ``k`` domain
#: buckets, one option past the plain one in each: :data:`DOMAIN_BUCKET` takes the first, bucket
#: ``DOMAIN_BUCKET - i`` the ``i + 1``-th (:func:`domain_bucket`). Together they draw a tenth of
#: ``examples`` (:data:`DOMAIN_SHARE`; at least 1 each), listed last; each is one structure more
#: (one compilation per compiled binding and dtype, none where it shares the plain bucket's call
#: and dtypes). The standard buckets' cases are those they were without them (a :func:`domain`
#: pick there draws nothing and takes no site).
DOMAIN_BUCKET = -1
DOMAIN_SHARE = 10


def domain_bucket(k: int) -> int:
    """The id of the ``k``-th domain bucket (0: :data:`DOMAIN_BUCKET`)."""
    return DOMAIN_BUCKET - k


def is_domain(bucket: int) -> bool:
    """Whether ``bucket`` (a case's ``origin["bucket"]``) is one of the domain buckets."""
    return bucket < 0


#: The key of a drawn case's parameters under which a strategy asks the framework to apply an
#: activation inside the call (:func:`inside`); :func:`draw_cases` moves it to ``Case.transforms``.
INSIDE = "_inside"


def inside(params: dict, **transforms: str) -> dict:
    """``params`` with the case's arguments wrapped in a function the framework applies inside the call
    (``inside(params, input="sigmoid")``: the user's ``loss(sigmoid(z), y)``, the case giving ``z``; each
    one of ``core.model.TRANSFORMS``, over the class axis), as an edge row's ``transforms``. A structural
    choice (the call text changes): draw it only where a :func:`domain` or :func:`pick` choice asks."""
    return {**params, INSIDE: tuple(sorted(transforms.items()))}


class GenerationError(ValueError):
    """A spec's strategy cannot give the asked number of distinct cases, or makes a
    structural choice that depends on a drawn value (which would unpin its buckets)."""


class _Bucket:
    """The structural choices of one bucket of one (spec, seed): the n-th :func:`pick` (or
    :func:`pick_shape`) of every example drawn in it returns the same value.

    Since earlier picks are pinned, the n-th pick is the same call site in every example of
    the bucket (a :func:`case_strategy` restarts the count at each example); a site that
    sees other options than when it was pinned is a strategy bug and raises. Bucket 0 takes
    the first option of every :func:`pick`. Otherwise the value of site n is the bucket's
    entry in a sequence of shuffled copies of the site's options (seeded by spec, seed and
    site): over the buckets each option comes up once before any comes up twice,
    independently per site.
    """

    def __init__(self, spec_name: str, seed_value: int, index: int):
        self.key = (zlib.crc32(spec_name.encode()), seed_value % 2**64)
        self.domain = is_domain(index)  # the plain bucket's structure, one domain choice taken at each site
        self.kind = DOMAIN_BUCKET - index  # which domain bucket: 0 for DOMAIN_BUCKET
        self.index = 0 if self.domain else index
        self.pins: list[tuple[tuple, object]] = []
        self.site = 0
        self.domain_kinds = 0  # the most options past the plain one of a domain choice (:func:`domain`) seen

    @property
    def saw_domain(self) -> bool:
        """Whether the strategy made a domain choice (:func:`domain`)."""
        return self.domain_kinds > 0

    def pin_domain(self, options: tuple):
        """A :func:`domain` choice: the plain ``options[0]`` in a standard bucket, where it takes no
        site (so the picks after it, a wrapper's, keep theirs and the bucket its structure); in the
        ``k``-th domain bucket the ``k``-th of the others (cyclically), so that the domain buckets
        take each of them."""
        self.domain_kinds = max(self.domain_kinds, len(options) - 1)
        if not self.domain or len(options) == 1:
            return options[0]
        return options[1 + self.kind % (len(options) - 1)]

    def pin(self, options: tuple, shape: bool):
        site, self.site = self.site, self.site + 1
        if site < len(self.pins):
            pinned_options, value = self.pins[site]
            if pinned_options is not options and pinned_options != options:
                raise GenerationError(
                    f"structural pick {site} saw {options!r}, pinned from {pinned_options!r}: a structural "
                    "choice depends on a drawn value, or the strategy is not a case_strategy"
                )
            return value
        if shape or self.index > 0:
            position = self.index if shape else self.index - 1
            rng = np.random.default_rng([*self.key, site, len(options)])
            blocks = position // len(options) + 1
            value = options[int(np.concatenate([rng.permutation(len(options)) for _ in range(blocks)])[position])]
        else:
            value = options[0]
        self.pins.append((options, value))
        return value


#: The bucket being drawn (None outside :func:`draw_cases`: then :func:`pick` is sampled_from).
_ACTIVE: _Bucket | None = None


def _restart_structure():
    if _ACTIVE is not None:
        _ACTIVE.site = 0


def case_strategy(fn):
    """``st.composite`` for a strategy of whole cases ``(arrays, params)``: each example (and
    each retry of a ``.filter``) starts its structural picks from the first. Do not nest."""

    @functools.wraps(fn)
    def body(draw, *args, **kwargs):
        _restart_structure()
        return fn(draw, *args, **kwargs)

    return st.composite(body)


@st.composite
def _pick(draw, options, shape, domain=False):
    if _ACTIVE is None:
        return draw(st.sampled_from(options))
    return _ACTIVE.pin_domain(options) if domain else _ACTIVE.pin(options, shape)


@functools.cache
def _pick_strategy(typed_options, shape, domain=False):
    return _pick(tuple(o for _, o in typed_options), shape, domain)


def domain(options):
    """A choice the standard buckets never make: the whole input domain (issue 19: an integer target
    where floats are documented, targets outside [0, 1], float class labels, the activation inside the
    call) and the parameter values their structures never reach for some binding. ``options[0]`` (the
    documented domain, the plain structure) in every standard bucket; in the domain buckets
    (:data:`DOMAIN_BUCKET`, :func:`domain_bucket`), which draw a tenth of the cases beside them, each of
    the others in turn, one per bucket. A structural choice, like :func:`pick`: the call's dtypes or
    text may change with it. Make one such choice per strategy, of every kind it has (several choices
    of two options each would all be taken together)."""
    return _pick_strategy(tuple((type(o), o) for o in options), False, True)


def pick(options):
    """One of ``options`` (repeat an entry to weight it): a structural choice, the same for
    every case of a bucket. Use it for whatever changes whether an array parameter is
    passed, or a non-array parameter's value (and with it the call text). The first entry
    is the plain choice (the spec's default, the parameter left out), which the plain bucket
    takes."""
    # keyed with the types: (0.0, 1.0) == (False, True) but they are different menus
    return _pick_strategy(tuple((type(o), o) for o in options), False)


def pick_shape(options):
    """Like :func:`pick`, for a choice of shape (a batch shape, a class count, a sequence
    length) that no binding refuses: varied in every bucket, the plain one included."""
    return _pick_strategy(tuple((type(o), o) for o in options), True)


FLAG = (False, True)


def reductions(batchmean: bool = False):
    """A reduction from :data:`~lossparity.reference.reduction.REDUCTIONS`, structural: the spec
    default ``mean`` first (a binding without a reduction keyword reduces by the mean), then the
    others in their order; ``batchmean`` only where asked (only KL divergence takes it). Keras'
    own reductions come only with a ``sample_weight`` (:func:`keras_sample_weights`), which no
    other framework takes."""
    general = (r for r in REDUCTIONS if r != "mean" and r not in WEIGHTED_REDUCTIONS)
    return pick(("mean", *(r for r in general if batchmean or r != "batchmean")))


#: The shapes of a generated Keras ``sample_weight`` against per-sample losses of shape (N, ...):
#: per sample (Keras' documented ``(batch_size,)``, or ``(N, 1, ...)`` where a per-sample loss has
#: further axes), per element, and with a trailing axis of 1 (which Keras squeezes, or matches by
#: expanding rank-1 losses).
SAMPLE_WEIGHT_SHAPES = ("sample", "element", "trailing_one")

#: The reductions of a weighted Keras case: every one Keras has (its ``None`` is the spec's "none").
KERAS_CLASS_REDUCTIONS = ("mean", *KERAS_REDUCTIONS, "sum", "none")


def sample_weight_shape(per_sample: tuple[int, ...], kind: str) -> tuple[int, ...]:
    """A ``sample_weight`` shape of ``kind`` (:data:`SAMPLE_WEIGHT_SHAPES`) for per-sample losses
    of shape ``per_sample`` (() for an unbatched input: a scalar weight), one Keras documents
    (``keras/src/losses/loss.py``, ``squeeze_or_expand_to_same_rank``)."""
    if kind == "trailing_one":
        return per_sample + (1,)
    if kind == "element" or len(per_sample) <= 1 or (len(per_sample) == 2 and per_sample[-1] == 1):
        return per_sample[:1] if kind == "sample" else per_sample
    return per_sample[:1] + (1,) * (len(per_sample) - 1)


@st.composite
def keras_sample_weights(draw, cases, reduced=None, drop=(), adapt=None):
    """``cases`` (a case strategy of a spec whose Keras classes reduce the per-sample losses of
    shape ``input.shape[:-1]``, or ``input``'s shape less the axes ``reduced(params, input.ndim)``)
    with a ``sample_weight`` in the bucket that picks one (one of the
    three past the plain one: only Keras' classes take it, so the spec's other bindings keep the
    other three structures and draw their further cases there). Weights 0 (a weight that drops a
    sample) or in [0.25, 4]; their shape kind and Keras reduction are structural like the rest
    (one compilation per bucket; over specs and seeds the buckets reach each kind and reduction).
    A weighted case leaves out what Keras' classes do not take beside it here: a class ``weight``,
    ``pos_weight``, an ignored index (whose mask Keras merges into the weights; its ignored labels
    become class 0), and the spec parameters in ``drop`` (those Keras' class has no keyword for:
    hinge's ``margin``), each left at its default; ``adapt(arrays, params)`` then gives the same loss
    in the form Keras' class takes, where leaving a parameter out would change it (CTC's blank)."""
    arrays_, params = draw(cases)
    weighted = draw(pick((False, False, True)))
    kind = draw(pick_shape(SAMPLE_WEIGHT_SHAPES))
    reduction = draw(pick(KERAS_CLASS_REDUCTIONS))
    if not weighted:
        return arrays_, params
    params = dict(params)
    ignore = params.pop("ignore_index", None)
    if ignore is not None and "target" in arrays_:
        arrays_ = {**arrays_, "target": np.where(arrays_["target"] == ignore, 0, arrays_["target"])}
    params.pop("weight", None)
    params.pop("pos_weight", None)
    params.pop("where", None)  # optax's mask (its bucket under this one): Keras' classes have none
    for name in drop:
        params.pop(name, None)
    if adapt is not None:
        arrays_, params = adapt(arrays_, params)
    x_shape = np.shape(arrays_["input"])
    axes = [a % len(x_shape) for a in reduced(params, len(x_shape))] if reduced and x_shape else [len(x_shape) - 1]
    shape = sample_weight_shape(tuple(n for i, n in enumerate(x_shape) if i not in axes), kind)
    params["reduction"] = reduction
    # 0 (a dropped sample) or in [0.25, 4], as the class weights: a weight near float32's smallest
    # normal against another of 1e-7 would make the weighted mean's divisor all but 0, and its
    # weight's slope (l_k - mean) / sum(w) a cancellation of two float32 roundings of 1e8
    weight = st.one_of(st.just(0.0), floats(0.25, 4))
    params["sample_weight"] = draw(arrays(shape, weight))
    return arrays_, params


# ----------------------------------------------------------------------------- optax axis and where
# (issue 19) optax's class-axis losses take ``axis`` (an int or a tuple of axes) and ``where`` (a
# bool mask of the entries read): ``reference/masked.py`` is their oracle. Only optax binds them,
# so a spec's cases get them in buckets of their own, as Keras' sample_weight above.

#: Where the classes of an ``axis`` case go: ``moved`` to a non-last axis (an int axis), or
#: ``spread`` over two axes (a tuple: the last batch axis folded into the classes of one sample).
OPTAX_LAYOUTS = ("spread", "moved")
#: A ``where`` mask: per entry (rows with none included among them), or per sample (optax's
#: ``where`` of the input's rank without the class axes, which it expands at ``axis``).
OPTAX_MASKS = ("entries", "entries", "samples")


@st.composite
def optax_axes(
    draw,
    cases,
    *,
    index: bool = False,
    layouts: bool = True,
    keeps: tuple[str, ...] = (),
    plain: tuple[str, ...] = (),
    expand: bool = False,
):
    """``cases`` (class axis last, or at ``params["axis"]`` where the spec draws one itself) with
    optax's ``where`` or ``axis`` in the bucket that picks each (only optax binds them, so the
    spec's other bindings keep the plain buckets). ``index``: the target holds class indices (the
    input's shape without the class axes). ``layouts``: the classes may be laid out elsewhere
    (an ``axis`` moved, or a tuple), else the mask reads the case's own axis. Such a case is an
    optax case: it keeps only the parameters in ``keeps`` (those optax takes beside these two;
    weights, smoothing and ignored labels go). ``expand``: the loss reads a mask of samples
    without the class axes (else it is drawn with them, of extent 1).

    An ``axis`` case writes the axes non-negative or negative and a tuple in either order (its
    class index counts in that order); a ``where`` case may lay its classes out too. Masks are
    per entry, with about one row in four wholly masked (optax's loss of an empty
    row), each other row keeping its label's class and a nonzero entry of each array (a zero
    vector has no cosine); or per sample (structural: the mask's shape)."""
    arrays_, params = draw(cases)
    variant = draw(pick(("plain", "where", "axis")))
    layout = draw(pick(OPTAX_LAYOUTS))
    laid_out = draw(pick(FLAG))  # a where case's classes laid out too
    order = draw(pick(((0, 1), (1, 0))))
    negative = draw(pick(FLAG))
    mask = draw(pick(OPTAX_MASKS))  # its shape is the case's structure
    x = arrays_["input"]
    # Keras' weighted bucket stays Keras', and a class-weighted one drawn for an axis stays the
    # others' (optax's class-axis losses take no class weight): else the buckets left with a class
    # weight, which torch's and Keras' class-weight bindings take, are too few for their cases
    if variant == "plain" or x.ndim == 0 or "sample_weight" in params or ("weight" in params and variant == "axis"):
        return arrays_, params
    arrays_ = dict(arrays_)
    ignore = params.get("ignore_index")
    if index and ignore is not None and "target" in arrays_:  # an optax case: its ignored labels become class 0
        arrays_["target"] = np.where(arrays_["target"] == ignore, 0, arrays_["target"])
    # a where case leaves ``plain`` at their defaults (kl_div's log_target: optax's kl_divergence
    # then takes the where bucket, kl_divergence_with_log_targets the axis bucket where it falls)
    params = {
        k: v for k, v in params.items() if k == "reduction" or k in keeps and (variant == "axis" or k not in plain)
    }
    if layouts and (variant == "axis" or laid_out) and x.ndim >= 2:
        arrays_, params["axis"] = _laid_out(draw, arrays_, layout, order, index)
        if negative:
            ndim = arrays_["input"].ndim
            axes = params["axis"]
            params["axis"] = tuple(a - ndim for a in axes) if isinstance(axes, tuple) else axes - ndim
    if variant == "where" or not layouts or x.ndim < 2:  # without a layout, both buckets mask
        params["where"] = _mask(draw, arrays_, params.get("axis", -1), index, expand, mask)
    return arrays_, params


def _laid_out(draw, arrays_, layout, order, index):
    """The arrays with their classes ``moved`` to axis 0 or ``spread`` over the last two axes
    (in ``order``), and the ``axis`` that reads them so."""
    x = arrays_["input"]
    out = dict(arrays_)
    same = [n for n, a in arrays_.items() if n != "input" and np.shape(a) == x.shape]
    if layout == "moved":  # the class axis first: (C, N, ...)
        for n in ["input", *same]:
            out[n] = np.moveaxis(arrays_[n], -1, 0)
        return out, 0
    # spread: (..., M, C) read as one sample of M * C classes over the last two axes, flattened
    # in ``order`` (order (1, 0): C-major, so the arrays hold the classes transposed)
    last = x.ndim - 1
    axes = (last - 1, last) if order == (0, 1) else (last, last - 1)
    if order == (1, 0):
        for n in ["input", *same]:
            out[n] = np.swapaxes(arrays_[n], -1, -2)
    if index and "target" in arrays_:  # one label per sample, in [0, M * C)
        m, c = x.shape[-2:]
        out["target"] = draw(arrays(x.shape[:-2], st.integers(0, m * c - 1), dtype=np.int64))
    return out, axes


def _mask(draw, arrays_, axis, index, expand, kind):
    """A ``where`` mask for the case (:func:`optax_axes`), bool, in the input's layout."""
    x = arrays_["input"]
    axes = class_axes(axis, x.ndim)
    rows = to_rows(x, axes)
    batch = rows.shape[:-1]
    if kind == "samples":
        samples = draw(arrays(batch, st.booleans(), dtype=bool))
        return samples if expand else np.expand_dims(samples, axes)
    keep = draw(arrays(rows.shape, st.booleans(), dtype=bool))
    empty = draw(arrays(batch, st.sampled_from([False, False, False, True]), dtype=bool))
    for r in np.ndindex(batch):
        if empty[r]:
            keep[r] = False
            continue
        if index and "target" in arrays_ and 0 <= int(arrays_["target"][r]) < rows.shape[-1]:
            keep[r][int(arrays_["target"][r])] = True
        for a in arrays_.values():
            if np.shape(a) == x.shape and np.asarray(a).dtype.kind == "f":
                v = np.abs(to_rows(a, axes)[r])
                if not np.any(keep[r] & (v > 0)) and np.any(v > 0):
                    keep[r][int(np.argmax(v))] = True
    return from_rows(keep, axes, x.shape)


def floats(lo, hi):
    """Finite float32-representable values in [lo, hi] (bounds rounded inward to float32)."""
    lo32, hi32 = np.float32(lo), np.float32(hi)
    lo32 = lo32 if lo32 >= lo else np.nextafter(lo32, np.float32(np.inf))
    hi32 = hi32 if hi32 <= hi else np.nextafter(hi32, np.float32(-np.inf))
    return st.floats(float(lo32), float(hi32), width=32, allow_nan=False, allow_infinity=False)


def arrays(shape, elements, dtype=np.float64):
    return hnp.arrays(dtype, shape, elements=elements)


#: The batch shapes generated cases are drawn from, by rank. A fixed menu covers unbatched
#: inputs, a batch of one, extents of one (broadcasting) and spatial dims; each bucket of
#: cases pins one entry (:func:`draw_cases`).
SHAPE_MENU = {0: [()], 1: [(1,), (4,)], 2: [(3, 1), (2, 4)], 3: [(2, 1, 3), (1, 2, 2)]}
#: Class counts, likewise: one class (the degenerate softmax), two, and a few.
CLASS_MENU = (1, 2, 3, 5)


def batch_shapes(min_dims=0, max_dims=3):
    """() for an unbatched input, else (N, d1, ...) with small extents, N >= 1, from :data:`SHAPE_MENU`."""
    return pick_shape(tuple(s for rank in range(min_dims, max_dims + 1) for s in SHAPE_MENU[rank]))


def _set(params, name, strategy_value, default):
    if strategy_value is not default and not (isinstance(strategy_value, float) and strategy_value == default):
        params[name] = strategy_value


def draw_cases(spec_name: str, strategy, *, examples: int, seed_value: int) -> list[Case]:
    """``examples`` distinct cases from ``strategy`` in at most :data:`BUCKETS` structures,
    identical for identical (spec, seed, examples); and, for a strategy with :func:`domain`
    choices, a tenth more in the domain buckets (:data:`DOMAIN_BUCKET`, :func:`domain_bucket`), listed
    last, bucket after bucket.

    Each bucket pins the structural choices (:func:`pick`) from the spec and seed, and
    hypothesis draws the values of its cases, in the generate phase only, seeded, with no
    example database: the same seed gives the same list in every process (xdist workers
    included). The buckets share the ``examples`` evenly; one whose structure has fewer
    distinct cases than its share (a single class normalizes to [1.0]) leaves the rest to
    the buckets after it. Cases are listed bucket by bucket.

    Raises :class:`GenerationError` if the buckets together cannot give ``examples``
    distinct cases.
    """
    global _ACTIVE
    if examples <= 0:
        return []
    buckets = [_Bucket(spec_name, seed_value, b) for b in range(BUCKETS)]
    found: list[list] = [[] for _ in buckets]
    seen: set = set()
    live = list(range(BUCKETS))
    rounds = 0
    with _only_global_constants():
        while live and sum(map(len, found)) < examples and rounds < _MAX_ROUNDS:
            for b in list(live):
                # b's share of what is missing, the live buckets after it taking the rest
                share = -(-(examples - sum(map(len, found))) // (len(live) - live.index(b)))
                if share <= 0:
                    break
                _ACTIVE = buckets[b]
                try:
                    new = _draw_distinct(
                        strategy, share, seen, f"{seed_value}/{spec_name}/{b}/{rounds}", simplest=(b, rounds) == (0, 0)
                    )
                finally:
                    _ACTIVE = None
                found[b] += new
                if not new:  # nothing new in a whole run: the structure has no more cases
                    live.remove(b)
            rounds += 1
    drawn = [(b, example) for b, examples_b in enumerate(found) for example in examples_b]
    if len(drawn) < examples:
        raise GenerationError(
            f"{spec_name}: only {len(drawn)} distinct cases in {BUCKETS} structure buckets "
            f"for seed {seed_value}, {examples} asked; ask for fewer --examples"
        )
    kinds = max(b.domain_kinds for b in buckets)  # the strategy's domain choices: a tenth more, in their buckets
    total = max(1, examples // DOMAIN_SHARE) if kinds else 0
    for k in range(kinds):
        # a small structure repeats itself (one class: every log-probability 0): further runs, as the standard
        # buckets get, until its share or a run with nothing new
        share, extra, rounds = max(1, total // kinds + (k < total % kinds)), [], 0
        while len(extra) < share and rounds < _MAX_ROUNDS:
            _ACTIVE = _Bucket(spec_name, seed_value, domain_bucket(k))
            try:
                with _only_global_constants():
                    new = _draw_distinct(
                        strategy,
                        share - len(extra),
                        seen,
                        f"{seed_value}/{spec_name}/domain{k or ''}" + (f"/{rounds}" if rounds else ""),
                        simplest=False,
                    )
            finally:
                _ACTIVE = None
            extra += new
            rounds = rounds + 1 if new else _MAX_ROUNDS
        drawn += [(domain_bucket(k), example) for example in extra]
    return [
        _case(
            spec_name,
            f"gen-{seed_value}-{index}",
            {"generator": "hypothesis", "seed": seed_value, "index": index, "bucket": b},
            example,
        )
        for index, (b, example) in enumerate(drawn)
    ]


def _case(spec_name: str, case_id: str, origin: dict, example: tuple) -> Case:
    """The drawn ``(arrays, params)`` as a case: an activation the strategy asks the framework for
    (:func:`inside`) goes to ``Case.transforms``, in an edge row's form."""
    arrays_, params = example
    params = dict(params)
    transforms = activations(dict(params.pop(INSIDE, ())))
    return Case(spec_name, case_id, origin, arrays_, params, transforms=transforms)


def _example(case: Case) -> tuple:
    """A case as its strategy drew it, ``(arrays, params)`` (the inverse of :func:`_case`)."""
    if not case.transforms:
        return case.arrays, case.params
    return case.arrays, {**case.params, INSIDE: tuple(sorted((k, t) for k, ((t, *_),) in case.transforms.items()))}


def more_cases(
    spec_name: str,
    strategy,
    *,
    bucket: int,
    examples: int,
    seed_value: int,
    drawn: list[Case] = (),
    part: int = 0,
    start: int = 0,
) -> list[Case]:
    """Up to ``examples`` further distinct cases of one structure bucket, none of them among
    ``drawn`` (the cases :func:`draw_cases` gave): for a binding that takes the structure of
    few buckets (a loss without a reduction keyword takes only the plain bucket's), so that it
    too is checked on ``examples`` generated cases. ``bucket`` may lie past :data:`BUCKETS`:
    a further structure, for a binding that takes none of the standard ones.

    The same (spec, seed, bucket, examples) give the same list whatever else was drawn; the
    ids are ``gen-{seed}-b{bucket}-{i}``. ``part`` > 0 draws another such list, of cases not in
    ``drawn`` (which then holds the earlier parts), numbered from ``start``: for a binding that
    takes only a bucket whose draws repeat before ``examples`` distinct cases."""
    global _ACTIVE
    seen = {_case_key(_example(c)) for c in drawn if c.origin.get("bucket") == bucket}
    _ACTIVE = _Bucket(spec_name, seed_value, bucket)
    try:
        more = "more" if not part else f"more{part}"
        with _only_global_constants():  # the draw itself: literals of the package's modules must not move it
            new = _draw_distinct(strategy, examples, seen, f"{seed_value}/{spec_name}/{bucket}/{more}", simplest=False)
    finally:
        _ACTIVE = None
    return [
        _case(
            spec_name,
            f"gen-{seed_value}-b{bucket}-{start + i}",
            {"generator": "hypothesis", "seed": seed_value, "index": start + i, "bucket": bucket, "more": True},
            example,
        )
        for i, example in enumerate(new)
    ]


#: Runs per bucket at most (a run draws its share, less the repeats of earlier cases).
_MAX_ROUNDS = 10


@st.composite
def _restarting(draw, strategy):
    """``strategy`` with its structural picks restarted for each example (for strategies that
    are not a :func:`case_strategy`)."""
    _restart_structure()
    return draw(strategy)


#: Cases one hypothesis example draws (``st.data()``), locally distinct: few enough that the
#: largest structures (CTC's (4, 6, 5) scores) stay well inside hypothesis' choice budget.
_CHUNK = 10
#: A chunk ends early after this many repeats in a row: a run's first example draws every
#: value at its simplest, one case over and over; a tiny structure repeats itself too.
_REPEATS = 3


def _case_key(example) -> str:
    arrays_, params = example
    return repr(sorted((k, v.tobytes(), v.dtype.str, v.shape) for k, v in arrays_.items())) + repr(
        sorted((k, (v.tobytes(), v.shape) if isinstance(v, np.ndarray) else v) for k, v in params.items())
    )


def _draw_distinct(strategy, share: int, seen: set, run_seed: str, simplest: bool) -> list:
    """Up to ``share`` examples of ``strategy`` whose keys are not in ``seen`` (added to it).

    A run's first hypothesis example draws every value at its simplest (zeros, first
    entries: all ties, every element on a kink); ``simplest`` keeps that case, which only
    the first run of the plain bucket does: one such case per spec, as one hypothesis run
    per spec gave, not one per bucket and run.

    Each hypothesis example draws a chunk of cases: the engine's per-example work (its tree
    of choices, its mutations of earlier examples, which mostly re-draw values already seen)
    is paid per chunk, not per case. What a chunk draws depends on its own choices only (not
    on ``seen``): hypothesis requires a test to draw the same for the same choices.
    """
    drawn: list = []
    strategy = _restarting(strategy)
    first = [True]

    @seed(run_seed)
    @settings(
        max_examples=-(-share // _CHUNK) + 1,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=False,
    )
    @given(st.data())
    def collect(data):
        keep, first[0] = simplest or not first[0], False
        local, repeats = set(), 0
        while len(local) < _CHUNK and repeats < _REPEATS:
            example = data.draw(strategy)
            key = _case_key(example)
            if key in local:
                repeats += 1
                continue
            repeats = 0
            local.add(key)
            if keep:
                drawn.append((key, example))  # kept even if a later draw of this example overruns

    collect()
    new = []
    for key, example in drawn:
        if len(new) < share and key not in seen:
            seen.add(key)
            new.append(example)
    return new


@contextlib.contextmanager
def _only_global_constants():
    """Keep hypothesis from mixing constants of the importing process's own modules into draws.

    Hypothesis (6.1xx) occasionally draws literals found in every *local* module already
    imported, so the same seed would give different cases in processes that imported
    different modules (an xdist worker, the CLI, a test). That would break reproducibility
    from ``--seed``. This uses a private hook, pinned through constraints.txt and checked by
    ``tests/test_generate.py``; if it disappears the draw is left as it is.
    """
    try:
        from hypothesis.internal.conjecture import providers

        original, empty = providers._get_local_constants, providers.Constants()
    except (ImportError, AttributeError):
        yield
        return
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = original
        providers.CONSTANTS_CACHE.cache.clear()
