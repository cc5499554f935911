//! RRULE input into the scheduler's series entry points: `SeriesSpec::rule`
//! (validation), `RecurrenceRule::occurrences_after` and `Scheduler::preview`
//! (expansion). A rule is refused with an error or expands to strictly
//! increasing instants after the requested one, never a panic.
//!
//! Input, one field a line: DTSTART (`2026-03-02T09:00:00`, local wall time),
//! the IANA zone, `now` as seconds from DTSTART (kept within three days so one
//! input cannot ask for millions of skipped occurrences), how many occurrences
//! (up to 15), then the RRULE (the rest, as typed by a user).
#![no_main]

use std::sync::Arc;

use chrono::{Duration, NaiveDateTime};
use libfuzzer_sys::fuzz_target;
use nexiom_core::ManualClock;
use nexiom_scheduler::{Scheduler, SeriesSpec};
use nexiom_storage::{MemoryStore, Store};

fuzz_target!(|raw: &[u8]| {
    let Ok(text) = std::str::from_utf8(raw) else {
        return;
    };
    let mut fields = text.splitn(5, '\n');
    let (Some(start), Some(zone), Some(offset), Some(n), Some(rrule)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return;
    };
    let Ok(dtstart) = NaiveDateTime::parse_from_str(start.trim(), "%Y-%m-%dT%H:%M:%S") else {
        return;
    };
    let offset = offset.trim().parse::<i64>().unwrap_or(0) % (3 * 86_400);
    let n = n.trim().parse::<usize>().unwrap_or(1) % 16;
    let spec = SeriesSpec::new(rrule, dtstart, zone);
    let Ok(rule) = spec.rule() else {
        return;
    };
    let Some(now) = dtstart
        .and_utc()
        .checked_add_signed(Duration::seconds(offset))
    else {
        return;
    };
    if let Ok(next) = rule.occurrences_after(now, n) {
        assert!(next.len() <= n);
        assert!(
            next.iter().all(|t| *t > now),
            "an occurrence not after {now}"
        );
        assert!(
            next.windows(2).all(|w| w[0] < w[1]),
            "not strictly increasing: {next:?}"
        );
    }
    let _ = rule.first_at_or_after(now);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let scheduler = Scheduler::new(store, Arc::new(ManualClock::new(now)));
    if let Ok(preview) = scheduler.preview(&spec, n) {
        assert!(preview.len() <= n);
        assert!(preview.iter().all(|t| *t >= now), "a preview before now");
        assert!(
            preview.windows(2).all(|w| w[0] < w[1]),
            "preview not increasing"
        );
    }
});
