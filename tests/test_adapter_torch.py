"""The torch adapter on hand-worked examples, and its reproducers."""

import math
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")

from lossparity.adapters.torch import ADAPTER  # noqa: E402
from lossparity.conformance.registry import bindings  # noqa: E402
from lossparity.conformance.runner import evaluate  # noqa: E402
from lossparity.conformance.specs import SPECS  # noqa: E402
from lossparity.core.model import Case  # noqa: E402


def binding(spec, id_):
    return next(b for b in bindings("torch") if b.spec == spec and b.id == id_)


def case(spec, inp, tgt, **params):
    return Case(spec, "hand", {"table": "test"}, {"input": np.array(inp), "target": np.array(tgt)}, params)


def test_bce_log_clamp_caps_the_loss_at_100():
    # p = 0 with y = 1: log 0 is clamped at -100 (documented), so the loss is exactly 100.
    out = ADAPTER.call(
        binding("binary_cross_entropy", "torch.nn.BCELoss"),
        case("binary_cross_entropy", [0.0], [1.0], reduction="none"),
        "float32",
    )
    assert out.value.tolist() == [100.0] and out.dtype == "float32"


def test_cross_entropy_moves_the_class_axis():
    # canonical (N=1, d1=2, C=3); torch receives (1, 3, 2). Loss by hand: logsumexp - x[y].
    x = np.array([[[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]]])
    c = case("softmax_cross_entropy", x, np.array([[2, 0]]), reduction="none")
    b = binding("softmax_cross_entropy", "torch.nn.functional.cross_entropy")
    expected = [math.log(math.e + 1 + math.exp(-1)) + 1, math.log(2 * math.exp(0.5) + math.e**2) - 0.5]
    np.testing.assert_allclose(ADAPTER.call(b, c, "float64").value[0], expected, rtol=1e-12)
    assert "reshape" not in ADAPTER.reproducer(b, c, "float64")


def test_invalid_label_is_the_documented_index_error():
    b = binding("softmax_cross_entropy", "torch.nn.CrossEntropyLoss")
    record = evaluate(ADAPTER, b, SPECS[b.spec], case("softmax_cross_entropy", [[1.0, 2.0]], np.array([2])), "float32")
    assert record["expected"]["error"] == "IndexError"
    assert record["actual"]["error"] == "IndexError"
    assert record["verdict"] == "conform"


def test_reproducer_prints_the_actual_value():
    b = binding("binary_cross_entropy_with_logits", "torch.nn.BCEWithLogitsLoss")
    c = case(
        "binary_cross_entropy_with_logits",
        [[1.5, -0.5]],
        [[1.0, 0.25]],
        pos_weight=np.array([3.0, 0.5]),
        reduction="none",
    )
    out = ADAPTER.call(b, c, "float32")
    script = ADAPTER.reproducer(b, c, "float32")
    assert "pos_weight=pos_weight" in script
    printed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert eval(printed.stdout) == out.value.tolist()  # noqa: S307 - a list literal we printed


def test_a_binding_missing_from_the_installed_release_is_named():
    import torch

    from lossparity.core.model import Binding

    gone = Binding("torch.nn.functional.no_such_loss", "binary_cross_entropy", "torch", "F.no_such_loss(input)")
    assert ADAPTER.missing(gone) == f"torch.nn.functional.no_such_loss does not exist in torch {torch.__version__}"
