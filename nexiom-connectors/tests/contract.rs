//! The contract suite (`nexiom_connectors::testing`) run against the four built-in
//! connectors, each pointed at a local wiremock server with documented payloads.

mod common;

use common::{FacebookHarness, InstagramHarness, LinkedInHarness, WhatsAppHarness};
use nexiom_connectors::testing::run_contract_suite;

#[tokio::test]
async fn whatsapp_passes_the_contract_suite() {
    let report = run_contract_suite(&WhatsAppHarness).await;
    report.assert_passed();
    // WhatsApp has no comments, no post lookup and no recent-post listing:
    // those three checks are skipped.
    assert_eq!(report.passed.len(), 9, "{report:?}");
}

#[tokio::test]
async fn instagram_passes_the_contract_suite() {
    let report = run_contract_suite(&InstagramHarness).await;
    report.assert_passed();
    assert_eq!(report.passed.len(), 12, "{report:?}");
}

#[tokio::test]
async fn facebook_passes_the_contract_suite() {
    let report = run_contract_suite(&FacebookHarness).await;
    report.assert_passed();
    assert_eq!(report.passed.len(), 12, "{report:?}");
}

#[tokio::test]
async fn linkedin_passes_the_contract_suite() {
    let report = run_contract_suite(&LinkedInHarness).await;
    report.assert_passed();
    assert_eq!(report.passed.len(), 12, "{report:?}");
}

mod suite_catches_a_broken_connector {
    use std::sync::Arc;

    use async_trait::async_trait;
    use nexiom_connectors::testing::{
        ContractHarness, ExpectedPublish, SeedComment, WebhookSample, run_contract_suite,
    };
    use nexiom_connectors::{
        ChannelContext, ConnectorError, MetaWebhookVerifier, PlatformConnector, PublishRequest,
        WebhookHeaders,
    };
    use nexiom_core::SecretString;
    use wiremock::{MockServer, ResponseTemplate};

    use super::common::WhatsAppHarness;

    /// WhatsApp with a wrong expected post id and signatures made with the wrong
    /// secret: the suite must report both.
    struct Broken;

    #[async_trait]
    impl ContractHarness for Broken {
        fn name(&self) -> String {
            "broken".into()
        }
        fn connector(&self, base_url: &str) -> Result<Arc<dyn PlatformConnector>, ConnectorError> {
            WhatsAppHarness.connector(base_url)
        }
        fn context(&self) -> ChannelContext {
            WhatsAppHarness.context()
        }
        fn secrets(&self) -> Vec<String> {
            WhatsAppHarness.secrets()
        }
        fn publish_request(&self) -> PublishRequest {
            WhatsAppHarness.publish_request()
        }
        fn invalid_publish_request(&self) -> Option<PublishRequest> {
            None
        }
        async fn mount_publish_success(&self, server: &MockServer) -> ExpectedPublish {
            let mut e = WhatsAppHarness.mount_publish_success(server).await;
            e.post_id = "not-the-id".into();
            e
        }
        async fn mount_publish_failure(&self, server: &MockServer, response: ResponseTemplate) {
            WhatsAppHarness
                .mount_publish_failure(server, response)
                .await;
        }
        fn expired_token_response(&self) -> ResponseTemplate {
            // Not an expired-token answer: the suite must notice.
            ResponseTemplate::new(400).set_body_string("bad request")
        }
        async fn mount_comment_pages(&self, _: &MockServer, _: &str, _: &[Vec<SeedComment>]) {}
        fn webhook_samples(&self) -> Vec<WebhookSample> {
            WhatsAppHarness.webhook_samples()
        }
        fn sign(&self, body: &[u8]) -> WebhookHeaders {
            WebhookHeaders::new().with(
                "X-Hub-Signature-256",
                MetaWebhookVerifier::sign(&SecretString::new("wrong-secret"), body),
            )
        }
        fn malformed_signature(&self) -> WebhookHeaders {
            WhatsAppHarness.malformed_signature()
        }
    }

    #[tokio::test]
    async fn failures_are_reported_by_name() {
        let report = run_contract_suite(&Broken).await;
        assert!(!report.is_ok());
        let failed: Vec<&str> = report.failed.iter().map(|(n, _)| n.as_str()).collect();
        assert!(failed.contains(&"publish_returns_ids"), "{failed:?}");
        assert!(failed.contains(&"expired_token"), "{failed:?}");
        assert!(failed.contains(&"webhook_samples"), "{failed:?}");
        assert!(report.passed.iter().any(|n| n == "rate_limit_429"));
        assert!(
            report
                .skipped
                .iter()
                .any(|(n, _)| n == "validation_sends_nothing")
        );
        let panic = std::panic::catch_unwind(|| report.assert_passed());
        assert!(panic.is_err());
    }
}
