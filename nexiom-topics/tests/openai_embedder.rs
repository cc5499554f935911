//! The OpenAI-compatible embeddings client against a local mock server:
//! batching, retries on 429 and 5xx, no retry on 4xx, timeouts, the response
//! size cap, malformed answers, and the API key kept out of errors.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use nexiom_core::SecretString;
use nexiom_topics::{EmbedError, Embedder, OpenAiEmbedder, OpenAiEmbedderConfig};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const KEY: &str = "sk-test-secret";

fn config(server: &MockServer) -> OpenAiEmbedderConfig {
    let mut c = OpenAiEmbedderConfig::new(SecretString::new(KEY))
        .with_base_url(server.uri())
        .with_model("embed-small", 3);
    c.batch_size = 2;
    c.backoff = Duration::from_millis(10);
    c.timeout = Duration::from_millis(500);
    c
}

/// Answers each input text with the vector `[len, 1, 0]`.
struct Echo;

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let data: Vec<Value> = body["input"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .rev() // out of order: the client must sort by index
            .map(|(i, t)| json!({"index": i, "embedding": [t.as_str().unwrap().len() as f32, 1.0, 0.0]}))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"data": data}))
    }
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| "x".repeat(i + 1)).collect()
}

#[tokio::test]
async fn batches_keep_order_and_vectors_are_normalized() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/embeddings"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(Echo)
        .expect(3)
        .mount(&server)
        .await;
    let e = OpenAiEmbedder::new(config(&server)).unwrap();
    let v = e.embed(&texts(5)).await.unwrap();
    assert_eq!(v.len(), 5);
    for (i, vec) in v.iter().enumerate() {
        let len = (i + 1) as f32;
        let norm = (len * len + 1.0).sqrt();
        assert!((vec[0] - len / norm).abs() < 1e-6, "{i}: {vec:?}");
        assert!((vec.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
    }
    assert_eq!((e.model(), e.dimension()), ("embed-small", 3));
}

#[tokio::test]
async fn retries_429_and_5xx_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_string("slow down"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(Echo)
        .mount(&server)
        .await;
    let e = OpenAiEmbedder::new(config(&server)).unwrap();
    assert_eq!(e.embed(&texts(2)).await.unwrap().len(), 2);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn gives_up_after_the_attempts_and_never_retries_a_4xx() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(500).set_body_string(format!("boom {}", "y".repeat(1000))),
        )
        .mount(&server)
        .await;
    let e = OpenAiEmbedder::new(config(&server)).unwrap();
    let err = e.embed(&texts(1)).await.unwrap_err();
    match &err {
        EmbedError::Status {
            status: 500,
            message,
        } => assert!(message.len() < 400),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 3);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string("bad key"))
        .mount(&server)
        .await;
    let e = OpenAiEmbedder::new(config(&server)).unwrap();
    let err = e.embed(&texts(1)).await.unwrap_err();
    assert!(matches!(err, EmbedError::Status { status: 401, .. }));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert!(!err.to_string().contains(KEY));
    assert!(!format!("{e:?}").contains(KEY));

    // An endpoint that echoes its request and the key in its error: neither
    // the customer's words nor the key reach the error.
    let server = MockServer::start().await;
    let customer = "Ma carte \"4970\" ne marche pas";
    let echoed = serde_json::json!({"error": {"message": format!("Incorrect API key provided: {KEY}"),
        "request": {"input": [customer]}}});
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string(echoed.to_string()))
        .mount(&server)
        .await;
    let e = OpenAiEmbedder::new(config(&server)).unwrap();
    let err = e
        .embed(&[customer.to_owned()])
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains(KEY), "{err}");
    assert!(!err.contains("4970"), "{err}");
    assert!(err.contains("[message]"), "{err}");

    // A text longer than what is sent: the part sent is what is echoed.
    let server = MockServer::start().await;
    let long = "carte 4970 ".repeat(400);
    let sent: String = long.chars().take(nexiom_topics::MAX_INPUT_CHARS).collect();
    let echoed = serde_json::json!({"error": {"request": {"input": [sent]}}});
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string(echoed.to_string()))
        .mount(&server)
        .await;
    let e = OpenAiEmbedder::new(config(&server)).unwrap();
    let err = e.embed(&[long]).await.unwrap_err().to_string();
    assert!(!err.contains("4970"), "{err}");
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(slow_answer())
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.max_attempts = 2;
    let e = OpenAiEmbedder::new(c).unwrap();
    let err = e.embed(&texts(1)).await.unwrap_err();
    assert!(matches!(err, EmbedError::Transport(_)), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

fn slow_answer() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"data": [{"index": 0, "embedding": [1.0, 0.0, 0.0]}]}))
        .set_delay(Duration::from_secs(2))
}

#[tokio::test]
async fn malformed_or_oversized_answers_are_refused() {
    let cases = [
        json!({"data": [{"index": 0, "embedding": [1.0, 0.0]}]}),
        json!({"data": [{"index": 3, "embedding": [1.0, 0.0, 0.0]}]}),
        json!({"data": []}),
        json!({"unexpected": true}),
    ];
    for body in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body.clone()))
            .mount(&server)
            .await;
        let e = OpenAiEmbedder::new(config(&server)).unwrap();
        let err = e.embed(&texts(1)).await.unwrap_err();
        assert!(matches!(err, EmbedError::Malformed(_)), "{body}: {err:?}");
    }
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(5000)))
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.max_response_bytes = 1000;
    let e = OpenAiEmbedder::new(c).unwrap();
    let err = e.embed(&texts(1)).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::Malformed(m) if m.contains("larger")),
        "{err:?}"
    );
}
