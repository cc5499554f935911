-- Facebook comments hidden, shown again or removed by a Page's moderator are
-- kept as `moderation` events (the verb in `text`, the post in `target_id`,
-- the comment in `parent_id`); routing records them on the comment's
-- `hidden`. The kind check gains the value. NOT VALID: every stored row
-- already satisfies the narrower check it replaces, so no partition is
-- scanned under the lock; new rows are checked.
ALTER TABLE webhook_events DROP CONSTRAINT ck_webhook_events_kind;
ALTER TABLE webhook_events ADD CONSTRAINT ck_webhook_events_kind
    CHECK (kind IN ('message', 'status', 'comment', 'comment_reply', 'preference',
        'moderation', 'other')) NOT VALID;

-- When the latest moderation routed for a comment happened (the platform's
-- notification time): a moderation older than it, routed later by another
-- router or redelivered, changes nothing.
ALTER TABLE comments ADD COLUMN moderated_at TIMESTAMPTZ;
