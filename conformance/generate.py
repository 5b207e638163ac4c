"""Hypothesis strategies of cases, one per spec, and the seeded drawing of a reproducible list.

Values are drawn as float32-representable numbers (``width=32``) so that a float64 and
a float32 run of the same case see the same inputs. Shapes cover unbatched inputs,
batches and extra spatial dimensions; parameters cover each spec's parameter space.
"""

from __future__ import annotations

import contextlib

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lossparity.conformance.model import Case

REDUCTIONS = st.sampled_from(["none", "sum", "mean"])


def floats(lo, hi):
    """Finite float32-representable values in [lo, hi] (bounds rounded inward to float32)."""
    lo32, hi32 = np.float32(lo), np.float32(hi)
    lo32 = lo32 if lo32 >= lo else np.nextafter(lo32, np.float32(np.inf))
    hi32 = hi32 if hi32 <= hi else np.nextafter(hi32, np.float32(-np.inf))
    return st.floats(float(lo32), float(hi32), width=32, allow_nan=False, allow_infinity=False)


def arrays(shape, elements, dtype=np.float64):
    return hnp.arrays(dtype, shape, elements=elements)


#: The batch shapes generated cases are drawn from, by rank. A compiled mode (jax.jit,
#: tf.function) traces once per shape, and JAX's eager mode compiles each primitive once per
#: shape: a fixed menu bounds a run's compilations by the menu, not by its cases, and still
#: covers unbatched inputs, a batch of one, extents of one (broadcasting) and spatial dims.
SHAPE_MENU = {0: [()], 1: [(1,), (4,)], 2: [(3, 1), (2, 4)], 3: [(2, 1, 3), (1, 2, 2)]}
#: Class counts, likewise: one class (the degenerate softmax), two, and a few.
CLASS_MENU = (1, 2, 3, 5)


@st.composite
def batch_shapes(draw, min_dims=0, max_dims=3):
    """() for an unbatched input, else (N, d1, ...) with small extents, N >= 1, from :data:`SHAPE_MENU`."""
    return draw(st.sampled_from([s for rank in range(min_dims, max_dims + 1) for s in SHAPE_MENU[rank]]))


def _set(params, name, strategy_value, default):
    if strategy_value is not default and not (isinstance(strategy_value, float) and strategy_value == default):
        params[name] = strategy_value


@st.composite
def binary(draw, logits: bool):
    shape = draw(batch_shapes(min_dims=1))
    x = draw(arrays(shape, floats(-20, 20) if logits else floats(0, 1)))
    hard = draw(st.booleans())
    y = draw(arrays(shape, st.sampled_from([0.0, 1.0]) if hard else floats(0, 1)))
    params = {"reduction": draw(REDUCTIONS)}
    if draw(st.booleans()):
        params["weight"] = draw(arrays(shape[-1:], floats(0.25, 4)))
    if logits and draw(st.booleans()):
        params["pos_weight"] = draw(arrays(shape[-1:], floats(0.25, 4)))
    _set(params, "label_smoothing", draw(st.sampled_from([0.0, 0.0, 0.1])), 0.0)
    return {"input": x, "target": y}, params


@st.composite
def class_index(draw, log_probs: bool = False, probs: bool = False, smoothing: bool = True,
                weights: bool = True):
    shape = draw(batch_shapes())
    n_classes = draw(st.sampled_from(CLASS_MENU))
    if probs:
        raw = draw(arrays(shape + (n_classes,), floats(0.01, 1)))
        x = raw / raw.sum(axis=-1, keepdims=True)
    else:
        x = draw(arrays(shape + (n_classes,), floats(-15, 15)))
        if log_probs:
            x = x - np.log(np.sum(np.exp(x), axis=-1, keepdims=True))
    t = draw(arrays(shape, st.integers(0, n_classes - 1), dtype=np.int64))
    params = {"reduction": draw(REDUCTIONS)}
    if weights and draw(st.booleans()):
        params["weight"] = draw(arrays((n_classes,), floats(0.25, 4)))
    ignore = draw(st.sampled_from([None, -100, 0]))
    if ignore is not None:
        params["ignore_index"] = ignore
        if t.ndim and ignore == -100:
            t = np.where(draw(arrays(t.shape, st.booleans(), dtype=bool)), -100, t)
    if smoothing:
        _set(params, "label_smoothing", draw(st.sampled_from([0.0, 0.0, 0.1, 0.3])), 0.0)
    return {"input": x, "target": t}, params


@st.composite
def soft_targets(draw, probs_input: bool, weights: bool = True):
    shape = draw(batch_shapes())
    n_classes = draw(st.sampled_from(CLASS_MENU))
    if probs_input:
        raw = draw(arrays(shape + (n_classes,), floats(0.001, 1)))
        x = raw / raw.sum(axis=-1, keepdims=True)
    else:
        x = draw(arrays(shape + (n_classes,), floats(-15, 15)))
    raw_t = draw(arrays(shape + (n_classes,), floats(0, 1)))
    sums = raw_t.sum(axis=-1, keepdims=True)
    y = np.where(sums > 0, raw_t / np.where(sums > 0, sums, 1), 1.0 / n_classes)
    params = {"reduction": draw(REDUCTIONS)}
    if weights and draw(st.booleans()):
        params["weight"] = draw(arrays((n_classes,), floats(0.25, 4)))
    _set(params, "label_smoothing", draw(st.sampled_from([0.0, 0.0, 0.1])), 0.0)
    return {"input": x, "target": y}, params


@st.composite
def kl_cases(draw, log_input: bool):
    shape = draw(batch_shapes(min_dims=1))
    n = shape[-1]
    q = draw(arrays(shape, floats(0.001, 1)))
    q = q / q.sum(axis=-1, keepdims=True)
    p = draw(arrays(shape, floats(0, 1)))
    sums = p.sum(axis=-1, keepdims=True)
    p = np.where(sums > 0, p / np.where(sums > 0, sums, 1), 1.0 / n)
    params = {"reduction": draw(st.sampled_from(["none", "sum", "mean", "batchmean"]) if log_input else REDUCTIONS)}
    if not log_input:
        return {"input": q, "target": p}, params
    if draw(st.booleans()) and np.all(p > 0):  # log p = -inf lives in the edge table
        params["log_target"] = True
        p = np.log(p)
    return {"input": np.log(q), "target": p}, params


@st.composite
def distributions(draw, pair: bool):
    shape = draw(batch_shapes(min_dims=0, max_dims=2)) + (draw(st.sampled_from(CLASS_MENU + (6,))),)

    def dist():
        raw = draw(arrays(shape, floats(0, 1)))
        sums = raw.sum(axis=-1, keepdims=True)
        return np.where(sums > 0, raw / np.where(sums > 0, sums, 1), 1.0 / shape[-1])

    arrays_ = {"input": dist()}
    if pair:
        arrays_["target"] = dist()
    params = {}
    _set(params, "base", draw(st.sampled_from(["e", "e", 2])), "e")
    return arrays_, params


def draw_cases(spec_name: str, strategy, *, examples: int, seed_value: int) -> list[Case]:
    """``examples`` cases from ``strategy``, identical for identical (spec, seed).

    Hypothesis runs a throwaway test in the generate phase only, seeded from the
    command line, with no example database: the same seed gives the same list in every
    process (xdist workers included).
    """
    drawn: list = []

    @_only_global_constants()
    @seed(seed_value)
    @settings(max_examples=examples, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck), derandomize=False)
    @given(strategy)
    def collect(example):
        drawn.append(example)

    collect()
    cases, seen = [], set()
    for arrays_, params in drawn:
        key = repr(sorted((k, v.tobytes(), v.shape) for k, v in arrays_.items())) + repr(
            sorted((k, v.tobytes() if isinstance(v, np.ndarray) else v) for k, v in params.items()))
        if key in seen:
            continue
        seen.add(key)
        index = len(cases)
        cases.append(Case(spec_name, f"gen-{seed_value}-{index}",
                          {"generator": "hypothesis", "seed": seed_value, "index": index},
                          arrays_, params))
    return cases


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
