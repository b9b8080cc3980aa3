//! libnetreach: the C interface of netreach, a thin translation of the library's
//! [`netreach::Monitor`], [`netreach::StatusMonitor`] and [`netreach::ConnectionMonitor`]
//! for C and C++ (the Qt classes of `bindings/` are built on it). It adds no rule: every
//! answer is the library's.
//!
//! # Conventions (the header says them once more, per function)
//!
//! - **Opaque handles** made by `_new` and ended by `_free`. A handle is a number the registry
//!   ([`handle`]) knows, never an address: a freed, forged or mistyped handle is
//!   `NETREACH_RESULT_INVALID_HANDLE`, a second free too, never undefined behaviour.
//! - **A result code and out-parameters**: every function that can fail returns a
//!   `netreach_result` (0 is success) and writes its answer through a pointer; a failed call
//!   writes nothing and changes nothing. `netreach_last_error()` is the message of the calling
//!   thread's last failure.
//! - **Strings** are UTF-8 `const char *`. Arguments are the caller's, read during the call.
//!   Strings returned in a struct belong to the handle until its next call that returns
//!   strings; static ones (`netreach_result_name`) are never freed.
//! - **No panic crosses the boundary** ([`boundary::guard`]): a bug is
//!   `NETREACH_RESULT_PANIC`.
//! - **Every pointer is checked**: NULL is `NETREACH_RESULT_NULL_PARAMETER`.
//! - **Threads**: a handle is used by one thread at a time; an overlapping call gets
//!   `NETREACH_RESULT_BUSY` rather than a race. Events come through a descriptor the caller
//!   polls in its own loop ([`wake`]), drained with `_next_event`: nothing ever runs on a
//!   library thread in the caller's code.
//!
//! The `unsafe` of this crate is in [`boundary`] (reading the caller's pointers).
//!
//! # Platform specific behavior
//!
//! Linux only: the descriptor is an `eventfd`. (The library builds elsewhere with its
//! unsupported backend; this crate does not yet.)

#![warn(missing_docs)]
#![allow(non_camel_case_types)]

mod boundary;
mod connection;
mod error;
mod handle;
mod monitor;
mod status;
mod wake;

#[cfg(test)]
mod tests;

use std::ffi::c_char;

pub use connection::{
    netreach_connection_event, netreach_connection_event_kind, netreach_connection_monitor,
    netreach_connection_monitor_add_socket, netreach_connection_monitor_add_target,
    netreach_connection_monitor_fd, netreach_connection_monitor_free,
    netreach_connection_monitor_len, netreach_connection_monitor_new,
    netreach_connection_monitor_next_event, netreach_connection_monitor_reachability,
    netreach_connection_monitor_remove_target, netreach_reachability, netreach_reason,
    netreach_state,
};
pub use error::{netreach_result, netreach_result_name};
pub use monitor::{
    netreach_monitor, netreach_monitor_free, netreach_monitor_new, netreach_monitor_new_polling,
};
pub use status::{
    netreach_level, netreach_medium, netreach_status, netreach_status_event,
    netreach_status_event_kind, netreach_status_monitor, netreach_status_monitor_fd,
    netreach_status_monitor_free, netreach_status_monitor_new, netreach_status_monitor_new_probing,
    netreach_status_monitor_next_event, netreach_status_monitor_status, netreach_verified,
};

/// The library's version, `"MAJOR.MINOR.PATCH"`. Static storage.
///
/// Thread safety: any thread, any time.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The message of the calling thread's last failed call (`""` before any), in UTF-8, on one
/// line. Valid until that thread's next failing call; never free it.
///
/// Thread safety: any thread; each thread has its own.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_last_error() -> *const c_char {
    boundary::guard_value(c"".as_ptr(), boundary::last_error)
}

/// True where netreach has a backend (Linux): elsewhere every `_new` returns
/// `NETREACH_RESULT_UNSUPPORTED`. What Qt's `isEnabled()` answers.
///
/// Thread safety: any thread, any time.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_is_supported() -> bool {
    cfg!(target_os = "linux")
}
