//! Which network namespace a monitor watches.
//!
//! netreach never moves the caller's thread: it enters the namespace on a short-lived helper
//! thread, opens its sockets there (a socket stays in the namespace it was created in), and
//! hands them back.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::Error;

/// A network namespace: the caller's own, one named by `ip netns`, or a namespace file.
///
/// # Examples
///
/// ```
/// use netreach::Netns;
///
/// let ns = Netns::named("blue").unwrap();
/// assert_eq!(ns.path().unwrap().to_str(), Some("/run/netns/blue"));
/// assert!(Netns::named("../etc").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Netns {
    /// The namespace of the calling process.
    #[default]
    Current,
    /// A namespace created with `ip netns add NAME` (`/run/netns/NAME`).
    Named(String),
    /// A namespace file, such as `/proc/PID/ns/net` or a bind mount of one.
    Path(PathBuf),
}

impl Netns {
    /// Where `ip netns` keeps its namespaces.
    pub const RUN_DIR: &'static str = "/run/netns";

    /// A named namespace, after checking the name the way `ip netns` does.
    pub fn named(name: impl Into<String>) -> Result<Netns, Error> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("the name is empty")
        } else if name == "." || name == ".." {
            Some("the name is `.` or `..`")
        } else if name.contains('/') {
            Some("the name contains `/`")
        } else if name.contains('\0') {
            Some("the name contains a NUL byte")
        } else if name.len() > 255 {
            Some("the name is longer than 255 bytes")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidNamespaceName { name, reason }),
            None => Ok(Netns::Named(name)),
        }
    }

    /// The namespace file, or `None` for the current namespace.
    pub fn path(&self) -> Option<PathBuf> {
        match self {
            Netns::Current => None,
            Netns::Named(n) => Some(Path::new(Netns::RUN_DIR).join(n)),
            Netns::Path(p) => Some(p.clone()),
        }
    }

    /// Runs `f` inside this namespace without moving the caller: for another namespace, `f`
    /// runs on a helper thread that entered it (sockets it opens stay in that namespace; so do
    /// threads it starts). For the current namespace, `f` runs on the caller's thread.
    ///
    /// ```no_run
    /// use netreach::Netns;
    /// # fn main() -> Result<(), netreach::Error> {
    /// let listener = Netns::named("blue")?.run(|| std::net::TcpListener::bind("[::]:8080"))?;
    /// # Ok(()) }
    /// ```
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R, Error> {
        let Some(path) = self.path() else {
            return Ok(f());
        };
        let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NamespaceNotFound {
                name: self.to_string(),
                path: path.clone(),
            },
            std::io::ErrorKind::PermissionDenied => Error::PermissionDenied {
                operation: "open the namespace file",
                source: e,
            },
            _ => Error::socket("open the namespace file", e),
        })?;
        std::thread::scope(|s| {
            let h = std::thread::Builder::new()
                .name("netreach-netns".into())
                .spawn_scoped(s, move || {
                    crate::sys::imp::netns::enter(&file, &path)?;
                    Ok(f())
                })
                .map_err(Error::Thread)?;
            // A panic in `f` is the caller's: hand it back to the caller's thread.
            h.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Netns::Current => f.write_str("(current)"),
            Netns::Named(n) => f.write_str(n),
            Netns::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for bad in ["", ".", "..", "a/b", "x\0y"] {
            assert!(
                matches!(Netns::named(bad), Err(Error::InvalidNamespaceName { .. })),
                "{bad:?}"
            );
        }
        assert!(Netns::named("a".repeat(256)).is_err());
        assert_eq!(Netns::named("ok-1").unwrap(), Netns::Named("ok-1".into()));
    }

    #[test]
    fn missing_namespace_is_a_typed_error() {
        let ns = Netns::named("netreach-no-such-namespace-here").unwrap();
        match ns.run(|| ()) {
            Err(Error::NamespaceNotFound { path, .. }) => {
                assert_eq!(
                    path,
                    Path::new("/run/netns/netreach-no-such-namespace-here")
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_regular_file_is_not_a_namespace() {
        let ns = Netns::Path("/proc/self/status".into());
        match ns.run(|| ()) {
            Err(Error::NotANamespace { .. }) | Err(Error::PermissionDenied { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
