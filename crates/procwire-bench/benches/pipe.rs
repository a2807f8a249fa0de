//! Message pipes against raw Unix stream sockets, between two processes.
//!
//! Every benchmark talks to a peer process: this same binary, started again with
//! `PROCWIRE_BENCH_ROLE` set (`procwire_testkit::bench`), which serves one connection (an
//! echo server or a sink) and exits when the connection closes. `main` checks the variable
//! first and only runs divan when it is unset.
//!
//! - `round_trip`: 64-byte messages sent to an echo peer and read back.
//! - `throughput`: a batch of 64 KiB or 1 MiB messages (8 MiB in all) sent one way to a
//!   sink, which acknowledges the batch with one byte; the acknowledgement is part of the
//!   time.
//!
//! - `shm_round_trip` (64 B and 4 KiB) and `shm_throughput`: the same over shared-memory
//!   pipes (copying, and zero-copy with loans and borrowed receives), beside the floor of
//!   shared memory (two processes busy-waiting on an atomic in a mapping, the message
//!   copied in and out) and the socket pipe again. The round-trip cases live in
//!   `round_trip_cases/`, shared with the iceoryx2 comparison of `crates/procwire-bench`.
//!
//! The raw baselines use `std::os::unix::net` directly, with the kernel's default buffers,
//! as procwire does; they are `procwire bench`'s cases (`procwire_bench::cases`), whose
//! peers start as `EXE bench-peer ROLE ADDR`. Run with
//! `cargo bench -p procwire-bench --bench pipe`; results are in `docs/performance.md`.
//!
//! Where the two processes run matters more than anything else here (a wake-up on the
//! other CPU costs tens of microseconds). To fix it, run the benchmark under
//! `taskset -c 0` (both on one CPU), or set `PROCWIRE_BENCH_PEER_CPUS=1` and run under
//! `taskset -c 0` (the peer is then started with `taskset -c 1`: one CPU each).

mod round_trip_cases;

use std::process::ExitCode;

use divan::counter::BytesCount;
use divan::Bencher;
use procwire::pipe::PipeConnection;
use procwire::pipe::PipeError;
use procwire_testkit::bench::{bench_peer_role, serve_peer};
use round_trip_cases::{pipe_server, pipe_session};

/// The round-trip message size.
const SMALL: usize = 64;
/// Bytes sent per throughput iteration.
const BATCH_BYTES: usize = 8 << 20;
/// Message sizes of the throughput benchmarks.
const SIZES: &[usize] = &[64 << 10, 1 << 20];

fn main() -> ExitCode {
    if let Some(code) = round_trip_cases::serve_lib_peer() {
        return code;
    }
    match bench_peer_role() {
        Some(role) => serve_peer(&role, peer::serve),
        None => {
            divan::main();
            ExitCode::SUCCESS
        }
    }
}

/// The rings of the shared-memory throughput case with small rings.
const SMALL_RING: usize = 4096;

/// The peer process: what runs when `PROCWIRE_BENCH_ROLE` is set.
mod peer {
    use super::*;

    /// Serves one connection in `role`, at `addr`.
    pub(crate) fn serve(role: &str, addr: &str) -> Result<(), String> {
        if let Some(result) = round_trip_cases::serve(role, addr) {
            return result;
        }
        match role {
            "pipe-sink-recv" => pipe_server(addr, false, pipe_sink_recv),
            "pipe-sink-recv-into" => pipe_server(addr, false, procwire_bench::peer::pipe_sink),
            "shm-sink-recv-into" => pipe_server(addr, true, procwire_bench::peer::pipe_sink),
            "shm-sink-in-place" => pipe_server(addr, true, pipe_sink_in_place),
            "shm-sink-many" => pipe_server(addr, true, pipe_sink_many),
            "shm-sink-recv-into-small-rings" => procwire_bench::peer::shm_pipe_server_with_ring(
                addr,
                SMALL_RING,
                procwire_bench::peer::pipe_sink,
            ),
            _ => Err(format!("unknown role `{role}`")),
        }
    }

    /// Reads every byte of `message` (a sum of its 8-byte words), as a receiver that uses
    /// the message must: a sink that looked only at lengths would leave the bytes in the
    /// sender's cache and measure nothing but the sender's copy.
    fn read_every_byte(message: &[u8]) -> u64 {
        let words = message.chunks_exact(8);
        let rest = words.remainder();
        let sum = words.fold(0u64, |sum, w| {
            sum.wrapping_add(u64::from_ne_bytes(w.try_into().expect("8 bytes")))
        });
        rest.iter()
            .fold(sum, |sum, b| sum.wrapping_add(u64::from(*b)))
    }

    /// Takes each message in place and reads its bytes there; an empty one asks for a
    /// one-byte acknowledgement.
    fn pipe_sink_in_place(conn: &mut PipeConnection) -> Result<(), PipeError> {
        loop {
            let message = conn.recv_borrowed()?;
            let empty = message.is_empty();
            std::hint::black_box(read_every_byte(&message));
            drop(message);
            if empty {
                conn.send(b"k")?;
            }
        }
    }

    /// Takes messages in batches with `recv_many` and reads their bytes in place; an empty
    /// one asks for a one-byte acknowledgement.
    fn pipe_sink_many(conn: &mut PipeConnection) -> Result<(), PipeError> {
        loop {
            let mut asked = false;
            conn.recv_many(usize::MAX, |m| {
                asked |= m.is_empty();
                std::hint::black_box(read_every_byte(m));
            })?;
            if asked {
                conn.send(b"k")?;
            }
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
}

/// 64-byte messages to an echo peer and back: latency of one request and its answer.
#[divan::bench_group(sample_count = 3000, sample_size = 10)]
mod round_trip {
    use super::*;

    /// Raw socket: `write` 64 bytes, `read` 64 bytes (`procwire bench`'s case).
    #[divan::bench]
    fn raw(bencher: Bencher<'_, '_>) {
        let mut s = procwire_bench::cases::socket_echo(SMALL).expect("start the case");
        bencher.bench_local(|| s.iter());
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

    /// procwire: `transact` (`TransactNamedPipe`): the same send and receive in one call,
    /// against `procwire_recv` (issue 12's target: at most 1.05x).
    #[divan::bench]
    fn procwire_transact(bencher: Bencher<'_, '_>) {
        let mut s = pipe_session("pipe-echo");
        let message = [7u8; SMALL];
        bencher.bench_local(|| {
            let answer = s.conn.transact(&message).unwrap();
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
    /// of a 1 MiB buffer (`procwire bench`'s case, 2 MiB a batch).
    #[divan::bench(args = SIZES)]
    fn raw(bencher: Bencher<'_, '_>, size: usize) {
        let mut s = procwire_bench::cases::socket_sink(size).expect("start the case");
        bencher
            .counter(BytesCount::new(s.bytes()))
            .bench_local(|| s.iter());
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

/// Round trips of 64 B and 4 KiB through shared memory, against the floor (an atomic
/// ping-pong in a mapping, the message copied in and out) and the socket pipe, in the same
/// run. The same cases, beside iceoryx2, are `crates/procwire-bench`'s `shm_compare`.
#[divan::bench_group(sample_count = 3000, sample_size = 100)]
mod shm_round_trip {
    use super::round_trip_cases::{self, SIZES};
    use divan::Bencher;

    /// The floor: copy the message into the mapping, bump a counter, busy-wait for the
    /// peer's answer.
    #[divan::bench(args = SIZES)]
    fn atomic_floor(bencher: Bencher<'_, '_>, size: usize) {
        round_trip_cases::atomic_floor(bencher, size);
    }

    /// The socket pipe: `send`, then `recv_into`.
    #[divan::bench(args = SIZES)]
    fn socket_pipe(bencher: Bencher<'_, '_>, size: usize) {
        round_trip_cases::socket_pipe(bencher, size);
    }

    /// The shared-memory pipe: `send`, then `recv_into` (one copy each way).
    #[divan::bench(args = SIZES)]
    fn shm_pipe(bencher: Bencher<'_, '_>, size: usize) {
        round_trip_cases::shm_pipe(bencher, size);
    }

    /// The shared-memory pipe without copies: a loan sent, the answer borrowed in place.
    #[divan::bench(args = SIZES)]
    fn shm_pipe_zero_copy(bencher: Bencher<'_, '_>, size: usize) {
        round_trip_cases::shm_pipe_zero_copy(bencher, size);
    }
}

/// One-way bandwidth through shared memory: 8 MiB of messages of `size` bytes, then one
/// acknowledgement.
#[divan::bench_group(sample_count = 30, sample_size = 1)]
mod shm_throughput {
    use super::*;

    const SHM_SIZES: &[usize] = &[64, 4 << 10, 64 << 10, 1 << 20];

    /// How the benchmark hands its messages to the pipe.
    #[derive(Clone, Copy, PartialEq)]
    enum Way {
        /// `send`, one message at a time.
        Send,
        /// `loan`, filled and sent.
        Loan,
        /// `send_many`, [`MANY`] messages at a time.
        Many,
    }

    /// Messages per `send_many`.
    const MANY: usize = 256;

    fn batch(bencher: Bencher<'_, '_>, size: usize, sink: &str, way: Way) {
        let mut s = pipe_session(sink);
        let payload = vec![7u8; size];
        let count = (BATCH_BYTES / size).max(1);
        let many = vec![payload.as_slice(); MANY.min(count)];
        let mut ack = [0u8; 1];
        bencher
            .counter(BytesCount::new(count * size))
            .bench_local(|| {
                let mut sent = 0;
                while sent < count {
                    match way {
                        Way::Send => s.conn.send(&payload).unwrap(),
                        Way::Loan => {
                            let mut loan = s.conn.loan(size).unwrap();
                            loan.copy_from_slice(&payload);
                            loan.send().unwrap();
                        }
                        Way::Many => {
                            let n = many.len().min(count - sent);
                            s.conn.send_many(&many[..n]).unwrap();
                            sent += n - 1;
                        }
                    }
                    sent += 1;
                }
                s.conn.send(&[]).unwrap();
                let part = s.conn.recv_into(&mut ack).unwrap();
                assert!(part.complete && part.len == 1);
            });
    }

    /// `send` (one copy in); the sink's `recv_into` copies out.
    #[divan::bench(args = SHM_SIZES)]
    fn copy(bencher: Bencher<'_, '_>, size: usize) {
        batch(bencher, size, "shm-sink-recv-into", Way::Send);
    }

    /// Written into loans; the sink reads each one's bytes in place (no copy out).
    #[divan::bench(args = SHM_SIZES)]
    fn zero_copy(bencher: Bencher<'_, '_>, size: usize) {
        batch(bencher, size, "shm-sink-in-place", Way::Loan);
    }

    /// `send_many` of 256 messages at a time (one copy in); the sink takes them with
    /// `recv_many` and reads their bytes in place.
    #[divan::bench(args = SHM_SIZES)]
    fn batched(bencher: Bencher<'_, '_>, size: usize) {
        batch(bencher, size, "shm-sink-many", Way::Many);
    }

    /// `send` as [`copy`] does, through rings of [`SMALL_RING`] bytes (the size that gives
    /// the shortest small-message round trip): long messages pass in many records, each
    /// side waiting for the other's room in turn.
    #[divan::bench(args = SHM_SIZES)]
    fn copy_small_rings(bencher: Bencher<'_, '_>, size: usize) {
        batch(bencher, size, "shm-sink-recv-into-small-rings", Way::Send);
    }

    /// The socket pipe with the same sink, for the ratio.
    #[divan::bench(args = SHM_SIZES)]
    fn socket_pipe(bencher: Bencher<'_, '_>, size: usize) {
        batch(bencher, size, "pipe-sink-recv-into", Way::Send);
    }
}
