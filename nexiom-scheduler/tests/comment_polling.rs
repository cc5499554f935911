//! Comment polling against `MockConnector` (documented pages, scripted
//! failures), and the polling and KPI workers on the runtime; each test on
//! memory and on PostgreSQL.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
mod comment_polling {
    pub mod discovery_tokens;
    pub mod fixture;
    pub mod handling;
    pub mod isolation;
    pub mod reading;
    pub mod rereads;
    pub mod workers;
}

use comment_polling::{discovery_tokens, handling, isolation, reading, rereads, workers};

on_both_backends!(
    reading::three_pages_of_comments_arrive_exactly_once,
    reading::a_cursor_longer_than_a_key_is_followed_and_kept,
    reading::the_accounts_own_comments_are_not_stored,
    reading::a_crash_before_the_checkpoint_stores_no_duplicates,
    reading::a_cursor_the_platform_refuses_is_read_again_from_the_start,
    reading::polled_every_five_minutes_and_never_after_seven_days,
    reading::a_window_that_ended_while_no_worker_ran_is_read_once,
    reading::a_last_check_cut_short_reads_on_to_the_last_page,
    rereads::a_reply_on_an_earlier_page_is_found_by_the_hourly_reread,
    rereads::a_reread_stopped_part_way_goes_on_where_it_stopped,
    rereads::a_slow_check_stops_before_its_claim_ends_and_goes_on,
    rereads::a_reread_finished_in_the_next_hour_counts_for_the_hour_it_began,
    isolation::a_failing_post_does_not_stop_another,
    isolation::a_post_refused_at_every_check_is_checked_less_often,
    isolation::refusals_after_the_window_keep_the_graces_retries,
    isolation::a_rate_limited_channel_is_skipped_until_retry_after,
    isolation::a_throttle_met_by_one_poller_holds_the_channel_for_every_process,
    handling::a_comment_seen_by_webhook_and_polling_is_handled_once,
    handling::hiding_a_comment_goes_through_the_platform_and_is_recorded,
    handling::hiding_a_comment_renews_a_refused_token_once,
    handling::a_comment_hidden_on_the_platform_gets_no_reply,
    reading::posts_on_a_platform_without_comments_are_not_polled,
    reading::a_bad_comment_does_not_stop_its_post,
    workers::polling_and_kpi_workers_run_with_flags_logs_and_pipeline_counts,
    workers::a_run_goes_past_batches_that_only_end_windows,
    workers::a_failure_quoting_a_nul_is_logged,
    isolation::claimed_posts_are_skipped_and_a_stopping_pass_hands_its_posts_back,
    discovery_tokens::a_refused_token_is_renewed_before_discovery_lists_again,
    discovery_tokens::a_refused_renewal_pauses_the_channel_and_defers_discovery,
    discovery_tokens::a_caption_the_store_cannot_take_does_not_hide_its_post,
    discovery_tokens::a_channel_paused_during_a_pass_gets_no_more_calls_in_it,
);
