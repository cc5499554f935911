//! Secrets at rest: the values [`PgStore`](crate::PgStore) stores for access
//! tokens, refresh tokens and settings are sealed with an AEAD
//! (XChaCha20-Poly1305) before they reach the database.
//!
//! - **Keys** come from a [`KeyProvider`]: [`EnvKeyProvider`] reads them from an
//!   environment variable, [`StaticKeys`] holds keys the application loaded
//!   itself (from a KMS, a file, a test). Every key has a [`KeyId`]; the
//!   provider names the current one (new values are sealed with it) and can
//!   still open values sealed with older ones, so keys rotate without a
//!   moment where a read fails: add the new key as current, keep the old one,
//!   run [`PgStore::rotate_keys`](crate::PgStore::rotate_keys), then retire the
//!   old key.
//! - **A sealed value** is text: `nxenc:v1:<key id>:<base64url(nonce ‖
//!   ciphertext ‖ tag)>`, with a random 192-bit nonce per value.
//! - **Associated data** binds a value to where it is stored: table and column,
//!   the tenant, and the row (channel id, or setting key). A value copied to
//!   another row, column or tenant does not decrypt.
//!
//! ```
//! use nexiom_storage::secrets::{KeyId, Sealer, SealingKey, StaticKeys, Slot};
//! use std::sync::Arc;
//!
//! let keys = StaticKeys::new(KeyId::new("2026-11").unwrap(), SealingKey::generate());
//! let sealer = Sealer::new(Arc::new(keys));
//! let slot = Slot::global("app_settings.value", "openai_api_key");
//! let sealed = sealer.seal(&slot, "sk-very-secret").unwrap();
//! assert!(!sealed.contains("sk-very-secret"));
//! assert_eq!(sealer.open(&slot, &sealed).unwrap(), "sk-very-secret");
//! assert!(sealer.open(&Slot::global("app_settings.value", "other"), &sealed).is_err());
//! ```

mod keys;
mod sealer;

pub use keys::{EnvKeyProvider, KeyId, KeyProvider, SealingKey, StaticKeys};
pub use sealer::{SEALED_PREFIX, Sealer, Slot};
