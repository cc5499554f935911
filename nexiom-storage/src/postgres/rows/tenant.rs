//! Rows of `tenants` and `channels`.

use chrono::{DateTime, Utc};
use nexiom_core::{Channel, Credentials, SecretString, Tenant, Tz};
use uuid::Uuid;

use super::convert::{parse, redacted};
use crate::error::Result;

/// `tenants`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct TenantRow {
    id: Uuid,
    name: String,
    time_zone: String,
    created_at: DateTime<Utc>,
}

impl TenantRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<Tenant> {
        Ok(Tenant {
            id: self.id.into(),
            name: self.name,
            time_zone: parse::<Tz>("time_zone", &self.time_zone)?,
            created_at: self.created_at,
        })
    }
}

/// `channels`. `Debug` redacts the tokens (the entity holds them as
/// [`SecretString`]; the row, read as plain text, must not leak them either).
#[derive(sqlx::FromRow)]
pub(in crate::postgres) struct ChannelRow {
    pub(in crate::postgres) id: Uuid,
    pub(super) tenant_id: Uuid,
    pub(super) platform: String,
    pub(super) external_account_id: String,
    pub(super) name: String,
    pub(super) access_token: Option<String>,
    pub(super) refresh_token: Option<String>,
    pub(super) expires_at: Option<DateTime<Utc>>,
    pub(super) status: String,
    pub(super) status_reason: Option<String>,
    pub(super) status_changed_at: Option<DateTime<Utc>>,
    pub(super) created_at: DateTime<Utc>,
}

impl std::fmt::Debug for ChannelRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRow")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("platform", &self.platform)
            .field("external_account_id", &self.external_account_id)
            .field("name", &self.name)
            .field("access_token", &redacted(self.access_token.as_ref()))
            .field("refresh_token", &redacted(self.refresh_token.as_ref()))
            .field("expires_at", &self.expires_at)
            .field("status", &self.status)
            .field("status_reason", &self.status_reason)
            .field("status_changed_at", &self.status_changed_at)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl ChannelRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<Channel> {
        Ok(Channel {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            platform: parse("platform", &self.platform)?,
            external_account_id: self.external_account_id,
            name: self.name,
            credentials: Credentials {
                access_token: self.access_token.map(SecretString::new),
                refresh_token: self.refresh_token.map(SecretString::new),
                expires_at: self.expires_at,
            },
            status: parse("channel status", &self.status)?,
            status_reason: self.status_reason,
            status_changed_at: self.status_changed_at,
            created_at: self.created_at,
        })
    }
}
