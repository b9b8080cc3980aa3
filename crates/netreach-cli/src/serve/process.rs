//! The usual process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! ...), with the names and meanings of Prometheus's own client libraries, read from
//! `/proc/self` at each scrape. `prometheus-client` has no process collector of its own.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::metrics::{counter_f64, gauge};

/// Reads `/proc/self` at each scrape.
#[derive(Debug)]
pub struct Process;

/// What `/proc/self/stat` says, in the units of the metrics.
#[derive(Debug, Default, PartialEq)]
struct Stat {
    cpu_seconds: f64,
    threads: i64,
    start_ticks: u64,
    virtual_bytes: i64,
    resident_pages: i64,
}

/// Parses `/proc/self/stat`: the fields after the command name (in parentheses, which may
/// itself hold spaces and parentheses) are counted from the last `)`.
fn parse_stat(text: &str, ticks_per_second: u64) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let ticks = ticks_per_second.max(1) as f64;
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
        threads: i64::try_from(field(20)?).ok()?,
        start_ticks: field(22)?,
        virtual_bytes: i64::try_from(field(23)?).ok()?,
        resident_pages: i64::try_from(field(24)?).ok()?,
    })
}

/// The boot time, from `btime` in `/proc/stat`.
fn boot_time() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

impl Collector for Process {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let ticks = rustix::param::clock_ticks_per_second();
        let Some(stat) = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|t| parse_stat(&t, ticks))
        else {
            return Ok(());
        };
        let page = i64::try_from(rustix::param::page_size()).unwrap_or(4096);
        counter_f64(
            &mut enc,
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            stat.cpu_seconds,
        )?;
        gauge(
            &mut enc,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            stat.resident_pages.saturating_mul(page),
        )?;
        gauge(
            &mut enc,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            stat.virtual_bytes,
        )?;
        gauge(
            &mut enc,
            "process_threads",
            "Number of OS threads in the process",
            stat.threads,
        )?;
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            // The directory's own descriptor, open while it is read, is not counted.
            let open = dir.count().saturating_sub(1);
            gauge(
                &mut enc,
                "process_open_fds",
                "Number of open file descriptors",
                i64::try_from(open).unwrap_or(i64::MAX),
            )?;
        }
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        if let Some(max) = limit.current {
            gauge(
                &mut enc,
                "process_max_fds",
                "Maximum number of open file descriptors",
                i64::try_from(max).unwrap_or(i64::MAX),
            )?;
        }
        if let Some(boot) = boot_time() {
            let start = boot as f64 + stat.start_ticks as f64 / ticks.max(1) as f64;
            super::metrics::gauge_f64(
                &mut enc,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                start,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_an_odd_name() {
        let text = "4242 (net (re) ach) S 1 4242 4242 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 \
                    7 0 123456 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 \
                    1 0 0 0 0 0";
        let s = parse_stat(text, 100).unwrap();
        assert_eq!(s.cpu_seconds, 2.0);
        assert_eq!(s.threads, 7);
        assert_eq!(s.start_ticks, 123_456);
        assert_eq!(s.virtual_bytes, 104_857_600);
        assert_eq!(s.resident_pages, 2560);
        assert_eq!(parse_stat("garbage", 100), None);
    }
}
