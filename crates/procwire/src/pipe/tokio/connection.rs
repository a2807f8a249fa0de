//! One connected end of a pipe, async.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::stream::AsyncStream;
use crate::pipe::connection::READ_BUFFER;
use crate::pipe::framing::{FrameReader, FrameWriter, RecvError};
use crate::pipe::info::{into_io, Failure, Info, MessagePart};
use crate::pipe::PipeError;
use crate::security::{Access, PeerCredentials};
use crate::wire::{self, PipeMode};

/// One connected end of a named pipe, for tokio: the async twin of
/// [`crate::pipe::PipeConnection`].
///
/// `send`, `recv` and `recv_into` move whole messages on a message-type pipe. `AsyncRead`
/// works on both types (a message-type pipe reads as the blocking `Read` does);
/// `AsyncWrite` is for byte-type pipes, where it is a plain stream.
///
/// Cancelling a `send` future half-way leaves a partial message on the wire; the
/// connection then refuses further sends with [`PipeError::Disconnected`]. Cancelling a
/// `recv` loses nothing.
#[derive(Debug)]
pub struct PipeConnection {
    stream: AsyncStream,
    info: Info,
    reader: FrameReader,
    writer: FrameWriter,
    broken: Option<String>,
}

fn would_block(e: &RecvError) -> bool {
    matches!(e, RecvError::Io(e) if e.kind() == io::ErrorKind::WouldBlock)
}

impl PipeConnection {
    pub(crate) fn new(stream: AsyncStream, info: Info) -> PipeConnection {
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
        }
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

    /// The kernel-verified identity of the peer process; `None` over TCP.
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        self.info.peer
    }

    fn check_usable(&self) -> Result<(), PipeError> {
        match &self.broken {
            Some(why) => Err(self.info.broken(why)),
            None => Ok(()),
        }
    }

    /// Sends one message (on a byte-type pipe: writes the bytes).
    ///
    /// # Errors
    ///
    /// As [`crate::pipe::PipeConnection::send`].
    pub async fn send(&mut self, message: &[u8]) -> Result<(), PipeError> {
        self.check_usable()?;
        self.info.check_can_write()?;
        if self.info.pipe_type == PipeMode::Byte {
            let result = self.stream.write_all(message).await;
            return result.map_err(|e| self.info.io_failure("send failed", e));
        }
        self.info.check_size(message.len())?;
        if self.writer.is_mid_frame() {
            self.broken = Some("an earlier send was cancelled in the middle of a message".into());
            return Err(self
                .info
                .broken("an earlier send was cancelled mid-message"));
        }
        loop {
            let stream = &self.stream;
            let result = self
                .writer
                .send(message, self.info.max_message, &mut |bufs| {
                    stream.try_write_vectored(bufs)
                });
            match result {
                Ok(()) => return Ok(()),
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

    /// Receives the next whole message (or the rest of one `recv_into` left).
    ///
    /// # Errors
    ///
    /// As [`crate::pipe::PipeConnection::recv`].
    pub async fn recv(&mut self) -> Result<Vec<u8>, PipeError> {
        self.prepare_recv()?;
        loop {
            let stream = &self.stream;
            let result = self.reader.recv_message(
                &mut |b: &mut [u8]| stream.try_read(b),
                &mut |v: &mut Vec<u8>| stream.try_read_buf(v),
            );
            match result {
                Ok(message) => return Ok(message),
                Err(e) if would_block(&e) => self.wait_readable().await?,
                Err(e) => return Err(self.fail(e).await),
            }
        }
    }

    /// Receives into `buf`; a message longer than `buf` arrives over several calls.
    ///
    /// # Errors
    ///
    /// As [`crate::pipe::PipeConnection::recv_into`].
    pub async fn recv_into(&mut self, buf: &mut [u8]) -> Result<MessagePart, PipeError> {
        self.prepare_recv()?;
        loop {
            let stream = &self.stream;
            let result = self
                .reader
                .recv_into(buf, &mut |b: &mut [u8]| stream.try_read(b));
            match result {
                Ok((len, complete)) => return Ok(MessagePart { len, complete }),
                Err(e) if would_block(&e) => self.wait_readable().await?,
                Err(e) => return Err(self.fail(e).await),
            }
        }
    }

    async fn wait_readable(&self) -> Result<(), PipeError> {
        self.stream
            .readable()
            .await
            .map_err(|e| self.info.io_failure("receive failed", e))
    }

    fn prepare_recv(&self) -> Result<(), PipeError> {
        self.check_usable()?;
        self.info.check_messages()?;
        self.info.check_can_read()
    }

    async fn fail(&mut self, e: RecvError) -> PipeError {
        match self.info.recv_failure(e, None) {
            Failure::Retry(e) => e,
            Failure::Fatal(e) => {
                self.broken = Some(e.to_string());
                e
            }
            Failure::Refuse(e, reason) => {
                tracing::warn!(pipe = %self.info.name, "closing connection: {reason}");
                if !self.writer.is_mid_frame() {
                    let frame = wire::encode_close_frame(&reason);
                    let _ = self.stream.write_all(&frame).await;
                }
                self.stream.linger_and_close().await;
                self.broken = Some(reason);
                e
            }
        }
    }

    /// Half-closes: no more data from this end; this end can still receive.
    ///
    /// # Errors
    ///
    /// [`PipeError::Io`] when the socket refuses.
    pub async fn finish_sending(&mut self) -> Result<(), PipeError> {
        let result = self.stream.shutdown().await;
        result.map_err(|e| PipeError::io(&self.info.name, "cannot shut down sending", e))
    }
}

impl AsyncRead for PipeConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check_usable().and(this.info.check_can_read()) {
            return Poll::Ready(Err(into_io(e)));
        }
        if this.info.pipe_type == PipeMode::Byte {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        let stop = this.info.read_mode == PipeMode::Message;
        loop {
            let stream = &this.stream;
            let out = buf.initialize_unfilled();
            let result = this
                .reader
                .read_bytes(out, stop, &mut |b: &mut [u8]| stream.try_read(b));
            match result {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if would_block(&e) => match this.stream.poll_read_ready(cx) {
                    Poll::Ready(Ok(())) => continue,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                },
                Err(e) => {
                    let e = match this.info.recv_failure(e, None) {
                        Failure::Retry(e) | Failure::Fatal(e) | Failure::Refuse(e, _) => e,
                    };
                    this.broken = Some(e.to_string());
                    return Poll::Ready(Err(into_io(e)));
                }
            }
        }
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
        let this = self.get_mut();
        if let Err(e) = this.check_usable().and(this.info.check_can_write()) {
            return Poll::Ready(Err(into_io(e)));
        }
        if this.info.pipe_type == PipeMode::Message {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "AsyncWrite is for byte-type pipes; send messages with send().await",
            )));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
