//! The domain's entities, grouped by aggregate. Each record type is what storage
//! returns; each `New*` type is what a caller gives to create one.

mod agent_reply;
mod api_key;
mod broadcast;
mod dead_letter;
mod external;
mod inbound;
mod inbox;
mod mission;
mod notify;
mod ops;
mod publishing;
mod reply;
mod settlement;
mod tenant;
mod tenant_settings;
mod topics;
mod triage;

pub use agent_reply::*;
pub use api_key::*;
pub use broadcast::*;
pub use dead_letter::*;
pub use external::*;
pub use inbound::*;
pub use inbox::*;
pub use mission::*;
pub use notify::*;
pub use ops::*;
pub use publishing::*;
pub use reply::*;
pub use settlement::*;
pub use tenant::*;
pub use tenant_settings::*;
pub use topics::*;
pub use triage::*;

/// The result of an insert-if-absent: the row under the unique key, and whether
/// this call created it (`false` when it already existed and nothing changed).
#[derive(Debug, Clone, PartialEq)]
pub struct Inserted<T> {
    /// The row that is now stored under the key.
    pub record: T,
    /// `true` when this call created the row.
    pub created: bool,
}

impl<T> Inserted<T> {
    /// A newly created row.
    pub fn created(record: T) -> Self {
        Inserted {
            record,
            created: true,
        }
    }

    /// A row that already existed.
    pub fn existing(record: T) -> Self {
        Inserted {
            record,
            created: false,
        }
    }
}
