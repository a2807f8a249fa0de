//! What a connection knows about itself, and how its low-level failures become
//! [`PipeError`]s. Shared by the blocking and the tokio connection.

use std::io;
use std::time::Duration;

use super::admission::InstanceSlot;
use super::framing::RecvError;
use super::PipeError;
use crate::security::{Access, PeerCredentials};
use crate::wire::{PipeMode, ProtocolError};

/// A connection's fixed facts.
#[derive(Debug)]
pub(crate) struct Info {
    pub(crate) name: String,
    pub(crate) pipe_type: PipeMode,
    pub(crate) read_mode: PipeMode,
    /// What this side may do.
    pub(crate) access: Access,
    pub(crate) max_message: u32,
    pub(crate) peer: Option<PeerCredentials>,
    /// Whether this is the client's end.
    pub(crate) is_client: bool,
    /// Held by server-side connections: frees the instance on drop.
    pub(crate) _slot: Option<InstanceSlot>,
}

/// What a receive that failed means for the connection.
pub(crate) enum Failure {
    /// Report the error; the connection is still usable (a timeout).
    Retry(PipeError),
    /// Report the error; the peer is gone or the stream is unusable.
    Fatal(PipeError),
    /// The peer broke the protocol: send it a close frame with this reason, then report.
    Refuse(PipeError, String),
}

impl Info {
    pub(crate) fn check_can_write(&self) -> Result<(), PipeError> {
        if self.access.can_write() {
            return Ok(());
        }
        Err(PipeError::NotPermitted {
            name: self.name.clone(),
            detail: "this end of the pipe may only read (the pipe's direction or the access \
                     asked for does not include writing)"
                .into(),
        })
    }

    pub(crate) fn check_can_read(&self) -> Result<(), PipeError> {
        if self.access.can_read() {
            return Ok(());
        }
        Err(PipeError::NotPermitted {
            name: self.name.clone(),
            detail: "this end of the pipe may only write (the pipe's direction or the access \
                     asked for does not include reading)"
                .into(),
        })
    }

    pub(crate) fn check_messages(&self) -> Result<(), PipeError> {
        if self.pipe_type == PipeMode::Message {
            return Ok(());
        }
        Err(PipeError::ModeMismatch {
            name: self.name.clone(),
            detail: "this is a byte-type pipe: it has no message boundaries; use it as a \
                     stream (Read/Write)"
                .into(),
        })
    }

    pub(crate) fn check_size(&self, len: usize) -> Result<(), PipeError> {
        if len as u64 <= u64::from(self.max_message) {
            return Ok(());
        }
        Err(PipeError::MessageTooLarge {
            name: self.name.clone(),
            len: len as u64,
            max: self.max_message,
        })
    }

    /// Classifies a receive failure. `waited` is the timeout that was in force.
    pub(crate) fn recv_failure(&self, e: RecvError, waited: Option<Duration>) -> Failure {
        let name = self.name.clone();
        match e {
            RecvError::Io(e) => match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    Failure::Retry(PipeError::Timeout {
                        name,
                        what: "waiting for a message",
                        after: waited.unwrap_or_default(),
                    })
                }
                _ => Failure::Fatal(self.io_failure("receive failed", e)),
            },
            RecvError::Eof { detail, .. } => {
                Failure::Fatal(PipeError::Disconnected { name, detail })
            }
            RecvError::Closed(reason) => Failure::Fatal(PipeError::Disconnected {
                name,
                detail: format!("the peer closed the pipe: {reason}"),
            }),
            RecvError::Unexpected(detail) => Failure::Retry(PipeError::WrongFrame {
                name,
                detail: detail.into(),
            }),
            RecvError::Protocol(ProtocolError::FrameTooLarge { len, max }) => {
                let reason = format!("message of {len} bytes refused: the maximum is {max} bytes");
                Failure::Refuse(PipeError::MessageTooLarge { name, len, max }, reason)
            }
            RecvError::Protocol(source) => {
                let reason = format!("protocol error: {source}");
                Failure::Refuse(PipeError::Protocol { name, source }, reason)
            }
        }
    }

    /// Maps an I/O error of a send or receive, telling a vanished peer apart.
    pub(crate) fn io_failure(&self, context: &str, e: io::Error) -> PipeError {
        match e.kind() {
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
            | io::ErrorKind::UnexpectedEof => PipeError::Disconnected {
                name: self.name.clone(),
                detail: format!("{context}: the peer is gone ({e})"),
            },
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => PipeError::Timeout {
                name: self.name.clone(),
                what: "sending",
                after: Duration::ZERO,
            },
            _ => PipeError::io(&self.name, context, e),
        }
    }

    /// The error for using a connection that an earlier failure made unusable.
    pub(crate) fn broken(&self, why: &str) -> PipeError {
        PipeError::Disconnected {
            name: self.name.clone(),
            detail: format!("the connection is no longer usable: {why}"),
        }
    }
}

/// How much of a message a [`recv_into`](super::PipeConnection::recv_into) delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagePart {
    /// Bytes written into the caller's buffer.
    pub len: usize,
    /// Whether that was the end of the message. When `false` (the buffer was too small, the
    /// `ERROR_MORE_DATA` case), the next receive returns the rest of the same message.
    pub complete: bool,
}

/// What [`peek`](super::PipeConnection::peek) saw waiting on a connection, without taking
/// any of it (`PeekNamedPipe`).
///
/// # References
/// - [`PeekNamedPipe`](https://learn.microsoft.com/en-us/windows/win32/api/namedpipeapi/nf-namedpipeapi-peeknamedpipe)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[doc(alias = "PeekNamedPipe")]
pub struct PeekInfo {
    /// Payload bytes that have arrived and not been received yet, across messages
    /// (`lpTotalBytesAvail`); frame headers are not counted. On a byte-type pipe: the
    /// bytes a read would find now. Over TLS only the bytes already decrypted count. What
    /// can wait is bounded by the transport (the socket's buffers, or the shared-memory
    /// ring): the rest of a longer message is still with its sender.
    pub bytes_available: usize,
    /// The whole length of the message the next receive works on: the one a receive left
    /// unfinished (a [`MessagePart`] with `complete == false`), else the next one, once its
    /// length has arrived. `None` between messages with nothing waiting, and on byte-type
    /// pipes.
    pub message_len: Option<usize>,
    /// Of that message, the bytes not yet received, whether they have arrived or not
    /// (`lpBytesLeftThisMessage`): its length when none of it was received, less once a
    /// receive returned part of it. 0 when `message_len` is `None`.
    pub bytes_left_in_message: usize,
}

impl PeekInfo {
    /// Whether a receive would find something to take now (data, or the start of a
    /// message).
    pub fn is_empty(&self) -> bool {
        self.bytes_available == 0 && self.message_len.is_none()
    }
}

/// Turns a [`PipeError`] into the `io::Error` that `Read`/`Write` must return, keeping it as
/// the inner error.
pub(crate) fn into_io(e: PipeError) -> io::Error {
    let kind = match &e {
        PipeError::Timeout { .. } => io::ErrorKind::TimedOut,
        PipeError::WouldBlock { .. } => io::ErrorKind::WouldBlock,
        PipeError::Disconnected { .. } => io::ErrorKind::BrokenPipe,
        PipeError::NotPermitted { .. } | PipeError::AccessDenied { .. } => {
            io::ErrorKind::PermissionDenied
        }
        PipeError::MessageTooLarge { .. } => io::ErrorKind::InvalidInput,
        PipeError::Protocol { .. } => io::ErrorKind::InvalidData,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}
