//! Arbitrary content (text, media, link, a native schedule time) into
//! `Content::validate` (what storage checks) and every connector's capability
//! check (`Capabilities::validate`, what runs before a publish): an error or
//! content that really fits the limits, never a panic.
#![no_main]

use arbitrary::Arbitrary;
use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use nexiom_connectors::Capabilities;
use nexiom_core::{Content, Media, MediaKind};
use nexiom_fuzz::connectors;

#[derive(Debug, Arbitrary)]
struct MediaIn {
    kind: u8,
    url: String,
    size_bytes: Option<u64>,
    duration_secs: Option<u32>,
    mime_type: Option<String>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    text: String,
    media: Vec<MediaIn>,
    link: Option<String>,
    schedule_at: Option<i64>,
    /// Also read the content from JSON (as a stored row or an API body).
    json: Option<String>,
}

fn check(caps: &Capabilities, platform: &str, content: &Content, at: Option<i64>) {
    let at = at.and_then(|t| DateTime::from_timestamp(t, 0));
    match caps.validate(platform, content, at) {
        Ok(()) => {
            assert!(!content.is_empty(), "{platform}: empty content accepted");
            assert!(
                content.char_count()
                    <= caps
                        .max_text_length
                        .max(caps.max_caption_length.unwrap_or(0))
            );
            assert!(
                content.media.len() <= caps.max_media_items,
                "{platform}: too many media"
            );
            assert!(!caps.requires_media || content.has_media());
            for m in &content.media {
                assert!(
                    caps.media_kinds.contains(&m.kind),
                    "{platform}: {} accepted",
                    m.kind
                );
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fn check_all(content: &Content, at: Option<i64>) {
    let _ = content.validate().map_err(|e| e.to_string());
    check(&Capabilities::default(), "default", content, at);
    for c in connectors() {
        check(c.capabilities(), c.name(), content, at);
    }
}

fuzz_target!(|input: Input| {
    let content = Content {
        text: input.text,
        media: input
            .media
            .into_iter()
            .map(|m| Media {
                kind: MediaKind::ALL[usize::from(m.kind) % MediaKind::ALL.len()],
                url: m.url,
                size_bytes: m.size_bytes,
                duration_secs: m.duration_secs,
                mime_type: m.mime_type,
            })
            .collect(),
        link: input.link,
    };
    check_all(&content, input.schedule_at);
    if let Some(json) = input.json
        && let Ok(parsed) = serde_json::from_str::<Content>(&json)
    {
        check_all(&parsed, input.schedule_at);
    }
});
