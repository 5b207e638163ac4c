"""Case generation: reproducible from the seed whatever else the process imported, distinct
cases as many as asked, and at most BUCKETS structures (what a compiled mode traces for)."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings

from lossparity.conformance.generate import (
    BUCKETS,
    DOMAIN_BUCKET,
    KERAS_CLASS_REDUCTIONS,
    GenerationError,
    arrays,
    case_strategy,
    domain_bucket,
    draw_cases,
    floats,
    is_domain,
    more_cases,
    pick,
)
from lossparity.conformance.specs import SPECS

SCRIPT = """
import sys
{imports}
from lossparity.conformance.generate import draw_cases, more_cases
from lossparity.conformance.specs import SPECS
spec = SPECS["kl_divergence"]
cases = draw_cases(spec.name, spec.generate, examples=200, seed_value=0)
# a binding's further cases too (``more_cases``: the gen-S-bB-I ids)
cases += more_cases(spec.name, spec.generate, bucket=1, examples=200, seed_value=0, drawn=cases)
print(repr([(c.id, sorted((k, v.tolist()) for k, v in c.arrays.items()), sorted(c.params.items())) for c in cases]))
"""


def _draw(imports: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.format(imports=imports)], capture_output=True, text=True, check=True
    ).stdout


def test_same_seed_same_cases_in_differently_importing_processes():
    # Hypothesis draws literals from imported local modules unless generate.py stops it: a
    # process that imported the runner, the divergence code and the CLI must draw the same.
    bare = _draw("")
    loaded = _draw("import lossparity.conformance.runner, lossparity.conformance.divergence, lossparity.cli")
    assert bare == loaded


def test_different_seeds_differ_and_ids_are_dense():
    spec = SPECS["softmax_cross_entropy"]
    a = draw_cases(spec.name, spec.generate, examples=30, seed_value=1)
    b = draw_cases(spec.name, spec.generate, examples=30, seed_value=2)
    assert [c.id for c in a] == [f"gen-1-{i}" for i in range(len(a))]
    assert repr([c.arrays for c in a]) != repr([c.arrays for c in b])


def _structure(case):
    """What a compiled mode traces once for: array shapes and dtypes, and the non-array parameters."""
    return (
        tuple(sorted((k, v.shape, v.dtype.str) for k, v in case.arrays.items())),
        tuple(sorted((k, (v.shape, v.dtype.str) if isinstance(v, np.ndarray) else v) for k, v in case.params.items())),
        tuple(sorted(case.transforms.items())),  # the call text: loss(sigmoid(z), y)
    )


def _value(case):
    return (
        repr(_structure(case))
        + repr(sorted((k, v.tobytes()) for k, v in case.arrays.items()))
        + repr(sorted((k, v.tobytes() if isinstance(v, np.ndarray) else v) for k, v in case.params.items()))
    )


@pytest.mark.parametrize("seed_value", [0, 7])
def test_every_spec_gives_the_asked_distinct_cases_in_at_most_bucket_structures(seed_value):
    # the suite promises 100 generated cases per spec at the default --examples, and a run's
    # compilations bounded by its buckets, not by its cases
    # (a spec with domain choices draws a tenth more, in one further structure per choice: the domain buckets)
    short, spread = [], []
    for name, spec in SPECS.items():
        cases = draw_cases(name, spec.generate, examples=100, seed_value=seed_value)
        domain = {c.origin["bucket"] for c in cases if is_domain(c.origin["bucket"])}
        want = 100 + (10 if domain else 0)
        if len(cases) != want or len({_value(c) for c in cases}) != want:
            short.append(f"{name}: {len(cases)} cases, {len({_value(c) for c in cases})} distinct")
        structures = {_structure(c) for c in cases}
        buckets = {c.origin["bucket"] for c in cases}
        if len(structures) > BUCKETS + len(domain) or buckets - {*range(BUCKETS), *map(domain_bucket, range(3))}:
            spread.append(f"{name}: {len(structures)} structures")
        assert [c.id for c in cases] == [f"gen-{seed_value}-{i}" for i in range(len(cases))]
        assert all(c.origin["index"] == i and c.origin["seed"] == seed_value for i, c in enumerate(cases))
    assert not short and not spread, short + spread


def test_a_bucket_is_one_structure_and_the_buckets_differ():
    spec = SPECS["softmax_cross_entropy"]
    cases = draw_cases(spec.name, spec.generate, examples=100, seed_value=0)
    by_bucket = {}
    for c in cases:
        by_bucket.setdefault(c.origin["bucket"], set()).add(_structure(c))
    assert all(len(s) == 1 for s in by_bucket.values())
    assert len(set().union(*by_bucket.values())) > 1


def test_the_first_bucket_is_plain():
    # every parameter at its default: what bindings without keywords (tf.nn, optax) can run
    for name in ("softmax_cross_entropy", "binary_cross_entropy_with_logits", "dice", "triplet_margin"):
        spec = SPECS[name]
        plain = [c for c in draw_cases(name, spec.generate, examples=40, seed_value=5) if c.origin["bucket"] == 0]
        assert plain and all(
            set(c.params) <= {"reduction"} and c.params.get("reduction", "mean") == "mean" for c in plain
        ), name


def test_drawing_is_reproducible_in_one_process():
    for name in ("ctc", "dice", "circle", "poisson_nll"):
        spec = SPECS[name]
        a, b = (draw_cases(name, spec.generate, examples=40, seed_value=3) for _ in range(2))
        assert [(c.id, c.origin, _value(c)) for c in a] == [(c.id, c.origin, _value(c)) for c in b]


def test_over_seeds_the_buckets_reach_the_whole_menu():
    # a run sees BUCKETS structures; other seeds see others (every reduction, every class count)
    spec = SPECS["softmax_cross_entropy"]
    seen = {
        (c.arrays["input"].shape[-1], c.params.get("reduction"), "sample_weight" in c.params)
        for s in range(6)
        for c in draw_cases(spec.name, spec.generate, examples=8, seed_value=s)
        if c.params.get("axis", -1) == -1  # optax's axis cases lay the classes out elsewhere
    }
    assert {n for n, _, _ in seen} == {1, 2, 3, 5}
    assert {r for _, r, weighted in seen if not weighted} == {"none", "sum", "mean"}
    # Keras' own reductions come with its sample_weight only, which no other framework takes: one
    # bucket of four per seed is weighted, so it takes twelve seeds to see each of them
    weighted = {
        c.params["reduction"]
        for s in range(12)
        for c in draw_cases(spec.name, spec.generate, examples=8, seed_value=s)
        if "sample_weight" in c.params
    }
    assert weighted == set(KERAS_CLASS_REDUCTIONS)


def test_picks_outside_draw_cases_are_plain_hypothesis_draws():
    # the strategies stay usable with @given (tests/test_oracle_*.py, tests/test_fuzz.py)
    strategy = SPECS["softmax_cross_entropy"].generate
    reductions = set()

    @settings(max_examples=120, database=None, derandomize=True)  # optax's axis/where draws take a share
    @given(strategy)
    def collect(example):
        reductions.add((example[1]["reduction"], "sample_weight" in example[1]))

    collect()
    assert {r for r, weighted in reductions if not weighted} == {"none", "sum", "mean"}
    assert {r for r, weighted in reductions if weighted} <= set(KERAS_CLASS_REDUCTIONS)


@case_strategy
def _tiny(draw):
    # two structures, each with one case only
    n = draw(pick([1, 2]))
    return {"input": np.ones(n)}, {"reduction": draw(pick(["sum"]))}


def test_a_spec_that_cannot_give_enough_distinct_cases_says_so():
    with pytest.raises(GenerationError, match="tiny: only [12] distinct cases"):
        draw_cases("tiny", _tiny(), examples=20, seed_value=0)


@case_strategy
def _value_dependent(draw):
    x = draw(arrays((2,), floats(-1, 1)))
    if x[0] > 0:  # a structural pick that only some values reach: it would unpin the bucket
        draw(pick(["a", "b"]))
    return {"input": x}, {"reduction": draw(pick(["sum", "mean"]))}


def test_a_structural_pick_that_depends_on_a_value_is_refused():
    with pytest.raises(GenerationError, match="depends on a drawn value"):
        draw_cases("bad", _value_dependent(), examples=40, seed_value=0)


def test_every_binding_is_checked_on_the_asked_number_of_generated_cases():
    """A binding that takes few buckets' structure (no reduction keyword: the plain bucket only;
    one that needs a parameter the plain bucket leaves out: none) gets further cases of its
    buckets, or further buckets, up to ``examples``; bindings that take the same buckets get
    the same cases, so they are compared case by case."""
    from lossparity.conformance.registry import all_bindings
    from lossparity.conformance.selection import Selection

    selection = Selection(examples=20)
    taken = {}
    for binding in all_bindings():
        generated = [c for c in selection.cases_for(binding) if "generator" in c.origin]
        # 20, and a tenth of 20 more for each bound parameter none of them varies (Selection._varying); the domain
        # buckets' cases beside them: a tenth of 20 in all, at least one in each bucket (three at most)
        standard = [c for c in generated if not is_domain(c.origin["bucket"])]
        assert 20 <= len(standard) <= 20 + 2 * len(binding.params), binding.id
        assert len(generated) - len(standard) <= 3, binding.id
        assert len({c.id for c in generated}) == len(generated)
        taken[binding.key] = generated[:20]
    plain_only = taken["softmax_cross_entropy:tf.nn.sparse_softmax_cross_entropy_with_logits"]
    assert {c.origin["bucket"] for c in plain_only} == {0} and any(c.origin.get("more") for c in plain_only)
    optax = taken["softmax_cross_entropy:optax.losses.softmax_cross_entropy_with_integer_labels"]
    # the same bucket, the same cases (optax also takes the mask bucket, which tf.nn cannot)
    shared = [c.id for c in optax if c.origin["bucket"] == 0]
    assert shared and set(shared) <= {c.id for c in plain_only}


def test_the_domain_bucket_draws_a_tenth_more_and_leaves_the_standard_buckets_as_they_were():
    # issue 19: the whole input domain through the generator: the regression specs' domain choice (an int64
    # target of whole numbers) is taken in the domain bucket only, a tenth of the cases beside the 100
    for name in ("absolute_error", "squared_error"):
        cases = draw_cases(name, SPECS[name].generate, examples=100, seed_value=0)
        standard, domain = cases[:100], cases[100:]
        assert len(domain) == 10 and all(c.origin["bucket"] == DOMAIN_BUCKET for c in domain)
        assert [c.id for c in domain] == [f"gen-0-{i}" for i in range(100, 110)]
        assert all(c.arrays["target"].dtype == np.int64 for c in domain)
        assert all(np.array_equal(c.arrays["target"], np.round(c.arrays["target"])) for c in domain)
        assert all(c.arrays["target"].dtype == np.float64 for c in standard)
        # the plain bucket's structure: the spec's defaults (reduction 'mean', no weight)
        assert all(set(c.params) == {"reduction"} and c.params["reduction"] == "mean" for c in domain)
        # Hypothesis varies them
        assert len({c.arrays["input"].tobytes() for c in domain}) == 10
    # the binary cross-entropies' first domain bucket gives int64 labels of 0 and 1
    for name in ("binary_cross_entropy", "binary_cross_entropy_with_logits"):
        cases = draw_cases(name, SPECS[name].generate, examples=100, seed_value=0)
        domain = [c for c in cases if c.origin["bucket"] == DOMAIN_BUCKET]
        assert len(domain) == 4 and all(c.arrays["target"].dtype == np.int64 for c in domain)
        assert set(np.concatenate([c.arrays["target"].ravel() for c in domain]).tolist()) == {0, 1}
        assert all(c.arrays["target"].dtype == np.float64 for c in cases[:100])
    # a spec whose generator makes no domain choice draws exactly the asked cases
    cases = draw_cases("huber", SPECS["huber"].generate, examples=100, seed_value=0)
    assert len(cases) == 100 and all(c.origin["bucket"] in range(BUCKETS) for c in cases)


def test_a_domain_choice_takes_no_structural_site_in_the_standard_buckets():
    # a strategy's picks after its domain choice (a wrapper's: Keras' sample weights) keep their sites, so its
    # standard buckets draw what they drew without the domain choice
    @case_strategy
    def plain(draw):
        return {"input": draw(arrays((2,), floats(0, 1)))}, {"reduction": draw(pick(("mean", "sum", "none")))}

    @case_strategy
    def with_domain(draw):
        from lossparity.conformance.generate import domain

        x = draw(arrays((2,), floats(0, 1)))
        flipped = draw(domain((False, True)))
        params = {"reduction": draw(pick(("mean", "sum", "none")))}
        return {"input": -x if flipped else x}, params

    a = draw_cases("t", plain(), examples=20, seed_value=3)
    b = draw_cases("t", with_domain(), examples=20, seed_value=3)
    assert len(a) == 20 and len(b) == 22
    assert [(c.params, c.arrays["input"].tolist()) for c in a] == [
        (c.params, c.arrays["input"].tolist()) for c in b[:20]
    ]
    assert all(np.all(c.arrays["input"] <= 0) for c in b[20:])


def test_each_domain_choice_is_taken_in_a_bucket_of_its_own_and_together_they_draw_a_tenth():
    # a domain choice of four options past the plain one: four domain buckets, one option each, 10 cases in all
    # (3, 3, 2, 2), listed last; the standard buckets as without the choice
    @case_strategy
    def plain(draw):
        return {"input": draw(arrays((2,), floats(0, 1)))}, {"reduction": draw(pick(("mean", "sum", "none")))}

    @case_strategy
    def kinds(draw):
        from lossparity.conformance.generate import domain

        x = draw(arrays((2,), floats(0, 1)))
        params = {"reduction": draw(pick(("mean", "sum", "none")))}
        kind = draw(domain(("plain", "a", "b", "c", "d")))
        return {"input": x + {"plain": 0, "a": 10, "b": 20, "c": 30, "d": 40}[kind]}, params

    a = draw_cases("t", plain(), examples=100, seed_value=3)
    b = draw_cases("t", kinds(), examples=100, seed_value=3)
    assert [(c.params, c.arrays["input"].tolist()) for c in a] == [
        (c.params, c.arrays["input"].tolist()) for c in b[:100]
    ]
    domain = b[100:]
    assert [c.origin["bucket"] for c in domain] == [-1] * 3 + [-2] * 3 + [-3] * 2 + [-4] * 2
    assert [domain_bucket(k) for k in range(4)] == [DOMAIN_BUCKET, -2, -3, -4]
    assert [c.id for c in domain] == [f"gen-3-{i}" for i in range(100, 110)]
    # bucket -k took option k: its inputs were shifted by 10 k, and its structure is the plain bucket's
    assert all(
        10 * k <= c.arrays["input"].min() <= c.arrays["input"].max() <= 10 * k + 1
        for c in domain
        for k in [-c.origin["bucket"]]
    )
    assert all(c.params == {"reduction": "mean"} for c in domain)


def _domain(name: str) -> dict[int, list]:
    cases = draw_cases(name, SPECS[name].generate, examples=100, seed_value=0)
    assert not any(c.transforms for c in cases[:100])  # the standard buckets: no activation inside
    out = {}
    for c in cases[100:]:
        out.setdefault(c.origin["bucket"], []).append(c)
    assert sum(map(len, out.values())) == 10
    return out


def test_the_binary_cross_entropies_domain_buckets():
    # issue 19: int64 labels, targets outside [0, 1], and on probabilities the sigmoid inside the call, on logits a
    # class weight without pos_weight (torch's MultiLabelSoftMarginLoss takes no pos_weight)
    for name, last in (("binary_cross_entropy", "sigmoid"), ("binary_cross_entropy_with_logits", "weight")):
        domain = _domain(name)
        assert sorted(domain) == [-3, -2, -1] and [len(domain[b]) for b in (-1, -2, -3)] == [4, 3, 3]
        assert all(c.arrays["target"].dtype == np.int64 for c in domain[-1])
        for c in domain[-2]:
            y = c.arrays["target"]
            assert y.dtype == np.float64 and np.all((y >= -0.5) & (y <= 1.5)) and np.any((y < 0) | (y > 1))
        assert all(c.params == {"reduction": "mean"} and not c.transforms for c in domain[-2])
        for c in domain[-3]:
            y = c.arrays["target"]
            assert y.dtype == np.float64 and np.all((y >= 0) & (y <= 1))
            if last == "sigmoid":
                assert c.transforms == {"input": (("sigmoid", None, ""),)} and c.params == {"reduction": "mean"}
                assert np.all(np.abs(c.arrays["input"]) <= 4)  # given z: its sigmoid keeps off Keras' clip
            else:
                assert not c.transforms and set(c.params) == {"reduction", "weight"}
                assert c.params["weight"].shape == c.arrays["input"].shape[-1:]


def test_the_class_index_specs_domain_bucket_gives_float_labels():
    for name in ("softmax_cross_entropy", "sparse_categorical_cross_entropy", "nll_loss"):
        (domain,) = _domain(name).values()
        for c in domain:
            t, classes = c.arrays["target"], c.arrays["input"].shape[-1]
            assert t.dtype == np.float64 and np.array_equal(t, np.round(t)) and np.all((t >= 0) & (t < classes))
            assert c.params == {"reduction": "mean"}


def test_the_soft_target_and_overlap_specs_domain_buckets():
    # categorical cross-entropy on probabilities: the softmax inside the call, over the class axis
    (domain,) = _domain("categorical_cross_entropy").values()
    assert all(c.transforms == {"input": (("softmax", None, ""),)} for c in domain)
    assert all(np.all(np.abs(c.arrays["input"]) <= 4) for c in domain)
    # on logits: smoothing in the plain structure (no weight, sample weight or mask beside it)
    (domain,) = _domain("softmax_cross_entropy_soft").values()
    assert all(c.params == {"reduction": "mean", "label_smoothing": 0.2} for c in domain)
    # Dice and Tversky: an axis in the plain structure, every axis but the class axis
    for name in ("dice", "tversky"):
        (domain,) = _domain(name).values()
        for c in domain:
            ndim = c.arrays["input"].ndim
            assert c.params == {"reduction": "mean", **({"axis": tuple(range(ndim - 1))} if ndim >= 2 else {})}


def test_a_domain_buckets_further_cases_keep_their_activation_and_are_new():
    # more_cases of the sigmoid bucket: each drawn case is a transform case, none of them among the cases drawn
    # (the activation counts in a case's identity: the same z with and without it are two cases)
    name = "binary_cross_entropy"
    drawn = draw_cases(name, SPECS[name].generate, examples=100, seed_value=0)
    more = more_cases(name, SPECS[name].generate, bucket=domain_bucket(2), examples=5, seed_value=0, drawn=drawn)
    assert len(more) == 5 and all(c.transforms == {"input": (("sigmoid", None, ""),)} for c in more)
    assert not {_value(c) + repr(c.transforms) for c in more} & {_value(c) + repr(c.transforms) for c in drawn}
    assert [c.id for c in more] == [f"gen-0-b-3-{i}" for i in range(5)]


def test_a_bindings_domain_cases_come_beside_its_examples_and_move_none_of_the_others(monkeypatch):
    # the domain buckets are a tenth more: a binding's further cases of the standard buckets (and its parameters'
    # top-ups, Selection._varying) are those it gets without them; the domain cases come beside them
    from lossparity.conformance import selection as selection_module
    from lossparity.conformance.registry import find
    from lossparity.conformance.selection import Selection

    monkeypatch.setenv("LOSSPARITY_CACHE", "off")
    spec = "softmax_cross_entropy_soft"
    real = selection_module.draw_cases

    def standard_only(*a, **k):
        return [c for c in real(*a, **k) if not is_domain(c.origin["bucket"])]

    for binding in (
        find("torch", "torch.nn.CrossEntropyLoss", spec),
        find("jax", "optax.losses.softmax_cross_entropy"),
    ):
        ids = [(c.id, c.origin.get("bucket")) for c in Selection(losses=(spec,), examples=20).cases_for(binding)]
        domain = [i for i, b in ids if b is not None and is_domain(b)]
        standard = [i for i, b in ids if b is not None and not is_domain(b)]
        assert len(standard) >= 20
        if binding.framework == "torch":  # smoothing 0.2 in the plain structure: torch takes it, optax has none
            assert domain
        monkeypatch.setattr(selection_module, "draw_cases", standard_only)
        without = Selection(losses=(spec,), examples=20).cases_for(binding)
        monkeypatch.setattr(selection_module, "draw_cases", real)
        assert [i for i, _ in ids if i not in domain] == [c.id for c in without]
