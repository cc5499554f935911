-- Webhook events: the channel is checked by the inserting statement, not by
-- per-row foreign-key triggers.
--
-- Every event is written by one of two statements (`insert_event`, and the
-- receiver's group-committed `insert_events`), and both insert only rows
-- whose `(tenant_id, channel_id, platform)` names a stored channel: the
-- single insert in its `WHERE EXISTS`, the batch insert by a semi-join to
-- the batch's channels. A row that fails the check is not inserted and is
-- answered `UnknownReference`, as the foreign key answered before. Channels
-- are never deleted (they are paused or reconnected), so the check cannot be
-- invalidated after the insert.
--
-- The foreign keys did the same check again for each row, through a trigger
-- that also takes a share lock on the channel row: at 2,700 events in one
-- statement, the two triggers took about half of the insert's time. The
-- tenant's key was implied anyway (a channel belongs to a stored tenant).
ALTER TABLE webhook_events DROP CONSTRAINT fk_webhook_events_tenant;
ALTER TABLE webhook_events DROP CONSTRAINT fk_webhook_events_channel;
