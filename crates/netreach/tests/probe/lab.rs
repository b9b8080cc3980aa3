//! The probe tests' laboratory: namespaces that clean up after themselves, a two-uplink
//! topology, and tiny HTTP servers running inside a namespace.
//!
//! Every address is in 198.18.0.0/15 or 2001:db8::/32, inside namespaces the test made; nothing
//! here sends traffic anywhere else.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The endpoint address: the same in both server namespaces, so only the interface the probe
/// is bound to decides which server answers.
pub const ENDPOINT_V4: &str = "198.18.100.1";
pub const ENDPOINT_V6: &str = "2001:db8:100::1";

/// The healthy answer, with the header that proves it came from the test endpoint.
pub const NO_CONTENT: &[u8] = b"HTTP/1.1 204 No Content\r\nX-Probe: genuine\r\n\r\n";

/// Runs `ip` with `args`; panics with its output if it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace named `nr-probe-<pid>-<n>`, deleted on drop (also on panic), together
/// with its `/etc/netns/<name>/` files if any were written.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new() -> Netns {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("nr-probe-{}-{n}", std::process::id());
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <name> args…`.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// Writes `/etc/netns/<name>/<file>`, which `ip netns exec` bind-mounts over `/etc/<file>`.
    pub fn write_etc(&self, file: &str, contents: &str) {
        let dir = self.etc_dir();
        std::fs::create_dir_all(&dir).expect("create /etc/netns dir");
        std::fs::write(dir.join(file), contents).expect("write /etc/netns file");
    }

    fn etc_dir(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.name)
    }

    /// Runs `f` on a thread that has moved into this namespace, and returns its result.
    /// Sockets created there stay in this namespace for good.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        netreach::Netns::named(self.name.clone())
            .and_then(|ns| ns.run(f))
            .expect("enter the test namespace")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(self.etc_dir());
    }
}

/// Moves the calling thread into the network namespace at `path`.
fn enter(path: &str) {
    let file = File::open(path).expect("open netns");
    move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&file),
        Some(LinkNameSpaceType::Network),
    )
    .expect("setns");
}

/// A client with two uplinks, each to its own server namespace:
///
/// ```text
/// client  up0 198.18.1.1/24 2001:db8:1::1/64 ── dn0 198.18.1.2 2001:db8:1::2  server0
///         up1 198.18.2.1/24 2001:db8:2::1/64 ── dn0 198.18.2.2 2001:db8:2::2  server1
/// ```
///
/// Both servers also hold the endpoint addresses ([`ENDPOINT_V4`], [`ENDPOINT_V6`]) on `lo`,
/// and the client has a default route of each family through each uplink (up0 preferred).
pub struct Lab {
    // Fields drop in order: servers (in the tests) before namespaces.
    pub client: Netns,
    pub servers: [Netns; 2],
}

impl Lab {
    pub fn new() -> Lab {
        let client = Netns::new();
        let servers = [Netns::new(), Netns::new()];
        for (i, server) in servers.iter().enumerate() {
            let up = format!("up{i}");
            let net = i + 1;
            // An index of its own for the client's end (see `common::Ns::veth_to`): with both
            // ends at index 2 of fresh namespaces, linkwatch takes up to a second to report the
            // carrier, and the server drops IPv6 packets (neighbour solicitations too) until
            // then, so each test's first IPv6 connection took a second.
            let index = (100 + i).to_string();
            client.ip(&[
                "link",
                "add",
                &up,
                "index",
                &index,
                "type",
                "veth",
                "peer",
                "name",
                "dn0",
                "netns",
                server.name(),
            ]);
            let (c4, s4) = (format!("198.18.{net}.1/24"), format!("198.18.{net}.2/24"));
            let (c6, s6) = (
                format!("2001:db8:{net}::1/64"),
                format!("2001:db8:{net}::2/64"),
            );
            client.ip(&["addr", "add", &c4, "dev", &up]);
            client.ip(&["addr", "add", &c6, "dev", &up, "nodad"]);
            client.ip(&["link", "set", &up, "up"]);
            server.ip(&["addr", "add", &s4, "dev", "dn0"]);
            server.ip(&["addr", "add", &s6, "dev", "dn0", "nodad"]);
            server.ip(&["link", "set", "dn0", "up"]);
            server.ip(&["addr", "add", &format!("{ENDPOINT_V4}/32"), "dev", "lo"]);
            server.ip(&[
                "addr",
                "add",
                &format!("{ENDPOINT_V6}/128"),
                "dev",
                "lo",
                "nodad",
            ]);
            let metric = format!("{}", 100 * net);
            let (gw4, gw6) = (format!("198.18.{net}.2"), format!("2001:db8:{net}::2"));
            client.ip(&[
                "route", "add", "default", "via", &gw4, "dev", &up, "metric", &metric,
            ]);
            client.ip(&[
                "-6", "route", "add", "default", "via", &gw6, "dev", &up, "metric", &metric,
            ]);
        }
        Lab { client, servers }
    }
}

/// A connection to answer on (the request head was already read and recorded).
pub struct Conn {
    pub stream: TcpStream,
    stop: Arc<AtomicBool>,
}

impl Conn {
    /// Writes `bytes`; errors (the client hung up) are ignored.
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Keeps the connection open without answering until the server stops (at most 30 s).
    pub fn hold(&self) {
        let until = Instant::now() + Duration::from_secs(30);
        while !self.stop.load(Ordering::Relaxed) && Instant::now() < until {
            thread::sleep(Duration::from_millis(20));
        }
    }
}

type Handler = Arc<dyn Fn(Conn) + Send + Sync>;

/// Whether the server reads the request head before calling the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    Read,
    Skip,
}

/// A TCP server listening inside a namespace; each connection is handled on its own thread,
/// after the request head was read. Records when it accepted each connection, so a test can
/// wait for the next one ([`Server::wait_accepted`]) instead of for a while. Stops (and joins
/// its accept loop) on drop.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepts: Arc<Accepts>,
    requests: Arc<Mutex<Vec<String>>>,
    /// A handle on the listening socket, to wake the accept loop on drop.
    listener: TcpListener,
    accept: Option<JoinHandle<()>>,
}

/// When each connection was accepted, and a condition variable to wait for the next.
#[derive(Default)]
struct Accepts {
    times: Mutex<Vec<Instant>>,
    more: Condvar,
}

impl Server {
    /// Listens on `addr` inside `ns`, answering each request with `handler`.
    pub fn start(ns: &Netns, addr: &str, handler: impl Fn(Conn) + Send + Sync + 'static) -> Server {
        Server::spawn(ns, addr, Head::Read, Arc::new(handler))
    }

    /// Like [`start`](Self::start), but hands over the connection at once, before any byte
    /// was read (for peers that send no HTTP, like a TLS client).
    pub fn start_raw(
        ns: &Netns,
        addr: &str,
        handler: impl Fn(Conn) + Send + Sync + 'static,
    ) -> Server {
        Server::spawn(ns, addr, Head::Skip, Arc::new(handler))
    }

    fn spawn(ns: &Netns, addr: &str, head: Head, handler: Handler) -> Server {
        let addr: SocketAddr = addr.parse().expect("server address");
        let stop = Arc::new(AtomicBool::new(false));
        let accepts = Arc::new(Accepts::default());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let path = format!("/run/netns/{}", ns.name());
        let (ready_tx, ready_rx) = mpsc::channel();
        let accept = {
            let (stop, accepts, requests) = (stop.clone(), accepts.clone(), requests.clone());
            thread::spawn(move || {
                enter(&path);
                let listener = TcpListener::bind(addr).expect("bind test server");
                ready_tx
                    .send(listener.try_clone().expect("clone the listener"))
                    .expect("ready");
                // `accept` fails once the listener is shut down (see `drop`).
                while let Ok((stream, _)) = listener.accept() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // Recorded before the handler runs, so before any answer is sent: a
                    // client that got one was counted.
                    accepts.times.lock().unwrap().push(Instant::now());
                    accepts.more.notify_all();
                    let (handler, stop, requests) =
                        (handler.clone(), stop.clone(), requests.clone());
                    thread::spawn(move || serve(stream, head, handler, stop, requests));
                }
            })
        };
        let listener = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("test server did not start");
        Server {
            addr,
            stop,
            accepts,
            requests,
            listener,
            accept: Some(accept),
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepts.times.lock().unwrap().len()
    }

    /// Waits until `n` connections in all were accepted, failing after `timeout`; returns when
    /// each connection so far was accepted.
    pub fn wait_accepted(&self, n: usize, timeout: Duration) -> Vec<Instant> {
        let times = self.accepts.times.lock().unwrap();
        let (times, waited) = self
            .accepts
            .more
            .wait_timeout_while(times, timeout, |t| t.len() < n)
            .unwrap();
        assert!(
            !waited.timed_out(),
            "{}: {} connections within {timeout:?}, not {n}",
            self.addr,
            times.len()
        );
        times.clone()
    }

    /// Request heads received so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Shutting a listening socket down wakes a thread blocked in `accept` (Linux).
        let _ = rustix::net::shutdown(&self.listener, rustix::net::Shutdown::Read);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Reads the request head (bounded), records it, and hands the connection to the handler.
fn serve(
    mut stream: TcpStream,
    head_mode: Head,
    handler: Handler,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while head_mode == Head::Read
        && !head.windows(4).any(|w| w == b"\r\n\r\n")
        && head.len() < 16 * 1024
    {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    if let Ok(mut r) = requests.lock() {
        r.push(String::from_utf8_lossy(&head).into_owned());
    }
    handler(Conn { stream, stop });
}

/// The test server's TLS configuration: a certificate for 198.18.1.2, 2001:db8:1::2 and
/// `probe.test`, issued by a test CA whose key was thrown away (see `probe/tls/`).
pub fn tls_server_config() -> Arc<rustls::ServerConfig> {
    let cert = CertificateDer::from_pem_slice(include_bytes!("tls/server.pem")).unwrap();
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("tls/server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    Arc::new(config)
}

/// Answers `204` over TLS.
pub fn tls_no_content(config: &Arc<rustls::ServerConfig>, c: Conn) {
    let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, c.stream);
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = tls.write_all(NO_CONTENT);
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
