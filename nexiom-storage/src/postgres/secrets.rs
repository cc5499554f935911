//! Secrets at rest on Postgres: sealing on write, opening on read, and the
//! batched re-sealing behind [`PgStore::rotate_keys`] and
//! [`PgStore::seal_plaintext_secrets`].

use nexiom_core::{Channel, ChannelId, SecretString, TenantId};
use uuid::Uuid;

use super::PgStore;
use super::error::db;
use crate::error::{Result, StorageError};
use crate::secrets::{SEALED_PREFIX, Sealer, Slot};

/// Rows re-sealed per transaction by [`PgStore::migrate`]'s sealing step.
pub(super) const DEFAULT_BATCH: u32 = 500;

pub(super) const ACCESS_TOKEN: &str = "channels.access_token";
pub(super) const REFRESH_TOKEN: &str = "channels.refresh_token";
pub(super) const SETTING_VALUE: &str = "app_settings.value";

/// What [`PgStore::rotate_keys`] or [`PgStore::seal_plaintext_secrets`] did.
///
/// Retire an older key only when [`RotationReport::unreadable`] is empty:
/// the values listed there are still stored as they were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Channels whose tokens were re-sealed.
    pub channels: u64,
    /// Settings whose value was re-sealed.
    pub settings: u64,
    /// Tenant secret settings re-sealed.
    pub tenant_secrets: u64,
    /// Notification endpoints whose signing secret was re-sealed.
    pub endpoint_secrets: u64,
    /// Slack endpoints whose URL (the credential of the Slack channel) was
    /// re-sealed, or sealed when it was stored in plain text.
    pub endpoint_urls: u64,
    /// Transactions used.
    pub batches: u64,
    /// Stored values that could not be opened (sealed with a key the
    /// provider no longer has, altered, or copied from another row), left as
    /// they were; every other value was re-sealed. Each names its column,
    /// tenant and row so it can be fixed: reconnect the channel, set the
    /// setting or endpoint secret again, or add the missing key back as a
    /// previous key and rotate again.
    pub unreadable: Vec<UnreadableSecret>,
}

/// A stored value a rotation could not open, left as it was.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnreadableSecret {
    /// The column, e.g. `channels.access_token`.
    pub column: &'static str,
    /// The tenant the row belongs to (`None` for a process-wide setting).
    pub tenant: Option<TenantId>,
    /// The row: a channel or endpoint id, or a setting's key.
    pub row: String,
    /// Why it did not open.
    pub reason: String,
}

impl std::fmt::Display for UnreadableSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.tenant {
            Some(tenant) => write!(f, "{} of row {} (tenant {tenant})", self.column, self.row)?,
            None => write!(f, "{} of row {}", self.column, self.row)?,
        }
        write!(f, ": {}", self.reason)
    }
}

/// Which stored values a pass re-seals.
#[derive(Clone, Copy)]
pub(super) enum Pass {
    /// Everything not sealed with the current key (plain text included).
    Rotate,
    /// Only plain text.
    PlainOnly,
}

impl PgStore {
    fn sealer(&self) -> Result<&Sealer> {
        self.sealer.as_ref().ok_or_else(|| {
            StorageError::secret(
                "this PgStore has no encryption keys, and secrets are never stored as plain \
                 text: set NEXIOM_SECRET_KEYS (see EnvKeyProvider) or call PgStore::with_keys",
            )
        })
    }

    /// `secret` sealed for `slot`, or `None`.
    pub(super) fn seal(&self, slot: Slot, secret: Option<&SecretString>) -> Result<Option<String>> {
        secret
            .map(|s| self.sealer()?.seal(&slot, s.expose()))
            .transpose()
    }

    /// The plain text of a stored value of `slot`.
    pub(super) fn open(&self, slot: &Slot, stored: SecretString) -> Result<SecretString> {
        if !stored.expose().starts_with(SEALED_PREFIX) {
            return Ok(stored);
        }
        Ok(SecretString::new(
            self.sealer()?.open(slot, stored.expose())?,
        ))
    }

    /// `channel` with its tokens opened.
    pub(super) fn open_channel(&self, mut channel: Channel) -> Result<Channel> {
        let (tenant, id) = (channel.tenant_id, channel.id);
        let creds = &mut channel.credentials;
        if let Some(token) = creds.access_token.take() {
            creds.access_token = Some(self.open(&token_slot(ACCESS_TOKEN, tenant, id), token)?);
        }
        if let Some(token) = creds.refresh_token.take() {
            creds.refresh_token = Some(self.open(&token_slot(REFRESH_TOKEN, tenant, id), token)?);
        }
        Ok(channel)
    }

    /// Re-seals, with the key provider's current key, every stored token and
    /// setting value sealed with an older key or still in plain text,
    /// `batch` rows per transaction: a first pass skips rows another
    /// transaction holds (so several processes may run it at once), a second
    /// one waits for them, so when it returns every value is sealed with the
    /// current key (values written meanwhile by processes that already have
    /// the new key are too; roll the new key out to every process first).
    /// Reads keep working
    /// throughout as long as the provider still has the older keys; retire a
    /// key only after a rotation returned. A cross-tenant operation: it runs
    /// on the scan pool.
    pub async fn rotate_keys(&self, batch: u32) -> Result<RotationReport> {
        self.reseal(Pass::Rotate, batch).await
    }

    /// Seals every token and setting value still stored as plain text (rows
    /// written before encryption was introduced). [`PgStore::migrate`] runs it
    /// when the store has keys.
    pub async fn seal_plaintext_secrets(&self, batch: u32) -> Result<RotationReport> {
        self.reseal(Pass::PlainOnly, batch).await
    }

    async fn reseal(&self, pass: Pass, batch: u32) -> Result<RotationReport> {
        let sealer = self.sealer()?;
        let batch = i64::from(batch.max(1));
        let prefix = match pass {
            Pass::Rotate => format!("{SEALED_PREFIX}{}:", sealer.current_key_id()),
            Pass::PlainOnly => SEALED_PREFIX.to_owned(),
        };
        let mut report = RotationReport::default();
        // Two passes: the first skips rows another transaction holds (so
        // several rotations share the work), the second waits for them, so no
        // row is left behind. `FOR NO KEY UPDATE` does not conflict with the
        // `FOR KEY SHARE` locks that inserts of child rows take on a channel.
        for lock in ["FOR NO KEY UPDATE SKIP LOCKED", "FOR NO KEY UPDATE"] {
            self.reseal_channels(sealer, pass, &prefix, batch, lock, &mut report)
                .await?;
            self.reseal_settings(sealer, pass, &prefix, batch, lock, &mut report)
                .await?;
            self.reseal_tenant_secrets(sealer, pass, &prefix, batch, lock, &mut report)
                .await?;
            self.reseal_endpoints(sealer, pass, &prefix, batch, lock, &mut report)
                .await?;
        }
        // The second pass meets the values the first could not open again.
        report.unreadable.sort();
        report.unreadable.dedup();
        if !report.unreadable.is_empty() {
            tracing::warn!(
                count = report.unreadable.len(),
                first = %report.unreadable[0],
                "stored secrets that do not open were left as they were"
            );
        }
        Ok(report)
    }

    async fn reseal_channels(
        &self,
        sealer: &Sealer,
        pass: Pass,
        prefix: &str,
        batch: i64,
        lock: &str,
        report: &mut RotationReport,
    ) -> Result<()> {
        let mut after = Uuid::nil();
        loop {
            let mut tx = self.scan_pool.begin().await.map_err(db)?;
            let rows: Vec<(Uuid, Uuid, Option<String>, Option<String>)> = sqlx::query_as(&format!(
                "SELECT id, tenant_id, access_token, refresh_token FROM channels \
                     WHERE id > $1 \
                       AND ((access_token IS NOT NULL AND left(access_token, length($2)) <> $2) \
                         OR (refresh_token IS NOT NULL AND left(refresh_token, length($2)) <> $2)) \
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
            let (mut ids, mut access, mut refresh) = (Vec::new(), Vec::new(), Vec::new());
            for (id, tenant, a, r) in rows {
                let tenant = TenantId::from(tenant);
                let channel = ChannelId::from(id);
                let a2 = reseal_one(
                    sealer,
                    pass,
                    token_slot(ACCESS_TOKEN, tenant, channel),
                    &a,
                    report,
                )?;
                let r2 = reseal_one(
                    sealer,
                    pass,
                    token_slot(REFRESH_TOKEN, tenant, channel),
                    &r,
                    report,
                )?;
                if a2 != a || r2 != r {
                    ids.push(id);
                    access.push(a2);
                    refresh.push(r2);
                }
            }
            sqlx::query(
                "UPDATE channels c SET access_token = u.a, refresh_token = u.r \
                 FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS u(id, a, r) \
                 WHERE c.id = u.id",
            )
            .bind(&ids)
            .bind(&access)
            .bind(&refresh)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            report.channels += ids.len() as u64;
            report.batches += 1;
        }
        Ok(())
    }

    async fn reseal_settings(
        &self,
        sealer: &Sealer,
        pass: Pass,
        prefix: &str,
        batch: i64,
        lock: &str,
        report: &mut RotationReport,
    ) -> Result<()> {
        let mut after = String::new();
        loop {
            let mut tx = self.scan_pool.begin().await.map_err(db)?;
            let rows: Vec<(String, String)> = sqlx::query_as(&format!(
                "SELECT key, value FROM app_settings \
                 WHERE key COLLATE \"C\" > $1 AND left(value, length($2)) <> $2 \
                 ORDER BY key COLLATE \"C\" LIMIT $3 {lock}"
            ))
            .bind(&after)
            .bind(prefix)
            .bind(batch)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            let Some(last) = rows.last() else { break };
            after = last.0.clone();
            let (mut keys, mut values) = (Vec::new(), Vec::new());
            for (key, value) in rows {
                let slot = Slot::global(SETTING_VALUE, &key);
                let value = Some(value);
                let resealed = reseal_one(sealer, pass, slot, &value, report)?;
                if resealed != value {
                    values.push(resealed);
                    keys.push(key);
                }
            }
            sqlx::query(
                "UPDATE app_settings s SET value = u.v \
                 FROM UNNEST($1::text[], $2::text[]) AS u(k, v) WHERE s.key = u.k",
            )
            .bind(&keys)
            .bind(&values)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            report.settings += keys.len() as u64;
            report.batches += 1;
        }
        Ok(())
    }
}

impl PgStore {
    async fn reseal_tenant_secrets(
        &self,
        sealer: &Sealer,
        pass: Pass,
        prefix: &str,
        batch: i64,
        lock: &str,
        report: &mut RotationReport,
    ) -> Result<()> {
        let mut after = (Uuid::nil(), String::new());
        loop {
            let mut tx = self.scan_pool.begin().await.map_err(db)?;
            let rows: Vec<(Uuid, String, String)> = sqlx::query_as(&format!(
                "SELECT tenant_id, key, value FROM tenant_secrets \
                 WHERE (tenant_id, key COLLATE \"C\") > ($1, $2 COLLATE \"C\") \
                     AND left(value, length($3)) <> $3 \
                 ORDER BY tenant_id, key COLLATE \"C\" LIMIT $4 {lock}"
            ))
            .bind(after.0)
            .bind(&after.1)
            .bind(prefix)
            .bind(batch)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            let Some(last) = rows.last() else { break };
            after = (last.0, last.1.clone());
            let (mut tenants, mut keys, mut values) = (Vec::new(), Vec::new(), Vec::new());
            for (tenant, key, value) in rows {
                let slot = super::tenant_settings::secret_slot(TenantId::from(tenant), &key);
                let value = Some(value);
                let resealed = reseal_one(sealer, pass, slot, &value, report)?;
                if resealed != value {
                    values.push(resealed);
                    tenants.push(tenant);
                    keys.push(key);
                }
            }
            sqlx::query(
                "UPDATE tenant_secrets s SET value = u.v \
                 FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS u(t, k, v) \
                 WHERE s.tenant_id = u.t AND s.key = u.k",
            )
            .bind(&tenants)
            .bind(&keys)
            .bind(&values)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            report.tenant_secrets += keys.len() as u64;
            report.batches += 1;
        }
        Ok(())
    }
}

/// The slot of a channel token.
pub(super) fn token_slot(column: &'static str, tenant: TenantId, channel: ChannelId) -> Slot {
    Slot::tenant(column, tenant, channel)
}

/// `stored` re-sealed with the current key when the pass asks for it. A
/// value that does not open is kept as it is and listed in the report's
/// `unreadable`, so one bad row never stops the rotation of the others.
pub(super) fn reseal_one(
    sealer: &Sealer,
    pass: Pass,
    slot: Slot,
    stored: &Option<String>,
    report: &mut RotationReport,
) -> Result<Option<String>> {
    let Some(stored) = stored else {
        return Ok(None);
    };
    let keep = match pass {
        Pass::Rotate => sealer.is_current(stored),
        Pass::PlainOnly => stored.starts_with(SEALED_PREFIX),
    };
    if keep {
        return Ok(Some(stored.clone()));
    }
    let plain = match sealer.open(&slot, stored) {
        Ok(plain) => plain,
        Err(err) => {
            report.unreadable.push(UnreadableSecret {
                column: slot.column(),
                tenant: slot.tenant_id(),
                row: slot.row().to_owned(),
                reason: err.to_string(),
            });
            return Ok(Some(stored.clone()));
        }
    };
    Ok(Some(sealer.seal(&slot, &plain)?))
}
