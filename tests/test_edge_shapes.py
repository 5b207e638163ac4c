"""Edge rows whose point is a value run at a shape of the generators' menus (issue 20).

An edge row at a shape of its own compiles again in every compiled mode and, in eager JAX, every
primitive of the call: 0.1 to 0.2 s a result against 6 to 28 ms for a generated case. A row whose
point is a value (an infinite logit, an ignored label, a zero vector) is therefore written at a
shape of ``generate.SHAPE_MENU`` (with a class count of ``CLASS_MENU`` where the spec has a class
axis), padded with rows that keep its meaning; rows whose point is the shape (empty, unbatched,
spatial) and rows that quote a documented example keep theirs.
"""

import pytest

from lossparity.conformance.generate import CLASS_MENU, SHAPE_MENU
from lossparity.conformance.specs import SPECS

#: (spec, rows moved to a menu shape, whether the last axis is a class or feature axis from CLASS_MENU)
MOVED = [
    (
        "softmax_cross_entropy",
        [
            "nan-logit",
            "one-class",
            "some-ignored",
            "all-ignored",
            "default-minus-100",
            "label-too-big",
            "label-negative",
            "huge-logits",
            "neg-inf-logit",
            "weighted-mean",
            "smoothing-weighted",
            "smoothing-ignored",
            "smoothing-ignored-weighted",
        ],
        True,
    ),
    ("softmax_cross_entropy_soft", ["one-hot", "smoothing-logits"], True),
    (
        "binary_cross_entropy_with_logits",
        ["inf-logits-right", "inf-logits-wrong", "nan-logit", "zero-logit", "target-outside"],
        False,
    ),
    (
        "binary_focal_cross_entropy_with_logits",
        ["gamma-zero", "alpha-zero", "alpha-one", "soft-labels", "gamma-half"],
        False,
    ),
    ("cosine_similarity", ["zero-vector", "identical", "orthogonal"], True),
]

MENU = {s for shapes in SHAPE_MENU.values() for s in shapes}


def at_menu_shape(shape: tuple, class_axis: bool) -> bool:
    if class_axis:
        return shape[:-1] in MENU and shape[-1] in CLASS_MENU
    return shape in MENU


@pytest.mark.parametrize(("spec", "rows", "class_axis"), MOVED, ids=[m[0] for m in MOVED])
def test_value_rows_are_at_a_menu_shape(spec, rows, class_axis):
    cases = {c.id: c for c in SPECS[spec].edges}
    for row in rows:
        case = cases[f"edge-{row}"]
        shape = case.arrays["input"].shape
        assert at_menu_shape(shape, class_axis), (spec, row, shape)
        # the target and the other arrays along the batch follow the input's batch
        assert case.arrays["target"].shape[:1] == shape[:1], (spec, row)


def test_the_rows_quoted_by_known_entries_keep_their_first_rows():
    """Known entries quote these rows' first values (optax's finite gradient of an out-of-range
    label: logits [0.5, -0.5] and [1, 2]); the padding comes after them."""
    cases = {c.id: c for c in SPECS["softmax_cross_entropy"].edges}
    assert cases["edge-label-too-big"].arrays["input"][1].tolist() == [0.5, -0.5]
    assert cases["edge-label-too-big"].arrays["target"][:2].tolist() == [0, 2]
    assert cases["edge-default-minus-100"].arrays["input"][0].tolist() == [1.0, 2.0]
    assert cases["edge-default-minus-100"].arrays["target"][:2].tolist() == [-100, 1]
