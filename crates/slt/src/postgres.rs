//! The PostgreSQL server the `sql-tests/postgres/` files run against.
//!
//! `scripts/test.sh` starts a throwaway one and exports `SLUICE_PG_URL`
//! (`postgresql://user:password@host:port/database`) and
//! `SLUICE_REQUIRE_PG=1`; without a server those files are skipped (with a
//! message) unless one is required, then they fail. In a test file
//! `${PG_URL}` is that URL (for `psql` in `system ok` blocks), `${PG_JDBC}`
//! its JDBC form (`jdbc:postgresql://host:port/database`), `${PG_USER}` and
//! `${PG_PASSWORD}` the credentials.

/// The server's URL, if one is configured.
pub fn url() -> Option<String> {
    std::env::var("SLUICE_PG_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Whether PostgreSQL tests must run (CI): a missing server is then a
/// failure.
pub fn required() -> bool {
    std::env::var("SLUICE_REQUIRE_PG").is_ok_and(|v| v == "1")
}

/// The test files' variables for `url`: `PG_URL`, `PG_JDBC`, `PG_USER`,
/// `PG_PASSWORD`.
pub fn vars(url: &str) -> Vec<(&'static str, String)> {
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .unwrap_or(url);
    let (creds, server) = rest.rsplit_once('@').unwrap_or(("", rest));
    let (user, password) = creds.split_once(':').unwrap_or((creds, ""));
    vec![
        ("PG_URL", url.to_string()),
        ("PG_JDBC", format!("jdbc:postgresql://{server}")),
        ("PG_USER", user.to_string()),
        ("PG_PASSWORD", password.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_split_into_the_files_variables() {
        let v = super::vars("postgresql://sluice:pw@127.0.0.1:5433/postgres");
        assert_eq!(v[1].1, "jdbc:postgresql://127.0.0.1:5433/postgres");
        assert_eq!((v[2].1.as_str(), v[3].1.as_str()), ("sluice", "pw"));
    }
}
