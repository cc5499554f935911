//! The metrics the library records, through the [`metrics`] facade: the
//! application installs a recorder (the worker example uses
//! `metrics-exporter-prometheus`); without one, recording costs next to
//! nothing.
//!
//! Labels are bounded: platform, outcome, status, worker name, result. No
//! tenant, post or channel id is ever a label.
//!
//! | name | kind | labels | what |
//! | --- | --- | --- | --- |
//! | `nexiom_posts_published_total` | counter | | posts published |
//! | `nexiom_posts_failed_total` | counter | | posts failed for good (outcome unknown excluded) |
//! | `nexiom_posts_outcome_unknown_total` | counter | | posts left `outcome_unknown` (a person must check) |
//! | `nexiom_posts_retrying_total` | counter | | attempts that failed and were queued again |
//! | `nexiom_publish_attempts_total` | counter | `platform`, `result` (`ok`, `error`) | publish calls to a platform |
//! | `nexiom_publish_latency_seconds` | histogram | `platform` | duration of one publish call |
//! | `nexiom_publish_queue_depth` | gauge | | due posts waiting, at the publishing worker's last run |
//! | `nexiom_publish_queue_oldest_due_seconds` | gauge | | how long the oldest due post has waited |
//! | `nexiom_channels_needing_reauth` | gauge | | channels a person must reconnect, at the publishing worker's last run |
//! | `nexiom_events_ingested_total` | counter | `platform` | webhook events stored (first delivery) |
//! | `nexiom_events_duplicate_total` | counter | `platform` | redeliveries of events stored already |
//! | `nexiom_events_dead_lettered_total` | counter | `platform` | events dead-lettered (unreadable, unknown account) |
//! | `nexiom_ingest_batch_events` | histogram | | events per group commit of the webhook receiver (one insert, one commit) |
//! | `nexiom_events_routed_total` | counter | | events routed into conversations and comments |
//! | `nexiom_routing_lag_seconds` | gauge | | age of the oldest unrouted event when routing starts |
//! | `nexiom_triage_decisions_total` | counter | `outcome` (`ignore`, `escalate`, `auto_reply`) | triage decisions |
//! | `nexiom_auto_replies_total` | counter | `result` (`sent`, `failed`, `given_up`, `expired`) | auto-replies |
//! | `nexiom_comments_polled_total` | counter | | new comments stored by polling |
//! | `nexiom_poll_lag_seconds` | gauge | | how long the most overdue post waited for its comment check |
//! | `nexiom_token_refreshes_total` | counter | `result` (`ok`, `refused`) | token refreshes |
//! | `nexiom_notification_deliveries_total` | counter | `result` (`delivered`, `retried`, `dead`) | attempts to deliver a notification to an endpoint (`dead`: the last one failed, no one was told) |
//! | `nexiom_worker_runs_total` | counter | `worker`, `status` (`completed`, `failed`) | worker runs |
//! | `nexiom_worker_run_duration_seconds` | histogram | `worker` | duration of one run |
//! | `nexiom_worker_last_success_timestamp_seconds` | gauge | `worker` | Unix time of the start of the worker's last completed run (alert on `time() -` it) |

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use nexiom_core::{Platform, Triage};

/// Every metric name the library records, for dashboards and tests.
pub const METRIC_NAMES: &[&str] = &[
    POSTS_PUBLISHED,
    POSTS_FAILED,
    POSTS_OUTCOME_UNKNOWN,
    POSTS_RETRYING,
    PUBLISH_ATTEMPTS,
    PUBLISH_LATENCY,
    QUEUE_DEPTH,
    QUEUE_OLDEST_DUE,
    CHANNELS_NEEDING_REAUTH,
    EVENTS_INGESTED,
    EVENTS_DUPLICATE,
    EVENTS_DEAD_LETTERED,
    INGEST_BATCH_EVENTS,
    EVENTS_ROUTED,
    ROUTING_LAG,
    TRIAGE_DECISIONS,
    AUTO_REPLIES,
    COMMENTS_POLLED,
    POLL_LAG,
    TOKEN_REFRESHES,
    NOTIFICATION_DELIVERIES,
    WORKER_RUNS,
    WORKER_RUN_DURATION,
    WORKER_LAST_SUCCESS,
];

/// Posts published.
pub const POSTS_PUBLISHED: &str = "nexiom_posts_published_total";
/// Posts failed for good.
pub const POSTS_FAILED: &str = "nexiom_posts_failed_total";
/// Posts left `outcome_unknown`.
pub const POSTS_OUTCOME_UNKNOWN: &str = "nexiom_posts_outcome_unknown_total";
/// Failed attempts queued again.
pub const POSTS_RETRYING: &str = "nexiom_posts_retrying_total";
/// Publish calls.
pub const PUBLISH_ATTEMPTS: &str = "nexiom_publish_attempts_total";
/// Publish call duration.
pub const PUBLISH_LATENCY: &str = "nexiom_publish_latency_seconds";
/// Due posts waiting.
pub const QUEUE_DEPTH: &str = "nexiom_publish_queue_depth";
/// Age of the oldest due post.
pub const QUEUE_OLDEST_DUE: &str = "nexiom_publish_queue_oldest_due_seconds";
/// Channels needing re-authorization.
pub const CHANNELS_NEEDING_REAUTH: &str = "nexiom_channels_needing_reauth";
/// Webhook events stored.
pub const EVENTS_INGESTED: &str = "nexiom_events_ingested_total";
/// Redelivered webhook events.
pub const EVENTS_DUPLICATE: &str = "nexiom_events_duplicate_total";
/// Dead-lettered webhook events.
pub const EVENTS_DEAD_LETTERED: &str = "nexiom_events_dead_lettered_total";
/// Events per group commit of the receiver.
pub const INGEST_BATCH_EVENTS: &str = "nexiom_ingest_batch_events";
/// Events routed.
pub const EVENTS_ROUTED: &str = "nexiom_events_routed_total";
/// Age of the oldest unrouted event.
pub const ROUTING_LAG: &str = "nexiom_routing_lag_seconds";
/// Triage decisions.
pub const TRIAGE_DECISIONS: &str = "nexiom_triage_decisions_total";
/// Auto-replies.
pub const AUTO_REPLIES: &str = "nexiom_auto_replies_total";
/// Comments stored by polling.
pub const COMMENTS_POLLED: &str = "nexiom_comments_polled_total";
/// Comment-check lag.
pub const POLL_LAG: &str = "nexiom_poll_lag_seconds";
/// Token refreshes.
pub const TOKEN_REFRESHES: &str = "nexiom_token_refreshes_total";
/// Notification delivery attempts.
pub const NOTIFICATION_DELIVERIES: &str = "nexiom_notification_deliveries_total";
/// Worker runs.
pub const WORKER_RUNS: &str = "nexiom_worker_runs_total";
/// Worker run duration.
pub const WORKER_RUN_DURATION: &str = "nexiom_worker_run_duration_seconds";
/// Start of a worker's last completed run.
pub const WORKER_LAST_SUCCESS: &str = "nexiom_worker_last_success_timestamp_seconds";

/// Describes every metric (help text and unit) to the installed recorder and
/// starts the counters and gauges whose labels are known in advance at zero,
/// so that dashboards and alerts see them before the first event. Call it
/// once, after installing the recorder.
pub fn describe() {
    describe_counter!(POSTS_PUBLISHED, Unit::Count, "Posts published.");
    describe_counter!(
        POSTS_FAILED,
        Unit::Count,
        "Posts failed for good (outcome unknown excluded)."
    );
    describe_counter!(
        POSTS_OUTCOME_UNKNOWN,
        Unit::Count,
        "Posts left outcome_unknown: a person must check the platform."
    );
    describe_counter!(
        POSTS_RETRYING,
        Unit::Count,
        "Publish attempts that failed and were queued again."
    );
    describe_counter!(
        PUBLISH_ATTEMPTS,
        Unit::Count,
        "Publish calls to a platform, by platform and result."
    );
    describe_gauge!(
        CHANNELS_NEEDING_REAUTH,
        Unit::Count,
        "Channels a person must reconnect (status needs_reauth)."
    );
    describe_histogram!(
        PUBLISH_LATENCY,
        Unit::Seconds,
        "Duration of one publish call, by platform."
    );
    describe_gauge!(
        QUEUE_DEPTH,
        Unit::Count,
        "Due posts waiting at the publishing worker's last run."
    );
    describe_gauge!(
        QUEUE_OLDEST_DUE,
        Unit::Seconds,
        "How long the oldest due post has waited."
    );
    describe_counter!(
        EVENTS_INGESTED,
        Unit::Count,
        "Webhook events stored, by platform."
    );
    describe_counter!(
        EVENTS_DUPLICATE,
        Unit::Count,
        "Redelivered webhook events (stored already), by platform."
    );
    describe_counter!(
        EVENTS_DEAD_LETTERED,
        Unit::Count,
        "Webhook events dead-lettered, by platform."
    );
    describe_histogram!(
        INGEST_BATCH_EVENTS,
        Unit::Count,
        "Events per group commit of the webhook receiver (one insert, one commit)."
    );
    describe_counter!(
        EVENTS_ROUTED,
        Unit::Count,
        "Events routed into conversations and comments."
    );
    describe_gauge!(
        ROUTING_LAG,
        Unit::Seconds,
        "Age of the oldest unrouted event when routing starts."
    );
    describe_counter!(
        TRIAGE_DECISIONS,
        Unit::Count,
        "Triage decisions, by outcome."
    );
    describe_counter!(AUTO_REPLIES, Unit::Count, "Auto-replies, by result.");
    describe_counter!(
        COMMENTS_POLLED,
        Unit::Count,
        "New comments stored by polling."
    );
    describe_gauge!(
        POLL_LAG,
        Unit::Seconds,
        "How long the most overdue post waited for its comment check."
    );
    describe_counter!(TOKEN_REFRESHES, Unit::Count, "Token refreshes, by result.");
    describe_counter!(
        NOTIFICATION_DELIVERIES,
        Unit::Count,
        "Notification delivery attempts, by result (dead: given up, no one was told)."
    );
    describe_counter!(
        WORKER_RUNS,
        Unit::Count,
        "Worker runs, by worker and status."
    );
    describe_histogram!(
        WORKER_RUN_DURATION,
        Unit::Seconds,
        "Duration of one worker run, by worker."
    );

    describe_gauge!(
        WORKER_LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of the start of the worker's last completed run."
    );

    for name in [
        POSTS_PUBLISHED,
        POSTS_FAILED,
        POSTS_OUTCOME_UNKNOWN,
        POSTS_RETRYING,
        EVENTS_ROUTED,
        COMMENTS_POLLED,
    ] {
        counter!(name).absolute(0);
    }
    for name in [
        QUEUE_DEPTH,
        QUEUE_OLDEST_DUE,
        CHANNELS_NEEDING_REAUTH,
        ROUTING_LAG,
        POLL_LAG,
    ] {
        gauge!(name).set(0.0);
    }
    for platform in Platform::BUILT_IN {
        let platform = platform.as_str().to_owned();
        for result in ["ok", "error"] {
            counter!(PUBLISH_ATTEMPTS, "platform" => platform.clone(), "result" => result)
                .absolute(0);
        }
        for name in [EVENTS_INGESTED, EVENTS_DUPLICATE, EVENTS_DEAD_LETTERED] {
            counter!(name, "platform" => platform.clone()).absolute(0);
        }
    }
    for outcome in [Triage::Ignore, Triage::Escalate, Triage::AutoReply] {
        counter!(TRIAGE_DECISIONS, "outcome" => outcome.as_str()).absolute(0);
    }
    for result in ["sent", "failed", "given_up", "expired"] {
        counter!(AUTO_REPLIES, "result" => result).absolute(0);
    }
    for result in ["ok", "refused"] {
        counter!(TOKEN_REFRESHES, "result" => result).absolute(0);
    }
    for result in ["delivered", "retried", "dead"] {
        counter!(NOTIFICATION_DELIVERIES, "result" => result).absolute(0);
    }
}

/// One post's outcome: `published`, `retrying`, `failed` or `outcome_unknown`.
pub(crate) fn post_outcome(kind: &'static str) {
    let name = match kind {
        "published" => POSTS_PUBLISHED,
        "retrying" => POSTS_RETRYING,
        "outcome_unknown" => POSTS_OUTCOME_UNKNOWN,
        _ => POSTS_FAILED,
    };
    counter!(name).increment(1);
}

/// One publish call and how long it took.
pub(crate) fn publish_call(platform: &str, ok: bool, seconds: f64) {
    let result = if ok { "ok" } else { "error" };
    counter!(PUBLISH_ATTEMPTS, "platform" => platform.to_owned(), "result" => result).increment(1);
    histogram!(PUBLISH_LATENCY, "platform" => platform.to_owned()).record(seconds);
}

/// The due queue and the channels needing re-authorization, at the
/// publishing worker's run.
pub(crate) fn publish_queue(depth: u64, oldest_due_seconds: f64, needing_reauth: u64) {
    gauge!(QUEUE_DEPTH).set(depth as f64);
    gauge!(QUEUE_OLDEST_DUE).set(oldest_due_seconds);
    gauge!(CHANNELS_NEEDING_REAUTH).set(needing_reauth as f64);
}

/// One webhook body's events.
pub(crate) fn ingested(platform: &str, stored: u64, duplicates: u64, dead_lettered: u64) {
    counter!(EVENTS_INGESTED, "platform" => platform.to_owned()).increment(stored);
    counter!(EVENTS_DUPLICATE, "platform" => platform.to_owned()).increment(duplicates);
    counter!(EVENTS_DEAD_LETTERED, "platform" => platform.to_owned()).increment(dead_lettered);
}

/// One group commit of the receiver: its events.
pub(crate) fn ingest_batch(events: usize) {
    histogram!(INGEST_BATCH_EVENTS).record(events as f64);
}

/// One routing batch: events routed, and the lag before it.
pub(crate) fn routed(events: u64, lag_seconds: f64) {
    counter!(EVENTS_ROUTED).increment(events);
    gauge!(ROUTING_LAG).set(lag_seconds);
}

/// One triage decision.
pub(crate) fn triage_decision(outcome: Triage) {
    counter!(TRIAGE_DECISIONS, "outcome" => outcome.as_str()).increment(1);
}

/// One auto-reply batch.
pub(crate) fn auto_replies(report: &crate::inbound::AutoReplyReport) {
    counter!(AUTO_REPLIES, "result" => "sent").increment(report.sent);
    counter!(AUTO_REPLIES, "result" => "failed").increment(report.failed);
    counter!(AUTO_REPLIES, "result" => "given_up").increment(report.given_up);
}

/// Auto-replies taken out of the queue as too old to send.
pub(crate) fn replies_expired(count: u64) {
    counter!(AUTO_REPLIES, "result" => "expired").increment(count);
}

/// One polling run: comments stored, and the lag of the most overdue post.
pub(crate) fn polled(comments: u64, lag_seconds: f64) {
    counter!(COMMENTS_POLLED).increment(comments);
    gauge!(POLL_LAG).set(lag_seconds);
}

/// One token refresh.
pub(crate) fn token_refresh(ok: bool) {
    counter!(TOKEN_REFRESHES, "result" => if ok { "ok" } else { "refused" }).increment(1);
}

/// One notification delivery attempt: `delivered`, `retried` or `dead`.
pub(crate) fn notification_delivery(result: &'static str) {
    counter!(NOTIFICATION_DELIVERIES, "result" => result).increment(1);
}

/// One worker run, started at `started_at` (the runtime's clock).
pub(crate) fn worker_run(
    worker: &str,
    completed: bool,
    seconds: f64,
    started_at: chrono::DateTime<chrono::Utc>,
) {
    let status = if completed { "completed" } else { "failed" };
    counter!(WORKER_RUNS, "worker" => worker.to_owned(), "status" => status).increment(1);
    histogram!(WORKER_RUN_DURATION, "worker" => worker.to_owned()).record(seconds);
    if completed {
        gauge!(WORKER_LAST_SUCCESS, "worker" => worker.to_owned())
            .set(started_at.timestamp_millis() as f64 / 1e3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    /// A recorded series: name, labels, value.
    type Series = (String, Vec<(String, String)>, DebugValue);

    /// Every recording function, through a local recorder: each documented
    /// name is recorded by exactly the function the table says, with its
    /// labels and value.
    #[test]
    fn each_function_records_its_documented_series() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            post_outcome("published");
            post_outcome("retrying");
            post_outcome("failed");
            post_outcome("outcome_unknown");
            publish_call("facebook", true, 0.25);
            publish_queue(7, 42.0, 2);
            ingested("whatsapp", 3, 1, 2);
            ingest_batch(12);
            routed(5, 1.5);
            triage_decision(Triage::Escalate);
            auto_replies(&crate::inbound::AutoReplyReport {
                sent: 4,
                failed: 1,
                ..Default::default()
            });
            replies_expired(2);
            polled(6, 12.0);
            token_refresh(false);
            notification_delivery("dead");
            worker_run(
                "enqueue_due_posts",
                true,
                0.5,
                chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
            );
        });
        let series: Vec<Series> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels = key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                (key.name().to_owned(), labels, value)
            })
            .collect();
        let value = |name: &str, labels: &[(&str, &str)]| {
            series
                .iter()
                .find(|(n, l, _)| {
                    n == name
                        && labels
                            .iter()
                            .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
                })
                .map(|(_, _, v)| v)
        };
        for name in METRIC_NAMES {
            assert!(value(name, &[]).is_some(), "{name} is never recorded");
        }
        assert_eq!(
            value(POSTS_OUTCOME_UNKNOWN, &[]),
            Some(&DebugValue::Counter(1))
        );
        assert_eq!(
            value(
                PUBLISH_ATTEMPTS,
                &[("platform", "facebook"), ("result", "ok")]
            ),
            Some(&DebugValue::Counter(1))
        );
        assert_eq!(
            value(CHANNELS_NEEDING_REAUTH, &[]),
            Some(&DebugValue::Gauge(2.0.into()))
        );
        assert_eq!(
            value(EVENTS_DEAD_LETTERED, &[("platform", "whatsapp")]),
            Some(&DebugValue::Counter(2))
        );
        assert_eq!(
            value(TRIAGE_DECISIONS, &[("outcome", "escalate")]),
            Some(&DebugValue::Counter(1))
        );
        assert_eq!(
            value(TOKEN_REFRESHES, &[("result", "refused")]),
            Some(&DebugValue::Counter(1))
        );
        assert_eq!(
            value(NOTIFICATION_DELIVERIES, &[("result", "dead")]),
            Some(&DebugValue::Counter(1))
        );
        assert_eq!(
            value(WORKER_LAST_SUCCESS, &[("worker", "enqueue_due_posts")]),
            Some(&DebugValue::Gauge(1_800_000_000.0.into()))
        );
    }
}
