"""The commands the docs give are commands the CLI takes: the CI workflow example cannot rot."""

import re
import shlex
from pathlib import Path

import pytest

from lossparity.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def commands(text: str) -> list[str]:
    """Every ``lossparity ...`` command line, continuations joined, shell redirections dropped."""
    text = text.replace("\\\n", " ").replace("${{ matrix.framework }}", "torch")
    text = text.replace("${{ matrix.frameworks }}", "torch,keras[torch]")
    found = []
    for line in text.splitlines():
        m = re.search(r"(?:^|run: |\s)(lossparity (?:run|list|report|merge|diff|explain)\b.*)$", line.strip())
        if m:
            found.append(re.split(r"\s*(?:\|\||>|;)", m.group(1))[0])
    return found


def test_the_workflow_example_uses_real_options():
    found = commands((ROOT / "docs/examples/github-actions.yml").read_text())
    assert [c.split()[1] for c in found] == ["run", "merge", "merge", "report", "diff"]
    assert "--baseline" in found[2]  # the gate writes the baseline it diffs against next time
    for line in found:
        build_parser().parse_args(shlex.split(line)[1:])  # raises UsageError on an unknown option


def test_the_workflow_shards_cover_every_framework_keras_on_each_backend():
    """The matrix jobs' ``--frameworks`` are valid selections that together cover every adapter,
    Keras on each of its backends included (a job installs Keras beside its framework)."""
    from lossparity.conformance.registry import adapter_modules
    from lossparity.conformance.selection import Selection

    text = (ROOT / "docs/examples/github-actions.yml").read_text()
    shards = re.findall(r'^\s+frameworks: "([^"]+)"$', text, flags=re.M)
    assert len(shards) == 3
    covered = set()
    for shard in shards:
        selection = Selection(frameworks=tuple(shard.split(","))).validate()
        covered |= {f for f in adapter_modules() if selection.takes(f)}
    assert covered == set(adapter_modules()) and {"keras[torch]", "keras[jax]", "keras[tensorflow]"} <= covered
    assert text.count("keras==") == 3


@pytest.mark.parametrize("path", ["README.md", "docs/examples/jax-0.4.30-to-0.10.2/README.md"])
def test_readme_commands_parse(path):
    found = commands((ROOT / path).read_text())
    assert found
    for line in found:
        build_parser().parse_args(shlex.split(line.strip("`"))[1:])


def test_what_a_run_needs_is_a_dependency_of_the_package_not_of_development():
    """``pip install -e ".[all]"`` then ``lossparity run -n 2``: pytest-xdist runs the workers, so
    it is a dependency of the package; the dev extra holds only what the project's tests need."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [re.split(r"[<>=\[ ]", d, maxsplit=1)[0] for d in project["dependencies"]]
    assert {"pytest", "pytest-xdist", "hypothesis", "jinja2", "orjson"} <= set(names)
    assert not any(d.startswith("pytest-xdist") for d in project["optional-dependencies"]["dev"])


def _requirement_names(requirements, extras) -> set[str]:
    """Distribution names of ``requirements``, self-references (``lossparity[torch,jax]``)
    expanded through ``extras``."""
    names = set()
    for requirement in requirements:
        name = re.split(r"[<>=\[ ;]", requirement, maxsplit=1)[0].lower()
        if name == "lossparity":
            for extra in re.search(r"\[(.*)\]", requirement).group(1).split(","):
                names |= _requirement_names(extras[extra.strip()], extras)
        else:
            names.add(name)
    return names


def test_the_all_extra_installs_every_framework_a_default_run_covers():
    """``pip install -e ".[all]"``: the package's dependencies and its ``all`` extra give every
    module a default run imports: each registered adapter's framework and the modules whose
    versions it records (optax, keras), and pytest-xdist for the workers ``-n`` starts; the
    ``dev`` extra is not needed to run."""
    import tomllib

    from lossparity.conformance.registry import adapter_modules

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    installed = _requirement_names(project["dependencies"], extras) | _requirement_names(extras["all"], extras)
    # an import name and the distributions that provide it (tensorflow-cpu: the CPU wheel)
    provides = {"tensorflow": {"tensorflow", "tensorflow-cpu"}, "jaxlib": {"jax", "jaxlib"}}
    needed = {"pytest", "pytest-xdist", "numpy", "hypothesis", "jinja2", "jsonschema", "orjson"}
    for module in adapter_modules().values():
        needed |= {module.ADAPTER.module, *module.ADAPTER.version_modules()}
    missing = [m for m in sorted(needed) if not provides.get(m, {m}) & installed]
    assert not missing, f"not installed by pip install '.[all]': {missing}"


def test_a_run_uses_every_core_unless_told_otherwise():
    """``-n`` defaults to ``auto``: one worker per core the process may use; ``-n 1`` one
    process; anything else but a count >= 1 is the one-line usage error."""
    from lossparity.cli import main
    from lossparity.conformance.options import available_cores

    parser = build_parser()
    assert parser.parse_args(["run"]).workers == available_cores() >= 1
    assert parser.parse_args(["run", "-n", "auto"]).workers == available_cores()
    assert parser.parse_args(["run", "-n", "1"]).workers == 1
    assert main(["run", "-n", "several"]) == 2
    assert main(["run", "-n", "0"]) == 2
