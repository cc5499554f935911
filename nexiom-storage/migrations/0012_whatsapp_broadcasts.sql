-- Nexiom storage schema: WhatsApp broadcasts (issue 14).
--
-- A post on a WhatsApp channel names its audience (explicit recipients or a
-- stored audience of opted-in contacts) and, for recipients outside their
-- 24-hour window, an approved template. Publishing fans out to one delivery
-- per (post, recipient), unique, so a retry or a second worker never sends
-- twice to the same person.

-- A WhatsApp channel's contacts and their marketing opt-in (the latest change
-- wins; an opt-out stays until the contact opts in again).
CREATE TABLE broadcast_contacts (
    id              UUID        NOT NULL,
    tenant_id       UUID        NOT NULL,
    channel_id      UUID        NOT NULL,
    recipient       TEXT        NOT NULL,
    opted_in_at     TIMESTAMPTZ,
    opt_in_source   TEXT,
    opted_out_at    TIMESTAMPTZ,
    opt_out_reason  TEXT,
    updated_at      TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_broadcast_contacts PRIMARY KEY (id),
    CONSTRAINT uq_broadcast_contacts_tenant_id UNIQUE (tenant_id, id),
    CONSTRAINT uq_broadcast_contacts_recipient UNIQUE (channel_id, recipient),
    CONSTRAINT fk_broadcast_contacts_channel FOREIGN KEY (tenant_id, channel_id)
        REFERENCES channels (tenant_id, id)
);

-- Named lists of a channel's contacts.
CREATE TABLE audiences (
    id          UUID        NOT NULL,
    tenant_id   UUID        NOT NULL,
    channel_id  UUID        NOT NULL,
    name        TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_audiences PRIMARY KEY (id),
    CONSTRAINT uq_audiences_tenant_id UNIQUE (tenant_id, id),
    CONSTRAINT uq_audiences_name UNIQUE (channel_id, name),
    CONSTRAINT fk_audiences_channel FOREIGN KEY (tenant_id, channel_id)
        REFERENCES channels (tenant_id, id)
);

CREATE TABLE audience_members (
    tenant_id    UUID        NOT NULL,
    audience_id  UUID        NOT NULL,
    contact_id   UUID        NOT NULL,
    added_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_audience_members PRIMARY KEY (audience_id, contact_id),
    CONSTRAINT fk_audience_members_audience FOREIGN KEY (tenant_id, audience_id)
        REFERENCES audiences (tenant_id, id),
    CONSTRAINT fk_audience_members_contact FOREIGN KEY (tenant_id, contact_id)
        REFERENCES broadcast_contacts (tenant_id, id)
);

-- A post's audience (exactly one of audience_id, recipients) and template.
CREATE TABLE post_broadcasts (
    post_id      UUID  NOT NULL,
    tenant_id    UUID  NOT NULL,
    audience_id  UUID,
    recipients   TEXT[],
    template     JSONB,
    CONSTRAINT pk_post_broadcasts PRIMARY KEY (post_id),
    CONSTRAINT fk_post_broadcasts_post FOREIGN KEY (tenant_id, post_id)
        REFERENCES scheduled_posts (tenant_id, id),
    CONSTRAINT fk_post_broadcasts_audience FOREIGN KEY (tenant_id, audience_id)
        REFERENCES audiences (tenant_id, id),
    CONSTRAINT ck_post_broadcasts_audience CHECK ((audience_id IS NULL) <> (recipients IS NULL))
);

-- One delivery per (post, recipient).
CREATE TABLE broadcast_deliveries (
    id                   UUID        NOT NULL,
    tenant_id            UUID        NOT NULL,
    post_id              UUID        NOT NULL,
    recipient            TEXT        NOT NULL,
    state                TEXT        NOT NULL,
    attempts             BIGINT      NOT NULL,
    next_attempt_at      TIMESTAMPTZ,
    error                TEXT,
    provider_message_id  TEXT,
    delivery_status      TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_broadcast_deliveries PRIMARY KEY (id),
    CONSTRAINT uq_broadcast_deliveries_recipient UNIQUE (post_id, recipient),
    CONSTRAINT fk_broadcast_deliveries_post FOREIGN KEY (tenant_id, post_id)
        REFERENCES scheduled_posts (tenant_id, id),
    CONSTRAINT ck_broadcast_deliveries_state CHECK (
        state IN ('pending', 'sending', 'sent', 'failed'))
);
-- Status webhooks find a delivery by the platform's message id.
CREATE INDEX ix_broadcast_deliveries_provider ON broadcast_deliveries
    (tenant_id, provider_message_id) WHERE provider_message_id IS NOT NULL;

-- A delivery's 24-hour window is counted from the recipient's last inbound
-- message on the channel: contact → its conversations on the channel (this
-- index; closed ones included) → their messages (ix_messages_conversation).
CREATE INDEX ix_conversations_contact_channel ON conversations (tenant_id, contact_id, channel_id);

-- Row-level security and grants for the new tables (migration 0009).
SELECT nexiom_secure_tables();
