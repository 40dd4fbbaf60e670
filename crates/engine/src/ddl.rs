//! DDL on the session's catalog: CREATE TABLE (connector checks, paths
//! resolved against the script's folder), DROP, and the columns an INSERT
//! without a column list writes.

use std::sync::Arc;

use datafusion::datasource::ViewTable;
use datafusion::execution::context::SessionState;
use datafusion::sql::sqlparser::ast::{ObjectName, ObjectType};
use sluice_common::{Error, Result};
use sluice_sql::parser::CreateTableDef;
use sluice_sql::table::StreamTable;

use crate::session::{object_name, Session, StatementResult};
use crate::tables::{connector_context, memory_store, resolve_paths, ConnectorTable};

impl Session {
    pub(crate) fn create_table(
        &self,
        def: &CreateTableDef,
        state: &SessionState,
    ) -> Result<StatementResult> {
        if self.ctx.table_exist(def.name.as_str())? {
            if def.if_not_exists {
                return Ok(StatementResult::Done(format!(
                    "Table '{}' already exists",
                    def.name
                )));
            }
            return Err(Error::plan(format!(
                "a table or view named {} already exists",
                def.name
            )));
        }
        let def = resolve_paths(def, self.base_dir().as_deref());
        let table = StreamTable::try_new(&def, state)?;
        let ct = ConnectorTable::of(&table)?;
        ct.validate()?;
        crate::planner::late::late_table(state, &table)?;
        let note = ct
            .connector
            .create(&ct.desc(), &connector_context(state, false)?)?;
        self.ctx
            .register_table(def.name.as_str(), Arc::new(table))?;
        Ok(StatementResult::Done(match note {
            Some(note) => format!("Table '{}' created ({note})", def.name),
            None => format!("Table '{}' created", def.name),
        }))
    }

    pub(crate) async fn drop(
        &self,
        kind: ObjectType,
        if_exists: bool,
        names: &[ObjectName],
    ) -> Result<StatementResult> {
        let what = match kind {
            ObjectType::Table => "Table",
            ObjectType::View => "View",
            other => return Err(Error::plan(format!("DROP {other} is not supported"))),
        };
        for n in names {
            let name = object_name(n);
            if self.is_materialized_view(&name) {
                return Err(Error::plan(format!(
                    "{name} is a materialized view: DROP MATERIALIZED VIEW {name}"
                )));
            }
            let existing = self.ctx.table_provider(name.as_str()).await.ok();
            let matches = match &existing {
                Some(p) => (kind == ObjectType::View) == p.is::<ViewTable>(),
                None => false,
            };
            if existing.is_some() && !matches {
                return Err(Error::plan(format!(
                    "{name} is not a {}",
                    what.to_lowercase()
                )));
            }
            if existing.is_none() && !if_exists {
                return Err(Error::plan(format!(
                    "{} '{name}' does not exist",
                    what.to_lowercase()
                )));
            }
            self.ctx.deregister_table(name.as_str())?;
            if let Ok(store) = memory_store(&self.ctx.state()) {
                store.remove(name.as_str());
            }
        }
        Ok(StatementResult::Done(format!("{what} dropped")))
    }

    /// `INSERT INTO t SELECT ...` without a column list writes the columns a
    /// sink stores: virtual metadata columns (read-only, such as a Kafka
    /// offset) and computed columns are left out, as in Flink.
    pub(crate) async fn skip_virtual_columns(
        &self,
        insert: &mut datafusion::sql::sqlparser::ast::Insert,
    ) {
        use datafusion::sql::sqlparser::ast::{Ident, TableObject};
        let TableObject::TableName(name) = &insert.table else {
            return;
        };
        if !insert.columns.is_empty() {
            return;
        }
        let Ok(provider) = self.provider(&object_name(name)).await else {
            return;
        };
        let Some(table) = provider.downcast_ref::<StreamTable>() else {
            return;
        };
        let virtual_cols: Vec<usize> = table
            .metadata_columns()
            .into_iter()
            .filter(|(_, _, is_virtual)| *is_virtual)
            .map(|(i, _, _)| i)
            .collect();
        if virtual_cols.is_empty() && !table.has_computed() {
            return;
        }
        // Written: the physical columns that are not virtual metadata.
        insert.columns = table
            .physical
            .fields()
            .iter()
            .enumerate()
            .filter(|(i, _)| !virtual_cols.contains(i))
            .map(|(_, f)| ObjectName::from(vec![Ident::with_quote('"', f.name())]))
            .collect();
    }
}
