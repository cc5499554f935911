use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::enums::ChannelStatus;
use crate::error::CoreError;
use crate::id::{ChannelId, TenantId};
use crate::platform::Platform;
use crate::secret::SecretString;
use crate::validate;

/// The time zone used when a tenant names none.
pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::Europe::Paris;

/// A customer of the library: every other row belongs to one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Time zone of its KPI windows and calendars.
    pub time_zone: Tz,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Input to create a [`Tenant`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewTenant {
    /// Display name (non-empty).
    pub name: String,
    /// Time zone; [`DEFAULT_TIME_ZONE`] when built with [`NewTenant::new`].
    pub time_zone: Tz,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl NewTenant {
    /// A tenant named `name` in Europe/Paris.
    pub fn new(name: impl Into<String>, created_at: DateTime<Utc>) -> Self {
        NewTenant {
            name: name.into(),
            time_zone: DEFAULT_TIME_ZONE,
            created_at,
        }
    }

    /// Checks `name` (a key); the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("name", &self.name)
    }
}

/// A channel's credentials. The tokens are secrets: `Debug` redacts them and the
/// struct is never serialized.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Credentials {
    /// The access token sent with API calls.
    pub access_token: Option<SecretString>,
    /// The refresh token, when the platform issues one.
    pub refresh_token: Option<SecretString>,
    /// When the access token expires, when known.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Credentials {
    /// Checks the tokens (free text); the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::opt_text(
            "access_token",
            self.access_token.as_ref().map(SecretString::expose),
        )?;
        validate::opt_text(
            "refresh_token",
            self.refresh_token.as_ref().map(SecretString::expose),
        )
    }
}

/// A connected social account (WhatsApp phone number, Instagram user, Facebook
/// page, LinkedIn author).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// Id.
    pub id: ChannelId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Platform.
    pub platform: Platform,
    /// The platform's id of the account: phone-number id, IG user id, page id or
    /// LinkedIn author URN. Unique per platform across tenants, so a webhook can be
    /// routed to its tenant.
    pub external_account_id: String,
    /// Display name.
    pub name: String,
    /// Credentials (never serialized).
    #[serde(skip, default)]
    pub credentials: Credentials,
    /// Health of the credentials.
    pub status: ChannelStatus,
    /// Why the channel is not `active` (for `needs_reauth`: the platform's
    /// answer to the refused refresh), `None` while active.
    #[serde(default)]
    pub status_reason: Option<String>,
    /// When the status last changed to what it is, when known.
    #[serde(default)]
    pub status_changed_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Input to create a [`Channel`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewChannel {
    /// Owner (must exist).
    pub tenant_id: TenantId,
    /// Platform.
    pub platform: Platform,
    /// The platform's id of the account (a key: non-empty, at most 255 bytes).
    pub external_account_id: String,
    /// Display name.
    pub name: String,
    /// Credentials.
    pub credentials: Credentials,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl NewChannel {
    /// Checks `external_account_id`, `name`, then the tokens; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("external_account_id", &self.external_account_id)?;
        validate::key("name", &self.name)?;
        self.credentials.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_first_bad_field() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(NewTenant::new("Acme", t0).validate(), Ok(()));
        assert!(matches!(
            NewTenant::new(" ", t0).validate(),
            Err(CoreError::Invalid { field: "name", .. })
        ));
        let mut channel = NewChannel {
            tenant_id: TenantId::generate(),
            platform: Platform::Facebook,
            external_account_id: String::new(),
            name: String::new(),
            credentials: Credentials {
                access_token: Some(SecretString::new("tok\0en")),
                ..Credentials::default()
            },
            created_at: t0,
        };
        assert!(matches!(
            channel.validate(),
            Err(CoreError::Invalid {
                field: "external_account_id",
                ..
            })
        ));
        channel.external_account_id = "page-1".into();
        assert!(matches!(
            channel.validate(),
            Err(CoreError::Invalid { field: "name", .. })
        ));
        channel.name = "Page".into();
        assert!(matches!(
            channel.validate(),
            Err(CoreError::Invalid {
                field: "access_token",
                ..
            })
        ));
        channel.credentials = Credentials::default();
        assert_eq!(channel.validate(), Ok(()));
    }
}
