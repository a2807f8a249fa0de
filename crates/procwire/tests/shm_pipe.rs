//! Shared-memory pipes across real processes, through the blocking and the tokio API: a
//! server in a helper process (this test binary re-executed), clients here or in more
//! helpers; peers killed mid-message, peers that scribble on the rings, another user, and
//! a Python client that knows nothing of shared memory.

use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use procwire::pipe::{ClientOptions, PipeConnection, PipeError, PipeOptions};
use procwire::wire::PipeMode;
use procwire_testkit::{
    helper, helper_as_user, helper_on_cpu, helper_role, say, unique_name, Proc, Watchdog,
};

/// The ring size of the servers here: 64 KiB, so that large messages stream through it.
const RING: usize = 64 * 1024;
const RING_STR: &str = "65536";

fn server(name: &str, mode: &str) -> Proc {
    let mut server = helper("echo-server", &[("PIPE", name), ("MODE", mode)]);
    server.wait_for("READY");
    server
}

fn client(name: &str) -> PipeConnection {
    let pipe = ClientOptions::new()
        .read_mode(PipeMode::Message)
        .shared_memory(true)
        .timeout(Duration::from_secs(20))
        .open(name)
        .expect("open the pipe");
    assert!(pipe.is_shared_memory(), "the server offers shared memory");
    pipe
}

/// Sizes around the record and ring boundaries, and one far over the ring.
fn sizes() -> [usize; 9] {
    let max_record = RING / 4 - 8;
    [
        0,
        1,
        max_record - 1,
        max_record,
        max_record + 1,
        RING - 1,
        RING,
        RING + 1,
        8 << 20,
    ]
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn messages_of_every_awkward_size_keep_their_boundaries() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("shm-sizes");
    let _server = server(&name, "message");
    let mut pipe = client(&name);
    for (i, len) in sizes().into_iter().enumerate() {
        let message = pattern(len, i as u8);
        pipe.send(&message).unwrap();
        let echo = pipe.recv().unwrap();
        assert_eq!(echo.len(), len, "length of message {i}");
        assert!(echo == message, "contents of the {len}-byte message");
    }
}

#[test]
fn batches_sent_and_received_together_keep_every_message_in_order() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("shm-batch");
    let _server = server(&name, "message");
    let mut pipe = client(&name);
    // Many small messages (published together) with the awkward sizes among them, so that
    // a batch fills the ring, wraps it and streams messages longer than it.
    let mut batch: Vec<Vec<u8>> = (0..2000).map(|i| pattern(i % 97, i as u8)).collect();
    for (i, len) in sizes().into_iter().enumerate() {
        batch.insert(i * 200, pattern(len, 200 + i as u8));
    }
    // The echoes come back while the batch goes out (the rings are smaller than it).
    let mut reader = pipe.try_clone().unwrap();
    let count = batch.len();
    let receiving = std::thread::spawn(move || {
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut calls = 0;
        while got.len() < count {
            let handed = reader
                .recv_many(usize::MAX, |m| got.push(m.to_vec()))
                .unwrap();
            assert!(handed >= 1, "recv_many hands at least one message");
            calls += 1;
        }
        (got, calls)
    });
    pipe.send_many(&batch).unwrap();
    let (got, calls) = receiving.join().unwrap();
    assert_eq!(got.len(), batch.len(), "message count");
    for (i, (g, e)) in got.iter().zip(&batch).enumerate() {
        assert!(g == e, "message {i} of {} bytes (got {})", e.len(), g.len());
    }
    assert!(
        calls < batch.len(),
        "recv_many took several messages per call"
    );
    let too_large = vec![vec![0u8; 1], vec![0u8; (16 << 20) + 1]];
    assert!(
        matches!(
            pipe.send_many(&too_large),
            Err(procwire::pipe::PipeError::MessageTooLarge { .. })
        ),
        "an oversize message in a batch is refused before anything is sent"
    );
    pipe.send(b"after").unwrap();
    assert_eq!(
        pipe.recv().unwrap(),
        b"after",
        "nothing of the refused batch was sent"
    );
}

#[test]
fn thirty_two_shared_memory_clients_are_served_at_once() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let name = Arc::new(unique_name("shm-many"));
    let _server = server(&name, "message");
    let clients: Vec<_> = (0..32u8)
        .map(|c| {
            let name = Arc::clone(&name);
            std::thread::spawn(move || {
                let mut pipe = client(&name);
                for i in 0..200u32 {
                    let message = pattern(1 + (i as usize * 97) % 5000, c);
                    pipe.send(&message).unwrap();
                    assert_eq!(pipe.recv().unwrap(), message, "client {c} message {i}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client thread");
    }
}

#[test]
fn zero_copy_loans_and_borrowed_receives_travel_in_place() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("shm-loan");
    let _server = server(&name, "message");
    let mut pipe = client(&name);
    for round in 0..100u8 {
        let mut loan = pipe.loan(4096).unwrap();
        loan.copy_from_slice(&pattern(4096, round));
        loan.send().unwrap();
        let received = pipe.recv_borrowed().unwrap();
        assert!(
            received.is_in_place(),
            "a 4 KiB message lies in one piece of the ring"
        );
        assert!(*received == pattern(4096, round)[..], "round {round}");
    }
    // Longer than a quarter of the ring: still works, through memory of its own.
    let mut loan = pipe.loan(RING).unwrap();
    loan.fill(7);
    loan.send().unwrap();
    let received = pipe.recv_borrowed().unwrap();
    assert!(!received.is_in_place());
    assert_eq!(received.len(), RING);
}

/// A pause of `micros`: spun below 50 µs (a sleep that short oversleeps), slept above.
fn pause(micros: u64) {
    let d = Duration::from_micros(micros);
    if micros < 50 {
        let start = std::time::Instant::now();
        while start.elapsed() < d {
            std::hint::spin_loop();
        }
    } else {
        std::thread::sleep(d);
    }
}

/// The pauses of the sleep test: from nothing to well past the longest spin (128 µs), so
/// that messages come as the reader starts to sleep, while it sleeps, and just before.
fn pauses(seed: u64) -> impl Iterator<Item = u64> {
    let mut x = seed | 1;
    std::iter::from_fn(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Some(match x % 4 {
            0 => x % 8,
            1 => x % 40,
            2 => 40 + x % 200,
            _ => 120 + x % 400,
        })
    })
}

#[test]
fn no_wake_up_is_lost_when_messages_come_as_each_side_falls_asleep() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let name = unique_name("shm-sleepers");
    // Both sides pause before they send, so each often finds the other asleep, falling
    // asleep, or just woken; on two CPUs when there are two.
    let mut server = helper_on_cpu(1, "slow-echo", &[("PIPE", &name)]);
    server.wait_for("READY");
    let mut pipe = client(&name);
    for (round, micros) in pauses(7).take(4000).enumerate() {
        pause(micros);
        let message = (round as u64).to_le_bytes();
        pipe.send(&message).unwrap();
        let echoed = pipe
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("round {round}: no echo ({e}): a wake-up was lost"));
        assert_eq!(echoed, message, "round {round}");
    }
    drop(pipe);
    server.wait_for("client gone: Ok");
}

#[test]
fn recv_into_timeouts_and_half_close_behave_as_on_the_socket() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("shm-semantics");
    let _server = server(&name, "message");
    let mut pipe = client(&name);
    // Nothing sent: a timeout, and nothing lost afterwards.
    let e = pipe.recv_timeout(Duration::from_millis(50)).unwrap_err();
    assert!(matches!(e, PipeError::Timeout { .. }), "{e}");
    // A message longer than the buffer arrives in parts (ERROR_MORE_DATA).
    let message = pattern(100_000, 3);
    pipe.send(&message).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 7000];
    loop {
        let part = pipe.recv_into(&mut buf).unwrap();
        got.extend_from_slice(&buf[..part.len]);
        if part.complete {
            break;
        }
        assert_eq!(part.len, buf.len(), "an incomplete part fills the buffer");
    }
    assert!(got == message);
    // Half close: the server still gets (and answers) the last message, then sees the end
    // and closes; this end can still receive after finishing its sending.
    pipe.send(b"last").unwrap();
    pipe.finish_sending().unwrap();
    assert_eq!(pipe.recv().unwrap(), b"last");
    let e = pipe.recv().unwrap_err();
    assert!(matches!(e, PipeError::Disconnected { .. }), "{e}");
}

#[test]
fn byte_type_pipes_stream_through_shared_memory() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("shm-bytes");
    let _server = server(&name, "byte");
    let mut pipe = ClientOptions::new()
        .shared_memory(true)
        .open(name.as_str())
        .unwrap();
    assert!(pipe.is_shared_memory());
    let data = pattern(3 << 20, 9);
    let writer = {
        let mut pipe = pipe.try_clone().unwrap();
        let data = data.clone();
        std::thread::spawn(move || {
            for chunk in data.chunks(10_000) {
                pipe.write_all(chunk).unwrap();
            }
            pipe.finish_sending().unwrap();
        })
    };
    let mut echoed = Vec::new();
    pipe.read_to_end(&mut echoed).unwrap();
    writer.join().unwrap();
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data);
}

#[test]
fn a_server_killed_mid_message_gives_its_client_disconnected_not_a_torn_message() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("shm-server-dies");
    let mut server = helper("dies-mid-send", &[("PIPE", &name)]);
    server.wait_for("READY");
    let mut pipe = client(&name);
    server.wait_for("SENDING");
    // The server blocks with part of 8 MiB in the 64 KiB ring; read some, then kill it.
    let mut part = [0u8; 1000];
    let first = pipe.recv_into(&mut part).unwrap();
    assert!(!first.complete);
    server.kill();
    let e = pipe.recv().unwrap_err();
    match e {
        PipeError::Disconnected { detail, .. } => {
            assert!(detail.contains("middle of a message"), "{detail}")
        }
        e => panic!("expected Disconnected, got {e}"),
    }
}

#[test]
fn a_client_killed_mid_message_leaves_the_server_serving_others() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("shm-client-dies");
    let mut server = server(&name, "message");
    let mut dying = helper("dies-mid-send", &[("PIPE", &name), ("SIDE", "client")]);
    dying.wait_for("SENDING");
    std::thread::sleep(Duration::from_millis(100));
    dying.kill();
    server.wait_for("client gone: ");
    let mut pipe = client(&name);
    pipe.send(b"still there?").unwrap();
    assert_eq!(pipe.recv().unwrap(), b"still there?");
}

#[test]
fn a_peer_that_scribbles_on_the_rings_gets_a_protocol_error_and_others_go_on() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("shm-scribble");
    scribblers_are_dropped_and_others_served(server(&name, "message"), &name);
}

/// Two scribblers on `server` (one on `tail`, one on `head`): each gets Disconnected, the
/// server names the broken protocol, and a new client is served after each.
fn scribblers_are_dropped_and_others_served(mut server: Proc, name: &str) {
    for target in ["tail", "head"] {
        let mut vandal = helper("scribbler", &[("PIPE", name), ("TARGET", target)]);
        let outcome = vandal.wait_for("OUTCOME");
        assert!(outcome.contains("Disconnected"), "{target}: {outcome}");
        // The server names the broken protocol when it drops the vandal (other clients'
        // ends, printed as Ok, may come first).
        let report = server.wait_for("shared-memory ring");
        assert!(
            report.contains("client gone: ") && report.contains("Err"),
            "{target}: {report}"
        );
        let mut pipe = client(name);
        pipe.send(b"fine").unwrap();
        assert_eq!(
            pipe.recv().unwrap(),
            b"fine",
            "after the {target} scribbler"
        );
    }
}

#[test]
fn a_python_client_that_knows_no_shared_memory_is_served_on_the_socket() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("shm-python");
    let _server = server(&name, "message");
    let path = procwire::name::Namespace::Local
        .directory(procwire::name::NameClass::Pipe)
        .unwrap()
        .join(&name);
    let script = r#"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
name = sys.argv[2].encode()
s.sendall(b"PWIR\x01\x03\x02\x00" + struct.pack(">H", len(name)) + name)
def exact(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise SystemExit("eof")
        b += c
    return b
head = exact(18)
assert head[5] == 0, head
exact(struct.unpack(">H", head[16:18])[0])
s.sendall(struct.pack(">I", 5) + b"hello")
n = struct.unpack(">I", exact(4))[0]
print(exact(n).decode())
"#;
    let out = procwire_testkit::run(
        {
            let mut cmd = std::process::Command::new("python3");
            cmd.args(["-c", script, path.to_str().unwrap(), &name]);
            cmd
        },
        b"",
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");
}

#[test]
#[ignore = "needs root: runs a client as uid 65534"]
fn another_users_client_is_refused_exactly_as_on_the_socket() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = format!(r"Global\{}", unique_name("shm-stranger"));
    let _server = server(&name, "message");
    let mut stranger = helper_as_user(65534, "stranger", &[("PIPE", &name)]);
    let outcome = stranger.wait_for("OUTCOME");
    assert!(outcome.contains("AccessDenied"), "{outcome}");
}

/// Not a test of its own: the body of the helper processes above.
#[test]
fn helper_process() {
    let Some(role) = helper_role() else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let name = var("PIPE");
    match role.as_str() {
        "echo-server" => echo_server(&name, &var("MODE")),
        "tokio-echo" => {
            let mode = if var("MODE") == "byte" {
                PipeMode::Byte
            } else {
                PipeMode::Message
            };
            tokio_api::runtime().block_on(tokio_api::tokio_echo(&name, mode));
        }
        "dies-mid-send" if var("SIDE") == "client" => {
            let mut pipe = client(&name);
            say("SENDING");
            // Blocks once the 64 KiB ring is full: the test kills us here.
            pipe.send(&vec![1u8; 8 << 20]).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
        "dies-mid-send" => {
            let mut conn = lone_server(&name);
            say("SENDING");
            conn.send(&vec![2u8; 8 << 20]).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
        "scribbler" => {
            let mut pipe = client(&name);
            pipe.send(b"hello").unwrap();
            assert_eq!(pipe.recv().unwrap(), b"hello");
            let region = shared_region();
            // Offsets of docs/protocol.md section 13: ring 0's control block at 64 (its tail
            // at +128), ring 1's at 320 (its head at +0).
            let outcome = match var("TARGET").as_str() {
                "tail" => {
                    // The server looks at ring 0's tail only when the room it last saw runs
                    // out, and this side's receives publish its true tail. So: garbage in
                    // the tail, then an answer four rings long asked for, and nothing read
                    // until the server has filled the room it knew of (three records) and
                    // had to look again.
                    region.write_at(&u64::MAX.to_le_bytes(), 64 + 128).unwrap();
                    pipe.send(&vec![7u8; 4 * RING]).unwrap();
                    let mut head = [0u8; 8];
                    loop {
                        region.read_at(&mut head, 64).unwrap();
                        if u64::from_le_bytes(head) >= 3 * (RING as u64 / 4) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                    pipe.recv().map(|m| format!("{} bytes", m.len()))
                }
                _ => {
                    region.write_at(&12_345_677u64.to_le_bytes(), 320).unwrap();
                    pipe.finish_sending().unwrap();
                    pipe.recv().map(|m| format!("{} bytes", m.len()))
                }
            };
            say(&format!("OUTCOME {outcome:?}"));
        }
        "slow-echo" => {
            let mut conn = lone_server(&name);
            let mut pauses = pauses(11);
            let end = echo_messages(&mut conn, || pause(pauses.next().unwrap()));
            say(&format!("client gone: {end:?}"));
        }
        "stranger" => {
            let outcome = ClientOptions::new()
                .shared_memory(true)
                .timeout(Duration::from_secs(5))
                .open(name.as_str());
            say(&format!("OUTCOME {:?}", outcome.map(|_| "connected")));
        }
        other => panic!("unknown role {other}"),
    }
}

/// The memory region this process got from the server, found among its descriptors.
fn shared_region() -> std::fs::File {
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let path = entry.unwrap().path();
        let target = std::fs::read_link(&path).unwrap_or_default();
        if target.to_string_lossy().starts_with("/memfd:procwire-pipe") {
            return std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
        }
    }
    panic!("no shared-memory region among this process's descriptors");
}

/// A server with the tests' ring size that says `READY` and takes one client.
fn lone_server(name: &str) -> PipeConnection {
    let server = PipeOptions::new()
        .shared_memory_ring_size(RING)
        .create(name)
        .unwrap();
    say("READY");
    server.accept().unwrap()
}

/// Sends every message back, calling `before_answer` before each, until the client goes
/// (`Ok`) or the connection fails.
fn echo_messages(conn: &mut PipeConnection, mut before_answer: impl FnMut()) -> Result<(), String> {
    loop {
        match conn.recv() {
            Ok(m) => {
                before_answer();
                conn.send(&m).map_err(|e| e.to_string())?;
            }
            Err(PipeError::Disconnected { .. }) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Serves every client on its own thread: echoes each message (byte mode: each chunk read)
/// and prints how each client ended.
fn echo_server(name: &str, mode: &str) {
    let mode = if mode == "byte" {
        PipeMode::Byte
    } else {
        PipeMode::Message
    };
    let server = PipeOptions::new()
        .mode(mode)
        .shared_memory_ring_size(RING_STR.parse().unwrap())
        .create(name)
        .unwrap();
    say("READY");
    loop {
        let mut conn = server.accept().unwrap();
        std::thread::spawn(move || {
            let end = if mode == PipeMode::Byte {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) => break conn.finish_sending().map_err(|e| e.to_string()),
                        Ok(n) => {
                            if let Err(e) = conn.write_all(&buf[..n]) {
                                break Err(e.to_string());
                            }
                        }
                        Err(e) => break Err(e.to_string()),
                    }
                }
            } else {
                echo_messages(&mut conn, || {})
            };
            say(&format!("client gone: {end:?}"));
        });
    }
}

/// The same pipes through the tokio API: tokio servers and clients with each other and
/// with the blocking API, a waiting task that leaves its runtime free, a peer killed
/// mid-message.
mod tokio_api {
    use super::*;

    fn tokio_server(name: &str, mode: &str) -> Proc {
        let mut server = helper("tokio-echo", &[("PIPE", name), ("MODE", mode)]);
        server.wait_for("READY");
        server
    }

    fn tokio_options() -> ClientOptions {
        ClientOptions::new()
            .read_mode(PipeMode::Message)
            .shared_memory(true)
            .timeout(Duration::from_secs(20))
    }

    pub(super) fn runtime() -> tokio::runtime::Runtime {
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
    fn tokio_loans_and_borrowed_receives_travel_in_place_and_fall_back_on_the_socket() {
        let _wd = Watchdog::new(Duration::from_secs(60));
        let name = unique_name("shm-tokio-loan");
        let _server = tokio_server(&name, "message");
        runtime().block_on(async {
            for shm in [true, false] {
                let mut pipe = tokio_options()
                    .shared_memory(shm)
                    .open_async(name.as_str())
                    .await
                    .unwrap();
                assert_eq!(pipe.is_shared_memory(), shm);
                for round in 0..100u8 {
                    let mut loan = pipe.loan(4096).await.unwrap();
                    loan.copy_from_slice(&pattern(4096, round));
                    loan.send().await.unwrap();
                    let received = pipe.recv_borrowed().await.unwrap();
                    assert_eq!(received.is_in_place(), shm, "round {round}");
                    assert!(*received == pattern(4096, round)[..], "round {round}");
                }
                // Longer than a quarter of the ring: through memory of its own.
                let mut loan = pipe.loan(RING).await.unwrap();
                loan.fill(7);
                loan.send().await.unwrap();
                let received = pipe.recv_borrowed().await.unwrap();
                assert!(!received.is_in_place());
                assert_eq!(received.len(), RING);
                assert!(received.iter().all(|&b| b == 7));
                drop(received);
                // A loan dropped unsent sends nothing.
                drop(pipe.loan(64).await.unwrap());
                pipe.send(b"next").await.unwrap();
                assert_eq!(pipe.recv().await.unwrap(), b"next", "shm {shm}");
                let too_large = pipe.loan((16 << 20) + 1).await;
                assert!(matches!(
                    too_large,
                    Err(procwire::pipe::PipeError::MessageTooLarge { .. })
                ));
            }
        });
    }

    #[test]
    fn tokio_batches_keep_every_message_in_order_on_both_paths() {
        let _wd = Watchdog::new(Duration::from_secs(90));
        let name = unique_name("shm-tokio-batch");
        let _server = tokio_server(&name, "message");
        let mut batch: Vec<Vec<u8>> = (0..2000).map(|i| pattern(i % 97, i as u8)).collect();
        for (i, len) in sizes().into_iter().enumerate() {
            batch.insert(i * 200, pattern(len, 200 + i as u8));
        }
        let batch = std::sync::Arc::new(batch);
        for shm in [true, false] {
            runtime().block_on(async {
                let pipe = tokio_options()
                    .shared_memory(shm)
                    .open_async(name.as_str())
                    .await
                    .unwrap();
                assert_eq!(pipe.is_shared_memory(), shm);
                let (mut rx, mut tx) = pipe.into_split();
                let count = batch.len();
                let receiving = tokio::spawn(async move {
                    let (mut got, mut calls) = (Vec::<Vec<u8>>::new(), 0);
                    while got.len() < count {
                        let handed = rx
                            .recv_many(usize::MAX, |m| got.push(m.to_vec()))
                            .await
                            .unwrap();
                        assert!(handed >= 1, "recv_many hands at least one message");
                        calls += 1;
                    }
                    (got, calls, rx)
                });
                tx.send_many(&batch[..]).await.unwrap();
                let (got, calls, mut rx) = receiving.await.unwrap();
                assert_eq!(got.len(), count, "shm {shm}: message count");
                for (i, (g, e)) in got.iter().zip(batch.iter()).enumerate() {
                    assert!(g == e, "shm {shm}: message {i} of {} bytes", e.len());
                }
                assert!(calls < count, "shm {shm}: several messages per recv_many");
                let too_large = vec![vec![0u8; 1], vec![0u8; (16 << 20) + 1]];
                let refused = tx.send_many(&too_large).await;
                assert!(
                    matches!(
                        refused,
                        Err(procwire::pipe::PipeError::MessageTooLarge { .. })
                    ),
                    "shm {shm}: an oversize message in a batch is refused first"
                );
                tx.send(b"after").await.unwrap();
                assert_eq!(rx.recv().await.unwrap(), b"after", "shm {shm}");
            });
        }
    }

    #[test]
    fn a_tokio_client_and_a_tokio_server_talk_through_shared_memory() {
        let _wd = Watchdog::new(Duration::from_secs(60));
        let name = unique_name("shm-tokio");
        let mut server = tokio_server(&name, "message");
        runtime().block_on(async {
            let mut pipe = tokio_options().open_async(name.as_str()).await.unwrap();
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
        let _server = tokio_server(&name, "message");
        let mut pipe = tokio_options().open(name.as_str()).unwrap();
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
        let _server = server(&name, "message");
        runtime().block_on(async {
            let mut pipe = tokio_options().open_async(name.as_str()).await.unwrap();
            assert!(pipe.is_shared_memory());
            echo_round_trips(&mut pipe).await;
        });
    }

    #[test]
    fn a_task_waiting_on_shared_memory_leaves_its_runtime_thread_free() {
        let _wd = Watchdog::new(Duration::from_secs(60));
        let name = unique_name("shm-tokio-idle");
        let _server = tokio_server(&name, "message");
        // One thread: if the receive spun or blocked, the ticker could not run.
        runtime().block_on(async {
            let mut pipe = tokio_options().open_async(name.as_str()).await.unwrap();
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
    fn a_peer_that_scribbles_on_a_tokio_servers_rings_is_dropped_and_others_go_on() {
        let _wd = Watchdog::new(Duration::from_secs(60));
        let name = unique_name("shm-tokio-scribble");
        scribblers_are_dropped_and_others_served(tokio_server(&name, "message"), &name);
    }

    #[test]
    fn a_tokio_client_whose_server_dies_mid_message_gets_disconnected() {
        let _wd = Watchdog::new(Duration::from_secs(60));
        let name = unique_name("shm-tokio-dies");
        let mut server = helper("dies-mid-send", &[("PIPE", &name)]);
        server.wait_for("READY");
        runtime().block_on(async {
            let mut pipe = tokio_options().open_async(name.as_str()).await.unwrap();
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
        let _server = tokio_server(&name, "byte");
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

    /// A tokio server that echoes every message (or, on a byte pipe, the stream), answering
    /// `late` after 500 ms, and prints how each client ended.
    pub(super) async fn tokio_echo(name: &str, mode: PipeMode) {
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
}
