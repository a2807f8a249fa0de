//! The shared region of a shared-memory pipe: an anonymous, sealed memory file holding a
//! header and two rings (docs/protocol.md, section 13).
//!
//! | offset | size | what |
//! |---|---|---|
//! | 0 | 16 | header: magic `PWSR`, version 1 (u32 LE), ring capacity (u32 LE), 0 (u32) |
//! | 64 | 256 | ring 0 control (server → client) |
//! | 320 | 256 | ring 1 control (client → server) |
//! | 4096 | capacity | ring 0 data |
//! | 4096 + capacity | capacity | ring 1 data |

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};

use super::ring::{valid_capacity, RingControl, RingData, CONTROL_LEN, MAX_CAPACITY, MIN_CAPACITY};
use crate::shim::AtomicU32;
use crate::sys::shm;

/// The region's first four bytes.
pub(crate) const REGION_MAGIC: [u8; 4] = *b"PWSR";
/// The layout version this code writes and reads.
pub(crate) const REGION_VERSION: u32 = 1;
/// Where the first ring's data starts: the header and the control blocks take one page.
pub(crate) const DATA_START: usize = 4096;
const CONTROL_START: usize = 64;

/// Which ring: the server writes ring 0, the client ring 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RingId {
    /// Server to client.
    ToClient = 0,
    /// Client to server.
    ToServer = 1,
}

/// A mapped region of two rings.
#[derive(Debug)]
pub(crate) struct SharedRegion {
    map: shm::Region,
    capacity: usize,
    /// The memory file, kept open with the mapping (it names the region in
    /// `/proc/PID/fd` as `memfd:procwire-pipe`).
    _memory: OwnedFd,
}

impl SharedRegion {
    /// Creates a region with rings of `capacity` bytes (a valid capacity), and returns it
    /// with the descriptor to pass to the client.
    pub(crate) fn create(capacity: usize) -> io::Result<(SharedRegion, OwnedFd)> {
        assert!(valid_capacity(capacity), "ring capacity {capacity}");
        let len = DATA_START + 2 * capacity;
        let fd = shm::create_sealed("procwire-pipe", len as u64)?;
        let map = shm::Region::map(fd.as_fd(), 0, len, true)?;
        let mut header = [0u8; 16];
        header[..4].copy_from_slice(&REGION_MAGIC);
        header[4..8].copy_from_slice(&REGION_VERSION.to_le_bytes());
        header[8..12].copy_from_slice(&(capacity as u32).to_le_bytes());
        map.write(0, &header);
        let theirs = fd.try_clone()?;
        let region = SharedRegion {
            map,
            capacity,
            _memory: fd,
        };
        Ok((region, theirs))
    }

    /// Maps a region a server passed, after checking that it cannot change size under us
    /// and that its header describes a layout that fits it.
    ///
    /// # Errors
    ///
    /// `InvalidData` naming what is wrong.
    pub(crate) fn open(fd: OwnedFd) -> io::Result<SharedRegion> {
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let len = rustix::fs::fstat(&fd)?.st_size;
        let len = usize::try_from(len).map_err(|_| bad(format!("a size of {len} bytes")))?;
        if !(DATA_START + 2 * MIN_CAPACITY..=DATA_START + 2 * MAX_CAPACITY).contains(&len) {
            return Err(bad(format!("a region of {len} bytes")));
        }
        shm::check_sealed(fd.as_fd(), len as u64)?;
        let map = shm::Region::map(fd.as_fd(), 0, len, true)?;
        let mut header = [0u8; 16];
        map.read(0, &mut header);
        if header[..4] != REGION_MAGIC {
            return Err(bad(format!("magic {:?}, not PWSR", &header[..4])));
        }
        let word = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("4 bytes"));
        if word(4) != REGION_VERSION {
            return Err(bad(format!("layout version {}", word(4))));
        }
        let capacity = word(8) as usize;
        if !valid_capacity(capacity) || DATA_START + 2 * capacity != len {
            return Err(bad(format!(
                "rings of {capacity} bytes in a region of {len}"
            )));
        }
        Ok(SharedRegion {
            map,
            capacity,
            _memory: fd,
        })
    }

    /// The capacity of each ring.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The control block of `ring`.
    #[cfg(all(loom, test))]
    pub(crate) fn control(&self, _ring: RingId) -> &RingControl {
        unreachable!("the models build rings in ordinary memory")
    }

    /// The control block of `ring`.
    #[cfg(not(all(loom, test)))]
    #[inline]
    pub(crate) fn control(&self, ring: RingId) -> &RingControl {
        const _: () = assert!(CONTROL_START + 2 * CONTROL_LEN <= DATA_START);
        const _: () = assert!(CONTROL_START % std::mem::align_of::<RingControl>() == 0);
        debug_assert!(self.map.is_writable() && self.map.len() >= DATA_START);
        let at = self
            .map
            .as_ptr()
            .wrapping_add(CONTROL_START + ring as usize * CONTROL_LEN);
        // SAFETY: every region is mapped writable and at least `DATA_START` bytes long
        // (`create` and `open` check it), so both control blocks lie inside the live mapping
        // (the asserts above), aligned (the mapping starts on a page); `RingControl` is made
        // of atomics only, valid for any bit pattern and changed by the peer only through
        // atomics (`shm::Atomics`); the reference lives no longer than `&self`. This is
        // `shm::Region::atomics` without its checks, which cost a dozen instructions on
        // every message.
        unsafe { &*at.cast::<RingControl>() }
    }

    /// The data of `ring`.
    #[inline]
    pub(crate) fn data(&self, ring: RingId) -> RingBytes<'_> {
        let start = DATA_START + ring as usize * self.capacity;
        debug_assert!(start + self.capacity <= self.map.len());
        RingBytes {
            // In bounds: the region was checked to hold both rings.
            base: self.map.as_ptr().wrapping_add(start),
            capacity: self.capacity,
            _region: PhantomData,
        }
    }
}

/// The data bytes of one ring in the mapped region.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingBytes<'a> {
    base: *mut u8,
    capacity: usize,
    _region: PhantomData<&'a SharedRegion>,
}

impl<'a> RingBytes<'a> {
    #[inline]
    fn check(&self, offset: usize, len: usize) {
        assert!(
            offset
                .checked_add(len)
                .is_some_and(|end| end <= self.capacity),
            "ring access {offset}+{len} outside {}",
            self.capacity
        );
    }

    /// The `len` bytes at `offset`, shared with the peer.
    ///
    /// # Safety
    ///
    /// The caller must hold the range by the ring protocol (a record published to this
    /// consumer and not yet consumed), so that a peer that keeps the protocol does not write
    /// it while the slice lives. A peer that breaks it can still change the bytes: the
    /// caller must treat them as untrusted input (they are plain bytes, valid whatever
    /// their value).
    pub(crate) unsafe fn slice(self, offset: usize, len: usize) -> &'a [u8] {
        self.check(offset, len);
        // SAFETY: in bounds of the live mapping (checked above; the mapping outlives `'_`);
        // the caller holds the range by the protocol, as this function requires.
        unsafe { std::slice::from_raw_parts(self.base.add(offset), len) }
    }

    /// The `len` bytes at `offset`, for this producer to fill.
    ///
    /// # Safety
    ///
    /// The caller must hold the range by the ring protocol (reserved by this producer and
    /// not yet published), and make no other reference to it while the slice lives.
    pub(crate) unsafe fn slice_mut(self, offset: usize, len: usize) -> &'a mut [u8] {
        self.check(offset, len);
        // SAFETY: in bounds of the live, writable mapping (checked above); the caller holds
        // the range exclusively by the protocol, as this function requires.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(offset), len) }
    }
}

impl RingData for RingBytes<'_> {
    #[inline]
    fn header(&self, offset: usize) -> (&AtomicU32, &AtomicU32) {
        self.check(offset, 8);
        assert!(offset % 8 == 0, "record header at {offset}");
        // SAFETY: both words lie inside the live, writable mapping (checked above) at
        // 4-aligned addresses (the data starts on a page and `offset` is 8-aligned); any
        // bit pattern is a valid `AtomicU32`, and the peer reaches these words only through
        // atomics of the same size.
        unsafe {
            let word = self.base.add(offset).cast::<AtomicU32>();
            (&*word, &*word.add(1))
        }
    }

    #[inline]
    fn copy_in(&self, offset: usize, data: &[u8]) {
        self.check(offset, data.len());
        // SAFETY: the destination lies inside the live, writable mapping (checked above)
        // and is reserved by this producer; no Rust reference to it exists; the source is
        // our own slice, which cannot overlap the ring's reserved range.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.base.add(offset), data.len()) }
    }

    #[inline]
    fn copy_out(&self, offset: usize, buf: &mut [u8]) {
        self.check(offset, buf.len());
        // SAFETY: the source lies inside the live mapping (checked above); the destination
        // is our own buffer. A peer writing the range meanwhile changes the bytes copied,
        // never the soundness of the copy (plain bytes).
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(offset), buf.as_mut_ptr(), buf.len()) }
    }
}

// SAFETY: `RingBytes` points into a shared mapping that lives as long as the borrow of
// its `SharedRegion`; every access is bounds-checked and either atomic, a copy, or a slice
// whose caller holds the range by the protocol.
unsafe impl Send for RingBytes<'_> {}
// SAFETY: as for `Send`.
unsafe impl Sync for RingBytes<'_> {}
