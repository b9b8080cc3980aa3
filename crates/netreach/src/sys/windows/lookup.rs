//! Route lookups on Windows: `GetBestRoute2` (destination, source address and interface
//! honoured), and where it fails or is a stub (Wine answers `ERROR_NOT_SUPPORTED`), the core's
//! longest-prefix match over the model's routes
//! ([`netreach_core::reach::lookup_in_model`]). Every answer says which of the two it came from
//! ([`LookupSource`]).
//!
//! How Windows' answers become the rules' terms:
//!
//! | `GetBestRoute2` | answer |
//! | --- | --- |
//! | `NO_ERROR` | the row, checked as a table row is (its LUID parsed, and the index Windows has for that LUID must be the row's and in the model) |
//! | `ERROR_NETWORK_UNREACHABLE`, `ERROR_NOT_FOUND` | no route ([`NO_ROUTE`]), from the system |
//! | `ERROR_HOST_UNREACHABLE` | an unreachable route ([`HOST_UNREACHABLE`]), from the system |
//! | anything else, or a row that fails the checks | the model's longest-prefix match |

use std::net::IpAddr;
use std::sync::Once;

use netreach_core::Snapshot;
use netreach_core::iphlp::{Luid, RowError};
use netreach_core::reach::{
    HOST_UNREACHABLE, InterfaceRef, LookupAnswer, LookupSource, NO_ROUTE, Reachability, RouteQuery,
    Target, evaluate, lookup_in_model, reason_for_errno,
};
use windows_sys::Win32::Foundation::{
    ERROR_HOST_UNREACHABLE, ERROR_NETWORK_UNREACHABLE, ERROR_NOT_FOUND,
};

use super::iphlp;
use crate::Error;

/// Warned once per process that `GetBestRoute2` cannot answer.
static NO_BEST_ROUTE: Once = Once::new();

/// One lookup, and where its answer came from. Also returns the source address Windows would
/// use, when it answered.
pub(crate) fn lookup(query: &RouteQuery, snap: &Snapshot) -> (LookupAnswer, LookupSource) {
    let (answer, source, _) = lookup_with_source(query, snap);
    (answer, source)
}

fn lookup_with_source(
    query: &RouteQuery,
    snap: &Snapshot,
) -> (LookupAnswer, LookupSource, Option<IpAddr>) {
    match iphlp::best_route(query.remote, query.local, query.interface) {
        Ok(best) => {
            match netreach_core::iphlp::route(&best.row, &|luid, index| owner(luid, index, snap)) {
                Ok(route) => (Ok(route), LookupSource::System, best.source),
                Err(e) => {
                    tracing::debug!(error = %e, "GetBestRoute2 answered a row that fails the checks; using the model's routes");
                    (lookup_in_model(query, snap), LookupSource::Model, None)
                }
            }
        }
        Err(f) if f.code == ERROR_NETWORK_UNREACHABLE || f.code == ERROR_NOT_FOUND => {
            (Err(NO_ROUTE), LookupSource::System, None)
        }
        Err(f) if f.code == ERROR_HOST_UNREACHABLE => {
            (Err(HOST_UNREACHABLE), LookupSource::System, None)
        }
        Err(f) => {
            NO_BEST_ROUTE.call_once(|| {
                tracing::warn!(
                    error = %f.io(),
                    "GetBestRoute2 cannot look routes up here; reachability comes from a \
                     longest-prefix match over the model's routes (docs/windows.md)"
                );
            });
            (lookup_in_model(query, snap), LookupSource::Model, None)
        }
    }
}

/// The interface of a best route: its LUID parsed, the index Windows has for that LUID the
/// row's own, and in the model.
fn owner(luid: u64, index: u32, snap: &Snapshot) -> Result<u32, RowError> {
    let parsed = Luid::parse(luid)?;
    let expected = iphlp::luid_to_index(parsed.value()).map_err(|_| RowError::UnknownLuid(luid))?;
    if expected != index {
        return Err(RowError::IndexMismatch {
            luid,
            expected,
            index,
        });
    }
    if snap.interface(index).is_none() {
        return Err(RowError::UnknownLuid(luid));
    }
    Ok(index)
}

/// One-shot: `target` judged now, and where the route came from.
pub(crate) fn check(target: &Target, snap: &Snapshot) -> (Reachability, LookupSource) {
    let (answer, source) = lookup(target.query(), snap);
    (evaluate(target.query(), &answer, snap), source)
}

/// A target to `remote` from the source Windows would choose (out of `interface`, if given);
/// where Windows cannot say, a usable address of the model's route's interface.
pub(crate) fn source_target(
    snap: &Snapshot,
    remote: IpAddr,
    interface: Option<InterfaceRef>,
) -> Result<Target, Error> {
    let probe = RouteQuery::for_source(remote, interface.as_ref(), snap)?;
    let remote = probe.remote;
    let (answer, _, chosen) = lookup_with_source(&probe, snap);
    let route = answer.map_err(|errno| Error::NoSource {
        remote,
        reason: reason_for_errno(errno, &probe, snap),
    })?;
    crate::connection::target_from_source(snap, &probe, &route, chosen, interface)
}
