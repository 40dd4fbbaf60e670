//! The datagen source: generated batches paced to `rows-per-second`.

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use sluice_common::{Error, Result};
use sluice_exec::source::{ScanColumns, Source, SourceContext};
use tokio::time::Instant;

use super::generate::{now_millis, Generator, Rng};
use super::DatagenOptions;

/// Most rows in one batch.
const BATCH_ROWS: usize = 8192;
/// Shortest sleep between batches (high rates make batches, not spins).
const MIN_SLEEP: Duration = Duration::from_millis(10);
/// Longest a due row waits for its batch to fill.
const MAX_LATENCY: Duration = Duration::from_millis(200);

/// What to generate.
#[derive(Debug, Clone)]
pub struct DatagenSourceConfig {
    /// Table name (for messages).
    pub table: String,
    /// Options, parsed against the table's schema.
    pub options: DatagenOptions,
    /// Makes every column of the table.
    pub scan: ScanColumns,
}

/// Generates rows: bounded when `number-of-rows` is set or a column is a
/// sequence, unbounded otherwise.
#[derive(Debug)]
pub struct DatagenSource {
    cfg: DatagenSourceConfig,
}

impl DatagenSource {
    /// A source for `cfg`.
    pub fn try_new(cfg: DatagenSourceConfig) -> Result<Self> {
        let fields = cfg.scan.made().fields();
        let matches = fields.len() == cfg.options.columns.len()
            && fields
                .iter()
                .zip(&cfg.options.columns)
                .all(|(f, c)| f.data_type() == &c.data_type);
        if !matches {
            return Err(Error::internal(format!(
                "table {}: datagen options were parsed for another schema",
                cfg.table
            )));
        }
        Ok(DatagenSource { cfg })
    }
}

/// Rows due `elapsed` after the start at `rate` rows per second.
fn rows_due(rate: u64, elapsed: Duration) -> u64 {
    let due = elapsed.as_nanos().saturating_mul(u128::from(rate)) / 1_000_000_000;
    u64::try_from(due).unwrap_or(u64::MAX)
}

/// When, after the start, `rows` rows are due at `rate` rows per second.
fn due_at(rate: u64, rows: u64) -> Duration {
    let nanos = u128::from(rows).saturating_mul(1_000_000_000) / u128::from(rate.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[async_trait]
impl Source for DatagenSource {
    fn name(&self) -> &'static str {
        "DatagenSource"
    }

    fn describe(&self) -> String {
        let rows = match self.cfg.options.row_limit() {
            Some(n) => n.to_string(),
            None => "unbounded".into(),
        };
        format!(
            "DatagenSource: {} (rows-per-second={}, number-of-rows={rows}) columns=[{}]",
            self.cfg.table,
            self.cfg.options.rows_per_second,
            self.cfg.scan.emitted_names()
        )
    }

    fn output_schema(&self) -> SchemaRef {
        self.cfg.scan.emitted()
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        let cfg = self.cfg;
        let rate = cfg.options.rows_per_second.max(1);
        let limit = cfg.options.row_limit();
        let mut generator = Generator::new(
            Arc::clone(cfg.scan.made()),
            cfg.options.columns.clone(),
            Rng::from_clock(),
        );
        let batch_rows = generator.batch_rows(BATCH_ROWS) as u64;
        let start = Instant::now();
        let mut last_emit = start;
        let mut emitted: u64 = 0;
        loop {
            let remaining = limit.map_or(u64::MAX, |l| l.saturating_sub(emitted));
            if remaining == 0 {
                ctx.finish().await;
                return Ok(());
            }
            let now = Instant::now();
            let due = rows_due(rate, now - start)
                .saturating_sub(emitted)
                .min(remaining);
            let full = batch_rows.min(remaining);
            if due >= full || (due > 0 && now - last_emit >= MAX_LATENCY) {
                let n = due.min(batch_rows);
                let batch = generator.batch(n as usize, now_millis())?;
                emitted += n;
                last_emit = now;
                let sent = ctx.send_with_watermark(batch, &cfg.scan).await?;
                if !sent {
                    return Ok(());
                }
                continue;
            }
            // Wait for a full batch, but not past the latency cap, and not
            // before the next row is due.
            let mut wake =
                due_at(rate, emitted.saturating_add(full)).min(MAX_LATENCY + (last_emit - start));
            if due == 0 {
                wake = wake.max(due_at(rate, emitted + 1));
            }
            let wake = start
                .checked_add(wake)
                .unwrap_or(now + Duration::from_secs(3600))
                .max(now + MIN_SLEEP);
            tokio::time::sleep_until(wake).await;
        }
    }
}
