-- Claims and their append-only event log. Instants are integer microseconds since the
-- Unix epoch, UTC; local_time keeps the tenant's wall time as ISO 8601 text for people.

CREATE TABLE cronclaim_claims (
    id               INTEGER PRIMARY KEY,
    job              TEXT    NOT NULL,
    tenant           TEXT    NOT NULL,
    scheduled_for    INTEGER NOT NULL,
    local_time       TEXT,
    time_zone        TEXT,
    tick             TEXT    NOT NULL,  -- nominal local wall time, 2026-05-19T07:00
    state            TEXT    NOT NULL
                     CHECK (state IN ('pending', 'claimed', 'done', 'released', 'failed',
                                      'missed')),
    token            INTEGER NOT NULL,
    attempt          INTEGER NOT NULL,
    worker           TEXT,
    claimed_at       INTEGER,
    lease_expires_at INTEGER,
    retry_at         INTEGER,
    finished_at      INTEGER,
    last_error       TEXT,
    replays          INTEGER NOT NULL DEFAULT 0,  -- times an operator made it claimable again
    replayed_at      INTEGER,  -- the latest replay: its window runs from here
    UNIQUE (job, tenant, scheduled_for)
);

-- What workers look for, per job: due pending/released rows and expired leases; and the
-- open rows (not yet final) whose window may close. Partial, so the millions of final
-- rows cost these indexes nothing.
CREATE INDEX cronclaim_claims_retry ON cronclaim_claims (job, retry_at)
    WHERE state IN ('pending', 'released');
CREATE INDEX cronclaim_claims_lease ON cronclaim_claims (job, lease_expires_at)
    WHERE state = 'claimed';
CREATE INDEX cronclaim_claims_open ON cronclaim_claims (job, scheduled_for)
    WHERE state IN ('pending', 'released', 'claimed');
-- The ledger: every occurrence of one job's tick.
CREATE INDEX cronclaim_claims_tick ON cronclaim_claims (job, tick);

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

-- One row per fan-out of a job's tick in one time zone: how many tenants were due.
CREATE TABLE cronclaim_ticks (
    job           TEXT    NOT NULL,
    time_zone     TEXT    NOT NULL,
    scheduled_for INTEGER NOT NULL,
    tick          TEXT    NOT NULL,
    due           INTEGER NOT NULL,
    fanned_out_at INTEGER NOT NULL,
    worker        TEXT    NOT NULL,
    PRIMARY KEY (job, time_zone, scheduled_for)
);
CREATE INDEX cronclaim_ticks_tick ON cronclaim_ticks (job, tick);

-- Per job: the instant through which due occurrences have been fanned out, so a
-- restarted worker knows where to resume and can report any gap it will not cover.
CREATE TABLE cronclaim_jobs (
    job             TEXT    PRIMARY KEY,
    scanned_through INTEGER,
    last_success_at INTEGER,  -- the latest completion a worker recorded: the dead-man's switch
    updated_at      INTEGER NOT NULL,
    worker          TEXT    NOT NULL
);

-- Audit and alert rules read what went wrong, by time; the happy path is not indexed.
CREATE INDEX cronclaim_events_trouble ON cronclaim_events (at)
    WHERE kind IN ('released', 'failed', 'stale_rejected', 'missed', 'lease_expired');

-- Alerts: one row per alert key with its current state; a transition and the
-- deliveries it owes are written in one transaction, so a restart neither loses nor
-- repeats them.
CREATE TABLE cronclaim_alerts (
    key         TEXT    PRIMARY KEY,
    rule        TEXT    NOT NULL,
    job         TEXT,
    state       TEXT    NOT NULL CHECK (state IN ('open', 'resolved')),
    severity    TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    details     TEXT    NOT NULL,  -- JSON
    opened_at   INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    resolved_at INTEGER
);

CREATE TABLE cronclaim_alert_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_key       TEXT    NOT NULL,
    action          TEXT    NOT NULL CHECK (action IN ('trigger', 'resolve')),
    sink            TEXT    NOT NULL,
    payload         TEXT    NOT NULL,  -- the alert as JSON
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    last_error      TEXT
);
CREATE INDEX cronclaim_alert_outbox_due ON cronclaim_alert_outbox (next_attempt_at)
    WHERE state = 'pending';

-- The history is append-only: nothing is updated away.
CREATE TRIGGER cronclaim_events_append_only BEFORE UPDATE ON cronclaim_events
BEGIN
    SELECT RAISE(ABORT, 'cronclaim_events is append-only');
END;

-- The dashboard: tenants with a failed or missed occurrence, in tenant order, a page at a
-- time, and the failed and missed count of each day. Partial: rows enter when they fail
-- or are missed (final states), so the claim lifecycle's happy path never touches it.
CREATE INDEX cronclaim_claims_failed_missed ON cronclaim_claims (job, state, tenant, scheduled_for)
    WHERE state IN ('failed', 'missed');

-- The audit, over every job: what went wrong, by when it was due. Only rows that went
-- wrong enter it.
CREATE INDEX cronclaim_claims_trouble ON cronclaim_claims (state, scheduled_for)
    WHERE state IN ('failed', 'missed', 'released');
