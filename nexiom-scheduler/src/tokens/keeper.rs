//! [`ChannelTokens`]: one keeper of channel tokens for every call path.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use nexiom_connectors::{ChannelContext, PlatformConnector, WebhookSetup};
use nexiom_core::{
    Channel, ChannelId, ChannelStatus, Clock, Credentials, NewNotification, SecretString, TenantId,
};
use nexiom_storage::Store;

mod grants;
mod known;

use known::Known;

use super::{ReauthListener, RefreshOutcome, TokenError, WebhookSetupError, connector_refresh};

/// How long before expiry a token is refreshed on the call paths: 5 minutes.
pub const DEFAULT_MARGIN: Duration = Duration::minutes(5);

/// How long a call path waits, after a refresh that failed while the token
/// still works, before asking for one again (unless the platform said how
/// long): 1 minute. The token is used meanwhile.
pub const CALL_REFRESH_BACKOFF: Duration = Duration::minutes(1);

/// The longest platform answer kept as a channel's reason.
const MAX_REASON: usize = 2000;

/// A token not to be refreshed before an instant (it cannot be, or a
/// refresh just failed), and that instant.
type Unrefreshable = (SecretString, DateTime<Utc>);

/// Why a refresh runs, which decides what a refusal does while the token
/// still works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// A call is about to be made: a refusal while the token still works
    /// lets the call use it.
    Call,
    /// The renewal worker, ahead of time: a refusal while the token still
    /// works notifies the tenant and leaves the channel active.
    Renew,
    /// The platform answered `Unauthorized`: a refusal pauses the channel.
    Unauthorized,
}

/// Keeps channel tokens valid for every platform call path. Share one per
/// process (clones share state).
///
/// - **Ahead of expiry**: a token expiring within the margin (default
///   [`DEFAULT_MARGIN`]) is refreshed before the call; a token without an
///   expiry is used as is.
/// - **One refresh per channel at a time, across processes**: the refresh
///   runs under the channel's lease
///   ([`CredentialStore::lock_credentials`](nexiom_storage::CredentialStore::lock_credentials):
///   a row lock on Postgres, a mutex in memory). A caller that waited reads
///   what the holder stored and uses it instead of refreshing again (a
///   rotating refresh token used twice invalidates the channel on some
///   platforms).
/// - **A refused refresh pauses the channel**: it is set `needs_reauth` with
///   the platform's answer and the time, the [`ReauthListener`] is told, and
///   every path makes zero platform calls for it: posts stay queued, polls
///   and replies wait (the claims skip channels that are not active). After
///   [`ChannelTokens::reconnect`], the work resumes.
/// - Refreshed tokens are stored (sealed on Postgres) and kept in this
///   process, so callers holding an older copy of the channel use the new
///   token without reading it again.
/// - **A refresh that fails** (network, `5xx`, throttled) while the token
///   still works lets the call use it; no refresh is asked for again before
///   the platform's `Retry-After` or [`CALL_REFRESH_BACKOFF`], so an outage of
///   the token endpoint neither fails the channel's calls nor draws a refresh
///   per call. Once the token has expired, the call fails with
///   [`TokenError::Failed`], to be retried. A grant that could not be stored (the
///   database failed meanwhile) is not dropped: a platform that rotates
///   refresh tokens no longer honours the old one. It is used by this
///   process and stored by a call (at most one try per 5 s) or renewal for
///   the channel, over the token it replaced only (a reconnection meanwhile
///   wins). When the platform refuses its token before it is stored, the
///   refresh after the `401` is made with its refresh token; if that refresh
///   fails, the grant is kept as refused: stored for its refresh token,
///   marked expired, never handed to a call.
#[derive(Clone)]
pub struct ChannelTokens {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    margin: Duration,
    /// Per channel: the newest credentials this process stored or read
    /// under the channel's lease, and the tokens it saw them replace.
    fresh: Arc<Mutex<HashMap<ChannelId, Known>>>,
    /// Per channel: a token the platform would not refresh while it still
    /// works, and its expiry: used as it is until then, with no lease taken
    /// and no refresh asked for again at every call.
    unrefreshable: Arc<Mutex<HashMap<ChannelId, Unrefreshable>>>,
    /// Per channel: a grant the platform made that could not be stored,
    /// stored at the next call (see `grants`).
    unstored: Arc<Mutex<HashMap<ChannelId, grants::Unstored>>>,
    /// Channels this process saw paused (a refresh refused here, or the
    /// channel read paused under its lease): a caller's copy that still
    /// says `active` is read again before any call, so the rest of a pass
    /// makes no call with the refused token.
    paused_here: Arc<Mutex<HashSet<ChannelId>>>,
    listener: Option<Arc<dyn ReauthListener>>,
}

impl std::fmt::Debug for ChannelTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelTokens")
            .field("margin", &self.margin)
            .field("listener", &self.listener.is_some())
            .finish_non_exhaustive()
    }
}

impl ChannelTokens {
    /// A keeper over `store`, reading time from `clock`, with the default
    /// margin.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        ChannelTokens {
            store,
            clock,
            margin: DEFAULT_MARGIN,
            fresh: Arc::default(),
            unrefreshable: Arc::default(),
            unstored: Arc::default(),
            paused_here: Arc::default(),
            listener: None,
        }
    }

    fn paused_here(&self) -> std::sync::MutexGuard<'_, HashSet<ChannelId>> {
        self.paused_here.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refreshes tokens expiring within `margin` (negative margins count as
    /// zero).
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin.max(Duration::zero());
        self
    }

    /// Tells `listener` when a channel needs re-authorization.
    pub fn with_listener(mut self, listener: Arc<dyn ReauthListener>) -> Self {
        self.listener = Some(listener);
        self
    }

    /// The margin.
    pub fn margin(&self) -> Duration {
        self.margin
    }

    /// The store the keeper reads and writes channels in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn valid_for(&self, expires_at: Option<DateTime<Utc>>, within: Duration) -> bool {
        match expires_at {
            None => true,
            Some(at) => self
                .clock
                .now()
                .checked_add_signed(within)
                .is_none_or(|limit| at > limit),
        }
    }

    /// Whether `credentials` hold a token not to be refreshed now (the
    /// platform would not, or a refresh failed moments ago), and that still
    /// works.
    fn known_unrefreshable(&self, channel: ChannelId, credentials: &Credentials) -> bool {
        let now = self.clock.now();
        let known = self.unrefreshable.lock().unwrap_or_else(|e| e.into_inner());
        known.get(&channel).is_some_and(|(token, until)| {
            credentials.access_token.as_ref() == Some(token)
                && *until > now
                && credentials.expires_at.is_none_or(|at| at > now)
        })
    }

    /// Records that `channel`'s current token is not to be refreshed before
    /// `until` (its expiry, when the platform will not refresh it).
    fn unrefreshable_until(&self, channel: &Channel, until: DateTime<Utc>) {
        if let Some(token) = &channel.credentials.access_token {
            let now = self.clock.now();
            let mut known = self.unrefreshable.lock().unwrap_or_else(|e| e.into_inner());
            known.retain(|_, (_, at)| *at > now);
            known.insert(channel.id, (token.clone(), until));
        }
    }

    fn paused(channel: &Channel) -> TokenError {
        TokenError::Paused {
            channel: channel.id,
            status: channel.status,
            reason: channel
                .status_reason
                .clone()
                .unwrap_or_else(|| format!("the channel is {}", channel.status)),
        }
    }

    /// `channel` with credentials valid for at least the margin: as given
    /// (or as refreshed here since), or refreshed now with `refresh` under
    /// the channel's lease. [`TokenError::Paused`] for a channel that is not
    /// active, [`TokenError::Refused`] when the refresh was refused now.
    pub async fn fresh<F, Fut>(&self, channel: &Channel, refresh: F) -> Result<Channel, TokenError>
    where
        F: FnOnce(Channel) -> Fut + Send,
        Fut: Future<Output = RefreshOutcome> + Send,
    {
        let reread;
        let seen_paused = self.paused_here().contains(&channel.id);
        let channel = if channel.status == ChannelStatus::Active && !seen_paused {
            channel
        } else {
            // The caller's copy may be older than a reconnection, or (seen
            // paused here) than the pause.
            reread = self
                .store
                .get_channel(channel.tenant_id, channel.id)
                .await?;
            if reread.status != ChannelStatus::Active {
                self.paused_here().insert(channel.id);
                return Err(Self::paused(&reread));
            }
            self.paused_here().remove(&channel.id);
            &reread
        };
        if self.unstored_due(channel.id) {
            self.store_unstored(channel).await;
        }
        let credentials = self.cached(channel);
        if self.valid_for(credentials.expires_at, self.margin)
            || self.known_unrefreshable(channel.id, &credentials)
        {
            let mut current = channel.clone();
            current.credentials = credentials;
            return Ok(current);
        }
        self.refresh_locked(
            channel.tenant_id,
            channel.id,
            credentials.access_token,
            self.margin,
            Need::Call,
            refresh,
        )
        .await
    }

    /// [`ChannelTokens::fresh`] through the channel's connector, as the
    /// connector's call context.
    pub async fn context(
        &self,
        connector: &dyn PlatformConnector,
        channel: &Channel,
    ) -> Result<ChannelContext, TokenError> {
        let channel = self
            .fresh(channel, |c| async move {
                connector_refresh(connector, &c).await
            })
            .await?;
        Ok(crate::publish::channel_context(&channel))
    }

    /// Subscribes the channel's account to the platform's webhooks
    /// ([`PlatformConnector::setup_webhook`]) with a token from this keeper
    /// (a paused channel makes no call).
    pub async fn setup_webhook(
        &self,
        connector: &dyn PlatformConnector,
        channel: &Channel,
        setup: &WebhookSetup,
    ) -> Result<(), WebhookSetupError> {
        let ctx = self.context(connector, channel).await?;
        connector.setup_webhook(&ctx, setup).await?;
        Ok(())
    }

    /// After the platform answered `Unauthorized` to `used` (the token the
    /// call carried): the token another holder stored meanwhile, or a new one
    /// refreshed now under the lease.
    pub async fn after_unauthorized<F, Fut>(
        &self,
        channel: &Channel,
        used: Option<&SecretString>,
        refresh: F,
    ) -> Result<Channel, TokenError>
    where
        F: FnOnce(Channel) -> Fut + Send,
        Fut: Future<Output = RefreshOutcome> + Send,
    {
        self.forget(channel.id);
        self.refresh_locked(
            channel.tenant_id,
            channel.id,
            used.cloned(),
            self.margin,
            Need::Unauthorized,
            refresh,
        )
        .await
    }

    /// Renews the channel's token when it expires within `within` (the
    /// refresh worker's ahead-of-time renewal). Returns the channel as
    /// stored afterwards.
    pub async fn renew<F, Fut>(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        within: Duration,
        refresh: F,
    ) -> Result<Channel, TokenError>
    where
        F: FnOnce(Channel) -> Fut + Send,
        Fut: Future<Output = RefreshOutcome> + Send,
    {
        self.refresh_locked(tenant, channel, None, within, Need::Renew, refresh)
            .await
    }

    /// The refresh under the channel's lease. With `used`, a stored token
    /// other than `used` that is valid for `within` is taken as the
    /// refreshed one; unless after `Unauthorized`, any stored token valid
    /// for `within` is kept. A refusal pauses the channel after
    /// `Unauthorized` or once the token has expired; while the token still
    /// works, a call uses it and a renewal notifies the tenant
    /// ([`TokenError::NotRenewable`]).
    async fn refresh_locked<F, Fut>(
        &self,
        tenant: TenantId,
        id: ChannelId,
        used: Option<SecretString>,
        within: Duration,
        need: Need,
        refresh: F,
    ) -> Result<Channel, TokenError>
    where
        F: FnOnce(Channel) -> Fut + Send,
        Fut: Future<Output = RefreshOutcome> + Send,
    {
        let lease = self.store.lock_credentials(tenant, id).await?;
        let current = lease.channel().clone();
        if current.status != ChannelStatus::Active {
            drop(lease);
            self.forget(id);
            self.paused_here().insert(id);
            return Err(Self::paused(&current));
        }
        // A grant made here that could not be stored: stored now, unless the
        // platform refused its token (after a 401) or it no longer works;
        // then the refresh is made with its refresh token, the newest the
        // platform issued.
        let rejected = used.as_ref().filter(|_| need == Need::Unauthorized);
        let mut from = current.clone();
        match self.take_unstored(&current, rejected) {
            Some(grants::Pending::Usable(grant)) if self.valid_for(grant.expires_at, within) => {
                return self.store_grant(lease, &current, grant).await;
            }
            // Refused by the platform, or no longer valid: the refresh is
            // made with its refresh token.
            Some(grants::Pending::Usable(grant) | grants::Pending::Rejected(grant)) => {
                from.credentials = grant;
            }
            None => {
                let valid = self.valid_for(current.credentials.expires_at, within);
                let replaced = used.is_some() && current.credentials.access_token != used;
                let force = need == Need::Unauthorized;
                if valid && (replaced || !force) {
                    drop(lease);
                    self.remember(&current, used.as_ref());
                    return Ok(current);
                }
            }
        }
        let outcome = refresh(from.clone()).await;
        if from.credentials != current.credentials && !matches!(outcome, RefreshOutcome::Granted(_))
        {
            // The refresh from the waiting grant did not give another one:
            // the grant (its refresh token) waits on, so nothing issued is
            // lost; a refusal below pauses the channel all the same.
            self.keep_unstored(&current, from.credentials.clone(), true);
        }
        match outcome {
            RefreshOutcome::Granted(credentials) => {
                crate::telemetry::token_refresh(true);
                self.store_grant(lease, &current, credentials).await
            }
            RefreshOutcome::Refused(reason) => {
                let now = self.clock.now();
                let works_until = current.credentials.expires_at.filter(|at| *at > now);
                match (need, works_until) {
                    (Need::Call, Some(expires_at)) => {
                        drop(lease);
                        tracing::warn!(channel = %id, %reason,
                            "the token cannot be refreshed; used until it expires");
                        self.remember(&current, used.as_ref());
                        self.unrefreshable_until(&current, expires_at);
                        return Ok(current);
                    }
                    (Need::Renew, Some(expires_at)) => {
                        drop(lease);
                        self.unrefreshable_until(&current, expires_at);
                        return Err(self.not_renewable(tenant, id, reason, expires_at).await);
                    }
                    _ => {}
                }
                let (_, reason) = self.mark_refused(lease, &reason).await?;
                Err(TokenError::Refused {
                    channel: id,
                    reason,
                })
            }
            RefreshOutcome::Failed {
                message,
                retry_after,
            } => {
                drop(lease);
                let now = self.clock.now();
                let works_until = current.credentials.expires_at.filter(|at| *at > now);
                if let (Need::Call, Some(expires_at)) = (need, works_until) {
                    // The token still works: the call goes on with it, and
                    // no refresh is asked for again before the wait is over.
                    let wait =
                        retry_after.map_or(CALL_REFRESH_BACKOFF, |d| d.max(Duration::zero()));
                    let until = now
                        .checked_add_signed(wait)
                        .map_or(expires_at, |t| t.min(expires_at));
                    tracing::warn!(channel = %id, %message, %until,
                        "refreshing the token failed; the current one is used meanwhile");
                    self.remember(&current, used.as_ref());
                    self.unrefreshable_until(&current, until);
                    return Ok(current);
                }
                Err(TokenError::Failed {
                    channel: id,
                    message,
                    retry_after,
                })
            }
        }
    }

    /// Sets the channel `needs_reauth` with `reason` (a call path learned
    /// that the platform refuses the channel's tokens for good), under the
    /// channel's lease, and tells the listener; unless the stored token is no
    /// longer `used` (the one the refused call carried): a reconnection or a
    /// refresh replaced it meanwhile, and the channel is left as it is.
    pub async fn refuse(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        used: Option<&SecretString>,
        reason: &str,
    ) -> Result<Channel, TokenError> {
        let lease = self.store.lock_credentials(tenant, channel).await?;
        let current = lease.channel().clone();
        let replaced = used.is_some() && current.credentials.access_token.as_ref() != used;
        if current.status != ChannelStatus::Active || replaced {
            drop(lease);
            return Ok(current);
        }
        let (stored, _) = self.mark_refused(lease, reason).await?;
        Ok(stored)
    }

    /// A renewal refused while the token still works: the tenant is sent
    /// `channel_needs_reauth` for the instant the token expires (once per
    /// expiry, whatever the number of passes and processes: the
    /// notification's key), and the channel stays active. When the notice
    /// cannot be enqueued, [`TokenError::Failed`], so the renewal is tried
    /// again later and the notice with it.
    async fn not_renewable(
        &self,
        tenant: TenantId,
        id: ChannelId,
        reason: String,
        expires_at: DateTime<Utc>,
    ) -> TokenError {
        let notice = NewNotification::channel_needs_reauth(
            tenant,
            id,
            &format!(
                "the token cannot be renewed ({reason}); reconnect the channel before it expires"
            ),
            expires_at,
        );
        match self.store.enqueue_notification(notice).await {
            Ok(inserted) if inserted.created => tracing::warn!(
                channel = %id, %reason, %expires_at,
                "token cannot be renewed ahead of expiry: tenant notified"),
            Ok(_) => {}
            // Not told yet: a failure to retry (the renewal worker comes back
            // after its backoff, asks again and enqueues the notice then),
            // not a channel left alone until its token expires.
            Err(e) => {
                tracing::warn!(channel = %id, error = %e,
                    "the notice of a token that cannot be renewed was not enqueued; tried again later");
                return TokenError::Failed {
                    channel: id,
                    message: format!(
                        "the token cannot be renewed ({reason}) and the tenant's notice could not be enqueued: {e}"
                    ),
                    retry_after: None,
                };
            }
        }
        TokenError::NotRenewable {
            channel: id,
            reason,
            expires_at,
        }
    }

    /// Records a refused refresh under `lease`: the channel `needs_reauth`
    /// with the (cleaned, bounded) reason, its notification, the metric, the
    /// log and the listener. Returns the channel as stored and the reason.
    async fn mark_refused(
        &self,
        lease: Box<dyn nexiom_storage::CredentialLease + '_>,
        reason: &str,
    ) -> Result<(Channel, String), TokenError> {
        let id = lease.channel().id;
        let mut reason = if reason.trim().is_empty() {
            "the platform refused the refresh without a reason".to_owned()
        } else {
            reason.replace('\0', "")
        };
        if reason.len() > MAX_REASON {
            let mut end = MAX_REASON;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        let stored = lease.refuse(&reason, self.clock.now()).await?;
        crate::telemetry::token_refresh(false);
        tracing::warn!(channel = %id, %reason, "token refresh refused: channel needs re-authorization");
        self.forget(id);
        self.paused_here().insert(id);
        if let Some(listener) = &self.listener {
            listener.channel_needs_reauth(&stored);
        }
        Ok((stored, reason))
    }

    /// A person reconnected the channel with `credentials`: stored, the
    /// channel `active` again, and its paused work resumes.
    pub async fn reconnect(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        credentials: Credentials,
    ) -> Result<Channel, TokenError> {
        let stored = self
            .store
            .reconnect_channel(tenant, channel, credentials, self.clock.now())
            .await?;
        self.paused_here().remove(&channel);
        self.remember(&stored, None);
        Ok(stored)
    }
}
