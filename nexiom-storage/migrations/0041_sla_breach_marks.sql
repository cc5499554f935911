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
-- Now an item carries the wait its breach was notified for; the monitor
-- lists the breaching items whose current wait is not marked (a partial
-- index: a marked item leaves it, a new wait brings it back) and marks them
-- once their notifications are enqueued.

ALTER TABLE inbox_items ADD COLUMN breach_notified_for TIMESTAMPTZ;
CREATE INDEX ix_inbox_unnotified_breaches ON inbox_items (tenant_id, waiting_since, subject_id)
    WHERE waiting_since IS NOT NULL AND breach_notified_for IS DISTINCT FROM waiting_since;
