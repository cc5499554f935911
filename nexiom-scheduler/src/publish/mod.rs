//! Publishing: the gateway to the platforms, the retry policy and the queue.

mod ambiguous;
mod attempt;
mod batch;
mod broadcast;
pub(crate) mod checked;
mod connector;
mod gateway;
#[cfg(feature = "testing")]
mod mock;
mod queue;
mod retry;
mod series;
mod settlements;

pub use connector::{ConnectorGateway, PostLookup, channel_context, classify};
pub use gateway::{PublishFailure, PublishGateway, PublishedPost, RecipientMessage};
#[cfg(feature = "testing")]
pub use mock::{MockGateway, MockStep};
pub use queue::{
    AWAITING_RECONNECTION, OUTCOME_UNKNOWN, PostOutcome, PublishConfig, PublishQueue, QueueReport,
};
pub use retry::RetryPolicy;
