//! Remote calls against the raw pipe round trip and against tarpc, between two processes.
//!
//! Every benchmark talks to a peer process: this same binary, started again with
//! `PROCWIRE_BENCH_ROLE` set (as in procwire's pipe benchmark). Each iteration is one
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
//! Run with `cargo bench -p procwire-remoting --bench remoting`; results are in
//! `docs/performance.md`. Pin with `taskset -c 0` for the one-CPU view.

use std::process::ExitCode;

use divan::Bencher;
use futures::StreamExt;
use procwire::pipe::{ClientOptions, PipeOptions};
use procwire::wire::PipeMode;
use procwire_remoting::{remote, Proxy, RegistryBuilder, RemotingServer, TcpChannel};
use procwire_testkit::bench::{
    bench_name, bench_peer_role, peer_ready_with, serve_peer, BenchPeer,
};
use tarpc::server::Channel as _;

const SMALL: usize = 64;

#[remote]
trait Echo {
    async fn echo(&self, data: Vec<u8>) -> Vec<u8>;
}

struct EchoImpl;

impl Echo for EchoImpl {
    async fn echo(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }
}

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
            "remoting" => {
                let registry = RegistryBuilder::new("Bench")
                    .singleton("Echo", || EchoServer::new(EchoImpl))
                    .build();
                let server = RemotingServer::new(registry);
                let tcp = server.listen_tcp(TcpChannel::loopback(0)).expect("tcp");
                let pipe = server
                    .listen_pipe(procwire_remoting::PipeChannel::new(addr))
                    .expect("pipe");
                let socket_only = procwire_remoting::PipeChannel::new(format!("{addr}-socket"))
                    .shared_memory(false);
                let socket_pipe = server.listen_pipe(socket_only).expect("pipe");
                peer_ready_with(&format!(
                    "{} {} {}",
                    tcp.local(),
                    pipe.local(),
                    socket_pipe.local()
                ))?;
                std::future::pending::<Result<(), String>>().await
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

/// Which of the remoting peer's channels a benchmark calls through.
#[derive(Clone, Copy)]
enum Channel {
    Tcp = 0,
    PipeShm = 1,
    PipeSocket = 2,
}

/// A remoting peer and `connections` clients of its `channel`.
fn remoting_clients(
    rt: &tokio::runtime::Runtime,
    channel: Channel,
    connections: usize,
) -> (BenchPeer, Vec<EchoClient>) {
    let peer = start("remoting");
    let base = peer
        .info()
        .split(' ')
        .nth(channel as usize)
        .expect("three addresses");
    let clients = (0..connections)
        .map(|_| {
            rt.block_on(async {
                let proxy = Proxy::connect(&format!("{base}/Bench/Echo")).await;
                EchoClient::new(proxy.expect("connect"))
            })
        })
        .collect();
    (peer, clients)
}

fn remoting(bencher: Bencher<'_, '_>, channel: Channel) {
    let rt = runtime();
    let (_peer, clients) = remoting_clients(&rt, channel, 1);
    let data = vec![7u8; SMALL];
    bencher.bench_local(|| rt.block_on(clients[0].echo(data.clone())).unwrap());
}

#[divan::bench]
fn remoting_pipe_shm(bencher: Bencher<'_, '_>) {
    remoting(bencher, Channel::PipeShm);
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
