"""The run options, declared once: the command line and the pytest plugin read the same table."""

import dataclasses

import pytest

from lossparity.cli import build_parser
from lossparity.conformance import options
from lossparity.conformance.selection import Selection
from lossparity.core.dtypes import DTYPES

COMMAND = [
    "run",
    "--frameworks",
    "torch, jax",
    "--losses",
    "huber*",
    "--cases",
    "*inf*",
    "--dtypes",
    "float32",
    "--modes",
    "eager,jit",
    "--device",
    "cuda",
    "--tf32",
    "--examples",
    "5",
    "--seed",
    "3",
    "-n",
    "2",
    "--resume",
    "--timeout",
    "0",
    "--memory-limit",
    "2.5",
    "-v",
    "--out",
    "elsewhere",
]


def test_the_options_load_no_numpy():
    """The plugin reads the table in every pytest session, users' own included."""
    import subprocess
    import sys

    code = "import sys, lossparity.conformance.options; print('numpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_selection_options_are_selection_fields():
    fields = {f.name for f in dataclasses.fields(Selection) if not f.name.startswith("_")}
    assert {o.dest for o in options.OPTIONS if o.selection} == fields
    assert all(o.run and o.lp for o in options.OPTIONS if o.selection)


def test_a_run_without_options_is_the_default_selection():
    assert options.selection(options.of_command(build_parser().parse_args(["run"]))) == Selection()


@pytest.mark.parametrize("command", [["run"], COMMAND], ids=["defaults", "every-option"])
def test_a_command_line_reaches_the_plugin_as_the_same_run(command, pytester):
    args = build_parser().parse_args(command)
    config = pytester.parseconfig(*options.pytest_args(args))
    ours, theirs = vars(options.of_command(args)), vars(options.of_pytest(config))
    shared = [o.dest for o in options.OPTIONS if o.run and o.lp]
    assert {d: ours[d] for d in shared} == {d: theirs[d] for d in shared}
    assert options.selection(options.of_pytest(config)) == options.selection(options.of_command(args))


def test_an_empty_plugin_list_is_no_restriction_and_dtypes_default(pytester):
    config = pytester.parseconfig("--lp-frameworks", "", "--lp-dtypes", " , ")
    values = options.of_pytest(config)
    assert values.frameworks is None and values.dtypes == DTYPES
