//! The scalar functions and operators of each type, and aggregates, for
//! [`ExprGen`].

use crate::catalog::{Ty, TYPES};
use crate::expr::ExprGen;
use crate::literal::INTERVALS;

impl ExprGen<'_> {
    pub(crate) fn int(&mut self, d: usize) -> String {
        let ops = ["+", "-", "*", "/", "%", "&", "|"];
        match self.r.below(16) {
            0..=4 => {
                let op = self.r.pick(&ops);
                format!("{} {op} {}", self.expr(Ty::Int, d), self.expr(Ty::Int, d))
            }
            5 => format!("-{}", self.expr(Ty::Int, d)),
            6 => format!("abs({})", self.expr(Ty::Int, d)),
            7 => format!("MOD({}, {})", self.expr(Ty::Int, d), self.expr(Ty::Int, d)),
            8 => {
                let f = self.r.pick(&[
                    "length",
                    "char_length",
                    "ascii",
                    "octet_length",
                    "bit_length",
                ]);
                format!("{f}({})", self.expr(Ty::Str, d))
            }
            9 => format!(
                "strpos({}, {})",
                self.expr(Ty::Str, d),
                self.expr(Ty::Str, d)
            ),
            10 => {
                let part = self
                    .r
                    .pick(&["YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND", "DOW"]);
                format!("EXTRACT({part} FROM {})", self.expr(Ty::Ts, d))
            }
            11 => format!(
                "date_part('{}', {})",
                self.r.pick(&["year", "epoch", "ms", "week"]),
                self.expr(Ty::Ts, d)
            ),
            12 => {
                let f = self.r.pick(&["greatest", "least", "gcd", "lcm"]);
                format!("{f}({}, {})", self.expr(Ty::Int, d), self.expr(Ty::Int, d))
            }
            13 => format!(
                "NULLIF({}, {})",
                self.expr(Ty::Int, d),
                self.expr(Ty::Int, d)
            ),
            14 => format!("factorial({})", self.small()),
            _ => format!("CAST({} AS BIGINT)", self.expr(Ty::Ts, d)),
        }
    }

    pub(crate) fn float(&mut self, d: usize) -> String {
        let unary = [
            "sqrt", "cbrt", "floor", "ceil", "trunc", "ln", "log10", "log2", "exp", "sin", "cos",
            "tan", "degrees", "radians", "signum", "abs",
        ];
        match self.r.below(9) {
            0..=2 => format!("{}({})", self.r.pick(&unary), self.expr(Ty::Float, d)),
            3 => {
                let op = self.r.pick(&["+", "-", "*", "/"]);
                format!(
                    "{} {op} {}",
                    self.expr(Ty::Float, d),
                    self.expr(Ty::Float, d)
                )
            }
            4 => format!(
                "power({}, {})",
                self.expr(Ty::Float, d),
                self.expr(Ty::Float, d)
            ),
            5 => format!(
                "round({}, {})",
                self.expr(Ty::Float, d),
                self.expr(Ty::Int, d)
            ),
            6 => format!(
                "atan2({}, {})",
                self.expr(Ty::Float, d),
                self.expr(Ty::Float, d)
            ),
            7 => format!(
                "log({}, {})",
                self.expr(Ty::Float, d),
                self.expr(Ty::Float, d)
            ),
            _ => self.r.pick(&["pi()", "random()", "1e0 / 3"]).to_string(),
        }
    }

    pub(crate) fn dec(&mut self, d: usize) -> String {
        match self.r.below(4) {
            0 => format!("{} + {}", self.expr(Ty::Dec, d), self.expr(Ty::Dec, d)),
            1 => format!("{} * {}", self.expr(Ty::Dec, d), self.expr(Ty::Int, d)),
            2 => format!("round({}, {})", self.expr(Ty::Dec, d), self.small()),
            _ => format!("abs({})", self.expr(Ty::Dec, d)),
        }
    }

    pub(crate) fn string(&mut self, d: usize) -> String {
        let unary = [
            "upper", "lower", "trim", "ltrim", "rtrim", "reverse", "initcap", "md5", "btrim",
        ];
        match self.r.below(13) {
            0..=2 => format!("{}({})", self.r.pick(&unary), self.expr(Ty::Str, d)),
            3 => format!("{} || {}", self.expr(Ty::Str, d), self.expr(Ty::Str, d)),
            4 => {
                let n = self.r.range(1, 4);
                let args: Vec<String> = (0..n)
                    .map(|_| {
                        let t = *self.r.pick(&TYPES);
                        self.expr(t, d)
                    })
                    .collect();
                format!("concat({})", args.join(", "))
            }
            5 => format!(
                "substr({}, {}, {})",
                self.expr(Ty::Str, d),
                self.expr(Ty::Int, d),
                self.small()
            ),
            6 => format!(
                "replace({}, {}, {})",
                self.expr(Ty::Str, d),
                self.expr(Ty::Str, d),
                self.expr(Ty::Str, d)
            ),
            7 => {
                let f = self.r.pick(&["lpad", "rpad"]);
                format!(
                    "{f}({}, {}, {})",
                    self.expr(Ty::Str, d),
                    self.small(),
                    self.expr(Ty::Str, d)
                )
            }
            8 => {
                let f = self.r.pick(&["left", "right", "repeat"]);
                format!("{f}({}, {})", self.expr(Ty::Str, d), self.small())
            }
            9 => format!(
                "split_part({}, {}, {})",
                self.expr(Ty::Str, d),
                self.expr(Ty::Str, d),
                self.small()
            ),
            10 => format!(
                "regexp_replace({}, '{}', 'X')",
                self.expr(Ty::Str, d),
                self.r.pick(&["a+", "[0-9]", "^.", "(x|y)*", ".*"])
            ),
            11 => format!("to_char({}, '%Y-%m-%d %H:%M')", self.expr(Ty::Ts, d)),
            _ => format!("to_hex({})", self.expr(Ty::Int, d)),
        }
    }

    pub(crate) fn boolean(&mut self, d: usize) -> String {
        let t = *self.r.pick(&TYPES);
        match self.r.below(12) {
            0..=3 => {
                let op = self.r.pick(&["=", "<>", "<", "<=", ">", ">=", "!="]);
                format!("{} {op} {}", self.expr(t, d), self.expr(t, d))
            }
            4 => {
                let op = self.r.pick(&["AND", "OR"]);
                format!("{} {op} {}", self.expr(Ty::Bool, d), self.expr(Ty::Bool, d))
            }
            5 => format!("NOT {}", self.expr(Ty::Bool, d)),
            6 => {
                let test = self.r.pick(&[
                    "IS NULL",
                    "IS NOT NULL",
                    "IS TRUE",
                    "IS NOT FALSE",
                    "IS UNKNOWN",
                ]);
                let t = if test.contains("TRUE")
                    || test.contains("FALSE")
                    || test.contains("UNKNOWN")
                {
                    Ty::Bool
                } else {
                    t
                };
                format!("{} {test}", self.expr(t, d))
            }
            7 => {
                let not = if self.r.chance(30) { "NOT " } else { "" };
                format!(
                    "{} {not}BETWEEN {} AND {}",
                    self.expr(t, d),
                    self.expr(t, d),
                    self.expr(t, d)
                )
            }
            8 => {
                let n = self.r.range(1, 4);
                let items: Vec<String> = (0..n).map(|_| self.expr(t, d)).collect();
                let not = if self.r.chance(30) { "NOT " } else { "" };
                format!("{} {not}IN ({})", self.expr(t, d), items.join(", "))
            }
            9 => {
                let op = self.r.pick(&["LIKE", "NOT LIKE", "ILIKE"]);
                let pat = self.r.pick(&["'a%'", "'%'", "'_'", "''", "'%b_'", "'\\%'"]);
                format!("{} {op} {pat}", self.expr(Ty::Str, d))
            }
            10 => format!("{} IS DISTINCT FROM {}", self.expr(t, d), self.expr(t, d)),
            _ => {
                let f = self.r.pick(&["starts_with", "ends_with"]);
                format!("{f}({}, {})", self.expr(Ty::Str, d), self.expr(Ty::Str, d))
            }
        }
    }

    pub(crate) fn interval(&mut self) -> String {
        let i = if self.r.chance(70) {
            self.r.below(6)
        } else {
            self.r.below(INTERVALS.len())
        };
        INTERVALS[i].to_string()
    }

    pub(crate) fn timestamp(&mut self, d: usize) -> String {
        match self.r.below(8) {
            0 | 1 => {
                let op = self.r.pick(&["+", "-"]);
                format!("{} {op} {}", self.expr(Ty::Ts, d), self.interval())
            }
            2 => format!(
                "date_trunc('{}', {})",
                self.r
                    .pick(&["second", "minute", "hour", "day", "month", "year"]),
                self.expr(Ty::Ts, d)
            ),
            3 => format!("date_bin({}, {})", self.interval(), self.expr(Ty::Ts, d)),
            4 => format!("to_timestamp({})", self.expr(Ty::Str, d)),
            5 => format!("to_timestamp_millis({})", self.expr(Ty::Int, d)),
            6 => format!("CAST({} AS TIMESTAMP)", self.expr(Ty::Date, d)),
            _ => "now()".into(),
        }
    }

    pub(crate) fn date(&mut self, d: usize) -> String {
        match self.r.below(5) {
            0 => format!("CAST({} AS DATE)", self.expr(Ty::Ts, d)),
            1 => format!("to_date({})", self.expr(Ty::Str, d)),
            2 => format!(
                "make_date({}, {}, {})",
                self.expr(Ty::Int, d),
                self.small(),
                self.small()
            ),
            3 => format!("{} + {}", self.expr(Ty::Date, d), self.interval()),
            _ => "current_date".into(),
        }
    }

    /// An aggregate call over the columns (for window queries).
    pub fn aggregate(&mut self, d: usize) -> String {
        let num = if self.r.chance(50) {
            Ty::Int
        } else {
            Ty::Float
        };
        let any = *self.r.pick(&TYPES);
        let call = match self.r.below(14) {
            0 | 1 => "COUNT(*)".to_string(),
            2 => format!("COUNT({})", self.expr(any, d)),
            3 => format!("COUNT(DISTINCT {})", self.expr(any, d)),
            4 | 5 => format!("SUM({})", self.expr(num, d)),
            6 => format!("MIN({})", self.expr(any, d)),
            7 => format!("MAX({})", self.expr(any, d)),
            8 => format!("AVG({})", self.expr(num, d)),
            9 => format!("SUM(DISTINCT {})", self.expr(Ty::Int, d)),
            10 => format!(
                "{}({})",
                self.r.pick(&[
                    "stddev",
                    "var_pop",
                    "median",
                    "approx_distinct",
                    "bit_and",
                    "bool_and"
                ]),
                self.expr(num, d)
            ),
            11 => format!("string_agg({}, ',')", self.expr(Ty::Str, d)),
            12 => format!("approx_percentile_cont({}, 0.5)", self.expr(Ty::Float, d)),
            _ => format!("first_value({})", self.expr(any, d)),
        };
        if self.r.chance(20) {
            format!("{call} FILTER (WHERE {})", self.expr(Ty::Bool, d))
        } else {
            call
        }
    }
}
