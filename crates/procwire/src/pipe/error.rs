//! What can go wrong with a pipe.

use std::io;
use std::time::Duration;

use crate::name::NameError;
use crate::wire::ProtocolError;

/// An error from a pipe server, client or connection.
///
/// Each variant says what happened in terms of the pipe; the underlying `io::Error`, when
/// there is one, is kept as the [source](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipeError {
    /// The name is not a valid pipe name.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// No server has a pipe of that name.
    #[error("no pipe named `{name}`: {detail}")]
    NotFound {
        /// The pipe's name.
        name: String,
        /// What was found instead.
        detail: String,
    },
    /// A live server already owns the name.
    #[error("pipe `{name}` already exists and its server ({owner}) is alive; pick another name or stop that server")]
    AlreadyExists {
        /// The pipe's name.
        name: String,
        /// Who serves it: uid and pid.
        owner: String,
    },
    /// The pipe is served by a user the client does not accept
    /// ([`ClientOptions::require_owner`](super::ClientOptions::require_owner)).
    #[error("pipe `{name}` refused: {detail}")]
    UntrustedServer {
        /// The pipe's name.
        name: String,
        /// Who serves it, and who was required.
        detail: String,
    },
    /// Every instance of the pipe is in use.
    #[error("pipe `{name}` is busy ({in_use} of {max} instances in use); retry, wait longer, or raise max_instances")]
    Busy {
        /// The pipe's name.
        name: String,
        /// Instances in use.
        in_use: u16,
        /// The maximum number of instances.
        max: u16,
    },
    /// The client may not have the access it asked for.
    #[error("access to pipe `{name}` denied: {detail}")]
    AccessDenied {
        /// The pipe's name.
        name: String,
        /// Who asked for what, and what is granted.
        detail: String,
    },
    /// The name belongs to an object of another kind.
    #[error("`{name}` is {found}, not a pipe")]
    WrongKind {
        /// The name.
        name: String,
        /// What the name is (`a regular file`, `a mailslot`, …).
        found: String,
    },
    /// The client's read mode does not fit the pipe's type.
    #[error("pipe `{name}`: {detail}")]
    ModeMismatch {
        /// The pipe's name.
        name: String,
        /// Which modes disagree.
        detail: String,
    },
    /// A message is larger than the pipe allows.
    #[error("message of {len} bytes is larger than the maximum of {max} bytes for pipe `{name}`; split it or raise max_message_size")]
    MessageTooLarge {
        /// The pipe's name.
        name: String,
        /// The message's length.
        len: u64,
        /// The pipe's maximum.
        max: u32,
    },
    /// A wait ran out.
    #[error("timed out after {after:?} {what} on pipe `{name}`")]
    Timeout {
        /// The pipe's name.
        name: String,
        /// What was being waited for (`waiting for a message`, …).
        what: &'static str,
        /// The time waited.
        after: Duration,
    },
    /// A connection in nonblocking mode
    /// ([`set_nonblocking`](super::PipeConnection::set_nonblocking), `PIPE_NOWAIT`) found
    /// nothing to take; nothing was lost. Try again later.
    #[error(
        "pipe `{name}`: nothing to {what} yet (the connection is nonblocking); try again later"
    )]
    WouldBlock {
        /// The pipe's name.
        name: String,
        /// What could not be done at once (`receive`).
        what: &'static str,
    },
    /// The other end is gone.
    #[error("pipe `{name}` disconnected: {detail}")]
    Disconnected {
        /// The pipe's name.
        name: String,
        /// How (cleanly, mid-message, with the peer's reason).
        detail: String,
    },
    /// This side tried something its access or the pipe's direction does not allow.
    #[error("pipe `{name}`: {detail}")]
    NotPermitted {
        /// The pipe's name.
        name: String,
        /// What was tried.
        detail: String,
    },
    /// The next frame is not what the receive asked for: a passed handle where
    /// [`recv`](super::PipeConnection::recv) awaited a message, or a message where
    /// [`recv_handle`](super::PipeConnection::recv_handle) awaited a handle. Nothing was
    /// taken; the connection stays usable.
    #[error("pipe `{name}`: {detail}")]
    WrongFrame {
        /// The pipe's name.
        name: String,
        /// What came, and how to receive it.
        detail: String,
    },
    /// A handle could not be passed or received: this end or this connection cannot carry
    /// it, or the peer announced a handle and sent no descriptor, or a descriptor of another
    /// kind. A receive that fails so closes every descriptor that came; the connection
    /// stays usable.
    #[error("pipe `{name}`: handle {detail}")]
    BadHandle {
        /// The pipe's name.
        name: String,
        /// What was wrong (`announced a mapping but passed a FIFO`, …).
        detail: String,
    },
    /// The peer broke the protocol.
    #[error("pipe `{name}`: protocol error: {source}")]
    Protocol {
        /// The pipe's name.
        name: String,
        /// What was wrong with the bytes.
        #[source]
        source: ProtocolError,
    },
    /// A system call failed.
    #[error("pipe `{name}`: {context}: {source}")]
    Io {
        /// The pipe's name.
        name: String,
        /// What was being done.
        context: String,
        /// The system's error.
        #[source]
        source: io::Error,
    },
}

impl PipeError {
    pub(crate) fn io(name: &str, context: impl Into<String>, source: io::Error) -> PipeError {
        PipeError::Io {
            name: name.to_owned(),
            context: context.into(),
            source,
        }
    }
}
