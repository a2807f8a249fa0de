//! One shared-memory connection: the region, this side's producer and consumer, and the two
//! doorbell sockets; messages, byte streams, loans and borrowed receives on top.

use std::io;
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::region::{RingBytes, RingId, SharedRegion};
use super::ring::{Consumer, Corrupt, Producer, Record, RingControl, RingData};
use super::wait::{self, Rang, Spin};
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

/// A shared-memory connection, shared by the handles of one pipe connection.
#[derive(Debug)]
pub(crate) struct Link {
    region: SharedRegion,
    tx: Mutex<TxSide>,
    rx: Mutex<RxSide>,
    tx_ring: RingId,
    rx_ring: RingId,
    /// The largest payload of one record this side writes.
    max_record: usize,
}

#[derive(Debug)]
pub(crate) struct TxSide {
    producer: Producer,
    /// Written with data rings, read for space rings.
    bell: UnixStream,
    spin: Spin,
}

#[derive(Debug)]
pub(crate) struct RxSide {
    consumer: Consumer,
    /// Read for data rings, written with space rings.
    bell: UnixStream,
    spin: Spin,
    peer_closed: bool,
    /// A record partly handed out by `recv_into` or `read`: the bytes already given.
    held: Option<(Record, usize)>,
    /// What a receive that timed out had gathered of a message.
    gathered: Vec<u8>,
}

impl Link {
    /// Sets up this side of a connection over `region`. `tx_bell` carries this side's data
    /// rings (and the peer's space rings), `rx_bell` the other way round; `limit` is the
    /// largest message the peer may send (for a byte-type pipe, 0: records are then
    /// limited by the ring only).
    pub(crate) fn new(
        region: SharedRegion,
        end: End,
        tx_bell: UnixStream,
        rx_bell: UnixStream,
        limit: u32,
    ) -> io::Result<Link> {
        for bell in [&tx_bell, &rx_bell] {
            bell.set_nonblocking(false)?;
            bell.set_read_timeout(None)?;
        }
        let (tx_ring, rx_ring) = match end {
            End::Server => (RingId::ToClient, RingId::ToServer),
            End::Client => (RingId::ToServer, RingId::ToClient),
        };
        let capacity = region.capacity();
        let limit = if limit == 0 { capacity as u32 } else { limit };
        let producer = Producer::new(capacity);
        let cpu = crate::sys::thread::current_cpu();
        region
            .control(tx_ring)
            .producer_cpu
            .store(cpu, Ordering::Relaxed);
        region
            .control(rx_ring)
            .consumer_cpu
            .store(cpu, Ordering::Relaxed);
        Ok(Link {
            max_record: producer.max_record(),
            tx: Mutex::new(TxSide {
                producer,
                bell: tx_bell,
                spin: Spin::new(),
            }),
            rx: Mutex::new(RxSide {
                consumer: Consumer::new(capacity, limit),
                bell: rx_bell,
                spin: Spin::new(),
                peer_closed: false,
                held: None,
                gathered: Vec::new(),
            }),
            region,
            tx_ring,
            rx_ring,
        })
    }

    fn lock_tx(&self) -> MutexGuard<'_, TxSide> {
        self.tx.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_rx(&self) -> MutexGuard<'_, RxSide> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tx_parts(&self) -> (&RingControl, RingBytes<'_>) {
        (
            self.region.control(self.tx_ring),
            self.region.data(self.tx_ring),
        )
    }

    fn rx_parts(&self) -> (&RingControl, RingBytes<'_>) {
        (
            self.region.control(self.rx_ring),
            self.region.data(self.rx_ring),
        )
    }

    /// The largest message [`loan`](Self::loan) can place in the ring in one piece.
    pub(crate) fn max_loan(&self) -> usize {
        self.max_record
    }

    /// Sends `message` as one message (`whole`), or as stream bytes (each record its own
    /// unit, as a byte-type pipe wants).
    pub(crate) fn send(&self, message: &[u8], whole: bool) -> Result<(), LinkError> {
        let mut tx = self.lock_tx();
        let (ctl, data) = self.tx_parts();
        let mut sent = 0;
        loop {
            let want = (message.len() - sent).min(self.max_record);
            // A message that fits one record goes in one (a receiver can then borrow it in
            // place); a longer one streams in whatever pieces fit, 256 bytes at least.
            let min = if message.len() <= self.max_record {
                want
            } else {
                want.min(256)
            };
            let slot = self.room(&mut tx, min, want)?;
            let n = slot.room.min(want);
            data.copy_in(slot.payload(), &message[sent..sent + n]);
            let message_len = if whole { message.len() } else { n };
            if tx.producer.commit(ctl, &data, slot, n, message_len as u32) {
                wait::ring(&tx.bell);
            }
            sent += n;
            if sent == message.len() {
                return Ok(());
            }
        }
    }

    /// Waits for room for a record of `min..=want` bytes.
    fn room(
        &self,
        tx: &mut TxSide,
        min: usize,
        want: usize,
    ) -> Result<super::ring::Slot, LinkError> {
        let (ctl, data) = self.tx_parts();
        loop {
            let TxSide {
                producer,
                bell,
                spin,
            } = &mut *tx;
            let found = spin.spin(&ctl.producer_cpu, &ctl.consumer_cpu, None, || {
                producer.reserve(ctl, &data, min, want)
            })?;
            if let Some(slot) = found {
                return Ok(slot);
            }
            if producer.prepare_sleep(ctl, min)? {
                let rang = wait::sleep(bell, None);
                ctl.producer_waiting.store(0, Ordering::Relaxed);
                spin.slept();
                if rang? == Rang::PeerClosed {
                    return Err(LinkError::Closed { mid_message: false });
                }
            }
        }
    }

    /// The next record, waiting until `deadline`.
    fn next_record(&self, rx: &mut RxSide, deadline: Option<Instant>) -> Result<Record, LinkError> {
        let (ctl, data) = self.rx_parts();
        loop {
            let RxSide {
                consumer,
                bell,
                spin,
                peer_closed,
                ..
            } = &mut *rx;
            if *peer_closed {
                return match consumer.peek(ctl, &data)? {
                    Some(record) => Ok(record),
                    None => Err(LinkError::Closed {
                        mid_message: consumer.mid_message(),
                    }),
                };
            }
            let found = spin.spin(&ctl.consumer_cpu, &ctl.producer_cpu, deadline, || {
                consumer.peek(ctl, &data)
            })?;
            if let Some(record) = found {
                return Ok(record);
            }
            if consumer.prepare_sleep(ctl) {
                let rang = wait::sleep(bell, deadline);
                ctl.consumer_waiting.store(0, Ordering::Relaxed);
                spin.slept();
                match rang? {
                    Rang::Maybe => {}
                    Rang::PeerClosed => *peer_closed = true,
                    Rang::TimedOut => match consumer.peek(ctl, &data)? {
                        Some(record) => return Ok(record),
                        None => return Err(LinkError::Timeout),
                    },
                }
            }
        }
    }

    fn consume(&self, rx: &mut RxSide, record: Record) {
        let (ctl, _) = self.rx_parts();
        if rx.consumer.consume(ctl, record) {
            wait::ring(&rx.bell);
        }
    }

    /// Receives the next whole message (or the rest of one `recv_into` began).
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<Vec<u8>, LinkError> {
        let mut rx = self.lock_rx();
        let (_, data) = self.rx_parts();
        let mut out = std::mem::take(&mut rx.gathered);
        loop {
            let (record, done) = match rx.held.take() {
                Some(held) => held,
                None => match self.next_record(&mut rx, deadline) {
                    Ok(record) => (record, 0),
                    Err(e) => {
                        rx.gathered = out;
                        return Err(e);
                    }
                },
            };
            if record.first && done == 0 {
                out.reserve_exact(record.message_len as usize);
            }
            let at = out.len();
            out.resize(at + record.len - done, 0);
            data.copy_out(record.offset + done, &mut out[at..]);
            self.consume(&mut rx, record);
            if record.last {
                return Ok(out);
            }
        }
    }

    /// Receives into `buf`: the next message, or the rest of one; `(bytes, complete)`.
    pub(crate) fn recv_into(&self, buf: &mut [u8]) -> Result<(usize, bool), LinkError> {
        let mut rx = self.lock_rx();
        let (_, data) = self.rx_parts();
        let mut n = 0;
        if !rx.gathered.is_empty() {
            n = buf.len().min(rx.gathered.len());
            buf[..n].copy_from_slice(&rx.gathered[..n]);
            rx.gathered.drain(..n);
            if !rx.gathered.is_empty() {
                return Ok((n, false));
            }
        }
        loop {
            let (record, done) = match rx.held.take() {
                Some(held) => held,
                None if n > 0 && n == buf.len() => return Ok((n, false)),
                None => (self.next_record(&mut rx, None)?, 0),
            };
            let k = (buf.len() - n).min(record.len - done);
            data.copy_out(record.offset + done, &mut buf[n..n + k]);
            n += k;
            if done + k < record.len {
                rx.held = Some((record, done + k));
                return Ok((n, false));
            }
            self.consume(&mut rx, record);
            if record.last {
                return Ok((n, true));
            }
        }
    }

    /// Reads stream bytes: what one record (or the rest of one) holds, up to `buf.len()`;
    /// `Ok(0)` when the peer has closed and everything was read. With `stop`, returns early
    /// at the end of a message (it does anyway: one record at a time).
    pub(crate) fn read(&self, buf: &mut [u8]) -> Result<usize, LinkError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut rx = self.lock_rx();
        let (_, data) = self.rx_parts();
        if !rx.gathered.is_empty() {
            let n = buf.len().min(rx.gathered.len());
            buf[..n].copy_from_slice(&rx.gathered[..n]);
            rx.gathered.drain(..n);
            return Ok(n);
        }
        let (record, done) = match rx.held.take() {
            Some(held) => held,
            None => match self.next_record(&mut rx, None) {
                Ok(record) => (record, 0),
                Err(LinkError::Closed { mid_message: false }) => return Ok(0),
                Err(e) => return Err(e),
            },
        };
        let k = buf.len().min(record.len - done);
        data.copy_out(record.offset + done, &mut buf[..k]);
        if done + k < record.len {
            rx.held = Some((record, done + k));
        } else {
            self.consume(&mut rx, record);
        }
        Ok(k)
    }

    /// Waits for room for a message of `len` bytes in one record (`len <=
    /// max_loan()`), and lends it: the caller writes it in place, then [`Loan::commit`]s.
    pub(crate) fn loan(&self, len: usize) -> Result<Loan<'_>, LinkError> {
        debug_assert!(len <= self.max_record);
        let mut tx = self.lock_tx();
        let slot = self.room(&mut tx, len, len)?;
        Ok(Loan {
            link: self,
            tx,
            slot,
            len,
        })
    }

    /// Waits for the next message and, when it lies in the ring in one record (a message
    /// of at most [`max_loan`](Self::max_loan) bytes), lends it in place; a longer message
    /// (or the rest of one partly read) is gathered into memory of its own.
    pub(crate) fn recv_borrowed(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Borrowed<'_>, LinkError> {
        let mut rx = self.lock_rx();
        if rx.held.is_none() && rx.gathered.is_empty() {
            let record = self.next_record(&mut rx, deadline)?;
            if record.first && record.last {
                return Ok(Borrowed::InPlace {
                    link: self,
                    rx,
                    record,
                });
            }
            rx.held = Some((record, 0));
        }
        drop(rx);
        self.recv(deadline).map(Borrowed::Owned)
    }

    /// Ends this side's sending: the peer reads what was sent, then end-of-stream.
    pub(crate) fn finish_sending(&self) -> io::Result<()> {
        self.lock_tx().bell.shutdown(std::net::Shutdown::Write)
    }

    /// Ends both directions (the peer's receives and sends fail).
    pub(crate) fn shutdown(&self) {
        let _ = self.lock_tx().bell.shutdown(std::net::Shutdown::Both);
        let _ = self.lock_rx().bell.shutdown(std::net::Shutdown::Both);
    }
}

/// Room in the ring lent to the caller for one message, published by [`commit`](Self::commit)
/// (dropping it publishes nothing).
#[derive(Debug)]
pub(crate) struct Loan<'a> {
    link: &'a Link,
    tx: MutexGuard<'a, TxSide>,
    slot: super::ring::Slot,
    len: usize,
}

impl Loan<'_> {
    /// The lent bytes, to read back.
    pub(crate) fn bytes(&self) -> &[u8] {
        let (_, data) = self.link.tx_parts();
        // SAFETY: the slot was reserved by this producer, whose lock `self.tx` holds, and is
        // not yet published, so no one else writes it; mutable slices of it borrow `self`
        // mutably, so none exists while this one lives.
        unsafe { data.slice(self.slot.payload(), self.len) }
    }

    /// The lent bytes, to write.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        let (_, data) = self.link.tx_parts();
        // SAFETY: the slot was reserved by this producer, whose lock `self.tx` holds, and is
        // not yet published, so no one else writes it; the slice borrows `self` mutably, so
        // no second one exists.
        unsafe { data.slice_mut(self.slot.payload(), self.len) }
    }

    /// Publishes the message.
    pub(crate) fn commit(mut self) {
        let (ctl, data) = self.link.tx_parts();
        if self
            .tx
            .producer
            .commit(ctl, &data, self.slot, self.len, self.len as u32)
        {
            wait::ring(&self.tx.bell);
        }
    }
}

/// A received message: in place in the ring (freed when dropped), or gathered.
#[derive(Debug)]
pub(crate) enum Borrowed<'a> {
    /// The message in the ring.
    InPlace {
        link: &'a Link,
        rx: MutexGuard<'a, RxSide>,
        record: Record,
    },
    /// A message that was not in one piece.
    Owned(Vec<u8>),
}

impl Borrowed<'_> {
    /// The message's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Borrowed::InPlace { link, record, .. } => {
                let (_, data) = link.rx_parts();
                // SAFETY: the record is published to this consumer, whose lock `rx` this
                // value holds, and is consumed only when it is dropped, so a peer that keeps
                // the protocol does not write it meanwhile (one that breaks it changes
                // plain bytes; the pipe's docs tell callers to treat them as input).
                unsafe { data.slice(record.offset, record.len) }
            }
            Borrowed::Owned(v) => v,
        }
    }
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        if let Borrowed::InPlace { link, rx, record } = self {
            link.consume(rx, *record);
        }
    }
}
