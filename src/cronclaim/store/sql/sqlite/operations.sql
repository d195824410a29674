-- Named queries for operations: audit, replay, the dead-man's switch and alert state.
-- Instants are integer microseconds (UTC), as in queries.sql.
--
-- Queries of what went wrong repeat the predicate of the partial index
-- cronclaim_events_trouble (kind IN ('released', 'failed', 'stale_rejected', 'missed',
-- 'lease_expired')) word for word: SQLite uses a partial index only when the query's
-- WHERE holds its terms literally, and would otherwise read every event.

-- name: audit_orphans
-- Claimed rows nobody settles: the lease expired before :lease_cutoff and nobody took
-- over, or the claim is older than :held_cutoff (the seed's "claimed_at < now - 24h").
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at
FROM cronclaim_claims
WHERE state = 'claimed' AND (:job IS NULL OR job = :job)
  AND (lease_expires_at <= :lease_cutoff OR claimed_at <= :held_cutoff)
ORDER BY claimed_at
LIMIT :limit;

-- name: audit_in_state
-- Rows of one state (failed, released, missed) scheduled since :since, oldest first.
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at
FROM cronclaim_claims
-- The literal IN lets the planner use the partial index whatever :state is.
WHERE state = :state AND state IN ('failed', 'missed', 'released')
  AND (:job IS NULL OR job = :job) AND scheduled_for >= :since
ORDER BY scheduled_for, job, tenant
LIMIT :limit;

-- name: audit_stale_rejections
-- Late calls refused for a stale fencing token since :since, with the claim's current row.
SELECT c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.tick, c.state,
       c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
       c.finished_at, c.last_error, c.replays, c.replayed_at,
       e.worker, e.token, e.detail, e.at
FROM cronclaim_events AS e
JOIN cronclaim_claims AS c ON c.id = e.claim_id
WHERE e.kind = 'stale_rejected'
  AND e.kind IN ('released', 'failed', 'stale_rejected', 'missed', 'lease_expired')
  AND e.at >= :since AND (:job IS NULL OR c.job = :job)
ORDER BY e.at
LIMIT :limit;

-- name: audit_repeated_errors
-- Occurrences not done whose attempts since :since failed at least :min_count times
-- with the same error, most repeated first.
SELECT c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.tick, c.state,
       c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
       c.finished_at, c.last_error, c.replays, c.replayed_at,
       r.error, r.n
FROM (
    SELECT claim_id, error, COUNT(*) AS n
    FROM cronclaim_events
    WHERE kind IN ('released', 'failed')
      AND kind IN ('released', 'failed', 'stale_rejected', 'missed', 'lease_expired')
      AND at >= :since AND error IS NOT NULL
    GROUP BY claim_id, error
    HAVING COUNT(*) >= :min_count
) AS r
JOIN cronclaim_claims AS c ON c.id = r.claim_id
WHERE (:job IS NULL OR c.job = :job) AND c.state <> 'done'
ORDER BY r.n DESC, c.scheduled_for
LIMIT :limit;

-- name: replay_candidates
-- The rows of :job scheduled in [:start, :end] (optionally one tenant), any state.
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at
FROM cronclaim_claims
WHERE job = :job AND scheduled_for >= :start AND scheduled_for <= :end
  AND (:tenant IS NULL OR tenant = :tenant)
ORDER BY scheduled_for, tenant
LIMIT :limit;

-- name: replay_one
-- Make one final row claimable again now, with a renewed attempt budget.
UPDATE cronclaim_claims
SET state = 'pending', retry_at = :now, attempt = 0, replays = replays + 1,
    replayed_at = :now, worker = NULL,
    lease_expires_at = NULL, finished_at = NULL
WHERE id = :id AND token = :token AND state = :state;

-- name: record_success
-- Move :job's last successful completion forward (never back).
INSERT INTO cronclaim_jobs (job, last_success_at, updated_at, worker)
VALUES (:job, :at, :now, :worker)
ON CONFLICT (job)
DO UPDATE SET last_success_at = max(COALESCE(last_success_at, excluded.last_success_at),
                                    excluded.last_success_at),
              updated_at = excluded.updated_at;

-- name: last_success
-- :job's last successful completion recorded by a worker.
SELECT last_success_at FROM cronclaim_jobs WHERE job = :job;

-- name: failures_since
-- Failed attempts of :job since :since by dependency and tenant, with one sample error.
SELECT COALESCE(e.detail, ''), c.tenant, COUNT(*), MAX(e.error)
-- CROSS JOIN keeps the events outermost, read from their partial index by time: the
-- planner would otherwise walk every claim the job ever had.
FROM cronclaim_events AS e
CROSS JOIN cronclaim_claims AS c ON c.id = e.claim_id
WHERE e.kind IN ('released', 'failed')
  AND e.kind IN ('released', 'failed', 'stale_rejected', 'missed', 'lease_expired')
  AND e.at >= :since AND c.job = :job
GROUP BY COALESCE(e.detail, ''), c.tenant;

-- name: failed_since
-- Occurrences of :job that failed since :since and are still failed, with the
-- dependency of their last failure.
SELECT COALESCE(e.detail, ''), c.tenant, c.last_error, c.scheduled_for
-- CROSS JOIN keeps the events outermost, read from their partial index by time: the
-- planner would otherwise walk every claim the job ever had.
FROM cronclaim_events AS e
CROSS JOIN cronclaim_claims AS c ON c.id = e.claim_id
WHERE e.kind = 'failed'
  AND e.kind IN ('released', 'failed', 'stale_rejected', 'missed', 'lease_expired')
  AND e.at >= :since AND c.job = :job AND c.state = 'failed'
ORDER BY c.scheduled_for;

-- name: missed_since
-- Occurrences of :job recorded missed since :since and still missed.
SELECT c.tenant, c.scheduled_for, c.last_error
-- CROSS JOIN keeps the events outermost, read from their partial index by time: the
-- planner would otherwise walk every claim the job ever had.
FROM cronclaim_events AS e
CROSS JOIN cronclaim_claims AS c ON c.id = e.claim_id
WHERE e.kind = 'missed'
  AND e.kind IN ('released', 'failed', 'stale_rejected', 'missed', 'lease_expired')
  AND e.at >= :since AND c.job = :job AND c.state = 'missed'
ORDER BY c.scheduled_for;

-- name: alert_get
-- The current state of one alert.
SELECT key, rule, job, state, severity, summary, details, opened_at, updated_at, resolved_at
FROM cronclaim_alerts
WHERE key = :key;

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
-- Open an alert that has no row yet.
INSERT INTO cronclaim_alerts (key, rule, job, state, severity, summary, details, opened_at,
                              updated_at)
VALUES (:key, :rule, :job, 'open', :severity, :summary, :details, :now, :now)
ON CONFLICT (key) DO NOTHING;

-- name: alert_reopen
-- Reopen a resolved alert; nothing if it is open already.
UPDATE cronclaim_alerts
SET state = 'open', rule = :rule, job = :job, severity = :severity, summary = :summary,
    details = :details, opened_at = :now, updated_at = :now, resolved_at = NULL
WHERE key = :key AND state = 'resolved';

-- name: alert_refresh
-- Update the summary and details of an open alert (no delivery).
UPDATE cronclaim_alerts
SET summary = :summary, details = :details, updated_at = :now
WHERE key = :key AND state = 'open';

-- name: alert_resolve
-- Resolve an open alert; nothing if it is resolved already.
UPDATE cronclaim_alerts
SET state = 'resolved', updated_at = :now, resolved_at = :now
WHERE key = :key AND state = 'open';

-- name: outbox_add
-- Owe one delivery of an alert transition to one sink.
INSERT INTO cronclaim_alert_outbox (alert_key, action, sink, payload, state, created_at,
                                    next_attempt_at)
VALUES (:key, :action, :sink, :payload, 'pending', :now, :now);

-- name: outbox_due
-- Deliveries due now, oldest first.
SELECT id, alert_key, action, sink, payload, attempts
FROM cronclaim_alert_outbox
WHERE state = 'pending' AND next_attempt_at <= :now
ORDER BY id
LIMIT :limit;

-- name: outbox_lease
-- Hold a due delivery for :until so a concurrent worker does not send it too.
UPDATE cronclaim_alert_outbox
SET next_attempt_at = :until
WHERE id = :id AND state = 'pending' AND next_attempt_at <= :now;

-- name: outbox_settle
-- Record a delivery's outcome: sent, failed for good, or pending until :next_attempt_at.
UPDATE cronclaim_alert_outbox
SET state = :state, attempts = attempts + :attempts,
    next_attempt_at = COALESCE(:next_attempt_at, next_attempt_at),
    sent_at = :sent_at, last_error = COALESCE(:error, last_error)
WHERE id = :id;

-- name: outbox_rows
-- Every delivery of one alert key, oldest first.
SELECT id, alert_key, action, sink, payload, state, attempts, created_at, sent_at, last_error
FROM cronclaim_alert_outbox
WHERE :key IS NULL OR alert_key = :key
ORDER BY id;
