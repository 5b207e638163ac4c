"""Framework adapters, discovered through the entry-point group ``lossparity.adapters``.

Each entry point names a module that defines ``ADAPTER`` and ``BINDINGS``, or an object
holding the two (``module:attribute``, a ``AdapterEntry``; see ``adapters/base.py``). Discovery imports only those modules, never the frameworks: a
missing framework is a column skipped with its reason (``ADAPTER.unavailable()``).
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from types import ModuleType

GROUP = "lossparity.adapters"


_OURS = ("torch", "tensorflow", "jax", "keras-tensorflow", "keras-jax", "keras-torch")


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
    """framework name -> adapter module: ours first (torch, tensorflow, jax), then third parties."""
    return _discover()[0]


def broken_adapters() -> dict[str, str]:
    """entry-point name -> why its module could not be loaded."""
    return _discover()[1]


def excluded(framework: str) -> dict[str, str]:
    """The framework's public loss APIs deliberately left unbound: binding id -> why."""
    return dict(getattr(adapter_modules()[framework], "EXCLUDED", {}))


def all_bindings() -> list:
    return [b for m in adapter_modules().values() for b in m.BINDINGS]


def adapter_for(framework: str):
    return adapter_modules()[framework].ADAPTER


def family(framework: str) -> str:
    """The framework a column belongs to: ``keras`` for ``keras[jax]``."""
    return framework.split("[")[0]
