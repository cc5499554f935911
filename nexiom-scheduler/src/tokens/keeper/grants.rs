//! Grants the platform made that could not be stored: a refresh rotates the
//! refresh token on some platforms (LinkedIn), so a grant that is dropped
//! leaves only a refresh token the platform no longer honours, and the
//! channel would need a person to reconnect it. Such a grant is kept in this
//! process, used for its calls, and stored at the next call or renewal, but
//! only over the token it replaced (a compare-and-set: a reconnection or
//! another process's refresh meanwhile wins).

use nexiom_core::{Channel, ChannelId, Credentials, SecretString};
use nexiom_storage::{CredentialLease, StorageError};

use super::{ChannelTokens, TokenError};

/// A grant not stored yet: the access token it replaces, and the grant.
pub(super) type Unstored = (Option<SecretString>, Credentials);

impl ChannelTokens {
    /// Stores `credentials` granted over `current` under `lease`. When the
    /// store fails for a reason other than the grant itself (it does not
    /// validate), the grant is kept to be stored later and returned as the
    /// channel's credentials, so the call goes on with the new token.
    pub(super) async fn store_grant(
        &self,
        lease: Box<dyn CredentialLease + '_>,
        current: &Channel,
        credentials: Credentials,
    ) -> Result<Channel, TokenError> {
        match lease.store(credentials.clone()).await {
            Ok(stored) => {
                crate::telemetry::token_refresh(true);
                tracing::info!(channel = %current.id, "token refreshed");
                self.remember(&stored);
                Ok(stored)
            }
            Err(error @ StorageError::Invalid(_)) => Err(error.into()),
            Err(error) => {
                tracing::error!(channel = %current.id, %error,
                    "a refreshed token could not be stored; it is used here and stored at the next call");
                crate::telemetry::token_refresh(true);
                self.unstored
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        current.id,
                        (
                            current.credentials.access_token.clone(),
                            credentials.clone(),
                        ),
                    );
                let mut granted = current.clone();
                granted.credentials = credentials;
                self.remember(&granted);
                Ok(granted)
            }
        }
    }

    /// Whether a grant for `channel` waits to be stored.
    pub(super) fn has_unstored(&self, channel: ChannelId) -> bool {
        self.unstored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&channel)
    }

    /// The grant for `current`'s channel waiting to be stored, if it was made
    /// over the token still stored (otherwise it is dropped: the stored one
    /// is newer) and is not `rejected` (the token a platform call was just
    /// refused with).
    pub(super) fn take_unstored(
        &self,
        current: &Channel,
        rejected: Option<&SecretString>,
    ) -> Option<Credentials> {
        let (over, grant) = self
            .unstored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&current.id)?;
        let usable = over == current.credentials.access_token
            && (rejected.is_none() || grant.access_token.as_ref() != rejected);
        usable.then_some(grant)
    }

    /// Stores the grant for `channel` waiting to be stored, if any, under the
    /// channel's lease. A failure is logged and the grant kept for the next
    /// call.
    pub(super) async fn store_unstored(&self, channel: &Channel) {
        let lease = match self
            .store
            .lock_credentials(channel.tenant_id, channel.id)
            .await
        {
            Ok(lease) => lease,
            Err(error) => {
                tracing::warn!(channel = %channel.id, %error,
                    "a refreshed token waiting to be stored: the channel's lease could not be taken");
                return;
            }
        };
        let current = lease.channel().clone();
        match self.take_unstored(&current, None) {
            Some(grant) => {
                if let Err(error) = self.store_grant(lease, &current, grant).await {
                    tracing::error!(channel = %channel.id, %error,
                        "a refreshed token could not be stored");
                }
            }
            // Stored meanwhile (by another call here), or replaced by a
            // reconnection or another process: the stored token is the one
            // to use.
            None => {
                drop(lease);
                self.remember(&current);
            }
        }
    }
}
