import functools
import inspect

import numpy as np


class OracleError(Exception):
    """The binding is documented to raise here, not to return a value.

    ``kind`` is the documented error class name (``IndexError``,
    ``InvalidArgumentError``...) that the binding's convention names.
    """

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def integer_targets(fn):
    """``fn`` (an oracle, gradient or error model of a spec with float targets) taking the
    convention ``int_targets``: a target given as an integer array (``int64`` labels of 0/1, or
    whole-number regression targets) either promotes, as NumPy, JAX and PyTorch's arithmetic do,
    and the loss is computed from its values in the float dtype (``"promote"``, plain), or the
    binding documents float targets and raises the named error class, whatever the values.

    And the convention ``int_inputs``: an input given as an integer array (``int64`` predictions
    beside float targets) promotes (plain: PyTorch's arithmetic, Keras' classes, which cast y_pred to
    their float dtype first), or the target is cast to the input's integer dtype, truncating toward 0,
    and has no slope (``"cast_target"``: Keras' loss functions cast y_true to y_pred's dtype), or the
    binding raises the named error class (optax checks for a floating dtype: TypeError)."""

    @functools.wraps(fn)
    def checked(input, target, *args, int_targets="promote", int_inputs="promote", **kw):
        given = np.asarray(target)
        if int_targets != "promote" and given.dtype.kind in "iu":
            raise OracleError(int_targets, f"the target is an integer array ({given.dtype}), a float one is due")
        kind = np.asarray(input).dtype
        integer_input = kind.kind in "iu"
        if integer_input and int_inputs not in ("promote", "cast_target"):
            raise OracleError(int_inputs, f"the input is an integer array ({kind}), a float one is due")
        cast = integer_input and int_inputs == "cast_target"
        out = fn(input, np.trunc(given) if cast else target, *args, **kw)
        if cast and isinstance(out, dict) and "target" in out:  # the cast to an integer dtype has no slope
            out = {**out, "target": np.zeros(np.shape(out["target"]))}
        return out

    return checked


def last_axis_only(fn):
    """``fn`` (an oracle, gradient or error model of a class-axis spec, ``(..., C)`` inputs) taking the
    convention ``last_axis_only``: None (plain) computes along the class axis wherever the binding reads
    it (``class_axis``); an error class name: the binding computes only along the last axis of its
    input and raises that error where its class axis is another, axis 1 of an input of rank 3 or more
    (``(N, C, d1, ...)``; of a rank-2 ``(N, C)`` input axis 1 is the last). ``class_axis`` is passed on
    only to a ``fn`` that takes it."""
    passes_axis = "class_axis" in inspect.signature(fn).parameters

    @functools.wraps(fn)
    def checked(input, target, *args, last_axis_only=None, class_axis=-1, **kw):
        rank = np.ndim(input)
        if last_axis_only is not None and class_axis == 1 and rank >= 3:
            raise OracleError(
                last_axis_only, f"the class axis is axis 1 of a rank-{rank} input; only the last axis is supported"
            )
        return fn(input, target, *args, **({"class_axis": class_axis} if passes_axis else {}), **kw)

    return checked
