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


_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_SINGULAR = {"probabilities": "probability", "log-probabilities": "log-probability", "logits": "logit"}


def _count(n: int, noun: str, plural: str) -> str:
    return f"{_WORDS[n] if n < len(_WORDS) else n} {noun if n == 1 else plural}"


def reading(x, what: str, *, classes: bool, then: str = "") -> str:
    """How an oracle reads its input, in words, for the ``input`` stage of a trace.

    ``what`` is a plural noun (``"probabilities"``, ``"logits"``); ``classes`` says whether
    the last axis is a class axis; ``then`` names what is done next ("takes a softmax over
    them"). For ``[0.8, 0.2, 0.4]``: "reads the three numbers as the logits of one
    unbatched sample over three classes" or "... as three independent probabilities".
    """
    shape, size = np.shape(x), int(np.size(x))
    numbers = "the number" if size == 1 else "the " + _count(size, "number", "numbers")
    if not classes:
        one = "independent " + _SINGULAR.get(what, what)
        text = f"reads {numbers} as {_count(size, one, 'independent ' + what)}, one loss per element"
    elif not shape:
        text = f"reads {numbers} as a scalar, which has no class axis"
    else:
        if len(shape) == 1:
            whose = "one unbatched sample"
        elif len(shape) == 2:
            whose = _count(shape[0], "sample", "samples")
        else:
            whose = f"{_count(int(np.prod(shape[:-1])), 'sample', 'samples')} (batch shape {tuple(shape[:-1])})"
        text = f"reads {numbers} as the {what} of {whose} over {_count(shape[-1], 'class', 'classes')}"
    return f"{text}, and {then}" if then else text
