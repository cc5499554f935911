//! [`MockConnector`]: an in-process, scriptable connector for scheduler and
//! pipeline tests. No network, no sleeping.
//!
//! By default every call succeeds. Script failures per operation (or for any
//! operation) with [`MockConnector::fail_next`] and its shorthands; seed comments
//! with [`MockConnector::seed_comments`]; read back every call with
//! [`MockConnector::calls`].
//!
//! `send_private_reply` applies the same policy as the Meta connectors (refused
//! before the call, not recorded, when the [`PrivateReply`](crate::PrivateReply) says one was already
//! sent or the comment is over 7 days old by the mock's clock) and, like the
//! platform, refuses a second private reply to the same comment with a recorded
//! [`ConnectorError::Permanent`](crate::ConnectorError::Permanent) carrying Graph code 10900.
//!
//! ```
//! # tokio_test_block(async {
//! use std::time::Duration;
//! use nexiom_connectors::{ChannelContext, ConnectorError, MockConnector, MockOp,
//!     PlatformConnector, PublishRequest};
//! use nexiom_core::{Content, Platform};
//!
//! let mock = MockConnector::new(Platform::Facebook);
//! mock.rate_limit_next(MockOp::Publish, Duration::from_secs(30));
//! let ctx = ChannelContext::new("page-1", "token");
//! let req = PublishRequest::new(Content::text("hello"));
//! assert!(matches!(mock.publish(&ctx, &req).await, Err(ConnectorError::RateLimited { .. })));
//! let ok = mock.publish(&ctx, &req).await.unwrap();
//! assert_eq!(ok.platform_post_id, "mock-post-1");
//! assert_eq!(mock.calls_of(MockOp::Publish).len(), 2);
//! # });
//! # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

mod connector;
mod script;
mod state;
#[cfg(test)]
mod tests;

pub use state::{MOCK_VERIFY_TOKEN, MOCK_WEBHOOK_SECRET, MockCall, MockConnector, MockOp};
