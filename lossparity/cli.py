"""The lossparity command: run, list, report, explain, merge, diff.

Exit codes: 0 everything conforms or is known; 1 unexplained deviations or divergences;
2 a usage or input error, reported in one line without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lossparity.conformance import options

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lossparity", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the conformance suite; write results.jsonl and report.html")
    for option in options.OPTIONS:  # the plugin's options come from the same table
        if option.run:
            option.add_to_command(run)

    lst = sub.add_parser("list", help="the coverage table: specs x bindings")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.add_argument("--markdown", action="store_true", help="the specs x frameworks table of the README")

    rep = sub.add_parser("report", help="rebuild the HTML report from a results file")
    rep.add_argument("results", help="a results.jsonl written by 'lossparity run'")
    rep.add_argument("-o", "--output", help="HTML file to write (default: report.html beside RESULTS)")
    rep.add_argument(
        "-j",
        "--jobs",
        type=options.worker_count,
        default="auto",
        help="processes that read the results file: a number, or 'auto' (the default: every core)",
    )

    dif = sub.add_parser("diff", help="regression report between two results files")
    dif.add_argument("base", metavar="BASE", help="the earlier results.jsonl")
    dif.add_argument("new", metavar="NEW", help="the later results.jsonl")
    dif.add_argument(
        "-o",
        "--output",
        metavar="HTML",
        help="also write the regression report, grouped by framework and spec with reproducers",
    )
    dif.add_argument("--json", action="store_true", help="every change as JSON")
    dif.add_argument(
        "--markdown",
        metavar="FILE",
        help="also write the short Markdown summary to FILE (a pull-request comment, $GITHUB_STEP_SUMMARY)",
    )
    dif.add_argument(
        "--fail-on",
        type=options.csv_list,
        default=None,
        help="comma-separated change classes that are regressions (exit 1); default: "
        "new_deviation,changed_error,removed_binding",
    )
    dif.add_argument(
        "--drift-ulps",
        type=float,
        default=None,
        help="value drift: growth of the error against the oracle, in ULPs of the dtype (default 4)",
    )

    mrg = sub.add_parser("merge", help="merge results files (shards, CI jobs, machines) into one")
    mrg.add_argument("results", nargs="+", metavar="RESULTS", help="results.jsonl files written by 'lossparity run'")
    mrg.add_argument("-o", "--output", required=True, help="the merged results file to write")
    mrg.add_argument(
        "--baseline",
        action="store_true",
        help="write a baseline for 'lossparity diff': verdicts, error figures, errors and the findings' "
        "reproducers, no arrays nor divergences (a default run's fits in a few MB)",
    )

    exp = sub.add_parser(
        "explain",
        help="run one or two loss calls; show where and why they differ",
        description="Run one or two loss calls and show each one's value, the oracle's stages side by "
        "side, where they part, which conventions explain the difference, and reproducers. A call is a "
        "binding id reading --input/--target/--array/--param, or the call as you wrote it, read (never "
        "evaluated) with its own arguments, keywords, transforms and casts: "
        "'torch.nn.BCEWithLogitsLoss()(z, y)' 'keras.losses.binary_crossentropy(y, keras.ops.sigmoid(z))' "
        "--array z=[30.0] --array y=[0.0]. Arrays are JSON or NumPy literals, and keep the kind written: "
        "[1, 0] is an integer array, [1., 0.] a float one.",
    )
    exp.add_argument(
        "bindings",
        nargs="+",
        metavar="CALL",
        help='one or two binding ids (torch.nn.BCELoss) or calls as written ("nn.BCELoss()(p, y)")',
    )
    exp.add_argument("--input", help="the prediction of a binding id: probabilities, logits or log-probabilities")
    exp.add_argument("--target", help="the target of a binding id: labels, class indices or probabilities")
    exp.add_argument(
        "--array",
        action="append",
        default=[],
        metavar="NAME=VALUES",
        help="an array a call names (z=[0.5, -1.0]), or a further array of a binding id (var, input2, "
        "input_lengths, ...); repeatable",
    )
    exp.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of a binding id, in the spec's vocabulary (reduction=sum, weight=[1,2,3]); repeatable",
    )
    exp.add_argument(
        "--dtype",
        default="float32",
        help="float32 (default), float64, float16 or bfloat16; or one per call: float64,float32 (a cast in a "
        "call sets its own)",
    )
    exp.add_argument("--mode", default="eager", help="execution mode (default eager); or one per call: eager,jit")
    exp.add_argument(
        "--grad",
        action="store_true",
        help="also compute d sum(loss) / d each differentiable argument, with each framework and the oracle",
    )
    exp.add_argument("--json", action="store_true", help="machine-readable output")
    exp.add_argument(
        "--known",
        metavar="TOML",
        help="the known-deviations file a finding is matched against (default: the suite's)",
    )
    return parser


def cmd_explain(args) -> int:
    import numpy as np

    from lossparity.conformance.explain import explain
    from lossparity.core.model import CaseError
    from lossparity.literals import LiteralError, parse_array, parse_value
    from lossparity.reports.explain_text import format_explanation

    raw = {}
    for name in ("input", "target"):
        text = getattr(args, name)
        if text is not None:
            try:
                raw[name] = parse_array(text)
            except LiteralError as exc:
                raise UsageError(f"--{name}: {exc}") from None
    for item in args.array:
        name, sep, text = item.partition("=")
        if not sep or not name.strip() or name.strip() in raw:
            raise UsageError(f"--array {item!r}: expected NAME=VALUES, e.g. var=[0.5, 1.0]")
        try:
            raw[name.strip()] = parse_array(text)
        except LiteralError as exc:
            raise UsageError(f"--array {name.strip()}: {exc}") from None
    params = {}
    for item in args.param:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param {item!r}: expected NAME=VALUE, e.g. reduction=sum")
        try:
            params[name.strip()] = parse_value(text)
        except LiteralError as exc:
            raise UsageError(f"--param {name.strip()}: {exc}") from None
    known = _check_known(args.known)
    try:
        with np.errstate(all="ignore"):  # overflow and log(0) are the case's own values, shown as such
            result = explain(args.bindings, raw, params, dtype=args.dtype, mode=args.mode, grad=args.grad, known=known)
    except CaseError as exc:  # ExplainError, or a case the oracle alone cannot take
        raise UsageError(str(exc)) from None
    print(json.dumps(result, indent=1) if args.json else format_explanation(result), end="" if not args.json else "\n")
    return EXIT_OK


def cmd_diff(args) -> int:
    from lossparity.core.records import ResultsFileError
    from lossparity.reports.diff import CLASSES, DEFAULT_DRIFT_ULPS, DEFAULT_FAIL_ON, diff_files, markdown

    fail_on = options.split_csv(args.fail_on) or DEFAULT_FAIL_ON
    unknown = [c for c in fail_on if c not in CLASSES]
    if unknown:
        raise UsageError(f"--fail-on: unknown change class {unknown[0]!r}; accepted: {', '.join(CLASSES)}")
    drift = DEFAULT_DRIFT_ULPS if args.drift_ulps is None else args.drift_ulps
    if not drift >= 0:
        raise UsageError(f"--drift-ulps must be a number >= 0, got {args.drift_ulps}")
    try:
        d = diff_files(Path(args.base), Path(args.new), drift_ulps=drift)
    except ResultsFileError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(
            json.dumps(
                {
                    "base": d.base_meta,
                    "new": d.new_meta,
                    "matched": d.matched,
                    "counts": d.counts(),
                    "fail_on": list(fail_on),
                    "drift_ulps": drift,
                    "regressions": len(d.regressions(fail_on)),
                    "changes": [c.as_dict() for c in d.changes],
                },
                indent=1,
            )
        )
    else:
        print(markdown(d, fail_on), end="")
    if args.markdown:
        _write(args.markdown, lambda path: path.write_text(markdown(d, fail_on), encoding="utf-8"))
    if args.output:
        from lossparity.reports.regression import write_regression

        _write(args.output, lambda path: write_regression(d, path, fail_on, drift))
        print(f"regression report: {args.output}", file=sys.stderr)
    return EXIT_FINDINGS if d.regressions(fail_on) else EXIT_OK


def _write(path: str, write) -> None:
    """``write(Path(path))``, with an unwritable path as a one-line usage error."""
    try:
        write(Path(path))
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def cmd_merge(args) -> int:
    from lossparity.conformance.conclude import conclude
    from lossparity.core.records import LEVEL, ResultsFileError, write_all
    from lossparity.reports.merge import merge

    out = Path(args.output)
    if any(Path(p).resolve() == out.resolve() for p in args.results):
        raise UsageError(f"-o {out} is one of the inputs; write the merged file elsewhere")
    try:
        merged = merge(args.results, baseline=args.baseline)
    except ResultsFileError as exc:
        raise UsageError(str(exc)) from None
    if merged.baseline:  # no values to compare: the summary's counts, no divergences
        lines, summary = conclude({**r, "actual": None} for r in merged.results)
        lines, level = [], 9  # written once, read by every diff: the smallest file deflate makes
    else:
        lines, summary = conclude(merged.results)
        level = LEVEL
    records = [merged.meta, *merged.results, *merged.shrunk, *lines, summary]
    _write(str(out), lambda path: write_all(path, records, level=level))
    for text in merged.warnings:
        print(f"lossparity: warning: {text}", file=sys.stderr)
    for text in merged.conflicts:
        print(f"lossparity: conflict: {text}", file=sys.stderr)
    into = " into a baseline" if merged.baseline else ""
    print(
        f"merged {len(args.results)} files{into}: {len(merged.results)} results, {merged.duplicates} duplicates "
        f"dropped, {len(merged.conflicts)} conflicts -> {out}"
    )
    return EXIT_FINDINGS if merged.conflicts else EXIT_OK


def cmd_run(args) -> int:
    import pytest

    from lossparity.conformance.selection import SelectionError

    try:
        selection = options.selection(options.of_command(args)).validate()
    except SelectionError as exc:
        raise UsageError(str(exc)) from None
    if args.resume:
        from lossparity.conformance.plugin import run_meta
        from lossparity.conformance.resume import ResumeError, load

        try:
            load(Path(args.out) / "results.jsonl", run_meta(selection, ""))
        except ResumeError as exc:
            raise UsageError(str(exc)) from None
    problem = options.problem(args)  # --workers, --timeout, --memory-limit
    if problem:
        raise UsageError(problem)
    _check_known(args.known)
    try:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the output folder {args.out}: {exc.strerror}") from None
    argv = [
        "--pyargs",
        "lossparity.conformance.suite",
        "-c",
        _empty_ini(),
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(Path.cwd()),
        "--tb=no",
        "-rN",
        "-W",
        "ignore",
        "-v" if args.verbose else "-q",
        *options.pytest_args(args),
        "--lp-command",
        "lossparity " + " ".join(sys.argv[1:]),
    ]
    if args.workers > 1:
        # loadgroup: the plugin groups the bindings that share compilations (``plugin._group``)
        argv += ["-n", str(args.workers), "--dist", "loadgroup"]
    code = pytest.main(argv)
    if code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return int(code)
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        raise UsageError("the selection matches no test case")
    if code == pytest.ExitCode.INTERRUPTED:
        raise UsageError(
            f"interrupted; the results so far are in {Path(args.out) / 'results.jsonl'}, "
            "and the same command with --resume completes the run"
        )
    raise UsageError(f"the conformance run stopped (pytest exit code {int(code)})")


def _check_known(path: str | None) -> list:
    """The known deviations of ``path`` (default: the suite's), a bad entry a one-line usage error."""
    from lossparity.conformance.known import KnownError, load_known

    try:
        return load_known(path)
    except KnownError as exc:
        raise UsageError(str(exc)) from None


def _empty_ini() -> str:
    # Run with lossparity's own settings, never the user's pytest configuration.
    path = Path(__file__).with_name("pytest-conformance.ini")
    return str(path)


def cmd_list(args) -> int:
    from lossparity.conformance.coverage import coverage, format_coverage, format_markdown

    table = coverage(parameters=not args.markdown)  # the README's table has no parameters: no framework is read
    print(
        json.dumps(table, indent=2)
        if args.json
        else format_markdown(table)
        if args.markdown
        else format_coverage(table)
    )
    return EXIT_OK


def cmd_report(args) -> int:
    from lossparity.core.records import ResultsFileError
    from lossparity.reports.report import collect_file

    if args.jobs < 1:
        raise UsageError(f"argument -j/--jobs: must be >= 1, got {args.jobs}")
    try:  # one pass over the file, validated line by line: nothing but the report's data is held
        report = collect_file(Path(args.results), workers=args.jobs)
    except ResultsFileError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.output) if args.output else Path(args.results).with_name("report.html")
    try:  # the lines the page shows are read whole as it is rendered
        _write(str(out), report.write)
    except ResultsFileError as exc:
        raise UsageError(str(exc)) from None
    print(f"report: {out}")
    return EXIT_FINDINGS if report.failing else EXIT_OK


COMMANDS = {
    "run": cmd_run,
    "list": cmd_list,
    "report": cmd_report,
    "explain": cmd_explain,
    "merge": cmd_merge,
    "diff": cmd_diff,
}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as exc:  # one line, whatever the user's text held
        text = str(exc).replace("\r", "\\r").replace("\n", "\\n")
        print(f"lossparity: error: {text}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lossparity: interrupted", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
