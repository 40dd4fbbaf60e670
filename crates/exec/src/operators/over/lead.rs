//! `LEAD(x, n)`: a row's value `n` rows later in its partition. A row the
//! watermark passed is held in its partition's `pending` queue, with its
//! other values already computed, until `n` later rows the watermark
//! passed are behind it (for the largest `n` of the query's LEADs); at the
//! end of the input the rest are released, missing rows giving the
//! default. Rows stay in event-time order and the output stays
//! append-only; state is at most `n` rows per partition.

use std::ops::Range;

use datafusion::common::{HashMap, ScalarValue};
use sluice_common::Result;

use super::{OverAggregate, OverFunction, Partition};
use crate::operators::stored::Pick;

/// Released rows and each function's values for them.
type Released = (Vec<Pick>, Vec<Vec<ScalarValue>>);

impl OverAggregate {
    /// Whether the query has a LEAD.
    pub(super) fn leads(&self) -> bool {
        self.cfg
            .functions
            .iter()
            .any(|f| matches!(f, OverFunction::Lead { .. }))
    }

    /// The rows `n` later rows are needed for.
    fn reach(&self) -> usize {
        self.cfg
            .functions
            .iter()
            .filter_map(|f| match f {
                OverFunction::Lead { offset, .. } => Some(*offset),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Queue the rows of `runs` (`picks` with `values`, by function) in
    /// their partitions, then release every row whose LEADs are known (all
    /// rows at the `end`).
    pub(super) fn release(
        &mut self,
        parts: &mut HashMap<Box<[u8]>, Partition>,
        runs: &[(Box<[u8]>, Range<usize>)],
        picks: &[Pick],
        values: Vec<Vec<ScalarValue>>,
        end: bool,
    ) -> Result<Released> {
        let mut columns: Vec<std::vec::IntoIter<ScalarValue>> =
            values.into_iter().map(Vec::into_iter).collect();
        let mut queued = 0;
        for (key, range) in runs {
            let Some(part) = parts.get_mut(key) else {
                continue;
            };
            for &pick in &picks[range.clone()] {
                let row: Vec<ScalarValue> = columns.iter_mut().flat_map(|c| c.next()).collect();
                part.pending.push_back((pick, row));
                queued += 1;
            }
        }
        self.pending += queued;
        let reach = self.reach();
        let mut out_picks = Vec::new();
        let mut out: Vec<Vec<ScalarValue>> = vec![Vec::new(); self.cfg.functions.len()];
        for part in parts.values_mut() {
            while part.pending.len() > reach || (end && !part.pending.is_empty()) {
                let Some((pick, mut row)) = part.pending.pop_front() else {
                    break;
                };
                for (i, (f, v)) in self.cfg.functions.iter().zip(row.iter_mut()).enumerate() {
                    if let OverFunction::Lead {
                        offset, default, ..
                    } = f
                    {
                        // The row `offset` after this one is now at
                        // `offset - 1`; a LEAD's slot holds the row's own
                        // value, so offset 0 keeps it.
                        if *offset > 0 {
                            *v = part
                                .pending
                                .get(offset - 1)
                                .map_or_else(|| default.clone(), |(_, r)| r[i].clone());
                        }
                    }
                }
                for (col, v) in out.iter_mut().zip(row) {
                    col.push(v);
                }
                out_picks.push(pick);
            }
        }
        self.pending -= out_picks.len();
        Ok((out_picks, out))
    }
}
