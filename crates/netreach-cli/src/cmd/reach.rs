//! `netreach reach`: can a remote address be reached from here, by which path, and if not why;
//! with `--watch`, every change of that as it happens.

use std::io::{self, Write};
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::SystemTime;

use netreach::core::reach::{InterfaceRef, Reachability, Target};
use netreach::{ConnectionMonitor, Family, Monitor, ReachNotification, Snapshot};

use crate::cli::ReachArgs;
use crate::output::{human, json};
use crate::{Failure, Outcome};

pub fn run(scope: &super::Scope, args: &ReachArgs) -> Outcome {
    let monitor = scope.monitor()?;
    let conn = ConnectionMonitor::new(&monitor);
    let interface = args.interface.clone().map(InterfaceRef::Name);
    let target = match args.local {
        Some(local) => conn.target(local, args.remote, interface)?,
        None => match conn.target_for(args.remote, interface) {
            Ok(target) => target,
            // No route now, so no source the kernel would choose.
            Err(netreach::Error::NoSource { remote, reason }) => {
                let state = Reachability::Unreachable(reason);
                if !args.watch {
                    print_once(args, None, remote, &state)?;
                    return Ok(ExitCode::from(1));
                }
                let snap = monitor.snapshot();
                let Some(local) = fallback_local(&snap, remote, args.interface.as_deref()) else {
                    print_once(args, None, remote, &state)?;
                    return Err(Failure::from(io::Error::other(format!(
                        "no {} address on this host to watch {remote} from; pass --local",
                        Family::of(&remote).as_str()
                    ))));
                };
                conn.target(
                    local,
                    remote,
                    args.interface.clone().map(InterfaceRef::Name),
                )?
            }
            Err(e) => return Err(e.into()),
        },
    };
    if args.watch {
        return watch(&monitor, &conn, &target, args.json);
    }
    let state = conn.check(&target)?;
    print_once(args, Some(target.local()), target.remote(), &state)?;
    Ok(exit_code(&state))
}

/// 0 when reachable, 1 when not.
fn exit_code(state: &Reachability) -> ExitCode {
    match state {
        Reachability::Reachable(_) => ExitCode::SUCCESS,
        Reachability::Unreachable(_) => ExitCode::from(1),
    }
}

fn print_once(
    args: &ReachArgs,
    local: Option<IpAddr>,
    remote: IpAddr,
    state: &Reachability,
) -> io::Result<()> {
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &json::Reach::new(local, remote, state))?;
        writeln!(out)?;
    } else {
        human::reach(&mut out, human::Style::stdout(), None, local, remote, state)?;
    }
    out.flush()
}

/// Prints the state found by the first lookup, then one line per change, until the monitor
/// stops (or the output is closed).
fn watch(monitor: &Monitor, conn: &ConnectionMonitor, target: &Target, as_json: bool) -> Outcome {
    // Subscribe before watching: the first report is then a change this subscription sees.
    let mut sub = conn.subscribe();
    let watch = conn.watch(target.clone());
    let (local, remote) = (Some(target.local()), target.remote());
    let mut last: Option<Reachability> = None;
    let mut out = io::stdout().lock();
    let style = human::Style::stdout();
    let mut print = |seq: u64, time: SystemTime, state: &Reachability, initial: bool| {
        if as_json {
            let line = json::Reach::new(local, remote, state).changed(seq, time, initial);
            serde_json::to_writer(&mut out, &line)?;
            writeln!(out)?;
        } else {
            human::reach(&mut out, style, Some(time), local, remote, state)?;
        }
        // Flush every line: a script may act on it at once.
        out.flush()
    };
    while let Some(n) = sub.recv() {
        let (seq, time, new) = match n {
            ReachNotification::Changed {
                id, seq, time, new, ..
            } if id == watch.id() => (seq, time, new),
            // Fell behind (it takes 65,536 unread changes): print the state now, if it moved.
            ReachNotification::Lagged { time } => match conn.reachability(watch.id()) {
                Some(now) if last.as_ref() != Some(&now) => (0, time, now),
                _ => continue,
            },
            _ => continue,
        };
        print(seq, time, &new, last.is_none())?;
        last = Some(new);
    }
    match monitor.failure() {
        Some(e) => Err(io::Error::other(e.to_string()).into()),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// A source to watch from when the kernel has none now: a usable address of the remote's
/// family on `interface` if given, else one on an interface that is not the loopback (a
/// running one first, a global address before a link-local one).
fn fallback_local(snap: &Snapshot, remote: IpAddr, interface: Option<&str>) -> Option<IpAddr> {
    let family = Family::of(&remote);
    let wanted = interface
        .and_then(|n| snap.interface_by_name(n))
        .map(|i| i.index);
    snap.addresses()
        .filter(|a| a.family() == family && a.is_usable())
        .filter_map(|a| {
            let ifc = snap.interface(a.interface)?;
            let fits = match wanted {
                Some(i) => a.interface == i,
                None => ifc.kind != netreach::LinkKind::Loopback || remote.is_loopback(),
            };
            fits.then_some((!ifc.is_running(), a.is_link_local(), a.address))
        })
        .min()
        .map(|(_, _, address)| address)
}
