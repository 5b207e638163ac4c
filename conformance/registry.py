"""Which frameworks there are, and each one's bindings: the adapters joined with the families.

Adapters are discovered through the entry-point group ``lossparity.adapters``. Each entry point
names a module that defines ``ADAPTER`` (and, for a third party, ``BINDINGS`` and optionally
``EXCLUDED``), or an object holding them (``module:attribute``, an ``AdapterEntry``; see
``adapters/base.py``). Discovery imports only those modules, never the frameworks: a missing
framework is a column skipped with its reason (``ADAPTER.unavailable()``).

A framework's bindings are those the family modules declare for it (``BINDINGS`` in
``conformance/families/<family>.py``, beside the specs; a Keras binding, declared once for
``keras``, is made for each backend's column by :func:`~lossparity.conformance.bindings.on_backend`),
in the families' order, then the adapter module's own ``BINDINGS``. Nothing here imports a
framework: a worker process of one Keras backend reads its bindings without importing the others.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from types import ModuleType

from lossparity.conformance import families
from lossparity.conformance.bindings import on_backend
from lossparity.core.model import Binding

GROUP = "lossparity.adapters"

_OURS = ("torch", "tensorflow", "jax", "keras-tensorflow", "keras-jax", "keras-torch", "keras-numpy")


@cache
def _discover() -> tuple[dict[str, ModuleType], dict[str, str]]:
    found: dict[str, ModuleType] = {}
    broken: dict[str, str] = {}
    order = {name: i for i, name in enumerate(_OURS)}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: (order.get(e.name, len(order)), e.name)):
        try:
            module = importlib.import_module(ep.value) if ":" not in ep.value else ep.load()
            found[module.ADAPTER.framework] = module
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is reported, not fatal
            broken[ep.name] = f"adapter module {ep.value} failed to load: {type(exc).__name__}: {exc}"
    return found, broken


def adapter_modules() -> dict[str, ModuleType]:
    """framework name -> adapter module: ours first (torch, tensorflow, jax, keras[...]), then third parties."""
    return _discover()[0]


def broken_adapters() -> dict[str, str]:
    """entry-point name -> why its module could not be loaded."""
    return _discover()[1]


def adapter_for(framework: str):
    return adapter_modules()[framework].ADAPTER


def excluded(framework: str) -> dict[str, str]:
    """The framework's public loss APIs deliberately left unbound: binding id -> why."""
    return dict(getattr(adapter_modules()[framework], "EXCLUDED", {}))


def family(framework: str) -> str:
    """The framework a column belongs to: ``keras`` for ``keras[jax]``."""
    return framework.split("[")[0]


@cache
def _bindings(framework: str) -> tuple[Binding, ...]:
    backend = framework[len(family(framework)) + 1 : -1] if "[" in framework else None
    out: list[Binding] = []
    for module in families.modules():
        for b in module.BINDINGS:
            if b.framework == framework:
                out.append(b)
            elif backend and b.framework == family(framework):
                out += on_backend(backend, [b])
    return (*out, *getattr(adapter_modules()[framework], "BINDINGS", ()))


def bindings(framework: str) -> list[Binding]:
    """The installed framework's bindings: the families' for it, then its adapter module's own."""
    return list(_bindings(framework))


def all_bindings() -> list[Binding]:
    """Every installed framework's bindings, frameworks in :func:`adapter_modules`' order."""
    return [b for framework in adapter_modules() for b in _bindings(framework)]


def find(framework: str, binding_id: str, spec: str | None = None) -> Binding:
    """The framework's binding of that id (and spec, where one id serves two specs)."""
    return next(b for b in _bindings(framework) if b.id == binding_id and spec in (None, b.spec))
