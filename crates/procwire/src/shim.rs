//! What the shared-memory protocols are made of: atomics, futex wait and wake, and
//! deadlines. The protocols (the sync objects' `*State` types, and any later protocol on
//! shared memory) use only these, so that the same code runs for real and under the loom
//! model checker.
//!
//! | | for real | in this crate's tests built with `--cfg loom` |
//! |---|---|---|
//! | [`AtomicU32`], [`AtomicU64`], [`fence`] | `std::sync::atomic` | `loom::sync::atomic` |
//! | [`futex`] | [`crate::sys::futex`]: the kernel's `FUTEX_WAIT` / `FUTEX_WAKE` | a model: one queue of sleepers keyed by word address, a `Mutex` and a `Condvar` |
//! | [`Deadline`] | `CLOCK_MONOTONIC` (`Instant`) | a budget of looks at the clock: the first `MODEL_LOOKS` (2) find time left, the next finds it run out |
//!
//! The model is for this crate's own unit tests only (`all(loom, test)`, as tokio does): a
//! program that runs its own loom tests with `RUSTFLAGS="--cfg loom"` still gets procwire's
//! real atomics and futexes.
//!
//! A protocol in which one side writes A then reads B and the other writes B then reads A
//! (a waiter announcing itself, a waker looking for waiters) puts a `fence(SeqCst)` between
//! the write and the read on both sides: that is what makes one of them see the other, and
//! loom checks fences exactly (it treats `SeqCst` loads and stores as acquire/release only).
//!
//! The model futex keeps the kernel's promise: the check of the word and the start of the
//! sleep are one step under its lock, so a wake-up after a change of the word is never lost.
//! A sleep with a timeout may end by timing out at any point after it began (the model lets
//! the other threads run, then times out unless woken); a sleep without one ends only by a
//! wake-up, so a lost wake-up is a thread blocked for good, which loom reports as a
//! deadlock.

#[cfg(all(loom, test))]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64};
pub(crate) use std::sync::atomic::Ordering;
#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64};

use std::time::Duration;

/// Futex wait and wake on a 32-bit word: the kernel's, or the model's.
pub(crate) mod futex {
    pub(crate) use crate::sys::futex::Wake;
    #[cfg(not(all(loom, test)))]
    pub(crate) use crate::sys::futex::{wait, wake, wake_all};
    #[cfg(all(loom, test))]
    pub(crate) use model::{wait, wake, wake_all};

    #[cfg(all(loom, test))]
    mod model {
        use super::Wake;
        use crate::shim::{AtomicU32, Ordering};
        use loom::sync::{Condvar, Mutex};
        use std::io;
        use std::time::Duration;

        /// One thread asleep on a word.
        struct Sleeper {
            word: usize,
            id: usize,
            woken: bool,
        }

        #[derive(Default)]
        struct Queue {
            sleepers: Vec<Sleeper>,
            next_id: usize,
        }

        impl Queue {
            /// Whether sleeper `id` was woken; forgets it either way.
            fn leave(&mut self, id: usize) -> bool {
                let at = self
                    .sleepers
                    .iter()
                    .position(|s| s.id == id)
                    .expect("a sleeper leaves once");
                self.sleepers.swap_remove(at).woken
            }

            fn woken(&self, id: usize) -> bool {
                self.sleepers.iter().any(|s| s.id == id && s.woken)
            }
        }

        loom::lazy_static! {
            static ref FUTEX: (Mutex<Queue>, Condvar) = (Mutex::new(Queue::default()), Condvar::new());
        }

        fn address(word: &AtomicU32) -> usize {
            std::ptr::from_ref(word) as usize
        }

        /// The model of `FUTEX_WAIT`.
        pub(crate) fn wait(
            word: &AtomicU32,
            expected: u32,
            timeout: Option<Duration>,
        ) -> io::Result<Wake> {
            let (lock, woken) = &*FUTEX;
            let mut queue = lock.lock().unwrap();
            // The kernel reads the word under its lock, with a full barrier.
            if word.load(Ordering::SeqCst) != expected {
                return Ok(Wake::Changed);
            }
            let id = queue.next_id;
            queue.next_id += 1;
            queue.sleepers.push(Sleeper {
                word: address(word),
                id,
                woken: false,
            });
            if timeout.is_none() {
                while !queue.woken(id) {
                    queue = woken.wait(queue).unwrap();
                }
                queue.leave(id);
                return Ok(Wake::Woken);
            }
            // Asleep until the others have run a while, then timed out unless woken.
            drop(queue);
            loom::thread::yield_now();
            let mut queue = lock.lock().unwrap();
            Ok(if queue.leave(id) {
                Wake::Woken
            } else {
                Wake::TimedOut
            })
        }

        /// The model of `FUTEX_WAKE`: wakes the longest sleepers first.
        pub(crate) fn wake(word: &AtomicU32, count: u32) -> usize {
            let (lock, woken) = &*FUTEX;
            let mut queue = lock.lock().unwrap();
            let at = address(word);
            let mut n = 0;
            for s in queue.sleepers.iter_mut() {
                if n as u32 == count {
                    break;
                }
                if s.word == at && !s.woken {
                    s.woken = true;
                    n += 1;
                }
            }
            woken.notify_all();
            n
        }

        /// The model of `FUTEX_WAKE` for everyone.
        pub(crate) fn wake_all(word: &AtomicU32) -> usize {
            wake(word, u32::MAX)
        }
    }
}

/// How many looks at a model deadline find time left before it runs out.
#[cfg(all(loom, test))]
pub(crate) const MODEL_LOOKS: u32 = 2;

/// A wait's deadline: when it runs out, and the duration it was asked as (for the error).
#[derive(Debug)]
pub(crate) struct Deadline {
    #[cfg(not(all(loom, test)))]
    at: Option<std::time::Instant>,
    #[cfg(all(loom, test))]
    looks: Option<std::cell::Cell<u32>>,
    /// The timeout asked for; `Duration::MAX` for none.
    pub(crate) asked: Duration,
}

impl Deadline {
    /// No deadline.
    pub(crate) fn never() -> Deadline {
        Deadline {
            #[cfg(not(all(loom, test)))]
            at: None,
            #[cfg(all(loom, test))]
            looks: None,
            asked: Duration::MAX,
        }
    }

    /// `timeout` from now (a timeout too long to represent is no deadline).
    pub(crate) fn after(timeout: Duration) -> Deadline {
        Deadline {
            #[cfg(not(all(loom, test)))]
            at: std::time::Instant::now().checked_add(timeout),
            #[cfg(all(loom, test))]
            looks: Some(std::cell::Cell::new(MODEL_LOOKS)),
            asked: timeout,
        }
    }

    /// The time left: `None` for no deadline, zero once it has passed.
    pub(crate) fn left(&self) -> Option<Duration> {
        #[cfg(not(all(loom, test)))]
        {
            self.at
                .map(|at| at.saturating_duration_since(std::time::Instant::now()))
        }
        #[cfg(all(loom, test))]
        {
            self.looks.as_ref().map(|looks| match looks.get() {
                0 => Duration::ZERO,
                n => {
                    looks.set(n - 1);
                    self.asked.max(Duration::from_nanos(1))
                }
            })
        }
    }
}
