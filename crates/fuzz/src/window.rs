//! Window queries for [`QueryGen`]: TUMBLE and HOP in the Flink
//! (`TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), size))`), RisingWave
//! (`TUMBLE(t, ts, size)`) and legacy (`GROUP BY TUMBLE(ts, size)`)
//! dialects, with aggregates, FILTER and HAVING, and windows stacked on an
//! inner window's `window_time`.

use crate::catalog::{Table, Ty, TABLES};
use crate::expr::ExprGen;
use crate::literal::{INTERVALS, WINDOW_SIZES};
use crate::query::{columns, QueryGen};

impl QueryGen<'_> {
    pub(crate) fn size(&mut self) -> String {
        if self.r.chance(8) {
            self.r.pick(INTERVALS).to_string()
        } else {
            self.r.pick(WINDOW_SIZES).to_string()
        }
    }

    /// A window relation over `data` (a table name or a parenthesized
    /// subquery) in one of the three dialects; returns the FROM clause and
    /// the legacy GROUP BY item, if the legacy dialect was chosen.
    pub(crate) fn window_from(
        &mut self,
        data: &str,
        time: &str,
    ) -> (String, Option<(String, String)>) {
        let hop = self.r.chance(35);
        // HOP stays within 60 windows per row, except for the odd invalid
        // or absurd pair (a day of 1 s slides would merely be a lot of work).
        let (size, slide) = if !hop {
            (self.size(), String::new())
        } else if self.r.chance(92) {
            let sizes = [
                "INTERVAL '2' SECOND",
                "INTERVAL '10' SECOND",
                "INTERVAL '1' MINUTE",
            ];
            let slides = [
                "INTERVAL '1' SECOND",
                "INTERVAL '2' SECOND",
                "INTERVAL '5' SECOND",
            ];
            (
                self.r.pick(&sizes).to_string(),
                self.r.pick(&slides).to_string(),
            )
        } else {
            // (size, slide): invalid, or absurd ratios (a trillion windows
            // per row) that the engine must reject rather than run.
            let pairs = [
                ("'999999999' DAY", "'1' SECOND"),
                ("'1' SECOND", "'2' SECOND"),
                ("'0' SECOND", "'0' SECOND"),
                ("'1' SECOND", "'-5' SECOND"),
                ("'1' MONTH", "'1' DAY"),
                ("'1-2' YEAR TO MONTH", "'1' SECOND"),
                ("'banana' SECOND", "'1' SECOND"),
                ("'3' MILLISECOND", "'1' MILLISECOND"),
                ("'10' SECOND", "'3' SECOND"),
            ];
            let (size, slide) = self.r.pick(&pairs);
            (format!("INTERVAL {size}"), format!("INTERVAL {slide}"))
        };
        let offset = if self.r.chance(8) {
            format!(", {}", self.r.pick(INTERVALS))
        } else {
            String::new()
        };
        let is_table = !data.starts_with('(');
        match self.r.below(if is_table { 4 } else { 2 }) {
            0 => {
                let table = if is_table {
                    format!("TABLE {data}")
                } else {
                    data.to_string()
                };
                let args = if hop {
                    format!("{table}, DESCRIPTOR({time}), {slide}, {size}{offset}")
                } else if self.r.chance(15) {
                    format!("DATA => {table}, TIMECOL => DESCRIPTOR({time}), SIZE => {size}")
                } else {
                    format!("{table}, DESCRIPTOR({time}), {size}{offset}")
                };
                let f = if hop { "HOP" } else { "TUMBLE" };
                (format!("TABLE({f}({args}))"), None)
            }
            1 => {
                let args = if hop {
                    format!("{slide}, {size}")
                } else {
                    size
                };
                let f = if hop { "HOP" } else { "TUMBLE" };
                (format!("{f}({data}, {time}, {args}{offset})"), None)
            }
            _ => {
                let (f, args) = if hop {
                    ("HOP", format!("{time}, {slide}, {size}"))
                } else {
                    ("TUMBLE", format!("{time}, {size}"))
                };
                (
                    data.to_string(),
                    Some((format!("{f}({args})"), f.to_string())),
                )
            }
        }
    }

    /// A window aggregate (or a plain window TVF scan) over a table or, when
    /// `inner` is given, over that subquery/view with its time column.
    pub fn window_query(&mut self, inner: Option<(&str, &Table)>) -> String {
        let (data, t) = match inner {
            Some((d, t)) => (d.to_string(), t),
            None => {
                let bounded = self.r.chance(95);
                let t = self.table(bounded);
                (t.name.to_string(), t)
            }
        };
        let time = t.time.unwrap_or("ts");
        let time = if self.r.chance(4) {
            *self.r.pick(&["k", "s", "nope", "window_start"])
        } else {
            time
        };
        let (from, legacy) = self.window_from(&data, time);
        let mut cols = columns(t, None);
        if legacy.is_none() {
            for w in ["window_start", "window_end", "window_time"] {
                cols.push((w.to_string(), Ty::Ts));
            }
        }
        let keys: Vec<String> = (0..self.r.below(3))
            .map(|_| self.r.pick(&cols).0.clone())
            .collect();
        let depth = self.r.range(0, 2);
        let naggs = self.r.range(0, 4);
        let aggs: Vec<String> = {
            let mut g = ExprGen {
                r: self.r,
                cols: &cols,
                wrong: self.wrong,
            };
            (0..naggs)
                .map(|i| format!("{} AS a{i}", g.aggregate(depth)))
                .collect()
        };
        let mut select = Vec::new();
        let mut group = Vec::new();
        match &legacy {
            Some((call, f)) => {
                let args = &call[f.len()..];
                for part in ["START", "END", "ROWTIME"] {
                    if self.r.chance(60) {
                        select.push(format!("{f}_{part}{args} AS w_{}", part.to_lowercase()));
                    }
                }
                group.push(call.clone());
            }
            None => {
                if self.r.chance(5) && naggs == 0 {
                    // A plain TVF scan: every row with its window.
                    let where_ = self.bool_expr(&cols, 2);
                    return format!("SELECT * FROM {from} WHERE {where_}{}", self.limit());
                }
                select.push("window_start".into());
                group.push("window_start".into());
                if self.r.chance(80) {
                    select.push("window_end".into());
                    group.push("window_end".into());
                }
                if self.r.chance(20) {
                    select.push("window_time".into());
                    group.push("window_time".into());
                }
            }
        }
        select.extend(keys.iter().cloned());
        group.extend(keys);
        select.extend(aggs);
        if select.is_empty() {
            select.push("COUNT(*)".into());
        }
        let mut s = format!("SELECT {} FROM {from}", select.join(", "));
        if self.r.chance(25) {
            s += &format!(" WHERE {}", self.bool_expr(&columns(t, None), 2));
        }
        s += &format!(" GROUP BY {}", group.join(", "));
        if self.r.chance(20) {
            let agg = ExprGen {
                r: self.r,
                cols: &cols,
                wrong: self.wrong,
            }
            .aggregate(0);
            s += &format!(
                " HAVING {agg} {} {}",
                self.r.pick(&[">", "<", "=", ">="]),
                self.r.pick(&["0", "1", "2.5", "NULL"])
            );
        }
        if t.bounded && self.r.chance(15) {
            s += " ORDER BY window_start";
        }
        if self.r.chance(10) {
            s += &self.limit();
        }
        s
    }

    /// A window over the `window_time` of an inner window aggregate.
    pub(crate) fn stacked(&mut self) -> String {
        let t = self.table(true);
        let time = t.time.unwrap_or("ts");
        let size = self.size();
        let inner = format!(
            "SELECT window_start AS ws, window_time AS rt, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE {}, DESCRIPTOR({time}), {size})) GROUP BY window_start, window_end, window_time",
            t.name
        );
        const INNER: Table = Table {
            name: "inner",
            columns: &[("ws", Ty::Ts), ("rt", Ty::Ts), ("n", Ty::Int)],
            time: Some("rt"),
            bounded: true,
        };
        if self.r.chance(50) {
            let q = format!("({inner})");
            self.window_query(Some((&q, &INNER)))
        } else {
            self.window_query(Some(("v_win", &TABLES[TABLES.len() - 1])))
        }
    }
}
