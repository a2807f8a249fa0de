//! Status codes, the thread's last error message, and the wrapper every entry point runs
//! its body in (no panic leaves it).

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use procwire::mailslot::MailslotError;
use procwire::mapping::MappingError;
use procwire::name::NameError;
use procwire::pipe::PipeError;
use procwire::sync::SyncError;

/// What a call did. Each failure kind of the Rust library (the variants of `PipeError`,
/// `MailslotError`, `MappingError` and `SyncError`, which share their names) has one code;
/// the last few are the boundary's own.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcwireStatus {
    /// Success.
    Ok = 0,
    /// The name is not a valid name for this kind of object.
    InvalidName = 1,
    /// No object has that name.
    NotFound = 2,
    /// A live object already has that name.
    AlreadyExists = 3,
    /// The server is run by a user the client does not accept.
    UntrustedServer = 4,
    /// Every instance of the pipe is in use.
    Busy = 5,
    /// This user may not have the access asked for.
    AccessDenied = 6,
    /// The name belongs to an object of another kind, or a passed handle is of another
    /// kind than the call takes.
    WrongKind = 7,
    /// The client's read mode does not fit the pipe's type.
    ModeMismatch = 8,
    /// A message is larger than the pipe or mailslot allows; nothing was sent.
    MessageTooLarge = 9,
    /// A wait ran out.
    Timeout = 10,
    /// The other end is gone (or, for a read, the peer closed the pipe).
    Disconnected = 11,
    /// This handle may not do that (its access, the pipe's direction, a read-only view).
    NotPermitted = 12,
    /// The peer broke the protocol.
    Protocol = 13,
    /// A system call failed.
    Io = 14,
    /// The mailslot stayed full for the whole write timeout; the message was not sent.
    Full = 15,
    /// The caller's buffer is smaller than the next mailslot message, which stays next.
    BufferTooSmall = 16,
    /// A mapping size of zero, or a file-backed mapping of an empty file without a size.
    InvalidSize = 17,
    /// A read or write reaches past the end of the mapping.
    OutOfRange = 18,
    /// An offset is not aligned as it must be.
    Misaligned = 19,
    /// The object's files or shared state are damaged or foreign.
    Corrupt = 20,
    /// A create-time setting the object cannot have.
    InvalidArgument = 21,
    /// The mutex's previous holder died holding it. From `procwire_mutex_lock` this means
    /// the lock IS now held by the caller, who should repair the data and call
    /// `procwire_mutex_mark_repaired`.
    Abandoned = 22,
    /// This thread already holds the mutex (it is not recursive).
    WouldDeadlock = 23,
    /// A semaphore release would raise the count above its maximum; nothing was released.
    OverRelease = 24,
    /// A pointer argument that must not be NULL was NULL.
    NullPointer = 25,
    /// A string argument is not valid UTF-8.
    InvalidUtf8 = 26,
    /// A bug inside the library: it panicked, and the call was abandoned.
    Panic = 27,
    /// A failure of a kind this version of the C ABI does not know yet.
    Unknown = 28,
    /// A handle could not be passed or received: the connection cannot carry handles (TCP,
    /// shared memory), the object cannot be passed, or the peer announced a handle and
    /// passed no descriptor or another kind of one (what came is closed; the connection
    /// stays usable).
    BadHandle = 29,
    /// The next frame is not what the receive asked for: a passed handle where a message
    /// was awaited, or a message where a handle was; nothing was taken.
    WrongFrame = 30,
}

impl ProcwireStatus {
    /// The code's name, as in the header (`PROCWIRE_STATUS_NOT_FOUND`).
    pub fn name(self) -> &'static CStr {
        match self {
            ProcwireStatus::Ok => c"PROCWIRE_STATUS_OK",
            ProcwireStatus::InvalidName => c"PROCWIRE_STATUS_INVALID_NAME",
            ProcwireStatus::NotFound => c"PROCWIRE_STATUS_NOT_FOUND",
            ProcwireStatus::AlreadyExists => c"PROCWIRE_STATUS_ALREADY_EXISTS",
            ProcwireStatus::UntrustedServer => c"PROCWIRE_STATUS_UNTRUSTED_SERVER",
            ProcwireStatus::Busy => c"PROCWIRE_STATUS_BUSY",
            ProcwireStatus::AccessDenied => c"PROCWIRE_STATUS_ACCESS_DENIED",
            ProcwireStatus::WrongKind => c"PROCWIRE_STATUS_WRONG_KIND",
            ProcwireStatus::ModeMismatch => c"PROCWIRE_STATUS_MODE_MISMATCH",
            ProcwireStatus::MessageTooLarge => c"PROCWIRE_STATUS_MESSAGE_TOO_LARGE",
            ProcwireStatus::Timeout => c"PROCWIRE_STATUS_TIMEOUT",
            ProcwireStatus::Disconnected => c"PROCWIRE_STATUS_DISCONNECTED",
            ProcwireStatus::NotPermitted => c"PROCWIRE_STATUS_NOT_PERMITTED",
            ProcwireStatus::Protocol => c"PROCWIRE_STATUS_PROTOCOL",
            ProcwireStatus::Io => c"PROCWIRE_STATUS_IO",
            ProcwireStatus::Full => c"PROCWIRE_STATUS_FULL",
            ProcwireStatus::BufferTooSmall => c"PROCWIRE_STATUS_BUFFER_TOO_SMALL",
            ProcwireStatus::InvalidSize => c"PROCWIRE_STATUS_INVALID_SIZE",
            ProcwireStatus::OutOfRange => c"PROCWIRE_STATUS_OUT_OF_RANGE",
            ProcwireStatus::Misaligned => c"PROCWIRE_STATUS_MISALIGNED",
            ProcwireStatus::Corrupt => c"PROCWIRE_STATUS_CORRUPT",
            ProcwireStatus::InvalidArgument => c"PROCWIRE_STATUS_INVALID_ARGUMENT",
            ProcwireStatus::Abandoned => c"PROCWIRE_STATUS_ABANDONED",
            ProcwireStatus::WouldDeadlock => c"PROCWIRE_STATUS_WOULD_DEADLOCK",
            ProcwireStatus::OverRelease => c"PROCWIRE_STATUS_OVER_RELEASE",
            ProcwireStatus::NullPointer => c"PROCWIRE_STATUS_NULL_POINTER",
            ProcwireStatus::InvalidUtf8 => c"PROCWIRE_STATUS_INVALID_UTF8",
            ProcwireStatus::Panic => c"PROCWIRE_STATUS_PANIC",
            ProcwireStatus::Unknown => c"PROCWIRE_STATUS_UNKNOWN",
            ProcwireStatus::BadHandle => c"PROCWIRE_STATUS_BAD_HANDLE",
            ProcwireStatus::WrongFrame => c"PROCWIRE_STATUS_WRONG_FRAME",
        }
    }
}

/// A failed call: its code and what to tell the caller.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: ProcwireStatus,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: ProcwireStatus, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn null(argument: &str) -> Failure {
        Failure::new(
            ProcwireStatus::NullPointer,
            format!("the argument `{argument}` is NULL; pass a valid pointer"),
        )
    }
}

impl From<NameError> for Failure {
    fn from(e: NameError) -> Failure {
        Failure::new(ProcwireStatus::InvalidName, e.to_string())
    }
}

impl From<PipeError> for Failure {
    fn from(e: PipeError) -> Failure {
        let status = match &e {
            PipeError::InvalidName(_) => ProcwireStatus::InvalidName,
            PipeError::NotFound { .. } => ProcwireStatus::NotFound,
            PipeError::AlreadyExists { .. } => ProcwireStatus::AlreadyExists,
            PipeError::UntrustedServer { .. } => ProcwireStatus::UntrustedServer,
            PipeError::Busy { .. } => ProcwireStatus::Busy,
            PipeError::AccessDenied { .. } => ProcwireStatus::AccessDenied,
            PipeError::WrongKind { .. } => ProcwireStatus::WrongKind,
            PipeError::ModeMismatch { .. } => ProcwireStatus::ModeMismatch,
            PipeError::MessageTooLarge { .. } => ProcwireStatus::MessageTooLarge,
            PipeError::Timeout { .. } => ProcwireStatus::Timeout,
            PipeError::Disconnected { .. } => ProcwireStatus::Disconnected,
            PipeError::NotPermitted { .. } => ProcwireStatus::NotPermitted,
            PipeError::WrongFrame { .. } => ProcwireStatus::WrongFrame,
            PipeError::BadHandle { .. } => ProcwireStatus::BadHandle,
            PipeError::Protocol { .. } => ProcwireStatus::Protocol,
            PipeError::Io { .. } => ProcwireStatus::Io,
            _ => ProcwireStatus::Unknown,
        };
        Failure::new(status, e.to_string())
    }
}

impl From<MailslotError> for Failure {
    fn from(e: MailslotError) -> Failure {
        let status = match &e {
            MailslotError::InvalidName(_) => ProcwireStatus::InvalidName,
            MailslotError::NotFound { .. } => ProcwireStatus::NotFound,
            MailslotError::AlreadyExists { .. } => ProcwireStatus::AlreadyExists,
            MailslotError::UntrustedServer { .. } => ProcwireStatus::UntrustedServer,
            MailslotError::WrongKind { .. } => ProcwireStatus::WrongKind,
            MailslotError::AccessDenied { .. } => ProcwireStatus::AccessDenied,
            MailslotError::MessageTooLarge { .. } => ProcwireStatus::MessageTooLarge,
            MailslotError::Full { .. } => ProcwireStatus::Full,
            MailslotError::BufferTooSmall { .. } => ProcwireStatus::BufferTooSmall,
            MailslotError::Timeout { .. } => ProcwireStatus::Timeout,
            MailslotError::Disconnected { .. } => ProcwireStatus::Disconnected,
            MailslotError::NotPermitted { .. } => ProcwireStatus::NotPermitted,
            MailslotError::Io { .. } => ProcwireStatus::Io,
            _ => ProcwireStatus::Unknown,
        };
        Failure::new(status, e.to_string())
    }
}

impl From<MappingError> for Failure {
    fn from(e: MappingError) -> Failure {
        let status = match &e {
            MappingError::InvalidName(_) => ProcwireStatus::InvalidName,
            MappingError::NotFound { .. } => ProcwireStatus::NotFound,
            MappingError::AlreadyExists { .. } => ProcwireStatus::AlreadyExists,
            MappingError::WrongKind { .. } => ProcwireStatus::WrongKind,
            MappingError::AccessDenied { .. } => ProcwireStatus::AccessDenied,
            MappingError::InvalidSize { .. } => ProcwireStatus::InvalidSize,
            MappingError::OutOfRange { .. } => ProcwireStatus::OutOfRange,
            MappingError::Misaligned { .. } => ProcwireStatus::Misaligned,
            MappingError::NotPermitted { .. } => ProcwireStatus::NotPermitted,
            MappingError::Corrupt { .. } => ProcwireStatus::Corrupt,
            MappingError::Io { .. } => ProcwireStatus::Io,
            _ => ProcwireStatus::Unknown,
        };
        Failure::new(status, e.to_string())
    }
}

impl From<SyncError> for Failure {
    fn from(e: SyncError) -> Failure {
        let status = match &e {
            SyncError::InvalidName(_) => ProcwireStatus::InvalidName,
            SyncError::NotFound { .. } => ProcwireStatus::NotFound,
            SyncError::AlreadyExists { .. } => ProcwireStatus::AlreadyExists,
            SyncError::WrongKind { .. } => ProcwireStatus::WrongKind,
            SyncError::AccessDenied { .. } => ProcwireStatus::AccessDenied,
            SyncError::InvalidArgument { .. } => ProcwireStatus::InvalidArgument,
            SyncError::Timeout { .. } => ProcwireStatus::Timeout,
            SyncError::Abandoned { .. } => ProcwireStatus::Abandoned,
            SyncError::WouldDeadlock { .. } => ProcwireStatus::WouldDeadlock,
            SyncError::OverRelease { .. } => ProcwireStatus::OverRelease,
            SyncError::Corrupt { .. } => ProcwireStatus::Corrupt,
            SyncError::Io { .. } => ProcwireStatus::Io,
            _ => ProcwireStatus::Unknown,
        };
        Failure::new(status, e.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // A message never holds a NUL of its own; should one appear, it ends the C string.
    let text = message.split('\0').next().unwrap_or_default();
    let text = CString::new(text).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = text);
}

/// Runs the body of an entry point: turns its failure into a status and the thread's last
/// error message, and a panic into [`ProcwireStatus::Panic`].
pub(crate) fn run(body: impl FnOnce() -> Result<(), Failure>) -> ProcwireStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => ProcwireStatus::Ok,
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            // Setting the message allocates; should even that panic, the status stands.
            let _ = catch_unwind(|| {
                set_last_error(&format!(
                    "procwire panicked (a bug; please report it): {what}"
                ))
            });
            ProcwireStatus::Panic
        }
    }
}

/// As [`run`], for the few entry points that return a value instead of a status: `fallback`
/// when the body fails or panics.
pub(crate) fn run_value<T: Copy>(fallback: T, body: impl FnOnce() -> Result<T, Failure>) -> T {
    let mut value = fallback;
    run(|| {
        value = body()?;
        Ok(())
    });
    value
}

/// The message of the last call that failed on this thread, as a NUL-terminated UTF-8
/// string; "" when none has.
///
/// Ownership: the string belongs to the library; it stays valid until the next procwire
/// call on this thread. Copy it to keep it. Never NULL.
/// Thread safety: each thread has its own last message.
#[no_mangle]
pub extern "C" fn procwire_last_error_message() -> *const c_char {
    run_value(c"".as_ptr(), || {
        Ok(LAST_ERROR.with(|last| last.borrow().as_ptr()))
    })
}

/// The name of a status code (`"PROCWIRE_STATUS_NOT_FOUND"`), or "PROCWIRE_STATUS_UNKNOWN"
/// for a value that is no code.
///
/// Ownership: a static string; never NULL. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn procwire_status_name(status: i32) -> *const c_char {
    run_value(ProcwireStatus::Unknown.name().as_ptr(), || {
        let all = [
            ProcwireStatus::Ok,
            ProcwireStatus::InvalidName,
            ProcwireStatus::NotFound,
            ProcwireStatus::AlreadyExists,
            ProcwireStatus::UntrustedServer,
            ProcwireStatus::Busy,
            ProcwireStatus::AccessDenied,
            ProcwireStatus::WrongKind,
            ProcwireStatus::ModeMismatch,
            ProcwireStatus::MessageTooLarge,
            ProcwireStatus::Timeout,
            ProcwireStatus::Disconnected,
            ProcwireStatus::NotPermitted,
            ProcwireStatus::Protocol,
            ProcwireStatus::Io,
            ProcwireStatus::Full,
            ProcwireStatus::BufferTooSmall,
            ProcwireStatus::InvalidSize,
            ProcwireStatus::OutOfRange,
            ProcwireStatus::Misaligned,
            ProcwireStatus::Corrupt,
            ProcwireStatus::InvalidArgument,
            ProcwireStatus::Abandoned,
            ProcwireStatus::WouldDeadlock,
            ProcwireStatus::OverRelease,
            ProcwireStatus::NullPointer,
            ProcwireStatus::InvalidUtf8,
            ProcwireStatus::Panic,
            ProcwireStatus::Unknown,
            ProcwireStatus::BadHandle,
            ProcwireStatus::WrongFrame,
        ];
        let found = all.iter().find(|s| **s as i32 == status);
        Ok(found.unwrap_or(&ProcwireStatus::Unknown).name().as_ptr())
    })
}
