use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::enums::RunStatus;
use crate::error::CoreError;
use crate::id::{ExecutionId, TenantId};
use crate::secret::SecretString;
use crate::validate;

/// One 2-hour KPI window of a tenant. Unique by `(tenant, window_start)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kpi2h {
    /// Owner.
    pub tenant_id: TenantId,
    /// Window start (a local 00, 02, …, 22 h boundary).
    pub window_start: DateTime<Utc>,
    /// Window end (the next boundary).
    pub window_end: DateTime<Utc>,
    /// Inbound messages created in the window.
    pub messages_count: i64,
    /// Comments created in the window.
    pub comments_count: i64,
    /// Median first-response time in whole seconds (`None`: no answered wait).
    pub frt_p50_seconds: Option<i64>,
    /// AUTO_REPLY decisions ÷ all decisions, 3 decimals (`None`: no decision).
    pub auto_reply_rate: Option<f64>,
    /// ESCALATE decisions.
    pub escalate_count: i64,
    /// IGNORE decisions.
    pub ignored_count: i64,
    /// Distinct posts with a new comment in the window.
    pub posts_active: i64,
    /// When it was computed.
    pub computed_at: DateTime<Utc>,
}

impl Kpi2h {
    /// Checks `auto_reply_rate` (in `0..=1`); the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        if let Some(rate) = self.auto_reply_rate {
            validate::unit_interval("auto_reply_rate", rate)?;
        }
        Ok(())
    }
}

/// An application setting. The value is a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSetting {
    /// Key (for example `OPENROUTER_API_KEY`).
    pub key: String,
    /// Value.
    pub value: SecretString,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Whether a named worker may run. Read at every run, so switching it needs no restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerFlag {
    /// Worker name.
    pub worker_name: String,
    /// Enabled.
    pub enabled: bool,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One run of a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskExecutionLog {
    /// Id.
    pub id: ExecutionId,
    /// Worker name.
    pub worker_name: String,
    /// Status.
    pub status: RunStatus,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub finished_at: Option<DateTime<Utc>>,
    /// `finished_at - started_at` in milliseconds.
    pub duration_ms: Option<i64>,
    /// Items handled.
    pub items_processed: i64,
    /// Items that failed.
    pub items_failed: i64,
    /// Free-form results.
    pub results: serde_json::Value,
    /// Error of a failed run.
    pub error: Option<String>,
}

/// How a worker run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionOutcome {
    /// `Completed` or `Failed`.
    pub status: RunStatus,
    /// End time.
    pub finished_at: DateTime<Utc>,
    /// Items handled.
    pub items_processed: i64,
    /// Items that failed.
    pub items_failed: i64,
    /// Free-form results.
    pub results: serde_json::Value,
    /// Error of a failed run.
    pub error: Option<String>,
}

impl ExecutionOutcome {
    /// Checks `results`, then `error`; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::json("results", &self.results)?;
        validate::opt_text("error", self.error.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_checks_results_then_error() {
        let mut outcome = ExecutionOutcome {
            status: RunStatus::Failed,
            finished_at: DateTime::<Utc>::UNIX_EPOCH,
            items_processed: 0,
            items_failed: 1,
            results: serde_json::json!({"k": "\u{0}"}),
            error: Some("boom\0".into()),
        };
        assert!(matches!(
            outcome.validate(),
            Err(CoreError::Invalid {
                field: "results",
                ..
            })
        ));
        outcome.results = serde_json::Value::Null;
        assert!(matches!(
            outcome.validate(),
            Err(CoreError::Invalid { field: "error", .. })
        ));
    }
}
