//! Channel credentials for the token lifecycle: a per-channel async mutex is
//! the refresh lease; every write goes through the store's one lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{Channel, ChannelId, ChannelStatus, Credentials, NewNotification, TenantId};
use tokio::sync::OwnedMutexGuard;

use super::{MemoryStore, get_scoped};
use crate::credentials::{CredentialLease, CredentialStore};
use crate::error::Result;
use crate::traits::TenantStore;

/// One async mutex per channel that ever had a lease.
#[derive(Default)]
pub(super) struct Leases(Mutex<HashMap<ChannelId, Arc<tokio::sync::Mutex<()>>>>);

impl Leases {
    fn of(&self, channel: ChannelId) -> Arc<tokio::sync::Mutex<()>> {
        let mut leases = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(leases.entry(channel).or_default())
    }
}

struct MemoryLease<'a> {
    store: &'a MemoryStore,
    channel: Channel,
    _held: OwnedMutexGuard<()>,
}

#[async_trait]
impl CredentialLease for MemoryLease<'_> {
    fn channel(&self) -> &Channel {
        &self.channel
    }

    async fn store(self: Box<Self>, credentials: Credentials) -> Result<Channel> {
        self.store
            .update_channel_credentials(self.channel.tenant_id, self.channel.id, credentials)
            .await
    }

    async fn refuse(self: Box<Self>, reason: &str, at: DateTime<Utc>) -> Result<Channel> {
        nexiom_core::validate::text("reason", reason)?;
        let (tenant, id) = (self.channel.tenant_id, self.channel.id);
        let notice = NewNotification::channel_needs_reauth(tenant, id, reason, at);
        let mut inner = self.store.lock();
        // Both or neither: the notification is checked before anything is
        // written, and cannot fail after.
        inner.check_notify(&notice)?;
        let channel = inner.update_channel(tenant, id, |c| {
            c.status = ChannelStatus::NeedsReauth;
            c.status_reason = Some(reason.to_owned());
            c.status_changed_at = Some(at);
        })?;
        inner.notify(notice)?;
        Ok(channel)
    }
}

#[async_trait]
impl CredentialStore for MemoryStore {
    async fn lock_credentials<'a>(
        &'a self,
        tenant: TenantId,
        channel: ChannelId,
    ) -> Result<Box<dyn CredentialLease + 'a>> {
        // Refuse an unknown channel before waiting for anything.
        get_scoped(&self.lock().channels, tenant, &channel, "channel")?;
        let held = self.refresh_leases.of(channel).lock_owned().await;
        let channel = get_scoped(&self.lock().channels, tenant, &channel, "channel")?.clone();
        Ok(Box::new(MemoryLease {
            store: self,
            channel,
            _held: held,
        }))
    }

    async fn list_expiring_channels(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, ChannelId)>> {
        let inner = self.lock();
        let mut due: Vec<(DateTime<Utc>, ChannelId, TenantId)> = inner
            .channels
            .values()
            .filter(|c| c.status == ChannelStatus::Active)
            .filter_map(|c| {
                c.credentials
                    .expires_at
                    .filter(|at| *at < before)
                    .map(|at| (at, c.id, c.tenant_id))
            })
            .collect();
        due.sort_unstable();
        due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(due.into_iter().map(|(_, c, t)| (t, c)).collect())
    }

    async fn reconnect_channel(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        credentials: Credentials,
        at: DateTime<Utc>,
    ) -> Result<Channel> {
        credentials.validate()?;
        get_scoped(&self.lock().channels, tenant, &channel, "channel")?;
        let _held = self.refresh_leases.of(channel).lock_owned().await;
        self.lock().update_channel(tenant, channel, |c| {
            c.credentials = credentials;
            c.status = ChannelStatus::Active;
            c.status_reason = None;
            c.status_changed_at = Some(at);
        })
    }
}
