//! `netreach watch`: one line per change as it happens, model changes and connectivity changes
//! alike.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::mpsc;

use netreach::{Monitor, Netns, Notification, ProbeConfig, StatusMonitor, StatusNotification};

use crate::Outcome;
use crate::cli::RuleArgs;
use crate::output::{human, json};

pub fn run(netns: &Netns, as_json: bool, rules: &RuleArgs, probe: Option<ProbeConfig>) -> Outcome {
    let monitor = Monitor::in_netns(netns.clone())?;
    let status = match probe {
        Some(p) => StatusMonitor::with_probe(&monitor, super::config(rules), p),
        None => StatusMonitor::new(&monitor, super::config(rules)),
    };
    let mut status_sub = status.subscribe();
    let mut sub = monitor.subscribe();
    let mut names = json::Names::default();
    let mut out = io::stdout().lock();

    // The first line says the subscription is live and the state known.
    if let Some(n @ Notification::Ready { .. }) = sub.recv() {
        if let Notification::Ready { snapshot, .. } = &n {
            names.learn(snapshot);
        }
        let conn = status_sub.current();
        if as_json {
            let line = json::Line::new(&n, &names).with_connectivity(&conn);
            serde_json::to_writer(&mut out, &line).map_err(io::Error::from)?;
            writeln!(out)?;
        } else {
            human::line(&mut out, &n, &names)?;
            human::connectivity(&mut out, &conn)?;
        }
        out.flush()?;
    }

    // Two readers, one writer: each stream is read on its own thread and printed here, so a
    // connectivity change is printed the moment it happens.
    let (tx, rx) = mpsc::channel::<String>();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        while let Some(n) = sub.recv() {
            if let Notification::Change { event, .. } = &n {
                names.note(event);
            }
            let line = if as_json {
                serde_json::to_string(&json::Line::new(&n, &names)).unwrap_or_default()
            } else {
                let mut buf = Vec::new();
                let _ = human::line(&mut buf, &n, &names);
                String::from_utf8_lossy(buf.trim_ascii_end()).into_owned()
            };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        while let Some(n) = status_sub.recv() {
            let line = match &n {
                StatusNotification::Changed {
                    seq,
                    time,
                    change,
                    connectivity,
                } if as_json => serde_json::to_string(&json::ConnectivityLine::new(
                    *seq,
                    *time,
                    change,
                    connectivity,
                ))
                .unwrap_or_default(),
                StatusNotification::Changed { time, change, .. } => format!(
                    "{} connectivity: {change}",
                    humantime::format_rfc3339_millis(*time)
                ),
                StatusNotification::Verified {
                    seq,
                    time,
                    change,
                    verification,
                    ..
                } if as_json => {
                    serde_json::to_string(&json::ProbeLine::new(*seq, *time, change, verification))
                        .unwrap_or_default()
                }
                StatusNotification::Verified { time, change, .. } => {
                    format!("{} {change}", humantime::format_rfc3339_millis(*time))
                }
                _ => continue,
            };
            if tx2.send(line).is_err() {
                break;
            }
        }
    });
    for line in rx {
        writeln!(out, "{line}")?;
        // Flush every line: a script may act on it at once.
        out.flush()?;
    }
    match monitor.failure() {
        Some(e) => Err(io::Error::other(e.to_string()).into()),
        None => Ok(ExitCode::SUCCESS),
    }
}
