//! The blocking transport under a pipe connection: a Unix socket or a TCP connection.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::security::PeerCredentials;

/// A connected socket of either family.
#[derive(Debug)]
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let r = match self {
                Stream::Unix(s) => (&*s).read(buf),
                Stream::Tcp(s) => (&*s).read(buf),
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
                Stream::Unix(s) => (&*s).write_vectored(bufs),
                Stream::Tcp(s) => (&*s).write_vectored(bufs),
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
        }
        self.read(buf)
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
            Stream::Unix(s) => (&*s).write_all(buf),
            Stream::Tcp(s) => (&*s).write_all(buf),
        }
    }

    pub(crate) fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tcp(s) => s.shutdown(how),
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
        }
    }

    /// The peer's credentials; `None` over TCP, where the kernel cannot vouch for them.
    pub(crate) fn peer_credentials(&self) -> io::Result<Option<PeerCredentials>> {
        match self {
            Stream::Unix(s) => crate::sys::peer_credentials(s).map(Some),
            Stream::Tcp(_) => Ok(None),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Stream::read(self, buf)
    }
}
