//! What the user tells the connectivity rules: interfaces to ignore, interfaces that are metered,
//! and the media the glue learned from sysfs.
//!
//! Interface names are matched with a small glob ([`Pattern`]: `*` and `?` only), the same shape
//! NetworkManager's `unmanaged-devices=interface-name:veth*` and systemd's `Name=` use, so users
//! can copy what they already have.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use super::medium::Medium;
use crate::model::Interface;

/// An interface-name pattern: `*` matches any run of characters (also none), `?` exactly one,
/// anything else itself. A pattern that exists is valid (see [`PatternError`]).
///
/// # Examples
///
/// ```
/// use netreach_core::Pattern;
///
/// let p: Pattern = "veth*".parse()?;
/// assert!(p.matches("veth1a2b"));
/// assert!(!p.matches("eth0"));
/// assert!("wwan?".parse::<Pattern>()?.matches("wwan0"));
/// # Ok::<(), netreach_core::PatternError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pattern {
    text: String,
}

/// Why a string is not an interface-name [`Pattern`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// The pattern is empty. Use `*` to match every interface.
    #[error("empty interface pattern (use * to match every interface)")]
    Empty,
    /// The pattern holds a character no interface name can hold (`/`, `:`, whitespace or a
    /// control character), so it could never match. Remove the character.
    #[error("interface pattern {pattern:?} holds {character:?}, which no interface name holds")]
    InvalidCharacter {
        /// The pattern as given.
        pattern: String,
        /// The offending character.
        character: char,
    },
}

impl Pattern {
    /// Checks and wraps a pattern.
    ///
    /// # Errors
    ///
    /// [`PatternError::Empty`] for `""`, [`PatternError::InvalidCharacter`] for a character the
    /// kernel refuses in interface names.
    pub fn new(text: &str) -> Result<Pattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if let Some(character) = text
            .chars()
            .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
        {
            return Err(PatternError::InvalidCharacter {
                pattern: text.to_owned(),
                character,
            });
        }
        Ok(Pattern {
            text: text.to_owned(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `name` matches the whole pattern. Case-sensitive, like interface names.
    pub fn matches(&self, name: &str) -> bool {
        let pat: Vec<char> = self.text.chars().collect();
        let name: Vec<char> = name.chars().collect();
        glob_match(&pat, &name)
    }
}

/// Iterative glob matching with one backtrack point (the last `*`): linear memory, no
/// recursion, O(pattern × name) at worst.
fn glob_match(pat: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was, and how much of the name it has swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = name.get(n) {
        match pat.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&q) if q == '?' || q == c => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    star = Some((sp, sn + 1));
                    p = sp + 1;
                    n = sn + 1;
                }
                None => return false,
            },
        }
    }
    pat.get(p..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

impl FromStr for Pattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Pattern, PatternError> {
        Pattern::new(s)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Settings of the connectivity rules.
///
/// The default excludes nothing, marks nothing metered by name, counts cellular as metered and
/// has no medium hints.
///
/// # Examples
///
/// ```
/// use netreach_core::{ConnectivityConfig, Medium};
///
/// let mut config = ConnectivityConfig::new()
///     .with_excluded("veth*".parse()?)
///     .with_excluded("docker*".parse()?)
///     .with_metered("usb?".parse()?);
/// // Filled by the glue from /sys/class/net/wwan0/uevent.
/// config.set_medium_hint(4, Some(Medium::Cellular));
/// assert!(config.is_excluded("docker0"));
/// let only = ConnectivityConfig::new().with_only("eth0".parse()?);
/// assert!(only.is_excluded("wlan0") && !only.is_excluded("eth0"));
/// assert_eq!(config.medium_hint(4), Some(Medium::Cellular));
/// # Ok::<(), netreach_core::PatternError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectivityConfig {
    excluded: Vec<Pattern>,
    only: Vec<Pattern>,
    metered: Vec<Pattern>,
    cellular_is_metered: bool,
    medium_hints: BTreeMap<u32, Medium>,
}

impl ConnectivityConfig {
    /// The default configuration.
    pub fn new() -> ConnectivityConfig {
        ConnectivityConfig {
            excluded: Vec::new(),
            only: Vec::new(),
            metered: Vec::new(),
            cellular_is_metered: true,
            medium_hints: BTreeMap::new(),
        }
    }

    /// Also ignore interfaces whose name matches `pattern`, entirely: they give no level, are
    /// never primary, and their routes and addresses do not count.
    pub fn with_excluded(mut self, pattern: Pattern) -> ConnectivityConfig {
        self.excluded.push(pattern);
        self
    }

    /// Consider only interfaces whose name matches `pattern` (or any other pattern given this
    /// way); with none given, every interface that is not excluded counts. This is what
    /// `wait-online --interface NAME` uses.
    pub fn with_only(mut self, pattern: Pattern) -> ConnectivityConfig {
        self.only.push(pattern);
        self
    }

    /// Also treat a primary interface whose name matches `pattern` as metered.
    pub fn with_metered(mut self, pattern: Pattern) -> ConnectivityConfig {
        self.metered.push(pattern);
        self
    }

    /// Whether a cellular primary interface is metered (default: yes).
    pub fn with_cellular_metered(mut self, metered: bool) -> ConnectivityConfig {
        self.cellular_is_metered = metered;
        self
    }

    /// Records (`Some`) or forgets (`None`) what sysfs says about interface `index`; a hint
    /// overrides the medium its link kind implies. See [`super::medium_hint_from_sysfs`].
    pub fn set_medium_hint(&mut self, index: u32, medium: Option<Medium>) {
        match medium {
            Some(m) => self.medium_hints.insert(index, m),
            None => self.medium_hints.remove(&index),
        };
    }

    /// The exclusion patterns, in the order given.
    pub fn excluded(&self) -> &[Pattern] {
        &self.excluded
    }

    /// The metered-name patterns, in the order given.
    pub fn metered(&self) -> &[Pattern] {
        &self.metered
    }

    /// Whether a cellular primary interface is metered.
    pub fn cellular_is_metered(&self) -> bool {
        self.cellular_is_metered
    }

    /// The sysfs hint for interface `index`, if any.
    pub fn medium_hint(&self, index: u32) -> Option<Medium> {
        self.medium_hints.get(&index).copied()
    }

    /// All sysfs hints, by interface index.
    pub fn medium_hints(&self) -> &BTreeMap<u32, Medium> {
        &self.medium_hints
    }

    /// The "only these interfaces" patterns; empty means all.
    pub fn only(&self) -> &[Pattern] {
        &self.only
    }

    /// Whether an interface of this name is ignored: it matches an exclusion pattern, or
    /// "only" patterns are given and it matches none of them.
    pub fn is_excluded(&self, name: &str) -> bool {
        self.excluded.iter().any(|p| p.matches(name))
            || (!self.only.is_empty() && !self.only.iter().any(|p| p.matches(name)))
    }

    /// The medium of an interface: its sysfs hint, else what its link kind implies.
    pub fn medium_of(&self, interface: &Interface) -> Medium {
        self.medium_hint(interface.index)
            .unwrap_or_else(|| Medium::from_link_kind(&interface.kind))
    }

    /// Whether traffic through this interface is metered: its name matches a metered pattern,
    /// or its medium is cellular and cellular counts as metered.
    pub fn is_metered(&self, interface: &Interface) -> bool {
        self.metered.iter().any(|p| p.matches(&interface.name))
            || (self.cellular_is_metered && self.medium_of(interface) == Medium::Cellular)
    }

    /// Drops the hints of interfaces for which `keep` is false.
    pub(crate) fn retain_hints(&mut self, mut keep: impl FnMut(u32) -> bool) {
        self.medium_hints.retain(|index, _| keep(*index));
    }
}

impl Default for ConnectivityConfig {
    fn default() -> ConnectivityConfig {
        ConnectivityConfig::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LinkKind;

    #[test]
    fn glob_matching() {
        let cases = [
            ("veth*", "veth", true),
            ("veth*", "veth0", true),
            ("veth*", "eth0", false),
            ("*", "", true),
            ("*", "anything", true),
            ("eth?", "eth0", true),
            ("eth?", "eth", false),
            ("eth?", "eth10", false),
            ("*0", "eth0", true),
            ("*0", "eth01", false),
            ("d*r*", "docker0", true),
            ("d*r*", "dummy", false),
            ("*a*b", "aXbXab", true),
            ("*a*b", "aXbXa", false),
            ("a**b", "ab", true),
            ("?*?", "a", false),
            ("?*?", "ab", true),
            ("br-*", "br-1f2e", true),
            ("eth0", "eth0", true),
            ("eth0", "Eth0", false),
            ("wlp*s?", "wlp2s0", true),
            ("é*", "éth0", true),
        ];
        for (pat, name, want) in cases {
            let p = Pattern::new(pat).unwrap();
            assert_eq!(p.matches(name), want, "{pat} ~ {name}");
        }
    }

    #[test]
    fn pathological_patterns_stay_cheap() {
        let p = Pattern::new(&"*a".repeat(50)).unwrap();
        assert!(!p.matches(&"a".repeat(49)));
        assert!(p.matches(&"a".repeat(60)));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        assert_eq!(Pattern::new(""), Err(PatternError::Empty));
        for (text, bad) in [("eth 0", ' '), ("a/b", '/'), ("eth0:1", ':'), ("x\n", '\n')] {
            assert_eq!(
                text.parse::<Pattern>(),
                Err(PatternError::InvalidCharacter {
                    pattern: text.into(),
                    character: bad
                })
            );
        }
        assert!(
            PatternError::Empty
                .to_string()
                .contains("use * to match every interface")
        );
    }

    #[test]
    fn medium_and_metered() {
        let mut eth = Interface::new(2, "eth0", LinkKind::Ethernet);
        let mut config = ConnectivityConfig::new();
        assert_eq!(config.medium_of(&eth), Medium::Ethernet);
        assert!(!config.is_metered(&eth));
        config.set_medium_hint(2, Some(Medium::Cellular));
        assert_eq!(config.medium_of(&eth), Medium::Cellular);
        assert!(config.is_metered(&eth));
        config = config.with_cellular_metered(false);
        assert!(!config.is_metered(&eth));
        config.set_medium_hint(2, None);
        config = config.with_metered(Pattern::new("usb*").unwrap());
        assert!(!config.is_metered(&eth));
        eth.name = "usb0".into();
        assert!(config.is_metered(&eth));
        assert_eq!(
            serde_json::to_string(config.metered()).unwrap(),
            r#"["usb*"]"#
        );
    }
}
