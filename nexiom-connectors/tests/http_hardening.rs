//! The HTTP core against broken or hostile answers: bodies over the size cap
//! (announced by `Content-Length` or streamed without end), and publishes that
//! fail after they may have reached the platform.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use nexiom_connectors::{
    ChannelContext, ConnectorError, DEFAULT_MAX_RESPONSE_BYTES, ErrorAction, FacebookConnector,
    HttpConfig, PlatformConnector, PublishRequest,
};
use nexiom_core::Content;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const CAP: usize = 64 * 1024;

fn fb(base: &str, http: HttpConfig) -> FacebookConnector {
    FacebookConnector::builder()
        .with_base_url(base)
        .with_http_config(http)
        .build()
        .expect("build")
}

fn capped() -> HttpConfig {
    HttpConfig {
        max_response_bytes: CAP,
        ..test_http()
    }
}

fn ctx() -> ChannelContext {
    ChannelContext::new(PAGE_ID, ACCESS_TOKEN)
}

/// `{"data":[]}` padded with spaces to exactly `len` bytes.
fn json_of_len(len: usize) -> Vec<u8> {
    let mut body = br#"{"data":[]}"#.to_vec();
    body.resize(len, b' ');
    body
}

#[tokio::test]
async fn a_body_over_the_cap_is_a_typed_error() {
    assert_eq!(HttpConfig::default().max_response_bytes, 4 * 1024 * 1024);
    assert_eq!(DEFAULT_MAX_RESPONSE_BYTES, 4 * 1024 * 1024);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(json_of_len(CAP + 1)))
        .mount(&server)
        .await;
    let err = fb(&server.uri(), capped())
        .list_new_comments(&ctx(), "P_1", None)
        .await
        .expect_err("over the cap");
    assert!(
        matches!(
            err,
            ConnectorError::ResponseTooLarge {
                status: 200,
                limit_bytes: CAP,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.action(), ErrorAction::Fail);
    assert!(err.to_string().contains("65536-byte limit"), "{err}");

    // Exactly at the cap is read.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(json_of_len(CAP)))
        .mount(&server)
        .await;
    let page = fb(&server.uri(), capped())
        .list_new_comments(&ctx(), "P_1", None)
        .await
        .expect("at the cap");
    assert!(page.comments.is_empty());
}

/// A server that answers any request with a chunked 200 that never ends (no
/// `Content-Length`); returns its address and the bytes it managed to send.
fn endless_chunked_server() -> (String, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    std::thread::spawn(move || {
        let Ok((mut sock, _)) = listener.accept() else {
            return;
        };
        let mut head = [0u8; 8192];
        let _ = sock.read(&mut head);
        let start = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        if sock.write_all(start).is_err() || sock.write_all(b"b\r\n{\"data\":[]}\r\n").is_err() {
            return;
        }
        let chunk = vec![b' '; 16 * 1024];
        // Until the client hangs up (or a hard stop far above the cap).
        while counter.load(Ordering::SeqCst) < 512 * 1024 * 1024 {
            let ok = sock
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .and_then(|()| sock.write_all(&chunk))
                .and_then(|()| sock.write_all(b"\r\n"));
            if ok.is_err() {
                break;
            }
            counter.fetch_add(chunk.len(), Ordering::SeqCst);
        }
    });
    (format!("http://{addr}"), sent)
}

#[tokio::test]
async fn an_endless_streamed_body_is_cut_at_the_cap() {
    let (base, sent) = endless_chunked_server();
    let err = fb(&base, capped())
        .list_new_comments(&ctx(), "P_1", None)
        .await
        .expect_err("over the cap");
    // Reading stopped at the cap: the answer came back, not a timeout after
    // reading the whole stream.
    assert!(
        matches!(err, ConnectorError::ResponseTooLarge { .. }),
        "{err:?}"
    );
    assert!(sent.load(Ordering::SeqCst) < 512 * 1024 * 1024);
}

#[tokio::test]
async fn an_unreadable_publish_answer_is_an_unknown_outcome() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(json_of_len(CAP + 1)))
        .expect(1)
        .mount(&server)
        .await;
    let err = fb(&server.uri(), capped())
        .publish(&ctx(), &PublishRequest::new(Content::text("x")))
        .await
        .expect_err("over the cap");
    assert!(
        matches!(err, ConnectorError::OutcomeUnknown { .. }),
        "{err:?}"
    );
    assert_eq!(err.action(), ErrorAction::NeedsAttention);
}

#[tokio::test]
async fn a_publish_answered_5xx_is_sent_once_and_left_to_the_caller() {
    // Server errors, and a 400 whose Graph error says "temporarily
    // unavailable" (code 2): the platform failed while handling the request.
    for (status, code) in [(500u16, 1), (502, 1), (504, 1), (400, 2)] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_json(
                json!({"error":{"message":"An unknown error occurred","type":"OAuthException","code":code,"fbtrace_id":"Ab1"}}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let http = HttpConfig {
            max_retries: 3,
            ..test_http()
        };
        let err = fb(&server.uri(), http)
            .publish(&ctx(), &PublishRequest::new(Content::text("x")))
            .await
            .expect_err("server error");
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            1,
            "HTTP {status}: a publish is sent exactly once"
        );
        assert!(
            matches!(err, ConnectorError::OutcomeUnknown { .. }),
            "HTTP {status}: {err:?}"
        );
        assert_eq!(err.action(), ErrorAction::NeedsAttention);
        assert!(err.to_string().contains("may have been carried out"));
        assert!(!err.to_string().contains(ACCESS_TOKEN));
    }

    // A 503 says the platform did not take the request: retryable by the
    // caller, still sent once here.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    let err = fb(
        &server.uri(),
        HttpConfig {
            max_retries: 3,
            ..test_http()
        },
    )
    .publish(&ctx(), &PublishRequest::new(Content::text("x")))
    .await
    .expect_err("503");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert!(matches!(err, ConnectorError::Transient { .. }), "{err:?}");
    assert_eq!(err.action(), ErrorAction::RetryLater { after: None });
}

/// A Graph comments page with one comment lacking its `created_time`: the
/// others are listed (the bad one logged and left out), so one malformed
/// item cannot fail every later read of its post.
#[tokio::test]
async fn a_malformed_comment_is_left_out_of_its_page() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "P_1_1", "message": "Hello", "created_time": "2026-01-01T10:00:00+0000",
             "from": {"id": "u1", "name": "Ann"}},
            {"id": "P_1_2", "message": "No time", "from": {"id": "u2", "name": "Bob"}},
            {"id": "P_1_3", "message": "Bye", "created_time": "2026-01-01T10:02:00+0000",
             "from": {"id": "u3", "name": "Cy"}}],
            "paging": {"cursors": {"before": "b", "after": "a"}}})))
        .mount(&server)
        .await;
    let page = fb(&server.uri(), test_http())
        .list_new_comments(&ctx(), "P_1", None)
        .await
        .expect("page");
    let ids: Vec<&str> = page.comments.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec!["P_1_1", "P_1_3"]);
    assert_eq!(page.left_out, 1, "the bad one is counted");
}

/// A comments page none of whose comments can be read (the payload's shape
/// changed: `created_time` renamed, say) fails, rather than returning an
/// empty page whose cursor would move past its comments for good; a page
/// holding one unreadable comment alone is read without it (a single
/// malformed comment must not stop its post's polling at that page).
#[tokio::test]
async fn a_page_of_unreadable_comments_fails_rather_than_being_skipped() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "P_1_1", "message": "Hello", "created": "2026-01-01T10:00:00+0000"},
            {"id": "P_1_2", "message": "Hi", "created": "2026-01-01T10:01:00+0000"},
            {"id": "P_1_3", "message": "Bye", "created": "2026-01-01T10:02:00+0000"}],
            "paging": {"cursors": {"before": "b", "after": "a"},
                       "next": "https://graph.facebook.com/v25.0/P_1/comments?after=a"}})))
        .mount(&server)
        .await;
    let err = fb(&server.uri(), test_http())
        .list_new_comments(&ctx(), "P_1", None)
        .await
        .expect_err("no comment readable");
    assert!(
        matches!(err, ConnectorError::InvalidResponse { ref reason, .. }
            if reason.contains("none of the 3 comments")),
        "{err:?}"
    );
    // One unreadable comment alone, and an empty page: no error.
    for (data, left_out) in [
        (json!([{"id": "P_1_4", "message": "No time"}]), 1),
        (json!([]), 0),
    ] {
        server.reset().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": data})))
            .mount(&server)
            .await;
        let page = fb(&server.uri(), test_http())
            .list_new_comments(&ctx(), "P_1", None)
            .await
            .expect("a page read");
        assert_eq!((page.comments.len(), page.left_out), (0, left_out));
    }
}
