//! The inbox's list views on Postgres: one statement per view, each reading
//! through its own index, and its parameters.

use nexiom_core::{InboxQuery, InboxView};
use sqlx::Arguments;
use sqlx::postgres::PgArguments;

use super::bound;
use crate::error::{Result, StorageError};
use crate::inbox::waited_since;

/// The SQL of a list (parameters: $1 tenant, $2 now, $3 text key, $4
/// channel, $5 waiting bound, $6 cursor instant, $7 cursor id, $8 limit).
pub(super) fn list_sql(query: &InboxQuery) -> String {
    const ACTIVE: &str = "status <> 'resolved' AND (status <> 'snoozed' OR snoozed_until <= $2)";
    let (filter, order) = match &query.view {
        InboxView::Label(_) => {
            // The page from the label's rows (in list order, with the
            // status), then its items by primary key.
            let after = if query.after.is_some() {
                "AND (since, subject_id) > ($6, $7)"
            } else {
                ""
            };
            return format!(
                "SELECT * FROM inbox_items WHERE subject_id = ANY (ARRAY( \
                     SELECT subject_id FROM inbox_labels \
                     WHERE tenant_id = $1 AND label = $3 AND {ACTIVE} {after} \
                     ORDER BY since, subject_id LIMIT $8)) \
                 ORDER BY since, subject_id"
            );
        }
        InboxView::UnassignedEscalations => ("triage = 'escalate' AND assignee IS NULL", "since"),
        InboxView::AssignedTo(_) => ("assignee = $3 AND assignee IS NOT NULL", "since"),
        InboxView::Channel(_) => ("channel_id = $4", "since"),
        InboxView::Triage(_) => ("triage = $3", "since"),
        InboxView::WaitingLongerThan(_) => (
            "waiting_since IS NOT NULL AND waiting_since <= $5",
            "waiting_since",
        ),
    };
    let after = if query.after.is_some() {
        format!("AND ({order}, subject_id) > ($6, $7)")
    } else {
        String::new()
    };
    format!(
        "SELECT * FROM inbox_items \
         WHERE tenant_id = $1 AND {filter} AND {ACTIVE} {after} \
         ORDER BY {order}, subject_id LIMIT $8"
    )
}

/// The parameters of [`list_sql`].
pub(super) fn list_args(query: &InboxQuery) -> Result<PgArguments> {
    let key: Option<String> = match &query.view {
        InboxView::AssignedTo(agent) => Some(agent.clone()),
        InboxView::Label(label) => Some(label.clone()),
        InboxView::Triage(triage) => Some(triage.as_str().to_owned()),
        _ => None,
    };
    let channel = match &query.view {
        InboxView::Channel(channel) => Some(channel.as_uuid()),
        _ => None,
    };
    let waiting = match &query.view {
        InboxView::WaitingLongerThan(wait) => Some(bound(waited_since(query.now, *wait))),
        _ => None,
    };
    let mut args = PgArguments::default();
    let added = (|| {
        args.add(query.tenant_id.as_uuid())?;
        args.add(bound(query.now))?;
        args.add(key)?;
        args.add(channel)?;
        args.add(waiting)?;
        args.add(query.after.map(|a| bound(a.since)))?;
        args.add(query.after.map(|a| a.id))?;
        args.add(i64::from(query.limit))
    })();
    added.map_err(|e| StorageError::backend(format!("inbox list parameters: {e}")))?;
    Ok(args)
}
