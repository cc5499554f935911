-- Messages partitioned by month of `created_at` (the message's own time:
-- the platform's for an inbound message, the sending time for an outbound
-- one), so that a retention on messages drops whole months; partitions are
-- named `messages_yYYYYmMM`, created ahead by the partition worker, with a
-- default partition for months not created yet.
--
-- A unique key on a partitioned table must hold the partition key, and a
-- foreign key can only point at such a key. So:
-- * the primary key is `(id, created_at)` (ids are UUID v7, unique on their
--   own); `uq_messages_tenant_id` goes (it was the target of the foreign
--   keys below);
-- * the message key is `(channel_id, provider_message_id, created_at)`: a
--   redelivered inbound message carries the same time, so two writers of
--   it still collide; across times, every writer checks the key first (its
--   statement's `NOT EXISTS`, or routing's lookup);
-- * "one outbound reply per inbound message" is checked by the inserting
--   statements (`NOT EXISTS` on `ix_messages_in_reply_to`) under a
--   transaction lock on the message answered (`pg_advisory_xact_lock`),
--   which `insert_message` and the reply claims both take;
-- * the message key is checked the same way under a lock on the key by
--   `insert_message` and agent replies; routing looks it up, and a router
--   racing one of those writers with the same provider id at another time
--   could store it twice (a platform sends one message with one time);
-- * the foreign keys pointing at messages (a reply's `in_reply_to`, an AI
--   decision's and an agent reply's message) give way to checks in the
--   statements that write them: each reads the message in the tenant's
--   scope (`insert_message`, `insert_decision`, the reply claims). Messages
--   are removed by retention and by a withdrawn reply claim (its own
--   outbound message), so a reference may outlive its message, as a
--   retention's would anyway.
--
-- Nothing else changes: the same columns, checks, indexes, row security and
-- triggers (the inbox's statement triggers and the escalation notice) on
-- the partitioned table.

ALTER TABLE agent_replies DROP CONSTRAINT fk_agent_replies_message;
ALTER TABLE ai_decisions DROP CONSTRAINT fk_ai_decisions_message;

CREATE OR REPLACE FUNCTION nexiom_partition_key(tbl text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE tbl
        WHEN 'task_executions' THEN 'started_at'
        WHEN 'webhook_events' THEN 'occurred_at'
        WHEN 'messages' THEN 'created_at'
    END
$$;

ALTER TABLE messages RENAME TO messages_unpartitioned;
ALTER TABLE messages_unpartitioned DROP CONSTRAINT fk_messages_in_reply_to;
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'messages_unpartitioned'::regclass AND contype IN ('p', 'u', 'c', 'f')
    LOOP
        EXECUTE format('ALTER TABLE messages_unpartitioned RENAME CONSTRAINT %I TO %I',
                       c.conname, c.conname || '_unpartitioned');
    END LOOP;
END $$;
DROP INDEX ix_messages_conversation, ix_messages_outbound, ix_messages_reply_queue,
    ix_messages_tenant_created, ix_messages_triage, ix_messages_untriaged,
    uq_messages_in_reply_to;
DROP TRIGGER tr_inbox_messages_ins ON messages_unpartitioned;
DROP TRIGGER tr_inbox_messages_upd ON messages_unpartitioned;
DROP TRIGGER tr_messages_escalated ON messages_unpartitioned;

CREATE TABLE messages (
    id                   UUID             NOT NULL,
    tenant_id            UUID             NOT NULL,
    conversation_id      UUID             NOT NULL,
    channel_id           UUID             NOT NULL,
    direction            TEXT             NOT NULL,
    text                 TEXT             NOT NULL,
    has_media            BOOLEAN          NOT NULL,
    provider_message_id  TEXT,
    in_reply_to          UUID,
    triage               TEXT,
    confidence           DOUBLE PRECISION,
    ai_decision_id       UUID,
    delivery_status      TEXT,
    created_at           TIMESTAMPTZ      NOT NULL,
    stored_at            TIMESTAMPTZ      NOT NULL,
    reply_state          TEXT,
    reply_attempts       BIGINT           NOT NULL DEFAULT 0,
    reply_error          TEXT,
    reply_next_at        TIMESTAMPTZ,
    reply_lease_until    TIMESTAMPTZ,
    CONSTRAINT pk_messages PRIMARY KEY (id, created_at),
    -- NULL provider ids are distinct: messages without one are always stored.
    CONSTRAINT uq_messages_provider UNIQUE (channel_id, provider_message_id, created_at),
    CONSTRAINT fk_messages_conversation FOREIGN KEY (tenant_id, conversation_id, channel_id)
        REFERENCES conversations (tenant_id, id, channel_id),
    CONSTRAINT ck_messages_direction CHECK (direction IN ('inbound', 'outbound')),
    CONSTRAINT ck_messages_triage CHECK (triage IN ('ignore', 'escalate', 'auto_reply')),
    CONSTRAINT ck_messages_confidence CHECK (confidence >= 0 AND confidence <= 1),
    CONSTRAINT ck_messages_delivery_status
        CHECK (delivery_status IN ('pending', 'sent', 'delivered', 'read', 'failed')),
    CONSTRAINT ck_messages_reply_state
        CHECK (reply_state IN ('pending', 'sending', 'sent', 'given_up')),
    CONSTRAINT ck_messages_reply_attempts
        CHECK (reply_attempts >= 0 AND reply_attempts <= 4294967295)
) PARTITION BY RANGE (created_at);
CREATE INDEX ix_messages_in_reply_to ON messages (in_reply_to)
    WHERE in_reply_to IS NOT NULL AND direction = 'outbound';
CREATE INDEX ix_messages_conversation ON messages (conversation_id, created_at, id);
CREATE INDEX ix_messages_outbound ON messages (tenant_id, created_at, id)
    WHERE direction = 'outbound';
CREATE INDEX ix_messages_reply_queue ON messages (created_at, id)
    WHERE reply_state IN ('pending', 'sending');
CREATE INDEX ix_messages_tenant_created ON messages (tenant_id, created_at)
    INCLUDE (conversation_id, direction, id);
CREATE INDEX ix_messages_triage ON messages (tenant_id, triage, created_at, id)
    WHERE direction = 'inbound' AND triage IS NOT NULL;
CREATE INDEX ix_messages_untriaged ON messages (tenant_id, created_at, id)
    WHERE triage IS NULL AND direction = 'inbound';
CREATE TABLE messages_default PARTITION OF messages DEFAULT;

-- Months of the existing rows (at most the last ten years: a conversation's
-- history is kept; older rows go to the default partition, as do rows more
-- than a year ahead) and the next three, then the rows themselves. The
-- default partition is read whenever a month is created, so it is kept to
-- what no month takes.
SELECT nexiom_month_partitions('messages',
    greatest(coalesce((SELECT min(created_at) FROM messages_unpartitioned), now()),
             now() - interval '10 years'),
    least(greatest(coalesce((SELECT max(created_at) FROM messages_unpartitioned), now()),
                   now()),
          now() + interval '1 year')
        + interval '3 months');
INSERT INTO messages SELECT * FROM messages_unpartitioned;
DROP TABLE messages_unpartitioned;

-- A row trigger on a partitioned table runs with the partition's name in
-- TG_TABLE_NAME (`messages_y2026m11`): the escalation notice tells its
-- subject by the comments' table instead.
CREATE OR REPLACE FUNCTION nexiom_notify_escalated() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_subject TEXT := CASE TG_TABLE_NAME WHEN 'comments' THEN 'comment' ELSE 'message' END;
    v_at TIMESTAMPTZ;
    v_payload JSONB;
BEGIN
    SELECT d.created_at INTO v_at FROM ai_decisions d
    WHERE d.tenant_id = NEW.tenant_id AND d.id = NEW.ai_decision_id;
    IF v_subject = 'message' THEN
        v_payload := jsonb_build_object('subject', 'message', 'message_id', NEW.id,
            'conversation_id', NEW.conversation_id, 'channel_id', NEW.channel_id,
            'text', NEW.text, 'decision_id', NEW.ai_decision_id);
    ELSE
        v_payload := jsonb_build_object('subject', 'comment', 'comment_id', NEW.id,
            'post_id', NEW.post_id, 'channel_id', NEW.channel_id,
            'text', NEW.text, 'decision_id', NEW.ai_decision_id);
    END IF;
    PERFORM nexiom_enqueue_notification(NEW.tenant_id, 'item_escalated',
        'item_escalated:' || v_subject || ':' || NEW.id, v_payload,
        COALESCE(v_at, NEW.created_at));
    RETURN NULL;
END
$$;

CREATE TRIGGER tr_inbox_messages_ins AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION nexiom_inbox_messages_inserted();
CREATE TRIGGER tr_inbox_messages_upd AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION nexiom_inbox_messages_updated();
CREATE TRIGGER tr_messages_escalated AFTER UPDATE OF triage ON messages
    FOR EACH ROW WHEN (NEW.triage = 'escalate' AND OLD.triage IS DISTINCT FROM 'escalate')
    EXECUTE FUNCTION nexiom_notify_escalated();

SELECT nexiom_secure_tables();
