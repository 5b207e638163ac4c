"""The functions users wrap a loss argument in (``core.model.TRANSFORMS``), in float64, with their
vector-Jacobian products: what ``lossparity explain`` feeds the oracle when a side is written
``BCELoss()(torch.sigmoid(z), y)``, and how it carries the oracle's gradient with respect to the
loss's argument back to the user's ``z``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_softmax, softmax


def forward(name: str, x: np.ndarray, axis: int) -> np.ndarray:
    """The transform ``name`` of ``x`` (float64); ``axis`` is the axis a softmax normalizes over."""
    x = np.asarray(x, np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if name == "sigmoid":
            return expit(x)
        if name == "softmax":
            return softmax(x, axis=axis) if x.ndim else np.ones_like(x)
        if name == "log_softmax":
            return log_softmax(x, axis=axis) if x.ndim else np.zeros_like(x)
        if name == "log":
            return np.log(x)
        if name == "exp":
            return np.exp(x)
    raise ValueError(f"unknown transform {name!r}")


def backward(name: str, x: np.ndarray, axis: int, g: np.ndarray) -> np.ndarray:
    """d <g, transform(x)> / d x: the gradient ``g`` with respect to the transform's output,
    carried back to its input (the chain rule, one step)."""
    x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if name in ("sigmoid", "softmax"):
            return backward_at(name, forward(name, x, axis), axis, g)
        if name == "log_softmax":
            s = forward("softmax", x, axis)
            return g - s * np.sum(g, axis=axis, keepdims=True) if x.ndim else np.zeros_like(x)
        if name == "log":
            return g / x
        if name == "exp":
            return g * np.exp(x)
    raise ValueError(f"unknown transform {name!r}")


def backward_at(name: str, s: np.ndarray, axis: int, g: np.ndarray) -> np.ndarray:
    """The backward step of ``sigmoid`` or ``softmax`` written in its output ``s``, as the frameworks'
    autodiff computes it (from the forward's stored output, not from its input): g s (1 - s), and
    s (g - sum(g s)) over ``axis``. A framework's rounded ``s`` enters here too
    (``reference/rounding.py``: ``transform_error``)."""
    s, g = np.asarray(s, np.float64), np.asarray(g, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        if name == "sigmoid":
            return g * s * (1.0 - s)
        if name == "softmax":
            return s * (g - np.sum(g * s, axis=axis, keepdims=True)) if s.ndim else np.zeros_like(s)
    raise ValueError(f"no backward in the output for the transform {name!r}")


def through(steps, x: np.ndarray, dtype, axis: int) -> tuple[np.ndarray, list[tuple[str, int, np.ndarray]]]:
    """``x`` (float64 holding values of ``dtype``, a NumPy dtype) through the transforms ``steps``
    (``Case.transforms``: ``(transform, axis, *family)`` each, the first applied first), each step's
    output rounded to ``dtype`` as the framework stores each step's tensor. A step whose axis is
    None normalizes over ``axis``. Returns the result and each step's ``(transform, axis, input)``,
    which :func:`pull_back` carries a gradient back through."""
    x = np.asarray(x, np.float64).astype(dtype).astype(np.float64)
    inputs = []
    for transform, along, *_ in steps:
        along = axis if along is None else along
        inputs.append((transform, along, x))
        with np.errstate(over="ignore"):
            x = forward(transform, x, along).astype(dtype).astype(np.float64)
    return x, inputs


def pull_back(inputs: list[tuple[str, int, np.ndarray]], g: np.ndarray) -> np.ndarray:
    """The gradient ``g`` with respect to the last step's output (of :func:`through`), carried back
    to the first step's input (the chain rule, in float64)."""
    for transform, along, before in reversed(inputs):
        g = backward(transform, before, along, g)
    return g
