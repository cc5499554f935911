//! Quickstart: the in-memory store, nothing to install.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Creates a tenant with a Facebook page, schedules two posts, lets the (manual)
//! clock reach the first one, claims it the way a worker does, and lists the posts
//! back with their status. Later capabilities grow this story.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use nexiom::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0)
            .single()
            .ok_or("bad date")?,
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());

    let tenant = store
        .create_tenant(NewTenant::new("Acme Bakery", clock.now()))
        .await?;
    println!(
        "tenant     {} ({}, {})",
        tenant.name, tenant.id, tenant.time_zone
    );

    let page = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::Facebook,
            external_account_id: "104857600000001".into(),
            name: "Acme Bakery page".into(),
            credentials: Credentials {
                access_token: Some(SecretString::new("EAAG-page-token")),
                ..Credentials::default()
            },
            created_at: clock.now(),
        })
        .await?;
    println!(
        "channel    {} {} {}",
        page.platform, page.external_account_id, page.name
    );
    println!(
        "           credentials print as {:?}",
        page.credentials.access_token
    );

    let at_nine = clock.now() + Duration::hours(1);
    let at_noon = clock.now() + Duration::hours(4);
    for (text, at) in [
        ("Fresh croissants at 9!", at_nine),
        ("Lunch menu is up", at_noon),
    ] {
        let post = store
            .insert_post(NewScheduledPost::one_off(
                tenant.id,
                page.id,
                Content::text(text),
                at,
                clock.now(),
            ))
            .await?
            .record;
        println!("scheduled  {:?} for {}", post.content.text, post.publish_at);
    }

    clock.advance(Duration::hours(1));
    let claimed = store
        .claim_due_posts(clock.now(), 10, "quickstart-worker", Duration::minutes(5))
        .await?;
    println!(
        "at {} a worker claims {} due post(s)",
        clock.now(),
        claimed.len()
    );

    for post in store.list_posts(tenant.id, PostFilter::default()).await? {
        println!(
            "post       {:<24} {:<10} lease={}",
            format!("{:?}", post.content.text),
            post.status,
            post.lease_owner.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}
