//! Giving back the pages of this program that only its start-up used.
//!
//! A long-running command (`watch`, `wait-online`, `serve`) touches a good part of the
//! executable once while it starts: argument parsing, the first dump, the first lines it
//! prints. The kernel maps those pages into the process, and 64 KiB around each first touch
//! (fault-around), and they stay mapped, counted in its resident set, for as long as the
//! process lives: 4 to 5 MiB of a 13 MB binary for an idle `netreach watch`, much more than
//! its own memory (about 600 KiB of heap and stacks). Once started, the command asks the
//! kernel to unmap what is in the executable's read-only segments (`MADV_DONTNEED`); the page
//! cache keeps them, and what the command needs again comes back on first touch, from memory
//! (or from the disk, if memory ran short in between and the kernel reclaimed them: the point
//! of giving them back).
//!
//! Only pages that are the file's own are given back: the read-only segments are never written
//! by the program, and a page that was written anyway (a debugger's breakpoint, a uprobe)
//! is a private copy, which `/proc/self/pagemap` tells apart, and is left alone. Writable
//! segments, the heap and the shared libraries are never touched. All of it is best effort:
//! where something cannot be read, nothing is given back.

/// Unmaps the executable's read-only pages that are still the file's own; returns how many
/// bytes were given back. Call it when start-up is over, and again when a long quiet spell
/// follows work that brought code back (`watch`, after a change).
#[cfg(target_os = "linux")]
pub fn release_startup_pages() -> usize {
    let page = rustix::param::page_size();
    let Ok(pagemap) = std::fs::File::open("/proc/self/pagemap") else {
        return 0;
    };
    let mut released = 0;
    for (start, end) in imp::read_only_segments(page) {
        for (run, len) in imp::file_page_runs(&pagemap, start, end, page) {
            if imp::dont_need(run, len) {
                released += len;
            }
        }
    }
    released
}

/// Elsewhere there is nothing to give back.
#[cfg(not(target_os = "linux"))]
pub fn release_startup_pages() -> usize {
    0
}

#[cfg(target_os = "linux")]
mod imp {
    use std::ffi::c_void;
    use std::os::unix::fs::FileExt;

    /// A `/proc/self/pagemap` entry: the page is present in memory...
    const PRESENT: u64 = 1 << 63;
    /// ...and is a page of the file (or shared memory), not a private copy.
    const FILE: u64 = 1 << 61;

    /// The read-only `PT_LOAD` segments of the object that holds this function, that is of
    /// the executable, as page-aligned `(start, end)` addresses rounded inwards (a page shared
    /// with a writable segment is never included).
    pub(super) fn read_only_segments(page: usize) -> Vec<(usize, usize)> {
        struct Found {
            me: usize,
            page: usize,
            segments: Vec<(usize, usize)>,
        }

        unsafe extern "C" fn each(
            info: *mut libc::dl_phdr_info,
            _size: libc::size_t,
            data: *mut c_void,
        ) -> libc::c_int {
            // SAFETY: `data` is the `Found` that `read_only_segments` passed, borrowed
            // mutably by nothing else during the call; `info` points to a valid
            // `dl_phdr_info` for the duration of the callback (dl_iterate_phdr(3)), whose
            // `dlpi_phdr` holds `dlpi_phnum` program headers.
            let (found, info) = unsafe { (&mut *data.cast::<Found>(), &*info) };
            let headers: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
                &[]
            } else {
                // SAFETY: see above: `dlpi_phnum` headers at `dlpi_phdr`, valid while the
                // callback runs; the slice does not outlive it.
                unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
            };
            let base = info.dlpi_addr as usize;
            let span = |h: &libc::Elf64_Phdr| {
                let start = base.wrapping_add(h.p_vaddr as usize);
                (start, start.wrapping_add(h.p_memsz as usize))
            };
            let loads = || headers.iter().filter(|h| h.p_type == libc::PT_LOAD);
            let holds_me = loads().any(|h| {
                let (start, end) = span(h);
                (start..end).contains(&found.me)
            });
            if !holds_me {
                return 0; // not the executable: go on
            }
            for h in loads().filter(|h| h.p_flags & libc::PF_W == 0) {
                let (start, end) = span(h);
                let start = start.next_multiple_of(found.page);
                let end = end - end % found.page;
                if start < end {
                    found.segments.push((start, end));
                }
            }
            1 // found: stop
        }

        let mut found = Found {
            me: read_only_segments as *const () as usize,
            page,
            segments: Vec::new(),
        };
        // SAFETY: `each` has the signature dl_iterate_phdr expects, does not unwind, and
        // reads `data` as the `Found` passed here, which outlives the call.
        unsafe { libc::dl_iterate_phdr(Some(each), (&raw mut found).cast()) };
        found.segments
    }

    /// The runs of pages in `[start, end)` that are present and the file's own, as
    /// `(address, length)`: the ones that can be given back without losing anything.
    pub(super) fn file_page_runs(
        pagemap: &std::fs::File,
        start: usize,
        end: usize,
        page: usize,
    ) -> Vec<(usize, usize)> {
        let pages = (end - start) / page;
        let mut raw = vec![0u8; pages * 8];
        let offset = (start / page) as u64 * 8;
        if pagemap.read_exact_at(&mut raw, offset).is_err() {
            return Vec::new();
        }
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (i, entry) in raw.chunks_exact(8).enumerate() {
            let entry = u64::from_ne_bytes(entry.try_into().expect("chunks of 8"));
            if entry & (PRESENT | FILE) != PRESENT | FILE {
                continue;
            }
            let at = start + i * page;
            match runs.last_mut() {
                Some((run, len)) if *run + *len == at => *len += page,
                _ => runs.push((at, page)),
            }
        }
        runs
    }

    /// `MADV_DONTNEED` on `len` bytes at `at`; whether the kernel took it.
    pub(super) fn dont_need(at: usize, len: usize) -> bool {
        // SAFETY: `[at, at + len)` lies inside a read-only segment of the executable (whole
        // pages), and each of its pages was, when pagemap was read, the file's own page, not a
        // private copy. Dropping the mapping of a file page of a private mapping changes no
        // byte anyone reads: the next access maps the same page of the file again. Nothing
        // is unmapped (the mapping stays), and the program never writes these segments.
        unsafe { rustix::mm::madvise(at as *mut c_void, len, rustix::mm::Advice::LinuxDontNeed) }
            .is_ok()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_executables_read_only_segments_are_found_and_hold_this_code() {
        let page = rustix::param::page_size();
        let segments = imp::read_only_segments(page);
        let me =
            the_executables_read_only_segments_are_found_and_hold_this_code as *const () as usize;
        assert!(
            segments.iter().any(|&(s, e)| (s..e).contains(&me)),
            "{segments:x?} should hold {me:#x}"
        );
        assert!(
            segments
                .iter()
                .all(|&(s, e)| s % page == 0 && e % page == 0 && s < e)
        );
    }

    #[test]
    fn pages_given_back_leave_the_code_working() {
        // The test binary has run code and read constants: there are pages to give back.
        let released = release_startup_pages();
        assert!(released > 0, "nothing given back");
        assert_eq!(released % rustix::param::page_size(), 0);
        // The code and its constants come back on first use.
        let text = format!("{:?}", (1..=3).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(text, "[2, 4, 6]");
    }
}
