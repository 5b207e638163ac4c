"""What one run leaves for the next, on disk: ``$LOSSPARITY_CACHE`` (default
``$XDG_CACHE_HOME/lossparity``, else ``~/.cache/lossparity``); ``LOSSPARITY_CACHE=off`` keeps
nothing. Each kind has a folder of its own: ``jax`` (JAX's compiled executables,
``adapters/jax.py``), ``cases`` (the generated cases, ``conformance/selection.py``)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(kind: str) -> Path | None:
    """The folder of ``kind`` in lossparity's cache, or None where ``LOSSPARITY_CACHE`` is off."""
    root = os.environ.get("LOSSPARITY_CACHE", "")
    if root.lower() in ("off", "0", "none"):
        return None
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lossparity"
    return base / kind
