import functools

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
    binding documents float targets and raises the named error class, whatever the values."""

    @functools.wraps(fn)
    def checked(input, target, *args, int_targets="promote", **kw):
        given = np.asarray(target)
        if int_targets != "promote" and given.dtype.kind in "iu":
            raise OracleError(int_targets, f"the target is an integer array ({given.dtype}), a float one is due")
        return fn(input, target, *args, **kw)

    return checked
