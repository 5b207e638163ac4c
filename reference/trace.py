"""Named stages of one oracle evaluation, so that any intermediate value can be shown."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Stage:
    name: str
    value: np.ndarray
    note: str = ""


@dataclass
class Trace:
    """Callable recorder: ``trace("clip", p, "clipped to [eps, 1-eps]")`` returns ``p``.

    Oracle functions call their ``trace`` argument at every stage; the default
    :data:`NO_TRACE` returns the value and records nothing.
    """

    stages: list[Stage] = field(default_factory=list)

    def __call__(self, name: str, value, note: str = ""):
        self.stages.append(Stage(name, np.array(value, copy=True), note))
        return value


def NO_TRACE(name: str, value, note: str = ""):  # noqa: N802 - used like a constant
    return value
