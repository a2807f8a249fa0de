//! The protocol of one single-producer, single-consumer ring in shared memory.
//!
//! A ring is a [`RingControl`] block and `capacity` bytes of data (a power of two). The
//! producer appends *records* at `head`, the consumer takes them at `tail`; both count bytes
//! ever written and never wrap (64 bits). A record is an 8-byte header — `len` (payload
//! bytes) and `message_len` (the whole message's length), little-endian `u32`s — then the
//! payload, padded to a multiple of 8. A record never crosses the end of the data: when it
//! would, the producer first writes a *padding* record (`message_len` = [`PAD`]) that
//! fills the rest. A message longer than a record may be (a quarter of the ring) is sent as
//! several records, each carrying the same `message_len`.
//!
//! Publishing is `head.store(Release)` after the record's bytes; consuming is
//! `tail.store(Release)` after they were read. A side that is about to sleep sets its
//! *waiting* word, then (after a `SeqCst` fence) looks once more; the other side, after
//! publishing, fences and looks at that word, and if it finds it set, clears it and rings
//! the sleeper's doorbell. One of the two always sees the other (the store-fence-load
//! pattern of [`crate::shim`]), so no wake-up is lost.
//!
//! The peer may write anything into the shared memory at any time. Nothing read from it is
//! trusted: [`Consumer::peek`] checks `head` against `tail` and the capacity, every header
//! against the space it claims and the message being assembled, and the producer checks
//! `tail` against `head`; a violation is a [`Corrupt`] error, which ends the connection.
//! Each side keeps its own index in private memory and only *publishes* it, so scribbling
//! on it misleads only the scribbler.

use crate::shim::{fence, AtomicU32, AtomicU64, Ordering};

/// The length of a record's header.
pub(crate) const RECORD_HEADER: usize = 8;

/// The `message_len` that marks a padding record.
pub(crate) const PAD: u32 = u32::MAX;

/// The smallest ring, in bytes.
pub(crate) const MIN_CAPACITY: usize = 4096;

/// The largest ring, in bytes.
pub(crate) const MAX_CAPACITY: usize = 1 << 30;

/// The control words of one ring, each group on a 64-byte line of its own so that no
/// side writes a line the other reads on every message: `head` (the producer's, read by
/// the consumer), the producer's waiting word and CPU (written only around sleeps), `tail`
/// (the consumer's; the producer reads it only when its last look shows too little room),
/// and the consumer's waiting word and CPU.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RingControl {
    /// Bytes ever published (a multiple of 8).
    pub(crate) head: AtomicU64,
    _head_line: [AtomicU64; 7],
    /// 1 while the producer sleeps waiting for space.
    pub(crate) producer_waiting: AtomicU32,
    /// The CPU the producer last ran on (a hint for spinning).
    pub(crate) producer_cpu: AtomicU32,
    _producer_line: [AtomicU64; 7],
    /// Bytes ever consumed (a multiple of 8).
    pub(crate) tail: AtomicU64,
    _tail_line: [AtomicU64; 7],
    /// 1 while the consumer sleeps waiting for data.
    pub(crate) consumer_waiting: AtomicU32,
    /// The CPU the consumer last ran on.
    pub(crate) consumer_cpu: AtomicU32,
    _consumer_line: [AtomicU64; 7],
}

/// The size of a [`RingControl`].
pub(crate) const CONTROL_LEN: usize = 256;
// (loom's model atomics are larger: the layout holds for the real ones.)
#[cfg(not(all(loom, test)))]
const _: () = assert!(std::mem::size_of::<RingControl>() == CONTROL_LEN);

#[cfg(not(all(loom, test)))]
// SAFETY: `RingControl` is `#[repr(C)]` and made of atomic integers only.
unsafe impl crate::sys::shm::Atomics for RingControl {}

impl RingControl {
    /// A zeroed block, as a fresh region holds (for the tests, models and fuzz targets).
    #[cfg(any(test, fuzzing))]
    pub(crate) fn new() -> RingControl {
        let line = || std::array::from_fn(|_| AtomicU64::new(0));
        RingControl {
            head: AtomicU64::new(0),
            _head_line: line(),
            producer_waiting: AtomicU32::new(0),
            producer_cpu: AtomicU32::new(0),
            _producer_line: line(),
            tail: AtomicU64::new(0),
            _tail_line: line(),
            consumer_waiting: AtomicU32::new(0),
            consumer_cpu: AtomicU32::new(0),
            _consumer_line: line(),
        }
    }
}

/// The data bytes of a ring: record headers through atomics, payloads through copies.
pub(crate) trait RingData {
    /// The two header words of the record at `offset` (8-aligned, `offset + 8 <= capacity`).
    fn header(&self, offset: usize) -> (&AtomicU32, &AtomicU32);
    /// Copies `data` to `offset` (inside the ring).
    fn copy_in(&self, offset: usize, data: &[u8]);
    /// Copies `buf.len()` bytes from `offset` (inside the ring).
    fn copy_out(&self, offset: usize, buf: &mut [u8]);
}

/// The peer broke the ring protocol: what it wrote, in words for the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Corrupt(pub(crate) String);

/// A [`Corrupt`] error, made out of line: the checks on every message stay small.
#[cold]
#[inline(never)]
fn corrupt(what: std::fmt::Arguments<'_>) -> Corrupt {
    Corrupt(what.to_string())
}

/// The space a record of `len` payload bytes takes.
#[inline]
pub(crate) fn record_size(len: usize) -> usize {
    RECORD_HEADER + len.next_multiple_of(8)
}

/// Where the byte counted `position` lies in a ring of `capacity` bytes (a power of two:
/// a mask, not a division, on every record).
#[inline]
fn ring_offset(position: u64, capacity: usize) -> usize {
    debug_assert!(capacity.is_power_of_two());
    (position as usize) & (capacity - 1)
}

/// The producer's side of a ring.
#[derive(Debug)]
pub(crate) struct Producer {
    head: u64,
    /// The `head` last stored for the consumer: records between it and `head` are staged.
    published: u64,
    /// The consumer's `tail` as last loaded (and checked): room known to be free without
    /// touching the consumer's line.
    tail_seen: u64,
    capacity: usize,
}

/// Where a record may be written: the payload's offset in the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// The record header's offset.
    header: usize,
    /// The payload's room in bytes.
    pub(crate) room: usize,
}

impl Slot {
    /// Where the payload starts.
    pub(crate) fn payload(&self) -> usize {
        self.header + RECORD_HEADER
    }
}

impl Producer {
    /// A producer at the start of an empty ring of `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> Producer {
        assert!(capacity.is_power_of_two(), "a ring of {capacity} bytes");
        Producer {
            head: 0,
            published: 0,
            tail_seen: 0,
            capacity,
        }
    }

    /// Bytes this producer has written (published or not, padding included).
    #[cfg(fuzzing)]
    pub(crate) fn head(&self) -> u64 {
        self.head
    }

    /// The consumer's `tail` as this producer last loaded it.
    #[cfg(fuzzing)]
    pub(crate) fn tail_seen(&self) -> u64 {
        self.tail_seen
    }

    /// The largest record payload this producer writes (a quarter of the ring, so that a
    /// long message streams while the consumer reads).
    pub(crate) fn max_record(&self) -> usize {
        self.capacity / 4 - RECORD_HEADER
    }

    /// Free bytes, from the consumer's published `tail` (loaded now and checked).
    #[inline]
    fn free(&mut self, ctl: &RingControl) -> Result<usize, Corrupt> {
        let tail = ctl.tail.load(Ordering::Acquire);
        let used = self.head.wrapping_sub(tail);
        if used > self.capacity as u64 || tail % 8 != 0 {
            return Err(corrupt(format_args!(
                "the reader's position {tail} is not within the {} bytes behind {}",
                self.capacity, self.head
            )));
        }
        self.tail_seen = tail;
        Ok(self.capacity - used as usize)
    }

    /// Free bytes as of the last look at `tail` (never more than there are).
    #[inline]
    fn free_seen(&self) -> usize {
        self.capacity - self.head.wrapping_sub(self.tail_seen) as usize
    }

    /// Room for a record of `len` payload bytes in the space known to be free before the
    /// end of the ring, looking at nothing shared: the common case of a small message, in
    /// a few instructions. `None` when [`reserve`](Self::reserve) must look further.
    #[inline]
    pub(crate) fn reserve_known(&self, len: usize) -> Option<Slot> {
        let offset = ring_offset(self.head, self.capacity);
        let size = record_size(len);
        (size <= self.free_seen().min(self.capacity - offset)).then_some(Slot {
            header: offset,
            room: size - RECORD_HEADER,
        })
    }

    /// Room for one record of between `min` and `want` payload bytes (`min <= want <=
    /// max_record`), writing padding first when the record does not fit before the end;
    /// `None` while the ring is too full.
    #[inline]
    pub(crate) fn reserve(
        &mut self,
        ctl: &RingControl,
        data: &impl RingData,
        min: usize,
        want: usize,
    ) -> Result<Option<Slot>, Corrupt> {
        let offset = ring_offset(self.head, self.capacity);
        let to_end = self.capacity - offset;
        // What was free at the last look suffices for most records; only when it does not
        // is the consumer's line read again.
        let mut free = self.free_seen();
        if free.min(to_end) < record_size(want) {
            free = self.free(ctl)?;
        }
        let fits = |room: usize| (room >= record_size(min)).then(|| room.min(record_size(want)));
        if let Some(size) = fits(free.min(to_end)) {
            return Ok(Some(Slot {
                header: offset,
                room: size - RECORD_HEADER,
            }));
        }
        if free < to_end + record_size(min) {
            return Ok(None);
        }
        // Too little before the end for even `min`: pad to the end, start at 0.
        let (len, message_len) = data.header(offset);
        len.store((to_end - RECORD_HEADER) as u32, Ordering::Relaxed);
        message_len.store(PAD, Ordering::Relaxed);
        self.head += to_end as u64;
        let size = (free - to_end).min(record_size(want));
        Ok(Some(Slot {
            header: 0,
            room: size - RECORD_HEADER,
        }))
    }

    /// Publishes the record in `slot` with `len` payload bytes (already copied in) of a
    /// message of `message_len` bytes. Returns whether the consumer said it sleeps: then
    /// ring its doorbell.
    pub(crate) fn commit(
        &mut self,
        ctl: &RingControl,
        data: &impl RingData,
        slot: Slot,
        len: usize,
        message_len: u32,
    ) -> bool {
        self.stage(data, slot, len, message_len);
        self.publish(ctl)
    }

    /// Writes the header of the record in `slot` (as [`commit`](Self::commit)) without
    /// publishing it yet: a later [`publish`](Self::publish) makes every staged record
    /// visible at once, with one store and one fence for all of them.
    #[inline]
    pub(crate) fn stage(&mut self, data: &impl RingData, slot: Slot, len: usize, message_len: u32) {
        debug_assert!(len <= slot.room);
        let (len_word, message_word) = data.header(slot.header);
        len_word.store(len as u32, Ordering::Relaxed);
        message_word.store(message_len, Ordering::Relaxed);
        self.head += record_size(len) as u64;
    }

    /// Bytes written (padding included) and not yet published.
    pub(crate) fn staged(&self) -> u64 {
        self.head - self.published
    }

    /// Publishes every staged record. Returns whether the consumer said it sleeps: then
    /// ring its doorbell.
    #[inline]
    pub(crate) fn publish(&mut self, ctl: &RingControl) -> bool {
        self.published = self.head;
        ctl.head.store(self.head, Ordering::Release);
        fence(Ordering::SeqCst);
        wake_needed(&ctl.consumer_waiting)
    }

    /// Announces that this producer is about to sleep until there is space; returns
    /// whether it should sleep after all (a record of `min` bytes still does not fit).
    pub(crate) fn prepare_sleep(&mut self, ctl: &RingControl, min: usize) -> Result<bool, Corrupt> {
        ctl.producer_waiting.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let offset = ring_offset(self.head, self.capacity);
        let free = self.free(ctl)?;
        let to_end = self.capacity - offset;
        let fits = free.min(to_end) >= record_size(min) || free >= to_end + record_size(min);
        if fits {
            ctl.producer_waiting.store(0, Ordering::Relaxed);
        }
        Ok(!fits)
    }
}

/// Clears a sleeper's waiting word if it is set; `true` when it was (ring the doorbell).
#[inline]
fn wake_needed(waiting: &AtomicU32) -> bool {
    waiting.load(Ordering::Relaxed) != 0 && waiting.swap(0, Ordering::Relaxed) != 0
}

/// A record the consumer may read: where its payload is, and what it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    /// The payload's offset in the ring.
    pub(crate) offset: usize,
    /// Payload bytes.
    pub(crate) len: usize,
    /// The whole message's length.
    pub(crate) message_len: u32,
    /// Whether this record starts a message.
    pub(crate) first: bool,
    /// Whether this record ends its message.
    pub(crate) last: bool,
}

/// What [`Consumer::scan`] found published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Scanned {
    /// Payload bytes of the records published and not yet freed.
    pub(crate) payload: usize,
    /// The `message_len` of the first of them.
    pub(crate) first_message_len: Option<u32>,
}

/// The consumer's side of a ring.
#[derive(Debug)]
pub(crate) struct Consumer {
    tail: u64,
    /// The producer's `head` as last loaded (and checked): records known to be published
    /// without touching the producer's line, which it writes on every message.
    head_seen: u64,
    capacity: usize,
    limit: u32,
    /// The message being taken: its length and the bytes still to come in later records.
    current: Option<(u32, u32)>,
}

impl Consumer {
    /// A consumer at the start of an empty ring, taking messages of at most `limit` bytes.
    pub(crate) fn new(capacity: usize, limit: u32) -> Consumer {
        assert!(capacity.is_power_of_two(), "a ring of {capacity} bytes");
        Consumer {
            tail: 0,
            head_seen: 0,
            capacity,
            limit: limit.min(PAD - 1),
            current: None,
        }
    }

    /// Bytes this consumer has freed.
    #[cfg(fuzzing)]
    pub(crate) fn tail(&self) -> u64 {
        self.tail
    }

    /// The producer's `head` as this consumer last loaded it.
    #[cfg(fuzzing)]
    pub(crate) fn head_seen(&self) -> u64 {
        self.head_seen
    }

    /// Whether part of a message has been taken and the rest has not arrived.
    pub(crate) fn mid_message(&self) -> bool {
        self.current.is_some()
    }

    /// Loads the producer's `head` (and checks it) when every record known published is
    /// taken: the producer's line is read only then.
    #[inline]
    fn refresh(&mut self, ctl: &RingControl) -> Result<(), Corrupt> {
        if self.head_seen == self.tail {
            let head = ctl.head.load(Ordering::Acquire);
            if head.wrapping_sub(self.tail) > self.capacity as u64 || head % 8 != 0 {
                return Err(corrupt(format_args!(
                    "the writer's position {head} is not within the {} bytes ahead of {}",
                    self.capacity, self.tail
                )));
            }
            self.head_seen = head;
        }
        Ok(())
    }

    /// The next record when it is a whole message (one record, within the limit), checked
    /// as [`peek`](Self::peek) checks it but in a few instructions: the common case of a
    /// small message. `Ok(None)` when `peek` must look further (nothing published,
    /// padding, part of a longer message, or a record that breaks the protocol, which
    /// `peek` then reports).
    #[inline]
    pub(crate) fn peek_whole(
        &mut self,
        ctl: &RingControl,
        data: &impl RingData,
    ) -> Result<Option<Record>, Corrupt> {
        self.refresh(ctl)?;
        let available = self.head_seen - self.tail;
        if available == 0 || self.current.is_some() {
            return Ok(None);
        }
        let offset = ring_offset(self.tail, self.capacity);
        let (len_word, message_word) = data.header(offset);
        let len = len_word.load(Ordering::Relaxed);
        let message_len = message_word.load(Ordering::Relaxed);
        // `len == message_len <= limit < PAD`: a whole message, not padding, and its
        // record (at most `limit + 15` bytes, so no overflow) must lie in what is published
        // before the end of the ring.
        if len != message_len || message_len > self.limit {
            return Ok(None);
        }
        let size = record_size(len as usize);
        if size > self.capacity - offset || size as u64 > available {
            return Ok(None);
        }
        Ok(Some(Record {
            offset: offset + RECORD_HEADER,
            len: len as usize,
            message_len,
            first: true,
            last: true,
        }))
    }

    /// The next record, if one is published; padding is skipped.
    #[inline]
    pub(crate) fn peek(
        &mut self,
        ctl: &RingControl,
        data: &impl RingData,
    ) -> Result<Option<Record>, Corrupt> {
        loop {
            // What was published at the last look is read first; only when it is all taken
            // is the producer's line read again.
            self.refresh(ctl)?;
            let available = self.head_seen - self.tail;
            if available == 0 {
                return Ok(None);
            }
            let offset = ring_offset(self.tail, self.capacity);
            let to_end = self.capacity - offset;
            let (len_word, message_word) = data.header(offset);
            let len = len_word.load(Ordering::Relaxed) as usize;
            let message_len = message_word.load(Ordering::Relaxed);
            if message_len == PAD {
                if len != to_end - RECORD_HEADER || available < to_end as u64 {
                    return Err(corrupt(format_args!(
                        "padding of {len} bytes at {offset} does not end the ring"
                    )));
                }
                self.tail += to_end as u64;
                ctl.tail.store(self.tail, Ordering::Release);
                continue;
            }
            let size = len.checked_next_multiple_of(8).map(|l| l + RECORD_HEADER);
            if size.is_none_or(|size| size > to_end || size as u64 > available) {
                return Err(corrupt(format_args!(
                    "a record of {len} bytes at {offset} runs past the data written"
                )));
            }
            return self.check(offset, len, message_len).map(Some);
        }
    }

    #[inline]
    fn check(&self, offset: usize, len: usize, message_len: u32) -> Result<Record, Corrupt> {
        let (first, left) = match self.current {
            None if message_len > self.limit => {
                return Err(corrupt(format_args!(
                    "a message of {message_len} bytes is over the limit of {}",
                    self.limit
                )))
            }
            None => (true, message_len),
            Some((current, left)) if current == message_len && len > 0 => (false, left),
            Some((current, _)) => {
                return Err(corrupt(format_args!(
                    "a record of {len} bytes claims a message of {message_len} bytes in the \
                     middle of one of {current}"
                )))
            }
        };
        if len as u64 > u64::from(left) {
            return Err(corrupt(format_args!(
                "a record of {len} bytes is longer than the {left} left of its message"
            )));
        }
        Ok(Record {
            offset: offset + RECORD_HEADER,
            len,
            message_len,
            first,
            last: len as u32 == left,
        })
    }

    /// Looks at everything published, taking nothing: the payload bytes of the records
    /// from `tail` to `head` and the `message_len` of the first one. Stops where a record
    /// makes no sense (the receive that reaches it reports the corruption).
    pub(crate) fn scan(&self, ctl: &RingControl, data: &impl RingData) -> Scanned {
        let head = ctl.head.load(Ordering::Acquire);
        let mut scanned = Scanned::default();
        if head.wrapping_sub(self.tail) > self.capacity as u64 {
            return scanned;
        }
        let mut pos = self.tail;
        while pos < head {
            let offset = (pos % self.capacity as u64) as usize;
            let to_end = self.capacity - offset;
            let (len_word, message_word) = data.header(offset);
            let len = len_word.load(Ordering::Relaxed) as usize;
            let message_len = message_word.load(Ordering::Relaxed);
            let size = if message_len == PAD {
                to_end
            } else {
                match len.checked_next_multiple_of(8) {
                    Some(l) if l + RECORD_HEADER <= to_end => l + RECORD_HEADER,
                    _ => break,
                }
            };
            if size as u64 > head - pos {
                break;
            }
            if message_len != PAD {
                scanned.payload += len;
                scanned.first_message_len.get_or_insert(message_len);
            }
            pos += size as u64;
        }
        scanned
    }

    /// The message being taken: its length and the bytes of it not yet freed.
    pub(crate) fn current(&self) -> Option<(u32, u32)> {
        self.current
    }

    /// Whether anything is published that this consumer has not freed.
    pub(crate) fn has_published(&self, ctl: &RingControl) -> bool {
        ctl.head.load(Ordering::Acquire) != self.tail
    }

    /// Whether every record this consumer knows of is taken and the producer has published
    /// nothing since: one load and two compares, for polling.
    #[inline]
    pub(crate) fn all_taken(&self, ctl: &RingControl) -> bool {
        self.head_seen == self.tail && ctl.head.load(Ordering::Acquire) == self.tail
    }

    /// Frees `record` (the one [`peek`](Self::peek) returned) for the producer. Returns
    /// whether the producer said it sleeps: then ring its doorbell.
    #[inline]
    pub(crate) fn consume(&mut self, ctl: &RingControl, record: Record) -> bool {
        self.take(record);
        self.release(ctl)
    }

    /// Takes `record` (the one [`peek`](Self::peek) returned) without freeing it for the
    /// producer yet: a later [`release`](Self::release) frees every record taken, with one
    /// store and one fence for all of them. The next `peek` moves past it.
    #[inline]
    pub(crate) fn take(&mut self, record: Record) {
        let left = match self.current {
            None => record.message_len,
            Some((_, left)) => left,
        } - record.len as u32;
        self.current = (left > 0).then_some((record.message_len, left));
        self.tail += record_size(record.len) as u64;
    }

    /// Frees every record taken. Returns whether the producer said it sleeps: then ring
    /// its doorbell.
    #[inline]
    pub(crate) fn release(&mut self, ctl: &RingControl) -> bool {
        ctl.tail.store(self.tail, Ordering::Release);
        fence(Ordering::SeqCst);
        wake_needed(&ctl.producer_waiting)
    }

    /// Announces that this consumer is about to sleep until data comes; returns whether it
    /// should sleep after all (still nothing published).
    pub(crate) fn prepare_sleep(&self, ctl: &RingControl) -> bool {
        ctl.consumer_waiting.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let empty = ctl.head.load(Ordering::Acquire) == self.tail;
        if !empty {
            ctl.consumer_waiting.store(0, Ordering::Relaxed);
        }
        empty
    }
}

/// Whether `capacity` is a ring size this implementation accepts.
pub(crate) fn valid_capacity(capacity: usize) -> bool {
    capacity.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32 as StdU32;

    /// Ring data in ordinary memory, as words.
    struct Words(Vec<StdU32>);

    impl Words {
        fn new(capacity: usize) -> Words {
            Words((0..capacity / 4).map(|_| StdU32::new(0)).collect())
        }
    }

    impl RingData for Words {
        fn header(&self, offset: usize) -> (&AtomicU32, &AtomicU32) {
            (&self.0[offset / 4], &self.0[offset / 4 + 1])
        }
        fn copy_in(&self, offset: usize, data: &[u8]) {
            for (i, b) in data.iter().enumerate() {
                let word = &self.0[(offset + i) / 4];
                let shift = ((offset + i) % 4) * 8;
                let old = word.load(Ordering::Relaxed) & !(0xff << shift);
                word.store(old | (u32::from(*b) << shift), Ordering::Relaxed);
            }
        }
        fn copy_out(&self, offset: usize, buf: &mut [u8]) {
            for (i, b) in buf.iter_mut().enumerate() {
                let word = self.0[(offset + i) / 4].load(Ordering::Relaxed);
                *b = (word >> (((offset + i) % 4) * 8)) as u8;
            }
        }
    }

    fn send(p: &mut Producer, ctl: &RingControl, data: &Words, message: &[u8]) -> bool {
        let mut sent = 0;
        loop {
            let want = (message.len() - sent).min(p.max_record());
            let Some(slot) = p.reserve(ctl, data, want.min(64), want).unwrap() else {
                return false;
            };
            let n = slot.room.min(want);
            data.copy_in(slot.payload(), &message[sent..sent + n]);
            p.commit(ctl, data, slot, n, message.len() as u32);
            sent += n;
            if sent == message.len() {
                return true;
            }
        }
    }

    fn recv(c: &mut Consumer, ctl: &RingControl, data: &Words) -> Result<Vec<u8>, Corrupt> {
        let mut out = Vec::new();
        loop {
            let record = c.peek(ctl, data)?.expect("a record");
            let at = out.len();
            out.resize(at + record.len, 0);
            data.copy_out(record.offset, &mut out[at..]);
            c.consume(ctl, record);
            if record.last {
                return Ok(out);
            }
        }
    }

    #[test]
    fn messages_keep_their_boundaries_across_the_end_of_the_ring() {
        let (ctl, data) = (RingControl::new(), Words::new(4096));
        let (mut p, mut c) = (Producer::new(4096), Consumer::new(4096, 1 << 20));
        for round in 0..200usize {
            let message: Vec<u8> = (0..(round * 37) % 3000).map(|i| i as u8).collect();
            assert!(
                send(&mut p, &ctl, &data, &message),
                "a message of {} bytes did not fit an empty ring",
                message.len()
            );
            assert_eq!(recv(&mut c, &ctl, &data).unwrap(), message, "round {round}");
        }
    }

    #[test]
    fn a_full_ring_makes_the_producer_wait_and_sleep() {
        let (ctl, data) = (RingControl::new(), Words::new(4096));
        let mut p = Producer::new(4096);
        let mut sent = 0;
        while let Some(slot) = p.reserve(&ctl, &data, 1000, 1000).unwrap() {
            p.commit(&ctl, &data, slot, 1000, 1000);
            sent += 1;
        }
        assert_eq!(sent, 4, "four records of 1008 bytes fill 4096");
        assert!(p.prepare_sleep(&ctl, 1000).unwrap());
        assert_eq!(ctl.producer_waiting.load(Ordering::Relaxed), 1);
        let mut c = Consumer::new(4096, 1 << 20);
        let record = c.peek(&ctl, &data).unwrap().unwrap();
        assert!(
            c.consume(&ctl, record),
            "the sleeping producer is to be woken"
        );
        assert_eq!(ctl.producer_waiting.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn scribbled_indices_and_headers_are_errors_never_reads_out_of_bounds() {
        let (ctl, data) = (RingControl::new(), Words::new(4096));
        let mut c = Consumer::new(4096, 100);
        ctl.head.store(8192, Ordering::Relaxed);
        assert!(c.peek(&ctl, &data).is_err(), "head past the capacity");
        ctl.head.store(12, Ordering::Relaxed);
        assert!(c.peek(&ctl, &data).is_err(), "head not aligned");
        ctl.head.store(16, Ordering::Relaxed);
        data.0[0].store(4000, Ordering::Relaxed);
        assert!(c.peek(&ctl, &data).is_err(), "record longer than published");
        data.0[0].store(8, Ordering::Relaxed);
        data.0[1].store(101, Ordering::Relaxed);
        assert!(c.peek(&ctl, &data).is_err(), "message over the limit");
        data.0[1].store(8, Ordering::Relaxed);
        assert!(c.peek(&ctl, &data).unwrap().is_some());
        data.0[0].store(u32::MAX - 3, Ordering::Relaxed);
        assert!(c.peek(&ctl, &data).is_err(), "a length that overflows");
        data.0[1].store(PAD, Ordering::Relaxed);
        data.0[0].store(8, Ordering::Relaxed);
        assert!(
            c.peek(&ctl, &data).is_err(),
            "padding that does not end the ring"
        );
        let mut p = Producer::new(4096);
        ctl.tail.store(8, Ordering::Relaxed);
        assert!(p.free(&ctl).is_err(), "tail ahead of head");
    }

    #[test]
    fn a_record_that_claims_another_message_mid_message_is_refused() {
        let (ctl, data) = (RingControl::new(), Words::new(4096));
        let (mut p, mut c) = (Producer::new(4096), Consumer::new(4096, 1 << 20));
        let slot = p.reserve(&ctl, &data, 8, 8).unwrap().unwrap();
        p.commit(&ctl, &data, slot, 8, 100);
        let record = c.peek(&ctl, &data).unwrap().unwrap();
        assert!(record.first && !record.last);
        c.consume(&ctl, record);
        assert!(c.mid_message());
        let slot = p.reserve(&ctl, &data, 8, 8).unwrap().unwrap();
        p.commit(&ctl, &data, slot, 8, 50);
        assert!(c.peek(&ctl, &data).is_err());
    }
}
