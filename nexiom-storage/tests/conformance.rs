//! The storage conformance suite, run against both backends.
//!
//! `memory`: always. `postgres`: on `DATABASE_URL`, else on the local server
//! (marked ignored when the build found no PostgreSQL); each test gets a schema
//! of its own, so tests run in parallel. `postgres_app_role` and
//! `postgres_worker_role`: the same suite with row-level security in force
//! (the tenant-scoped operations as `nexiom_app`, the scans as
//! `nexiom_worker`; or everything as `nexiom_worker`).

mod memory {
    nexiom_storage::conformance_suite!(nexiom_storage::conformance::memory_test_store);
}

mod postgres {
    nexiom_storage::conformance_suite!(
        #[cfg_attr(
            nexiom_no_postgres,
            ignore = "no PostgreSQL reachable (see README: Tests)"
        )]
        nexiom_storage::conformance::postgres_test_store
    );
}

mod postgres_app_role {
    nexiom_storage::conformance_suite!(
        #[cfg_attr(
            nexiom_no_postgres,
            ignore = "no PostgreSQL reachable (see README: Tests)"
        )]
        nexiom_storage::conformance::postgres_app_role_store
    );
}

mod postgres_worker_role {
    nexiom_storage::conformance_suite!(
        #[cfg_attr(
            nexiom_no_postgres,
            ignore = "no PostgreSQL reachable (see README: Tests)"
        )]
        nexiom_storage::conformance::postgres_worker_role_store
    );
}
