//! Tenants and their channels.

use async_trait::async_trait;
use nexiom_core::*;

use crate::error::Result;

/// Tenants and their channels (connected social accounts).
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Creates a tenant. The name must be a non-empty key.
    async fn create_tenant(&self, new: NewTenant) -> Result<Tenant>;
    /// The tenant, or `NotFound`.
    async fn get_tenant(&self, id: TenantId) -> Result<Tenant>;
    /// Every tenant, oldest first.
    async fn list_tenants(&self) -> Result<Vec<Tenant>>;

    /// Creates a channel. `UnknownReference` for an unknown tenant; `Conflict` when
    /// `(platform, external_account_id)` is already connected (to any tenant).
    async fn create_channel(&self, new: NewChannel) -> Result<Channel>;
    /// The channel, or `NotFound` (also when it belongs to another tenant).
    async fn get_channel(&self, tenant: TenantId, id: ChannelId) -> Result<Channel>;
    /// The tenant's channels among `ids`, in one read (order unspecified);
    /// ids that name no channel of the tenant are left out, and so is a
    /// channel that cannot be read (say a token that no longer unseals;
    /// `get_channel` returns its error). For callers that
    /// need many channels at once (a claimed batch of posts) instead of one
    /// [`get_channel`](TenantStore::get_channel) round trip each.
    async fn get_channels(&self, tenant: TenantId, ids: &[ChannelId]) -> Result<Vec<Channel>>;
    /// The channel connected for `(platform, external_account_id)`, whatever its
    /// tenant: this is how an incoming webhook finds its tenant.
    async fn find_channel_by_account(
        &self,
        platform: &Platform,
        external_account_id: &str,
    ) -> Result<Option<Channel>>;
    /// The tenant and id of the channel connected for `(platform,
    /// external_account_id)`, whatever its tenant, without opening its
    /// credentials: all an incoming webhook needs to be stored for its
    /// tenant, so a token that no longer unseals (a retired key) never stops
    /// a channel's events from being received. The default reads the whole
    /// channel with [`find_channel_by_account`](TenantStore::find_channel_by_account).
    async fn find_channel_ref_by_account(
        &self,
        platform: &Platform,
        external_account_id: &str,
    ) -> Result<Option<(TenantId, ChannelId)>> {
        Ok(self
            .find_channel_by_account(platform, external_account_id)
            .await?
            .map(|c| (c.tenant_id, c.id)))
    }
    /// The tenant's channels, oldest first.
    async fn list_channels(&self, tenant: TenantId) -> Result<Vec<Channel>>;
    /// Replaces the channel's credentials.
    async fn update_channel_credentials(
        &self,
        tenant: TenantId,
        id: ChannelId,
        credentials: Credentials,
    ) -> Result<Channel>;
    /// Sets the channel's status.
    async fn set_channel_status(
        &self,
        tenant: TenantId,
        id: ChannelId,
        status: ChannelStatus,
    ) -> Result<Channel>;
}
