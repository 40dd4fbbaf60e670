//! The statements of `sql-tests/**/*.slt`, per file: the lines after
//! `statement ok|error|count` and `query ...` up to a blank line or `----`.

use std::path::{Path, PathBuf};

/// One `.slt` file's statements, in order.
#[derive(Debug, Clone)]
pub struct SltFile {
    /// Path relative to `sql-tests/`.
    pub name: String,
    /// Statement texts.
    pub statements: Vec<String>,
}

/// The repository's `sql-tests/` directory.
pub fn sql_tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql-tests")
}

/// Every `.slt` file under `dir` except the Kafka ones (they need a broker
/// and `$KAFKA` substitution), sorted by path so seeds stay stable.
pub fn load(dir: &Path) -> Vec<SltFile> {
    sluice_slt::slt_files(dir)
        .into_iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == "kafka"))
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let name = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
            let statements = statements(&text);
            (!statements.is_empty()).then_some(SltFile { name, statements })
        })
        .collect()
}

/// The statement texts of one `.slt` file.
pub fn statements(slt: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = slt.lines();
    while let Some(line) = lines.next() {
        let head = line.trim_start();
        if !(head.starts_with("statement ") || head.starts_with("query ") || head == "query") {
            continue;
        }
        let mut sql = Vec::new();
        for l in lines.by_ref() {
            if l.trim().is_empty() || l.trim() == "----" {
                break;
            }
            sql.push(l);
        }
        let sql = sql.join("\n");
        if !sql.is_empty() && !sql.contains('$') {
            out.push(sql);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_statements_and_queries() {
        let slt = "# c\nstatement ok\nCREATE TABLE t (a INT)\n\nquery I rowsort\nSELECT a\nFROM t\n----\n1\n\nstatement error x\nSELEC 1\n";
        assert_eq!(
            statements(slt),
            vec!["CREATE TABLE t (a INT)", "SELECT a\nFROM t", "SELEC 1"]
        );
    }

    #[test]
    fn finds_the_repository_files() {
        let files = load(&sql_tests_dir());
        assert!(files.len() >= 5, "{files:?}");
        assert!(files.iter().all(|f| !f.name.contains("kafka")));
    }
}
