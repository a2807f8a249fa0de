//! Remote calls against the raw pipe round trip and against tarpc, between two processes.
//!
//! Every benchmark talks to a peer process: this same binary, started again with
//! `PROCWIRE_BENCH_ROLE` set (as in the pipe benchmark), or as `remoting bench-peer ROLE
//! ADDR` for the remoting server, which is `procwire bench`'s (`procwire_bench::cases`,
//! one implementation; `remoting_pipe_shm` is its case). Each iteration is one
//! round trip of a 64-byte payload:
//!
//! - `raw_pipe_socket`, `raw_pipe_shm`: a procwire message pipe (tokio API), `send` 64 B
//!   and `recv` the echo, on the socket and through shared memory — the transports that
//!   remoting's pipe channel uses, with nothing on top.
//! - `remoting_pipe_shm`, `remoting_pipe_socket`, `remoting_tcp`: `echo(data: Vec<u8>) ->
//!   Vec<u8>` through a `#[remote]` client on the pipe channel (shared memory, and a pipe
//!   that does not offer it) and the tcp channel (binary formatter).
//! - `tarpc_tcp`: the same method through tarpc 0.38 (bincode over TCP loopback).
//! - `*_batch`: 64 calls in flight on one connection; `*_4x32`: 4 connections with 32
//!   calls in flight on each.
//!
//! Run with `cargo bench -p procwire-bench --bench remoting`; results are in
//! `docs/performance.md`. Pin with `taskset -c 0` for the one-CPU view.

use std::process::ExitCode;

use divan::Bencher;
use futures::StreamExt;
use procwire::pipe::{ClientOptions, PipeOptions};
use procwire::wire::PipeMode;
use procwire_bench::cases::{EchoClient, RemotingChannel as Channel, RemotingPeer};
use procwire_testkit::bench::{
    bench_name, bench_peer_role, peer_ready_with, serve_peer, BenchPeer,
};
use tarpc::server::Channel as _;

const SMALL: usize = 64;

#[tarpc::service]
trait TarpcEcho {
    async fn echo(data: Vec<u8>) -> Vec<u8>;
}

#[derive(Clone)]
struct TarpcImpl;

impl TarpcEcho for TarpcImpl {
    async fn echo(self, _: tarpc::context::Context, data: Vec<u8>) -> Vec<u8> {
        data
    }
}

/// tarpc's bincode transport over a TCP stream, as `tarpc::serde_transport::tcp` builds it.
fn tarpc_transport<Item, SinkItem>(
    stream: tokio::net::TcpStream,
) -> tarpc::serde_transport::Transport<
    tokio::net::TcpStream,
    Item,
    SinkItem,
    tarpc::tokio_serde::formats::Bincode<Item, SinkItem>,
>
where
    Item: for<'de> serde::Deserialize<'de>,
    SinkItem: serde::Serialize,
{
    let framed = tokio_util::codec::Framed::new(
        stream,
        tokio_util::codec::LengthDelimitedCodec::builder()
            .max_frame_length(usize::MAX)
            .new_codec(),
    );
    tarpc::serde_transport::new(framed, tarpc::tokio_serde::formats::Bincode::default())
}

fn main() -> ExitCode {
    if let Some((role, addr)) = procwire_bench::peer::peer_args() {
        return match procwire_bench::peer::serve(&role, &addr) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench peer {role}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match bench_peer_role() {
        Some(role) => serve_peer(&role, peer),
        None => {
            divan::main();
            ExitCode::SUCCESS
        }
    }
}

/// The peer process: serves `addr` (a pipe name) as `role`, says `ready` with the
/// addresses it chose, and runs until the benchmark closes its standard input.
fn peer(role: &str, addr: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        match role {
            "pipe-echo" => {
                let server = PipeOptions::new()
                    .mode(PipeMode::Message)
                    .shared_memory(true)
                    .create_async(addr)
                    .map_err(|e| e.to_string())?;
                peer_ready_with(addr)?;
                loop {
                    let mut conn = server.accept().await.expect("accept");
                    tokio::spawn(async move {
                        while let Ok(m) = conn.recv().await {
                            if conn.send(&m).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            }
            "tarpc" => {
                // TCP_NODELAY on both ends, as procwire does (tarpc's own tcp helpers
                // leave Nagle on, which costs it ~40 ms per batch of pipelined calls).
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                peer_ready_with(&listener.local_addr().expect("addr").to_string())?;
                loop {
                    let (stream, _) = listener.accept().await.expect("accept");
                    stream.set_nodelay(true).expect("nodelay");
                    let transport = tarpc_transport(stream);
                    let channel = tarpc::server::BaseChannel::with_defaults(transport);
                    tokio::spawn(channel.execute(TarpcImpl.serve()).for_each(|f| async move {
                        tokio::spawn(f);
                    }));
                }
            }
            other => Err(format!("unknown role {other}")),
        }
    })
}

/// A peer process serving `role`, with a pipe name of its own.
fn start(role: &str) -> BenchPeer {
    BenchPeer::spawn(role, &bench_name("remoting"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn raw_pipe(bencher: Bencher<'_, '_>, shared_memory: bool) {
    let peer = start("pipe-echo");
    let rt = runtime();
    let mut pipe = rt
        .block_on(
            ClientOptions::new()
                .read_mode(PipeMode::Message)
                .shared_memory(shared_memory)
                .open_async(peer.info()),
        )
        .expect("open");
    assert_eq!(pipe.is_shared_memory(), shared_memory);
    let data = vec![7u8; SMALL];
    bencher.bench_local(|| {
        rt.block_on(async {
            pipe.send(&data).await.unwrap();
            pipe.recv().await.unwrap()
        })
    });
}

#[divan::bench]
fn raw_pipe_socket(bencher: Bencher<'_, '_>) {
    raw_pipe(bencher, false);
}

#[divan::bench]
fn raw_pipe_shm(bencher: Bencher<'_, '_>) {
    raw_pipe(bencher, true);
}

/// A remoting peer (`procwire bench`'s, `procwire_bench::cases::RemotingPeer`) and
/// `connections` clients of its `channel`.
fn remoting_clients(
    rt: &tokio::runtime::Runtime,
    channel: Channel,
    connections: usize,
) -> (RemotingPeer, Vec<EchoClient>) {
    let peer = RemotingPeer::spawn().expect("start the remoting peer");
    let clients = (0..connections)
        .map(|_| peer.client(rt, channel).expect("connect"))
        .collect();
    (peer, clients)
}

fn remoting(bencher: Bencher<'_, '_>, channel: Channel) {
    let rt = runtime();
    let (_peer, clients) = remoting_clients(&rt, channel, 1);
    let data = vec![7u8; SMALL];
    bencher.bench_local(|| rt.block_on(clients[0].echo(data.clone())).unwrap());
}

/// `procwire bench`'s remoting case (`procwire_bench::cases::remoting_call`).
#[divan::bench]
fn remoting_pipe_shm(bencher: Bencher<'_, '_>) {
    let mut s = procwire_bench::cases::remoting_call(SMALL).expect("start the case");
    bencher.bench_local(|| s.iter());
}

#[divan::bench]
fn remoting_pipe_socket(bencher: Bencher<'_, '_>) {
    remoting(bencher, Channel::PipeSocket);
}

#[divan::bench]
fn remoting_tcp(bencher: Bencher<'_, '_>) {
    remoting(bencher, Channel::Tcp);
}

/// A tarpc peer and `connections` clients of it.
fn tarpc_clients(
    rt: &tokio::runtime::Runtime,
    connections: usize,
) -> (BenchPeer, Vec<TarpcEchoClient>) {
    let peer = start("tarpc");
    let clients = (0..connections)
        .map(|_| {
            rt.block_on(async {
                let stream = tokio::net::TcpStream::connect(peer.info())
                    .await
                    .expect("tarpc connect");
                stream.set_nodelay(true).expect("nodelay");
                let transport = tarpc_transport(stream);
                TarpcEchoClient::new(tarpc::client::Config::default(), transport).spawn()
            })
        })
        .collect();
    (peer, clients)
}

#[divan::bench]
fn tarpc_tcp(bencher: Bencher<'_, '_>) {
    let rt = runtime();
    let (_peer, clients) = tarpc_clients(&rt, 1);
    let data = vec![7u8; SMALL];
    bencher.bench_local(|| {
        rt.block_on(clients[0].echo(tarpc::context::current(), data.clone()))
            .unwrap()
    });
}

/// Calls in flight at once in the `*_batch` benchmarks.
const BATCH: usize = 64;

/// `connections` x `in_flight` calls at once per iteration: calls per second with
/// pipelining.
fn remoting_many(bencher: Bencher<'_, '_>, channel: Channel, connections: usize, in_flight: usize) {
    let rt = runtime();
    let (_peer, clients) = remoting_clients(&rt, channel, connections);
    let data = vec![7u8; SMALL];
    bencher
        .counter(divan::counter::ItemsCount::new(connections * in_flight))
        .bench_local(|| {
            rt.block_on(futures::future::join_all(clients.iter().flat_map(
                |client| (0..in_flight).map(|_| client.echo(data.clone())),
            )))
        });
}

/// 64 calls in flight on one connection per iteration.
#[divan::bench]
fn remoting_tcp_batch(bencher: Bencher<'_, '_>) {
    remoting_many(bencher, Channel::Tcp, 1, BATCH);
}

/// 4 connections with 32 calls in flight on each.
#[divan::bench]
fn remoting_tcp_4x32(bencher: Bencher<'_, '_>) {
    remoting_many(bencher, Channel::Tcp, 4, 32);
}

/// As `remoting_tcp_batch`, on the shared-memory pipe channel.
#[divan::bench]
fn remoting_pipe_shm_batch(bencher: Bencher<'_, '_>) {
    remoting_many(bencher, Channel::PipeShm, 1, BATCH);
}

/// As [`remoting_many`], through tarpc.
fn tarpc_many(bencher: Bencher<'_, '_>, connections: usize, in_flight: usize) {
    let rt = runtime();
    let (_peer, clients) = tarpc_clients(&rt, connections);
    let data = vec![7u8; SMALL];
    bencher
        .counter(divan::counter::ItemsCount::new(connections * in_flight))
        .bench_local(|| {
            rt.block_on(futures::future::join_all(clients.iter().flat_map(
                |client| {
                    (0..in_flight).map(|_| client.echo(tarpc::context::current(), data.clone()))
                },
            )))
        });
}

/// As `remoting_tcp_batch`, through tarpc.
#[divan::bench]
fn tarpc_tcp_batch(bencher: Bencher<'_, '_>) {
    tarpc_many(bencher, 1, BATCH);
}

/// As `remoting_tcp_4x32`, through tarpc.
#[divan::bench]
fn tarpc_tcp_4x32(bencher: Bencher<'_, '_>) {
    tarpc_many(bencher, 4, 32);
}
