-- First-response breaches marked on the item they were notified for.
--
-- The SLA monitor read, each pass, only the items whose wait crossed the
-- target since its previous pass, a bound kept in the process's memory. An
-- item that appears later with an older `waiting_since` (a message routed
-- late: its time is the platform's; a comment found by polling; a
-- conversation reopened with its old wait) was never read again; and the
-- notification's key was the only record that a breach was sent, so once
-- retention purged it, the next process notified the breach again.
--
-- Now an item carries the start of the wait its breach was notified for;
-- the monitor lists the unresolved breaching items with no mark or a wait
-- that began after it (a partial index: a marked item leaves it, a new wait
-- brings it back; a wait moved earlier, by a message routed late, is the
-- same wait and is not notified again) and marks them once their
-- notifications are enqueued. Items are not marked here: on the first pass
-- a breach whose notification retention already purged is notified once
-- more.

ALTER TABLE inbox_items ADD COLUMN breach_notified_for TIMESTAMPTZ;
CREATE INDEX ix_inbox_unnotified_breaches ON inbox_items (tenant_id, waiting_since, subject_id)
    WHERE waiting_since IS NOT NULL AND status <> 'resolved'
        AND (breach_notified_for IS NULL OR waiting_since > breach_notified_for);
