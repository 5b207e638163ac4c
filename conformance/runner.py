"""One case through one binding: the oracle's expectation, the real call, the verdict, the record.

Data flows one way: case -> (oracle, binding) -> outcome -> verdict -> record.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from lossparity.conformance.compare import compare
from lossparity.conformance.known import match
from lossparity.conformance.model import ARRAY_PARAMS, Binding, Case, Spec
from lossparity.conformance.tolerances import tolerance
from lossparity.reference.errors import OracleError
from lossparity.reference.trace import NO_TRACE
from lossparity.reports.records import encode_array, encode_value

def oracle_kwargs(spec: Spec, params: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
                  conventions: Mapping[str, Any]) -> dict:
    """Keyword arguments of the spec's oracle: set parameters (array ones rounded) and conventions."""
    kw = {}
    for name, value in params.items():
        if value is None:
            continue
        kw[name] = arrays[name] if name in ARRAY_PARAMS else value
    kw.update({n: v for n, v in conventions.items() if n in spec.conventions})
    return kw


def expect(spec: Spec, case: Case, params: Mapping[str, Any], conventions: Mapping[str, Any],
           dtype: str, trace=NO_TRACE) -> np.ndarray:
    """The oracle's value for the case under these parameters and conventions (may raise OracleError)."""
    arrays = case.in_dtype(dtype)
    positional = [arrays["input"]] + ([arrays["target"]] if "target" in arrays else [])
    kw = oracle_kwargs(spec, params, arrays, conventions)
    return np.asarray(spec.oracle(*positional, **kw, dtype=np.dtype(dtype), trace=trace), np.float64)


def scalar_params(params: Mapping[str, Any]) -> dict:
    return {k: encode_value(v) for k, v in params.items() if not isinstance(v, np.ndarray)}


def evaluate(adapter, binding: Binding, spec: Spec, case: Case, dtype: str,
             *, mode: str = "eager", device: str = "cpu", known=()) -> dict | None:
    """Run one case through one binding; None when the binding cannot take the case."""
    started = begin(binding, spec, case, dtype, mode=mode, device=device)
    if started is None:
        return None
    record, expected, tol = started
    outcome = adapter.call(binding, case, dtype)
    if outcome.error_type is None:
        record["actual"] = {"value": encode_array(outcome.value), "dtype": outcome.dtype}
    else:
        record["actual"] = {"error": outcome.error_type, "message": outcome.error_message,
                            "classes": list(outcome.error_mro)}
    record["seconds"]["call"] = outcome.seconds
    record["verdict"], record["errors"] = verdict(expected, record["expected"], outcome, tol, dtype)
    return finish(record, adapter, binding, case, known)


def begin(binding: Binding, spec: Spec, case: Case, dtype: str, *, mode: str = "eager",
          device: str = "cpu") -> tuple[dict, np.ndarray | None, Any] | None:
    """The record of a case before the framework is called: case, parameters, the oracle's
    expectation (value, or the error it documents); None when the binding cannot take the case."""
    params = binding.effective_params(spec, case.params)
    if params is None or (case.dtypes and dtype not in case.dtypes) or dtype not in binding.dtypes:
        return None
    tol = tolerance(spec.name, dtype)
    record: dict[str, Any] = {
        "kind": "result", "spec": spec.name, "binding": binding.id, "framework": binding.framework,
        "dtype": dtype, "device": device, "mode": mode, "case_id": case.id, "origin": dict(case.origin),
        "params": scalar_params(params),
        "inputs": {k: encode_array(v) for k, v in case.in_dtype(dtype).items()},
        "tolerance": {"rtol": tol.rtol, "atol": tol.atol},
        "expected": None, "actual": None, "errors": None, "gradients": None,
        "known": None, "reproducer": None,
    }
    start = time.perf_counter()
    try:
        expected = expect(spec, case, params, binding.conventions, dtype)
        record["expected"] = {"value": encode_array(expected)}
    except OracleError as exc:
        expected = None
        record["expected"] = {"error": exc.kind, "message": str(exc)}
    record["seconds"] = {"oracle": time.perf_counter() - start}
    return record, expected, tol


def finish(record: dict, adapter, binding: Binding, case: Case, known=()) -> dict:
    """A finding gets its reproducer, and a registered known deviation turns it into ``known``."""
    if record["verdict"] != "conform":
        record["reproducer"] = adapter.reproducer(binding, case, record["dtype"])
        entry = match(record, list(known))
        if entry is not None:
            record["known"] = {**entry.as_dict(), "verdict": record["verdict"]}
            record["verdict"] = "known"
    return record


def lost(adapter, binding: Binding, spec: Spec, case: Case, dtype: str, verdict_: str, message: str,
         seconds: float, *, known=()) -> dict | None:
    """The record of a call that never returned: the process died (``crash``) or ran past its
    time limit (``timeout``). Everything but the outcome is as for any other case."""
    started = begin(binding, spec, case, dtype)
    if started is None:
        return None
    record = started[0]
    record["actual"] = {"error": verdict_, "message": message}
    record["seconds"]["call"] = seconds
    record["verdict"], record["errors"] = verdict_, {"summary": message}
    return finish(record, adapter, binding, case, known)


def verdict(expected, expected_rec, outcome, tol, dtype) -> tuple[str, dict | None]:
    """The verdict on an outcome, and its error figures, given the oracle's value (or error)."""
    if expected is None:
        if outcome.error_type is None:
            return "error_mismatch", {"summary": f"expected {expected_rec['error']} to be raised; "
                                                 f"a value was returned"}
        if expected_rec["error"] in outcome.error_mro:
            return "conform", None
        return "error_mismatch", {"summary": f"expected {expected_rec['error']}, "
                                             f"raised {outcome.error_type}"}
    if outcome.error_type is not None:
        return "error_mismatch", {"summary": f"expected a value; raised {outcome.error_type}: "
                                             f"{outcome.error_message}"}
    comparison = compare(outcome.value, expected, tol, dtype)
    return ("conform" if comparison.ok else "deviate"), comparison.as_dict()


def unsupported_record(binding: Binding, reason: str) -> dict:
    """The one line that stands for a binding whose framework cannot be imported."""
    return {
        "kind": "result", "spec": binding.spec, "binding": binding.id, "framework": binding.framework,
        "dtype": "-", "device": "-", "mode": "-", "case_id": "-", "origin": {"table": "none"},
        "params": {}, "inputs": {}, "tolerance": None, "expected": None,
        "actual": {"error": "unavailable", "message": reason}, "errors": None, "gradients": None,
        "known": None, "reproducer": None, "seconds": None, "verdict": "unsupported",
    }
