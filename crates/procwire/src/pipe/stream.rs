//! The blocking transport under a pipe connection: a Unix socket or a TCP connection.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::security::PeerCredentials;

/// The most descriptors that may wait on a connection for their handle frames; a peer that
/// passes more before they are received breaks the connection.
pub(crate) const MAX_WAITING_FDS: usize = 64;

/// A connected Unix socket, read with `recvmsg` so that descriptors the peer passes
/// (`SCM_RIGHTS`, beside a handle frame) are kept rather than lost, with where in the
/// stream they came.
#[derive(Debug)]
pub(crate) struct Local {
    socket: UnixStream,
    ledger: FdLedger,
}

/// The descriptors a Unix socket's reads brought in and where in the stream they came:
/// shared by the blocking and the tokio connection.
#[derive(Debug, Default)]
pub(crate) struct FdLedger {
    /// Bytes read from the socket so far through this handle (one reader at a time: the
    /// connection's receive path).
    received: AtomicU64,
    /// Descriptors received and not yet claimed by a handle frame; locked only when some
    /// come or a handle frame claims them.
    arrivals: Mutex<VecDeque<Arrival>>,
}

/// Descriptors that came with a read that ended at stream offset `end`: they belong to the
/// frame that holds byte `end - 1`.
#[derive(Debug)]
struct Arrival {
    end: u64,
    fds: Vec<OwnedFd>,
}

impl FdLedger {
    fn arrivals(&self) -> std::sync::MutexGuard<'_, VecDeque<Arrival>> {
        self.arrivals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads from `socket` with `recvmsg`, keeping the descriptors that come.
    pub(crate) fn read(&self, socket: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
        let (n, fds) = crate::sys::recv_some_with_fds(socket, buf)?;
        let end = self.received.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if !fds.is_empty() {
            let mut arrivals = self.arrivals();
            let waiting: usize = arrivals.iter().map(|a| a.fds.len()).sum();
            if waiting + fds.len() > MAX_WAITING_FDS {
                arrivals.clear();
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the peer passed more than {MAX_WAITING_FDS} descriptors that no \
                         handle frame claimed (all are closed)"
                    ),
                ));
            }
            arrivals.push_back(Arrival { end, fds });
        }
        Ok(n)
    }

    /// Counts bytes read from the socket some other way (never with descriptors).
    pub(crate) fn count(&self, n: usize) {
        self.received.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Bytes read from the socket so far through this handle.
    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// The descriptors of the handle frame of `len` bytes (header included) at stream offset
    /// `at`; empty when none came with it.
    ///
    /// The kernel ends a read that takes descriptors inside (or at the end of) the
    /// `sendmsg` that carried them, so descriptors belong to the frame that holds the last
    /// byte of the read they came with: this frame when `at < end <= at + len`. Those that
    /// came with earlier bytes (a peer attached them to a message) are closed and counted in
    /// the second value; those of later frames stay.
    pub(crate) fn claim(&self, at: u64, len: u64) -> (Vec<OwnedFd>, usize) {
        let mut arrivals = self.arrivals();
        let mut stray = 0;
        while arrivals.front().is_some_and(|a| a.end <= at) {
            stray += arrivals.pop_front().map_or(0, |a| a.fds.len());
        }
        match arrivals.front() {
            Some(a) if a.end <= at + len => {
                let fds = arrivals.pop_front().map(|a| a.fds).unwrap_or_default();
                (fds, stray)
            }
            _ => (Vec::new(), stray),
        }
    }
}

impl Local {
    pub(crate) fn new(socket: UnixStream) -> Local {
        Local {
            socket,
            ledger: FdLedger::default(),
        }
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.ledger.read(&self.socket, buf)
    }

    /// The descriptors this socket brought in.
    pub(crate) fn ledger(&self) -> &FdLedger {
        &self.ledger
    }

    /// The socket, for a connection that moves to the tokio API (nothing unclaimed is
    /// carried over: a connection is passed only between frames).
    #[cfg(feature = "tokio")]
    pub(crate) fn into_socket(self) -> UnixStream {
        self.socket
    }
}

impl AsFd for Local {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl std::ops::Deref for Local {
    type Target = UnixStream;

    fn deref(&self) -> &UnixStream {
        &self.socket
    }
}

/// A connected socket of either family, or a TLS session over TCP.
#[derive(Debug)]
pub(crate) enum Stream {
    Unix(Local),
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(std::sync::Arc<super::tls::TlsStream>),
}

impl Stream {
    /// A Unix socket connection.
    pub(crate) fn unix(socket: UnixStream) -> Stream {
        Stream::Unix(Local::new(socket))
    }

    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let r = match self {
                Stream::Unix(s) => s.read(buf),
                Stream::Tcp(s) => (&*s).read(buf),
                #[cfg(feature = "tls")]
                Stream::Tls(s) => s.read(buf),
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        loop {
            let r = match self {
                Stream::Unix(s) => (&s.socket).write_vectored(bufs),
                Stream::Tcp(s) => (&*s).write_vectored(bufs),
                #[cfg(feature = "tls")]
                Stream::Tls(s) => s.write_vectored(bufs),
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// Reads with a deadline for the whole exchange rather than for each read.
    pub(crate) fn read_by(&self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        match self {
            Stream::Unix(s) => s.set_read_timeout(Some(left))?,
            Stream::Tcp(s) => s.set_read_timeout(Some(left))?,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => return s.read_by(buf, deadline),
        }
        self.read(buf)
    }

    /// Reads, waiting at most until `deadline` when one is given (then `TimedOut`); the
    /// socket's own timeout is left as it was.
    pub(crate) fn read_until(
        &self,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> io::Result<usize> {
        let Some(deadline) = deadline else {
            return self.read(buf);
        };
        #[cfg(feature = "tls")]
        if let Stream::Tls(s) = self {
            if !s.has_plaintext() {
                let result = s.read_by(buf, deadline);
                s.socket().set_read_timeout(None)?;
                return result;
            }
            return s.read(buf);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if !crate::sys::wait_readable(self, left)? {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.read(buf)
    }

    /// Reads into the spare capacity of `buf` (a large message's own allocation), waiting
    /// at most until `deadline` when one is given.
    pub(crate) fn read_into_spare(
        &self,
        buf: &mut Vec<u8>,
        deadline: Option<Instant>,
    ) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Stream::Tls(_) = self {
            let start = buf.len();
            buf.resize(buf.capacity(), 0);
            let result = self.read_until(&mut buf[start..], deadline);
            buf.truncate(start + *result.as_ref().unwrap_or(&0));
            return result;
        }
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if !crate::sys::wait_readable(self, left)? {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
        let n = crate::sys::read_into_spare(self, buf)?;
        if let Stream::Unix(s) = self {
            // Reads into a message's own allocation stop at the message's end, so no
            // descriptor of a later handle frame can come with them; count the bytes.
            s.ledger.count(n);
        }
        Ok(n)
    }

    /// Closes after a refusal or a close frame: stops sending, then drains what the peer
    /// still sends for a moment, so that closing does not reset a TCP connection before
    /// the peer has read the last words.
    pub(crate) fn linger_and_close(&self) {
        let _ = self.shutdown(Shutdown::Write);
        let deadline = Instant::now() + Duration::from_millis(200);
        let mut sink = [0u8; 16 * 1024];
        while let Ok(1..) = self.read_by(&mut sink, deadline) {}
        let _ = self.shutdown(Shutdown::Both);
    }

    pub(crate) fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Unix(s) => (&s.socket).write_all(buf),
            Stream::Tcp(s) => (&*s).write_all(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write_vectored(&[IoSlice::new(buf)]).map(drop),
        }
    }

    pub(crate) fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(Local::new(s.socket.try_clone()?)),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Stream::Tls(std::sync::Arc::clone(s)),
        })
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tcp(s) => s.shutdown(how),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.shutdown(how),
        }
    }

    pub(crate) fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
            Stream::Tcp(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
            #[cfg(feature = "tls")]
            Stream::Tls(s) => {
                s.socket().set_read_timeout(timeout)?;
                s.socket().set_write_timeout(timeout)
            }
        }
    }

    /// The peer's credentials; `None` over TCP, where the kernel cannot vouch for them.
    /// The network address of a TCP peer; `None` for a local one.
    pub(crate) fn peer_ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Stream::Unix(_) => None,
            Stream::Tcp(s) => s.peer_addr().ok().map(|a| a.ip()),
            #[cfg(feature = "tls")]
            Stream::Tls(_) => None,
        }
    }

    /// The network address of a TCP peer (TLS included); `None` for a local one.
    pub(crate) fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Stream::Unix(_) => None,
            Stream::Tcp(s) => s.peer_addr().ok(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.socket().peer_addr().ok(),
        }
    }

    /// A copy of the bytes the kernel holds for reading, taking none (`MSG_PEEK`); empty
    /// over TLS, whose queued bytes are not yet plaintext.
    pub(crate) fn peek_queued(&self) -> io::Result<Vec<u8>> {
        match self {
            Stream::Unix(_) | Stream::Tcp(_) => peek_queued(self),
            #[cfg(feature = "tls")]
            Stream::Tls(_) => Ok(Vec::new()),
        }
    }

    /// Whether the kernel holds bytes for reading (for TLS: records not yet decrypted).
    pub(crate) fn has_queued(&self) -> io::Result<bool> {
        #[cfg(feature = "tls")]
        if let Stream::Tls(s) = self {
            if s.has_plaintext() {
                return Ok(true);
            }
        }
        Ok(crate::sys::queued(self)? > 0)
    }

    /// Sends a refusal without waiting (a few bytes into an empty socket buffer), takes in
    /// what the client has sent so far without waiting, and closes: for a client that gets
    /// no place, so nothing here can block on it.
    /// A TCP client is answered only when `plaintext` (a TLS client expects TLS first, so
    /// it is just closed).
    pub(crate) fn refuse_now(self, answer: &[u8], plaintext: bool) {
        match &self {
            Stream::Unix(s) => crate::sys::answer_now(s, answer),
            Stream::Tcp(s) if plaintext => crate::sys::answer_now(s, answer),
            _ => {}
        }
    }

    pub(crate) fn peer_credentials(&self) -> io::Result<Option<PeerCredentials>> {
        match self {
            Stream::Unix(s) => crate::sys::peer_credentials(s).map(Some),
            Stream::Tcp(_) => Ok(None),
            #[cfg(feature = "tls")]
            Stream::Tls(_) => Ok(None),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.socket.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.socket().as_fd(),
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Stream::read(self, buf)
    }
}

/// A copy of the bytes the kernel holds for reading on `socket`, taking none.
pub(crate) fn peek_queued(socket: impl AsFd) -> io::Result<Vec<u8>> {
    let queued = crate::sys::queued(&socket)?;
    let mut buf = vec![0; queued];
    let n = crate::sys::peek_now(&socket, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}
