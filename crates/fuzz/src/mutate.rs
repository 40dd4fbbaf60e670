//! Token-level mutation of real statements: delete, duplicate, swap and
//! repeat tokens, truncate, insert keywords/operators/literals/parentheses,
//! replace identifiers and push numbers to extremes.
//!
//! String literals of `WITH ('key' = 'value')` options are never touched,
//! so a mutant cannot turn a bounded 2000-row source into a slow or endless
//! one (that would be a fuzzer-made timeout, not an engine bug).

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::literal::any_literal;
use crate::rng::Rng;

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "LIMIT",
    "OFFSET",
    "UNION ALL",
    "TABLE",
    "DESCRIPTOR",
    "INTERVAL",
    "TUMBLE",
    "HOP",
    "CAST",
    "TRY_CAST",
    "AS",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "NULL",
    "NOT",
    "AND",
    "OR",
    "JOIN",
    "ON",
    "WITH",
    "WATERMARK FOR",
    "OVER",
    "DISTINCT",
    "FILTER",
    "HAVING",
    "VALUES",
    "INSERT INTO",
    "CREATE TABLE",
    "VIEW",
    "EXPLAIN",
    "IS",
    "IN",
    "BETWEEN",
    "LIKE",
    "ALL",
    "ANY",
    "EXISTS",
    "LATERAL",
    "SECOND",
    "MINUTE",
    "DAY",
    "TIMESTAMP",
    "DATE",
    "PRIMARY KEY",
    "METADATA",
    "VIRTUAL",
    "COUNT(*)",
    "*",
];

const OPERATORS: &[&str] = &[
    "+", "-", "*", "/", "%", "=", "<>", "<", ">=", "||", "(", ")", ",", ".", ";", "::", "=>", "[",
    "]", "'", "\"", "?", "@", "!", "~",
];

const IDENTIFIERS: &[&str] = &[
    "window_start",
    "window_end",
    "window_time",
    "ts",
    "k",
    "v",
    "s",
    "n",
    "t",
    "x",
    "nope",
    "dateTime",
    "price",
    "auction",
    "bid",
    "clicks",
    "rt",
    "ws",
    "\"Quoted Name\"",
    "\"\"",
    "_",
    "TUMBLE",
    "HOP",
    "CUMULATE",
    "SESSION",
    "TABLE",
    "DESCRIPTOR",
    "count",
    "sum",
    "max",
    "tumble_start",
    "hop_end",
    "unnest",
    "generate_series",
    "range",
    "now",
];

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "2147483648",
    "-2147483649",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "1e309",
    "1e-400",
    "0.0000000001",
    "99999999999999999999999999999",
    "00",
    "1.",
    ".5",
];

/// Tokens of `sql` as text (whitespace tokens dropped), and which of them
/// are protected option strings. `None` if it does not tokenize.
fn tokens(sql: &str) -> Option<(Vec<String>, Vec<bool>)> {
    let toks = Tokenizer::new(&GenericDialect {}, sql).tokenize().ok()?;
    let toks: Vec<Token> = toks
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let mut protected = vec![false; toks.len()];
    for i in 0..toks.len() {
        let is_str = |j: usize| matches!(toks.get(j), Some(Token::SingleQuotedString(_)));
        if matches!(toks.get(i + 1), Some(Token::Eq)) && is_str(i) && is_str(i + 2) {
            protected[i] = true;
            protected[i + 2] = true;
        }
    }
    Some((toks.iter().map(|t| t.to_string()).collect(), protected))
}

/// A mutant of `sql`: one to four random edits.
pub fn mutate(r: &mut Rng, sql: &str) -> String {
    let Some((mut toks, mut prot)) = tokens(sql) else {
        return sql.to_string();
    };
    if toks.is_empty() {
        return sql.to_string();
    }
    let edits = [1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    for _ in 0..*r.pick(&edits) {
        edit(r, &mut toks, &mut prot);
        if toks.is_empty() {
            break;
        }
    }
    toks.join(" ")
}

/// A random unprotected position, if any.
fn free(r: &mut Rng, prot: &[bool]) -> Option<usize> {
    let free: Vec<usize> = (0..prot.len()).filter(|i| !prot[*i]).collect();
    (!free.is_empty()).then(|| *r.pick(&free))
}

fn insert(toks: &mut Vec<String>, prot: &mut Vec<bool>, at: usize, tok: String) {
    let at = at.min(toks.len());
    toks.insert(at, tok);
    prot.insert(at, false);
}

fn edit(r: &mut Rng, toks: &mut Vec<String>, prot: &mut Vec<bool>) {
    let at = r.below(toks.len() + 1);
    match r.below(12) {
        0 => {
            if let Some(i) = free(r, prot) {
                toks.remove(i);
                prot.remove(i);
            }
        }
        1 => {
            if let Some(i) = free(r, prot) {
                let t = toks[i].clone();
                insert(toks, prot, i, t);
            }
        }
        2 => {
            if let (Some(i), Some(j)) = (free(r, prot), free(r, prot)) {
                toks.swap(i, j);
            }
        }
        3 => {
            let keep = r.below(toks.len());
            toks.truncate(keep.max(1));
            prot.truncate(keep.max(1));
        }
        4 => insert(toks, prot, at, r.pick(KEYWORDS).to_string()),
        5 => insert(toks, prot, at, r.pick(OPERATORS).to_string()),
        6 => insert(toks, prot, at, any_literal(r)),
        7 => {
            let end = r.range(at, toks.len());
            insert(toks, prot, end, ")".into());
            insert(toks, prot, at, "(".into());
        }
        8 | 9 => {
            let words: Vec<usize> = (0..toks.len())
                .filter(|i| {
                    !prot[*i]
                        && toks[*i]
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_alphabetic() || c == '_')
                })
                .collect();
            if !words.is_empty() {
                let i = *r.pick(&words);
                toks[i] = r.pick(IDENTIFIERS).to_string();
            }
        }
        10 => {
            let nums: Vec<usize> = (0..toks.len())
                .filter(|i| toks[*i].chars().next().is_some_and(|c| c.is_ascii_digit()))
                .collect();
            if !nums.is_empty() {
                let i = *r.pick(&nums);
                toks[i] = r.pick(NUMBERS).to_string();
            }
        }
        _ => {
            // Repeat a short span a few times.
            let len = r.range(1, 6).min(toks.len() - at.min(toks.len()));
            if len > 0 && !prot[at..at + len].iter().any(|p| *p) {
                let span: Vec<String> = toks[at..at + len].to_vec();
                for _ in 0..r.range(1, 20) {
                    for (k, t) in span.iter().enumerate() {
                        insert(toks, prot, at + k, t.clone());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_strings_are_protected() {
        let (toks, prot) =
            tokens("CREATE TABLE t (a INT) WITH ('number-of-rows' = '10')").expect("tokenizes");
        let i = toks
            .iter()
            .position(|t| t == "'10'")
            .expect("has the value");
        assert!(prot[i] && prot[i - 2] && !prot[0]);
    }

    #[test]
    fn mutants_are_deterministic_and_differ() {
        let sql =
            "SELECT k, COUNT(*) FROM TUMBLE(t, ts, INTERVAL '1' SECOND) GROUP BY window_start";
        let a = mutate(&mut Rng::new(3), sql);
        assert_eq!(a, mutate(&mut Rng::new(3), sql));
        let differ = (0..20)
            .filter(|s| mutate(&mut Rng::new(*s), sql) != sql)
            .count();
        assert!(differ > 10);
    }
}
