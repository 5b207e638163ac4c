"""The import contract: the command line on top, the core at the bottom.

    lossparity.cli, lossparity.literals           the command line
    lossparity.conformance                         specs, cases, runs, conclusions
    lossparity.reports | adapters | reference      read records | run frameworks | the oracle
    lossparity.core                                the vocabulary every layer shares

A module may import its own layer and the layers below it; the three middle siblings never
import each other. Every ``import`` counts, at module level or inside a function (a lazy
import is still a dependency). import-linter cannot see this layout (the four folders are
subpackages of ``lossparity`` through setuptools' ``package-dir``), hence this test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: folder -> (import name, layer rank: higher may import lower)
PACKAGES = {
    "lossparity": ("lossparity", 3),
    "conformance": ("lossparity.conformance", 2),
    "reports": ("lossparity.reports", 1),
    "adapters": ("lossparity.adapters", 1),
    "reference": ("lossparity.reference", 1),
    "lossparity/core": ("lossparity.core", 0),
}


def _layer(module: str) -> tuple[str, int] | None:
    """The package of a ``lossparity`` module name, and its rank (the longest prefix wins)."""
    best = None
    for name, rank in PACKAGES.values():
        if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best[0])):
            best = (name, rank)
    return best


def _modules():
    for folder, (name, _) in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            if folder == "lossparity" and "core" in path.relative_to(ROOT / folder).parts:
                continue
            yield path, name


def _imports(path: Path, package: str):
    parts = [*package.split("."), *path.relative_to(ROOT / _folder(package)).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = parts[: -node.level] if path.name != "__init__.py" else parts[: len(parts) - node.level + 1]
                yield ".".join([*base, node.module] if node.module else base)
            elif node.module:
                yield node.module


def _folder(package: str) -> str:
    return next(f for f, (n, _) in PACKAGES.items() if n == package)


def violations() -> list[str]:
    out = []
    for path, package in _modules():
        own_name, own_rank = _layer(package)
        for target in _imports(path, package):
            if not target.startswith("lossparity.") or target in ("lossparity",):
                continue
            layer = _layer(target)
            if layer is None:
                continue
            name, rank = layer
            if name != own_name and rank >= own_rank:
                out.append(f"{path.relative_to(ROOT)} imports {target}")
    return out


def test_layers_import_only_downwards():
    assert violations() == []


def test_the_contract_sees_a_violation(tmp_path, monkeypatch):
    """A reports module importing the conformance layer is caught (the test can fail)."""
    bad = ROOT / "reports" / "_contract_probe.py"
    bad.write_text("def f():\n    from lossparity.conformance.compare import compare\n")
    try:
        assert violations() == ["reports/_contract_probe.py imports lossparity.conformance.compare"]
    finally:
        bad.unlink()


@pytest.mark.parametrize(
    "module", ["lossparity.core.model", "lossparity.core.records", "lossparity.core.dtypes", "lossparity.core.verdicts"]
)
def test_core_imports_no_layer(module):
    import subprocess
    import sys

    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in sys.modules if m.startswith('lossparity.') and not m.startswith('lossparity.core')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
