//! The benchmark's own netlink: requests that make events (a link up or down, a route added or
//! deleted) without `ip`'s start-up, and the naive baseline's one lookup per target.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::link::{LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType as NlRouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use netreach::core::reach::{RouteQuery, parse_route_lookup_answer, route_lookup_request};

use crate::common::Ns;
use crate::common::lab::in_netns;

/// An rtnetlink socket in a namespace, for making events without `ip`.
pub struct Rtnl {
    sock: Socket,
}

impl Rtnl {
    pub fn open(ns: &Ns) -> Rtnl {
        let sock = in_netns(ns, || {
            let mut s = Socket::new(NETLINK_ROUTE)?;
            s.bind_auto()?;
            s.connect(&SocketAddr::new(0, 0))?;
            Ok::<_, std::io::Error>(s)
        })
        .expect("netlink socket");
        Rtnl { sock }
    }

    /// Sends a request and waits for its acknowledgement.
    fn request(&self, msg: RouteNetlinkMessage, flags: u16) {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = 1;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock.send(&buf, 0).expect("send");
        let mut answer = vec![0u8; 8192];
        let (n, _) = rustix::net::recv(
            self.sock.as_fd(),
            &mut answer,
            rustix::net::RecvFlags::empty(),
        )
        .expect("ack");
        let ack = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&answer[..n]).expect("ack");
        if let NetlinkPayload::Error(e) = ack.payload {
            assert!(e.code.is_none(), "the kernel refused: {e:?}");
        }
    }

    pub fn link(&self, index: u32, up: bool) {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = if up {
            LinkFlags::Up
        } else {
            LinkFlags::empty()
        };
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), 0);
    }

    fn route(dst: Ipv4Addr, len: u8) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = len;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Static;
        m.header.scope = RouteScope::Universe;
        m.header.kind = NlRouteType::Unicast;
        if len > 0 {
            m.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(dst)));
        }
        m
    }

    pub fn route_add(&self, dst: Ipv4Addr, len: u8, gateway: Ipv4Addr, oif: u32) {
        let mut m = Rtnl::route(dst, len);
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        m.attributes.push(RouteAttribute::Oif(oif));
        self.request(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL);
    }

    pub fn route_del_default(&self) {
        let m = Rtnl::route(Ipv4Addr::UNSPECIFIED, 0);
        self.request(RouteNetlinkMessage::DelRoute(m), 0);
    }
}

/// One `RTM_GETROUTE` per target, pipelined 256 at a time on a socket of its own (as the
/// monitor's thread does): what re-evaluating every target after an event would cost.
pub fn naive_lookups(ns: &Ns, queries: &[RouteQuery]) -> Duration {
    let sock = in_netns(ns, || {
        let mut s = Socket::new(NETLINK_ROUTE)?;
        s.bind_auto()?;
        s.connect(&SocketAddr::new(0, 0))?;
        s.set_netlink_get_strict_chk(true)?;
        Ok::<_, std::io::Error>(s)
    })
    .expect("netlink socket");
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size_force(sock.as_fd(), 4 << 20);
    let mut buf = vec![0u8; 64 * 1024];
    let t0 = Instant::now();
    for (c, chunk) in queries.chunks(256).enumerate() {
        let base = (c * 256) as u32 + 1;
        for (i, q) in chunk.iter().enumerate() {
            sock.send(&route_lookup_request(base + i as u32, q, true), 0)
                .expect("send");
        }
        let mut left = chunk.len();
        while left > 0 {
            let (n, _) = rustix::net::recv(sock.as_fd(), &mut buf, rustix::net::RecvFlags::empty())
                .expect("recv");
            let seq = u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]);
            if parse_route_lookup_answer(&buf[..n], seq).is_some() {
                left -= 1;
            }
        }
    }
    t0.elapsed()
}
