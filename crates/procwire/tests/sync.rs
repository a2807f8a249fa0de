//! Named mutexes, semaphores and events across real processes: this test binary, run again
//! with a role (`helper_process`), on the other side.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use procwire::mapping::{Mapping, View};
use procwire::registry::NamedObject;
use procwire::security::{Access, AccessList};
use procwire::sync::{
    EventReset, LockError, MutexOptions, NamedEvent, NamedMutex, NamedSemaphore, SyncError,
};
use procwire_testkit::{
    helper, helper_as_user, helper_on_cpu, helper_role, say, unique_name, Proc, Watchdog,
};

/// The variable that names a helper's objects (and, with `-data`, its mapping).
const NAME: &str = "PROCWIRE_TEST_NAME";
/// The variable that gives a helper its number of rounds.
const COUNT: &str = "PROCWIRE_TEST_COUNT";
/// The variable that gives a stress worker its slot.
const SLOT: &str = "PROCWIRE_TEST_SLOT";

/// The mapping that goes with a test's sync objects.
fn data_name(name: &str) -> String {
    format!("{name}-data")
}

/// Waits until `cond` holds, failing the test after 20 s.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn counter(view: &View, slot: usize) -> &AtomicU64 {
    view.atomic_u64(slot * 8).unwrap()
}

/// Not a test of its own: the body of the helper processes. Without a role it does nothing.
#[test]
fn helper_process() {
    let Some(role) = helper_role() else {
        return;
    };
    let name = std::env::var(NAME).unwrap();
    let data = || {
        Mapping::open(data_name(&name).as_str(), Access::ReadWrite)
            .unwrap()
            .view(0, 4096)
            .unwrap()
    };
    match role.as_str() {
        "lock-and-die" => {
            // Takes the lock, half-updates the data, and is killed before it finishes.
            let mutex = NamedMutex::open(name.as_str()).unwrap();
            let view = data();
            let guard = mutex.lock().unwrap();
            view.write_at(64, b"half-updated").unwrap();
            // The test harness runs us on a thread of its own: its TID is not the pid.
            let me = std::fs::read_link("/proc/thread-self").unwrap();
            let tid = me.file_name().unwrap().to_string_lossy().into_owned();
            say(&format!("LOCKED tid {tid}"));
            std::thread::sleep(Duration::from_secs(60));
            drop(guard);
        }
        "lock-once" => {
            // Locks once, and reports (without repairing) an abandoned mutex.
            let mutex = NamedMutex::open(name.as_str()).unwrap();
            let guard = match mutex.lock_timeout(Duration::from_secs(20)) {
                Ok(guard) | Err(LockError::Abandoned(guard)) => guard,
                Err(LockError::Failed(e)) => panic!("{e}"),
            };
            let view = data();
            counter(&view, 0).fetch_add(1, Ordering::AcqRel);
            let abandoned = guard.is_abandoned();
            // Unlocked before saying so: the test may kill us as soon as it reads the line.
            drop(guard);
            say(&format!("LOCKED abandoned={abandoned}"));
        }
        "increment" => {
            // Plain read-modify-write under the mutex: only mutual exclusion keeps the
            // total exact.
            let mutex = NamedMutex::open(name.as_str()).unwrap();
            let view = data();
            let n: u64 = std::env::var(COUNT).unwrap().parse().unwrap();
            say("STARTED");
            for _ in 0..n {
                let _guard = mutex.lock().unwrap();
                let mut bytes = [0u8; 8];
                view.read_at(0, &mut bytes).unwrap();
                let value = u64::from_ne_bytes(bytes) + 1;
                view.write_at(0, &value.to_ne_bytes()).unwrap();
            }
            say("DONE");
        }
        "event-wait" => {
            let event = NamedEvent::open(name.as_str()).unwrap();
            let view = data();
            say("WAITING");
            event.wait_timeout(Duration::from_secs(30)).unwrap();
            counter(&view, 1).fetch_add(1, Ordering::AcqRel);
            say("WOKE");
        }
        "semaphore-wait" => {
            let semaphore = NamedSemaphore::open(name.as_str()).unwrap();
            let view = data();
            say("WAITING");
            semaphore.wait_timeout(Duration::from_secs(30)).unwrap();
            counter(&view, 2).fetch_add(1, Ordering::AcqRel);
            say("WOKE");
        }
        "hold-mutex" => {
            let mutex = NamedMutex::open(name.as_str()).unwrap();
            let _guard = mutex.lock().unwrap();
            say("LOCKED");
            std::thread::sleep(Duration::from_secs(60));
        }
        "open-mutex" => {
            // Run as another user: prints what happened, holding the lock briefly.
            match NamedMutex::open(name.as_str()) {
                Ok(mutex) => match mutex.lock_timeout(Duration::from_secs(20)) {
                    Ok(_guard) => say("LOCKED"),
                    Err(e) => say(&format!("ERROR {e}")),
                },
                Err(e) => say(&format!("ERROR {e}")),
            }
        }
        "ping" => {
            // Round trips through two auto-reset events with plain `wait()`: set ping,
            // wait for pong. A lost wake-up leaves both sides asleep for good, so a
            // thread of our own reports a stall instead of hanging.
            let ping = NamedEvent::open(format!("{name}-ping").as_str()).unwrap();
            let pong = NamedEvent::open(format!("{name}-pong").as_str()).unwrap();
            let n: u64 = std::env::var(COUNT).unwrap().parse().unwrap();
            let done = std::sync::Arc::new(AtomicU64::new(0));
            let progress = std::sync::Arc::clone(&done);
            std::thread::spawn(move || {
                let mut last = u64::MAX;
                loop {
                    std::thread::sleep(Duration::from_secs(3));
                    let now = progress.load(Ordering::Relaxed);
                    if now == last {
                        println!(
                            "\nSTALLED after {now} round trips: ping set={}, pong set={}",
                            ping_state(&name, "ping"),
                            ping_state(&name, "pong")
                        );
                        std::io::stdout().flush().unwrap();
                        std::process::exit(1);
                    }
                    last = now;
                }
            });
            say("STARTED");
            let started = Instant::now();
            for i in 1..=n {
                ping.set().unwrap();
                pong.wait().unwrap();
                done.store(i, Ordering::Relaxed);
            }
            say(&format!("DONE {n} round trips in {:?}", started.elapsed()));
        }
        "pong" => {
            let ping = NamedEvent::open(format!("{name}-ping").as_str()).unwrap();
            let pong = NamedEvent::open(format!("{name}-pong").as_str()).unwrap();
            say("STARTED");
            loop {
                ping.wait().unwrap();
                pong.set().unwrap();
            }
        }
        "stress-mutex" | "stress-semaphore" | "stress-event-wait" | "stress-event-set" => {
            stress::worker(&role, &name)
        }
        other => panic!("unknown role {other}"),
    }
}

/// Whether the event `{name}-{which}` is set, for a stall report.
fn ping_state(name: &str, which: &str) -> String {
    match NamedEvent::open(format!("{name}-{which}").as_str()) {
        Ok(event) => event.is_set().to_string(),
        Err(e) => e.to_string(),
    }
}

/// Two processes on two CPUs ping-pong `round_trips` times through two auto-reset events
/// with plain `wait()`; fails (instead of hanging) when the round trips stall.
fn auto_event_ping_pong(round_trips: u64, limit: Duration) {
    let _wd = Watchdog::new(limit + Duration::from_secs(30));
    let name = unique_name("pingpong");
    let _ping =
        NamedEvent::create(format!("{name}-ping").as_str(), EventReset::Auto, false).unwrap();
    let _pong =
        NamedEvent::create(format!("{name}-pong").as_str(), EventReset::Auto, false).unwrap();
    let mut pong = helper_on_cpu(1, "pong", &[(NAME, &name)]);
    pong.wait_for("STARTED");
    let count = round_trips.to_string();
    let mut ping = helper_on_cpu(0, "ping", &[(NAME, &name), (COUNT, &count)]);
    let deadline = Instant::now() + limit;
    loop {
        let line = ping
            .line_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|| panic!("{round_trips} round trips not done within {limit:?}"));
        assert!(!line.is_empty(), "the pinging process ended early");
        assert!(!line.contains("STALLED"), "lost wake-up: {line}");
        if line.contains("DONE") {
            eprintln!("{}", line.trim());
            break;
        }
    }
    assert!(ping.child.wait().unwrap().success());
}

/// Issue 10: a `set` that landed between the waiter's failed `try_wait` and its sleep was
/// lost, and both processes slept for good within a few thousand round trips.
#[test]
fn regression_10_auto_event_ping_pong_loses_no_wake_up() {
    auto_event_ping_pong(200_000, Duration::from_secs(120));
}

/// Issue 10, at the size the issue asks for.
#[test]
#[ignore = "long: run with --ignored"]
fn regression_10_auto_event_ping_pong_loses_no_wake_up_in_a_million_round_trips() {
    auto_event_ping_pong(1_000_000, Duration::from_secs(300));
}

#[test]
fn a_holder_killed_with_sigkill_abandons_the_mutex_and_the_next_locker_repairs_it() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("robust");
    let mutex = NamedMutex::create(name.as_str()).unwrap();
    let mapping = Mapping::create(data_name(&name).as_str(), 4096).unwrap();
    let view = mapping.view(0, 4096).unwrap();
    view.write_at(64, b"consistent..").unwrap();

    let mut holder = helper("lock-and-die", &[(NAME, &name)]);
    let line = holder.wait_for("LOCKED");
    let holder_tid: u32 = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        mutex.try_lock().unwrap().is_none(),
        "held by a live process"
    );

    // A waiter already asleep in the kernel when the holder dies.
    // Timed from before the spawn: the waiter thread may start late on a busy machine.
    let started = Instant::now();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            match mutex.lock() {
                Err(LockError::Abandoned(mut guard)) => {
                    let elapsed = started.elapsed();
                    assert_eq!(guard.previous_owner(), holder_tid);
                    assert!(guard.is_abandoned());
                    // Repair: the data the dead holder left half-updated.
                    assert_eq!(view.read_vec(64, 12).unwrap(), b"half-updated");
                    view.write_at(64, b"repaired....").unwrap();
                    guard.mark_repaired();
                    assert!(!guard.is_abandoned());
                    elapsed
                }
                Ok(_) => panic!("the lock was not reported abandoned"),
                Err(LockError::Failed(e)) => panic!("{e}"),
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        holder.kill();
        let waited = waiter.join().unwrap();
        assert!(
            waited >= Duration::from_millis(200),
            "it waited for the holder"
        );
    });

    // The mutex works normally again, for other processes and for this one.
    for _ in 0..2 {
        let mut other = helper("lock-once", &[(NAME, &name)]);
        other.wait_for("LOCKED abandoned=false");
        assert!(other.child.wait().unwrap().success());
    }
    let guard = mutex.lock().unwrap();
    assert!(!guard.is_abandoned());
    assert_eq!(view.read_vec(64, 12).unwrap(), b"repaired....");
    assert_eq!(counter(&view, 0).load(Ordering::Acquire), 2);
}

#[test]
fn an_unrepaired_abandoned_mutex_stays_abandoned() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("unrepaired");
    let mutex = NamedMutex::create(name.as_str()).unwrap();
    let _mapping = Mapping::create(data_name(&name).as_str(), 4096).unwrap();
    let mut holder = helper("lock-and-die", &[(NAME, &name)]);
    holder.wait_for("LOCKED");
    holder.kill();
    // Nobody is waiting: the next locker, a process, finds it abandoned after a check.
    let mut first = helper("lock-once", &[(NAME, &name)]);
    first.wait_for("LOCKED abandoned=true");
    // It did not mark it repaired: we are told too, and `?` makes it an error.
    let e: SyncError = mutex
        .lock_timeout(Duration::from_secs(20))
        .unwrap_err()
        .into();
    assert!(matches!(e, SyncError::Abandoned { .. }), "{e}");
    assert!(e.to_string().contains("died while holding it"), "{e}");
}

#[test]
fn four_processes_times_ten_thousand_increments_give_the_exact_total() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let name = unique_name("count");
    let _mutex = NamedMutex::create(name.as_str()).unwrap();
    let mapping = Mapping::create(data_name(&name).as_str(), 4096).unwrap();
    let view = mapping.view(0, 4096).unwrap();
    let mut workers: Vec<Proc> = (0..4)
        .map(|_| helper("increment", &[(NAME, &name), (COUNT, "10000")]))
        .collect();
    for w in &mut workers {
        w.wait_for("STARTED");
    }
    for w in &mut workers {
        w.wait_for("DONE");
    }
    let mut bytes = [0u8; 8];
    view.read_at(0, &mut bytes).unwrap();
    assert_eq!(u64::from_ne_bytes(bytes), 40_000);
}

#[test]
fn a_manual_event_wakes_every_waiting_process() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("manual");
    let event = NamedEvent::create(name.as_str(), EventReset::Manual, false).unwrap();
    let mapping = Mapping::create(data_name(&name).as_str(), 4096).unwrap();
    let view = mapping.view(0, 4096).unwrap();
    let mut waiters: Vec<Proc> = (0..3)
        .map(|_| helper("event-wait", &[(NAME, &name)]))
        .collect();
    for w in &mut waiters {
        w.wait_for("WAITING");
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        counter(&view, 1).load(Ordering::Acquire),
        0,
        "nobody woke early"
    );
    event.set().unwrap();
    for w in &mut waiters {
        w.wait_for("WOKE");
    }
    assert_eq!(counter(&view, 1).load(Ordering::Acquire), 3);
    assert!(event.is_set(), "a manual-reset event stays set");
}

#[test]
fn an_auto_event_wakes_exactly_one_waiting_process_per_set() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("auto");
    let event = NamedEvent::create(name.as_str(), EventReset::Auto, false).unwrap();
    let mapping = Mapping::create(data_name(&name).as_str(), 4096).unwrap();
    let view = mapping.view(0, 4096).unwrap();
    let woken = counter(&view, 1);
    let mut waiters: Vec<Proc> = (0..3)
        .map(|_| helper("event-wait", &[(NAME, &name)]))
        .collect();
    for w in &mut waiters {
        w.wait_for("WAITING");
    }
    std::thread::sleep(Duration::from_millis(100));
    for round in 1..=3 {
        event.set().unwrap();
        eventually("a waiter woke", || woken.load(Ordering::Acquire) >= round);
        // Give a wrong second wake-up the time to show itself.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(woken.load(Ordering::Acquire), round, "exactly one per set");
        assert!(!event.is_set(), "the woken waiter reset it");
    }
}

#[test]
fn a_semaphore_wakes_waiting_processes_one_unit_each() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("sem");
    let semaphore = NamedSemaphore::create(name.as_str(), 0, 5).unwrap();
    let mapping = Mapping::create(data_name(&name).as_str(), 4096).unwrap();
    let view = mapping.view(0, 4096).unwrap();
    let woken = counter(&view, 2);
    let mut waiters: Vec<Proc> = (0..3)
        .map(|_| helper("semaphore-wait", &[(NAME, &name)]))
        .collect();
    for w in &mut waiters {
        w.wait_for("WAITING");
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(semaphore.release(2).unwrap(), 0, "the previous count");
    eventually("two waiters woke", || woken.load(Ordering::Acquire) == 2);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(woken.load(Ordering::Acquire), 2, "two units, two waiters");
    assert_eq!(semaphore.count(), 0);
    assert_eq!(semaphore.release(1).unwrap(), 0);
    eventually("the third woke", || woken.load(Ordering::Acquire) == 3);
    assert_eq!(semaphore.release(5).unwrap(), 0);
    let e = semaphore.release(1).unwrap_err();
    assert!(
        matches!(
            e,
            SyncError::OverRelease {
                count: 5,
                release: 1,
                max: 5,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("above its maximum of 5"), "{e}");
    assert_eq!(semaphore.count(), 5, "nothing was released");
}

#[test]
fn waits_with_a_timeout_return_timeout_no_earlier_than_asked() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("timeout");
    let mutex = NamedMutex::create(name.as_str()).unwrap();
    let mut holder = helper("hold-mutex", &[(NAME, &name)]);
    holder.wait_for("LOCKED");

    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let e = mutex.lock_timeout(timeout).unwrap_err();
    assert!(started.elapsed() >= timeout, "gave up early");
    assert!(
        matches!(&e, LockError::Failed(SyncError::Timeout { after, .. }) if *after == timeout),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("timed out after 300ms waiting for mutex"),
        "{e}"
    );

    let event_name = format!("{name}-event");
    let event = NamedEvent::create(event_name.as_str(), EventReset::Auto, false).unwrap();
    let started = Instant::now();
    let e = event.wait_timeout(Duration::from_millis(200)).unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(matches!(e, SyncError::Timeout { .. }), "{e}");

    let sem_name = format!("{name}-sem");
    let semaphore = NamedSemaphore::create(sem_name.as_str(), 0, 1).unwrap();
    let started = Instant::now();
    let e = semaphore
        .wait_timeout(Duration::from_millis(150))
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(matches!(e, SyncError::Timeout { .. }), "{e}");
}

#[test]
fn bad_input_ends_in_clear_errors() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("bad");

    let e = NamedMutex::open(name.as_str()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(r"no mutex named `Local\{name}`: nothing of that name exists; create it first")
    );
    let mapping = Mapping::create(name.as_str(), 64).unwrap();
    let e = NamedMutex::open(name.as_str()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(r"`Local\{name}` is a mapping, not a mutex")
    );
    let e = NamedEvent::create(name.as_str(), EventReset::Auto, false).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(r"`Local\{name}` is a mapping, not an event")
    );
    let e = NamedSemaphore::remove(name.as_str()).unwrap_err();
    assert!(matches!(e, SyncError::WrongKind { .. }), "{e}");
    drop(mapping);

    let _mutex = NamedMutex::create(name.as_str()).unwrap();
    let e = NamedMutex::create(name.as_str()).unwrap_err();
    assert!(matches!(e, SyncError::AlreadyExists { .. }), "{e}");
    let e = NamedSemaphore::open(name.as_str()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(r"`Local\{name}` is a mutex, not a semaphore")
    );

    let e = NamedSemaphore::create(format!("{name}-s").as_str(), 2, 1).unwrap_err();
    assert!(
        e.to_string()
            .contains("initial count 2 is above the maximum 1"),
        "{e}"
    );
    let e = NamedSemaphore::create(format!("{name}-s").as_str(), 0, 0).unwrap_err();
    assert!(matches!(e, SyncError::InvalidArgument { .. }), "{e}");
    let e = NamedMutex::create("m".repeat(65).as_str()).unwrap_err();
    assert!(matches!(e, SyncError::InvalidName(_)), "{e}");
    let e = MutexOptions::new()
        .access_list(AccessList::owner_only().everyone(Access::Read))
        .create(format!("{name}-ro").as_str())
        .unwrap_err();
    assert!(e.to_string().contains("grant ReadWrite, or nothing"), "{e}");
}

#[test]
#[ignore = "needs root: drops to `nobody`"]
fn access_is_enforced_against_another_user() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let as_nobody = |name: &str| helper_as_user(65534, "open-mutex", &[(NAME, name)]);

    // Owner only: the other user is refused, and told why.
    let name = format!(r"Global\{}", unique_name("acl-owner"));
    let _private = NamedMutex::create(name.as_str()).unwrap();
    let line = as_nobody(&name).wait_for("ERROR");
    assert!(line.contains("access to mutex"), "{line}");
    assert!(
        line.contains("uid 65534 asked for read-write access"),
        "{line}"
    );

    // Everyone read-write: the other user's process and this one exclude each other.
    let name = format!(r"Global\{}", unique_name("acl-everyone"));
    let shared = MutexOptions::new()
        .access_list(AccessList::owner_only().everyone(Access::ReadWrite))
        .create(name.as_str())
        .unwrap();
    let guard = shared.lock().unwrap();
    let mut other = as_nobody(&name);
    std::thread::sleep(Duration::from_millis(200));
    drop(guard);
    other.wait_for("LOCKED");
}

/// Many processes on one sync object, with random timeouts and random `SIGKILL`s of
/// holders and waiters, and an invariant checked at the end.
///
/// The objects' data lives in a mapping (`NAME-data`) of `u64` slots: 0 is the stop flag,
/// 1.. the test's own counters, and [`stress::SLOTS`].. one per worker process.
mod stress {
    use super::*;

    /// Where the per-worker slots start.
    pub(super) const SLOTS: usize = 16;
    const STOP: usize = 0;
    /// Mutex: the counter, and the intent of an update in progress (worker slot + 1, the
    /// counter's new value, the slot's new value), which lets a locker that finds the mutex
    /// abandoned finish the dead holder's update.
    pub(super) const COUNTER: usize = 1;
    pub(super) const INTENT_SLOT: usize = 2;
    pub(super) const INTENT_COUNTER: usize = 3;
    pub(super) const INTENT_MINE: usize = 4;
    /// Semaphore: units in use, and broken invariants seen.
    pub(super) const IN_USE: usize = 1;
    pub(super) const VIOLATIONS: usize = 2;
    /// Semaphore: where a worker's "holds a unit" flag is, after its slot.
    pub(super) const HELD: usize = 256;
    /// Event: sets made, and waits released.
    pub(super) const SETS: usize = 1;
    pub(super) const TAKEN: usize = 2;
    /// The semaphore's maximum.
    pub(super) const MAX: u32 = 3;

    /// A small xorshift generator, seeded per process.
    pub(super) struct Rng(u64);

    impl Rng {
        pub(super) fn new() -> Rng {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            Rng((u64::from(std::process::id()) << 32 | u64::from(nanos)) | 1)
        }

        pub(super) fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn millis(&mut self, lo: u64, hi: u64) -> Duration {
            Duration::from_millis(lo + self.below(hi - lo + 1))
        }
    }

    fn slot(view: &View, at: usize) -> &AtomicU64 {
        counter(view, at)
    }

    /// Finishes the update a dead holder left half done.
    pub(super) fn repair(view: &View) {
        let intent = slot(view, INTENT_SLOT).load(Ordering::Relaxed);
        if intent != 0 {
            let mine = slot(view, INTENT_MINE).load(Ordering::Relaxed);
            let total = slot(view, INTENT_COUNTER).load(Ordering::Relaxed);
            slot(view, COUNTER).store(total, Ordering::Relaxed);
            slot(view, intent as usize - 1).store(mine, Ordering::Relaxed);
            slot(view, INTENT_SLOT).store(0, Ordering::Relaxed);
        }
    }

    /// The body of a stress worker process.
    pub(super) fn worker(role: &str, name: &str) {
        let view = Mapping::open(data_name(name).as_str(), Access::ReadWrite)
            .unwrap()
            .view(0, 4096)
            .unwrap();
        let me: usize = std::env::var(SLOT).unwrap().parse().unwrap();
        let mut rng = Rng::new();
        let stopped = || slot(&view, STOP).load(Ordering::Acquire) != 0;
        say("STARTED");
        match role {
            "stress-mutex" => {
                let mutex = NamedMutex::open(name).unwrap();
                while !stopped() {
                    let guard = match mutex.lock_timeout(rng.millis(1, 40)) {
                        Ok(guard) => guard,
                        Err(LockError::Abandoned(mut guard)) => {
                            repair(&view);
                            guard.mark_repaired();
                            guard
                        }
                        Err(LockError::Failed(SyncError::Timeout { .. })) => continue,
                        Err(LockError::Failed(e)) => panic!("{e}"),
                    };
                    // Plain loads and stores: only mutual exclusion keeps the sums exact.
                    let total = slot(&view, COUNTER).load(Ordering::Relaxed) + 1;
                    let mine = slot(&view, me).load(Ordering::Relaxed) + 1;
                    slot(&view, INTENT_COUNTER).store(total, Ordering::Relaxed);
                    slot(&view, INTENT_MINE).store(mine, Ordering::Relaxed);
                    slot(&view, INTENT_SLOT).store(me as u64 + 1, Ordering::Relaxed);
                    if rng.below(4) == 0 {
                        // A wider window for a kill to land in.
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    slot(&view, COUNTER).store(total, Ordering::Relaxed);
                    slot(&view, me).store(mine, Ordering::Relaxed);
                    slot(&view, INTENT_SLOT).store(0, Ordering::Relaxed);
                    drop(guard);
                }
            }
            "stress-semaphore" => {
                let semaphore = NamedSemaphore::open(name).unwrap();
                let bad = |what: String| {
                    eprintln!("VIOLATION {what}");
                    slot(&view, VIOLATIONS).fetch_add(1, Ordering::AcqRel);
                };
                while !stopped() {
                    let timeout = if rng.below(20) == 0 {
                        rng.millis(100, 500)
                    } else {
                        rng.millis(1, 30)
                    };
                    match semaphore.wait_timeout(timeout) {
                        Ok(()) => {}
                        Err(SyncError::Timeout { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    }
                    // Counted in use before flagged as held, and unflagged before uncounted:
                    // a kill between the two leaves a unit lost together with its count in
                    // use, and a flagged unit given back for a killed worker was counted.
                    let in_use = slot(&view, IN_USE).fetch_add(1, Ordering::AcqRel) + 1;
                    slot(&view, HELD + me).store(1, Ordering::Release);
                    if in_use > u64::from(MAX) {
                        bad(format!("{in_use} units in use"));
                    }
                    let count = semaphore.count();
                    if count >= MAX {
                        bad(format!("count {count} while this process holds a unit"));
                    }
                    if rng.below(3) == 0 {
                        std::thread::sleep(rng.millis(0, 2));
                    }
                    slot(&view, HELD + me).store(0, Ordering::Release);
                    slot(&view, IN_USE).fetch_sub(1, Ordering::AcqRel);
                    slot(&view, me).fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = semaphore.release(1) {
                        bad(e.to_string());
                    }
                }
            }
            "stress-event-wait" => {
                let event = NamedEvent::open(name).unwrap();
                while !stopped() {
                    if rng.below(2) == 0 {
                        event.wait().unwrap();
                    } else {
                        match event.wait_timeout(rng.millis(1, 30)) {
                            Ok(()) => {}
                            Err(SyncError::Timeout { .. }) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    slot(&view, TAKEN).fetch_add(1, Ordering::AcqRel);
                }
            }
            "stress-event-set" => {
                let event = NamedEvent::open(name).unwrap();
                while !stopped() {
                    slot(&view, SETS).fetch_add(1, Ordering::AcqRel);
                    event.set().unwrap();
                    if rng.below(2) == 0 {
                        std::thread::sleep(rng.millis(0, 2));
                    }
                }
            }
            _ => unreachable!(),
        }
        say("DONE");
    }

    /// Worker processes: started, killed at random, replaced; each with a slot of its own.
    pub(super) struct Crowd {
        name: String,
        pub(super) procs: Vec<(String, Proc)>,
        next_slot: usize,
        pub(super) kills: Vec<String>,
        rng: Rng,
        slot_of: std::collections::HashMap<u32, usize>,
    }

    impl Crowd {
        pub(super) fn new(name: &str) -> Crowd {
            Crowd {
                name: name.to_owned(),
                procs: Vec::new(),
                next_slot: SLOTS,
                kills: Vec::new(),
                rng: Rng::new(),
                slot_of: std::collections::HashMap::new(),
            }
        }

        pub(super) fn spawn(&mut self, role: &str) {
            let slot = self.next_slot;
            self.next_slot += 1;
            assert!(slot < HELD, "out of worker slots");
            let mut p = helper(role, &[(NAME, &self.name), (SLOT, &slot.to_string())]);
            p.wait_for_within("STARTED", Duration::from_secs(20));
            self.slot_of.insert(p.pid(), slot);
            self.procs.push((role.to_owned(), p));
        }

        /// The slots given out so far.
        pub(super) fn slots(&self) -> std::ops::Range<usize> {
            SLOTS..self.next_slot
        }

        /// For `run`: every so often, kills a worker at random (`SIGKILL`, whatever it is
        /// doing) and starts another of the same role; `check` runs in between.
        pub(super) fn churn(&mut self, run: Duration, check: impl FnMut()) {
            self.churn_and(run, check, |_| {});
        }

        /// As [`churn`](Self::churn), calling `killed` with each killed worker's slot.
        pub(super) fn churn_and(
            &mut self,
            run: Duration,
            mut check: impl FnMut(),
            mut killed: impl FnMut(usize),
        ) {
            let end = Instant::now() + run;
            while Instant::now() < end {
                let pause = self.rng.millis(20, 150);
                let until = Instant::now() + pause;
                while Instant::now() < until {
                    check();
                    std::thread::sleep(Duration::from_millis(1));
                }
                let victim = self.rng.below(self.procs.len() as u64) as usize;
                let (role, mut p, slot) = {
                    let (role, p) = self.procs.swap_remove(victim);
                    let slot = self.slot_of.remove(&p.pid()).unwrap();
                    (role, p, slot)
                };
                p.kill();
                killed(slot);
                self.kills.push(role.clone());
                self.spawn(&role);
            }
        }

        /// Each worker's role, pid and state (running, or where it sleeps; or how it ended,
        /// with its stderr), for a failure message.
        pub(super) fn describe(&mut self) -> String {
            let mut out = Vec::new();
            for (role, p) in &mut self.procs {
                let pid = p.pid();
                let state = match p.child.try_wait() {
                    Ok(Some(status)) => format!("exited ({status}): {}", p.stderr()),
                    _ => {
                        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                            .unwrap_or_default();
                        let state = stat
                            .rsplit(')')
                            .next()
                            .and_then(|s| s.split_whitespace().next())
                            .unwrap_or("?")
                            .to_owned();
                        let wchan: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
                            .into_iter()
                            .flatten()
                            .flatten()
                            .map(|t| {
                                std::fs::read_to_string(t.path().join("wchan")).unwrap_or_default()
                            })
                            .collect();
                        format!("state {state}, threads in {wchan:?}")
                    }
                };
                out.push(format!("{role} pid {pid}: {state}"));
            }
            out.join("; ")
        }

        /// Kills every worker but the first of `role`.
        pub(super) fn keep_one(&mut self, role: &str) {
            let keep = self.procs.iter().position(|(r, _)| r == role).unwrap();
            let kept = self.procs.swap_remove(keep);
            for (role, mut p) in self.procs.drain(..) {
                p.kill();
                self.kills.push(role);
            }
            self.procs.push(kept);
        }

        /// Sets the stop flag and waits until every worker has said DONE, doing `nudge`
        /// (once, then every few milliseconds) for those that wait without a timeout.
        pub(super) fn stop(&mut self, view: &View, limit: Duration, mut nudge: impl FnMut()) {
            slot(view, STOP).store(1, Ordering::Release);
            let deadline = Instant::now() + limit;
            for (role, p) in &mut self.procs {
                loop {
                    nudge();
                    match p.line_timeout(Duration::from_millis(5)) {
                        Some(line) if line.contains("DONE") => break,
                        Some(line) if line.is_empty() => panic!("a {role} worker died"),
                        _ => {}
                    }
                    assert!(
                        Instant::now() < deadline,
                        "a {role} worker did not stop within {limit:?}"
                    );
                }
                assert!(p.child.wait().unwrap().success(), "a {role} worker failed");
            }
        }
    }

    /// Gives back the unit that the killed worker of `slot` held.
    pub(super) fn release_for(view: &View, semaphore: &NamedSemaphore, worker: usize) {
        slot(view, IN_USE).fetch_sub(1, Ordering::AcqRel);
        slot(view, HELD + worker).store(0, Ordering::Release);
        semaphore
            .release(1)
            .expect("a killed holder's unit fits under the maximum");
    }

    pub(super) fn read(view: &View, at: usize) -> u64 {
        slot(view, at).load(Ordering::Acquire)
    }
}

#[test]
fn stress_mutex_many_processes_random_timeouts_and_kills_keep_the_counter_exact() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("stress-mutex");
    let mutex = NamedMutex::create(name.as_str()).unwrap();
    let mapping = Mapping::create(data_name(&name).as_str(), 4096).unwrap();
    let view = mapping.view(0, 4096).unwrap();
    let mut crowd = stress::Crowd::new(&name);
    for _ in 0..6 {
        crowd.spawn("stress-mutex");
    }
    crowd.churn(Duration::from_secs(4), || {});
    crowd.stop(&view, Duration::from_secs(10), || {});
    let guard = match mutex.lock_timeout(Duration::from_secs(5)) {
        Ok(guard) => guard,
        Err(LockError::Abandoned(mut guard)) => {
            stress::repair(&view);
            guard.mark_repaired();
            guard
        }
        Err(LockError::Failed(e)) => panic!("{e}"),
    };
    let total = stress::read(&view, stress::COUNTER);
    let sum: u64 = crowd.slots().map(|s| stress::read(&view, s)).sum();
    eprintln!(
        "{total} updates by {} processes, {} killed",
        crowd.slots().len(),
        crowd.kills.len()
    );
    assert_eq!(stress::read(&view, stress::INTENT_SLOT), 0);
    assert!(total > 0, "no progress");
    assert_eq!(
        total, sum,
        "the counter is the sum of every process's updates"
    );
    drop(guard);
}

#[test]
fn stress_semaphore_many_processes_random_timeouts_and_kills_stay_within_bounds() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("stress-sem");
    let max = stress::MAX;
    let semaphore = NamedSemaphore::create(name.as_str(), max, max).unwrap();
    let mapping = Mapping::create(data_name(&name).as_str(), 4096).unwrap();
    let view = mapping.view(0, 4096).unwrap();
    let mut crowd = stress::Crowd::new(&name);
    for _ in 0..6 {
        crowd.spawn("stress-semaphore");
    }
    let mut given_back = 0;
    crowd.churn_and(
        Duration::from_secs(4),
        || {
            let count = semaphore.count();
            assert!(count <= max, "count {count} above the maximum {max}");
        },
        |slot| {
            // A semaphore has no owner: a unit the killed process held is gone unless
            // someone gives it back, which we do for it (as a supervisor would).
            if stress::read(&view, stress::HELD + slot) != 0 {
                stress::release_for(&view, &semaphore, slot);
                given_back += 1;
            }
        },
    );
    crowd.stop(&view, Duration::from_secs(10), || {});
    let count = semaphore.count();
    let kills = crowd.kills.len() as u32;
    let taken: u64 = crowd.slots().map(|s| stress::read(&view, s)).sum();
    eprintln!(
        "{taken} units taken and given back, {kills} processes killed ({given_back} holding \
         a unit, given back for them), {count} of {max} left"
    );
    assert_eq!(
        stress::read(&view, stress::VIOLATIONS),
        0,
        "see VIOLATION lines"
    );
    assert!(taken > 0, "no progress");
    assert!(count <= max, "count {count} above the maximum {max}");
    // Only a process killed in the instant between taking a unit and flagging it (or
    // between unflagging and releasing it) can have taken a unit with it.
    assert!(
        count + (kills - given_back) >= max,
        "{count} units left of {max}, with {kills} processes killed and {given_back} units \
         given back for them"
    );
    let in_use = stress::read(&view, stress::IN_USE);
    assert!(
        in_use <= u64::from(max - count),
        "{in_use} units counted in use with every worker stopped and {count} of {max} left"
    );
}

#[test]
fn stress_auto_event_many_processes_random_timeouts_and_kills_leave_no_waiter_asleep_on_a_set_event(
) {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("stress-event");
    let event = NamedEvent::create(name.as_str(), EventReset::Auto, false).unwrap();
    let mapping = Mapping::create(data_name(&name).as_str(), 4096).unwrap();
    let view = mapping.view(0, 4096).unwrap();
    let mut crowd = stress::Crowd::new(&name);
    for _ in 0..5 {
        crowd.spawn("stress-event-wait");
    }
    for _ in 0..2 {
        crowd.spawn("stress-event-set");
    }
    crowd.churn(Duration::from_secs(4), || {});
    // The kills are over. One more set wakes a sleeper in case the one an earlier set
    // chose was killed before taking the event; from then on a set event must be taken
    // by a live waiter within moments.
    event.set().unwrap();
    // One waiter left, and this process setting the event each time it has taken it: a
    // lost wake-up can no longer be covered by another waiter. Each round reads the count
    // of releases before it sets the event: the waiter may take a set and count it before
    // this process looks again (reading after the set lost that release and waited for
    // one that never came: issue 10's intermittent hang).
    crowd.keep_one("stress-event-wait");
    let rounds = 50_000;
    for round in 0..rounds {
        let taken = stress::read(&view, stress::TAKEN);
        event.set().unwrap();
        let since = Instant::now();
        while stress::read(&view, stress::TAKEN) == taken {
            if since.elapsed() > Duration::from_secs(3) {
                let workers = crowd.describe();
                assert!(
                    !event.is_set(),
                    "round {round}: the waiter is asleep on a set auto-reset event; {workers}"
                );
                panic!(
                    "round {round}: the event was taken, but the release never counted; \
                     {workers}"
                );
            }
            std::thread::yield_now();
        }
    }
    // The waiters that wait without a timeout are released one set at a time.
    let mut set_since: Option<Instant> = None;
    crowd.stop(&view, Duration::from_secs(15), || {
        if event.is_set() {
            let since = *set_since.get_or_insert_with(Instant::now);
            assert!(
                since.elapsed() < Duration::from_secs(3),
                "a waiter is asleep on a set auto-reset event"
            );
        } else {
            set_since = None;
            event.set().unwrap();
        }
    });
    let sets = stress::read(&view, stress::SETS);
    let taken = stress::read(&view, stress::TAKEN);
    eprintln!(
        "{sets} sets, {taken} waits released, {} processes killed, then {rounds} rounds with one waiter",
        crowd.kills.len()
    );
    assert!(taken > 0, "no progress");
    // Every release took a set (the final nudges are not counted, hence the slack of the
    // number of waiters; a set of a set event releases nobody more).
    assert!(
        taken <= sets + rounds + crowd.slots().len() as u64 + 2,
        "{taken} releases for {sets} sets"
    );
}
