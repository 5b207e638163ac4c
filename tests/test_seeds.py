"""The worked numbers of the seed documents, computed by the oracle and by the real frameworks.

Seed 000: nn.BCELoss() on [0.8, 0.2, 0.4] / [1, 0, 0] is 0.3190 and nn.CrossEntropyLoss() on
the same tensors 0.7971. Seed 001: tf.nn.sparse_softmax_cross_entropy_with_logits on labels
[2, 0] and logits [[2, -1, 3], [1, 0, -0.5]] is [0.32656264, 0.4643688].
"""

import numpy as np
import pytest

from lossparity.reference import crossentropy as ce

P = np.array([0.8, 0.2, 0.4])
Y = np.array([1.0, 0.0, 0.0])
LOGITS = np.array([[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]])
LABELS = np.array([2, 0])


def test_seed_000_oracle():
    assert round(float(ce.binary_cross_entropy(P, Y, log_min=-100.0)), 4) == 0.3190
    assert round(float(ce.softmax_cross_entropy(P, np.array(0))), 4) == 0.7971


def test_seed_001_oracle():
    got = ce.softmax_cross_entropy(LOGITS, LABELS, reduction="none")
    np.testing.assert_allclose(got, [0.32656264, 0.4643688], rtol=1e-7)


def test_seed_000_torch():
    torch = pytest.importorskip("torch")
    p, y = torch.tensor([0.8, 0.2, 0.4]), torch.tensor([1.0, 0.0, 0.0])
    assert round(torch.nn.BCELoss()(p, y).item(), 4) == 0.3190
    # CrossEntropyLoss reads the three numbers as one unbatched sample's logits; class 0.
    assert round(torch.nn.CrossEntropyLoss()(p, torch.tensor(0)).item(), 4) == 0.7971


def test_seed_001_tensorflow():
    tf = pytest.importorskip("tensorflow")
    got = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.constant(LABELS), logits=tf.constant(LOGITS, tf.float32)
    )
    np.testing.assert_allclose(got.numpy(), [0.32656264, 0.4643688], rtol=1e-6)
