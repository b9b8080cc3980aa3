//! `netreach watch`: one line per change as it happens, model changes and connectivity changes
//! alike.

use std::collections::VecDeque;
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
    let mut ready_seq = 0;
    if let Some(n @ Notification::Ready { .. }) = sub.recv() {
        ready_seq = n.seq().unwrap_or(0);
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
    // connectivity change is printed the moment it happens, but never before the model change
    // that caused it (each status change names the model sequence number it follows).
    let (tx, rx) = mpsc::channel::<Line>();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        let mut last = ready_seq;
        while let Some(n) = sub.recv() {
            if let Notification::Change { event, .. } = &n {
                names.note(event);
            }
            last = n.seq().unwrap_or(last);
            let text = if as_json {
                serde_json::to_string(&json::Line::new(&n, &names)).unwrap_or_default()
            } else {
                let mut buf = Vec::new();
                let _ = human::line(&mut buf, &n, &names);
                String::from_utf8_lossy(buf.trim_ascii_end()).into_owned()
            };
            if tx.send(Line::Model(last, text)).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        while let Some(n) = status_sub.recv() {
            let (after, text) = match &n {
                StatusNotification::Changed {
                    seq,
                    model_seq,
                    time,
                    change,
                    connectivity,
                } if as_json => (
                    *model_seq,
                    serde_json::to_string(&json::ConnectivityLine::new(
                        *seq,
                        *time,
                        change,
                        connectivity,
                    ))
                    .unwrap_or_default(),
                ),
                StatusNotification::Changed {
                    model_seq,
                    time,
                    change,
                    ..
                } => (
                    *model_seq,
                    format!(
                        "{} connectivity: {change}",
                        humantime::format_rfc3339_millis(*time)
                    ),
                ),
                StatusNotification::Verified {
                    seq,
                    model_seq,
                    time,
                    change,
                    verification,
                    ..
                } if as_json => (
                    *model_seq,
                    serde_json::to_string(&json::ProbeLine::new(*seq, *time, change, verification))
                        .unwrap_or_default(),
                ),
                StatusNotification::Verified {
                    model_seq,
                    time,
                    change,
                    ..
                } => (
                    *model_seq,
                    format!("{} {change}", humantime::format_rfc3339_millis(*time)),
                ),
                _ => continue,
            };
            if tx2.send(Line::Status(after, text)).is_err() {
                break;
            }
        }
    });
    let mut printed = ready_seq;
    let mut held: VecDeque<(u64, String)> = VecDeque::new();
    for line in rx {
        match line {
            Line::Model(seq, text) => {
                writeln!(out, "{text}")?;
                printed = printed.max(seq);
                while held.front().is_some_and(|(after, _)| *after <= printed) {
                    if let Some((_, text)) = held.pop_front() {
                        writeln!(out, "{text}")?;
                    }
                }
            }
            Line::Status(after, text) if after <= printed && held.is_empty() => {
                writeln!(out, "{text}")?;
            }
            Line::Status(after, text) => held.push_back((after, text)),
        }
        // Flush every line: a script may act on it at once.
        out.flush()?;
    }
    for (_, text) in held {
        writeln!(out, "{text}")?;
    }
    out.flush()?;
    match monitor.failure() {
        Some(e) => Err(io::Error::other(e.to_string()).into()),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// A line to print, with the model sequence number it is (`Model`) or follows (`Status`).
enum Line {
    Model(u64, String),
    Status(u64, String),
}
