-- Nexiom storage schema, version 5: the reply queue.
--
-- An inbound message or comment triaged AUTO_REPLY carries its reply state:
-- pending (due at reply_next_at, NULL = now) -> sending (claimed until
-- reply_lease_until) -> sent, back to pending after a failed attempt
-- (reply_attempts + 1, reply_error, a backoff in reply_next_at), or given_up
-- (escalated). Workers find pending work through this state, never by
-- re-reading a time window.

ALTER TABLE messages
    ADD COLUMN reply_state       TEXT,
    ADD COLUMN reply_attempts    BIGINT      NOT NULL DEFAULT 0,
    ADD COLUMN reply_error       TEXT,
    ADD COLUMN reply_next_at     TIMESTAMPTZ,
    ADD COLUMN reply_lease_until TIMESTAMPTZ,
    ADD CONSTRAINT ck_messages_reply_state
        CHECK (reply_state IN ('pending', 'sending', 'sent', 'given_up')),
    ADD CONSTRAINT ck_messages_reply_attempts
        CHECK (reply_attempts >= 0 AND reply_attempts <= 4294967295);

ALTER TABLE comments
    ADD COLUMN reply_state       TEXT,
    ADD COLUMN reply_attempts    BIGINT      NOT NULL DEFAULT 0,
    ADD COLUMN reply_error       TEXT,
    ADD COLUMN reply_next_at     TIMESTAMPTZ,
    ADD COLUMN reply_lease_until TIMESTAMPTZ,
    ADD CONSTRAINT ck_comments_reply_state
        CHECK (reply_state IN ('pending', 'sending', 'sent', 'given_up')),
    ADD CONSTRAINT ck_comments_reply_attempts
        CHECK (reply_attempts >= 0 AND reply_attempts <= 4294967295);

-- Items triaged AUTO_REPLY before this version: answered ones are sent (their
-- reply row exists, whatever its outcome: it is never sent again), the others
-- join the queue.
UPDATE messages m SET reply_state = CASE
        WHEN EXISTS (SELECT 1 FROM messages r
                     WHERE r.tenant_id = m.tenant_id AND r.in_reply_to = m.id
                       AND r.direction = 'outbound')
        THEN 'sent' ELSE 'pending' END
    WHERE m.triage = 'auto_reply' AND m.direction = 'inbound';
UPDATE comments c SET reply_state = CASE
        WHEN EXISTS (SELECT 1 FROM comment_replies r WHERE r.comment_id = c.id)
        THEN 'sent' ELSE 'pending' END
    WHERE c.triage = 'auto_reply';

-- The queue: only items waiting or claimed, in claim order.
CREATE INDEX ix_messages_reply_queue ON messages (created_at, id)
    WHERE reply_state IN ('pending', 'sending');
CREATE INDEX ix_comments_reply_queue ON comments (created_at, id)
    WHERE reply_state IN ('pending', 'sending');
