//! Models of the sync objects' shared-memory protocols, checked by loom over every
//! interleaving (within the preemption bound): the protocol code itself, on loom's atomics
//! and the model futex of [`crate::shim`].
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p procwire --release
//! --lib loom`. A wait without a timeout that nobody wakes is a thread blocked for good,
//! which loom reports as a deadlock: that is how a lost wake-up shows.

use std::time::Duration;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

use super::event::{EventReset, EventState};
use super::mutex::{MutexState, NotLocked};
use super::semaphore::{OverRelease, SemaphoreState};
use crate::shim::{futex, AtomicU32, Deadline, Ordering};
use crate::sys::thread::{Liveness, ThreadId};

/// A short timeout; under the model, what matters is that it may run out.
const SHORT: Duration = Duration::from_millis(1);

mod event {
    use super::*;

    /// Issue 10: two threads ping-pong through two auto-reset events with plain waits. The
    /// old protocol let a waiter sleep on a word already set, with the setter skipping the
    /// wake-up: both threads then block for good.
    #[test]
    fn loom_auto_ping_pong_loses_no_wake_up() {
        loom::model(|| {
            let ping = Arc::new(EventState::new(EventReset::Auto, false));
            let pong = Arc::new(EventState::new(EventReset::Auto, false));
            let peer = {
                let (ping, pong) = (Arc::clone(&ping), Arc::clone(&pong));
                thread::spawn(move || {
                    for _ in 0..2 {
                        assert!(ping.wait(EventReset::Auto, &Deadline::never()).unwrap());
                        pong.set(EventReset::Auto);
                    }
                })
            };
            for _ in 0..2 {
                ping.set(EventReset::Auto);
                assert!(pong.wait(EventReset::Auto, &Deadline::never()).unwrap());
            }
            peer.join().unwrap();
            assert!(!ping.is_set() && !pong.is_set());
        });
    }

    /// One set releases exactly one of two waiters (one of them with a timeout); a second
    /// set, made if the timed waiter gave up without it, releases the other. Nobody stays
    /// asleep on a set event.
    #[test]
    fn loom_auto_releases_exactly_one_waiter_per_set() {
        loom::model(|| {
            let event = Arc::new(EventState::new(EventReset::Auto, false));
            let released = Arc::new(AtomicU32::new(0));
            let plain = {
                let (event, released) = (Arc::clone(&event), Arc::clone(&released));
                thread::spawn(move || {
                    assert!(event.wait(EventReset::Auto, &Deadline::never()).unwrap());
                    released.fetch_add(1, Ordering::SeqCst);
                })
            };
            let timed = {
                let (event, released) = (Arc::clone(&event), Arc::clone(&released));
                thread::spawn(move || {
                    let got = event
                        .wait(EventReset::Auto, &Deadline::after(SHORT))
                        .unwrap();
                    if got {
                        released.fetch_add(1, Ordering::SeqCst);
                    }
                    got
                })
            };
            event.set(EventReset::Auto);
            let timed_got_it = timed.join().unwrap();
            if timed_got_it {
                // The plain waiter still waits: one more set for it.
                event.set(EventReset::Auto);
            }
            plain.join().unwrap();
            let sets = if timed_got_it { 2 } else { 1 };
            assert_eq!(released.load(Ordering::SeqCst), sets, "one waiter per set");
            assert!(!event.is_set(), "every set was taken");
        });
    }

    /// A set that finds the event set still wakes a sleeper: the waiter an earlier wake-up
    /// chose may have been killed before it took the event. Here that waiter is a thread
    /// that sleeps as `wait` does and then "dies" (leaving its sleeper count behind); the
    /// plain waiter must get the event after the second set.
    #[test]
    fn loom_auto_set_of_a_set_event_wakes_a_sleeper() {
        loom::model(|| {
            let event = Arc::new(EventState::new(EventReset::Auto, false));
            let killed = {
                let event = Arc::clone(&event);
                thread::spawn(move || {
                    event.sleepers.fetch_add(1, Ordering::SeqCst);
                    let now = event.word.load(Ordering::SeqCst);
                    if now == 0 {
                        let _ = futex::wait(&event.word, now, Some(SHORT));
                    }
                    // Killed here: never takes the event, never leaves the count.
                })
            };
            let waiter = {
                let event = Arc::clone(&event);
                thread::spawn(move || {
                    assert!(event.wait(EventReset::Auto, &Deadline::never()).unwrap());
                })
            };
            event.set(EventReset::Auto);
            killed.join().unwrap();
            event.set(EventReset::Auto);
            waiter.join().unwrap();
        });
    }

    /// A manual-reset event set and at once reset still releases a thread that was
    /// waiting (announced as a sleeper) at the set.
    #[test]
    fn loom_manual_set_then_reset_releases_a_waiter() {
        loom::model(|| {
            let event = Arc::new(EventState::new(EventReset::Manual, false));
            let waiter = {
                let event = Arc::clone(&event);
                thread::spawn(move || {
                    assert!(event.wait(EventReset::Manual, &Deadline::never()).unwrap());
                })
            };
            while event.sleepers.load(Ordering::SeqCst) == 0 {
                thread::yield_now();
            }
            event.set(EventReset::Manual);
            event.reset();
            waiter.join().unwrap();
            assert!(!event.is_set());
            // Set again, it stays set for everyone.
            event.set(EventReset::Manual);
            assert!(event.try_wait(EventReset::Manual) && event.try_wait(EventReset::Manual));
        });
    }

    /// Manual reset: a plain waiter and a timed one race a set. The plain one is released;
    /// the timed one is released or times out, and never hangs.
    #[test]
    fn loom_manual_set_releases_every_waiter_or_timeout() {
        loom::model(|| {
            let event = Arc::new(EventState::new(EventReset::Manual, false));
            let waiter = {
                let event = Arc::clone(&event);
                thread::spawn(move || {
                    assert!(event.wait(EventReset::Manual, &Deadline::never()).unwrap());
                })
            };
            let timed = {
                let event = Arc::clone(&event);
                thread::spawn(move || {
                    event
                        .wait(EventReset::Manual, &Deadline::after(SHORT))
                        .unwrap()
                })
            };
            event.set(EventReset::Manual);
            waiter.join().unwrap();
            let _released_or_timed_out = timed.join().unwrap();
            assert!(event.is_set(), "a manual-reset event stays set");
        });
    }

    /// A wait with a timeout racing a set and a reset: released, or timed out, and a
    /// release is always explained by a set.
    #[test]
    fn loom_auto_timeout_races_set_and_reset() {
        loom::model(|| {
            let event = Arc::new(EventState::new(EventReset::Auto, false));
            let timed = {
                let event = Arc::clone(&event);
                thread::spawn(move || {
                    event
                        .wait(EventReset::Auto, &Deadline::after(SHORT))
                        .unwrap()
                })
            };
            event.set(EventReset::Auto);
            event.reset();
            let got = timed.join().unwrap();
            assert!(!event.is_set());
            // Whoever did not get the set cannot get it later.
            assert!(!got || !event.try_wait(EventReset::Auto));
        });
    }
}

mod semaphore {
    use super::*;

    /// Two plain waiters, two releases of one unit: both are released (no lost wake-up),
    /// and the count stays within 0 and the maximum.
    #[test]
    fn loom_releases_wake_every_waiter() {
        loom::model(|| {
            let sem = Arc::new(SemaphoreState::new(0, 2));
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let sem = Arc::clone(&sem);
                    thread::spawn(move || {
                        assert!(sem.wait(&Deadline::never()).unwrap());
                        assert!(sem.count.load(Ordering::SeqCst) <= 2);
                    })
                })
                .collect();
            for _ in 0..2 {
                sem.release(1, 2).unwrap();
            }
            for w in waiters {
                w.join().unwrap();
            }
            assert_eq!(sem.count.load(Ordering::SeqCst), 0);
        });
    }

    /// A release racing a take and a timed wait: a release past the maximum is refused and
    /// changes nothing, and units are conserved (initial + released = taken + left).
    #[test]
    fn loom_over_release_and_timeout_conserve_units() {
        loom::model(|| {
            let sem = Arc::new(SemaphoreState::new(1, 1));
            let taker = {
                let sem = Arc::clone(&sem);
                thread::spawn(move || u32::from(sem.try_wait()))
            };
            let timed = {
                let sem = Arc::clone(&sem);
                thread::spawn(move || u32::from(sem.wait(&Deadline::after(SHORT)).unwrap()))
            };
            let released = match sem.release(1, 1) {
                Ok(before) => {
                    assert_eq!(before, 0);
                    1
                }
                Err(OverRelease { count }) => {
                    assert_eq!(count, 1, "refused only at the maximum");
                    0
                }
            };
            let taken = taker.join().unwrap() + timed.join().unwrap();
            let left = sem.count.load(Ordering::SeqCst);
            assert!(left <= 1);
            assert_eq!(1 + released, taken + left, "units conserved");
        });
    }
}

mod mutex {
    use super::*;

    /// The model of `/proc`: which threads run, each a TID and a start time.
    struct Threads {
        table: Vec<(ThreadId, loom::sync::atomic::AtomicBool)>,
    }

    impl Threads {
        fn new(ids: &[ThreadId], alive: &[bool]) -> Arc<Threads> {
            Arc::new(Threads {
                table: ids
                    .iter()
                    .zip(alive)
                    .map(|(&id, &a)| (id, loom::sync::atomic::AtomicBool::new(a)))
                    .collect(),
            })
        }

        fn die(&self, id: ThreadId) {
            let (_, alive) = self.table.iter().find(|(t, _)| *t == id).unwrap();
            alive.store(false, Ordering::SeqCst);
        }

        /// As `sys::thread::liveness`: dead unless a running thread has the TID and, when the
        /// start time is known, that start time.
        fn liveness(&self, who: ThreadId) -> Liveness {
            let running = self.table.iter().any(|(t, alive)| {
                t.tid == who.tid
                    && (who.start == 0 || t.start == who.start)
                    && alive.load(Ordering::SeqCst)
            });
            if running {
                Liveness::Alive
            } else {
                Liveness::Dead
            }
        }
    }

    fn id(tid: u32, start: u64) -> ThreadId {
        ThreadId { tid, start }
    }

    /// Locks as `NamedMutex::lock` does: fast path, then the contended path.
    fn lock(
        m: &MutexState,
        me: ThreadId,
        threads: &Threads,
        deadline: &Deadline,
    ) -> Result<Option<u32>, NotLocked> {
        if m.take(0, me.tid) {
            return Ok(m.acquired(me, None));
        }
        m.lock_contended(me, deadline, |t| threads.liveness(t))
    }

    /// Two threads lock and unlock twice each around a non-atomic update: loom's cell
    /// reports any two holders at once.
    #[test]
    fn loom_lock_excludes_and_unlock_wakes() {
        loom::model(|| {
            let m = Arc::new(MutexState::new());
            let data = Arc::new(UnsafeCell::new(0u32));
            let ids = [id(10, 1), id(11, 1)];
            let threads = Threads::new(&ids, &[true, true]);
            let workers: Vec<_> = ids
                .iter()
                .map(|&me| {
                    let (m, data, threads) =
                        (Arc::clone(&m), Arc::clone(&data), Arc::clone(&threads));
                    thread::spawn(move || {
                        for _ in 0..2 {
                            assert_eq!(lock(&m, me, &threads, &Deadline::never()).unwrap(), None);
                            // SAFETY: the mutex is held; loom checks that claim.
                            data.with_mut(|d| unsafe { *d += 1 });
                            m.unlock(me).unwrap();
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
            // SAFETY: every thread has been joined.
            assert_eq!(data.with(|d| unsafe { *d }), 4);
            assert_eq!(m.word.load(Ordering::SeqCst), 0);
        });
    }

    /// A timed lock racing a holder: it gets the lock or times out, never both holders, and
    /// a waiter that gives up after a wake-up passes it on (the plain waiter never hangs).
    #[test]
    fn loom_timeout_passes_a_wake_up_on() {
        loom::model(|| {
            let m = Arc::new(MutexState::new());
            let ids = [id(10, 1), id(11, 1), id(12, 1)];
            let threads = Threads::new(&ids, &[true, true, true]);
            assert_eq!(
                lock(&m, ids[0], &threads, &Deadline::never()).unwrap(),
                None
            );
            let plain = {
                let (m, threads) = (Arc::clone(&m), Arc::clone(&threads));
                thread::spawn(move || {
                    lock(&m, ids[1], &threads, &Deadline::never()).unwrap();
                    m.unlock(ids[1]).unwrap();
                })
            };
            let timed = {
                let (m, threads) = (Arc::clone(&m), Arc::clone(&threads));
                thread::spawn(
                    move || match lock(&m, ids[2], &threads, &Deadline::after(SHORT)) {
                        Ok(_) => m.unlock(ids[2]).unwrap(),
                        Err(NotLocked::Timeout) => {}
                        Err(e) => panic!("{e:?}"),
                    },
                )
            };
            m.unlock(ids[0]).unwrap();
            plain.join().unwrap();
            timed.join().unwrap();
            assert_eq!(m.word.load(Ordering::SeqCst) & !(1 << 31), 0);
        });
    }

    /// A holder dies holding the lock; a waiter takes it over, is told it was abandoned
    /// (by the dead TID), repairs it, and the next locker gets it clean.
    #[test]
    fn loom_abandon_takeover_repair() {
        loom::model(|| {
            let m = Arc::new(MutexState::new());
            let ids = [id(10, 1), id(11, 1), id(12, 1)];
            let threads = Threads::new(&ids, &[true, true, true]);
            assert_eq!(
                lock(&m, ids[0], &threads, &Deadline::never()).unwrap(),
                None
            );
            let waiter = {
                let (m, threads) = (Arc::clone(&m), Arc::clone(&threads));
                thread::spawn(move || {
                    let taken = lock(&m, ids[1], &threads, &Deadline::never()).unwrap();
                    assert_eq!(taken, Some(10), "taken over from the dead holder");
                    assert_eq!(m.abandoned_by(), 10, "told who abandoned it");
                    m.mark_repaired();
                    m.unlock(ids[1]).unwrap();
                })
            };
            // The holder is killed while holding it.
            threads.die(ids[0]);
            waiter.join().unwrap();
            assert_eq!(
                lock(&m, ids[2], &threads, &Deadline::never()).unwrap(),
                None
            );
            assert_eq!(m.abandoned_by(), 0, "repaired");
        });
    }

    /// The start-time check. The holder (TID 7, start 1) has died, and its TID now names a
    /// newer, live thread (TID 7, start 2): the recorded start time tells them apart, so
    /// the holder is found dead. Two waiters race to take over: exactly one does, and the
    /// other never takes it from that live new holder (whose owner record, for an instant,
    /// still names the dead one).
    #[test]
    fn loom_start_time_check_and_one_takeover() {
        loom::model(|| {
            let dead = id(7, 1);
            let reborn = id(7, 2);
            let ids = [id(20, 1), id(21, 1)];
            let m = Arc::new(MutexState::new());
            assert!(m.take(0, dead.tid));
            m.acquired(dead, None);
            let threads = Threads::new(&[dead, reborn, ids[0], ids[1]], &[false, true, true, true]);
            let data = Arc::new(UnsafeCell::new(0u32));
            let takeovers = Arc::new(AtomicU32::new(0));
            let waiters: Vec<_> = ids
                .iter()
                .map(|&me| {
                    let (m, threads, data, takeovers) = (
                        Arc::clone(&m),
                        Arc::clone(&threads),
                        Arc::clone(&data),
                        Arc::clone(&takeovers),
                    );
                    thread::spawn(move || {
                        let taken = lock(&m, me, &threads, &Deadline::never()).unwrap();
                        if let Some(from) = taken {
                            assert_eq!(from, dead.tid);
                            takeovers.fetch_add(1, Ordering::SeqCst);
                        }
                        // SAFETY: the mutex is held; loom checks that claim.
                        data.with_mut(|d| unsafe { *d += 1 });
                        m.unlock(me).unwrap();
                    })
                })
                .collect();
            for w in waiters {
                w.join().unwrap();
            }
            assert_eq!(takeovers.load(Ordering::SeqCst), 1, "exactly one takeover");
            assert_eq!(m.abandoned_by(), dead.tid);
        });
    }

    /// `try_lock` finds the lock held by a live thread and leaves it; finds it held by a
    /// dead one and takes it over.
    #[test]
    fn loom_try_lock_takes_only_from_the_dead() {
        loom::model(|| {
            let ids = [id(30, 1), id(31, 1)];
            let m = Arc::new(MutexState::new());
            let threads = Threads::new(&ids, &[true, true]);
            assert!(m.take(0, ids[0].tid));
            m.acquired(ids[0], None);
            let other = {
                let (m, threads) = (Arc::clone(&m), Arc::clone(&threads));
                thread::spawn(move || m.try_lock(ids[1], |t| threads.liveness(t)).unwrap())
            };
            threads.die(ids[0]);
            match other.join().unwrap() {
                None => {
                    // Looked before the death: still held.
                    assert_eq!(m.word.load(Ordering::SeqCst), ids[0].tid);
                }
                Some(from) => {
                    assert_eq!(from, Some(ids[0].tid));
                    assert_eq!(m.abandoned_by(), ids[0].tid);
                }
            }
        });
    }
}
