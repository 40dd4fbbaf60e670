//! COUNT, SUM and AVG over BIGINT or DOUBLE in an OVER frame, kept as a
//! running sum and count per partition instead of through DataFusion
//! accumulators fed one-row arrays: the same arithmetic as DataFusion's
//! (sliding) accumulators — wrapping integer sums, doubles added and
//! subtracted in row order, NULL when the frame holds no value — at a
//! fraction of the cost per row. Every other aggregate takes the
//! accumulator path.

use std::collections::VecDeque;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type, Schema};
use datafusion::common::ScalarValue;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use sluice_common::Result;

/// Which running aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fast {
    /// COUNT(x) (COUNT(*) counts a constant): non-NULL values.
    Count,
    /// SUM over BIGINT.
    SumInt,
    /// SUM over DOUBLE.
    SumFloat,
    /// AVG (DataFusion casts its argument to DOUBLE).
    Avg,
}

impl Fast {
    /// The running form of `a` over `input`, when it has one.
    pub(super) fn of(a: &AggregateFunctionExpr, input: &Schema) -> Option<Fast> {
        let args = a.expressions();
        if a.is_distinct() || args.len() != 1 {
            return None;
        }
        let arg = args[0].data_type(input).ok()?;
        let out = a.field().data_type().clone();
        match (a.fun().name(), arg, out) {
            ("count", _, DataType::Int64) => Some(Fast::Count),
            ("sum", DataType::Int64, DataType::Int64) => Some(Fast::SumInt),
            ("sum", DataType::Float64, DataType::Float64) => Some(Fast::SumFloat),
            ("avg", DataType::Float64, DataType::Float64) => Some(Fast::Avg),
            _ => None,
        }
    }
}

/// One value in the frame (`None`: NULL).
#[derive(Debug, Clone, Copy)]
enum Value {
    Int(i64),
    Float(f64),
    Present,
}

/// A partition's running aggregate.
#[derive(Debug)]
pub(super) struct Running {
    kind: Fast,
    int: i64,
    float: f64,
    /// Non-NULL values in the frame.
    count: i64,
    /// The frame's values, oldest first (bounded frames only).
    values: VecDeque<Option<Value>>,
}

impl Running {
    pub(super) fn new(kind: Fast) -> Self {
        Running {
            kind,
            int: 0,
            float: 0.0,
            count: 0,
            values: VecDeque::new(),
        }
    }

    /// Row `r` of `arg` enters the frame (kept for retraction when
    /// `bounded`).
    pub(super) fn add(&mut self, arg: &ArrayRef, r: usize, bounded: bool) {
        let v = arg.is_valid(r).then(|| match self.kind {
            Fast::Count => Value::Present,
            Fast::SumInt => Value::Int(arg.as_primitive::<Int64Type>().value(r)),
            Fast::SumFloat | Fast::Avg => Value::Float(arg.as_primitive::<Float64Type>().value(r)),
        });
        if let Some(v) = v {
            self.count += 1;
            match v {
                Value::Int(x) => self.int = self.int.wrapping_add(x),
                Value::Float(x) => self.float += x,
                Value::Present => {}
            }
        }
        if bounded {
            self.values.push_back(v);
        }
    }

    /// The oldest row leaves the frame.
    pub(super) fn retract(&mut self) {
        if let Some(Some(v)) = self.values.pop_front() {
            self.count -= 1;
            match v {
                Value::Int(x) => self.int = self.int.wrapping_sub(x),
                Value::Float(x) => self.float -= x,
                Value::Present => {}
            }
        }
    }

    /// The sums and count (a checkpoint's): BIGINT sum, DOUBLE sum, count.
    pub(super) fn totals(&self) -> [ScalarValue; 3] {
        [
            ScalarValue::Int64(Some(self.int)),
            ScalarValue::Float64(Some(self.float)),
            ScalarValue::Int64(Some(self.count)),
        ]
    }

    /// Take up checkpointed [`Running::totals`].
    pub(super) fn set_totals(&mut self, int: i64, float: f64, count: i64) {
        (self.int, self.float, self.count) = (int, float, count);
    }

    /// The frame's values, oldest first: BIGINT for SUM over BIGINT and
    /// COUNT (1 for a value), DOUBLE otherwise; NULL for a NULL.
    pub(super) fn frame_values(&self) -> impl Iterator<Item = ScalarValue> + '_ {
        let float = matches!(self.kind, Fast::SumFloat | Fast::Avg);
        self.values.iter().map(move |v| match v {
            Some(Value::Int(x)) => ScalarValue::Int64(Some(*x)),
            Some(Value::Float(x)) => ScalarValue::Float64(Some(*x)),
            Some(Value::Present) => ScalarValue::Int64(Some(1)),
            None if float => ScalarValue::Float64(None),
            None => ScalarValue::Int64(None),
        })
    }

    /// Row `r` of `values` (made by [`Running::frame_values`]) goes back
    /// into the frame, the totals untouched.
    pub(super) fn push_frame_value(&mut self, values: &ArrayRef, r: usize) {
        let v = values.is_valid(r).then(|| match self.kind {
            Fast::Count => Value::Present,
            Fast::SumInt => Value::Int(values.as_primitive::<Int64Type>().value(r)),
            Fast::SumFloat | Fast::Avg => {
                Value::Float(values.as_primitive::<Float64Type>().value(r))
            }
        });
        self.values.push_back(v);
    }

    /// The aggregate over the frame.
    pub(super) fn value(&self) -> Result<ScalarValue> {
        let some = self.count > 0;
        Ok(match self.kind {
            Fast::Count => ScalarValue::Int64(Some(self.count)),
            Fast::SumInt => ScalarValue::Int64(some.then_some(self.int)),
            Fast::SumFloat => ScalarValue::Float64(some.then_some(self.float)),
            Fast::Avg => ScalarValue::Float64(some.then(|| self.float / self.count as f64)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array};
    use std::sync::Arc;

    /// NULLs are not counted, a frame without values gives NULL (COUNT
    /// gives 0), and retraction undoes exactly what was added.
    #[test]
    fn running_aggregates_treat_nulls_as_datafusion_does() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(5), None, Some(i64::MAX)]));
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.5), None, Some(2.5)]));
        let mut sum = Running::new(Fast::SumInt);
        let mut avg = Running::new(Fast::Avg);
        let mut count = Running::new(Fast::Count);
        for r in 0..3 {
            sum.add(&ints, r, true);
            avg.add(&floats, r, true);
            count.add(&ints, r, true);
        }
        // Integer sums wrap, as DataFusion's do.
        let wrapped = 5_i64.wrapping_add(i64::MAX);
        assert_eq!(sum.value().expect("sum"), ScalarValue::Int64(Some(wrapped)));
        assert_eq!(avg.value().expect("avg"), ScalarValue::Float64(Some(2.0)));
        assert_eq!(count.value().expect("count"), ScalarValue::Int64(Some(2)));
        for running in [&mut sum, &mut avg, &mut count] {
            running.retract();
        }
        assert_eq!(
            sum.value().expect("sum"),
            ScalarValue::Int64(Some(i64::MAX))
        );
        assert_eq!(avg.value().expect("avg"), ScalarValue::Float64(Some(2.5)));
        for running in [&mut sum, &mut avg, &mut count] {
            running.retract();
            running.retract();
        }
        // Only the NULL row was left, then none.
        assert_eq!(sum.value().expect("sum"), ScalarValue::Int64(None));
        assert_eq!(avg.value().expect("avg"), ScalarValue::Float64(None));
        assert_eq!(count.value().expect("count"), ScalarValue::Int64(Some(0)));
    }
}
