//! Shared memory: files in `/dev/shm` and shared mappings of files.
//!
//! [`Region`] is a `MAP_SHARED` mapping that other processes may be writing while we read
//! it. It hands out no `&[u8]` or `&mut [u8]`: memory is reached through bounds-checked
//! copies and aligned atomics, and raw pointers for callers that coordinate by themselves.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

use rustix::fs::{FallocateFlags, Mode, OFlags};
use rustix::io::Errno;
use rustix::mm::{MapFlags, MsyncFlags, ProtFlags};

/// Where POSIX shared memory lives on Linux: `shm_open("/NAME")` opens `/dev/shm/NAME`.
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// The size of a memory page.
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

/// Creates anonymous shared memory of `len` bytes (`memfd_create`), zero-filled and sealed
/// so that no holder of the descriptor can shrink or grow it or change its seals: a peer it
/// is passed to cannot truncate it under us (which would make our reads fault).
///
/// # References
/// - [`memfd_create(2)`](https://man7.org/linux/man-pages/man2/memfd_create.2.html)
/// - [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html), "File seals"
pub(crate) fn create_sealed(name: &str, len: u64) -> io::Result<OwnedFd> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    rustix::fs::ftruncate(&fd, len)?;
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
    Ok(fd)
}

/// Checks that `fd` (from a peer) is a regular file of exactly `len` bytes whose size and
/// seals can no longer change, so that a mapping of it cannot fault.
pub(crate) fn check_sealed(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    use rustix::fs::SealFlags;
    let stat = rustix::fs::fstat(fd)?;
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    if size != len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{size} bytes, not the {len} its header announces"),
        ));
    }
    let needed = SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL;
    if !rustix::fs::fcntl_get_seals(fd)?.contains(needed) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not sealed against shrinking, growing and unsealing",
        ));
    }
    Ok(())
}

/// Creates `/dev/shm/NAME` exclusively, read-write, with exactly `mode` (the umask does not
/// apply), as `shm_open(O_CREAT | O_EXCL)` does.
///
/// # References
/// - [`shm_open(3)`](https://man7.org/linux/man-pages/man3/shm_open.3.html)
pub(crate) fn create(name: &str, mode: u32) -> io::Result<OwnedFd> {
    let fd = rustix::fs::open(
        shm_path(name)?,
        OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    Ok(fd)
}

/// Opens the existing `/dev/shm/NAME`, read-write or read-only; never follows a symbolic
/// link, and never blocks: `/dev/shm` is writable by every user, and opening a FIFO planted
/// there would wait for a writer forever. Anything but a regular file is refused
/// ([`io::ErrorKind::InvalidData`]).
///
/// # References
/// - [`open(2)`](https://man7.org/linux/man-pages/man2/open.2.html), `O_NONBLOCK`
pub(crate) fn open(name: &str, writable: bool) -> io::Result<OwnedFd> {
    let access = if writable {
        OFlags::RDWR
    } else {
        OFlags::RDONLY
    };
    let fd = rustix::fs::open(
        shm_path(name)?,
        access | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    check_regular(fd.as_fd())?;
    Ok(fd)
}

/// Refuses (with [`io::ErrorKind::InvalidData`]) an open file that is not a regular file:
/// a FIFO, a device, a socket or a directory.
pub(crate) fn check_regular(fd: BorrowedFd<'_>) -> io::Result<()> {
    let stat = rustix::fs::fstat(fd)?;
    match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
        rustix::fs::FileType::RegularFile => Ok(()),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a regular file but a {other:?}"),
        )),
    }
}

/// The path of `/dev/shm/NAME`, for a name that is one path component.
pub(crate) fn shm_path(name: &str) -> io::Result<String> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{name}` cannot name a shared memory object"),
        ));
    }
    Ok(format!("{SHM_DIR}/{name}"))
}

/// Gives the file `len` bytes, allocated now: on tmpfs, running out of memory then fails
/// here with `ENOSPC` rather than later as a `SIGBUS` on first touch. Falls back to
/// `ftruncate` where the file system cannot allocate ahead.
///
/// # References
/// - [`fallocate(2)`](https://man7.org/linux/man-pages/man2/fallocate.2.html)
pub(crate) fn allocate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    match rustix::fs::fallocate(fd, FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(Errno::OPNOTSUPP) | Err(Errno::NOSYS) => Ok(rustix::fs::ftruncate(fd, len)?),
        Err(e) => Err(e.into()),
    }
}

/// A `#[repr(C)]` struct made only of `std::sync::atomic` integers (and arrays of them),
/// which [`Region::atomics`] may place over shared memory.
///
/// # Safety
///
/// The implementor must be `#[repr(C)]` (or transparent) with no field but atomic integers,
/// so that every bit pattern is a valid value and all access is atomic.
#[cfg_attr(all(loom, test), allow(dead_code))]
pub(crate) unsafe trait Atomics: Sync {}

/// A shared mapping of part of a file, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
}

// SAFETY: a `Region` is a pointer to a shared mapping, which any thread may use; every
// access through it is an atomic, a copy that tolerates concurrent writers, or goes through
// a raw pointer whose users take on the coordination themselves.
unsafe impl Send for Region {}
// SAFETY: as for `Send`: `&Region` offers only atomics and copies.
unsafe impl Sync for Region {}

impl Region {
    /// Maps `len` bytes of `fd` from `offset`, which must be a multiple of the page size,
    /// shared with every other mapping of the file; writable if `writable` (which needs a
    /// read-write `fd`).
    ///
    /// # References
    /// - [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html)
    pub(crate) fn map(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        writable: bool,
    ) -> io::Result<Region> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map zero bytes",
            ));
        }
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        // SAFETY: with a null address the kernel picks a fresh range, so the mapping
        // replaces no memory of ours; the result is only used through `Region`.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                MapFlags::SHARED,
                fd.as_fd(),
                offset,
            )
        }?;
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(Region { ptr, len, writable })
    }

    /// The mapped length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping may be written.
    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    /// The first mapped byte. Valid for `len()` bytes while `self` lives; writable only when
    /// `is_writable()`.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Whether `offset..offset + len` lies inside the mapping.
    #[inline]
    fn contains(&self, offset: usize, len: usize) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.len)
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`; `false` (and nothing copied) when
    /// the range is outside the mapping.
    ///
    /// Another process may be writing the range during the copy: the bytes are then some mix
    /// of old and new, which is why this is a copy into memory of our own and never a
    /// reference into the mapping.
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) -> bool {
        if !self.contains(offset, buf.len()) {
            return false;
        }
        // SAFETY: the source range is inside the live mapping (checked above), which is
        // readable; the destination is a valid `&mut [u8]` of that length. `copy` allows
        // overlap, in case the caller's buffer lies in the mapping itself (through the raw
        // pointer API). Concurrent writes by other processes make the copied bytes
        // unpredictable, never the copy unsound: it produces plain bytes, for which every
        // value is valid.
        unsafe {
            std::ptr::copy(self.ptr.as_ptr().add(offset), buf.as_mut_ptr(), buf.len());
        }
        true
    }

    /// Copies `data` to `offset`; `false` (and nothing written) when the range is outside the
    /// mapping or the mapping is read-only.
    pub(crate) fn write(&self, offset: usize, data: &[u8]) -> bool {
        if !self.writable || !self.contains(offset, data.len()) {
            return false;
        }
        // SAFETY: the destination range is inside the live, writable mapping (checked above),
        // and no Rust reference to its bytes exists (this type hands out none: only atomics,
        // whose interior mutability admits writes by others). The source is a valid slice;
        // `copy` allows overlap with it.
        unsafe {
            std::ptr::copy(data.as_ptr(), self.ptr.as_ptr().add(offset), data.len());
        }
        true
    }

    /// The `AtomicU32` at `offset`, when the mapping is writable, the offset is 4-aligned in
    /// memory and the word lies inside the mapping.
    #[inline]
    pub(crate) fn atomic_u32(&self, offset: usize) -> Option<&AtomicU32> {
        let ptr = self.atomic_ptr(offset, 4)?;
        // SAFETY: `ptr` is inside the live mapping for 4 bytes, 4-aligned, and writable
        // (`atomic_ptr` checked all three); any bit pattern is a valid `AtomicU32`; the
        // reference lives no longer than `&self`, so the mapping outlives it; and the memory
        // is only ever reached through atomics or raw pointers, never through `&[u8]`.
        Some(unsafe { &*ptr.cast::<AtomicU32>() })
    }

    /// The `AtomicU64` at `offset`, on the same terms as [`atomic_u32`](Self::atomic_u32)
    /// with 8-byte alignment.
    #[inline]
    pub(crate) fn atomic_u64(&self, offset: usize) -> Option<&AtomicU64> {
        let ptr = self.atomic_ptr(offset, 8)?;
        // SAFETY: as in `atomic_u32`, for 8 bytes at an 8-aligned address.
        Some(unsafe { &*ptr.cast::<AtomicU64>() })
    }

    /// The `T` at `offset`, on the same terms as [`atomic_u32`](Self::atomic_u32) with
    /// `T`'s size and alignment: a shared-memory state made of atomics.
    #[inline]
    #[cfg_attr(all(loom, test), allow(dead_code))]
    pub(crate) fn atomics<T: Atomics>(&self, offset: usize) -> Option<&T> {
        if !self.writable || !self.contains(offset, std::mem::size_of::<T>()) {
            return None;
        }
        let ptr = self.ptr.as_ptr().wrapping_add(offset);
        if ptr as usize % std::mem::align_of::<T>() != 0 {
            return None;
        }
        // SAFETY: `ptr` is inside the live, writable mapping for `size_of::<T>()` bytes and
        // aligned for `T` (checked above); `T: Atomics` promises that every bit pattern is a
        // valid `T` and that it is only ever changed through atomics, so other processes'
        // writes are no data race; the reference lives no longer than `&self`.
        Some(unsafe { &*ptr.cast::<T>() })
    }

    #[inline]
    fn atomic_ptr(&self, offset: usize, size: usize) -> Option<*mut u8> {
        if !self.writable || !self.contains(offset, size) {
            return None;
        }
        let ptr = self.ptr.as_ptr().wrapping_add(offset);
        (ptr as usize % size == 0).then_some(ptr)
    }

    /// Writes the pages holding `offset..offset + len` back to the file and waits for the
    /// write (`msync(MS_SYNC)`).
    ///
    /// # References
    /// - [`msync(2)`](https://man7.org/linux/man-pages/man2/msync.2.html)
    pub(crate) fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
        if !self.contains(offset, len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "range outside the mapping",
            ));
        }
        if len == 0 {
            return Ok(());
        }
        let page = page_size();
        let start = offset - offset % page;
        // The mapping itself starts on a page boundary, so `start` does too.
        let span = len + (offset - start);
        // SAFETY: `start..start + span` lies inside the live mapping (the range was checked
        // and `start` only moves back to the mapping's own page boundary); msync reads no
        // memory through Rust references.
        unsafe { rustix::mm::msync(self.ptr.as_ptr().add(start).cast(), span, MsyncFlags::SYNC) }?;
        Ok(())
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the range is the mapping made in `map`, unmapped only here; every reference
        // into it borrows `self`, so none outlives this call.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn unique(tag: &str) -> String {
        use std::sync::atomic::AtomicUsize;
        static N: AtomicUsize = AtomicUsize::new(0);
        format!(
            "procwire-unit-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    #[test]
    fn two_mappings_of_one_object_see_each_other() {
        let name = unique("two");
        let fd = create(&name, 0o600).unwrap();
        allocate(fd.as_fd(), 8192).unwrap();
        let a = Region::map(fd.as_fd(), 0, 8192, true).unwrap();
        let fd2 = open(&name, false).unwrap();
        let b = Region::map(fd2.as_fd(), 4096, 4096, false).unwrap();
        std::fs::remove_file(shm_path(&name).unwrap()).unwrap();

        assert!(a.write(4096 + 10, b"hello"));
        let mut buf = [0u8; 5];
        assert!(b.read(10, &mut buf));
        assert_eq!(&buf, b"hello");
        a.atomic_u32(4096 + 16).unwrap().store(7, Ordering::Release);
        assert!(b.read(16, &mut buf[..4]));
        assert_eq!(u32::from_ne_bytes(buf[..4].try_into().unwrap()), 7);

        assert!(!b.write(0, b"x"), "read-only");
        assert!(b.atomic_u32(0).is_none(), "read-only");
        assert!(a.atomic_u32(2).is_none(), "misaligned");
        assert!(a.atomic_u64(8190).is_none(), "past the end");
        assert!(!a.read(8190, &mut buf), "past the end");
        assert!(!a.read(usize::MAX, &mut buf), "overflow");
        a.sync(4097, 10).unwrap();
    }

    #[test]
    fn create_is_exclusive_and_names_are_checked() {
        let name = unique("excl");
        let _fd = create(&name, 0o600).unwrap();
        let e = create(&name, 0o600).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        std::fs::remove_file(shm_path(&name).unwrap()).unwrap();
        assert!(open("a/b", true).is_err());
        assert!(open("..", true).is_err());
    }
}
