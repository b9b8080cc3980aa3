//! netreach's connectivity as NetworkManager's D-Bus values: a pure function, no IO.
//!
//! The clients of the compatibility face (Qt's `networkmanager` network-information plugin,
//! GLib's `GNetworkMonitorNM`) were written against NetworkManager, so the values follow
//! NetworkManager's meaning: its `CONNECTED_SITE` has a default route but no verified internet
//! (netreach's `site`, a LAN without a default route, is its `CONNECTED_LOCAL`). The overall
//! level decides, as NetworkManager's overall state does. The table, with every constant, is
//! in docs/nm-compat.md.

use netreach::Verification;
use netreach::Verified;
use netreach::core::connectivity::{Connectivity, Level, Medium};
use netreach_core::LinkKind;

/// `NMState`: `NM_STATE_DISCONNECTED`.
pub const STATE_DISCONNECTED: u32 = 20;
/// `NM_STATE_CONNECTED_LOCAL`.
pub const STATE_CONNECTED_LOCAL: u32 = 50;
/// `NM_STATE_CONNECTED_SITE`.
pub const STATE_CONNECTED_SITE: u32 = 60;
/// `NM_STATE_CONNECTED_GLOBAL`.
pub const STATE_CONNECTED_GLOBAL: u32 = 70;

/// `NMConnectivityState`: `NM_CONNECTIVITY_NONE`.
pub const CONNECTIVITY_NONE: u32 = 1;
/// `NM_CONNECTIVITY_PORTAL`.
pub const CONNECTIVITY_PORTAL: u32 = 2;
/// `NM_CONNECTIVITY_LIMITED`.
pub const CONNECTIVITY_LIMITED: u32 = 3;
/// `NM_CONNECTIVITY_FULL`.
pub const CONNECTIVITY_FULL: u32 = 4;

/// `NMMetered`: `NM_METERED_UNKNOWN` (no primary connection).
pub const METERED_UNKNOWN: u32 = 0;
/// `NM_METERED_YES`.
pub const METERED_YES: u32 = 1;
/// `NM_METERED_NO`.
pub const METERED_NO: u32 = 2;

/// The version string the face reports as `Version`: netreach's own, marked as such, so that
/// nobody mistakes it for a NetworkManager release.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "-netreach");

/// What the face serves, derived from one reading of the status monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// `State` (`NMState`).
    pub state: u32,
    /// `Connectivity` (`NMConnectivityState`).
    pub connectivity: u32,
    /// `Metered` (`NMMetered`): the primary device's, `METERED_UNKNOWN` without one.
    pub metered: u32,
    /// The primary connection's device, if there is one.
    pub primary: Option<Device>,
}

/// The device of the primary connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Interface index (the device's object path is `Devices/<index>`).
    pub index: u32,
    /// Interface name (`Interface`).
    pub name: String,
    /// `DeviceType` (`NMDeviceType`).
    pub device_type: u32,
    /// `Metered` (`NMMetered`): 1 yes or 2 no.
    pub metered: u32,
}

impl View {
    /// The values for `connectivity` and the probes' `verification`; `probing` says whether
    /// probes run at all, `kind` is the primary interface's link kind (from the snapshot).
    ///
    /// | netreach (overall) | State | Connectivity |
    /// |---|---|---|
    /// | disconnected | 20 | 1 none |
    /// | local or site | 50 | 1 none |
    /// | internet, probe says limited (or none) | 60 | 3 limited |
    /// | internet, probe says portal | 60 | 2 portal |
    /// | internet, probe says full, not yet answered, or probing off | 70 | 4 full |
    pub fn of(
        connectivity: &Connectivity,
        verification: &Verification,
        probing: bool,
        kind: Option<&LinkKind>,
    ) -> View {
        let (state, conn) = match connectivity.overall {
            Level::Disconnected => (STATE_DISCONNECTED, CONNECTIVITY_NONE),
            Level::Local | Level::Site => (STATE_CONNECTED_LOCAL, CONNECTIVITY_NONE),
            Level::Internet if !probing => (STATE_CONNECTED_GLOBAL, CONNECTIVITY_FULL),
            Level::Internet => match verification.internet {
                // Not answered yet (the probe waits a second after each change): what the
                // routes say, as with probing off, rather than a flicker to `site`.
                Verified::Full | Verified::Unverified => {
                    (STATE_CONNECTED_GLOBAL, CONNECTIVITY_FULL)
                }
                Verified::Portal => (STATE_CONNECTED_SITE, CONNECTIVITY_PORTAL),
                Verified::Limited | Verified::None => (STATE_CONNECTED_SITE, CONNECTIVITY_LIMITED),
            },
        };
        let primary = connectivity.primary.as_ref().map(|p| Device {
            index: p.index,
            name: p.name.clone(),
            device_type: device_type(p.medium, kind),
            metered: if p.metered { METERED_YES } else { METERED_NO },
        });
        View {
            state,
            connectivity: conn,
            metered: primary.as_ref().map_or(METERED_UNKNOWN, |d| d.metered),
            primary,
        }
    }

    /// Whether going from `self` to `new` needs a new `ActiveConnection` object: another
    /// device, or the same with another type (clients read a device's type only when the
    /// primary connection's path changes).
    pub fn new_connection(&self, new: &View) -> bool {
        let id = |v: &View| v.primary.as_ref().map(|d| (d.index, d.device_type));
        id(self) != id(new)
    }
}

impl Default for View {
    /// Nothing known yet: disconnected.
    fn default() -> View {
        View {
            state: STATE_DISCONNECTED,
            connectivity: CONNECTIVITY_NONE,
            metered: METERED_UNKNOWN,
            primary: None,
        }
    }
}

/// `NMDeviceType` of an interface: the medium first (a sysfs hint may say wifi for an
/// Ethernet-looking device), then the link kind for software devices.
pub fn device_type(medium: Medium, kind: Option<&LinkKind>) -> u32 {
    match medium {
        Medium::Wifi => return 2,
        Medium::Bluetooth => return 5,
        Medium::Cellular => return 8,
        Medium::Loopback => return 32,
        _ => {}
    }
    match kind {
        Some(LinkKind::Bond) => 10,
        Some(LinkKind::Vlan) => 11,
        Some(LinkKind::Bridge) => 13,
        Some(LinkKind::Tun) => 16,
        Some(LinkKind::Vxlan) => 19,
        Some(LinkKind::Veth) => 20,
        Some(LinkKind::Dummy) => 22,
        Some(LinkKind::Wireguard) => 29,
        Some(LinkKind::Other(k)) => match k.as_str() {
            "team" => 15,
            "ipip" | "sit" | "gre" | "gretap" | "ip6gre" | "ip6gretap" | "ip6tnl" | "vti"
            | "vti6" => 17,
            "macvlan" | "macvtap" => 18,
            "macsec" => 21,
            "ppp" => 23,
            "openvswitch" => 24,
            "vrf" => 31,
            "hsr" => 33,
            // A kind NetworkManager has no type for: its `GENERIC`.
            _ if medium == Medium::Ethernet => 1,
            _ => 14,
        },
        _ if medium == Medium::Ethernet => 1,
        Some(LinkKind::Unknown) | None => 0,
        Some(_) => 14,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netreach_core::{
        Address, AddressFlags, ConnectivityConfig, Interface, OperState, Route, Scope, Snapshot,
        evaluate,
    };

    /// Connectivity as the rules compute it for an interface of `kind` at `level`.
    fn connectivity(kind: LinkKind, level: Level, metered: bool) -> Connectivity {
        let mut eth = Interface::new(7, "up0", kind);
        (eth.admin_up, eth.carrier, eth.oper_state) =
            (level != Level::Disconnected, true, OperState::Up);
        let addr = Address {
            interface: 7,
            address: if level == Level::Local {
                "169.254.1.2".parse().unwrap()
            } else {
                "198.18.0.2".parse().unwrap()
            },
            prefix_len: 24,
            scope: Scope::Global,
            flags: AddressFlags::empty(),
        };
        let mut routes = vec![];
        if level >= Level::Site {
            routes.push(Route::unicast("198.18.0.0/24".parse().unwrap(), None, 7));
        }
        if level == Level::Internet {
            routes.push(Route::unicast(
                "0.0.0.0/0".parse().unwrap(),
                Some("198.18.0.1".parse().unwrap()),
                7,
            ));
        }
        let snap = Snapshot::from_parts([eth], [addr], routes);
        let mut config = ConnectivityConfig::default();
        if metered {
            config = config.with_metered("up*".parse().unwrap());
        }
        let c = evaluate(&snap, &config);
        assert_eq!(c.overall, level, "the fixture is at {level}: {c}");
        c
    }

    fn verified(v: Verified) -> Verification {
        Verification {
            internet: v,
            ipv4: v,
            ..Verification::default()
        }
    }

    #[test]
    fn the_table_of_docs_nm_compat() {
        let any = verified(Verified::Full);
        let rows = [
            (Level::Disconnected, false, &any, (20, 1)),
            (Level::Disconnected, true, &any, (20, 1)),
            (Level::Local, true, &any, (50, 1)),
            (Level::Site, false, &any, (50, 1)),
            (Level::Site, true, &any, (50, 1)),
            (Level::Internet, false, &verified(Verified::Portal), (70, 4)),
            (Level::Internet, true, &verified(Verified::Full), (70, 4)),
            (
                Level::Internet,
                true,
                &verified(Verified::Unverified),
                (70, 4),
            ),
            (Level::Internet, true, &verified(Verified::Portal), (60, 2)),
            (Level::Internet, true, &verified(Verified::Limited), (60, 3)),
            (Level::Internet, true, &verified(Verified::None), (60, 3)),
        ];
        for (level, probing, v, (state, conn)) in rows {
            let c = connectivity(LinkKind::Ethernet, level, false);
            let view = View::of(&c, v, probing, Some(&LinkKind::Ethernet));
            assert_eq!(
                (view.state, view.connectivity),
                (state, conn),
                "{level}, probing {probing}, {:?}",
                v.internet
            );
        }
    }

    #[test]
    fn the_primary_device_and_metered() {
        let c = connectivity(LinkKind::Veth, Level::Internet, true);
        let view = View::of(&c, &Verification::default(), false, Some(&LinkKind::Veth));
        let d = view.primary.clone().expect("a primary device");
        assert_eq!((d.index, d.name.as_str()), (7, "up0"));
        assert_eq!((d.device_type, d.metered, view.metered), (20, 1, 1));
        let c = connectivity(LinkKind::Ethernet, Level::Site, false);
        let view = View::of(
            &c,
            &Verification::default(),
            false,
            Some(&LinkKind::Ethernet),
        );
        assert_eq!(view.primary.as_ref().map(|d| d.metered), Some(METERED_NO));
        assert_eq!(view.metered, METERED_NO);
        let view = View::of(
            &Connectivity::disconnected(),
            &Verification::default(),
            true,
            None,
        );
        assert_eq!((view.primary, view.metered), (None, METERED_UNKNOWN));
        assert_eq!(View::default().state, STATE_DISCONNECTED);
    }

    #[test]
    fn device_types_are_networkmanagers() {
        let k = |kind: LinkKind| device_type(Medium::from_link_kind(&kind), Some(&kind));
        assert_eq!(k(LinkKind::Ethernet), 1);
        assert_eq!(k(LinkKind::Wifi), 2);
        assert_eq!(k(LinkKind::Vlan), 11);
        assert_eq!(k(LinkKind::Bond), 10);
        assert_eq!(k(LinkKind::Bridge), 13);
        assert_eq!(k(LinkKind::Veth), 20);
        assert_eq!(k(LinkKind::Wireguard), 29);
        assert_eq!(k(LinkKind::Loopback), 32);
        assert_eq!(k(LinkKind::Other("wwan".into())), 8);
        assert_eq!(k(LinkKind::Other("macvlan".into())), 18);
        assert_eq!(k(LinkKind::Other("team".into())), 15);
        assert_eq!(k(LinkKind::Other("geneve".into())), 14);
        assert_eq!(k(LinkKind::Unknown), 0);
        // The sysfs hint wins: an Ethernet-kind device that is a wireless card.
        assert_eq!(device_type(Medium::Wifi, Some(&LinkKind::Ethernet)), 2);
        assert_eq!(device_type(Medium::Bluetooth, Some(&LinkKind::Ethernet)), 5);
        assert_eq!(device_type(Medium::Cellular, None), 8);
    }

    #[test]
    fn a_new_connection_when_the_device_or_its_type_changes() {
        let dev = |index, device_type| View {
            primary: Some(Device {
                index,
                name: "x".into(),
                device_type,
                metered: METERED_NO,
            }),
            ..View::default()
        };
        assert!(!dev(2, 1).new_connection(&dev(2, 1)));
        let mut metered = dev(2, 1);
        metered.primary.as_mut().unwrap().metered = METERED_YES;
        assert!(
            !dev(2, 1).new_connection(&metered),
            "metered is a property change"
        );
        assert!(dev(2, 1).new_connection(&dev(3, 1)));
        assert!(dev(2, 1).new_connection(&dev(2, 2)));
        assert!(dev(2, 1).new_connection(&View::default()));
        assert!(View::default().new_connection(&dev(2, 1)));
    }
}
