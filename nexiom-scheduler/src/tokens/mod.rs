//! The token lifecycle of connected channels: [`ChannelTokens`] hands every
//! platform call path (publishing, broadcasts, comment polling, auto-replies,
//! webhook setup) a token that is valid for a while yet, refreshing it ahead
//! of expiry, one refresh per channel at a time across processes; a refused
//! refresh pauses the channel's work until a person reconnects it.
//! [`TokenRefreshWorker`] renews tokens before they expire.

mod keeper;
mod worker;

pub use keeper::{
    CALL_REFRESH_BACKOFF, ChannelTokens, DEFAULT_MARGIN, ReauthListener, RefreshOutcome,
    TokenError, WebhookSetupError, connector_refresh,
};
pub use worker::{DEFAULT_HORIZON, FAILED_BACKOFF, RenewReport, TOKEN_REFRESH, TokenRefreshWorker};
