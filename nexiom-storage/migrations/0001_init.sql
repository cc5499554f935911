-- Nexiom storage schema, version 1.
--
-- Conventions:
-- - Table names are never schema-qualified: the schema is chosen by the
--   connection's search_path (tests run one schema each).
-- - Enumerations are TEXT holding their lower-case string forms, with a CHECK
--   listing the allowed values. Platforms are TEXT checked against the custom
--   platform name rule.
-- - Every unique key of the domain is a constraint or a (partial) unique index,
--   so insert-if-absent is `INSERT ... ON CONFLICT ... DO NOTHING`.
-- - Tenant isolation: a child row refers to its parent through the composite
--   key (tenant_id, parent_id), so it can never point at another tenant's row.
--   Constraint names are `fk_<table>_<entity>`; the store maps a violation to
--   `UnknownReference(<entity>)`.
-- - Times are TIMESTAMPTZ and always given by the caller (no NOW() defaults).

-- ---------------------------------------------------------------- tenants

CREATE TABLE tenants (
    id          UUID        NOT NULL,
    name        TEXT        NOT NULL,
    time_zone   TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_tenants PRIMARY KEY (id)
);

CREATE TABLE channels (
    id                   UUID        NOT NULL,
    tenant_id            UUID        NOT NULL,
    platform             TEXT        NOT NULL,
    external_account_id  TEXT        NOT NULL,
    name                 TEXT        NOT NULL,
    access_token         TEXT,
    refresh_token        TEXT,
    expires_at           TIMESTAMPTZ,
    status               TEXT        NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_channels PRIMARY KEY (id),
    CONSTRAINT uq_channels_tenant_id UNIQUE (tenant_id, id),
    CONSTRAINT uq_channels_tenant_id_platform UNIQUE (tenant_id, id, platform),
    CONSTRAINT uq_channels_account UNIQUE (platform, external_account_id),
    CONSTRAINT fk_channels_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT ck_channels_platform CHECK (platform ~ '^[a-z][a-z0-9_-]{0,31}$'),
    CONSTRAINT ck_channels_status CHECK (status IN ('active', 'needs_reauth', 'disabled'))
);
CREATE INDEX ix_channels_tenant ON channels (tenant_id, created_at, id);

-- ---------------------------------------------------------------- contacts

CREATE TABLE contacts (
    id            UUID        NOT NULL,
    tenant_id     UUID        NOT NULL,
    display_name  TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_contacts PRIMARY KEY (id),
    CONSTRAINT uq_contacts_tenant_id UNIQUE (tenant_id, id),
    CONSTRAINT fk_contacts_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);

CREATE TABLE contact_channels (
    id               UUID        NOT NULL,
    tenant_id        UUID        NOT NULL,
    contact_id       UUID        NOT NULL,
    platform         TEXT        NOT NULL,
    external_handle  TEXT        NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_contact_channels PRIMARY KEY (id),
    CONSTRAINT uq_contact_channels_handle UNIQUE (tenant_id, platform, external_handle),
    CONSTRAINT fk_contact_channels_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    -- The contact is inserted by the same statement as its first handle.
    CONSTRAINT fk_contact_channels_contact FOREIGN KEY (tenant_id, contact_id)
        REFERENCES contacts (tenant_id, id) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT ck_contact_channels_platform CHECK (platform ~ '^[a-z][a-z0-9_-]{0,31}$')
);
CREATE INDEX ix_contact_channels_contact ON contact_channels (tenant_id, contact_id, created_at, id);

-- ---------------------------------------------------------------- conversations

CREATE TABLE conversations (
    id               UUID        NOT NULL,
    tenant_id        UUID        NOT NULL,
    contact_id       UUID        NOT NULL,
    channel_id       UUID        NOT NULL,
    status           TEXT        NOT NULL,
    last_message_at  TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_conversations PRIMARY KEY (id),
    CONSTRAINT uq_conversations_tenant_id UNIQUE (tenant_id, id),
    CONSTRAINT fk_conversations_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_conversations_contact FOREIGN KEY (tenant_id, contact_id)
        REFERENCES contacts (tenant_id, id),
    CONSTRAINT fk_conversations_channel FOREIGN KEY (tenant_id, channel_id)
        REFERENCES channels (tenant_id, id),
    CONSTRAINT ck_conversations_status CHECK (status IN ('open', 'closed'))
);
-- At most one open conversation per (contact, channel).
CREATE UNIQUE INDEX uq_conversations_open ON conversations (contact_id, channel_id)
    WHERE status = 'open';
CREATE INDEX ix_conversations_tenant_last ON conversations
    (tenant_id, last_message_at DESC NULLS LAST, id);

-- ---------------------------------------------------------------- webhook events

CREATE TABLE webhook_events (
    id               UUID        NOT NULL,
    tenant_id        UUID        NOT NULL,
    channel_id       UUID        NOT NULL,
    platform         TEXT        NOT NULL,
    event_id         TEXT        NOT NULL,
    kind             TEXT        NOT NULL,
    sender_id        TEXT,
    sender_name      TEXT,
    text             TEXT,
    has_media        BOOLEAN     NOT NULL,
    delivery_status  TEXT,
    target_id        TEXT,
    parent_id        TEXT,
    occurred_at      TIMESTAMPTZ NOT NULL,
    payload          JSONB       NOT NULL,
    received_at      TIMESTAMPTZ NOT NULL,
    routed_at        TIMESTAMPTZ,
    conversation_id  UUID,
    CONSTRAINT pk_webhook_events PRIMARY KEY (id),
    CONSTRAINT uq_webhook_events_key UNIQUE (platform, event_id),
    CONSTRAINT fk_webhook_events_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    -- The channel must be the tenant's and on the event's platform.
    CONSTRAINT fk_webhook_events_channel FOREIGN KEY (tenant_id, channel_id, platform)
        REFERENCES channels (tenant_id, id, platform),
    CONSTRAINT fk_webhook_events_conversation FOREIGN KEY (tenant_id, conversation_id)
        REFERENCES conversations (tenant_id, id),
    CONSTRAINT ck_webhook_events_kind
        CHECK (kind IN ('message', 'status', 'comment', 'comment_reply', 'other')),
    CONSTRAINT ck_webhook_events_delivery_status
        CHECK (delivery_status IN ('pending', 'sent', 'delivered', 'read', 'failed'))
);
CREATE INDEX ix_webhook_events_unrouted ON webhook_events (received_at, id)
    WHERE routed_at IS NULL;

-- ---------------------------------------------------------------- messages

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
    CONSTRAINT pk_messages PRIMARY KEY (id),
    CONSTRAINT uq_messages_tenant_id UNIQUE (tenant_id, id),
    -- NULL provider ids are distinct: messages without one are always stored.
    CONSTRAINT uq_messages_provider UNIQUE (channel_id, provider_message_id),
    CONSTRAINT fk_messages_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_messages_conversation FOREIGN KEY (tenant_id, conversation_id)
        REFERENCES conversations (tenant_id, id),
    CONSTRAINT fk_messages_channel FOREIGN KEY (tenant_id, channel_id)
        REFERENCES channels (tenant_id, id),
    CONSTRAINT fk_messages_in_reply_to FOREIGN KEY (tenant_id, in_reply_to)
        REFERENCES messages (tenant_id, id),
    CONSTRAINT ck_messages_direction CHECK (direction IN ('inbound', 'outbound')),
    CONSTRAINT ck_messages_triage CHECK (triage IN ('ignore', 'escalate', 'auto_reply')),
    CONSTRAINT ck_messages_confidence CHECK (confidence >= 0 AND confidence <= 1),
    CONSTRAINT ck_messages_delivery_status
        CHECK (delivery_status IN ('pending', 'sent', 'delivered', 'read', 'failed'))
);
-- One outbound reply per inbound message.
CREATE UNIQUE INDEX uq_messages_in_reply_to ON messages (in_reply_to)
    WHERE in_reply_to IS NOT NULL AND direction = 'outbound';
CREATE INDEX ix_messages_conversation ON messages (conversation_id, created_at, id);
CREATE INDEX ix_messages_direction ON messages (tenant_id, direction, created_at, id);

-- ---------------------------------------------------------------- missions

CREATE TABLE missions (
    id                  UUID        NOT NULL,
    tenant_id           UUID        NOT NULL,
    channel_id          UUID        NOT NULL,
    name                TEXT        NOT NULL,
    status              TEXT        NOT NULL,
    objective_priority  TEXT        NOT NULL,
    start_date          DATE        NOT NULL,
    end_date            DATE        NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_missions PRIMARY KEY (id),
    CONSTRAINT uq_missions_tenant_id UNIQUE (tenant_id, id),
    CONSTRAINT uq_missions_tenant_id_channel UNIQUE (tenant_id, id, channel_id),
    CONSTRAINT fk_missions_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_missions_channel FOREIGN KEY (tenant_id, channel_id)
        REFERENCES channels (tenant_id, id),
    CONSTRAINT ck_missions_status
        CHECK (status IN ('draft', 'active', 'paused', 'completed', 'cancelled')),
    CONSTRAINT ck_missions_objective_priority
        CHECK (objective_priority IN ('high', 'medium', 'low')),
    CONSTRAINT ck_missions_dates CHECK (start_date <= end_date)
);
CREATE INDEX ix_missions_orchestration ON missions
    (tenant_id, status, channel_id, start_date, end_date);
CREATE INDEX ix_missions_tenant_start ON missions (tenant_id, start_date, id);

CREATE TABLE content_jobs (
    id                 UUID        NOT NULL,
    tenant_id          UUID        NOT NULL,
    mission_id         UUID,
    channel_id         UUID        NOT NULL,
    phase              TEXT        NOT NULL,
    status             TEXT        NOT NULL,
    content            JSONB       NOT NULL,
    scheduled_post_id  UUID,
    source_ref         TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_content_jobs PRIMARY KEY (id),
    CONSTRAINT uq_content_jobs_tenant_id UNIQUE (tenant_id, id),
    CONSTRAINT fk_content_jobs_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_content_jobs_channel FOREIGN KEY (tenant_id, channel_id)
        REFERENCES channels (tenant_id, id),
    -- The mission must be the tenant's and on the job's channel.
    CONSTRAINT fk_content_jobs_mission FOREIGN KEY (tenant_id, mission_id, channel_id)
        REFERENCES missions (tenant_id, id, channel_id),
    CONSTRAINT ck_content_jobs_phase CHECK (phase IN ('intro', 'nurture', 'closing')),
    CONSTRAINT ck_content_jobs_status CHECK (
        status IN ('draft', 'ready', 'scheduled', 'published', 'failed', 'cancelled'))
);
CREATE INDEX ix_content_jobs_orchestration ON content_jobs
    (tenant_id, mission_id, phase, status);
CREATE INDEX ix_content_jobs_tenant_created ON content_jobs (tenant_id, created_at, id);

CREATE TABLE mission_reports (
    id          UUID        NOT NULL,
    tenant_id   UUID        NOT NULL,
    mission_id  UUID        NOT NULL,
    report      JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_mission_reports PRIMARY KEY (id),
    CONSTRAINT fk_mission_reports_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_mission_reports_mission FOREIGN KEY (tenant_id, mission_id)
        REFERENCES missions (tenant_id, id)
);
CREATE INDEX ix_mission_reports_latest ON mission_reports
    (tenant_id, mission_id, created_at DESC, id DESC);

-- ---------------------------------------------------------------- scheduled posts

CREATE TABLE scheduled_posts (
    id                UUID        NOT NULL,
    tenant_id         UUID        NOT NULL,
    channel_id        UUID        NOT NULL,
    content           JSONB       NOT NULL,
    publish_at        TIMESTAMPTZ NOT NULL,
    rrule             TEXT,
    dtstart           TIMESTAMP,
    time_zone         TEXT,
    series_id         UUID,
    occurrence_at     TIMESTAMPTZ,
    status            TEXT        NOT NULL,
    platform_post_id  TEXT,
    url               TEXT,
    error_message     TEXT,
    retry_count       BIGINT      NOT NULL,
    next_attempt_at   TIMESTAMPTZ,
    lease_owner       TEXT,
    lease_expires_at  TIMESTAMPTZ,
    published_at      TIMESTAMPTZ,
    last_check_at     TIMESTAMPTZ,
    next_check_at     TIMESTAMPTZ,
    stop_at           TIMESTAMPTZ,
    mission_id        UUID,
    content_job_id    UUID,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_scheduled_posts PRIMARY KEY (id),
    CONSTRAINT uq_scheduled_posts_tenant_id UNIQUE (tenant_id, id),
    -- Each occurrence of a series exists once (NULLs: not an occurrence).
    CONSTRAINT uq_scheduled_posts_occurrence UNIQUE (series_id, occurrence_at),
    CONSTRAINT fk_scheduled_posts_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_scheduled_posts_channel FOREIGN KEY (tenant_id, channel_id)
        REFERENCES channels (tenant_id, id),
    CONSTRAINT fk_scheduled_posts_series FOREIGN KEY (tenant_id, series_id)
        REFERENCES scheduled_posts (tenant_id, id),
    CONSTRAINT fk_scheduled_posts_mission FOREIGN KEY (tenant_id, mission_id)
        REFERENCES missions (tenant_id, id),
    CONSTRAINT fk_scheduled_posts_content_job FOREIGN KEY (tenant_id, content_job_id)
        REFERENCES content_jobs (tenant_id, id),
    CONSTRAINT ck_scheduled_posts_status
        CHECK (status IN ('queued', 'publishing', 'published', 'failed', 'cancelled')),
    CONSTRAINT ck_scheduled_posts_retry_count
        CHECK (retry_count >= 0 AND retry_count <= 4294967295),
    CONSTRAINT ck_scheduled_posts_recurrence CHECK (
        (rrule IS NULL AND dtstart IS NULL AND time_zone IS NULL)
        OR (rrule IS NOT NULL AND dtstart IS NOT NULL AND time_zone IS NOT NULL))
);
-- Due posts (claim_due_posts).
CREATE INDEX ix_scheduled_posts_due ON scheduled_posts (status, publish_at)
    WHERE status = 'queued';
-- Published posts to poll for comments.
CREATE INDEX ix_scheduled_posts_polling ON scheduled_posts (next_check_at)
    WHERE status = 'published';
-- Leases to release.
CREATE INDEX ix_scheduled_posts_leases ON scheduled_posts (lease_expires_at)
    WHERE status = 'publishing';
CREATE INDEX ix_scheduled_posts_tenant ON scheduled_posts (tenant_id, publish_at, id);
CREATE INDEX ix_scheduled_posts_channel ON scheduled_posts (tenant_id, channel_id, publish_at);

ALTER TABLE content_jobs
    ADD CONSTRAINT fk_content_jobs_post FOREIGN KEY (tenant_id, scheduled_post_id)
        REFERENCES scheduled_posts (tenant_id, id);

CREATE TABLE post_runs (
    id           UUID        NOT NULL,
    tenant_id    UUID        NOT NULL,
    post_id      UUID        NOT NULL,
    attempt      BIGINT      NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    status       TEXT        NOT NULL,
    error        TEXT,
    CONSTRAINT pk_post_runs PRIMARY KEY (id),
    CONSTRAINT uq_post_runs_attempt UNIQUE (post_id, attempt),
    CONSTRAINT fk_post_runs_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_post_runs_post FOREIGN KEY (tenant_id, post_id)
        REFERENCES scheduled_posts (tenant_id, id),
    CONSTRAINT ck_post_runs_attempt CHECK (attempt >= 1 AND attempt <= 4294967295),
    CONSTRAINT ck_post_runs_status CHECK (status IN ('running', 'success', 'failed'))
);

-- ---------------------------------------------------------------- comments

CREATE TABLE comments (
    id                          UUID             NOT NULL,
    tenant_id                   UUID             NOT NULL,
    post_id                     UUID             NOT NULL,
    channel_id                  UUID             NOT NULL,
    platform_comment_id         TEXT             NOT NULL,
    parent_platform_comment_id  TEXT,
    author_id                   TEXT,
    author_name                 TEXT,
    text                        TEXT             NOT NULL,
    created_at                  TIMESTAMPTZ      NOT NULL,
    stored_at                   TIMESTAMPTZ      NOT NULL,
    triage                      TEXT,
    confidence                  DOUBLE PRECISION,
    ai_decision_id              UUID,
    hidden                      BOOLEAN          NOT NULL,
    CONSTRAINT pk_comments PRIMARY KEY (id),
    CONSTRAINT uq_comments_tenant_id UNIQUE (tenant_id, id),
    CONSTRAINT uq_comments_key UNIQUE (post_id, platform_comment_id),
    CONSTRAINT fk_comments_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_comments_post FOREIGN KEY (tenant_id, post_id)
        REFERENCES scheduled_posts (tenant_id, id),
    CONSTRAINT fk_comments_channel FOREIGN KEY (tenant_id, channel_id)
        REFERENCES channels (tenant_id, id),
    CONSTRAINT ck_comments_triage CHECK (triage IN ('ignore', 'escalate', 'auto_reply')),
    CONSTRAINT ck_comments_confidence CHECK (confidence >= 0 AND confidence <= 1)
);
CREATE INDEX ix_comments_post ON comments (post_id, created_at, id);
CREATE INDEX ix_comments_tenant ON comments (tenant_id, created_at, id);

CREATE TABLE comment_checkpoints (
    post_id       UUID        NOT NULL,
    tenant_id     UUID        NOT NULL,
    last_cursor   TEXT,
    last_seen_at  TIMESTAMPTZ,
    updated_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_comment_checkpoints PRIMARY KEY (post_id),
    CONSTRAINT fk_comment_checkpoints_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_comment_checkpoints_post FOREIGN KEY (tenant_id, post_id)
        REFERENCES scheduled_posts (tenant_id, id)
);

-- ---------------------------------------------------------------- triage

CREATE TABLE ai_rules (
    id              UUID             NOT NULL,
    tenant_id       UUID             NOT NULL,
    rule_type       TEXT             NOT NULL,
    name            TEXT             NOT NULL,
    keywords        TEXT[]           NOT NULL,
    patterns        TEXT[]           NOT NULL,
    confidence_min  DOUBLE PRECISION,
    enabled         BOOLEAN          NOT NULL,
    priority        INTEGER          NOT NULL,
    created_at      TIMESTAMPTZ      NOT NULL,
    updated_at      TIMESTAMPTZ      NOT NULL,
    CONSTRAINT pk_ai_rules PRIMARY KEY (id),
    CONSTRAINT uq_ai_rules_name UNIQUE (tenant_id, name),
    CONSTRAINT fk_ai_rules_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT ck_ai_rules_type CHECK (rule_type IN ('deny', 'escalate', 'auto')),
    CONSTRAINT ck_ai_rules_confidence_min CHECK (confidence_min >= 0 AND confidence_min <= 1)
);

CREATE TABLE ignore_examples (
    id          UUID        NOT NULL,
    tenant_id   UUID        NOT NULL,
    text        TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_ignore_examples PRIMARY KEY (id),
    CONSTRAINT fk_ignore_examples_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);
CREATE INDEX ix_ignore_examples_tenant ON ignore_examples (tenant_id, created_at, id);

CREATE TABLE ai_decisions (
    id            UUID             NOT NULL,
    tenant_id     UUID             NOT NULL,
    subject_kind  TEXT             NOT NULL,
    subject_id    UUID             NOT NULL,
    -- The subject as a reference of the right kind, so the schema checks it.
    message_id    UUID GENERATED ALWAYS AS
        (CASE WHEN subject_kind = 'message' THEN subject_id END) STORED,
    comment_id    UUID GENERATED ALWAYS AS
        (CASE WHEN subject_kind = 'comment' THEN subject_id END) STORED,
    triage        TEXT             NOT NULL,
    confidence    DOUBLE PRECISION NOT NULL,
    rule_id       UUID,
    reason        TEXT             NOT NULL,
    snapshot      JSONB            NOT NULL,
    created_at    TIMESTAMPTZ      NOT NULL,
    CONSTRAINT pk_ai_decisions PRIMARY KEY (id),
    -- One decision per message or comment.
    CONSTRAINT uq_ai_decisions_subject UNIQUE (subject_kind, subject_id),
    CONSTRAINT fk_ai_decisions_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_ai_decisions_message FOREIGN KEY (tenant_id, message_id)
        REFERENCES messages (tenant_id, id),
    CONSTRAINT fk_ai_decisions_comment FOREIGN KEY (tenant_id, comment_id)
        REFERENCES comments (tenant_id, id),
    CONSTRAINT ck_ai_decisions_subject_kind CHECK (subject_kind IN ('message', 'comment')),
    CONSTRAINT ck_ai_decisions_triage CHECK (triage IN ('ignore', 'escalate', 'auto_reply')),
    CONSTRAINT ck_ai_decisions_confidence CHECK (confidence >= 0 AND confidence <= 1)
);
CREATE INDEX ix_ai_decisions_triage ON ai_decisions (tenant_id, triage, created_at DESC);
CREATE INDEX ix_ai_decisions_tenant ON ai_decisions (tenant_id, created_at DESC, id DESC);

CREATE TABLE ai_controls (
    tenant_id   UUID        NOT NULL,
    enabled     BOOLEAN     NOT NULL,
    updated_by  TEXT,
    updated_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_ai_controls PRIMARY KEY (tenant_id),
    CONSTRAINT fk_ai_controls_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);

-- ---------------------------------------------------------------- KPIs

CREATE TABLE kpi_2h (
    tenant_id        UUID             NOT NULL,
    window_start     TIMESTAMPTZ      NOT NULL,
    window_end       TIMESTAMPTZ      NOT NULL,
    messages_count   BIGINT           NOT NULL,
    comments_count   BIGINT           NOT NULL,
    frt_p50_seconds  BIGINT,
    auto_reply_rate  DOUBLE PRECISION,
    escalate_count   BIGINT           NOT NULL,
    ignored_count    BIGINT           NOT NULL,
    posts_active     BIGINT           NOT NULL,
    computed_at      TIMESTAMPTZ      NOT NULL,
    CONSTRAINT pk_kpi_2h PRIMARY KEY (tenant_id, window_start),
    CONSTRAINT fk_kpi_2h_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT ck_kpi_2h_auto_reply_rate CHECK (auto_reply_rate >= 0 AND auto_reply_rate <= 1)
);
CREATE INDEX ix_kpi_2h_recent ON kpi_2h (tenant_id, window_start DESC);

-- ---------------------------------------------------------------- settings and workers

CREATE TABLE app_settings (
    key         TEXT        NOT NULL,
    value       TEXT        NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_app_settings PRIMARY KEY (key)
);

CREATE TABLE worker_flags (
    worker_name  TEXT        NOT NULL,
    enabled      BOOLEAN     NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_worker_flags PRIMARY KEY (worker_name)
);

CREATE TABLE task_executions (
    id               UUID        NOT NULL,
    worker_name      TEXT        NOT NULL,
    status           TEXT        NOT NULL,
    started_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    duration_ms      BIGINT,
    items_processed  BIGINT      NOT NULL,
    items_failed     BIGINT      NOT NULL,
    results          JSONB       NOT NULL,
    error            TEXT,
    CONSTRAINT pk_task_executions PRIMARY KEY (id),
    CONSTRAINT ck_task_executions_status CHECK (status IN ('running', 'completed', 'failed'))
);
CREATE INDEX ix_task_executions_worker ON task_executions (worker_name, started_at DESC);
CREATE INDEX ix_task_executions_started ON task_executions (started_at DESC, id DESC);
