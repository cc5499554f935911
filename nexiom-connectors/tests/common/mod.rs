//! Contract-suite harnesses of the four built-in connectors: how to build each
//! against a local server and the documented answers to mount.
//!
//! This module holds what the harnesses share (credentials, fixtures, test HTTP
//! settings, Graph helpers); each connector's harness is in its own module
//! (`whatsapp`, `instagram`, `facebook`, `linkedin`), re-exported here, and
//! `lookup` serves recent-post listings.
#![allow(dead_code)]

mod facebook;
mod instagram;
mod linkedin;
pub mod lookup;
mod whatsapp;

#[allow(unused_imports)] // each test target uses some of them
pub use self::{
    facebook::{FacebookHarness, PAGE_ID, facebook},
    instagram::{IG_USER_ID, InstagramHarness, instagram},
    linkedin::{LI_ORG, LI_POST, LinkedInHarness, linkedin},
    whatsapp::{WA_PHONE_ID, WhatsAppHarness, whatsapp},
};

use std::time::Duration;

use chrono::DateTime;
use nexiom_connectors::testing::SeedComment;
use nexiom_connectors::{Backoff, BreakerConfig, HttpConfig, MetaWebhookVerifier, WebhookHeaders};
use nexiom_core::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const APP_SECRET: &str = "contract-app-secret-0123456789";
pub const ACCESS_TOKEN: &str = "EAAG-contract-access-token-abcdef";
pub const VERIFY_TOKEN: &str = "contract-verify-token";
pub const LI_CLIENT_SECRET: &str = "li-contract-client-secret-xyz";
pub const LI_TOKEN: &str = "AQV-linkedin-contract-token-123456";

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// Fast, deterministic HTTP settings for tests.
pub fn test_http() -> HttpConfig {
    HttpConfig {
        timeout: Duration::from_secs(5),
        max_retries: 0,
        backoff: Backoff::none(),
        breaker: BreakerConfig {
            failure_threshold: 0,
            ..BreakerConfig::default()
        },
        ..HttpConfig::default()
    }
}

fn graph_time(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S+0000").to_string())
        .unwrap_or_default()
}

pub fn expired_graph_token() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({"error":{
        "message":"Error validating access token: Session has expired on Friday, 09-Jan-26 10:00:00 PST.",
        "type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"Az8OkIo2cFw"}}))
}

fn meta_sign(body: &[u8]) -> WebhookHeaders {
    WebhookHeaders::new().with(
        "X-Hub-Signature-256",
        MetaWebhookVerifier::sign(&SecretString::new(APP_SECRET), body),
    )
}

fn meta_malformed() -> WebhookHeaders {
    WebhookHeaders::new().with("X-Hub-Signature-256", "sha1=0123456789abcdef")
}

/// Mounts Graph cursor pages of `/{post}/comments`; `item` renders one comment.
async fn mount_graph_pages(
    server: &MockServer,
    post_id: &str,
    pages: &[Vec<SeedComment>],
    item: fn(&SeedComment) -> Value,
) {
    let route = format!("/v25.0/{post_id}/comments");
    for (i, page) in pages.iter().enumerate() {
        let data: Vec<Value> = page.iter().map(item).collect();
        let after = format!("cursor-{}", i + 1);
        let mut paging = json!({"cursors": {"before": format!("cursor-b{i}"), "after": after}});
        if i + 1 < pages.len() {
            paging["next"] = json!(format!("{}{route}?after={after}", server.uri()));
        }
        let mock = Mock::given(method("GET"))
            .and(path(route.as_str()))
            .and(header(
                "authorization",
                format!("Bearer {ACCESS_TOKEN}").as_str(),
            ));
        let mock = if i == 0 {
            mock.and(query_param_is_missing("after"))
        } else {
            mock.and(query_param("after", format!("cursor-{i}").as_str()))
        };
        mock.respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": data, "paging": paging})),
        )
        .mount(server)
        .await;
    }
}
