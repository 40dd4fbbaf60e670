//! What the PostgreSQL tests share: the server `scripts/test.sh` started
//! (`SLUICE_PG_URL`), psql against it, and its JDBC URL and credentials.

#![allow(dead_code)] // each test file uses its own part

use std::process::Command;

/// The server's URL, or `None` (after saying so) when there is none and
/// none is required.
pub fn server() -> Option<String> {
    let url = std::env::var("SLUICE_PG_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        assert!(
            std::env::var("SLUICE_REQUIRE_PG").map_or(true, |v| v != "1"),
            "SLUICE_REQUIRE_PG=1 but SLUICE_PG_URL is not set"
        );
        eprintln!("skipped: no PostgreSQL server (./scripts/test.sh starts one)");
    }
    url
}

/// Run `sql` with psql; its unaligned output.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-q", "-At", url, "-c", sql])
        .output()
        .expect("runs psql");
    assert!(
        out.status.success(),
        "psql failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `jdbc:postgresql://host:port/db`, user and password of `url`.
pub fn jdbc(url: &str) -> (String, String, String) {
    let rest = url.trim_start_matches("postgresql://");
    let (creds, server) = rest.rsplit_once('@').expect("credentials in the URL");
    let (user, password) = creds.split_once(':').unwrap_or((creds, ""));
    (
        format!("jdbc:postgresql://{server}"),
        user.to_string(),
        password.to_string(),
    )
}
