-- Token lifecycle: why and since when a channel is not active (a refused
-- refresh records the platform's answer), and the reads the refresh worker and
-- the queues' claims make.

ALTER TABLE channels
    ADD COLUMN status_reason TEXT,
    ADD COLUMN status_changed_at TIMESTAMPTZ;

-- The refresh worker: active channels with a refresh token, by expiry.
CREATE INDEX ix_channels_expiring ON channels (expires_at)
    WHERE status = 'active' AND expires_at IS NOT NULL;

-- The claims of posts, polls and replies skip the channels that are not
-- active (a handful): read through this partial index.
CREATE INDEX ix_channels_paused ON channels (id) WHERE status <> 'active';
