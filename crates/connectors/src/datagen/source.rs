//! The datagen source: generated batches paced to `rows-per-second`.

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use sluice_common::{Error, Result, Watermark};
use sluice_exec::checkpoint::state::{scalar, scalars, string_values, strings};
use sluice_exec::checkpoint::State;
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
    /// A restored source's position.
    resume: Option<Resume>,
}

/// Where a restored datagen source continues: rows sent, the random state,
/// the sequences' next values and the watermark sent last.
#[derive(Debug, Clone)]
struct Resume {
    emitted: u64,
    rng: u64,
    cursors: Vec<i128>,
    watermark: i64,
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
        Ok(DatagenSource { cfg, resume: None })
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

/// What the source does next, at a time since its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Generate and send this many rows now.
    Emit(u64),
    /// Sleep until this time since the start.
    SleepUntil(Duration),
    /// Every row was sent.
    Done,
}

/// The pacing of [`DatagenSource`], apart from the clock so it can be
/// tested: rows go out at `rate` per second in batches of up to
/// `batch_rows`, a batch leaving when full or when its rows have waited
/// [`MAX_LATENCY`] since the last batch.
#[derive(Debug, Clone)]
pub(super) struct Pacer {
    rate: u64,
    limit: Option<u64>,
    batch_rows: u64,
    emitted: u64,
    last_emit: Duration,
}

impl Pacer {
    /// Rows sent so far.
    pub(super) fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Continue after `emitted` rows.
    pub(super) fn resume(&mut self, emitted: u64) {
        self.emitted = emitted;
    }

    pub(super) fn new(rate: u64, limit: Option<u64>, batch_rows: u64) -> Self {
        Pacer {
            rate: rate.max(1),
            limit,
            batch_rows: batch_rows.max(1),
            emitted: 0,
            last_emit: Duration::ZERO,
        }
    }

    /// The next step at `now` (time since the start); an `Emit` counts
    /// its rows as sent.
    pub(super) fn step(&mut self, now: Duration) -> Step {
        let remaining = self
            .limit
            .map_or(u64::MAX, |l| l.saturating_sub(self.emitted));
        if remaining == 0 {
            return Step::Done;
        }
        let due = rows_due(self.rate, now)
            .saturating_sub(self.emitted)
            .min(remaining);
        let full = self.batch_rows.min(remaining);
        if due >= full || (due > 0 && now.saturating_sub(self.last_emit) >= MAX_LATENCY) {
            let n = due.min(self.batch_rows);
            self.emitted += n;
            self.last_emit = now;
            return Step::Emit(n);
        }
        // Wait for a full batch, but not past the latency cap, and not
        // before the next row is due.
        let mut wake = due_at(self.rate, self.emitted.saturating_add(full))
            .min(MAX_LATENCY.saturating_add(self.last_emit));
        if due == 0 {
            wake = wake.max(due_at(self.rate, self.emitted + 1));
        }
        Step::SleepUntil(wake.max(now.saturating_add(MIN_SLEEP)))
    }
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
        let mut generator = Generator::new(
            Arc::clone(cfg.scan.made()),
            cfg.options.columns.clone(),
            Rng::from_clock(),
        );
        let mut pacer = Pacer::new(
            cfg.options.rows_per_second,
            cfg.options.row_limit(),
            generator.batch_rows(BATCH_ROWS) as u64,
        );
        let mut start = Instant::now();
        if let Some(r) = &self.resume {
            generator.resume(r.rng, r.cursors.clone());
            pacer.resume(r.emitted);
            ctx.resume_watermark(Watermark(r.watermark));
            // Paced as if the rows before were on time.
            let behind = due_at(cfg.options.rows_per_second, r.emitted);
            start = start.checked_sub(behind).unwrap_or(start);
        }
        loop {
            if let Some(id) = ctx.barrier_due() {
                let state = position(&generator, &pacer, ctx.watermark());
                if !ctx.send_barrier(id, state).await {
                    return Ok(());
                }
            }
            let now = Instant::now();
            let wake = match pacer.step(now - start) {
                Step::Done => {
                    ctx.finish().await;
                    return Ok(());
                }
                Step::Emit(n) => {
                    let batch = generator.batch(n as usize, now_millis())?;
                    if !ctx.send_with_watermark(batch, &cfg.scan).await? {
                        return Ok(());
                    }
                    continue;
                }
                Step::SleepUntil(wake) => wake,
            };
            let wake = start
                .checked_add(wake)
                .unwrap_or(now + Duration::from_secs(3600));
            tokio::time::sleep_until(wake).await;
        }
    }

    fn checkpoints(&self) -> bool {
        true
    }

    fn restore(&mut self, state: &State) -> Result<()> {
        let p = state.require("position")?;
        let cursors = string_values(state.require("cursors")?, "next")?
            .iter()
            .map(|c| {
                c.parse::<i128>().map_err(|_| {
                    Error::Checkpoint(format!("datagen: checkpointed sequence value '{c}'"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.resume = Some(Resume {
            emitted: scalar(p, "emitted")? as u64,
            rng: scalar(p, "rng")? as u64,
            cursors,
            watermark: scalar(p, "watermark")?,
        });
        Ok(())
    }
}

/// The source's position for a checkpoint.
fn position(generator: &Generator, pacer: &Pacer, wm: Watermark) -> State {
    let (rng, cursors) = generator.position();
    let cursors: Vec<String> = cursors.iter().map(i128::to_string).collect();
    State::new()
        .with(
            "position",
            scalars(&[
                ("emitted", pacer.emitted() as i64),
                ("rng", rng as i64),
                ("watermark", wm.0),
            ]),
        )
        .with("cursors", strings("next", &cursors))
}
