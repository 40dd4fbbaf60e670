//! Typed random expressions over a set of columns: operators, CASE, CAST
//! and TRY_CAST, scalar functions (string, math, date), and now and then an
//! argument of the wrong type (that must fail cleanly).

use crate::catalog::{Ty, TYPES};
use crate::literal::literal;
use crate::rng::Rng;

/// The columns an expression may use, with their types.
pub type Columns = [(String, Ty)];

/// A SQL name for a type (several spellings per type).
pub fn type_name(r: &mut Rng, ty: Ty) -> &'static str {
    let names: &[&str] = match ty {
        Ty::Int => &["INT", "BIGINT", "SMALLINT", "TINYINT", "INTEGER"],
        Ty::Float => &["DOUBLE", "FLOAT", "REAL", "DOUBLE PRECISION"],
        Ty::Dec => &[
            "DECIMAL(10, 2)",
            "DECIMAL(38, 0)",
            "DECIMAL(5, 5)",
            "DECIMAL(38, 37)",
        ],
        Ty::Str => &["STRING", "VARCHAR", "VARCHAR(3)", "CHAR(2)", "TEXT"],
        Ty::Bool => &["BOOLEAN", "BOOL"],
        Ty::Ts => &[
            "TIMESTAMP",
            "TIMESTAMP(3)",
            "TIMESTAMP(6)",
            "TIMESTAMP(0)",
            "TIMESTAMP_LTZ(3)",
        ],
        Ty::Date => &["DATE"],
    };
    let i = if r.chance(70) {
        0
    } else {
        r.below(names.len())
    };
    names[i]
}

/// Generates expressions; `depth` bounds the nesting of one call.
pub struct ExprGen<'a> {
    /// The random source.
    pub r: &'a mut Rng,
    /// Columns in scope.
    pub cols: &'a Columns,
    /// Percent of arguments given a random (often wrong) type.
    pub wrong: u32,
}

impl ExprGen<'_> {
    /// An expression of type `ty`, nested at most `depth` levels.
    pub fn expr(&mut self, ty: Ty, depth: usize) -> String {
        let ty = if self.r.chance(self.wrong) {
            *self.r.pick(&TYPES)
        } else {
            ty
        };
        if depth == 0 || self.r.chance(30) {
            return self.leaf(ty);
        }
        let d = depth - 1;
        match self.r.below(10) {
            0 => self.case(ty, d),
            1 => self.cast(ty, d),
            2 => format!("({})", self.expr(ty, d)),
            3 => format!("COALESCE({}, {})", self.expr(ty, d), self.expr(ty, d)),
            _ => match ty {
                Ty::Int => self.int(d),
                Ty::Float => self.float(d),
                Ty::Dec => self.dec(d),
                Ty::Str => self.string(d),
                Ty::Bool => self.boolean(d),
                Ty::Ts => self.timestamp(d),
                Ty::Date => self.date(d),
            },
        }
    }

    /// A column of type `ty` (if one is in scope) or a literal.
    pub fn leaf(&mut self, ty: Ty) -> String {
        let cols: Vec<&String> = self
            .cols
            .iter()
            .filter(|(_, t)| *t == ty)
            .map(|(c, _)| c)
            .collect();
        if !cols.is_empty() && self.r.chance(65) {
            return (*self.r.pick(&cols)).clone();
        }
        literal(self.r, ty)
    }

    fn case(&mut self, ty: Ty, d: usize) -> String {
        let mut s = String::from("CASE");
        let simple = self.r.chance(30);
        let key_ty = *self.r.pick(&TYPES);
        if simple {
            s += &format!(" {}", self.expr(key_ty, d));
        }
        for _ in 0..self.r.range(1, 3) {
            let when = if simple {
                self.expr(key_ty, d)
            } else {
                self.expr(Ty::Bool, d)
            };
            s += &format!(" WHEN {when} THEN {}", self.expr(ty, d));
        }
        if self.r.chance(70) {
            s += &format!(" ELSE {}", self.expr(ty, d));
        }
        s + " END"
    }

    fn cast(&mut self, ty: Ty, d: usize) -> String {
        let from = *self.r.pick(&TYPES);
        let kw = if self.r.chance(40) {
            "TRY_CAST"
        } else {
            "CAST"
        };
        let name = type_name(self.r, ty);
        format!("{kw}({} AS {name})", self.expr(from, d))
    }

    pub(crate) fn small(&mut self) -> String {
        self.r
            .pick(&["0", "1", "2", "3", "-1", "5", "10"])
            .to_string()
    }
}
