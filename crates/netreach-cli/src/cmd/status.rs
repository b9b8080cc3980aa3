//! `netreach status`: connectivity and the current state, as a table or one JSON object.

use std::io::{self, Write};
use std::process::ExitCode;

use netreach::{ProbeConfig, StatusMonitor};

use crate::Outcome;
use crate::cli::RuleArgs;
use crate::output::{human, json};

pub fn run(
    netns: &super::Scope,
    as_json: bool,
    rules: &RuleArgs,
    probe: Option<ProbeConfig>,
) -> Outcome {
    let monitor = netns.monitor()?;
    let status = StatusMonitor::new(&monitor, super::config(rules));
    let snap = monitor.snapshot();
    let conn = status.connectivity();
    let probes = probe
        .as_ref()
        .map(|config| super::probe::probe_all(&monitor, config, &[], None));
    let mut out = io::stdout().lock();
    if as_json {
        let mut doc = json::Status::new(&snap).with_connectivity(&conn);
        if let Some(p) = &probes {
            doc = doc.with_probes(p);
        }
        serde_json::to_writer(&mut out, &doc).map_err(io::Error::from)?;
        writeln!(out)?;
    } else {
        human::connectivity(&mut out, &conn)?;
        if let Some(p) = &probes {
            human::probes(&mut out, p)?;
        }
        human::status(&mut out, &snap)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
