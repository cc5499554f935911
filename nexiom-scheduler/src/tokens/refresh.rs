//! One token refresh through a connector, what it answered, and who is told
//! when a channel needs a person to reconnect it.

use chrono::Duration;
use nexiom_connectors::{ConnectorError, PlatformConnector};
use nexiom_core::{Channel, Credentials};

/// What one refresh call answered.
#[derive(Debug)]
pub enum RefreshOutcome {
    /// New credentials (a grant without a new refresh token keeps the old
    /// one: apply grants with `TokenGrant::apply_to`).
    Granted(Credentials),
    /// The platform refused: the channel needs re-authorization.
    Refused(String),
    /// Failed, worth retrying.
    Failed {
        /// What failed.
        message: String,
        /// The platform's wait hint.
        retry_after: Option<Duration>,
    },
}

/// Told when a channel was set `needs_reauth` (a refused refresh), so the
/// application can ask a person to reconnect it. The channel, as stored, is
/// also readable at any time ([`Channel::status_reason`],
/// [`Channel::status_changed_at`]).
pub trait ReauthListener: Send + Sync {
    /// `channel` now needs re-authorization.
    fn channel_needs_reauth(&self, channel: &Channel);
}

/// The refresh of a channel through its connector
/// ([`PlatformConnector::refresh_token`]).
pub async fn connector_refresh(
    connector: &dyn PlatformConnector,
    channel: &Channel,
) -> RefreshOutcome {
    let ctx = crate::publish::channel_context(channel);
    match connector.refresh_token(&ctx).await {
        Ok(grant) => {
            let mut credentials = channel.credentials.clone();
            grant.apply_to(&mut credentials);
            RefreshOutcome::Granted(credentials)
        }
        Err(ConnectorError::NeedsReauth { reason, .. }) => RefreshOutcome::Refused(reason),
        // No refresh flow (WhatsApp's system-user tokens): a token that stops
        // working can only be replaced by a person.
        Err(e @ ConnectorError::Unsupported { .. }) => RefreshOutcome::Refused(e.to_string()),
        Err(e) => RefreshOutcome::Failed {
            retry_after: e.retry_after().and_then(|d| Duration::from_std(d).ok()),
            message: e.to_string(),
        },
    }
}
