-- A notification claim takes at most a few deliveries of each endpoint
-- (MAX_CLAIM_PER_ENDPOINT), the oldest of each: an endpoint with a backlog
-- (an escalation storm) or one that hangs until its timeout filled whole
-- batches, since the claim took the oldest pending deliveries of all
-- tenants, and every other tenant's notifications waited behind it. The
-- claim reads each enabled endpoint's pending deliveries in id order
-- through this index.

CREATE INDEX ix_notification_deliveries_endpoint_pending
    ON notification_deliveries (endpoint_id, id) WHERE state = 'pending';

-- A delivery whose endpoint's secret a claiming process cannot open (a key
-- rotated away, a process started without the older key) is handed back
-- for a process that has the key; this is when that first happened, so it
-- is dead only after a day of such hand-backs (cleared by any recorded
-- attempt).
ALTER TABLE notification_deliveries ADD COLUMN unreadable_since TIMESTAMPTZ;
