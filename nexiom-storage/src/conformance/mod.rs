//! The storage conformance suite (feature `testing`): one set of async test
//! functions, written once, that every backend must pass. Backend differences are
//! never tested with `if backend == …`; a behaviour only one backend has is a bug.
//!
//! Run it for a backend with [`conformance_suite!`](crate::conformance_suite):
//!
//! ```ignore
//! mod memory {
//!     nexiom_storage::conformance_suite!(nexiom_storage::conformance::memory_test_store);
//! }
//! mod postgres {
//!     nexiom_storage::conformance_suite!(nexiom_storage::conformance::postgres_test_store);
//! }
//! ```
//!
//! A factory is an `async fn() -> Option<TestStore>`; `None` ends the test
//! early. Attributes written before the factory are put on every generated
//! test: the Postgres run is marked ignored in a build that found no
//! PostgreSQL, so `cargo test` shows those tests as ignored, never as passed:
//!
//! ```ignore
//! nexiom_storage::conformance_suite!(
//!     #[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
//!     nexiom_storage::conformance::postgres_test_store
//! );
//! ```
//!
//! (`nexiom_no_postgres` is this workspace's cfg, set by nexiom-storage's
//! build script; a downstream crate uses its own condition.)

mod agent_replies;
mod agent_reply_abandoned;
mod api_keys;
mod broadcast_claims;
mod broadcast_posts;
mod broadcast_webhooks;
mod broadcasts;
mod comments;
mod content_jobs;
mod conversations;
mod credentials;
mod dead_letters;
mod early_statuses;
mod event_batch;
mod events;
mod external_posts;
mod external_twins;
mod fixtures;
mod harness;
mod inbox;
mod inbox_status;
mod isolation;
mod kpi;
mod kpi_rows;
mod missions;
mod ops;
mod orchestration;
mod outbox;
mod outbox_deliveries;
mod poll_batch;
mod post_claims;
mod post_fairness;
mod posts;
mod publish_batch;
mod reply_batch;
mod reply_expiry;
mod reply_fairness;
mod reply_leases;
mod reply_queue;
mod retention;
mod routing;
mod routing_flow;
mod series_replacement;
mod settings;
mod stale_runs;
mod tenant_settings;
mod tenants;
mod time_bounds;
mod topics;
mod triage_data;

pub use agent_replies::*;
pub use agent_reply_abandoned::*;
pub use api_keys::*;
pub use broadcast_claims::*;
pub use broadcast_posts::*;
pub use broadcast_webhooks::*;
pub use broadcasts::*;
pub use comments::*;
pub use content_jobs::*;
pub use conversations::*;
pub use credentials::*;
pub use dead_letters::*;
pub use early_statuses::*;
pub use event_batch::*;
pub use events::*;
pub use external_posts::*;
pub use external_twins::*;
pub use fixtures::{World, conversation, new_message, t0, world};
pub use harness::{
    LOCAL_SERVER_URL, LOCAL_TEST_DATABASE, TestStore, memory_test_store, postgres_app_role_store,
    postgres_test_store, postgres_test_url, postgres_worker_role_store, test_keys,
};
pub use inbox::*;
pub use inbox_status::*;
pub use isolation::*;
pub use kpi::*;
pub use kpi_rows::*;
pub use missions::*;
pub use ops::*;
pub use orchestration::*;
pub use outbox::*;
pub use outbox_deliveries::*;
pub use poll_batch::*;
pub use post_claims::*;
pub use post_fairness::*;
pub use posts::*;
pub use publish_batch::*;
pub use reply_batch::*;
pub use reply_expiry::*;
pub use reply_fairness::*;
pub use reply_leases::*;
pub use reply_queue::*;
pub use retention::*;
pub use routing::*;
pub use routing_flow::*;
pub use series_replacement::*;
pub use settings::*;
pub use stale_runs::*;
pub use tenant_settings::*;
pub use tenants::*;
pub use time_bounds::*;
pub use topics::*;
pub use triage_data::*;

/// Generates one `#[tokio::test]` per conformance test, each calling `$factory`
/// for a fresh store. See the [module docs](crate::conformance).
#[macro_export]
macro_rules! conformance_suite {
    ($(#[$attr:meta])* $factory:path) => {
        $crate::conformance_suite!(@tests { $(#[$attr])* } $factory;
            tenants_and_channels,
            bad_input_is_refused_without_partial_writes,
            events_are_stored_once_and_marked_routed,
            event_batches_answer_each_event,
            concurrent_event_batches_store_each_key_once,
            contact_channels_are_resolved_once,
            conversations_and_messages,
            message_delivery_status_is_monotonic,
            concurrent_routing_writes_yield_one_row,
            routing_turns_events_into_messages_statuses_and_comments,
            a_status_routed_before_its_message_id_is_applied_when_recorded,
            early_statuses_expire_and_skip_inbound_and_other_channels,
            a_failed_reply_leaves_the_conversation_waiting,
            moderation_events_hide_and_show_stored_comments,
            concurrent_routing_routes_each_event_once,
            a_redelivery_after_retention_routes_to_the_stored_message,
            concurrent_routers_share_new_senders_exactly_once,
            marking_an_event_routed_checks_the_conversation,
            external_posts_are_recorded_once_per_channel_and_id,
            post_discovery_is_claimed_and_records_its_runs,
            concurrent_recorders_create_one_external_post,
            a_published_post_takes_over_its_external_twin,
            triage_queues_sent_records_and_comment_replies,
            posts_occurrences_and_patches,
            claims_leases_and_stale_release,
            concurrent_claims_claim_every_post_exactly_once,
            post_claims_share_the_batch_among_channels,
            post_runs,
            claims_keep_a_channel_to_one_worker_and_honour_holds,
            lease_heartbeats_extend_only_the_owners_claims,
            post_runs_start_in_one_batch,
            settlements_are_guarded_by_the_lease,
            polling_queue,
            polling_claims_take_due_posts_once_with_their_checkpoints,
            poll_results_are_written_only_under_their_claim,
            hidden_comments_are_neither_triaged_nor_waiting,
            comments_and_checkpoints,
            rules_examples_decisions_and_ai_control,
            kpi_rows_upsert_on_window_start,
            kpis_on_the_spring_forward_day,
            kpis_on_the_fall_back_day,
            kpi_recompute_refuses_bad_windows,
            missions_content_jobs_and_reports,
            orchestration_snapshot_reads_what_the_planner_needs,
            orchestration_commit_is_all_or_nothing,
            concurrent_orchestration_commits_never_exceed_the_cap,
            content_jobs_follow_their_settled_posts,
            broadcast_contacts_audiences_and_post_audiences,
            broadcast_deliveries_are_made_and_sent_once,
            broadcast_claims_fail_opted_out_recipients_on_the_way,
            a_cancelled_broadcasts_unsent_deliveries_are_closed,
            a_stored_audience_is_read_at_the_first_claim,
            broadcast_status_webhooks_resolve_unknown_deliveries,
            broadcast_webhooks_update_deliveries_and_opt_in,
            a_send_with_no_answer_is_resolved_by_its_status,
            a_settled_broadcast_takes_a_late_sent_delivery_into_account,
            a_broadcast_settled_from_a_stale_count_takes_the_news_into_account,
            broadcast_posts_are_created_with_their_audience,
            a_series_is_replaced_all_at_once_or_not_at_all,
            a_broadcast_series_is_replaced_with_its_audience,
            settings,
            worker_flags_and_execution_logs,
            worker_slots_are_claimed_once,
            tenant_isolation,
            extreme_time_bounds_are_accepted,
            waits_past_the_range_of_time_are_answered,
            reply_queue_claims_oldest_due_first,
            reply_claims_share_the_batch_among_channels,
            reply_queue_leaves_channels_with_auto_replies_off,
            reply_queue_leases_keep_claims_apart,
            reply_queue_records_outcomes_on_the_item,
            replies_too_old_for_the_claim_are_escalated,
            hidden_comments_wait_in_the_reply_queue,
            stale_release_closes_running_post_runs,
            reply_claims_are_withdrawn_only_while_unsent,
            replies_of_one_conversation_are_claimed_in_order,
            reply_lease_heartbeats_extend_only_the_holders_claims,
            reply_batches_claim_and_settle_under_the_lease,
            dead_letters_are_stored_once_and_listed,
            dead_letters_are_stored_in_batches,
            topic_items_and_busy_posts,
            retention_takes_a_purged_messages_topic_rows,
            embeddings_are_upserted_and_checked,
            topic_runs_keep_identity_sizes_and_members,
            post_topics_and_refused_runs,
            api_keys_are_issued_once_and_listed_by_prefix,
            api_keys_verify_only_the_exact_token,
            api_key_revocation_is_idempotent_and_tenant_scoped,
            api_key_last_use_is_recorded_once_a_minute,
            ops_reads_schema_and_queue_depth,
            tenant_settings_round_trip_and_stay_apart,
            retention_purges_old_finished_rows_in_batches,
            retention_purges_settled_notifications,
            retention_purges_old_messages,
            credential_leases_are_one_at_a_time,
            refused_refresh_pauses_the_channel_until_reconnected,
            replies_of_a_paused_channel_wait,
            notification_endpoints_are_created_and_listed,
            escalations_write_their_notification,
            failed_posts_write_their_notification,
            notification_deliveries_retry_and_die,
            a_claim_takes_a_bounded_share_of_one_endpoint,
            notification_claims_are_renewed_by_their_holder,
            deployment_notifications_reach_subscribed_tenants,
            agent_replies_are_claimed_once_and_recorded,
            concurrent_agent_reply_claims_claim_once,
            abandoned_agent_replies_are_settled,
            a_sent_agent_reply_supersedes_the_automatic_ones,
            an_answered_item_escalates_no_one,
            inbox_items_follow_messages_and_people,
            resolving_before_the_last_inbound_message_leaves_it_open,
            canned_replies_are_kept_per_tenant,
            first_response_targets_are_kept_per_tenant,
            concurrent_messages_keep_the_item_right,
        );
    };
    (@tests $attrs:tt $factory:path; $($name:ident,)+) => {$(
        $crate::conformance_suite!(@one $attrs $factory; $name);
    )+};
    (@one { $($attr:tt)* } $factory:path; $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $($attr)*
        async fn $name() {
            let Some(test_store) = $factory().await else { return };
            $crate::conformance::$name(test_store.store()).await;
            test_store.cleanup().await;
        }
    };
}
