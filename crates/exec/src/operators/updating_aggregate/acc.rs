//! Per-group aggregate state that can be read at any time and retracted.
//!
//! DataFusion's `GroupsAccumulator` is built for batch queries: reading a
//! result (`evaluate`) consumes the state and nothing can be taken back. An
//! updating aggregate reads the groups a batch touched after every batch
//! and, over an updating input, removes rows. So the common aggregates keep
//! their state here, in typed vectors indexed by group id (vectorised:
//! one pass over a batch's rows, no per-group calls); every other
//! DataFusion aggregate runs through [`super::fallback`].

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, PrimitiveArray, UInt32Array,
};
use arrow::buffer::NullBuffer;
use arrow::compute::cast;
use arrow::datatypes::{
    ArrowNativeTypeOp, ArrowPrimitiveType, DataType, Decimal128Type, Field, Float64Type, Int64Type,
    Schema, UInt32Type, UInt64Type,
};
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result};

use crate::checkpoint::State;

/// The rows of one batch handed to an accumulator.
pub(crate) struct Rows<'a> {
    /// Argument values, one array per argument.
    pub args: &'a [ArrayRef],
    /// Group id of each row.
    pub groups: &'a [usize],
    /// `+1` to add a row, `-1` to retract it; `None`: all add.
    pub signs: Option<&'a [i8]>,
    /// Rows to skip (a `FILTER (WHERE ..)` that is false), no nulls.
    pub filter: Option<&'a BooleanArray>,
    /// Groups that exist after this batch.
    pub num_groups: usize,
}

impl Rows<'_> {
    /// Which rows count: the filter's and, when `nulls_skip`, those
    /// whose every argument is non-null.
    pub fn valid(&self, nulls_skip: bool) -> Option<NullBuffer> {
        let mut mask = self.filter.map(|f| NullBuffer::new(f.values().clone()));
        if nulls_skip {
            for a in self.args {
                mask = NullBuffer::union(mask.as_ref(), a.logical_nulls().as_ref());
            }
        }
        mask
    }

    pub fn sign(&self, i: usize) -> i8 {
        self.signs.map_or(1, |s| s[i])
    }
}

/// State of one aggregate call for every group.
pub(crate) trait GroupAcc: Send {
    /// Add or retract the rows of a batch.
    fn update(&mut self, rows: &Rows<'_>) -> Result<()>;
    /// The current values of `groups`.
    fn evaluate(&mut self, groups: &[usize]) -> Result<ArrayRef>;
    /// Keep only the groups `keep` (old ids, ascending); group `keep[i]`
    /// becomes group `i`.
    fn retain(&mut self, keep: &[usize]) -> Result<()>;
    /// Approximate bytes held.
    fn size(&self) -> usize;
    /// Hand the state of `groups` over as table `name` (or tables
    /// `name.*`) of `state`; a per-group table's first column, `g`, is each
    /// row's position in `groups` (a checkpoint).
    fn snapshot(&mut self, name: &str, groups: &[usize], state: &mut State) -> Result<()>;
    /// Take up what [`GroupAcc::snapshot`] handed over as `name`, placing
    /// its groups as `to` says.
    fn restore(&mut self, name: &str, state: &State, to: &Restore<'_>) -> Result<()>;
}

/// Where the groups of a checkpoint go on restore.
pub(crate) struct Restore<'a> {
    /// The rows of position `p` go to group `ids[p]` (`usize::MAX`: not
    /// this instance's key).
    pub ids: &'a [usize],
    /// The same by the checkpointing operator's own group id (`gid`).
    pub by_gid: &'a [usize],
    /// Groups `0..num_groups` exist.
    pub num_groups: usize,
}

/// Add a checkpoint table `name` to `state`: the positions `g`, then
/// `cols`.
pub(crate) fn put_table(
    state: &mut State,
    name: &str,
    g: Vec<u32>,
    cols: Vec<(&str, ArrayRef)>,
) -> Result<()> {
    let mut fields = vec![Field::new("g", DataType::UInt32, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(UInt32Array::from(g))];
    for (name, a) in cols {
        fields.push(Field::new(name, a.data_type().clone(), true));
        arrays.push(a);
    }
    state.add(
        name,
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?,
    );
    Ok(())
}

/// The group of each row of a checkpoint table (`None`: not kept).
pub(crate) fn restored_groups(table: &RecordBatch, ids: &[usize]) -> Result<Vec<Option<usize>>> {
    let g = table
        .column(0)
        .as_primitive_opt::<UInt32Type>()
        .ok_or_else(|| {
            Error::Checkpoint("an aggregate's checkpointed state is malformed".into())
        })?;
    Ok(g.values()
        .iter()
        .map(|&p| ids.get(p as usize).copied().filter(|&id| id != usize::MAX))
        .collect())
}

/// Column `i` of a checkpoint table as `T`.
pub(crate) fn state_column<T: ArrowPrimitiveType>(
    table: &RecordBatch,
    i: usize,
) -> Result<&PrimitiveArray<T>> {
    table
        .columns()
        .get(i)
        .and_then(|c| c.as_primitive_opt::<T>())
        .ok_or_else(|| Error::Checkpoint("an aggregate's checkpointed state is malformed".into()))
}

fn retain_vec<T: Copy>(v: &mut Vec<T>, keep: &[usize]) {
    *v = keep.iter().map(|&g| v[g]).collect();
}

/// `COUNT(x, ..)`, `COUNT(*)`: rows whose arguments are all non-null.
#[derive(Default)]
pub(crate) struct Count {
    counts: Vec<i64>,
}

impl GroupAcc for Count {
    fn update(&mut self, rows: &Rows<'_>) -> Result<()> {
        self.counts.resize(rows.num_groups, 0);
        let valid = rows.valid(true);
        for (i, &g) in rows.groups.iter().enumerate() {
            if valid.as_ref().is_none_or(|v| v.is_valid(i)) {
                self.counts[g] += i64::from(rows.sign(i));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, groups: &[usize]) -> Result<ArrayRef> {
        let v: Int64Array = groups.iter().map(|&g| self.counts[g]).collect();
        Ok(Arc::new(v))
    }

    fn retain(&mut self, keep: &[usize]) -> Result<()> {
        retain_vec(&mut self.counts, keep);
        Ok(())
    }

    fn size(&self) -> usize {
        self.counts.capacity() * 8
    }

    fn snapshot(&mut self, name: &str, groups: &[usize], state: &mut State) -> Result<()> {
        let counts: Int64Array = groups.iter().map(|&g| self.counts[g]).collect();
        put_table(
            state,
            name,
            (0..groups.len() as u32).collect(),
            vec![("count", Arc::new(counts))],
        )
    }

    fn restore(&mut self, name: &str, state: &State, to: &Restore<'_>) -> Result<()> {
        let (table, ids, num_groups) = (state.require(name)?, to.ids, to.num_groups);
        self.counts.resize(num_groups, 0);
        let counts = state_column::<Int64Type>(table, 1)?;
        for (r, id) in restored_groups(table, ids)?.into_iter().enumerate() {
            if let Some(g) = id {
                self.counts[g] = counts.value(r);
            }
        }
        Ok(())
    }
}

/// `SUM(x)` in the result type `T` (the input is cast to it): a running
/// sum and the number of non-null values, so a group whose values were all
/// retracted is NULL.
pub(crate) struct Sum<T: ArrowPrimitiveType> {
    data_type: DataType,
    sums: Vec<T::Native>,
    counts: Vec<i64>,
}

/// `AVG(x)` over numbers: a DOUBLE sum and count.
pub(crate) struct Avg(Sum<Float64Type>);

impl GroupAcc for Avg {
    fn update(&mut self, rows: &Rows<'_>) -> Result<()> {
        self.0.update(rows)
    }

    fn evaluate(&mut self, groups: &[usize]) -> Result<ArrayRef> {
        let s = &self.0;
        let v: PrimitiveArray<Float64Type> = groups
            .iter()
            .map(|&g| (s.counts[g] > 0).then(|| s.sums[g] / s.counts[g] as f64))
            .collect();
        Ok(Arc::new(v))
    }

    fn retain(&mut self, keep: &[usize]) -> Result<()> {
        self.0.retain(keep)
    }

    fn size(&self) -> usize {
        self.0.size()
    }

    fn snapshot(&mut self, name: &str, groups: &[usize], state: &mut State) -> Result<()> {
        self.0.snapshot(name, groups, state)
    }

    fn restore(&mut self, name: &str, state: &State, to: &Restore<'_>) -> Result<()> {
        self.0.restore(name, state, to)
    }
}

impl<T: ArrowPrimitiveType> Sum<T>
where
    T::Native: ArrowNativeTypeOp,
{
    fn new(data_type: DataType) -> Self {
        Sum {
            data_type,
            sums: Vec::new(),
            counts: Vec::new(),
        }
    }
}

impl<T: ArrowPrimitiveType> GroupAcc for Sum<T>
where
    T::Native: ArrowNativeTypeOp,
{
    fn update(&mut self, rows: &Rows<'_>) -> Result<()> {
        self.sums.resize(rows.num_groups, T::Native::ZERO);
        self.counts.resize(rows.num_groups, 0);
        let valid = rows.valid(true);
        let values = cast(&rows.args[0], &self.data_type)?;
        let values = values.as_primitive::<T>().values();
        for (i, &g) in rows.groups.iter().enumerate() {
            if valid.as_ref().is_none_or(|v| v.is_valid(i)) {
                if rows.sign(i) > 0 {
                    self.sums[g] = self.sums[g].add_wrapping(values[i]);
                    self.counts[g] += 1;
                } else {
                    self.sums[g] = self.sums[g].sub_wrapping(values[i]);
                    self.counts[g] -= 1;
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, groups: &[usize]) -> Result<ArrayRef> {
        let v: PrimitiveArray<T> = groups
            .iter()
            .map(|&g| (self.counts[g] > 0).then_some(self.sums[g]))
            .collect();
        Ok(Arc::new(v.with_data_type(self.data_type.clone())))
    }

    fn retain(&mut self, keep: &[usize]) -> Result<()> {
        retain_vec(&mut self.sums, keep);
        retain_vec(&mut self.counts, keep);
        Ok(())
    }

    fn size(&self) -> usize {
        self.sums.capacity() * size_of::<T::Native>() + self.counts.capacity() * 8
    }

    fn snapshot(&mut self, name: &str, groups: &[usize], state: &mut State) -> Result<()> {
        let sums: PrimitiveArray<T> = groups.iter().map(|&g| Some(self.sums[g])).collect();
        let counts: Int64Array = groups.iter().map(|&g| self.counts[g]).collect();
        put_table(
            state,
            name,
            (0..groups.len() as u32).collect(),
            vec![
                ("sum", Arc::new(sums.with_data_type(self.data_type.clone()))),
                ("count", Arc::new(counts)),
            ],
        )
    }

    fn restore(&mut self, name: &str, state: &State, to: &Restore<'_>) -> Result<()> {
        let (table, ids, num_groups) = (state.require(name)?, to.ids, to.num_groups);
        self.sums.resize(num_groups, T::Native::ZERO);
        self.counts.resize(num_groups, 0);
        let sums = state_column::<T>(table, 1)?;
        let counts = state_column::<Int64Type>(table, 2)?;
        for (r, id) in restored_groups(table, ids)?.into_iter().enumerate() {
            if let Some(g) = id {
                self.sums[g] = sums.value(r);
                self.counts[g] = counts.value(r);
            }
        }
        Ok(())
    }
}

/// A vectorised accumulator for `name` with result type `out` and argument
/// types `args`, when there is one (`None`: use the fallback).
pub(crate) fn native(
    name: &str,
    distinct: bool,
    args: &[DataType],
    out: &DataType,
    retracts: bool,
) -> Result<Option<Box<dyn GroupAcc>>> {
    let acc: Box<dyn GroupAcc> = match (name, distinct) {
        ("count", false) => Box::<Count>::default(),
        ("count", true) if args.len() == 1 => {
            Box::new(super::distinct::CountDistinct::try_new(&args[0], retracts)?)
        }
        ("sum", false) => match out {
            DataType::Int64 => Box::new(Sum::<Int64Type>::new(out.clone())),
            DataType::UInt64 => Box::new(Sum::<UInt64Type>::new(out.clone())),
            DataType::Float64 => Box::new(Sum::<Float64Type>::new(out.clone())),
            DataType::Decimal128(..) => Box::new(Sum::<Decimal128Type>::new(out.clone())),
            _ => return Ok(None),
        },
        ("avg", false) if out == &DataType::Float64 => Box::new(Avg(Sum::new(DataType::Float64))),
        ("min" | "max", false) if args.len() == 1 => Box::new(super::minmax::MinMax::try_new(
            &args[0],
            name == "max",
            retracts,
        )?),
        _ => return Ok(None),
    };
    Ok(Some(acc))
}
