//! [`PollBatchStore`] on Postgres: a claim of due posts with their
//! checkpoints in one transaction, and the checks of a batch written back in
//! one statement over arrays (`UNNEST`), each post guarded by its claim.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{CommentCheckpoint, CommentId, PostId};
use sqlx::{FromRow, Row};
use uuid::Uuid;

use super::error::db;
use super::rows::{CheckpointRow, PostRow, all};
use super::{PgStore, bound, limit};
use crate::error::{Result, StorageError};
use crate::poll_batch::{
    ClaimedPoll, PollBatchStore, PollResult, PollWritten, check_results, poll_lease,
};

#[async_trait]
impl PollBatchStore for PgStore {
    async fn claim_polls(
        &self,
        now: DateTime<Utc>,
        max: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedPoll>> {
        let until = poll_lease(now, lease)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        // A cross-tenant claim: the due posts, locked (another claimer skips
        // them), move to `next_check_at = until`; then their checkpoints.
        let mut tx = self.scan_pool.begin().await.map_err(db)?;
        let rows = sqlx::query(
            "WITH due AS ( \
                 SELECT id, next_check_at FROM scheduled_posts \
                 WHERE status = 'published' AND next_check_at <= $1 \
                     AND (stop_at IS NULL OR last_check_at IS NULL OR last_check_at < stop_at) \
                     AND channel_id NOT IN (SELECT id FROM channels WHERE status <> 'active') \
                     AND channel_id NOT IN ( \
                         SELECT channel_id FROM channel_throttles WHERE until > $1) \
                 ORDER BY next_check_at, id \
                 LIMIT $2 \
                 FOR UPDATE SKIP LOCKED \
             ) \
             UPDATE scheduled_posts p SET next_check_at = $3 \
             FROM due WHERE p.id = due.id \
             RETURNING p.*, due.next_check_at AS due_at",
        )
        .bind(bound(now))
        .bind(limit(max))
        .bind(bound(until))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let due_at: DateTime<Utc> = row.try_get("due_at").map_err(db)?;
            let post = PostRow::from_row(row).map_err(db)?.into_entity()?;
            claimed.push((post, due_at));
        }
        let ids: Vec<Uuid> = claimed.iter().map(|(p, _)| p.id.as_uuid()).collect();
        let checkpoints: Vec<CheckpointRow> =
            sqlx::query_as("SELECT * FROM comment_checkpoints WHERE post_id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut checkpoints: HashMap<PostId, CommentCheckpoint> =
            all(checkpoints, CheckpointRow::into_entity)?
                .into_iter()
                .map(|c| (c.post_id, c))
                .collect();
        let mut claimed: Vec<ClaimedPoll> = claimed
            .into_iter()
            .map(|(post, due_at)| ClaimedPoll {
                checkpoint: checkpoints
                    .remove(&post.id)
                    .filter(|c| c.tenant_id == post.tenant_id),
                due_at,
                // As stored (to the microsecond), so the guard matches.
                lease_until: post.next_check_at.unwrap_or(until),
                post,
            })
            .collect();
        // RETURNING follows no order.
        claimed.sort_by_key(|c| (c.due_at, c.post.id));
        Ok(claimed)
    }

    async fn finish_polls(
        &self,
        results: &[PollResult],
        at: DateTime<Utc>,
    ) -> Result<Vec<PollWritten>> {
        check_results(results)?;
        if results.is_empty() {
            return Ok(Vec::new());
        }
        let n = results.len();
        let mut posts = Vec::with_capacity(n);
        let mut tenants = Vec::with_capacity(n);
        let mut leases = Vec::with_capacity(n);
        let mut last_checks: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut next_checks: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut failures: Vec<i32> = Vec::with_capacity(n);
        let (mut cp_posts, mut cp_cursors, mut cp_seen, mut cp_updated, mut cp_rereading) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut c_ids = Vec::new();
        let mut c_posts = Vec::new();
        let mut c_keys: Vec<&str> = Vec::new();
        let mut c_parents: Vec<Option<&str>> = Vec::new();
        let mut c_authors: Vec<Option<&str>> = Vec::new();
        let mut c_names: Vec<Option<&str>> = Vec::new();
        let mut c_texts: Vec<&str> = Vec::new();
        let mut c_created = Vec::new();
        let mut c_stored = Vec::new();
        let mut c_hidden = Vec::new();
        for r in results {
            posts.push(r.post_id.as_uuid());
            tenants.push(r.tenant_id.as_uuid());
            leases.push(bound(r.lease_until));
            last_checks.push(r.last_check_at.map(bound));
            next_checks.push(r.next_check_at.map(bound));
            failures.push(i32::try_from(r.poll_failures).unwrap_or(i32::MAX));
            if let Some(c) = &r.checkpoint {
                cp_posts.push(c.post_id.as_uuid());
                cp_cursors.push(c.last_cursor.as_deref());
                cp_seen.push(c.last_seen_at.map(bound));
                cp_updated.push(bound(c.updated_at));
                cp_rereading.push(c.rereading);
            }
            for c in &r.comments {
                c_ids.push(CommentId::generate().as_uuid());
                c_posts.push(c.post_id.as_uuid());
                c_keys.push(c.platform_comment_id.as_str());
                c_parents.push(c.parent_platform_comment_id.as_deref());
                c_authors.push(c.author_id.as_deref());
                c_names.push(c.author_name.as_deref());
                c_texts.push(c.text.as_str());
                c_created.push(bound(c.created_at));
                c_stored.push(bound(c.stored_at));
                c_hidden.push(c.hidden);
            }
        }
        // One statement, so one commit, across tenants (keyed by the claims):
        // a post is moved only while its claim holds, and its checkpoint and
        // comments are written only when it was. Comments are inserted in
        // the order read, so the first of a repeated key is the one stored.
        let rows: Vec<(bool, Uuid)> = sqlx::query_as(
            "WITH u AS ( \
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[], \
                     $4::timestamptz[], $5::timestamptz[], $22::int4[]) \
                 AS u(post_id, tenant_id, lease_until, last_check_at, next_check_at, \
                     poll_failures) \
             ), moved AS ( \
                 UPDATE scheduled_posts p SET \
                     last_check_at = COALESCE(u.last_check_at, p.last_check_at), \
                     next_check_at = u.next_check_at, \
                     poll_failures = u.poll_failures, \
                     updated_at = $6 \
                 FROM u \
                 WHERE p.id = u.post_id AND p.tenant_id = u.tenant_id \
                     AND p.status = 'published' AND p.next_check_at = u.lease_until \
                 RETURNING p.id, p.tenant_id, p.channel_id \
             ), saved AS ( \
                 INSERT INTO comment_checkpoints (post_id, tenant_id, last_cursor, \
                     last_seen_at, updated_at, rereading) \
                 SELECT c.post_id, m.tenant_id, c.last_cursor, c.last_seen_at, c.updated_at, \
                     c.rereading \
                 FROM UNNEST($7::uuid[], $8::text[], $9::timestamptz[], $10::timestamptz[], \
                     $20::boolean[]) \
                     AS c(post_id, last_cursor, last_seen_at, updated_at, rereading) \
                 JOIN moved m ON m.id = c.post_id \
                 ON CONFLICT (post_id) DO UPDATE SET \
                     last_cursor = EXCLUDED.last_cursor, \
                     last_seen_at = EXCLUDED.last_seen_at, \
                     updated_at = EXCLUDED.updated_at, \
                     rereading = EXCLUDED.rereading \
                 WHERE comment_checkpoints.tenant_id = EXCLUDED.tenant_id \
             ), stored AS ( \
                 INSERT INTO comments (id, tenant_id, post_id, channel_id, \
                     platform_comment_id, parent_platform_comment_id, author_id, \
                     author_name, text, created_at, stored_at, triage, confidence, \
                     ai_decision_id, hidden) \
                 SELECT c.id, m.tenant_id, m.id, m.channel_id, c.key, c.parent, c.author_id, \
                     c.author_name, c.text, c.created_at, c.stored_at, NULL, NULL, NULL, \
                     c.hidden \
                 FROM UNNEST($11::uuid[], $12::uuid[], $13::text[], $14::text[], \
                     $15::text[], $16::text[], $17::text[], $18::timestamptz[], \
                     $19::timestamptz[], $21::boolean[]) WITH ORDINALITY \
                     AS c(id, post_id, key, parent, author_id, author_name, text, created_at, \
                         stored_at, hidden, ord) \
                 JOIN moved m ON m.id = c.post_id \
                 ORDER BY c.ord \
                 ON CONFLICT (post_id, platform_comment_id) DO NOTHING \
                 RETURNING id \
             ) \
             SELECT TRUE, id FROM moved UNION ALL SELECT FALSE, id FROM stored",
        )
        .bind(&posts)
        .bind(&tenants)
        .bind(&leases)
        .bind(&last_checks)
        .bind(&next_checks)
        .bind(bound(at))
        .bind(&cp_posts)
        .bind(&cp_cursors)
        .bind(&cp_seen)
        .bind(&cp_updated)
        .bind(&c_ids)
        .bind(&c_posts)
        .bind(&c_keys)
        .bind(&c_parents)
        .bind(&c_authors)
        .bind(&c_names)
        .bind(&c_texts)
        .bind(&c_created)
        .bind(&c_stored)
        .bind(&cp_rereading)
        .bind(&c_hidden)
        .bind(&failures)
        .fetch_all(&self.scan_pool)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(e) if e.is_foreign_key_violation() => {
                StorageError::UnknownReference {
                    entity: "post",
                    id: "one of the batch".to_owned(),
                }
            }
            _ => db(err),
        })?;
        let moved: HashSet<Uuid> = rows.iter().filter(|r| r.0).map(|r| r.1).collect();
        let stored: HashSet<Uuid> = rows.iter().filter(|r| !r.0).map(|r| r.1).collect();
        let mut ids = c_ids.iter();
        Ok(results
            .iter()
            .map(|r| {
                let created = r
                    .comments
                    .iter()
                    .map(|_| ids.next().is_some_and(|id| stored.contains(id)))
                    .collect();
                PollWritten {
                    written: moved.contains(&r.post_id.as_uuid()),
                    created,
                }
            })
            .collect())
    }
}
