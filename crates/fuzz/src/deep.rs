//! Deeply nested and very long expressions and queries: the shapes that
//! find recursion without limits (stack overflows) and planning that is
//! exponential in depth (hangs).

use crate::catalog::{Table, Ty, TABLES};
use crate::rng::Rng;

/// How deep a nesting gets: sqlparser stops at 50 levels, so mostly below
/// that, often right around it, sometimes far beyond (10–300 in all).
fn depth(r: &mut Rng) -> usize {
    match r.below(20) {
        0..=9 => r.range(10, 47),
        10..=12 => r.range(44, 60),
        _ => r.range(60, 300),
    }
}

/// How long a flat chain (`a + a + ...`) gets: no parser limit applies,
/// so usually 10–300 terms and now and then up to 5000.
fn length(r: &mut Rng) -> usize {
    if r.chance(15) {
        r.range(300, 5000)
    } else {
        r.range(10, 300)
    }
}

/// A bounded table with an integer and a string column.
fn table(r: &mut Rng) -> &'static Table {
    let names = ["m1", "gen", "m_empty", "v_pos"];
    let name = *r.pick(&names);
    TABLES.iter().find(|t| t.name == name).unwrap_or(&TABLES[0])
}

fn repeat_join(n: usize, item: &str, sep: &str) -> String {
    vec![item; n].join(sep)
}

fn wrap(n: usize, open: &str, inner: &str, close: &str) -> String {
    let mut s = String::with_capacity(n * (open.len() + close.len()) + inner.len());
    for _ in 0..n {
        s += open;
    }
    s += inner;
    for _ in 0..n {
        s += close;
    }
    s
}

/// One deeply nested statement.
pub fn statement(r: &mut Rng) -> String {
    let shape = r.below(16);
    // Flat chains, IN lists, select lists and UNION ALL are long, not deep.
    let n = if [0, 1, 2, 12, 14].contains(&shape) {
        length(r)
    } else {
        depth(r)
    };
    let t = table(r);
    let int = t.columns_of(Ty::Int).first().copied().unwrap_or("1");
    let text = t.columns_of(Ty::Str).first().copied().unwrap_or("'x'");
    let from = if r.chance(25) {
        String::new()
    } else {
        format!(" FROM {}", t.name)
    };
    let (int, text) = if from.is_empty() {
        ("1", "'x'")
    } else {
        (int, text)
    };
    let e = match shape {
        0 => repeat_join(n, int, " + "),
        1 => {
            let item = *r.pick(&["1", "k", "1.5", "NULL"]);
            let op = *r.pick(&["+", "*", "-", "/"]);
            repeat_join(n, item, &format!(" {op} ")).replace('k', int)
        }
        2 => repeat_join(n, text, " || "),
        3 => wrap(n, &format!("({int} > 0 AND "), "TRUE", ")"),
        4 => {
            let types = [
                "INT",
                "BIGINT",
                "STRING",
                "DOUBLE",
                "DECIMAL(20, 2)",
                "SMALLINT",
            ];
            let mut s = int.to_string();
            for i in 0..n {
                let ty = if r.chance(50) {
                    "INT"
                } else {
                    types[i % types.len()]
                };
                let kw = if r.chance(20) { "TRY_CAST" } else { "CAST" };
                s = format!("{kw}({s} AS {ty})");
            }
            s
        }
        5 => format!("CAST({} AS INT)", wrap(n, "CAST(", int, " AS INT)")),
        6 => {
            let f = r.pick(&[
                "abs", "-", "ceil", "sqrt", "round", "coalesce", "lower", "upper", "trim",
                "reverse",
            ]);
            let inner = if ["lower", "upper", "trim", "reverse"].contains(f) {
                text
            } else {
                int
            };
            if *f == "-" {
                wrap(n, "-(", inner, ")")
            } else {
                wrap(n, &format!("{f}("), inner, ")")
            }
        }
        7 => wrap(n, "(", int, ")"),
        8 => wrap(n, "CASE WHEN TRUE THEN ", int, " ELSE 0 END"),
        9 => wrap(n, &format!("{int} + ("), int, ")"),
        10 => wrap(n, "NOT ", "TRUE", ""),
        11 => wrap(n, "concat(", text, ", 'a')"),
        12 => format!(
            "{int} IN ({})",
            (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
        ),
        13 => wrap(n, "(SELECT ", "1", ")"),
        14 => {
            let cols: Vec<String> = (0..n).map(|i| format!("{int} + {i} AS c{i}")).collect();
            cols.join(", ")
        }
        _ => wrap(n, "COALESCE(NULL, ", int, ")"),
    };
    match r.below(10) {
        0 => format!(
            "SELECT * FROM {}",
            wrap(n.min(400), "(SELECT * FROM ", t.name, ") AS q")
        ),
        1 => {
            let one = format!("SELECT {int} AS c{from}");
            repeat_join(n.min(400), &one, " UNION ALL ")
        }
        2 => format!("SELECT COUNT(*) FROM {} WHERE {e} IS NOT NULL", t.name),
        3 => format!("EXPLAIN SELECT {e}{from}"),
        _ => format!("SELECT {e}{from}"),
    }
}
