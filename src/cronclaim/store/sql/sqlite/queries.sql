-- Named queries of the SQLite store. Instants are integer microseconds (UTC); :now is
-- passed by the store (the host clock, which is the database's clock for an embedded
-- database, or a virtual clock). Writes run inside BEGIN IMMEDIATE, which holds the
-- database's single write lock, so a read followed by a guarded write is atomic.

-- name: create_migrations_table
-- The bookkeeping table of applied migrations.
CREATE TABLE IF NOT EXISTS cronclaim_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
);

-- name: schema_version
-- The last applied migration, 0 when none.
SELECT COALESCE(MAX(version), 0) FROM cronclaim_migrations;

-- name: record_migration
-- Remember that a migration was applied.
INSERT INTO cronclaim_migrations (version, name, applied_at) VALUES (:version, :name, :now);

-- name: get_claim
-- The row of one occurrence.
SELECT id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error
FROM cronclaim_claims
WHERE job = :job AND tenant = :tenant AND scheduled_for = :scheduled_for;

-- name: insert_claim
-- A fresh claim, token 1 and attempt 1; nothing when the occurrence already has a row.
INSERT INTO cronclaim_claims (job, tenant, scheduled_for, local_time, time_zone, state, token,
                              attempt, worker, claimed_at, lease_expires_at)
VALUES (:job, :tenant, :scheduled_for, :local_time, :time_zone, 'claimed', 1, 1, :worker, :now,
        :lease_expires_at)
ON CONFLICT DO NOTHING
RETURNING id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
          claimed_at, lease_expires_at, retry_at, finished_at, last_error;

-- name: take_claim
-- Take a claimable row (released and due, or claimed with its lease expired) that still
-- carries the token the caller read.
UPDATE cronclaim_claims
SET state = 'claimed', token = token + 1, attempt = attempt + 1, worker = :worker,
    claimed_at = :now, lease_expires_at = :lease_expires_at, retry_at = NULL,
    finished_at = NULL
WHERE id = :id AND token = :seen_token
  AND ((state = 'released' AND retry_at <= :now)
       OR (state = 'claimed' AND lease_expires_at <= :now))
RETURNING id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
          claimed_at, lease_expires_at, retry_at, finished_at, last_error;

-- name: insert_claims_batch
-- Fresh claims for each [job, tenant, scheduled_for, local_time, time_zone] of the JSON
-- array :batch; occurrences that already have a row are left alone.
INSERT INTO cronclaim_claims (job, tenant, scheduled_for, local_time, time_zone, state, token,
                              attempt, worker, claimed_at, lease_expires_at)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       json_extract(value, '$[3]'), json_extract(value, '$[4]'), 'claimed', 1, 1, :worker,
       :now, :lease_expires_at
FROM json_each(:batch)
WHERE true
ON CONFLICT DO NOTHING
RETURNING id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
          claimed_at, lease_expires_at, retry_at, finished_at, last_error;

-- name: claimable_in_batch
-- Of the [job, tenant, scheduled_for] in the JSON array :batch, the rows that are
-- claimable now.
SELECT c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.state, c.token,
       c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at, c.finished_at,
       c.last_error
FROM json_each(:batch) AS b
JOIN cronclaim_claims AS c
  ON c.job = json_extract(b.value, '$[0]')
 AND c.tenant = json_extract(b.value, '$[1]')
 AND c.scheduled_for = json_extract(b.value, '$[2]')
WHERE (c.state = 'released' AND c.retry_at <= :now)
   OR (c.state = 'claimed' AND c.lease_expires_at <= :now);

-- name: take_claim_by_id
-- Take a row already found claimable inside this write transaction.
UPDATE cronclaim_claims
SET state = 'claimed', token = token + 1, attempt = attempt + 1, worker = :worker,
    claimed_at = :now, lease_expires_at = :lease_expires_at, retry_at = NULL,
    finished_at = NULL
WHERE id = :id;

-- name: heartbeat
-- Extend the lease of the current holder.
UPDATE cronclaim_claims
SET lease_expires_at = :lease_expires_at
WHERE id = :id AND token = :token AND state = 'claimed'
RETURNING id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
          claimed_at, lease_expires_at, retry_at, finished_at, last_error;

-- name: complete
-- The current holder marks the occurrence done.
UPDATE cronclaim_claims
SET state = 'done', finished_at = :now, lease_expires_at = NULL, last_error = NULL
WHERE id = :id AND token = :token AND state = 'claimed'
RETURNING id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
          claimed_at, lease_expires_at, retry_at, finished_at, last_error;

-- name: complete_batch
-- Complete each [id, token] of the JSON array :batch whose token is still current.
UPDATE cronclaim_claims
SET state = 'done', finished_at = :now, lease_expires_at = NULL, last_error = NULL
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS token
      FROM json_each(:batch)) AS b
WHERE cronclaim_claims.id = b.id AND cronclaim_claims.token = b.token
  AND cronclaim_claims.state = 'claimed'
RETURNING id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
          claimed_at, lease_expires_at, retry_at, finished_at, last_error;

-- name: release
-- The current holder gives the occurrence back, claimable again from :retry_at.
UPDATE cronclaim_claims
SET state = 'released', retry_at = :retry_at, lease_expires_at = NULL, last_error = :error
WHERE id = :id AND token = :token AND state = 'claimed'
RETURNING id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
          claimed_at, lease_expires_at, retry_at, finished_at, last_error;

-- name: fail
-- The current holder marks the occurrence failed for good.
UPDATE cronclaim_claims
SET state = 'failed', finished_at = :now, lease_expires_at = NULL, last_error = :error
WHERE id = :id AND token = :token AND state = 'claimed'
RETURNING id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
          claimed_at, lease_expires_at, retry_at, finished_at, last_error;

-- name: get_claim_by_id
-- The row with this id.
SELECT id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error
FROM cronclaim_claims
WHERE id = :id;

-- name: insert_event
-- Append one event to a claim's history.
INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token, error, detail)
VALUES (:claim_id, :kind, :at, :worker, :attempt, :token, :error, :detail);

-- name: events_of_claim
-- An occurrence's history, oldest first.
SELECT e.id, c.job, c.tenant, c.scheduled_for, e.kind, e.at, e.worker, e.attempt, e.token,
       e.error, e.detail
FROM cronclaim_claims AS c
JOIN cronclaim_events AS e ON e.claim_id = c.id
WHERE c.job = :job AND c.tenant = :tenant AND c.scheduled_for = :scheduled_for
ORDER BY e.id;
