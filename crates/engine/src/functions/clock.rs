//! The current time, in Flink's types and evaluated per batch (Flink
//! evaluates these per record in streaming mode, so a long-running query
//! never sees the time it started at):
//!
//! * NOW(), CURRENT_TIMESTAMP: TIMESTAMP_LTZ(3); PROCTIME() is the same
//!   clock, and a window over a PROCTIME() column fires on it.
//! * LOCALTIMESTAMP: TIMESTAMP(3) in the session time zone (UTC in Sluice).
//! * LOCALTIME, CURRENT_TIME: TIME(0).
//! * CURRENT_DATE: DATE.

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, Volatility};

use super::calendar::MILLIS_PER_DAY;
use super::datetime::{timestamp_ltz, TIMESTAMP_MS};
use super::epoch::now_millis;
use super::util::{arity, Udf};

pub(crate) fn functions() -> Vec<ScalarUDF> {
    let v = Volatility::Volatile;
    vec![
        Udf::with_volatility("now", v, none, ret_now, now)
            .aliases(&["current_timestamp", "current_row_timestamp"])
            .build(),
        // The same clock under its own name, so a window can tell a
        // processing-time column (see `planner::proctime`).
        Udf::with_volatility("proctime", v, none, ret_now, now).build(),
        Udf::with_volatility("localtimestamp", v, none, ret_local, localtimestamp).build(),
        Udf::with_volatility("localtime", v, none, ret_time, localtime)
            .aliases(&["current_time"])
            .build(),
        Udf::with_volatility("current_date", v, none, ret_date, current_date).build(),
    ]
}

fn none(t: &[DataType]) -> Vec<DataType> {
    t.to_vec()
}

fn ret_now(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("now", t, 0, 0)?;
    Ok(timestamp_ltz())
}

fn ret_local(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("localtimestamp", t, 0, 0)?;
    Ok(TIMESTAMP_MS)
}

fn ret_time(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("localtime", t, 0, 0)?;
    Ok(DataType::Time64(TimeUnit::Microsecond))
}

fn ret_date(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("current_date", t, 0, 0)?;
    Ok(DataType::Date32)
}

fn now(_args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    Ok(ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(
        Some(now_millis()),
        Some("UTC".into()),
    )))
}

fn localtimestamp(_args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    Ok(ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(
        Some(now_millis()),
        None,
    )))
}

fn localtime(_args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    // TIME(0): whole seconds.
    let secs = now_millis().rem_euclid(MILLIS_PER_DAY) / 1000;
    Ok(ColumnarValue::Scalar(ScalarValue::Time64Microsecond(Some(
        secs * 1_000_000,
    ))))
}

fn current_date(_args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let days = now_millis().div_euclid(MILLIS_PER_DAY) as i32;
    Ok(ColumnarValue::Scalar(ScalarValue::Date32(Some(days))))
}
