//! [`InboundError`]: why an inbound step could not run.

use nexiom_connectors::ConnectorError;
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
    /// A webhook was refused (its signature does not verify, or its body is
    /// not a payload of the platform); nothing from it was stored.
    #[error("webhook refused: {0}")]
    Webhook(#[from] ConnectorError),
    /// A candidate rule set does not compile (the error names the rule).
    #[error("the rule set does not compile: {0}")]
    Rules(#[from] TriageError),
}
