-- Whether a post's comment checkpoint is part way through a re-read.
--
-- On platforms whose replies are listed under their comment (Instagram,
-- LinkedIn), the poller reads a post's comments from the first page again
-- every hour, with every reply. A re-read that stopped part way (a throttle,
-- a failure, the page limit, the claim's time) saved its cursor, and the
-- next check went on from it with the plain listing, without the replies
-- of the pages left. With this flag the next check goes on with the
-- re-read's listing until the last page.

ALTER TABLE comment_checkpoints ADD COLUMN rereading BOOLEAN NOT NULL DEFAULT FALSE;
