//! The named event: manual-reset or auto-reset.

use std::io;
use std::mem::offset_of;
use std::time::Duration;

use super::shared::{parse, Common, Shared, BODY};
use super::SyncError;
use crate::name::Name;
use crate::security::AccessList;
use crate::shim::{fence, futex, AtomicU32, Deadline, Ordering};
use crate::wire::{Lifetime, ObjectKind};

/// Bit 0 of [`EventState::word`]: the event is set.
const SIGNALED: u32 = 1;
/// One step of a manual-reset event's generation, in the bits above [`SIGNALED`].
const GENERATION: u32 = 2;

/// An event's shared state, at offset 64 of its page.
///
/// The protocol, which the model tests in `loom_tests.rs` check:
///
/// - `set` turns [`SIGNALED`] on in `word` (a manual-reset event also steps the
///   generation), then, if `sleepers` is not 0, wakes one sleeper (auto) or all (manual).
/// - A waiter takes the event by turning [`SIGNALED`] off (auto; a manual-reset event is
///   left set). Failing that, it adds itself to `sleepers`, *then* reads `word`, and sleeps
///   only if that value is still not set (and, manual, of the generation it began with):
///   `FUTEX_WAIT(word, value)`. Each side writes one word and reads the other, with a
///   `fence(SeqCst)` between: either the setter sees the sleeper and wakes it, or the
///   sleeper sees the set and does not sleep; and a set between the read and the sleep
///   makes `FUTEX_WAIT` return at once.
/// - `set` on an event already set still wakes a sleeper if there is one: the waiter that
///   an earlier wake-up chose may have been killed before taking the event.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct EventState {
    /// The futex word: bit 0 set while the event is set; the bits above count every `set`
    /// of a manual-reset event (a generation), so that a waiter can tell it was released
    /// even if a `reset` came before it woke.
    pub(crate) word: AtomicU32,
    /// 1 for manual reset, 0 for auto reset; fixed at creation.
    pub(crate) manual: AtomicU32,
    /// How many threads are (about to be) asleep on the word; `set` skips the wake-up
    /// system call when it is 0. A process killed in a wait leaves it one too high, which
    /// costs only useless wake-ups.
    pub(crate) sleepers: AtomicU32,
}

#[cfg(not(all(loom, test)))]
const _: () =
    assert!(std::mem::size_of::<EventState>() == 12 && offset_of!(EventState, sleepers) == 8);

// SAFETY: `EventState` is `#[repr(C)]` and made of `AtomicU32`s only.
#[cfg(not(all(loom, test)))]
unsafe impl crate::sys::shm::Atomics for EventState {}

impl EventState {
    /// A new state, as `create` writes it.
    #[cfg(all(loom, test))]
    pub(crate) fn new(reset: EventReset, initially_set: bool) -> EventState {
        EventState {
            word: AtomicU32::new(if initially_set { SIGNALED } else { 0 }),
            manual: AtomicU32::new(u32::from(reset == EventReset::Manual)),
            sleepers: AtomicU32::new(0),
        }
    }

    /// The reset kind, or what is wrong with the state.
    pub(crate) fn check(&self) -> Result<EventReset, String> {
        match self.manual.load(Ordering::Relaxed) {
            0 => Ok(EventReset::Auto),
            1 => Ok(EventReset::Manual),
            other => Err(format!(
                "its reset kind is {other}, neither 0 (auto) nor 1 (manual); remove it and \
                 create it again"
            )),
        }
    }

    /// `SetEvent`.
    pub(crate) fn set(&self, reset: EventReset) {
        let manual = reset == EventReset::Manual;
        let mut now = self.word.load(Ordering::Relaxed);
        loop {
            if now & SIGNALED != 0 {
                break;
            }
            let next = if manual {
                now.wrapping_add(GENERATION) | SIGNALED
            } else {
                now | SIGNALED
            };
            match self
                .word
                .compare_exchange_weak(now, next, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(actual) => now = actual,
            }
        }
        // Between our write of the word and our read of the sleepers, as the waiter has
        // between its write of the sleepers and its read of the word.
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            if manual {
                futex::wake_all(&self.word);
            } else {
                futex::wake(&self.word, 1);
            }
        }
    }

    /// `ResetEvent`.
    pub(crate) fn reset(&self) {
        self.word.fetch_and(!SIGNALED, Ordering::AcqRel);
    }

    /// Whether the event is set now.
    pub(crate) fn is_set(&self) -> bool {
        self.word.load(Ordering::Acquire) & SIGNALED != 0
    }

    /// Takes the event if it is set: an auto-reset event is reset by it.
    pub(crate) fn try_wait(&self, reset: EventReset) -> bool {
        if reset == EventReset::Manual {
            return self.is_set();
        }
        let mut now = self.word.load(Ordering::Relaxed);
        while now & SIGNALED != 0 {
            match self.word.compare_exchange_weak(
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

    /// Waits until the event is set for us, or `deadline`: `Ok(true)` when released,
    /// `Ok(false)` on timeout.
    pub(crate) fn wait(&self, reset: EventReset, deadline: &Deadline) -> io::Result<bool> {
        let manual = reset == EventReset::Manual;
        let first = self.word.load(Ordering::Acquire) >> 1;
        // Whether `word` says we are released: set, or (manual) set and reset since we began.
        let released = |word: u32| word & SIGNALED != 0 || (manual && word >> 1 != first);
        loop {
            // Always try before looking at the clock: a wake-up that raced the timeout still
            // gets the event.
            if self.try_wait(reset) || (manual && released(self.word.load(Ordering::Acquire))) {
                return Ok(true);
            }
            let left = deadline.left();
            if left.is_some_and(|l| l.is_zero()) {
                return Ok(false);
            }
            // Announce the sleeper, *then* look at the word: a set from now on either sees
            // us or is seen.
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let now = self.word.load(Ordering::SeqCst);
            let woke = if released(now) {
                Ok(futex::Wake::Changed)
            } else {
                futex::wait(&self.word, now, left)
            };
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            woke?;
        }
    }
}

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
    pub(super) shared: std::sync::Arc<Shared>,
    /// Read and checked once, at open: another process cannot change it under us.
    reset: EventReset,
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
            region.write(BODY + offset_of!(EventState, word), &word.to_ne_bytes());
            region.write(BODY + offset_of!(EventState, manual), &manual.to_ne_bytes());
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
            .and_then(NamedEvent::new)
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
            .and_then(NamedEvent::new)
    }
}

impl NamedEvent {
    /// The object on a state file received from another process (a passed handle).
    pub(crate) fn from_passed(
        data: std::os::fd::OwnedFd,
        size: u64,
        name: String,
    ) -> Result<NamedEvent, SyncError> {
        NamedEvent::new(Shared::from_passed(data, size, name, ObjectKind::Event)?)
    }

    /// The shared state, for passing the handle.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    fn new(shared: Shared) -> Result<NamedEvent, SyncError> {
        let reset = shared
            .state::<EventState>()
            .check()
            .map_err(|detail| shared.corrupt(detail))?;
        Ok(NamedEvent {
            shared: std::sync::Arc::new(shared),
            reset,
        })
    }

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
        Shared::open(&name, display, ObjectKind::Event).and_then(NamedEvent::new)
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
        self.reset
    }

    pub(super) fn state(&self) -> &EventState {
        self.shared.state()
    }

    /// How many threads are (about to be) asleep in a wait.
    #[cfg(all(test, not(loom)))]
    pub(super) fn sleepers(&self) -> &AtomicU32 {
        &self.state().sleepers
    }

    /// Whether the event is set now (already stale when it returns). Does not reset an
    /// auto-reset event.
    pub fn is_set(&self) -> bool {
        self.state().is_set()
    }

    /// Sets the event (`SetEvent`): wakes every waiter (manual reset) or exactly one (auto
    /// reset). Setting a set event changes nothing.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for access checks.
    pub fn set(&self) -> Result<(), SyncError> {
        self.state().set(self.reset);
        Ok(())
    }

    /// Resets the event (`ResetEvent`): later waits wait.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for access checks.
    pub fn reset(&self) -> Result<(), SyncError> {
        self.state().reset();
        Ok(())
    }

    /// Waits until the event is set, as long as it takes (an auto-reset event is reset by the
    /// wait that it releases).
    ///
    /// # Errors
    ///
    /// Only [`SyncError::Io`] for futex failures that correct use cannot cause.
    pub fn wait(&self) -> Result<(), SyncError> {
        self.wait_until(&Deadline::never())
    }

    /// Waits at most `timeout` for the event.
    ///
    /// # Errors
    ///
    /// [`SyncError::Timeout`] when it was not set for us within `timeout`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), SyncError> {
        self.wait_until(&Deadline::after(timeout))
    }

    /// Whether the event is set, without waiting; for an auto-reset event, `true` also
    /// resets it (this call is the one waiter it releases).
    pub fn try_wait(&self) -> bool {
        self.state().try_wait(self.reset)
    }

    fn wait_until(&self, deadline: &Deadline) -> Result<(), SyncError> {
        match self.state().wait(self.reset, deadline) {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.shared.timeout(deadline.asked)),
            Err(e) => Err(self.shared.io_error("cannot wait for the event", e)),
        }
    }
}

impl super::shared::SyncType for NamedEvent {
    const KIND: ObjectKind = ObjectKind::Event;
}
