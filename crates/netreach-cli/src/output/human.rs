//! Human-readable output: the status table and one line per change.

use std::io::{self, Write};
use std::net::IpAddr;
use std::time::SystemTime;

use netreach::core::connectivity::Connectivity;
use netreach::core::reach::Reachability;
use netreach::{Event, Notification, Snapshot};

use super::json::Names;

/// The status table: one block per interface with its addresses, then the routes.
pub fn status(out: &mut impl Write, snap: &Snapshot) -> io::Result<()> {
    writeln!(
        out,
        "{:<4} {:<16} {:<8} {:<6} {:<15} {:<7} {:>6}  MAC",
        "IDX", "INTERFACE", "KIND", "ADMIN", "STATE", "CARRIER", "MTU"
    )?;
    for i in snap.interfaces() {
        writeln!(
            out,
            "{:<4} {:<16} {:<8} {:<6} {:<15} {:<7} {:>6}  {}",
            i.index,
            i.name,
            i.kind.as_str(),
            if i.admin_up { "up" } else { "down" },
            i.oper_state.as_str(),
            if i.carrier { "yes" } else { "no" },
            i.mtu,
            i.mac.as_ref().map(|m| m.to_string()).unwrap_or_default(),
        )?;
        for a in snap.addresses_of(i.index) {
            writeln!(
                out,
                "     {:<40} scope {}{}",
                format!("{}/{}", a.address, a.prefix_len),
                a.scope,
                a.flags.display_suffix()
            )?;
        }
    }
    let routes: Vec<_> = snap
        .routes()
        .filter(|r| r.table != netreach::Route::LOCAL_TABLE)
        .collect();
    if !routes.is_empty() {
        writeln!(out)?;
        writeln!(out, "ROUTES (all tables but local)")?;
        for r in routes {
            let ev = Event::RouteAdded(r.clone());
            let text = ev.describe(snap).to_string();
            let text = text.strip_prefix("route added: ").unwrap_or(&text);
            writeln!(out, "  {:<6} {text}", r.family.as_str())?;
        }
    }
    Ok(())
}

/// One line of `watch`.
pub fn line(out: &mut impl Write, n: &Notification, names: &Names) -> io::Result<()> {
    let time = humantime::format_rfc3339_millis(n.time());
    match n {
        Notification::Ready { snapshot, .. } => writeln!(
            out,
            "{time} ready: {} interfaces, {} addresses, {} routes",
            snapshot.interfaces().len(),
            snapshot.addresses().len(),
            snapshot.routes().len()
        ),
        Notification::Change { seq, event, .. } => {
            // Resolve names from what we have seen, so removed interfaces keep their name.
            let snap = names_snapshot(names, event);
            writeln!(out, "{time} #{seq} {}", event.describe(&snap))
        }
        Notification::Resynced { .. } => {
            writeln!(
                out,
                "{time} resynced with the kernel after lost notifications"
            )
        }
        Notification::Lagged { missed, .. } => writeln!(
            out,
            "{time} fell behind: {missed} changes merged into the ones that follow"
        ),
        _ => Ok(()),
    }
}

/// A snapshot holding just the interfaces an event may name, for `Event::describe`.
fn names_snapshot(names: &Names, event: &Event) -> Snapshot {
    let ifaces = event
        .interface_index()
        .and_then(|i| names.get(i).map(|n| (i, n)))
        .map(|(i, n)| netreach::Interface::new(i, n, netreach::LinkKind::Unknown));
    Snapshot::from_parts(ifaces, [], [])
}

/// The connectivity summary line(s) above the table.
pub fn connectivity(out: &mut impl Write, c: &Connectivity) -> io::Result<()> {
    write!(
        out,
        "Connectivity: {} (IPv4 {}, IPv6 {})",
        c.overall, c.ipv4, c.ipv6
    )?;
    if let Some(name) = c.primary_interface() {
        write!(out, " via {name}")?;
        if let Some(m) = c.medium() {
            write!(out, " ({})", m.as_str())?;
        }
    }
    if c.is_metered() {
        write!(out, ", metered")?;
    }
    writeln!(
        out,
        "{}",
        if c.is_online() {
            ", online"
        } else {
            ", offline"
        }
    )?;
    writeln!(out)
}

/// Probe verdicts, one line each, then a blank line.
pub fn probes(out: &mut impl Write, results: &[netreach::probe::ProbeResult]) -> io::Result<()> {
    if results.is_empty() {
        writeln!(out, "Probes: no interface to probe")?;
    }
    for r in results {
        writeln!(out, "Probe: {r}")?;
    }
    writeln!(out)
}

/// One line of `reach`: `REMOTE from LOCAL: reachable via GW dev IF` or `...: unreachable: why`,
/// with a time stamp in front for `--watch`.
pub fn reach(
    out: &mut impl Write,
    time: Option<SystemTime>,
    local: Option<IpAddr>,
    remote: IpAddr,
    state: &Reachability,
) -> io::Result<()> {
    if let Some(t) = time {
        write!(out, "{} ", humantime::format_rfc3339_millis(t))?;
    }
    write!(out, "{remote}")?;
    if let Some(l) = local {
        write!(out, " from {l}")?;
    }
    writeln!(out, ": {state}")
}
