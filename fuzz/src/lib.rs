//! Shared pieces of the fuzz targets: connectors built once with dummy settings
//! (no request is ever sent), and the checks every target makes on what a parser
//! returns. The same checks back the stable property tests, so a fuzz finding and
//! a `cargo test` failure mean the same thing.
#![forbid(unsafe_code)]

use std::sync::LazyLock;

use nexiom_connectors::{
    FacebookConnector, InstagramConnector, LinkedInConnector, PlatformConnector, WhatsAppConnector,
};

/// The dummy app secret of the Meta connectors.
pub const APP_SECRET: &str = "fuzz-app-secret";
/// The dummy verify token of the Meta connectors.
pub const VERIFY_TOKEN: &str = "fuzz-verify-token";
/// The dummy LinkedIn client secret.
pub const LI_CLIENT_SECRET: &str = "fuzz-li-client-secret";

/// An address nothing listens on: the connectors never call it here.
const BASE: &str = "http://127.0.0.1:9";

fn built<T>(r: Result<T, nexiom_connectors::ConnectorError>, what: &str) -> T {
    match r {
        Ok(c) => c,
        Err(e) => panic!("fuzz set-up: building the {what} connector failed: {e}"),
    }
}

/// The WhatsApp connector.
pub static WHATSAPP: LazyLock<WhatsAppConnector> = LazyLock::new(|| {
    built(
        WhatsAppConnector::builder()
            .with_base_url(BASE)
            .with_app_secret(APP_SECRET)
            .with_verify_token(VERIFY_TOKEN)
            .build(),
        "WhatsApp",
    )
});

/// The Instagram connector.
pub static INSTAGRAM: LazyLock<InstagramConnector> = LazyLock::new(|| {
    built(
        InstagramConnector::builder()
            .with_base_url(BASE)
            .with_app_secret(APP_SECRET)
            .with_verify_token(VERIFY_TOKEN)
            .with_app_id("1234567890")
            .build(),
        "Instagram",
    )
});

/// The Facebook connector.
pub static FACEBOOK: LazyLock<FacebookConnector> = LazyLock::new(|| {
    built(
        FacebookConnector::builder()
            .with_base_url(BASE)
            .with_app_secret(APP_SECRET)
            .with_verify_token(VERIFY_TOKEN)
            .with_app_id("1234567890")
            .build(),
        "Facebook",
    )
});

/// The LinkedIn connector.
pub static LINKEDIN: LazyLock<LinkedInConnector> = LazyLock::new(|| {
    built(
        LinkedInConnector::builder()
            .with_base_url(BASE)
            .with_oauth_url(BASE)
            .with_client_id("li-client-id")
            .with_client_secret(LI_CLIENT_SECRET)
            .with_application_id("9999")
            .build(),
        "LinkedIn",
    )
});

/// The four connectors.
pub fn connectors() -> [&'static dyn PlatformConnector; 4] {
    [&*WHATSAPP, &*INSTAGRAM, &*FACEBOOK, &*LINKEDIN]
}

/// Feeds `body` to `connector.handle_webhook` and checks the answer: a body that
/// is not JSON is an error, and every event has a non-empty id of the connector's
/// platform.
pub fn check_normalizer(connector: &dyn PlatformConnector, body: &[u8]) {
    let result = connector.handle_webhook(body);
    match result {
        Ok(events) => {
            assert!(
                serde_json::from_slice::<serde_json::Value>(body).is_ok(),
                "{}: events from a body that is not JSON",
                connector.name()
            );
            for e in events {
                assert!(
                    !e.event_id.is_empty(),
                    "{}: empty event id",
                    connector.name()
                );
                assert_eq!(
                    e.platform,
                    connector.platform(),
                    "{}: platform",
                    connector.name()
                );
            }
        }
        Err(e) => {
            // Errors are rendered in logs and answers: formatting must not panic.
            let _ = e.to_string();
        }
    }
}

/// Query pairs from a raw query string (`a=1&b=2`, percent- and `+`-decoded), as
/// the receiver reads them.
pub fn query_pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// Splits a request as the signature target reads it: `Name: value` header lines,
/// an empty line, then the body (bytes after it, as received).
pub fn headers_and_body(raw: &[u8]) -> (nexiom_connectors::WebhookHeaders, &[u8]) {
    let (head, body) = match raw.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&raw[..i], &raw[i + 2..]),
        None => (raw, &raw[raw.len()..]),
    };
    let headers = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|line| {
            line.split_once(':')
                .map(|(n, v)| (n.to_owned(), v.trim_start().to_owned()))
        })
        .collect();
    (headers, body)
}
