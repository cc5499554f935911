//! The error type of `nexiom-core`.

use thiserror::Error;

/// Errors raised while building or parsing domain values.
///
/// Every variant names the field or kind at fault so that a caller can report it
/// to a user as is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A value is not acceptable for the named field.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field or value kind at fault (for example `platform` or `event_id`).
        field: &'static str,
        /// What is wrong, in words a user can act on.
        reason: String,
    },
    /// A string is not one of the known values of an enumeration.
    #[error("unknown {kind} {value:?}; expected one of: {expected}")]
    UnknownValue {
        /// The enumeration (for example `PostStatus`).
        kind: &'static str,
        /// The value that was given.
        value: String,
        /// The accepted values, comma separated.
        expected: String,
    },
}

impl CoreError {
    /// Shorthand for [`CoreError::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        CoreError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
