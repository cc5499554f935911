//! [`ApiKeyStore`]: API keys of a tenant's applications, and the token
//! handling both backends share (minting, parsing, hashing, comparing); the
//! trait's documentation says how tokens are kept.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use nexiom_core::{
    API_KEY_SCHEME, API_KEY_TOKEN_LEN, ApiKey, ApiKeyId, IssuedApiKey, NewApiKey, SecretString,
    TenantId,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::{Result, StorageError};

/// API keys of a tenant's applications (see [`ApiKey`]), for a downstream
/// API to authenticate them.
///
/// Tenant-scoped throughout: even [`verify_api_key`](Self::verify_api_key),
/// which takes only a token, reads the tenant from the token and looks at
/// that tenant's keys alone, so it runs under PostgreSQL's `nexiom_app` role
/// like every tenant-scoped operation.
///
/// # Tokens and their hash
///
/// A token is `nxk_<tenant>_<random>` (see [`API_KEY_SCHEME`]): the tenant's
/// id as 32 lower-case hex digits, then 32 bytes from the operating system's
/// random generator in unpadded base64url (43 characters). Storage keeps:
///
/// - `prefix`: `nxk_` and the first 8 characters of the random part (48 bits),
///   shown in lists so a person can tell keys apart;
/// - `hash`: SHA-256 of the whole token.
///
/// A plain SHA-256 is the right hash here, not a password hash (argon2,
/// bcrypt): those are slow on purpose because passwords are guessable, and
/// slowness makes a dictionary attack on a stolen hash expensive. A token's
/// secret is 256 uniformly random bits chosen by the machine; there is no
/// dictionary, and even knowing the prefix leaves 208 unknown bits, far beyond
/// any brute force. A fast hash then costs nothing in safety, and keeps
/// verification (once per request of the downstream API) cheap.
///
/// Verification reads the tenant from the token and looks only at that
/// tenant's keys with the token's prefix (random prefixes of one tenant can
/// collide, so every candidate is compared), comparing hashes in constant time.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Creates a key and returns it with its token, the only time the token
    /// is available (storage keeps its SHA-256). `Invalid` for a bad name;
    /// `UnknownReference` for an unknown tenant; `Unavailable` in the unlikely
    /// event that the operating system's random generator fails.
    async fn create_api_key(&self, new: NewApiKey) -> Result<IssuedApiKey>;

    /// The tenant's keys, revoked ones included, oldest first (`created_at`,
    /// then id). A key shows its prefix, never its token nor its hash.
    async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>>;

    /// Revokes a key as of `at`: it never verifies again. Idempotent: revoking
    /// a revoked key keeps its first `revoked_at` and returns it unchanged.
    /// `NotFound` for an unknown id or another tenant's key.
    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        at: DateTime<Utc>,
    ) -> Result<ApiKey>;

    /// The key `token` belongs to, when it is a tenant's unrevoked key;
    /// `Ok(None)` otherwise. Any input is accepted: a malformed token
    /// (empty, truncated, over-long, non-ASCII, another scheme) and an
    /// unknown or revoked one are all `Ok(None)`, never an error that tells
    /// them apart, never a panic. Errors are the store's own (`Unavailable`…).
    ///
    /// On success the key's `last_used_at` becomes `at` when it was unset or
    /// at least a minute older (a coarse record, not a write per request); the
    /// key is returned as stored afterwards.
    async fn verify_api_key(&self, token: &str, at: DateTime<Utc>) -> Result<Option<ApiKey>>;
}

/// SHA-256 of a whole token.
pub(crate) type TokenHash = [u8; 32];

/// Bytes of randomness in a token.
const RANDOM_BYTES: usize = 32;

/// Characters of the random part (unpadded base64url of [`RANDOM_BYTES`]).
const RANDOM_CHARS: usize = 43;

/// Characters of the tenant's id (a UUID's simple form).
const TENANT_CHARS: usize = 32;

/// Characters of the random part kept in the prefix.
const PREFIX_CHARS: usize = 8;

/// How old `last_used_at` must be before a verification writes it again.
pub(crate) const LAST_USED_RESOLUTION: TimeDelta = TimeDelta::minutes(1);

/// A new token, and what storage keeps of it.
pub(crate) struct Minted {
    /// The full token, for the caller only.
    pub(crate) token: SecretString,
    /// [`API_KEY_SCHEME`] and the start of the random part.
    pub(crate) prefix: String,
    /// SHA-256 of `token`.
    pub(crate) hash: TokenHash,
}

/// A fresh token of `tenant`, from the operating system's generator.
pub(crate) fn mint(tenant: TenantId) -> Result<Minted> {
    let mut random = [0u8; RANDOM_BYTES];
    getrandom::fill(&mut random).map_err(|e| StorageError::Unavailable {
        message: format!("the operating system's random generator failed: {e}"),
        source: Some(Box::new(e)),
    })?;
    let encoded = URL_SAFE_NO_PAD.encode(random);
    let token = format!("{API_KEY_SCHEME}{}_{encoded}", tenant.as_uuid().simple());
    let prefix = prefix_of(&encoded)
        .ok_or_else(|| StorageError::backend("an API key's random part is too short"))?;
    let hash = hash(&token);
    Ok(Minted {
        token: SecretString::new(token),
        prefix,
        hash,
    })
}

/// A well-formed token, as verification needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Presented {
    /// The tenant named in the token.
    pub(crate) tenant: TenantId,
    /// The prefix its key would be stored with.
    pub(crate) prefix: String,
    /// SHA-256 of the whole token.
    pub(crate) hash: TokenHash,
}

/// `token` read as an API key token, or `None` when it does not have the
/// exact form (length, scheme, lower-case hex tenant, `_`, base64url random
/// part). Works on bytes and never panics, whatever the input.
pub(crate) fn parse(token: &str) -> Option<Presented> {
    let bytes = token.as_bytes();
    if bytes.len() != API_KEY_TOKEN_LEN {
        return None;
    }
    let rest = bytes.strip_prefix(API_KEY_SCHEME.as_bytes())?;
    let (tenant, rest) = rest.split_at_checked(TENANT_CHARS)?;
    let random = rest.strip_prefix(b"_")?;
    if random.len() != RANDOM_CHARS
        || !tenant
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        || !random
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        return None;
    }
    let tenant = Uuid::try_parse_ascii(tenant).ok()?;
    let prefix = prefix_of(std::str::from_utf8(random).ok()?)?;
    Some(Presented {
        tenant: TenantId::from_uuid(tenant),
        prefix,
        hash: hash(token),
    })
}

/// The stored prefix of a token whose random part is `random`.
fn prefix_of(random: &str) -> Option<String> {
    random
        .get(..PREFIX_CHARS)
        .map(|start| format!("{API_KEY_SCHEME}{start}"))
}

/// SHA-256 of `token`.
fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether a stored hash is the presented one, compared in constant time (a
/// stored value of another length never matches).
pub(crate) fn hash_matches(stored: &[u8], presented: &TokenHash) -> bool {
    stored.ct_eq(presented.as_slice()).into()
}

/// Whether a verification at `at` should record itself: `last_used_at` is
/// unset or at least [`LAST_USED_RESOLUTION`] older (never moved backwards).
pub(crate) fn needs_touch(last_used_at: Option<DateTime<Utc>>, at: DateTime<Utc>) -> bool {
    last_used_at.is_none_or(|last| at.signed_duration_since(last) >= LAST_USED_RESOLUTION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use crate::traits::TenantStore;
    use nexiom_core::NewTenant;
    use proptest::prelude::*;

    fn tenant() -> TenantId {
        TenantId::generate()
    }

    #[test]
    fn minted_tokens_parse_back() {
        let t = tenant();
        let minted = mint(t).expect("mint");
        let token = minted.token.expose();
        assert_eq!(token.len(), API_KEY_TOKEN_LEN);
        assert!(token.starts_with(&format!("nxk_{}_", t.as_uuid().simple())));
        assert_eq!(minted.prefix.len(), 4 + PREFIX_CHARS);
        assert!(token[37..].starts_with(&minted.prefix[4..]));
        let presented = parse(token).expect("well formed");
        assert_eq!(presented.tenant, t);
        assert_eq!(presented.prefix, minted.prefix);
        assert!(hash_matches(&minted.hash, &presented.hash));
        assert!(!hash_matches(&minted.hash[..31], &presented.hash));
        let other = mint(t).expect("mint");
        assert_ne!(other.token, minted.token);
        assert!(!hash_matches(&other.hash, &presented.hash));
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let t = tenant();
        let token = mint(t).expect("mint").token.expose().to_owned();
        let upper = format!(
            "nxk_{}{}",
            t.as_uuid().simple().to_string().to_uppercase(),
            &token[36..]
        );
        let mut bad = vec![
            String::new(),
            "nxk_".into(),
            token[..79].into(),
            format!("{token}A"),
            token.replacen("nxk_", "nxz_", 1),
            token.replacen('_', "-", 2),
            upper,
            format!("{}=", &token[..79]),
            format!("{}é", &token[..78]),
            format!("{}+", &token[..79]),
            "x".repeat(1 << 20),
        ];
        bad.push(format!("{}\u{e9}{}", &token[..40], &token[42..]));
        for b in &bad {
            assert_eq!(parse(b), None, "{b:.100}");
        }
    }

    #[test]
    fn last_use_is_recorded_once_a_minute_and_never_backwards() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        assert!(needs_touch(None, t0));
        assert!(!needs_touch(Some(t0), t0 + TimeDelta::seconds(59)));
        assert!(needs_touch(Some(t0), t0 + TimeDelta::seconds(60)));
        assert!(!needs_touch(Some(t0), t0 - TimeDelta::hours(1)));
        assert!(!needs_touch(
            Some(DateTime::<Utc>::MAX_UTC),
            DateTime::<Utc>::MIN_UTC
        ));
        assert!(needs_touch(
            Some(DateTime::<Utc>::MIN_UTC),
            DateTime::<Utc>::MAX_UTC
        ));
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    /// A store with one tenant and one key, and the key's token.
    fn store_with_key(rt: &tokio::runtime::Runtime) -> (MemoryStore, String) {
        rt.block_on(async {
            let store = MemoryStore::new();
            let at = DateTime::<Utc>::UNIX_EPOCH;
            let tenant = store
                .create_tenant(NewTenant::new("Acme", at))
                .await
                .expect("tenant");
            let issued = store
                .create_api_key(NewApiKey::new(tenant.id, "ci", at))
                .await
                .expect("key");
            (store, issued.secret.expose().to_owned())
        })
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = parse(&s);
        }

        #[test]
        fn well_shaped_strings_parse(
            tenant in "[0-9a-f]{32}",
            random in "[A-Za-z0-9_-]{43}",
        ) {
            let token = format!("nxk_{tenant}_{random}");
            let presented = parse(&token);
            prop_assert!(presented.is_some());
        }

        #[test]
        fn verify_never_panics_and_refuses_every_other_string(
            s in any::<String>(),
            shaped in "nxk_[0-9a-f]{32}_[A-Za-z0-9_-]{43}",
            at in any::<i64>(),
            index in 0..API_KEY_TOKEN_LEN,
            replacement in any::<char>(),
        ) {
            let rt = runtime();
            let (store, token) = store_with_key(&rt);
            let at = DateTime::<Utc>::from_timestamp_millis(at / 1000)
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
            // One character of the real token replaced.
            let mut mutated: String = token.chars().take(index).collect();
            mutated.push(replacement);
            mutated.extend(token.chars().skip(index + 1));
            rt.block_on(async {
                for candidate in [s.as_str(), shaped.as_str(), mutated.as_str()] {
                    let found = store.verify_api_key(candidate, at).await;
                    let found = found.map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(found.is_some(), candidate == token);
                }
                Ok(())
            })?;
        }
    }
}
