//! The backend of systems netreach does not support yet: it compiles, and every constructor
//! returns [`Error::Unsupported`], so that code using netreach builds everywhere.

use crate::sys::{Backend, BackendKind, DumpHook};
use crate::{Error, Netns};

/// No wake-up descriptor here.
#[derive(Debug)]
pub(crate) struct Waker(());

impl Waker {
    pub(crate) fn new() -> Result<Waker, Error> {
        Err(Error::Unsupported {
            what: "monitoring the network",
        })
    }

    pub(crate) fn wake(&self) {}
}

pub(crate) fn open(
    _kind: BackendKind,
    _netns: &Netns,
    _rcvbuf: usize,
    _hook: Option<DumpHook>,
) -> Result<(Box<dyn Backend>, netreach_core::Snapshot), Error> {
    Err(Error::Unsupported {
        what: "monitoring the network",
    })
}

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
