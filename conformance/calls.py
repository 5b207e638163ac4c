"""A loss call as the user wrote it, read into a binding, its arguments and parameters.

``lossparity explain "torch.nn.BCEWithLogitsLoss()(z, y)" "keras.losses.binary_crossentropy(y,
keras.ops.sigmoid(z))" --array z=... --array y=...``: each side is parsed with :mod:`ast` and
never evaluated. What a side may hold:

- the loss: a class called on the arguments (``nn.BCELoss(reduction="sum")(p, y)``) or a
  function (``F.binary_cross_entropy(p, y)``), under the names users import it by (``nn.``,
  ``F.``, ``tf.keras.losses.``, ``optax.`` for ``optax.losses.``); ``keras.losses.X`` runs on
  Keras' default backend (``KERAS_BACKEND``, else tensorflow) and says so, ``keras.losses.X[jax]``
  names one;
- the arguments: names of arrays given with ``--array`` (``--input``/``--target`` name
  ``input``/``target``), inline literals (``[0.8, 0.2]``, ``torch.tensor([1, 0])``,
  ``np.array([...], dtype=np.float64)``), each keeping the kind written (``[0, 1]`` is an
  integer array, ``[0., 1.]`` a float one, as the framework would receive it);
- around an argument, the transforms of ``core.model.TRANSFORMS`` (``torch.sigmoid(z)``,
  ``z.sigmoid()``, ``keras.ops.softmax(z)``, ``jax.nn.log_softmax(z, axis=-1)``, ``tf.math.log(p)``),
  which the side's framework then computes inside the call, and casts (``z.double()``,
  ``z.to(torch.float16)``, ``tf.cast(z, tf.float64)``, ``z.astype(jnp.bfloat16)``), which set the
  side's dtype;
- keyword arguments by the framework's own names (``reduction="none"``, ``from_logits=True``,
  ``weight=w``), read back into the spec's vocabulary by the binding's declaration.

Keras' ``(y_true, y_pred)`` order, ``tf.nn``'s ``labels=``/``logits=`` keywords and every other
argument order come from the binding's own call text (``Binding.call``), which is parsed the same
way: the user's call matches a binding when it has the same shape.
"""

from __future__ import annotations

import ast
import builtins
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from lossparity.core.model import TRANSFORMS, Binding, CaseError

#: The names users import losses by, and the binding ids' own prefixes.
ALIASES = (
    ("F.", "torch.nn.functional."),
    ("nn.functional.", "torch.nn.functional."),
    ("nn.", "torch.nn."),
    ("tf.keras.losses.", "keras.losses."),
    ("tf.keras.ops.", "keras.ops."),
    ("keras.src.losses.", "keras.losses."),
)
#: Module prefixes whose ``sigmoid``/``softmax``/... is a transform of an argument.
TRANSFORM_MODULES = (
    "torch",
    "torch.special",
    "torch.nn.functional",
    "F",
    "nn.functional",
    "tf",
    "tf.math",
    "tf.nn",
    "keras.ops",
    "keras.activations",
    "tf.keras.ops",
    "tf.keras.activations",
    "jax.nn",
    "jnp",
    "jax.numpy",
    "np",
    "numpy",
)
#: Functions that make an array from a literal or another array (a dtype keyword casts it).
MAKERS = (
    "torch.tensor",
    "torch.as_tensor",
    "torch.from_numpy",
    "np.array",
    "np.asarray",
    "numpy.array",
    "numpy.asarray",
    "jnp.array",
    "jnp.asarray",
    "jax.numpy.array",
    "jax.numpy.asarray",
    "tf.constant",
    "tf.convert_to_tensor",
    "keras.ops.convert_to_tensor",
    "keras.ops.array",
)
#: Module names: ``torch.sigmoid(z)`` is a function of a module, ``z.sigmoid()`` a method.
MODULES = frozenset((*TRANSFORM_MODULES, "keras", "jax", "optax", "tensorflow"))
CASTS = ("tf.cast", "keras.ops.cast", "tf.keras.ops.cast")
#: Tensor methods that cast, and the dtype they cast to.
CAST_METHODS = {
    "double": "float64",
    "float": "float32",
    "half": "float16",
    "bfloat16": "bfloat16",
    "long": "int64",
    "int": "int32",
}
#: The array methods understood: transforms and casts.
METHODS = frozenset((*TRANSFORMS, *CAST_METHODS, "to", "astype", "type"))
#: Dtype names as frameworks spell them (``torch.double``), last component.
DTYPE_NAMES = {
    "float64": "float64",
    "double": "float64",
    "float32": "float32",
    "float": "float32",
    "float16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "int64": "int64",
    "long": "int64",
    "int32": "int32",
    "int": "int32",
}
#: A framework's keyword for an argument the binding's call text passes by position.
ARGUMENT_KEYWORDS = {
    "input": "input",
    "target": "target",
    "y_pred": "input",
    "y_true": "target",
    "logits": "input",
    "labels": "target",
    "predictions": "input",
    "targets": "target",
    "log_predictions": "input",
    "scores": "input",
    "anchors": "input",
    "anchor": "input",
    "positive": "positive",
    "positives": "positive",
    "negative": "negative",
    "negatives": "negative",
    "input1": "input",
    "input2": "input2",
    "var": "var",
}
#: A keyword a binding's call text fixes, and the framework's default for it: a call that leaves
#: it out reads as the binding whose text sets the default (``from_logits=False``).
KEYWORD_DEFAULTS = {"from_logits": False, "logits_time_major": True}


#: Keras on TensorFlow reads the logits back from the output of its own sigmoid or softmax
#: (``keras.ops.sigmoid`` keeps its input as ``_keras_logits``, and the backend's cross-entropies
#: take it through ``_get_logits``: keras/src/backend/tensorflow/nn.py), so a probability loss given
#: ``keras.ops.sigmoid(z)`` computes its ``from_logits=True`` form on z: (framework, spec,
#: transform) -> the spec it computes instead. The other backends compute on the probabilities.
RECOVERED_LOGITS = {
    ("keras[tensorflow]", "binary_cross_entropy", "sigmoid"): "binary_cross_entropy_with_logits",
    ("keras[tensorflow]", "categorical_cross_entropy", "softmax"): "softmax_cross_entropy_soft",
    ("keras[tensorflow]", "sparse_categorical_cross_entropy", "softmax"): "softmax_cross_entropy",
}
LOGITS_SOURCE = "https://github.com/keras-team/keras/blob/v3.15.1/keras/src/backend/tensorflow/nn.py"


def recovered_logits(binding: Binding, transforms: Mapping[str, tuple], dtype: str, mode: str) -> str | None:
    """The spec a binding computes instead when it reads the logits back from its input's
    activation (:data:`RECOVERED_LOGITS`), else None. Keras' own ``keras.ops.sigmoid`` marks its
    output in every mode; in a traced mode (``tf.function``) any Sigmoid or Softmax op's output is
    recognized by its op type. A loss class that first casts its input to ``floatx`` (float64
    given: a Cast op, a new tensor) reads no logits back."""
    steps = transforms.get("input", ())
    if len(steps) != 1 or steps[0][1] not in (None, -1):
        return None
    name, _, family = steps[0]
    if family != "keras" and mode == "eager":
        return None
    if binding.computes_in is not None and binding.computes_in != dtype:
        return None
    return RECOVERED_LOGITS.get((binding.framework, binding.spec, name))


class CallError(CaseError):
    """A call text that cannot be read: one line saying what and where."""


@dataclass(frozen=True)
class Argument:
    """One argument of a call: its values in the kind written (int64 or float64), where they
    came from, the transforms the framework applies to it and the dtype it is cast to."""

    values: np.ndarray
    source: str
    transforms: tuple[tuple[str, int | None], ...] = ()
    cast: str | None = None


@dataclass
class Call:
    """A call text read into binding candidates (one id), arguments and parameters."""

    text: str
    binding_id: str
    note: str | None = None  # what was assumed (Keras' default backend)
    args: list = field(default_factory=list)  # Argument | constant, positional
    keywords: dict[str, Any] = field(default_factory=dict)  # call keywords
    ctor_args: list = field(default_factory=list)
    ctor_keywords: dict[str, Any] = field(default_factory=dict)
    is_class: bool = False


@dataclass
class Bound:
    """A call matched to one binding: the arrays by the binding's argument names (``input``,
    ``target``, ``var``...) in the kind written (int64 or float64), the spec parameters,
    transforms and the dtype a cast asked for."""

    binding: Binding
    arrays: dict[str, np.ndarray]
    params: dict[str, Any]
    transforms: dict[str, tuple]
    dtype: str | None


def is_call(text: str) -> bool:
    """Whether a side on the command line is a call text rather than a binding id."""
    return "(" in text


def dotted(node: ast.AST) -> str | None:
    """``torch.nn.functional.softmax`` of an attribute chain of names; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def parse(text: str, arrays: Mapping[str, np.ndarray]) -> Call:
    """The call ``text`` with its arguments read (names from ``arrays``); a CallError says what
    cannot be read."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise CallError(f"{text!r} is not a Python call: {exc.msg} at column {exc.offset}") from None
    if not isinstance(tree, ast.Call):
        raise CallError(f"{text!r} is not a call; write the loss as you call it, e.g. 'torch.nn.BCELoss()(p, y)'")
    out = Call(text=text.strip(), binding_id="")
    func = tree.func
    if isinstance(func, ast.Call):  # a loss class: Loss(ctor...)(args...)
        out.is_class = True
        out.ctor_args = [_argument(a, arrays) for a in func.args]
        out.ctor_keywords = _keywords(func.keywords, arrays)
        func = func.func
    out.args = [_argument(a, arrays) for a in tree.args]
    out.keywords = _keywords(tree.keywords, arrays)
    out.binding_id, out.note = _loss(func, text)
    return out


def named_binding(text: str) -> str:
    """The binding id a call text names, its arguments left unread."""
    tree = ast.parse(text.strip(), mode="eval").body
    func = tree.func.func if isinstance(tree.func, ast.Call) else tree.func
    return _loss(func, text)[0]


def _loss(func: ast.AST, text: str) -> tuple[str, str | None]:
    backend = None
    if isinstance(func, ast.Subscript):  # keras.losses.Huber[jax]
        backend = dotted(func.slice) if not isinstance(func.slice, ast.Constant) else str(func.slice.value)
        func = func.value
    name = dotted(func)
    if name is None:
        raise CallError(f"cannot read the loss in {text!r}: expected a dotted name such as torch.nn.BCELoss")
    return binding_id(name, backend)


def binding_id(name: str, backend: str | None = None) -> tuple[str, str | None]:
    """The binding id of a loss as users name it (``nn.BCELoss``, ``tf.keras.losses.Huber``,
    ``keras.losses.Huber[jax]``), and what was assumed: a Keras loss without a backend runs on
    Keras' default one."""
    if backend is None and name.endswith("]") and "[" in name:
        name, backend = name[:-1].split("[", 1)
    on_tf = name.startswith("tf.keras.")
    for short, full in ALIASES:
        if name.startswith(short):
            name = full + name[len(short) :]
            break
    if name.startswith("optax.") and not name.startswith("optax.losses."):
        name = "optax.losses." + name.removeprefix("optax.")
    note = None
    if name.startswith(("keras.losses.", "keras.ops.")):
        if backend is None:
            backend = "tensorflow" if on_tf else os.environ.get("KERAS_BACKEND", "tensorflow")
            if not on_tf:
                note = (
                    f"{name} runs on Keras' default backend, {backend} (KERAS_BACKEND), here as "
                    f"{name}[{backend}]; name another as {name}[jax]"
                )
        name = f"{name}[{backend}]"
    return name, note


def _keywords(keywords: list[ast.keyword], arrays) -> dict[str, Any]:
    out = {}
    for kw in keywords:
        if kw.arg is None:
            raise CallError("**kwargs cannot be read; write each keyword out")
        out[kw.arg] = _argument(kw.value, arrays)
    return out


def _constant(node: ast.AST):
    """A Python constant (a number, string, bool, None, or a list of them), or a KeyError-free
    sentinel when the node is not one."""
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT


_NOT = object()


def _dtype(node: ast.AST) -> str:
    """A dtype as written: ``torch.float64``, ``tf.float16``, ``jnp.bfloat16``, ``"float64"``."""
    name = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else dotted(node)
    last = (name or "").rsplit(".", 1)[-1]
    if last not in DTYPE_NAMES:
        raise CallError(f"unknown dtype {ast.unparse(node)!r}; accepted: float64, float32, float16, bfloat16, int64")
    return DTYPE_NAMES[last]


def _argument(node: ast.AST, arrays: Mapping[str, np.ndarray]):
    """An argument node: an Argument (an array, with its transforms and cast) or a constant."""
    value = _constant(node)
    if value is not _NOT:
        if isinstance(value, list) or isinstance(value, tuple) and value and not isinstance(value[0], str):
            return Argument(_literal(value, ast.unparse(node)), ast.unparse(node))
        return value
    if isinstance(node, ast.Name):
        if node.id not in arrays:
            known = ", ".join(sorted(arrays)) or "none"
            raise CallError(f"the call names {node.id!r}, which no --array gives (arrays given: {known})")
        return Argument(np.asarray(arrays[node.id]), node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Name):
        raise CallError(f"cannot read {ast.unparse(node)!r}: give the negated array with --array")
    if isinstance(node, ast.Call):
        return _call_argument(node, arrays)
    raise CallError(f"cannot read the argument {ast.unparse(node)!r}: expected a name, a literal or a transform of one")


def _keyword_value(node: ast.Call, name: str, position: int | None = None):
    for kw in node.keywords:
        if kw.arg == name:
            return kw.value
    if position is not None and len(node.args) > position:
        return node.args[position]
    return None


def _call_argument(node: ast.Call, arrays) -> Argument:
    func = node.func
    name = dotted(func)
    # x.sigmoid(), x.double(), x.to(torch.float64), x.astype(...): a method of an array, not of a module
    if isinstance(func, ast.Attribute) and func.attr in METHODS and dotted(func.value) not in MODULES:
        inner = _argument(func.value, arrays)
        if not isinstance(inner, Argument):
            raise CallError(f"cannot read {ast.unparse(node)!r}: a method of a constant")
        method = func.attr
        if method in TRANSFORMS:
            _no_more(node, method, first=0)
            axis = _axis(node, position=0)
            return _with(inner, transform=(method, axis, ""))
        if method in CAST_METHODS:
            return _with(inner, cast=CAST_METHODS[method])
        if method in ("to", "astype", "type"):
            target = _keyword_value(node, "dtype", 0)
            if target is None:
                raise CallError(f"cannot read {ast.unparse(node)!r}: expected a dtype")
            return _with(inner, cast=_dtype(target))
        raise CallError(f"cannot read {ast.unparse(node)!r}: unknown method {method!r}")
    if name in MAKERS:
        if not node.args:
            raise CallError(f"cannot read {ast.unparse(node)!r}: no values")
        inner = _argument(node.args[0], arrays)
        if not isinstance(inner, Argument):
            inner = Argument(_literal(inner, ast.unparse(node.args[0])), ast.unparse(node.args[0]))
        target = _keyword_value(node, "dtype", None if name.startswith("torch") else 1)
        return _with(inner, cast=_dtype(target)) if target is not None else inner
    if name in CASTS:
        target = _keyword_value(node, "dtype", 1)
        if not node.args or target is None:
            raise CallError(f"cannot read {ast.unparse(node)!r}: expected {name}(x, dtype)")
        inner = _argument(node.args[0], arrays)
        return _with(inner, cast=_dtype(target))
    if name and "." in name:
        module, last = name.rsplit(".", 1)
        if module in TRANSFORM_MODULES and last in TRANSFORMS:
            given = node.args[0] if node.args else _keyword_value(node, "input") or _keyword_value(node, "x")
            if given is None:
                raise CallError(f"cannot read {ast.unparse(node)!r}: no argument")
            inner = _argument(given, arrays)
            if not isinstance(inner, Argument):
                raise CallError(f"cannot read {ast.unparse(node)!r}: a transform of a constant")
            _no_more(node, last, first=1)
            family = "keras" if module.startswith(("keras.", "tf.keras.")) else ""
            return _with(inner, transform=(last, _axis(node, position=1), family))
    accepted = ", ".join(TRANSFORMS)
    raise CallError(
        f"cannot read the argument {ast.unparse(node)!r}: the functions understood around an argument are "
        f"{accepted} and casts (.double(), .to(dtype), tf.cast, .astype)"
    )


def _no_more(node: ast.Call, transform: str, first: int) -> None:
    """A transform takes its array (at ``first`` positional arguments in) and, for a softmax, an
    axis: anything more is an argument the framework's call would not run as read here."""
    axes = 1 if "softmax" in transform else 0
    known = {"dim", "axis", "input", "x"} if axes else {"input", "x"}
    extra = [kw.arg for kw in node.keywords if kw.arg not in known]
    if len(node.args) > first + axes or extra:
        raise CallError(f"cannot read {ast.unparse(node)!r}: {transform} takes its array and, for a softmax, an axis")


def _axis(node: ast.Call, position: int) -> int | None:
    value = _keyword_value(node, "dim", position) or _keyword_value(node, "axis", None)
    if value is None:
        return None
    axis = _constant(value)
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise CallError(f"cannot read the axis of {ast.unparse(node)!r}: expected an integer")
    return axis


def _with(arg: Argument, *, transform=None, cast=None) -> Argument:
    if transform is not None:
        if arg.cast is not None and not arg.cast.startswith("float") and arg.cast != "bfloat16":
            raise CallError(f"{transform[0]} of an integer array ({arg.source}) is not a loss input")
        return Argument(arg.values, arg.source, (*arg.transforms, transform), arg.cast)
    if arg.transforms and cast is not None and cast != arg.cast:
        raise CallError(
            f"a cast after {arg.transforms[-1][0]} ({arg.source}) cannot be run as one dtype; cast the array first"
        )
    return Argument(arg.values, arg.source, arg.transforms, cast)


def _literal(value, source: str) -> np.ndarray:
    """A Python literal as an array of the kind written: int64 when every number is an integer
    (or a bool), else float64."""
    try:
        a = np.array(value)
    except (ValueError, OverflowError):
        a = None
    if a is None or a.dtype == object or a.dtype.kind not in "biuf":
        raise CallError(f"the literal {source} is not a rectangular array of numbers")
    return a.astype(np.int64 if a.dtype.kind in "biu" else np.float64)


# -- matching a call to a binding ------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """A binding's call text read as a call: its argument names in order, its keywords (a name
    for an array argument, a constant where the text fixes one), where its parameters go."""

    is_class: bool
    args: tuple  # str (an argument name) or _NOT (an expression the call form cannot give)
    keywords: Mapping[str, Any]  # keyword -> argument name (str in ARGS) or ("const", value)
    ctor_keywords: Mapping[str, Any]
    params_in_ctor: bool


@cache
def _shape(call: str) -> _Shape | None:
    text = call.format(kw=", __kw__=0", call_kw="").replace("(, ", "(")
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(tree, ast.Call):
        return None
    func, is_class, ctor = tree.func, False, {}
    if isinstance(func, ast.Call):
        is_class, ctor = True, {k.arg: k.value for k in func.keywords}
    args = tuple(a.id if isinstance(a, ast.Name) else _NOT for a in tree.args)
    if is_class and func.args:
        return None

    def read(kws):
        out = {}
        for k, v in kws.items():
            if k == "__kw__":
                continue
            c = _constant(v)
            if c is not _NOT:
                out[k] = ("const", c)
                continue
            if isinstance(v, ast.Name):
                out[k] = v.id
                continue
            # an argument the text converts (``where=where.astype(bool)``) is still that argument
            names = {n.id for n in ast.walk(v) if isinstance(n, ast.Name) and not hasattr(builtins, n.id)}
            out[k] = names.pop() if len(names) == 1 else _NOT
        return out

    return _Shape(is_class, args, read({k.arg: k.value for k in tree.keywords}), read(ctor), "__kw__" in ctor)


def bind(call: Call, candidates: list[Binding]) -> Bound:
    """The candidate binding (one id, one per spec) whose call text the user's call matches,
    with the call's arrays and parameters; a CallError says why none does."""
    problems = []
    for binding in candidates:
        try:
            return _bind_one(call, binding)
        except CallError as exc:
            problems.append(str(exc))
    if len(set(problems)) == 1:
        raise CallError(f"{call.text}: {problems[0]}")
    raise CallError(f"{call.text}: " + "; or ".join(dict.fromkeys(problems)))


def by_fixed_keywords(candidates: list[Binding], params: Mapping[str, Any]):
    """``--param from_logits=true`` given to a binding id whose call text fixes ``from_logits``
    (a Keras cross-entropy, bound once per value): the candidates bound with that value, and the
    parameters without it; None when no such keyword is given."""
    keys = [k for k in params if k in KEYWORD_DEFAULTS and not any(k in b.params for b in candidates)]
    if not keys:
        return None

    def fits(b: Binding) -> bool:
        shape = _shape(b.call)
        fixed = {**shape.keywords, **shape.ctor_keywords} if shape is not None else {}
        return all(isinstance(fixed.get(k), tuple) and fixed[k][1] == params[k] for k in keys)

    chosen = [b for b in candidates if fits(b)]
    if not chosen:
        shown = ", ".join(f"{k}={params[k]!r}" for k in keys)
        raise CallError(f"{candidates[0].id} is not bound with {shown}")
    return chosen, {k: v for k, v in params.items() if k not in keys}


def _bind_one(call: Call, binding: Binding) -> Bound:
    shape = _shape(binding.call)
    if shape is None or _NOT in shape.args:
        raise CallError(
            f"{binding.id} is called in a form the call text cannot give; name it as a binding id with "
            f"--input/--target/--array/--param"
        )
    if shape.is_class != call.is_class:
        form = "a class: Loss(...)(y_pred, y_true)" if shape.is_class else "a function: loss(...)"
        raise CallError(f"{binding.id} is {form}")
    if call.ctor_args:
        raise CallError(f"{binding.id}'s constructor takes keywords only here; got a positional argument")
    by_keyword = {v: k for k, v in binding.params.items()}  # framework keyword -> spec parameter
    arrays: dict[str, Argument] = {}
    params: dict[str, Any] = {}
    for i, arg in enumerate(call.args):
        if i >= len(shape.args):
            raise CallError(f"{binding.id} takes {len(shape.args)} positional arguments, got {len(call.args)}")
        _put(arrays, shape.args[i], arg, binding)
    template_args = set(shape.args) | {v for v in shape.keywords.values() if isinstance(v, str)}
    given_keywords = {**call.keywords, **call.ctor_keywords}
    fixed = {**shape.keywords, **shape.ctor_keywords}
    for key, value in given_keywords.items():
        in_ctor = key in call.ctor_keywords
        slot = fixed.get(key)
        if isinstance(slot, tuple):  # the binding's text fixes this keyword
            if _plain(value) != slot[1]:
                raise CallError(f"{binding.id} is bound with {key}={slot[1]!r}, not {key}={_plain(value)!r}")
            continue
        if isinstance(slot, str):
            _put(arrays, slot, value, binding)
            continue
        in_call = key in binding.call_keywords  # a class's call keyword (Keras' sample_weight)
        if key in by_keyword and (
            (in_ctor == shape.params_in_ctor and not in_call) or not shape.is_class or in_call and not in_ctor
        ):
            name = by_keyword[key]
            reverse = {v: k for k, v in binding.values.get(name, {}).items()}
            value = value.values if isinstance(value, Argument) else value
            params[name] = reverse.get(value, value) if not isinstance(value, np.ndarray) else value
            continue
        role = ARGUMENT_KEYWORDS.get(key)
        if role in template_args and not in_ctor:
            _put(arrays, role, value, binding)
            continue
        takes = sorted({*by_keyword, *(k for k, v in fixed.items() if not isinstance(v, tuple))})
        where = "constructor" if in_ctor else "call"
        raise CallError(
            f"{binding.id} takes no keyword {key!r} in its {where} here; bound keywords: {', '.join(takes) or 'none'}"
        )
    for key, slot in fixed.items():
        if isinstance(slot, tuple) and key not in given_keywords and KEYWORD_DEFAULTS.get(key, _NOT) != slot[1]:
            raise CallError(f"{binding.id} is bound with {key}={slot[1]!r}; the call leaves it at its default")
    missing = [a for a in shape.args if a not in arrays] + [
        v for v in shape.keywords.values() if isinstance(v, str) and v not in arrays
    ]
    if missing:
        raise CallError(f"{binding.id} needs the argument {missing[0]!r}, which the call does not give")
    casts = {a.cast for a in arrays.values() if a.cast and (a.cast.startswith("float") or a.cast == "bfloat16")}
    if len(casts) > 1:
        raise CallError(f"the arguments are cast to different dtypes ({', '.join(sorted(casts))}); use one")
    values = {
        name: arg.values
        if arg.cast is None
        else arg.values.astype(np.int64 if arg.cast.startswith("int") else np.float64)
        for name, arg in arrays.items()
    }
    transforms = {n: a.transforms for n, a in arrays.items() if a.transforms}
    return Bound(binding, values, params, transforms, next(iter(casts), None))


def _cast(arg: Argument) -> np.ndarray:
    """An argument's values in the kind its cast asks for (the dtype itself is the side's)."""
    if arg.cast is None:
        return arg.values
    return arg.values.astype(np.int64 if arg.cast.startswith("int") else np.float64)


def _put(arrays: dict, name, value, binding: Binding) -> None:
    if name is _NOT:
        raise CallError(f"{binding.id}: that argument is an expression the call text cannot give")
    if name in arrays:
        raise CallError(f"{binding.id}: the argument {name!r} is given twice")
    if not isinstance(value, Argument):
        value = Argument(_literal(value, repr(value)), repr(value))
    arrays[name] = value


def _plain(value):
    return value.values.tolist() if isinstance(value, Argument) else value
