//! [`TokenRefreshWorker`]: renews channel tokens before they expire.

use async_trait::async_trait;
use chrono::Duration;
use nexiom_connectors::ConnectorRegistry;
use serde::Serialize;

use super::keeper::{ChannelTokens, TokenError, connector_refresh};
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
}

impl TokenRefreshWorker {
    /// The worker renewing through `connectors`.
    pub fn new(tokens: ChannelTokens, connectors: ConnectorRegistry) -> Self {
        TokenRefreshWorker {
            tokens,
            connectors,
            horizon: DEFAULT_HORIZON,
            cadence: Cadence::Every(Duration::minutes(10)),
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

    /// One pass: renews up to `limit` expiring tokens, soonest first.
    pub async fn renew_expiring(
        &self,
        store: &dyn nexiom_storage::Store,
        now: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<RenewReport> {
        let before = now
            .checked_add_signed(self.horizon)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        let expiring = store.list_expiring_channels(before, limit).await?;
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
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let connector = match self.connectors.get(channel.platform.as_str()) {
                Ok(connector) => connector,
                Err(e) => {
                    tracing::warn!(channel = %id, error = %e, "no connector to renew the token with");
                    report.failed += 1;
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
                Err(TokenError::Failed { message, .. }) => {
                    tracing::warn!(channel = %id, %message, "token renewal failed; tried again next run");
                    report.failed += 1;
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
