//! [`PipelineRunner`]: one pass of the whole pipeline, in the order of the
//! design, with pluggable steps.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tracing::warn;

use crate::error::Result;
use crate::publish::PublishQueue;
use crate::worker::BatchConfig;

/// One step of the pipeline: does its work on at most `limit` items (items
/// created since `since`, where that applies) and returns how many it handled.
#[async_trait]
pub trait PipelineStep: Send + Sync {
    /// Runs the step.
    async fn run(&self, since: DateTime<Utc>, limit: u32) -> Result<u64>;
}

/// A step made of an async closure; see [`step_fn`].
pub struct FnStep<F>(F);

/// Turns an async closure `|since, limit| async { … Ok(count) }` into a
/// [`PipelineStep`], so that a step is wired with one line.
pub fn step_fn<F, Fut>(f: F) -> FnStep<F>
where
    F: Fn(DateTime<Utc>, u32) -> Fut + Send + Sync,
    Fut: Future<Output = Result<u64>> + Send,
{
    FnStep(f)
}

#[async_trait]
impl<F, Fut> PipelineStep for FnStep<F>
where
    F: Fn(DateTime<Utc>, u32) -> Fut + Send + Sync,
    Fut: Future<Output = Result<u64>> + Send,
{
    async fn run(&self, since: DateTime<Utc>, limit: u32) -> Result<u64> {
        (self.0)(since, limit).await
    }
}

/// Running due schedules is the publish queue's [`PublishQueue::run_due`]
/// with `limit` as batch size (one batch, plus those series made due): the
/// count is the posts claimed.
#[async_trait]
impl PipelineStep for PublishQueue {
    async fn run(&self, _since: DateTime<Utc>, limit: u32) -> Result<u64> {
        let batch = BatchConfig {
            batch_size: limit,
            max_batches: 1,
            ..BatchConfig::default()
        };
        Ok(self.run_due(&batch, None).await?.claimed)
    }
}

/// The four counts of one pipeline pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineCounts {
    /// Webhook events routed.
    pub routed: u64,
    /// Inbound messages auto-replied to.
    pub auto_replied: u64,
    /// Scheduled posts run (claimed and processed).
    pub schedules_run: u64,
    /// Metrics (KPI windows) collected.
    pub metrics_collected: u64,
    /// Steps that failed, with their error; the other steps still ran.
    pub errors: Vec<(&'static str, String)>,
}

/// Runs, in order: route unrouted events, auto-reply recent inbound messages,
/// run due schedules, collect metrics. Each step is optional; a step not
/// plugged in counts 0. A failing step is recorded in
/// [`PipelineCounts::errors`] and the next steps still run.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use chrono::Utc;
/// use nexiom_scheduler::{PipelineRunner, step_fn};
///
/// let runner = PipelineRunner::new()
///     .with_router(step_fn(|_since, limit| async move { Ok(u64::from(limit.min(3))) }));
/// let counts = runner.run_pipeline_once(Utc::now(), 10).await;
/// assert_eq!((counts.routed, counts.auto_replied, counts.schedules_run), (3, 0, 0));
/// # });
/// ```
#[derive(Default, Clone)]
pub struct PipelineRunner {
    router: Option<Arc<dyn PipelineStep>>,
    auto_reply: Option<Arc<dyn PipelineStep>>,
    schedules: Option<Arc<dyn PipelineStep>>,
    metrics: Option<Arc<dyn PipelineStep>>,
}

impl std::fmt::Debug for PipelineRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineRunner")
            .field("router", &self.router.is_some())
            .field("auto_reply", &self.auto_reply.is_some())
            .field("schedules", &self.schedules.is_some())
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl PipelineRunner {
    /// A runner with no step plugged in (every count 0).
    pub fn new() -> Self {
        PipelineRunner::default()
    }

    /// Plugs the routing step (unrouted webhook events → conversations).
    pub fn with_router(mut self, step: impl PipelineStep + 'static) -> Self {
        self.router = Some(Arc::new(step));
        self
    }

    /// Plugs the auto-reply step (recent inbound messages).
    pub fn with_auto_reply(mut self, step: impl PipelineStep + 'static) -> Self {
        self.auto_reply = Some(Arc::new(step));
        self
    }

    /// Plugs the schedules step (usually a [`PublishQueue`]).
    pub fn with_schedules(mut self, step: impl PipelineStep + 'static) -> Self {
        self.schedules = Some(Arc::new(step));
        self
    }

    /// Plugs the metrics step (KPI windows).
    pub fn with_metrics(mut self, step: impl PipelineStep + 'static) -> Self {
        self.metrics = Some(Arc::new(step));
        self
    }

    /// One pass: route, auto-reply, schedules, metrics, in that order.
    pub async fn run_pipeline_once(&self, since: DateTime<Utc>, limit: u32) -> PipelineCounts {
        let mut counts = PipelineCounts::default();
        let steps: [(&'static str, &Option<Arc<dyn PipelineStep>>); 4] = [
            ("route", &self.router),
            ("auto_reply", &self.auto_reply),
            ("schedules", &self.schedules),
            ("metrics", &self.metrics),
        ];
        for (i, (name, step)) in steps.into_iter().enumerate() {
            let Some(step) = step else { continue };
            let n = match step.run(since, limit).await {
                Ok(n) => n,
                Err(err) => {
                    warn!(step = name, error = %err, "pipeline step failed");
                    counts.errors.push((name, err.to_string()));
                    0
                }
            };
            match i {
                0 => counts.routed = n,
                1 => counts.auto_replied = n,
                2 => counts.schedules_run = n,
                _ => counts.metrics_collected = n,
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn steps_run_in_order_and_missing_ones_count_zero() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let step = |name: &'static str, n: u64| {
            let order = Arc::clone(&order);
            step_fn(move |_, _| {
                let order = Arc::clone(&order);
                async move {
                    order.lock().unwrap().push(name);
                    Ok(n)
                }
            })
        };
        let runner = PipelineRunner::new()
            .with_metrics(step("metrics", 4))
            .with_router(step("route", 1))
            .with_schedules(step("schedules", 3));
        let counts = runner.run_pipeline_once(Utc::now(), 10).await;
        assert_eq!(
            (
                counts.routed,
                counts.auto_replied,
                counts.schedules_run,
                counts.metrics_collected
            ),
            (1, 0, 3, 4)
        );
        assert_eq!(
            *order.lock().unwrap(),
            vec!["route", "schedules", "metrics"]
        );
    }

    #[tokio::test]
    async fn a_failing_step_does_not_stop_the_others() {
        let runner = PipelineRunner::new()
            .with_router(step_fn(|_, _| async {
                Err(crate::SchedulerError::ContentRefused("boom".into()))
            }))
            .with_metrics(step_fn(|_, _| async { Ok(2) }));
        let counts = runner.run_pipeline_once(Utc::now(), 10).await;
        assert_eq!(counts.routed, 0);
        assert_eq!(counts.metrics_collected, 2);
        assert_eq!(counts.errors.len(), 1);
        assert_eq!(counts.errors[0].0, "route");
    }
}
