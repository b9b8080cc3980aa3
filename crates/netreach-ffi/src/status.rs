//! `netreach_status_monitor`: connectivity per family, the primary interface, its medium and
//! metering, the probes' verdict, and their changes through a descriptor. A translation of the
//! library's [`StatusMonitor`] and [`StatusSubscription`]; no rule of its own.

use std::ffi::c_char;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use netreach::core::probe::ProbeUrl;
use netreach::{
    Connectivity, ConnectivityConfig, Level, Medium, ProbeConfig, ProbeEndpoint, StatusMonitor,
    StatusNotification, StatusSubscription, Verification, Verified,
};

use crate::boundary::{Failure, Out, Strings, arg_str, guard};
use crate::error::netreach_result;
use crate::handle::{self, Object};
use crate::monitor::netreach_monitor;
use crate::wake::Pollable;

/// A status monitor: what `QNetworkStatusMonitor` answers, and more. Opaque.
pub struct netreach_status_monitor {
    _private: [u8; 0],
}

/// How far packets of one family can get (`docs/connectivity.md`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum netreach_level {
    /// No counted interface can carry packets of the family.
    Disconnected = 0,
    /// Only the local link (link-local addresses).
    Local = 1,
    /// Networks beyond the link, but no usable default route.
    Site = 2,
    /// A usable default route: probably the internet.
    Internet = 3,
}

/// How the primary interface carries traffic.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum netreach_medium {
    /// No primary interface.
    None = 0,
    /// Wired Ethernet (also VLANs, bonds).
    Ethernet = 1,
    /// Wireless LAN.
    Wifi = 2,
    /// A cellular modem.
    Cellular = 3,
    /// Bluetooth networking.
    Bluetooth = 4,
    /// The loopback device.
    Loopback = 5,
    /// A software device inside the host (veth, bridge, ...).
    Virtual = 6,
    /// A tunnel or VPN.
    Tunnel = 7,
    /// Not known.
    Unknown = 8,
}

/// What the HTTP probes say about internet access (`docs/probe.md`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum netreach_verified {
    /// Probing is off, or no probe has answered yet.
    Unverified = 0,
    /// No probe could reach the endpoint (no usable route).
    None = 1,
    /// The endpoint could not be reached: DNS failed, refused, timed out.
    Limited = 2,
    /// A captive portal answered instead of the endpoint.
    Portal = 3,
    /// The endpoint answered as expected.
    Full = 4,
}

/// The status at one moment. Its strings belong to the status monitor handle, valid until the
/// next call on it that returns strings (`_status`, `_next_event`) or its free.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct netreach_status {
    /// IPv4 level.
    pub ipv4: netreach_level,
    /// IPv6 level.
    pub ipv6: netreach_level,
    /// The higher of the two.
    pub overall: netreach_level,
    /// The overall level is internet (`QNetworkStatusMonitor::isNetworkAccessible`).
    pub online: bool,
    /// The primary interface's index, 0 when there is none.
    pub primary_index: u32,
    /// The primary interface's name, NULL when there is none.
    pub primary_name: *const c_char,
    /// Its medium (`NETREACH_MEDIUM_NONE` without one).
    pub medium: netreach_medium,
    /// Traffic through it is metered.
    pub metered: bool,
    /// The probes' verdict over both families.
    pub verified: netreach_verified,
    /// The probes' verdict for IPv4.
    pub verified_ipv4: netreach_verified,
    /// The probes' verdict for IPv6.
    pub verified_ipv6: netreach_verified,
    /// Where a captive portal asks to log in, when one said so; else NULL.
    pub portal_url: *const c_char,
}

/// What a status event is.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum netreach_status_event_kind {
    /// Connectivity changed (a level, or the primary interface, its medium or metering).
    Changed = 0,
    /// A probe verdict changed.
    Verified = 1,
    /// Events were dropped because they were not read in time; `status` is the state now.
    Lagged = 2,
    /// The monitor stopped (its thread failed); no event follows.
    Stopped = 3,
}

/// One status event, from `netreach_status_monitor_next_event`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct netreach_status_event {
    /// What happened.
    pub kind: netreach_status_event_kind,
    /// Sequence number in the monitor's one stream (0 for `LAGGED` and `STOPPED`).
    pub seq: u64,
    /// The model change it follows (0 for `LAGGED` and `STOPPED`).
    pub cause_seq: u64,
    /// What changed and why, in words (`"IPv4: internet -> site: ..."`). Never NULL.
    pub description: *const c_char,
    /// The status after the event.
    pub status: netreach_status,
}

pub(crate) struct StatusHandle {
    status: StatusMonitor,
    events: Pollable<StatusSubscription>,
    strings: Strings,
    stopped: bool,
}

fn level(l: Level) -> netreach_level {
    match l {
        Level::Disconnected => netreach_level::Disconnected,
        Level::Local => netreach_level::Local,
        Level::Site => netreach_level::Site,
        Level::Internet => netreach_level::Internet,
    }
}

fn medium(m: Option<Medium>) -> netreach_medium {
    match m {
        None => netreach_medium::None,
        Some(Medium::Ethernet) => netreach_medium::Ethernet,
        Some(Medium::Wifi) => netreach_medium::Wifi,
        Some(Medium::Cellular) => netreach_medium::Cellular,
        Some(Medium::Bluetooth) => netreach_medium::Bluetooth,
        Some(Medium::Loopback) => netreach_medium::Loopback,
        Some(Medium::Virtual) => netreach_medium::Virtual,
        Some(Medium::Tunnel) => netreach_medium::Tunnel,
        Some(_) => netreach_medium::Unknown,
    }
}

fn verified(v: Verified) -> netreach_verified {
    match v {
        Verified::Unverified => netreach_verified::Unverified,
        Verified::None => netreach_verified::None,
        Verified::Limited => netreach_verified::Limited,
        Verified::Portal => netreach_verified::Portal,
        Verified::Full => netreach_verified::Full,
    }
}

/// The C struct of a connectivity and verification, its strings kept in `strings`.
fn status(c: &Connectivity, v: &Verification, strings: &mut Strings) -> netreach_status {
    netreach_status {
        ipv4: level(c.ipv4),
        ipv6: level(c.ipv6),
        overall: level(c.overall),
        online: c.is_online(),
        primary_index: c.primary_index().unwrap_or(0),
        primary_name: strings.keep_opt(c.primary_interface()),
        medium: medium(c.medium()),
        metered: c.is_metered(),
        verified: verified(v.internet),
        verified_ipv4: verified(v.ipv4),
        verified_ipv6: verified(v.ipv6),
        portal_url: strings.keep_opt(v.portal_url.as_deref()),
    }
}

fn new_handle(
    monitor: *const netreach_monitor,
    out: *mut *mut netreach_status_monitor,
    make: impl FnOnce(&netreach::Monitor) -> StatusMonitor,
) -> Result<(), Failure> {
    let out = Out::new(out, "out")?;
    let monitor = crate::monitor::get(monitor)?;
    if let Some(e) = monitor.failure() {
        return Err(Failure::new(
            netreach_result::Stopped,
            format!("the monitor has stopped: {e}"),
        ));
    }
    let status = make(&monitor);
    let events = Pollable::new(status.subscribe())?;
    let h = StatusHandle {
        status,
        events,
        strings: Strings::default(),
        stopped: false,
    };
    out.set(handle::insert(Object::Status(Arc::new(Mutex::new(h)))));
    Ok(())
}

/// Starts a status monitor on `monitor` with the default rules; nothing is probed (the
/// verdicts stay `UNVERIFIED`). On failure `*out` is unchanged.
///
/// Thread safety: any thread; the new handle is used by one thread at a time (a concurrent
/// call on it returns `NETREACH_RESULT_BUSY`). Free it with `netreach_status_monitor_free`.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_status_monitor_new(
    monitor: *const netreach_monitor,
    out: *mut *mut netreach_status_monitor,
) -> netreach_result {
    guard(|| {
        new_handle(monitor, out, |m| {
            StatusMonitor::new(m, ConnectivityConfig::default())
        })
    })
}

/// Like `netreach_status_monitor_new`, and verifies internet access with HTTP probes of `url`
/// (`http://` or `https://`, answering 204 No Content) on every interface and family with a
/// usable default route, each probe given at most `timeout_ms` milliseconds (1 to 600000).
///
/// Thread safety: as `netreach_status_monitor_new`.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_status_monitor_new_probing(
    monitor: *const netreach_monitor,
    url: *const c_char,
    timeout_ms: u32,
    out: *mut *mut netreach_status_monitor,
) -> netreach_result {
    guard(|| {
        let url = arg_str(url, "url")?;
        let url: ProbeUrl = url.parse().map_err(|e| {
            Failure::new(
                netreach_result::InvalidArgument,
                format!("probe url {url:?}: {e}"),
            )
        })?;
        if !(1..=600_000).contains(&timeout_ms) {
            return Err(Failure::new(
                netreach_result::InvalidArgument,
                format!("timeout_ms {timeout_ms} is not between 1 and 600000"),
            ));
        }
        let probe = ProbeConfig::new(ProbeEndpoint::no_content(url))
            .timeout(std::time::Duration::from_millis(u64::from(timeout_ms)));
        new_handle(monitor, out, |m| {
            StatusMonitor::with_probe(m, ConnectivityConfig::default(), probe)
        })
    })
}

/// Frees a status monitor handle; pending events are dropped and its descriptor is closed.
/// NULL is a no-op; a handle freed already is `NETREACH_RESULT_INVALID_HANDLE`.
///
/// Thread safety: any thread, but not while another call uses this handle.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_status_monitor_free(
    status: *mut netreach_status_monitor,
) -> netreach_result {
    guard(|| {
        if status.is_null() {
            return Ok(());
        }
        let object = handle::remove(status, "status monitor", |o| matches!(o, Object::Status(_)))?;
        drop(object);
        Ok(())
    })
}

fn get(status: *const netreach_status_monitor) -> Result<Arc<Mutex<StatusHandle>>, Failure> {
    handle::get(status, "status monitor", |o| match o {
        Object::Status(s) => Some(s.clone()),
        _ => None,
    })
}

/// The descriptor to wait on: readable while events may be pending; then call
/// `netreach_status_monitor_next_event` until it returns `NETREACH_RESULT_NO_EVENT`. Owned by
/// the handle: do not read, write or close it; it is valid until the handle is freed.
///
/// Thread safety: one thread at a time per handle, like every call on it; the descriptor
/// itself may be polled from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_status_monitor_fd(
    status: *const netreach_status_monitor,
    out_fd: *mut i32,
) -> netreach_result {
    guard(|| {
        let out = Out::new(out_fd, "out_fd")?;
        let h = get(status)?;
        let h = handle::lock(&h, "status monitor")?;
        out.set(h.events.fd());
        Ok(())
    })
}

/// The status now.
///
/// Thread safety: one thread at a time per handle; the strings of `*out` are valid until the
/// next `_status` or `_next_event` call on this handle.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_status_monitor_status(
    status: *const netreach_status_monitor,
    out: *mut netreach_status,
) -> netreach_result {
    guard(|| {
        let out = Out::new(out, "out")?;
        let h = get(status)?;
        let mut h = handle::lock(&h, "status monitor")?;
        let h = &mut *h;
        h.strings.clear();
        let (c, v) = (h.status.connectivity(), h.status.verification());
        out.set(self::status(&c, &v, &mut h.strings));
        Ok(())
    })
}

/// Takes the next pending event into `*out` (`NETREACH_RESULT_OK`), or returns
/// `NETREACH_RESULT_NO_EVENT` when there is none (the descriptor is then not readable until
/// there is). After a `STOPPED` event every call returns `NETREACH_RESULT_STOPPED`.
///
/// Thread safety: one thread at a time per handle; the strings of `*out` are valid until the
/// next `_status` or `_next_event` call on this handle.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_status_monitor_next_event(
    status: *const netreach_status_monitor,
    out: *mut netreach_status_event,
) -> netreach_result {
    guard(|| {
        let out = Out::new(out, "out")?;
        let h = get(status)?;
        let mut h = handle::lock(&h, "status monitor")?;
        let h = &mut *h;
        if h.stopped {
            return Err(Failure::new(
                netreach_result::Stopped,
                "the monitor has stopped",
            ));
        }
        loop {
            let (kind, seq, cause_seq, description, c, v) = match h.events.next() {
                Poll::Pending => {
                    return Err(Failure::new(
                        netreach_result::NoEvent,
                        "no event is pending",
                    ));
                }
                Poll::Ready(None) => {
                    h.stopped = true;
                    let c = h.events.get().current();
                    (
                        netreach_status_event_kind::Stopped,
                        0,
                        0,
                        "the monitor has stopped".to_owned(),
                        c,
                        h.status.verification(),
                    )
                }
                // The first state: the caller reads it with `_status`.
                Poll::Ready(Some(StatusNotification::Ready { .. })) => continue,
                Poll::Ready(Some(StatusNotification::Changed {
                    seq,
                    model_seq,
                    change,
                    connectivity,
                    ..
                })) => (
                    netreach_status_event_kind::Changed,
                    seq,
                    model_seq,
                    change.to_string(),
                    connectivity,
                    h.status.verification(),
                ),
                Poll::Ready(Some(StatusNotification::Verified {
                    seq,
                    model_seq,
                    change,
                    verification,
                    connectivity,
                    ..
                })) => (
                    netreach_status_event_kind::Verified,
                    seq,
                    model_seq,
                    change.to_string(),
                    connectivity,
                    verification,
                ),
                Poll::Ready(Some(StatusNotification::Lagged { connectivity, .. })) => (
                    netreach_status_event_kind::Lagged,
                    0,
                    0,
                    "events were dropped; this is the state now".to_owned(),
                    connectivity,
                    h.status.verification(),
                ),
                // A kind of notification this version does not translate.
                Poll::Ready(Some(_)) => continue,
            };
            h.strings.clear();
            let description = h.strings.keep(&description);
            let status = self::status(&c, &v, &mut h.strings);
            out.set(netreach_status_event {
                kind,
                seq,
                cause_seq,
                description,
                status,
            });
            return Ok(());
        }
    })
}
