-- The inbox: one item per conversation and per comment. People set its
-- assignee, status and labels; the derived fields (triage, waiting_since,
-- last activity, the list order `since`) are kept current by statement
-- triggers on the rows they come from, one set-based statement per
-- statement that changes them. Notes and canned replies beside it.

CREATE TABLE inbox_items (
    subject_id         UUID        NOT NULL,
    tenant_id          UUID        NOT NULL,
    subject_kind       TEXT        NOT NULL,
    channel_id         UUID        NOT NULL,
    assignee           TEXT COLLATE "C",
    status             TEXT        NOT NULL,
    snoozed_until      TIMESTAMPTZ,
    status_changed_at  TIMESTAMPTZ NOT NULL,
    labels             TEXT[]      NOT NULL,
    triage             TEXT,
    waiting_since      TIMESTAMPTZ,
    last_inbound_at    TIMESTAMPTZ,
    last_activity_at   TIMESTAMPTZ NOT NULL,
    since              TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_inbox_items PRIMARY KEY (subject_id),
    CONSTRAINT fk_inbox_items_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_inbox_items_channel FOREIGN KEY (tenant_id, channel_id)
        REFERENCES channels (tenant_id, id),
    CONSTRAINT ck_inbox_items_kind CHECK (subject_kind IN ('conversation', 'comment')),
    CONSTRAINT ck_inbox_items_status CHECK (
        status IN ('open', 'pending', 'resolved')
        OR (status = 'snoozed' AND snoozed_until IS NOT NULL))
);
-- One index per list (each ordered by since, subject_id for the cursor).
CREATE INDEX ix_inbox_unassigned_escalations ON inbox_items (tenant_id, since, subject_id)
    WHERE triage = 'escalate' AND assignee IS NULL AND status <> 'resolved';
CREATE INDEX ix_inbox_assignee ON inbox_items (tenant_id, assignee, since, subject_id)
    WHERE assignee IS NOT NULL;
CREATE INDEX ix_inbox_channel ON inbox_items (tenant_id, channel_id, since, subject_id);
CREATE INDEX ix_inbox_triage ON inbox_items (tenant_id, triage, since, subject_id);
CREATE INDEX ix_inbox_waiting ON inbox_items (tenant_id, waiting_since, subject_id)
    WHERE waiting_since IS NOT NULL;

-- The labels again, one row each with the item's list order and status, so
-- a label's list reads its rows in order and stops at the page's end.
CREATE TABLE inbox_labels (
    subject_id     UUID        NOT NULL,
    tenant_id      UUID        NOT NULL,
    label          TEXT        NOT NULL COLLATE "C",
    since          TIMESTAMPTZ NOT NULL,
    status         TEXT        NOT NULL,
    snoozed_until  TIMESTAMPTZ,
    CONSTRAINT pk_inbox_labels PRIMARY KEY (subject_id, label),
    CONSTRAINT fk_inbox_labels_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_inbox_labels_item FOREIGN KEY (subject_id) REFERENCES inbox_items (subject_id)
);
CREATE INDEX ix_inbox_labels ON inbox_labels (tenant_id, label, since, subject_id);

CREATE TABLE inbox_notes (
    id            UUID        NOT NULL,
    tenant_id     UUID        NOT NULL,
    subject_kind  TEXT        NOT NULL,
    subject_id    UUID        NOT NULL,
    author        TEXT        NOT NULL,
    text          TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_inbox_notes PRIMARY KEY (id),
    CONSTRAINT fk_inbox_notes_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_inbox_notes_item FOREIGN KEY (subject_id) REFERENCES inbox_items (subject_id)
);
CREATE INDEX ix_inbox_notes_subject ON inbox_notes (subject_id, created_at, id);

CREATE TABLE canned_replies (
    id          UUID        NOT NULL,
    tenant_id   UUID        NOT NULL,
    name        TEXT        NOT NULL COLLATE "C",
    text        TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_canned_replies PRIMARY KEY (id),
    CONSTRAINT uq_canned_replies_name UNIQUE (tenant_id, name),
    CONSTRAINT fk_canned_replies_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);

-- The items of these conversations, created or brought up to date. A
-- resolved or snoozed conversation whose contact wrote after its status
-- was set is open again. The items are locked first: a transaction that
-- changed the same conversation concurrently has committed when the next
-- statement (a new snapshot) reads the messages, so the last writer counts
-- every message.
CREATE FUNCTION nexiom_inbox_refresh_conversations(p_ids UUID[]) RETURNS void
    LANGUAGE sql
    AS $$
    SELECT 1 FROM inbox_items WHERE subject_id = ANY (p_ids) ORDER BY subject_id FOR UPDATE;
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
    $$;

-- The items of these comments, created or brought up to date: a comment
-- waits until a reply to it (automatic or an agent's) is sent.
CREATE FUNCTION nexiom_inbox_refresh_comments(p_ids UUID[]) RETURNS void
    LANGUAGE sql
    AS $$
    SELECT 1 FROM inbox_items WHERE subject_id = ANY (p_ids) ORDER BY subject_id FOR UPDATE;
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
    $$;

CREATE FUNCTION nexiom_inbox_conversations_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nexiom_inbox_refresh_conversations(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;
CREATE FUNCTION nexiom_inbox_messages_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nexiom_inbox_refresh_conversations(
        ARRAY(SELECT DISTINCT conversation_id FROM new_rows));
    RETURN NULL;
END $$;
CREATE FUNCTION nexiom_inbox_messages_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nexiom_inbox_refresh_conversations(ARRAY(
        SELECT DISTINCT n.conversation_id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE o.triage IS DISTINCT FROM n.triage));
    RETURN NULL;
END $$;
CREATE FUNCTION nexiom_inbox_comments_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nexiom_inbox_refresh_comments(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;
CREATE FUNCTION nexiom_inbox_comments_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nexiom_inbox_refresh_comments(ARRAY(
        SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE o.triage IS DISTINCT FROM n.triage));
    RETURN NULL;
END $$;
CREATE FUNCTION nexiom_inbox_comment_replies_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nexiom_inbox_refresh_comments(ARRAY(SELECT DISTINCT comment_id FROM new_rows));
    RETURN NULL;
END $$;
CREATE FUNCTION nexiom_inbox_agent_replies_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nexiom_inbox_refresh_comments(ARRAY(
        SELECT DISTINCT comment_id FROM new_rows
        WHERE comment_id IS NOT NULL AND state = 'sent'));
    RETURN NULL;
END $$;

CREATE TRIGGER tr_inbox_conversations AFTER INSERT ON conversations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION nexiom_inbox_conversations_inserted();
CREATE TRIGGER tr_inbox_messages_ins AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION nexiom_inbox_messages_inserted();
CREATE TRIGGER tr_inbox_messages_upd AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION nexiom_inbox_messages_updated();
CREATE TRIGGER tr_inbox_comments_ins AFTER INSERT ON comments
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION nexiom_inbox_comments_inserted();
CREATE TRIGGER tr_inbox_comments_upd AFTER UPDATE ON comments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION nexiom_inbox_comments_updated();
CREATE TRIGGER tr_inbox_comment_replies_ins AFTER INSERT ON comment_replies
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION nexiom_inbox_comment_replies_changed();
CREATE TRIGGER tr_inbox_comment_replies_upd AFTER UPDATE ON comment_replies
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION nexiom_inbox_comment_replies_changed();
CREATE TRIGGER tr_inbox_agent_replies_upd AFTER UPDATE ON agent_replies
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION nexiom_inbox_agent_replies_changed();

-- The items of what is stored already.
SELECT nexiom_inbox_refresh_conversations(ARRAY(SELECT id FROM conversations));
SELECT nexiom_inbox_refresh_comments(ARRAY(SELECT id FROM comments));

SELECT nexiom_secure_tables();
