//! The line editor's helper: Enter runs a statement only when it is
//! complete, and Tab completes keywords, table, view and column names,
//! settings and connector option keys.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::input::{is_complete, scan, word_start};

/// Names the completer offers, refreshed after every statement.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Tables and views with their columns.
    pub tables: Vec<(String, Vec<String>)>,
}

/// Shared handle to the catalog snapshot.
pub type SharedCatalog = Arc<Mutex<Catalog>>;

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "HAVING",
    "ORDER",
    "LIMIT",
    "INSERT",
    "INTO",
    "VALUES",
    "CREATE",
    "TABLE",
    "VIEW",
    "DROP",
    "SHOW",
    "TABLES",
    "JOBS",
    "STOP",
    "JOB",
    "DESCRIBE",
    "EXPLAIN",
    "ANALYZE",
    "WITH",
    "WATERMARK",
    "FOR",
    "AS",
    "INTERVAL",
    "SECOND",
    "MINUTE",
    "HOUR",
    "DAY",
    "TUMBLE",
    "HOP",
    "DESCRIPTOR",
    "TABLE",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "IS",
    "IN",
    "BETWEEN",
    "LIKE",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "CAST",
    "COUNT",
    "SUM",
    "MIN",
    "MAX",
    "AVG",
    "DISTINCT",
    "UNION",
    "ALL",
    "SET",
    "RESET",
    "PRIMARY",
    "KEY",
    "ENFORCED",
    "TIMESTAMP",
    "BIGINT",
    "INT",
    "INTEGER",
    "DOUBLE",
    "FLOAT",
    "STRING",
    "VARCHAR",
    "BOOLEAN",
    "DECIMAL",
    "DATE",
    "window_start",
    "window_end",
    "window_time",
    "IF",
    "EXISTS",
    "TEMPORARY",
];

const OPTION_KEYS: &[&str] = &[
    "connector",
    "path",
    "format",
    "csv.field-delimiter",
    "csv.ignore-parse-errors",
    "json.ignore-parse-errors",
    "rows-per-second",
    "number-of-rows",
    "fields.",
];

const CONNECTORS: &[&str] = &["datagen", "filesystem", "memory", "blackhole"];

/// The rustyline helper.
pub struct SqlHelper {
    catalog: SharedCatalog,
}

impl SqlHelper {
    /// A helper completing from `catalog`.
    pub fn new(catalog: SharedCatalog) -> Self {
        SqlHelper { catalog }
    }

    fn candidates(&self, before: &str, word: &str) -> Vec<String> {
        let s = scan(before);
        if s.in_single {
            // Inside a quoted string: option keys and connector names.
            let quoted_value = before.trim_end_matches(word).trim_end_matches('\'');
            let is_value = quoted_value.trim_end().ends_with('=');
            let pool: Vec<String> = if is_value {
                CONNECTORS.iter().map(|s| s.to_string()).collect()
            } else {
                OPTION_KEYS.iter().map(|s| s.to_string()).collect()
            };
            return starting_with(pool, word, false);
        }
        let catalog = self.catalog.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((table, _)) = word.rsplit_once('.') {
            // `t.col`: columns of that table.
            let cols = catalog
                .tables
                .iter()
                .filter(|(t, _)| t.eq_ignore_ascii_case(table))
                .flat_map(|(_, cols)| cols.iter().map(|c| format!("{table}.{c}")))
                .collect();
            return starting_with(cols, word, false);
        }
        let mut pool: Vec<String> = Vec::new();
        for (t, cols) in &catalog.tables {
            pool.push(t.clone());
            pool.extend(cols.iter().cloned());
        }
        pool.extend(
            sluice_engine::settings::Settings::keys()
                .iter()
                .map(|k| k.to_string()),
        );
        let mut names = starting_with(pool, word, false);
        names.extend(starting_with(
            KEYWORDS.iter().map(|s| s.to_string()).collect(),
            word,
            true,
        ));
        names.dedup();
        names
    }
}

/// Entries of `pool` that start with `prefix` (case-insensitive), sorted.
/// Keywords follow the case the user types.
fn starting_with(pool: Vec<String>, prefix: &str, keyword: bool) -> Vec<String> {
    let lower = prefix.to_ascii_lowercase();
    let typed_lower = prefix.chars().any(|c| c.is_ascii_lowercase());
    let mut out: Vec<String> = pool
        .into_iter()
        .filter(|c| c.to_ascii_lowercase().starts_with(&lower) && c.len() > prefix.len())
        .map(|c| {
            if keyword && typed_lower {
                c.to_ascii_lowercase()
            } else {
                c
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

impl Completer for SqlHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = word_start(line, pos);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((pos, vec![]));
        }
        let pairs = self
            .candidates(&line[..pos], word)
            .into_iter()
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Validator for SqlHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if is_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}

impl Highlighter for SqlHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Helper for SqlHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn helper() -> SqlHelper {
        let catalog = Catalog {
            tables: vec![(
                "bids".to_string(),
                vec!["auction".to_string(), "price".to_string()],
            )],
        };
        SqlHelper::new(Arc::new(Mutex::new(catalog)))
    }

    #[test]
    fn completes_tables_columns_keywords_and_options() {
        let h = helper();
        assert_eq!(h.candidates("SELECT * FROM bid", "bid"), vec!["bids"]);
        assert_eq!(
            h.candidates("SELECT bids.pr", "bids.pr"),
            vec!["bids.price"]
        );
        assert!(h.candidates("SEL", "SEL").contains(&"SELECT".to_string()));
        assert!(h.candidates("sel", "sel").contains(&"select".to_string()));
        assert_eq!(h.candidates("SELECT auc", "auc"), vec!["auction"]);
        assert_eq!(
            h.candidates("CREATE TABLE t (a INT) WITH ('conn", "conn"),
            vec!["connector"]
        );
        assert_eq!(
            h.candidates("CREATE TABLE t (a INT) WITH ('connector' = 'data", "data"),
            vec!["datagen"]
        );
        assert_eq!(h.candidates("SET max", "max"), vec!["max-rows"]);
    }
}
