-- Named queries of the PostgreSQL store. Every state change writes its event in the same
-- statement (a data-modifying CTE), so the two cannot part. %(now)s is NULL in
-- production, and the server's statement_timestamp() measures leases; a virtual clock
-- passes its time instead.

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
SELECT id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error
FROM cronclaim_claims
WHERE job = %(job)s AND tenant = %(tenant)s AND scheduled_for = %(scheduled_for)s;

-- name: acquire_insert
-- A fresh claim (token 1, attempt 1) and its 'acquired' event; no row when the occurrence
-- already has one. DO NOTHING: a losing insert writes nothing.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
ins AS (
    INSERT INTO cronclaim_claims AS c (job, tenant, scheduled_for, local_time, time_zone,
                                       state, token, attempt, worker, claimed_at,
                                       lease_expires_at)
    SELECT %(job)s, %(tenant)s, %(scheduled_for)s, %(local_time)s, %(time_zone)s,
           'claimed', 1, 1, %(worker)s, t.now, t.now + %(lease)s::interval
    FROM t
    ON CONFLICT DO NOTHING
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)
    SELECT id, 'acquired', claimed_at, worker, attempt, token FROM ins
)
SELECT * FROM ins;

-- name: acquire_take
-- Take the occurrence if it is claimable (released and due, or claimed with an expired
-- lease). Returns the new row with won = true, or the current row with won = false.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
cur AS (
    SELECT id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt,
           worker, claimed_at, lease_expires_at, retry_at, finished_at, last_error
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
      AND ((c.state = 'released' AND c.retry_at <= t.now)
           OR (c.state = 'claimed' AND c.lease_expires_at <= t.now))
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error,
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
SELECT id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error,
       prior_state, prior_worker, true AS won
FROM upd
UNION ALL
SELECT id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error,
       NULL, NULL, false
FROM cur
WHERE NOT EXISTS (SELECT 1 FROM upd);

-- name: acquire_batch_insert
-- Fresh claims for every occurrence of the arrays that has no row yet, with their events.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
ins AS (
    INSERT INTO cronclaim_claims AS c (job, tenant, scheduled_for, local_time, time_zone,
                                       state, token, attempt, worker, claimed_at,
                                       lease_expires_at)
    SELECT b.job, b.tenant, b.scheduled_for, b.local_time, b.time_zone,
           'claimed', 1, 1, %(worker)s, t.now, t.now + %(lease)s::interval
    FROM unnest(%(jobs)s::text[], %(tenants)s::text[], %(scheduled_fors)s::timestamptz[],
                %(local_times)s::text[], %(time_zones)s::text[])
         AS b(job, tenant, scheduled_for, local_time, time_zone),
         t
    ON CONFLICT DO NOTHING
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)
    SELECT id, 'acquired', claimed_at, worker, attempt, token FROM ins
)
SELECT * FROM ins;

-- name: acquire_batch_take
-- Take every claimable row among the occurrences of the arrays, with their events.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
cur AS (
    SELECT c.id, c.state, c.token, c.attempt, c.worker
    FROM unnest(%(jobs)s::text[], %(tenants)s::text[], %(scheduled_fors)s::timestamptz[])
         AS b(job, tenant, scheduled_for)
    JOIN cronclaim_claims AS c
      ON c.job = b.job AND c.tenant = b.tenant AND c.scheduled_for = b.scheduled_for,
         t
    WHERE (c.state = 'released' AND c.retry_at <= t.now)
       OR (c.state = 'claimed' AND c.lease_expires_at <= t.now)
),
upd AS (
    UPDATE cronclaim_claims AS c
    SET state = 'claimed', token = c.token + 1, attempt = c.attempt + 1,
        worker = %(worker)s, claimed_at = t.now, lease_expires_at = t.now + %(lease)s::interval,
        retry_at = NULL, finished_at = NULL
    FROM cur, t
    WHERE c.id = cur.id AND c.token = cur.token
      AND ((c.state = 'released' AND c.retry_at <= t.now)
           OR (c.state = 'claimed' AND c.lease_expires_at <= t.now))
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error,
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
SELECT id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error,
       prior_state, prior_worker
FROM upd;

-- name: heartbeat
-- Extend the current holder's lease; a stale token is recorded and the current row returned.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
upd AS (
    UPDATE cronclaim_claims AS c
    SET lease_expires_at = t.now + %(lease)s::interval
    FROM t
    WHERE c.id = %(id)s AND c.token = %(token)s AND c.state = 'claimed'
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error
),
stale AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token, detail)
    SELECT %(id)s, 'stale_rejected', t.now, %(worker)s, %(attempt)s, %(token)s, 'heartbeat'
    FROM t
    WHERE NOT EXISTS (SELECT 1 FROM upd)
      AND EXISTS (SELECT 1 FROM cronclaim_claims WHERE id = %(id)s)
)
SELECT upd.*, true AS won FROM upd
UNION ALL
SELECT id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, false
FROM cronclaim_claims
WHERE id = %(id)s AND NOT EXISTS (SELECT 1 FROM upd);

-- name: complete
-- The current holder marks the occurrence done; a stale token is recorded instead.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
upd AS (
    UPDATE cronclaim_claims AS c
    SET state = 'done', finished_at = t.now, lease_expires_at = NULL, last_error = NULL
    FROM t
    WHERE c.id = %(id)s AND c.token = %(token)s AND c.state = 'claimed'
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token, detail)
    SELECT id, 'completed', finished_at, worker, attempt, token, NULL FROM upd
    UNION ALL
    SELECT %(id)s, 'stale_rejected', t.now, %(worker)s, %(attempt)s, %(token)s, 'complete'
    FROM t
    WHERE NOT EXISTS (SELECT 1 FROM upd)
      AND EXISTS (SELECT 1 FROM cronclaim_claims WHERE id = %(id)s)
)
SELECT upd.*, true AS won FROM upd
UNION ALL
SELECT id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, false
FROM cronclaim_claims
WHERE id = %(id)s AND NOT EXISTS (SELECT 1 FROM upd);

-- name: release
-- The current holder gives the occurrence back, claimable again after %(retry_after)s.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
upd AS (
    UPDATE cronclaim_claims AS c
    SET state = 'released', retry_at = t.now + %(retry_after)s::interval,
        lease_expires_at = NULL, last_error = %(error)s
    FROM t
    WHERE c.id = %(id)s AND c.token = %(token)s AND c.state = 'claimed'
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token, error, detail)
    SELECT id, 'released', t.now, worker, attempt, token, %(error)s, NULL FROM upd, t
    UNION ALL
    SELECT %(id)s, 'stale_rejected', t.now, %(worker)s, %(attempt)s, %(token)s, %(error)s,
           'release'
    FROM t
    WHERE NOT EXISTS (SELECT 1 FROM upd)
      AND EXISTS (SELECT 1 FROM cronclaim_claims WHERE id = %(id)s)
)
SELECT upd.*, true AS won FROM upd
UNION ALL
SELECT id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, false
FROM cronclaim_claims
WHERE id = %(id)s AND NOT EXISTS (SELECT 1 FROM upd);

-- name: fail
-- The current holder marks the occurrence failed for good; a stale token is recorded instead.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
upd AS (
    UPDATE cronclaim_claims AS c
    SET state = 'failed', finished_at = t.now, lease_expires_at = NULL, last_error = %(error)s
    FROM t
    WHERE c.id = %(id)s AND c.token = %(token)s AND c.state = 'claimed'
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token, error, detail)
    SELECT id, 'failed', finished_at, worker, attempt, token, %(error)s, NULL FROM upd
    UNION ALL
    SELECT %(id)s, 'stale_rejected', t.now, %(worker)s, %(attempt)s, %(token)s, %(error)s,
           'fail'
    FROM t
    WHERE NOT EXISTS (SELECT 1 FROM upd)
      AND EXISTS (SELECT 1 FROM cronclaim_claims WHERE id = %(id)s)
)
SELECT upd.*, true AS won FROM upd
UNION ALL
SELECT id, job, tenant, scheduled_for, local_time, time_zone, state, token, attempt, worker,
       claimed_at, lease_expires_at, retry_at, finished_at, last_error, false
FROM cronclaim_claims
WHERE id = %(id)s AND NOT EXISTS (SELECT 1 FROM upd);

-- name: complete_batch
-- Complete every (id, token) of the arrays whose token is still current; record the
-- stale ones.
WITH t AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
b AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[], %(attempts)s::integer[],
                         %(workers)s::text[]) AS b(id, token, attempt, worker)
),
upd AS (
    UPDATE cronclaim_claims AS c
    SET state = 'done', finished_at = t.now, lease_expires_at = NULL, last_error = NULL
    FROM b, t
    WHERE c.id = b.id AND c.token = b.token AND c.state = 'claimed'
    RETURNING c.id, c.job, c.tenant, c.scheduled_for, c.local_time, c.time_zone, c.state,
              c.token, c.attempt, c.worker, c.claimed_at, c.lease_expires_at, c.retry_at,
              c.finished_at, c.last_error
),
ev AS (
    INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token, detail)
    SELECT id, 'completed', finished_at, worker, attempt, token, NULL FROM upd
    UNION ALL
    SELECT b.id, 'stale_rejected', t.now, b.worker, b.attempt, b.token, 'complete'
    FROM b, t
    WHERE NOT EXISTS (SELECT 1 FROM upd WHERE upd.id = b.id)
      AND EXISTS (SELECT 1 FROM cronclaim_claims AS c WHERE c.id = b.id)
)
SELECT * FROM upd;

-- name: events_of_claim
-- An occurrence's history, oldest first.
SELECT e.id, c.job, c.tenant, c.scheduled_for, e.kind, e.at, e.worker, e.attempt, e.token,
       e.error, e.detail
FROM cronclaim_claims AS c
JOIN cronclaim_events AS e ON e.claim_id = c.id
WHERE c.job = %(job)s AND c.tenant = %(tenant)s AND c.scheduled_for = %(scheduled_for)s
ORDER BY e.id;
