-- Nexiom storage schema: WhatsApp preference webhooks are kept as events of
-- their own kind (issue 14), so routing can apply a contact's "stop" and
-- "resume" of marketing messages to its opt-in (`broadcast_contacts`).
ALTER TABLE webhook_events DROP CONSTRAINT ck_webhook_events_kind;
ALTER TABLE webhook_events ADD CONSTRAINT ck_webhook_events_kind
    CHECK (kind IN ('message', 'status', 'comment', 'comment_reply', 'preference', 'other'));
