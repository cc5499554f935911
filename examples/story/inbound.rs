//! Inbound: [4] triage rules and AI control ON, [5] a comment appears on the
//! platform and is polled, triaged and answered, [6] signed webhooks arrive
//! (one twice, one forged).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom::connectors::{PlatformConnector, WebhookHeaders};
use nexiom::core::*;
use nexiom::scheduler::CommentPoller;
use nexiom::scheduler::inbound::{InboundError, InboundPipeline};
use nexiom::triage::TemplateGenerator;

use super::outcome::{StoryError, StoryOutcome, add};
use super::publishing::Published;
use super::setup::Story;
use super::webhooks::{facebook_comment, signed, whatsapp_message};

/// What the inbound steps leave for the later ones.
pub(super) struct Inbound {
    /// The pipeline, with the connectors.
    pub pipeline: InboundPipeline,
    /// An hour before the webhooks arrived: where the later reads start.
    pub since: DateTime<Utc>,
}

/// Steps 4 to 6.
pub(super) async fn receive(
    s: &Story,
    published: &Published,
    out: &mut StoryOutcome,
) -> Result<Inbound, StoryError> {
    let v = s.verbose;
    let (store, clock, dyn_clock, tenant, tz) = (&s.store, &s.clock, &s.dyn_clock, &s.tenant, s.tz);
    let (registry, facebook, whatsapp) = (&s.registry, &s.facebook, &s.whatsapp);
    let Published {
        mission_post_id,
        fb_post_id,
        ..
    } = published;

    // --- 4. The inbound pipeline, the triage rules, AI control ON.
    let pipeline = InboundPipeline::new(
        Arc::clone(store),
        Arc::clone(dyn_clock),
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
    let poller = CommentPoller::new(Arc::clone(store), Arc::clone(dyn_clock), registry.clone())
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
    for c in store.list_comments(tenant.id, *mission_post_id, 10).await? {
        say!(
            v,
            "    polled comment \"{}\" -> {}",
            c.text,
            c.triage.map_or("untriaged".to_owned(), |t| t.to_string())
        );
    }

    // --- 6. Signed webhooks arrive (one twice, one with a bad signature).
    say!(v, "\n[6] signed webhooks arrive");
    let now = clock.now();
    let since = now - Duration::hours(1);
    let deliveries: Vec<(&str, &Arc<dyn PlatformConnector>, Vec<u8>)> = vec![
        (
            "WhatsApp: question",
            whatsapp,
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
            whatsapp,
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
            facebook,
            facebook_comment(
                fb_post_id,
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
    Ok(Inbound { pipeline, since })
}
