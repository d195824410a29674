-- Claims and their append-only event log.

CREATE TABLE cronclaim_claims (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job              text        NOT NULL,
    tenant           text        NOT NULL,
    scheduled_for    timestamptz NOT NULL,
    local_time       text,
    time_zone        text,
    state            text        NOT NULL
                     CHECK (state IN ('claimed', 'done', 'released', 'failed', 'missed')),
    token            bigint      NOT NULL,
    attempt          integer     NOT NULL,
    worker           text,
    claimed_at       timestamptz,
    lease_expires_at timestamptz,
    retry_at         timestamptz,
    finished_at      timestamptz,
    last_error       text,
    CONSTRAINT cronclaim_claims_occurrence UNIQUE (job, tenant, scheduled_for)
);

-- What workers scan for: expired leases and released claims whose retry time passed.
CREATE INDEX cronclaim_claims_lease ON cronclaim_claims (lease_expires_at)
    WHERE state = 'claimed';
CREATE INDEX cronclaim_claims_retry ON cronclaim_claims (retry_at)
    WHERE state = 'released';

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

-- The history is append-only: nothing is updated away.
CREATE FUNCTION cronclaim_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cronclaim_events is append-only';
END;
$$;

CREATE TRIGGER cronclaim_events_append_only BEFORE UPDATE ON cronclaim_events
    FOR EACH ROW EXECUTE FUNCTION cronclaim_events_append_only();
