//! Transactions, calls, peeks and handle state across real processes, on the socket and
//! the shared-memory data path, through the blocking and the tokio API: the server is a
//! helper process (this test binary re-executed) that echoes every message.

use std::io::Read;
use std::time::{Duration, Instant};

use procwire::pipe::{ClientOptions, PeekInfo, PipeConnection, PipeError, PipeOptions};
use procwire::wire::PipeMode;
use procwire_testkit::{helper, helper_role, say, unique_name, Proc, Watchdog};

/// The sizes every transaction and call is tried with: empty, 64 KiB, 8 MiB.
const SIZES: [usize; 3] = [0, 64 << 10, 8 << 20];

/// How long a test waits for the echo of what it sent to arrive, before failing.
const ARRIVAL: Duration = Duration::from_secs(20);

/// The two data paths: over the socket, over shared memory.
const PATHS: [bool; 2] = [false, true];

fn server(name: &str, mode: &str) -> Proc {
    let mut server = helper("echo", &[("PIPE", name), ("MODE", mode)]);
    server.wait_for("READY");
    server
}

fn options(shm: bool) -> ClientOptions {
    ClientOptions::new()
        .read_mode(PipeMode::Message)
        .shared_memory(shm)
        .timeout(Duration::from_secs(20))
}

fn client(name: &str, shm: bool) -> PipeConnection {
    let pipe = options(shm).open(name).expect("open the pipe");
    assert_eq!(pipe.is_shared_memory(), shm, "the data path asked for");
    pipe
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed))
        .collect()
}

/// Peeks until `done` holds of what the peek saw (the echo is on its way), or fails.
fn peek_until(pipe: &PipeConnection, done: impl Fn(&PeekInfo) -> bool) -> PeekInfo {
    let give_up = Instant::now() + ARRIVAL;
    loop {
        let seen = pipe.peek().unwrap();
        if done(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < give_up,
            "never saw it; last peek: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn transact_round_trips_0_b_64_kib_and_8_mib_on_both_paths() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let name = unique_name("transact");
    let _server = server(&name, "message");
    for shm in PATHS {
        let mut pipe = client(&name, shm);
        for (i, len) in SIZES.into_iter().enumerate() {
            let request = pattern(len, i as u8);
            let answer = pipe.transact(&request).unwrap();
            assert_eq!(answer.len(), len, "shm {shm}: length of the answer");
            assert!(answer == request, "shm {shm}: the {len}-byte answer");
            let answer = pipe
                .transact_timeout(&request, Duration::from_secs(20))
                .unwrap();
            assert!(
                answer == request,
                "shm {shm}: the {len}-byte answer in time"
            );
        }
    }
}

#[test]
fn call_round_trips_0_b_64_kib_and_8_mib_on_both_paths() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let name = unique_name("call");
    let _server = server(&name, "message");
    for (i, len) in SIZES.into_iter().enumerate() {
        let request = pattern(len, i as u8);
        let answer = procwire::pipe::call(name.as_str(), &request, Duration::from_secs(20));
        assert!(answer.unwrap() == request, "socket: the {len}-byte answer");
        let answer = ClientOptions::new().shared_memory(true).call(
            name.as_str(),
            &request,
            Duration::from_secs(20),
        );
        assert!(answer.unwrap() == request, "shm: the {len}-byte answer");
    }
}

#[test]
fn a_call_to_nobody_or_to_a_byte_pipe_is_a_clear_error() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let e = procwire::pipe::call(
        unique_name("nobody").as_str(),
        b"x",
        Duration::from_millis(100),
    )
    .unwrap_err();
    assert!(matches!(e, PipeError::NotFound { .. }), "{e}");
    let name = unique_name("call-bytes");
    let _server = server(&name, "byte");
    let e = procwire::pipe::call(name.as_str(), b"x", Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, PipeError::ModeMismatch { .. }), "{e}");
}

#[test]
fn a_transaction_needs_message_read_mode_and_nothing_unread() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("transact-rules");
    let _server = server(&name, "message");
    for shm in PATHS {
        // Byte read mode (the default) is refused until the handle switches to messages.
        let mut pipe = options(shm)
            .read_mode(PipeMode::Byte)
            .open(name.as_str())
            .unwrap();
        let e = pipe.transact(b"hello").unwrap_err();
        assert!(matches!(e, PipeError::ModeMismatch { .. }), "{e}");
        pipe.set_read_mode(PipeMode::Message).unwrap();
        assert_eq!(pipe.transact(b"hello").unwrap(), b"hello");
        // An earlier message waiting unread could pass for the answer: refused.
        pipe.send(b"earlier").unwrap();
        peek_until(&pipe, |p| p.message_len.is_some());
        let e = pipe.transact(b"now").unwrap_err();
        assert!(matches!(e, PipeError::NotPermitted { .. }), "{e}");
        assert_eq!(pipe.recv().unwrap(), b"earlier", "nothing was lost");
        assert_eq!(pipe.transact(b"now").unwrap(), b"now");
    }
}

#[test]
fn peek_shows_the_next_messages_exact_size_and_what_is_left_mid_message() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("peek");
    let _server = server(&name, "message");
    for shm in PATHS {
        let mut pipe = client(&name, shm);
        assert!(pipe.peek().unwrap().is_empty(), "shm {shm}: nothing yet");
        // Both fit the server's 64 KiB ring at once, so both can be waiting.
        let (first, second) = (pattern(20_000, 1), pattern(5_000, 2));
        pipe.send(&first).unwrap();
        pipe.send(&second).unwrap();
        let seen = peek_until(&pipe, |p| p.bytes_available == 25_000);
        assert_eq!(seen.message_len, Some(20_000), "shm {shm}");
        assert_eq!(seen.bytes_left_in_message, 20_000, "shm {shm}");
        // Peeking again takes nothing.
        assert_eq!(pipe.peek().unwrap(), seen, "shm {shm}");
        // Part of the first message: the rest is what is left of it.
        let mut part = vec![0u8; 7_000];
        let got = pipe.recv_into(&mut part).unwrap();
        assert!(!got.complete);
        let seen = pipe.peek().unwrap();
        assert_eq!(seen.message_len, Some(20_000), "shm {shm}");
        assert_eq!(
            seen.bytes_left_in_message,
            20_000 - got.len,
            "shm {shm}: {seen:?}"
        );
        assert_eq!(seen.bytes_available, 25_000 - got.len, "shm {shm}");
        let rest = pipe.recv().unwrap();
        assert_eq!([&part[..got.len], &rest[..]].concat(), first, "shm {shm}");
        // Then the second one is next.
        let seen = pipe.peek().unwrap();
        assert_eq!(seen.message_len, Some(5_000), "shm {shm}");
        assert_eq!(seen.bytes_available, 5_000, "shm {shm}");
        assert_eq!(pipe.recv().unwrap(), second, "shm {shm}");
        assert!(pipe.peek().unwrap().is_empty(), "shm {shm}: all taken");
        // An empty message is seen too: a length of zero.
        pipe.send(b"").unwrap();
        let seen = peek_until(&pipe, |p| p.message_len.is_some());
        assert_eq!((seen.message_len, seen.bytes_available), (Some(0), 0));
        assert_eq!(pipe.recv().unwrap(), b"");
    }
}

#[test]
fn read_mode_changes_take_effect_on_an_open_connection() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("read-mode");
    let _server = server(&name, "message");
    for shm in PATHS {
        let mut pipe = client(&name, shm);
        assert_eq!(pipe.read_mode(), PipeMode::Message);
        pipe.send(b"ab").unwrap();
        pipe.send(b"cd").unwrap();
        peek_until(&pipe, |p| p.bytes_available == 4);
        let mut buf = [0u8; 16];
        // Message read mode: a read stops at the end of a message.
        assert_eq!(pipe.read(&mut buf).unwrap(), 2, "shm {shm}");
        assert_eq!(&buf[..2], b"ab");
        pipe.set_read_mode(PipeMode::Byte).unwrap();
        pipe.send(b"ef").unwrap();
        peek_until(&pipe, |p| p.bytes_available == 4);
        // Byte read mode: a read runs on across messages (on shared memory each record is
        // read on its own, so gather what is there).
        let mut got = Vec::new();
        while got.len() < 4 {
            let n = pipe.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"cdef", "shm {shm}");
    }
    let bytes = unique_name("read-mode-bytes");
    let _byte_server = server(&bytes, "byte");
    let mut pipe = ClientOptions::new().open(bytes.as_str()).unwrap();
    let e = pipe.set_read_mode(PipeMode::Message).unwrap_err();
    assert!(matches!(e, PipeError::ModeMismatch { .. }), "{e}");
}

#[test]
fn a_nonblocking_connection_returns_would_block_at_once_and_loses_nothing() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("nowait");
    let _server = server(&name, "message");
    for shm in PATHS {
        let mut pipe = client(&name, shm);
        pipe.set_nonblocking(true);
        assert!(pipe.is_nonblocking());
        let e = pipe.recv().unwrap_err();
        assert!(matches!(e, PipeError::WouldBlock { .. }), "shm {shm}: {e}");
        let mut buf = [0u8; 64];
        let e = pipe.recv_into(&mut buf).unwrap_err();
        assert!(matches!(e, PipeError::WouldBlock { .. }), "shm {shm}: {e}");
        let e = pipe.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "shm {shm}: {e}");
        pipe.send(b"later").unwrap();
        peek_until(&pipe, |p| p.message_len.is_some());
        assert_eq!(pipe.recv().unwrap(), b"later", "shm {shm}");
        // Back to waiting: a receive waits for the echo again.
        pipe.set_nonblocking(false);
        pipe.send(b"waited").unwrap();
        assert_eq!(pipe.recv().unwrap(), b"waited", "shm {shm}");
    }
}

#[test]
fn a_tcp_servers_connection_knows_its_clients_address_and_a_client_its_servers_identity() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("peer-addr");
    let listener = PipeOptions::new()
        .listen_tcp("127.0.0.1:0".parse().unwrap())
        .create(name.as_str())
        .unwrap();
    let addr = listener.tcp_addr().expect("a TCP listener");
    let remote = procwire::name::Name::tcp_pipe(addr, &name).unwrap();
    let tcp = ClientOptions::new().open(&remote).unwrap();
    let accepted = listener.accept().unwrap();
    let client_addr = accepted.peer_addr().expect("a TCP client's address");
    assert!(client_addr.ip().is_loopback());
    assert_eq!(tcp.peer_addr(), Some(addr));
    assert_eq!(tcp.server_credentials(), None, "TCP has no credentials");
    // On a local pipe: no address, but the server's identity from the kernel.
    let echo_name = unique_name("server-pid");
    let echo = server(&echo_name, "message");
    let local = client(&echo_name, false);
    assert_eq!(local.peer_addr(), None);
    assert_eq!(local.server_credentials().map(|c| c.pid), Some(echo.pid()));
}

/// The same through the tokio API.
mod tokio_api {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn tokio_transact_and_call_round_trip_0_b_64_kib_and_8_mib_on_both_paths() {
        let _wd = Watchdog::new(Duration::from_secs(120));
        let name = unique_name("tokio-transact");
        let _server = server(&name, "message");
        runtime().block_on(async {
            for shm in PATHS {
                let mut pipe = options(shm).open_async(name.as_str()).await.unwrap();
                assert_eq!(pipe.is_shared_memory(), shm);
                for (i, len) in SIZES.into_iter().enumerate() {
                    let request = pattern(len, i as u8);
                    let answer = pipe.transact(&request).await.unwrap();
                    assert!(answer == request, "shm {shm}: the {len}-byte answer");
                    let answer = options(shm)
                        .call_async(name.as_str(), &request, Duration::from_secs(20))
                        .await
                        .unwrap();
                    assert!(answer == request, "shm {shm}: the {len}-byte call");
                }
                let answer =
                    procwire::pipe::tokio::call(name.as_str(), b"plain", Duration::from_secs(20))
                        .await
                        .unwrap();
                assert_eq!(answer, b"plain");
            }
        });
    }

    #[test]
    fn tokio_peek_and_read_mode_on_both_paths() {
        let _wd = Watchdog::new(Duration::from_secs(60));
        let name = unique_name("tokio-peek");
        let _server = server(&name, "message");
        runtime().block_on(async {
            for shm in PATHS {
                let mut pipe = options(shm)
                    .read_mode(PipeMode::Byte)
                    .open_async(name.as_str())
                    .await
                    .unwrap();
                let e = pipe.transact(b"x").await.unwrap_err();
                assert!(matches!(e, PipeError::ModeMismatch { .. }), "{e}");
                pipe.set_read_mode(PipeMode::Message).unwrap();
                assert_eq!(pipe.read_mode(), PipeMode::Message);
                pipe.send(&pattern(30_000, 4)).await.unwrap();
                let give_up = Instant::now() + ARRIVAL;
                let seen = loop {
                    let seen = pipe.peek().unwrap();
                    if seen.bytes_available == 30_000 {
                        break seen;
                    }
                    assert!(Instant::now() < give_up, "{seen:?}");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                };
                assert_eq!(seen.message_len, Some(30_000), "shm {shm}");
                let mut part = vec![0u8; 1_000];
                let got = pipe.recv_into(&mut part).await.unwrap();
                let seen = pipe.peek().unwrap();
                assert_eq!(seen.bytes_left_in_message, 30_000 - got.len, "shm {shm}");
                let e = pipe.transact(b"x").await.unwrap_err();
                assert!(matches!(e, PipeError::NotPermitted { .. }), "{e}");
                let rest = pipe.recv().await.unwrap();
                assert_eq!(got.len + rest.len(), 30_000);
                assert_eq!(pipe.transact(b"y").await.unwrap(), b"y");
            }
        });
    }
}

#[test]
fn after_a_half_close_the_server_still_answers_on_both_paths_and_apis() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("halfclose");
    let _server = server(&name, "message");
    for shm in PATHS {
        let mut pipe = client(&name, shm);
        pipe.send(b"one").unwrap();
        pipe.finish_sending().unwrap();
        assert_eq!(pipe.recv().unwrap(), b"one", "shm {shm}");
        assert_eq!(pipe.recv().unwrap(), b"saw the end", "shm {shm}");
        let end = pipe.recv().unwrap_err();
        assert!(
            matches!(end, PipeError::Disconnected { .. }),
            "shm {shm}: {end}"
        );
        // The end stays the end.
        assert!(matches!(
            pipe.recv().unwrap_err(),
            PipeError::Disconnected { .. }
        ));
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            for shm in PATHS {
                let mut pipe = options(shm).open_async(name.as_str()).await.unwrap();
                assert_eq!(pipe.is_shared_memory(), shm);
                pipe.send(b"two").await.unwrap();
                pipe.finish_sending().await.unwrap();
                assert_eq!(pipe.recv().await.unwrap(), b"two", "shm {shm}");
                assert_eq!(pipe.recv().await.unwrap(), b"saw the end", "shm {shm}");
                let end = pipe.recv().await.unwrap_err();
                assert!(
                    matches!(end, PipeError::Disconnected { .. }),
                    "shm {shm}: {end}"
                );
            }
        });
}

/// Not a test of its own: the body of the helper processes above.
#[test]
fn helper_process() {
    let Some(role) = helper_role() else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    match role.as_str() {
        "echo" => echo(&var("PIPE"), &var("MODE")),
        other => panic!("unknown role {other}"),
    }
}

/// Serves every client on its own thread, offering shared memory: echoes each message
/// (byte mode: each chunk read).
fn echo(name: &str, mode: &str) {
    let mode = if mode == "byte" {
        PipeMode::Byte
    } else {
        PipeMode::Message
    };
    let server = PipeOptions::new()
        .mode(mode)
        .shared_memory_ring_size(64 * 1024)
        .create(name)
        .unwrap();
    say("READY");
    loop {
        let mut conn = server.accept().unwrap();
        std::thread::spawn(move || {
            if mode == PipeMode::Byte {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(1..) = conn.read(&mut buf) {}
                return;
            }
            loop {
                match conn.recv() {
                    Ok(m) if conn.send(&m).is_ok() => {}
                    // The client's half close: it still hears the server's last word.
                    Err(PipeError::Disconnected { .. }) => {
                        let _ = conn.send(b"saw the end");
                        return;
                    }
                    _ => return,
                }
            }
        });
    }
}
