//! Keys: [`KeyId`], [`SealingKey`], the [`KeyProvider`] trait and its two
//! built-in implementations.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{KeyInit, OsRng};
use chacha20poly1305::{Key, XChaCha20Poly1305};
use zeroize::Zeroizing;

use crate::error::{Result, StorageError};

/// The name of a key, stored with every value sealed with it: 1 to 32
/// characters of `A-Z a-z 0-9 _ - .` (for example `2026-11`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// A key id, refused unless it is 1 to 32 characters of
    /// `A-Z a-z 0-9 _ - .`.
    pub fn new(id: impl Into<String>) -> Result<KeyId> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= 32
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Ok(KeyId(id))
        } else {
            // The rejected text is not echoed: it may be a key pasted in the
            // wrong place (`base64key:id`), and errors end up in logs.
            Err(StorageError::secret(format!(
                "a key id ({} characters) is not 1 to 32 characters of A-Z a-z 0-9 _ - . \
                 (entries are `id:base64key`)",
                id.chars().count()
            )))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 256-bit key. `Debug` is redacted; the bytes are wiped when dropped.
#[derive(Clone)]
pub struct SealingKey(Zeroizing<[u8; 32]>);

impl SealingKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> SealingKey {
        SealingKey(Zeroizing::new(bytes))
    }

    /// A key from standard base64 of 32 bytes (as `openssl rand -base64 32`
    /// prints).
    pub fn from_base64(text: &str) -> Result<SealingKey> {
        let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| {
            StorageError::secret("a key is not valid base64 (expected 32 bytes, base64-encoded)")
        })?);
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            StorageError::secret(format!(
                "a key has {} bytes; keys are 32 bytes (openssl rand -base64 32)",
                bytes.len()
            ))
        })?;
        Ok(SealingKey::from_bytes(array))
    }

    /// A fresh random key from the operating system's generator.
    pub fn generate() -> SealingKey {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        SealingKey::from_bytes(key.into())
    }

    pub(super) fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(self.0.as_slice()))
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey([redacted])")
    }
}

/// Where the keys come from. The current key seals new values; any key the
/// provider still returns from [`KeyProvider::key`] opens old ones.
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// The key new values are sealed with, and its id.
    fn current(&self) -> (KeyId, SealingKey);

    /// The key named `id`, if it is still available.
    fn key(&self, id: &KeyId) -> Option<SealingKey>;
}

/// Keys held in memory: a current key and any number of older ones.
#[derive(Debug, Clone)]
pub struct StaticKeys {
    current: KeyId,
    current_key: SealingKey,
    keys: HashMap<KeyId, SealingKey>,
}

impl StaticKeys {
    /// One key, current.
    pub fn new(id: KeyId, key: SealingKey) -> StaticKeys {
        StaticKeys {
            current: id.clone(),
            current_key: key.clone(),
            keys: HashMap::from([(id, key)]),
        }
    }

    /// Adds an older key that still opens values (it does not seal new ones).
    pub fn with_previous(mut self, id: KeyId, key: SealingKey) -> StaticKeys {
        self.keys.entry(id).or_insert(key);
        self
    }

    /// The id of the current key.
    pub fn current_id(&self) -> &KeyId {
        &self.current
    }
}

impl KeyProvider for StaticKeys {
    fn current(&self) -> (KeyId, SealingKey) {
        (self.current.clone(), self.current_key.clone())
    }

    fn key(&self, id: &KeyId) -> Option<SealingKey> {
        self.keys.get(id).cloned()
    }
}

/// Keys read once from an environment variable (by default
/// [`EnvKeyProvider::VARIABLE`]): a comma-separated list of `id:base64key`,
/// the first one current, the others older keys that still open values:
///
/// ```text
/// NEXIOM_SECRET_KEYS="2026-11:q0d1…=,2026-05:Zm9v…="
/// ```
#[derive(Debug, Clone)]
pub struct EnvKeyProvider {
    keys: StaticKeys,
}

impl EnvKeyProvider {
    /// The default variable.
    pub const VARIABLE: &'static str = "NEXIOM_SECRET_KEYS";

    /// Reads [`EnvKeyProvider::VARIABLE`].
    pub fn from_env() -> Result<EnvKeyProvider> {
        Self::from_var(Self::VARIABLE)
    }

    /// Reads the variable `name`.
    pub fn from_var(name: &str) -> Result<EnvKeyProvider> {
        let value = Zeroizing::new(std::env::var(name).map_err(|_| {
            StorageError::secret(format!(
                "{name} is not set: set it to `id:base64key` (32 random bytes, for \
                 example `2026-11:$(openssl rand -base64 32)`)"
            ))
        })?);
        Self::parse(&value).map_err(|e| StorageError::secret(format!("{name}: {e}")))
    }

    /// Parses `id:base64key[,id:base64key…]`, the first key current.
    pub fn parse(value: &str) -> Result<EnvKeyProvider> {
        let mut keys: Option<StaticKeys> = None;
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, key) = entry
                .split_once(':')
                .ok_or_else(|| StorageError::secret("an entry is not `id:base64key`".to_owned()))?;
            let id = KeyId::new(id)?;
            let key = SealingKey::from_base64(key)?;
            keys = Some(match keys {
                None => StaticKeys::new(id, key),
                Some(k) if k.keys.contains_key(&id) => {
                    return Err(StorageError::secret(format!("key id {id} appears twice")));
                }
                Some(k) => k.with_previous(id, key),
            });
        }
        keys.map(|keys| EnvKeyProvider { keys })
            .ok_or_else(|| StorageError::secret("no key given"))
    }
}

impl KeyProvider for EnvKeyProvider {
    fn current(&self) -> (KeyId, SealingKey) {
        self.keys.current()
    }

    fn key(&self, id: &KeyId) -> Option<SealingKey> {
        self.keys.key(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_checked() {
        assert!(KeyId::new("2026-11").is_ok());
        assert!(KeyId::new("a.b_c-D9").is_ok());
        assert!(KeyId::new("").is_err());
        assert!(KeyId::new("with:colon").is_err());
        assert!(KeyId::new("x".repeat(33)).is_err());
    }

    #[test]
    fn env_lists_parse_first_current() {
        let k1 = STANDARD.encode([1u8; 32]);
        let k2 = STANDARD.encode([2u8; 32]);
        let p = EnvKeyProvider::parse(&format!("new:{k2}, old:{k1}")).unwrap();
        assert_eq!(p.current().0.as_str(), "new");
        assert!(p.key(&KeyId::new("old").unwrap()).is_some());
        assert!(p.key(&KeyId::new("other").unwrap()).is_none());
    }

    #[test]
    fn bad_env_lists_are_refused_with_a_reason() {
        let k = STANDARD.encode([1u8; 32]);
        for bad in [
            String::new(),
            "nocolon".to_owned(),
            format!("a:{k},a:{k}"),
            "a:not base64!".to_owned(),
            format!("a:{}", STANDARD.encode([1u8; 16])),
        ] {
            let err = EnvKeyProvider::parse(&bad).unwrap_err();
            assert!(matches!(err, StorageError::Secret { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn a_key_in_the_id_place_is_not_echoed() {
        let k = STANDARD.encode([7u8; 32]);
        let err = EnvKeyProvider::parse(&format!("{k}:2026-11")).unwrap_err();
        assert!(!err.to_string().contains(&k[..20]), "{err}");
    }

    #[test]
    fn keys_do_not_print() {
        let key = SealingKey::generate();
        assert_eq!(format!("{key:?}"), "SealingKey([redacted])");
    }
}
