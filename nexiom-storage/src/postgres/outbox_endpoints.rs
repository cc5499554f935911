//! Notification endpoints on Postgres (`notification_endpoints`, migration
//! 0025): the signing secret, and the URL of a Slack endpoint (the
//! credential of its Slack channel), are sealed like channel tokens; a
//! listing shows an endpoint whose sealed values this store's keys cannot
//! open, flagged, so it can be mended.

use chrono::{DateTime, Utc};
use nexiom_core::{
    EndpointId, EndpointKind, NewNotificationEndpoint, NotificationEndpoint, NotificationKind,
    SecretString, TenantId, validate_endpoint_target,
};
use uuid::Uuid;

use super::PgStore;
use super::error::{WriteFailure, db, write_error};
use crate::error::{Result, StorageError};
use crate::secrets::Slot;

/// The sealed column of an endpoint's secret.
pub(super) const ENDPOINT_SECRET: &str = "notification_endpoints.secret";

/// The column of an endpoint's URL, sealed for a Slack endpoint.
pub(super) const ENDPOINT_URL: &str = "notification_endpoints.url";

#[derive(sqlx::FromRow)]
pub(super) struct EndpointRow {
    pub(super) id: Uuid,
    tenant_id: Uuid,
    name: String,
    kind: String,
    url: String,
    secret: Option<String>,
    kinds: Vec<String>,
    enabled: bool,
    created_at: DateTime<Utc>,
}

/// Whether the URL of an endpoint of `kind` is sealed at rest.
fn sealed_url(kind: EndpointKind) -> bool {
    kind == EndpointKind::Slack
}

impl PgStore {
    /// The endpoint of `row`, its secret (and a Slack URL) opened: a
    /// `Secret` error when this store's keys cannot open one.
    pub(super) fn endpoint(&self, row: EndpointRow) -> Result<NotificationEndpoint> {
        let (mut endpoint, sealed) = entity(row)?;
        self.open_sealed(&mut endpoint, sealed)?;
        Ok(endpoint)
    }

    /// The endpoint of `row` as a listing shows it: one whose sealed values
    /// do not open is shown without them (no secret, a sealed URL empty),
    /// with the reason ([`NotificationEndpoint::unreadable`]).
    pub(super) fn listed_endpoint(&self, row: EndpointRow) -> Result<NotificationEndpoint> {
        let (mut endpoint, sealed) = entity(row)?;
        match self.open_sealed(&mut endpoint, sealed) {
            Ok(()) => Ok(endpoint),
            Err(error @ StorageError::Secret { .. }) => {
                tracing::warn!(endpoint = %endpoint.id, %error,
                    "a notification endpoint's sealed values cannot be opened with this store's keys");
                endpoint.secret = None;
                if sealed_url(endpoint.kind) {
                    endpoint.url = String::new();
                }
                endpoint.unreadable = Some(error.to_string());
                Ok(endpoint)
            }
            Err(other) => Err(other),
        }
    }

    /// Opens the sealed values of `endpoint`.
    fn open_sealed(&self, endpoint: &mut NotificationEndpoint, sealed: Sealed) -> Result<()> {
        let (tenant, id) = (endpoint.tenant_id, endpoint.id.as_uuid());
        if let Some(secret) = sealed.secret {
            let slot = Slot::tenant(ENDPOINT_SECRET, tenant, id);
            endpoint.secret = Some(self.open(&slot, SecretString::new(secret))?);
        }
        if let Some(url) = sealed.url {
            let slot = Slot::tenant(ENDPOINT_URL, tenant, id);
            endpoint.url = self
                .open(&slot, SecretString::new(url))?
                .expose()
                .to_owned();
        }
        Ok(())
    }

    pub(super) async fn insert_endpoint(
        &self,
        new: NewNotificationEndpoint,
    ) -> Result<NotificationEndpoint> {
        new.validate()?;
        let id = EndpointId::generate();
        let (url, secret) =
            self.sealed_target(new.tenant_id, id, new.kind, &new.url, new.secret.as_ref())?;
        let kinds: Vec<&str> = new.sorted_kinds().iter().map(|k| k.as_str()).collect();
        let mut tx = self.scoped(new.tenant_id).await?;
        let result: std::result::Result<EndpointRow, _> = sqlx::query_as(
            "INSERT INTO notification_endpoints \
                 (id, tenant_id, name, kind, url, secret, kinds, enabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8) RETURNING *",
        )
        .bind(id.as_uuid())
        .bind(new.tenant_id.as_uuid())
        .bind(&new.name)
        .bind(new.kind.as_str())
        .bind(url)
        .bind(secret)
        .bind(&kinds)
        .bind(new.created_at)
        .fetch_one(&mut *tx)
        .await;
        match result {
            Ok(row) => {
                tx.commit().await.map_err(db)?;
                self.endpoint(row)
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(new.tenant_id),
                        refs: &[],
                        conflict: Some(("notification endpoint", format!("name {:?}", new.name))),
                    },
                )
                .await)
            }
        }
    }

    pub(super) async fn endpoints_of(&self, tenant: TenantId) -> Result<Vec<NotificationEndpoint>> {
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<EndpointRow> = sqlx::query_as(
            "SELECT * FROM notification_endpoints WHERE tenant_id = $1 ORDER BY name, id",
        )
        .bind(tenant.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter().map(|r| self.listed_endpoint(r)).collect()
    }

    pub(super) async fn enable_endpoint(
        &self,
        tenant: TenantId,
        id: EndpointId,
        enabled: bool,
    ) -> Result<NotificationEndpoint> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<EndpointRow> = sqlx::query_as(
            "UPDATE notification_endpoints SET enabled = $3 \
             WHERE tenant_id = $1 AND id = $2 RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(enabled)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let row = row.ok_or_else(|| StorageError::not_found("notification endpoint", id))?;
        self.listed_endpoint(row)
    }

    pub(super) async fn retarget_endpoint(
        &self,
        tenant: TenantId,
        id: EndpointId,
        url: String,
        secret: Option<SecretString>,
    ) -> Result<NotificationEndpoint> {
        let mut tx = self.scoped(tenant).await?;
        let kind: Option<String> = sqlx::query_scalar(
            "SELECT kind FROM notification_endpoints WHERE tenant_id = $1 AND id = $2 \
             FOR NO KEY UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let kind: EndpointKind = kind
            .ok_or_else(|| StorageError::not_found("notification endpoint", id))?
            .parse()?;
        validate_endpoint_target(kind, &url, secret.as_ref())?;
        let (url, secret) = self.sealed_target(tenant, id, kind, &url, secret.as_ref())?;
        let row: EndpointRow = sqlx::query_as(
            "UPDATE notification_endpoints SET url = $3, secret = $4 \
             WHERE tenant_id = $1 AND id = $2 RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(url)
        .bind(secret)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        // Deliveries waiting for a process able to open the old values are
        // due at once, and their day before they are dead starts over.
        sqlx::query(
            "UPDATE notification_deliveries SET unreadable_since = NULL, next_attempt_at = NULL \
             WHERE tenant_id = $1 AND endpoint_id = $2 AND state = 'pending' \
                 AND unreadable_since IS NOT NULL",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        self.endpoint(row)
    }

    /// The URL and secret of an endpoint as stored: the secret sealed, the
    /// URL sealed for a Slack endpoint.
    fn sealed_target(
        &self,
        tenant: TenantId,
        id: EndpointId,
        kind: EndpointKind,
        url: &str,
        secret: Option<&SecretString>,
    ) -> Result<(String, Option<String>)> {
        let secret = self.seal(Slot::tenant(ENDPOINT_SECRET, tenant, id.as_uuid()), secret)?;
        let url = if sealed_url(kind) {
            let url = SecretString::new(url);
            self.seal(Slot::tenant(ENDPOINT_URL, tenant, id.as_uuid()), Some(&url))?
                .unwrap_or_default()
        } else {
            url.to_owned()
        };
        Ok((url, secret))
    }
}

/// Values of a row still sealed.
struct Sealed {
    secret: Option<String>,
    url: Option<String>,
}

/// The endpoint of `row` with its secret unset and a sealed URL empty, and
/// the sealed values.
fn entity(row: EndpointRow) -> Result<(NotificationEndpoint, Sealed)> {
    let kind: EndpointKind = row.kind.parse()?;
    let kinds = row
        .kinds
        .iter()
        .map(|k| k.parse::<NotificationKind>())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let (url, sealed_url) = if sealed_url(kind) {
        (String::new(), Some(row.url))
    } else {
        (row.url, None)
    };
    Ok((
        NotificationEndpoint {
            id: row.id.into(),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            name: row.name,
            kind,
            url,
            secret: None,
            kinds,
            enabled: row.enabled,
            created_at: row.created_at,
            unreadable: None,
        },
        Sealed {
            secret: row.secret,
            url: sealed_url,
        },
    ))
}

impl PgStore {
    /// Re-seals the endpoint secrets and Slack URLs the pass asks for (a
    /// Slack URL stored in plain text before it was sealed is sealed by
    /// either pass), `batch` rows per transaction (part of
    /// [`PgStore::rotate_keys`]).
    pub(super) async fn reseal_endpoints(
        &self,
        sealer: &crate::secrets::Sealer,
        pass: super::secrets::Pass,
        prefix: &str,
        batch: i64,
        lock: &str,
        report: &mut super::RotationReport,
    ) -> Result<()> {
        let mut after = Uuid::nil();
        loop {
            let mut tx = self.scan_pool.begin().await.map_err(db)?;
            let rows: Vec<(Uuid, Uuid, String, Option<String>, String)> = sqlx::query_as(&format!(
                "SELECT id, tenant_id, url, secret, kind FROM notification_endpoints \
                 WHERE id > $1 AND ((secret IS NOT NULL AND left(secret, length($2)) <> $2) \
                     OR (kind = 'slack' AND left(url, length($2)) <> $2)) \
                 ORDER BY id LIMIT $3 {lock}"
            ))
            .bind(after)
            .bind(prefix)
            .bind(batch)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            let Some(last) = rows.last() else { break };
            after = last.0;
            let (mut ids, mut urls, mut secrets) = (Vec::new(), Vec::new(), Vec::new());
            let (mut urls_resealed, mut secrets_resealed) = (0, 0);
            for (id, tenant, url, secret, kind) in rows {
                let tenant = TenantId::from(tenant);
                let slot = Slot::tenant(ENDPOINT_SECRET, tenant, id);
                let new_secret = match &secret {
                    Some(_) => super::secrets::reseal_one(sealer, pass, slot, &secret, report)?,
                    None => None,
                };
                let url = Some(url);
                let new_url = if kind == EndpointKind::Slack.as_str() {
                    let slot = Slot::tenant(ENDPOINT_URL, tenant, id);
                    super::secrets::reseal_one(sealer, pass, slot, &url, report)?
                } else {
                    url.clone()
                };
                if new_secret != secret || new_url != url {
                    secrets_resealed += u64::from(new_secret != secret);
                    urls_resealed += u64::from(new_url != url);
                    ids.push(id);
                    urls.push(new_url.unwrap_or_default());
                    secrets.push(new_secret);
                }
            }
            sqlx::query(
                "UPDATE notification_endpoints e SET url = u.url, secret = u.s \
                 FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS u(id, url, s) \
                 WHERE e.id = u.id",
            )
            .bind(&ids)
            .bind(&urls)
            .bind(&secrets)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            report.endpoint_secrets += secrets_resealed;
            report.endpoint_urls += urls_resealed;
            report.batches += 1;
        }
        Ok(())
    }
}
