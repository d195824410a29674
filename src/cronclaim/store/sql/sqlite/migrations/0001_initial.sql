-- Claims and their append-only event log. Instants are integer microseconds since the
-- Unix epoch, UTC; local_time keeps the tenant's wall time as ISO 8601 text for people.

CREATE TABLE cronclaim_claims (
    id               INTEGER PRIMARY KEY,
    job              TEXT    NOT NULL,
    tenant           TEXT    NOT NULL,
    scheduled_for    INTEGER NOT NULL,
    local_time       TEXT,
    time_zone        TEXT,
    state            TEXT    NOT NULL
                     CHECK (state IN ('claimed', 'done', 'released', 'failed', 'missed')),
    token            INTEGER NOT NULL,
    attempt          INTEGER NOT NULL,
    worker           TEXT,
    claimed_at       INTEGER,
    lease_expires_at INTEGER,
    retry_at         INTEGER,
    finished_at      INTEGER,
    last_error       TEXT,
    UNIQUE (job, tenant, scheduled_for)
);

-- What workers scan for: expired leases and released claims whose retry time passed.
CREATE INDEX cronclaim_claims_lease ON cronclaim_claims (lease_expires_at)
    WHERE state = 'claimed';
CREATE INDEX cronclaim_claims_retry ON cronclaim_claims (retry_at)
    WHERE state = 'released';

CREATE TABLE cronclaim_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: an id is never reused
    claim_id  INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    worker    TEXT,
    attempt   INTEGER,
    token     INTEGER,
    error     TEXT,
    detail    TEXT
);

CREATE INDEX cronclaim_events_claim ON cronclaim_events (claim_id, id);

-- The history is append-only: nothing is updated away.
CREATE TRIGGER cronclaim_events_append_only BEFORE UPDATE ON cronclaim_events
BEGIN
    SELECT RAISE(ABORT, 'cronclaim_events is append-only');
END;
