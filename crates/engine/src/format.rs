//! Rendering result rows: cell strings, tables, CSV and JSON.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice_common::Result;

/// How timestamps and NULLs look in results.
pub fn format_options() -> FormatOptions<'static> {
    FormatOptions::default()
        .with_null("NULL")
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.f%:z"))
}

/// Every row as strings.
pub fn rows_as_strings(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>> {
    let opts = format_options();
    let mut rows = Vec::new();
    for b in batches {
        let fmts = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for r in 0..b.num_rows() {
            rows.push(fmts.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    Ok(rows)
}

/// A boxed table (comfy-table via arrow's pretty printer).
pub fn table(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<String> {
    let opts = format_options();
    if batches.is_empty() {
        let empty = RecordBatch::new_empty(schema.clone());
        return Ok(
            arrow::util::pretty::pretty_format_batches_with_options(&[empty], &opts)?.to_string(),
        );
    }
    Ok(arrow::util::pretty::pretty_format_batches_with_options(batches, &opts)?.to_string())
}

/// CSV with a header row.
pub fn csv(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<String> {
    let mut out = Vec::new();
    {
        let mut w = arrow::csv::WriterBuilder::new()
            .with_header(true)
            .with_timestamp_format("%Y-%m-%d %H:%M:%S%.f".to_string())
            .build(&mut out);
        if batches.is_empty() {
            w.write(&RecordBatch::new_empty(schema.clone()))?;
        }
        for b in batches {
            w.write(b)?;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// One JSON object per line.
pub fn json(batches: &[RecordBatch]) -> Result<String> {
    let mut out = Vec::new();
    {
        // Nulls are written as `null` so every line has every column.
        let mut w = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::LineDelimited>(&mut out);
        for b in batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Number of rows in batches.
pub fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}
