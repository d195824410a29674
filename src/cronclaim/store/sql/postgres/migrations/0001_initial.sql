-- Claims and their append-only event log.

CREATE TABLE cronclaim_claims (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job              text        NOT NULL,
    tenant           text        NOT NULL,
    scheduled_for    timestamptz NOT NULL,
    local_time       text,
    time_zone        text,
    tick             text        NOT NULL,  -- nominal local wall time, 2026-05-19T07:00
    state            text        NOT NULL
                     CHECK (state IN ('pending', 'claimed', 'done', 'released', 'failed',
                                      'missed')),
    token            bigint      NOT NULL,
    attempt          integer     NOT NULL,
    worker           text,
    claimed_at       timestamptz,
    lease_expires_at timestamptz,
    retry_at         timestamptz,
    finished_at      timestamptz,
    last_error       text,
    replays          integer     NOT NULL DEFAULT 0,  -- times an operator made it claimable again
    replayed_at      timestamptz,  -- the latest replay: its window runs from here
    CONSTRAINT cronclaim_claims_occurrence UNIQUE (job, tenant, scheduled_for)
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
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    claim_id  bigint      NOT NULL,
    kind      text        NOT NULL,
    at        timestamptz NOT NULL,
    worker    text,
    attempt   integer,
    token     bigint,
    error     text,
    detail    text
);

CREATE INDEX cronclaim_events_claim ON cronclaim_events (claim_id, id);

-- One row per fan-out of a job's tick in one time zone: how many tenants were due.
CREATE TABLE cronclaim_ticks (
    job           text        NOT NULL,
    time_zone     text        NOT NULL,
    scheduled_for timestamptz NOT NULL,
    tick          text        NOT NULL,
    due           integer     NOT NULL,
    fanned_out_at timestamptz NOT NULL,
    worker        text        NOT NULL,
    PRIMARY KEY (job, time_zone, scheduled_for)
);
CREATE INDEX cronclaim_ticks_tick ON cronclaim_ticks (job, tick);

-- Per job: the instant through which due occurrences have been fanned out, so a
-- restarted worker knows where to resume and can report any gap it will not cover.
CREATE TABLE cronclaim_jobs (
    job             text        PRIMARY KEY,
    scanned_through timestamptz,
    last_success_at timestamptz,  -- the latest completion a worker recorded: the dead-man's switch
    updated_at      timestamptz NOT NULL,
    worker          text        NOT NULL
);

-- Audit and alert rules read what went wrong, by time; the happy path is not indexed.
CREATE INDEX cronclaim_events_trouble ON cronclaim_events (at)
    WHERE kind IN ('released', 'failed', 'stale_rejected', 'missed', 'lease_expired');

-- Alerts: one row per alert key with its current state; a transition and the
-- deliveries it owes are written in one transaction, so a restart neither loses nor
-- repeats them.
CREATE TABLE cronclaim_alerts (
    key         text        PRIMARY KEY,
    rule        text        NOT NULL,
    job         text,
    state       text        NOT NULL CHECK (state IN ('open', 'resolved')),
    severity    text        NOT NULL,
    summary     text        NOT NULL,
    details     text        NOT NULL,  -- JSON
    opened_at   timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    resolved_at timestamptz
);

CREATE TABLE cronclaim_alert_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_key       text        NOT NULL,
    action          text        NOT NULL CHECK (action IN ('trigger', 'resolve')),
    sink            text        NOT NULL,
    payload         text        NOT NULL,  -- the alert as JSON
    state           text        NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    sent_at         timestamptz,
    last_error      text
);
CREATE INDEX cronclaim_alert_outbox_due ON cronclaim_alert_outbox (next_attempt_at)
    WHERE state = 'pending';

-- The history is append-only: nothing is updated away.
CREATE FUNCTION cronclaim_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cronclaim_events is append-only';
END;
$$;

CREATE TRIGGER cronclaim_events_append_only BEFORE UPDATE ON cronclaim_events
    FOR EACH ROW EXECUTE FUNCTION cronclaim_events_append_only();

-- The dashboard: tenants with a failed or missed occurrence, in tenant order, a page at a
-- time, and the failed and missed count of each day. Partial: rows enter when they fail
-- or are missed (final states), so the claim lifecycle's happy path never touches it.
CREATE INDEX cronclaim_claims_failed_missed ON cronclaim_claims (job, state, tenant, scheduled_for)
    WHERE state IN ('failed', 'missed');

-- The audit, over every job: what went wrong, by when it was due. Only rows that went
-- wrong enter it.
CREATE INDEX cronclaim_claims_trouble ON cronclaim_claims (state, scheduled_for)
    WHERE state IN ('failed', 'missed', 'released');
