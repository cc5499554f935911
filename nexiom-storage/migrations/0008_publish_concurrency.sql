-- Publishing at platform speed: per-channel holds fed by a platform's
-- Retry-After, and the index that lets a claim skip channels another worker is
-- publishing on.

CREATE TABLE channel_throttles (
    channel_id  UUID        NOT NULL,
    tenant_id   UUID        NOT NULL,
    -- Claims skip the channel's posts until then.
    until       TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_channel_throttles PRIMARY KEY (channel_id),
    CONSTRAINT fk_channel_throttles_channel FOREIGN KEY (tenant_id, channel_id)
        REFERENCES channels (tenant_id, id) ON DELETE CASCADE
);

-- "Is another worker publishing on this channel?" during a claim.
CREATE INDEX ix_scheduled_posts_publishing_channel ON scheduled_posts (channel_id, lease_owner)
    WHERE status = 'publishing';
