-- The reply queue's partial indexes lead with the channel: a claim shares
-- its batch among channels (one channel's backlog no longer holds the
-- others' replies behind it), so it walks the channels holding queue items
-- (one probe each) and reads each channel's oldest due items from its own
-- range. Only queue items take an entry, as before.
DROP INDEX ix_messages_reply_queue;
CREATE INDEX ix_messages_reply_queue ON messages (channel_id, created_at, id)
    WHERE reply_state IN ('pending', 'sending');
DROP INDEX ix_comments_reply_queue;
CREATE INDEX ix_comments_reply_queue ON comments (channel_id, created_at, id)
    WHERE reply_state IN ('pending', 'sending');
