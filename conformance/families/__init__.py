"""Spec families: every loss spec is declared in one of these modules.

Each module here declares, for one family of losses (cross-entropy, regression, margin, ...), its
``SPECS`` (a list of :class:`~lossparity.core.model.Spec`), the hypothesis strategies
and edge tables they draw cases from, ``PARAMETERS`` (what each new parameter accepts), and
``BINDINGS``: every framework's public APIs of its specs (:class:`~lossparity.core.model.Binding`,
grouped by framework, written with ``conformance/bindings.py``). Their oracles live in
``reference/<family>.py``. ``conformance/specs.py`` collects the specs, ``conformance/registry.py``
each framework's bindings.
"""

from __future__ import annotations

import importlib
import pkgutil

#: The family modules, in the order their specs are listed.
FAMILIES = (
    "crossentropy",
    "kl",
    "information",
    "regression",
    "likelihood",
    "classification",
    "margin",
    "embedding",
    "segmentation",
    "ctc",
)


def modules() -> list:
    """Every family module that exists (a family is added by creating its module and naming it above)."""
    present = {m.name for m in pkgutil.iter_modules(__path__)}
    return [importlib.import_module(f"{__name__}.{name}") for name in FAMILIES if name in present]
