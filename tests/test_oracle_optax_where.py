"""optax's ``where`` masks and ``axis`` (tuples too) in the oracle (``reference/masked.py``), the
generated cases that carry them, and ``explain``'s checks of them.

Expected numbers are derived here with mpmath from the documented definitions: a masked entry
is left out of every sum over the class axes (and of the softmax's normalizer); a row with none
included has the loss of an empty sum; a tuple of axes is flattened in the order given.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from lossparity.cli import main
from lossparity.conformance.generate import draw_cases
from lossparity.conformance.registry import bindings
from lossparity.conformance.specs import SPECS
from lossparity.reference.errors import OracleError
from lossparity.reference.masked import class_axes, from_rows, to_rows

mp.mp.dps = 40
X = np.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
Y = np.array([[0.5, 0.2, 0.3], [0.0, 1.0, 0.0]])
W = np.array([[True, False, True], [False, False, False]])


def _lse(values):
    return mp.log(mp.fsum(mp.exp(mp.mpf(v)) for v in values))


def _oracle(spec, *args, **kw):
    return np.asarray(SPECS[spec].oracle(*args, reduction="none", **kw), np.float64)


def test_masked_soft_cross_entropy_and_its_gradients():
    # row 0 reads classes 0 and 2 only; row 1 reads none: an empty sum, 0
    lse = _lse([1.2, -0.5])
    want = -(mp.mpf(0.5) * (mp.mpf(1.2) - lse) + mp.mpf(0.3) * (mp.mpf(-0.5) - lse))
    got = _oracle("softmax_cross_entropy_soft", X, Y, where=W)
    assert got[0] == pytest.approx(float(want), rel=1e-14) and got[1] == 0.0
    grads = SPECS["softmax_cross_entropy_soft"].gradient(X, Y, where=W, reduction="none")
    p = [mp.exp(mp.mpf(v) - lse) for v in (1.2, -0.5)]
    d_x = [float(p[0] * 0.8 - mp.mpf(0.5)), 0.0, float(p[1] * 0.8 - mp.mpf(0.3))]  # p sum(y) - y, included
    np.testing.assert_allclose(grads["input"][0], d_x, rtol=1e-13, atol=1e-15)
    assert np.all(grads["input"][1] == 0.0) and np.all(grads["target"][1] == 0.0)
    # d/dy_c = -log p_c for an included class, 0 for a masked one (it does not enter the loss)
    np.testing.assert_allclose(grads["target"][0], [float(lse - mp.mpf(1.2)), 0.0, float(lse + mp.mpf(0.5))])


def test_a_mask_of_samples_is_expanded_at_the_class_axis():
    # softmax_cross_entropy's where of shape [batch_size]: a whole row in or out
    rows = _oracle("softmax_cross_entropy_soft", X, Y, where=np.array([False, True]))
    assert rows[0] == 0.0 and rows[1] == pytest.approx(float(_lse([0.9, -1.2, 1.1]) + mp.mpf(1.2)), rel=1e-14)
    # the other losses broadcast it as NumPy does: (2,) against (2, 3) cannot
    with pytest.raises(OracleError, match="Incompatible shapes"):
        SPECS["kl_div"].oracle(X, Y, where=np.array([False, True]), reduction="none", sample_axis="sum")


def test_optax_docstring_integer_labels_over_a_tuple_of_axes():
    # optax's docstring: logits arange(24) of shape (1, 2, 3, 4), labels ravel_multi_index((1, 1), (2, 3))
    # in the (3, 4) slice = [[5, 11]], axis=(2, 3): [[6.4587 0.4587]]
    logits = np.arange(24.0).reshape(1, 2, 3, 4)
    labels = np.array([[5, 11]])
    got = _oracle("softmax_cross_entropy", logits, labels, axis=(2, 3))
    want = [float(_lse(range(12)) - 5), float(_lse(range(12, 24)) - 23)]
    np.testing.assert_allclose(got, [want], rtol=1e-14)
    np.testing.assert_allclose(got, [[6.4587, 0.4587]], atol=5e-5)


def test_a_tuple_of_axes_counts_class_indices_in_its_order():
    x = np.arange(24.0).reshape(2, 3, 4) / 7
    labels = np.array([3, 11])
    # (1, 2): index 3 is element [0, 3] of each (3, 4) slice; (2, 1): the slice read transposed,
    # (4, 3), so index 3 is its [1, 0]: element [0, 1]; 11 is [3, 2]: element [2, 3]
    by_12 = _oracle("softmax_cross_entropy", x, labels, axis=(1, 2))
    by_21 = _oracle("softmax_cross_entropy", x, labels, axis=(2, 1))
    for n, (l12, l21) in enumerate([((0, 3), (0, 1)), ((2, 3), (2, 3))]):
        lse = _lse(x[n].ravel())
        assert by_12[n] == pytest.approx(float(lse - mp.mpf(x[n][l12])), rel=1e-14)
        assert by_21[n] == pytest.approx(float(lse - mp.mpf(x[n][l21])), rel=1e-14)
    # a non-last int axis: classes on axis 0 of (C, N), labels (N,)
    moved = _oracle("softmax_cross_entropy", X.T.copy(), np.array([0, 1]), axis=0)
    np.testing.assert_allclose(moved, _oracle("softmax_cross_entropy", X, np.array([0, 1])), rtol=1e-15)


def test_a_masked_label_is_gathered_all_the_same():
    # optax takes the label's logit, normalized over the included classes: lse(x0, x2) - x1
    got = _oracle("softmax_cross_entropy", X, np.array([1, 1]), where=W)
    assert got[0] == pytest.approx(float(_lse([1.2, -0.5]) + mp.mpf(0.8)), rel=1e-14)
    assert got[1] == 0.0
    g = SPECS["softmax_cross_entropy"].gradient(X, np.array([1, 1]), where=W, reduction="none")["input"]
    p0 = float(mp.exp(mp.mpf(1.2) - _lse([1.2, -0.5])))
    np.testing.assert_allclose(g[0], [p0, -1.0, 1.0 - p0], rtol=1e-13)
    assert np.all(g[1] == 0.0)


def test_empty_rows_of_each_loss():
    none = np.zeros((2, 3), bool)
    for spec, kw in [
        ("softmax_cross_entropy_soft", {}),
        ("poly_loss_cross_entropy", {}),
        ("kl_div", {"sample_axis": "sum"}),
        ("generalized_kl_div", {"sample_axis": "sum"}),
    ]:
        assert np.all(_oracle(spec, X, Y, where=none, **kw) == 0.0), spec
    assert np.all(_oracle("cosine_similarity", X, Y, where=none) == 0.0)
    assert np.all(_oracle("cosine_similarity", X, Y, where=none, cosine_form="distance") == 1.0)


def test_masked_kl_and_cosine_read_the_included_entries_only():
    log_q = np.log(np.array([[0.2, 0.5, 0.3]]))
    p = np.array([[0.6, 0.1, 0.3]])
    keep = np.array([[True, True, False]])
    want = mp.fsum(mp.mpf(pi) * (mp.log(mp.mpf(pi)) - mp.mpf(lq)) for pi, lq in zip(p[0][:2], log_q[0][:2]))
    got = _oracle("kl_div", log_q, p, where=keep, sample_axis="sum")
    assert got[0] == pytest.approx(float(want), rel=1e-14)
    a, b = np.array([[1.0, 2.0, -3.0]]), np.array([[2.0, -1.0, 5.0]])
    cos = _oracle("cosine_similarity", a, b, where=np.array([[True, False, True]]))
    want = (1 * 2 + -3 * 5) / (mp.sqrt(1 + 9) * mp.sqrt(4 + 25))
    assert cos[0] == pytest.approx(float(want), rel=1e-14)


def test_axes_are_checked_and_rows_round_trip():
    assert class_axes(-1, 3) == (2,) and class_axes((2, 1), 3) == (2, 1) and class_axes(None, 2) == (0, 1)
    with pytest.raises(ValueError, match="axis 3 is out of bounds for array of dimension 3"):
        class_axes(3, 3)
    with pytest.raises(ValueError, match="repeated axis"):
        class_axes((1, -2), 3)
    a = np.arange(24.0).reshape(2, 3, 4)
    for axes in [(0,), (1, 2), (2, 1), (2, 0)]:
        assert np.array_equal(from_rows(to_rows(a, axes), axes, a.shape), a)


def _differences(fn, x, h=1e-6):
    out = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        out[idx] = (np.sum(fn(up)) - np.sum(fn(down))) / (2 * h)
    return out


@pytest.mark.parametrize(
    "spec, conventions",
    [
        ("softmax_cross_entropy_soft", {}),
        ("softmax_cross_entropy", {"invalid_label": "wrap_negative"}),
        ("poly_loss_cross_entropy", {}),
        ("kl_div", {"sample_axis": "sum"}),
        ("generalized_kl_div", {"sample_axis": "sum"}),
        ("cosine_similarity", {}),
    ],
)
def test_generated_cases_take_masks_and_axes_and_their_gradients_hold(spec, conventions):
    s = SPECS[spec]
    cases = draw_cases(spec, s.generate, examples=60, seed_value=0)
    masked = [c for c in cases if "where" in c.params or c.params.get("axis", -1) not in (-1, 0)]
    assert len(masked) >= 10, spec
    assert any("where" in c.params and not np.all(to_rows(c.params["where"], (-1,)).any(-1)) for c in masked) or (
        spec == "cosine_similarity"
    )
    checked = 0
    for c in masked[:6]:
        kw = {k: v for k, v in c.params.items() if k != "reduction"} | conventions
        x = c.arrays["input"]
        args = [x, c.arrays["target"]]
        g = s.gradient(*args, reduction="none", **kw)["input"]
        fd = _differences(lambda v, args=args, kw=kw: s.oracle(v, *args[1:], reduction="none", **kw), x)
        if not np.all(np.isfinite(fd)):
            continue
        np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6, err_msg=f"{spec} {c.id}")
        if "where" in c.params and c.params["where"].shape == x.shape:  # masked entries do not enter the loss
            assert np.all(g[~np.broadcast_to(c.params["where"], x.shape)] == 0.0)
        checked += 1
    assert checked >= 3


def test_every_optax_binding_with_where_takes_masked_cases():
    for b in bindings("jax"):
        if "where" not in b.params or b.requires:
            continue
        s = SPECS[b.spec]
        cases = draw_cases(s.name, s.generate, examples=60, seed_value=0)
        taken = [c for c in cases if b.effective_params(s, c.params) is not None and "where" in c.params]
        assert taken, b.id
    # a binding without where (torch) is kept off them
    torch_ce = next(b for b in bindings("torch") if b.key == "softmax_cross_entropy_soft:torch.nn.CrossEntropyLoss")
    s = SPECS["softmax_cross_entropy_soft"]
    for c in draw_cases(s.name, s.generate, examples=60, seed_value=0):
        if "where" in c.params or c.params.get("axis", -1) != -1:
            assert torch_ce.effective_params(s, c.params) is None


def _explain(capsys, *argv):
    code = main(["explain", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "param, message",
    [
        (
            "where=[[true, false], [true, true]]",
            "where, a mask of the input's entries, of shape (2, 2) does not broadcast to the input's (2, 3)",
        ),
        ("where=[[1, 2, 0], [1, 1, 1]]", "where is a mask: each entry true/false (or 0/1)"),
        ("axis=2", "axis 2 is out of range for an input of shape (2, 3): axes go from -2 to 1"),
    ],
)
def test_explain_bad_mask_or_axis_is_one_line_and_exit_2(capsys, param, message):
    code, out, err = _explain(
        capsys,
        "optax.losses.softmax_cross_entropy",
        "--input",
        "[[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]]",
        "--target",
        "[[0.5, 0.2, 0.3], [0.0, 1.0, 0.0]]",
        "--param",
        param,
    )
    assert code == 2 and out == "" and err.count("\n") == 1
    assert message in err


def test_explain_takes_a_mask_and_a_tuple_axis(capsys):
    code, out, _ = _explain(
        capsys,
        "optax.losses.softmax_cross_entropy_with_integer_labels",
        "--input",
        str(np.arange(24.0).reshape(1, 2, 3, 4).tolist()),
        "--target",
        "[[5, 11]]",
        "--param",
        "axis=[2, 3]",
        "--param",
        "where=[[true, false]]",
    )
    assert code == 0, out
    assert "conform" in out
