//! The Meta Graph API client shared by WhatsApp, Instagram and Facebook: URL
//! building with a configurable base URL and version, Bearer auth, Graph error
//! parsing, cursor paging and the long-lived token exchange.

pub(crate) mod builder;
mod classify;
pub(crate) mod webhook;

pub(crate) use classify::{classify, is_try_again_subcode};

use std::fmt;

use chrono::{DateTime, Utc};
use nexiom_core::SecretString;
use reqwest::Method;
use serde_json::Value;
use url::Url;

use crate::error::ConnectorError;
use crate::http::{Body, HttpCore, HttpRequest};
use crate::policy;
use crate::types::{ChannelContext, PrivateReply, SentMessage, TokenGrant};

/// The default Graph API host.
pub const DEFAULT_GRAPH_BASE_URL: &str = "https://graph.facebook.com";

/// The default Graph API version (a config value: versions live about two years).
pub const DEFAULT_GRAPH_VERSION: &str = "v25.0";

/// Settings of the Graph client.
#[derive(Clone, PartialEq, Eq)]
pub struct GraphConfig {
    /// Base URL (`https://graph.facebook.com`, `https://graph.instagram.com`, or
    /// a local server in tests).
    pub base_url: String,
    /// API version path segment, for example `v25.0`.
    pub version: String,
    /// App id (for the token exchange).
    pub app_id: Option<String>,
    /// App secret (token exchange and webhook signatures).
    pub app_secret: Option<SecretString>,
    /// Verify token of the webhook handshake.
    pub verify_token: Option<SecretString>,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            base_url: DEFAULT_GRAPH_BASE_URL.to_owned(),
            version: DEFAULT_GRAPH_VERSION.to_owned(),
            app_id: None,
            app_secret: None,
            verify_token: None,
        }
    }
}

impl fmt::Debug for GraphConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphConfig")
            .field("base_url", &self.base_url)
            .field("version", &self.version)
            .field("app_id", &self.app_id)
            .field("app_secret", &self.app_secret)
            .field("verify_token", &self.verify_token)
            .finish()
    }
}

/// A Graph API client.
#[derive(Clone)]
pub(crate) struct GraphClient {
    platform: &'static str,
    core: HttpCore,
    base: Url,
    version: String,
    app_id: Option<String>,
    app_secret: Option<SecretString>,
}

impl fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClient")
            .field("platform", &self.platform)
            .field("base", &self.base.as_str())
            .field("version", &self.version)
            .field("app_id", &self.app_id)
            .field("app_secret", &self.app_secret)
            .finish_non_exhaustive()
    }
}

/// One page of a Graph edge.
pub(crate) struct GraphPage {
    pub data: Vec<Value>,
    /// `paging.cursors.after`, only when `paging.next` says there is more.
    pub next_after: Option<String>,
    /// `paging.next` says there is more, with no cursor but an `until`: an
    /// edge paged by time (platform-apis §1); its `until` and
    /// `__paging_token` parameters, which read the next page back in time.
    pub next_time: Option<Vec<(String, String)>>,
    /// `paging.next` says there is more, but gives no cursor to read it with
    /// (an edge paged by time, see [`GraphPage::next_time`], or a link with
    /// neither): comment polling stops there, logged.
    pub uncursored_next: bool,
}

/// The parameters of a time-paged edge's next page that carry its position
/// back in time (never its `access_token`, `fields` or `limit`, which the
/// reader sets, nor `since`, which reads forwards).
const TIME_PAGING: [&str; 2] = ["until", "__paging_token"];

impl GraphPage {
    /// The next page of a listing read newest first, as one string for
    /// [`page_query`]: `a:` and the `after` cursor, or `t:` and the time
    /// parameters, form-encoded; `None` at the end. `newest` is the newest
    /// time on this page: a time page whose `until` is later would read
    /// forwards. An error says why the next page cannot be read (the
    /// listing is then not known to be complete).
    pub(crate) fn next_back(
        &self,
        newest: Option<DateTime<Utc>>,
    ) -> Result<Option<String>, &'static str> {
        if let Some(after) = &self.next_after {
            return Ok(Some(format!("a:{after}")));
        }
        if let Some(params) = &self.next_time {
            let until = params
                .iter()
                .find(|(k, _)| k == "until")
                .and_then(|(_, v)| v.parse::<i64>().ok())
                .ok_or("the next page's `until` is not a Unix time")?;
            if newest.is_some_and(|newest| until > newest.timestamp()) {
                return Err("the next page's `until` is later than the page it follows");
            }
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            return Ok(Some(format!("t:{query}")));
        }
        if self.uncursored_next {
            return Err(
                "the page links a next page with neither a cursor nor a time to read it with",
            );
        }
        Ok(None)
    }
}

/// The query parameters that read the page a [`GraphPage::next_back`]
/// names (a bare string is an `after` cursor).
pub(crate) fn page_query(token: &str) -> Vec<(String, String)> {
    if let Some(query) = token.strip_prefix("t:") {
        return url::form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| TIME_PAGING.contains(&k.as_ref()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    }
    let after = token.strip_prefix("a:").unwrap_or(token);
    vec![("after".to_owned(), after.to_owned())]
}

impl GraphClient {
    pub(crate) fn new(
        platform: &'static str,
        core: HttpCore,
        config: &GraphConfig,
    ) -> Result<Self, ConnectorError> {
        let base = Url::parse(config.base_url.trim_end_matches('/')).map_err(|e| {
            ConnectorError::config(format!("invalid Graph base URL {:?}: {e}", config.base_url))
        })?;
        if base.cannot_be_a_base() {
            return Err(ConnectorError::config(
                "the Graph base URL cannot have paths",
            ));
        }
        let version = config.version.trim().trim_matches('/').to_owned();
        if version.is_empty() || version.contains('/') {
            return Err(ConnectorError::config(format!(
                "invalid Graph version {:?} (expected e.g. v25.0)",
                config.version
            )));
        }
        Ok(GraphClient {
            platform,
            core,
            base,
            version,
            app_id: config.app_id.clone(),
            app_secret: config.app_secret.clone().filter(|s| !s.is_empty()),
        })
    }

    pub(crate) fn core(&self) -> &HttpCore {
        &self.core
    }

    /// `base/version/seg1/seg2…`, each segment percent-encoded (an id from outside
    /// can never change the path).
    pub(crate) fn url(&self, segments: &[&str]) -> Result<Url, ConnectorError> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| ConnectorError::config("the Graph base URL cannot have paths"))?;
            path.pop_if_empty().push(&self.version);
            for s in segments {
                if s.is_empty() {
                    return Err(ConnectorError::Validation(
                        crate::error::ValidationError::InvalidField {
                            field: "id",
                            reason: "must not be empty".into(),
                        },
                    ));
                }
                path.push(s);
            }
        }
        Ok(url)
    }

    fn request(&self, ctx: &ChannelContext, method: Method, url: Url) -> HttpRequest {
        let mut req = HttpRequest::new(method, url);
        req.bearer = Some(ctx.access_token.clone());
        req.channel_key = Some(ctx.key());
        req
    }

    pub(crate) async fn get(
        &self,
        ctx: &ChannelContext,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Value, ConnectorError> {
        let mut req = self.request(ctx, Method::GET, self.url(segments)?);
        req.query = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.core
            .execute(self.platform, req, classify)
            .await?
            .json(self.platform)
    }

    pub(crate) async fn post(
        &self,
        ctx: &ChannelContext,
        segments: &[&str],
        body: Value,
    ) -> Result<Value, ConnectorError> {
        let mut req = self.request(ctx, Method::POST, self.url(segments)?);
        req.body = Body::Json(body);
        self.core
            .execute(self.platform, req, classify)
            .await?
            .json(self.platform)
    }

    /// Meta Private Replies (Instagram and Messenger, platform-apis §2.5): checks
    /// the text (not empty, at most `max_chars` characters) and the policy (one
    /// private reply per comment, within 7 days of it) before any request, then
    /// `POST /{account-id}/messages` with
    /// `{"recipient":{"comment_id":…},"message":{"text":…}}`.
    pub(crate) async fn send_private_reply(
        &self,
        ctx: &ChannelContext,
        reply: &PrivateReply,
        max_chars: usize,
        now: DateTime<Utc>,
    ) -> Result<SentMessage, ConnectorError> {
        use crate::error::ValidationError;
        if reply.comment_id.trim().is_empty() {
            return Err(ValidationError::InvalidField {
                field: "comment_id",
                reason: "must not be empty".into(),
            }
            .into());
        }
        if reply.text.trim().is_empty() {
            return Err(ValidationError::EmptyContent.into());
        }
        let len = reply.text.chars().count();
        if len > max_chars {
            return Err(ValidationError::TextTooLong {
                platform: self.platform.to_owned(),
                len,
                max: max_chars,
            }
            .into());
        }
        policy::check_private_reply(self.platform, reply, now)?;
        let v = self
            .post(
                ctx,
                &[&ctx.account_id, "messages"],
                serde_json::json!({
                    "recipient": {"comment_id": reply.comment_id},
                    "message": {"text": reply.text},
                }),
            )
            .await?;
        sent_message(self.platform, &v)
    }

    pub(crate) async fn get_page(
        &self,
        ctx: &ChannelContext,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<GraphPage, ConnectorError> {
        let v = self.get(ctx, segments, query).await?;
        parse_page(self.platform, &v)
    }

    /// `GET /oauth/access_token?grant_type=fb_exchange_token…`: a long-lived token
    /// for the context's token. A refusal (expired token, revoked app) is
    /// [`ConnectorError::NeedsReauth`]: an expired token cannot be exchanged.
    pub(crate) async fn exchange_token(
        &self,
        ctx: &ChannelContext,
        now: DateTime<Utc>,
    ) -> Result<TokenGrant, ConnectorError> {
        let (Some(app_id), Some(secret)) = (&self.app_id, &self.app_secret) else {
            return Err(ConnectorError::config(
                "the token exchange needs the app id and app secret",
            ));
        };
        let mut req = HttpRequest::new(Method::GET, self.url(&["oauth", "access_token"])?);
        req.query = vec![
            ("grant_type".into(), "fb_exchange_token".into()),
            ("client_id".into(), app_id.clone()),
            ("client_secret".into(), secret.expose().to_owned()),
            (
                "fb_exchange_token".into(),
                ctx.access_token.expose().to_owned(),
            ),
        ];
        req.extra_secrets = vec![secret.clone(), ctx.access_token.clone()];
        self.token_request(req, now).await
    }

    /// `GET /refresh_access_token?grant_type=ig_refresh_token…` (Instagram
    /// Login, `graph.instagram.com`, no version in the path): the long-lived
    /// Instagram User token renewed for 60 days (it must be at least 24 hours
    /// old and unexpired). A refusal is [`ConnectorError::NeedsReauth`].
    pub(crate) async fn refresh_instagram_token(
        &self,
        ctx: &ChannelContext,
        now: DateTime<Utc>,
    ) -> Result<TokenGrant, ConnectorError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ConnectorError::config("the Graph base URL cannot have paths"))?
            .pop_if_empty()
            .push("refresh_access_token");
        let mut req = HttpRequest::new(Method::GET, url);
        req.query = vec![
            ("grant_type".into(), "ig_refresh_token".into()),
            ("access_token".into(), ctx.access_token.expose().to_owned()),
        ];
        req.extra_secrets = vec![ctx.access_token.clone()];
        self.token_request(req, now).await
    }

    /// Whether the base URL is Instagram Login's host (`graph.instagram.com`).
    pub(crate) fn is_instagram_login_host(&self) -> bool {
        self.base.host_str() == Some("graph.instagram.com")
    }

    /// Sends a token request and reads `{access_token, expires_in}`; a
    /// refusal (unauthorized, forbidden, permanent) is `NeedsReauth`.
    async fn token_request(
        &self,
        req: HttpRequest,
        now: DateTime<Utc>,
    ) -> Result<TokenGrant, ConnectorError> {
        let resp = match self.core.execute(self.platform, req, classify).await {
            Ok(r) => r,
            Err(
                e @ (ConnectorError::Unauthorized { .. }
                | ConnectorError::Forbidden { .. }
                | ConnectorError::Permanent { .. }),
            ) => {
                return Err(ConnectorError::NeedsReauth {
                    platform: self.platform.to_owned(),
                    reason: e.to_string(),
                });
            }
            Err(e) => return Err(e),
        };
        let v = resp.json(self.platform)?;
        let token = v
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ConnectorError::invalid_response(
                    self.platform,
                    "no access_token in the token answer",
                )
            })?;
        let expires_at = v
            .get("expires_in")
            .and_then(crate::time::as_i64)
            .and_then(|s| crate::time::after_secs(now, s));
        Ok(TokenGrant {
            access_token: SecretString::new(token),
            refresh_token: None,
            expires_at,
            refresh_token_expires_at: None,
        })
    }
}

/// Reads `{"data":[…],"paging":{"cursors":{"after":…},"next":…}}`.
pub(crate) fn parse_page(platform: &str, v: &Value) -> Result<GraphPage, ConnectorError> {
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ConnectorError::invalid_response(platform, "no data array in the page"))?
        .clone();
    let paging = v.get("paging");
    let next = paging
        .and_then(|p| p.get("next"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let has_next = next.is_some();
    let next_after = if has_next {
        paging
            .and_then(|p| p.pointer("/cursors/after"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    } else {
        None
    };
    let next_time = match next {
        Some(next) if next_after.is_none() => Url::parse(next).ok().and_then(|url| {
            let params: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, v)| TIME_PAGING.contains(&k.as_ref()) && !v.is_empty())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            params.iter().any(|(k, _)| k == "until").then_some(params)
        }),
        _ => None,
    };
    Ok(GraphPage {
        uncursored_next: has_next && next_after.is_none(),
        data,
        next_after,
        next_time,
    })
}

/// A Send API answer `{"recipient_id": …, "message_id": …}`.
pub(crate) fn sent_message(platform: &str, v: &Value) -> Result<SentMessage, ConnectorError> {
    let id = v
        .get("message_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConnectorError::invalid_response(platform, "no message_id in the answer"))?;
    Ok(SentMessage {
        message_id: id.to_owned(),
        recipient_id: v
            .get("recipient_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// The `id` field of an answer, or `InvalidResponse`.
pub(crate) fn id_of(platform: &str, v: &Value, what: &str) -> Result<String, ConnectorError> {
    match v.get("id") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(ConnectorError::invalid_response(
            platform,
            format!("no id in the {what} answer"),
        )),
    }
}

/// The `message` of a Send API call (Messenger, Instagram direct): an
/// attachment or a text (with the content's link), never both, which the
/// API does not take in one message. Content with both is refused rather
/// than sent without its text.
pub(crate) fn send_api_message(content: &nexiom_core::Content) -> Result<Value, ConnectorError> {
    let text = content.text_with_link();
    match content.media.first() {
        Some(_) if !text.trim().is_empty() => Err(crate::error::ValidationError::InvalidField {
            field: "text",
            reason: "a direct message carries an attachment or a text, not both: send them as \
                     two messages"
                .into(),
        }
        .into()),
        Some(m) => Ok(serde_json::json!({
            "attachment": {"type": m.kind.as_str(), "payload": {"url": m.url}}
        })),
        None => Ok(serde_json::json!({ "text": text })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_follow_next_only() {
        let p = parse_page(
            "instagram",
            &json!({"data":[{"id":"1"}],"paging":{"cursors":{"before":"b","after":"a1"},"next":"https://x/next"}}),
        )
        .expect("page");
        assert_eq!(p.next_after.as_deref(), Some("a1"));
        let last = parse_page(
            "instagram",
            &json!({"data":[],"paging":{"cursors":{"after":"a2"}}}),
        )
        .expect("page");
        assert_eq!(last.next_after, None);
        assert!(parse_page("instagram", &json!({"oops":1})).is_err());
        assert!(!last.uncursored_next);
        // A next page paged by time (no cursor): comment polling stops
        // there; a lookup reads it back in time by its `until` and paging
        // token, never the link's access token, nor a `since`.
        let timed = parse_page(
            "facebook",
            &json!({"data":[],"paging":{"next":"https://x/v25.0/1/feed?access_token=SECRET&limit=25&until=1700000000&__paging_token=enc%2Bx"}}),
        )
        .expect("page");
        assert!(timed.uncursored_next && timed.next_after.is_none());
        let newest = DateTime::from_timestamp(1_700_000_500, 0);
        let token = timed
            .next_back(newest)
            .expect("readable")
            .expect("a next page");
        assert!(!token.contains("SECRET"), "{token}");
        assert_eq!(
            page_query(&token),
            vec![
                ("until".to_owned(), "1700000000".to_owned()),
                ("__paging_token".to_owned(), "enc+x".to_owned())
            ]
        );
        assert!(
            timed
                .next_back(DateTime::from_timestamp(1_699_999_000, 0))
                .is_err(),
            "an `until` later than the page reads forwards"
        );
        assert_eq!(
            page_query(&p.next_back(None).expect("ok").expect("cursor")),
            vec![("after".to_owned(), "a1".to_owned())]
        );
        assert_eq!(last.next_back(None), Ok(None));
        for next in [
            "https://x/feed?access_token=SECRET",
            "https://x/feed?since=1700000000&__paging_token=t&__previous=1",
            "https://x/feed?until=soon",
        ] {
            let page =
                parse_page("facebook", &json!({"data":[],"paging":{"next": next}})).expect("page");
            assert!(
                page.uncursored_next && page.next_back(None).is_err(),
                "{next}"
            );
        }
    }

    #[test]
    fn urls_encode_segments() {
        let core = HttpCore::with_defaults().expect("core");
        let g = GraphClient::new(
            "facebook",
            core,
            &GraphConfig {
                base_url: "http://127.0.0.1:9/".into(),
                ..GraphConfig::default()
            },
        )
        .expect("client");
        let u = g.url(&["123_456", "comments"]).expect("url");
        assert_eq!(u.as_str(), "http://127.0.0.1:9/v25.0/123_456/comments");
        let evil = g.url(&["../me", "x?y"]).expect("url");
        assert!(evil.path().contains("..%2Fme"), "{evil}");
        assert!(evil.query().is_none());
    }
}
