//! Input checks shared by every storage backend, so that bad input is refused the
//! same way in memory and on PostgreSQL, before anything is written.

use crate::error::CoreError;

/// The longest key accepted (event ids, provider message ids, external account ids,
/// names…), in bytes. WhatsApp message ids reach 128 characters; 255 leaves room.
pub const MAX_KEY_LEN: usize = 255;

/// The longest free text accepted (message and comment bodies, post text), in bytes.
pub const MAX_TEXT_LEN: usize = 256 * 1024;

/// A key: non-empty, at most [`MAX_KEY_LEN`] bytes, no NUL and no control characters.
pub fn key(field: &'static str, value: &str) -> Result<(), CoreError> {
    if value.trim().is_empty() {
        return Err(CoreError::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_KEY_LEN {
        return Err(CoreError::invalid(
            field,
            format!("is {} bytes long; the limit is {MAX_KEY_LEN}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// An optional key: `None` passes, `Some` must pass [`key`].
pub fn opt_key(field: &'static str, value: Option<&str>) -> Result<(), CoreError> {
    value.map_or(Ok(()), |v| key(field, v))
}

/// The longest pagination cursor accepted, in bytes. Platforms' cursors are
/// opaque and some exceed [`MAX_KEY_LEN`] (Graph API cursors of 275 bytes
/// are seen).
pub const MAX_CURSOR_LEN: usize = 8 * 1024;

/// An optional pagination cursor: `None` passes; `Some` must be non-empty,
/// at most [`MAX_CURSOR_LEN`] bytes, with no control characters.
pub fn opt_cursor(field: &'static str, value: Option<&str>) -> Result<(), CoreError> {
    let Some(value) = value else {
        return Ok(());
    };
    if value.trim().is_empty() {
        return Err(CoreError::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_CURSOR_LEN {
        return Err(CoreError::invalid(
            field,
            format!(
                "is {} bytes long; the limit is {MAX_CURSOR_LEN}",
                value.len()
            ),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Free text: at most [`MAX_TEXT_LEN`] bytes and no NUL character (which
/// PostgreSQL cannot store). May be empty.
pub fn text(field: &'static str, value: &str) -> Result<(), CoreError> {
    if value.len() > MAX_TEXT_LEN {
        return Err(CoreError::invalid(
            field,
            format!("is {} bytes long; the limit is {MAX_TEXT_LEN}", value.len()),
        ));
    }
    if value.contains('\0') {
        return Err(CoreError::invalid(
            field,
            "must not contain a NUL character",
        ));
    }
    Ok(())
}

/// Optional free text.
pub fn opt_text(field: &'static str, value: Option<&str>) -> Result<(), CoreError> {
    value.map_or(Ok(()), |v| text(field, v))
}

/// A JSON document: no NUL character in any string or key (PostgreSQL's `jsonb`
/// refuses `\u0000`).
pub fn json(field: &'static str, value: &serde_json::Value) -> Result<(), CoreError> {
    fn has_nul(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(a) => a.iter().any(has_nul),
            serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    if has_nul(value) {
        return Err(CoreError::invalid(
            field,
            "must not contain a NUL character",
        ));
    }
    Ok(())
}

/// A finite number in `0.0..=1.0` (confidences, similarities, rates).
pub fn unit_interval(field: &'static str, value: f64) -> Result<(), CoreError> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(CoreError::invalid(
            field,
            format!("{value} is not between 0 and 1"),
        ))
    }
}

/// An IANA time zone name, parsed.
pub fn time_zone(value: &str) -> Result<chrono_tz::Tz, CoreError> {
    value.parse::<chrono_tz::Tz>().map_err(|_| {
        CoreError::invalid(
            "time_zone",
            format!("{value:?} is not an IANA time zone name (for example Europe/Paris)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(key("event_id", "wamid.123").is_ok());
        assert!(key("event_id", "").is_err());
        assert!(key("event_id", "   ").is_err());
        assert!(key("event_id", &"a".repeat(MAX_KEY_LEN)).is_ok());
        let err = key("event_id", &"a".repeat(MAX_KEY_LEN + 1)).expect_err("too long");
        assert!(err.to_string().contains("event_id"));
        assert!(key("event_id", "a\0b").is_err());
    }

    #[test]
    fn cursors_may_be_longer_than_keys() {
        assert!(opt_cursor("last_cursor", None).is_ok());
        assert!(opt_cursor("last_cursor", Some(&"c".repeat(300))).is_ok());
        assert!(opt_cursor("last_cursor", Some(&"c".repeat(MAX_CURSOR_LEN))).is_ok());
        assert!(opt_cursor("last_cursor", Some(&"c".repeat(MAX_CURSOR_LEN + 1))).is_err());
        assert!(opt_cursor("last_cursor", Some(" ")).is_err());
        assert!(opt_cursor("last_cursor", Some("a\nb")).is_err());
    }

    #[test]
    fn texts_and_json() {
        assert!(text("text", "").is_ok());
        assert!(text("text", "bad\0").is_err());
        assert!(
            json(
                "payload",
                &serde_json::json!({"a": ["ok", {"b": "x\u{0}"}]})
            )
            .is_err()
        );
        assert!(json("payload", &serde_json::json!({"a": ["ok"]})).is_ok());
        assert!(unit_interval("confidence", 0.5).is_ok());
        assert!(unit_interval("confidence", f64::NAN).is_err());
        assert!(time_zone("Europe/Paris").is_ok());
        assert!(time_zone("Mars/Olympus").is_err());
    }
}
