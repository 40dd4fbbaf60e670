//! Planning runs on a thread of its own with a large stack: parsing,
//! DataFusion's planner and optimizer, and Sluice's passes recurse over the
//! statement's tree, and a deep (but allowed, see `sluice_sql::nesting`)
//! expression must not overflow the caller's stack. A panic while planning
//! becomes an internal error instead of taking the process down.

use std::future::Future;

use sluice_common::{Error, Result};

/// Stack of the planning thread. Only the pages used are committed.
const PLANNER_STACK: usize = 256 << 20;

/// Run `f` on a planning thread and wait for it. The caller's thread waits
/// too (planning is CPU work of milliseconds; it needs nothing from the
/// caller's runtime).
pub(crate) fn on_planner_thread<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .name("sluice-planner".into())
            .stack_size(PLANNER_STACK)
            .spawn_scoped(s, f)
            .map_err(|e| Error::internal(format!("cannot start the planner thread: {e}")))?;
        worker.join().unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::internal(format!("the planner panicked: {what}")))
        })
    })
}

/// Run an async planning step (DataFusion's SQL planner is async, though it
/// waits on nothing here) to completion on a planning thread.
pub(crate) fn plan_async<T: Send>(f: impl Future<Output = Result<T>> + Send) -> Result<T> {
    on_planner_thread(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| Error::internal(format!("cannot start the planner runtime: {e}")))?;
        rt.block_on(f)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_an_error() {
        let e = on_planner_thread::<()>(|| panic!("boom")).expect_err("panicked");
        assert_eq!(
            e.to_string(),
            "internal error (bug): the planner panicked: boom"
        );
    }

    #[test]
    fn deep_recursion_fits() {
        fn depth(n: u64) -> u64 {
            // A frame of some size, kept by the optimizer.
            let pad = std::hint::black_box([n; 64]);
            if pad[0] == 0 {
                0
            } else {
                1 + depth(n - 1)
            }
        }
        assert_eq!(
            on_planner_thread(|| Ok(depth(200_000))).expect("fits"),
            200_000
        );
    }
}
