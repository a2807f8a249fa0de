//! What can go wrong with a mailslot on NATS.

use std::time::Duration;

/// An error from a NATS mailslot reader or writer. The variants mean what
/// `procwire::mailslot::MailslotError`'s of the same name mean for a local slot; the
/// NATS-only ones are [`Connect`](Self::Connect) and [`Server`](Self::Server).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsMailslotError {
    /// The name is not a NATS mailslot name (`nats://HOST:PORT/mailslot/Name` or
    /// `nats://HOST:PORT/mailslot/*/Name`).
    #[error("`{name}` is not a NATS mailslot name: {detail}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it, and what a valid name looks like.
        detail: String,
    },
    /// The name, or the JetStream stream behind it, belongs to something that is not a
    /// mailslot.
    #[error("`{name}` is {found}, not a mailslot")]
    WrongKind {
        /// The name.
        name: String,
        /// What it is.
        found: String,
    },
    /// Another reader of the slot is alive (it answered on `procwire.reader.Name`).
    #[error("mailslot `{name}` already has a live reader ({owner}); a stored slot has one reader at a time: stop that one, or read from it")]
    AlreadyExists {
        /// The slot's name.
        name: String,
        /// Who reads it, as it answered: `pid PID on HOST`.
        owner: String,
    },
    /// No slot of that name is stored on the server.
    #[error("no mailslot `{name}`: {detail}")]
    NotFound {
        /// The slot's name.
        name: String,
        /// What was looked for, and how to make the slot.
        detail: String,
    },
    /// A message is larger than the slot allows; it was not sent (or, from a writer that
    /// is not procwire's, not stored).
    #[error("message of {len} bytes is larger than the maximum of {max} bytes for mailslot `{name}`; it was not sent")]
    MessageTooLarge {
        /// The slot's name.
        name: String,
        /// The message's length.
        len: usize,
        /// The slot's maximum.
        max: usize,
    },
    /// The slot's store stayed full for the whole write timeout; the message was not
    /// stored.
    #[error("mailslot `{name}` stayed full for {waited:?} (its reader is not keeping up, or its max_waiting is too small); the message was not stored, retry later")]
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
    /// The NATS server did not answer within the time the call had (it is down, or
    /// restarting, and the client is reconnecting).
    #[error("mailslot `{name}`: {detail}")]
    Disconnected {
        /// The slot's name.
        name: String,
        /// What was being done and how long it was tried.
        detail: String,
    },
    /// The options ask for something this slot cannot do.
    #[error("mailslot `{name}`: {detail}")]
    NotPermitted {
        /// The slot's name.
        name: String,
        /// What was asked, and what the slot allows.
        detail: String,
    },
    /// No connection to the NATS server could be made.
    #[error("cannot connect to the NATS server `{server}` for mailslot `{name}`: {source}; is nats-server running there (with -js for stored slots), and are the credentials and TLS options right?")]
    Connect {
        /// The slot's name.
        name: String,
        /// The server's address.
        server: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The NATS server refused a request for a reason not covered above.
    #[error("mailslot `{name}`: the NATS server refused to {what}: {detail}")]
    Server {
        /// The slot's name.
        name: String,
        /// What was asked.
        what: String,
        /// The server's answer (JetStream error code and description).
        detail: String,
    },
}

impl NatsMailslotError {
    /// Whether the same call may succeed later without any change (the server was
    /// unreachable, or the slot was full).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            NatsMailslotError::Disconnected { .. }
                | NatsMailslotError::Full { .. }
                | NatsMailslotError::Timeout { .. }
        )
    }
}
