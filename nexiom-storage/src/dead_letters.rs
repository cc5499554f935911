//! [`DeadLetterStore`]: webhook events that were acknowledged but could not be
//! read or stored, kept raw for a person to see.

use async_trait::async_trait;
use nexiom_core::{DeadLetter, Inserted, NewDeadLetter, TenantId};

use crate::error::Result;

/// Dead letters (see [`DeadLetter`]).
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    /// Stores a dead letter, insert-if-absent on `(platform, key)`: a
    /// redelivery of the same event returns the stored row with
    /// `created == false` and changes nothing. `Invalid` for a bad input;
    /// `UnknownReference` for an unknown tenant, or a channel that is not the
    /// tenant's.
    async fn insert_dead_letter(&self, new: NewDeadLetter) -> Result<Inserted<DeadLetter>>;

    /// Stores many dead letters (a webhook body's), each insert-if-absent on
    /// `(platform, key)` as [`insert_dead_letter`](Self::insert_dead_letter),
    /// a key given twice stored once (the first given); returns how many were created. Every
    /// letter is checked first (`Invalid`: nothing stored), then the letters
    /// are written one statement per tenant (and one for those without a
    /// tenant): an `UnknownReference` (an unknown tenant, a channel not the
    /// tenant's) may leave other tenants' letters written, and a call again
    /// with the same letters writes the rest. The default writes them one
    /// at a time.
    async fn insert_dead_letters(&self, letters: Vec<NewDeadLetter>) -> Result<u64> {
        for letter in &letters {
            letter.validate()?;
        }
        let mut created = 0;
        for letter in letters {
            created += u64::from(self.insert_dead_letter(letter).await?.created);
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
