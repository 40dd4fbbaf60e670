//! Flink call forms DataFusion does not read the way Flink means them,
//! rewritten on the AST before planning:
//!
//! * `TIMESTAMPADD(SECOND, 1, ts)`, `TIMESTAMPDIFF(DAY, a, b)`: the unit
//!   keyword would be read as a column; it becomes the string `'SECOND'`.
//! * `FLOOR(ts TO DAY)`, `CEIL(ts TO HOUR)`: DataFusion does not plan them;
//!   they become `__flink_floor('DAY', ts)` / `__flink_ceil('HOUR', ts)`.
//! * `SUBSTRING(s FROM a FOR b)` and `SUBSTRING(s, a, b)`: DataFusion plans
//!   the special form with its own `substr`, bypassing the function
//!   registry; they become the call `substr(s, a, b)`, which finds Flink's.
//! * `EXTRACT(DOW FROM x)` becomes `__flink_extract('DOW', x)` for Flink's
//!   units (DataFusion counts DOW from 0 and MILLISECOND from the minute);
//!   other units and INTERVAL values stay DataFusion's.
//! * `TIMESTAMP '2024-01-01 00:00:01'` becomes
//!   `CAST('2024-01-01 00:00:01' AS TIMESTAMP(3))`: as in Flink, a literal's
//!   precision is that of its fraction (3, 6 or 9 digits in Sluice's units)
//!   rather than DataFusion's nanoseconds, so `TIMESTAMPADD(SECOND, 1,
//!   TIMESTAMP '...')` is a TIMESTAMP(3) and casts to `...01.000`.
//! * A function name in backquotes (Flink quotes reserved words this way:
//!   `` `LEFT`(s, 2) ``) is looked up like an unquoted one.
//! * `IF(c, a, b)` becomes `CASE WHEN c THEN a ELSE b END` and
//!   `IFNULL(a, b)` becomes `COALESCE(a, b)`: both evaluate lazily, so
//!   `IF(x = 0, 0, 1 / x)` does not divide by zero.
//!
//! Spans are kept, so errors still point at the user's text.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, CaseWhen, CastKind, CeilFloorKind, DataType, DateTimeField, Expr,
    Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectNamePart, Statement,
    TimezoneInfo, TypedString, Value,
};
use sluice_common::{Error, Result};

use crate::ast::call;

/// Rewrite the Flink call forms in `stmt` (see the module docs).
pub fn rewrite_flink_calls(stmt: &mut Statement) -> Result<()> {
    let flow = visit_expressions_mut(stmt, |e| match rewrite(e) {
        Ok(()) => ControlFlow::Continue(()),
        Err(err) => ControlFlow::Break(err),
    });
    match flow {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

fn rewrite(e: &mut Expr) -> Result<()> {
    let is_floor = matches!(e, Expr::Floor { .. });
    match e {
        Expr::Function(f) => {
            if let [ObjectNamePart::Identifier(id)] = f.name.0.as_mut_slice() {
                if id.quote_style == Some('`') {
                    id.quote_style = None;
                }
            }
            let name = e_name(f);
            if let Some(new) = rewrite_function(&name, f)? {
                *e = new;
            }
            Ok(())
        }
        Expr::Floor { expr, field } | Expr::Ceil { expr, field } => {
            let CeilFloorKind::DateTimeField(unit) = field else {
                return Ok(());
            };
            if *unit == DateTimeField::NoDateTime {
                return Ok(());
            }
            let name = if is_floor {
                "__flink_floor"
            } else {
                "__flink_ceil"
            };
            let (unit, value) = (unit_name(unit), take(expr));
            *e = call(name, vec![string(&unit), value]);
            Ok(())
        }
        Expr::Extract { field, expr, .. } => {
            let unit = unit_name(field);
            if EXTRACT_UNITS.contains(&unit.as_str()) && !matches!(**expr, Expr::Interval(_)) {
                let value = take(expr);
                *e = call("__flink_extract", vec![string(&unit), value]);
            }
            Ok(())
        }
        Expr::TypedString(TypedString {
            data_type: DataType::Timestamp(None, TimezoneInfo::None),
            value,
            ..
        }) => {
            let Value::SingleQuotedString(text) = &value.value else {
                return Ok(());
            };
            let digits = text.split_once('.').map_or(0, |(_, f)| {
                f.trim().bytes().take_while(u8::is_ascii_digit).count()
            });
            let precision = match digits {
                0..=3 => 3,
                4..=6 => 6,
                _ => 9,
            };
            *e = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(Expr::Value(value.clone())),
                data_type: DataType::Timestamp(Some(precision), TimezoneInfo::None),
                array: false,
                format: None,
            };
            Ok(())
        }
        Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            let from = substring_from.take().map_or_else(|| number("1"), |b| *b);
            let mut args = vec![take(expr), from];
            if let Some(len) = substring_for.take() {
                args.push(*len);
            }
            *e = call("substr", args);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// EXTRACT units with Flink's meaning (see the engine's `extract` module).
pub const EXTRACT_UNITS: [&str; 19] = [
    "YEAR",
    "QUARTER",
    "MONTH",
    "WEEK",
    "DAY",
    "DOY",
    "DOW",
    "ISODOW",
    "ISOYEAR",
    "HOUR",
    "MINUTE",
    "SECOND",
    "MILLISECOND",
    "MICROSECOND",
    "NANOSECOND",
    "EPOCH",
    "DECADE",
    "CENTURY",
    "MILLENNIUM",
];

fn e_name(f: &Function) -> String {
    f.name.to_string().to_ascii_uppercase()
}

/// The replacement of a call, if it is one of the rewritten forms.
fn rewrite_function(name: &str, f: &mut Function) -> Result<Option<Expr>> {
    match name {
        "TIMESTAMPADD" | "TIMESTAMPDIFF" => {
            if let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(first))) =
                args_mut(f).and_then(|a| a.first_mut())
            {
                if let Expr::Identifier(Ident {
                    value,
                    quote_style: None,
                    ..
                }) = first
                {
                    *first = string(&value.to_ascii_uppercase());
                }
            }
            Ok(None)
        }
        "IF" => {
            let [c, a, b] = plain_args(name, f, 3)?;
            Ok(Some(Expr::Case {
                case_token: AttachedToken::empty(),
                end_token: AttachedToken::empty(),
                operand: None,
                conditions: vec![CaseWhen {
                    condition: c,
                    result: a,
                }],
                else_result: Some(Box::new(b)),
            }))
        }
        "IFNULL" => {
            let [a, b] = plain_args(name, f, 2)?;
            Ok(Some(call("coalesce", vec![a, b])))
        }
        _ => Ok(None),
    }
}

fn args_mut(f: &mut Function) -> Option<&mut Vec<FunctionArg>> {
    match &mut f.args {
        FunctionArguments::List(list) => Some(&mut list.args),
        _ => None,
    }
}

/// Exactly `N` positional arguments.
fn plain_args<const N: usize>(name: &str, f: &mut Function, n: usize) -> Result<[Expr; N]> {
    let args = args_mut(f).map(std::mem::take).unwrap_or_default();
    let got = args.len();
    let exprs: Vec<Expr> = args
        .into_iter()
        .filter_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect();
    if exprs.len() != got || got != n {
        return Err(Error::plan(format!(
            "{name}: expected {n} arguments, got {got}"
        )));
    }
    exprs
        .try_into()
        .map_err(|_| Error::internal(format!("{name}: argument count")))
}

fn unit_name(f: &DateTimeField) -> String {
    f.to_string().to_ascii_uppercase()
}

fn take(e: &mut Box<Expr>) -> Expr {
    std::mem::replace(e.as_mut(), number("0"))
}

fn string(s: &str) -> Expr {
    Expr::Value(Value::SingleQuotedString(s.to_string()).with_empty_span())
}

fn number(n: &str) -> Expr {
    Expr::Value(Value::Number(n.to_string(), false).with_empty_span())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{parse_sql, SluiceStatement};

    fn rewritten(sql: &str) -> String {
        let mut stmts = parse_sql(sql, None).expect("parses");
        let SluiceStatement::Sql(stmt) = &mut stmts[0].statement else {
            panic!("not sql")
        };
        rewrite_flink_calls(stmt).expect("rewrites");
        stmt.to_string()
    }

    #[test]
    fn rewrites_flink_forms() {
        assert_eq!(
            rewritten("SELECT TIMESTAMPADD(SECOND, 1, ts), timestampdiff(day, a, b) FROM t"),
            "SELECT TIMESTAMPADD('SECOND', 1, ts), timestampdiff('DAY', a, b) FROM t"
        );
        assert_eq!(
            rewritten("SELECT FLOOR(ts TO DAY), CEIL(ts TO HOUR), FLOOR(x) FROM t"),
            "SELECT __flink_floor('DAY', ts), __flink_ceil('HOUR', ts), FLOOR(x) FROM t"
        );
        assert_eq!(
            rewritten("SELECT SUBSTRING(s FROM 2 FOR 3), SUBSTR(s, -2) FROM t"),
            "SELECT substr(s, 2, 3), substr(s, -2) FROM t"
        );
        assert_eq!(
            rewritten("SELECT EXTRACT(DOW FROM d), EXTRACT(DAY FROM INTERVAL '1' DAY) FROM t"),
            "SELECT __flink_extract('DOW', d), EXTRACT(DAY FROM INTERVAL '1' DAY) FROM t"
        );
        assert_eq!(
            rewritten("SELECT `LEFT`(s, 2), \"Mixed\"(s) FROM t"),
            "SELECT LEFT(s, 2), \"Mixed\"(s) FROM t"
        );
        assert_eq!(
            rewritten("SELECT IF(a > 1, IFNULL(b, 0), 2) FROM t"),
            "SELECT CASE WHEN a > 1 THEN coalesce(b, 0) ELSE 2 END FROM t"
        );
    }

    #[test]
    fn timestamp_literals_get_flink_precision() {
        assert_eq!(
            rewritten(
                "SELECT TIMESTAMP '2024-01-01 00:00:01', TIMESTAMP '2024-01-01 00:00:01.1234'"
            ),
            "SELECT CAST('2024-01-01 00:00:01' AS TIMESTAMP(3)), \
             CAST('2024-01-01 00:00:01.1234' AS TIMESTAMP(6))"
        );
    }

    #[test]
    fn rejects_bad_if() {
        let mut stmts = parse_sql("SELECT IF(a, b) FROM t", None).expect("parses");
        let SluiceStatement::Sql(stmt) = &mut stmts[0].statement else {
            panic!("not sql")
        };
        let err = rewrite_flink_calls(stmt).expect_err("two arguments");
        assert!(err.to_string().contains("IF: expected 3 arguments, got 2"));
    }
}
