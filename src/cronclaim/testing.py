"""Test helpers for applications built on cronclaim.

* :class:`VirtualClock`: days of schedule in a blink (``Worker.run_until`` jumps it).
* :func:`capture_events`: what runs did while a block ran (every external call made
  through ``run.call``, every beacon and cronclaim log line), as a list of dicts, like
  structlog's ``capture_logs``.
* :func:`inject`: make one external call of your job time out, raise, or kill the
  process, in a test of your own.
* :func:`sweep`: the post-mortem's "sweep every sibling cron", automated. For every job
  of an app, a clean run records the external calls the job makes through
  ``run.call``/``run.call_async``; then, for each of those calls, a timeout, an
  exception and a hard kill (``os._exit`` in a worker *process*) are injected before
  and after the call, and each case checks that the claim was not leaked, that the
  occurrence was retried, and that no side effect was lost or doubled.

The sweep needs a way to build the app on a given database and virtual clock (an
``app_factory``, a module-level function so a child process can import it), and
optionally a ``fixture``: a context manager run per case that starts what the app talks
to and reports the side effects it saw (``Harness.effects``). See ``docs/testing.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cronclaim import guard
from cronclaim.app import App
from cronclaim.clock import VirtualClock
from cronclaim.fanout import next_tick_after
from cronclaim.guard import Run
from cronclaim.models import ClaimState, EventKind, Occurrence
from cronclaim.worker import Worker

__all__ = [
    "KILLED_EXIT_CODE",
    "CallPoint",
    "CaseResult",
    "Harness",
    "InjectedFault",
    "InjectedTimeout",
    "Injection",
    "JobSweep",
    "SweepEnv",
    "SweepReport",
    "VirtualClock",
    "capture_events",
    "inject",
    "sweep",
]

Kind = Literal["timeout", "exception", "kill"]
Position = Literal["before", "after"]
KINDS: tuple[Kind, ...] = ("timeout", "exception", "kill")
POSITIONS: tuple[Position, ...] = ("before", "after")
#: The exit status of a worker process the sweep killed at a call.
KILLED_EXIT_CODE = 86


class InjectedFault(RuntimeError):
    """The exception :func:`inject` and the sweep raise at a call (kind ``exception``)."""


class InjectedTimeout(TimeoutError):
    """The timeout :func:`inject` and the sweep raise at a call (kind ``timeout``)."""


# -- hooks around run.call -----------------------------------------------------------------


class _Hooks:
    """Base of the hooks this module installs in :data:`cronclaim.guard.call_hooks`."""

    def before(self, run: Run, name: str) -> None:
        """Called before each external call."""

    def after(self, run: Run, name: str) -> None:
        """Called after each external call that returned."""


class _Both(_Hooks):
    def __init__(self, first: guard.CallHooks, second: guard.CallHooks) -> None:
        self.first = first
        self.second = second

    def before(self, run: Run, name: str) -> None:
        self.first.before(run, name)
        self.second.before(run, name)

    def after(self, run: Run, name: str) -> None:
        self.first.after(run, name)
        self.second.after(run, name)


_install_lock = threading.Lock()


@contextlib.contextmanager
def _installed(hooks: guard.CallHooks) -> Iterator[None]:
    """Install ``hooks`` (after any already installed) for the duration of the block."""
    with _install_lock:
        previous = guard.call_hooks
        guard.call_hooks = hooks if previous is None else _Both(previous, hooks)
    try:
        yield
    finally:
        with _install_lock:
            guard.call_hooks = previous


class _Injector(_Hooks):
    """Acts at the ``nth`` call to ``name`` of the runs it targets (attempt 1 only)."""

    def __init__(
        self,
        name: str,
        *,
        kind: Kind,
        position: Position,
        nth: int = 1,
        key: str | None = None,
        attempts: Sequence[int] | None = (1,),
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if position not in POSITIONS:
            raise ValueError(f"position must be 'before' or 'after', got {position!r}")
        if nth < 1:
            raise ValueError(f"nth must be >= 1, got {nth}")
        self.name = name
        self.kind = kind
        self.position = position
        self.nth = nth
        self.key = key
        self.attempts = attempts
        self._counts: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()
        self.fired = 0

    def _targets(self, run: Run, name: str) -> bool:
        return (
            name == self.name
            and (self.key is None or run.idempotency_key == self.key)
            and (self.attempts is None or run.attempt in self.attempts)
        )

    def before(self, run: Run, name: str) -> None:
        if not self._targets(run, name):
            return
        with self._lock:
            self._counts[run.idempotency_key, run.attempt] += 1
            index = self._counts[run.idempotency_key, run.attempt]
        if self.position == "before" and index == self.nth:
            self._act(run, name)

    def after(self, run: Run, name: str) -> None:
        if not self._targets(run, name):
            return
        with self._lock:
            index = self._counts[run.idempotency_key, run.attempt]
        if self.position == "after" and index == self.nth:
            self._act(run, name)

    def _act(self, run: Run, name: str) -> None:
        with self._lock:
            self.fired += 1
        where = f"{self.position} call #{self.nth} to {name} of {run.idempotency_key}"
        if self.kind == "kill":
            os._exit(KILLED_EXIT_CODE)
        if self.kind == "timeout":
            raise InjectedTimeout(f"cronclaim.testing: injected timeout {where}")
        raise InjectedFault(f"cronclaim.testing: injected exception {where}")


@contextlib.contextmanager
def inject(
    name: str,
    kind: Kind = "exception",
    *,
    position: Position = "before",
    nth: int = 1,
    idempotency_key: str | None = None,
    attempts: Sequence[int] | None = (1,),
) -> Iterator[_Injector]:
    """Make the ``nth`` call to ``name`` (``run.call(name, ...)``) fail while the block
    runs: raise :class:`InjectedTimeout` (``"timeout"``) or :class:`InjectedFault`
    (``"exception"``), or end the process with ``os._exit`` (``"kill"``), ``before`` the
    call is made or ``after`` it returned. Only in attempts numbered in ``attempts``
    (default: the first, so the retry runs clean; ``None``: every attempt) and, if
    given, only in the occurrence with that idempotency key. The yielded object's
    ``fired`` counts how often it acted.
    """
    injector = _Injector(
        name, kind=kind, position=position, nth=nth, key=idempotency_key, attempts=attempts
    )
    with _installed(injector):
        yield injector


class _CallRecorder(_Hooks):
    """Records, per occurrence and attempt, the names of the calls made, in order."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, int], list[str]] = {}
        self.occurrences: dict[str, Occurrence] = {}
        self._lock = threading.Lock()

    def before(self, run: Run, name: str) -> None:
        with self._lock:
            self.calls.setdefault((run.idempotency_key, run.attempt), []).append(name)
            self.occurrences.setdefault(run.idempotency_key, run.occurrence)


# -- capture_events --------------------------------------------------------------------------


class _EventHooks(_Hooks):
    def __init__(self, sink: Callable[[dict[str, Any]], None]) -> None:
        self._sink = sink

    def before(self, run: Run, name: str) -> None:
        self._sink(self._event(run, name, "before"))

    def after(self, run: Run, name: str) -> None:
        self._sink(self._event(run, name, "after"))

    @staticmethod
    def _event(run: Run, name: str, phase: str) -> dict[str, Any]:
        return {
            "event": "call",
            "name": name,
            "phase": phase,
            "idempotency_key": run.idempotency_key,
            "attempt": run.attempt,
            "log_level": "info",
        }


class _EventHandler(logging.Handler):
    def __init__(self, sink: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(logging.DEBUG)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        beacon = getattr(record, "beacon", None)
        fields = getattr(record, "fields", None)
        if isinstance(beacon, str):
            event: dict[str, Any] = {
                "event": beacon,
                **(fields if isinstance(fields, dict) else {}),
            }
        else:
            event = {"event": record.getMessage(), "logger": record.name}
        event["log_level"] = record.levelname.lower()
        self._sink(event)


@contextlib.contextmanager
def capture_events(level: int = logging.INFO) -> Iterator[list[dict[str, Any]]]:
    """Collect what runs do while the block runs, in order, as dicts with an ``event``
    key and a ``log_level``: ``{"event": "call", "name": "push", "phase": "before",
    "idempotency_key": ..., "attempt": 1}`` for each external call through ``run.call``
    (``phase`` ``after`` once it returned), the beacons (``{"event": "claim_released",
    "job": ..., "error": ...}``) and cronclaim's other log records at ``level`` or
    above (``{"event": <message>, "logger": ...}``)."""
    events: list[dict[str, Any]] = []
    lock = threading.Lock()

    def sink(event: dict[str, Any]) -> None:
        with lock:
            events.append(event)

    logger = logging.getLogger("cronclaim")
    handler = _EventHandler(sink)
    handler.setLevel(level)
    previous_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    try:
        with _installed(_EventHooks(sink)):
            yield events
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


# -- the sweep: records ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SweepEnv:
    """What the app factory gets, in the sweep's process and in a killed worker's: the
    case's database, a scratch directory, and the fixture's parameters (strings, so they
    cross the process boundary)."""

    database_url: str
    workdir: str
    params: Mapping[str, str]
    start: datetime


#: Builds the app under test on ``env.database_url`` with ``clock``. Must be importable
#: (a module-level function) for the kill cases, which rebuild the app in a child process.
AppFactory = Callable[[SweepEnv, VirtualClock], App]


@dataclass
class Harness:
    """What a fixture provides for one case.

    ``params`` reach the app factory (e.g. the URLs of local services). ``effects``
    returns the side effects done so far, one string per effect *as the outside world
    saw it* (e.g. ``"push <device> <ingredient> <day>"`` per delivery the push gateway
    recorded): an effect listed twice was done twice.
    """

    params: Mapping[str, str] = field(default_factory=dict)
    effects: Callable[[], Iterable[str]] = field(default=lambda: ())


#: Called once per case with the case's directory; yields that case's Harness.
Fixture = Callable[[Path], contextlib.AbstractContextManager[Harness]]


@dataclass(frozen=True)
class CallPoint:
    """The ``nth`` of the ``count`` calls to ``name`` the clean attempt made."""

    name: str
    nth: int
    count: int

    def __str__(self) -> str:
        return self.name if self.count == 1 else f"{self.name} #{self.nth}/{self.count}"


@dataclass(frozen=True)
class Injection:
    job: str
    point: CallPoint
    kind: Kind
    position: Position

    def __str__(self) -> str:
        return f"{self.kind} {self.position} {self.point}"


@dataclass
class CaseResult:
    """One run of one job: clean (``injection`` is None) or with one injected fault."""

    job: str
    injection: Injection | None
    occurrence: Occurrence | None
    state: ClaimState | None = None
    attempts: int = 0
    history: list[str] = field(default_factory=list)
    effects: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: The case's directory (its database, the fixture's files), kept with ``workdir``.
    workdir: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        flow = " → ".join(self.history) or "no claim"
        done = sum(self.effects.values())
        return f"{flow} (attempt {self.attempts}); {done} effect(s)"


@dataclass
class JobSweep:
    job: str
    target: Occurrence | None
    calls: list[str]
    clean: CaseResult
    cases: list[CaseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        found = [f"{self.job}: clean run: {p}" for p in self.clean.problems]
        for case in self.cases:
            found.extend(f"{self.job}: {case.injection}: {p}" for p in case.problems)
        return found


@dataclass
class SweepReport:
    jobs: list[JobSweep]
    seconds: float

    @property
    def cases(self) -> list[CaseResult]:
        return [case for job in self.jobs for case in job.cases]

    @property
    def problems(self) -> list[str]:
        return [p for job in self.jobs for p in job.problems]

    @property
    def clean(self) -> bool:
        return not self.problems

    def as_text(self) -> str:
        cases = self.cases
        bad = sum(1 for c in cases if not c.ok)
        lines = [
            f"cronclaim sweep: {len(self.jobs)} job(s), {len(cases)} injection(s), "
            f"{bad} with problems ({self.seconds:.1f} s)"
        ]
        for job in self.jobs:
            target = job.target.idempotency_key if job.target else "no occurrence"
            calls = ", ".join(job.calls) if job.calls else "none"
            lines.append(f"{job.job}  (target {target}; calls: {calls})")
            lines.append(f"  {'clean':<32} {_mark(job.clean)}  {job.clean.summary()}")
            for note in job.notes:
                lines.append(f"  note: {note}")
            for case in job.cases:
                label = str(case.injection)
                lines.append(f"  {label:<32} {_mark(case)}  {case.summary()}")
                lines.extend(f"      ! {p}" for p in case.problems)
            lines.extend(f"      ! {p}" for p in job.clean.problems)
        return "\n".join(lines)

    def assert_clean(self) -> None:
        """Raise ``AssertionError`` listing every problem, with the whole report."""
        if not self.clean:
            raise AssertionError(
                "cronclaim sweep found problems:\n  "
                + "\n  ".join(self.problems)
                + "\n\n"
                + self.as_text()
            )


def _mark(case: CaseResult) -> str:
    return "ok  " if case.ok else "FAIL"


# -- the sweep: running ------------------------------------------------------------------------


def sweep(
    app_factory: AppFactory,
    *,
    start: datetime,
    fixture: Fixture | None = None,
    jobs: Sequence[str] | None = None,
    kinds: Sequence[Kind] = KINDS,
    positions: Sequence[Position] = POSITIONS,
    calls: Literal["first", "first-and-last", "all"] = "first-and-last",
    database: Callable[[Path], str] | None = None,
    workdir: Path | None = None,
    concurrency: int = 4,
    kill_timeout: float = 120.0,
) -> SweepReport:
    """Inject faults at every external call of every job of the app and check each case.

    ``start`` is the virtual instant to start from (the first tick after it is swept).
    ``calls`` chooses the call points per call name: the first call only, the first and
    the last (default: a kill after the last push is the case idempotency keys exist
    for), or every one. ``database`` returns the URL of an empty database for a case
    directory (default: a SQLite file in it). ``kill_timeout`` bounds, in real seconds,
    how long a worker process may take to reach its call.
    """
    began = time.monotonic()
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    for position in positions:
        if position not in POSITIONS:
            raise ValueError(f"unknown position {position!r}; 'before' or 'after'")
    if calls not in ("first", "first-and-last", "all"):
        raise ValueError(f"calls must be 'first', 'first-and-last' or 'all', got {calls!r}")
    with contextlib.ExitStack() as stack:
        # Each injected failure is logged as a warning; without a handler of the caller's
        # own they would all reach stderr through logging's last resort.
        quiet = logging.NullHandler()
        logging.getLogger("cronclaim").addHandler(quiet)
        stack.callback(logging.getLogger("cronclaim").removeHandler, quiet)
        if workdir is None:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="cronclaim-sweep-"))
            )
        runner = _Runner(
            app_factory=app_factory,
            start=start,
            fixture=fixture,
            database=database,
            workdir=workdir,
            concurrency=concurrency,
            kill_timeout=kill_timeout,
        )
        names = list(jobs) if jobs is not None else runner.job_names()
        results = [runner.sweep_job(name, kinds, positions, calls) for name in names]
    return SweepReport(jobs=results, seconds=time.monotonic() - began)


@dataclass
class _Runner:
    app_factory: AppFactory
    start: datetime
    fixture: Fixture | None
    database: Callable[[Path], str] | None
    workdir: Path
    concurrency: int
    kill_timeout: float
    _cases: int = 0

    def job_names(self) -> list[str]:
        with self._case() as (env, _):
            app = self.app_factory(env, VirtualClock(self.start))
            try:
                return list(app.jobs)
            finally:
                app.close()

    @contextlib.contextmanager
    def _case(self) -> Iterator[tuple[SweepEnv, Harness]]:
        self._cases += 1
        directory = self.workdir / f"case-{self._cases:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        url = (
            self.database(directory)
            if self.database is not None
            # A scratch file: committed transactions survive a killed process without an
            # fsync per commit (only a power cut could lose them).
            else f"sqlite:///{directory / 'claims.db'}?synchronous=normal"
        )
        with contextlib.ExitStack() as stack:
            harness = stack.enter_context(self.fixture(directory)) if self.fixture else Harness()
            yield (
                SweepEnv(
                    database_url=url,
                    workdir=str(directory),
                    params=dict(harness.params),
                    start=self.start,
                ),
                harness,
            )

    def _end(self, app: App, job: str) -> tuple[datetime, datetime] | None:
        """The first tick of ``job`` after the start, and when its window has closed."""
        definition = app.jobs[job]
        zones = {tenant.time_zone for tenant in definition.iter_tenants()}
        # The worker looks back one second (catch_up="1s"): a tick at the start counts.
        first = next_tick_after(definition, zones, self.start - timedelta(seconds=1))
        if first is None:
            return None
        return first, first + definition.window + timedelta(seconds=1)

    def _run_worker(self, app: App, job: str, end: datetime) -> None:
        worker = Worker(app, jobs=[job], concurrency=self.concurrency, catch_up="1s")
        asyncio.run(worker.run_until(end))

    def sweep_job(
        self,
        job: str,
        kinds: Sequence[Kind],
        positions: Sequence[Position],
        calls: str,
    ) -> JobSweep:
        recorder = _CallRecorder()
        began = time.monotonic()
        with self._case() as (env, harness):
            app = self.app_factory(env, VirtualClock(self.start))
            try:
                window = self._end(app, job)
                if window is None:
                    clean = CaseResult(job=job, injection=None, occurrence=None)
                    clean.problems.append("the job has no tick after the start")
                    return JobSweep(job=job, target=None, calls=[], clean=clean)
                first, end = window
                with _installed(recorder):
                    self._run_worker(app, job, end)
                target = _target(recorder, first)
                clean = self._inspect(app, job, None, target, harness, env.workdir)
            finally:
                app.close()
        clean.seconds = time.monotonic() - began
        names = recorder.calls.get((target.idempotency_key, 1), []) if target else []
        result = JobSweep(job=job, target=target, calls=names, clean=clean)
        if target is None:
            result.notes.append(
                "no occurrence of the first tick made an external call through run.call: "
                "nothing to inject (does the job call out without run.call?)"
            )
            return result
        if clean.state is not ClaimState.DONE or clean.attempts != 1:
            clean.problems.append(
                f"the clean run did not complete in one attempt ({clean.summary()})"
            )
            return result
        for point in _points(names, calls):
            for kind in kinds:
                for position in positions:
                    injection = Injection(job=job, point=point, kind=kind, position=position)
                    result.cases.append(self._faulted(injection, target, end, clean.effects))
        return result

    def _faulted(
        self, injection: Injection, target: Occurrence, end: datetime, expected: Counter[str]
    ) -> CaseResult:
        began = time.monotonic()
        point = injection.point
        with self._case() as (env, harness):
            problems: list[str] = []
            if injection.kind == "kill":
                fired = self._kill_in_child(env, injection, target, end, problems)
                app = self.app_factory(env, VirtualClock(self.start))
                try:
                    if fired:
                        # The worker process is gone: a fresh worker must take over.
                        self._run_worker(app, injection.job, end)
                    case = self._inspect(
                        app, injection.job, injection, target, harness, env.workdir
                    )
                finally:
                    app.close()
            else:
                app = self.app_factory(env, VirtualClock(self.start))
                try:
                    with inject(
                        point.name,
                        injection.kind,
                        position=injection.position,
                        nth=point.nth,
                        idempotency_key=target.idempotency_key,
                    ) as injector:
                        self._run_worker(app, injection.job, end)
                    fired = injector.fired > 0
                    case = self._inspect(
                        app, injection.job, injection, target, harness, env.workdir
                    )
                finally:
                    app.close()
        case.problems[:0] = problems
        if not fired:
            case.problems.append(
                f"the injection point was not reached: attempt 1 made fewer than {point.nth} "
                f"call(s) to {point.name} (is the job deterministic?)"
            )
        else:
            self._check(case, injection, expected)
        case.seconds = time.monotonic() - began
        return case

    def _kill_in_child(
        self,
        env: SweepEnv,
        injection: Injection,
        target: Occurrence,
        end: datetime,
        problems: list[str],
    ) -> bool:
        """Run the worker in a child process that ends itself at the call point; True if
        it died there."""
        context = _process_context(self.app_factory)
        child = context.Process(
            target=_kill_child,
            args=(self.app_factory, env, injection, target.idempotency_key, end, self.concurrency),
            name=f"cronclaim-sweep-{injection.job}",
        )
        try:
            child.start()
        except (TypeError, AttributeError, ValueError) as exc:  # pickling the factory
            raise TypeError(
                "the kill cases rebuild the app in a child process: app_factory must be a "
                f"module-level function, importable by its qualified name ({exc})"
            ) from exc
        child.join(self.kill_timeout)
        if child.is_alive():
            child.kill()
            child.join()
            problems.append(
                f"the worker process did not reach the call within {self.kill_timeout:g} s"
            )
            return False
        if child.exitcode == KILLED_EXIT_CODE:
            return True
        if child.exitcode != 0:
            problems.append(f"the worker process failed on its own (exit code {child.exitcode})")
        return False

    def _inspect(
        self,
        app: App,
        job: str,
        injection: Injection | None,
        target: Occurrence | None,
        harness: Harness,
        workdir: str,
    ) -> CaseResult:
        case = CaseResult(job=job, injection=injection, occurrence=target, workdir=workdir)
        case.effects = Counter(harness.effects())
        if target is None:
            return case
        claim = app.store.get(target)
        events = app.store.events(target)
        case.history = [_step(e.kind, e.error) for e in events]
        if claim is None:
            case.problems.append("the occurrence has no claim row: it never came due")
            return case
        case.state = claim.state
        case.attempts = claim.attempt
        if claim.state is ClaimState.CLAIMED:
            case.problems.append(
                f"claim leaked: still claimed by {claim.worker} (lease until "
                f"{claim.lease_expires_at}) after its window closed"
            )
        elif claim.state in (ClaimState.RELEASED, ClaimState.PENDING):
            case.problems.append(f"not settled when its window closed: {claim.state.value}")
        elif claim.state is ClaimState.MISSED:
            case.problems.append(f"missed: {claim.last_error}")
        doubled = {effect: n for effect, n in case.effects.items() if n > 1}
        if doubled:
            listed = "; ".join(f"{effect} ({n} times)" for effect, n in sorted(doubled.items()))
            case.problems.append(f"doubled: {listed}")
        return case

    @staticmethod
    def _check(case: CaseResult, injection: Injection, expected: Counter[str]) -> None:
        """The case's claim must have been retried and its effects done once each."""
        if case.state is ClaimState.FAILED:
            case.problems.append(
                f"no successful retry: failed after attempt {case.attempts} "
                f"({case.history[-1] if case.history else 'no history'})"
            )
        elif case.state is ClaimState.DONE and case.attempts < 2:
            fault = {"timeout": "a timeout", "exception": "an exception"}.get(injection.kind)
            case.problems.append(
                f"no retry: attempt 1 completed although {fault or injection.kind} was "
                f"injected {injection.position} {injection.point} (the job swallowed it)"
            )
        lost = sorted(set(expected) - set(case.effects))
        if lost:
            case.problems.append("lost: " + "; ".join(lost))
        extra = sorted(set(case.effects) - set(expected))
        if extra:
            case.problems.append("not in the clean run: " + "; ".join(extra))


def _process_context(app_factory: AppFactory) -> Any:
    """Worker processes start from a fork server that has imported cronclaim and the
    app factory's module once (a fresh interpreter per case would re-import them every
    time); where there is no fork server, they are spawned."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    module = getattr(app_factory, "__module__", None)
    preload = ["cronclaim.worker", "cronclaim.testing"]
    if isinstance(module, str) and module != "__main__":
        preload.append(module)
    context.set_forkserver_preload(preload)
    return context


def _target(recorder: _CallRecorder, first: datetime) -> Occurrence | None:
    """The first occurrence of the first tick whose first attempt made external calls."""
    candidates = [
        recorder.occurrences[key]
        for (key, attempt), names in recorder.calls.items()
        if attempt == 1 and names and recorder.occurrences[key].scheduled_for == first
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda o: (o.scheduled_for, o.tenant))


def _points(names: Sequence[str], which: str) -> list[CallPoint]:
    counts = Counter(names)
    points: list[CallPoint] = []
    for name in dict.fromkeys(names):  # in order of first call
        total = counts[name]
        nths = (
            range(1, total + 1)
            if which == "all"
            else {1, total}
            if which == "first-and-last"
            else {1}
        )
        points.extend(CallPoint(name=name, nth=n, count=total) for n in sorted(nths))
    return points


def _step(kind: EventKind, error: str | None) -> str:
    if kind is EventKind.RELEASED:
        return f"released ({_short(error)})"
    if kind is EventKind.FAILED:
        return f"failed ({_short(error)})"
    return kind.value


def _short(error: str | None) -> str:
    if not error:
        return "no error"
    return error.split(":", 1)[0]


def _kill_child(
    app_factory: AppFactory,
    env: SweepEnv,
    injection: Injection,
    key: str,
    end: datetime,
    concurrency: int,
) -> None:
    """In the child process: run the worker until the injection ends the process."""
    logging.getLogger("cronclaim").addHandler(logging.NullHandler())
    app = app_factory(env, VirtualClock(env.start))
    injector = _Injector(
        injection.point.name,
        kind="kill",
        position=injection.position,
        nth=injection.point.nth,
        key=key,
    )
    guard.call_hooks = injector
    worker = Worker(app, jobs=[injection.job], concurrency=concurrency, catch_up="1s")
    asyncio.run(worker.run_until(end))
    app.close()
