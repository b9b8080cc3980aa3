//! The machine alone (no kernel, no threads): one address added and removed, one link going
//! down and up, and the default route deleted and added with a connection target through it
//! (its lookups answered as the kernel would), on a model of 10 or 10,000 interfaces, the way
//! the driver feeds it (the updates, `derive`, the outputs drained) while a reader holds the
//! state published before, as the hub does. Whatever of its cost grows with the size of the
//! model shows as the difference between the two sizes, hot or, with `NETREACH_BENCH_COLD=1`,
//! with the caches flushed before each change:
//!
//! ```sh
//! cargo bench -p netreach-core --bench change                        # times
//! NETREACH_BENCH_COLD=1 cargo bench -p netreach-core --bench change  # times, caches cold
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*change::round*' \
//!     target/release/deps/change-* 10000 100 link                    # counted
//! ```

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use netreach_core::machine::{Action, Machine, MachineConfig, ReachId};
use netreach_core::reach::{LookupAnswer, NO_ROUTE, Target, TargetId};
use netreach_core::{
    Address, AddressFlags, Interface, LinkKind, Route, RouteProtocol, RouteType, Scope, Snapshot,
    Update,
};

/// The address of interface `i`, as the live benchmark gives its bridges.
fn address(i: u32) -> Ipv4Addr {
    Ipv4Addr::from((198u32 << 24 | 18 << 16) + 0x0400 + i)
}

fn addr(interface: u32, a: Ipv4Addr) -> Address {
    Address {
        interface,
        address: IpAddr::V4(a),
        prefix_len: 32,
        scope: Scope::Global,
        flags: AddressFlags::empty(),
    }
}

/// The route the kernel adds to table `local` for an address of its own.
fn local_route(interface: u32, a: Ipv4Addr) -> Route {
    Route {
        table: 255,
        kind: RouteType::Local,
        protocol: RouteProtocol(2),
        scope: Scope::Host,
        prefsrc: Some(IpAddr::V4(a)),
        ..Route::unicast(format!("{a}/32").parse().unwrap(), None, interface)
    }
}

/// `n` bridges (indexes from 10), each with one address and its local route, and one
/// interface under test (index 2) that is up, with an address, its local route and its prefix
/// route, as the live benchmark's.
fn model(n: u32) -> Snapshot {
    let bridges = (0..n).map(|i| Interface::new(10 + i, format!("br{i}"), LinkKind::Bridge));
    Snapshot::from_parts(
        std::iter::once(va(true)).chain(bridges),
        (0..n).map(|i| addr(10 + i, address(i))).chain([Address {
            prefix_len: 24,
            ..addr(2, VA)
        }]),
        (0..n)
            .map(|i| local_route(10 + i, address(i)))
            .chain([local_route(2, VA), prefix_route()]),
    )
}

/// One change as the driver takes it: the updates, the derived changes, the outputs drained,
/// the route lookups it asks for answered with `answer` (the kernel's part, not timed here:
/// the answer is made up front) and their outcome drained, and the state published (held
/// until the next round, as a reader's view holds it).
#[inline(never)]
fn round(
    m: &mut Machine,
    updates: Vec<Update>,
    answer: &LookupAnswer,
    held: &mut Arc<Snapshot>,
    now: Instant,
) -> usize {
    m.handle_updates(updates, now);
    m.derive();
    let mut n = 0;
    let mut drain = |m: &mut Machine| {
        while let Some(o) = m.poll_output() {
            n += 1;
            black_box(o);
        }
    };
    drain(m);
    loop {
        let mut lookups = Vec::new();
        while let Some(a) = m.poll_action() {
            if let Action::LookupRoute { owner, id, .. } = a {
                lookups.push((owner, id));
            }
        }
        if lookups.is_empty() {
            break;
        }
        for (owner, id) in lookups {
            m.handle_lookup(owner, id, Ok(answer.clone()), now);
        }
        drain(m);
    }
    *held = m.snapshot().clone();
    n
}

/// One change and its undoing, as the updates the kernel sends for them.
struct Scenario {
    name: &'static str,
    change: fn() -> Vec<Update>,
    undo: fn() -> Vec<Update>,
    /// With a connection target from the interface under test through the default route
    /// (which the model then has), and the kernel's answers to its lookups after the change
    /// and after the undoing.
    target: Option<fn() -> (LookupAnswer, LookupAnswer)>,
}

const OWNER: ReachId = ReachId(1);
/// The watched target's remote end: reached through the default route only.
const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 19, 200, 1);

/// The default route through the interface under test.
fn default_route() -> Route {
    Route {
        protocol: RouteProtocol(4),
        ..Route::unicast(
            "0.0.0.0/0".parse().unwrap(),
            Some(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2))),
            2,
        )
    }
}

const PROBE: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
/// The address of the interface under test.
const VA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// The route the kernel adds to table `main` for the prefix of the interface under test.
fn prefix_route() -> Route {
    Route::unicast("198.18.0.0/24".parse().unwrap(), None, 2)
}

/// The interface under test, up or down.
fn va(up: bool) -> Interface {
    let mut va = Interface::new(2, "va", LinkKind::Ethernet);
    va.admin_up = up;
    va.carrier = up;
    va
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "address add + remove",
        change: || {
            vec![
                Update::NewAddress(addr(2, PROBE)),
                Update::NewRoute {
                    route: local_route(2, PROBE),
                    replace: false,
                },
            ]
        },
        undo: || {
            vec![
                Update::DelAddress(addr(2, PROBE)),
                Update::DelRoute(local_route(2, PROBE)),
            ]
        },
        target: None,
    },
    // Down: the link's own message, the first the driver publishes (the prefix route's
    // removal is derived from it). Up: the link's and the prefix route the kernel adds again.
    Scenario {
        name: "link down + up",
        change: || vec![Update::NewLink(va(false))],
        undo: || {
            vec![
                Update::NewLink(va(true)),
                Update::NewRoute {
                    route: prefix_route(),
                    replace: false,
                },
            ]
        },
        target: None,
    },
    // The attached benchmark's first change: the target's route goes, its lookup says there
    // is none; the route comes back and the lookup finds it.
    Scenario {
        name: "default route delete + add, one target",
        change: || vec![Update::DelRoute(default_route())],
        undo: || {
            vec![Update::NewRoute {
                route: default_route(),
                replace: false,
            }]
        },
        target: Some(|| (Err(NO_ROUTE), Ok(default_route()))),
    },
];

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let sizes: Vec<u32> = match args.next() {
        Some(s) => vec![s.parse().expect("size")],
        None => vec![10, 10_000],
    };
    let rounds: u32 = args.next().map_or(2_000, |r| r.parse().expect("rounds"));
    // A third argument picks the scenarios whose name starts with it (`address`, `link`).
    let only = args.next().unwrap_or_default();
    // `NETREACH_BENCH_COLD=1`: the caches flushed before each change (64 MiB written), as
    // after the idle minutes between two changes of a live machine.
    let mut flush = std::env::var_os("NETREACH_BENCH_COLD")
        .is_some_and(|v| v == "1")
        .then(|| vec![0u8; 64 << 20]);
    println!("| interfaces | change | rounds | median | p90 | outputs per round |");
    println!("|---|---|---|---|---|---|");
    for size in sizes {
        for scenario in SCENARIOS.iter().filter(|s| s.name.starts_with(&only)) {
            let now = Instant::now();
            let mut m = Machine::new(model(size), MachineConfig::default());
            let (after_change, after_undo) = match scenario.target {
                Some(answers) => {
                    let (down, up) = answers();
                    m.handle_updates(
                        [Update::NewRoute {
                            route: default_route(),
                            replace: false,
                        }],
                        now,
                    );
                    m.attach_reach(OWNER);
                    let target =
                        Target::new(IpAddr::V4(VA), IpAddr::V4(REMOTE), None, m.snapshot())
                            .expect("target");
                    m.add_target(OWNER, TargetId::new(1), target);
                    let mut held = m.snapshot().clone();
                    round(&mut m, Vec::new(), &up, &mut held, now);
                    (down, up)
                }
                // No target, so no lookup is asked for and these are never given.
                None => (Err(NO_ROUTE), Err(NO_ROUTE)),
            };
            while m.poll_output().is_some() {}
            while m.poll_action().is_some() {}
            let mut held = m.snapshot().clone();
            let mut times = Vec::with_capacity(rounds as usize);
            let mut outputs = 0;
            for r in 0..rounds {
                if let Some(buf) = flush.as_mut() {
                    buf.iter_mut().step_by(64).for_each(|b| *b = r as u8);
                    black_box(&buf);
                }
                let t = Instant::now();
                outputs = round(&mut m, (scenario.change)(), &after_change, &mut held, now);
                outputs += round(&mut m, (scenario.undo)(), &after_undo, &mut held, now);
                times.push(t.elapsed());
            }
            times.sort();
            let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
            println!(
                "| {size} | {} | {rounds} | {:.2?} | {:.2?} | {outputs} |",
                scenario.name,
                at(0.5),
                at(0.9)
            );
        }
    }
}
