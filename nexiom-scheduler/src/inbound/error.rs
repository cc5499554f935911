//! [`InboundError`]: why an inbound step could not run.

use nexiom_storage::StorageError;
use nexiom_triage::TriageError;
use thiserror::Error;

/// Why an inbound step stopped. Item-level problems (a generator that fails,
/// a send the platform refuses) never end a step: they are recorded on the
/// item and counted.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum InboundError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A candidate rule set does not compile (the error names the rule).
    #[error("the rule set does not compile: {0}")]
    Rules(#[from] TriageError),
}
