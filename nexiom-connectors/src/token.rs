//! [`TokenKeeper`]: token lifecycle around any connector.
//!
//! - Refreshes **before** expiry, `margin` ahead (default 5 minutes), so calls do
//!   not fail on a token that dies mid-flight.
//! - **One refresh at a time per channel**: concurrent callers wait for the one in
//!   flight and reuse its result instead of each spending the refresh token (a
//!   rotating refresh token used twice invalidates the channel on some platforms).
//! - A grant without a new refresh token never erases the stored one
//!   ([`TokenGrant::apply_to_context`]).
//! - A refused refresh is [`ConnectorError::NeedsReauth`], remembered for the
//!   channel: later calls fail at once instead of looping on the platform until
//!   [`TokenKeeper::forget`] is called (after a person re-authorizes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use nexiom_core::Clock;

use crate::connector::PlatformConnector;
use crate::error::ConnectorError;
use crate::types::{ChannelContext, TokenGrant};

#[derive(Debug, Default)]
struct Slot {
    last: Option<TokenGrant>,
    /// The tokens this keeper's refreshes replaced, newest last (at most
    /// [`REPLACED_KEPT`]): a caller still holding one of them gets `last`.
    replaced: Vec<nexiom_core::SecretString>,
    needs_reauth: Option<String>,
}

/// How many replaced tokens a channel's slot remembers.
const REPLACED_KEPT: usize = 8;

/// Keeps channel tokens fresh; share one per process (clones share state).
#[derive(Debug, Clone)]
pub struct TokenKeeper {
    clock: Arc<dyn Clock>,
    margin: Duration,
    slots: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>>,
}

impl TokenKeeper {
    /// A keeper refreshing `margin` before expiry, reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>, margin: Duration) -> Self {
        TokenKeeper {
            clock,
            margin,
            slots: Arc::default(),
        }
    }

    fn slot(&self, key: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots: MutexGuard<'_, _> = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(key.to_owned()).or_default().clone()
    }

    fn fresh_enough(&self, expires_at: Option<DateTime<Utc>>) -> bool {
        match expires_at {
            None => true,
            Some(at) => at > crate::time::after(self.clock.now(), self.margin),
        }
    }

    /// Makes sure `ctx` holds a token valid for at least the margin, refreshing it
    /// through `connector` when needed. Returns the grant when the token changed
    /// (store it with [`TokenGrant::apply_to`]), `None` when it was fresh.
    pub async fn ensure_fresh(
        &self,
        connector: &dyn PlatformConnector,
        ctx: &mut ChannelContext,
    ) -> Result<Option<TokenGrant>, ConnectorError> {
        if self.fresh_enough(ctx.expires_at) {
            return Ok(None);
        }
        self.refresh(connector, ctx).await.map(Some)
    }

    /// Refreshes now (for example after an `Unauthorized`), unless another caller
    /// just refreshed the token `ctx` holds and the new one is still fresh
    /// (then `ctx` gets it). A token this keeper never replaced (a channel
    /// reconnected since) is refreshed, never swapped for an older one.
    pub async fn force_refresh(
        &self,
        connector: &dyn PlatformConnector,
        ctx: &mut ChannelContext,
    ) -> Result<TokenGrant, ConnectorError> {
        self.refresh(connector, ctx).await
    }

    async fn refresh(
        &self,
        connector: &dyn PlatformConnector,
        ctx: &mut ChannelContext,
    ) -> Result<TokenGrant, ConnectorError> {
        let slot = self.slot(&format!("{}:{}", connector.name(), ctx.key()));
        let mut slot = slot.lock().await;
        if let Some(reason) = &slot.needs_reauth {
            return Err(ConnectorError::NeedsReauth {
                platform: connector.name().to_owned(),
                reason: reason.clone(),
            });
        }
        // Someone refreshed while we waited: reuse their token, when the
        // caller holds a token one of this keeper's refreshes replaced. A
        // caller with another token (its channel reconnected since, say)
        // would otherwise be handed back an older, perhaps revoked, one.
        if let Some(last) = &slot.last
            && slot.replaced.contains(&ctx.access_token)
            && self.fresh_enough(last.expires_at)
        {
            let grant = last.clone();
            grant.apply_to_context(ctx);
            return Ok(grant);
        }
        match connector.refresh_token(ctx).await {
            Ok(grant) => {
                if grant.access_token != ctx.access_token {
                    slot.replaced.push(ctx.access_token.clone());
                    let excess = slot.replaced.len().saturating_sub(REPLACED_KEPT);
                    slot.replaced.drain(..excess);
                }
                grant.apply_to_context(ctx);
                slot.last = Some(grant.clone());
                Ok(grant)
            }
            Err(ConnectorError::NeedsReauth { platform, reason }) => {
                tracing::warn!(platform, "channel needs re-authorization");
                slot.needs_reauth = Some(reason.clone());
                Err(ConnectorError::NeedsReauth { platform, reason })
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the channel was marked as needing re-authorization.
    pub async fn needs_reauth(
        &self,
        connector: &dyn PlatformConnector,
        ctx: &ChannelContext,
    ) -> bool {
        let slot = self.slot(&format!("{}:{}", connector.name(), ctx.key()));
        let slot = slot.lock().await;
        slot.needs_reauth.is_some()
    }

    /// Forgets what is known about a channel (after a person re-authorized it).
    pub fn forget(&self, connector: &dyn PlatformConnector, ctx: &ChannelContext) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.remove(&format!("{}:{}", connector.name(), ctx.key()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;
    use crate::mock::{MockConnector, MockOp};
    use chrono::TimeZone;
    use nexiom_core::{ManualClock, Platform};

    fn setup() -> (ManualClock, MockConnector, TokenKeeper) {
        let clock = ManualClock::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .expect("t"),
        );
        let mock = MockConnector::new(Platform::LinkedIn).with_clock(Arc::new(clock.clone()));
        let keeper = TokenKeeper::new(Arc::new(clock.clone()), Duration::from_secs(300));
        (clock, mock, keeper)
    }

    #[tokio::test]
    async fn refreshes_within_the_margin_only() {
        let (clock, mock, keeper) = setup();
        let mut ctx = ChannelContext::new("urn:li:organization:1", "old-token-value")
            .with_refresh_token("refresh-token-value");
        ctx.expires_at = Some(clock.now() + chrono::Duration::minutes(30));
        assert_eq!(
            keeper.ensure_fresh(&mock, &mut ctx).await.expect("fresh"),
            None
        );
        clock.advance(chrono::Duration::minutes(26));
        let grant = keeper.ensure_fresh(&mock, &mut ctx).await.expect("refresh");
        assert!(grant.is_some());
        assert_eq!(ctx.access_token.expose(), "mock-token-1");
        assert_eq!(
            ctx.refresh_token.as_ref().map(|t| t.expose()),
            Some("refresh-token-value"),
            "a grant without a refresh token keeps the old one"
        );
        assert_eq!(mock.calls_of(MockOp::RefreshToken).len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_refresh() {
        let (clock, mock, keeper) = setup();
        let mut base = ChannelContext::new("acct", "expired-token-value");
        base.expires_at = Some(clock.now() - chrono::Duration::minutes(1));
        let mut handles = Vec::new();
        for _ in 0..8 {
            let (keeper, mock, mut ctx) = (keeper.clone(), mock.clone(), base.clone());
            handles.push(tokio::spawn(async move {
                keeper
                    .ensure_fresh(&mock, &mut ctx)
                    .await
                    .map(|_| ctx.access_token)
            }));
        }
        for h in handles {
            let token = h.await.expect("join").expect("refresh");
            assert_eq!(token.expose(), "mock-token-1");
        }
        assert_eq!(mock.calls_of(MockOp::RefreshToken).len(), 1);
    }

    /// A caller whose token is newer than the one the keeper cached (its
    /// channel reconnected since): its refresh after a 401 goes to the
    /// platform, never handing back the older token.
    #[tokio::test]
    async fn a_newer_token_than_the_cached_one_is_refreshed_not_replaced() {
        let (clock, mock, keeper) = setup();
        let mut ctx = ChannelContext::new("acct", "expired-token-value");
        ctx.expires_at = Some(clock.now() - chrono::Duration::minutes(1));
        keeper.ensure_fresh(&mock, &mut ctx).await.expect("refresh");
        let cached = ctx.access_token.clone();
        let cached_until = ctx.expires_at.expect("the grant's expiry");

        // Reconnected by a person: a token that expires after the cached one.
        let mut reconnected = ChannelContext::new("acct", "reconnected-token-value");
        reconnected.expires_at = Some(cached_until + chrono::Duration::days(30));
        keeper
            .force_refresh(&mock, &mut reconnected)
            .await
            .expect("refresh");
        assert_ne!(reconnected.access_token, cached, "not the older token");
        assert_eq!(mock.calls_of(MockOp::RefreshToken).len(), 2);

        // One that never expires is newer too.
        let mut forever = ChannelContext::new("acct", "forever-token-value");
        keeper
            .force_refresh(&mock, &mut forever)
            .await
            .expect("refresh");
        assert_eq!(mock.calls_of(MockOp::RefreshToken).len(), 3);

        // A caller still holding a token a refresh replaced gets the newest
        // one, without a call; twice-replaced too.
        let mut stale = ChannelContext::new("acct", "expired-token-value");
        stale.expires_at = Some(clock.now());
        keeper
            .force_refresh(&mock, &mut stale)
            .await
            .expect("reuse");
        assert_eq!(stale.access_token, forever.access_token);
        let mut stale = ChannelContext::new("acct", "reconnected-token-value");
        keeper
            .force_refresh(&mock, &mut stale)
            .await
            .expect("reuse");
        assert_eq!(stale.access_token, forever.access_token);
        assert_eq!(mock.calls_of(MockOp::RefreshToken).len(), 3);
    }

    #[tokio::test]
    async fn refused_refresh_marks_the_channel() {
        let (clock, mock, keeper) = setup();
        mock.fail_next(
            MockOp::RefreshToken,
            1,
            ConnectorError::NeedsReauth {
                platform: "linkedin".into(),
                reason: "refresh token revoked".into(),
            },
        );
        let mut ctx = ChannelContext::new("acct", "t-value-123");
        ctx.expires_at = Some(clock.now());
        assert!(matches!(
            keeper.ensure_fresh(&mock, &mut ctx).await,
            Err(ConnectorError::NeedsReauth { .. })
        ));
        assert!(keeper.needs_reauth(&mock, &ctx).await);
        // No second call to the platform: the channel waits for a person.
        assert!(keeper.force_refresh(&mock, &mut ctx).await.is_err());
        assert_eq!(mock.calls_of(MockOp::RefreshToken).len(), 1);
        keeper.forget(&mock, &ctx);
        assert!(keeper.force_refresh(&mock, &mut ctx).await.is_ok());
        // Transient failures are not remembered.
        mock.fail_next(
            MockOp::RefreshToken,
            1,
            ConnectorError::Transient {
                platform: "linkedin".into(),
                detail: ApiError::default(),
            },
        );
        ctx.expires_at = Some(clock.now());
        keeper.forget(&mock, &ctx);
        assert!(keeper.ensure_fresh(&mock, &mut ctx).await.is_err());
        assert!(!keeper.needs_reauth(&mock, &ctx).await);
    }
}
