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

/// `n` bridges, each with an IPv4 /32 and its local route, loaded as a dump is (in order).
fn dump_of(n: u32) -> Snapshot {
    let mut s = Snapshot::new();
    for i in 0..n {
        let index = i + 10;
        s.load(Update::NewLink(Interface::new(
            index,
            format!("br{i}"),
            LinkKind::Bridge,
        )));
        let ip = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i));
        s.load(Update::NewAddress(Address {
            interface: index,
            address: ip,
            prefix_len: 32,
            scope: Scope::Global,
            flags: AddressFlags::empty(),
        }));
        let mut local = Route::unicast(ipnet::IpNet::from(ip), None, index);
        local.table = Route::LOCAL_TABLE;
        local.kind = RouteType::Local;
        local.protocol = RouteProtocol(2);
        local.prefsrc = Some(ip);
        s.load(Update::NewRoute {
            route: local,
            replace: false,
        });
    }
    s.compact();
    s
}

fn held(n: u32) -> (isize, Snapshot) {
    let before = LIVE.load(Relaxed);
    let s = dump_of(n);
    (LIVE.load(Relaxed) - before, s)
}

#[test]
fn an_interface_costs_at_most_600_bytes_in_the_model() {
    let (small, _keep) = held(10);
    for n in [1_000, 10_000] {
        let (bytes, snap) = held(n);
        assert_eq!(snap.interfaces().count(), n as usize);
        let per = (bytes - small) / (n as isize - 10);
        eprintln!("{n} interfaces: {bytes} bytes, {per} per interface");
        assert!(per <= 600, "{per} bytes per interface at {n} (budget 600)");
    }
}
