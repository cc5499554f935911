//! Batched retention.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::PostRunStatus;

use super::{MemoryStore, limit_len};
use crate::error::Result;
use crate::retention::{Retained, RetentionStore};

#[async_trait]
impl RetentionStore for MemoryStore {
    async fn purge_before(&self, kind: Retained, cutoff: DateTime<Utc>, batch: u32) -> Result<u64> {
        let mut inner = self.lock();
        let batch = limit_len(batch.max(1));
        let removed = match kind {
            Retained::WebhookEvents => {
                let old: Vec<_> = inner
                    .events
                    .values()
                    .filter(|e| e.routed_at.is_some() && e.occurred_at < cutoff)
                    .map(|e| (e.id, (e.platform.clone(), e.event_id.clone())))
                    .take(batch)
                    .collect();
                for (id, key) in &old {
                    inner.events.remove(id);
                    inner.event_by_key.remove(key);
                }
                old.len()
            }
            Retained::PostRuns => {
                let old: Vec<_> = inner
                    .post_runs
                    .values()
                    .filter(|r| r.status != PostRunStatus::Running && r.started_at < cutoff)
                    .map(|r| r.id)
                    .take(batch)
                    .collect();
                for id in &old {
                    inner.post_runs.remove(id);
                }
                old.len()
            }
            Retained::DeadLetters => {
                let old: Vec<_> = inner
                    .dead_letters
                    .values()
                    .filter(|d| d.received_at < cutoff)
                    .map(|d| (d.id, (d.platform.clone(), d.key.clone())))
                    .take(batch)
                    .collect();
                for (id, key) in &old {
                    inner.dead_letters.remove(id);
                    inner.dead_letter_by_key.remove(key);
                }
                old.len()
            }
            Retained::Notifications => inner.purge_notifications(cutoff, batch),
            Retained::Messages => {
                let old: Vec<_> = inner
                    .messages
                    .values()
                    .filter(|m| m.created_at < cutoff)
                    .map(|m| (m.id, m.channel_id, m.provider_message_id.clone()))
                    .take(batch)
                    .collect();
                for (id, channel, provider_id) in &old {
                    inner.messages.remove(id);
                    if let Some(key) = provider_id {
                        let key = (*channel, key.clone());
                        if inner.message_by_provider.get(&key) == Some(id) {
                            inner.message_by_provider.remove(&key);
                        }
                    }
                }
                let gone: std::collections::HashSet<_> = old.iter().map(|(id, ..)| *id).collect();
                inner
                    .reply_by_inbound
                    .retain(|inbound, reply| !gone.contains(inbound) && !gone.contains(reply));
                // What topics kept of removed messages goes too, up to
                // `batch` of each, as on Postgres: the memberships of
                // messages no longer stored (on Postgres, of messages older
                // than the cutoff: the same ones), and the message vectors
                // last computed before the cutoff (a vector is computed after
                // its message was created, so it is of an older message).
                let vectors: Vec<_> = inner
                    .embeddings
                    .iter()
                    .filter(|((s, _), e)| {
                        matches!(s, nexiom_core::TopicSubject::Message(_)) && e.computed_at < cutoff
                    })
                    .map(|(key, _)| key.clone())
                    .take(batch)
                    .collect();
                for key in &vectors {
                    inner.embeddings.remove(key);
                }
                let members: Vec<_> = inner
                    .topic_members
                    .keys()
                    .filter(|(_, _, s)| {
                        matches!(s, nexiom_core::TopicSubject::Message(id)
                            if !inner.messages.contains_key(id))
                    })
                    .cloned()
                    .take(batch)
                    .collect();
                for key in &members {
                    inner.topic_members.remove(key);
                }
                old.len() + vectors.len() + members.len()
            }
        };
        Ok(removed as u64)
    }
}
