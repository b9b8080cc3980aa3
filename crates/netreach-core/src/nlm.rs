//! What Windows' Network List Manager says, as data: `NLM_CONNECTIVITY` bits per family and
//! the `NLM_CONNECTION_COST` bits, turned into a [`SystemHint`]. Pure; built and tested on every
//! system.
//!
//! The hint is the system's own opinion (from its active probes, NCSI): the Windows backend
//! reads it on a thread of its own and reports it beside netreach's route-based levels, which
//! never depend on it (`docs/windows.md`).

use std::fmt;

use serde::Serialize;

/// How far one family reaches, in the Network List Manager's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemReach {
    /// Not connected.
    Disconnected,
    /// Connected, no traffic seen.
    NoTraffic,
    /// The local subnet only.
    Subnet,
    /// A local network (beyond the subnet, not the internet).
    LocalNetwork,
    /// The internet (NCSI's probe answered).
    Internet,
}

impl SystemReach {
    /// The name used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SystemReach::Disconnected => "disconnected",
            SystemReach::NoTraffic => "no_traffic",
            SystemReach::Subnet => "subnet",
            SystemReach::LocalNetwork => "local_network",
            SystemReach::Internet => "internet",
        }
    }
}

impl fmt::Display for SystemReach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Network List Manager's view: reach per family and whether the connection is metered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct SystemHint {
    /// IPv4.
    pub ipv4: SystemReach,
    /// IPv6.
    pub ipv6: SystemReach,
    /// The connection costs by the byte or is near or over its limit (`NLM_CONNECTION_COST`
    /// fixed, variable, over or approaching the data limit, roaming); `None` when the cost is
    /// unknown or could not be read.
    pub metered: Option<bool>,
}

/// `NLM_CONNECTIVITY` bits.
const V4_NOTRAFFIC: i32 = 0x1;
const V6_NOTRAFFIC: i32 = 0x2;
const V4_SUBNET: i32 = 0x10;
const V4_LOCAL: i32 = 0x20;
const V4_INTERNET: i32 = 0x40;
const V6_SUBNET: i32 = 0x100;
const V6_LOCAL: i32 = 0x200;
const V6_INTERNET: i32 = 0x400;

/// `NLM_CONNECTION_COST` bits.
const COST_UNRESTRICTED: u32 = 0x1;
const COST_FIXED: u32 = 0x2;
const COST_VARIABLE: u32 = 0x4;
const COST_OVERDATALIMIT: u32 = 0x1_0000;
const COST_ROAMING: u32 = 0x4_0000;
const COST_APPROACHINGDATALIMIT: u32 = 0x8_0000;

impl SystemHint {
    /// From `INetworkListManager::GetConnectivity`'s bits and the cost bits (`None`: not read).
    /// Unknown bits are ignored; the highest reach a family's bits name wins.
    ///
    /// ```
    /// use netreach_core::nlm::{SystemHint, SystemReach};
    /// let h = SystemHint::from_raw(0x40 | 0x2, Some(0x1));
    /// assert_eq!((h.ipv4, h.ipv6, h.metered), (SystemReach::Internet, SystemReach::NoTraffic, Some(false)));
    /// ```
    pub fn from_raw(connectivity: i32, cost: Option<u32>) -> SystemHint {
        let reach = |notraffic, subnet, local, internet| {
            if connectivity & internet != 0 {
                SystemReach::Internet
            } else if connectivity & local != 0 {
                SystemReach::LocalNetwork
            } else if connectivity & subnet != 0 {
                SystemReach::Subnet
            } else if connectivity & notraffic != 0 {
                SystemReach::NoTraffic
            } else {
                SystemReach::Disconnected
            }
        };
        let metered = cost.and_then(|c| {
            if c & (COST_FIXED
                | COST_VARIABLE
                | COST_OVERDATALIMIT
                | COST_ROAMING
                | COST_APPROACHINGDATALIMIT)
                != 0
            {
                Some(true)
            } else if c & COST_UNRESTRICTED != 0 {
                Some(false)
            } else {
                None
            }
        });
        SystemHint {
            ipv4: reach(V4_NOTRAFFIC, V4_SUBNET, V4_LOCAL, V4_INTERNET),
            ipv6: reach(V6_NOTRAFFIC, V6_SUBNET, V6_LOCAL, V6_INTERNET),
            metered,
        }
    }
}

impl fmt::Display for SystemHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ipv4 {}, ipv6 {}", self.ipv4, self.ipv6)?;
        match self.metered {
            Some(true) => f.write_str(", metered"),
            Some(false) => f.write_str(", not metered"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_takes_its_highest_bit() {
        let h = SystemHint::from_raw(V4_NOTRAFFIC | V4_SUBNET | V4_LOCAL, None);
        assert_eq!(h.ipv4, SystemReach::LocalNetwork);
        assert_eq!(h.ipv6, SystemReach::Disconnected);
        let h = SystemHint::from_raw(V6_SUBNET | V6_INTERNET, None);
        assert_eq!(
            (h.ipv4, h.ipv6),
            (SystemReach::Disconnected, SystemReach::Internet)
        );
        assert_eq!(
            SystemHint::from_raw(0, None).to_string(),
            "ipv4 disconnected, ipv6 disconnected"
        );
    }

    #[test]
    fn cost_bits_say_metered_or_not() {
        let m = |c| SystemHint::from_raw(V4_INTERNET, c).metered;
        assert_eq!(m(None), None);
        assert_eq!(m(Some(0)), None);
        assert_eq!(m(Some(COST_UNRESTRICTED)), Some(false));
        assert_eq!(m(Some(COST_FIXED)), Some(true));
        assert_eq!(m(Some(COST_UNRESTRICTED | COST_ROAMING)), Some(true));
        assert_eq!(
            m(Some(COST_VARIABLE | COST_APPROACHINGDATALIMIT)),
            Some(true)
        );
        assert_eq!(m(Some(COST_OVERDATALIMIT)), Some(true));
    }

    #[test]
    fn unknown_bits_are_ignored() {
        let h = SystemHint::from_raw(i32::MIN | 0x8 | V4_INTERNET, Some(u32::MAX));
        assert_eq!(h.ipv4, SystemReach::Internet);
        assert_eq!(h.metered, Some(true));
        let _ = SystemHint::from_raw(-1, Some(0x8000_0000));
    }
}
