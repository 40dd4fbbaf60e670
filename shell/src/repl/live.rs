//! Live results of a SELECT in the shell. In `table` format the newest rows
//! are redrawn in place as a table with a status line under it (elapsed
//! time, rows in and out, input rate, watermark, late rows, file progress);
//! other formats print rows as they arrive. Ctrl-C cancels the query.
//!
//! A bounded query ends by printing its whole result (as psql does), paged
//! through `$PAGER` (or `less`) when it is taller than the terminal; only an
//! unbounded one keeps just the newest rows on screen. `max-rows` caps both.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_schema::SchemaRef;
use comfy_table::{ContentArrangement, Table};
use sluice_engine::{format, QueryHandle, QueryProgress, QuerySummary, Session};
use tokio::sync::mpsc;

use super::updating::UpdatingRows;
use crate::output::{self, Format, RowStream};

/// comfy-table style drawn like the script-mode tables: `+---+` rules
/// above and below the header and at the bottom, none between rows.
const TABLE_STYLE: &str = "||--+-++|    ++++++";

/// How often the live table is redrawn.
const FRAME: Duration = Duration::from_millis(100);

/// How a live query ended.
enum End {
    Done,
    Cancelled,
    Failed(anyhow::Error),
}

/// Show a running query until it ends or Ctrl-C cancels it.
pub async fn show(session: &Session, handle: QueryHandle) -> anyhow::Result<()> {
    let format = Format::of(session);
    let schema = handle.schema();
    let progress = handle.progress();
    let handle_bounded = handle.is_bounded();
    let updating = handle
        .changelog()
        .is_updating()
        .then(|| UpdatingRows::new(handle.changelog().upsert_key().map(<[usize]>::to_vec)));
    let (tx, mut rx) = mpsc::channel(4);
    // The query is read by its own task so that the render loop can wait on
    // rows, the clock and Ctrl-C at once; aborting the task drops the
    // handle, which cancels the query.
    let reader = tokio::spawn(async move {
        let mut handle = handle;
        while let Some(batch) = handle.next_batch().await? {
            if tx.send(batch).await.is_err() {
                break;
            }
        }
        Ok::<_, sluice_common::Error>(())
    });
    let mut view = View::new(session, format, schema, handle_bounded);
    view.updating = updating;
    // The first frame waits one period so quick queries draw only once.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + FRAME, FRAME);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let end = loop {
        tokio::select! {
            _ = &mut ctrl_c => break End::Cancelled,
            batch = rx.recv() => match batch {
                Some(b) => view.add(&b)?,
                None => break End::Done,
            },
            _ = tick.tick() => view.draw_live(&progress)?,
        }
    };
    reader.abort();
    let end = match (end, reader.await) {
        (End::Done, Ok(Err(e))) => End::Failed(e.into()),
        (end, _) => end,
    };
    let summary = progress.summary();
    view.finish(&summary, &end)?;
    match end {
        End::Failed(e) => Err(e),
        _ => Ok(()),
    }
}

/// Most rows of a bounded result kept for its final table (the newest).
const MAX_KEPT: usize = 100_000;

/// The rows kept for display and what was last drawn.
struct View {
    format: Format,
    schema: SchemaRef,
    /// Rows on screen while the query runs.
    max_rows: usize,
    /// Rows kept (for a bounded result: its whole final table).
    keep: usize,
    /// The query ends by itself (its result is printed whole).
    bounded: bool,
    pager: bool,
    rows: VecDeque<Vec<String>>,
    total: u64,
    drawn_lines: usize,
    rate: Rate,
    live: bool,
    /// Rows in the line formats (changelog, csv, json) print as they come.
    stream: RowStream,
    /// An updating result in table format: its current rows, in place.
    updating: Option<UpdatingRows>,
}

impl View {
    fn new(session: &Session, format: Format, schema: SchemaRef, bounded: bool) -> Self {
        let (_, height) = terminal_size();
        let fit = usize::from(height).saturating_sub(8).max(5);
        let settings = session.settings();
        let cap = match settings.get("max-rows").ok().as_deref() {
            Some("auto") | None => None,
            Some(n) => n.parse().ok(),
        };
        let max_rows = cap.unwrap_or(fit).min(fit);
        let keep = match (bounded, cap) {
            (_, Some(n)) => n,
            (true, None) => MAX_KEPT,
            (false, None) => fit,
        };
        let pager = settings.get("pager").ok().as_deref() != Some("off");
        drop(settings);
        View {
            format,
            stream: RowStream::new(format, Arc::clone(&schema)),
            schema,
            max_rows,
            keep,
            bounded,
            pager,
            rows: VecDeque::new(),
            total: 0,
            drawn_lines: 0,
            rate: Rate::default(),
            live: std::io::IsTerminal::is_terminal(&std::io::stdout()),
            updating: None,
        }
    }

    /// The rows to show; while a query runs (`marks`), an updating
    /// result's first column marks the rows changed since the last frame.
    fn shown(&self, marks: bool) -> Vec<Vec<String>> {
        match &self.updating {
            Some(u) => u
                .rows()
                .map(|(r, changed)| {
                    let mut row = Vec::with_capacity(r.len() + 1);
                    if marks {
                        row.push(if changed { "*" } else { "" }.to_string());
                    }
                    row.extend(r.iter().cloned());
                    row
                })
                .collect(),
            None => self.rows.iter().cloned().collect(),
        }
    }

    /// The header, with the marks column when `marks`.
    fn header(&self, marks: bool) -> Vec<String> {
        let mut h: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if marks && self.updating.is_some() {
            h.insert(0, String::new());
        }
        h
    }

    fn add(&mut self, batch: &arrow_array::RecordBatch) -> anyhow::Result<()> {
        if self.format != Format::Table {
            self.total += batch.num_rows() as u64;
            return self.stream.push(batch);
        }
        if let Some(u) = &mut self.updating {
            self.total += batch.num_rows() as u64;
            return u.apply(batch);
        }
        for row in format::rows_as_strings(std::slice::from_ref(batch))? {
            self.rows.push_back(row);
            if self.rows.len() > self.keep {
                self.rows.pop_front();
            }
        }
        self.total += batch.num_rows() as u64;
        Ok(())
    }

    fn draw_live(&mut self, progress: &QueryProgress) -> anyhow::Result<()> {
        if self.format != Format::Table || !self.live {
            return Ok(());
        }
        let summary = progress.summary();
        let rate = self.rate.update(summary.rows_in);
        let status = status_line(&summary, self.total, rate);
        self.redraw(Some(&status))
    }

    fn finish(&mut self, summary: &QuerySummary, end: &End) -> anyhow::Result<()> {
        if self.format == Format::Table {
            self.print_whole()?;
            if self.updating.is_none() && self.total > self.rows.len() as u64 {
                let how = if self.bounded {
                    "SET max-rows = n to keep more, or use --format csv"
                } else {
                    "SET max-rows = n to keep more"
                };
                eprintln!(
                    "(showing the newest {} of {} rows; {how})",
                    self.rows.len(),
                    self.total
                );
            }
        } else {
            self.stream.finish()?;
        }
        let note = output::query_note(self.total, summary);
        match end {
            End::Done => eprintln!("{note}"),
            End::Cancelled => eprintln!("Cancelled: {note}"),
            End::Failed(_) => {}
        }
        Ok(())
    }

    /// Replace the last frame with every kept row, paged when taller than
    /// the terminal.
    fn print_whole(&mut self) -> anyhow::Result<()> {
        let (width, height) = terminal_size();
        let shown = self.shown(false);
        let rows: Vec<&Vec<String>> = shown.iter().collect();
        let mut text = render_table(&self.header(false), &rows, width);
        text.push('\n');
        self.clear_frame()?;
        let tall = text.lines().count() + 2 > usize::from(height);
        if self.live && self.pager && tall && tokio::task::block_in_place(|| page(&text)) {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(())
    }

    /// Erase the last live frame.
    fn clear_frame(&mut self) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        self.erase_frame(&mut out)?;
        out.flush()?;
        self.drawn_lines = 0;
        Ok(())
    }

    /// Move up to the first line of the last frame and clear to the end.
    fn erase_frame(&self, out: &mut impl Write) -> std::io::Result<()> {
        if self.live && self.drawn_lines > 0 {
            write!(out, "\x1b[{}F\x1b[J", self.drawn_lines)?;
        }
        Ok(())
    }

    /// Replace the previous frame with the newest rows (and a status line
    /// while the query runs).
    fn redraw(&mut self, status: Option<&str>) -> anyhow::Result<()> {
        let (width, height) = terminal_size();
        let shown = self.shown(true);
        let header = self.header(true);
        let skip = shown.len().saturating_sub(self.max_rows);
        let mut rows: Vec<&Vec<String>> = shown.iter().skip(skip).collect();
        let mut text = render_table(&header, &rows, width);
        // Keep the frame within the screen so it can be redrawn in place.
        while self.live && status.is_some() && !rows.is_empty() {
            let lines = text.lines().count() + 2;
            if lines <= usize::from(height) {
                break;
            }
            rows.remove(0);
            text = render_table(&header, &rows, width);
        }
        text.push('\n');
        if let Some(s) = status {
            let s: String = s
                .chars()
                .take(usize::from(width).saturating_sub(1))
                .collect();
            text.push_str(&s);
            text.push('\n');
        }
        let mut out = std::io::stdout().lock();
        self.erase_frame(&mut out)?;
        out.write_all(text.as_bytes())?;
        out.flush()?;
        self.drawn_lines = text.lines().count();
        if let Some(u) = &mut self.updating {
            u.seen();
        }
        Ok(())
    }
}

/// Show `text` through the user's pager (`$SLUICE_PAGER`, `$PAGER`, else
/// `less -FRX`); false if none could be started, to print it instead.
fn page(text: &str) -> bool {
    let cmd = std::env::var("SLUICE_PAGER")
        .or_else(|_| std::env::var("PAGER"))
        .unwrap_or_else(|_| "less -FRX".to_string());
    if cmd.trim().is_empty() {
        return false;
    }
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .stdin(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    if let Some(mut input) = child.stdin.take() {
        // A pager quit early closes its input: not an error.
        let _ = input.write_all(text.as_bytes());
    }
    child.wait().is_ok()
}

fn render_table(header: &[String], rows: &[&Vec<String>], width: u16) -> String {
    let mut table = Table::new();
    table
        .load_preset(TABLE_STYLE)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width)
        .set_header(header.iter().cloned());
    for r in rows {
        table.add_row(r.iter().cloned());
    }
    table.to_string()
}

/// Columns and rows of the terminal; 120x40 when unknown (or reported as
/// zero, as a fresh pseudo-terminal may).
fn terminal_size() -> (u16, u16) {
    match crossterm::terminal::size() {
        Ok((w, h)) if w > 0 && h > 0 => (w, h),
        _ => (120, 40),
    }
}

fn status_line(s: &QuerySummary, out_rows: u64, rate: f64) -> String {
    let mut line = format!(
        "running {:.1}s | in {} rows ({:.0}/s) | out {} | watermark {} | late {}",
        s.elapsed.as_secs_f64(),
        s.rows_in,
        rate,
        out_rows,
        s.watermark.display(),
        s.late_rows
    );
    if s.state_keys > 0 {
        line.push_str(&format!(
            " | state {} keys ({})",
            s.state_keys,
            bytes(s.state_bytes)
        ));
    }
    if s.bytes_total > 0 {
        line.push_str(&format!(
            " | read {} of {} ({:.0}%)",
            bytes(s.bytes_read),
            bytes(s.bytes_total),
            100.0 * s.bytes_read as f64 / s.bytes_total as f64
        ));
    }
    if !s.partition_lag.is_empty() {
        let total: i64 = s.partition_lag.iter().map(|(_, l)| l).sum();
        let parts: Vec<String> = s
            .partition_lag
            .iter()
            .take(4)
            .map(|(p, l)| format!("p{p} {l}"))
            .collect();
        let more = if s.partition_lag.len() > 4 {
            ", ..."
        } else {
            ""
        };
        line.push_str(&format!(" | lag {total} ({}{more})", parts.join(", ")));
    }
    if let Some(last) = s.checkpoints.as_ref().and_then(|c| c.last.as_ref()) {
        line.push_str(&format!(
            " | checkpoint #{} {:.0}s ago ({} ms, {})",
            last.id,
            last.at.elapsed().as_secs_f64(),
            last.duration.as_millis(),
            bytes(last.bytes)
        ));
    }
    line.push_str(" | Ctrl-C cancels");
    line
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Input rate over the last second or so.
#[derive(Default)]
struct Rate {
    last: Option<(Instant, u64)>,
    value: f64,
}

impl Rate {
    fn update(&mut self, rows_in: u64) -> f64 {
        let now = Instant::now();
        match self.last {
            Some((t, n)) if now.duration_since(t) >= Duration::from_millis(500) => {
                let dt = now.duration_since(t).as_secs_f64();
                self.value = rows_in.saturating_sub(n) as f64 / dt;
                self.last = Some((now, rows_in));
            }
            Some(_) => {}
            None => self.last = Some((now, rows_in)),
        }
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_shows_counters_and_file_progress() {
        let s = QuerySummary {
            rows_in: 1200,
            rows_out: 3,
            result_rows: 3,
            state_keys: 0,
            state_bytes: 0,
            late_rows: 2,
            bad_records: 0,
            nulled_records: 0,
            bytes_read: 1024,
            bytes_total: 4096,
            partition_lag: vec![(0, 5), (1, 0)],
            watermark: sluice_common::Watermark(0),
            elapsed: Duration::from_millis(2500),
            checkpoints: None,
            workers: vec![],
        };
        assert_eq!(
            status_line(&s, 3, 480.0),
            "running 2.5s | in 1200 rows (480/s) | out 3 | watermark 1970-01-01 00:00:00.000 \
             | late 2 | read 1.0 KB of 4.0 KB (25%) | lag 5 (p0 5, p1 0) | Ctrl-C cancels"
        );
        let last = sluice_engine::CheckpointStats {
            completed: 7,
            last: Some(sluice_engine::CompletedCheckpoint {
                id: 7,
                at: Instant::now(),
                duration: Duration::from_millis(12),
                bytes: 2048,
                path: std::path::PathBuf::from("/tmp/chk-7"),
            }),
            ..Default::default()
        };
        let s = QuerySummary {
            checkpoints: Some(last),
            ..s
        };
        assert!(
            status_line(&s, 3, 480.0).contains("| checkpoint #7 0s ago (12 ms, 2.0 KB) |"),
            "{}",
            status_line(&s, 3, 480.0)
        );
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MB");
    }
}
