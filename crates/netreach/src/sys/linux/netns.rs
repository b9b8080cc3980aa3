//! Entering a network namespace (`setns(2)`) on the current thread.

use std::fs::File;
use std::path::Path;

use rustix::io::Errno;
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use crate::Error;

/// Moves the calling thread into the network namespace of `file`. Only ever called on a
/// helper thread that exists for that purpose.
pub(crate) fn enter(file: &File, path: &Path) -> Result<(), Error> {
    use std::os::fd::AsFd;
    move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network)).map_err(|e| match e {
        Errno::INVAL => Error::NotANamespace {
            path: path.to_owned(),
        },
        Errno::PERM | Errno::ACCESS => Error::PermissionDenied {
            operation: "enter the network namespace (setns needs CAP_SYS_ADMIN)",
            source: e.into(),
        },
        e => Error::socket("setns", e),
    })
}
