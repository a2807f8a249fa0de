//! Async waits on the sync objects and on wait sets, as tokio futures (feature `tokio`):
//! the equivalent of `RegisterWaitForSingleObject` and overlapped waits.
//!
//! # How
//!
//! The objects are futex words in shared memory, which no reactor watches, and a mutex
//! belongs to a thread (its TID is what other processes check for liveness). So each async
//! wait runs the blocking engine of [`WaitSet`] on a thread of tokio's blocking pool
//! (`spawn_blocking`): the runtime's own threads never wait and never spin. The wait also
//! sleeps on a word of this process that the future sets and wakes when it is dropped, so
//! a dropped wait ends at once.
//!
//! A mutex that an async wait takes is held by that pool thread, which stays parked (in a
//! channel receive, not spinning) until the [`AsyncMutexGuard`] is dropped, then unlocks
//! it; if this process dies, the thread dies with it, and the mutex is abandoned as it
//! should be.
//!
//! # Cancel safety
//!
//! Every future here is cancel-safe: dropping it (at any `.await`, in a `select!`, under a
//! `tokio::time::timeout`) takes nothing and loses no wake-up. The wait is cancelled; if
//! the pool thread took objects before it noticed, or after the future was dropped but
//! before the result was delivered, it gives them back as [`WaitSet::wait_all`] gives back
//! a partial take — a mutex unlocked, a semaphore unit released, an auto-reset event set
//! again — so that the next waiter gets them. A wake-up that reached the cancelled wait is
//! passed on to the next sleeper. Timeouts are therefore just `tokio::time::timeout`.

use std::fmt;
use std::future::Future;
use std::sync::mpsc;
use std::sync::Arc;

use super::waiter::{self, Item, Object, Outcome, Took};
use super::{NamedEvent, NamedMutex, NamedSemaphore, SyncError, WaitSet};
use crate::shim::{AtomicU32, Deadline, Ordering};
use crate::sys::futex;
use crate::sys::thread::{self, ThreadId};

/// A [`NamedMutex`] held for an async task: what [`NamedMutex::lock_async`] and the async
/// waits of a [`WaitSet`] return. `Send` and `'static`: it may move between tasks and
/// threads. Dropping it unlocks (once, for a recursive mutex).
///
/// The lock is held by a thread of tokio's blocking pool that waits for this guard's drop
/// (see the module docs), so other processes see a live holder for as long as it lives.
#[must_use = "the mutex unlocks as soon as the guard is dropped"]
pub struct AsyncMutexGuard {
    index: usize,
    name: String,
    state: Object,
    release: mpsc::Sender<usize>,
}

impl AsyncMutexGuard {
    fn mutex(&self) -> &super::mutex::MutexState {
        match &self.state {
            Object::Mutex { shared, .. } => shared.state(),
            _ => unreachable!("an async mutex guard guards a mutex"),
        }
    }

    /// The name of the mutex held.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a holder died holding the mutex and nobody has marked the data repaired
    /// since.
    pub fn is_abandoned(&self) -> bool {
        self.mutex().abandoned_by() != 0
    }

    /// The TID of the thread that died holding the mutex (0 if none).
    pub fn previous_owner(&self) -> u32 {
        self.mutex().abandoned_by()
    }

    /// Declares the shared data consistent again (as [`NamedMutexGuard::mark_repaired`](super::NamedMutexGuard::mark_repaired)).
    pub fn mark_repaired(&mut self) {
        self.mutex().mark_repaired();
    }
}

impl Drop for AsyncMutexGuard {
    fn drop(&mut self) {
        // The holding thread unlocks; it is gone only if it already unlocked everything.
        let _ = self.release.send(self.index);
    }
}

impl fmt::Debug for AsyncMutexGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncMutexGuard")
            .field("mutex", &self.name)
            .field("abandoned", &self.is_abandoned())
            .finish()
    }
}

/// Why [`NamedMutex::lock_async`] did not simply return a guard: as [`LockError`](super::LockError),
/// the abandoned case holds the lock.
pub enum AsyncLockError {
    /// The previous holder died holding the lock (`WAIT_ABANDONED`); it is now held by
    /// this guard. Repair, then [`AsyncMutexGuard::mark_repaired`].
    Abandoned(AsyncMutexGuard),
    /// The lock was not taken.
    Failed(SyncError),
}

impl From<AsyncLockError> for SyncError {
    fn from(e: AsyncLockError) -> Self {
        match e {
            AsyncLockError::Abandoned(guard) => SyncError::Abandoned {
                name: guard.name().to_owned(),
                previous_owner: guard.previous_owner(),
            },
            AsyncLockError::Failed(e) => e,
        }
    }
}

impl fmt::Debug for AsyncLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsyncLockError::Abandoned(guard) => f.debug_tuple("Abandoned").field(guard).finish(),
            AsyncLockError::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

impl fmt::Display for AsyncLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsyncLockError::Abandoned(guard) => write!(
                f,
                "mutex `{}` was abandoned: thread {} died while holding it; this task now \
                 holds it and should repair the data, then call mark_repaired",
                guard.name(),
                guard.previous_owner()
            ),
            AsyncLockError::Failed(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AsyncLockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AsyncLockError::Abandoned(_) => None,
            AsyncLockError::Failed(e) => Some(e),
        }
    }
}

/// What ended a [`WaitSet::wait_any_async`]: which object, and the guard of a mutex it took.
#[derive(Debug)]
#[must_use = "a mutex that the wait took is unlocked as soon as this is dropped"]
pub struct AsyncSignaled {
    index: usize,
    guard: Option<AsyncMutexGuard>,
}

impl AsyncSignaled {
    /// The index of the object that ended the wait.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Whether that object is a mutex whose holder died holding it, which this task now
    /// holds.
    pub fn is_abandoned(&self) -> bool {
        self.guard
            .as_ref()
            .is_some_and(AsyncMutexGuard::is_abandoned)
    }

    /// The guard of the mutex taken, to [mark it repaired](AsyncMutexGuard::mark_repaired).
    pub fn guard_mut(&mut self) -> Option<&mut AsyncMutexGuard> {
        self.guard.as_mut()
    }

    /// The guard of the mutex taken, when the object is a mutex.
    pub fn into_guard(self) -> Option<AsyncMutexGuard> {
        self.guard
    }
}

/// What a [`WaitSet::wait_all_async`] took: the guards of its mutexes, by index.
#[derive(Debug)]
#[must_use = "the mutexes that the wait took are unlocked as soon as this is dropped"]
pub struct AsyncAllSignaled {
    guards: Vec<Option<AsyncMutexGuard>>,
}

impl AsyncAllSignaled {
    /// The indexes of the mutexes whose holder died holding them, which this task now holds.
    pub fn abandoned(&self) -> Vec<usize> {
        self.guards
            .iter()
            .enumerate()
            .filter(|(_, g)| g.as_ref().is_some_and(AsyncMutexGuard::is_abandoned))
            .map(|(i, _)| i)
            .collect()
    }

    /// The guard of the mutex at `index`, to [mark it repaired](AsyncMutexGuard::mark_repaired).
    pub fn guard_mut(&mut self, index: usize) -> Option<&mut AsyncMutexGuard> {
        self.guards.get_mut(index)?.as_mut()
    }

    /// The guards, by index (`None` where the object is not a mutex).
    pub fn into_guards(self) -> Vec<Option<AsyncMutexGuard>> {
        self.guards
    }
}

/// Semaphore units and auto-reset events that a wait took and has not delivered yet:
/// given back if dropped undelivered.
struct Undelivered {
    taken: Vec<(Object, Took)>,
    by: ThreadId,
}

impl Drop for Undelivered {
    fn drop(&mut self) {
        for (object, took) in self.taken.drain(..).rev() {
            object.give_back(took, self.by);
        }
    }
}

/// What the waiting thread hands to the future.
struct Delivery {
    outcome: Outcome,
    guards: Vec<Option<AsyncMutexGuard>>,
    undelivered: Undelivered,
}

/// Cancels the wait when the future is dropped.
struct CancelOnDrop(Arc<AtomicU32>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(1, Ordering::Release);
        futex::wake_all(&self.0);
    }
}

/// Runs the wait on `items` on a thread of the blocking pool.
fn run(items: Vec<Item>, all: bool) -> impl Future<Output = Result<Delivery, SyncError>> {
    let cancel = Arc::new(AtomicU32::new(0));
    let on_drop = CancelOnDrop(Arc::clone(&cancel));
    let (tx, rx) = ::tokio::sync::oneshot::channel();
    let count = items.len();
    let spawned = ::tokio::task::spawn_blocking(move || hold(items, all, &cancel, tx));
    drop(spawned);
    async move {
        let _cancel = on_drop;
        let delivery = rx.await.map_err(|_| SyncError::Io {
            name: format!("{count} objects"),
            kind: "wait",
            context: "the waiting thread ended without an answer".into(),
            source: std::io::Error::other("the blocking pool dropped the wait"),
        })?;
        let mut delivery = delivery?;
        // Delivered: what was taken is the caller's now.
        delivery.undelivered.taken.clear();
        Ok(delivery)
    }
}

/// The waiting thread: waits, delivers, and holds the mutexes taken until their guards are
/// dropped.
fn hold(
    items: Vec<Item>,
    all: bool,
    cancel: &AtomicU32,
    tx: ::tokio::sync::oneshot::Sender<Result<Delivery, SyncError>>,
) {
    let outcome = match waiter::run(&items, all, &Deadline::never(), Some(cancel)) {
        Ok(outcome) => outcome,
        Err(e) => {
            let _ = tx.send(Err(waiter::failure(
                &items,
                e,
                all,
                std::time::Duration::MAX,
            )));
            return;
        }
    };
    let me = thread::current_thread();
    let takes: Vec<(usize, Took)> = match &outcome {
        Outcome::Any(index, took) => vec![(*index, *took)],
        Outcome::All(took) => took.iter().copied().enumerate().collect(),
    };
    let (release, released) = mpsc::channel();
    let mut guards: Vec<Option<AsyncMutexGuard>> = items.iter().map(|_| None).collect();
    let mut held = Vec::new();
    let mut undelivered = Undelivered {
        taken: Vec::new(),
        by: me,
    };
    for (index, took) in takes {
        let Item::Sync(object) = &items[index] else {
            continue;
        };
        match took {
            Took::Mutex(from_dead) => {
                if let Some(dead) = from_dead {
                    tracing::warn!(mutex = %object.name(), dead_tid = dead, "took over a mutex whose holder died");
                }
                held.push(index);
                guards[index] = Some(AsyncMutexGuard {
                    index,
                    name: object.name().to_owned(),
                    state: object.clone(),
                    release: release.clone(),
                });
            }
            Took::Nothing => {}
            took => undelivered.taken.push((object.clone(), took)),
        }
    }
    drop(release);
    // Undelivered (the future is gone), the delivery is dropped here: its guards ask for
    // their mutexes to be unlocked, its units and events are given back.
    let _ = tx.send(Ok(Delivery {
        outcome,
        guards,
        undelivered,
    }));
    while !held.is_empty() {
        let index = match released.recv() {
            Ok(index) => index,
            // Every guard is gone: unlock what is left.
            Err(_) => held[0],
        };
        if let Some(at) = held.iter().position(|&i| i == index) {
            held.swap_remove(at);
            if let Item::Sync(object) = &items[index] {
                object.give_back(Took::Mutex(None), me);
            }
        }
    }
}

impl WaitSet<'_> {
    /// [`wait_any`](Self::wait_any) as a future, cancel-safe (see the `sync` module's async
    /// section). The future owns what it needs: it may outlive the set and be spawned.
    ///
    /// # Errors
    ///
    /// As [`wait_any`](Self::wait_any); errors found before waiting (an unsupported
    /// object) come from the first poll.
    pub fn wait_any_async(
        &self,
    ) -> impl Future<Output = Result<AsyncSignaled, SyncError>> + Send + 'static {
        let items = self.items();
        async move {
            let mut delivery = run(items?, false).await?;
            match delivery.outcome {
                Outcome::Any(index, _) => Ok(AsyncSignaled {
                    index,
                    guard: delivery.guards[index].take(),
                }),
                Outcome::All(_) => unreachable!("a wait-any ends with one object"),
            }
        }
    }

    /// [`wait_all`](Self::wait_all) as a future, cancel-safe: dropped, it holds nothing.
    ///
    /// # Errors
    ///
    /// As [`wait_all`](Self::wait_all).
    pub fn wait_all_async(
        &self,
    ) -> impl Future<Output = Result<AsyncAllSignaled, SyncError>> + Send + 'static {
        let items = self.items();
        async move {
            let delivery = run(items?, true).await?;
            Ok(AsyncAllSignaled {
                guards: delivery.guards,
            })
        }
    }
}

impl NamedMutex {
    /// [`lock`](Self::lock) as a future, cancel-safe: a dropped future leaves the mutex
    /// unlocked, and the next waiter gets it. The lock is held by a thread of tokio's
    /// blocking pool until the guard is dropped (see [`AsyncMutexGuard`]); a recursive
    /// mutex held by the calling thread is therefore *not* taken again through this, but
    /// waited for. Needs a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`AsyncLockError::Abandoned`] (holding the lock) when a holder died holding it.
    pub fn lock_async(
        &self,
    ) -> impl Future<Output = Result<AsyncMutexGuard, AsyncLockError>> + Send + 'static {
        let set = WaitSet::new().with(self);
        let wait = set.wait_any_async();
        async move {
            let signaled = wait.await.map_err(AsyncLockError::Failed)?;
            let abandoned = signaled.is_abandoned();
            let guard = signaled.into_guard().expect("a mutex wait holds the mutex");
            if abandoned {
                Err(AsyncLockError::Abandoned(guard))
            } else {
                Ok(guard)
            }
        }
    }
}

impl NamedSemaphore {
    /// [`wait`](Self::wait) (take one unit) as a future, cancel-safe: a dropped future takes
    /// no unit. Needs a tokio runtime.
    ///
    /// # Errors
    ///
    /// Only [`SyncError::Io`] for failures that correct use cannot cause.
    pub fn wait_async(&self) -> impl Future<Output = Result<(), SyncError>> + Send + 'static {
        let wait = WaitSet::new().with(self).wait_any_async();
        async move { wait.await.map(drop) }
    }
}

impl NamedEvent {
    /// [`wait`](Self::wait) as a future, cancel-safe: a dropped future leaves an
    /// auto-reset event set for the next waiter. Needs a tokio runtime.
    ///
    /// # Errors
    ///
    /// Only [`SyncError::Io`] for failures that correct use cannot cause.
    pub fn wait_async(&self) -> impl Future<Output = Result<(), SyncError>> + Send + 'static {
        let wait = WaitSet::new().with(self).wait_any_async();
        async move { wait.await.map(drop) }
    }
}
