//! The error type of `nexiom-storage`.

use nexiom_core::CoreError;
use thiserror::Error;

/// Result of a storage call.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Errors returned by every storage backend. Both backends return the same
/// variant for the same situation; backend-specific failures are wrapped in
/// [`StorageError::Backend`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The input was refused before anything was written (empty or over-long key,
    /// NUL character, value out of range, …).
    #[error(transparent)]
    Invalid(#[from] CoreError),

    /// The row asked for does not exist for this tenant.
    #[error("{entity} {id} not found")]
    NotFound {
        /// Entity kind, for example `post`.
        entity: &'static str,
        /// The id or key that was looked up.
        id: String,
    },

    /// A row refers to something that does not exist for its tenant: an unknown
    /// tenant, a channel of another tenant, a post that is not there…
    #[error("unknown {entity} {id}: create it first, or check that it belongs to the same tenant")]
    UnknownReference {
        /// Entity kind, for example `tenant` or `channel`.
        entity: &'static str,
        /// The id that was referenced.
        id: String,
    },

    /// A row with the same unique key already exists, for operations documented
    /// as refusing duplicates (insert-if-absent operations return the existing row
    /// instead).
    #[error("{entity} already exists with {key}")]
    Conflict {
        /// Entity kind.
        entity: &'static str,
        /// The key, in words.
        key: String,
    },

    /// A conditional update found the row in another state than expected (for
    /// example a lease now held by another worker). Nothing was written.
    #[error("{entity} {id} changed meanwhile: {reason}")]
    Precondition {
        /// Entity kind.
        entity: &'static str,
        /// Id.
        id: String,
        /// What did not match.
        reason: String,
    },

    /// The backend cannot be reached or cannot serve now (connection refused
    /// or lost, pool timeout, database shutting down or out of resources,
    /// serialization failure). Nothing is wrong with the input: the same call
    /// may succeed later.
    #[error("storage unavailable: {message}")]
    Unavailable {
        /// What went wrong.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The backend failed in an unexpected way (an unexpected database error,
    /// a row that does not read back).
    #[error("storage backend error: {message}")]
    Backend {
        /// What went wrong.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A secret (access or refresh token, setting value) could not be sealed
    /// for storage or opened after reading: no key is configured, the key it
    /// was sealed with is not available, or the stored value does not
    /// decrypt for this row (tampered with, or copied from another row).
    #[error("stored secret unusable: {message}")]
    Secret {
        /// What went wrong and what to do about it.
        message: String,
    },
}

impl StorageError {
    /// [`StorageError::Secret`].
    pub fn secret(message: impl Into<String>) -> Self {
        StorageError::Secret {
            message: message.into(),
        }
    }

    /// [`StorageError::NotFound`] for `entity` with `id`.
    pub fn not_found(entity: &'static str, id: impl ToString) -> Self {
        StorageError::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// [`StorageError::UnknownReference`] for `entity` with `id`.
    pub fn unknown(entity: &'static str, id: impl ToString) -> Self {
        StorageError::UnknownReference {
            entity,
            id: id.to_string(),
        }
    }

    /// [`StorageError::Conflict`] for `entity` with `key`.
    pub fn conflict(entity: &'static str, key: impl Into<String>) -> Self {
        StorageError::Conflict {
            entity,
            key: key.into(),
        }
    }

    /// [`StorageError::Precondition`].
    pub fn precondition(
        entity: &'static str,
        id: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        StorageError::Precondition {
            entity,
            id: id.to_string(),
            reason: reason.into(),
        }
    }

    /// [`StorageError::Backend`] with a message and no source.
    pub fn backend(message: impl Into<String>) -> Self {
        StorageError::Backend {
            message: message.into(),
            source: None,
        }
    }

    /// [`StorageError::Unavailable`] with a message and no source.
    pub fn unavailable(message: impl Into<String>) -> Self {
        StorageError::Unavailable {
            message: message.into(),
            source: None,
        }
    }

    /// [`StorageError::Unavailable`] for a lock or statement timeout: the
    /// database was too busy to finish the call in time
    /// ([`is_timeout`](StorageError::is_timeout) answers `true`).
    pub fn timed_out(message: impl Into<String>) -> Self {
        StorageError::Unavailable {
            message: message.into(),
            source: Some(Box::new(TimedOut(None))),
        }
    }

    /// Whether retrying the same call later may succeed (the store is
    /// unavailable, or failed in an unexpected way).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StorageError::Unavailable { .. } | StorageError::Backend { .. }
        )
    }

    /// Whether the store could not be reached or could not serve
    /// ([`StorageError::Unavailable`]): an outage, not a fault of the input.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageError::Unavailable { .. })
    }

    /// Whether this is an outage that came from a lock or statement timeout
    /// (made by [`StorageError::timed_out`], or on PostgreSQL by SQLSTATE
    /// 55P03, 57014 or 25P04): the call did too much, or waited too long, for the
    /// database's limits, so a smaller one may pass where the same one fails
    /// again.
    pub fn is_timeout(&self) -> bool {
        matches!(self, StorageError::Unavailable { source: Some(s), .. } if s.is::<TimedOut>())
    }

    /// Whether the input itself was refused, so the same call will be refused
    /// again: [`Invalid`](StorageError::Invalid) (validation, including a value
    /// the database refuses), [`UnknownReference`](StorageError::UnknownReference)
    /// or [`Conflict`](StorageError::Conflict).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StorageError::Invalid(_)
                | StorageError::UnknownReference { .. }
                | StorageError::Conflict { .. }
        )
    }
}

/// The source of an [`StorageError::Unavailable`] that is a timeout, wrapping
/// the backend's own error when there is one.
#[derive(Debug)]
pub(crate) struct TimedOut(pub(crate) Option<Box<dyn std::error::Error + Send + Sync>>);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(inner) => write!(f, "a lock or statement timeout: {inner}"),
            None => f.write_str("a lock or statement timeout"),
        }
    }
}

impl std::error::Error for TimedOut {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
