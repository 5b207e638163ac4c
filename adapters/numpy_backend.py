"""NumPy as a Keras backend's base: the arrays, literals and outputs of ``keras[numpy]``.

Not a framework column of its own (NumPy has no losses to bind): ``adapters/keras.py`` builds
Keras' NumPy backend on it, as it builds Keras on TensorFlow, JAX and PyTorch on their adapters.
What Keras' NumPy backend takes and returns (``keras/src/backend/numpy/``, Keras 3):

- arrays are ``numpy.ndarray`` (``core.is_tensor``: ``np.ndarray`` or ``np.generic``);
  ``bfloat16`` is ``ml_dtypes.bfloat16``, the dtype Keras' ``standardize_dtype`` names so;
  ``convert_to_tensor`` keeps a NumPy array's own dtype, and the ops promote with Keras' own
  ``result_type`` (``keras/src/backend/common/dtypes.py``), not NumPy's.
- a float64 array is held as float32: ``convert_to_tensor`` gives an array of ``dtype=None``
  Keras' ``result_type``, which on every backend but TensorFlow maps float64 to float32
  ("Force to be 32-bit dtype when encountering 64-bit dtype. This is to be aligned with JAX's
  default behavior.", ``BIT64_TO_BIT32_DTYPE`` in ``keras/src/backend/common/dtypes.py``). So a
  float64 case computes from float32-rounded inputs, in float32, and returns float32
  (``held_dtype``, as JAX's default configuration does).
- integer class labels are ``int64``, NumPy's default integer on Linux.
- there is no compiler: every op runs eagerly in NumPy, so ``eager`` is the only mode.
- there is no automatic differentiation (no ``GradientTape``, ``grad`` or ``vjp`` in the
  backend; Keras documents it as inference-only): values only (``differentiates``), and a
  gradient asked for is refused with :data:`NO_GRADIENTS`.
"""

from __future__ import annotations

import numpy as np

from lossparity.adapters.base import FrameworkAdapter, py_literal

#: Why a binding on Keras' NumPy backend has no gradients.
NO_GRADIENTS = (
    "Keras' NumPy backend has no automatic differentiation (keras/src/backend/numpy has no GradientTape, "
    "grad or vjp): values only"
)


class NumpyAdapter(FrameworkAdapter):
    """NumPy arrays in and out; eager values only (see the module's docstring)."""

    framework = "numpy"
    module = "numpy"
    imports = "import numpy as np\nimport ml_dtypes\n"
    #: NumPy spells log and exp; it has no sigmoid or softmax (Keras' own, keras.ops', are spelled
    #: by the Keras adapter).
    transforms = {"log": "np.log({x})", "exp": "np.exp({x})"}
    modes = ("eager",)  # no compiler: NumPy runs each op as it is called
    differentiates = False  # no autodiff: a run asks no gradient, explain --grad says why (no_gradients)
    no_gradients = NO_GRADIENTS
    #: Keras' NumPy ops return new arrays and never write into their arguments, but a NumPy
    #: array is mutable: each call gets fresh ones, as each reproducer builds its own.
    reuses_arrays = False

    def held_dtype(self, dtype, mode):
        return "float32" if dtype == "float64" else dtype

    def version_modules(self):
        return ("numpy", "ml_dtypes")

    def _dtype(self, dtype: str):
        if dtype == "bfloat16":
            import ml_dtypes

            return ml_dtypes.bfloat16
        return np.dtype(dtype)

    def to_framework(self, array, dtype):
        if array.dtype.kind == "f":
            return np.array(array, dtype=self._dtype(dtype))
        return np.array(array, dtype=np.int64)

    def literal(self, name, array, dtype):
        kind = (
            ("ml_dtypes.bfloat16" if dtype == "bfloat16" else f"np.{dtype}") if array.dtype.kind == "f" else "np.int64"
        )
        text = f"np.array({py_literal(array)}, dtype={kind})"
        if array.size == 0 and array.ndim != 1:
            text += f".reshape{tuple(array.shape)}"
        return f"{name} = {text}"

    def to_numpy(self, result):
        result = np.asarray(result)
        return np.array(result, dtype=np.float64), str(result.dtype)

    def program(self, args, wrt, mode):
        if wrt:
            raise NotImplementedError(NO_GRADIENTS)
        return super().program(args, wrt, mode)
