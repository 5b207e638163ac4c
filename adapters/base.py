"""What every adapter shares: running a binding's call text, reproducers, outcomes.

An adapter module (``adapters/torch.py`` and its siblings, or a third party's module
registered under the entry-point group ``lossparity.adapters``) defines ``ADAPTER``, an
instance of a :class:`FrameworkAdapter` subclass, and ``BINDINGS``, a list of
:class:`~lossparity.core.model.Binding`; an entry point may instead name a
:class:`AdapterEntry` object holding the two (``adapters/keras.py``, one per Keras backend).
Our own adapters declare no bindings: theirs are declared in ``conformance/families/`` and joined
to them by ``conformance/registry.py``. The adapter module is the only place that imports its
framework, and it does so lazily: when a run first checks its bindings exist.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import importlib.metadata
import importlib.util
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from lossparity.core.model import ARRAY_PARAMS, Binding, Case, canonical_layout, framework_layout


@dataclass
class Outcome:
    """What a binding returned: a value (float64 copy of the result, and the result's dtype) or
    an error; and the gradients of the summed loss, or why there are none."""

    value: np.ndarray | None = None
    dtype: str | None = None
    error_type: str | None = None  # the raised class's name
    error_mro: tuple[str, ...] = ()  # its class and bases, to match documented error classes
    error_message: str | None = None
    seconds: float = 0.0
    #: Compilations (jit compiles, tf.function traces) the call caused: nonzero for the first
    #: case of a shape bucket in a compiled mode, zero for the cases that reuse it.
    compiled: int = 0
    #: d sum(loss) / d name for each differentiated argument ("input", "target"), canonical
    #: layout, as (float64 copy, dtype); or the error text "ErrorClass: message".
    grads: dict[str, tuple[np.ndarray, str] | str] = field(default_factory=dict)


@dataclass
class PreparedCase:
    """A case made ready for one binding in one dtype: what every mode's call of it shares, so a
    run prepares it once for all the case's modes (``runner.evaluate``) and passes it to each call."""

    source: str  # the call text, the case's keyword arguments filled in
    arrays: dict[str, np.ndarray]  # the case's arrays in the framework's layout, C-contiguous
    args: list[str]  # the names of those the call takes, in ``loss_fn``'s order
    #: The framework's arrays, made at the first call and kept for the next ones where the
    #: framework's arrays are immutable (``FrameworkAdapter.reuses_arrays``); see ``_tensors``.
    tensors: dict = field(default_factory=dict)


@functools.cache
def _distributions() -> dict:
    """import name -> the distributions that provide it (``tensorflow`` -> ``tensorflow-cpu``)."""
    return importlib.metadata.packages_distributions()


def py_literal(a: np.ndarray) -> str:
    """Python source for a nested list holding exactly ``a``'s values (repr round-trips float64)."""

    def one(x):
        if isinstance(x, list):
            return "[" + ", ".join(one(v) for v in x) + "]"
        if isinstance(x, float) and not math.isfinite(x):
            return f"float('{x}')"
        return repr(x)

    return one(np.asarray(a).tolist())


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else ""


@dataclass(frozen=True)
class AdapterEntry:
    """An adapter and its bindings, for an entry point that names an object rather than a
    module (``lossparity.adapters.keras:ON_JAX``: one module, three backends)."""

    ADAPTER: FrameworkAdapter
    BINDINGS: list
    EXCLUDED: dict = field(default_factory=dict)


class FrameworkAdapter:
    """Base class: subclasses set ``framework``, ``module``, ``imports`` and convert arrays."""

    framework: str = ""
    #: The worker process its calls run in: adapters that share one share their imports; a
    #: framework that must be imported alone (Keras, whose backend is fixed per process) names its own.
    process: str = "main"
    #: The compiler whose caches its calls fill (``"xla"``: JAX's, which eager JAX fills per
    #: primitive, shape and dtype, and its persistent cache on disk; ``"tensorflow"``: traces),
    #: shared by the adapters built on it (Keras on that backend); None: it compiles nothing.
    #: A run gives a compiler's bindings of one dtype to one worker (``plugin._group``).
    compiler: str | None = None
    module: str = ""  # the import name whose presence makes this adapter available
    imports: str = ""  # source run before every call and printed atop every reproducer
    modes: tuple[str, ...] = ("eager",)  # the execution modes a binding can be run in
    opt_in_modes: tuple[str, ...] = ()  # modes a run uses only when they are asked for
    differentiates: bool = True  # False: only values are checked (``program`` need not build gradients)
    #: How the framework spells each of ``core.model.TRANSFORMS`` around an argument ``{x}``
    #: (``{axis}``: the axis a softmax takes, the class axis of the framework's layout).
    transforms: Mapping[str, str] = {}

    def __init__(self):
        self._namespace: dict | None = None
        self._compiled: dict[tuple, dict] = {}
        self.device, self.tf32 = "cpu", False

    # -- device -------------------------------------------------------------------------
    def use(self, device: str, tf32: bool = False) -> None:
        """Run on ``device`` (``cpu`` or ``cuda``); ``tf32`` lets float32 matrix products use
        TensorFloat-32 (off for correctness runs)."""
        if (device, tf32) != (self.device, self.tf32):
            self.device, self.tf32 = device, tf32
            self._compiled.clear()
            if self._namespace is not None:
                exec(self.settings(), self._namespace)  # noqa: S102 - our own constant source

    def device_unavailable(self) -> str | None:
        """None when the framework can run on ``self.device``, else why not."""
        return None if self.device == "cpu" else f"the {self.framework} adapter does not support {self.device}"

    def settings(self) -> str:
        """Source applying the device's precision settings (TF32), run after ``imports`` and
        printed in every reproducer of a run on that device."""
        return ""

    # -- availability -------------------------------------------------------------------
    def unavailable(self) -> str | None:
        """None when the framework can be imported, else the reason it is a skipped column."""
        if importlib.util.find_spec(self.module) is None:
            return f"{self.module} is not installed"
        return None

    def missing(self, binding: Binding) -> str | None:
        """None when the installed framework has the binding's callable, else why not.

        A binding id is the dotted path users call (``optax.losses.safe_softmax_cross_entropy``);
        an older release that lacks it makes the binding a skipped cell, not a failure per case.
        """
        # "...loss(cosine)", "...Huber[jax]", "...SparseCategoricalCrossentropy+class_weight"
        found = self._resolve(re.split(r"[\[(+]", binding.id)[0])
        return found if isinstance(found, str) else None

    def _resolve(self, path: str):
        """``(object, its parent)`` at the dotted ``path`` from the adapter's imports, None when
        ``path`` does not start at one of them (nothing to check), or why it does not exist."""
        head, *rest = path.split(".")
        obj = self.namespace().get(head)
        if obj is None:
            return None
        parent, path = None, head
        for part in rest:
            path += "." + part
            parent = obj
            try:
                obj = getattr(obj, part)
            except AttributeError:
                try:
                    obj = importlib.import_module(path)
                except ImportError:
                    root = self.namespace()[head]
                    name = getattr(root, "__name__", head).split(".")[0]
                    version = getattr(root, "__version__", "")
                    return f"{path} does not exist in {name} {version}".rstrip()
        return obj, parent

    def signature(self, api: str) -> dict | None:
        """The public signature of the callable at the dotted path ``api`` (a binding id without
        its ``[backend]`` or ``(variant)``), by introspection (imports the framework):
        ``{"call": [...], "init": [...] | None}``, each a list of ``(name, kind, default)``
        (``kind`` an ``inspect.Parameter`` kind's name, ``default`` its repr or None where the
        parameter is required). For a function ``call`` is its own parameters; for a class
        ``init`` is its constructor's and ``call`` its instances' (``__call__``, or ``forward`` /
        ``call`` where ``__call__`` only passes ``*args, **kwargs`` on: a ``torch.nn.Module``);
        for a method (``Categorical.entropy``) ``init`` is its class's constructor and ``call``
        the method's own, ``self`` left out. None where ``api`` does not resolve or has no
        signature to read (a NumPy ufunc, a builtin).
        ``conformance/parameters.py`` requires each parameter to be bound or excluded."""
        import inspect

        found = self._resolve(api)
        if not isinstance(found, tuple):
            return None
        obj, parent = found

        def params(fn, drop_self: bool) -> list:
            out = list(inspect.signature(fn).parameters.values())[int(drop_self) :]
            return [(p.name, p.kind.name, None if p.default is p.empty else repr(p.default)) for p in out]

        def opaque(fn) -> bool:
            kinds = {p.kind for p in inspect.signature(fn).parameters.values()} - {
                inspect.Parameter.POSITIONAL_OR_KEYWORD
            }
            return kinds <= {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD} and bool(kinds)

        try:
            if inspect.isclass(obj):
                call = obj.__call__
                if opaque(call):
                    call = getattr(obj, "forward", None) or getattr(obj, "call", call)
                return {"init": params(obj, False), "call": params(call, True)}
            if inspect.isclass(parent) and inspect.isfunction(obj):
                return {"init": params(parent, False), "call": params(obj, True)}
            return {"init": None, "call": params(obj, False)}
        except (TypeError, ValueError):  # inspect.signature: "no signature found for builtin ..."
            return None

    def public_losses(self) -> list[str]:
        """Every public loss API of the installed framework, as binding ids, found by
        introspection (imports the framework): the coverage test requires each to be bound or
        excluded with a reason (the adapter module's ``EXCLUDED``), so an upgrade that adds a
        loss fails it. A third-party adapter may leave this empty."""
        return []

    def versions(self) -> dict[str, str]:
        """The installed version of each of ``version_modules()``, read from the distributions'
        metadata: nothing is imported (the run's parent process never imports a framework)."""
        out = {}
        for name in self.version_modules():
            for dist in _distributions().get(name, ()):
                try:
                    out[name] = importlib.metadata.version(dist)
                    break
                except importlib.metadata.PackageNotFoundError:
                    pass
        return out

    def version_modules(self) -> tuple[str, ...]:
        return (self.module,)

    # -- per framework ------------------------------------------------------------------
    def to_framework(self, array: np.ndarray, dtype: str):
        raise NotImplementedError

    def literal(self, name: str, array: np.ndarray, dtype: str) -> str:
        """Source that builds the same framework value as ``to_framework``."""
        raise NotImplementedError

    def to_numpy(self, result) -> tuple[np.ndarray, str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Framework settings applied once before the first call (determinism, precision)."""

    def held_dtype(self, dtype: str, mode: str) -> str:
        """The dtype the framework holds float arrays of ``dtype`` in, in ``mode``: ``dtype``
        itself unless a documented configuration narrows it (JAX without ``jax_enable_x64``, its
        default, makes a float64 array float32). The binding then computes from that dtype."""
        return dtype

    def mode_context(self, mode: str):
        """The configuration ``mode`` runs under, entered around each call (arrays made, functions
        traced and run): none by default; JAX's ``jit_x64`` mode is ``jax.enable_x64(True)``."""
        return contextlib.nullcontext()

    def mode_settings(self, mode: str) -> str:
        """Source that sets ``mode``'s configuration, printed atop its reproducers."""
        return ""

    def program(self, args: list[str], wrt: list[str], mode: str) -> str:
        """Source run after ``def loss_fn(<args>): return <call>``: it wraps ``loss_fn`` for
        ``mode`` and, when ``wrt`` names arguments, defines ``value_and_grad(<args>)``, which
        returns the loss and the list of gradients of its sum with respect to those arguments
        (zeros where the loss does not depend on one). The default: eager values only."""
        if wrt or mode != "eager":
            raise NotImplementedError(f"the {self.framework} adapter has no {mode} mode or gradients")
        return ""

    #: Whether ``compilations`` counts every compilation in the process (JAX's eager mode
    #: compiles each primitive per shape, outside any function of ours) rather than those of
    #: the functions it is given.
    counts_process_wide: bool = False

    def compilations(self, functions: dict) -> int:
        """A count that grows by one with each compilation or trace the framework makes, for the
        functions of one call text (``functions``, from ``_functions``) or process-wide
        (``counts_process_wide``); 0 for a framework that never compiles. ``call`` records
        how much each call made it grow: the compile count of a run."""
        return 0

    # -- shared machinery ---------------------------------------------------------------
    def namespace(self) -> dict:
        if self._namespace is None:
            ns: dict = {}
            exec(self.imports + self.settings(), ns)  # noqa: S102 - our own constant source
            self._namespace = ns
            self.prepare()
        return self._namespace

    def framework_arrays(self, binding: Binding, case: Case, dtype: str) -> dict[str, np.ndarray]:
        """The case's arrays in the layout the framework reads (class axis moved if needed),
        C-contiguous: a tensor built from them has the same strides as the one a reproducer
        builds from a literal."""
        arrays = framework_layout(
            case.in_dtype(dtype),
            binding.conventions.get("class_axis", -1),
            binding.conventions.get("time_major", False),
        )
        return {n: a if a.flags.c_contiguous else a.copy(order="C") for n, a in arrays.items()}

    def source(self, binding: Binding, case: Case) -> str:
        """The call expression with the case's keyword arguments filled in."""
        parts, call_parts = [], []
        for key, value in binding.kwargs(case.params).items():
            spec_name = next((p for p, k in binding.params.items() if k == key), key)
            into = call_parts if key in binding.call_keywords else parts
            into.append(f"{key}={spec_name}" if spec_name in ARRAY_PARAMS else f"{key}={value!r}")
        text = binding.call.format(kw="".join(", " + p for p in parts), call_kw="".join(", " + p for p in call_parts))
        text = text.replace("(, ", "(")
        return self.transformed(text, case, binding) if case.transforms else text

    def spelling(self, family: str) -> Mapping[str, str]:
        """The transforms as the user's call spells them: ``family`` is ``"keras"`` for
        ``keras.ops.sigmoid`` (which a Keras adapter keeps apart from its backend's own
        ``tf.sigmoid``), else the framework's own."""
        return self.transforms

    def transformed(self, text: str, case: Case, binding: Binding) -> str:
        """The call text with each argument that the case transforms wrapped in the framework's
        own function (``F.binary_cross_entropy(torch.sigmoid(input), target)``), so the
        framework computes the transform, in the case's dtype, inside the call."""
        wrapped = {}
        for name, steps in case.transforms.items():
            expr = name
            for transform, axis, *family in steps:
                spelled = self.spelling(family[0] if family else "")
                if transform not in spelled:
                    raise ValueError(f"the {self.framework} adapter has no {transform}")
                if axis is None:  # the class axis in the framework's layout (torch: dim 1 of a batch)
                    batched = np.ndim(case.arrays.get(name, ())) >= 2
                    axis = 1 if binding.conventions.get("class_axis") == 1 and batched else -1
                expr = spelled[transform].format(x=expr, axis=axis)
            wrapped[name] = ast.parse(expr, mode="eval").body

        class Wrap(ast.NodeTransformer):
            def visit_Name(self, node):
                return wrapped.get(node.id, node) if isinstance(node.ctx, ast.Load) else node

        return ast.unparse(Wrap().visit(ast.parse(text, mode="eval")))

    def used_arrays(self, binding: Binding, case: Case, arrays: Mapping[str, np.ndarray]) -> list[str]:
        names = ["input", "target"] + [n for n in case.arrays if n not in ("input", "target")]
        names += [p for p in ARRAY_PARAMS if p in case.params and (p in binding.params or p in binding.requires)]
        return [n for n in names if n in arrays]

    def _functions(self, source: str, args: list[str], wrt: list[str], mode: str) -> dict:
        """``loss_fn`` and ``value_and_grad`` of one call text, compiled once per mode (so a
        jitted function is reused across cases and traced per shape by the framework)."""
        key = (source, tuple(args), tuple(wrt), mode)
        found = self._compiled.get(key)
        if found is None:
            found = dict(self.namespace())
            text = self.function_source(source, args, wrt, mode)
            exec(compile(text, f"<{mode}: {source}>", "exec"), found)  # noqa: S102 - our own source
            self._compiled[key] = found
        return found

    def release(self) -> None:
        """Forget the compiled functions: a run calls this after each batch (one binding in one
        dtype), whose functions the next batch never calls again, so a worker's memory stays that
        of one batch, not the run's (each traced or jitted function holds its graphs and executables)."""
        self._compiled.clear()

    #: Whether a framework array can be given to several calls (JAX's and TensorFlow's are
    #: immutable); torch's gradient marks its leaves, so each call gets fresh tensors.
    reuses_arrays: bool = False

    def _tensors(self, prepared: PreparedCase, dtype: str, mode: str = "eager") -> dict:
        """The framework arrays of a call: made once per prepared case, for all its modes and
        retries, where the framework allows it (``reuses_arrays``), else fresh; apart for the
        modes that hold them in another dtype (``held_dtype``)."""
        if not self.reuses_arrays:
            return {n: self.to_framework(prepared.arrays[n], dtype) for n in prepared.args}
        held = prepared.tensors.setdefault(self.held_dtype(dtype, mode), {})
        return {
            n: held[n] if n in held else held.setdefault(n, self.to_framework(prepared.arrays[n], dtype))
            for n in prepared.args
        }

    def prepare_case(self, binding: Binding, case: Case, dtype: str) -> PreparedCase:
        """The call text, framework-layout arrays and argument names of a case: the same in each
        of its modes, so a caller running several prepares it once and gives it to each ``call``."""
        arrays = self.framework_arrays(binding, case, dtype)
        return PreparedCase(self.source(binding, case), arrays, self.used_arrays(binding, case, arrays))

    def function_source(self, source: str, args: list[str], wrt: list[str], mode: str) -> str:
        sig = ", ".join(args)
        return f"def loss_fn({sig}):\n    return {source}\n\n" + self.program(args, wrt, mode)

    def call(
        self,
        binding: Binding,
        case: Case,
        dtype: str,
        *,
        mode: str = "eager",
        wrt: tuple[str, ...] = (),
        prepared: PreparedCase | None = None,
    ) -> Outcome:
        """Run the binding on the case for real in ``mode`` and capture value or error, and the
        gradients of the summed loss with respect to the arguments named in ``wrt``.
        ``prepared``: the case as ``prepare_case`` made it for this binding and dtype (made here
        when not given).

        Value and gradients come from one call. If that raises, the value is taken alone, and
        a failed gradient with respect to the target is retried with respect to the input only,
        so that each part's own error is what is recorded.
        """
        if prepared is None:
            prepared = self.prepare_case(binding, case, dtype)
        source, arrays, args = prepared.source, prepared.arrays, prepared.args
        wrt = [n for n in wrt if n in args]

        outcome = Outcome()
        counted: list[tuple[dict, int]] = []  # the functions called, with their compile count before

        def run(wrt_: list[str]):
            with self.mode_context(mode):
                functions = self._functions(source, args, wrt_, mode)
                counted.append((functions, self.compilations(functions)))
                given = self._tensors(prepared, dtype, mode)
                return functions["value_and_grad"](**given) if wrt_ else (functions["loss_fn"](**given), [])

        def done() -> Outcome:
            outcome.seconds = time.perf_counter() - start
            if self.counts_process_wide:  # one counter: what it grew by over the whole call
                outcome.compiled = self.compilations({}) - counted[0][1] if counted else 0
            else:
                outcome.compiled = sum(self.compilations(f) - before for f, before in counted)
            return outcome

        start = time.perf_counter()
        try:
            value, grads = run(wrt)
            outcome.value, outcome.dtype = self.to_numpy(value)
        except Exception as exc:  # noqa: BLE001 - every framework error is an outcome
            first = exc
            grads = None
        if grads is None:
            try:
                value, _ = run([])
                outcome.value, outcome.dtype = self.to_numpy(value)
            except Exception as exc:  # noqa: BLE001
                outcome.error_type, outcome.error_mro = type(exc).__name__, tuple(c.__name__ for c in type(exc).__mro__)
                outcome.error_message = _first_line(exc)
                return done()
            # A weight the framework does not differentiate must not cost the arguments it does:
            # the arguments are retried without the weights, and each weight alone.
            weights = [n for n in wrt if n in ARRAY_PARAMS]
            rest = [n for n in wrt if n not in ARRAY_PARAMS]
            if weights and rest:
                try:
                    _, got = run(rest)
                    outcome.grads = self._grads(binding, rest, got, arrays, dtype)
                except Exception as exc:  # noqa: BLE001
                    self._retry_input(binding, outcome, run, rest, exc, arrays, dtype)
                for n in weights:
                    try:
                        _, (g,) = run([n])
                        outcome.grads.update(self._grads(binding, [n], [g], arrays, dtype))
                    except Exception as exc:  # noqa: BLE001
                        outcome.grads[n] = _describe(exc)
            else:
                self._retry_input(binding, outcome, run, wrt, first, arrays, dtype)
        else:
            outcome.grads = self._grads(binding, wrt, grads, arrays, dtype)
        return done()

    def _retry_input(self, binding, outcome, run, wrt, first, arrays, dtype) -> None:
        """The gradients after ``first`` was raised taking them all: each gets that error, but
        the input's is taken again alone (a target's gradient may be what failed)."""
        outcome.grads = {n: _describe(first) for n in wrt}
        if len(wrt) > 1:  # the input's gradient may still come
            try:
                _, (g,) = run(wrt[:1])
                outcome.grads.update(self._grads(binding, wrt[:1], [g], arrays, dtype))
            except Exception as exc:  # noqa: BLE001
                outcome.grads[wrt[0]] = _describe(exc)

    def _grads(self, binding, wrt, grads, arrays, dtype) -> dict:
        out = {}
        for name, g in zip(wrt, grads):
            value, gdtype = (np.zeros(arrays[name].shape), dtype) if g is None else self.to_numpy(g)
            out[name] = value, gdtype
        axis, time_major = binding.conventions.get("class_axis", -1), binding.conventions.get("time_major", False)
        moved = canonical_layout({n: v for n, (v, _) in out.items()}, axis, time_major) if "input" in out else {}
        return {n: (moved.get(n, v), d) for n, (v, d) in out.items()}

    def reproducer(
        self, binding: Binding, case: Case, dtype: str, *, mode: str = "eager", wrt: tuple[str, ...] = ()
    ) -> str:
        """A copy-paste script that runs the binding as the suite did and prints the value
        exactly (and the gradients of the summed loss with respect to ``wrt``)."""
        prepared = self.prepare_case(binding, case, dtype)
        source, arrays, args = prepared.source, prepared.arrays, prepared.args
        wrt = [n for n in wrt if n in args]
        lines = [(self.imports + self.settings() + self.mode_settings(mode)).strip(), ""]
        lines += [self.literal(n, arrays[n], dtype) for n in args]
        call = ", ".join(args)
        if not wrt and mode == "eager":  # the plain call says it all
            return "\n".join(lines + [f"loss = {source}", self.print_statement("loss")]) + "\n"
        lines += ["", self.function_source(source, args, wrt, mode).rstrip(), ""]
        if wrt:
            lines += [f"loss, grads = value_and_grad({call})", self.print_statement("loss")]
            lines += [
                f"print('d sum(loss) / d {n}:'); " + self.print_statement(f"grads[{i}]") for i, n in enumerate(wrt)
            ]
        else:
            lines += [f"loss = loss_fn({call})", self.print_statement("loss")]
        return "\n".join(lines) + "\n"

    def print_statement(self, name: str) -> str:
        return f"print(np.asarray({name}, dtype=np.float64).tolist())"
