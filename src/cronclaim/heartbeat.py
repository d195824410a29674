"""One thread that keeps the leases of every running claim of a process alive.

It runs on its own thread, not as an asyncio task, so an event loop kept busy by the
job itself cannot starve it. One thread serves every claim: starting a thread per claim
would cost more than the claim. A worker registers and drops the runs of a batch
together (``watch_many``/``unwatch_many``): one lock round per batch, not per run.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from cronclaim.exceptions import CronclaimError, StaleClaim

if TYPE_CHECKING:
    from cronclaim.guard import Run
    from cronclaim.store import Store

log = logging.getLogger("cronclaim.heartbeat")

#: Beat this many times per lease, so two beats can be lost before the lease lapses.
BEATS_PER_LEASE = 3


class Watch:
    """One run whose lease the heartbeater keeps alive, until it is unwatched."""

    __slots__ = ("active", "lease", "on_lost", "run")

    def __init__(
        self, run: Run, lease: timedelta, on_lost: Callable[[], object] | None = None
    ) -> None:
        self.run = run
        self.lease = lease
        self.on_lost = on_lost
        self.active = True  # changed under the heartbeater's lock only

    def lost(self) -> None:
        """Called (on the heartbeat thread) once the lease is found taken over."""
        if self.on_lost is not None:
            self.on_lost()


class Heartbeater:
    def __init__(self, store: Callable[[], Store]) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # the thread waits here for work
        self._beat_done = threading.Condition(self._lock)  # unwatch waits here for a beat
        #: The run whose beat is in flight (outside the lock), if any.
        self._beating: Watch | None = None
        self._heap: list[tuple[float, int, Watch]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._wake_at: float | None = None  # when the waiting thread next wakes; None: never

    def watch(
        self, run: Run, lease: timedelta, on_lost: Callable[[], None] | None = None
    ) -> Watch:
        entry = Watch(run, lease, on_lost)
        self.watch_many((entry,))
        return entry

    def watch_many(self, entries: Sequence[Watch]) -> None:
        """Keep the leases of the entries' runs alive, until they are unwatched."""
        if not entries:
            return
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._loop, name="cronclaim-heartbeat", daemon=True
                )
                self._thread.start()
            heap = self._heap
            # Finished runs at the top go now, rather than pile up until the thread wakes.
            while heap and not heap[0][2].active:
                heapq.heappop(heap)
            seq = self._seq
            dues: dict[timedelta, float] = {}
            for entry in entries:
                due = dues.get(entry.lease)
                if due is None:
                    due = dues[entry.lease] = self._due(entry.lease)
                heapq.heappush(heap, (due, next(seq), entry))
            # Wake the thread only if it must beat sooner than it planned: waking it for
            # every claim cost a thread switch and a GIL hand-off per claim.
            soonest = min(dues.values())
            if self._wake_at is None or soonest < self._wake_at:
                self._cond.notify()

    def unwatch(self, entry: Watch) -> None:
        """Stop beating for this run; waits for a beat in flight, so none lands after."""
        self.unwatch_many((entry,))

    def unwatch_many(self, entries: Iterable[Watch]) -> None:
        """:meth:`unwatch` for many runs, under one lock round."""
        with self._lock:
            for entry in entries:
                entry.active = False
            # A beat in flight for an entry just dropped must land before its caller goes
            # on (to complete or release the claim): wait for it. (The run being beaten
            # is inactive only if dropped, or its lease was just lost; either way its
            # beat ends soon.)
            while self._beating is not None and not self._beating.active:
                self._beat_done.wait()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    @staticmethod
    def _due(lease: timedelta) -> float:
        return time.monotonic() + lease.total_seconds() / BEATS_PER_LEASE

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    # A finished run is dropped when due (or by watch), not sooner: waking
                    # early to drop it would leave nothing to wait for, and the next
                    # watch would have to wake the thread again.
                    if self._heap and self._heap[0][0] <= time.monotonic():
                        if self._heap[0][2].active:
                            break
                        heapq.heappop(self._heap)
                        continue
                    self._wake_at = self._heap[0][0] if self._heap else None
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopping:
                    return
                _, _, entry = heapq.heappop(self._heap)
                self._beating = entry  # still active: unwatch now waits for this beat
            again = lost = False
            try:
                again, lost = self._beat(entry)
            finally:
                with self._lock:
                    self._beating = None
                    self._beat_done.notify_all()
                    if again:
                        heapq.heappush(
                            self._heap, (self._due(entry.lease), next(self._seq), entry)
                        )
            if lost:
                try:
                    entry.lost()
                except Exception:
                    log.exception("on_lost callback failed for %s", entry.run.idempotency_key)

    def _beat(self, entry: Watch) -> tuple[bool, bool]:
        """Extend one lease: ``(beat again, lease lost)``."""
        if not entry.active:  # unwatched since it was taken off the heap
            return False, False
        run = entry.run
        try:
            run._claim = self._store().heartbeat(run._claim, lease=entry.lease)
            return True, False
        except StaleClaim as exc:
            run._lease_lost = True
            with self._lock:
                entry.active = False
            log.error("lease lost for %s: %s", run.idempotency_key, exc)
            return False, True
        except CronclaimError as exc:
            # The database may come back before the lease lapses; keep trying. If it
            # does not, the lease expires and another worker takes over: the backstop.
            log.warning("heartbeat for %s failed, will retry: %s", run.idempotency_key, exc)
            return True, False
