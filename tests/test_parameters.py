"""Parameter coverage that cannot silently rot: every parameter of every binding's API (a
function's; a class's constructor and call) is bound or excluded with a reason, the signatures
read from the installed frameworks in their own worker processes
(``FrameworkAdapter.signature``). A framework upgrade that adds a parameter, or drops or starts
binding an excluded one, fails here until someone binds it, says why not, or removes the entry.

The tests with made-up signatures show the check can fail: a planted parameter, a stale entry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from lossparity.conformance import parameters as P
from lossparity.conformance import sandbox
from lossparity.conformance.parameter_exclusions import EXCLUDED, LATER
from lossparity.conformance.registry import adapter_for, find

OURS = ["torch", "tensorflow", "jax", "keras[tensorflow]", "keras[jax]", "keras[torch]", "keras[numpy]"]
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module", autouse=True)
def _children():
    yield
    sandbox.shutdown()


def _available(framework):
    why = adapter_for(framework).unavailable()
    if why:
        pytest.skip(why)


@pytest.mark.parametrize("framework", OURS)
def test_every_parameter_is_bound_or_excluded(framework):
    _available(framework)
    found, problems = P.statuses(framework)
    assert all(ps is not None for ps in found.values()), [k for k, ps in found.items() if ps is None]
    assert not problems, (
        f"{framework}: {len(problems)} problems; bind each parameter (conformance/families/, Binding.params) or "
        "exclude it with a reason in conformance/parameter_exclusions.py, and remove stale entries:\n"
        + "\n".join(problems)
    )
    counts = P.counts(found)
    assert counts["given"] >= 2 * len(found)  # every loss takes its input and target at least: read at all


def test_every_reason_says_why():
    for fam, table in EXCLUDED.items():
        for key, reasons in table.items():
            for name, why in reasons.items():
                assert len(why) >= len(LATER), (fam, key, name)
                if LATER in why:  # only what issue 19 asks to be bound
                    assert name in ("sample_weight", "axis", "where", "ref_labels", "ref_embeddings"), (key, name)


# -- the check can fail: made-up signatures, no framework imported ------------------------------

_BCE_INIT = [
    ("weight", "POSITIONAL_OR_KEYWORD", "None"),
    ("size_average", "POSITIONAL_OR_KEYWORD", "None"),
    ("reduce", "POSITIONAL_OR_KEYWORD", "None"),
    ("reduction", "POSITIONAL_OR_KEYWORD", "'mean'"),
]
_BCE_CALL = [("input", "POSITIONAL_OR_KEYWORD", None), ("target", "POSITIONAL_OR_KEYWORD", None)]


def _bce(init=_BCE_INIT, call=_BCE_CALL) -> dict:
    return {"torch.nn.BCELoss": {"init": list(init), "call": list(call)}}


def _of(found, key="binary_cross_entropy:torch.nn.BCELoss"):
    return {(p.part, p.name): (p.status, p.detail) for p in found[key]}


def test_a_class_is_read_as_its_constructor_and_its_call():
    found, problems = P.statuses("torch", _bce())
    assert problems == []
    assert _of(found) == {
        ("init", "weight"): ("bound", "weight"),
        ("init", "size_average"): ("excluded", EXCLUDED["torch"]["torch.nn.BCELoss"]["size_average"]),
        ("init", "reduce"): ("excluded", EXCLUDED["torch"]["torch.nn.BCELoss"]["reduce"]),
        ("init", "reduction"): ("bound", "reduction"),
        ("call", "input"): ("argument", "input"),
        ("call", "target"): ("argument", "target"),
    }
    assert all(ps is None for k, ps in found.items() if k != "binary_cross_entropy:torch.nn.BCELoss")  # not read


def test_a_planted_parameter_is_caught():
    _, problems = P.statuses("torch", _bce(init=[*_BCE_INIT, ("clamp_log", "KEYWORD_ONLY", "-100.0")]))
    assert problems == [
        "torch.nn.BCELoss (binary_cross_entropy): parameter 'clamp_log' of its init is neither bound nor excluded"
    ]
    _, problems = P.statuses("torch", _bce(call=[*_BCE_CALL, ("mask", "POSITIONAL_OR_KEYWORD", "None")]))
    assert problems == [
        "torch.nn.BCELoss (binary_cross_entropy): parameter 'mask' of its call is neither bound nor excluded"
    ]


def test_a_stale_exclusion_is_caught(monkeypatch):
    # the API no longer has an excluded parameter
    _, problems = P.statuses("torch", _bce(init=[p for p in _BCE_INIT if p[0] != "reduce"]))
    assert problems == ["excluded parameter torch.nn.BCELoss.reduce: torch.nn.BCELoss has no parameter 'reduce'"]
    # an excluded parameter that the binding binds
    monkeypatch.setitem(EXCLUDED["torch"], "torch.nn.BCELoss", {**EXCLUDED["torch"]["torch.nn.BCELoss"], "weight": "x"})
    _, problems = P.statuses("torch", _bce())
    assert problems == [
        "excluded parameter torch.nn.BCELoss.weight: torch.nn.BCELoss (binary_cross_entropy) gives it a value"
    ]


def test_an_entry_for_no_binding_and_a_second_entry_are_caught(monkeypatch):
    monkeypatch.setitem(EXCLUDED["torch"], "torch.nn.BCELos", {"reduce": "a misspelt API: matches no binding"})
    monkeypatch.setitem(
        EXCLUDED["torch"], "binary_cross_entropy:torch.nn.BCELoss", {"reduce": "said again for one binding"}
    )
    _, problems = P.statuses("torch", _bce())
    assert problems == [
        "excluded parameter binary_cross_entropy:torch.nn.BCELoss.reduce: excluded for torch.nn.BCELoss already",
        "excluded parameters of 'torch.nn.BCELos': no binding of torch is torch.nn.BCELos",
    ]


def test_a_keyword_the_api_does_not_take_is_caught():
    _, problems = P.statuses("torch", _bce(init=[p for p in _BCE_INIT if p[0] != "weight"]))
    assert problems == ["torch.nn.BCELoss: binds keyword 'weight', which its init does not take"]
    logits = {"keras.losses.BinaryCrossentropy": {"init": [("reduction", "POSITIONAL_OR_KEYWORD", "'x'")], "call": []}}
    _, problems = P.statuses("keras[jax]", logits)
    assert (
        "keras.losses.BinaryCrossentropy[jax]: its call passes keyword 'from_logits', which its init does not take"
        in (problems)
    )
    assert "keras.losses.BinaryCrossentropy[jax]: its call passes 2 positional arguments to call" in problems


def test_call_texts_are_read_as_written():
    """Aliases (``F.``, ``tf.``), a spec parameter under another keyword, a method of a
    constructed object, keyword arguments of the call text, a Keras class on one backend."""
    smooth = {
        "torch.nn.functional.smooth_l1_loss": {
            "init": None,
            "call": [*_BCE_CALL, *_BCE_INIT[1:], ("beta", "POSITIONAL_OR_KEYWORD", "1.0")],
        },
        "torch.distributions.Categorical.entropy": {
            "init": [(n, "POSITIONAL_OR_KEYWORD", "None") for n in ("probs", "logits", "validate_args")],
            "call": [],
        },
    }
    found, problems = P.statuses("torch", smooth)
    assert problems == []
    assert _of(found, "huber:torch.nn.functional.smooth_l1_loss")[("call", "beta")] == ("bound", "delta")
    entropy = _of(found, "entropy:torch.distributions.Categorical.entropy")
    assert entropy[("init", "probs")] == ("argument", "input")
    assert entropy[("init", "logits")][0] == "excluded"

    ctc = {
        "tf.nn.ctc_loss": {
            "init": None,
            "call": [(n, "POSITIONAL_OR_KEYWORD", None) for n in ("labels", "logits", "label_length", "logit_length")]
            + [(n, "POSITIONAL_OR_KEYWORD", "None") for n in ("logits_time_major", "unique", "blank_index", "name")],
        }
    }
    found, problems = P.statuses("tensorflow", ctc)
    assert problems == []
    assert _of(found, "ctc:tf.nn.ctc_loss") == {
        ("call", "labels"): ("argument", "target"),
        ("call", "logits"): ("argument", "input"),
        ("call", "label_length"): ("argument", "target_lengths"),
        ("call", "logit_length"): ("argument", "input_lengths"),
        ("call", "logits_time_major"): ("fixed", "False"),
        ("call", "unique"): ("excluded", EXCLUDED["tensorflow"]["tf.nn.ctc_loss"]["unique"]),
        ("call", "blank_index"): ("bound", "blank"),
        ("call", "name"): ("excluded", EXCLUDED["tensorflow"]["tf.nn.ctc_loss"]["name"]),
    }

    keras = {
        "keras.losses.BinaryCrossentropy": {
            "init": [("from_logits", "POSITIONAL_OR_KEYWORD", "False"), ("reduction", "POSITIONAL_OR_KEYWORD", "'x'")],
            "call": [(n, "POSITIONAL_OR_KEYWORD", None) for n in ("y_true", "y_pred", "sample_weight")],
        }
    }
    found, _ = P.statuses("keras[jax]", keras)
    logits = _of(found, "binary_cross_entropy_with_logits:keras.losses.BinaryCrossentropy[jax]")
    assert logits == {
        ("init", "from_logits"): ("fixed", "True"),
        ("init", "reduction"): ("bound", "reduction"),
        ("call", "y_true"): ("argument", "target"),
        ("call", "y_pred"): ("argument", "input"),
        ("call", "sample_weight"): ("bound", "sample_weight"),  # at {call_kw}: a call argument
    }
    assert find("keras[jax]", "keras.losses.BinaryCrossentropy[jax]").call.endswith("(target, input{call_kw})")


def test_an_api_without_a_signature_is_not_read():
    found, problems = P.statuses("torch", {"torch.nn.BCELoss": None})
    assert found["binary_cross_entropy:torch.nn.BCELoss"] is None and problems == []
    assert P.counts(found)["unread"] == len(found)


# -- what the command line shows, and the README quotes ------------------------------------------


def test_list_shows_each_bindings_parameters(capsys):
    _available("torch")
    from lossparity.cli import main

    assert main(["list", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    bce = next(s for s in table["specs"] if s["spec"] == "binary_cross_entropy")
    module = next(b for b in bce["bindings"]["torch"] if b["id"] == "torch.nn.BCELoss")
    assert {"name": "reduction", "part": "init", "status": "bound", "detail": "reduction"} in module["parameters"]
    counts = table["frameworks"]["torch"]["parameters"]["counts"]
    assert counts["unbound"] == 0 and counts["excluded"] > 0

    assert main(["list"]) == 0
    text = capsys.readouterr().out
    block = text[text.index("    torch.nn.BCELoss ") :].splitlines()[:3]
    number = re.search(r"size_average\[(\d+)\]", block[1]).group(1)
    assert block[1:] == [
        f"      init  weight=<weight> reduction=<reduction>  excluded: size_average[{number}] reduce[{number}]",
        "      call  input=input target=target",
    ]
    assert f"  [{number}] {EXCLUDED['torch']['torch.nn.BCELoss']['reduce']}" in text.splitlines()


def test_readme_quotes_the_parameter_counts():
    for framework in OURS:
        _available(framework)
    from lossparity.conformance.coverage import coverage, format_parameter_counts

    figures = "\n".join(format_parameter_counts(coverage(parameters=True)))
    assert figures in README.read_text(encoding="utf-8"), (
        "the README's parameter figures are out of date: paste the 'Parameters of each binding's API' lines "
        f"of 'lossparity list' into its coverage section:\n{figures}"
    )


# -- bad input to the parameters in explain: one line, exit 2 (issue 19, item 8) ----------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (  # a class weight of the wrong length, given as a spec parameter and as the call's own argument
            ["torch.nn.NLLLoss", "--input", "[[-0.5, -1.0, -2.0]]", "--target", "[0]", "--param", "weight=[1., 2.]"],
            "torch.nn.NLLLoss: weight holds one number per class: shape (3,), got (2,)",
        ),
        (
            ["F.nll_loss(x, y, weight=w)", "--array", "x=[[-0.5, -1.0, -2.0]]", "--array", "y=[0]"]
            + ["--array", "w=[1., 2.]"],
            "F.nll_loss(x, y, weight=w): weight holds one number per class: shape (3,), got (2,)",
        ),
        (  # an elementwise weight that does not broadcast to the input
            ["torch.nn.BCELoss", "--input", "[0.8, 0.2, 0.4]", "--target", "[1., 0., 0.]"]
            + ["--param", "weight=[[1., 2.], [3., 4.]]"],
            "torch.nn.BCELoss: weight of shape (2, 2) does not broadcast to the input's (3,)",
        ),
        (  # an axis out of range, a negative one, an axis named twice
            ["optax.losses.cosine_similarity", "--input", "[[1., 2.]]", "--target", "[[1., 0.]]", "--param", "axis=5"],
            "optax.losses.cosine_similarity: axis 5 is out of range for an input of shape (1, 2): axes go from -2 to 1",
        ),
        (
            ["optax.losses.cosine_similarity(a, b, axis=-3)", "--array", "a=[[1., 2.]]", "--array", "b=[[1., 0.]]"],
            "optax.losses.cosine_similarity(a, b, axis=-3): axis -3 is out of range for an input of shape (1, 2): "
            "axes go from -2 to 1",
        ),
        (
            ["keras.losses.Dice[jax]", "--input", "[[0.5, 0.2]]", "--target", "[[1., 0.]]", "--param", "axis=[0, 3]"],
            "keras.losses.Dice[jax]: axis (0, 3) is out of range for an input of shape (1, 2): axes go from -2 to 1",
        ),
        (
            ["keras.losses.Dice[jax]", "--input", "[[0.5, 0.2]]", "--target", "[[1., 0.]]", "--param", "axis=[1, -1]"],
            "keras.losses.Dice[jax]: axis (1, -1) names an axis twice",
        ),
        (  # optax's where mask: of the wrong shape, holding what is no mask, of a kind that is not a number
            ["optax.losses.ranking_softmax_loss", "--input", "[1., 2., 3.]", "--target", "[0., 1., 0.]"]
            + ["--array", "where=[1, 0]"],
            "optax.losses.ranking_softmax_loss: where, a mask of the input's entries, of shape (2,) does not "
            "broadcast to the input's (3,)",
        ),
        (
            [
                "optax.losses.ranking_softmax_loss(s, y, where=m)",
                "--array",
                "s=[1., 2., 3.]",
                "--array",
                "y=[0., 1., 0.]",
            ]
            + ["--array", "m=[0.5, 1., 2.]"],
            "optax.losses.ranking_softmax_loss(s, y, where=m): where is a mask: each entry 0 or 1, got [0.5, 1. , 2. ]",
        ),
        (
            ["optax.losses.ranking_softmax_loss", "--input", "[1., 2., 3.]", "--target", "[0., 1., 0.]"]
            + ["--array", "where=[1, nan, 0]"],
            "optax.losses.ranking_softmax_loss: where is a mask: each entry 0 or 1, got [ 1., nan,  0.]",
        ),
        (  # a mask is an array, never a parameter
            ["optax.losses.ranking_softmax_loss", "--input", "[1., 2., 3.]", "--target", "[0., 1., 0.]"]
            + ["--param", "where=[1, 1, 0]"],
            "optax.losses.ranking_softmax_loss: no parameter 'where' here; it takes: weight, reduction",
        ),
    ],
)
def test_bad_parameter_values_in_explain_are_one_line_and_exit_2(capsys, argv, message):
    from lossparity.cli import main

    code = main(["explain", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == f"lossparity: error: {message}\n"


def test_a_list_of_axes_and_a_whole_mask_are_accepted():
    """The checks above refuse only what is wrong: ``--param axis=[0, 1]`` (read as an array) is a
    list of axes, and a mask of 0s and 1s of the input's shape is read as booleans."""
    from lossparity.conformance.explain import build_case, check_param
    from lossparity.conformance.specs import SPECS

    assert check_param("axis", np.array([0, 1])) == (0, 1)
    case = build_case(
        SPECS["ranking_softmax"],
        {"input": np.array([1.0, 2.0, 3.0]), "target": np.array([0.0, 1.0, 0.0]), "where": np.array([1, 0, 1])},
        {},
        -1,
    )
    assert case.arrays["where"].tolist() == [True, False, True]
    dice = build_case(SPECS["dice"], {"input": np.ones((1, 2)), "target": np.ones((1, 2))}, {"axis": (0, -1)}, -1)
    assert dice.params["axis"] == (0, -1)
