//! The SQL of the KPI store on Postgres.

/// The KPI aggregation of `recompute_kpis` (one tenant) and
/// `recompute_kpis_for` (many, sharing their windows), one statement. Binds:
/// `$1` the tenants, `$2` window starts and `$3` window ends (sorted,
/// non-overlapping, possibly far apart), `$4` `computed_at`, `$5` the first
/// start and `$6` the last end.
///
/// One pass over the tenants' messages since `$5` (`seq`), partitioned by
/// conversation and ordered latest first: `lead` gives the message just
/// before (looked up by index for the earliest message of each conversation
/// in the scan, whose predecessor is older than `$5`), a running `min` over
/// the later rows gives the next outbound time, and each row finds its window
/// with `width_bucket` over the starts (a binary search), kept when it falls
/// before that window's end (`b` is NULL outside every window). Counts and
/// waits are read from that pass; decisions join the items in the windows on
/// the subject (a hash join for many items, the unique subject index for a
/// few). The
/// arithmetic matches `nexiom_core::compute_kpis` bit for bit (see its docs).
pub(super) const RECOMPUTE_KPIS: &str = r"
WITH w AS (
    SELECT t.window_start, t.window_end, t.b::int AS b
    FROM unnest($2::timestamptz[], $3::timestamptz[])
        WITH ORDINALITY AS t (window_start, window_end, b)
),
seq AS (
    SELECT s.*,
           CASE WHEN s.created_at < $6 AND s.bucket > 0
                     AND s.created_at < ($3::timestamptz[])[s.bucket]
                THEN s.bucket END AS b
    FROM (
        SELECT m.tenant_id, m.id, m.conversation_id, m.direction, m.created_at,
               width_bucket(m.created_at, $2::timestamptz[]) AS bucket,
               lead(m.direction) OVER later_first AS previous_direction,
               min(m.created_at) FILTER (WHERE m.direction = 'outbound')
                   OVER (later_first ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                   AS reply_at
        FROM messages m
        WHERE m.tenant_id = ANY($1::uuid[]) AND m.created_at >= $5
        WINDOW later_first AS (PARTITION BY m.conversation_id
                               ORDER BY m.created_at DESC, m.id DESC)
    ) s
),
message_stats AS (
    SELECT s.tenant_id, s.b,
           count(*) FILTER (WHERE s.direction = 'inbound') AS messages_count,
           percentile_cont(0.5) WITHIN GROUP
               (ORDER BY extract(epoch FROM s.reply_at - s.created_at)::float8)
               FILTER (WHERE s.direction = 'inbound' AND s.reply_at IS NOT NULL
                       AND COALESCE(
                             s.previous_direction,
                             (SELECT p.direction FROM messages p
                              WHERE p.conversation_id = s.conversation_id
                                AND (p.created_at, p.id) < (s.created_at, s.id)
                              ORDER BY p.created_at DESC, p.id DESC
                              LIMIT 1),
                             'outbound') = 'outbound') AS p50
    FROM seq s
    WHERE s.b IS NOT NULL
    GROUP BY s.tenant_id, s.b
),
cmts AS MATERIALIZED (
    SELECT c.tenant_id, c.id, c.post_id, w.b
    FROM comments c
    JOIN w ON w.b = width_bucket(c.created_at, $2::timestamptz[])
          AND c.created_at < w.window_end
    WHERE c.tenant_id = ANY($1::uuid[]) AND c.created_at >= $5 AND c.created_at < $6
),
comment_stats AS (
    SELECT tenant_id, b, count(*) AS comments_count, count(DISTINCT post_id) AS posts_active
    FROM cmts
    GROUP BY tenant_id, b
),
msgs AS (
    SELECT m.tenant_id, m.id, width_bucket(m.created_at, $2::timestamptz[]) AS bucket,
           m.created_at
    FROM messages m
    WHERE m.tenant_id = ANY($1::uuid[]) AND m.created_at >= $5 AND m.created_at < $6
),
decided AS (
    SELECT x.tenant_id, x.bucket AS b, d.triage
    FROM msgs x
    JOIN ai_decisions d ON d.subject_kind = 'message' AND d.subject_id = x.id
                       AND d.tenant_id = ANY($1::uuid[])
    WHERE x.bucket > 0 AND x.created_at < ($3::timestamptz[])[x.bucket]
    UNION ALL
    SELECT x.tenant_id, x.b, d.triage
    FROM cmts x
    JOIN ai_decisions d ON d.subject_kind = 'comment' AND d.subject_id = x.id
                       AND d.tenant_id = ANY($1::uuid[])
),
decision_stats AS (
    SELECT tenant_id, b, count(*) AS total,
           count(*) FILTER (WHERE triage = 'auto_reply') AS auto_replies,
           count(*) FILTER (WHERE triage = 'escalate') AS escalations,
           count(*) FILTER (WHERE triage = 'ignore') AS ignored
    FROM decided
    GROUP BY tenant_id, b
)
INSERT INTO kpi_2h (tenant_id, window_start, window_end, messages_count,
    comments_count, frt_p50_seconds, auto_reply_rate, escalate_count,
    ignored_count, posts_active, computed_at)
SELECT t.tenant_id, w.window_start, w.window_end,
       COALESCE(ms.messages_count, 0),
       COALESCE(cs.comments_count, 0),
       floor(ms.p50 + 0.5)::bigint,
       ((2000 * ds.auto_replies + ds.total) / (2 * ds.total))::float8 / 1000,
       COALESCE(ds.escalations, 0),
       COALESCE(ds.ignored, 0),
       COALESCE(cs.posts_active, 0),
       $4
FROM unnest($1::uuid[]) AS t (tenant_id)
CROSS JOIN w
LEFT JOIN message_stats ms ON ms.tenant_id = t.tenant_id AND ms.b = w.b
LEFT JOIN comment_stats cs ON cs.tenant_id = t.tenant_id AND cs.b = w.b
LEFT JOIN decision_stats ds ON ds.tenant_id = t.tenant_id AND ds.b = w.b
ON CONFLICT (tenant_id, window_start) DO UPDATE SET
    window_end = EXCLUDED.window_end,
    messages_count = EXCLUDED.messages_count,
    comments_count = EXCLUDED.comments_count,
    frt_p50_seconds = EXCLUDED.frt_p50_seconds,
    auto_reply_rate = EXCLUDED.auto_reply_rate,
    escalate_count = EXCLUDED.escalate_count,
    ignored_count = EXCLUDED.ignored_count,
    posts_active = EXCLUDED.posts_active,
    computed_at = EXCLUDED.computed_at
RETURNING *
";

/// `kpi_activity`: the quarter hours of what changed since `$2` (see the
/// trait). Binds: `$1` tenant, `$2` since.
pub(super) const KPI_ACTIVITY: &str = r"
WITH recent AS MATERIALIZED (
    SELECT m.id, m.conversation_id, m.direction, m.created_at
    FROM messages m
    WHERE m.tenant_id = $1 AND m.created_at >= $2
),
touched AS (
    SELECT r.created_at FROM recent r
    UNION ALL
    SELECT n.created_at
    FROM recent r
    CROSS JOIN LATERAL (
        SELECT p.created_at FROM messages p
        WHERE p.conversation_id = r.conversation_id
          AND (p.created_at, p.id) > (r.created_at, r.id)
        ORDER BY p.created_at, p.id
        LIMIT 1) n
    UNION ALL
    SELECT i.created_at
    FROM recent o
    LEFT JOIN LATERAL (
        SELECT p.created_at, p.id FROM messages p
        WHERE p.conversation_id = o.conversation_id AND p.direction = 'outbound'
          AND (p.created_at, p.id) < (o.created_at, o.id)
        ORDER BY p.created_at DESC, p.id DESC
        LIMIT 1) prev ON true
    JOIN messages i ON i.conversation_id = o.conversation_id AND i.direction = 'inbound'
         AND (i.created_at, i.id) < (o.created_at, o.id)
         AND (prev.id IS NULL OR (i.created_at, i.id) > (prev.created_at, prev.id))
    WHERE o.direction = 'outbound'
    UNION ALL
    SELECT c.created_at FROM comments c
    WHERE c.tenant_id = $1 AND c.created_at >= $2
    UNION ALL
    SELECT COALESCE(m.created_at, c.created_at)
    FROM ai_decisions d
    LEFT JOIN messages m ON d.subject_kind = 'message' AND m.id = d.subject_id
    LEFT JOIN comments c ON d.subject_kind = 'comment' AND c.id = d.subject_id
    WHERE d.tenant_id = $1 AND d.created_at >= $2
)
SELECT DISTINCT to_timestamp(floor(extract(epoch FROM t.created_at) / 900) * 900) AS q
FROM touched t
WHERE t.created_at IS NOT NULL
ORDER BY q
";
