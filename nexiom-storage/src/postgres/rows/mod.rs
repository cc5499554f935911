//! Row structs as Postgres returns them (`#[derive(sqlx::FromRow)]`, read by
//! column name, so `RETURNING *` works), and their conversion into the domain
//! entities of `nexiom_core`.
//!
//! Enumerations and platforms are stored as their lower-case strings and parsed
//! back with `FromStr`; a value that does not parse is reported as a backend
//! error (the row was written by something else than this store).

mod comment;
mod conversation;
mod convert;
mod event;
mod kpi;
mod mission;
mod post;
mod rule;
mod settings;
mod tenant;
#[cfg(test)]
mod tests;
mod worker;

pub(super) use comment::{CheckpointRow, CommentReplyRow, CommentRow};
pub(super) use conversation::{ConversationRow, MessageRow};
pub(super) use convert::{all, parse};
pub(super) use event::{ContactChannelRow, ContactRow, EventRow};
pub(super) use kpi::KpiRow;
pub(super) use mission::{ContentJobRow, DayPostRow, MissionRow, ReadyJobRow, ReportRow};
pub(super) use post::{PostGuardRow, PostRow, PostRunRow};
pub(super) use rule::{AiControlRow, DecisionRow, IgnoreExampleRow, RuleRow};
pub(super) use settings::SettingRow;
pub(super) use tenant::{ChannelRow, TenantRow};
pub(super) use worker::{ExecutionRow, WorkerFlagRow};
