//! Remote calls on NATS against a raw async-nats request/reply of the same payload, in the
//! same run, through the same nats-server.
//!
//! The benchmark starts a nats-server (`procwire_testkit::nats::NatsServer`, which needs
//! `nats-server` installed) and a peer process (this binary again, role `nats-peer`) that
//! answers both on its own NATS connection:
//!
//! - `raw_request`: an async-nats request of 64 bytes on the subject `bench.raw`, answered
//!   by a plain async-nats subscriber in a queue group that publishes the payload back.
//! - `remoting_call`: `echo(data: Vec<u8>) -> Vec<u8>` of 64 bytes through a `#[remote]`
//!   client on `nats://…/Bench/Echo` (procwire-nats: the request frame on
//!   `procwire.Bench.Echo`, answered by a `RemotingServer` in the queue group `Bench`).
//!
//! - `*_batch`: 64 of them in flight at once (calls per second: divan's item rate).
//!
//! Run with `cargo bench -p procwire-bench --bench nats`; pin with
//! `PROCWIRE_BENCH_PEER_CPUS=1 taskset -c 0` for one process on each CPU.

use std::process::ExitCode;

use divan::Bencher;
use futures::StreamExt;
use procwire_bench::cases::{EchoClient, EchoServer};
use procwire_nats::{remoting, NatsOptions};
use procwire_remoting::{RegistryBuilder, RemotingServer};
use procwire_testkit::bench::{bench_peer_role, peer_ready, serve_peer, BenchPeer};
use procwire_testkit::nats::NatsServer;

const SMALL: usize = 64;

/// The raw responder's subject.
const RAW_SUBJECT: &str = "bench.raw";

struct EchoImpl;

impl procwire_bench::cases::Echo for EchoImpl {
    async fn echo(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }
}

/// The peer: the raw responder and the remoting server, on the NATS server at `url`.
fn peer(role: &str, url: &str) -> Result<(), String> {
    assert_eq!(role, "nats-peer");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let raw = async_nats::connect(url).await.map_err(|e| e.to_string())?;
        let mut requests = raw
            .queue_subscribe(RAW_SUBJECT, "bench".into())
            .await
            .map_err(|e| e.to_string())?;
        let responder = raw.clone();
        tokio::spawn(async move {
            while let Some(m) = requests.next().await {
                if let Some(reply) = m.reply {
                    let _ = responder.publish(reply, m.payload).await;
                }
            }
        });
        raw.flush().await.map_err(|e| e.to_string())?;
        let registry = RegistryBuilder::new("Bench")
            .singleton("Echo", || EchoServer::new(EchoImpl))
            .build();
        let server = RemotingServer::new(registry);
        let _listener = remoting::serve(&server, url, &NatsOptions::new())
            .await
            .map_err(|e| e.to_string())?;
        peer_ready()?;
        std::future::pending::<()>().await;
        Ok(())
    })
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A nats-server and the peer serving on it.
fn setup() -> (NatsServer, BenchPeer) {
    let nats = NatsServer::start();
    let peer = BenchPeer::spawn("nats-peer", &nats.url());
    (nats, peer)
}

#[divan::bench]
fn raw_request(bencher: Bencher<'_, '_>) {
    let (nats, _peer) = setup();
    let rt = runtime();
    let client = rt
        .block_on(async_nats::connect(nats.url()))
        .expect("connect");
    let data = bytes::Bytes::from(vec![7u8; SMALL]);
    bencher.bench_local(|| {
        rt.block_on(client.request(RAW_SUBJECT, data.clone()))
            .expect("request")
    });
}

#[divan::bench]
fn remoting_call(bencher: Bencher<'_, '_>) {
    let (nats, _peer) = setup();
    let rt = runtime();
    let url = format!("{}/Bench/Echo", nats.url());
    let client = EchoClient::new(
        rt.block_on(remoting::connect(&url, &NatsOptions::new()))
            .expect("connect"),
    );
    let data = vec![7u8; SMALL];
    bencher.bench_local(|| rt.block_on(client.echo(data.clone())).expect("call"));
}

/// Requests in flight at once in the `*_batch` benchmarks.
const BATCH: usize = 64;

#[divan::bench]
fn raw_request_batch(bencher: Bencher<'_, '_>) {
    let (nats, _peer) = setup();
    let rt = runtime();
    let client = rt
        .block_on(async_nats::connect(nats.url()))
        .expect("connect");
    let data = bytes::Bytes::from(vec![7u8; SMALL]);
    bencher
        .counter(divan::counter::ItemsCount::new(BATCH))
        .bench_local(|| {
            rt.block_on(futures::future::join_all(
                (0..BATCH).map(|_| client.request(RAW_SUBJECT, data.clone())),
            ))
        });
}

#[divan::bench]
fn remoting_call_batch(bencher: Bencher<'_, '_>) {
    let (nats, _peer) = setup();
    let rt = runtime();
    let url = format!("{}/Bench/Echo", nats.url());
    let client = EchoClient::new(
        rt.block_on(remoting::connect(&url, &NatsOptions::new()))
            .expect("connect"),
    );
    let data = vec![7u8; SMALL];
    bencher
        .counter(divan::counter::ItemsCount::new(BATCH))
        .bench_local(|| {
            rt.block_on(futures::future::join_all(
                (0..BATCH).map(|_| client.echo(data.clone())),
            ))
        });
}
