//! The inbox in memory: people's state per item is stored; the derived
//! fields are computed from the messages, comments and replies when read.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    AgentReplyState, AgentReplyTarget, CannedReply, CannedReplyId, ConversationId, DeliveryStatus,
    InboxItem, InboxNote, InboxNoteId, InboxPage, InboxQuery, InboxStatus, InboxSubject, InboxView,
    MessageDirection, TenantId, Triage, validate,
};
use uuid::Uuid;

use super::{Inner, MemoryStore, get_scoped, limit_len};
use crate::error::{Result, StorageError};
use crate::inbox::{InboxStore, check_note, relabel, target_seconds, waited_since};

/// What people set on an item.
#[derive(Debug, Clone, Default)]
struct PeopleState {
    assignee: Option<String>,
    status: Option<(InboxStatus, DateTime<Utc>)>,
    labels: Vec<String>,
}

/// The inbox's rows.
#[derive(Default)]
pub(super) struct Inbox {
    state: HashMap<Uuid, PeopleState>,
    notes: BTreeMap<InboxNoteId, InboxNote>,
    canned: BTreeMap<CannedReplyId, CannedReply>,
    targets: BTreeMap<TenantId, chrono::Duration>,
    /// Item → the wait its first-response breach was notified for.
    breach_notified: HashMap<Uuid, DateTime<Utc>>,
}

/// A conversation's messages, summed up.
#[derive(Default, Clone, Copy)]
struct Summary {
    last_at: Option<DateTime<Utc>>,
    last_out: Option<DateTime<Utc>>,
    last_in: Option<DateTime<Utc>>,
    /// Latest triaged inbound message: `(created_at, id, triage)`.
    triage: Option<(DateTime<Utc>, Uuid, Triage)>,
}

impl Inner {
    /// Each of the tenant's conversations (or just `only`) summed up over
    /// its messages, then its first inbound message after the last outbound.
    fn summaries(
        &self,
        tenant: TenantId,
        only: Option<ConversationId>,
    ) -> HashMap<ConversationId, (Summary, Option<DateTime<Utc>>)> {
        let mine = |m: &&nexiom_core::Message| {
            m.tenant_id == tenant && only.is_none_or(|c| m.conversation_id == c)
        };
        let mut sums: HashMap<ConversationId, Summary> = HashMap::new();
        for m in self.messages.values().filter(mine) {
            let s = sums.entry(m.conversation_id).or_default();
            s.last_at = s.last_at.max(Some(m.created_at));
            match m.direction {
                // A reply the platform failed answered no one.
                MessageDirection::Outbound => {
                    if m.delivery_status != Some(nexiom_core::DeliveryStatus::Failed) {
                        s.last_out = s.last_out.max(Some(m.created_at));
                    }
                }
                MessageDirection::Inbound => {
                    s.last_in = s.last_in.max(Some(m.created_at));
                    if let Some(t) = m.triage {
                        let key = (m.created_at, m.id.as_uuid(), t);
                        if s.triage.is_none_or(|(at, id, _)| (at, id) < (key.0, key.1)) {
                            s.triage = Some(key);
                        }
                    }
                }
            }
        }
        let mut waiting: HashMap<ConversationId, DateTime<Utc>> = HashMap::new();
        for m in self.messages.values().filter(mine) {
            if m.direction != MessageDirection::Inbound {
                continue;
            }
            let last_out = sums.get(&m.conversation_id).and_then(|s| s.last_out);
            if last_out.is_none_or(|out| m.created_at > out) {
                let w = waiting.entry(m.conversation_id).or_insert(m.created_at);
                *w = (*w).min(m.created_at);
            }
        }
        sums.into_iter()
            .map(|(c, s)| (c, (s, waiting.get(&c).copied())))
            .collect()
    }

    /// The item of a stored conversation or comment, with people's state.
    fn item(
        &self,
        subject: InboxSubject,
        summaries: &HashMap<ConversationId, (Summary, Option<DateTime<Utc>>)>,
    ) -> Option<InboxItem> {
        let (tenant, channel, created_at, triage, waiting_since, last_activity, last_inbound) =
            match subject {
                InboxSubject::Conversation(id) => {
                    let c = self.conversations.get(&id)?;
                    let (s, waiting) = summaries.get(&id).copied().unwrap_or_default();
                    (
                        c.tenant_id,
                        c.channel_id,
                        c.created_at,
                        s.triage.map(|t| t.2),
                        waiting,
                        s.last_at.unwrap_or(c.created_at),
                        s.last_in,
                    )
                }
                InboxSubject::Comment(id) => {
                    let c = self.comments.get(&id)?;
                    (
                        c.tenant_id,
                        c.channel_id,
                        c.created_at,
                        c.triage,
                        // A hidden comment gets no reply: it waits for no one.
                        (!c.hidden && !self.comment_answered(id)).then_some(c.created_at),
                        c.created_at,
                        None,
                    )
                }
            };
        let people = self
            .inbox
            .state
            .get(&subject.id())
            .cloned()
            .unwrap_or_default();
        let (mut status, changed_at) = people.status.unwrap_or((InboxStatus::Open, created_at));
        let back = matches!(status, InboxStatus::Resolved | InboxStatus::Snoozed { .. })
            && last_inbound.is_some_and(|at| at > changed_at);
        if back {
            status = InboxStatus::Open;
        }
        Some(InboxItem {
            subject,
            tenant_id: tenant,
            channel_id: channel,
            assignee: people.assignee,
            status,
            labels: people.labels,
            triage,
            waiting_since,
            last_activity_at: last_activity,
        })
    }

    /// Whether a reply to the comment was sent (automatic or an agent's).
    fn comment_answered(&self, comment: nexiom_core::CommentId) -> bool {
        let auto = self.comment_replies.get(&comment).is_some_and(|r| {
            matches!(
                r.status,
                DeliveryStatus::Sent | DeliveryStatus::Delivered | DeliveryStatus::Read
            )
        });
        auto || self.agent_reply_sent_to(comment)
    }

    /// The tenant's item of `subject`, or `NotFound`.
    fn inbox_item(&self, tenant: TenantId, subject: InboxSubject) -> Result<InboxItem> {
        let summaries = match subject {
            InboxSubject::Conversation(id) => {
                get_scoped(&self.conversations, tenant, &id, "conversation")?;
                self.summaries(tenant, Some(id))
            }
            InboxSubject::Comment(id) => {
                get_scoped(&self.comments, tenant, &id, "comment")?;
                HashMap::new()
            }
        };
        self.item(subject, &summaries)
            .ok_or_else(|| StorageError::not_found(subject.kind(), subject.id()))
    }

    /// Changes people's state of the tenant's item, then reads it.
    fn update_people(
        &mut self,
        tenant: TenantId,
        subject: InboxSubject,
        change: impl FnOnce(&mut PeopleState),
    ) -> Result<InboxItem> {
        self.inbox_item(tenant, subject)?;
        change(self.inbox.state.entry(subject.id()).or_default());
        self.inbox_item(tenant, subject)
    }

    /// The tenant's items active at `now`, in no order.
    fn active_items(&self, tenant: TenantId, now: DateTime<Utc>) -> Vec<InboxItem> {
        let summaries = self.summaries(tenant, None);
        let subjects = self
            .conversations
            .values()
            .filter(|c| c.tenant_id == tenant)
            .map(|c| InboxSubject::Conversation(c.id))
            .chain(
                self.comments
                    .values()
                    .filter(|c| c.tenant_id == tenant)
                    .map(|c| InboxSubject::Comment(c.id)),
            );
        subjects
            .filter_map(|s| self.item(s, &summaries))
            .filter(|i| i.status.is_active(now))
            .collect()
    }

    fn list_inbox(&self, query: &InboxQuery) -> Result<InboxPage> {
        query.validate()?;
        let mut items: Vec<InboxItem> = self
            .active_items(query.tenant_id, query.now)
            .into_iter()
            .filter(|i| match &query.view {
                InboxView::UnassignedEscalations => {
                    i.triage == Some(Triage::Escalate) && i.assignee.is_none()
                }
                InboxView::AssignedTo(agent) => i.assignee.as_deref() == Some(agent.as_str()),
                InboxView::Label(label) => i.labels.contains(label),
                InboxView::Channel(channel) => i.channel_id == *channel,
                InboxView::Triage(triage) => i.triage == Some(*triage),
                InboxView::WaitingLongerThan(wait) => i
                    .waiting_since
                    .is_some_and(|since| since <= waited_since(query.now, *wait)),
            })
            .filter(|i| query.after.is_none_or(|after| i.cursor() > after))
            .collect();
        items.sort_by_key(InboxItem::cursor);
        items.truncate(limit_len(query.limit));
        let next = (items.len() == limit_len(query.limit))
            .then(|| items.last().map(InboxItem::cursor))
            .flatten();
        Ok(InboxPage { items, next })
    }
}

impl Inner {
    /// Whether an agent's reply to the comment was sent.
    fn agent_reply_sent_to(&self, comment: nexiom_core::CommentId) -> bool {
        self.agent_replies_of_comment(comment)
            .any(|r| r.state == AgentReplyState::Sent)
    }

    fn agent_replies_of_comment(
        &self,
        comment: nexiom_core::CommentId,
    ) -> impl Iterator<Item = &nexiom_core::AgentReply> {
        self.agent_replies.all().filter(move |r| {
            matches!(r.target,
                AgentReplyTarget::PublicComment { comment: c }
                | AgentReplyTarget::PrivateComment { comment: c } if c == comment)
        })
    }
}

#[async_trait]
impl InboxStore for MemoryStore {
    async fn get_inbox_item(&self, tenant: TenantId, subject: InboxSubject) -> Result<InboxItem> {
        self.lock().inbox_item(tenant, subject)
    }

    async fn assign_inbox_item(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
        assignee: Option<&str>,
    ) -> Result<InboxItem> {
        validate::opt_key("assignee", assignee)?;
        let assignee = assignee.map(str::to_owned);
        self.lock()
            .update_people(tenant, subject, |p| p.assignee = assignee)
    }

    async fn set_inbox_status(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
        status: InboxStatus,
        at: DateTime<Utc>,
    ) -> Result<InboxItem> {
        self.lock()
            .update_people(tenant, subject, |p| p.status = Some((status, at)))
    }

    async fn label_inbox_item(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
        add: &[String],
        remove: &[String],
    ) -> Result<InboxItem> {
        let mut inner = self.lock();
        let current = inner.inbox_item(tenant, subject)?;
        let labels = relabel(&current.labels, add, remove)?;
        inner.update_people(tenant, subject, |p| p.labels = labels)
    }

    async fn add_inbox_note(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
        author: &str,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<InboxNote> {
        check_note(author, text)?;
        let mut inner = self.lock();
        inner.inbox_item(tenant, subject)?;
        let note = InboxNote {
            id: InboxNoteId::generate(),
            tenant_id: tenant,
            subject,
            author: author.to_owned(),
            text: text.to_owned(),
            created_at: at,
        };
        inner.inbox.notes.insert(note.id, note.clone());
        Ok(note)
    }

    async fn list_inbox_notes(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
    ) -> Result<Vec<InboxNote>> {
        let inner = self.lock();
        inner.inbox_item(tenant, subject)?;
        let mut notes: Vec<InboxNote> = inner
            .inbox
            .notes
            .values()
            .filter(|n| n.tenant_id == tenant && n.subject == subject)
            .cloned()
            .collect();
        notes.sort_by_key(|n| (n.created_at, n.id));
        Ok(notes)
    }

    async fn list_inbox(&self, query: InboxQuery) -> Result<InboxPage> {
        self.lock().list_inbox(&query)
    }

    async fn create_canned_reply(
        &self,
        tenant: TenantId,
        name: &str,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<CannedReply> {
        CannedReply::check(name, text)?;
        let mut inner = self.lock();
        inner.require_tenant(tenant)?;
        if inner
            .inbox
            .canned
            .values()
            .any(|c| c.tenant_id == tenant && c.name == name)
        {
            return Err(StorageError::conflict(
                "canned reply",
                format!("name {name:?}"),
            ));
        }
        let canned = CannedReply {
            id: CannedReplyId::generate(),
            tenant_id: tenant,
            name: name.to_owned(),
            text: text.to_owned(),
            created_at: at,
        };
        inner.inbox.canned.insert(canned.id, canned.clone());
        Ok(canned)
    }

    async fn list_canned_replies(&self, tenant: TenantId) -> Result<Vec<CannedReply>> {
        let inner = self.lock();
        let mut list: Vec<CannedReply> = inner
            .inbox
            .canned
            .values()
            .filter(|c| c.tenant_id == tenant)
            .cloned()
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    async fn delete_canned_reply(&self, tenant: TenantId, id: CannedReplyId) -> Result<()> {
        let mut inner = self.lock();
        match inner.inbox.canned.get(&id) {
            Some(c) if c.tenant_id == tenant => {
                inner.inbox.canned.remove(&id);
                Ok(())
            }
            _ => Err(StorageError::not_found("canned reply", id)),
        }
    }

    async fn set_first_response_target(
        &self,
        tenant: TenantId,
        target: Option<chrono::Duration>,
        _at: DateTime<Utc>,
    ) -> Result<()> {
        if let Some(target) = target {
            target_seconds(target)?;
        }
        let mut inner = self.lock();
        inner.require_tenant(tenant)?;
        match target {
            Some(target) => inner.inbox.targets.insert(tenant, target),
            None => inner.inbox.targets.remove(&tenant),
        };
        Ok(())
    }

    async fn first_response_target(&self, tenant: TenantId) -> Result<Option<chrono::Duration>> {
        Ok(self.lock().inbox.targets.get(&tenant).copied())
    }

    async fn list_first_response_targets(&self) -> Result<Vec<(TenantId, chrono::Duration)>> {
        Ok(self
            .lock()
            .inbox
            .targets
            .iter()
            .map(|(t, d)| (*t, *d))
            .collect())
    }

    async fn list_unnotified_breaches(
        &self,
        tenant: TenantId,
        wait: chrono::Duration,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<InboxItem>> {
        let inner = self.lock();
        let marks = &inner.inbox.breach_notified;
        let mut items: Vec<InboxItem> = inner
            .active_items(tenant, now)
            .into_iter()
            .filter(|i| {
                i.waiting_since.is_some_and(|since| {
                    since <= waited_since(now, wait)
                        && marks.get(&i.subject.id()).is_none_or(|mark| since > *mark)
                })
            })
            .collect();
        items.sort_by_key(|i| (i.waiting_since, i.subject.id()));
        items.truncate(limit_len(limit));
        Ok(items)
    }

    async fn mark_breaches_notified(
        &self,
        tenant: TenantId,
        waits: &[(InboxSubject, DateTime<Utc>)],
    ) -> Result<u64> {
        let mut inner = self.lock();
        let summaries = inner.summaries(tenant, None);
        let current: Vec<(Uuid, DateTime<Utc>)> = waits
            .iter()
            .filter_map(|(subject, since)| {
                let item = inner.item(*subject, &summaries)?;
                (item.tenant_id == tenant && item.waiting_since == Some(*since))
                    .then_some((subject.id(), *since))
            })
            .collect();
        let marked = current.len() as u64;
        inner.inbox.breach_notified.extend(current);
        Ok(marked)
    }
}
