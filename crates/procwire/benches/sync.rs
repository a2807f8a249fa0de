//! Named sync objects against the raw kernel primitives beneath them, in one run.
//!
//! - `mutex_uncontended`: one lock and unlock, nobody else around. Raw: a process-shared,
//!   robust `pthread_mutex_t` (glibc) in shared memory. procwire: [`NamedMutex`].
//! - `mutex_contended`: the same, while a peer process locks and unlocks the same mutex in
//!   a tight loop.
//! - `event_ping_pong`: one round trip between two processes. Raw: two futex words in
//!   shared memory (set the word and `FUTEX_WAKE`; `FUTEX_WAIT` until the other is set).
//!   procwire: two auto-reset [`NamedEvent`]s (`set` one, `wait` on the other).
//! - `wait_many`: the same round trip, where the answer is one of several objects: raw, the
//!   futex ping-pong; `one_event`, a [`WaitSet`] of the answer event alone;
//!   `eight_events`, a [`WaitSet`] of 8 events in which the peer sets the sixth
//!   (`futex_waitv` on all 8 words); `single_wait`, [`NamedEvent::wait`] on the answer.
//!
//! The peers are this same binary, started again with `PROCWIRE_BENCH_ROLE` set; they stop
//! when their standard input (held by the benchmark) closes. Run with
//! `cargo bench -p procwire --bench sync`; results are in `docs/performance.md`.
//!
//! Where the two processes run matters more than anything else for the two-process
//! benchmarks: run under `taskset -c 0` to put both on one CPU, or set
//! `PROCWIRE_BENCH_PEER_CPUS=1` and run under `taskset -c 0` for one CPU each.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};

use divan::Bencher;
use procwire::mapping::{Mapping, View};
use procwire::security::Access;
use procwire::sync::{EventReset, NamedEvent, NamedMutex, WaitSet};
use procwire_testkit::bench::{bench_name, bench_peer_role, serve_peer, BenchPeer};
use rustix::thread::futex;

/// Where the raw pthread mutex lives in its mapping.
const PTHREAD_AT: usize = 0;
/// Where the raw futex words live in theirs.
const PING_AT: usize = 0;
const PONG_AT: usize = 64;

fn main() -> ExitCode {
    match bench_peer_role() {
        Some(role) => serve_peer(&role, peer::run),
        None => {
            divan::main();
            ExitCode::SUCCESS
        }
    }
}

/// The raw baseline: a process-shared robust pthread mutex.
mod raw {
    use super::*;

    /// A `pthread_mutex_t` inside a view, set up (once) as process-shared and robust.
    pub(crate) struct PthreadMutex {
        ptr: *mut libc::pthread_mutex_t,
        _view: View,
    }

    impl PthreadMutex {
        /// Initializes a new mutex at the start of `view`.
        pub(crate) fn init(view: View) -> PthreadMutex {
            let ptr = view
                .as_ptr()
                .wrapping_add(PTHREAD_AT)
                .cast::<libc::pthread_mutex_t>();
            assert!(view.len() >= PTHREAD_AT + std::mem::size_of::<libc::pthread_mutex_t>());
            assert_eq!(
                ptr as usize % std::mem::align_of::<libc::pthread_mutex_t>(),
                0
            );
            // SAFETY: `ptr` is aligned and inside the writable view, which lives as long as
            // the returned value; nobody else uses the memory before `init` returns (the peer
            // is started afterwards); the attribute object is local and destroyed after use.
            unsafe {
                let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
                assert_eq!(libc::pthread_mutexattr_init(&mut attr), 0);
                assert_eq!(
                    libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED),
                    0
                );
                assert_eq!(
                    libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST),
                    0
                );
                assert_eq!(libc::pthread_mutex_init(ptr, &attr), 0);
                libc::pthread_mutexattr_destroy(&mut attr);
            }
            PthreadMutex { ptr, _view: view }
        }

        /// Uses a mutex another process initialized at the start of `view`.
        pub(crate) fn attach(view: View) -> PthreadMutex {
            let ptr = view
                .as_ptr()
                .wrapping_add(PTHREAD_AT)
                .cast::<libc::pthread_mutex_t>();
            PthreadMutex { ptr, _view: view }
        }

        pub(crate) fn lock(&self) {
            // SAFETY: `ptr` points to an initialized process-shared mutex in a mapping that
            // `self` keeps alive.
            let r = unsafe { libc::pthread_mutex_lock(self.ptr) };
            if r == libc::EOWNERDEAD {
                // SAFETY: as above; we hold the mutex after EOWNERDEAD.
                unsafe { libc::pthread_mutex_consistent(self.ptr) };
            } else {
                assert_eq!(r, 0, "pthread_mutex_lock");
            }
        }

        pub(crate) fn unlock(&self) {
            // SAFETY: as in `lock`, and this thread holds the mutex.
            let r = unsafe { libc::pthread_mutex_unlock(self.ptr) };
            assert_eq!(r, 0, "pthread_mutex_unlock");
        }
    }

    /// Sets `word` to 1 and wakes a waiter.
    pub(crate) fn signal(word: &AtomicU32) {
        word.store(1, Ordering::Release);
        let _ = futex::wake(word, futex::Flags::empty(), 1);
    }

    /// Waits until `word` is 1, then sets it back to 0.
    pub(crate) fn wait(word: &AtomicU32) {
        while word.load(Ordering::Acquire) == 0 {
            let _ = futex::wait(word, futex::Flags::empty(), 0, None);
        }
        word.store(0, Ordering::Relaxed);
    }
}

/// The peer process: what runs when `PROCWIRE_BENCH_ROLE` is set.
mod peer {
    use super::*;

    /// Serves `role` on the objects named `name` until the benchmark goes away.
    pub(crate) fn run(role: &str, name: &str) -> Result<(), String> {
        let ready = procwire_testkit::bench::peer_ready;
        match role {
            "raw-mutex-hammer" => {
                let mutex = raw::PthreadMutex::attach(view_of(name));
                ready()?;
                loop {
                    mutex.lock();
                    mutex.unlock();
                }
            }
            "mutex-hammer" => {
                let mutex = NamedMutex::open(name).expect("open the mutex");
                ready()?;
                loop {
                    match mutex.lock() {
                        Ok(guard) => drop(guard),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            "raw-pong" => {
                let view = view_of(name);
                let (ping, pong) = (
                    view.atomic_u32(PING_AT).expect("ping word"),
                    view.atomic_u32(PONG_AT).expect("pong word"),
                );
                ready()?;
                loop {
                    raw::wait(ping);
                    raw::signal(pong);
                }
            }
            "event-pong" => {
                let ping = NamedEvent::open(format!("{name}-ping").as_str()).expect("ping");
                let pong = NamedEvent::open(format!("{name}-pong").as_str()).expect("pong");
                ready()?;
                loop {
                    ping.wait().expect("wait for ping");
                    pong.set().expect("set pong");
                }
            }
            _ => Err(format!("unknown role `{role}`")),
        }
    }

    fn view_of(name: &str) -> View {
        Mapping::open(name, Access::ReadWrite)
            .expect("open the mapping")
            .view(0, 4096)
            .expect("map it")
    }
}

/// A fresh 4 KiB mapping and a view of it.
fn mapping(tag: &str) -> (String, Mapping, View) {
    let name = bench_name(tag);
    let mapping = Mapping::create(name.as_str(), 4096).expect("create a mapping");
    let view = mapping.view(0, 4096).expect("map it");
    (name, mapping, view)
}

/// Lock and unlock with nobody else around.
#[divan::bench_group(sample_count = 1000, sample_size = 1000)]
mod mutex_uncontended {
    use super::*;

    /// `pthread_mutex_lock` + `pthread_mutex_unlock`, robust and process-shared.
    #[divan::bench]
    fn raw_pthread_robust(bencher: Bencher<'_, '_>) {
        let (_name, _mapping, view) = mapping("raw-mutex");
        let mutex = raw::PthreadMutex::init(view);
        bencher.bench_local(|| {
            mutex.lock();
            mutex.unlock();
        });
    }

    /// `NamedMutex::lock` + dropping the guard.
    #[divan::bench]
    fn procwire(bencher: Bencher<'_, '_>) {
        let mutex = NamedMutex::create(bench_name("mutex").as_str()).expect("create");
        bencher.bench_local(|| {
            // Dropping the guard unlocks.
            drop(mutex.lock());
        });
    }
}

/// Lock and unlock while a peer process locks and unlocks the same mutex in a loop.
#[divan::bench_group(sample_count = 500, sample_size = 100)]
mod mutex_contended {
    use super::*;

    /// The raw robust pthread mutex, against a peer doing the same.
    #[divan::bench]
    fn raw_pthread_robust(bencher: Bencher<'_, '_>) {
        let (name, _mapping, view) = mapping("raw-contended");
        let mutex = raw::PthreadMutex::init(view);
        let _peer = BenchPeer::spawn("raw-mutex-hammer", &name);
        bencher.bench_local(|| {
            mutex.lock();
            mutex.unlock();
        });
    }

    /// `NamedMutex`, against a peer doing the same.
    #[divan::bench]
    fn procwire(bencher: Bencher<'_, '_>) {
        let name = bench_name("contended");
        let mutex = NamedMutex::create(name.as_str()).expect("create");
        let _peer = BenchPeer::spawn("mutex-hammer", &name);
        bencher.bench_local(|| {
            // Dropping the guard unlocks.
            drop(mutex.lock());
        });
    }
}

/// One round trip: wake the peer, and wait until it wakes us back.
#[divan::bench_group(sample_count = 2000, sample_size = 10)]
mod event_ping_pong {
    use super::*;

    /// Two futex words in shared memory.
    #[divan::bench]
    pub(super) fn raw_futex(bencher: Bencher<'_, '_>) {
        let (name, _mapping, view) = mapping("raw-pingpong");
        let _peer = BenchPeer::spawn("raw-pong", &name);
        let ping = view.atomic_u32(PING_AT).expect("ping word");
        let pong = view.atomic_u32(PONG_AT).expect("pong word");
        bencher.bench_local(|| {
            raw::signal(ping);
            raw::wait(pong);
        });
    }

    /// Two auto-reset `NamedEvent`s.
    #[divan::bench]
    pub(super) fn procwire(bencher: Bencher<'_, '_>) {
        let name = bench_name("pingpong");
        let ping = NamedEvent::create(format!("{name}-ping").as_str(), EventReset::Auto, false)
            .expect("create ping");
        let pong = NamedEvent::create(format!("{name}-pong").as_str(), EventReset::Auto, false)
            .expect("create pong");
        let _peer = BenchPeer::spawn("event-pong", &name);
        bencher.bench_local(|| {
            ping.set().expect("set ping");
            pong.wait().expect("wait for pong");
        });
    }
}

/// One round trip in which the answer is one of several objects: the peer waits for `ping`
/// and sets `pong`, which this side waits for among others.
#[divan::bench_group(sample_count = 2000, sample_size = 10)]
mod wait_many {
    use super::*;

    /// Where the answer sits among the eight.
    const ANSWER_AT: usize = 5;

    /// Two futex words in shared memory (as `event_ping_pong::raw_futex`, in this run).
    #[divan::bench]
    fn raw_futex(bencher: Bencher<'_, '_>) {
        super::event_ping_pong::raw_futex(bencher);
    }

    /// Auto-reset events: `set` the ping, `wait` on the pong.
    #[divan::bench]
    fn single_wait(bencher: Bencher<'_, '_>) {
        super::event_ping_pong::procwire(bencher);
    }

    /// Events made for a wait-many round trip: ping, pong and seven that stay unset.
    fn events(name: &str) -> (NamedEvent, NamedEvent, Vec<NamedEvent>) {
        let event = |tag: &str| {
            NamedEvent::create(format!("{name}-{tag}").as_str(), EventReset::Auto, false)
                .expect("create an event")
        };
        let others = (0..7).map(|i| event(&format!("idle{i}"))).collect();
        (event("ping"), event("pong"), others)
    }

    /// A `WaitSet` of the pong alone.
    #[divan::bench]
    fn one_event(bencher: Bencher<'_, '_>) {
        let name = bench_name("wait-one");
        let (ping, pong, _) = events(&name);
        let _peer = BenchPeer::spawn("event-pong", &name);
        let set = WaitSet::new().with(&pong);
        bencher.bench_local(|| {
            ping.set().expect("set ping");
            assert_eq!(set.wait_any().expect("wait for pong").index(), 0);
        });
    }

    /// A `WaitSet` of 8 events, the pong sixth.
    #[divan::bench]
    fn eight_events(bencher: Bencher<'_, '_>) {
        let name = bench_name("wait-eight");
        let (ping, pong, others) = events(&name);
        let _peer = BenchPeer::spawn("event-pong", &name);
        let mut set = WaitSet::new();
        for (i, idle) in others.iter().enumerate() {
            if i == ANSWER_AT {
                set.push(&pong);
            }
            set.push(idle);
        }
        assert_eq!(set.len(), 8);
        bencher.bench_local(|| {
            ping.set().expect("set ping");
            assert_eq!(set.wait_any().expect("wait for pong").index(), ANSWER_AT);
        });
    }
}
