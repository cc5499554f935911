//! Domain vocabulary of the Nexiom family: typed ids, the enumerations with their
//! lower-case string forms, the entities and their `New*` inputs, [`Content`],
//! [`Platform`], the [`Clock`] (system and manual), [`SecretString`] and
//! [`CoreError`]. No I/O happens here.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use nexiom_core::{Clock, Content, ManualClock, NewScheduledPost, Platform, PostStatus,
//!     ChannelId, TenantId};
//!
//! let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap());
//! let post = NewScheduledPost::one_off(
//!     TenantId::generate(),
//!     ChannelId::generate(),
//!     Content::text("Hello"),
//!     clock.now(),
//!     clock.now(),
//! );
//! assert_eq!(post.content.text, "Hello");
//! assert_eq!("facebook".parse::<Platform>().unwrap(), Platform::Facebook);
//! assert_eq!(PostStatus::Queued.as_str(), "queued");
//! ```
#![forbid(unsafe_code)]

mod clock;
mod content;
mod entity;
mod enums;
mod error;
mod id;
mod kpi;
mod platform;
mod secret;
pub mod validate;

pub use clock::{Clock, ManualClock, SystemClock};
pub use content::{Content, Media};
pub use entity::*;
pub use enums::*;
pub use error::CoreError;
pub use id::*;
pub use kpi::{KpiComment, KpiDecision, KpiFacts, KpiMessage, KpiWindow, compute_kpis};
pub use platform::{CustomPlatform, MAX_PLATFORM_NAME_LEN, Platform};
pub use secret::SecretString;

/// Re-exported so that users name the same time-zone type as the crates.
pub use chrono_tz::Tz;
