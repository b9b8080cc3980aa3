//! A deterministic simulator for the [`Machine`]: a virtual clock, a fake kernel that answers
//! dumps and route lookups from its own snapshot (`reach::sim::kernel_lookup`), scripted probe
//! answers and scripted glue failures. It drives the machine exactly as the live driver does
//! (feed, act, publish, arm the timer) and records the stream.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::{Action, DumpFailure, LookupFailure, Machine, MachineConfig, Output, StatusId};
use crate::event::Update;
use crate::model::{Family, Snapshot};
use crate::probe::{ProbeKey, ProbeReason, ProbeResult, ProbeVerdict};
use crate::reach::sim::kernel_lookup;

/// How long a simulated probe takes.
pub(crate) const PROBE_LATENCY: Duration = Duration::from_millis(20);

pub(crate) struct Sim {
    pub(crate) machine: Machine,
    /// The fake kernel's own state: what dumps and lookups answer from.
    pub(crate) kernel: Snapshot,
    pub(crate) now: Instant,
    /// Every output so far, in order.
    pub(crate) stream: Vec<Output>,
    /// Scripted probe verdicts per (interface index, family); `Limited` when absent.
    pub(crate) verdicts: BTreeMap<(u32, Family), ProbeVerdict>,
    /// Probes in flight: (done at, owner, key, interface).
    probes: Vec<(Instant, StatusId, ProbeKey, String)>,
    /// The next this many full dumps fail.
    pub(crate) fail_dumps: u32,
    /// The next this many route dumps fail.
    pub(crate) fail_route_dumps: u32,
    /// The next this many lookups fail in transport.
    pub(crate) fail_lookups: u32,
    /// Every action handed out, for assertions.
    pub(crate) actions: Vec<Action>,
}

impl Sim {
    pub(crate) fn new(kernel: Snapshot) -> Sim {
        Sim {
            machine: Machine::new(kernel.clone(), MachineConfig::default()),
            kernel,
            now: Instant::now(),
            stream: Vec::new(),
            verdicts: BTreeMap::new(),
            probes: Vec::new(),
            fail_dumps: 0,
            fail_route_dumps: 0,
            fail_lookups: 0,
            actions: Vec::new(),
        }
    }

    /// The kernel changes and says so.
    pub(crate) fn notify(&mut self, updates: Vec<Update>) {
        for u in &updates {
            self.kernel.load(u.clone());
        }
        self.machine.handle_updates(updates, self.now);
        self.run();
    }

    /// The kernel changes and says nothing (a flush, a flag); the machine must find out.
    pub(crate) fn silently(&mut self, f: impl FnOnce(&mut Snapshot)) {
        f(&mut self.kernel);
    }

    /// Notifications were lost.
    pub(crate) fn overflow(&mut self) {
        self.machine.handle_overflow();
        self.run();
    }

    /// Act on every action and collect the outputs, until nothing is left to do now.
    pub(crate) fn run(&mut self) {
        let mut lookups = VecDeque::new();
        loop {
            while let Some(action) = self.machine.poll_action() {
                self.actions.push(action.clone());
                match action {
                    Action::Dump => {
                        let result = if self.fail_dumps > 0 {
                            self.fail_dumps -= 1;
                            Err(DumpFailure::new("scripted"))
                        } else {
                            Ok(self.kernel.clone())
                        };
                        self.machine.handle_dump(result, self.now);
                    }
                    Action::DumpRoutes { family, interface } => {
                        let result = if self.fail_route_dumps > 0 {
                            self.fail_route_dumps -= 1;
                            Err(DumpFailure::new("scripted"))
                        } else {
                            Ok(self
                                .kernel
                                .routes()
                                .filter(|r| r.family == family)
                                .filter(|r| interface.is_none_or(|i| r.uses_interface(i)))
                                .cloned()
                                .collect())
                        };
                        self.machine
                            .handle_routes(family, interface, result, self.now);
                    }
                    // Pipelined like the live glue: answered after the others.
                    Action::LookupRoute { owner, id, query } => {
                        lookups.push_back((owner, id, query))
                    }
                    Action::Probe {
                        owner,
                        key,
                        interface,
                    } => self
                        .probes
                        .push((self.now + PROBE_LATENCY, owner, key, interface)),
                    Action::ReadMediumHint { ifindex, .. } => {
                        self.machine.handle_medium_hint(ifindex, None, self.now)
                    }
                }
            }
            if lookups.is_empty() {
                break;
            }
            while let Some((owner, id, query)) = lookups.pop_front() {
                let answer = if self.fail_lookups > 0 {
                    self.fail_lookups -= 1;
                    Err(LookupFailure::Transport(libc::ENOBUFS))
                } else {
                    Ok(kernel_lookup(&self.kernel, &query))
                };
                self.machine.handle_lookup(owner, id, answer, self.now);
            }
        }
        while let Some(o) = self.machine.poll_output() {
            self.stream.push(o);
        }
    }

    /// Moves the virtual clock forward by `d`, firing timers and finishing probes on the way,
    /// each at its own moment.
    pub(crate) fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let probe = self.probes.iter().map(|p| p.0).min();
            let next = [self.machine.poll_timeout(), probe]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.finish_probes();
                    if self.machine.poll_timeout().is_some_and(|t| t <= self.now) {
                        self.machine.handle_timeout(self.now);
                    }
                    self.run();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn finish_probes(&mut self) {
        let now = self.now;
        let (done, left): (Vec<_>, Vec<_>) = self.probes.drain(..).partition(|p| p.0 <= now);
        self.probes = left;
        for (_, owner, key, interface) in done {
            let verdict = self
                .verdicts
                .get(&(key.ifindex, key.family))
                .cloned()
                .unwrap_or(ProbeVerdict::Limited {
                    reason: ProbeReason::NoResult,
                });
            let result = ProbeResult {
                interface,
                family: key.family,
                verdict,
                latency: PROBE_LATENCY,
                remote: None,
            };
            self.machine
                .handle_probe_result(owner, key, Some(result), now);
        }
    }

    /// The outputs since index `from`.
    pub(crate) fn since(&self, from: usize) -> &[Output] {
        &self.stream[from..]
    }
}
