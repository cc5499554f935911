//! Publishing: [1] a mission's content jobs orchestrated into scheduled posts,
//! [2] a recurring LinkedIn series, [3] the clock advances and the worker
//! publishes (the first Facebook attempt is throttled, then retried).

use std::sync::Arc;

use chrono::{Duration, NaiveTime};
use nexiom::core::*;
use nexiom::scheduler::{
    BatchConfig, ConnectorGateway, MissionOrchestrator, PublishConfig, PublishQueue, Scheduler,
    SeriesSpec,
};

use super::outcome::{StoryError, StoryOutcome};
use super::setup::Story;

/// What publishing leaves for the later steps.
pub(super) struct Published {
    /// The queue the pipeline pass runs again.
    pub queue: PublishQueue,
    /// The mission's post, whose comments are polled.
    pub mission_post_id: PostId,
    /// Its id on Facebook, where a webhook comment arrives.
    pub fb_post_id: String,
}

/// Steps 1 to 3.
pub(super) async fn publish(s: &Story, out: &mut StoryOutcome) -> Result<Published, StoryError> {
    let v = s.verbose;
    let (store, clock, dyn_clock, tenant, tz) = (&s.store, &s.clock, &s.dyn_clock, &s.tenant, s.tz);
    let (page, org, registry) = (&s.page, &s.org, &s.registry);

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
    let orchestrator = MissionOrchestrator::new(Arc::clone(store), Arc::clone(dyn_clock));
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
    let scheduler = Scheduler::new(Arc::clone(store), Arc::clone(dyn_clock));
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
        Arc::clone(store),
        gateway,
        Arc::clone(dyn_clock),
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
    Ok(Published {
        queue,
        mission_post_id,
        fb_post_id,
    })
}
