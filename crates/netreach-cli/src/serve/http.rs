//! The HTTP/1.1 side: listeners (TCP and Unix), the bounds on connections, and the routes.
//!
//! Every connection is held to the limits of docs/serve.md: at most `max_connections` at once
//! (one more is answered 503 and closed), a request head of at most `max_header_bytes` (431),
//! sent within `header_timeout_ms` (else closed: a slowloris client holds nothing for long),
//! and a malformed request is a 400 from hyper itself. An event stream whose client does not
//! read is closed by the fan-out ([`super::fanout`]).

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use netreach::{ConnectionMonitor, Monitor};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, Semaphore, watch};

use super::config::Limits;
use super::fanout::Fanout;
use crate::output::json;

pub type Reply = Response<BoxBody<Bytes, Infallible>>;

/// What the routes answer from: one per configuration.
pub struct App {
    pub fanout: Arc<Fanout>,
    pub registry: Registry,
    pub monitor: Monitor,
    pub conn: ConnectionMonitor,
    pub limits: Limits,
    pub connections: Arc<Semaphore>,
    /// Route lookups of `/v1/reach` in flight at once (each holds a blocking thread).
    pub lookups: Arc<Semaphore>,
    /// Becomes `true` when the service ends or reloads.
    pub stop: watch::Receiver<bool>,
}

/// One listener, TCP or Unix.
pub enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

/// Accepts connections until `stop`, serving each on its own task.
pub async fn accept(app: Arc<App>, listener: Listener) {
    let mut stop = app.stop.clone();
    loop {
        let accepted = tokio::select! {
            a = accept_one(&listener) => a,
            _ = stopped(&mut stop) => return,
        };
        match accepted {
            Ok(Io::Tcp(s)) => {
                let _ = s.set_nodelay(true);
                spawn(&app, s);
            }
            Ok(Io::Unix(s)) => spawn(&app, s),
            // Out of descriptors or memory: wait a little, the others keep being served.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Returns once the service ends or reloads.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

enum Io {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept_one(l: &Listener) -> std::io::Result<Io> {
    match l {
        Listener::Tcp(l) => l.accept().await.map(|(s, _)| Io::Tcp(s)),
        Listener::Unix(l) => l.accept().await.map(|(s, _)| Io::Unix(s)),
    }
}

fn spawn<S>(app: &Arc<App>, io: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = app.clone();
    match app.connections.clone().try_acquire_owned() {
        Ok(permit) => {
            tokio::spawn(async move {
                connection(app, io).await;
                drop(permit);
            });
        }
        Err(_) => {
            tokio::spawn(refuse(io));
        }
    }
}

/// Over `max_connections`: a 503 and the connection closed, within a second.
async fn refuse<S: AsyncWrite + Unpin>(mut io: S) {
    let msg = "too many connections (limits.max_connections)\n";
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{msg}",
        msg.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        io.write_all(reply.as_bytes()).await?;
        io.shutdown().await
    })
    .await;
}

/// Serves one connection until it closes, the fan-out kills it, or the service stops (then
/// gracefully, for at most two seconds).
async fn connection<S>(app: Arc<App>, io: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let limits = app.limits;
    let service = {
        let (app, kill) = (app.clone(), kill.clone());
        service_fn(move |req| {
            let (app, kill) = (app.clone(), kill.clone());
            async move { Ok::<_, Infallible>(route(&app, req, kill).await) }
        })
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout())
        .max_buf_size(limits.max_header_bytes)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut stop = app.stop.clone();
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = kill.notified() => {}
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
        }
    }
}

const ENDPOINTS: &str = "/metrics, /v1/status, /v1/events, /v1/reach, /healthz";

async fn route(app: &Arc<App>, req: Request<hyper::body::Incoming>, kill: Arc<Notify>) -> Reply {
    if req.method() != Method::GET {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not allowed: every endpoint is GET", req.method()),
        );
        r.headers_mut()
            .insert("allow", hyper::header::HeaderValue::from_static("GET"));
        return r;
    }
    match req.uri().path() {
        "/metrics" => {
            let accept = req.headers().get("accept").and_then(|v| v.to_str().ok());
            let (kind, body) = super::metrics::render(&app.registry, accept);
            reply(StatusCode::OK, kind, body)
        }
        "/v1/status" => reply(StatusCode::OK, JSON, app.fanout.status() + "\n"),
        "/v1/events" => super::sse::events(&app.fanout, &req, kill),
        "/v1/reach" => reach(app, req.uri().query()).await,
        "/healthz" => health(app),
        other => text(
            StatusCode::NOT_FOUND,
            format!("no such endpoint: {other} (there are {ENDPOINTS})"),
        ),
    }
}

const JSON: &str = "application/json";

/// 200 while the monitor runs; 503 with the reason once it has failed or stopped.
fn health(app: &App) -> Reply {
    if let Some(e) = app.monitor.failure() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the monitor failed: {e}"),
        );
    }
    match app.fanout.ended() {
        Some(why) => text(StatusCode::SERVICE_UNAVAILABLE, why),
        None => text(StatusCode::OK, "ok".to_owned()),
    }
}

/// `/v1/reach?remote=ADDR[&local=ADDR][&interface=NAME]`: `reach --json`'s object; bad
/// input a 400 with the CLI's message.
async fn reach(app: &Arc<App>, q: Option<&str>) -> Reply {
    let (remote, local, interface) = match reach_query(q.unwrap_or("")) {
        Ok(v) => v,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let Ok(permit) = app.lookups.clone().try_acquire_owned() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many route lookups in flight; try again".to_owned(),
        );
    };
    let app2 = app.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        // The failure is made text here: its error is not `Send`.
        crate::cmd::reach::once(&app2.monitor, &app2.conn, remote, local, interface)
            .map_err(|f| (f.code(), f.message()))
    })
    .await;
    match answer {
        Ok(Ok((local, remote, state, lookup))) => {
            let doc = json::Reach::new(local, remote, &state).with_lookup(lookup);
            match serde_json::to_string(&doc) {
                Ok(s) => reply(StatusCode::OK, JSON, s + "\n"),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        Ok(Err((2, message))) => text(StatusCode::BAD_REQUEST, message),
        Ok(Err((_, message))) => text(StatusCode::INTERNAL_SERVER_ERROR, message),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

type ReachQuery = (IpAddr, Option<IpAddr>, Option<String>);

fn reach_query(q: &str) -> Result<ReachQuery, String> {
    let (mut remote, mut local, mut interface) = (None, None, None);
    let addr = |name: &str, v: &str| {
        v.parse::<IpAddr>()
            .map_err(|e| format!("invalid value '{v}' for '{name}': {e}"))
    };
    for (k, v) in query(q)? {
        match k.as_str() {
            "remote" => remote = Some(addr("remote", &v)?),
            "local" => local = Some(addr("local", &v)?),
            "interface" => interface = Some(v),
            _ => {
                return Err(format!(
                    "unknown parameter {k:?}: /v1/reach takes remote, local, interface"
                ));
            }
        }
    }
    let remote = remote.ok_or("the parameter remote=ADDR is required")?;
    Ok((remote, local, interface))
}

/// The pairs of a query string, percent-decoded (`+` is a space).
pub fn query(q: &str) -> Result<Vec<(String, String)>, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent-encoding in {s:?}"))?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8"))
}

pub fn reply(status: StatusCode, kind: &str, body: String) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", kind)
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

/// A one-line plain-text answer.
pub fn text(status: StatusCode, line: String) -> Reply {
    reply(status, "text/plain; charset=utf-8", line + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode() {
        assert_eq!(
            query("remote=2001%3Adb8%3A%3A1&interface=a+b").unwrap(),
            vec![
                ("remote".to_owned(), "2001:db8::1".to_owned()),
                ("interface".to_owned(), "a b".to_owned())
            ]
        );
        assert!(query("remote=%zz").is_err());
        let (r, l, i) = reach_query("remote=198.18.0.1&local=198.18.0.2").unwrap();
        assert_eq!(r.to_string(), "198.18.0.1");
        assert_eq!(l.unwrap().to_string(), "198.18.0.2");
        assert!(i.is_none());
        assert!(reach_query("").unwrap_err().contains("remote=ADDR"));
        let e = reach_query("remote=nope").unwrap_err();
        assert!(e.contains("invalid value 'nope' for 'remote'"), "{e}");
        assert!(reach_query("remote=198.18.0.1&x=1").is_err());
    }
}
