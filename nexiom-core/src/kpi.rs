//! The 2-hour KPI rules as a pure computation: [`KpiWindow`], the facts a
//! computation reads ([`KpiFacts`]) and [`compute_kpis`], whose documentation
//! states the rules.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::entity::Kpi2h;
use crate::enums::{MessageDirection, Triage};
use crate::error::CoreError;
use crate::id::{ConversationId, MessageId, PostId, TenantId};

/// One KPI window: `[start, end)` in UTC. Windows start at a local even hour of
/// the tenant's time zone (see `nexiom_scheduler::kpi_windows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KpiWindow {
    /// First instant of the window.
    pub start: DateTime<Utc>,
    /// First instant after the window (the next window's start).
    pub end: DateTime<Utc>,
}

impl KpiWindow {
    /// Whether `instant` falls in `[start, end)`.
    pub fn contains(&self, instant: DateTime<Utc>) -> bool {
        self.start <= instant && instant < self.end
    }

    /// Checks a list of windows to aggregate: each must end after it starts, and
    /// they must be sorted by start without overlapping (`end <= next start`;
    /// gaps are allowed). An empty list is valid.
    pub fn validate_list(windows: &[KpiWindow]) -> Result<(), CoreError> {
        if let Some(w) = windows.iter().find(|w| w.start >= w.end) {
            return Err(CoreError::invalid(
                "windows",
                format!(
                    "the window starting at {} does not end after it starts ({})",
                    w.start, w.end
                ),
            ));
        }
        if let Some(pair) = windows.windows(2).find(|p| p[0].end > p[1].start) {
            return Err(CoreError::invalid(
                "windows",
                format!(
                    "windows must be sorted by start and must not overlap: [{}, {}) is followed by one starting at {}",
                    pair[0].start, pair[0].end, pair[1].start
                ),
            ));
        }
        Ok(())
    }
}

/// A message as the KPI rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KpiMessage {
    /// Id (the tie-breaker between messages of the same instant).
    pub id: MessageId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Direction.
    pub direction: MessageDirection,
    /// Platform time.
    pub created_at: DateTime<Utc>,
}

/// A comment as the KPI rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KpiComment {
    /// The post it was left on.
    pub post_id: PostId,
    /// Platform time.
    pub created_at: DateTime<Utc>,
}

/// A decision as the KPI rules see it: its triage and when its item (message or
/// comment) was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KpiDecision {
    /// The decision's triage.
    pub triage: Triage,
    /// `created_at` of the message or comment it decided.
    pub item_created_at: DateTime<Utc>,
}

/// What one tenant's KPI computation reads.
///
/// `messages` must hold, for every conversation with an inbound message in a
/// window, that conversation's messages from the one just before the earliest
/// window's start onwards (all of them is always right); other facts outside the
/// windows are ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KpiFacts {
    /// Messages, in any order.
    pub messages: Vec<KpiMessage>,
    /// Comments, in any order.
    pub comments: Vec<KpiComment>,
    /// Decisions, in any order.
    pub decisions: Vec<KpiDecision>,
}

/// Per-window accumulator.
#[derive(Default)]
struct Acc {
    messages: i64,
    comments: i64,
    posts: std::collections::HashSet<PostId>,
    waits: Vec<f64>,
    decisions: i64,
    auto_replies: i64,
    escalations: i64,
    ignored: i64,
}

/// The KPI rows of `tenant` for `windows` (in the same order), computed from
/// `facts` by the rules below, each stamped `computed_at`.
///
/// Every backend must produce exactly what [`compute_kpis`] produces: the memory
/// store calls it; the Postgres store runs the same rules in SQL and is checked
/// against hand-computed expectations by the conformance suite. The rules, per
/// window `[start, end)`:
///
/// - `messages_count`: inbound messages with `start <= created_at < end`.
/// - `comments_count`: comments created in the window; `posts_active`: distinct
///   posts among them.
/// - `frt_p50_seconds`: in each conversation, messages are ordered by
///   `(created_at, id)`. An inbound message *opens a wait* when the message just
///   before it is outbound or there is none (it is the first inbound after the
///   previous outbound). The wait lasts until the next outbound message of the
///   conversation; waits with no outbound yet are left out. Each wait belongs to
///   the window of its opening message, whenever it was answered. The value is
///   the median as `percentile_cont(0.5)` computes it (the mean of the two middle
///   waits when their number is even), in seconds, rounded to the nearest whole
///   second with halves rounded up (`floor(x + 0.5)`); `None` without waits.
/// - `auto_reply_rate`, `escalate_count`, `ignored_count`: over the decisions
///   whose item (message or comment) was created in the window, whenever the
///   decision was taken. The rate is AUTO_REPLY decisions ÷ all of them, rounded
///   to 3 decimals with halves rounded up; `None` without decisions.
///
/// The arithmetic is written so that SQL (`float8`, `bigint`) reproduces it bit
/// for bit: waits are whole microseconds divided by 10⁶ in double precision, the
/// median interpolates as `lo + 0.5 × (hi − lo)`, and the rate is
/// `((2000 × auto + total) div (2 × total)) / 1000`.
///
/// `windows` must pass [`KpiWindow::validate_list`].
pub fn compute_kpis(
    tenant: TenantId,
    windows: &[KpiWindow],
    facts: &KpiFacts,
    computed_at: DateTime<Utc>,
) -> Result<Vec<Kpi2h>, CoreError> {
    KpiWindow::validate_list(windows)?;
    let mut acc: Vec<Acc> = windows.iter().map(|_| Acc::default()).collect();
    // Sorted, non-overlapping windows: a binary search finds an instant's window.
    let slot = |t: DateTime<Utc>| -> Option<usize> {
        let i = windows.partition_point(|w| w.start <= t).checked_sub(1)?;
        windows[i].contains(t).then_some(i)
    };

    for c in &facts.comments {
        if let Some(i) = slot(c.created_at) {
            acc[i].comments += 1;
            acc[i].posts.insert(c.post_id);
        }
    }
    for d in &facts.decisions {
        if let Some(i) = slot(d.item_created_at) {
            let a = &mut acc[i];
            a.decisions += 1;
            match d.triage {
                Triage::AutoReply => a.auto_replies += 1,
                Triage::Escalate => a.escalations += 1,
                Triage::Ignore => a.ignored += 1,
            }
        }
    }

    let mut by_conversation: HashMap<ConversationId, Vec<&KpiMessage>> = HashMap::new();
    for m in &facts.messages {
        if m.direction == MessageDirection::Inbound
            && let Some(i) = slot(m.created_at)
        {
            acc[i].messages += 1;
        }
        by_conversation
            .entry(m.conversation_id)
            .or_default()
            .push(m);
    }
    for messages in by_conversation.values_mut() {
        messages.sort_by_key(|m| (m.created_at, m.id));
        // Walk backwards, remembering the next outbound message's time.
        let mut next_outbound: Option<DateTime<Utc>> = None;
        for (pos, m) in messages.iter().enumerate().rev() {
            match m.direction {
                MessageDirection::Outbound => next_outbound = Some(m.created_at),
                MessageDirection::Inbound => {
                    let opens_wait =
                        pos == 0 || messages[pos - 1].direction == MessageDirection::Outbound;
                    if let (true, Some(reply_at), Some(i)) =
                        (opens_wait, next_outbound, slot(m.created_at))
                    {
                        acc[i].waits.push(wait_seconds(m.created_at, reply_at));
                    }
                }
            }
        }
    }

    Ok(windows
        .iter()
        .zip(acc)
        .map(|(w, mut a)| Kpi2h {
            tenant_id: tenant,
            window_start: w.start,
            window_end: w.end,
            messages_count: a.messages,
            comments_count: a.comments,
            frt_p50_seconds: median_whole_seconds(&mut a.waits),
            auto_reply_rate: rate(a.auto_replies, a.decisions),
            escalate_count: a.escalations,
            ignored_count: a.ignored,
            posts_active: i64::try_from(a.posts.len()).unwrap_or(i64::MAX),
            computed_at,
        })
        .collect())
}

/// `reply_at - opened_at` in seconds, as whole microseconds ÷ 10⁶ in double
/// precision (what Postgres' `extract(epoch FROM interval)::float8` gives).
fn wait_seconds(opened_at: DateTime<Utc>, reply_at: DateTime<Utc>) -> f64 {
    let delta = reply_at - opened_at;
    let micros = delta
        .num_microseconds()
        .unwrap_or_else(|| delta.num_milliseconds().saturating_mul(1000));
    // Exact below 2^53 µs (285 years).
    #[allow(clippy::cast_precision_loss)]
    let micros = micros as f64;
    micros / 1_000_000.0
}

/// `percentile_cont(0.5)` of `values`, rounded with `floor(x + 0.5)`.
fn median_whole_seconds(values: &mut [f64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    // percentile_cont: row = 0.5 × (n − 1); interpolate between floor and ceil.
    let lo = values[(n - 1) / 2];
    let median = if n % 2 == 1 {
        lo
    } else {
        let hi = values[n / 2];
        lo + 0.5 * (hi - lo)
    };
    #[allow(clippy::cast_possible_truncation)]
    Some((median + 0.5).floor() as i64)
}

/// `part ÷ total` rounded to 3 decimals, halves up; `None` when `total` is 0.
fn rate(part: i64, total: i64) -> Option<f64> {
    if total <= 0 {
        return None;
    }
    let millis = (2000 * part + total) / (2 * total);
    #[allow(clippy::cast_precision_loss)]
    Some(millis as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 10, h, m, s).unwrap()
    }

    fn two_hours(h: u32) -> KpiWindow {
        KpiWindow {
            start: t(h, 0, 0),
            end: t(h, 0, 0) + Duration::hours(2),
        }
    }

    fn msg(conv: ConversationId, direction: MessageDirection, at: DateTime<Utc>) -> KpiMessage {
        KpiMessage {
            id: MessageId::generate(),
            conversation_id: conv,
            direction,
            created_at: at,
        }
    }

    #[test]
    fn rates_round_half_up_to_three_decimals() {
        assert_eq!(rate(0, 0), None);
        assert_eq!(rate(0, 3), Some(0.0));
        assert_eq!(rate(1, 3), Some(0.333));
        assert_eq!(rate(2, 3), Some(0.667));
        assert_eq!(rate(1, 16), Some(0.063), "0.0625 rounds up");
        assert_eq!(rate(5, 5), Some(1.0));
    }

    #[test]
    fn medians_interpolate_and_round_half_up() {
        assert_eq!(median_whole_seconds(&mut []), None);
        assert_eq!(median_whole_seconds(&mut [7.0]), Some(7));
        assert_eq!(median_whole_seconds(&mut [100.0, 31.0]), Some(66));
        assert_eq!(median_whole_seconds(&mut [3.0, 1.0, 2.0, 10.0]), Some(3));
        assert_eq!(median_whole_seconds(&mut [1.2, 1.4, 1.0]), Some(1));
    }

    #[test]
    fn waits_open_on_the_first_inbound_after_an_outbound() {
        let tenant = TenantId::generate();
        let a = ConversationId::generate();
        let b = ConversationId::generate();
        use MessageDirection::*;
        let facts = KpiFacts {
            messages: vec![
                // a: in, in, out (one wait of 60 s), out, in (unanswered).
                msg(a, Inbound, t(10, 0, 0)),
                msg(a, Inbound, t(10, 0, 30)),
                msg(a, Outbound, t(10, 1, 0)),
                msg(a, Outbound, t(10, 2, 0)),
                msg(a, Inbound, t(10, 3, 0)),
                // b: opened in the first window, answered in the second.
                msg(b, Inbound, t(11, 59, 0)),
                msg(b, Outbound, t(12, 9, 0)),
            ],
            ..KpiFacts::default()
        };
        let rows =
            compute_kpis(tenant, &[two_hours(10), two_hours(12)], &facts, t(13, 0, 0)).unwrap();
        assert_eq!(rows[0].messages_count, 4);
        // Waits 60 and 600: median 330.
        assert_eq!(rows[0].frt_p50_seconds, Some(330));
        assert_eq!(rows[1].messages_count, 0);
        assert_eq!(rows[1].frt_p50_seconds, None);
    }

    #[test]
    fn windows_must_be_sorted_and_disjoint() {
        let tenant = TenantId::generate();
        let facts = KpiFacts::default();
        let empty = KpiWindow {
            start: t(10, 0, 0),
            end: t(10, 0, 0),
        };
        assert!(compute_kpis(tenant, &[empty], &facts, t(0, 0, 0)).is_err());
        let unsorted = [two_hours(12), two_hours(10)];
        assert!(compute_kpis(tenant, &unsorted, &facts, t(0, 0, 0)).is_err());
        let overlapping = [two_hours(10), two_hours(11)];
        assert!(compute_kpis(tenant, &overlapping, &facts, t(0, 0, 0)).is_err());
        let gap = [two_hours(8), two_hours(12)];
        assert_eq!(
            compute_kpis(tenant, &gap, &facts, t(0, 0, 0))
                .unwrap()
                .len(),
            2
        );
        assert!(
            compute_kpis(tenant, &[], &facts, t(0, 0, 0))
                .unwrap()
                .is_empty()
        );
    }
}
