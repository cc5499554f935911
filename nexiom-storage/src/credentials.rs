//! [`CredentialStore`]: the storage side of the token lifecycle: one refresh
//! per channel at a time across processes, the refused refresh that pauses a
//! channel, the expiring tokens a refresh worker renews, and the reconnection
//! that resumes the channel's work.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{Channel, ChannelId, Credentials, TenantId};

use crate::error::Result;

/// A channel's credentials held for a refresh. While it lives, no other
/// holder (in this process or another sharing the database) gets the same
/// channel's lease: a second caller of [`CredentialStore::lock_credentials`]
/// waits, then reads what the first one stored. Dropping the lease releases
/// it without changing anything.
#[async_trait]
pub trait CredentialLease: Send {
    /// The channel as stored when the lease was taken (read under the lease:
    /// a token refreshed by the previous holder is here).
    fn channel(&self) -> &Channel;

    /// Stores `credentials` (after [`Credentials::validate`]; `Invalid`
    /// otherwise, nothing written), releases the lease, and returns the
    /// channel as stored.
    async fn store(self: Box<Self>, credentials: Credentials) -> Result<Channel>;

    /// Sets the channel `needs_reauth` with `reason` and `at` (the platform
    /// refused the refresh: a person must reconnect it) and, in the same
    /// atomic write, enqueues the tenant's `channel_needs_reauth`
    /// notification ([`NewNotification::channel_needs_reauth`](nexiom_core::NewNotification::channel_needs_reauth),
    /// delivered to its subscribed endpoints); releases the lease and returns
    /// the channel as stored.
    async fn refuse(self: Box<Self>, reason: &str, at: DateTime<Utc>) -> Result<Channel>;
}

/// Channel credentials for the token lifecycle.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Takes the refresh lease of one channel, waiting while another holder
    /// has it (Postgres: the channel's row lock, `FOR NO KEY UPDATE`, held by
    /// an open transaction, so webhooks referencing the channel are not
    /// blocked; in memory: a per-channel async mutex). `NotFound` when the
    /// channel is not the tenant's.
    async fn lock_credentials<'a>(
        &'a self,
        tenant: TenantId,
        channel: ChannelId,
    ) -> Result<Box<dyn CredentialLease + 'a>>;

    /// Active channels of every tenant whose access token expires before
    /// `before` (`expires_at` set), soonest first, at most `limit`: what a
    /// refresh worker renews.
    async fn list_expiring_channels(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, ChannelId)>>;

    /// A person reconnected the channel: stores its new credentials (after
    /// [`Credentials::validate`]), sets it `active`, clears the reason and
    /// records `at` as the status change. Its paused work is claimed again
    /// from then on. Waits for a refresh lease in progress.
    async fn reconnect_channel(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        credentials: Credentials,
        at: DateTime<Utc>,
    ) -> Result<Channel>;
}
