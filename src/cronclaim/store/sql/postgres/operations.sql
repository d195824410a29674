-- Named queries for operations: audit, replay, the dead-man's switch and alert state.

-- name: audit_orphans
-- Claimed rows nobody settles: the lease expired before %(lease_cutoff)s and nobody took
-- over, or the claim is older than %(held_cutoff)s (the seed's "claimed_at < now - 24h").
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at
FROM cronclaim_claims
WHERE state = 'claimed' AND (%(job)s::text IS NULL OR job = %(job)s::text)
  AND (lease_expires_at <= %(lease_cutoff)s OR claimed_at <= %(held_cutoff)s)
ORDER BY claimed_at
LIMIT %(limit)s;

-- name: audit_in_state
-- Rows of one state (failed, released, missed) scheduled since %(since)s, oldest first.
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at
FROM cronclaim_claims
-- The literal IN lets the planner use the partial index whatever %(state)s is.
WHERE state = %(state)s AND state IN ('failed', 'missed', 'released')
  AND (%(job)s::text IS NULL OR job = %(job)s::text)
  AND scheduled_for >= %(since)s
ORDER BY scheduled_for, job, tenant
LIMIT %(limit)s;

-- name: audit_stale_rejections
-- Late calls refused for a stale fencing token since %(since)s, with the claim's row.
SELECT c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.tick, c.state,
       c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
       c.finished_at, c.last_error, c.replays, c.replayed_at,
       e.worker, e.token, e.detail, e.at
FROM cronclaim_events AS e
JOIN cronclaim_claims AS c ON c.id = e.claim_id
WHERE e.kind = 'stale_rejected' AND e.at >= %(since)s
  AND (%(job)s::text IS NULL OR c.job = %(job)s::text)
ORDER BY e.at
LIMIT %(limit)s;

-- name: audit_repeated_errors
-- Occurrences not done whose attempts since %(since)s failed at least %(min_count)s
-- times with the same error, most repeated first.
SELECT c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.tick, c.state,
       c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
       c.finished_at, c.last_error, c.replays, c.replayed_at,
       r.error, r.n
FROM (
    SELECT claim_id, error, COUNT(*) AS n
    FROM cronclaim_events
    WHERE kind IN ('released', 'failed') AND at >= %(since)s AND error IS NOT NULL
    GROUP BY claim_id, error
    HAVING COUNT(*) >= %(min_count)s
) AS r
JOIN cronclaim_claims AS c ON c.id = r.claim_id
WHERE (%(job)s::text IS NULL OR c.job = %(job)s::text) AND c.state <> 'done'
ORDER BY r.n DESC, c.scheduled_for
LIMIT %(limit)s;

-- name: replay_candidates
-- The rows of %(job)s scheduled in [%(start)s, %(end)s] (optionally one tenant), any state.
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at
FROM cronclaim_claims
WHERE job = %(job)s AND scheduled_for >= %(start)s AND scheduled_for <= %(end)s
  AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
ORDER BY scheduled_for, tenant
LIMIT %(limit)s;

-- name: replay_rows
-- Make final rows claimable again now, with a renewed attempt budget, each only if still
-- in the state it was selected in; with their 'replayed' events naming who asked.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
b AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[], %(states)s::text[])
         AS b(id, token, state)
),
upd AS (
    UPDATE cronclaim_claims AS c
    SET state = 'pending', retry_at = t.now, attempt = 0, replays = c.replays + 1,
        replayed_at = t.now,
        worker = NULL, lease_expires_at = NULL, finished_at = NULL
    FROM b, t
    WHERE c.id = b.id AND c.token = b.token AND c.state = b.state
    RETURNING c.id, c.token, b.state AS prior_state, t.now AS at
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token, detail)
    SELECT id, 'replayed', at, %(requested_by)s, 0, token,
           'was ' || prior_state || '; requested by ' || %(requested_by)s
    FROM upd
)
SELECT id FROM upd;

-- name: record_success
-- Move %(job)s's last successful completion forward (never back).
INSERT INTO cronclaim_jobs (job, last_success_at, updated_at, worker)
VALUES (%(job)s, %(at)s, COALESCE(%(now)s::timestamptz, statement_timestamp()), %(worker)s)
ON CONFLICT (job)
DO UPDATE SET last_success_at = GREATEST(cronclaim_jobs.last_success_at,
                                         EXCLUDED.last_success_at),
              updated_at = EXCLUDED.updated_at;

-- name: last_success
-- %(job)s's last successful completion recorded by a worker.
SELECT last_success_at FROM cronclaim_jobs WHERE job = %(job)s;

-- name: failures_since
-- Failed attempts of %(job)s since %(since)s by dependency and tenant, with a sample error.
SELECT COALESCE(e.detail, ''), c.tenant, COUNT(*), MAX(e.error)
FROM cronclaim_events AS e
JOIN cronclaim_claims AS c ON c.id = e.claim_id
WHERE e.kind IN ('released', 'failed') AND e.at >= %(since)s AND c.job = %(job)s
GROUP BY COALESCE(e.detail, ''), c.tenant;

-- name: failed_since
-- Occurrences of %(job)s that failed since %(since)s and are still failed, with the
-- dependency of their last failure.
SELECT COALESCE(e.detail, ''), c.tenant, c.last_error, c.scheduled_for
FROM cronclaim_events AS e
JOIN cronclaim_claims AS c ON c.id = e.claim_id
WHERE e.kind = 'failed' AND e.at >= %(since)s AND c.job = %(job)s AND c.state = 'failed'
ORDER BY c.scheduled_for;

-- name: missed_since
-- Occurrences of %(job)s recorded missed since %(since)s and still missed.
SELECT c.tenant, c.scheduled_for, c.last_error
FROM cronclaim_events AS e
JOIN cronclaim_claims AS c ON c.id = e.claim_id
WHERE e.kind = 'missed' AND e.at >= %(since)s AND c.job = %(job)s AND c.state = 'missed'
ORDER BY c.scheduled_for;

-- name: alert_get
-- The current state of one alert.
SELECT key, rule, job, state, severity, summary, details, opened_at, updated_at, resolved_at
FROM cronclaim_alerts
WHERE key = %(key)s;

-- name: alerts_open
-- Every open alert, oldest first.
SELECT key, rule, job, state, severity, summary, details, opened_at, updated_at, resolved_at
FROM cronclaim_alerts
WHERE state = 'open'
ORDER BY opened_at;

-- name: alerts_all
-- Every alert, open or resolved, oldest first.
SELECT key, rule, job, state, severity, summary, details, opened_at, updated_at, resolved_at
FROM cronclaim_alerts
ORDER BY opened_at;

-- name: alert_open_insert
-- Open an alert that has no row yet; returns it when this call opened it.
INSERT INTO cronclaim_alerts (key, rule, job, state, severity, summary, details, opened_at,
                              updated_at)
VALUES (%(key)s, %(rule)s, %(job)s, 'open', %(severity)s, %(summary)s, %(details)s,
        COALESCE(%(now)s::timestamptz, statement_timestamp()),
        COALESCE(%(now)s::timestamptz, statement_timestamp()))
ON CONFLICT (key) DO NOTHING
RETURNING key;

-- name: alert_reopen
-- Reopen a resolved alert; returns it when this call reopened it.
UPDATE cronclaim_alerts
SET state = 'open', rule = %(rule)s, job = %(job)s, severity = %(severity)s,
    summary = %(summary)s, details = %(details)s,
    opened_at = COALESCE(%(now)s::timestamptz, statement_timestamp()),
    updated_at = COALESCE(%(now)s::timestamptz, statement_timestamp()), resolved_at = NULL
WHERE key = %(key)s AND state = 'resolved'
RETURNING key;

-- name: alert_refresh
-- Update the summary and details of an open alert (no delivery).
UPDATE cronclaim_alerts
SET summary = %(summary)s, details = %(details)s,
    updated_at = COALESCE(%(now)s::timestamptz, statement_timestamp())
WHERE key = %(key)s AND state = 'open';

-- name: alert_resolve
-- Resolve an open alert; returns it when this call resolved it.
UPDATE cronclaim_alerts
SET state = 'resolved', updated_at = COALESCE(%(now)s::timestamptz, statement_timestamp()),
    resolved_at = COALESCE(%(now)s::timestamptz, statement_timestamp())
WHERE key = %(key)s AND state = 'open'
RETURNING key;

-- name: outbox_add
-- Owe one delivery of an alert transition to one sink.
INSERT INTO cronclaim_alert_outbox (alert_key, action, sink, payload, state, created_at,
                                    next_attempt_at)
VALUES (%(key)s, %(action)s, %(sink)s, %(payload)s, 'pending',
        COALESCE(%(now)s::timestamptz, statement_timestamp()),
        COALESCE(%(now)s::timestamptz, statement_timestamp()));

-- name: outbox_claim
-- Hold up to %(limit)s due deliveries until %(hold)s from now, oldest first; rows another
-- worker holds are skipped.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now)
UPDATE cronclaim_alert_outbox AS o
SET next_attempt_at = t.now + %(hold)s::interval
FROM t
WHERE o.id IN (
    SELECT id FROM cronclaim_alert_outbox
    WHERE state = 'pending' AND next_attempt_at <= (SELECT now FROM t)
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING o.id, o.alert_key, o.action, o.sink, o.payload, o.attempts;

-- name: outbox_settle
-- Record a delivery's outcome: sent, failed for good, or pending until a later attempt.
UPDATE cronclaim_alert_outbox
SET state = %(state)s, attempts = attempts + %(attempts)s,
    next_attempt_at = COALESCE(%(next_attempt_at)s::timestamptz, next_attempt_at),
    sent_at = %(sent_at)s, last_error = COALESCE(%(error)s::text, last_error)
WHERE id = %(id)s;

-- name: outbox_rows
-- Every delivery of one alert key (all when NULL), oldest first.
SELECT id, alert_key, action, sink, payload, state, attempts, created_at, sent_at, last_error
FROM cronclaim_alert_outbox
WHERE %(key)s::text IS NULL OR alert_key = %(key)s::text
ORDER BY id;
