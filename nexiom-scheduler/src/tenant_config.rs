//! [`TenantConfigs`]: each tenant's [`TenantSettings`] read through one typed
//! API, validated on write, cached for a short time.
//!
//! - **Reads** return the tenant's saved settings, or the defaults the
//!   application gave ([`TenantConfigs::with_defaults`]) for a tenant that
//!   never saved any. A read is served from the cache for [`DEFAULT_TTL`]
//!   (configurable), so a busy worker does not read the store per item;
//!   another process's write is seen within that time.
//! - **Writes** ([`TenantConfigs::update`]) read the current settings,
//!   apply the change, validate, store, and drop the tenant's cache entry in
//!   this process.
//! - **Secrets** (an API key of the tenant's own) go through
//!   [`TenantConfigs::set_secret`]: stored sealed, never part of
//!   [`TenantSettings`], so no read of the settings returns them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nexiom_core::{Clock, SecretString, TenantId, TenantSettings};
use nexiom_storage::{StorageError, Store};

/// Whether `tenant` switched `worker` off in its settings (read uncached;
/// a failed read counts as not switched off, so a settings outage never
/// stops the work of every tenant).
pub(crate) async fn switched_off(store: &dyn Store, tenant: TenantId, worker: &str) -> bool {
    store
        .get_tenant_settings(tenant)
        .await
        .ok()
        .flatten()
        .is_some_and(|s| !s.worker_enabled(worker, true))
}

/// How long a read is served from the cache.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// Cached settings (when each was read, and the settings), and a generation
/// per tenant that every invalidation bumps, so that a read that started
/// before a write never caches what it read.
#[derive(Default)]
struct Cache {
    entries: HashMap<TenantId, (Instant, Arc<TenantSettings>)>,
    generations: HashMap<TenantId, u64>,
}

/// Per-tenant settings with a short-lived cache. Cheap to clone (the cache is
/// shared).
#[derive(Clone)]
pub struct TenantConfigs {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    defaults: Arc<TenantSettings>,
    ttl: Duration,
    cache: Arc<Mutex<Cache>>,
}

impl std::fmt::Debug for TenantConfigs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantConfigs")
            .field("defaults", &self.defaults)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TenantConfigs {
    /// Settings of `store`'s tenants, [`TenantSettings::default`] for those
    /// that saved none, cached for [`DEFAULT_TTL`].
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        TenantConfigs {
            store,
            clock,
            defaults: Arc::new(TenantSettings::default()),
            ttl: DEFAULT_TTL,
            cache: Arc::default(),
        }
    }

    /// The same with other defaults for tenants that saved no settings (the
    /// cache stays shared with the clones; what it held is dropped).
    pub fn with_defaults(mut self, defaults: TenantSettings) -> Self {
        self.defaults = Arc::new(defaults);
        let mut cache = self.lock();
        let tenants: Vec<TenantId> = cache.entries.keys().copied().collect();
        for tenant in tenants {
            *cache.generations.entry(tenant).or_insert(0) += 1;
        }
        cache.entries.clear();
        drop(cache);
        self
    }

    /// The same with another cache lifetime (zero: no cache).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The defaults for tenants that saved no settings.
    pub fn defaults(&self) -> &TenantSettings {
        &self.defaults
    }

    /// The tenant's settings (cached). `NotFound` for an unknown tenant.
    pub async fn get(&self, tenant: TenantId) -> Result<Arc<TenantSettings>, StorageError> {
        let generation = {
            let cache = self.lock();
            if let Some((at, settings)) = cache.entries.get(&tenant)
                && at.elapsed() < self.ttl
            {
                return Ok(Arc::clone(settings));
            }
            cache.generations.get(&tenant).copied().unwrap_or(0)
        };
        let settings = Arc::new(
            self.store
                .get_tenant_settings(tenant)
                .await?
                .unwrap_or_else(|| TenantSettings::clone(&self.defaults)),
        );
        let mut cache = self.lock();
        // Not cached when the tenant was invalidated while this read ran.
        if !self.ttl.is_zero() && cache.generations.get(&tenant).copied().unwrap_or(0) == generation
        {
            cache
                .entries
                .insert(tenant, (Instant::now(), Arc::clone(&settings)));
        }
        Ok(settings)
    }

    /// Changes the tenant's settings with `change`, validates and stores
    /// them, and drops the cached copy. `Invalid` (nothing written) when the
    /// result does not validate. A read-modify-write: two concurrent updates
    /// of one tenant may lose one; callers that edit settings from several
    /// places at once should serialize them.
    pub async fn update(
        &self,
        tenant: TenantId,
        change: impl FnOnce(&mut TenantSettings),
    ) -> Result<TenantSettings, StorageError> {
        let mut settings = self
            .store
            .get_tenant_settings(tenant)
            .await?
            .unwrap_or_else(|| TenantSettings::clone(&self.defaults));
        change(&mut settings);
        self.store
            .put_tenant_settings(tenant, &settings, self.clock.now())
            .await?;
        self.invalidate(tenant);
        Ok(settings)
    }

    /// Stores a secret setting of the tenant (sealed on Postgres).
    pub async fn set_secret(
        &self,
        tenant: TenantId,
        key: &str,
        value: SecretString,
    ) -> Result<(), StorageError> {
        self.store
            .set_tenant_secret(tenant, key, value, self.clock.now())
            .await
    }

    /// One secret setting, for the code that uses it.
    pub async fn secret(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> Result<Option<SecretString>, StorageError> {
        self.store.get_tenant_secret(tenant, key).await
    }

    /// Whether `worker` runs for `tenant`: the tenant's override, else the
    /// worker's global flag (`global_default` when it has none).
    pub async fn worker_enabled(
        &self,
        tenant: TenantId,
        worker: &str,
        global_default: bool,
    ) -> Result<bool, StorageError> {
        let global = self
            .store
            .get_worker_flag(worker)
            .await?
            .map_or(global_default, |f| f.enabled);
        Ok(self.get(tenant).await?.worker_enabled(worker, global))
    }

    /// Drops the tenant's cached settings in this process.
    pub fn invalidate(&self, tenant: TenantId) {
        let mut cache = self.lock();
        cache.entries.remove(&tenant);
        *cache.generations.entry(tenant).or_insert(0) += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
