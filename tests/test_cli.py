"""The command line: exit codes 0/1/2, one-line errors, list and report."""

import json
import subprocess
import sys

import pytest

from lossparity.cli import main


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "lossparity", *args], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--frameworks", "mxnet"], "lossparity: error: unknown framework 'mxnet'; choose from"),
        (["run", "--losses", "hinge_nothing"], "lossparity: error: no loss spec or binding matches 'hinge_nothing'"),
        (
            ["run", "--dtypes", "float8"],
            "lossparity: error: unknown dtype 'float8'; choose from float64, float32, float16, bfloat16",
        ),
        (
            ["run", "--modes", "eager,graph"],
            "lossparity: error: unknown mode 'graph'; choose from eager, compile, function",
        ),
        (["run", "--examples", "many"], "lossparity: error: argument --examples: invalid int value: 'many'"),
        (
            ["run", "--out", "/proc/lossparity-out"],
            "lossparity: error: cannot create the output folder /proc/lossparity-out: No such file or directory",
        ),
        (["frobnicate"], "lossparity: error: argument command: invalid choice: 'frobnicate'"),
        (
            ["report", "/nonexistent/results.jsonl"],
            "lossparity: error: /nonexistent/results.jsonl: no such results file",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"not json\n", "1: not a JSON line"),
        (b'{"kind": "result"}\n', "1: the first line must be the run's 'meta' record"),
        (b"[1, 2]\n", "1: not a lossparity record (no 'kind')"),
        (b"\xff\xfe\x00binary\n", "1: not a JSON line"),
    ],
)
def test_corrupt_results_file(tmp_path, content, problem, capsys):
    path = tmp_path / "results.jsonl"
    path.write_bytes(content)
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"lossparity: error: {path}:{problem}" + err[len(f"lossparity: error: {path}:{problem}") :]
    assert err.count("\n") == 1


def test_list_json_names_every_framework_and_spec():
    code, out, _ = run_cli("list", "--json")
    assert code == 0
    table = json.loads(out)
    assert {"torch", "tensorflow", "jax"} <= set(table["frameworks"])
    specs = {row["spec"]: row for row in table["specs"]}
    ids = [b["id"] for b in specs["softmax_cross_entropy"]["bindings"]["torch"]]
    assert ids == ["torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss"]


def test_run_exit_code_follows_findings(tmp_path):
    pytest.importorskip("torch")
    # BCELoss conforms on its seed row and generated cases (exit 0) ...
    code, out, err = run_cli(
        "run",
        "--frameworks",
        "torch",
        "--losses",
        "torch.nn.BCELoss",
        "--examples",
        "5",
        "--dtypes",
        "float64",
        "--out",
        str(tmp_path / "ok"),
    )
    assert code == 0, out + err
    assert (tmp_path / "ok" / "report.html").is_file()
    assert "verdicts:" in out and "report:" in out
    # ... and rebuilding the report from the results file alone gives the same exit code.
    assert run_cli("report", str(tmp_path / "ok" / "results.jsonl"))[0] == 0


def test_every_shipped_binding_exists_in_the_pinned_releases():
    from lossparity.conformance import sandbox
    from lossparity.conformance.registry import adapter_for, all_bindings

    try:
        for b in all_bindings():
            adapter = adapter_for(b.framework)
            if adapter.unavailable() is None:  # a Keras backend is asked in its own process
                why = adapter.missing(b) if adapter.process == "main" else sandbox.missing(b)
                assert why is None, (b.id, why)
    finally:
        sandbox.shutdown()
