//! `netreach serve`: the state, the events and Prometheus metrics of a namespace over HTTP.
//!
//! A face of the library that adds no logic: one thread reads the monitor's one stream and
//! fans it out ([`fanout`]); the routes ([`http`]) answer from what it has read, in the same
//! JSON the CLI prints (`output::json`), and the metrics ([`metrics`]) are that state as
//! gauges. tokio runs the HTTP side only; the library stays free of any runtime.
//!
//! Lifetime: `run` builds the monitor once; a *configuration* (the status monitor, the
//! fan-out, the listeners) is started from the flags and `--config`. `SIGHUP` reads the file
//! again: a good one replaces the running configuration (open event streams get a comment
//! and are closed, so clients reconnect with `Last-Event-ID`), a bad one is reported on one
//! line and the old one keeps running. `SIGTERM` and `SIGINT` end the service the same way.
//!
//! With `--nm-compat`, [`nm`] owns NetworkManager's name on the system bus for the whole life
//! of the service (a reload does not let go of it); each configuration's status monitor feeds
//! it. Losing the name or the bus ends the service with an error.
//!
//! Why in the CLI crate: `serve` is a mode of the one binary, reusing its flags, its JSON
//! builders and its `reach` logic; a crate of its own would have to export all three.

mod config;
mod fanout;
mod http;
mod metrics;
mod nm;
mod process;
mod sse;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use netreach::{ConnectionMonitor, Monitor, StatusMonitor};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, watch};

use self::config::Config;
use self::fanout::Fanout;
use self::http::{App, Listener};
use crate::cli::{Listen, ServeArgs};
use crate::cmd::filter::Shown;
use crate::{Failure, Outcome};

/// Route lookups of `/v1/reach` in flight at once.
const LOOKUPS: usize = 16;

pub fn run(scope: &crate::cmd::Scope, args: &ServeArgs) -> Outcome {
    let config = Config::load(args)?;
    raise_descriptor_limit();
    let monitor = scope.monitor()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("netreach-serve")
        .enable_all()
        .build()?;
    rt.block_on(serve(&monitor, args, config))?;
    // Connections still open after the graceful period are dropped with the runtime.
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}

async fn serve(monitor: &Monitor, args: &ServeArgs, mut config: Config) -> Result<(), Failure> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut running = Running::start(monitor, &config).await?;
    // The NetworkManager face outlives reloads: each configuration's status monitor feeds it.
    let face = if args.nm_compat {
        match nm::Face::start(nm::view_of(&running.status, config.probe.is_some())).await {
            Ok(face) => Some(Arc::new(face)),
            Err(e) => {
                running.stop("the service is stopping").await;
                return Err(e);
            }
        }
    } else {
        None
    };
    running.feed(face.as_ref(), &config);
    // Serving: what only the start-up used need not stay resident.
    crate::resident::release_startup_pages();
    let ended = async {
        match &face {
            Some(f) => f.ended().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(ended);
    let mut failed = None;
    loop {
        tokio::select! {
            why = &mut ended => {
                failed = Some(why);
                break;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => match Config::load(args) {
                Ok(new) => {
                    running.stop("reloading the configuration").await;
                    running = match Running::start(monitor, &new).await {
                        Ok(r) => {
                            config = new;
                            r
                        }
                        // The new addresses cannot be bound: back to the old configuration.
                        Err(e) => {
                            crate::complain(&format!(
                                "reload: {}; the previous configuration runs again",
                                e.message()
                            ));
                            Running::start(monitor, &config).await?
                        }
                    };
                    running.feed(face.as_ref(), &config);
                }
                Err(e) => crate::complain(&format!(
                    "reload: {}; the running configuration stays",
                    e.message()
                )),
            },
        }
    }
    running.stop("the service is stopping").await;
    match failed {
        Some(why) => Err(std::io::Error::other(why).into()),
        None => Ok(()),
    }
}

/// One configuration at work.
struct Running {
    app: Arc<App>,
    stop: watch::Sender<bool>,
    /// Stops the fan-out's reader thread.
    reader_stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Unix sockets to remove at the end.
    sockets: Vec<PathBuf>,
    max_connections: usize,
    status: StatusMonitor,
    /// The task feeding the NetworkManager face from `status` (`--nm-compat`).
    nm_pump: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn start(monitor: &Monitor, config: &Config) -> Result<Running, Failure> {
        let status = match &config.probe {
            Some(p) => StatusMonitor::with_probe(monitor, config.rules.clone(), p.clone()),
            None => StatusMonitor::new(monitor, config.rules.clone()),
        };
        // The stream after the status monitor is attached: its changes are in it.
        let mut stream = monitor.stream();
        let first = stream
            .recv()
            .ok_or_else(|| std::io::Error::other("the monitor stopped"))?;
        let metrics = Arc::new(metrics::Metrics::default());
        let fanout = Arc::new(Fanout::new(
            &first,
            status.connectivity(),
            status.verification(),
            config.limits,
            metrics.clone(),
            Shown::ignoring(config.ignore.clone()),
            config.probe.is_some(),
        ));
        let reader_stop = Arc::new(AtomicBool::new(false));
        let reader = std::thread::Builder::new()
            .name("netreach-fanout".into())
            .spawn({
                let (fanout, stop) = (fanout.clone(), reader_stop.clone());
                move || fanout.run(stream, &stop)
            })?;
        let (stop, stop_rx) = watch::channel(false);
        let app = Arc::new(App {
            registry: metrics.registry(fanout.clone(), monitor.clone()),
            fanout,
            monitor: monitor.clone(),
            conn: ConnectionMonitor::new(monitor),
            limits: config.limits,
            connections: Arc::new(Semaphore::new(config.limits.max_connections)),
            lookups: Arc::new(Semaphore::new(LOOKUPS)),
            stop: stop_rx,
        });
        let mut running = Running {
            app: app.clone(),
            stop,
            reader_stop,
            reader: Some(reader),
            sockets: Vec::new(),
            max_connections: config.limits.max_connections,
            status,
            nm_pump: None,
        };
        let mut out = std::io::stdout().lock();
        for l in &config.listen {
            let listener = match bind(l) {
                Ok(listener) => listener,
                Err(e) => {
                    running.stop("could not listen").await;
                    return Err(std::io::Error::new(e.kind(), format!("listen on {l}: {e}")).into());
                }
            };
            let shown = match &listener {
                Listener::Tcp(t) => t.local_addr().map(Listen::Tcp).unwrap_or(l.clone()),
                Listener::Unix(_) => l.clone(),
            };
            if let Listen::Unix(p) = l {
                running.sockets.push(p.clone());
            }
            // One line per listener on stdout: the address really bound (port 0 is chosen).
            let _ = writeln!(out, "listening on {shown}");
            tokio::spawn(http::accept(app.clone(), listener));
        }
        let _ = out.flush();
        Ok(running)
    }

    /// Feeds the NetworkManager face, if there is one, from this configuration's status.
    fn feed(&mut self, face: Option<&Arc<nm::Face>>, config: &Config) {
        if let Some(face) = face {
            let probing = config.probe.is_some();
            self.nm_pump = Some(nm::pump(face.clone(), self.status.clone(), probing));
        }
    }

    /// Ends this configuration: every event stream gets a last comment saying `why` and
    /// closes, the listeners close, connections end gracefully (at most two seconds), the
    /// reader thread is joined.
    async fn stop(&mut self, why: &str) {
        if let Some(pump) = self.nm_pump.take() {
            // Dropping the task drops its handle on the status monitor.
            pump.abort();
            let _ = pump.await;
        }
        self.app.fanout.end(why);
        let _ = self.stop.send(true);
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.app.connections.available_permits() < self.max_connections
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.reader_stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = tokio::task::spawn_blocking(move || r.join()).await;
        }
        for p in self.sockets.drain(..) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Binds one listener. A Unix socket left by a service that is gone (nothing answers on it)
/// is replaced; one that answers is an error (address in use).
fn bind(l: &Listen) -> std::io::Result<Listener> {
    match l {
        Listen::Tcp(a) => {
            let std = std::net::TcpListener::bind(a)?;
            std.set_nonblocking(true)?;
            Ok(Listener::Tcp(tokio::net::TcpListener::from_std(std)?))
        }
        Listen::Unix(p) => {
            use std::os::unix::fs::FileTypeExt;
            let stale = std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket())
                && std::os::unix::net::UnixStream::connect(p).is_err();
            if stale {
                std::fs::remove_file(p)?;
            }
            Ok(Listener::Unix(tokio::net::UnixListener::bind(p)?))
        }
    }
}

/// Every connection and event stream holds a descriptor: raise the soft limit to the hard
/// one, as a server does (systemd's default soft limit is 1,024).
fn raise_descriptor_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}
