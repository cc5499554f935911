//! The worker runtime and the workers this crate ships.

mod builtin;
mod cadence;
mod retention;
mod runtime;
mod shutdown;

pub use builtin::{
    ABANDONED_AGENT_REPLIES_PER_RUN, CLEANUP_EXECUTION_LOGS, CleanupExecutionLogsWorker,
    ENQUEUE_DUE_POSTS, EnqueueDuePostsWorker, RELEASE_STALE_LEASES, ReleaseStaleLeasesWorker,
};
pub use cadence::{Cadence, CadenceError, CronSchedule};
pub use retention::{RETENTION, RetentionWorker};
pub use runtime::{BatchConfig, WorkReport, Worker, WorkerContext, WorkerRun, WorkerRuntime};
pub use shutdown::{Shutdown, ShutdownTrigger, shutdown_channel};
