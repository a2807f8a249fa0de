//! Errors: [`RemotingError`] on this side, [`RemoteError`] from the other side.

use std::fmt;
use std::io;
use std::time::Duration;

use procwire::pipe::PipeError;
use serde::{Deserialize, Serialize};

/// What kind of failure the server reported. Travels on the wire as a small number, never
/// as a type name.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RemoteErrorKind {
    /// No application or service by that name on the server.
    UnknownService,
    /// The service has no method by that name.
    UnknownMethod,
    /// The arguments did not decode as the types the method declares.
    BadArguments,
    /// The client-activated object (or leased singleton) is gone: its lease ended.
    ObjectDisconnected,
    /// The call did not finish before its deadline.
    DeadlineExceeded,
    /// A message was larger than the server accepts.
    MessageTooLarge,
    /// The method itself returned an error.
    Application,
    /// The method panicked; the server goes on.
    Panicked,
    /// The request was malformed.
    Protocol,
    /// Too many calls in flight on this connection; retry later.
    Busy,
    /// Something else went wrong in the server.
    Internal,
}

impl RemoteErrorKind {
    /// A stable lower-case name, as used in JSON error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteErrorKind::UnknownService => "unknown_service",
            RemoteErrorKind::UnknownMethod => "unknown_method",
            RemoteErrorKind::BadArguments => "bad_arguments",
            RemoteErrorKind::ObjectDisconnected => "object_disconnected",
            RemoteErrorKind::DeadlineExceeded => "deadline_exceeded",
            RemoteErrorKind::MessageTooLarge => "message_too_large",
            RemoteErrorKind::Application => "application",
            RemoteErrorKind::Panicked => "panicked",
            RemoteErrorKind::Protocol => "protocol",
            RemoteErrorKind::Busy => "busy",
            RemoteErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for RemoteErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error the server sent back: a kind and a message. Methods of a remote interface may
/// return `Result<T, RemoteError>` to send their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RemoteError {
    /// What kind of failure.
    pub kind: RemoteErrorKind,
    /// What happened, for a human.
    pub message: String,
}

impl RemoteError {
    /// An error of `kind` saying `message`.
    pub fn new(kind: RemoteErrorKind, message: impl Into<String>) -> RemoteError {
        RemoteError {
            kind,
            message: message.into(),
        }
    }

    /// An application error (kind [`RemoteErrorKind::Application`]).
    pub fn application(message: impl Into<String>) -> RemoteError {
        RemoteError::new(RemoteErrorKind::Application, message)
    }
}

/// Everything that can go wrong in remoting, on the client or the server.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RemotingError {
    /// The server answered with an error.
    #[error("remote error: {0}")]
    Remote(#[from] RemoteError),
    /// A URL could not be understood.
    #[error("invalid remoting URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Could not reach the server.
    #[error("cannot connect to `{target}`: {source}; is the server running?")]
    Connect {
        /// Where we tried to connect.
        target: String,
        /// The cause.
        source: io::Error,
    },
    /// Could not listen.
    #[error("cannot listen on `{target}`: {source}")]
    Bind {
        /// The address.
        target: String,
        /// The cause.
        source: io::Error,
    },
    /// A non-loopback listener without TLS and without the explicit opt-out.
    #[error("refusing to listen on `{addr}` in plaintext: it is not a loopback address; use TLS or call allow_plaintext_network()")]
    PlaintextNetwork {
        /// The address.
        addr: String,
    },
    /// The pipe layer failed.
    #[error(transparent)]
    Pipe(#[from] PipeError),
    /// An I/O error on a connection.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: io::Error,
    },
    /// The call did not finish in time; the connection stays usable.
    #[error("call `{method}` timed out after {after:?}")]
    Timeout {
        /// The method called.
        method: String,
        /// The deadline.
        after: Duration,
    },
    /// The connection is gone; calls in flight failed.
    #[error("connection lost: {reason}")]
    Disconnected {
        /// Why.
        reason: String,
    },
    /// A message was over the maximum size.
    #[error("message of {size} bytes is larger than the maximum of {max} bytes")]
    MessageTooLarge {
        /// Its size.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// The peer sent bytes that are not a valid remoting message.
    #[error("protocol error: {reason}")]
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// A value could not be encoded or decoded on this side.
    #[error("cannot encode or decode a value: {reason}")]
    Codec {
        /// What went wrong.
        reason: String,
    },
}

impl RemotingError {
    /// The remote error kind, when this is an error from the server.
    pub fn remote_kind(&self) -> Option<RemoteErrorKind> {
        match self {
            RemotingError::Remote(e) => Some(e.kind),
            _ => None,
        }
    }
}
