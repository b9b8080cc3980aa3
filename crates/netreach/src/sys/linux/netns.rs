//! Opening a network namespace file, checked, and entering it (`setns(2)`) on the current
//! thread.
//!
//! The path comes from the user (`--netns PATH`), so opening it must neither block nor have
//! side effects: a FIFO would block a plain `open` until a writer came, and a terminal would
//! become the controlling one. It is opened `O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY`, then
//! checked with `fstat` and `fstatfs`: a namespace file is a regular file on nsfs. Kernels
//! before 3.19 kept namespace files on procfs; they are not supported.

use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use crate::Error;
use crate::error::{FileKind, PathReason};

/// `NSFS_MAGIC` from `<linux/magic.h>`: the file system of namespace files.
const NSFS_MAGIC: u64 = 0x6e73_6673;

/// Opens the namespace file at `path` (of the namespace the user called `name`) and checks
/// that it is one. A network namespace of the wrong type passes; [`enter`] rejects it.
pub(crate) fn open(path: &Path, name: &str) -> Result<File, Error> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| open_error(path, name, e))?;
    let examine = |e: Errno| invalid(path, PathReason::Other, e);
    let kind = FileType::from_raw_mode(rustix::fs::fstat(&fd).map_err(examine)?.st_mode);
    if kind != FileType::RegularFile {
        return Err(not_a_namespace(path, kind));
    }
    // The field's integer type differs between architectures; the magic fits them all.
    let fs = rustix::fs::fstatfs(&fd).map_err(examine)?.f_type as u64;
    if fs != NSFS_MAGIC {
        return Err(not_a_namespace(path, FileType::RegularFile));
    }
    Ok(File::from(fd))
}

/// Moves the calling thread into the network namespace of `file`. Only ever called on a
/// helper thread that exists for that purpose.
pub(crate) fn enter(file: &File, path: &Path) -> Result<(), Error> {
    use std::os::fd::AsFd;
    move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network)).map_err(|e| match e {
        // `open` saw an nsfs file, so the kernel's refusal means another type of namespace.
        Errno::INVAL => Error::NotANamespace {
            path: path.to_owned(),
            kind: FileKind::OtherNamespace,
        },
        Errno::PERM | Errno::ACCESS => Error::PermissionDenied {
            operation: "enter the network namespace (setns needs CAP_SYS_ADMIN)",
            source: e.into(),
        },
        e => Error::socket("setns", e),
    })
}

/// The typed error for a failed `open(2)` of a namespace path.
fn open_error(path: &Path, name: &str, e: Errno) -> Error {
    match e {
        Errno::NOENT => Error::NamespaceNotFound {
            name: name.to_owned(),
            path: path.to_owned(),
        },
        Errno::PERM | Errno::ACCESS => Error::PermissionDenied {
            operation: "open the namespace file",
            source: e.into(),
        },
        Errno::NAMETOOLONG => invalid(path, PathReason::TooLong, e),
        Errno::NOTDIR => invalid(path, PathReason::NotADirectory, e),
        Errno::LOOP => invalid(path, PathReason::SymlinkLoop, e),
        Errno::INVAL if path.as_os_str().as_bytes().contains(&0) => {
            invalid(path, PathReason::NulByte, e)
        }
        // A socket cannot be opened at all (`ENXIO`), nor can a device without a driver: say
        // what the file is when `stat` can tell.
        e => match rustix::fs::stat(path) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile => {
                not_a_namespace(path, FileType::from_raw_mode(st.st_mode))
            }
            _ => invalid(path, PathReason::Other, e),
        },
    }
}

fn invalid(path: &Path, reason: PathReason, e: Errno) -> Error {
    Error::InvalidNamespacePath {
        path: path.to_owned(),
        reason,
        source: e.into(),
    }
}

fn not_a_namespace(path: &Path, kind: FileType) -> Error {
    let kind = match kind {
        FileType::RegularFile => FileKind::RegularFile,
        FileType::Directory => FileKind::Directory,
        FileType::Fifo => FileKind::Fifo,
        FileType::Socket => FileKind::Socket,
        FileType::CharacterDevice => FileKind::CharDevice,
        FileType::BlockDevice => FileKind::BlockDevice,
        // `open` and `stat` follow symbolic links, so none is seen here.
        _ => FileKind::Unknown,
    };
    Error::NotANamespace {
        path: path.to_owned(),
        kind,
    }
}
