"""The worked example of docs/adapters.md, installed the way a user installs a third party's
adapter (``pip install`` of its own distribution, found through the entry-point group
``lossparity.adapters``), listed and run without editing lossparity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lossparity.core.records import read_records

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lossparity-scipy"

pytest.importorskip("scipy")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """examples/lossparity-scipy pip-installed into a directory of its own (no network: no
    dependencies, no build isolation), and the environment that puts it on the path."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return {**os.environ, "PYTHONPATH": str(target)}


def _lossparity(env, *args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "lossparity.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_installed_adapter_is_listed(site):
    proc = _lossparity(site, "list", "--json")
    assert proc.returncode == 0, proc.stderr
    table = json.loads(proc.stdout)
    assert table["frameworks"]["scipy"]["available"] is True
    entropy = next(s for s in table["specs"] if s["spec"] == "entropy")
    assert [b["id"] for b in entropy["bindings"]["scipy"]] == ["scipy.special.entr", "scipy.stats.entropy"]


def test_installed_adapter_runs_and_conforms(site, tmp_path):
    proc = _lossparity(site, "run", "--frameworks", "scipy", "--examples", "8", "--out", str(tmp_path))
    records = read_records(tmp_path / "results.jsonl")
    results = [r for r in records if r.get("kind") == "result"]
    assert {r["binding"] for r in results} == {"scipy.special.entr", "scipy.special.rel_entr", "scipy.stats.entropy"}
    assert records[0]["versions"]["scipy"]  # the meta line names the third party's version too
    findings = [
        (r["binding"], r["case_id"], r["dtype"], r["verdict"])
        for r in results
        if r["verdict"] not in ("conform", "known")
    ]
    assert not findings, findings
    assert all(r["gradients"] is None for r in results)  # values only: the adapter does not differentiate
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
