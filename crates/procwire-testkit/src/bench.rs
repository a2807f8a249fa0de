//! The peer process of a two-process benchmark, and busy-waiting.
//!
//! A benchmark binary starts itself again as its own peer: [`BenchPeer::spawn`] runs the
//! current executable with [`BENCH_ROLE_VAR`] and [`BENCH_ADDR_VAR`] set, and waits for the
//! peer to print `ready`. The binary's `main` checks [`bench_peer_role`] first:
//!
//! ```text
//! fn main() -> ExitCode {
//!     match procwire_testkit::bench::bench_peer_role() {
//!         Some(role) => procwire_testkit::bench::serve_peer(&role, peer::serve),
//!         None => {
//!             divan::main();
//!             ExitCode::SUCCESS
//!         }
//!     }
//! }
//! ```
//!
//! Where the two processes run decides most results (a wake-up on another CPU costs tens
//! of microseconds): with [`PEER_CPUS_VAR`] set, the peer is started under `taskset -c` on
//! those CPUs, so that `PROCWIRE_BENCH_PEER_CPUS=1 taskset -c 0 BENCH` puts one process on
//! each of CPUs 0 and 1.

use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Names the peer's role; unset in the benchmark process itself.
pub const BENCH_ROLE_VAR: &str = "PROCWIRE_BENCH_ROLE";
/// The address (a pipe name, a socket path, a mapping or service name) the peer serves.
pub const BENCH_ADDR_VAR: &str = "PROCWIRE_BENCH_ADDR";
/// When set, the CPU list the peer is pinned to (through `taskset -c`).
pub const PEER_CPUS_VAR: &str = "PROCWIRE_BENCH_PEER_CPUS";

/// The role this process was started in by [`BenchPeer::spawn`], or `None` in the
/// benchmark process itself.
pub fn bench_peer_role() -> Option<String> {
    std::env::var(BENCH_ROLE_VAR).ok()
}

/// Runs the peer: `serve(role, address)`, after arranging to exit as soon as the benchmark
/// process closes our standard input (it holds the other end). Errors go to stderr.
pub fn serve_peer(role: &str, serve: fn(&str, &str) -> Result<(), String>) -> ExitCode {
    let Ok(addr) = std::env::var(BENCH_ADDR_VAR) else {
        eprintln!("bench peer: {BENCH_ADDR_VAR} is not set");
        return ExitCode::FAILURE;
    };
    std::thread::spawn(|| {
        let _ = io::copy(&mut io::stdin(), &mut io::sink());
        std::process::exit(2);
    });
    match serve(role, &addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench peer {role}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// In the peer: tells the benchmark process that we are listening.
pub fn peer_ready() -> Result<(), String> {
    peer_ready_with("")
}

/// In the peer: tells the benchmark process that we are listening, and `info` (addresses
/// chosen only now, such as a TCP port), which [`BenchPeer::info`] returns.
pub fn peer_ready_with(info: &str) -> Result<(), String> {
    let mut out = io::stdout().lock();
    writeln!(out, "ready {info}")
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())
}

/// A name for this run's next object: unique per benchmark process and call.
pub fn bench_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("procwire-bench-{}-{n}-{tag}", std::process::id())
}

/// A running peer process (this binary again), stopped when dropped.
pub struct BenchPeer {
    child: Child,
    /// What the peer said after `ready`.
    info: String,
    /// A file (a socket path) to remove afterwards.
    remove: Option<PathBuf>,
}

impl BenchPeer {
    /// Starts this binary as `role` serving `addr` (pinned as [`PEER_CPUS_VAR`] says), and
    /// waits until it prints `ready`.
    pub fn spawn(role: &str, addr: &str) -> BenchPeer {
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
            .env(BENCH_ROLE_VAR, role)
            .env(BENCH_ADDR_VAR, addr)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the peer process");
        let stdout = child.stdout.take().expect("peer stdout");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let info = line
            .trim()
            .strip_prefix("ready")
            .map(|i| i.trim().to_owned());
        let peer = BenchPeer {
            child,
            info: info.clone().unwrap_or_default(),
            remove: None,
        };
        assert!(info.is_some(), "peer `{role}` did not start: {line:?}");
        peer
    }

    /// What the peer said when it was ready ([`peer_ready_with`]).
    pub fn info(&self) -> &str {
        &self.info
    }

    /// Removes `path` once the peer has stopped.
    pub fn remove_on_drop(&mut self, path: PathBuf) {
        self.remove = Some(path);
    }
}

impl Drop for BenchPeer {
    fn drop(&mut self) {
        // The peer exits once its standard input closes (or its connection does); give it
        // a moment.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(path) = &self.remove {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Polls that spin before a busy wait starts yielding the CPU.
const SPINS_BEFORE_YIELD: u32 = 64;

/// Busy-waits until `done` returns `Some`: polls it in a spin loop, and after
/// [`SPINS_BEFORE_YIELD`] polls yields the CPU between polls. Never sleeps in the kernel;
/// the yields let a peer on the same CPU run (two plain spinners on one CPU advance only
/// when the scheduler preempts one of them, every few milliseconds).
#[inline]
pub fn spin_until<T>(mut done: impl FnMut() -> Option<T>) -> T {
    let mut polls = 0u32;
    loop {
        if let Some(value) = done() {
            return value;
        }
        if polls < SPINS_BEFORE_YIELD {
            polls += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}
