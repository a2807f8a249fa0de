//! The mailslot server: one reader, many writers, messages stored until read.

use std::collections::VecDeque;
use std::io;
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::options::{MailslotOptions, ReadTimeout};
use super::MailslotError;
use crate::name::{Location, Name, NameClass, Namespace};
use crate::registry::{self, ObjectKind};
use crate::security::Principal;
use crate::wire::SlotDatagram;

/// What [`MailslotServer::info`] reports (`GetMailslotInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailslotInfo {
    /// Messages waiting to be read.
    pub waiting: usize,
    /// The size of the next message, if there is one.
    pub next_size: Option<usize>,
    /// The largest message writers may send.
    pub max_message: usize,
    /// How long reads wait.
    pub read_timeout: ReadTimeout,
}

/// Datagrams the server threw away, by reason. Local writers through this crate never
/// cause any: they are refused before sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DroppedCounts {
    /// Over the slot's maximum size.
    pub oversize: u64,
    /// Empty network datagrams.
    pub empty: u64,
    /// Network datagrams that are not mailslot datagrams.
    pub garbage: u64,
    /// Network datagrams for another slot name.
    pub other_slot: u64,
}

/// How recently the reader must have received by itself for the receiving thread to leave
/// the kernel queue to it: 2 ms.
const READER_ACTIVE_NS: u64 = 2_000_000;

/// Where a read puts the message.
enum Destination<'a> {
    /// In a new `Vec`.
    Owned,
    /// In the caller's buffer.
    Into(&'a mut [u8]),
    /// In a new `Vec`, leaving the message next in the store (a peek).
    Peek,
}

/// What a read produced.
enum Got {
    Owned(Vec<u8>),
    Copied(usize),
}

/// The longest a blocking read waits in the kernel before looking at the store again.
const WAIT_SLICE: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
struct ReaderState {
    buf: Vec<u8>,
    timeout: Option<Duration>,
}

#[derive(Debug, Default)]
struct Store {
    queue: VecDeque<Vec<u8>>,
    bytes: usize,
    /// Where datagrams land before they are copied out at their size; kept between pulls.
    scratch: Vec<u8>,
}

#[derive(Debug, Default)]
struct Drops {
    oversize: AtomicU64,
    empty: AtomicU64,
    garbage: AtomicU64,
    other_slot: AtomicU64,
}

/// State shared by the server handle, its receiving thread and the tokio API.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) name: String,
    object: String,
    local: UnixDatagram,
    udp: Option<UdpSocket>,
    store: Mutex<Store>,
    space: Condvar,
    read_timeout: Mutex<ReadTimeout>,
    max_message: usize,
    capacity: usize,
    drops: Drops,
    stopping: AtomicBool,
    /// The blocking reader's buffer and the receive timeout last set on the socket.
    reader: Mutex<ReaderState>,
    /// Whether a blocking read is waiting on the sockets itself.
    reader_waiting: AtomicBool,
    /// When the reader last looked in the kernel itself, in ns since `epoch`.
    reader_pulled_at: AtomicU64,
    epoch: Instant,
    #[cfg(feature = "tokio")]
    pub(crate) notify: ::tokio::sync::Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves every datagram the kernel holds into the store, in arrival order, while there
    /// is room. Runs only under the store's lock, so order is kept whoever calls it.
    fn pull(&self, store: &mut Store) {
        let mut buf = std::mem::take(&mut store.scratch);
        let size = (self.max_message + 1).max(crate::wire::MAX_UDP_PAYLOAD + 1);
        if buf.len() < size {
            buf = vec![0u8; size];
        }
        let mut pulled = false;
        while store.bytes < self.capacity {
            match crate::sys::recv_now(&self.local, &mut buf[..self.max_message + 1]) {
                Ok(n) if n > self.max_message => {
                    self.drops.oversize.fetch_add(1, Ordering::Relaxed);
                }
                Ok(n) => {
                    store.bytes += n;
                    store.queue.push_back(buf[..n].to_vec());
                    pulled = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if let Some(udp) = &self.udp {
            let dgram = &mut buf[..crate::wire::MAX_UDP_PAYLOAD + 1];
            while store.bytes < self.capacity {
                let n = match crate::sys::recv_now(udp, dgram) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                if let Some(message) = self.accept_network(&dgram[..n]) {
                    store.bytes += message.len();
                    store.queue.push_back(message.to_vec());
                    pulled = true;
                }
            }
        }
        store.scratch = buf;
        if pulled {
            self.announce_arrivals();
        }
    }

    fn accept_network<'a>(&self, dgram: &'a [u8]) -> Option<&'a [u8]> {
        let counter = if dgram.is_empty() {
            &self.drops.empty
        } else {
            match SlotDatagram::decode(dgram) {
                Ok(d) if d.slot != self.object => &self.drops.other_slot,
                Ok(d) if d.message.len() > self.max_message => &self.drops.oversize,
                Ok(d) => return Some(d.message),
                Err(_) => &self.drops.garbage,
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(slot = %self.name, len = dgram.len(), "dropped a network datagram");
        None
    }

    /// Wakes async readers waiting for a message (blocking readers wait on the sockets).
    fn announce_arrivals(&self) {
        #[cfg(feature = "tokio")]
        self.notify.notify_waiters();
    }

    /// Waits in `recv` on the local socket for at most `timeout` (forever for `None`); the
    /// message, or `None` on timeout or for a datagram over the maximum (counted).
    fn wait_local(
        &self,
        timeout: Option<Duration>,
        dest: &mut Destination<'_>,
    ) -> Result<Option<Got>, MailslotError> {
        // Another thread may move messages into the store (`info`, `try_read`) while this
        // one waits in the kernel; waking every 50 ms bounds how long that can go unseen.
        let timeout = timeout.map_or(WAIT_SLICE, |t| {
            t.clamp(Duration::from_micros(1), WAIT_SLICE)
        });
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        if reader.timeout != Some(timeout) {
            let _ = self.local.set_read_timeout(Some(timeout));
            reader.timeout = Some(timeout);
        }
        // A caller's buffer that can hold any message takes it straight from the kernel.
        if let Destination::Into(buf) = dest {
            if buf.len() > self.max_message {
                return Ok(match self.local.recv(buf) {
                    Ok(n) if n > self.max_message => {
                        self.drops.oversize.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                    Ok(n) => Some(Got::Copied(n)),
                    Err(_) => None,
                });
            }
        }
        if reader.buf.len() < self.max_message + 1 {
            reader.buf = vec![0u8; self.max_message + 1];
        }
        let n = match self.local.recv(&mut reader.buf) {
            Ok(n) if n > self.max_message => {
                self.drops.oversize.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
            Ok(n) => n,
            Err(_) => return Ok(None),
        };
        let message = &reader.buf[..n];
        match dest {
            Destination::Owned => Ok(Some(Got::Owned(message.to_vec()))),
            Destination::Peek => {
                // Still the next message: at the head of the store for the next read.
                let mut store = self.lock();
                store.bytes += n;
                store.queue.push_front(message.to_vec());
                Ok(Some(Got::Owned(message.to_vec())))
            }
            Destination::Into(buf) if n <= buf.len() => {
                buf[..n].copy_from_slice(message);
                Ok(Some(Got::Copied(n)))
            }
            Destination::Into(buf) => {
                // It is the next message: keep it at the head of the store for a larger
                // buffer.
                let mut store = self.lock();
                store.bytes += n;
                store.queue.push_front(message.to_vec());
                Err(self.too_small(n, buf.len()))
            }
        }
    }

    fn too_small(&self, needed: usize, given: usize) -> MailslotError {
        MailslotError::BufferTooSmall {
            name: self.name.clone(),
            needed,
            given,
        }
    }

    /// Accounts for a message taken out of the store, waking the receiving thread only
    /// when the store had been full (it waits for room only then).
    fn took(&self, store: &mut Store, len: usize) {
        let was_full = store.bytes >= self.capacity;
        store.bytes -= len;
        if was_full {
            self.space.notify_all();
        }
    }

    /// Tells the receiving thread that the reader is receiving by itself, so that it stays
    /// out of the way.
    fn mark_reader_active(&self) {
        let now = self.epoch.elapsed().as_nanos() as u64;
        self.reader_pulled_at.store(now, Ordering::Relaxed);
    }

    /// Whether the reader has been receiving by itself in the last moment.
    fn reader_is_active(&self) -> bool {
        let now = self.epoch.elapsed().as_nanos() as u64;
        now.saturating_sub(self.reader_pulled_at.load(Ordering::Relaxed)) < READER_ACTIVE_NS
    }

    pub(crate) fn try_read(&self) -> Option<Vec<u8>> {
        let mut store = self.lock();
        if store.queue.is_empty() {
            self.pull(&mut store);
        }
        let message = store.queue.pop_front()?;
        self.took(&mut store, message.len());
        Some(message)
    }

    pub(crate) fn try_peek(&self) -> Option<Vec<u8>> {
        let mut store = self.lock();
        if store.queue.is_empty() {
            self.pull(&mut store);
        }
        store.queue.front().cloned()
    }

    pub(crate) fn read_timeout(&self) -> ReadTimeout {
        *self.read_timeout.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The receiving thread: waits for datagrams and moves them into the store, so that
    /// writers do not block while the reader is busy, until the store is full.
    fn receive_loop(&self) {
        use std::os::fd::AsFd;
        while !self.stopping.load(Ordering::Acquire) {
            {
                let store = self.lock();
                if store.bytes >= self.capacity {
                    let _ = self.space.wait_timeout(store, Duration::from_millis(100));
                    continue;
                }
            }
            let tick = Duration::from_millis(100);
            let ready = match &self.udp {
                None => crate::sys::wait_readable(self.local.as_fd(), tick),
                Some(udp) => crate::sys::wait_readable_any(self.local.as_fd(), udp.as_fd(), tick),
            };
            if matches!(ready, Ok(true)) {
                let mut store = self.lock();
                if self.reader_waiting.load(Ordering::Acquire) || self.reader_is_active() {
                    // The reader receives by itself: doing it here too would only add a
                    // thread hop and lock traffic to every message.
                    drop(store);
                    std::thread::sleep(Duration::from_micros(500));
                    continue;
                }
                self.pull(&mut store);
            }
        }
    }
}

/// Marks a blocking read as over, however it ends.
struct ReaderWaiting<'a>(&'a Shared);

impl Drop for ReaderWaiting<'_> {
    fn drop(&mut self) {
        self.0.reader_waiting.store(false, Ordering::Release);
    }
}

/// A mailslot server (`CreateMailslot`): one reader that many writers send messages to.
///
/// Messages are stored until read: a thread moves them from the kernel into the slot's
/// store as they arrive (up to the [capacity](MailslotOptions::capacity); beyond it
/// writers wait). [`info`](Self::info) is exact at every moment: it counts what every
/// finished write has delivered. Dropping the server removes the name; unread messages are
/// lost with it.
///
/// # Examples
///
/// ```no_run
/// use procwire::mailslot::MailslotServer;
///
/// let slot = MailslotServer::create(r"\\.\mailslot\HelloWorld")?;
/// let info = slot.info()?;
/// for _ in 0..info.waiting {
///     let message = slot.read()?;
///     println!("{}", String::from_utf8_lossy(&message));
/// }
/// # Ok::<(), procwire::mailslot::MailslotError>(())
/// ```
#[derive(Debug)]
pub struct MailslotServer {
    pub(crate) shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
    udp_addr: Option<std::net::SocketAddr>,
    socket_id: Option<crate::sys::fs::FileId>,
    _claim: registry::Claim,
}

impl MailslotServer {
    /// Creates the slot `name` with default [`MailslotOptions`].
    ///
    /// # Errors
    ///
    /// As [`MailslotOptions::create`].
    pub fn create<N>(name: N) -> Result<MailslotServer, MailslotError>
    where
        N: TryInto<Name>,
        N::Error: Into<MailslotError>,
    {
        MailslotOptions::new().create(name)
    }

    /// The slot's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The UDP address the slot listens on, when it does.
    pub fn udp_addr(&self) -> Option<std::net::SocketAddr> {
        self.udp_addr
    }

    /// How many messages wait, the size of the next, the maximum size and the read
    /// timeout (`GetMailslotInfo`).
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for a slot whose socket failed.
    pub fn info(&self) -> Result<MailslotInfo, MailslotError> {
        let mut store = self.shared.lock();
        self.shared.pull(&mut store);
        Ok(MailslotInfo {
            waiting: store.queue.len(),
            next_size: store.queue.front().map(Vec::len),
            max_message: self.shared.max_message,
            read_timeout: self.shared.read_timeout(),
        })
    }

    /// Changes how long reads wait (`SetMailslotInfo`), from the next read on; a read
    /// already waiting keeps the timeout it started with.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use procwire::mailslot::{MailslotServer, ReadTimeout};
    ///
    /// let slot = MailslotServer::create(r"\\.\mailslot\Jobs")?;
    /// slot.set_read_timeout(ReadTimeout::Immediate);
    /// assert!(slot.read().is_err(), "nothing waits: a timeout at once");
    /// # Ok::<(), procwire::mailslot::MailslotError>(())
    /// ```
    ///
    /// # References
    /// - [`SetMailslotInfo`](https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-setmailslotinfo)
    #[doc(alias = "SetMailslotInfo")]
    pub fn set_read_timeout(&self, timeout: ReadTimeout) {
        *self
            .shared
            .read_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = timeout;
    }

    /// The next whole message, in arrival order, waiting as the read timeout says.
    ///
    /// # Errors
    ///
    /// [`MailslotError::Timeout`] when no message came in time (at once for
    /// [`ReadTimeout::Immediate`]).
    pub fn read(&self) -> Result<Vec<u8>, MailslotError> {
        self.read_within(self.shared.read_timeout().as_duration())
    }

    /// The next message if one is waiting, without waiting.
    pub fn try_read(&self) -> Option<Vec<u8>> {
        self.shared.try_read()
    }

    /// A copy of the next message, waiting as the read timeout says, leaving it next: the
    /// following read (or peek) returns the same message. Windows has no such call
    /// (`GetMailslotInfo` gives only the size); it saves a port a buffer-sizing dance.
    ///
    /// # Errors
    ///
    /// [`MailslotError::Timeout`] as for [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use procwire::mailslot::MailslotServer;
    ///
    /// let slot = MailslotServer::create(r"\\.\mailslot\Jobs")?;
    /// let next = slot.peek()?;
    /// assert_eq!(slot.read()?, next);
    /// # Ok::<(), procwire::mailslot::MailslotError>(())
    /// ```
    pub fn peek(&self) -> Result<Vec<u8>, MailslotError> {
        let timeout = self.shared.read_timeout().as_duration();
        match self.read_within_to(timeout, Destination::Peek)? {
            Got::Owned(message) => Ok(message),
            Got::Copied(_) => unreachable!("a peek returns a copy"),
        }
    }

    /// A copy of the next message if one is waiting, without waiting or taking it.
    pub fn try_peek(&self) -> Option<Vec<u8>> {
        self.shared.try_peek()
    }

    /// The next message, waiting at most `timeout` whatever the slot's read timeout.
    ///
    /// # Errors
    ///
    /// [`MailslotError::Timeout`].
    pub fn read_timeout(&self, timeout: Duration) -> Result<Vec<u8>, MailslotError> {
        self.read_within(Some(timeout))
    }

    /// Reads the next message into a buffer of the caller's, as `ReadFile` does, waiting as
    /// the read timeout says. With a buffer larger than the slot's maximum message, a
    /// message that arrives while the reader waits goes straight from the kernel into it.
    ///
    /// # Errors
    ///
    /// [`MailslotError::BufferTooSmall`] when the next message does not fit (it stays
    /// next); [`MailslotError::Timeout`] as for [`read`](Self::read).
    pub fn read_into(&self, buf: &mut [u8]) -> Result<usize, MailslotError> {
        let timeout = self.shared.read_timeout().as_duration();
        match self.read_within_to(timeout, Destination::Into(buf))? {
            Got::Copied(n) => Ok(n),
            Got::Owned(_) => unreachable!("a read into a buffer copies"),
        }
    }

    fn read_within(&self, timeout: Option<Duration>) -> Result<Vec<u8>, MailslotError> {
        match self.read_within_to(timeout, Destination::Owned)? {
            Got::Owned(message) => Ok(message),
            Got::Copied(_) => unreachable!("an owned read returns the message"),
        }
    }

    fn read_within_to(
        &self,
        timeout: Option<Duration>,
        mut dest: Destination<'_>,
    ) -> Result<Got, MailslotError> {
        use std::os::fd::AsFd;
        let deadline = timeout.map(|t| Instant::now() + t);
        let shared = &self.shared;
        let _waiting = ReaderWaiting(shared);
        loop {
            {
                let mut store = shared.lock();
                // Whatever the kernel holds arrived after what the store holds, so the
                // store's head is the next message; look in the kernel only when it is empty.
                // With only the local socket, the wait below is a `recv` that returns at once
                // when a datagram is queued, so there is nothing to look at first.
                shared.mark_reader_active();
                if store.queue.is_empty() && shared.udp.is_some() {
                    shared.pull(&mut store);
                }
                if let Some(len) = store.queue.front().map(Vec::len) {
                    if let Destination::Into(buf) = &dest {
                        if len > buf.len() {
                            return Err(shared.too_small(len, buf.len()));
                        }
                    }
                    if let Destination::Peek = dest {
                        let next = store.queue.front().expect("the store has a head");
                        return Ok(Got::Owned(next.clone()));
                    }
                    let message = store.queue.pop_front().expect("the store has a head");
                    shared.took(&mut store, len);
                    return Ok(match dest {
                        Destination::Owned | Destination::Peek => Got::Owned(message),
                        Destination::Into(buf) => {
                            buf[..len].copy_from_slice(&message);
                            Got::Copied(len)
                        }
                    });
                }
                // Set under the lock: the receiving thread checks it under the lock too, so
                // it cannot take a datagram this reader is about to wait for.
                shared.reader_waiting.store(true, Ordering::Release);
            }
            let step = match deadline {
                None => None,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        // A last look without waiting (all of it for a zero timeout).
                        let mut store = shared.lock();
                        shared.pull(&mut store);
                        if store.queue.is_empty() {
                            return Err(MailslotError::Timeout {
                                name: shared.name.clone(),
                                after: timeout.unwrap_or_default(),
                            });
                        }
                        continue;
                    }
                    Some(left)
                }
            };
            match &shared.udp {
                // Only the local socket: wait in `recv` itself, as a plain socket reader
                // would. The store is empty and the receiving thread stays out while this
                // reader waits, so what arrives is the next message.
                None => {
                    if let Some(got) = shared.wait_local(step, &mut dest)? {
                        return Ok(got);
                    }
                }
                Some(udp) => {
                    let step = step
                        .unwrap_or(Duration::from_secs(1))
                        .min(Duration::from_secs(1));
                    let _ = crate::sys::wait_readable_any(shared.local.as_fd(), udp.as_fd(), step);
                }
            }
        }
    }

    /// Network datagrams thrown away so far, by reason.
    pub fn dropped(&self) -> DroppedCounts {
        let d = &self.shared.drops;
        DroppedCounts {
            oversize: d.oversize.load(Ordering::Relaxed),
            empty: d.empty.load(Ordering::Relaxed),
            garbage: d.garbage.load(Ordering::Relaxed),
            other_slot: d.other_slot.load(Ordering::Relaxed),
        }
    }
}

impl Drop for MailslotServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(id) = self.socket_id {
            let _ = crate::sys::fs::unlink_if_same(&self.path, id);
        }
    }
}

/// The error for a slot name that could not be taken.
fn claim_error(display: &str, e: registry::ClaimError) -> MailslotError {
    let name = display.to_owned();
    match e {
        registry::ClaimError::Taken(found) if found.entry.kind == ObjectKind::Mailslot => {
            MailslotError::AlreadyExists {
                name,
                owner: format!("uid {}, pid {}", found.owner_uid, found.entry.owner_pid),
            }
        }
        registry::ClaimError::Taken(found) => MailslotError::WrongKind {
            name,
            found: found.entry.kind.with_article().into(),
        },
        registry::ClaimError::Untrusted(what) => MailslotError::WrongKind {
            name,
            found: format!(
                "held by {what}, not by a mailslot server's entry; its owner (or root) can \
                 remove it"
            ),
        },
        registry::ClaimError::StaleOfOther(found) => MailslotError::AccessDenied {
            name,
            detail: format!(
                "a stale entry of uid {} holds the name (its server, pid {}, has exited); only \
                 that user or root can clear it",
                found.owner_uid, found.entry.owner_pid
            ),
        },
        registry::ClaimError::Io(e) => {
            MailslotError::io(display, "cannot take the name in the registry", e)
        }
    }
}

impl MailslotOptions {
    /// Creates the mailslot `name` (`CreateMailslot`).
    ///
    /// # Errors
    ///
    /// [`MailslotError::InvalidName`] for a malformed or remote name;
    /// [`MailslotError::AlreadyExists`] when a live server owns it;
    /// [`MailslotError::WrongKind`] when something else sits at its path;
    /// [`MailslotError::NotPermitted`] for an access list file modes cannot express or a
    /// non-loopback UDP address without
    /// [`allow_plaintext_network`](Self::allow_plaintext_network).
    pub fn create<N>(&self, name: N) -> Result<MailslotServer, MailslotError>
    where
        N: TryInto<Name>,
        N::Error: Into<MailslotError>,
    {
        let name: Name = name.try_into().map_err(Into::into)?;
        name.expect_class(NameClass::Mailslot)?;
        let display = display_name(&name);
        let Location::Here(ns) = name.location() else {
            return Err(MailslotError::NotPermitted {
                name: display,
                detail: "a server can only create mailslots on this machine; use listen_udp to \
                         receive from the network"
                    .into(),
            });
        };
        let not_permitted = |detail: String| MailslotError::NotPermitted {
            name: display.clone(),
            detail,
        };
        let (mode, group) = self.socket_mode().map_err(not_permitted)?;
        if let Some(addr) = self.udp {
            if !addr.ip().is_loopback() && !self.plaintext_network {
                return Err(not_permitted(format!(
                    "refusing to receive on non-loopback address {addr} without \
                     allow_plaintext_network(): anyone on the network could write to this slot"
                )));
            }
        }
        let io = |context: &str| {
            let display = display.clone();
            let context = context.to_owned();
            move |e| MailslotError::io(&display, context, e)
        };
        let object = name.object();
        let dir = ns
            .directory(NameClass::Mailslot)
            .map_err(io("cannot use the namespace directory"))?;
        // The entry carries the slot's limit: writers read it from a file only this user
        // can write, never from anything another user could plant.
        let mut entry = registry::store_entry(ObjectKind::Mailslot, object);
        entry.max_message = self.max_message as u64;
        let claim = registry::claim(*ns, &entry).map_err(|e| claim_error(&display, e))?;
        let path = dir.join(object);
        registry::replace_stale_socket(&path).map_err(|e| match e {
            registry::StaleSocket::NotASocket(found) => MailslotError::WrongKind {
                name: display.clone(),
                found: format!("{found} ({})", path.display()),
            },
            registry::StaleSocket::Io(e) => {
                MailslotError::io(&display, "cannot remove a stale socket", e)
            }
        })?;
        let local = UnixDatagram::bind(&path).map_err(io("cannot bind the slot's socket"))?;
        let socket_id = crate::sys::fs::id_at(&path)
            .ok()
            .flatten()
            .map(|(id, _)| id);
        if let Some(gid) = group {
            std::os::unix::fs::chown(&path, None, Some(gid))
                .map_err(io("cannot give the socket to its group"))?;
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(io("cannot set the socket's mode"))?;
        // The kernel's default receive buffer (208 KiB here) holds any message up to about
        // 200 KiB; raise it only for larger ones.
        if self.max_message > 128 * 1024 {
            crate::sys::set_socket_buffers(
                &local,
                Some(self.max_message.saturating_add(4096)),
                None,
            )
            .map_err(io("cannot size the socket's buffer"))?;
        }
        let udp = match self.udp {
            None => None,
            Some(addr) => {
                let udp = UdpSocket::bind(addr).map_err(io("cannot listen on UDP"))?;
                Some(udp)
            }
        };
        let udp_addr = udp.as_ref().and_then(|u| u.local_addr().ok());
        let shared = Arc::new(Shared {
            name: display.clone(),
            object: object.to_owned(),
            local,
            udp,
            store: Mutex::new(Store::default()),
            space: Condvar::new(),
            read_timeout: Mutex::new(self.read_timeout),
            max_message: self.max_message,
            capacity: self.capacity,
            drops: Drops::default(),
            stopping: AtomicBool::new(false),
            reader: Mutex::new(ReaderState::default()),
            reader_waiting: AtomicBool::new(false),
            reader_pulled_at: AtomicU64::new(0),
            epoch: Instant::now(),
            #[cfg(feature = "tokio")]
            notify: ::tokio::sync::Notify::new(),
        });
        let receiver = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("procwire-mailslot".into())
            .spawn(move || receiver.receive_loop())
            .map_err(io("cannot start the receiving thread"))?;
        tracing::info!(slot = %shared.name, ?udp_addr, "mailslot server listening");
        Ok(MailslotServer {
            shared,
            thread: Some(thread),
            path,
            udp_addr,
            socket_id,
            _claim: claim,
        })
    }

    /// The socket file's mode and group that express the access list.
    fn socket_mode(&self) -> Result<(u32, Option<u32>), String> {
        let mut mode = 0o600;
        let mut group = None;
        for (principal, access) in self.access.grants() {
            if !access.can_write() {
                continue;
            }
            match *principal {
                Principal::Everyone => mode |= 0o002,
                Principal::Group(gid) => {
                    if group.is_some_and(|g| g != gid) {
                        return Err("mailslot access is enforced by the socket file's mode, \
                                    which can grant write access to one group only"
                            .into());
                    }
                    group = Some(gid);
                    mode |= 0o020;
                }
                Principal::User(uid) if uid == self.access.owner() => {}
                Principal::User(uid) => {
                    return Err(format!(
                        "mailslot access is enforced by the socket file's mode, which cannot \
                         grant access to a single user (uid {uid}); grant it to a group"
                    ))
                }
                Principal::Network => {}
            }
        }
        Ok((mode, group))
    }
}

/// How a mailslot name is shown: always in the `\\.\mailslot\` form.
pub(crate) fn display_name(name: &Name) -> String {
    let text = name.to_string();
    if name.class().is_some() || name.is_remote() {
        return text;
    }
    match name.namespace() {
        Some(Namespace::Global) => format!(r"\\.\mailslot\Global\{}", name.object()),
        _ => format!(r"\\.\mailslot\{}", name.object()),
    }
}

/// Keeps the receiving thread out of the kernel's queue while a multi-object wait watches
/// the slot's sockets, as a blocking read does: what arrives stays where the wait sees it.
struct WaitMark(Arc<Shared>);

impl Drop for WaitMark {
    fn drop(&mut self) {
        self.0.reader_waiting.store(false, Ordering::Release);
    }
}

/// What a multi-object wait ([`WaitSet`](crate::sync::WaitSet)) watches of a slot: it is
/// ready while a message is waiting (in the store, or still in the kernel).
impl crate::sys::ready::ReadySource for MailslotServer {
    fn kind(&self) -> &'static str {
        "mailslot"
    }

    fn name(&self) -> &str {
        &self.shared.name
    }

    fn watch(&self) -> Result<crate::sys::ready::Watch, String> {
        use std::os::fd::AsFd;
        let shared = &self.shared;
        let mut fds =
            vec![crate::sys::ready::duplicate(shared.local.as_fd()).map_err(|e| e.to_string())?];
        if let Some(udp) = &shared.udp {
            fds.push(crate::sys::ready::duplicate(udp.as_fd()).map_err(|e| e.to_string())?);
        }
        let ready = {
            // Under the store's lock, as a blocking read marks itself: from here on the
            // receiving thread leaves datagrams in the kernel, where the sockets show them.
            let store = shared.lock();
            shared.reader_waiting.store(true, Ordering::Release);
            !store.queue.is_empty()
        };
        let store = Arc::clone(shared);
        Ok(crate::sys::ready::Watch {
            ready,
            fds,
            also: Some(Box::new(move || !store.lock().queue.is_empty())),
            _hold: Some(Box::new(WaitMark(Arc::clone(shared)))),
        })
    }
}
