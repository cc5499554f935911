//! The reply queue's claim on Postgres, shared among channels: each
//! channel's oldest due item through the queue's partial indexes (led by
//! the channel), then rounds of `FOR UPDATE SKIP LOCKED` reads per channel,
//! then one update per kind of item.

use chrono::{DateTime, Utc};
use nexiom_core::{ChannelId, ClaimedReply, DecisionSubject, DeliveryStatus, Triage};
use uuid::Uuid;

use super::error::db;
use super::rows::{CommentRow, MessageRow};
use super::{PgStore, bound, limit};
use crate::error::Result;
use crate::fair_claim::{FairRounds, QueuePlace};

/// The advisory lock that serializes reply claims: a claim reads each
/// channel's oldest due item without locking it, so two claims at once
/// would choose the same channels and the second would find their items
/// locked. Held until commit: a claim's statements take tens of
/// milliseconds (about 0.1 s for 2,000 items).
const REPLY_CLAIM_LOCK: i64 = 0x006e_7872_6570_6c79;

/// The conditions under which an item `t` of `table` (`messages` or
/// `comments`) is claimable; `$1` now, `$2` since (the earliest time when
/// the caller gave none, so that a `since` prunes the older partitions).
/// Items of a tenant whose AI control is off, of a paused channel, or of a
/// channel whose auto-replies the tenant switched off are left where they
/// are (not claimed and handed back, which would keep the oldest of them at
/// the head of the queue, run after run). A message behind an older one of
/// its conversation that waits (its retry not due yet, or its reply in
/// flight with another worker) waits too, so that a conversation's replies
/// go out in order (the older ones' probe reads the conversation index from
/// `since`, the window the queue answers in). Items of a channel held by a
/// platform's throttle (`channel_throttles`, written by whichever process
/// met it: a publish, a poll, a reply) wait for its end.
fn due_where(table: &str) -> String {
    let inbound = if table == "messages" {
        "AND t.direction = 'inbound' \
         AND NOT EXISTS (SELECT 1 FROM messages o \
             WHERE o.conversation_id = t.conversation_id \
                 AND o.created_at >= $2 \
                 AND (o.created_at, o.id) < (t.created_at, t.id) \
                 AND o.direction = 'inbound' \
                 AND ((o.reply_state = 'pending' AND o.reply_next_at > $1) \
                      OR (o.reply_state = 'sending' AND o.reply_lease_until > $1))) "
    } else {
        ""
    };
    format!(
        "{} {inbound}AND t.created_at >= $2 \
         AND t.channel_id NOT IN (SELECT channel_id FROM channel_throttles WHERE until > $1)",
        claimable(table)
    )
}

/// The conditions under which an item `t` of `table` would be claimable
/// whatever its age: due at `$1` (`pending` with its retry due, or `sending`
/// with its lease ended), its tenant's AI control ON, its channel active and
/// its auto-replies not switched off; a comment not hidden on the platform
/// (a brand does not answer what it hid; shown again, it is answered).
fn claimable(table: &str) -> String {
    let shown = if table == "comments" {
        "AND NOT t.hidden "
    } else {
        ""
    };
    format!("{}{shown}", CLAIMABLE)
}

/// [`claimable`]'s conditions common to both tables.
const CLAIMABLE: &str = "t.reply_state IN ('pending', 'sending') \
     AND ((t.reply_state = 'pending' \
             AND (t.reply_next_at IS NULL OR t.reply_next_at <= $1)) \
          OR (t.reply_state = 'sending' \
             AND (t.reply_lease_until IS NULL OR t.reply_lease_until <= $1))) \
     AND EXISTS (SELECT 1 FROM ai_controls a \
                 WHERE a.tenant_id = t.tenant_id AND a.enabled) \
     AND t.channel_id NOT IN (SELECT id FROM channels WHERE status <> 'active') \
     AND NOT EXISTS (SELECT 1 FROM tenant_settings s \
                 WHERE s.tenant_id = t.tenant_id \
                     AND s.settings -> 'auto_reply_off_channels' ? t.channel_id::text) ";

/// The oldest `$3` items of `table` that would be claimable but were created
/// before `$2` (hidden comments too), locked (another writer's rows
/// skipped), each with the status of the reply stored for a `sending` one
/// (`pending` for a message reply with none yet; NULL when none is stored);
/// `$1` now.
fn expired_sql(table: &str) -> String {
    let stored = if table == "messages" {
        "(SELECT coalesce(r.delivery_status, 'pending') FROM messages r \
             WHERE r.tenant_id = t.tenant_id AND r.direction = 'outbound' \
                 AND r.in_reply_to = t.id LIMIT 1)"
    } else {
        "(SELECT r.status FROM comment_replies r WHERE r.comment_id = t.id)"
    };
    format!(
        "SELECT t.id, t.created_at, \
             CASE WHEN t.reply_state = 'sending' THEN {stored} END \
         FROM {table} t \
         WHERE {CLAIMABLE} AND t.created_at < $2 \
         ORDER BY t.created_at, t.id \
         LIMIT $3 \
         FOR UPDATE OF t SKIP LOCKED"
    )
}

/// Gives up `$1` ids (created at `$2`) of `table` with the errors `$3`,
/// escalated (`$4`), attempts left as they are; a hidden comment is made
/// `superseded` instead, without escalation (what the brand hid pages no
/// one); an item whose error is NULL (its stored reply was taken by the
/// platform) is made `sent`.
fn give_up_sql(table: &str) -> String {
    let hidden = if table == "comments" {
        "t.hidden"
    } else {
        "FALSE"
    };
    format!(
        "UPDATE {table} t SET \
             reply_state = CASE WHEN u.error IS NULL THEN 'sent' \
                 WHEN {hidden} THEN 'superseded' ELSE 'given_up' END, \
             reply_error = CASE WHEN u.error IS NULL THEN NULL \
                 WHEN {hidden} THEN t.reply_error ELSE u.error END, \
             reply_next_at = NULL, reply_lease_until = NULL, \
             triage = CASE WHEN u.error IS NULL OR {hidden} THEN t.triage ELSE $4 END \
         FROM unnest($1::uuid[], $2::timestamptz[], $3::text[]) AS u(id, created_at, error) \
         WHERE t.id = u.id AND t.created_at = u.created_at"
    )
}

/// The `$3` channels of `table` whose oldest claimable item is oldest, with
/// that item: the channels holding queue items from `since` are walked
/// through the queue's partial index (migration 0045; a probe per channel
/// steps over queue items older than `since`, not over a channel's backlog),
/// those whose items cannot be claimed now (paused, AI control OFF,
/// auto-replies switched off) are left out before their items are read,
/// and each other channel's oldest due item is found in its own index range
/// (stepping over its items in flight or waiting for a retry). Nothing is
/// locked.
fn heads_sql(table: &str) -> String {
    let due = due_where(table);
    format!(
        "WITH RECURSIVE queued(c) AS ( \
             (SELECT channel_id FROM {table} \
              WHERE reply_state IN ('pending', 'sending') AND created_at >= $2 \
              ORDER BY channel_id LIMIT 1) \
             UNION ALL \
             SELECT (SELECT channel_id FROM {table} \
                     WHERE reply_state IN ('pending', 'sending') AND created_at >= $2 \
                         AND channel_id > q.c \
                     ORDER BY channel_id LIMIT 1) \
             FROM queued q WHERE q.c IS NOT NULL \
         ) \
         SELECT h.channel_id, h.created_at, h.id FROM queued q \
         JOIN channels k ON k.id = q.c AND k.status = 'active' \
             AND EXISTS (SELECT 1 FROM ai_controls a \
                         WHERE a.tenant_id = k.tenant_id AND a.enabled) \
             AND NOT EXISTS (SELECT 1 FROM tenant_settings s \
                         WHERE s.tenant_id = k.tenant_id \
                             AND s.settings -> 'auto_reply_off_channels' ? k.id::text) \
         CROSS JOIN LATERAL ( \
             SELECT t.channel_id, t.created_at, t.id FROM {table} t \
             WHERE t.channel_id = q.c AND {due} \
             ORDER BY t.created_at, t.id \
             LIMIT 1 \
         ) h \
         ORDER BY h.created_at, h.id \
         LIMIT $3"
    )
}

/// A round's read of `table`: the oldest `$3` claimable items of each
/// channel in `$4` after its `($5, $6)`, locked (another claimer's
/// statement skips them); `$1` now, `$2` since.
fn round_sql(table: &str) -> String {
    let due = due_where(table);
    format!(
        "SELECT x.channel_id, x.created_at, x.id \
         FROM unnest($4::uuid[], $5::timestamptz[], $6::uuid[]) AS ch(c, after_at, after_id) \
         CROSS JOIN LATERAL ( \
             SELECT t.channel_id, t.created_at, t.id FROM {table} t \
             WHERE t.channel_id = ch.c AND (t.created_at, t.id) > (ch.after_at, ch.after_id) \
                 AND {due} \
             ORDER BY t.created_at, t.id \
             LIMIT $3 \
             FOR UPDATE OF t SKIP LOCKED \
         ) x"
    )
}

/// Marks `ids` of `table` claimed until `$2`.
fn claim_sql(table: &str) -> String {
    format!(
        "UPDATE {table} SET reply_state = 'sending', reply_lease_until = $2 \
         WHERE id = ANY($1) RETURNING *"
    )
}

fn table(message: bool) -> &'static str {
    if message { "messages" } else { "comments" }
}

impl PgStore {
    /// `ReplyQueueStore::expire_pending_replies`: per table, the items read
    /// and locked, then given up in one statement, in one transaction (the
    /// escalation notifications come from the triage trigger).
    pub(super) async fn expire_replies(
        &self,
        now: DateTime<Utc>,
        before: DateTime<Utc>,
        max: u32,
    ) -> Result<Vec<DecisionSubject>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.scan_pool.begin().await.map_err(db)?;
        let mut found: Vec<(DateTime<Utc>, Uuid, bool, Option<String>)> = Vec::new();
        for message in [true, false] {
            let rows: Vec<(Uuid, DateTime<Utc>, Option<String>)> =
                sqlx::query_as(&expired_sql(table(message)))
                    .bind(bound(now))
                    .bind(bound(before))
                    .bind(limit(max))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
            found.extend(
                rows.into_iter()
                    .map(|(id, at, stored)| (at, id, message, stored)),
            );
        }
        // The oldest `max` of both tables (the others stay, unlocked at commit).
        found.sort();
        found.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        for message in [true, false] {
            let rows: Vec<&(DateTime<Utc>, Uuid, bool, Option<String>)> =
                found.iter().filter(|r| r.2 == message).collect();
            if rows.is_empty() {
                continue;
            }
            let ids: Vec<Uuid> = rows.iter().map(|r| r.1).collect();
            let created: Vec<DateTime<Utc>> = rows.iter().map(|r| r.0).collect();
            let errors: Vec<Option<String>> = rows
                .iter()
                .map(|r| {
                    let stored = super::reply_batch::parse_status(r.3.clone());
                    // A stored reply whose status cannot be read is of
                    // unknown outcome, as a pending one.
                    let stored =
                        r.3.as_ref()
                            .map(|_| stored.unwrap_or(DeliveryStatus::Pending));
                    crate::reply_queue::expiry(r.0, before, stored)
                })
                .collect();
            sqlx::query(&give_up_sql(table(message)))
                .bind(&ids)
                .bind(&created)
                .bind(&errors)
                .bind(Triage::Escalate.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(found
            .into_iter()
            .map(|(_, id, message, _)| {
                if message {
                    DecisionSubject::Message(id.into())
                } else {
                    DecisionSubject::Comment(id.into())
                }
            })
            .collect())
    }

    /// `ReplyQueueStore::claim_pending_replies` once its arguments are
    /// checked: `max > 0`, the leases until `until`.
    pub(super) async fn claim_replies_fairly(
        &self,
        now: DateTime<Utc>,
        since: Option<DateTime<Utc>>,
        max: u32,
        until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedReply>> {
        let since = bound(since.unwrap_or(DateTime::<Utc>::MIN_UTC));
        // The start of time as PostgreSQL stores it, and no id before it.
        let start = (bound(DateTime::<Utc>::MIN_UTC), Uuid::nil());
        // A cross-tenant scan.
        let mut tx = self.scan_pool.begin().await.map_err(db)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(REPLY_CLAIM_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // The reads below join a list of channels to the partitioned
        // `messages`; planning them anew at every claim (PostgreSQL's
        // custom plans for a statement's first runs) cost as much as a
        // third of their run, and their shape does not depend on the values.
        // (Not with sequential scans off, as the inbox refresh has them since
        // migration 0034: measured, that made planning these statements take
        // about a second and running them 0.5 s. Known cost of the generic
        // plans: one made while next month's partition is still empty may
        // scan it whole once it fills, until autovacuum analyzes it, a minute
        // or two after the month's first rows.)
        sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let mut heads = Vec::new();
        for message in [true, false] {
            let rows: Vec<(Uuid, DateTime<Utc>, Uuid)> = sqlx::query_as(&heads_sql(table(message)))
                .bind(bound(now))
                .bind(since)
                .bind(limit(max))
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            heads.extend(rows.into_iter().map(|row| (place(row), message)));
        }
        // Every read row stays locked until commit; those not claimed are
        // left untouched.
        let mut rounds = FairRounds::new(&heads, max);
        while let Some((share, lanes)) = rounds.next() {
            let mut read = Vec::new();
            for message in [true, false] {
                let lanes: Vec<_> = lanes.iter().filter(|l| l.kind == message).collect();
                if lanes.is_empty() {
                    continue;
                }
                let (after_at, after_id): (Vec<DateTime<Utc>>, Vec<Uuid>) =
                    lanes.iter().map(|l| l.after.unwrap_or(start)).unzip();
                let channel_ids: Vec<Uuid> = lanes.iter().map(|l| l.channel.as_uuid()).collect();
                let rows: Vec<(Uuid, DateTime<Utc>, Uuid)> =
                    sqlx::query_as(&round_sql(table(message)))
                        .bind(bound(now))
                        .bind(since)
                        .bind(limit(share))
                        .bind(&channel_ids)
                        .bind(&after_at)
                        .bind(&after_id)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db)?;
                read.extend(rows.into_iter().map(|row| (place(row), message)));
            }
            rounds.record(read);
        }
        let picked = rounds.finish();
        let mut claimed = Vec::with_capacity(picked.len());
        for message in [true, false] {
            let ids: Vec<Uuid> = picked
                .iter()
                .filter(|(_, m)| *m == message)
                .map(|(p, _)| p.id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let query = claim_sql(table(message));
            let query = sqlx::query(&query).bind(&ids).bind(bound(until));
            let rows = query.fetch_all(&mut *tx).await.map_err(db)?;
            for row in &rows {
                claimed.push(if message {
                    ClaimedReply::Message(
                        <MessageRow as sqlx::FromRow<_>>::from_row(row)
                            .map_err(db)?
                            .into_entity()?,
                    )
                } else {
                    ClaimedReply::Comment(
                        <CommentRow as sqlx::FromRow<_>>::from_row(row)
                            .map_err(db)?
                            .into_entity()?,
                    )
                });
            }
        }
        tx.commit().await.map_err(db)?;
        claimed.sort_by_key(|c| {
            let id = match c.subject() {
                DecisionSubject::Message(id) => id.as_uuid(),
                DecisionSubject::Comment(id) => id.as_uuid(),
            };
            (c.created_at(), id)
        });
        Ok(claimed)
    }
}

fn place((channel, at, id): (Uuid, DateTime<Utc>, Uuid)) -> QueuePlace {
    QueuePlace {
        channel: ChannelId::from_uuid(channel),
        at,
        id,
    }
}
