-- Reply lookups that hold whether or not the planner has statistics.
--
-- Messages are partitioned by month (0033), so no index on `id` alone is
-- unique, and autovacuum never analyzes a partitioned table itself: a
-- lookup by id or by `in_reply_to` is planned with default estimates (one
-- row in 200) until a partition has been analyzed, and the parent's join
-- estimates stay default for good. Two plans went wrong that way under a
-- reply batch of 2,000 items, about 5x slower end to end:
--
-- * The existing reply of an inbound message, looked up by tenant and
--   `in_reply_to`, walked `ix_messages_outbound` (the tenant's outbound
--   messages) and filtered on `in_reply_to`: 2.4 ms per item at 8,000
--   replies. With the tenant in `ix_messages_in_reply_to`, that index
--   matches both conditions and is the cheaper one whatever the estimates.
--   The new index is built first (reads go on meanwhile; writes wait), and
--   the old one dropped after, so readers wait only for the drop.
CREATE INDEX ix_messages_in_reply_to_tenant ON messages (in_reply_to, tenant_id)
    WHERE in_reply_to IS NOT NULL AND direction = 'outbound';
DROP INDEX ix_messages_in_reply_to;
ALTER INDEX ix_messages_in_reply_to_tenant RENAME TO ix_messages_in_reply_to;

-- * The inbox's update triggers joined a statement's old and new rows by
--   id. Transition tables have no statistics (one row assumed), so the join
--   was a nested loop: quadratic in the rows of the statement, 427 ms for a
--   claim of 2,000 messages (4,000,000 comparisons), whether or not any
--   triage changed. Grouping both sides by id is linear (a row whose
--   triage changed has two values in its group, '' standing for none; its
--   conversation is the new row's, as the join gave).
CREATE OR REPLACE FUNCTION nexiom_inbox_messages_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nexiom_inbox_refresh_conversations(ARRAY(
        SELECT DISTINCT (array_agg(x.conversation_id) FILTER (WHERE x.new))[1]
        FROM (SELECT id, conversation_id, triage, TRUE AS new FROM new_rows
              UNION ALL SELECT id, conversation_id, triage, FALSE FROM old_rows) x
        GROUP BY x.id
        HAVING min(coalesce(x.triage, '')) <> max(coalesce(x.triage, ''))));
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION nexiom_inbox_comments_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nexiom_inbox_refresh_comments(ARRAY(
        SELECT x.id
        FROM (SELECT id, triage FROM new_rows
              UNION ALL SELECT id, triage FROM old_rows) x
        GROUP BY x.id
        HAVING min(coalesce(x.triage, '')) <> max(coalesce(x.triage, ''))));
    RETURN NULL;
END $$;
