-- A reply the platform failed does not answer the customer.
--
-- The inbox refresh counted every outbound message as an answer: a reply
-- whose `failed` status came back (undeliverable, outside the messaging
-- window, a number that cannot receive) left the conversation "answered",
-- so it dropped out of `WaitingLongerThan`, out of the SLA breaches, and
-- nobody was told the customer got nothing. Comments already counted only
-- sent replies. Now the last answer is the last outbound message whose
-- delivery status is not `failed`, and an update that makes a message
-- `failed` refreshes its conversation (before, only a change of triage did;
-- `failed` is the last status a message can take, so it is never undone).
--
-- Not backfilled: a conversation whose reply failed before this migration
-- is recomputed at its next message or status. Recomputing them all here
-- would send an SLA breach for every old failed reply at once.

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
               max(m.created_at) FILTER (WHERE m.direction = 'outbound'
                   AND m.delivery_status IS DISTINCT FROM 'failed') AS last_out,
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

CREATE OR REPLACE FUNCTION nexiom_inbox_messages_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nexiom_inbox_refresh_conversations(ARRAY(
        SELECT DISTINCT (array_agg(x.conversation_id) FILTER (WHERE x.new))[1]
        FROM (SELECT id, conversation_id, triage, delivery_status = 'failed' AS failed,
                     TRUE AS new FROM new_rows
              UNION ALL SELECT id, conversation_id, triage, delivery_status = 'failed', FALSE
                     FROM old_rows) x
        GROUP BY x.id
        HAVING min(coalesce(x.triage, '')) <> max(coalesce(x.triage, ''))
            OR bool_or(coalesce(x.failed, false)) <> bool_and(coalesce(x.failed, false))));
    RETURN NULL;
END $$;
