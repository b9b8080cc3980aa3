//! `netreach status`: the current state, as a table or one JSON object.

use std::io::{self, Write};
use std::process::ExitCode;

use netreach::{Monitor, Netns};

use crate::Outcome;
use crate::output::{human, json};

pub fn run(netns: &Netns, as_json: bool) -> Outcome {
    let monitor = Monitor::in_netns(netns.clone())?;
    let snap = monitor.snapshot();
    let mut out = io::stdout().lock();
    if as_json {
        serde_json::to_writer(&mut out, &json::Status::new(&snap)).map_err(io::Error::from)?;
        writeln!(out)?;
    } else {
        human::status(&mut out, &snap)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
