//! The error type of `nexiom-triage`.

use thiserror::Error;

/// Why a rule set could not be compiled. Every variant names the rule at fault.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum TriageError {
    /// A pattern is not a valid regular expression.
    #[error("rule {rule:?}: pattern {pattern:?} is not a valid regular expression: {message}")]
    InvalidPattern {
        /// The rule's name.
        rule: String,
        /// The pattern as written.
        pattern: String,
        /// What the regex compiler said.
        message: String,
    },
    /// A keyword is empty once folded (only white space or diacritics).
    #[error("rule {rule:?}: keyword {keyword:?} is empty once case, accents and spaces are folded")]
    EmptyKeyword {
        /// The rule's name.
        rule: String,
        /// The keyword as written.
        keyword: String,
    },
    /// A rule's `confidence_min` is not a number between 0 and 1.
    #[error("rule {rule:?}: confidence_min {value} is not between 0 and 1")]
    InvalidConfidence {
        /// The rule's name.
        rule: String,
        /// The value.
        value: f64,
    },
    /// The similarity threshold is not a number between 0 and 1.
    #[error("similarity threshold {0} is not between 0 and 1")]
    InvalidThreshold(f64),
    /// The automaton or the regex set grew past the built-in size limits.
    #[error("the rule set is too large to compile: {0}")]
    TooLarge(String),
}
