//! Auto-replies and comment polling at platform speed, on memory and
//! Postgres: a batch runs its channels and conversations concurrently under
//! the worker's and the channel's caps, the replies of one conversation in
//! order; a channel answering 429 with Retry-After holds back only its own
//! replies; the heartbeat keeps a slow reply batch claimed; due posts are
//! polled concurrently, each once, their checkpoints saved.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
mod inbound_concurrency {
    pub mod counting;
    pub mod polling;
    pub mod replies;
    pub mod world;
}

use inbound_concurrency::{polling, replies};

on_both_backends!(
    replies::replies_run_concurrently_in_conversation_order_under_the_caps,
    replies::a_rate_limited_channel_holds_back_only_its_own_replies,
    replies::the_heartbeat_keeps_slow_replies_claimed,
    replies::a_failed_send_after_a_heartbeat_is_settled_under_the_renewed_lease,
    polling::due_posts_are_polled_concurrently_under_the_caps,
    polling::post_discovery_lists_channels_concurrently_under_the_cap,
);
