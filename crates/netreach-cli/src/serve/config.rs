//! The service's configuration: the flags, and the TOML file of `--config` under them.
//!
//! A flag given on the command line wins over the file (`--listen`, `--url`, ...); patterns
//! (`--ignore`, `--metered`) add up. A file that does not parse is one line naming the file,
//! the line and the column, and exit 2; on `SIGHUP` the same error keeps the old configuration
//! running. The keys and the limits are documented in docs/serve.md.

use std::path::Path;
use std::time::Duration;

use netreach::ProbeConfig;
use netreach::core::connectivity::{ConnectivityConfig, Pattern};
use serde::Deserialize;

use crate::Failure;
use crate::cli::{Listen, ProbeArgs, ServeArgs};

/// The default address: loopback only; anything else must be asked for.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9580";

/// Everything the service runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Vec<Listen>,
    pub rules: ConnectivityConfig,
    /// Patterns of interfaces that are ignored (they are also not shown).
    pub ignore: Vec<Pattern>,
    pub probe: Option<ProbeConfig>,
    pub limits: Limits,
}

/// The bounds of what one client can make the service hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request head (request line and headers) in bytes; more is answered 431.
    pub max_header_bytes: usize,
    /// Time a client has to send a request head, in milliseconds, counted from the
    /// connection's start or the end of the last response (so it bounds idle keep-alive
    /// connections too); then the connection is closed.
    pub header_timeout_ms: u64,
    /// Open connections at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// `/v1/events` streams at once; more are answered 503.
    pub max_sse_clients: usize,
    /// Events queued for one stream that does not read; past that it is dropped.
    pub sse_queue: usize,
    /// Events kept for clients that reconnect with `Last-Event-ID`.
    pub backlog: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_header_bytes: 16 * 1024,
            header_timeout_ms: 10_000,
            max_connections: 4096,
            max_sse_clients: 1024,
            sse_queue: 4096,
            backlog: 4096,
        }
    }
}

impl Limits {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms.max(1))
    }
}

/// The file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct File {
    listen: Vec<String>,
    ignore: Vec<String>,
    metered: Vec<String>,
    probe: ProbeFile,
    limits: Limits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ProbeFile {
    enabled: bool,
    url: Option<String>,
    expect_status: Option<u16>,
    expect_body: Option<String>,
    /// Seconds.
    timeout: Option<f64>,
    /// Seconds between two probes while `full`.
    interval: Option<u64>,
    /// Seconds of the first retry while `limited` or `portal` (it doubles).
    retry_min: Option<u64>,
    /// Seconds at which the retry interval stops doubling.
    retry_max: Option<u64>,
}

impl Config {
    /// The flags, over the file they name (if any).
    pub fn load(args: &ServeArgs) -> Result<Config, Failure> {
        let file = match &args.config {
            Some(path) => read(path)?,
            None => File::default(),
        };
        let bad = |what: &str, e: String| match &args.config {
            Some(p) => Failure::input(format!("{}: {what}: {e}", p.display())),
            None => Failure::input(format!("{what}: {e}")),
        };
        let listen = if !args.listen.is_empty() {
            args.listen.clone()
        } else if !file.listen.is_empty() {
            file.listen
                .iter()
                .map(|l| l.parse::<Listen>().map_err(|e| bad("listen", e)))
                .collect::<Result<_, _>>()?
        } else {
            vec![DEFAULT_LISTEN.parse().expect("a valid address")]
        };
        let patterns = |list: &[String], what: &str| -> Result<Vec<Pattern>, Failure> {
            list.iter()
                .map(|p| Pattern::new(p).map_err(|e| bad(what, e.to_string())))
                .collect()
        };
        let mut ignore = args.rules.exclude.clone();
        ignore.extend(patterns(&file.ignore, "ignore")?);
        let mut metered = args.rules.metered.clone();
        metered.extend(patterns(&file.metered, "metered")?);
        let mut rules = ConnectivityConfig::new();
        for p in &ignore {
            rules = rules.with_excluded(p.clone());
        }
        for p in &metered {
            rules = rules.with_metered(p.clone());
        }
        let probe = if args.probe || file.probe.enabled {
            Some(probe_config(&args.endpoint, &file.probe).map_err(|e| bad("probe", e))?)
        } else {
            None
        };
        let limits = file.limits;
        if limits.max_header_bytes < 8192 {
            return Err(bad("limits.max_header_bytes", "at least 8192".to_owned()));
        }
        if limits.sse_queue == 0 || limits.max_connections == 0 {
            return Err(bad(
                "limits",
                "sse_queue and max_connections must be above 0".into(),
            ));
        }
        Ok(Config {
            listen,
            rules,
            ignore,
            probe,
            limits,
        })
    }
}

/// The probe: the flags where given, else the file's keys, else the defaults.
fn probe_config(flags: &ProbeArgs, file: &ProbeFile) -> Result<ProbeConfig, String> {
    let mut args = flags.clone();
    if args.url.is_none() {
        if let Some(url) = &file.url {
            args.url = Some(url.parse().map_err(|e| format!("url: {e}"))?);
        }
    }
    args.expect_status = args.expect_status.or(file.expect_status);
    if args.expect_body.is_none() {
        args.expect_body.clone_from(&file.expect_body);
    }
    if let Some(t) = file.timeout {
        if !(0.001..=1e6).contains(&t) {
            return Err(format!("timeout: {t} is not between 0.001 and 1e6 seconds"));
        }
        args.probe_timeout = t;
    }
    let config = crate::cmd::probe::config(&args).map_err(|e| e.message())?;
    let mut schedule = netreach::ProbeSchedule::default();
    let secs = |s: u64| Duration::from_secs(s.max(1));
    if let Some(s) = file.interval {
        schedule.full_interval = secs(s);
    }
    if let Some(s) = file.retry_min {
        schedule.retry_min = secs(s);
    }
    if let Some(s) = file.retry_max {
        schedule.retry_max = secs(s);
    }
    Ok(config.schedule(schedule))
}

/// Reads and parses the file; an error names the file, the line and the column.
fn read(path: &Path) -> Result<File, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| Failure::input(describe(path, &text, &e)))
}

/// `FILE:LINE:COLUMN: message`, on one line.
fn describe(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let message = e.message().replace('\n', " ");
    let message = message.trim();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{}:{line}:{column}: {message}", path.display())
        }
        None => format!("{}: {message}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_file_line_and_column() {
        let text = "listen = [\"127.0.0.1:1\"]\n[limits]\nmax_sse_clients = \"many\"\n";
        let e = toml::from_str::<File>(text).unwrap_err();
        let d = describe(Path::new("/etc/netreach.toml"), text, &e);
        assert!(d.starts_with("/etc/netreach.toml:3:19: "), "{d}");
        assert!(!d.contains('\n'));
        let e = toml::from_str::<File>("bogus = 1\n").unwrap_err();
        let d = describe(Path::new("f"), "bogus = 1\n", &e);
        assert!(d.starts_with("f:1:1: unknown field `bogus`"), "{d}");
    }

    #[test]
    fn a_full_file_parses() {
        let f: File = toml::from_str(
            "listen = [\"127.0.0.1:9580\", \"unix:/run/n.sock\"]\nignore = [\"veth*\"]\n\
             metered = [\"wwan*\"]\n[probe]\nenabled = true\nurl = \"http://198.18.0.1/\"\n\
             interval = 60\n[limits]\nmax_sse_clients = 10\n",
        )
        .unwrap();
        assert_eq!(f.listen.len(), 2);
        assert_eq!(f.limits.max_sse_clients, 10);
        assert_eq!(f.limits.backlog, Limits::default().backlog);
        assert!(f.probe.enabled);
    }
}
