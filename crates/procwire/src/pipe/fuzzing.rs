//! The pipe layer's stateful decoders of peer bytes, for the fuzz targets under `fuzz/`.
//!
//! Built only with `--cfg fuzzing` (which `cargo fuzz` sets): this is not part of the API.
//! It wraps the frame reader and the handshake assembler that the blocking and the tokio
//! connections use, unchanged, so that a target can drive them with any bytes, cut into
//! any reads, with any errors in between; and the consumer and producer of a
//! shared-memory ring ([`RingConsumer`], [`RingProducer`]), over a ring in ordinary memory
//! that the target writes as a hostile peer would write the shared region.

use std::io;

use super::shm::ring::{self, Consumer, Producer, Record, RingControl, RingData, Slot};
use super::{framing, handshake};
use crate::shim::{AtomicU32, Ordering};
use crate::wire::{ProtocolError, Request, Response};

/// Why a receive did not produce a message (the reader's own error, made public).
#[derive(Debug)]
pub enum RecvError {
    /// The read closure failed (including `WouldBlock` and `TimedOut`).
    Io(io::Error),
    /// The peer closed the connection; `clean` when that was between frames.
    Eof {
        /// Where in the stream it was.
        detail: String,
        /// Whether no frame was left unfinished.
        clean: bool,
    },
    /// The peer sent a close frame with this reason.
    Closed(String),
    /// The peer sent bytes that break the protocol.
    Protocol(ProtocolError),
    /// The next frame is a handle frame where a message was awaited; nothing was taken.
    Unexpected(&'static str),
}

impl From<framing::RecvError> for RecvError {
    fn from(e: framing::RecvError) -> RecvError {
        match e {
            framing::RecvError::Io(e) => RecvError::Io(e),
            framing::RecvError::Eof { detail, clean } => RecvError::Eof { detail, clean },
            framing::RecvError::Closed(reason) => RecvError::Closed(reason),
            framing::RecvError::Protocol(e) => RecvError::Protocol(e),
            framing::RecvError::Unexpected(what) => RecvError::Unexpected(what),
        }
    }
}

/// The receiving half of a message-type connection, as the connections use it.
#[derive(Debug)]
pub struct FrameReader(framing::FrameReader);

impl FrameReader {
    /// A reader for messages of at most `max` bytes, buffering up to `buffer` bytes (at
    /// least a close frame's worth).
    pub fn new(max: u32, buffer: usize) -> FrameReader {
        FrameReader(framing::FrameReader::new(max, buffer))
    }

    /// Whether a message has been started but not yet fully delivered.
    pub fn in_message(&self) -> bool {
        self.0.in_message()
    }

    /// Copies up to `out.len()` bytes of the current message into `out`: the bytes
    /// copied and whether that was the end of the message (`recv_into` of a connection).
    ///
    /// # Errors
    ///
    /// A [`RecvError`]; a retryable one leaves the reader ready to go on.
    pub fn recv_into<F>(&mut self, out: &mut [u8], read: &mut F) -> Result<(usize, bool), RecvError>
    where
        F: FnMut(&mut [u8]) -> io::Result<usize>,
    {
        self.0.recv_into(out, read).map_err(RecvError::from)
    }

    /// Receives the rest of the current message, or the next one, whole (`recv` of a
    /// connection). `read_spare` must append at most `v.capacity() - v.len()` bytes to
    /// `v` and return how many it appended.
    ///
    /// # Errors
    ///
    /// As [`FrameReader::recv_into`].
    pub fn recv_message<F, G>(
        &mut self,
        read: &mut F,
        read_spare: &mut G,
    ) -> Result<Vec<u8>, RecvError>
    where
        F: FnMut(&mut [u8]) -> io::Result<usize>,
        G: FnMut(&mut Vec<u8>) -> io::Result<usize>,
    {
        self.0
            .recv_message(read, read_spare)
            .map_err(RecvError::from)
    }

    /// Reads message payload as a byte stream (`Read` of a connection in byte read mode):
    /// up to `out.len()` bytes, stopping at the end of a message when `stop_at_boundary`
    /// is set. Returns 0 only when the peer closed the pipe between messages.
    ///
    /// # Errors
    ///
    /// As [`FrameReader::recv_into`].
    pub fn read_bytes<F>(
        &mut self,
        out: &mut [u8],
        stop_at_boundary: bool,
        read: &mut F,
    ) -> Result<usize, RecvError>
    where
        F: FnMut(&mut [u8]) -> io::Result<usize>,
    {
        self.0
            .read_bytes(out, stop_at_boundary, read)
            .map_err(RecvError::from)
    }
}

/// Accumulates one handshake message, as both connection APIs read it.
pub struct Assembler<T>(handshake::Assembler<T>);

impl<T> std::fmt::Debug for Assembler<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Assembler")
    }
}

impl Assembler<Request> {
    /// An assembler of the client's [`Request`] (the server side).
    pub fn request() -> Assembler<Request> {
        Assembler(handshake::Assembler::new(handshake::REQUEST))
    }
}

impl Assembler<Response> {
    /// An assembler of the server's [`Response`] (the client side).
    pub fn response() -> Assembler<Response> {
        Assembler(handshake::Assembler::new(handshake::RESPONSE))
    }
}

impl<T> Assembler<T> {
    /// Where to read the next bytes: exactly as many as the message still needs.
    pub fn spare(&mut self) -> &mut [u8] {
        self.0.spare()
    }

    /// Records that `n` bytes were read into [`Assembler::spare`]; the message once
    /// complete, or the protocol error as soon as the bytes show one.
    pub fn filled(&mut self, n: usize) -> Option<Result<T, ProtocolError>> {
        self.0.filled(n)
    }
}

/// Reads a [`Request`] with `read`, as a blocking server does.
///
/// # Errors
///
/// The closure's error, or `UnexpectedEof` before the request is complete.
pub fn read_request(
    read: impl FnMut(&mut [u8]) -> io::Result<usize>,
) -> io::Result<Result<Request, ProtocolError>> {
    handshake::read_blocking(read, handshake::REQUEST)
}

/// Reads a [`Response`] with `read`, as a blocking client does.
///
/// # Errors
///
/// As [`read_request`].
pub fn read_response(
    read: impl FnMut(&mut [u8]) -> io::Result<usize>,
) -> io::Result<Result<Response, ProtocolError>> {
    handshake::read_blocking(read, handshake::RESPONSE)
}

/// The memory of one shared-memory ring (control words and data), in ordinary memory, with
/// every write a peer can make to it. Its data checks each access as the mapped region's
/// does (`RingBytes`), so a protocol bug that reaches outside the ring panics.
#[derive(Debug)]
pub struct HostileRing {
    ctl: RingControl,
    data: Words,
}

#[derive(Debug)]
struct Words(Vec<AtomicU32>);

impl Words {
    fn check(&self, offset: usize, len: usize) {
        assert!(
            offset
                .checked_add(len)
                .is_some_and(|end| end <= self.0.len() * 4),
            "ring access {offset}+{len} outside {}",
            self.0.len() * 4
        );
    }

    fn byte(&self, at: usize) -> &AtomicU32 {
        &self.0[at / 4]
    }

    fn store_byte(&self, at: usize, b: u8) {
        let shift = (at % 4) * 8;
        let word = self.byte(at);
        let old = word.load(Ordering::Relaxed) & !(0xff << shift);
        word.store(old | (u32::from(b) << shift), Ordering::Relaxed);
    }
}

impl RingData for Words {
    fn header(&self, offset: usize) -> (&AtomicU32, &AtomicU32) {
        self.check(offset, 8);
        assert!(offset % 8 == 0, "record header at {offset}");
        (&self.0[offset / 4], &self.0[offset / 4 + 1])
    }

    fn copy_in(&self, offset: usize, data: &[u8]) {
        self.check(offset, data.len());
        for (i, &b) in data.iter().enumerate() {
            self.store_byte(offset + i, b);
        }
    }

    fn copy_out(&self, offset: usize, buf: &mut [u8]) {
        self.check(offset, buf.len());
        for (i, b) in buf.iter_mut().enumerate() {
            let word = self.byte(offset + i).load(Ordering::Relaxed);
            *b = (word >> (((offset + i) % 4) * 8)) as u8;
        }
    }
}

impl HostileRing {
    fn new(capacity: usize) -> HostileRing {
        assert!(ring::valid_capacity(capacity), "ring capacity {capacity}");
        HostileRing {
            ctl: RingControl::new(),
            data: Words((0..capacity / 4).map(|_| AtomicU32::new(0)).collect()),
        }
    }

    /// The ring's data bytes.
    pub fn capacity(&self) -> usize {
        self.data.0.len() * 4
    }

    /// The published `head`.
    pub fn head(&self) -> u64 {
        self.ctl.head.load(Ordering::Relaxed)
    }

    /// The published `tail`.
    pub fn tail(&self) -> u64 {
        self.ctl.tail.load(Ordering::Relaxed)
    }

    /// Writes the producer's `head` word.
    pub fn set_head(&self, head: u64) {
        self.ctl.head.store(head, Ordering::Relaxed);
    }

    /// Writes the consumer's `tail` word.
    pub fn set_tail(&self, tail: u64) {
        self.ctl.tail.store(tail, Ordering::Relaxed);
    }

    /// Writes the two waiting words.
    pub fn set_waiting(&self, producer: u32, consumer: u32) {
        self.ctl.producer_waiting.store(producer, Ordering::Relaxed);
        self.ctl.consumer_waiting.store(consumer, Ordering::Relaxed);
    }

    /// The two waiting words: the producer's, the consumer's.
    pub fn waiting(&self) -> (u32, u32) {
        (
            self.ctl.producer_waiting.load(Ordering::Relaxed),
            self.ctl.consumer_waiting.load(Ordering::Relaxed),
        )
    }

    /// Writes `bytes` into the data from `offset` on, wrapping at the end.
    pub fn write(&self, offset: usize, bytes: &[u8]) {
        let capacity = self.capacity();
        for (i, &b) in bytes.iter().enumerate() {
            self.data.store_byte((offset + i) % capacity, b);
        }
    }

    /// Writes a record header (`len`, `message_len`) at `offset` (taken modulo the capacity
    /// and rounded down to 8).
    pub fn write_header(&self, offset: u64, len: u32, message_len: u32) {
        let at = (offset % self.capacity() as u64) as usize & !7;
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4..].copy_from_slice(&message_len.to_le_bytes());
        self.write(at, &header);
    }
}

/// A record the consumer handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView {
    /// The payload's offset in the ring.
    pub offset: usize,
    /// Payload bytes.
    pub len: usize,
    /// The whole message's length.
    pub message_len: u32,
    /// Whether this record starts a message.
    pub first: bool,
    /// Whether this record ends its message.
    pub last: bool,
}

/// The consumer of a ring whose producer is hostile, as a connection uses it.
#[derive(Debug)]
pub struct RingConsumer {
    ring: HostileRing,
    consumer: Consumer,
    peeked: Option<Record>,
}

impl RingConsumer {
    /// A consumer of an empty ring of `capacity` bytes (a valid ring size), taking messages
    /// of at most `limit` bytes.
    pub fn new(capacity: usize, limit: u32) -> RingConsumer {
        RingConsumer {
            ring: HostileRing::new(capacity),
            consumer: Consumer::new(capacity, limit),
            peeked: None,
        }
    }

    /// The ring's memory, to write as the peer.
    pub fn ring(&self) -> &HostileRing {
        &self.ring
    }

    /// Bytes this consumer has freed (its private `tail`).
    pub fn tail(&self) -> u64 {
        self.consumer.tail()
    }

    /// The producer's `head` as the consumer last loaded it (and checked): what it reads
    /// is bounded by this, not by the `head` word now.
    pub fn head_seen(&self) -> u64 {
        self.consumer.head_seen()
    }

    /// Whether part of a message has been taken and the rest has not arrived.
    pub fn mid_message(&self) -> bool {
        self.consumer.mid_message()
    }

    /// The next record, if one is published (padding skipped); the error of a peer that
    /// broke the protocol.
    ///
    /// # Errors
    ///
    /// What the peer wrote wrong, in words.
    pub fn peek(&mut self) -> Result<Option<RecordView>, String> {
        // The short path of small messages must agree with the full one whenever it
        // answers at all.
        let whole = self.consumer.peek_whole(&self.ring.ctl, &self.ring.data);
        let record = self.consumer.peek(&self.ring.ctl, &self.ring.data);
        match (&whole, &record) {
            (Ok(Some(whole)), Ok(Some(record))) => {
                assert_eq!(whole, record, "peek_whole disagrees with peek");
            }
            (Ok(Some(_)), _) => panic!("peek_whole found {whole:?}, peek {record:?}"),
            (Err(_), Ok(_)) => panic!("peek_whole refused what peek took: {whole:?}"),
            _ => {}
        }
        let record = record.map_err(|c| c.0)?;
        self.peeked = record;
        Ok(record.map(|r| RecordView {
            offset: r.offset,
            len: r.len,
            message_len: r.message_len,
            first: r.first,
            last: r.last,
        }))
    }

    /// Copies the payload of the record [`peek`](Self::peek) returned last.
    pub fn payload(&self) -> Vec<u8> {
        let record = self.peeked.expect("a peeked record");
        let mut out = vec![0; record.len];
        self.ring.data.copy_out(record.offset, &mut out);
        out
    }

    /// Frees the record [`peek`](Self::peek) returned last; whether to wake the producer.
    pub fn consume(&mut self) -> bool {
        let record = self.peeked.take().expect("a peeked record");
        self.consumer.consume(&self.ring.ctl, record)
    }

    /// Announces a sleep; whether to sleep after all.
    pub fn prepare_sleep(&self) -> bool {
        self.consumer.prepare_sleep(&self.ring.ctl)
    }
}

/// Room the producer reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotView {
    /// Where the payload starts in the ring.
    pub payload: usize,
    /// The payload's room in bytes.
    pub room: usize,
}

/// The producer of a ring whose consumer is hostile, as a connection uses it.
#[derive(Debug)]
pub struct RingProducer {
    ring: HostileRing,
    producer: Producer,
    slot: Option<Slot>,
}

impl RingProducer {
    /// A producer at the start of an empty ring of `capacity` bytes (a valid ring size).
    pub fn new(capacity: usize) -> RingProducer {
        RingProducer {
            ring: HostileRing::new(capacity),
            producer: Producer::new(capacity),
            slot: None,
        }
    }

    /// The ring's memory, to write as the peer.
    pub fn ring(&self) -> &HostileRing {
        &self.ring
    }

    /// Bytes this producer has written, padding included (its private `head`).
    pub fn head(&self) -> u64 {
        self.producer.head()
    }

    /// The consumer's `tail` as this producer last loaded it: room is reserved only up to
    /// there (a consumer that moves its `tail` back later overwrites only its own data).
    pub fn tail_seen(&self) -> u64 {
        self.producer.tail_seen()
    }

    /// The largest payload of one record.
    pub fn max_record(&self) -> usize {
        self.producer.max_record()
    }

    /// Room for a record of `min..=want` payload bytes (`min <= want <= max_record()`),
    /// kept for [`fill`](Self::fill) and [`commit`](Self::commit); `None` while full.
    ///
    /// # Errors
    ///
    /// What the peer wrote wrong, in words.
    pub fn reserve(&mut self, min: usize, want: usize) -> Result<Option<SlotView>, String> {
        assert!(
            min <= want && want <= self.max_record(),
            "reserve({min}, {want})"
        );
        let known = (min == want)
            .then(|| self.producer.reserve_known(want))
            .flatten();
        self.slot = self
            .producer
            .reserve(&self.ring.ctl, &self.ring.data, min, want)
            .map_err(|c| c.0)?;
        if let Some(known) = known {
            assert_eq!(
                self.slot,
                Some(known),
                "reserve_known disagrees with reserve"
            );
        }
        Ok(self.slot.map(|s| SlotView {
            payload: s.payload(),
            room: s.room,
        }))
    }

    /// Copies `bytes` (at most the room) into the reserved record.
    pub fn fill(&self, bytes: &[u8]) {
        let slot = self.slot.expect("a reserved slot");
        assert!(bytes.len() <= slot.room, "more than the room");
        self.ring.data.copy_in(slot.payload(), bytes);
    }

    /// Publishes the reserved record with `len` bytes (at most the room) of a message of
    /// `message_len`; whether to wake the consumer.
    pub fn commit(&mut self, len: usize, message_len: u32) -> bool {
        let slot = self.slot.take().expect("a reserved slot");
        assert!(len <= slot.room, "more than the room");
        self.producer
            .commit(&self.ring.ctl, &self.ring.data, slot, len, message_len)
    }

    /// Announces a sleep until `min` bytes fit; whether to sleep after all.
    ///
    /// # Errors
    ///
    /// What the peer wrote wrong, in words.
    pub fn prepare_sleep(&mut self, min: usize) -> Result<bool, String> {
        self.producer
            .prepare_sleep(&self.ring.ctl, min)
            .map_err(|c| c.0)
    }
}
