//! Operating-system backends behind one small contract, chosen once here with `cfg`, like mio's
//! `sys` module.
//!
//! A backend feeds the machine: it waits for news, reads kernel updates (or, when it polls, whole
//! states), dumps the state or one interface's routes, looks routes up, and reads medium hints.
//! The driver ([`crate::driver`]) is written against [`Backend`] alone.
//!
//! - `linux`: rtnetlink. [`BackendKind::Netlink`] subscribes to the kernel's notifications;
//!   [`BackendKind::Polling`] uses the same dump code on an interval without subscribing (for
//!   sandboxes where rtnetlink multicast is refused).
//! - `windows`: IP Helper. [`BackendKind::Netlink`] (the system's notifications) registers
//!   `NotifyIpInterfaceChange`, `NotifyUnicastIpAddressChange` and `NotifyRouteChange2`, whose
//!   callbacks only wake the driver, which reads the tables again; where a registration fails
//!   or gives no handle (Wine) it polls instead, and says so once. See `docs/windows.md`.
//! - `unsupported` (every other system): compiles, and every constructor returns
//!   [`crate::Error::Unsupported`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use netreach_core::machine::LookupFailure;
use netreach_core::reach::{LookupAnswer, RouteQuery};
use netreach_core::{Family, Medium, Route, Snapshot, Update};

use crate::Error;
use crate::monitor::Counters;

#[cfg(target_os = "linux")]
pub(crate) mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux as imp;

#[cfg(windows)]
pub(crate) mod windows;
#[cfg(windows)]
pub(crate) use windows as imp;

#[cfg(not(any(target_os = "linux", windows)))]
pub(crate) mod unsupported;
#[cfg(not(any(target_os = "linux", windows)))]
pub(crate) use unsupported as imp;

pub(crate) use imp::Waker;

/// How a monitor learns of changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BackendKind {
    /// The kernel's change notifications (rtnetlink on Linux; IP Helper's `Notify*Change` on
    /// Windows): every change the moment it happens, and no work at all while nothing changes.
    ///
    /// # Platform specific behavior
    ///
    /// On Windows, where a notification cannot be registered or comes back without a handle
    /// (Wine's are stubs), the monitor polls every [`BackendKind::DEFAULT_POLL_INTERVAL`]
    /// instead and logs that once (`tracing` warning).
    #[default]
    Netlink,
    /// A full dump every `interval`, compared with the last: for platforms and sandboxes
    /// where notifications are not available. A change takes up to one interval to be seen;
    /// nothing is missed or reported twice.
    Polling {
        /// Time between two dumps.
        interval: Duration,
    },
}

impl BackendKind {
    /// The default polling interval (2 s).
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

    /// The name used on the command line (`netlink`, `polling`).
    pub fn name(&self) -> &'static str {
        match self {
            BackendKind::Netlink => "netlink",
            BackendKind::Polling { .. } => "polling",
        }
    }
}

/// What one read gave.
// The unsupported backend never opens, so it makes none of these.
#[cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))]
// Returned once per read and consumed at once: the size of the polling variant does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Read {
    /// Everything queued was read.
    Drained,
    /// `max` updates were read; more are queued.
    // Windows' backend reads whole states: it makes neither of these two.
    #[cfg_attr(windows, allow(dead_code))]
    More,
    /// Notifications were lost: the state must be dumped again.
    #[cfg_attr(windows, allow(dead_code))]
    Overflow,
    /// A polling backend's new full state.
    State(Snapshot),
}

/// The contract between the driver and an operating system.
pub(crate) trait Backend: Send {
    /// Sleeps until the backend may have news, `waker` was woken, or `deadline` passed
    /// (`None`: no deadline). Spurious returns are fine.
    fn wait(&mut self, waker: &Waker, deadline: Option<Instant>) -> Result<(), Error>;

    /// Reads what is there without blocking, appending at most `max` updates to `out`.
    fn read(
        &mut self,
        out: &mut Vec<Update>,
        max: usize,
        counters: &Counters,
    ) -> Result<Read, Error>;

    /// The whole state.
    fn dump(&mut self) -> Result<Snapshot, Error>;

    /// The routes of `family`, through `interface` only when given.
    fn dump_routes(&mut self, family: Family, interface: Option<u32>) -> Result<Vec<Route>, Error>;

    /// Looks every query up; `out` gets one answer per query, in order.
    fn lookup_routes(
        &mut self,
        queries: &[RouteQuery],
        out: &mut Vec<Result<LookupAnswer, LookupFailure>>,
    );

    /// What the system says about the medium of interface `name`, where it can tell for the
    /// namespace watched.
    fn medium_hint(&self, name: &str) -> Option<Medium>;

    /// Whether [`Backend::medium_hint`] can say anything.
    fn has_medium_hints(&self) -> bool;

    /// The receive buffer in bytes, where there is one.
    fn rcvbuf(&self) -> usize {
        0
    }

    /// How it learns of changes, when that is not what was asked for (Windows falls back to
    /// polling where notifications cannot be had).
    fn kind(&self) -> Option<BackendKind> {
        None
    }

    /// Where the system's own connectivity opinion is kept current, where it has one (Windows'
    /// Network List Manager).
    fn system_hint(&self) -> Option<HintCell> {
        None
    }
}

/// The system's connectivity opinion, kept current by a thread of the backend's, read by the
/// monitor's handles ([`crate::Monitor::system_hint`]).
pub(crate) type HintCell = Arc<std::sync::Mutex<Option<netreach_core::nlm::SystemHint>>>;

/// Test hook: called after each part of a dump is read, with what is dumped (`"link"`,
/// `"address"`, `"route"`, `"rule"`) and the attempt (0 first, more when the kernel flagged an
/// earlier one interrupted). See `MonitorBuilder::__dump_hook_for_test`.
pub(crate) type DumpHook = Arc<dyn Fn(&'static str, u32) + Send + Sync>;

/// Opens a backend in `netns` and reads the first state. Subscribes before dumping, so that no
/// change is lost in between.
pub(crate) fn open(
    kind: BackendKind,
    netns: &crate::Netns,
    rcvbuf: usize,
    hook: Option<DumpHook>,
) -> Result<(Box<dyn Backend>, Snapshot), Error> {
    imp::open(kind, netns, rcvbuf, hook)
}
