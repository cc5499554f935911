-- The inbox refresh functions in PL/pgSQL, with generic plans.
--
-- Every statement that inserts into `conversations`, `messages`,
-- `comments`, `comment_replies` or `agent_replies` runs one of these two
-- functions from its statement trigger. As multi-statement SQL functions
-- they were planned at every call (a SQL function keeps its plans only for
-- the call), and `messages` is partitioned by month (migration 0033), so
-- each of the refresh's three lateral reads of a conversation's messages
-- plans one scan per partition: about 8 ms of planning for 0.6 ms of
-- execution when one conversation is refreshed, paid by every statement
-- that writes one message, comment or reply.
--
-- PL/pgSQL keeps each statement's plan for the session (planned again
-- after an invalidation, such as an analyze of a partition); the generic
-- plan is forced because the default (custom plans while they look
-- cheaper) kept choosing a custom plan for a one-element array, so planned
-- every call all the same. Sequential scans are off inside the functions:
-- a generic plan made while next month's partition is empty and analyzed
-- would otherwise keep a sequential scan of it (cheapest when empty) after
-- it fills, until its next analyze; every partition has the
-- (conversation_id, created_at) index, and the conversations, items and
-- labels are reached by key. Measured on the same rows (1,000
-- conversations of 5 to 15 messages, 5 partitions): a one-conversation
-- refresh 3.4-3.6 ms as SQL, 0.29 ms now; a refresh of the 1,000 at once
-- about 70 ms either way; 1,000 single-row message inserts (each firing
-- the refresh) 4.5-4.6 s as SQL, 0.49-0.50 s now.
--
-- The statements are unchanged, with one difference in what they see: a
-- PL/pgSQL function takes a new snapshot for each statement (in READ
-- COMMITTED), where a SQL function kept its first statement's snapshot for
-- the others. So the refresh now does what 0027's comment describes: it
-- locks the items first, and the statements after the lock see every
-- message committed by a transaction that held the lock before it (the
-- SQL function could miss a concurrent writer's message).

CREATE OR REPLACE FUNCTION nexiom_inbox_refresh_conversations(p_ids UUID[]) RETURNS void
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off
    AS $$
BEGIN
    PERFORM 1 FROM inbox_items WHERE subject_id = ANY (p_ids) ORDER BY subject_id FOR UPDATE;
    INSERT INTO inbox_items AS i (subject_id, tenant_id, subject_kind, channel_id, status,
        status_changed_at, labels, triage, waiting_since, last_inbound_at, last_activity_at, since)
    SELECT c.id, c.tenant_id, 'conversation', c.channel_id, 'open', c.created_at, '{}',
        t.triage, w.waiting_since, l.last_in, COALESCE(l.last_at, c.created_at),
        COALESCE(w.waiting_since, l.last_at, c.created_at)
    FROM conversations c
    LEFT JOIN LATERAL (
        SELECT max(m.created_at) AS last_at,
               max(m.created_at) FILTER (WHERE m.direction = 'outbound') AS last_out,
               max(m.created_at) FILTER (WHERE m.direction = 'inbound') AS last_in
        FROM messages m WHERE m.conversation_id = c.id) l ON true
    LEFT JOIN LATERAL (
        SELECT min(m.created_at) AS waiting_since FROM messages m
        WHERE m.conversation_id = c.id AND m.direction = 'inbound'
            AND (l.last_out IS NULL OR m.created_at > l.last_out)) w ON true
    LEFT JOIN LATERAL (
        SELECT m.triage FROM messages m
        WHERE m.conversation_id = c.id AND m.direction = 'inbound' AND m.triage IS NOT NULL
        ORDER BY m.created_at DESC, m.id DESC LIMIT 1) t ON true
    WHERE c.id = ANY (p_ids)
    ON CONFLICT (subject_id) DO UPDATE SET
        triage = EXCLUDED.triage,
        waiting_since = EXCLUDED.waiting_since,
        last_inbound_at = EXCLUDED.last_inbound_at,
        last_activity_at = EXCLUDED.last_activity_at,
        since = EXCLUDED.since,
        status = CASE WHEN i.status IN ('resolved', 'snoozed')
                       AND EXCLUDED.last_inbound_at > i.status_changed_at
                  THEN 'open' ELSE i.status END,
        snoozed_until = CASE WHEN i.status IN ('resolved', 'snoozed')
                       AND EXCLUDED.last_inbound_at > i.status_changed_at
                  THEN NULL ELSE i.snoozed_until END;
    UPDATE inbox_labels l SET since = i.since, status = i.status, snoozed_until = i.snoozed_until
    FROM inbox_items i
    WHERE l.subject_id = ANY (p_ids) AND i.subject_id = l.subject_id
        AND (l.since, l.status, l.snoozed_until) IS DISTINCT FROM
            (i.since, i.status, i.snoozed_until);
END
    $$;

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
        CASE WHEN a.answered THEN NULL ELSE c.created_at END, c.created_at, c.created_at,
        c.created_at
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
