"""Parameter coverage that cannot rot: every parameter of every binding's public API is bound or
excluded with a reason, like the loss coverage (``tests/test_coverage.py``) one level down.

A binding's API is the callable its id names (``torch.nn.CrossEntropyLoss``, without a Keras
``[backend]`` or a ``(variant)``). Its signature is read from the installed framework in the
framework's own worker process (``FrameworkAdapter.signature`` through ``sandbox.signatures``):
a function's parameters; a class's constructor (part ``init``) and its instances' call (part
``call``: ``forward`` of a ``torch.nn.Module``, ``__call__`` of a Keras loss); a method's class
constructor and the method itself. Each parameter then has one status:

- ``bound``: a spec parameter the cases vary, passed through ``{kw}`` (``Binding.params``;
  ``detail`` names the spec parameter: torch's ``beta`` is the spec's ``delta``);
- ``argument``: the call text passes one of the case's arrays (``input``, ``target``,
  ``input_lengths``, ``where.astype(bool)``; ``detail`` is the expression);
- ``fixed``: the call text passes a constant (``from_logits=True``, ``logits_time_major=False``), or
  ``Binding.fixed`` names the parameter (``detail``: the value);
- ``excluded``: left at the API's default on purpose, with the reason from
  ``conformance/parameter_exclusions.py`` (``detail``);
- ``unbound``: none of these, which ``tests/test_parameters.py`` fails on, as it does on a stale
  exclusion (:func:`problems`).

The call text is read with :mod:`ast` and never run, so all of this but the signatures is
computed without importing a framework (the parent process of a run imports none).
"""

from __future__ import annotations

import ast
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import cache

from lossparity.conformance.parameter_exclusions import EXCLUDED
from lossparity.conformance.registry import adapter_for, bindings, family
from lossparity.conformance.specs import SPECS
from lossparity.core.model import ARRAY_PARAMS, Binding

#: The statuses of a parameter, in the order ``lossparity list`` shows them.
STATUSES = ("bound", "argument", "fixed", "excluded", "unbound")
#: Statuses that count as bound in :func:`counts` (the call gives the parameter a value).
GIVEN = ("bound", "argument", "fixed")
_BACKEND = re.compile(r"\[[^\]]*\]$")  # a Keras binding id's "[jax]"
_KW = "__kw__"  # stands for the call text's ``{kw}`` while it is parsed: it marks the call the keywords go to
_CALL_KW = "__call_kw__"  # stands for ``{call_kw}``: where ``Binding.call_keywords`` go (Keras' sample_weight)


@dataclass(frozen=True)
class Parameter:
    """One parameter of a binding's API and how the binding treats it (module docstring)."""

    name: str
    part: str  # "call", or "init" for a class's (or a method's class's) constructor
    status: str
    detail: str = ""


def api(binding_id: str) -> str:
    """The dotted path of the callable a binding id names: ``keras.losses.Huber[jax]`` ->
    ``keras.losses.Huber``, ``F.triplet_margin_with_distance_loss(cosine)`` -> without ``(cosine)``,
    ``keras.losses.SparseCategoricalCrossentropy+class_weight`` -> without ``+class_weight``."""
    return re.split(r"[\[(+]", binding_id)[0]


def bare_key(binding: Binding) -> str:
    """``spec:id`` without a Keras backend: the key of an exclusion that concerns one binding."""
    return f"{binding.spec}:{_BACKEND.sub('', binding.id)}"


def exclusions(framework: str) -> dict[str, dict[str, str]]:
    """The exclusion table of the framework's family (one for Keras' three backends): key (an API
    path, or :func:`bare_key` of one binding) -> parameter -> reason."""
    return EXCLUDED.get(family(framework), {})


def aliases(framework: str) -> dict[str, str]:
    """The names the adapter's imports bind, read from its source: ``F`` -> ``torch.nn.functional``."""
    out = {}
    for node in ast.walk(ast.parse(adapter_for(framework).imports)):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.update((a.asname or a.name, f"{node.module}.{a.name}") for a in node.names)
    return out


def _dotted(node: ast.AST, names: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return names.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value, names)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _calls(binding: Binding, signature: dict, names: dict[str, str]) -> dict[str, ast.Call]:
    """The call text's calls of the binding's API, by part: ``{"call": ...}`` for a function,
    ``{"init": Cls(...), "call": Cls(...)(...)}`` for a class, ``Cls(...).method(...)`` for a method."""
    text = binding.call.replace("{kw}", f", {_KW}=0").replace(f"(, {_KW}", f"({_KW}")
    text = text.replace("{call_kw}", f", {_CALL_KW}=0").replace(f"(, {_CALL_KW}", f"({_CALL_KW}")
    head, _, rest = api(binding.id).partition(".")
    path, out = f"{names.get(head, head)}.{rest}", {}  # as _dotted spells it: tf.nn.x -> tensorflow.nn.x
    for node in ast.walk(ast.parse(text, mode="eval")):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if _dotted(func, names) == path:
            out["call" if signature["init"] is None else "init"] = node
        elif isinstance(func, ast.Call) and _dotted(func.func, names) == path:
            out["call"] = node
        elif (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Call)
            and f"{_dotted(func.value.func, names)}.{func.attr}" == path
        ):
            out["call"], out["init"] = node, func.value
    return out


def _case_variables(binding: Binding) -> set[str]:
    spec = SPECS.get(binding.spec)
    return {"input", "target", *ARRAY_PARAMS, *(spec.arrays if spec else ())}


def classify(binding: Binding, signature: dict, names: dict[str, str], table: dict) -> tuple[list[Parameter], list]:
    """Each parameter of ``signature`` (``FrameworkAdapter.signature``) with its status for
    ``binding``, whose call text names its callables by ``names`` (:func:`aliases`), and the
    binding's own problems: a keyword it binds or passes that the API does not take, more
    positional arguments than it has, a call text that never calls it. ``table``: the family's
    exclusions (:func:`exclusions`)."""
    parts = {p: list(ps) for p, ps in (("init", signature["init"]), ("call", signature["call"])) if ps is not None}
    calls, problems = _calls(binding, signature, names), []
    given: dict[tuple[str, str], tuple[str, str]] = {}  # (part, name) -> (status, detail)
    variables = _case_variables(binding)
    bound = {
        kw: [p for p, k in binding.params.items() if k == kw and p not in binding.fixed]
        for kw in binding.params.values()
    }
    bound = {kw: ps for kw, ps in bound.items() if ps}
    # the keywords the call text passes at {call_kw}, not {kw} (Keras' sample_weight: a call argument)
    at_call = {kw: ps for kw, ps in bound.items() if kw in binding.call_keywords}
    bound = {kw: ps for kw, ps in bound.items() if kw not in binding.call_keywords}
    for part, node in calls.items():
        params = parts.get(part, [])
        takes = {name for name, _, _ in params}
        anything = any(kind == "VAR_KEYWORD" for _, kind, _ in params)
        positional = [name for name, kind, _ in params if kind in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")]
        for i, arg in enumerate(node.args):
            if i >= len(positional):
                problems.append(f"{binding.id}: its call passes {len(node.args)} positional arguments to {part}")
                break
            given[part, positional[i]] = _given(arg, variables)
        for kw in node.keywords:
            if kw.arg in (_KW, _CALL_KW):  # where the bound keywords go: {kw}, or {call_kw} for call_keywords
                for name, specs in (bound if kw.arg == _KW else at_call).items():
                    if name in takes or anything:
                        given[part, name] = "bound", ", ".join(specs)
                    else:
                        problems.append(f"{binding.id}: binds keyword {name!r}, which its {part} does not take")
            elif kw.arg is not None:
                given[part, kw.arg] = _given(kw.value, variables)
                if kw.arg not in takes and not anything:
                    problems.append(f"{binding.id}: its call passes keyword {kw.arg!r}, which its {part} does not take")
    if not calls:
        problems.append(f"{binding.id}: its call text never calls {api(binding.id)}")
    if bound and not any(kw.arg == _KW for node in calls.values() for kw in node.keywords):
        problems.append(f"{binding.id}: binds {sorted(bound)} but its call text has no {{kw}}")
    excluded = {**table.get(api(binding.id), {}), **table.get(bare_key(binding), {})}
    out = []
    for part, params in parts.items():
        for name, _, _ in params:
            if (part, name) in given:
                status, detail = given[part, name]
            elif name in binding.fixed:
                status, detail = "fixed", repr(binding.fixed[name])
            elif name in excluded:
                status, detail = "excluded", excluded[name]
            else:
                status, detail = "unbound", ""
            out.append(Parameter(name, part, status, detail))
    return out, problems


def _given(expr: ast.expr, variables: set[str]) -> tuple[str, str]:
    """An argument the call text writes: one of the case's arrays (``argument``), else a constant (``fixed``)."""
    names = {n.id for n in ast.walk(expr) if isinstance(n, ast.Name)}
    return ("argument" if names & variables else "fixed"), ast.unparse(expr)


@cache  # the installed framework does not change under a process: read once (``lossparity list`` in tests)
def signatures(framework: str) -> dict[str, dict | None]:
    """API path -> signature of each of the framework's bindings' APIs, read in its worker process;
    empty where the framework is unavailable."""
    adapter = adapter_for(framework)
    if adapter.unavailable():
        return {}
    from lossparity.conformance import sandbox

    return sandbox.signatures(framework, sorted({api(b.id) for b in bindings(framework)}))


def statuses(
    framework: str, found: dict[str, dict | None] | None = None
) -> tuple[dict[str, list[Parameter] | None], list]:
    """``Binding.key`` -> its parameters (None where its API's signature was not read), and the
    problems: parameters neither bound nor excluded, stale exclusions, bindings that bind what
    their API does not take. ``found``: the signatures (:func:`signatures`, read if not given;
    a test passes made-up ones)."""
    found = signatures(framework) if found is None else found
    names, table = aliases(framework), exclusions(framework)
    out: dict[str, list[Parameter] | None] = {}
    problems: list[str] = []
    for b in bindings(framework):
        signature = found.get(api(b.id))
        if signature is None:
            out[b.key] = None
            continue
        out[b.key], own = classify(b, signature, names, table)
        problems += own
        problems += [
            f"{b.id} ({b.spec}): parameter {p.name!r} of its {p.part} is neither bound nor excluded"
            for p in out[b.key]
            if p.status == "unbound"
        ]
    return out, problems + _stale(framework, found, out, table)


def _stale(framework: str, found: dict, out: dict, table: dict) -> list[str]:
    """Exclusions that match no binding, name a parameter the API does not have, cover a binding
    that gives the parameter a value, or say again what another entry says for the same binding."""
    problems = []
    for key, params in table.items():
        covered = [b for b in bindings(framework) if key in (api(b.id), bare_key(b))]
        if not covered:
            problems.append(f"excluded parameters of {key!r}: no binding of {framework} is {key}")
            continue
        for b in covered:
            signature, have = found.get(api(b.id)), out.get(b.key)
            if signature is None or have is None:
                continue  # not read: nothing to hold the entry against
            names = {n for part in ("init", "call") for n, _, _ in signature[part] or ()}
            for name in params:
                if name not in names:
                    problems.append(f"excluded parameter {key}.{name}: {api(b.id)} has no parameter {name!r}")
                elif any(p.name == name and p.status in GIVEN for p in have):
                    problems.append(f"excluded parameter {key}.{name}: {b.id} ({b.spec}) gives it a value")
                elif key == bare_key(b) and name in table.get(api(b.id), {}):
                    problems.append(f"excluded parameter {key}.{name}: excluded for {api(b.id)} already")
    return sorted(set(problems))


def counts(parameters: dict[str, list[Parameter] | None]) -> dict[str, int]:
    """The number of (binding, parameter) pairs of each status, and ``bound``'s total of
    :data:`GIVEN` as ``given``; ``unread``: bindings whose signature was not read."""
    out = dict.fromkeys(STATUSES, 0) | {"given": 0, "unread": 0}
    for params in parameters.values():
        if params is None:
            out["unread"] += 1
            continue
        for p in params:
            out[p.status] += 1
            out["given"] += p.status in GIVEN
    return out


def coverage(frameworks: list[str]) -> dict[str, dict]:
    """framework -> ``{"bindings": {key: [parameter dicts] | None}, "counts": counts, "problems": [...]}``
    for each of ``frameworks``, their workers asked side by side (one thread per worker process)."""
    by_process: dict[str, list[str]] = {}
    for fw in frameworks:
        by_process.setdefault(adapter_for(fw).process, []).append(fw)

    def read(group: list[str]) -> dict:
        out = {}
        for fw in group:
            try:
                out[fw] = statuses(fw)
            except RuntimeError as exc:  # the worker crashed reading them: say so, list the rest
                out[fw] = {b.key: None for b in bindings(fw)}, [str(exc)]
        return out

    with ThreadPoolExecutor(max_workers=len(by_process) or 1) as pool:
        done = {fw: got for result in pool.map(read, by_process.values()) for fw, got in result.items()}
    return {
        fw: {
            "bindings": {k: None if ps is None else [asdict(p) for p in ps] for k, ps in done[fw][0].items()},
            "counts": counts(done[fw][0]),
            "problems": done[fw][1],
        }
        for fw in frameworks
    }
