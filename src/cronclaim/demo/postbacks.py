"""The platform's outbox of webhook postbacks to partners (a restaurant's supplier or POS
integration), in a SQLite file of its own.

Jobs enqueue a postback under a stable key (enqueueing the same key again does
nothing), and ``webhook-postback-dispatch`` delivers what is queued, sending the key as
the ``Idempotency-Key`` header and marking each postback delivered once the partner
acknowledged it. A dispatcher that dies between "sent" and "marked" sends it again on
its next pass, and the partner drops the repeat by its key.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS postbacks (
    key TEXT PRIMARY KEY,
    restaurant_id TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX IF NOT EXISTS postbacks_pending ON postbacks (delivered_at, created_at);
"""
# -- name: enqueue: a postback, unless its key is queued or delivered already
ENQUEUE = (
    "INSERT OR IGNORE INTO postbacks (key, restaurant_id, event, payload, created_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
# -- name: pending: undelivered postbacks, oldest first
PENDING = (
    "SELECT key, restaurant_id, event, payload, created_at, delivered_at FROM postbacks "
    "WHERE delivered_at IS NULL ORDER BY created_at, key LIMIT ?"
)
# -- name: mark_delivered: record the partner's acknowledgement (first one wins)
MARK_DELIVERED = "UPDATE postbacks SET delivered_at = ? WHERE key = ? AND delivered_at IS NULL"
# -- name: all_postbacks
ALL_POSTBACKS = (
    "SELECT key, restaurant_id, event, payload, created_at, delivered_at FROM postbacks "
    "ORDER BY created_at, key"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Postback:
    key: str
    restaurant_id: str
    event: str
    payload: Mapping[str, Any]
    created_at: datetime
    delivered_at: datetime | None


class PostbackQueue:
    """The outbox; every call opens a short-lived connection (threads and processes may
    share one queue file)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with self._connect() as conn:
            conn.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            yield conn
        finally:
            conn.close()

    def enqueue(
        self,
        key: str,
        *,
        restaurant_id: str,
        event: str,
        payload: Mapping[str, Any],
        created_at: datetime,
    ) -> bool:
        """Queue a postback; False if ``key`` was queued before (nothing changes)."""
        with self._connect() as conn:
            cursor = conn.execute(
                ENQUEUE,
                (
                    key,
                    restaurant_id,
                    event,
                    json.dumps(payload, ensure_ascii=False, sort_keys=True),
                    created_at.isoformat(),
                ),
            )
            return cursor.rowcount == 1

    def pending(self, limit: int = 100) -> list[Postback]:
        with self._connect() as conn:
            return [_postback(row) for row in conn.execute(PENDING, (limit,))]

    def mark_delivered(self, key: str, at: datetime) -> bool:
        with self._connect() as conn:
            return conn.execute(MARK_DELIVERED, (at.isoformat(), key)).rowcount == 1

    def all(self) -> list[Postback]:
        with self._connect() as conn:
            return [_postback(row) for row in conn.execute(ALL_POSTBACKS)]


def _postback(row: tuple[Any, ...]) -> Postback:
    return Postback(
        key=row[0],
        restaurant_id=row[1],
        event=row[2],
        payload=json.loads(row[3]),
        created_at=datetime.fromisoformat(row[4]),
        delivered_at=datetime.fromisoformat(row[5]) if row[5] else None,
    )
