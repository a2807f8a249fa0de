//! Builders for NATS mailslot readers and writers.

use std::time::Duration;

pub use procwire::mailslot::ReadTimeout;

use super::{
    AsyncNatsMailslot, AsyncNatsMailslotWriter, NatsMailslot, NatsMailslotError,
    NatsMailslotWriter, NatsOptions,
};

/// The default largest message: 64 KiB, as for a local slot.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;

/// The default store of a slot: a million unread messages.
pub const DEFAULT_MAX_WAITING: usize = 1_000_000;

/// How to create (or reopen) a NATS mailslot's reader: the arguments of `CreateMailslot`.
///
/// The maximum message size and the number of messages stored are fixed when the slot's stream is first
/// created; a later `create` of the same slot must ask for the same maximum (or none).
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use procwire_nats::mailslot::{NatsMailslotOptions, ReadTimeout};
///
/// let slot = NatsMailslotOptions::new()
///     .max_message_size(424)
///     .read_timeout(ReadTimeout::After(Duration::from_secs(2)))
///     .create("nats://127.0.0.1:4222/mailslot/HelloWorld")?;
/// println!("{} messages waiting", slot.info()?.waiting);
/// # Ok::<(), procwire_nats::mailslot::NatsMailslotError>(())
/// ```
#[derive(Debug, Clone)]
pub struct NatsMailslotOptions {
    pub(crate) max_message: Option<usize>,
    pub(crate) read_timeout: ReadTimeout,
    pub(crate) max_waiting: usize,
    pub(crate) nats: NatsOptions,
}

impl Default for NatsMailslotOptions {
    fn default() -> Self {
        NatsMailslotOptions::new()
    }
}

impl NatsMailslotOptions {
    /// 64 KiB messages (or the existing slot's maximum), reads that wait forever, a
    /// million messages stored, no credentials.
    pub fn new() -> NatsMailslotOptions {
        NatsMailslotOptions {
            max_message: None,
            read_timeout: ReadTimeout::Forever,
            max_waiting: DEFAULT_MAX_WAITING,
            nats: NatsOptions::new(),
        }
    }

    /// The largest message writers may send, in bytes (`nMaxMessageSize`); at most the
    /// server's maximum payload less 128 bytes. Fixed when the slot is first created.
    pub fn max_message_size(mut self, max: usize) -> Self {
        self.max_message = Some(max);
        self
    }

    /// How long reads wait (`lReadTimeout`); can be changed later with
    /// [`set_read_timeout`](NatsMailslot::set_read_timeout).
    pub fn read_timeout(mut self, timeout: ReadTimeout) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// How many unread messages the slot stores before writes wait, then fail with
    /// [`NatsMailslotError::Full`]. Fixed when the slot is first created; unused for a
    /// broadcast slot.
    ///
    /// A count, not bytes as for a local slot: nats-server 2.9 drops the *oldest*
    /// messages of a stream with a byte limit when messages carrying a `Nats-Msg-Id` (as
    /// procwire's do) go over it, instead of refusing the new one. Bytes are bounded by
    /// this count times the maximum message size, and by the server's JetStream storage.
    pub fn max_waiting(mut self, messages: usize) -> Self {
        self.max_waiting = messages.max(1);
        self
    }

    /// Credentials and TLS for the connection.
    pub fn nats(mut self, nats: NatsOptions) -> Self {
        self.nats = nats;
        self
    }

    /// Creates the slot `name` (`nats://HOST:PORT/mailslot/Name`), or opens it with the
    /// messages it stores if it exists; or listens to the broadcast slot
    /// `nats://HOST:PORT/mailslot/*/Name`. Blocking: runs a small runtime of its own; call
    /// [`create_async`](Self::create_async) inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`NatsMailslotError::InvalidName`] and [`NatsMailslotError::WrongKind`] for a name
    /// that is not a mailslot's, or a stream of that name that is not a slot's;
    /// [`NatsMailslotError::Connect`] when the server cannot be reached;
    /// [`NatsMailslotError::NotPermitted`] for a maximum the server or the existing slot
    /// does not allow.
    pub fn create(&self, name: &str) -> Result<NatsMailslot, NatsMailslotError> {
        NatsMailslot::create_with(name, self)
    }

    /// As [`create`](Self::create), on the caller's tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create).
    pub async fn create_async(&self, name: &str) -> Result<AsyncNatsMailslot, NatsMailslotError> {
        AsyncNatsMailslot::create_with(name, self).await
    }
}

/// How to open a NATS mailslot for writing: the `CreateFile` side.
#[derive(Debug, Clone)]
pub struct NatsWriterOptions {
    pub(crate) timeout: Duration,
    pub(crate) nats: NatsOptions,
}

impl Default for NatsWriterOptions {
    fn default() -> Self {
        NatsWriterOptions::new()
    }
}

impl NatsWriterOptions {
    /// Writes (and the open) try for up to 10 s; no credentials.
    pub fn new() -> NatsWriterOptions {
        NatsWriterOptions {
            timeout: Duration::from_secs(10),
            nats: NatsOptions::new(),
        }
    }

    /// How long a write may take: while the server does not answer (a restart) or the
    /// slot is full, the write tries again until then, and fails with
    /// [`NatsMailslotError::Disconnected`] or [`NatsMailslotError::Full`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Credentials and TLS for the connection.
    pub fn nats(mut self, nats: NatsOptions) -> Self {
        self.nats = nats;
        self
    }

    /// Opens the slot `name` for writing. A stored slot must exist (a reader created it
    /// once; it outlives its reader); a broadcast slot always does. Blocking: runs a small
    /// runtime of its own; call [`open_async`](Self::open_async) inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`NatsMailslotError::NotFound`] when the server stores no such slot;
    /// [`NatsMailslotError::InvalidName`], [`NatsMailslotError::WrongKind`],
    /// [`NatsMailslotError::Connect`].
    pub fn open(&self, name: &str) -> Result<NatsMailslotWriter, NatsMailslotError> {
        NatsMailslotWriter::open_with(name, self, false)
    }

    /// As [`open`](Self::open), creating a stored slot that does not exist yet with the
    /// defaults of [`NatsMailslotOptions::new`] (64 KiB messages, a million stored), so
    /// that messages written before any reader ever ran are kept for it.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), less `NotFound`.
    pub fn open_or_create(&self, name: &str) -> Result<NatsMailslotWriter, NatsMailslotError> {
        NatsMailslotWriter::open_with(name, self, true)
    }

    /// As [`open`](Self::open), on the caller's tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub async fn open_async(
        &self,
        name: &str,
    ) -> Result<AsyncNatsMailslotWriter, NatsMailslotError> {
        AsyncNatsMailslotWriter::open_with(name, self, false).await
    }

    /// As [`open_or_create`](Self::open_or_create), on the caller's tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`open_or_create`](Self::open_or_create).
    pub async fn open_or_create_async(
        &self,
        name: &str,
    ) -> Result<AsyncNatsMailslotWriter, NatsMailslotError> {
        AsyncNatsMailslotWriter::open_with(name, self, true).await
    }
}
