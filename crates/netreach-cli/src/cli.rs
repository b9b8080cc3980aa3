//! The command-line interface, defined once: help, man page and completions all come from it.

use std::net::IpAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use netreach::core::connectivity::{Level, Pattern};

/// Watch network connectivity: interfaces, addresses, routes, and what changes.
#[derive(Debug, Parser)]
#[command(name = "netreach", version, about, propagate_version = true)]
pub struct Cli {
    /// Run inside this network namespace (a name from `ip netns`, or a path to a namespace file).
    #[arg(long, global = true, value_name = "NAME")]
    pub netns: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print interfaces with their state, addresses and routes.
    Status {
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Print one line per change as it happens.
    Watch {
        /// One JSON object per line, flushed at once. The first is `{"type":"ready",...}`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Wait until the network is online (or the level asked for), like
    /// systemd-networkd-wait-online. Exit 0 once it is, 1 on timeout, 2 on bad input.
    WaitOnline {
        /// Give up after this many seconds (0: check once).
        #[arg(long, value_name = "SECONDS", default_value_t = 120.0, value_parser = seconds)]
        timeout: f64,
        /// The level to wait for.
        #[arg(long, value_enum, default_value_t = LevelArg::Internet)]
        level: LevelArg,
        /// Which family must reach it: either one, or both.
        #[arg(long, value_enum, default_value_t = FamilyArg::Any)]
        family: FamilyArg,
        /// Consider only these interfaces (a name or a pattern like `eth*`; repeatable).
        #[arg(long = "interface", value_name = "NAME")]
        interfaces: Vec<Pattern>,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Can REMOTE be reached from here, and by which path? Prints reachability, the reason
    /// when not, the output interface, gateway and source. Exit 0 when reachable, 1 when not,
    /// 2 on bad input.
    ///
    /// The kernel's own route lookup decides (policy routing included), and the rules of
    /// docs/reachability.md judge its answer.
    Reach {
        /// The remote address (IPv4 or IPv6).
        #[arg(value_name = "REMOTE")]
        remote: IpAddr,
        /// Send from this address of this host. Default: the source the kernel would choose;
        /// with --watch and no route now, a usable address of the remote's family (one on
        /// --interface, if given).
        #[arg(long, value_name = "ADDR")]
        local: Option<IpAddr>,
        /// Use only this output interface, as a socket bound to it would.
        #[arg(long, value_name = "NAME")]
        interface: Option<String>,
        /// Keep running and print one line per change (reachability, reason or path), flushed
        /// at once. The first line is the state found by the first lookup.
        #[arg(long)]
        watch: bool,
        /// JSON: one object; with --watch one object per line, each of
        /// `"type":"reachability_changed"`.
        #[arg(long)]
        json: bool,
    },
    /// Print shell completions for SHELL (bash, zsh, fish, elvish, powershell).
    #[command(hide = true)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on standard output.
    #[command(hide = true)]
    Man,
}

/// Options of the connectivity rules.
#[derive(Debug, Clone, Args)]
pub struct RuleArgs {
    /// Ignore interfaces matching this pattern (`veth*`, `docker*`; repeatable).
    #[arg(long = "exclude", value_name = "PATTERN")]
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

fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !v.is_finite() || !(0.0..=1e9).contains(&v) {
        return Err(format!("{s:?} is not a number of seconds from 0 to 1e9"));
    }
    Ok(v)
}
