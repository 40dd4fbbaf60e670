//! Flink SQL functions DataFusion does not have under the same name.

use std::sync::Arc;

use arrow::compute::kernels::numeric::rem;
use arrow::datatypes::DataType;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};

/// Register Flink-compatible functions: `MOD(a, b)` (the remainder, as `%`).
pub(crate) fn register(ctx: &SessionContext) {
    ctx.register_udf(create_udf(
        "mod",
        vec![DataType::Int64, DataType::Int64],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let (a, b) = (&arrays[0], &arrays[1]);
            let out = rem(a, b)?;
            // A scalar call gives a scalar back.
            if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
                Ok(ColumnarValue::Scalar(
                    datafusion::common::ScalarValue::try_from_array(&out, 0)?,
                ))
            } else {
                Ok(ColumnarValue::Array(out))
            }
        }),
    ));
}
