//! `netreach status`: connectivity and the current state, as a table or one JSON object.
//!
//! `--interface` and `--ignore` choose what is printed ([`super::filter`]); the connectivity
//! line is that of every interface not ignored.

use std::io::{self, Write};
use std::process::ExitCode;

use netreach::StatusMonitor;

use super::filter::Shown;
use crate::Outcome;
use crate::cli::ViewArgs;
use crate::output::{human, json};

pub fn run(scope: &super::Scope, args: &ViewArgs) -> Outcome {
    let probe = args
        .probe
        .then(|| super::probe::config(&args.endpoint))
        .transpose()?;
    let monitor = scope.monitor()?;
    let shown = Shown::new(args, &[]);
    let status = StatusMonitor::new(&monitor, super::config(&args.rules));
    let snap = shown.snapshot(&monitor.snapshot());
    let conn = status.connectivity();
    let probes = probe.as_ref().map(|config| {
        let mut results = super::probe::probe_all(&monitor, config, &[], None);
        results.retain(|r| shown.interface(&r.interface));
        results
    });
    let mut out = io::stdout().lock();
    if args.json {
        let mut doc = json::Status::new(&snap)
            .with_connectivity(&conn)
            .with_system_hint(monitor.system_hint());
        if let Some(p) = &probes {
            doc = doc.with_probes(p);
        }
        serde_json::to_writer(&mut out, &doc).map_err(io::Error::from)?;
        writeln!(out)?;
    } else {
        let style = human::Style::stdout();
        human::connectivity(&mut out, style, &conn)?;
        if let Some(hint) = monitor.system_hint() {
            writeln!(out, "The system says: {hint}")?;
        }
        if let Some(p) = &probes {
            human::probes(&mut out, style, p)?;
        }
        human::status(&mut out, style, &snap)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
