"""The options of a run, declared once: ``lossparity run --NAME`` and the pytest plugin's ``--lp-NAME``.

``OPTIONS`` is read by both parsers (``cli.build_parser``'s ``run``, ``plugin.pytest_addoption``);
``pytest_args`` passes a ``lossparity run`` command line on to the plugin through it; ``of_command``
and ``of_pytest`` read either parser's values back the same way (lists split, an empty list at the
default), and ``selection`` makes the run's ``Selection`` of them.

One row per option, in the order of both helps. A row says what the two parsers share (type,
default, whether it is a ``Selection`` field) and, per parser, its help and what that parser
alone adds: the command line checks ``--device`` and its lists while parsing; the plugin leaves
those to ``Selection.validate`` and takes an empty list for no restriction.

Light on purpose: the plugin imports it in every pytest session, the command line for ``--help``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lossparity.conformance.sandbox import DEFAULT_MEMORY_GIB, DEFAULT_TIMEOUT_S
from lossparity.core.dtypes import DTYPES

if TYPE_CHECKING:
    from lossparity.conformance.selection import Selection

DEFAULT_EXAMPLES = 100
#: ``conformance/shrink.py``'s budget: calls per group of findings, share of a worker's time (here,
#: not there: this module loads no NumPy).
DEFAULT_SHRINK_STEPS = 40
SHRINK_SHARE = 0.15
DEFAULT_DTYPES = ",".join(DTYPES)
DEVICES = ("cpu", "cuda")


def split_csv(value: str | None) -> tuple[str, ...] | None:
    """'a, b,,c' -> ('a', 'b', 'c'); None or '' -> None (meaning: no restriction)."""
    return tuple(v.strip() for v in value.split(",") if v.strip()) or None if value else None


def csv_list(value: str) -> str:
    """The command line's type of a comma-separated list: at least one name (kept as given)."""
    if not any(part.strip() for part in value.split(",")):
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return value


def _limit(value: float) -> str | None:
    if not value >= 0 or value == float("inf"):
        return f"must be a number >= 0 (0: no limit), got {value}"
    return None


def _steps(value: int) -> str | None:
    return None if value >= 0 else f"must be >= 0 (0: no shrinking), got {value}"


def _workers(value: int) -> str | None:
    return None if value >= 1 else f"must be >= 1, got {value}"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or ``taskset``
    narrows; ``os.cpu_count()`` where the platform has no affinity)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


def worker_count(value: str) -> int:
    """The command line's type of ``-n``: ``auto`` (the default: every core this process may
    use, :func:`available_cores`) or a count, checked by :func:`_workers` (``-n 1``: no xdist)."""
    if str(value).strip().lower() == "auto":
        return available_cores()
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of workers or 'auto', got {value!r}") from None


_SHARED = object()  # Flag.default: the option's own default


@dataclass(frozen=True)
class Flag:
    """How one parser shows an option: its help, and what that parser alone adds."""

    help: str
    default: Any = _SHARED
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    short: str | None = None  # "-n": the command line only


@dataclass(frozen=True)
class RunOption:
    """One option of a run. ``dest`` names it everywhere: ``args.<dest>`` and ``--<dest with
    dashes>`` on the command line, ``config.getoption("lp_<dest>")`` and ``--lp-...`` in pytest."""

    dest: str
    run: Flag | None  # as an option of ``lossparity run``; None: not one
    lp: Flag | None  # as an option of the plugin; None: not one (cmd_run maps it to pytest's own)
    type: Callable | None = None  # int or float; None: a string
    csv: bool = False  # a comma-separated list: split by ``split_csv``; empty -> the default's
    default: Any = None
    store_true: bool = False  # a switch: True when given
    selection: bool = False  # a field of ``Selection``, of the same name
    check: Callable[[Any], str | None] | None = None  # ``lossparity run``'s check: what is wrong, or None

    @property
    def run_flag(self) -> str:
        return "--" + self.dest.replace("_", "-")

    @property
    def lp_flag(self) -> str:
        return "--lp-" + self.dest.replace("_", "-")

    @property
    def lp_dest(self) -> str:
        return "lp_" + self.dest

    def default_of(self, flag: Flag) -> Any:
        """The option's default in the parser that shows it as ``flag``."""
        return self.default if flag.default is _SHARED else flag.default

    def _kwargs(self, flag: Flag, type_: Callable | None) -> dict:
        kwargs: dict[str, Any] = {}
        if self.store_true:
            kwargs["action"] = "store_true"
        else:
            if type_ is not None:
                kwargs["type"] = type_
            kwargs["default"] = self.default_of(flag)
        for name in ("choices", "metavar"):
            if getattr(flag, name) is not None:
                kwargs[name] = getattr(flag, name)
        return {**kwargs, "help": flag.help}

    def add_to_command(self, parser: argparse.ArgumentParser) -> None:
        names = (self.run.short, self.run_flag) if self.run.short else (self.run_flag,)
        parser.add_argument(*names, **self._kwargs(self.run, csv_list if self.csv else self.type))

    def add_to_pytest(self, group) -> None:
        """``group``: the plugin's option group (``parser.getgroup``)."""
        group.addoption(self.lp_flag, **self._kwargs(self.lp, None if self.csv else self.type))

    def parse(self, value: Any) -> Any:
        """A parser's value as the run takes it: a list split, an empty one at the default's."""
        return split_csv(value) or split_csv(self.default) if self.csv else value


OPTIONS = (
    RunOption(
        "out",
        Flag("output folder (default: reports/latest)", default="reports/latest"),
        Flag("folder for results.jsonl and report.html"),
    ),  # no --lp-out: the plugin writes nothing
    RunOption(
        "frameworks",
        Flag("comma-separated: torch,tensorflow,jax (default: all)"),
        Flag("comma-separated frameworks (default: all)"),
        csv=True,
        selection=True,
    ),
    RunOption(
        "losses",
        Flag("comma-separated globs over spec names and binding ids"),
        Flag("comma-separated globs over spec names and binding ids"),
        csv=True,
        selection=True,
    ),
    RunOption(
        "cases",
        Flag("comma-separated globs over case ids, e.g. '*inf-logits*' (default: all)"),
        Flag("comma-separated globs over case ids (default: every case)"),
        csv=True,
    ),
    RunOption(
        "dtypes",
        Flag(f"comma-separated dtypes (default: {DEFAULT_DTYPES})"),
        Flag(f"comma-separated dtypes (default: {DEFAULT_DTYPES.replace(',', ', ')})"),
        csv=True,
        default=DEFAULT_DTYPES,
        selection=True,
    ),
    RunOption(
        "modes",
        Flag(
            "comma-separated execution modes: eager, function, function_jit (tf.function, with "
            "jit_compile, opt-in), jit (jax.jit), jit_x64 (jax.jit with jax_enable_x64; JAX's other modes "
            "run as JAX is configured by default, x64 off), compile (torch.compile, opt-in); default: all but "
            "the opt-in compile and function_jit"
        ),
        Flag(
            "comma-separated execution modes (default: each framework's modes but the opt-in ones, "
            "torch.compile's 'compile' and tf.function(jit_compile=True)'s 'function_jit')"
        ),
        csv=True,
        selection=True,
    ),
    RunOption(
        "device",
        Flag("device of every case (default cpu)", choices=DEVICES),
        Flag(f"{' or '.join(DEVICES)} (default cpu)"),
        default="cpu",
        selection=True,
    ),
    RunOption(
        "tf32",
        Flag("let CUDA float32 matrix products use TensorFloat-32 (off for correctness runs)"),
        Flag("let float32 matrix products use TensorFloat-32 on CUDA"),
        default=False,
        store_true=True,
        selection=True,
    ),
    RunOption(
        "examples",
        Flag(f"generated cases per spec (default {DEFAULT_EXAMPLES})"),
        Flag(f"generated cases per spec (default {DEFAULT_EXAMPLES})"),
        type=int,
        default=DEFAULT_EXAMPLES,
        selection=True,
    ),
    RunOption(
        "seed",
        Flag("seed of the case generators (default 0)"),
        Flag("seed of the case generators"),
        type=int,
        default=0,
        selection=True,
    ),
    RunOption(
        "workers",
        Flag("parallel worker processes (pytest-xdist); default auto: one per core this process may use", short="-n"),
        None,
        type=worker_count,
        default="auto",
        check=_workers,
    ),  # pytest-xdist's -n
    RunOption("command", None, Flag(argparse.SUPPRESS)),  # the command line the results file records
    RunOption(
        "known",
        Flag(
            "the known-deviations file findings are matched against (default: the suite's "
            "conformance/known_deviations.toml)",
            metavar="TOML",
        ),
        Flag("the known-deviations file (default: the suite's conformance/known_deviations.toml)"),
    ),
    RunOption(
        "resume",
        Flag("complete a stopped run: keep the results in --out and run only the missing cases"),
        Flag("keep the results already in --lp-out's results.jsonl and run only the missing cases"),
        default=False,
        store_true=True,
    ),
    RunOption(
        "isolation",
        None,
        Flag(
            "run framework calls in a child process that may crash (default) or in this one",
            choices=("process", "none"),
        ),
        default="process",
    ),
    RunOption(
        "timeout",
        Flag(f"seconds one case may take before it is recorded as a timeout (default {DEFAULT_TIMEOUT_S:g}; 0: none)"),
        Flag(f"seconds a case may take before it is recorded as a timeout (default {DEFAULT_TIMEOUT_S:g}; 0: none)"),
        type=float,
        default=DEFAULT_TIMEOUT_S,
        check=_limit,
    ),
    RunOption(
        "memory_limit",
        Flag(
            f"memory the process running the framework may grow to before the case is recorded as a "
            f"crash (default {DEFAULT_MEMORY_GIB:g} GiB; 0: none)",
            metavar="GIB",
        ),
        Flag(
            f"GiB the child process may grow to before the case is recorded as a crash (default {DEFAULT_MEMORY_GIB:g})"
        ),
        type=float,
        default=DEFAULT_MEMORY_GIB,
        check=_limit,
    ),
    RunOption(
        "no_shrink",
        Flag("do not shrink each group of findings to its smallest case (conformance/shrink.py)"),
        Flag("do not shrink each group of findings to its smallest case"),
        default=False,
        store_true=True,
    ),
    RunOption(
        "shrink_known",
        Flag(
            "shrink the groups of known deviations too (by default only unexplained findings are shrunk: "
            "a known entry carries its own reproducer)"
        ),
        Flag("shrink the groups of known deviations too"),
        default=False,
        store_true=True,
    ),
    RunOption(
        "shrink_steps",
        Flag(
            f"framework calls one group's shrinking may take at most (default {DEFAULT_SHRINK_STEPS}; "
            f"shrinking takes at most {SHRINK_SHARE * 100:g}%% of a worker's run time)"
        ),
        Flag(f"framework calls one group's shrinking may take at most (default {DEFAULT_SHRINK_STEPS})"),
        type=int,
        default=DEFAULT_SHRINK_STEPS,
        check=_steps,
    ),
    RunOption(
        "verbose", Flag("one line per test instead of dots", short="-v"), None, default=False, store_true=True
    ),  # pytest's -v, else -q
)


def of_command(args: argparse.Namespace) -> argparse.Namespace:
    """The values of a ``lossparity run`` command line, as the run takes them."""
    return argparse.Namespace(**{o.dest: o.parse(getattr(args, o.dest)) for o in OPTIONS if o.run})


def of_pytest(config) -> argparse.Namespace:
    """The values of the plugin's options in a pytest ``config``, as the run takes them (their
    defaults where the plugin was registered after the command line was parsed)."""
    return argparse.Namespace(
        **{o.dest: o.parse(config.getoption(o.lp_dest, o.default_of(o.lp))) for o in OPTIONS if o.lp}
    )


def selection(values: argparse.Namespace) -> Selection:
    """The (unvalidated) ``Selection`` of ``of_command`` or ``of_pytest`` values."""
    from lossparity.conformance.selection import Selection

    return Selection(**{o.dest: getattr(values, o.dest) for o in OPTIONS if o.selection})


def pytest_args(args: argparse.Namespace) -> list[str]:
    """The plugin's options that carry a ``lossparity run`` command line's values on to pytest
    (those the plugin has: ``--workers`` and ``--verbose`` are pytest's own, ``-n`` and ``-v``)."""
    argv: list[str] = []
    for o in OPTIONS:
        value = getattr(args, o.dest) if o.run and o.lp else None
        if o.store_true and value:
            argv.append(o.lp_flag)
        elif not o.store_true and value is not None:
            argv += [o.lp_flag, str(value)]
    return argv


def problem(args: argparse.Namespace) -> str | None:
    """The first ``lossparity run`` option whose value its check refuses, said in one line; or None."""
    for o in OPTIONS:
        why = o.check(getattr(args, o.dest)) if o.run and o.check else None
        if why:
            return f"{o.run_flag} {why}"
    return None
