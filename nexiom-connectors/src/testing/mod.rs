//! The reusable contract suite (feature `testing`): drives any
//! [`PlatformConnector`](crate::PlatformConnector) against a local [`wiremock`] server loaded with the
//! platform's documented shapes, and checks the trait's `# Contract`.
//!
//! A connector author implements [`ContractHarness`] — how to build the connector
//! against a base URL, and how to mount the platform's documented responses — and
//! calls [`run_contract_suite`]. Platform differences are expressed by the harness
//! (and by the connector's capabilities), never by `if platform == …` in the suite.
//!
//! Checks (each on a fresh mock server):
//!
//! | check | what |
//! |---|---|
//! | `publish_returns_ids` | a documented success answer yields the post id (and URL) |
//! | `validation_sends_nothing` | refused content is a validation error and no request reaches the server |
//! | `rate_limit_429` | `429` + `Retry-After: 120` is `RateLimited { retry_after: 120 s }` |
//! | `expired_token` | the platform's expired-token answer is `Unauthorized` |
//! | `server_error` | `503` is `Transient` |
//! | `paging_exactly_once` | following cursors over 3 pages yields each comment once, in order |
//! | `webhook_samples` | every documented sample verifies and normalizes to the expected events, whole and event by event |
//! | `tampered_webhooks` | a flipped byte, a missing and a malformed signature are the three distinct errors |
//! | `garbage_webhooks` | non-payloads are errors (event by event: errors or refused events), not panics |
//! | `lookup_by_content_and_window` | `find_published` finds the post with the request's text created after the attempt, not an identical older one; another text is `NotFound` (skipped without lookup) |
//! | `recent_posts_newest_first` | `list_recent_posts` reads the account's posts newest first with id, text and time, and honours the limit (skipped without a listing) |
//! | `no_secret_in_output` | no secret of the harness appears in `Debug` of the connector or context, nor in any error met |

mod checks;
mod fixtures;
mod harness;
mod lookup;
mod report;
mod run;
mod webhooks;

pub use wiremock;

pub use fixtures::{ExpectedEvent, ExpectedPublish, SeedComment, SeedPost, WebhookSample};
pub use harness::ContractHarness;
pub use report::ContractReport;
pub use run::run_contract_suite;
