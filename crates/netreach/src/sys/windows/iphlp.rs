//! The IP Helper calls, and every `unsafe` block of the Windows backend but the COM ones
//! (`nlm.rs`): the three tables copied into the core's plain rows
//! ([`netreach_core::iphlp`]), the change notifications as an RAII registration whose callbacks
//! only wake the driver, `GetBestRoute2`, and `ConvertInterfaceLuidToIndex`.
//!
//! Nothing Windows hands back is trusted: a table's `NumEntries` is read through the pointer
//! Windows gave and the rows are copied out before `FreeMibTable`; a row's LUID and index are
//! checked by the core's translation, a best route's LUID against its index by Windows itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use netreach_core::iphlp::{AddrRow, IfRow, RouteRow};
use windows_sys::Win32::Foundation::{HANDLE, NO_ERROR, WIN32_ERROR};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    CancelMibChangeNotify2, ConvertInterfaceLuidToIndex, FreeMibTable, GetBestRoute2, GetIfTable2,
    GetIpForwardTable2, GetUnicastIpAddressTable, MIB_IF_ROW2, MIB_IF_TABLE2, MIB_IPFORWARD_ROW2,
    MIB_IPFORWARD_TABLE2, MIB_IPINTERFACE_ROW, MIB_NOTIFICATION_TYPE, MIB_UNICASTIPADDRESS_ROW,
    MIB_UNICASTIPADDRESS_TABLE, NotifyIpInterfaceChange, NotifyRouteChange2,
    NotifyUnicastIpAddressChange,
};
use windows_sys::Win32::NetworkManagement::Ndis::NET_LUID_LH;
use windows_sys::Win32::Networking::WinSock::{
    AF_INET, AF_INET6, AF_UNSPEC, SOCKADDR_IN, SOCKADDR_IN6, SOCKADDR_INET,
};

use super::wake::Changes;

/// `IpSuffixOriginRandom`: a temporary (privacy) IPv6 address.
const SUFFIX_ORIGIN_RANDOM: i32 = 4;

/// A failed IP Helper call: which, and the `WIN32_ERROR` it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallFailed {
    pub(crate) call: &'static str,
    pub(crate) code: WIN32_ERROR,
}

impl CallFailed {
    fn check(call: &'static str, code: WIN32_ERROR) -> Result<(), CallFailed> {
        if code == NO_ERROR {
            Ok(())
        } else {
            Err(CallFailed { call, code })
        }
    }

    /// As an `io::Error` (Windows' own message for the code).
    pub(crate) fn io(self) -> std::io::Error {
        std::io::Error::from_raw_os_error(self.code as i32)
    }
}

/// Copies the rows of a MIB table out and frees it. `T` is the table, `R` its row type.
///
/// # Safety
///
/// `table` must be a pointer a successful `Get*Table*` call returned for a table whose layout is
/// `{ NumEntries: u32, Table: [R; 1] }` (as `MIB_IF_TABLE2`, `MIB_UNICASTIPADDRESS_TABLE` and
/// `MIB_IPFORWARD_TABLE2` are), not yet freed.
unsafe fn copy_rows<T, R: Copy>(table: *mut T, entries: impl Fn(&T) -> (u32, *const R)) -> Vec<R> {
    if table.is_null() {
        return Vec::new();
    }
    // SAFETY: the caller guarantees `table` is a live table of this type; its `NumEntries`
    // rows follow contiguously from `Table`, as the IP Helper documentation states.
    let rows = unsafe {
        let (n, first) = entries(&*table);
        std::slice::from_raw_parts(first, n as usize).to_vec()
    };
    // SAFETY: the table came from IP Helper and is freed once, after the copy.
    unsafe { FreeMibTable(table.cast()) };
    rows
}

/// `GetIfTable2`: every interface.
pub(crate) fn interfaces() -> Result<Vec<IfRow>, CallFailed> {
    let mut table: *mut MIB_IF_TABLE2 = std::ptr::null_mut();
    // SAFETY: `table` is a valid out-pointer; on success it holds a table we free below.
    CallFailed::check("GetIfTable2", unsafe { GetIfTable2(&mut table) })?;
    // SAFETY: a table GetIfTable2 returned, freed only here.
    let rows = unsafe { copy_rows(table, |t: &MIB_IF_TABLE2| (t.NumEntries, t.Table.as_ptr())) };
    Ok(rows.iter().map(if_row).collect())
}

/// `GetUnicastIpAddressTable(AF_UNSPEC)`: every unicast address of both families.
pub(crate) fn addresses() -> Result<Vec<AddrRow>, CallFailed> {
    let mut table: *mut MIB_UNICASTIPADDRESS_TABLE = std::ptr::null_mut();
    // SAFETY: as in `interfaces`.
    CallFailed::check("GetUnicastIpAddressTable", unsafe {
        GetUnicastIpAddressTable(AF_UNSPEC, &mut table)
    })?;
    // SAFETY: a table GetUnicastIpAddressTable returned, freed only here.
    let rows = unsafe {
        copy_rows(table, |t: &MIB_UNICASTIPADDRESS_TABLE| {
            (t.NumEntries, t.Table.as_ptr())
        })
    };
    Ok(rows.iter().filter_map(addr_row).collect())
}

/// `GetIpForwardTable2(AF_UNSPEC)`: every route of both families.
pub(crate) fn routes() -> Result<Vec<RouteRow>, CallFailed> {
    let mut table: *mut MIB_IPFORWARD_TABLE2 = std::ptr::null_mut();
    // SAFETY: as in `interfaces`.
    CallFailed::check("GetIpForwardTable2", unsafe {
        GetIpForwardTable2(AF_UNSPEC, &mut table)
    })?;
    // SAFETY: a table GetIpForwardTable2 returned, freed only here.
    let rows = unsafe {
        copy_rows(table, |t: &MIB_IPFORWARD_TABLE2| {
            (t.NumEntries, t.Table.as_ptr())
        })
    };
    Ok(rows.iter().filter_map(route_row).collect())
}

/// What `GetBestRoute2` answered: the route and the source address Windows would use.
pub(crate) struct BestRoute {
    pub(crate) row: RouteRow,
    pub(crate) source: Option<IpAddr>,
}

/// `GetBestRoute2` for `remote` from `local` (unspecified: Windows chooses), out of interface
/// `index` when given.
pub(crate) fn best_route(
    remote: IpAddr,
    local: IpAddr,
    index: Option<u32>,
) -> Result<BestRoute, CallFailed> {
    let dst = sockaddr(remote);
    let src = sockaddr(local);
    let mut row = MIB_IPFORWARD_ROW2::default();
    let mut best_source = SOCKADDR_INET::default();
    // SAFETY: every pointer is to a live local of the right type; the LUID pointer may be null
    // when an index is given (or neither, for any interface), as documented.
    let code = unsafe {
        GetBestRoute2(
            std::ptr::null(),
            index.unwrap_or(0),
            if local.is_unspecified() {
                std::ptr::null()
            } else {
                &src
            },
            &dst,
            0,
            &mut row,
            &mut best_source,
        )
    };
    CallFailed::check("GetBestRoute2", code)?;
    let row = route_row(&row).ok_or(CallFailed {
        call: "GetBestRoute2",
        code: windows_sys::Win32::Foundation::ERROR_INVALID_DATA,
    })?;
    Ok(BestRoute {
        row,
        source: ip(&best_source).filter(|a| !a.is_unspecified()),
    })
}

/// `ConvertInterfaceLuidToIndex`: the index Windows has for this LUID now.
pub(crate) fn luid_to_index(luid: u64) -> Result<u32, CallFailed> {
    let luid = NET_LUID_LH { Value: luid };
    let mut index = 0u32;
    // SAFETY: both pointers are to live locals of the right type.
    CallFailed::check("ConvertInterfaceLuidToIndex", unsafe {
        ConvertInterfaceLuidToIndex(&luid, &mut index)
    })?;
    Ok(index)
}

fn if_row(r: &MIB_IF_ROW2) -> IfRow {
    let alias_len = r
        .Alias
        .iter()
        .position(|c| *c == 0)
        .unwrap_or(r.Alias.len());
    let mac_len = (r.PhysicalAddressLength as usize).min(r.PhysicalAddress.len());
    IfRow {
        // SAFETY: every bit pattern of the union is a valid u64.
        luid: unsafe { r.InterfaceLuid.Value },
        index: r.InterfaceIndex,
        guid: (
            r.InterfaceGuid.data1,
            r.InterfaceGuid.data2,
            r.InterfaceGuid.data3,
            r.InterfaceGuid.data4,
        ),
        alias: String::from_utf16_lossy(&r.Alias[..alias_len]),
        if_type: r.Type,
        mtu: r.Mtu,
        mac: r.PhysicalAddress[..mac_len].to_vec(),
        oper_status: r.OperStatus,
        admin_status: r.AdminStatus,
        media_connect_state: r.MediaConnectState,
    }
}

fn addr_row(r: &MIB_UNICASTIPADDRESS_ROW) -> Option<AddrRow> {
    Some(AddrRow {
        // SAFETY: every bit pattern of the union is a valid u64.
        luid: unsafe { r.InterfaceLuid.Value },
        index: r.InterfaceIndex,
        address: ip(&r.Address)?,
        prefix_len: r.OnLinkPrefixLength,
        dad_state: r.DadState,
        temporary: r.SuffixOrigin == SUFFIX_ORIGIN_RANDOM,
    })
}

fn route_row(r: &MIB_IPFORWARD_ROW2) -> Option<RouteRow> {
    Some(RouteRow {
        // SAFETY: every bit pattern of the union is a valid u64.
        luid: unsafe { r.InterfaceLuid.Value },
        index: r.InterfaceIndex,
        destination: ip(&r.DestinationPrefix.Prefix)?,
        prefix_len: r.DestinationPrefix.PrefixLength,
        next_hop: ip(&r.NextHop)?,
        metric: r.Metric,
        protocol: r.Protocol,
        loopback: r.Loopback,
    })
}

/// The address in a `SOCKADDR_INET`; `None` for a family that is neither IPv4 nor IPv6.
fn ip(s: &SOCKADDR_INET) -> Option<IpAddr> {
    // SAFETY: `si_family` overlays the family field of both variants, so it is always
    // initialised; the variant read next is the one it names. Every bit pattern of the address
    // bytes is valid.
    unsafe {
        match s.si_family {
            AF_INET => Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                s.Ipv4.sin_addr.S_un.S_addr,
            )))),
            AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(s.Ipv6.sin6_addr.u.Byte))),
            _ => None,
        }
    }
}

fn sockaddr(addr: IpAddr) -> SOCKADDR_INET {
    let mut s = SOCKADDR_INET::default();
    match addr {
        IpAddr::V4(a) => {
            let mut v4 = SOCKADDR_IN {
                sin_family: AF_INET,
                ..Default::default()
            };
            v4.sin_addr.S_un.S_addr = u32::from(a).to_be();
            s.Ipv4 = v4;
        }
        IpAddr::V6(a) => {
            let mut v6 = SOCKADDR_IN6 {
                sin6_family: AF_INET6,
                ..Default::default()
            };
            v6.sin6_addr.u.Byte = a.octets();
            s.Ipv6 = v6;
        }
    }
    s
}

/// The three change notifications, registered; dropping this cancels them (and waits for a
/// callback in progress, as `CancelMibChangeNotify2` does) before the context they point to is
/// released.
pub(crate) struct Notifications {
    handles: Vec<HANDLE>,
    /// The callbacks' context: one strong count of `Changes`, leaked into a raw pointer while
    /// any registration may still call back.
    context: *const Changes,
}

// SAFETY: the handles are only used to cancel, which any thread may do; the context is an
// `Arc<Changes>`, which is Send and Sync.
unsafe impl Send for Notifications {}

/// Why the notifications could not be had: the call that failed, or the one that gave no handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotifyFailure {
    Failed(CallFailed),
    NoHandle(&'static str),
}

impl Notifications {
    /// Registers all three, or none (what was registered is cancelled on failure).
    pub(crate) fn register(changes: &Arc<Changes>) -> Result<Notifications, NotifyFailure> {
        let mut n = Notifications {
            handles: Vec::with_capacity(3),
            context: Arc::into_raw(changes.clone()),
        };
        let ctx = n.context.cast::<core::ffi::c_void>();
        let mut handle: HANDLE = std::ptr::null_mut();
        // SAFETY: the callback matches the documented signature; `ctx` stays valid until every
        // registration is cancelled (Drop); `handle` is a live out-pointer.
        let code = unsafe {
            NotifyIpInterfaceChange(AF_UNSPEC, Some(on_interface), ctx, false, &mut handle)
        };
        n.push("NotifyIpInterfaceChange", code, handle)?;
        let mut handle: HANDLE = std::ptr::null_mut();
        // SAFETY: as above.
        let code = unsafe {
            NotifyUnicastIpAddressChange(AF_UNSPEC, Some(on_address), ctx, false, &mut handle)
        };
        n.push("NotifyUnicastIpAddressChange", code, handle)?;
        let mut handle: HANDLE = std::ptr::null_mut();
        // SAFETY: as above.
        let code =
            unsafe { NotifyRouteChange2(AF_UNSPEC, Some(on_route), ctx, false, &mut handle) };
        n.push("NotifyRouteChange2", code, handle)?;
        Ok(n)
    }

    fn push(
        &mut self,
        call: &'static str,
        code: WIN32_ERROR,
        handle: HANDLE,
    ) -> Result<(), NotifyFailure> {
        CallFailed::check(call, code).map_err(NotifyFailure::Failed)?;
        if handle.is_null() {
            return Err(NotifyFailure::NoHandle(call));
        }
        self.handles.push(handle);
        Ok(())
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        for h in self.handles.drain(..) {
            // SAFETY: a handle a Notify* call returned, cancelled once. Cancelling waits for
            // a callback in progress to return.
            unsafe { CancelMibChangeNotify2(h) };
        }
        // SAFETY: the pointer came from `Arc::into_raw` in `register`, and no registration is
        // left to call back with it.
        drop(unsafe { Arc::from_raw(self.context) });
    }
}

/// The callbacks run on a thread of Windows': they only mark the tables changed and wake the
/// driver, which reads them again. The row they get is not looked at.
unsafe extern "system" fn on_interface(
    ctx: *const core::ffi::c_void,
    _row: *const MIB_IPINTERFACE_ROW,
    _kind: MIB_NOTIFICATION_TYPE,
) {
    // SAFETY: `ctx` is the `Changes` of the registration, alive until it is cancelled.
    unsafe { &*ctx.cast::<Changes>() }.mark();
}

unsafe extern "system" fn on_address(
    ctx: *const core::ffi::c_void,
    _row: *const MIB_UNICASTIPADDRESS_ROW,
    _kind: MIB_NOTIFICATION_TYPE,
) {
    // SAFETY: as in `on_interface`.
    unsafe { &*ctx.cast::<Changes>() }.mark();
}

unsafe extern "system" fn on_route(
    ctx: *const core::ffi::c_void,
    _row: *const MIB_IPFORWARD_ROW2,
    _kind: MIB_NOTIFICATION_TYPE,
) {
    // SAFETY: as in `on_interface`.
    unsafe { &*ctx.cast::<Changes>() }.mark();
}
