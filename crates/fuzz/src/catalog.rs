//! The fixed catalog every generated case group starts from: memory tables
//! with awkward rows, a CSV file, bounded Nexmark and datagen tables, one
//! unbounded datagen table, a sink and two views.

/// A column type as the expression generator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// INT / BIGINT.
    Int,
    /// DOUBLE.
    Float,
    /// DECIMAL(10, 2).
    Dec,
    /// STRING.
    Str,
    /// BOOLEAN.
    Bool,
    /// TIMESTAMP(3).
    Ts,
    /// DATE.
    Date,
}

/// Every type, for picking one at random.
pub const TYPES: [Ty; 7] = [
    Ty::Int,
    Ty::Float,
    Ty::Dec,
    Ty::Str,
    Ty::Bool,
    Ty::Ts,
    Ty::Date,
];

/// One table or view the generator may read.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// Its name.
    pub name: &'static str,
    /// Columns with their types.
    pub columns: &'static [(&'static str, Ty)],
    /// The event-time (watermark) column, if any.
    pub time: Option<&'static str>,
    /// Whether a query over it ends by itself.
    pub bounded: bool,
}

impl Table {
    /// Columns of type `ty`.
    pub fn columns_of(&self, ty: Ty) -> Vec<&'static str> {
        self.columns
            .iter()
            .filter(|(_, t)| *t == ty)
            .map(|(c, _)| *c)
            .collect()
    }
}

const M1: &[(&str, Ty)] = &[
    ("k", Ty::Int),
    ("v", Ty::Int),
    ("d", Ty::Float),
    ("s", Ty::Str),
    ("b", Ty::Bool),
    ("ts", Ty::Ts),
];
const M2: &[(&str, Ty)] = &[
    ("id", Ty::Int),
    ("name", Ty::Str),
    ("price", Ty::Dec),
    ("day", Ty::Date),
    ("ts", Ty::Ts),
];
const EMPTY: &[(&str, Ty)] = &[("k", Ty::Int), ("s", Ty::Str), ("ts", Ty::Ts)];
const FBID: &[(&str, Ty)] = &[
    ("auction", Ty::Int),
    ("bidder", Ty::Int),
    ("price", Ty::Float),
    ("ts", Ty::Ts),
];
const NBID: &[(&str, Ty)] = &[
    ("auction", Ty::Int),
    ("bidder", Ty::Int),
    ("price", Ty::Int),
    ("channel", Ty::Str),
    ("url", Ty::Str),
    ("dateTime", Ty::Ts),
];
const GEN: &[(&str, Ty)] = &[
    ("k", Ty::Int),
    ("s", Ty::Str),
    ("x", Ty::Float),
    ("maybe", Ty::Int),
    ("ts", Ty::Ts),
];
const ENDLESS: &[(&str, Ty)] = &[("k", Ty::Int), ("s", Ty::Str), ("ts", Ty::Ts)];
const V_POS: &[(&str, Ty)] = &[
    ("k", Ty::Int),
    ("v", Ty::Int),
    ("s", Ty::Str),
    ("ts", Ty::Ts),
];
const V_WIN: &[(&str, Ty)] = &[
    ("ws", Ty::Ts),
    ("we", Ty::Ts),
    ("rt", Ty::Ts),
    ("n", Ty::Int),
    ("total", Ty::Int),
];

/// The tables and views a generated query reads.
pub const TABLES: &[Table] = &[
    Table {
        name: "m1",
        columns: M1,
        time: Some("ts"),
        bounded: true,
    },
    Table {
        name: "m2",
        columns: M2,
        time: Some("ts"),
        bounded: true,
    },
    Table {
        name: "m_empty",
        columns: EMPTY,
        time: Some("ts"),
        bounded: true,
    },
    Table {
        name: "fbid",
        columns: FBID,
        time: Some("ts"),
        bounded: true,
    },
    Table {
        name: "nbid",
        columns: NBID,
        time: Some("dateTime"),
        bounded: true,
    },
    Table {
        name: "gen",
        columns: GEN,
        time: Some("ts"),
        bounded: true,
    },
    Table {
        name: "endless",
        columns: ENDLESS,
        time: Some("ts"),
        bounded: false,
    },
    Table {
        name: "v_pos",
        columns: V_POS,
        time: Some("ts"),
        bounded: true,
    },
    Table {
        name: "v_win",
        columns: V_WIN,
        time: Some("rt"),
        bounded: true,
    },
];

/// The statements that build the catalog, in order.
pub fn setup_statements(parallelism: usize) -> Vec<String> {
    let mut out = vec![format!("SET parallelism = {parallelism}")];
    out.extend(SETUP.iter().map(|s| s.to_string()));
    out
}

const SETUP: &[&str] = &[
    "CREATE TABLE m1 (k INT, v BIGINT, d DOUBLE, s STRING, b BOOLEAN, ts TIMESTAMP(3), \
     WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)",
    "INSERT INTO m1 VALUES \
     (1, 10, 1.5, 'a', TRUE, TIMESTAMP '2024-01-01 00:00:01'), \
     (2, -20, -0.25, '', FALSE, TIMESTAMP '2024-01-01 00:00:07'), \
     (NULL, NULL, NULL, NULL, NULL, TIMESTAMP '2024-01-01 00:00:03'), \
     (-3, 9223372036854775807, 1e300, 'ünï''cødé', TRUE, TIMESTAMP '2024-01-01 00:00:12'), \
     (2147483647, -9223372036854775807, -1e-300, 'b', NULL, TIMESTAMP '2024-01-01 00:00:09'), \
     (-2147483648, 0, 0.0, ' spaced ', FALSE, TIMESTAMP '2024-01-01 00:00:25'), \
     (0, 1, NULL, 'a', TRUE, TIMESTAMP '2024-01-01 00:00:02'), \
     (5, 50, 3.25, 'zzz', TRUE, NULL), \
     (1, 10, 2.5, 'a', FALSE, TIMESTAMP '2024-01-01 00:01:00'), \
     (7, -7, -7.5, 'A', TRUE, TIMESTAMP '2023-12-31 23:59:59')",
    "CREATE TABLE m2 (id BIGINT, name STRING, price DECIMAL(10, 2), day DATE, ts TIMESTAMP(3), \
     WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)",
    "INSERT INTO m2 VALUES \
     (1, 'x', 1.25, DATE '2024-01-01', TIMESTAMP '2024-01-01 10:00:05'), \
     (2, NULL, -3.50, DATE '2024-02-29', TIMESTAMP '2024-01-01 10:00:01'), \
     (3, '', NULL, NULL, TIMESTAMP '2024-01-01 10:00:30'), \
     (-4, 'yy', 99999999.99, DATE '1970-01-01', TIMESTAMP '2024-01-01 10:00:11'), \
     (NULL, 'x', 0.00, DATE '9999-12-31', TIMESTAMP '2024-01-01 09:59:59')",
    "CREATE TABLE m_empty (k INT, s STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)",
    "CREATE TABLE fbid (auction BIGINT, bidder BIGINT, price DOUBLE, ts TIMESTAMP(3), \
     WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) \
     WITH ('connector' = 'filesystem', 'path' = 'sql-tests/data/bids.csv', 'format' = 'csv')",
    "CREATE TABLE nbid (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, \
     dateTime TIMESTAMP(3), WATERMARK FOR dateTime AS dateTime - INTERVAL '1' SECOND) \
     WITH ('connector' = 'nexmark', 'nexmark.table.type' = 'bid', 'nexmark.event.num' = '2000')",
    "CREATE TABLE gen (k INT, s STRING, x DOUBLE, maybe INT, ts TIMESTAMP(3), \
     WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen', \
     'rows-per-second' = '1000000', 'number-of-rows' = '300', 'fields.k.min' = '-5', \
     'fields.k.max' = '5', 'fields.s.length' = '3', 'fields.maybe.null-rate' = '0.5', \
     'fields.ts.max-past' = '2 s')",
    "CREATE TABLE endless (k INT, s STRING, ts TIMESTAMP(3), \
     WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen')",
    "CREATE TABLE bh (k BIGINT, s STRING) WITH ('connector' = 'blackhole')",
    "CREATE VIEW v_pos AS SELECT k, v, s, ts FROM m1 WHERE k > 0",
    "CREATE VIEW v_win AS SELECT window_start AS ws, window_end AS we, window_time AS rt, \
     COUNT(*) AS n, SUM(v) AS total \
     FROM TABLE(TUMBLE(TABLE m1, DESCRIPTOR(ts), INTERVAL '10' SECOND)) \
     GROUP BY window_start, window_end, window_time",
];
