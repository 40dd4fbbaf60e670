//! `table.exec.emit.*`: a window aggregate's emit strategy.

use std::time::Duration;

use sluice_common::{Error, Result};
use sluice_exec::operators::window_aggregate::EmitStrategy;

use super::Settings;

impl Settings {
    fn enabled(&self, key: &str) -> bool {
        self.value(key) == Some("true")
    }

    /// The emit strategy window aggregates use (`None`: emit each window
    /// once, when it closes). Checked as Flink checks it.
    pub fn emit_strategy(&self) -> Result<Option<EmitStrategy>> {
        const EARLY: &str = "table.exec.emit.early-fire.enabled";
        const EARLY_DELAY: &str = "table.exec.emit.early-fire.delay";
        const LATENESS: &str = "table.exec.emit.allow-lateness";
        const LATE: &str = "table.exec.emit.late-fire.enabled";
        const LATE_DELAY: &str = "table.exec.emit.late-fire.delay";
        let early = if self.enabled(EARLY) {
            Some(self.duration(EARLY_DELAY).ok_or_else(|| {
                Error::plan(format!(
                    "'{EARLY}' is true but '{EARLY_DELAY}' is not set (e.g. SET \
                     '{EARLY_DELAY}' = '1 s'; 0 emits after every input batch)"
                ))
            })?)
        } else {
            None
        };
        let lateness = self.duration(LATENESS).unwrap_or_default();
        let late = if self.enabled(LATE) {
            let delay = self.duration(LATE_DELAY).ok_or_else(|| {
                Error::plan(format!(
                    "'{LATE}' is true but '{LATE_DELAY}' is not set (e.g. SET '{LATE_DELAY}' \
                     = '1 s')"
                ))
            })?;
            if lateness.is_zero() {
                return Err(Error::plan(format!(
                    "'{LATE}' is true but '{LATENESS}' is 0: no row is late within it (set \
                     e.g. '{LATENESS}' = '1 min')"
                )));
            }
            if lateness < delay {
                return Err(Error::plan(format!(
                    "'{LATENESS}' ({} ms) must not be smaller than '{LATE_DELAY}' ({} ms)",
                    lateness.as_millis(),
                    delay.as_millis()
                )));
            }
            delay
        } else {
            Duration::ZERO
        };
        if early.is_none() && lateness.is_zero() {
            return Ok(None);
        }
        Ok(Some(EmitStrategy {
            early,
            lateness: lateness.as_millis() as i64,
            late,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_are_checked_as_flink_checks_them() {
        let mut s = Settings::default();
        assert_eq!(s.emit_strategy().expect("default"), None);
        s.set("table.exec.emit.early-fire.enabled", "true")
            .expect("bool");
        let err = s.emit_strategy().expect_err("no delay");
        assert!(err.to_string().contains("early-fire.delay' is not set"));
        s.set("table.exec.emit.early-fire.delay", "1 s")
            .expect("duration");
        let e = s.emit_strategy().expect("valid").expect("on");
        assert_eq!(e.early, Some(Duration::from_secs(1)));
        assert_eq!(e.lateness, 0);
        s.set("table.exec.emit.allow-lateness", "1 s").expect("ms");
        s.set("table.exec.emit.late-fire.enabled", "true")
            .expect("bool");
        s.set("table.exec.emit.late-fire.delay", "5 s").expect("ms");
        let err = s.emit_strategy().expect_err("lateness < delay");
        assert!(err.to_string().contains("must not be smaller"));
        s.set("table.exec.emit.allow-lateness", "1 min")
            .expect("ms");
        let e = s.emit_strategy().expect("valid").expect("on");
        assert_eq!((e.lateness, e.late), (60_000, Duration::from_secs(5)));
        assert!(s.set("table.exec.emit.late-fire.enabled", "yes").is_err());
    }
}
