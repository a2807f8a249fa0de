//! Shared-memory pipes through the tokio API, across real processes: tokio servers and
//! clients with each other and with the blocking API, a waiting task that leaves its
//! runtime free, and a peer killed mid-message.

use std::time::Duration;

use procwire::pipe::{ClientOptions, PipeConnection, PipeError, PipeOptions};
use procwire::wire::PipeMode;
use procwire_testkit::{helper, helper_role, say, unique_name, Proc, Watchdog};

/// The ring size of the servers here: 64 KiB, so that large messages stream through it.
const RING: usize = 64 * 1024;

fn server(role: &str, name: &str) -> Proc {
    let mut server = helper(role, &[("PIPE", name)]);
    server.wait_for("READY");
    server
}

fn options() -> ClientOptions {
    ClientOptions::new()
        .read_mode(PipeMode::Message)
        .shared_memory(true)
        .timeout(Duration::from_secs(20))
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed))
        .collect()
}

/// Sizes around the record and ring boundaries, and one far over the ring.
fn sizes() -> [usize; 8] {
    let max_record = RING / 4 - 8;
    [
        0,
        1,
        max_record,
        max_record + 1,
        RING - 1,
        RING,
        RING + 1,
        8 << 20,
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn echo_round_trips(pipe: &mut procwire::pipe::tokio::PipeConnection) {
    for (i, len) in sizes().into_iter().enumerate() {
        let message = pattern(len, i as u8);
        pipe.send(&message).await.unwrap();
        let echo = pipe.recv().await.unwrap();
        assert_eq!(echo.len(), len, "length of message {i}");
        assert!(echo == message, "contents of the {len}-byte message");
    }
}

#[test]
fn a_tokio_client_and_a_tokio_server_talk_through_shared_memory() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("shm-tokio");
    let mut server = server("tokio-echo", &name);
    runtime().block_on(async {
        let mut pipe = options().open_async(name.as_str()).await.unwrap();
        assert!(
            pipe.is_shared_memory(),
            "the tokio server offers shared memory"
        );
        echo_round_trips(&mut pipe).await;
    });
    let report = server.wait_for("client gone");
    assert!(
        report.contains("shm true") && report.contains("Ok"),
        "{report}"
    );
}

#[test]
fn the_tokio_and_blocking_apis_meet_on_shared_memory() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    // A blocking client of a tokio server.
    let name = unique_name("shm-tokio-server");
    let _server = server("tokio-echo", &name);
    let mut pipe = options().open(name.as_str()).unwrap();
    assert!(pipe.is_shared_memory());
    for (i, len) in sizes().into_iter().enumerate() {
        let message = pattern(len, i as u8);
        pipe.send(&message).unwrap();
        assert!(
            pipe.recv().unwrap() == message,
            "{len} bytes, blocking client"
        );
    }
    // A tokio client of a blocking server.
    let name = unique_name("shm-blocking-server");
    let _server = server("blocking-echo", &name);
    runtime().block_on(async {
        let mut pipe = options().open_async(name.as_str()).await.unwrap();
        assert!(pipe.is_shared_memory());
        echo_round_trips(&mut pipe).await;
    });
}

#[test]
fn a_task_waiting_on_shared_memory_leaves_its_runtime_thread_free() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("shm-tokio-idle");
    let _server = server("tokio-echo", &name);
    // One thread: if the receive spun or blocked, the ticker could not run.
    runtime().block_on(async {
        let mut pipe = options().open_async(name.as_str()).await.unwrap();
        assert!(pipe.is_shared_memory());
        let ticker = tokio::spawn(async {
            let mut ticks = 0u32;
            let mut every = tokio::time::interval(Duration::from_millis(10));
            loop {
                every.tick().await;
                ticks += 1;
                if ticks == 20 {
                    return ticks;
                }
            }
        });
        // The server answers "late" after 500 ms.
        pipe.send(b"late").await.unwrap();
        let answer = pipe.recv().await.unwrap();
        assert_eq!(answer, b"late");
        assert!(
            ticker.is_finished(),
            "20 ticks of 10 ms ran while the receive waited 500 ms"
        );
    });
}

#[test]
fn a_tokio_client_whose_server_dies_mid_message_gets_disconnected() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("shm-tokio-dies");
    let mut server = server("dies-mid-send", &name);
    runtime().block_on(async {
        let mut pipe = options().open_async(name.as_str()).await.unwrap();
        assert!(pipe.is_shared_memory());
        server.wait_for("SENDING");
        let mut part = [0u8; 1000];
        let first = pipe.recv_into(&mut part).await.unwrap();
        assert!(!first.complete);
        server.kill();
        match pipe.recv().await.unwrap_err() {
            PipeError::Disconnected { detail, .. } => {
                assert!(detail.contains("middle of a message"), "{detail}")
            }
            e => panic!("expected Disconnected, got {e}"),
        }
    });
}

#[test]
fn byte_type_tokio_pipes_stream_through_shared_memory() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("shm-tokio-bytes");
    let _server = server("tokio-byte-echo", &name);
    runtime().block_on(async {
        let pipe = ClientOptions::new()
            .shared_memory(true)
            .open_async(name.as_str())
            .await
            .unwrap();
        assert!(pipe.is_shared_memory());
        let (mut rx, mut tx) = pipe.into_split();
        let data = pattern(3 << 20, 7);
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            tx.write_all(&sent).await.unwrap();
            tx.shutdown().await.unwrap();
        });
        let mut back = Vec::new();
        rx.read_to_end(&mut back).await.unwrap();
        writer.await.unwrap();
        assert_eq!(back.len(), data.len());
        assert!(back == data, "the stream's bytes in order");
    });
}

/// Not a test of its own: the body of the helper processes above.
#[test]
fn helper_process() {
    let Some(role) = helper_role() else {
        return;
    };
    let name = std::env::var("PIPE").unwrap_or_default();
    match role.as_str() {
        "tokio-echo" => runtime().block_on(tokio_echo(&name, PipeMode::Message)),
        "tokio-byte-echo" => runtime().block_on(tokio_echo(&name, PipeMode::Byte)),
        "blocking-echo" => {
            let server = PipeOptions::new()
                .shared_memory_ring_size(RING)
                .create(name.as_str())
                .unwrap();
            say("READY");
            loop {
                let mut conn: PipeConnection = server.accept().unwrap();
                std::thread::spawn(move || {
                    while let Ok(m) = conn.recv() {
                        conn.send(&m).unwrap();
                    }
                });
            }
        }
        "dies-mid-send" => {
            let server = PipeOptions::new()
                .shared_memory_ring_size(RING)
                .create(name.as_str())
                .unwrap();
            say("READY");
            let mut conn = server.accept().unwrap();
            say("SENDING");
            // Blocks once the ring is full: the test kills us here.
            conn.send(&vec![2u8; 8 << 20]).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
        other => panic!("unknown role {other}"),
    }
}

/// A tokio server that echoes every message (or, on a byte pipe, the stream), answering
/// `late` after 500 ms, and prints how each client ended.
async fn tokio_echo(name: &str, mode: PipeMode) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = PipeOptions::new()
        .mode(mode)
        .shared_memory_ring_size(RING)
        .create_async(name)
        .unwrap();
    say("READY");
    loop {
        let conn = server.accept().await.unwrap();
        tokio::spawn(async move {
            let shm = conn.is_shared_memory();
            let end: Result<(), String> = if mode == PipeMode::Byte {
                let (mut rx, mut tx) = conn.into_split();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match rx.read(&mut buf).await {
                        Ok(0) => break tx.shutdown().await.map_err(|e| e.to_string()),
                        Ok(n) => {
                            if let Err(e) = tx.write_all(&buf[..n]).await {
                                break Err(e.to_string());
                            }
                        }
                        Err(e) => break Err(e.to_string()),
                    }
                }
            } else {
                let mut conn = conn;
                loop {
                    match conn.recv().await {
                        Ok(m) => {
                            if m == b"late" {
                                tokio::time::sleep(Duration::from_millis(500)).await;
                            }
                            if let Err(e) = conn.send(&m).await {
                                break Err(e.to_string());
                            }
                        }
                        Err(PipeError::Disconnected { .. }) => break Ok(()),
                        Err(e) => break Err(e.to_string()),
                    }
                }
            };
            say(&format!("client gone: shm {shm} {end:?}"));
        });
    }
}
