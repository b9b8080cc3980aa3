//! Change-to-event latency: from just before the change request is sent to the kernel to the
//! moment each observer's API hands the change over.
//!
//! Two changes: an IPv4 address added to a running interface, and the interface set down.
//! Each observer gets a namespace of its own, set up identically, and the observers take turns
//! (round-robin, a different one first on each repetition): on a two-core machine, observers
//! woken by the same change would compete for the cores and the figures would measure the
//! scheduler. An observer that is not taking its turn is never woken.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::common::{Ns, run};
use crate::nl::Rtnl;
use crate::observers::{IFACE, Obs, Observer, Peer, Seen};
use crate::stats::{Samples, Table, dur, ratio};

/// The peer's IPv6 address on the interface under test; the kernel removes it when the link
/// goes down, and the revert adds it back.
const V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// The changes measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AddressAdd,
    LinkDown,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::AddressAdd, Kind::LinkDown];

    pub fn name(self) -> &'static str {
        match self {
            Kind::AddressAdd => "address add",
            Kind::LinkDown => "link down",
        }
    }
}

/// Gives `ns` the interface under test: a running veth pair with an IPv4 and an IPv6 address,
/// and IPv6 quiet (no link-local addresses, no DAD) so that nothing changes on its own.
pub fn prepare(ns: &Ns) {
    for scope in ["all", "default"] {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &ns.name,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{scope}.addr_gen_mode=1"),
                &format!("net.ipv6.conf.{scope}.accept_dad=0"),
            ],
        );
    }
    ns.veth(IFACE, "vb");
    ns.ip(&format!("link set {IFACE} up"));
    ns.ip("link set vb up");
    ns.ip(&format!("addr add 198.18.0.1/24 dev {IFACE}"));
    ns.ip(&format!("addr add {V6}/64 dev {IFACE} nodad"));
}

/// One observer watching one prepared namespace, and the socket that makes the changes.
pub struct Lab {
    // Declared first: dropped (stopped) before anything else.
    pub obs: Observer,
    rtnl: Rtnl,
    index: u32,
}

impl Lab {
    /// Starts `peer` on the prepared namespace `ns` and waits until it reports changes.
    pub fn start(peer: Peer, ns: &Ns) -> Lab {
        let index = ns.ip_json(&format!("link show dev {IFACE}"))[0]["ifindex"]
            .as_u64()
            .expect("ifindex") as u32;
        let mut lab = Lab {
            obs: Observer::start(peer, ns),
            rtnl: Rtnl::open_in(&ns.name),
            index,
        };
        // `ip monitor` subscribes some time after it starts: change until it is seen.
        let probe = IpAddr::V4(Ipv4Addr::new(198, 18, 3, 1));
        for _ in 0..10 {
            let t0 = lab.rtnl.add_address(index, probe, 32);
            let seen = lab.wait(&Seen::AddressAdded(probe), t0).is_some();
            let t1 = lab.rtnl.del_address(index, probe, 32);
            lab.wait(&Seen::AddressRemoved(probe), t1);
            if seen {
                lab.settle();
                return lab;
            }
        }
        panic!("{} never reported a change", peer.name());
    }

    fn timeout(&self) -> Duration {
        // netwatch waits 250 ms for changes to settle before it re-reads the state.
        match self.obs.peer {
            Peer::Netwatch => Duration::from_secs(3),
            _ => Duration::from_secs(2),
        }
    }

    /// Waits for `want` stamped after `since`; the time from `since`, or `None` on timeout.
    fn wait(&self, want: &Seen, since: Instant) -> Option<Duration> {
        wait_for(&self.obs.rx, want, since, self.timeout())
    }

    /// Lets the aftermath of a change pass, then forgets what was reported.
    fn settle(&self) {
        std::thread::sleep(Duration::from_millis(5));
        while self.obs.rx.try_recv().is_ok() {}
    }

    /// Makes one change of `kind`, returns its latency (`None`: not seen in time), reverts it.
    pub fn measure(&mut self, kind: Kind, rep: usize) -> Option<Duration> {
        let before = self.obs.stats();
        let latency = match kind {
            Kind::AddressAdd => {
                let a = IpAddr::V4(Ipv4Addr::new(198, 18, 2, (rep % 250) as u8 + 1));
                let t0 = self.rtnl.add_address(self.index, a, 32);
                let latency = self.wait(&Seen::AddressAdded(a), t0);
                let t1 = self.rtnl.del_address(self.index, a, 32);
                self.wait(&Seen::AddressRemoved(a), t1);
                latency
            }
            Kind::LinkDown => {
                let t0 = self.rtnl.set_link(self.index, false);
                let latency = self.wait(&Seen::LinkDown, t0);
                // Up again; the kernel dropped the IPv6 address on the way down.
                let t1 = self.rtnl.set_link(self.index, true);
                self.rtnl.add_address(self.index, IpAddr::V6(V6), 64);
                self.wait(&Seen::AddressAdded(IpAddr::V6(V6)), t1);
                latency
            }
        };
        self.settle();
        if let (Some(a), Some(b), true) = (before, self.obs.stats(), crate::knobs::trace()) {
            eprintln!(
                "trace: {} {:?}: messages +{}, route refreshes +{}, resyncs +{}",
                kind.name(),
                latency,
                b.messages - a.messages,
                b.route_refreshes - a.route_refreshes,
                b.resyncs - a.resyncs,
            );
        }
        latency
    }
}

fn wait_for(
    rx: &Receiver<Obs>,
    want: &Seen,
    since: Instant,
    timeout: Duration,
) -> Option<Duration> {
    let end = Instant::now() + timeout;
    loop {
        let left = end.checked_duration_since(Instant::now())?;
        match rx.recv_timeout(left) {
            Ok(o) if o.seen == *want && o.at >= since => return Some(o.at - since),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// Latency samples per change kind and observer, in the order measured.
pub struct Results {
    pub rows: Vec<(Kind, Peer, Samples)>,
}

impl Results {
    fn samples(&mut self, kind: Kind, peer: Peer) -> &mut Samples {
        let i = match self
            .rows
            .iter()
            .position(|(k, p, _)| *k == kind && *p == peer)
        {
            Some(i) => i,
            None => {
                self.rows.push((kind, peer, Samples::default()));
                self.rows.len() - 1
            }
        };
        &mut self.rows[i].2
    }

    /// The table: one row per change and observer, with netreach's ratio to each.
    pub fn table(&self) -> Table {
        let mut t = Table::new(&[
            "change",
            "observer",
            "median",
            "p90",
            "n",
            "missed",
            "netreach ÷ it (median)",
            "(p90)",
        ]);
        for (kind, peer, s) in &self.rows {
            let ours = self
                .rows
                .iter()
                .find(|(k, p, _)| k == kind && *p == Peer::Netreach)
                .map(|(_, _, s)| s);
            t.row(vec![
                kind.name().into(),
                peer.name().into(),
                dur(s.median()),
                dur(s.p90()),
                s.len().to_string(),
                s.missed.to_string(),
                ratio(ours.and_then(Samples::median), s.median()),
                ratio(ours.and_then(Samples::p90), s.p90()),
            ]);
        }
        t
    }
}

/// The latency benchmark: every observer in a namespace of its own, `reps` changes of each kind.
pub fn run_all(reps: usize) -> Results {
    let namespaces: Vec<(Peer, Ns)> = Peer::ALL
        .iter()
        .map(|&p| {
            let ns = Ns::new(&format!("lat-{}", p.tag()));
            prepare(&ns);
            (p, ns)
        })
        .collect();
    let mut labs: Vec<Lab> = namespaces
        .iter()
        .map(|(p, ns)| Lab::start(*p, ns))
        .collect();
    let mut results = Results { rows: Vec::new() };
    for kind in Kind::ALL {
        for lab in &labs {
            if kind == Kind::AddressAdd || lab.obs.peer.sees_links() {
                results.samples(kind, lab.obs.peer);
            }
        }
    }
    for rep in 0..reps {
        for kind in Kind::ALL {
            // Round-robin, starting with a different observer each time.
            for k in 0..labs.len() {
                let lab = &mut labs[(rep + k) % Peer::ALL.len()];
                let peer = lab.obs.peer;
                if kind == Kind::LinkDown && !peer.sees_links() {
                    continue;
                }
                let d = lab.measure(kind, rep);
                results.samples(kind, peer).record(d);
            }
        }
        eprint!("\rlatency: {}/{reps} repetitions", rep + 1);
    }
    eprintln!();
    drop(labs);
    results
}

/// Latency with a big namespace: netreach against `ip monitor`, one at a time (they would
/// share the namespace and the cores otherwise), in alternating blocks.
pub fn run_in(ns: &Ns, reps: usize, results: &mut Results) {
    let peers = [Peer::Netreach, Peer::IpMonitor];
    for kind in Kind::ALL {
        for p in peers {
            results.samples(kind, p);
        }
    }
    let blocks = 2;
    for block in 0..blocks {
        // `reps` in all, split over the blocks.
        let in_block = reps / blocks + usize::from(block < reps % blocks);
        for peer in peers {
            let mut lab = Lab::start(peer, ns);
            for rep in 0..in_block {
                for kind in Kind::ALL {
                    let d = lab.measure(kind, block * reps + rep);
                    results.samples(kind, peer).record(d);
                }
            }
        }
    }
}
