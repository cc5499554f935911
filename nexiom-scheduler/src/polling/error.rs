//! [`PollingError`]: why a comment could not be polled or hidden.

use nexiom_connectors::ConnectorError;
use nexiom_storage::StorageError;
use thiserror::Error;

/// Why a polling or hiding call failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PollingError {
    /// The store failed or refused.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The platform (or the connector's configuration) refused the call.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    /// No usable token for the channel (paused, or the refresh failed).
    #[error(transparent)]
    Token(#[from] crate::tokens::TokenError),
}
