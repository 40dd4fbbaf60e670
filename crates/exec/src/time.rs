//! Event-time helpers.

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use sluice_common::{Error, Result};

/// A timestamp column as milliseconds since the epoch (nulls kept).
pub fn to_millis(array: &ArrayRef) -> Result<Int64Array> {
    let ms = match array.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, None) => array.clone(),
        DataType::Timestamp(_, _) => {
            cast(array, &DataType::Timestamp(TimeUnit::Millisecond, None))?
        }
        other => {
            return Err(Error::internal(format!(
                "event time column is {other}, not a timestamp"
            )));
        }
    };
    let ms = ms.as_primitive::<TimestampMillisecondType>();
    Ok(Int64Array::new(ms.values().clone(), ms.nulls().cloned()))
}

/// Largest non-null value of a timestamp column, in milliseconds.
pub fn max_millis(array: &ArrayRef) -> Result<Option<i64>> {
    let ms = to_millis(array)?;
    Ok(arrow::compute::max(&ms))
}
