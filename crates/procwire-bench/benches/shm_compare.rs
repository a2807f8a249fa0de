//! Round trips through shared memory between two processes, in one run: the floor (an
//! atomic ping-pong in a mapping, the message copied in and out), iceoryx2, the procwire
//! socket pipe, and the procwire shared-memory pipe copying and zero-copy; 64 B and 4 KiB.
//!
//! iceoryx2 has no request/response of its own in this comparison: as in its own
//! benchmarks, a request/response is two publish/subscribe services, `ping` and `pong`,
//! with a `[u8; N]` payload; the benchmark publishes on `ping` and busy-waits on `pong`,
//! the peer busy-waits on `ping` and echoes each payload on `pong` (no WaitSet, no event:
//! nobody sleeps in the kernel). The floor and iceoryx2 wait with the same
//! [`spin_until`]: spinning, then yielding the CPU between polls, so that they also run
//! when both processes share one CPU.
//!
//! The procwire cases and the peer harness are those of the `pipe` benchmark beside this
//! one (`benches/round_trip_cases`, `procwire_testkit::bench`; the floor is `procwire
//! bench`'s own case, `procwire_bench::cases::atomic_ping_pong`): every peer is
//! this binary started again in a role. Pinning, as LIMITS.md asks:
//!
//! ```text
//! cargo bench -p procwire-bench --features iceoryx2 --bench shm_compare --no-run
//! PROCWIRE_BENCH_PEER_CPUS=1 taskset -c 0 BENCH --bench   # cross-core: one process per CPU
//! taskset -c 0 BENCH --bench                              # both on CPU 0
//! ```
//!
//! With `PROCWIRE_BENCH_RING_SIZES=4096,1048576` (ring sizes in bytes) the binary runs no
//! benchmark but the comparison of [`ring_sizes`]: the 64 B round trip of the floor and of
//! a shared-memory pipe per ring size, in blocks taken in turns.
//!
//! Results are in `docs/performance.md`.

mod round_trip_cases;

use std::process::ExitCode;

use divan::Bencher;
use procwire_testkit::bench::{bench_name, bench_peer_role, serve_peer, spin_until};
use round_trip_cases::SIZES;

fn main() -> ExitCode {
    if let Some(code) = round_trip_cases::serve_lib_peer() {
        return code;
    }
    match bench_peer_role() {
        Some(role) => serve_peer(&role, serve),
        None => match std::env::var(RING_SIZES_VAR) {
            Ok(sizes) => ring_sizes::compare(&sizes),
            Err(_) => {
                divan::main();
                ExitCode::SUCCESS
            }
        },
    }
}

/// The variable that asks for the ring-size comparison instead of the benchmarks.
const RING_SIZES_VAR: &str = "PROCWIRE_BENCH_RING_SIZES";

/// The 64 B round trip of shared-memory pipes with rings of several sizes, each against
/// the floor measured just before it: one session per ring size and one of the floor, all
/// alive at once, run in blocks of 5,000 round trips, in turns (the floor's block, then
/// each pipe's, their order rotating from one round to the next), for 300 rounds. A
/// host whose speed changes from one second to the next then changes both sides of each
/// ratio alike.
mod ring_sizes {
    use std::process::ExitCode;
    use std::time::Instant;

    use super::round_trip_cases::{pipe_session, PipeSession};

    const BLOCK: u32 = 5_000;
    const ROUNDS: usize = 300;

    /// Runs the comparison for the comma-separated ring sizes in `sizes`.
    pub fn compare(sizes: &str) -> ExitCode {
        let Ok(rings) = sizes
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<usize>, _>>()
        else {
            eprintln!(
                "{}: ring sizes in bytes, comma-separated",
                super::RING_SIZES_VAR
            );
            return ExitCode::FAILURE;
        };
        let mut floor = procwire_bench::cases::atomic_ping_pong(64).expect("start the floor");
        let mut pipes: Vec<PipeSession> = rings
            .iter()
            .map(|ring| pipe_session(&format!("shm-echo-ring-{ring}")))
            .collect();
        let (message, mut answer) = (vec![7u8; 64], vec![0u8; 64]);
        let mut floor_ns = Vec::with_capacity(ROUNDS);
        let mut pipe_ns = vec![Vec::with_capacity(ROUNDS); pipes.len()];
        for round in 0..ROUNDS {
            let start = Instant::now();
            for _ in 0..BLOCK {
                floor.iter();
            }
            floor_ns.push(start.elapsed().as_nanos() as f64 / f64::from(BLOCK));
            for k in 0..pipes.len() {
                let i = (k + round) % pipes.len();
                let conn = &mut pipes[i].conn;
                let start = Instant::now();
                for _ in 0..BLOCK {
                    conn.send(&message).expect("send");
                    let part = conn.recv_into(&mut answer).expect("receive");
                    assert!(part.complete && part.len == message.len());
                }
                pipe_ns[i].push(start.elapsed().as_nanos() as f64 / f64::from(BLOCK));
            }
        }
        println!(
            "floor: {:.1} ns (median of {ROUNDS} blocks)",
            median(floor_ns.clone())
        );
        for (ring, ns) in rings.iter().zip(&pipe_ns) {
            let ratios = ns.iter().zip(&floor_ns).map(|(p, f)| p / f).collect();
            println!(
                "ring of {ring} bytes: {:.1} ns, {:.3}x the floor (medians)",
                median(ns.clone()),
                median(ratios)
            );
        }
        ExitCode::SUCCESS
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }
}

/// The peer: the procwire roles, and the iceoryx2 echo.
fn serve(role: &str, addr: &str) -> Result<(), String> {
    if let Some(result) = round_trip_cases::serve(role, addr) {
        return result;
    }
    match role {
        "iceoryx2-echo-64" => ice::echo::<64>(addr),
        "iceoryx2-echo-4096" => ice::echo::<4096>(addr),
        _ => Err(format!("unknown role `{role}`")),
    }
}

/// iceoryx2's side: two publish/subscribe services make one request/response.
mod ice {
    use super::*;
    use iceoryx2::port::publisher::Publisher;
    use iceoryx2::port::subscriber::Subscriber;
    use iceoryx2::prelude::*;

    /// What a message starts with to tell the echo peer to stop.
    const STOP: u8 = 0;
    /// What every benchmark message is filled with.
    const FILL: u8 = 7;

    /// One end: a node, a publisher on one service and a subscriber on the other.
    pub(crate) struct Ports<const N: usize> {
        publisher: Publisher<ipc::Service, [u8; N], ()>,
        subscriber: Subscriber<ipc::Service, [u8; N], ()>,
        // Dropped last: the ports belong to it.
        _node: Node<ipc::Service>,
    }

    impl<const N: usize> Ports<N> {
        /// Opens (or creates) the services `{prefix}/ping` and `{prefix}/pong`, and publishes
        /// on `publish`'s, subscribes to the other's.
        fn open(prefix: &str, publish: &str, subscribe: &str) -> Result<Ports<N>, String> {
            let err = |e: &dyn std::fmt::Debug| format!("iceoryx2: {e:?}");
            let node = NodeBuilder::new()
                .create::<ipc::Service>()
                .map_err(|e| err(&e))?;
            let service = |which: &str| {
                let name = ServiceName::new(&format!("{prefix}/{which}")).map_err(|e| err(&e))?;
                node.service_builder(&name)
                    .publish_subscribe::<[u8; N]>()
                    .max_publishers(1)
                    .max_subscribers(1)
                    .history_size(0)
                    .open_or_create()
                    .map_err(|e| err(&e))
            };
            let (outgoing, incoming) = (service(publish)?, service(subscribe)?);
            let publisher = outgoing.publisher_builder().create().map_err(|e| err(&e))?;
            let subscriber = incoming
                .subscriber_builder()
                .create()
                .map_err(|e| err(&e))?;
            Ok(Ports {
                publisher,
                subscriber,
                _node: node,
            })
        }

        /// Loans a sample, writes `payload` into it and publishes it.
        fn send(&self, payload: [u8; N]) -> Result<(), String> {
            let sample = self
                .publisher
                .loan_uninit()
                .map_err(|e| format!("iceoryx2 loan: {e:?}"))?;
            sample
                .write_payload(payload)
                .send()
                .map(drop)
                .map_err(|e| format!("iceoryx2 send: {e:?}"))
        }
    }

    /// The echo peer: takes each `ping` sample, publishes a copy of it on `pong`; stops at
    /// a message that starts with [`STOP`].
    pub(crate) fn echo<const N: usize>(prefix: &str) -> Result<(), String> {
        set_log_level(LogLevel::Error);
        let ports = Ports::<N>::open(prefix, "pong", "ping")?;
        procwire_testkit::bench::peer_ready()?;
        loop {
            let request = spin_until(|| ports.subscriber.receive().transpose())
                .map_err(|e| format!("iceoryx2 receive: {e:?}"))?;
            if request.payload()[0] == STOP {
                return Ok(());
            }
            ports.send(*request.payload())?;
        }
    }

    /// The benchmark's end and its echo peer. Dropping it stops the peer.
    pub(crate) struct Session<const N: usize> {
        ports: Ports<N>,
        _peer: procwire_testkit::bench::BenchPeer,
    }

    impl<const N: usize> Session<N> {
        pub(crate) fn new() -> Session<N> {
            set_log_level(LogLevel::Error);
            let prefix = bench_name("iceoryx2");
            // Our subscriber exists before the peer's publisher, and the peer's before ours
            // publishes: no sample is sent before its subscriber is there.
            let ports = Ports::<N>::open(&prefix, "ping", "pong").expect("iceoryx2 ports");
            let peer =
                procwire_testkit::bench::BenchPeer::spawn(&format!("iceoryx2-echo-{N}"), &prefix);
            Session { ports, _peer: peer }
        }

        /// One round trip: `message` out on `ping`, busy-wait for its echo on `pong`.
        pub(crate) fn round_trip(&self, message: [u8; N]) {
            self.ports.send(message).unwrap();
            let answer = spin_until(|| self.ports.subscriber.receive().unwrap());
            assert_eq!(answer.payload()[N - 1], FILL);
        }
    }

    impl<const N: usize> Drop for Session<N> {
        fn drop(&mut self) {
            let _ = self.ports.send([STOP; N]);
        }
    }

    /// A round trip of `N` bytes: loan, write, publish; busy-wait for the echo, read in
    /// place.
    pub(crate) fn round_trip<const N: usize>(bencher: Bencher<'_, '_>) {
        let session = Session::<N>::new();
        let message = [FILL; N];
        bencher.bench_local(|| session.round_trip(message));
    }
}

/// Round trips of 64 B and 4 KiB through shared memory, every case in the same run.
#[divan::bench_group(sample_count = 3000, sample_size = 100)]
mod shm_round_trip {
    use super::*;

    /// The floor: copy the message into a mapping, bump a counter, busy-wait for the
    /// peer's answer.
    #[divan::bench(args = SIZES)]
    fn atomic_floor(bencher: Bencher<'_, '_>, size: usize) {
        round_trip_cases::atomic_floor(bencher, size);
    }

    /// iceoryx2 0.10: publish on `ping` (loan, write), busy-wait on `pong` for the echo.
    #[divan::bench(args = SIZES)]
    fn iceoryx2(bencher: Bencher<'_, '_>, size: usize) {
        match size {
            64 => ice::round_trip::<64>(bencher),
            4096 => ice::round_trip::<4096>(bencher),
            _ => unreachable!("no iceoryx2 payload type of {size} bytes"),
        }
    }

    /// The procwire socket pipe: `send`, then `recv_into`.
    #[divan::bench(args = SIZES)]
    fn socket_pipe(bencher: Bencher<'_, '_>, size: usize) {
        round_trip_cases::socket_pipe(bencher, size);
    }

    /// The procwire shared-memory pipe: `send`, then `recv_into` (one copy each way).
    #[divan::bench(args = SIZES)]
    fn shm_pipe(bencher: Bencher<'_, '_>, size: usize) {
        round_trip_cases::shm_pipe(bencher, size);
    }

    /// The procwire shared-memory pipe without copies: a loan sent, the answer borrowed
    /// in place.
    #[divan::bench(args = SIZES)]
    fn shm_pipe_zero_copy(bencher: Bencher<'_, '_>, size: usize) {
        round_trip_cases::shm_pipe_zero_copy(bencher, size);
    }
}
