//! The fuzzer in CI: 3000 statements (half generated, half mutated from
//! sql-tests) with a fixed seed, plus `SLUICE_FUZZ_SEED` when it is set.
//! Fails listing every failure with its seed, statement and symptom.

use std::path::PathBuf;
use std::time::Duration;

use sluice_fuzz::{supervise, target_dir, RunConfig};

const SEED: u64 = 20_240_601;
const STATEMENTS: u64 = 3000;

#[test]
fn fuzz() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_sluice-fuzz"));
    let mut seeds = vec![SEED];
    if let Ok(s) = std::env::var("SLUICE_FUZZ_SEED") {
        seeds.push(s.trim().parse().expect("SLUICE_FUZZ_SEED must be a number"));
    }
    let mut listing = String::new();
    for seed in seeds {
        let cfg = RunConfig {
            seed,
            statements: STATEMENTS,
            start_at: 0,
            timeout: Duration::from_secs(5),
            current_file: None,
            skip_deep: false,
            sql: None,
            // A hang costs the whole timeout: after two of one shape, skip
            // that shape; after 20 dead workers, stop.
            skip_shape_after: 2,
            max_restarts: 20,
            verbose: false,
            target: target_dir(&exe),
            exe: exe.clone(),
            progress_every: 0,
        };
        let report = supervise(&cfg).expect("the fuzzer could not run its workers");
        println!("{}", report.summary());
        if !report.failures.is_empty() {
            listing += &report.failure_listing();
            listing += &format!("\n{}\n", report.summary());
        }
    }
    assert!(listing.is_empty(), "the fuzzer found failures:\n{listing}");
}
