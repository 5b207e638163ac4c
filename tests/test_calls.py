"""Reading a loss call as the user wrote it (``conformance/calls.py``): never evaluated, matched to
a binding by the shape of its own call text."""

from __future__ import annotations

import numpy as np
import pytest

from lossparity.cli import main
from lossparity.conformance.calls import CallError, bind, is_call, parse, recovered_logits
from lossparity.conformance.explain import _by_id

ARRAYS = {"z": np.array([[30.0], [-2.0]]), "y": np.array([[0.0], [1.0]]), "w": np.array([2.0])}


def read(text: str):
    call = parse(text, ARRAYS)
    candidates = _by_id()[call.binding_id]
    for binding in candidates:
        try:
            return call, bind(call, [binding])
        except CallError:
            continue
    return call, bind(call, candidates)  # raises, naming why none matched


@pytest.mark.parametrize(
    ("text", "binding", "spec"),
    [
        ("torch.nn.BCEWithLogitsLoss()(z, y)", "torch.nn.BCEWithLogitsLoss", "binary_cross_entropy_with_logits"),
        ("nn.BCELoss()(z, y)", "torch.nn.BCELoss", "binary_cross_entropy"),
        ("F.binary_cross_entropy(z, y)", "torch.nn.functional.binary_cross_entropy", "binary_cross_entropy"),
        # Keras' (y_true, y_pred): the binding's own call text says which is which
        (
            "keras.losses.BinaryCrossentropy[jax]()(y, z)",
            "keras.losses.BinaryCrossentropy[jax]",
            "binary_cross_entropy",
        ),
        (
            "tf.keras.losses.BinaryCrossentropy(from_logits=True)(y, z)",
            "keras.losses.BinaryCrossentropy[tensorflow]",
            "binary_cross_entropy_with_logits",
        ),
        (
            "tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z)",
            "tf.nn.sigmoid_cross_entropy_with_logits",
            "binary_cross_entropy_with_logits",
        ),
        (
            "optax.sigmoid_binary_cross_entropy(z, y)",
            "optax.losses.sigmoid_binary_cross_entropy",
            "binary_cross_entropy_with_logits",
        ),
        # keywords by the framework's names for positional arguments
        (
            "keras.losses.binary_crossentropy[torch](y_true=y, y_pred=z)",
            "keras.losses.binary_crossentropy[torch]",
            None,
        ),
    ],
)
def test_a_call_is_read_into_its_binding(text, binding, spec):
    _, bound = read(text)
    assert bound.binding.id == binding and (spec is None or bound.binding.spec == spec)
    np.testing.assert_array_equal(bound.arrays["input"], ARRAYS["z"])
    np.testing.assert_array_equal(bound.arrays["target"], ARRAYS["y"])


def test_keras_without_a_backend_runs_on_the_default_one_and_says_so(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    call = parse("keras.losses.binary_crossentropy(y, z)", ARRAYS)
    assert call.binding_id == "keras.losses.binary_crossentropy[tensorflow]"
    assert "Keras' default backend, tensorflow" in call.note
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert parse("keras.losses.binary_crossentropy(y, z)", ARRAYS).binding_id.endswith("[jax]")
    assert parse("tf.keras.losses.binary_crossentropy(y, z)", ARRAYS).note is None  # tf.keras: TensorFlow's own


def test_keywords_become_spec_parameters_in_its_vocabulary():
    _, bound = read("keras.losses.BinaryCrossentropy[jax](reduction='sum_over_batch_size', label_smoothing=0.1)(y, z)")
    assert bound.params == {"reduction": "sum_over_batch_size", "label_smoothing": 0.1}  # Keras' own reduction
    _, bound = read("keras.losses.BinaryCrossentropy[jax](reduction=None)(y, z)")
    assert bound.params == {"reduction": "none"}  # Keras' None is the spec's none
    # sample_weight is a keyword of the class's call, not of its constructor
    _, bound = read("keras.losses.BinaryCrossentropy[jax](reduction='mean_with_sample_weight')(y, z, sample_weight=w)")
    assert bound.params["reduction"] == "mean_with_sample_weight"
    np.testing.assert_array_equal(bound.params["sample_weight"], [2.0])
    with pytest.raises(CallError):
        read("keras.losses.BinaryCrossentropy[jax](sample_weight=w)(y, z)")
    _, bound = read("F.smooth_l1_loss(z, y, beta=0.5, reduction='none')")
    assert bound.params == {"delta": 0.5, "reduction": "none"}
    _, bound = read("nn.BCEWithLogitsLoss(pos_weight=w)(z, y)")
    np.testing.assert_array_equal(bound.params["pos_weight"], [2.0])


def test_from_logits_picks_the_binding_and_its_default_the_other():
    assert read("keras.losses.BinaryCrossentropy[jax](from_logits=True)(y, z)")[1].binding.spec.endswith("logits")
    assert read("keras.losses.BinaryCrossentropy[jax]()(y, z)")[1].binding.spec == "binary_cross_entropy"


@pytest.mark.parametrize(
    ("text", "steps", "cast"),
    [
        ("nn.BCELoss()(torch.sigmoid(z), y)", (("sigmoid", None, ""),), None),
        ("nn.BCELoss()(torch.sigmoid(input=z), y)", (("sigmoid", None, ""),), None),
        ("nn.BCELoss()(z.sigmoid(), y)", (("sigmoid", None, ""),), None),
        ("nn.BCELoss()(torch.sigmoid(z.double()), y)", (("sigmoid", None, ""),), "float64"),
        ("nn.BCELoss()(z.to(torch.float16).sigmoid(), y)", (("sigmoid", None, ""),), "float16"),
        ("keras.losses.binary_crossentropy[jax](y, keras.ops.sigmoid(z))", (("sigmoid", None, "keras"),), None),
        ("keras.losses.binary_crossentropy[tensorflow](y, tf.sigmoid(z))", (("sigmoid", None, ""),), None),
        ("keras.losses.binary_crossentropy[jax](y, tf.cast(z, tf.bfloat16))", (), "bfloat16"),
        ("nn.NLLLoss()(F.log_softmax(z, dim=1), torch.tensor([0, 0]))", (("log_softmax", 1, ""),), None),
        (
            "nn.NLLLoss()(torch.log(F.softmax(z, 1)), torch.tensor([0, 0]))",
            (("softmax", 1, ""), ("log", None, "")),
            None,
        ),
    ],
)
def test_transforms_and_casts_around_an_argument(text, steps, cast):
    _, bound = read(text)
    assert bound.transforms.get("input", ()) == steps
    assert bound.dtype == cast


def test_literals_keep_the_kind_written():
    _, bound = read("nn.BCELoss()(z, torch.tensor([[1], [0]]))")
    assert bound.arrays["target"].dtype == np.int64
    _, bound = read("nn.BCELoss()(z, [[1.0], [0.0]])")
    assert bound.arrays["target"].dtype == np.float64
    _, bound = read("nn.CrossEntropyLoss()(z, torch.tensor([0., 0.]))")
    assert bound.arrays["target"].dtype == np.float64  # float class labels stay floats: torch refuses them


def test_keras_on_tensorflow_reads_the_logits_back_from_its_sigmoid():
    _, on_tf = read("keras.losses.binary_crossentropy[tensorflow](y, keras.ops.sigmoid(z))")
    _, on_jax = read("keras.losses.binary_crossentropy[jax](y, keras.ops.sigmoid(z))")
    assert recovered_logits(on_tf.binding, on_tf.transforms, "float32", "eager") == "binary_cross_entropy_with_logits"
    assert recovered_logits(on_jax.binding, on_jax.transforms, "float32", "eager") is None
    _, plain_tf = read("keras.losses.binary_crossentropy[tensorflow](y, tf.sigmoid(z))")
    assert recovered_logits(plain_tf.binding, plain_tf.transforms, "float32", "eager") is None  # an EagerTensor
    assert recovered_logits(plain_tf.binding, plain_tf.transforms, "float32", "function") is not None  # op type
    _, cls = read("keras.losses.BinaryCrossentropy[tensorflow]()(y, keras.ops.sigmoid(z))")
    assert recovered_logits(cls.binding, cls.transforms, "float64", "eager") is None  # cast to floatx first


def test_text_that_is_not_a_call():
    assert is_call("nn.BCELoss()(p, y)") and not is_call("torch.nn.BCELoss")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nn.BCELoss()(p, y", "'nn.BCELoss()(p, y' is not a Python call: '(' was never closed at column 13"),
        ("nn.BCELoss()(q, y)", "the call names 'q', which no --array gives (arrays given: w, y, z)"),
        ("nn.BCELoss()(z, y, **kw)", "**kwargs cannot be read; write each keyword out"),
        (
            "nn.BCELoss()(z.sigmoid(1), y)",
            "cannot read 'z.sigmoid(1)': sigmoid takes its array and, for a softmax, an axis",
        ),
        (
            "nn.BCELoss()(torch.softmax(z, 0, 1), y)",
            "cannot read 'torch.softmax(z, 0, 1)': softmax takes its array and, for a softmax, an axis",
        ),
        (
            "nn.BCELoss()(z.to(torch.complex64), y)",
            "unknown dtype 'torch.complex64'; accepted: float64, float32, float16, bfloat16, int64",
        ),
        (
            "nn.BCELoss()(torch.sigmoid(z).double(), y)",
            "a cast after sigmoid (z) cannot be run as one dtype; cast the array first",
        ),
        (
            "nn.BCELoss()(torch.tanh(z), y)",
            "cannot read the argument 'torch.tanh(z)': the functions understood around an argument are sigmoid, "
            "softmax, log_softmax, log, exp and casts (.double(), .to(dtype), tf.cast, .astype)",
        ),
        (
            "nn.BCELoss(reduce=False)(z, y)",
            "nn.BCELoss(reduce=False)(z, y): torch.nn.BCELoss takes no keyword 'reduce' in its constructor here; "
            "bound keywords: reduction, weight",
        ),
        (
            "F.binary_cross_entropy()(z, y)",
            "F.binary_cross_entropy()(z, y): torch.nn.functional.binary_cross_entropy is a function: loss(...)",
        ),
    ],
)
def test_a_call_that_cannot_be_read_is_one_line_and_exit_2(capsys, text, message):
    code = main(["explain", text, "--array", "z=[[30.0], [-2.0]]", "--array", "y=[[0.0], [1.0]]", "--array", "w=[2.0]"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == f"lossparity: error: {message}\n"
