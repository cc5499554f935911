//! Marks this crate's Postgres tests `#[ignore]` (cfg `nexiom_no_postgres`) when
//! the probe in nexiom-storage's build script found no PostgreSQL to test on.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(nexiom_no_postgres)");
    println!("cargo::rerun-if-env-changed=DEP_NEXIOM_POSTGRES_PROBE_AVAILABLE");
    if std::env::var("DEP_NEXIOM_POSTGRES_PROBE_AVAILABLE").is_ok_and(|v| v == "0") {
        println!("cargo::rustc-cfg=nexiom_no_postgres");
    }
}
