//! Every case of `procwire bench`: a technique and a measure, timed through procwire and
//! through the raw primitive beneath it, each against a peer in another process.
//!
//! | technique | floor (raw) | procwire | measures |
//! | --- | --- | --- | --- |
//! | `pipe` | Unix stream socket | message pipe (socket) | latency 64 B; throughput 64 B–1 MiB |
//! | `shm-pipe` | atomic ping-pong in a mapping | shared-memory pipe | latency 64 B |
//! | `mapping` | copy into private memory | `View::write_at` into a mapping | throughput 64 B–1 MiB |
//! | `sync` | futex ping-pong; robust pthread mutex | `NamedEvent` ping-pong; `NamedMutex` | latency |
//! | `mailslot` | Unix datagram socket | mailslot | throughput 64 B, 4 KiB |
//! | `remoting` | shared-memory pipe round trip | `#[remote]` call over the pipe channel | latency 64 B |
//!
//! Latency is the time of one round trip (or one lock and unlock); throughput is one-way,
//! a batch of messages and then one acknowledgement.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::atomic::{AtomicU64, Ordering};

use procwire::mailslot::{MailslotOptions, MailslotServer};
use procwire::mapping::{Mapping, View};
use procwire::pipe::{ClientOptions, PipeConnection};
use procwire::sync::{EventReset, NamedEvent, NamedMutex};
use procwire::wire::PipeMode;
use procwire_remoting::{remote, Proxy, RegistryBuilder, RemotingServer};
use procwire_testkit::bench::{bench_name, spin_until};

use crate::peer::{ready, Peer};
use crate::raw;

/// The largest message of any case.
pub const MAX_MESSAGE: usize = 1 << 20;
/// The size of the round trips.
pub const SMALL: usize = 64;
/// The message sizes of the throughput cases.
pub const THROUGHPUT_SIZES: &[usize] = &[64, 4 << 10, 64 << 10, 1 << 20];
/// The message sizes of the mailslot cases (a datagram is at most 64 KiB).
pub const MAILSLOT_SIZES: &[usize] = &[64, 4 << 10];
/// The bytes of one throughput iteration (at least four messages).
const BATCH_BYTES: usize = 2 << 20;

/// The techniques, as `procwire bench` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Technique {
    /// Named pipes over a Unix socket.
    Pipe,
    /// Named pipes through shared memory.
    ShmPipe,
    /// File mappings (named shared memory).
    Mapping,
    /// Named events and mutexes.
    Sync,
    /// Mailslots.
    Mailslot,
    /// Remote objects.
    Remoting,
}

impl Technique {
    /// Every technique, in report order.
    pub const ALL: [Technique; 6] = [
        Technique::Pipe,
        Technique::ShmPipe,
        Technique::Mapping,
        Technique::Sync,
        Technique::Mailslot,
        Technique::Remoting,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Technique::Pipe => "pipe",
            Technique::ShmPipe => "shm-pipe",
            Technique::Mapping => "mapping",
            Technique::Sync => "sync",
            Technique::Mailslot => "mailslot",
            Technique::Remoting => "remoting",
        }
    }

    /// The technique called `name`.
    pub fn from_name(name: &str) -> Option<Technique> {
        Technique::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Technique {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a case measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// The time of one round trip (or one lock and unlock).
    Latency,
    /// Bytes per second, one way.
    Throughput,
}

impl Measure {
    /// `latency` or `throughput`.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Latency => "latency",
            Measure::Throughput => "throughput",
        }
    }
}

/// A running case: its peer started and connected. Each [`iter`](Session::iter) is one
/// round trip (latency) or one batch of [`bytes`](Session::bytes) (throughput).
pub trait Session {
    /// Runs one iteration. Panics if the peer fails (a benchmark has nothing to recover).
    fn iter(&mut self);
    /// The bytes one iteration carries one way (0 for latency cases).
    fn bytes(&self) -> u64 {
        0
    }
}

/// One measurement: a technique, a measure, a size, procwire or its floor.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// The technique.
    pub technique: Technique,
    /// What is measured.
    pub measure: Measure,
    /// What runs: `unix socket`, `procwire pipe`, ...
    pub name: &'static str,
    /// Whether this is the raw primitive (the floor the procwire cases are compared to).
    pub raw: bool,
    /// The message size in bytes.
    pub size: usize,
    /// Iterations per timed sample (short operations are timed many at once).
    pub batch: u32,
    start: fn(usize) -> Result<Box<dyn Session>, String>,
}

impl Case {
    /// Starts the case: its peer process, its connection.
    ///
    /// # Errors
    ///
    /// When the peer cannot be started or reached.
    pub fn start(&self) -> Result<Box<dyn Session>, String> {
        (self.start)(self.size)
    }

    /// The floor this case is compared to (itself, for a raw case).
    pub fn floor<'a>(&self, cases: &'a [Case]) -> Option<&'a Case> {
        cases.iter().find(|c| {
            c.raw
                && c.technique == self.technique
                && c.measure == self.measure
                && c.size == self.size
                && c.group() == self.group()
        })
    }

    /// Cases of one technique and measure that share a floor: the sync latencies are two
    /// groups (events and mutexes).
    fn group(&self) -> &'static str {
        match self.name {
            "pthread mutex (robust)" | "procwire NamedMutex" => "mutex",
            _ => "",
        }
    }

    /// A label for tables and plots: `pipe latency 64 B: unix socket` (no size for the
    /// sync cases).
    pub fn label(&self) -> String {
        if self.size == 0 {
            format!("{} {}: {}", self.technique, self.measure.name(), self.name)
        } else {
            format!(
                "{} {} {}: {}",
                self.technique,
                self.measure.name(),
                format_size(self.size),
                self.name
            )
        }
    }
}

/// `64 B`, `4 KiB`, `1 MiB`.
pub fn format_size(size: usize) -> String {
    match size {
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

fn case(
    technique: Technique,
    measure: Measure,
    name: &'static str,
    raw: bool,
    size: usize,
    batch: u32,
    start: fn(usize) -> Result<Box<dyn Session>, String>,
) -> Case {
    Case {
        technique,
        measure,
        name,
        raw,
        size,
        batch,
        start,
    }
}

/// Every case, floors first within each technique and measure.
pub fn all_cases() -> Vec<Case> {
    use Measure::{Latency, Throughput};
    use Technique::*;
    let mut v = vec![
        case(Pipe, Latency, "unix socket", true, SMALL, 10, socket_echo),
        case(Pipe, Latency, "procwire pipe", false, SMALL, 10, pipe_echo),
    ];
    for &size in THROUGHPUT_SIZES {
        v.push(case(
            Pipe,
            Throughput,
            "unix socket",
            true,
            size,
            1,
            socket_sink,
        ));
        v.push(case(
            Pipe,
            Throughput,
            "procwire pipe",
            false,
            size,
            1,
            pipe_sink,
        ));
    }
    v.push(case(
        ShmPipe,
        Latency,
        "atomic ping-pong",
        true,
        SMALL,
        10,
        atomic_ping_pong,
    ));
    v.push(case(
        ShmPipe,
        Latency,
        "procwire shm pipe",
        false,
        SMALL,
        10,
        shm_echo,
    ));
    for &size in THROUGHPUT_SIZES {
        v.push(case(
            Mapping,
            Throughput,
            "private memory",
            true,
            size,
            1,
            memory_copy,
        ));
        v.push(case(
            Mapping,
            Throughput,
            "procwire view",
            false,
            size,
            1,
            view_copy,
        ));
    }
    v.push(case(
        Sync,
        Latency,
        "futex ping-pong",
        true,
        0,
        10,
        futex_ping_pong,
    ));
    v.push(case(
        Sync,
        Latency,
        "procwire NamedEvent",
        false,
        0,
        10,
        event_ping_pong,
    ));
    v.push(case(
        Sync,
        Latency,
        "pthread mutex (robust)",
        true,
        0,
        1000,
        pthread_mutex,
    ));
    v.push(case(
        Sync,
        Latency,
        "procwire NamedMutex",
        false,
        0,
        1000,
        named_mutex,
    ));
    for &size in MAILSLOT_SIZES {
        v.push(case(
            Mailslot,
            Throughput,
            "unix datagram",
            true,
            size,
            1,
            datagrams,
        ));
        v.push(case(
            Mailslot,
            Throughput,
            "procwire mailslot",
            false,
            size,
            1,
            mailslot,
        ));
    }
    v.push(case(
        Remoting,
        Latency,
        "shm pipe round trip",
        true,
        SMALL,
        10,
        shm_echo,
    ));
    v.push(case(
        Remoting,
        Latency,
        "procwire remoting (pipe)",
        false,
        SMALL,
        10,
        remoting_call,
    ));
    v
}

/// The case of `technique` called `name` at `size` bytes (0 for the sync cases).
pub fn find_case(technique: Technique, name: &str, size: usize) -> Option<Case> {
    all_cases()
        .into_iter()
        .find(|c| c.technique == technique && c.name == name && c.size == size)
}

fn boxed(session: impl Session + 'static) -> Result<Box<dyn Session>, String> {
    Ok(Box::new(session))
}

fn messages_per_batch(size: usize) -> usize {
    (BATCH_BYTES / size).max(4)
}

// --- pipe: raw Unix stream socket against the message pipe ---

struct Socket {
    conn: UnixStream,
    message: Vec<u8>,
    answer: Vec<u8>,
    count: usize,
    _peer: Peer,
}

fn socket(role: &str, size: usize) -> Result<Socket, String> {
    let path = std::env::temp_dir().join(format!("{}.sock", bench_name(role)));
    let mut peer = Peer::spawn(role, path.to_str().ok_or("the temp dir is not UTF-8")?)?;
    peer.remove_on_drop(path.clone());
    let conn = UnixStream::connect(&path).map_err(|e| format!("connect {path:?}: {e}"))?;
    Ok(Socket {
        conn,
        message: vec![7u8; size],
        answer: vec![0u8; size],
        count: messages_per_batch(size),
        _peer: peer,
    })
}

struct SocketEcho(Socket);

impl Session for SocketEcho {
    fn iter(&mut self) {
        let s = &mut self.0;
        s.conn.write_all(&s.message).unwrap();
        s.conn.read_exact(&mut s.answer).unwrap();
    }
}

/// Starts the raw Unix socket round trip of `size` bytes (write, then read the echo).
///
/// # Errors
///
/// When the peer or the objects cannot be set up.
pub fn socket_echo(size: usize) -> Result<Box<dyn Session>, String> {
    boxed(SocketEcho(socket("raw-echo", size)?))
}

struct SocketSink(Socket);

impl Session for SocketSink {
    fn iter(&mut self) {
        let s = &mut self.0;
        let mut preamble = [0u8; 16];
        preamble[..8].copy_from_slice(&(s.message.len() as u64).to_be_bytes());
        preamble[8..].copy_from_slice(&(s.count as u64).to_be_bytes());
        s.conn.write_all(&preamble).unwrap();
        for _ in 0..s.count {
            s.conn.write_all(&s.message).unwrap();
        }
        s.conn.read_exact(&mut s.answer[..1]).unwrap();
    }

    fn bytes(&self) -> u64 {
        (self.0.count * self.0.message.len()) as u64
    }
}

/// Starts the raw Unix socket throughput of `size`-byte messages (a batch to a sink, one
/// acknowledgement).
///
/// # Errors
///
/// When the peer or the objects cannot be set up.
pub fn socket_sink(size: usize) -> Result<Box<dyn Session>, String> {
    boxed(SocketSink(socket("raw-sink", size)?))
}

struct Pipe {
    conn: PipeConnection,
    message: Vec<u8>,
    answer: Vec<u8>,
    count: usize,
    _peer: Peer,
}

fn pipe(role: &str, size: usize) -> Result<Pipe, String> {
    let name = format!(r"\\.\pipe\{}", bench_name(role));
    let peer = Peer::spawn(role, &name)?;
    let shared_memory = role.starts_with("shm-");
    let conn = ClientOptions::new()
        .read_mode(PipeMode::Message)
        .shared_memory(shared_memory)
        .open(name.as_str())
        .map_err(|e| format!("connect to the peer's pipe: {e}"))?;
    if conn.is_shared_memory() != shared_memory {
        return Err("the pipe did not take the shared-memory path".to_owned());
    }
    Ok(Pipe {
        conn,
        message: vec![7u8; size],
        answer: vec![0u8; size.max(1)],
        count: messages_per_batch(size),
        _peer: peer,
    })
}

struct PipeEcho(Pipe);

impl Session for PipeEcho {
    fn iter(&mut self) {
        let s = &mut self.0;
        s.conn.send(&s.message).unwrap();
        let part = s.conn.recv_into(&mut s.answer).unwrap();
        assert!(part.complete && part.len == s.message.len());
    }
}

/// Starts the socket pipe round trip of `size` bytes (`send`, then `recv_into`).
///
/// # Errors
///
/// When the peer or the objects cannot be set up.
pub fn pipe_echo(size: usize) -> Result<Box<dyn Session>, String> {
    boxed(PipeEcho(pipe("pipe-echo", size)?))
}

fn shm_echo(size: usize) -> Result<Box<dyn Session>, String> {
    boxed(PipeEcho(pipe("shm-echo", size)?))
}

struct PipeSink(Pipe);

impl Session for PipeSink {
    fn iter(&mut self) {
        let s = &mut self.0;
        for _ in 0..s.count {
            s.conn.send(&s.message).unwrap();
        }
        s.conn.send(&[]).unwrap();
        let part = s.conn.recv_into(&mut s.answer).unwrap();
        assert!(part.complete && part.len == 1);
    }

    fn bytes(&self) -> u64 {
        (self.0.count * self.0.message.len()) as u64
    }
}

fn pipe_sink(size: usize) -> Result<Box<dyn Session>, String> {
    boxed(PipeSink(pipe("pipe-sink", size)?))
}

// --- shm-pipe: the floor of shared memory ---

/// The layout of the atomic ping-pong's mapping: the two counters on cache lines of their
/// own, the message size, then a buffer for each direction.
pub(crate) mod atomic {
    pub(crate) const PING: usize = 0;
    pub(crate) const PONG: usize = 64;
    pub(crate) const SIZE: usize = 128;
    pub(crate) const PING_DATA: usize = 4096;
    pub(crate) const PONG_DATA: usize = PING_DATA + super::MAX_MESSAGE;
    pub(crate) const MAPPING: usize = PONG_DATA + super::MAX_MESSAGE;
}

struct AtomicPingPong {
    view: View,
    message: Vec<u8>,
    answer: Vec<u8>,
    n: u64,
    _mapping: Mapping,
    _peer: Peer,
}

impl AtomicPingPong {
    fn words(&self) -> (&AtomicU64, &AtomicU64) {
        (
            self.view.atomic_u64(atomic::PING).expect("ping word"),
            self.view.atomic_u64(atomic::PONG).expect("pong word"),
        )
    }
}

impl Session for AtomicPingPong {
    /// Copy the message into the mapping and bump a counter; busy-wait for the peer to
    /// echo the counter (having copied the bytes into the answer buffer); copy the answer
    /// out.
    fn iter(&mut self) {
        self.n += 1;
        let n = self.n;
        self.view
            .write_at(atomic::PING_DATA, &self.message)
            .unwrap();
        let (ping, pong) = self.words();
        ping.store(n, Ordering::Release);
        spin_until(|| (pong.load(Ordering::Acquire) == n).then_some(()));
        self.view
            .read_at(atomic::PONG_DATA, &mut self.answer)
            .unwrap();
    }
}

impl Drop for AtomicPingPong {
    fn drop(&mut self) {
        self.words().0.store(u64::MAX, Ordering::Release);
    }
}

/// Starts the floor of shared memory at `size` bytes: the message copied into a mapping,
/// a counter bumped, a busy wait for the peer's answer, the answer copied out.
///
/// # Errors
///
/// When the peer or the objects cannot be set up.
pub fn atomic_ping_pong(size: usize) -> Result<Box<dyn Session>, String> {
    let name = bench_name("atomic");
    let mapping = Mapping::create(name.as_str(), atomic::MAPPING as u64)
        .map_err(|e| format!("create a mapping: {e}"))?;
    let view = mapping.view_all().map_err(|e| e.to_string())?;
    view.atomic_u64(atomic::SIZE)
        .map_err(|e| e.to_string())?
        .store(size as u64, Ordering::Release);
    let peer = Peer::spawn("atomic-echo", &name)?;
    boxed(AtomicPingPong {
        view,
        message: vec![7u8; size],
        answer: vec![0u8; size],
        n: 0,
        _mapping: mapping,
        _peer: peer,
    })
}

// --- mapping: copies into a view against copies into private memory ---

/// The region one throughput iteration fills, message after message.
const COPY_REGION: usize = BATCH_BYTES.next_power_of_two() * 2;

struct MemoryCopy {
    region: Vec<u8>,
    message: Vec<u8>,
    count: usize,
}

impl Session for MemoryCopy {
    fn iter(&mut self) {
        let size = self.message.len();
        for i in 0..self.count {
            let at = (i * size) % (self.region.len() - size + 1);
            self.region[at..at + size].copy_from_slice(&self.message);
        }
        std::hint::black_box(&mut self.region);
    }

    fn bytes(&self) -> u64 {
        (self.count * self.message.len()) as u64
    }
}

fn memory_copy(size: usize) -> Result<Box<dyn Session>, String> {
    boxed(MemoryCopy {
        region: vec![1u8; COPY_REGION],
        message: vec![7u8; size],
        count: messages_per_batch(size),
    })
}

struct ViewCopy {
    view: View,
    message: Vec<u8>,
    count: usize,
    _mapping: Mapping,
}

impl Session for ViewCopy {
    fn iter(&mut self) {
        let size = self.message.len();
        for i in 0..self.count {
            let at = (i * size) % (COPY_REGION - size + 1);
            self.view.write_at(at, &self.message).unwrap();
        }
    }

    fn bytes(&self) -> u64 {
        (self.count * self.message.len()) as u64
    }
}

fn view_copy(size: usize) -> Result<Box<dyn Session>, String> {
    let mapping = Mapping::create(bench_name("copy").as_str(), COPY_REGION as u64)
        .map_err(|e| format!("create a mapping: {e}"))?;
    let view = mapping.view_all().map_err(|e| e.to_string())?;
    // Touch every page first, as the private region is.
    view.write_at(0, &vec![1u8; COPY_REGION])
        .map_err(|e| e.to_string())?;
    boxed(ViewCopy {
        view,
        message: vec![7u8; size],
        count: messages_per_batch(size),
        _mapping: mapping,
    })
}

// --- sync: events against a futex ping-pong, the named mutex against pthread's ---

/// Where the futex words sit in their mapping.
pub(crate) mod futex {
    pub(crate) const PING_AT: usize = 0;
    pub(crate) const PONG_AT: usize = 64;
}

/// A fresh 4 KiB mapping and a view of it.
fn small_mapping(tag: &str) -> Result<(String, Mapping, View), String> {
    let name = bench_name(tag);
    let mapping =
        Mapping::create(name.as_str(), 4096).map_err(|e| format!("create a mapping: {e}"))?;
    let view = mapping.view(0, 4096).map_err(|e| e.to_string())?;
    Ok((name, mapping, view))
}

struct FutexPingPong {
    view: View,
    _mapping: Mapping,
    _peer: Peer,
}

impl Session for FutexPingPong {
    /// Set the ping word and wake the peer; sleep until it sets the pong word.
    fn iter(&mut self) {
        raw::signal(self.view.atomic_u32(futex::PING_AT).unwrap());
        raw::wait(self.view.atomic_u32(futex::PONG_AT).unwrap());
    }
}

/// Starts the futex ping-pong (two words in shared memory, `FUTEX_WAKE` and
/// `FUTEX_WAIT`); the size is ignored.
///
/// # Errors
///
/// When the peer or the objects cannot be set up.
pub fn futex_ping_pong(_: usize) -> Result<Box<dyn Session>, String> {
    let (name, mapping, view) = small_mapping("futex")?;
    let peer = Peer::spawn("raw-pong", &name)?;
    boxed(FutexPingPong {
        view,
        _mapping: mapping,
        _peer: peer,
    })
}

struct EventPingPong {
    ping: NamedEvent,
    pong: NamedEvent,
    _peer: Peer,
}

impl Session for EventPingPong {
    /// Set the ping event, wait for the pong (both auto-reset).
    fn iter(&mut self) {
        self.ping.set().unwrap();
        self.pong.wait().unwrap();
    }
}

/// Starts the ping-pong of two auto-reset `NamedEvent`s; the size is ignored.
///
/// # Errors
///
/// When the peer or the objects cannot be set up.
pub fn event_ping_pong(_: usize) -> Result<Box<dyn Session>, String> {
    let name = bench_name("events");
    let event = |tag: &str| {
        NamedEvent::create(format!("{name}-{tag}").as_str(), EventReset::Auto, false)
            .map_err(|e| format!("create an event: {e}"))
    };
    let (ping, pong) = (event("ping")?, event("pong")?);
    let peer = Peer::spawn("event-pong", &name)?;
    boxed(EventPingPong {
        ping,
        pong,
        _peer: peer,
    })
}

struct PthreadMutex {
    mutex: raw::PthreadMutex,
    _mapping: Mapping,
}

impl Session for PthreadMutex {
    fn iter(&mut self) {
        self.mutex.lock();
        self.mutex.unlock();
    }
}

/// Starts the uncontended lock and unlock of a robust, process-shared pthread mutex; the
/// size is ignored.
///
/// # Errors
///
/// When the peer or the objects cannot be set up.
pub fn pthread_mutex(_: usize) -> Result<Box<dyn Session>, String> {
    let (_name, mapping, view) = small_mapping("pthread")?;
    boxed(PthreadMutex {
        mutex: raw::PthreadMutex::init(view),
        _mapping: mapping,
    })
}

struct Mutex(NamedMutex);

impl Session for Mutex {
    fn iter(&mut self) {
        drop(self.0.lock().unwrap());
    }
}

/// Starts the uncontended lock and unlock of a `NamedMutex`; the size is ignored.
///
/// # Errors
///
/// When the peer or the objects cannot be set up.
pub fn named_mutex(_: usize) -> Result<Box<dyn Session>, String> {
    let mutex = NamedMutex::create(bench_name("mutex").as_str())
        .map_err(|e| format!("create a mutex: {e}"))?;
    boxed(Mutex(mutex))
}

// --- mailslot: against raw datagrams ---

/// How the reader of a datagram case takes its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// A raw Unix datagram socket, `recv` into a reused buffer.
    Raw,
    /// A mailslot, `read_into` a reused buffer.
    ReadInto,
    /// A mailslot, `read` (a new `Vec` per message).
    Read,
}

enum Slot {
    Raw(UnixDatagram, std::path::PathBuf),
    Procwire(MailslotServer),
}

struct Datagrams {
    slot: Slot,
    reader: Reader,
    buf: Vec<u8>,
    size: usize,
    each: usize,
    peers: Vec<Peer>,
}

impl Session for Datagrams {
    /// Ask every writer for a batch, read them all, wait for every writer's `done`.
    fn iter(&mut self) {
        let command = format!("{} {}", self.each, self.size);
        for peer in &mut self.peers {
            peer.command(&command);
        }
        for _ in 0..self.each * self.peers.len() {
            let n = match (&self.slot, self.reader) {
                (Slot::Raw(socket, _), _) => socket.recv(&mut self.buf).unwrap(),
                (Slot::Procwire(slot), Reader::Read) => {
                    std::hint::black_box(slot.read().unwrap()).len()
                }
                (Slot::Procwire(slot), _) => slot.read_into(&mut self.buf).unwrap(),
            };
            assert_eq!(n, self.size);
        }
        for peer in &mut self.peers {
            peer.wait_done();
        }
    }

    fn bytes(&self) -> u64 {
        (self.each * self.peers.len() * self.size) as u64
    }
}

impl Drop for Datagrams {
    fn drop(&mut self) {
        self.peers.clear();
        if let Slot::Raw(_, path) = &self.slot {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Starts a datagram case: `writers` writer processes sending `size`-byte messages, a
/// batch of about 512 KiB (at least 4 messages a writer) per iteration, to a reader here
/// (a raw socket or a mailslot, as `reader` says).
///
/// # Errors
///
/// When the socket, the slot or the writers cannot be set up.
pub fn datagram_batch(
    writers: usize,
    size: usize,
    reader: Reader,
) -> Result<Box<dyn Session>, String> {
    let each = (BATCH_BYTES / 4 / size / writers).max(4);
    let (slot, role, addr) = if reader == Reader::Raw {
        let path = std::env::temp_dir().join(format!("{}.dgram", bench_name("dgram")));
        let socket = UnixDatagram::bind(&path).map_err(|e| format!("bind {path:?}: {e}"))?;
        let addr = path.to_str().ok_or("the temp dir is not UTF-8")?.to_owned();
        (Slot::Raw(socket, path), "dgram-writer", addr)
    } else {
        let name = bench_name("slot");
        let slot = MailslotOptions::new()
            .create(name.as_str())
            .map_err(|e| format!("create a mailslot: {e}"))?;
        (Slot::Procwire(slot), "mailslot-writer", name)
    };
    let peers = (0..writers)
        .map(|_| Peer::spawn(role, &addr))
        .collect::<Result<Vec<_>, _>>()?;
    boxed(Datagrams {
        slot,
        reader,
        buf: vec![0u8; (64 << 10) + 1],
        size,
        each,
        peers,
    })
}

fn datagrams(size: usize) -> Result<Box<dyn Session>, String> {
    datagram_batch(1, size, Reader::Raw)
}

fn mailslot(size: usize) -> Result<Box<dyn Session>, String> {
    datagram_batch(1, size, Reader::ReadInto)
}

// --- remoting: a remote call against the pipe round trip beneath it ---

/// The remote object of the remoting case.
#[remote]
pub trait Echo {
    /// Returns `data`.
    async fn echo(&self, data: Vec<u8>) -> Vec<u8>;
}

/// The `Echo` object of the remoting peer.
struct EchoImpl;

impl Echo for EchoImpl {
    async fn echo(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }
}

/// The remoting peer: `Echo` as a singleton `Bench/Echo` on three channels — the pipe
/// channel `addr` (shared memory), the pipe channel `addr-socket` (socket only) and the tcp
/// channel on a loopback port — whose base URLs it prints after `ready`, in that order
/// (see [`RemotingChannel`]).
pub(crate) fn remoting_server(addr: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let registry = RegistryBuilder::new("Bench")
            .singleton("Echo", || EchoServer::new(EchoImpl))
            .build();
        let server = RemotingServer::new(registry);
        let pipe = server
            .listen_pipe(procwire_remoting::PipeChannel::new(addr))
            .map_err(|e| e.to_string())?;
        let socket_only =
            procwire_remoting::PipeChannel::new(format!("{addr}-socket")).shared_memory(false);
        let socket_pipe = server.listen_pipe(socket_only).map_err(|e| e.to_string())?;
        let tcp = server
            .listen_tcp(procwire_remoting::TcpChannel::loopback(0))
            .map_err(|e| e.to_string())?;
        ready(&format!(
            "{} {} {}",
            pipe.local(),
            socket_pipe.local(),
            tcp.local()
        ))?;
        std::future::pending::<Result<(), String>>().await
    })
}

/// The channels of the remoting peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemotingChannel {
    /// The pipe channel through shared memory.
    PipeShm = 0,
    /// The pipe channel on its socket only.
    PipeSocket = 1,
    /// The tcp channel (loopback).
    Tcp = 2,
}

/// A remoting peer ([`remoting_server`]), stopped when dropped.
pub struct RemotingPeer(Peer);

impl RemotingPeer {
    /// Starts a remoting peer.
    ///
    /// # Errors
    ///
    /// When it cannot be started.
    pub fn spawn() -> Result<RemotingPeer, String> {
        Peer::spawn("remoting", &bench_name("remoting")).map(RemotingPeer)
    }

    /// The URL of the `Echo` object on `channel`.
    pub fn url(&self, channel: RemotingChannel) -> String {
        let base = self.0.info().split(' ').nth(channel as usize).unwrap_or("");
        format!("{base}/Bench/Echo")
    }

    /// A client of the `Echo` object on `channel`, connected in `rt`.
    ///
    /// # Errors
    ///
    /// When the connection fails.
    pub fn client(
        &self,
        rt: &tokio::runtime::Runtime,
        channel: RemotingChannel,
    ) -> Result<EchoClient, String> {
        let url = self.url(channel);
        let proxy = rt
            .block_on(Proxy::connect(&url))
            .map_err(|e| format!("connect to {url}: {e}"))?;
        Ok(EchoClient::new(proxy))
    }
}

struct RemoteCall {
    rt: tokio::runtime::Runtime,
    client: EchoClient,
    data: Vec<u8>,
    _peer: RemotingPeer,
}

impl Session for RemoteCall {
    fn iter(&mut self) {
        let answer = self
            .rt
            .block_on(self.client.echo(self.data.clone()))
            .unwrap();
        assert_eq!(answer.len(), self.data.len());
    }
}

/// Starts the remoting round trip: `echo` of `size` bytes through a `#[remote]` client
/// on the pipe channel (shared memory), in a current-thread tokio runtime.
///
/// # Errors
///
/// When the peer cannot be started or reached.
pub fn remoting_call(size: usize) -> Result<Box<dyn Session>, String> {
    let peer = RemotingPeer::spawn()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = peer.client(&rt, RemotingChannel::PipeShm)?;
    boxed(RemoteCall {
        rt,
        client,
        data: vec![7u8; size],
        _peer: peer,
    })
}
