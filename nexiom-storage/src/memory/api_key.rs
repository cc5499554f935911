//! API keys.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{ApiKey, ApiKeyId, IssuedApiKey, NewApiKey, TenantId};

use super::{Inner, MemoryStore, Owned, get_scoped_mut};
use crate::api_keys::{
    ApiKeyStore, Minted, Presented, TokenHash, hash_matches, mint, needs_touch, parse,
};
use crate::error::Result;

/// A key and the SHA-256 of its token.
pub(super) struct StoredApiKey {
    key: ApiKey,
    hash: TokenHash,
}

impl Owned for StoredApiKey {
    fn owner(&self) -> TenantId {
        self.key.tenant_id
    }
}

impl Inner {
    fn create_api_key(&mut self, new: NewApiKey, minted: Minted) -> Result<IssuedApiKey> {
        new.validate()?;
        self.require_tenant(new.tenant_id)?;
        let key = ApiKey {
            id: ApiKeyId::generate(),
            tenant_id: new.tenant_id,
            name: new.name,
            prefix: minted.prefix,
            created_at: new.created_at,
            revoked_at: None,
            last_used_at: None,
        };
        self.api_keys_by_prefix
            .entry((key.tenant_id, key.prefix.clone()))
            .or_default()
            .push(key.id);
        self.api_keys.insert(
            key.id,
            StoredApiKey {
                key: key.clone(),
                hash: minted.hash,
            },
        );
        Ok(IssuedApiKey {
            key,
            secret: minted.token,
        })
    }

    fn list_api_keys(&self, tenant: TenantId) -> Vec<ApiKey> {
        let mut keys: Vec<ApiKey> = self
            .api_keys
            .values()
            .filter(|k| k.key.tenant_id == tenant)
            .map(|k| k.key.clone())
            .collect();
        keys.sort_by_key(|k| (k.created_at, k.id));
        keys
    }

    fn revoke_api_key(
        &mut self,
        tenant: TenantId,
        id: ApiKeyId,
        at: DateTime<Utc>,
    ) -> Result<ApiKey> {
        let stored = get_scoped_mut(&mut self.api_keys, tenant, &id, "api_key")?;
        stored.key.revoked_at.get_or_insert(at);
        Ok(stored.key.clone())
    }

    fn verify_api_key(&mut self, presented: &Presented, at: DateTime<Utc>) -> Option<ApiKey> {
        let candidates = self
            .api_keys_by_prefix
            .get(&(presented.tenant, presented.prefix.clone()))?;
        let id = candidates.iter().copied().find(|id| {
            self.api_keys
                .get(id)
                .is_some_and(|k| hash_matches(&k.hash, &presented.hash))
        })?;
        let stored = self.api_keys.get_mut(&id)?;
        if stored.key.tenant_id != presented.tenant || stored.key.is_revoked() {
            return None;
        }
        if needs_touch(stored.key.last_used_at, at) {
            stored.key.last_used_at = Some(at);
        }
        Some(stored.key.clone())
    }
}

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn create_api_key(&self, new: NewApiKey) -> Result<IssuedApiKey> {
        new.validate()?;
        let minted = mint(new.tenant_id)?;
        self.lock().create_api_key(new, minted)
    }

    async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>> {
        Ok(self.lock().list_api_keys(tenant))
    }

    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        at: DateTime<Utc>,
    ) -> Result<ApiKey> {
        self.lock().revoke_api_key(tenant, id, at)
    }

    async fn verify_api_key(&self, token: &str, at: DateTime<Utc>) -> Result<Option<ApiKey>> {
        // Hashed before the lock is taken.
        let Some(presented) = parse(token) else {
            return Ok(None);
        };
        Ok(self.lock().verify_api_key(&presented, at))
    }
}
