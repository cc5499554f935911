//! What can go wrong when a channel needs a token.

use chrono::{DateTime, Duration, Utc};
use nexiom_connectors::ConnectorError;
use nexiom_core::{ChannelId, ChannelStatus};
use nexiom_storage::StorageError;

#[cfg(doc)]
use super::ChannelTokens;

/// Why no usable token could be had for a channel.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The channel is not active (a refused refresh, or turned off): its work
    /// waits until it is reconnected ([`ChannelTokens::reconnect`]).
    #[error(
        "channel {channel} is {status} ({reason}): its work waits until the channel is reconnected with new tokens"
    )]
    Paused {
        /// The channel.
        channel: ChannelId,
        /// Its status.
        status: ChannelStatus,
        /// Why, as recorded.
        reason: String,
    },
    /// The platform refused the refresh just now: the channel was set
    /// `needs_reauth` and its work paused.
    #[error(
        "the platform refused to refresh the token of channel {channel}: {reason}; a person must reconnect the channel"
    )]
    Refused {
        /// The channel.
        channel: ChannelId,
        /// The platform's answer.
        reason: String,
    },
    /// The refresh failed in a way worth retrying (network, 5xx, throttled):
    /// nothing changed.
    #[error("refreshing the token of channel {channel} failed, to be tried again: {message}")]
    Failed {
        /// The channel.
        channel: ChannelId,
        /// What failed.
        message: String,
        /// How long the platform asked to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// An ahead-of-time renewal ([`ChannelTokens::renew`]) that the platform
    /// will not do (no refresh token, no refresh flow, a refused refresh)
    /// while the current token still works: the channel stays active and is
    /// used until `expires_at`; its tenant was sent a
    /// `channel_needs_reauth` notification for that instant, so a person can
    /// reconnect it before work stops.
    #[error(
        "the token of channel {channel} cannot be renewed ({reason}); it is used until it expires at {expires_at}, then the channel needs reconnecting"
    )]
    NotRenewable {
        /// The channel.
        channel: ChannelId,
        /// Why, as the platform or connector said.
        reason: String,
        /// When the current token expires.
        expires_at: DateTime<Utc>,
    },
    /// Storage failed or refused.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl TokenError {
    /// Whether the channel's work is paused (a person must act), as opposed
    /// to a failure worth retrying.
    pub fn is_paused(&self) -> bool {
        matches!(self, TokenError::Paused { .. } | TokenError::Refused { .. })
    }
}

/// Why [`ChannelTokens::setup_webhook`] failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookSetupError {
    /// No usable token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The platform refused the subscription.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
}
