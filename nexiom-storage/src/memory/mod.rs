//! [`MemoryStore`]: the in-memory backend.

/// Thread-safe in-memory store (work in progress).
#[derive(Debug, Default)]
pub struct MemoryStore {}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {}
    }
}
