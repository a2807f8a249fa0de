//! What can go wrong with a mailslot.

use std::io;
use std::time::Duration;

use crate::name::NameError;

/// An error from a mailslot server or writer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailslotError {
    /// The name is not a valid mailslot name.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// No server has a slot of that name.
    #[error("no mailslot named `{name}`: {detail}")]
    NotFound {
        /// The slot's name.
        name: String,
        /// What was found instead.
        detail: String,
    },
    /// A live server already owns the name.
    #[error("mailslot `{name}` already exists and its server ({owner}) is alive; pick another name or stop that server")]
    AlreadyExists {
        /// The slot's name.
        name: String,
        /// Who serves it: uid and pid.
        owner: String,
    },
    /// The slot is served by a user the writer does not accept
    /// ([`WriterOptions::require_owner`](super::WriterOptions::require_owner)), or its files
    /// disagree about who serves it.
    #[error("mailslot `{name}` refused: {detail}")]
    UntrustedServer {
        /// The slot's name.
        name: String,
        /// Who serves it, and who was required.
        detail: String,
    },
    /// The name belongs to something that is not a mailslot.
    #[error("`{name}` is {found}, not a mailslot")]
    WrongKind {
        /// The name.
        name: String,
        /// What it is.
        found: String,
    },
    /// This user may not write to the slot.
    #[error("access to mailslot `{name}` denied: {detail}")]
    AccessDenied {
        /// The slot's name.
        name: String,
        /// Why.
        detail: String,
    },
    /// A message is larger than the slot allows; it was not sent.
    #[error("message of {len} bytes is larger than the maximum of {max} bytes for mailslot `{name}`; it was not sent")]
    MessageTooLarge {
        /// The slot's name.
        name: String,
        /// The message's length.
        len: usize,
        /// The slot's maximum.
        max: usize,
    },
    /// The slot stayed full for the whole write timeout; the message was not sent.
    #[error("mailslot `{name}` stayed full for {waited:?} (its reader is not keeping up); the message was not sent, retry later")]
    Full {
        /// The slot's name.
        name: String,
        /// How long the writer waited.
        waited: Duration,
    },
    /// The caller's buffer is smaller than the next message, which stays next.
    #[error("the next message in mailslot `{name}` is {needed} bytes, larger than the {given}-byte buffer; it is kept for a read with a larger buffer")]
    BufferTooSmall {
        /// The slot's name.
        name: String,
        /// The next message's size.
        needed: usize,
        /// The buffer's size.
        given: usize,
    },
    /// A read found no message within the read timeout.
    #[error("no message arrived in mailslot `{name}` within {after:?}")]
    Timeout {
        /// The slot's name.
        name: String,
        /// The read timeout.
        after: Duration,
    },
    /// The slot's server went away.
    #[error("mailslot `{name}`: {detail}")]
    Disconnected {
        /// The slot's name.
        name: String,
        /// What happened.
        detail: String,
    },
    /// The options ask for something this slot cannot do.
    #[error("mailslot `{name}`: {detail}")]
    NotPermitted {
        /// The slot's name.
        name: String,
        /// What was asked.
        detail: String,
    },
    /// A system call failed.
    #[error("mailslot `{name}`: {context}: {source}")]
    Io {
        /// The slot's name.
        name: String,
        /// What was being done.
        context: String,
        /// The system's error.
        #[source]
        source: io::Error,
    },
}

impl MailslotError {
    pub(crate) fn io(name: &str, context: impl Into<String>, source: io::Error) -> Self {
        MailslotError::Io {
            name: name.to_owned(),
            context: context.into(),
            source,
        }
    }
}
