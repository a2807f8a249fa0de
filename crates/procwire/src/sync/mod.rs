//! Named sync objects: a robust mutex, a counting semaphore and an event, shared by name
//! between processes, as Windows' `CreateMutex`, `CreateSemaphore` and `CreateEvent`.
//!
//! | Windows | procwire |
//! |---|---|
//! | `CreateMutex` / `OpenMutex` | [`NamedMutex::create`] / [`NamedMutex::open`] |
//! | `WaitForSingleObject(mutex, ms)` | [`NamedMutex::lock_timeout`] → [`NamedMutexGuard`] |
//! | `WAIT_ABANDONED` | [`LockError::Abandoned`] (the guard is held) |
//! | `ReleaseMutex` | dropping the [`NamedMutexGuard`] |
//! | `CreateSemaphore(initial, max)` / `OpenSemaphore` | [`NamedSemaphore::create`] / [`NamedSemaphore::open`] |
//! | `ReleaseSemaphore(n, &previous)` | [`NamedSemaphore::release`] |
//! | `CreateEvent(manual, initial)` / `OpenEvent` | [`NamedEvent::create`] / [`NamedEvent::open`] |
//! | `SetEvent` / `ResetEvent` | [`NamedEvent::set`] / [`NamedEvent::reset`] |
//!
//! Every wait sleeps in the kernel on a futex word in shared memory — none spins — and every
//! wait has a `_timeout` form that returns [`SyncError::Timeout`] no earlier than asked, and
//! a `try_` form that never blocks.
//!
//! They share one namespace with [mappings](crate::mapping) (`Local\X` is one object,
//! whatever its kind): opening a mapping's name as a mutex is [`SyncError::WrongKind`],
//! which names the kind it is. Each object is a page of state in `/dev/shm` (the layouts are
//! in `docs/mapping.md`), owner only by default; an access list can open it to everyone or
//! one group, read-write.
//!
//! # Examples
//!
//! Two processes take turns on shared data:
//!
//! ```no_run
//! use std::time::Duration;
//! use procwire::sync::{EventReset, NamedEvent, NamedMutex};
//!
//! let lock = NamedMutex::open_or_create(r"Local\Board")?;
//! let your_turn = NamedEvent::open_or_create(r"Local\BoardTurn", EventReset::Auto)?;
//! {
//!     let _guard = lock.lock()?;
//!     // ... write to the shared mapping ...
//! }
//! your_turn.set()?;
//! # Ok::<(), procwire::sync::SyncError>(())
//! ```

mod error;
mod event;
mod mutex;
mod semaphore;
pub(crate) mod shared;
#[cfg(feature = "tokio")]
mod tokio;
#[cfg(not(all(loom, test)))]
mod wait;
#[cfg(not(all(loom, test)))]
mod waiter;

#[cfg(all(test, loom))]
mod loom_tests;

pub use crate::wire::Lifetime;
pub use error::{LockError, SyncError};
pub use event::{EventOptions, EventReset, NamedEvent};
pub use mutex::{MutexOptions, NamedMutex, NamedMutexGuard};
pub use semaphore::{NamedSemaphore, SemaphoreOptions};
#[cfg(feature = "tokio")]
pub use tokio::{AsyncAllSignaled, AsyncLockError, AsyncMutexGuard, AsyncSignaled};
#[cfg(not(all(loom, test)))]
pub use wait::{AllSignaled, Signaled, WaitSet, Waitable};

use crate::name::Namespace;
use crate::wire::ObjectKind;

/// What kind of sync object a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SyncKind {
    /// A [`NamedMutex`].
    Mutex,
    /// A [`NamedSemaphore`].
    Semaphore,
    /// A [`NamedEvent`].
    Event,
}

/// The live sync objects of a namespace and their kinds, sorted by name.
///
/// # Errors
///
/// An I/O error when the namespace directory cannot be read.
pub fn list(ns: Namespace) -> std::io::Result<Vec<(String, SyncKind)>> {
    Ok(crate::registry::object::list(ns)?
        .into_iter()
        .filter_map(|(name, kind)| {
            let kind = match kind {
                ObjectKind::Mutex => SyncKind::Mutex,
                ObjectKind::Semaphore => SyncKind::Semaphore,
                ObjectKind::Event => SyncKind::Event,
                _ => return None,
            };
            Some((name, kind))
        })
        .collect())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Waits until `cond` holds, failing the test after 10 s.
    fn eventually(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "never happened: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn unique(tag: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        format!(
            "unit-sync-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    #[test]
    fn public_types_are_send_sync_and_debug() {
        fn send_sync<T: Send + Sync + std::fmt::Debug>() {}
        send_sync::<NamedMutex>();
        send_sync::<NamedSemaphore>();
        send_sync::<NamedEvent>();
        send_sync::<SyncError>();
        fn sync_only<T: Sync + std::fmt::Debug>() {}
        sync_only::<NamedMutexGuard<'static>>();
    }

    #[test]
    fn mutex_excludes_threads_and_handles() {
        let name = Arc::new(unique("mutex"));
        let mutex = NamedMutex::create(name.as_str()).unwrap();
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (name, inside) = (Arc::clone(&name), Arc::clone(&inside));
                std::thread::spawn(move || {
                    let mutex = NamedMutex::open(name.as_str()).unwrap();
                    for _ in 0..2000 {
                        let _guard = mutex.lock().unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let guard = mutex.lock().unwrap();
        assert!(!guard.is_abandoned());
        let e = mutex.lock_timeout(Duration::from_millis(10)).unwrap_err();
        assert!(
            matches!(e, LockError::Failed(SyncError::WouldDeadlock { .. })),
            "{e}"
        );
        let other = std::thread::scope(|s| {
            s.spawn(|| {
                let started = Instant::now();
                let e = mutex.lock_timeout(Duration::from_millis(60)).unwrap_err();
                assert!(started.elapsed() >= Duration::from_millis(60));
                assert!(mutex.try_lock().unwrap().is_none());
                e.to_string()
            })
            .join()
            .unwrap()
        });
        assert!(
            other.contains("timed out after 60ms waiting for mutex"),
            "{other}"
        );
        drop(guard);
        assert!(mutex.try_lock().unwrap().is_some());
    }

    #[test]
    fn a_thread_that_dies_holding_the_mutex_abandons_it() {
        let name = unique("abandon");
        let mutex = NamedMutex::create(name.as_str()).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| std::mem::forget(mutex.lock().unwrap()));
        });
        let started = Instant::now();
        let LockError::Abandoned(guard) = mutex.lock().unwrap_err() else {
            panic!("expected Abandoned");
        };
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(guard.is_abandoned());
        assert_ne!(guard.previous_owner(), 0);
        drop(guard);
        // Not repaired: still abandoned, and `?` turns it into an error.
        let e: SyncError = mutex.lock().unwrap_err().into();
        assert!(matches!(e, SyncError::Abandoned { .. }), "{e}");
        let Err(LockError::Abandoned(mut guard)) = mutex.try_lock() else {
            panic!("expected Abandoned");
        };
        guard.mark_repaired();
        drop(guard);
        assert!(!mutex.lock().unwrap().is_abandoned());
    }

    #[test]
    fn semaphore_counts_and_refuses_over_release() {
        let name = unique("sem");
        let e = NamedSemaphore::create(name.as_str(), 3, 2).unwrap_err();
        assert!(matches!(e, SyncError::InvalidArgument { .. }), "{e}");
        let e = NamedSemaphore::create(name.as_str(), 0, 0).unwrap_err();
        assert!(matches!(e, SyncError::InvalidArgument { .. }), "{e}");
        let sem = NamedSemaphore::create(name.as_str(), 1, 3).unwrap();
        assert_eq!(sem.max(), 3);
        assert!(sem.try_wait());
        assert!(!sem.try_wait());
        let started = Instant::now();
        let e = sem.wait_timeout(Duration::from_millis(50)).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(matches!(e, SyncError::Timeout { .. }), "{e}");
        assert_eq!(sem.release(2).unwrap(), 0);
        let e = sem.release(2).unwrap_err();
        assert!(
            matches!(
                e,
                SyncError::OverRelease {
                    count: 2,
                    release: 2,
                    max: 3,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(sem.count(), 2, "a refused release changes nothing");
        assert_eq!(sem.release(1).unwrap(), 2);
        assert!(sem.release(0).is_err());

        let sem2 = NamedSemaphore::open(name.as_str()).unwrap();
        let waiter = std::thread::spawn(move || {
            for _ in 0..5 {
                sem2.wait().unwrap();
            }
        });
        // Only once the waiter has taken the 3 units may 1 more go in without passing max.
        eventually("the waiter took 3 units", || sem.count() == 0);
        sem.release(1).unwrap();
        sem.release(1).unwrap();
        waiter.join().unwrap();
        assert_eq!(sem.count(), 0);
    }

    #[test]
    fn manual_event_releases_everyone_until_reset() {
        let name = unique("manual");
        let event = NamedEvent::create(name.as_str(), EventReset::Manual, false).unwrap();
        assert_eq!(event.reset_kind(), EventReset::Manual);
        let e = event.wait_timeout(Duration::from_millis(30)).unwrap_err();
        assert!(matches!(e, SyncError::Timeout { .. }), "{e}");
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let handle = NamedEvent::open(name.as_str()).unwrap();
                std::thread::spawn(move || handle.wait_timeout(Duration::from_secs(10)))
            })
            .collect();
        eventually("3 threads wait", || {
            event.sleepers().load(Ordering::SeqCst) == 3
        });
        // A set at once undone still releases every thread asleep at the set.
        event.set().unwrap();
        event.reset().unwrap();
        for w in waiters {
            w.join().unwrap().unwrap();
        }
        assert!(!event.is_set());
        event.set().unwrap();
        assert!(event.try_wait() && event.try_wait(), "stays set");
        event.wait().unwrap();
    }

    #[test]
    fn auto_event_releases_one_waiter_per_set() {
        let name = unique("auto");
        let event = NamedEvent::create(name.as_str(), EventReset::Auto, true).unwrap();
        assert!(event.try_wait(), "initially set");
        assert!(!event.try_wait(), "the wait reset it");
        let released = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let released = Arc::clone(&released);
                let event = NamedEvent::open(name.as_str()).unwrap();
                std::thread::spawn(move || {
                    event.wait_timeout(Duration::from_secs(10)).unwrap();
                    released.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        eventually("3 threads wait", || {
            event.sleepers().load(Ordering::SeqCst) == 3
        });
        for round in 1..=3 {
            event.set().unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            while released.load(Ordering::SeqCst) < round {
                assert!(Instant::now() < deadline, "round {round}");
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(30));
            assert_eq!(
                released.load(Ordering::SeqCst),
                round,
                "exactly one per set"
            );
        }
        for w in waiters {
            w.join().unwrap();
        }
        assert!(!event.is_set());
    }

    #[test]
    fn racing_open_or_create_makes_exactly_one_object() {
        for round in 0..5 {
            let name = unique(&format!("race{round}"));
            let handles: Vec<_> = std::thread::scope(|s| {
                let threads: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| NamedMutex::open_or_create(name.as_str()).unwrap()))
                    .collect();
                threads.into_iter().map(|t| t.join().unwrap()).collect()
            });
            assert_eq!(handles.iter().filter(|m| m.created()).count(), 1);
            // They are all the same mutex.
            let guard = handles[0].lock().unwrap();
            std::thread::scope(|s| {
                s.spawn(|| assert!(handles[7].try_lock().unwrap().is_none()));
            });
            let e = handles[7].try_lock().unwrap_err();
            assert!(
                matches!(e, LockError::Failed(SyncError::WouldDeadlock { .. })),
                "{e}"
            );
            drop(guard);
        }
    }

    /// Writes `bytes` at `offset` of the state page of the Local object `name`, as another
    /// program (or another version) could.
    fn scribble(name: &str, offset: u64, bytes: &[u8]) {
        use std::os::unix::fs::FileExt;
        let path = format!(
            "{}/{}",
            crate::sys::shm::SHM_DIR,
            crate::registry::object::shm_name(Namespace::Local, name)
        );
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.write_all_at(bytes, offset).unwrap();
    }

    #[test]
    fn foreign_states_are_refused_as_corrupt() {
        let corrupt = |e: SyncError, needle: &str| {
            assert!(matches!(e, SyncError::Corrupt { .. }), "{e}");
            assert!(e.to_string().contains(needle), "{e}");
        };
        // Another layout version.
        let name = unique("version");
        let _mutex = NamedMutex::create(name.as_str()).unwrap();
        scribble(&name, 8, &2u32.to_ne_bytes());
        corrupt(
            NamedMutex::open(name.as_str()).unwrap_err(),
            "not that of a version 1",
        );
        // An event's reset kind that is neither.
        let name = unique("reset-kind");
        let _event = NamedEvent::create(name.as_str(), EventReset::Auto, false).unwrap();
        scribble(&name, 64 + 4, &7u32.to_ne_bytes());
        corrupt(
            NamedEvent::open(name.as_str()).unwrap_err(),
            "reset kind is 7",
        );
        // A semaphore's maximum of 0, then a count above its maximum.
        let name = unique("sem-max");
        let _sem = NamedSemaphore::create(name.as_str(), 1, 2).unwrap();
        scribble(&name, 64 + 4, &0u32.to_ne_bytes());
        corrupt(
            NamedSemaphore::open(name.as_str()).unwrap_err(),
            "maximum count is 0",
        );
        scribble(&name, 64 + 4, &2u32.to_ne_bytes());
        scribble(&name, 64, &5u32.to_ne_bytes());
        corrupt(
            NamedSemaphore::open(name.as_str()).unwrap_err(),
            "count 5 is above its maximum 2",
        );
        // Put right, it opens; and the handle keeps the maximum it checked.
        scribble(&name, 64, &1u32.to_ne_bytes());
        let sem = NamedSemaphore::open(name.as_str()).unwrap();
        scribble(&name, 64 + 4, &u32::MAX.to_ne_bytes());
        assert_eq!(sem.max(), 2);
        assert!(matches!(
            sem.release(2).unwrap_err(),
            SyncError::OverRelease { max: 2, .. }
        ));
    }

    #[test]
    fn wrong_kinds_and_missing_names_are_clear() {
        let name = unique("kinds");
        let e = NamedMutex::open(name.as_str()).unwrap_err();
        assert!(matches!(e, SyncError::NotFound { .. }), "{e}");
        let _sem = NamedSemaphore::create(name.as_str(), 0, 1).unwrap();
        let e = NamedEvent::open(name.as_str()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(r"`Local\{name}` is a semaphore, not an event")
        );
    }

    /// A signal that comes while a wait-any is between its first look and its sleep (the
    /// mutex unlocked, the unit released, the event set just then) ends the wait: it is
    /// never slept through. Each object, many rounds, the signal a little later each time;
    /// the two threads meet by spinning, so that the signal lands within microseconds of
    /// the wait's start.
    #[test]
    fn wait_any_sees_a_signal_that_comes_as_it_starts() {
        use std::sync::atomic::AtomicU32;
        let mutex = NamedMutex::create(unique("race-m").as_str()).unwrap();
        let sem = NamedSemaphore::create(unique("race-s").as_str(), 0, 1).unwrap();
        let event = NamedEvent::create(unique("race-e").as_str(), EventReset::Auto, false).unwrap();
        const ROUNDS: u32 = 3000;
        for kind in 0..3 {
            // Odd: the waiter may start its round; even: the signaller may. STOP: the
            // waiter failed, and both end.
            const STOP: u32 = u32::MAX;
            let turn = AtomicU32::new(0);
            let spin_until = |t: u32| loop {
                match turn.load(Ordering::Acquire) {
                    STOP => return false,
                    now if now == t => return true,
                    _ => std::hint::spin_loop(),
                }
            };
            let mut failed = None;
            std::thread::scope(|s| {
                s.spawn(|| {
                    for round in 0..ROUNDS {
                        let guard = (kind == 0).then(|| mutex.lock().unwrap());
                        turn.store(2 * round + 1, Ordering::Release);
                        for _ in 0..(round % 64) * 20 {
                            std::hint::spin_loop();
                        }
                        match kind {
                            0 => drop(guard),
                            1 => drop(sem.release(1).unwrap()),
                            _ => event.set().unwrap(),
                        }
                        if !spin_until(2 * round + 2) {
                            break;
                        }
                    }
                });
                for round in 0..ROUNDS {
                    spin_until(2 * round + 1);
                    let set = match kind {
                        0 => WaitSet::new().with(&mutex),
                        1 => WaitSet::new().with(&sem),
                        _ => WaitSet::new().with(&event),
                    };
                    // Slept through, the wait lasts its whole timeout (then finds the object
                    // and takes it); otherwise it ends at once.
                    let started = Instant::now();
                    let took = set.wait_any_timeout(Duration::from_secs(10));
                    if took.is_err() || started.elapsed() >= Duration::from_secs(5) {
                        failed = Some(round);
                        turn.store(STOP, Ordering::Release);
                        break;
                    }
                    turn.store(2 * round + 2, Ordering::Release);
                }
            });
            assert_eq!(
                failed, None,
                "object {kind} slept through its signal in this round"
            );
        }
    }

    /// A wait on a set (any or all) that calls its second argument just before it starts:
    /// the index of the object that ended a wait-any, `None` for a wait-all.
    type Wait = Box<dyn Fn(&WaitSet<'_>, &dyn Fn()) -> Result<Option<usize>, SyncError>>;

    /// A message that reaches a pipe connection while a wait on it and an event is between
    /// its last look and its sleep ends the wait: the sleep does not leave out a connection
    /// that became ready just then (a wait-any ends with it; a wait-all, whose event is set
    /// already, ends with both). The blocking waits and the async ones (the same engine, on
    /// a thread of tokio's blocking pool), many rounds each, the message a little later
    /// each time; the threads meet by spinning, so that it lands within microseconds of the
    /// wait's start.
    #[test]
    fn a_wait_sees_a_pipe_message_that_comes_as_it_starts() {
        use crate::pipe::{PipeConnection, PipeServer};
        use std::sync::atomic::AtomicU32;
        let event =
            NamedEvent::create(unique("race-pipe-e").as_str(), EventReset::Auto, false).unwrap();
        let name = format!(r"\\.\pipe\{}", unique("race-pipe"));
        let server = PipeServer::create(name.as_str()).unwrap();
        let mut client = PipeConnection::open(name.as_str()).unwrap();
        let mut pipe = server.accept_timeout(Duration::from_secs(10)).unwrap();
        const ROUNDS: u32 = 2000;
        // Odd: the waiter is starting its round, and the sender may send; even: the waiter
        // has the message. STOP: the waiter failed, and both end.
        const STOP: u32 = u32::MAX;
        let turn = AtomicU32::new(0);
        let spin_until = |t: u32| loop {
            match turn.load(Ordering::Acquire) {
                STOP => return false,
                now if now == t => return true,
                _ => std::hint::spin_loop(),
            }
        };
        // Slept through, a wait lasts until this limit; otherwise it ends at once.
        let limit = Duration::from_secs(10);
        let waits: Vec<(&str, bool, Wait)> = vec![
            (
                "blocking wait-any",
                false,
                Box::new(move |set, start| {
                    start();
                    set.wait_any_timeout(limit).map(|s| Some(s.index()))
                }),
            ),
            (
                "blocking wait-all",
                true,
                Box::new(move |set, start| {
                    start();
                    set.wait_all_timeout(limit).map(|_| None)
                }),
            ),
            #[cfg(feature = "tokio")]
            ("async wait-any", false, async_wait(false, limit)),
            #[cfg(feature = "tokio")]
            ("async wait-all", true, async_wait(true, limit)),
        ];
        let mut round = 0;
        for (kind, all, wait) in &waits {
            let mut failed = None;
            let first = round;
            std::thread::scope(|s| {
                s.spawn(|| {
                    for round in first..first + ROUNDS {
                        if !spin_until(2 * round + 1) {
                            break;
                        }
                        for _ in 0..(round % 128) * 20 {
                            std::hint::spin_loop();
                        }
                        client.send(b"now").unwrap();
                    }
                });
                for _ in 0..ROUNDS {
                    if *all {
                        // What the wait-all waits for is the message.
                        event.set().unwrap();
                    }
                    let set = WaitSet::new().with(&event).with(&pipe);
                    let started = Instant::now();
                    let ended = wait(&set, &|| turn.store(2 * round + 1, Ordering::Release));
                    drop(set);
                    let expected = if *all { None } else { Some(1) };
                    if ended.as_ref().ok() != Some(&expected) || started.elapsed() >= limit / 2 {
                        failed = Some((round - first, ended, started.elapsed()));
                        turn.store(STOP, Ordering::Release);
                        break;
                    }
                    assert_eq!(pipe.recv().unwrap(), b"now");
                    assert!(!event.is_set(), "the wait-all took the event");
                    turn.store(2 * round + 2, Ordering::Release);
                    round += 1;
                }
            });
            assert!(
                failed.is_none(),
                "the {kind} slept through a message that came as it started (round, \
                 result, time): {failed:?}"
            );
        }
    }

    /// An async wait-any (or wait-all) for at most `limit`, on a runtime that lives as long
    /// as the closure.
    #[cfg(feature = "tokio")]
    fn async_wait(all: bool, limit: Duration) -> Wait {
        let runtime = ::tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        Box::new(move |set, start| {
            let timed_out = Err(SyncError::WaitTimeout {
                count: 2,
                all,
                after: limit,
            });
            if all {
                let wait = set.wait_all_async();
                runtime.block_on(async {
                    start();
                    let ended = ::tokio::time::timeout(limit, wait).await;
                    ended.map_or(timed_out, |r| r.map(|_| None))
                })
            } else {
                let wait = set.wait_any_async();
                runtime.block_on(async {
                    start();
                    let ended = ::tokio::time::timeout(limit, wait).await;
                    ended.map_or(timed_out, |r| r.map(|s| Some(s.index())))
                })
            }
        })
    }
}
