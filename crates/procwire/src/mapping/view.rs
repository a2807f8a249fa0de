//! Views: a range of a mapping, mapped into this process.

use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Arc;

use super::MappingError;
use crate::sys::shm::Region;

/// A range of a [`Mapping`](super::Mapping) mapped into this process: the equivalent of
/// `MapViewOfFile`'s result. Unmapped when dropped (`UnmapViewOfFile`).
///
/// Other processes may write the memory at any moment, so a view never hands out a safe
/// `&[u8]`. It offers instead:
///
/// - copies: [`read_at`](Self::read_at), [`read_vec`](Self::read_vec),
///   [`write_at`](Self::write_at);
/// - aligned atomics at an offset: [`atomic_u32`](Self::atomic_u32),
///   [`atomic_u64`](Self::atomic_u64), for flags, counters and sequence numbers;
/// - raw access for callers who coordinate by themselves (say, under a
///   [`NamedMutex`](crate::sync::NamedMutex)): [`as_ptr`](Self::as_ptr) and the `unsafe`
///   [`as_slice`](Self::as_slice) and [`as_mut_slice`](Self::as_mut_slice).
///
/// Offsets of these methods count from the start of the view. A view does not borrow its
/// mapping: it stays valid after the [`Mapping`](super::Mapping) handle is dropped and even
/// after the name is removed, as on Windows and POSIX.
///
/// # Examples
///
/// ```no_run
/// use procwire::mapping::Mapping;
/// use std::sync::atomic::Ordering;
///
/// let mapping = Mapping::create(r"Local\Counters", 4096)?;
/// let view = mapping.view(0, 4096)?;
/// view.write_at(8, b"Message from the first process")?;
/// let hits = view.atomic_u64(0)?;
/// hits.fetch_add(1, Ordering::AcqRel);
/// let mut text = [0u8; 30];
/// view.read_at(8, &mut text)?;
/// # Ok::<(), procwire::mapping::MappingError>(())
/// ```
///
/// # The one hazard left
///
/// A process with write access to the mapping's file can shrink it (`ftruncate`). Touching
/// memory of a view past the file's new end then raises `SIGBUS`, which ends this process.
/// procwire never shrinks a mapping, but cannot stop another program that has write access:
/// grant write access only to programs you trust not to do that.
#[derive(Debug)]
pub struct View {
    region: Region,
    /// Where the view starts inside `region` (which starts on a page boundary).
    start: usize,
    len: usize,
    offset: u64,
    name: Arc<str>,
}

impl View {
    pub(crate) fn new(
        region: Region,
        start: usize,
        len: usize,
        offset: u64,
        name: Arc<str>,
    ) -> View {
        debug_assert!(start + len <= region.len());
        View {
            region,
            start,
            len,
            offset,
            name,
        }
    }

    /// The view's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the view is empty (views never are).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the view starts in the mapping.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether the view may be written.
    pub fn is_writable(&self) -> bool {
        self.region.is_writable()
    }

    /// The name of the mapping the view belongs to.
    pub fn mapping_name(&self) -> &str {
        &self.name
    }

    fn out_of_range(&self, offset: usize, len: usize) -> MappingError {
        MappingError::OutOfRange {
            name: self.name.to_string(),
            what: "view",
            offset: offset as u64,
            len: len as u64,
            size: self.len as u64,
        }
    }

    fn check(&self, offset: usize, len: usize) -> Result<usize, MappingError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(self.start + offset),
            _ => Err(self.out_of_range(offset, len)),
        }
    }

    fn read_only(&self, what: &str) -> MappingError {
        MappingError::NotPermitted {
            name: self.name.to_string(),
            detail: format!("{what} needs a writable view; this one is read-only"),
        }
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`.
    ///
    /// If another process writes the range meanwhile, `buf` gets some mix of old and new
    /// bytes; coordinate with a [`NamedMutex`](crate::sync::NamedMutex) or a sequence number
    /// when that matters.
    ///
    /// # Errors
    ///
    /// [`MappingError::OutOfRange`] when the range reaches past the end of the view.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), MappingError> {
        let at = self.check(offset, buf.len())?;
        if self.region.read(at, buf) {
            Ok(())
        } else {
            Err(self.out_of_range(offset, buf.len()))
        }
    }

    /// Copies `len` bytes from `offset` into a new vector.
    ///
    /// # Errors
    ///
    /// As [`read_at`](Self::read_at).
    pub fn read_vec(&self, offset: usize, len: usize) -> Result<Vec<u8>, MappingError> {
        self.check(offset, len)?;
        let mut buf = vec![0u8; len];
        self.read_at(offset, &mut buf)?;
        Ok(buf)
    }

    /// Copies `data` into the view at `offset`.
    ///
    /// # Errors
    ///
    /// [`MappingError::OutOfRange`] when the range reaches past the end of the view;
    /// [`MappingError::NotPermitted`] when the view is read-only.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), MappingError> {
        let at = self.check(offset, data.len())?;
        if !self.is_writable() {
            return Err(self.read_only("writing"));
        }
        if self.region.write(at, data) {
            Ok(())
        } else {
            Err(self.out_of_range(offset, data.len()))
        }
    }

    /// The 4-byte atomic at `offset`, shared with every process that maps it: a flag, a
    /// counter, a futex word.
    ///
    /// # Errors
    ///
    /// [`MappingError::OutOfRange`] past the end; [`MappingError::Misaligned`] when the
    /// address is not a multiple of 4; [`MappingError::NotPermitted`] on a read-only view (an
    /// atomic could be stored to). Use [`read_at`](Self::read_at) there.
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32, MappingError> {
        let at = self.check_atomic(offset, 4)?;
        self.region
            .atomic_u32(at)
            .ok_or_else(|| self.out_of_range(offset, 4))
    }

    /// The 8-byte atomic at `offset`, on the terms of [`atomic_u32`](Self::atomic_u32) with
    /// 8-byte alignment.
    ///
    /// # Errors
    ///
    /// As [`atomic_u32`](Self::atomic_u32).
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64, MappingError> {
        let at = self.check_atomic(offset, 8)?;
        self.region
            .atomic_u64(at)
            .ok_or_else(|| self.out_of_range(offset, 8))
    }

    fn check_atomic(&self, offset: usize, size: usize) -> Result<usize, MappingError> {
        let at = self.check(offset, size)?;
        if !self.is_writable() {
            return Err(self.read_only("an atomic"));
        }
        if (self.region.as_ptr() as usize + at) % size != 0 {
            return Err(MappingError::Misaligned {
                name: self.name.to_string(),
                offset,
                align: size,
            });
        }
        Ok(at)
    }

    /// Writes the whole view back to its file and waits until it is written
    /// (`FlushViewOfFile`, `msync(MS_SYNC)`). For a memory-backed mapping there is no file
    /// and this does nothing.
    ///
    /// # Errors
    ///
    /// [`MappingError::Io`] when the kernel reports a write error.
    pub fn flush(&self) -> Result<(), MappingError> {
        self.flush_range(0, self.len)
    }

    /// Writes `len` bytes from `offset` back to the file, as [`flush`](Self::flush).
    ///
    /// # Errors
    ///
    /// [`MappingError::OutOfRange`], or as [`flush`](Self::flush).
    pub fn flush_range(&self, offset: usize, len: usize) -> Result<(), MappingError> {
        let at = self.check(offset, len)?;
        self.region
            .sync(at, len)
            .map_err(|source| MappingError::Io {
                name: self.name.to_string(),
                context: "cannot write the view back to its file".into(),
                source,
            })
    }

    /// The first byte of the view. Reading or writing through the pointer is `unsafe` and
    /// the caller's to coordinate; it is valid for [`len`](Self::len) bytes while the view
    /// lives, and writable only if [`is_writable`](Self::is_writable).
    pub fn as_ptr(&self) -> *mut u8 {
        self.region.as_ptr().wrapping_add(self.start)
    }

    /// The view as a byte slice.
    ///
    /// # Safety
    ///
    /// For as long as the slice lives, no one — no thread of this process and no other
    /// process — may write the view's memory: Rust assumes the bytes behind a `&[u8]` do not
    /// change. Hold a lock that every writer takes, or use [`read_at`](Self::read_at).
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the pointer is valid and readable for `len` bytes while `self` lives (the
        // slice borrows `self`), and the caller promises that nobody writes them meanwhile.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len) }
    }

    /// The view as a mutable byte slice.
    ///
    /// # Safety
    ///
    /// For as long as the slice lives, no one else — no thread of this process and no other
    /// process — may read or write the view's memory, and no other reference into it may be
    /// alive (including atomics from [`atomic_u32`](Self::atomic_u32)).
    ///
    /// # Panics
    ///
    /// On a read-only view.
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        assert!(self.is_writable(), "as_mut_slice on a read-only view");
        // SAFETY: the pointer is valid and writable for `len` bytes while `self` lives (the
        // slice borrows `self` mutably, so no atomic from this view is alive either), and the
        // caller promises exclusive access for the slice's life.
        unsafe { std::slice::from_raw_parts_mut(self.as_ptr(), self.len) }
    }
}
