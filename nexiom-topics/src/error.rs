//! [`TopicsError`]: what a topic run fails with.

use nexiom_storage::StorageError;
use thiserror::Error;

use crate::embed::EmbedError;

/// Errors of a topic run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TopicsError {
    /// The texts could not be embedded.
    #[error("embedding failed: {0}")]
    Embed(#[from] EmbedError),
    /// Storage failed or refused.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
