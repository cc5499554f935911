-- The triage queue of comments leaves out comments hidden on the platform
-- (a moderator hid them: no decision, no reply). Hidden comments are never
-- triaged and comments are not purged, so under the old predicate they
-- would stay in this partial index for good, and every triage pass would
-- walk past each tenant's hidden comments (with a heap read each, since
-- `hidden` is not in the index). The index now holds only what the queue
-- reads.

DROP INDEX IF EXISTS ix_comments_untriaged;
CREATE INDEX ix_comments_untriaged ON comments (tenant_id, created_at, id)
    WHERE triage IS NULL AND NOT hidden;
