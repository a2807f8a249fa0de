//! The engine of the multi-object wait: what each kind of object does when a wait looks at
//! it, takes it, gives it back and sleeps on it, and the loop that ties them together.
//!
//! The engine owns what it waits on ([`Item`]: the objects' shared states behind `Arc`s,
//! duplicated descriptors), so that the same loop serves a blocking wait on the caller's
//! thread and an async wait on a background thread.
//!
//! # The loop
//!
//! 1. **Look.** Any: take the first object (lowest index) that can be taken now. All: if
//!    every object can be taken now, take them in index order; if one of them was taken by
//!    someone else in between, give back those taken (in reverse order) and go on.
//!    When nothing can be taken and the wait has several objects, yield the CPU once and
//!    look again before arming: the sleep of step 3 costs the kernel about a yield per
//!    word, and the signal often comes from the thread the yield lets run.
//! 2. **Arm.** Announce the waiter on every futex word (a semaphore's or an event's sleeper
//!    count, a mutex's waiters bit), *then* read the word: a release from then on either
//!    sees the waiter and wakes it, or is seen (the objects' own protocols, with the same
//!    fences).
//! 3. **Sleep** in `futex_waitv(2)` on all the words at once, for at most the time left
//!    (and at most [`LIVENESS_CHECK`] while a mutex is held, to notice a dead holder). With
//!    descriptor-based objects that are not ready, a helper thread polls their descriptors
//!    and, when one becomes readable, changes and wakes one more word of the wait. The
//!    descriptors are looked at once more as the sleep begins: one that became ready since
//!    the look ends a wait-any's sleep before it starts, and makes a wait-all look again.
//! 4. **Disarm**, and **pass on** wake-ups: a wake-up meant for one waiter (a semaphore
//!    unit, an auto-reset event, an unlock) that reached this wait but that it did not
//!    keep is handed to the next sleeper, so that nobody sleeps on an object that is free.
//!    Then back to 1.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::Duration;

use super::event::{EventReset, EventState};
use super::mutex::{MutexState, NotLocked, LIVENESS_CHECK, TID_MASK, WAITERS};
use super::semaphore::SemaphoreState;
use super::shared::Shared;
use super::SyncError;
use crate::shim::{fence, futex, AtomicU32, Deadline, Ordering};
use crate::sys::futex::{wait_any, WakeAny, WAITV_MAX};
use crate::sys::ready::{poll_readable, Stop, Watch};
use crate::sys::thread::{self, Liveness, ThreadId};

/// A futex-based object, shared with whoever holds a take of it.
#[derive(Debug, Clone)]
pub(crate) enum Object {
    Mutex {
        shared: Arc<Shared>,
        recursive: bool,
    },
    Semaphore {
        shared: Arc<Shared>,
        max: u32,
    },
    Event {
        shared: Arc<Shared>,
        reset: EventReset,
    },
}

/// One object of a wait.
#[derive(Debug)]
pub(crate) enum Item {
    Sync(Object),
    Ready {
        watch: Watch,
        kind: &'static str,
        name: String,
    },
}

/// What a wait took of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Took {
    /// A mutex, from a dead holder when `Some(tid)`.
    Mutex(Option<u32>),
    /// A semaphore unit.
    Unit,
    /// An auto-reset event's set state.
    AutoEvent,
    /// Nothing to give back: a manual-reset event seen set, an object seen ready.
    Nothing,
}

/// How a wait ended well.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Wait-any: the object at this index, and what was taken of it.
    Any(usize, Took),
    /// Wait-all: what was taken of each object, by index.
    All(Vec<Took>),
}

/// How a wait failed. Nothing is held after any of these.
#[derive(Debug)]
pub(crate) enum Fail {
    Timeout,
    Cancelled,
    /// The non-recursive mutex at this index is held by the waiting thread.
    WouldDeadlock(usize),
    /// A system call failed, about the object at this index if known.
    Io(Option<usize>, io::Error),
}

impl Object {
    /// The object's name.
    pub(crate) fn name(&self) -> &str {
        match self {
            Object::Mutex { shared, .. }
            | Object::Semaphore { shared, .. }
            | Object::Event { shared, .. } => shared.name(),
        }
    }

    /// What the object is: `mutex`, `semaphore`, `event`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Object::Mutex { .. } => "mutex",
            Object::Semaphore { .. } => "semaphore",
            Object::Event { .. } => "event",
        }
    }

    fn mutex(shared: &Shared) -> &MutexState {
        shared.state()
    }

    /// Takes the object if it can be taken now. `check_dead`: whether a held mutex's holder
    /// is looked up in `/proc`; `slept`: whether this waiter has slept on the words.
    fn try_take(&self, me: ThreadId, check_dead: bool, slept: bool) -> Result<Option<Took>, Fail> {
        match self {
            Object::Mutex { shared, recursive } => {
                let state = Object::mutex(shared);
                let live = |id| {
                    if check_dead {
                        thread::liveness(id)
                    } else {
                        Liveness::Alive
                    }
                };
                let waiters = if slept { WAITERS } else { 0 };
                match state.try_lock_with(me, waiters, live) {
                    Ok(Some(from_dead)) => Ok(Some(Took::Mutex(from_dead))),
                    Ok(None) => Ok(None),
                    Err(NotLocked::WouldDeadlock) if *recursive && state.relock() => {
                        Ok(Some(Took::Mutex(None)))
                    }
                    Err(NotLocked::WouldDeadlock) => Err(Fail::WouldDeadlock(usize::MAX)),
                    Err(NotLocked::Timeout) => Ok(None),
                    Err(NotLocked::Io(e)) => Err(Fail::Io(None, e)),
                }
            }
            Object::Semaphore { shared, .. } => {
                let state: &SemaphoreState = shared.state();
                Ok(state.try_wait().then_some(Took::Unit))
            }
            Object::Event { shared, reset } => {
                let state: &EventState = shared.state();
                Ok(state.try_wait(*reset).then_some(match reset {
                    EventReset::Auto => Took::AutoEvent,
                    EventReset::Manual => Took::Nothing,
                }))
            }
        }
    }

    /// Whether the object could be taken now, without taking it.
    fn available(&self, me: ThreadId, check_dead: bool) -> Result<bool, Fail> {
        match self {
            Object::Mutex { shared, recursive } => {
                let state = Object::mutex(shared);
                let word = state.word.load(Ordering::Acquire);
                if word == 0 {
                    return Ok(true);
                }
                if state.is_mine(me) {
                    return if *recursive {
                        Ok(true)
                    } else {
                        Err(Fail::WouldDeadlock(usize::MAX))
                    };
                }
                Ok(check_dead && state.holder_is_dead(word, thread::liveness))
            }
            Object::Semaphore { shared, .. } => {
                let state: &SemaphoreState = shared.state();
                Ok(state.count.load(Ordering::Acquire) > 0)
            }
            Object::Event { shared, .. } => {
                let state: &EventState = shared.state();
                Ok(state.is_set())
            }
        }
    }

    /// Gives back what a wait took, as if it had never been taken: a mutex is unlocked
    /// (once), a unit released, an auto-reset event set again. `me` is the thread that
    /// took it.
    pub(crate) fn give_back(&self, took: Took, me: ThreadId) {
        match (self, took) {
            (Object::Mutex { shared, .. }, Took::Mutex(_)) => {
                if let Err(holder) = Object::mutex(shared).unlock(me) {
                    tracing::warn!(mutex = %shared.name(), holder, "the mutex was taken over while a wait held it");
                }
            }
            (Object::Semaphore { shared, max }, Took::Unit) => {
                let state: &SemaphoreState = shared.state();
                // Refused only when releases that came while the unit was out filled the
                // count to its maximum: those would have been over-releases had the unit
                // never been taken, so the count is what it would have been.
                let _ = state.release(1, *max);
            }
            (Object::Event { shared, .. }, Took::AutoEvent) => {
                let state: &EventState = shared.state();
                // A set that came while the event was out finds it set: sets do not count,
                // so one set state is all there is to give back.
                state.set(EventReset::Auto);
            }
            _ => {}
        }
    }

    /// Announces this waiter on the object's futex word, then reads it: the word and the
    /// value to sleep on.
    fn arm(&self, me: ThreadId) -> (&AtomicU32, u32) {
        match self {
            Object::Mutex { shared, .. } => {
                let state = Object::mutex(shared);
                loop {
                    let word = state.word.load(Ordering::Acquire);
                    // Free (its next change is a lock, which wakes nobody: another object
                    // woke us, or the slice ends), or ours: nothing to announce.
                    if word == 0 || word & TID_MASK == me.tid || word & WAITERS != 0 {
                        return (&state.word, word);
                    }
                    if state
                        .word
                        .compare_exchange(
                            word,
                            word | WAITERS,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        return (&state.word, word | WAITERS);
                    }
                }
            }
            Object::Semaphore { shared, .. } => {
                let state: &SemaphoreState = shared.state();
                state.sleepers.fetch_add(1, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                (&state.count, state.count.load(Ordering::SeqCst))
            }
            Object::Event { shared, .. } => {
                let state: &EventState = shared.state();
                state.sleepers.fetch_add(1, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                (&state.word, state.word.load(Ordering::SeqCst))
            }
        }
    }

    /// Undoes [`arm`](Self::arm)'s announcement.
    fn disarm(&self) {
        match self {
            Object::Mutex { .. } => {}
            Object::Semaphore { shared, .. } => {
                let state: &SemaphoreState = shared.state();
                state.sleepers.fetch_sub(1, Ordering::SeqCst);
            }
            Object::Event { shared, .. } => {
                let state: &EventState = shared.state();
                state.sleepers.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Hands a wake-up that this waiter may have taken from the object's sleepers, but did
    /// not keep the object for, to the next sleeper.
    fn pass_on(&self) {
        match self {
            Object::Mutex { shared, .. } => {
                let state = Object::mutex(shared);
                if state.word.load(Ordering::Acquire) == 0 {
                    futex::wake(&state.word, 1);
                }
            }
            Object::Semaphore { shared, .. } => {
                let state: &SemaphoreState = shared.state();
                if state.count.load(Ordering::SeqCst) > 0
                    && state.sleepers.load(Ordering::SeqCst) > 0
                {
                    futex::wake(&state.count, 1);
                }
            }
            Object::Event { shared, reset } => {
                let state: &EventState = shared.state();
                if *reset == EventReset::Auto
                    && state.is_set()
                    && state.sleepers.load(Ordering::SeqCst) > 0
                {
                    futex::wake(&state.word, 1);
                }
            }
        }
    }

    /// Whether another thread holds this mutex (so a sleep must end in time to see whether
    /// it died).
    fn held_by_other(&self, me: ThreadId) -> bool {
        match self {
            Object::Mutex { shared, .. } => {
                let holder = Object::mutex(shared).holder();
                holder != 0 && holder != me.tid
            }
            _ => false,
        }
    }
}

impl Item {
    /// The object's name.
    pub(crate) fn name(&self) -> &str {
        match self {
            Item::Sync(object) => object.name(),
            Item::Ready { name, .. } => name,
        }
    }

    /// What the object is.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Item::Sync(object) => object.kind(),
            Item::Ready { kind, .. } => kind,
        }
    }

    fn try_take(&self, me: ThreadId, check_dead: bool, slept: bool) -> Result<Option<Took>, Fail> {
        match self {
            Item::Sync(object) => object.try_take(me, check_dead, slept),
            Item::Ready { watch, .. } => match watch.is_ready() {
                Ok(ready) => Ok(ready.then_some(Took::Nothing)),
                Err(e) => Err(Fail::Io(None, e)),
            },
        }
    }

    fn available(&self, me: ThreadId, check_dead: bool) -> Result<bool, Fail> {
        match self {
            Item::Sync(object) => object.available(me, check_dead),
            Item::Ready { watch, .. } => watch.is_ready().map_err(|e| Fail::Io(None, e)),
        }
    }

    fn give_back(&self, took: Took, me: ThreadId) {
        if let Item::Sync(object) = self {
            object.give_back(took, me);
        }
    }
}

/// Gives back everything in `took` (index, take), last taken first.
fn give_back_all(items: &[Item], took: &[Took], me: ThreadId) {
    for (item, took) in items.iter().zip(took).rev() {
        item.give_back(*took, me);
    }
}

/// Fills in the index of a failure about one object.
fn at(index: usize) -> impl Fn(Fail) -> Fail {
    move |e| match e {
        Fail::WouldDeadlock(_) => Fail::WouldDeadlock(index),
        Fail::Io(None, e) => Fail::Io(Some(index), e),
        e => e,
    }
}

/// One look at every object: the outcome if the wait is over.
fn attempt(
    items: &[Item],
    all: bool,
    me: ThreadId,
    check_dead: bool,
    slept: bool,
) -> Result<Option<Outcome>, Fail> {
    if !all {
        for (i, item) in items.iter().enumerate() {
            if let Some(took) = item.try_take(me, check_dead, slept).map_err(at(i))? {
                return Ok(Some(Outcome::Any(i, took)));
            }
        }
        return Ok(None);
    }
    // Look before taking anything: taking and giving back is seen by others.
    for (i, item) in items.iter().enumerate() {
        if !item.available(me, check_dead).map_err(at(i))? {
            return Ok(None);
        }
    }
    let mut took = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.try_take(me, check_dead, slept) {
            Ok(Some(t)) => took.push(t),
            Ok(None) => {
                give_back_all(items, &took, me);
                return Ok(None);
            }
            Err(e) => {
                give_back_all(items, &took, me);
                return Err(at(i)(e));
            }
        }
    }
    Ok(Some(Outcome::All(took)))
}

/// Passes on wake-ups of every object that the outcome did not keep.
fn pass_on(items: &[Item], kept: Option<&Outcome>) {
    for (i, item) in items.iter().enumerate() {
        let keeps = match kept {
            Some(Outcome::Any(index, _)) => *index == i,
            Some(Outcome::All(_)) => true,
            None => false,
        };
        if let (Item::Sync(object), false) = (item, keeps) {
            object.pass_on();
        }
    }
}

/// The most objects in one wait (as Windows' `MAXIMUM_WAIT_OBJECTS`); with the cancel and
/// descriptor words, well within what one `futex_waitv` watches.
pub(crate) const MAX_OBJECTS: usize = 64;
const _: () = assert!(MAX_OBJECTS + 2 <= WAITV_MAX);

/// Waits for any (`all == false`) or all of `items` until `deadline`, or until `cancel`
/// (a word of this process, 0 while the wait should go on) is set and woken.
pub(crate) fn run(
    items: &[Item],
    all: bool,
    deadline: &Deadline,
    cancel: Option<&AtomicU32>,
) -> Result<Outcome, Fail> {
    let me = thread::current_thread();
    let has_fds = items.iter().any(|i| matches!(i, Item::Ready { .. }));
    let stop = if has_fds {
        Some(Stop::new().map_err(|e| Fail::Io(None, e))?)
    } else {
        None
    };
    // The first look asks whether held mutexes' holders live, as `try_lock` does.
    let mut check_dead = true;
    let mut slept = false;
    let mut woken = false;
    let mut yielded = false;
    let mut words: Vec<(&AtomicU32, u32)> = Vec::with_capacity(items.len() + 2);
    loop {
        let outcome = attempt(items, all, me, check_dead, slept)?;
        if woken {
            pass_on(items, outcome.as_ref());
            woken = false;
        }
        if let Some(outcome) = outcome {
            return Ok(outcome);
        }
        if cancel.is_some_and(|c| c.load(Ordering::Acquire) != 0) {
            return Err(Fail::Cancelled);
        }
        let left = deadline.left();
        if left.is_some_and(|l| l.is_zero()) {
            return Err(Fail::Timeout);
        }
        if !yielded && items.len() > 1 {
            // Going to sleep costs the kernel about as much as a yield per word (it looks
            // up, queues and unqueues each one), so a wait on several first lets whoever
            // else is runnable on this CPU go first, once: the object is often signalled
            // by then, and the sleep is not needed at all.
            yielded = true;
            check_dead = false;
            std::thread::yield_now();
            continue;
        }
        yielded = false;
        words.clear();
        let mut watch_liveness = false;
        for item in items {
            if let Item::Sync(object) = item {
                words.push(object.arm(me));
                watch_liveness |= object.held_by_other(me);
            }
        }
        if could_end(items, all, me) {
            // It changed between the look and the announcement: what it changed to is
            // what the words would sleep on, and no wake-up would come for it.
            disarm(items);
            continue;
        }
        if let Some(cancel) = cancel {
            words.push((cancel, 0));
        }
        let slice = if watch_liveness {
            Some(left.map_or(LIVENESS_CHECK, |l| l.min(LIVENESS_CHECK)))
        } else {
            left
        };
        let woke = sleep(items, all, me, &words, slice, stop.as_ref());
        disarm(items);
        slept = true;
        check_dead = false;
        match woke.map_err(|e| Fail::Io(None, e))? {
            WakeAny::TimedOut => check_dead = watch_liveness,
            WakeAny::Woken(_) => woken = true,
            WakeAny::Changed => {}
        }
    }
}

/// Undoes every object's [`arm`](Object::arm).
fn disarm(items: &[Item]) {
    for item in items {
        if let Item::Sync(object) = item {
            object.disarm();
        }
    }
}

/// Whether the wait could end now, looked at after every object was armed: for a wait-any,
/// one object available; for a wait-all, every one (descriptors included). A failed look
/// counts as "could": the next attempt reports it.
fn could_end(items: &[Item], all: bool, me: ThreadId) -> bool {
    let available = |item: &Item| match item {
        Item::Sync(object) => object.available(me, false).unwrap_or(true),
        // A wait-any's sleep looks at descriptors as it starts, then polls them.
        Item::Ready { watch, .. } => all && watch.is_ready().unwrap_or(true),
    };
    if all {
        items.iter().all(available)
    } else {
        items.iter().any(available)
    }
}

/// Sleeps on `words`, and on the descriptors of the items that are not ready, for at most
/// `slice`; returns [`WakeAny::Changed`] at once when the wait could end now.
///
/// The descriptors are looked at here, after the last look of [`run`]: one that became
/// ready in between is not polled (a poll would end at once, and a wait-all waits for other
/// objects then), so it is taken into account now. A wait-any ends with it; a wait-all
/// looks at every object again, whose armed words tell of any change from then on.
fn sleep(
    items: &[Item],
    all: bool,
    me: ThreadId,
    words: &[(&AtomicU32, u32)],
    slice: Option<Duration>,
    stop: Option<&Stop>,
) -> io::Result<WakeAny> {
    let mut fds: Vec<BorrowedFd<'_>> = Vec::new();
    let mut ready_unpolled = false;
    for item in items {
        if let Item::Ready { watch, .. } = item {
            if !watch.is_ready()? {
                fds.extend(watch.fds.iter().map(AsFd::as_fd));
            } else if !all {
                return Ok(WakeAny::Changed);
            } else {
                ready_unpolled = true;
            }
        }
    }
    if ready_unpolled && could_end(items, all, me) {
        return Ok(WakeAny::Changed);
    }
    let (Some(stop), false) = (stop, fds.is_empty()) else {
        return if words.is_empty() {
            // Only ready objects (a wait-all that waits for nothing else cannot get here).
            Ok(WakeAny::Changed)
        } else {
            wait_any(words, slice)
        };
    };
    let readable = AtomicU32::new(0);
    let mut all_words = words.to_vec();
    all_words.push((&readable, 0));
    std::thread::scope(|s| {
        let poller = s.spawn(|| {
            let ready = poll_readable(&fds, Some(stop.fd()), None);
            if !matches!(ready, Ok(false)) {
                // Ready, or the poll failed: either way the waiter must look again.
                readable.store(1, Ordering::Release);
                futex::wake_all(&readable);
            }
            ready
        });
        let woke = wait_any(&all_words, slice);
        stop.signal();
        let polled = poller.join().unwrap_or(Ok(false));
        stop.reset();
        polled?;
        woke
    })
}

/// The error for a failed wait on `items`.
pub(crate) fn failure(items: &[Item], e: Fail, all: bool, asked: Duration) -> SyncError {
    match e {
        Fail::Timeout | Fail::Cancelled => SyncError::WaitTimeout {
            count: items.len(),
            all,
            after: asked,
        },
        Fail::WouldDeadlock(i) => SyncError::WouldDeadlock {
            name: items[i].name().to_owned(),
        },
        Fail::Io(Some(i), source) => SyncError::Io {
            name: items[i].name().to_owned(),
            kind: items[i].kind(),
            context: "cannot wait for it among other objects".into(),
            source,
        },
        Fail::Io(None, source) => SyncError::Io {
            name: format!("{} objects", items.len()),
            kind: "wait",
            context: "cannot wait".into(),
            source,
        },
    }
}
