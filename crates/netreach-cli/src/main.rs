//! `netreach`: the command-line tool.
//!
//! `main` is a dispatcher: parse, run one short function per subcommand, print an error as one
//! line on stderr. Exit codes: 0 success; 1 the condition asked for does not hold (not online in
//! time, not reachable), or a run-time failure; 2 bad input (flags, namespace, an address that
//! makes no valid target, an unknown interface). A closed output pipe counts as success.
//!
//! A mistake in the flags is the exception to "one line": clap's own message is printed whole
//! (what is wrong, the suggestion or the possible values, the usage), as clap formats it.

mod cli;
mod cmd;
mod output;
mod resident;
#[cfg(target_os = "linux")]
mod serve;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// What a subcommand returns: an exit code, or an error to print.
pub type Outcome = Result<ExitCode, Failure>;

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    error: Box<dyn std::error::Error>,
}

impl Failure {
    /// Bad input: exit code 2.
    pub fn input(error: impl Into<Box<dyn std::error::Error>>) -> Failure {
        Failure {
            code: 2,
            error: error.into(),
        }
    }

    /// The exit code: 2 for bad input, 1 for a run-time failure.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// The error and its causes on one line, as `netreach` prints it (without `netreach: `).
    pub fn message(&self) -> String {
        chain(&*self.error)
    }
}

impl From<netreach::Error> for Failure {
    fn from(e: netreach::Error) -> Failure {
        use netreach::Error as E;
        // A namespace the user named wrong is bad input; lacking the privilege to enter a
        // good one (`PermissionDenied`) is a run-time failure.
        let code = match e {
            E::NamespaceNotFound { .. }
            | E::InvalidNamespaceName { .. }
            | E::InvalidNamespacePath { .. }
            | E::NotANamespace { .. }
            | E::InvalidTarget(_) => 2,
            _ => 1,
        };
        Failure {
            code,
            error: Box::new(e),
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure {
            code: 1,
            error: Box::new(e),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version go to stdout (exit 0), a mistake to stderr (exit 2). A
            // closed pipe is nothing to report.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(f) if is_broken_pipe(&*f.error) => ExitCode::SUCCESS,
        Err(f) => {
            complain(&chain(&*f.error));
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: Cli) -> Outcome {
    let scope = || -> Result<cmd::Scope, Failure> {
        Ok(cmd::Scope {
            netns: cmd::netns(cli.netns.as_deref())?,
            backend: match cli.backend {
                cli::BackendArg::Netlink => netreach::BackendKind::Netlink,
                cli::BackendArg::Polling => netreach::BackendKind::Polling {
                    interval: std::time::Duration::from_secs_f64(cli.poll_interval),
                },
            },
        })
    };
    match &cli.command {
        Command::Status(a) => cmd::status::run(&scope()?, a),
        Command::Watch(a) => cmd::watch::run(&scope()?, a),
        Command::Probe(a) => cmd::probe::run(&scope()?, a),
        Command::WaitOnline(a) => cmd::wait_online::run(&scope()?, a),
        Command::Reach(a) => cmd::reach::run(&scope()?, a),
        Command::Serve(a) => cmd::serve(&scope()?, a),
        Command::Completions { shell } => cmd::docs::completions(*shell),
        Command::Man(a) => cmd::docs::man(a),
    }
}

/// Prints `netreach: MESSAGE` on stderr, control characters escaped. A closed stderr is
/// ignored (`eprintln!` would panic).
pub fn complain(message: &str) {
    let _ = writeln!(
        io::stderr().lock(),
        "netreach: {}",
        output::human::escape(message)
    );
}

/// The error and its causes on one line: `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<io::Error>().is_some_and(|e| {
        // Windows says a closed pipe as ERROR_NO_DATA (232, which std reads as BrokenPipe);
        // Wine as ERROR_PIPE_NOT_CONNECTED (233), which std does not.
        const ERROR_PIPE_NOT_CONNECTED: i32 = 233;
        e.kind() == io::ErrorKind::BrokenPipe
            || (cfg!(windows) && e.raw_os_error() == Some(ERROR_PIPE_NOT_CONNECTED))
    })
}
