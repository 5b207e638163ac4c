"""What every adapter shares: running a binding's call text, reproducers, outcomes.

An adapter module (``adapters/torch.py`` and its siblings, or a third party's module
registered under the entry-point group ``lossparity.adapters``) defines ``ADAPTER``, an
instance of a :class:`FrameworkAdapter` subclass, and ``BINDINGS``, a list of
:class:`~lossparity.conformance.model.Binding`. The adapter module is the only place that
imports its framework, and it does so lazily: when a run first checks its bindings exist.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from lossparity.conformance.model import ARRAY_PARAMS, Binding, Case, canonical_layout, framework_layout


@dataclass
class Outcome:
    """What a binding returned: a value (float64 copy of the result, and the result's dtype) or an error."""

    value: np.ndarray | None = None
    dtype: str | None = None
    error_type: str | None = None  # the raised class's name
    error_mro: tuple[str, ...] = ()  # its class and bases, to match documented error classes
    error_message: str | None = None
    seconds: float = 0.0
    grad: np.ndarray | None = None  # d sum(loss) / d input, canonical layout (float64 copy)
    grad_error: str | None = None  # "ErrorClass: message" when the value came but no gradient


def py_literal(a: np.ndarray) -> str:
    """Python source for a nested list holding exactly ``a``'s values (repr round-trips float64)."""
    def one(x):
        if isinstance(x, list):
            return "[" + ", ".join(one(v) for v in x) + "]"
        if isinstance(x, float) and not math.isfinite(x):
            return f"float('{x}')"
        return repr(x)
    return one(np.asarray(a).tolist())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else ""


class FrameworkAdapter:
    """Base class: subclasses set ``framework``, ``module``, ``imports`` and convert arrays."""

    framework: str = ""
    module: str = ""  # the import name whose presence makes this adapter available
    imports: str = ""  # source run before every call and printed atop every reproducer
    modes: tuple[str, ...] = ("eager",)  # the execution modes a binding can be run in

    def __init__(self):
        self._namespace: dict | None = None
        self._compiled: dict[str, Any] = {}

    # -- availability -------------------------------------------------------------------
    def unavailable(self) -> str | None:
        """None when the framework can be imported, else the reason it is a skipped column."""
        if importlib.util.find_spec(self.module) is None:
            return f"{self.module} is not installed"
        return None

    def missing(self, binding: Binding) -> str | None:
        """None when the installed framework has the binding's callable, else why not.

        A binding id is the dotted path users call (``optax.losses.safe_softmax_cross_entropy``);
        an older release that lacks it makes the binding a skipped cell, not a failure per case.
        """
        head, *rest = binding.id.split(".")
        obj = self.namespace().get(head)
        if obj is None:
            return None  # not a path from the adapter's imports: nothing to check
        path = head
        for part in rest:
            path += "." + part
            try:
                obj = getattr(obj, part)
            except AttributeError:
                try:
                    obj = importlib.import_module(path)
                except ImportError:
                    root = self.namespace()[head]
                    name = getattr(root, "__name__", head).split(".")[0]
                    version = getattr(root, "__version__", "")
                    return f"{path} does not exist in {name} {version}".rstrip()
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

    def value_and_grad(self, fn, x):
        """``fn(x)`` and the gradient of the sum of its elements with respect to ``x``."""
        raise NotImplementedError

    def grad_lines(self, source: str) -> list[str]:
        """Reproducer lines that compute ``loss = source``, print it, then print d sum(loss)/d input."""
        raise NotImplementedError

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
        return framework_layout(case.in_dtype(dtype), binding.conventions.get("class_axis", -1))

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

    def call(self, binding: Binding, case: Case, dtype: str, *, grad: bool = False) -> Outcome:
        """Run the binding on the case for real and capture value or error (and, with ``grad``,
        the gradient of the summed loss with respect to the input)."""
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
                           error_message=_first_line(exc), seconds=time.perf_counter() - start)
        outcome = Outcome(value=value, dtype=out_dtype, seconds=time.perf_counter() - start)
        if grad:
            try:
                def loss(x):  # the same call, as a function of the input alone
                    return eval(code, ns, {**local, "input": x})  # noqa: S307

                g = self.to_numpy(self.value_and_grad(loss, local["input"])[1])[0]
                outcome.grad = canonical_layout({"input": g}, binding.conventions.get("class_axis", -1))["input"]
            except Exception as exc:  # noqa: BLE001 - a framework that cannot differentiate says so
                outcome.grad_error = f"{type(exc).__name__}: {_first_line(exc)}"
        return outcome

    def reproducer(self, binding: Binding, case: Case, dtype: str, *, grad: bool = False) -> str:
        """A copy-paste script that calls the framework directly and prints the value exactly
        (and, with ``grad``, the gradient of the summed loss with respect to the input)."""
        arrays = self.framework_arrays(binding, case, dtype)
        lines = [self.imports.strip(), ""]
        lines += [self.literal(n, arrays[n], dtype) for n in self.used_arrays(binding, case, arrays)]
        source = self.source(binding, case)
        lines += self.grad_lines(source) if grad else [f"loss = {source}", self.print_statement("loss")]
        return "\n".join(lines) + "\n"

    def print_statement(self, name: str) -> str:
        return f"print(np.asarray({name}, dtype=np.float64).tolist())"
