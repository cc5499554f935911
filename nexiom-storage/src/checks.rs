//! Checks on the plain arguments of read and update methods that both backends
//! make in the same sequence, so that they refuse the same input the same way.
//! (Inputs of their own type are checked by their `validate` method in
//! `nexiom-core`.)

use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    BroadcastAudience, BroadcastTemplate, CoreError, NewScheduledPost, PostBroadcast, PostId,
    SecretString, validate,
};

/// Checks a setting's `key` (a key), then its `value` (free text).
pub(crate) fn setting(key: &str, value: &SecretString) -> Result<(), CoreError> {
    validate::key("key", key)?;
    validate::text("value", value.expose())
}

/// Checks a tenant secret: a setting whose value is not blank.
pub(crate) fn tenant_secret(key: &str, value: &SecretString) -> Result<(), CoreError> {
    setting(key, value)?;
    if value.expose().trim().is_empty() {
        return Err(CoreError::invalid("value", "must not be empty"));
    }
    Ok(())
}

/// Checks a claim's `lease_owner` (a key) and returns when its lease ends,
/// `now + lease`, refused as `lease` when out of range.
pub(crate) fn lease(
    lease_owner: &str,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<DateTime<Utc>, CoreError> {
    validate::key("lease_owner", lease_owner)?;
    now.checked_add_signed(lease)
        .ok_or_else(|| CoreError::invalid("lease", "ends beyond the representable time range"))
}

/// Checks the replacement of a series ([`PostStore::replace_series`](crate::PostStore::replace_series)):
/// a series template (a recurrence, neither `series_id` nor `occurrence_at`),
/// valid, then its broadcast, if any, returned ready to store (a new post id).
pub(crate) fn series_replacement(
    new: &NewScheduledPost,
    broadcast: Option<(BroadcastAudience, Option<BroadcastTemplate>)>,
) -> Result<Option<PostBroadcast>, CoreError> {
    if new.series_id.is_some() || new.occurrence_at.is_some() {
        return Err(CoreError::invalid(
            "series_id",
            "a series is replaced by a series template, not by an occurrence",
        ));
    }
    if new.recurrence.is_none() {
        return Err(CoreError::invalid(
            "recurrence",
            "a series is replaced by a series template: set its recurrence",
        ));
    }
    new.validate()?;
    let Some((audience, template)) = broadcast else {
        return Ok(None);
    };
    let spec = PostBroadcast {
        tenant_id: new.tenant_id,
        post_id: PostId::generate(),
        audience,
        template,
    };
    spec.validate()?;
    Ok(Some(spec))
}

/// The `error_message` of a series template replaced by the series `new`.
pub(crate) fn replaced_by(new: PostId) -> String {
    format!("{}: replaced by series {new}", nexiom_core::SERIES_STOPPED)
}
