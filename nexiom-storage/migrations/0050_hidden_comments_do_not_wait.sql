-- A comment hidden on the platform (by a moderator, or through the library's
-- `hide_comment`) gets no reply, so its inbox item waits for no one: its
-- `waiting_since` is NULL, as an answered comment's is, and it takes no SLA
-- breach mark. The comments trigger refreshes an item when `hidden` changes
-- too, not only when the triage does; items of comments already hidden are
-- brought up to date.

CREATE OR REPLACE FUNCTION nexiom_inbox_refresh_comments(p_ids UUID[]) RETURNS void
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off
    AS $$
BEGIN
    PERFORM 1 FROM inbox_items WHERE subject_id = ANY (p_ids) ORDER BY subject_id FOR UPDATE;
    INSERT INTO inbox_items AS i (subject_id, tenant_id, subject_kind, channel_id, status,
        status_changed_at, labels, triage, waiting_since, last_inbound_at, last_activity_at, since)
    SELECT c.id, c.tenant_id, 'comment', c.channel_id, 'open', c.created_at, '{}', c.triage,
        CASE WHEN a.answered OR c.hidden THEN NULL ELSE c.created_at END, c.created_at,
        c.created_at, c.created_at
    FROM comments c
    CROSS JOIN LATERAL (SELECT
        EXISTS (SELECT 1 FROM comment_replies r WHERE r.comment_id = c.id
            AND r.status IN ('sent', 'delivered', 'read'))
        OR EXISTS (SELECT 1 FROM agent_replies x WHERE x.tenant_id = c.tenant_id
            AND x.comment_id = c.id AND x.state = 'sent') AS answered) a
    WHERE c.id = ANY (p_ids)
    ON CONFLICT (subject_id) DO UPDATE SET
        triage = EXCLUDED.triage,
        waiting_since = EXCLUDED.waiting_since;
END
    $$;

CREATE OR REPLACE FUNCTION nexiom_inbox_comments_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nexiom_inbox_refresh_comments(ARRAY(
        SELECT x.id
        FROM (SELECT id, triage, hidden FROM new_rows
              UNION ALL SELECT id, triage, hidden FROM old_rows) x
        GROUP BY x.id
        HAVING min(coalesce(x.triage, '')) <> max(coalesce(x.triage, ''))
            OR bool_or(x.hidden) <> bool_and(x.hidden)));
    RETURN NULL;
END $$;

UPDATE inbox_items i SET waiting_since = NULL
FROM comments c
WHERE c.id = i.subject_id AND c.hidden AND i.waiting_since IS NOT NULL;
