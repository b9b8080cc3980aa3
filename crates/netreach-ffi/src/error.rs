//! Result codes: one per kind of failure a C caller can tell apart, with a fixed name, and the
//! mapping from the library's typed errors.

use std::ffi::c_char;

use netreach::{Error, TargetError};

use crate::boundary::Failure;

/// What a call did. `NETREACH_RESULT_OK` is 0; every other code is a failure whose message
/// `netreach_last_error()` gives, except `NETREACH_RESULT_NO_EVENT`, which says that a
/// `_next_event` call found nothing pending. A call that fails changes nothing.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum netreach_result {
    /// Success.
    Ok = 0,
    /// No event is pending (from `_next_event`; not an error): wait for the descriptor.
    NoEvent = 1,
    /// A pointer argument that must not be NULL was NULL.
    NullParameter = 2,
    /// The handle is not a live handle of this type: freed already, never made, or of
    /// another type.
    InvalidHandle = 3,
    /// Another thread is inside a call on the same handle (handles are not shared between
    /// threads without the caller's own lock).
    Busy = 4,
    /// A bug in libnetreach was caught (a Rust panic); the call had no effect it promised.
    Panic = 5,
    /// An argument is malformed: not UTF-8, or out of range.
    InvalidArgument = 6,
    /// An address does not parse as IPv4 or IPv6.
    InvalidAddress = 7,
    /// The local address is `0.0.0.0` or `::`.
    UnspecifiedLocal = 8,
    /// The remote address is `0.0.0.0` or `::`.
    UnspecifiedRemote = 9,
    /// The local and remote addresses are of different families.
    FamilyMismatch = 10,
    /// The remote address is a multicast or broadcast address.
    NotUnicastRemote = 11,
    /// The local address is not assigned on this host (in the monitor's namespace).
    LocalNotAssigned = 12,
    /// No interface of that name or index.
    UnknownInterface = 13,
    /// The target id is not watched by this connection monitor.
    UnknownTarget = 14,
    /// The network namespace name is not a valid `ip netns` name.
    InvalidNamespace = 15,
    /// The network namespace does not exist.
    NamespaceNotFound = 16,
    /// The file given is not a network namespace (or the path cannot name one).
    NotANamespace = 17,
    /// The caller lacks a privilege (entering another namespace needs CAP_SYS_ADMIN).
    PermissionDenied = 18,
    /// No backend for this on this system (netreach monitors Linux).
    Unsupported = 19,
    /// The monitor has stopped (its thread failed); make a new one.
    Stopped = 20,
    /// The socket is not a connected IPv4 or IPv6 socket.
    NotConnected = 21,
    /// A system call failed (sockets, threads, descriptors): see the message.
    System = 22,
}

impl netreach_result {
    /// The code's fixed name, as in the header.
    pub(crate) fn name(self) -> &'static std::ffi::CStr {
        use netreach_result::*;
        match self {
            Ok => c"NETREACH_RESULT_OK",
            NoEvent => c"NETREACH_RESULT_NO_EVENT",
            NullParameter => c"NETREACH_RESULT_NULL_PARAMETER",
            InvalidHandle => c"NETREACH_RESULT_INVALID_HANDLE",
            Busy => c"NETREACH_RESULT_BUSY",
            Panic => c"NETREACH_RESULT_PANIC",
            InvalidArgument => c"NETREACH_RESULT_INVALID_ARGUMENT",
            InvalidAddress => c"NETREACH_RESULT_INVALID_ADDRESS",
            UnspecifiedLocal => c"NETREACH_RESULT_UNSPECIFIED_LOCAL",
            UnspecifiedRemote => c"NETREACH_RESULT_UNSPECIFIED_REMOTE",
            FamilyMismatch => c"NETREACH_RESULT_FAMILY_MISMATCH",
            NotUnicastRemote => c"NETREACH_RESULT_NOT_UNICAST_REMOTE",
            LocalNotAssigned => c"NETREACH_RESULT_LOCAL_NOT_ASSIGNED",
            UnknownInterface => c"NETREACH_RESULT_UNKNOWN_INTERFACE",
            UnknownTarget => c"NETREACH_RESULT_UNKNOWN_TARGET",
            InvalidNamespace => c"NETREACH_RESULT_INVALID_NAMESPACE",
            NamespaceNotFound => c"NETREACH_RESULT_NAMESPACE_NOT_FOUND",
            NotANamespace => c"NETREACH_RESULT_NOT_A_NAMESPACE",
            PermissionDenied => c"NETREACH_RESULT_PERMISSION_DENIED",
            Unsupported => c"NETREACH_RESULT_UNSUPPORTED",
            Stopped => c"NETREACH_RESULT_STOPPED",
            NotConnected => c"NETREACH_RESULT_NOT_CONNECTED",
            System => c"NETREACH_RESULT_SYSTEM",
        }
    }
}

/// The fixed name of a result code (`"NETREACH_RESULT_OK"`, ...); `"NETREACH_RESULT_UNKNOWN"`
/// for a value that is no code. Static storage: never freed.
///
/// Thread safety: any thread, any time.
#[unsafe(no_mangle)]
pub extern "C" fn netreach_result_name(result: i32) -> *const c_char {
    crate::boundary::guard_value(c"NETREACH_RESULT_UNKNOWN".as_ptr(), || {
        code_of(result).map_or(c"NETREACH_RESULT_UNKNOWN".as_ptr(), |c| c.name().as_ptr())
    })
}

/// The code whose value is `v`, if any (C may pass any integer).
fn code_of(v: i32) -> Option<netreach_result> {
    use netreach_result::*;
    const ALL: [netreach_result; 23] = [
        Ok,
        NoEvent,
        NullParameter,
        InvalidHandle,
        Busy,
        Panic,
        InvalidArgument,
        InvalidAddress,
        UnspecifiedLocal,
        UnspecifiedRemote,
        FamilyMismatch,
        NotUnicastRemote,
        LocalNotAssigned,
        UnknownInterface,
        UnknownTarget,
        InvalidNamespace,
        NamespaceNotFound,
        NotANamespace,
        PermissionDenied,
        Unsupported,
        Stopped,
        NotConnected,
        System,
    ];
    ALL.into_iter().find(|c| *c as i32 == v)
}

/// The whole message of an error and its sources, on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        // A wrapper that prints its source already (`invalid target: {0}`) is not repeated.
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        use netreach_result as R;
        let code = match &e {
            Error::InvalidTarget(t) => target_code(t),
            Error::InvalidNamespaceName { .. } => R::InvalidNamespace,
            Error::NamespaceNotFound { .. } => R::NamespaceNotFound,
            Error::InvalidNamespacePath { .. } | Error::NotANamespace { .. } => R::NotANamespace,
            Error::PermissionDenied { .. } => R::PermissionDenied,
            Error::Unsupported { .. } => R::Unsupported,
            Error::Stopped => R::Stopped,
            _ => R::System,
        };
        Failure::new(code, chain(&e))
    }
}

fn target_code(e: &TargetError) -> netreach_result {
    use netreach_result as R;
    match e {
        TargetError::UnspecifiedLocal { .. } => R::UnspecifiedLocal,
        TargetError::UnspecifiedRemote { .. } => R::UnspecifiedRemote,
        TargetError::FamilyMismatch { .. } => R::FamilyMismatch,
        TargetError::MulticastRemote { .. } | TargetError::BroadcastRemote { .. } => {
            R::NotUnicastRemote
        }
        TargetError::LocalNotAssigned { .. } => R::LocalNotAssigned,
        TargetError::UnknownInterface { .. } => R::UnknownInterface,
        _ => R::InvalidArgument,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_name_and_unknown_values_are_named_so() {
        for v in 0..=22 {
            let c = code_of(v).expect("codes are dense from 0");
            // SAFETY (test): the function returns static NUL-terminated strings.
            let name = unsafe { std::ffi::CStr::from_ptr(netreach_result_name(v)) };
            assert_eq!(name, c.name());
            assert!(name.to_str().unwrap().starts_with("NETREACH_RESULT_"));
        }
        for v in [-1, 23, i32::MAX, i32::MIN] {
            // SAFETY (test): as above.
            let name = unsafe { std::ffi::CStr::from_ptr(netreach_result_name(v)) };
            assert_eq!(name, c"NETREACH_RESULT_UNKNOWN");
        }
    }
}
