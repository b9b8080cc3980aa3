//! Windows' IP Helper tables as the model: plain rows in, a [`Snapshot`] out. Pure, and built
//! and tested on every system, like the rtnetlink decoder ([`crate::decode`] on Linux).
//!
//! The Windows backend (`netreach::sys::windows`) copies each row of `GetIfTable2`
//! (`MIB_IF_ROW2`), `GetUnicastIpAddressTable` (`MIB_UNICASTIPADDRESS_ROW`) and
//! `GetIpForwardTable2` (`MIB_IPFORWARD_ROW2`) into the plain structs here ([`IfRow`],
//! [`AddrRow`], [`RouteRow`]) with the raw numbers Windows gave, and [`snapshot`] turns the three
//! tables into one state. Windows' change notifications say that *something* changed (their
//! rows are not trusted either), so every change is a fresh read of the tables and
//! [`crate::diff`] finds what changed: a repeat is a no-op, as the house rules want.
//!
//! # Identity, validated
//!
//! Windows names an interface three ways: its index (`InterfaceIndex`, which Windows may reuse
//! after a device goes), its LUID (`NET_LUID`, 64 bits: interface type in the top 16, a
//! per-type index in the next 24, 24 reserved bits that are zero) and its GUID. A row is used
//! only when they agree:
//!
//! - an interface row needs a non-zero index, a LUID that [`Luid::parse`] accepts whose type
//!   field is the row's `Type`, a GUID that is not nil, and an index and LUID no earlier row
//!   used;
//! - an address or route row needs a valid LUID that names a known interface **and** the index
//!   of that interface: the index is never used alone to find the interface.
//!
//! Every row left out is counted in [`Rejected`] with why, for the backend's log; nothing
//! panics on any input (the tests feed every field's extremes).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::flags::AddressFlags;
use crate::model::{
    Address, Family, Interface, LinkKind, MacAddr, OperState, Route, RouteProtocol, RouteType,
    Scope, Snapshot,
};

/// A `NET_LUID`, checked: reserved bits zero, interface type and per-type index not zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Luid(u64);

impl Luid {
    /// Checks a raw `NET_LUID.Value`.
    pub fn parse(raw: u64) -> Result<Luid, RowError> {
        let luid = Luid(raw);
        if raw & 0xff_ffff != 0 || luid.if_type() == 0 || luid.net_luid_index() == 0 {
            return Err(RowError::BadLuid(raw));
        }
        Ok(luid)
    }

    /// The raw value.
    pub fn value(self) -> u64 {
        self.0
    }

    /// The interface type (`IfType`, the IANA ifType: 6 Ethernet, 24 loopback, 71 Wi-Fi ...).
    pub fn if_type(self) -> u16 {
        (self.0 >> 48) as u16
    }

    /// The index among interfaces of that type (`NetLuidIndex`).
    pub fn net_luid_index(self) -> u32 {
        ((self.0 >> 24) & 0xff_ffff) as u32
    }
}

impl fmt::Display for Luid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// An interface GUID, checked: not nil. Shown as Windows does, `{xxxxxxxx-xxxx-...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Guid {
    data1: u32,
    data2: u16,
    data3: u16,
    data4: [u8; 8],
}

impl Guid {
    /// From the fields of a Windows `GUID`.
    pub fn parse(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> Result<Guid, RowError> {
        if data1 == 0 && data2 == 0 && data3 == 0 && data4 == [0; 8] {
            return Err(RowError::NilGuid);
        }
        Ok(Guid {
            data1,
            data2,
            data3,
            data4,
        })
    }

    /// From the registry form, `{6B29FC40-CA47-1067-B31D-00DD010662DA}` (braces optional,
    /// either case).
    pub fn from_text(text: &str) -> Result<Guid, RowError> {
        let bad = || RowError::BadGuidText(text.to_owned());
        let t = text.strip_prefix('{').unwrap_or(text);
        let t = t.strip_suffix('}').unwrap_or(t);
        if t.len() != 36 || text.starts_with('{') != text.ends_with('}') {
            return Err(bad());
        }
        let parts: Vec<&str> = t.split('-').collect();
        let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        if lens != [8, 4, 4, 4, 12] || !t.chars().all(|c| c == '-' || c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let hex = |s: &str| u64::from_str_radix(s, 16).map_err(|_| bad());
        let d1 = hex(parts[0])? as u32;
        let d2 = hex(parts[1])? as u16;
        let d3 = hex(parts[2])? as u16;
        let tail = format!("{}{}", parts[3], parts[4]);
        let mut d4 = [0u8; 8];
        for (i, b) in d4.iter_mut().enumerate() {
            *b = u8::from_str_radix(&tail[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Guid::parse(d1, d2, d3, d4)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.data4;
        write!(
            f,
            "{{{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

/// Why a row was left out of the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RowError {
    /// The LUID has reserved bits set, or a zero type or index: not one Windows makes.
    #[error("invalid interface LUID {0:#018x}")]
    BadLuid(u64),
    /// The LUID's type field is not the row's interface type.
    #[error("LUID {luid:#018x} has type {luid_type}, the row says {row_type}")]
    LuidTypeMismatch {
        /// The raw LUID.
        luid: u64,
        /// The type in the LUID.
        luid_type: u16,
        /// The row's `Type`.
        row_type: u32,
    },
    /// The interface GUID is all zeros.
    #[error("nil interface GUID")]
    NilGuid,
    /// A GUID in text that is not `{8-4-4-4-12}` hex digits.
    #[error("invalid GUID {0:?}")]
    BadGuidText(String),
    /// Interface index 0, which names no interface.
    #[error("interface index 0")]
    ZeroIndex,
    /// Another interface row has this index or LUID already.
    #[error("interface index {index} or LUID {luid:#018x} appears twice")]
    Duplicate {
        /// The index.
        index: u32,
        /// The raw LUID.
        luid: u64,
    },
    /// An address or route names a LUID no interface row has.
    #[error("no interface has LUID {0:#018x}")]
    UnknownLuid(u64),
    /// An address or route names a LUID and an index of two different interfaces.
    #[error("LUID {luid:#018x} is interface {expected}, the row says {index}")]
    IndexMismatch {
        /// The raw LUID.
        luid: u64,
        /// The index of the interface with that LUID.
        expected: u32,
        /// The index the row gave.
        index: u32,
    },
    /// A prefix length longer than the family allows.
    #[error("prefix length {len} is too long for {address}")]
    BadPrefix {
        /// The address.
        address: IpAddr,
        /// The length given.
        len: u8,
    },
    /// A next hop of the other family than the destination.
    #[error("next hop {next_hop} is not of the family of {destination}")]
    FamilyMismatch {
        /// The destination.
        destination: IpAddr,
        /// The next hop.
        next_hop: IpAddr,
    },
}

/// The fields of one `MIB_IF_ROW2` netreach uses, as Windows gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfRow {
    /// `InterfaceLuid.Value`.
    pub luid: u64,
    /// `InterfaceIndex`.
    pub index: u32,
    /// `InterfaceGuid` as (`Data1`, `Data2`, `Data3`, `Data4`).
    pub guid: (u32, u16, u16, [u8; 8]),
    /// `Alias` (the name users see: "Ethernet", "Wi-Fi"), up to its first NUL.
    pub alias: String,
    /// `Type` (IANA ifType).
    pub if_type: u32,
    /// `Mtu`.
    pub mtu: u32,
    /// `PhysicalAddress[..PhysicalAddressLength]`.
    pub mac: Vec<u8>,
    /// `OperStatus` (`IF_OPER_STATUS`: 1 up, 2 down, 3 testing, 4 unknown, 5 dormant, 6 not
    /// present, 7 lower layer down).
    pub oper_status: i32,
    /// `AdminStatus` (`NET_IF_ADMIN_STATUS`: 1 up, 2 down, 3 testing).
    pub admin_status: i32,
    /// `MediaConnectState` (0 unknown, 1 connected, 2 disconnected).
    pub media_connect_state: i32,
}

/// The fields of one `MIB_UNICASTIPADDRESS_ROW` netreach uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrRow {
    /// `InterfaceLuid.Value`.
    pub luid: u64,
    /// `InterfaceIndex`.
    pub index: u32,
    /// `Address`.
    pub address: IpAddr,
    /// `OnLinkPrefixLength`.
    pub prefix_len: u8,
    /// `DadState` (`NL_DAD_STATE`: 0 invalid, 1 tentative, 2 duplicate, 3 deprecated, 4
    /// preferred).
    pub dad_state: i32,
    /// `SuffixOrigin` is random (`IpSuffixOriginRandom`, 4): a temporary (privacy) address.
    pub temporary: bool,
}

/// The fields of one `MIB_IPFORWARD_ROW2` netreach uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRow {
    /// `InterfaceLuid.Value`.
    pub luid: u64,
    /// `InterfaceIndex`.
    pub index: u32,
    /// `DestinationPrefix.Prefix`.
    pub destination: IpAddr,
    /// `DestinationPrefix.PrefixLength`.
    pub prefix_len: u8,
    /// `NextHop` (unspecified: on link).
    pub next_hop: IpAddr,
    /// `Metric` (the route's own; Windows adds the interface's metric when it chooses).
    pub metric: u32,
    /// `Protocol` (`NL_ROUTE_PROTOCOL`: 2 local, 3 static (netmgmt), 10002 autostatic ...).
    pub protocol: i32,
    /// `Loopback`: a route to this host's own address.
    pub loopback: bool,
}

/// What the rows left out, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejected {
    /// Interface rows, with their index and why.
    pub interfaces: Vec<(u32, RowError)>,
    /// Address rows, with their address and why.
    pub addresses: Vec<(IpAddr, RowError)>,
    /// Route rows, with their destination and why.
    pub routes: Vec<(IpAddr, RowError)>,
}

impl Rejected {
    /// Nothing was left out.
    pub fn is_empty(&self) -> bool {
        self.interfaces.is_empty() && self.addresses.is_empty() && self.routes.is_empty()
    }

    /// How many rows were left out.
    pub fn len(&self) -> usize {
        self.interfaces.len() + self.addresses.len() + self.routes.len()
    }
}

/// One interface row, checked and translated.
pub fn interface(row: &IfRow) -> Result<(Luid, Guid, Interface), RowError> {
    if row.index == 0 {
        return Err(RowError::ZeroIndex);
    }
    let luid = Luid::parse(row.luid)?;
    if u32::from(luid.if_type()) != row.if_type {
        return Err(RowError::LuidTypeMismatch {
            luid: row.luid,
            luid_type: luid.if_type(),
            row_type: row.if_type,
        });
    }
    let (d1, d2, d3, d4) = row.guid;
    let guid = Guid::parse(d1, d2, d3, d4)?;
    let oper_state = match row.oper_status {
        1 => OperState::Up,
        2 => OperState::Down,
        3 => OperState::Testing,
        5 => OperState::Dormant,
        6 => OperState::NotPresent,
        7 => OperState::LowerLayerDown,
        _ => OperState::Unknown,
    };
    let carrier = match row.media_connect_state {
        1 => true,
        2 => false,
        // Unknown: the operational state is the best word there is.
        _ => oper_state == OperState::Up,
    };
    let kind = match row.if_type {
        6 => LinkKind::Ethernet,
        24 => LinkKind::Loopback,
        71 => LinkKind::Wifi,
        131 => LinkKind::Tun,
        53 => LinkKind::Other("propvirtual".into()),
        _ => LinkKind::Unknown,
    };
    let name = if row.alias.is_empty() {
        format!("if{}", row.index)
    } else {
        row.alias.clone()
    };
    let mac = (!row.mac.is_empty() && row.mac.iter().any(|b| *b != 0))
        .then(|| MacAddr(row.mac.iter().copied().take(32).collect()));
    Ok((
        luid,
        guid,
        Interface {
            index: row.index,
            name,
            kind,
            admin_up: row.admin_status == 1,
            oper_state,
            carrier,
            mtu: row.mtu,
            mac,
        },
    ))
}

/// The three tables as one state, and what was left out. Rows are taken in order; for an
/// interface index or LUID seen twice, the first row stands.
pub fn snapshot(ifs: &[IfRow], addrs: &[AddrRow], routes: &[RouteRow]) -> (Snapshot, Rejected) {
    let mut rejected = Rejected::default();
    let mut by_luid: BTreeMap<Luid, u32> = BTreeMap::new();
    let mut interfaces: BTreeMap<u32, Interface> = BTreeMap::new();
    for row in ifs {
        match interface(row) {
            Ok((luid, _guid, ifc)) => {
                if by_luid.contains_key(&luid) || interfaces.contains_key(&ifc.index) {
                    rejected.interfaces.push((
                        row.index,
                        RowError::Duplicate {
                            index: row.index,
                            luid: row.luid,
                        },
                    ));
                    continue;
                }
                by_luid.insert(luid, ifc.index);
                interfaces.insert(ifc.index, ifc);
            }
            Err(e) => rejected.interfaces.push((row.index, e)),
        }
    }
    let owner = |luid: u64, index: u32| -> Result<u32, RowError> {
        let luid = Luid::parse(luid)?;
        let expected = *by_luid.get(&luid).ok_or(RowError::UnknownLuid(luid.0))?;
        if expected != index {
            return Err(RowError::IndexMismatch {
                luid: luid.0,
                expected,
                index,
            });
        }
        Ok(expected)
    };
    let mut addresses = Vec::new();
    for row in addrs {
        match address(row, &owner) {
            Ok(a) => addresses.push(a),
            Err(e) => rejected.addresses.push((row.address, e)),
        }
    }
    let mut model_routes = Vec::new();
    for row in routes {
        match route(row, &owner) {
            Ok(r) => model_routes.push(r),
            Err(e) => rejected.routes.push((row.destination, e)),
        }
    }
    (
        Snapshot::from_parts(interfaces.into_values(), addresses, model_routes),
        rejected,
    )
}

fn max_prefix(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// One address row, on the interface `owner` finds for its LUID and index (as [`snapshot`]
/// checks them).
pub fn address(
    row: &AddrRow,
    owner: &impl Fn(u64, u32) -> Result<u32, RowError>,
) -> Result<Address, RowError> {
    let interface = owner(row.luid, row.index)?;
    if row.prefix_len > max_prefix(&row.address) {
        return Err(RowError::BadPrefix {
            address: row.address,
            len: row.prefix_len,
        });
    }
    let mut flags = match row.dad_state {
        1 => AddressFlags::TENTATIVE,
        2 => AddressFlags::DADFAILED,
        3 => AddressFlags::DEPRECATED,
        _ => AddressFlags::empty(),
    };
    flags.set(AddressFlags::TEMPORARY, row.temporary);
    let scope = if row.address.is_loopback() {
        Scope::Host
    } else if is_link_local(&row.address) {
        Scope::Link
    } else {
        Scope::Global
    };
    Ok(Address {
        interface,
        address: row.address,
        prefix_len: row.prefix_len,
        scope,
        flags,
    })
}

fn is_link_local(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.is_unicast_link_local(),
    }
}

/// One route row (a row of `GetIpForwardTable2`, or `GetBestRoute2`'s answer), through the
/// interface `owner` finds for its LUID and index.
pub fn route(
    row: &RouteRow,
    owner: &impl Fn(u64, u32) -> Result<u32, RowError>,
) -> Result<Route, RowError> {
    let interface = owner(row.luid, row.index)?;
    let destination = IpNet::new(row.destination, row.prefix_len)
        .map_err(|_| RowError::BadPrefix {
            address: row.destination,
            len: row.prefix_len,
        })?
        // Host bits zero (Windows' are): see `Snapshot::has_route_to`.
        .trunc();
    if Family::of(&row.next_hop) != Family::of(&row.destination) {
        return Err(RowError::FamilyMismatch {
            destination: row.destination,
            next_hop: row.next_hop,
        });
    }
    let gateway = (!row.next_hop.is_unspecified()).then_some(row.next_hop);
    // Windows' protocols as the nearest `ip route` names: local → kernel, the static ones →
    // static, the rest by number where it fits (RA, DHCP have none of their own here).
    let protocol = match row.protocol {
        2 => 2,
        3 | 10002 | 10006 => 4,
        n => u8::try_from(n).unwrap_or(0),
    };
    let (kind, table) = if row.loopback {
        (RouteType::Local, Route::LOCAL_TABLE)
    } else {
        (RouteType::Unicast, Route::MAIN_TABLE)
    };
    Ok(Route {
        family: Family::of(&row.destination),
        destination: destination.trunc(),
        tos: 0,
        gateway,
        interface: Some(interface),
        table,
        metric: row.metric,
        kind,
        protocol: RouteProtocol(protocol),
        scope: match (kind, gateway) {
            (RouteType::Local, _) => Scope::Host,
            (_, None) => Scope::Link,
            (_, Some(_)) => Scope::Global,
        },
        prefsrc: None,
        linkdown: false,
        nexthops: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
