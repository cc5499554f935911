//! [`Platform`]: the four built-in platforms plus any name a custom connector brings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::CoreError;

/// The longest platform name accepted, in bytes.
pub const MAX_PLATFORM_NAME_LEN: usize = 32;

/// A social platform.
///
/// The string form is lower case (`whatsapp`, `instagram`, `facebook`, `linkedin`,
/// or the custom name). A custom name is 1 to 32 characters of `a-z`, `0-9`, `_`
/// and `-`, starting with a letter; anything else is refused with a
/// [`CoreError::Invalid`].
///
/// ```
/// use nexiom_core::Platform;
/// assert_eq!("whatsapp".parse::<Platform>().unwrap(), Platform::WhatsApp);
/// let mastodon: Platform = "mastodon".parse().unwrap();
/// assert_eq!(mastodon.as_str(), "mastodon");
/// assert!("".parse::<Platform>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    /// WhatsApp Cloud API.
    WhatsApp,
    /// Instagram Graph API.
    Instagram,
    /// Facebook Pages (and Messenger).
    Facebook,
    /// LinkedIn (Posts and Community Management APIs).
    LinkedIn,
    /// A platform brought by a custom connector. Construct it with
    /// [`Platform::custom`] or by parsing, which validate the name.
    Custom(CustomPlatform),
}

/// The validated name of a custom platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomPlatform(String);

impl CustomPlatform {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Platform {
    /// The four built-in platforms.
    pub const BUILT_IN: [Platform; 4] = [
        Platform::WhatsApp,
        Platform::Instagram,
        Platform::Facebook,
        Platform::LinkedIn,
    ];

    /// A custom platform, after checking its name. A built-in name gives the
    /// built-in variant.
    pub fn custom(name: &str) -> Result<Platform, CoreError> {
        name.parse()
    }

    /// The lower-case string form.
    pub fn as_str(&self) -> &str {
        match self {
            Platform::WhatsApp => "whatsapp",
            Platform::Instagram => "instagram",
            Platform::Facebook => "facebook",
            Platform::LinkedIn => "linkedin",
            Platform::Custom(c) => c.as_str(),
        }
    }

    /// Whether this is one of the three platforms served by Meta's Graph API.
    pub fn is_meta(&self) -> bool {
        matches!(
            self,
            Platform::WhatsApp | Platform::Instagram | Platform::Facebook
        )
    }
}

impl FromStr for Platform {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "whatsapp" => return Ok(Platform::WhatsApp),
            "instagram" => return Ok(Platform::Instagram),
            "facebook" => return Ok(Platform::Facebook),
            "linkedin" => return Ok(Platform::LinkedIn),
            _ => {}
        }
        if s.is_empty() {
            return Err(CoreError::invalid("platform", "the name must not be empty"));
        }
        if s.len() > MAX_PLATFORM_NAME_LEN {
            return Err(CoreError::invalid(
                "platform",
                format!("the name is longer than {MAX_PLATFORM_NAME_LEN} bytes"),
            ));
        }
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !first_ok || !rest_ok {
            return Err(CoreError::invalid(
                "platform",
                format!("{s:?} must start with a-z and contain only a-z, 0-9, '_' or '-'"),
            ));
        }
        Ok(Platform::Custom(CustomPlatform(s.to_owned())))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Platform {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Platform {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_built_ins_and_custom_names() {
        for p in Platform::BUILT_IN {
            assert_eq!(p.as_str().parse::<Platform>().expect("parse"), p);
        }
        let t: Platform = "telegram".parse().expect("custom");
        assert!(matches!(t, Platform::Custom(_)));
        assert_eq!(serde_json::to_string(&t).expect("json"), "\"telegram\"");
        let back: Platform = serde_json::from_str("\"telegram\"").expect("json");
        assert_eq!(back, t);
    }

    #[test]
    fn refuses_bad_names() {
        for bad in ["", "WhatsApp", "9gag", "a b", "é", &"x".repeat(33)] {
            assert!(
                bad.parse::<Platform>().is_err(),
                "{bad:?} should be refused"
            );
        }
        assert!(serde_json::from_str::<Platform>("\"\"").is_err());
    }
}
