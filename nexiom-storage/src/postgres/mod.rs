//! [`PgStore`]: the PostgreSQL backend.

/// PostgreSQL store (work in progress).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
}

impl PgStore {
    /// Wraps an existing pool.
    pub fn from_pool(pool: sqlx::PgPool) -> Self {
        PgStore { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }
}
