"""Crash isolation: framework calls run in a child process that may die without taking the run along.

A conformance suite pokes frameworks where they break, and frameworks break hard: they
segfault, abort, hang, allocate without bound. Every framework call therefore happens in a
child interpreter (``python -m lossparity.conformance.sandbox``), one per test process (per
xdist worker) and adapter process key (each Keras backend has its own, since Keras fixes its
backend at import), started on first use and kept for the cases that follow, so imports and compiled
functions are paid for once. The parent sends a batch (one binding's cases in one dtype, each
in every mode of the run); the child says when it begins each (case, mode) and streams back
each record as a results line. When the child

- dies (a signal: SIGSEGV, SIGABRT, the kernel's OOM killer; or an exit), the case is recorded
  as ``crash`` with the signal's name;
- runs past the per-case time limit, it is killed and the case recorded as ``timeout``;
- grows past the memory limit (its resident set, polled while it works), it is killed and the
  case recorded as ``crash`` with the size it reached,

and a fresh child takes the rest of the batch. The record keeps the last lines the child wrote
to its stderr during the batch (the child enables :mod:`faulthandler`, so a fatal signal leaves
the Python stack of the call there). The unit is first rerun alone in that fresh child, before
anything else runs in it (:func:`run_batch`): a crash that happens again is confirmed (verdict
``crash`` or ``timeout``), one that does not is ``unconfirmed``: it depended on what the child
had done before, and the record says what that was (how many units it had run, what it had
compiled, its memory: :meth:`Sandbox.before`). Crash and timeout records are built in the
parent (``runner.lost``), with the oracle's expectation and the reproducer like any other.

A child that has grown worn is replaced between two requests, before it fails: when it holds
more than half the memory mappings the kernel allows a process (``vm.max_map_count``, 65,530 by
default) or more than half the memory limit (looked at every ``_LOOK_EVERY_S`` seconds at most).
A long-lived process can run out of mappings long before it runs out of memory: eager JAX
compiles a ``lax.scan`` (optax's and Keras' CTC) anew at every call and keeps each executable,
about 44 mappings each, and past the limit XLA's JIT cannot map its code and the process dies
of SIGSEGV, on whatever call comes next (the crashes of issue 17).

The time limit starts when the child has imported the framework and begins the call, so a slow
first import does not count against a case. Messages travel over a pair of pipes of their own
(``multiprocessing.connection``), never stdout, which framework code may print to.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection

#: Defaults of ``lossparity run --timeout`` and ``--memory-limit``.
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MEMORY_GIB = 8.0
_POLL_S = 0.05  # how often a waiting parent looks at the child's memory
_STDERR_TAIL = (30, 300)  # lines of the child's stderr kept with a crash, characters of each
#: A child is replaced before a request once it holds more than this share of the mappings the
#: kernel allows a process or of the memory limit; one batch (CTC's eager calls: about 5,000
#: mappings) fits in the rest with room to spare.
_WORN = 0.5
_LOOK_EVERY_S = 10.0  # counting a process's mappings costs about 2 ms per thousand: not per request


class Sandbox:
    """The parent's handle on its child process."""

    def __init__(self, timeout_s: float | None = DEFAULT_TIMEOUT_S, memory_gib: float | None = DEFAULT_MEMORY_GIB):
        self.timeout_s = timeout_s or None
        self.memory_bytes = int(memory_gib * 2**30) if memory_gib else None
        self.proc: subprocess.Popen | None = None
        self.conn: Connection | None = None
        self.restarts = self.recycled = 0  # children lost or replaced; of those, replaced as worn
        self.log: int | None = None  # the child's stderr: a file the parent reads back after a crash
        self.max_maps, self.look_every = int(_max_map_count() * _WORN), _LOOK_EVERY_S
        self._life()

    def _life(self) -> None:
        """What the parent knows of the current child's past, for :meth:`before`: units of work
        begun, batches served, compilations its calls reported, the most memory it was seen to use."""
        self.born, self.units, self.batches, self.compiled, self.peak_rss = time.monotonic(), 0, 0, 0, 0
        self.current: str | None = None  # the last unit begun (``note``)
        self._state: dict | None = None  # the child's state when the unit at hand began
        self.maps: int | None = None  # its memory mappings when last counted (``_worn``)
        self._looked = self.born

    def note(self, unit: str) -> None:
        """Name the unit of work the child has just begun (``binding dtype case mode``)."""
        self.current = unit

    def before(self) -> dict:
        """The state of the child when it began the unit it was last working on (or when it was
        last sent a request, if it never began one): ``cases``, the units it had run before
        (across every batch of its life); ``batches``, the requests it had finished before;
        ``compiled``, the compilations its calls had caused (jit compiles, ``tf.function``
        traces: ``Outcome.compiled``); ``previous``, the unit it ran just before (None: none);
        ``seconds``, its age; ``rss_mib``, its resident memory; ``peak_rss_mib``, the most it
        was seen to use until it was lost, that unit included (looked at every 50 ms while it
        works); ``maps``, its memory mappings when last counted (between two requests, at most
        ``_LOOK_EVERY_S`` before one; None: never counted)."""
        state = dict(self._state or self._snapshot())
        state["peak_rss_mib"] = round(self.peak_rss / 2**20, 1)
        return state

    def _look(self) -> int:
        """The child's resident set size in bytes now (0 if it is gone), kept as a peak."""
        rss = _rss(self.proc.pid) if self.proc is not None else 0
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    def _snapshot(self, rss: int | None = None) -> dict:
        """The child's state now; ``rss``: its resident set size as it said (else looked up)."""
        self.peak_rss = max(self.peak_rss, rss or 0)
        return {
            "cases": self.units,
            "batches": self.batches,
            "compiled": self.compiled,
            "previous": self.current,
            "seconds": round(time.monotonic() - self.born, 3),
            "rss_mib": round((self._look() if rss is None else rss) / 2**20, 1),
            "maps": self.maps,
        }

    def _worn(self) -> str | None:
        """Why the live child should be replaced before its next request, or None (it is well,
        or was looked at less than ``look_every`` seconds ago)."""
        if time.monotonic() - self._looked < self.look_every:
            return None
        self._looked = time.monotonic()
        self.maps = _maps(self.proc.pid)
        if self.maps > self.max_maps:
            return f"{self.maps} memory mappings"
        rss = self._look()
        if self.memory_bytes and rss > self.memory_bytes * _WORN:
            return f"{rss / 2**30:.2f} GiB resident"
        return None

    # -- the child's life ------------------------------------------------------------------
    def _start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        to_parent_r, to_parent_w = os.pipe()
        # The child's stderr goes to an unlinked file it appends to (O_APPEND: the parent empties
        # it at each request, and the child's next line lands at the start, not past a hole).
        self._close_log()
        self.log, path = tempfile.mkstemp(prefix="lossparity-child-", suffix=".stderr")
        child_err = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.unlink(path)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lossparity.conformance.sandbox", str(to_child_r), str(to_parent_w)],
            pass_fds=(to_child_r, to_parent_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=child_err,
            start_new_session=True,
        )
        os.close(child_err)
        os.close(to_child_r)
        os.close(to_parent_w)
        self.conn = _Duplex(to_parent_r, to_child_w)
        self._life()

    def stderr_tail(self) -> str:
        """The last lines the child (alive or lost) wrote to its stderr since the last request
        began: framework warnings, a failed check's message, the stack ``faulthandler`` dumps
        at a fatal signal. "" if none."""
        if self.log is None:
            return ""
        lines, width = _STDERR_TAIL
        size, span = os.fstat(self.log).st_size, 4 * lines * width
        text = os.pread(self.log, span, max(0, size - span)).decode("utf-8", "replace")
        # one line per line, cut: faulthandler's last line lists every extension module loaded
        return "\n".join(
            line[:width] + ("..." if len(line) > width else "") for line in text.strip().splitlines()[-lines:]
        )

    def _close_log(self) -> None:
        if self.log is not None:
            os.close(self.log)
            self.log = None

    def fresh(self) -> None:
        """Make sure the next request starts a new child (one that has run nothing yet)."""
        if self.proc is not None:
            self.close()
            self.restarts += 1

    def close(self) -> None:
        if self.proc is not None:
            self.conn.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._kill()
        self.proc = self.conn = None
        self._close_log()

    def _kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the child and anything it started
        except ProcessLookupError:
            pass
        self.proc.wait()

    def _lost(self) -> None:
        self.conn.close()
        self.proc = self.conn = None
        self.restarts += 1

    # -- one request -----------------------------------------------------------------------
    def ask(self, message) -> tuple[str, object, float]:
        """Send one request; return ``("ok", answer, seconds)`` or ``("crash"|"timeout", why, seconds)``.

        Seconds count from when the child began the work (after its imports)."""
        return next(event for event in self.stream(message) if event[0] not in ("began", "item"))

    def stream(self, message) -> Iterator[tuple[str, object, float]]:
        """Send one request and yield what the child sends back as it works: ``("began", i, 0)``
        when it starts the ``i``-th unit of work (the time limit counts from there),
        ``("item", answer, seconds)`` for each answer it streams, and last ``("ok", answer,
        seconds)``, or ``("crash"|"timeout", why, seconds)`` for the unit it was working on."""
        if self.proc is not None and self._worn():
            self.fresh()
            self.recycled += 1
        if self.proc is None:
            self._start()
        self._state = self._snapshot()
        os.ftruncate(self.log, 0)
        try:
            self.conn.send(message)
        except (BrokenPipeError, OSError):
            yield self._died(0.0)
            return
        began, checked = None, time.monotonic()
        while True:
            limit = None if began is None or self.timeout_s is None else began + self.timeout_s
            wait = _POLL_S if limit is None else max(0.0, min(_POLL_S, limit - time.monotonic()))
            if self.conn.poll(wait):
                try:
                    kind, payload = self.conn.recv()
                except (EOFError, OSError):
                    yield self._died(0.0 if began is None else time.monotonic() - began)
                    return
                spent = 0.0 if began is None else time.monotonic() - began
                if kind == "began":
                    began, spent = time.monotonic(), 0.0
                    at, self.compiled, rss = payload
                    self._state = self._snapshot(rss)
                    self.units += 1
                    yield "began", at, 0.0
                elif kind == "item":
                    yield "item", payload, spent
                elif kind == "failed":
                    yield "crash", f"the adapter failed outside the framework call: {payload}", spent
                    return
                else:
                    self.batches += message[0] in ("batch", "steps")
                    yield "ok", payload, spent
                    return
                if time.monotonic() - checked < _POLL_S:  # a streaming child is still watched
                    continue
            checked = time.monotonic()
            lost = self._past_limits(began)
            if lost is not None:
                yield lost
                return

    def _past_limits(self, began: float | None) -> tuple[str, str, float] | None:
        """The event of a child that ran past its time or memory limit, or died; None if it is well."""
        spent = 0.0 if began is None else time.monotonic() - began
        rss = self._look()
        if began is not None and self.timeout_s is not None and spent >= self.timeout_s:
            self._kill()
            self._lost()
            return "timeout", f"no answer within the time limit of {self.timeout_s:g} s; the process was killed", spent
        if self.memory_bytes and rss > self.memory_bytes:
            self._kill()
            self._lost()
            return (
                "crash",
                (
                    f"the process grew to {rss / 2**30:.2f} GiB, past the memory limit of "
                    f"{self.memory_bytes / 2**30:g} GiB, and was killed"
                ),
                spent,
            )
        if self.proc.poll() is not None:
            return self._died(spent)
        return None

    def _died(self, spent: float) -> tuple[str, str, float]:
        code = self.proc.wait()
        self._lost()
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            why = f"the process was killed by {name}"
            if -code == signal.SIGKILL:
                why += " (by the kernel's out-of-memory killer, or from outside)"
        else:
            why = f"the process exited with status {code} during the call"
        return "crash", why, spent


class _Duplex:
    """A reading and a writing Connection used as one (``os.pipe`` gives one-way pipes)."""

    def __init__(self, read_fd: int, write_fd: int):
        self.reader, self.writer = Connection(read_fd, writable=False), Connection(write_fd, readable=False)

    def send(self, obj) -> None:
        self.writer.send(obj)

    def recv(self):
        return self.reader.recv()

    def poll(self, timeout: float) -> bool:
        return self.reader.poll(timeout)

    def close(self) -> None:
        for c in (self.reader, self.writer):
            try:
                c.close()
            except OSError:
                pass


def _maps(pid: int) -> int:
    """How many memory mappings a process holds (0 where /proc cannot tell)."""
    try:
        with open(f"/proc/{pid}/maps", "rb") as fh:
            return fh.read().count(b"\n")
    except OSError:
        return 0


def _max_map_count() -> int:
    """The most memory mappings the kernel allows a process (``vm.max_map_count``)."""
    try:
        with open("/proc/sys/vm/max_map_count", "rb") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return 65530  # Linux's default


def _rss(pid: int) -> int:
    """Resident set size of a process in bytes (0 where /proc cannot tell)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


# -- what the parent asks for -----------------------------------------------------------------

_LIMITS = (DEFAULT_TIMEOUT_S, DEFAULT_MEMORY_GIB)
_SANDBOXES: dict[str, Sandbox] = {}  # one child per worker process key (FrameworkAdapter.process)


def configure(timeout_s: float | None, memory_gib: float | None) -> None:
    """The limits of this process's children (closing any started under other limits)."""
    global _LIMITS
    shutdown()
    _LIMITS = (timeout_s, memory_gib)


def shutdown() -> None:
    while _SANDBOXES:
        _SANDBOXES.popitem()[1].close()


def sandbox(process: str = "main") -> Sandbox:
    """The child that runs the calls of the adapters sharing ``process`` (started on first use).

    Adapters share one child unless one must be imported alone: each Keras backend has its
    own, since Keras fixes its backend when it is first imported in a process."""
    if process not in _SANDBOXES:
        _SANDBOXES[process] = Sandbox(*_LIMITS)
    return _SANDBOXES[process]


def _process(binding) -> str:
    from lossparity.conformance.registry import adapter_for

    return adapter_for(binding.framework).process


def run_batch(
    binding, spec, dtype, units, *, device="cpu", tf32=False, known=(), keep=False
) -> Iterator[tuple[str, str]]:
    """``runner.evaluate`` of each (case, mode) in ``units`` in the child, which streams back
    each result as (JSON line, verdict). A unit that crashes or times out is rerun alone in a
    fresh child (:func:`rerun`), and becomes a record of that verdict, or ``unconfirmed`` if the
    rerun returned (built here, ``runner.lost``, with ``rerun``); the units after it follow in
    the child of the rerun, or in another fresh one if the rerun crashed too. ``keep``: the child
    keeps the binding's compiled functions after the batch (the steps of ``conformance/shrink.py``,
    one case each, that follow a batch of the same binding and dtype; the next batch releases them)."""
    from lossparity.conformance.registry import adapter_for
    from lossparity.conformance.runner import lost
    from lossparity.core.records import json_line

    pending = list(units)
    box = sandbox(_process(binding))
    while pending:
        at = 0
        kind = "steps" if keep else "batch"
        request = (kind, (binding.framework, binding.id, device, tf32, spec.name, dtype, pending, tuple(known)))
        for status, answer, seconds in box.stream(request):
            if status == "began":
                at = answer
                box.note(_unit(binding, dtype, *pending[at]))
            elif status == "item":
                if answer is not None:
                    yield answer
            elif status == "ok":
                return
            else:
                case, mode = pending[at]
                before, stderr = box.before(), box.stderr_tail()
                again = rerun(box, binding, spec, dtype, case, mode, device=device, tf32=tf32)
                record = lost(
                    adapter_for(binding.framework),
                    binding,
                    spec,
                    case,
                    dtype,
                    status,
                    answer,
                    seconds,
                    mode=mode,
                    device=device,
                    known=known,
                    stderr=stderr,
                    rerun={"reproduced": again["verdict"] in ("crash", "timeout"), "outcome": again, "before": before},
                )
                if record is not None:
                    yield json_line(record), record["verdict"]
                pending = pending[at + 1 :]


def _unit(binding, dtype: str, case, mode: str) -> str:
    return f"{binding.id} {dtype} {case.id} {mode}"


def rerun(box: Sandbox, binding, spec, dtype: str, case, mode: str, *, device="cpu", tf32=False) -> dict:
    """Run one unit (case, mode) alone in a fresh child of ``box``: nothing else has run in that
    process before it (the framework imported, as for any batch). Return what it gave:
    ``{"verdict": "crash"|"timeout", "message", "seconds"[, "stderr"]}`` if it never returned, else the
    verdict it earned against the oracle, no known deviation applied (``verdict``,
    ``value_verdict``, ``gradients``: verdict per gradient or None), ``actual`` (its value or
    error, as a result line has it) and the call's ``seconds``. The child stays for what follows."""
    import json

    box.fresh()
    request = ("batch", (binding.framework, binding.id, device, tf32, spec.name, dtype, [(case, mode)], ()))
    line = None
    for status, answer, seconds in box.stream(request):
        if status == "began":
            box.note(_unit(binding, dtype, case, mode))
        elif status == "item":
            line = answer
        elif status != "ok":
            stderr = box.stderr_tail()
            return {"verdict": status, "message": answer, "seconds": round(seconds, 3)} | (
                {"stderr": stderr} if stderr else {}
            )
    if line is None:  # cannot happen: the unit ran once already, so the binding takes the case
        return {"verdict": "unsupported", "message": "the binding did not take the case when rerun", "seconds": 0.0}
    record = json.loads(line[0])
    return {
        "verdict": record["verdict"],
        "value_verdict": record["value_verdict"],
        "gradients": {k: g["verdict"] for k, g in record["gradients"].items()} if record["gradients"] else None,
        "actual": record["actual"],
        "seconds": record["seconds"]["call"],
    }


def call(binding, case, dtype, *, mode="eager", wrt=()):
    """``adapter.call`` in the binding's worker process: the Outcome, or one that says the
    process crashed or timed out (``lossparity explain`` of a Keras backend other than the
    one this process may have imported)."""
    from lossparity.adapters.base import Outcome

    status, answer, seconds = sandbox(_process(binding)).ask(
        ("call", (binding.framework, binding.id, "cpu", False, binding.spec, case, dtype, mode, tuple(wrt)))
    )
    if status == "ok":
        return answer
    return Outcome(error_type=status, error_mro=(status,), error_message=answer, seconds=seconds)


def public_losses(framework: str) -> list[str]:
    """``adapter.public_losses()`` asked of the framework's worker process (a Keras backend
    can only be imported in its own)."""
    from lossparity.conformance.registry import adapter_for

    status, answer, _ = sandbox(adapter_for(framework).process).ask(("public", framework))
    if status != "ok":
        raise RuntimeError(f"listing the public losses of {framework}: {answer}")
    return answer


def signatures(framework: str, apis: list[str]) -> dict[str, dict | None]:
    """``adapter.signature(api)`` of each of ``apis`` asked of the framework's worker process
    (the parameter coverage, ``conformance/parameters.py``)."""
    from lossparity.conformance.registry import adapter_for

    status, answer, _ = sandbox(adapter_for(framework).process).ask(("signatures", (framework, list(apis))))
    if status != "ok":
        raise RuntimeError(f"reading the signatures of {framework}'s loss APIs: {answer}")
    return answer


def missing(binding, device="cpu", tf32=False) -> str | None:
    """Why the binding cannot run here (``adapter.missing``, or its device is unavailable),
    asked of the child, so that importing a framework that crashes on import costs a skipped
    column, not the run."""
    status, answer, _ = sandbox(_process(binding)).ask(("missing", (binding.framework, binding.id, device, tf32)))
    if status == "ok":
        return answer
    return f"checking that {binding.id} exists: {answer}"


# -- the child ----------------------------------------------------------------------------------


def _binding(framework: str, binding_id: str, device: str, tf32: bool, spec: str | None = None):
    from lossparity.conformance.registry import adapter_for, find

    adapter = adapter_for(framework)
    adapter.use(device, tf32)
    return adapter, find(framework, binding_id, spec)


def _serve(conn: _Duplex) -> None:
    """The child's loop: one request at a time, each answered with ``("began", (unit, compiled,
    rss))`` when the work starts (``unit``: the index of the unit of a batch, else None;
    ``compiled``: the compilations this process's calls have caused so far; ``rss``: its
    resident set size in bytes, for :meth:`Sandbox.before`: the parent may read the message only
    after the child died), then ``("item", ...)`` per result of a batch, and ``("done", answer)``
    or ``("failed", why)``."""
    from lossparity.conformance.runner import evaluate
    from lossparity.conformance.specs import SPECS
    from lossparity.core.records import json_line

    compiled, pid = 0, os.getpid()
    while True:
        try:
            kind, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if kind == "public":
                from lossparity.conformance.registry import adapter_for

                adapter = adapter_for(args)
                adapter.namespace()
                conn.send(("began", (None, compiled, _rss(pid))))
                conn.send(("done", sorted(adapter.public_losses())))
            elif kind == "signatures":
                from lossparity.conformance.registry import adapter_for

                framework, apis = args
                adapter = adapter_for(framework)
                adapter.namespace()
                conn.send(("began", (None, compiled, _rss(pid))))
                conn.send(("done", {api: adapter.signature(api) for api in apis}))
            elif kind == "call":
                framework, binding_id, device, tf32, spec_name, case, dtype, mode, wrt = args
                adapter, binding = _binding(framework, binding_id, device, tf32, spec_name)
                adapter.namespace()
                conn.send(("began", (None, compiled, _rss(pid))))
                conn.send(("done", adapter.call(binding, case, dtype, mode=mode, wrt=wrt)))
            elif kind == "missing":
                adapter, binding = _binding(*args)
                adapter.namespace()  # the import, before the clock starts
                conn.send(("began", (None, compiled, _rss(pid))))
                conn.send(("done", adapter.device_unavailable() or adapter.missing(binding)))
            elif kind in ("batch", "steps"):  # steps: a batch whose compiled functions stay
                framework, binding_id, device, tf32, spec_name, dtype, units, known = args
                adapter, binding = _binding(framework, binding_id, device, tf32, spec_name)
                adapter.namespace()
                oracle: dict = {}  # the expectations of the case at hand, shared by its modes
                for i, (case, mode) in enumerate(units):
                    conn.send(("began", (i, compiled, _rss(pid))))
                    record = evaluate(
                        adapter,
                        binding,
                        SPECS[spec_name],
                        case,
                        dtype,
                        mode=mode,
                        device=device,
                        known=known,
                        oracle=oracle,
                    )
                    compiled += (record or {}).get("compiled", 0)
                    conn.send(("item", None if record is None else (json_line(record), record["verdict"])))
                if kind == "batch":
                    adapter.release()
                conn.send(("done", None))
        except Exception as exc:  # noqa: BLE001 - an adapter that fails outside the call: say so
            conn.send(("failed", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))


if __name__ == "__main__":
    import faulthandler

    faulthandler.enable()  # a fatal signal prints the Python stack to stderr, which the parent keeps
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a run stops
    _serve(_Duplex(int(sys.argv[1]), int(sys.argv[2])))
