-- Agent replies left `sending` (their sender stopped before recording the
-- platform's answer) are settled by a cross-tenant scan, oldest first
-- (`settle_abandoned_agent_replies`): a partial index keeps that scan to the
-- few replies in flight.
CREATE INDEX ix_agent_replies_sending ON agent_replies (created_at, id)
    WHERE state = 'sending';
