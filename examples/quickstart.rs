//! Quickstart: the whole Nexiom loop in a few seconds, nothing to install.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! On the in-memory store, against a local fake platform (an axum server on
//! 127.0.0.1 answering the documented Graph and LinkedIn shapes) with the REAL
//! connectors pointed at it and a manual clock: a mission's content jobs are
//! orchestrated into scheduled posts; a recurring LinkedIn series is created;
//! the clock advances and the posts are published (the first Facebook attempt
//! is throttled and retried); a comment appears on the platform and is polled,
//! triaged and answered; signed webhooks arrive (one twice, one forged)
//! and are routed; messages and comments are triaged (ignored, escalated,
//! auto-replied); AI control is switched off and nothing more is sent; the KPI
//! windows are printed. The same story runs as a test on memory and Postgres
//! (`tests/story.rs`).

#[path = "story/mod.rs"]
mod story;

use std::sync::Arc;

use nexiom::storage::{MemoryStore, Store};

#[tokio::main]
async fn main() -> Result<(), story::StoryError> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let outcome = story::run_story(store, true).await?;
    println!(
        "\ndone: {} posts published, {} events routed, {} auto-replies sent, {} after AI control went off",
        outcome.posts_published, outcome.routed, outcome.replies_sent, outcome.replies_after_off
    );
    Ok(())
}
