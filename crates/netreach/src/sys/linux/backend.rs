//! The two Linux backends behind [`crate::sys::Backend`]: `Netlink` (a socket subscribed to the
//! kernel's notifications, and one for requests) and `Polling` (the request socket alone, and a
//! full dump on an interval). Both share the dump and lookup code of [`super::netlink`].

use std::collections::HashMap;
use std::os::fd::AsFd;
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
use crate::sys::{Backend, BackendKind, Read};
use crate::{Error, Netns};

/// The receive buffer never grows beyond this.
const MAX_RCVBUF: usize = 64 << 20;
/// Lookups sent before their answers are read: the answers must fit the socket's buffer.
const PIPELINE: usize = 256;

pub(crate) fn open(
    kind: BackendKind,
    netns: &Netns,
    rcvbuf: usize,
) -> Result<(Box<dyn Backend>, Snapshot), Error> {
    let sysfs = *netns == Netns::Current;
    match kind {
        BackendKind::Netlink => {
            let (events, requests, snapshot) = netns.run(|| {
                let events = NlSocket::notifications(rcvbuf)?;
                let mut requests = NlSocket::requests()?;
                let snapshot = requests.dump_all()?;
                Ok::<_, Error>((events, requests, snapshot))
            })??;
            let backend = Netlink {
                events,
                rcvbuf,
                requests: Requests::new(requests),
                buf: vec![0; RECV_BUF],
                sysfs,
            };
            Ok((Box::new(backend), snapshot))
        }
        BackendKind::Polling { interval } => {
            let (requests, snapshot) = netns.run(|| {
                let mut requests = NlSocket::requests()?;
                let snapshot = requests.dump_all()?;
                Ok::<_, Error>((requests, snapshot))
            })??;
            let backend = Polling {
                interval: interval.max(Duration::from_millis(1)),
                next: Instant::now() + interval,
                requests: Requests::new(requests),
                sysfs,
            };
            Ok((Box::new(backend), snapshot))
        }
    }
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

/// rtnetlink notifications.
struct Netlink {
    events: NlSocket,
    rcvbuf: usize,
    requests: Requests,
    buf: Vec<u8>,
    sysfs: bool,
}

impl Netlink {
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
}

impl Backend for Netlink {
    fn wait(&mut self, waker: &Wake, deadline: Option<Instant>) -> Result<(), Error> {
        let mut fds = [
            PollFd::new(&self.events, PollFlags::IN),
            PollFd::new(waker, PollFlags::IN),
        ];
        sleep(&mut fds, deadline)?;
        if !fds[1].revents().is_empty() {
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
        loop {
            match self.events.recv(&mut self.buf)? {
                Recv::Data(n) => Netlink::decode(&self.buf[..n], out, counters),
                Recv::Empty => return Ok(Read::Drained),
                Recv::Overflow => {
                    // A bigger buffer for next time; what is still queued predates the dump
                    // that follows, which supersedes it.
                    if self.rcvbuf < MAX_RCVBUF {
                        self.rcvbuf *= 2;
                        self.events.set_rcvbuf(self.rcvbuf);
                    }
                    while let Recv::Data(_) = self.events.recv(&mut self.buf)? {}
                    out.clear();
                    return Ok(Read::Overflow);
                }
            }
            if out.len() >= max {
                return Ok(Read::More);
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
        self.events.rcvbuf()
    }
}

/// A full dump on an interval.
struct Polling {
    interval: Duration,
    next: Instant,
    requests: Requests,
    sysfs: bool,
}

impl Backend for Polling {
    fn wait(&mut self, waker: &Wake, deadline: Option<Instant>) -> Result<(), Error> {
        let deadline = Some(deadline.map_or(self.next, |d| d.min(self.next)));
        let mut fds = [PollFd::new(waker, PollFlags::IN)];
        sleep(&mut fds, deadline)?;
        if !fds[0].revents().is_empty() {
            waker.drain();
        }
        Ok(())
    }

    fn read(
        &mut self,
        _out: &mut Vec<Update>,
        _max: usize,
        counters: &Counters,
    ) -> Result<Read, Error> {
        let now = Instant::now();
        if now < self.next {
            return Ok(Read::Drained);
        }
        // The next poll is an interval after this one ends, so a slow dump never piles up.
        let state = self.requests.sock.dump_all();
        self.next = Instant::now() + self.interval;
        let state = match state {
            Ok(state) => state,
            // A dump that failed (interrupted by changes again and again, say) is tried again
            // at the next poll: the model stays as it was, nothing is lost.
            Err(e) => {
                counters.poll_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "polling dump failed; trying again at the next poll");
                return Ok(Read::Drained);
            }
        };
        counters.messages.fetch_add(
            (state.interfaces().len() + state.addresses().len() + state.routes().len()) as u64,
            Ordering::Relaxed,
        );
        Ok(Read::State(state))
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
}

impl AsFd for Netlink {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.events.as_fd()
    }
}
