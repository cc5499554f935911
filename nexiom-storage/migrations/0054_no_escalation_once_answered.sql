-- A message or comment a person answered before its triage (reply state
-- `superseded`, migration 0051) notifies no one when it is escalated: the
-- `item_escalated` notification exists to bring a person to an item, and one
-- has been there. Triage decides such items IGNORE anyway; this covers an
-- item answered while its triage was being decided.

DROP TRIGGER tr_messages_escalated ON messages;
CREATE TRIGGER tr_messages_escalated AFTER UPDATE OF triage ON messages
    FOR EACH ROW WHEN (NEW.triage = 'escalate' AND OLD.triage IS DISTINCT FROM 'escalate'
        AND NEW.reply_state IS DISTINCT FROM 'superseded')
    EXECUTE FUNCTION nexiom_notify_escalated();

DROP TRIGGER tr_comments_escalated ON comments;
CREATE TRIGGER tr_comments_escalated AFTER UPDATE OF triage ON comments
    FOR EACH ROW WHEN (NEW.triage = 'escalate' AND OLD.triage IS DISTINCT FROM 'escalate'
        AND NEW.reply_state IS DISTINCT FROM 'superseded')
    EXECUTE FUNCTION nexiom_notify_escalated();
