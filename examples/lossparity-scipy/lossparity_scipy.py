"""lossparity adapter for SciPy's information measures: the worked example of docs/adapters.md.

An adapter module defines two names: ``ADAPTER``, which turns a case's NumPy arrays into the
framework's values and back, and ``BINDINGS``, which says which of the framework's public
functions computes which lossparity spec, under which documented conventions. It imports its
framework only inside ``imports`` (run lazily, in the worker process), so that a machine
without SciPy shows a skipped column instead of an ImportError.

SciPy has no automatic differentiation: ``differentiates = False`` and only values are
checked. Its conventions, from the SciPy documentation:

- ``scipy.special.entr(x)`` is ``-x log x`` elementwise (0 at 0, -inf below 0); summing the
  last axis gives the entropy in nats of a distribution that is *not* renormalized.
- ``scipy.special.rel_entr(x, y)`` is ``x log(x / y)`` (0 at x = 0, inf at y = 0 < x).
- ``scipy.stats.entropy(pk, qk=None, base=None, axis=0)`` reduces axis 0 by default, so the
  bindings pass ``axis=-1`` (lossparity's distributions lie on the last axis). It divides ``pk`` (and ``qk``) by
  their sum first (``renormalize="before"``), returns nats or, with ``base``, that base's units,
  and KL(pk || qk) when given ``qk``. It computes in float64 whatever the input's dtype.
"""

from __future__ import annotations

import numpy as np

from lossparity.adapters.base import FrameworkAdapter, py_literal
from lossparity.core.model import Binding


class SciPyAdapter(FrameworkAdapter):
    framework = "scipy"
    module = "scipy"  # the import whose absence makes this a skipped column
    imports = "import numpy as np\nimport scipy.special\nimport scipy.stats\n"
    differentiates = False  # values only: SciPy has no gradients

    def to_framework(self, array, dtype):
        return array.astype(dtype) if array.dtype.kind == "f" else array

    def literal(self, name, array, dtype):
        """The source a reproducer uses to build the same value as ``to_framework``."""
        return (
            f"{name} = np.array({py_literal(array)}, dtype=np.{array.dtype.name if array.dtype.kind != 'f' else dtype})"
        )

    def to_numpy(self, result):
        result = np.asarray(result)
        return result.astype(np.float64), result.dtype.name

    def public_losses(self):
        """The SciPy functions this adapter covers, for lossparity's coverage test."""
        return ["scipy.special.entr", "scipy.special.rel_entr", "scipy.stats.entropy"]


ADAPTER = SciPyAdapter()

#: Spec parameters map onto SciPy's keywords; ``base`` "e" is SciPy's default ``None``.
_BASE = {"params": {"base": "base"}, "values": {"base": {"e": None}}}

BINDINGS = [
    Binding(
        "scipy.special.entr", "entropy", "scipy", "scipy.special.entr(input).sum(-1)", dtypes=("float64", "float32")
    ),
    Binding(
        "scipy.special.rel_entr",
        "kl_divergence",
        "scipy",
        "scipy.special.rel_entr(target, input).sum(-1)",
        dtypes=("float64", "float32"),
    ),
    Binding(
        "scipy.stats.entropy",
        "entropy",
        "scipy",
        "scipy.stats.entropy(input, axis=-1{kw})",
        conventions={"renormalize": "before"},
        dtypes=("float64",),
        **_BASE,
    ),
    Binding(
        "scipy.stats.entropy",
        "kl_divergence",
        "scipy",
        "scipy.stats.entropy(target, input, axis=-1{kw})",
        conventions={"renormalize": "before"},
        dtypes=("float64",),
        **_BASE,
    ),
]
