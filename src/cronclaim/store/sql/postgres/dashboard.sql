-- Named queries of the dashboard (read only).
--
-- A day is a tenant-local date: the first ten characters of a tick ('2026-05-19' of
-- '2026-05-19T07:00'). A window of days is given twice: as tick bounds (%(first)s <= tick
-- < %(stop)s, exact) and as a slightly wider range of instants (%(lo)s <= scheduled_for <
-- %(hi)s), which lets the occurrence index narrow each tenant's rows.
--
-- Tenant pages are keyset-paginated in tenant order. %(after)s / %(before)s are the
-- exclusive cursors ('' / the page's first tenant), %(prefix)s is the search ('' for
-- none) and %(prefix_high)s its inclusive upper bound (the prefix followed by U+10FFFF;
-- NULL for none). Each page reads an index range that starts at its cursor, so its cost
-- depends on the page size, not on the number of tenants. The partial indexes of failed
-- and missed rows and of open rows serve the outcome filters: their predicates are
-- repeated literally in each query so that a generic plan may use them.

-- name: dashboard_tenants_after
-- The tenants of %(job)s with an occurrence in the window, after %(after)s, ascending.
SELECT DISTINCT tenant
FROM cronclaim_claims
WHERE job = %(job)s
  AND tenant >= GREATEST(%(after)s::text, %(prefix)s::text) AND tenant <> %(after)s::text
  AND tenant <= COALESCE(%(prefix_high)s::text,
                         (SELECT MAX(tenant) FROM cronclaim_claims WHERE job = %(job)s))
  AND starts_with(tenant, %(prefix)s::text)
  AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
  AND tick >= %(first)s AND tick < %(stop)s
ORDER BY tenant
LIMIT %(limit)s::integer;

-- name: dashboard_tenants_before
-- The tenants of %(job)s with an occurrence in the window, before %(before)s, descending.
SELECT DISTINCT tenant
FROM cronclaim_claims
WHERE job = %(job)s
  AND tenant >= %(prefix)s::text
  AND tenant <= LEAST(%(before)s::text, %(prefix_high)s::text) AND tenant <> %(before)s::text
  AND starts_with(tenant, %(prefix)s::text)
  AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
  AND tick >= %(first)s AND tick < %(stop)s
ORDER BY tenant DESC
LIMIT %(limit)s::integer;

-- name: dashboard_tenants_done_after
-- The tenants of %(job)s with a done occurrence in the window, after %(after)s, ascending.
SELECT DISTINCT tenant
FROM cronclaim_claims
WHERE job = %(job)s AND state = 'done'
  AND tenant >= GREATEST(%(after)s::text, %(prefix)s::text) AND tenant <> %(after)s::text
  AND tenant <= COALESCE(%(prefix_high)s::text,
                         (SELECT MAX(tenant) FROM cronclaim_claims WHERE job = %(job)s))
  AND starts_with(tenant, %(prefix)s::text)
  AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
  AND tick >= %(first)s AND tick < %(stop)s
ORDER BY tenant
LIMIT %(limit)s::integer;

-- name: dashboard_tenants_done_before
-- The tenants of %(job)s with a done occurrence in the window, before %(before)s, descending.
SELECT DISTINCT tenant
FROM cronclaim_claims
WHERE job = %(job)s AND state = 'done'
  AND tenant >= %(prefix)s::text
  AND tenant <= LEAST(%(before)s::text, %(prefix_high)s::text) AND tenant <> %(before)s::text
  AND starts_with(tenant, %(prefix)s::text)
  AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
  AND tick >= %(first)s AND tick < %(stop)s
ORDER BY tenant DESC
LIMIT %(limit)s::integer;

-- name: dashboard_tenants_final_after
-- The tenants of %(job)s with an occurrence in %(state)s (failed or missed) in the window,
-- after %(after)s, ascending; read from the small index of failed and missed rows.
SELECT DISTINCT tenant
FROM cronclaim_claims
WHERE job = %(job)s AND state IN ('failed', 'missed') AND state = %(state)s::text
  AND tenant >= GREATEST(%(after)s::text, %(prefix)s::text) AND tenant <> %(after)s::text
  AND tenant <= COALESCE(%(prefix_high)s::text,
                         (SELECT MAX(tenant) FROM cronclaim_claims WHERE job = %(job)s))
  AND starts_with(tenant, %(prefix)s::text)
  AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
  AND tick >= %(first)s AND tick < %(stop)s
ORDER BY tenant
LIMIT %(limit)s::integer;

-- name: dashboard_tenants_final_before
-- The tenants of %(job)s with an occurrence in %(state)s (failed or missed) in the window,
-- before %(before)s, descending.
SELECT DISTINCT tenant
FROM cronclaim_claims
WHERE job = %(job)s AND state IN ('failed', 'missed') AND state = %(state)s::text
  AND tenant >= %(prefix)s::text
  AND tenant <= LEAST(%(before)s::text, %(prefix_high)s::text) AND tenant <> %(before)s::text
  AND starts_with(tenant, %(prefix)s::text)
  AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
  AND tick >= %(first)s AND tick < %(stop)s
ORDER BY tenant DESC
LIMIT %(limit)s::integer;

-- name: dashboard_tenants_open_after
-- The tenants of %(job)s with an occurrence in %(state)s (pending, released or claimed) in the
-- window, after %(after)s, ascending; read from the index of open rows.
SELECT tenant
FROM cronclaim_claims
WHERE job = %(job)s AND state IN ('pending', 'released', 'claimed') AND state = %(state)s::text
  AND tenant >= GREATEST(%(after)s::text, %(prefix)s::text) AND tenant <> %(after)s::text
  AND tenant <= COALESCE(%(prefix_high)s::text,
                         (SELECT MAX(tenant) FROM cronclaim_claims WHERE job = %(job)s))
  AND starts_with(tenant, %(prefix)s::text)
  AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
  AND tick >= %(first)s AND tick < %(stop)s
GROUP BY tenant
ORDER BY tenant
LIMIT %(limit)s::integer;

-- name: dashboard_tenants_open_before
-- The tenants of %(job)s with an occurrence in %(state)s (pending, released or claimed) in the
-- window, before %(before)s, descending.
SELECT tenant
FROM cronclaim_claims
WHERE job = %(job)s AND state IN ('pending', 'released', 'claimed') AND state = %(state)s::text
  AND tenant >= %(prefix)s::text
  AND tenant <= LEAST(%(before)s::text, %(prefix_high)s::text) AND tenant <> %(before)s::text
  AND starts_with(tenant, %(prefix)s::text)
  AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
  AND tick >= %(first)s AND tick < %(stop)s
GROUP BY tenant
ORDER BY tenant DESC
LIMIT %(limit)s::integer;

-- name: dashboard_tenants_problems_after
-- The tenants of %(job)s with an occurrence that is not done in the window, after %(after)s,
-- ascending: a page from each small index (failed, missed, open rows), then merged. Each
-- branch has its own limit, so none reads past its page even before ANALYZE.
SELECT tenant
FROM (
    (SELECT DISTINCT tenant FROM cronclaim_claims
     WHERE job = %(job)s AND state IN ('failed', 'missed') AND state = 'failed'
      AND tenant >= GREATEST(%(after)s::text, %(prefix)s::text) AND tenant <> %(after)s::text
      AND tenant <= COALESCE(%(prefix_high)s::text,
                             (SELECT MAX(tenant) FROM cronclaim_claims WHERE job = %(job)s))
      AND starts_with(tenant, %(prefix)s::text)
      AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
      AND tick >= %(first)s AND tick < %(stop)s
     ORDER BY tenant LIMIT %(limit)s::integer)
    UNION
    (SELECT DISTINCT tenant FROM cronclaim_claims
     WHERE job = %(job)s AND state IN ('failed', 'missed') AND state = 'missed'
      AND tenant >= GREATEST(%(after)s::text, %(prefix)s::text) AND tenant <> %(after)s::text
      AND tenant <= COALESCE(%(prefix_high)s::text,
                             (SELECT MAX(tenant) FROM cronclaim_claims WHERE job = %(job)s))
      AND starts_with(tenant, %(prefix)s::text)
      AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
      AND tick >= %(first)s AND tick < %(stop)s
     ORDER BY tenant LIMIT %(limit)s::integer)
    UNION
    (SELECT DISTINCT tenant FROM cronclaim_claims
     WHERE job = %(job)s AND state IN ('pending', 'released', 'claimed')
      AND tenant >= GREATEST(%(after)s::text, %(prefix)s::text) AND tenant <> %(after)s::text
      AND tenant <= COALESCE(%(prefix_high)s::text,
                             (SELECT MAX(tenant) FROM cronclaim_claims WHERE job = %(job)s))
      AND starts_with(tenant, %(prefix)s::text)
      AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
      AND tick >= %(first)s AND tick < %(stop)s
     ORDER BY tenant LIMIT %(limit)s::integer)
) AS not_done
ORDER BY tenant
LIMIT %(limit)s::integer;

-- name: dashboard_tenants_problems_before
-- The tenants of %(job)s with an occurrence that is not done in the window, before %(before)s,
-- descending.
SELECT tenant
FROM (
    (SELECT DISTINCT tenant FROM cronclaim_claims
     WHERE job = %(job)s AND state IN ('failed', 'missed') AND state = 'failed'
      AND tenant >= %(prefix)s::text
      AND tenant <= LEAST(%(before)s::text, %(prefix_high)s::text) AND tenant <> %(before)s::text
      AND starts_with(tenant, %(prefix)s::text)
      AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
      AND tick >= %(first)s AND tick < %(stop)s
     ORDER BY tenant DESC LIMIT %(limit)s::integer)
    UNION
    (SELECT DISTINCT tenant FROM cronclaim_claims
     WHERE job = %(job)s AND state IN ('failed', 'missed') AND state = 'missed'
      AND tenant >= %(prefix)s::text
      AND tenant <= LEAST(%(before)s::text, %(prefix_high)s::text) AND tenant <> %(before)s::text
      AND starts_with(tenant, %(prefix)s::text)
      AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
      AND tick >= %(first)s AND tick < %(stop)s
     ORDER BY tenant DESC LIMIT %(limit)s::integer)
    UNION
    (SELECT DISTINCT tenant FROM cronclaim_claims
     WHERE job = %(job)s AND state IN ('pending', 'released', 'claimed')
      AND tenant >= %(prefix)s::text
      AND tenant <= LEAST(%(before)s::text, %(prefix_high)s::text) AND tenant <> %(before)s::text
      AND starts_with(tenant, %(prefix)s::text)
      AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
      AND tick >= %(first)s AND tick < %(stop)s
     ORDER BY tenant DESC LIMIT %(limit)s::integer)
) AS not_done
ORDER BY tenant DESC
LIMIT %(limit)s::integer;

-- name: dashboard_cells
-- For each tenant of %(tenants)s, day of the window and state: how many
-- occurrences of %(job)s, the earliest one, and the tenant's time zone.
SELECT c.tenant, left(c.tick, 10) AS day, c.state, COUNT(*), MIN(c.scheduled_for),
       MAX(c.time_zone)
FROM cronclaim_claims AS c
WHERE c.job = %(job)s AND c.tenant = ANY(%(tenants)s::text[])
  AND c.scheduled_for >= %(lo)s::timestamptz AND c.scheduled_for < %(hi)s::timestamptz
  AND c.tick >= %(first)s AND c.tick < %(stop)s
GROUP BY c.tenant, day, c.state;

-- name: dashboard_day_due
-- Per day of the window: how many occurrences of %(job)s the fan-outs found due.
SELECT left(tick, 10) AS day, SUM(due)
FROM cronclaim_ticks
WHERE job = %(job)s AND tick >= %(first)s AND tick < %(stop)s
GROUP BY day;

-- name: dashboard_day_troubles
-- Per day of the window and state that is not done: how many occurrences of %(job)s, and
-- the earliest; read from the two small indexes of rows that are not done.
SELECT left(tick, 10) AS day, state, COUNT(*), MIN(scheduled_for)
FROM cronclaim_claims
WHERE job = %(job)s AND state IN ('failed', 'missed')
  AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
  AND tick >= %(first)s AND tick < %(stop)s
GROUP BY day, state
UNION ALL
SELECT left(tick, 10) AS day, state, COUNT(*), MIN(scheduled_for)
FROM cronclaim_claims
WHERE job = %(job)s AND state IN ('pending', 'released', 'claimed')
  AND scheduled_for >= %(lo)s::timestamptz AND scheduled_for < %(hi)s::timestamptz
  AND tick >= %(first)s AND tick < %(stop)s
GROUP BY day, state;

-- name: dashboard_day_counts
-- Per day of the window and state: how many occurrences of %(job)s, and the earliest,
-- counted row by row (for jobs claimed without fan-out records).
SELECT left(tick, 10) AS day, state, COUNT(*), MIN(scheduled_for)
FROM cronclaim_claims
WHERE job = %(job)s AND tick >= %(first)s AND tick < %(stop)s
GROUP BY day, state;
