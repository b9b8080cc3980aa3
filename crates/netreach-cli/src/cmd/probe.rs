//! `netreach probe`: one HTTP probe per interface and family, and the same for
//! `status --probe`.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use netreach::core::connectivity::{ConnectivityConfig, internet_interfaces};
use netreach::core::probe::ProbeReason;
use netreach::probe::{ProbeEndpoint, ProbeResult, ProbeVerdict};
use netreach::{Family, Monitor, Netns, ProbeConfig};

use crate::cli::{OneFamily, ProbeArgs, ProbeCmdArgs};
use crate::output::{human, json};
use crate::{Failure, Outcome, complain};

/// The endpoint and timeout the flags ask for.
pub fn config(args: &ProbeArgs) -> Result<ProbeConfig, Failure> {
    let endpoint = match &args.url {
        None => ProbeEndpoint::defaults()
            .into_iter()
            .next()
            .ok_or_else(|| Failure::input("no default probe endpoint"))?,
        Some(url) => {
            let mut e = match &args.expect_body {
                Some(body) => ProbeEndpoint::body(url.clone(), body.clone()),
                None => ProbeEndpoint::no_content(url.clone()),
            };
            if let Some(status) = args.expect_status {
                e.expect_status = status;
            }
            e
        }
    };
    Ok(ProbeConfig::new(endpoint).timeout(Duration::from_secs_f64(args.probe_timeout)))
}

/// Probes every interface and family that could reach the internet (or the ones named), in
/// parallel, inside the monitor's namespace. An interface with an address but no usable
/// default route gets `none` without a probe.
pub fn probe_all(
    monitor: &Monitor,
    config: &ProbeConfig,
    interfaces: &[String],
    family: Option<OneFamily>,
) -> Vec<ProbeResult> {
    let snap = monitor.snapshot();
    let families: Vec<Family> = match family {
        Some(OneFamily::Ipv4) => vec![Family::Ipv4],
        Some(OneFamily::Ipv6) => vec![Family::Ipv6],
        None => vec![Family::Ipv4, Family::Ipv6],
    };
    let mut todo = Vec::new();
    let mut results = Vec::new();
    for &f in &families {
        let internet = internet_interfaces(&snap, &ConnectivityConfig::new(), f);
        for i in snap.interfaces() {
            let named = interfaces.contains(&i.name);
            if !interfaces.is_empty() && !named {
                continue;
            }
            if internet.contains(&i.index) || named {
                todo.push((i.name.clone(), f));
            } else if i.kind != netreach::LinkKind::Loopback
                && snap
                    .addresses_of(i.index)
                    .any(|a| a.family() == f && !a.is_link_local())
            {
                results.push(ProbeResult {
                    interface: i.name.clone(),
                    family: f,
                    verdict: ProbeVerdict::None {
                        reason: ProbeReason::NoRoute,
                    },
                    latency: Duration::ZERO,
                    remote: None,
                });
            }
        }
    }
    let netns: &Netns = monitor.netns();
    let mut options = netreach::probe::ProbeOptions::new(config.timeout);
    if let Some(tls) = &config.tls {
        options = options.tls(tls.clone());
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = todo
            .iter()
            .map(|(name, f)| {
                let options = options.clone();
                s.spawn(move || {
                    netns.run(|| netreach::probe::probe_with(&config.endpoint, name, *f, &options))
                })
            })
            .collect();
        for (h, (name, f)) in handles.into_iter().zip(&todo) {
            match h.join() {
                Ok(Ok(Ok(r))) => results.push(r),
                Ok(Ok(Err(e))) => complain(&format!("probe on {name} ({f}) could not run: {e}")),
                Ok(Err(e)) => complain(&format!("probe on {name} ({f}) could not run: {e}")),
                Err(_) => complain(&format!("probe on {name} ({f}) failed")),
            }
        }
    });
    results.sort_by(|a, b| (&a.interface, a.family).cmp(&(&b.interface, b.family)));
    results
}

pub fn run(scope: &super::Scope, args: &ProbeCmdArgs) -> Outcome {
    let mut endpoint = args.endpoint.clone();
    if let Some(t) = args.timeout {
        endpoint.probe_timeout = t;
    }
    let config = config(&endpoint)?;
    let monitor = scope.monitor()?;
    if let Some(bad) = args
        .interfaces
        .iter()
        .find(|n| monitor.snapshot().interface_by_name(n).is_none())
    {
        return Err(Failure::input(format!("no interface named {bad:?}")));
    }
    let results = probe_all(&monitor, &config, &args.interfaces, args.family);
    let mut out = io::stdout().lock();
    if args.json {
        let report = netreach::Verification::from_results(results.clone());
        serde_json::to_writer(&mut out, &json::Probe::new(&report)).map_err(io::Error::from)?;
        writeln!(out)?;
    } else if results.is_empty() {
        writeln!(out, "no interface to probe")?;
    } else {
        let style = human::Style::stdout();
        for r in &results {
            human::probe_result(&mut out, style, r)?;
        }
    }
    out.flush()?;
    let full = results.iter().any(|r| r.verdict == ProbeVerdict::Full);
    Ok(if full {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
