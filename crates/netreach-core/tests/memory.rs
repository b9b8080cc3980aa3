//! What the model holds per interface, counted by the allocator (deterministic: the sizes of
//! the allocations, not the resident set). One test in its own binary, so that nothing else
//! allocates while it counts.
//!
//! The budget (issue 14): at most 600 bytes per interface in the model, for an interface with
//! one IPv4 address and its local route, the way the benchmark's bridges are.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use netreach_core::{
    Address, AddressFlags, Interface, LinkKind, Route, RouteProtocol, RouteType, Scope, Snapshot,
    Update,
};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: the caller's contract is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: as above; `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `n` bridges, each with an IPv4 /32 and its local route, built as the monitor builds a dump
/// (`Snapshot::from_parts`), or loaded one update at a time and then compacted.
fn dump_of(n: u32, one_at_a_time: bool) -> Snapshot {
    let (mut links, mut addresses, mut routes) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let index = i + 10;
        links.push(Interface::new(index, format!("br{i}"), LinkKind::Bridge));
        let ip = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i));
        addresses.push(Address {
            interface: index,
            address: ip,
            prefix_len: 32,
            scope: Scope::Global,
            flags: AddressFlags::empty(),
        });
        let mut local = Route::unicast(ipnet::IpNet::from(ip), None, index);
        local.table = Route::LOCAL_TABLE;
        local.kind = RouteType::Local;
        local.protocol = RouteProtocol(2);
        local.prefsrc = Some(ip);
        routes.push(local);
    }
    if !one_at_a_time {
        return Snapshot::from_parts(links, addresses, routes);
    }
    let mut s = Snapshot::new();
    for l in links {
        s.load(Update::NewLink(l));
    }
    for a in addresses {
        s.load(Update::NewAddress(a));
    }
    for route in routes {
        s.load(Update::NewRoute {
            route,
            replace: false,
        });
    }
    s.compact();
    s
}

fn held(n: u32, one_at_a_time: bool) -> (isize, Snapshot) {
    let before = LIVE.load(Relaxed);
    let s = dump_of(n, one_at_a_time);
    (LIVE.load(Relaxed) - before, s)
}

#[test]
fn an_interface_costs_at_most_600_bytes_in_the_model() {
    for one_at_a_time in [false, true] {
        let (small, _keep) = held(10, one_at_a_time);
        for n in [1_000, 10_000] {
            let (bytes, snap) = held(n, one_at_a_time);
            assert_eq!(snap.interfaces().count(), n as usize);
            assert_eq!(snap.routes().count(), n as usize);
            let per = (bytes - small) / (n as isize - 10);
            eprintln!(
                "{n} interfaces ({}): {bytes} bytes, {per} per interface",
                if one_at_a_time {
                    "loaded, compacted"
                } else {
                    "from parts"
                }
            );
            assert!(per <= 600, "{per} bytes per interface at {n} (budget 600)");
        }
    }
}
