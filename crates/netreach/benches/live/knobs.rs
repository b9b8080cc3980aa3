//! The environment knobs and arguments every benchmark binary here reads the same way, and the
//! line that says what machine it ran on.

/// `NETREACH_BENCH_QUICK` set to anything but `0`.
pub fn quick() -> bool {
    std::env::var("NETREACH_BENCH_QUICK").is_ok_and(|v| v != "0")
}

/// `NETREACH_BENCH_TRACE=1`: one line per netreach latency sample with the monitor's counters.
pub fn trace() -> bool {
    std::env::var_os("NETREACH_BENCH_TRACE").is_some_and(|v| v == "1")
}

/// `NETREACH_BENCH_PIPE_WAKE=1`: netreach's reader waits on a pipe (the subscription polled as
/// a stream, its waker writing to the pipe) instead of `Subscription::recv`.
pub fn pipe_wake() -> bool {
    std::env::var_os("NETREACH_BENCH_PIPE_WAKE").is_some_and(|v| v == "1")
}

/// The number in variable `name`, or `default` when it is not set; a value that is no number
/// stops the benchmark with the variable named.
pub fn num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
        })
        .unwrap_or(default)
}

/// `NETREACH_BENCH_SIZES` (comma-separated interface counts); by default 10, 1,000 and
/// 10,000, or 10 and 1,000 when `quick`.
pub fn sizes(quick: bool) -> Vec<usize> {
    match std::env::var("NETREACH_BENCH_SIZES") {
        Ok(v) => v
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("NETREACH_BENCH_SIZES={v}"))
            })
            .collect(),
        Err(_) if quick => vec![10, 1000],
        Err(_) => vec![10, 1000, 10_000],
    }
}

/// The arguments that name parts to run (Cargo passes `--bench`, which is not one).
pub fn parts() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect()
}

/// Kernel, CPU and core count, for the record.
pub fn machine() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            Some(
                l.strip_prefix("model name")?
                    .split(':')
                    .nth(1)?
                    .trim()
                    .to_owned(),
            )
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("Linux {}, {cpu}, {cores} cores", kernel.trim())
}
