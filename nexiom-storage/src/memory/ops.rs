//! Operator reads.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{ChannelStatus, PostStatus};

use super::MemoryStore;
use crate::error::Result;
use crate::ops::{OpsStore, QueueStats, SchemaStatus, expected_schema_version};

#[async_trait]
impl OpsStore for MemoryStore {
    async fn schema_status(&self) -> Result<SchemaStatus> {
        let expected = expected_schema_version();
        Ok(SchemaStatus {
            applied: Some(expected),
            expected,
        })
    }

    async fn publish_queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats> {
        let inner = self.lock();
        let mut stats = QueueStats::default();
        for p in inner.posts.values() {
            if p.status == PostStatus::Queued
                && p.publish_at <= now
                && p.next_attempt_at.is_none_or(|t| t <= now)
            {
                stats.due += 1;
                stats.oldest_due_at = Some(
                    stats
                        .oldest_due_at
                        .map_or(p.publish_at, |o| o.min(p.publish_at)),
                );
            }
        }
        Ok(stats)
    }

    async fn prepare_partitions(&self, _now: DateTime<Utc>, _months_ahead: u32) -> Result<u64> {
        Ok(0)
    }

    async fn refresh_statistics(&self) -> Result<u64> {
        Ok(0)
    }

    async fn channels_needing_reauth(&self) -> Result<u64> {
        let inner = self.lock();
        Ok(inner
            .channels
            .values()
            .filter(|c| c.status == ChannelStatus::NeedsReauth)
            .count() as u64)
    }
}
