//! Operating-system backends, chosen once here with `cfg`.
//!
//! Linux has the rtnetlink backend. Other systems get an "unsupported" backend that compiles
//! and returns [`crate::Error`] at run time, so code using netreach builds everywhere.

#[cfg(target_os = "linux")]
pub(crate) mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux as imp;
