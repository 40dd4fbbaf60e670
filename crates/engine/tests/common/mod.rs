//! What the randomized agreement tests share: a repeatable generator, and
//! running statements then a query streaming (folded to a table) and in
//! DataFusion batch, each result's rows sorted.

use datafusion::prelude::SessionContext;
use sluice_engine::{format, QuerySummary, Session, StatementResult};

/// A small deterministic generator (64-bit LCG), so runs are repeatable.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// `ddl`, then `statements`, then `query` streaming at `parallelism`: the
/// result folded to a table, and the query's summary.
pub async fn streaming(
    ddl: &[&str],
    statements: &[String],
    query: &str,
    parallelism: usize,
) -> (Vec<Vec<String>>, QuerySummary) {
    let session = Session::new();
    session
        .settings()
        .set("parallelism", &parallelism.to_string())
        .expect("valid setting");
    let ddl = ddl.iter().map(|s| s.to_string());
    for sql in ddl.chain(statements.iter().cloned()) {
        for stmt in session.parse(&sql, None).expect("parses") {
            if let StatementResult::Insert(h) = session.execute(&stmt).await.expect("runs") {
                h.wait().await.expect("insert runs");
            }
        }
    }
    let stmts = session.parse(query, None).expect("query parses");
    let result = session.execute(&stmts[0]).await;
    let Ok(StatementResult::Query(handle)) = result else {
        panic!("not a query: {query}: {:?}", result.err());
    };
    let (batches, summary) = handle
        .collect_table()
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    let mut rows = format::rows_as_strings(&batches).expect("formats");
    rows.sort();
    (rows, summary)
}

/// `ddl`, then `statements`, then `query` in DataFusion batch.
pub async fn batch(ddl: &[&str], statements: &[String], query: &str) -> Vec<Vec<String>> {
    let ctx = SessionContext::new();
    for sql in ddl
        .iter()
        .copied()
        .chain(statements.iter().map(String::as_str))
    {
        ctx.sql(sql)
            .await
            .expect("batch plans")
            .collect()
            .await
            .expect("batch runs");
    }
    let batches = ctx
        .sql(query)
        .await
        .unwrap_or_else(|e| panic!("batch plans {query}: {e}"))
        .collect()
        .await
        .expect("batch query runs");
    let mut rows = format::rows_as_strings(&batches).expect("formats");
    rows.sort();
    rows
}
