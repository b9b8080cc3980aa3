//! `netreach watch`: one line per change as it happens, model changes and connectivity changes
//! alike, read from the monitor's one ordered stream by one thread: a connectivity change is
//! printed the moment it happens, and never before the model change that caused it.
//!
//! `--interface`, `--ignore` and `--events` choose which lines are printed ([`super::filter`]);
//! the `ready` line's state holds only what is shown.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use netreach::{Notification, StatusMonitor};

use super::filter::Shown;
use crate::Outcome;
use crate::cli::{EventKind, WatchArgs};
use crate::output::{human, json};

pub fn run(scope: &super::Scope, args: &WatchArgs) -> Outcome {
    let view = &args.view;
    let probe = view
        .probe
        .then(|| super::probe::config(&view.endpoint))
        .transpose()?;
    let monitor = scope.monitor()?;
    let rules = super::config(&view.rules);
    let status = match probe {
        Some(p) => StatusMonitor::with_probe(&monitor, rules, p),
        None => StatusMonitor::new(&monitor, rules),
    };
    let shown = Shown::new(view, &args.events);
    let style = human::Style::stdout();
    let mut stream = monitor.stream();
    let mut names = json::Names::default();
    let mut out = io::stdout().lock();
    // Start-up is over once the state is known and, when probing, the first verdict is in:
    // then what only the start-up used need not stay resident. What a change runs comes back
    // with it, and is given back once the stream has been quiet for `QUIET`: one wake-up
    // after the last change, none while nothing changes.
    let mut verdict_due = view.probe;
    let mut started_up = false;
    let mut give_back: Option<Instant> = None;
    while let Some(n) = next(&mut stream, &mut give_back) {
        let started = match &n {
            Notification::Ready { .. } => true,
            Notification::Verification { .. } => std::mem::take(&mut verdict_due),
            _ => false,
        };
        'line: {
            match &n {
                Notification::Ready { snapshot, .. } => {
                    // The first line says the subscription is live and the state known.
                    names.learn(snapshot);
                    let ready = shown.ready(&n);
                    let conn = status.connectivity();
                    if view.json {
                        let line = json::Line::new(&ready, &names).with_connectivity(&conn);
                        serde_json::to_writer(&mut out, &line).map_err(io::Error::from)?;
                        writeln!(out)?;
                    } else {
                        human::line(&mut out, style, &ready, &names)?;
                        human::connectivity(&mut out, style, &conn)?;
                    }
                }
                Notification::Connectivity { time, change, .. } => {
                    if !shown.kind(EventKind::Connectivity) {
                        break 'line;
                    }
                    if view.json {
                        print_json(&mut out, &n, &names)?;
                    } else {
                        human::connectivity_change(&mut out, style, *time, change)?;
                    }
                }
                Notification::Verification { time, change, .. } => {
                    if !shown.kind(EventKind::Probe) || !shown.interface(&change.interface) {
                        break 'line;
                    }
                    if view.json {
                        print_json(&mut out, &n, &names)?;
                    } else {
                        human::verification_change(&mut out, style, *time, change)?;
                    }
                }
                Notification::Reachability { .. } => break 'line,
                _ => {
                    if let Notification::Change { event, .. } = &n {
                        // Decide before learning: a removed interface's events keep its name, and
                        // a rename is judged by both names.
                        let print = shown.event(event, &names);
                        names.note(event);
                        if !print {
                            break 'line;
                        }
                    }
                    if view.json {
                        print_json(&mut out, &n, &names)?;
                    } else {
                        human::line(&mut out, style, &n, &names)?;
                    }
                }
            }
            // Flush every line: a script may act on it at once.
            out.flush()?;
        }
        if started {
            crate::resident::release_startup_pages();
            started_up = !verdict_due;
        } else if started_up {
            give_back = Instant::now().checked_add(QUIET);
        }
    }
    out.flush()?;
    match monitor.failure() {
        Some(e) => Err(io::Error::other(e.to_string()).into()),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// How long the stream stays quiet after a change before `watch` gives back the code that
/// handling it brought into memory.
const QUIET: Duration = Duration::from_secs(5);

/// The next item; `None` once the monitor is gone. With a deadline set, waits until then at
/// most, gives back the pages a change brought in when it passes with nothing new, and clears it.
fn next(
    stream: &mut netreach::Subscription,
    give_back: &mut Option<Instant>,
) -> Option<Notification> {
    if let Some(at) = *give_back {
        if let Some(n) = stream.recv_timeout(at.saturating_duration_since(Instant::now())) {
            return Some(n);
        }
        // A timeout, or the monitor gone: `try_recv` tells which.
        match stream.try_recv() {
            Ok(Some(n)) => return Some(n),
            Ok(None) => {
                *give_back = None;
                crate::resident::release_startup_pages();
            }
            Err(_) => return None,
        }
    }
    stream.recv()
}

/// One item's `watch --json` line, as `serve` sends it too.
fn print_json(out: &mut impl Write, n: &Notification, names: &json::Names) -> io::Result<()> {
    if let Some(line) = json::stream_line(n, names) {
        writeln!(out, "{}", line.map_err(io::Error::from)?)?;
    }
    Ok(())
}
