//! [`ReplyBatchStore::settle_replies`](crate::ReplyBatchStore::settle_replies)
//! on Postgres: the platform's answers recorded whatever the lease, then the
//! outcomes applied under it, in one transaction of set-based statements.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use nexiom_core::{DecisionSubject, ReplyOutcome, ReplyStatus, Triage};
use uuid::Uuid;

use super::conversation::DELIVERY_RANK;
use super::error::db;
use super::message_keys::{lock_keys, message_key_lock};
use super::reply_batch::{held, lock_items};
use super::{PgStore, bound};
use crate::error::Result;
use crate::reply_batch::{ReplySettlement, check_settlements};
use crate::reply_queue::apply;

pub(super) async fn settle_replies(
    store: &PgStore,
    settlements: &[ReplySettlement],
    at: DateTime<Utc>,
) -> Result<Vec<bool>> {
    check_settlements(settlements)?;
    if settlements.is_empty() {
        return Ok(Vec::new());
    }
    // READ COMMITTED whatever the server's default: the provider ids are
    // checked after their locks are taken (below).
    let mut tx = store
        .scan_pool
        .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .map_err(db)?;
    let locked = lock_items(&mut tx, settlements.iter().map(|s| s.subject)).await?;
    // The answers, recorded whatever the lease.
    let (mut am_tenants, mut am_inbound, mut am_ids, mut am_status, mut am_rank) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ac_tenants, mut ac_ids, mut ac_status, mut ac_pids, mut ac_errors) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // One provider id named by two answers of the batch goes to the
    // first only (the statement below reads the messages as they were).
    let mut named = HashSet::new();
    for s in settlements {
        let Some(answer) = &s.answer else { continue };
        match s.subject {
            DecisionSubject::Message(id) => {
                am_tenants.push(s.tenant_id.as_uuid());
                am_inbound.push(id.as_uuid());
                am_ids.push(
                    answer
                        .provider_id
                        .as_deref()
                        .filter(|p| named.insert((s.tenant_id, *p))),
                );
                am_status.push(answer.status.as_str());
                am_rank.push(i32::from(answer.status.rank()));
            }
            DecisionSubject::Comment(id) => {
                ac_tenants.push(s.tenant_id.as_uuid());
                ac_ids.push(id.as_uuid());
                ac_status.push(answer.status.as_str());
                ac_pids.push(answer.provider_id.as_deref());
                ac_errors.push(answer.error.as_deref());
            }
        }
    }
    if !am_inbound.is_empty() {
        // A provider id is set only where no other message of the
        // channel holds it (locked and checked as `insert_message` does:
        // the unique key holds the month); the status is recorded all
        // the same.
        let mut keys: Vec<String> = am_tenants
            .iter()
            .zip(&am_ids)
            .filter_map(|(tenant, pid)| pid.map(|p| message_key_lock(*tenant, p)))
            .collect();
        keys.sort();
        keys.dedup();
        lock_keys(&mut tx, &keys).await.map_err(db)?;
        let sql = format!(
            "UPDATE messages SET \
                 provider_message_id = CASE WHEN messages.provider_message_id IS NULL \
                     AND NOT EXISTS (SELECT 1 FROM messages o \
                         WHERE o.channel_id = messages.channel_id \
                             AND o.provider_message_id = u.pid AND o.id <> messages.id) \
                     THEN u.pid ELSE messages.provider_message_id END, \
                 delivery_status = CASE WHEN delivery_status IS NULL OR {DELIVERY_RANK} < u.rank \
                     THEN u.status ELSE delivery_status END \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int4[]) \
                 AS u(tenant, inbound, pid, status, rank) \
             WHERE messages.tenant_id = u.tenant AND messages.direction = 'outbound' \
                 AND messages.in_reply_to = u.inbound"
        );
        sqlx::query(&sql)
            .bind(&am_tenants)
            .bind(&am_inbound)
            .bind(&am_ids)
            .bind(&am_status)
            .bind(&am_rank)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    if !ac_ids.is_empty() {
        sqlx::query(
            "UPDATE comment_replies r SET status = u.status, \
                 platform_comment_id = COALESCE(u.pid, r.platform_comment_id), \
                 error = u.error, updated_at = $6 \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[]) \
                 AS u(tenant, comment_id, status, pid, error) \
             WHERE r.tenant_id = u.tenant AND r.comment_id = u.comment_id",
        )
        .bind(&ac_tenants)
        .bind(&ac_ids)
        .bind(&ac_status)
        .bind(&ac_pids)
        .bind(&ac_errors)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    // The outcomes, each applied as `finish_reply` does, under the lease.
    let mut applied = Vec::with_capacity(settlements.len());
    let mut rows: [Vec<(Uuid, ReplyStatus, bool)>; 2] = [Vec::new(), Vec::new()];
    for s in settlements {
        let Some((tenant, Some(current), _)) = locked.get(&s.subject) else {
            applied.push(false);
            continue;
        };
        let any_state = s.outcome == ReplyOutcome::Sent;
        if *tenant != s.tenant_id
            || !(any_state || held(&locked, s.tenant_id, s.subject, s.lease_until))
        {
            applied.push(false);
            continue;
        }
        let mut reply = current.clone();
        let escalate = apply(&mut reply, s.outcome.clone());
        applied.push(true);
        if reply != *current {
            let (slot, id) = match s.subject {
                DecisionSubject::Message(id) => (0, id.as_uuid()),
                DecisionSubject::Comment(id) => (1, id.as_uuid()),
            };
            rows[slot].push((id, reply, escalate));
        }
    }
    for (table, rows) in ["messages", "comments"].into_iter().zip(rows) {
        if rows.is_empty() {
            continue;
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
        let states: Vec<&str> = rows.iter().map(|r| r.1.state.as_str()).collect();
        let attempts: Vec<i64> = rows.iter().map(|r| i64::from(r.1.attempts)).collect();
        let errors: Vec<Option<&str>> = rows.iter().map(|r| r.1.error.as_deref()).collect();
        let next: Vec<Option<DateTime<Utc>>> =
            rows.iter().map(|r| r.1.next_at.map(bound)).collect();
        let leases: Vec<Option<DateTime<Utc>>> =
            rows.iter().map(|r| r.1.lease_until.map(bound)).collect();
        let escalate: Vec<bool> = rows.iter().map(|r| r.2).collect();
        let sql = format!(
            "UPDATE {table} t SET reply_state = u.state, reply_attempts = u.attempts, \
                 reply_error = u.error, reply_next_at = u.next_at, \
                 reply_lease_until = u.lease_until, \
                 triage = CASE WHEN u.escalate THEN $8 ELSE t.triage END \
             FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::text[], \
                 $5::timestamptz[], $6::timestamptz[], $7::bool[]) \
                 AS u(id, state, attempts, error, next_at, lease_until, escalate) \
             WHERE t.id = u.id"
        );
        sqlx::query(&sql)
            .bind(&ids)
            .bind(&states)
            .bind(&attempts)
            .bind(&errors)
            .bind(&next)
            .bind(&leases)
            .bind(&escalate)
            .bind(Triage::Escalate.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(applied)
}
