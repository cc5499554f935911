//! The reply queue, under the store's lock.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    ChannelId, ClaimedReply, ConversationId, CoreError, DecisionSubject, DeliveryStatus, Message,
    MessageDirection, ReplyOutcome, ReplyState, ReplyStatus, TenantId, Triage,
};

use super::{Inner, MemoryStore, get_scoped, get_scoped_mut};
use crate::error::{Result, StorageError};
use crate::fair_claim::{FairRounds, QueuePlace};
use crate::reply_queue::ReplyQueueStore;

/// Whether an item in `reply` state is claimable at `now`.
fn due(reply: Option<&ReplyStatus>, now: DateTime<Utc>) -> bool {
    match reply {
        Some(r) if r.state == ReplyState::Pending => r.next_at.is_none_or(|t| t <= now),
        Some(r) if r.state == ReplyState::Sending => r.lease_until.is_none_or(|t| t <= now),
        _ => false,
    }
}

impl Inner {
    fn ai_on(&self, tenant: TenantId) -> bool {
        self.ai_controls.get(&tenant).is_some_and(|c| c.enabled)
    }

    fn claim_pending_replies(
        &mut self,
        now: DateTime<Utc>,
        since: Option<DateTime<Utc>>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedReply>> {
        let until = now.checked_add_signed(lease).ok_or_else(|| {
            CoreError::invalid("lease", "ends beyond the representable time range")
        })?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let wanted = |created: DateTime<Utc>| since.is_none_or(|s| created >= s);
        let paused: std::collections::HashSet<ChannelId> = self.paused_channels().collect();
        // Channels held by a platform's throttle until after `now` (as on
        // Postgres).
        let throttled: std::collections::HashSet<ChannelId> = self
            .channel_throttles
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(channel, _)| *channel)
            .collect();
        // Channels whose auto-replies their tenant switched off: not claimed
        // (as on Postgres).
        let off: std::collections::HashSet<(TenantId, ChannelId)> = self
            .tenant_settings
            .iter()
            .flat_map(|(tenant, s)| s.auto_reply_off_channels.iter().map(|c| (*tenant, *c)))
            .collect();
        // Per conversation, the oldest inbound message (from `since`) that
        // waits: its retry not due yet, or its reply in flight elsewhere.
        // The conversation's later messages wait behind it (as on Postgres).
        let mut waiting: std::collections::HashMap<ConversationId, (DateTime<Utc>, uuid::Uuid)> =
            std::collections::HashMap::new();
        for m in self.messages.values() {
            let waits = m.reply.as_ref().is_some_and(|r| match r.state {
                ReplyState::Pending => r.next_at.is_some_and(|t| t > now),
                ReplyState::Sending => r.lease_until.is_some_and(|t| t > now),
                _ => false,
            });
            if waits && m.direction == MessageDirection::Inbound && wanted(m.created_at) {
                let key = (m.created_at, m.id.as_uuid());
                let oldest = waiting.entry(m.conversation_id).or_insert(key);
                *oldest = (*oldest).min(key);
            }
        }
        let behind = |m: &Message| {
            waiting
                .get(&m.conversation_id)
                .is_some_and(|oldest| *oldest < (m.created_at, m.id.as_uuid()))
        };
        let place = |channel, at, id| QueuePlace { channel, at, id };
        let candidates: Vec<(QueuePlace, DecisionSubject)> = self
            .messages
            .values()
            .filter(|m| {
                due(m.reply.as_ref(), now)
                    && !behind(m)
                    && wanted(m.created_at)
                    && self.ai_on(m.tenant_id)
                    && !paused.contains(&m.channel_id)
                    && !throttled.contains(&m.channel_id)
                    && !off.contains(&(m.tenant_id, m.channel_id))
            })
            .map(|m| {
                (
                    place(m.channel_id, m.created_at, m.id.as_uuid()),
                    DecisionSubject::Message(m.id),
                )
            })
            .chain(
                self.comments
                    .values()
                    .filter(|c| {
                        due(c.reply.as_ref(), now)
                            && !c.hidden
                            && wanted(c.created_at)
                            && self.ai_on(c.tenant_id)
                            && !paused.contains(&c.channel_id)
                            && !throttled.contains(&c.channel_id)
                            && !off.contains(&(c.tenant_id, c.channel_id))
                    })
                    .map(|c| {
                        (
                            place(c.channel_id, c.created_at, c.id.as_uuid()),
                            DecisionSubject::Comment(c.id),
                        )
                    }),
            )
            .collect();
        // Shared among channels, read in the same rounds as on Postgres.
        let heads: Vec<(QueuePlace, bool)> = candidates
            .iter()
            .map(|(p, subject)| (*p, matches!(subject, DecisionSubject::Message(_))))
            .collect();
        let mut lanes: std::collections::HashMap<(bool, ChannelId), Vec<QueuePlace>> =
            std::collections::HashMap::new();
        let mut subjects = std::collections::HashMap::new();
        for (place, subject) in candidates {
            let message = matches!(subject, DecisionSubject::Message(_));
            lanes
                .entry((message, place.channel))
                .or_default()
                .push(place);
            subjects.insert((message, place.id), subject);
        }
        for lane in lanes.values_mut() {
            lane.sort_by_key(|p| (p.at, p.id));
        }
        let mut rounds = FairRounds::new(&heads, limit);
        while let Some((share, open)) = rounds.next() {
            let mut read = Vec::new();
            for lane in open {
                let items = lanes
                    .get(&(lane.kind, lane.channel))
                    .map_or(&[][..], Vec::as_slice);
                read.extend(
                    items
                        .iter()
                        .filter(|p| lane.after.is_none_or(|after| (p.at, p.id) > after))
                        .take(usize::try_from(share).unwrap_or(usize::MAX))
                        .map(|p| (*p, lane.kind)),
                );
            }
            rounds.record(read);
        }
        let candidates: Vec<DecisionSubject> = rounds
            .finish()
            .into_iter()
            .filter_map(|(p, message)| subjects.remove(&(message, p.id)))
            .collect();
        let mut claimed = Vec::with_capacity(candidates.len());
        for subject in candidates {
            let claim = |reply: &mut Option<ReplyStatus>| {
                if let Some(r) = reply.as_mut() {
                    r.state = ReplyState::Sending;
                    r.lease_until = Some(until);
                }
            };
            match subject {
                DecisionSubject::Message(id) => {
                    if let Some(m) = self.messages.get_mut(&id) {
                        claim(&mut m.reply);
                        claimed.push(ClaimedReply::Message(m.clone()));
                    }
                }
                DecisionSubject::Comment(id) => {
                    if let Some(c) = self.comments.get_mut(&id) {
                        claim(&mut c.reply);
                        claimed.push(ClaimedReply::Comment(c.clone()));
                    }
                }
            }
        }
        Ok(claimed)
    }

    pub(super) fn finish_reply(
        &mut self,
        tenant: TenantId,
        subject: DecisionSubject,
        outcome: ReplyOutcome,
    ) -> Result<ReplyStatus> {
        let (current, id) = match subject {
            DecisionSubject::Message(id) => (
                get_scoped(&self.messages, tenant, &id, "message")?
                    .reply
                    .clone(),
                id.to_string(),
            ),
            DecisionSubject::Comment(id) => (
                get_scoped(&self.comments, tenant, &id, "comment")?
                    .reply
                    .clone(),
                id.to_string(),
            ),
        };
        let Some(mut reply) = current else {
            return Err(StorageError::precondition(
                subject.kind(),
                id,
                "not in the reply queue (never triaged auto_reply)",
            ));
        };
        let escalate = crate::reply_queue::apply(&mut reply, outcome);
        if escalate {
            // The notification first: a refused one leaves the item unwritten.
            let decision = match subject {
                DecisionSubject::Message(id) => {
                    self.messages.get(&id).and_then(|m| m.ai_decision_id)
                }
                DecisionSubject::Comment(id) => {
                    self.comments.get(&id).and_then(|c| c.ai_decision_id)
                }
            };
            if let Some(notification) = self.escalation(tenant, subject, decision)? {
                self.notify(notification)?;
            }
        }
        let (slot, triage) = match subject {
            DecisionSubject::Message(id) => {
                let m = get_scoped_mut(&mut self.messages, tenant, &id, "message")?;
                (&mut m.reply, &mut m.triage)
            }
            DecisionSubject::Comment(id) => {
                let c = get_scoped_mut(&mut self.comments, tenant, &id, "comment")?;
                (&mut c.reply, &mut c.triage)
            }
        };
        *slot = Some(reply.clone());
        if escalate {
            *triage = Some(Triage::Escalate);
        }
        Ok(reply)
    }

    /// See [`ReplyQueueStore::expire_pending_replies`]: the claim's rules
    /// but for the window, each item settled through [`Self::finish_reply`]
    /// (so escalated as a give-up is), its attempts left as they were.
    fn expire_pending_replies(
        &mut self,
        now: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DecisionSubject>> {
        let paused: std::collections::HashSet<ChannelId> = self.paused_channels().collect();
        let off = |tenant: TenantId, channel: ChannelId| {
            self.tenant_settings
                .get(&tenant)
                .is_some_and(|s| s.auto_reply_off_channels.contains(&channel))
        };
        let expired = |reply: Option<&ReplyStatus>,
                       tenant: TenantId,
                       channel: ChannelId,
                       created: DateTime<Utc>| {
            created < before
                && due(reply, now)
                && self.ai_on(tenant)
                && !paused.contains(&channel)
                && !off(tenant, channel)
        };
        let mut items: Vec<(DateTime<Utc>, uuid::Uuid, TenantId, DecisionSubject)> = self
            .messages
            .values()
            .filter(|m| expired(m.reply.as_ref(), m.tenant_id, m.channel_id, m.created_at))
            .map(|m| {
                let subject = DecisionSubject::Message(m.id);
                (m.created_at, m.id.as_uuid(), m.tenant_id, subject)
            })
            .chain(
                self.comments
                    .values()
                    .filter(|c| expired(c.reply.as_ref(), c.tenant_id, c.channel_id, c.created_at))
                    .map(|c| {
                        let subject = DecisionSubject::Comment(c.id);
                        (c.created_at, c.id.as_uuid(), c.tenant_id, subject)
                    }),
            )
            .collect();
        items.sort_by_key(|(at, id, ..)| (*at, *id));
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let mut given_up = Vec::with_capacity(items.len());
        for (created, _, tenant, subject) in items {
            let hidden = match subject {
                DecisionSubject::Comment(id) => self.comments.get(&id).is_some_and(|c| c.hidden),
                DecisionSubject::Message(_) => false,
            };
            // A `sending` item's stored reply (its worker stopped before
            // settling it) settles it, as a claim would.
            let stored = match subject {
                DecisionSubject::Message(id) => self
                    .reply_by_inbound
                    .get(&id)
                    .and_then(|r| self.messages.get(r))
                    .map(|r| r.delivery_status.unwrap_or(DeliveryStatus::Pending)),
                DecisionSubject::Comment(id) => self.comment_replies.get(&id).map(|r| r.status),
            };
            let Some(reply) = self.reply_mut(subject) else {
                continue;
            };
            let stored = stored.filter(|_| reply.state == ReplyState::Sending);
            let Some(error) = crate::reply_queue::expiry(created, before, stored) else {
                // The platform took the stored reply: answered.
                reply.state = ReplyState::Sending;
                let attempts = reply.attempts;
                let mut settled = self.finish_reply(tenant, subject, ReplyOutcome::Sent)?;
                settled.attempts = attempts;
                if let Some(reply) = self.reply_mut(subject) {
                    *reply = settled;
                }
                given_up.push(subject);
                continue;
            };
            if hidden {
                // What the brand hid leaves the queue without paging anyone.
                reply.state = ReplyState::Superseded;
                reply.next_at = None;
                reply.lease_until = None;
                given_up.push(subject);
                continue;
            }
            // Settled as a claimed item given up: a give-up applies to an
            // item `sending`.
            reply.state = ReplyState::Sending;
            let attempts = reply.attempts;
            let mut settled = self.finish_reply(tenant, subject, ReplyOutcome::GiveUp { error })?;
            settled.attempts = attempts;
            if let Some(reply) = self.reply_mut(subject) {
                *reply = settled;
            }
            given_up.push(subject);
        }
        Ok(given_up)
    }

    /// The reply-queue state of `subject`, when it is in the queue.
    fn reply_mut(&mut self, subject: DecisionSubject) -> Option<&mut ReplyStatus> {
        match subject {
            DecisionSubject::Message(id) => self.messages.get_mut(&id)?.reply.as_mut(),
            DecisionSubject::Comment(id) => self.comments.get_mut(&id)?.reply.as_mut(),
        }
    }

    fn renew_reply_leases(
        &mut self,
        subjects: &[DecisionSubject],
        held_until: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> u64 {
        let mut renewed = 0;
        for subject in subjects {
            if let Some(reply) = self.reply_mut(*subject)
                && reply.state == ReplyState::Sending
                && reply.lease_until == Some(held_until)
            {
                reply.lease_until = Some(expires_at);
                renewed += 1;
            }
        }
        renewed
    }
}

#[async_trait]
impl ReplyQueueStore for MemoryStore {
    async fn claim_pending_replies(
        &self,
        now: DateTime<Utc>,
        since: Option<DateTime<Utc>>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedReply>> {
        self.lock().claim_pending_replies(now, since, limit, lease)
    }

    async fn finish_reply(
        &self,
        tenant: TenantId,
        subject: DecisionSubject,
        outcome: ReplyOutcome,
    ) -> Result<ReplyStatus> {
        self.lock().finish_reply(tenant, subject, outcome)
    }

    async fn expire_pending_replies(
        &self,
        now: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DecisionSubject>> {
        self.lock().expire_pending_replies(now, before, limit)
    }

    async fn withdraw_reply_claim(
        &self,
        tenant: TenantId,
        subject: DecisionSubject,
    ) -> Result<bool> {
        let mut inner = self.lock();
        match subject {
            DecisionSubject::Message(inbound) => {
                let Some(&reply_id) = inner.reply_by_inbound.get(&inbound) else {
                    return Ok(false);
                };
                let withdrawable = inner.messages.get(&reply_id).is_some_and(|m| {
                    m.tenant_id == tenant
                        && m.delivery_status == Some(DeliveryStatus::Pending)
                        && m.provider_message_id.is_none()
                });
                if withdrawable {
                    inner.messages.remove(&reply_id);
                    inner.reply_by_inbound.remove(&inbound);
                }
                Ok(withdrawable)
            }
            DecisionSubject::Comment(comment) => {
                let withdrawable = inner
                    .comment_replies
                    .get(&comment)
                    .is_some_and(|r| r.tenant_id == tenant && r.status == DeliveryStatus::Pending);
                if withdrawable {
                    inner.comment_replies.remove(&comment);
                }
                Ok(withdrawable)
            }
        }
    }

    async fn renew_reply_leases(
        &self,
        subjects: &[DecisionSubject],
        held_until: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u64> {
        Ok(self
            .lock()
            .renew_reply_leases(subjects, held_until, expires_at))
    }
}
