//! End-to-end tests of the inbound pipeline, each run on memory and on
//! PostgreSQL (skipped without `DATABASE_URL`, required under `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod inbound {
    pub mod dry_run;
    pub mod fixture;
    pub mod ingestion;
    pub mod replies;
    pub mod routing;
    pub mod settings;
    pub mod support;
    pub mod triage;
}

/// One `#[tokio::test]` per test function (`module::function` under
/// `inbound/`) and backend.
macro_rules! on_both_backends {
    ($($module:ident::$name:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::inbound::$module::$name(nexiom_storage::conformance::memory_test_store).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable (see README: Tests)")]
                async fn $name() {
                    crate::inbound::$module::$name(nexiom_storage::conformance::postgres_test_store).await;
                }
            )+
        }
    };
}

on_both_backends!(
    routing::replaying_the_fixture_shuffled_from_four_tasks_equals_one_clean_pass,
    triage::triage_decides_each_item_once_and_escalates_generator_errors,
    triage::triage_decides_items_concurrently_up_to_its_cap,
    triage::items_a_person_answered_are_not_drafted_nor_escalated,
    triage::a_draft_or_an_error_holding_a_nul_is_decided_once,
    replies::ai_control_off_sends_nothing_and_escalations_are_recorded,
    replies::auto_replies_are_sent_once_each_even_concurrently,
    dry_run::dry_run_shows_changes_and_writes_nothing,
    settings::settings_overview_reports_presence_never_values,
    ingestion::webhooks_are_verified_then_stored_once,
    ingestion::one_bad_event_never_loses_its_neighbours,
    ingestion::the_same_refused_json_is_kept_for_each_account,
);

/// A store that cannot be reached (connection refused) is an outage, not a bad
/// event: ingestion answers `InboundError::Storage` (the receiver's 503, so the
/// platform delivers again) and dead-letters nothing. Needs no database:
/// nothing listens on port 1.
#[tokio::test]
async fn an_unreachable_store_fails_ingestion_for_redelivery() {
    use std::sync::Arc;

    use nexiom_connectors::{META_SIGNATURE_HEADER, MetaWebhookVerifier, WebhookHeaders};
    use nexiom_core::{ManualClock, SecretString};
    use nexiom_scheduler::inbound::{InboundError, InboundPipeline};
    use nexiom_storage::PgStore;

    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_lazy("postgres://postgres@127.0.0.1:1/nexiom")
        .unwrap();
    let clock = ManualClock::new(chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap());
    let p = InboundPipeline::new(
        Arc::new(PgStore::from_pool(pool)),
        Arc::new(clock),
        Arc::new(nexiom_triage::TemplateGenerator::new()),
    );
    let wa = nexiom_connectors::WhatsAppConnector::builder()
        .with_app_secret("s3cret")
        .build()
        .unwrap();
    for body in [
        &br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"pn"},"messages":[{"id":"w1","timestamp":"1767225000","type":"text","text":{"body":"hi"}}]}}]}]}"#[..],
        br#"{"object":"nothing"}"#,
    ] {
        let headers = WebhookHeaders::new().with(
            META_SIGNATURE_HEADER,
            MetaWebhookVerifier::sign(&SecretString::new("s3cret"), body),
        );
        match p.ingest_webhook(&wa, &headers, body).await {
            Err(InboundError::Storage(e)) => assert!(e.is_unavailable(), "{e:?}"),
            other => panic!("expected an unavailable store, got {other:?}"),
        }
    }
}
