//! [`run_story`]: the steps in order.

use std::sync::Arc;

use nexiom::storage::Store;

use super::outcome::{StoryError, StoryOutcome};
use super::setup::Story;
use super::{inbound, kpis, pipeline, publishing};

/// Runs the whole story on `store` (empty, migrated). `verbose` prints each
/// step as the quickstart shows it.
pub async fn run_story(store: Arc<dyn Store>, verbose: bool) -> Result<StoryOutcome, StoryError> {
    let v = verbose;
    let mut out = StoryOutcome::default();
    let s = Story::set_up(store, verbose).await?;
    let published = publishing::publish(&s, &mut out).await?;
    let inbound = inbound::receive(&s, &published, &mut out).await?;
    pipeline::pipeline_pass(&s, &published, &inbound, &mut out).await?;
    pipeline::ai_control_off(&s, &inbound, &mut out).await?;
    kpis::kpi_windows(&s, &mut out).await?;
    say!(v, "\nplatform calls made: {}", s.fake.requests().join(", "));
    s.fake.stop();
    Ok(out)
}
