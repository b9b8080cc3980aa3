//! `netreach reach`: can a remote address be reached from here, by which path, and if not why;
//! with `--watch`, every change of that as it happens.
//!
//! A link-local IPv6 remote (`fe80::/10`) means nothing without a link: the same address may
//! sit on every link. With `--interface` that link is given; without, the one interface on a
//! link-local prefix holding the remote is used, and several are bad input (exit 2), never an
//! answer for whichever the kernel's table lists first.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv6Addr};
use std::process::ExitCode;
use std::sync::Arc;

use netreach::core::reach::{InterfaceRef, LookupSource, Reachability, Target};
use netreach::{ConnectionMonitor, Family, Monitor, ReachNotification, Snapshot};

use crate::cli::ReachArgs;
use crate::output::{human, json};
use crate::{Failure, Outcome};

pub fn run(scope: &super::Scope, args: &ReachArgs) -> Outcome {
    let monitor = scope.monitor()?;
    let conn = ConnectionMonitor::new(&monitor);
    if !args.watch {
        let (local, remote, state, lookup) = once(
            &monitor,
            &conn,
            args.remote,
            args.local,
            args.interface.clone(),
        )?;
        print_once(args, local, remote, &state, lookup)?;
        return Ok(exit_code(&state));
    }
    let mut args = args.clone();
    if args.interface.is_none() {
        args.interface = link_of(&monitor.snapshot(), args.remote, args.local)?;
    }
    let args = &args;
    let interface = args.interface.clone().map(InterfaceRef::Name);
    let target = match args.local {
        Some(local) => conn.target(local, args.remote, interface)?,
        None => match conn.target_for(args.remote, interface) {
            Ok(target) => target,
            // No route now, so no source the kernel would choose.
            Err(netreach::Error::NoSource { remote, reason }) => {
                let state = Reachability::Unreachable(reason);
                let snap = monitor.snapshot();
                let Some(local) = fallback_local(&snap, remote, args.interface.as_deref()) else {
                    print_once(args, None, remote, &state, None)?;
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
    watch(&monitor, &conn, &target, args.json)
}

/// One answer: the source used (`None` when the kernel has no route, so no source), the
/// remote, its reachability, and where the route came from (`None` with no source: no lookup
/// of that pair was made). Bad input (an address that makes no target, an ambiguous
/// link-local remote) is a [`Failure`] with exit code 2. `reach` and `serve`'s `/v1/reach`
/// both ask this.
pub fn once(
    monitor: &Monitor,
    conn: &ConnectionMonitor,
    remote: IpAddr,
    local: Option<IpAddr>,
    interface: Option<String>,
) -> Result<(Option<IpAddr>, IpAddr, Reachability, Option<LookupSource>), Failure> {
    let interface = match interface {
        Some(i) => Some(i),
        None => link_of(&monitor.snapshot(), remote, local)?,
    };
    let interface = interface.map(InterfaceRef::Name);
    let target = match local {
        Some(local) => conn.target(local, remote, interface)?,
        None => match conn.target_for(remote, interface) {
            Ok(target) => target,
            // No route now, so no source the kernel would choose.
            Err(netreach::Error::NoSource { remote, reason }) => {
                return Ok((None, remote, Reachability::Unreachable(reason), None));
            }
            Err(e) => return Err(e.into()),
        },
    };
    let (state, lookup) = conn.check_with_source(&target)?;
    Ok((Some(target.local()), target.remote(), state, Some(lookup)))
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
    lookup: Option<LookupSource>,
) -> io::Result<()> {
    let mut out = io::stdout().lock();
    if args.json {
        let doc = json::Reach::new(local, remote, state).with_lookup(lookup);
        serde_json::to_writer(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        human::reach(&mut out, human::Style::stdout(), None, local, remote, state)?;
        if lookup == Some(LookupSource::Model) {
            writeln!(
                out,
                "(the system could not look the route up: judged from the longest-prefix match over the model's routes)"
            )?;
        }
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
    // `change`: the line's place in the stream (seq, cause_seq); `None` after a lag.
    let mut print = |change: Option<(u64, u64)>,
                     time: std::time::SystemTime,
                     state: &Reachability,
                     initial: bool| {
        if as_json {
            let line = json::Reach::new(local, remote, state);
            let line = match change {
                Some((seq, cause)) => line.changed(seq, cause, time, initial),
                None => line.lagged(time),
            };
            serde_json::to_writer(&mut out, &line)?;
            writeln!(out)?;
        } else {
            human::reach(&mut out, style, Some(time), local, remote, state)?;
        }
        // Flush every line: a script may act on it at once.
        out.flush()
    };
    while let Some(n) = sub.recv() {
        let (change, time, new) = match n {
            ReachNotification::Changed {
                id,
                seq,
                cause_seq,
                time,
                new,
                ..
            } if id == watch.id() => (Some((seq, cause_seq)), time, Arc::unwrap_or_clone(new)),
            // Fell behind (it takes 65,536 unread changes): say so with the state now, if it
            // moved.
            ReachNotification::Lagged { time } => match conn.reachability(watch.id()) {
                Some(now) if last.as_ref() != Some(&now) => (None, time, now),
                _ => continue,
            },
            _ => continue,
        };
        print(change, time, &new, last.is_none())?;
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

/// The link of a link-local IPv6 `remote` when no `--interface` is given: the one interface
/// holding a link-local prefix that contains it (holding `local`, if given). `None` when the
/// remote is not link-local or no interface is on such a link (the kernel then answers).
fn link_of(
    snap: &Snapshot,
    remote: IpAddr,
    local: Option<IpAddr>,
) -> Result<Option<String>, Failure> {
    let IpAddr::V6(remote6) = remote else {
        return Ok(None);
    };
    if !remote6.is_unicast_link_local() {
        return Ok(None);
    }
    let mut on_link: Vec<(u32, &str)> = snap
        .addresses()
        .filter(|a| match (local, a.address) {
            (Some(l), _) => a.address == l,
            (None, IpAddr::V6(a6)) => {
                a6.is_unicast_link_local() && same_prefix(a6, remote6, a.prefix_len)
            }
            (None, IpAddr::V4(_)) => false,
        })
        .filter_map(|a| {
            snap.interface(a.interface)
                .map(|i| (i.index, i.name.as_str()))
        })
        .collect();
    on_link.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    on_link.dedup();
    match on_link.as_slice() {
        [] => Ok(None),
        [(_, name)] => Ok(Some((*name).to_owned())),
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|(_, n)| human::escape(n).into_owned())
                .collect();
            Err(Failure::input(format!(
                "{remote} is link-local and {} interfaces are on its link prefix ({}): \
                 name one with --interface",
                many.len(),
                names.join(", ")
            )))
        }
    }
}

/// Whether `a` and `b` share the first `len` bits.
fn same_prefix(a: Ipv6Addr, b: Ipv6Addr, len: u8) -> bool {
    let len = u32::from(len.min(128));
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    (a.to_bits() & mask) == (b.to_bits() & mask)
}
