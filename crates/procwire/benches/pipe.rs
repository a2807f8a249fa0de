//! Message pipes against raw Unix stream sockets, between two processes.
//!
//! Every benchmark talks to a peer process: this same binary, started again with
//! `PROCWIRE_BENCH_ROLE` set, which serves one connection (an echo server or a sink) and
//! exits when the connection closes. `main` checks the variable first and only runs divan
//! when it is unset.
//!
//! - `round_trip`: 64-byte messages sent to an echo peer and read back.
//! - `throughput`: a batch of 64 KiB or 1 MiB messages (8 MiB in all) sent one way to a
//!   sink, which acknowledges the batch with one byte; the acknowledgement is part of the
//!   time.
//!
//! - `shm_round_trip` and `shm_throughput`: the same over shared-memory pipes (copying, and
//!   zero-copy with loans and borrowed receives), beside the floor of shared memory: two
//!   processes spinning on an atomic in a mapping, and the socket pipe again.
//!
//! The raw baselines use `std::os::unix::net` directly, with the kernel's default buffers,
//! as procwire does. Run with `cargo bench -p procwire --bench pipe`; results are in
//! `docs/performance.md`.
//!
//! Where the two processes run matters more than anything else here (a wake-up on the
//! other CPU costs tens of microseconds). To fix it, run the benchmark under
//! `taskset -c 0` (both on one CPU), or set `PROCWIRE_BENCH_PEER_CPUS=1` and run under
//! `taskset -c 0` (the peer is then started with `taskset -c 1`: one CPU each).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use divan::counter::BytesCount;
use divan::Bencher;
use procwire::pipe::{ClientOptions, PipeConnection, PipeError, PipeOptions};
use procwire::wire::PipeMode;

/// Names the peer's role; unset in the benchmark process itself.
const ROLE_VAR: &str = "PROCWIRE_BENCH_ROLE";
/// The pipe name or socket path the peer serves.
const ADDR_VAR: &str = "PROCWIRE_BENCH_ADDR";
/// When set, the CPU list the peer is pinned to (through `taskset -c`).
const PEER_CPUS_VAR: &str = "PROCWIRE_BENCH_PEER_CPUS";

/// The round-trip message size.
const SMALL: usize = 64;
/// Bytes sent per throughput iteration.
const BATCH_BYTES: usize = 8 << 20;
/// Message sizes of the throughput benchmarks.
const SIZES: &[usize] = &[64 << 10, 1 << 20];
/// The receive buffer of the sinks, raw and procwire alike.
const SINK_BUFFER: usize = 1 << 20;

fn main() -> ExitCode {
    match std::env::var(ROLE_VAR) {
        Ok(role) => peer::run(&role),
        Err(_) => {
            divan::main();
            ExitCode::SUCCESS
        }
    }
}

/// The peer process: what runs when `PROCWIRE_BENCH_ROLE` is set.
mod peer {
    use super::*;

    /// Serves one connection in `role`, at the address in `PROCWIRE_BENCH_ADDR`.
    pub(crate) fn run(role: &str) -> ExitCode {
        let Ok(addr) = std::env::var(ADDR_VAR) else {
            eprintln!("bench peer: {ADDR_VAR} is not set");
            return ExitCode::FAILURE;
        };
        // The parent holds our stdin: when it goes away, so do we.
        std::thread::spawn(|| {
            let _ = io::copy(&mut io::stdin(), &mut io::sink());
            std::process::exit(2);
        });
        let result = match role {
            "pipe-echo" => pipe_server(&addr, false, pipe_echo),
            "pipe-sink-recv" => pipe_server(&addr, false, pipe_sink_recv),
            "pipe-sink-recv-into" => pipe_server(&addr, false, pipe_sink_recv_into),
            "shm-echo" => pipe_server(&addr, true, pipe_echo_into),
            "shm-echo-in-place" => pipe_server(&addr, true, pipe_echo_in_place),
            "shm-sink-recv-into" => pipe_server(&addr, true, pipe_sink_recv_into),
            "shm-sink-in-place" => pipe_server(&addr, true, pipe_sink_in_place),
            "atomic-echo" => atomic_echo(&addr),
            "raw-echo" => raw_server(&addr, raw_echo),
            "raw-sink" => raw_server(&addr, raw_sink),
            _ => Err(format!("unknown role `{role}`")),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench peer {role}: {e}");
                ExitCode::FAILURE
            }
        }
    }

    fn ready() -> Result<(), String> {
        let mut out = io::stdout().lock();
        writeln!(out, "ready")
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())
    }

    fn pipe_server(
        name: &str,
        shared_memory: bool,
        serve: fn(&mut PipeConnection) -> Result<(), PipeError>,
    ) -> Result<(), String> {
        let server = PipeOptions::new()
            .mode(PipeMode::Message)
            .shared_memory(shared_memory)
            .create(name)
            .map_err(|e| e.to_string())?;
        ready()?;
        let mut conn = server.accept().map_err(|e| e.to_string())?;
        match serve(&mut conn) {
            Ok(()) | Err(PipeError::Disconnected { .. }) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Sends every message back.
    fn pipe_echo(conn: &mut PipeConnection) -> Result<(), PipeError> {
        loop {
            let message = conn.recv()?;
            conn.send(&message)?;
        }
    }

    /// Sends every message back, received with `recv_into` a reused buffer.
    fn pipe_echo_into(conn: &mut PipeConnection) -> Result<(), PipeError> {
        let mut buf = vec![0u8; SINK_BUFFER];
        loop {
            let part = conn.recv_into(&mut buf)?;
            conn.send(&buf[..part.len])?;
        }
    }

    /// Sends every message back without a copy: read in place, written into a loan.
    fn pipe_echo_in_place(conn: &mut PipeConnection) -> Result<(), PipeError> {
        let mut scratch = [0u8; SMALL];
        loop {
            let len = {
                let message = conn.recv_borrowed()?;
                scratch[..message.len()].copy_from_slice(&message);
                message.len()
            };
            let mut loan = conn.loan(len)?;
            loan.copy_from_slice(&scratch[..len]);
            loan.send()?;
        }
    }

    /// Takes each message in place; an empty one asks for a one-byte acknowledgement.
    fn pipe_sink_in_place(conn: &mut PipeConnection) -> Result<(), PipeError> {
        loop {
            if conn.recv_borrowed()?.is_empty() {
                conn.send(b"k")?;
            }
        }
    }

    /// The floor: waits for the counter at offset 0 of the mapping to change, spinning, and
    /// answers by copying it to offset 64, until the counter reads `u64::MAX`.
    fn atomic_echo(name: &str) -> Result<(), String> {
        let mapping = procwire::mapping::Mapping::open(name, procwire::security::Access::ReadWrite)
            .map_err(|e| e.to_string())?;
        let view = mapping.view_all().map_err(|e| e.to_string())?;
        let (ping, pong) = (
            view.atomic_u64(0).map_err(|e| e.to_string())?,
            view.atomic_u64(64).map_err(|e| e.to_string())?,
        );
        ready()?;
        let mut last = 0;
        loop {
            let now = ping.load(Ordering::Acquire);
            if now == last {
                std::hint::spin_loop();
                continue;
            }
            if now == u64::MAX {
                return Ok(());
            }
            last = now;
            pong.store(now, Ordering::Release);
        }
    }

    /// Receives messages with `recv`; an empty one asks for a one-byte acknowledgement.
    fn pipe_sink_recv(conn: &mut PipeConnection) -> Result<(), PipeError> {
        loop {
            if conn.recv()?.is_empty() {
                conn.send(b"k")?;
            }
        }
    }

    /// As [`pipe_sink_recv`], with `recv_into` and one reused buffer.
    fn pipe_sink_recv_into(conn: &mut PipeConnection) -> Result<(), PipeError> {
        let mut buf = vec![0u8; SINK_BUFFER];
        loop {
            let mut len = 0;
            loop {
                let part = conn.recv_into(&mut buf)?;
                len += part.len;
                if part.complete {
                    break;
                }
            }
            if len == 0 {
                conn.send(b"k")?;
            }
        }
    }

    fn raw_server(path: &str, serve: fn(UnixStream) -> io::Result<()>) -> Result<(), String> {
        let listener = UnixListener::bind(path).map_err(|e| format!("bind {path}: {e}"))?;
        ready()?;
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        drop(listener);
        let _ = std::fs::remove_file(path);
        serve(stream).map_err(|e| e.to_string())
    }

    /// Writes back whatever arrives, until the end of the stream.
    fn raw_echo(mut stream: UnixStream) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            stream.write_all(&buf[..n])?;
        }
    }

    /// Reads batches: a 16-byte preamble (message size and count, big-endian), that many
    /// messages, each read whole into the start of one buffer (as a receiver that needs
    /// the message must), then a one-byte acknowledgement back.
    fn raw_sink(mut stream: UnixStream) -> io::Result<()> {
        let mut buf = vec![0u8; SINK_BUFFER];
        loop {
            let mut preamble = [0u8; 16];
            match stream.read_exact(&mut preamble) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
            let (size, count) = preamble.split_at(8);
            let size = u64::from_be_bytes(size.try_into().expect("8 bytes")) as usize;
            let count = u64::from_be_bytes(count.try_into().expect("8 bytes"));
            for _ in 0..count {
                stream.read_exact(&mut buf[..size])?;
            }
            stream.write_all(b"k")?;
        }
    }
}

/// A running peer process, stopped when dropped.
struct Peer {
    child: Child,
    /// The raw socket path to remove afterwards, if any.
    path: Option<PathBuf>,
}

impl Peer {
    /// Starts this binary as `role` serving `addr`, and waits until it is listening.
    fn spawn(role: &str, addr: &str) -> Peer {
        let exe = std::env::current_exe().expect("own executable");
        let mut command = match std::env::var(PEER_CPUS_VAR) {
            Ok(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(exe);
                c
            }
            Err(_) => Command::new(exe),
        };
        let mut child = command
            .env(ROLE_VAR, role)
            .env(ADDR_VAR, addr)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the peer process");
        let stdout = child.stdout.take().expect("peer stdout");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let peer = Peer { child, path: None };
        assert_eq!(line.trim(), "ready", "peer `{role}` did not start");
        peer
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // The peer exits on its own once the connection closes; give it a moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A connection and its peer. The connection is dropped first, so the peer can see the
/// end of the stream and exit cleanly.
struct Session<C> {
    conn: C,
    _peer: Peer,
}

/// A name for this run's next object: unique per benchmark process and call.
fn unique(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("procwire-bench-{}-{n}-{tag}", std::process::id())
}

fn pipe_session(role: &str) -> Session<PipeConnection> {
    let name = format!(r"\\.\pipe\{}", unique(role));
    let peer = Peer::spawn(role, &name);
    let conn = ClientOptions::new()
        .read_mode(PipeMode::Message)
        .shared_memory(role.starts_with("shm-"))
        .open(name.as_str())
        .expect("connect to the peer's pipe");
    assert_eq!(conn.is_shared_memory(), role.starts_with("shm-"));
    Session { conn, _peer: peer }
}

/// Two counters in a mapping, on cache lines of their own, and the peer that echoes one
/// into the other.
struct AtomicSession {
    view: procwire::mapping::View,
    _mapping: procwire::mapping::Mapping,
    _peer: Peer,
}

impl AtomicSession {
    fn new() -> AtomicSession {
        let name = unique("atomic");
        let mapping = procwire::mapping::Mapping::create(name.as_str(), 4096).expect("mapping");
        let view = mapping.view_all().expect("view");
        let peer = Peer::spawn("atomic-echo", &name);
        AtomicSession {
            view,
            _mapping: mapping,
            _peer: peer,
        }
    }

    fn words(&self) -> (&AtomicU64, &AtomicU64) {
        (
            self.view.atomic_u64(0).expect("ping"),
            self.view.atomic_u64(64).expect("pong"),
        )
    }
}

impl Drop for AtomicSession {
    fn drop(&mut self) {
        self.words().0.store(u64::MAX, Ordering::Release);
    }
}

fn raw_session(role: &str) -> Session<UnixStream> {
    let path = std::env::temp_dir().join(format!("{}.sock", unique(role)));
    let mut peer = Peer::spawn(role, path.to_str().expect("UTF-8 temp dir"));
    peer.path = Some(path.clone());
    let conn = UnixStream::connect(&path).expect("connect to the peer's socket");
    Session { conn, _peer: peer }
}

/// 64-byte messages to an echo peer and back: latency of one request and its answer.
#[divan::bench_group(sample_count = 3000, sample_size = 10)]
mod round_trip {
    use super::*;

    /// Raw socket: `write` 64 bytes, `read` 64 bytes.
    #[divan::bench]
    fn raw(bencher: Bencher<'_, '_>) {
        let mut s = raw_session("raw-echo");
        let message = [7u8; SMALL];
        let mut answer = [0u8; SMALL];
        bencher.bench_local(|| {
            s.conn.write_all(&message).unwrap();
            s.conn.read_exact(&mut answer).unwrap();
        });
    }

    /// procwire: `send`, then `recv` (a new `Vec` per answer).
    #[divan::bench]
    fn procwire_recv(bencher: Bencher<'_, '_>) {
        let mut s = pipe_session("pipe-echo");
        let message = [7u8; SMALL];
        bencher.bench_local(|| {
            s.conn.send(&message).unwrap();
            let answer = s.conn.recv().unwrap();
            assert_eq!(answer.len(), SMALL);
        });
    }

    /// procwire: `send`, then `recv_into` a reused buffer.
    #[divan::bench]
    fn procwire_recv_into(bencher: Bencher<'_, '_>) {
        let mut s = pipe_session("pipe-echo");
        let message = [7u8; SMALL];
        let mut answer = [0u8; SMALL];
        bencher.bench_local(|| {
            s.conn.send(&message).unwrap();
            let part = s.conn.recv_into(&mut answer).unwrap();
            assert!(part.complete && part.len == SMALL);
        });
    }
}

/// One-way bandwidth: 8 MiB of messages of `size` bytes to a sink, then one acknowledgement.
#[divan::bench_group(sample_count = 250, sample_size = 1)]
mod throughput {
    use super::*;

    fn messages_per_batch(size: usize) -> usize {
        (BATCH_BYTES / size).max(1)
    }

    /// Raw socket: `write_all` of each message; the sink `read_exact`s each into the start
    /// of a 1 MiB buffer.
    #[divan::bench(args = SIZES)]
    fn raw(bencher: Bencher<'_, '_>, size: usize) {
        let mut s = raw_session("raw-sink");
        let payload = vec![7u8; size];
        let count = messages_per_batch(size);
        let mut preamble = [0u8; 16];
        preamble[..8].copy_from_slice(&(size as u64).to_be_bytes());
        preamble[8..].copy_from_slice(&(count as u64).to_be_bytes());
        let mut ack = [0u8; 1];
        bencher
            .counter(BytesCount::new(count * size))
            .bench_local(|| {
                s.conn.write_all(&preamble).unwrap();
                for _ in 0..count {
                    s.conn.write_all(&payload).unwrap();
                }
                s.conn.read_exact(&mut ack).unwrap();
            });
    }

    fn procwire_to(bencher: Bencher<'_, '_>, size: usize, sink: &str) {
        let mut s = pipe_session(sink);
        let payload = vec![7u8; size];
        let count = messages_per_batch(size);
        let mut ack = [0u8; 1];
        bencher
            .counter(BytesCount::new(count * size))
            .bench_local(|| {
                for _ in 0..count {
                    s.conn.send(&payload).unwrap();
                }
                s.conn.send(&[]).unwrap();
                let part = s.conn.recv_into(&mut ack).unwrap();
                assert!(part.complete && part.len == 1);
            });
    }

    /// procwire: `send` of each message; the sink takes each with `recv` (a new `Vec`).
    #[divan::bench(args = SIZES)]
    fn procwire_recv(bencher: Bencher<'_, '_>, size: usize) {
        procwire_to(bencher, size, "pipe-sink-recv");
    }

    /// procwire: `send` of each message; the sink takes each with `recv_into` a reused
    /// 1 MiB buffer.
    #[divan::bench(args = SIZES)]
    fn procwire_recv_into(bencher: Bencher<'_, '_>, size: usize) {
        procwire_to(bencher, size, "pipe-sink-recv-into");
    }
}

/// 64-byte round trips through shared memory, against the floor (a spinning atomic
/// ping-pong) and the socket pipe, in the same run.
#[divan::bench_group(sample_count = 3000, sample_size = 100)]
mod shm_round_trip {
    use super::*;

    /// The floor: store a counter, spin until the peer echoes it.
    #[divan::bench]
    fn atomic_floor(bencher: Bencher<'_, '_>) {
        let s = AtomicSession::new();
        let (ping, pong) = s.words();
        let mut n = 0u64;
        bencher.bench_local(|| {
            n += 1;
            ping.store(n, Ordering::Release);
            while pong.load(Ordering::Acquire) != n {
                std::hint::spin_loop();
            }
        });
    }

    /// The socket pipe: `send`, then `recv_into`.
    #[divan::bench]
    fn socket_pipe(bencher: Bencher<'_, '_>) {
        round_trip_into(bencher, "pipe-echo");
    }

    /// The shared-memory pipe: `send`, then `recv_into` (one copy each way).
    #[divan::bench]
    fn shm_pipe(bencher: Bencher<'_, '_>) {
        round_trip_into(bencher, "shm-echo");
    }

    /// The shared-memory pipe without copies: a loan sent, the answer borrowed in place.
    #[divan::bench]
    fn shm_pipe_zero_copy(bencher: Bencher<'_, '_>) {
        let mut s = pipe_session("shm-echo-in-place");
        bencher.bench_local(|| {
            let mut loan = s.conn.loan(SMALL).unwrap();
            loan.fill(7);
            loan.send().unwrap();
            let answer = s.conn.recv_borrowed().unwrap();
            assert_eq!(answer.len(), SMALL);
        });
    }

    fn round_trip_into(bencher: Bencher<'_, '_>, role: &str) {
        let mut s = pipe_session(role);
        let message = [7u8; SMALL];
        let mut answer = [0u8; SMALL];
        bencher.bench_local(|| {
            s.conn.send(&message).unwrap();
            let part = s.conn.recv_into(&mut answer).unwrap();
            assert!(part.complete && part.len == SMALL);
        });
    }
}

/// One-way bandwidth through shared memory: 8 MiB of messages of `size` bytes, then one
/// acknowledgement.
#[divan::bench_group(sample_count = 30, sample_size = 1)]
mod shm_throughput {
    use super::*;

    const SHM_SIZES: &[usize] = &[64, 4 << 10, 64 << 10, 1 << 20];

    fn batch(bencher: Bencher<'_, '_>, size: usize, sink: &str, loans: bool) {
        let mut s = pipe_session(sink);
        let payload = vec![7u8; size];
        let count = (BATCH_BYTES / size).max(1);
        let mut ack = [0u8; 1];
        bencher
            .counter(BytesCount::new(count * size))
            .bench_local(|| {
                for _ in 0..count {
                    if loans {
                        let mut loan = s.conn.loan(size).unwrap();
                        loan.copy_from_slice(&payload);
                        loan.send().unwrap();
                    } else {
                        s.conn.send(&payload).unwrap();
                    }
                }
                s.conn.send(&[]).unwrap();
                let part = s.conn.recv_into(&mut ack).unwrap();
                assert!(part.complete && part.len == 1);
            });
    }

    /// `send` (one copy in); the sink's `recv_into` copies out.
    #[divan::bench(args = SHM_SIZES)]
    fn copy(bencher: Bencher<'_, '_>, size: usize) {
        batch(bencher, size, "shm-sink-recv-into", false);
    }

    /// Written into loans; the sink reads each in place (no copy out).
    #[divan::bench(args = SHM_SIZES)]
    fn zero_copy(bencher: Bencher<'_, '_>, size: usize) {
        batch(bencher, size, "shm-sink-in-place", true);
    }

    /// The socket pipe with the same sink, for the ratio.
    #[divan::bench(args = SHM_SIZES)]
    fn socket_pipe(bencher: Bencher<'_, '_>, size: usize) {
        batch(bencher, size, "pipe-sink-recv-into", false);
    }
}
