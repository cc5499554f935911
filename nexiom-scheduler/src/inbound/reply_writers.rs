//! What the lanes of one auto-reply batch share, the two writers that put
//! the batch's reply claims and settlements into the store in batches
//! ([`ReplyBatchStore`](nexiom_storage::ReplyBatchStore)), and the heartbeat
//! that renews the batch's leases.
//!
//! The lease the batch holds its items under moves with each renewal; the
//! writers read it under a shared lock and the heartbeat moves it under the
//! exclusive one, so a write never carries a lease the database no longer
//! has. An item leaves the unsettled set (the heartbeat's list) only once its
//! settlement is written.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use nexiom_core::{ChannelId, DecisionSubject, ReplyOutcome, TenantId};
use nexiom_storage::{ReplyAnswer, ReplyClaim, ReplyClaimed, ReplySettlement, StorageError};
use tokio::sync::{RwLock, mpsc};

use super::InboundPipeline;
use super::auto_reply::AutoReplyReport;
use super::reply_turn::ClaimRequest;
use crate::held_lease::HeldLease;

/// At most this many items per write.
const WRITE_CHUNK: usize = 1_000;

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One item's settlement, before the writer adds the batch's lease.
pub(super) struct Settle {
    pub(super) tenant: TenantId,
    pub(super) subject: DecisionSubject,
    pub(super) answer: Option<ReplyAnswer>,
    pub(super) outcome: ReplyOutcome,
}

/// What the lanes and writers of one batch share.
pub(super) struct Batch {
    pub(super) report: Mutex<AutoReplyReport>,
    /// The claimed items not settled yet (the heartbeat renews their leases).
    pub(super) unsettled: Mutex<HashSet<DecisionSubject>>,
    /// Channels that asked to wait, until when.
    holds: Mutex<HashMap<ChannelId, DateTime<Utc>>>,
    /// The `lease_until` the batch holds its unsettled items under.
    lease: RwLock<HeldLease>,
}

impl Batch {
    pub(super) fn new(held_until: DateTime<Utc>) -> Self {
        Batch {
            report: Mutex::default(),
            unsettled: Mutex::default(),
            holds: Mutex::default(),
            lease: RwLock::new(HeldLease::new(held_until)),
        }
    }

    pub(super) fn add(&self, tally: &AutoReplyReport) {
        lock(&self.report).merge(tally);
    }

    pub(super) fn hold_of(&self, channel: ChannelId, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        lock(&self.holds)
            .get(&channel)
            .copied()
            .filter(|until| *until > now)
    }

    pub(super) fn hold(&self, channel: ChannelId, until: DateTime<Utc>) {
        let mut holds = lock(&self.holds);
        let held = holds.entry(channel).or_insert(until);
        *held = (*held).max(until);
    }
}

/// The same failure for each item of a failed write.
fn shared(err: &StorageError) -> String {
    err.to_string()
}

impl InboundPipeline {
    /// Claims every reply asked for while the previous write ran, in one
    /// batch, and answers each ask. When the batch fails, each ask is tried on
    /// its own, so one bad row fails only its item.
    pub(super) async fn claim_writer(
        &self,
        mut rx: mpsc::UnboundedReceiver<ClaimRequest>,
        batch: &Batch,
    ) {
        let mut waiting = Vec::new();
        while rx.recv_many(&mut waiting, WRITE_CHUNK).await > 0 {
            let lease = batch.lease.read().await;
            let (claims, answers): (Vec<ReplyClaim>, Vec<_>) = waiting
                .drain(..)
                .map(|(ask, answer)| {
                    let claim = ReplyClaim {
                        tenant_id: ask.tenant,
                        subject: ask.subject,
                        lease_until: lease.current(),
                        text: ask.text,
                        at: ask.at,
                    };
                    (claim, answer)
                })
                .unzip();
            let mut claimed: Vec<Result<ReplyClaimed, String>> = match self
                .store
                .claim_replies(&claims)
                .await
            {
                Ok(claimed) => claimed.into_iter().map(Ok).collect(),
                Err(error) => {
                    tracing::warn!(%error, replies = claims.len(), "claiming a batch of replies failed; each is tried alone");
                    let mut each = Vec::with_capacity(claims.len());
                    for claim in &claims {
                        each.push(
                            self.store
                                .claim_replies(std::slice::from_ref(claim))
                                .await
                                .map_err(|e| shared(&e))
                                .and_then(|mut c| {
                                    c.pop().ok_or_else(|| "no answer for the claim".to_owned())
                                }),
                        );
                    }
                    each
                }
            };
            // A claim the held lease value missed is tried under each value a
            // lost renewal may have written, whichever way it was first made.
            under_candidates(
                &lease,
                &claims,
                &mut claimed,
                |c| matches!(c, Ok(ReplyClaimed::LeaseLost)),
                |c, lease_until| ReplyClaim {
                    lease_until,
                    ..c.clone()
                },
                |again| async move {
                    let claimed = self.store.claim_replies(&again).await?;
                    Ok(claimed.into_iter().map(Ok).collect())
                },
            )
            .await;
            for (answer, claimed) in answers.into_iter().zip(claimed) {
                let _ = answer.send(claimed);
            }
            drop(lease);
        }
    }

    /// Writes every settlement that arrived while the previous write ran, in
    /// one batch (alone each when the batch fails); an outcome not applied
    /// because the item's lease moved on counts in `lease_lost`. A
    /// settlement that cannot be written leaves the item `sending` until its
    /// lease ends; the next claim settles it from its stored reply, never by
    /// sending again.
    pub(super) async fn settle_writer(
        &self,
        mut rx: mpsc::UnboundedReceiver<Settle>,
        batch: &Batch,
    ) {
        let mut waiting = Vec::new();
        while rx.recv_many(&mut waiting, WRITE_CHUNK).await > 0 {
            let lease = batch.lease.read().await;
            let settlements: Vec<ReplySettlement> = waiting
                .drain(..)
                .map(|s| ReplySettlement {
                    tenant_id: s.tenant,
                    subject: s.subject,
                    lease_until: lease.current(),
                    answer: s.answer,
                    outcome: s.outcome,
                })
                .collect();
            let now = self.clock.now();
            let mut applied = match self.store.settle_replies(&settlements, now).await {
                Ok(applied) => applied.into_iter().map(Some).collect(),
                Err(error) => {
                    tracing::warn!(%error, replies = settlements.len(), "settling a batch of replies failed; each is tried alone");
                    let mut applied = Vec::with_capacity(settlements.len());
                    for s in &settlements {
                        match self
                            .store
                            .settle_replies(std::slice::from_ref(s), now)
                            .await
                        {
                            Ok(one) => applied.push(one.first().copied()),
                            Err(error) => {
                                tracing::warn!(tenant = %s.tenant_id, subject = ?s.subject, %error, "auto-reply outcome not recorded");
                                applied.push(None);
                            }
                        }
                    }
                    applied
                }
            };
            under_candidates(
                &lease,
                &settlements,
                &mut applied,
                |a| *a == Some(false),
                |s, lease_until| ReplySettlement {
                    lease_until,
                    ..s.clone()
                },
                |again| async move {
                    let applied = self.store.settle_replies(&again, now).await?;
                    Ok(applied.into_iter().map(Some).collect())
                },
            )
            .await;
            let mut lost = 0;
            for (s, applied) in settlements.iter().zip(&applied) {
                if *applied == Some(false) {
                    tracing::warn!(tenant = %s.tenant_id, subject = ?s.subject, "auto-reply outcome not written: the item's lease moved on");
                    lost += 1;
                }
            }
            lock(&batch.report).lease_lost += lost;
            let mut unsettled = lock(&batch.unsettled);
            for s in &settlements {
                unsettled.remove(&s.subject);
            }
            drop(unsettled);
            drop(lease);
        }
    }

    /// Renews the leases of the batch's unsettled items every third of the
    /// lease period, forever (the caller stops it when the batch is done).
    pub(super) async fn heartbeat(&self, batch: &Batch) {
        let lease = self.auto_reply.lease;
        let period = (lease / 3)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(1))
            .max(std::time::Duration::from_millis(100));
        loop {
            tokio::time::sleep(period).await;
            let mut held = batch.lease.write().await;
            let subjects: Vec<DecisionSubject> = lock(&batch.unsettled).iter().copied().collect();
            let Some(expires) = self.clock.now().checked_add_signed(lease) else {
                continue;
            };
            if subjects.is_empty() {
                continue;
            }
            let renewed = held
                .renew(expires, |guard| {
                    self.store.renew_reply_leases(&subjects, guard, expires)
                })
                .await;
            if let Err(error) = renewed {
                tracing::warn!(%error, items = subjects.len(), "renewing the reply batch's leases failed");
            }
        }
    }
}

/// Writes again, under each other value of `lease` a renewal whose answer was
/// lost may have written (see [`HeldLease`]), the items whose answer under the
/// held value says the row was not found (`missed`); `answers` is updated in
/// place. A write that fails stops the retries (the items stay missed).
async fn under_candidates<T: Clone, A, F>(
    lease: &HeldLease,
    items: &[T],
    answers: &mut [A],
    missed: impl Fn(&A) -> bool,
    guarded: impl Fn(&T, DateTime<Utc>) -> T,
    write: impl Fn(Vec<T>) -> F,
) where
    F: Future<Output = Result<Vec<A>, StorageError>>,
{
    for guard in lease.candidates().into_iter().skip(1) {
        let again: Vec<usize> = (0..answers.len())
            .filter(|&i| missed(&answers[i]))
            .collect();
        if again.is_empty() {
            return;
        }
        let retried = again.iter().map(|&i| guarded(&items[i], guard)).collect();
        match write(retried).await {
            Ok(written) => {
                for (&i, answer) in again.iter().zip(written) {
                    answers[i] = answer;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "writing replies under another lease value failed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 9, minute, 0).unwrap()
    }

    /// A lease whose last renewal (to 09:10) failed on its first statement:
    /// held at 09:05, 09:10 a candidate.
    async fn uncertain() -> HeldLease {
        let mut lease = HeldLease::new(at(5));
        let renewed = lease
            .renew(at(10), |_| async { Err::<u64, &str>("connection lost") })
            .await;
        assert!(renewed.is_err());
        assert_eq!(lease.candidates(), [at(5), at(10)]);
        lease
    }

    /// The items the held value missed are written again under the other
    /// candidate, only they, and their answers replaced.
    #[tokio::test]
    async fn missed_items_are_written_again_under_the_other_candidate() {
        let lease = uncertain().await;
        let items = vec![("a", at(5)), ("b", at(5)), ("c", at(5))];
        let mut answers = vec![Ok("a found"), Err("missed"), Err("missed")];
        let writes = Mutex::new(Vec::new());
        under_candidates(
            &lease,
            &items,
            &mut answers,
            Result::is_err,
            |(name, _), guard| (*name, guard),
            |again: Vec<(&str, DateTime<Utc>)>| {
                writes.lock().unwrap().push(again.clone());
                async move {
                    Ok(again
                        .iter()
                        .map(|(name, guard)| {
                            if *guard == at(10) {
                                Ok(*name)
                            } else {
                                Err("missed")
                            }
                        })
                        .collect())
                }
            },
        )
        .await;
        assert_eq!(answers, [Ok("a found"), Ok("b"), Ok("c")]);
        assert_eq!(
            *writes.lock().unwrap(),
            [vec![("b", at(10)), ("c", at(10))]]
        );
    }

    /// A write that fails under another candidate leaves the items missed.
    #[tokio::test]
    async fn a_failed_write_under_another_candidate_leaves_them_missed() {
        let lease = uncertain().await;
        let items = vec![("a", at(5))];
        let mut answers: Vec<Result<&str, &str>> = vec![Err("missed")];
        under_candidates(
            &lease,
            &items,
            &mut answers,
            Result::is_err,
            |(name, _), guard| (*name, guard),
            |_| async { Err(StorageError::unavailable("connection lost")) },
        )
        .await;
        assert_eq!(answers, [Err("missed")]);
    }
}
