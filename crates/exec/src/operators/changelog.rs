//! Moving between append-only streams and changelogs.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_common::changelog;
use sluice_common::{Fold, Result};

use crate::operator::{Operator, Output};
use crate::row::RowFunction;

/// Append-only rows as `+I` rows of a changelog (an input of a UNION ALL
/// whose other inputs update).
#[derive(Debug)]
pub struct AsInserts {
    schema: SchemaRef,
}

impl AsInserts {
    /// Over rows of `input` (data columns).
    pub fn new(input: &SchemaRef) -> Self {
        AsInserts {
            schema: changelog::with_op_field(input),
        }
    }
}

impl RowFunction for AsInserts {
    fn name(&self) -> &'static str {
        "AsInserts"
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        changelog::as_inserts(&batch, &self.schema)
    }
}

/// The final table of a bounded changelog: folds it (by `key`, or as a
/// multiset) and emits the rows, append-only, at the end of the input (what
/// ORDER BY and LIMIT over an updating result read).
pub struct FoldOperator {
    fold: Fold,
    schema: SchemaRef,
    key: Option<Vec<usize>>,
}

impl FoldOperator {
    /// Over changelog batches of `input`.
    pub fn try_new(input: &SchemaRef, key: Option<Vec<usize>>) -> Result<Self> {
        let schema = changelog::data_schema(input);
        Ok(FoldOperator {
            fold: Fold::try_new(Arc::clone(&schema), key.clone())?,
            schema,
            key,
        })
    }
}

impl Operator for FoldOperator {
    fn name(&self) -> &'static str {
        "Fold"
    }

    fn describe(&self) -> String {
        match &self.key {
            Some(k) => {
                let names: Vec<&str> = k
                    .iter()
                    .map(|&i| self.schema.field(i).name().as_str())
                    .collect();
                format!("Fold: by [{}]", names.join(", "))
            }
            None => "Fold: as a multiset".to_string(),
        }
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, _out: &mut Output) -> Result<()> {
        self.fold.apply(&batch)
    }

    fn on_end(&mut self, out: &mut Output) -> Result<()> {
        out.push(self.fold.table()?);
        Ok(())
    }
}
