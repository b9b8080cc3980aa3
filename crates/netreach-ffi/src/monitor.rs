//! `netreach_monitor`: one live model of a network namespace (the library's [`Monitor`]),
//! which status and connection monitors are built on.

use std::ffi::c_char;
use std::time::Duration;

use netreach::{BackendKind, Monitor, Netns};

use crate::boundary::{Failure, Out, guard, opt_str};
use crate::error::netreach_result;
use crate::handle::{self, Object};

/// A live model of one network namespace: one rtnetlink socket and one thread. Opaque.
pub struct netreach_monitor {
    _private: [u8; 0],
}

/// The namespace a C caller names: NULL or `""` for the caller's own, a path starting with
/// `/` for a namespace file, anything else a name made with `ip netns add`.
fn netns(spec: Option<&str>) -> Result<Netns, Failure> {
    Ok(match spec {
        None | Some("") => Netns::Current,
        Some(p) if p.starts_with('/') => Netns::Path(p.into()),
        Some(name) => Netns::named(name)?,
    })
}

fn start(
    netns_arg: *const c_char,
    backend: BackendKind,
    out: *mut *mut netreach_monitor,
) -> netreach_result {
    guard(|| {
        let out = Out::new(out, "out")?;
        let ns = netns(opt_str(netns_arg, "netns")?)?;
        let monitor = Monitor::builder().netns(ns).backend(backend).build()?;
        out.set(handle::insert(Object::Monitor(monitor)));
        Ok(())
    })
}

/// Starts a monitor of a network namespace, learning of changes from the kernel's
/// notifications. `netns`: NULL or `""` for the caller's own namespace, a path starting with
/// `/` (`/proc/PID/ns/net`, `/run/netns/NAME`), or a name made with `ip netns add`. Returns
/// once the namespace's state has been read; on success `*out` is the new handle, on failure
/// `*out` is unchanged and nothing was started (`NETREACH_RESULT_INVALID_NAMESPACE`,
/// `_NAMESPACE_NOT_FOUND`, `_NOT_A_NAMESPACE`, `_PERMISSION_DENIED`, `_UNSUPPORTED`,
/// `_SYSTEM`).
///
/// Thread safety: any thread. Free the handle with `netreach_monitor_free`.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_monitor_new(
    netns: *const c_char,
    out: *mut *mut netreach_monitor,
) -> netreach_result {
    start(netns, BackendKind::Netlink, out)
}

/// Like `netreach_monitor_new`, but reads the whole state every `interval_ms` milliseconds
/// (1 to 3600000) instead of listening to notifications: for sandboxes without rtnetlink
/// multicast.
///
/// Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_monitor_new_polling(
    netns: *const c_char,
    interval_ms: u32,
    out: *mut *mut netreach_monitor,
) -> netreach_result {
    if !(1..=3_600_000).contains(&interval_ms) {
        return guard(|| {
            Err(Failure::new(
                netreach_result::InvalidArgument,
                format!("interval_ms {interval_ms} is not between 1 and 3600000"),
            ))
        });
    }
    let interval = Duration::from_millis(u64::from(interval_ms));
    start(netns, BackendKind::Polling { interval }, out)
}

/// Frees a monitor handle. Status and connection monitors made from it keep working: the
/// model's thread stops when the last of them is freed too. NULL is a no-op
/// (`NETREACH_RESULT_OK`); a handle freed already is `NETREACH_RESULT_INVALID_HANDLE`.
///
/// Thread safety: any thread, but not while another call uses this handle.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_monitor_free(monitor: *mut netreach_monitor) -> netreach_result {
    guard(|| {
        if monitor.is_null() {
            return Ok(());
        }
        let object = handle::remove(monitor, "monitor", |o| matches!(o, Object::Monitor(_)))?;
        drop(object);
        Ok(())
    })
}

/// The library's monitor behind a handle.
pub(crate) fn get(monitor: *const netreach_monitor) -> Result<Monitor, Failure> {
    handle::get(monitor, "monitor", |o| match o {
        Object::Monitor(m) => Some(m.clone()),
        _ => None,
    })
}
