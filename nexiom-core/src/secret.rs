//! [`SecretString`]: a string whose `Debug` and `Display` are redacted.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A secret (token, app secret, API key). `Debug` and `Display` print
/// `[redacted]`; the value is reachable only through [`SecretString::expose`],
/// which makes every place that reads it easy to find.
///
/// It implements `Deserialize` (so configuration can be read) but deliberately
/// not `Serialize`: a secret never ends up in JSON by accident.
///
/// ```
/// use nexiom_core::SecretString;
/// let token = SecretString::new("EAAG-very-secret");
/// assert_eq!(format!("{token:?}"), "SecretString([redacted])");
/// assert_eq!(token.to_string(), "[redacted]");
/// assert_eq!(token.expose(), "EAAG-very-secret");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Box<str>);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        SecretString(value.into().into_boxed_str())
    }

    /// The secret value. Call it only where the value must leave the process
    /// (an HTTP header, a database column).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty (an empty secret is usually "not configured").
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        SecretString::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        SecretString::new(value)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretString::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = SecretString::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
        let parsed: SecretString = serde_json::from_str("\"hunter2\"").expect("json");
        assert_eq!(parsed.expose(), "hunter2");
    }
}
