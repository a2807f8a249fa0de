//! The peer processes of the cases: the current executable started again as
//! `EXE bench-peer ROLE ADDR`, pinned (when asked) to the peer CPU of the run
//! ([`set_peer_cpu`]), or else under `taskset -c` as `PROCWIRE_BENCH_PEER_CPUS` says (as
//! the divan benchmarks' own peers are).
//!
//! The peer sets itself up, prints `ready INFO` on its standard output, and serves until
//! its connection closes or its standard input (held by the benchmark) does. The writer
//! roles of the mailslot cases read commands from standard input instead: a line
//! `COUNT SIZE` asks for COUNT messages of SIZE bytes, answered by a line `done`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use procwire::mailslot::MailslotWriter;
use procwire::mapping::{Mapping, View};
use procwire::pipe::{PipeConnection, PipeError, PipeOptions};
use procwire::security::Access;
use procwire::sync::NamedEvent;
use procwire::wire::PipeMode;
use procwire_testkit::bench::{spin_until, PEER_CPUS_VAR};

use crate::cases::{remoting_server, MAX_MESSAGE};
use crate::placement::pin_current_thread;
use crate::raw;

/// The first argument that makes a binary a peer: `EXE bench-peer ROLE ADDR`.
pub const PEER_COMMAND: &str = "bench-peer";
/// The environment variable that tells a peer its CPU.
const PEER_CPU_VAR: &str = "PROCWIRE_BENCH_PEER_CPU";

/// The CPU peers are pinned to, plus one (0: not pinned).
static PEER_CPU: AtomicUsize = AtomicUsize::new(0);

/// Pins the peers started from now on to `cpu` (`None`: not pinned).
pub fn set_peer_cpu(cpu: Option<usize>) {
    PEER_CPU.store(cpu.map_or(0, |c| c + 1), Ordering::Relaxed);
}

/// If this process was started as a peer (`EXE bench-peer ROLE ADDR`), its role and
/// address. Divan binaries call it before `divan::main`.
pub fn peer_args() -> Option<(String, String)> {
    let mut args = std::env::args().skip(1);
    if args.next()? != PEER_COMMAND {
        return None;
    }
    Some((args.next()?, args.next()?))
}

/// Runs the peer `role` at `addr` until the benchmark goes away.
///
/// # Errors
///
/// An unknown role, or a failure to set up or to serve.
pub fn serve(role: &str, addr: &str) -> Result<(), String> {
    if let Ok(cpu) = std::env::var(PEER_CPU_VAR) {
        let cpu = cpu
            .parse()
            .map_err(|_| format!("bad {PEER_CPU_VAR}: {cpu}"))?;
        pin_current_thread(cpu)?;
    }
    if !role.ends_with("-writer") {
        // Exit as soon as the benchmark closes our standard input.
        std::thread::spawn(|| {
            let _ = io::copy(&mut io::stdin(), &mut io::sink());
            std::process::exit(0);
        });
    }
    match role {
        "raw-echo" => raw_server(addr, raw_echo),
        "raw-sink" => raw_server(addr, raw_sink),
        "pipe-echo" => pipe_server(addr, false, pipe_echo),
        "pipe-sink" => pipe_server(addr, false, pipe_sink),
        "shm-echo" => pipe_server(addr, true, pipe_echo),
        "atomic-echo" => atomic_echo(addr),
        "raw-pong" => raw_pong(addr),
        "event-pong" => event_pong(addr),
        "dgram-writer" => dgram_writer(addr),
        "mailslot-writer" => mailslot_writer(addr),
        "remoting" => remoting_server(addr),
        other => Err(format!("unknown bench peer role `{other}`")),
    }
}

/// Says that the peer is listening, and `info` (the divan peers' own `ready` line).
pub use procwire_testkit::bench::peer_ready_with as ready;

/// A running peer process, stopped when dropped.
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    info: String,
    remove: Option<PathBuf>,
}

impl Peer {
    /// Starts the peer `role` serving `addr`, and waits until it is ready.
    ///
    /// # Errors
    ///
    /// When it cannot be started or stops before it is ready.
    pub fn spawn(role: &str, addr: &str) -> Result<Peer, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
        let pinned = PEER_CPU.load(Ordering::Relaxed);
        // The divan benchmarks' way of pinning peers (`PROCWIRE_BENCH_PEER_CPUS`), unless
        // the run chose a CPU itself.
        let taskset = std::env::var(PEER_CPUS_VAR).ok().filter(|_| pinned == 0);
        let mut command = match &taskset {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        command
            .args([PEER_COMMAND, role, addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        match pinned {
            0 => command.env_remove(PEER_CPU_VAR),
            n => command.env(PEER_CPU_VAR, (n - 1).to_string()),
        };
        let mut child = command
            .spawn()
            .map_err(|e| format!("start the bench peer `{role}`: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut peer = Peer {
            child,
            stdin,
            stdout,
            info: String::new(),
            remove: None,
        };
        let line = peer.read_line()?;
        match line.strip_prefix("ready") {
            Some(info) => peer.info = info.trim().to_owned(),
            None => return Err(format!("bench peer `{role}` did not start: {line:?}")),
        }
        Ok(peer)
    }

    /// What the peer said after `ready`.
    pub fn info(&self) -> &str {
        &self.info
    }

    /// Removes `path` once the peer has stopped.
    pub fn remove_on_drop(&mut self, path: PathBuf) {
        self.remove = Some(path);
    }

    /// Sends the peer one command line.
    pub fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("peer stdin");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .expect("command the peer");
    }

    /// Reads one line from the peer.
    fn read_line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| format!("read from the bench peer: {e}"))?;
        Ok(line.trim_end().to_owned())
    }

    /// Waits for the peer's `done`.
    pub fn wait_done(&mut self) {
        let line = self.read_line().expect("peer answer");
        assert_eq!(line, "done", "the bench peer failed");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(path) = &self.remove {
            let _ = std::fs::remove_file(path);
        }
    }
}

// --- raw Unix stream sockets ---

fn raw_server(path: &str, serve: fn(UnixStream) -> io::Result<()>) -> Result<(), String> {
    let listener = UnixListener::bind(path).map_err(|e| format!("bind {path}: {e}"))?;
    ready("")?;
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
/// messages, each read whole into the start of one buffer (as a receiver that needs the
/// message must), then a one-byte acknowledgement back.
fn raw_sink(mut stream: UnixStream) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_MESSAGE];
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

// --- procwire pipes ---

/// Creates the pipe `name` in message mode, says it is ready, and `serve`s the first
/// connection until the client goes away.
pub fn pipe_server(
    name: &str,
    shared_memory: bool,
    serve: fn(&mut PipeConnection) -> Result<(), PipeError>,
) -> Result<(), String> {
    let options = PipeOptions::new()
        .mode(PipeMode::Message)
        .shared_memory(shared_memory);
    serve_first_connection(options, name, serve)
}

/// As [`pipe_server`] offering shared memory with rings of `ring` bytes.
pub fn shm_pipe_server_with_ring(
    name: &str,
    ring: usize,
    serve: fn(&mut PipeConnection) -> Result<(), PipeError>,
) -> Result<(), String> {
    let options = PipeOptions::new()
        .mode(PipeMode::Message)
        .shared_memory_ring_size(ring);
    serve_first_connection(options, name, serve)
}

fn serve_first_connection(
    options: PipeOptions,
    name: &str,
    serve: fn(&mut PipeConnection) -> Result<(), PipeError>,
) -> Result<(), String> {
    let server = options.create(name).map_err(|e| e.to_string())?;
    ready("")?;
    let mut conn = server.accept().map_err(|e| e.to_string())?;
    match serve(&mut conn) {
        Ok(()) | Err(PipeError::Disconnected { .. }) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Sends every message back, received with `recv_into` a reused buffer.
pub fn pipe_echo(conn: &mut PipeConnection) -> Result<(), PipeError> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let part = conn.recv_into(&mut buf)?;
        conn.send(&buf[..part.len])?;
    }
}

/// Receives messages with `recv_into` one reused buffer; an empty one asks for a
/// one-byte acknowledgement.
pub fn pipe_sink(conn: &mut PipeConnection) -> Result<(), PipeError> {
    let mut buf = vec![0u8; MAX_MESSAGE];
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

// --- shared memory and sync objects ---

fn view_of(name: &str) -> Result<View, String> {
    Mapping::open(name, Access::ReadWrite)
        .and_then(|m| m.view_all())
        .map_err(|e| format!("open the mapping {name}: {e}"))
}

/// The floor of shared memory: waits (spinning) for the ping counter to change, copies
/// the message out of its buffer and into the other, and answers by storing the counter
/// as the pong; stops when the counter reads `u64::MAX`.
fn atomic_echo(name: &str) -> Result<(), String> {
    use crate::cases::atomic::{PING, PING_DATA, PONG, PONG_DATA, SIZE};
    let view = view_of(name)?;
    let word = |at| view.atomic_u64(at).map_err(|e| e.to_string());
    let (ping, pong): (&AtomicU64, &AtomicU64) = (word(PING)?, word(PONG)?);
    let size = word(SIZE)?.load(Ordering::Acquire) as usize;
    let mut buf = vec![0u8; size];
    ready("")?;
    let mut last = 0;
    loop {
        let now = spin_until(|| Some(ping.load(Ordering::Acquire)).filter(|&n| n != last));
        if now == u64::MAX {
            return Ok(());
        }
        last = now;
        view.read_at(PING_DATA, &mut buf)
            .map_err(|e| e.to_string())?;
        view.write_at(PONG_DATA, &buf).map_err(|e| e.to_string())?;
        pong.store(now, Ordering::Release);
    }
}

/// The futex floor: wait for the ping word, set the pong word.
fn raw_pong(name: &str) -> Result<(), String> {
    use crate::cases::futex::{PING_AT, PONG_AT};
    let view = view_of(name)?;
    let ping = view.atomic_u32(PING_AT).map_err(|e| e.to_string())?;
    let pong = view.atomic_u32(PONG_AT).map_err(|e| e.to_string())?;
    ready("")?;
    loop {
        raw::wait(ping);
        raw::signal(pong);
    }
}

/// Waits for the event `NAME-ping`, sets `NAME-pong`.
fn event_pong(name: &str) -> Result<(), String> {
    let open =
        |tag: &str| NamedEvent::open(format!("{name}-{tag}").as_str()).map_err(|e| e.to_string());
    let (ping, pong) = (open("ping")?, open("pong")?);
    ready("")?;
    loop {
        ping.wait().map_err(|e| e.to_string())?;
        pong.set().map_err(|e| e.to_string())?;
    }
}

// --- datagrams ---

/// Runs the writer's commands (`COUNT SIZE` lines) with `send`.
fn writer(send: impl Fn(&[u8]) -> Result<(), String>) -> Result<(), String> {
    ready("")?;
    let mut out = io::stdout().lock();
    for line in io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let (count, size) = line
            .split_once(' ')
            .and_then(|(c, s)| Some((c.parse::<usize>().ok()?, s.parse::<usize>().ok()?)))
            .ok_or_else(|| format!("bad writer command {line:?}"))?;
        let message = vec![0x5a; size];
        for _ in 0..count {
            send(&message)?;
        }
        writeln!(out, "done")
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn dgram_writer(path: &str) -> Result<(), String> {
    let socket = UnixDatagram::unbound().map_err(|e| e.to_string())?;
    socket
        .connect(path)
        .map_err(|e| format!("connect {path}: {e}"))?;
    writer(|m| socket.send(m).map(drop).map_err(|e| e.to_string()))
}

fn mailslot_writer(name: &str) -> Result<(), String> {
    let slot = MailslotWriter::open(name).map_err(|e| e.to_string())?;
    writer(|m| slot.write(m).map_err(|e| e.to_string()))
}
