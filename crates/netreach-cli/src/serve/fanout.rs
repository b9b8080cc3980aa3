//! The one reader of the monitor's stream, and the fan-out of its lines to the event streams.
//!
//! One thread reads [`netreach::Monitor::stream`] (blocking, no runtime), renders each item
//! once as the line `watch --json` prints and as an SSE frame (`id:` its `seq`, `event:` its
//! type, `data:` the line), keeps a bounded backlog of frames for clients that reconnect, and
//! hands each frame to every client's bounded queue. A client whose queue is full does not
//! read: it is dropped (its connection is closed), never buffered further.
//!
//! What a new client gets first is decided under the same lock as the publishing, so nothing
//! falls between its first frame and the next: a `ready` frame (the state after the last item
//! handed out, with that item's `seq`); with `Last-Event-ID`, the backlog's frames after that
//! id; or, if the backlog no longer reaches back that far, one `resynced` frame with the whole
//! state (docs/serve.md).

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use netreach::core::connectivity::Connectivity;
use netreach::{Event, Notification, Snapshot, Subscription, Verification};
use tokio::sync::{Notify, mpsc};

use super::config::Limits;
use super::metrics::Metrics;
use crate::cmd::filter::Shown;
use crate::output::json;

/// One rendered item of the stream.
#[derive(Debug, Clone)]
struct Frame {
    seq: Option<u64>,
    kind: &'static str,
    bytes: Bytes,
}

/// The line types a client may ask for with `?types=` (those of docs/schema/watch.json).
pub const TYPES: [&str; 16] = [
    "ready",
    "interface_added",
    "interface_removed",
    "interface_changed",
    "address_added",
    "address_removed",
    "address_changed",
    "route_added",
    "route_removed",
    "rule_added",
    "rule_removed",
    "resynced",
    "lagged",
    "connectivity_changed",
    "primary_changed",
    "probe_changed",
];

/// The types every client gets, whatever it asked for (as `watch --events`).
const ALWAYS: [&str; 3] = ["ready", "resynced", "lagged"];

/// A `?types=` filter: `None` passes everything.
pub type Types = Option<Arc<BTreeSet<&'static str>>>;

fn passes(types: &Types, kind: &str) -> bool {
    types
        .as_ref()
        .is_none_or(|t| t.contains(kind) || ALWAYS.contains(&kind))
}

/// The fan-out: the state the stream has led to, the backlog and the clients.
#[derive(Debug)]
pub struct Fanout {
    inner: Mutex<Inner>,
    limits: Limits,
    metrics: Arc<Metrics>,
    shown: Shown,
    probing: bool,
}

#[derive(Debug)]
struct Inner {
    /// The state after the last item handed out, and what it was derived into.
    snapshot: Arc<Snapshot>,
    connectivity: Connectivity,
    verification: Verification,
    names: json::Names,
    /// The `seq` of the last item handed out (what `snapshot` includes).
    last_seq: u64,
    /// A client whose `Last-Event-ID` is at least this gets every frame after it from the
    /// backlog; one below it missed frames the backlog no longer has.
    floor: u64,
    backlog: VecDeque<Frame>,
    clients: Vec<Client>,
    next_id: u64,
    /// Why no client can join any more (shutting down, or the monitor stopped).
    ended: Option<String>,
}

#[derive(Debug)]
struct Client {
    id: u64,
    tx: mpsc::Sender<Bytes>,
    types: Types,
    /// Closes the client's connection.
    kill: Arc<Notify>,
}

/// Why a client could not join.
#[derive(Debug)]
pub enum Refused {
    /// `max_sse_clients` streams are open.
    TooMany(usize),
    /// The service is ending, or the monitor stopped.
    Ended(String),
}

/// A joined client: the frames it gets first, then its queue.
#[derive(Debug)]
pub struct Joined {
    pub id: u64,
    pub first: Vec<Bytes>,
    pub rx: mpsc::Receiver<Bytes>,
}

impl Fanout {
    /// A fan-out starting from `first`, the stream's `ready` item, with the connectivity and
    /// verdicts of the status monitor read at the same time.
    pub fn new(
        first: &Notification,
        connectivity: Connectivity,
        verification: Verification,
        limits: Limits,
        metrics: Arc<Metrics>,
        shown: Shown,
        probing: bool,
    ) -> Fanout {
        let (snapshot, seq) = match first {
            Notification::Ready { snapshot, seq, .. } => (snapshot.clone(), *seq),
            _ => (Arc::new(Snapshot::default()), 0),
        };
        let mut names = json::Names::default();
        names.learn(&snapshot);
        Fanout {
            inner: Mutex::new(Inner {
                snapshot,
                connectivity,
                verification,
                names,
                last_seq: seq,
                floor: seq,
                backlog: VecDeque::new(),
                clients: Vec::new(),
                next_id: 1,
                ended: None,
            }),
            limits,
            metrics,
            shown,
            probing,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the stream until it ends (the monitor stopped) or `stop` is set (checked at
    /// least every 200 ms), handing out each item. Every run of items that are already queued
    /// is handed out under one lock, so that the state a joining client gets is that after a
    /// whole batch.
    pub fn run(&self, mut stream: Subscription, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let first = match stream.recv_timeout(Duration::from_millis(200)) {
                Some(n) => n,
                None => match stream.try_recv() {
                    Ok(Some(n)) => n,
                    Ok(None) => continue,
                    Err(_) => break,
                },
            };
            let mut inner = self.lock();
            let mut lagged = false;
            let mut next = Some(first);
            while let Some(n) = next {
                lagged |= matches!(n, Notification::Lagged { .. });
                self.publish(&mut inner, &n);
                next = stream.try_recv().ok().flatten();
            }
            inner.snapshot = Arc::new(stream.view().clone());
            if lagged {
                // Items were merged away: no reconnect from before this point can be replayed.
                inner.backlog.clear();
                inner.floor = inner.last_seq;
            }
        }
        if !stop.load(Ordering::Relaxed) {
            self.end("the monitor stopped");
        }
    }

    /// Renders one item, keeps it in the backlog and hands it to the clients.
    fn publish(&self, inner: &mut Inner, n: &Notification) {
        if let Some(seq) = n.seq() {
            inner.last_seq = seq;
        }
        let line = match n {
            Notification::Ready { .. } | Notification::Reachability { .. } => return,
            Notification::Connectivity { connectivity, .. } => {
                inner.connectivity = connectivity.clone();
                json::stream_line(n, &inner.names)
            }
            Notification::Verification {
                change,
                verification,
                ..
            } => {
                inner.verification = Verification::clone(verification);
                if let Some(r) = &change.result {
                    self.metrics.observe_probe(r.latency);
                }
                if !self.shown.interface(&change.interface) {
                    return;
                }
                json::stream_line(n, &inner.names)
            }
            _ => {
                if let Notification::Change { event, .. } = n {
                    let shown = self.shown.event(event, &inner.names);
                    inner.names.note(event);
                    if !shown {
                        return;
                    }
                    match &**event {
                        Event::InterfaceChanged { new, changes, .. } if changes.carrier => {
                            self.metrics.carrier_changed(&new.name);
                        }
                        Event::InterfaceRemoved(i) => self.metrics.interface_removed(&i.name),
                        _ => {}
                    }
                }
                json::stream_line(n, &inner.names)
            }
        };
        let Some(Ok(line)) = line else { return };
        let kind = type_of(&line);
        self.metrics.count_line(kind);
        let frame = Frame {
            seq: n.seq(),
            kind,
            bytes: sse(n.seq(), kind, &line),
        };
        if frame.seq.is_some() {
            inner.backlog.push_back(frame.clone());
            while inner.backlog.len() > self.limits.backlog {
                if let Some(old) = inner.backlog.pop_front() {
                    inner.floor = old.seq.unwrap_or(inner.floor);
                }
            }
        }
        self.send(inner, &frame);
    }

    /// Hands a frame to every client that wants it; drops a client whose queue is full.
    fn send(&self, inner: &mut Inner, frame: &Frame) {
        let metrics = &self.metrics;
        inner.clients.retain(|c| {
            if !passes(&c.types, frame.kind) {
                return true;
            }
            match c.tx.try_send(frame.bytes.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // It does not read: close its connection rather than hold more for it.
                    c.kill.notify_one();
                    metrics.sse_dropped();
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        metrics.set_sse_clients(inner.clients.len());
    }

    /// A new event stream. `last_event_id`: where a reconnecting client left off.
    pub fn join(
        &self,
        last_event_id: Option<u64>,
        types: Types,
        kill: Arc<Notify>,
    ) -> Result<Joined, Refused> {
        let mut inner = self.lock();
        if let Some(why) = &inner.ended {
            return Err(Refused::Ended(why.clone()));
        }
        // Streams whose connection is gone leave at the next frame; count only live ones.
        inner.clients.retain(|c| !c.tx.is_closed());
        if inner.clients.len() >= self.limits.max_sse_clients {
            return Err(Refused::TooMany(self.limits.max_sse_clients));
        }
        let first = match last_event_id {
            Some(id) if inner.floor <= id && id <= inner.last_seq => inner
                .backlog
                .iter()
                .filter(|f| f.seq.is_some_and(|s| s > id) && passes(&types, f.kind))
                .map(|f| f.bytes.clone())
                .collect(),
            Some(_) => vec![self.state_frame(&inner, true)],
            None => vec![self.state_frame(&inner, false)],
        };
        let (tx, rx) = mpsc::channel(self.limits.sse_queue);
        let id = inner.next_id;
        inner.next_id += 1;
        inner.clients.push(Client {
            id,
            tx,
            types,
            kill,
        });
        self.metrics.set_sse_clients(inner.clients.len());
        Ok(Joined { id, first, rx })
    }

    /// A stream left (its connection closed).
    pub fn leave(&self, id: u64) {
        let mut inner = self.lock();
        inner.clients.retain(|c| c.id != id);
        self.metrics.set_sse_clients(inner.clients.len());
    }

    /// The `ready` frame of the state now (or, `resynced`, the same as a `resynced` frame).
    fn state_frame(&self, inner: &Inner, resynced: bool) -> Bytes {
        let ready = Notification::Ready {
            seq: inner.last_seq,
            time: SystemTime::now(),
            snapshot: self.shown.snapshot(&inner.snapshot),
        };
        let mut line = json::Line::new(&ready, &inner.names).with_connectivity(&inner.connectivity);
        if self.probing {
            line = line.with_verification(&inner.verification);
        }
        if resynced {
            line = line.into_resynced();
        }
        let text = serde_json::to_string(&line).unwrap_or_default();
        let kind = if resynced { "resynced" } else { "ready" };
        sse(Some(inner.last_seq), kind, &text)
    }

    /// Ends every stream with a last comment saying why; no client joins after this.
    pub fn end(&self, why: &str) {
        let mut inner = self.lock();
        if inner.ended.is_none() {
            inner.ended = Some(why.to_owned());
        }
        let comment = Bytes::from(format!(": {why}\n\n"));
        for c in inner.clients.drain(..) {
            // A full queue: its connection is closed at once instead.
            if c.tx.try_send(comment.clone()).is_err() {
                c.kill.notify_one();
            }
        }
        self.metrics.set_sse_clients(0);
    }

    /// The status document now (`/v1/status`).
    pub fn status(&self) -> String {
        let inner = self.lock();
        let snap = self.shown.snapshot(&inner.snapshot);
        let mut doc = json::Status::new(&snap).with_connectivity(&inner.connectivity);
        if self.probing {
            doc = doc.with_verification(&inner.verification);
        }
        serde_json::to_string(&doc).unwrap_or_default()
    }

    /// Reads the state now for the metrics.
    pub fn with_state<R>(
        &self,
        f: impl FnOnce(&Snapshot, &Connectivity, Option<&Verification>) -> R,
    ) -> R {
        let inner = self.lock();
        let snap = self.shown.snapshot(&inner.snapshot);
        f(
            &snap,
            &inner.connectivity,
            self.probing.then_some(&inner.verification),
        )
    }

    /// Why no client can join, if so.
    pub fn ended(&self) -> Option<String> {
        self.lock().ended.clone()
    }
}

/// The `type` of a rendered line (always its first key; see output/json/lines.rs).
fn type_of(line: &str) -> &'static str {
    let t = line
        .strip_prefix("{\"type\":\"")
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("");
    TYPES
        .iter()
        .find(|k| **k == t)
        .copied()
        .unwrap_or("unknown")
}

/// One SSE frame: `id:` (when the item has a `seq`), `event:`, `data:`. A JSON line holds no
/// newline, so it is one `data:` field.
fn sse(seq: Option<u64>, kind: &str, line: &str) -> Bytes {
    let mut s = String::with_capacity(line.len() + 40);
    if let Some(seq) = seq {
        s.push_str(&format!("id: {seq}\n"));
    }
    s.push_str("event: ");
    s.push_str(kind);
    s.push_str("\ndata: ");
    s.push_str(line);
    s.push_str("\n\n");
    Bytes::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_sse() {
        let b = sse(Some(7), "route_added", "{\"type\":\"route_added\"}");
        assert_eq!(
            &b[..],
            b"id: 7\nevent: route_added\ndata: {\"type\":\"route_added\"}\n\n"
        );
        assert_eq!(
            &sse(None, "lagged", "{}")[..],
            b"event: lagged\ndata: {}\n\n"
        );
        assert_eq!(type_of("{\"type\":\"lagged\",\"time\":\"x\"}"), "lagged");
    }

    #[test]
    fn the_types_are_those_of_the_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../../docs/schema/watch.json")).unwrap();
        let mut ours: Vec<&str> = TYPES.to_vec();
        let mut theirs: Vec<&str> = schema["$defs"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs);
    }
}
