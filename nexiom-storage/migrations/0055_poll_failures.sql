-- Comment checks of a post that failed in a row (a deleted post's comments
-- are refused at every check): the poller doubles the wait before the next
-- check at each failure, up to its `failure_backoff_max`, and a check that
-- reads resets the count. A constant default: no rewrite of the table.

ALTER TABLE scheduled_posts ADD COLUMN poll_failures INTEGER NOT NULL DEFAULT 0;
