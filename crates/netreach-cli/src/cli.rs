//! The command-line interface, defined once: help, man pages and completions all come from it.
//!
//! `wait-online` takes the spellings of `systemd-networkd-wait-online` (`-i IF[:LEVEL]`,
//! `--ignore`, `-4`, `-6`, `--any`, `-q`, `--timeout` with 0 for ever) and `nm-online`'s `-t`;
//! docs/cli.md maps networkd's operational states onto netreach's levels.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use netreach::core::connectivity::{Level, Pattern};

/// Know when the network is up, and whether a path still works.
///
/// netreach watches a Linux network namespace through the kernel's own rtnetlink notifications
/// (interfaces, addresses, routes and policy rules) and says how connected it is, per IP family:
/// disconnected, local (a running interface with an address), site (a route beyond the link) or
/// internet (a usable default route). It can wait until a level is reached, explain whether and
/// how a remote address is reached, and verify internet access with an HTTP probe.
///
/// Output is for people by default (in colour on a terminal, never with NO_COLOR set) and for
/// programs with --json. Exit status: 0 success; 1 the condition asked for does not hold (not
/// online in time, not reachable) or a run-time failure; 2 bad input. A closed output pipe
/// counts as success.
#[derive(Debug, Parser)]
#[command(name = "netreach", version, propagate_version = true)]
pub struct Cli {
    /// Run inside this network namespace (a name from `ip netns`, or a path to a namespace file).
    #[arg(long, global = true, value_name = "NAME")]
    pub netns: Option<String>,

    /// How to learn of changes: the kernel's notifications (netlink), or a full dump every
    /// --poll-interval seconds (polling, for sandboxes without rtnetlink multicast).
    #[arg(long, global = true, value_enum, default_value_t = BackendArg::Netlink)]
    pub backend: BackendArg,

    /// Seconds between two dumps with --backend polling.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 2.0,
          value_parser = positive_seconds, allow_negative_numbers = true)]
    pub poll_interval: f64,

    #[command(subcommand)]
    pub command: Command,
}

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// rtnetlink notifications: every change at once, no work while idle.
    Netlink,
    /// A full dump on an interval, compared with the last.
    Polling,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print connectivity, then interfaces with their state, addresses and routes.
    Status(ViewArgs),
    /// Print one line per change as it happens. With --json, one object per line, flushed at
    /// once; the first is `{"type":"ready",...}`.
    Watch(WatchArgs),
    /// Verify internet access with an HTTP probe on each interface and family: full, portal
    /// (captive portal), limited, or none. Exit 0 when some probe says full, 1 otherwise.
    Probe(ProbeCmdArgs),
    /// Wait until the network is online (or the level asked for), like
    /// systemd-networkd-wait-online. Exit 0 once it is, 1 on timeout, 2 on bad input.
    ///
    /// Without --interface, the namespace as a whole must reach the level (through any
    /// interface not ignored). With --interface, every one listed must reach its level (or one
    /// of them, with --any). Levels: local, site, internet; networkd's operational states are
    /// accepted too (degraded-carrier, carrier, degraded and enslaved mean local; routable means
    /// site). No polling: it wakes on the kernel's notifications.
    WaitOnline(WaitOnlineArgs),
    /// Can REMOTE be reached from here, and by which path? Prints reachability, the reason
    /// when not, the output interface, gateway and source. Exit 0 when reachable, 1 when not,
    /// 2 on bad input.
    ///
    /// The kernel's own route lookup decides (policy routing included), and the rules of
    /// docs/reachability.md judge its answer. A link-local IPv6 REMOTE (fe80::/10) needs an
    /// interface: --interface, or the only one on that link prefix.
    Reach(ReachArgs),
    /// Serve the state, the events and Prometheus metrics over HTTP (Linux only).
    ///
    /// Endpoints: GET /metrics (Prometheus text format, OpenMetrics by Accept), /v1/status
    /// (as `status --json`), /v1/events (Server-Sent Events, one `watch --json` line each),
    /// /v1/reach?remote=ADDR[&local=ADDR][&interface=NAME] (as `reach --json`) and /healthz.
    /// Default address 127.0.0.1:9580. SIGHUP reloads --config; SIGTERM ends it cleanly.
    /// docs/serve.md has the limits and the configuration file.
    Serve(ServeArgs),
    /// Print a shell completion script for SHELL on standard output.
    ///
    /// bash: `netreach completions bash > /etc/bash_completion.d/netreach`; zsh: into a
    /// directory of $fpath as `_netreach`; fish: into ~/.config/fish/completions/netreach.fish.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff) on standard output, or write every page into a directory.
    ///
    /// `netreach man` prints netreach(1), `netreach man wait-online` prints
    /// netreach-wait-online(1), and `netreach man --dir /usr/local/share/man/man1` writes
    /// netreach.1 and one page per subcommand.
    Man(ManArgs),
}

/// What `status` and `watch` show and how.
#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    /// JSON instead of human-readable text.
    #[arg(long)]
    pub json: bool,
    /// Also verify internet access with HTTP probes per interface and family (`watch`
    /// re-probes after each change).
    #[arg(long)]
    pub probe: bool,
    /// Print only what is about interfaces matching this pattern (`eth0`, `eth*`; repeatable).
    /// It filters the printing only: connectivity is still that of every interface not
    /// ignored. Routes and rules about no interface are then not printed.
    #[arg(short = 'i', long = "interface", value_name = "PATTERN")]
    pub interfaces: Vec<Pattern>,
    #[command(flatten)]
    pub rules: RuleArgs,
    #[command(flatten)]
    pub endpoint: ProbeArgs,
}

/// `watch`: what `status` shows, and which kinds of event.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub view: ViewArgs,
    /// Print only these kinds of event (comma-separated or repeated; default all). The
    /// `ready`, `resynced` and `lagged` lines are always printed.
    #[arg(long, value_name = "KIND", value_enum, value_delimiter = ',')]
    pub events: Vec<EventKind>,
}

/// A kind of event `watch` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventKind {
    /// Interfaces added, changed, removed.
    Interface,
    /// Addresses added, changed, removed.
    Address,
    /// Routes added, removed.
    Route,
    /// Policy rules added, removed.
    Rule,
    /// Connectivity changes (levels, primary interface).
    Connectivity,
    /// Probe verdict changes (with --probe).
    Probe,
}

/// Options of the connectivity rules.
#[derive(Debug, Clone, Args)]
pub struct RuleArgs {
    /// Ignore interfaces matching this pattern (`veth*`, `docker*`; repeatable): they count
    /// for no level, and `status` and `watch` print nothing about them.
    #[arg(long = "ignore", visible_alias = "exclude", value_name = "PATTERN")]
    pub exclude: Vec<Pattern>,
    /// Treat interfaces matching this pattern as metered (repeatable).
    #[arg(long = "metered", value_name = "PATTERN")]
    pub metered: Vec<Pattern>,
}

/// `probe`.
#[derive(Debug, Clone, Args)]
pub struct ProbeCmdArgs {
    /// Probe only this interface (repeatable).
    #[arg(long = "interface", value_name = "NAME")]
    pub interfaces: Vec<String>,
    /// Probe only this family.
    #[arg(long, value_enum)]
    pub family: Option<OneFamily>,
    /// One JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Give up on each probe after this many seconds (same as --probe-timeout).
    #[arg(long, value_name = "SECONDS", value_parser = seconds, allow_negative_numbers = true)]
    pub timeout: Option<f64>,
    #[command(flatten)]
    pub endpoint: ProbeArgs,
}

/// `wait-online`.
#[derive(Debug, Clone, Args)]
pub struct WaitOnlineArgs {
    /// Give up after this long: seconds (`2.5`) or a span (`2min`, `30s`). 0 waits for ever.
    /// A hard bound: the probes of --verified included, the command exits by then.
    #[arg(short = 't', long, value_name = "SECONDS", default_value = "120",
          value_parser = seconds, allow_negative_numbers = true)]
    pub timeout: f64,
    /// The level to wait for: local, site, internet (or a networkd operational state).
    #[arg(short = 'o', long, visible_alias = "operational-state", value_name = "LEVEL",
          value_enum, default_value_t = LevelArg::Internet)]
    pub level: LevelArg,
    /// Which family must reach it: either one, or both.
    #[arg(long, value_enum, default_value_t = FamilyArg::Any, conflicts_with_all = ["ipv4", "ipv6"])]
    pub family: FamilyArg,
    /// IPv4 must reach the level (with -6 too: both families).
    #[arg(short = '4', long)]
    pub ipv4: bool,
    /// IPv6 must reach the level (with -4 too: both families).
    #[arg(short = '6', long)]
    pub ipv6: bool,
    /// Wait for this interface (a name or a pattern like `eth*`), to LEVEL if given, else to
    /// --level (repeatable). Interfaces a pattern matches reach a level together.
    #[arg(short = 'i', long = "interface", value_name = "IF[:LEVEL]")]
    pub interfaces: Vec<InterfaceGoal>,
    /// With several --interface: return once any one of them is ready, not all.
    #[arg(long)]
    pub any: bool,
    /// Print nothing on timeout (the exit status still says it).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Wait until an HTTP probe verifies full internet access (not just a default route).
    #[arg(long)]
    pub verified: bool,
    #[command(flatten)]
    pub rules: RuleArgs,
    #[command(flatten)]
    pub endpoint: ProbeArgs,
}

impl WaitOnlineArgs {
    /// The family condition: `-4` and `-6` (both: both families), else `--family`.
    pub fn family(&self) -> FamilyArg {
        match (self.ipv4, self.ipv6) {
            (true, true) => FamilyArg::Both,
            (true, false) => FamilyArg::Ipv4,
            (false, true) => FamilyArg::Ipv6,
            (false, false) => self.family,
        }
    }
}

/// `-i IF[:LEVEL]`: an interface name or pattern, and the level it must reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceGoal {
    /// Which interfaces.
    pub pattern: Pattern,
    /// The level; `None`: `--level`.
    pub level: Option<LevelArg>,
}

impl FromStr for InterfaceGoal {
    type Err = String;

    fn from_str(s: &str) -> Result<InterfaceGoal, String> {
        // No interface name holds `:`, so the first one ends the name.
        let (name, level) = match s.split_once(':') {
            Some((name, level)) => (name, Some(level)),
            None => (s, None),
        };
        let pattern = Pattern::new(name).map_err(|e| e.to_string())?;
        let level = level
            .map(|l| {
                if l.contains(':') {
                    return Err(format!(
                        "{s:?}: a maximum level (IF:MIN:MAX) is not supported; give IF:LEVEL"
                    ));
                }
                LevelArg::from_str(l, false).map_err(|_| {
                    format!(
                        "{l:?} is not a level: expected local, site or internet (or networkd's \
                         degraded-carrier, carrier, degraded, enslaved, routable)"
                    )
                })
            })
            .transpose()?;
        Ok(InterfaceGoal { pattern, level })
    }
}

/// `reach`.
#[derive(Debug, Clone, Args)]
pub struct ReachArgs {
    /// The remote address (IPv4 or IPv6).
    #[arg(value_name = "REMOTE")]
    pub remote: IpAddr,
    /// Send from this address of this host. Default: the source the kernel would choose;
    /// with --watch and no route now, a usable address of the remote's family (one on
    /// --interface, if given).
    #[arg(long, value_name = "ADDR")]
    pub local: Option<IpAddr>,
    /// Use only this output interface, as a socket bound to it would.
    #[arg(long, value_name = "NAME")]
    pub interface: Option<String>,
    /// Keep running and print one line per change (reachability, reason or path), flushed
    /// at once. The first line is the state found by the first lookup.
    #[arg(long)]
    pub watch: bool,
    /// JSON: one object; with --watch one object per line, each of
    /// `"type":"reachability_changed"`.
    #[arg(long)]
    pub json: bool,
}

/// `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Listen here: ADDR:PORT, or unix:PATH for a Unix socket (repeatable; default
    /// 127.0.0.1:9580, or the configuration file's `listen`).
    #[arg(long, value_name = "ADDR:PORT|unix:PATH")]
    pub listen: Vec<Listen>,
    /// Read the configuration from this TOML file (docs/serve.md); SIGHUP reads it again.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also verify internet access with HTTP probes per interface and family.
    #[arg(long)]
    pub probe: bool,
    /// Also own org.freedesktop.NetworkManager on the system bus (DBUS_SYSTEM_BUS_ADDRESS) and
    /// serve what Qt's and GLib's network monitors read (docs/nm-compat.md). Only if the name
    /// is free: if it is taken, one line and exit 2.
    #[arg(long)]
    pub nm_compat: bool,
    #[command(flatten)]
    pub rules: RuleArgs,
    #[command(flatten)]
    pub endpoint: ProbeArgs,
}

/// Where `serve` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address.
    Tcp(std::net::SocketAddr),
    /// A Unix stream socket at this path.
    Unix(PathBuf),
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Listen, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path (unix:/run/netreach.sock)".to_owned());
            }
            return Ok(Listen::Unix(path.into()));
        }
        s.parse().map(Listen::Tcp).map_err(|_| {
            format!("{s:?} is not ADDR:PORT (127.0.0.1:9580, [::1]:9580) or unix:PATH")
        })
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "{a}"),
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// `man`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (default: the page of netreach itself).
    #[arg(value_name = "COMMAND", value_parser = subcommand_name, conflicts_with = "dir")]
    pub page: Option<String>,
    /// Write every page (netreach.1, netreach-status.1, ...) into this directory instead.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// A connectivity level on the command line. networkd's operational states map onto the level
/// that means the same or more (docs/cli.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    /// A running interface with a usable address of the family, link-local or not (networkd's
    /// degraded-carrier, carrier, degraded and enslaved mean this).
    #[value(
        alias = "degraded-carrier",
        alias = "carrier",
        alias = "degraded",
        alias = "enslaved"
    )]
    Local,
    /// A route beyond the link through such an interface, but no default route (networkd's
    /// routable means this).
    #[value(alias = "routable")]
    Site,
    /// A usable default route.
    Internet,
}

impl From<LevelArg> for Level {
    fn from(l: LevelArg) -> Level {
        match l {
            LevelArg::Local => Level::Local,
            LevelArg::Site => Level::Site,
            LevelArg::Internet => Level::Internet,
        }
    }
}

/// Which family a condition is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FamilyArg {
    Ipv4,
    Ipv6,
    Any,
    Both,
}

/// Seconds: a number (`2.5`) or a span (`2min`, `30s`, `1h 5m`), from 0 to 1e9.
fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = match s.trim().parse::<f64>() {
        Ok(v) => v,
        Err(_) => humantime::parse_duration(s)
            .map_err(|_| format!("{s:?} is not a duration: give seconds (2.5) or a span (2min)"))?
            .as_secs_f64(),
    };
    if v.is_nan() {
        return Err("NaN is not a number of seconds".to_owned());
    }
    if v < 0.0 {
        return Err(format!("{s} is negative: give a duration of 0 or more"));
    }
    if v > 1e9 {
        return Err(format!("{s} is too long: at most 1e9 seconds"));
    }
    Ok(v)
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    let v = seconds(s)?;
    if v < 0.001 {
        return Err(format!("{s} is too short: at least 0.001 seconds"));
    }
    Ok(v)
}

/// A subcommand that has a man page.
fn subcommand_name(s: &str) -> Result<String, String> {
    use clap::CommandFactory;
    let cli = Cli::command();
    let names: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
    if names.contains(&s) {
        Ok(s.to_owned())
    } else {
        Err(format!("no such command (expected {})", names.join(", ")))
    }
}

/// What the HTTP probe fetches. Without `--url`, a well-known public check endpoint (see
/// docs/probe.md); nothing is ever probed unless a probe is asked for.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// The URL to fetch (http or https).
    #[arg(long, value_name = "URL")]
    pub url: Option<netreach::probe::ProbeUrl>,
    /// The status of a genuine answer (default 204, or 200 with --expect-body).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(100..=599))]
    pub expect_status: Option<u16>,
    /// The start of the body of a genuine answer.
    #[arg(long, value_name = "TEXT")]
    pub expect_body: Option<String>,
    /// Give up on one probe after this many seconds (DNS, connect and response together).
    #[arg(long = "probe-timeout", value_name = "SECONDS", default_value = "5",
          value_parser = seconds, allow_negative_numbers = true)]
    pub probe_timeout: f64,
}

/// One family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OneFamily {
    Ipv4,
    Ipv6,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    /// clap checks the definition (unique names, valid defaults) in debug builds only at run
    /// time; this makes a mistake fail the tests instead of the first user.
    #[test]
    fn the_command_line_definition_is_valid() {
        Cli::command().debug_assert();
    }

    fn wait_online(args: &[&str]) -> WaitOnlineArgs {
        let mut v = vec!["netreach", "wait-online"];
        v.extend(args);
        match Cli::try_parse_from(v).expect("valid flags").command {
            Command::WaitOnline(w) => w,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn networkd_spellings() {
        let w = wait_online(&["-i", "eth0:routable", "-i", "wl*", "--ignore", "veth*"]);
        assert_eq!(w.interfaces[0].pattern.as_str(), "eth0");
        assert_eq!(w.interfaces[0].level, Some(LevelArg::Site));
        assert_eq!(w.interfaces[1].level, None);
        assert_eq!(w.rules.exclude[0].as_str(), "veth*");
        assert_eq!(wait_online(&["--exclude", "v*"]).rules.exclude.len(), 1);
        assert_eq!(wait_online(&["-4"]).family(), FamilyArg::Ipv4);
        assert_eq!(wait_online(&["-6"]).family(), FamilyArg::Ipv6);
        assert_eq!(wait_online(&["-4", "-6"]).family(), FamilyArg::Both);
        assert_eq!(wait_online(&[]).family(), FamilyArg::Any);
        assert_eq!(wait_online(&["-o", "degraded"]).level, LevelArg::Local);
        assert_eq!(
            wait_online(&["--operational-state", "carrier"]).level,
            LevelArg::Local
        );
        assert_eq!(wait_online(&["-t", "0"]).timeout, 0.0);
        assert_eq!(wait_online(&["--timeout", "2min"]).timeout, 120.0);
        let w = wait_online(&["--any", "-q"]);
        assert!(w.any && w.quiet);
    }

    #[test]
    fn bad_goals_say_what_is_wrong() {
        let e = "eth0:bogus".parse::<InterfaceGoal>().unwrap_err();
        assert!(e.contains("\"bogus\" is not a level"), "{e}");
        let e = "eth0:degraded:routable"
            .parse::<InterfaceGoal>()
            .unwrap_err();
        assert!(e.contains("maximum"), "{e}");
        assert!("".parse::<InterfaceGoal>().is_err());
    }

    #[test]
    fn seconds_explain_bad_values() {
        assert!(seconds("-1").unwrap_err().contains("negative"));
        assert!(seconds("soon").unwrap_err().contains("not a duration"));
        assert!(seconds("2e9").unwrap_err().contains("too long"));
        assert_eq!(seconds("1.5"), Ok(1.5));
        assert_eq!(seconds("30s"), Ok(30.0));
    }
}
