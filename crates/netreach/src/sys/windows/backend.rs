//! The Windows backend behind [`crate::sys::Backend`]: the model from IP Helper's three
//! tables, kept current by its change notifications (notified mode) or by reading the tables on
//! an interval (polled mode, and the fallback where a notification cannot be had).
//!
//! Either way a change is a fresh read of the tables, handed to the machine as a full state
//! ([`Read::State`]): the machine diffs it against its model (`handle_state`), so a repeat is a
//! no-op and nothing is missed between a notification and the read it causes. IP Helper's
//! notifications say that something changed and which row, but a row alone cannot keep a model
//! whose addresses and routes hang on interfaces (Windows does not say when a removed
//! interface's routes went), and the tables are small.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use netreach_core::machine::LookupFailure;
use netreach_core::reach::{LookupAnswer, LookupSource, RouteQuery};
use netreach_core::{Family, Medium, Route, Snapshot, Update};

use super::iphlp::{self, CallFailed, Notifications, NotifyFailure};
use super::lookup;
use super::nlm::Nlm;
use super::wake::{Changes, Waker};
use crate::monitor::Counters;
use crate::sys::{Backend, BackendKind, DumpHook, HintCell, Read};
use crate::{Error, Netns};

/// Warned once per process that notifications are unavailable and the monitor polls.
static POLLING_FALLBACK: Once = Once::new();

pub(crate) fn open(
    kind: BackendKind,
    netns: &Netns,
    _rcvbuf: usize,
    _hook: Option<DumpHook>,
) -> Result<(Box<dyn Backend>, Snapshot), Error> {
    if *netns != Netns::Current {
        return Err(Error::Unsupported {
            what: "network namespaces",
        });
    }
    let changes = Arc::new(Changes::default());
    // Subscribe before the first read, so that no change falls in between.
    let mode = match kind {
        BackendKind::Netlink => match Notifications::register(&changes) {
            Ok(n) => Mode::Notified { _registrations: n },
            Err(why) => {
                POLLING_FALLBACK.call_once(|| {
                    let why = match why {
                        NotifyFailure::Failed(f) => format!("{} failed: {}", f.call, f.io()),
                        NotifyFailure::NoHandle(call) => {
                            format!("{call} returned success but no handle")
                        }
                    };
                    tracing::warn!(
                        reason = %why,
                        interval = ?BackendKind::DEFAULT_POLL_INTERVAL,
                        "IP Helper change notifications are not available; polling instead"
                    );
                });
                Mode::polled(BackendKind::DEFAULT_POLL_INTERVAL)
            }
        },
        BackendKind::Polling { interval } => Mode::polled(interval),
    };
    let last = read_tables()?;
    let backend = Windows {
        mode,
        changes,
        last: last.clone(),
        nlm: Nlm::start(),
        model_lookups: 0,
    };
    Ok((Box::new(backend), last))
}

/// The three tables, as one state. Rows that fail the identity checks are left out and logged.
pub(crate) fn read_tables() -> Result<Snapshot, Error> {
    let err = |f: CallFailed| Error::System {
        call: f.call,
        source: f.io(),
    };
    let ifs = iphlp::interfaces().map_err(err)?;
    let addrs = iphlp::addresses().map_err(err)?;
    let routes = iphlp::routes().map_err(err)?;
    let (snap, rejected) = netreach_core::iphlp::snapshot(&ifs, &addrs, &routes);
    if !rejected.is_empty() {
        tracing::debug!(rows = rejected.len(), rejected = ?rejected, "IP Helper rows left out");
    }
    Ok(snap)
}

/// How a [`Windows`] backend learns of changes.
enum Mode {
    /// IP Helper's notifications wake the driver (dropping them cancels the registrations).
    Notified { _registrations: Notifications },
    /// The tables are read every `interval`; `next` is when the next read is due.
    Polled { interval: Duration, next: Instant },
}

impl Mode {
    fn polled(interval: Duration) -> Mode {
        let interval = interval.max(Duration::from_millis(1));
        Mode::Polled {
            interval,
            next: Instant::now() + interval,
        }
    }
}

/// The Windows backend.
struct Windows {
    mode: Mode,
    changes: Arc<Changes>,
    /// The last state read: what the machine's model is (every change comes as a full state),
    /// for the longest-prefix lookups where `GetBestRoute2` cannot answer.
    last: Snapshot,
    /// The Network List Manager's thread, if it could be started (it is a hint: the monitor
    /// works without it).
    nlm: Option<Nlm>,
    /// Lookups answered from the model, not the system.
    model_lookups: u64,
}

impl Windows {
    fn read_state(&mut self, counters: &Counters) -> Result<Read, Error> {
        match read_tables() {
            Ok(state) => {
                counters.messages.fetch_add(
                    (state.interfaces().len() + state.addresses().len() + state.routes().len())
                        as u64,
                    Ordering::Relaxed,
                );
                self.last = state.clone();
                Ok(Read::State(state))
            }
            // Tried again at the next change or poll: the model stays as it was.
            Err(e) => {
                counters.poll_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "reading the IP Helper tables failed; trying again later");
                Ok(Read::Drained)
            }
        }
    }
}

impl Backend for Windows {
    fn wait(&mut self, waker: &Waker, deadline: Option<Instant>) -> Result<(), Error> {
        self.changes.attach(&waker.0);
        let deadline = match &self.mode {
            Mode::Notified { .. } => {
                if self.changes.pending() {
                    return Ok(());
                }
                deadline
            }
            Mode::Polled { next, .. } => Some(deadline.map_or(*next, |d| d.min(*next))),
        };
        waker.0.sleep(deadline);
        Ok(())
    }

    fn read(
        &mut self,
        _out: &mut Vec<Update>,
        _max: usize,
        counters: &Counters,
    ) -> Result<Read, Error> {
        match &mut self.mode {
            Mode::Notified { .. } => {
                if !self.changes.take() {
                    return Ok(Read::Drained);
                }
                self.read_state(counters)
            }
            Mode::Polled { interval, next } => {
                if Instant::now() < *next {
                    return Ok(Read::Drained);
                }
                let interval = *interval;
                let read = self.read_state(counters);
                // The next poll is an interval after this one ends, so a slow read never
                // piles up.
                if let Mode::Polled { next, .. } = &mut self.mode {
                    *next = Instant::now() + interval;
                }
                read
            }
        }
    }

    fn dump(&mut self) -> Result<Snapshot, Error> {
        let state = read_tables()?;
        self.last = state.clone();
        Ok(state)
    }

    fn dump_routes(&mut self, family: Family, interface: Option<u32>) -> Result<Vec<Route>, Error> {
        let state = read_tables()?;
        let routes = state
            .routes()
            .filter(|r| r.family == family && interface.is_none_or(|i| r.uses_interface(i)))
            .cloned()
            .collect();
        Ok(routes)
    }

    fn lookup_routes(
        &mut self,
        queries: &[RouteQuery],
        out: &mut Vec<Result<LookupAnswer, LookupFailure>>,
    ) {
        for q in queries {
            let (answer, source) = lookup::lookup(q, &self.last);
            if source == LookupSource::Model {
                self.model_lookups += 1;
            }
            out.push(Ok(answer));
        }
    }

    fn medium_hint(&self, _name: &str) -> Option<Medium> {
        // The interface type (Wi-Fi, Ethernet) is in the model already.
        None
    }

    fn has_medium_hints(&self) -> bool {
        false
    }

    fn kind(&self) -> Option<BackendKind> {
        match self.mode {
            Mode::Notified { .. } => Some(BackendKind::Netlink),
            Mode::Polled { interval, .. } => Some(BackendKind::Polling { interval }),
        }
    }

    fn system_hint(&self) -> Option<HintCell> {
        self.nlm.as_ref().map(Nlm::cell)
    }
}

impl Drop for Windows {
    fn drop(&mut self) {
        if self.model_lookups > 0 {
            tracing::debug!(
                lookups = self.model_lookups,
                "route lookups answered from the model"
            );
        }
        // The NLM thread is stopped and joined by its own Drop; the notifications are
        // cancelled by theirs (the field order does not matter: neither touches the other).
        let _ = self.nlm.take();
    }
}
