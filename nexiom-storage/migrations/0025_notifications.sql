-- Notifications through a durable outbox: endpoints (subscriptions of a
-- tenant's event kinds), notifications (unique by their cause's key) and one
-- delivery per (notification, endpoint). The causes stored by the library
-- (an escalated message or comment, a post settled failed) write their
-- notification from triggers, so it commits in the same transaction as the
-- change, whichever statement makes it.

CREATE TABLE notification_endpoints (
    id          UUID        NOT NULL,
    tenant_id   UUID        NOT NULL,
    name        TEXT        NOT NULL COLLATE "C",
    kind        TEXT        NOT NULL,
    url         TEXT        NOT NULL,
    -- Sealed like channel tokens ("nxenc:v1:…").
    secret      TEXT,
    kinds       TEXT[]      NOT NULL,
    enabled     BOOLEAN     NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_notification_endpoints PRIMARY KEY (id),
    CONSTRAINT uq_notification_endpoints_tenant_id UNIQUE (tenant_id, id),
    CONSTRAINT uq_notification_endpoints_name UNIQUE (tenant_id, name),
    CONSTRAINT fk_notification_endpoints_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT ck_notification_endpoints_kind CHECK (kind IN ('webhook', 'slack'))
);

CREATE TABLE notifications (
    id           UUID        NOT NULL,
    tenant_id    UUID        NOT NULL,
    kind         TEXT        NOT NULL,
    key          TEXT        NOT NULL,
    payload      JSONB       NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_notifications PRIMARY KEY (id),
    CONSTRAINT uq_notifications_tenant_id UNIQUE (tenant_id, id),
    CONSTRAINT uq_notifications_key UNIQUE (tenant_id, key),
    CONSTRAINT fk_notifications_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);
CREATE INDEX ix_notifications_tenant ON notifications (tenant_id, occurred_at, id);

CREATE TABLE notification_deliveries (
    id               UUID        NOT NULL,
    tenant_id        UUID        NOT NULL,
    notification_id  UUID        NOT NULL,
    endpoint_id      UUID        NOT NULL,
    state            TEXT        NOT NULL,
    attempts         INT4        NOT NULL,
    next_attempt_at  TIMESTAMPTZ,
    lease_until      TIMESTAMPTZ,
    last_error       TEXT,
    delivered_at     TIMESTAMPTZ,
    CONSTRAINT pk_notification_deliveries PRIMARY KEY (id),
    CONSTRAINT uq_notification_deliveries_key UNIQUE (notification_id, endpoint_id),
    CONSTRAINT fk_notification_deliveries_notification FOREIGN KEY (tenant_id, notification_id)
        REFERENCES notifications (tenant_id, id),
    CONSTRAINT fk_notification_deliveries_endpoint FOREIGN KEY (tenant_id, endpoint_id)
        REFERENCES notification_endpoints (tenant_id, id),
    CONSTRAINT ck_notification_deliveries_state CHECK (state IN ('pending', 'delivered', 'dead'))
);
-- The delivery worker's queue: pending deliveries only.
CREATE INDEX ix_notification_deliveries_pending ON notification_deliveries (id)
    WHERE state = 'pending';

-- A time-ordered UUID (version 7), as the library generates, for rows
-- written by the triggers below.
CREATE FUNCTION nexiom_uuid_v7() RETURNS UUID
    LANGUAGE sql VOLATILE
    AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                placing substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
    $$;

-- Enqueues a notification unless the tenant has one with that key, and a
-- pending delivery to each enabled endpoint subscribed to its kind. Returns
-- the new notification's id, or NULL when the key was taken.
CREATE FUNCTION nexiom_enqueue_notification(
    p_tenant UUID, p_kind TEXT, p_key TEXT, p_payload JSONB, p_at TIMESTAMPTZ
) RETURNS UUID
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_id UUID;
BEGIN
    INSERT INTO notifications (id, tenant_id, kind, key, payload, occurred_at)
    VALUES (nexiom_uuid_v7(), p_tenant, p_kind, p_key, p_payload, p_at)
    ON CONFLICT (tenant_id, key) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NOT NULL THEN
        INSERT INTO notification_deliveries
            (id, tenant_id, notification_id, endpoint_id, state, attempts)
        SELECT nexiom_uuid_v7(), p_tenant, v_id, e.id, 'pending', 0
        FROM notification_endpoints e
        WHERE e.tenant_id = p_tenant AND e.enabled AND p_kind = ANY (e.kinds)
        ORDER BY e.id;
    END IF;
    RETURN v_id;
END
$$;

-- A message or comment newly escalated notifies `item_escalated`, dated by
-- its decision (the item's own time when it has none).
CREATE FUNCTION nexiom_notify_escalated() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_subject TEXT := CASE TG_TABLE_NAME WHEN 'messages' THEN 'message' ELSE 'comment' END;
    v_at TIMESTAMPTZ;
    v_payload JSONB;
BEGIN
    SELECT d.created_at INTO v_at FROM ai_decisions d
    WHERE d.tenant_id = NEW.tenant_id AND d.id = NEW.ai_decision_id;
    IF TG_TABLE_NAME = 'messages' THEN
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

CREATE TRIGGER tr_messages_escalated AFTER UPDATE OF triage ON messages
    FOR EACH ROW WHEN (NEW.triage = 'escalate' AND OLD.triage IS DISTINCT FROM 'escalate')
    EXECUTE FUNCTION nexiom_notify_escalated();
CREATE TRIGGER tr_comments_escalated AFTER UPDATE OF triage ON comments
    FOR EACH ROW WHEN (NEW.triage = 'escalate' AND OLD.triage IS DISTINCT FROM 'escalate')
    EXECUTE FUNCTION nexiom_notify_escalated();

-- A claimed post settled `failed` notifies `post_failed`, or
-- `publish_outcome_unknown` when nobody can tell whether it was published.
CREATE FUNCTION nexiom_notify_post_failed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_kind TEXT := CASE WHEN NEW.error_message LIKE 'outcome\_unknown%'
        THEN 'publish_outcome_unknown' ELSE 'post_failed' END;
BEGIN
    PERFORM nexiom_enqueue_notification(NEW.tenant_id, v_kind,
        v_kind || ':' || NEW.id || ':' || NEW.retry_count,
        jsonb_build_object('post_id', NEW.id, 'channel_id', NEW.channel_id,
            'error', NEW.error_message, 'retry_count', NEW.retry_count),
        NEW.updated_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER tr_posts_failed AFTER UPDATE OF status ON scheduled_posts
    FOR EACH ROW WHEN (OLD.status = 'publishing' AND NEW.status = 'failed')
    EXECUTE FUNCTION nexiom_notify_post_failed();

SELECT nexiom_secure_tables();
