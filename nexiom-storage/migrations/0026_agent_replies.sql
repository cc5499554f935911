-- Replies written by agents: one row per (tenant, idempotency key), claimed
-- before the platform call; a private reply is unique per comment.

CREATE TABLE agent_replies (
    id               UUID        NOT NULL,
    tenant_id        UUID        NOT NULL,
    target_kind      TEXT        NOT NULL,
    conversation_id  UUID,
    comment_id       UUID,
    channel_id       UUID        NOT NULL,
    agent_id         TEXT        NOT NULL,
    text             TEXT        NOT NULL,
    template         JSONB,
    idempotency_key  TEXT        NOT NULL,
    state            TEXT        NOT NULL,
    message_id       UUID,
    provider_id      TEXT,
    error            TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    CONSTRAINT pk_agent_replies PRIMARY KEY (id),
    CONSTRAINT uq_agent_replies_key UNIQUE (tenant_id, idempotency_key),
    CONSTRAINT fk_agent_replies_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_agent_replies_conversation FOREIGN KEY (tenant_id, conversation_id)
        REFERENCES conversations (tenant_id, id),
    CONSTRAINT fk_agent_replies_comment FOREIGN KEY (tenant_id, comment_id)
        REFERENCES comments (tenant_id, id),
    CONSTRAINT fk_agent_replies_channel FOREIGN KEY (tenant_id, channel_id)
        REFERENCES channels (tenant_id, id),
    CONSTRAINT fk_agent_replies_message FOREIGN KEY (tenant_id, message_id)
        REFERENCES messages (tenant_id, id),
    CONSTRAINT ck_agent_replies_target CHECK (
        (target_kind = 'conversation' AND conversation_id IS NOT NULL AND comment_id IS NULL)
        OR (target_kind IN ('public_comment', 'private_comment')
            AND comment_id IS NOT NULL AND conversation_id IS NULL)),
    CONSTRAINT ck_agent_replies_state CHECK (state IN ('sending', 'sent', 'failed'))
);
-- One private reply per comment (the platforms allow one).
CREATE UNIQUE INDEX uq_agent_replies_private ON agent_replies (tenant_id, comment_id)
    WHERE target_kind = 'private_comment';
CREATE INDEX ix_agent_replies_conversation ON agent_replies (tenant_id, conversation_id)
    WHERE conversation_id IS NOT NULL;

SELECT nexiom_secure_tables();
