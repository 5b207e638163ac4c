"""The generated cases kept on disk (``conformance/selection.py`` ``_cached``): a second
selection loads exactly what the first drew, without drawing; a damaged file is drawn again;
``LOSSPARITY_CACHE=off`` keeps nothing; workers split the drawing."""

from __future__ import annotations

import numpy as np
import pytest

from lossparity.conformance import selection as selection_module
from lossparity.conformance.registry import find
from lossparity.conformance.selection import Selection

BINDING = "torch.nn.HuberLoss"


def _same(a, b) -> bool:
    """The same cases: ids, origins, parameters and arrays (values, dtypes and shapes)."""

    def equal(x, y) -> bool:
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            return np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(x, y, equal_nan=True)
        return x == y

    return len(a) == len(b) and all(
        x.id == y.id
        and x.origin == y.origin
        and x.arrays.keys() == y.arrays.keys()
        and all(equal(x.arrays[k], y.arrays[k]) for k in x.arrays)
        and x.params.keys() == y.params.keys()
        and all(equal(x.params[k], y.params[k]) for k in x.params)
        and x.transforms == y.transforms
        for x, y in zip(a, b)
    )


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSPARITY_CACHE", str(tmp_path))
    return tmp_path / "cases"


def test_a_second_selection_loads_what_the_first_drew_without_drawing(cache, monkeypatch):
    binding = find("torch", BINDING)
    first = Selection().cases_for(binding)
    files = sorted(cache.rglob("*.pickle"))
    assert files and all(f.name.startswith("huber-") for f in files)

    def no_drawing(*_a, **_k):
        raise AssertionError("drew cases the cache holds")

    monkeypatch.setattr(selection_module, "draw_cases", no_drawing)
    monkeypatch.setattr(selection_module, "more_cases", no_drawing)
    assert _same(Selection().cases_for(binding), first)


def test_a_generated_activation_inside_the_call_is_kept_and_loaded(cache, monkeypatch):
    # the domain bucket's loss(sigmoid(z), y) cases (generate.inside): the activation is part of the cached case
    binding = find("torch", "torch.nn.BCELoss")
    first = Selection(losses=("binary_cross_entropy",)).cases_for(binding)
    inside = [c for c in first if c.transforms]
    assert inside and all(c.transforms == {"input": (("sigmoid", None, ""),)} for c in inside)

    def no_drawing(*_a, **_k):
        raise AssertionError("drew cases the cache holds")

    monkeypatch.setattr(selection_module, "draw_cases", no_drawing)
    monkeypatch.setattr(selection_module, "more_cases", no_drawing)
    assert _same(Selection(losses=("binary_cross_entropy",)).cases_for(binding), first)


def test_a_damaged_file_is_drawn_again_and_rewritten(cache):
    binding = find("torch", BINDING)
    first = Selection().cases_for(binding)
    for f in cache.rglob("*.pickle"):
        f.write_bytes(b"not a pickle")
    assert _same(Selection().cases_for(binding), first)
    assert all(f.read_bytes() != b"not a pickle" for f in cache.rglob("*.pickle"))


def test_off_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSPARITY_CACHE", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    Selection().cases_for(find("torch", BINDING))
    assert not list(tmp_path.rglob("*.pickle"))


def test_workers_start_their_share_of_the_specs(cache, monkeypatch):
    """Worker 1 of 2 draws the second half of the selected specs first, then the first half."""
    order = []
    real = selection_module.draw_cases
    monkeypatch.setattr(selection_module, "draw_cases", lambda name, *a, **k: order.append(name) or real(name, *a, **k))
    chosen = Selection(losses=("huber", "squared_error", "absolute_error", "log_cosh"), frameworks=("torch",))
    specs = list(dict.fromkeys(b.spec for b in chosen.bindings()))
    chosen.prefetch(1, 2)
    half = len(specs) // 2
    assert order == specs[half:] + specs[:half]
