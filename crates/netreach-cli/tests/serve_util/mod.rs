//! The parts the `serve` tests share: a running `netreach serve` (started by the test, ended
//! by SIGTERM when dropped), a tiny blocking HTTP/1.1 client over its Unix socket, and an SSE
//! reader that decodes chunked bodies. Every wait is bounded.

#![allow(dead_code)] // Each test file uses part of it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `netreach serve` on a Unix socket in its own scratch directory.
pub struct Serve {
    pub child: Child,
    pub dir: PathBuf,
    pub socket: PathBuf,
    /// The addresses it printed (`listening on ...`).
    pub listening: Vec<String>,
    /// The lines it prints on stdout after those.
    pub out: std::sync::mpsc::Receiver<String>,
}

/// A scratch directory under the system's temporary one, removed by [`Serve`]'s drop.
pub fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "netreach-serve-{}-{tag}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A scratch directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Serve {
    /// `netreach [BACKEND] --netns NS serve --listen unix:DIR/s.sock ARGS...`; waits (at most
    /// 10 s) for its `listening on` lines.
    pub fn start(netns: &str, args: &[&str]) -> Serve {
        let mut c = Command::new(env!("CARGO_BIN_EXE_netreach"));
        c.args(crate::common::backend_args());
        c.args(["--netns", netns]);
        Serve::spawn(c, args)
    }

    /// The same, with the command given (to run it inside a namespace with `ip netns exec`).
    pub fn spawn(c: Command, args: &[&str]) -> Serve {
        Serve::spawn_in(scratch("srv"), c, args)
    }

    /// The same, with the socket in `dir`.
    pub fn spawn_in(dir: PathBuf, mut c: Command, args: &[&str]) -> Serve {
        let socket = dir.join("s.sock");
        let listen = format!("unix:{}", socket.display());
        c.args(["serve", "--listen", &listen])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = c.spawn().expect("start netreach serve");
        let out = child.stdout.take().unwrap();
        let want = 1 + args.iter().filter(|a| **a == "--listen").count();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut listening = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while listening.len() < want {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => listening.extend(l.strip_prefix("listening on ").map(str::to_owned)),
                Err(_) => {
                    let _ = child.kill();
                    panic!("netreach serve did not say where it listens: {listening:?}");
                }
            }
        }
        Serve {
            child,
            dir,
            socket,
            listening,
            out: rx,
        }
    }

    /// Waits (at most 10 s) for a line on stdout starting with `prefix`.
    pub fn wait_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => {}
                Err(_) => panic!("netreach serve printed no line starting with {prefix:?}"),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A GET over the Unix socket: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        get_with(&self.socket, path, &[])
    }

    /// SIGTERM, then waits (at most 10 s) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("netreach serve did not end within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The resident set size of the service, in kB.
    pub fn rss_kb(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            signal(self.child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid}");
}

/// Connects to the socket with 10 s read and write timeouts.
pub fn connect(socket: &Path) -> UnixStream {
    let s = UnixStream::connect(socket).expect("connect to netreach serve");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A GET with extra header lines; `Connection: close`, so the body ends at EOF.
pub fn get_with(socket: &Path, path: &str, headers: &[&str]) -> (u16, String) {
    let mut s = connect(socket);
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: netreach\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

/// Status and body of a whole response (with `content-length`).
pub fn parse_response(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// One SSE event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: Option<u64>,
    pub event: String,
    pub data: String,
}

/// A reader of `/v1/events`: the response head, then the chunked body split into events.
pub struct Sse {
    reader: BufReader<UnixStream>,
    /// Decoded body bytes not yet split into events.
    pending: Vec<u8>,
    /// Comments seen (`: ...`).
    pub comments: Vec<String>,
}

impl Sse {
    /// Sends the request and reads the head; panics unless it is a 200 event stream.
    pub fn open(socket: &Path, path: &str, headers: &[&str]) -> Sse {
        let s = Sse::send(socket, path, headers);
        s.head()
    }

    /// Sends the request only (for many clients at once: send all, then read).
    pub fn send(socket: &Path, path: &str, headers: &[&str]) -> SentSse {
        let mut s = connect(socket);
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: netreach\r\n");
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        SentSse(s)
    }

    /// The next event (comments are collected, not returned); `None` at the end of the stream.
    pub fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = find(&self.pending, b"\n\n") {
                let block: Vec<u8> = self.pending.drain(..end + 2).collect();
                let block = String::from_utf8(block).unwrap();
                let mut e = Event {
                    id: None,
                    event: String::new(),
                    data: String::new(),
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        self.comments.push(c.trim().to_owned());
                    } else if let Some((k, v)) = line.split_once(": ") {
                        any = true;
                        match k {
                            "id" => e.id = Some(v.parse().unwrap()),
                            "event" => e.event = v.to_owned(),
                            "data" => e.data = v.to_owned(),
                            other => panic!("unknown SSE field {other}"),
                        }
                    }
                }
                if any {
                    return Some(e);
                }
                continue;
            }
            // One chunk: size line, data, CRLF.
            let mut size = String::new();
            if self.reader.read_line(&mut size).ok()? == 0 {
                return None;
            }
            let n = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
            if n == 0 {
                return None;
            }
            let mut chunk = vec![0; n + 2];
            self.reader.read_exact(&mut chunk).ok()?;
            chunk.truncate(n);
            self.pending.extend(chunk);
        }
    }

    /// Events until one of type `kind` (included), at most `limit`.
    pub fn until(&mut self, kind: &str, limit: usize) -> Vec<Event> {
        let mut out = Vec::new();
        for _ in 0..limit {
            let e = self
                .next()
                .unwrap_or_else(|| panic!("stream ended before {kind}: {out:?}"));
            let done = e.event == kind;
            out.push(e);
            if done {
                return out;
            }
        }
        panic!("no {kind} in {limit} events: {out:?}");
    }
}

/// A request sent, its answer not read yet.
pub struct SentSse(pub UnixStream);

impl SentSse {
    pub fn head(self) -> Sse {
        let mut reader = BufReader::new(self.0);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        let mut chunked = false;
        loop {
            let mut l = String::new();
            reader.read_line(&mut l).unwrap();
            if l.trim().is_empty() {
                break;
            }
            chunked |= l
                .to_ascii_lowercase()
                .starts_with("transfer-encoding: chunked");
            assert!(
                !l.to_ascii_lowercase().starts_with("content-type:")
                    || l.contains("text/event-stream"),
                "{l}"
            );
        }
        assert!(status.contains(" 200 "), "{status}");
        assert!(chunked, "an event stream is chunked");
        Sse {
            reader,
            pending: Vec::new(),
            comments: Vec::new(),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Fails loudly when a tool the test needs is missing.
pub fn require_tool(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "this test needs `{tool}` (Debian package `{package}`; .ci/run installs it)"
    );
}
