-- Named queries of the dashboard (read only). Instants are integer microseconds (UTC).
--
-- A day is a tenant-local date: the first ten characters of a tick ('2026-05-19' of
-- '2026-05-19T07:00'). A window of days is given twice: as tick bounds (:first <= tick
-- < :stop, exact) and as a slightly wider range of instants (:lo <= scheduled_for < :hi),
-- which lets the occurrence index narrow each tenant's rows. "+tick" keeps the planner
-- from reading the window through cronclaim_claims_tick, which holds every tenant's rows
-- of those days (hundreds of thousands) when a page needs a few hundred.
--
-- Tenant pages are keyset-paginated in tenant order. :after / :before are the exclusive
-- cursors ('' / the page's first tenant), :prefix is the search ('' for none) and
-- :prefix_high its inclusive upper bound (:prefix followed by U+10FFFF; NULL for none).
-- Each page reads an index range that starts at its cursor, so its cost depends on the
-- page size, not on the number of tenants.

-- name: dashboard_tenants_after
-- The tenants of :job with an occurrence in the window, after :after, ascending.
SELECT DISTINCT tenant
FROM cronclaim_claims
WHERE job = :job
  AND tenant >= max(:after, :prefix) AND tenant <> :after
  AND tenant <= COALESCE(:prefix_high,
                         (SELECT MAX(tenant) FROM cronclaim_claims WHERE job = :job))
  AND substr(tenant, 1, length(:prefix)) = :prefix
  AND scheduled_for >= :lo AND scheduled_for < :hi AND +tick >= :first AND +tick < :stop
ORDER BY tenant
LIMIT :limit;

-- name: dashboard_tenants_before
-- The tenants of :job with an occurrence in the window, before :before, descending.
SELECT DISTINCT tenant
FROM cronclaim_claims
WHERE job = :job
  AND tenant >= :prefix
  AND tenant <= min(:before, COALESCE(:prefix_high, :before)) AND tenant <> :before
  AND substr(tenant, 1, length(:prefix)) = :prefix
  AND scheduled_for >= :lo AND scheduled_for < :hi AND +tick >= :first AND +tick < :stop
ORDER BY tenant DESC
LIMIT :limit;

-- name: dashboard_tenants_done_after
-- The tenants of :job with a done occurrence in the window, after :after, ascending.
SELECT DISTINCT tenant
FROM cronclaim_claims
WHERE job = :job AND state = 'done'
  AND tenant >= max(:after, :prefix) AND tenant <> :after
  AND tenant <= COALESCE(:prefix_high,
                         (SELECT MAX(tenant) FROM cronclaim_claims WHERE job = :job))
  AND substr(tenant, 1, length(:prefix)) = :prefix
  AND scheduled_for >= :lo AND scheduled_for < :hi AND +tick >= :first AND +tick < :stop
ORDER BY tenant
LIMIT :limit;

-- name: dashboard_tenants_done_before
-- The tenants of :job with a done occurrence in the window, before :before, descending.
SELECT DISTINCT tenant
FROM cronclaim_claims
WHERE job = :job AND state = 'done'
  AND tenant >= :prefix
  AND tenant <= min(:before, COALESCE(:prefix_high, :before)) AND tenant <> :before
  AND substr(tenant, 1, length(:prefix)) = :prefix
  AND scheduled_for >= :lo AND scheduled_for < :hi AND +tick >= :first AND +tick < :stop
ORDER BY tenant DESC
LIMIT :limit;

-- name: dashboard_tenants_final_after
-- The tenants of :job with an occurrence in :state (failed or missed) in the window,
-- after :after, ascending; read from the small index of failed and missed rows.
SELECT DISTINCT tenant
FROM cronclaim_claims INDEXED BY cronclaim_claims_failed_missed
WHERE job = :job AND state IN ('failed', 'missed') AND state = :state
  AND tenant >= max(:after, :prefix) AND tenant <> :after
  AND tenant <= COALESCE(:prefix_high,
                         (SELECT MAX(tenant) FROM cronclaim_claims WHERE job = :job))
  AND substr(tenant, 1, length(:prefix)) = :prefix
  AND scheduled_for >= :lo AND scheduled_for < :hi AND +tick >= :first AND +tick < :stop
ORDER BY tenant
LIMIT :limit;

-- name: dashboard_tenants_final_before
-- The tenants of :job with an occurrence in :state (failed or missed) in the window,
-- before :before, descending.
SELECT DISTINCT tenant
FROM cronclaim_claims INDEXED BY cronclaim_claims_failed_missed
WHERE job = :job AND state IN ('failed', 'missed') AND state = :state
  AND tenant >= :prefix
  AND tenant <= min(:before, COALESCE(:prefix_high, :before)) AND tenant <> :before
  AND substr(tenant, 1, length(:prefix)) = :prefix
  AND scheduled_for >= :lo AND scheduled_for < :hi AND +tick >= :first AND +tick < :stop
ORDER BY tenant DESC
LIMIT :limit;

-- name: dashboard_tenants_open_after
-- The tenants of :job with an occurrence in :state (pending, released or claimed) in the
-- window, after :after, ascending; read from the index of open rows.
SELECT tenant
FROM cronclaim_claims INDEXED BY cronclaim_claims_open
WHERE job = :job AND state IN ('pending', 'released', 'claimed') AND state = :state
  AND tenant >= max(:after, :prefix) AND tenant <> :after
  AND tenant <= COALESCE(:prefix_high,
                         (SELECT MAX(tenant) FROM cronclaim_claims WHERE job = :job))
  AND substr(tenant, 1, length(:prefix)) = :prefix
  AND scheduled_for >= :lo AND scheduled_for < :hi AND +tick >= :first AND +tick < :stop
GROUP BY tenant
ORDER BY tenant
LIMIT :limit;

-- name: dashboard_tenants_open_before
-- The tenants of :job with an occurrence in :state (pending, released or claimed) in the
-- window, before :before, descending.
SELECT tenant
FROM cronclaim_claims INDEXED BY cronclaim_claims_open
WHERE job = :job AND state IN ('pending', 'released', 'claimed') AND state = :state
  AND tenant >= :prefix
  AND tenant <= min(:before, COALESCE(:prefix_high, :before)) AND tenant <> :before
  AND substr(tenant, 1, length(:prefix)) = :prefix
  AND scheduled_for >= :lo AND scheduled_for < :hi AND +tick >= :first AND +tick < :stop
GROUP BY tenant
ORDER BY tenant DESC
LIMIT :limit;

-- name: dashboard_tenants_problems_after
-- The tenants of :job with an occurrence that is not done in the window, after :after,
-- ascending: failed and missed rows, then open ones, each from its own small index.
SELECT tenant
FROM cronclaim_claims INDEXED BY cronclaim_claims_failed_missed
WHERE job = :job AND state IN ('failed', 'missed')
  AND tenant >= max(:after, :prefix) AND tenant <> :after
  AND tenant <= COALESCE(:prefix_high,
                         (SELECT MAX(tenant) FROM cronclaim_claims WHERE job = :job))
  AND substr(tenant, 1, length(:prefix)) = :prefix
  AND scheduled_for >= :lo AND scheduled_for < :hi AND +tick >= :first AND +tick < :stop
UNION
SELECT tenant
FROM cronclaim_claims INDEXED BY cronclaim_claims_open
WHERE job = :job AND state IN ('pending', 'released', 'claimed')
  AND tenant >= max(:after, :prefix) AND tenant <> :after
  AND tenant <= COALESCE(:prefix_high,
                         (SELECT MAX(tenant) FROM cronclaim_claims WHERE job = :job))
  AND substr(tenant, 1, length(:prefix)) = :prefix
  AND scheduled_for >= :lo AND scheduled_for < :hi AND +tick >= :first AND +tick < :stop
ORDER BY tenant
LIMIT :limit;

-- name: dashboard_tenants_problems_before
-- The tenants of :job with an occurrence that is not done in the window, before :before,
-- descending.
SELECT tenant
FROM cronclaim_claims INDEXED BY cronclaim_claims_failed_missed
WHERE job = :job AND state IN ('failed', 'missed')
  AND tenant >= :prefix
  AND tenant <= min(:before, COALESCE(:prefix_high, :before)) AND tenant <> :before
  AND substr(tenant, 1, length(:prefix)) = :prefix
  AND scheduled_for >= :lo AND scheduled_for < :hi AND +tick >= :first AND +tick < :stop
UNION
SELECT tenant
FROM cronclaim_claims INDEXED BY cronclaim_claims_open
WHERE job = :job AND state IN ('pending', 'released', 'claimed')
  AND tenant >= :prefix
  AND tenant <= min(:before, COALESCE(:prefix_high, :before)) AND tenant <> :before
  AND substr(tenant, 1, length(:prefix)) = :prefix
  AND scheduled_for >= :lo AND scheduled_for < :hi AND +tick >= :first AND +tick < :stop
ORDER BY tenant DESC
LIMIT :limit;

-- name: dashboard_cells
-- For each tenant of the JSON array :tenants, day of the window and state: how many
-- occurrences of :job, the earliest one, and the tenant's time zone.
SELECT c.tenant, substr(c.tick, 1, 10) AS day, c.state, COUNT(*), MIN(c.scheduled_for),
       MAX(c.time_zone)
FROM json_each(:tenants) AS t
JOIN cronclaim_claims AS c ON c.job = :job AND c.tenant = t.value
WHERE c.scheduled_for >= :lo AND c.scheduled_for < :hi
  AND +c.tick >= :first AND +c.tick < :stop
GROUP BY c.tenant, day, c.state;

-- name: dashboard_day_due
-- Per day of the window: how many occurrences of :job the fan-outs found due.
SELECT substr(tick, 1, 10) AS day, SUM(due)
FROM cronclaim_ticks
WHERE job = :job AND tick >= :first AND tick < :stop
GROUP BY day;

-- name: dashboard_day_troubles
-- Per day of the window and state that is not done: how many occurrences of :job, and
-- the earliest; read from the two small indexes of rows that are not done.
SELECT substr(tick, 1, 10) AS day, state, COUNT(*), MIN(scheduled_for)
FROM cronclaim_claims INDEXED BY cronclaim_claims_failed_missed
WHERE job = :job AND state IN ('failed', 'missed')
  AND scheduled_for >= :lo AND scheduled_for < :hi AND +tick >= :first AND +tick < :stop
GROUP BY day, state
UNION ALL
SELECT substr(tick, 1, 10) AS day, state, COUNT(*), MIN(scheduled_for)
FROM cronclaim_claims INDEXED BY cronclaim_claims_open
WHERE job = :job AND state IN ('pending', 'released', 'claimed')
  AND scheduled_for >= :lo AND scheduled_for < :hi AND +tick >= :first AND +tick < :stop
GROUP BY day, state;

-- name: dashboard_day_counts
-- Per day of the window and state: how many occurrences of :job, and the earliest,
-- counted row by row (for jobs claimed without fan-out records).
SELECT substr(tick, 1, 10) AS day, state, COUNT(*), MIN(scheduled_for)
FROM cronclaim_claims
WHERE job = :job AND tick >= :first AND tick < :stop
GROUP BY day, state;
