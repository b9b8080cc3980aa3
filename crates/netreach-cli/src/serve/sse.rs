//! `GET /v1/events`: the stream as Server-Sent Events.
//!
//! Each event is one item of the monitor's stream: `id:` its `seq`, `event:` its type,
//! `data:` the line `watch --json` prints for it. The first is `ready`; with a
//! `Last-Event-ID` header, the events after that id from the backlog, or one `resynced`
//! event with the whole state when the backlog no longer has them ([`super::fanout`]).
//! `?types=a,b` passes only those types (and `ready`, `resynced`, `lagged`).

use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use hyper::{Request, Response, StatusCode};
use tokio::sync::{Notify, mpsc};

use super::fanout::{Fanout, Refused, TYPES, Types};
use super::http::{Reply, query, text};

/// The body of one event stream: the first frames, then the client's queue until the
/// fan-out drops it (the service ends, or the client did not read). Leaves the fan-out when
/// dropped (the connection closed).
struct Stream {
    first: VecDeque<Bytes>,
    rx: mpsc::Receiver<Bytes>,
    fanout: Arc<Fanout>,
    id: u64,
}

impl Body for Stream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(b) = self.first.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        self.rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.fanout.leave(self.id);
    }
}

/// Answers `GET /v1/events`; `kill` closes this request's connection.
pub fn events<B>(fanout: &Arc<Fanout>, req: &Request<B>, kill: Arc<Notify>) -> Reply {
    let types = match types(req.uri().query()) {
        Ok(t) => t,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let last = match req.headers().get("last-event-id").map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) if v.trim().is_empty() => None,
        Some(Ok(v)) => match v.trim().parse::<u64>() {
            Ok(id) => Some(id),
            Err(_) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("Last-Event-ID {v:?} is not a seq (a whole number)"),
                );
            }
        },
        Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "Last-Event-ID is not text".into()),
    };
    match fanout.join(last, types, kill) {
        Ok(joined) => {
            let body = Stream {
                first: joined.first.into(),
                rx: joined.rx,
                fanout: fanout.clone(),
                id: joined.id,
            };
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/event-stream")
                .header("cache-control", "no-cache")
                .header("x-accel-buffering", "no")
                .body(body.boxed())
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, String::new()))
        }
        Err(Refused::TooMany(n)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("too many event streams: {n} are open (limits.max_sse_clients)"),
        ),
        Err(Refused::Ended(why)) => text(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// `?types=route_added,connectivity_changed`: the line types asked for; an unknown one is
/// bad input, named. Other parameters are bad input too.
fn types(q: Option<&str>) -> Result<Types, String> {
    let mut set = BTreeSet::new();
    let mut any = false;
    for (k, v) in query(q.unwrap_or(""))? {
        if k != "types" {
            return Err(format!("unknown parameter {k:?}: /v1/events takes types"));
        }
        any = true;
        for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match TYPES.iter().find(|k| **k == t) {
                Some(k) => {
                    set.insert(*k);
                }
                None => {
                    return Err(format!(
                        "unknown event type {t:?}: expected one of {}",
                        TYPES.join(", ")
                    ));
                }
            }
        }
    }
    Ok(any.then(|| Arc::new(set)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_checked() {
        assert!(types(None).unwrap().is_none());
        let t = types(Some("types=route_added,connectivity_changed"))
            .unwrap()
            .unwrap();
        assert_eq!(t.len(), 2);
        assert!(
            types(Some("types=route_add"))
                .unwrap_err()
                .contains("route_add")
        );
        assert!(
            types(Some("type=x"))
                .unwrap_err()
                .contains("unknown parameter")
        );
    }
}
