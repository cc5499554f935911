//! `Debug` of the row types that hold secrets.

use chrono::{TimeZone, Utc};
use uuid::Uuid;

use super::{ChannelRow, SettingRow};

const ACCESS: &str = "EAAG-row-access-token-0123456789";
const REFRESH: &str = "AQX-row-refresh-token-9876543210";
const API_KEY: &str = "sk-or-v1-row-setting-value-abcdef";

#[test]
fn channel_row_debug_redacts_tokens() {
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).single();
    let row = ChannelRow {
        id: Uuid::nil(),
        tenant_id: Uuid::nil(),
        platform: "facebook".into(),
        external_account_id: "448242228374517".into(),
        name: "Acme Page".into(),
        access_token: Some(ACCESS.into()),
        refresh_token: Some(REFRESH.into()),
        expires_at: at,
        status: "active".into(),
        status_reason: None,
        status_changed_at: None,
        created_at: at.unwrap_or_default(),
    };
    for shown in [format!("{row:?}"), format!("{row:#?}")] {
        assert!(!shown.contains(ACCESS), "{shown}");
        assert!(!shown.contains(REFRESH), "{shown}");
        assert!(!shown.contains("row-access"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(shown.contains("448242228374517"), "{shown}");
    }
    let none = ChannelRow {
        access_token: None,
        refresh_token: None,
        ..row
    };
    assert!(format!("{none:?}").contains("access_token: None"));
}

#[test]
fn setting_row_debug_redacts_the_value() {
    let row = SettingRow {
        key: "OPENROUTER_API_KEY".into(),
        value: API_KEY.into(),
        updated_at: Utc
            .with_ymd_and_hms(2026, 11, 22, 9, 0, 0)
            .single()
            .unwrap_or_default(),
    };
    let shown = format!("{row:?}");
    assert!(!shown.contains(API_KEY), "{shown}");
    assert!(shown.contains("OPENROUTER_API_KEY"), "{shown}");
    // The entity keeps it redacted too.
    assert!(!format!("{:?}", row.into_entity()).contains(API_KEY));
}
