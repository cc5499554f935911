//! Two jobs at build time.
//!
//! Rebuild when a migration changes: `sqlx::migrate!` embeds the SQL files at
//! compile time, and cargo does not watch them on its own.
//!
//! Decide whether this build's Postgres tests can run.
//! The Postgres tests run against `DATABASE_URL` when it is set, else against a
//! server on `127.0.0.1:5432` when one answers. When neither is there (and not
//! under `CI=true`, where they must run), the cfg `nexiom_no_postgres` is set and
//! every Postgres test is marked `#[ignore]`, so `cargo test` reports it as
//! ignored instead of counting an early return as a pass. The answer is passed to
//! the crates that depend on this one (`links` metadata), so one probe decides for
//! the whole workspace. The probe runs again when `DATABASE_URL` or `CI` changes;
//! after starting a server, `touch nexiom-storage/build.rs` to probe again.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn main() {
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=DATABASE_URL");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rustc-check-cfg=cfg(nexiom_no_postgres)");
    let under_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let configured = std::env::var("DATABASE_URL").is_ok_and(|v| !v.is_empty());
    let local = SocketAddr::from(([127, 0, 0, 1], 5432));
    let available = under_ci
        || configured
        || TcpStream::connect_timeout(&local, Duration::from_millis(500)).is_ok();
    println!(
        "cargo::metadata=available={}",
        if available { "1" } else { "0" }
    );
    if !available {
        println!("cargo::rustc-cfg=nexiom_no_postgres");
        println!(
            "cargo::warning=no PostgreSQL (DATABASE_URL unset, nothing on 127.0.0.1:5432): the Postgres tests are marked ignored"
        );
    }
}
