//! [`TokenRefreshWorker`]: renews channel tokens before they expire.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_connectors::ConnectorRegistry;
use nexiom_core::ChannelId;
use serde::Serialize;

use super::keeper::ChannelTokens;
use super::{TokenError, connector_refresh};
use crate::error::Result;
use crate::worker::{Cadence, WorkReport, Worker, WorkerContext};

/// Name (and flag) of [`TokenRefreshWorker`].
pub const TOKEN_REFRESH: &str = "token_refresh";

/// How far ahead the worker renews by default: tokens expiring within the
/// next 24 hours.
pub const DEFAULT_HORIZON: Duration = Duration::hours(24);

/// What one renewal pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RenewReport {
    /// Channels looked at (expiring within the horizon).
    pub expiring: u64,
    /// Tokens renewed (or found renewed by another holder).
    pub renewed: u64,
    /// Refreshes the platform refused: those channels now need
    /// re-authorization.
    pub refused: u64,
    /// Refreshes that failed and will be tried again.
    pub failed: u64,
    /// Tokens the platform will not renew ahead of time while they still
    /// work: their tenants were notified, and this worker leaves them until
    /// they expire (see [`TokenError::NotRenewable`]).
    pub unrenewable: u64,
}

/// Every 10 minutes by default: renews, through [`ChannelTokens`], the token
/// of every active channel expiring within the horizon (default
/// [`DEFAULT_HORIZON`]), so the call paths rarely refresh on their own. Each
/// renewal runs under the channel's lease, so two processes running this
/// worker make one refresh call per channel.
#[derive(Debug, Clone)]
pub struct TokenRefreshWorker {
    tokens: ChannelTokens,
    connectors: ConnectorRegistry,
    horizon: Duration,
    cadence: Cadence,
    /// Channels skipped until the given time: a token that cannot be
    /// renewed ahead of time until its expiry, a renewal that failed for
    /// [`FAILED_BACKOFF`]; so channels that cannot be renewed now never hold
    /// the soonest-expiring places of the list from those that can.
    skip_until: Arc<Mutex<HashMap<ChannelId, DateTime<Utc>>>>,
}

/// The most channels one pass skips (beyond them, the list's first `limit`
/// may all be such channels for this pass).
const MAX_SKIPPED: usize = 10_000;

/// How long a channel whose renewal failed is left before the next try.
pub const FAILED_BACKOFF: Duration = Duration::minutes(30);

impl TokenRefreshWorker {
    /// The worker renewing through `connectors`.
    pub fn new(tokens: ChannelTokens, connectors: ConnectorRegistry) -> Self {
        TokenRefreshWorker {
            tokens,
            connectors,
            horizon: DEFAULT_HORIZON,
            cadence: Cadence::Every(Duration::minutes(10)),
            skip_until: Arc::default(),
        }
    }

    /// Renews tokens expiring within `horizon` (at least the keeper's margin).
    pub fn with_horizon(mut self, horizon: Duration) -> Self {
        self.horizon = horizon.max(self.tokens.margin());
        self
    }

    /// The same worker on another cadence.
    pub fn on(mut self, cadence: impl Into<Cadence>) -> Self {
        self.cadence = cadence.into();
        self
    }

    /// Leaves `channel` out of the passes until `until`.
    fn skip(&self, channel: ChannelId, until: DateTime<Utc>) {
        self.skip_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(channel, until);
    }

    /// One pass: renews up to `limit` expiring tokens, soonest first,
    /// leaving out (in this worker) the channels whose renewal cannot be
    /// done now: until their token's expiry for those the platform will not
    /// renew ahead of time, for [`FAILED_BACKOFF`] after a failed renewal.
    pub async fn renew_expiring(
        &self,
        store: &dyn nexiom_storage::Store,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<RenewReport> {
        let before = now
            .checked_add_signed(self.horizon)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let skipped: HashSet<ChannelId> = {
            let mut skip = self.skip_until.lock().unwrap_or_else(|e| e.into_inner());
            skip.retain(|_, until| *until > now);
            skip.keys().take(MAX_SKIPPED).copied().collect()
        };
        let read = u32::try_from(skipped.len())
            .unwrap_or(u32::MAX)
            .saturating_add(limit);
        let expiring: Vec<_> = store
            .list_expiring_channels(before, read)
            .await?
            .into_iter()
            .filter(|(_, id)| !skipped.contains(id))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        let mut report = RenewReport {
            expiring: expiring.len() as u64,
            ..RenewReport::default()
        };
        for (tenant, id) in expiring {
            let channel = match store.get_channel(tenant, id).await {
                Ok(channel) => channel,
                Err(e) if !e.is_transient() => {
                    tracing::warn!(channel = %id, error = %e, "channel gone before its renewal");
                    report.failed += 1;
                    self.skip(id, now + FAILED_BACKOFF);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let connector = match self.connectors.get(channel.platform.as_str()) {
                Ok(connector) => connector,
                Err(e) => {
                    tracing::warn!(channel = %id, error = %e, "no connector to renew the token with");
                    report.failed += 1;
                    self.skip(id, now + FAILED_BACKOFF);
                    continue;
                }
            };
            let renewed = self
                .tokens
                .renew(tenant, id, self.horizon, |c| async move {
                    connector_refresh(connector.as_ref(), &c).await
                })
                .await;
            match renewed {
                Ok(_) => report.renewed += 1,
                Err(TokenError::Refused { .. } | TokenError::Paused { .. }) => report.refused += 1,
                Err(TokenError::NotRenewable { expires_at, .. }) => {
                    report.unrenewable += 1;
                    self.skip(id, expires_at);
                }
                Err(TokenError::Failed { message, .. }) => {
                    tracing::warn!(channel = %id, %message, "token renewal failed; tried again later");
                    report.failed += 1;
                    self.skip(id, now + FAILED_BACKOFF);
                }
                Err(TokenError::Storage(e)) => return Err(e.into()),
            }
        }
        Ok(report)
    }
}

#[async_trait]
impl Worker for TokenRefreshWorker {
    fn name(&self) -> &str {
        TOKEN_REFRESH
    }

    fn cadence(&self) -> Cadence {
        self.cadence.clone()
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<WorkReport> {
        let limit = ctx.batch.batch_size.max(1);
        let report = self
            .renew_expiring(self.tokens.store().as_ref(), ctx.now, limit)
            .await?;
        Ok(WorkReport {
            items_processed: i64::try_from(report.renewed).unwrap_or(i64::MAX),
            items_failed: i64::try_from(report.refused + report.failed).unwrap_or(i64::MAX),
            results: serde_json::to_value(&report).unwrap_or_default(),
        })
    }
}
