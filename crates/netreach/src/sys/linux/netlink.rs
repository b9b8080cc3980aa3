//! The rtnetlink sockets: one subscribed to change notifications, one for requests (dumps and
//! route lookups). Sending, receiving and the dump loop live here; decoding is the core's.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{LinkAttribute, LinkExtentMask, LinkMessage};
use netlink_packet_route::route::{RouteAttribute, RouteMessage};
use netlink_packet_route::rule::RuleMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use netreach_core::decode::{Parsed, parse_datagram};
use netreach_core::{Family, Route, Snapshot, Update};
use rustix::io::Errno;
use rustix::net::RecvFlags;

use crate::Error;
use crate::sys::DumpHook;

/// Multicast groups (`RTNLGRP_*`) the monitor listens to.
const GROUPS: [u32; 7] = [
    1,  // RTNLGRP_LINK
    5,  // RTNLGRP_IPV4_IFADDR
    7,  // RTNLGRP_IPV4_ROUTE
    8,  // RTNLGRP_IPV4_RULE
    9,  // RTNLGRP_IPV6_IFADDR
    11, // RTNLGRP_IPV6_ROUTE
    19, // RTNLGRP_IPV6_RULE
];

/// Receive buffer large enough for the biggest datagram the kernel sends (dump parts are at
/// most 32 KiB; notifications are small).
pub(crate) const RECV_BUF: usize = 64 * 1024;

/// How many times an interrupted dump is retried before giving up.
const DUMP_ATTEMPTS: u32 = 32;

/// What one receive on the notification socket gave.
pub(crate) enum Recv {
    /// A datagram of this many bytes is in the buffer.
    Data(usize),
    /// Nothing more to read now.
    Empty,
    /// The socket's receive queue overflowed: notifications were lost.
    Overflow,
}

/// A netlink socket, opened in whatever namespace the calling thread is in.
pub(crate) struct NlSocket {
    sock: Socket,
    seq: u32,
    /// A test's hook between the parts of a dump.
    hook: Option<DumpHook>,
}

impl std::fmt::Debug for NlSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NlSocket")
            .field("sock", &self.sock)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl NlSocket {
    fn open() -> Result<NlSocket, Error> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| Error::socket("socket", e))?;
        sock.bind_auto().map_err(|e| Error::socket("bind", e))?;
        // Strict checking makes the kernel honour the family in dump requests.
        let _ = sock.set_netlink_get_strict_chk(true);
        Ok(NlSocket {
            sock,
            seq: 0,
            hook: None,
        })
    }

    /// A non-blocking socket subscribed to link, address, route and rule changes, with a
    /// receive buffer of at least `rcvbuf` bytes.
    pub(crate) fn notifications(rcvbuf: usize) -> Result<NlSocket, Error> {
        let s = NlSocket::open()?;
        s.sock
            .set_non_blocking(true)
            .map_err(|e| Error::socket("set non-blocking", e))?;
        for g in GROUPS {
            s.sock
                .add_membership(g)
                .map_err(|e| Error::socket("join multicast group", e))?;
        }
        s.set_rcvbuf(rcvbuf);
        Ok(s)
    }

    /// A blocking socket for dumps and lookups.
    pub(crate) fn requests() -> Result<NlSocket, Error> {
        NlSocket::open()
    }

    /// The same socket, with a test's `hook` to run between dump parts.
    pub(crate) fn with_dump_hook(mut self, hook: Option<DumpHook>) -> NlSocket {
        self.hook = hook;
        self
    }

    /// Sets the receive buffer, beyond `rmem_max` when privileged (`SO_RCVBUFFORCE`).
    pub(crate) fn set_rcvbuf(&self, bytes: usize) {
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&self.sock, bytes).is_err() {
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&self.sock, bytes);
        }
    }

    /// The receive buffer size the kernel actually granted.
    pub(crate) fn rcvbuf(&self) -> usize {
        rustix::net::sockopt::socket_recv_buffer_size(&self.sock).unwrap_or(0)
    }

    /// One non-blocking receive into `buf` (whose length is the maximum read).
    pub(crate) fn recv(&self, buf: &mut [u8]) -> Result<Recv, Error> {
        loop {
            return match rustix::net::recv(&self.sock, &mut *buf, RecvFlags::DONTWAIT) {
                Ok((0, _)) => Ok(Recv::Empty),
                Ok((n, _)) => Ok(Recv::Data(n.min(buf.len()))),
                Err(Errno::AGAIN) => Ok(Recv::Empty),
                Err(Errno::NOBUFS) => Ok(Recv::Overflow),
                Err(Errno::INTR) => continue,
                Err(e) => Err(Error::socket("recv", e)),
            };
        }
    }

    /// A blocking receive into `buf`.
    fn recv_blocking(&self, buf: &mut [u8]) -> Result<usize, Error> {
        loop {
            return match rustix::net::recv(&self.sock, &mut *buf, RecvFlags::empty()) {
                Ok((n, _)) => Ok(n.min(buf.len())),
                Err(Errno::INTR) => continue,
                // A request socket is not subscribed, but the kernel may still report an
                // overrun of its own answers; the caller retries the dump.
                Err(Errno::NOBUFS) => Err(Error::DumpInterrupted {
                    what: "socket",
                    attempts: 1,
                }),
                Err(e) => Err(Error::socket("recv", e)),
            };
        }
    }

    /// Sends one request message and returns its sequence number.
    pub(crate) fn send(&mut self, inner: RouteNetlinkMessage, flags: u16) -> Result<u32, Error> {
        self.seq = self.seq.wrapping_add(1).max(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(inner));
        msg.finalize();
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        self.send_bytes(&buf)?;
        Ok(self.seq)
    }

    /// Sends an already serialised request (whose sequence number the caller chose).
    pub(crate) fn send_bytes(&self, buf: &[u8]) -> Result<(), Error> {
        self.sock
            .send_to(buf, &SocketAddr::new(0, 0), 0)
            .map_err(|e| Error::socket("send", e))?;
        Ok(())
    }

    /// Next sequence number for a request the caller serialises itself.
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// A blocking receive of one datagram, for request/answer exchanges.
    pub(crate) fn recv_answer(&self, buf: &mut [u8]) -> Result<usize, Error> {
        loop {
            return match rustix::net::recv(&self.sock, &mut *buf, RecvFlags::empty()) {
                Ok((n, _)) => Ok(n.min(buf.len())),
                Err(Errno::INTR) => continue,
                Err(e) => Err(Error::socket("recv", e)),
            };
        }
    }

    /// Dumps one kind of object. Returns the updates, or `Ok(None)` when the kernel flagged the
    /// dump as interrupted (`NLM_F_DUMP_INTR`) and it must be redone.
    fn dump_once(
        &mut self,
        request: RouteNetlinkMessage,
        what: &'static str,
        attempt: u32,
        out: &mut Vec<Update>,
    ) -> Result<bool, Error> {
        let seq = self.send(request, NLM_F_REQUEST | NLM_F_DUMP)?;
        let mut buf = vec![0u8; RECV_BUF];
        let mut interrupted = false;
        loop {
            let n = match self.recv_blocking(&mut buf) {
                Ok(n) => n,
                Err(Error::DumpInterrupted { .. }) => return Ok(false),
                Err(e) => return Err(e),
            };
            if let Some(hook) = &self.hook {
                hook(what, attempt);
            }
            for msg in parse_datagram(&buf[..n]) {
                let msg = match msg {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, what, "skipping undecodable dump message");
                        continue;
                    }
                };
                if msg.header.sequence_number != seq {
                    continue; // a late answer to an earlier request
                }
                interrupted |= msg.dump_interrupted();
                match msg.parsed {
                    Parsed::Update(u) => out.push(u),
                    Parsed::Done => return Ok(!interrupted),
                    Parsed::Error { code: 0 } => {}
                    Parsed::Error { code } => {
                        return Err(Error::Kernel {
                            request: what,
                            source: io::Error::from_raw_os_error(-code),
                        });
                    }
                    Parsed::Ignored => {}
                }
            }
        }
    }

    /// Dumps with retries on interruption.
    fn dump(
        &mut self,
        request: impl Fn() -> RouteNetlinkMessage,
        what: &'static str,
    ) -> Result<Vec<Update>, Error> {
        for attempt in 0..DUMP_ATTEMPTS {
            let mut out = Vec::new();
            if self.dump_once(request(), what, attempt, &mut out)? {
                return Ok(out);
            }
            tracing::debug!(what, "dump interrupted, redoing it");
        }
        Err(Error::DumpInterrupted {
            what,
            attempts: DUMP_ATTEMPTS,
        })
    }

    /// A full snapshot: links, addresses, routes and rules of both families.
    pub(crate) fn dump_all(&mut self) -> Result<Snapshot, Error> {
        let (mut links, mut addresses, mut rules, mut other) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for u in self.dump(get_link, "link")? {
            match u {
                Update::NewLink(i) => links.push(i),
                u => other.push(u),
            }
        }
        for u in self.dump(
            || RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            "address",
        )? {
            match u {
                Update::NewAddress(a) => addresses.push(a),
                u => other.push(u),
            }
        }
        let mut routes = Vec::new();
        for family in [Family::Ipv4, Family::Ipv6] {
            routes.extend(self.dump_routes(family)?);
            for u in self.dump(|| get_rule(family), "rule")? {
                match u {
                    Update::NewRule(r) => rules.push(r),
                    u => other.push(u),
                }
            }
        }
        // Built whole from the sorted parts: full map nodes, half the memory of loading one
        // update at a time (Snapshot::from_parts). A dump holds nothing else; if it did, it
        // is applied as a dump's updates always were.
        let mut snap = Snapshot::from_parts(links, addresses, routes).with_rules(rules);
        for u in other {
            snap.load(u);
        }
        Ok(snap)
    }

    /// The routes of one family, as updates.
    pub(crate) fn dump_routes(&mut self, family: Family) -> Result<Vec<Route>, Error> {
        Ok(routes_of(self.dump(|| get_route(family, None), "route")?))
    }

    /// The routes of one family through interface `index` (any of their next hops): the
    /// kernel filters the dump by `RTA_OIF` (strict checking is on). An interface that is gone
    /// meanwhile has no routes.
    pub(crate) fn dump_interface_routes(
        &mut self,
        family: Family,
        index: u32,
    ) -> Result<Vec<Route>, Error> {
        match self.dump(|| get_route(family, Some(index)), "route") {
            Ok(u) => Ok(routes_of(u)),
            Err(Error::Kernel { source, .. }) if source.raw_os_error() == Some(19) => {
                Ok(Vec::new()) // ENODEV
            }
            Err(e) => Err(e),
        }
    }
}

fn routes_of(updates: Vec<Update>) -> Vec<Route> {
    updates
        .into_iter()
        .filter_map(|u| match u {
            Update::NewRoute { route, .. } => Some(route),
            _ => None,
        })
        .collect()
}

fn af(family: Family) -> AddressFamily {
    match family {
        Family::Ipv4 => AddressFamily::Inet,
        Family::Ipv6 => AddressFamily::Inet6,
    }
}

fn get_link() -> RouteNetlinkMessage {
    let mut m = LinkMessage::default();
    // Interface statistics are most of a link message and the model keeps none of them.
    m.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    RouteNetlinkMessage::GetLink(m)
}

fn get_route(family: Family, oif: Option<u32>) -> RouteNetlinkMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = af(family);
    if let Some(index) = oif {
        m.attributes.push(RouteAttribute::Oif(index));
    }
    RouteNetlinkMessage::GetRoute(m)
}

fn get_rule(family: Family) -> RouteNetlinkMessage {
    let mut m = RuleMessage::default();
    m.header.family = af(family);
    RouteNetlinkMessage::GetRule(m)
}

impl AsFd for NlSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
