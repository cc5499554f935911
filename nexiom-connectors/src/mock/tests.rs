//! Unit tests of the mock connector.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use nexiom_core::{Clock, Content, ManualClock, MediaKind, Platform, SecretString};

use super::{MOCK_WEBHOOK_SECRET, MockConnector, MockOp};
use crate::capabilities::Capabilities;
use crate::connector::PlatformConnector;
use crate::error::{ConnectorError, PolicyError};
use crate::types::{ChannelContext, PrivateReply, PublishRequest};
use crate::webhook::{MetaWebhookVerifier, WebhookHeaders};

fn ctx() -> ChannelContext {
    ChannelContext::new("acct-1", "secret-token-value")
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn scripted_failures_then_success_and_records() {
    block(async {
        let clock = ManualClock::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .expect("t"),
        );
        let m = MockConnector::new(Platform::Instagram).with_clock(Arc::new(clock.clone()));
        m.fail_transient(MockOp::Publish, 2);
        m.unauthorized_next(MockOp::Any);
        let req = PublishRequest::new(Content::text("hi"));
        for _ in 0..2 {
            let e = m.publish(&ctx(), &req).await.expect_err("scripted");
            assert!(matches!(e, ConnectorError::Transient { .. }));
        }
        let e = m.publish(&ctx(), &req).await.expect_err("any");
        assert!(matches!(e, ConnectorError::Unauthorized { .. }));
        let ok = m.publish(&ctx(), &req).await.expect("ok");
        assert_eq!(ok.platform_post_id, "mock-post-1");
        let calls = m.calls_of(MockOp::Publish);
        assert_eq!(calls.len(), 4);
        assert_eq!(calls.iter().filter(|c| c.ok).count(), 1);
        assert_eq!(calls[0].text.as_deref(), Some("hi"));
        assert_eq!(calls[0].at, clock.now());
    });
}

#[test]
fn validation_fails_before_any_call() {
    block(async {
        let m = MockConnector::new(Platform::LinkedIn).with_capabilities(Capabilities {
            max_text_length: 3,
            media_kinds: vec![MediaKind::Image],
            ..Capabilities::default()
        });
        let e = m
            .publish(&ctx(), &PublishRequest::new(Content::text("too long")))
            .await
            .expect_err("too long");
        assert!(matches!(e, ConnectorError::Validation(_)));
        assert!(m.calls().is_empty());
    });
}

#[test]
fn seeded_comments_page_exactly_once() {
    block(async {
        let m = MockConnector::new(Platform::Facebook).with_page_size(2);
        let seeded: Vec<_> = (0..5)
            .map(|i| m.comment(&format!("c{i}"), "u", "hello"))
            .collect();
        m.seed_comments("post-1", seeded);
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = m
                .list_new_comments(&ctx(), "post-1", cursor.as_deref())
                .await
                .expect("page");
            seen.extend(page.comments.into_iter().map(|c| c.id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, vec!["c0", "c1", "c2", "c3", "c4"]);
        let empty = m
            .list_new_comments(&ctx(), "other", None)
            .await
            .expect("empty");
        assert!(empty.comments.is_empty() && empty.next_cursor.is_none());
        assert!(
            m.list_new_comments(&ctx(), "post-1", Some("x"))
                .await
                .is_err()
        );
        m.hide_comment(&ctx(), "c1", true).await.expect("hide");
        let page = m
            .list_new_comments(&ctx(), "post-1", None)
            .await
            .expect("page");
        assert!(page.comments[1].hidden);
    });
}

#[test]
fn webhooks_and_debug() {
    let m = MockConnector::new(Platform::WhatsApp);
    let body = br#"[]"#;
    let sig = MetaWebhookVerifier::sign(&SecretString::new(MOCK_WEBHOOK_SECRET), body);
    let h = WebhookHeaders::new().with("X-Hub-Signature-256", sig);
    assert!(m.verify_webhook(&h, body).is_ok());
    assert!(m.verify_webhook(&h, b"[ ]").is_err());
    assert_eq!(m.handle_webhook(body).expect("events"), vec![]);
    assert!(m.handle_webhook(b"{").is_err());
    assert!(m.handle_webhook(b"{\"x\":1}").is_err());
    let now = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("t");
    let items = m
        .handle_webhook_events(br#"[{"event_id":"half"}]"#, now)
        .expect("a list");
    let refused = items[0].as_ref().expect_err("not an event");
    assert_eq!(refused.event_id.as_deref(), Some("half"));
    assert!(refused.reason.starts_with("not an event"));
    assert!(m.handle_webhook_events(b"{\"x\":1}", now).is_err());
    assert!(m.handle_webhook_events(b"7", now).is_err());
    assert!(!format!("{m:?}").contains(MOCK_WEBHOOK_SECRET));
}

#[test]
fn private_replies_follow_the_policy_and_are_recorded() {
    block(async {
        let t0 = Utc
            .with_ymd_and_hms(2026, 1, 10, 0, 0, 0)
            .single()
            .expect("t");
        let clock = ManualClock::new(t0);
        let m = MockConnector::new(Platform::Instagram).with_clock(Arc::new(clock.clone()));
        let reply = PrivateReply::new("c1", "Here is the link", t0 - chrono::Duration::days(1));
        let sent = m.send_private_reply(&ctx(), &reply).await.expect("first");
        assert_eq!(sent.message_id, "mock-msg-1");
        let calls = m.calls_of(MockOp::SendPrivateReply);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].target.as_deref(), Some("c1"));
        assert_eq!(calls[0].text.as_deref(), Some("Here is the link"));
        assert!(calls[0].ok);

        // The caller's record says it was sent: refused, nothing recorded.
        let e = m
            .send_private_reply(&ctx(), &reply.clone().with_already_sent(true))
            .await
            .expect_err("second");
        assert!(matches!(
            e,
            ConnectorError::Policy(PolicyError::PrivateReplyAlreadySent { .. })
        ));
        // The caller forgot: the "platform" refuses, as Meta does (code 10900).
        let e = m
            .send_private_reply(&ctx(), &reply)
            .await
            .expect_err("platform");
        assert_eq!(e.api_error().and_then(|d| d.code), Some(10900));
        assert_eq!(m.calls_of(MockOp::SendPrivateReply).len(), 2);

        // Outside the window by the mock's clock: refused, not recorded.
        clock.advance(chrono::Duration::days(7));
        let other = PrivateReply::new("c2", "hi", t0 - chrono::Duration::days(1));
        let e = m
            .send_private_reply(&ctx(), &other)
            .await
            .expect_err("late");
        assert!(matches!(
            e,
            ConnectorError::Policy(PolicyError::OutsidePrivateReplyWindow { .. })
        ));
        assert_eq!(m.calls_of(MockOp::SendPrivateReply).len(), 2);

        // Scripting works as for any operation.
        m.rate_limit_next(MockOp::SendPrivateReply, Duration::from_secs(5));
        let fresh = PrivateReply::new("c3", "hi", clock.now());
        assert!(matches!(
            m.send_private_reply(&ctx(), &fresh).await,
            Err(ConnectorError::RateLimited { .. })
        ));
        assert!(m.send_private_reply(&ctx(), &fresh).await.is_ok());
    });
}
