//! The library's typed errors.

use std::fmt;
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
    /// The namespace path could not be opened because of the path itself: too long, through
    /// a file that is not a directory, a loop of symbolic links (see [`PathReason`]). Check
    /// the path; a namespace file is `/proc/PID/ns/net` or `/run/netns/NAME`.
    #[error("invalid network namespace path {path}: {reason}")]
    InvalidNamespacePath {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: PathReason,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file exists but is not a network namespace: something other than a regular file
    /// (a FIFO, a socket, a directory, a device), a regular file outside nsfs, or the file of
    /// another type of namespace (`/proc/PID/ns/uts`). Give `/proc/PID/ns/net`, a bind mount
    /// of one, or a name from `ip netns list`.
    #[error("{path} is {kind}, not a network namespace")]
    NotANamespace {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        kind: FileKind,
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
    /// A call of the system's network API failed (on Windows, IP Helper's `GetIfTable2`,
    /// `GetUnicastIpAddressTable` or `GetIpForwardTable2`); the source is the system's error.
    #[error("{call} failed")]
    System {
        /// The call.
        call: &'static str,
        /// The system's error.
        #[source]
        source: io::Error,
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

/// What is wrong with a namespace path that could not be opened
/// ([`Error::InvalidNamespacePath`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathReason {
    /// The path, or one of its components, is longer than the system allows
    /// (`ENAMETOOLONG`: 4096 bytes for a path, 255 for a component).
    TooLong,
    /// A component before the last is not a directory (`ENOTDIR`), as in `/etc/passwd/x`.
    NotADirectory,
    /// Resolving the path met a loop of symbolic links, or too many of them (`ELOOP`).
    SymlinkLoop,
    /// The path contains a NUL byte, which no system call accepts.
    NulByte,
    /// Another error from opening or examining the file (an I/O error, say): see the OS error.
    Other,
}

impl fmt::Display for PathReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathReason::TooLong => "the path or one of its components is too long",
            PathReason::NotADirectory => "a component of the path is not a directory",
            PathReason::SymlinkLoop => "the path loops through symbolic links",
            PathReason::NulByte => "the path contains a NUL byte",
            PathReason::Other => "the file cannot be opened",
        })
    }
}

/// What a file given as a network namespace is instead ([`Error::NotANamespace`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileKind {
    /// A regular file that is not on nsfs (the namespace file system).
    RegularFile,
    /// A directory.
    Directory,
    /// A FIFO (named pipe).
    Fifo,
    /// A Unix-domain socket.
    Socket,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A namespace file of another type, such as `/proc/PID/ns/uts`.
    OtherNamespace,
    /// A file of a type the system did not say.
    Unknown,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::RegularFile => "a regular file",
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a FIFO",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::OtherNamespace => "a namespace of another type",
            FileKind::Unknown => "a file of unknown type",
        })
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
