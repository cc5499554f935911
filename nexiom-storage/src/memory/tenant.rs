//! Tenants and channels.

use async_trait::async_trait;
use nexiom_core::{
    Channel, ChannelId, ChannelStatus, Credentials, NewChannel, NewTenant, Platform, Tenant,
    TenantId, validate,
};

use super::{Inner, MemoryStore, get_scoped, get_scoped_mut, scoped};
use crate::error::{Result, StorageError};
use crate::traits::TenantStore;

impl Inner {
    fn create_tenant(&mut self, new: NewTenant) -> Result<Tenant> {
        new.validate()?;
        let tenant = Tenant {
            id: TenantId::generate(),
            name: new.name,
            time_zone: new.time_zone,
            created_at: new.created_at,
        };
        self.tenants.insert(tenant.id, tenant.clone());
        Ok(tenant)
    }

    fn get_tenant(&self, id: TenantId) -> Result<Tenant> {
        self.tenants
            .get(&id)
            .cloned()
            .ok_or_else(|| StorageError::not_found("tenant", id))
    }

    fn list_tenants(&self) -> Vec<Tenant> {
        let mut tenants: Vec<Tenant> = self.tenants.values().cloned().collect();
        tenants.sort_by_key(|t| (t.created_at, t.id));
        tenants
    }

    fn create_channel(&mut self, new: NewChannel) -> Result<Channel> {
        new.validate()?;
        self.require_tenant(new.tenant_id)?;
        let key = (new.platform.clone(), new.external_account_id.clone());
        if self.channel_by_account.contains_key(&key) {
            return Err(StorageError::conflict(
                "channel",
                format!(
                    "platform {} and external_account_id {:?}",
                    new.platform, new.external_account_id
                ),
            ));
        }
        let channel = Channel {
            id: ChannelId::generate(),
            tenant_id: new.tenant_id,
            platform: new.platform,
            external_account_id: new.external_account_id,
            name: new.name,
            credentials: new.credentials,
            status: ChannelStatus::Active,
            status_reason: None,
            status_changed_at: None,
            created_at: new.created_at,
        };
        self.channel_by_account.insert(key, channel.id);
        self.channels.insert(channel.id, channel.clone());
        Ok(channel)
    }

    fn find_channel_by_account(
        &self,
        platform: &Platform,
        external_account_id: &str,
    ) -> Result<Option<Channel>> {
        validate::key("external_account_id", external_account_id)?;
        Ok(self
            .channel_by_account
            .get(&(platform.clone(), external_account_id.to_owned()))
            .and_then(|id| self.channels.get(id))
            .cloned())
    }

    fn list_channels(&self, tenant: TenantId) -> Vec<Channel> {
        let mut channels: Vec<Channel> = self
            .channels
            .values()
            .filter(|c| c.tenant_id == tenant)
            .cloned()
            .collect();
        channels.sort_by_key(|c| (c.created_at, c.id));
        channels
    }

    /// Channels that are not `active`: their posts, polls and replies wait.
    pub(super) fn paused_channels(&self) -> impl Iterator<Item = ChannelId> + '_ {
        self.channels
            .values()
            .filter(|c| c.status != ChannelStatus::Active)
            .map(|c| c.id)
    }

    pub(super) fn update_channel(
        &mut self,
        tenant: TenantId,
        id: ChannelId,
        change: impl FnOnce(&mut Channel),
    ) -> Result<Channel> {
        let channel = get_scoped_mut(&mut self.channels, tenant, &id, "channel")?;
        change(channel);
        Ok(channel.clone())
    }
}

#[async_trait]
impl TenantStore for MemoryStore {
    async fn create_tenant(&self, new: NewTenant) -> Result<Tenant> {
        self.lock().create_tenant(new)
    }

    async fn get_tenant(&self, id: TenantId) -> Result<Tenant> {
        self.lock().get_tenant(id)
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        Ok(self.lock().list_tenants())
    }

    async fn create_channel(&self, new: NewChannel) -> Result<Channel> {
        self.lock().create_channel(new)
    }

    async fn get_channel(&self, tenant: TenantId, id: ChannelId) -> Result<Channel> {
        get_scoped(&self.lock().channels, tenant, &id, "channel").cloned()
    }

    async fn get_channels(&self, tenant: TenantId, ids: &[ChannelId]) -> Result<Vec<Channel>> {
        let state = self.lock();
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids
            .iter()
            .filter_map(|id| scoped(&state.channels, tenant, id).cloned())
            .collect())
    }

    async fn find_channel_by_account(
        &self,
        platform: &Platform,
        external_account_id: &str,
    ) -> Result<Option<Channel>> {
        self.lock()
            .find_channel_by_account(platform, external_account_id)
    }

    async fn list_channels(&self, tenant: TenantId) -> Result<Vec<Channel>> {
        Ok(self.lock().list_channels(tenant))
    }

    async fn update_channel_credentials(
        &self,
        tenant: TenantId,
        id: ChannelId,
        credentials: Credentials,
    ) -> Result<Channel> {
        credentials.validate()?;
        self.lock()
            .update_channel(tenant, id, |c| c.credentials = credentials)
    }

    async fn set_channel_status(
        &self,
        tenant: TenantId,
        id: ChannelId,
        status: ChannelStatus,
    ) -> Result<Channel> {
        self.lock().update_channel(tenant, id, |c| {
            c.status = status;
            if status == ChannelStatus::Active {
                c.status_reason = None;
            }
        })
    }
}
