//! [`RecurrenceRule`]: an RFC 5545 RRULE anchored at a local DTSTART in an IANA
//! time zone, evaluated with the `rrule` crate.
//!
//! Occurrences are computed in local wall-clock time and then converted to UTC,
//! so "every weekday at 09:00 Europe/Paris" stays at 09:00 local on both sides of
//! a daylight-saving change (its UTC instant moves by an hour). This is how
//! python-dateutil evaluates a rule: the rule is expanded over wall times
//! (the `rrule` crate runs with the wall times written as UTC, so no offset
//! change can move, drop or repeat one), and each wall time is then read in
//! the zone:
//!
//! - one that exists once is that instant;
//! - one that happens twice (fall-back) is the earlier instant, as
//!   [`local_instant`](crate::local_instant) reads it;
//! - one that falls in a spring-forward gap is read with the UTC offset in
//!   force before the gap, as RFC 5545 (3.3.5) says for DTSTART: 02:30 on the
//!   night Paris skips from 02:00 to 03:00 is 03:30 CEST. This holds for
//!   DTSTART and for every occurrence, also in a zone whose gap starts at
//!   midnight (Cairo, Santiago), and the later occurrences keep the rule's
//!   wall time (02:30 the next day).
//!
//! When a wall time in a gap lands on the instant of the previous occurrence
//! (an hourly rule over the gap) it is dropped, so occurrences are strictly
//! increasing and each instant is one occurrence; COUNT counts wall times, as
//! dateutil does, so `FREQ=HOURLY;COUNT=3` from 01:00 on the night New York
//! skips 02:00 gives two instants. `UNTIL` (in UTC) is compared
//! with the occurrences' instants.

use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use nexiom_core::{Recurrence, Tz};
use rrule::{RRule, RRuleSet, Unvalidated};

use crate::error::{Result, SchedulerError};
use crate::windows::local_instant;

/// How many occurrences at most are stepped over to find the first one after a
/// given instant. A rule that fires every minute since years would otherwise make
/// every call iterate for a long time; such a rule is refused with a message
/// asking to move DTSTART.
const MAX_SKIPPED_OCCURRENCES: usize = 1_000_000;

/// A validated recurrence: build it with [`RecurrenceRule::parse`] (from user
/// strings) or [`RecurrenceRule::new`] (from a stored [`Recurrence`]).
///
/// ```
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use nexiom_scheduler::RecurrenceRule;
///
/// let start = NaiveDate::from_ymd_opt(2026, 3, 27).unwrap().and_hms_opt(9, 0, 0).unwrap();
/// let rule = RecurrenceRule::parse("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", start, "Europe/Paris")
///     .unwrap();
/// let next = rule.occurrences_after(Utc.with_ymd_and_hms(2026, 3, 27, 12, 0, 0).unwrap(), 2)
///     .unwrap();
/// // Friday 09:00 CET is 08:00 UTC; after the change on Sunday, Monday 09:00 CEST is 07:00 UTC.
/// assert_eq!(next, vec![Utc.with_ymd_and_hms(2026, 3, 30, 7, 0, 0).unwrap(),
///                       Utc.with_ymd_and_hms(2026, 3, 31, 7, 0, 0).unwrap()]);
/// ```
#[derive(Debug, Clone)]
pub struct RecurrenceRule {
    recurrence: Recurrence,
    /// The rule over wall times (written as UTC), without its `UNTIL`.
    set: RRuleSet,
    /// The rule's `UNTIL`.
    until: Option<DateTime<Utc>>,
}

impl RecurrenceRule {
    /// Parses a rule from user input: `rrule` (with or without the `RRULE:`
    /// prefix), DTSTART as local wall time, and an IANA zone name.
    ///
    /// Errors: [`SchedulerError::UnknownTimeZone`], [`SchedulerError::InvalidRrule`].
    pub fn parse(rrule: &str, dtstart: NaiveDateTime, time_zone: &str) -> Result<Self> {
        let tz = Tz::from_str(time_zone.trim())
            .map_err(|_| SchedulerError::UnknownTimeZone(time_zone.to_owned()))?;
        Self::new(Recurrence {
            rrule: strip_prefix(rrule).to_owned(),
            dtstart,
            time_zone: tz,
        })
    }

    /// Validates a [`Recurrence`] (as stored on a series template).
    ///
    /// Errors: [`SchedulerError::InvalidRrule`].
    pub fn new(recurrence: Recurrence) -> Result<Self> {
        let text = strip_prefix(&recurrence.rrule);
        let invalid = |reason: String| SchedulerError::InvalidRrule {
            rrule: recurrence.rrule.clone(),
            reason,
        };
        if text.is_empty() {
            return Err(invalid("the rule is empty".into()));
        }
        if text.contains(['\n', '\r']) {
            return Err(invalid(
                "give one RRULE line; DTSTART and the time zone are separate fields".into(),
            ));
        }
        // RFC 5545 rule parts are ASCII names and numbers; the rrule parser slices
        // weekdays by byte and panics inside a multi-byte character.
        if !text.is_ascii() {
            return Err(invalid(
                "the rule may only hold ASCII letters, digits and punctuation".into(),
            ));
        }
        let mut unvalidated: RRule<Unvalidated> =
            RRule::from_str(text).map_err(|e| invalid(e.to_string()))?;
        // UNTIL is an instant: compared with the occurrences' instants here,
        // not with the wall times the crate expands.
        let until = match unvalidated.get_until() {
            None => None,
            Some(until) if until.timezone() != rrule::Tz::UTC => {
                return Err(invalid(
                    "UNTIL must be a UTC time ending in Z, e.g. UNTIL=20261224T230000Z".into(),
                ));
            }
            Some(until) => {
                let until = until.with_timezone(&Utc);
                unvalidated =
                    RRule::from_str(&without_until(text)).map_err(|e| invalid(e.to_string()))?;
                Some(until)
            }
        };
        let start = wall_instant(recurrence.dtstart, recurrence.time_zone);
        if let Some(until) = until
            && until < start
        {
            return Err(invalid(format!(
                "UNTIL ({until}) is before DTSTART ({start})"
            )));
        }
        let dtstart = rrule::Tz::UTC.from_utc_datetime(&recurrence.dtstart);
        let set = unvalidated
            .build(dtstart)
            .map(RRuleSet::limit)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(RecurrenceRule {
            recurrence: Recurrence {
                rrule: text.to_owned(),
                ..recurrence
            },
            set,
            until,
        })
    }

    /// The recurrence, with the rule text normalised (no `RRULE:` prefix).
    pub fn recurrence(&self) -> &Recurrence {
        &self.recurrence
    }

    /// The time zone of the rule.
    pub fn time_zone(&self) -> Tz {
        self.recurrence.time_zone
    }

    /// Up to `n` occurrences strictly after `after`, in order.
    ///
    /// Errors: [`SchedulerError::InvalidRrule`] when more than a million
    /// occurrences lie between DTSTART and `after` (move DTSTART closer).
    pub fn occurrences_after(&self, after: DateTime<Utc>, n: usize) -> Result<Vec<DateTime<Utc>>> {
        let mut out = Vec::with_capacity(n.min(1024));
        if n == 0 {
            return Ok(out);
        }
        let mut skipped = 0usize;
        let mut last: Option<DateTime<Utc>> = None;
        let tz = self.recurrence.time_zone;
        for occurrence in &self.set {
            let at = wall_instant(occurrence.naive_utc(), tz);
            if self.until.is_some_and(|until| at > until) {
                break;
            }
            // A wall time in a spring-forward gap is read with the offset
            // before the gap and can land on the next occurrence's instant:
            // keep one.
            if last.is_some_and(|l| at <= l) {
                continue;
            }
            last = Some(at);
            if at <= after {
                skipped += 1;
                if skipped > MAX_SKIPPED_OCCURRENCES {
                    return Err(SchedulerError::InvalidRrule {
                        rrule: self.recurrence.rrule.clone(),
                        reason: format!(
                            "more than {MAX_SKIPPED_OCCURRENCES} occurrences lie between DTSTART \
                             and {after}; move DTSTART closer"
                        ),
                    });
                }
                continue;
            }
            out.push(at);
            if out.len() == n {
                break;
            }
        }
        Ok(out)
    }

    /// The first occurrence strictly after `after`, if the rule has one.
    pub fn next_after(&self, after: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        Ok(self.occurrences_after(after, 1)?.into_iter().next())
    }

    /// The first occurrence at or after `at`, if any.
    pub fn first_at_or_after(&self, at: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        match at.checked_sub_signed(chrono::Duration::nanoseconds(1)) {
            Some(before) => self.next_after(before),
            None => self.next_after(at),
        }
    }
}

/// The instant of wall time `local` in `tz`, as python-dateutil reads it
/// (`fold=0`): the instant itself when it exists once, the earlier one when it
/// happens twice, and in a spring-forward gap the wall time read with the
/// offset in force before the gap (RFC 5545, 3.3.5:
/// `TZID=America/New_York:20070311T023000` is 03:30 EDT).
fn wall_instant(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    if tz.from_local_datetime(&local).earliest().is_some() {
        return local_instant(local, tz);
    }
    // The gap ends at the first instant that exists again; the offset before
    // the gap is the one a second earlier.
    let gap_end = local_instant(local, tz);
    let before = gap_end - Duration::seconds(1);
    let offset = tz.offset_from_utc_datetime(&before.naive_utc()).fix();
    let utc = local - Duration::seconds(i64::from(offset.local_minus_utc()));
    Utc.from_utc_datetime(&utc)
}

/// The rule's text without its `UNTIL` part.
fn without_until(text: &str) -> String {
    text.split(';')
        .filter(|part| {
            !part
                .trim()
                .get(..6)
                .is_some_and(|name| name.eq_ignore_ascii_case("UNTIL="))
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn strip_prefix(rrule: &str) -> &str {
    let trimmed = rrule.trim();
    match trimmed.get(..6) {
        Some(prefix) if prefix.eq_ignore_ascii_case("RRULE:") => trimmed[6..].trim(),
        _ => trimmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    #[test]
    fn prefix_is_optional_and_case_insensitive() {
        let a = RecurrenceRule::parse("RRULE:FREQ=DAILY", local(2026, 1, 1, 9, 0), "UTC").unwrap();
        let b = RecurrenceRule::parse("rrule:FREQ=DAILY", local(2026, 1, 1, 9, 0), "UTC").unwrap();
        assert_eq!(a.recurrence().rrule, "FREQ=DAILY");
        assert_eq!(b.recurrence().rrule, "FREQ=DAILY");
    }

    #[test]
    fn refusals_are_typed() {
        assert!(matches!(
            RecurrenceRule::parse("FREQ=DAILY", local(2026, 1, 1, 9, 0), "Mars/Olympus"),
            Err(SchedulerError::UnknownTimeZone(_))
        ));
        for bad in [
            "",
            "FREQ=SOMETIMES",
            "FREQ=DAILY;BYHOUR=25",
            "FREQ=DAILY\nRRULE:FREQ=WEEKLY",
        ] {
            assert!(
                matches!(
                    RecurrenceRule::parse(bad, local(2026, 1, 1, 9, 0), "Europe/Paris"),
                    Err(SchedulerError::InvalidRrule { .. })
                ),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn impossible_rule_ends_instead_of_looping() {
        let rule = RecurrenceRule::parse(
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
            local(2026, 1, 1, 9, 0),
            "UTC",
        );
        // Either refused when built or without any occurrence: never a hang.
        if let Ok(rule) = rule {
            assert!(
                rule.next_after(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap())
                    .map(|o| o.is_none())
                    .unwrap_or(true)
            );
        }
    }
}
