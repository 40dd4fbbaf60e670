//! Tables declared with `CREATE TABLE`: schema, event time and connector
//! options, registered in DataFusion's catalog as a [`StreamTable`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::DFSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{Expr, ExprSchemable};
use datafusion::optimizer::analyzer::type_coercion::TypeCoercionRewriter;
use datafusion::physical_plan::ExecutionPlan;
use sluice_common::{Error, Result};

use crate::parser::CreateTableDef;
use crate::types::sql_type_to_arrow;

/// Event time of a table: `WATERMARK FOR column AS expr`.
#[derive(Debug, Clone)]
pub struct WatermarkSpec {
    /// Index of the event-time column in the table schema.
    pub column: usize,
    /// The watermark expression over the table's columns.
    pub expr: Expr,
    /// The expression as written, for DESCRIBE.
    pub text: String,
}

/// A table backed by a connector.
#[derive(Debug)]
pub struct StreamTable {
    /// Table name.
    pub name: String,
    /// Columns, computed ones included (what queries see).
    pub schema: SchemaRef,
    /// The columns a connector reads and writes: all but computed ones.
    pub physical: SchemaRef,
    /// Per column: its expression over the physical columns, for a
    /// computed column.
    pub computed: Vec<Option<Expr>>,
    /// Event-time column and watermark, if declared.
    pub watermark: Option<WatermarkSpec>,
    /// Connector options, keys lower-cased (includes `connector`).
    pub options: BTreeMap<String, String>,
    /// Primary key columns (informational, `NOT ENFORCED`).
    pub primary_key: Vec<String>,
    /// The definition as parsed (for `SHOW CREATE TABLE`).
    pub definition: CreateTableDef,
}

impl StreamTable {
    /// Build a table from its definition; checks the watermark declaration.
    pub fn try_new(def: &CreateTableDef, state: &SessionState) -> Result<Self> {
        let mut physical = Vec::with_capacity(def.columns.len());
        for (i, c) in def.columns.iter().enumerate() {
            if def.columns[..i].iter().any(|d| d.name == c.name) {
                return Err(Error::plan(format!(
                    "column '{}' is declared twice",
                    c.name
                )));
            }
            if c.computed.is_some() {
                continue;
            }
            let dt = sql_type_to_arrow(&c.data_type).map_err(|e| {
                Error::plan(format!("column '{}': {}", c.name, e.message())).near(&c.name)
            })?;
            physical.push(Field::new(&c.name, dt, !c.not_null));
        }
        let physical = Arc::new(Schema::new(physical));
        let (schema, computed) = computed_columns(def, &physical, state)?;
        let mut options = BTreeMap::new();
        for (k, v) in &def.options {
            if options.insert(k.clone(), v.clone()).is_some() {
                return Err(Error::plan(format!("option '{k}' is given twice")));
            }
        }
        let connector = options
            .entry("connector".to_string())
            .or_insert_with(|| "memory".to_string());
        *connector = connector.to_ascii_lowercase();
        let watermark = match &def.watermark {
            None => None,
            Some(wm) => Some(watermark_spec(
                &def.name,
                &schema,
                &wm.column,
                &wm.expr.to_string(),
                state,
            )?),
        };
        for k in &def.primary_key {
            if physical.index_of(k).is_err() {
                let what = if schema.index_of(k).is_ok() {
                    "is a computed column"
                } else {
                    "is not a column"
                };
                return Err(Error::plan(format!(
                    "PRIMARY KEY column '{k}' {what} of {}",
                    def.name
                )));
            }
        }
        Ok(StreamTable {
            name: def.name.clone(),
            schema,
            physical,
            computed,
            watermark,
            options,
            primary_key: def.primary_key.clone(),
            definition: def.clone(),
        })
    }

    /// Metadata columns: (index among the physical columns, metadata key,
    /// virtual).
    pub fn metadata_columns(&self) -> Vec<(usize, String, bool)> {
        self.definition
            .columns
            .iter()
            .filter(|c| c.computed.is_none())
            .enumerate()
            .filter_map(|(i, c)| {
                c.metadata
                    .as_ref()
                    .map(|m| (i, m.key.to_ascii_lowercase(), m.is_virtual))
            })
            .collect()
    }

    /// Whether the table has computed columns.
    pub fn has_computed(&self) -> bool {
        self.computed.iter().any(Option::is_some)
    }

    /// Index among the physical columns of column `i` (`None`: computed).
    pub fn physical_index(&self, i: usize) -> Option<usize> {
        if self.computed.get(i)?.is_some() {
            return None;
        }
        Some(self.computed[..i].iter().filter(|c| c.is_none()).count())
    }

    /// Index among all columns of physical column `i`.
    pub fn column_of_physical(&self, i: usize) -> Option<usize> {
        let mut seen = 0;
        for (c, computed) in self.computed.iter().enumerate() {
            if computed.is_none() {
                if seen == i {
                    return Some(c);
                }
                seen += 1;
            }
        }
        None
    }

    /// The connector name (`memory` when none was given).
    pub fn connector(&self) -> &str {
        self.options
            .get("connector")
            .map(String::as_str)
            .unwrap_or("memory")
    }
}

/// All columns in order (computed ones typed by their expression over the
/// physical columns), and each computed column's expression.
fn computed_columns(
    def: &CreateTableDef,
    physical: &SchemaRef,
    state: &SessionState,
) -> Result<(SchemaRef, Vec<Option<Expr>>)> {
    let df_schema = DFSchema::try_from(physical.as_ref().clone())?;
    let mut fields = Vec::with_capacity(def.columns.len());
    let mut exprs = Vec::with_capacity(def.columns.len());
    for c in &def.columns {
        let Some(e) = &c.computed else {
            let i = physical.index_of(&c.name)?;
            fields.push(physical.field(i).clone());
            exprs.push(None);
            continue;
        };
        let text = e.to_string();
        let expr = state
            .create_logical_expr(&text, &df_schema)
            .map_err(|err| {
                let err = Error::from(err);
                Error::plan(format!(
                "computed column '{}' AS {text}: {} (a computed column reads the table's other, \
                 non-computed columns)",
                c.name,
                err.message()
            ))
                .near(&c.name)
            })?;
        // Coerced as a query's expressions are (DOUBLE * INT, ...).
        let mut coerce = TypeCoercionRewriter::new(&df_schema);
        let expr = expr.rewrite(&mut coerce)?.data;
        let ty = expr.get_type(&df_schema)?;
        fields.push(Field::new(&c.name, ty, true));
        exprs.push(Some(expr));
    }
    Ok((Arc::new(Schema::new(fields)), exprs))
}

fn watermark_spec(
    table: &str,
    schema: &SchemaRef,
    column: &str,
    text: &str,
    state: &SessionState,
) -> Result<WatermarkSpec> {
    let idx = schema.index_of(column).map_err(|_| {
        Error::plan(format!(
            "WATERMARK FOR {column}: '{column}' is not a column of {table}"
        ))
        .near(format!("WATERMARK FOR {column}"))
    })?;
    if !matches!(schema.field(idx).data_type(), DataType::Timestamp(_, _)) {
        return Err(Error::plan(format!(
            "WATERMARK FOR {column}: the event-time column must be a TIMESTAMP, not {}",
            crate::types::sql_type_name(schema.field(idx).data_type())
        ))
        .near(format!("WATERMARK FOR {column}")));
    }
    let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
    let expr = state.create_logical_expr(text, &df_schema).map_err(|e| {
        let e = Error::from(e);
        Error::plan(format!("WATERMARK FOR {column} AS {text}: {}", e.message()))
            .near(format!("WATERMARK FOR {column}"))
    })?;
    let ty = expr.get_type(&df_schema)?;
    if !matches!(ty, DataType::Timestamp(_, _)) {
        return Err(Error::plan(format!(
            "WATERMARK FOR {column} AS {text}: the expression must give a TIMESTAMP, not {}",
            crate::types::sql_type_name(&ty)
        ))
        .near(format!("WATERMARK FOR {column}")));
    }
    Ok(WatermarkSpec {
        column: idx,
        expr,
        text: text.to_string(),
    })
}

impl fmt::Display for StreamTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.connector())
    }
}

#[async_trait]
impl TableProvider for StreamTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        Err(DataFusionError::Plan(format!(
            "table {} is a stream; it is read by the streaming runtime, not by a batch scan",
            self.name
        )))
    }
}
