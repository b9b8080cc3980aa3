//! Marks in the kernel's notification stream: a change a test makes after the changes it cares
//! about, so that it waits for the monitor to report *that* instead of polling for a state.
//!
//! The kernel sends its notifications in the order it makes the changes, and the monitor reads
//! and publishes them in that order. So once a subscription's view has a mark, the monitor has
//! applied every change the kernel notified before it, and the view can be compared with the
//! kernel's (`ip -j`) once, at that point. (The view is the state after the whole batch of the
//! item read last: the rest of a large batch may still be on its way to the subscribers.)
//!
//! A second mark, made once the first was seen, comes in a later read of the kernel's messages
//! (or a later poll), and the monitor's thread finishes a read (every slice of its batch, the
//! route refreshes, route lookups and derived changes it asked for, all published) before it
//! reads again (`driver.rs`: feed, act, publish). So once the second mark is seen, everything
//! the monitor made of the changes before the first has been handed out: [`Marker::settle`].
//! That is when a test can check at once that something did *not* happen, instead of waiting a
//! while for it.
//!
//! The mark is the MTU of a tun device of its own, `mark0`, kept down so that the kernel does
//! nothing with it on its own; each mark sets an MTU not set before. (The kernels the suite runs
//! on may lack the dummy and vlan link kinds; tun is built in wherever `ip tuntap` works.) What
//! the kernel does later by itself, after the command that caused it returned (linkwatch
//! reporting an operational state or a carrier change, IPv6 duplicate address detection), is not
//! ordered by marks: wait for its own event first ([`until_view`]).

use std::time::{Duration, Instant};

use netreach::{Notification, Snapshot, Subscription};

use super::{Ns, run};

/// The marker interface's name.
pub const MARK: &str = "mark0";

/// How long a subscription may take to report a mark: the monitor may first have a burst of
/// tens of thousands of changes to publish, on a machine busy with builds. Only a failing test
/// waits this long.
pub const MARK_WAIT: Duration = Duration::from_secs(60);

/// The marker interface of one namespace, and the MTU its last mark set.
#[derive(Debug)]
pub struct Marker {
    netns: String,
    mtu: u32,
}

impl Marker {
    /// Adds `mark0` to `ns`, down. Make it before the monitor starts, or read its addition like
    /// any change.
    pub fn new(ns: &Ns) -> Marker {
        ns.ip(&format!("tuntap add mode tun dev {MARK}"));
        let mtu = ns
            .ip_json(&format!("link show {MARK}"))
            .get(0)
            .and_then(|l| l["mtu"].as_u64())
            .expect("the marker's MTU") as u32;
        Marker {
            netns: ns.name.clone(),
            mtu,
        }
    }

    /// Makes a mark: sets an MTU `mark0` has not had yet (IPv6 needs 1280 at least).
    pub fn mark(&mut self) {
        self.mtu = if self.mtu >= 9000 { 1280 } else { self.mtu + 1 };
        let mtu = self.mtu.to_string();
        run(
            "ip",
            &["-n", &self.netns, "link", "set", MARK, "mtu", mtu.as_str()],
        );
    }

    /// True when `snap` has the last mark.
    pub fn is_in(&self, snap: &Snapshot) -> bool {
        snap.interface_by_name(MARK)
            .is_some_and(|i| i.mtu == self.mtu)
    }

    /// Reads `sub` until its view has the last mark (at once if it has); returns what it read.
    /// A lagging subscription's merged changes include the mark like any other change.
    pub fn wait(&self, sub: &mut Subscription) -> Vec<Notification> {
        until_view(sub, "the mark", MARK_WAIT, |snap| self.is_in(snap))
    }

    /// Makes a mark and reads `sub` until its view has it: every change notified before is then
    /// in `sub.view()` (though not every item may have been handed out yet: see [`settle`]).
    ///
    /// [`settle`]: Marker::settle
    pub fn pass(&mut self, sub: &mut Subscription) -> Vec<Notification> {
        self.mark();
        self.wait(sub)
    }

    /// Two marks, the second made once the first was seen: everything the monitor made of the
    /// changes before this call (every item of their batches, route refreshes, lookups,
    /// connectivity and reachability changes, and their counters) has been published to every
    /// subscriber. See the module docs.
    pub fn settle(&mut self, sub: &mut Subscription) -> Vec<Notification> {
        let mut read = self.pass(sub);
        read.extend(self.pass(sub));
        read
    }
}

/// Reads `sub` until its view satisfies `want` (at once if it does), failing with `what` after
/// `timeout`; returns what it read. The view is the state after the last item read.
pub fn until_view(
    sub: &mut Subscription,
    what: &str,
    timeout: Duration,
    want: impl Fn(&Snapshot) -> bool,
) -> Vec<Notification> {
    let deadline = Instant::now() + timeout;
    let mut read = Vec::new();
    while !want(sub.view()) {
        let left = deadline.saturating_duration_since(Instant::now());
        match sub.recv_timeout(left) {
            Some(n) => read.push(n),
            None => panic!(
                "{what}: not in the monitor's view within {timeout:?} ({} items read{})",
                read.len(),
                if sub.try_recv().is_err() {
                    ", the monitor stopped"
                } else {
                    ""
                }
            ),
        }
    }
    read
}

/// Reads `sub` until an item that `want` accepts, failing with `what` after `timeout`; returns
/// what it read, that item last.
pub fn until_item(
    sub: &mut Subscription,
    what: &str,
    timeout: Duration,
    want: impl Fn(&Notification) -> bool,
) -> Vec<Notification> {
    let deadline = Instant::now() + timeout;
    let mut read = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(n) = sub.recv_timeout(left) else {
            panic!("no {what} within {timeout:?} ({} items read)", read.len());
        };
        let hit = want(&n);
        read.push(n);
        if hit {
            return read;
        }
    }
}
