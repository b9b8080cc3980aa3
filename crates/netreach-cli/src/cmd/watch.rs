//! `netreach watch`: one line per change, as it happens.

use std::io::{self, Write};
use std::process::ExitCode;

use netreach::{Monitor, Netns, Notification};

use crate::Outcome;
use crate::output::{human, json};

pub fn run(netns: &Netns, as_json: bool) -> Outcome {
    let monitor = Monitor::in_netns(netns.clone())?;
    let mut sub = monitor.subscribe();
    let mut names = json::Names::default();
    let stdout = io::stdout();
    while let Some(n) = sub.recv() {
        let mut out = stdout.lock();
        if let Notification::Ready { snapshot, .. } = &n {
            names.learn(snapshot);
        }
        if let Notification::Change { event, .. } = &n {
            names.note(event);
        }
        if as_json {
            serde_json::to_writer(&mut out, &json::Line::new(&n, &names))
                .map_err(io::Error::from)?;
            writeln!(out)?;
        } else {
            human::line(&mut out, &n, &names)?;
        }
        // Flush every line: a script may act on it at once.
        out.flush()?;
    }
    match monitor.failure() {
        Some(e) => Err(io::Error::other(e.to_string()).into()),
        None => Ok(ExitCode::SUCCESS),
    }
}
