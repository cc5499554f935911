//! Conversions the row types share: parsing stored string forms and counts,
//! redacting secrets in `Debug`, and converting whole lists.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use nexiom_core::ReplyStatus;

use crate::error::Result;
use crate::postgres::error::corrupt;

/// Parses a stored string form.
pub(in crate::postgres) fn parse<T>(what: &str, value: &str) -> Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e| corrupt(what, e))
}

/// Parses an optional stored string form.
pub(super) fn parse_opt<T>(what: &str, value: Option<&str>) -> Result<Option<T>>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    value.map(|v| parse(what, v)).transpose()
}

/// How a secret column shows in `Debug`: whether it is set, never its value.
pub(super) fn redacted(value: Option<&String>) -> Option<&'static str> {
    value.map(|_| "[redacted]")
}

/// A stored non-negative count back as `u32`.
pub(super) fn to_u32(what: &str, value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|e| corrupt(what, e))
}

/// The reply-queue columns of a message or comment.
pub(super) fn reply_status(
    state: Option<&str>,
    attempts: i64,
    error: Option<String>,
    next_at: Option<DateTime<Utc>>,
    lease_until: Option<DateTime<Utc>>,
) -> Result<Option<ReplyStatus>> {
    let Some(state) = state else { return Ok(None) };
    Ok(Some(ReplyStatus {
        state: parse("reply state", state)?,
        attempts: u32::try_from(attempts).map_err(|e| corrupt("reply attempts", e))?,
        error,
        next_at,
        lease_until,
    }))
}

/// Converts every row of a list.
pub(in crate::postgres) fn all<R, T>(
    rows: Vec<R>,
    convert: impl Fn(R) -> Result<T>,
) -> Result<Vec<T>> {
    rows.into_iter().map(convert).collect()
}
