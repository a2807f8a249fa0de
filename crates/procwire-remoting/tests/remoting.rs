//! In-process tests of the server, the client and the macro, on the memory, tcp and pipe
//! transports. (Tests with separate processes are in procwire-cli's tests/remoting.rs.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use procwire_remoting::transport::MemoryTransport;
use procwire_remoting::{
    remote, Connection, Format, Lease, PipeChannel, Proxy, RegistryBuilder, RemoteError,
    RemoteErrorKind, RemotingError, RemotingServer, TcpChannel,
};

#[remote]
trait Counter {
    async fn add(&self, n: u64) -> u64;
    async fn name(&self) -> String;
    async fn sleep_ms(&self, ms: u64) -> u64;
    async fn fail(&self, message: String) -> Result<u32, RemoteError>;
    async fn boom(&self);
    async fn caller_pid(&self) -> Option<u32>;
}

struct Obj {
    name: String,
    count: AtomicU64,
    log: Mutex<Vec<u64>>,
}

impl Obj {
    fn new(name: &str) -> Obj {
        Obj {
            name: name.to_owned(),
            count: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        }
    }
}

impl Counter for Obj {
    async fn add(&self, n: u64) -> u64 {
        self.log.lock().unwrap().push(n);
        self.count.fetch_add(n, Ordering::SeqCst) + n
    }
    async fn name(&self) -> String {
        self.name.clone()
    }
    async fn sleep_ms(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
    async fn fail(&self, message: String) -> Result<u32, RemoteError> {
        if message.is_empty() {
            Ok(7)
        } else {
            Err(RemoteError::application(message))
        }
    }
    async fn boom(&self) {
        panic!("boom");
    }
    async fn caller_pid(&self) -> Option<u32> {
        procwire_remoting::CallContext::current()
            .and_then(|c| c.peer.credentials)
            .map(|c| c.pid)
    }
}

fn server(lease: Lease) -> RemotingServer {
    let registry = RegistryBuilder::new("App")
        .single_call("Single", || CounterServer::new(Obj::new("single")))
        .singleton("Shared", || CounterServer::new(Obj::new("shared")))
        .client_activated("Owned", lease, |(name,): (String,)| {
            Ok(CounterServer::new(Obj::new(&name)))
        })
        .build();
    RemotingServer::new(registry)
}

fn memory_client(server: &RemotingServer) -> Connection {
    let (a, b) = MemoryTransport::pair();
    let s = server.clone();
    tokio::spawn(async move { s.serve_connection(b).await });
    Connection::over(a, "memory://test".into(), 1 << 20)
}

fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "rt-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modes_over_memory() {
    let s = server(Lease::default());
    let conn = memory_client(&s);
    let single = CounterClient::new(conn.proxy("App/Single"));
    assert_eq!(single.add(5).await.unwrap(), 5);
    assert_eq!(
        single.add(5).await.unwrap(),
        5,
        "SingleCall state never survives"
    );
    let shared = CounterClient::new(conn.proxy("App/Shared"));
    assert_eq!(shared.add(5).await.unwrap(), 5);
    assert_eq!(
        shared.add(5).await.unwrap(),
        10,
        "Singleton state is shared"
    );
    let a = CounterClient::new(
        conn.proxy("App/Owned")
            .activate_here(&("a",))
            .await
            .unwrap(),
    );
    let b = CounterClient::new(
        conn.proxy("App/Owned")
            .activate_here(&("b",))
            .await
            .unwrap(),
    );
    assert_eq!(a.add(1).await.unwrap(), 1);
    assert_eq!(a.add(1).await.unwrap(), 2);
    assert_eq!(b.add(1).await.unwrap(), 1);
    assert_eq!(a.name().await.unwrap(), "a");
    assert_eq!(b.name().await.unwrap(), "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_formatter_works_too() {
    let s = server(Lease::default());
    let conn = memory_client(&s);
    let shared = CounterClient::new(conn.proxy("App/Shared").with_format(Format::Json));
    assert_eq!(shared.add(2).await.unwrap(), 2);
    assert_eq!(shared.name().await.unwrap(), "shared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed() {
    let s = server(Lease::default());
    let conn = memory_client(&s);
    let shared = CounterClient::new(conn.proxy("App/Shared"));
    let e = shared.fail("nope".into()).await.unwrap_err();
    assert_eq!(e.remote_kind(), Some(RemoteErrorKind::Application));
    assert_eq!(shared.fail(String::new()).await.unwrap(), 7);
    let e = shared.boom().await.unwrap_err();
    assert_eq!(e.remote_kind(), Some(RemoteErrorKind::Panicked));
    assert_eq!(
        shared.add(1).await.unwrap(),
        1,
        "a panic does not poison the server"
    );

    let missing = CounterClient::new(conn.proxy("App/Nothing"));
    let e = missing.add(1).await.unwrap_err();
    assert_eq!(e.remote_kind(), Some(RemoteErrorKind::UnknownService));
    let other_app = CounterClient::new(conn.proxy("Other/Shared"));
    let e = other_app.add(1).await.unwrap_err();
    assert_eq!(e.remote_kind(), Some(RemoteErrorKind::UnknownService));
    let e = conn
        .proxy("App/Shared")
        .call::<_, u64>("nosuch", &())
        .await
        .unwrap_err();
    assert_eq!(e.remote_kind(), Some(RemoteErrorKind::UnknownMethod));
    // Arguments of the wrong type: a string where a u64 is declared.
    let e = conn
        .proxy("App/Shared")
        .with_format(Format::Json)
        .call::<_, u64>("add", &serde_json::json!({"n": "x"}))
        .await
        .unwrap_err();
    assert_eq!(e.remote_kind(), Some(RemoteErrorKind::BadArguments));
    let e = conn
        .proxy("App/Shared")
        .call_raw("add", vec![0xff; 11])
        .await
        .unwrap_err();
    assert_eq!(e.remote_kind(), Some(RemoteErrorKind::BadArguments));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_call_does_not_hold_up_others() {
    let s = server(Lease::default());
    let conn = memory_client(&s);
    let c = CounterClient::new(conn.proxy("App/Shared"));
    let slow = {
        let c = c.clone();
        tokio::spawn(async move { c.sleep_ms(2000).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 1..=20 {
        assert_eq!(c.add(1).await.unwrap(), i);
    }
    assert!(
        !slow.is_finished(),
        "the fast calls finished while the slow one ran"
    );
    assert_eq!(slow.await.unwrap().unwrap(), 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines() {
    let s = server(Lease::default());
    let conn = memory_client(&s);
    let c = CounterClient::new(
        conn.proxy("App/Shared")
            .with_deadline(Duration::from_millis(100)),
    );
    let start = Instant::now();
    let e = c.sleep_ms(5000).await.unwrap_err();
    assert_eq!(e.remote_kind(), Some(RemoteErrorKind::DeadlineExceeded));
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(c.sleep_ms(1).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_end_and_sponsors_keep_alive() {
    let lease = Lease::new(Duration::from_millis(300), Duration::from_millis(600));
    let s = server(lease);
    let conn = memory_client(&s);
    let idle = CounterClient::new(
        conn.proxy("App/Owned")
            .activate_here(&("idle",))
            .await
            .unwrap(),
    );
    let kept = CounterClient::new(
        conn.proxy("App/Owned")
            .activate_here(&("kept",))
            .await
            .unwrap(),
    );
    let used = CounterClient::new(
        conn.proxy("App/Owned")
            .activate_here(&("used",))
            .await
            .unwrap(),
    );
    let _sponsor = kept
        .proxy()
        .sponsor(Duration::from_millis(50), Duration::from_secs(1));
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        used.add(1).await.unwrap();
    }
    let e = idle.add(1).await.unwrap_err();
    assert_eq!(e.remote_kind(), Some(RemoteErrorKind::ObjectDisconnected));
    assert_eq!(kept.add(1).await.unwrap(), 1, "the sponsored one lives");
    assert_eq!(used.add(1).await.unwrap(), 11, "calls renew the lease");
    let e = idle
        .proxy()
        .renew(Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(e.remote_kind(), Some(RemoteErrorKind::ObjectDisconnected));
    used.proxy().release().await.unwrap();
    let e = used.add(1).await.unwrap_err();
    assert_eq!(e.remote_kind(), Some(RemoteErrorKind::ObjectDisconnected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_singleton_starts_afresh() {
    let lease = Lease::new(Duration::from_millis(400), Duration::from_millis(400));
    let registry = RegistryBuilder::new("App")
        .leased_singleton("S", lease, || CounterServer::new(Obj::new("s")))
        .build();
    let s = RemotingServer::new(registry);
    let conn = memory_client(&s);
    let c = CounterClient::new(conn.proxy("App/S"));
    assert_eq!(c.add(1).await.unwrap(), 1);
    assert_eq!(c.add(1).await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(c.add(1).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_pipe_channels_at_once() {
    let s = server(Lease::default());
    let tcp = s.listen_tcp(TcpChannel::loopback(0)).unwrap();
    let name = unique("chan");
    let _pipe = s.listen_pipe(PipeChannel::new(&name)).unwrap();
    let over_tcp = CounterClient::new(
        Proxy::connect(&format!("{}/App/Shared", tcp.local()))
            .await
            .unwrap(),
    );
    let over_pipe = CounterClient::new(
        Proxy::connect(&format!("pipe://{name}/App/Shared"))
            .await
            .unwrap(),
    );
    assert_eq!(over_tcp.add(1).await.unwrap(), 1);
    assert_eq!(over_pipe.add(1).await.unwrap(), 2);
    assert_eq!(over_tcp.caller_pid().await.unwrap(), None);
    assert_eq!(
        over_pipe.caller_pid().await.unwrap(),
        Some(std::process::id()),
        "pipe services see the caller's credentials"
    );
    let owned = CounterClient::new(
        Proxy::activate(&format!("pipe://{name}/App/Owned"), &("p",))
            .await
            .unwrap(),
    );
    assert_eq!(owned.name().await.unwrap(), "p");
}

#[test]
fn non_loopback_tcp_needs_the_opt_out() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = server(Lease::default());
        let e = s
            .listen_tcp(TcpChannel::new("0.0.0.0:0".parse().unwrap()))
            .unwrap_err();
        assert!(matches!(e, RemotingError::PlaintextNetwork { .. }), "{e}");
        assert!(s
            .listen_tcp(TcpChannel::new("0.0.0.0:0".parse().unwrap()).allow_plaintext_network())
            .is_ok());
    });
}

#[test]
fn blocking_client() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = server(Lease::default());
    let tcp = rt
        .block_on(async { s.listen_tcp(TcpChannel::loopback(0)) })
        .unwrap();
    let url = format!("{}/App/Shared", tcp.local());
    let c = CounterBlockingClient::new(procwire_remoting::BlockingProxy::connect(&url).unwrap());
    assert_eq!(c.add(3).unwrap(), 3);
    assert_eq!(c.name().unwrap(), "shared");
    let owned =
        procwire_remoting::BlockingProxy::activate(&format!("{}/App/Owned", tcp.local()), &("b",))
            .unwrap();
    let owned = CounterBlockingClient::new(owned);
    assert_eq!(owned.name().unwrap(), "b");
    drop(c);
    drop(owned);
    drop(tcp);
}

#[test]
fn public_types_are_send_sync() {
    fn check<T: Send + Sync + std::fmt::Debug>() {}
    check::<RemotingServer>();
    check::<Proxy>();
    check::<Connection>();
    check::<CounterClient>();
    check::<CounterBlockingClient>();
    check::<RemotingError>();
    check::<procwire_remoting::Listener>();
    check::<procwire_remoting::server::Limits>();
}

/// Issue 9, item 2: a tcp connection that sends no preamble, or stops inside a frame,
/// is closed by its deadline, while a client that behaves is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_9_preamble_and_frame_deadlines_close_slow_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let registry = RegistryBuilder::new("App")
        .singleton("Shared", || CounterServer::new(Obj::new("shared")))
        .build();
    let limits = procwire_remoting::server::Limits::new()
        .preamble_timeout(Duration::from_millis(300))
        .frame_timeout(Duration::from_millis(300));
    let s = RemotingServer::with_options(registry, limits);
    let tcp = s.listen_tcp(TcpChannel::loopback(0)).unwrap();
    let addr = tcp.local().trim_start_matches("tcp://").to_owned();
    let start = Instant::now();
    let silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut partial = tokio::net::TcpStream::connect(&addr).await.unwrap();
    partial.write_all(b"PWRM\x01").await.unwrap();
    partial.write_all(&100u32.to_be_bytes()).await.unwrap();
    partial.write_all(&[1, 2, 3]).await.unwrap();
    let client = CounterClient::new(
        Proxy::connect(&format!("{}/App/Shared", tcp.local()))
            .await
            .unwrap(),
    );
    assert_eq!(client.add(1).await.unwrap(), 1);
    for mut stream in [silent, partial] {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the server closed the slow connection: {read:?}"
        );
    }
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(client.add(1).await.unwrap(), 2, "the good client goes on");
}

#[remote]
trait Bulk {
    async fn echo(&self, data: Vec<u8>) -> Vec<u8>;
}

struct BulkImpl;

impl Bulk for BulkImpl {
    async fn echo(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_both_ways_at_once_over_tcp_and_pipe() {
    let registry = RegistryBuilder::new("App")
        .singleton("Bulk", || BulkServer::new(BulkImpl))
        .build();
    let s = RemotingServer::new(registry);
    let tcp = s.listen_tcp(TcpChannel::loopback(0)).unwrap();
    let name = format!("rm-bulk-{}", std::process::id());
    let pipe = s.listen_pipe(PipeChannel::new(&name)).unwrap();
    // Both transports split into a reader and a writer task, so 16 MiB can flow each way
    // at once without the two ends waiting on each other.
    for base in [tcp.local().to_owned(), pipe.local().to_owned()] {
        let c = BulkClient::new(
            Proxy::connect(&format!("{base}/App/Bulk"))
                .await
                .unwrap()
                .with_deadline(Duration::from_secs(20)),
        );
        let mut calls = Vec::new();
        for i in 0..16u8 {
            let c = c.clone();
            let base = base.clone();
            calls.push(tokio::spawn(async move {
                let data = vec![i; 1 << 20];
                let back = c.echo(data.clone()).await.unwrap();
                assert!(back == data, "{base}: echo {i} differs");
            }));
        }
        for call in calls {
            call.await.unwrap();
        }
        let e = c.echo(vec![0; 5 << 20]).await.unwrap_err();
        assert!(matches!(e, RemotingError::MessageTooLarge { .. }), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_stop_the_others() {
    use procwire_remoting::wire::{self, Op, Request};
    let registry = RegistryBuilder::new("App")
        .singleton("Bulk", || BulkServer::new(BulkImpl))
        .singleton("Shared", || CounterServer::new(Obj::new("shared")))
        .build();
    let s = RemotingServer::new(registry);
    let tcp = s.listen_tcp(TcpChannel::loopback(0)).unwrap();
    let addr = tcp.local().trim_start_matches("tcp://").to_owned();
    let flood = std::thread::spawn(move || {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(&wire::TCP_PREAMBLE).unwrap();
        let mut sent = 0u64;
        // 2000 echoes of 32 KiB: 64 MiB of answers if the server read them all.
        for id in 0..2000u64 {
            let request = Request {
                id,
                deadline_ms: None,
                format: Format::Binary,
                op: Op::Call {
                    service: "App/Bulk".into(),
                    object: None,
                    method: "echo".into(),
                },
                body: wire::encode_value(Format::Binary, &(vec![7u8; 32 << 10],)).unwrap(),
            };
            let frame = wire::encode_request(&request, 1 << 20).unwrap();
            stream
                .set_write_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            if stream.write_all(&wire::length_prefixed(&frame)).is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other = CounterClient::new(
        Proxy::connect(&format!("{}/App/Shared", tcp.local()))
            .await
            .unwrap(),
    );
    assert_eq!(other.name().await.unwrap(), "shared");
    let sent = tokio::task::spawn_blocking(move || flood.join().unwrap())
        .await
        .unwrap();
    assert!(
        sent < 50_000,
        "the server stopped reading a client that never reads ({sent} sent)"
    );
    assert_eq!(other.add(1).await.unwrap(), 1);
}
