//! WhatsApp broadcasts through the publish queue with the real WhatsApp
//! connector against a local fake Cloud API, on memory and on Postgres: a
//! scheduled post to an audience of 3 goes out at T (manual clock); a
//! recipient outside the 24-hour window without a template is refused before
//! any call; a recipient who fails twice then succeeds gets exactly one
//! message; a worker killed mid-fan-out and restarted sends no one twice.
#![allow(clippy::unwrap_used)]

mod common;
mod whatsapp_broadcast {
    pub mod delivery;
    pub mod fake_api;
    pub mod fixture;
    pub mod interruptions;
    pub mod refusals;
}

use whatsapp_broadcast::{delivery, interruptions, refusals};

on_both_backends!(
    delivery::a_broadcast_to_an_audience_of_3_goes_out_at_t,
    delivery::a_rescheduled_broadcast_series_keeps_its_audience,
    interruptions::a_worker_killed_mid_fan_out_sends_no_one_twice,
    interruptions::a_series_cancelled_mid_broadcast_stops_it_and_says_how_far_it_went,
    interruptions::a_retry_after_pauses_the_fan_out_and_holds_the_channel,
    interruptions::a_throttle_without_a_wait_holds_the_channel_but_a_pair_limit_does_not,
    interruptions::a_large_audience_goes_out_in_bounded_passes,
    interruptions::a_large_broadcast_does_not_hold_its_channels_next_post,
    interruptions::a_lane_of_large_broadcasts_stops_with_its_batch,
    refusals::a_refused_sender_stops_the_fan_out_instead_of_failing_everyone,
    refusals::a_sender_refused_at_every_try_fails_the_post,
    refusals::one_refusal_on_a_last_attempt_does_not_fail_the_broadcast,
    refusals::a_broadcast_cancelled_while_it_waits_sends_to_no_one_more,
    refusals::a_replaced_series_closes_its_waiting_occurrences_deliveries,
);
