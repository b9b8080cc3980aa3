//! The command-line interface, defined once: help, man pages and completions all come from it.

use std::net::IpAddr;
use std::path::PathBuf;

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
    WaitOnline(WaitOnlineArgs),
    /// Can REMOTE be reached from here, and by which path? Prints reachability, the reason
    /// when not, the output interface, gateway and source. Exit 0 when reachable, 1 when not,
    /// 2 on bad input.
    ///
    /// The kernel's own route lookup decides (policy routing included), and the rules of
    /// docs/reachability.md judge its answer.
    Reach(ReachArgs),
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
    /// Give up after this many seconds (0: check once).
    #[arg(long, value_name = "SECONDS", default_value = "120",
          value_parser = seconds, allow_negative_numbers = true)]
    pub timeout: f64,
    /// The level to wait for.
    #[arg(long, value_enum, default_value_t = LevelArg::Internet)]
    pub level: LevelArg,
    /// Which family must reach it: either one, or both.
    #[arg(long, value_enum, default_value_t = FamilyArg::Any)]
    pub family: FamilyArg,
    /// Consider only these interfaces (a name or a pattern like `eth*`; repeatable).
    #[arg(long = "interface", value_name = "NAME")]
    pub interfaces: Vec<Pattern>,
    /// Wait until an HTTP probe verifies full internet access (not just a default route).
    #[arg(long)]
    pub verified: bool,
    #[command(flatten)]
    pub rules: RuleArgs,
    #[command(flatten)]
    pub endpoint: ProbeArgs,
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

/// A connectivity level on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    Local,
    Site,
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
    use clap::CommandFactory;

    /// clap checks the definition (unique names, valid defaults) in debug builds only at run
    /// time; this makes a mistake fail the tests instead of the first user.
    #[test]
    fn the_command_line_definition_is_valid() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn seconds_explain_bad_values() {
        use super::seconds;
        assert!(seconds("-1").unwrap_err().contains("negative"));
        assert!(seconds("soon").unwrap_err().contains("not a duration"));
        assert!(seconds("2e9").unwrap_err().contains("too long"));
        assert_eq!(seconds("1.5"), Ok(1.5));
        assert_eq!(seconds("30s"), Ok(30.0));
    }
}
