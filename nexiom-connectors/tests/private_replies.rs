//! Private replies (Meta's Send API with `recipient: {"comment_id": …}`) against a
//! local wiremock server: the documented request, one private reply per comment
//! and the 7-day window refused before any request, platform errors mapped.

mod common;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use nexiom_connectors::{
    ChannelContext, ConnectorError, ErrorAction, FacebookConnector, InstagramConnector,
    PlatformConnector, PolicyError, PrivateReply, ValidationError,
};
use nexiom_core::ManualClock;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const COMMENT_ID: &str = "17865799348089039";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0)
        .single()
        .expect("t")
}

fn ig(server: &MockServer) -> InstagramConnector {
    InstagramConnector::builder()
        .with_base_url(server.uri())
        .with_http_config(test_http())
        .with_clock(Arc::new(ManualClock::new(now())))
        .build()
        .expect("build")
}

fn fb(server: &MockServer) -> FacebookConnector {
    FacebookConnector::builder()
        .with_base_url(server.uri())
        .with_http_config(test_http())
        .with_clock(Arc::new(ManualClock::new(now())))
        .build()
        .expect("build")
}

/// The two Meta connectors with their account id (IG user id, Page id).
fn meta(server: &MockServer) -> Vec<(Arc<dyn PlatformConnector>, &'static str)> {
    vec![
        (
            Arc::new(ig(server)) as Arc<dyn PlatformConnector>,
            IG_USER_ID,
        ),
        (Arc::new(fb(server)) as Arc<dyn PlatformConnector>, PAGE_ID),
    ]
}

/// The documented body: recipient by comment id, a text message, nothing else.
fn documented_body(text: &str) -> Value {
    json!({"recipient": {"comment_id": COMMENT_ID}, "message": {"text": text}})
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

fn reply(text: &str, age: chrono::Duration) -> PrivateReply {
    PrivateReply::new(COMMENT_ID, text, now() - age)
}

#[tokio::test]
async fn private_reply_posts_the_documented_payload() {
    for (account, recipient) in [(IG_USER_ID, "1254459154682919"), (PAGE_ID, "6183465238")] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{account}/messages").as_str()))
            .and(header(
                "authorization",
                format!("Bearer {ACCESS_TOKEN}").as_str(),
            ))
            .and(body_json(documented_body("Thanks! Here is the link")))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"recipient_id": recipient, "message_id": "aWdfZAG1faXRlbToxOklH"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let connectors = meta(&server);
        let (connector, _) = connectors
            .iter()
            .find(|(_, a)| *a == account)
            .expect("connector");
        let ctx = ChannelContext::new(account, ACCESS_TOKEN);
        // Six days and 23 hours after the comment: inside the window.
        let age = chrono::Duration::days(7) - chrono::Duration::hours(1);
        let sent = connector
            .send_private_reply(&ctx, &reply("Thanks! Here is the link", age))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", connector.name()));
        assert_eq!(sent.message_id, "aWdfZAG1faXRlbToxOklH");
        assert_eq!(sent.recipient_id.as_deref(), Some(recipient));
        server.verify().await;
    }
}

#[tokio::test]
async fn second_private_reply_is_refused_without_a_request() {
    let server = MockServer::start().await;
    for (connector, account) in meta(&server) {
        let ctx = ChannelContext::new(account, ACCESS_TOKEN);
        let again = reply("One more thing", chrono::Duration::hours(1)).with_already_sent(true);
        let err = connector
            .send_private_reply(&ctx, &again)
            .await
            .expect_err("second reply");
        match &err {
            ConnectorError::Policy(PolicyError::PrivateReplyAlreadySent {
                platform,
                comment_id,
                ..
            }) => {
                assert_eq!(platform, connector.name());
                assert_eq!(comment_id, COMMENT_ID);
            }
            other => panic!("{}: {other:?}", connector.name()),
        }
        let msg = err.to_string();
        assert!(msg.contains("one per comment"), "{msg}");
        assert!(msg.contains("allowed: a public reply"), "{msg}");
        assert_eq!(err.action(), ErrorAction::Fail);
    }
    assert_eq!(requests(&server).await, 0);
}

#[tokio::test]
async fn private_reply_outside_the_window_is_refused_without_a_request() {
    let server = MockServer::start().await;
    for (connector, account) in meta(&server) {
        let ctx = ChannelContext::new(account, ACCESS_TOKEN);
        let late = reply(
            "Sorry for the delay",
            chrono::Duration::days(7) + chrono::Duration::minutes(1),
        );
        let err = connector
            .send_private_reply(&ctx, &late)
            .await
            .expect_err("late");
        assert!(
            matches!(
                &err,
                ConnectorError::Policy(PolicyError::OutsidePrivateReplyWindow {
                    window_days: 7,
                    hours_since: 168,
                    ..
                })
            ),
            "{}: {err:?}",
            connector.name()
        );
        assert!(err.to_string().contains("within 7 days"), "{err}");
        assert!(err.to_string().contains("allowed: a public reply"), "{err}");
    }
    assert_eq!(requests(&server).await, 0);
}

#[tokio::test]
async fn invalid_private_replies_are_refused_without_a_request() {
    let server = MockServer::start().await;
    for (connector, account) in meta(&server) {
        let ctx = ChannelContext::new(account, ACCESS_TOKEN);
        let fresh = chrono::Duration::minutes(5);
        let empty = connector
            .send_private_reply(&ctx, &reply("   ", fresh))
            .await;
        assert!(
            matches!(
                empty,
                Err(ConnectorError::Validation(ValidationError::EmptyContent))
            ),
            "{empty:?}"
        );
        let no_comment = connector
            .send_private_reply(&ctx, &PrivateReply::new("", "hi", now()))
            .await;
        assert!(
            matches!(
                no_comment,
                Err(ConnectorError::Validation(ValidationError::InvalidField {
                    field: "comment_id",
                    ..
                }))
            ),
            "{no_comment:?}"
        );
        let long = connector
            .send_private_reply(&ctx, &reply(&"x".repeat(2001), fresh))
            .await;
        assert!(
            matches!(
                long,
                Err(ConnectorError::Validation(
                    ValidationError::TextTooLong { .. }
                ))
            ),
            "{long:?}"
        );
    }
    // Instagram: text under 1000 characters.
    let ig_long = ig(&server)
        .send_private_reply(
            &ChannelContext::new(IG_USER_ID, ACCESS_TOKEN),
            &reply(&"x".repeat(1000), chrono::Duration::minutes(5)),
        )
        .await;
    assert!(
        matches!(
            ig_long,
            Err(ConnectorError::Validation(ValidationError::TextTooLong {
                max: 999,
                ..
            }))
        ),
        "{ig_long:?}"
    );
    assert_eq!(requests(&server).await, 0);
}

/// What a mapped error must look like.
type Expect = fn(&ConnectorError) -> bool;

#[tokio::test]
async fn platform_errors_on_private_replies_are_mapped() {
    // (HTTP status, Graph code, what the caller must learn)
    let cases: [(u16, i64, Expect); 5] = [
        // The platform's own record: "Activity already replied to".
        (400, 10900, |e| {
            matches!(e, ConnectorError::Permanent { .. }) && e.action() == ErrorAction::Fail
        }),
        // "This user cant reply to this activity".
        (400, 10903, |e| {
            matches!(e, ConnectorError::Permanent { .. })
        }),
        (401, 190, |e| {
            matches!(e, ConnectorError::Unauthorized { .. })
        }),
        (400, 230, |e| matches!(e, ConnectorError::Forbidden { .. })),
        (400, 613, |e| {
            matches!(e, ConnectorError::RateLimited { .. })
        }),
    ];
    for (status, code, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({"error":{
                "message": format!("(#{code}) refused"), "type": "OAuthException",
                "code": code, "fbtrace_id": "PRtrace"}})))
            .mount(&server)
            .await;
        for (connector, account) in meta(&server) {
            let ctx = ChannelContext::new(account, ACCESS_TOKEN);
            let err = connector
                .send_private_reply(&ctx, &reply("hello", chrono::Duration::hours(2)))
                .await
                .expect_err("platform error");
            assert!(expected(&err), "{} code {code}: {err:?}", connector.name());
            let detail = err.api_error().expect("platform details");
            assert_eq!(detail.code, Some(i32::try_from(code).expect("code")));
            assert_eq!(detail.trace_id.as_deref(), Some("PRtrace"));
            assert!(!err.to_string().contains(ACCESS_TOKEN));
        }
        // One request per connector: a send is never retried inside the connector.
        assert_eq!(requests(&server).await, 2, "code {code}");
    }
}

#[tokio::test]
async fn an_answer_without_message_id_is_an_invalid_response() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"recipient_id": "1"})))
        .mount(&server)
        .await;
    for (connector, account) in meta(&server) {
        let ctx = ChannelContext::new(account, ACCESS_TOKEN);
        let err = connector
            .send_private_reply(&ctx, &reply("hello", chrono::Duration::hours(2)))
            .await
            .expect_err("no id");
        assert!(
            matches!(err, ConnectorError::InvalidResponse { .. }),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn other_connectors_do_not_support_private_replies() {
    let server = MockServer::start().await;
    let wa = whatsapp(&server.uri()).expect("build");
    let li = linkedin(&server.uri()).expect("build");
    for connector in [&wa as &dyn PlatformConnector, &li] {
        let err = connector
            .send_private_reply(
                &ChannelContext::new("acct", ACCESS_TOKEN),
                &reply("hello", chrono::Duration::hours(1)),
            )
            .await
            .expect_err("unsupported");
        assert!(
            matches!(
                err,
                ConnectorError::Unsupported {
                    operation: "send_private_reply",
                    ..
                }
            ),
            "{err:?}"
        );
    }
    assert_eq!(requests(&server).await, 0);
}
