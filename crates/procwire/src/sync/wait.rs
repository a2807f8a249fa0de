//! Waiting on many objects at once: Windows' `WaitForMultipleObjects`.

use std::fmt;
use std::time::Duration;

use super::waiter::{self, Item, Object, Outcome, Took, MAX_OBJECTS};
use super::{NamedEvent, NamedMutex, NamedMutexGuard, NamedSemaphore, SyncError};
use crate::mailslot::MailslotServer;
use crate::pipe::PipeConnection;
use crate::shim::Deadline;
use crate::sys::ready::ReadySource;
use crate::sys::thread;

/// One object of a [`WaitSet`], and what waiting on it means.
///
/// | object | signalled when | what a wait that it ends does to it |
/// |---|---|---|
/// | [`NamedMutex`] | free, held by a holder that died, or (recursive) held by this thread | takes it: the result holds its guard |
/// | [`NamedSemaphore`] | its count is above 0 | takes one unit |
/// | [`NamedEvent`] | set | auto reset: resets it; manual reset: nothing |
/// | [`PipeConnection`] | a receive would not wait for the first byte: bytes arrived, the peer's end, or the connection broke | nothing (receive afterwards) |
/// | [`MailslotServer`] | a message is waiting | nothing (read afterwards) |
///
/// Each converts from a reference with `into()`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Waitable<'a> {
    /// A mutex: taken by the wait.
    Mutex(&'a NamedMutex),
    /// A semaphore: one unit taken by the wait.
    Semaphore(&'a NamedSemaphore),
    /// An event: an auto-reset one is reset by the wait.
    Event(&'a NamedEvent),
    /// A pipe connection's readability.
    Pipe(&'a PipeConnection),
    /// A mailslot's waiting message.
    Mailslot(&'a MailslotServer),
}

impl<'a> From<&'a NamedMutex> for Waitable<'a> {
    fn from(mutex: &'a NamedMutex) -> Self {
        Waitable::Mutex(mutex)
    }
}

impl<'a> From<&'a NamedSemaphore> for Waitable<'a> {
    fn from(semaphore: &'a NamedSemaphore) -> Self {
        Waitable::Semaphore(semaphore)
    }
}

impl<'a> From<&'a NamedEvent> for Waitable<'a> {
    fn from(event: &'a NamedEvent) -> Self {
        Waitable::Event(event)
    }
}

impl<'a> From<&'a PipeConnection> for Waitable<'a> {
    fn from(pipe: &'a PipeConnection) -> Self {
        Waitable::Pipe(pipe)
    }
}

impl<'a> From<&'a MailslotServer> for Waitable<'a> {
    fn from(slot: &'a MailslotServer) -> Self {
        Waitable::Mailslot(slot)
    }
}

impl Waitable<'_> {
    /// The object's name.
    pub fn name(&self) -> &str {
        match self {
            Waitable::Mutex(m) => m.name(),
            Waitable::Semaphore(s) => s.name(),
            Waitable::Event(e) => e.name(),
            Waitable::Pipe(p) => ReadySource::name(*p),
            Waitable::Mailslot(s) => ReadySource::name(*s),
        }
    }

    /// What the engine waits on.
    pub(crate) fn item(&self) -> Result<Item, SyncError> {
        let ready = |source: &dyn ReadySource| {
            source
                .watch()
                .map(|watch| Item::Ready {
                    watch,
                    kind: source.kind(),
                    name: source.name().to_owned(),
                })
                .map_err(|detail| SyncError::Unsupported {
                    name: source.name().to_owned(),
                    kind: source.kind(),
                    detail,
                })
        };
        Ok(match *self {
            Waitable::Mutex(m) => Item::Sync(Object::Mutex {
                shared: m.shared.clone(),
                recursive: m.is_recursive(),
            }),
            Waitable::Semaphore(s) => Item::Sync(Object::Semaphore {
                shared: s.shared.clone(),
                max: s.max(),
            }),
            Waitable::Event(e) => Item::Sync(Object::Event {
                shared: e.shared.clone(),
                reset: e.reset_kind(),
            }),
            Waitable::Pipe(p) => ready(p)?,
            Waitable::Mailslot(s) => ready(s)?,
        })
    }
}

/// A set of objects to wait on together: `WaitForMultipleObjects`.
///
/// [`wait_any`](Self::wait_any) returns when any one object is signalled, and tells which
/// (the lowest index, when several are); [`wait_all`](Self::wait_all) when all of them are,
/// at once. Both take what they wait for, as `WaitForMultipleObjects` does: a mutex is then
/// held (by a guard in the result), a semaphore unit taken, an auto-reset event reset.
/// Pipe connections and mailslots only report readiness; receive from them afterwards.
/// At most 64 objects (Windows' `MAXIMUM_WAIT_OBJECTS`).
///
/// **Abandoned mutexes.** A mutex whose holder died is signalled, as on Windows: the wait
/// takes it and says so ([`Signaled::is_abandoned`], [`AllSignaled::abandoned`], the
/// `WAIT_ABANDONED_0 + i` of Windows), and the caller holds it and should repair the data
/// and call [`NamedMutexGuard::mark_repaired`], as after [`LockError::Abandoned`](super::LockError::Abandoned).
///
/// **All or nothing.** Linux has no call that takes several futex-based objects in one
/// step, so `wait_all` gives this guarantee instead: when it returns `Ok`, the caller holds
/// every object; when it returns an error, it holds none, and every object is as it would
/// have been had the wait never looked at it. It looks at every object first and takes
/// nothing unless all are signalled; then it takes them in index order, and if another
/// thread took one in between, it gives back those it took (a mutex unlocked, a unit
/// released, an auto-reset event set again — a `set` that came meanwhile leaves it set
/// once, as two sets with no wait between do) and sleeps again. What another process can
/// see is only that instant: a `try_lock` or a `try_wait` may fail on an object that the
/// wait is about to give back. Unlike Windows, a wait-all has no priority over waiters on
/// one of its objects, so under constant contention on one of them it may wait long.
///
/// **How it sleeps.** In the kernel, on every futex word at once (`futex_waitv(2)`, Linux
/// 5.16 or later); while a mutex is held, for at most about 25 ms at a time, to notice a
/// dead holder. Pipe connections and mailslots join the same sleep: a helper thread
/// polls their sockets (`poll(2)`, with an `eventfd` to stop it) and wakes the wait through
/// one more futex word in this process. Nothing spins. A wait on several objects that finds
/// none signalled first yields the CPU once (`sched_yield(2)`) and looks again: the kernel
/// looks up, queues and unqueues every word of a `futex_waitv`, about as much work per word
/// as one yield, and the thread that is about to signal one of them is often the one that
/// runs next on this CPU.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use procwire::sync::{EventReset, NamedEvent, WaitSet};
///
/// let work = NamedEvent::open_or_create(r"Local\WorkReady", EventReset::Auto)?;
/// let quit = NamedEvent::open_or_create(r"Local\Quit", EventReset::Manual)?;
/// let set = WaitSet::new().with(&work).with(&quit);
/// loop {
///     match set.wait_any_timeout(Duration::from_secs(5))?.index() {
///         0 => println!("work"),
///         _ => break,
///     }
/// }
/// # Ok::<(), procwire::sync::SyncError>(())
/// ```
///
/// # References
/// - [`WaitForMultipleObjects`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-waitformultipleobjects)
/// - [`futex_waitv(2)`](https://man7.org/linux/man-pages/man2/futex_waitv.2.html)
#[derive(Debug, Clone, Default)]
pub struct WaitSet<'a> {
    objects: Vec<Waitable<'a>>,
}

impl<'a> WaitSet<'a> {
    /// An empty set.
    pub fn new() -> WaitSet<'a> {
        WaitSet::default()
    }

    /// Adds an object; returns its index (the one a wait reports).
    pub fn push(&mut self, object: impl Into<Waitable<'a>>) -> usize {
        self.objects.push(object.into());
        self.objects.len() - 1
    }

    /// Adds an object (builder form); its index is the number of objects before it.
    pub fn with(mut self, object: impl Into<Waitable<'a>>) -> Self {
        self.push(object);
        self
    }

    /// How many objects the set has.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the set has no object.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The objects, by index.
    pub fn objects(&self) -> &[Waitable<'a>] {
        &self.objects
    }

    /// What the engine waits on, checked.
    pub(crate) fn items(&self) -> Result<Vec<Item>, SyncError> {
        if self.objects.is_empty() || self.objects.len() > MAX_OBJECTS {
            return Err(SyncError::InvalidArgument {
                name: "wait set".into(),
                kind: "wait",
                detail: format!(
                    "a wait takes 1 to {MAX_OBJECTS} objects, not {}",
                    self.objects.len()
                ),
            });
        }
        self.objects.iter().map(Waitable::item).collect()
    }

    /// Waits as long as it takes for any one object; see [`WaitSet`].
    ///
    /// # Errors
    ///
    /// [`SyncError::WouldDeadlock`] when a non-recursive mutex of the set is held by this
    /// thread; [`SyncError::Unsupported`] for a pipe connection on shared memory or TLS;
    /// [`SyncError::InvalidArgument`] for an empty set or one of more than 64;
    /// [`SyncError::Io`].
    pub fn wait_any(&self) -> Result<Signaled<'a>, SyncError> {
        self.any(&Deadline::never())
    }

    /// Waits at most `timeout` for any one object.
    ///
    /// # Errors
    ///
    /// [`SyncError::WaitTimeout`] (no earlier than `timeout`), or as [`wait_any`](Self::wait_any).
    pub fn wait_any_timeout(&self, timeout: Duration) -> Result<Signaled<'a>, SyncError> {
        self.any(&Deadline::after(timeout))
    }

    /// The first object signalled now, without waiting: `Ok(None)` when none is.
    ///
    /// # Errors
    ///
    /// As [`wait_any`](Self::wait_any).
    pub fn try_wait_any(&self) -> Result<Option<Signaled<'a>>, SyncError> {
        match self.any(&Deadline::after(Duration::ZERO)) {
            Ok(signaled) => Ok(Some(signaled)),
            Err(SyncError::WaitTimeout { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits as long as it takes until every object is signalled at once, and takes them
    /// all; see [`WaitSet`] for the all-or-nothing guarantee.
    ///
    /// # Errors
    ///
    /// As [`wait_any`](Self::wait_any); nothing is held after an error.
    pub fn wait_all(&self) -> Result<AllSignaled<'a>, SyncError> {
        self.all(&Deadline::never())
    }

    /// Waits at most `timeout` until every object is signalled at once.
    ///
    /// # Errors
    ///
    /// [`SyncError::WaitTimeout`] (no earlier than `timeout`, holding nothing), or as
    /// [`wait_all`](Self::wait_all).
    pub fn wait_all_timeout(&self, timeout: Duration) -> Result<AllSignaled<'a>, SyncError> {
        self.all(&Deadline::after(timeout))
    }

    /// Takes every object if all are signalled now, without waiting: `Ok(None)` (holding
    /// nothing) when one is not.
    ///
    /// # Errors
    ///
    /// As [`wait_all`](Self::wait_all).
    pub fn try_wait_all(&self) -> Result<Option<AllSignaled<'a>>, SyncError> {
        match self.all(&Deadline::after(Duration::ZERO)) {
            Ok(signaled) => Ok(Some(signaled)),
            Err(SyncError::WaitTimeout { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn any(&self, deadline: &Deadline) -> Result<Signaled<'a>, SyncError> {
        let items = self.items()?;
        match waiter::run(&items, false, deadline, None) {
            Ok(Outcome::Any(index, took)) => Ok(Signaled {
                index,
                guard: self.guard(index, took),
            }),
            Ok(Outcome::All(_)) => unreachable!("a wait-any ends with one object"),
            Err(e) => Err(waiter::failure(&items, e, false, deadline.asked)),
        }
    }

    fn all(&self, deadline: &Deadline) -> Result<AllSignaled<'a>, SyncError> {
        let items = self.items()?;
        match waiter::run(&items, true, deadline, None) {
            Ok(Outcome::All(took)) => Ok(AllSignaled {
                guards: took
                    .into_iter()
                    .enumerate()
                    .map(|(i, took)| self.guard(i, took))
                    .collect(),
            }),
            Ok(Outcome::Any(..)) => unreachable!("a wait-all ends with every object"),
            Err(e) => Err(waiter::failure(&items, e, true, deadline.asked)),
        }
    }

    /// The guard of a mutex that the wait took for this thread.
    fn guard(&self, index: usize, took: Took) -> Option<NamedMutexGuard<'a>> {
        match (self.objects[index], took) {
            (Waitable::Mutex(mutex), Took::Mutex(from_dead)) => {
                Some(mutex.held(thread::current_thread(), from_dead))
            }
            _ => None,
        }
    }
}

/// What ended a [`WaitSet::wait_any`]: which object, and the guard of a mutex it took.
#[must_use = "a mutex that the wait took is unlocked as soon as this is dropped"]
pub struct Signaled<'a> {
    index: usize,
    guard: Option<NamedMutexGuard<'a>>,
}

impl<'a> Signaled<'a> {
    /// The index of the object that ended the wait (`WAIT_OBJECT_0 + index`).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Whether that object is a mutex whose holder died holding it, which this thread now
    /// holds (`WAIT_ABANDONED_0 + index`): repair, then [`NamedMutexGuard::mark_repaired`].
    pub fn is_abandoned(&self) -> bool {
        self.guard
            .as_ref()
            .is_some_and(NamedMutexGuard::is_abandoned)
    }

    /// The guard of the mutex taken, when the object is a mutex.
    pub fn guard(&self) -> Option<&NamedMutexGuard<'a>> {
        self.guard.as_ref()
    }

    /// The guard of the mutex taken, to [mark it repaired](NamedMutexGuard::mark_repaired).
    pub fn guard_mut(&mut self) -> Option<&mut NamedMutexGuard<'a>> {
        self.guard.as_mut()
    }

    /// The guard of the mutex taken, to keep it held beyond this value.
    pub fn into_guard(self) -> Option<NamedMutexGuard<'a>> {
        self.guard
    }
}

impl fmt::Debug for Signaled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signaled")
            .field("index", &self.index)
            .field("guard", &self.guard)
            .finish()
    }
}

/// What a [`WaitSet::wait_all`] took: the guards of its mutexes, by index.
#[must_use = "the mutexes that the wait took are unlocked as soon as this is dropped"]
pub struct AllSignaled<'a> {
    guards: Vec<Option<NamedMutexGuard<'a>>>,
}

impl<'a> AllSignaled<'a> {
    /// The indexes of the mutexes whose holder died holding them, which this thread now
    /// holds (Windows reports one of them as `WAIT_ABANDONED_0 + index`; this lists all).
    pub fn abandoned(&self) -> Vec<usize> {
        self.guards
            .iter()
            .enumerate()
            .filter(|(_, g)| g.as_ref().is_some_and(NamedMutexGuard::is_abandoned))
            .map(|(i, _)| i)
            .collect()
    }

    /// The guard of the mutex at `index` (`None` for other kinds, or an index out of range).
    pub fn guard(&self, index: usize) -> Option<&NamedMutexGuard<'a>> {
        self.guards.get(index)?.as_ref()
    }

    /// The guard of the mutex at `index`, to [mark it repaired](NamedMutexGuard::mark_repaired).
    pub fn guard_mut(&mut self, index: usize) -> Option<&mut NamedMutexGuard<'a>> {
        self.guards.get_mut(index)?.as_mut()
    }

    /// The guards, by index (`None` where the object is not a mutex).
    pub fn into_guards(self) -> Vec<Option<NamedMutexGuard<'a>>> {
        self.guards
    }
}

impl fmt::Debug for AllSignaled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllSignaled")
            .field("guards", &self.guards)
            .finish()
    }
}
