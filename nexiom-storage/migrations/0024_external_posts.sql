-- External posts: posts of a connected channel made elsewhere (in the
-- platform's app, ads, posts from before the channel was connected). A comment
-- on one, by webhook or polling, records it once per (channel, platform post
-- id) as a published post of origin 'external', so the comment is stored,
-- triaged and answered like any other. Post discovery lists a channel's
-- recent posts (when switched on for the channel) so their comments are
-- polled too.

ALTER TABLE scheduled_posts
    ADD COLUMN origin TEXT NOT NULL DEFAULT 'scheduled',
    ADD CONSTRAINT ck_scheduled_posts_origin CHECK (origin IN ('scheduled', 'external')),
    -- An external post is live, with its platform id, and never queued.
    ADD CONSTRAINT ck_scheduled_posts_external CHECK (
        origin = 'scheduled' OR (status = 'published' AND platform_post_id IS NOT NULL));

-- One external post per (tenant, channel, platform post id), whichever
-- router, poller or discovery run creates it first.
CREATE UNIQUE INDEX uq_scheduled_posts_external ON scheduled_posts
    (tenant_id, channel_id, platform_post_id)
    WHERE origin = 'external';

CREATE TABLE post_discovery (
    channel_id    UUID        NOT NULL,
    tenant_id     UUID        NOT NULL,
    recent_posts  BIGINT      NOT NULL,
    next_run_at   TIMESTAMPTZ NOT NULL,
    last_run_at   TIMESTAMPTZ,
    last_error    TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_post_discovery PRIMARY KEY (channel_id),
    CONSTRAINT fk_post_discovery_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_post_discovery_channel FOREIGN KEY (tenant_id, channel_id)
        REFERENCES channels (tenant_id, id),
    CONSTRAINT ck_post_discovery_recent_posts CHECK (recent_posts BETWEEN 1 AND 100)
);
-- Due runs (claim_post_discoveries).
CREATE INDEX ix_post_discovery_due ON post_discovery (next_run_at);

SELECT nexiom_secure_tables();
