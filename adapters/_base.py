"""What every adapter shares: running a binding's call text, reproducers, outcomes.

An adapter module (``adapters/torch.py`` and its siblings, or a third party's module
registered under the entry-point group ``lossparity.adapters``) defines ``ADAPTER``, an
instance of a :class:`FrameworkAdapter` subclass, and ``BINDINGS``, a list of
:class:`~lossparity.conformance.model.Binding`. The adapter module is the only place that
imports its framework, and it does so lazily, on the first call.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from lossparity.conformance.model import ARRAY_PARAMS, Binding, Case


@dataclass
class Outcome:
    """What a binding returned: a value (float64 copy of the result, and the result's dtype) or an error."""

    value: np.ndarray | None = None
    dtype: str | None = None
    error_type: str | None = None  # the raised class's name
    error_mro: tuple[str, ...] = ()  # its class and bases, to match documented error classes
    error_message: str | None = None
    seconds: float = 0.0


def py_literal(a: np.ndarray) -> str:
    """Python source for a nested list holding exactly ``a``'s values (repr round-trips float64)."""
    def one(x):
        if isinstance(x, list):
            return "[" + ", ".join(one(v) for v in x) + "]"
        if isinstance(x, float) and not math.isfinite(x):
            return f"float('{x}')"
        return repr(x)
    return one(np.asarray(a).tolist())


class FrameworkAdapter:
    """Base class: subclasses set ``framework``, ``module``, ``imports`` and convert arrays."""

    framework: str = ""
    module: str = ""  # the import name whose presence makes this adapter available
    imports: str = ""  # source run before every call and printed atop every reproducer

    def __init__(self):
        self._namespace: dict | None = None
        self._compiled: dict[str, Any] = {}

    # -- availability -------------------------------------------------------------------
    def unavailable(self) -> str | None:
        """None when the framework can be imported, else the reason it is a skipped column."""
        if importlib.util.find_spec(self.module) is None:
            return f"{self.module} is not installed"
        return None

    def versions(self) -> dict[str, str]:
        out = {}
        for name in self.version_modules():
            try:
                out[name] = importlib.import_module(name).__version__
            except Exception:  # noqa: BLE001 - a missing module has no version
                pass
        return out

    def version_modules(self) -> tuple[str, ...]:
        return (self.module,)

    # -- per framework ------------------------------------------------------------------
    def to_framework(self, array: np.ndarray, dtype: str):
        raise NotImplementedError

    def literal(self, name: str, array: np.ndarray, dtype: str) -> str:
        """Source that builds the same framework value as ``to_framework``."""
        raise NotImplementedError

    def to_numpy(self, result) -> tuple[np.ndarray, str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Framework settings applied once before the first call (determinism, precision)."""

    # -- shared machinery ---------------------------------------------------------------
    def namespace(self) -> dict:
        if self._namespace is None:
            ns: dict = {}
            exec(self.imports, ns)  # noqa: S102 - our own constant source
            self._namespace = ns
            self.prepare()
        return self._namespace

    def framework_arrays(self, binding: Binding, case: Case, dtype: str) -> dict[str, np.ndarray]:
        """The case's arrays in the layout the framework reads (class axis moved if needed)."""
        arrays = case.in_dtype(dtype)
        if binding.conventions.get("class_axis", -1) == 1 and arrays["input"].ndim >= 2:
            soft = "target" in arrays and arrays["target"].shape == arrays["input"].shape
            for name in ("input", "target") if soft else ("input",):
                arrays[name] = np.moveaxis(arrays[name], -1, 1)
        return arrays

    def source(self, binding: Binding, case: Case) -> str:
        """The call expression with the case's keyword arguments filled in."""
        parts = []
        for key, value in binding.kwargs(case.params).items():
            spec_name = next((p for p, k in binding.params.items() if k == key), key)
            parts.append(f"{key}={spec_name}" if spec_name in ARRAY_PARAMS else f"{key}={value!r}")
        text = binding.call.format(kw="".join(", " + p for p in parts))
        return text.replace("(, ", "(")

    def used_arrays(self, binding: Binding, case: Case, arrays: Mapping[str, np.ndarray]) -> list[str]:
        names = ["input", "target"]
        names += [p for p in ARRAY_PARAMS if p in case.params and p in binding.params]
        return [n for n in names if n in arrays]

    def call(self, binding: Binding, case: Case, dtype: str) -> Outcome:
        """Run the binding on the case for real and capture value or error."""
        ns = self.namespace()
        expr = self.source(binding, case)
        code = self._compiled.get(expr)
        if code is None:
            code = self._compiled[expr] = compile(expr, f"<{binding.id}>", "eval")
        arrays = self.framework_arrays(binding, case, dtype)
        local = {n: self.to_framework(arrays[n], dtype) for n in self.used_arrays(binding, case, arrays)}
        start = time.perf_counter()
        try:
            result = eval(code, ns, local)  # noqa: S307 - the binding's own call text
            value, out_dtype = self.to_numpy(result)
        except Exception as exc:  # noqa: BLE001 - every framework error is an outcome
            return Outcome(error_type=type(exc).__name__,
                           error_mro=tuple(c.__name__ for c in type(exc).__mro__),
                           error_message=str(exc).strip().splitlines()[0][:500] if str(exc).strip() else "",
                           seconds=time.perf_counter() - start)
        return Outcome(value=value, dtype=out_dtype, seconds=time.perf_counter() - start)

    def reproducer(self, binding: Binding, case: Case, dtype: str) -> str:
        """A copy-paste script that calls the framework directly and prints the value exactly."""
        arrays = self.framework_arrays(binding, case, dtype)
        lines = [self.imports.strip(), ""]
        lines += [self.literal(n, arrays[n], dtype) for n in self.used_arrays(binding, case, arrays)]
        lines += [f"loss = {self.source(binding, case)}", self.print_statement("loss")]
        return "\n".join(lines) + "\n"

    def print_statement(self, name: str) -> str:
        return f"print(np.asarray({name}, dtype=np.float64).tolist())"
