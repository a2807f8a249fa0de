//! Waits on many objects (`WaitSet`), async waits and recursive mutexes, across real
//! processes: this test binary, run again as a `driver` helper (`helper_process`), sets,
//! releases, locks and sends on the other side, one command per line of its stdin.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use procwire::mailslot::{MailslotServer, MailslotWriter};
use procwire::pipe::{ClientOptions, PipeConnection, PipeOptions, PipeServer};
use procwire::sync::{
    EventReset, LockError, MutexOptions, NamedEvent, NamedMutex, NamedMutexGuard, NamedSemaphore,
    SyncError, WaitSet,
};
use procwire_testkit::{helper_command, helper_role, say, unique_name, Proc, Watchdog};

/// A driver process: commands go to its stdin, its answers come back as lines.
struct Driver(Proc);

impl Driver {
    fn start() -> Driver {
        let exe = std::env::current_exe().unwrap();
        Driver(Proc::spawn_with_stdin(helper_command(exe, "driver", &[])))
    }

    /// Sends `command` without waiting for its answer.
    fn send(&mut self, command: &str) {
        let stdin = self.0.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
    }

    /// Sends `command` and returns its answer (the line after `done `).
    fn run(&mut self, command: &str) -> String {
        self.send(command);
        self.answer()
    }

    fn answer(&mut self) -> String {
        let line = self.0.wait_for("done ");
        line.trim().trim_start_matches("done ").to_owned()
    }
}

/// The driver: runs each command of its stdin on its main thread (so that the mutexes it
/// locks belong to one live thread) and answers `done RESULT`.
fn drive() {
    let mut guards: HashMap<String, Vec<NamedMutexGuard<'static>>> = HashMap::new();
    let mut pipes: HashMap<String, PipeConnection> = HashMap::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["lock", name] | ["lock-recursive", name] => {
                // Leaked: the guard must outlive this loop's borrow; the process ends soon.
                let mutex: &'static NamedMutex =
                    Box::leak(Box::new(NamedMutex::open(*name).unwrap()));
                let guard = match mutex.lock() {
                    Ok(g) | Err(LockError::Abandoned(g)) => g,
                    Err(LockError::Failed(e)) => panic!("{e}"),
                };
                guards.entry((*name).to_owned()).or_default().push(guard);
                let me = std::fs::read_link("/proc/thread-self").unwrap();
                me.file_name().unwrap().to_string_lossy().into_owned()
            }
            ["unlock", name] => {
                guards.get_mut(*name).unwrap().pop();
                "unlocked".into()
            }
            ["trylock", name] => {
                let mutex = NamedMutex::open(*name).unwrap();
                let answer = match mutex.try_lock() {
                    Ok(Some(_)) | Err(LockError::Abandoned(_)) => "free".into(),
                    Ok(None) => "busy".into(),
                    Err(LockError::Failed(e)) => e.to_string(),
                };
                answer
            }
            ["locktimeout", name] => {
                let mutex = NamedMutex::open(*name).unwrap();
                let answer = match mutex.lock_timeout(Duration::from_secs(10)) {
                    Ok(_) => "locked".into(),
                    Err(LockError::Abandoned(_)) => "abandoned".into(),
                    Err(LockError::Failed(e)) => e.to_string(),
                };
                answer
            }
            ["set", name] => {
                NamedEvent::open(*name).unwrap().set().unwrap();
                "set".into()
            }
            ["waitevent", name] => match NamedEvent::open(*name)
                .unwrap()
                .wait_timeout(Duration::from_secs(10))
            {
                Ok(()) => "got".into(),
                Err(e) => e.to_string(),
            },
            ["release", name] => {
                NamedSemaphore::open(*name).unwrap().release(1).unwrap();
                "released".into()
            }
            ["waitunit", name] => match NamedSemaphore::open(*name)
                .unwrap()
                .wait_timeout(Duration::from_secs(10))
            {
                Ok(()) => "got".into(),
                Err(e) => e.to_string(),
            },
            ["connect", name] => {
                pipes.insert((*name).to_owned(), PipeConnection::open(*name).unwrap());
                "connected".into()
            }
            ["connect-shm", name] => {
                let pipe = ClientOptions::new()
                    .shared_memory(true)
                    .open(*name)
                    .unwrap();
                pipes.insert((*name).to_owned(), pipe);
                "connected".into()
            }
            ["send", name, message] => {
                pipes
                    .get_mut(*name)
                    .unwrap()
                    .send(message.as_bytes())
                    .unwrap();
                "sent".into()
            }
            ["close", name] => {
                pipes.remove(*name);
                "closed".into()
            }
            ["mail", name, message] => {
                MailslotWriter::open(*name)
                    .unwrap()
                    .write(message.as_bytes())
                    .unwrap();
                "mailed".into()
            }
            ["sleep", ms] => {
                std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
                "slept".into()
            }
            other => panic!("unknown command {other:?}"),
        };
        say(&format!("done {answer}"));
    }
}

/// Not a test of its own: the body of the helper processes. Without a role it does nothing.
#[test]
fn helper_process() {
    let Some(role) = helper_role() else {
        return;
    };
    match role.as_str() {
        "driver" => drive(),
        other => panic!("unknown role {other}"),
    }
}

/// A pipe server, and the connection a driver opened to it.
fn pipe_from(driver: &mut Driver, tag: &str) -> (PipeServer, PipeConnection, String) {
    let name = format!(r"\\.\pipe\{}", unique_name(tag));
    let server = PipeServer::create(name.as_str()).unwrap();
    driver.send(&format!("connect {name}"));
    let connection = server.accept_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(driver.answer(), "connected");
    (server, connection, name)
}

#[test]
fn wait_any_mixed_objects_across_processes() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("any");
    let event = NamedEvent::create(format!("{name}-e").as_str(), EventReset::Auto, false).unwrap();
    let sem = NamedSemaphore::create(format!("{name}-s").as_str(), 0, 4).unwrap();
    let mutex = NamedMutex::create(format!("{name}-m").as_str()).unwrap();
    let mut driver = Driver::start();
    let (_server, mut pipe, pipe_name) = pipe_from(&mut driver, "any-pipe");
    driver.run(&format!("lock {}", mutex.name()));

    let four = WaitSet::new()
        .with(&event)
        .with(&sem)
        .with(&mutex)
        .with(&pipe);
    assert!(
        four.try_wait_any().unwrap().is_none(),
        "nothing is signalled"
    );
    drop(four);

    // Each object in turn, signalled by the other process while this one sleeps.
    let commands = [
        (format!("set {}", event.name()), 0),
        (format!("release {}", sem.name()), 1),
        (format!("send {pipe_name} hello"), 3),
        (format!("unlock {}", mutex.name()), 2),
    ];
    for (command, index) in commands {
        driver.send("sleep 50");
        driver.send(&command);
        {
            let set = WaitSet::new()
                .with(&event)
                .with(&sem)
                .with(&mutex)
                .with(&pipe);
            let signaled = set.wait_any_timeout(Duration::from_secs(20)).unwrap();
            assert_eq!(signaled.index(), index, "after `{command}`");
            assert!(!signaled.is_abandoned());
            assert_eq!(signaled.guard().is_some(), index == 2);
            driver.answer();
            driver.answer();
            if index == 2 {
                // Held by this thread now: the other process finds it busy.
                assert_eq!(driver.run(&format!("trylock {}", mutex.name())), "busy");
            }
        }
        if index == 2 {
            assert_eq!(driver.run(&format!("trylock {}", mutex.name())), "free");
        }
        if index == 3 {
            // Readiness takes nothing: the message is there to receive.
            assert_eq!(pipe.recv().unwrap(), b"hello");
            assert!(WaitSet::new().with(&pipe).try_wait_any().unwrap().is_none());
        }
    }
    // The event was reset by the wait that it ended, and the unit taken.
    assert!(!event.is_set());
    assert_eq!(sem.count(), 0);

    // The peer's end makes a connection ready too.
    driver.run(&format!("close {pipe_name}"));
    let index = WaitSet::new()
        .with(&event)
        .with(&pipe)
        .wait_any_timeout(Duration::from_secs(10))
        .unwrap()
        .index();
    assert_eq!(index, 1);
    assert!(matches!(
        pipe.recv().unwrap_err(),
        procwire::pipe::PipeError::Disconnected { .. }
    ));
}

#[test]
fn a_pipe_on_shared_memory_cannot_join_a_wait() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = format!(r"\\.\pipe\{}", unique_name("shm-wait"));
    let server = PipeOptions::new()
        .shared_memory(true)
        .create(name.as_str())
        .unwrap();
    let mut driver = Driver::start();
    driver.send(&format!("connect-shm {name}"));
    let connection = server.accept_timeout(Duration::from_secs(10)).unwrap();
    driver.answer();
    assert!(
        connection.is_shared_memory(),
        "the handshake chose shared memory"
    );
    let e = WaitSet::new().with(&connection).wait_any().unwrap_err();
    assert!(matches!(e, SyncError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("shared memory"), "{e}");
}

#[test]
fn wait_any_sees_a_mailslot_message_from_another_process() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("slot-wait");
    let slot_name = format!(r"\\.\mailslot\{name}");
    let slot = MailslotServer::create(slot_name.as_str()).unwrap();
    let quit =
        NamedEvent::create(format!("{name}-quit").as_str(), EventReset::Manual, false).unwrap();
    let mut driver = Driver::start();
    let set = WaitSet::new().with(&quit).with(&slot);
    assert!(set.try_wait_any().unwrap().is_none());
    for round in 0..3 {
        driver.send("sleep 30");
        driver.send(&format!("mail {slot_name} message-{round}"));
        let signaled = set.wait_any_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(signaled.index(), 1);
        driver.answer();
        driver.answer();
        // Readiness takes nothing: the message is there to read.
        assert_eq!(
            slot.try_read().unwrap(),
            format!("message-{round}").as_bytes()
        );
        assert!(set.try_wait_any().unwrap().is_none());
    }
    // Two waiting: still ready after one read; wait-all with the event once it is set.
    driver.run(&format!("mail {slot_name} a"));
    driver.run(&format!("mail {slot_name} b"));
    assert!(
        set.try_wait_all().unwrap().is_none(),
        "the event is not set"
    );
    driver.run(&format!("set {}", quit.name()));
    drop(set.wait_all_timeout(Duration::from_secs(10)).unwrap());
    assert_eq!(slot.read_timeout(Duration::from_secs(5)).unwrap(), b"a");
    assert_eq!(
        set.wait_any_timeout(Duration::from_secs(5))
            .unwrap()
            .index(),
        0
    );
    assert_eq!(slot.read_timeout(Duration::from_secs(5)).unwrap(), b"b");
}

#[test]
fn wait_all_mixed_objects_across_processes() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("all");
    let event = NamedEvent::create(format!("{name}-e").as_str(), EventReset::Auto, false).unwrap();
    let sem = NamedSemaphore::create(format!("{name}-s").as_str(), 0, 4).unwrap();
    let mutex = NamedMutex::create(format!("{name}-m").as_str()).unwrap();
    let mut driver = Driver::start();
    let (_server, mut pipe, pipe_name) = pipe_from(&mut driver, "all-pipe");
    driver.run(&format!("lock {}", mutex.name()));
    driver.run(&format!("set {}", event.name()));
    driver.run(&format!("release {}", sem.name()));
    driver.run(&format!("send {pipe_name} all"));

    let set = WaitSet::new()
        .with(&event)
        .with(&sem)
        .with(&mutex)
        .with(&pipe);
    // Three of four: a wait-all times out holding nothing, and takes nothing.
    let e = set
        .wait_all_timeout(Duration::from_millis(100))
        .unwrap_err();
    assert!(
        matches!(
            e,
            SyncError::WaitTimeout {
                all: true,
                count: 4,
                ..
            }
        ),
        "{e}"
    );
    assert!(event.is_set(), "the event is left set");
    assert_eq!(sem.count(), 1, "the unit is left");

    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let all = set.wait_all_timeout(Duration::from_secs(20)).unwrap();
            assert!(all.abandoned().is_empty());
            assert!(all.guard(2).is_some());
            all.into_guards().into_iter().flatten().count()
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(!waiter.is_finished(), "the mutex is still held");
        assert!(event.is_set() && sem.count() == 1, "still nothing taken");
        driver.run(&format!("unlock {}", mutex.name()));
        assert_eq!(waiter.join().unwrap(), 1, "one mutex guard");
    });
    // All taken at once: the event reset, the unit gone; the mutex is free again (the
    // guard was dropped in the waiter).
    assert!(!event.is_set());
    assert_eq!(sem.count(), 0);
    assert_eq!(driver.run(&format!("trylock {}", mutex.name())), "free");
    drop(set);
    assert_eq!(pipe.recv().unwrap(), b"all");

    // While held, the other process sees every mutex of it held.
    driver.run(&format!("set {}", event.name()));
    driver.run(&format!("release {}", sem.name()));
    let set = WaitSet::new().with(&event).with(&sem).with(&mutex);
    let all = set.wait_all_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(driver.run(&format!("trylock {}", mutex.name())), "busy");
    drop(all);
    assert_eq!(driver.run(&format!("trylock {}", mutex.name())), "free");
}

#[test]
fn wait_all_with_abandoned_mutex() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("all-abandoned");
    let mutexes: Vec<NamedMutex> = (0..3)
        .map(|i| NamedMutex::create(format!("{name}-{i}").as_str()).unwrap())
        .collect();
    let mut doomed = Driver::start();
    let mut other = Driver::start();
    let doomed_tid: u32 = doomed
        .run(&format!("lock {}", mutexes[1].name()))
        .parse()
        .unwrap();
    other.run(&format!("lock {}", mutexes[2].name()));
    let set = mutexes.iter().fold(WaitSet::new(), WaitSet::with);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let mut all = set.wait_all_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(all.abandoned(), vec![1], "the killed holder's index");
            let guard = all.guard_mut(1).unwrap();
            assert_eq!(guard.previous_owner(), doomed_tid);
            guard.mark_repaired();
            assert!(all.abandoned().is_empty());
            all.into_guards()
                .into_iter()
                .map(|g| g.is_some())
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(100));
        // Killed in the middle of the wait-all.
        doomed.0.kill();
        std::thread::sleep(Duration::from_millis(200));
        assert!(!waiter.is_finished(), "mutex 2 is still held");
        // None taken meanwhile: mutex 0 is free for anyone (another thread here).
        std::thread::scope(|t| {
            t.spawn(|| assert!(mutexes[0].try_lock().unwrap().is_some()));
        });
        // Once the last one is free, all three at once.
        other.send(&format!("unlock {}", mutexes[2].name()));
        let held = waiter.join().unwrap();
        assert_eq!(held, vec![true, true, true]);
    });
    other.answer();
    for mutex in &mutexes {
        assert_eq!(other.run(&format!("trylock {}", mutex.name())), "free");
        assert!(!mutex.lock().unwrap().is_abandoned(), "repaired");
    }
}

#[test]
fn wait_timeout_not_early() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("wait-timeout");
    let event = NamedEvent::create(format!("{name}-e").as_str(), EventReset::Auto, false).unwrap();
    let sem = NamedSemaphore::create(format!("{name}-s").as_str(), 0, 1).unwrap();
    let mutex = NamedMutex::create(format!("{name}-m").as_str()).unwrap();
    let mut driver = Driver::start();
    let (_server, pipe, _) = pipe_from(&mut driver, "timeout-pipe");
    driver.run(&format!("lock {}", mutex.name()));
    let futex_only = WaitSet::new().with(&event).with(&sem).with(&mutex);
    let mixed = WaitSet::new()
        .with(&event)
        .with(&sem)
        .with(&mutex)
        .with(&pipe);
    for set in [&futex_only, &mixed] {
        for (asked, all) in [
            (Duration::from_millis(120), false),
            (Duration::from_millis(90), true),
        ] {
            let started = Instant::now();
            let e = if all {
                set.wait_all_timeout(asked).unwrap_err()
            } else {
                set.wait_any_timeout(asked).unwrap_err()
            };
            let waited = started.elapsed();
            assert!(waited >= asked, "returned after {waited:?} of {asked:?}");
            assert!(
                matches!(e, SyncError::WaitTimeout { after, .. } if after == asked),
                "{e}"
            );
            assert!(e.to_string().contains("timed out"), "{e}");
        }
    }
}

#[test]
fn recursive_mutex_depth_1000() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("recursive");
    let mutex = MutexOptions::new()
        .recursive(true)
        .create(name.as_str())
        .unwrap();
    assert!(mutex.is_recursive());
    assert!(NamedMutex::open(name.as_str()).unwrap().is_recursive());
    let mut driver = Driver::start();
    // Another handle of the same mutex: recursion goes through it too, and through a wait.
    let again = NamedMutex::open(name.as_str()).unwrap();
    let mut guards: Vec<NamedMutexGuard<'_>> = (0..1000).map(|_| mutex.lock().unwrap()).collect();
    guards.push(again.try_lock().unwrap().unwrap());
    let set = WaitSet::new().with(&again);
    let signaled = set.wait_any_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(driver.run(&format!("trylock {name}")), "busy");
    drop(signaled);
    drop(guards.pop());
    // Every release but the last leaves it held.
    while guards.len() > 1 {
        drop(guards.pop());
        if guards.len() % 250 == 1 {
            assert_eq!(
                driver.run(&format!("trylock {name}")),
                "busy",
                "{} left",
                guards.len()
            );
        }
    }
    assert_eq!(driver.run(&format!("trylock {name}")), "busy", "one left");
    drop(guards.pop());
    assert_eq!(
        driver.run(&format!("trylock {name}")),
        "free",
        "after the last"
    );

    // Not recursive (the default): still WouldDeadlock.
    let plain = NamedMutex::create(format!("{name}-plain").as_str()).unwrap();
    assert!(!plain.is_recursive());
    let _held = plain.lock().unwrap();
    let e = plain.lock().unwrap_err();
    assert!(
        matches!(e, LockError::Failed(SyncError::WouldDeadlock { .. })),
        "{e}"
    );
    let e = WaitSet::new().with(&plain).wait_any().unwrap_err();
    assert!(matches!(e, SyncError::WouldDeadlock { .. }), "{e}");
}

#[test]
fn a_recursive_holder_killed_abandons_the_mutex_once_held_at_depth_1() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("recursive-abandoned");
    let mutex = MutexOptions::new()
        .recursive(true)
        .create(name.as_str())
        .unwrap();
    let mut doomed = Driver::start();
    for _ in 0..3 {
        doomed.run(&format!("lock-recursive {name}"));
    }
    doomed.0.kill();
    let Err(LockError::Abandoned(outer)) = mutex.lock_timeout(Duration::from_secs(10)) else {
        panic!("expected abandoned");
    };
    // The stronger rule: until repaired, every acquisition (a recursive one too) says so.
    let Err(LockError::Abandoned(mut inner)) = mutex.lock() else {
        panic!("expected abandoned again");
    };
    inner.mark_repaired();
    drop(inner);
    assert!(!mutex.lock().unwrap().is_abandoned());
    // Depth 1: one release frees it (the dead holder's three do not count).
    drop(outer);
    let mut driver = Driver::start();
    assert_eq!(driver.run(&format!("trylock {name}")), "free");
}

mod async_waits {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn async_waits_across_processes() {
        let _wd = Watchdog::new(Duration::from_secs(60));
        let name = unique_name("async");
        let event =
            NamedEvent::create(format!("{name}-e").as_str(), EventReset::Auto, false).unwrap();
        let sem = NamedSemaphore::create(format!("{name}-s").as_str(), 0, 1).unwrap();
        let mutex = NamedMutex::create(format!("{name}-m").as_str()).unwrap();
        let mut driver = Driver::start();
        let (_server, pipe, pipe_name) = pipe_from(&mut driver, "async-pipe");
        driver.run(&format!("lock {}", mutex.name()));
        runtime().block_on(async {
            driver.send("sleep 30");
            driver.send(&format!("set {}", event.name()));
            event.wait_async().await.unwrap();
            driver.send(&format!("release {}", sem.name()));
            sem.wait_async().await.unwrap();
            driver.send(&format!("unlock {}", mutex.name()));
            let guard = mutex.lock_async().await.unwrap();
            assert!(!guard.is_abandoned());
            for _ in 0..4 {
                driver.answer();
            }
            // Held for the task by a thread of this process: busy for the other one.
            assert_eq!(driver.run(&format!("trylock {}", mutex.name())), "busy");
            // A guard may move to another task.
            tokio::spawn(async move { drop(guard) }).await.unwrap();
            assert_eq!(
                driver.run(&format!("locktimeout {}", mutex.name())),
                "locked"
            );

            let set = WaitSet::new().with(&event).with(&pipe);
            let wait = set.wait_any_async();
            drop(set);
            driver.send(&format!("send {pipe_name} ping"));
            assert_eq!(wait.await.unwrap().index(), 1);
            driver.answer();
        });
    }

    /// Many rounds of a wait dropped while the other process signals: whoever took the
    /// object, it is never lost.
    #[test]
    fn dropped_async_wait_loses_nothing() {
        let _wd = Watchdog::new(Duration::from_secs(120));
        let name = unique_name("dropped");
        let event =
            NamedEvent::create(format!("{name}-e").as_str(), EventReset::Auto, false).unwrap();
        let sem = NamedSemaphore::create(format!("{name}-s").as_str(), 0, 1).unwrap();
        let mutex = NamedMutex::create(format!("{name}-m").as_str()).unwrap();
        let mut driver = Driver::start();
        let rt = runtime();
        let (mut events_taken, mut units_taken, mut locks_taken) = (0u64, 0u64, 0usize);
        const ROUNDS: u64 = 40;
        for round in 0..ROUNDS {
            // The signal comes before, at about the same time as, or after the drop; in
            // every fifth round long after it (a wait given no patience), so that drops
            // happen however slow this machine is.
            let patience = Duration::from_micros(700 * (round % 5));
            let delay = match round % 5 {
                0 => "sleep 100".to_owned(),
                _ => format!("sleep {}", round % 3),
            };
            // The event: dropped or not, it is the task's or still set for the next waiter.
            driver.send(&delay);
            driver.send(&format!("set {}", event.name()));
            let got = rt.block_on(async {
                tokio::time::timeout(patience, event.wait_async())
                    .await
                    .is_ok()
            });
            driver.answer();
            driver.answer();
            if got {
                events_taken += 1;
                assert!(!event.is_set(), "round {round}: taken and still set");
            } else {
                assert_eq!(driver.run(&format!("waitevent {}", event.name())), "got");
            }
            // The unit.
            driver.send(&delay);
            driver.send(&format!("release {}", sem.name()));
            let got = rt.block_on(async {
                tokio::time::timeout(patience, sem.wait_async())
                    .await
                    .is_ok()
            });
            driver.answer();
            driver.answer();
            if got {
                units_taken += 1;
            } else {
                assert_eq!(driver.run(&format!("waitunit {}", sem.name())), "got");
            }
            assert_eq!(sem.count(), 0, "round {round}");
            // The mutex: a dropped lock leaves it for the next locker in the other process.
            driver.run(&format!("lock {}", mutex.name()));
            driver.send(&delay);
            driver.send(&format!("unlock {}", mutex.name()));
            let got = rt.block_on(async {
                match tokio::time::timeout(patience, mutex.lock_async()).await {
                    Ok(guard) => {
                        drop(guard.unwrap());
                        true
                    }
                    Err(_) => false,
                }
            });
            driver.answer();
            driver.answer();
            locks_taken += usize::from(got);
            assert_eq!(
                driver.run(&format!("locktimeout {}", mutex.name())),
                "locked"
            );
        }
        // Both outcomes happened: the test saw drops, not only completed waits.
        eprintln!(
            "taken before the drop: {events_taken} events, {units_taken} units, {locks_taken} \
             locks of {ROUNDS}"
        );
        assert!(events_taken < ROUNDS && units_taken < ROUNDS && locks_taken < ROUNDS as usize);
        // A future dropped before it was ever polled takes nothing either.
        event.set().unwrap();
        drop(event.wait_async());
        assert!(event.is_set());
        // Nothing is left behind: the objects are as the last waiters left them.
        assert!(mutex.try_lock().unwrap().is_some());
    }
}

#[test]
fn wait_sets_refuse_bad_input() {
    let name = unique_name("wait-bad");
    let events: Vec<NamedEvent> = (0..65)
        .map(|i| {
            NamedEvent::create(format!("{name}-{i}").as_str(), EventReset::Auto, false).unwrap()
        })
        .collect();
    let e = WaitSet::new().wait_any().unwrap_err();
    assert!(matches!(e, SyncError::InvalidArgument { .. }), "{e}");
    let set = events.iter().fold(WaitSet::new(), WaitSet::with);
    let e = set.try_wait_all().unwrap_err();
    assert!(e.to_string().contains("1 to 64 objects, not 65"), "{e}");
    // 64 is fine; the last one set is the one that fires.
    let set = events[..64].iter().fold(WaitSet::new(), WaitSet::with);
    events[63].set().unwrap();
    assert_eq!(set.try_wait_any().unwrap().unwrap().index(), 63);
    assert!(set.try_wait_any().unwrap().is_none());
}
