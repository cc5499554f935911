//! What the story did ([`StoryOutcome`]), for the end-to-end test to assert.

use nexiom::core::Triage;
use nexiom::scheduler::PipelineCounts;
use nexiom::scheduler::inbound::IngestReport;

/// Any error of the story.
pub type StoryError = Box<dyn std::error::Error + Send + Sync>;
/// Webhook deliveries, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Events stored.
    pub stored: u64,
    /// Redeliveries (stored already, nothing written).
    pub duplicates: u64,
    /// Events for an account no channel is connected for.
    pub unknown_accounts: u64,
}

/// What the story did, for the end-to-end test to assert.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoryOutcome {
    /// Posts the orchestrator scheduled from the mission's content jobs.
    pub mission_posts_scheduled: usize,
    /// The series template was created.
    pub series_created: bool,
    /// Posts in `published` at the end (mission post + series occurrence).
    pub posts_published: usize,
    /// Publish attempts (post runs) of the mission post: 2 = throttled, then published.
    pub mission_post_attempts: usize,
    /// Comment polling ran.
    pub comment_polling: bool,
    /// Comments the poller stored.
    pub comments_polled: u64,
    /// Replies to polled comments sent by the poller's follow-up step.
    pub poll_auto_replied: u64,
    /// Sum of the ingest reports of the signed deliveries.
    pub ingested: Ingested,
    /// The delivery with a bad signature was refused as unauthenticated.
    pub bad_signature_refused: bool,
    /// Events routed by the worker step.
    pub routed: u64,
    /// Decisions: ignored comments, escalated messages, auto-reply messages.
    pub ignored: usize,
    /// Escalated items.
    pub escalated: usize,
    /// Auto-reply items.
    pub auto_reply: usize,
    /// Replies sent while AI control was ON.
    pub replies_sent: u64,
    /// Replies sent after AI control was switched OFF (must be 0).
    pub replies_after_off: u64,
    /// The triage of the question that arrived while AI control was OFF
    /// (`ignore`: an AUTO_REPLY outcome turns into IGNORE, reason
    /// `ai_control_off`, so the item never enters the reply queue).
    pub triage_after_off: Option<Triage>,
    /// Requests the fake platform received after AI control went OFF (must be 0).
    pub platform_requests_after_off: usize,
    /// The counts of the standard pipeline pass (step 7).
    pub pipeline: PipelineCounts,
    /// KPI windows with activity (messages, comments or active posts).
    pub kpi_windows_with_activity: usize,
    /// Messages counted over all KPI windows.
    pub kpi_messages: i64,
}

/// Adds one delivery's report to the running sums.
pub(super) fn add(total: &mut Ingested, r: IngestReport) {
    total.stored += r.stored;
    total.duplicates += r.events - r.stored - r.unknown_account;
    total.unknown_accounts += r.unknown_account;
}
