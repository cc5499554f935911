-- Routing's hot tables carry only what a query or a tenant needs.
--
-- Routing inserts a message for every inbound event, moves its
-- conversation's last_message_at and marks the event routed. Every index on
-- these tables is paid on each of those writes, so each one left is named
-- below with the query that reads through it; the others are gone or partial.
--
-- messages, maintained by an inbound insert after this migration:
--   pk_messages (id)                       lookups by id alone: the reply claims
--                                          (id = ANY), KPI decisions, topics
--   uq_messages_tenant_id (tenant_id, id)  target of the tenant-safe foreign keys
--                                          (ai_decisions, agent_replies,
--                                          in_reply_to); get/set by (tenant, id)
--   uq_messages_provider                   the message key: routing's lookup,
--     (channel_id, provider_message_id)    statuses, find_message_by_provider_id
--   ix_messages_conversation               list_messages, the inbox refresh, the
--     (conversation_id, created_at, id)    KPI's per-conversation steps
--   ix_messages_untriaged                  the triage queue
--     (tenant_id, created_at, id) WHERE triage IS NULL AND direction = 'inbound'
--   ix_messages_tenant_created             the KPI scans, topics' inbound range,
--     (tenant_id, created_at) INCLUDE (…)  list_messages_since for inbound
-- and not by an inbound insert (partial): uq_messages_in_reply_to and
-- ix_messages_outbound (outbound only), ix_messages_reply_queue (replies
-- waiting), ix_messages_triage (triaged only).

-- list_messages_by_triage always names a triage: untriaged rows (every
-- message as it arrives) need no entry; the triage queue has its own index.
DROP INDEX ix_messages_triage;
CREATE INDEX ix_messages_triage ON messages (tenant_id, triage, created_at, id)
    WHERE direction = 'inbound' AND triage IS NOT NULL;

-- list_messages_since: outbound through this partial index; inbound (most
-- messages) through ix_messages_tenant_created, which the KPI needs anyway.
-- The index on (tenant_id, direction, created_at, id) served only that read.
DROP INDEX ix_messages_direction;
CREATE INDEX ix_messages_outbound ON messages (tenant_id, created_at, id)
    WHERE direction = 'outbound';

-- One foreign key where there were three. The message's conversation is the
-- tenant's, and the message is on that conversation's channel (every writer
-- takes the channel from the conversation): one composite key says both, and
-- through the conversation's own keys, that the channel and the tenant are
-- the tenant's. fk_messages_tenant and fk_messages_channel checked again what
-- this key implies, for every message.
ALTER TABLE conversations
    ADD CONSTRAINT uq_conversations_tenant_id_channel UNIQUE (tenant_id, id, channel_id);
ALTER TABLE messages
    DROP CONSTRAINT fk_messages_tenant,
    DROP CONSTRAINT fk_messages_channel,
    DROP CONSTRAINT fk_messages_conversation,
    ADD CONSTRAINT fk_messages_conversation FOREIGN KEY (tenant_id, conversation_id, channel_id)
        REFERENCES conversations (tenant_id, id, channel_id);

-- conversations: every new message moves last_message_at. Indexed, each move
-- was a new row version entered in all five indexes; unindexed, with room
-- left on the page, it is a HOT update that touches none. The only reader of
-- the index was list_conversations (a tenant's conversations, latest first),
-- which is not on any hot path (the inbox lists have their own indexes): it
-- now reads the tenant's conversations through uq_conversations_tenant_id
-- and sorts them. Left, each with its reader:
--   pk_conversations (id)                  the inbox refresh, the move itself
--   uq_conversations_tenant_id (tenant_id, id)   agent replies' foreign key;
--                                          get_conversation
--   uq_conversations_tenant_id_channel     the messages' foreign key
--   uq_conversations_open (contact_id, channel_id) WHERE open   routing's lookup,
--                                          one open conversation per pair
--   ix_conversations_contact_channel       broadcasts' reply-window check
--     (tenant_id, contact_id, channel_id)  (closed conversations too)
-- A batch moves most of the conversations on a page at once; 30% left free
-- holds their new versions (the page is pruned of the previous batch's when
-- it fills up), so the moves stay HOT.
DROP INDEX ix_conversations_tenant_last;
ALTER TABLE conversations SET (fillfactor = 70);

-- webhook_events: routing marks each event with the conversation its message
-- went to, which the same statement just found or created in the event's
-- tenant (and which the message's key above checks): the foreign key checked
-- it a second time for every event. The other writer, mark_event_routed,
-- checks the conversation is the tenant's in its statement. Conversations are
-- never deleted.
ALTER TABLE webhook_events DROP CONSTRAINT fk_webhook_events_conversation;

-- contacts (pk, uq_contacts_tenant_id for the foreign keys), contact_channels
-- (pk, the handle key routing looks up, ix_contact_channels_contact for
-- list_contact_channels) and webhook_events (pk, the deduplication key,
-- the partial queue index routing claims through) keep every index: each has
-- its reader, and routing writes contacts and handles only for new senders.

-- Routing's statement inserts conversations for every batch, most of the time
-- none: an insert of no row refreshes no inbox item (and plans nothing).
CREATE OR REPLACE FUNCTION nexiom_inbox_conversations_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows) THEN
        PERFORM nexiom_inbox_refresh_conversations(ARRAY(SELECT id FROM new_rows));
    END IF;
    RETURN NULL;
END $$;
