//! Handles: what a C caller holds is a number that looks like a pointer, never an address of
//! ours. A registry maps live numbers to objects, so a freed, forged or mistyped handle is
//! `NETREACH_RESULT_INVALID_HANDLE` instead of a use after free, and a second free of the same
//! handle is refused the same way. Numbers are never reused within a process.
//!
//! A call takes the object out of the registry as an `Arc` and releases the registry's lock
//! before it works, so a slow call on one handle never holds up another; a free that races a
//! call on the same handle (a caller's bug) only ends the object once that call is done.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use crate::boundary::Failure;
use crate::error::netreach_result;

/// A live object of the C interface.
pub(crate) enum Object {
    Monitor(netreach::Monitor),
    Status(Arc<Mutex<crate::status::StatusHandle>>),
    Connection(Arc<Mutex<crate::connection::ConnectionHandle>>),
}

struct Registry {
    next: usize,
    objects: BTreeMap<usize, Object>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    // Aligned, non-zero and away from small integers a caller might pass by mistake.
    next: 0x1000,
    objects: BTreeMap::new(),
});

/// The registry, whatever a panic elsewhere left (its map is never half-updated).
fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers `object` and returns its handle as a pointer of the C type `T`.
pub(crate) fn insert<T>(object: Object) -> *mut T {
    let mut r = registry();
    let id = r.next;
    r.next += 16;
    r.objects.insert(id, object);
    std::ptr::without_provenance_mut(id)
}

fn invalid(what: &str) -> Failure {
    Failure::new(
        netreach_result::InvalidHandle,
        format!("{what} is not a live handle (freed already, or never made)"),
    )
}

/// Looks a handle up with `pick`, which returns the object if it is of the right type.
pub(crate) fn get<T, R>(
    p: *const T,
    what: &str,
    pick: impl FnOnce(&Object) -> Option<R>,
) -> Result<R, Failure> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    let r = registry();
    r.objects
        .get(&p.addr())
        .and_then(pick)
        .ok_or_else(|| invalid(what))
}

/// Removes a handle if `is_type` says it is of the right type. The object is dropped by the
/// caller, after the registry's lock is released (dropping a monitor joins its thread).
pub(crate) fn remove<T>(
    p: *const T,
    what: &str,
    is_type: impl FnOnce(&Object) -> bool,
) -> Result<Object, Failure> {
    let mut r = registry();
    match r.objects.get(&p.addr()) {
        Some(o) if is_type(o) => Ok(r.objects.remove(&p.addr()).expect("present")),
        _ => Err(invalid(what)),
    }
}

/// Locks one handle for a call: `NETREACH_RESULT_BUSY` when another thread is in a call on it.
pub(crate) fn lock<'a, H>(h: &'a Mutex<H>, what: &str) -> Result<MutexGuard<'a, H>, Failure> {
    match h.try_lock() {
        Ok(g) => Ok(g),
        Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
        Err(TryLockError::WouldBlock) => Err(Failure::new(
            netreach_result::Busy,
            format!("another thread is in a call on this {what}"),
        )),
    }
}

/// How many handles are live (for the tests).
#[cfg(test)]
pub(crate) fn live() -> usize {
    registry().objects.len()
}
