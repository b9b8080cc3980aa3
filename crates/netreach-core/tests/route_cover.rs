//! `Snapshot::has_route_to` against the definition: some route of the address's family, in any
//! table, whose destination contains it. Random tables over a narrow universe of addresses (so
//! that prefixes nest and neighbour each other), random addresses in and around them.
//!
//! Deterministic: `NETREACH_FUZZ_ITERS` sets the number of cases, `NETREACH_FUZZ_SEED` the seed;
//! a failure names both, with the case.

mod fuzz;

use fuzz::Rng;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use netreach_core::{Interface, LinkKind, Route, RouteType, Snapshot};

const DEFAULT_CASES: u64 = 3_000;

/// An address of `v6`'s family that differs from a fixed base in its last 12 bits only: random
/// prefixes of it nest, share bits and neighbour each other.
fn address(rng: &mut Rng, v6: bool) -> IpAddr {
    let low = rng.below(1 << 12) as u32;
    if v6 {
        IpAddr::V6(Ipv6Addr::from(
            u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)) | u128::from(low),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::from(
            u32::from(Ipv4Addr::new(198, 18, 0, 0)) | low,
        ))
    }
}

fn route(rng: &mut Rng) -> Route {
    let v6 = rng.one_in(2);
    let full = if v6 { 128 } else { 32 };
    // Mostly long prefixes (they split the universe), sometimes short or a default.
    let len = match rng.below(6) {
        0 => rng.below(u64::from(full) + 1) as u8,
        1 => 0,
        _ => full - rng.below(13) as u8,
    };
    let destination = IpNet::new(address(rng, v6), len).unwrap().trunc();
    let mut r = Route::unicast(destination, None, 1);
    r.table = rng.pick(&[Route::MAIN_TABLE, Route::LOCAL_TABLE, 100, 7]);
    r.kind = rng.pick(&[
        RouteType::Unicast,
        RouteType::Local,
        RouteType::Unreachable,
        RouteType::Throw,
    ]);
    r.metric = rng.below(3) as u32;
    r
}

#[test]
fn has_route_to_agrees_with_a_scan_of_every_route() {
    let seed = fuzz::seed(0x636f_7665_7273);
    let cases = fuzz::cases(DEFAULT_CASES);
    for case in 0..cases {
        let mut rng = Rng::for_case(seed, case);
        let routes: Vec<Route> = (0..rng.below(24)).map(|_| route(&mut rng)).collect();
        let lo = Interface::new(1, "eth0", LinkKind::Ethernet);
        let snap = Snapshot::from_parts([lo], [], routes);
        for _ in 0..16 {
            let v6 = rng.one_in(2);
            let addr = match snap.routes().nth(rng.index(snap.routes().len())) {
                // A route's own address, or its neighbour: the boundaries of the walk.
                Some(r) if rng.one_in(3) => match r.destination.addr() {
                    IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(
                        u32::from(a)
                            .wrapping_add(rng.below(3) as u32)
                            .wrapping_sub(1),
                    )),
                    IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(
                        u128::from(a)
                            .wrapping_add(u128::from(rng.below(3)))
                            .wrapping_sub(1),
                    )),
                },
                _ => address(&mut rng, v6),
            };
            let expected = snap.routes().any(|r| r.destination.contains(&addr));
            assert_eq!(
                snap.has_route_to(addr),
                expected,
                "{addr} in {:?} (NETREACH_FUZZ_SEED={seed}, case {case})",
                snap.routes()
                    .map(|r| (r.table, r.destination))
                    .collect::<Vec<_>>(),
            );
        }
    }
}

#[test]
fn an_empty_table_and_the_other_family_cover_nothing() {
    let v4 = Route::unicast("0.0.0.0/0".parse().unwrap(), None, 1);
    let snap = Snapshot::from_parts([Interface::new(1, "eth0", LinkKind::Ethernet)], [], [v4]);
    assert!(snap.has_route_to("198.18.0.1".parse().unwrap()));
    assert!(!snap.has_route_to("2001:db8::1".parse().unwrap()));
    assert!(!Snapshot::new().has_route_to("198.18.0.1".parse().unwrap()));
}
