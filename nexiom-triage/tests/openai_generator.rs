//! The OpenAI-compatible generator against a local mock server: the request it
//! sends, the drafts it reads, and the typed errors it returns.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use nexiom_core::{SecretString, TenantId};
use nexiom_triage::{
    OpenAiCompatibleGenerator, OpenAiConfig, ReplyError, ReplyGenerator, ReplyKind, ReplyRequest,
};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-or-very-secret";

fn generator(server: &MockServer) -> OpenAiCompatibleGenerator {
    let config = OpenAiConfig::new(SecretString::new(KEY), "mistral/small")
        .with_base_url(format!("{}/api/v1/", server.uri()))
        .with_timeout(Duration::from_millis(500));
    OpenAiCompatibleGenerator::new(config).unwrap()
}

fn request(text: &str) -> ReplyRequest<'_> {
    ReplyRequest {
        tenant_id: TenantId::generate(),
        kind: ReplyKind::Message,
        contact_name: Some("Léa"),
        text,
    }
}

fn completion(content: &str) -> serde_json::Value {
    json!({
        "id": "gen-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}]
    })
}

#[tokio::test]
async fn sends_model_key_and_text_and_reads_the_draft() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(body_partial_json(json!({"model": "mistral/small"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(
            r#"{"reply": "Nous sommes ouverts de 9h à 18h.", "confidence": 0.83}"#,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let draft = generator(&server)
        .generate(&request("Quels sont vos horaires ?"))
        .await
        .unwrap();
    assert_eq!(draft.text, "Nous sommes ouverts de 9h à 18h.");
    assert_eq!(draft.confidence, Some(0.83));
    let received = server.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&received[0].body).unwrap();
    let user = body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("Quels sont vos horaires ?"));
    assert!(user.contains("Léa"));
}

#[tokio::test]
async fn plain_text_answers_have_no_confidence() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("Bonjour !")))
        .mount(&server)
        .await;
    let draft = generator(&server)
        .generate(&request("Salut"))
        .await
        .unwrap();
    assert_eq!(draft.text, "Bonjour !");
    assert_eq!(draft.confidence, None);
}

#[tokio::test]
async fn failures_are_typed_errors_without_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "No auth"}})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>oops</html>"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"choices": []})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("late"))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let g = generator(&server);
    let errors = [
        g.generate(&request("a")).await.unwrap_err(),
        g.generate(&request("b")).await.unwrap_err(),
        g.generate(&request("c")).await.unwrap_err(),
        g.generate(&request("d")).await.unwrap_err(),
    ];
    assert!(
        matches!(&errors[0], ReplyError::Status { status: 401, message } if message.contains("No auth"))
    );
    assert!(matches!(errors[1], ReplyError::Malformed(_)));
    assert!(matches!(errors[2], ReplyError::Malformed(_)));
    assert!(
        matches!(errors[3], ReplyError::Transport(_)),
        "{:?}",
        errors[3]
    );
    for e in &errors {
        assert!(!e.to_string().contains(KEY));
        assert!(!format!("{e:?}").contains(KEY));
    }
    assert!(!format!("{g:?}").contains(KEY));

    // Nobody listening (port 1 is closed on any sane test machine).
    let config = OpenAiConfig::new(SecretString::new(KEY), "m").with_base_url("http://127.0.0.1:1");
    let err = OpenAiCompatibleGenerator::new(config)
        .unwrap()
        .generate(&request("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ReplyError::Transport(_)), "{err:?}");
}

#[tokio::test]
async fn an_error_body_echoing_the_key_and_the_prompt_is_redacted_and_cut() {
    let server = MockServer::start().await;
    let customer = "Bonjour, mon code client est 55-AB-1234, merci";
    let echo = json!({"error": {
        "message": format!("Invalid API key {KEY}"),
        "request": {"headers": {"authorization": format!("Bearer {KEY}")},
                    "messages": [{"role": "user", "content": customer}]},
        "zpadding": "p".repeat(20_000),
    }});
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(echo))
        .expect(1)
        .mount(&server)
        .await;
    let err = generator(&server)
        .generate(&request(customer))
        .await
        .unwrap_err();
    let ReplyError::Status { status, message } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*status, 401);
    assert!(message.contains("Invalid API key [redacted]"), "{message}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(KEY), "{shown}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(!shown.contains("55-AB-1234"), "{shown}");
        assert!(shown.len() < 500, "{} bytes", shown.len());
    }
}

#[tokio::test]
async fn an_answer_over_the_cap_is_a_typed_error() {
    let server = MockServer::start().await;
    let big = completion(&"x".repeat(4096));
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(big))
        .mount(&server)
        .await;
    let config = OpenAiConfig::new(SecretString::new(KEY), "m")
        .with_base_url(server.uri())
        .with_max_response_bytes(1024);
    let err = OpenAiCompatibleGenerator::new(config)
        .unwrap()
        .generate(&request("x"))
        .await
        .unwrap_err();
    assert_eq!(err, ReplyError::TooLarge { limit_bytes: 1024 });
    assert!(err.to_string().contains("1024-byte limit"), "{err}");
    // The same answer under the default cap (1 MiB) is a draft.
    assert_eq!(
        OpenAiConfig::new(SecretString::new(KEY), "m").max_response_bytes,
        1024 * 1024
    );
    let config = OpenAiConfig::new(SecretString::new(KEY), "m").with_base_url(server.uri());
    let draft = OpenAiCompatibleGenerator::new(config)
        .unwrap()
        .generate(&request("x"))
        .await
        .unwrap();
    assert_eq!(draft.text.len(), 4096);
}

#[tokio::test]
async fn a_tenants_reply_settings_reach_the_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/chat/completions"))
        .and(body_partial_json(
            json!({"model": "acme/custom", "temperature": 0.7}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion(r#"{"reply": "Bonjour !", "confidence": 0.9}"#)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let settings = nexiom_core::ReplySettings {
        model: Some("acme/custom".into()),
        prompt: Some("You are Acme Bakery. Be warm.".into()),
        temperature: Some(0.7),
        language: Some("fr".into()),
    };
    let draft = generator(&server)
        .generate_with(&request("Hello"), &settings)
        .await
        .unwrap();
    assert_eq!(draft.text, "Bonjour !");
    let sent: serde_json::Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    let system = sent["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.starts_with("You are Acme Bakery. Be warm."),
        "{system}"
    );
    assert!(
        system.contains("\"reply\""),
        "the answer format is kept: {system}"
    );
    assert!(system.contains("\"fr\""), "{system}");

    // Without settings: the configured model and the default temperature.
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({"model": "mistral/small", "temperature": 0.2}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("Hi")))
        .expect(1)
        .mount(&server)
        .await;
    generator(&server)
        .generate_with(&request("Hello"), &nexiom_core::ReplySettings::default())
        .await
        .unwrap();
}
