//! `netreach watch`: one line per change as it happens, model changes and connectivity changes
//! alike, read from the monitor's one ordered stream by one thread: a connectivity change is
//! printed the moment it happens, and never before the model change that caused it.

use std::io::{self, Write};
use std::process::ExitCode;

use netreach::{Notification, StatusMonitor};

use crate::Outcome;
use crate::cli::ViewArgs;
use crate::output::{human, json};

pub fn run(scope: &super::Scope, view: &ViewArgs) -> Outcome {
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
    let style = human::Style::stdout();
    let mut stream = monitor.stream();
    let mut names = json::Names::default();
    let mut out = io::stdout().lock();
    while let Some(n) = stream.recv() {
        match &n {
            Notification::Ready { snapshot, .. } => {
                // The first line says the subscription is live and the state known.
                names.learn(snapshot);
                let conn = status.connectivity();
                if view.json {
                    let line = json::Line::new(&n, &names).with_connectivity(&conn);
                    serde_json::to_writer(&mut out, &line).map_err(io::Error::from)?;
                    writeln!(out)?;
                } else {
                    human::line(&mut out, style, &n, &names)?;
                    human::connectivity(&mut out, style, &conn)?;
                }
            }
            Notification::Connectivity {
                seq,
                cause_seq,
                time,
                change,
                connectivity,
            } => {
                if view.json {
                    let line = json::ConnectivityLine::new(*seq, *time, change, connectivity)
                        .caused_by(*cause_seq);
                    serde_json::to_writer(&mut out, &line).map_err(io::Error::from)?;
                    writeln!(out)?;
                } else {
                    human::connectivity_change(&mut out, style, *time, change)?;
                }
            }
            Notification::Verification {
                seq,
                cause_seq,
                time,
                change,
                verification,
                ..
            } => {
                if view.json {
                    let line = json::ProbeLine::new(*seq, *time, change, verification)
                        .caused_by(*cause_seq);
                    serde_json::to_writer(&mut out, &line).map_err(io::Error::from)?;
                    writeln!(out)?;
                } else {
                    human::verification_change(&mut out, style, *time, change)?;
                }
            }
            Notification::Reachability { .. } => continue,
            _ => {
                if let Notification::Change { event, .. } = &n {
                    names.note(event);
                }
                if view.json {
                    serde_json::to_writer(&mut out, &json::Line::new(&n, &names))
                        .map_err(io::Error::from)?;
                    writeln!(out)?;
                } else {
                    human::line(&mut out, style, &n, &names)?;
                }
            }
        }
        // Flush every line: a script may act on it at once.
        out.flush()?;
    }
    out.flush()?;
    match monitor.failure() {
        Some(e) => Err(io::Error::other(e.to_string()).into()),
        None => Ok(ExitCode::SUCCESS),
    }
}
