//! The tables partitioned by month on Postgres (execution logs, webhook
//! events, messages): retention drops whole months and keeps every row
//! inside the window; partitions are created ahead (moving rows out of the
//! default partition); keys stay unique across months; the migration from
//! the unpartitioned table keeps every row of a table holding 100,000; the
//! tables' statistics as a whole are refreshed on demand; no partition is
//! read directly by the application roles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod events;
mod executions;
mod grants;
mod messages;
mod statistics;
mod support;
