//! Named sync objects: a robust mutex, a semaphore and an event.

use std::ffi::c_char;
use std::sync::Mutex;
use std::thread::ThreadId;

use procwire::sync::{
    EventReset, LockError, NamedEvent, NamedMutex, NamedMutexGuard, NamedSemaphore,
};

use crate::args::{free_handle, give_handle, handle, put_optional, text, timeout, Out};
use crate::status::{run, run_value, Failure, ProcwireStatus};

/// A named mutex (opaque), with the lock this handle holds, if any.
pub struct ProcwireMutex {
    // Declared first, so that a guard still held is dropped (unlocked) before the mutex it
    // borrows.
    held: Mutex<Option<Held>>,
    pub(crate) mutex: Box<NamedMutex>,
}

/// The lock one thread took through a handle.
struct Held {
    guard: NamedMutexGuard<'static>,
    thread: ThreadId,
}

// SAFETY: a guard is not `Send` because the lock belongs to the thread that took it: its
// TID is what other processes check. `Held` moves between threads only inside the handle's
// `Mutex`; every use of the guard (mark repaired, unlock) checks `thread` first and is
// refused on another thread. The one exception is `procwire_mutex_free` of a handle still
// locked, whose drop unlocks by the recorded TID, which the library's unlock supports from
// any thread (it names the holder explicitly).
unsafe impl Send for Held {}

impl ProcwireMutex {
    /// The handle of `mutex`, holding no lock.
    pub(crate) fn new(mutex: NamedMutex) -> ProcwireMutex {
        ProcwireMutex {
            held: Mutex::new(None),
            mutex: Box::new(mutex),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn not_held(&self) -> Failure {
        Failure::new(
            ProcwireStatus::NotPermitted,
            format!(
                "this thread does not hold mutex `{}` through this handle; lock it first",
                self.mutex.name()
            ),
        )
    }
}

/// # Safety
///
/// `name` is a NUL-terminated string; `out` is valid for a write.
unsafe fn make_mutex(
    name: *const c_char,
    out: *mut *mut ProcwireMutex,
    how: fn(&str) -> Result<NamedMutex, procwire::sync::SyncError>,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises a NUL-terminated string.
        let name = unsafe { text(name, "name") }?;
        let out = Out::new(out, "mutex")?;
        let mutex = how(name)?;
        // SAFETY: `out` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwireMutex::new(mutex)) };
        Ok(())
    })
}

/// Creates the named mutex `name`, unlocked (`CreateMutex`).
///
/// Ownership: `*mutex` is the caller's; free it with `procwire_mutex_free`.
/// Thread safety: any thread.
///
/// Errors: ALREADY_EXISTS, WRONG_KIND (a mapping, semaphore or event has the name),
/// INVALID_NAME, IO.
///
/// # Safety
///
/// `name` is a NUL-terminated string; `mutex` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_mutex_create(
    name: *const c_char,
    mutex: *mut *mut ProcwireMutex,
) -> ProcwireStatus {
    // SAFETY: the caller's promise, passed on.
    unsafe { make_mutex(name, mutex, |n| NamedMutex::create(n)) }
}

/// Opens the named mutex `name` (`OpenMutex`). Ownership and thread safety as
/// `procwire_mutex_create`. Errors: NOT_FOUND, WRONG_KIND, ACCESS_DENIED, INVALID_NAME.
///
/// # Safety
///
/// As `procwire_mutex_create`.
#[no_mangle]
pub unsafe extern "C" fn procwire_mutex_open(
    name: *const c_char,
    mutex: *mut *mut ProcwireMutex,
) -> ProcwireStatus {
    // SAFETY: the caller's promise, passed on.
    unsafe { make_mutex(name, mutex, |n| NamedMutex::open(n)) }
}

/// Opens the named mutex `name`, creating it when no live one has the name. Ownership and
/// thread safety as `procwire_mutex_create`.
///
/// # Safety
///
/// As `procwire_mutex_create`.
#[no_mangle]
pub unsafe extern "C" fn procwire_mutex_open_or_create(
    name: *const c_char,
    mutex: *mut *mut ProcwireMutex,
) -> ProcwireStatus {
    // SAFETY: the caller's promise, passed on.
    unsafe { make_mutex(name, mutex, |n| NamedMutex::open_or_create(n)) }
}

/// Locks the mutex, waiting up to `timeout_ms` (`WaitForSingleObject`).
///
/// Returns OK with the lock held, or ABANDONED, ALSO with the lock held: its previous
/// holder died holding it (`WAIT_ABANDONED`), so the data it guards may be half-updated;
/// repair it, then call `procwire_mutex_mark_repaired` (until someone does, every locker
/// gets ABANDONED). In both cases unlock with `procwire_mutex_unlock` on the same thread.
/// Otherwise the lock is not held: TIMEOUT, WOULD_DEADLOCK (this thread holds it already;
/// the mutex is not recursive), CORRUPT, IO.
///
/// Thread safety: any thread; the lock belongs to the thread that took it. Several
/// threads may lock through one handle; they exclude each other as separate processes do.
///
/// # Safety
///
/// `mutex` is NULL or a live mutex handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_mutex_lock(
    mutex: *const ProcwireMutex,
    timeout_ms: i64,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        let m = unsafe { handle(mutex, "mutex") }?;
        let wait = timeout(timeout_ms, "timeout_ms")?;
        // SAFETY: the boxed mutex lives at a fixed address until the handle is freed, and
        // the guard made from this reference is stored in the same handle, in a field
        // dropped before the box (see `ProcwireMutex`), so it never outlives the mutex.
        let target: &'static NamedMutex = unsafe { &*(&*m.mutex as *const NamedMutex) };
        let locked = match wait {
            None => target.lock(),
            Some(t) => target.lock_timeout(t),
        };
        let (guard, abandoned) = match locked {
            Ok(guard) => (guard, None),
            Err(LockError::Abandoned(guard)) => {
                let previous = guard.previous_owner();
                (guard, Some(previous))
            }
            Err(LockError::Failed(e)) => return Err(e.into()),
        };
        *m.held() = Some(Held {
            guard,
            thread: std::thread::current().id(),
        });
        match abandoned {
            None => Ok(()),
            Some(previous) => Err(Failure::new(
                ProcwireStatus::Abandoned,
                format!(
                    "mutex `{}` was abandoned: thread {previous} died while holding it; this \
                     thread now holds it and should repair the data, then call \
                     procwire_mutex_mark_repaired",
                    m.mutex.name()
                ),
            )),
        }
    })
}

/// Declares the data the mutex guards consistent again after an ABANDONED lock
/// (`pthread_mutex_consistent`): later lockers get OK.
///
/// Thread safety: only the thread that holds the lock through this handle.
///
/// Errors: NOT_PERMITTED when this thread does not hold it.
///
/// # Safety
///
/// `mutex` is NULL or a live mutex handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_mutex_mark_repaired(
    mutex: *const ProcwireMutex,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        let m = unsafe { handle(mutex, "mutex") }?;
        let mut held = m.held();
        match held.as_mut() {
            Some(h) if h.thread == std::thread::current().id() => {
                h.guard.mark_repaired();
                Ok(())
            }
            _ => Err(m.not_held()),
        }
    })
}

/// Unlocks the mutex (`ReleaseMutex`).
///
/// Thread safety: only the thread that holds the lock through this handle.
///
/// Errors: NOT_PERMITTED when this thread does not hold it.
///
/// # Safety
///
/// `mutex` is NULL or a live mutex handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_mutex_unlock(mutex: *const ProcwireMutex) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        let m = unsafe { handle(mutex, "mutex") }?;
        let mut held = m.held();
        match held.take() {
            Some(h) if h.thread == std::thread::current().id() => {
                drop(h);
                Ok(())
            }
            other => {
                *held = other;
                Err(m.not_held())
            }
        }
    })
}

/// Closes the handle; a lock still held through it is released. NULL is ignored.
///
/// Ownership: takes the handle. Thread safety: no other thread may use it during or after.
///
/// # Safety
///
/// `mutex` is NULL or a live mutex handle, not used again.
#[no_mangle]
pub unsafe extern "C" fn procwire_mutex_free(mutex: *mut ProcwireMutex) -> ProcwireStatus {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_handle(mutex) }
}

/// A named semaphore (opaque).
pub struct ProcwireSemaphore {
    pub(crate) semaphore: NamedSemaphore,
}

/// Creates the named semaphore `name` with `initial` units of at most `max`
/// (`CreateSemaphore`).
///
/// Ownership: `*semaphore` is the caller's; free it with `procwire_semaphore_free`.
/// Thread safety: any thread.
///
/// Errors: ALREADY_EXISTS, WRONG_KIND, INVALID_ARGUMENT (max 0, initial above max),
/// INVALID_NAME, IO.
///
/// # Safety
///
/// `name` is a NUL-terminated string; `semaphore` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_semaphore_create(
    name: *const c_char,
    initial: u32,
    max: u32,
    semaphore: *mut *mut ProcwireSemaphore,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises a NUL-terminated string.
        let name = unsafe { text(name, "name") }?;
        let out = Out::new(semaphore, "semaphore")?;
        let s = NamedSemaphore::create(name, initial, max)?;
        // SAFETY: `semaphore` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwireSemaphore { semaphore: s }) };
        Ok(())
    })
}

/// Opens the named semaphore `name` (`OpenSemaphore`). Ownership and thread safety as
/// `procwire_semaphore_create`. Errors: NOT_FOUND, WRONG_KIND, ACCESS_DENIED.
///
/// # Safety
///
/// As `procwire_semaphore_create`.
#[no_mangle]
pub unsafe extern "C" fn procwire_semaphore_open(
    name: *const c_char,
    semaphore: *mut *mut ProcwireSemaphore,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises a NUL-terminated string.
        let name = unsafe { text(name, "name") }?;
        let out = Out::new(semaphore, "semaphore")?;
        let s = NamedSemaphore::open(name)?;
        // SAFETY: `semaphore` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwireSemaphore { semaphore: s }) };
        Ok(())
    })
}

/// Takes one unit, waiting up to `timeout_ms` for one. Errors: TIMEOUT.
///
/// Thread safety: any thread.
///
/// # Safety
///
/// `semaphore` is NULL or a live semaphore handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_semaphore_wait(
    semaphore: *const ProcwireSemaphore,
    timeout_ms: i64,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        let s = unsafe { handle(semaphore, "semaphore") }?;
        match timeout(timeout_ms, "timeout_ms")? {
            None => s.semaphore.wait()?,
            Some(t) => s.semaphore.wait_timeout(t)?,
        }
        Ok(())
    })
}

/// Gives back `n` units (`ReleaseSemaphore`); `*previous` (may be NULL) gets the count
/// before. Errors: OVER_RELEASE (nothing released), INVALID_ARGUMENT for 0.
///
/// Thread safety: any thread.
///
/// # Safety
///
/// `semaphore` is NULL or a live semaphore handle; `previous` is NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn procwire_semaphore_release(
    semaphore: *const ProcwireSemaphore,
    n: u32,
    previous: *mut u32,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        let s = unsafe { handle(semaphore, "semaphore") }?;
        let before = s.semaphore.release(n)?;
        // SAFETY: `previous` is NULL or valid for a write (the caller's promise).
        unsafe { put_optional(previous, before) };
        Ok(())
    })
}

/// The units free now (a snapshot); 0 when `semaphore` is NULL.
///
/// # Safety
///
/// `semaphore` is NULL or a live semaphore handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_semaphore_count(semaphore: *const ProcwireSemaphore) -> u32 {
    run_value(0, || {
        // SAFETY: the caller promises NULL or a live handle.
        Ok(unsafe { handle(semaphore, "semaphore") }?.semaphore.count())
    })
}

/// Closes the handle. NULL is ignored.
///
/// Ownership: takes the handle. Thread safety: no other thread may use it during or after.
///
/// # Safety
///
/// `semaphore` is NULL or a live semaphore handle, not used again.
#[no_mangle]
pub unsafe extern "C" fn procwire_semaphore_free(
    semaphore: *mut ProcwireSemaphore,
) -> ProcwireStatus {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_handle(semaphore) }
}

/// A named event (opaque).
pub struct ProcwireEvent {
    pub(crate) event: NamedEvent,
}

fn reset_kind(manual_reset: bool) -> EventReset {
    if manual_reset {
        EventReset::Manual
    } else {
        EventReset::Auto
    }
}

/// Creates the named event `name` (`CreateEvent`): manual-reset (stays set, releasing
/// every waiter, until reset) or auto-reset (each set releases one waiter).
///
/// Ownership: `*event` is the caller's; free it with `procwire_event_free`.
/// Thread safety: any thread.
///
/// Errors: ALREADY_EXISTS, WRONG_KIND, INVALID_NAME, IO.
///
/// # Safety
///
/// `name` is a NUL-terminated string; `event` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_event_create(
    name: *const c_char,
    manual_reset: bool,
    initially_set: bool,
    event: *mut *mut ProcwireEvent,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises a NUL-terminated string.
        let name = unsafe { text(name, "name") }?;
        let out = Out::new(event, "event")?;
        let e = NamedEvent::create(name, reset_kind(manual_reset), initially_set)?;
        // SAFETY: `event` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwireEvent { event: e }) };
        Ok(())
    })
}

/// Opens the named event `name` (`OpenEvent`). Ownership and thread safety as
/// `procwire_event_create`. Errors: NOT_FOUND, WRONG_KIND, ACCESS_DENIED.
///
/// # Safety
///
/// As `procwire_event_create`.
#[no_mangle]
pub unsafe extern "C" fn procwire_event_open(
    name: *const c_char,
    event: *mut *mut ProcwireEvent,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises a NUL-terminated string.
        let name = unsafe { text(name, "name") }?;
        let out = Out::new(event, "event")?;
        let e = NamedEvent::open(name)?;
        // SAFETY: `event` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwireEvent { event: e }) };
        Ok(())
    })
}

/// Sets the event (`SetEvent`). Thread safety: any thread.
///
/// # Safety
///
/// `event` is NULL or a live event handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_event_set(event: *const ProcwireEvent) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        unsafe { handle(event, "event") }?.event.set()?;
        Ok(())
    })
}

/// Resets the event (`ResetEvent`). Thread safety: any thread.
///
/// # Safety
///
/// `event` is NULL or a live event handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_event_reset(event: *const ProcwireEvent) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        unsafe { handle(event, "event") }?.event.reset()?;
        Ok(())
    })
}

/// Waits up to `timeout_ms` for the event to be set (an auto-reset event is reset by the
/// wait that it releases). Errors: TIMEOUT. Thread safety: any thread.
///
/// # Safety
///
/// `event` is NULL or a live event handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_event_wait(
    event: *const ProcwireEvent,
    timeout_ms: i64,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        let e = unsafe { handle(event, "event") }?;
        match timeout(timeout_ms, "timeout_ms")? {
            None => e.event.wait()?,
            Some(t) => e.event.wait_timeout(t)?,
        }
        Ok(())
    })
}

/// Whether the event is set now (a snapshot); false when `event` is NULL.
///
/// # Safety
///
/// `event` is NULL or a live event handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_event_is_set(event: *const ProcwireEvent) -> bool {
    run_value(false, || {
        // SAFETY: the caller promises NULL or a live handle.
        Ok(unsafe { handle(event, "event") }?.event.is_set())
    })
}

/// Closes the handle. NULL is ignored.
///
/// Ownership: takes the handle. Thread safety: no other thread may use it during or after.
///
/// # Safety
///
/// `event` is NULL or a live event handle, not used again.
#[no_mangle]
pub unsafe extern "C" fn procwire_event_free(event: *mut ProcwireEvent) -> ProcwireStatus {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_handle(event) }
}
