//! Grants the platform made that could not be stored: a refresh rotates the
//! refresh token on some platforms (LinkedIn), so a grant that is dropped
//! leaves only a refresh token the platform no longer honours, and the
//! channel would need a person to reconnect it. Such a grant is kept in this
//! process, used for its calls, and stored by a later call (one try per
//! [`UNSTORED_RETRY`]) or renewal, but only over the token it replaced (a compare-and-set: a reconnection or
//! another process's refresh meanwhile wins).

use chrono::{DateTime, Duration, Utc};
use nexiom_core::{Channel, ChannelId, Credentials, SecretString};
use nexiom_storage::{CredentialLease, StorageError};

use super::{ChannelTokens, TokenError};

/// How long after a failed write of a grant a call tries again (the calls
/// meanwhile use the grant without taking the channel's lease): 5 seconds.
/// Short, because another process meanwhile would refresh with the stored
/// refresh token, which a platform that rotates them no longer honours.
const UNSTORED_RETRY: Duration = Duration::seconds(5);

/// A grant not stored yet.
#[derive(Debug, Clone)]
pub(super) struct Unstored {
    /// The access token it replaces.
    over: Option<SecretString>,
    /// The grant.
    grant: Credentials,
    /// When a call may try to store it again.
    retry_at: DateTime<Utc>,
    /// The platform refused its access token (a refresh from its refresh
    /// token failed since): never handed to a call as it is.
    rejected: bool,
}

/// A grant waiting to be stored, as [`ChannelTokens::take_unstored`] finds it.
#[derive(Debug)]
pub(super) enum Pending {
    /// To be stored and used.
    Usable(Credentials),
    /// Its access token was just refused by the platform; its refresh token
    /// is still the newest the platform issued (it may have rotated the
    /// stored one out), so the next refresh is made from it.
    Rejected(Credentials),
}

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
                tracing::info!(channel = %current.id, "refreshed token stored");
                self.remember(&stored, current.credentials.access_token.as_ref());
                Ok(stored)
            }
            Err(error @ StorageError::Invalid(_)) => Err(error.into()),
            Err(error) => {
                tracing::error!(channel = %current.id, %error,
                    "a refreshed token could not be stored; it is used here and stored at a later call");
                self.keep_unstored(current, credentials.clone(), false);
                let mut granted = current.clone();
                granted.credentials = credentials;
                self.remember(&granted, current.credentials.access_token.as_ref());
                Ok(granted)
            }
        }
    }

    /// Keeps `grant`, made over `current`'s token, to be stored by a call
    /// after [`UNSTORED_RETRY`]; `rejected` when the platform refused its
    /// access token.
    pub(super) fn keep_unstored(&self, current: &Channel, grant: Credentials, rejected: bool) {
        let retry_at = self.next_unstored_try();
        self.unstored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                current.id,
                Unstored {
                    over: current.credentials.access_token.clone(),
                    grant,
                    retry_at,
                    rejected,
                },
            );
    }

    /// Whether a grant for `channel` waits to be stored and may be tried
    /// now (the last try was at least [`UNSTORED_RETRY`] ago).
    pub(super) fn unstored_due(&self, channel: ChannelId) -> bool {
        let now = self.clock.now();
        self.unstored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&channel)
            .is_some_and(|u| u.retry_at <= now)
    }

    /// The grant for `current`'s channel waiting to be stored, if it was made
    /// over the token still stored (otherwise it is dropped: the stored one
    /// is newer); [`Pending::Rejected`] when its access token is `rejected`
    /// (the token a platform call was just refused with) or was refused
    /// before.
    pub(super) fn take_unstored(
        &self,
        current: &Channel,
        rejected: Option<&SecretString>,
    ) -> Option<Pending> {
        let Unstored {
            over,
            grant,
            rejected: refused_before,
            ..
        } = self
            .unstored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&current.id)?;
        if over != current.credentials.access_token {
            return None;
        }
        if refused_before || (rejected.is_some() && grant.access_token.as_ref() == rejected) {
            Some(Pending::Rejected(grant))
        } else {
            Some(Pending::Usable(grant))
        }
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
                self.postpone_unstored(channel.id);
                return;
            }
        };
        let current = lease.channel().clone();
        let grant = match self.take_unstored(&current, None) {
            Some(Pending::Usable(grant)) => Some(grant),
            // Stored for its refresh token (the newest the platform issued),
            // as expired: the next call refreshes with it instead of using
            // the refused access token.
            Some(Pending::Rejected(mut grant)) => {
                grant.expires_at = Some(self.clock.now());
                Some(grant)
            }
            None => None,
        };
        match grant {
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
                self.remember(&current, channel.credentials.access_token.as_ref());
            }
        }
    }

    /// Puts off the next try to store `channel`'s waiting grant by
    /// [`UNSTORED_RETRY`].
    fn postpone_unstored(&self, channel: ChannelId) {
        let retry_at = self.next_unstored_try();
        if let Some(waiting) = self
            .unstored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&channel)
        {
            waiting.retry_at = retry_at;
        }
    }

    /// When a call may next try to store a waiting grant: [`UNSTORED_RETRY`]
    /// from now.
    fn next_unstored_try(&self) -> DateTime<Utc> {
        self.clock
            .now()
            .checked_add_signed(UNSTORED_RETRY)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}
