//! The named counting semaphore.

use std::io;
use std::mem::offset_of;
use std::time::Duration;

use super::shared::{parse, Common, Shared, BODY};
use super::SyncError;
use crate::name::Name;
use crate::security::AccessList;
use crate::shim::{fence, futex, AtomicU32, Deadline, Ordering};
use crate::wire::{Lifetime, ObjectKind};

/// The largest maximum count (the kernel reads a wake-up count as an `int`).
const MAX_LIMIT: u32 = i32::MAX as u32;

/// A semaphore's shared state, at offset 64 of its page.
///
/// The protocol, which the model tests in `loom_tests.rs` check:
///
/// - `wait` takes a unit by compare-and-swap of a positive `count` to one less. Failing
///   that, it adds itself to `sleepers`, *then* reads `count`, and sleeps only while that
///   is 0 (`FUTEX_WAIT(count, 0)`).
/// - `release(n)` adds `n` by compare-and-swap unless the sum would pass `max` (then
///   nothing changes), *then* reads `sleepers`, and wakes `n` sleepers if there are any.
///   Each side writes one word and reads the other, with a `fence(SeqCst)` between: either
///   the release sees the sleeper, or the sleeper sees the count.
/// - `count` never goes below 0 (only a positive count is decremented) nor above `max`.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SemaphoreState {
    /// The count: the futex word waiters sleep on while it is 0.
    pub(crate) count: AtomicU32,
    /// The maximum count, fixed at creation (1 to `i32::MAX`).
    pub(crate) max: AtomicU32,
    /// How many threads are (about to be) asleep on the count; releases skip the wake-up
    /// system call when it is 0.
    pub(crate) sleepers: AtomicU32,
}

#[cfg(not(all(loom, test)))]
const _: () = assert!(
    std::mem::size_of::<SemaphoreState>() == 12 && offset_of!(SemaphoreState, sleepers) == 8
);

// SAFETY: `SemaphoreState` is `#[repr(C)]` and made of `AtomicU32`s only.
#[cfg(not(all(loom, test)))]
unsafe impl crate::sys::shm::Atomics for SemaphoreState {}

/// A release that would pass the maximum: the count it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverRelease {
    pub(crate) count: u32,
}

impl SemaphoreState {
    /// A new state, as `create` writes it.
    #[cfg(all(loom, test))]
    pub(crate) fn new(initial: u32, max: u32) -> SemaphoreState {
        SemaphoreState {
            count: AtomicU32::new(initial),
            max: AtomicU32::new(max),
            sleepers: AtomicU32::new(0),
        }
    }

    /// The maximum count, or what is wrong with the state.
    pub(crate) fn check(&self) -> Result<u32, String> {
        let max = self.max.load(Ordering::Relaxed);
        let count = self.count.load(Ordering::Relaxed);
        if max == 0 || max > MAX_LIMIT {
            return Err(format!(
                "its maximum count is {max}, outside 1 to {MAX_LIMIT}; remove it and create it \
                 again"
            ));
        }
        if count > max {
            return Err(format!(
                "its count {count} is above its maximum {max}; remove it and create it again"
            ));
        }
        Ok(max)
    }

    /// Takes one unit if there is one.
    pub(crate) fn try_wait(&self) -> bool {
        let mut now = self.count.load(Ordering::Relaxed);
        while now > 0 {
            match self.count.compare_exchange_weak(
                now,
                now - 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => now = actual,
            }
        }
        false
    }

    /// Takes one unit, waiting until `deadline`: `Ok(false)` on timeout.
    pub(crate) fn wait(&self, deadline: &Deadline) -> io::Result<bool> {
        loop {
            // Always try before looking at the clock: a wake-up that raced the timeout
            // still gets its unit.
            if self.try_wait() {
                return Ok(true);
            }
            let left = deadline.left();
            if left.is_some_and(|l| l.is_zero()) {
                return Ok(false);
            }
            // Announce the sleeper, then look again (release does the mirror image): either
            // the release sees us and wakes us, or we see its count.
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let woke = if self.count.load(Ordering::SeqCst) == 0 {
                futex::wait(&self.count, 0, left)
            } else {
                Ok(futex::Wake::Changed)
            };
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            woke?;
        }
    }

    /// Gives back `n` (at least 1) units, never passing `max`; returns the count before.
    pub(crate) fn release(&self, n: u32, max: u32) -> Result<u32, OverRelease> {
        let mut before = self.count.load(Ordering::Relaxed);
        loop {
            let Some(after) = before.checked_add(n).filter(|&after| after <= max) else {
                return Err(OverRelease { count: before });
            };
            match self.count.compare_exchange_weak(
                before,
                after,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => before = actual,
            }
        }
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            futex::wake(&self.count, n);
        }
        Ok(before)
    }
}

/// A counting semaphore that processes open by name: Windows' `CreateSemaphore` /
/// `OpenSemaphore`.
///
/// Each [`wait`](Self::wait) takes one unit, sleeping in the kernel (`futex`) while the count
/// is 0; [`release`](Self::release) gives units back, up to the maximum fixed at creation,
/// and wakes as many waiters, in any process.
///
/// # Examples
///
/// ```no_run
/// use procwire::sync::NamedSemaphore;
///
/// // At most 4 workers at a time, across processes.
/// let slots = NamedSemaphore::open_or_create(r"Local\Workers", 4, 4)?;
/// slots.wait()?;
/// // ... work ...
/// let before = slots.release(1)?;
/// # Ok::<(), procwire::sync::SyncError>(())
/// ```
///
/// # References
/// - [`CreateSemaphoreW`](https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-createsemaphorew),
///   [`ReleaseSemaphore`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-releasesemaphore)
/// - [`futex(2)`](https://man7.org/linux/man-pages/man2/futex.2.html)
#[derive(Debug)]
pub struct NamedSemaphore {
    pub(super) shared: std::sync::Arc<Shared>,
    /// Read and checked once, at open: another process cannot change it under us.
    max: u32,
}

/// How to create a [`NamedSemaphore`]: its initial and maximum counts, access list and
/// lifetime.
///
/// # Examples
///
/// ```no_run
/// use procwire::sync::SemaphoreOptions;
///
/// let items = SemaphoreOptions::new(0, 1024).create(r"Local\QueueItems")?;
/// # Ok::<(), procwire::sync::SyncError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SemaphoreOptions {
    initial: u32,
    max: u32,
    common: Common,
}

impl SemaphoreOptions {
    /// A semaphore that starts with `initial` units and never holds more than `max`; owner
    /// only, [`Lifetime::RemoveOnDrop`].
    pub fn new(initial: u32, max: u32) -> SemaphoreOptions {
        SemaphoreOptions {
            initial,
            max,
            common: Common::default(),
        }
    }

    /// Who may open the semaphore. Only [`Access::ReadWrite`](crate::security::Access::ReadWrite)
    /// grants make sense (waiting writes), to everyone or one group.
    pub fn access_list(mut self, access: AccessList) -> Self {
        self.common.access = access;
        self
    }

    /// Who removes the name, and when.
    pub fn lifetime(mut self, lifetime: Lifetime) -> Self {
        self.common.lifetime = lifetime;
        self
    }

    fn check(&self, display: &str) -> Result<(), SyncError> {
        let problem = if self.max == 0 {
            "a maximum count of 0 would never let anyone through; give at least 1".to_owned()
        } else if self.max > MAX_LIMIT {
            format!(
                "a maximum count of {} is above the limit of {MAX_LIMIT}",
                self.max
            )
        } else if self.initial > self.max {
            format!(
                "the initial count {} is above the maximum {}",
                self.initial, self.max
            )
        } else {
            return Ok(());
        };
        Err(SyncError::InvalidArgument {
            name: display.to_owned(),
            kind: "semaphore",
            detail: problem,
        })
    }

    fn init(&self) -> impl Fn(&crate::sys::shm::Region) + '_ {
        move |region| {
            let at = |field| BODY + field;
            region.write(
                at(offset_of!(SemaphoreState, count)),
                &self.initial.to_ne_bytes(),
            );
            region.write(at(offset_of!(SemaphoreState, max)), &self.max.to_ne_bytes());
        }
    }

    /// Creates the semaphore `name`.
    ///
    /// # Errors
    ///
    /// [`SyncError::InvalidArgument`] when `max` is 0 or above `i32::MAX`, or `initial` is
    /// above `max`; otherwise as [`MutexOptions::create`](super::MutexOptions::create).
    pub fn create<N>(&self, name: N) -> Result<NamedSemaphore, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        let (name, display) = parse(name, ObjectKind::Semaphore)?;
        self.check(&display)?;
        Shared::create(
            &name,
            display,
            ObjectKind::Semaphore,
            &self.common,
            self.init(),
        )
        .and_then(NamedSemaphore::new)
    }

    /// Opens the semaphore `name`, or creates it with these counts if nothing has the name.
    /// An existing semaphore keeps its own counts.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`NamedSemaphore::open`].
    pub fn open_or_create<N>(&self, name: N) -> Result<NamedSemaphore, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        let (name, display) = parse(name, ObjectKind::Semaphore)?;
        self.check(&display)?;
        Shared::open_or_create(
            &name,
            display,
            ObjectKind::Semaphore,
            &self.common,
            self.init(),
        )
        .and_then(NamedSemaphore::new)
    }
}

impl NamedSemaphore {
    /// The object on a state file received from another process (a passed handle).
    pub(crate) fn from_passed(
        data: std::os::fd::OwnedFd,
        size: u64,
        name: String,
    ) -> Result<NamedSemaphore, SyncError> {
        NamedSemaphore::new(Shared::from_passed(
            data,
            size,
            name,
            ObjectKind::Semaphore,
        )?)
    }

    /// The shared state, for passing the handle.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    fn new(shared: Shared) -> Result<NamedSemaphore, SyncError> {
        let max = shared
            .state::<SemaphoreState>()
            .check()
            .map_err(|detail| shared.corrupt(detail))?;
        Ok(NamedSemaphore {
            shared: std::sync::Arc::new(shared),
            max,
        })
    }

    /// Creates the semaphore `name` with `initial` units and a maximum of `max`.
    ///
    /// # Errors
    ///
    /// As [`SemaphoreOptions::create`].
    pub fn create<N>(name: N, initial: u32, max: u32) -> Result<NamedSemaphore, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        SemaphoreOptions::new(initial, max).create(name)
    }

    /// Opens the semaphore `name` (`OpenSemaphore`).
    ///
    /// # Errors
    ///
    /// [`SyncError::NotFound`], [`SyncError::WrongKind`], [`SyncError::AccessDenied`],
    /// [`SyncError::Corrupt`], [`SyncError::InvalidName`].
    pub fn open<N>(name: N) -> Result<NamedSemaphore, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        let (name, display) = parse(name, ObjectKind::Semaphore)?;
        Shared::open(&name, display, ObjectKind::Semaphore).and_then(NamedSemaphore::new)
    }

    /// Opens the semaphore `name`, or creates it with `initial` and `max`.
    ///
    /// # Errors
    ///
    /// As [`SemaphoreOptions::open_or_create`].
    pub fn open_or_create<N>(name: N, initial: u32, max: u32) -> Result<NamedSemaphore, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        SemaphoreOptions::new(initial, max).open_or_create(name)
    }

    /// The semaphore's name, in canonical form.
    pub fn name(&self) -> &str {
        self.shared.name()
    }

    /// Whether this handle created the semaphore.
    pub fn created(&self) -> bool {
        self.shared.created()
    }

    /// How long the name lives.
    pub fn lifetime(&self) -> Lifetime {
        self.shared.lifetime()
    }

    pub(super) fn state(&self) -> &SemaphoreState {
        self.shared.state()
    }

    /// The maximum count.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// The count now (already stale when it returns, as other processes go on).
    pub fn count(&self) -> u32 {
        self.state().count.load(Ordering::Relaxed)
    }

    /// Takes one unit, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// Only [`SyncError::Io`] for futex failures that correct use cannot cause.
    pub fn wait(&self) -> Result<(), SyncError> {
        self.wait_until(&Deadline::never())
    }

    /// Takes one unit, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`SyncError::Timeout`] when the count stayed 0 for all of `timeout`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), SyncError> {
        self.wait_until(&Deadline::after(timeout))
    }

    /// Takes one unit if there is one, without waiting.
    pub fn try_wait(&self) -> bool {
        self.state().try_wait()
    }

    fn wait_until(&self, deadline: &Deadline) -> Result<(), SyncError> {
        match self.state().wait(deadline) {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.shared.timeout(deadline.asked)),
            Err(e) => Err(self.shared.io_error("cannot wait for the semaphore", e)),
        }
    }

    /// Gives back `n` units and wakes up to `n` waiters; returns the count before
    /// (`ReleaseSemaphore`'s `lpPreviousCount`).
    ///
    /// # Errors
    ///
    /// [`SyncError::OverRelease`] when the count would go above the maximum: nothing is
    /// released then. [`SyncError::InvalidArgument`] for `n == 0`.
    pub fn release(&self, n: u32) -> Result<u32, SyncError> {
        if n == 0 {
            return Err(SyncError::InvalidArgument {
                name: self.name().to_owned(),
                kind: "semaphore",
                detail: "a release of 0 units; release at least 1".into(),
            });
        }
        self.state()
            .release(n, self.max)
            .map_err(|over| SyncError::OverRelease {
                name: self.name().to_owned(),
                count: over.count,
                release: n,
                max: self.max,
            })
    }
}

impl super::shared::SyncType for NamedSemaphore {
    const KIND: ObjectKind = ObjectKind::Semaphore;
}
