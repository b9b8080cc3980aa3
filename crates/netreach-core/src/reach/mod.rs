//! Reachability of connections: netreach's answer to Qt's `QNetworkConnectionMonitor`. Pure
//! rules and a sans-IO state machine; no sockets, clocks, threads, async or `unsafe`.
//!
//! A connection is a [`Target`]: a local address of this host and a remote address, optionally
//! with the interface the connection is bound to. It is **reachable** when the kernel's own route
//! lookup for the remote (destination, source and output interface, so policy routing is
//! honoured) gives a `unicast` route whose output interface is up, has carrier and is not
//! flagged `linkdown`, or a `local` route (a loopback remote or an own address) while the
//! loopback interface is up; and the local address is still assigned, usable, and on the path's
//! interface. Otherwise it is **unreachable**, and the [`Reason`] says why, as data.
//! `docs/reachability.md` states the rules in full, with what the kernel answers.
//!
//! # The parts
//!
//! - [`Target`] and [`TargetError`]: parse, don't validate. A target that exists has a
//!   specified local address of this host and a unicast remote of the same family.
//! - [`evaluate`]: the rules, a pure function of a [`RouteQuery`], the kernel's
//!   [`LookupAnswer`] and a [`Snapshot`](crate::Snapshot). The one-shot "can I reach it?".
//! - [`ConnectionTracker`]: keeps thousands of targets current. It asks for route lookups as
//!   [`Action`]s, takes the answers in [`ConnectionTracker::handle_lookup`], and reports
//!   [`ReachabilityChange`]s. After a model change it looks only at the targets the change can
//!   affect, found through indexes by interface, local address and remote prefix.
//! - [`lookup_in_model`] and [`LookupSource`]: the longest-prefix match over the model's own
//!   routes that a backend falls back to where the system cannot look a route up (Wine), and
//!   the tag that says which of the two answered.
//! - [`route_lookup_request`] and [`parse_route_lookup_answer`]: the `RTM_GETROUTE` wire
//!   format, pure functions over bytes for the glue that owns the socket (Linux only).
//!
//! # Example: one lookup, by hand
//!
//! ```
//! # #[cfg(target_os = "linux")]
//! # fn main() -> Result<(), netreach_core::reach::TargetError> {
//! use netreach_core::reach::{
//!     evaluate, parse_route_lookup_answer, route_lookup_request, Reachability, Reason, Target,
//! };
//! use netreach_core::{Address, AddressFlags, Interface, LinkKind, Scope, Snapshot};
//!
//! let mut eth = Interface::new(2, "eth0", LinkKind::Ethernet);
//! eth.admin_up = true;
//! eth.carrier = true;
//! let addr = Address {
//!     interface: 2,
//!     address: "198.18.0.2".parse().unwrap(),
//!     prefix_len: 24,
//!     scope: Scope::Global,
//!     flags: AddressFlags::empty(),
//! };
//! let snap = Snapshot::from_parts([eth], [addr], []);
//! let target = Target::new(
//!     "198.18.0.2".parse().unwrap(),
//!     "198.18.10.1".parse().unwrap(),
//!     None,
//!     &snap,
//! )?;
//!
//! // The glue sends this on a NETLINK_ROUTE socket ...
//! let request = route_lookup_request(1, target.query(), true);
//! # let _ = request;
//! // ... and the kernel answers "No route to host" (an `unreachable` route covers 198.18.10.1).
//! let datagram = [
//!     36, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr: NLMSG_ERROR, seq 1
//!     143, 255, 255, 255, // -EHOSTUNREACH
//!     16, 0, 0, 0, 26, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, // the request's header
//! ];
//! let answer = parse_route_lookup_answer(&datagram, 1).unwrap();
//! let verdict = evaluate(target.query(), &answer, &snap);
//! assert!(matches!(verdict, Reachability::Unreachable(Reason::RouteType(_))));
//! assert_eq!(
//!     verdict.to_string(),
//!     "unreachable: an unreachable route covers the remote address"
//! );
//! # Ok(())
//! # }
//! # #[cfg(not(target_os = "linux"))]
//! # fn main() {}
//! ```
//!
//! For many targets kept current, see [`ConnectionTracker`] and the order in which to call it.
//!
//! # What the rules do not see
//!
//! - Policy rules that select by firewall mark or user id: the lookup carries neither, so a
//!   connection whose socket sets `SO_MARK` (as WireGuard's does) is judged as if unmarked, and
//!   `uidrange` rules apply with the glue's own user id.
//! - Which hop of a multipath route the kernel's hash picks: the rules take the usable hop on
//!   the local address's interface, else the first usable hop.
//! - Whether the peer answers: reachability is about this host's side of the path. Whether
//!   the gateway resolves (ARP/NDP) or the peer is alive is for probes.
//!
//! # Platform specific behavior
//!
//! The rules read Linux's answers to `RTM_GETROUTE` (errno values per route type, the
//! `linkdown` flag, `RTM_F_FIB_MATCH`), as observed on Linux 6.18 and kept as fixtures in
//! `tests/fixtures/route-lookup/`. Errno values are the target's (`libc`): on Linux those of
//! its architecture (`EHOSTUNREACH` is 113 on x86 and Arm, 148 on MIPS); elsewhere the
//! platform's own (on Windows the C runtime's `errno.h`), for a backend there to map its
//! failures to.
//!
//! The wire format ([`route_lookup_request`], [`parse_route_lookup_answer`]) exists on Linux
//! only, as does [`crate::decode`]; the rules, the targets and the tracker build everywhere.

mod evaluate;
mod index;
mod model_lookup;
mod pending;
mod slots;
mod target;
mod tracker;
mod verdict;
#[cfg(target_os = "linux")]
mod wire;

#[cfg(test)]
mod rules_tests;
#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tracker_tests;

pub use evaluate::{Errno, LookupAnswer, evaluate, reason_for_errno};
pub use model_lookup::{HOST_UNREACHABLE, LookupSource, NO_ROUTE, lookup_in_model};
pub use target::{InterfaceRef, RouteQuery, Target, TargetError};
pub use tracker::{Action, ConnectionTracker, LookupId, ReachabilityChange, TargetId};
pub use verdict::{NamedInterface, Path, Reachability, Reason};
#[cfg(target_os = "linux")]
pub use wire::{parse_route_lookup_answer, route_lookup_request};
