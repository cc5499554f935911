//! [`ReplyBatchStore`] on Postgres: a batch's contexts in two reads; its
//! claims and its settlements each in one transaction of set-based statements
//! over arrays (`UNNEST`), on the scan pool (keyed by the items and their
//! leases, across tenants).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    ClaimedReply, CommentId, ContactId, DecisionSubject, DeliveryStatus, MessageId, ReplyState,
    ReplyStatus, TenantId,
};
use uuid::Uuid;

use super::error::db;
use super::message_keys::{lock_keys, reply_lock};
use super::rows::{CommentRow, MessageRow};
use super::{PgStore, bound};
use crate::error::Result;
use crate::reply_batch::{
    ReplyBatchStore, ReplyClaim, ReplyClaimed, ReplyContext, ReplySettlement, check_claims,
    draft_of,
};

pub(super) fn parse_status(status: Option<String>) -> Option<DeliveryStatus> {
    status.and_then(|s| s.parse().ok())
}

/// Splits subjects into message ids and comment ids.
pub(super) fn split(subjects: impl Iterator<Item = DecisionSubject>) -> (Vec<Uuid>, Vec<Uuid>) {
    let (mut messages, mut comments) = (Vec::new(), Vec::new());
    for subject in subjects {
        match subject {
            DecisionSubject::Message(id) => messages.push(id.as_uuid()),
            DecisionSubject::Comment(id) => comments.push(id.as_uuid()),
        }
    }
    (messages, comments)
}

/// The reply-queue state of the items of `subjects`, locked, with each
/// item's tenant and (for a message) its conversation and channel.
type Locked = HashMap<DecisionSubject, (TenantId, Option<ReplyStatus>, Option<(Uuid, Uuid)>)>;

pub(super) async fn lock_items(
    tx: &mut sqlx::PgConnection,
    subjects: impl Iterator<Item = DecisionSubject>,
) -> Result<Locked> {
    let (messages, comments) = split(subjects);
    let mut locked = HashMap::new();
    if !messages.is_empty() {
        let rows: Vec<MessageRow> =
            sqlx::query_as("SELECT * FROM messages WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(&messages)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        for row in rows {
            let m = row.into_entity()?;
            locked.insert(
                DecisionSubject::Message(m.id),
                (
                    m.tenant_id,
                    m.reply,
                    Some((m.conversation_id.as_uuid(), m.channel_id.as_uuid())),
                ),
            );
        }
    }
    if !comments.is_empty() {
        let rows: Vec<CommentRow> =
            sqlx::query_as("SELECT * FROM comments WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(&comments)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        for row in rows {
            let c = row.into_entity()?;
            locked.insert(DecisionSubject::Comment(c.id), (c.tenant_id, c.reply, None));
        }
    }
    Ok(locked)
}

/// The held items of `claims` (of a tenant whose AI control is on, on a
/// channel whose auto-replies are not switched off: those are answered
/// `AiOff` and left as they are, as in memory) that a
/// person answered first: an agent reply sent to the message's conversation,
/// claimed once the message was stored (both by the store's clock), or to
/// the comment. They are made
/// `superseded`, their lease released, in the claim's transaction (their
/// rows are locked).
async fn supersede_answered(
    tx: &mut sqlx::PgConnection,
    locked: &Locked,
    claims: &[ReplyClaim],
    on: &HashSet<Uuid>,
    switched_off: &HashSet<Uuid>,
) -> Result<HashSet<DecisionSubject>> {
    let (messages, comments) = split(
        claims
            .iter()
            .filter(|c| on.contains(&c.tenant_id.as_uuid()))
            .filter(|c| !switched_off.contains(&c.subject.uuid()))
            .filter(|c| held(locked, c.tenant_id, c.subject, c.lease_until))
            .map(|c| c.subject),
    );
    if messages.is_empty() && comments.is_empty() {
        return Ok(HashSet::new());
    }
    let (m, c): (Vec<Uuid>, Vec<Uuid>) = sqlx::query_as::<_, (Option<Uuid>, Option<Uuid>)>(
        "WITH m AS ( \
             UPDATE messages t SET reply_state = 'superseded', reply_lease_until = NULL, \
                 reply_next_at = NULL \
             WHERE t.id = ANY($1) AND EXISTS (SELECT 1 FROM agent_replies a \
                 WHERE a.tenant_id = t.tenant_id AND a.conversation_id = t.conversation_id \
                     AND a.state = 'sent' AND a.created_at >= t.stored_at) \
             RETURNING t.id \
         ), c AS ( \
             UPDATE comments t SET reply_state = 'superseded', reply_lease_until = NULL, \
                 reply_next_at = NULL \
             WHERE t.id = ANY($2) AND EXISTS (SELECT 1 FROM agent_replies a \
                 WHERE a.tenant_id = t.tenant_id AND a.comment_id = t.id AND a.state = 'sent') \
             RETURNING t.id \
         ) \
         SELECT id, NULL::uuid FROM m UNION ALL SELECT NULL::uuid, id FROM c",
    )
    .bind(&messages)
    .bind(&comments)
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?
    .into_iter()
    .fold((Vec::new(), Vec::new()), |(mut m, mut c), (mi, ci)| {
        m.extend(mi);
        c.extend(ci);
        (m, c)
    });
    Ok(m.into_iter()
        .map(|id| DecisionSubject::Message(MessageId::from_uuid(id)))
        .chain(
            c.into_iter()
                .map(|id| DecisionSubject::Comment(CommentId::from_uuid(id))),
        )
        .collect())
}

/// Whether the locked item is the tenant's and `sending` under `lease`.
pub(super) fn held(
    locked: &Locked,
    tenant: TenantId,
    subject: DecisionSubject,
    lease: DateTime<Utc>,
) -> bool {
    locked.get(&subject).is_some_and(|(t, reply, _)| {
        *t == tenant
            && reply.as_ref().is_some_and(|r| {
                // To the microsecond, as stored (and as a bound parameter is).
                r.state == ReplyState::Sending
                    && r.lease_until.map(|t| t.timestamp_micros())
                        == Some(bound(lease).timestamp_micros())
            })
    })
}

#[async_trait]
impl ReplyBatchStore for PgStore {
    async fn reply_contexts(&self, items: &[ClaimedReply]) -> Result<Vec<ReplyContext>> {
        let mut contexts = vec![ReplyContext::default(); items.len()];
        let (mut m_tenants, mut m_ids, mut m_created, mut m_at) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut c_tenants, mut c_ids, mut c_at) = (Vec::new(), Vec::new(), Vec::new());
        for (i, item) in items.iter().enumerate() {
            let at = i64::try_from(i).unwrap_or(i64::MAX);
            match item {
                ClaimedReply::Message(m) => {
                    m_tenants.push(m.tenant_id.as_uuid());
                    m_ids.push(m.id.as_uuid());
                    m_created.push(m.created_at);
                    m_at.push(at);
                }
                ClaimedReply::Comment(c) => {
                    c_tenants.push(c.tenant_id.as_uuid());
                    c_ids.push(c.id.as_uuid());
                    c_at.push(at);
                }
            }
        }
        // Cross-tenant reads keyed by the claimed items. A message is read by
        // its whole primary key (id and month), so the plan is index probes
        // whether or not the partitions have statistics yet (migration 0036).
        if !m_ids.is_empty() {
            type Row = (
                i64,
                Option<Uuid>,
                Option<String>,
                Option<String>,
                Option<serde_json::Value>,
                Option<String>,
            );
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT u.at, ct.id, ct.display_name, \
                     (SELECT h.external_handle FROM contact_channels h \
                      WHERE h.tenant_id = m.tenant_id AND h.contact_id = ct.id \
                          AND h.platform = ch.platform \
                      ORDER BY h.created_at, h.id LIMIT 1), \
                     d.snapshot, \
                     (SELECT r.delivery_status FROM messages r \
                      WHERE r.tenant_id = m.tenant_id AND r.direction = 'outbound' \
                          AND r.in_reply_to = m.id) \
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[], $4::timestamptz[]) \
                     AS u(tenant_id, id, at, created_at) \
                 JOIN messages m ON m.id = u.id AND m.created_at = u.created_at \
                     AND m.tenant_id = u.tenant_id \
                 LEFT JOIN conversations cv ON cv.id = m.conversation_id \
                     AND cv.tenant_id = m.tenant_id \
                 LEFT JOIN contacts ct ON ct.id = cv.contact_id AND ct.tenant_id = m.tenant_id \
                 LEFT JOIN channels ch ON ch.id = m.channel_id AND ch.tenant_id = m.tenant_id \
                 LEFT JOIN ai_decisions d ON d.id = m.ai_decision_id \
                     AND d.tenant_id = m.tenant_id",
            )
            .bind(&m_tenants)
            .bind(&m_ids)
            .bind(&m_at)
            .bind(&m_created)
            .fetch_all(&self.scan_pool)
            .await
            .map_err(db)?;
            for (at, contact, name, handle, snapshot, existing) in rows {
                let Some(slot) = usize::try_from(at).ok().and_then(|i| contexts.get_mut(i)) else {
                    continue;
                };
                *slot = ReplyContext {
                    contact_id: contact.map(ContactId::from_uuid),
                    contact_name: name,
                    recipient: handle,
                    draft: snapshot.as_ref().and_then(draft_of),
                    // An outbound reply with no status counts as pending.
                    existing_reply: existing
                        .map(|s| parse_status(Some(s)).unwrap_or(DeliveryStatus::Pending)),
                };
            }
        }
        if !c_ids.is_empty() {
            type Row = (i64, Option<serde_json::Value>, Option<String>);
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT u.at, d.snapshot, r.status \
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[]) AS u(tenant_id, id, at) \
                 JOIN comments c ON c.id = u.id AND c.tenant_id = u.tenant_id \
                 LEFT JOIN ai_decisions d ON d.id = c.ai_decision_id \
                     AND d.tenant_id = c.tenant_id \
                 LEFT JOIN comment_replies r ON r.comment_id = c.id \
                     AND r.tenant_id = c.tenant_id",
            )
            .bind(&c_tenants)
            .bind(&c_ids)
            .bind(&c_at)
            .fetch_all(&self.scan_pool)
            .await
            .map_err(db)?;
            for (at, snapshot, existing) in rows {
                let Some(slot) = usize::try_from(at).ok().and_then(|i| contexts.get_mut(i)) else {
                    continue;
                };
                *slot = ReplyContext {
                    draft: snapshot.as_ref().and_then(draft_of),
                    existing_reply: parse_status(existing),
                    ..ReplyContext::default()
                };
            }
        }
        Ok(contexts)
    }

    async fn claim_replies(&self, claims: &[ReplyClaim]) -> Result<Vec<ReplyClaimed>> {
        check_claims(claims)?;
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        // READ COMMITTED whatever the server's default: the stored replies
        // are checked after their locks are taken (below).
        let mut tx = self
            .scan_pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(db)?;
        let locked = lock_items(&mut tx, claims.iter().map(|c| c.subject)).await?;
        let tenants: Vec<Uuid> = claims
            .iter()
            .map(|c| c.tenant_id.as_uuid())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let on: Vec<Uuid> = sqlx::query_scalar(
            "SELECT tenant_id FROM ai_controls WHERE tenant_id = ANY($1) AND enabled",
        )
        .bind(&tenants)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let on: HashSet<Uuid> = on.into_iter().collect();
        // Items whose channel the tenant switched auto-replies off on, read
        // in the claim's transaction (their rows are locked), as the AI
        // switch is: a worker's cached settings may be older.
        let (messages, comments) = split(claims.iter().map(|c| c.subject));
        let switched_off: HashSet<Uuid> = sqlx::query_scalar(
            "SELECT t.id FROM messages t JOIN tenant_settings s ON s.tenant_id = t.tenant_id \
             WHERE t.id = ANY($1) \
                 AND s.settings -> 'auto_reply_off_channels' ? t.channel_id::text \
             UNION ALL \
             SELECT t.id FROM comments t JOIN tenant_settings s ON s.tenant_id = t.tenant_id \
             WHERE t.id = ANY($2) \
                 AND s.settings -> 'auto_reply_off_channels' ? t.channel_id::text",
        )
        .bind(&messages)
        .bind(&comments)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
        .into_iter()
        .collect();
        let superseded = supersede_answered(&mut tx, &locked, claims, &on, &switched_off).await?;
        let mut answer = Vec::with_capacity(claims.len());
        let (mut m_ids, mut m_tenants, mut m_convs, mut m_channels) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut m_inbound, mut m_texts, mut m_at) = (Vec::new(), Vec::new(), Vec::new());
        let (mut c_ids, mut c_tenants, mut c_texts, mut c_at) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for claim in claims {
            if !held(&locked, claim.tenant_id, claim.subject, claim.lease_until) {
                answer.push(ReplyClaimed::LeaseLost);
                continue;
            }
            if !on.contains(&claim.tenant_id.as_uuid())
                || switched_off.contains(&claim.subject.uuid())
            {
                answer.push(ReplyClaimed::AiOff);
                continue;
            }
            if superseded.contains(&claim.subject) {
                answer.push(ReplyClaimed::Superseded);
                continue;
            }
            // Filled in below.
            answer.push(ReplyClaimed::Existing(None));
            match claim.subject {
                DecisionSubject::Message(id) => {
                    // Held, so locked above: the tenant's message.
                    let (conv, channel) = locked
                        .get(&claim.subject)
                        .and_then(|(_, _, c)| *c)
                        .unwrap_or_default();
                    m_ids.push(MessageId::generate().as_uuid());
                    m_tenants.push(claim.tenant_id.as_uuid());
                    m_convs.push(conv);
                    m_channels.push(channel);
                    m_inbound.push(id.as_uuid());
                    m_texts.push(claim.text.as_str());
                    m_at.push(claim.at);
                }
                DecisionSubject::Comment(id) => {
                    c_ids.push(id.as_uuid());
                    c_tenants.push(claim.tenant_id.as_uuid());
                    c_texts.push(claim.text.as_str());
                    c_at.push(claim.at);
                }
            }
        }
        let mut outcome: HashMap<DecisionSubject, ReplyClaimed> = HashMap::new();
        if !m_ids.is_empty() {
            // As `insert_message` does for each: inserted unless a reply to
            // the same message is stored (checked here, under the same
            // transaction locks `insert_message` takes: messages are
            // partitioned by month, so no unique key spans them); each
            // conversation's `last_message_at` moves to its latest new
            // message. The message answered was read above, locked, in its
            // tenant's scope (`held`): its conversation and channel come
            // from there, not from a second lookup by id.
            let mut answered = m_inbound.clone();
            answered.sort_unstable();
            let keys: Vec<String> = answered.into_iter().map(reply_lock).collect();
            lock_keys(&mut tx, &keys).await.map_err(db)?;
            let inserted: Vec<(Uuid, Uuid)> = sqlx::query_as(
                "WITH ins AS ( \
                     INSERT INTO messages (id, tenant_id, conversation_id, channel_id, \
                         direction, text, has_media, provider_message_id, in_reply_to, triage, \
                         confidence, ai_decision_id, delivery_status, created_at, stored_at) \
                     SELECT u.id, u.tenant_id, u.conversation_id, u.channel_id, 'outbound', \
                         u.text, FALSE, NULL, u.in_reply_to, NULL, NULL, NULL, 'pending', \
                         u.at, u.at \
                     FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], \
                         $6::timestamptz[], $7::uuid[]) WITH ORDINALITY \
                         AS u(id, tenant_id, conversation_id, in_reply_to, text, at, channel_id, ord) \
                     WHERE NOT EXISTS (SELECT 1 FROM messages r \
                         WHERE r.in_reply_to = u.in_reply_to AND r.direction = 'outbound') \
                     ORDER BY u.ord \
                     ON CONFLICT DO NOTHING \
                     RETURNING id, in_reply_to, conversation_id, created_at \
                 ), bump AS ( \
                     UPDATE conversations c \
                     SET last_message_at = GREATEST(c.last_message_at, b.at) \
                     FROM (SELECT conversation_id, max(created_at) AS at FROM ins \
                           GROUP BY conversation_id) b \
                     WHERE c.id = b.conversation_id \
                 ) \
                 SELECT id, in_reply_to FROM ins",
            )
            .bind(&m_ids)
            .bind(&m_tenants)
            .bind(&m_convs)
            .bind(&m_inbound)
            .bind(&m_texts)
            .bind(&m_at)
            .bind(&m_channels)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            for (id, inbound) in inserted {
                outcome.insert(
                    DecisionSubject::Message(MessageId::from_uuid(inbound)),
                    ReplyClaimed::Claimed(Some(MessageId::from_uuid(id))),
                );
            }
            let taken: Vec<Uuid> = m_inbound
                .iter()
                .copied()
                .filter(|id| {
                    !outcome.contains_key(&DecisionSubject::Message(MessageId::from_uuid(*id)))
                })
                .collect();
            if !taken.is_empty() {
                let rows: Vec<(Uuid, Option<String>)> = sqlx::query_as(
                    "SELECT in_reply_to, delivery_status FROM messages \
                     WHERE direction = 'outbound' AND in_reply_to = ANY($1)",
                )
                .bind(&taken)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
                for (inbound, status) in rows {
                    outcome.insert(
                        DecisionSubject::Message(MessageId::from_uuid(inbound)),
                        ReplyClaimed::Existing(parse_status(status)),
                    );
                }
            }
        }
        if !c_ids.is_empty() {
            let inserted: Vec<Uuid> = sqlx::query_scalar(
                "INSERT INTO comment_replies (comment_id, tenant_id, text, status, \
                     platform_comment_id, error, created_at, updated_at) \
                 SELECT u.comment_id, u.tenant_id, u.text, 'pending', NULL, NULL, u.at, u.at \
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[]) \
                     AS u(comment_id, tenant_id, text, at) \
                 ON CONFLICT (comment_id) DO NOTHING \
                 RETURNING comment_id",
            )
            .bind(&c_ids)
            .bind(&c_tenants)
            .bind(&c_texts)
            .bind(&c_at)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            let inserted: HashSet<Uuid> = inserted.into_iter().collect();
            let taken: Vec<Uuid> = c_ids
                .iter()
                .copied()
                .filter(|id| !inserted.contains(id))
                .collect();
            for id in inserted {
                outcome.insert(
                    DecisionSubject::Comment(nexiom_core::CommentId::from_uuid(id)),
                    ReplyClaimed::Claimed(None),
                );
            }
            if !taken.is_empty() {
                let rows: Vec<(Uuid, String)> = sqlx::query_as(
                    "SELECT comment_id, status FROM comment_replies WHERE comment_id = ANY($1)",
                )
                .bind(&taken)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
                for (id, status) in rows {
                    outcome.insert(
                        DecisionSubject::Comment(nexiom_core::CommentId::from_uuid(id)),
                        ReplyClaimed::Existing(parse_status(Some(status))),
                    );
                }
            }
        }
        tx.commit().await.map_err(db)?;
        for (slot, claim) in answer.iter_mut().zip(claims) {
            if *slot == ReplyClaimed::Existing(None)
                && let Some(found) = outcome.get(&claim.subject)
            {
                *slot = *found;
            }
        }
        Ok(answer)
    }

    async fn settle_replies(
        &self,
        settlements: &[ReplySettlement],
        at: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        super::reply_settle::settle_replies(self, settlements, at).await
    }
}
