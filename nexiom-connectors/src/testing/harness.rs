//! [`ContractHarness`]: what a connector author provides to run the suite.

use std::sync::Arc;

use async_trait::async_trait;
use wiremock::{MockServer, ResponseTemplate};

use super::fixtures::{ExpectedPublish, SeedComment, SeedPost, WebhookSample};
use crate::connector::PlatformConnector;
use crate::error::ConnectorError;
use crate::types::{ChannelContext, PublishRequest};
use crate::webhook::WebhookHeaders;

/// What a connector author provides to run the suite.
#[async_trait]
pub trait ContractHarness: Send + Sync {
    /// Name for reports.
    fn name(&self) -> String;

    /// The connector, pointed at `base_url` (the mock server). Disable internal
    /// retries and waits here so the suite stays fast.
    fn connector(&self, base_url: &str) -> Result<Arc<dyn PlatformConnector>, ConnectorError>;

    /// The channel context the calls are made with.
    fn context(&self) -> ChannelContext;

    /// Secrets that must never appear in any output (tokens, app secrets).
    fn secrets(&self) -> Vec<String>;

    /// A request the connector can publish.
    fn publish_request(&self) -> PublishRequest;

    /// A request validation must refuse before any call, if the platform has one.
    fn invalid_publish_request(&self) -> Option<PublishRequest>;

    /// Mounts the documented success answers of a publish; returns what it must yield.
    async fn mount_publish_success(&self, server: &MockServer) -> ExpectedPublish;

    /// Mounts `response` as the answer to the (first) publish request.
    async fn mount_publish_failure(&self, server: &MockServer, response: ResponseTemplate);

    /// The platform's answer to a call with an expired token.
    fn expired_token_response(&self) -> ResponseTemplate;

    /// The post whose comments are paged.
    fn comment_post_id(&self) -> String {
        "contract-post-1".to_owned()
    }

    /// Mounts `pages` of comments of `post_id` in the platform's paging shape.
    /// Only called when the connector's capabilities include comments.
    async fn mount_comment_pages(
        &self,
        server: &MockServer,
        post_id: &str,
        pages: &[Vec<SeedComment>],
    );

    /// Documented webhook samples.
    fn webhook_samples(&self) -> Vec<WebhookSample>;

    /// Valid signature headers for `body`.
    fn sign(&self, body: &[u8]) -> WebhookHeaders;

    /// A signature header present but not in the documented form.
    fn malformed_signature(&self) -> WebhookHeaders;

    /// Mounts the account's recent posts (newest first, one page) where the
    /// connector's `find_published` and `list_recent_posts` read them. Returns `false` (the default)
    /// when the connector has no lookup: the check is then skipped.
    async fn mount_recent_posts(&self, server: &MockServer, posts: &[SeedPost]) -> bool {
        let _ = (server, posts);
        false
    }

    /// Whether the platform signs the body (Meta, LinkedIn). A platform that only
    /// echoes a shared secret (Telegram) returns `false`: the tampered-body checks
    /// are then skipped, the missing / malformed header checks still run.
    fn signs_bodies(&self) -> bool {
        true
    }
}
