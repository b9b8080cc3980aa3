//! In-process rtnetlink requests inside a namespace.
//!
//! The latency benchmark makes its changes here, so that the start-up of an `ip` process (a
//! millisecond or more) is not in the figures: the clock starts just before `send(2)` of the
//! request, and the kernel multicasts the notification while it handles that very call.
//!
//! The snapshot benchmark also dumps through here ("dump over an open socket"): the same
//! requests as netreach's `NlSocket::dump_all` (crate-private, so mirrored here) decoded by
//! `netreach_core` into a `Snapshot`, which is what a resync of a running monitor costs.

use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::link::{LinkFlags, LinkMessage};
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::rule::RuleMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use netreach::Snapshot;
use netreach::core::{Parsed, Update, parse_datagram};
use rustix::net::RecvFlags;
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

/// Moves the calling thread into the namespace `ns` (a name under `/run/netns`). Only ever
/// called on a thread that exists for that purpose.
pub fn enter(ns: &str) {
    let file = File::open(format!("/run/netns/{ns}")).expect("open the namespace file");
    move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network)).expect("setns");
}

/// Runs `f` on a helper thread inside the namespace `ns`.
pub fn in_ns<R: Send>(ns: &str, f: impl FnOnce() -> R + Send) -> R {
    netreach::Netns::named(ns)
        .and_then(|n| n.run(f))
        .expect("enter the namespace")
}

/// Which objects a dump asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    /// Links and addresses: what `ip addr show` and `getifaddrs(3)` read.
    LinksAndAddresses,
    /// Everything a netreach snapshot holds: links, addresses, routes and rules.
    Everything,
}

/// A request socket in one namespace.
pub struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    /// A socket opened inside `ns` (it stays there, whichever thread uses it).
    pub fn open_in(ns: &str) -> Rtnl {
        let sock = in_ns(ns, || {
            let mut s = Socket::new(NETLINK_ROUTE).expect("netlink socket");
            s.bind_auto().expect("bind");
            let _ = s.set_netlink_get_strict_chk(true);
            s
        });
        // Never hang the benchmark on a lost answer.
        rustix::net::sockopt::set_socket_timeout(
            &sock,
            rustix::net::sockopt::Timeout::Recv,
            Some(Duration::from_secs(10)),
        )
        .expect("SO_RCVTIMEO");
        Rtnl {
            sock,
            seq: 0,
            buf: vec![0; 64 * 1024],
        }
    }

    /// Sends one request; returns its sequence number and the instant just before sending.
    /// Without `NLM_F_ACK` in `flags` the kernel answers only if it refuses the request, so
    /// requests can be pipelined (the issue 14 burst).
    pub fn send(&mut self, inner: RouteNetlinkMessage, flags: u16) -> (u32, Instant) {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(inner));
        msg.finalize();
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        let t0 = Instant::now();
        self.sock
            .send_to(&buf, &SocketAddr::new(0, 0), 0)
            .expect("netlink send");
        (self.seq, t0)
    }

    fn recv(&mut self) -> usize {
        loop {
            match rustix::net::recv(&self.sock, &mut self.buf[..], RecvFlags::empty()) {
                Ok((n, _)) => return n.min(self.buf.len()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => panic!("netlink recv: {e}"),
            }
        }
    }

    /// Sends a change and waits for the kernel's acknowledgement; returns when it was sent.
    pub fn change(&mut self, inner: RouteNetlinkMessage, extra: u16) -> Instant {
        let (seq, t0) = self.send(inner, NLM_F_REQUEST | NLM_F_ACK | extra);
        loop {
            let n = self.recv();
            for m in parse_datagram(&self.buf[..n]).flatten() {
                if m.header.sequence_number != seq {
                    continue;
                }
                match m.parsed {
                    Parsed::Error { code: 0 } => return t0,
                    Parsed::Error { code } => {
                        panic!(
                            "kernel refused a change: {}",
                            io::Error::from_raw_os_error(-code)
                        )
                    }
                    _ => {}
                }
            }
        }
    }

    /// The message that adds or removes an address (`RTM_NEWADDR` / `RTM_DELADDR`).
    pub fn address(index: u32, addr: IpAddr, prefix_len: u8) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.family = match addr {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        m.header.prefix_len = prefix_len;
        m.header.index = index;
        if addr.is_ipv6() {
            m.header.flags = AddressHeaderFlags::Nodad;
        }
        m.attributes.push(AddressAttribute::Local(addr));
        m.attributes.push(AddressAttribute::Address(addr));
        m
    }

    /// Adds (or replaces) an address; returns when the request was sent.
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> Instant {
        let m = Rtnl::address(index, addr, prefix_len);
        self.change(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
    }

    /// Removes an address; returns when the request was sent.
    pub fn del_address(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> Instant {
        let m = Rtnl::address(index, addr, prefix_len);
        self.change(RouteNetlinkMessage::DelAddress(m), 0)
    }

    /// Sets a link administratively up or down (`ip link set dev X up|down`).
    pub fn set_link(&mut self, index: u32, up: bool) -> Instant {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = if up {
            LinkFlags::Up
        } else {
            LinkFlags::empty()
        };
        m.header.change_mask = LinkFlags::Up;
        self.change(RouteNetlinkMessage::NewLink(m), 0)
    }

    fn requests(what: Dump) -> Vec<RouteNetlinkMessage> {
        let mut requests = vec![
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        ];
        if what == Dump::Everything {
            for family in [AddressFamily::Inet, AddressFamily::Inet6] {
                let mut r = RouteMessage::default();
                r.header.address_family = family;
                requests.push(RouteNetlinkMessage::GetRoute(r));
                let mut r = RuleMessage::default();
                r.header.family = family;
                requests.push(RouteNetlinkMessage::GetRule(r));
            }
        }
        requests
    }

    /// Dumps into a fresh snapshot, as netreach's `NlSocket::dump_all` does: the parts
    /// gathered, then built whole (`Snapshot::from_parts`: full map nodes, no second copy).
    pub fn dump(&mut self, what: Dump) -> Snapshot {
        let (mut links, mut addresses, mut routes, mut rules, mut other) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for request in Rtnl::requests(what) {
            // Redo a dump the kernel marks as interrupted, as netreach does.
            loop {
                let mut updates = Vec::new();
                if self.dump_one(request.clone(), &mut updates) {
                    for u in updates {
                        match u {
                            Update::NewLink(i) => links.push(i),
                            Update::NewAddress(a) => addresses.push(a),
                            Update::NewRoute { route, .. } => routes.push(route),
                            Update::NewRule(r) => rules.push(r),
                            u => other.push(u),
                        }
                    }
                    break;
                }
            }
        }
        let mut snap = Snapshot::from_parts(links, addresses, routes).with_rules(rules);
        other.into_iter().for_each(|u| snap.load(u));
        snap
    }

    /// One dump into `out`; false when it was interrupted.
    fn dump_one(&mut self, request: RouteNetlinkMessage, out: &mut Vec<Update>) -> bool {
        let (seq, _) = self.send(request, NLM_F_REQUEST | NLM_F_DUMP);
        let mut interrupted = false;
        loop {
            let n = self.recv();
            for m in parse_datagram(&self.buf[..n]).flatten() {
                if m.header.sequence_number != seq {
                    continue;
                }
                interrupted |= m.dump_interrupted();
                match m.parsed {
                    Parsed::Update(u) => out.push(u),
                    Parsed::Done => return !interrupted,
                    Parsed::Error { code } if code != 0 => {
                        panic!("dump refused: {}", io::Error::from_raw_os_error(-code))
                    }
                    _ => {}
                }
            }
        }
    }

    /// The same dump without decoding: the kernel's and the system calls' share, a floor for
    /// any reader. Returns how many links the kernel sent.
    pub fn dump_bytes(&mut self, what: Dump) -> usize {
        const NLMSG_ERROR: u16 = 2;
        const NLMSG_DONE: u16 = 3;
        const RTM_NEWLINK: u16 = 16;
        let mut links = 0;
        for request in Rtnl::requests(what) {
            let (seq, _) = self.send(request, NLM_F_REQUEST | NLM_F_DUMP);
            'dump: loop {
                let n = self.recv();
                let mut at = 0;
                // Only the 16-byte netlink headers are read: length, type, flags, sequence.
                while at + 16 <= n {
                    let word = |i: usize| self.buf[at + i..at + i + 4].try_into().expect("4 bytes");
                    let len = u32::from_ne_bytes(word(0)) as usize;
                    let kind = u16::from_ne_bytes([self.buf[at + 4], self.buf[at + 5]]);
                    let msg_seq = u32::from_ne_bytes(word(8));
                    if msg_seq == seq {
                        match kind {
                            NLMSG_DONE | NLMSG_ERROR => break 'dump,
                            RTM_NEWLINK => links += 1,
                            _ => {}
                        }
                    }
                    at += len.max(16).next_multiple_of(4);
                }
            }
        }
        links
    }
}
