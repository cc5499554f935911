-- A reply-queue item that a person answered first: when an agent reply to
-- a conversation or a comment is recorded sent, the conversation's inbound
-- messages (up to the reply) and the comment that still wait for an
-- automatic reply, or for their triage, become `superseded`: nothing
-- automatic goes out after a person answered. Widening the allowed states
-- checks the existing rows once (every stored state is allowed by both).

ALTER TABLE messages
    DROP CONSTRAINT ck_messages_reply_state,
    ADD CONSTRAINT ck_messages_reply_state
        CHECK (reply_state IN ('pending', 'sending', 'sent', 'given_up', 'superseded'));

ALTER TABLE comments
    DROP CONSTRAINT ck_comments_reply_state,
    ADD CONSTRAINT ck_comments_reply_state
        CHECK (reply_state IN ('pending', 'sending', 'sent', 'given_up', 'superseded'));
