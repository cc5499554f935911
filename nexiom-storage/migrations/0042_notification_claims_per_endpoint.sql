-- A notification claim takes at most a few deliveries of each endpoint
-- (MAX_CLAIM_PER_ENDPOINT), the oldest of each: an endpoint with a backlog
-- (an escalation storm) or one that hangs until its timeout filled whole
-- batches, since the claim took the oldest pending deliveries of all
-- tenants, and every other tenant's notifications waited behind it. The
-- claim reads each enabled endpoint's pending deliveries in id order
-- through this index.

CREATE INDEX ix_notification_deliveries_endpoint_pending
    ON notification_deliveries (endpoint_id, id) WHERE state = 'pending';
