//! Scheduling: recurrence rules and the API that creates and manages posts.

mod api;
mod recurrence;

pub(crate) use api::close_deliveries;
pub use api::{PREVIEW_LIMIT, Scheduler, SeriesSpec};
pub use recurrence::RecurrenceRule;
