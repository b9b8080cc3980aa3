//! The library's typed errors.

use std::io;
use std::path::PathBuf;

/// Why a netreach operation failed. Each variant says what went wrong and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named network namespace does not exist (no `/run/netns/NAME`).
    /// Create it with `ip netns add NAME`, or check the spelling with `ip netns list`.
    #[error("network namespace {name:?} does not exist (looked for {path})")]
    NamespaceNotFound {
        /// The name or path given.
        name: String,
        /// The file that was looked for.
        path: PathBuf,
    },
    /// The namespace name is not a valid `ip netns` name (empty, `.`/`..`, contains `/` or a
    /// NUL byte, or longer than 255 bytes).
    #[error("invalid network namespace name {name:?}: {reason}")]
    InvalidNamespaceName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The file exists but is not a network namespace.
    #[error("{path} is not a network namespace")]
    NotANamespace {
        /// The file.
        path: PathBuf,
    },
    /// The caller lacks the privilege for an operation (entering another namespace needs
    /// `CAP_SYS_ADMIN`). Run as root or with that capability.
    #[error("permission denied: {operation}")]
    PermissionDenied {
        /// What was attempted.
        operation: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A system call on the netlink socket failed.
    #[error("netlink socket: {operation} failed")]
    Socket {
        /// What was attempted.
        operation: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel answered a request with an error.
    #[error("the kernel refused {request}: {source}")]
    Kernel {
        /// What was asked.
        request: &'static str,
        /// The errno as an OS error.
        #[source]
        source: io::Error,
    },
    /// A dump kept being interrupted by concurrent changes and never completed.
    #[error("the kernel's {what} dump was interrupted {attempts} times in a row")]
    DumpInterrupted {
        /// Which dump.
        what: &'static str,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A connection target was rejected (unspecified or unassigned local address, family
    /// mismatch, multicast or broadcast remote, unknown interface): see the inner error.
    #[error("invalid target: {0}")]
    InvalidTarget(#[from] netreach_core::reach::TargetError),
    /// The kernel has no usable route to the remote now, so there is no source address it
    /// would choose (see [`crate::ConnectionMonitor::target_for`]); `reason` says why. Pass the
    /// local address explicitly, or try again once the network is up.
    #[error("no source address for {remote}: {reason}")]
    NoSource {
        /// The remote address (normalised).
        remote: std::net::IpAddr,
        /// Why the kernel has no route to it.
        reason: netreach_core::reach::Reason,
    },
    /// The monitor's thread could not be started.
    #[error("could not start the monitor thread")]
    Thread(#[source] io::Error),
    /// The monitor has stopped (it was dropped, or its thread failed).
    #[error("the monitor has stopped")]
    Stopped,
    /// This system has no backend for what was asked (netreach monitors Linux today).
    #[error("{what} is not supported on this system")]
    Unsupported {
        /// What was asked.
        what: &'static str,
    },
}

impl Error {
    pub(crate) fn socket(operation: &'static str, source: impl Into<io::Error>) -> Error {
        Error::Socket {
            operation,
            source: source.into(),
        }
    }
}

/// The whole message of an error and its sources, on one line.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
