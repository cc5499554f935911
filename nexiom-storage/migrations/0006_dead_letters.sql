-- Nexiom storage schema: dead letters.
--
-- An event of a verified webhook (or a whole verified body) that could not be
-- normalized or stored is kept here raw, so that nothing acknowledged to the
-- platform is lost and a person can see it. Unique by (platform, key): the key
-- is stable across redeliveries (a hash of the event's raw bytes), so a
-- redelivered body adds no second row. Tenant and channel are known only when
-- the event's account is connected.
CREATE TABLE dead_letters (
    id           UUID        NOT NULL,
    platform     TEXT        NOT NULL,
    tenant_id    UUID,
    channel_id   UUID,
    key          TEXT        NOT NULL,
    excerpt      TEXT        NOT NULL,
    reason       TEXT        NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_dead_letters PRIMARY KEY (id),
    CONSTRAINT uq_dead_letters_key UNIQUE (platform, key),
    CONSTRAINT fk_dead_letters_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_dead_letters_channel FOREIGN KEY (tenant_id, channel_id)
        REFERENCES channels (tenant_id, id),
    CONSTRAINT ck_dead_letters_channel_tenant
        CHECK (channel_id IS NULL OR tenant_id IS NOT NULL)
);
-- The listing: newest first, optionally for one tenant.
CREATE INDEX ix_dead_letters_received ON dead_letters (received_at DESC, id DESC);
CREATE INDEX ix_dead_letters_tenant ON dead_letters (tenant_id, received_at DESC, id DESC)
    WHERE tenant_id IS NOT NULL;
