//! [7] One pass of the standard pipeline (route, triage, auto-reply,
//! schedules, metrics) and the decisions it made; [8] AI control OFF: a new
//! question arrives and nothing is sent.

use std::sync::Arc;

use chrono::Duration;
use nexiom::core::*;
use nexiom::scheduler::{KpiWorker, PipelineRunner, Scheduler};

use super::inbound::Inbound;
use super::outcome::{StoryError, StoryOutcome, add};
use super::publishing::Published;
use super::setup::Story;
use super::webhooks::{signed, whatsapp_message};

/// Step 7.
pub(super) async fn pipeline_pass(
    s: &Story,
    published: &Published,
    inbound: &Inbound,
    out: &mut StoryOutcome,
) -> Result<(), StoryError> {
    let v = s.verbose;
    let (store, clock, dyn_clock, tenant, page) =
        (&s.store, &s.clock, &s.dyn_clock, &s.tenant, &s.page);
    let (pipeline, since, queue) = (&inbound.pipeline, inbound.since, &published.queue);

    // --- 7. One pass of the standard pipeline: it routes, triages and
    // auto-replies, publishes a post that fell due, and collects the KPIs.
    Scheduler::new(Arc::clone(store), Arc::clone(dyn_clock))
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
        KpiWorker::new(Arc::clone(store), Arc::clone(dyn_clock)),
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
    Ok(())
}

/// Step 8.
pub(super) async fn ai_control_off(
    s: &Story,
    inbound: &Inbound,
    out: &mut StoryOutcome,
) -> Result<(), StoryError> {
    let v = s.verbose;
    let (store, clock, tenant, phone) = (&s.store, &s.clock, &s.tenant, &s.phone);
    let (fake, whatsapp) = (&s.fake, &s.whatsapp);
    let (pipeline, since) = (&inbound.pipeline, inbound.since);

    // --- 8. AI control OFF: nothing more is sent.
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
    Ok(())
}
