"""Coverage that cannot silently rot: every public loss API of each installed framework is
bound or excluded with a reason, found by introspecting the framework itself
(``FrameworkAdapter.public_losses``, run in the framework's own worker process: a Keras
backend is imported alone). A framework upgrade that adds a loss fails here until someone
binds it or says why not. Each bound API's parameters are held to the same rule one level down
in ``tests/test_parameters.py``."""

from __future__ import annotations

import pytest

from lossparity.conformance import sandbox
from lossparity.conformance.coverage import coverage, format_markdown
from lossparity.conformance.registry import adapter_for, bindings, excluded

OURS = ["torch", "tensorflow", "jax", "keras[tensorflow]", "keras[jax]", "keras[torch]", "keras[numpy]"]


@pytest.fixture(scope="module", autouse=True)
def _children():
    yield
    sandbox.shutdown()


@pytest.mark.parametrize("framework", OURS)
def test_every_public_loss_is_bound_or_excluded(framework):
    adapter = adapter_for(framework)
    if adapter.unavailable():
        pytest.skip(adapter.unavailable())
    public = set(sandbox.public_losses(framework))
    assert len(public) >= 4, public  # the introspection found the framework's losses at all
    bound, left_out = {b.id for b in bindings(framework)}, excluded(framework)
    unbound = sorted(public - bound - set(left_out))
    assert not unbound, (
        f"{framework} has public losses nobody has looked at: {unbound}; bind them "
        f"(conformance/families/, beside their spec) or add them to the adapter module's "
        f"EXCLUDED with a reason"
    )
    stale = sorted(set(left_out) - public)
    assert not stale, f"excluded APIs that {framework} no longer has: {stale}"
    assert all(len(why) > 30 for why in left_out.values()), "every exclusion says why"


def test_list_json_shows_bindings_and_exclusions():
    table = coverage()
    assert set(OURS) <= set(table["frameworks"])
    assert table["frameworks"]["torch"]["excluded"]["torch.nn.NLLLoss2d"].startswith("a deprecated alias")
    bce = next(s for s in table["specs"] if s["spec"] == "binary_cross_entropy")
    assert [b["id"] for b in bce["bindings"]["keras[jax]"]] == [
        "keras.losses.BinaryCrossentropy[jax]",
        "keras.losses.binary_crossentropy[jax]",
        "keras.losses.BinaryCrossentropy+channels_first[jax]",
        "keras.losses.binary_crossentropy+channels_first[jax]",
    ]


def test_readme_shows_the_coverage_table():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert format_markdown(coverage()) in readme, (
        "the README's coverage table is out of date: paste 'lossparity list --markdown' into it"
    )


def test_each_binding_is_declared_beside_its_spec():
    """A loss's story in one file: a family module declares the bindings of its own specs, every
    framework's, and our adapter modules declare none (third parties' still may)."""
    from lossparity.conformance import families
    from lossparity.conformance.registry import adapter_modules

    for module in families.modules():
        own = {s.name for s in module.SPECS}
        assert {b.spec for b in module.BINDINGS} <= own, module.__name__
    for framework in OURS:
        assert not getattr(adapter_modules()[framework], "BINDINGS", None), framework


def test_the_registry_imports_no_framework():
    """A Keras backend's worker reads its bindings through the registry: that must not import
    another backend (Keras fixes its backend when first imported)."""
    import subprocess
    import sys

    code = (
        "import sys; from lossparity.conformance.registry import all_bindings; all_bindings(); "
        "print(sorted(m for m in ('torch', 'tensorflow', 'jax', 'keras', 'optax') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_readme_table_reads_no_signature():
    """``lossparity list --markdown`` (the README's table) needs no framework: the parameters,
    read from the installed frameworks, come only with ``coverage(parameters=True)``."""
    table = coverage()
    assert all("parameters" not in info for info in table["frameworks"].values())
    assert all("parameters" not in b for row in table["specs"] for bs in row["bindings"].values() for b in bs)
