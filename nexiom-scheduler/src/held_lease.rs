//! The lease a batch holds its claimed items under, as its heartbeat knows
//! it, when the lease's own `lease_until` is the token that guards each
//! write (auto-replies, notification deliveries).
//!
//! A renewal is one guarded statement: "where `lease_until` is what I hold,
//! set it to `expires`". When the statement fails on the way back (the
//! connection drops after the commit), the batch cannot tell whether its
//! rows now carry the old value or the new one. Guarding the next renewal
//! with the old value alone would then miss every row, and the batch would
//! lose items it still holds: their outcomes unwritten, taken again by
//! another worker once the unknown lease ends. So the value a failed renewal
//! tried to write stays a candidate: the next renewal is guarded by each
//! candidate in turn (a row carries one value, so no row is renewed twice),
//! and once every one of those statements answered, the batch knows its
//! lease again. Meanwhile a write that misses under the held value is tried
//! under each candidate ([`HeldLease::candidates`]) before the item counts
//! as lost: every candidate is a value this batch wrote, so a row carrying
//! one is still the batch's.

use std::future::Future;

use chrono::{DateTime, Utc};

/// At most this many values are tried per renewal (the held one and the
/// latest failed ones); a renewal whose first statement fails tries no
/// other, so one made while the database is unreachable costs one.
const MAX_CANDIDATES: usize = 4;

/// The held `lease_until`, with the values a failed renewal may have
/// written instead.
#[derive(Debug, Clone)]
pub(crate) struct HeldLease {
    /// The value writes are guarded with: the last one a renewal was known
    /// to write (or the claim's).
    held: DateTime<Utc>,
    /// Values a renewal tried to write without learning whether it did.
    uncertain: Vec<DateTime<Utc>>,
}

impl HeldLease {
    /// The lease as the claim set it.
    pub(crate) fn new(held: DateTime<Utc>) -> Self {
        HeldLease {
            held,
            uncertain: Vec::new(),
        }
    }

    /// The value the batch's writes are guarded with.
    pub(crate) fn current(&self) -> DateTime<Utc> {
        self.held
    }

    /// The held value, then the values a failed renewal may have written
    /// instead, latest first: a write that misses under one is tried under
    /// the next.
    pub(crate) fn candidates(&self) -> Vec<DateTime<Utc>> {
        let mut all = vec![self.held];
        all.extend(self.uncertain.iter().rev().filter(|g| **g != self.held));
        all
    }

    /// Moves the lease to `expires`: `renew(guard)` must run the guarded
    /// renewal from `guard` to `expires` and answer how many rows it moved.
    /// Answers the rows moved, or the first error; after an error the lease
    /// stays uncertain until a renewal answers for every candidate.
    pub(crate) async fn renew<F, Fut, E>(
        &mut self,
        expires: DateTime<Utc>,
        mut renew: F,
    ) -> Result<u64, E>
    where
        F: FnMut(DateTime<Utc>) -> Fut,
        Fut: Future<Output = Result<u64, E>>,
    {
        let mut guards = vec![self.held];
        guards.extend(self.uncertain.iter().copied().filter(|g| *g != self.held));
        let mut moved = 0;
        let mut any_answered = false;
        let mut answered_empty = Vec::new();
        let mut failed = Vec::new();
        let mut first_error = None;
        for guard in guards {
            if guard == expires {
                // Renewing a value onto itself moves nothing: the rows that
                // carry it already carry the new lease.
                continue;
            }
            match renew(guard).await {
                Ok(rows) => {
                    moved += rows;
                    any_answered = true;
                    if rows == 0 {
                        answered_empty.push(guard);
                    }
                }
                Err(error) => {
                    failed.push(guard);
                    first_error.get_or_insert(error);
                    if !any_answered {
                        // The first statement failed (the database is
                        // unreachable, most likely): the others would wait
                        // and fail the same way. They stay candidates, for
                        // the next renewal.
                        break;
                    }
                }
            }
        }
        let Some(error) = first_error else {
            self.held = expires;
            self.uncertain.clear();
            return Ok(moved);
        };
        // Rows under a guard whose statement answered now carry `expires`;
        // rows under a failed one carry that guard or `expires`.
        // When some rows now carry `expires`, or no row carries the held
        // value any more (its statement answered for none), `expires` is
        // held; rows under a failed guard carry it or `expires`, so the
        // failed guards stay candidates (writes try them too).
        let held_answered = answered_empty.contains(&self.held);
        if moved > 0 || held_answered {
            self.held = expires;
            self.uncertain = failed;
        } else {
            // The held value's statement failed (the database is
            // unreachable, most likely): it stays held; `expires` joins the
            // candidates in case a failed statement was written, and a value
            // whose statement answered for no row is dropped.
            self.uncertain
                .retain(|g| *g != self.held && !answered_empty.contains(g));
            self.uncertain.push(expires);
        }
        self.uncertain.retain(|g| *g != self.held);
        self.uncertain.dedup();
        let excess = self.uncertain.len().saturating_sub(MAX_CANDIDATES - 1);
        self.uncertain.drain(..excess);
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::{Duration, TimeZone};

    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap() + Duration::minutes(minute)
    }

    /// A table of rows' `lease_until`, and a renewal that may fail before
    /// or after writing.
    struct Table {
        rows: Mutex<Vec<DateTime<Utc>>>,
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Fault {
        None,
        /// The statement is written, then the answer is lost.
        AfterCommit,
        /// Nothing is written.
        Unreachable,
    }

    impl Table {
        fn new(n: usize, lease: DateTime<Utc>) -> Self {
            Table {
                rows: Mutex::new(vec![lease; n]),
            }
        }

        async fn renew(
            &self,
            guard: DateTime<Utc>,
            expires: DateTime<Utc>,
            fault: Fault,
        ) -> Result<u64, &'static str> {
            if fault == Fault::Unreachable {
                return Err("unreachable");
            }
            let mut rows = self.rows.lock().unwrap();
            let mut moved = 0;
            for row in rows.iter_mut().filter(|r| **r == guard) {
                *row = expires;
                moved += 1;
            }
            match fault {
                Fault::AfterCommit => Err("connection reset"),
                _ => Ok(moved),
            }
        }

        fn all(&self, lease: DateTime<Utc>) -> bool {
            self.rows.lock().unwrap().iter().all(|r| *r == lease)
        }
    }

    async fn step(lease: &mut HeldLease, table: &Table, expires: DateTime<Utc>, fault: Fault) {
        let _ = lease
            .renew(expires, |guard| table.renew(guard, expires, fault))
            .await;
    }

    #[tokio::test]
    async fn a_renewal_written_but_unanswered_is_found_by_the_next() {
        let table = Table::new(3, at(5));
        let mut lease = HeldLease::new(at(5));
        step(&mut lease, &table, at(7), Fault::AfterCommit).await;
        assert!(table.all(at(7)), "the failed renewal was written");
        assert_eq!(lease.current(), at(5), "the batch cannot know it");
        let moved = lease
            .renew(at(9), |guard| table.renew(guard, at(9), Fault::None))
            .await
            .unwrap();
        assert_eq!(moved, 3, "the next renewal keeps every row");
        assert!(table.all(at(9)));
        assert_eq!(lease.current(), at(9));
        assert!(lease.uncertain.is_empty());
    }

    #[tokio::test]
    async fn a_renewal_that_wrote_nothing_keeps_the_held_lease() {
        let table = Table::new(2, at(5));
        let mut lease = HeldLease::new(at(5));
        step(&mut lease, &table, at(7), Fault::Unreachable).await;
        step(&mut lease, &table, at(8), Fault::Unreachable).await;
        assert_eq!(lease.current(), at(5));
        assert!(table.all(at(5)));
        step(&mut lease, &table, at(9), Fault::None).await;
        assert!(table.all(at(9)));
        assert_eq!(lease.current(), at(9));
    }

    #[tokio::test]
    async fn a_lost_answer_after_a_known_one_is_followed_too() {
        // First renewal fine, second written but unanswered, third reaches
        // the database only for some guards: every row ends renewed.
        let table = Table::new(4, at(5));
        let mut lease = HeldLease::new(at(5));
        step(&mut lease, &table, at(6), Fault::None).await;
        step(&mut lease, &table, at(7), Fault::AfterCommit).await;
        let mut calls = 0;
        let result = lease
            .renew(at(8), |guard| {
                calls += 1;
                let fault = if calls == 1 {
                    Fault::None
                } else {
                    Fault::AfterCommit
                };
                table.renew(guard, at(8), fault)
            })
            .await;
        assert!(result.is_err());
        assert!(table.all(at(8)));
        assert_eq!(lease.current(), at(8), "one guard's statement answered");
        step(&mut lease, &table, at(10), Fault::None).await;
        assert!(table.all(at(10)));
        assert!(lease.uncertain.is_empty());
    }

    #[tokio::test]
    async fn a_renewal_whose_first_statement_fails_tries_no_other() {
        let table = Table::new(2, at(5));
        let mut lease = HeldLease::new(at(5));
        step(&mut lease, &table, at(7), Fault::AfterCommit).await;
        step(&mut lease, &table, at(8), Fault::AfterCommit).await;
        assert!(lease.uncertain.len() >= 2, "{lease:?}");
        let mut calls = 0;
        let result = lease
            .renew(at(9), |guard| {
                calls += 1;
                table.renew(guard, at(9), Fault::Unreachable)
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls, 1, "one statement while unreachable");
        // Every candidate is still tried once the database answers.
        step(&mut lease, &table, at(10), Fault::None).await;
        assert!(table.all(at(10)));
        assert_eq!(lease.current(), at(10));
    }

    /// The rows carry a value whose statement fails, while the held
    /// value's statement answers that it moved nothing: the value the rows
    /// carry stays a candidate, so a write that misses under the held value
    /// finds the rows under it, and the next renewal moves them.
    #[tokio::test]
    async fn a_renewal_that_moved_no_row_keeps_the_held_lease() {
        let table = Table::new(2, at(5));
        let mut lease = HeldLease::new(at(5));
        step(&mut lease, &table, at(7), Fault::AfterCommit).await;
        assert!(table.all(at(7)));
        // The held value (5) answers for no row; the candidate (7), which
        // the rows carry, fails before writing.
        let result = lease
            .renew(at(9), |guard| {
                let fault = if guard == at(5) {
                    Fault::None
                } else {
                    Fault::Unreachable
                };
                table.renew(guard, at(9), fault)
            })
            .await;
        assert!(result.is_err());
        assert!(table.all(at(7)), "nothing was renewed");
        let candidates = lease.candidates();
        assert!(candidates.contains(&at(7)), "{candidates:?}");
        assert!(
            !candidates.contains(&at(5)),
            "no row carries it: {candidates:?}"
        );
        // A write tries each candidate: one matches the rows.
        let carried = table.rows.lock().unwrap()[0];
        assert!(candidates.contains(&carried));
        step(&mut lease, &table, at(11), Fault::None).await;
        assert!(table.all(at(11)));
        assert_eq!(lease.candidates(), vec![at(11)]);
    }

    #[tokio::test]
    async fn candidates_stay_bounded_while_renewals_keep_failing() {
        let table = Table::new(1, at(0));
        let mut lease = HeldLease::new(at(0));
        for minute in 1..20 {
            step(&mut lease, &table, at(minute), Fault::Unreachable).await;
            assert!(lease.uncertain.len() < MAX_CANDIDATES);
        }
        assert_eq!(lease.current(), at(0));
        step(&mut lease, &table, at(30), Fault::None).await;
        assert!(table.all(at(30)), "the held value is always tried");
    }
}
