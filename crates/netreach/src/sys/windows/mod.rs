//! The Windows backend: IP Helper for the model and route lookups, the Network List Manager for
//! the system's connectivity hint. See `docs/windows.md` for what it reads and how it was tested.
//!
//! - `iphlp`: the IP Helper calls (tables, notifications, `GetBestRoute2`), the only `unsafe`
//!   here besides the COM calls of `nlm`;
//! - `backend`: the [`crate::sys::Backend`], notified or polled;
//! - `lookup`: `GetBestRoute2`, and the core's longest-prefix match where it cannot answer;
//! - `nlm`: the Network List Manager's thread and COM apartment;
//! - `wake`: how the driver sleeps and what wakes it.
//!
//! The rows become the model in the core (`netreach_core::iphlp`), where they are tested on
//! every system.

mod backend;
// The system calls: the only modules of the crate where `unsafe` is allowed, every block
// with a `// SAFETY:` comment (checked by clippy).
#[allow(unsafe_code)]
#[warn(clippy::undocumented_unsafe_blocks)]
mod iphlp;
pub(crate) mod lookup;
#[allow(unsafe_code)]
#[warn(clippy::undocumented_unsafe_blocks)]
mod nlm;
mod wake;

pub(crate) use backend::open;
pub(crate) use wake::Waker;

/// Windows has no network namespaces: only [`crate::Netns::Current`] works, which never gets
/// here.
pub(crate) mod netns {
    use std::fs::File;
    use std::path::Path;

    use crate::Error;

    pub(crate) fn open(_path: &Path, _name: &str) -> Result<File, Error> {
        Err(Error::Unsupported {
            what: "network namespaces",
        })
    }

    pub(crate) fn enter(_file: &File, _path: &Path) -> Result<(), Error> {
        Err(Error::Unsupported {
            what: "network namespaces",
        })
    }
}
