//! The writer of a NATS mailslot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::{Client, HeaderMap};
use bytes::Bytes;

use super::api::{self, code, Failure, PubAck};
use super::name::SlotName;
use super::options::{NatsWriterOptions, DEFAULT_MAX_WAITING};
use super::reader::{ensure_stream, runtime};
use super::NatsMailslotError;

#[derive(Debug)]
struct Writer {
    name: SlotName,
    client: Client,
    max_message: AtomicU64,
    timeout: std::time::Duration,
    /// This writer's part of every message id, unique among writers.
    id: String,
    sent: AtomicU64,
}

/// The writer of a NATS mailslot on the caller's tokio runtime: the async form of
/// [`NatsMailslotWriter`].
#[derive(Debug, Clone)]
pub struct AsyncNatsMailslotWriter {
    inner: Arc<Writer>,
}

impl AsyncNatsMailslotWriter {
    pub(crate) async fn open_with(
        name: &str,
        options: &NatsWriterOptions,
        create: bool,
    ) -> Result<AsyncNatsMailslotWriter, NatsMailslotError> {
        let name = SlotName::parse(name)?;
        let client = name.connect(&options.nats).await?;
        let max_message = if name.broadcast {
            client.server_info().max_payload
        } else {
            let create = create.then_some((None, DEFAULT_MAX_WAITING));
            ensure_stream(&client, &name, create, Instant::now() + options.timeout).await?
        };
        Ok(AsyncNatsMailslotWriter {
            inner: Arc::new(Writer {
                name,
                client,
                max_message: AtomicU64::new(max_message as u64),
                timeout: options.timeout,
                id: nuid::next().to_string(),
                sent: AtomicU64::new(0),
            }),
        })
    }

    /// The slot's name, as given.
    pub fn name(&self) -> &str {
        &self.inner.name.full
    }

    /// The largest message this writer may send: the slot's maximum for a stored slot,
    /// the server's maximum payload for a broadcast.
    pub fn max_message_size(&self) -> usize {
        self.inner.max_message.load(Ordering::Relaxed) as usize
    }

    /// As [`NatsMailslotWriter::write`].
    ///
    /// # Errors
    ///
    /// As [`NatsMailslotWriter::write`].
    pub async fn write(&self, message: &[u8]) -> Result<(), NatsMailslotError> {
        let w = &*self.inner;
        let max = self.max_message_size();
        if message.len() > max {
            return Err(w.too_large(message.len(), max));
        }
        let payload = Bytes::copy_from_slice(message);
        if w.name.broadcast {
            return w.broadcast(payload).await;
        }
        let started = Instant::now();
        let deadline = Some(started + w.timeout);
        let mut headers = HeaderMap::new();
        let n = w.sent.fetch_add(1, Ordering::Relaxed);
        headers.insert("Nats-Msg-Id", format!("{}-{n}", w.id).as_str());
        let mut full = false;
        loop {
            let ack: Result<PubAck, Failure> = api::request(
                &w.client,
                w.name.subject(),
                Some(headers.clone()),
                payload.clone(),
                api::attempt_limit(deadline),
            )
            .await;
            match ack {
                Ok(ack) if ack.stream == w.name.stream() => return Ok(()),
                // Not the slot's stream (a stranger answering on the subject): as no answer,
                // tried again; the message id keeps a message stored once.
                Ok(ack) if !api::past(deadline) => {
                    tracing::warn!(slot = %w.name.full, stream = %ack.stream, "a store acknowledgement from another stream; trying again");
                    api::pause(deadline).await;
                }
                Ok(ack) => {
                    let f = Failure::Transient(format!(
                        "only stream `{}`, not the slot's, acknowledged it",
                        ack.stream
                    ));
                    return Err(api::failed(&w.name, "store the message", started, f));
                }
                Err(f) if f.is(code::MESSAGE_TOO_LARGE) => {
                    // The slot's maximum is lower than this writer was told: ask again.
                    let max =
                        match api::stream_info(&w.client, &w.name, api::attempt_limit(deadline))
                            .await
                        {
                            Ok(info) => api::check_kind(&w.name, &info)?,
                            Err(_) => message.len().saturating_sub(1),
                        };
                    w.max_message.store(max as u64, Ordering::Relaxed);
                    return Err(w.too_large(message.len(), max));
                }
                Err(f) if is_full(&f) => {
                    full = true;
                    if api::past(deadline) {
                        return Err(NatsMailslotError::Full {
                            name: w.name.full.clone(),
                            waited: started.elapsed(),
                        });
                    }
                    tracing::debug!(slot = %w.name.full, "the slot is full; waiting");
                    api::pause(deadline).await;
                }
                Err(Failure::Transient(why)) if !api::past(deadline) => {
                    tracing::debug!(slot = %w.name.full, %why, "retrying a write");
                    api::pause(deadline).await;
                }
                Err(Failure::Transient(_)) if full => {
                    return Err(NatsMailslotError::Full {
                        name: w.name.full.clone(),
                        waited: started.elapsed(),
                    })
                }
                Err(f @ Failure::Transient(_)) => {
                    // Nobody stored it in time: a server that is down, or a slot that was
                    // removed (then no stream has the subject, and nobody answers).
                    let limit = Duration::from_secs(1);
                    if let Err(gone) = api::stream_info(&w.client, &w.name, limit).await {
                        if gone.is(code::STREAM_NOT_FOUND) {
                            return Err(api::not_found(&w.name));
                        }
                    }
                    return Err(api::failed(&w.name, "store the message", started, f));
                }
                Err(f) => return Err(api::failed(&w.name, "store the message", started, f)),
            }
        }
    }
}

/// Whether a publish was refused because the slot's store is full.
fn is_full(f: &Failure) -> bool {
    match f {
        Failure::Refused {
            err_code,
            description,
        } => {
            *err_code == code::STORAGE_EXCEEDED
                || *err_code == code::INSUFFICIENT_RESOURCES
                || (*err_code == code::STORE_FAILED && description.contains("maximum"))
                || description.contains("maximum bytes exceeded")
                || description.contains("maximum messages exceeded")
        }
        Failure::Transient(_) => false,
    }
}

impl Writer {
    fn too_large(&self, len: usize, max: usize) -> NatsMailslotError {
        NatsMailslotError::MessageTooLarge {
            name: self.name.full.clone(),
            len,
            max,
        }
    }

    /// A core NATS publish, flushed: every reader listening gets it; nothing is stored.
    async fn broadcast(&self, payload: Bytes) -> Result<(), NatsMailslotError> {
        let started = Instant::now();
        let disconnected = |why: String| NatsMailslotError::Disconnected {
            name: self.name.full.clone(),
            detail: format!(
                "could not broadcast: {why} after {:?}; retry later",
                started.elapsed()
            ),
        };
        let send = async {
            self.client
                .publish(self.name.subject(), payload)
                .await
                .map_err(|e| e.to_string())?;
            self.client.flush().await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(self.timeout, send).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(disconnected(why)),
            Err(_) => Err(disconnected("the server did not answer".into())),
        }
    }
}

/// A writer of one NATS mailslot (`CreateFile` + `WriteFile` on
/// `nats://HOST:PORT/mailslot/Name`), for blocking code: it runs a small tokio runtime of
/// its own.
///
/// Each [`write`](Self::write) sends one whole message. To a stored slot, it returns
/// once the server has stored the message (a JetStream publish acknowledgement): from
/// then on the message survives the reader's absence and the server's restart. While the
/// server does not answer, the write tries again within its
/// [timeout](NatsWriterOptions::timeout), with the same message id each time, so that a
/// message is stored once however often it is tried. A broadcast
/// (`nats://HOST:PORT/mailslot/*/Name`) is a core NATS publish: it returns once the server
/// has it, and reaches only the readers listening then.
///
/// # Examples
///
/// ```no_run
/// use procwire_nats::mailslot::NatsMailslotWriter;
///
/// let slot = NatsMailslotWriter::open("nats://127.0.0.1:4222/mailslot/HelloWorld")?;
/// slot.write(b"Hello from a writer")?;
/// # Ok::<(), procwire_nats::mailslot::NatsMailslotError>(())
/// ```
#[derive(Debug)]
pub struct NatsMailslotWriter {
    /// `None` only while dropping: the async writer is dropped inside the runtime.
    inner: Option<AsyncNatsMailslotWriter>,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl NatsMailslotWriter {
    /// Opens the slot `name` with default [`NatsWriterOptions`].
    ///
    /// # Errors
    ///
    /// As [`NatsWriterOptions::open`].
    pub fn open(name: &str) -> Result<NatsMailslotWriter, NatsMailslotError> {
        NatsWriterOptions::new().open(name)
    }

    pub(crate) fn open_with(
        name: &str,
        options: &NatsWriterOptions,
        create: bool,
    ) -> Result<NatsMailslotWriter, NatsMailslotError> {
        let runtime = Arc::new(runtime(name)?);
        let inner = runtime.block_on(AsyncNatsMailslotWriter::open_with(name, options, create))?;
        Ok(NatsMailslotWriter {
            inner: Some(inner),
            runtime,
        })
    }

    /// The async writer inside.
    pub fn as_async(&self) -> &AsyncNatsMailslotWriter {
        self.inner
            .as_ref()
            .expect("the writer is there until dropped")
    }

    /// The slot's name, as given.
    pub fn name(&self) -> &str {
        self.as_async().name()
    }

    /// The largest message this writer may send.
    pub fn max_message_size(&self) -> usize {
        self.as_async().max_message_size()
    }

    /// Sends one message; for a stored slot, returns once the server has stored it.
    ///
    /// # Errors
    ///
    /// [`NatsMailslotError::MessageTooLarge`] before sending anything (or when the slot's
    /// maximum was lowered since the open: the server refused it);
    /// [`NatsMailslotError::Full`] when the slot stayed full for the whole timeout;
    /// [`NatsMailslotError::Disconnected`] when the server did not answer in that time:
    /// the message may still be stored, now or once the client reconnects (it sends what
    /// it buffered), so writing it again may store it twice;
    /// [`NatsMailslotError::NotFound`] when the slot was removed.
    pub fn write(&self, message: &[u8]) -> Result<(), NatsMailslotError> {
        self.runtime.block_on(self.as_async().write(message))
    }
}

impl Drop for NatsMailslotWriter {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let _inside = self.runtime.enter();
            drop(inner);
        }
    }
}
