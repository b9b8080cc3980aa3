//! The boundary's promises, called the way C calls them: NULL pointers, dead and mistyped
//! handles, double frees, bad input that changes nothing, panics caught. The live behaviour
//! (events in a namespace, the C and Qt programs) is in `tests/programs.rs`.

use std::ffi::{CStr, c_char};
use std::ptr::{null, null_mut};

use crate::boundary::{Failure, guard};
use crate::*;

fn last_error() -> String {
    // SAFETY (test): the function returns a NUL-terminated string valid until the next
    // failing call on this thread.
    unsafe { CStr::from_ptr(netreach_last_error()) }
        .to_str()
        .unwrap()
        .to_owned()
}

/// A namespace of the test's own with only `lo` up, deleted on drop: the monitors here read
/// it, not the namespace the suite runs in.
struct TestNs(std::ffi::CString);

impl TestNs {
    fn new() -> TestNs {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("nrt-ffi-{}-{n}", std::process::id());
        for args in [
            vec!["netns", "add", &name],
            vec!["-n", &name, "link", "set", "lo", "up"],
        ] {
            let ok = std::process::Command::new("ip")
                .args(&args)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "ip {} (the tests run as root)", args.join(" "));
        }
        TestNs(std::ffi::CString::new(name).unwrap())
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", self.0.to_str().unwrap()])
            .status();
    }
}

/// A monitor of a new namespace of the test's own (kept alive by the returned guard).
fn monitor() -> (*mut netreach_monitor, TestNs) {
    let ns = TestNs::new();
    let mut m = null_mut();
    assert_eq!(
        netreach_monitor_new(ns.0.as_ptr(), &mut m),
        netreach_result::Ok,
        "{}",
        last_error()
    );
    assert!(!m.is_null());
    (m, ns)
}

#[test]
fn a_panic_is_caught_and_becomes_a_code_with_its_message() {
    let r = guard(|| panic!("boom in a test"));
    assert_eq!(r, netreach_result::Panic);
    assert!(last_error().contains("boom in a test"), "{}", last_error());
    let r = guard(|| Err(Failure::new(netreach_result::System, "plain failure")));
    assert_eq!(r, netreach_result::System);
    assert_eq!(last_error(), "plain failure");
}

#[test]
fn null_pointers_are_refused_with_a_message() {
    use netreach_result::NullParameter;
    assert_eq!(netreach_monitor_new(null(), null_mut()), NullParameter);
    assert_eq!(last_error(), "out is NULL");
    assert_eq!(
        netreach_status_monitor_new(null(), null_mut()),
        NullParameter
    );
    let mut s = null_mut();
    assert_eq!(netreach_status_monitor_new(null(), &mut s), NullParameter);
    assert_eq!(last_error(), "monitor is NULL");
    assert!(s.is_null(), "a failed call writes nothing");
    let mut c = null_mut();
    assert_eq!(
        netreach_connection_monitor_new(null(), &mut c),
        NullParameter
    );
    let mut fd = -1;
    assert_eq!(netreach_status_monitor_fd(null(), &mut fd), NullParameter);
    assert_eq!(
        netreach_connection_monitor_fd(null(), &mut fd),
        NullParameter
    );
    assert_eq!(fd, -1);
    assert_eq!(
        netreach_status_monitor_status(null(), null_mut()),
        NullParameter
    );
    assert_eq!(
        netreach_status_monitor_next_event(null(), null_mut()),
        NullParameter
    );
    assert_eq!(
        netreach_connection_monitor_next_event(null(), null_mut()),
        NullParameter
    );
    let mut id = 0;
    assert_eq!(
        netreach_connection_monitor_add_target(null(), null(), null(), null(), &mut id),
        NullParameter
    );
    assert_eq!(
        netreach_connection_monitor_remove_target(null(), 1),
        NullParameter
    );
    // NULL frees are no-ops, like free(NULL).
    assert_eq!(netreach_monitor_free(null_mut()), netreach_result::Ok);
    assert_eq!(
        netreach_status_monitor_free(null_mut()),
        netreach_result::Ok
    );
    assert_eq!(
        netreach_connection_monitor_free(null_mut()),
        netreach_result::Ok
    );

    let (m, _ns) = monitor();
    let mut c = null_mut();
    assert_eq!(
        netreach_connection_monitor_new(m, &mut c),
        netreach_result::Ok
    );
    let l = c"127.0.0.1".as_ptr();
    for (local, remote, out) in [
        (null(), l, &mut id as *mut u64),
        (l, null(), &mut id),
        (l, l, null_mut()),
    ] {
        assert_eq!(
            netreach_connection_monitor_add_target(c, local, remote, null(), out),
            NullParameter
        );
    }
    assert_eq!(netreach_connection_monitor_free(c), netreach_result::Ok);
    assert_eq!(netreach_monitor_free(m), netreach_result::Ok);
}

#[test]
fn freed_forged_and_mistyped_handles_are_refused_and_double_frees_guarded() {
    use netreach_result::{InvalidHandle, Ok};
    let (m, _ns) = monitor();
    let mut s = null_mut();
    assert_eq!(netreach_status_monitor_new(m, &mut s), Ok);
    // A status handle is no connection handle, and a monitor no status monitor.
    let as_conn = s.cast::<netreach_connection_monitor>();
    assert_eq!(netreach_connection_monitor_free(as_conn), InvalidHandle);
    assert_eq!(netreach_status_monitor_free(m.cast()), InvalidHandle);
    let forged = std::ptr::without_provenance_mut::<netreach_monitor>(0xdead0);
    let mut c = null_mut();
    assert_eq!(
        netreach_connection_monitor_new(forged, &mut c),
        InvalidHandle
    );
    assert!(
        last_error().contains("not a live handle"),
        "{}",
        last_error()
    );
    // The status monitor outlives the monitor handle it was made from.
    assert_eq!(netreach_monitor_free(m), Ok);
    assert_eq!(netreach_monitor_free(m), InvalidHandle);
    let mut st = std::mem::MaybeUninit::<netreach_status>::uninit();
    assert_eq!(netreach_status_monitor_status(s, st.as_mut_ptr()), Ok);
    assert_eq!(netreach_status_monitor_free(s), Ok);
    assert_eq!(netreach_status_monitor_free(s), InvalidHandle);
    assert_eq!(
        netreach_status_monitor_status(s, st.as_mut_ptr()),
        InvalidHandle
    );
    let mut fd = 0;
    assert_eq!(netreach_status_monitor_fd(s, &mut fd), InvalidHandle);
}

/// `add_target` with these arguments fails with `want` and watches nothing.
fn refused(
    c: *mut netreach_connection_monitor,
    args: (&CStr, &CStr, Option<&CStr>),
    want: netreach_result,
) {
    let mut id = 12345;
    let iface: *const c_char = args.2.map_or(null(), CStr::as_ptr);
    let r =
        netreach_connection_monitor_add_target(c, args.0.as_ptr(), args.1.as_ptr(), iface, &mut id);
    assert_eq!(r, want, "{args:?}: {}", last_error());
    assert_eq!(id, 12345, "{args:?}: a failed call writes nothing");
    let mut len = 99;
    assert_eq!(
        netreach_connection_monitor_len(c, &mut len),
        netreach_result::Ok
    );
    assert_eq!(len, 0, "{args:?}: a failed call watches nothing");
}

#[test]
fn bad_targets_return_their_code_and_change_nothing() {
    use netreach_result::*;
    let (m, _ns) = monitor();
    let mut c = null_mut();
    assert_eq!(netreach_connection_monitor_new(m, &mut c), Ok);
    refused(c, (c"198.18.0.300", c"127.0.0.1", None), InvalidAddress);
    assert!(last_error().contains("198.18.0.300"), "{}", last_error());
    refused(c, (c"", c"127.0.0.1", None), InvalidAddress);
    refused(c, (c"0.0.0.0", c"127.0.0.1", None), UnspecifiedLocal);
    refused(c, (c"127.0.0.1", c"::1", None), FamilyMismatch);
    refused(c, (c"127.0.0.1", c"0.0.0.0", None), UnspecifiedRemote);
    refused(c, (c"::1", c"127.0.0.1", None), FamilyMismatch);
    refused(c, (c"127.0.0.1", c"224.0.0.1", None), NotUnicastRemote);
    refused(c, (c"198.18.99.99", c"127.0.0.1", None), LocalNotAssigned);
    refused(
        c,
        (c"127.0.0.1", c"127.0.0.1", Some(c"nrt-no-such0")),
        UnknownInterface,
    );
    refused(
        c,
        (c"127.0.0.1", c"127.0.0.1", Some(c"999999")),
        UnknownInterface,
    );
    refused(
        c,
        (c"127.0.0.1%nrt-no-such0", c"127.0.0.1", None),
        UnknownInterface,
    );
    let bad_utf8 = c"\xff\xfe";
    refused(c, (bad_utf8, c"127.0.0.1", None), InvalidArgument);
    assert_eq!(
        netreach_connection_monitor_remove_target(c, 7),
        UnknownTarget
    );
    let mut r = std::mem::MaybeUninit::<netreach_reachability>::uninit();
    assert_eq!(
        netreach_connection_monitor_reachability(c, 7, 0, r.as_mut_ptr()),
        UnknownTarget
    );
    let mut id = 0;
    assert_eq!(
        netreach_connection_monitor_add_socket(c, -1, &mut id),
        InvalidArgument
    );
    // Standard input is no socket.
    assert_eq!(
        netreach_connection_monitor_add_socket(c, 0, &mut id),
        NotConnected
    );

    // A good one: loopback to itself is reachable through lo.
    assert_eq!(
        netreach_connection_monitor_add_target(
            c,
            c"127.0.0.1".as_ptr(),
            c"127.0.0.1".as_ptr(),
            null(),
            &mut id
        ),
        Ok,
        "{}",
        last_error()
    );
    assert_eq!(
        netreach_connection_monitor_reachability(c, id, 20_000, r.as_mut_ptr()),
        Ok
    );
    // SAFETY (test): written by the successful call.
    let r = unsafe { r.assume_init() };
    assert_eq!(r.state, netreach_state::Reachable);
    // SAFETY (test): a reachable verdict has an interface name, kept by the handle.
    let name = unsafe { CStr::from_ptr(r.interface_name) };
    assert_eq!(name, c"lo");
    assert_eq!(netreach_connection_monitor_remove_target(c, id), Ok);
    assert_eq!(
        netreach_connection_monitor_remove_target(c, id),
        UnknownTarget
    );
    assert_eq!(netreach_connection_monitor_free(c), Ok);
    assert_eq!(netreach_monitor_free(m), Ok);
}

#[test]
fn bad_namespaces_and_arguments_start_nothing() {
    use netreach_result::*;
    let mut m = null_mut();
    assert_eq!(
        netreach_monitor_new(c"nrt-ffi-no-such-ns".as_ptr(), &mut m),
        NamespaceNotFound
    );
    assert!(m.is_null());
    assert!(
        last_error().contains("nrt-ffi-no-such-ns"),
        "{}",
        last_error()
    );
    assert_eq!(
        netreach_monitor_new(c"a/b".as_ptr(), &mut m),
        InvalidNamespace
    );
    assert_eq!(
        netreach_monitor_new(c"..".as_ptr(), &mut m),
        InvalidNamespace
    );
    assert_eq!(
        netreach_monitor_new(c"/dev/null".as_ptr(), &mut m),
        NotANamespace
    );
    assert_eq!(
        netreach_monitor_new_polling(null(), 0, &mut m),
        InvalidArgument
    );
    assert!(m.is_null());
    let (m, _ns) = monitor();
    let mut s = null_mut();
    let url = c"gopher://example.invalid/".as_ptr();
    assert_eq!(
        netreach_status_monitor_new_probing(m, url, 1000, &mut s),
        InvalidArgument
    );
    let url = c"http://198.18.0.1/generate_204".as_ptr();
    assert_eq!(
        netreach_status_monitor_new_probing(m, url, 0, &mut s),
        InvalidArgument
    );
    assert!(s.is_null());
    assert_eq!(netreach_monitor_free(m), Ok);
}

#[test]
fn a_concurrent_call_on_one_handle_is_busy() {
    let h = std::sync::Mutex::new(());
    let held = h.lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let r = guard(|| crate::handle::lock(&h, "status monitor").map(drop));
            assert_eq!(r, netreach_result::Busy);
        });
    });
    drop(held);
    assert!(crate::handle::lock(&h, "status monitor").is_ok());
}

#[test]
fn the_descriptor_is_readable_while_events_may_be_pending() {
    use netreach_result::*;
    let (m, _ns) = monitor();
    let mut s = null_mut();
    assert_eq!(netreach_status_monitor_new(m, &mut s), Ok);
    let mut fd = -1;
    assert_eq!(netreach_status_monitor_fd(s, &mut fd), Ok);
    let readable = |fd: i32| {
        // SAFETY (test): the handle owns the descriptor and is alive here.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let mut p = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        rustix::event::poll(&mut p, Some(&rustix::event::Timespec::default())).unwrap() == 1
    };
    assert!(readable(fd), "the first state is pending at once");
    let mut ev = std::mem::MaybeUninit::<netreach_status_event>::uninit();
    // The first state is for `_status`; with no change, nothing is pending after it.
    assert_eq!(
        netreach_status_monitor_next_event(s, ev.as_mut_ptr()),
        NoEvent
    );
    assert!(!readable(fd), "cleared once nothing is pending");
    assert_eq!(netreach_status_monitor_free(s), Ok);
    assert_eq!(netreach_monitor_free(m), Ok);
    let _ = crate::handle::live();
}
