//! [`MissionError`]: what the mission orchestrator and its reads can fail with.

use nexiom_storage::StorageError;
use thiserror::Error;

/// Errors of the mission orchestrator and the mission reads.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MissionError {
    /// The store refused or failed (unknown tenant, channel or mission, a
    /// backend failure…).
    #[error(transparent)]
    Storage(#[from] StorageError),

    /// An argument is out of range; nothing was read or written.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The argument.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// The day kept changing between planning and committing (another
    /// orchestration or a user is writing to the same channel); nothing of this
    /// run was written.
    #[error(
        "the channel's day changed during each of {attempts} planning attempts \
         (another orchestration is probably running on it); run it again"
    )]
    Contention {
        /// How many plans were made.
        attempts: u32,
    },
}

impl MissionError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        MissionError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
