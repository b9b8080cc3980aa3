//! The wire format of a route lookup: the `RTM_GETROUTE` request for a [`RouteQuery`] and the
//! parser of the kernel's answer. Pure functions over bytes; the glue owns the socket.
//!
//! The request carries the destination (`RTA_DST`), the source (`RTA_SRC`) and, when the target
//! is bound to one, the output interface (`RTA_OIF`), so the kernel's answer honours policy
//! routing, and for IPv4 `RTM_F_LOOKUP_TABLE` so the answer names the table that matched (without
//! it an IPv4 answer always says `main`; IPv6 answers always name it, and a socket with strict
//! checking, as the monitor's is, gets `EINVAL` for an IPv6 request with that flag). With
//! `fib_match` set (`RTM_F_FIB_MATCH`) the kernel answers with the routing-table entry that
//! matched (its prefix, table, type, gateway, interface and `linkdown` flag) instead of a host
//! route built for the lookup. netreach asks with `fib_match`: see `docs/reachability.md` for
//! what the kernel answers in each case.
//!
//! Linux only, as [`crate::decode`] it builds on.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteFlags, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::decode;
use crate::model::Route;
use crate::reach::target::RouteQuery;

/// The `RTM_GETROUTE` request for `query`, with sequence number `seq`, ready to send on a
/// `NETLINK_ROUTE` socket. The kernel answers with one `RTM_NEWROUTE` or one `NLMSG_ERROR`
/// (see [`parse_route_lookup_answer`]).
///
/// ```
/// use netreach_core::reach::{route_lookup_request, RouteQuery};
/// let q = RouteQuery {
///     remote: "198.18.5.1".parse().unwrap(),
///     local: "198.18.0.2".parse().unwrap(),
///     interface: None,
/// };
/// let bytes = route_lookup_request(7, &q, true);
/// assert_eq!(u32::from_ne_bytes(bytes[0..4].try_into().unwrap()) as usize, bytes.len());
/// ```
pub fn route_lookup_request(seq: u32, query: &RouteQuery, fib_match: bool) -> Vec<u8> {
    let mut msg = RouteMessage::default();
    let (family, dst, dst_len) = route_address(query.remote);
    let (_, src, src_len) = route_address(query.local);
    msg.header.address_family = family;
    msg.header.destination_prefix_length = dst_len;
    msg.header.source_prefix_length = src_len;
    // Without RTM_F_LOOKUP_TABLE the IPv4 answer names table `main` whichever table matched.
    // IPv6 names the real table anyway, and with NETLINK_GET_STRICT_CHK set (the monitor's
    // request socket has it, for dumps) rejects any flag but RTM_F_FIB_MATCH with EINVAL.
    if family == AddressFamily::Inet {
        msg.header.flags = RouteFlags::LookupTable;
    }
    if fib_match {
        msg.header.flags |= RouteFlags::FibMatch;
    }
    msg.attributes.push(RouteAttribute::Destination(dst));
    msg.attributes.push(RouteAttribute::Source(src));
    if let Some(oif) = query.interface {
        msg.attributes.push(RouteAttribute::Oif(oif));
    }
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetRoute(msg)),
    );
    nl.finalize();
    let mut buf = vec![0; nl.buffer_len()];
    nl.serialize(&mut buf);
    buf
}

fn route_address(addr: IpAddr) -> (AddressFamily, RouteAddress, u8) {
    match addr {
        IpAddr::V4(v4) => (AddressFamily::Inet, RouteAddress::Inet(v4), 32),
        IpAddr::V6(v6) => (AddressFamily::Inet6, RouteAddress::Inet6(v6), 128),
    }
}

/// The answer to the lookup with sequence number `seq` in one datagram read from the socket:
/// `Some(Ok(route))`, `Some(Err(errno))` with the kernel's positive errno (`EHOSTUNREACH`, ...),
/// or `None` when the datagram holds no answer to `seq` (another lookup's answer, an ACK).
///
/// A message with sequence number `seq` that cannot be decoded is answered with `EBADMSG`, so a
/// tracker waiting for it is never left waiting.
pub fn parse_route_lookup_answer(datagram: &[u8], seq: u32) -> Option<Result<Route, i32>> {
    for raw in decode::messages(datagram) {
        // A broken length field ends the walk: nothing after it can be found.
        let raw = raw.ok()?;
        let raw_seq = raw
            .get(8..12)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
        if raw_seq != Some(seq) {
            continue;
        }
        let Ok(nl) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw) else {
            return Some(Err(libc::EBADMSG));
        };
        match nl.payload {
            NetlinkPayload::Error(e) => match e.code {
                // An ACK: the answer proper is elsewhere.
                None => continue,
                Some(code) => return Some(Err(code.get().saturating_abs())),
            },
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => {
                return Some(decode::lookup_route(&r).ok_or(libc::EBADMSG));
            }
            _ => continue,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(remote: &str, local: &str, interface: Option<u32>) -> RouteQuery {
        RouteQuery {
            remote: remote.parse().unwrap(),
            local: local.parse().unwrap(),
            interface,
        }
    }

    #[test]
    fn request_decodes_back_to_the_query() {
        for (query, fib) in [
            (q("198.18.5.1", "198.18.0.2", None), true),
            (q("2001:db8:5::1", "2001:db8::2", Some(3)), false),
        ] {
            let buf = route_lookup_request(42, &query, fib);
            let nl = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf).unwrap();
            assert_eq!(nl.header.sequence_number, 42);
            assert_eq!(nl.header.flags, NLM_F_REQUEST);
            let NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetRoute(m)) = nl.payload else {
                panic!("{nl:?}")
            };
            assert_eq!(m.header.flags.contains(RouteFlags::FibMatch), fib);
            assert_eq!(
                m.header.flags.contains(RouteFlags::LookupTable),
                query.remote.is_ipv4()
            );
            let full = if query.remote.is_ipv4() { 32 } else { 128 };
            assert_eq!(m.header.destination_prefix_length, full);
            assert_eq!(m.header.source_prefix_length, full);
            let oif = m.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            });
            assert_eq!(oif, query.interface);
            assert!(m.attributes.iter().any(|a| matches!(a,
                RouteAttribute::Destination(d) if route_address(query.remote).1 == *d)));
            assert!(m.attributes.iter().any(|a| matches!(a,
                RouteAttribute::Source(s) if route_address(query.local).1 == *s)));
        }
    }

    #[test]
    fn other_sequence_numbers_and_garbage_are_no_answer() {
        let req = route_lookup_request(5, &q("198.18.5.1", "198.18.0.2", None), true);
        // A GETROUTE echoed back is not an answer; a wrong seq is not ours.
        assert_eq!(parse_route_lookup_answer(&req, 5), None);
        assert_eq!(parse_route_lookup_answer(&req, 6), None);
        assert_eq!(parse_route_lookup_answer(&[], 5), None);
        assert_eq!(parse_route_lookup_answer(&[0xff; 3], 5), None);
    }

    #[test]
    fn undecodable_answer_with_our_seq_is_ebadmsg() {
        // A NEWROUTE header (type 24) with seq 9 and a body too short for a route message.
        let mut buf = vec![0u8; 20];
        buf[0..4].copy_from_slice(&20u32.to_ne_bytes());
        buf[4..6].copy_from_slice(&24u16.to_ne_bytes());
        buf[8..12].copy_from_slice(&9u32.to_ne_bytes());
        assert_eq!(parse_route_lookup_answer(&buf, 9), Some(Err(libc::EBADMSG)));
    }

    #[test]
    fn no_panic_on_corrupt_answers() {
        let req = route_lookup_request(1, &q("2001:db8:5::1", "2001:db8::2", Some(2)), true);
        for cut in 0..req.len() {
            let _ = parse_route_lookup_answer(&req[..cut], 1);
        }
        for i in 0..req.len() {
            for v in [0u8, 0xff, 24, 2] {
                let mut b = req.clone();
                b[i] = v;
                let _ = parse_route_lookup_answer(&b, 1);
            }
        }
    }
}
