//! The C boundary itself: the panic guard every exported function runs in, the thread's last
//! error message, and the only code that reads a C caller's pointers.
//!
//! Every exported function is `guard(|| { ... })`: the body returns `Ok(())` or a [`Failure`]
//! (a code and a message); a panic is caught here and becomes `NETREACH_RESULT_PANIC`, so none
//! crosses into C. The body checks every pointer before it changes anything, so a call that
//! fails on its arguments has no effect. The `unsafe` of the crate is in this file: reading a
//! `const char *`, writing through an out-parameter, borrowing a descriptor.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

use crate::error::netreach_result;

/// Why a call failed: the code it returns and the message `netreach_last_error` gives.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: netreach_result,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: netreach_result, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn null(what: &str) -> Failure {
        Failure::new(netreach_result::NullParameter, format!("{what} is NULL"))
    }
}

thread_local! {
    /// The message of this thread's last failed call (NUL-terminated for C).
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Runs an exported function's body: its result, or `NETREACH_RESULT_PANIC` if it panicked.
/// Records the message of a failure for `netreach_last_error`.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> netreach_result {
    // The body's captures are the C caller's arguments and handles behind locks that recover
    // from poisoning; nothing is observed in a broken state after a panic.
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return netreach_result::Ok,
        Ok(Err(f)) => f,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".to_owned());
            Failure::new(
                netreach_result::Panic,
                format!("internal error in libnetreach (a panic, caught): {what}"),
            )
        }
    };
    set_last_error(&failure.message);
    failure.code
}

/// Like [`guard`] for functions that return a value instead of a code (`fallback` on a panic).
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

pub(crate) fn set_last_error(message: &str) {
    let c = c_string(message);
    // `try_with`: during thread teardown the slot may be gone; the message is then dropped.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = c);
}

/// This thread's last error message; valid until this thread's next failing call.
pub(crate) fn last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| slot.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// A C string of `s`, any NUL byte in it replaced (names and messages never have one).
pub(crate) fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\u{fffd}")).unwrap_or_default()
}

/// A required `const char *` argument, as UTF-8.
pub(crate) fn arg_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    opt_str(p, what)?.ok_or_else(|| Failure::null(what))
}

/// An optional `const char *` argument (NULL: `None`), as UTF-8.
pub(crate) fn opt_str<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, Failure> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: not NULL, and the header's contract for every `const char *` argument is a
    // NUL-terminated string that stays valid and unchanged for the duration of the call; the
    // returned borrow does not outlive the exported function that reads it.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map(Some).map_err(|_| {
        Failure::new(
            netreach_result::InvalidArgument,
            format!("{what} is not valid UTF-8"),
        )
    })
}

/// An out-parameter, checked for NULL before the call does anything.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    pub(crate) fn new(p: *mut T, what: &str) -> Result<Out<T>, Failure> {
        NonNull::new(p).map(Out).ok_or_else(|| Failure::null(what))
    }

    /// Writes the result (the old contents, possibly uninitialised, are not read or dropped).
    pub(crate) fn set(self, value: T) {
        // SAFETY: not NULL (checked in `new`), and the header's contract for every
        // out-parameter is a pointer to writable, suitably aligned storage of this type.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// A socket descriptor argument, borrowed for the call.
#[cfg(unix)]
pub(crate) fn with_fd<R>(fd: i32, f: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> R) -> R {
    // SAFETY: `fd` is not -1 (checked by the caller) and the header's contract is an open
    // descriptor the caller keeps open for the duration of the call; the borrow ends with it.
    // Nothing here closes it.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    f(fd)
}

/// The strings a handle's last call returned: owned by the handle, valid until its next call
/// that returns strings (or its free).
#[derive(Debug, Default)]
pub(crate) struct Strings(Vec<CString>);

impl Strings {
    /// Forgets the previous call's strings.
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// Keeps `s` and returns it for C (a `CString`'s buffer does not move when the list grows).
    pub(crate) fn keep(&mut self, s: &str) -> *const c_char {
        let c = c_string(s);
        let p = c.as_ptr();
        self.0.push(c);
        p
    }

    /// [`Strings::keep`], or NULL for `None`.
    pub(crate) fn keep_opt(&mut self, s: Option<&str>) -> *const c_char {
        s.map_or(std::ptr::null(), |s| self.keep(s))
    }
}
