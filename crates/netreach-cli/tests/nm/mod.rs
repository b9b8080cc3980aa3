//! The parts of the `--nm-compat` tests that are not the service: a private system bus (a real
//! `dbus-daemon` with a system-bus configuration and netreach's policy file, killed on drop),
//! and the real clients in `tests/nm/*.py` (Qt 6, GLib), each printing one JSON line per
//! change, read with a deadline.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a client may take to show an expected state: the suite's 20 s, and 10 more for the
/// hops of a change (kernel, service, bus, client) on a machine other tests load too.
const WAIT: Duration = Duration::from_secs(30);

/// The clients, passed to `python3 -c` so that an unprivileged user needs no access to the
/// source tree.
const QT: &str = include_str!("qt_client.py");
const GLIB: &str = include_str!("glib_client.py");
const TOOL: &str = include_str!("bus_tool.py");

/// Whether the real clients and the bus can run here. Missing parts fail the test in CI
/// (`CI=true`) and skip it loudly elsewhere.
pub fn available() -> bool {
    let python = |code: &str| {
        Command::new("/usr/bin/python3")
            .args(["-c", code])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing: Vec<&str> = [
        (
            Command::new("dbus-daemon")
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "dbus-daemon",
        ),
        (
            python("from PyQt6.QtNetwork import QNetworkInformation"),
            "python3-pyqt6",
        ),
        (
            python("import gi; gi.require_version('Gio', '2.0'); from gi.repository import Gio"),
            "python3-gi gir1.2-glib-2.0",
        ),
    ]
    .into_iter()
    .filter(|(ok, _)| !ok)
    .map(|(_, package)| package)
    .collect();
    if missing.is_empty() {
        return true;
    }
    let what = format!(
        "this test needs Debian's {} (.ci/run installs them)",
        missing.join(", ")
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{what}");
    eprintln!("SKIPPED: {what}");
    false
}

/// A private `dbus-daemon` with a system bus's configuration: deny by default, and
/// `contrib/dbus/org.freedesktop.NetworkManager.conf` with its user made root (the user the
/// test runs the service as).
pub struct Bus {
    child: Child,
    pub dir: PathBuf,
    /// `unix:path=...`, for `DBUS_SYSTEM_BUS_ADDRESS`.
    pub address: String,
}

impl Bus {
    pub fn start(dir: &Path) -> Bus {
        Bus::with_policy_user(dir, "root")
    }

    /// The same, with the policy file's user left as written (`netreach`, which does not
    /// exist here): root may not own the name.
    pub fn as_installed(dir: &Path) -> Bus {
        Bus::with_policy_user(dir, "netreach")
    }

    fn with_policy_user(dir: &Path, user: &str) -> Bus {
        let policy = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../contrib/dbus/org.freedesktop.NetworkManager.conf"
        ))
        .expect("read the policy file");
        assert!(policy.contains("user=\"netreach\""), "{policy}");
        let policy_path = dir.join("nm-policy.conf");
        std::fs::write(
            &policy_path,
            policy.replace("user=\"netreach\"", &format!("user=\"{user}\"")),
        )
        .unwrap();
        let socket = dir.join("system_bus_socket");
        let config = format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"#,
            socket = socket.display(),
            policy = policy_path.display()
        );
        let config_path = dir.join("system.conf");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config_path.display()))
            .args(["--nofork", "--nopidfile", "--print-address"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let lines = lines_of(child.stdout.take().unwrap());
        let address = match lines.recv_timeout(Duration::from_secs(10)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("dbus-daemon printed no address within 10 s");
            }
        };
        // `unix:path=...,guid=...`: the path is what clients need.
        let address = address.split(',').next().unwrap_or_default().to_owned();
        Bus {
            child,
            dir: dir.to_owned(),
            address,
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Who a client runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum User {
    Root,
    /// `nobody`, with no capability: what the bus lets everyone do.
    Nobody,
}

/// One of the client scripts, running; ended (standard input closed, then killed) on drop.
pub struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
    name: &'static str,
}

impl Client {
    /// The Qt 6 client (`QNetworkInformation`, backend `networkmanager`).
    pub fn qt(bus: &Bus) -> Client {
        Client::start(bus, "qt", QT, &[], User::Nobody)
    }

    /// The GLib client (`GNetworkMonitor`, `GIO_USE_NETWORK_MONITOR=networkmanager`).
    pub fn glib(bus: &Bus) -> Client {
        Client::start(bus, "glib", GLIB, &[], User::Nobody)
    }

    /// `bus_tool.py ARG`.
    pub fn tool(bus: &Bus, arg: &str, user: User) -> Client {
        Client::start(bus, "bus_tool", TOOL, &[arg], user)
    }

    fn start(bus: &Bus, name: &'static str, code: &str, args: &[&str], user: User) -> Client {
        let mut c = match user {
            User::Root => Command::new("/usr/bin/python3"),
            User::Nobody => {
                let mut c = Command::new("setpriv");
                c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                    .args(["--inh-caps=-all", "--bounding-set=-all"])
                    .arg("/usr/bin/python3");
                c
            }
        };
        c.arg("-c")
            .arg(code)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &bus.dir)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .env("GIO_USE_NETWORK_MONITOR", "networkmanager")
            .env("QT_QPA_PLATFORM", "offscreen")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = c.spawn().expect("start a client");
        let stdin = child.stdin.take();
        let lines = lines_of(child.stdout.take().unwrap());
        Client {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            name,
        }
    }

    /// The next line, as JSON; panics after [`WAIT`].
    pub fn next(&mut self) -> Value {
        match self.lines.recv_timeout(WAIT) {
            Ok(l) => {
                self.seen.push(l.clone());
                serde_json::from_str(&l).unwrap_or_else(|e| panic!("{}: {l:?}: {e}", self.name))
            }
            Err(_) => panic!(
                "the {} client printed nothing more within {WAIT:?}; it printed: {:#?}",
                self.name, self.seen
            ),
        }
    }

    /// Reads lines until one satisfies `want` (returned), for at most [`WAIT`]; panics naming
    /// `what` and every line seen.
    pub fn expect(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    let v: Value = serde_json::from_str(&l)
                        .unwrap_or_else(|e| panic!("{}: {l:?}: {e}", self.name));
                    if want(&v) {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "the {} client did not see {what} within {WAIT:?}; it printed: {:#?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// Writes a line to its standard input.
    pub fn send(&mut self, line: &str) {
        use std::io::Write;
        if let Some(s) = self.stdin.as_mut() {
            let _ = writeln!(s, "{line}");
            let _ = s.flush();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Closing standard input ends it; kill what has not ended within 5 s.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines of a pipe, read on a thread that ends with the pipe.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
