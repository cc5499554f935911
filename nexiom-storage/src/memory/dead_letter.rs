//! Dead letters.

use std::collections::HashSet;

use async_trait::async_trait;
use nexiom_core::{DeadLetter, DeadLetterId, Inserted, NewDeadLetter, TenantId};

use super::{Inner, MemoryStore, limit_len, require_ref};
use crate::dead_letters::{DeadLetterStore, other_tenants};
use crate::error::Result;

impl Inner {
    fn insert_dead_letter(&mut self, new: NewDeadLetter) -> Result<Inserted<DeadLetter>> {
        new.validate()?;
        if let Some(tenant) = new.tenant_id {
            self.require_tenant(tenant)?;
            if let Some(channel) = new.channel_id {
                require_ref(&self.channels, tenant, &channel, "channel")?;
            }
        }
        let key = (new.platform.clone(), new.key.clone());
        if let Some(existing) = self
            .dead_letter_by_key
            .get(&key)
            .and_then(|id| self.dead_letters.get(id))
        {
            return other_tenants(existing.clone(), new.tenant_id).map(Inserted::existing);
        }
        let row = DeadLetter {
            id: DeadLetterId::generate(),
            platform: new.platform,
            tenant_id: new.tenant_id,
            channel_id: new.channel_id,
            key: new.key,
            excerpt: new.excerpt,
            reason: new.reason,
            received_at: new.received_at,
        };
        self.dead_letter_by_key.insert(key, row.id);
        self.dead_letters.insert(row.id, row.clone());
        Ok(Inserted::created(row))
    }

    fn list_dead_letters(&self, tenant: Option<TenantId>, limit: u32) -> Vec<DeadLetter> {
        let mut rows: Vec<&DeadLetter> = self
            .dead_letters
            .values()
            .filter(|d| tenant.is_none() || d.tenant_id == tenant)
            .collect();
        rows.sort_by_key(|d| std::cmp::Reverse((d.received_at, d.id)));
        rows.into_iter().take(limit_len(limit)).cloned().collect()
    }
}

#[async_trait]
impl DeadLetterStore for MemoryStore {
    async fn insert_dead_letter(&self, new: NewDeadLetter) -> Result<Inserted<DeadLetter>> {
        self.lock().insert_dead_letter(new)
    }

    async fn insert_dead_letters(&self, letters: &[NewDeadLetter]) -> Result<u64> {
        for letter in letters {
            letter.validate()?;
        }
        // A key given twice: the first one, whatever the later ones name.
        let mut seen = HashSet::new();
        let letters: Vec<&NewDeadLetter> = letters
            .iter()
            .filter(|l| seen.insert((l.platform.as_str(), l.key.as_str())))
            .collect();
        // Under one lock, every reference checked before any letter is
        // written: all or nothing.
        let mut inner = self.lock();
        for letter in &letters {
            if let Some(tenant) = letter.tenant_id {
                inner.require_tenant(tenant)?;
                if let Some(channel) = letter.channel_id {
                    require_ref(&inner.channels, tenant, &channel, "channel")?;
                }
            }
        }
        let mut created = 0;
        for letter in letters {
            // A key another tenant's letter holds: stored already, not
            // created (as `ON CONFLICT DO NOTHING` on Postgres), never a
            // failure of the body's other letters.
            match inner.insert_dead_letter((*letter).clone()) {
                Ok(inserted) => created += u64::from(inserted.created),
                Err(crate::StorageError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(created)
    }

    async fn list_dead_letters(
        &self,
        tenant: Option<TenantId>,
        limit: u32,
    ) -> Result<Vec<DeadLetter>> {
        Ok(self.lock().list_dead_letters(tenant, limit))
    }
}
