//! [`DeadLetterStore`]: webhook events that were acknowledged but could not be
//! read or stored, kept raw for a person to see.

use async_trait::async_trait;
use nexiom_core::{DeadLetter, Inserted, NewDeadLetter, TenantId};

use crate::error::{Result, StorageError};

/// Dead letters (see [`DeadLetter`]).
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    /// Stores a dead letter, insert-if-absent on `(platform, key)`: a
    /// redelivery of the same event returns the stored row with
    /// `created == false` and changes nothing. `Invalid` for a bad input;
    /// `UnknownReference` for an unknown tenant, or a channel that is not the
    /// tenant's; `Conflict` when the key is held by another tenant's letter
    /// (never returned to this one).
    async fn insert_dead_letter(&self, new: NewDeadLetter) -> Result<Inserted<DeadLetter>>;

    /// Stores many dead letters (a webhook body's), each insert-if-absent on
    /// `(platform, key)` as [`insert_dead_letter`](Self::insert_dead_letter),
    /// a key given twice stored once (the first given); returns how many
    /// were created. The call is refused whole before anything is written:
    /// `Invalid` for a bad letter, `UnknownReference` for an unknown tenant
    /// or a channel that is not the letter's tenant's. The letters are then
    /// written one statement per tenant (and one for those without a
    /// tenant), so a failure of the store part-way (or, on PostgreSQL, a
    /// channel deleted by another session in between) may leave some
    /// written: a call again with the same letters writes the rest. The default
    /// implementation checks each letter, then writes them one at a time
    /// with `insert_dead_letter` (so an `UnknownReference` may leave the
    /// letters before it written); the two stores of this crate refuse the
    /// call whole as described.
    async fn insert_dead_letters(&self, letters: &[NewDeadLetter]) -> Result<u64> {
        for letter in letters {
            letter.validate()?;
        }
        let mut created = 0;
        for letter in letters {
            created += u64::from(self.insert_dead_letter(letter.clone()).await?.created);
        }
        Ok(created)
    }

    /// Dead letters, newest first (`received_at`, then id, descending), at most
    /// `limit`: of one tenant, or all of them (also those with no tenant) when
    /// `tenant` is `None` (an operator's view; it spans tenants).
    async fn list_dead_letters(
        &self,
        tenant: Option<TenantId>,
        limit: u32,
    ) -> Result<Vec<DeadLetter>>;
}

/// The stored letter holding a key, as a caller naming `tenant` may see it:
/// another tenant's letter is a `Conflict`, never handed over (a letter with
/// no tenant, or a caller with none, the worker's, is).
pub(crate) fn other_tenants(existing: DeadLetter, tenant: Option<TenantId>) -> Result<DeadLetter> {
    match (existing.tenant_id, tenant) {
        (Some(holder), Some(caller)) if holder != caller => Err(StorageError::conflict(
            "dead_letter",
            format!("{}/{} is another tenant's", existing.platform, existing.key),
        )),
        _ => Ok(existing),
    }
}
