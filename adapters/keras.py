"""Keras 3: every loss of ``keras.losses``, on each of Keras' backends that installs here.

Keras chooses its backend once per process, when ``keras`` is first imported (the
``KERAS_BACKEND`` variable), and one loss can behave differently on TensorFlow, JAX,
PyTorch and NumPy. So each backend is a framework column of its own, ``keras[tensorflow]``,
``keras[jax]``, ``keras[torch]`` and ``keras[numpy]``, whose calls run in a worker process of
their own (``FrameworkAdapter.process``), and every binding id names its backend:
``keras.losses.Huber[jax]``. Arrays, modes and gradients are the backend's: each Keras
adapter is its backend's adapter with ``keras`` imported on top. NumPy has no losses of its
own, so its adapter (``adapters/numpy_backend.py``) exists for Keras alone: eager values only,
Keras' NumPy backend having neither a compiler nor automatic differentiation.

The Keras bindings are declared once each, beside their specs (``conformance/families/``,
with ``conformance/bindings.py``'s ``keras_pair``, which also states Keras' conventions), and
made for each backend by the registry (``conformance/registry.py``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace

from lossparity.adapters.base import AdapterEntry
from lossparity.adapters.jax import JaxAdapter
from lossparity.adapters.numpy_backend import NumpyAdapter
from lossparity.adapters.tensorflow import TensorFlowAdapter
from lossparity.adapters.torch import TorchAdapter

#: Each backend and the adapter of its framework, whose arrays, modes and gradients Keras' uses.
BACKENDS = {"tensorflow": TensorFlowAdapter, "jax": JaxAdapter, "torch": TorchAdapter, "numpy": NumpyAdapter}


def _adapter_class(backend: str, base: type) -> type:

    class KerasAdapter(base):
        __doc__ = f"Keras 3 on the {backend} backend, in a process of its own."
        framework = f"keras[{backend}]"
        module = "keras"
        # The backend is fixed when keras is first imported, so it is set before, and forced: the
        # worker process holds no other backend. Keras on JAX shares JAX's own process (its compiled
        # primitives); the torch and TensorFlow process holds both, so Keras on either gets its own.
        process = base.process if base.process != "main" else f"keras-{backend}"
        imports = f"import os\nos.environ['KERAS_BACKEND'] = {backend!r}\n" + base.imports + "import keras\n"
        #: keras.ops' spellings; a transform written with the backend's own function (``tf.sigmoid``)
        #: keeps the backend's (``base.transforms``): on TensorFlow only keras.ops' output carries
        #: the logits that Keras' cross-entropies read back.
        keras_transforms = {
            "sigmoid": "keras.ops.sigmoid({x})",
            "softmax": "keras.ops.softmax({x}, axis={axis})",
            "log_softmax": "keras.ops.log_softmax({x}, axis={axis})",
            "log": "keras.ops.log({x})",
            "exp": "keras.ops.exp({x})",
        }

        def spelling(self, family):
            return self.keras_transforms if family == "keras" else base.transforms

        def unavailable(self):
            for name in ("keras", base.module):
                if importlib.util.find_spec(name) is None:
                    return f"{name} is not installed"
            return None

        def version_modules(self):
            return tuple(dict.fromkeys(("keras", base.module, *base.version_modules(self))))

        def prepare(self):
            super().prepare()
            found = self.namespace()["keras"].backend.backend()
            if found != backend:
                raise RuntimeError(
                    f"keras was imported with the {found!r} backend in the {backend} worker; "
                    f"KERAS_BACKEND must be set before keras is first imported"
                )

        def public_losses(self):
            """Every public loss class (a ``keras.losses.Loss`` subclass) and function of
            ``keras.losses``, with this backend in the id."""
            import inspect

            losses = self.namespace()["keras"].losses
            names = [
                n
                for n in dir(losses)
                if not n.startswith("_")
                and (
                    inspect.isfunction(getattr(losses, n))
                    or inspect.isclass(getattr(losses, n))
                    and issubclass(getattr(losses, n), losses.Loss)
                )
            ]
            return [f"keras.losses.{n}[{backend}]" for n in names]

        def missing(self, binding):
            return super().missing(replace(binding, id=binding.id.split("[")[0]))

    KerasAdapter.__name__ = KerasAdapter.__qualname__ = f"Keras{base.__name__}"
    return KerasAdapter


#: Public names of ``keras.losses`` deliberately left unbound, and why (on every backend).
EXCLUDED = {
    "keras.losses.Loss": "the base class every loss class derives from; it computes nothing itself",
    "keras.losses.get": "looks a loss up by name or config (serialization), it computes nothing",
    "keras.losses.serialize": "turns a loss into its config, it computes nothing",
    "keras.losses.deserialize": "builds a loss from its config, it computes nothing",
}


def _entry(backend: str) -> AdapterEntry:
    # no bindings of its own: the families declare each Keras binding once, and the registry
    # makes this backend's copy (conformance/registry.py)
    return AdapterEntry(
        _adapter_class(backend, BACKENDS[backend])(), [], {f"{k}[{backend}]": why for k, why in EXCLUDED.items()}
    )


ON_TENSORFLOW, ON_JAX, ON_TORCH, ON_NUMPY = (_entry(b) for b in BACKENDS)
