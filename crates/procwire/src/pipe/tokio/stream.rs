//! The tokio transport under a pipe connection.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::pipe::stream::FdLedger;
use crate::security::PeerCredentials;

#[derive(Debug)]
pub(crate) enum AsyncStream {
    Unix(AsyncLocal),
    Tcp(TcpStream),
    /// A TLS session over TCP, bridged to a local socket (see [`super::tls`]).
    #[cfg(feature = "tls")]
    Tls(super::tls::TlsEnd),
}

/// A connected Unix socket for tokio, read with `recvmsg` so that descriptors the peer
/// passes beside a handle frame are kept, as the blocking connection's socket is.
#[derive(Debug)]
pub(crate) struct AsyncLocal {
    socket: UnixStream,
    ledger: FdLedger,
}

impl AsyncLocal {
    /// The descriptors this socket brought in.
    pub(crate) fn ledger(&self) -> &FdLedger {
        &self.ledger
    }
}

impl std::os::fd::AsFd for AsyncLocal {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl std::ops::Deref for AsyncLocal {
    type Target = UnixStream;

    fn deref(&self) -> &UnixStream {
        &self.socket
    }
}

impl AsyncStream {
    /// A Unix socket connection.
    pub(crate) fn unix(socket: UnixStream) -> AsyncStream {
        AsyncStream::Unix(AsyncLocal {
            socket,
            ledger: FdLedger::default(),
        })
    }

    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            AsyncStream::Unix(s) => s
                .socket
                .try_io(Interest::READABLE, || s.ledger.read(&s.socket, buf)),
            AsyncStream::Tcp(s) => s.try_read(buf),
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => t.checked(t.plain.try_read(buf)),
        }
    }

    pub(crate) fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            // Reads into a message's own allocation stop at the message's end, so no
            // descriptor of a later handle frame can come with them; count the bytes.
            AsyncStream::Unix(s) => s.socket.try_read_buf(buf).inspect(|&n| s.ledger.count(n)),
            AsyncStream::Tcp(s) => s.try_read_buf(buf),
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => t.checked(t.plain.try_read_buf(buf)),
        }
    }

    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            AsyncStream::Unix(s) => s.try_write_vectored(bufs),
            AsyncStream::Tcp(s) => s.try_write_vectored(bufs),
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => t.plain.try_write_vectored(bufs),
        }
    }

    pub(crate) async fn readable(&self) -> io::Result<()> {
        match self {
            AsyncStream::Unix(s) => s.readable().await,
            AsyncStream::Tcp(s) => s.readable().await,
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => t.plain.readable().await,
        }
    }

    pub(crate) async fn writable(&self) -> io::Result<()> {
        match self {
            AsyncStream::Unix(s) => s.writable().await,
            AsyncStream::Tcp(s) => s.writable().await,
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => t.plain.writable().await,
        }
    }

    pub(crate) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            AsyncStream::Unix(s) => s.poll_write_ready(cx),
            AsyncStream::Tcp(s) => s.poll_write_ready(cx),
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => t.plain.poll_write_ready(cx),
        }
    }

    /// Writes all of `buf` through a shared reference, waiting for room as needed.
    pub(crate) async fn send_all(&self, buf: &[u8]) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            match self.try_write_vectored(&[IoSlice::new(&buf[done..])]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable().await?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Stops sending (a half close), through a shared reference.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        crate::sys::shutdown_write(self)
    }

    /// After a refusal or a close frame: stop sending, drain what the peer still sends for
    /// a moment, so that closing does not reset a TCP connection before the peer has read
    /// the last words.
    pub(crate) async fn linger(&self) {
        let _ = self.shutdown_write();
        let mut sink = [0u8; 16 * 1024];
        let drain = async {
            loop {
                match self.try_read(&mut sink) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if self.readable().await.is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), drain).await;
    }

    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            AsyncStream::Unix(s) => s.poll_read_ready(cx),
            AsyncStream::Tcp(s) => s.poll_read_ready(cx),
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => t.plain.poll_read_ready(cx),
        }
    }

    /// The network address of a TCP peer; `None` for a local one.
    pub(crate) fn peer_ip(&self) -> Option<std::net::IpAddr> {
        self.peer_addr().map(|a| a.ip())
    }

    /// The network address of a TCP peer; `None` for a local one.
    pub(crate) fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            AsyncStream::Unix(_) => None,
            AsyncStream::Tcp(s) => s.peer_addr().ok(),
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => Some(t.peer),
        }
    }

    /// As the blocking stream's `refuse_now`: answer without waiting, take in what has
    /// arrived, close.
    pub(crate) fn refuse_now(self, answer: &[u8], plaintext: bool) {
        match &self {
            AsyncStream::Unix(s) => crate::sys::answer_now(s, answer),
            AsyncStream::Tcp(s) if plaintext => crate::sys::answer_now(s, answer),
            AsyncStream::Tcp(_) => {}
            // The session is not up before the gate: nothing can be said in plaintext.
            #[cfg(feature = "tls")]
            AsyncStream::Tls(_) => {}
        }
    }

    pub(crate) fn peer_credentials(&self) -> io::Result<Option<PeerCredentials>> {
        match self {
            AsyncStream::Unix(s) => crate::sys::peer_credentials(s).map(Some),
            AsyncStream::Tcp(_) => Ok(None),
            // The local pair's credentials are this process's own, never the peer's.
            #[cfg(feature = "tls")]
            AsyncStream::Tls(_) => Ok(None),
        }
    }

    /// Writes all of `buf`.
    pub(crate) async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        use tokio::io::AsyncWriteExt;
        match self {
            AsyncStream::Unix(s) => s.socket.write_all(buf).await,
            AsyncStream::Tcp(s) => s.write_all(buf).await,
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => t.plain.write_all(buf).await,
        }
    }

    /// Reads some bytes.
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use tokio::io::AsyncReadExt;
        match self {
            // The handshake, before any frame: no descriptor may come with it.
            AsyncStream::Unix(s) => s.socket.read(buf).await,
            AsyncStream::Tcp(s) => s.read(buf).await,
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => {
                let read = t.plain.read(buf).await;
                t.checked(read)
            }
        }
    }

    /// Closes after a refusal or a close frame, as the blocking stream does: stop sending,
    /// drain for a moment, then close.
    pub(crate) async fn linger_and_close(&mut self) {
        let _ = self.shutdown().await;
        let mut sink = [0u8; 16 * 1024];
        let drain = async { while let Ok(1..) = self.read(&mut sink).await {} };
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), drain).await;
    }

    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        use tokio::io::AsyncWriteExt;
        match self {
            AsyncStream::Unix(s) => s.socket.shutdown().await,
            AsyncStream::Tcp(s) => s.shutdown().await,
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => t.plain.shutdown().await,
        }
    }
}

impl std::os::fd::AsFd for AsyncStream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            AsyncStream::Unix(s) => s.as_fd(),
            AsyncStream::Tcp(s) => s.as_fd(),
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => t.plain.as_fd(),
        }
    }
}

impl AsyncRead for AsyncStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AsyncStream::Unix(s) => Pin::new(&mut s.socket).poll_read(cx, buf),
            AsyncStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => {
                let before = buf.filled().len();
                match Pin::new(&mut t.plain).poll_read(cx, buf) {
                    Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                        Poll::Ready(t.checked(Ok(0)).map(|_| ()))
                    }
                    polled => polled,
                }
            }
        }
    }
}

impl AsyncWrite for AsyncStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            AsyncStream::Unix(s) => Pin::new(&mut s.socket).poll_write(cx, buf),
            AsyncStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => Pin::new(&mut t.plain).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AsyncStream::Unix(s) => Pin::new(&mut s.socket).poll_flush(cx),
            AsyncStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => Pin::new(&mut t.plain).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AsyncStream::Unix(s) => Pin::new(&mut s.socket).poll_shutdown(cx),
            AsyncStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            AsyncStream::Tls(t) => Pin::new(&mut t.plain).poll_shutdown(cx),
        }
    }
}

/// Reads one handshake message, as [`crate::pipe::handshake::read_blocking`] does.
pub(crate) async fn read_handshake<T>(
    stream: &mut AsyncStream,
    shape: crate::pipe::handshake::Shape<T>,
) -> io::Result<Result<T, crate::wire::ProtocolError>> {
    let mut assembler = crate::pipe::handshake::Assembler::new(shape);
    loop {
        let n = stream.read(assembler.spare()).await?;
        if n == 0 {
            return Err(assembler.eof_error());
        }
        if let Some(result) = assembler.filled(n) {
            return Ok(result);
        }
    }
}
