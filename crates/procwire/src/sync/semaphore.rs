//! The named counting semaphore.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::shared::{parse, Common, Deadline, Shared, BODY};
use super::SyncError;
use crate::name::Name;
use crate::security::AccessList;
use crate::sys::futex::{self, Wake};
use crate::wire::{Lifetime, ObjectKind};

/// The count: the futex word waiters sleep on while it is 0.
const COUNT: usize = BODY;
/// The maximum count, fixed at creation.
const MAX: usize = BODY + 4;
/// How many threads are (about to be) asleep on the count; releases skip the wake-up system
/// call when it is 0.
const SLEEPERS: usize = BODY + 8;

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
    shared: Shared,
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
        } else if self.max > i32::MAX as u32 {
            format!(
                "a maximum count of {} is above the limit of {}",
                self.max,
                i32::MAX
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
            region.write(COUNT, &self.initial.to_ne_bytes());
            region.write(MAX, &self.max.to_ne_bytes());
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
        .map(|shared| NamedSemaphore { shared })
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
        .map(|shared| NamedSemaphore { shared })
    }
}

impl NamedSemaphore {
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
        Shared::open(&name, display, ObjectKind::Semaphore).map(|shared| NamedSemaphore { shared })
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

    fn count_word(&self) -> &AtomicU32 {
        self.shared.u32_at(COUNT)
    }

    fn sleepers(&self) -> &AtomicU32 {
        self.shared.u32_at(SLEEPERS)
    }

    /// The maximum count.
    pub fn max(&self) -> u32 {
        self.shared.u32_at(MAX).load(Ordering::Relaxed)
    }

    /// The count now (already stale when it returns, as other processes go on).
    pub fn count(&self) -> u32 {
        self.count_word().load(Ordering::Relaxed)
    }

    /// Takes one unit, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// Only [`SyncError::Io`] for futex failures that correct use cannot cause.
    pub fn wait(&self) -> Result<(), SyncError> {
        self.wait_until(Deadline::never())
    }

    /// Takes one unit, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`SyncError::Timeout`] when the count stayed 0 for all of `timeout`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), SyncError> {
        self.wait_until(Deadline::after(timeout))
    }

    /// Takes one unit if there is one, without waiting.
    pub fn try_wait(&self) -> bool {
        let count = self.count_word();
        let mut now = count.load(Ordering::Relaxed);
        while now > 0 {
            match count.compare_exchange_weak(now, now - 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => now = actual,
            }
        }
        false
    }

    fn wait_until(&self, deadline: Deadline) -> Result<(), SyncError> {
        loop {
            // Always try before looking at the clock: a wake-up that raced the timeout
            // still gets its unit.
            if self.try_wait() {
                return Ok(());
            }
            let left = deadline.left();
            if left.is_some_and(|l| l.is_zero()) {
                return Err(self.shared.timeout(deadline.asked));
            }
            // Announce the sleeper, then look again (release does the mirror image): either
            // the release sees us and wakes us, or we see its count.
            self.sleepers().fetch_add(1, Ordering::SeqCst);
            let woke = if self.count_word().load(Ordering::SeqCst) == 0 {
                futex::wait(self.count_word(), 0, left)
            } else {
                Ok(Wake::Changed)
            };
            self.sleepers().fetch_sub(1, Ordering::SeqCst);
            woke.map_err(|e| self.shared.io_error("cannot wait for the semaphore", e))?;
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
        let max = self.max();
        let count = self.count_word();
        let mut before = count.load(Ordering::Relaxed);
        loop {
            let after = before.checked_add(n).filter(|&after| after <= max);
            let Some(after) = after else {
                return Err(SyncError::OverRelease {
                    name: self.name().to_owned(),
                    count: before,
                    release: n,
                    max,
                });
            };
            match count.compare_exchange_weak(before, after, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => break,
                Err(actual) => before = actual,
            }
        }
        if self.sleepers().load(Ordering::SeqCst) > 0 {
            futex::wake(count, n);
        }
        Ok(before)
    }
}

impl super::shared::SyncType for NamedSemaphore {
    const KIND: ObjectKind = ObjectKind::Semaphore;
}
