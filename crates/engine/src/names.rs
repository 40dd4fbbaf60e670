//! Result column names as Flink gives them: a select item that is neither a
//! column nor aliased is named `EXPR$<i>`, `i` its position in the select
//! list after `*` is expanded (Calcite's rule), instead of DataFusion's
//! `count(*)` or `Int64(1)`.
//!
//! Without `*` the items get the alias in the statement itself (so two
//! equal expressions are two columns, as in Flink); with one `*` a
//! projection on top of the plan renames them once `*`'s width is known.

use std::sync::Arc;

use datafusion::common::Column;
use datafusion::logical_expr::{Expr, LogicalPlan, Projection};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, Ident, Query, SelectItem, SetExpr, Value};
use sluice_common::Result;

/// The SELECT a query's column names come from (a set operation takes
/// them from its first input).
fn first_select(body: &mut SetExpr) -> Option<&mut Vec<SelectItem>> {
    match body {
        SetExpr::Select(select) => Some(&mut select.projection),
        SetExpr::SetOperation { left, .. } => first_select(left),
        SetExpr::Query(q) => first_select(&mut q.body),
        _ => None,
    }
}

/// Per select item: `None` for `*`, else whether it needs a generated name.
fn select_items(projection: &[SelectItem]) -> Vec<Option<bool>> {
    projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => Some(!is_column(e)),
            SelectItem::ExprWithAlias { .. } | SelectItem::ExprWithAliases { .. } => Some(false),
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => None,
        })
        .collect()
}

/// Alias the unnamed expressions of a select list without `*` as
/// `EXPR$i`. Returns false (and changes nothing) when there is a `*`.
pub(crate) fn alias_in_statement(query: &mut Query) -> bool {
    let Some(projection) = first_select(&mut query.body) else {
        return true;
    };
    let items = select_items(projection);
    if items.iter().any(Option::is_none) {
        return false;
    }
    for (i, item) in projection.iter_mut().enumerate() {
        if let SelectItem::UnnamedExpr(e) = item {
            if !is_column(e) {
                let expr = std::mem::replace(e, SqlExpr::value(Value::Null));
                *item = SelectItem::ExprWithAlias {
                    expr,
                    alias: Ident::with_quote('"', format!("EXPR${i}")),
                };
            }
        }
    }
    true
}

fn is_column(e: &SqlExpr) -> bool {
    match e {
        SqlExpr::Identifier(_) | SqlExpr::CompoundIdentifier(_) => true,
        SqlExpr::Nested(inner) => is_column(inner),
        _ => false,
    }
}

/// Which output columns of a plan with `width` columns get `EXPR$i`.
fn generated(items: &[Option<bool>], width: usize) -> Option<Vec<bool>> {
    let stars = items.iter().filter(|i| i.is_none()).count();
    let named = items.len() - stars;
    let star_width = match stars {
        0 => 0,
        // One `*` stands for the columns the others do not account for.
        1 => width.checked_sub(named)?,
        // Several: their widths are not known here.
        _ => return None,
    };
    let mut out = Vec::with_capacity(width);
    for item in items {
        match item {
            Some(g) => out.push(*g),
            None => out.extend(std::iter::repeat_n(false, star_width)),
        }
    }
    (out.len() == width).then_some(out)
}

/// `plan` with Flink's names for `query`'s unnamed expressions: a
/// projection on top that renames them (the plan below keeps its own names,
/// which ORDER BY and HAVING refer to).
pub(crate) fn flink_names(query: &mut Query, plan: LogicalPlan) -> Result<LogicalPlan> {
    let Some(projection) = first_select(&mut query.body) else {
        return Ok(plan);
    };
    let items = select_items(projection);
    let schema = Arc::clone(plan.schema());
    let Some(generate) = generated(&items, schema.fields().len()) else {
        return Ok(plan);
    };
    if !generate.iter().any(|g| *g) {
        return Ok(plan);
    }
    let exprs = schema
        .iter()
        .zip(&generate)
        .enumerate()
        .map(|(i, ((qualifier, field), generated))| {
            let col = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            if *generated {
                col.alias(format!("EXPR${i}"))
            } else {
                col
            }
        })
        .collect();
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(plan),
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_star_takes_the_remaining_columns() {
        let items = [None, Some(true)];
        assert_eq!(generated(&items, 4), Some(vec![false, false, false, true]));
        assert_eq!(
            generated(&[Some(false), Some(true)], 2),
            Some(vec![false, true])
        );
        assert_eq!(generated(&[None, None, Some(true)], 5), None);
    }
}
