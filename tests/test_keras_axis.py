"""Keras' ``axis`` on channels-first data (issue 19): each cross-entropy and focal API's
channels-first binding (``bindings.keras_channels_first``) passes ``axis=1`` and reads the class
axis where torch does (``class_axis=1``), on inputs of rank 2 or more (``Binding.min_rank``,
honoured by ``Binding.takes``: selection, pairs, and explain's one-line error).

The bindings are in the default run (the families register them); the checks below take them
from the registry and pair each with its channels-last twin. The oracle is the channels-last one:
the layout is a transpose, which the checks below prove on Keras itself (its channels-first value
is its channels-last value of the transposed arrays, and both are the value derived here by hand).
Two departures are checked too: the TensorFlow backend's sparse cross-entropy reads the last axis
only (the convention ``last_axis_only``), and Keras smooths labels over ``shape[-1]`` whatever the
axis (keras-team/keras#23451, a known entry placed on ``label_smoothing > 0``). Keras fixes its backend when
first imported, so each check that calls Keras runs in a fresh process (as in
``tests/test_adapter_keras_numpy.py``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from fnmatch import fnmatchcase

import numpy as np
import pytest

from lossparity.conformance.explain import ExplainError, _side
from lossparity.conformance.registry import adapter_for, bindings
from lossparity.conformance.selection import Selection
from lossparity.conformance.specs import SPECS
from lossparity.core.model import Case, canonical_layout, framework_layout

#: The Keras APIs whose ``axis`` is the class (or mean) axis.
APIS = """
    BinaryCrossentropy binary_crossentropy CategoricalCrossentropy categorical_crossentropy
    SparseCategoricalCrossentropy sparse_categorical_crossentropy BinaryFocalCrossentropy binary_focal_crossentropy
    CategoricalFocalCrossentropy categorical_focal_crossentropy
""".split()


def _pairs(backend: str = "tensorflow"):
    """(channels-first binding, its channels-last twin) on ``backend``, as registered, for each
    Keras binding of the APIs above (the class-weight and per-class alpha bindings index the last
    axis: they have no channels-first form)."""
    registered = {(b.spec, b.id): b for b in bindings(f"keras[{backend}]")}
    return [
        (b, registered[(b.spec, b.id.replace("+channels_first", ""))])
        for (spec, id_), b in registered.items()
        if "+channels_first" in id_
    ]


def test_the_default_run_has_eighteen_channels_first_bindings_on_each_keras_backend():
    for backend in ("tensorflow", "jax", "torch", "numpy"):
        got = _pairs(backend)
        assert len(got) == 18, backend  # 10 APIs: 8 with two specs (probabilities, logits), the 2 categorical focal
        assert {b.id.split("+")[0] for b, _ in got} == {f"keras.losses.{a}" for a in APIS}


def _case(spec: str, x, y, **params) -> Case:
    return Case(spec, "hand", {"table": "test"}, {"input": np.asarray(x, np.float64), "target": np.asarray(y)}, params)


def test_each_api_has_a_channels_first_form_with_axis_1_and_class_axis_1():
    got = _pairs()
    assert {b.id.split("+")[0] for b, _ in got} == {f"keras.losses.{a}" for a in APIS}
    for b, twin in got:
        assert b.id == twin.id.replace("[tensorflow]", "+channels_first[tensorflow]")
        assert b.conventions["class_axis"] == 1 and b.min_rank == 2, b.id
        assert "axis=1" in b.call and "(, " not in b.call, b.call
        # everything else is the twin's: its spec, parameters and the class axis last
        assert (b.spec, b.params, b.framework) == (twin.spec, twin.params, twin.framework)
        assert twin.conventions.get("class_axis", -1) == -1 and twin.min_rank == 0
    calls = {b.call for b, _ in got}
    assert "keras.losses.CategoricalFocalCrossentropy(axis=1{kw})(target, input{call_kw})" in calls
    assert "keras.losses.binary_crossentropy(target, input, from_logits=True, axis=1{kw})" in calls


def test_a_channels_first_binding_takes_no_unbatched_input():
    b, twin = next((b, t) for b, t in _pairs() if b.spec == "softmax_cross_entropy_soft")
    spec = SPECS[b.spec]
    y = [0.0, 1.0, 0.0]
    assert not b.takes(spec, _case(b.spec, [1.0, 2.0, 3.0], y))
    assert b.takes(spec, _case(b.spec, [[1.0, 2.0, 3.0]], [y]))
    # the rank is the only difference: the channels-last twin takes both
    assert twin.takes(spec, _case(b.spec, [1.0, 2.0, 3.0], y))
    assert twin.takes(spec, _case(b.spec, [[1.0, 2.0, 3.0]], [y]))


def test_selection_gives_the_twins_cases_of_rank_two_or_more_and_tops_up():
    sel = Selection(frameworks=("keras[tensorflow]",), examples=100)
    dropped = 0
    for b, twin in _pairs():
        mine, theirs = sel.cases_for(b), sel.cases_for(twin)
        assert all(np.ndim(c.arrays["input"]) >= 2 for c in mine), b.id
        # the same case ids, so the two are compared case by case; an unbatched case is the twin's alone
        assert {c.id for c in theirs if np.ndim(c.arrays["input"]) >= 2} <= {c.id for c in mine}, b.id
        assert sum("generator" in c.origin for c in mine) >= 100, b.id
        dropped += sum(np.ndim(c.arrays["input"]) < 2 for c in theirs)
    assert dropped  # the generators do draw unbatched cases, which the channels-first forms leave out


def test_layout_is_a_transpose_of_the_class_axis_and_back():
    x = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)  # canonical (N, d1, C)
    y = x / 10
    moved = framework_layout({"input": x, "target": y}, 1)
    np.testing.assert_array_equal(moved["input"], np.moveaxis(x, -1, 1))  # (N, C, d1)
    np.testing.assert_array_equal(moved["target"], np.moveaxis(y, -1, 1))
    back = canonical_layout(moved, 1)
    np.testing.assert_array_equal(back["input"], x)
    np.testing.assert_array_equal(back["target"], y)


def _in_fresh_process(backend: str, body: str) -> dict:
    """Run ``body`` (which sets ``out``, a JSON-able dict) with Keras on ``backend`` in a fresh interpreter."""
    script = (
        "import json, numpy as np\n"
        "from lossparity.conformance.registry import adapter_for, bindings\n"
        "from lossparity.core.model import Case\n"
        f"A = adapter_for('keras[{backend}]')\n"
        "def B(i, s): return next(b for b in bindings(A.framework) if b.id == i and b.spec == s)\n"
        "def C(s, x, y, **p): return Case(s, 'hand', {'table': 'test'}, "
        "{'input': np.asarray(x, np.float64), 'target': np.asarray(y, np.float64)}, p)\n" + body + "\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": backend}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(adapter_for("keras[tensorflow]").unavailable() is not None, reason="keras is not installed")
def test_keras_channels_first_value_is_its_channels_last_value_of_the_transposed_arrays():
    # canonical (N=1, d1=2, C=3): probabilities p and one-hot y per position; the categorical
    # cross-entropy per position is -log p[target class]: -log 0.5 and -log 0.25, so the class's
    # mean is (log 2 + log 4) / 2 = 1.5 log 2, derived here
    p = np.array([[[0.5, 0.25, 0.25], [0.25, 0.25, 0.5]]])
    y = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    expected = 1.5 * math.log(2)
    out = _in_fresh_process(
        "tensorflow",
        f"""
import keras
p, y = np.array({p.tolist()!r}), np.array({y.tolist()!r})
pf, yf = np.moveaxis(p, -1, 1), np.moveaxis(y, -1, 1)   # channels first: (N, C, d1)
out = {{
    'first': float(keras.losses.CategoricalCrossentropy(axis=1)(yf, pf)),
    'last': float(keras.losses.CategoricalCrossentropy()(y, p)),
    'first_per_position': np.asarray(keras.losses.categorical_crossentropy(yf, pf, axis=1)).tolist(),
}}
b = B('keras.losses.CategoricalCrossentropy+channels_first[tensorflow]', 'categorical_cross_entropy')
o = A.call(b, C('categorical_cross_entropy', p, y), 'float64', wrt=('input',))
out['binding'] = [float(o.value), np.asarray(o.grads['input'][0]).tolist()]
""",
    )
    assert out["first"] == pytest.approx(expected, rel=1e-6) and out["last"] == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(out["first_per_position"], [[math.log(2), math.log(4)]], rtol=1e-6)
    # through the binding: the canonical case in, the canonical gradient back. Keras divides p by
    # its sum S before the log: d/dp_c of -sum_k y_k log(p_k / S) is -y_c / p_c + sum(y) / S, here
    # -y_c / p_c + 1 (each row sums to 1), and the class's mean over the 2 positions halves it
    value, grad = out["binding"]
    assert value == pytest.approx(expected, rel=1e-6)
    g = np.asarray(grad)
    assert g.shape == p.shape  # back in the canonical layout (N, d1, C)
    np.testing.assert_allclose(g, (1.0 - y / p) / 2, rtol=1e-5, atol=1e-6)


def test_explain_reads_keras_channels_first_and_torch_as_one_case():
    # channels first as both read it: (N=1, C=3, d1=2) logits, soft targets of the same shape
    b = next(b for b, _ in _pairs() if b.spec == "softmax_cross_entropy_soft" and b.id.startswith("keras.losses.cat"))
    torch_ce = next(t for t in bindings("torch") if t.id == "torch.nn.functional.cross_entropy" and t.spec == b.spec)
    assert torch_ce.conventions["class_axis"] == 1
    x = np.array([[[2.0, -1.0], [0.5, 0.0], [-1.0, 3.0]]])
    y = np.array([[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]])
    spec = SPECS[b.spec]
    sides = [_side(s, spec, {"input": x, "target": y}, {}, "float64", "eager", text=s.id) for s in (b, torch_ce)]
    for side in sides:  # the canonical case (N, d1, C): the class axis moved last, the same for both
        np.testing.assert_array_equal(side.case.arrays["input"], np.moveaxis(x, 1, -1))
        np.testing.assert_array_equal(side.case.arrays["target"], np.moveaxis(y, 1, -1))
        assert side.axis == 1


def test_explain_refuses_an_unbatched_input_to_a_channels_first_binding_in_one_line():
    b = next(b for b, _ in _pairs() if b.spec == "softmax_cross_entropy_soft")
    with pytest.raises(ExplainError) as info:
        _side(
            b,
            SPECS[b.spec],
            {"input": np.array([0.2, 0.3, 0.5]), "target": np.array([0.0, 1.0, 0.0])},
            {},
            "float32",
            "eager",
            text=b.id,
        )
    message = str(info.value)
    assert "\n" not in message and "rank 2 or more" in message and "(3,)" in message


def test_the_tensorflow_backend_sparse_cross_entropy_reads_the_last_axis_only_as_the_convention_says():
    # Keras' TensorFlow backend raises ValueError for a class axis other than the last (convention
    # last_axis_only); of a rank-2 (N, C) input axis 1 is the last, and it computes
    from lossparity.reference.errors import OracleError

    got = {b.spec: b for b, _ in _pairs() if b.id.startswith("keras.losses.sparse_categorical_crossentropy+")}
    assert set(got) == {"softmax_cross_entropy", "sparse_categorical_cross_entropy"}
    p = np.array([[[0.5, 0.25], [0.25, 0.25], [0.25, 0.5]]])  # channels first (N=1, C=3, d1=2)
    labels = np.array([[0, 2]])
    for spec_name, b in got.items():
        assert b.conventions["last_axis_only"] == "ValueError", b.id
        spec = SPECS[spec_name]
        with pytest.raises(OracleError) as info:
            spec.oracle(
                np.moveaxis(p, 1, -1), labels, **{k: b.conventions[k] for k in ("class_axis", "last_axis_only")}
            )
        assert info.value.kind == "ValueError"
        # rank 2: the value of the plain reading, -log p[label] averaged (probabilities summing to 1)
        x2 = np.array([[0.5, 0.25, 0.25]])
        plain = spec.oracle(x2, np.array([0]), class_axis=1, last_axis_only="ValueError")
        want = (
            -math.log(0.5)
            if spec_name == "sparse_categorical_cross_entropy"
            else -math.log(math.exp(0.5) / sum(math.exp(v) for v in x2[0]))
        )
        assert plain == pytest.approx(want, rel=1e-12)
    # the other backends' channels-first sparse forms leave it plain
    for backend in ("jax", "torch", "numpy"):
        for b, _ in _pairs(backend):
            assert "last_axis_only" not in b.conventions, b.id


@pytest.mark.skipif(adapter_for("keras[tensorflow]").unavailable() is not None, reason="keras is not installed")
def test_keras_tensorflow_sparse_cross_entropy_raises_only_axis_minus_1_on_channels_first_input():
    out = _in_fresh_process(
        "tensorflow",
        """
import keras
p = np.array([[[0.5, 0.25], [0.25, 0.25], [0.25, 0.5]]])   # (N=1, C=3, d1=2)
try:
    keras.losses.sparse_categorical_crossentropy(np.array([[0, 2]]), p, axis=1)
    out = {'raised': None}
except ValueError as e:
    out = {'raised': 'ValueError', 'message': str(e)}
out['rank2'] = float(keras.losses.sparse_categorical_crossentropy(np.array([0]), p[:, :, 0], axis=1)[0])
""",
    )
    assert out["raised"] == "ValueError" and "Only axis=-1 is currently supported" in out["message"]
    assert out["rank2"] == pytest.approx(math.log(2), rel=1e-6)  # -log 0.5: axis 1 of (N, C) is the last


def _smoothed_cross_entropy(p, y, smoothing, classes):
    """Per-position -sum_c y_s log p of channels-first (N, C, d1) arrays, y smoothed as Keras
    documents it, y (1 - s) + s / classes, with ``classes`` the count the smoothing divides by."""
    ys = y * (1 - smoothing) + smoothing / classes
    return -(ys * np.log(p)).sum(axis=1)


@pytest.mark.skipif(adapter_for("keras[tensorflow]").unavailable() is not None, reason="keras is not installed")
def test_keras_smooths_channels_first_labels_over_the_last_axis_not_the_class_axis():
    # keras-team/keras#23451 (known entry keras-channels-first-label-smoothing-class-count-*): with axis=1
    # categorical_crossentropy smooths y over shape[-1] classes, the last spatial size, not shape[axis].
    # Channels first (N=1, C=3, d1=2), each column a distribution: the documented value divides the
    # smoothing by C = 3; the defect divides it by d1 = 2. The channels-last call of the transposed
    # arrays is the documented value (its shape[-1] is C).
    p = np.array([[[0.5, 0.25], [0.25, 0.25], [0.25, 0.5]]])
    y = np.array([[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]])
    s = 0.3
    documented = _smoothed_cross_entropy(p, y, s, 3)
    defect = _smoothed_cross_entropy(p, y, s, 2)
    assert np.abs(documented - defect).min() > 0.1  # the two readings are far apart
    out = _in_fresh_process(
        "tensorflow",
        f"""
import keras
p, y = np.array({p.tolist()!r}), np.array({y.tolist()!r})
out = {{
    'first': np.asarray(keras.losses.categorical_crossentropy(y, p, label_smoothing={s}, axis=1)).tolist(),
    'last': np.asarray(keras.losses.categorical_crossentropy(
        np.moveaxis(y, 1, -1), np.moveaxis(p, 1, -1), label_smoothing={s})).tolist(),
    'focal_first': np.asarray(keras.losses.categorical_focal_crossentropy(
        y, p, label_smoothing={s}, axis=1, alpha=1.0, gamma=0.0)).tolist(),
}}
""",
    )
    np.testing.assert_allclose(out["last"], documented, rtol=1e-6)
    # the defect's signature: channels first is the smoothing over d1 classes, not the documented one
    # (this fails once Keras reads the class count from the axis; then the known entry goes stale)
    np.testing.assert_allclose(out["first"], defect, rtol=1e-6)
    np.testing.assert_allclose(out["focal_first"], defect, rtol=1e-6)  # alpha 1, gamma 0: the cross-entropy


def test_a_known_entry_placed_on_a_parameter_condition_matches_only_cases_that_meet_it():
    from lossparity.conformance.known import KnownError, load_known

    # the smoothing entries (keras-team/keras#23451); others carry conditions on gamma (issue 19)
    entries = [k for k in load_known() if "label_smoothing" in k.params]
    assert entries and all("+channels_first" in k.binding and k.params == "label_smoothing > 0" for k in entries)
    k = entries[0]
    assert k.params_hold({"label_smoothing": 0.1}) and not k.params_hold({"label_smoothing": 0.0})
    assert not k.params_hold({}) and not k.params_hold({"label_smoothing": None})
    from lossparity.conformance.symptoms import Part

    binding = "keras.losses.categorical_crossentropy+channels_first[jax]"
    record = {"binding": binding, "spec": "categorical_cross_entropy", "case_id": "gen-0-66", "dtype": "float32"}
    part = Part(
        k.part if k.part.startswith("gradient:") else "value" if k.part == "value" else "gradient:input",
        "deviate",
        None,
        None,
        None,
        "float32",
    )
    if all(fnmatchcase(str(record[f]), getattr(k, g)) for f, g in (("spec", "spec"), ("dtype", "dtype"))):
        assert k.in_place({**record, "params": {"label_smoothing": 0.1}}, part, any_case=True)
        assert not k.in_place({**record, "params": {"label_smoothing": 0.0}}, part, any_case=True)
        assert not k.in_place(record, part, any_case=True)  # no parameters at all: outside
    # a malformed condition is a one-line error naming the entry
    import tempfile

    text = (
        '[[deviation]]\nid = "x"\nbinding = "keras.losses.categorical_crossentropy+channels_first[*]"\n'
        'params = "label_smoothing ~ 0"\nsymptom = "sign"\nexplanation = "e"\nlink = "https://example.org/x"\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
    with pytest.raises(KnownError) as info:
        load_known(f.name)
    assert "\n" not in str(info.value) and "'x'" in str(info.value) and "params" in str(info.value)
    with open(f.name, "w") as g:
        g.write(text.replace("label_smoothing ~ 0", "gamma > 0"))  # not a parameter of the spec
    with pytest.raises(KnownError, match="not a parameter"):
        load_known(f.name)
    os.unlink(f.name)


def test_a_channels_last_call_against_the_tensorflow_channels_first_one_is_explained_by_last_axis_only():
    # The default run /tmp/full11 left 16 divergences unexplained on edge-spatial: Keras' channels-last
    # SparseCategoricalCrossentropy gives values, the TensorFlow backend's channels-first function raises
    # (last_axis_only), and switching last_axis_only alone in A's layout (class axis last) raised nothing.
    # The layout (class_axis, credited with nothing) now travels with every switch.
    from lossparity.conformance.attribution import attribute, knobs

    spec = SPECS["softmax_cross_entropy"]
    by_id = {b.id: b for b in bindings("keras[tensorflow]") if b.spec == spec.name}
    a = by_id["keras.losses.SparseCategoricalCrossentropy[tensorflow]"]
    b = by_id["keras.losses.sparse_categorical_crossentropy+channels_first[tensorflow]"]
    case = next(c for c in spec.edges if c.origin.get("row") == "spatial")
    assert np.ndim(case.arrays["input"]) == 3  # (N, d1, C): channels-first it is (N, C, d1), rank 3
    at = attribute(
        knobs(spec, a, case.params, (), dtype="float32"),
        knobs(spec, b, case.params, (), dtype="float32"),
        SPECS,
        lambda setting: case,
        "float32",
        ignore=("class_axis", "time_major"),
    )
    assert at["status"] == "explained", at
    assert at["conventions"] == ["last_axis_only"]
    assert "class_axis" not in {d["name"] for d in at["differing"]}  # the layout is credited with nothing
