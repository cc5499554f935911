//! The publish queue's claim on Postgres: the oldest due posts, in one
//! statement; or, when one channel would crowd the others out of the claim,
//! a claim shared among channels (each channel's oldest due post through the
//! queued posts' channel index, then rounds of `FOR UPDATE SKIP LOCKED`
//! reads per channel, filled up from the oldest when the rounds come back
//! short) and one update of the claimed posts.

use chrono::{DateTime, Duration, Utc};
use nexiom_core::{ChannelId, ScheduledPost};
use uuid::Uuid;

use super::error::db;
use super::rows::{PostRow, all};
use super::{PgStore, bound, limit};
use crate::checks;
use crate::error::Result;
use crate::fair_claim::{
    FairRounds, QueuePlace, filled_from_oldest, most_before_sharing, one_channel_crowds,
};

/// The advisory lock that serializes claims (any constant both sides agree
/// on; "nexiom" in ASCII).
const CLAIM_LOCK: i64 = 0x6e65_7869_6f6d;

/// The channels a claim leaves alone, `$1` now and `$2` the claimer: those
/// with a post `publishing` under another owner's unexpired lease (a channel
/// is published by one claimer at a time), those held back by a throttle,
/// and those not active. Read once per statement (a hashed `NOT IN`), not
/// per candidate row.
const HELD: &str = "held AS ( \
     SELECT channel_id FROM scheduled_posts \
     WHERE status = 'publishing' AND lease_owner <> $2 AND lease_expires_at > $1 \
     UNION \
     SELECT channel_id FROM channel_throttles WHERE until > $1 \
     UNION \
     SELECT id FROM channels WHERE status <> 'active')";

/// Whether post `p` is due at `$1`.
const DUE: &str = "p.status = 'queued' AND p.publish_at <= $1 \
     AND (p.next_attempt_at IS NULL OR p.next_attempt_at <= $1)";

/// The oldest `$3` due posts of channels not held, locked (rows another
/// claimer holds are skipped, never waited for).
fn oldest_sql() -> String {
    format!(
        "WITH {HELD} \
         SELECT p.channel_id, p.publish_at, p.id FROM scheduled_posts p \
         WHERE {DUE} AND p.channel_id NOT IN (SELECT channel_id FROM held) \
         ORDER BY p.publish_at, p.id \
         LIMIT $3 \
         FOR UPDATE OF p SKIP LOCKED"
    )
}

/// The claim when no channel crowds it, in one statement: the oldest `$4`
/// due posts of channels not held, locked, are claimed unless they fill the
/// claim with more than `$5` posts of one channel (`one_channel_crowds`);
/// then nothing is written and no row comes back, as when nothing is due.
fn spread_claim_sql() -> String {
    format!(
        "WITH {HELD}, oldest AS MATERIALIZED ( \
             SELECT p.id, p.channel_id FROM scheduled_posts p \
             WHERE {DUE} AND p.channel_id NOT IN (SELECT channel_id FROM held) \
             ORDER BY p.publish_at, p.id \
             LIMIT $4 \
             FOR UPDATE OF p SKIP LOCKED), \
         spread AS ( \
             SELECT sum(n) < $4 OR max(n) <= $5 AS ok \
             FROM (SELECT count(*) AS n FROM oldest GROUP BY channel_id) x) \
         UPDATE scheduled_posts SET \
             status = 'publishing', lease_owner = $2, lease_expires_at = $3, updated_at = $1 \
         WHERE id = ANY(ARRAY(SELECT id FROM oldest WHERE (SELECT ok FROM spread))) \
         RETURNING *"
    )
}

/// The `$3` channels not held whose oldest due post is oldest, with that
/// post: the channels holding queued posts are walked through the queued
/// posts' channel index (migration 0047; a probe per channel, not a read of
/// its backlog), and each one's oldest due post is found in its own index
/// range (stepping over posts waiting for a retry). Nothing is locked.
fn heads_sql() -> String {
    format!(
        "WITH RECURSIVE {HELD}, queued(c) AS ( \
             (SELECT channel_id FROM scheduled_posts WHERE status = 'queued' \
              ORDER BY channel_id LIMIT 1) \
             UNION ALL \
             SELECT (SELECT channel_id FROM scheduled_posts \
                     WHERE status = 'queued' AND channel_id > q.c \
                     ORDER BY channel_id LIMIT 1) \
             FROM queued q WHERE q.c IS NOT NULL \
         ) \
         SELECT h.channel_id, h.publish_at, h.id FROM queued q \
         CROSS JOIN LATERAL ( \
             SELECT p.channel_id, p.publish_at, p.id FROM scheduled_posts p \
             WHERE p.channel_id = q.c AND {DUE} \
             ORDER BY p.publish_at, p.id \
             LIMIT 1 \
         ) h \
         WHERE q.c NOT IN (SELECT channel_id FROM held) \
         ORDER BY h.publish_at, h.id \
         LIMIT $3"
    )
}

/// A round's read: the oldest `$2` due posts of each channel in `$3` after
/// its `($4, $5)`, locked; `$1` now.
fn round_sql() -> String {
    format!(
        "SELECT x.channel_id, x.publish_at, x.id \
         FROM unnest($3::uuid[], $4::timestamptz[], $5::uuid[]) AS ch(c, after_at, after_id) \
         CROSS JOIN LATERAL ( \
             SELECT p.channel_id, p.publish_at, p.id FROM scheduled_posts p \
             WHERE p.channel_id = ch.c AND (p.publish_at, p.id) > (ch.after_at, ch.after_id) \
                 AND {DUE} \
             ORDER BY p.publish_at, p.id \
             LIMIT $2 \
             FOR UPDATE OF p SKIP LOCKED \
         ) x"
    )
}

impl PgStore {
    /// `PostStore::claim_due_posts`.
    pub(super) async fn claim_posts(
        &self,
        now: DateTime<Utc>,
        max: u32,
        lease_owner: &str,
        lease: Duration,
    ) -> Result<Vec<ScheduledPost>> {
        let expires = checks::lease(lease_owner, now, lease)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        // Claims are serialized (the lock is held until commit) so that the
        // "another worker is publishing on this channel" test sees every
        // committed claim: two workers never take one channel at once, and
        // a shared claim's unlocked reads of each channel's oldest post see
        // no other claim choosing the same ones. A cross-tenant scan.
        let mut tx = self.scan_pool.begin().await.map_err(db)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CLAIM_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // Most claims: one statement.
        let most = i64::try_from(most_before_sharing(
            usize::try_from(max).unwrap_or(usize::MAX),
        ))
        .unwrap_or(i64::MAX);
        let rows: Vec<PostRow> = sqlx::query_as(&spread_claim_sql())
            .bind(bound(now))
            .bind(lease_owner)
            .bind(expires)
            .bind(limit(max))
            .bind(most)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        if !rows.is_empty() {
            tx.commit().await.map_err(db)?;
            return sorted(rows);
        }
        // Nothing was due, or one channel crowds the claim.
        let oldest: Vec<QueuePlace> = sqlx::query_as(&oldest_sql())
            .bind(bound(now))
            .bind(lease_owner)
            .bind(limit(max))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
            .into_iter()
            .map(place)
            .collect();
        if oldest.is_empty() {
            tx.commit().await.map_err(db)?;
            return Ok(Vec::new());
        }
        let picked: Vec<Uuid> = if one_channel_crowds(&oldest, max) {
            // Every row read below stays locked until commit (those of
            // `oldest` too); those not claimed are left untouched.
            let heads: Vec<(QueuePlace, bool)> = sqlx::query_as(&heads_sql())
                .bind(bound(now))
                .bind(lease_owner)
                .bind(limit(max))
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?
                .into_iter()
                .map(|row| (place(row), true))
                .collect();
            // The start of time as PostgreSQL stores it, and no id before it.
            let start = (bound(DateTime::<Utc>::MIN_UTC), Uuid::nil());
            // A lone busy channel: its oldest posts are the claim (no rounds).
            let lone = heads
                .first()
                .is_none_or(|(first, _)| heads.iter().all(|(h, _)| h.channel == first.channel));
            let mut rounds = FairRounds::new(if lone { &[] } else { &heads }, max);
            while let Some((share, lanes)) = rounds.next() {
                let channels: Vec<Uuid> = lanes.iter().map(|l| l.channel.as_uuid()).collect();
                let (after_at, after_id): (Vec<DateTime<Utc>>, Vec<Uuid>) =
                    lanes.iter().map(|l| l.after.unwrap_or(start)).unzip();
                let rows: Vec<(Uuid, DateTime<Utc>, Uuid)> = sqlx::query_as(&round_sql())
                    .bind(bound(now))
                    .bind(limit(share))
                    .bind(&channels)
                    .bind(&after_at)
                    .bind(&after_id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
                rounds.record(rows.into_iter().map(|row| (place(row), true)).collect());
            }
            let picked = rounds.finish().into_iter().map(|(p, _)| p).collect();
            filled_from_oldest(picked, &oldest, max)
        } else {
            oldest.iter().map(|p| p.id).collect()
        };
        let rows: Vec<PostRow> = sqlx::query_as(
            "UPDATE scheduled_posts SET \
                 status = 'publishing', lease_owner = $2, lease_expires_at = $3, updated_at = $1 \
             WHERE id = ANY($4) AND status = 'queued' \
             RETURNING *",
        )
        .bind(bound(now))
        .bind(lease_owner)
        .bind(expires)
        .bind(&picked)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        sorted(rows)
    }
}

/// The claimed posts, oldest first (RETURNING follows no order).
fn sorted(rows: Vec<PostRow>) -> Result<Vec<ScheduledPost>> {
    let mut posts = all(rows, PostRow::into_entity)?;
    posts.sort_by_key(|p| (p.publish_at, p.id));
    Ok(posts)
}

fn place((channel, at, id): (Uuid, DateTime<Utc>, Uuid)) -> QueuePlace {
    QueuePlace {
        channel: ChannelId::from_uuid(channel),
        at,
        id,
    }
}
