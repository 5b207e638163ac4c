"""Spec families beyond the cross-entropy and information losses of ``conformance/specs.py``.

Each module here declares, for one family of losses (regression, margin, CTC, ...), its
``SPECS`` (a list of :class:`~lossparity.core.model.Spec`), the hypothesis strategies
and edge tables they draw cases from, and ``PARAMETERS`` (what each new parameter accepts).
Their oracles live in ``reference/<family>.py``. ``conformance/specs.py`` collects them all.
"""

from __future__ import annotations

import importlib
import pkgutil

#: The family modules, in the order their specs are listed.
FAMILIES = ("regression", "likelihood", "classification", "margin", "embedding", "segmentation", "ctc")


def modules() -> list:
    """Every family module that exists (a family is added by creating its module and naming it above)."""
    present = {m.name for m in pkgutil.iter_modules(__path__)}
    return [importlib.import_module(f"{__name__}.{name}") for name in FAMILIES if name in present]
