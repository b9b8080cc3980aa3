//! Idle stays idle: processes watching a quiet namespace for a window of N seconds, their
//! wake-ups counted from `/proc/PID/task/*/status` (`voluntary_ctxt_switches`, summed over
//! every thread: a thread that wakes and goes back to sleep adds one), and their resident
//! memory (`VmRSS`) and peak (`VmHWM`) at the end of the window, and `VmRSS` again after one
//! change, and once more [`SETTLE_SECS`] later (`watch` gives back the code a change brought
//! in once the stream has been quiet for 5 s).
//!
//! Watched side by side, in one namespace, at the same time (idle processes do not compete):
//! - `netreach --netns NS watch --json`, the release binary, as an operator runs it, and again
//!   with `--probe` (its HTTP probe answered, so the schedule's next probe is due in 5 min);
//! - this benchmark's own binary run again as a child ([`child`]): a library [`Monitor`] with
//!   a [`StatusMonitor`] and a [`ConnectionMonitor`] (10 targets) attached, and a reader
//!   blocked on each of its three subscriptions, as an application would have them; probing
//!   off, and again with the probe schedule attached (`StatusMonitor::with_probe`, answered);
//! - `ip monitor all`, the peer: a process that only waits for the kernel.
//!
//! The namespace is quiet (IPv6 without link-local addresses or DAD): a veth `va`
//! (198.18.0.1/24) to a server namespace holding the gateway 198.18.0.2, the default route's
//! next hop, where a small HTTP server answers every probe `204 No Content`. The window starts
//! once each probing process has its first verdict and every thread of every process sleeps.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netreach::core::connectivity::ConnectivityConfig;
use netreach::probe::ProbeEndpoint;
use netreach::{ConnectionMonitor, Monitor, Netns, ProbeConfig, StatusMonitor};

use crate::common::Ns;
use crate::common::lab::sysctl;
use crate::nl::Rtnl;
use crate::observers::IFACE;
use crate::stats::{Table, kib};
use crate::{Config, procfs};

/// The environment variable that makes this binary the library child, naming the namespace.
pub const CHILD_NS: &str = "NETREACH_BENCH_IDLE_NS";
/// With it, the child probes this URL.
const CHILD_PROBE: &str = "NETREACH_BENCH_IDLE_PROBE";
const TARGETS: u8 = 10;
/// The probe endpoint, in the server namespace.
const ENDPOINT: &str = "http://198.18.0.2/generate_204";
const NO_CONTENT: &[u8] = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
/// The server answers at most this many probes, then ends (a probe every 5 min once full).
const MAX_PROBES: usize = 100;
/// How long after the change the memory is read again: `watch`'s quiet spell (5 s) and a second.
const SETTLE_SECS: u64 = 6;

/// One watched process and a thread counting the lines it prints.
struct Subject {
    name: &'static str,
    child: Child,
    lines: Arc<AtomicUsize>,
    reader: Option<JoinHandle<()>>,
}

impl Subject {
    /// Starts `cmd` and waits for its first `ready` lines, the last of which must contain
    /// `last` (the probe's verdict).
    fn start(name: &'static str, mut cmd: Command, ready: usize, last: &str) -> Subject {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        for _ in 0..ready {
            line.clear();
            out.read_line(&mut line).expect("first line");
            assert!(!line.is_empty(), "{name} exited before it was ready");
        }
        assert!(line.contains(last), "{name}: {line:?} without {last:?}");
        let lines = Arc::new(AtomicUsize::new(0));
        let reader = Some(count_lines(out, lines.clone()));
        Subject {
            name,
            child,
            lines,
            reader,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

fn count_lines(out: BufReader<ChildStdout>, lines: Arc<AtomicUsize>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for _ in out.lines().map_while(Result::ok) {
            lines.fetch_add(1, Ordering::Relaxed);
        }
    })
}

/// The library child: every part attached, a reader blocked on each subscription; prints
/// `ready`, then waits for its standard input to close.
pub fn child(ns: &str) {
    let monitor = Monitor::in_netns(Netns::named(ns).expect("name")).expect("monitor");
    let status = match std::env::var(CHILD_PROBE) {
        Ok(url) => {
            let endpoint = ProbeEndpoint::no_content(url.parse().expect("probe URL"));
            let probe = ProbeConfig::new(endpoint).timeout(Duration::from_secs(2));
            let status = StatusMonitor::with_probe(&monitor, ConnectivityConfig::default(), probe);
            status
                .wait_verified(Some(Duration::from_secs(20)))
                .expect("the probe verifies full access");
            status
        }
        Err(_) => StatusMonitor::new(&monitor, ConnectivityConfig::default()),
    };
    let conns = ConnectionMonitor::new(&monitor);
    let watches: Vec<_> = (1..=TARGETS)
        .map(|n| {
            let remote = IpAddr::V4(Ipv4Addr::new(198, 19, 200, n));
            conns
                .watch_pair(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)), remote, None)
                .expect("target")
        })
        .collect();
    for w in &watches {
        assert!(
            w.wait_first(Duration::from_secs(10)).is_some(),
            "a first report"
        );
    }
    let mut stream = monitor.stream();
    let mut statuses = status.subscribe();
    let mut reaches = conns.subscribe();
    let readers = [
        std::thread::spawn(move || while stream.recv().is_some() {}),
        std::thread::spawn(move || while statuses.recv().is_some() {}),
        std::thread::spawn(move || while reaches.recv().is_some() {}),
    ];
    println!("ready");
    std::io::stdout().flush().expect("flush");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(watches);
    drop(conns);
    drop(status);
    drop(monitor);
    for r in readers {
        let _ = r.join();
    }
}

/// The quiet namespace and its server namespace (see the module's doc).
fn lab() -> (Ns, Ns) {
    let ns = Ns::new("idle");
    let srv = Ns::new("idlesrv");
    for n in [&ns, &srv] {
        for scope in ["all", "default"] {
            sysctl(n, &format!("net.ipv6.conf.{scope}.addr_gen_mode=1"));
            sysctl(n, &format!("net.ipv6.conf.{scope}.accept_dad=0"));
        }
    }
    ns.veth_to(IFACE, &srv, "vs");
    srv.ip("link set vs up");
    srv.ip("addr add 198.18.0.2/24 dev vs");
    ns.ip(&format!("link set {IFACE} up"));
    ns.ip(&format!("addr add 198.18.0.1/24 dev {IFACE}"));
    ns.ip(&format!("route add default via 198.18.0.2 dev {IFACE}"));
    (ns, srv)
}

/// The probe endpoint in `srv`: answers up to [`MAX_PROBES`] connections `204`, then ends.
fn serve(srv: &Ns) -> JoinHandle<()> {
    let listener = srv.run(|| TcpListener::bind("198.18.0.2:80").expect("bind the endpoint"));
    std::thread::spawn(move || {
        for conn in listener.incoming().take(MAX_PROBES) {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut request = [0u8; 2048];
            let _ = conn.read(&mut request);
            let _ = conn.write_all(NO_CONTENT);
        }
    })
}

/// The scenario; prints its table.
pub fn run(cfg: &Config) {
    let (ns, srv) = lab();
    let _server = serve(&srv);
    let mut watch = Command::new(crate::netreach_bin());
    watch.args(["--netns", &ns.name, "watch", "--json"]);
    let mut watch_probe = Command::new(crate::netreach_bin());
    watch_probe.args([
        "--netns", &ns.name, "watch", "--json", "--probe", "--url", ENDPOINT,
    ]);
    let exe = std::env::current_exe().expect("own executable");
    let mut lib = Command::new(&exe);
    lib.env(CHILD_NS, &ns.name);
    let mut lib_probe = Command::new(&exe);
    lib_probe.env(CHILD_NS, &ns.name).env(CHILD_PROBE, ENDPOINT);
    let mut ip = Command::new("ip");
    ip.args(["-n", &ns.name, "monitor", "all"]);
    let subjects = [
        Subject::start("netreach watch --json (release binary)", watch, 1, ""),
        // `ready`, then the probe's verdict.
        Subject::start("netreach watch --json --probe", watch_probe, 2, "\"full\""),
        Subject::start(
            "library: Monitor + StatusMonitor + ConnectionMonitor",
            lib,
            1,
            "",
        ),
        Subject::start(
            "library: the same, StatusMonitor::with_probe",
            lib_probe,
            1,
            "",
        ),
        Subject::start("ip monitor all", ip, 0, ""),
    ];
    // Let start-up finish: every thread of every process asleep, for a second on end.
    let end = Instant::now() + Duration::from_secs(20);
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(1) {
        assert!(Instant::now() < end, "the processes never went to sleep");
        if !subjects.iter().all(|s| procfs::asleep(s.pid())) {
            quiet_since = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let before: Vec<(u64, usize)> = subjects.iter().map(|s| procfs::wakeups(s.pid())).collect();
    let lines: Vec<usize> = subjects
        .iter()
        .map(|s| s.lines.load(Ordering::Relaxed))
        .collect();
    eprintln!("idle: watching for {} s", cfg.idle_secs);
    // The window itself is the measurement.
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(cfg.idle_secs));
    let secs = t0.elapsed().as_secs_f64();
    let after: Vec<(u64, usize)> = subjects.iter().map(|s| procfs::wakeups(s.pid())).collect();
    let lines_after: Vec<usize> = subjects
        .iter()
        .map(|s| s.lines.load(Ordering::Relaxed))
        .collect();
    let memory: Vec<_> = subjects.iter().map(|s| procfs::memory(s.pid())).collect();
    // The counting works: one change wakes every process. An address added to `va`, awaited
    // as `watch`'s line, then every thread asleep again.
    let mut rtnl = Rtnl::open_in(&ns.name);
    let index = ns.ip_json(&format!("link show dev {IFACE}"))[0]["ifindex"]
        .as_u64()
        .expect("ifindex") as u32;
    rtnl.add_address(index, IpAddr::V4(Ipv4Addr::new(198, 18, 0, 77)), 32);
    let end = Instant::now() + Duration::from_secs(5);
    while subjects[0].lines.load(Ordering::Relaxed) == lines_after[0] && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(100));
    while !subjects.iter().all(|s| procfs::asleep(s.pid())) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
    }
    let changed: Vec<u64> = subjects
        .iter()
        .map(|s| procfs::wakeups(s.pid()).0)
        .collect();
    // What handling one change brings back into memory (netreach gives back the pages only
    // its start-up used, once it has started: the code a change runs comes back).
    let memory_changed: Vec<_> = subjects.iter().map(|s| procfs::memory(s.pid())).collect();
    // `watch` gives those pages back once the stream has been quiet for 5 s: one wake-up.
    std::thread::sleep(Duration::from_secs(SETTLE_SECS));
    let settled: Vec<u64> = subjects
        .iter()
        .map(|s| procfs::wakeups(s.pid()).0)
        .collect();
    let memory_settled: Vec<_> = subjects.iter().map(|s| procfs::memory(s.pid())).collect();
    let mut t = Table::new(&[
        "process",
        "threads",
        "wake-ups in the window",
        "per minute",
        "lines printed",
        "wake-ups for one address added",
        "VmRSS",
        "VmHWM",
        "VmRSS after the change",
        "wake-ups in the next 6 s",
        "VmRSS 6 s later",
    ]);
    for (i, s) in subjects.iter().enumerate() {
        let ((w0, threads), (w1, _)) = (before[i], after[i]);
        let (rss, hwm) = memory[i];
        let woke = w1.saturating_sub(w0);
        t.row(vec![
            s.name.into(),
            threads.to_string(),
            woke.to_string(),
            format!("{:.1}", woke as f64 * 60.0 / secs),
            (lines_after[i] - lines[i]).to_string(),
            changed[i].saturating_sub(w1).to_string(),
            kib(rss),
            kib(hwm),
            kib(memory_changed[i].0),
            settled[i].saturating_sub(changed[i]).to_string(),
            kib(memory_settled[i].0),
        ]);
    }
    println!(
        "## Idle: a quiet namespace watched for {secs:.0} s\n\n{}",
        t.render()
    );
}
