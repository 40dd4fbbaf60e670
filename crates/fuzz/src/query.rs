//! Random statements over the fixed catalog: SELECTs with projections,
//! filters, ORDER BY/LIMIT/OFFSET, UNION ALL and subqueries; window
//! aggregates in the three dialects; stacked windows; views, INSERT,
//! EXPLAIN; and statements that must fail cleanly.

use crate::catalog::{Table, Ty, TABLES, TYPES};
use crate::expr::{Columns, ExprGen};
use crate::literal::any_literal;
use crate::rng::Rng;

/// Builds one statement from a random source.
pub struct QueryGen<'a> {
    /// The random source.
    pub r: &'a mut Rng,
    /// Percent of expression arguments given a random type.
    pub wrong: u32,
    /// Leave out deeply nested statements.
    pub skip_deep: bool,
}

pub(crate) fn columns(t: &Table, qualifier: Option<&str>) -> Vec<(String, Ty)> {
    t.columns
        .iter()
        .map(|(c, ty)| match qualifier {
            Some(q) => (format!("{q}.{c}"), *ty),
            None => (c.to_string(), *ty),
        })
        .collect()
}

impl QueryGen<'_> {
    /// One statement of any kind.
    pub fn statement(&mut self) -> String {
        let deep = if self.skip_deep { 0 } else { 12 };
        let weights = [22, 20, 5, 5, 5, deep, 6, 4, 4, 10, 4, 3];
        match self.r.weighted(&weights) {
            0 => self.select(),
            1 => self.window_query(None),
            2 => self.stacked(),
            3 => self.union(),
            4 => self.subquery(),
            5 => crate::deep::statement(self.r),
            6 => self.explain(),
            7 => self.view(),
            8 => self.insert(),
            9 => crate::failing::statement(self.r),
            10 => self.literals(),
            _ => self.command(),
        }
    }

    pub(crate) fn table(&mut self, bounded_only: bool) -> &'static Table {
        loop {
            let t = self.r.pick(TABLES);
            if t.bounded || !bounded_only {
                return t;
            }
        }
    }

    fn exprs(&mut self, cols: &Columns, n: usize, depth: usize) -> Vec<String> {
        let mut g = ExprGen {
            r: self.r,
            cols,
            wrong: self.wrong,
        };
        (0..n)
            .map(|i| {
                let ty = *g.r.pick(&TYPES);
                let e = g.expr(ty, depth);
                if g.r.chance(40) {
                    format!("{e} AS c{i}")
                } else {
                    e
                }
            })
            .collect()
    }

    pub(crate) fn bool_expr(&mut self, cols: &Columns, depth: usize) -> String {
        ExprGen {
            r: self.r,
            cols,
            wrong: self.wrong,
        }
        .expr(Ty::Bool, depth)
    }

    pub(crate) fn limit(&mut self) -> String {
        let n = self.r.pick(&[
            "0",
            "1",
            "3",
            "10",
            "100",
            "9223372036854775807",
            "-1",
            "1.5",
        ]);
        let mut s = if self.r.chance(20) {
            String::new()
        } else {
            format!(" LIMIT {n}")
        };
        if self.r.chance(30) {
            s += &format!(" OFFSET {}", self.r.pick(&["0", "1", "2", "1000", "-1"]));
        }
        s
    }

    fn order_by(&mut self, cols: &Columns) -> String {
        let n = self.r.range(1, 3);
        let keys: Vec<String> = (0..n)
            .map(|_| {
                let (c, _) = self.r.pick(cols);
                let dir = self
                    .r
                    .pick(&["", " ASC", " DESC", " DESC NULLS FIRST", " NULLS LAST"]);
                format!("{c}{dir}")
            })
            .collect();
        format!(" ORDER BY {}", keys.join(", "))
    }

    /// A projection/filter query, sometimes ordered and limited.
    pub fn select(&mut self) -> String {
        let bounded = self.r.chance(90);
        let t = self.table(bounded);
        let alias = self.r.chance(30).then_some("t");
        let cols = columns(t, alias);
        let items = if self.r.chance(10) {
            "*".to_string()
        } else {
            let n = self.r.size(6);
            let depth = self.r.range(0, 4);
            self.exprs(&cols, n, depth).join(", ")
        };
        let from = match alias {
            Some(a) => format!("{} AS {a}", t.name),
            None => t.name.to_string(),
        };
        let mut s = format!("SELECT {items} FROM {from}");
        if self.r.chance(60) {
            let depth = self.r.range(1, 4);
            s += &format!(" WHERE {}", self.bool_expr(&cols, depth));
        }
        if self.r.chance(30) {
            s += &self.order_by(&cols);
        }
        if self.r.chance(35) {
            s += &self.limit();
        }
        s
    }

    fn union(&mut self) -> String {
        let n = self.r.range(2, 4);
        let bounded = self.r.chance(90);
        let t = self.table(bounded);
        let cols = columns(t, None);
        let ty = *self.r.pick(&TYPES);
        let parts: Vec<String> = (0..n)
            .map(|_| {
                let e = ExprGen {
                    r: self.r,
                    cols: &cols,
                    wrong: self.wrong,
                }
                .expr(ty, 2);
                let tn = if self.r.chance(80) {
                    t.name
                } else {
                    self.r.pick(TABLES).name
                };
                format!("SELECT {e} AS c FROM {tn}")
            })
            .collect();
        let mut s = parts.join(" UNION ALL ");
        if self.r.chance(30) {
            s = format!("SELECT c FROM ({s}) AS u{}", self.limit());
        }
        s
    }

    fn subquery(&mut self) -> String {
        let bounded = self.r.chance(90);
        let t = self.table(bounded);
        let cols = columns(t, None);
        let inner_items = self.exprs(&cols, 1, 2).join(", ");
        let inner = if self.r.chance(50) {
            format!("SELECT *, {inner_items} FROM {}", t.name)
        } else {
            format!(
                "SELECT * FROM {} WHERE {}",
                t.name,
                self.bool_expr(&cols, 2)
            )
        };
        let n = self.r.range(1, 3);
        let outer_items = self.exprs(&cols, n, 2).join(", ");
        format!(
            "SELECT {outer_items} FROM ({inner}) AS sq{}",
            if self.r.chance(30) {
                self.limit()
            } else {
                String::new()
            }
        )
    }

    fn explain(&mut self) -> String {
        let analyze = if self.r.chance(20) { "ANALYZE " } else { "" };
        let q = match self.r.below(4) {
            0 => self.select(),
            1 => self.window_query(None),
            2 => {
                let t = &TABLES[6];
                let inner = self
                    .r
                    .pick(&[
                        "SELECT * FROM endless",
                        "SELECT k, s FROM endless WHERE k > 0",
                    ])
                    .to_string();
                if self.r.chance(50) {
                    inner
                } else {
                    self.window_query(Some(("endless", t)))
                }
            }
            _ => self.union(),
        };
        format!("EXPLAIN {analyze}{q}")
    }

    fn view(&mut self) -> String {
        let q = match self.r.below(3) {
            0 => self.select(),
            1 => self.window_query(None),
            _ => self.subquery(),
        };
        if self.r.chance(50) {
            format!("CREATE OR REPLACE VIEW gv AS {q}")
        } else {
            format!("SELECT * FROM gv{}", self.limit())
        }
    }

    fn insert(&mut self) -> String {
        match self.r.below(3) {
            0 => {
                let t = self.table(true);
                let cols = columns(t, None);
                let mut g = ExprGen {
                    r: self.r,
                    cols: &cols,
                    wrong: self.wrong,
                };
                let (k, s) = (g.expr(Ty::Int, 2), g.expr(Ty::Str, 2));
                format!("INSERT INTO bh SELECT {k}, {s} FROM {}", t.name)
            }
            1 => {
                let n = self.r.range(1, 3);
                let rows: Vec<String> = (0..n)
                    .map(|_| {
                        let mut g = ExprGen {
                            r: self.r,
                            cols: &[],
                            wrong: self.wrong,
                        };
                        let vals: Vec<String> =
                            [Ty::Int, Ty::Int, Ty::Float, Ty::Str, Ty::Bool, Ty::Ts]
                                .iter()
                                .map(|t| g.expr(*t, 1))
                                .collect();
                        format!("({})", vals.join(", "))
                    })
                    .collect();
                format!("INSERT INTO m_empty SELECT k, s, ts FROM m1 WHERE k = {}; INSERT INTO m1 VALUES {}", any_literal(self.r), rows.join(", "))
            }
            _ => format!("INSERT INTO bh {}", self.window_query(None)),
        }
    }

    fn literals(&mut self) -> String {
        let n = self.r.range(1, 6);
        let items: Vec<String> = (0..n).map(|_| any_literal(self.r)).collect();
        format!("SELECT {}", items.join(", "))
    }

    fn command(&mut self) -> String {
        let t = self.r.pick(TABLES).name;
        match self.r.below(8) {
            0 => "SHOW TABLES".into(),
            1 => format!("DESCRIBE {t}"),
            2 => format!("SHOW CREATE TABLE {t}"),
            3 => "SHOW JOBS".into(),
            4 => format!(
                "SET parallelism = {}",
                self.r
                    .pick(&["1", "2", "4", "0", "257", "auto", "-1", "'x'"])
            ),
            5 => "RESET parallelism".into(),
            6 => format!("SET max-rows = {}", self.r.pick(&["10", "auto", "0"])),
            _ => "SET".into(),
        }
    }
}
