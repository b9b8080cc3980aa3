//! The Linux backend: network namespaces, the rtnetlink socket, and the wake-up descriptor.
//!
//! Everything here goes through `rustix` and `netlink-sys`, whose safe wrappers cover every
//! system call netreach needs, so this crate has no `unsafe` at all.

pub(crate) mod netlink;
pub(crate) mod netns;
pub(crate) mod wake;
