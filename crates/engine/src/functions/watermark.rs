//! CURRENT_WATERMARK(rowtime): the watermark of the stream at the row, as
//! the rowtime's type (TIMESTAMP(3) or TIMESTAMP_LTZ(3)); NULL before the
//! first watermark (Flink's function). The planner replaces the call by a
//! column its operator fills in from the watermarks it receives
//! (`planner::watermark`); this function only types the call, and fails if
//! it is evaluated anywhere else.

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, Volatility};

use super::util::{arity, Udf};

/// The function's name as DataFusion registers it.
pub(crate) const CURRENT_WATERMARK: &str = "current_watermark";

pub(crate) fn functions() -> Vec<ScalarUDF> {
    vec![Udf::with_volatility(
        CURRENT_WATERMARK,
        Volatility::Volatile,
        |t| t.to_vec(),
        ret,
        invoke,
    )
    .build()]
}

fn ret(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity(CURRENT_WATERMARK, t, 1, 1)?;
    match &t[0] {
        DataType::Timestamp(_, tz) => Ok(DataType::Timestamp(TimeUnit::Millisecond, tz.clone())),
        other => plan_err!(
            "'CURRENT_WATERMARK' takes the table's event-time column (a TIMESTAMP with a \
             WATERMARK), not {}",
            sluice_common::arrow_to_sql_names(&other.to_string())
        ),
    }
}

fn invoke(_args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    exec_err!(
        "CURRENT_WATERMARK works in the SELECT list and WHERE clause of a query over a stream's \
         event-time column"
    )
}
