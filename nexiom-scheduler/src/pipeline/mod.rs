//! [`PipelineRunner`]: one pass of the whole pipeline, in the order of the
//! design, with pluggable steps; [`PipelineRunner::standard`] wires the
//! library's own steps, [`PipelineWorker`] runs it on a cadence.

mod steps;
mod worker;

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use tracing::warn;

use crate::error::Result;
use crate::inbound::InboundPipeline;
use crate::kpi::KpiWorker;
use crate::publish::PublishQueue;

pub use steps::{AutoReplyStep, RouteStep, TriageStep};
pub use worker::{PIPELINE, PipelineWorker};

/// How far back a pass looks for items to auto-reply when not told
/// otherwise: 1 hour (the seed's default).
pub fn default_since() -> Duration {
    Duration::hours(1)
}

/// Items per step when not told otherwise: 100 (the seed's default).
pub const DEFAULT_LIMIT: u32 = 100;

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

/// The counts of one pipeline pass.
///
/// Serializes to exactly the seed's object, `{"routed", "auto_replied",
/// "schedules_run", "metrics_collected"}`, plus `"errors"`: a list of
/// `{"step", "error"}` (empty when every step ran). The triage count is
/// kept here for callers but is not one of the seed's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineCounts {
    /// Webhook events routed.
    pub routed: u64,
    /// Messages and comments triaged (not serialized: not a seed key).
    pub triaged: u64,
    /// Inbound messages and comments auto-replied to.
    pub auto_replied: u64,
    /// Scheduled posts run (claimed and processed).
    pub schedules_run: u64,
    /// Metrics (KPI windows) collected.
    pub metrics_collected: u64,
    /// Steps that failed, with their error; the other steps still ran.
    pub errors: Vec<(&'static str, String)>,
}

struct StepError<'a>(&'a str, &'a str);

impl Serialize for StepError<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("step", self.0)?;
        map.serialize_entry("error", self.1)?;
        map.end()
    }
}

impl Serialize for PipelineCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let errors: Vec<StepError<'_>> = self
            .errors
            .iter()
            .map(|(step, error)| StepError(step, error))
            .collect();
        let mut s = serializer.serialize_struct("PipelineCounts", 5)?;
        s.serialize_field("routed", &self.routed)?;
        s.serialize_field("auto_replied", &self.auto_replied)?;
        s.serialize_field("schedules_run", &self.schedules_run)?;
        s.serialize_field("metrics_collected", &self.metrics_collected)?;
        s.serialize_field("errors", &errors)?;
        s.end()
    }
}

impl PipelineCounts {
    /// The seed's JSON object (see the type's docs).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Items handled by all steps.
    pub fn total(&self) -> u64 {
        self.routed
            .saturating_add(self.triaged)
            .saturating_add(self.auto_replied)
            .saturating_add(self.schedules_run)
            .saturating_add(self.metrics_collected)
    }
}

/// Runs, in order: route unrouted events, triage new items, auto-reply
/// pending inbound items, run due schedules, collect metrics. Each step is
/// optional; a step not plugged in counts 0. A failing step is recorded in
/// [`PipelineCounts::errors`] and the next steps still run.
///
/// [`PipelineRunner::standard`] plugs the library's own five steps; the
/// `with_*` methods plug (or replace) any of them.
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
    triage: Option<Arc<dyn PipelineStep>>,
    auto_reply: Option<Arc<dyn PipelineStep>>,
    schedules: Option<Arc<dyn PipelineStep>>,
    metrics: Option<Arc<dyn PipelineStep>>,
}

impl std::fmt::Debug for PipelineRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineRunner")
            .field("router", &self.router.is_some())
            .field("triage", &self.triage.is_some())
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

    /// The seed's pass with the library's own steps: routing, triage and
    /// auto-replies of `inbound` ([`RouteStep`], [`TriageStep`],
    /// [`AutoReplyStep`]), due schedules of `schedules` (one batch of at
    /// most `limit` posts), and one KPI aggregation of `metrics`.
    pub fn standard(inbound: InboundPipeline, schedules: PublishQueue, metrics: KpiWorker) -> Self {
        PipelineRunner::new()
            .with_router(RouteStep::new(inbound.clone()))
            .with_triage(TriageStep::new(inbound.clone()))
            .with_auto_reply(AutoReplyStep::new(inbound))
            .with_schedules(schedules)
            .with_metrics(metrics)
    }

    /// Plugs the routing step (unrouted webhook events → conversations).
    pub fn with_router(mut self, step: impl PipelineStep + 'static) -> Self {
        self.router = Some(Arc::new(step));
        self
    }

    /// Plugs the triage step (new messages and comments).
    pub fn with_triage(mut self, step: impl PipelineStep + 'static) -> Self {
        self.triage = Some(Arc::new(step));
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

    /// How many steps are plugged in.
    pub fn steps(&self) -> usize {
        [
            &self.router,
            &self.triage,
            &self.auto_reply,
            &self.schedules,
            &self.metrics,
        ]
        .iter()
        .filter(|s| s.is_some())
        .count()
    }

    /// One pass with the seed's defaults at `now`: items of the last hour
    /// ([`default_since`]), at most [`DEFAULT_LIMIT`] per step.
    pub async fn run_with_defaults(&self, now: DateTime<Utc>) -> PipelineCounts {
        let since = now.checked_sub_signed(default_since()).unwrap_or(now);
        self.run_pipeline_once(since, DEFAULT_LIMIT).await
    }

    /// One pass: route, triage, auto-reply, schedules, metrics, in that order.
    pub async fn run_pipeline_once(&self, since: DateTime<Utc>, limit: u32) -> PipelineCounts {
        let mut counts = PipelineCounts::default();
        let steps: [(&'static str, &Option<Arc<dyn PipelineStep>>); 5] = [
            ("route", &self.router),
            ("triage", &self.triage),
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
                1 => counts.triaged = n,
                2 => counts.auto_replied = n,
                3 => counts.schedules_run = n,
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
        let json = counts.to_json();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            vec![
                "auto_replied",
                "errors",
                "metrics_collected",
                "routed",
                "schedules_run"
            ]
        );
        assert_eq!(json["metrics_collected"], 2);
        assert_eq!(json["errors"][0]["step"], "route");
        assert!(
            json["errors"][0]["error"]
                .as_str()
                .unwrap()
                .contains("boom")
        );
    }
}
