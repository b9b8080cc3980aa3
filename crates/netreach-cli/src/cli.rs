//! The command-line interface, defined once: help, man page and completions all come from it.

use clap::{Parser, Subcommand};

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
    },
    /// Print one line per change as it happens.
    Watch {
        /// One JSON object per line, flushed at once. The first is `{"type":"ready",...}`.
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
