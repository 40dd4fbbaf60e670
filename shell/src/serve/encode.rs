//! Arrow batches as PostgreSQL rows: each column's PostgreSQL type, and
//! its values in PostgreSQL's text format (`t`/`f`, `2024-01-01
//! 12:00:00`, `\x..` for bytes).

use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, SchemaRef};
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;

/// The PostgreSQL type of an Arrow column (TEXT for what has none).
fn pg_type(t: &DataType) -> Type {
    match t {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 => Type::INT8,
        DataType::UInt64 | DataType::Decimal128(..) | DataType::Decimal256(..) => Type::NUMERIC,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Time32(_) | DataType::Time64(_) => Type::TIME,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Interval(_) => Type::INTERVAL,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Type::VARCHAR,
        _ => Type::TEXT,
    }
}

fn failed(e: impl std::error::Error + Send + Sync + 'static) -> PgWireError {
    PgWireError::ApiError(Box::new(e))
}

/// The values of `col` as PostgreSQL text.
fn texts(col: &dyn Array, options: &FormatOptions) -> PgWireResult<Vec<Option<String>>> {
    use arrow_array::cast::AsArray;
    if let Some(b) = col.as_boolean_opt() {
        return Ok(b
            .iter()
            .map(|v| v.map(|v| if v { "t" } else { "f" }.to_string()))
            .collect());
    }
    if let Some(b) = col.as_binary_opt::<i32>() {
        return Ok(b.iter().map(|v| v.map(hex)).collect());
    }
    let f = ArrayFormatter::try_new(col, options).map_err(failed)?;
    // Logical nulls: a NULL literal's column has no validity buffer.
    let nulls = col.logical_nulls();
    Ok((0..col.len())
        .map(|i| {
            let valid = nulls.as_ref().is_none_or(|n| n.is_valid(i));
            valid.then(|| f.value(i).to_string())
        })
        .collect())
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * bytes.len());
    s.push_str("\\x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The columns of `schema`, as PostgreSQL describes them (text format).
pub fn fields(schema: &SchemaRef) -> Arc<Vec<FieldInfo>> {
    Arc::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                FieldInfo::new(
                    f.name().clone(),
                    None,
                    None,
                    pg_type(f.data_type()),
                    FieldFormat::Text,
                )
            })
            .collect(),
    )
}

/// The columns of `schema` and the rows of `batches`.
pub fn encode(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> PgWireResult<(Arc<Vec<FieldInfo>>, Vec<DataRow>)> {
    let fields = fields(schema);
    let options = FormatOptions::default()
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.f%:z"));
    let mut encoder = DataRowEncoder::new(Arc::clone(&fields));
    let mut rows = Vec::new();
    for batch in batches {
        let columns = batch
            .columns()
            .iter()
            .map(|c| texts(c.as_ref(), &options))
            .collect::<PgWireResult<Vec<_>>>()?;
        for r in 0..batch.num_rows() {
            for c in &columns {
                encoder.encode_field(&c[r].as_deref())?;
            }
            rows.push(encoder.take_row());
        }
    }
    Ok((fields, rows))
}
