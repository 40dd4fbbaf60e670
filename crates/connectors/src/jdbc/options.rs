//! The JDBC connector's options (Flink's keys) and its PostgreSQL URL.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use sluice_common::{Error, Result};

use crate::options::Options;

/// A table's `connector = 'jdbc'` options.
#[derive(Clone)]
pub struct JdbcOptions {
    /// The table's name in Sluice, for messages.
    pub table: String,
    /// `url`, as written.
    pub url: String,
    /// The server's host, from the URL.
    pub host: String,
    /// Its port (default 5432).
    pub port: u16,
    /// The database (default `postgres`).
    pub database: String,
    /// `table-name`: the PostgreSQL table (`schema.table` allowed).
    pub table_name: String,
    /// `username`.
    pub username: Option<String>,
    /// A secret: never printed.
    pub password: Option<String>,
    /// `sink.buffer-flush.max-rows`: rows buffered before a flush.
    pub flush_rows: usize,
    /// `sink.buffer-flush.interval`: the longest a row waits (0: flush
    /// after every batch).
    pub flush_interval: Duration,
    /// `sink.max-retries`: attempts after a failed write.
    pub max_retries: u32,
    /// `scan.fetch-size`: rows read per round trip.
    pub fetch_size: usize,
    /// `connection.max-retry-timeout`: the longest a connection attempt
    /// waits.
    pub connect_timeout: Duration,
}

impl fmt::Debug for JdbcOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JdbcOptions")
            .field("url", &self.url)
            .field("table_name", &self.table_name)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "******"))
            .finish_non_exhaustive()
    }
}

fn bad(table: &str, msg: String) -> Error {
    Error::plan(format!("table {table}: {msg}")).near("WITH")
}

/// `jdbc:postgresql://host[:port]/database[?...]` as (host, port, database).
fn parse_url(table: &str, url: &str) -> Result<(String, u16, String)> {
    let Some(rest) = url.strip_prefix("jdbc:postgresql://") else {
        return Err(bad(
            table,
            format!(
                "'url' = '{url}' is not a PostgreSQL JDBC URL \
                 (jdbc:postgresql://host:port/database); PostgreSQL is the database Sluice writes"
            ),
        ));
    };
    let rest = rest.split('?').next().unwrap_or_default();
    let (authority, database) = rest.split_once('/').unwrap_or((rest, "postgres"));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => {
            let port = p.parse::<u16>().map_err(|_| {
                bad(
                    table,
                    format!("'url' = '{url}': the port '{p}' is not a number"),
                )
            })?;
            (h, port)
        }
        None => (authority, 5432),
    };
    if host.is_empty() {
        return Err(bad(table, format!("'url' = '{url}' names no host")));
    }
    let database = if database.is_empty() {
        "postgres"
    } else {
        database
    };
    Ok((host.to_string(), port, database.to_string()))
}

fn count(o: &mut Options<'_>, table: &str, key: &'static str, default: usize) -> Result<usize> {
    match o.get(key) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            bad(
                table,
                format!("option '{key}' = '{v}' is not a whole number"),
            )
        }),
    }
}

impl JdbcOptions {
    /// Read the options of `table`.
    pub fn parse(table: &str, map: &BTreeMap<String, String>) -> Result<Self> {
        let mut o = Options::new(table, map);
        let url = o.required("url")?.to_string();
        let (host, port, database) = parse_url(table, &url)?;
        let table_name = o.required("table-name")?.to_string();
        if let Some(d) = o.get("driver") {
            if d != "org.postgresql.Driver" {
                return Err(bad(
                    table,
                    format!(
                        "'driver' = '{d}': Sluice speaks to PostgreSQL (org.postgresql.Driver)"
                    ),
                ));
            }
        }
        let username = o.get("username").map(str::to_string);
        let password = o.get("password").map(str::to_string);
        let flush_rows = count(&mut o, table, "sink.buffer-flush.max-rows", 100)?;
        let flush_interval = o.duration("sink.buffer-flush.interval", Duration::from_secs(1))?;
        let max_retries = count(&mut o, table, "sink.max-retries", 3)? as u32;
        let fetch_size = count(&mut o, table, "scan.fetch-size", 0)?.max(1);
        let connect_timeout =
            o.duration("connection.max-retry-timeout", Duration::from_secs(60))?;
        // Accepted for Flink DDL; parallelism is the job's.
        o.get("sink.parallelism");
        o.finish()?;
        Ok(JdbcOptions {
            table: table.to_string(),
            url,
            host,
            port,
            database,
            table_name,
            username,
            password,
            flush_rows: flush_rows.max(1),
            flush_interval,
            max_retries,
            fetch_size: if fetch_size <= 1 { 10_000 } else { fetch_size },
            connect_timeout,
        })
    }

    /// The client's connection settings.
    pub fn config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .dbname(&self.database)
            .application_name("sluice")
            .connect_timeout(self.connect_timeout);
        if let Some(u) = &self.username {
            c.user(u);
        }
        if let Some(p) = &self.password {
            c.password(p);
        }
        c
    }

    /// `host:port/database`, for messages (no credentials).
    pub fn server(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Result<JdbcOptions> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([("connector".to_string(), "jdbc".to_string())])
            .collect();
        JdbcOptions::parse("t", &map)
    }

    #[test]
    fn flink_options_parse_and_the_password_is_never_printed() {
        let o = opts(&[
            ("url", "jdbc:postgresql://db.example:6543/shop?ssl=false"),
            ("table-name", "public.orders"),
            ("username", "u"),
            ("password", "hunter2"),
            ("sink.buffer-flush.max-rows", "500"),
            ("sink.buffer-flush.interval", "2 s"),
            ("sink.max-retries", "5"),
        ])
        .expect("parses");
        assert_eq!((o.host.as_str(), o.port), ("db.example", 6543));
        assert_eq!(o.database, "shop");
        assert_eq!(o.flush_rows, 500);
        assert_eq!(o.flush_interval, Duration::from_secs(2));
        assert_eq!(o.max_retries, 5);
        assert!(!format!("{o:?}").contains("hunter2"));
        let e = opts(&[("url", "jdbc:mysql://h/db"), ("table-name", "t")]).expect_err("refused");
        assert!(e.to_string().contains("not a PostgreSQL JDBC URL"), "{e}");
        let e = opts(&[("url", "jdbc:postgresql://h/db")]).expect_err("refused");
        assert!(e.to_string().contains("'table-name' is required"), "{e}");
        let e =
            opts(&[("url", "jdbc:postgresql://h:x/db"), ("table-name", "t")]).expect_err("refused");
        assert!(e.to_string().contains("port 'x'"), "{e}");
    }
}
