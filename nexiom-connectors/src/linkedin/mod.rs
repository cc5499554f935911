//! LinkedIn Community Management (platform-apis §4): Posts API with the version
//! headers, the post URN from `x-restli-id`, comments via `socialActions` with
//! `start`/`count` paging, the OAuth refresh-token grant, organization social
//! action webhooks.
//!
//! The channel's `account_id` is the **author URN** (`urn:li:organization:…` or
//! `urn:li:person:…`).

mod builder;
mod comments;
mod lookup;
mod webhook;
mod wire;

use std::fmt;

use async_trait::async_trait;
use nexiom_core::{Platform, SecretString};
use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

use crate::capabilities::Capabilities;
use crate::connector::PlatformConnector;
use crate::error::{ConnectorError, ValidationError};
use crate::http::{Body, HttpCore, HttpRequest, HttpResponse};
use crate::lookup::{LookupOutcome, LookupQuery};
use crate::recent::RecentPost;
use crate::time;
use crate::types::{
    ChallengeResponse, ChannelContext, CommentPage, NormalizedEvent, OutboundMessage,
    PublishRequest, Published, SentMessage, TokenGrant, WebhookSetup,
};
use crate::webhook::{LinkedInWebhookVerifier, WebhookHeaders};

pub use builder::{
    DEFAULT_LINKEDIN_BASE_URL, DEFAULT_LINKEDIN_OAUTH_URL, DEFAULT_LINKEDIN_VERSION,
    LinkedInBuilder,
};
pub use wire::escape_little_text;
use wire::{classify, comment_object, encode_urn};

const NAME: &str = "linkedin";

/// The LinkedIn connector.
#[derive(Clone)]
pub struct LinkedInConnector {
    core: HttpCore,
    base: String,
    oauth: String,
    version: String,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    application_id: Option<String>,
    page_size: u32,
    capabilities: Capabilities,
    verifier: LinkedInWebhookVerifier,
}

impl fmt::Debug for LinkedInConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkedInConnector")
            .field("base", &self.base)
            .field("version", &self.version)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl LinkedInConnector {
    /// A builder.
    pub fn builder() -> LinkedInBuilder {
        LinkedInBuilder::new()
    }

    /// What the Posts API takes here: text up to 3000 characters and an optional
    /// article link. Image / video upload (`/rest/images?action=initializeUpload`)
    /// is not implemented, so no media kind is accepted.
    pub fn default_capabilities() -> Capabilities {
        Capabilities {
            dm: false,
            comments: true,
            schedule_native: false,
            media_kinds: Vec::new(),
            max_image_mb: None,
            max_video_mb: None,
            max_video_seconds: None,
            max_text_length: 3000,
            max_caption_length: None,
            max_media_items: 0,
            requires_media: false,
            link_in_text: false,
        }
    }

    fn rest_url(&self, path: &str) -> Result<Url, ConnectorError> {
        Url::parse(&format!("{}/rest/{path}", self.base))
            .map_err(|e| ConnectorError::config(format!("cannot build a LinkedIn URL: {e}")))
    }

    fn request(&self, ctx: &ChannelContext, method: Method, url: Url) -> HttpRequest {
        let mut req = HttpRequest::new(method, url);
        req.bearer = Some(ctx.access_token.clone());
        req.channel_key = Some(ctx.key());
        req.headers = vec![
            ("LinkedIn-Version", self.version.clone()),
            ("X-Restli-Protocol-Version", "2.0.0".to_owned()),
        ];
        req
    }

    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, ConnectorError> {
        self.core.execute(NAME, req, classify).await
    }

    fn restli_id(resp: &HttpResponse) -> Option<String> {
        resp.header("x-restli-id")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }
}
#[async_trait]
impl PlatformConnector for LinkedInConnector {
    fn name(&self) -> &str {
        NAME
    }

    fn platform(&self) -> Platform {
        Platform::LinkedIn
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// The refresh-token grant (`POST /oauth/v2/accessToken`, form encoded).
    /// Refresh tokens are issued only to approved partners: without one, or when
    /// LinkedIn refuses it, the channel needs re-authorization
    /// ([`ConnectorError::NeedsReauth`]). A response without a new refresh token
    /// leaves the stored one in place ([`TokenGrant::apply_to`]).
    async fn refresh_token(&self, ctx: &ChannelContext) -> Result<TokenGrant, ConnectorError> {
        let Some(refresh) = ctx.refresh_token.as_ref().filter(|t| !t.is_empty()) else {
            return Err(ConnectorError::NeedsReauth {
                platform: NAME.into(),
                reason: "no refresh token (LinkedIn issues them to approved partners only)".into(),
            });
        };
        let (Some(client_id), Some(secret)) = (&self.client_id, &self.client_secret) else {
            return Err(ConnectorError::config(
                "the LinkedIn refresh grant needs the client id and client secret",
            ));
        };
        let url = Url::parse(&format!("{}/oauth/v2/accessToken", self.oauth))
            .map_err(|e| ConnectorError::config(format!("cannot build the OAuth URL: {e}")))?;
        let mut req = HttpRequest::new(Method::POST, url);
        req.idempotent = false;
        req.body = Body::Form(vec![
            ("grant_type".into(), "refresh_token".into()),
            ("refresh_token".into(), refresh.expose().to_owned()),
            ("client_id".into(), client_id.clone()),
            ("client_secret".into(), secret.expose().to_owned()),
        ]);
        req.extra_secrets = vec![refresh.clone(), secret.clone(), ctx.access_token.clone()];
        let resp = match self.send(req).await {
            Ok(r) => r,
            Err(
                e @ (ConnectorError::Unauthorized { .. }
                | ConnectorError::Forbidden { .. }
                | ConnectorError::Permanent { .. }),
            ) => {
                return Err(ConnectorError::NeedsReauth {
                    platform: NAME.into(),
                    reason: e.to_string(),
                });
            }
            Err(e) => return Err(e),
        };
        let v = resp.json(NAME)?;
        let access = v
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ConnectorError::invalid_response(NAME, "no access_token in the grant")
            })?;
        let now = self.core.clock().now();
        let at = |k: &str| {
            v.get(k)
                .and_then(time::as_i64)
                .and_then(|s| time::after_secs(now, s))
        };
        Ok(TokenGrant {
            access_token: SecretString::new(access),
            refresh_token: v
                .get("refresh_token")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(SecretString::new),
            expires_at: at("expires_in"),
            refresh_token_expires_at: at("refresh_token_expires_in"),
        })
    }

    /// `POST /rest/posts`; the post URN comes from `x-restli-id`. A 201 without the
    /// header is [`ConnectorError::OutcomeUnknown`] (created, id unknown: do not
    /// post again).
    async fn publish(
        &self,
        ctx: &ChannelContext,
        request: &PublishRequest,
    ) -> Result<Published, ConnectorError> {
        let content = &request.content;
        self.capabilities
            .validate(NAME, content, request.schedule_at)?;
        let mut body = json!({
            "author": ctx.account_id,
            "commentary": escape_little_text(&content.text),
            "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": false,
        });
        if let Some(link) = &content.link {
            body["content"] = json!({"article": {"source": link, "title": link}});
        }
        let mut req = self.request(ctx, Method::POST, self.rest_url("posts")?);
        req.body = Body::Json(body);
        let resp = self.send(req).await?;
        let urn = Self::restli_id(&resp).ok_or_else(|| ConnectorError::OutcomeUnknown {
            platform: NAME.into(),
            reason: "the post was created but LinkedIn sent no x-restli-id".into(),
        })?;
        Ok(Published {
            url: Some(format!("https://www.linkedin.com/feed/update/{urn}")),
            ids: vec![urn.clone()],
            platform_post_id: urn,
            failed_recipients: Vec::new(),
            unknown_recipients: Vec::new(),
            unsent_recipients: Vec::new(),
            scheduled: false,
        })
    }

    fn supports_recent_posts(&self) -> bool {
        true
    }

    /// `GET /rest/posts?author={urn}&q=author&sortBy=LAST_MODIFIED&start=&count=`:
    /// the author's posts most recently created or edited first.
    async fn list_recent_posts(
        &self,
        ctx: &ChannelContext,
        limit: usize,
    ) -> Result<Vec<RecentPost>, ConnectorError> {
        self.recent_posts(ctx, limit).await
    }

    fn supports_lookup(&self) -> bool {
        true
    }

    /// `GET /rest/posts?author={urn}&q=author&sortBy=LAST_MODIFIED`, newest
    /// first, matched on `commentary` (as sent, little-text escaped, or
    /// unescaped) and `createdAt` (see [`crate::lookup`]).
    async fn find_published(
        &self,
        ctx: &ChannelContext,
        query: &LookupQuery,
    ) -> Result<LookupOutcome, ConnectorError> {
        self.find_post(ctx, query).await
    }

    /// Replies are comments on their comment's URN, read after it.
    fn new_comments_may_precede_the_cursor(&self) -> bool {
        true
    }

    /// `GET /rest/socialActions/{urn}/comments?start=&count=`; the cursor is the
    /// next `start` offset. The replies are not listed (they are comments on
    /// their comment's URN).
    async fn list_new_comments(
        &self,
        ctx: &ChannelContext,
        post_id: &str,
        cursor: Option<&str>,
    ) -> Result<CommentPage, ConnectorError> {
        self.comment_page(ctx, post_id, cursor, false).await
    }

    /// As `list_new_comments`, each top-level comment whose
    /// `commentsSummary` counts replies followed by its replies, read from
    /// its own URN (at most 10 pages each).
    async fn list_comments_with_replies(
        &self,
        ctx: &ChannelContext,
        post_id: &str,
        cursor: Option<&str>,
    ) -> Result<CommentPage, ConnectorError> {
        self.comment_page(ctx, post_id, cursor, true).await
    }

    /// A reply to a reply goes under the top-level comment (comments nest
    /// one level deep).
    fn reply_target<'a>(&self, comment_id: &'a str, parent_id: Option<&'a str>) -> &'a str {
        parent_id
            .filter(|p| p.starts_with("urn:li:comment:"))
            .unwrap_or(comment_id)
    }

    /// `POST /rest/socialActions/{comment urn}/comments` with `parentComment`.
    async fn reply_comment(
        &self,
        ctx: &ChannelContext,
        comment_id: &str,
        text: &str,
    ) -> Result<String, ConnectorError> {
        if text.trim().is_empty() {
            return Err(ValidationError::EmptyContent.into());
        }
        let object = comment_object(comment_id).ok_or_else(|| ValidationError::InvalidField {
            field: "comment_id",
            reason: format!("{comment_id:?} is not a comment URN urn:li:comment:(<post>,<id>)"),
        })?;
        let url = self.rest_url(&format!(
            "socialActions/{}/comments",
            encode_urn(comment_id)
        ))?;
        let mut req = self.request(ctx, Method::POST, url);
        req.body = Body::Json(json!({
            "actor": ctx.account_id,
            "object": object,
            "message": {"text": text},
            "parentComment": comment_id,
        }));
        let resp = self.send(req).await?;
        // The id as comment listings give it (`commentUrn`): the body's
        // comment, else `x-restli-id` (the comment's URN, or only its id),
        // else the body's `id`; a bare id is made a URN under the parent's
        // activity, where the reply is listed.
        let body = resp.json(NAME).unwrap_or(Value::Null);
        let text = |k: &str| match body.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        text("commentUrn")
            .or_else(|| Self::restli_id(&resp))
            .or_else(|| text("id"))
            .map(|id| {
                if id.starts_with("urn:") {
                    id
                } else {
                    format!("urn:li:comment:({object},{id})")
                }
            })
            .ok_or_else(|| ConnectorError::OutcomeUnknown {
                platform: NAME.into(),
                reason: "the reply was created but no id came back".into(),
            })
    }

    async fn send_message(
        &self,
        _ctx: &ChannelContext,
        _message: &OutboundMessage,
    ) -> Result<SentMessage, ConnectorError> {
        Err(ConnectorError::unsupported(NAME, "direct messages"))
    }

    /// `PUT /rest/eventSubscriptions/(developerApplication:…,user:…,entity:…,eventType:ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS)`.
    /// Needs the application id (builder) and the subscriber person URN (setup).
    async fn setup_webhook(
        &self,
        ctx: &ChannelContext,
        setup: &WebhookSetup,
    ) -> Result<(), ConnectorError> {
        let app = self
            .application_id
            .as_deref()
            .ok_or_else(|| ConnectorError::config("LinkedIn webhooks need the application id"))?;
        let user = setup
            .subscriber
            .as_deref()
            .ok_or(ValidationError::InvalidField {
                field: "subscriber",
                reason: "the person URN of the subscribing admin is required".into(),
            })?;
        let key = format!(
            "(developerApplication:{},user:{},entity:{},eventType:ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS)",
            encode_urn(&format!("urn:li:developerApplication:{app}")),
            encode_urn(user),
            encode_urn(&ctx.account_id),
        );
        let mut req = self.request(
            ctx,
            Method::PUT,
            self.rest_url(&format!("eventSubscriptions/{key}"))?,
        );
        req.idempotent = true;
        req.body = Body::Json(json!({"webhook": setup.callback_url}));
        self.send(req).await?;
        Ok(())
    }

    fn answer_challenge(
        &self,
        query: &[(String, String)],
    ) -> Result<ChallengeResponse, ConnectorError> {
        Ok(self.verifier.answer_challenge(query)?)
    }

    fn verify_webhook(&self, headers: &WebhookHeaders, body: &[u8]) -> Result<(), ConnectorError> {
        Ok(self.verifier.verify(headers, body)?)
    }

    fn handle_webhook(&self, body: &[u8]) -> Result<Vec<NormalizedEvent>, ConnectorError> {
        webhook::normalize(body, self.core.clock().now())
    }

    fn handle_webhook_events(
        &self,
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::types::WebhookItem>, ConnectorError> {
        webhook::normalize_events(body, now)
    }
}
