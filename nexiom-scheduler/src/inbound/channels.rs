//! The receiver's channel lookups by account, cached.
//!
//! Every webhook event names the account it was sent to; its channel (and so
//! its tenant) is the one connected for `(platform, account)`. A channel's
//! account never changes and channels are not removed (they are paused or
//! reconnected, which does not change where their events go), so a found
//! channel can be kept: entries live [`DEFAULT_CHANNEL_TTL`] and are dropped
//! at once by [`ChannelDirectory::forget`] (the application calls
//! [`InboundPipeline::channel_changed`](super::InboundPipeline::channel_changed)),
//! and when the store refuses an event because its channel is not there
//! (the entry is then stale). An account with no channel is **not** kept
//! (only for the rest of the body being read): a channel connected a moment
//! later gets its events at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, Utc};
use nexiom_core::{ChannelId, Clock, Platform, TenantId};
use nexiom_storage::{StorageError, Store};

/// How long a found channel is kept.
pub const DEFAULT_CHANNEL_TTL: Duration = Duration::minutes(5);

/// Entries above which the cache is emptied before the next insertion (a
/// bound on memory whatever accounts a body names).
const MAX_ENTRIES: usize = 100_000;

/// Where an account's events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChannelRef {
    pub(crate) tenant_id: TenantId,
    pub(crate) channel_id: ChannelId,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    target: ChannelRef,
    until: DateTime<Utc>,
}

/// Channel lookups by `(platform, account)`, cached with a TTL (read from
/// the pipeline's clock). Cheap to clone; clones share the cache.
#[derive(Clone)]
pub(crate) struct ChannelDirectory {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    entries: Arc<RwLock<HashMap<(Platform, String), Entry>>>,
}

impl ChannelDirectory {
    pub(crate) fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        ChannelDirectory {
            store,
            clock,
            ttl: DEFAULT_CHANNEL_TTL,
            entries: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    /// The same cache with entries kept `ttl` (zero: nothing is kept).
    pub(crate) fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The channel connected for `(platform, account)`, if any.
    pub(crate) async fn lookup(
        &self,
        platform: &Platform,
        account: Option<&str>,
    ) -> Result<Option<ChannelRef>, StorageError> {
        let Some(account) = account else {
            return Ok(None);
        };
        let now = self.clock.now();
        let key = (platform.clone(), account.to_owned());
        if let Some(entry) = self.read().get(&key)
            && entry.until > now
        {
            return Ok(Some(entry.target));
        }
        // The tenant and id only: the channel's tokens are not opened (one
        // that no longer unseals must not stop its events).
        let found = match self
            .store
            .find_channel_ref_by_account(platform, account)
            .await
        {
            // An account id the store refuses as a key cannot be connected.
            Err(e) if e.is_refusal() => return Ok(None),
            other => other?,
        };
        let Some((tenant_id, channel_id)) = found else {
            return Ok(None);
        };
        let target = ChannelRef {
            tenant_id,
            channel_id,
        };
        if self.ttl > Duration::zero() {
            let mut entries = self.write();
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                key,
                Entry {
                    target,
                    until: now + self.ttl,
                },
            );
        }
        Ok(Some(target))
    }

    /// Drops what is kept for `(platform, account)`.
    pub(crate) fn forget(&self, platform: &Platform, account: &str) {
        self.write().remove(&(platform.clone(), account.to_owned()));
    }

    /// Drops every entry whose channel is `channel`.
    pub(crate) fn forget_channel(&self, channel: ChannelId) {
        self.write().retain(|_, e| e.target.channel_id != channel);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<(Platform, String), Entry>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<(Platform, String), Entry>> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use nexiom_core::{Credentials, ManualClock, NewChannel, NewTenant};
    use nexiom_storage::MemoryStore;

    async fn setup() -> (Arc<dyn Store>, Arc<ManualClock>, ChannelId) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let t0 = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 29, 9, 0, 0).unwrap();
        let clock = Arc::new(ManualClock::new(t0));
        let tenant = store
            .create_tenant(NewTenant::new("Acme", t0))
            .await
            .unwrap();
        let channel = store
            .create_channel(NewChannel {
                tenant_id: tenant.id,
                platform: Platform::WhatsApp,
                external_account_id: "pn-1".into(),
                name: "Acme".into(),
                credentials: Credentials::default(),
                created_at: t0,
            })
            .await
            .unwrap();
        (store, clock, channel.id)
    }

    #[tokio::test]
    async fn found_channels_are_kept_for_the_ttl_and_unknown_accounts_never() {
        let (store, clock, channel) = setup().await;
        let dir = ChannelDirectory::new(Arc::clone(&store), clock.clone());
        let found = dir.lookup(&Platform::WhatsApp, Some("pn-1")).await.unwrap();
        assert_eq!(found.map(|c| c.channel_id), Some(channel));
        assert_eq!(dir.read().len(), 1);
        // Unknown accounts and a missing account are not kept.
        assert!(
            dir.lookup(&Platform::WhatsApp, Some("pn-2"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            dir.lookup(&Platform::WhatsApp, None)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(dir.read().len(), 1);
        // Kept until the TTL, then read again.
        clock.advance(DEFAULT_CHANNEL_TTL - Duration::seconds(1));
        let key = (Platform::WhatsApp, "pn-1".to_owned());
        let until = dir.read()[&key].until;
        dir.lookup(&Platform::WhatsApp, Some("pn-1")).await.unwrap();
        assert_eq!(dir.read()[&key].until, until, "served from the cache");
        clock.advance(Duration::seconds(2));
        dir.lookup(&Platform::WhatsApp, Some("pn-1")).await.unwrap();
        assert!(dir.read()[&key].until > until, "read again after the TTL");
        // Forgetting drops the entry; by channel too.
        dir.forget(&Platform::WhatsApp, "pn-1");
        assert!(dir.read().is_empty());
        dir.lookup(&Platform::WhatsApp, Some("pn-1")).await.unwrap();
        dir.forget_channel(channel);
        assert!(dir.read().is_empty());
        // A zero TTL keeps nothing.
        let none = ChannelDirectory::new(store, clock).with_ttl(Duration::zero());
        none.lookup(&Platform::WhatsApp, Some("pn-1"))
            .await
            .unwrap();
        assert!(none.read().is_empty());
    }
}
