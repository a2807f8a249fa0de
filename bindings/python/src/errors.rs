//! `procwire.Error` and its subclasses, one per failure kind of the library, and the
//! conversions from the library's error enums.

use procwire::mailslot::MailslotError;
use procwire::mapping::MappingError;
use procwire::pipe::PipeError;
use procwire::sync::SyncError;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    procwire,
    Error,
    PyException,
    "Every failure procwire reports."
);
create_exception!(
    procwire,
    InvalidName,
    Error,
    "The name is not valid for this kind of object."
);
create_exception!(procwire, NotFound, Error, "No object has that name.");
create_exception!(
    procwire,
    AlreadyExists,
    Error,
    "A live object already has that name."
);
create_exception!(
    procwire,
    UntrustedServer,
    Error,
    "The server is run by a user the client does not accept."
);
create_exception!(
    procwire,
    Busy,
    Error,
    "Every instance of the pipe is in use."
);
create_exception!(
    procwire,
    AccessDenied,
    Error,
    "This user may not have the access asked for."
);
create_exception!(
    procwire,
    WrongKind,
    Error,
    "The name belongs to an object of another kind."
);
create_exception!(
    procwire,
    ModeMismatch,
    Error,
    "The client's read mode does not fit the pipe's type."
);
create_exception!(
    procwire,
    MessageTooLarge,
    Error,
    "A message is larger than the pipe or mailslot allows; nothing was sent."
);
create_exception!(procwire, Timeout, Error, "A wait ran out.");
create_exception!(procwire, Disconnected, Error, "The other end is gone.");
create_exception!(
    procwire,
    NotPermitted,
    Error,
    "This handle may not do that."
);
create_exception!(
    procwire,
    WrongFrame,
    Error,
    "The next frame is a passed handle where a message was awaited, or the reverse; nothing was taken."
);
create_exception!(
    procwire,
    BadHandle,
    Error,
    "A handle could not be passed or received (the connection cannot carry handles, or the peer passed something other than it announced)."
);
create_exception!(
    procwire,
    ProtocolError,
    Error,
    "The peer broke the protocol."
);
create_exception!(procwire, IoError, Error, "A system call failed.");
create_exception!(
    procwire,
    Full,
    Error,
    "The mailslot stayed full for the whole write timeout; nothing was sent."
);
create_exception!(
    procwire,
    BufferTooSmall,
    Error,
    "The buffer is smaller than the next mailslot message, which stays next."
);
create_exception!(
    procwire,
    InvalidSize,
    Error,
    "A mapping size of zero, or of an empty file without a size."
);
create_exception!(
    procwire,
    OutOfRange,
    Error,
    "A read or write reaches past the end of the mapping."
);
create_exception!(
    procwire,
    Misaligned,
    Error,
    "An offset is not aligned as it must be."
);
create_exception!(
    procwire,
    Corrupt,
    Error,
    "The object's files or shared state are damaged or foreign."
);
create_exception!(
    procwire,
    InvalidArgument,
    Error,
    "A create-time setting the object cannot have."
);
create_exception!(
    procwire,
    Abandoned,
    Error,
    "The mutex's holder died holding it; the lock is now held by the caller."
);
create_exception!(
    procwire,
    WouldDeadlock,
    Error,
    "This thread already holds the mutex (it is not recursive)."
);
create_exception!(
    procwire,
    OverRelease,
    Error,
    "A semaphore release would raise the count above its maximum."
);

/// Adds the exception classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    macro_rules! add {
        ($($name:ident),*) => { $( m.add(stringify!($name), py.get_type::<$name>())?; )* };
    }
    add!(
        Error,
        InvalidName,
        NotFound,
        AlreadyExists,
        UntrustedServer,
        Busy,
        AccessDenied,
        WrongKind,
        ModeMismatch,
        MessageTooLarge,
        Timeout,
        Disconnected,
        NotPermitted,
        WrongFrame,
        BadHandle,
        ProtocolError,
        IoError,
        Full,
        BufferTooSmall,
        InvalidSize,
        OutOfRange,
        Misaligned,
        Corrupt,
        InvalidArgument,
        Abandoned,
        WouldDeadlock,
        OverRelease
    );
    Ok(())
}

/// The exception of an error value: the class named after its variant (`Io` is
/// `IoError`, `Protocol` is `ProtocolError`), or `Error` for a kind this version does not
/// know, with the error's message.
macro_rules! convert {
    ($error:ident: $($variant:ident => $class:ident),* $(,)?) => {
        impl From<Failure<$error>> for PyErr {
            fn from(Failure(e): Failure<$error>) -> PyErr {
                let message = e.to_string();
                match e {
                    $( $error::$variant { .. } => $class::new_err(message), )*
                    _ => Error::new_err(message),
                }
            }
        }
    };
}

/// A library error on its way to becoming a Python exception (`?` converts it).
pub(crate) struct Failure<E>(pub(crate) E);

impl<E> From<E> for Failure<E> {
    fn from(e: E) -> Self {
        Failure(e)
    }
}

convert!(PipeError:
    InvalidName => InvalidName, NotFound => NotFound, AlreadyExists => AlreadyExists,
    UntrustedServer => UntrustedServer, Busy => Busy, AccessDenied => AccessDenied,
    WrongKind => WrongKind, ModeMismatch => ModeMismatch, MessageTooLarge => MessageTooLarge,
    Timeout => Timeout, Disconnected => Disconnected, NotPermitted => NotPermitted,
    WrongFrame => WrongFrame, BadHandle => BadHandle, Protocol => ProtocolError, Io => IoError,
);

convert!(MailslotError:
    InvalidName => InvalidName, NotFound => NotFound, AlreadyExists => AlreadyExists,
    UntrustedServer => UntrustedServer, WrongKind => WrongKind, AccessDenied => AccessDenied,
    MessageTooLarge => MessageTooLarge, Full => Full, BufferTooSmall => BufferTooSmall,
    Timeout => Timeout, Disconnected => Disconnected, NotPermitted => NotPermitted,
    Io => IoError,
);

convert!(MappingError:
    InvalidName => InvalidName, NotFound => NotFound, AlreadyExists => AlreadyExists,
    WrongKind => WrongKind, AccessDenied => AccessDenied, InvalidSize => InvalidSize,
    OutOfRange => OutOfRange, Misaligned => Misaligned, NotPermitted => NotPermitted,
    Corrupt => Corrupt, Io => IoError,
);

convert!(SyncError:
    InvalidName => InvalidName, NotFound => NotFound, AlreadyExists => AlreadyExists,
    WrongKind => WrongKind, AccessDenied => AccessDenied, InvalidArgument => InvalidArgument,
    Timeout => Timeout, Abandoned => Abandoned, WouldDeadlock => WouldDeadlock,
    OverRelease => OverRelease, Corrupt => Corrupt, Io => IoError,
);

/// The exception of a library error.
pub(crate) fn raise<E>(e: E) -> PyErr
where
    Failure<E>: Into<PyErr>,
{
    Failure(e).into()
}

/// `procwire.Disconnected` for a handle that was closed.
pub(crate) fn closed(what: &str) -> PyErr {
    NotPermitted::new_err(format!("this {what} is closed"))
}
