//! The environment knobs and arguments every benchmark binary here reads the same way.

/// `NETREACH_BENCH_QUICK` set to anything but `0`.
pub fn quick() -> bool {
    std::env::var("NETREACH_BENCH_QUICK").is_ok_and(|v| v != "0")
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
