//! The Linux backends: rtnetlink notifications or polling dumps, network namespaces, the
//! wake-up descriptor and sysfs medium hints.
//!
//! Everything here goes through `rustix` and `netlink-sys`, whose safe wrappers cover every
//! system call netreach needs, so this crate has no `unsafe` at all.

mod backend;
pub(crate) mod netlink;
pub(crate) mod netns;
pub(crate) mod wake;

pub(crate) use backend::open;
pub(crate) use wake::Wake as Waker;
