//! LISTAGG(expr [, separator]): the non-NULL values joined with the
//! separator (default `,`), NULL when there are none. The partial state is
//! the list of values, so window aggregates can merge partial states
//! (`state` / `merge_batch`); `LISTAGG(DISTINCT x)` keeps the first of each
//! value.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, StringBuilder};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{format_state_name, AggregateOrderSensitivity};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

/// The LISTAGG aggregate.
pub(crate) fn listagg() -> AggregateUDF {
    AggregateUDF::new_from_impl(ListAgg {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ListAgg {
    signature: Signature,
}

impl AggregateUDFImpl for ListAgg {
    fn name(&self) -> &str {
        "listagg"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if !(1..=2).contains(&arg_types.len()) {
            return plan_err!(
                "LISTAGG: expected 1 or 2 arguments, got {}",
                arg_types.len()
            );
        }
        Ok(vec![DataType::Utf8; arg_types.len()])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Arc::new(Field::new_list_field(DataType::Utf8, true));
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "listagg"),
            DataType::List(item),
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let separator = match args.exprs.get(1) {
            None => ",".to_string(),
            Some(e) => match e.downcast_ref::<Literal>().map(|l| l.value()) {
                Some(v) => match v.try_as_str() {
                    Some(Some(s)) => s.to_string(),
                    _ => return plan_err!("LISTAGG: the separator must be a non-NULL string"),
                },
                None => return plan_err!("LISTAGG: the separator must be a constant string"),
            },
        };
        Ok(Box::new(ListAggAccumulator {
            separator,
            distinct: args.is_distinct,
            values: vec![],
        }))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }
}

#[derive(Debug)]
struct ListAggAccumulator {
    separator: String,
    distinct: bool,
    values: Vec<String>,
}

impl ListAggAccumulator {
    fn push_strings(&mut self, a: &ArrayRef) -> Result<()> {
        let Some(s) = a.as_string_opt::<i32>() else {
            return exec_err!("LISTAGG: expected strings, got {}", a.data_type());
        };
        self.values.extend(s.iter().flatten().map(str::to_string));
        Ok(())
    }
}

impl Accumulator for ListAggAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values.first() {
            Some(a) => self.push_strings(a),
            None => Ok(()),
        }
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(lists) = states.first().and_then(|s| s.as_list_opt::<i32>()) else {
            return exec_err!("LISTAGG: unexpected partial state");
        };
        for list in lists.iter().flatten() {
            self.push_strings(&list)?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let mut b = StringBuilder::new();
        for v in &self.values {
            b.append_value(v);
        }
        let values: ArrayRef = Arc::new(b.finish());
        let list = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Utf8, true)),
            arrow::buffer::OffsetBuffer::from_lengths([values.len()]),
            values,
            None,
        );
        Ok(vec![ScalarValue::List(Arc::new(list))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.values.is_empty() {
            return Ok(ScalarValue::Utf8(None));
        }
        let mut out = String::new();
        let mut seen = std::collections::HashSet::new();
        for (i, v) in self.values.iter().enumerate() {
            if self.distinct && !seen.insert(v.as_str()) {
                continue;
            }
            if i > 0 {
                out.push_str(&self.separator);
            }
            out.push_str(v);
        }
        Ok(ScalarValue::Utf8(Some(out)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self.separator.capacity()
            + self.values.iter().map(|v| v.capacity() + 24).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;

    fn acc(distinct: bool) -> ListAggAccumulator {
        ListAggAccumulator {
            separator: ";".into(),
            distinct,
            values: vec![],
        }
    }

    #[test]
    fn joins_merges_and_skips_nulls() {
        let mut a = acc(false);
        let batch: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None, Some("b")]));
        a.update_batch(&[batch]).expect("update");
        let mut b = acc(false);
        let batch: ArrayRef = Arc::new(StringArray::from(vec![Some("c")]));
        b.update_batch(&[batch]).expect("update");
        let state = b.state().expect("state");
        let state = ScalarValue::iter_to_array(state).expect("array");
        a.merge_batch(&[state]).expect("merge");
        assert_eq!(
            a.evaluate().expect("eval"),
            ScalarValue::Utf8(Some("a;b;c".into()))
        );
        assert_eq!(
            acc(false).evaluate().expect("eval"),
            ScalarValue::Utf8(None)
        );
    }

    #[test]
    fn distinct_keeps_first() {
        let mut a = acc(true);
        let batch: ArrayRef = Arc::new(StringArray::from(vec!["x", "y", "x"]));
        a.update_batch(&[batch]).expect("update");
        assert_eq!(
            a.evaluate().expect("eval"),
            ScalarValue::Utf8(Some("x;y".into()))
        );
    }
}
