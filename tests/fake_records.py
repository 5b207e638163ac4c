"""Fake records of a results file, shaped as the suite writes them: one home for the tests of the
report, the browser, the plots, the diff and the command line's fuzzing. (``benchmarks/report_scale.py``
builds its lines from a real run's results instead, at their real sizes.)

Each builder returns a whole record of its kind, its fields in the order the suite writes
them; keyword arguments replace fields. A result's defaults are one float32 case of
``binary_cross_entropy`` (an edge-table row, two decimals of the seed document's 0.3190) that
conforms, without ``value_verdict`` or ``gradients``: the shape of an older file's line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lossparity.core.records import encode_array

BCE = "binary_cross_entropy"


def result(
    binding: str = "torch.nn.BCELoss",
    verdict: str = "conform",
    *,
    framework: str = "torch",
    spec: str = BCE,
    case_id: str = "edge-seed-000",
    dtype: str = "float32",
    mode: str = "eager",
    device: str = "cpu",
    **fields: Any,
) -> dict:
    """A result line; ``fields`` replace (or add, as ``value_verdict``) any of its fields."""
    record = {
        "kind": "result",
        "spec": spec,
        "binding": binding,
        "framework": framework,
        "dtype": dtype,
        "device": device,
        "mode": mode,
        "case_id": case_id,
        "origin": {"table": "edges", "row": "seed-000", "why": "seed 000: BCE is 0.3190"},
        "params": {"reduction": "mean", "weight": None},
        "inputs": {
            "input": encode_array(np.array([0.8, 0.2, 0.4], np.float32).astype(np.float64)),
            "target": encode_array(np.array([1.0, 0.0, 0.0])),
        },
        "tolerance": {"rtol": 1.3e-6, "atol": 1e-5},
        "expected": {"value": encode_array(np.float64(0.31900406))},
        "actual": {"value": encode_array(np.float64(0.31900406)), "dtype": dtype},
        "errors": None,
        "gradients": None,
        "known": None,
        "reproducer": None,
        "seconds": {"oracle": 1e-4, "call": 2e-3},
        "verdict": verdict,
    }
    record.update(fields)
    return record


def shrunk(original: Mapping, case: Mapping, **fields: Any) -> dict:
    """A ``shrunk`` line (``conformance/shrink.py``): the group of ``original`` shrunk to ``case``
    (both result lines); ``fields`` replace any of its fields."""
    sizes = [int(np.prod(a["shape"])) for r in (original, case) for a in r["inputs"].values()]
    before, after = sum(sizes[: len(original["inputs"])]), sum(sizes[len(original["inputs"]) :])
    record = {
        "kind": "shrunk",
        **{k: original[k] for k in ("spec", "binding", "framework", "dtype", "device", "mode", "verdict")},
        "symptom": [{"part": "value", "verdict": "deviate", "symptom": "nonfinite nan"}],
        "known": [],
        "results": 1,
        "elements": {"before": before, "after": after},
        "steps": 7,
        "kept": 3,
        "seconds": 0.25,
        "stopped": "minimal",
        "explain": f"lossparity explain {original['binding']} --input '[0.0]' --target '[1.0]' "
        f"--dtype {original['dtype']}",
        "case": dict(case),
        "original": dict(original),
    }
    record.update(fields)
    return record


def rounded(x, dtype: str) -> np.ndarray:
    """``x`` rounded to ``dtype`` and held in float64, as the records store a case's floats."""
    import ml_dtypes

    return np.asarray(x).astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype).astype(np.float64)


def compared(expected, actual, dtype: str) -> tuple[str, dict]:
    """(verdict, errors) of ``actual`` against ``expected``, as the suite compares them."""
    from lossparity.conformance.compare import compare
    from lossparity.core.dtypes import TOLERANCES

    rounded(0.0, dtype)  # registers bfloat16 with NumPy
    c = compare(actual, expected, TOLERANCES[dtype], dtype)
    return "conform" if c.ok else "deviate", c.as_dict()


def gradient(expected, actual, *, dtype: str = "float32", verdict: str | None = None) -> dict:
    """One entry of a result's ``gradients``: arrays compared as the suite does, or error strings."""

    def side(v, **extra):
        return {"error": v} if isinstance(v, str) else {"value": encode_array(np.asarray(v, np.float64)), **extra}

    found, errors = (
        ("error_mismatch", None)
        if isinstance(expected, str) or isinstance(actual, str)
        else compared(expected, actual, dtype)
    )
    return {
        "expected": side(expected),
        "actual": side(actual, dtype=dtype),
        "verdict": verdict or found,
        "errors": errors,
    }


def side(r: Mapping) -> dict:
    """One side of a divergence: a result line's binding, framework, verdict and outcome."""
    return {"binding": r["binding"], "framework": r["framework"], "verdict": r["verdict"], "actual": r.get("actual")}


def divergence(a: Mapping, b: Mapping, *, status: str = "explained", **fields: Any) -> dict:
    """Two result lines disagreeing on one case (``a``'s spec, case, dtype, mode and device);
    ``fields`` replace any field (``comparison``, ``attribution``, ``known``, ``reason``)."""
    return {
        "kind": "divergence",
        "spec": a["spec"],
        "case_id": a["case_id"],
        "dtype": a["dtype"],
        "mode": a["mode"],
        "device": a["device"],
        "a": side(a),
        "b": side(b),
        "comparison": None,
        "status": status,
        "attribution": None,
        "known": [],
        "reason": "",
        **fields,
    }


def bce_clamp_divergence(*, attribution: Mapping, reason: str, **result_fields: Any) -> dict:
    """The seed documents' question as a divergence: Keras' binary_crossentropy (clip at 1e-7,
    15.42) against torch's BCELoss (log clamped at -100, 100.0) on p = 0, y = 1 (row
    ``edge-p-zero-y-one``); ``result_fields`` go to both sides (``spec=``)."""
    return divergence(
        result(
            "keras.losses.binary_crossentropy",
            framework="tensorflow",
            case_id="edge-p-zero-y-one",
            actual={"value": encode_array(np.array([15.424948, 0.6931472]))},
            **result_fields,
        ),
        result(
            "torch.nn.BCELoss",
            case_id="edge-p-zero-y-one",
            actual={"value": encode_array(np.array([100.0, 0.6931472]))},
            **result_fields,
        ),
        comparison={
            "ok": False,
            "mismatched": 1,
            "total": 2,
            "max_abs": 84.575,
            "max_rel": 0.84,
            "max_ulp": 1e7,
            "index": [0],
            "summary": "Mismatched elements: 1 / 2",
        },
        attribution=attribution,
        reason=reason,
    )


def agreement(spec: str, a: str, b: str, compared: Any, explained: Any = 0, unexplained: Any = 0) -> dict:
    """How many cases two bindings of ``spec`` were compared on, and disagreed on."""
    return {
        "kind": "agreement",
        "spec": spec,
        "a": a,
        "b": b,
        "compared": compared,
        "explained": explained,
        "unexplained": unexplained,
    }


def summary(
    counts: Mapping[str, int],
    *,
    divergences: Mapping[str, int] | None = None,
    stale_known=(),
    known_entries=(),
    finished: str = "2026-01-01T00:01:00",
) -> dict:
    """The last line of a finished run: result lines per verdict, divergences per status, the
    stale known deviations and what each one explained."""
    return {
        "kind": "summary",
        "counts": dict(counts),
        "divergences": dict(divergences or {}),
        "stale_known": list(stale_known),
        "known_entries": list(known_entries),
        "finished": finished,
    }


#: (binding, framework, the modes it runs in) of :func:`synthetic`'s results.
SYNTHETIC_BINDINGS = (
    ("torch.nn.CrossEntropyLoss", "torch", ("eager", "compile")),
    ("keras.losses.CategoricalCrossentropy", "tensorflow", ("eager", "function", "function_jit")),
    ("optax.losses.softmax_cross_entropy", "jax", ("eager", "jit")),
)
SYNTHETIC_DTYPES = ("float64", "float32", "float16", "bfloat16")


def synthetic(n: int, *, seed: int = 0) -> list[dict]:
    """A results file of ``n`` soft-target cross-entropy results with input and target gradients,
    over three bindings, four dtypes, their modes and two devices: every tenth deviates in its
    value, every tenth in its input gradient, every twentieth crashes."""
    rng = np.random.default_rng(seed)
    out = [
        {
            "kind": "meta",
            "schema": 1,
            "lossparity": "0.1.0",
            "versions": {"numpy": np.__version__},
            "python": "3.11",
            "platform": "Linux",
            "device": "cpu",
            "seed": seed,
            "command": "synthetic",
            "started": "2026-01-01T00:00:00",
        }
    ]
    for i in range(n):
        binding, fw, modes = SYNTHETIC_BINDINGS[i % 3]
        dtype, mode = SYNTHETIC_DTYPES[i // 3 % 4], modes[i // 12 % len(modes)]
        x = rounded(rng.normal(size=(4, 3)) * 10.0 ** rng.integers(-2, 3), dtype)
        p = np.exp(rng.normal(size=(4, 3)))
        p = rounded(p / p.sum(-1, keepdims=True), dtype)
        logp = x - x.max(-1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
        value, d_input, d_target = -(p * logp).sum(-1), np.exp(logp) * p.sum(-1, keepdims=True) - p, -logp
        actual, g_input = rounded(value, dtype), rounded(d_input, dtype)
        if i % 10 == 3:
            actual[0] = actual[0] * 1.1 + 1e-3
        if i % 10 == 6:
            g_input[0, 0] = g_input[0, 0] * 1.5 + 1e-3
        value_verdict, errors = compared(value, actual, dtype)
        gradients = {
            "input": gradient(d_input, g_input, dtype=dtype),
            "target": gradient(d_target, rounded(d_target, dtype), dtype=dtype),
        }
        verdict = max([value_verdict] + [g["verdict"] for g in gradients.values()], key=("conform", "deviate").index)
        record = result(
            binding,
            verdict,
            framework=fw,
            spec="softmax_cross_entropy",
            case_id=f"gen-{i}",
            dtype=dtype,
            mode=mode,
            device="cuda" if i % 7 == 0 else "cpu",
            params={"reduction": "none"},
            inputs={"input": encode_array(x), "target": encode_array(p)},
            expected={"value": encode_array(value)},
            actual={"value": encode_array(actual), "dtype": dtype},
            errors=errors,
            value_verdict=value_verdict,
            gradients=gradients,
        )
        if i % 20 == 9:
            record.update(
                verdict="crash",
                value_verdict="crash",
                gradients=None,
                errors=None,
                actual={"error": "RuntimeError", "message": "CUDA error", "classes": ["RuntimeError"]},
            )
        out.append(record)
    return out
