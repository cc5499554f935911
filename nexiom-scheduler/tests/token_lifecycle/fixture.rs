//! The fake LinkedIn platform and the setup the token lifecycle tests share.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use nexiom_connectors::{Backoff, BreakerConfig, HttpConfig, LinkedInConnector, PlatformConnector};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;
use serde_json::json;
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::t0;

pub const ORG: &str = "urn:li:organization:5515715";
pub const OAUTH: &str = "/oauth/v2/accessToken";

pub fn http() -> HttpConfig {
    HttpConfig {
        timeout: StdDuration::from_secs(5),
        max_retries: 0,
        backoff: Backoff::none(),
        breaker: BreakerConfig {
            failure_threshold: 0,
            ..BreakerConfig::default()
        },
        ..HttpConfig::default()
    }
}

pub struct Fake {
    pub server: MockServer,
    pub clock: Arc<ManualClock>,
}

impl Fake {
    pub async fn start(clock: Arc<ManualClock>) -> Fake {
        Fake {
            server: MockServer::start().await,
            clock,
        }
    }

    pub fn connector(&self) -> Arc<dyn PlatformConnector> {
        Arc::new(
            LinkedInConnector::builder()
                .with_base_url(self.server.uri())
                .with_oauth_url(self.server.uri())
                .with_version("202601")
                .with_client_id("client-1")
                .with_client_secret("client-secret-1")
                .with_http_config(http())
                .with_clock(self.clock.clone())
                .build()
                .unwrap(),
        )
    }

    /// LinkedIn's answer to a revoked refresh token.
    pub async fn refuse_refresh(&self) {
        Mock::given(method("POST"))
            .and(path(OAUTH))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "error": "invalid_grant",
                "error_description": "The provided authorization grant or refresh token is invalid, expired or revoked"
            })))
            .mount(&self.server)
            .await;
    }

    /// The token endpoint down: `503` to every refresh.
    pub async fn fail_refresh(&self) {
        Mock::given(method("POST"))
            .and(path(OAUTH))
            .respond_with(ResponseTemplate::new(503).set_body_json(json!({
                "status": 503,
                "message": "Service Unavailable"
            })))
            .mount(&self.server)
            .await;
    }

    /// A grant of a 60-day token, answered after `delay`.
    pub async fn grant_refresh(&self, token: &str, delay: StdDuration) {
        Mock::given(method("POST"))
            .and(path(OAUTH))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({
                        "access_token": token,
                        "expires_in": 5_184_000,
                        "refresh_token": "refresh-2",
                        "refresh_token_expires_in": 31_536_000
                    }))
                    .set_delay(delay),
            )
            .mount(&self.server)
            .await;
    }

    /// Publishing and comment listing work, with `token` only.
    pub async fn accept_calls_with(&self, token: &str) {
        Mock::given(method("POST"))
            .and(path("/rest/posts"))
            .and(header("authorization", format!("Bearer {token}")))
            .respond_with(
                ResponseTemplate::new(201).insert_header("x-restli-id", "urn:li:share:7001"),
            )
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex("^/rest/socialActions/.*/comments$"))
            .and(header("authorization", format!("Bearer {token}")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"elements": [], "paging": {"start": 0, "count": 10}})),
            )
            .mount(&self.server)
            .await;
    }

    pub async fn calls(&self) -> Vec<wiremock::Request> {
        self.server.received_requests().await.unwrap_or_default()
    }

    pub async fn count(&self, verb: &str, prefix: &str) -> usize {
        self.calls()
            .await
            .iter()
            .filter(|r| r.method.as_str() == verb && r.url.path().starts_with(prefix))
            .count()
    }
}

pub async fn linkedin_channel(store: &dyn Store, expires_at: DateTime<Utc>) -> Channel {
    let tenant = store
        .create_tenant(NewTenant::new("Acme", t0()))
        .await
        .unwrap();
    store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::LinkedIn,
            external_account_id: ORG.into(),
            name: "Acme on LinkedIn".into(),
            credentials: Credentials {
                access_token: Some(SecretString::new("old-token")),
                refresh_token: Some(SecretString::new("refresh-1")),
                expires_at: Some(expires_at),
            },
            created_at: t0(),
        })
        .await
        .unwrap()
}

/// The channel ids a listener was told about.
#[derive(Default)]
pub struct Told(pub Mutex<Vec<ChannelId>>);

impl ReauthListener for Told {
    fn channel_needs_reauth(&self, channel: &Channel) {
        self.0.lock().unwrap().push(channel.id);
    }
}

pub fn queue(
    store: &Arc<dyn Store>,
    clock: &Arc<ManualClock>,
    connector: Arc<dyn PlatformConnector>,
    tokens: &ChannelTokens,
) -> PublishQueue {
    let config = PublishConfig {
        retry: RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        },
        ..PublishConfig::for_worker("w1")
    };
    PublishQueue::new(
        Arc::clone(store),
        Arc::new(ConnectorGateway::single(connector)),
        clock.clone(),
        config,
    )
    .with_tokens(tokens.clone())
}
