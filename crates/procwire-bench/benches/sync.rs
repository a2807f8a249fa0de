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
//! The uncontended mutexes and the ping-pongs are `procwire bench`'s cases
//! (`procwire_bench::cases`, one implementation for both harnesses). The peers are this
//! same binary, started again (as `EXE bench-peer ROLE ADDR` for those cases, with
//! `PROCWIRE_BENCH_ROLE` set for the others); they stop when their standard input (held by
//! the benchmark) closes. Run with
//! `cargo bench -p procwire-bench --bench sync`; results are in `docs/performance.md`.
//!
//! Where the two processes run matters more than anything else for the two-process
//! benchmarks: run under `taskset -c 0` to put both on one CPU, or set
//! `PROCWIRE_BENCH_PEER_CPUS=1` and run under `taskset -c 0` for one CPU each.

use std::process::ExitCode;

use divan::Bencher;
use procwire::mapping::{Mapping, View};
use procwire::security::Access;
use procwire::sync::{EventReset, NamedEvent, NamedMutex, WaitSet};
use procwire_bench::peer::Peer;
use procwire_bench::raw::PthreadMutex;
use procwire_testkit::bench::{bench_name, bench_peer_role, serve_peer, BenchPeer};

fn main() -> ExitCode {
    if let Some((role, addr)) = procwire_bench::peer::peer_args() {
        return match procwire_bench::peer::serve(&role, &addr) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench peer {role}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match bench_peer_role() {
        Some(role) => serve_peer(&role, peer::run),
        None => {
            divan::main();
            ExitCode::SUCCESS
        }
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
                // SAFETY: the benchmark initialized the mutex at the start of the mapping
                // before starting this peer, and keeps the mapping alive while we run.
                let mutex = unsafe { PthreadMutex::attach(view_of(name)) };
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

    /// `pthread_mutex_lock` + `pthread_mutex_unlock`, robust and process-shared
    /// (`procwire bench`'s case).
    #[divan::bench]
    fn raw_pthread_robust(bencher: Bencher<'_, '_>) {
        let mut s = procwire_bench::cases::pthread_mutex(0).expect("start the case");
        bencher.bench_local(|| s.iter());
    }

    /// `NamedMutex::lock` + dropping the guard (`procwire bench`'s case).
    #[divan::bench]
    fn procwire(bencher: Bencher<'_, '_>) {
        let mut s = procwire_bench::cases::named_mutex(0).expect("start the case");
        bencher.bench_local(|| s.iter());
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
        let mutex = PthreadMutex::init(view);
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

    /// Two futex words in shared memory (`procwire bench`'s case).
    #[divan::bench]
    pub(super) fn raw_futex(bencher: Bencher<'_, '_>) {
        let mut s = procwire_bench::cases::futex_ping_pong(0).expect("start the case");
        bencher.bench_local(|| s.iter());
    }

    /// Two auto-reset `NamedEvent`s (`procwire bench`'s case).
    #[divan::bench]
    pub(super) fn procwire(bencher: Bencher<'_, '_>) {
        let mut s = procwire_bench::cases::event_ping_pong(0).expect("start the case");
        bencher.bench_local(|| s.iter());
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
        let _peer = Peer::spawn("event-pong", &name).expect("start the peer");
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
        let _peer = Peer::spawn("event-pong", &name).expect("start the peer");
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
