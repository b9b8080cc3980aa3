//! The Linux backend behind [`crate::sys::Backend`], in one of two modes: notified (a socket
//! subscribed to the kernel's notifications, [`BackendKind::Netlink`]) or polled (a full dump on
//! an interval, [`BackendKind::Polling`]). Both share the request socket (the dump and lookup
//! code of [`super::netlink`]) and the sysfs medium hints.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use netreach_core::decode::{Parsed, parse_datagram};
use netreach_core::machine::LookupFailure;
use netreach_core::reach::{
    LookupAnswer, RouteQuery, parse_route_lookup_answer, route_lookup_request,
};
use netreach_core::{Family, Medium, Route, Snapshot, Update, medium_hint_from_sysfs};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use std::sync::atomic::Ordering;

use super::netlink::{NlSocket, RECV_BUF, Recv};
use super::wake::Wake;
use crate::monitor::Counters;
use crate::sys::{Backend, BackendKind, DumpHook, Read};
use crate::{Error, Netns};

/// The receive buffer never grows beyond this.
const MAX_RCVBUF: usize = 64 << 20;
/// Lookups sent before their answers are read: the answers must fit the socket's buffer.
const PIPELINE: usize = 256;

pub(crate) fn open(
    kind: BackendKind,
    netns: &Netns,
    rcvbuf: usize,
    hook: Option<DumpHook>,
) -> Result<(Box<dyn Backend>, Snapshot), Error> {
    let sysfs = *netns == Netns::Current;
    let (mode, requests, snapshot) = match kind {
        BackendKind::Netlink => netns.run(|| {
            let events = NlSocket::notifications(rcvbuf)?;
            let mut requests = NlSocket::requests()?.with_dump_hook(hook.clone());
            let snapshot = requests.dump_all()?;
            let mode = Mode::Notified {
                events,
                rcvbuf,
                buf: vec![0; RECV_BUF],
            };
            Ok::<_, Error>((mode, requests, snapshot))
        })??,
        BackendKind::Polling { interval } => netns.run(|| {
            let mut requests = NlSocket::requests()?.with_dump_hook(hook.clone());
            let snapshot = requests.dump_all()?;
            let interval = interval.max(Duration::from_millis(1));
            let mode = Mode::Polled {
                interval,
                next: Instant::now() + interval,
            };
            Ok::<_, Error>((mode, requests, snapshot))
        })??,
    };
    let backend = Linux {
        mode,
        requests: Requests::new(requests),
        sysfs,
    };
    Ok((Box::new(backend), snapshot))
}

/// The request socket: dumps and pipelined route lookups.
struct Requests {
    sock: NlSocket,
    buf: Vec<u8>,
    /// Lookups sent and not yet answered, by netlink sequence number → index in the batch.
    inflight: HashMap<u32, usize>,
    big_buffer: bool,
}

impl Requests {
    fn new(sock: NlSocket) -> Requests {
        Requests {
            sock,
            buf: vec![0; RECV_BUF],
            inflight: HashMap::new(),
            big_buffer: false,
        }
    }

    fn dump_routes(&mut self, family: Family, interface: Option<u32>) -> Result<Vec<Route>, Error> {
        match interface {
            Some(index) => self.sock.dump_interface_routes(family, index),
            None => self.sock.dump_routes(family),
        }
    }

    /// Sends the lookups in pipelined slices, then reads their answers. Every query gets
    /// exactly one answer: the kernel's, or a transport failure when sending or receiving
    /// failed (which is no verdict on the route).
    fn lookup(
        &mut self,
        queries: &[RouteQuery],
        out: &mut Vec<Result<LookupAnswer, LookupFailure>>,
    ) {
        if !self.big_buffer {
            // Room for a pipeline of answers.
            self.sock.set_rcvbuf(4 << 20);
            self.big_buffer = true;
        }
        let base = out.len();
        out.resize(
            base + queries.len(),
            Err(LookupFailure::Transport(libc_eio())),
        );
        for (chunk_start, chunk) in (0..).step_by(PIPELINE).zip(queries.chunks(PIPELINE)) {
            self.inflight.clear();
            for (i, query) in chunk.iter().enumerate() {
                let seq = self.sock.next_seq();
                match self
                    .sock
                    .send_bytes(&route_lookup_request(seq, query, true))
                {
                    Ok(()) => {
                        self.inflight.insert(seq, base + chunk_start + i);
                    }
                    Err(e) => {
                        out[base + chunk_start + i] = Err(LookupFailure::Transport(errno_of(&e)))
                    }
                }
            }
            while !self.inflight.is_empty() {
                let n = match self.sock.recv_answer(&mut self.buf) {
                    Ok(n) => n,
                    Err(e) => {
                        let errno = errno_of(&e);
                        for (_, at) in self.inflight.drain() {
                            out[at] = Err(LookupFailure::Transport(errno));
                        }
                        break;
                    }
                };
                let datagram = &self.buf[..n];
                let Some(seq) = datagram
                    .get(8..12)
                    .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                else {
                    continue;
                };
                if let Some(at) = self.inflight.get(&seq).copied() {
                    if let Some(answer) = parse_route_lookup_answer(datagram, seq) {
                        self.inflight.remove(&seq);
                        out[at] = Ok(answer);
                    }
                }
            }
        }
    }
}

fn errno_of(e: &Error) -> i32 {
    use std::error::Error as _;
    e.source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error)
        .unwrap_or(libc_eio())
}

/// `EIO`, for a failure that carries no errno.
const fn libc_eio() -> i32 {
    5
}

/// Reads what sysfs says about the medium of interface `name` (caller's namespace only).
fn sysfs_hint(name: &str) -> Option<Medium> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    let dir = std::path::Path::new("/sys/class/net").join(name);
    let uevent = std::fs::read_to_string(dir.join("uevent")).unwrap_or_default();
    let wireless = dir.join("wireless").exists() || dir.join("phy80211").exists();
    medium_hint_from_sysfs(&uevent, wireless)
}

fn timespec(deadline: Option<Instant>) -> Option<Timespec> {
    deadline.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        Timespec {
            tv_sec: left.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        }
    })
}

fn sleep(fds: &mut [PollFd<'_>], deadline: Option<Instant>) -> Result<(), Error> {
    match poll(fds, timespec(deadline).as_ref()) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(Error::socket("poll", e)),
    }
}

/// How a [`Linux`] backend learns of changes.
enum Mode {
    /// A socket subscribed to the kernel's notifications.
    Notified {
        events: NlSocket,
        rcvbuf: usize,
        buf: Vec<u8>,
    },
    /// A full dump every `interval`; `next` is when the next one is due.
    Polled { interval: Duration, next: Instant },
}

/// The Linux backend: the request socket (dumps, lookups) and sysfs are shared by both modes.
struct Linux {
    mode: Mode,
    requests: Requests,
    /// The namespace watched is the caller's, so sysfs describes its interfaces.
    sysfs: bool,
}

fn decode(datagram: &[u8], out: &mut Vec<Update>, counters: &Counters) {
    for msg in parse_datagram(datagram) {
        match msg {
            Ok(m) => {
                counters.messages.fetch_add(1, Ordering::Relaxed);
                if let Parsed::Update(u) = m.parsed {
                    out.push(u);
                }
            }
            Err(e) => {
                counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "skipping undecodable kernel message");
            }
        }
    }
}

impl Backend for Linux {
    fn wait(&mut self, waker: &Wake, deadline: Option<Instant>) -> Result<(), Error> {
        let woken = match &self.mode {
            Mode::Notified { events, .. } => {
                let mut fds = [
                    PollFd::new(events, PollFlags::IN),
                    PollFd::new(waker, PollFlags::IN),
                ];
                sleep(&mut fds, deadline)?;
                !fds[1].revents().is_empty()
            }
            Mode::Polled { next, .. } => {
                let deadline = Some(deadline.map_or(*next, |d| d.min(*next)));
                let mut fds = [PollFd::new(waker, PollFlags::IN)];
                sleep(&mut fds, deadline)?;
                !fds[0].revents().is_empty()
            }
        };
        if woken {
            waker.drain();
        }
        Ok(())
    }

    fn read(
        &mut self,
        out: &mut Vec<Update>,
        max: usize,
        counters: &Counters,
    ) -> Result<Read, Error> {
        match &mut self.mode {
            Mode::Notified {
                events,
                rcvbuf,
                buf,
            } => loop {
                match events.recv(buf)? {
                    Recv::Data(n) => decode(&buf[..n], out, counters),
                    Recv::Empty => return Ok(Read::Drained),
                    Recv::Overflow => {
                        // A bigger buffer for next time; what is still queued predates the
                        // dump that follows, which supersedes it.
                        if *rcvbuf < MAX_RCVBUF {
                            *rcvbuf *= 2;
                            events.set_rcvbuf(*rcvbuf);
                        }
                        while let Recv::Data(_) = events.recv(buf)? {}
                        out.clear();
                        return Ok(Read::Overflow);
                    }
                }
                if out.len() >= max {
                    return Ok(Read::More);
                }
            },
            Mode::Polled { interval, next } => {
                if Instant::now() < *next {
                    return Ok(Read::Drained);
                }
                // The next poll is an interval after this one ends, so a slow dump never
                // piles up.
                let state = self.requests.sock.dump_all();
                *next = Instant::now() + *interval;
                match state {
                    Ok(state) => {
                        counters.messages.fetch_add(
                            (state.interfaces().len()
                                + state.addresses().len()
                                + state.routes().len()) as u64,
                            Ordering::Relaxed,
                        );
                        Ok(Read::State(state))
                    }
                    // A dump that failed (interrupted by changes again and again, say) is tried
                    // again at the next poll: the model stays as it was, nothing is lost.
                    Err(e) => {
                        counters.poll_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "polling dump failed; trying again at the next poll");
                        Ok(Read::Drained)
                    }
                }
            }
        }
    }

    fn dump(&mut self) -> Result<Snapshot, Error> {
        self.requests.sock.dump_all()
    }

    fn dump_routes(&mut self, family: Family, interface: Option<u32>) -> Result<Vec<Route>, Error> {
        self.requests.dump_routes(family, interface)
    }

    fn lookup_routes(
        &mut self,
        queries: &[RouteQuery],
        out: &mut Vec<Result<LookupAnswer, LookupFailure>>,
    ) {
        self.requests.lookup(queries, out);
    }

    fn medium_hint(&self, name: &str) -> Option<Medium> {
        self.sysfs.then(|| sysfs_hint(name)).flatten()
    }

    fn has_medium_hints(&self) -> bool {
        self.sysfs
    }

    fn rcvbuf(&self) -> usize {
        match &self.mode {
            Mode::Notified { events, .. } => events.rcvbuf(),
            Mode::Polled { .. } => 0,
        }
    }
}
