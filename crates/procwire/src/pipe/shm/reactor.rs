//! The shared-memory path for tokio: a [`Sender`] or [`Receiver`] that waits through the
//! reactor. A task spins a couple of microseconds at most in one poll ([`Spin::brief`]),
//! then goes on looking for a while longer with a yield to the runtime's other tasks
//! between looks ([`Spin::keep_looking`]: the thread is never held, and the peer's answer
//! is seen without a wake-up through the kernel); then it sets its waiting word and awaits
//! its doorbell socket, registered with the reactor, so the runtime's thread is free until
//! the peer rings (or closes: the socket's end-of-file).
//!
//! Every future here is cancel-safe for receiving: what arrived of a message is kept in the
//! receiver. A send cancelled half-way leaves [`TxState::mid_message`] set, which the
//! connection checks before the next send.

use std::io;
use std::os::unix::net::UnixStream;
use std::task::{Context, Poll};

use std::os::fd::{AsFd, BorrowedFd};

use tokio::io::Interest;

use super::link::{Borrowed, LinkError, Loan, Outgoing, Receiver, RxState, Sender, TxState};
use super::region::RingBytes;
use super::ring::RingControl;
use super::wait::{take_rings, Spin, Taken};
use super::Parts;

/// The two sides of a shared-memory connection for the tokio halves of one connection,
/// registered with the current runtime.
///
/// # Errors
///
/// When a doorbell cannot be duplicated or registered.
pub(crate) fn async_halves(parts: Parts) -> io::Result<(AsyncSender, AsyncReceiver)> {
    let (mut tx, mut rx) = parts.into_halves();
    let (tx_bell, rx_bell) = (Bell::new(&tx.state.bell)?, Bell::new(&rx.state.bell)?);
    let (tx_other, rx_other) = (rx.state.bell.try_clone()?, tx.state.bell.try_clone()?);
    tx.spin = Spin::brief();
    rx.spin = Spin::brief();
    Ok((
        AsyncSender {
            inner: tx,
            bell: tx_bell,
            other: tx_other,
        },
        AsyncReceiver {
            inner: rx,
            bell: rx_bell,
            other: rx_other,
        },
    ))
}

/// A doorbell registered with the reactor: a second descriptor of the one the steps ring,
/// so that the steps need no reactor.
#[derive(Debug)]
struct Bell(tokio::net::UnixStream);

impl Bell {
    fn new(bell: &UnixStream) -> io::Result<Bell> {
        let ours = bell.try_clone()?;
        ours.set_nonblocking(true)?;
        tokio::net::UnixStream::from_std(ours).map(Bell)
    }

    fn socket(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Takes in the rings that came; `true` when the peer closed. Clears the reactor's
    /// readiness when the socket is empty, so that the next wait waits.
    fn take(&self) -> io::Result<bool> {
        let taken = take_rings(self.socket())?;
        if taken == (Taken::Rings { drained: true }) {
            let _ = self.0.try_io(Interest::READABLE, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
        }
        Ok(taken == Taken::Closed)
    }

    /// Waits until the peer rings or closes; `true` when it closed.
    async fn sleep(&self) -> io::Result<bool> {
        self.0.readable().await?;
        self.take()
    }

    /// [`sleep`](Self::sleep) as a poll: `Ready(closed)` once the peer rang or closed.
    fn poll_sleep(&self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        match self.0.poll_read_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => Poll::Ready(self.take()),
        }
    }

    fn shutdown(&self) {
        let _ = rustix::net::shutdown(self.socket(), rustix::net::Shutdown::Both);
    }
}

/// Ends a connection from either side: this side's doorbell and the other's.
fn end_both(bell: &Bell, other: &UnixStream) {
    bell.shutdown();
    let _ = other.shutdown(std::net::Shutdown::Both);
}

/// The sending side of a tokio shared-memory connection.
#[derive(Debug)]
pub(crate) struct AsyncSender {
    inner: Sender,
    bell: Bell,
    /// The receiving side's doorbell, to end the whole connection.
    other: UnixStream,
}

impl AsyncSender {
    /// Whether a cancelled send left a message partly in the ring.
    pub(crate) fn is_mid_message(&self) -> bool {
        self.inner.state.mid_message
    }

    /// Sends `message` as one message (`whole`) or as stream bytes, waiting for room.
    pub(crate) async fn send(&mut self, message: &[u8], whole: bool) -> Result<(), LinkError> {
        self.send_many(&[message], whole).await
    }

    /// Sends each of `messages` in order, waiting for room; they are published together
    /// (a few kilobytes at a time), as the blocking sender's `send_many` does.
    pub(crate) async fn send_many<M: AsRef<[u8]>>(
        &mut self,
        messages: &[M],
        whole: bool,
    ) -> Result<(), LinkError> {
        for (i, message) in messages.iter().enumerate() {
            let more = i + 1 < messages.len();
            let (ctl, data, _, state) = self.inner.split();
            if state.push_small(ctl, &data, message.as_ref(), more)? {
                continue;
            }
            let mut out = Outgoing::new(message.as_ref(), whole);
            self.wait(|state, ctl, data| {
                state
                    .push(ctl, data, &mut out, more)
                    .map(|done| done.then_some(()))
            })
            .await?;
        }
        Ok(())
    }

    /// The largest message [`loan`](Self::loan) can place in the ring in one piece.
    pub(crate) fn max_loan(&self) -> usize {
        self.inner.max_loan()
    }

    /// Waits for room for a message of `len` bytes in one record (`len <= max_loan()`),
    /// and lends it: the caller writes it in place, then commits. Cancel-safe: nothing is
    /// reserved before the wait ends.
    pub(crate) async fn loan(&mut self, len: usize) -> Result<Loan<&mut Sender>, LinkError> {
        debug_assert!(len <= self.max_loan());
        let slot = self
            .wait(|state, ctl, data| state.reserve_whole(ctl, data, len))
            .await;
        match slot {
            Ok(slot) => Ok(Loan::new(&mut self.inner, slot, len)),
            Err(e) => {
                if matches!(e, LinkError::Corrupt(_)) {
                    self.shutdown();
                }
                Err(e)
            }
        }
    }

    /// Spins briefly, then waits for the doorbell through the reactor, until `step` gives
    /// a value (a step that gives none says what room it waits for).
    async fn wait<T>(
        &mut self,
        mut step: impl FnMut(&mut TxState, &RingControl, &RingBytes<'_>) -> Result<Option<T>, LinkError>,
    ) -> Result<T, LinkError> {
        let AsyncSender { inner, bell, .. } = self;
        let (ctl, data, spin, state) = inner.split();
        loop {
            let found = spin.spin(&ctl.producer_cpu, &ctl.consumer_cpu, None, || {
                step(state, ctl, &data)
            })?;
            if let Some(value) = found {
                return Ok(value);
            }
            if spin.keep_looking(&ctl.producer_cpu, &ctl.consumer_cpu) {
                tokio::task::yield_now().await;
                continue;
            }
            if state.must_sleep(ctl)? {
                let closed = bell.sleep().await;
                state.woke(ctl);
                spin.slept();
                if closed? {
                    return Err(LinkError::Closed { mid_message: false });
                }
            }
        }
    }

    /// Writes what fits of `bytes` as stream bytes; `Pending` while the ring is full.
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<Result<usize, LinkError>> {
        let AsyncSender { inner, bell, .. } = self;
        let (ctl, data, _, state) = inner.split();
        loop {
            let mut out = Outgoing::new(bytes, false);
            let done = state.push(ctl, &data, &mut out, false)?;
            if done || out.sent() > 0 {
                return Poll::Ready(Ok(out.sent()));
            }
            if !state.must_sleep(ctl)? {
                continue;
            }
            match bell.poll_sleep(cx) {
                // The waiting word stays set: the peer rings when it frees room.
                Poll::Pending => return Poll::Pending,
                Poll::Ready(closed) => {
                    state.woke(ctl);
                    if closed? {
                        return Poll::Ready(Err(LinkError::Closed { mid_message: false }));
                    }
                }
            }
        }
    }

    /// Ends this side's sending: the peer reads what was sent, then end-of-stream.
    pub(crate) fn finish_sending(&self) -> io::Result<()> {
        crate::sys::shutdown_write(self.bell.socket())
    }

    /// Ends the connection: both doorbells, both directions (the peer's receives and sends
    /// fail).
    pub(crate) fn shutdown(&self) {
        end_both(&self.bell, &self.other);
    }
}

/// The receiving side of a tokio shared-memory connection.
#[derive(Debug)]
pub(crate) struct AsyncReceiver {
    inner: Receiver,
    bell: Bell,
    /// The sending side's doorbell, to end the whole connection.
    other: UnixStream,
}

impl AsyncReceiver {
    /// Spins briefly, then waits for the doorbell through the reactor, until `step` gives
    /// a value.
    async fn wait<T>(
        &mut self,
        mut step: impl FnMut(&mut RxState, &RingControl, &RingBytes<'_>) -> Result<Option<T>, LinkError>,
    ) -> Result<T, LinkError> {
        let AsyncReceiver { inner, bell, .. } = self;
        let (ctl, data, spin, state) = inner.split();
        loop {
            let found = spin.spin(&ctl.consumer_cpu, &ctl.producer_cpu, None, || {
                step(state, ctl, &data)
            })?;
            if let Some(value) = found {
                return Ok(value);
            }
            if spin.keep_looking(&ctl.consumer_cpu, &ctl.producer_cpu) {
                tokio::task::yield_now().await;
                continue;
            }
            if state.must_sleep(ctl) {
                let closed = bell.sleep().await;
                state.woke(ctl);
                spin.slept();
                if closed? {
                    state.peer_closed = true;
                }
            }
        }
    }

    /// Receives the next whole message (or the rest of one `recv_into` began).
    pub(crate) async fn recv(&mut self) -> Result<Vec<u8>, LinkError> {
        self.wait(RxState::pull).await
    }

    /// Waits for at least one message, then hands every message already in the ring (up
    /// to `max`, at least 1) to `each`, in order, and frees them all at once; returns how
    /// many, as the blocking receiver's `recv_many` does. Cancel-safe: nothing is handed
    /// before the wait ends.
    pub(crate) async fn recv_many(
        &mut self,
        max: usize,
        each: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<usize, LinkError> {
        self.wait(|state, ctl, data| state.pull_many(ctl, data, max.max(1), each))
            .await
    }

    /// Waits for the next message and, when it lies in the ring in one record, lends it in
    /// place; a longer message (or the rest of one partly read) is gathered, as the
    /// blocking link's `recv_borrowed` does. Cancel-safe.
    /// A ring the peer broke ends the connection here (both doorbells).
    pub(crate) async fn recv_borrowed(&mut self) -> Result<Borrowed<&mut Receiver>, LinkError> {
        let ended = |e: LinkError, rx: &Self| {
            if matches!(e, LinkError::Corrupt(_)) {
                rx.shutdown();
            }
            e
        };
        if self.inner.state.between_messages() {
            let record = self.wait(|state, ctl, data| state.peek(ctl, data)).await;
            let record = record.map_err(|e| ended(e, self))?;
            if let Some(record) = self.inner.state.whole_or_hold(record) {
                return Ok(Borrowed::InPlace {
                    rx: &mut self.inner,
                    record,
                });
            }
        }
        let gathered = self.recv().await;
        gathered.map(Borrowed::Owned).map_err(|e| ended(e, self))
    }

    /// Receives into `buf`: the next message or the rest of one; `(bytes, complete)`.
    /// Waits only while nothing has been copied, so that a cancelled call loses nothing:
    /// it may return fewer bytes than `buf` holds when the rest has not arrived yet.
    pub(crate) async fn recv_into(&mut self, buf: &mut [u8]) -> Result<(usize, bool), LinkError> {
        self.wait(|state, ctl, data| {
            if let Some(done) = state.take_small_into(ctl, data, buf)? {
                return Ok(Some(done));
            }
            let mut filled = 0;
            match state.pull_into(ctl, data, buf, &mut filled)? {
                None if filled > 0 => Ok(Some((filled, false))),
                found => Ok(found),
            }
        })
        .await
    }

    /// Reads stream bytes now or registers for the next ring: one record (or the rest of
    /// one) up to `buf.len()`, or with `whole_messages` what [`recv_into`](Self::recv_into)
    /// would give; `Ready(0)` at the end of the stream.
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        whole_messages: bool,
    ) -> Poll<Result<usize, LinkError>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let AsyncReceiver { inner, bell, .. } = self;
        let (ctl, data, _, state) = inner.split();
        loop {
            let found = if whole_messages {
                let mut filled = 0;
                match state.pull_into(ctl, &data, buf, &mut filled) {
                    Ok(None) if filled > 0 => Some(filled),
                    Ok(found) => found.map(|(n, _)| n),
                    Err(LinkError::Closed { mid_message: false }) => Some(0),
                    Err(e) => return Poll::Ready(Err(e)),
                }
            } else {
                state.read_now(ctl, &data, buf)?
            };
            if let Some(n) = found {
                return Poll::Ready(Ok(n));
            }
            if !state.must_sleep(ctl) {
                continue;
            }
            match bell.poll_sleep(cx) {
                // The waiting word stays set: the peer rings when it publishes.
                Poll::Pending => return Poll::Pending,
                Poll::Ready(closed) => {
                    state.woke(ctl);
                    if closed? {
                        state.peer_closed = true;
                    }
                }
            }
        }
    }

    /// What is waiting, taking nothing.
    pub(crate) fn peek_info(&mut self) -> crate::pipe::info::PeekInfo {
        self.inner.peek_info()
    }

    /// Whether anything has arrived that no receive has handed out yet.
    pub(crate) fn has_unread(&mut self) -> bool {
        self.inner.has_unread()
    }

    /// Ends the connection: both doorbells, both directions (the peer's receives and sends
    /// fail).
    pub(crate) fn shutdown(&self) {
        end_both(&self.bell, &self.other);
    }
}
