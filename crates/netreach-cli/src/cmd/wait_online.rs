//! `netreach wait-online`: return as soon as the network reaches a level, like
//! `systemd-networkd-wait-online`, without polling.
//!
//! Each goal (the namespace as a whole, or one `-i IF[:LEVEL]`) is a status monitor of its own
//! with the rules restricted to its interfaces, all on the one monitor thread. The command
//! reads the monitor's one stream only to wake up: after each item it asks every goal whether
//! it holds.
//!
//! `--timeout` bounds the whole command. Stopping a monitor joins the probes still in flight
//! (each may take up to `--probe-timeout`), so the command leaves without stopping it: the
//! process exit ends those threads.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use netreach::core::connectivity::{Connectivity, Level, Pattern};
use netreach::{Family, ProbeConfig, StatusMonitor, Verification, Verified};

use crate::cli::{FamilyArg, WaitOnlineArgs};
use crate::output::human::escape;
use crate::{Failure, Outcome, complain};

/// One thing to wait for: a level, on some interfaces or all.
struct Goal {
    /// `None`: every interface not ignored.
    pattern: Option<Pattern>,
    level: Level,
    status: StatusMonitor,
}

/// How a goal stands.
enum Standing {
    Met,
    /// What is missing, in words.
    Missing(String),
}

/// The family condition and whether probes must agree: the same for every goal.
struct Want {
    family: FamilyArg,
    verified: bool,
    probe_timeout: Duration,
}

impl Want {
    /// Whether the family condition holds of per-family facts.
    fn holds(&self, ok: impl Fn(Family) -> bool) -> bool {
        match self.family {
            FamilyArg::Ipv4 => ok(Family::Ipv4),
            FamilyArg::Ipv6 => ok(Family::Ipv6),
            FamilyArg::Any => ok(Family::Ipv4) || ok(Family::Ipv6),
            FamilyArg::Both => ok(Family::Ipv4) && ok(Family::Ipv6),
        }
    }

    fn which(&self) -> &'static str {
        match self.family {
            FamilyArg::Ipv4 => "IPv4",
            FamilyArg::Ipv6 => "IPv6",
            FamilyArg::Any => "IPv4 or IPv6",
            FamilyArg::Both => "both IPv4 and IPv6",
        }
    }
}

impl Goal {
    fn standing(&self, want: &Want) -> Standing {
        let c = self.status.connectivity();
        let (on, to_reach) = match &self.pattern {
            Some(p) => (format!(" through {p}"), format!("{p} to reach ")),
            None => (String::new(), String::new()),
        };
        let levels = |c: &Connectivity| format!("IPv4 is {}, IPv6 is {}", c.ipv4, c.ipv6);
        if !want.verified {
            return if want.holds(|f| c.level(f) >= self.level) {
                Standing::Met
            } else {
                Standing::Missing(format!(
                    "still waiting for {to_reach}{} on {}: {}",
                    self.level,
                    want.which(),
                    levels(&c)
                ))
            };
        }
        let v = self.status.verification();
        let verified = |f| match f {
            Family::Ipv4 => v.ipv4 == Verified::Full,
            Family::Ipv6 => v.ipv6 == Verified::Full,
        };
        if want.holds(verified) {
            return Standing::Met;
        }
        let detail = if !want.holds(|f| c.level(f) == Level::Internet) {
            format!("no usable default route{on} to probe ({})", levels(&c))
        } else {
            probe_detail(&v, want.probe_timeout)
        };
        Standing::Missing(format!(
            "internet access{on} not verified on {}: {detail}",
            want.which()
        ))
    }
}

/// Why the probes do not (yet) verify access, true to what they have said.
fn probe_detail(v: &Verification, probe_timeout: Duration) -> String {
    if let Some(url) = &v.portal_url {
        return format!("a captive portal answered ({})", escape(url));
    }
    if v.results.is_empty() {
        return format!(
            "no probe has answered yet (each may take up to --probe-timeout {})",
            humantime::format_duration(probe_timeout)
        );
    }
    let mut s = format!("the probes say {}:", v.internet);
    for (n, r) in v.results.iter().enumerate() {
        let _ = write!(
            s,
            "{} {}",
            if n == 0 { "" } else { "," },
            escape(&r.to_string())
        );
    }
    s
}

pub fn run(scope: &super::Scope, args: &WaitOnlineArgs) -> Outcome {
    let start = Instant::now();
    let timeout = (args.timeout > 0.0).then(|| Duration::from_secs_f64(args.timeout));
    let deadline = timeout.and_then(|t| start.checked_add(t));
    let probe: Option<ProbeConfig> = args
        .verified
        .then(|| super::probe::config(&args.endpoint))
        .transpose()?;
    let want = Want {
        family: args.family(),
        verified: args.verified,
        probe_timeout: Duration::from_secs_f64(args.endpoint.probe_timeout),
    };
    let monitor = scope.monitor()?;
    let attach = |pattern: Option<&Pattern>| {
        let mut config = super::config(&args.rules);
        if let Some(p) = pattern {
            config = config.with_only(p.clone());
        }
        match &probe {
            Some(p) => StatusMonitor::with_probe(&monitor, config, p.clone()),
            None => StatusMonitor::new(&monitor, config),
        }
    };
    let goals: Vec<Goal> = if args.interfaces.is_empty() {
        vec![Goal {
            pattern: None,
            level: args.level.into(),
            status: attach(None),
        }]
    } else {
        args.interfaces
            .iter()
            .map(|g| Goal {
                pattern: Some(g.pattern.clone()),
                level: g.level.unwrap_or(args.level).into(),
                status: attach(Some(&g.pattern)),
            })
            .collect()
    };
    // Subscribed before the first check: a change after it wakes the loop.
    let mut stream = monitor.stream();
    let mut waited = false;
    let outcome = loop {
        let missing: Vec<String> = goals
            .iter()
            .filter_map(|g| match g.standing(&want) {
                Standing::Met => None,
                Standing::Missing(why) => Some(why),
            })
            .collect();
        let done = if args.any {
            missing.len() < goals.len()
        } else {
            missing.is_empty()
        };
        if done {
            break Ok(ExitCode::SUCCESS);
        }
        if !std::mem::replace(&mut waited, true) {
            // It has to wait: what only the start-up used need not stay resident meanwhile
            // (not worth it for a machine already online, where it exits at once).
            crate::resident::release_startup_pages();
        }
        let woke = match deadline {
            None => stream.recv().is_some(),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                !left.is_zero() && stream.recv_timeout(left).is_some()
            }
        };
        if woke {
            continue;
        }
        if let Some(e) = monitor.failure() {
            break Err(Failure::from(std::io::Error::other(e.to_string())));
        }
        if deadline.is_none_or(|d| Instant::now() < d) {
            break Err(Failure::from(std::io::Error::other(
                "the monitor stopped while waiting",
            )));
        }
        if !args.quiet {
            let what = if args.any && goals.len() > 1 {
                format!("none is ready: {}", missing.join("; "))
            } else {
                missing.join("; ")
            };
            let t = timeout.unwrap_or_default();
            complain(&format!(
                "timed out after {}: {what}",
                humantime::format_duration(t)
            ));
        }
        break Ok(ExitCode::from(1));
    };
    // Leave without stopping the monitor (module docs): dropping the last handle would wait
    // for the probes in flight, past the deadline.
    std::mem::forget(goals);
    std::mem::forget(monitor);
    outcome
}
