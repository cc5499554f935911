-- Nexiom storage schema, version 2: the inbound pipeline.

-- Routing finds the post a comment event names by its platform id on the
-- event's channel.
CREATE INDEX ix_scheduled_posts_platform_post ON scheduled_posts
    (tenant_id, channel_id, platform_post_id)
    WHERE platform_post_id IS NOT NULL;

-- The triage queues: inbound messages and comments not triaged yet.
CREATE INDEX ix_messages_untriaged ON messages (tenant_id, created_at, id)
    WHERE triage IS NULL AND direction = 'inbound';
CREATE INDEX ix_comments_untriaged ON comments (tenant_id, created_at, id)
    WHERE triage IS NULL;

-- Items of one triage since a time (auto-replies read the AUTO_REPLY ones).
CREATE INDEX ix_messages_triage ON messages (tenant_id, triage, created_at, id)
    WHERE direction = 'inbound';
CREATE INDEX ix_comments_triage ON comments (tenant_id, triage, created_at, id);

-- The automatic public reply to a comment. The primary key is the comment:
-- the row is written (pending) BEFORE the platform is called, so a comment is
-- never answered twice, whatever runs concurrently or crashes in between.
CREATE TABLE comment_replies (
    comment_id           UUID        NOT NULL,
    tenant_id            UUID        NOT NULL,
    text                 TEXT        NOT NULL,
    status               TEXT        NOT NULL,
    platform_comment_id  TEXT,
    error                TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_comment_replies PRIMARY KEY (comment_id),
    CONSTRAINT fk_comment_replies_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_comment_replies_comment FOREIGN KEY (tenant_id, comment_id)
        REFERENCES comments (tenant_id, id),
    CONSTRAINT ck_comment_replies_status
        CHECK (status IN ('pending', 'sent', 'delivered', 'read', 'failed'))
);
