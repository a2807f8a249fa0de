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

/// The most words one [`wait_any`] can watch (the kernel's `FUTEX_WAITV_MAX`).
pub(crate) const WAITV_MAX: usize = 128;

/// How a [`wait_any`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WakeAny {
    /// Woken through the word at this index (a wake-up on another word may have reached
    /// this waiter at the same time), by a signal (`None`), or spuriously: look again.
    Woken(Option<usize>),
    /// Some word did not hold its expected value when the wait began.
    Changed,
    /// The timeout ran out.
    TimedOut,
}

/// Sleeps while every `words[i]` holds `expected[i]`, until any of them is woken, for at
/// most `timeout` (`None`: no limit): `futex_waitv(2)`.
///
/// As with [`wait`], the check of all the words and the start of the sleep are one atomic
/// step: a [`wake`] of any of them that follows a change of the word is never lost. The
/// words are process-shared (no `FUTEX2_PRIVATE`), so words in shared mappings and words in
/// this process's own memory mix freely.
///
/// # Errors
///
/// `InvalidInput` for more than [`WAITV_MAX`] words; otherwise only for futex errors that
/// correct use cannot produce (`ENOSYS` before Linux 5.16, `EINVAL`, `EFAULT`).
///
/// # References
/// - [`futex_waitv(2)`](https://man7.org/linux/man-pages/man2/futex_waitv.2.html)
/// - [futex2 userspace API](https://docs.kernel.org/userspace-api/futex2.html)
pub(crate) fn wait_any(
    words: &[(&AtomicU32, u32)],
    timeout: Option<Duration>,
) -> io::Result<WakeAny> {
    use rustix::thread::futex::{ClockId, Wait, WaitFlags, WaitPtr, WaitvFlags};
    if words.len() > WAITV_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("futex_waitv watches at most {WAITV_MAX} words"),
        ));
    }
    let mut waiters = [Wait::new(); WAITV_MAX];
    for (slot, (word, expected)) in waiters.iter_mut().zip(words) {
        slot.val = u64::from(*expected);
        // The kernel only reads the word through this address (it never writes it), and
        // the borrow keeps the word alive until the call returns.
        slot.uaddr = WaitPtr::new(word.as_ptr().cast());
        slot.flags = WaitFlags::SIZE_U32;
    }
    // futex_waitv takes an absolute time on the clock it is given.
    let deadline = match timeout {
        None => None,
        Some(t) => {
            let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
            let at = Duration::new(now.tv_sec as u64, now.tv_nsec as u32).checked_add(t);
            at.map(|at| futex::Timespec {
                tv_sec: i64::try_from(at.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: at.subsec_nanos().into(),
            })
        }
    };
    match futex::waitv(
        &waiters[..words.len()],
        WaitvFlags::empty(),
        deadline.as_ref(),
        ClockId::Monotonic,
    ) {
        Ok(index) => Ok(WakeAny::Woken(Some(index))),
        Err(Errno::INTR) => Ok(WakeAny::Woken(None)),
        Err(Errno::AGAIN) => Ok(WakeAny::Changed),
        Err(Errno::TIMEDOUT) => Ok(WakeAny::TimedOut),
        Err(e) => Err(e.into()),
    }
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

    #[test]
    fn wait_any_sees_a_change_of_any_word_and_names_the_woken_one() {
        let (a, b) = (AtomicU32::new(1), AtomicU32::new(2));
        assert_eq!(
            wait_any(&[(&a, 1), (&b, 3)], None).unwrap(),
            WakeAny::Changed
        );
        let started = Instant::now();
        assert_eq!(
            wait_any(&[(&a, 1), (&b, 2)], Some(Duration::from_millis(30))).unwrap(),
            WakeAny::TimedOut
        );
        assert!(started.elapsed() >= Duration::from_millis(30));
        std::thread::scope(|s| {
            let sleeper = s.spawn(|| wait_any(&[(&a, 1), (&b, 2)], Some(Duration::from_secs(10))));
            std::thread::sleep(Duration::from_millis(20));
            b.store(5, Ordering::Release);
            wake_all(&b);
            let woke = sleeper.join().unwrap().unwrap();
            assert!(
                matches!(woke, WakeAny::Woken(Some(1)) | WakeAny::Changed),
                "{woke:?}"
            );
        });
        let many: Vec<AtomicU32> = (0..=WAITV_MAX as u32).map(AtomicU32::new).collect();
        let words: Vec<_> = many.iter().map(|w| (w, 0)).collect();
        assert!(wait_any(&words, None).is_err());
    }
}
