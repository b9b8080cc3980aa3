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
    /// Fails at once, without blocking, when the namespace file is missing
    /// ([`Error::NamespaceNotFound`]), the path cannot name one ([`Error::InvalidNamespacePath`]),
    /// or the file is something else ([`Error::NotANamespace`]: a FIFO, a directory, a regular
    /// file, a namespace of another type).
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
        // Checked here, on the caller's thread, so a bad path fails at once with what is wrong.
        let file = crate::sys::imp::netns::open(&path, &self.to_string())?;
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

// Namespace files, FIFOs and sockets: these tests are Linux's.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::{FileKind, PathReason};

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

    /// A directory of one test's own (process id and a counter), removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("netreach-netns-{}-{n}-{tag}", std::process::id()));
            std::fs::create_dir(&dir).expect("create the test directory");
            TempDir(dir)
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// `Netns::Path(path).run(..)`, failing the test if it does not return within 10 s.
    fn run_path(path: &Path) -> Result<(), Error> {
        let ns = Netns::Path(path.to_owned());
        let (tx, rx) = mpsc::channel();
        // Not joined: if `run` hangs, the test fails and leaves the thread behind.
        std::thread::spawn(move || {
            let _ = tx.send(ns.run(|| ()));
        });
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("Netns::run({}) did not return in 10 s", path.display()))
    }

    /// Asserts `path` is refused as `kind`, with the message saying so.
    fn assert_not_a_namespace(path: &Path, kind: FileKind) {
        let e = run_path(path).expect_err("refused");
        assert!(
            matches!(&e, Error::NotANamespace { path: p, kind: k } if p == path && *k == kind),
            "{}: unexpected {e:?}",
            path.display()
        );
        assert_eq!(
            e.to_string(),
            format!("{} is {kind}, not a network namespace", path.display())
        );
    }

    /// Asserts `path` is refused as an invalid path for `reason`.
    fn assert_invalid_path(path: &Path, reason: PathReason) {
        let e = run_path(path).expect_err("refused");
        assert!(
            matches!(&e, Error::InvalidNamespacePath { path: p, reason: r, .. }
                if p == path && *r == reason),
            "{}: unexpected {e:?}",
            path.display()
        );
        assert_eq!(
            e.to_string(),
            format!(
                "invalid network namespace path {}: {reason}",
                path.display()
            )
        );
    }

    #[test]
    fn a_fifo_is_refused_at_once() {
        let dir = TempDir::new("fifo");
        let fifo = dir.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        assert_not_a_namespace(&fifo, FileKind::Fifo);
    }

    #[test]
    fn a_socket_is_not_a_namespace() {
        let dir = TempDir::new("sock");
        let sock = dir.join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        assert_not_a_namespace(&sock, FileKind::Socket);
    }

    #[test]
    fn a_directory_is_not_a_namespace() {
        let dir = TempDir::new("dir");
        assert_not_a_namespace(&dir.0, FileKind::Directory);
    }

    #[test]
    fn a_device_is_not_a_namespace() {
        assert_not_a_namespace(Path::new("/dev/null"), FileKind::CharDevice);
    }

    #[test]
    fn a_regular_file_is_not_a_namespace() {
        let dir = TempDir::new("file");
        let file = dir.join("file");
        std::fs::write(&file, "not a namespace").expect("write");
        assert_not_a_namespace(&file, FileKind::RegularFile);
        // A regular file on procfs, beside the namespace files.
        assert_not_a_namespace(Path::new("/proc/self/status"), FileKind::RegularFile);
    }

    #[test]
    fn a_namespace_of_another_type_is_not_a_network_namespace() {
        assert_not_a_namespace(Path::new("/proc/self/ns/uts"), FileKind::OtherNamespace);
    }

    #[test]
    fn a_too_long_path_is_invalid() {
        let path = PathBuf::from("/a".repeat(2500));
        assert_eq!(path.as_os_str().len(), 5000);
        assert_invalid_path(&path, PathReason::TooLong);
    }

    #[test]
    fn a_path_through_a_regular_file_is_invalid() {
        let dir = TempDir::new("notdir");
        let file = dir.join("file");
        std::fs::write(&file, "").expect("write");
        assert_invalid_path(&file.join("x"), PathReason::NotADirectory);
    }

    #[test]
    fn a_symlink_loop_is_invalid() {
        let dir = TempDir::new("loop");
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::os::unix::fs::symlink(&b, &a).expect("symlink");
        std::os::unix::fs::symlink(&a, &b).expect("symlink");
        assert_invalid_path(&a, PathReason::SymlinkLoop);
    }

    #[test]
    fn a_nul_byte_is_invalid() {
        assert_invalid_path(Path::new("/proc/self/ns/net\0x"), PathReason::NulByte);
    }

    #[test]
    fn the_own_network_namespace_file_is_accepted() {
        match run_path(Path::new("/proc/self/ns/net")) {
            Ok(()) => {}
            // Entering a namespace, even one's own, needs CAP_SYS_ADMIN.
            Err(Error::PermissionDenied { .. }) if !rustix::process::geteuid().is_root() => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
