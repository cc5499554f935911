//! What a keeper knows of each channel's tokens: the newest credentials it
//! stored or read under the channel's lease, and the tokens it saw them
//! replace, so that a caller's copy older than a refresh made here is
//! overridden while a newer one (a reconnection, another process's refresh)
//! is taken as it is.

use nexiom_core::{Channel, ChannelId, Credentials, SecretString};

use super::ChannelTokens;

/// Replaced tokens remembered per channel (the oldest forgotten first).
const SUPERSEDED_KEPT: usize = 8;

/// What a keeper knows of a channel's tokens.
#[derive(Debug, Default)]
pub(super) struct Known {
    /// The newest credentials stored or read here under the channel's lease.
    credentials: Credentials,
    /// Tokens seen replaced by newer ones, oldest first: a caller's copy
    /// holding one is out of date.
    superseded: Vec<SecretString>,
}

impl ChannelTokens {
    /// The caller's copy of the credentials, or the ones this process
    /// stored since, when the copy holds a token it saw replaced (a copy
    /// read before a refresh here). A copy with a token this process never
    /// saw replaced is newer than what it knows (a reconnection, a refresh
    /// by another process) and is taken as it is, whatever its expiry: a
    /// person may reconnect with a shorter-lived token.
    pub(super) fn cached(&self, channel: &Channel) -> Credentials {
        let fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        match (fresh.get(&channel.id), &channel.credentials.access_token) {
            (Some(known), Some(copy))
                if known.credentials.access_token.is_some() && known.superseded.contains(copy) =>
            {
                known.credentials.clone()
            }
            _ => channel.credentials.clone(),
        }
    }

    /// Records `channel`'s credentials as the newest this process knows;
    /// the ones known before and `replaced` (a token the caller or the store
    /// held before them) are recorded as replaced.
    pub(super) fn remember(&self, channel: &Channel, replaced: Option<&SecretString>) {
        let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        let new = channel.credentials.access_token.as_ref();
        let known = fresh.entry(channel.id).or_default();
        let mut superseded = std::mem::take(&mut known.superseded);
        for token in known.credentials.access_token.iter().chain(replaced) {
            if Some(token) != new && !superseded.contains(token) {
                superseded.push(token.clone());
            }
        }
        superseded.retain(|token| Some(token) != new);
        let extra = superseded.len().saturating_sub(SUPERSEDED_KEPT);
        superseded.drain(..extra);
        *known = Known {
            credentials: channel.credentials.clone(),
            superseded,
        };
    }

    /// Forgets `channel`'s newest credentials (refused, or the channel
    /// paused); the tokens seen replaced are kept (the forgotten one among
    /// them), so a copy holding one is still known to be out of date.
    pub(super) fn forget(&self, channel: ChannelId) {
        let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = fresh.get_mut(&channel) {
            let forgotten = std::mem::take(&mut known.credentials);
            if let Some(token) = forgotten.access_token
                && !known.superseded.contains(&token)
            {
                known.superseded.push(token);
                let extra = known.superseded.len().saturating_sub(SUPERSEDED_KEPT);
                known.superseded.drain(..extra);
            }
        }
    }
}
