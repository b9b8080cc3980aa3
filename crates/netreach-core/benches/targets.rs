//! The machine alone (no kernel, no threads): the cost per target of a link going down under
//! 10,000 connection targets, from the link update to the last verdict drained, with the
//! machine's own longest-prefix match standing in for the kernel's route lookups; then of the
//! route they all take being removed (each judged "no route" from the model, then looked up)
//! and added back. Instruction counts do not depend on the machine's load:
//!
//! ```sh
//! cargo bench -p netreach-core --bench targets                      # times, 5 rounds
//! valgrind --tool=callgrind target/release/deps/targets-* 1        # one round, counted
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use netreach_core::machine::{Action, Machine, MachineConfig, Output, ReachId};
use netreach_core::reach::{Target, TargetId, lookup_in_model};
use netreach_core::{
    Address, AddressFlags, Interface, LinkKind, OperState, Route, Scope, Snapshot, Update,
};

const TARGETS: u32 = 10_000;
const OWNER: ReachId = ReachId(1);

fn eth0(up: bool) -> Interface {
    let mut i = Interface::new(2, "eth0", LinkKind::Ethernet);
    i.admin_up = up;
    i.carrier = up;
    i.oper_state = if up { OperState::Up } else { OperState::Down };
    i
}

fn network() -> Snapshot {
    let local = "198.18.0.2".parse().unwrap();
    let mut gateway = Route::unicast(
        "198.19.0.0/16".parse().unwrap(),
        Some("198.18.0.1".parse().unwrap()),
        2,
    );
    gateway.prefsrc = Some(local);
    Snapshot::from_parts(
        [eth0(true)],
        [Address {
            interface: 2,
            address: local,
            prefix_len: 24,
            scope: Scope::Global,
            flags: AddressFlags::empty(),
        }],
        [
            Route::unicast("198.18.0.0/24".parse().unwrap(), None, 2),
            gateway,
        ],
    )
}

/// Does what the driver does: takes actions until there are none, draining the outputs as
/// they become ready and gathering the lookups, then answers the lookups (from the model) and
/// goes round again. Returns how many reachability outputs came and when the first and the
/// last one were drained.
fn run(m: &mut Machine, now: Instant) -> (usize, Instant, Instant) {
    let mut verdicts = 0;
    let mut first = None;
    let mut last = Instant::now();
    let mut drain = |m: &mut Machine| {
        while let Some(o) = m.poll_output() {
            if matches!(o, Output::Reachability { .. }) {
                verdicts += 1;
                last = Instant::now();
                first.get_or_insert(last);
            }
        }
    };
    loop {
        let mut lookups = Vec::new();
        while let Some(a) = m.poll_action() {
            if let Action::LookupRoute { owner, id, query } = a {
                lookups.push((owner, id, query));
            }
            drain(m);
        }
        drain(m);
        if lookups.is_empty() {
            return (verdicts, first.unwrap_or(last), last);
        }
        for (owner, id, query) in lookups {
            let answer = lookup_in_model(&query, m.snapshot());
            m.handle_lookup(owner, id, Ok(answer), now);
        }
        drain(m);
    }
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map_or(5, |a| a.parse().expect("rounds"));
    let now = Instant::now();
    let mut m = Machine::new(network(), MachineConfig::default());
    m.attach_reach(OWNER);
    let local = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
    for n in 0..TARGETS {
        let remote = IpAddr::V4(Ipv4Addr::new(198, 19, (n / 250) as u8, (n % 250) as u8 + 1));
        let t = Target::new(local, remote, None, m.snapshot()).expect("target");
        m.add_target(OWNER, TargetId::new(u64::from(n)), t);
    }
    assert_eq!(run(&mut m, now).0, TARGETS as usize);
    table(
        &mut m,
        rounds,
        now,
        ("link down", "link up"),
        link_down,
        link_up,
    );
    // The route the 10,000 targets take removed, with nothing else that contains their
    // remotes (each is judged "no route" from the model, then looked up), and added back.
    println!();
    let route_back = || {
        vec![Update::NewRoute {
            route: gateway(),
            replace: false,
        }]
    };
    let route_gone = || vec![Update::DelRoute(gateway())];
    table(
        &mut m,
        rounds,
        now,
        ("route removed", "route back"),
        route_gone,
        route_back,
    );
}

fn link_down() -> Vec<Update> {
    vec![Update::NewLink(eth0(false))]
}

/// Up again, with the routes the kernel adds back.
fn link_up() -> Vec<Update> {
    let mut ups = vec![Update::NewLink(eth0(true))];
    ups.extend(network().routes().map(|r| Update::NewRoute {
        route: r.clone(),
        replace: false,
    }));
    ups
}

/// The route through the gateway, which the targets take.
fn gateway() -> Route {
    network()
        .routes()
        .find(|r| r.gateway.is_some())
        .cloned()
        .expect("the gateway route")
}

/// `rounds` of `change` and `undo`, each run to the end; one table row per round.
fn table(
    m: &mut Machine,
    rounds: usize,
    now: Instant,
    (what, back): (&str, &str),
    change: impl Fn() -> Vec<Update>,
    undo: impl Fn() -> Vec<Update>,
) {
    println!(
        "| round | {what}: verdicts | first verdict | last verdict | all done | per target | {back}: verdicts | last verdict | all done | per target |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for round in 1..=rounds {
        let t = Instant::now();
        m.handle_updates(change(), now);
        let (n, first, last) = run(m, now);
        let d = t.elapsed();
        let t_back = Instant::now();
        m.handle_updates(undo(), now);
        let (n_back, _, last_back) = run(m, now);
        let u = t_back.elapsed();
        println!(
            "| {round} | {n} | {:.2?} | {:.2?} | {d:.2?} | {:.0} ns | {n_back} | {:.2?} | {u:.2?} | {:.0} ns |",
            first - t,
            last - t,
            d.as_nanos() as f64 / n.max(1) as f64,
            last_back - t_back,
            u.as_nanos() as f64 / n_back.max(1) as f64
        );
    }
}
