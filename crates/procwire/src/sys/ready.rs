//! Readiness of descriptor-based objects, for waits that mix them with futex words.
//!
//! An object that a multi-object wait can watch without a futex word (a pipe connection, a
//! mailslot) describes itself as a [`Watch`]: whether it is ready now, and the descriptors
//! whose readability makes it ready. The wait polls those (`poll(2)`) beside a stop
//! descriptor (an `eventfd(2)`) that ends the poll when the wait is over for another
//! reason.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};
use rustix::io::Errno;

/// What a wait watches of one descriptor-based object, for as long as the wait lasts.
pub(crate) struct Watch {
    /// Ready already, whatever the descriptors say (bytes buffered in the process, a broken
    /// connection whose next receive fails at once).
    pub(crate) ready: bool,
    /// Duplicates of the descriptors whose readability (data, or the peer's end) makes the
    /// object ready. Duplicates, so that a wait on another thread can own them.
    pub(crate) fds: Vec<OwnedFd>,
    /// Also ready while this says so; looked at on every check (a mailslot's store).
    pub(crate) also: Option<Box<dyn Fn() -> bool + Send + Sync>>,
    /// Kept for as long as the wait lasts, dropped when it ends.
    pub(crate) _hold: Option<Box<dyn Send + Sync>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("ready", &self.ready)
            .field("fds", &self.fds)
            .finish_non_exhaustive()
    }
}

impl Watch {
    /// Whether the object is ready now (never blocks).
    pub(crate) fn is_ready(&self) -> io::Result<bool> {
        if self.ready || self.also.as_ref().is_some_and(|also| also()) {
            return Ok(true);
        }
        let fds: Vec<BorrowedFd<'_>> = self.fds.iter().map(AsFd::as_fd).collect();
        poll_readable(&fds, None, Some(Duration::ZERO))
    }
}

/// An object whose readiness a multi-object wait can watch.
pub(crate) trait ReadySource {
    /// What the object is, for messages: `pipe connection`, `mailslot`.
    fn kind(&self) -> &'static str;
    /// The object's name.
    fn name(&self) -> &str;
    /// Begins watching the object. `Err` with the reason when its readiness cannot be
    /// watched through descriptors.
    fn watch(&self) -> Result<Watch, String>;
}

/// Duplicates `fd` (close-on-exec).
///
/// # References
/// - [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html), `F_DUPFD_CLOEXEC`
pub(crate) fn duplicate(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(fd, 0)?)
}

/// Waits until one of `fds` is readable (or at its end), `stop` is readable, or `timeout`
/// (`None`: no limit) runs out; `true` when one of `fds` is.
///
/// # References
/// - [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html)
pub(crate) fn poll_readable(
    fds: &[BorrowedFd<'_>],
    stop: Option<BorrowedFd<'_>>,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let mut polled: Vec<PollFd<'_>> = fds
        .iter()
        .chain(stop.as_ref())
        .map(|fd| PollFd::new(fd, PollFlags::IN))
        .collect();
    let timeout = timeout.map(|t| rustix::time::Timespec {
        tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: t.subsec_nanos().into(),
    });
    loop {
        match poll(&mut polled, timeout.as_ref()) {
            Ok(_) => break,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // Readable, at its end (HUP) or failed (ERR): a receive returns at once.
    Ok(polled[..fds.len()].iter().any(|p| !p.revents().is_empty()))
}

/// A descriptor that can be made readable to end a [`poll_readable`] on another thread.
#[derive(Debug)]
pub(crate) struct Stop {
    fd: OwnedFd,
}

impl Stop {
    /// A new, unsignalled stop (`eventfd(2)`).
    pub(crate) fn new() -> io::Result<Stop> {
        Ok(Stop {
            fd: eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?,
        })
    }

    /// The descriptor to poll.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Makes it readable.
    pub(crate) fn signal(&self) {
        // An eventfd write of 1 fails only when the counter would overflow, which takes
        // 2^64 - 2 signals without a reset.
        let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
    }

    /// Makes it unreadable again.
    pub(crate) fn reset(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn poll_sees_data_the_end_and_the_stop() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let stop = Stop::new().unwrap();
        let fds = [b.as_fd()];
        assert!(!poll_readable(&fds, Some(stop.fd()), Some(Duration::ZERO)).unwrap());
        stop.signal();
        assert!(!poll_readable(&fds, Some(stop.fd()), None).unwrap());
        stop.reset();
        a.write_all(b"x").unwrap();
        assert!(poll_readable(&fds, Some(stop.fd()), None).unwrap());
        let (a2, b2) = UnixStream::pair().unwrap();
        drop(a2);
        let dup = duplicate(b2.as_fd()).unwrap();
        assert!(poll_readable(&[dup.as_fd()], None, None).unwrap());
        drop(a);
    }
}
