//! GREATEST and LEAST with Flink's NULL handling: NULL when any argument is
//! NULL (DataFusion's skip NULLs). They wrap DataFusion's functions, which
//! keep doing the type coercion and the comparison; only NULLs are added.
//!
//! (IF and IFNULL are rewritten into CASE and COALESCE on the AST, see
//! `sluice_sql::flink_calls`.)

use std::sync::Arc;

use arrow::array::{make_array, Array, ArrayRef};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

pub(crate) fn functions() -> Vec<ScalarUDF> {
    [
        datafusion::functions::core::greatest(),
        datafusion::functions::core::least(),
    ]
    .into_iter()
    .map(|inner| ScalarUDF::new_from_impl(NullIfAnyNull { inner }))
    .collect()
}

/// DataFusion's function, NULL wherever an argument is NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NullIfAnyNull {
    inner: Arc<ScalarUDF>,
}

impl ScalarUDFImpl for NullIfAnyNull {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let any_null_scalar = args
            .args
            .iter()
            .any(|a| matches!(a, ColumnarValue::Scalar(s) if s.is_null()));
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .filter_map(|a| match a {
                ColumnarValue::Array(a) => Some(Arc::clone(a)),
                ColumnarValue::Scalar(_) => None,
            })
            .collect();
        let return_type = args.return_type().clone();
        let n = args.number_rows;
        if any_null_scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from(&return_type)?));
        }
        let out = self.inner.invoke_with_args(args)?;
        if arrays.is_empty() {
            return Ok(out);
        }
        let out = out.into_array(n)?;
        let nulls = arrays.iter().fold(out.logical_nulls(), |acc, a| {
            NullBuffer::union(acc.as_ref(), a.logical_nulls().as_ref())
        });
        let data = out.to_data().into_builder().nulls(nulls).build()?;
        Ok(ColumnarValue::Array(make_array(data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::Field;

    #[test]
    fn null_when_any_argument_is_null() {
        let greatest = &functions()[0];
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(5)]));
        let b: ArrayRef = Arc::new(Int64Array::from(vec![Some(3), Some(2), None]));
        let field = Arc::new(Field::new("x", DataType::Int64, true));
        let out = greatest
            .invoke_with_args(ScalarFunctionArgs {
                args: vec![ColumnarValue::Array(a), ColumnarValue::Array(b)],
                arg_fields: vec![Arc::clone(&field), Arc::clone(&field)],
                number_rows: 3,
                return_field: field,
                config_options: Arc::default(),
            })
            .expect("invokes")
            .into_array(3)
            .expect("array");
        let out = out.as_any().downcast_ref::<Int64Array>().expect("int64");
        assert_eq!(out, &Int64Array::from(vec![Some(3), None, None]));
    }
}
