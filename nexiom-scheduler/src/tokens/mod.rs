//! The token lifecycle of connected channels: [`ChannelTokens`] hands every
//! platform call path (publishing, broadcasts, comment polling, auto-replies,
//! webhook setup) a token that is valid for a while yet, refreshing it ahead
//! of expiry, one refresh per channel at a time across processes; a refused
//! refresh pauses the channel's work until a person reconnects it.
//! [`TokenRefreshWorker`] renews tokens before they expire.

mod error;
mod keeper;
mod refresh;
mod worker;

pub use error::{TokenError, WebhookSetupError};
pub use keeper::{CALL_REFRESH_BACKOFF, ChannelTokens, DEFAULT_MARGIN};
pub use refresh::{ReauthListener, RefreshOutcome, connector_refresh};
pub use worker::{DEFAULT_HORIZON, FAILED_BACKOFF, RenewReport, TOKEN_REFRESH, TokenRefreshWorker};
