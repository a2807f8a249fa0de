//! One connected end of a pipe, async, and its two halves.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::stream::AsyncStream;
use crate::pipe::connection::{
    check_transaction, checked_read_mode, link_error, unread_before_transaction, READ_BUFFER,
};
use crate::pipe::framing::{FrameReader, FrameWriter, RecvError};
use crate::pipe::info::{into_io, Failure, Info, MessagePart, PeekInfo};
use crate::pipe::shm::reactor::{async_halves, AsyncReceiver, AsyncSender};
use crate::pipe::shm::{LinkError, Parts};
use crate::pipe::stream::peek_queued;
use crate::pipe::PipeError;
use crate::security::{Access, PeerCredentials};
use crate::wire::{self, PipeMode};

/// One connected end of a named pipe, for tokio: the async twin of
/// [`crate::pipe::PipeConnection`].
///
/// `send`, `recv` and `recv_into` move whole messages on a message-type pipe. `AsyncRead`
/// works on both types (a message-type pipe reads as the blocking `Read` does);
/// `AsyncWrite` is for byte-type pipes, where it is a plain stream.
/// [`into_split`](Self::into_split) gives a receiving and a sending half for two tasks.
///
/// Cancelling a `send` future half-way leaves a partial message on the wire; the
/// connection then refuses further sends with [`PipeError::Disconnected`]. Cancelling a
/// `recv` loses nothing.
///
/// On a shared-memory connection ([`is_shared_memory`](Self::is_shared_memory)) a task
/// that finds nothing to receive (or no room to send) spins a few microseconds, then waits
/// through the reactor on a doorbell socket: it never holds the runtime's thread longer.
#[derive(Debug)]
pub struct PipeConnection {
    pub(super) recv: PipeRecvHalf,
    pub(super) send: PipeSendHalf,
}

/// The receiving half of a [`PipeConnection`]: whole messages in, from one task while
/// another sends through the [`PipeSendHalf`].
#[derive(Debug)]
pub struct PipeRecvHalf {
    pub(super) stream: Arc<AsyncStream>,
    pub(super) info: Arc<Info>,
    pub(super) reader: FrameReader,
    pub(super) broken: Option<String>,
    pub(super) sending: Arc<Sending>,
    /// The shared-memory data path, when the handshake chose it.
    pub(super) shm: Option<AsyncReceiver>,
    /// How `AsyncRead` behaves: stopping at each message's end, or not.
    read_mode: PipeMode,
}

/// The sending half of a [`PipeConnection`].
#[derive(Debug)]
pub struct PipeSendHalf {
    pub(super) stream: Arc<AsyncStream>,
    pub(super) info: Arc<Info>,
    pub(super) writer: FrameWriter,
    pub(super) broken: Option<String>,
    pub(super) sending: Arc<Sending>,
    /// The shared-memory data path, when the handshake chose it.
    pub(super) shm: Option<AsyncSender>,
}

/// What the two halves share about sending: a message is written under `lock`, and
/// `mid_frame` stays set when a send stopped inside a message. The receiving half takes
/// the lock to send a close frame between messages.
#[derive(Debug, Default)]
pub(super) struct Sending {
    pub(super) lock: tokio::sync::Mutex<()>,
    pub(super) mid_frame: AtomicBool,
}

/// How long a receiving half that must refuse the peer waits for a message being sent
/// to end before it closes without a close frame.
const CLOSE_FRAME_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) fn would_block(e: &RecvError) -> bool {
    matches!(e, RecvError::Io(e) if e.kind() == io::ErrorKind::WouldBlock)
}

pub(super) fn check_usable(info: &Info, broken: &Option<String>) -> Result<(), PipeError> {
    match broken {
        Some(why) => Err(info.broken(why)),
        None => Ok(()),
    }
}

/// The error for a failure of the shared-memory path (`end` shuts the connection down when
/// the peer broke the protocol); the half is unusable after.
pub(super) fn shm_failure(
    info: &Info,
    broken: &mut Option<String>,
    e: LinkError,
    end: impl FnOnce(),
) -> PipeError {
    let error = link_error(info, e, None, end);
    *broken = Some(error.to_string());
    error
}

impl PipeConnection {
    /// A connection whose data travels through shared memory when `parts` are given.
    ///
    /// # Errors
    ///
    /// When the doorbells cannot be registered with the runtime.
    pub(crate) fn with_shm(
        stream: AsyncStream,
        info: Info,
        parts: Option<Parts>,
    ) -> io::Result<PipeConnection> {
        let mut conn = PipeConnection::new(stream, info);
        if let Some(parts) = parts {
            let (tx, rx) = async_halves(parts)?;
            conn.send.shm = Some(tx);
            conn.recv.shm = Some(rx);
        }
        Ok(conn)
    }

    /// A local connection another process passed, now on the tokio API.
    pub(crate) fn passed(socket: tokio::net::UnixStream, info: Info) -> PipeConnection {
        PipeConnection::new(AsyncStream::unix(socket), info)
    }

    pub(crate) fn new(stream: AsyncStream, info: Info) -> PipeConnection {
        let buffer = match info.pipe_type {
            PipeMode::Message => READ_BUFFER,
            PipeMode::Byte => 0,
        };
        let (stream, info) = (Arc::new(stream), Arc::new(info));
        let sending = Arc::new(Sending::default());
        PipeConnection {
            recv: PipeRecvHalf {
                stream: Arc::clone(&stream),
                info: Arc::clone(&info),
                reader: FrameReader::new(info.max_message, buffer),
                broken: None,
                sending: Arc::clone(&sending),
                shm: None,
                read_mode: info.read_mode,
            },
            send: PipeSendHalf {
                stream,
                info,
                writer: FrameWriter::default(),
                broken: None,
                sending,
                shm: None,
            },
        }
    }

    /// The pipe's name.
    pub fn name(&self) -> &str {
        &self.recv.info.name
    }

    /// Whether this connection's data travels through shared memory
    /// ([`PipeOptions::shared_memory`](crate::pipe::PipeOptions::shared_memory)) rather
    /// than the socket.
    pub fn is_shared_memory(&self) -> bool {
        self.recv.shm.is_some()
    }

    /// The pipe's type: byte or message.
    pub fn pipe_type(&self) -> PipeMode {
        self.recv.info.pipe_type
    }

    /// What this end may do.
    pub fn access(&self) -> Access {
        self.recv.info.access
    }

    /// The kernel-verified identity of the peer process; `None` over TCP.
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        self.recv.info.peer
    }

    /// On a client's connection, who serves the pipe (`SO_PEERCRED`), like
    /// `GetNamedPipeServerProcessId`; `None` over TCP and on a server's own connections.
    #[doc(alias = "GetNamedPipeServerProcessId")]
    pub fn server_credentials(&self) -> Option<PeerCredentials> {
        self.recv.info.peer.filter(|_| self.recv.info.is_client)
    }

    /// Splits the connection so that one task receives while another sends: with both
    /// directions busy at once (large messages each way), a single task doing both could
    /// wait on a peer that waits on it.
    pub fn into_split(self) -> (PipeRecvHalf, PipeSendHalf) {
        (self.recv, self.send)
    }

    /// Sends one message (on a byte-type pipe: writes the bytes).
    ///
    /// # Errors
    ///
    /// As [`crate::pipe::PipeConnection::send`].
    pub async fn send(&mut self, message: &[u8]) -> Result<(), PipeError> {
        self.send.send(message).await
    }

    /// Sends each of `messages` in order, each as one message; on a shared-memory
    /// connection they are published to the reader together, as the blocking
    /// [`send_many`](crate::pipe::PipeConnection::send_many) does.
    ///
    /// # Errors
    ///
    /// As [`crate::pipe::PipeConnection::send_many`].
    pub async fn send_many<M: AsRef<[u8]>>(&mut self, messages: &[M]) -> Result<(), PipeError> {
        self.send.send_many(messages).await
    }

    /// Waits for the next message, then hands it and every further message that has
    /// already arrived (at most `max`, at least one) to `each`, in order; returns how many.
    /// On shared memory each message in one piece of the ring is handed in place, as the
    /// blocking [`recv_many`](crate::pipe::PipeConnection::recv_many) does. Cancel-safe:
    /// nothing is handed before the wait ends.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv); an end of the pipe after some messages were handed is
    /// reported by the next call.
    pub async fn recv_many(
        &mut self,
        max: usize,
        each: impl FnMut(&[u8]) + Send,
    ) -> Result<usize, PipeError> {
        let mid_frame = self.send.writer.is_mid_frame();
        self.recv.recv_many_with(max, each, mid_frame).await
    }

    /// Receives the next whole message (or the rest of one `recv_into` left).
    ///
    /// # Errors
    ///
    /// As [`crate::pipe::PipeConnection::recv`].
    pub async fn recv(&mut self) -> Result<Vec<u8>, PipeError> {
        let mid_frame = self.send.writer.is_mid_frame();
        self.recv.recv_with(mid_frame).await
    }

    /// Receives into `buf`; a message longer than `buf` arrives over several calls.
    ///
    /// # Errors
    ///
    /// As [`crate::pipe::PipeConnection::recv_into`].
    pub async fn recv_into(&mut self, buf: &mut [u8]) -> Result<MessagePart, PipeError> {
        let mid_frame = self.send.writer.is_mid_frame();
        self.recv.recv_into_with(buf, mid_frame).await
    }

    /// Sends `request` as one message and receives the answer (`TransactNamedPipe`), as
    /// [`crate::pipe::PipeConnection::transact`] does. Cancelling the future after the
    /// request went out leaves the answer to the next receive.
    ///
    /// # Errors
    ///
    /// As [`crate::pipe::PipeConnection::transact`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use procwire::pipe::ClientOptions;
    /// use procwire::wire::PipeMode;
    ///
    /// # async fn run() -> Result<(), procwire::pipe::PipeError> {
    /// let mut pipe = ClientOptions::new()
    ///     .read_mode(PipeMode::Message)
    ///     .open_async(r"\\.\pipe\Calculator")
    ///     .await?;
    /// let answer = pipe.transact(b"2 + 2").await?;
    /// # Ok(()) }
    /// ```
    #[doc(alias = "TransactNamedPipe")]
    pub async fn transact(&mut self, request: &[u8]) -> Result<Vec<u8>, PipeError> {
        check_usable(&self.recv.info, &self.recv.broken)?;
        check_transaction(&self.recv.info, self.recv.read_mode)?;
        if self.recv.has_unread()? {
            return Err(unread_before_transaction(&self.recv.info));
        }
        self.send.send(request).await?;
        self.recv.recv_with(false).await
    }

    /// Looks at what is waiting without taking it (`PeekNamedPipe`), as
    /// [`crate::pipe::PipeConnection::peek`] does. Never waits.
    ///
    /// # Errors
    ///
    /// As [`crate::pipe::PipeConnection::peek`].
    #[doc(alias = "PeekNamedPipe")]
    pub fn peek(&mut self) -> Result<PeekInfo, PipeError> {
        self.recv.peek()
    }

    /// How `AsyncRead` behaves now: one message per read, or a stream.
    pub fn read_mode(&self) -> PipeMode {
        self.recv.read_mode
    }

    /// Changes how `AsyncRead` behaves (`SetNamedPipeHandleState`, `PIPE_READMODE_*`), as
    /// [`crate::pipe::PipeConnection::set_read_mode`] does; [`transact`](Self::transact)
    /// needs message read mode.
    ///
    /// # Errors
    ///
    /// [`PipeError::ModeMismatch`] for message read mode on a byte-type pipe.
    #[doc(alias = "SetNamedPipeHandleState")]
    pub fn set_read_mode(&mut self, mode: PipeMode) -> Result<(), PipeError> {
        self.recv.set_read_mode(mode)
    }

    /// The network address of the peer of a TCP pipe, like
    /// `GetNamedPipeClientComputerName`; `None` on a local pipe.
    #[doc(alias = "GetNamedPipeClientComputerName")]
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.recv.stream.peer_addr()
    }

    /// Half-closes: no more data from this end; this end can still receive.
    ///
    /// # Errors
    ///
    /// [`PipeError::Io`] when the socket refuses.
    pub async fn finish_sending(&mut self) -> Result<(), PipeError> {
        self.send.finish_sending()
    }
}

impl PipeRecvHalf {
    /// The kernel-verified identity of the peer process; `None` over TCP.
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        self.info.peer
    }

    /// Receives the next whole message.
    ///
    /// # Errors
    ///
    /// As [`crate::pipe::PipeConnection::recv`]. A peer that breaks the protocol gets a
    /// close frame with the reason once the sending half is between messages (it waits
    /// up to a second for a message being sent to end).
    pub async fn recv(&mut self) -> Result<Vec<u8>, PipeError> {
        self.recv_with(false).await
    }

    /// As [`PipeConnection::recv_many`].
    ///
    /// # Errors
    ///
    /// As [`PipeConnection::recv_many`].
    pub async fn recv_many(
        &mut self,
        max: usize,
        each: impl FnMut(&[u8]) + Send,
    ) -> Result<usize, PipeError> {
        self.recv_many_with(max, each, false).await
    }

    async fn recv_many_with(
        &mut self,
        max: usize,
        mut each: impl FnMut(&[u8]) + Send,
        sender_mid_frame: bool,
    ) -> Result<usize, PipeError> {
        self.prepare()?;
        if let Some(shm) = &mut self.shm {
            let result = shm.recv_many(max, &mut each).await;
            return result.map_err(|e| self.shm_failure(e));
        }
        each(&self.recv_with(sender_mid_frame).await?);
        let mut handed = 1;
        // Then what has already arrived, without waiting; a failure is met again (and
        // reported) by the next receive.
        while handed < max {
            let stream = &self.stream;
            let result = self.reader.recv_message(
                &mut |b: &mut [u8]| stream.try_read(b),
                &mut |v: &mut Vec<u8>| stream.try_read_buf(v),
            );
            match result {
                Ok(message) => each(&message),
                Err(_) => break,
            }
            handed += 1;
        }
        Ok(handed)
    }

    /// Receives into `buf`; a message longer than `buf` arrives over several calls.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub async fn recv_into(&mut self, buf: &mut [u8]) -> Result<MessagePart, PipeError> {
        self.recv_into_with(buf, false).await
    }

    /// Looks at what is waiting without taking it (`PeekNamedPipe`). Never waits.
    ///
    /// # Errors
    ///
    /// As [`crate::pipe::PipeConnection::peek`].
    #[doc(alias = "PeekNamedPipe")]
    pub fn peek(&mut self) -> Result<PeekInfo, PipeError> {
        check_usable(&self.info, &self.broken)?;
        self.info.check_can_read()?;
        let info = match &mut self.shm {
            Some(shm) => shm.peek_info(),
            None => {
                let queued = peek_queued(&*self.stream)
                    .map_err(|e| self.info.io_failure("cannot look at the socket", e))?;
                match self.info.pipe_type {
                    PipeMode::Message => self.reader.peek(&queued),
                    PipeMode::Byte => PeekInfo {
                        bytes_available: queued.len(),
                        ..PeekInfo::default()
                    },
                }
            }
        };
        Ok(match self.info.pipe_type {
            PipeMode::Message => info,
            PipeMode::Byte => PeekInfo {
                bytes_available: info.bytes_available,
                ..PeekInfo::default()
            },
        })
    }

    /// Changes how `AsyncRead` behaves on this half, as
    /// [`PipeConnection::set_read_mode`] does.
    ///
    /// # Errors
    ///
    /// [`PipeError::ModeMismatch`] for message read mode on a byte-type pipe.
    pub fn set_read_mode(&mut self, mode: PipeMode) -> Result<(), PipeError> {
        self.read_mode = checked_read_mode(&self.info, mode)?;
        Ok(())
    }

    /// Whether anything has arrived that no receive has handed out yet.
    fn has_unread(&mut self) -> Result<bool, PipeError> {
        if let Some(shm) = &mut self.shm {
            return Ok(shm.has_unread());
        }
        if self.reader.has_unread() {
            return Ok(true);
        }
        crate::sys::queued(&*self.stream)
            .map(|n| n > 0)
            .map_err(|e| self.info.io_failure("cannot look at the socket", e))
    }

    /// `sender_mid_frame`: whether a close frame now would cut into a message being sent.
    async fn recv_with(&mut self, sender_mid_frame: bool) -> Result<Vec<u8>, PipeError> {
        self.prepare()?;
        if let Some(shm) = &mut self.shm {
            let result = shm.recv().await;
            return result.map_err(|e| self.shm_failure(e));
        }
        loop {
            let stream = &self.stream;
            let result = self.reader.recv_message(
                &mut |b: &mut [u8]| stream.try_read(b),
                &mut |v: &mut Vec<u8>| stream.try_read_buf(v),
            );
            match result {
                Ok(message) => return Ok(message),
                Err(e) if would_block(&e) => self.wait_readable().await?,
                Err(e) => return Err(self.fail(e, sender_mid_frame).await),
            }
        }
    }

    async fn recv_into_with(
        &mut self,
        buf: &mut [u8],
        sender_mid_frame: bool,
    ) -> Result<MessagePart, PipeError> {
        self.prepare()?;
        if let Some(shm) = &mut self.shm {
            return match shm.recv_into(buf).await {
                Ok((len, complete)) => Ok(MessagePart { len, complete }),
                Err(e) => Err(self.shm_failure(e)),
            };
        }
        loop {
            let stream = &self.stream;
            let result = self
                .reader
                .recv_into(buf, &mut |b: &mut [u8]| stream.try_read(b));
            match result {
                Ok((len, complete)) => return Ok(MessagePart { len, complete }),
                Err(e) if would_block(&e) => self.wait_readable().await?,
                Err(e) => return Err(self.fail(e, sender_mid_frame).await),
            }
        }
    }

    pub(super) async fn wait_readable(&self) -> Result<(), PipeError> {
        self.stream
            .readable()
            .await
            .map_err(|e| self.info.io_failure("receive failed", e))
    }

    fn shm_failure(&mut self, e: LinkError) -> PipeError {
        let shm = self.shm.as_ref();
        shm_failure(&self.info, &mut self.broken, e, || {
            shm.inspect(|shm| shm.shutdown());
        })
    }

    pub(super) fn prepare(&self) -> Result<(), PipeError> {
        check_usable(&self.info, &self.broken)?;
        self.info.check_messages()?;
        self.info.check_can_read()
    }

    pub(super) async fn fail(&mut self, e: RecvError, sender_mid_frame: bool) -> PipeError {
        match self.info.recv_failure(e, None) {
            Failure::Retry(e) => e,
            Failure::Fatal(e) => {
                self.broken = Some(e.to_string());
                e
            }
            Failure::Refuse(e, reason) => {
                tracing::warn!(pipe = %self.info.name, "closing connection: {reason}");
                // Between messages of the sending half (whole or split), and never inside
                // one: the close frame goes out under the sending lock.
                let guard = tokio::time::timeout(CLOSE_FRAME_WAIT, self.sending.lock.lock()).await;
                if let Ok(_guard) = guard {
                    if !sender_mid_frame && !self.sending.mid_frame.load(Ordering::Acquire) {
                        let _ = self
                            .stream
                            .send_all(&wire::encode_close_frame(&reason))
                            .await;
                    }
                }
                self.stream.linger().await;
                self.broken = Some(reason);
                e
            }
        }
    }

    fn poll_read_bytes(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Err(e) = check_usable(&self.info, &self.broken).and(self.info.check_can_read()) {
            return Poll::Ready(Err(into_io(e)));
        }
        let stop = self.read_mode == PipeMode::Message;
        if let Some(shm) = &mut self.shm {
            let whole = stop && self.info.pipe_type == PipeMode::Message;
            return match shm.poll_read(cx, buf.initialize_unfilled(), whole) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(n)) => {
                    buf.advance(n);
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(into_io(self.shm_failure(e)))),
            };
        }
        loop {
            let stream = &self.stream;
            let out = buf.initialize_unfilled();
            let result = match self.info.pipe_type {
                PipeMode::Byte => stream.try_read(out).map_err(RecvError::Io),
                PipeMode::Message => self
                    .reader
                    .read_bytes(out, stop, &mut |b: &mut [u8]| stream.try_read(b)),
            };
            match result {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if would_block(&e) => match self.stream.poll_read_ready(cx) {
                    Poll::Ready(Ok(())) => continue,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                },
                Err(RecvError::Io(e)) if self.info.pipe_type == PipeMode::Byte => {
                    return Poll::Ready(Err(e))
                }
                Err(e) => {
                    let e = match self.info.recv_failure(e, None) {
                        Failure::Retry(e) | Failure::Fatal(e) | Failure::Refuse(e, _) => e,
                    };
                    self.broken = Some(e.to_string());
                    return Poll::Ready(Err(into_io(e)));
                }
            }
        }
    }
}

impl PipeSendHalf {
    /// As [`PipeConnection::send_many`].
    ///
    /// # Errors
    ///
    /// As [`PipeConnection::send_many`].
    pub async fn send_many<M: AsRef<[u8]>>(&mut self, messages: &[M]) -> Result<(), PipeError> {
        let whole = self.check_sendable(messages.iter().map(|m| m.as_ref().len()))?;
        let Some(shm) = &mut self.shm else {
            for message in messages {
                self.send(message.as_ref()).await?;
            }
            return Ok(());
        };
        let result = shm.send_many(messages, whole).await;
        result.map_err(|e| self.shm_failure(e))
    }

    /// Whether messages of `sizes` may be sent now (and whether they go as whole
    /// messages): the half is usable and may write, each fits the pipe's maximum (checked
    /// before anything is sent), and no earlier send was cancelled in the middle of a
    /// message (the peer would get a torn one; the half is then broken for good).
    pub(super) fn check_sendable(
        &mut self,
        sizes: impl IntoIterator<Item = usize>,
    ) -> Result<bool, PipeError> {
        check_usable(&self.info, &self.broken)?;
        self.info.check_can_write()?;
        let whole = self.info.pipe_type == PipeMode::Message;
        if whole {
            sizes
                .into_iter()
                .try_for_each(|len| self.info.check_size(len))?;
        }
        let cancelled = match &self.shm {
            Some(shm) => shm.is_mid_message(),
            None => self.writer.is_mid_frame(),
        };
        if cancelled {
            self.broken = Some("an earlier send was cancelled in the middle of a message".into());
            return Err(self
                .info
                .broken("an earlier send was cancelled mid-message"));
        }
        Ok(whole)
    }

    /// Sends one message (on a byte-type pipe: writes the bytes).
    ///
    /// # Errors
    ///
    /// As [`crate::pipe::PipeConnection::send`].
    pub async fn send(&mut self, message: &[u8]) -> Result<(), PipeError> {
        let whole = self.check_sendable([message.len()])?;
        if let Some(shm) = &mut self.shm {
            let result = shm.send(message, whole).await;
            return result.map_err(|e| self.shm_failure(e));
        }
        if !whole {
            let result = self.stream.send_all(message).await;
            return result.map_err(|e| self.info.io_failure("send failed", e));
        }
        let sending = Arc::clone(&self.sending);
        let _guard = sending.lock.lock().await;
        // Stays set if this future is dropped inside the message.
        sending.mid_frame.store(true, Ordering::Release);
        loop {
            let stream = &self.stream;
            let result = self
                .writer
                .send(message, self.info.max_message, &mut |bufs| {
                    stream.try_write_vectored(bufs)
                });
            match result {
                Ok(()) => {
                    sending.mid_frame.store(false, Ordering::Release);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = self.stream.writable().await {
                        return Err(self.info.io_failure("send failed", e));
                    }
                }
                Err(e) => {
                    self.broken = Some("a send failed in the middle of a message".into());
                    return Err(self.info.io_failure("send failed", e));
                }
            }
        }
    }

    fn shm_failure(&mut self, e: LinkError) -> PipeError {
        let shm = self.shm.as_ref();
        shm_failure(&self.info, &mut self.broken, e, || {
            shm.inspect(|shm| shm.shutdown());
        })
    }

    /// Half-closes: no more data from this end; the receiving half still receives.
    ///
    /// # Errors
    ///
    /// [`PipeError::Io`] when the socket refuses.
    pub fn finish_sending(&self) -> Result<(), PipeError> {
        let done = match &self.shm {
            Some(shm) => shm.finish_sending(),
            None => self.stream.shutdown_write(),
        };
        done.map_err(|e| PipeError::io(&self.info.name, "cannot shut down sending", e))
    }

    fn poll_write_bytes(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Err(e) = check_usable(&self.info, &self.broken).and(self.info.check_can_write()) {
            return Poll::Ready(Err(into_io(e)));
        }
        if self.info.pipe_type == PipeMode::Message {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "AsyncWrite is for byte-type pipes; send messages with send().await",
            )));
        }
        if let Some(shm) = &mut self.shm {
            return match shm.poll_write(cx, buf) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(n)) => Poll::Ready(Ok(n)),
                Poll::Ready(Err(e)) => Poll::Ready(Err(into_io(self.shm_failure(e)))),
            };
        }
        loop {
            match self.stream.try_write_vectored(&[io::IoSlice::new(buf)]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match self.stream.poll_write_ready(cx) {
                        Poll::Ready(Ok(())) => continue,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                result => return Poll::Ready(result),
            }
        }
    }
}

impl AsyncRead for PipeConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().recv.poll_read_bytes(cx, buf)
    }
}

impl AsyncRead for PipeRecvHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().poll_read_bytes(cx, buf)
    }
}

impl AsyncWrite for PipeConnection {
    /// Writes bytes on a byte-type pipe. On a message-type pipe use
    /// [`send`](PipeConnection::send): a poll-based write cannot promise whole messages.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().send.poll_write_bytes(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().send.finish_sending().map_err(into_io))
    }
}

impl AsyncWrite for PipeSendHalf {
    /// As for [`PipeConnection`]: byte-type pipes only.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_bytes(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().finish_sending().map_err(into_io))
    }
}
