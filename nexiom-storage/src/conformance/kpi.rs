//! Conformance tests of the KPI aggregation (`KpiStore::recompute_kpis`), with
//! expectations computed by hand from the rules in `nexiom_core::kpi`.
//!
//! Both daylight-saving days of 2026 in Europe/Paris (the default time zone)
//! are covered: on 2026-03-29 the 02:00 window lasts one hour
//! (01:00–02:00 UTC), on 2026-10-25 three hours (00:00–03:00 UTC). Events sit
//! at the instants just before and after each boundary of those windows.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::*;
use serde_json::json;

use super::fixtures::{World, world};
use crate::{StorageError, Store};

fn utc(m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, m, d, h, min, s).unwrap()
}

/// Windows from consecutive boundaries.
fn windows_from(boundaries: &[DateTime<Utc>]) -> Vec<KpiWindow> {
    boundaries
        .windows(2)
        .map(|p| KpiWindow {
            start: p[0],
            end: p[1],
        })
        .collect()
}

/// The twelve windows of 2026-03-29 in Europe/Paris (UTC+1 until 01:00 UTC,
/// then UTC+2; local 02:00 does not exist and resolves to 03:00 CEST).
fn spring_forward_day() -> Vec<KpiWindow> {
    let mut b = vec![utc(3, 28, 23, 0, 0), utc(3, 29, 1, 0, 0)];
    b.extend((1..=11).map(|i| utc(3, 29, 2 * i, 0, 0)));
    windows_from(&b)
}

/// The twelve windows of 2026-10-25 in Europe/Paris (UTC+2 until 01:00 UTC,
/// then UTC+1; local 02:00 happens twice and resolves to the first, 00:00 UTC).
fn fall_back_day() -> Vec<KpiWindow> {
    let mut b = vec![utc(10, 24, 22, 0, 0), utc(10, 25, 0, 0, 0)];
    b.extend((0..=10).map(|i| utc(10, 25, 3 + 2 * i, 0, 0)));
    windows_from(&b)
}

/// Writes the facts of a scenario.
struct Facts<'a> {
    s: &'a dyn Store,
    w: &'a World,
    handles: u32,
    comments: u32,
    /// When decisions are taken: far from the windows they count in.
    decided_at: DateTime<Utc>,
}

impl<'a> Facts<'a> {
    fn new(s: &'a dyn Store, w: &'a World, decided_at: DateTime<Utc>) -> Self {
        Facts {
            s,
            w,
            handles: 0,
            comments: 0,
            decided_at,
        }
    }

    async fn conversation(&mut self) -> ConversationId {
        self.handles += 1;
        let cc = self
            .s
            .insert_contact_channel(NewContactChannel {
                tenant_id: self.w.tenant.id,
                platform: self.w.channel.platform.clone(),
                external_handle: format!("3360000{:04}", self.handles),
                display_name: None,
                created_at: utc(1, 1, 0, 0, 0),
            })
            .await
            .unwrap()
            .record;
        self.s
            .insert_open_conversation(
                self.w.tenant.id,
                cc.contact_id,
                self.w.channel.id,
                utc(1, 1, 0, 0, 0),
            )
            .await
            .unwrap()
            .record
            .id
    }

    async fn message(
        &self,
        conv: ConversationId,
        direction: MessageDirection,
        at: DateTime<Utc>,
        triage: Option<Triage>,
    ) -> MessageId {
        let m = self
            .s
            .insert_message(NewMessage {
                tenant_id: self.w.tenant.id,
                conversation_id: conv,
                direction,
                text: format!("{direction} at {at}"),
                has_media: false,
                provider_message_id: None,
                in_reply_to: None,
                delivery_status: None,
                created_at: at,
                stored_at: at,
            })
            .await
            .unwrap()
            .record;
        if let Some(triage) = triage {
            self.decide(DecisionSubject::Message(m.id), triage).await;
        }
        m.id
    }

    async fn inbound(&self, conv: ConversationId, at: DateTime<Utc>, triage: Option<Triage>) {
        self.message(conv, MessageDirection::Inbound, at, triage)
            .await;
    }

    async fn outbound(&self, conv: ConversationId, at: DateTime<Utc>) {
        self.message(conv, MessageDirection::Outbound, at, None)
            .await;
    }

    async fn post(&self) -> PostId {
        self.s
            .insert_post(NewScheduledPost::one_off(
                self.w.tenant.id,
                self.w.channel.id,
                Content::text("post"),
                utc(1, 1, 0, 0, 0),
                utc(1, 1, 0, 0, 0),
            ))
            .await
            .unwrap()
            .record
            .id
    }

    async fn comment(&mut self, post: PostId, at: DateTime<Utc>, triage: Option<Triage>) {
        self.comments += 1;
        let c = self
            .s
            .insert_comment(NewComment {
                tenant_id: self.w.tenant.id,
                post_id: post,
                platform_comment_id: format!("c-{}", self.comments),
                parent_platform_comment_id: None,
                author_id: None,
                author_name: None,
                text: "nice".into(),
                created_at: at,
                stored_at: at,
                hidden: false,
            })
            .await
            .unwrap()
            .record;
        if let Some(triage) = triage {
            self.decide(DecisionSubject::Comment(c.id), triage).await;
        }
    }

    async fn decide(&self, subject: DecisionSubject, triage: Triage) {
        self.s
            .insert_decision(NewAiDecision {
                tenant_id: self.w.tenant.id,
                subject,
                triage,
                confidence: 0.9,
                rule_id: None,
                reason: "test".into(),
                snapshot: json!({}),
                created_at: self.decided_at,
            })
            .await
            .unwrap();
    }
}

/// The expected row of `window` (metrics in the order of `Kpi2h`).
#[allow(clippy::too_many_arguments)]
fn row(
    tenant: TenantId,
    window: KpiWindow,
    messages: i64,
    comments: i64,
    frt: Option<i64>,
    rate: Option<f64>,
    escalated: i64,
    ignored: i64,
    posts: i64,
    computed_at: DateTime<Utc>,
) -> Kpi2h {
    Kpi2h {
        tenant_id: tenant,
        window_start: window.start,
        window_end: window.end,
        messages_count: messages,
        comments_count: comments,
        frt_p50_seconds: frt,
        auto_reply_rate: rate,
        escalate_count: escalated,
        ignored_count: ignored,
        posts_active: posts,
        computed_at,
    }
}

fn empty(tenant: TenantId, window: KpiWindow, computed_at: DateTime<Utc>) -> Kpi2h {
    row(tenant, window, 0, 0, None, None, 0, 0, 0, computed_at)
}

/// Another tenant's data in the same windows, which must never count.
async fn noise(s: &dyn Store, at: DateTime<Utc>) {
    let other = world(s, "Other", Platform::WhatsApp, "pn-other").await;
    let mut f = Facts::new(s, &other, at);
    let conv = f.conversation().await;
    f.inbound(conv, at, Some(Triage::AutoReply)).await;
    f.outbound(conv, at + Duration::seconds(5)).await;
    let post = f.post().await;
    f.comment(post, at, Some(Triage::Escalate)).await;
}

pub async fn kpis_on_the_spring_forward_day(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let t = w.tenant.id;
    let day = spring_forward_day();
    assert_eq!(day[1].end - day[1].start, Duration::hours(1));
    let mut f = Facts::new(s, &w, utc(3, 29, 10, 0, 0));
    use Triage::*;

    // A: two waits. 00:59:59 opens one (answered 31 s later, counted in W0);
    // 01:00:00 follows an inbound, so it opens none; 01:59:59 opens the second
    // (answered 1 s later, at the next boundary, counted in W1).
    let a = f.conversation().await;
    f.inbound(a, utc(3, 29, 0, 59, 59), Some(AutoReply)).await;
    f.inbound(a, utc(3, 29, 1, 0, 0), Some(AutoReply)).await;
    f.outbound(a, utc(3, 29, 1, 0, 30)).await;
    f.inbound(a, utc(3, 29, 1, 59, 59), Some(AutoReply)).await;
    f.outbound(a, utc(3, 29, 2, 0, 0)).await;
    // B: an unanswered wait in W1.
    let b = f.conversation().await;
    f.inbound(b, utc(3, 29, 1, 30, 0), Some(Escalate)).await;
    // C: inbound at the W1/W2 boundary, answered after 600 s; no decision.
    let c = f.conversation().await;
    f.inbound(c, utc(3, 29, 2, 0, 0), None).await;
    f.outbound(c, utc(3, 29, 2, 10, 0)).await;
    // D: starts with an outbound (no wait), then a 100 s wait in W0.
    let d = f.conversation().await;
    f.outbound(d, utc(3, 29, 0, 10, 0)).await;
    f.inbound(d, utc(3, 29, 0, 20, 0), Some(Ignore)).await;
    f.outbound(d, utc(3, 29, 0, 21, 40)).await;
    // Comments on two posts around both boundaries of W1.
    let p1 = f.post().await;
    let p2 = f.post().await;
    f.comment(p1, utc(3, 29, 0, 59, 59), Some(Escalate)).await;
    f.comment(p1, utc(3, 29, 1, 0, 0), Some(AutoReply)).await;
    f.comment(p2, utc(3, 29, 1, 0, 1), None).await;
    f.comment(p2, utc(3, 29, 1, 59, 59), None).await;
    f.comment(p1, utc(3, 29, 2, 0, 0), None).await;
    noise(s, utc(3, 29, 1, 30, 0)).await;

    let at = utc(3, 30, 0, 0, 0);
    let got = s.recompute_kpis(t, &day, at).await.unwrap();
    let mut expected: Vec<Kpi2h> = day.iter().map(|w| empty(t, *w, at)).collect();
    // W0: waits 31 and 100, median 65.5, rounded up; decisions auto, ignore,
    // escalate: 1/3.
    expected[0] = row(t, day[0], 2, 1, Some(66), Some(0.333), 1, 1, 1, at);
    // W1 (one hour): the 1 s wait only; 3 auto of 4 decisions.
    expected[1] = row(t, day[1], 3, 3, Some(1), Some(0.75), 1, 0, 2, at);
    // W2: no decisions, so no rate.
    expected[2] = row(t, day[2], 1, 1, Some(600), None, 0, 0, 1, at);
    assert_eq!(got, expected);
    let mut newest_first = expected.clone();
    newest_first.reverse();
    let stored = s.list_kpis(t, day[0].start, day[11].end).await.unwrap();
    assert_eq!(stored, newest_first);

    // Twice: the same rows.
    assert_eq!(s.recompute_kpis(t, &day, at).await.unwrap(), expected);
    assert_eq!(
        s.list_kpis(t, day[0].start, day[11].end).await.unwrap(),
        newest_first
    );

    // Only W1 and W2: 01:00:00 still follows the inbound of 00:59:59, which
    // lies before the first window, so it still opens no wait.
    let later = at + Duration::minutes(30);
    let partial = s.recompute_kpis(t, &day[1..3], later).await.unwrap();
    let mut w1 = expected[1].clone();
    w1.computed_at = later;
    let mut w2 = expected[2].clone();
    w2.computed_at = later;
    assert_eq!(partial, vec![w1, w2]);
    let stored = s.list_kpis(t, day[0].start, day[3].start).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[2], expected[0], "W0 left as it was");
}

pub async fn kpis_on_the_fall_back_day(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let t = w.tenant.id;
    let day = fall_back_day();
    assert_eq!(day[1].end - day[1].start, Duration::hours(3));
    let mut f = Facts::new(s, &w, utc(10, 26, 12, 0, 0));
    use Triage::*;

    // E: opened at the last second of W0, answered at the W1/W2 boundary: the
    // 10 801 s wait counts in W0.
    let e = f.conversation().await;
    f.inbound(e, utc(10, 24, 23, 59, 59), Some(AutoReply)).await;
    f.outbound(e, utc(10, 25, 3, 0, 0)).await;
    // F: opened at the first instant of W1, a second inbound, answered at the
    // last second of W1: one wait of 10 799 s.
    let fc = f.conversation().await;
    f.inbound(fc, utc(10, 25, 0, 0, 0), Some(Ignore)).await;
    f.inbound(fc, utc(10, 25, 2, 59, 58), None).await;
    f.outbound(fc, utc(10, 25, 2, 59, 59)).await;
    // G: 02:30 summer time (01:30 UTC), answered in 60 s.
    let g = f.conversation().await;
    f.inbound(g, utc(10, 25, 1, 30, 0), Some(Ignore)).await;
    f.outbound(g, utc(10, 25, 1, 31, 0)).await;
    // H: 02:30 winter time (02:30 UTC), never answered.
    let h = f.conversation().await;
    f.inbound(h, utc(10, 25, 2, 30, 0), Some(Ignore)).await;
    // I: two waits in W2 (5 s and 20 s); J: unanswered.
    let i = f.conversation().await;
    f.inbound(i, utc(10, 25, 3, 0, 0), Some(AutoReply)).await;
    f.outbound(i, utc(10, 25, 3, 0, 5)).await;
    f.inbound(i, utc(10, 25, 4, 0, 0), Some(AutoReply)).await;
    f.outbound(i, utc(10, 25, 4, 0, 20)).await;
    let j = f.conversation().await;
    f.inbound(j, utc(10, 25, 4, 30, 0), Some(Escalate)).await;
    let p1 = f.post().await;
    let p2 = f.post().await;
    let p3 = f.post().await;
    f.comment(p1, utc(10, 24, 23, 59, 59), None).await;
    f.comment(p1, utc(10, 25, 0, 0, 0), None).await;
    f.comment(p2, utc(10, 25, 2, 59, 59), None).await;
    f.comment(p3, utc(10, 25, 3, 0, 0), None).await;
    noise(s, utc(10, 25, 1, 0, 0)).await;

    let at = utc(10, 26, 0, 0, 0);
    let got = s.recompute_kpis(t, &day, at).await.unwrap();
    let mut expected: Vec<Kpi2h> = day.iter().map(|w| empty(t, *w, at)).collect();
    expected[0] = row(t, day[0], 1, 1, Some(10_801), Some(1.0), 0, 0, 1, at);
    // W1 (three hours): waits 60 and 10 799, median 5429.5 → 5430; three
    // IGNORE decisions: the rate is 0, not null.
    expected[1] = row(t, day[1], 4, 2, Some(5_430), Some(0.0), 0, 3, 2, at);
    // W2: waits 5 and 20 → 12.5 → 13; 2 auto of 3 decisions.
    expected[2] = row(t, day[2], 3, 1, Some(13), Some(0.667), 1, 0, 1, at);
    assert_eq!(got, expected);

    // Twice, later: the same metrics, only computed_at moves.
    let later = at + Duration::minutes(30);
    let again = s.recompute_kpis(t, &day, later).await.unwrap();
    let restamped: Vec<Kpi2h> = expected
        .iter()
        .map(|r| Kpi2h {
            computed_at: later,
            ..r.clone()
        })
        .collect();
    assert_eq!(again, restamped);

    // New data replaces the stored row on (tenant, window_start).
    f.inbound(h, utc(10, 25, 2, 45, 0), None).await;
    f.outbound(h, utc(10, 25, 2, 50, 0)).await;
    let updated = s.recompute_kpis(t, &day[1..2], later).await.unwrap();
    // H's wait opened at 02:30 is now answered after 1 200 s: waits 60, 1 200,
    // 10 799 → 1 200.
    assert_eq!(updated[0].messages_count, 5);
    assert_eq!(updated[0].frt_p50_seconds, Some(1_200));
    let stored = s.list_kpis(t, day[1].start, day[2].start).await.unwrap();
    assert_eq!(stored, updated);
}

pub async fn kpi_recompute_refuses_bad_windows(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let t = w.tenant.id;
    let day = spring_forward_day();
    let at = utc(3, 30, 0, 0, 0);
    let invalid = |r: Result<Vec<Kpi2h>, StorageError>| {
        assert!(
            matches!(
                r,
                Err(StorageError::Invalid(CoreError::Invalid {
                    field: "windows",
                    ..
                }))
            ),
            "expected Invalid(windows), got {r:?}"
        );
    };
    invalid(s.recompute_kpis(t, &[day[2], day[1]], at).await);
    let overlapping = KpiWindow {
        start: day[1].start,
        end: day[2].end,
    };
    invalid(s.recompute_kpis(t, &[overlapping, day[2]], at).await);
    let hollow = KpiWindow {
        start: day[3].start,
        end: day[3].start,
    };
    invalid(s.recompute_kpis(t, &[day[0], hollow], at).await);
    assert!(
        s.list_kpis(t, day[0].start, day[11].end)
            .await
            .unwrap()
            .is_empty(),
        "a refused call writes nothing"
    );
    assert!(s.recompute_kpis(t, &[], at).await.unwrap().is_empty());
    // Gaps between windows are fine.
    let gapped = s.recompute_kpis(t, &[day[0], day[5]], at).await.unwrap();
    assert_eq!(gapped, vec![empty(t, day[0], at), empty(t, day[5], at)]);
    // A tenant named twice: computed once.
    let twice = s
        .recompute_kpis_for(&[t, t], &[day[0], day[5]], at)
        .await
        .unwrap();
    assert_eq!(twice, gapped);

    let unknown = TenantId::generate();
    for windows in [&day[..], &[]] {
        match s.recompute_kpis(unknown, windows, at).await {
            Err(StorageError::UnknownReference {
                entity: "tenant", ..
            }) => {}
            other => panic!("expected UnknownReference(tenant), got {other:?}"),
        }
    }
}
