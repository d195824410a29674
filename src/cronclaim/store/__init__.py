"""Claim stores: the :class:`Store` contract and its SQLite and PostgreSQL backends."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from cronclaim.clock import Clock
from cronclaim.exceptions import ConfigurationError
from cronclaim.store.base import DEFAULT_RETRY_AFTER, MAX_BATCH, Store

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "MAX_BATCH",
    "DatabaseURL",
    "Store",
    "open_store",
    "parse_database_url",
    "redact",
]

_SQLITE_OPTIONS = {"synchronous", "busy_timeout"}


@dataclass(frozen=True)
class DatabaseURL:
    backend: str  # "sqlite" or "postgresql"
    target: str  # a file path, or a libpq connection URI
    options: dict[str, str] = field(default_factory=dict)


def redact(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def parse_database_url(url: str) -> DatabaseURL:
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(
            "no database URL given; use sqlite:///path/to/file.db or postgresql://host/db"
        )
    try:
        parts = urlsplit(url)
        if "," not in parts.netloc:  # libpq's multi-host form is left to libpq
            parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise ConfigurationError(f"cannot parse database URL {redact(url)!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if parts.netloc:
            raise ConfigurationError(
                f"cannot parse database URL {redact(url)!r}: a SQLite URL has three slashes "
                "and no host, e.g. sqlite:///claims.db (relative) or sqlite:////var/x.db"
            )
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise ConfigurationError(f"database URL {url!r} names no SQLite file")
        if path == ":memory:":
            raise ConfigurationError(
                "an in-memory SQLite database cannot be shared between workers and is lost "
                "with the process; give a file path, e.g. sqlite:///claims.db"
            )
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(options) - _SQLITE_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"unknown SQLite option(s) {', '.join(unknown)} in {url!r}; "
                f"known: {', '.join(sorted(_SQLITE_OPTIONS))}"
            )
        return DatabaseURL("sqlite", path, options)
    if scheme in {"postgresql", "postgres"}:
        return DatabaseURL("postgresql", url)
    raise ConfigurationError(
        f"unsupported database URL scheme {parts.scheme or '(none)'!r} in {redact(url)!r}; "
        "use sqlite:///path/to/file.db or postgresql://user@host:5432/dbname"
    )


def open_store(
    url: str | DatabaseURL,
    *,
    clock: Clock,
    migrate: bool | None = None,
    pool_size: int = 10,
) -> Store:
    """Open the store named by ``url``.

    ``migrate`` applies pending migrations on open; by default it does so for SQLite
    (one file, nobody else to ask) and not for PostgreSQL, whose schema is upgraded
    deliberately with ``cronclaim db upgrade``.
    """
    parsed = url if isinstance(url, DatabaseURL) else parse_database_url(url)
    if parsed.backend == "sqlite":
        from cronclaim.store.sqlite import SQLiteStore

        try:
            busy_timeout = float(parsed.options.get("busy_timeout", "30"))
        except ValueError:
            raise ConfigurationError(
                f"busy_timeout must be a number of seconds, got {parsed.options['busy_timeout']!r}"
            ) from None
        return SQLiteStore(
            parsed.target,
            clock=clock,
            synchronous=parsed.options.get("synchronous", "FULL"),
            busy_timeout=busy_timeout,
            migrate=True if migrate is None else migrate,
        )
    from cronclaim.store.postgres import PostgresStore

    return PostgresStore(parsed.target, clock=clock, migrate=bool(migrate), pool_size=pool_size)
