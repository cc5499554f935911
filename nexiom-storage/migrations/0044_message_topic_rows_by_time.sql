-- Message retention removes what topics derived from the messages it
-- removes, by time and through these two indexes, a batch a call:
-- memberships of messages created before the cutoff (a membership carries
-- its message's time), and message vectors last computed before the cutoff
-- (a vector is computed after its message was created, so every such vector
-- is of a message older than the cutoff). Without them each call scanned
-- both tables.
CREATE INDEX ix_topic_members_message_time ON topic_members (created_at)
    WHERE subject_kind = 'message';
CREATE INDEX ix_item_embeddings_message_time ON item_embeddings (computed_at)
    WHERE subject_kind = 'message';
