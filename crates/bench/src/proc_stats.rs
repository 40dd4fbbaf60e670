//! This process's CPU time and peak memory, from `/proc/self` (Linux).

/// User plus system CPU seconds used so far (clock ticks of 1/100 s).
pub fn cpu_seconds() -> f64 {
    stat_seconds("/proc/self/stat", 11)
}

/// CPU seconds of this process's children that were waited for.
pub fn children_cpu_seconds() -> f64 {
    stat_seconds("/proc/self/stat", 13)
}

/// CPU seconds of process `pid` so far.
pub fn cpu_seconds_of(pid: u32) -> f64 {
    stat_seconds(&format!("/proc/{pid}/stat"), 11)
}

/// The sum of the user and system clock ticks at fields `at`, `at + 1`
/// (counted after the command name) of a `stat` file, in seconds.
fn stat_seconds(path: &str, at: usize) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): state is
    // field 3, utime 14 and stime 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(at) + ticks(at + 1)) as f64 / 100.0
}

/// Peak resident set size in MiB.
pub fn peak_rss_mib() -> f64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0.0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A child's one line for its parent: `events rows cpu_s wall_s rss_mib`,
/// CPU and wall time counted from `cpu` (`cpu_seconds()`) and `started`.
pub fn print_measured(events: u64, rows: u64, cpu: f64, started: std::time::Instant) {
    println!(
        "{events} {rows} {} {} {}",
        cpu_seconds() - cpu,
        started.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
}
