//! One connected end of a pipe, blocking.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::framing::{FrameReader, FrameWriter};
use super::info::{into_io, Failure, Info, MessagePart, PeekInfo};
use super::shm::{Link, LinkError};
use super::stream::Stream;
use super::{ClientOptions, Loan, PipeError, Received};
use crate::security::{Access, PeerCredentials};
use crate::wire::{self, PipeMode};

/// The read buffer of a message-type connection.
pub(crate) const READ_BUFFER: usize = 64 * 1024;

/// One connected end of a named pipe: what a server gets from
/// [`accept`](super::PipeServer::accept) and a client from
/// [`ClientOptions::open`].
///
/// On a message-type pipe, [`send`](Self::send) and [`recv`](Self::recv) move whole
/// messages; [`Read`] and [`Write`] also work (each `write` is one message; `read` stops at a
/// message's end in message read mode and runs on across messages in byte read mode). On a
/// byte-type pipe the connection is a plain stream.
///
/// # Examples
///
/// ```no_run
/// use procwire::pipe::PipeConnection;
///
/// let mut pipe = PipeConnection::open(r"\\.\pipe\HelloWorld")?;
/// pipe.send(b"Default request from client")?;
/// println!("{}", String::from_utf8_lossy(&pipe.recv()?));
/// # Ok::<(), procwire::pipe::PipeError>(())
/// ```
#[derive(Debug)]
pub struct PipeConnection {
    pub(super) stream: Stream,
    pub(super) info: Info,
    pub(super) reader: FrameReader,
    pub(super) writer: FrameWriter,
    pub(super) broken: Option<String>,
    /// Set when the peer finished sending (a half close, or its close): receives end there,
    /// and sending goes on, as on the tokio API's halves.
    pub(super) ended: Option<String>,
    /// The shared-memory data path, when the handshake chose it; the socket then only
    /// carries doorbells.
    pub(super) shm: Option<Arc<Link>>,
    /// Receives return at once with [`PipeError::WouldBlock`] (`PIPE_NOWAIT`).
    nonblocking: bool,
}

impl PipeConnection {
    pub(crate) fn new(stream: Stream, info: Info) -> PipeConnection {
        let buffer = match info.pipe_type {
            PipeMode::Message => READ_BUFFER,
            PipeMode::Byte => 0,
        };
        PipeConnection {
            reader: FrameReader::new(info.max_message, buffer),
            writer: FrameWriter::default(),
            stream,
            info,
            broken: None,
            ended: None,
            shm: None,
            nonblocking: false,
        }
    }

    /// A connection whose data travels through the shared-memory `link`.
    pub(crate) fn with_link(stream: Stream, info: Info, link: Option<Link>) -> PipeConnection {
        PipeConnection {
            shm: link.map(Arc::new),
            ..PipeConnection::new(stream, info)
        }
    }

    /// Whether this connection's data travels through shared memory
    /// ([`PipeOptions::shared_memory`](super::PipeOptions::shared_memory)) rather than the
    /// socket.
    pub fn is_shared_memory(&self) -> bool {
        self.shm.is_some()
    }

    /// Turns a failure of the shared-memory path into the connection's error and marks the
    /// connection unusable unless it was a timeout.
    fn link_failure(&mut self, e: LinkError, waited: Option<Duration>) -> PipeError {
        // A timeout leaves the connection as it was; the peer's orderly end stops receiving
        // only; anything else breaks the connection.
        let (timeout, at_end) = match &e {
            LinkError::Timeout => (true, false),
            LinkError::Closed { mid_message } => (false, !mid_message),
            _ => (false, false),
        };
        let error = match self.shm.as_deref() {
            Some(link) => link_error(&self.info, e, waited, || link.shutdown()),
            None => unreachable!("a shared-memory failure without shared memory"),
        };
        if at_end {
            self.ended = Some(error.to_string());
        } else if !timeout {
            self.broken = Some(error.to_string());
        }
        error
    }

    /// The same connection on the tokio API: a local socket connection that another
    /// process passed (see [`PassedHandle::into_async_pipe`](super::PassedHandle::into_async_pipe)).
    /// Must be called within a tokio runtime.
    #[cfg(feature = "tokio")]
    pub(crate) fn into_async(self) -> io::Result<super::tokio::PipeConnection> {
        let Stream::Unix(local) = self.stream else {
            unreachable!("only local socket connections are passed");
        };
        let socket = local.into_socket();
        socket.set_nonblocking(true)?;
        let socket = ::tokio::net::UnixStream::from_std(socket)?;
        Ok(super::tokio::PipeConnection::passed(socket, self.info))
    }

    /// Connects to the pipe `name` with default [`ClientOptions`].
    ///
    /// # Errors
    ///
    /// As [`ClientOptions::open`].
    pub fn open<N>(name: N) -> Result<PipeConnection, PipeError>
    where
        N: TryInto<crate::name::Name>,
        N::Error: Into<PipeError>,
    {
        ClientOptions::new().open(name)
    }

    /// The pipe's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The pipe's type: byte or message.
    pub fn pipe_type(&self) -> PipeMode {
        self.info.pipe_type
    }

    /// What this end may do.
    pub fn access(&self) -> Access {
        self.info.access
    }

    /// The largest message either end may send.
    pub fn max_message_size(&self) -> u32 {
        self.info.max_message
    }

    /// The kernel-verified identity of the process at the other end (`SO_PEERCRED`), like
    /// `GetNamedPipeClientProcessId`. `None` over TCP.
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        self.info.peer
    }

    /// On a client's connection, who serves the pipe, from the kernel (`SO_PEERCRED`: the
    /// server process as it was when it started listening), like
    /// `GetNamedPipeServerProcessId`; `None` over TCP and on a server's own connections.
    #[doc(alias = "GetNamedPipeServerProcessId")]
    pub fn server_credentials(&self) -> Option<PeerCredentials> {
        self.info.peer.filter(|_| self.info.is_client)
    }

    /// For receiving: the connection is not broken and the peer has not finished sending.
    pub(super) fn check_usable(&self) -> Result<(), PipeError> {
        self.check_sendable()?;
        match &self.ended {
            Some(why) => Err(self.info.broken(why)),
            None => Ok(()),
        }
    }

    /// For sending: the connection is not broken (the peer's end of sending does not stop
    /// this side's).
    pub(super) fn check_sendable(&self) -> Result<(), PipeError> {
        match &self.broken {
            Some(why) => Err(self.info.broken(why)),
            None => Ok(()),
        }
    }

    /// Sends one message (on a byte-type pipe: writes the bytes).
    ///
    /// # Errors
    ///
    /// [`PipeError::MessageTooLarge`] before anything is sent when `message` is over the
    /// pipe's maximum; [`PipeError::NotPermitted`] on a read-only end;
    /// [`PipeError::Disconnected`] when the peer is gone.
    pub fn send(&mut self, message: &[u8]) -> Result<(), PipeError> {
        self.check_sendable()?;
        self.info.check_can_write()?;
        let whole = self.info.pipe_type == PipeMode::Message;
        if whole {
            self.info.check_size(message.len())?;
        }
        if let Some(link) = &self.shm {
            return link
                .send(message, whole)
                .map_err(|e| self.link_failure(e, None));
        }
        if !whole {
            return self
                .stream
                .write_all(message)
                .map_err(|e| self.info.io_failure("send failed", e));
        }
        let stream = &self.stream;
        let result = self
            .writer
            .send(message, self.info.max_message, &mut |bufs| {
                stream.write_vectored(bufs)
            });
        result.map_err(|e| {
            self.broken = Some("a send failed in the middle of a message".into());
            self.info.io_failure("send failed", e)
        })
    }

    /// Sends each of `messages` in order, each as one message (on a byte-type pipe: writes
    /// their bytes one after another). On a shared-memory connection they are published to
    /// the reader together, a few kilobytes at a time, which for small messages costs a
    /// fraction of one [`send`](Self::send) each; on a socket it is one `send` each.
    ///
    /// # Errors
    ///
    /// [`PipeError::MessageTooLarge`] before anything is sent when any message is over the
    /// pipe's maximum; otherwise as [`send`](Self::send), and then the messages before the
    /// one that failed may have been delivered.
    pub fn send_many<M: AsRef<[u8]>>(&mut self, messages: &[M]) -> Result<(), PipeError> {
        self.check_sendable()?;
        self.info.check_can_write()?;
        let whole = self.info.pipe_type == PipeMode::Message;
        if whole {
            for message in messages {
                self.info.check_size(message.as_ref().len())?;
            }
        }
        if let Some(link) = &self.shm {
            return link
                .send_many(messages, whole)
                .map_err(|e| self.link_failure(e, None));
        }
        messages.iter().try_for_each(|m| self.send(m.as_ref()))
    }

    /// Waits for the next message, then hands it and every further message that has
    /// already arrived (at most `max` in all, at least one) to `each`, in order, and returns
    /// how many it handed. On a shared-memory connection a message in one piece of the ring
    /// is handed in place, without a copy or an allocation, and the ring's room is given
    /// back once for all of them; on a socket each message is received as by
    /// [`recv`](Self::recv). The bytes are the peer's input (see
    /// [`recv_borrowed`](Self::recv_borrowed)).
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv); an end of the pipe after some messages were handed is
    /// reported by the next call.
    pub fn recv_many(
        &mut self,
        max: usize,
        mut each: impl FnMut(&[u8]),
    ) -> Result<usize, PipeError> {
        self.prepare_recv()?;
        if let Some(link) = &self.shm {
            return link
                .recv_many(None, max, &mut each)
                .map_err(|e| self.link_failure(e, None));
        }
        each(&self.recv()?);
        let mut handed = 1;
        while handed < max {
            match self.try_recv() {
                Ok(Some(message)) => each(&message),
                Ok(None) | Err(PipeError::Disconnected { .. }) => break,
                Err(e) => return Err(e),
            }
            handed += 1;
        }
        Ok(handed)
    }

    /// Receives the next whole message, waiting as long as it takes. After a
    /// [`recv_into`](Self::recv_into) that returned part of a message, returns the rest.
    ///
    /// # Errors
    ///
    /// [`PipeError::Disconnected`] when the peer closed the pipe (cleanly or mid-message,
    /// as the detail says); [`PipeError::MessageTooLarge`] when the peer announced a
    /// message over the maximum (the connection is then closed);
    /// [`PipeError::ModeMismatch`] on a byte-type pipe.
    pub fn recv(&mut self) -> Result<Vec<u8>, PipeError> {
        self.recv_until(None)
    }

    /// Receives the next whole message, waiting at most `timeout`. On timeout nothing is
    /// lost: what arrived of a message is kept for the next receive.
    ///
    /// # Errors
    ///
    /// [`PipeError::Timeout`], or as [`recv`](Self::recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, PipeError> {
        self.recv_until(Some(timeout))
    }

    /// Receives the next whole message if one is already there.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn try_recv(&mut self) -> Result<Option<Vec<u8>>, PipeError> {
        match self.recv_until(Some(Duration::ZERO)) {
            Ok(m) => Ok(Some(m)),
            Err(PipeError::Timeout { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Receives into `buf`: the next message, or the rest of one a previous call could not
    /// fit. A message longer than `buf` arrives over several calls; nothing is lost.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_into(&mut self, buf: &mut [u8]) -> Result<MessagePart, PipeError> {
        self.prepare_recv()?;
        if self.nonblocking {
            return self.recv_into_now(buf);
        }
        if let Some(link) = &self.shm {
            return match link.recv_into(buf) {
                Ok((len, complete)) => Ok(MessagePart { len, complete }),
                Err(e) => Err(self.link_failure(e, None)),
            };
        }
        let stream = &self.stream;
        let result = self
            .reader
            .recv_into(buf, &mut |b: &mut [u8]| stream.read(b));
        match result {
            Ok((len, complete)) => Ok(MessagePart { len, complete }),
            Err(e) => Err(self.fail(e, None)),
        }
    }

    /// `recv_into` in nonblocking mode: the bytes there now, or [`PipeError::WouldBlock`].
    fn recv_into_now(&mut self, buf: &mut [u8]) -> Result<MessagePart, PipeError> {
        let now = Instant::now();
        let result = match &self.shm {
            Some(link) => match link.recv_into_by(buf, now) {
                Ok((len, complete)) => Ok(MessagePart { len, complete }),
                Err(e) => Err(self.link_failure(e, Some(Duration::ZERO))),
            },
            None => {
                let stream = &self.stream;
                let result = self
                    .reader
                    .recv_into(buf, &mut |b: &mut [u8]| stream.read_until(b, Some(now)));
                match result {
                    Ok((len, complete)) => Ok(MessagePart { len, complete }),
                    Err(e) => Err(self.fail(e, Some(Duration::ZERO))),
                }
            }
        };
        result.map_err(|e| self.would_block(e))
    }

    /// In nonblocking mode, a receive that found nothing says so as such.
    pub(super) fn would_block(&self, e: PipeError) -> PipeError {
        match e {
            PipeError::Timeout { name, .. } => PipeError::WouldBlock {
                name,
                what: "receive",
            },
            e => e,
        }
    }

    /// Sends `request` as one message and receives the answer (`TransactNamedPipe`),
    /// waiting as long as it takes. The connection must be a message-type pipe in message
    /// read mode, open for reading and writing, with nothing received and not yet taken
    /// (so that an earlier message cannot pass for the answer).
    ///
    /// # Errors
    ///
    /// [`PipeError::ModeMismatch`] on a byte-type pipe or in byte read mode;
    /// [`PipeError::NotPermitted`] on a one-way end or when unread data is waiting (receive
    /// it first, or [`peek`](Self::peek) at it); otherwise as [`send`](Self::send) and
    /// [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use procwire::pipe::ClientOptions;
    /// use procwire::wire::PipeMode;
    ///
    /// let mut pipe = ClientOptions::new()
    ///     .read_mode(PipeMode::Message)
    ///     .open(r"\\.\pipe\Calculator")?;
    /// let answer = pipe.transact(b"2 + 2")?;
    /// # Ok::<(), procwire::pipe::PipeError>(())
    /// ```
    ///
    /// # References
    /// - [`TransactNamedPipe`](https://learn.microsoft.com/en-us/windows/win32/api/namedpipeapi/nf-namedpipeapi-transactnamedpipe)
    #[doc(alias = "TransactNamedPipe")]
    pub fn transact(&mut self, request: &[u8]) -> Result<Vec<u8>, PipeError> {
        self.check_transaction()?;
        self.send(request)?;
        self.recv_until(None)
    }

    /// [`transact`](Self::transact) that waits at most `timeout` for the answer.
    ///
    /// # Errors
    ///
    /// [`PipeError::Timeout`] when no answer came in time (an answer that comes later is
    /// the next message received), or as [`transact`](Self::transact).
    pub fn transact_timeout(
        &mut self,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, PipeError> {
        let deadline = Instant::now() + timeout;
        self.check_transaction()?;
        self.send(request)?;
        let left = deadline.saturating_duration_since(Instant::now());
        self.recv_until(Some(left)).map_err(|e| match e {
            PipeError::Timeout { name, what, .. } => PipeError::Timeout {
                name,
                what,
                after: timeout,
            },
            e => e,
        })
    }

    fn check_transaction(&mut self) -> Result<(), PipeError> {
        self.check_usable()?;
        check_transaction(&self.info, self.info.read_mode)?;
        let unread = match &self.shm {
            Some(link) => link.has_unread(),
            None => {
                self.reader.has_unread()
                    || self
                        .stream
                        .has_queued()
                        .map_err(|e| self.info.io_failure("cannot look at the socket", e))?
            }
        };
        if unread {
            return Err(unread_before_transaction(&self.info));
        }
        Ok(())
    }

    /// Looks at what is waiting without taking it (`PeekNamedPipe`): the bytes that have
    /// arrived, the length of the next message (or of the one a
    /// [`recv_into`](Self::recv_into) left unfinished) and the bytes of it still to receive.
    /// Never waits.
    ///
    /// # Errors
    ///
    /// [`PipeError::NotPermitted`] on a write-only end; [`PipeError::Disconnected`] when an
    /// earlier failure made the connection unusable; [`PipeError::Io`] when the socket
    /// cannot be looked at.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use procwire::pipe::PipeConnection;
    ///
    /// let mut pipe = PipeConnection::open(r"\\.\pipe\HelloWorld")?;
    /// if let Some(len) = pipe.peek()?.message_len {
    ///     let mut buf = vec![0; len];
    ///     pipe.recv_into(&mut buf)?;
    /// }
    /// # Ok::<(), procwire::pipe::PipeError>(())
    /// ```
    ///
    /// # References
    /// - [`PeekNamedPipe`](https://learn.microsoft.com/en-us/windows/win32/api/namedpipeapi/nf-namedpipeapi-peeknamedpipe)
    #[doc(alias = "PeekNamedPipe")]
    pub fn peek(&self) -> Result<PeekInfo, PipeError> {
        self.check_usable()?;
        self.info.check_can_read()?;
        let info = match &self.shm {
            Some(link) => link.peek_info(),
            None => {
                let queued = self
                    .stream
                    .peek_queued()
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

    /// How reads behave now: one message per read, or a stream.
    pub fn read_mode(&self) -> PipeMode {
        self.info.read_mode
    }

    /// Changes how [`Read`] behaves on this handle (`SetNamedPipeHandleState`,
    /// `PIPE_READMODE_*`): [`PipeMode::Message`] stops each read at a message's end,
    /// [`PipeMode::Byte`] runs on across messages. [`transact`](Self::transact) needs
    /// message read mode. Only this end changes; the peer sees nothing.
    ///
    /// # Errors
    ///
    /// [`PipeError::ModeMismatch`] for message read mode on a byte-type pipe (as on
    /// Windows, a byte pipe has no messages to stop at).
    ///
    /// # References
    /// - [`SetNamedPipeHandleState`](https://learn.microsoft.com/en-us/windows/win32/api/namedpipeapi/nf-namedpipeapi-setnamedpipehandlestate)
    #[doc(alias = "SetNamedPipeHandleState")]
    pub fn set_read_mode(&mut self, mode: PipeMode) -> Result<(), PipeError> {
        self.info.read_mode = checked_read_mode(&self.info, mode)?;
        Ok(())
    }

    /// Whether receives on this handle return at once when nothing is there.
    pub fn is_nonblocking(&self) -> bool {
        self.nonblocking
    }

    /// Switches this handle between waiting and nonblocking receives
    /// (`SetNamedPipeHandleState`, `PIPE_WAIT` / `PIPE_NOWAIT`): in nonblocking mode
    /// [`recv`](Self::recv), [`recv_into`](Self::recv_into) and [`Read`] return what is
    /// there, or [`PipeError::WouldBlock`] (`io::ErrorKind::WouldBlock` from `Read`) at
    /// once, losing nothing. Explicit timeouts ([`recv_timeout`](Self::recv_timeout)) keep
    /// theirs. Sends still wait for room: a message is never cut short.
    pub fn set_nonblocking(&mut self, nonblocking: bool) {
        self.nonblocking = nonblocking;
    }

    /// The network address of the peer of a TCP pipe (TLS or not), like
    /// `GetNamedPipeClientComputerName` on a server's connection; `None` on a local pipe.
    ///
    /// # References
    /// - [`GetNamedPipeClientComputerName`](https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-getnamedpipeclientcomputernamea)
    #[doc(alias = "GetNamedPipeClientComputerName")]
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.stream.peer_addr()
    }

    fn prepare_recv(&self) -> Result<(), PipeError> {
        self.check_usable()?;
        self.info.check_messages()?;
        self.info.check_can_read()
    }

    fn recv_until(&mut self, timeout: Option<Duration>) -> Result<Vec<u8>, PipeError> {
        self.prepare_recv()?;
        if self.nonblocking && timeout.is_none() {
            return self
                .recv_until(Some(Duration::ZERO))
                .map_err(|e| self.would_block(e));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        if let Some(link) = &self.shm {
            return link
                .recv(deadline)
                .map_err(|e| self.link_failure(e, timeout));
        }
        let stream = &self.stream;
        let mut read = |b: &mut [u8]| stream.read_until(b, deadline);
        let mut read_spare = |v: &mut Vec<u8>| stream.read_into_spare(v, deadline);
        match self.reader.recv_message(&mut read, &mut read_spare) {
            Ok(message) => Ok(message),
            Err(e) => Err(self.fail(e, timeout)),
        }
    }

    pub(super) fn fail(
        &mut self,
        e: super::framing::RecvError,
        waited: Option<Duration>,
    ) -> PipeError {
        let at_end = matches!(e, super::framing::RecvError::Eof { .. });
        match self.info.recv_failure(e, waited) {
            Failure::Retry(e) => e,
            Failure::Fatal(e) if at_end => {
                self.ended = Some(e.to_string());
                e
            }
            Failure::Fatal(e) => {
                self.broken = Some(e.to_string());
                e
            }
            Failure::Refuse(e, reason) => {
                tracing::warn!(pipe = %self.info.name, "closing connection: {reason}");
                if !self.writer.is_mid_frame() {
                    let _ = self.stream.write_all(&wire::encode_close_frame(&reason));
                }
                self.stream.linger_and_close();
                self.broken = Some(reason);
                e
            }
        }
    }

    /// Closes the connection, telling the peer why with a close frame (message-type pipes).
    /// The peer's next receive fails with [`PipeError::Disconnected`] carrying `reason`.
    pub fn close_with_reason(self, reason: &str) {
        if let Some(link) = &self.shm {
            // The rings have no close record: the peer learns of the end from the socket.
            tracing::debug!(pipe = %self.info.name, "closing a shared-memory connection: {reason}");
            link.shutdown();
            return;
        }
        if self.info.pipe_type == PipeMode::Message && !self.writer.is_mid_frame() {
            let _ = self.stream.write_all(&wire::encode_close_frame(reason));
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// A second handle on the same connection, for reading in one thread while another
    /// writes. Give reading to one handle and writing to the other: each keeps its own
    /// framing state, so two readers (or two writers) would split messages between them.
    ///
    /// # Errors
    ///
    /// [`PipeError::Io`] when the socket cannot be duplicated.
    pub fn try_clone(&self) -> Result<PipeConnection, PipeError> {
        let stream = self
            .stream
            .try_clone()
            .map_err(|e| PipeError::io(&self.info.name, "cannot duplicate the connection", e))?;
        let info = Info {
            name: self.info.name.clone(),
            peer: self.info.peer,
            _slot: None,
            ..self.info
        };
        Ok(PipeConnection {
            shm: self.shm.clone(),
            ..PipeConnection::new(stream, info)
        })
    }

    /// Says "no more data from this end" (a half close): the peer's next receive after the
    /// data already sent fails with [`PipeError::Disconnected`] (or `read` returns 0), while
    /// this end can still receive.
    ///
    /// # Errors
    ///
    /// [`PipeError::Io`] when the socket refuses.
    pub fn finish_sending(&self) -> Result<(), PipeError> {
        if let Some(link) = &self.shm {
            return link
                .finish_sending()
                .map_err(|e| PipeError::io(&self.info.name, "cannot shut down sending", e));
        }
        self.stream
            .shutdown(Shutdown::Write)
            .map_err(|e| PipeError::io(&self.info.name, "cannot shut down sending", e))
    }

    /// Disconnects this client (`DisconnectNamedPipe`); the server goes on serving others.
    pub fn disconnect(self) {
        if let Some(link) = &self.shm {
            link.shutdown();
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Lends room for a message of `len` bytes: write it in place, then
    /// [`Loan::send`]. On a shared-memory connection the room is in the ring and sending
    /// copies nothing (a message longer than a quarter of the ring, or a socket connection,
    /// gets a buffer of its own and one copy). Waits while the ring is full.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send): [`PipeError::MessageTooLarge`] before anything is lent.
    pub fn loan(&mut self, len: usize) -> Result<Loan<'_>, PipeError> {
        self.check_sendable()?;
        self.info.check_can_write()?;
        if self.info.pipe_type == PipeMode::Message {
            self.info.check_size(len)?;
        }
        if self.shm.as_deref().is_none_or(|link| len > link.max_loan()) {
            return Ok(Loan::copied(self, len));
        }
        let link = self.shm.as_deref().expect("shared memory");
        link.loan(len)
            .map(Loan::in_ring)
            .map_err(|e| link_error(&self.info, e, None, || link.shutdown()))
    }

    /// Receives the next whole message and lends it in place: on a shared-memory connection
    /// a message in one piece of the ring (up to a quarter of it) is read where it lies,
    /// without a copy, until the returned value is dropped; otherwise it is gathered as
    /// [`recv`](Self::recv) does.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_borrowed(&mut self) -> Result<Received<'_>, PipeError> {
        self.prepare_recv()?;
        if self.shm.is_none() {
            return self.recv().map(Received::owned);
        }
        let link = self.shm.as_deref().expect("shared memory");
        link.recv_borrowed(None)
            .map(Received::in_ring)
            .map_err(|e| link_error(&self.info, e, None, || link.shutdown()))
    }
}

/// The read mode `mode` may become on the connection of `info`.
pub(crate) fn checked_read_mode(info: &Info, mode: PipeMode) -> Result<PipeMode, PipeError> {
    if mode == PipeMode::Message && info.pipe_type == PipeMode::Byte {
        return Err(PipeError::ModeMismatch {
            name: info.name.clone(),
            detail: "message read mode needs a message-type pipe; this one is byte-type".into(),
        });
    }
    Ok(mode)
}

/// Whether a connection of `info` in `read_mode` can take part in a transaction.
pub(crate) fn check_transaction(info: &Info, read_mode: PipeMode) -> Result<(), PipeError> {
    info.check_messages()?;
    if read_mode != PipeMode::Message {
        return Err(PipeError::ModeMismatch {
            name: info.name.clone(),
            detail: "a transaction needs message read mode (ClientOptions::read_mode or \
                     set_read_mode with PipeMode::Message); this handle reads bytes"
                .into(),
        });
    }
    if !info.access.can_read() || !info.access.can_write() {
        return Err(PipeError::NotPermitted {
            name: info.name.clone(),
            detail: "a transaction writes and reads: this end is one-way (the pipe's \
                     direction or the access asked for)"
                .into(),
        });
    }
    Ok(())
}

/// The error of a transaction begun while received data waits unread.
pub(crate) fn unread_before_transaction(info: &Info) -> PipeError {
    PipeError::NotPermitted {
        name: info.name.clone(),
        detail: "a transaction needs nothing unread on the connection, or an earlier message \
                 could pass for its answer; receive what is waiting first"
            .into(),
    }
}

impl Read for PipeConnection {
    /// Reads bytes. On a message-type pipe in message read mode a read stops at the end of
    /// a message; in byte read mode it may span messages. Returns 0 when the peer closed
    /// the pipe.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check_usable().map_err(into_io)?;
        self.info.check_can_read().map_err(into_io)?;
        // In nonblocking mode every wait ends at once: a read gives what is there.
        let deadline = self.nonblocking.then(Instant::now);
        let waited = deadline.map(|_| Duration::ZERO);
        let result = if let Some(link) = &self.shm {
            if self.info.pipe_type == PipeMode::Message && self.info.read_mode == PipeMode::Message
            {
                self.recv_into(buf).map(|part| part.len)
            } else {
                match deadline {
                    None => link.read(buf),
                    Some(_) => link.read_by(buf, deadline),
                }
                .map_err(|e| self.link_failure(e, waited))
            }
        } else if self.info.pipe_type == PipeMode::Byte {
            match self.stream.read_until(buf, deadline) {
                Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(PipeError::Timeout {
                    name: self.info.name.clone(),
                    what: "waiting for data",
                    after: Duration::ZERO,
                }),
                result => return result,
            }
        } else {
            let stop = self.info.read_mode == PipeMode::Message;
            let stream = &self.stream;
            let result = self.reader.read_bytes(buf, stop, &mut |b: &mut [u8]| {
                stream.read_until(b, deadline)
            });
            result.map_err(|e| self.fail(e, waited))
        };
        result.map_err(|e| into_io(self.would_block(e)))
    }
}

impl Write for PipeConnection {
    /// Writes bytes; on a message-type pipe each call sends `buf` as one message.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check_sendable().map_err(into_io)?;
        self.info.check_can_write().map_err(into_io)?;
        if self.info.pipe_type == PipeMode::Byte && self.shm.is_none() {
            return self.stream.write_vectored(&[IoSlice::new(buf)]);
        }
        self.send(buf).map_err(into_io)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The connection's error for a failure of the shared-memory path; the peer breaking the
/// ring protocol ends the connection (`end` shuts it down).
pub(crate) fn link_error(
    info: &Info,
    e: LinkError,
    waited: Option<Duration>,
    end: impl FnOnce(),
) -> PipeError {
    let name = info.name.clone();
    match e {
        LinkError::Timeout => PipeError::Timeout {
            name,
            what: "waiting for a message",
            after: waited.unwrap_or_default(),
        },
        LinkError::Closed { mid_message: false } => PipeError::Disconnected {
            name,
            detail: "the peer closed the pipe".into(),
        },
        LinkError::Closed { mid_message: true } => PipeError::Disconnected {
            name,
            detail: "the peer closed the pipe in the middle of a message (the part received \
                     is dropped)"
                .into(),
        },
        LinkError::Corrupt(problem) => {
            tracing::warn!(pipe = %name, "closing connection: shared-memory ring: {problem}");
            end();
            PipeError::Protocol {
                name,
                source: wire::ProtocolError::BadField {
                    field: "shared-memory ring",
                    problem,
                },
            }
        }
        LinkError::Io(e) => info.io_failure("the doorbell failed", e),
    }
}

/// What a multi-object wait ([`WaitSet`](crate::sync::WaitSet)) watches of a connection:
/// it is ready when a receive would not wait for the first byte — bytes of a message (or of
/// the stream) have arrived, or the peer's end, or the connection is broken — which is the
/// socket's readability plus what this end has buffered already.
impl crate::sys::ready::ReadySource for PipeConnection {
    fn kind(&self) -> &'static str {
        "pipe connection"
    }

    fn name(&self) -> &str {
        &self.info.name
    }

    fn watch(&self) -> Result<crate::sys::ready::Watch, String> {
        if self.shm.is_some() {
            return Err(
                "a wait on many objects watches only socket connections; this one \
                 carries its data through shared memory (open it without \
                 PipeOptions::shared_memory, or receive with recv_timeout)"
                    .into(),
            );
        }
        #[cfg(feature = "tls")]
        if matches!(self.stream, Stream::Tls(_)) {
            return Err(
                "a wait on many objects watches only plaintext connections; TLS \
                 keeps decrypted bytes where the socket's readiness cannot show them"
                    .into(),
            );
        }
        use std::os::fd::AsFd;
        let fd = crate::sys::ready::duplicate(self.stream.as_fd()).map_err(|e| e.to_string())?;
        Ok(crate::sys::ready::Watch {
            ready: self.broken.is_some() || self.ended.is_some() || self.reader.has_buffered(),
            fds: vec![fd],
            also: None,
            _hold: None,
        })
    }
}
