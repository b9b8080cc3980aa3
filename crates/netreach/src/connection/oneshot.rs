//! One-shot lookups from the caller's thread, on a request socket of their own: the source
//! address the kernel would choose for a remote (`ip route get REMOTE`), and one target's
//! reachability now. The watched targets' lookups run on the monitor's thread instead.

use std::net::IpAddr;

use netreach_core::Snapshot;
use netreach_core::reach::{
    InterfaceRef, LookupAnswer, RouteQuery, Target, parse_route_lookup_answer, reason_for_errno,
    route_lookup_request,
};

use crate::Error;
use crate::sys::imp::netlink::{NlSocket, RECV_BUF};

/// A target to `remote` from the source the kernel selects (out of `interface`, if given).
/// See [`crate::ConnectionMonitor::target_for`].
pub(super) fn source_target(
    sock: &mut NlSocket,
    snap: &Snapshot,
    remote: IpAddr,
    interface: Option<InterfaceRef>,
) -> Result<Target, Error> {
    let probe = RouteQuery::for_source(remote, interface.as_ref(), snap)?;
    let remote = probe.remote;
    // A plain lookup (no RTM_F_FIB_MATCH): the answer's preferred source is the address the
    // kernel selected for this destination (IPv4 names it because it differs from the
    // unspecified one asked with).
    let route = match lookup(sock, &probe, false)? {
        Ok(route) => route,
        Err(errno) => {
            return Err(Error::NoSource {
                remote,
                reason: reason_for_errno(errno, &probe, snap),
            });
        }
    };
    super::target_from_source(snap, &probe, &route, None, interface)
}

/// One route lookup on `sock`, with or without `RTM_F_FIB_MATCH`.
pub(super) fn lookup(
    sock: &mut NlSocket,
    query: &RouteQuery,
    fib_match: bool,
) -> Result<LookupAnswer, Error> {
    let seq = sock.next_seq();
    sock.send_bytes(&route_lookup_request(seq, query, fib_match))?;
    let mut buf = vec![0; RECV_BUF];
    loop {
        let n = sock.recv_answer(&mut buf)?;
        if let Some(a) = parse_route_lookup_answer(&buf[..n], seq) {
            return Ok(a);
        }
    }
}

/// One-shot: `target` judged now, from one lookup with `RTM_F_FIB_MATCH`.
pub(super) fn check(
    sock: &mut NlSocket,
    target: &Target,
    snap: &Snapshot,
) -> Result<netreach_core::reach::Reachability, Error> {
    let answer = lookup(sock, target.query(), true)?;
    Ok(netreach_core::reach::evaluate(
        target.query(),
        &answer,
        snap,
    ))
}
