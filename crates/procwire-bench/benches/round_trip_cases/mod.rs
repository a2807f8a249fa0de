//! The round-trip cases that every two-process comparison shares: the floor of shared
//! memory (an atomic ping-pong in a mapping), the socket pipe, and the shared-memory pipe
//! copying and zero-copy, for any message size up to [`MAX_MESSAGE`].
//!
//! Included as a module by `benches/pipe.rs` and by the iceoryx2 comparison
//! (`benches/shm_compare.rs`), so that both run the same code; each binary's peer hands the
//! roles it does not know itself to [`serve`]. The floor is `procwire bench`'s own case
//! (`procwire_bench::cases`), whose peer is started as `EXE bench-peer ROLE ADDR`: each
//! binary's `main` hands that to [`serve_lib_peer`] first.

use divan::Bencher;
use procwire::pipe::{ClientOptions, PipeConnection, PipeError};
use procwire::wire::PipeMode;
use procwire_testkit::bench::{bench_name, BenchPeer};

/// The round-trip message sizes: a small message and a page.
pub const SIZES: &[usize] = &[64, 4 << 10];
/// The largest message the echo peers take.
pub use procwire_bench::cases::MAX_MESSAGE;

/// Runs this process as a peer of `procwire_bench`'s cases if it was started as one
/// (`EXE bench-peer ROLE ADDR`), and returns its exit code.
pub fn serve_lib_peer() -> Option<std::process::ExitCode> {
    let (role, addr) = procwire_bench::peer::peer_args()?;
    Some(match procwire_bench::peer::serve(&role, &addr) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench peer {role}: {e}");
            std::process::ExitCode::FAILURE
        }
    })
}

/// Serves `role` at `addr` if it is one of the roles here (`None` otherwise).
pub fn serve(role: &str, addr: &str) -> Option<Result<(), String>> {
    Some(match role {
        "pipe-echo" => pipe_server(addr, false, pipe_echo),
        "pipe-echo-into" => pipe_server(addr, false, procwire_bench::peer::pipe_echo),
        "shm-echo" => pipe_server(addr, true, procwire_bench::peer::pipe_echo),
        "shm-echo-in-place" => pipe_server(addr, true, pipe_echo_in_place),
        _ => {
            // `shm-echo-ring-BYTES`: the copying echo over rings of BYTES each.
            let ring = role.strip_prefix("shm-echo-ring-")?.parse().ok()?;
            let echo = procwire_bench::peer::pipe_echo;
            procwire_bench::peer::shm_pipe_server_with_ring(addr, ring, echo)
        }
    })
}

pub use procwire_bench::peer::pipe_server;

/// Sends every message back (`recv`: a new `Vec` each).
fn pipe_echo(conn: &mut PipeConnection) -> Result<(), PipeError> {
    loop {
        let message = conn.recv()?;
        conn.send(&message)?;
    }
}

/// Sends every message back without the pipe copying: read in place, written into a loan
/// (through a scratch buffer, since the borrowed message and the loan cannot coexist).
fn pipe_echo_in_place(conn: &mut PipeConnection) -> Result<(), PipeError> {
    let mut scratch = vec![0u8; MAX_MESSAGE];
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

/// A pipe connection and its peer. The connection is dropped first, so the peer sees the
/// end of the stream and exits cleanly.
pub struct PipeSession {
    /// The client end.
    pub conn: PipeConnection,
    _peer: BenchPeer,
}

/// Connects to a new peer serving `role` (shared memory when the role starts with `shm-`).
pub fn pipe_session(role: &str) -> PipeSession {
    let name = format!(r"\\.\pipe\{}", bench_name(role));
    let peer = BenchPeer::spawn(role, &name);
    let shared_memory = role.starts_with("shm-");
    let conn = ClientOptions::new()
        .read_mode(PipeMode::Message)
        .shared_memory(shared_memory)
        .open(name.as_str())
        .expect("connect to the peer's pipe");
    assert_eq!(conn.is_shared_memory(), shared_memory);
    PipeSession { conn, _peer: peer }
}

/// The floor: copy `size` bytes into the mapping and bump a counter; busy-wait for the
/// peer to echo the counter (having copied the bytes into the answer buffer); copy the
/// answer out. The case of `procwire bench` (`procwire_bench::cases::atomic_ping_pong`).
pub fn atomic_floor(bencher: Bencher<'_, '_>, size: usize) {
    let mut s = procwire_bench::cases::atomic_ping_pong(size).expect("start the floor");
    bencher.bench_local(|| s.iter());
}

/// The socket pipe: `send`, then `recv_into`.
pub fn socket_pipe(bencher: Bencher<'_, '_>, size: usize) {
    round_trip_into(bencher, "pipe-echo-into", size);
}

/// The shared-memory pipe: `send`, then `recv_into` (one copy each way on each side).
pub fn shm_pipe(bencher: Bencher<'_, '_>, size: usize) {
    round_trip_into(bencher, "shm-echo", size);
}

/// The shared-memory pipe without copies: a loan filled and sent, the answer borrowed in
/// place.
pub fn shm_pipe_zero_copy(bencher: Bencher<'_, '_>, size: usize) {
    let mut s = pipe_session("shm-echo-in-place");
    bencher.bench_local(|| {
        let mut loan = s.conn.loan(size).unwrap();
        loan.fill(7);
        loan.send().unwrap();
        let answer = s.conn.recv_borrowed().unwrap();
        assert_eq!(answer.len(), size);
    });
}

fn round_trip_into(bencher: Bencher<'_, '_>, role: &str, size: usize) {
    let mut s = pipe_session(role);
    let message = vec![7u8; size];
    let mut answer = vec![0u8; size];
    bencher.bench_local(|| {
        s.conn.send(&message).unwrap();
        let part = s.conn.recv_into(&mut answer).unwrap();
        assert!(part.complete && part.len == size);
    });
}
