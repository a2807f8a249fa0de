//! What can go wrong with a named mutex, semaphore or event.

use std::fmt;
use std::io;
use std::time::Duration;

use super::NamedMutexGuard;
use crate::name::NameError;
use crate::registry::object::ObjectError;
use crate::wire::ObjectKind;

/// An error from a named sync object.
///
/// Each variant says what happened in terms of the object; the underlying `io::Error`, when
/// there is one, is kept as the [source](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The name is not a valid name for a sync object.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// No object of that kind has the name.
    #[error("no {kind} named `{name}`: {detail}")]
    NotFound {
        /// The object's name.
        name: String,
        /// `mutex`, `semaphore` or `event`.
        kind: &'static str,
        /// Why not (nothing of that name, its creator exited, …).
        detail: String,
    },
    /// An object of that kind has the name already.
    #[error("cannot create {kind} `{name}`: {detail}")]
    AlreadyExists {
        /// The object's name.
        name: String,
        /// `mutex`, `semaphore` or `event`.
        kind: &'static str,
        /// What exists.
        detail: String,
    },
    /// The name belongs to an object of another kind (mappings, mutexes, semaphores and
    /// events share one namespace).
    #[error("`{name}` is {found}, not {expected}")]
    WrongKind {
        /// The name.
        name: String,
        /// The kind asked for: `a mutex`, `a semaphore`, `an event`.
        expected: &'static str,
        /// What the name is: `a mapping`, `an event`, `a directory`, …
        found: String,
    },
    /// This user may not use the object.
    #[error("access to {kind} `{name}` denied: {detail}")]
    AccessDenied {
        /// The object's name.
        name: String,
        /// `mutex`, `semaphore` or `event`.
        kind: &'static str,
        /// Who asked, and what the object grants.
        detail: String,
    },
    /// A create-time setting the object cannot have: an access list file modes cannot
    /// express, a semaphore maximum of zero, an initial count above the maximum, …
    #[error("{kind} `{name}`: {detail}")]
    InvalidArgument {
        /// The object's name.
        name: String,
        /// `mutex`, `semaphore` or `event`.
        kind: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A wait ran out.
    #[error("timed out after {after:?} waiting for {kind} `{name}`")]
    Timeout {
        /// The object's name.
        name: String,
        /// `mutex`, `semaphore` or `event`.
        kind: &'static str,
        /// The time asked for.
        after: Duration,
    },
    /// The mutex's previous holder died holding it, and nobody has marked it repaired.
    ///
    /// [`NamedMutex::lock`](super::NamedMutex::lock) reports this as
    /// [`LockError::Abandoned`], with the lock held, so that the data can be repaired; this
    /// variant is what is left once that guard is turned into an error (and so unlocked).
    #[error("mutex `{name}` was abandoned: thread {previous_owner} died while holding it; the data it guards may be half-updated (lock it, repair, and call mark_repaired)")]
    Abandoned {
        /// The mutex's name.
        name: String,
        /// The TID of the thread that died holding it.
        previous_owner: u32,
    },
    /// This thread already holds the mutex and it is not
    /// [recursive](super::MutexOptions::recursive), so waiting would wait forever (or a
    /// recursive one is held 2^31 − 1 times).
    #[error("this thread already holds mutex `{name}`, which is not recursive (create it with MutexOptions::recursive to lock it again), or holds it 2^31-1 times")]
    WouldDeadlock {
        /// The mutex's name.
        name: String,
    },
    /// A wait on many objects ([`WaitSet`](super::WaitSet)) ran out: nothing is held.
    #[error("timed out after {after:?} waiting for {} of {count} objects", if *all { "all" } else { "any" })]
    WaitTimeout {
        /// How many objects the wait watched.
        count: usize,
        /// Whether it waited for all of them (else for any one).
        all: bool,
        /// The time asked for.
        after: Duration,
    },
    /// The object cannot take part in this kind of wait (a pipe connection whose data
    /// travels through shared memory, in a [`WaitSet`](super::WaitSet)).
    #[error("{kind} `{name}` cannot be waited on here: {detail}")]
    Unsupported {
        /// The object's name.
        name: String,
        /// `pipe connection`, `mailslot`, …
        kind: &'static str,
        /// Why not, and what to do instead.
        detail: String,
    },
    /// A semaphore release would raise the count above the maximum; nothing was released.
    #[error("releasing {release} to semaphore `{name}` would raise its count from {count} above its maximum of {max}; nothing was released")]
    OverRelease {
        /// The semaphore's name.
        name: String,
        /// The count before the release.
        count: u32,
        /// How many were to be released.
        release: u32,
        /// The maximum count.
        max: u32,
    },
    /// The object's shared state is not what procwire writes: another program, another
    /// version, or damage.
    #[error("{kind} `{name}` is damaged or foreign: {detail}")]
    Corrupt {
        /// The object's name.
        name: String,
        /// `mutex`, `semaphore` or `event`.
        kind: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A system call failed.
    #[error("{kind} `{name}`: {context}: {source}")]
    Io {
        /// The object's name.
        name: String,
        /// `mutex`, `semaphore` or `event`.
        kind: &'static str,
        /// What was being done.
        context: String,
        /// The system's error.
        #[source]
        source: io::Error,
    },
}

impl SyncError {
    pub(crate) fn from_object(name: &str, object: ObjectKind, e: ObjectError) -> SyncError {
        let name = name.to_owned();
        let kind = object.noun();
        match e {
            ObjectError::InvalidName(e) => SyncError::InvalidName(e),
            ObjectError::NotFound(detail) => SyncError::NotFound { name, kind, detail },
            ObjectError::AlreadyExists(detail) => SyncError::AlreadyExists { name, kind, detail },
            ObjectError::WrongKind(found) => SyncError::WrongKind {
                name,
                expected: object.with_article(),
                found,
            },
            ObjectError::AccessDenied(detail) => SyncError::AccessDenied { name, kind, detail },
            ObjectError::NotPermitted(detail) | ObjectError::InvalidSize(detail) => {
                SyncError::InvalidArgument { name, kind, detail }
            }
            ObjectError::Corrupt(detail) => SyncError::Corrupt { name, kind, detail },
            ObjectError::Io(context, source) => SyncError::Io {
                name,
                kind,
                context,
                source,
            },
        }
    }
}

/// Why [`NamedMutex::lock`](super::NamedMutex::lock) (or `lock_timeout`, `try_lock`) did
/// not simply return a guard.
///
/// Like [`std::sync::PoisonError`], the abandoned case carries the guard: the lock *is*
/// held, and the data it protects may be half-updated by the thread that died. Repair it,
/// then call [`NamedMutexGuard::mark_repaired`]; until someone does, every locker gets
/// `Abandoned`. Turning this into a [`SyncError`] (as `?` does) unlocks and keeps the
/// mutex abandoned.
///
/// # Examples
///
/// ```no_run
/// use procwire::sync::{LockError, NamedMutex};
///
/// let mutex = NamedMutex::open(r"Local\Ledger")?;
/// let guard = match mutex.lock() {
///     Ok(guard) => guard,
///     Err(LockError::Abandoned(mut guard)) => {
///         // ... bring the shared data back to a consistent state ...
///         guard.mark_repaired();
///         guard
///     }
///     Err(LockError::Failed(e)) => return Err(e),
/// };
/// # Ok::<(), procwire::sync::SyncError>(())
/// ```
pub enum LockError<'a> {
    /// The previous holder died holding the lock (`WAIT_ABANDONED`). The lock is now held
    /// by this guard.
    Abandoned(NamedMutexGuard<'a>),
    /// The lock was not taken.
    Failed(SyncError),
}

impl LockError<'_> {
    /// The error as a [`SyncError`]; an abandoned guard is dropped, which unlocks (and the
    /// mutex stays abandoned).
    pub fn into_sync_error(self) -> SyncError {
        match self {
            LockError::Abandoned(guard) => SyncError::Abandoned {
                name: guard.mutex().name().to_owned(),
                previous_owner: guard.previous_owner(),
            },
            LockError::Failed(e) => e,
        }
    }
}

impl From<SyncError> for LockError<'_> {
    fn from(e: SyncError) -> Self {
        LockError::Failed(e)
    }
}

impl From<LockError<'_>> for SyncError {
    fn from(e: LockError<'_>) -> Self {
        e.into_sync_error()
    }
}

impl fmt::Debug for LockError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Abandoned(guard) => f.debug_tuple("Abandoned").field(guard).finish(),
            LockError::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

impl fmt::Display for LockError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Abandoned(guard) => write!(
                f,
                "mutex `{}` was abandoned: thread {} died while holding it; this thread now \
                 holds it and should repair the data, then call mark_repaired",
                guard.mutex().name(),
                guard.previous_owner()
            ),
            LockError::Failed(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LockError<'_> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Abandoned(_) => None,
            LockError::Failed(e) => Some(e),
        }
    }
}
