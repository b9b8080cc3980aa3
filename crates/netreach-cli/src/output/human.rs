//! Human-readable output: the status table and one line per change.
//!
//! Two rules hold for every line written here:
//! - whatever comes from the kernel or the network (an interface name can hold ESC, a portal
//!   URL anything) goes through [`escape`], so no control character reaches a terminal raw;
//! - colour only through a [`Style`], which is plain unless stdout is a terminal and
//!   `NO_COLOR` is unset (<https://no-color.org>). Colour is added after escaping, so the only
//!   escape sequences in the output are the style's own.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::net::IpAddr;
use std::time::SystemTime;

use netreach::core::connectivity::{Connectivity, ConnectivityChange, Level};
use netreach::core::reach::Reachability;
use netreach::probe::{ProbeResult, ProbeVerdict};
use netreach::{Event, Notification, Snapshot, VerificationChange};

use super::json::Names;

/// Whether human output is in colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

/// The few colours the output uses.
#[derive(Debug, Clone, Copy)]
enum Paint {
    Bold,
    Dim,
    Good,
    Warn,
    Bad,
}

impl Style {
    /// For standard output: colour on a terminal, unless `NO_COLOR` is set (to anything but
    /// the empty string) or `TERM=dumb`.
    pub fn stdout() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Style {
            color: io::stdout().is_terminal() && !no_color && !dumb,
        }
    }

    /// `text` (already escaped) in `paint`, or as it is without colour.
    fn paint(self, paint: Paint, text: &str) -> Cow<'_, str> {
        if !self.color || text.is_empty() {
            return Cow::Borrowed(text);
        }
        let code = match paint {
            Paint::Bold => "1",
            Paint::Dim => "2",
            Paint::Good => "32",
            Paint::Warn => "33",
            Paint::Bad => "31",
        };
        Cow::Owned(format!("\x1b[{code}m{text}\x1b[0m"))
    }
}

/// `text` with every control character (C0, DEL, C1) and every bidirectional-override
/// character written as an escape (`\x1b`, `\u{202e}`), so that it prints as itself.
pub fn escape(text: &str) -> Cow<'_, str> {
    let bad =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let mut s = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !bad(c) => s.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(s, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(s, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(s)
}

fn level_paint(level: Level) -> Paint {
    match level {
        Level::Internet => Paint::Good,
        Level::Disconnected => Paint::Bad,
        _ => Paint::Warn,
    }
}

fn verdict_paint(v: &ProbeVerdict) -> Paint {
    match v {
        ProbeVerdict::Full => Paint::Good,
        ProbeVerdict::None { .. } => Paint::Bad,
        _ => Paint::Warn,
    }
}

/// The status table: one block per interface with its addresses, then the routes.
pub fn status(out: &mut impl Write, style: Style, snap: &Snapshot) -> io::Result<()> {
    let header = format!(
        "{:<4} {:<16} {:<8} {:<6} {:<15} {:<7} {:>6}  MAC",
        "IDX", "INTERFACE", "KIND", "ADMIN", "STATE", "CARRIER", "MTU"
    );
    writeln!(out, "{}", style.paint(Paint::Bold, &header))?;
    for i in snap.interfaces() {
        let admin = format!("{:<6}", if i.admin_up { "up" } else { "down" });
        let oper = format!("{:<15}", i.oper_state.as_str());
        let carrier = format!("{:<7}", if i.carrier { "yes" } else { "no" });
        let up_down = |up: bool| if up { Paint::Good } else { Paint::Bad };
        writeln!(
            out,
            "{:<4} {:<16} {:<8} {} {} {} {:>6}  {}",
            i.index,
            escape(&i.name),
            escape(i.kind.as_str()),
            style.paint(up_down(i.admin_up), &admin),
            style.paint(up_down(i.is_running()), &oper),
            style.paint(up_down(i.carrier), &carrier),
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
        writeln!(
            out,
            "{}",
            style.paint(Paint::Bold, "ROUTES (all tables but local)")
        )?;
        for r in routes {
            let ev = Event::RouteAdded(r.clone());
            let text = ev.describe(snap).to_string();
            let text = text.strip_prefix("route added: ").unwrap_or(&text);
            writeln!(out, "  {:<6} {}", r.family.as_str(), escape(text))?;
        }
    }
    Ok(())
}

/// One model line of `watch`.
pub fn line(out: &mut impl Write, style: Style, n: &Notification, names: &Names) -> io::Result<()> {
    let time = stamp(style, n.time());
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
            let text = event.describe(&snap).to_string();
            let kind = event.type_name();
            let paint = if kind.ends_with("_added") {
                Paint::Good
            } else if kind.ends_with("_removed") {
                Paint::Bad
            } else {
                Paint::Warn
            };
            let seq = format!("#{seq}");
            writeln!(
                out,
                "{time} {} {}",
                style.paint(Paint::Dim, &seq),
                style.paint(paint, &escape(&text))
            )
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

/// One connectivity line of `watch`.
pub fn connectivity_change(
    out: &mut impl Write,
    style: Style,
    time: SystemTime,
    change: &ConnectivityChange,
) -> io::Result<()> {
    let text = escape(&change.to_string()).into_owned();
    let text = match change {
        ConnectivityChange::Level(l) => style.paint(level_paint(l.new), &text).into_owned(),
        _ => text,
    };
    writeln!(out, "{} connectivity: {text}", stamp(style, time))
}

/// One probe line of `watch --probe`.
pub fn verification_change(
    out: &mut impl Write,
    style: Style,
    time: SystemTime,
    change: &VerificationChange,
) -> io::Result<()> {
    let text = escape(&change.to_string()).into_owned();
    let text = match &change.new {
        Some(v) => style.paint(verdict_paint(v), &text).into_owned(),
        None => text,
    };
    writeln!(out, "{} {text}", stamp(style, time))
}

/// The time stamp in front of a `watch` line.
fn stamp(style: Style, time: SystemTime) -> String {
    let t = humantime::format_rfc3339_millis(time).to_string();
    style.paint(Paint::Dim, &t).into_owned()
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
pub fn connectivity(out: &mut impl Write, style: Style, c: &Connectivity) -> io::Result<()> {
    let level = |l: Level| style.paint(level_paint(l), l.as_str()).into_owned();
    write!(
        out,
        "Connectivity: {} (IPv4 {}, IPv6 {})",
        level(c.overall),
        level(c.ipv4),
        level(c.ipv6)
    )?;
    if let Some(name) = c.primary_interface() {
        write!(out, " via {}", escape(name))?;
        if let Some(m) = c.medium() {
            write!(out, " ({})", m.as_str())?;
        }
    }
    if c.is_metered() {
        write!(out, ", metered")?;
    }
    let online = if c.is_online() {
        style.paint(Paint::Good, "online")
    } else {
        style.paint(Paint::Bad, "offline")
    };
    writeln!(out, ", {online}")?;
    writeln!(out)
}

/// Probe verdicts, one line each, then a blank line.
pub fn probes(out: &mut impl Write, style: Style, results: &[ProbeResult]) -> io::Result<()> {
    if results.is_empty() {
        writeln!(out, "Probes: no interface to probe")?;
    }
    for r in results {
        write!(out, "Probe: ")?;
        probe_result(out, style, r)?;
    }
    writeln!(out)
}

/// One probe verdict: `eth0 ipv4: full in 12 ms via 198.18.0.1`.
pub fn probe_result(out: &mut impl Write, style: Style, r: &ProbeResult) -> io::Result<()> {
    let text = escape(&r.to_string()).into_owned();
    writeln!(out, "{}", style.paint(verdict_paint(&r.verdict), &text))
}

/// One line of `reach`: `REMOTE from LOCAL: reachable via GW dev IF` or `...: unreachable: why`,
/// with a time stamp in front for `--watch`.
pub fn reach(
    out: &mut impl Write,
    style: Style,
    time: Option<SystemTime>,
    local: Option<IpAddr>,
    remote: IpAddr,
    state: &Reachability,
) -> io::Result<()> {
    if let Some(t) = time {
        write!(out, "{} ", stamp(style, t))?;
    }
    write!(out, "{remote}")?;
    if let Some(l) = local {
        write!(out, " from {l}")?;
    }
    let text = escape(&state.to_string()).into_owned();
    // The state's words start with `reachable` or `unreachable`: colour that word.
    let (word, paint) = match state {
        Reachability::Reachable(_) => ("reachable", Paint::Good),
        Reachability::Unreachable(_) => ("unreachable", Paint::Bad),
    };
    match text.strip_prefix(word) {
        Some(rest) => writeln!(out, ": {}{rest}", style.paint(paint, word)),
        None => writeln!(out, ": {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_writes_control_characters_as_escapes() {
        assert_eq!(escape("eth0"), "eth0");
        assert!(matches!(escape("eth0"), Cow::Borrowed(_)));
        assert_eq!(escape("a\x1bb"), "a\\x1bb");
        assert_eq!(escape("a\x7f\tb\n"), "a\\x7f\\x09b\\x0a");
        assert_eq!(escape("x\u{9b}y\u{202e}z"), "x\\u{9b}y\\u{202e}z");
        assert_eq!(escape("wlan-ü"), "wlan-ü");
    }

    #[test]
    fn plain_style_adds_nothing_and_colour_wraps() {
        let plain = Style { color: false };
        let color = Style { color: true };
        assert_eq!(plain.paint(Paint::Good, "up"), "up");
        assert_eq!(color.paint(Paint::Bad, "down"), "\x1b[31mdown\x1b[0m");
    }
}
