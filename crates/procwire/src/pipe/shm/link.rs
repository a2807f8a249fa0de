//! One shared-memory connection: the region, this side's sender and receiver (each with
//! its doorbell socket); messages, byte streams, loans and borrowed receives on top.
//!
//! The [`Sender`] and [`Receiver`] hold no lock: the blocking connection, whose handles
//! may be cloned, keeps them in a [`Link`] behind one mutex each, and the tokio
//! connection's halves own one each ([`super::reactor`]). Their steps never wait; waiting
//! (spin, then sleep on the doorbell) is the caller's, so both APIs share every step.

use std::io;
use std::ops::DerefMut;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::region::{RingBytes, RingId, SharedRegion};
use super::ring::{Consumer, Corrupt, Producer, Record, RingControl, RingData, Slot};
use super::wait::{self, Rang, Spin};
use crate::pipe::info::PeekInfo;
use crate::shim::Ordering;

/// Why a shared-memory operation failed.
#[derive(Debug)]
pub(crate) enum LinkError {
    /// The deadline passed; nothing was lost.
    Timeout,
    /// The peer closed its sending side or is gone; `mid_message` when part of a message had
    /// arrived (it is dropped, never delivered torn).
    Closed { mid_message: bool },
    /// The peer broke the ring protocol.
    Corrupt(String),
    /// The doorbell socket failed.
    Io(io::Error),
}

impl From<Corrupt> for LinkError {
    fn from(c: Corrupt) -> LinkError {
        LinkError::Corrupt(c.0)
    }
}

impl From<io::Error> for LinkError {
    fn from(e: io::Error) -> LinkError {
        LinkError::Io(e)
    }
}

/// Which end of the pipe this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Server,
    Client,
}

/// Sets up this side of a connection over `region`. `tx_bell` carries this side's data
/// rings (and the peer's space rings), `rx_bell` the other way round; `limit` is the
/// largest message the peer may send (for a byte-type pipe, 0: records are then limited by
/// the ring only).
pub(crate) fn halves(
    region: SharedRegion,
    end: End,
    tx_bell: UnixStream,
    rx_bell: UnixStream,
    limit: u32,
) -> (Sender, Receiver) {
    let (tx_ring, rx_ring) = match end {
        End::Server => (RingId::ToClient, RingId::ToServer),
        End::Client => (RingId::ToServer, RingId::ToClient),
    };
    let capacity = region.capacity();
    let limit = if limit == 0 { capacity as u32 } else { limit };
    let cpu = crate::sys::thread::current_cpu();
    region
        .control(tx_ring)
        .producer_cpu
        .store(cpu, Ordering::Relaxed);
    region
        .control(rx_ring)
        .consumer_cpu
        .store(cpu, Ordering::Relaxed);
    let region = Arc::new(region);
    let producer = Producer::new(capacity);
    let sender = Sender {
        region: Arc::clone(&region),
        ring: tx_ring,
        spin: Spin::new(),
        state: TxState {
            max_record: producer.max_record(),
            producer,
            bell: tx_bell,
            need: 0,
            mid_message: false,
        },
    };
    let receiver = Receiver {
        region,
        ring: rx_ring,
        spin: Spin::new(),
        state: RxState {
            consumer: Consumer::new(capacity, limit),
            bell: rx_bell,
            peer_closed: false,
            held: None,
            gathered: Vec::new(),
        },
    };
    (sender, receiver)
}

/// Staged bytes after which a batch is published even though more follows: the reader
/// starts on the first few kilobytes while the rest is written.
const PUBLISH_EVERY: u64 = 4096;

/// This side's writing end of its ring.
#[derive(Debug)]
pub(crate) struct Sender {
    region: Arc<SharedRegion>,
    ring: RingId,
    pub(super) spin: Spin,
    pub(super) state: TxState,
}

/// What a [`Sender`]'s steps change.
#[derive(Debug)]
pub(crate) struct TxState {
    producer: Producer,
    /// Written with data rings, read for space rings.
    pub(super) bell: UnixStream,
    /// The largest payload of one record.
    max_record: usize,
    /// The room (a record's payload bytes) the last step that found the ring full waited
    /// for.
    need: usize,
    /// Set while a message is partly in the ring (an async send cancelled half-way leaves
    /// it set, and the connection then refuses to send: the peer would get a torn message).
    pub(super) mid_message: bool,
}

/// This side's reading end of the peer's ring.
#[derive(Debug)]
pub(crate) struct Receiver {
    region: Arc<SharedRegion>,
    ring: RingId,
    pub(super) spin: Spin,
    pub(super) state: RxState,
}

/// What a [`Receiver`]'s steps change.
#[derive(Debug)]
pub(crate) struct RxState {
    consumer: Consumer,
    /// Read for data rings, written with space rings.
    pub(super) bell: UnixStream,
    pub(super) peer_closed: bool,
    /// A record partly handed out by `recv_into` or `read`: the bytes already given.
    held: Option<(Record, usize)>,
    /// What has arrived of the message being received and is not yet handed out.
    gathered: Vec<u8>,
}

/// A send in progress: the message, how much of it is in the ring, and whether it is one
/// message or stream bytes.
#[derive(Debug)]
pub(crate) struct Outgoing<'m> {
    message: &'m [u8],
    sent: usize,
    whole: bool,
}

impl<'m> Outgoing<'m> {
    /// `message` to send as one message (`whole`), or as stream bytes (each record its own
    /// unit, as a byte-type pipe wants).
    pub(crate) fn new(message: &'m [u8], whole: bool) -> Outgoing<'m> {
        Outgoing {
            message,
            sent: 0,
            whole,
        }
    }

    /// Bytes placed in the ring so far.
    #[cfg(feature = "tokio")]
    pub(crate) fn sent(&self) -> usize {
        self.sent
    }
}

impl Sender {
    /// The ring's control block and data.
    pub(super) fn parts(&self) -> (&RingControl, RingBytes<'_>) {
        (self.region.control(self.ring), self.region.data(self.ring))
    }

    /// The ring's control block and data, with what the steps change.
    pub(super) fn split(&mut self) -> (&RingControl, RingBytes<'_>, &mut Spin, &mut TxState) {
        let Sender {
            region,
            ring,
            spin,
            state,
        } = self;
        (region.control(*ring), region.data(*ring), spin, state)
    }

    /// The largest message [`loan`](Link::loan) can place in the ring in one piece.
    pub(crate) fn max_loan(&self) -> usize {
        self.state.max_record
    }

    /// Spins, then sleeps on the doorbell, until `step` gives a value (a step that gives
    /// none sets [`TxState::need`]).
    fn wait<T>(
        &mut self,
        mut step: impl FnMut(&mut TxState, &RingControl, &RingBytes<'_>) -> Result<Option<T>, LinkError>,
    ) -> Result<T, LinkError> {
        let (ctl, data, spin, state) = self.split();
        loop {
            let found = spin.spin(&ctl.producer_cpu, &ctl.consumer_cpu, None, || {
                step(state, ctl, &data)
            })?;
            if let Some(value) = found {
                return Ok(value);
            }
            if state.must_sleep(ctl)? {
                let rang = wait::sleep(&state.bell, None);
                state.woke(ctl);
                spin.slept();
                if rang? == Rang::PeerClosed {
                    return Err(LinkError::Closed { mid_message: false });
                }
            }
        }
    }

    /// Sends all of `message`, waiting for room as long as it takes.
    pub(crate) fn send(&mut self, message: &[u8], whole: bool) -> Result<(), LinkError> {
        self.send_many(&[message], whole)
    }

    /// Sends each of `messages` in order, waiting for room as long as it takes; they are
    /// published together (a few kilobytes at a time), not one by one.
    pub(crate) fn send_many<M: AsRef<[u8]>>(
        &mut self,
        messages: &[M],
        whole: bool,
    ) -> Result<(), LinkError> {
        for (i, message) in messages.iter().enumerate() {
            let more = i + 1 < messages.len();
            let (ctl, data, _, state) = self.split();
            if state.push_small(ctl, &data, message.as_ref(), more)? {
                continue;
            }
            let mut out = Outgoing::new(message.as_ref(), whole);
            self.wait(|state, ctl, data| {
                state
                    .push(ctl, data, &mut out, more)
                    .map(|done| done.then_some(()))
            })?;
        }
        Ok(())
    }

    /// Waits for room for a message of `len` bytes in one record (`len <= max_loan()`).
    fn room_for(&mut self, len: usize) -> Result<Slot, LinkError> {
        self.wait(|state, ctl, data| state.reserve_whole(ctl, data, len))
    }
}

impl TxState {
    /// Room for a message of `len` bytes in one record, if the ring has it now.
    pub(super) fn reserve_whole(
        &mut self,
        ctl: &RingControl,
        data: &RingBytes<'_>,
        len: usize,
    ) -> Result<Option<Slot>, LinkError> {
        self.need = len;
        Ok(self.producer.reserve(ctl, data, len, len)?)
    }

    /// Places a message that fits one record in the ring, if there is room now: what
    /// [`push`](Self::push) does for such a message, in fewer steps (this is the path of
    /// every small message). `false` when it is longer or the ring is too full; then
    /// nothing was written, and `push` takes over.
    #[inline]
    pub(super) fn push_small(
        &mut self,
        ctl: &RingControl,
        data: &RingBytes<'_>,
        message: &[u8],
        more: bool,
    ) -> Result<bool, LinkError> {
        let len = message.len();
        if len > self.max_record {
            return Ok(false);
        }
        let slot = match self.producer.reserve_known(len) {
            Some(slot) => slot,
            None => match self.producer.reserve(ctl, data, len, len)? {
                Some(slot) => slot,
                None => return Ok(false),
            },
        };
        data.copy_in(slot.payload(), message);
        // One record holds all of it: its message length is its own, for a message as for
        // stream bytes.
        self.producer.stage(data, slot, len, len as u32);
        self.mid_message = false;
        if !more || self.producer.staged() >= PUBLISH_EVERY {
            self.publish(ctl);
        }
        Ok(true)
    }

    /// Places as much of `out` in the ring as fits now; `true` when all of it is in.
    ///
    /// Records are published as they fill [`PUBLISH_EVERY`] bytes, whenever the ring is
    /// full (the reader must see what there is before this side waits), and at the end
    /// unless `more` says another message follows at once (a batch then costs one
    /// publication per few kilobytes, not one per message).
    pub(super) fn push(
        &mut self,
        ctl: &RingControl,
        data: &RingBytes<'_>,
        out: &mut Outgoing<'_>,
        more: bool,
    ) -> Result<bool, LinkError> {
        loop {
            let message = out.message;
            let want = (message.len() - out.sent).min(self.max_record);
            // A message that fits one record goes in one (a receiver can then borrow it in
            // place); a longer one streams in whatever pieces fit, 256 bytes at least.
            let min = if message.len() <= self.max_record {
                want
            } else {
                want.min(256)
            };
            let Some(slot) = self.producer.reserve(ctl, data, min, want)? else {
                self.publish(ctl);
                self.need = min;
                return Ok(false);
            };
            let n = slot.room.min(want);
            data.copy_in(slot.payload(), &message[out.sent..out.sent + n]);
            let message_len = if out.whole { message.len() } else { n };
            self.mid_message = out.whole && out.sent + n < message.len();
            self.producer.stage(data, slot, n, message_len as u32);
            out.sent += n;
            let done = out.sent == message.len();
            if (done && !more) || self.producer.staged() >= PUBLISH_EVERY {
                self.publish(ctl);
            }
            if done {
                return Ok(true);
            }
        }
    }

    /// Publishes what is staged, ringing the reader's doorbell if it sleeps.
    pub(super) fn publish(&mut self, ctl: &RingControl) {
        if self.producer.staged() > 0 && self.producer.publish(ctl) {
            wait::ring(&self.bell);
        }
    }

    /// Says this side sleeps until a record of [`need`](Self::need) bytes fits; `false`
    /// when it fits already (then no sleep).
    pub(super) fn must_sleep(&mut self, ctl: &RingControl) -> Result<bool, LinkError> {
        Ok(self.producer.prepare_sleep(ctl, self.need)?)
    }

    /// After a sleep: no longer waiting.
    pub(super) fn woke(&self, ctl: &RingControl) {
        ctl.producer_waiting.store(0, Ordering::Relaxed);
    }
}

impl Receiver {
    /// The ring's control block and data.
    pub(super) fn parts(&self) -> (&RingControl, RingBytes<'_>) {
        (self.region.control(self.ring), self.region.data(self.ring))
    }

    /// The ring's control block and data, with what the steps change.
    pub(super) fn split(&mut self) -> (&RingControl, RingBytes<'_>, &mut Spin, &mut RxState) {
        let Receiver {
            region,
            ring,
            spin,
            state,
        } = self;
        (region.control(*ring), region.data(*ring), spin, state)
    }

    /// Spins, then sleeps on the doorbell, until `step` gives a value or `deadline`
    /// passes (then `step` has a last look).
    #[inline]
    fn wait<T>(
        &mut self,
        deadline: Option<Instant>,
        mut step: impl FnMut(&mut RxState, &RingControl, &RingBytes<'_>) -> Result<Option<T>, LinkError>,
    ) -> Result<T, LinkError> {
        let (ctl, data, spin, state) = self.split();
        loop {
            let mut looked = false;
            let found = spin.spin(&ctl.consumer_cpu, &ctl.producer_cpu, deadline, || {
                // After the first look, a step can only find something new when the ring
                // has: polling is then one load and a compare.
                if looked && state.nothing_new(ctl) {
                    return Ok(None);
                }
                looked = true;
                step(state, ctl, &data)
            })?;
            if let Some(value) = found {
                return Ok(value);
            }
            if state.must_sleep(ctl) {
                let rang = wait::sleep(&state.bell, deadline);
                state.woke(ctl);
                spin.slept();
                match rang? {
                    Rang::Maybe => {}
                    Rang::PeerClosed => state.peer_closed = true,
                    Rang::TimedOut => {
                        return step(state, ctl, &data)?.ok_or(LinkError::Timeout);
                    }
                }
            }
        }
    }

    /// Receives the next whole message (or the rest of one `recv_into` began).
    pub(crate) fn recv(&mut self, deadline: Option<Instant>) -> Result<Vec<u8>, LinkError> {
        self.wait(deadline, RxState::pull)
    }

    /// Receives into `buf`: the next message, or the rest of one; `(bytes, complete)`.
    #[inline]
    pub(crate) fn recv_into(&mut self, buf: &mut [u8]) -> Result<(usize, bool), LinkError> {
        let mut filled = 0;
        self.wait(None, |state, ctl, data| {
            if filled == 0 {
                if let Some(done) = state.take_small_into(ctl, data, buf)? {
                    return Ok(Some(done));
                }
            }
            state.pull_into(ctl, data, buf, &mut filled)
        })
    }

    /// Receives into `buf` as [`recv_into`](Self::recv_into) does, waiting at most until
    /// `deadline` for the first bytes (then `Timeout`; nothing is lost).
    pub(crate) fn recv_into_by(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
    ) -> Result<(usize, bool), LinkError> {
        let mut filled = 0;
        self.wait(Some(deadline), |state, ctl, data| {
            match state.pull_into(ctl, data, buf, &mut filled)? {
                None if filled > 0 => Ok(Some((filled, false))),
                found => Ok(found),
            }
        })
    }

    /// What is waiting, taking nothing (see [`RxState::peek_info`]).
    pub(crate) fn peek_info(&mut self) -> PeekInfo {
        let (ctl, data, _, state) = self.split();
        state.peek_info(ctl, &data)
    }

    /// Whether anything has arrived that no receive has handed out yet.
    pub(crate) fn has_unread(&mut self) -> bool {
        let (ctl, _, _, state) = self.split();
        state.held.is_some() || !state.gathered.is_empty() || state.consumer.has_published(ctl)
    }

    /// Reads stream bytes: what one record (or the rest of one) holds, up to `buf.len()`;
    /// `Ok(0)` when the peer has closed and everything was read.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Result<usize, LinkError> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.wait(None, |state, ctl, data| state.read_now(ctl, data, buf))
    }

    /// Waits for at least one message, then hands every message already in the ring (up
    /// to `max`, at least 1) to `each`, in order, and frees them all at once; returns how
    /// many. A message in one record is handed in place; a longer one (or the rest of one
    /// `recv_into` began) is gathered first.
    pub(crate) fn recv_many(
        &mut self,
        deadline: Option<Instant>,
        max: usize,
        each: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, LinkError> {
        self.wait(deadline, |state, ctl, data| {
            state.pull_many(ctl, data, max.max(1), each)
        })
    }

    /// Reads stream bytes as [`read`](Self::read) does, waiting at most until `deadline`
    /// when one is given (then `Timeout`).
    pub(crate) fn read_by(
        &mut self,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> Result<usize, LinkError> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.wait(deadline, |state, ctl, data| state.read_now(ctl, data, buf))
    }

    /// Waits for the next record and takes it out of the ring's accounting as
    /// `recv_borrowed` needs: `Some` when it is a whole message in place.
    #[inline]
    fn next_whole(&mut self, deadline: Option<Instant>) -> Result<Option<Record>, LinkError> {
        if !self.state.between_messages() {
            return Ok(None);
        }
        let record = self.wait(deadline, |state, ctl, data| state.peek(ctl, data))?;
        Ok(self.state.whole_or_hold(record))
    }

    /// Frees `record` for the peer.
    #[inline]
    fn consume(&mut self, record: Record) {
        let ctl = self.region.control(self.ring);
        self.state.consume(ctl, record);
    }
}

impl RxState {
    /// Whether a step would find what the last one found: nothing held or gathered, the
    /// peer not known to be gone, and nothing published beyond what was taken.
    #[inline]
    fn nothing_new(&self, ctl: &RingControl) -> bool {
        self.held.is_none()
            && self.gathered.is_empty()
            && !self.peer_closed
            && self.consumer.all_taken(ctl)
    }

    /// Whether no message is partly handed out or gathered.
    pub(super) fn between_messages(&self) -> bool {
        self.held.is_none() && self.gathered.is_empty()
    }

    /// `record` (just peeked) when it is a whole message; otherwise it is kept as the one
    /// being received, for the gathering receive that follows.
    pub(super) fn whole_or_hold(&mut self, record: Record) -> Option<Record> {
        if record.first && record.last {
            return Some(record);
        }
        self.held = Some((record, 0));
        None
    }

    /// The next record, if one is there; `Closed` when none is and the peer is gone.
    pub(super) fn peek(
        &mut self,
        ctl: &RingControl,
        data: &RingBytes<'_>,
    ) -> Result<Option<Record>, LinkError> {
        if let Some(record) = self.consumer.peek_whole(ctl, data)? {
            return Ok(Some(record));
        }
        match self.consumer.peek(ctl, data)? {
            Some(record) => Ok(Some(record)),
            None if self.peer_closed => Err(LinkError::Closed {
                mid_message: self.consumer.mid_message(),
            }),
            None => Ok(None),
        }
    }

    /// The record being handed out and how much of it was, or the next one.
    fn next(
        &mut self,
        ctl: &RingControl,
        data: &RingBytes<'_>,
    ) -> Result<Option<(Record, usize)>, LinkError> {
        match self.held.take() {
            Some(held) => Ok(Some(held)),
            None => Ok(self.peek(ctl, data)?.map(|record| (record, 0))),
        }
    }

    #[inline]
    fn consume(&mut self, ctl: &RingControl, record: Record) {
        if self.consumer.consume(ctl, record) {
            wait::ring(&self.bell);
        }
    }

    /// Takes in what has arrived of the current message; the message when all of it has.
    pub(super) fn pull(
        &mut self,
        ctl: &RingControl,
        data: &RingBytes<'_>,
    ) -> Result<Option<Vec<u8>>, LinkError> {
        loop {
            let Some((record, done)) = self.next(ctl, data)? else {
                return Ok(None);
            };
            if record.first && done == 0 {
                self.gathered.reserve_exact(record.message_len as usize);
            }
            let at = self.gathered.len();
            self.gathered.resize(at + record.len - done, 0);
            data.copy_out(record.offset + done, &mut self.gathered[at..]);
            self.consume(ctl, record);
            if record.last {
                return Ok(Some(std::mem::take(&mut self.gathered)));
            }
        }
    }

    /// Hands the messages in the ring (at most `max`) to `each`; how many, `None` while
    /// there are none. See [`Receiver::recv_many`].
    pub(super) fn pull_many(
        &mut self,
        ctl: &RingControl,
        data: &RingBytes<'_>,
        max: usize,
        each: &mut dyn FnMut(&[u8]),
    ) -> Result<Option<usize>, LinkError> {
        let mut handed = 0;
        let mut taken = false;
        while handed < max {
            if self.held.is_none() && self.gathered.is_empty() {
                let record = match self.peek(ctl, data) {
                    Ok(Some(record)) => record,
                    Ok(None) => break,
                    // What was handed counts; the next call reports the end.
                    Err(LinkError::Closed { .. }) if handed > 0 => break,
                    Err(e) => return Err(e),
                };
                if record.first && record.last {
                    // SAFETY: the record is published to this consumer (`&mut self` is its
                    // only user) and is freed only below, after `each` returned, so a peer
                    // that keeps the protocol does not write it meanwhile (one that breaks
                    // it changes plain bytes, which the pipe's docs tell callers to treat
                    // as input).
                    each(unsafe { data.slice(record.offset, record.len) });
                    self.consumer.take(record);
                    taken = true;
                    handed += 1;
                    continue;
                }
            }
            if taken {
                // What was handed is freed before a long message is gathered: the producer
                // may need the room to send the rest of it.
                self.release(ctl);
                taken = false;
            }
            match self.pull(ctl, data)? {
                Some(message) => {
                    each(&message);
                    handed += 1;
                }
                None => break,
            }
        }
        if taken {
            self.release(ctl);
        }
        Ok((handed > 0).then_some(handed))
    }

    fn release(&mut self, ctl: &RingControl) {
        if self.consumer.release(ctl) {
            wait::ring(&self.bell);
        }
    }

    /// Between messages, takes the next one into `buf` when it is there, whole in one
    /// record, and fits: what [`pull_into`](Self::pull_into) does for such a message, in
    /// fewer steps (this is the path of every small message). `None` when it cannot (a
    /// longer message, a part held, nothing there); then nothing was taken, and
    /// `pull_into` takes over.
    #[inline]
    pub(super) fn take_small_into(
        &mut self,
        ctl: &RingControl,
        data: &RingBytes<'_>,
        buf: &mut [u8],
    ) -> Result<Option<(usize, bool)>, LinkError> {
        if !self.between_messages() {
            return Ok(None);
        }
        // Only the short look: anything else (a longer message, padding, nothing yet, a
        // broken record) is for `pull_into`'s full one, which would otherwise run twice.
        let Some(record) = self.consumer.peek_whole(ctl, data)? else {
            return Ok(None);
        };
        if record.len > buf.len() {
            return Ok(None);
        }
        data.copy_out(record.offset, &mut buf[..record.len]);
        self.consume(ctl, record);
        Ok(Some((record.len, true)))
    }

    /// Fills `buf` from `*filled` on with the current message; `(bytes, complete)` once
    /// the message ends or `buf` is full, `None` while waiting for more with room left.
    pub(super) fn pull_into(
        &mut self,
        ctl: &RingControl,
        data: &RingBytes<'_>,
        buf: &mut [u8],
        filled: &mut usize,
    ) -> Result<Option<(usize, bool)>, LinkError> {
        if *filled == 0 && !self.gathered.is_empty() {
            let n = buf.len().min(self.gathered.len());
            buf[..n].copy_from_slice(&self.gathered[..n]);
            self.gathered.drain(..n);
            *filled = n;
            if !self.gathered.is_empty() {
                return Ok(Some((n, false)));
            }
        }
        loop {
            if *filled > 0 && *filled == buf.len() && self.held.is_none() {
                return Ok(Some((*filled, false)));
            }
            let Some((record, done)) = self.next(ctl, data)? else {
                return Ok(None);
            };
            let k = (buf.len() - *filled).min(record.len - done);
            data.copy_out(record.offset + done, &mut buf[*filled..*filled + k]);
            *filled += k;
            if done + k < record.len {
                self.held = Some((record, done + k));
                return Ok(Some((*filled, false)));
            }
            self.consume(ctl, record);
            if record.last {
                return Ok(Some((*filled, true)));
            }
        }
    }

    /// Stream bytes now: what one record (or the rest of one) holds, up to `buf.len()`
    /// (not empty); `Some(0)` at the end of the stream, `None` while nothing is there.
    pub(super) fn read_now(
        &mut self,
        ctl: &RingControl,
        data: &RingBytes<'_>,
        buf: &mut [u8],
    ) -> Result<Option<usize>, LinkError> {
        if !self.gathered.is_empty() {
            let n = buf.len().min(self.gathered.len());
            buf[..n].copy_from_slice(&self.gathered[..n]);
            self.gathered.drain(..n);
            return Ok(Some(n));
        }
        let (record, done) = match self.next(ctl, data) {
            Ok(Some(next)) => next,
            Ok(None) => return Ok(None),
            Err(LinkError::Closed { mid_message: false }) => return Ok(Some(0)),
            Err(e) => return Err(e),
        };
        let k = buf.len().min(record.len - done);
        data.copy_out(record.offset + done, &mut buf[..k]);
        if done + k < record.len {
            self.held = Some((record, done + k));
        } else {
            self.consume(ctl, record);
        }
        Ok(Some(k))
    }

    /// What is waiting, taking nothing: the payload published and not yet handed out, and
    /// the message the next receive works on (its length, and the bytes of it not yet
    /// handed out, arrived or not).
    pub(super) fn peek_info(&self, ctl: &RingControl, data: &RingBytes<'_>) -> PeekInfo {
        let scanned = self.consumer.scan(ctl, data);
        let done = self.held.map_or(0, |(_, done)| done);
        let gathered = self.gathered.len();
        let message = match (self.consumer.current(), self.held) {
            (Some((total, unfreed)), _) => Some((total, unfreed as usize)),
            (None, Some((record, _))) => Some((record.message_len, record.message_len as usize)),
            (None, None) => scanned
                .first_message_len
                .map(|total| (total, total as usize)),
        };
        PeekInfo {
            bytes_available: gathered + scanned.payload.saturating_sub(done),
            message_len: message.map(|(total, _)| total as usize),
            bytes_left_in_message: message
                .map_or(0, |(_, unfreed)| (gathered + unfreed).saturating_sub(done)),
        }
    }

    /// Says this side sleeps until data comes; `false` when some came already.
    pub(super) fn must_sleep(&self, ctl: &RingControl) -> bool {
        self.consumer.prepare_sleep(ctl)
    }

    /// After a sleep: no longer waiting.
    pub(super) fn woke(&self, ctl: &RingControl) {
        ctl.consumer_waiting.store(0, Ordering::Relaxed);
    }
}

/// A shared-memory connection for the blocking API, shared by the handles of one pipe
/// connection.
#[derive(Debug)]
pub(crate) struct Link {
    tx: Mutex<Sender>,
    rx: Mutex<Receiver>,
    max_record: usize,
}

impl Link {
    /// Sets up this side of a connection, as [`halves`] does.
    pub(crate) fn new(
        region: SharedRegion,
        end: End,
        tx_bell: UnixStream,
        rx_bell: UnixStream,
        limit: u32,
    ) -> Link {
        let (tx, rx) = halves(region, end, tx_bell, rx_bell, limit);
        Link {
            max_record: tx.max_loan(),
            tx: Mutex::new(tx),
            rx: Mutex::new(rx),
        }
    }

    fn lock_tx(&self) -> MutexGuard<'_, Sender> {
        self.tx.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_rx(&self) -> MutexGuard<'_, Receiver> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The largest message [`loan`](Self::loan) can place in the ring in one piece.
    pub(crate) fn max_loan(&self) -> usize {
        self.max_record
    }

    /// Sends `message` as one message (`whole`), or as stream bytes.
    pub(crate) fn send(&self, message: &[u8], whole: bool) -> Result<(), LinkError> {
        self.lock_tx().send(message, whole)
    }

    /// Receives the next whole message (or the rest of one `recv_into` began).
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<Vec<u8>, LinkError> {
        self.lock_rx().recv(deadline)
    }

    /// Receives into `buf`: the next message, or the rest of one; `(bytes, complete)`.
    #[inline]
    pub(crate) fn recv_into(&self, buf: &mut [u8]) -> Result<(usize, bool), LinkError> {
        self.lock_rx().recv_into(buf)
    }

    /// Receives into `buf`, waiting at most until `deadline` for the first bytes.
    pub(crate) fn recv_into_by(
        &self,
        buf: &mut [u8],
        deadline: Instant,
    ) -> Result<(usize, bool), LinkError> {
        self.lock_rx().recv_into_by(buf, deadline)
    }

    /// Reads stream bytes, waiting at most until `deadline` when one is given.
    pub(crate) fn read_by(
        &self,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> Result<usize, LinkError> {
        self.lock_rx().read_by(buf, deadline)
    }

    /// What is waiting, taking nothing.
    pub(crate) fn peek_info(&self) -> PeekInfo {
        self.lock_rx().peek_info()
    }

    /// Whether anything has arrived that no receive has handed out yet.
    pub(crate) fn has_unread(&self) -> bool {
        self.lock_rx().has_unread()
    }

    /// Reads stream bytes (see [`Receiver::read`]).
    pub(crate) fn read(&self, buf: &mut [u8]) -> Result<usize, LinkError> {
        self.lock_rx().read(buf)
    }

    /// Waits for room for a message of `len` bytes in one record (`len <=
    /// max_loan()`), and lends it: the caller writes it in place, then [`Loan::commit`]s.
    #[inline]
    pub(crate) fn loan(&self, len: usize) -> Result<Loan<MutexGuard<'_, Sender>>, LinkError> {
        debug_assert!(len <= self.max_record);
        let mut tx = self.lock_tx();
        let slot = match tx.state.producer.reserve_known(len) {
            Some(slot) => slot,
            None => tx.room_for(len)?,
        };
        Ok(Loan::new(tx, slot, len))
    }

    /// Sends each of `messages` in order, published together (see [`Sender::send_many`]).
    pub(crate) fn send_many<M: AsRef<[u8]>>(
        &self,
        messages: &[M],
        whole: bool,
    ) -> Result<(), LinkError> {
        self.lock_tx().send_many(messages, whole)
    }

    /// Hands the messages that have arrived to `each` (see [`Receiver::recv_many`]).
    pub(crate) fn recv_many(
        &self,
        deadline: Option<Instant>,
        max: usize,
        each: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, LinkError> {
        self.lock_rx().recv_many(deadline, max, each)
    }

    /// Waits for the next message and, when it lies in the ring in one record (a message
    /// of at most [`max_loan`](Self::max_loan) bytes), lends it in place; a longer message
    /// (or the rest of one partly read) is gathered into memory of its own.
    #[inline]
    pub(crate) fn recv_borrowed(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Borrowed<MutexGuard<'_, Receiver>>, LinkError> {
        let mut rx = self.lock_rx();
        if let Some(record) = rx.next_whole(deadline)? {
            return Ok(Borrowed::InPlace { rx, record });
        }
        rx.recv(deadline).map(Borrowed::Owned)
    }

    /// Ends this side's sending: the peer reads what was sent, then end-of-stream.
    pub(crate) fn finish_sending(&self) -> io::Result<()> {
        self.lock_tx()
            .state
            .bell
            .shutdown(std::net::Shutdown::Write)
    }

    /// Ends both directions (the peer's receives and sends fail).
    pub(crate) fn shutdown(&self) {
        let _ = self.lock_tx().state.bell.shutdown(std::net::Shutdown::Both);
        let _ = self.lock_rx().state.bell.shutdown(std::net::Shutdown::Both);
    }
}

/// Room in the ring lent to the caller for one message, published by [`commit`](Self::commit)
/// (dropping it publishes nothing). `G` holds the sender exclusively: the blocking link's
/// lock guard, or the tokio sender's unique borrow.
#[derive(Debug)]
pub(crate) struct Loan<G: DerefMut<Target = Sender>> {
    tx: G,
    slot: Slot,
    len: usize,
}

impl<G: DerefMut<Target = Sender>> Loan<G> {
    /// Room for `len` bytes at `slot`, which `tx` reserved.
    pub(super) fn new(tx: G, slot: Slot, len: usize) -> Loan<G> {
        Loan { tx, slot, len }
    }

    /// The lent bytes, to read back.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        let (_, data) = self.tx.parts();
        // SAFETY: the slot was reserved by this producer, which `self.tx` holds exclusively
        // (a lock guard or a unique borrow), and is not yet published, so no one else
        // writes it; mutable slices of it borrow `self` mutably, so none exists while this
        // one lives.
        unsafe { data.slice(self.slot.payload(), self.len) }
    }

    /// The lent bytes, to write.
    #[inline]
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        let (_, data) = self.tx.parts();
        // SAFETY: the slot was reserved by this producer, which `self.tx` holds exclusively,
        // and is not yet published, so no one else writes it; the slice borrows `self`
        // mutably, so no second one exists.
        unsafe { data.slice_mut(self.slot.payload(), self.len) }
    }

    /// Publishes the message.
    #[inline]
    pub(crate) fn commit(mut self) {
        let (ctl, data, _, state) = self.tx.split();
        if state
            .producer
            .commit(ctl, &data, self.slot, self.len, self.len as u32)
        {
            wait::ring(&state.bell);
        }
    }
}

/// A received message: in place in the ring (freed when dropped), or gathered. `R` holds
/// the receiver exclusively: the blocking link's lock guard, or the tokio receiver's unique
/// borrow.
#[derive(Debug)]
pub(crate) enum Borrowed<R: DerefMut<Target = Receiver>> {
    /// The message in the ring.
    InPlace { rx: R, record: Record },
    /// A message that was not in one piece.
    Owned(Vec<u8>),
}

impl<R: DerefMut<Target = Receiver>> Borrowed<R> {
    /// The message's bytes.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Borrowed::InPlace { rx, record } => {
                let (_, data) = rx.parts();
                // SAFETY: the record is published to this consumer, which `rx` holds
                // exclusively, and is consumed only when this value is dropped, so a peer
                // that keeps the protocol does not write it meanwhile (one that breaks it
                // changes plain bytes; the pipe's docs tell callers to treat them as input).
                unsafe { data.slice(record.offset, record.len) }
            }
            Borrowed::Owned(v) => v,
        }
    }
}

impl<R: DerefMut<Target = Receiver>> Drop for Borrowed<R> {
    fn drop(&mut self) {
        if let Borrowed::InPlace { rx, record } = self {
            rx.consume(*record);
        }
    }
}
