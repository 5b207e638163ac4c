"""The axes a loss reduces together and the entries it reads: optax's ``axis`` and ``where``.

optax's class-axis losses (0.2.4 and later: ``softmax_cross_entropy``,
``softmax_cross_entropy_with_integer_labels``, ``poly_loss_cross_entropy``, the KL divergences,
``cosine_similarity``/``cosine_distance``) take ``axis``, an int or a tuple of axes reduced
together (the classes spread over several axes), and ``where``, a bool mask of the entries
included. One mechanism serves every spec that takes them (:func:`over_rows`): the spec's
oracle of the plain loss over the last axis, applied to each sample's row of included entries.

- ``axis`` is normalized as optax's ``canonicalize_axes`` (NumPy's ``normalize_axis_tuple``:
  ``ValueError: axis 3 is out of bounds for array of dimension 3``; ``None`` is every axis).
  The axes are moved to the end *in the order given* and flattened, as
  ``softmax_cross_entropy_with_integer_labels`` does (``logits.transpose(batch_axis +
  logit_axis).reshape(...)``, optax/losses/_classification.py at v0.2.8): a class index
  counts in that order, and a class-index target has the input's shape without those axes.
  Sums over a tuple of axes are the same in any order, so the other losses agree.
- ``where`` broadcasts to the input as NumPy does, except in ``softmax_cross_entropy`` and
  its integer-label form, where a ``where`` of another rank than the input is a mask of whole
  samples: they first call ``jnp.expand_dims(where, axis)`` (``expand``). Every sum over the class
  axes skips the masked entries (``jnp.sum(..., where=where)``) and so does the softmax
  (``jax.nn.log_softmax(x, axis, where)``: the max and the sum of exponentials run over
  included entries only), so a row's loss is the plain loss of its included entries. A row
  with none included has the loss of an empty sum: ``empty`` (0: a sum of nothing;
  ``cosine_distance``: 1 - 0). Its gradient is 0 there, and 0 at every masked entry, which
  does not enter the loss.
- a class-index target whose class is masked: optax still gathers that logit
  (``take_along_axis``) and normalizes over the included ones, ``logsumexp(x[where]) - x_l``.
"""

from __future__ import annotations

import functools
import operator

import numpy as np

from lossparity.reference.errors import OracleError
from lossparity.reference.reduction import chain, reduce, reduce_grad
from lossparity.reference.trace import NO_TRACE


def class_axes(axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (an int, a tuple of ints, or None: every axis) as non-negative axes of an array
    of ``ndim`` dimensions, in the order given; ValueError (optax's message) out of range."""
    axes = tuple(range(ndim)) if axis is None else tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        a = operator.index(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of bounds for array of dimension {ndim}")
        out.append(a % ndim)
    if len(set(out)) < len(out):
        raise ValueError(f"repeated axis in {axis}")
    return tuple(out)


def to_rows(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``a`` with ``axes`` moved to the end in their order and flattened into one: ``(*batch, C)``."""
    a = np.asarray(a)
    moved = np.moveaxis(a, axes, range(a.ndim - len(axes), a.ndim))
    return moved.reshape(moved.shape[: a.ndim - len(axes)] + (-1,))


def from_rows(g: np.ndarray, axes: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`to_rows`: ``(*batch, C)`` back to the input's ``shape``."""
    spread = g.reshape(g.shape[:-1] + tuple(shape[a] for a in axes))
    return np.moveaxis(spread, range(len(shape) - len(axes), len(shape)), axes)


def row_mask(where, shape: tuple[int, ...], axes: tuple[int, ...], expand: bool = False) -> np.ndarray:
    """optax's reading of ``where`` for an input of ``shape``, as rows ``(*batch, C)``: with
    ``expand`` (``softmax_cross_entropy`` and its integer-label form) expanded at ``axes`` when its
    rank differs, then broadcast to the input as NumPy does (an OracleError where it cannot)."""
    w = np.asarray(where).astype(bool)
    if expand and w.ndim != len(shape):
        w = np.expand_dims(w, axes)
    try:
        w = np.broadcast_to(w, shape)
    except ValueError:
        raise OracleError(
            "ValueError", f"Incompatible shapes for broadcasting: where {w.shape} and the input {shape}"
        ) from None
    return to_rows(w, axes)


def is_plain(axis, where, ndim: int) -> bool:
    """True where the loss reads the last axis, every entry included: the spec's own oracle."""
    return where is None and axis is not None and class_axes(axis, max(ndim, 1)) == (max(ndim, 1) - 1,)


def over_rows(fn, part: str, *, index: bool = False, empty=0.0, own_axis: bool = False, expand: bool = False):
    """The spec's ``fn`` (its oracle, ``part="value"``; gradient, ``"grad"``; or error model,
    ``"error"``) of the plain loss over the last axis, taking optax's ``axis`` and ``where``.

    ``index``: the target holds class indices (the input's shape without the class axes).
    ``empty``: a row with no included entry (a number, or a function of the conventions).
    ``expand``: a ``where`` of another rank is a mask of samples, expanded at the axes
    (:func:`row_mask`). ``own_axis``: ``fn`` takes an int ``axis`` itself (the cosine), which it is given unchanged
    where there is no mask. Under a mask or a tuple of axes the spec's other parameters are at
    their defaults (optax binds none), and an error model is for ``reduction="none"`` (optax's).
    """

    @functools.wraps(fn)
    def wrapped(input, target, *, axis=-1, where=None, reduction="mean", trace=NO_TRACE, **kw):
        x = np.asarray(input, np.float64)
        if own_axis and where is None and not isinstance(axis, (tuple, list)):
            return fn(input, target, axis=axis, reduction=reduction, trace=trace, **kw)
        if is_plain(axis, where, x.ndim):
            return fn(input, target, reduction=reduction, trace=trace, **kw)
        if own_axis:
            kw["axis"] = -1
        axes = class_axes(axis, x.ndim)
        xr = to_rows(x, axes)
        t = np.asarray(target)
        if index and t.shape != xr.shape[:-1]:
            raise ValueError(f"labels of shape {t.shape} for logits {x.shape} over axes {axes}: want {xr.shape[:-1]}")
        tr = t if index else to_rows(t, axes)
        if where is None:  # one call over the flattened rows
            out = fn(xr, tr, reduction="none", **kw)
            _one_per_row(out if part == "value" else out.get("value", np.zeros(xr.shape[:-1])), xr.shape[:-1])
        else:
            keep = row_mask(where, x.shape, axes, expand)
            trace("where", keep, "the included entries of each row, classes last: the loss reads those only")
            out = _by_row(fn, part, xr, tr, keep, index, empty, kw)
        batch = xr.shape[:-1]
        if part == "value":
            per = trace("per-sample loss", np.asarray(out, np.float64), "the loss of each row's included entries")
            return reduce(per, reduction=reduction, trace=trace)
        if part == "error" and reduction != "none":
            raise ValueError("the error model under axis/where is that of reduction='none' (optax's)")
        g = reduce_grad(batch, reduction=reduction) if part == "grad" else np.ones(batch)
        res = {}
        for name, v in out.items():
            if name == "value" or (index and name == "target"):
                res[name] = v
            else:
                res[name] = from_rows(chain(g, v), axes, x.shape)
        return res

    return wrapped


def _by_row(fn, part, xr, tr, keep, index, empty, kw):
    """``fn`` on each row's included entries: per-row values, or ``(*batch, C)`` arrays with 0 at
    masked entries (and rows with none included)."""
    batch, n = xr.shape[:-1], xr.shape[-1]
    values = np.zeros(batch)
    arrays: dict[str, np.ndarray] = {}
    for r in np.ndindex(batch):
        k = keep[r]
        if not k.any():
            values[r] = empty(**kw) if callable(empty) else empty
            continue
        xi, full_row = xr[r][k], False
        if index:
            label = int(tr[r])
            if -n <= label < n and not k[label % n]:  # a masked class, gathered all the same
                out, full_row = _masked_label(xr[r], k, label % n, part), True
            else:
                # the label's position among the included entries; an invalid one stays invalid
                if -n <= label < n:
                    at = int(np.sum(k[: label % n]))
                else:
                    at = label - n + int(k.sum()) if label >= n else label + n - int(k.sum())
                out = fn(xi, np.asarray(at), reduction="none", **kw)
        else:
            out = fn(xi, tr[r][k], reduction="none", **kw)
        if part == "value":
            values[r] = _one_per_row(out, ())
            continue
        for name, v in out.items():
            if name == "value":
                arrays.setdefault(name, np.zeros(batch))[r] = v
            elif not (index and name == "target"):
                full = arrays.setdefault(name, np.zeros(xr.shape))
                if full_row:
                    full[r] = v
                else:
                    full[r][k] = v
    if part == "value":
        return values
    if not arrays:  # every row empty: the parts' names from the plain loss of a whole row
        first = (0,) * len(batch)
        probe = fn(xr[first], tr[first], reduction="none", **kw)
        arrays = {n: np.zeros(batch if n == "value" else xr.shape) for n in probe if not (index and n == "target")}
    return arrays


def _one_per_row(value, batch):
    """``value`` if it holds one loss per row (a loss that reduces the class axes), else an
    OracleError: an elementwise loss (a KL divergence without ``sample_axis``) reads no axis."""
    if np.shape(value) != batch:
        raise OracleError("ValueError", "axis and where are read by a loss that sums over the class axes (optax's)")
    return value


def _masked_label(row, keep, label, part):
    """logsumexp(x[keep]) - x[label] for a label whose class is masked: its value, or whole-row
    arrays (the gradient: softmax over the included entries minus the label's one-hot)."""
    xi = row[keep]
    m = np.max(xi)
    e = np.exp(xi - m)
    if part == "value":
        return m + np.log(np.sum(e)) - row[label]
    if part == "error":  # the log-sum-exp's rounding: a few units of the result's size
        return {"value": 4.0 * (abs(m) + abs(row[label]) + 1.0), "input": np.zeros(row.shape)}
    g = np.zeros(row.shape)
    g[keep] = e / np.sum(e)
    g[label] -= 1.0
    return {"input": g}
