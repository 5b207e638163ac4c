"""What a run covers: the selected bindings, dtypes, and the cases of each spec."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import numpy as np

from lossparity.conformance import registry
from lossparity.conformance.generate import BUCKETS, draw_cases, is_domain, more_cases
from lossparity.conformance.options import DEFAULT_EXAMPLES, DEVICES
from lossparity.conformance.registry import adapter_modules, all_bindings, broken_adapters, family
from lossparity.conformance.specs import SPECS
from lossparity.core.dtypes import DTYPES
from lossparity.core.model import Binding, Case, _same


def all_modes() -> tuple[str, ...]:
    """Every execution mode of the installed adapters, in their order."""
    return tuple(dict.fromkeys(m for module in adapter_modules().values() for m in module.ADAPTER.modes))


class SelectionError(ValueError):
    """An unknown framework, loss or dtype name: the message lists what is accepted."""


@dataclass(frozen=True)
class Selection:
    frameworks: tuple[str, ...] | None = None  # None: all; "keras" names keras[tensorflow], keras[jax], ...
    losses: tuple[str, ...] | None = None  # globs over spec names and binding ids
    dtypes: tuple[str, ...] = DTYPES
    examples: int = DEFAULT_EXAMPLES
    seed: int = 0
    modes: tuple[str, ...] | None = None  # None: each framework's modes but the opt-in ones
    device: str = "cpu"
    tf32: bool = False
    #: The generated cases drawn so far, by (spec, bucket): drawn once per selection.
    _drawn: dict = field(default_factory=dict, compare=False, repr=False)

    def validate(self) -> Selection:
        known = set(adapter_modules()) | set(broken_adapters())
        known |= {family(f) for f in known}
        for f in self.frameworks or ():
            if f not in known:
                raise SelectionError(f"unknown framework {f!r}; choose from {', '.join(sorted(known))}")
        names = set(SPECS) | {b.id for b in all_bindings()}
        for pattern in self.losses or ():
            if not any(fnmatchcase(n, pattern) for n in names):
                raise SelectionError(
                    f"no loss spec or binding matches {pattern!r}; "
                    f"specs are {', '.join(sorted(SPECS))} (see 'lossparity list')"
                )
        for d in self.dtypes:
            if d not in DTYPES:
                raise SelectionError(f"unknown dtype {d!r}; choose from {', '.join(DTYPES)}")
        modes = all_modes()
        for m in self.modes or ():
            if m not in modes:
                raise SelectionError(f"unknown mode {m!r}; choose from {', '.join(modes)}")
        if self.device not in DEVICES:
            raise SelectionError(f"unknown device {self.device!r}; choose from {', '.join(DEVICES)}")
        if self.examples < 0:
            raise SelectionError(f"--examples must be >= 0, got {self.examples}")
        return self

    def takes(self, framework: str) -> bool:
        """Whether the run covers ``framework`` (named, or its family named: ``keras``)."""
        return not self.frameworks or framework in self.frameworks or family(framework) in self.frameworks

    def modes_of(self, adapter) -> tuple[str, ...]:
        """The modes this run uses for a framework: those asked for, or all but the opt-in ones."""
        if self.modes is None:
            return tuple(m for m in adapter.modes if m not in adapter.opt_in_modes)
        return tuple(m for m in adapter.modes if m in self.modes)

    def bindings(self) -> list[Binding]:
        out = []
        for framework in adapter_modules():
            if not self.takes(framework):
                continue
            for b in registry.bindings(framework):
                if self.losses and not any(fnmatchcase(b.spec, p) or fnmatchcase(b.id, p) for p in self.losses):
                    continue
                out.append(b)
        return out

    def cases(self, spec_name: str) -> list[Case]:
        """The spec's edge table and its generated cases (``examples`` in all, in buckets)."""
        spec = SPECS[spec_name]
        return [*spec.edges, *self._generated(spec_name)]

    def cases_for(self, binding: Binding) -> list[Case]:
        """The cases the binding takes: its spec's edge rows, and ``examples`` generated cases.

        A binding takes the generated cases whose parameters it can express
        (``Binding.takes``: its parameters and input rank), which may be the structure of one bucket only (a loss
        without a reduction keyword): the cases of its buckets are then drawn further, until
        it has ``examples``; one that takes no bucket's structure is given further buckets,
        until one fits. Bindings with the same buckets get the same cases, so they can be
        compared case by case. The domain buckets' cases it takes (``generate.domain``) come beside
        these, listed after them."""
        spec = SPECS[binding.spec]

        def takes(case: Case) -> bool:
            return binding.takes(spec, case)

        edges = [c for c in spec.edges if takes(c)]
        drawn = self._generated(spec.name)
        # the domain buckets' cases come beside the ``examples`` (a tenth more): they never stand in for
        # the standard buckets' further cases, which stay those they were without them
        domain = [c for c in drawn if is_domain(c.origin["bucket"]) and takes(c)]
        generated = [c for c in drawn if not is_domain(c.origin["bucket"]) and takes(c)]
        buckets = list(dict.fromkeys(c.origin["bucket"] for c in generated))
        # further buckets too where its own run short: a binding that takes only some of a bucket's
        # cases (tf.nn.weighted_cross_entropy_with_logits needs a pos_weight) still gets ``examples``
        further = range(BUCKETS, BUCKETS + _FURTHER_BUCKETS) if self.examples else ()
        fitting = []
        for b in [*buckets, *further]:
            if len(generated) >= self.examples:
                break
            taken = [c for c in self._more(spec.name, b) if takes(c)]
            fitting += [b] if taken else []
            generated += taken[: self.examples - len(generated)]
        # a bucket whose draws repeat before ``examples`` distinct cases: drawn again, further parts
        for part in range(1, _FURTHER_PARTS + 1):
            for b in fitting:
                if len(generated) >= self.examples:
                    break
                taken = [c for c in self._more(spec.name, b, part) if takes(c)]
                generated += taken[: self.examples - len(generated)]
        varying = self._varying(spec, binding, takes, generated) if self.examples else []
        return [*edges, *generated, *domain, *varying]

    def _varying(self, spec, binding: Binding, takes, generated: list[Case]) -> list[Case]:
        """Further cases so that each parameter the binding binds is varied by its generated
        cases where the spec's generator varies it at all: one its ``examples`` cases never set
        (their buckets all fell to other structures: Keras' weighted bucket, optax's masks) gets
        the cases of the first further bucket that sets it, a tenth of ``examples`` (at least 1).
        Added, never swapped in: the other cases stay as they are. ``generated`` holds the standard
        buckets' cases only: a domain bucket that varies the parameter too (``generate.domain``) takes
        none of these away."""
        out: list[Case] = []
        seen = {c.id for c in generated}
        for name in binding.params:
            if any(_varies(c, name, spec) for c in (*generated, *out)):
                continue
            for b in range(BUCKETS, BUCKETS + _FURTHER_BUCKETS):
                taken = [
                    c for c in self._more(spec.name, b) if c.id not in seen and _varies(c, name, spec) and takes(c)
                ]
                if taken:
                    out += taken[: max(1, self.examples // 10)]
                    seen.update(c.id for c in out)
                    break
        return out

    def _generated(self, spec_name: str) -> tuple[Case, ...]:
        if (spec_name, None) not in self._drawn:
            spec = SPECS[spec_name]
            self._drawn[spec_name, None] = (
                _cached(
                    spec,
                    ("drawn", self.examples, self.seed),
                    lambda: tuple(draw_cases(spec_name, spec.generate, examples=self.examples, seed_value=self.seed)),
                )
                if self.examples
                else ()
            )
        return self._drawn[spec_name, None]

    def _more(self, spec_name: str, bucket: int, part: int = 0) -> tuple[Case, ...]:
        if (spec_name, bucket, part) not in self._drawn:
            earlier = [c for p in range(part) for c in self._more(spec_name, bucket, p)]
            self._drawn[spec_name, bucket, part] = _cached(
                SPECS[spec_name],
                ("more", self.examples, self.seed, bucket, part),
                lambda: tuple(
                    more_cases(
                        spec_name,
                        SPECS[spec_name].generate,
                        bucket=bucket,
                        examples=self.examples,
                        seed_value=self.seed,
                        drawn=[*self._generated(spec_name), *earlier],
                        part=part,
                        start=len(earlier),
                    )
                ),
            )
        return self._drawn[spec_name, bucket, part]

    def prefetch(self, worker: int = 0, workers: int = 1) -> None:
        """Draw the generated cases of every selected spec now, the ``worker``-th of ``workers``
        starting its own share of the specs: each test process (xdist worker) collects every
        binding, and with the cache on (``_cached``) what one worker drew the others load, so on
        an empty cache the workers draw the specs between them instead of each drawing all."""
        specs = list(dict.fromkeys(b.spec for b in self.bindings()))
        start = len(specs) * worker // max(workers, 1)
        for name in specs[start:] + specs[:start]:
            self._generated(name)


@functools.cache
def _fingerprint() -> str:
    """What the generated cases depend on: lossparity's own source (the specs, every one of them
    declared by ``conformance/families``, their generators, the model, the oracle) and the
    versions of Hypothesis, NumPy and Python. Any change draws the cases anew."""
    import hashlib
    import sys
    from pathlib import Path

    import hypothesis
    import numpy as np

    from lossparity import core, reference

    folders = (Path(__file__).parent, Path(core.__file__).parent, Path(reference.__file__).parent)
    digest = hashlib.sha256(f"{hypothesis.__version__} {np.__version__} {sys.version}".encode())
    for path in sorted(p for folder in folders for p in folder.rglob("*.py")):
        digest.update(str(path).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:24]


def _cached(spec, key: tuple, draw) -> tuple[Case, ...]:
    """``draw()``'s cases, kept in lossparity's cache (``lossparity.core.cache``, folder
    ``cases``) under the spec, ``key`` and the :func:`_fingerprint` of what draws them: drawing
    is Hypothesis' work, tens of seconds for a default run's specs, and the same every time.
    Written whole or not at all (a rename); a file that does not load is drawn again."""
    import hashlib
    import os
    import pickle

    from lossparity.core.cache import cache_dir

    root = cache_dir("cases")
    if root is None:
        return draw()
    # the strategy's own text too (``keras_sample_weights(residuals(weights=True, delta=True))``):
    # a generator swapped in at run time (a test's) is not another's cases
    strategy = hashlib.sha256(repr(spec.generate).encode()).hexdigest()[:12]
    path = root / _fingerprint() / f"{spec.name}-{strategy}-{'-'.join(map(str, key))}.pickle"
    try:
        return pickle.loads(path.read_bytes())
    except Exception:  # noqa: BLE001 - absent, partial or from another version: drawn again
        pass
    cases = draw()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(cases, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, path)
    except OSError:  # a read-only or full disk: the run goes on uncached
        pass
    return cases


def _varies(case: Case, name: str, spec) -> bool:
    """Whether ``case`` sets parameter ``name`` to other than the spec's default (an array: set)."""
    if name not in case.params:
        return False
    value = case.params[name]
    return isinstance(value, np.ndarray) or not _same(value, spec.defaults.get(name))


#: How many structures past the standard buckets a binding that takes none of theirs is offered.
_FURTHER_BUCKETS = 12
#: Further draws of a bucket for a binding it leaves short (``cases_for``).
_FURTHER_PARTS = 3
