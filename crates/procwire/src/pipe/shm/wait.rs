//! How a side of a shared-memory pipe waits: spin briefly while the peer runs on another
//! CPU, then sleep in `poll` on the doorbell socket, which the peer writes a byte to only
//! when it finds the waiting word set.
//!
//! The doorbell is a socket rather than a futex because the socket also says when the peer
//! is gone (it reads end-of-file when the peer closes or dies), which no futex can, and
//! because the tokio reactor can wait on a socket.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::shim::{AtomicU32, Ordering};

/// The shortest and longest spin, and the first.
const MIN_SPIN: Duration = Duration::from_micros(4);
const MAX_SPIN: Duration = Duration::from_micros(128);
const FIRST_SPIN: Duration = Duration::from_micros(32);

/// The spin of a tokio task within one poll: none. One look per poll, then a yield, lets
/// the runtime's other tasks run between looks (a task of the same connection may be the
/// one with the next message to send).
#[cfg(feature = "tokio")]
const BRIEF_SPIN: Duration = Duration::ZERO;

/// How long a tokio task goes on looking, yielding to the runtime's other tasks between
/// looks, before it waits through the reactor: a wake-up through the reactor costs tens of
/// microseconds here, and a peer usually answers well within this.
#[cfg(feature = "tokio")]
const YIELDING_LOOK: Duration = Duration::from_micros(50);

/// How many waits pass between two looks at which CPU this thread runs on.
const CPU_REFRESH: u32 = 1024;

/// A waiting side's adaptive spin: longer after spins that ended with the peer's answer,
/// shorter after spins that ended in sleep.
#[derive(Debug)]
pub(crate) struct Spin {
    budget: Duration,
    min: Duration,
    max: Duration,
    waits: u32,
    /// How long to go on looking between yields (tokio tasks only; zero otherwise), and
    /// since when this wait has been looking.
    #[cfg(feature = "tokio")]
    yielding: Duration,
    looking_since: Option<Instant>,
}

impl Spin {
    /// The spin of a thread that may wait as it likes.
    pub(crate) fn new() -> Spin {
        Spin {
            budget: FIRST_SPIN,
            min: MIN_SPIN,
            max: MAX_SPIN,
            waits: 0,
            #[cfg(feature = "tokio")]
            yielding: Duration::ZERO,
            looking_since: None,
        }
    }

    /// The spin of a tokio task: no spin within a poll, a yielding look for a while
    /// ([`keep_looking`](Self::keep_looking)).
    #[cfg(feature = "tokio")]
    pub(crate) fn brief() -> Spin {
        Spin {
            budget: BRIEF_SPIN,
            min: BRIEF_SPIN,
            max: BRIEF_SPIN,
            waits: 0,
            yielding: YIELDING_LOOK,
            looking_since: None,
        }
    }

    /// Spins until `ready` gives a value or the budget is spent (at once when the peer last
    /// ran on this CPU: spinning would only keep it from running). `my_cpu` is refreshed
    /// now and then so the peer can make the same decision.
    #[inline]
    pub(crate) fn spin<T, E>(
        &mut self,
        my_cpu: &AtomicU32,
        peer_cpu: &AtomicU32,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> Result<Option<T>, E>,
    ) -> Result<Option<T>, E> {
        if let Some(value) = ready()? {
            self.looking_since = None;
            return Ok(Some(value));
        }
        if self.budget.is_zero() || self.shares_cpu(my_cpu, peer_cpu) {
            return Ok(None);
        }
        let start = Instant::now();
        let until = deadline.map_or(start + self.budget, |d| d.min(start + self.budget));
        loop {
            for _ in 0..64 {
                std::hint::spin_loop();
                if let Some(value) = ready()? {
                    self.budget = (self.budget * 2).min(self.max);
                    self.looking_since = None;
                    return Ok(Some(value));
                }
            }
            if Instant::now() >= until {
                self.budget = (self.budget / 2).max(self.min);
                return Ok(None);
            }
        }
    }

    /// Whether the peer last ran on this CPU (spinning would only keep it from running).
    /// `my_cpu` is refreshed now and then so the peer can make the same decision.
    fn shares_cpu(&mut self, my_cpu: &AtomicU32, peer_cpu: &AtomicU32) -> bool {
        self.waits = self.waits.wrapping_add(1);
        if self.waits % CPU_REFRESH == 1 {
            my_cpu.store(crate::sys::thread::current_cpu(), Ordering::Relaxed);
        }
        peer_cpu.load(Ordering::Relaxed) == my_cpu.load(Ordering::Relaxed)
    }

    /// After a [`spin`](Self::spin) that found nothing, for a tokio task: whether to yield to
    /// the runtime's other tasks and look again rather than wait through the reactor
    /// (within [`YIELDING_LOOK`] of this wait's first look, and not while the peer shares
    /// this CPU).
    #[cfg(feature = "tokio")]
    pub(crate) fn keep_looking(&mut self, my_cpu: &AtomicU32, peer_cpu: &AtomicU32) -> bool {
        if self.yielding.is_zero() || self.shares_cpu(my_cpu, peer_cpu) {
            return false;
        }
        let now = Instant::now();
        let since = *self.looking_since.get_or_insert(now);
        if now.duration_since(since) < self.yielding {
            return true;
        }
        self.looking_since = None;
        false
    }

    /// After a sleep this thread may run elsewhere: look again at the next wait.
    pub(crate) fn slept(&mut self) {
        self.waits = 0;
        self.looking_since = None;
    }
}

/// What a sleep on the doorbell ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rang {
    /// A byte came (or a signal, or nothing): look at the ring again.
    Maybe,
    /// The peer closed its end: after one more look at the ring, nothing more will come.
    PeerClosed,
    /// The deadline passed.
    TimedOut,
}

/// Sleeps until the doorbell rings, the peer closes it, or `deadline` passes; takes in what
/// the peer sent, so that the next sleep waits for a new ring.
pub(crate) fn sleep(bell: &UnixStream, deadline: Option<Instant>) -> io::Result<Rang> {
    let left = match deadline {
        None => Duration::from_secs(3600),
        Some(d) => d.saturating_duration_since(Instant::now()),
    };
    if left.is_zero() {
        return Ok(Rang::TimedOut);
    }
    if !crate::sys::wait_readable(bell, left)? {
        return Ok(if deadline.is_some() {
            Rang::TimedOut
        } else {
            Rang::Maybe
        });
    }
    Ok(match take_rings(bell.as_fd())? {
        Taken::Closed => Rang::PeerClosed,
        Taken::Rings { .. } => Rang::Maybe,
    })
}

/// What [`take_rings`] found on the doorbell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Rings (or none): `drained` when the socket is now empty.
    Rings { drained: bool },
    /// The peer closed its end.
    Closed,
}

/// Takes in the rings the peer sent, so that the next sleep waits for a new one; never
/// waits. A peer could keep the socket full: a bounded number of reads is enough to go on.
pub(crate) fn take_rings(bell: BorrowedFd<'_>) -> io::Result<Taken> {
    let mut sink = [0u8; 256];
    for _ in 0..16 {
        match crate::sys::recv_now(bell, &mut sink) {
            Ok(0) => return Ok(Taken::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(Taken::Rings { drained: true })
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(Taken::Closed),
            Err(e) => return Err(e),
        }
    }
    Ok(Taken::Rings { drained: false })
}

/// Rings the peer's doorbell: one byte, never waiting (a full socket already holds rings
/// the peer has not taken; a closed one means the peer is gone, which its side notices).
pub(crate) fn ring(bell: &UnixStream) {
    let _ = crate::sys::send_now(bell, &[1]);
}
