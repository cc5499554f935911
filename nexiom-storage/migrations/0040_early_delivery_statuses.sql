-- Delivery statuses that arrive before their message's provider id is
-- recorded.
--
-- A reply is sent, the platform answers with the message's id (WhatsApp's
-- wamid), and the sender records it (`record_message_sent`, the reply
-- batch's settlement, an agent reply). The platform's first statuses
-- (`sent`, and a quick `failed`, such as a message outside the 24-hour
-- window) can reach the webhook receiver, and be routed, before that
-- record commits. Routing found no message for them and marked them routed:
-- the status was lost, and the message stayed `sent` when it had failed.
--
-- Such a status (no outbound message holds its key, and no broadcast
-- delivery matches it) is now kept here, the highest one per message key,
-- and applied, forward only, when an outbound message of the tenant gets
-- that key: a row trigger on `messages`, so every writer of a provider id
-- applies it. A writer and a router running at the same moment may each
-- miss the other's uncommitted row; routing closes that gap: every routing
-- call also applies the early statuses first kept in the last 10 minutes
-- whose message is stored by then, and removes those first kept more than a
-- day ago (statuses of messages sent by another tool on the same number,
-- which no message of this library will ever claim).

CREATE TABLE early_statuses (
    tenant_id           UUID        NOT NULL,
    channel_id          UUID        NOT NULL,
    provider_message_id TEXT        NOT NULL,
    delivery_status     TEXT        NOT NULL,
    kept_at             TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_early_statuses PRIMARY KEY (channel_id, provider_message_id),
    CONSTRAINT fk_early_statuses_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT ck_early_statuses_delivery_status
        CHECK (delivery_status IN ('pending', 'sent', 'delivered', 'read', 'failed'))
);
CREATE INDEX ix_early_statuses_kept ON early_statuses (kept_at);

-- The rank of a delivery status (NULL counts as `pending`), the order of
-- `DeliveryStatus::rank`.
CREATE FUNCTION nexiom_delivery_rank(status TEXT) RETURNS INT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE COALESCE(status, 'pending') WHEN 'pending' THEN 0 WHEN 'sent' THEN 1
        WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 ELSE 4 END
$$;

-- Before an outbound message is stored with a provider id, or given one:
-- its early status, if any, is taken and applied to the row (forward only).
CREATE FUNCTION nexiom_apply_early_status() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    early TEXT;
BEGIN
    DELETE FROM early_statuses
    WHERE channel_id = NEW.channel_id AND provider_message_id = NEW.provider_message_id
        AND tenant_id = NEW.tenant_id
    RETURNING delivery_status INTO early;
    IF early IS NOT NULL
        AND nexiom_delivery_rank(early) > nexiom_delivery_rank(NEW.delivery_status) THEN
        NEW.delivery_status := early;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER tr_early_status_ins BEFORE INSERT ON messages
    FOR EACH ROW
    WHEN (NEW.direction = 'outbound' AND NEW.provider_message_id IS NOT NULL)
    EXECUTE FUNCTION nexiom_apply_early_status();
CREATE TRIGGER tr_early_status_upd BEFORE UPDATE OF provider_message_id ON messages
    FOR EACH ROW
    WHEN (NEW.direction = 'outbound' AND NEW.provider_message_id IS NOT NULL
        AND OLD.provider_message_id IS NULL)
    EXECUTE FUNCTION nexiom_apply_early_status();

-- As `nexiom_current_tenant`: callable by the application roles even where
-- EXECUTE was revoked from PUBLIC (routing and every outbound write run
-- them).
GRANT EXECUTE ON FUNCTION nexiom_delivery_rank(TEXT) TO nexiom_app, nexiom_worker;
GRANT EXECUTE ON FUNCTION nexiom_apply_early_status() TO nexiom_app, nexiom_worker;

SELECT nexiom_secure_tables();
