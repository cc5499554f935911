//! [`InboxStore`]: the inbox items of conversations and comments (who
//! handles them, their status, labels and notes), the lists people work
//! from, and the tenant's canned replies.
//!
//! Every conversation and every comment has its item from the moment it is
//! stored. Its derived fields follow the data: `triage` (a conversation's
//! latest triaged inbound message), `waiting_since` (a conversation's first
//! inbound message after its last outbound one; a comment until a reply to
//! it is sent) and `last_activity_at`. A resolved or snoozed conversation
//! whose contact writes after the status was set is open again. On Postgres
//! statement triggers of migration 0027 keep `inbox_items` current; in
//! memory the fields are computed when read.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    CannedReply, CannedReplyId, InboxItem, InboxNote, InboxPage, InboxQuery, InboxStatus,
    InboxSubject, TenantId,
};

use crate::error::Result;

/// Inbox items, notes and canned replies.
#[async_trait]
pub trait InboxStore: Send + Sync {
    /// The item of a conversation or comment. `NotFound` when it is not the
    /// tenant's.
    async fn get_inbox_item(&self, tenant: TenantId, subject: InboxSubject) -> Result<InboxItem>;
    /// Assigns the item to `assignee` (a key), or unassigns it (`None`).
    async fn assign_inbox_item(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
        assignee: Option<&str>,
    ) -> Result<InboxItem>;
    /// Sets the item's status at `at`. A conversation resolved or snoozed at
    /// a time before its last inbound message is open (that message was not
    /// seen), as it is when the contact writes again after the change.
    async fn set_inbox_status(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
        status: InboxStatus,
        at: DateTime<Utc>,
    ) -> Result<InboxItem>;
    /// Adds then removes labels (keys); the labels stay sorted and unique,
    /// at most [`nexiom_core::MAX_LABELS`].
    async fn label_inbox_item(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
        add: &[String],
        remove: &[String],
    ) -> Result<InboxItem>;
    /// Adds an internal note by `author` (a key) to the item.
    async fn add_inbox_note(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
        author: &str,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<InboxNote>;
    /// The item's notes, oldest first.
    async fn list_inbox_notes(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
    ) -> Result<Vec<InboxNote>>;
    /// A page of a list (see [`nexiom_core::InboxView`]): active items only,
    /// oldest [`InboxItem::since`] first, then by subject id, after the
    /// query's cursor. On Postgres each view reads through its own index.
    async fn list_inbox(&self, query: InboxQuery) -> Result<InboxPage>;

    /// Creates a canned reply; `Conflict` when the tenant has one of that
    /// name, `Invalid` when its placeholders are unbalanced.
    async fn create_canned_reply(
        &self,
        tenant: TenantId,
        name: &str,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<CannedReply>;
    /// The tenant's canned replies, by name.
    async fn list_canned_replies(&self, tenant: TenantId) -> Result<Vec<CannedReply>>;
    /// Deletes a canned reply; `NotFound` when absent.
    async fn delete_canned_reply(&self, tenant: TenantId, id: CannedReplyId) -> Result<()>;

    /// Sets (or, with `None`, removes) the tenant's first-response target:
    /// at least one second. `UnknownReference` for an unknown tenant.
    async fn set_first_response_target(
        &self,
        tenant: TenantId,
        target: Option<Duration>,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// The tenant's first-response target, if set.
    async fn first_response_target(&self, tenant: TenantId) -> Result<Option<Duration>>;
    /// Every tenant's target, by tenant (a cross-tenant read, for the SLA
    /// worker).
    async fn list_first_response_targets(&self) -> Result<Vec<(TenantId, Duration)>>;
    /// The tenant's active items waiting since `now - wait` or earlier whose
    /// current wait is not marked notified
    /// ([`mark_breaches_notified`](InboxStore::mark_breaches_notified): no
    /// mark, or a wait that began after the marked one), longest waiting
    /// first (then by subject id), at most `limit`. An item whose wait ends
    /// and starts again (a reply, then a new message) is listed again for
    /// the new wait; one that appears late with an old wait (a message
    /// routed late, a conversation reopened) is listed too; a marked wait
    /// moved earlier (a message routed late, before the first one) is the
    /// same wait and is not.
    async fn list_unnotified_breaches(
        &self,
        tenant: TenantId,
        wait: Duration,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<InboxItem>>;
    /// Marks each `(item, waiting_since)` notified for that wait; an item
    /// whose wait has changed since is left as it is. Returns how many were
    /// marked.
    async fn mark_breaches_notified(
        &self,
        tenant: TenantId,
        waits: &[(InboxSubject, DateTime<Utc>)],
    ) -> Result<u64>;
}

/// The instant an item must have been waiting since to have waited `wait`
/// at `now`: `now - wait`, or the start (end) of time when that is out of
/// range (a wait of a million years waited by nothing; a negative one by
/// everything), never a panic on a caller's duration.
pub(crate) fn waited_since(now: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    now.checked_sub_signed(wait)
        .unwrap_or(if wait > Duration::zero() {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

/// Checks a first-response target: whole seconds, at least one.
pub(crate) fn target_seconds(target: Duration) -> std::result::Result<i64, nexiom_core::CoreError> {
    let seconds = target.num_seconds();
    if seconds < 1 || Duration::seconds(seconds) != target {
        return Err(nexiom_core::CoreError::invalid(
            "target",
            "a first-response target is a whole number of seconds, at least one",
        ));
    }
    Ok(seconds)
}

/// `labels` with `add` added and `remove` removed, sorted and unique, each
/// checked.
pub(crate) fn relabel(
    labels: &[String],
    add: &[String],
    remove: &[String],
) -> std::result::Result<Vec<String>, nexiom_core::CoreError> {
    for label in add.iter().chain(remove) {
        nexiom_core::validate::key("label", label)?;
    }
    let mut out: Vec<String> = labels
        .iter()
        .chain(add)
        .filter(|l| !remove.contains(l))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    if out.len() > nexiom_core::MAX_LABELS {
        return Err(nexiom_core::CoreError::invalid(
            "labels",
            format!("an item carries at most {} labels", nexiom_core::MAX_LABELS),
        ));
    }
    Ok(out)
}

/// Checks a note's author and text.
pub(crate) fn check_note(
    author: &str,
    text: &str,
) -> std::result::Result<(), nexiom_core::CoreError> {
    nexiom_core::validate::key("author", author)?;
    nexiom_core::validate::text("text", text)?;
    if text.trim().is_empty() {
        return Err(nexiom_core::CoreError::invalid("text", "must not be empty"));
    }
    Ok(())
}
