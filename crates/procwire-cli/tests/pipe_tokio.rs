//! The tokio pipe API against real processes: an async server in this process serving the
//! `procwire` CLI client, and an async client talking to the CLI server.

mod util;

use std::time::Duration;

use procwire::pipe::{ClientOptions, PipeError, PipeOptions};
use procwire::wire::PipeMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use util::{procwire, run, serve, unique_name, Watchdog};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_server_serves_client_processes() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("async-server");
    let server = PipeOptions::new().create_async(name.as_str()).unwrap();
    let serving = tokio::spawn(async move {
        for _ in 0..3 {
            let mut client = server.accept().await.unwrap();
            assert!(client.peer_credentials().is_some());
            tokio::spawn(async move {
                while let Ok(m) = client.recv().await {
                    let mut answer = b"re: ".to_vec();
                    answer.extend_from_slice(&m);
                    client.send(&answer).await.unwrap();
                }
            });
        }
    });
    let clients: Vec<_> = (0..3)
        .map(|i| {
            let name = name.clone();
            tokio::task::spawn_blocking(move || {
                let mut cmd = procwire();
                cmd.args(["pipe", "connect", &name]);
                let input = format!("hello {i}\nbye {i}\n");
                run(cmd, input.as_bytes(), Duration::from_secs(30))
            })
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        let out = client.await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("re: hello {i}\nre: bye {i}\n")
        );
    }
    serving.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_client_talks_to_a_server_process() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("async-client");
    let _server = tokio::task::spawn_blocking({
        let name = name.clone();
        move || serve(&name, &["--echo"])
    })
    .await
    .unwrap();
    let mut pipe = ClientOptions::new()
        .read_mode(PipeMode::Message)
        .open_async(name.as_str())
        .await
        .unwrap();
    for size in [0usize, 1, 64 * 1024, 8 << 20] {
        let message: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        pipe.send(&message).await.unwrap();
        let got = pipe.recv().await.unwrap();
        assert!(got == message, "a {size}-byte message came back changed");
    }
    // A message in parts, through AsyncRead in message read mode: one read per message.
    pipe.send(b"abc").await.unwrap();
    let mut buf = [0u8; 16];
    let n = pipe.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"abc");
    // AsyncWrite is refused on a message pipe rather than splitting messages silently.
    let e = pipe.write(b"x").await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);

    let missing = ClientOptions::new()
        .open_async(unique_name("missing").as_str())
        .await
        .unwrap_err();
    assert!(matches!(missing, PipeError::NotFound { .. }), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_byte_pipes_are_streams() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("async-bytes");
    let _server = tokio::task::spawn_blocking({
        let name = name.clone();
        move || serve(&name, &["--echo", "--mode", "byte"])
    })
    .await
    .unwrap();
    let mut pipe = ClientOptions::new()
        .open_async(name.as_str())
        .await
        .unwrap();
    let data = b"0123456789".repeat(10_000);
    pipe.write_all(&data).await.unwrap();
    let mut back = vec![0u8; data.len()];
    pipe.read_exact(&mut back).await.unwrap();
    assert_eq!(back, data);
}
