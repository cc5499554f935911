-- Comment checks of a post the platform refused in a row (a deleted post's
-- comments are refused at every check): the poller doubles the wait before
-- the next check at each refusal, up to its `failure_backoff_max`, and a
-- check that reads resets the count. A constant default: no rewrite of the
-- table; the check is `NOT VALID` (every existing row holds the default, so
-- there is nothing to scan for) and holds for every write from now on.

ALTER TABLE scheduled_posts ADD COLUMN poll_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scheduled_posts ADD CONSTRAINT ck_scheduled_posts_poll_failures
    CHECK (poll_failures >= 0) NOT VALID;
