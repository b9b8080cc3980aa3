//! `netreach wait-online`: return as soon as the network reaches a level, like
//! `systemd-networkd-wait-online`, without polling.

use std::process::ExitCode;
use std::time::Duration;

use netreach::core::connectivity::{Connectivity, Level, Pattern};
use netreach::{Family, ProbeConfig, StatusMonitor};

use crate::cli::{FamilyArg, WaitOnlineArgs};
use crate::{Outcome, complain};

/// What to wait for.
struct Condition {
    level: Level,
    family: FamilyArg,
    interfaces: Vec<Pattern>,
}

impl Condition {
    fn holds(&self, c: &Connectivity) -> bool {
        let ok = |f| c.level(f) >= self.level;
        match self.family {
            FamilyArg::Ipv4 => ok(Family::Ipv4),
            FamilyArg::Ipv6 => ok(Family::Ipv6),
            FamilyArg::Any => ok(Family::Ipv4) || ok(Family::Ipv6),
            FamilyArg::Both => ok(Family::Ipv4) && ok(Family::Ipv6),
        }
    }

    /// What is still missing, in words.
    fn missing(&self, c: &Connectivity) -> String {
        let which = match self.family {
            FamilyArg::Ipv4 => "IPv4",
            FamilyArg::Ipv6 => "IPv6",
            FamilyArg::Any => "IPv4 or IPv6",
            FamilyArg::Both => "both IPv4 and IPv6",
        };
        let scope = if self.interfaces.is_empty() {
            String::new()
        } else {
            let names: Vec<_> = self.interfaces.iter().map(Pattern::as_str).collect();
            format!(" on {}", names.join(", "))
        };
        format!(
            "still waiting for {} on {which}{scope}: IPv4 is {}, IPv6 is {}",
            self.level, c.ipv4, c.ipv6
        )
    }
}

pub fn run(scope: &super::Scope, args: &WaitOnlineArgs) -> Outcome {
    let probe: Option<ProbeConfig> = args
        .verified
        .then(|| super::probe::config(&args.endpoint))
        .transpose()?;
    let cond = Condition {
        level: args.level.into(),
        family: args.family,
        interfaces: args.interfaces.clone(),
    };
    let timeout = Duration::from_secs_f64(args.timeout);
    let monitor = scope.monitor()?;
    let mut config = super::config(&args.rules);
    for p in &cond.interfaces {
        config = config.with_only(p.clone());
    }
    if let Some(probe) = probe {
        let status = StatusMonitor::with_probe(&monitor, config, probe);
        return match status.wait_verified(Some(timeout)) {
            Ok(_) => Ok(ExitCode::SUCCESS),
            Err(v) => {
                let detail = match &v.portal_url {
                    Some(url) => format!("a captive portal answered ({url})"),
                    None if v.results.is_empty() => {
                        "no interface has a usable default route to probe".to_owned()
                    }
                    None => format!("the probes say {}", v.internet),
                };
                complain(&format!(
                    "timed out after {}: internet access not verified: {detail}",
                    humantime::format_duration(timeout)
                ));
                Ok(ExitCode::from(1))
            }
        };
    }
    let status = StatusMonitor::new(&monitor, config);
    match status.wait_until(Some(timeout), |c| cond.holds(c)) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(last) => {
            complain(&format!(
                "timed out after {}: {}",
                humantime::format_duration(timeout),
                cond.missing(&last)
            ));
            Ok(ExitCode::from(1))
        }
    }
}
