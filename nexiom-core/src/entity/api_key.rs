//! API keys: the credentials a tenant's applications present to a downstream
//! API. The full token is shown once, when the key is created; storage keeps
//! only a hash of it and a short prefix to recognize it by.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::id::{ApiKeyId, TenantId};
use crate::secret::SecretString;
use crate::validate;

/// How every API key token starts.
///
/// A token is `nxk_`, the tenant's id as 32 lower-case hex digits (the UUID's
/// simple form), `_`, and 43 characters of unpadded base64url encoding 32
/// random bytes from the operating system's generator: 80 ASCII characters in
/// all, for example `nxk_0190b7a6c2d87e3f9a1b2c3d4e5f6a7b_3q2-7wVu…`. The
/// tenant in the token lets a key be checked within its tenant only.
pub const API_KEY_SCHEME: &str = "nxk_";

/// The length of an API key token, in bytes (all ASCII).
pub const API_KEY_TOKEN_LEN: usize = 80;

/// An API key of a tenant's application, as listed: its name, its
/// [`prefix`](ApiKey::prefix) and its times, never the token nor its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Id.
    pub id: ApiKeyId,
    /// Owner: the key is valid for this tenant only.
    pub tenant_id: TenantId,
    /// What the key is for, as its creator named it.
    pub name: String,
    /// [`API_KEY_SCHEME`] followed by the first 8 characters of the token's
    /// random part: enough for a person to recognize a key in a list, useless
    /// to authenticate with (the other 200-odd random bits stay unknown).
    pub prefix: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When the key was revoked; a revoked key never verifies again.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the key last verified, recorded at most about once a minute (so
    /// that a busy key does not cost a write per request).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether the key was revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// Input to create an [`ApiKey`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    /// Owner (must exist).
    pub tenant_id: TenantId,
    /// What the key is for (a key: non-empty, at most 255 bytes, no control
    /// characters).
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl NewApiKey {
    /// A key of `tenant` named `name`.
    pub fn new(tenant_id: TenantId, name: impl Into<String>, created_at: DateTime<Utc>) -> Self {
        NewApiKey {
            tenant_id,
            name: name.into(),
            created_at,
        }
    }

    /// Checks `name` (a key); the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("name", &self.name)
    }
}

/// A newly created API key with its token: the only time the token is
/// available. Hand [`secret`](IssuedApiKey::secret) to the application and
/// drop it; storage cannot give it back (it keeps a hash).
///
/// `Debug` redacts the token, and the type is not serializable.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuedApiKey {
    /// The stored key, as a list of the tenant's keys shows it.
    pub key: ApiKey,
    /// The full token (see [`API_KEY_SCHEME`] for its form).
    pub secret: SecretString,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_tokens_redacted() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let tenant = TenantId::generate();
        assert_eq!(NewApiKey::new(tenant, "ci", t0).validate(), Ok(()));
        for bad in [String::new(), " ".into(), "a\nb".into(), "k".repeat(256)] {
            assert!(matches!(
                NewApiKey::new(tenant, bad, t0).validate(),
                Err(CoreError::Invalid { field: "name", .. })
            ));
        }
        let issued = IssuedApiKey {
            key: ApiKey {
                id: ApiKeyId::generate(),
                tenant_id: tenant,
                name: "ci".into(),
                prefix: "nxk_abcdefgh".into(),
                created_at: t0,
                revoked_at: None,
                last_used_at: None,
            },
            secret: SecretString::new("nxk_secret-token"),
        };
        assert!(!format!("{issued:?}").contains("secret-token"));
        assert!(!issued.key.is_revoked());
    }
}
