-- The reply queue's claim asks, for each comment it is about to answer,
-- whether a person answered it first (a sent agent reply to the comment):
-- agent replies found by their comment, public replies included (the
-- unique index of migration 0026 holds private replies only).

CREATE INDEX ix_agent_replies_comment ON agent_replies (tenant_id, comment_id)
    WHERE comment_id IS NOT NULL;
