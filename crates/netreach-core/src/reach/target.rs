//! What a connection is, for the reachability rules: a [`Target`] (a checked local/remote address
//! pair, optionally with an output interface) and the [`RouteQuery`] the kernel is asked about it.
//!
//! Parse, don't validate: a `Target` that exists has passed every check that does not depend on
//! time (specified addresses of one family, a unicast remote, a local address this host had when
//! the target was made). What can change later (the address is removed, the route goes away) is
//! not an error here but a [`Reason`](super::Reason) in the tracker's reports.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::Serialize;

use crate::model::{Family, RouteType, Snapshot};

/// An interface as the caller names it: by kernel index or by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InterfaceRef {
    /// Kernel interface index.
    Index(u32),
    /// Interface name (`eth0`), resolved against the snapshot when the target is made.
    Name(String),
}

impl From<u32> for InterfaceRef {
    fn from(index: u32) -> InterfaceRef {
        InterfaceRef::Index(index)
    }
}

impl From<&str> for InterfaceRef {
    fn from(name: &str) -> InterfaceRef {
        InterfaceRef::Name(name.to_owned())
    }
}

impl From<String> for InterfaceRef {
    fn from(name: String) -> InterfaceRef {
        InterfaceRef::Name(name)
    }
}

impl fmt::Display for InterfaceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterfaceRef::Index(i) => write!(f, "#{i}"),
            InterfaceRef::Name(n) => f.write_str(n),
        }
    }
}

/// Why a local/remote pair is not a target the monitor can watch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The local address is `0.0.0.0` or `::`: the socket is not bound to an address, so the
    /// kernel picks a source per packet and there is no single path to watch.
    /// Remedy: take the local address from a connected socket (`TcpStream::local_addr`), or bind
    /// the socket to an address first.
    #[error("the local address {local} is unspecified; use the address of a connected socket")]
    UnspecifiedLocal {
        /// The address given.
        local: IpAddr,
    },
    /// The remote address is `0.0.0.0` or `::`, which names no peer.
    /// Remedy: pass the peer address of a connected socket (`TcpStream::peer_addr`).
    #[error("the remote address {remote} is unspecified")]
    UnspecifiedRemote {
        /// The address given.
        remote: IpAddr,
    },
    /// The local and remote addresses are of different families (after IPv4-mapped IPv6
    /// addresses were turned into IPv4). Remedy: pass both addresses of the same socket.
    #[error("the local address {local} and the remote address {remote} are of different families")]
    FamilyMismatch {
        /// The local address (normalised).
        local: IpAddr,
        /// The remote address (normalised).
        remote: IpAddr,
    },
    /// The remote address is a multicast group: traffic to it has no single peer and no single
    /// path. Remedy: watch the interface instead (the status monitor).
    #[error("the remote address {remote} is a multicast address")]
    MulticastRemote {
        /// The address given.
        remote: IpAddr,
    },
    /// The remote address is `255.255.255.255` or the broadcast address of a subnet this host is
    /// connected to. Remedy: as for multicast, watch the interface instead.
    #[error("the remote address {remote} is a broadcast address")]
    BroadcastRemote {
        /// The address given.
        remote: IpAddr,
    },
    /// No interface of this host has the local address. Remedy: check that the snapshot is
    /// current (made after the socket was connected) and that the address is this host's.
    #[error("the local address {local} is not assigned on this host")]
    LocalNotAssigned {
        /// The address given (normalised).
        local: IpAddr,
    },
    /// The interface given does not exist in the snapshot. Remedy: check the name or index
    /// (`ip link`), or pass no interface to let the kernel choose.
    #[error("no interface {interface}")]
    UnknownInterface {
        /// The interface given.
        interface: InterfaceRef,
    },
}

/// The question put to the kernel for a target: which route would a packet from `local` to
/// `remote` (out of `interface`, when given) take? Answered by an `RTM_GETROUTE` lookup with
/// destination, source and output interface, so that policy routing is honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RouteQuery {
    /// The peer (`RTA_DST`).
    pub remote: IpAddr,
    /// This host's address (`RTA_SRC`).
    pub local: IpAddr,
    /// The output interface index (`RTA_OIF`), when the connection is bound to one.
    pub interface: Option<u32>,
}

impl RouteQuery {
    /// The family of the remote address.
    pub fn family(&self) -> Family {
        Family::of(&self.remote)
    }

    /// The query that asks the system which source it would use for `remote` (out of
    /// `interface`, if given): the remote checked as [`Target::check_remote`] does, the
    /// interface resolved in `snapshot`, the local address unspecified.
    pub fn for_source(
        remote: IpAddr,
        interface: Option<&InterfaceRef>,
        snapshot: &Snapshot,
    ) -> Result<RouteQuery, TargetError> {
        let remote = Target::check_remote(remote, snapshot)?;
        let interface = match interface {
            None => None,
            Some(r) => {
                let found = match r {
                    InterfaceRef::Index(i) => snapshot.interface(*i),
                    InterfaceRef::Name(n) => snapshot.interface_by_name(n),
                };
                let ifc = found.ok_or_else(|| TargetError::UnknownInterface {
                    interface: r.clone(),
                })?;
                Some(ifc.index)
            }
        };
        let local = match remote {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        Ok(RouteQuery {
            remote,
            local,
            interface,
        })
    }
}

impl fmt::Display for RouteQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} from {}", self.remote, self.local)?;
        if let Some(i) = self.interface {
            write!(f, " oif #{i}")?;
        }
        Ok(())
    }
}

/// A connection the tracker can watch: a specified local address of this host, a unicast remote
/// address of the same family, and optionally the output interface the connection is bound to.
///
/// # Examples
///
/// ```
/// use netreach_core::reach::{Target, TargetError};
/// use netreach_core::{Address, AddressFlags, Interface, LinkKind, Scope, Snapshot};
///
/// let eth = Interface::new(2, "eth0", LinkKind::Ethernet);
/// let addr = Address {
///     interface: 2,
///     address: "198.18.0.2".parse().unwrap(),
///     prefix_len: 24,
///     scope: Scope::Global,
///     flags: AddressFlags::empty(),
/// };
/// let snap = Snapshot::from_parts([eth], [addr], []);
///
/// // An IPv4-mapped IPv6 peer (from a dual-stack socket) is an IPv4 peer.
/// let t = Target::new(
///     "198.18.0.2".parse().unwrap(),
///     "::ffff:198.18.5.1".parse().unwrap(),
///     None,
///     &snap,
/// )?;
/// assert_eq!(t.remote().to_string(), "198.18.5.1");
///
/// // The subnet's broadcast address is not a peer.
/// let err = Target::new(
///     "198.18.0.2".parse().unwrap(),
///     "198.18.0.255".parse().unwrap(),
///     None,
///     &snap,
/// );
/// assert!(matches!(err, Err(TargetError::BroadcastRemote { .. })));
/// # Ok::<(), TargetError>(())
/// ```
///
/// # Platform specific behavior
///
/// An IPv6 link-local address (`fe80::/10`) is only meaningful with its interface. When no
/// interface is given, [`Target::from_socket_addrs`] takes it from the scope id of the socket
/// addresses, and [`Target::new`] from the interface that holds the local address; a
/// link-local local address must be assigned on the target's interface.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Target {
    query: RouteQuery,
}

impl Target {
    /// Checks a local/remote pair against the snapshot.
    ///
    /// IPv4-mapped IPv6 addresses (`::ffff:198.18.0.2`) are turned into IPv4 first. Then, in
    /// order: the local address must be specified, the remote specified, both of one family, the
    /// remote neither multicast nor broadcast (`255.255.255.255`, or the broadcast address of a
    /// connected IPv4 subnet or of a kernel `broadcast` route), the interface (if given) must
    /// exist, and the local address must be assigned on this host (on that interface, for an
    /// IPv6 link-local address with an interface). A loopback remote is a valid target. An IPv6
    /// link-local remote without an interface gets the interface of the local address.
    pub fn new(
        local: IpAddr,
        remote: IpAddr,
        interface: Option<InterfaceRef>,
        snapshot: &Snapshot,
    ) -> Result<Target, TargetError> {
        let local = normalise(local);
        let remote = normalise(remote);
        if local.is_unspecified() {
            return Err(TargetError::UnspecifiedLocal { local });
        }
        if remote.is_unspecified() {
            return Err(TargetError::UnspecifiedRemote { remote });
        }
        if Family::of(&local) != Family::of(&remote) {
            return Err(TargetError::FamilyMismatch { local, remote });
        }
        if remote.is_multicast() {
            return Err(TargetError::MulticastRemote { remote });
        }
        if is_broadcast(remote, snapshot) {
            return Err(TargetError::BroadcastRemote { remote });
        }
        let interface = match interface {
            None => None,
            Some(r) => {
                let found = match &r {
                    InterfaceRef::Index(i) => snapshot.interface(*i),
                    InterfaceRef::Name(n) => snapshot.interface_by_name(n),
                };
                match found {
                    Some(i) => Some(i.index),
                    None => return Err(TargetError::UnknownInterface { interface: r }),
                }
            }
        };
        let Some(own) = snapshot
            .find_address(local)
            .find(|a| !is_ipv6_link_local(local) || interface.is_none_or(|i| a.interface == i))
        else {
            return Err(TargetError::LocalNotAssigned { local });
        };
        // A link-local peer is only found through its interface: without one the kernel picks
        // any interface with an fe80::/64 route. Take the local address's.
        let interface = match interface {
            None if is_ipv6_link_local(remote) => Some(own.interface),
            other => other,
        };
        Ok(Target {
            query: RouteQuery {
                remote,
                local,
                interface,
            },
        })
    }

    /// A target from the two ends of a connected socket (`TcpStream::local_addr` and
    /// `peer_addr`, or a connected `UdpSocket`). Ports are ignored. Without an explicit
    /// interface, the scope id of an IPv6 link-local address names it.
    pub fn from_socket_addrs(
        local: SocketAddr,
        peer: SocketAddr,
        interface: Option<InterfaceRef>,
        snapshot: &Snapshot,
    ) -> Result<Target, TargetError> {
        let scope = |a: &SocketAddr| match a {
            SocketAddr::V6(v6) if v6.scope_id() != 0 && is_ipv6_link_local(a.ip()) => {
                Some(v6.scope_id())
            }
            _ => None,
        };
        let interface = interface.or_else(|| {
            scope(&peer)
                .or_else(|| scope(&local))
                .map(InterfaceRef::Index)
        });
        Target::new(local.ip(), peer.ip(), interface, snapshot)
    }

    /// The checks of [`Target::new`] that concern the remote address alone: it is normalised
    /// (IPv4-mapped to IPv4), specified, not multicast and not broadcast. For glue that must
    /// ask the kernel for a source address before it can make a target: reject a remote that
    /// no local address would make valid before asking.
    pub fn check_remote(remote: IpAddr, snapshot: &Snapshot) -> Result<IpAddr, TargetError> {
        let remote = normalise(remote);
        if remote.is_unspecified() {
            return Err(TargetError::UnspecifiedRemote { remote });
        }
        if remote.is_multicast() {
            return Err(TargetError::MulticastRemote { remote });
        }
        if is_broadcast(remote, snapshot) {
            return Err(TargetError::BroadcastRemote { remote });
        }
        Ok(remote)
    }

    /// A target from a query, without the checks: for tests of the parts that take a target.
    #[cfg(test)]
    pub(crate) fn unchecked(query: RouteQuery) -> Target {
        Target { query }
    }

    /// This host's address (normalised: never IPv4-mapped).
    pub fn local(&self) -> IpAddr {
        self.query.local
    }

    /// The peer's address (normalised: never IPv4-mapped).
    pub fn remote(&self) -> IpAddr {
        self.query.remote
    }

    /// The index of the output interface the connection is bound to, if any.
    pub fn interface(&self) -> Option<u32> {
        self.query.interface
    }

    /// The family of both addresses.
    pub fn family(&self) -> Family {
        self.query.family()
    }

    /// The route lookup that decides this target's reachability.
    pub fn query(&self) -> &RouteQuery {
        &self.query
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.query.local, self.query.remote)?;
        if let Some(i) = self.query.interface {
            write!(f, " (oif #{i})")?;
        }
        Ok(())
    }
}

impl AsRef<RouteQuery> for Target {
    fn as_ref(&self) -> &RouteQuery {
        &self.query
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) to IPv4; everything else unchanged.
fn normalise(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

pub(crate) fn is_ipv6_link_local(addr: IpAddr) -> bool {
    matches!(addr, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

/// The limited broadcast, the broadcast address of a connected IPv4 subnet (prefixes up to /30
/// have one), or an address the kernel holds a `broadcast` route for.
fn is_broadcast(remote: IpAddr, snapshot: &Snapshot) -> bool {
    let IpAddr::V4(v4) = remote else {
        return false;
    };
    if v4 == Ipv4Addr::BROADCAST {
        return true;
    }
    let subnet = snapshot.addresses().any(|a| match a.address {
        IpAddr::V4(own) if a.prefix_len <= 30 => {
            let host_mask = u32::MAX.checked_shr(u32::from(a.prefix_len)).unwrap_or(0);
            (u32::from(own) | host_mask) == u32::from(v4)
        }
        _ => false,
    });
    subnet
        || snapshot.routes().any(|r| {
            r.kind == RouteType::Broadcast
                && r.destination.prefix_len() == 32
                && r.destination.addr() == remote
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Update;
    use crate::reach::sim::{ETH0, LO, WLAN0, addr, ip, network};
    use std::net::{Ipv6Addr, SocketAddrV6};

    fn err(local: &str, remote: &str, interface: Option<InterfaceRef>) -> Option<TargetError> {
        Target::new(ip(local), ip(remote), interface, &network()).err()
    }

    #[test]
    fn validation_table() {
        use TargetError::*;
        let cases: Vec<(&str, &str, Option<InterfaceRef>, Option<TargetError>)> = vec![
            ("198.18.0.2", "198.18.5.1", None, None),
            ("198.18.0.2", "198.18.5.1", Some("eth0".into()), None),
            ("198.18.0.2", "198.18.5.1", Some(ETH0.into()), None),
            ("127.0.0.1", "127.0.0.1", None, None),
            ("::1", "::1", None, None),
            ("198.18.0.2", "198.18.0.2", None, None),
            (
                "0.0.0.0",
                "198.18.5.1",
                None,
                Some(UnspecifiedLocal {
                    local: ip("0.0.0.0"),
                }),
            ),
            (
                "::",
                "2001:db8::5",
                None,
                Some(UnspecifiedLocal { local: ip("::") }),
            ),
            (
                "198.18.0.2",
                "0.0.0.0",
                None,
                Some(UnspecifiedRemote {
                    remote: ip("0.0.0.0"),
                }),
            ),
            (
                "198.18.0.2",
                "2001:db8::5",
                None,
                Some(FamilyMismatch {
                    local: ip("198.18.0.2"),
                    remote: ip("2001:db8::5"),
                }),
            ),
            (
                "198.18.0.2",
                "224.0.0.251",
                None,
                Some(MulticastRemote {
                    remote: ip("224.0.0.251"),
                }),
            ),
            (
                "2001:db8::2",
                "ff02::1",
                None,
                Some(MulticastRemote {
                    remote: ip("ff02::1"),
                }),
            ),
            (
                "198.18.0.2",
                "255.255.255.255",
                None,
                Some(BroadcastRemote {
                    remote: ip("255.255.255.255"),
                }),
            ),
            (
                "198.18.0.2",
                "198.18.0.255",
                None,
                Some(BroadcastRemote {
                    remote: ip("198.18.0.255"),
                }),
            ),
            // Another host's subnet: its last address is an ordinary host here.
            ("198.18.0.2", "198.18.7.255", None, None),
            (
                "198.18.0.9",
                "198.18.5.1",
                None,
                Some(LocalNotAssigned {
                    local: ip("198.18.0.9"),
                }),
            ),
            (
                "198.18.0.2",
                "198.18.5.1",
                Some("eth9".into()),
                Some(UnknownInterface {
                    interface: InterfaceRef::Name("eth9".into()),
                }),
            ),
            (
                "198.18.0.2",
                "198.18.5.1",
                Some(99.into()),
                Some(UnknownInterface {
                    interface: InterfaceRef::Index(99),
                }),
            ),
            // A link-local address is only this host's on its own interface.
            (
                "fe80::2",
                "fe80::1",
                Some(WLAN0.into()),
                Some(LocalNotAssigned {
                    local: ip("fe80::2"),
                }),
            ),
            ("fe80::2", "fe80::1", Some(ETH0.into()), None),
        ];
        for (local, remote, interface, want) in cases {
            assert_eq!(err(local, remote, interface), want, "{local} -> {remote}");
        }
    }

    #[test]
    fn remote_alone_is_checked_like_in_new() {
        let snap = network();
        let check = |r: &str| Target::check_remote(ip(r), &snap);
        assert_eq!(check("::ffff:198.18.5.1"), Ok(ip("198.18.5.1")));
        assert_eq!(check("::1"), Ok(ip("::1")));
        assert_eq!(
            check("0.0.0.0"),
            Err(TargetError::UnspecifiedRemote {
                remote: ip("0.0.0.0")
            })
        );
        assert_eq!(
            check("ff02::1"),
            Err(TargetError::MulticastRemote {
                remote: ip("ff02::1")
            })
        );
        assert_eq!(
            check("198.18.0.255"),
            Err(TargetError::BroadcastRemote {
                remote: ip("198.18.0.255")
            })
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let snap = network();
        let t = Target::new(
            ip("::ffff:198.18.0.2"),
            ip("::ffff:198.18.5.1"),
            None,
            &snap,
        )
        .unwrap();
        assert_eq!(t.local(), ip("198.18.0.2"));
        assert_eq!(t.remote(), ip("198.18.5.1"));
        assert_eq!(t.family(), Family::Ipv4);
        // Mixed: a mapped peer on an IPv4 socket address is one family.
        let t = Target::new(ip("198.18.0.2"), ip("::ffff:198.18.5.1"), None, &snap).unwrap();
        assert_eq!(t.query().remote, ip("198.18.5.1"));
        assert_eq!(
            Target::new(ip("::ffff:0.0.0.0"), ip("198.18.5.1"), None, &snap),
            Err(TargetError::UnspecifiedLocal {
                local: ip("0.0.0.0")
            })
        );
        assert_eq!(
            Target::new(ip("2001:db8::2"), ip("::ffff:198.18.5.1"), None, &snap),
            Err(TargetError::FamilyMismatch {
                local: ip("2001:db8::2"),
                remote: ip("198.18.5.1")
            })
        );
    }

    #[test]
    fn broadcast_routes_and_small_prefixes() {
        let mut snap = network();
        let mut brd = crate::reach::sim::local("198.18.1.255/32", WLAN0);
        brd.kind = RouteType::Broadcast;
        snap.apply(Update::NewRoute {
            route: brd,
            replace: false,
        });
        // /31 and /32 subnets have no broadcast address.
        snap.apply(Update::NewAddress(addr(ETH0, "198.18.2.0/31")));
        snap.apply(Update::NewAddress(addr(LO, "198.18.9.9/32")));
        let t = |r: &str| Target::new(ip("198.18.0.2"), ip(r), None, &snap);
        assert!(matches!(
            t("198.18.1.255"),
            Err(TargetError::BroadcastRemote { .. })
        ));
        assert!(t("198.18.2.1").is_ok());
        assert!(t("198.18.9.9").is_ok());
    }

    #[test]
    fn socket_addresses_carry_the_link_local_scope() {
        let snap = network();
        let local = SocketAddr::V6(SocketAddrV6::new("fe80::2".parse().unwrap(), 4000, 0, ETH0));
        let peer = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 443, 0, ETH0));
        let t = Target::from_socket_addrs(local, peer, None, &snap).unwrap();
        assert_eq!(t.interface(), Some(ETH0));
        // Without a scope id, the interface of the local address.
        let bare = |a: &str| SocketAddr::V6(SocketAddrV6::new(a.parse().unwrap(), 1, 0, 0));
        let t = Target::from_socket_addrs(bare("fe80::2"), bare("fe80::1"), None, &snap).unwrap();
        assert_eq!(t.interface(), Some(ETH0));
        // Ports do not matter; a global peer gets no interface.
        let v4 = |a: &str, p| SocketAddr::new(ip(a), p);
        let t = Target::from_socket_addrs(v4("198.18.0.2", 5), v4("198.18.5.1", 6), None, &snap)
            .unwrap();
        assert_eq!(t.interface(), None);
        assert_eq!(t.to_string(), "198.18.0.2 -> 198.18.5.1");
        let unbound = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0));
        assert!(matches!(
            Target::from_socket_addrs(unbound, bare("2001:db8::5"), None, &snap),
            Err(TargetError::UnspecifiedLocal { .. })
        ));
    }

    #[test]
    fn errors_read_well() {
        let e = err("198.18.0.9", "198.18.5.1", None).unwrap();
        assert_eq!(
            e.to_string(),
            "the local address 198.18.0.9 is not assigned on this host"
        );
        let e = err("198.18.0.2", "198.18.5.1", Some("eth9".into())).unwrap();
        assert_eq!(e.to_string(), "no interface eth9");
    }
}
