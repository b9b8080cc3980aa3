//! Address flags that matter for connectivity, kept as a small bit set.

use std::fmt;

use serde::{Serialize, Serializer};

/// The subset of `IFA_F_*` flags netreach keeps. Serialises as a list of names.
///
/// Lifetimes and flags that only describe bookkeeping (`permanent`, `mcautojoin`, ...) are not
/// kept: a kernel re-announcement that only refreshes them is not a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct AddressFlags(u32);

impl AddressFlags {
    /// IPv4 secondary address (the kernel's bit is shared with IPv6 `temporary`).
    pub const SECONDARY: AddressFlags = AddressFlags(1 << 0);
    /// IPv6 temporary (privacy) address.
    pub const TEMPORARY: AddressFlags = AddressFlags(1 << 1);
    /// Duplicate address detection is still running: not usable as a source yet.
    pub const TENTATIVE: AddressFlags = AddressFlags(1 << 2);
    /// Preferred lifetime expired: usable, but not for new connections.
    pub const DEPRECATED: AddressFlags = AddressFlags(1 << 3);
    /// Duplicate address detection failed: never usable.
    pub const DADFAILED: AddressFlags = AddressFlags(1 << 4);
    /// No prefix route was installed for this address.
    pub const NOPREFIXROUTE: AddressFlags = AddressFlags(1 << 5);
    /// Optimistic DAD: usable while DAD runs.
    pub const OPTIMISTIC: AddressFlags = AddressFlags(1 << 6);

    const NAMES: [(AddressFlags, &'static str); 7] = [
        (AddressFlags::SECONDARY, "secondary"),
        (AddressFlags::TEMPORARY, "temporary"),
        (AddressFlags::TENTATIVE, "tentative"),
        (AddressFlags::DEPRECATED, "deprecated"),
        (AddressFlags::DADFAILED, "dadfailed"),
        (AddressFlags::NOPREFIXROUTE, "noprefixroute"),
        (AddressFlags::OPTIMISTIC, "optimistic"),
    ];

    /// No flags.
    pub const fn empty() -> AddressFlags {
        AddressFlags(0)
    }

    /// True when every flag of `other` is set here.
    pub const fn contains(self, other: AddressFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets or clears the flags of `other`.
    pub fn set(&mut self, other: AddressFlags, on: bool) {
        if on {
            self.0 |= other.0
        } else {
            self.0 &= !other.0
        }
    }

    /// The names of the flags set, in a fixed order (`tentative`, `dadfailed`, ...).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        AddressFlags::NAMES
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }

    /// Builds the set from the kernel's `IFA_F_*` bits and the address family.
    pub fn from_kernel(bits: u32, ipv6: bool) -> AddressFlags {
        let mut f = AddressFlags::empty();
        // IFA_F_SECONDARY and IFA_F_TEMPORARY are the same bit (0x01).
        if bits & 0x01 != 0 {
            f.set(
                if ipv6 {
                    AddressFlags::TEMPORARY
                } else {
                    AddressFlags::SECONDARY
                },
                true,
            );
        }
        f.set(AddressFlags::OPTIMISTIC, bits & 0x04 != 0);
        f.set(AddressFlags::DADFAILED, bits & 0x08 != 0);
        f.set(AddressFlags::DEPRECATED, bits & 0x20 != 0);
        f.set(AddressFlags::TENTATIVE, bits & 0x40 != 0);
        f.set(AddressFlags::NOPREFIXROUTE, bits & 0x200 != 0);
        f
    }

    /// `" tentative dadfailed"`-style suffix for human output (empty when no flag is set).
    pub fn display_suffix(self) -> String {
        self.names().map(|n| format!(" {n}")).collect()
    }
}

impl std::ops::BitOr for AddressFlags {
    type Output = AddressFlags;
    fn bitor(self, rhs: AddressFlags) -> AddressFlags {
        AddressFlags(self.0 | rhs.0)
    }
}

impl fmt::Display for AddressFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.names().collect();
        f.write_str(&names.join(" "))
    }
}

impl Serialize for AddressFlags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_bit_reads_by_family() {
        assert_eq!(
            AddressFlags::from_kernel(0x01, false),
            AddressFlags::SECONDARY
        );
        assert_eq!(
            AddressFlags::from_kernel(0x01, true),
            AddressFlags::TEMPORARY
        );
    }

    #[test]
    fn bookkeeping_bits_are_dropped() {
        // permanent (0x80) and mcautojoin (0x400) carry no connectivity information.
        assert_eq!(
            AddressFlags::from_kernel(0x80 | 0x400, true),
            AddressFlags::empty()
        );
        let f = AddressFlags::from_kernel(0x40 | 0x200, true);
        assert_eq!(
            f.names().collect::<Vec<_>>(),
            ["tentative", "noprefixroute"]
        );
    }
}
