//! Futex wait and wake on 32-bit words in shared memory.
//!
//! These are process-shared futexes (no `FUTEX_PRIVATE_FLAG`): the kernel keys them by the
//! backing file and offset, so processes that map the same object at different addresses
//! meet on the same word. Waiting sleeps in the kernel; nothing here spins.

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::io::Errno;
use rustix::thread::futex;

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Woken by [`wake`], by a signal, or spuriously: look at the word again.
    Woken,
    /// The word did not hold the expected value when the wait began.
    Changed,
    /// The timeout ran out.
    TimedOut,
}

/// Sleeps while `word` holds `expected`, for at most `timeout` (`None`: no limit).
///
/// The check of the word and the start of the sleep are one atomic step, so a [`wake`] that
/// follows a change of the word is never lost.
///
/// # Errors
///
/// Only for futex errors that correct use cannot produce (`ENOSYS`, `EINVAL`, `EFAULT`).
///
/// # References
/// - [`futex(2)`](https://man7.org/linux/man-pages/man2/futex.2.html), `FUTEX_WAIT`
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<Wake> {
    let timespec = timeout.map(|t| futex::Timespec {
        tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: t.subsec_nanos().into(),
    });
    match futex::wait(word, futex::Flags::empty(), expected, timespec.as_ref()) {
        Ok(()) | Err(Errno::INTR) => Ok(Wake::Woken),
        Err(Errno::AGAIN) => Ok(Wake::Changed),
        Err(Errno::TIMEDOUT) => Ok(Wake::TimedOut),
        Err(e) => Err(e.into()),
    }
}

/// Wakes up to `count` threads sleeping on `word` in any process; returns how many woke.
///
/// # References
/// - [`futex(2)`](https://man7.org/linux/man-pages/man2/futex.2.html), `FUTEX_WAKE`
pub(crate) fn wake(word: &AtomicU32, count: u32) -> usize {
    // The kernel reads the count as an `int`: more than `i32::MAX` would wake none.
    let count = count.min(i32::MAX as u32);
    // Waking cannot fail for a valid, aligned word; if it somehow does, the sleepers time out
    // or re-check on their own, so there is nothing better to do than to go on.
    futex::wake(word, futex::Flags::empty(), count).unwrap_or(0)
}

/// Wakes every thread sleeping on `word`.
pub(crate) fn wake_all(word: &AtomicU32) -> usize {
    wake(word, i32::MAX as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn wait_times_out_no_earlier_than_asked() {
        let word = AtomicU32::new(5);
        let started = Instant::now();
        let woke = wait(&word, 5, Some(Duration::from_millis(30))).unwrap();
        assert_eq!(woke, Wake::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(wait(&word, 6, None).unwrap(), Wake::Changed);
    }

    #[test]
    fn wake_reaches_a_sleeper() {
        let word = Arc::new(AtomicU32::new(0));
        let sleeper = {
            let word = Arc::clone(&word);
            std::thread::spawn(move || {
                while word.load(Ordering::Acquire) == 0 {
                    wait(&word, 0, Some(Duration::from_secs(10))).unwrap();
                }
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        word.store(1, Ordering::Release);
        wake_all(&word);
        sleeper.join().unwrap();
    }
}
