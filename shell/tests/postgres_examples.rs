//! The seed's PostgreSQL scenarios, as `examples/postgres_*.sql` ship them,
//! run against the test servers (their `localhost` addresses, credentials
//! and names replaced): error logs from a Kafka topic into a table, and
//! per-device traffic per minute upserted into a table.

mod kill;
mod pg;

use std::path::{Path, PathBuf};

use kill::run_to_end;
use pg::{jdbc, psql, server};
use sluice_slt::kafka::{test_broker, unique_name};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// `examples/<name>` pointed at the test servers, its tables in `schema`,
/// its data files by absolute path, and `extra` replacements.
fn rewritten(name: &str, url: &str, schema: &str, extra: &[(&str, &str)]) -> String {
    let (jdbc, user, password) = jdbc(url);
    let data = examples().join("data");
    let mut text = std::fs::read_to_string(examples().join(name)).expect("reads the example");
    for (from, to) in [
        ("jdbc:postgresql://localhost:5432/postgres", jdbc.as_str()),
        ("'username' = 'postgres'", &format!("'username' = '{user}'")),
        (
            "'password' = 'postgres'",
            &format!("'password' = '{password}'"),
        ),
        ("'table-name' = '", &format!("'table-name' = '{schema}.")),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        assert!(text.contains(from), "{name} has {from}");
        text = text.replace(from, to);
    }
    text.replace("'data/", &format!("'{}/", data.display()))
}

/// Run `script` with `sluice -f`; it must succeed.
fn run(dir: &Path, script: &str) {
    let path = dir.join("job.sql");
    std::fs::write(&path, script).expect("writes");
    run_to_end(dir, &path);
}

#[test]
fn traffic_per_minute_is_upserted() {
    let Some(url) = server() else {
        return;
    };
    let schema = format!("ex_traffic_{}", std::process::id());
    psql(
        &url,
        &format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; \
             CREATE TABLE {schema}.traffic_per_minute (device TEXT, minute TIMESTAMP(3), \
             rx_bytes BIGINT, tx_bytes BIGINT, packets BIGINT, PRIMARY KEY (device, minute))"
        ),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    run(
        dir.path(),
        &rewritten("postgres_traffic_per_minute.sql", &url, &schema, &[]),
    );
    // Summed by hand from examples/data/traffic.csv.
    assert_eq!(
        psql(
            &url,
            &format!("SELECT * FROM {schema}.traffic_per_minute ORDER BY device, minute")
        ),
        "router-1|2024-01-01 08:00:00|2400|650|33\n\
         router-1|2024-01-01 08:01:00|300|80|4\n\
         router-2|2024-01-01 08:00:00|2800|1020|41\n\
         router-2|2024-01-01 08:02:00|100|60|3\n\
         router-3|2024-01-01 08:01:00|50|40|2\n"
    );
    psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}

#[test]
fn error_logs_go_from_kafka_into_postgres() {
    let Some(url) = server() else {
        return;
    };
    let Some(bootstrap) = test_broker() else {
        return;
    };
    let topic = unique_name("app-logs");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(sluice_connectors::kafka::create_topic(
        &bootstrap, &topic, 1,
    ))
    .expect("creates the topic");
    let dir = tempfile::tempdir().expect("temp dir");
    // The log lines into the topic (one record per produce: the test
    // broker reports batched end offsets too low, docs/testing.md).
    let data = examples().join("data/app.log.jsonl");
    run(
        dir.path(),
        &format!(
            "CREATE TABLE file_logs (ts TIMESTAMP(3), status STRING, service STRING, \
               message STRING) WITH ('connector' = 'filesystem', 'path' = '{}', \
               'format' = 'json');\n\
             CREATE TABLE topic_logs (ts TIMESTAMP(3), status STRING, service STRING, \
               message STRING) WITH ('connector' = 'kafka', 'topic' = '{topic}', \
               'properties.bootstrap.servers' = '{bootstrap}', 'format' = 'json', \
               'properties.batch.num.messages' = '1');\n\
             INSERT INTO topic_logs SELECT * FROM file_logs;\n",
            data.display()
        ),
    );
    let schema = format!("ex_logs_{}", std::process::id());
    psql(
        &url,
        &format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; \
             CREATE TABLE {schema}.error_logs (ts TIMESTAMP(3), service TEXT, message TEXT)"
        ),
    );
    let script = rewritten(
        "postgres_error_logs.sql",
        &url,
        &schema,
        &[
            ("localhost:9092", &bootstrap),
            ("'topic' = 'app-logs'", &format!("'topic' = '{topic}'")),
        ],
    );
    run(dir.path(), &script);
    assert_eq!(
        psql(
            &url,
            &format!("SELECT * FROM {schema}.error_logs ORDER BY ts")
        ),
        "2024-05-01 12:00:02|api|timeout calling db\n\
         2024-05-01 12:00:07|worker|job 17 failed\n"
    );
    psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}
