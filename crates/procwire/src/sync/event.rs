//! The named event: manual-reset or auto-reset.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::shared::{parse, Common, Deadline, Shared, BODY};
use super::SyncError;
use crate::name::Name;
use crate::security::AccessList;
use crate::sys::futex;
use crate::wire::{Lifetime, ObjectKind};

/// The futex word: bit 0 set while the event is set; the bits above count every `set` of a
/// manual-reset event (a generation), so that a waiter can tell it was released even if a
/// `reset` came before it woke.
const WORD: usize = BODY;
/// 1 for manual reset, 0 for auto reset; fixed at creation.
const MANUAL: usize = BODY + 4;
/// How many threads are (about to be) asleep on the word; `set` skips the wake-up system
/// call when it is 0.
const SLEEPERS: usize = BODY + 8;

const SIGNALED: u32 = 1;
const GENERATION: u32 = 2;

/// What a wait on an event does to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventReset {
    /// Stays set, releasing every waiter, until [`NamedEvent::reset`] (`bManualReset =
    /// TRUE`).
    Manual,
    /// Releases exactly one waiter, which resets it (`bManualReset = FALSE`).
    Auto,
}

/// An event that processes open by name: Windows' `CreateEvent` / `OpenEvent`.
///
/// A manual-reset event, once [`set`](Self::set), releases every waiter (all those asleep,
/// and every later one) until [`reset`](Self::reset). An auto-reset event releases exactly
/// one waiter per `set`, which resets it; with no waiter it stays set until one comes.
/// Waiting sleeps in the kernel (`futex`).
///
/// A manual-reset `set` followed at once by `reset` still releases every thread that was
/// asleep at the `set`: unlike `PulseEvent`, no waiter misses it.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use procwire::sync::{EventReset, NamedEvent};
///
/// let ready = NamedEvent::create(r"Local\DataReady", EventReset::Auto, false)?;
/// // In another process:
/// let ready = NamedEvent::open(r"Local\DataReady")?;
/// ready.wait_timeout(Duration::from_secs(5))?;
/// # Ok::<(), procwire::sync::SyncError>(())
/// ```
///
/// # References
/// - [`CreateEventW`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-createeventw),
///   [`SetEvent`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-setevent),
///   [`ResetEvent`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-resetevent)
/// - [`futex(2)`](https://man7.org/linux/man-pages/man2/futex.2.html)
#[derive(Debug)]
pub struct NamedEvent {
    shared: Shared,
}

/// How to create a [`NamedEvent`]: manual or auto reset, initial state, access list and
/// lifetime.
///
/// # Examples
///
/// ```no_run
/// use procwire::sync::{EventOptions, EventReset};
///
/// let shutdown = EventOptions::new(EventReset::Manual).create(r"Local\Shutdown")?;
/// # Ok::<(), procwire::sync::SyncError>(())
/// ```
#[derive(Debug, Clone)]
pub struct EventOptions {
    reset: EventReset,
    initially_set: bool,
    common: Common,
}

impl EventOptions {
    /// An event of the given reset kind, initially not set; owner only,
    /// [`Lifetime::RemoveOnDrop`].
    pub fn new(reset: EventReset) -> EventOptions {
        EventOptions {
            reset,
            initially_set: false,
            common: Common::default(),
        }
    }

    /// Whether the event starts set (`bInitialState`).
    pub fn initially_set(mut self, set: bool) -> Self {
        self.initially_set = set;
        self
    }

    /// Who may open the event. Only [`Access::ReadWrite`](crate::security::Access::ReadWrite)
    /// grants make sense, to everyone or one group.
    pub fn access_list(mut self, access: AccessList) -> Self {
        self.common.access = access;
        self
    }

    /// Who removes the name, and when.
    pub fn lifetime(mut self, lifetime: Lifetime) -> Self {
        self.common.lifetime = lifetime;
        self
    }

    fn init(&self) -> impl Fn(&crate::sys::shm::Region) + '_ {
        move |region| {
            let word = if self.initially_set { SIGNALED } else { 0 };
            let manual = u32::from(self.reset == EventReset::Manual);
            region.write(WORD, &word.to_ne_bytes());
            region.write(MANUAL, &manual.to_ne_bytes());
        }
    }

    /// Creates the event `name`.
    ///
    /// # Errors
    ///
    /// As [`MutexOptions::create`](super::MutexOptions::create).
    pub fn create<N>(&self, name: N) -> Result<NamedEvent, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        let (name, display) = parse(name, ObjectKind::Event)?;
        Shared::create(&name, display, ObjectKind::Event, &self.common, self.init())
            .map(|shared| NamedEvent { shared })
    }

    /// Opens the event `name`, or creates it with these settings if nothing has the name.
    /// An existing event keeps its own.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`NamedEvent::open`].
    pub fn open_or_create<N>(&self, name: N) -> Result<NamedEvent, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        let (name, display) = parse(name, ObjectKind::Event)?;
        Shared::open_or_create(&name, display, ObjectKind::Event, &self.common, self.init())
            .map(|shared| NamedEvent { shared })
    }
}

impl NamedEvent {
    /// Creates the event `name`.
    ///
    /// # Errors
    ///
    /// As [`EventOptions::create`].
    pub fn create<N>(
        name: N,
        reset: EventReset,
        initially_set: bool,
    ) -> Result<NamedEvent, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        EventOptions::new(reset)
            .initially_set(initially_set)
            .create(name)
    }

    /// Opens the event `name` (`OpenEvent`).
    ///
    /// # Errors
    ///
    /// [`SyncError::NotFound`], [`SyncError::WrongKind`], [`SyncError::AccessDenied`],
    /// [`SyncError::Corrupt`], [`SyncError::InvalidName`].
    pub fn open<N>(name: N) -> Result<NamedEvent, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        let (name, display) = parse(name, ObjectKind::Event)?;
        Shared::open(&name, display, ObjectKind::Event).map(|shared| NamedEvent { shared })
    }

    /// Opens the event `name`, or creates it not set.
    ///
    /// # Errors
    ///
    /// As [`EventOptions::open_or_create`].
    pub fn open_or_create<N>(name: N, reset: EventReset) -> Result<NamedEvent, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        EventOptions::new(reset).open_or_create(name)
    }

    /// The event's name, in canonical form.
    pub fn name(&self) -> &str {
        self.shared.name()
    }

    /// Whether this handle created the event.
    pub fn created(&self) -> bool {
        self.shared.created()
    }

    /// How long the name lives.
    pub fn lifetime(&self) -> Lifetime {
        self.shared.lifetime()
    }

    /// Manual or auto reset.
    pub fn reset_kind(&self) -> EventReset {
        if self.shared.u32_at(MANUAL).load(Ordering::Relaxed) != 0 {
            EventReset::Manual
        } else {
            EventReset::Auto
        }
    }

    fn word(&self) -> &AtomicU32 {
        self.shared.u32_at(WORD)
    }

    /// How many threads are (about to be) asleep in a wait; each has already taken note of
    /// the generation, so a `set` from now on releases it.
    pub(super) fn sleepers(&self) -> &AtomicU32 {
        self.shared.u32_at(SLEEPERS)
    }

    /// Whether the event is set now (already stale when it returns). Does not reset an
    /// auto-reset event.
    pub fn is_set(&self) -> bool {
        self.word().load(Ordering::Acquire) & SIGNALED != 0
    }

    /// Sets the event (`SetEvent`): wakes every waiter (manual reset) or exactly one (auto
    /// reset). Setting a set event does nothing.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for access checks.
    pub fn set(&self) -> Result<(), SyncError> {
        let manual = self.reset_kind() == EventReset::Manual;
        let word = self.word();
        let mut now = word.load(Ordering::Relaxed);
        loop {
            if now & SIGNALED != 0 {
                return Ok(());
            }
            let next = if manual {
                now.wrapping_add(GENERATION) | SIGNALED
            } else {
                now | SIGNALED
            };
            match word.compare_exchange_weak(now, next, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => break,
                Err(actual) => now = actual,
            }
        }
        if self.sleepers().load(Ordering::SeqCst) > 0 {
            if manual {
                futex::wake_all(word);
            } else {
                futex::wake(word, 1);
            }
        }
        Ok(())
    }

    /// Resets the event (`ResetEvent`): later waits wait.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for access checks.
    pub fn reset(&self) -> Result<(), SyncError> {
        self.word().fetch_and(!SIGNALED, Ordering::AcqRel);
        Ok(())
    }

    /// Waits until the event is set, as long as it takes (an auto-reset event is reset by the
    /// wait that it releases).
    ///
    /// # Errors
    ///
    /// Only [`SyncError::Io`] for futex failures that correct use cannot cause.
    pub fn wait(&self) -> Result<(), SyncError> {
        self.wait_until(Deadline::never())
    }

    /// Waits at most `timeout` for the event.
    ///
    /// # Errors
    ///
    /// [`SyncError::Timeout`] when it was not set for us within `timeout`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), SyncError> {
        self.wait_until(Deadline::after(timeout))
    }

    /// Whether the event is set, without waiting; for an auto-reset event, `true` also
    /// resets it (this call is the one waiter it releases).
    pub fn try_wait(&self) -> bool {
        let word = self.word();
        if self.reset_kind() == EventReset::Manual {
            return word.load(Ordering::Acquire) & SIGNALED != 0;
        }
        let mut now = word.load(Ordering::Relaxed);
        while now & SIGNALED != 0 {
            match word.compare_exchange_weak(
                now,
                now & !SIGNALED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => now = actual,
            }
        }
        false
    }

    fn wait_until(&self, deadline: Deadline) -> Result<(), SyncError> {
        let manual = self.reset_kind() == EventReset::Manual;
        let word = self.word();
        let first = word.load(Ordering::Acquire);
        loop {
            if self.try_wait() {
                return Ok(());
            }
            let now = word.load(Ordering::Acquire);
            if manual && now >> 1 != first >> 1 {
                // Set (and reset again) since we began: that set was for us too.
                return Ok(());
            }
            let left = deadline.left();
            if left.is_some_and(|l| l.is_zero()) {
                return Err(self.shared.timeout(deadline.asked));
            }
            self.sleepers().fetch_add(1, Ordering::SeqCst);
            let woke = if word.load(Ordering::SeqCst) == now {
                futex::wait(word, now, left).map(|_| ())
            } else {
                Ok(())
            };
            self.sleepers().fetch_sub(1, Ordering::SeqCst);
            woke.map_err(|e| self.shared.io_error("cannot wait for the event", e))?;
        }
    }
}

impl super::shared::SyncType for NamedEvent {
    const KIND: ObjectKind = ObjectKind::Event;
}
