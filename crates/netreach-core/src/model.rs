//! The typed model of one network namespace: interfaces, addresses and routes.
//!
//! A [`Snapshot`] is plain data (`Clone`, `Eq`, `Display`, serde). It is keyed the way the kernel
//! identifies objects, so that applying a kernel message is an upsert or a delete and a full dump
//! can replace it wholesale (see [`Snapshot::apply`] and [`crate::diff`]).

use std::collections::BTreeSet;

use imbl::{OrdMap, OrdSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Serialize, Serializer};

use crate::flags::AddressFlags;

/// An IP family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4 (`AF_INET`).
    Ipv4,
    /// IPv6 (`AF_INET6`).
    Ipv6,
}

impl Family {
    /// The unspecified address of the family (`0.0.0.0`, `::`).
    pub(crate) fn unspecified(self) -> IpAddr {
        match self {
            Family::Ipv4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            Family::Ipv6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        }
    }

    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// The lowercase name used in JSON and on the command line: `ipv4` or `ipv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of link an interface is, from `IFLA_INFO_KIND` and the link-layer type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum LinkKind {
    /// The loopback device.
    Loopback,
    /// A physical (or virtual-machine) Ethernet device without a software kind.
    Ethernet,
    /// A virtual Ethernet pair end.
    Veth,
    /// A software bridge.
    Bridge,
    /// A VXLAN tunnel endpoint.
    Vxlan,
    /// A TUN or TAP device.
    Tun,
    /// A VLAN sub-interface.
    Vlan,
    /// A bond.
    Bond,
    /// A WireGuard tunnel.
    Wireguard,
    /// A dummy device.
    Dummy,
    /// A wireless device (from sysfs; the kernel reports no kind for it).
    Wifi,
    /// Any other software kind, by the kernel's name for it.
    Other(String),
    /// No kind and a link-layer type netreach does not classify.
    Unknown,
}

impl LinkKind {
    /// The kernel's name for the kind (`veth`, `bridge`, ...), `loopback`, `ether` or `unknown`.
    pub fn as_str(&self) -> &str {
        match self {
            LinkKind::Loopback => "loopback",
            LinkKind::Ethernet => "ether",
            LinkKind::Veth => "veth",
            LinkKind::Bridge => "bridge",
            LinkKind::Vxlan => "vxlan",
            LinkKind::Tun => "tun",
            LinkKind::Vlan => "vlan",
            LinkKind::Bond => "bond",
            LinkKind::Wireguard => "wireguard",
            LinkKind::Dummy => "dummy",
            LinkKind::Wifi => "wifi",
            LinkKind::Other(s) => s,
            LinkKind::Unknown => "unknown",
        }
    }

    /// Maps a kernel `IFLA_INFO_KIND` string to a kind.
    pub fn from_kernel_kind(kind: &str) -> LinkKind {
        match kind {
            "veth" => LinkKind::Veth,
            "bridge" => LinkKind::Bridge,
            "vxlan" => LinkKind::Vxlan,
            "tun" => LinkKind::Tun,
            "vlan" => LinkKind::Vlan,
            "bond" => LinkKind::Bond,
            "wireguard" => LinkKind::Wireguard,
            "dummy" => LinkKind::Dummy,
            other => LinkKind::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for LinkKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// RFC 2863 operational state (`IFLA_OPERSTATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OperState {
    /// The driver does not report a state (loopback, tun and many virtual devices).
    Unknown,
    /// Not present (for example a removed hot-plug device).
    NotPresent,
    /// Down.
    Down,
    /// Down because a lower device is down (a veth whose peer is down).
    LowerLayerDown,
    /// In test mode.
    Testing,
    /// Up but waiting for an external event (802.1X, for example).
    Dormant,
    /// Up and able to pass packets.
    Up,
}

impl OperState {
    /// The lowercase name used by `ip` and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            OperState::Unknown => "unknown",
            OperState::NotPresent => "notpresent",
            OperState::Down => "down",
            OperState::LowerLayerDown => "lowerlayerdown",
            OperState::Testing => "testing",
            OperState::Dormant => "dormant",
            OperState::Up => "up",
        }
    }
}

impl fmt::Display for OperState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A link-layer address, shown as colon-separated hex.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub Vec<u8>);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Interface {
    /// Kernel interface index, never 0.
    pub index: u32,
    /// Interface name (`IFLA_IFNAME`).
    pub name: String,
    /// Link kind.
    pub kind: LinkKind,
    /// Administratively up (`IFF_UP`).
    pub admin_up: bool,
    /// Operational state.
    pub oper_state: OperState,
    /// Carrier present (`IFF_LOWER_UP`).
    pub carrier: bool,
    /// MTU in bytes.
    pub mtu: u32,
    /// Hardware address, if the link has one.
    pub mac: Option<MacAddr>,
}

impl Interface {
    /// A down interface with the given index, name and kind, for tests and examples.
    pub fn new(index: u32, name: impl Into<String>, kind: LinkKind) -> Interface {
        Interface {
            index,
            name: name.into(),
            kind,
            admin_up: false,
            oper_state: OperState::Down,
            carrier: false,
            mtu: 1500,
            mac: None,
        }
    }

    /// Administratively up and with carrier: the link can carry packets.
    pub fn is_running(&self) -> bool {
        self.admin_up && self.carrier
    }
}

/// Address scope (`ifa_scope` / `rtm_scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Global (`universe`).
    Global,
    /// Site (IPv6 deprecated site-local).
    Site,
    /// Link-local.
    Link,
    /// Host (loopback addresses).
    Host,
    /// Nowhere (destination does not exist).
    Nowhere,
    /// Any other numeric scope.
    Other(u8),
}

impl Scope {
    /// From the kernel's numeric scope.
    pub fn from_raw(raw: u8) -> Scope {
        match raw {
            0 => Scope::Global,
            200 => Scope::Site,
            253 => Scope::Link,
            254 => Scope::Host,
            255 => Scope::Nowhere,
            n => Scope::Other(n),
        }
    }

    /// The name `ip` uses (`global`, `link`, `host`, ...), or the number.
    pub fn name(&self) -> String {
        match self {
            Scope::Global => "global".into(),
            Scope::Site => "site".into(),
            Scope::Link => "link".into(),
            Scope::Host => "host".into(),
            Scope::Nowhere => "nowhere".into(),
            Scope::Other(n) => n.to_string(),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// An address assigned to an interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Address {
    /// Index of the interface the address is on.
    pub interface: u32,
    /// The local address (`IFA_LOCAL`, or `IFA_ADDRESS` when there is no local).
    pub address: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Scope.
    pub scope: Scope,
    /// Flags that matter for connectivity.
    pub flags: AddressFlags,
}

/// How the kernel identifies an address: interface, address and prefix length.
pub type AddressKey = (u32, IpAddr, u8);

impl Address {
    /// The identity of this address.
    pub fn key(&self) -> AddressKey {
        (self.interface, self.address, self.prefix_len)
    }

    /// The address family.
    pub fn family(&self) -> Family {
        Family::of(&self.address)
    }

    /// The address can be used as a source: not tentative and DAD did not fail.
    pub fn is_usable(&self) -> bool {
        !self.flags.contains(AddressFlags::TENTATIVE)
            && !self.flags.contains(AddressFlags::DADFAILED)
    }

    /// Link-local (`169.254.0.0/16`, `fe80::/10`) or link scope.
    pub fn is_link_local(&self) -> bool {
        self.scope == Scope::Link
            || match self.address {
                IpAddr::V4(a) => a.is_link_local(),
                IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
            }
    }
}

/// Route type (`rtm_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteType {
    /// A gateway or direct route.
    Unicast,
    /// Local address (in the `local` table).
    Local,
    /// Broadcast address.
    Broadcast,
    /// Anycast.
    Anycast,
    /// Multicast.
    Multicast,
    /// Drop silently.
    Blackhole,
    /// Destination unreachable.
    Unreachable,
    /// Administratively prohibited.
    Prohibit,
    /// Not in this table, continue lookup (policy routing).
    Throw,
    /// NAT.
    Nat,
    /// Any other numeric type.
    Other(u8),
}

impl RouteType {
    /// The name `ip route` uses.
    pub fn name(&self) -> String {
        match self {
            RouteType::Unicast => "unicast".into(),
            RouteType::Local => "local".into(),
            RouteType::Broadcast => "broadcast".into(),
            RouteType::Anycast => "anycast".into(),
            RouteType::Multicast => "multicast".into(),
            RouteType::Blackhole => "blackhole".into(),
            RouteType::Unreachable => "unreachable".into(),
            RouteType::Prohibit => "prohibit".into(),
            RouteType::Throw => "throw".into(),
            RouteType::Nat => "nat".into(),
            RouteType::Other(n) => n.to_string(),
        }
    }

    /// From the kernel's numeric type.
    pub fn from_raw(raw: u8) -> RouteType {
        match raw {
            1 => RouteType::Unicast,
            2 => RouteType::Local,
            3 => RouteType::Broadcast,
            4 => RouteType::Anycast,
            5 => RouteType::Multicast,
            6 => RouteType::Blackhole,
            7 => RouteType::Unreachable,
            8 => RouteType::Prohibit,
            9 => RouteType::Throw,
            10 => RouteType::Nat,
            n => RouteType::Other(n),
        }
    }
}

impl fmt::Display for RouteType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for RouteType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// Who installed a route (`rtm_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteProtocol(pub u8);

impl RouteProtocol {
    /// The name `ip route` uses (`kernel`, `boot`, `static`, `ra`, `dhcp`, ...) or the number.
    pub fn name(&self) -> String {
        match self.0 {
            0 => "unspec".into(),
            1 => "redirect".into(),
            2 => "kernel".into(),
            3 => "boot".into(),
            4 => "static".into(),
            9 => "ra".into(),
            16 => "dhcp".into(),
            n => n.to_string(),
        }
    }
}

impl Serialize for RouteProtocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// One next hop of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct NextHop {
    /// Gateway, if any.
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub interface: u32,
    /// The kernel marked this hop `linkdown` (its interface has no carrier).
    pub linkdown: bool,
}

/// A route from any table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Route {
    /// Family.
    pub family: Family,
    /// Destination prefix; `0.0.0.0/0` or `::/0` for a default route.
    pub destination: IpNet,
    /// Type of service (IPv4 only; part of the route's identity).
    pub tos: u8,
    /// Gateway (of the first hop for a multipath route).
    pub gateway: Option<IpAddr>,
    /// Output interface index (of the first hop for a multipath route).
    pub interface: Option<u32>,
    /// Routing table id (254 is `main`, 255 `local`).
    pub table: u32,
    /// Metric (`RTA_PRIORITY`).
    pub metric: u32,
    /// Route type.
    #[serde(rename = "type")]
    pub kind: RouteType,
    /// Protocol that installed it.
    pub protocol: RouteProtocol,
    /// Scope.
    pub scope: Scope,
    /// Preferred source address.
    pub prefsrc: Option<IpAddr>,
    /// The kernel marked the (first) next hop `linkdown`.
    pub linkdown: bool,
    /// All next hops when the route is multipath; empty otherwise.
    pub nexthops: Vec<NextHop>,
}

/// How the kernel identifies a route. Two routes with equal keys cannot coexist.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteKey {
    /// Family.
    pub family: Family,
    /// Table.
    pub table: u32,
    /// Destination.
    pub destination: IpNet,
    /// TOS.
    pub tos: u8,
    /// Metric.
    pub metric: u32,
    /// Type.
    pub kind: RouteType,
    /// Output interface.
    pub interface: Option<u32>,
    /// Gateway.
    pub gateway: Option<IpAddr>,
}

impl RouteKey {
    /// The first and last keys that share this key's family, table, destination, TOS and
    /// metric: the part `NLM_F_REPLACE` matches on (a replace swaps the next hop or type).
    pub(crate) fn replace_range(&self) -> (RouteKey, RouteKey) {
        use std::net::Ipv6Addr;
        let lo = RouteKey {
            kind: RouteType::Unicast, // the first variant, so the smallest
            interface: None,
            gateway: None,
            ..self.clone()
        };
        let hi = RouteKey {
            kind: RouteType::Other(u8::MAX),
            interface: Some(u32::MAX),
            gateway: Some(IpAddr::V6(Ipv6Addr::from(u128::MAX))),
            ..self.clone()
        };
        (lo, hi)
    }

    /// The smallest key of `family` in `table`.
    fn first_of(family: Family, table: u32) -> RouteKey {
        RouteKey {
            family,
            table,
            destination: IpNet::new(family.unspecified(), 0).unwrap_or_default(),
            tos: 0,
            metric: 0,
            kind: RouteType::Unicast,
            interface: None,
            gateway: None,
        }
    }

    /// The largest key of `family` in `table` whose destination is `destination` or before it.
    fn last_to(family: Family, table: u32, destination: IpNet) -> RouteKey {
        use std::net::Ipv6Addr;
        RouteKey {
            family,
            table,
            destination,
            tos: u8::MAX,
            metric: u32::MAX,
            kind: RouteType::Other(u8::MAX),
            interface: Some(u32::MAX),
            gateway: Some(IpAddr::V6(Ipv6Addr::from(u128::MAX))),
        }
    }
}

impl Route {
    /// A unicast route in the main table, for tests and examples.
    pub fn unicast(destination: IpNet, gateway: Option<IpAddr>, interface: u32) -> Route {
        Route {
            family: Family::of(&destination.addr()),
            destination,
            tos: 0,
            gateway,
            interface: Some(interface),
            table: Route::MAIN_TABLE,
            metric: 0,
            kind: RouteType::Unicast,
            protocol: RouteProtocol(4),
            scope: if gateway.is_some() {
                Scope::Global
            } else {
                Scope::Link
            },
            prefsrc: None,
            linkdown: false,
            nexthops: Vec::new(),
        }
    }

    /// The `main` table id.
    pub const MAIN_TABLE: u32 = 254;
    /// The `local` table id.
    pub const LOCAL_TABLE: u32 = 255;

    /// The identity of this route.
    pub fn key(&self) -> RouteKey {
        RouteKey {
            family: self.family,
            table: self.table,
            destination: self.destination,
            tos: self.tos,
            metric: self.metric,
            kind: self.kind,
            interface: self.interface,
            gateway: self.gateway,
        }
    }

    /// A default route (`0.0.0.0/0` or `::/0`).
    pub fn is_default(&self) -> bool {
        self.destination.prefix_len() == 0
    }

    /// Whether this route uses interface `index`, directly or as one of its next hops.
    pub fn uses_interface(&self, index: u32) -> bool {
        self.interface == Some(index) || self.nexthops.iter().any(|h| h.interface == index)
    }
}

/// What a policy-routing rule does when it matches (`FR_ACT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleAction {
    /// Look the destination up in this table.
    ToTable(u32),
    /// Continue with the rule of this priority.
    Goto(u32),
    /// Do nothing.
    Nop,
    /// Drop silently.
    Blackhole,
    /// Fail with "network unreachable".
    Unreachable,
    /// Fail with "prohibited".
    Prohibit,
    /// Any other numeric action.
    Other(u8),
}

impl Serialize for RuleAction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RuleAction::ToTable(t) => s.collect_str(&format_args!("lookup {}", table_name(*t))),
            RuleAction::Goto(p) => s.collect_str(&format_args!("goto {p}")),
            RuleAction::Nop => s.serialize_str("nop"),
            RuleAction::Blackhole => s.serialize_str("blackhole"),
            RuleAction::Unreachable => s.serialize_str("unreachable"),
            RuleAction::Prohibit => s.serialize_str("prohibit"),
            RuleAction::Other(n) => s.collect_str(n),
        }
    }
}

/// A policy-routing rule (`ip rule`). The kernel identifies a rule by all of its fields.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Rule {
    /// Family.
    pub family: Family,
    /// Priority (lower first).
    pub priority: u32,
    /// What happens on a match.
    pub action: RuleAction,
    /// Source selector (`from`).
    pub source: Option<IpNet>,
    /// Destination selector (`to`).
    pub destination: Option<IpNet>,
    /// Input interface selector.
    pub iif: Option<String>,
    /// Output interface selector.
    pub oif: Option<String>,
    /// Firewall mark selector.
    pub fwmark: Option<u32>,
    /// The selector is inverted (`not`).
    pub invert: bool,
}

impl Rule {
    /// A `from all lookup TABLE` rule, for tests and examples.
    pub fn lookup(family: Family, priority: u32, table: u32) -> Rule {
        Rule {
            family,
            priority,
            action: RuleAction::ToTable(table),
            source: None,
            destination: None,
            iif: None,
            oif: None,
            fwmark: None,
            invert: false,
        }
    }
}

/// The state of one network namespace: interfaces, addresses, routes of every table and
/// policy-routing rules.
///
/// Plain data: compare two with `==`, print one with `{}`, serialise it with serde, and compute
/// what changed between two with [`crate::diff`].
///
/// A snapshot never holds an address on an interface it does not hold, nor a route through
/// one (as its output interface or one of its next hops'). That is the kernel's rule: when a
/// link goes, its addresses and routes go with it, whether it says so (`RTM_DELADDR`, IPv6's
/// `RTM_DELROUTE`) or not (IPv4 routes are flushed silently). Every way of building or changing
/// a snapshot keeps it: [`Snapshot::apply`] and [`Snapshot::load`] remove what hangs on an
/// interface with the interface and refuse an address or route through an interface they do
/// not know, [`Snapshot::from_parts`], [`Snapshot::replace_routes`] and
/// [`Snapshot::sync_routes`] leave such ones out. So the events of [`crate::diff`] always
/// replay: removing an interface in a diff never takes along something the diff keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    // Persistent maps: cloning a snapshot is O(1) and shares structure, so the monitor can
    // hand out the current state and keep changing its own copy without copying it whole.
    // Behind an `Arc`: a change copies the map's path, and a leaf holds up to 64 interfaces,
    // each with a name on the heap; cloning one is a count, not an allocation.
    pub(crate) interfaces: OrdMap<u32, Arc<Interface>>,
    pub(crate) addresses: OrdMap<AddressKey, Address>,
    pub(crate) routes: OrdMap<RouteKey, Route>,
    /// How many IPv4 routes use each address as preferred source without being one the kernel
    /// made for an address of its own (`proto kernel`): the routes it flushes without a word
    /// when that address goes (see [`Update::route_refresh_needed`]). Kept by
    /// [`Snapshot::insert_route`] and [`Snapshot::remove_route`]; empty on most machines.
    pub(crate) sourced: OrdMap<IpAddr, u32>,
    /// The keys of the addresses, address first: finds an address's entries on every
    /// interface in O(log n) ([`Snapshot::find_address`], for every reachability verdict).
    pub(crate) by_address: OrdSet<(IpAddr, u32, u8)>,
    /// The keys of the routes through each interface (its output interface or a next hop's),
    /// interface first (`None` sorts first and marks a range's start, never stored): a link
    /// change syncs the interface's routes, not the table's.
    pub(crate) by_interface: OrdSet<(u32, Option<RouteKey>)>,
    /// The indexes of the interfaces that are up with carrier: the connectivity rules look for
    /// usable addresses on these, not on 10,000 idle ones.
    pub(crate) running: OrdSet<u32>,
    pub(crate) rules: OrdSet<Rule>,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    /// All interfaces, by index.
    pub fn interfaces(&self) -> impl ExactSizeIterator<Item = &Interface> {
        self.interfaces.values().map(|i| &**i)
    }

    /// The interface with this index.
    pub fn interface(&self, index: u32) -> Option<&Interface> {
        self.interfaces.get(&index).map(|i| &**i)
    }

    /// The interface with this name.
    pub fn interface_by_name(&self, name: &str) -> Option<&Interface> {
        self.interfaces().find(|i| i.name == name)
    }

    /// The name of interface `index`, if it exists.
    pub fn interface_name(&self, index: u32) -> Option<&str> {
        self.interfaces.get(&index).map(|i| i.name.as_str())
    }

    /// All addresses, ordered by interface, then address.
    pub fn addresses(&self) -> impl ExactSizeIterator<Item = &Address> {
        self.addresses.values()
    }

    /// The addresses of interface `index`.
    pub fn addresses_of(&self, index: u32) -> impl Iterator<Item = &Address> {
        use std::net::{Ipv4Addr, Ipv6Addr};
        let lo = (index, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0u8);
        let hi = (index, IpAddr::V6(Ipv6Addr::from(u128::MAX)), u8::MAX);
        self.addresses.range(lo..=hi).map(|(_, a)| a)
    }

    /// Every address entry holding `addr` (on any interface).
    pub fn find_address(&self, addr: IpAddr) -> impl Iterator<Item = &Address> {
        self.by_address
            .range((addr, 0, 0)..=(addr, u32::MAX, u8::MAX))
            .filter_map(|&(a, i, len)| self.addresses.get(&(i, a, len)))
    }

    /// The routes through interface `index` (as output interface or a next hop's).
    pub(crate) fn routes_via(&self, index: u32) -> impl Iterator<Item = &Route> {
        use std::ops::Bound;
        let end = match index.checked_add(1) {
            Some(next) => Bound::Excluded((next, None)),
            None => Bound::Unbounded,
        };
        self.by_interface
            .range((Bound::Included((index, None)), end))
            .filter_map(|(_, k)| k.as_ref().and_then(|k| self.routes.get(k)))
    }

    /// All routes of every table.
    pub fn routes(&self) -> impl ExactSizeIterator<Item = &Route> {
        self.routes.values()
    }

    /// Whether some route of any table, of any type, has a destination that contains `addr`.
    /// When none has, the kernel's lookup for `addr` can only fail (`ENETUNREACH`, or what a
    /// policy rule rejects with): the reachability rules decide "no route" from the model with
    /// this (`docs/reachability.md`).
    ///
    /// A few ordered-map searches per table of the family, whatever the number of routes (see
    /// [`covered_in_table`]). Destinations are taken as the kernel gives them, with the host
    /// bits zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use netreach_core::{Interface, LinkKind, Route, Snapshot};
    ///
    /// let eth = Interface::new(2, "eth0", LinkKind::Ethernet);
    /// let connected = Route::unicast("198.18.0.0/24".parse().unwrap(), None, 2);
    /// let snap = Snapshot::from_parts([eth], [], [connected]);
    /// assert!(snap.has_route_to("198.18.0.7".parse().unwrap()));
    /// assert!(!snap.has_route_to("198.19.0.7".parse().unwrap()));
    /// ```
    pub fn has_route_to(&self, addr: IpAddr) -> bool {
        let family = Family::of(&addr);
        let mut table = 0u32;
        loop {
            // The first route of the family in a table numbered `table` or above.
            let Some((first, _)) = self.routes.get_next(&RouteKey::first_of(family, table)) else {
                return false;
            };
            if first.family != family {
                return false;
            }
            if covered_in_table(&self.routes, family, first.table, addr) {
                return true;
            }
            match first.table.checked_add(1) {
                Some(next) => table = next,
                None => return false,
            }
        }
    }

    /// All policy-routing rules, by family and priority.
    pub fn rules(&self) -> impl ExactSizeIterator<Item = &Rule> {
        self.rules.iter()
    }

    /// The tables that some rule of `family` looks up. With no rule of that family known
    /// (a backend that does not report rules), the kernel's defaults: `local`, `main`, `default`.
    pub fn reachable_tables(&self, family: Family) -> BTreeSet<u32> {
        let mut any = false;
        let mut tables = BTreeSet::new();
        for r in self.rules.iter().filter(|r| r.family == family) {
            any = true;
            if let RuleAction::ToTable(t) = r.action {
                tables.insert(t);
            }
        }
        if !any {
            tables.extend([Route::LOCAL_TABLE, Route::MAIN_TABLE, 253]);
        }
        tables
    }

    /// True when there is nothing in the snapshot.
    pub fn is_empty(&self) -> bool {
        self.interfaces.is_empty()
            && self.addresses.is_empty()
            && self.routes.is_empty()
            && self.rules.is_empty()
    }

    /// Builds a snapshot from the three collections (duplicates: the last wins). Addresses on
    /// interfaces not among `interfaces`, and routes through them, are left out: a snapshot
    /// holds nothing that names a missing interface (see [`Snapshot`]).
    pub fn from_parts(
        interfaces: impl IntoIterator<Item = Interface>,
        addresses: impl IntoIterator<Item = Address>,
        routes: impl IntoIterator<Item = Route>,
    ) -> Snapshot {
        // Sorted, then inserted every other one first: full nodes (see `compact`), and no
        // second copy of the maps on the way (a dump of 10,000 interfaces is built here).
        let mut snap = Snapshot::default();
        let interfaces = sorted_last_wins(interfaces.into_iter().collect(), |i| i.index);
        insert_packed(interfaces, |i| {
            snap.insert_interface(i);
        });
        let addresses: Vec<Address> = addresses
            .into_iter()
            .filter(|a| snap.holds_interface_of(a))
            .collect();
        insert_packed(sorted_last_wins(addresses, Address::key), |a| {
            snap.insert_address(a);
        });
        let routes: Vec<Route> = routes
            .into_iter()
            .filter(|r| snap.holds_interfaces_of(r))
            .collect();
        insert_packed(sorted_last_wins(routes, Route::key), |r| {
            snap.insert_route(r);
        });
        snap
    }

    /// Rebuilds the snapshot's maps with full nodes; what it holds is unchanged. Maps built by
    /// inserting entries in order (a dump comes sorted) leave every node half full, since a
    /// full node splits in two and the left half is never filled again: about twice the
    /// memory. Inserting every other entry first and then the ones between fills each node
    /// to the brim. Call it once a snapshot is built from a dump.
    pub fn compact(&mut self) {
        self.interfaces = packed(&self.interfaces);
        self.addresses = packed(&self.addresses);
        self.routes = packed(&self.routes);
        self.sourced = packed(&self.sourced);
        self.by_address = packed_set(&self.by_address);
        self.by_interface = packed_set(&self.by_interface);
        self.running = packed_set(&self.running);
        self.rules = packed_set(&self.rules);
    }

    /// Puts `interface` in (replacing the one with its index, which is returned), keeping the
    /// index of running interfaces.
    pub(crate) fn insert_interface(&mut self, interface: Interface) -> Option<Arc<Interface>> {
        self.mark_running(&interface);
        self.interfaces.insert(interface.index, Arc::new(interface))
    }

    /// Takes interface `index` out, keeping the index of running interfaces (what hangs on
    /// it is the caller's).
    pub(crate) fn remove_interface(&mut self, index: u32) -> Option<Arc<Interface>> {
        self.running.remove(&index);
        self.interfaces.remove(&index)
    }

    /// Records whether `interface` (as it is now) is running.
    pub(crate) fn mark_running(&mut self, interface: &Interface) {
        if interface.is_running() {
            self.running.insert(interface.index);
        } else {
            self.running.remove(&interface.index);
        }
    }

    /// The interfaces that are up with carrier ([`Interface::is_running`]), by index.
    pub(crate) fn running_interfaces(&self) -> impl Iterator<Item = &Interface> {
        self.running.iter().filter_map(|i| self.interface(*i))
    }

    /// Puts `address` in (replacing the entry with its key, which is returned), keeping the
    /// address index.
    pub(crate) fn insert_address(&mut self, address: Address) -> Option<Address> {
        self.by_address
            .insert((address.address, address.interface, address.prefix_len));
        self.addresses.insert(address.key(), address)
    }

    /// Takes the address with this key out, keeping the address index.
    pub(crate) fn remove_address(&mut self, key: &AddressKey) -> Option<Address> {
        let old = self.addresses.remove(key)?;
        self.by_address.remove(&(key.1, key.0, key.2));
        Some(old)
    }

    /// Puts `route` in (replacing one with its key, which is returned), keeping the indexes.
    pub(crate) fn insert_route(&mut self, route: Route) -> Option<Route> {
        let source = silently_flushed_source(&route);
        let key = route.key();
        if let Some(old) = self.routes.get(&key) {
            // Same key, perhaps other next hops: its entries go, the new route's come.
            for i in route_interfaces(old) {
                self.by_interface.remove(&(i, Some(key.clone())));
            }
        }
        for i in route_interfaces(&route) {
            self.by_interface.insert((i, Some(key.clone())));
        }
        let old = self.routes.insert(key, route);
        if let Some(a) = source {
            *self.sourced.entry(a).or_default() += 1;
        }
        if let Some(a) = old.as_ref().and_then(silently_flushed_source) {
            self.forget_source(a);
        }
        old
    }

    /// Takes the route with this key out, keeping the indexes.
    pub(crate) fn remove_route(&mut self, key: &RouteKey) -> Option<Route> {
        let old = self.routes.remove(key)?;
        for i in route_interfaces(&old) {
            self.by_interface.remove(&(i, Some(key.clone())));
        }
        if let Some(a) = silently_flushed_source(&old) {
            self.forget_source(a);
        }
        Some(old)
    }

    fn forget_source(&mut self, address: IpAddr) {
        if let Some(n) = self.sourced.get_mut(&address) {
            *n -= 1;
            if *n == 0 {
                self.sourced.remove(&address);
            }
        }
    }

    /// Whether some IPv4 route the kernel would flush silently uses `address` as its source.
    pub(crate) fn sources_routes(&self, address: IpAddr) -> bool {
        self.sourced.contains_key(&address)
    }

    /// Whether the interface `address` is on is in the snapshot: if not, the address cannot
    /// be (the kernel removes an interface's addresses with it).
    pub(crate) fn holds_interface_of(&self, address: &Address) -> bool {
        self.interfaces.contains_key(&address.interface)
    }

    /// Whether every interface `route` goes through, its own and its next hops', is in the
    /// snapshot: if not, the route cannot be (the kernel flushes the routes of an interface
    /// that goes, IPv4 ones without telling).
    pub(crate) fn holds_interfaces_of(&self, route: &Route) -> bool {
        route
            .interface
            .is_none_or(|i| self.interfaces.contains_key(&i))
            && route
                .nexthops
                .iter()
                .all(|h| self.interfaces.contains_key(&h.interface))
    }

    /// The same snapshot with these policy-routing rules.
    pub fn with_rules(mut self, rules: impl IntoIterator<Item = Rule>) -> Snapshot {
        self.rules = rules.into_iter().collect();
        self
    }

    /// Replaces all rules of `family` (the answer to a rule re-dump), keeping the rest.
    pub fn replace_rules(&mut self, family: Family, rules: impl IntoIterator<Item = Rule>) {
        self.rules = self
            .rules
            .iter()
            .filter(|r| r.family != family)
            .cloned()
            .chain(rules.into_iter().filter(|r| r.family == family))
            .collect();
    }

    /// Replaces all routes of `family` (the answer to a route re-dump), keeping the rest.
    /// Routes through an interface the snapshot does not hold are left out.
    pub fn replace_routes(&mut self, family: Family, routes: impl IntoIterator<Item = Route>) {
        let stale: Vec<RouteKey> = self
            .routes
            .keys()
            .filter(|k| k.family == family)
            .cloned()
            .collect();
        for k in stale {
            self.remove_route(&k);
        }
        for r in routes {
            if r.family == family && self.holds_interfaces_of(&r) {
                self.insert_route(r);
            }
        }
    }
}

/// `items` sorted by `key`, the last of equal keys kept.
fn sorted_last_wins<T, K: Ord>(mut items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    // A stable sort keeps equal keys in their order: reversed, the last comes first and
    // `dedup_by` keeps it.
    items.sort_by_key(|t| key(t));
    items.reverse();
    items.dedup_by(|a, b| key(a) == key(b));
    items.reverse();
    items
}

/// Hands sorted `items` to `put` every other one first, then the ones between: inserted so
/// into a B-tree, they fill its nodes (see [`Snapshot::compact`]).
fn insert_packed<T>(items: Vec<T>, mut put: impl FnMut(T)) {
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    let n = slots.len();
    for i in (0..n).step_by(2).chain((1..n).step_by(2)) {
        if let Some(item) = slots[i].take() {
            put(item);
        }
    }
}

/// The same map with full nodes (see [`Snapshot::compact`]).
fn packed<K: Ord + Clone, V: Clone>(map: &OrdMap<K, V>) -> OrdMap<K, V> {
    let mut out = OrdMap::new();
    for (k, v) in map.iter().step_by(2).chain(map.iter().skip(1).step_by(2)) {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// Whether a route of `table` contains `addr`: a walk down the predecessors of `addr` in
/// destination order (address, then prefix length).
///
/// Every route that contains `addr` sorts at or before `(addr, full length)`. Take the last
/// route `p` there: if it does not contain `addr`, their addresses agree on their first `c`
/// bits and differ next, where `addr` has a one; a route containing `addr` that is longer than
/// `c` would keep that one and sort between `p` and `addr`, so there is none, and the walk goes
/// on from `(addr masked to c, c)`. The bound shrinks at every step: at most one search per
/// prefix length, and on real tables two or three.
fn covered_in_table(
    routes: &OrdMap<RouteKey, Route>,
    family: Family,
    table: u32,
    addr: IpAddr,
) -> bool {
    let mut len = match family {
        Family::Ipv4 => 32,
        Family::Ipv6 => 128,
    };
    loop {
        let Ok(bound) = IpNet::new(addr, len).map(|n| n.trunc()) else {
            return false;
        };
        let Some((found, _)) = routes
            .get_prev(&RouteKey::last_to(family, table, bound))
            .filter(|(k, _)| k.family == family && k.table == table)
        else {
            return false;
        };
        if found.destination.contains(&addr) {
            return true;
        }
        let common = common_prefix(found.destination.addr(), addr);
        match len.checked_sub(1) {
            Some(shorter) => len = common.min(shorter),
            None => return false,
        }
    }
}

/// How many leading bits two addresses of one family share (0 across families).
fn common_prefix(a: IpAddr, b: IpAddr) -> u8 {
    let bits = match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) ^ u32::from(b)).leading_zeros(),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a) ^ u128::from(b)).leading_zeros(),
        _ => 0,
    };
    // At most 128.
    u8::try_from(bits).unwrap_or(u8::MAX)
}

/// The interfaces a route goes through: its output interface and its next hops', once each.
fn route_interfaces(route: &Route) -> Vec<u32> {
    let mut all: Vec<u32> = route
        .interface
        .into_iter()
        .chain(route.nexthops.iter().map(|h| h.interface))
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The same set with full nodes (see [`Snapshot::compact`]).
fn packed_set<K: Ord + Clone>(set: &OrdSet<K>) -> OrdSet<K> {
    let mut out = OrdSet::new();
    for k in set.iter().step_by(2).chain(set.iter().skip(1).step_by(2)) {
        out.insert(k.clone());
    }
    out
}

/// The preferred source of an IPv4 route that the kernel removes without a notification when
/// that address goes: any but the routes it made itself for its addresses (`proto kernel`:
/// local, broadcast and prefix routes, whose removal it announces).
fn silently_flushed_source(route: &Route) -> Option<IpAddr> {
    const KERNEL: RouteProtocol = RouteProtocol(2);
    match route.prefsrc {
        Some(a @ IpAddr::V4(_)) if route.protocol != KERNEL => Some(a),
        _ => None,
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in self.interfaces() {
            writeln!(
                f,
                "{}: {} <{}> {} state {} carrier {} mtu {}{}",
                i.index,
                i.name,
                i.kind,
                if i.admin_up { "up" } else { "down" },
                i.oper_state,
                if i.carrier { "yes" } else { "no" },
                i.mtu,
                i.mac
                    .as_ref()
                    .map(|m| format!(" mac {m}"))
                    .unwrap_or_default(),
            )?;
            for a in self.addresses_of(i.index) {
                writeln!(
                    f,
                    "    {}/{} scope {}{}",
                    a.address,
                    a.prefix_len,
                    a.scope,
                    a.flags.display_suffix()
                )?;
            }
        }
        for r in self.routes.values() {
            writeln!(
                f,
                "{}",
                RouteDisplay {
                    route: r,
                    snap: self
                }
            )?;
        }
        Ok(())
    }
}

/// A route printed like `ip route`, with interface names resolved from a snapshot.
pub(crate) struct RouteDisplay<'a> {
    pub(crate) route: &'a Route,
    pub(crate) snap: &'a Snapshot,
}

impl fmt::Display for RouteDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.route;
        if r.kind != RouteType::Unicast {
            write!(f, "{} ", r.kind)?;
        }
        if r.is_default() {
            f.write_str("default")?;
        } else {
            write!(f, "{}", r.destination)?;
        }
        if let Some(gw) = r.gateway {
            write!(f, " via {gw}")?;
        }
        if let Some(idx) = r.interface {
            match self.snap.interface_name(idx) {
                Some(name) => write!(f, " dev {name}")?,
                None => write!(f, " dev #{idx}")?,
            }
        }
        if r.table != Route::MAIN_TABLE {
            write!(f, " table {}", table_name(r.table))?;
        }
        if r.metric != 0 {
            write!(f, " metric {}", r.metric)?;
        }
        if let Some(src) = r.prefsrc {
            write!(f, " src {src}")?;
        }
        if r.linkdown {
            f.write_str(" linkdown")?;
        }
        Ok(())
    }
}

/// The name `ip` gives a table id (`main`, `local`, `default`) or the number.
pub fn table_name(table: u32) -> String {
    match table {
        253 => "default".into(),
        254 => "main".into(),
        255 => "local".into(),
        n => n.to_string(),
    }
}

/// A rule printed like `ip rule`.
pub(crate) struct RuleDisplay<'a>(pub(crate) &'a Rule);

impl fmt::Display for RuleDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        write!(f, "{} rule {}:", r.family, r.priority)?;
        if r.invert {
            f.write_str(" not")?;
        }
        match &r.source {
            Some(s) => write!(f, " from {s}")?,
            None => f.write_str(" from all")?,
        }
        if let Some(d) = &r.destination {
            write!(f, " to {d}")?;
        }
        if let Some(m) = r.fwmark {
            write!(f, " fwmark {m:#x}")?;
        }
        if let Some(i) = &r.iif {
            write!(f, " iif {i}")?;
        }
        if let Some(o) = &r.oif {
            write!(f, " oif {o}")?;
        }
        match r.action {
            RuleAction::ToTable(t) => write!(f, " lookup {}", table_name(t)),
            RuleAction::Goto(p) => write!(f, " goto {p}"),
            RuleAction::Nop => f.write_str(" nop"),
            RuleAction::Blackhole => f.write_str(" blackhole"),
            RuleAction::Unreachable => f.write_str(" unreachable"),
            RuleAction::Prohibit => f.write_str(" prohibit"),
            RuleAction::Other(n) => write!(f, " action {n}"),
        }
    }
}
