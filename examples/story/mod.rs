//! The quickstart story, written once: `examples/quickstart.rs` runs it with
//! readable output on the memory store, and `tests/story.rs` runs it silently on
//! memory and on Postgres and asserts the [`StoryOutcome`].
//!
//! A local fake platform (axum on 127.0.0.1, answering the documented Graph and
//! LinkedIn shapes) stands in for Meta and LinkedIn; the REAL connectors are
//! pointed at it with `with_base_url`. The clock is a `ManualClock`.
#![allow(dead_code)] // the quickstart and the test use different parts

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use nexiom::connectors::{
    ConnectorRegistry, FacebookConnector, LinkedInConnector, MetaWebhookVerifier,
    PlatformConnector, WebhookHeaders, WhatsAppConnector,
};
use nexiom::core::*;
use nexiom::scheduler::inbound::{InboundError, InboundPipeline, IngestReport};
use nexiom::scheduler::{
    BatchConfig, CommentPoller, ConnectorGateway, KpiConfig, KpiWorker, MissionOrchestrator,
    PipelineCounts, PipelineRunner, PublishConfig, PublishQueue, Scheduler, SeriesSpec,
    aggregate_kpis, recent_kpis,
};
use nexiom::storage::Store;
use nexiom::triage::TemplateGenerator;
use serde_json::json;

/// Any error of the story.
pub type StoryError = Box<dyn std::error::Error + Send + Sync>;

const APP_SECRET: &str = "story-app-secret";
const PAGE_ID: &str = "104857600000001";
const PHONE_ID: &str = "106540352242922";
const LI_ORG: &str = "urn:li:organization:2414183";

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

// ------------------------------------------------------------ fake platform

#[derive(Default)]
struct FakeState {
    requests: Vec<String>,
    feed_calls: u32,
    seq: u32,
}

/// A local stand-in for graph.facebook.com and api.linkedin.com.
pub struct FakePlatform {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    state: Arc<Mutex<FakeState>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakePlatform {
    /// Starts the fake platform on an ephemeral loopback port.
    pub async fn start() -> Result<FakePlatform, StoryError> {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let shared = Arc::clone(&state);
        let router = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let shared = Arc::clone(&shared);
            async move { answer(&shared, &method, &uri, &body) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(FakePlatform {
            base_url,
            state,
            stop: Some(stop),
        })
    }

    /// Requests received so far (`METHOD /path`).
    pub fn requests(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default()
    }

    /// Stops the server.
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn answer(state: &Mutex<FakeState>, method: &Method, uri: &Uri, _body: &[u8]) -> Response {
    let Ok(mut s) = state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let path = uri.path().to_owned();
    s.requests.push(format!("{method} {path}"));
    s.seq += 1;
    let n = s.seq;
    if *method == Method::GET && path.starts_with("/v25.0/") && path.ends_with("/comments") {
        // One comment under any Facebook post, in the Graph shape.
        let post = path
            .trim_start_matches("/v25.0/")
            .trim_end_matches("/comments");
        return axum::Json(json!({
            "data": [{
                "id": format!("{post}_poll1"),
                "message": "Is the chestnut brioche available this weekend?",
                "created_time": "2026-11-23T09:30:00+0000",
                "from": { "id": "5550001", "name": "Léa" },
                "is_hidden": false
            }],
            "paging": { "cursors": { "before": "b", "after": "a" } }
        }))
        .into_response();
    }
    if *method == Method::GET && path.starts_with("/rest/socialActions/") {
        return axum::Json(json!({
            "elements": [],
            "paging": { "start": 0, "count": 50, "total": 0 }
        }))
        .into_response();
    }
    if *method != Method::POST {
        return graph_error(
            StatusCode::NOT_FOUND,
            803,
            "Unknown path in the fake platform",
        );
    }
    if path.ends_with("/feed") {
        s.feed_calls += 1;
        if s.feed_calls == 1 {
            // Graph's application rate limit: HTTP 400 with code 4.
            return graph_error(
                StatusCode::BAD_REQUEST,
                4,
                "(#4) Application request limit reached",
            );
        }
        return axum::Json(json!({ "id": format!("{PAGE_ID}_{}", 9000 + n) })).into_response();
    }
    if path.ends_with("/messages") {
        return axum::Json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": "33612345678", "wa_id": "33612345678" }],
            "messages": [{ "id": format!("wamid.out.{n}") }],
        }))
        .into_response();
    }
    if path.ends_with("/comments") || path.ends_with("/replies") {
        return axum::Json(json!({ "id": format!("reply_{n}") })).into_response();
    }
    if path == "/rest/posts" {
        return (
            StatusCode::CREATED,
            [("x-restli-id", format!("urn:li:share:{}", 7000 + n))],
        )
            .into_response();
    }
    graph_error(
        StatusCode::NOT_FOUND,
        803,
        "Unknown path in the fake platform",
    )
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Fake"}})),
    )
        .into_response()
}

// ------------------------------------------------------------ webhooks

fn whatsapp_message(wamid: &str, from: &str, name: &str, text: &str, at: DateTime<Utc>) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": PHONE_ID },
            "contacts": [{ "profile": { "name": name }, "wa_id": from }],
            "messages": [{ "from": from, "id": wamid, "timestamp": at.timestamp().to_string(),
                           "type": "text", "text": { "body": text } }]
        }}]}]
    })
    .to_string()
    .into_bytes()
}

fn facebook_comment(post_id: &str, comment_id: &str, text: &str, at: DateTime<Utc>) -> Vec<u8> {
    json!({
        "object": "page",
        "entry": [{ "id": PAGE_ID, "time": at.timestamp(), "changes": [{ "field": "feed", "value": {
            "from": { "id": "24033296592948231", "name": "Ann Example" },
            "message": text, "post_id": post_id, "comment_id": comment_id,
            "created_time": at.timestamp(), "item": "comment", "parent_id": post_id, "verb": "add"
        }}]}]
    })
    .to_string()
    .into_bytes()
}

fn signed(body: &[u8]) -> WebhookHeaders {
    WebhookHeaders::new().with(
        "X-Hub-Signature-256",
        MetaWebhookVerifier::sign(&SecretString::new(APP_SECRET), body),
    )
}

fn add(total: &mut Ingested, r: IngestReport) {
    total.stored += r.stored;
    total.duplicates += r.events - r.stored - r.unknown_account;
    total.unknown_accounts += r.unknown_account;
}

// ------------------------------------------------------------ the story

macro_rules! say {
    ($verbose:expr, $($arg:tt)*) => {
        if $verbose {
            println!($($arg)*);
        }
    };
}

/// Runs the whole story on `store` (empty, migrated). `verbose` prints each
/// step as the quickstart shows it.
pub async fn run_story(store: Arc<dyn Store>, verbose: bool) -> Result<StoryOutcome, StoryError> {
    let v = verbose;
    let mut out = StoryOutcome::default();
    let start = Utc
        .with_ymd_and_hms(2026, 11, 23, 7, 0, 0)
        .single()
        .ok_or("bad start date")?;
    let clock = ManualClock::new(start);
    let dyn_clock: Arc<dyn Clock> = Arc::new(clock.clone());
    let fake = FakePlatform::start().await?;

    // --- Setup: the real connectors, pointed at the fake platform.
    let facebook = FacebookConnector::builder()
        .with_base_url(fake.base_url.as_str())
        .with_app_secret(APP_SECRET)
        .with_clock(Arc::clone(&dyn_clock))
        .build()?;
    let whatsapp = WhatsAppConnector::builder()
        .with_base_url(fake.base_url.as_str())
        .with_app_secret(APP_SECRET)
        .with_clock(Arc::clone(&dyn_clock))
        .build()?;
    let linkedin = LinkedInConnector::builder()
        .with_base_url(fake.base_url.as_str())
        .with_oauth_url(fake.base_url.as_str())
        .with_clock(Arc::clone(&dyn_clock))
        .build()?;
    let facebook: Arc<dyn PlatformConnector> = Arc::new(facebook);
    let whatsapp: Arc<dyn PlatformConnector> = Arc::new(whatsapp);
    let registry = ConnectorRegistry::new()
        .with(Arc::clone(&facebook))
        .with(Arc::clone(&whatsapp))
        .with(Arc::new(linkedin));
    say!(
        v,
        "== Nexiom quickstart: the whole loop on an in-process fake platform"
    );
    say!(
        v,
        "fake platform   {} (Graph + LinkedIn shapes; real connectors pointed at it)",
        fake.base_url
    );

    let tenant = store
        .create_tenant(NewTenant::new("Acme Bakery", clock.now()))
        .await?;
    let tz = tenant.time_zone;
    let channel = |platform: Platform, account: &str, name: &str| NewChannel {
        tenant_id: tenant.id,
        platform,
        external_account_id: account.into(),
        name: name.into(),
        credentials: Credentials {
            access_token: Some(SecretString::new("EAAG-demo-token")),
            ..Credentials::default()
        },
        created_at: clock.now(),
    };
    let page = store
        .create_channel(channel(Platform::Facebook, PAGE_ID, "Acme Bakery page"))
        .await?;
    let phone = store
        .create_channel(channel(
            Platform::WhatsApp,
            PHONE_ID,
            "Acme Bakery WhatsApp",
        ))
        .await?;
    let org = store
        .create_channel(channel(
            Platform::LinkedIn,
            LI_ORG,
            "Acme Bakery on LinkedIn",
        ))
        .await?;
    say!(
        v,
        "tenant          {} ({tz}); channels: Facebook page, WhatsApp number, LinkedIn page",
        tenant.name
    );
    let _ = phone;

    // --- 1. A mission and its content jobs, orchestrated into scheduled posts.
    let today = clock.now().with_timezone(&tz).date_naive();
    let mission = store
        .create_mission(NewMission {
            tenant_id: tenant.id,
            channel_id: page.id,
            name: "Winter menu launch".into(),
            status: MissionStatus::Active,
            objective_priority: ObjectivePriority::High,
            start_date: today,
            end_date: today + Duration::days(6),
            created_at: clock.now(),
        })
        .await?;
    for (i, (phase, text)) in [
        (
            Phase::Intro,
            "Something warm is coming to Acme Bakery this winter...",
        ),
        (
            Phase::Nurture,
            "Behind the scenes: our chestnut brioche, proofed for 18 hours.",
        ),
        (Phase::Closing, "Last days to taste the winter menu!"),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .create_content_job(NewContentJob {
                tenant_id: tenant.id,
                mission_id: Some(mission.id),
                channel_id: page.id,
                phase,
                status: ContentJobStatus::Ready,
                content: Content::text(text),
                source_ref: Some(format!("quickstart:{i}")),
                created_at: clock.now(),
            })
            .await?;
    }
    let orchestrator = MissionOrchestrator::new(Arc::clone(&store), Arc::clone(&dyn_clock));
    let summary = orchestrator
        .orchestrate_global_publishing(tenant.id, page.id, today, 2, tz)
        .await?;
    out.mission_posts_scheduled = summary.scheduled.len();
    say!(
        v,
        "\n[1] mission \"{}\" with 3 ready content jobs (intro, nurture, closing)",
        mission.name
    );
    for item in &summary.scheduled {
        say!(
            v,
            "    orchestrated: {} job scheduled for {} (local {})",
            item.phase,
            item.publish_at,
            item.publish_at.with_timezone(&tz).format("%H:%M")
        );
    }
    let mission_post_id = summary
        .scheduled
        .first()
        .and_then(|s| s.post_id)
        .ok_or("the orchestrator scheduled nothing")?;
    let mission_publish_at = summary
        .scheduled
        .first()
        .map(|s| s.publish_at)
        .ok_or("the orchestrator scheduled nothing")?;

    // --- 2. A recurring post series (LinkedIn, daily at 10:00 local, 3 times).
    let gateway = Arc::new(ConnectorGateway::new(registry.clone()));
    let scheduler = Scheduler::new(Arc::clone(&store), Arc::clone(&dyn_clock));
    let ten = NaiveTime::from_hms_opt(10, 0, 0).ok_or("bad time")?;
    let spec = SeriesSpec::new("FREQ=DAILY;COUNT=3", today.and_time(ten), tz.name());
    let preview = scheduler.preview(&spec, 3)?;
    let series = scheduler
        .schedule_series(
            tenant.id,
            org.id,
            Content::text("Fresh bread of the day, out of the oven at 10."),
            &spec,
        )
        .await?;
    out.series_created = series.recurrence.is_some();
    say!(
        v,
        "\n[2] recurring series on LinkedIn: {} ({})",
        spec.rrule,
        tz.name()
    );
    for at in &preview {
        say!(
            v,
            "    occurrence {}",
            at.with_timezone(&tz).format("%a %d %b %H:%M")
        );
    }

    // --- 3. The clock advances; the worker publishes (the first attempt is throttled).
    let queue = PublishQueue::new(
        Arc::clone(&store),
        gateway,
        Arc::clone(&dyn_clock),
        PublishConfig::for_worker("quickstart"),
    );
    let first_occurrence = preview.first().copied().unwrap_or(mission_publish_at);
    clock.set(mission_publish_at.max(first_occurrence) + Duration::minutes(1));
    say!(
        v,
        "\n[3] clock -> {} (local {})",
        clock.now(),
        clock.now().with_timezone(&tz).format("%H:%M")
    );
    let batch = BatchConfig::default();
    for round in 0..8 {
        let report = queue.run_due(&batch, None).await?;
        if report.claimed > 0 {
            say!(
                v,
                "    publish run {}: claimed {}, published {}, retrying {}, failed {}, series advanced {}",
                round + 1,
                report.claimed,
                report.published,
                report.retrying,
                report.failed,
                report.series_advanced
            );
        }
        let post = store.get_post(tenant.id, mission_post_id).await?;
        if post.status == PostStatus::Published {
            break;
        }
        if let Some(msg) = &post.error_message {
            say!(
                v,
                "    mission post throttled: \"{msg}\"; next attempt {:?}",
                post.next_attempt_at
            );
        }
        clock.advance(Duration::minutes(15));
    }
    // One more run for anything that became due while retrying.
    queue.run_due(&batch, None).await?;
    let posts = store.list_posts(tenant.id, PostFilter::default()).await?;
    out.posts_published = posts
        .iter()
        .filter(|p| p.status == PostStatus::Published)
        .count();
    out.mission_post_attempts = store
        .list_post_runs(tenant.id, mission_post_id)
        .await?
        .len();
    let mission_post = store.get_post(tenant.id, mission_post_id).await?;
    let fb_post_id = mission_post
        .platform_post_id
        .clone()
        .ok_or("the mission post was not published")?;
    for p in &posts {
        say!(
            v,
            "    post {:<9} {:<40} {}",
            p.status.as_str(),
            p.content.text.chars().take(40).collect::<String>(),
            p.platform_post_id
                .as_deref()
                .unwrap_or(if p.recurrence.is_some() {
                    "(series template)"
                } else {
                    ""
                })
        );
    }
    say!(
        v,
        "    the mission post took {} attempts (throttled once, then published as {fb_post_id})",
        out.mission_post_attempts
    );

    // --- 5. Signed webhooks arrive (one twice, one with a bad signature).
    let pipeline = InboundPipeline::new(
        Arc::clone(&store),
        Arc::clone(&dyn_clock),
        Arc::new(TemplateGenerator::new().with_default_template(
            "Hi {name}! Thanks for your message: yes, we deliver every day from 8:00 to 18:00.",
        )),
    )
    .with_connectors(registry.clone());
    store
        .create_rule(NewAiRule {
            tenant_id: tenant.id,
            rule_type: RuleType::Escalate,
            name: "complaints".into(),
            keywords: vec!["refund".into(), "damaged".into()],
            patterns: vec![],
            confidence_min: None,
            enabled: true,
            priority: 10,
            at: clock.now(),
        })
        .await?;
    store
        .create_rule(NewAiRule {
            tenant_id: tenant.id,
            rule_type: RuleType::Deny,
            name: "thanks".into(),
            keywords: vec!["thanks".into()],
            patterns: vec![],
            confidence_min: None,
            enabled: true,
            priority: 5,
            at: clock.now(),
        })
        .await?;
    store
        .set_ai_control(tenant.id, true, Some("ops@acme".into()), clock.now())
        .await?;
    say!(
        v,
        "\n[4] rules: escalate on refund/damaged, ignore thanks; AI control ON"
    );

    // --- 5. Comments appear on the platform and are polled.
    clock.advance(Duration::minutes(10));
    let poller = CommentPoller::new(Arc::clone(&store), Arc::clone(&dyn_clock), registry.clone())
        .with_inbound(pipeline.clone());
    let polled = poller.poll_due(50, None).await?;
    out.comment_polling = true;
    out.comments_polled = polled.comments_stored;
    out.poll_auto_replied = polled.auto_replied;
    say!(
        v,
        "\n[5] comment polling at {} (local): {} posts polled, {} pages, {} new comment(s); follow-up triage {}, auto-replies {}",
        clock.now().with_timezone(&tz).format("%H:%M"),
        polled.posts_polled,
        polled.pages_read,
        polled.comments_stored,
        polled.triaged,
        polled.auto_replied
    );
    for c in store.list_comments(tenant.id, mission_post_id, 10).await? {
        say!(
            v,
            "    polled comment \"{}\" -> {}",
            c.text,
            c.triage.map_or("untriaged".to_owned(), |t| t.to_string())
        );
    }

    say!(v, "\n[6] signed webhooks arrive");
    let now = clock.now();
    let since = now - Duration::hours(1);
    let deliveries: Vec<(&str, &Arc<dyn PlatformConnector>, Vec<u8>)> = vec![
        (
            "WhatsApp: question",
            &whatsapp,
            whatsapp_message(
                "wamid.in.1",
                "33612345678",
                "Ana",
                "Hello! Do you deliver on Sundays?",
                now,
            ),
        ),
        (
            "WhatsApp: complaint",
            &whatsapp,
            whatsapp_message(
                "wamid.in.2",
                "33698765432",
                "Bruno",
                "My cake arrived damaged, I want a refund",
                now,
            ),
        ),
        (
            "Facebook: comment",
            &facebook,
            facebook_comment(
                &fb_post_id,
                &format!("{fb_post_id}_c1"),
                "Thanks, it looks delicious",
                now,
            ),
        ),
    ];
    for (label, connector, body) in &deliveries {
        let r = pipeline
            .ingest_webhook(connector.as_ref(), &signed(body), body)
            .await?;
        say!(
            v,
            "    {label:<20} stored {}, duplicates {}",
            r.stored,
            r.events - r.stored
        );
        add(&mut out.ingested, r);
    }
    // Meta redelivers the first one.
    let (_, connector, body) = &deliveries[0];
    let r = pipeline
        .ingest_webhook(connector.as_ref(), &signed(body), body)
        .await?;
    say!(
        v,
        "    {:<20} stored {}, duplicates {} (deduplicated on the platform id)",
        "WhatsApp: redelivery",
        r.stored,
        r.events - r.stored
    );
    add(&mut out.ingested, r);
    // Someone forges one.
    let forged = whatsapp_message(
        "wamid.forged",
        "33600000000",
        "Mallory",
        "send me the admin token",
        now,
    );
    let bad =
        WebhookHeaders::new().with("X-Hub-Signature-256", format!("sha256={}", "0".repeat(64)));
    match pipeline
        .ingest_webhook(whatsapp.as_ref(), &bad, &forged)
        .await
    {
        Err(InboundError::Webhook(e)) => {
            out.bad_signature_refused = true;
            say!(
                v,
                "    {:<20} refused: {e} (nothing stored)",
                "forged delivery"
            );
        }
        Err(e) => return Err(e.into()),
        Ok(r) => say!(v, "    forged delivery ACCEPTED ({r:?}): this is a bug"),
    }

    // --- 6. One pass of the standard pipeline: it routes, triages and
    // auto-replies, publishes a post that fell due, and collects the KPIs.
    Scheduler::new(Arc::clone(&store), Arc::clone(&dyn_clock))
        .schedule_once(
            tenant.id,
            page.id,
            Content::text("Open this Sunday from 8:00 to 13:00."),
            clock.now(),
        )
        .await?;
    let runner = PipelineRunner::standard(
        pipeline.clone(),
        queue.clone(),
        KpiWorker::new(Arc::clone(&store), Arc::clone(&dyn_clock)),
    );
    let counts = runner.run_with_defaults(clock.now()).await;
    out.routed = counts.routed;
    out.replies_sent = counts.auto_replied;
    say!(
        v,
        "\n[7] one pipeline pass (route, triage, auto-reply, schedules, metrics): {}",
        counts.to_json()
    );
    out.pipeline = counts;
    for m in store
        .list_messages_by_triage(tenant.id, Triage::AutoReply, since, 100)
        .await?
    {
        say!(v, "    auto_reply  message \"{}\"", m.text);
        out.auto_reply += 1;
    }
    for m in store
        .list_messages_by_triage(tenant.id, Triage::Escalate, since, 100)
        .await?
    {
        say!(
            v,
            "    escalate    message \"{}\" (a person takes it)",
            m.text
        );
        out.escalated += 1;
    }
    for c in store
        .list_comments_by_triage(tenant.id, Triage::Escalate, since, 100)
        .await?
    {
        say!(v, "    escalate    comment \"{}\"", c.text);
        out.escalated += 1;
    }
    for c in store
        .list_comments_by_triage(tenant.id, Triage::Ignore, since, 100)
        .await?
    {
        say!(v, "    ignore      comment \"{}\"", c.text);
        out.ignored += 1;
    }
    for m in store
        .list_messages_by_triage(tenant.id, Triage::Ignore, since, 100)
        .await?
    {
        say!(v, "    ignore      message \"{}\"", m.text);
        out.ignored += 1;
    }

    // --- 7. AI control OFF: nothing more is sent.
    clock.advance(Duration::minutes(5));
    store
        .set_ai_control(tenant.id, false, Some("ops@acme".into()), clock.now())
        .await?;
    let before = fake.requests().len();
    let now = clock.now();
    let body = whatsapp_message(
        "wamid.in.3",
        "33612345678",
        "Ana",
        "And do you have gluten-free bread?",
        now,
    );
    let r = pipeline
        .ingest_webhook(whatsapp.as_ref(), &signed(&body), &body)
        .await?;
    add(&mut out.ingested, r);
    pipeline.route_unrouted_events(None, 100).await?;
    pipeline.triage_new_items(100).await?;
    let replies = pipeline.auto_reply_recent_inbound(since, 100).await?;
    out.replies_after_off = replies.sent;
    out.triage_after_off = store
        .find_message_by_provider_id(tenant.id, phone.id, "wamid.in.3")
        .await?
        .and_then(|m| m.triage);
    out.platform_requests_after_off = fake.requests().len() - before;
    say!(
        v,
        "\n[8] AI control OFF; a new question arrives: triaged {}, replies sent {}, platform calls {}",
        out.triage_after_off.map_or("-", |t| t.as_str()),
        replies.sent,
        out.platform_requests_after_off
    );

    // --- 8. KPI windows.
    let config = KpiConfig::default();
    let kpi_run = aggregate_kpis(store.as_ref(), &clock, &config).await?;
    say!(
        v,
        "\n[9] KPIs: {} rows upserted; windows with activity (local time):",
        kpi_run.rows_upserted
    );
    for k in recent_kpis(store.as_ref(), tenant.id, clock.now(), &config).await? {
        let Some(row) = &k.current else { continue };
        if row.messages_count + row.comments_count + row.posts_active == 0 {
            continue;
        }
        out.kpi_windows_with_activity += 1;
        out.kpi_messages += row.messages_count;
        say!(
            v,
            "    {} {}-{}  messages {}  comments {}  escalated {}  ignored {}  auto-reply rate {}  posts active {}",
            k.window.date,
            k.window.window.start.with_timezone(&tz).format("%H:%M"),
            k.window.window.end.with_timezone(&tz).format("%H:%M"),
            row.messages_count,
            row.comments_count,
            row.escalate_count,
            row.ignored_count,
            row.auto_reply_rate
                .map_or("-".into(), |r| format!("{:.0}%", r * 100.0)),
            row.posts_active
        );
    }
    say!(v, "\nplatform calls made: {}", fake.requests().join(", "));
    fake.stop();
    Ok(out)
}
