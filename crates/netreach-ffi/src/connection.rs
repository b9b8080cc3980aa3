//! `netreach_connection_monitor`: watched (local, remote[, interface]) targets, their
//! reachability with its reason or path, and their changes through a descriptor. A
//! translation of the library's [`ConnectionMonitor`], [`Watch`] and [`ReachSubscription`];
//! the checks of a target are the library's (`docs/reachability.md`).

use std::collections::HashMap;
use std::ffi::c_char;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use netreach::core::reach::Reason;
use netreach::{
    ConnectionMonitor, InterfaceRef, ReachNotification, ReachSubscription, Reachability, Watch,
};

use crate::boundary::{Failure, Out, Strings, arg_str, guard, opt_str};
use crate::error::netreach_result;
use crate::handle::{self, Object};
use crate::monitor::netreach_monitor;
use crate::wake::Pollable;

/// A connection monitor: what `QNetworkConnectionMonitor` answers, for many targets. Opaque.
pub struct netreach_connection_monitor {
    _private: [u8; 0],
}

/// Whether a target can be reached.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum netreach_state {
    /// Not known yet: the first route lookup has not been answered.
    Unknown = 0,
    /// The kernel routes packets to the remote through a running interface.
    Reachable = 1,
    /// Packets to the remote would not leave this host; `reason` says why.
    Unreachable = 2,
}

/// Why a target is unreachable (`docs/reachability.md`, "Unreachable, and why").
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum netreach_reason {
    /// Not unreachable.
    None = 0,
    /// The local address is no longer assigned to this host.
    LocalAddressRemoved = 1,
    /// The local address is tentative or failed duplicate address detection.
    LocalAddressUnusable = 2,
    /// The bound interface, or the path's, no longer exists.
    InterfaceGone = 3,
    /// The path's interface is administratively down.
    InterfaceDown = 4,
    /// The path's interface has no carrier.
    CarrierLost = 5,
    /// The route's next hop is flagged linkdown.
    LinkDown = 6,
    /// No route covers the remote address.
    NoRoute = 7,
    /// The covering route rejects traffic (`route_type` names it).
    RouteType = 8,
    /// The path leaves through another interface than the local address's.
    InterfaceMismatch = 9,
    /// The route lookup failed (`error_number`).
    LookupFailed = 10,
    /// A reason this version does not name (`reason_name` does).
    Other = 11,
}

/// A target's reachability. Its strings belong to the connection monitor handle, valid until
/// the next call on it that returns strings (`_reachability`, `_next_event`) or its free.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct netreach_reachability {
    /// Reachable, unreachable, or not known yet.
    pub state: netreach_state,
    /// Why, when unreachable; `NETREACH_REASON_NONE` otherwise.
    pub reason: netreach_reason,
    /// The reason's name as in the JSON output (`"carrier_lost"`), NULL unless unreachable.
    pub reason_name: *const c_char,
    /// The whole verdict in words (`"reachable via 198.18.20.1 dev h0"`,
    /// `"unreachable: interface h0 has no carrier"`, `"unknown"`). Never NULL.
    pub description: *const c_char,
    /// The path in words (`"via 198.18.20.1 dev h0"`), NULL unless reachable.
    pub path: *const c_char,
    /// The path's interface when reachable, else the interface the reason names; 0 for none.
    pub interface_index: u32,
    /// That interface's name, or NULL.
    pub interface_name: *const c_char,
    /// The path's gateway, NULL when on link or unreachable.
    pub gateway: *const c_char,
    /// The path's route's preferred source address, or NULL.
    pub source: *const c_char,
    /// For `NETREACH_REASON_ROUTE_TYPE`: the route's type (`"blackhole"`, ...), else NULL.
    pub route_type: *const c_char,
    /// For `NETREACH_REASON_LOOKUP_FAILED`: the errno, else 0.
    pub error_number: i32,
}

/// What a connection event is.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum netreach_connection_event_kind {
    /// A target's reachability, reason or path changed (or its first lookup was answered).
    Changed = 0,
    /// Events were dropped because they were not read in time: read every target's state.
    Lagged = 1,
    /// The monitor stopped (its thread failed); no event follows.
    Stopped = 2,
}

/// One connection event, from `netreach_connection_monitor_next_event`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct netreach_connection_event {
    /// What happened.
    pub kind: netreach_connection_event_kind,
    /// The target (for `CHANGED`), as returned by `_add_target`; else 0.
    pub target: u64,
    /// Sequence number in the monitor's one stream (0 unless `CHANGED`).
    pub seq: u64,
    /// The model change it follows (0 unless `CHANGED`).
    pub cause_seq: u64,
    /// The state before (`UNKNOWN` for a first report).
    pub previous: netreach_state,
    /// The reachability now (for `CHANGED`; `UNKNOWN` otherwise).
    pub reachability: netreach_reachability,
}

pub(crate) struct ConnectionHandle {
    conn: ConnectionMonitor,
    events: Pollable<ReachSubscription>,
    watches: HashMap<u64, Watch>,
    strings: Strings,
    stopped: bool,
}

fn state(r: Option<&Reachability>) -> netreach_state {
    match r {
        None => netreach_state::Unknown,
        Some(Reachability::Reachable(_)) => netreach_state::Reachable,
        Some(Reachability::Unreachable(_)) => netreach_state::Unreachable,
    }
}

fn reason(r: &Reason) -> netreach_reason {
    match r {
        Reason::LocalAddressRemoved => netreach_reason::LocalAddressRemoved,
        Reason::LocalAddressUnusable { .. } => netreach_reason::LocalAddressUnusable,
        Reason::InterfaceGone { .. } => netreach_reason::InterfaceGone,
        Reason::InterfaceDown { .. } => netreach_reason::InterfaceDown,
        Reason::CarrierLost { .. } => netreach_reason::CarrierLost,
        Reason::LinkDown { .. } => netreach_reason::LinkDown,
        Reason::NoRoute => netreach_reason::NoRoute,
        Reason::RouteType(_) => netreach_reason::RouteType,
        Reason::InterfaceMismatch { .. } => netreach_reason::InterfaceMismatch,
        Reason::LookupFailed { .. } => netreach_reason::LookupFailed,
        _ => netreach_reason::Other,
    }
}

/// The C struct of a verdict (`None`: unknown yet), its strings kept in `strings`.
fn reachability(r: Option<&Reachability>, strings: &mut Strings) -> netreach_reachability {
    let mut out = netreach_reachability {
        state: state(r),
        reason: netreach_reason::None,
        reason_name: std::ptr::null(),
        description: std::ptr::null(),
        path: std::ptr::null(),
        interface_index: 0,
        interface_name: std::ptr::null(),
        gateway: std::ptr::null(),
        source: std::ptr::null(),
        route_type: std::ptr::null(),
        error_number: 0,
    };
    out.description = match r {
        None => strings.keep("unknown"),
        Some(r) => strings.keep(&r.to_string()),
    };
    match r {
        None => {}
        Some(Reachability::Reachable(p)) => {
            out.path = strings.keep(&p.to_string());
            out.interface_index = p.interface;
            out.interface_name = strings.keep(&p.interface_name);
            out.gateway = strings.keep_opt(p.gateway.map(|g| g.to_string()).as_deref());
            out.source = strings.keep_opt(p.source.map(|s| s.to_string()).as_deref());
        }
        Some(Reachability::Unreachable(why)) => {
            out.reason = reason(why);
            out.reason_name = strings.keep(why.kind_name());
            let named = match why {
                Reason::InterfaceDown { interface }
                | Reason::CarrierLost { interface }
                | Reason::LinkDown { interface }
                | Reason::InterfaceMismatch {
                    path_interface: interface,
                    ..
                } => Some(interface),
                _ => None,
            };
            if let Some(i) = named {
                out.interface_index = i.index;
                out.interface_name = strings.keep(&i.name);
            }
            match why {
                Reason::InterfaceGone { interface } => out.interface_index = *interface,
                Reason::RouteType(t) => out.route_type = strings.keep(&t.to_string()),
                Reason::LookupFailed { errno } => out.error_number = *errno,
                _ => {}
            }
        }
    }
    out
}

/// Starts a connection monitor on `monitor`. On failure `*out` is unchanged.
///
/// Thread safety: any thread; the new handle is used by one thread at a time (a concurrent
/// call on it returns `NETREACH_RESULT_BUSY`). Free it with `netreach_connection_monitor_free`.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_connection_monitor_new(
    monitor: *const netreach_monitor,
    out: *mut *mut netreach_connection_monitor,
) -> netreach_result {
    guard(|| {
        let out = Out::new(out, "out")?;
        let monitor = crate::monitor::get(monitor)?;
        if let Some(e) = monitor.failure() {
            return Err(Failure::new(
                netreach_result::Stopped,
                format!("the monitor has stopped: {e}"),
            ));
        }
        let conn = ConnectionMonitor::new(&monitor);
        let events = Pollable::new(conn.subscribe())?;
        let h = ConnectionHandle {
            conn,
            events,
            watches: HashMap::new(),
            strings: Strings::default(),
            stopped: false,
        };
        out.set(handle::insert(Object::Connection(Arc::new(Mutex::new(h)))));
        Ok(())
    })
}

/// Frees a connection monitor handle: every target is unwatched, pending events are dropped
/// and its descriptor is closed. NULL is a no-op; a handle freed already is
/// `NETREACH_RESULT_INVALID_HANDLE`.
///
/// Thread safety: any thread, but not while another call uses this handle.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_connection_monitor_free(
    conn: *mut netreach_connection_monitor,
) -> netreach_result {
    guard(|| {
        if conn.is_null() {
            return Ok(());
        }
        let object = handle::remove(conn, "connection monitor", |o| {
            matches!(o, Object::Connection(_))
        })?;
        drop(object);
        Ok(())
    })
}

fn get(conn: *const netreach_connection_monitor) -> Result<Arc<Mutex<ConnectionHandle>>, Failure> {
    handle::get(conn, "connection monitor", |o| match o {
        Object::Connection(c) => Some(c.clone()),
        _ => None,
    })
}

/// An address argument: IPv4 or IPv6, optionally with `%SCOPE` (an interface name or index,
/// as `QHostAddress::toString` writes a link-local address).
fn address(s: &str, what: &str) -> Result<(IpAddr, Option<String>), Failure> {
    let (addr, scope) = match s.split_once('%') {
        Some((a, scope)) => (a, Some(scope.to_owned())),
        None => (s, None),
    };
    let ip = addr.parse::<IpAddr>().map_err(|_| {
        Failure::new(
            netreach_result::InvalidAddress,
            format!("{what} {s:?} is not an IPv4 or IPv6 address"),
        )
    })?;
    Ok((ip, scope.filter(|s| !s.is_empty())))
}

/// An interface argument: digits are an index, anything else a name.
fn interface_ref(s: &str) -> InterfaceRef {
    match s.parse::<u32>() {
        Ok(i) => InterfaceRef::Index(i),
        Err(_) => InterfaceRef::Name(s.to_owned()),
    }
}

/// Watches the path from `local` to `remote` (IPv4 or IPv6 text; `fe80::1%eth0` names the
/// interface too), optionally bound to `interface` (a name or an index in decimal; NULL or
/// `""` for none). On success `*out_target` is the target's id, found in its events; its
/// first report (a `CHANGED` event) comes once the kernel answered the route lookup. On
/// failure nothing is watched and `*out_target` is unchanged:
/// `NETREACH_RESULT_INVALID_ADDRESS`, `_UNSPECIFIED_LOCAL`, `_UNSPECIFIED_REMOTE`,
/// `_FAMILY_MISMATCH`, `_NOT_UNICAST_REMOTE`, `_LOCAL_NOT_ASSIGNED`, `_UNKNOWN_INTERFACE`.
///
/// Thread safety: one thread at a time per handle.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_connection_monitor_add_target(
    conn: *const netreach_connection_monitor,
    local: *const c_char,
    remote: *const c_char,
    interface: *const c_char,
    out_target: *mut u64,
) -> netreach_result {
    guard(|| {
        let out = Out::new(out_target, "out_target")?;
        let local = arg_str(local, "local")?;
        let remote = arg_str(remote, "remote")?;
        let iface = opt_str(interface, "interface")?.filter(|s| !s.is_empty());
        let (local, local_scope) = address(local, "local")?;
        let (remote, remote_scope) = address(remote, "remote")?;
        let iface = iface
            .map(str::to_owned)
            .or(remote_scope)
            .or(local_scope)
            .map(|s| interface_ref(&s));
        let h = get(conn)?;
        let mut h = handle::lock(&h, "connection monitor")?;
        let watch = h.conn.watch_pair(local, remote, iface)?;
        let id = watch.id().as_u64();
        h.watches.insert(id, watch);
        out.set(id);
        Ok(())
    })
}

/// Watches the path of a connected TCP or UDP socket (its local and peer addresses, read now;
/// the socket is not kept). Errors as `_add_target`, and `NETREACH_RESULT_NOT_CONNECTED` for a
/// socket that is not a connected IPv4 or IPv6 one.
///
/// Thread safety: one thread at a time per handle; `fd` stays the caller's.
#[cfg(unix)]
#[unsafe(no_mangle)]
pub extern "C" fn netreach_connection_monitor_add_socket(
    conn: *const netreach_connection_monitor,
    fd: i32,
    out_target: *mut u64,
) -> netreach_result {
    guard(|| {
        let out = Out::new(out_target, "out_target")?;
        if fd < 0 {
            return Err(Failure::new(
                netreach_result::InvalidArgument,
                format!("{fd} is not a descriptor"),
            ));
        }
        let h = get(conn)?;
        let mut h = handle::lock(&h, "connection monitor")?;
        let watch =
            crate::boundary::with_fd(fd, |fd| h.conn.watch_socket(&fd)).map_err(|e| match e {
                netreach::Error::Socket { .. } => Failure {
                    code: netreach_result::NotConnected,
                    ..Failure::from(e)
                },
                e => Failure::from(e),
            })?;
        let id = watch.id().as_u64();
        h.watches.insert(id, watch);
        out.set(id);
        Ok(())
    })
}

/// Stops watching a target; events of it still pending are dropped. An id not watched is
/// `NETREACH_RESULT_UNKNOWN_TARGET`.
///
/// Thread safety: one thread at a time per handle.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_connection_monitor_remove_target(
    conn: *const netreach_connection_monitor,
    target: u64,
) -> netreach_result {
    guard(|| {
        let h = get(conn)?;
        let mut h = handle::lock(&h, "connection monitor")?;
        match h.watches.remove(&target) {
            Some(watch) => {
                drop(watch);
                Ok(())
            }
            None => Err(unknown_target(target)),
        }
    })
}

fn unknown_target(target: u64) -> Failure {
    Failure::new(
        netreach_result::UnknownTarget,
        format!("target {target} is not watched by this connection monitor"),
    )
}

/// A target's reachability now (`UNKNOWN` before its first lookup was answered). With
/// `timeout_ms` > 0, waits at most that long for the first answer if there is none yet.
///
/// Thread safety: one thread at a time per handle; the strings of `*out` are valid until the
/// next `_reachability` or `_next_event` call on this handle.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_connection_monitor_reachability(
    conn: *const netreach_connection_monitor,
    target: u64,
    timeout_ms: u32,
    out: *mut netreach_reachability,
) -> netreach_result {
    guard(|| {
        let out = Out::new(out, "out")?;
        let h = get(conn)?;
        let mut h = handle::lock(&h, "connection monitor")?;
        let h = &mut *h;
        let watch = h
            .watches
            .get(&target)
            .ok_or_else(|| unknown_target(target))?;
        let r = match watch.reachability() {
            None if timeout_ms > 0 => {
                watch.wait_first(Duration::from_millis(u64::from(timeout_ms)))
            }
            r => r,
        };
        h.strings.clear();
        out.set(reachability(r.as_ref(), &mut h.strings));
        Ok(())
    })
}

/// How many targets are watched.
///
/// Thread safety: one thread at a time per handle.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_connection_monitor_len(
    conn: *const netreach_connection_monitor,
    out_len: *mut usize,
) -> netreach_result {
    guard(|| {
        let out = Out::new(out_len, "out_len")?;
        let h = get(conn)?;
        let h = handle::lock(&h, "connection monitor")?;
        out.set(h.watches.len());
        Ok(())
    })
}

/// The descriptor to wait on: readable while events may be pending; then call
/// `netreach_connection_monitor_next_event` until it returns `NETREACH_RESULT_NO_EVENT`. Owned
/// by the handle: do not read, write or close it; it is valid until the handle is freed.
///
/// Thread safety: one thread at a time per handle, like every call on it; the descriptor
/// itself may be polled from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_connection_monitor_fd(
    conn: *const netreach_connection_monitor,
    out_fd: *mut i32,
) -> netreach_result {
    guard(|| {
        let out = Out::new(out_fd, "out_fd")?;
        let h = get(conn)?;
        let h = handle::lock(&h, "connection monitor")?;
        out.set(h.events.fd());
        Ok(())
    })
}

/// Takes the next pending event into `*out` (`NETREACH_RESULT_OK`), or returns
/// `NETREACH_RESULT_NO_EVENT` when there is none (the descriptor is then not readable until
/// there is). Events of targets removed meanwhile are skipped. After a `STOPPED` event every
/// call returns `NETREACH_RESULT_STOPPED`.
///
/// Thread safety: one thread at a time per handle; the strings of `*out` are valid until the
/// next `_reachability` or `_next_event` call on this handle.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_connection_monitor_next_event(
    conn: *const netreach_connection_monitor,
    out: *mut netreach_connection_event,
) -> netreach_result {
    guard(|| {
        let out = Out::new(out, "out")?;
        let h = get(conn)?;
        let mut h = handle::lock(&h, "connection monitor")?;
        let h = &mut *h;
        if h.stopped {
            return Err(Failure::new(
                netreach_result::Stopped,
                "the monitor has stopped",
            ));
        }
        let (kind, target, seq, cause_seq, previous, now) = loop {
            match h.events.next() {
                Poll::Pending => {
                    return Err(Failure::new(
                        netreach_result::NoEvent,
                        "no event is pending",
                    ));
                }
                Poll::Ready(None) => {
                    h.stopped = true;
                    break (
                        netreach_connection_event_kind::Stopped,
                        0,
                        0,
                        0,
                        netreach_state::Unknown,
                        None,
                    );
                }
                Poll::Ready(Some(ReachNotification::Changed {
                    seq,
                    cause_seq,
                    id,
                    old,
                    new,
                    ..
                })) if h.watches.contains_key(&id.as_u64()) => {
                    break (
                        netreach_connection_event_kind::Changed,
                        id.as_u64(),
                        seq,
                        cause_seq,
                        state(old.as_deref()),
                        Some(new),
                    );
                }
                Poll::Ready(Some(ReachNotification::Lagged { .. })) => {
                    break (
                        netreach_connection_event_kind::Lagged,
                        0,
                        0,
                        0,
                        netreach_state::Unknown,
                        None,
                    );
                }
                // The first states (read them with `_reachability`), changes of targets
                // removed since, kinds this version does not translate.
                Poll::Ready(Some(_)) => continue,
            }
        };
        h.strings.clear();
        out.set(netreach_connection_event {
            kind,
            target,
            seq,
            cause_seq,
            previous,
            reachability: reachability(now.as_deref(), &mut h.strings),
        });
        Ok(())
    })
}
