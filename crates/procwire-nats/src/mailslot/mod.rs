//! Mailslots on a NATS server: one-way messages from many writers, on any host, to one
//! reader, stored in JetStream until read.
//!
//! | Windows | procwire (local) | procwire on NATS |
//! |---|---|---|
//! | `CreateMailslot` | `MailslotOptions::create` | [`NatsMailslotOptions::create`] → [`NatsMailslot`] |
//! | `GetMailslotInfo` | `MailslotServer::info` | [`NatsMailslot::info`] → [`MailslotInfo`] |
//! | `SetMailslotInfo` | `MailslotServer::set_read_timeout` | [`NatsMailslot::set_read_timeout`] |
//! | `ReadFile` | `MailslotServer::read` | [`NatsMailslot::read`] |
//! | `CreateFile` + `WriteFile` | `MailslotWriter::open` + `write` | [`NatsMailslotWriter::open`] + [`write`](NatsMailslotWriter::write) |
//! | `\\*\mailslot\Name` | a UDP broadcast | `nats://HOST:PORT/mailslot/*/Name` |
//!
//! # Names
//!
//! - `nats://HOST:PORT/mailslot/Name` — a **stored** slot: the JetStream stream
//!   `PROCWIRE_MAILSLOT_Name` (work-queue retention, file storage) with the one subject
//!   `procwire.mailslot.Name`.
//! - `nats://HOST:PORT/mailslot/*/Name` — a **broadcast** slot: core NATS messages on
//!   `procwire.broadcast.Name`, to every reader listening; nothing is stored.
//!
//! `Name` is 1 to 200 ASCII letters, digits, `-` and `_`; `tls://` instead of `nats://`
//! requires TLS; credentials and TLS settings are in [`NatsOptions`].
//! The stream, subjects and message layout are in `docs/protocol.md`, so that any NATS
//! client can write to or read a slot.
//!
//! # What is promised
//!
//! **A stored slot outlives its reader and loses nothing.** A write returns only once the
//! server has stored the message (a JetStream publish acknowledgement); it stays stored
//! while no reader runs, and across a restart of the server with its store. The reader
//! gets messages in the order stored, and [`NatsMailslot::info`] counts exactly what the
//! stream holds. Delivery is **at-least-once**: a message is removed from the stream
//! when the reader comes back after reading it (next read, peek, info, close or drop), so
//! a reader killed in between leaves it for the next reader — only that one message can
//! be delivered twice. (A server restart can store again a write whose acknowledgement it
//! cut off, as nats-server forgets the ids of removed messages when it restarts; the
//! reader knows the ids of the last 4,096 messages it handed out and drops such a copy.) One reader per slot at a time: a second reader's `create` fails
//! with [`NatsMailslotError::AlreadyExists`] while the first is alive.
//!
//! **The slot must exist before writers open it**: a reader's
//! [`create`](NatsMailslotOptions::create) makes it (as `CreateMailslot` does), and it
//! stays when that reader exits; [`NatsWriterOptions::open`] on a slot that was never
//! created fails with [`NatsMailslotError::NotFound`], and
//! [`NatsWriterOptions::open_or_create`] creates it with the default sizes instead.
//!
//! **Sizes are checked on both sides.** A writer refuses a message over the slot's
//! maximum with [`NatsMailslotError::MessageTooLarge`] before sending it; the stream's own
//! maximum (the slot's, plus 128 bytes for the message id header) makes the server refuse
//! bigger ones from any other client; and the reader drops (and counts,
//! [`NatsMailslot::dropped_oversize`]) a stored message over the slot's maximum that a
//! foreign writer slipped into those 128 bytes.
//!
//! **A broadcast is not stored** and may be missed: it reaches the readers listening at
//! the moment it is published, and no one else; a reader that lets broadcasts pile up
//! unread keeps 65,536 of them taken in and as many again in the NATS client's buffer, and
//! loses the newest beyond (a slow consumer, to the NATS client); `info()` counts those
//! taken in. Unlike a Windows slot, a stored slot's
//! reader does not also receive the broadcasts of its name: listen on the `*` form for
//! them.
//!
//! **Who may write and read is the NATS server's to say**, not procwire's: a slot has no
//! access list of its own. Any client of the same NATS account that may publish on
//! `procwire.mailslot.Name` can write; one that may use the JetStream API can read, count
//! or remove the slot. Give writers and readers their own users with subject permissions
//! (see `docs/protocol.md` for the subjects each side uses), and TLS off this machine.
//! A request the permissions refuse is not told apart yet: the server reports it on the
//! connection, not as an answer, so the call ends as
//! [`NatsMailslotError::Disconnected`] when its time is up.
//!
//! **Stored slots can be listed, tested and removed**: [`list`], [`exists`],
//! [`NatsMailslot::remove`].
//!
//! **Blocking and async.** [`NatsMailslot`] and [`NatsMailslotWriter`] run a small tokio
//! runtime of their own (one worker thread, which also keeps the connection alive between
//! calls); [`AsyncNatsMailslot`] and [`AsyncNatsMailslotWriter`] run on the caller's. A
//! read future that is dropped (a `select!`, a timeout) takes nothing: the message stays
//! next. Do not drop a blocking reader or writer inside a tokio runtime (its drop waits
//! on its own runtime).

mod api;
mod error;
mod list;
mod name;
mod options;
mod presence;
mod reader;
mod writer;

pub use crate::NatsOptions;
pub use api::HEADER_ROOM;
pub use error::NatsMailslotError;
pub use list::{exists, exists_async, list, list_async};
pub use name::{BROADCAST_PREFIX, MAX_NAME_LEN, STREAM_PREFIX, SUBJECT_PREFIX};
pub use options::{
    NatsMailslotOptions, NatsWriterOptions, ReadTimeout, DEFAULT_MAX_MESSAGE, DEFAULT_MAX_WAITING,
};
pub use presence::READER_PREFIX;
pub use procwire::mailslot::MailslotInfo;
pub use reader::{AsyncNatsMailslot, NatsMailslot};
pub use writer::{AsyncNatsMailslotWriter, NatsMailslotWriter};
