//! [`Sealer`]: seals and opens one stored value, bound to its [`Slot`].

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::XNonce;
use chacha20poly1305::aead::{Aead, AeadCore, OsRng, Payload};
use nexiom_core::TenantId;
use uuid::Uuid;

use super::keys::{KeyId, KeyProvider};
use crate::error::{Result, StorageError};

/// What every sealed value starts with; a stored value without it is plain
/// text written before encryption was introduced (see
/// [`PgStore::seal_plaintext_secrets`](crate::PgStore::seal_plaintext_secrets)).
pub const SEALED_PREFIX: &str = "nxenc:v1:";

/// XChaCha20's nonce: 24 random bytes per value, so random nonces never
/// repeat in practice.
const NONCE_LEN: usize = 24;

/// Where a value is stored, which the seal is bound to (its associated data):
/// the column, the tenant (or none, for process-wide settings) and the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    column: &'static str,
    tenant: Option<Uuid>,
    row: String,
}

impl Slot {
    /// A column of a tenant's row, e.g. `("channels.access_token", tenant,
    /// channel id)`.
    pub fn tenant(column: &'static str, tenant: TenantId, row: impl ToString) -> Slot {
        Slot {
            column,
            tenant: Some(tenant.as_uuid()),
            row: row.to_string(),
        }
    }

    /// A column of a row that belongs to no tenant (a process-wide setting).
    pub fn global(column: &'static str, row: impl ToString) -> Slot {
        Slot {
            column,
            tenant: None,
            row: row.to_string(),
        }
    }

    /// The column, e.g. `channels.access_token`.
    pub fn column(&self) -> &'static str {
        self.column
    }

    /// The tenant the row belongs to, if any.
    pub fn tenant_id(&self) -> Option<TenantId> {
        self.tenant.map(TenantId::from)
    }

    /// The row's key (an id, or a setting's name).
    pub fn row(&self) -> &str {
        &self.row
    }

    fn associated_data(&self) -> Vec<u8> {
        let tenant = self.tenant.map(|t| t.to_string());
        format!(
            "nexiom/v1\0{}\0{}\0{}",
            self.column,
            tenant.as_deref().unwrap_or("-"),
            self.row
        )
        .into_bytes()
    }
}

/// Seals values for storage and opens them after reading, with the keys of a
/// [`KeyProvider`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sealer {
    keys: Arc<dyn KeyProvider>,
}

impl Sealer {
    /// A sealer over `keys`.
    pub fn new(keys: Arc<dyn KeyProvider>) -> Sealer {
        Sealer { keys }
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> KeyId {
        self.keys.current().0
    }

    /// `plain` sealed with the current key, bound to `slot`.
    pub fn seal(&self, slot: &Slot, plain: &str) -> Result<String> {
        let (id, key) = self.keys.current();
        let nonce = chacha20poly1305::XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = key
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: &slot.associated_data(),
                },
            )
            .map_err(|_| StorageError::secret("encryption failed"))?;
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED_PREFIX}{id}:{}",
            URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// The plain text of a value read from `slot`. Plain text stored before
    /// encryption (no [`SEALED_PREFIX`]) is returned as it is.
    pub fn open(&self, slot: &Slot, stored: &str) -> Result<String> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (id, body) = rest.split_once(':').ok_or_else(|| {
            StorageError::secret(format!("{}: malformed sealed value", slot.column))
        })?;
        let id = KeyId::new(id)?;
        let key = self.keys.key(&id).ok_or_else(|| {
            StorageError::secret(format!(
                "{} was sealed with key {id}, which the key provider no longer has: \
                 add it back as a previous key",
                slot.column
            ))
        })?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| {
            StorageError::secret(format!("{}: malformed sealed value", slot.column))
        })?;
        if bytes.len() < NONCE_LEN {
            return Err(StorageError::secret(format!(
                "{}: malformed sealed value",
                slot.column
            )));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = key
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &slot.associated_data(),
                },
            )
            .map_err(|_| {
                StorageError::secret(format!(
                    "{} does not decrypt for this row: it was altered or copied from \
                     another row or tenant",
                    slot.column
                ))
            })?;
        String::from_utf8(plain)
            .map_err(|_| StorageError::secret(format!("{}: not UTF-8 once opened", slot.column)))
    }

    /// Whether `stored` is sealed with the current key (nothing to rotate).
    pub fn is_current(&self, stored: &str) -> bool {
        let (id, _) = self.keys.current();
        stored
            .strip_prefix(SEALED_PREFIX)
            .and_then(|rest| rest.strip_prefix(id.as_str()))
            .is_some_and(|rest| rest.starts_with(':'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{SealingKey, StaticKeys};

    fn sealer(id: &str) -> (Sealer, StaticKeys) {
        let keys = StaticKeys::new(KeyId::new(id).unwrap(), SealingKey::generate());
        (Sealer::new(Arc::new(keys.clone())), keys)
    }

    fn tenant() -> TenantId {
        TenantId::generate()
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_slot() {
        let (s, _) = sealer("k1");
        let (t1, t2) = (tenant(), tenant());
        let row = Uuid::now_v7();
        let slot = Slot::tenant("channels.access_token", t1, row);
        let sealed = s.seal(&slot, "EAAG-token").unwrap();
        assert!(sealed.starts_with("nxenc:v1:k1:"));
        assert!(!sealed.contains("EAAG"));
        assert_eq!(s.open(&slot, &sealed).unwrap(), "EAAG-token");
        for other in [
            Slot::tenant("channels.access_token", t2, row),
            Slot::tenant("channels.refresh_token", t1, row),
            Slot::tenant("channels.access_token", t1, Uuid::now_v7()),
            Slot::global("channels.access_token", row),
        ] {
            let err = s.open(&other, &sealed).unwrap_err();
            assert!(matches!(err, StorageError::Secret { .. }), "{err}");
        }
    }

    #[test]
    fn two_seals_of_one_value_differ() {
        let (s, _) = sealer("k1");
        let slot = Slot::global("app_settings.value", "x");
        assert_ne!(s.seal(&slot, "v").unwrap(), s.seal(&slot, "v").unwrap());
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let (old, old_keys) = sealer("k1");
        let slot = Slot::global("app_settings.value", "x");
        let sealed = old.seal(&slot, "v").unwrap();
        let (k1, key1) = (
            KeyId::new("k1").unwrap(),
            old_keys.key(&KeyId::new("k1").unwrap()).unwrap(),
        );
        let both = Sealer::new(Arc::new(
            StaticKeys::new(KeyId::new("k2").unwrap(), SealingKey::generate())
                .with_previous(k1, key1),
        ));
        assert!(!both.is_current(&sealed));
        assert_eq!(both.open(&slot, &sealed).unwrap(), "v");
        let resealed = both.seal(&slot, "v").unwrap();
        assert!(both.is_current(&resealed));
        let (only_new, _) = sealer("k2");
        assert!(
            only_new.open(&slot, &sealed).is_err(),
            "a retired key no longer opens"
        );
    }

    #[test]
    fn malformed_and_plain_values() {
        let (s, _) = sealer("k1");
        let slot = Slot::global("app_settings.value", "x");
        assert_eq!(s.open(&slot, "legacy plain").unwrap(), "legacy plain");
        for bad in [
            "nxenc:v1:",
            "nxenc:v1:k1",
            "nxenc:v1:k1:!!",
            "nxenc:v1:k1:AAAA",
            "nxenc:v1::x",
        ] {
            assert!(s.open(&slot, bad).is_err(), "{bad}");
        }
    }
}
