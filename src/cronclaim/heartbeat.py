"""One thread that keeps the leases of every running claim of a process alive.

It runs on its own thread, not as an asyncio task, so an event loop kept busy by the
job itself cannot starve it. One thread serves every claim: starting a thread per claim
would cost more than the claim.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
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
    __slots__ = ("active", "lease", "lock", "on_lost", "run")

    def __init__(self, run: Run, lease: timedelta, on_lost: Callable[[], None] | None) -> None:
        self.run = run
        self.lease = lease
        self.on_lost = on_lost
        self.lock = threading.Lock()  # held while a beat for this run is in flight
        self.active = True


class Heartbeater:
    def __init__(self, store: Callable[[], Store]) -> None:
        self._store = store
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._wake_at: float | None = None  # when the waiting thread next wakes; None: never

    def watch(
        self, run: Run, lease: timedelta, on_lost: Callable[[], None] | None = None
    ) -> Watch:
        entry = Watch(run, lease, on_lost)
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
            due = self._due(lease)
            heapq.heappush(heap, (due, next(self._seq), entry))
            # Wake the thread only if it must beat sooner than it planned: waking it for
            # every claim cost a thread switch and a GIL hand-off per claim.
            if self._wake_at is None or due < self._wake_at:
                self._cond.notify()
        return entry

    def unwatch(self, entry: Watch) -> None:
        """Stop beating for this run; waits for a beat in flight, so none lands after."""
        with entry.lock:
            entry.active = False

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
            if self._beat(entry):
                with self._cond:
                    heapq.heappush(self._heap, (self._due(entry.lease), next(self._seq), entry))

    def _beat(self, entry: Watch) -> bool:
        """Extend one lease; False when the run is over or its lease is lost."""
        with entry.lock:
            if not entry.active:
                return False
            run = entry.run
            try:
                run._claim = self._store().heartbeat(run._claim, lease=entry.lease)
                return True
            except StaleClaim as exc:
                run._lease_lost = True
                entry.active = False
                log.error("lease lost for %s: %s", run.idempotency_key, exc)
            except CronclaimError as exc:
                # The database may come back before the lease lapses; keep trying. If it
                # does not, the lease expires and another worker takes over: the backstop.
                log.warning("heartbeat for %s failed, will retry: %s", run.idempotency_key, exc)
                return True
        if entry.on_lost is not None:
            try:
                entry.on_lost()
            except Exception:
                log.exception("on_lost callback failed for %s", run.idempotency_key)
        return False
