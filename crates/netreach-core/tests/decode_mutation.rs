//! The rtnetlink decoders never panic, whatever the bytes: mutation testing from real messages.
//!
//! The corpus is the route-lookup answers Linux sent (`tests/fixtures/route-lookup/*.bin`) and
//! messages of every kind netreach decodes, serialised with `netlink-packet-route` (links,
//! addresses, routes with next hops, rules, errors, dump ends, several in one datagram). Each
//! case takes one, flips, overwrites, cuts, extends, inserts, deletes or splices bytes, often
//! mends the first length field so that the damage reaches the attributes, and feeds the result
//! to `messages`, `parse_datagram`, `decode_message`, `decode_route_message` and
//! `parse_route_lookup_answer`. Any panic fails the test and prints the case and its bytes.
//!
//! Deterministic: a xorshift generator with a fixed seed. `NETREACH_FUZZ_ITERS` sets the number
//! of cases (default 20,000), `NETREACH_FUZZ_SEED` the seed.

#![cfg(target_os = "linux")]

mod fuzz;

use fuzz::Rng;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroI32;
use std::panic::{AssertUnwindSafe, catch_unwind};

use netlink_packet_core::{
    DoneMessage, ErrorMessage, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkLayerType, LinkMessage, State,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHop, RouteNextHopFlags,
    RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netreach_core::decode::messages;
use netreach_core::reach::{RouteQuery, parse_route_lookup_answer, route_lookup_request};
use netreach_core::{Parsed, Update, decode_message, decode_route_message, parse_datagram};

/// Cases when `NETREACH_FUZZ_ITERS` is not set: a few seconds unoptimised.
const DEFAULT_CASES: u64 = 20_000;

fn cases() -> u64 {
    fuzz::cases(DEFAULT_CASES)
}

fn seed() -> u64 {
    fuzz::seed(0x6465_636f_6465)
}

/// Serialises a message the way the kernel would send it.
fn wire(payload: NetlinkPayload<RouteNetlinkMessage>, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut m = NetlinkMessage::new(header, payload);
    m.finalize();
    let mut buf = vec![0; m.buffer_len()];
    m.serialize(&mut buf);
    buf
}

fn inner(m: RouteNetlinkMessage) -> Vec<u8> {
    wire(NetlinkPayload::InnerMessage(m), 0, 0x6e72)
}

fn v4(s: &str) -> RouteAddress {
    RouteAddress::Inet(s.parse().unwrap())
}

fn link() -> LinkMessage {
    let mut l = LinkMessage::default();
    l.header.index = 4;
    l.header.link_layer_type = LinkLayerType::Ether;
    l.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
    l.attributes.extend([
        LinkAttribute::IfName("veth0".into()),
        LinkAttribute::Mtu(1500),
        LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]),
        LinkAttribute::OperState(State::Up),
        LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
    ]);
    l
}

fn addresses() -> [AddressMessage; 2] {
    let mut a4 = AddressMessage::default();
    a4.header.family = AddressFamily::Inet;
    a4.header.prefix_len = 24;
    a4.header.index = 4;
    let local = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
    a4.attributes.extend([
        AddressAttribute::Address(local),
        AddressAttribute::Local(local),
        AddressAttribute::Label("veth0".into()),
        AddressAttribute::Flags(AddressFlags::Permanent | AddressFlags::Noprefixroute),
    ]);
    let mut a6 = AddressMessage::default();
    a6.header.family = AddressFamily::Inet6;
    a6.header.prefix_len = 64;
    a6.header.index = 4;
    a6.attributes.extend([
        AddressAttribute::Address("2001:db8::2".parse().unwrap()),
        AddressAttribute::Flags(AddressFlags::Tentative),
    ]);
    [a4, a6]
}

fn routes() -> [RouteMessage; 2] {
    let mut default = RouteMessage::default();
    default.header.address_family = AddressFamily::Inet;
    default.header.table = 254;
    default.header.protocol = RouteProtocol::Static;
    default.header.scope = RouteScope::Universe;
    default.header.kind = RouteType::Unicast;
    default.header.flags = RouteFlags::Linkdown;
    default.attributes.extend([
        RouteAttribute::Table(254),
        RouteAttribute::Priority(100),
        RouteAttribute::Gateway(v4("198.18.0.1")),
        RouteAttribute::Oif(4),
        RouteAttribute::PrefSource(v4("198.18.0.2")),
    ]);
    let mut multipath = RouteMessage::default();
    multipath.header.address_family = AddressFamily::Inet;
    multipath.header.destination_prefix_length = 24;
    multipath.header.table = 254;
    multipath.header.kind = RouteType::Unicast;
    let hop = |interface_index, gateway: &str, flags| {
        let mut h = RouteNextHop::default();
        h.interface_index = interface_index;
        h.flags = flags;
        h.attributes.push(RouteAttribute::Gateway(v4(gateway)));
        h
    };
    multipath.attributes.extend([
        RouteAttribute::Destination(v4("198.18.30.0")),
        RouteAttribute::MultiPath(vec![
            hop(2, "198.18.0.1", RouteNextHopFlags::empty()),
            hop(3, "198.18.1.1", RouteNextHopFlags::Linkdown),
        ]),
    ]);
    [default, multipath]
}

fn rule() -> RuleMessage {
    let mut r = RuleMessage::default();
    r.header.family = AddressFamily::Inet;
    r.header.src_len = 32;
    r.header.action = RuleAction::ToTable;
    r.attributes.extend([
        RuleAttribute::Table(100),
        RuleAttribute::Priority(100),
        RuleAttribute::Source("198.18.1.2".parse().unwrap()),
        RuleAttribute::Iifname("a1".into()),
        RuleAttribute::FwMark(7),
    ]);
    r
}

/// Everything mutated from: the captured answers and one message of each kind.
fn corpus() -> Vec<Vec<u8>> {
    let mut out = bin_files("route-lookup");
    assert!(out.len() > 20, "route-lookup fixtures missing");

    let [a4, a6] = addresses();
    let [default, multipath] = routes();
    let mut nack = ErrorMessage::default();
    nack.code = NonZeroI32::new(-113);
    nack.header = out[0].get(..16).unwrap_or_default().to_vec();
    let mut messages = vec![
        inner(RouteNetlinkMessage::NewLink(link())),
        inner(RouteNetlinkMessage::DelLink(link())),
        inner(RouteNetlinkMessage::NewAddress(a4.clone())),
        inner(RouteNetlinkMessage::DelAddress(a6.clone())),
        wire(
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(default.clone())),
            0x100, // NLM_F_REPLACE
            1,
        ),
        inner(RouteNetlinkMessage::NewRoute(multipath.clone())),
        inner(RouteNetlinkMessage::DelRoute(default)),
        inner(RouteNetlinkMessage::NewRule(rule())),
        inner(RouteNetlinkMessage::DelRule(rule())),
        wire(NetlinkPayload::Error(nack), 0, 0x6e72),
        wire(NetlinkPayload::Error(ErrorMessage::default()), 0, 0x6e72),
        wire(NetlinkPayload::Done(DoneMessage::default()), 0x2, 0x6e72),
        route_lookup_request(
            0x6e72,
            &RouteQuery {
                remote: "2001:db8:5::1".parse().unwrap(),
                local: "2001:db8::2".parse().unwrap(),
                interface: Some(2),
            },
            true,
        ),
    ];
    // A dump part: several messages in one datagram, then its end.
    let mut dump = inner(RouteNetlinkMessage::NewLink(link()));
    dump.extend(inner(RouteNetlinkMessage::NewAddress(a6)));
    dump.extend(inner(RouteNetlinkMessage::NewRoute(multipath)));
    dump.extend(wire(
        NetlinkPayload::Done(DoneMessage::default()),
        0x2,
        0x6e72,
    ));
    messages.push(dump);
    // Every one of them decodes as it is, so the corpus is worth mutating.
    for m in &messages {
        assert!(parse_datagram(m).all(|r| r.is_ok()), "{m:02x?}");
    }
    out.extend(messages);
    out
}

/// Damages `buf` in one of several ways.
fn mutate(rng: &mut Rng, buf: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    const INTERESTING: [u32; 10] = [0, 1, 2, 3, 4, 8, 16, 0x7f, 0xff, 0xffff];
    let at = rng.index(buf.len() + 1);
    match rng.index(9) {
        0 if !buf.is_empty() => {
            let i = at.min(buf.len() - 1);
            buf[i] ^= 1 << rng.index(8);
        }
        1 if !buf.is_empty() => {
            let i = at.min(buf.len() - 1);
            buf[i] = rng.byte();
        }
        // A length or type field: attribute headers are two 16-bit words.
        2 if buf.len() >= 2 => {
            let at = at.min(buf.len() - 2) & !1;
            let v = INTERESTING[rng.index(INTERESTING.len())] as u16;
            let v = if rng.one_in(3) {
                v.wrapping_add(rng.index(8) as u16)
            } else {
                v
            };
            buf[at..at + 2].copy_from_slice(&v.to_ne_bytes());
        }
        3 => buf.truncate(at),
        4 => buf.extend((0..1 + rng.index(64)).map(|_| rng.byte())),
        5 => {
            let n = 1 + rng.index(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            buf.splice(at..at, bytes);
        }
        6 => {
            let end = (at + 1 + rng.index(16)).min(buf.len());
            buf.drain(at.min(end)..end);
        }
        7 => {
            // Repeat a slice of itself (a duplicated attribute).
            let end = (at + 4 + rng.index(32)).min(buf.len());
            let piece = buf[at.min(end)..end].to_vec();
            let to = rng.index(buf.len() + 1);
            buf.splice(to..to, piece);
        }
        _ => {
            // Splice in part of another message.
            let other = &corpus[rng.index(corpus.len())];
            let from = rng.index(other.len());
            let end = (from + 1 + rng.index(64)).min(other.len());
            buf.splice(at..at, other[from..end].iter().copied());
        }
    }
}

/// Mends the first message's length field to the datagram's length, so that what follows it
/// is decoded instead of being cut off as truncated.
fn mend_length(buf: &mut [u8]) {
    if buf.len() >= 4 {
        let len = buf.len() as u32;
        buf[..4].copy_from_slice(&len.to_ne_bytes());
    }
}

/// Runs every decoder over `buf`, consuming all they return.
fn decode_everything(buf: &[u8], flags: u16, seq: u32) -> usize {
    let mut seen = 0;
    for m in parse_datagram(buf) {
        seen += match m {
            Ok(m) => usize::from(m.dump_interrupted()) + format!("{:?}", m.parsed).len(),
            Err(e) => e.to_string().len(),
        };
    }
    for raw in messages(buf).flatten() {
        seen += usize::from(decode_message(raw).is_ok());
    }
    seen += usize::from(decode_message(buf).is_ok());
    if let Ok(nl) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(buf) {
        if let NetlinkPayload::InnerMessage(m) = &nl.payload {
            seen += usize::from(decode_route_message(m, flags).is_some());
        }
    }
    let own_seq = buf
        .get(8..12)
        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    for s in [own_seq, seq] {
        seen += usize::from(parse_route_lookup_answer(buf, s).is_some());
    }
    seen
}

#[test]
fn decoders_never_panic_on_mutated_bytes() {
    let corpus = corpus();
    let seed = seed();
    let mut rng = Rng::new(seed);
    let mut decoded = 0usize;
    for case in 0..cases() {
        let mut buf = corpus[rng.index(corpus.len())].clone();
        for _ in 0..1 + rng.index(4) {
            mutate(&mut rng, &mut buf, &corpus);
        }
        if rng.one_in(2) {
            mend_length(&mut buf);
        }
        let flags = rng.next() as u16;
        let seq = if rng.one_in(2) {
            0x6e72
        } else {
            rng.next() as u32
        };
        match catch_unwind(AssertUnwindSafe(|| decode_everything(&buf, flags, seq))) {
            Ok(n) => decoded += n,
            Err(panic) => {
                eprintln!("seed {seed} case {case}: a decoder panicked on {buf:02x?}");
                std::panic::resume_unwind(panic);
            }
        }
    }
    // Not vacuous: most damaged messages still decode to something.
    assert!(decoded > 0);
}

/// Every cut of every corpus entry, on its own and with its length mended.
#[test]
fn decoders_never_panic_on_truncated_bytes() {
    for (i, whole) in corpus().iter().enumerate() {
        for cut in 0..whole.len() {
            let mut buf = whole[..cut].to_vec();
            for _ in 0..2 {
                let r = catch_unwind(AssertUnwindSafe(|| decode_everything(&buf, 0, 0x6e72)));
                assert!(r.is_ok(), "corpus entry {i} cut at {cut}: {buf:02x?}");
                mend_length(&mut buf);
            }
        }
    }
}

/// Linux's own link messages (`tests/fixtures/links`: what a namespace with a loopback, a veth
/// pair, a bridge, a vxlan and a tun answered a link dump, 1.4 to 1.9 KB each with statistics
/// and per-family settings).
fn link_fixtures() -> Vec<Vec<u8>> {
    let out = bin_files("links");
    assert!(out.len() >= 5, "link fixtures missing");
    out
}

/// The `.bin` files of `tests/fixtures/<dir>`, in name order.
fn bin_files(dir: &str) -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/fixtures/{dir}", env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// What the full decoder (every attribute) makes of one message.
fn fully_decoded(buf: &[u8]) -> Option<(NetlinkHeader, Parsed)> {
    let nl = NetlinkMessage::<RouteNetlinkMessage>::deserialize(buf).ok()?;
    let NetlinkPayload::InnerMessage(m) = &nl.payload else {
        return None;
    };
    let parsed = match decode_route_message(m, nl.header.flags) {
        Some(u) => Parsed::Update(u),
        None => Parsed::Ignored,
    };
    Some((nl.header, parsed))
}

/// `decode_message` reads only the attributes of a new-link message that netreach keeps: it
/// gives what the full decoder gives, for the kernel's messages as they are and for every
/// damaged one the full decoder still accepts.
#[test]
fn new_link_messages_decode_as_the_full_decoder_does() {
    let fixtures = link_fixtures();
    for f in &fixtures {
        let m = decode_message(f).unwrap();
        assert!(
            matches!(m.parsed, Parsed::Update(Update::NewLink(_))),
            "{m:?}"
        );
        assert_eq!(Some((m.header, m.parsed)), fully_decoded(f));
    }
    let seed = seed();
    let mut rng = Rng::new(seed);
    let mut compared = 0;
    for case in 0..cases() / 4 {
        let mut buf = fixtures[rng.index(fixtures.len())].clone();
        for _ in 0..1 + rng.index(3) {
            mutate(&mut rng, &mut buf, &fixtures);
        }
        if rng.one_in(2) {
            mend_length(&mut buf);
        }
        if let Some(full) = fully_decoded(&buf) {
            compared += 1;
            let shortcut = decode_message(&buf).map(|m| (m.header, m.parsed)).ok();
            assert_eq!(shortcut, Some(full), "seed {seed} case {case}: {buf:02x?}");
        }
    }
    // Not vacuous: many damaged messages still decode.
    assert!(compared > 0);
}
