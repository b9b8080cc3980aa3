//! Table-driven scenarios over the simulator: status, probes and reachability together, the
//! failures of the glue, the one ordered stream, and the replay property.

use std::time::Duration;

use super::sim::Sim;
use super::*;
use crate::connectivity::Level;
use crate::event::Update;
use crate::model::{Family, Interface, LinkKind, Scope, Snapshot};
use crate::probe::{ProbeReason, ProbeSchedule, ProbeVerdict, Verified};
use crate::reach::sim::{ETH0, WLAN0, addr, ip, network, route};
use crate::reach::{Reachability, Reason, Target};

const STATUS: StatusId = StatusId(1);
const REACH: ReachId = ReachId(7);

fn schedule() -> ProbeSchedule {
    ProbeSchedule {
        settle: Duration::from_millis(100),
        retry_min: Duration::from_secs(1),
        retry_max: Duration::from_secs(8),
        full_interval: Duration::from_secs(60),
        in_flight_limit: Duration::from_secs(10),
    }
}

fn target(sim: &Sim, local: &str, remote: &str) -> Target {
    Target::new(ip(local), ip(remote), None, sim.machine.snapshot()).expect("valid target")
}

/// eth0 as the kernel shows it after `ip link set eth0 down`.
fn eth0_down(sim: &Sim) -> Update {
    let mut eth = sim.kernel.interface(ETH0).expect("eth0").clone();
    eth.admin_up = false;
    eth.carrier = false;
    Update::NewLink(eth)
}

/// What the kernel does without a word when eth0 goes down: its main-table routes go.
fn flush_eth0(sim: &mut Sim) {
    // What Linux does when eth0 goes down (`silent.rs`): its IPv4 routes go but the host ones,
    // its IPv6 routes all go (with messages the machine does not need).
    sim.silently(|k| {
        let gone: Vec<_> = k
            .routes()
            .filter(|r| r.uses_interface(ETH0))
            .filter(|r| r.family == Family::Ipv6 || r.scope != Scope::Host)
            .cloned()
            .collect();
        for r in gone {
            k.apply(Update::DelRoute(r));
        }
    });
}

/// Every sequence number once, increasing by one; every derived output names a model change
/// at or before it.
fn assert_ordered(stream: &[Output]) {
    let mut last_model = 0;
    for pair in stream.windows(2) {
        assert_eq!(pair[1].seq(), pair[0].seq() + 1, "{pair:?}");
    }
    for o in stream {
        match o {
            Output::Model { seq, .. } => last_model = *seq,
            Output::Connectivity { cause, seq, .. }
            | Output::Verification { cause, seq, .. }
            | Output::Reachability { cause, seq, .. } => {
                assert!(*cause < *seq && *cause >= last_model.min(*cause), "{o:?}");
                assert_eq!(
                    *cause, last_model,
                    "a derived change names the latest model change"
                );
            }
            Output::Resynced { .. } => {}
        }
    }
}

fn connectivity_changes(stream: &[Output]) -> Vec<&ConnectivityChange> {
    stream
        .iter()
        .filter_map(|o| match o {
            Output::Connectivity { change, .. } => Some(&**change),
            _ => None,
        })
        .collect()
}

fn reach_news(stream: &[Output]) -> Vec<&Reachability> {
    stream
        .iter()
        .filter_map(|o| match o {
            Output::Reachability { new, .. } => Some(&**new),
            _ => None,
        })
        .collect()
}

/// The network with a status monitor and one connection target (198.18.0.2 -> 198.18.5.1,
/// through the default route), its first verdict in.
fn watched() -> Sim {
    let mut sim = Sim::new(network());
    sim.machine
        .attach_status(STATUS, ConnectivityConfig::default(), None, sim.now);
    sim.machine.attach_reach(REACH);
    let t = target(&sim, "198.18.0.2", "198.18.5.1");
    assert!(sim.machine.add_target(REACH, TargetId::new(1), t));
    sim.run();
    sim
}

#[test]
fn a_link_going_down_is_judged_once_after_its_silent_route_flush() {
    let mut sim = watched();
    assert!(matches!(
        reach_news(&sim.stream)[..],
        [Reachability::Reachable(_)]
    ));
    assert_eq!(
        sim.machine.connectivity(STATUS).map(|c| c.overall),
        Some(Level::Internet)
    );

    let from = sim.stream.len();
    // The kernel flushes the routes through eth0 without a word.
    flush_eth0(&mut sim);
    let down = eth0_down(&sim);
    sim.notify(vec![down]);
    let out = sim.since(from).to_vec();
    assert_ordered(&sim.stream);
    // The machine derived the flush from its model (no dump), and it came as model changes
    // before any derived change.
    assert!(
        !sim.actions
            .iter()
            .any(|a| matches!(a, Action::DumpRoutes { .. })),
        "{:?}",
        sim.actions
    );
    assert_eq!(**sim.machine.snapshot(), sim.kernel);
    let first_derived = out
        .iter()
        .position(|o| !matches!(o, Output::Model { .. }))
        .expect("derived changes");
    let removed_routes = out[..first_derived]
        .iter()
        .filter(|o| {
            matches!(o, Output::Model { event, .. } if matches!(**event, Event::RouteRemoved(_)))
        })
        .count();
    assert!(removed_routes >= 3, "{out:#?}");
    // Judged once: the overall level fell to disconnected... or local, once, with one reason.
    let overall: Vec<_> = connectivity_changes(&out)
        .into_iter()
        .filter_map(|c| match c {
            ConnectivityChange::Level(l) if l.family.is_none() => Some(l.new),
            _ => None,
        })
        .collect();
    assert_eq!(overall.len(), 1, "{out:#?}");
    assert_ne!(overall[0], Level::Internet);
    let news = reach_news(&out);
    assert_eq!(news.len(), 1, "{out:#?}");
    assert!(
        matches!(
            news[0],
            Reachability::Unreachable(Reason::InterfaceDown { .. })
        ),
        "{news:?}"
    );
    // Nothing more comes of it.
    let settled = sim.stream.len();
    sim.run();
    sim.advance(Duration::from_secs(5));
    assert_eq!(sim.stream.len(), settled);
    assert_eq!(**sim.machine.snapshot(), sim.kernel);
}

/// 1,000 targets through a link that goes down: their verdicts are outputs a slice at a time,
/// each slice's lookups an action, so that the glue hands out the first verdicts while the
/// machine judges the rest.
#[test]
fn the_verdicts_of_many_targets_come_a_slice_at_a_time() {
    let mut sim = Sim::new(network());
    sim.machine.attach_reach(REACH);
    for n in 0..1000u32 {
        let remote = format!("198.18.{}.{}", 5 + n / 250, n % 250 + 1);
        let t = target(&sim, "198.18.0.2", &remote);
        assert!(
            sim.machine
                .add_target(REACH, TargetId::new(u64::from(n) + 1), t)
        );
    }
    sim.run();
    assert_eq!(reach_news(&sim.stream).len(), 1000);
    flush_eth0(&mut sim);
    let down = eth0_down(&sim);
    let now = sim.now;
    let (machine, kernel) = (&mut sim.machine, &sim.kernel);
    machine.handle_updates([down], now);
    let mut ready_at_lookups = Vec::new();
    let mut verdicts = 0;
    let mut drain = |m: &mut Machine| {
        while let Some(o) = m.poll_output() {
            verdicts += usize::from(matches!(o, Output::Reachability { .. }));
        }
    };
    while let Some(action) = machine.poll_action() {
        match action {
            Action::DumpRoutes { family, interface } => {
                let routes = kernel
                    .routes()
                    .filter(|r| r.family == family)
                    .filter(|r| interface.is_none_or(|i| r.uses_interface(i)))
                    .cloned()
                    .collect();
                machine.handle_routes(family, interface, Ok(routes), now);
            }
            Action::LookupRoute { .. } => {
                ready_at_lookups.push(machine.ready_outputs());
                drain(machine);
            }
            _ => {}
        }
    }
    drain(machine);
    assert_eq!(verdicts, 1000, "each target judged once");
    assert_eq!(ready_at_lookups.len(), 1000, "each target looked up once");
    let first = ready_at_lookups[0];
    assert!(
        first > 0 && first <= REACH_SLICE + 10,
        "the first slice's verdicts are ready with its lookups, not all 1,000: {first}"
    );
}

#[test]
fn a_failed_route_refresh_becomes_a_resync_and_the_machine_goes_on() {
    let mut sim = Sim::new(network());
    sim.machine
        .attach_status(STATUS, ConnectivityConfig::default(), None, sim.now);
    sim.fail_route_dumps = 1;
    // eth0's last IPv4 address goes: the kernel flushes the routes through eth0 silently, and
    // the machine dumps them.
    let gone = addr(ETH0, "198.18.0.2/24");
    sim.silently(|k| {
        let routes: Vec<_> = k
            .routes()
            .filter(|r| r.uses_interface(ETH0) && r.family == Family::Ipv4)
            .cloned()
            .collect();
        for r in routes {
            k.apply(Update::DelRoute(r));
        }
        k.apply(Update::DelAddress(gone.clone()));
    });
    sim.notify(vec![Update::DelAddress(gone)]);
    assert!(sim.actions.contains(&Action::Dump));
    assert!(
        sim.stream
            .iter()
            .any(|o| matches!(o, Output::Resynced { .. }))
    );
    assert_eq!(**sim.machine.snapshot(), sim.kernel);
    assert_eq!(sim.machine.stats().resyncs, 1);
    assert_eq!(sim.machine.stats().dump_failures, 1);
    assert_ordered(&sim.stream);
    // It still follows the kernel.
    let from = sim.stream.len();
    sim.notify(vec![Update::NewAddress(addr(WLAN0, "198.18.1.9/24"))]);
    assert!(matches!(
        sim.since(from),
        [Output::Model { event, .. }, ..] if matches!(**event, Event::AddressAdded(_))
    ));
}

#[test]
fn failed_full_dumps_are_retried_with_backoff_until_one_succeeds() {
    let mut sim = Sim::new(network());
    sim.fail_dumps = 3;
    sim.silently(|k| {
        k.apply(Update::NewAddress(addr(WLAN0, "198.18.1.7/24")));
    });
    let start = sim.now;
    sim.overflow();
    assert!(sim.stream.is_empty(), "nothing is known yet");
    // 50 ms, then 100 ms, then 200 ms.
    let mut waits = Vec::new();
    let mut at = start;
    while !sim
        .stream
        .iter()
        .any(|o| matches!(o, Output::Resynced { .. }))
    {
        let next = sim.machine.poll_timeout().expect("a retry is armed");
        waits.push(next - at);
        at = next;
        sim.advance(next - sim.now);
        assert!(waits.len() < 10, "retries never ended");
    }
    assert_eq!(waits, [50, 100, 200].map(Duration::from_millis).to_vec());
    assert_eq!(**sim.machine.snapshot(), sim.kernel);
    assert_eq!(sim.machine.poll_timeout(), None, "idle again");
    assert!(matches!(
        &sim.stream[..],
        [Output::Model { event, seq: 1 }, Output::Resynced { seq: 2 }]
            if matches!(**event, Event::AddressAdded(_))
    ));
}

#[test]
fn a_lookup_that_failed_in_transport_is_no_verdict_and_is_tried_again() {
    let mut sim = Sim::new(network());
    sim.machine.attach_reach(REACH);
    sim.fail_lookups = 1;
    let t = target(&sim, "198.18.0.2", "198.18.5.1");
    sim.machine.add_target(REACH, TargetId::new(3), t);
    sim.run();
    assert!(reach_news(&sim.stream).is_empty(), "{:?}", sim.stream);
    assert_eq!(sim.machine.reachability(REACH, TargetId::new(3)), None);
    let retry = sim.machine.poll_timeout().expect("a retry");
    assert_eq!(retry - sim.now, LOOKUP_RETRY);
    sim.advance(LOOKUP_RETRY);
    assert!(matches!(
        reach_news(&sim.stream)[..],
        [Reachability::Reachable(_)]
    ));
    assert_eq!(sim.machine.lookups(REACH), 2);
    assert_eq!(sim.machine.stats().lookup_failures, 1);
    assert_eq!(sim.machine.poll_timeout(), None);
}

#[test]
fn probes_are_scheduled_reported_once_and_dropped_when_the_pair_loses_internet() {
    let mut sim = Sim::new(network());
    sim.verdicts
        .insert((ETH0, Family::Ipv4), ProbeVerdict::Full);
    sim.verdicts.insert(
        (ETH0, Family::Ipv6),
        ProbeVerdict::Portal {
            url: Some("http://198.18.0.1/login".into()),
            reason: ProbeReason::Redirect { status: 302 },
        },
    );
    sim.machine.attach_status(
        STATUS,
        ConnectivityConfig::default(),
        Some(schedule()),
        sim.now,
    );
    sim.run();
    assert!(sim.stream.is_empty(), "the settle delay comes first");
    sim.advance(Duration::from_millis(200));
    let verification = sim.machine.verification(STATUS).expect("attached");
    assert_eq!(verification.ipv4, Verified::Full);
    assert_eq!(verification.ipv6, Verified::Portal);
    assert_eq!(verification.internet, Verified::Full);
    let verdicts = sim
        .stream
        .iter()
        .filter(|o| matches!(o, Output::Verification { .. }))
        .count();
    assert_eq!(verdicts, 2);
    // A re-probe that says the same reports nothing; a probe in flight when eth0 goes down is
    // dropped when it returns.
    sim.advance(Duration::from_secs(1));
    let from = sim.stream.len();
    sim.advance(schedule().retry_min);
    let down = eth0_down(&sim);
    sim.notify(vec![down]);
    sim.advance(Duration::from_secs(30));
    let after: Vec<_> = sim
        .since(from)
        .iter()
        .filter_map(|o| match o {
            Output::Verification { change, .. } => Some(change.new.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        after,
        [None, None],
        "both pairs lost internet, nothing else"
    );
    assert_eq!(
        sim.machine.verification(STATUS).map(|v| v.internet),
        Some(Verified::Unverified)
    );
    assert_eq!(sim.machine.poll_timeout(), None, "nothing left to probe");
    assert_ordered(&sim.stream);
}

#[test]
fn a_polled_state_is_diffed_into_model_changes_without_a_resync() {
    let mut sim = Sim::new(network());
    sim.machine
        .attach_status(STATUS, ConnectivityConfig::default(), None, sim.now);
    let mut polled = sim.kernel.clone();
    polled.apply(Update::NewAddress(addr(WLAN0, "198.18.1.8/24")));
    let default = route("0.0.0.0/0", "198.18.0.1", ETH0);
    polled.apply(Update::DelRoute(default));
    sim.machine.handle_state(polled.clone(), sim.now);
    sim.run();
    assert_eq!(**sim.machine.snapshot(), polled);
    assert!(
        !sim.stream
            .iter()
            .any(|o| matches!(o, Output::Resynced { .. }))
    );
    assert_eq!(
        sim.stream
            .iter()
            .filter(|o| matches!(o, Output::Model { .. }))
            .count(),
        2
    );
    assert!(!connectivity_changes(&sim.stream).is_empty());
    assert_ordered(&sim.stream);
    // The same state again: nothing.
    let n = sim.stream.len();
    sim.machine.handle_state(polled, sim.now);
    sim.run();
    assert_eq!(sim.stream.len(), n);
}

#[test]
fn idle_means_no_timer() {
    let mut sim = Sim::new(network());
    sim.machine
        .attach_status(STATUS, ConnectivityConfig::default(), None, sim.now);
    sim.machine.attach_reach(REACH);
    let t = target(&sim, "198.18.0.2", "198.18.5.1");
    sim.machine.add_target(REACH, TargetId::new(1), t);
    sim.run();
    assert_eq!(sim.machine.poll_timeout(), None);
    assert_eq!(sim.machine.poll_action(), None);
}

#[test]
fn medium_hints_are_asked_for_and_awaited_before_derived_changes() {
    let mut m = Machine::new(network(), MachineConfig::default().medium_hints(true));
    let now = std::time::Instant::now();
    let asked: Vec<_> = std::iter::from_fn(|| m.poll_action()).collect();
    assert_eq!(asked.len(), 3, "{asked:?}");
    for a in asked {
        if let Action::ReadMediumHint { ifindex, .. } = a {
            m.handle_medium_hint(ifindex, None, now);
        }
    }
    m.attach_status(STATUS, ConnectivityConfig::default(), None, now);
    let mut usb = Interface::new(9, "usb0", LinkKind::Ethernet);
    (usb.admin_up, usb.carrier) = (true, true);
    m.handle_updates([Update::NewLink(usb)], now);
    assert!(matches!(
        m.poll_action(),
        Some(Action::ReadMediumHint { ifindex: 9, .. })
    ));
    assert!(matches!(m.poll_output(), Some(Output::Model { .. })));
    m.handle_medium_hint(9, Some(crate::connectivity::Medium::Cellular), now);
    assert_eq!(
        m.poll_output(),
        None,
        "no connectivity change: usb0 has no address"
    );
}

/// A tiny deterministic generator (xorshift64*), so the property needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_update(rng: &mut Rng, kernel: &Snapshot) -> Update {
    let index = 2 + rng.below(4) as u32;
    let third = rng.below(4);
    match rng.below(9) {
        0 | 1 => {
            let mut i = Interface::new(index, format!("veth{index}"), LinkKind::Veth);
            i.admin_up = rng.below(3) > 0;
            i.carrier = i.admin_up && rng.below(3) > 0;
            i.mtu = 1400 + rng.below(3) as u32;
            Update::NewLink(i)
        }
        2 => Update::DelLink(index),
        3 => Update::NewAddress(addr(index, &format!("198.18.{third}.{index}/24"))),
        4 => Update::DelAddress(addr(index, &format!("198.18.{third}.{index}/24"))),
        5 => Update::NewRoute {
            route: route(&format!("198.19.{third}.0/24"), "", index),
            replace: rng.below(2) == 0,
        },
        6 => Update::DelRoute(route(&format!("198.19.{third}.0/24"), "", index)),
        7 => Update::NewRoute {
            route: route("0.0.0.0/0", &format!("198.18.{third}.1"), index),
            replace: true,
        },
        _ => match kernel
            .routes()
            .nth(rng.below(kernel.routes().len().max(1) as u64) as usize)
        {
            Some(r) => Update::DelRoute(r.clone()),
            None => Update::DelLink(index),
        },
    }
}

/// What a subscriber does with the stream: starts from the machine's first state, applies
/// every model change, and, when it lagged (dropped part of its queue), replaces what it
/// missed by the difference to the current state, as the live hub's subscriptions do.
struct Subscriber {
    view: Snapshot,
    queue: Vec<Output>,
    capacity: usize,
    lagged: bool,
}

impl Subscriber {
    fn offer(&mut self, o: &Output) {
        if self.lagged {
            return;
        }
        if self.queue.len() >= self.capacity {
            self.queue.clear();
            self.lagged = true;
            return;
        }
        self.queue.push(o.clone());
    }

    fn read(&mut self, current: &Snapshot) {
        for o in self.queue.drain(..) {
            if let Output::Model { event, .. } = o {
                self.view.apply(event.to_update());
            }
        }
        if std::mem::take(&mut self.lagged) {
            for event in diff(&self.view, current) {
                self.view.apply(event.to_update());
            }
        }
    }
}

#[test]
fn replaying_the_stream_always_ends_in_the_machines_state() {
    let iterations: u64 = std::env::var("NETREACH_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for seed in 1..=iterations {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut sim = Sim::new(network());
        sim.machine
            .attach_status(STATUS, ConnectivityConfig::default(), None, sim.now);
        let mut subs: Vec<Subscriber> = [2, 8, 1000]
            .into_iter()
            .map(|capacity| Subscriber {
                view: (**sim.machine.snapshot()).clone(),
                queue: Vec::new(),
                capacity,
                lagged: false,
            })
            .collect();
        let mut seen = 0;
        for _ in 0..40 {
            match rng.below(10) {
                0 => {
                    // Silent changes, then lost notifications.
                    for _ in 0..rng.below(4) {
                        let u = random_update(&mut rng, &sim.kernel);
                        sim.kernel.apply(u);
                    }
                    sim.fail_dumps = rng.below(2) as u32;
                    sim.overflow();
                    sim.advance(DUMP_RETRY_MAX);
                }
                1 => sim.fail_route_dumps = 1,
                _ => {
                    let n = 1 + rng.below(3);
                    let updates = (0..n)
                        .map(|_| random_update(&mut rng, &sim.kernel))
                        .collect();
                    sim.notify(updates);
                }
            }
            for o in &sim.stream[seen..] {
                for s in &mut subs {
                    s.offer(o);
                }
            }
            seen = sim.stream.len();
            for s in &mut subs {
                if rng.below(3) == 0 {
                    s.read(sim.machine.snapshot());
                }
            }
        }
        sim.fail_route_dumps = 0;
        sim.fail_dumps = 0;
        sim.overflow();
        for o in &sim.stream[seen..] {
            for s in &mut subs {
                s.offer(o);
            }
        }
        assert_ordered(&sim.stream);
        assert_eq!(
            **sim.machine.snapshot(),
            sim.kernel,
            "seed {seed}: machine ≠ kernel"
        );
        for s in &mut subs {
            s.read(sim.machine.snapshot());
            assert_eq!(
                &s.view,
                &**sim.machine.snapshot(),
                "seed {seed}: a subscriber of capacity {} replayed to another state",
                s.capacity
            );
        }
    }
}

/// `derive` queues the connectivity change with the model change that caused it (the glue
/// hands both over at once), and, with few targets, the reachability the model decides; the
/// lookup that confirms it comes from `poll_action`.
#[test]
fn derive_queues_connectivity_and_what_the_model_decides_with_their_cause() {
    let mut sim = watched();
    while sim.machine.poll_output().is_some() {}
    let default = sim
        .kernel
        .routes()
        .find(|r| r.family == Family::Ipv4 && r.destination.prefix_len() == 0)
        .cloned()
        .expect("a default route");
    sim.kernel.load(Update::DelRoute(default.clone()));
    let before = sim.machine.lookups(REACH);
    sim.machine
        .handle_updates([Update::DelRoute(default)], sim.now);
    sim.machine.derive();
    let mut kinds = Vec::new();
    while let Some(o) = sim.machine.poll_output() {
        kinds.push(match o {
            Output::Model { .. } => "model",
            Output::Connectivity { .. } => "connectivity",
            Output::Reachability { new, .. } => {
                assert_eq!(*new, Reachability::Unreachable(Reason::NoRoute));
                "reachability"
            }
            _ => "other",
        });
    }
    assert_eq!(kinds, ["model", "connectivity", "reachability"]);
    // The target's lookup comes from poll_action, and confirms: nothing more.
    let from = sim.stream.len();
    sim.run();
    assert_eq!(
        sim.machine.lookups(REACH),
        before + 1,
        "the lookup is still made"
    );
    assert!(reach_news(sim.since(from)).is_empty());
}

/// With more than a few targets, `derive` stays cheap: their work is `poll_action`'s.
#[test]
fn derive_leaves_many_targets_to_poll_action() {
    let mut sim = watched();
    for n in 2..=40u64 {
        let t = target(&sim, "198.18.0.2", &format!("198.18.6.{n}"));
        assert!(sim.machine.add_target(REACH, TargetId::new(n), t));
    }
    sim.run();
    while sim.machine.poll_output().is_some() {}
    let down = eth0_down(&sim);
    sim.machine.handle_updates([down], sim.now);
    sim.machine.derive();
    let reach = std::iter::from_fn(|| sim.machine.poll_output())
        .filter(|o| matches!(o, Output::Reachability { .. }))
        .count();
    assert_eq!(reach, 0);
    let mut verdicts = 0;
    while let Some(a) = sim.machine.poll_action() {
        drop(a);
    }
    while let Some(o) = sim.machine.poll_output() {
        verdicts += usize::from(matches!(o, Output::Reachability { .. }));
    }
    assert_eq!(verdicts, 40, "every target's bad news, from poll_action");
}
