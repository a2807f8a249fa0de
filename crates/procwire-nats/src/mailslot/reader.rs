//! The reader of a NATS mailslot: takes stored messages in order, or listens to a
//! broadcast slot.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use async_nats::Client;
use bytes::Bytes;
use futures::{FutureExt as _, StreamExt as _};

use super::api::{self, Failure, HEADER_ROOM};
use super::name::SlotName;
use super::options::{NatsMailslotOptions, ReadTimeout, DEFAULT_MAX_MESSAGE};
use super::presence::{self, Presence};
use super::{MailslotInfo, NatsMailslotError};

/// How long a stored slot's open may try while the server does not answer.
const OPEN_TIME: Duration = Duration::from_secs(10);
/// How long dropping a reader tries to remove the message it handed out last.
const CLOSE_TIME: Duration = Duration::from_secs(2);
/// How long a waiting read trusts its wake-up subscription before it looks again.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

/// Makes sure the stored slot `name` exists; its maximum message size. With `create`
/// (maximum asked for, messages stored), a missing stream is created.
pub(crate) async fn ensure_stream(
    client: &Client,
    name: &SlotName,
    create: Option<(Option<usize>, usize)>,
    deadline: Instant,
) -> Result<usize, NatsMailslotError> {
    let started = Instant::now();
    let deadline = Some(deadline);
    let info = api::retry(name, "look up the slot", deadline, |limit| {
        api::stream_info(client, name, limit)
    })
    .await;
    let info = match info {
        Ok(info) => info,
        Err(f) if f.is(api::code::STREAM_NOT_FOUND) => {
            let Some((asked, max_waiting)) = create else {
                return Err(api::not_found(name));
            };
            let max = asked.unwrap_or(DEFAULT_MAX_MESSAGE);
            let server_max = client.server_info().max_payload;
            if max + HEADER_ROOM > server_max {
                return Err(NatsMailslotError::NotPermitted {
                    name: name.full.clone(),
                    detail: format!(
                        "a maximum message size of {max} bytes is more than this server allows: its max_payload is {server_max} bytes, so a slot's maximum can be at most {} (raise max_payload in the server's configuration)",
                        server_max.saturating_sub(HEADER_ROOM)
                    ),
                });
            }
            let created = api::retry(name, "create the slot", deadline, |limit| {
                api::create_stream(client, name, max, max_waiting, limit)
            })
            .await;
            match created {
                Ok(info) => info,
                // Someone created it meanwhile: use theirs.
                Err(f) if f.is(api::code::NAME_IN_USE) => {
                    api::retry(name, "look up the slot", deadline, |limit| {
                        api::stream_info(client, name, limit)
                    })
                    .await
                    .map_err(|f| api::failed(name, "look up the slot", started, f))?
                }
                Err(f) if f.is(api::code::SUBJECT_OVERLAP) => {
                    return Err(NatsMailslotError::WrongKind {
                        name: name.full.clone(),
                        found: format!(
                            "a subject (`{}`) that another JetStream stream already stores",
                            name.subject()
                        ),
                    })
                }
                Err(f) => return Err(api::failed(name, "create the slot", started, f)),
            }
        }
        Err(f) => return Err(api::failed(name, "look up the slot", started, f)),
    };
    let max = api::check_kind(name, &info)?;
    if let Some((Some(asked), _)) = create {
        if asked != max {
            return Err(NatsMailslotError::NotPermitted {
                name: name.full.clone(),
                detail: format!(
                    "the slot exists with a maximum message size of {max} bytes, not the {asked} asked for; ask for {max} (or none), or remove the slot first"
                ),
            });
        }
    }
    Ok(max)
}

/// Where a read puts the message.
#[derive(Clone, Copy)]
enum Take {
    /// Hands it out (it is removed when the reader comes back).
    Read,
    /// As `Read`, if it fits a buffer of this size.
    Fit(usize),
    /// Leaves it next.
    Peek,
}

/// A stored slot's reading position.
#[derive(Debug, Default)]
struct Stored {
    /// The first stream sequence that may hold the next message.
    cursor: u64,
    /// The message handed out last, not yet removed from the stream.
    handed: Option<u64>,
    /// When the stream this reader reads was made, once seen.
    created: Option<String>,
    /// The ids of the messages handed out last.
    delivered: DeliveredIds,
}

/// How many ids of messages it handed out a reader remembers. A restarted nats-server
/// knows only the ids of the messages it still holds, so a write whose acknowledgement the
/// restart cut off is stored again by its next try even when the reader had read it
/// (docs/protocol.md 10.3): that second copy comes right after the first, behind at most
/// the other writes in flight at the restart.
const REMEMBERED_IDS: usize = 4096;

/// What dropping a second copy is, for the error when it fails.
const COPY: &str = "drop a second copy of a message";

/// How many second copies one `info` drops before it counts what is left.
const MAX_COPIES_DROPPED: usize = 64;

/// The ids of the last [`REMEMBERED_IDS`] messages a reader handed out.
#[derive(Debug, Default)]
struct DeliveredIds {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl DeliveredIds {
    fn remember(&mut self, id: String) {
        if self.set.contains(&id) {
            return;
        }
        if self.order.len() == REMEMBERED_IDS {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
        self.set.insert(id.clone());
        self.order.push_back(id);
    }

    /// Whether `message` is a second copy of one handed out already.
    fn seen(&self, message: &api::StoredMessage) -> bool {
        message.id.as_ref().is_some_and(|id| self.set.contains(id))
    }
}

impl Stored {
    /// Notes the stream's making time from `info`. A stream removed and made anew (by a
    /// tool, or `remove` on another handle, then a writer's `open_or_create`) numbers its
    /// messages from 1 again: the reader then reads it from its start rather than take its
    /// messages for ones it read (and remove them) or wait above them.
    fn follow(&mut self, name: &str, info: &api::StreamInfo) -> bool {
        let made_anew = self
            .created
            .as_ref()
            .is_some_and(|seen| !info.created.is_empty() && *seen != info.created);
        if made_anew {
            tracing::warn!(slot = %name, "the slot's stream was made anew; reading it from its start");
            self.cursor = 0;
            self.handed = None;
            self.delivered = DeliveredIds::default();
        }
        self.created = Some(info.created.clone());
        made_anew
    }
}

/// The most broadcasts a reader takes out of its subscription before they are read: a
/// reader that looks (`info`, `peek`) without reading does not gather a flood without end.
pub(crate) const MAX_BROADCASTS_QUEUED: usize = 65_536;

/// A broadcast slot's subscription and what it received.
#[derive(Debug)]
struct Broadcast {
    sub: async_nats::Subscriber,
    queue: VecDeque<Bytes>,
}

#[derive(Debug)]
enum Kind {
    Stored(tokio::sync::Mutex<Stored>),
    Broadcast(tokio::sync::Mutex<Broadcast>),
}

#[derive(Debug)]
struct Reader {
    name: SlotName,
    client: Client,
    max_message: usize,
    read_timeout: StdMutex<ReadTimeout>,
    kind: Kind,
    oversize: AtomicU64,
    /// A stored slot's answer to other readers: this one is alive.
    _presence: Option<Presence>,
}

/// The reader of a NATS mailslot, on the caller's tokio runtime: the async form of
/// [`NatsMailslot`], with the same methods as `async fn`s.
///
/// Dropping it cannot wait: it leaves the removal of the message it handed out last to a
/// task on the current runtime. Call [`close`](Self::close) to be sure it is done.
#[derive(Debug, Clone)]
pub struct AsyncNatsMailslot {
    inner: Arc<Reader>,
}

impl AsyncNatsMailslot {
    pub(crate) async fn create_with(
        name: &str,
        options: &NatsMailslotOptions,
    ) -> Result<AsyncNatsMailslot, NatsMailslotError> {
        let name = SlotName::parse(name)?;
        let client = name.connect(&options.nats).await?;
        let (max_message, kind) =
            if name.broadcast {
                let sub = client.subscribe(name.subject()).await.map_err(|e| {
                    NatsMailslotError::Connect {
                        name: name.full.clone(),
                        server: name.server.clone(),
                        source: Box::new(e),
                    }
                })?;
                // The server knows of the subscription once it answers a ping: from here on
                // every broadcast reaches this reader.
                let _ = tokio::time::timeout(OPEN_TIME, client.flush()).await;
                let max = options.max_message.unwrap_or(DEFAULT_MAX_MESSAGE);
                let state = Broadcast {
                    sub,
                    queue: VecDeque::new(),
                };
                (max, Kind::Broadcast(tokio::sync::Mutex::new(state)))
            } else {
                let create = Some((options.max_message, options.max_waiting));
                let max = ensure_stream(&client, &name, create, Instant::now() + OPEN_TIME).await?;
                (
                    max,
                    Kind::Stored(tokio::sync::Mutex::new(Stored::default())),
                )
            };
        let presence = if name.broadcast {
            None
        } else {
            Some(presence::claim(&client, &name).await?)
        };
        Ok(AsyncNatsMailslot {
            inner: Arc::new(Reader {
                name,
                client,
                max_message,
                read_timeout: StdMutex::new(options.read_timeout),
                kind,
                oversize: AtomicU64::new(0),
                _presence: presence,
            }),
        })
    }

    /// The slot's name, as given.
    pub fn name(&self) -> &str {
        &self.inner.name.full
    }

    /// Whether this is a broadcast slot's reader (`nats://HOST:PORT/mailslot/*/Name`).
    pub fn is_broadcast(&self) -> bool {
        self.inner.name.broadcast
    }

    /// The JetStream stream that stores the slot (`PROCWIRE_MAILSLOT_Name`); `None` for a
    /// broadcast slot.
    pub fn stream_name(&self) -> Option<String> {
        (!self.inner.name.broadcast).then(|| self.inner.name.stream())
    }

    /// Messages thrown away because they were over the slot's maximum: only from writers
    /// that are not procwire's (which refuse them before sending).
    pub fn dropped_oversize(&self) -> u64 {
        self.inner.oversize.load(Ordering::Relaxed)
    }

    /// Changes how long reads wait, from the next read on.
    pub fn set_read_timeout(&self, timeout: ReadTimeout) {
        *self
            .inner
            .read_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = timeout;
    }

    fn timeout(&self) -> ReadTimeout {
        *self
            .inner
            .read_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// As [`NatsMailslot::info`].
    ///
    /// # Errors
    ///
    /// As [`NatsMailslot::info`].
    pub async fn info(&self) -> Result<MailslotInfo, NatsMailslotError> {
        let r = &*self.inner;
        let (waiting, next_size) = match &r.kind {
            Kind::Broadcast(b) => {
                let mut b = b.lock().await;
                r.drain(&mut b);
                (b.queue.len(), b.queue.front().map(Bytes::len))
            }
            Kind::Stored(s) => {
                let mut s = s.lock().await;
                let deadline = Some(Instant::now() + OPEN_TIME);
                r.settle(&mut s, deadline).await?;
                let started = Instant::now();
                let count = || {
                    api::retry(&r.name, "count the messages", deadline, |limit| {
                        api::stream_info(&r.client, &r.name, limit)
                    })
                };
                let mut info = count()
                    .await
                    .map_err(|f| api::failed(&r.name, "count the messages", started, f))?;
                s.follow(&r.name.full, &info);
                if info.state.messages > 0 && info.state.first_seq < s.cursor {
                    // Messages this reader removed came back: a server that was killed
                    // had not written their removal yet. Remove them again.
                    let cursor = s.cursor;
                    api::retry(&r.name, "remove messages read before", deadline, |limit| {
                        api::purge_before(&r.client, &r.name, cursor, limit)
                    })
                    .await
                    .map_err(|f| api::failed(&r.name, "remove messages read before", started, f))?;
                    info = count()
                        .await
                        .map_err(|f| api::failed(&r.name, "count the messages", started, f))?;
                }
                // The next message, after dropping second copies of messages handed out
                // (a few at most: a writer's copies come right after the first).
                let mut next = None;
                for _ in 0..MAX_COPIES_DROPPED {
                    if info.state.messages == 0 {
                        break;
                    }
                    let from = s.cursor.max(info.state.first_seq);
                    let first =
                        api::retry(&r.name, "look at the next message", deadline, |limit| {
                            api::first_message(&r.client, &r.name, from, limit)
                        })
                        .await
                        .map_err(|f| {
                            api::failed(&r.name, "look at the next message", started, f)
                        })?;
                    match first {
                        Some(copy) if s.delivered.seen(&copy) => {
                            r.drop_unread(&mut s, copy.seq, COPY, deadline, started)
                                .await?;
                            info = count().await.map_err(|f| {
                                api::failed(&r.name, "count the messages", started, f)
                            })?;
                        }
                        first => {
                            next = first.map(|m| m.payload.len());
                            break;
                        }
                    }
                }
                (info.state.messages as usize, next)
            }
        };
        Ok(MailslotInfo {
            waiting,
            next_size,
            max_message: r.max_message,
            read_timeout: self.timeout(),
        })
    }

    /// As [`NatsMailslot::read`].
    ///
    /// # Errors
    ///
    /// As [`NatsMailslot::read`].
    pub async fn read(&self) -> Result<Vec<u8>, NatsMailslotError> {
        self.read_for(self.timeout(), Take::Read).await
    }

    /// As [`NatsMailslot::read_timeout`].
    ///
    /// # Errors
    ///
    /// As [`NatsMailslot::read_timeout`].
    pub async fn read_timeout(&self, timeout: Duration) -> Result<Vec<u8>, NatsMailslotError> {
        self.read_for(ReadTimeout::After(timeout), Take::Read).await
    }

    /// As [`NatsMailslot::try_read`].
    ///
    /// # Errors
    ///
    /// As [`NatsMailslot::try_read`].
    pub async fn try_read(&self) -> Result<Option<Vec<u8>>, NatsMailslotError> {
        match self.read_for(ReadTimeout::Immediate, Take::Read).await {
            Ok(m) => Ok(Some(m)),
            Err(NatsMailslotError::Timeout { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// As [`NatsMailslot::peek`].
    ///
    /// # Errors
    ///
    /// As [`NatsMailslot::peek`].
    pub async fn peek(&self) -> Result<Vec<u8>, NatsMailslotError> {
        self.read_for(self.timeout(), Take::Peek).await
    }

    /// As [`NatsMailslot::read_into`].
    ///
    /// # Errors
    ///
    /// As [`NatsMailslot::read_into`].
    pub async fn read_into(&self, buf: &mut [u8]) -> Result<usize, NatsMailslotError> {
        let message = self.read_for(self.timeout(), Take::Fit(buf.len())).await?;
        buf[..message.len()].copy_from_slice(&message);
        Ok(message.len())
    }

    /// As [`NatsMailslot::close`].
    ///
    /// # Errors
    ///
    /// As [`NatsMailslot::close`].
    pub async fn close(&self) -> Result<(), NatsMailslotError> {
        self.close_within(CLOSE_TIME).await
    }

    async fn close_within(&self, limit: Duration) -> Result<(), NatsMailslotError> {
        if let Kind::Stored(s) = &self.inner.kind {
            let mut s = s.lock().await;
            self.inner
                .settle(&mut s, Some(Instant::now() + limit))
                .await?;
        }
        Ok(())
    }

    /// As [`NatsMailslot::remove`].
    ///
    /// # Errors
    ///
    /// As [`NatsMailslot::remove`].
    pub async fn remove(self) -> Result<(), NatsMailslotError> {
        let r = &*self.inner;
        if r.name.broadcast {
            return Ok(());
        }
        let started = Instant::now();
        let deadline = Some(started + OPEN_TIME);
        if let Kind::Stored(s) = &r.kind {
            s.lock().await.handed = None;
        }
        api::retry(&r.name, "remove the slot", deadline, |limit| {
            api::delete_stream(&r.client, &r.name, limit)
        })
        .await
        .map_err(|f| api::failed(&r.name, "remove the slot", started, f))
    }

    async fn read_for(
        &self,
        timeout: ReadTimeout,
        take: Take,
    ) -> Result<Vec<u8>, NatsMailslotError> {
        let after = match timeout {
            ReadTimeout::Immediate => Some(Duration::ZERO),
            ReadTimeout::Forever => None,
            ReadTimeout::After(d) => Some(d),
        };
        let deadline = after.map(|d| Instant::now() + d);
        let r = &*self.inner;
        let got = match &r.kind {
            Kind::Stored(s) => r.next_stored(&mut *s.lock().await, deadline, take).await?,
            Kind::Broadcast(b) => {
                r.next_broadcast(&mut *b.lock().await, deadline, take)
                    .await?
            }
        };
        got.map(|m| m.to_vec())
            .ok_or_else(|| NatsMailslotError::Timeout {
                name: r.name.full.clone(),
                after: after.unwrap_or_default(),
            })
    }
}

impl Reader {
    /// Removes the message handed out last from the stream.
    async fn settle(
        &self,
        s: &mut Stored,
        deadline: Option<Instant>,
    ) -> Result<(), NatsMailslotError> {
        let Some(seq) = s.handed else { return Ok(()) };
        let started = Instant::now();
        api::retry(
            &self.name,
            "remove the message read last",
            deadline,
            |limit| api::purge_before(&self.client, &self.name, seq + 1, limit),
        )
        .await
        .map_err(|f| api::failed(&self.name, "remove the message read last", started, f))?;
        s.handed = None;
        s.cursor = seq + 1;
        Ok(())
    }

    /// Removes message `seq` unread (`what` says why, for the error) and moves past it.
    async fn drop_unread(
        &self,
        s: &mut Stored,
        seq: u64,
        what: &str,
        deadline: Option<Instant>,
        started: Instant,
    ) -> Result<(), NatsMailslotError> {
        api::retry(&self.name, what, deadline, |limit| {
            api::delete_message(&self.client, &self.name, seq, limit)
        })
        .await
        .map_err(|f| api::failed(&self.name, what, started, f))?;
        s.cursor = seq + 1;
        Ok(())
    }

    /// Checks a message against the buffer it must fit.
    fn fits(&self, len: usize, take: Take) -> Result<(), NatsMailslotError> {
        match take {
            Take::Fit(given) if len > given => Err(NatsMailslotError::BufferTooSmall {
                name: self.name.full.clone(),
                needed: len,
                given,
            }),
            _ => Ok(()),
        }
    }

    async fn next_stored(
        &self,
        s: &mut Stored,
        deadline: Option<Instant>,
        take: Take,
    ) -> Result<Option<Bytes>, NatsMailslotError> {
        let started = Instant::now();
        let what = "read the next message";
        // The removal of the message handed out last gets its own time: a read with a
        // zero timeout still takes what is there.
        let settle_by = deadline.map(|d| d.max(Instant::now() + Duration::from_secs(2)));
        self.settle(s, settle_by).await?;
        let mut wake: Option<async_nats::Subscriber> = None;
        loop {
            let first = api::first_message(
                &self.client,
                &self.name,
                s.cursor,
                api::attempt_limit(deadline),
            )
            .await;
            match first {
                Ok(Some(message)) => {
                    let seq = message.seq;
                    if s.delivered.seen(&message) {
                        tracing::debug!(slot = %self.name.full, seq, "dropped a second copy of a message already read");
                        self.drop_unread(s, seq, COPY, deadline, started).await?;
                        continue;
                    }
                    let payload = message.payload;
                    if payload.len() > self.max_message {
                        tracing::warn!(slot = %self.name.full, seq, len = payload.len(), "dropped a message over the slot's maximum");
                        let what = "drop an oversize message";
                        self.drop_unread(s, seq, what, deadline, started).await?;
                        self.oversize.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    self.fits(payload.len(), take)?;
                    s.cursor = seq;
                    if !matches!(take, Take::Peek) {
                        s.handed = Some(seq);
                        if let Some(id) = message.id {
                            s.delivered.remember(id);
                        }
                    }
                    return Ok(Some(payload));
                }
                Ok(None) => {
                    // Nothing at or after the cursor: unless the stream was made anew (its
                    // messages then number from 1, below the cursor).
                    let limit = api::attempt_limit(deadline);
                    if let Ok(info) = api::stream_info(&self.client, &self.name, limit).await {
                        if s.follow(&self.name.full, &info) {
                            continue;
                        }
                    }
                    if api::past(deadline) {
                        return Ok(None);
                    }
                    match &mut wake {
                        None => {
                            // Listen for writes on the slot's subject, then look again:
                            // a message stored in between is found by that look.
                            match self.client.subscribe(self.name.subject()).await {
                                Ok(sub) => {
                                    let limit = api::attempt_limit(deadline);
                                    let _ = tokio::time::timeout(limit, self.client.flush()).await;
                                    wake = Some(sub);
                                }
                                Err(_) => api::pause(deadline).await,
                            }
                        }
                        Some(sub) => {
                            let mut wait = LOOK_AGAIN;
                            if let Some(d) = deadline {
                                wait = wait.min(d.saturating_duration_since(Instant::now()));
                            }
                            if let Ok(None) = tokio::time::timeout(wait, sub.next()).await {
                                // The subscription ended (the connection is being
                                // replaced): subscribe again after a pause, not in a loop.
                                wake = None;
                                api::pause(deadline).await;
                            }
                        }
                    }
                }
                Err(Failure::Transient(why)) if !api::past(deadline) => {
                    tracing::debug!(slot = %self.name.full, %why, "retrying a read");
                    api::pause(deadline).await;
                }
                Err(f) => return Err(api::failed(&self.name, what, started, f)),
            }
        }
    }

    /// Moves what the subscription holds into the queue, without waiting, up to
    /// [`MAX_BROADCASTS_QUEUED`]: the rest stays in the subscription, whose own buffer of
    /// as many again is all the NATS client keeps (it drops the newest beyond).
    fn drain(&self, b: &mut Broadcast) {
        while b.queue.len() < MAX_BROADCASTS_QUEUED {
            let Some(Some(m)) = b.sub.next().now_or_never() else {
                return;
            };
            self.accept(b, m.payload);
        }
    }

    fn accept(&self, b: &mut Broadcast, payload: Bytes) {
        if payload.len() > self.max_message {
            self.oversize.fetch_add(1, Ordering::Relaxed);
        } else {
            b.queue.push_back(payload);
        }
    }

    async fn next_broadcast(
        &self,
        b: &mut Broadcast,
        deadline: Option<Instant>,
        take: Take,
    ) -> Result<Option<Bytes>, NatsMailslotError> {
        loop {
            self.drain(b);
            if let Some(next) = b.queue.front() {
                self.fits(next.len(), take)?;
                return Ok(match take {
                    Take::Peek => Some(next.clone()),
                    _ => b.queue.pop_front(),
                });
            }
            let next = match deadline {
                None => b.sub.next().await,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    match tokio::time::timeout(left, b.sub.next()).await {
                        Ok(next) => next,
                        Err(_) => return Ok(None),
                    }
                }
            };
            match next {
                Some(m) => self.accept(b, m.payload),
                None => {
                    return Err(NatsMailslotError::Disconnected {
                        name: self.name.full.clone(),
                        detail: "the connection to the NATS server was closed".into(),
                    })
                }
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let Kind::Stored(s) = &self.kind else { return };
        let Some(seq) = s.try_lock().ok().and_then(|s| s.handed) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let client = self.client.clone();
        let name = self.name.clone();
        runtime.spawn(async move {
            let _ = api::purge_before(&client, &name, seq + 1, CLOSE_TIME).await;
            let _ = tokio::time::timeout(CLOSE_TIME, client.flush()).await;
        });
    }
}

/// A NATS mailslot's reader (`CreateMailslot` on `nats://HOST:PORT/mailslot/Name`), for
/// blocking code: it runs a small tokio runtime of its own.
///
/// **A stored slot** is a JetStream stream with work-queue retention that outlives its
/// reader: writers' messages are kept there until read, whether or not a reader runs,
/// across restarts of the server (with its store). [`info`](Self::info) counts exactly
/// what the stream holds. Reads return messages in the order the server stored them.
///
/// **Delivery is at-least-once**: a message handed out by [`read`](Self::read) is removed
/// from the stream when the reader comes back — its next `read`, `peek`, `info` or
/// [`close`](Self::close), or its drop. A reader that dies before that leaves the message
/// first in the slot, and the next reader gets it again; no other message is ever
/// delivered twice, and none is lost. (A server restart can store again a write whose
/// acknowledgement it cut off, if this reader had read and removed the first copy: the
/// reader remembers the message ids of the last 4,096 messages it handed out and drops
/// such a copy unread and uncounted.) One reader per slot at a time: a live reader
/// answers on `procwire.reader.Name`, and a second one's `create` fails with
/// [`NatsMailslotError::AlreadyExists`] (two starting in the same instant can both pass
/// the check, and would then both get the message at the head).
///
/// **A broadcast slot** (`nats://HOST:PORT/mailslot/*/Name`) stores nothing: every reader
/// listening when a message is published gets it (core NATS publish), one that is not
/// listening never does; `info` counts what this reader has received and not read.
///
/// # Examples
///
/// ```no_run
/// use procwire_nats::mailslot::NatsMailslot;
///
/// let slot = NatsMailslot::create("nats://127.0.0.1:4222/mailslot/HelloWorld")?;
/// for _ in 0..slot.info()?.waiting {
///     let message = slot.read()?;
///     println!("{}", String::from_utf8_lossy(&message));
/// }
/// # Ok::<(), procwire_nats::mailslot::NatsMailslotError>(())
/// ```
#[derive(Debug)]
pub struct NatsMailslot {
    /// `None` only while dropping: the async reader is dropped inside the runtime.
    inner: Option<AsyncNatsMailslot>,
    runtime: Arc<tokio::runtime::Runtime>,
}

/// The runtime behind a blocking reader or writer: one worker thread, so that the
/// connection keeps answering the server's pings and reconnects between calls.
pub(crate) fn runtime(name: &str) -> Result<tokio::runtime::Runtime, NatsMailslotError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("procwire-nats")
        .enable_all()
        .build()
        .map_err(|e| NatsMailslotError::Connect {
            name: name.to_owned(),
            server: String::new(),
            source: format!("cannot start the client runtime: {e}").into(),
        })
}

impl NatsMailslot {
    /// Creates (or reopens) the slot `name` with default [`NatsMailslotOptions`].
    ///
    /// # Errors
    ///
    /// As [`NatsMailslotOptions::create`].
    pub fn create(name: &str) -> Result<NatsMailslot, NatsMailslotError> {
        NatsMailslotOptions::new().create(name)
    }

    pub(crate) fn create_with(
        name: &str,
        options: &NatsMailslotOptions,
    ) -> Result<NatsMailslot, NatsMailslotError> {
        let runtime = Arc::new(runtime(name)?);
        let inner = runtime.block_on(AsyncNatsMailslot::create_with(name, options))?;
        Ok(NatsMailslot {
            inner: Some(inner),
            runtime,
        })
    }

    /// The async reader inside, to await on another runtime.
    pub fn as_async(&self) -> &AsyncNatsMailslot {
        self.inner
            .as_ref()
            .expect("the reader is there until dropped")
    }

    /// The slot's name, as given.
    pub fn name(&self) -> &str {
        self.as_async().name()
    }

    /// How many messages wait, the size of the next, the maximum size and the read
    /// timeout (`GetMailslotInfo`). For a stored slot both counts are the server's, exact
    /// at the moment of asking (the message this reader handed out last is removed first).
    ///
    /// # Errors
    ///
    /// [`NatsMailslotError::Disconnected`] when the server did not answer for 10 s.
    pub fn info(&self) -> Result<MailslotInfo, NatsMailslotError> {
        self.runtime.block_on(self.as_async().info())
    }

    /// Changes how long reads wait (`SetMailslotInfo`), from the next read on.
    pub fn set_read_timeout(&self, timeout: ReadTimeout) {
        self.as_async().set_read_timeout(timeout);
    }

    /// The next message, in the order stored, waiting as the read timeout says. While the
    /// server does not answer (a restart), the read keeps trying within its timeout.
    ///
    /// # Errors
    ///
    /// [`NatsMailslotError::Timeout`] when no message came in time (after one look for
    /// [`ReadTimeout::Immediate`]); [`NatsMailslotError::Disconnected`] when the server did
    /// not answer in that time.
    pub fn read(&self) -> Result<Vec<u8>, NatsMailslotError> {
        self.runtime.block_on(self.as_async().read())
    }

    /// The next message, waiting at most `timeout` whatever the slot's read timeout.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub fn read_timeout(&self, timeout: Duration) -> Result<Vec<u8>, NatsMailslotError> {
        self.runtime.block_on(self.as_async().read_timeout(timeout))
    }

    /// The next message if one is waiting, after one look.
    ///
    /// # Errors
    ///
    /// [`NatsMailslotError::Disconnected`] when the server did not answer.
    pub fn try_read(&self) -> Result<Option<Vec<u8>>, NatsMailslotError> {
        self.runtime.block_on(self.as_async().try_read())
    }

    /// A copy of the next message, waiting as the read timeout says, leaving it next.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub fn peek(&self) -> Result<Vec<u8>, NatsMailslotError> {
        self.runtime.block_on(self.as_async().peek())
    }

    /// Reads the next message into the caller's buffer, as `ReadFile` does.
    ///
    /// # Errors
    ///
    /// [`NatsMailslotError::BufferTooSmall`] when the next message does not fit (it stays
    /// next); as [`read`](Self::read).
    pub fn read_into(&self, buf: &mut [u8]) -> Result<usize, NatsMailslotError> {
        self.runtime.block_on(self.as_async().read_into(buf))
    }

    /// Messages thrown away because they were over the slot's maximum (only from writers
    /// that are not procwire's).
    pub fn dropped_oversize(&self) -> u64 {
        self.as_async().dropped_oversize()
    }

    /// Removes the message handed out last from the stream (a drop does it too, trying
    /// for 2 s). The slot and its other messages stay.
    ///
    /// # Errors
    ///
    /// [`NatsMailslotError::Disconnected`] when the server did not answer for 2 s: the
    /// message will be delivered again to the next reader.
    pub fn close(&self) -> Result<(), NatsMailslotError> {
        self.runtime.block_on(self.as_async().close())
    }

    /// Deletes the slot and every message it stores (its stream) from the server.
    ///
    /// # Errors
    ///
    /// [`NatsMailslotError::Disconnected`] when the server did not answer for 10 s.
    pub fn remove(self) -> Result<(), NatsMailslotError> {
        let runtime = self.runtime.clone();
        let inner = self.as_async().clone();
        drop(self);
        runtime.block_on(inner.remove())
    }
}

impl Drop for NatsMailslot {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let _ = self.runtime.block_on(inner.close_within(CLOSE_TIME));
        let client = &inner.inner.client;
        let _ = self
            .runtime
            .block_on(async { tokio::time::timeout(CLOSE_TIME, client.flush()).await });
        // A subscription's drop tells the connection's task: inside the runtime.
        let _inside = self.runtime.enter();
        drop(inner);
    }
}
