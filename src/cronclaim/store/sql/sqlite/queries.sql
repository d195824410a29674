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
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at
FROM cronclaim_claims
WHERE job = :job AND tenant = :tenant AND scheduled_for = :scheduled_for;

-- name: insert_claim
-- A fresh claim, token 1 and attempt 1; nothing when the occurrence already has a row.
-- Only the id comes back: the row holds what the store just wrote.
INSERT INTO cronclaim_claims (job, tenant, scheduled_for, local_time, time_zone, tick, state, token,
                              attempt, worker, claimed_at, lease_expires_at)
VALUES (:job, :tenant, :scheduled_for, :local_time, :time_zone, :tick, 'claimed', 1, 1, :worker,
        :now, :lease_expires_at)
ON CONFLICT DO NOTHING
RETURNING id;

-- name: take_claim
-- Take a claimable row (pending or released and due, or claimed with its lease expired)
-- that still carries the token the caller read.
UPDATE cronclaim_claims
SET state = 'claimed', token = token + 1, attempt = attempt + 1, worker = :worker,
    claimed_at = :now, lease_expires_at = :lease_expires_at, retry_at = NULL,
    finished_at = NULL
WHERE id = :id AND token = :seen_token
  AND ((state IN ('pending', 'released') AND retry_at <= :now)
       OR (state = 'claimed' AND lease_expires_at <= :now))
RETURNING id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
          claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at;

-- name: insert_claims_batch
-- Fresh claims for each [job, tenant, scheduled_for, local_time, time_zone, tick] of the
-- JSON array :batch; occurrences that already have a row are left alone. No RETURNING:
-- the rows inserted are read back as one value (claims_after), see max_claim_id.
INSERT INTO cronclaim_claims (job, tenant, scheduled_for, local_time, time_zone, tick, state, token,
                              attempt, worker, claimed_at, lease_expires_at)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'),
       'claimed', 1, 1, :worker, :now, :lease_expires_at
FROM json_each(:batch)
WHERE true
ON CONFLICT DO NOTHING;

-- name: max_claim_id
-- The highest claim id. Inside a write transaction, the rows inserted after this read
-- are those above it: SQLite gives a new row the highest id plus one.
SELECT COALESCE(MAX(id), 0) FROM cronclaim_claims;

-- name: claims_after
-- [id, job, tenant, scheduled_for] of every claim above :after, as one JSON array: one
-- value to read instead of one row per claim. (Python's sqlite3 hands the GIL over and
-- back for every row it steps to; with the event loop busy, each cost up to the
-- interpreter's 5 ms switch interval, with SQLite's write lock held.)
SELECT json_group_array(json_array(id, job, tenant, scheduled_for))
FROM cronclaim_claims
WHERE id > :after;

-- name: insert_events_after
-- One :kind event at :at for each claim above :after (the claims this transaction
-- inserted), naming the worker, attempt and token its row holds.
INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)
SELECT id, :kind, :at, worker, attempt, token
FROM cronclaim_claims
WHERE id > :after;

-- name: claimable_in_batch
-- Of the [job, tenant, scheduled_for] in the JSON array :batch, the rows that are
-- claimable now.
SELECT c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.tick, c.state, c.token,
       c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at, c.finished_at,
       c.last_error, c.replays, c.replayed_at
FROM json_each(:batch) AS b
JOIN cronclaim_claims AS c
  ON c.job = json_extract(b.value, '$[0]')
 AND c.tenant = json_extract(b.value, '$[1]')
 AND c.scheduled_for = json_extract(b.value, '$[2]')
WHERE (c.state IN ('pending', 'released') AND c.retry_at <= :now)
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
RETURNING id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
          claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at;

-- name: complete
-- The current holder marks the occurrence done. Only the id comes back: the store builds
-- the done claim from the one it was given (see completed_claim).
UPDATE cronclaim_claims
SET state = 'done', finished_at = :now, lease_expires_at = NULL, last_error = NULL
WHERE id = :id AND token = :token AND state = 'claimed'
RETURNING id;

-- name: completable_in_batch
-- Of each [id, token] of the JSON array :batch, the ids whose token is current and whose
-- row is claimed, as one JSON array (one value to read, see claims_after).
SELECT json_group_array(c.id)
FROM json_each(:batch) AS b
CROSS JOIN cronclaim_claims AS c
WHERE c.id = json_extract(b.value, '$[0]') AND c.token = json_extract(b.value, '$[1]')
  AND c.state = 'claimed';

-- name: complete_batch
-- Complete the claims of the JSON array of ids :ids, found completable (by
-- completable_in_batch) inside this write transaction.
UPDATE cronclaim_claims
SET state = 'done', finished_at = :now, lease_expires_at = NULL, last_error = NULL
WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'claimed';

-- name: release
-- The current holder gives the occurrence back, claimable again from :retry_at.
UPDATE cronclaim_claims
SET state = 'released', retry_at = :retry_at, lease_expires_at = NULL, last_error = :error
WHERE id = :id AND token = :token AND state = 'claimed'
RETURNING id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
          claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at;

-- name: fail
-- The current holder marks the occurrence failed for good.
UPDATE cronclaim_claims
SET state = 'failed', finished_at = :now, lease_expires_at = NULL, last_error = :error
WHERE id = :id AND token = :token AND state = 'claimed'
RETURNING id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
          claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at;

-- name: get_claim_by_id
-- The row with this id.
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at
FROM cronclaim_claims
WHERE id = :id;

-- name: insert_event
-- Append one event to a claim's history.
INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token, error, detail)
VALUES (:claim_id, :kind, :at, :worker, :attempt, :token, :error, :detail);

-- name: insert_events_batch
-- One :kind event at :at for each claim id of the JSON array :ids, naming the worker,
-- attempt and token its row holds: the transition it records was just written, in this
-- transaction. One statement, where one insert per event cost four times as much.
INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)
SELECT c.id, :kind, :at, c.worker, c.attempt, c.token
FROM json_each(:ids) AS b
CROSS JOIN cronclaim_claims AS c
WHERE c.id = b.value;

-- name: events_of_claim
-- An occurrence's history, oldest first.
SELECT e.id, c.job, c.tenant, c.scheduled_for, e.kind, e.at, e.worker, e.attempt, e.token,
       e.error, e.detail
FROM cronclaim_claims AS c
JOIN cronclaim_events AS e ON e.claim_id = c.id
WHERE c.job = :job AND c.tenant = :tenant AND c.scheduled_for = :scheduled_for
ORDER BY e.id;

-- name: enqueue_pending
-- Rows for occurrences that came due, each [job, tenant, scheduled_for, local_time,
-- time_zone, tick, not_before] of the JSON array :batch; claimable from not_before.
-- Occurrences that already have a row are left alone.
INSERT INTO cronclaim_claims (job, tenant, scheduled_for, local_time, time_zone, tick, state,
                              token, attempt, retry_at)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'),
       'pending', 0, 0, json_extract(value, '$[6]')
FROM json_each(:batch)
WHERE true
ON CONFLICT DO NOTHING;

-- name: insert_missed
-- Rows for occurrences whose window closed before any worker fanned them out, each
-- [job, tenant, scheduled_for, local_time, time_zone, tick] of the JSON array :batch.
INSERT INTO cronclaim_claims (job, tenant, scheduled_for, local_time, time_zone, tick, state,
                              token, attempt, finished_at, last_error)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'),
       'missed', 0, 0, :now, :reason
FROM json_each(:batch)
WHERE true
ON CONFLICT DO NOTHING
RETURNING id;

-- name: due_waiting
-- Pending and released rows of :job that are claimable now, earliest first, as one JSON
-- array of rows (one value to read, see claims_after).
SELECT json_group_array(json_array(id, job, tenant, scheduled_for, local_time, time_zone, tick,
                                   state, token, attempt, worker, claimed_at, lease_expires_at,
                                   retry_at, finished_at, last_error, replays, replayed_at))
FROM (SELECT * FROM cronclaim_claims
      WHERE job = :job AND state IN ('pending', 'released') AND retry_at <= :now
      ORDER BY retry_at
      LIMIT :limit);

-- name: due_expired
-- Claimed rows of :job whose lease expired (their holder died or stopped heart-beating),
-- as one JSON array of rows.
SELECT json_group_array(json_array(id, job, tenant, scheduled_for, local_time, time_zone, tick,
                                   state, token, attempt, worker, claimed_at, lease_expires_at,
                                   retry_at, finished_at, last_error, replays, replayed_at))
FROM (SELECT * FROM cronclaim_claims
      WHERE job = :job AND state = 'claimed' AND lease_expires_at <= :now
      ORDER BY lease_expires_at
      LIMIT :limit);

-- name: take_found
-- Take the rows found claimable inside this write transaction, each [id, token] of the
-- JSON array :batch.
UPDATE cronclaim_claims
SET state = 'claimed', token = token + 1, attempt = attempt + 1, worker = :worker,
    claimed_at = :now, lease_expires_at = :lease_expires_at, retry_at = NULL,
    finished_at = NULL
FROM (SELECT json_extract(value, '$[0]') AS found_id, json_extract(value, '$[1]') AS found_token
      FROM json_each(:batch)) AS b
WHERE id = b.found_id AND token = b.found_token;

-- name: windows_closed
-- Open rows of :job whose window has closed (it opened at the tick, or at the latest
-- replay, before :cutoff): pending, released, or claimed with an expired lease.
-- The literal state IN (...) is the predicate of cronclaim_claims_open: SQLite reads that
-- small index only when the query holds its terms word for word (it runs with the write
-- lock held, so it must not walk every row the job ever had).
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at
FROM cronclaim_claims
WHERE job = :job AND state IN ('pending', 'released', 'claimed') AND scheduled_for < :cutoff
  AND (replayed_at IS NULL OR replayed_at < :cutoff)
  AND (state IN ('pending', 'released') OR (state = 'claimed' AND lease_expires_at <= :now));

-- name: close_window
-- Settle one row whose window closed: missed (never started) or failed.
UPDATE cronclaim_claims
SET state = :state, finished_at = :now, lease_expires_at = NULL, retry_at = NULL,
    last_error = :error
WHERE id = :id AND token = :token;

-- name: next_due
-- When :job next needs a worker: the earliest claimable-from time of pending/released rows,
-- the earliest lease expiry, and the oldest open row (whose window closes first).
SELECT (SELECT MIN(retry_at) FROM cronclaim_claims
        WHERE job = :job AND state IN ('pending', 'released')),
       (SELECT MIN(lease_expires_at) FROM cronclaim_claims
        WHERE job = :job AND state = 'claimed'),
       (SELECT MIN(scheduled_for) FROM cronclaim_claims
        WHERE job = :job AND state IN ('pending', 'released', 'claimed'));

-- name: record_tick
-- Remember one fan-out: how many tenants of a time zone were due at a job's tick.
INSERT INTO cronclaim_ticks (job, time_zone, scheduled_for, tick, due, fanned_out_at, worker)
VALUES (:job, :time_zone, :scheduled_for, :tick, :due, :now, :worker)
ON CONFLICT (job, time_zone, scheduled_for)
DO UPDATE SET due = excluded.due, fanned_out_at = excluded.fanned_out_at,
              worker = excluded.worker;

-- name: scanned_through
-- The instant through which :job's due occurrences were fanned out.
SELECT scanned_through FROM cronclaim_jobs WHERE job = :job;

-- name: advance_scanned_through
-- Move :job's fan-out watermark forward (never back).
INSERT INTO cronclaim_jobs (job, scanned_through, updated_at, worker)
VALUES (:job, :through, :now, :worker)
ON CONFLICT (job)
DO UPDATE SET scanned_through = max(COALESCE(scanned_through, excluded.scanned_through),
                                  excluded.scanned_through),
              updated_at = excluded.updated_at, worker = excluded.worker;

-- name: known_jobs
-- Every job that has been fanned out or claimed, by name.
SELECT job FROM cronclaim_jobs
UNION
SELECT DISTINCT job FROM cronclaim_ticks
ORDER BY job;

-- name: ledger_counts
-- How many occurrences of one tick of :job are in each state.
SELECT state, COUNT(*) FROM cronclaim_claims WHERE job = :job AND tick = :tick GROUP BY state;

-- name: ledger_due
-- What the fan-outs of one tick of :job found due, over how many time zones, and when.
SELECT COALESCE(SUM(due), 0), COUNT(*), MIN(fanned_out_at), MAX(fanned_out_at)
FROM cronclaim_ticks
WHERE job = :job AND tick = :tick;

-- name: ledger_not_done
-- The occurrences of one tick of :job that are not done, failures first.
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at
FROM cronclaim_claims
WHERE job = :job AND tick = :tick AND state <> 'done'
ORDER BY CASE state WHEN 'failed' THEN 0 WHEN 'missed' THEN 1 WHEN 'released' THEN 2
                    WHEN 'claimed' THEN 3 ELSE 4 END, tenant
LIMIT :limit;

-- name: latest_ticks
-- The most recent ticks of :job scheduled at or before :at, newest first.
SELECT tick, MAX(scheduled_for) AS latest
FROM cronclaim_ticks
WHERE job = :job AND scheduled_for <= :at
GROUP BY tick
ORDER BY latest DESC
LIMIT :limit;

-- name: latest_claim_ticks
-- The most recent ticks of :job among claims made directly (no fan-out record), newest first.
SELECT tick, MAX(scheduled_for) AS latest
FROM cronclaim_claims
WHERE job = :job AND scheduled_for <= :at AND scheduled_for > :since
GROUP BY tick
ORDER BY latest DESC
LIMIT :limit;
