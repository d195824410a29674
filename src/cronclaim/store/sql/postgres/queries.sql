-- Named queries of the PostgreSQL store. Every state change writes its event in the same
-- statement (a data-modifying CTE), so the two cannot part. %(now)s is NULL in
-- production, and the server's statement_timestamp() measures leases; a virtual clock
-- passes its time instead. The batch statements take their arrays in binary (%(name)b):
-- psycopg's text form quotes each element, about 15 ms of client time per 1,000.

-- name: create_migrations_table
-- The bookkeeping table of applied migrations.
CREATE TABLE IF NOT EXISTS cronclaim_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: lock_migrations
-- Serialise concurrent upgrades (released at the end of the transaction).
SELECT pg_advisory_xact_lock(7390211634);

-- name: schema_version
-- The last applied migration, 0 when none.
SELECT COALESCE(MAX(version), 0) FROM cronclaim_migrations;

-- name: migrations_table_exists
-- Whether this database has ever been upgraded.
SELECT to_regclass('cronclaim_migrations') IS NOT NULL;

-- name: record_migration
-- Remember that a migration was applied.
INSERT INTO cronclaim_migrations (version, name) VALUES (%(version)s, %(name)s);

-- name: now
-- The store's clock.
SELECT COALESCE(%(now)s::timestamptz, statement_timestamp());

-- name: get_claim
-- The row of one occurrence.
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at
FROM cronclaim_claims
WHERE job = %(job)s AND tenant = %(tenant)s AND scheduled_for = %(scheduled_for)s;

-- name: acquire_insert
-- A fresh claim (token 1, attempt 1) and its 'acquired' event; no row when the occurrence
-- already has one. DO NOTHING: a losing insert writes nothing.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
ins AS (
    INSERT INTO cronclaim_claims AS c (job, tenant, scheduled_for, local_time, time_zone, tick,
                                       state, token, attempt, worker, claimed_at,
                                       lease_expires_at)
    SELECT %(job)s, %(tenant)s, %(scheduled_for)s, %(local_time)s, %(time_zone)s, %(tick)s,
           'claimed', 1, 1, %(worker)s, t.now, t.now + %(lease)s::interval
    FROM t
    ON CONFLICT DO NOTHING
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.tick, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error, c.replays, c.replayed_at
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)
    SELECT id, 'acquired', claimed_at, worker, attempt, token FROM ins
)
SELECT * FROM ins;

-- name: acquire_take
-- Take the occurrence if it is claimable (pending or released and due, or claimed with an
-- expired lease). Returns the new row with won = true, or the current row with won = false.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
cur AS (
    SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt,
           worker, claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at
    FROM cronclaim_claims
    WHERE job = %(job)s AND tenant = %(tenant)s AND scheduled_for = %(scheduled_for)s
),
upd AS (
    -- c.token = cur.token: if another worker won meanwhile, the re-checked row no
    -- longer matches and this update loses without writing.
    UPDATE cronclaim_claims AS c
    SET state = 'claimed', token = c.token + 1, attempt = c.attempt + 1,
        worker = %(worker)s, claimed_at = t.now, lease_expires_at = t.now + %(lease)s::interval,
        retry_at = NULL, finished_at = NULL
    FROM cur, t
    WHERE c.id = cur.id AND c.token = cur.token
      AND ((c.state IN ('pending', 'released') AND c.retry_at <= t.now)
           OR (c.state = 'claimed' AND c.lease_expires_at <= t.now))
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.tick, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error, c.replays, c.replayed_at,
              cur.state AS prior_state, cur.worker AS prior_worker,
              cur.token AS prior_token, cur.attempt AS prior_attempt
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)
    SELECT id, kind, claimed_at, worker, attempt, token
    FROM (
        SELECT id, 1 AS ord, 'lease_expired' AS kind, claimed_at, prior_worker AS worker,
               prior_attempt AS attempt, prior_token AS token
        FROM upd WHERE prior_state = 'claimed'
        UNION ALL
        SELECT id, 2, CASE WHEN prior_state = 'claimed' THEN 'took_over' ELSE 'acquired' END,
               claimed_at, worker, attempt, token
        FROM upd
    ) AS e
    ORDER BY ord
)
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at,
       prior_state, prior_worker, true AS won
FROM upd
UNION ALL
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at,
       NULL, NULL, false
FROM cur
WHERE NOT EXISTS (SELECT 1 FROM upd);

-- name: acquire_batch_insert
-- Fresh claims for every occurrence of the arrays that has no row yet, with their events.
-- Returns each new row's key and the instants the server set: the caller knows the rest.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
ins AS (
    INSERT INTO cronclaim_claims AS c (job, tenant, scheduled_for, local_time, time_zone, tick,
                                       state, token, attempt, worker, claimed_at,
                                       lease_expires_at)
    SELECT b.job, b.tenant, b.scheduled_for, b.local_time, b.time_zone, b.tick,
           'claimed', 1, 1, %(worker)s, t.now, t.now + %(lease)s::interval
    FROM unnest(%(jobs)b::text[], %(tenants)b::text[], %(scheduled_fors)b::timestamptz[],
                %(local_times)b::text[], %(time_zones)b::text[], %(ticks)b::text[])
         AS b(job, tenant, scheduled_for, local_time, time_zone, tick),
         t
    ON CONFLICT DO NOTHING
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.tick, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error, c.replays, c.replayed_at
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)
    SELECT id, 'acquired', claimed_at, worker, attempt, token FROM ins
)
SELECT id, job, tenant, scheduled_for, claimed_at, lease_expires_at FROM ins;

-- name: acquire_batch_take
-- Take every claimable row among the occurrences of the arrays, with their events.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
cur AS (
    SELECT c.id, c.state, c.token, c.attempt, c.worker
    FROM unnest(%(jobs)b::text[], %(tenants)b::text[], %(scheduled_fors)b::timestamptz[])
         AS b(job, tenant, scheduled_for)
    JOIN cronclaim_claims AS c
      ON c.job = b.job AND c.tenant = b.tenant AND c.scheduled_for = b.scheduled_for,
         t
    WHERE (c.state IN ('pending', 'released') AND c.retry_at <= t.now)
       OR (c.state = 'claimed' AND c.lease_expires_at <= t.now)
    -- Rows another transaction is changing are left to it: waiting for them, in an order
    -- set by the join, deadlocked batches that overlap (seen with 4 racing workers).
    FOR UPDATE OF c SKIP LOCKED
),
upd AS (
    UPDATE cronclaim_claims AS c
    SET state = 'claimed', token = c.token + 1, attempt = c.attempt + 1,
        worker = %(worker)s, claimed_at = t.now, lease_expires_at = t.now + %(lease)s::interval,
        retry_at = NULL, finished_at = NULL
    FROM cur, t
    WHERE c.id = cur.id AND c.token = cur.token
      AND ((c.state IN ('pending', 'released') AND c.retry_at <= t.now)
           OR (c.state = 'claimed' AND c.lease_expires_at <= t.now))
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.tick, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error, c.replays, c.replayed_at,
              cur.state AS prior_state, cur.worker AS prior_worker,
              cur.token AS prior_token, cur.attempt AS prior_attempt
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)
    SELECT id, kind, claimed_at, worker, attempt, token
    FROM (
        SELECT id, 1 AS ord, 'lease_expired' AS kind, claimed_at, prior_worker AS worker,
               prior_attempt AS attempt, prior_token AS token
        FROM upd WHERE prior_state = 'claimed'
        UNION ALL
        SELECT id, 2, CASE WHEN prior_state = 'claimed' THEN 'took_over' ELSE 'acquired' END,
               claimed_at, worker, attempt, token
        FROM upd
    ) AS e
    ORDER BY id, ord
)
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at,
       prior_state, prior_worker
FROM upd;

-- name: heartbeat
-- Extend the current holder's lease. No row when the token is stale: reject_stale then
-- records the refusal (kept out of this statement, which runs for every held claim, every
-- third of its lease).
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
upd AS (
    UPDATE cronclaim_claims AS c
    SET lease_expires_at = t.now + %(lease)s::interval
    FROM t
    -- IS TRUE keeps the state test from matching cronclaim_claims_lease's predicate: a
    -- generic plan made while the table was empty would otherwise scan that partial
    -- index, every held claim, instead of looking the id up (0.3x with 5,000 held).
    WHERE c.id = %(id)s AND c.token = %(token)s AND (c.state = 'claimed') IS TRUE
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.tick, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error, c.replays, c.replayed_at
)
SELECT upd.*, true AS won FROM upd;

-- name: complete
-- The current holder marks the occurrence done, with its 'completed' event. No row when
-- the token is stale: reject_stale then records the refusal (the refused branch, even
-- unused, cost a fifth of this statement).
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
upd AS (
    UPDATE cronclaim_claims AS c
    SET state = 'done', finished_at = t.now, lease_expires_at = NULL, last_error = NULL
    FROM t
    WHERE c.id = %(id)s AND c.token = %(token)s AND (c.state = 'claimed') IS TRUE  -- see heartbeat
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.tick, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error, c.replays, c.replayed_at
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)
    SELECT id, 'completed', finished_at, worker, attempt, token FROM upd
)
SELECT upd.*, true AS won FROM upd;

-- name: reject_stale
-- A call refused for its stale token (heartbeat, complete): record it when the claim
-- exists, and return the current row with won = false. Tokens only grow, so a token
-- found stale by the refused statement is still stale here.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
cur AS (
    SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt,
           worker, claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at
    FROM cronclaim_claims
    WHERE id = %(id)s
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token, detail)
    SELECT cur.id, 'stale_rejected', t.now, %(worker)s, %(attempt)s, %(token)s, %(action)s
    FROM cur, t
)
SELECT cur.*, false AS won FROM cur;

-- name: release
-- The current holder gives the occurrence back, claimable again after %(retry_after)s.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
upd AS (
    UPDATE cronclaim_claims AS c
    SET state = 'released', retry_at = t.now + %(retry_after)s::interval,
        lease_expires_at = NULL, last_error = %(error)s
    FROM t
    WHERE c.id = %(id)s AND c.token = %(token)s AND (c.state = 'claimed') IS TRUE  -- see heartbeat
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.tick, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error, c.replays, c.replayed_at
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token, error, detail)
    SELECT id, 'released', t.now, worker, attempt, token, %(error)s, %(dependency)s::text
    FROM upd, t
    UNION ALL
    SELECT %(id)s, 'stale_rejected', t.now, %(worker)s, %(attempt)s, %(token)s, %(error)s,
           'release'
    FROM t
    WHERE NOT EXISTS (SELECT 1 FROM upd)
      AND EXISTS (SELECT 1 FROM cronclaim_claims WHERE id = %(id)s)
)
SELECT upd.*, true AS won FROM upd
UNION ALL
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at, false
FROM cronclaim_claims
WHERE id = %(id)s AND NOT EXISTS (SELECT 1 FROM upd);

-- name: fail
-- The current holder marks the occurrence failed for good; a stale token is recorded instead.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
upd AS (
    UPDATE cronclaim_claims AS c
    SET state = 'failed', finished_at = t.now, lease_expires_at = NULL, last_error = %(error)s
    FROM t
    WHERE c.id = %(id)s AND c.token = %(token)s AND (c.state = 'claimed') IS TRUE  -- see heartbeat
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.tick, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error, c.replays, c.replayed_at
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token, error, detail)
    SELECT id, 'failed', finished_at, worker, attempt, token, %(error)s, %(dependency)s::text
    FROM upd
    UNION ALL
    SELECT %(id)s, 'stale_rejected', t.now, %(worker)s, %(attempt)s, %(token)s, %(error)s,
           'fail'
    FROM t
    WHERE NOT EXISTS (SELECT 1 FROM upd)
      AND EXISTS (SELECT 1 FROM cronclaim_claims WHERE id = %(id)s)
)
SELECT upd.*, true AS won FROM upd
UNION ALL
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at, false
FROM cronclaim_claims
WHERE id = %(id)s AND NOT EXISTS (SELECT 1 FROM upd);

-- name: complete_batch
-- Complete every (id, token) of the arrays whose token is still current, with their
-- 'completed' events; returns their ids and finish time. A stale token changes nothing
-- (the caller records the refusals with reject_stale_batch).
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
upd AS (
    UPDATE cronclaim_claims AS c
    SET state = 'done', finished_at = t.now, lease_expires_at = NULL, last_error = NULL
    FROM unnest(%(ids)b::bigint[], %(tokens)b::bigint[]) AS b(id, token), t
    -- IS TRUE, as in heartbeat: the rows are found by id, not by scanning every claimed
    -- row through cronclaim_claims_lease (a plan seen with thousands of claims held).
    WHERE c.id = b.id AND c.token = b.token AND (c.state = 'claimed') IS TRUE
    RETURNING c.id, c.finished_at, c.worker, c.attempt, c.token
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)
    SELECT id, 'completed', finished_at, worker, attempt, token FROM upd
)
SELECT id, finished_at FROM upd;

-- name: reject_stale_batch
-- Calls refused for their stale token, each (id, token, attempt, worker) of the arrays:
-- record a 'stale_rejected' event naming %(action)s for each claim that exists.
INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token, detail)
SELECT b.id, 'stale_rejected', COALESCE(%(now)s::timestamptz, statement_timestamp()),
       b.worker, b.attempt, b.token, %(action)s
FROM unnest(%(ids)b::bigint[], %(tokens)b::bigint[], %(attempts)b::integer[],
            %(workers)b::text[]) AS b(id, token, attempt, worker)
WHERE EXISTS (SELECT 1 FROM cronclaim_claims AS c WHERE c.id = b.id);

-- name: events_of_claim
-- An occurrence's history, oldest first.
SELECT e.id, c.job, c.tenant, c.scheduled_for, e.kind, e.at, e.worker, e.attempt, e.token,
       e.error, e.detail
FROM cronclaim_claims AS c
JOIN cronclaim_events AS e ON e.claim_id = c.id
WHERE c.job = %(job)s AND c.tenant = %(tenant)s AND c.scheduled_for = %(scheduled_for)s
ORDER BY e.id;

-- name: enqueue_pending
-- Rows for occurrences that came due, claimable from their not_before; occurrences that
-- already have a row are left alone.
INSERT INTO cronclaim_claims (job, tenant, scheduled_for, local_time, time_zone, tick, state,
                              token, attempt, retry_at)
SELECT b.job, b.tenant, b.scheduled_for, b.local_time, b.time_zone, b.tick, 'pending', 0, 0,
       b.not_before
FROM unnest(%(jobs)b::text[], %(tenants)b::text[], %(scheduled_fors)b::timestamptz[],
            %(local_times)b::text[], %(time_zones)b::text[], %(ticks)b::text[],
            %(not_befores)b::timestamptz[])
     AS b(job, tenant, scheduled_for, local_time, time_zone, tick, not_before)
ON CONFLICT DO NOTHING;

-- name: insert_missed
-- Rows, with their 'missed' events, for occurrences whose window closed before any worker
-- fanned them out.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
ins AS (
    INSERT INTO cronclaim_claims AS c (job, tenant, scheduled_for, local_time, time_zone, tick,
                                       state, token, attempt, finished_at, last_error)
    SELECT b.job, b.tenant, b.scheduled_for, b.local_time, b.time_zone, b.tick, 'missed', 0, 0,
           t.now, %(reason)s
    FROM unnest(%(jobs)b::text[], %(tenants)b::text[], %(scheduled_fors)b::timestamptz[],
                %(local_times)b::text[], %(time_zones)b::text[], %(ticks)b::text[])
         AS b(job, tenant, scheduled_for, local_time, time_zone, tick),
         t
    ON CONFLICT DO NOTHING
    RETURNING c.id, c.finished_at
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, attempt, token, error)
    SELECT id, 'missed', finished_at, 0, 0, %(reason)s FROM ins
)
SELECT COUNT(*) FROM ins;

-- name: acquire_due
-- Claim up to %(limit)s rows of %(job)s that are claimable now (due pending and released
-- rows, expired leases), earliest first, with their events. Rows a concurrent worker is
-- taking are skipped, not waited for.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
waiting AS (
    SELECT id, state, token, attempt, worker, retry_at AS due
    FROM cronclaim_claims
    WHERE job = %(job)s AND state IN ('pending', 'released')
      AND retry_at <= (SELECT now FROM t)
    ORDER BY retry_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
expired AS (
    SELECT id, state, token, attempt, worker, lease_expires_at AS due
    FROM cronclaim_claims
    WHERE job = %(job)s AND state = 'claimed' AND lease_expires_at <= (SELECT now FROM t)
    ORDER BY lease_expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
cur AS (
    SELECT * FROM (SELECT * FROM waiting UNION ALL SELECT * FROM expired) AS both_kinds
    ORDER BY due
    LIMIT %(limit)s
),
upd AS (
    UPDATE cronclaim_claims AS c
    SET state = 'claimed', token = c.token + 1, attempt = c.attempt + 1,
        worker = %(worker)s, claimed_at = t.now, lease_expires_at = t.now + %(lease)s::interval,
        retry_at = NULL, finished_at = NULL
    FROM cur, t
    WHERE c.id = cur.id
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.tick, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error, c.replays, c.replayed_at,
              cur.state AS prior_state, cur.worker AS prior_worker,
              cur.token AS prior_token, cur.attempt AS prior_attempt
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)
    SELECT id, kind, claimed_at, worker, attempt, token
    FROM (
        SELECT id, 1 AS ord, 'lease_expired' AS kind, claimed_at, prior_worker AS worker,
               prior_attempt AS attempt, prior_token AS token
        FROM upd WHERE prior_state = 'claimed'
        UNION ALL
        SELECT id, 2, CASE WHEN prior_state = 'claimed' THEN 'took_over' ELSE 'acquired' END,
               claimed_at, worker, attempt, token
        FROM upd
    ) AS e
    ORDER BY id, ord
)
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at,
       prior_state, prior_worker
FROM upd
ORDER BY scheduled_for;

-- name: close_windows
-- Settle every open row of %(job)s whose window closed (scheduled_for < %(cutoff)s), with
-- events: pending becomes missed; released, or claimed with an expired lease, becomes
-- failed. Returns the settled rows' new state.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
cur AS (
    SELECT id, state, token, attempt, worker, last_error
    FROM cronclaim_claims
    WHERE job = %(job)s AND scheduled_for < %(cutoff)s
      AND (replayed_at IS NULL OR replayed_at < %(cutoff)s)
      AND (state IN ('pending', 'released')
           OR (state = 'claimed' AND lease_expires_at <= (SELECT now FROM t)))
    FOR UPDATE SKIP LOCKED
),
upd AS (
    UPDATE cronclaim_claims AS c
    SET state = CASE WHEN cur.state = 'pending' THEN 'missed' ELSE 'failed' END,
        finished_at = t.now, lease_expires_at = NULL, retry_at = NULL,
        last_error = CASE
            WHEN cur.state = 'pending' THEN %(missed_reason)s
            WHEN cur.state = 'released'
                THEN %(failed_reason)s || COALESCE('; last error: ' || cur.last_error, '')
            ELSE %(abandoned_reason)s
        END
    FROM cur, t
    WHERE c.id = cur.id
    RETURNING c.id, c.state, c.last_error, c.finished_at, c.token, c.attempt,
              cur.state AS prior_state, cur.worker AS prior_worker
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token, error)
    SELECT id, kind, finished_at, worker, attempt, token, error
    FROM (
        SELECT id, 1 AS ord, 'lease_expired' AS kind, finished_at, prior_worker AS worker,
               attempt, token, NULL AS error
        FROM upd WHERE prior_state = 'claimed'
        UNION ALL
        SELECT id, 2, state, finished_at, %(worker)s, attempt, token, last_error FROM upd
    ) AS e
    ORDER BY id, ord
)
SELECT state FROM upd;

-- name: next_due
-- When %(job)s next needs a worker: the earliest claimable-from time of pending/released
-- rows, the earliest lease expiry, and the oldest open row (whose window closes first).
SELECT (SELECT MIN(retry_at) FROM cronclaim_claims
        WHERE job = %(job)s AND state IN ('pending', 'released')),
       (SELECT MIN(lease_expires_at) FROM cronclaim_claims
        WHERE job = %(job)s AND state = 'claimed'),
       (SELECT MIN(scheduled_for) FROM cronclaim_claims
        WHERE job = %(job)s AND state IN ('pending', 'released', 'claimed'));

-- name: record_tick
-- Remember one fan-out: how many tenants of a time zone were due at a job's tick.
INSERT INTO cronclaim_ticks (job, time_zone, scheduled_for, tick, due, fanned_out_at, worker)
VALUES (%(job)s, %(time_zone)s, %(scheduled_for)s, %(tick)s, %(due)s,
        COALESCE(%(now)s::timestamptz, statement_timestamp()), %(worker)s)
ON CONFLICT (job, time_zone, scheduled_for)
DO UPDATE SET due = EXCLUDED.due, fanned_out_at = EXCLUDED.fanned_out_at,
              worker = EXCLUDED.worker;

-- name: scanned_through
-- The instant through which %(job)s's due occurrences were fanned out.
SELECT scanned_through FROM cronclaim_jobs WHERE job = %(job)s;

-- name: advance_scanned_through
-- Move %(job)s's fan-out watermark forward (never back).
INSERT INTO cronclaim_jobs (job, scanned_through, updated_at, worker)
VALUES (%(job)s, %(through)s, COALESCE(%(now)s::timestamptz, statement_timestamp()), %(worker)s)
ON CONFLICT (job)
DO UPDATE SET scanned_through = GREATEST(cronclaim_jobs.scanned_through,
                                         EXCLUDED.scanned_through),
              updated_at = EXCLUDED.updated_at, worker = EXCLUDED.worker;

-- name: known_jobs
-- Every job that has been fanned out, by name.
SELECT job FROM cronclaim_jobs
UNION
SELECT DISTINCT job FROM cronclaim_ticks
ORDER BY job;

-- name: ledger_counts
-- How many occurrences of one tick of %(job)s are in each state.
SELECT state, COUNT(*) FROM cronclaim_claims
WHERE job = %(job)s AND tick = %(tick)s
GROUP BY state;

-- name: ledger_due
-- What the fan-outs of one tick of %(job)s found due, over how many time zones, and when.
SELECT COALESCE(SUM(due), 0), COUNT(*), MIN(fanned_out_at), MAX(fanned_out_at)
FROM cronclaim_ticks
WHERE job = %(job)s AND tick = %(tick)s;

-- name: ledger_not_done
-- The occurrences of one tick of %(job)s that are not done, failures first.
SELECT id, job, tenant, scheduled_for, local_time, time_zone, tick, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, replays, replayed_at
FROM cronclaim_claims
WHERE job = %(job)s AND tick = %(tick)s AND state <> 'done'
ORDER BY CASE state WHEN 'failed' THEN 0 WHEN 'missed' THEN 1 WHEN 'released' THEN 2
                    WHEN 'claimed' THEN 3 ELSE 4 END, tenant
LIMIT %(limit)s;

-- name: latest_ticks
-- The most recent ticks of %(job)s scheduled at or before %(at)s, newest first.
SELECT tick, MAX(scheduled_for) AS latest
FROM cronclaim_ticks
WHERE job = %(job)s AND scheduled_for <= %(at)s
GROUP BY tick
ORDER BY latest DESC
LIMIT %(limit)s;

-- name: latest_claim_ticks
-- The most recent ticks of %(job)s among claims made directly (no fan-out record).
SELECT tick, MAX(scheduled_for) AS latest
FROM cronclaim_claims
WHERE job = %(job)s AND scheduled_for <= %(at)s AND scheduled_for > %(since)s
GROUP BY tick
ORDER BY latest DESC
LIMIT %(limit)s;
