//! The storage conformance suite, run against both backends.
//!
//! `memory`: always. `postgres`: when `DATABASE_URL` is set (required under
//! `CI=true`); each test gets a schema of its own, so tests run in parallel.

mod memory {
    nexiom_storage::conformance_suite!(nexiom_storage::conformance::memory_test_store);
}

mod postgres {
    nexiom_storage::conformance_suite!(nexiom_storage::conformance::postgres_test_store);
}
