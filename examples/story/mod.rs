//! The quickstart story, written once: `examples/quickstart.rs` runs it with
//! readable output on the memory store, and `tests/story.rs` runs it silently on
//! memory and on Postgres and asserts the [`StoryOutcome`].
//!
//! A local fake platform (axum on 127.0.0.1, answering the documented Graph and
//! LinkedIn shapes) stands in for Meta and LinkedIn; the REAL connectors are
//! pointed at it with `with_base_url`. The clock is a `ManualClock`.
#![allow(dead_code)] // the quickstart and the test use different parts

// First: the `say!` macro the steps below print with.
#[macro_use]
mod say;

mod fake_platform;
mod inbound;
mod kpis;
mod outcome;
mod pipeline;
mod publishing;
mod run;
mod setup;
mod webhooks;

// The quickstart and the tests each name only some of these.
#[allow(unused_imports)]
pub use fake_platform::FakePlatform;
#[allow(unused_imports)]
pub use outcome::{Ingested, StoryError, StoryOutcome};
pub use run::run_story;
