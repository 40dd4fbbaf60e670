//! Runs every `.slt` file under `sql-tests/` (harness = false).
//!
//! `cargo test -p sluice-slt --test slt -- [FILTER]` runs the files whose
//! path contains FILTER; `-- --complete [FILTER]` rewrites their expected
//! results (and error messages) from what Sluice produces now, for review
//! with `git diff`. Paths inside the files are relative to the repository
//! root.

use std::path::Path;
use std::process::ExitCode;

use sluice_slt::{kafka, postgres, SluiceDb};

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if let Err(e) = std::env::set_current_dir(&root) {
        eprintln!("cannot enter {}: {e}", root.display());
        return ExitCode::FAILURE;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let complete = args.iter().any(|a| a == "--complete");
    let filters: Vec<String> = args.into_iter().filter(|a| !a.starts_with('-')).collect();
    let mut files = sluice_slt::slt_files(Path::new("sql-tests"));
    files.retain(|f| {
        filters.is_empty()
            || filters
                .iter()
                .any(|p| f.to_string_lossy().contains(p.as_str()))
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (mut passed, mut failed) = (0, 0);
    let broker = kafka::bootstrap();
    let pg = postgres::url();
    let run_id = kafka::unique_name("slt");
    for file in &files {
        let needs = |dir: &str| file.components().any(|c| c.as_os_str() == dir);
        let missing = if needs("kafka") && broker.is_none() {
            Some((kafka::required(), "Kafka broker", "SLUICE_KAFKA_BOOTSTRAP"))
        } else if needs("postgres") && pg.is_none() {
            Some((postgres::required(), "PostgreSQL server", "SLUICE_PG_URL"))
        } else {
            None
        };
        if let Some((required, what, var)) = missing {
            if required {
                failed += 1;
                println!("FAILED  {}\nno {what} ({var} is not set)", file.display());
            } else {
                println!(
                    "skipped {} (no {what}; ./scripts/test.sh starts one)",
                    file.display()
                );
            }
            continue;
        }
        let result = runtime.block_on(async {
            let mut runner = sqllogictest::Runner::new(|| async { Ok(SluiceDb::default()) });
            if let Some(b) = &broker {
                runner.set_var("KAFKA".to_string(), b.clone());
            }
            for (k, v) in pg.as_deref().map(postgres::vars).unwrap_or_default() {
                runner.set_var(k.to_string(), v);
            }
            runner.set_var("RUN".to_string(), run_id.clone());
            // The same, usable in an unquoted SQL identifier.
            runner.set_var("IDENT".to_string(), run_id.replace('-', "_"));
            if complete {
                runner
                    .update_test_file(
                        file,
                        " ",
                        sqllogictest::default_validator,
                        sqllogictest::default_normalizer,
                        sqllogictest::default_column_validator,
                    )
                    .await
                    .map_err(|e| e.to_string())
            } else {
                runner
                    .run_file_async(file)
                    .await
                    .map_err(|e| e.display(true).to_string())
            }
        });
        match result {
            Ok(()) if complete => {
                passed += 1;
                println!("updated {}", file.display());
            }
            Ok(()) => {
                passed += 1;
                println!("ok      {}", file.display());
            }
            Err(e) => {
                failed += 1;
                println!("FAILED  {}\n{e}", file.display());
            }
        }
    }
    println!("\nslt: {passed} passed, {failed} failed");
    if failed == 0 && passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
