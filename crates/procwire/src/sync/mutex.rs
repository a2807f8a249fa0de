//! The named, robust mutex.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::shared::{parse, Common, Shared};
use super::{LockError, SyncError};
use crate::name::Name;
use crate::security::AccessList;
use crate::shim::{futex, AtomicU32, AtomicU64, Deadline, Ordering};
use crate::sys::thread::{self, Liveness, ThreadId};
use crate::wire::{Lifetime, ObjectKind};

/// Where the TID sits in the owner record; the start time takes the bits below (2^42 clock
/// ticks is over a thousand years at 100 Hz).
const OWNER_TID_SHIFT: u32 = 42;

/// Set in the lock word when a thread may be asleep waiting for it.
pub(crate) const WAITERS: u32 = 1 << 31;
/// The holder's TID in the lock word. TIDs are below 2^22 (`PID_MAX_LIMIT`).
pub(crate) const TID_MASK: u32 = !WAITERS;
/// How long a waiter sleeps before it checks whether the holder still lives.
pub(crate) const LIVENESS_CHECK: Duration = Duration::from_millis(25);

/// The owner record of `id`: its TID above [`OWNER_TID_SHIFT`], its start time below.
#[inline]
fn owner_record(id: ThreadId) -> u64 {
    (u64::from(id.tid) << OWNER_TID_SHIFT) | (id.start & ((1 << OWNER_TID_SHIFT) - 1))
}

/// The start time that the owner record `record` gives for the thread `tid`: 0 (unknown)
/// when the record is about another thread.
#[inline]
fn start_of(record: u64, tid: u32) -> u64 {
    if record >> OWNER_TID_SHIFT == u64::from(tid) {
        record & ((1 << OWNER_TID_SHIFT) - 1)
    } else {
        0
    }
}

/// A mutex's shared state, at offset 64 of its page.
///
/// The protocol (Drepper's "mutex 2" with owner TIDs), which the model tests in
/// `loom_tests.rs` check:
///
/// - Lock: compare-and-swap `word` 0 → TID. If held: set [`WAITERS`] and
///   `FUTEX_WAIT(word, TID | WAITERS)` for at most [`LIVENESS_CHECK`]; a thread that takes
///   the lock after sleeping keeps [`WAITERS`] set, since others may still sleep.
/// - Unlock: clear `owner`, swap `word` to 0, `FUTEX_WAKE` one if [`WAITERS`] was set. A
///   waiter that gives up (timeout) after such a wake-up passes it on.
/// - Takeover: when a sleep runs out (or a deadline, or `try_lock` finds it held), the
///   waiter asks whether the TID in `word` still runs (`owner`'s start time counts only if
///   it names that TID); a dead holder's exact word is swapped to the waiter's TID, so one
///   waiter wins, and `abandoned` records the dead TID until `mark_repaired`.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct MutexState {
    /// The lock word: 0 when free, else the holder's TID, with [`WAITERS`] set when someone
    /// may be asleep on it.
    pub(crate) word: AtomicU32,
    /// The TID of a holder that died holding the lock, until someone marks the data
    /// repaired; 0 when consistent.
    pub(crate) abandoned: AtomicU32,
    /// Who holds the lock, as [`owner_record`] packs it: the holder's TID and its thread
    /// start time plus one ([`ThreadId::start`]); 0 while unknown. It is written just after
    /// the lock word changes hands, so for an instant it can still name the previous holder:
    /// a start time counts only when the TID beside it is the one in the lock word.
    pub(crate) owner: AtomicU64,
    /// How many times the holder of a recursive mutex has locked it again (0 for a holder
    /// that locked it once). Only the holder touches it; a takeover from a dead holder
    /// sets it back to 0.
    pub(crate) depth: AtomicU32,
    /// [`RECURSIVE`] for a recursive mutex; fixed at creation. Objects written before
    /// recursion existed have 0 here, and are not recursive.
    pub(crate) flags: AtomicU32,
}

/// In [`MutexState::flags`]: the holder may lock again.
pub(crate) const RECURSIVE: u32 = 1;

/// The most acquisitions one thread can hold of a recursive mutex (as Windows' limit).
pub(crate) const MAX_DEPTH: u32 = i32::MAX as u32;

#[cfg(not(all(loom, test)))]
const _: () = assert!(
    std::mem::size_of::<MutexState>() == 24
        && std::mem::offset_of!(MutexState, owner) == 8
        && std::mem::offset_of!(MutexState, depth) == 16
        && std::mem::offset_of!(MutexState, flags) == 20
);

// SAFETY: `MutexState` is `#[repr(C)]` and made of `AtomicU32`s and an `AtomicU64` only.
#[cfg(not(all(loom, test)))]
unsafe impl crate::sys::shm::Atomics for MutexState {}

/// Why the mutex protocol did not take the lock.
#[derive(Debug)]
pub(crate) enum NotLocked {
    /// This thread holds it.
    WouldDeadlock,
    /// The deadline passed.
    Timeout,
    /// A futex call failed.
    Io(io::Error),
}

impl MutexState {
    /// A new, unlocked state.
    #[cfg(all(loom, test))]
    pub(crate) fn new() -> MutexState {
        MutexState {
            word: AtomicU32::new(0),
            abandoned: AtomicU32::new(0),
            owner: AtomicU64::new(0),
            depth: AtomicU32::new(0),
            flags: AtomicU32::new(0),
        }
    }

    /// Whether the mutex is recursive, or what is wrong with the state.
    pub(crate) fn check(&self) -> Result<bool, String> {
        match self.flags.load(Ordering::Relaxed) {
            0 => Ok(false),
            RECURSIVE => Ok(true),
            other => Err(format!(
                "its flags are {other:#x}, not 0 or {RECURSIVE:#x} (recursive); remove it and \
                 create it again"
            )),
        }
    }

    /// Locks again a recursive mutex that this thread holds (the caller checked); `false`
    /// at [`MAX_DEPTH`].
    pub(crate) fn relock(&self) -> bool {
        let depth = self.depth.load(Ordering::Relaxed);
        if depth >= MAX_DEPTH - 1 {
            return false;
        }
        self.depth.store(depth + 1, Ordering::Relaxed);
        true
    }

    /// Whether the word says this thread holds the lock (with its owner record).
    pub(crate) fn is_mine(&self, me: ThreadId) -> bool {
        self.word.load(Ordering::Acquire) & TID_MASK == me.tid
            && self.owner.load(Ordering::Relaxed) == owner_record(me)
    }

    /// The TID in the lock word (0 when free).
    pub(crate) fn holder(&self) -> u32 {
        self.word.load(Ordering::Acquire) & TID_MASK
    }

    /// Swaps the lock word from `from` to `to`; `true` if that made us the holder.
    #[inline]
    pub(crate) fn take(&self, from: u32, to: u32) -> bool {
        self.word
            .compare_exchange(from, to, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the lock without waiting: `Ok(None)` when a live thread holds it, else whom it
    /// was taken from if that holder was dead.
    pub(crate) fn try_lock(
        &self,
        me: ThreadId,
        live: impl Fn(ThreadId) -> Liveness,
    ) -> Result<Option<Option<u32>>, NotLocked> {
        self.try_lock_with(me, 0, live)
    }

    /// As [`try_lock`](Self::try_lock); a free lock is taken with `waiters` (0, or
    /// [`WAITERS`] for a waiter that has slept on the word: others may sleep there too).
    pub(crate) fn try_lock_with(
        &self,
        me: ThreadId,
        waiters: u32,
        live: impl Fn(ThreadId) -> Liveness,
    ) -> Result<Option<Option<u32>>, NotLocked> {
        loop {
            let word = self.word.load(Ordering::Acquire);
            if word == 0 {
                if self.take(0, me.tid | waiters) {
                    return Ok(Some(self.acquired(me, None)));
                }
                continue;
            }
            self.check_not_mine(word, me)?;
            if self.holder_is_dead(word, &live) && self.take(word, me.tid | (word & WAITERS)) {
                return Ok(Some(self.acquired(me, Some(word & TID_MASK))));
            }
            return Ok(None);
        }
    }

    /// The slow path of locking: waits until `deadline`; returns whom the lock was taken
    /// from if that holder was dead.
    #[cold]
    pub(crate) fn lock_contended(
        &self,
        me: ThreadId,
        deadline: &Deadline,
        live: impl Fn(ThreadId) -> Liveness,
    ) -> Result<Option<u32>, NotLocked> {
        // Whether an unlock's wake-up reached us: it was meant for one waiter, so one that
        // gives up must pass it on.
        let mut woken = false;
        loop {
            let word = self.word.load(Ordering::Acquire);
            if word == 0 {
                // Others may be asleep: keep the flag so that our unlock wakes one.
                if self.take(0, me.tid | WAITERS) {
                    return Ok(self.acquired(me, None));
                }
                continue;
            }
            self.check_not_mine(word, me)?;
            let slice = match deadline.left() {
                None => LIVENESS_CHECK,
                Some(left) if left.is_zero() => {
                    // A dead holder is no reason to time out.
                    let waiters = word & WAITERS;
                    if self.holder_is_dead(word, &live) && self.take(word, me.tid | waiters) {
                        return Ok(self.acquired(me, Some(word & TID_MASK)));
                    }
                    if woken {
                        // The unlock that woke us cleared the waiters bit; the holder that
                        // came in first will not wake the others when it unlocks.
                        futex::wake(&self.word, 1);
                    }
                    return Err(NotLocked::Timeout);
                }
                Some(left) => left.min(LIVENESS_CHECK),
            };
            // Going to sleep: make sure the holder's unlock will wake us.
            let expected = word | WAITERS;
            if word & WAITERS == 0
                && self
                    .word
                    .compare_exchange(word, expected, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            match futex::wait(&self.word, expected, Some(slice)) {
                Ok(futex::Wake::TimedOut) => {
                    if self.holder_is_dead(expected, &live) && self.take(expected, me.tid | WAITERS)
                    {
                        return Ok(self.acquired(me, Some(expected & TID_MASK)));
                    }
                }
                Ok(futex::Wake::Woken) => woken = true,
                Ok(futex::Wake::Changed) => {}
                Err(e) => return Err(NotLocked::Io(e)),
            }
        }
    }

    /// Refuses to wait for a lock this very thread holds.
    fn check_not_mine(&self, word: u32, me: ThreadId) -> Result<(), NotLocked> {
        if word & TID_MASK == me.tid && self.owner.load(Ordering::Relaxed) == owner_record(me) {
            return Err(NotLocked::WouldDeadlock);
        }
        Ok(())
    }

    /// Whether the thread named in `word` has died while the word still says it holds the
    /// lock.
    pub(crate) fn holder_is_dead(&self, word: u32, live: impl Fn(ThreadId) -> Liveness) -> bool {
        let tid = word & TID_MASK;
        // Read after the lock word (acquire). In the instant after a holder took the lock
        // (over a dead one, say) the record may still name the previous holder, whose start
        // time says nothing about this one: then the start is unknown, and only the TID's
        // existence decides (a live thread is never judged dead).
        let record = self.owner.load(Ordering::Acquire);
        let holder = ThreadId {
            tid,
            start: start_of(record, tid),
        };
        live(holder) == Liveness::Dead && self.word.load(Ordering::Acquire) == word
    }

    /// Finishes taking the lock: records who holds it, and whether it was abandoned.
    /// Returns `taken_from_dead`.
    #[inline]
    pub(crate) fn acquired(&self, me: ThreadId, taken_from_dead: Option<u32>) -> Option<u32> {
        self.owner.store(owner_record(me), Ordering::Release);
        if let Some(dead) = taken_from_dead {
            // The dead holder's recursion ends with it.
            self.depth.store(0, Ordering::Relaxed);
            self.abandoned.store(dead.max(1), Ordering::Relaxed);
        }
        taken_from_dead
    }

    /// The TID of the holder that died holding the lock, until repaired; else 0.
    #[inline]
    pub(crate) fn abandoned_by(&self) -> u32 {
        self.abandoned.load(Ordering::Relaxed)
    }

    /// Declares the data consistent again (the holder calls this).
    pub(crate) fn mark_repaired(&self) {
        self.abandoned.store(0, Ordering::Relaxed);
    }

    /// Unlocks once: a recursive holder's inner acquisitions first, then the lock;
    /// `Err(holder)` when another thread took the lock over from us (judging us dead), so
    /// that it is theirs and stays locked.
    #[inline]
    pub(crate) fn unlock(&self, me: ThreadId) -> Result<(), u32> {
        let depth = self.depth.load(Ordering::Relaxed);
        if depth > 0 && self.word.load(Ordering::Relaxed) & TID_MASK == me.tid {
            self.depth.store(depth - 1, Ordering::Relaxed);
            return Ok(());
        }
        self.owner.store(0, Ordering::Relaxed);
        let mut current = me.tid;
        loop {
            match self
                .word
                .compare_exchange(current, 0, Ordering::Release, Ordering::Relaxed)
            {
                Ok(previous) => {
                    if previous & WAITERS != 0 {
                        futex::wake(&self.word, 1);
                    }
                    return Ok(());
                }
                Err(now) if now & TID_MASK == me.tid => current = now,
                Err(now) => return Err(now & TID_MASK),
            }
        }
    }
}

/// A mutex that processes open by name: Windows' `CreateMutex` / `OpenMutex`, robust as
/// Windows mutexes are.
///
/// It guards nothing by itself: processes agree that whoever holds it may touch some shared
/// data (usually a [`Mapping`](crate::mapping::Mapping)). Locking returns a
/// [`NamedMutexGuard`]; dropping the guard unlocks.
///
/// **Robust.** When the holding thread dies (its process is killed, say), the next locker
/// gets [`LockError::Abandoned`] — holding the lock — instead of waiting forever, as
/// `WAIT_ABANDONED` on Windows. It should repair the data and call
/// [`NamedMutexGuard::mark_repaired`]; until someone does, every locker is told. How death
/// is detected (owner TID in the futex word, a liveness check of that thread while waiting)
/// is in `docs/mapping.md`; a waiter notices within about 25 ms.
///
/// Waiting sleeps in the kernel (`futex`), and an uncontended lock and unlock is two atomic
/// instructions. The guard is not `Send`: the lock belongs to a thread.
///
/// **Recursion.** A mutex created with [`MutexOptions::recursive`] is recursive as every
/// Windows mutex is: the holding thread may lock it again (through any handle) without
/// blocking, each lock returns a guard, and the mutex is free for others only once every
/// guard is dropped (`ReleaseMutex` once per acquisition). A mutex created without it (the
/// default, and every mutex made before recursion existed) is not: locking it again from
/// the thread that holds it is [`SyncError::WouldDeadlock`], which catches the common bug
/// of re-entering a critical section that is not written to be re-entered. Recursion is a
/// property of the object, not of a handle, so every process sees the same behaviour.
///
/// Recursion and abandonment: a holder that dies holding the mutex any number of times
/// abandons it once; the next locker holds it once (depth 1). procwire keeps its stronger
/// rule rather than Windows' "reported once": every acquisition, a recursive one included,
/// reports [`LockError::Abandoned`] until someone calls [`NamedMutexGuard::mark_repaired`],
/// so no code path that locks it can miss that the data may be half-updated.
///
/// # Examples
///
/// ```no_run
/// use procwire::sync::NamedMutex;
///
/// let mutex = NamedMutex::open_or_create(r"Local\Ledger")?;
/// {
///     let _guard = mutex.lock()?;
///     // ... update the shared data ...
/// } // unlocked here
/// # Ok::<(), procwire::sync::SyncError>(())
/// ```
///
/// # References
/// - [`CreateMutexW`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-createmutexw),
///   [`WaitForSingleObject`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-waitforsingleobject)
///   (`WAIT_ABANDONED`)
/// - [`futex(2)`](https://man7.org/linux/man-pages/man2/futex.2.html),
///   [`pthread_mutexattr_setrobust(3)`](https://man7.org/linux/man-pages/man3/pthread_mutexattr_setrobust.3.html)
#[derive(Debug)]
pub struct NamedMutex {
    pub(super) shared: Arc<Shared>,
    /// Read and checked once, at open: another process cannot change it under us.
    recursive: bool,
}

/// How to create a [`NamedMutex`]: its access list and lifetime.
///
/// # Examples
///
/// ```no_run
/// use procwire::sync::{Lifetime, MutexOptions};
/// use procwire::security::{Access, AccessList};
///
/// let mutex = MutexOptions::new()
///     .access_list(AccessList::owner_only().everyone(Access::ReadWrite))
///     .lifetime(Lifetime::Persistent)
///     .create(r"Global\PrinterQueue")?;
/// # Ok::<(), procwire::sync::SyncError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MutexOptions {
    common: Common,
    recursive: bool,
}

impl MutexOptions {
    /// Owner only, [`Lifetime::RemoveOnDrop`].
    pub fn new() -> MutexOptions {
        MutexOptions::default()
    }

    /// Who may open the mutex. Only [`Access::ReadWrite`](crate::security::Access::ReadWrite)
    /// grants make sense (locking writes), to everyone or one group.
    pub fn access_list(mut self, access: AccessList) -> Self {
        self.common.access = access;
        self
    }

    /// Who removes the name, and when.
    pub fn lifetime(mut self, lifetime: Lifetime) -> Self {
        self.common.lifetime = lifetime;
        self
    }

    /// Whether the holding thread may lock the mutex again (default `false`): see
    /// [`NamedMutex`]'s *Recursion*. A create-time setting: [`open_or_create`](Self::open_or_create)
    /// of an existing mutex keeps the object's own.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use procwire::sync::MutexOptions;
    ///
    /// let mutex = MutexOptions::new().recursive(true).create(r"Local\Journal")?;
    /// let outer = mutex.lock()?;
    /// let inner = mutex.lock()?; // does not block: this thread holds it
    /// drop(inner);
    /// drop(outer); // now other threads may take it
    /// # Ok::<(), procwire::sync::SyncError>(())
    /// ```
    pub fn recursive(mut self, recursive: bool) -> Self {
        self.recursive = recursive;
        self
    }

    fn init(&self) -> impl Fn(&crate::sys::shm::Region) + '_ {
        move |region| {
            let flags = if self.recursive { RECURSIVE } else { 0 };
            region.write(
                super::shared::BODY + std::mem::offset_of!(MutexState, flags),
                &flags.to_ne_bytes(),
            );
        }
    }

    /// Creates the mutex `name`, unlocked.
    ///
    /// # Errors
    ///
    /// [`SyncError::AlreadyExists`], [`SyncError::WrongKind`] when another kind of object has
    /// the name, [`SyncError::InvalidArgument`] for an access list that cannot be expressed,
    /// [`SyncError::InvalidName`], [`SyncError::Io`].
    pub fn create<N>(&self, name: N) -> Result<NamedMutex, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        let (name, display) = parse(name, ObjectKind::Mutex)?;
        Shared::create(&name, display, ObjectKind::Mutex, &self.common, self.init())
            .and_then(NamedMutex::new)
    }

    /// Opens the mutex `name`, or creates it unlocked if nothing has the name.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`NamedMutex::open`].
    pub fn open_or_create<N>(&self, name: N) -> Result<NamedMutex, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        let (name, display) = parse(name, ObjectKind::Mutex)?;
        Shared::open_or_create(&name, display, ObjectKind::Mutex, &self.common, self.init())
            .and_then(NamedMutex::new)
    }
}

impl NamedMutex {
    /// The object on a state file received from another process (a passed handle).
    pub(crate) fn from_passed(
        data: std::os::fd::OwnedFd,
        size: u64,
        name: String,
    ) -> Result<NamedMutex, SyncError> {
        NamedMutex::new(Shared::from_passed(data, size, name, ObjectKind::Mutex)?)
    }

    /// The shared state, for passing the handle.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    fn new(shared: Shared) -> Result<NamedMutex, SyncError> {
        let recursive = shared
            .state::<MutexState>()
            .check()
            .map_err(|detail| shared.corrupt(detail))?;
        Ok(NamedMutex {
            shared: Arc::new(shared),
            recursive,
        })
    }

    /// Creates the mutex `name` with default [`MutexOptions`].
    ///
    /// # Errors
    ///
    /// As [`MutexOptions::create`].
    pub fn create<N>(name: N) -> Result<NamedMutex, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        MutexOptions::new().create(name)
    }

    /// Opens the mutex `name` (`OpenMutex`).
    ///
    /// # Errors
    ///
    /// [`SyncError::NotFound`], [`SyncError::WrongKind`], [`SyncError::AccessDenied`],
    /// [`SyncError::Corrupt`], [`SyncError::InvalidName`].
    pub fn open<N>(name: N) -> Result<NamedMutex, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        let (name, display) = parse(name, ObjectKind::Mutex)?;
        Shared::open(&name, display, ObjectKind::Mutex).and_then(NamedMutex::new)
    }

    /// Opens the mutex `name`, or creates it with default options.
    ///
    /// # Errors
    ///
    /// As [`MutexOptions::open_or_create`].
    pub fn open_or_create<N>(name: N) -> Result<NamedMutex, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        MutexOptions::new().open_or_create(name)
    }

    /// The mutex's name, in canonical form.
    pub fn name(&self) -> &str {
        self.shared.name()
    }

    /// Whether this handle created the mutex.
    pub fn created(&self) -> bool {
        self.shared.created()
    }

    /// How long the name lives.
    pub fn lifetime(&self) -> Lifetime {
        self.shared.lifetime()
    }

    /// Whether the holding thread may lock the mutex again ([`MutexOptions::recursive`]).
    pub fn is_recursive(&self) -> bool {
        self.recursive
    }

    /// Waits as long as it takes for the mutex (`WaitForSingleObject(mutex, INFINITE)`).
    /// On a recursive mutex that this thread holds, returns at once with one more guard.
    ///
    /// # Errors
    ///
    /// [`LockError::Abandoned`] (holding the lock) when a holder died holding it;
    /// [`LockError::Failed`] with [`SyncError::WouldDeadlock`] when this thread holds a
    /// mutex that is not recursive, or a recursive one 2^31 − 1 times.
    #[inline]
    pub fn lock(&self) -> Result<NamedMutexGuard<'_>, LockError<'_>> {
        let me = thread::current_thread();
        if self.state().take(0, me.tid) {
            let taken = self.state().acquired(me, None);
            return self.guard(me, taken);
        }
        self.lock_contended(me, &Deadline::never())
    }

    /// Waits at most `timeout` for the mutex.
    ///
    /// # Errors
    ///
    /// [`SyncError::Timeout`] (in [`LockError::Failed`]) when it stays held by a live thread
    /// for all of `timeout`; otherwise as [`lock`](Self::lock).
    pub fn lock_timeout(&self, timeout: Duration) -> Result<NamedMutexGuard<'_>, LockError<'_>> {
        let me = thread::current_thread();
        if self.state().take(0, me.tid) {
            let taken = self.state().acquired(me, None);
            return self.guard(me, taken);
        }
        self.lock_contended(me, &Deadline::after(timeout))
    }

    /// Takes the mutex if it is free, without waiting: `Ok(None)` when a live thread holds
    /// it. (Finding it held costs a look at the holder in `/proc`, to see whether it died.)
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock).
    pub fn try_lock(&self) -> Result<Option<NamedMutexGuard<'_>>, LockError<'_>> {
        let me = thread::current_thread();
        match self.state().try_lock(me, thread::liveness) {
            Ok(Some(taken)) => self.guard(me, taken).map(Some),
            Ok(None) => Ok(None),
            Err(NotLocked::WouldDeadlock) if self.recursive => self.relock(me).map(Some),
            Err(e) => Err(self.failure(e).into()),
        }
    }

    /// Locks again the recursive mutex that this thread holds.
    fn relock(&self, me: ThreadId) -> Result<NamedMutexGuard<'_>, LockError<'_>> {
        if self.state().relock() {
            self.guard(me, None)
        } else {
            Err(self.failure(NotLocked::WouldDeadlock).into())
        }
    }

    #[inline]
    pub(super) fn state(&self) -> &MutexState {
        self.shared.state()
    }

    #[cold]
    fn lock_contended(
        &self,
        me: ThreadId,
        deadline: &Deadline,
    ) -> Result<NamedMutexGuard<'_>, LockError<'_>> {
        match self.state().lock_contended(me, deadline, thread::liveness) {
            Ok(taken) => self.guard(me, taken),
            Err(NotLocked::WouldDeadlock) if self.recursive => self.relock(me),
            Err(e) => Err(match e {
                NotLocked::Timeout => self.shared.timeout(deadline.asked),
                e => self.failure(e),
            }
            .into()),
        }
    }

    fn failure(&self, e: NotLocked) -> SyncError {
        match e {
            NotLocked::WouldDeadlock => SyncError::WouldDeadlock {
                name: self.name().to_owned(),
            },
            NotLocked::Timeout => self.shared.timeout(Duration::ZERO),
            NotLocked::Io(e) => self.shared.io_error("cannot wait for the mutex", e),
        }
    }

    /// The guard of a lock just taken (from a dead holder, if `taken_from_dead`).
    #[inline]
    pub(super) fn guard(
        &self,
        me: ThreadId,
        taken_from_dead: Option<u32>,
    ) -> Result<NamedMutexGuard<'_>, LockError<'_>> {
        if let Some(dead) = taken_from_dead {
            tracing::warn!(mutex = %self.name(), dead_tid = dead, "took over a mutex whose holder died");
        }
        let guard = NamedMutexGuard {
            mutex: self,
            me,
            _not_send: PhantomData,
        };
        if self.state().abandoned_by() == 0 {
            Ok(guard)
        } else {
            Err(LockError::Abandoned(guard))
        }
    }

    /// The guard of a lock that a multi-object wait took for this thread.
    pub(super) fn held(&self, me: ThreadId, taken_from_dead: Option<u32>) -> NamedMutexGuard<'_> {
        match self.guard(me, taken_from_dead) {
            Ok(guard) | Err(LockError::Abandoned(guard)) => guard,
            Err(LockError::Failed(_)) => unreachable!("guard fails only as abandoned"),
        }
    }

    #[inline]
    fn unlock(&self, me: ThreadId) {
        if let Err(holder) = self.state().unlock(me) {
            // Another thread judged us dead and took the lock over: it is theirs.
            tracing::warn!(mutex = %self.name(), holder, "the mutex was taken over while this thread held it");
        }
    }
}

/// Proof that this thread holds a [`NamedMutex`]; unlocks when dropped.
///
/// Not `Send`: the lock belongs to the thread that took it (its TID is what other processes
/// check for liveness).
#[must_use = "the mutex unlocks as soon as the guard is dropped"]
pub struct NamedMutexGuard<'a> {
    mutex: &'a NamedMutex,
    me: ThreadId,
    _not_send: PhantomData<std::sync::MutexGuard<'static, ()>>,
}

impl NamedMutexGuard<'_> {
    /// The mutex held.
    pub fn mutex(&self) -> &NamedMutex {
        self.mutex
    }

    /// Whether a holder died holding the mutex and nobody has marked the data repaired
    /// since.
    pub fn is_abandoned(&self) -> bool {
        self.mutex.state().abandoned_by() != 0
    }

    /// The TID of the thread that died holding the mutex (0 if none).
    pub fn previous_owner(&self) -> u32 {
        self.mutex.state().abandoned_by()
    }

    /// Declares the shared data consistent again: later lockers get plain guards
    /// (`pthread_mutex_consistent`).
    pub fn mark_repaired(&mut self) {
        self.mutex.state().mark_repaired();
    }
}

impl Drop for NamedMutexGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.mutex.unlock(self.me);
    }
}

impl fmt::Debug for NamedMutexGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedMutexGuard")
            .field("mutex", &self.mutex.name())
            .field("tid", &self.me.tid)
            .field("abandoned", &self.is_abandoned())
            .finish()
    }
}

impl super::shared::SyncType for NamedMutex {
    const KIND: ObjectKind = ObjectKind::Mutex;
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_previous_holders_record_does_not_make_a_live_holder_dead() {
        // The instant after a takeover: the lock word names the new (live) holder, the
        // owner record still the dead one it took over from.
        let name = format!("unit-sync-takeover-{}", std::process::id());
        let mutex = NamedMutex::create(name.as_str()).unwrap();
        let exited = std::thread::spawn(thread::current_thread).join().unwrap();
        let (tx, rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let live = std::thread::spawn(move || {
            tx.send(thread::current_thread()).unwrap();
            let _ = stop_rx.recv();
        });
        let alive = rx.recv().unwrap();
        // Threads started in the same clock tick share a start time; the dead holder's
        // differs in real life.
        let dead = ThreadId {
            tid: exited.tid,
            start: alive.start + 1,
        };
        mutex
            .state()
            .word
            .store(alive.tid | WAITERS, Ordering::SeqCst);
        mutex
            .state()
            .owner
            .store(owner_record(dead), Ordering::SeqCst);
        assert!(!mutex
            .state()
            .holder_is_dead(alive.tid | WAITERS, thread::liveness));
        assert!(
            mutex.try_lock().unwrap().is_none(),
            "took the lock from a live thread"
        );
        // The record of the holder itself still counts: a different start time is death.
        let reborn = ThreadId {
            tid: alive.tid,
            start: alive.start + 1,
        };
        mutex
            .state()
            .owner
            .store(owner_record(reborn), Ordering::SeqCst);
        assert!(mutex
            .state()
            .holder_is_dead(alive.tid | WAITERS, thread::liveness));
        mutex.state().word.store(0, Ordering::SeqCst);
        mutex.state().owner.store(0, Ordering::SeqCst);
        stop_tx.send(()).unwrap();
        live.join().unwrap();
    }
}
