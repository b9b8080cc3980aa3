//! Decoding rtnetlink datagrams into model updates: pure functions over bytes.
//!
//! A datagram holds one or more netlink messages. [`parse_datagram`] walks them by their length
//! fields, decodes each with `netlink-packet-route`, and turns link, address and route messages
//! into [`Update`]s. A message that cannot be decoded is reported as an error for that message
//! alone; the walk goes on with the next one. Message types and attributes netreach does not use
//! are skipped. Nothing here panics on any input (`tests/decode_mutation.rs`).
//!
//! # Platform specific behavior
//!
//! Linux only: rtnetlink is Linux's, and `netlink-packet-route` needs `std::os::unix`. The
//! [`Update`]s it produces are portable: a backend on another system makes them its own way.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkLayerType, LinkMessage, State,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHopFlags,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleFlags, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::event::Update;
use crate::flags::AddressFlags;
use crate::model::{
    Address, Family, Interface, LinkKind, MacAddr, NextHop, OperState, Route, RouteProtocol,
    RouteType, Rule, Scope,
};

/// `NLM_F_DUMP_INTR`: the dump was interrupted by a change and must be redone.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_REPLACE` on a new-route notification.
pub const NLM_F_REPLACE: u16 = 0x100;

/// A message of a datagram that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The datagram ends in the middle of a message header or body.
    #[error("truncated netlink message at offset {offset}")]
    Truncated {
        /// Byte offset of the message in the datagram.
        offset: usize,
    },
    /// `netlink-packet-route` rejected the message.
    #[error("malformed netlink message of type {message_type}: {reason}")]
    Malformed {
        /// The `nlmsg_type`.
        message_type: u16,
        /// What the decoder said.
        reason: String,
    },
}

/// One message of a datagram, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A model update (from a notification or a dump part).
    Update(Update),
    /// End of a multi-part dump.
    Done,
    /// An error or acknowledgement: `code` is 0 for an ACK, a negative errno otherwise.
    Error {
        /// Negative errno, or 0.
        code: i32,
    },
    /// A message netreach does not use (neighbours, rules, a link of another family ...).
    Ignored,
}

/// One decoded message with its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The netlink header (sequence number, port, flags such as `NLM_F_DUMP_INTR`).
    pub header: NetlinkHeader,
    /// What it says.
    pub parsed: Parsed,
}

impl Message {
    /// The message belongs to a dump that the kernel interrupted: the dump must be redone.
    pub fn dump_interrupted(&self) -> bool {
        self.header.flags & NLM_F_DUMP_INTR != 0
    }
}

/// Walks the messages of one datagram.
///
/// ```
/// use netreach_core::decode::parse_datagram;
/// // A truncated header is one error, not a panic.
/// let out: Vec<_> = parse_datagram(&[1, 2, 3]).collect();
/// assert!(out[0].is_err());
/// ```
pub fn parse_datagram(buf: &[u8]) -> impl Iterator<Item = Result<Message, DecodeError>> + '_ {
    messages(buf).map(|m| m.and_then(decode_message))
}

/// Splits a datagram into its netlink messages by their length fields, without decoding them.
///
/// A message whose length field is too small or runs past the end of the datagram ends the walk
/// with one [`DecodeError::Truncated`].
///
/// ```
/// use netreach_core::decode::messages;
/// assert_eq!(messages(&[]).count(), 0);
/// assert!(messages(&[16, 0, 0, 0]).next().unwrap().is_err());
/// ```
pub fn messages(buf: &[u8]) -> impl Iterator<Item = Result<&[u8], DecodeError>> + '_ {
    let mut offset = 0usize;
    std::iter::from_fn(move || {
        if offset >= buf.len() {
            return None;
        }
        let rest = &buf[offset..];
        let Some(len_bytes) = rest.get(0..4) else {
            let at = offset;
            offset = buf.len();
            return Some(Err(DecodeError::Truncated { offset: at }));
        };
        let len =
            u32::from_ne_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        if len < 16 || len > rest.len() {
            let at = offset;
            offset = buf.len();
            return Some(Err(DecodeError::Truncated { offset: at }));
        }
        let msg = &rest[..len];
        // Messages are aligned to 4 bytes.
        offset += (len + 3) & !3;
        Some(Ok(msg))
    })
}

/// Decodes one complete netlink message.
pub fn decode_message(msg: &[u8]) -> Result<Message, DecodeError> {
    let message_type = msg
        .get(4..6)
        .map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]));
    if message_type == RTM_NEWLINK {
        if let Some(m) = new_link_attributes_used(msg) {
            return Ok(m);
        }
    }
    let nl = NetlinkMessage::<RouteNetlinkMessage>::deserialize(msg).map_err(|e| {
        DecodeError::Malformed {
            message_type,
            reason: e.to_string(),
        }
    })?;
    let (header, payload) = nl.into_parts();
    let parsed = match payload {
        NetlinkPayload::Done(_) => Parsed::Done,
        NetlinkPayload::Error(e) => Parsed::Error {
            code: e.code.map_or(0, |c| c.get()),
        },
        NetlinkPayload::InnerMessage(m) => match decode_route_message(&m, header.flags) {
            Some(u) => Parsed::Update(u),
            None => Parsed::Ignored,
        },
        _ => Parsed::Ignored,
    };
    Ok(Message { header, parsed })
}

/// `RTM_NEWLINK`.
const RTM_NEWLINK: u16 = 16;
/// The link attributes [`link`] reads: `IFLA_ADDRESS`, `IFLA_IFNAME`, `IFLA_MTU`,
/// `IFLA_OPERSTATE`, `IFLA_LINKINFO`.
const LINK_ATTRIBUTES_USED: [u16; 5] = [1, 3, 4, 16, 18];

/// A new-link message decoded with `netlink-packet-route`, but only the attributes netreach
/// keeps: a link's message carries a kilobyte or two of statistics and per-family settings
/// (IPv6's `devconf` alone is some sixty values), whose full decoding was most of the time a
/// link change took to decode. Gives the same [`Message`] as the full decoding wherever that
/// succeeds (an attribute netreach does not read may be malformed here and not refuse the
/// link); `None` when any part it reads is malformed, and the caller falls back to the full
/// decoding, which says what.
fn new_link_attributes_used(msg: &[u8]) -> Option<Message> {
    use netlink_packet_core::{NetlinkBuffer, NlasIterator, Parseable, ParseableParametrized};
    use netlink_packet_route::link::{LinkHeader, LinkMessageBuffer};

    let buf = NetlinkBuffer::new_checked(msg).ok()?;
    let header = NetlinkHeader::parse(&buf).ok()?;
    let payload = buf.payload();
    let mut link_msg = LinkMessage::default();
    link_msg.header = LinkHeader::parse(payload).ok()?;
    let family = link_msg.header.interface_family;
    let attributes = payload.get(std::mem::size_of::<LinkMessageBuffer>()..)?;
    for nla in NlasIterator::new(attributes) {
        let nla = nla.ok()?;
        if LINK_ATTRIBUTES_USED.contains(&nla.kind()) {
            link_msg
                .attributes
                .push(LinkAttribute::parse_with_param(&nla, family).ok()?);
        }
    }
    let parsed = match decode_route_message(&RouteNetlinkMessage::NewLink(link_msg), header.flags) {
        Some(u) => Parsed::Update(u),
        None => Parsed::Ignored,
    };
    Some(Message { header, parsed })
}

/// Turns one rtnetlink message into a model update; `None` for what netreach does not model.
pub fn decode_route_message(msg: &RouteNetlinkMessage, nl_flags: u16) -> Option<Update> {
    match msg {
        RouteNetlinkMessage::NewLink(l) => {
            // Bridges also send AF_BRIDGE link messages about their ports: not a new link.
            if l.header.interface_family != AddressFamily::Unspec {
                return None;
            }
            link(l).map(Update::NewLink)
        }
        RouteNetlinkMessage::DelLink(l) => {
            if l.header.interface_family != AddressFamily::Unspec || l.header.index == 0 {
                return None;
            }
            Some(Update::DelLink(l.header.index))
        }
        RouteNetlinkMessage::NewAddress(a) => address(a).map(Update::NewAddress),
        RouteNetlinkMessage::DelAddress(a) => address(a).map(Update::DelAddress),
        RouteNetlinkMessage::NewRoute(r) => route(r).map(|route| Update::NewRoute {
            route,
            replace: nl_flags & NLM_F_REPLACE != 0,
        }),
        RouteNetlinkMessage::DelRoute(r) => route(r).map(Update::DelRoute),
        RouteNetlinkMessage::NewRule(r) => rule(r).map(Update::NewRule),
        RouteNetlinkMessage::DelRule(r) => rule(r).map(Update::DelRule),
        _ => None,
    }
}

/// Decodes a link message; `None` when it has no index or no name.
pub fn link(msg: &LinkMessage) -> Option<Interface> {
    let h = &msg.header;
    if h.index == 0 {
        return None;
    }
    let mut name = None;
    let mut kind = None;
    let mut oper = OperState::Unknown;
    let mut mtu = 0;
    let mut mac = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Mtu(m) => mtu = *m,
            LinkAttribute::Address(a) if !a.is_empty() => mac = Some(MacAddr(a.clone())),
            LinkAttribute::OperState(s) => oper = oper_state(s),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        kind = Some(info_kind(k));
                    }
                }
            }
            _ => {}
        }
    }
    let kind = kind.unwrap_or(match h.link_layer_type {
        LinkLayerType::Loopback => LinkKind::Loopback,
        LinkLayerType::Ether => LinkKind::Ethernet,
        _ => LinkKind::Unknown,
    });
    Some(Interface {
        index: h.index,
        name: name?,
        kind,
        admin_up: h.flags.contains(LinkFlags::Up),
        oper_state: oper,
        carrier: h.flags.contains(LinkFlags::LowerUp),
        mtu,
        mac,
    })
}

fn info_kind(k: &InfoKind) -> LinkKind {
    match k {
        InfoKind::Veth => LinkKind::Veth,
        InfoKind::Bridge => LinkKind::Bridge,
        InfoKind::Vxlan => LinkKind::Vxlan,
        InfoKind::Tun => LinkKind::Tun,
        InfoKind::Vlan => LinkKind::Vlan,
        InfoKind::Bond => LinkKind::Bond,
        InfoKind::Wireguard => LinkKind::Wireguard,
        InfoKind::Dummy => LinkKind::Dummy,
        other => LinkKind::from_kernel_kind(&other.to_string()),
    }
}

fn oper_state(s: &State) -> OperState {
    match s {
        State::Up => OperState::Up,
        State::Down => OperState::Down,
        State::LowerLayerDown => OperState::LowerLayerDown,
        State::Dormant => OperState::Dormant,
        State::Testing => OperState::Testing,
        State::NotPresent => OperState::NotPresent,
        _ => OperState::Unknown,
    }
}

/// Decodes an address message; `None` for families other than IPv4/IPv6 or no address.
pub fn address(msg: &AddressMessage) -> Option<Address> {
    let h = &msg.header;
    let ipv6 = match h.family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    if h.index == 0 {
        return None;
    }
    let mut local = None;
    let mut addr = None;
    let mut flags = u32::from(h.flags.bits());
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => addr = Some(*a),
            // IFA_FLAGS carries all 32 bits (noprefixroute is above the header's 8).
            AddressAttribute::Flags(f) => flags = f.bits(),
            _ => {}
        }
    }
    let address = local.or(addr)?;
    if ipv6 != address.is_ipv6() {
        return None;
    }
    let max = if ipv6 { 128 } else { 32 };
    if h.prefix_len > max {
        return None;
    }
    Some(Address {
        interface: h.index,
        address,
        prefix_len: h.prefix_len,
        scope: Scope::from_raw(u8::from(h.scope)),
        flags: AddressFlags::from_kernel(flags, ipv6),
    })
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Decodes a route message; `None` for other families, cloned (cache) routes, or malformed
/// prefixes. Also decodes the answer to an `RTM_GETROUTE` lookup made with `RTM_F_FIB_MATCH`;
/// for any lookup answer use [`lookup_route`].
pub fn route(msg: &RouteMessage) -> Option<Route> {
    if msg.header.flags.contains(RouteFlags::Cloned) {
        return None;
    }
    lookup_route(msg)
}

/// Decodes the answer to an `RTM_GETROUTE` lookup; `None` for other families or malformed
/// prefixes.
///
/// Unlike [`route`] this accepts `RTM_F_CLONED`: the kernel marks every IPv4 answer to a lookup
/// made without `RTM_F_FIB_MATCH` so (it describes the route cache entry it would use, with the
/// looked-up address as a host prefix).
pub fn lookup_route(msg: &RouteMessage) -> Option<Route> {
    let h = &msg.header;
    let family = match h.address_family {
        AddressFamily::Inet => Family::Ipv4,
        AddressFamily::Inet6 => Family::Ipv6,
        _ => return None,
    };
    let mut dst = None;
    let mut gateway = None;
    let mut oif = None;
    let mut table = u32::from(h.table);
    let mut metric = 0;
    let mut prefsrc = None;
    let mut nexthops = Vec::new();
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(a) => dst = route_addr(a),
            RouteAttribute::Gateway(a) => gateway = route_addr(a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::PrefSource(a) => prefsrc = route_addr(a),
            RouteAttribute::MultiPath(hops) => {
                for hop in hops {
                    let gw = hop.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Gateway(g) => route_addr(g),
                        _ => None,
                    });
                    nexthops.push(NextHop {
                        gateway: gw,
                        interface: hop.interface_index,
                        linkdown: hop.flags.contains(RouteNextHopFlags::Linkdown),
                    });
                }
            }
            _ => {}
        }
    }
    let dst = dst.unwrap_or(family.unspecified());
    if Family::of(&dst) != family {
        return None;
    }
    // Host bits zero, as the kernel sends them: the model's searches for the routes that
    // contain an address rely on it (`Snapshot::has_route_to`).
    let destination = IpNet::new(dst, h.destination_prefix_length).ok()?.trunc();
    let mut linkdown = h.flags.contains(RouteFlags::Linkdown);
    if let Some(first) = nexthops.first() {
        gateway = gateway.or(first.gateway);
        oif = oif.or(Some(first.interface));
        linkdown = linkdown || first.linkdown;
    }
    Some(Route {
        family,
        destination,
        tos: h.tos,
        gateway,
        interface: oif.filter(|i| *i != 0),
        table,
        metric,
        kind: RouteType::from_raw(u8::from(h.kind)),
        protocol: RouteProtocol(u8::from(h.protocol)),
        scope: Scope::from_raw(u8::from(h.scope)),
        prefsrc,
        linkdown,
        nexthops,
    })
}

/// Decodes a policy-routing rule; `None` for other families or malformed selectors.
pub fn rule(msg: &RuleMessage) -> Option<Rule> {
    let h = &msg.header;
    let family = match h.family {
        AddressFamily::Inet => Family::Ipv4,
        AddressFamily::Inet6 => Family::Ipv6,
        _ => return None,
    };
    let mut table = u32::from(h.table);
    let mut priority = 0;
    let mut goto = 0;
    let mut src = None;
    let mut dst = None;
    let mut iif = None;
    let mut oif = None;
    let mut fwmark = None;
    for attr in &msg.attributes {
        match attr {
            RuleAttribute::Table(t) => table = *t,
            RuleAttribute::Priority(p) => priority = *p,
            RuleAttribute::Goto(g) => goto = *g,
            RuleAttribute::Source(a) => src = Some(*a),
            RuleAttribute::Destination(a) => dst = Some(*a),
            RuleAttribute::Iifname(n) => iif = Some(n.clone()),
            RuleAttribute::Oifname(n) => oif = Some(n.clone()),
            RuleAttribute::FwMark(m) => fwmark = Some(*m),
            _ => {}
        }
    }
    let net = |a: Option<IpAddr>, len: u8| -> Option<Option<IpNet>> {
        match a {
            None => Some(None),
            Some(a) if Family::of(&a) == family => IpNet::new(a, len).ok().map(Some),
            Some(_) => None,
        }
    };
    let action = match h.action {
        RuleAction::ToTable => crate::model::RuleAction::ToTable(table),
        RuleAction::Goto => crate::model::RuleAction::Goto(goto),
        RuleAction::Nop => crate::model::RuleAction::Nop,
        RuleAction::Blackhole => crate::model::RuleAction::Blackhole,
        RuleAction::Unreachable => crate::model::RuleAction::Unreachable,
        RuleAction::Prohibit => crate::model::RuleAction::Prohibit,
        other => crate::model::RuleAction::Other(u8::from(other)),
    };
    Some(Rule {
        family,
        priority,
        action,
        source: net(src, h.src_len)?,
        destination: net(dst, h.dst_len)?,
        iif,
        oif,
        fwmark,
        invert: h.flags.contains(RuleFlags::Invert),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::NetlinkHeader;
    use netlink_packet_route::address::{AddressHeaderFlags, AddressScope};
    use netlink_packet_route::route::RouteType as NlRouteType;

    /// Serialises a message the way the kernel would send it.
    fn wire(inner: RouteNetlinkMessage, flags: u16) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(inner));
        m.finalize();
        let mut buf = vec![0; m.buffer_len()];
        m.serialize(&mut buf);
        buf
    }

    fn new_addr_msg() -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet6;
        m.header.prefix_len = 64;
        m.header.index = 7;
        m.header.scope = AddressScope::Universe;
        m.header.flags = AddressHeaderFlags::Tentative;
        m.attributes
            .push(AddressAttribute::Address("2001:db8::5".parse().unwrap()));
        m
    }

    #[test]
    fn address_roundtrip_through_bytes() {
        let buf = wire(RouteNetlinkMessage::NewAddress(new_addr_msg()), 0);
        let msgs: Vec<_> = parse_datagram(&buf).collect();
        assert_eq!(msgs.len(), 1);
        let Parsed::Update(Update::NewAddress(a)) = &msgs[0].as_ref().unwrap().parsed else {
            panic!("{msgs:?}")
        };
        assert_eq!(a.address, "2001:db8::5".parse::<IpAddr>().unwrap());
        assert_eq!(a.interface, 7);
        assert_eq!(a.prefix_len, 64);
        assert!(a.flags.contains(AddressFlags::TENTATIVE));
        assert!(!a.is_usable());
    }

    #[test]
    fn several_messages_and_garbage_in_one_datagram() {
        let mut buf = wire(RouteNetlinkMessage::NewAddress(new_addr_msg()), 0);
        buf.extend(wire(RouteNetlinkMessage::DelAddress(new_addr_msg()), 0));
        let good = buf.len();
        buf.extend([0xff; 7]);
        let msgs: Vec<_> = parse_datagram(&buf).collect();
        assert_eq!(msgs.len(), 3);
        assert!(matches!(
            msgs[1].as_ref().unwrap().parsed,
            Parsed::Update(Update::DelAddress(_))
        ));
        assert_eq!(msgs[2], Err(DecodeError::Truncated { offset: good }));
    }

    #[test]
    fn route_replace_flag_and_type() {
        let mut r = RouteMessage::default();
        r.header.address_family = AddressFamily::Inet;
        r.header.destination_prefix_length = 0;
        r.header.table = 254;
        r.header.kind = NlRouteType::BlackHole;
        let buf = wire(RouteNetlinkMessage::NewRoute(r), NLM_F_REPLACE);
        let m = decode_message(&buf).unwrap();
        let Parsed::Update(Update::NewRoute { route, replace }) = m.parsed else {
            panic!()
        };
        assert!(replace);
        assert!(route.is_default());
        assert_eq!(route.kind, RouteType::Blackhole);
        assert_eq!(route.destination.to_string(), "0.0.0.0/0");
    }

    #[test]
    fn bad_prefix_length_is_skipped() {
        let mut m = new_addr_msg();
        m.header.prefix_len = 200;
        assert_eq!(address(&m), None);
    }

    /// Every truncation and every single-byte corruption of a valid message decodes to a value
    /// or an error, never a panic.
    #[test]
    fn no_panic_on_corrupt_input() {
        let mut r = RouteMessage::default();
        r.header.address_family = AddressFamily::Inet6;
        r.header.destination_prefix_length = 64;
        r.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet6(
                "2001:db8::".parse().unwrap(),
            )));
        r.attributes.push(RouteAttribute::Oif(3));
        let mut bufs = vec![
            wire(RouteNetlinkMessage::NewRoute(r), 0),
            wire(RouteNetlinkMessage::NewAddress(new_addr_msg()), 0),
        ];
        let mut l = LinkMessage::default();
        l.header.index = 4;
        l.attributes.push(LinkAttribute::IfName("veth0".into()));
        l.attributes.push(LinkAttribute::Mtu(1500));
        bufs.push(wire(RouteNetlinkMessage::NewLink(l), 0));
        for buf in bufs {
            for cut in 0..buf.len() {
                let _ = parse_datagram(&buf[..cut]).count();
            }
            for i in 0..buf.len() {
                for v in [0u8, 0xff, 0x7f, 1] {
                    let mut b = buf.clone();
                    b[i] = v;
                    let _ = parse_datagram(&b).count();
                }
            }
        }
    }
}
