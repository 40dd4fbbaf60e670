//! What every join kind shares: the join's kind, and how output rows are
//! built from the two sides' columns (joined, padded with NULLs, or one
//! side's rows alone for semi and anti joins) and filtered by the join's
//! other conditions.

use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, AsArray, Int8Array, UInt32Array};
use arrow::compute::{filter_record_batch, prep_null_mask_filter, take};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::changelog::{self, RowKind};
use sluice_common::{Error, Result};

use super::side::Pick;
use crate::operator::Output;

/// Which rows a join emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Matched pairs.
    Inner,
    /// Matched pairs, and left rows with no match padded with NULLs.
    Left,
    /// Matched pairs, and right rows with no match padded with NULLs.
    Right,
    /// Matched pairs, and rows of either side with no match.
    Full,
    /// Left rows with at least one match (`IN`, `EXISTS`).
    Semi,
    /// Left rows with no match (`NOT EXISTS`, `NOT IN`).
    Anti,
}

impl JoinKind {
    /// Which sides keep their unmatched rows, padded with NULLs.
    pub fn outer(self) -> [bool; 2] {
        match self {
            JoinKind::Left => [true, false],
            JoinKind::Right => [false, true],
            JoinKind::Full => [true, true],
            _ => [false, false],
        }
    }

    /// Whether joined pairs are output (not semi or anti joins).
    pub fn emits_pairs(self) -> bool {
        !matches!(self, JoinKind::Semi | JoinKind::Anti)
    }

    /// SQL name.
    pub fn sql(self) -> &'static str {
        match self {
            JoinKind::Inner => "INNER",
            JoinKind::Left => "LEFT",
            JoinKind::Right => "RIGHT",
            JoinKind::Full => "FULL",
            JoinKind::Semi => "SEMI",
            JoinKind::Anti => "ANTI",
        }
    }
}

/// What every join is given: its keys, other conditions, joined columns
/// and kind.
#[derive(Debug, Clone)]
pub struct JoinSpec {
    /// Key expressions over the left input, one per equality.
    pub left_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Key expressions over the right input, in the same order.
    pub right_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Other conditions, over the joined columns (left, then right).
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// The left input's columns, then the right's (without row kinds).
    pub joined: SchemaRef,
    /// Which rows the join emits.
    pub kind: JoinKind,
}

impl JoinSpec {
    /// How output rows are built, for a left input of schema `left`.
    pub(crate) fn shape(&self, left: &Schema) -> Shape {
        Shape {
            joined: Arc::clone(&self.joined),
            left_width: left.fields().len(),
            filter: self.filter.clone(),
            kind: self.kind,
        }
    }

    /// EXPLAIN's line: `name: KIND on [keys]`, then `extra`, then the other
    /// conditions.
    pub(crate) fn describe(&self, name: &str, extra: &str) -> String {
        let mut line = format!("{name}: {} on [{}]{extra}", self.kind.sql(), self.keys());
        if let Some(f) = &self.filter {
            line.push_str(&format!(" filter {f}"));
        }
        line
    }

    /// EXPLAIN's list of the key equalities: `l1 = r1, l2 = r2`.
    pub(crate) fn keys(&self) -> String {
        let pairs: Vec<String> = self
            .left_keys
            .iter()
            .zip(&self.right_keys)
            .map(|(l, r)| format!("{l} = {r}"))
            .collect();
        pairs.join(", ")
    }
}

/// Joined rows and the pairs they came from: (row of the probing batch,
/// stored row of the other side).
pub(crate) type Pairs = (RecordBatch, Vec<u32>, Vec<Pick>);

/// Builds output rows.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// The left input's columns, then the right's.
    pub joined: SchemaRef,
    pub left_width: usize,
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    pub kind: JoinKind,
}

impl Shape {
    /// Schema of the rows emitted (without a row-kind column): a semi or
    /// anti join emits only left rows.
    pub fn data_schema(&self) -> SchemaRef {
        if self.kind.emits_pairs() {
            Arc::clone(&self.joined)
        } else {
            let fields: Vec<_> = self.joined.fields()[..self.left_width].to_vec();
            Arc::new(Schema::new(fields))
        }
    }

    /// Rows of the joined schema from side `input`'s columns and the
    /// other side's.
    pub fn combine(
        &self,
        input: usize,
        mine: Vec<ArrayRef>,
        theirs: Vec<ArrayRef>,
    ) -> Result<RecordBatch> {
        let columns = if input == 0 {
            mine.into_iter().chain(theirs).collect()
        } else {
            theirs.into_iter().chain(mine).collect()
        };
        Ok(RecordBatch::try_new(Arc::clone(&self.joined), columns)?)
    }

    /// What an unmatched row of side `side` becomes: padded with NULLs for
    /// the other side, or (semi and anti joins) the left row itself.
    pub fn lonely(&self, side: usize, cols: Vec<ArrayRef>) -> Result<RecordBatch> {
        if !self.kind.emits_pairs() {
            return Ok(RecordBatch::try_new(self.data_schema(), cols)?);
        }
        let n = cols.first().map_or(0, |c| c.len());
        let fields = self.joined.fields();
        let range = if side == 0 {
            self.left_width..fields.len()
        } else {
            0..self.left_width
        };
        let nulls = fields[range]
            .iter()
            .map(|f| new_null_array(f.data_type(), n))
            .collect();
        self.combine(side, cols, nulls)
    }

    /// The rows of `batch` (from side `side`) with some matches
    /// (`matched_ones`) or none, as [`Shape::lonely`] rows; `None` when
    /// there are none.
    pub fn lonely_where(
        &self,
        side: usize,
        batch: &RecordBatch,
        matched: &[u32],
        matched_ones: bool,
    ) -> Result<Option<RecordBatch>> {
        let idx: Vec<u32> = (0..matched.len() as u32)
            .filter(|&i| (matched[i as usize] > 0) == matched_ones)
            .collect();
        if idx.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.lonely(side, take_rows(batch, &idx)?)?))
    }

    /// Pair row `mine[i]` of `batch` (from side `input`) with stored row
    /// `theirs[i]` of the other side (its columns `their_cols`), and keep
    /// the pairs that pass the join's other conditions.
    pub fn pairs(
        &self,
        input: usize,
        batch: &RecordBatch,
        mine: Vec<u32>,
        theirs: Vec<Pick>,
        their_cols: Vec<ArrayRef>,
    ) -> Result<Pairs> {
        let mine_cols = take_rows(batch, &mine)?;
        let joined = self.combine(input, mine_cols, their_cols)?;
        let Some(f) = &self.filter else {
            return Ok((joined, mine, theirs));
        };
        let v = f.evaluate(&joined)?.into_array(joined.num_rows())?;
        let mask = v.as_boolean_opt().ok_or_else(|| {
            Error::execution(format!("join condition is {}, not BOOLEAN", v.data_type()))
        })?;
        let mask = if mask.null_count() > 0 {
            prep_null_mask_filter(mask)
        } else {
            mask.clone()
        };
        let keep = |i: usize| mask.value(i);
        let mine = mine
            .into_iter()
            .enumerate()
            .filter_map(|(i, m)| keep(i).then_some(m))
            .collect();
        let theirs = theirs
            .into_iter()
            .enumerate()
            .filter_map(|(i, t)| keep(i).then_some(t))
            .collect();
        Ok((filter_record_batch(&joined, &mask)?, mine, theirs))
    }
}

/// The rows of `batch` at `idx`, as columns.
pub(crate) fn take_rows(batch: &RecordBatch, idx: &[u32]) -> Result<Vec<ArrayRef>> {
    let idx = UInt32Array::from(idx.to_vec());
    Ok(batch
        .columns()
        .iter()
        .map(|c| take(c, &idx, None))
        .collect::<std::result::Result<_, _>>()?)
}

/// Send `parts`: as they are when the output is append-only, else with
/// each part's row kind (`schema`: the output schema with its row-kind
/// column).
pub(crate) fn emit(
    schema: &SchemaRef,
    changelog: bool,
    parts: Vec<(RecordBatch, RowKind)>,
    out: &mut Output,
) -> Result<()> {
    for (b, kind) in parts {
        if b.num_rows() == 0 {
            continue;
        }
        if changelog {
            let ops = Int8Array::from(vec![kind.code(); b.num_rows()]);
            out.push(changelog::with_ops(schema, b.columns().to_vec(), ops)?);
        } else {
            out.push(b);
        }
    }
    Ok(())
}
