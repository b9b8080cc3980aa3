//! The transport medium of an interface: what kind of link the traffic leaves through.
//!
//! The kernel's link kind says a lot (a veth is virtual, a WireGuard device a tunnel) but not
//! whether an Ethernet-looking device is really a wireless card, a cellular modem or a Bluetooth
//! PAN: only sysfs says that. So the medium is the link kind's mapping, overridden by a hint the
//! glue reads from sysfs ([`medium_hint_from_sysfs`] turns the file contents into the hint, so the
//! glue only reads files).

use std::fmt;

use serde::Serialize;

use crate::model::LinkKind;

/// How an interface carries traffic.
///
/// # Examples
///
/// ```
/// use netreach_core::{LinkKind, Medium};
///
/// assert_eq!(Medium::from_link_kind(&LinkKind::Wireguard), Medium::Tunnel);
/// assert_eq!(Medium::from_link_kind(&LinkKind::Veth), Medium::Virtual);
/// assert_eq!(Medium::Wifi.to_string(), "wifi");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Medium {
    /// Wired Ethernet (also VLANs, bonds and teams, whose lower devices are usually Ethernet).
    Ethernet,
    /// Wireless LAN (802.11).
    Wifi,
    /// A cellular (WWAN) modem.
    Cellular,
    /// Bluetooth networking (PAN / BNEP).
    Bluetooth,
    /// The loopback device.
    Loopback,
    /// A software device inside the host: veth, bridge, VXLAN, dummy, macvlan, ...
    Virtual,
    /// A tunnel or VPN: TUN/TAP, WireGuard, IP-in-IP, GRE, SIT, XFRM, ...
    Tunnel,
    /// Not known.
    Unknown,
}

impl Medium {
    /// The medium a link kind implies, without any sysfs hint.
    ///
    /// | kind | medium |
    /// |---|---|
    /// | `loopback` | loopback |
    /// | `ether`, `vlan`, `bond`, `team`, `macsec`, `hsr` | ethernet |
    /// | `wifi` | wifi |
    /// | `wwan` | cellular |
    /// | `veth`, `bridge`, `vxlan`, `dummy`, `geneve`, `macvlan`, `macvtap`, `ipvlan`, `ipvtap`, `vrf`, `netkit`, `ifb`, `nlmon`, `vcan`, `vxcan`, `openvswitch`, `batadv` | virtual |
    /// | `tun`, `wireguard`, `ipip`, `sit`, `gre`, `gretap`, `ip6gre`, `ip6gretap`, `ip6tnl`, `erspan`, `ip6erspan`, `vti`, `vti6`, `xfrm`, `gtp`, `bareudp`, `amt`, `ppp` | tunnel |
    /// | anything else | unknown |
    pub fn from_link_kind(kind: &LinkKind) -> Medium {
        match kind {
            LinkKind::Loopback => Medium::Loopback,
            LinkKind::Ethernet | LinkKind::Vlan | LinkKind::Bond => Medium::Ethernet,
            LinkKind::Wifi => Medium::Wifi,
            LinkKind::Veth | LinkKind::Bridge | LinkKind::Vxlan | LinkKind::Dummy => {
                Medium::Virtual
            }
            LinkKind::Tun | LinkKind::Wireguard => Medium::Tunnel,
            LinkKind::Other(name) => Medium::from_kernel_kind(name),
            LinkKind::Unknown => Medium::Unknown,
        }
    }

    /// The medium of a kernel kind string that [`LinkKind`] has no variant for.
    fn from_kernel_kind(name: &str) -> Medium {
        match name {
            "team" | "macsec" | "hsr" => Medium::Ethernet,
            "wwan" => Medium::Cellular,
            "geneve" | "macvlan" | "macvtap" | "ipvlan" | "ipvtap" | "vrf" | "netkit" | "ifb"
            | "nlmon" | "vcan" | "vxcan" | "openvswitch" | "batadv" => Medium::Virtual,
            "ipip" | "sit" | "gre" | "gretap" | "ip6gre" | "ip6gretap" | "ip6tnl" | "erspan"
            | "ip6erspan" | "vti" | "vti6" | "xfrm" | "gtp" | "bareudp" | "amt" | "ppp" => {
                Medium::Tunnel
            }
            _ => Medium::Unknown,
        }
    }

    /// The lowercase name used in JSON and human output.
    pub fn as_str(self) -> &'static str {
        match self {
            Medium::Ethernet => "ethernet",
            Medium::Wifi => "wifi",
            Medium::Cellular => "cellular",
            Medium::Bluetooth => "bluetooth",
            Medium::Loopback => "loopback",
            Medium::Virtual => "virtual",
            Medium::Tunnel => "tunnel",
            Medium::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Medium {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The medium sysfs reveals for one interface, from the content of
/// `/sys/class/net/NAME/uevent` and whether `/sys/class/net/NAME/wireless` (or `phy80211`)
/// exists. `None` when sysfs says nothing the link kind does not already say.
///
/// `DEVTYPE=wlan` or the wireless directory mean wifi, `DEVTYPE=wwan` cellular and
/// `DEVTYPE=bluetooth` Bluetooth. Pure: the caller reads the files (a missing `uevent` is an
/// empty string).
///
/// # Examples
///
/// ```
/// use netreach_core::{Medium, medium_hint_from_sysfs};
///
/// let uevent = "DEVTYPE=wwan\nINTERFACE=wwan0\nIFINDEX=4\n";
/// assert_eq!(medium_hint_from_sysfs(uevent, false), Some(Medium::Cellular));
/// assert_eq!(medium_hint_from_sysfs("INTERFACE=wlp2s0\n", true), Some(Medium::Wifi));
/// assert_eq!(medium_hint_from_sysfs("INTERFACE=eth0\nIFINDEX=2\n", false), None);
/// ```
pub fn medium_hint_from_sysfs(uevent: &str, has_wireless_dir: bool) -> Option<Medium> {
    let devtype = uevent
        .lines()
        .filter_map(|line| line.trim().strip_prefix("DEVTYPE="))
        .next_back()
        .map(str::trim);
    match devtype {
        Some("wlan") => Some(Medium::Wifi),
        Some("wwan") => Some(Medium::Cellular),
        Some("bluetooth") => Some(Medium::Bluetooth),
        _ if has_wireless_dir => Some(Medium::Wifi),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_media() {
        let cases = [
            (LinkKind::Loopback, Medium::Loopback),
            (LinkKind::Ethernet, Medium::Ethernet),
            (LinkKind::Vlan, Medium::Ethernet),
            (LinkKind::Bond, Medium::Ethernet),
            (LinkKind::Wifi, Medium::Wifi),
            (LinkKind::Veth, Medium::Virtual),
            (LinkKind::Bridge, Medium::Virtual),
            (LinkKind::Vxlan, Medium::Virtual),
            (LinkKind::Dummy, Medium::Virtual),
            (LinkKind::Tun, Medium::Tunnel),
            (LinkKind::Wireguard, Medium::Tunnel),
            (LinkKind::Other("ipip".into()), Medium::Tunnel),
            (LinkKind::Other("gre".into()), Medium::Tunnel),
            (LinkKind::Other("ip6tnl".into()), Medium::Tunnel),
            (LinkKind::Other("macvlan".into()), Medium::Virtual),
            (LinkKind::Other("wwan".into()), Medium::Cellular),
            (LinkKind::Other("can".into()), Medium::Unknown),
            (LinkKind::Other(String::new()), Medium::Unknown),
            (LinkKind::Unknown, Medium::Unknown),
        ];
        for (kind, medium) in cases {
            assert_eq!(Medium::from_link_kind(&kind), medium, "{kind}");
        }
    }

    #[test]
    fn sysfs_hints() {
        let cases = [
            ("DEVTYPE=wlan\nINTERFACE=wlan0\n", false, Some(Medium::Wifi)),
            ("INTERFACE=wlan0\n", true, Some(Medium::Wifi)),
            ("DEVTYPE=wwan\n", false, Some(Medium::Cellular)),
            ("DEVTYPE=wwan\n", true, Some(Medium::Cellular)),
            (
                "DEVTYPE=bluetooth\r\nINTERFACE=bnep0\r\n",
                false,
                Some(Medium::Bluetooth),
            ),
            ("  DEVTYPE=wlan  \n", false, Some(Medium::Wifi)),
            ("DEVTYPE=bridge\n", false, None),
            ("DEVTYPE=\n", false, None),
            ("DEVTYPEwlan\n", false, None),
            ("", false, None),
            ("\u{0}\u{ffff}=DEVTYPE=wlan", false, None),
        ];
        for (uevent, wireless, want) in cases {
            assert_eq!(medium_hint_from_sysfs(uevent, wireless), want, "{uevent:?}");
        }
    }

    #[test]
    fn serialises_lowercase() {
        assert_eq!(
            serde_json::to_string(&Medium::Cellular).unwrap(),
            "\"cellular\""
        );
    }
}
