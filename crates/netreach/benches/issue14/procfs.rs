//! What `/proc` tells of a process: its threads' voluntary context switches (one each time a
//! thread goes to sleep, so the count of its wake-ups), its resident memory and its peak.

use std::path::PathBuf;

/// A field of a `status` file, its first word parsed.
fn field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn tasks(pid: u32) -> Vec<PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The voluntary context switches of every thread of `pid`, summed, and how many threads.
pub fn wakeups(pid: u32) -> (u64, usize) {
    let tasks = tasks(pid);
    let sum = tasks
        .iter()
        .filter_map(|t| std::fs::read_to_string(t.join("status")).ok())
        .filter_map(|s| field(&s, "voluntary_ctxt_switches"))
        .sum();
    (sum, tasks.len())
}

/// Whether every thread of `pid` sleeps (state `S`): it has finished what it was doing.
pub fn asleep(pid: u32) -> bool {
    tasks(pid).iter().all(|t| {
        std::fs::read_to_string(t.join("status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("State:"))
                    .map(|v| v.trim_start().starts_with('S'))
            })
            .unwrap_or(true)
    })
}

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
pub fn memory(pid: u32) -> (Option<u64>, Option<u64>) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    (field(&s, "VmRSS"), field(&s, "VmHWM"))
}
