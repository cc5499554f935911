//! A gateway's answers made storable before the queue acts on them.
//!
//! A batch's settlements go to the store in one statement, which refuses
//! the whole batch when one value is invalid. What a platform answers is
//! outside input: an error message may hold a NUL character (PostgreSQL
//! cannot store it), a "published" answer may carry an id the store refuses
//! (blank, a control character, longer than a key). So every answer is
//! checked here, once, where it enters the queue:
//!
//! - failure messages keep their text with NUL characters replaced, and so
//!   does every text a settlement or a delivery outcome carries, cut to
//!   what a text column takes ([`settlement`], [`delivery`]: the queue adds
//!   its own words around a platform's message, so the final text is the
//!   one made storable);
//! - a URL that cannot be stored is dropped (it is informative only);
//! - a publication whose id cannot be stored ends `outcome_unknown` at once
//!   ([`Published::Unstorable`]): the platform said it created the post, so
//!   it is neither looked up (a lookup that misses it would lead to a second
//!   publication) nor recorded under an id the store refuses; a lookup that
//!   finds a post under such an id cannot tell;
//! - a broadcast message accepted under an id that cannot be stored is
//!   failed as unknown (sent, never sent again).

use nexiom_core::validate::{self, MAX_TEXT_LEN};
use nexiom_core::{DeliveryOutcome, PostSettlement};

use super::gateway::{PublishFailure, PublishedPost};
use super::queue::OUTCOME_UNKNOWN;

/// `text` as a text column takes it: NUL characters replaced by U+FFFD, at
/// most [`MAX_TEXT_LEN`] bytes (cut at a character boundary).
pub(crate) fn storable_text(text: &str) -> String {
    let mut text = if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text.to_owned()
    };
    if text.len() > MAX_TEXT_LEN {
        let mut end = MAX_TEXT_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// `value` as a `jsonb` column takes it: NUL characters in its strings and
/// keys replaced by U+FFFD (a worker's report can quote a platform's words).
pub(crate) fn storable_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let clean = |s: String| {
        if s.contains('\0') {
            s.replace('\0', "\u{FFFD}")
        } else {
            s
        }
    };
    match value {
        Value::String(s) => Value::String(clean(s)),
        Value::Array(items) => Value::Array(items.into_iter().map(storable_json).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (clean(k), storable_json(v)))
                .collect(),
        ),
        other => other,
    }
}

/// `failure` with a storable message.
pub(super) fn failure(failure: PublishFailure) -> PublishFailure {
    let clean = |m: String| {
        if m.contains('\0') || m.len() > MAX_TEXT_LEN {
            storable_text(&m)
        } else {
            m
        }
    };
    match failure {
        PublishFailure::RateLimited {
            message,
            retry_after,
        } => PublishFailure::RateLimited {
            message: clean(message),
            retry_after,
        },
        PublishFailure::Transient {
            message,
            retry_after,
        } => PublishFailure::Transient {
            message: clean(message),
            retry_after,
        },
        PublishFailure::Unauthorized(m) => PublishFailure::Unauthorized(clean(m)),
        PublishFailure::Permanent(m) => PublishFailure::Permanent(clean(m)),
        PublishFailure::Ambiguous(m) => PublishFailure::Ambiguous(clean(m)),
        PublishFailure::PublishedWithoutId(m) => PublishFailure::PublishedWithoutId(clean(m)),
        PublishFailure::SenderRefused(m) => PublishFailure::SenderRefused(clean(m)),
        PublishFailure::NeedsReauth(m) => PublishFailure::NeedsReauth(clean(m)),
    }
}

/// The post as it can be stored, or why its id cannot be.
fn storable(mut post: PublishedPost) -> Result<PublishedPost, String> {
    if let Err(err) = validate::key("platform_post_id", &post.platform_post_id) {
        return Err(err.to_string());
    }
    if validate::opt_text("url", post.url.as_deref()).is_err() {
        post.url = None;
    }
    Ok(post)
}

/// A publish call's answer, checked.
#[derive(Debug, PartialEq)]
pub(super) enum Published {
    /// Published, storable.
    Post(PublishedPost),
    /// The platform said it published the post, under an id the store
    /// refuses (why).
    Unstorable(String),
    /// The call failed (its message storable).
    Failed(PublishFailure),
}

/// Checks a publish call's answer.
pub(super) fn published(result: Result<PublishedPost, PublishFailure>) -> Published {
    match result {
        Ok(post) => match storable(post) {
            Ok(post) => Published::Post(post),
            Err(why) => Published::Unstorable(why),
        },
        Err(f) => Published::Failed(failure(f)),
    }
}

/// A lookup's answer, checked: a post found under an id that cannot be
/// stored leaves the lookup unable to tell.
pub(super) fn looked_up(
    result: Result<Option<PublishedPost>, PublishFailure>,
) -> Result<Option<PublishedPost>, PublishFailure> {
    match result {
        Ok(Some(post)) => storable(post).map(Some).map_err(|why| {
            PublishFailure::Permanent(format!(
                "the post was found under an id that cannot be stored ({why})"
            ))
        }),
        Ok(None) => Ok(None),
        Err(f) => Err(failure(f)),
    }
}

/// `settlement` with storable texts (its messages, its run's error, its
/// URL), as the queue hands it to the store.
pub(super) fn settlement(mut s: PostSettlement) -> PostSettlement {
    s.error_message = s.error_message.map(|e| storable_text(&e));
    if let Some(run) = &mut s.run {
        run.error = run.error.as_deref().map(storable_text);
    }
    if let Some(p) = &mut s.published
        && validate::opt_text("url", p.url.as_deref()).is_err()
    {
        p.url = None;
    }
    s
}

/// A recipient's outcome as the store takes it: texts storable, and a
/// message accepted under an id the store refuses failed as unknown (it was
/// sent: never sent again).
pub(super) fn delivery(outcome: DeliveryOutcome) -> DeliveryOutcome {
    match outcome {
        DeliveryOutcome::Sent {
            provider_message_id,
        } => match validate::key("provider_message_id", &provider_message_id) {
            Ok(()) => DeliveryOutcome::Sent {
                provider_message_id,
            },
            Err(why) => DeliveryOutcome::Failed {
                error: format!(
                    "{OUTCOME_UNKNOWN}: the platform accepted the message under an id that \
                     cannot be stored ({why}); it is not sent again"
                ),
            },
        },
        DeliveryOutcome::Retry {
            error,
            next_attempt_at,
        } => DeliveryOutcome::Retry {
            error: storable_text(&error),
            next_attempt_at,
        },
        DeliveryOutcome::Failed { error } => DeliveryOutcome::Failed {
            error: storable_text(&error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(id: &str, url: Option<&str>) -> PublishedPost {
        PublishedPost {
            platform_post_id: id.into(),
            url: url.map(Into::into),
        }
    }

    #[test]
    fn messages_lose_their_nul_characters_and_are_cut_to_a_text_column() {
        let f = failure(PublishFailure::Permanent("bad\0request".into()));
        assert_eq!(f.message(), "bad\u{FFFD}request");
        let long = "é".repeat(MAX_TEXT_LEN);
        let cut = storable_text(&long);
        assert!(cut.len() <= MAX_TEXT_LEN && cut.chars().all(|c| c == 'é'));
        assert!(validate::text("m", &storable_text("a\0b")).is_ok());
    }

    #[test]
    fn an_id_that_cannot_be_stored_is_an_ambiguous_publication() {
        for id in [" ", "1\u{7}2", &"9".repeat(300)] {
            let answer = published(Ok(post(id, None)));
            assert!(
                matches!(&answer, Published::Unstorable(why) if why.contains("platform_post_id")),
                "{id:?}: {answer:?}"
            );
            assert!(matches!(
                looked_up(Ok(Some(post(id, None)))),
                Err(PublishFailure::Permanent(_))
            ));
        }
        let Published::Post(ok) = published(Ok(post("123_456", Some("https://x/\0")))) else {
            panic!("a storable id is published");
        };
        assert_eq!(ok.platform_post_id, "123_456");
        assert_eq!(ok.url, None, "a URL that cannot be stored is dropped");
        assert_eq!(looked_up(Ok(None)), Ok(None));
    }

    #[test]
    fn texts_the_queue_wraps_are_made_storable_in_the_end() {
        let long = "x".repeat(MAX_TEXT_LEN);
        let s = settlement(PostSettlement {
            tenant_id: nexiom_core::TenantId::generate(),
            post_id: nexiom_core::PostId::generate(),
            status: nexiom_core::PostStatus::Failed,
            retry_count: None,
            error_message: Some(format!("refused: {long}")),
            next_attempt_at: None,
            published: None,
            run: Some(nexiom_core::RunEnd {
                run_id: nexiom_core::PostRunId::generate(),
                status: nexiom_core::PostRunStatus::Failed,
                error: Some("a\0b".into()),
            }),
        });
        assert!(s.validate().is_ok(), "{:?}", s.validate());
        for outcome in [
            DeliveryOutcome::Sent {
                provider_message_id: "wamid.\u{1}".into(),
            },
            DeliveryOutcome::Failed {
                error: format!("{long}\0"),
            },
        ] {
            let outcome = delivery(outcome);
            assert!(outcome.validate().is_ok(), "{outcome:?}");
        }
        assert!(matches!(
            delivery(DeliveryOutcome::Sent { provider_message_id: "wamid.\u{1}".into() }),
            DeliveryOutcome::Failed { error } if error.starts_with(OUTCOME_UNKNOWN)
        ));
    }
}
