//! The monitor's thread: one short loop around the sans-IO [`Machine`] and a [`Backend`].
//!
//! Each turn: **feed** the machine what the backend read and what the handles asked for;
//! **act** on the machine's actions (dumps and route lookups through the backend, probes on
//! worker threads, medium hints); **publish** its outputs to the [`Hub`]; **arm the timer** with
//! the machine's one deadline and sleep in the backend until the kernel, a handle or the deadline
//! wakes it. With no deadline there is no timeout: idle is idle.
//!
//! Handles talk to the thread by queueing [`Command`]s and waking it. A failure of the backend
//! while reading stops the monitor with a typed error (subscriptions then end); a failed dump or
//! lookup does not: it goes back to the machine as a typed input.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use netreach_core::Snapshot;
use netreach_core::connectivity::ConnectivityConfig;
use netreach_core::machine::{Action, DumpFailure, Machine, Output, ReachId, StatusId};
use netreach_core::probe::{ProbeKey, ProbeResult};
use netreach_core::reach::{LookupId, RouteQuery, Target, TargetId};

use crate::hub::{Batch, Hub, StatusView, Tag, lock};
use crate::monitor::Counters;
use crate::sys::{Backend, Read, Waker};
use crate::verify::ProbeConfig;
use crate::{Error, Netns, Notification};

/// Most updates applied before publishing, so a long burst is handed out in slices.
const MAX_BATCH: usize = 4096;
/// Most items handed to the hub at once.
const PUBLISH_SLICE: usize = 256;
/// Route lookups sent before their answers are handled and published.
const LOOKUP_SLICE: usize = 256;

/// What a handle asks of the monitor's thread. Transient (queued, then consumed), so the size
/// of the large variants does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Command {
    AttachStatus {
        id: StatusId,
        config: ConnectivityConfig,
        probe: Option<ProbeConfig>,
        done: SyncSender<()>,
    },
    DetachStatus(StatusId),
    AttachReach {
        id: ReachId,
        done: SyncSender<()>,
    },
    DetachReach(ReachId),
    AddTarget {
        owner: ReachId,
        id: TargetId,
        target: Target,
    },
    RemoveTarget {
        owner: ReachId,
        id: TargetId,
    },
    /// A probe worker finished (`None`: the probe could not run).
    ProbeDone {
        owner: StatusId,
        key: ProbeKey,
        result: Option<ProbeResult>,
    },
}

/// What the caller's handles and the thread share.
pub(crate) struct Shared {
    pub(crate) waker: Waker,
    pub(crate) stop: AtomicBool,
    pub(crate) counters: Counters,
    pub(crate) failure: Mutex<Option<Arc<Error>>>,
    /// Commands waiting; `None` once the thread has stopped (a command sent then is dropped at
    /// once, so whoever waits for its answer learns it will never come).
    pub(crate) commands: Mutex<Option<Vec<Command>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("stop", &self.stop)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new() -> Result<Shared, Error> {
        Ok(Shared {
            waker: Waker::new()?,
            stop: AtomicBool::new(false),
            counters: Counters::default(),
            failure: Mutex::new(None),
            commands: Mutex::new(Some(Vec::new())),
        })
    }

    /// Queues a command and wakes the thread; drops it when the thread has stopped.
    pub(crate) fn send(&self, command: Command) {
        if let Some(queue) = lock(&self.commands).as_mut() {
            queue.push(command);
            self.waker.wake();
        }
    }
}

/// The monitor's thread.
pub(crate) struct Driver {
    machine: Machine,
    backend: Box<dyn Backend>,
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    netns: Netns,
    probes: std::collections::BTreeMap<StatusId, ProbeConfig>,
    /// Probe worker threads, joined once done (and all of them when the thread stops).
    workers: Vec<JoinHandle<()>>,
    /// Lookups waiting to be sent as one pipelined batch.
    lookups: Vec<(ReachId, LookupId, RouteQuery)>,
    /// States the hub and the readers let go of, freed once a batch is out: freeing a state's
    /// nodes is work no reader waits for.
    garbage: Vec<Arc<Snapshot>>,
    /// The thread owes a reader the core once this wake-up's first change is out (see
    /// `hand_over`); set by a wake-up's first read.
    owes_core: bool,
    /// A publication since this wake-up's first read woke a reader.
    woke: bool,
}

impl Driver {
    /// Starts the thread.
    pub(crate) fn spawn(
        machine: Machine,
        backend: Box<dyn Backend>,
        hub: Arc<Hub>,
        shared: Arc<Shared>,
        netns: Netns,
    ) -> Result<JoinHandle<()>, Error> {
        let mut driver = Driver {
            machine,
            backend,
            hub,
            shared,
            netns,
            probes: Default::default(),
            workers: Vec::new(),
            lookups: Vec::new(),
            garbage: Vec::new(),
            owes_core: false,
            woke: false,
        };
        std::thread::Builder::new()
            .name("netreach-monitor".into())
            .spawn(move || driver.run())
            .map_err(Error::Thread)
    }

    fn run(&mut self) {
        if let Err(e) = self.run_loop() {
            tracing::error!(error = %e, "netreach monitor stopped");
            *lock(&self.shared.failure) = Some(Arc::new(e));
        }
        // Commands sent from now on are dropped, and so are those still queued.
        drop(lock(&self.shared.commands).take());
        self.hub.close();
        // Probes in flight end within their timeout; no thread outlives the monitor.
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }

    fn run_loop(&mut self) -> Result<(), Error> {
        let mut updates = Vec::new();
        // The first state may ask for medium hints.
        self.act();
        loop {
            // Feed: everything the backend has, in slices of at most MAX_BATCH updates. The
            // first read after a wake-up stops after the first message that changes something:
            // the kernel sends a change's own message first (the link's, the address's) and
            // its consequences after it (routes, addresses flushed), which by the time this
            // thread runs are queued behind it; the change goes out before they are decoded.
            let mut max = 1;
            loop {
                if max == 1 {
                    self.owes_core = true;
                    self.woke = false;
                }
                let read = self
                    .backend
                    .read(&mut updates, max, &self.shared.counters)?;
                max = MAX_BATCH;
                let now = Instant::now();
                let more = matches!(read, Read::More);
                match read {
                    Read::Overflow => self.machine.handle_overflow(),
                    Read::State(state) => self.machine.handle_state(state, now),
                    Read::Drained | Read::More => {
                        if !updates.is_empty() {
                            self.machine.handle_updates(updates.drain(..), now);
                        }
                    }
                }
                // The model changes go out at once, before any IO they ask for (a route
                // refresh, lookups), with the derived changes that need none (connectivity);
                // the others follow.
                self.machine.derive();
                self.publish();
                // Then the IO the change itself asks for (route lookups for the connection
                // targets it may affect, a dump), whose outcome readers wait for too; the
                // thread hands the core over after its first slice of lookups, or here.
                self.act();
                self.hand_over();
                self.garbage.clear();
                if self.shared.stop.load(Ordering::Acquire) {
                    return Ok(());
                }
                if !more {
                    break;
                }
            }
            // Requests from handles and finished probes.
            let commands = lock(&self.shared.commands)
                .as_mut()
                .map(std::mem::take)
                .unwrap_or_default();
            for c in commands {
                self.command(c);
            }
            self.reap_workers();
            self.act();
            self.garbage.clear();
            // Arm the timer and sleep until the kernel, a handle or the deadline wakes us.
            let deadline = self.machine.poll_timeout();
            self.backend.wait(&self.shared.waker, deadline)?;
            if self.shared.stop.load(Ordering::Acquire) {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.machine.handle_timeout(Instant::now());
            }
        }
    }

    fn command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::AttachStatus {
                id,
                config,
                probe,
                done,
            } => {
                let schedule = probe.as_ref().map(|p| p.schedule);
                self.machine.attach_status(id, config, schedule, now);
                if let Some(p) = probe {
                    self.probes.insert(id, p);
                }
                let view = StatusView {
                    connectivity: self.machine.connectivity(id).cloned().unwrap_or_default(),
                    verification: self.machine.verification(id).unwrap_or_default(),
                };
                self.hub.with_state(|st| st.statuses.insert(id, view));
                let _ = done.send(());
            }
            Command::DetachStatus(id) => {
                self.machine.detach_status(id);
                self.probes.remove(&id);
                self.hub.close_owner(Tag::Status(id));
            }
            Command::AttachReach { id, done } => {
                self.machine.attach_reach(id);
                let _ = done.send(());
            }
            Command::DetachReach(id) => {
                self.machine.detach_reach(id);
                self.hub.close_owner(Tag::Reach(id));
            }
            Command::AddTarget { owner, id, target } => {
                self.machine.add_target(owner, id, target);
            }
            Command::RemoveTarget { owner, id } => self.machine.remove_target(owner, id),
            Command::ProbeDone { owner, key, result } => {
                self.machine.handle_probe_result(owner, key, result, now);
            }
        }
    }

    /// Does what the machine asks, until it asks nothing more. Dumps are done at once; route
    /// lookups are gathered and sent in pipelined slices. What is known before the lookups
    /// (the model changes, and the bad news the model alone decides) is published first, and
    /// the outputs of each slice before the next: bad news is fast. Everything the machine
    /// has to say is published when it returns.
    fn act(&mut self) {
        loop {
            while let Some(action) = self.machine.poll_action() {
                self.action(action);
                // Verdicts of the first targets out while the machine judges the rest.
                if self.machine.ready_outputs() >= PUBLISH_SLICE {
                    self.publish();
                }
            }
            self.publish();
            if self.lookups.is_empty() {
                return;
            }
            let batch = std::mem::take(&mut self.lookups);
            for slice in batch.chunks(LOOKUP_SLICE) {
                let queries: Vec<RouteQuery> = slice.iter().map(|(_, _, q)| *q).collect();
                let mut answers = Vec::with_capacity(queries.len());
                self.backend.lookup_routes(&queries, &mut answers);
                let now = Instant::now();
                let mut owners: Vec<ReachId> = Vec::new();
                for ((owner, id, _), answer) in slice.iter().zip(answers) {
                    if !owners.contains(owner) {
                        owners.push(*owner);
                    }
                    self.machine.handle_lookup(*owner, *id, answer, now);
                }
                let counts: Vec<_> = owners
                    .into_iter()
                    .map(|id| (id, self.machine.lookups(id)))
                    .collect();
                self.hub.with_state(|st| {
                    for (id, n) in counts {
                        if let Some(v) = st.reaches.get_mut(&id) {
                            v.lookups = n;
                        }
                    }
                });
                self.publish();
                self.hand_over();
            }
        }
    }

    fn action(&mut self, action: Action) {
        let c = &self.shared.counters;
        match action {
            Action::Dump => {
                c.resyncs.fetch_add(1, Ordering::Relaxed);
                let result = self.backend.dump().map_err(|e| {
                    tracing::warn!(error = %e, "dump failed; retrying");
                    DumpFailure::from(&e)
                });
                c.rcvbuf
                    .store(self.backend.rcvbuf() as u64, Ordering::Relaxed);
                self.machine.handle_dump(result, Instant::now());
            }
            Action::DumpRoutes { family, interface } => {
                c.route_refreshes.fetch_add(1, Ordering::Relaxed);
                let result = self.backend.dump_routes(family, interface).map_err(|e| {
                    tracing::warn!(error = %e, "route refresh failed; resyncing");
                    DumpFailure::from(&e)
                });
                self.machine
                    .handle_routes(family, interface, result, Instant::now());
            }
            Action::LookupRoute { owner, id, query } => self.lookups.push((owner, id, query)),
            Action::ReadMediumHint { ifindex, name } => {
                let hint = self.backend.medium_hint(&name);
                self.machine
                    .handle_medium_hint(ifindex, hint, Instant::now());
            }
            Action::Probe {
                owner,
                key,
                interface,
            } => self.probe(owner, key, interface),
            // A newer core's actions this driver cannot do: nothing comes of them.
            _ => {}
        }
    }

    /// Runs one probe on a worker thread inside the monitor's namespace.
    fn probe(&mut self, owner: StatusId, key: ProbeKey, interface: String) {
        let Some(config) = self.probes.get(&owner) else {
            return;
        };
        let endpoint = config.endpoint.clone();
        let options = config.options();
        let netns = self.netns.clone();
        let shared = Arc::downgrade(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("netreach-probe".into())
            .spawn(move || {
                let outcome = netns
                    .run(|| crate::probe::probe_with(&endpoint, &interface, key.family, &options));
                let result = match outcome {
                    Ok(Ok(result)) => Some(result),
                    // The probe itself could not run (no privilege to bind to the interface,
                    // say): no verdict; the schedule retries later.
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, %key, "probe failed to run");
                        None
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, %key, "probe failed to run");
                        None
                    }
                };
                if let Some(shared) = shared.upgrade() {
                    shared.send(Command::ProbeDone { owner, key, result });
                }
            });
        match spawned {
            Ok(thread) => self.workers.push(thread),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a probe thread");
                self.machine
                    .handle_probe_result(owner, key, None, Instant::now());
            }
        }
    }

    /// Joins the probe workers that are done.
    fn reap_workers(&mut self) {
        let (done, running): (Vec<_>, Vec<_>) =
            self.workers.drain(..).partition(|w| w.is_finished());
        self.workers = running;
        for w in done {
            let _ = w.join();
        }
    }

    /// Hands the core to the readers once per wake-up, after the first publication of what
    /// its first change decides without the kernel's next messages, if that woke one.
    ///
    /// A reader the scheduler woke on this thread's core (it prefers the waker's core when the
    /// reader's own is busy: on two cores, the one that made the change) would otherwise wait
    /// until this thread has decoded and applied the change's consequences and gone back to
    /// sleep, tens of microseconds. With a core free it runs there, and this costs one system
    /// call per wake-up. Not before the first lookups: a reader taking the model change alone
    /// would put the reachability change behind its own processing and its going back to
    /// sleep.
    fn hand_over(&mut self) {
        if std::mem::take(&mut self.owes_core) && self.woke {
            std::thread::yield_now();
        }
    }

    /// Hands the machine's outputs to the hub, as one batch with the state after it (in
    /// slices of `PUBLISH_SLICE`); `woke` records whether that woke a reader.
    fn publish(&mut self) {
        // In slices, so that readers start on the first while the rest is handed over.
        loop {
            let time = SystemTime::now();
            let mut items = Vec::new();
            let mut changes = 0u64;
            let mut seq = 0;
            while let Some(o) = self.machine.poll_output() {
                changes += u64::from(matches!(o, Output::Model { .. }));
                seq = o.seq();
                items.push(to_notification(o, time));
                if items.len() >= PUBLISH_SLICE {
                    break;
                }
            }
            if items.is_empty() {
                return;
            }
            self.shared
                .counters
                .changes
                .fetch_add(changes, Ordering::Relaxed);
            self.woke |= self.hub.publish(
                Batch {
                    snapshot: self.machine.snapshot().clone(),
                    seq,
                    items,
                },
                &mut self.garbage,
            );
        }
    }
}

fn to_notification(o: Output, time: SystemTime) -> (Tag, Notification) {
    match o {
        Output::Model { seq, event } => (Tag::Model, Notification::Change { seq, time, event }),
        Output::Resynced { seq } => (Tag::Model, Notification::Resynced { seq, time }),
        Output::Connectivity {
            seq,
            cause,
            owner,
            change,
            connectivity,
        } => (
            Tag::Status(owner),
            Notification::Connectivity {
                seq,
                cause_seq: cause,
                time,
                change,
                connectivity,
            },
        ),
        Output::Verification {
            seq,
            cause,
            owner,
            change,
            verification,
            connectivity,
        } => (
            Tag::Status(owner),
            Notification::Verification {
                seq,
                cause_seq: cause,
                time,
                change,
                verification,
                connectivity,
            },
        ),
        Output::Reachability {
            seq,
            cause,
            owner,
            id,
            target,
            old,
            new,
        } => (
            Tag::Reach(owner),
            Notification::Reachability {
                seq,
                cause_seq: cause,
                time,
                id,
                target,
                old,
                new,
            },
        ),
        // A newer core's outputs: nothing this driver knows to publish; a resync marker is the
        // safe stand-in (it tells readers to trust the state, not their history).
        other => (
            Tag::Model,
            Notification::Resynced {
                seq: other.seq(),
                time,
            },
        ),
    }
}

impl From<&Error> for DumpFailure {
    fn from(e: &Error) -> DumpFailure {
        DumpFailure::new(crate::error::chain(e))
    }
}
