-- The queued posts by channel, for claims shared among channels.
--
-- A publish claim took the oldest due posts of every channel. A channel with
-- a backlog (thousands of posts due at 09:00 on one Page, published one call
-- at a time) filled every claim, so every other channel's posts waited until
-- it drained. When the oldest due posts would give one channel more than a
-- few posts of a full claim, the claim is now shared among the channels
-- whose oldest due post is oldest: it walks the channels that hold queued
-- posts through this index (a probe per channel, not a read of its
-- backlog), reads each one's oldest due post in its own range, then takes
-- the posts round-robin.
--
-- Partial on `queued`: a claim or a settlement moves a post out of it
-- without an entry; only an inserted post, or one handed back for a retry,
-- takes one.

CREATE INDEX ix_scheduled_posts_queued_channel
    ON scheduled_posts (channel_id, publish_at, id) WHERE status = 'queued';
