//! Named pipes across real processes: the `procwire` binary on one side, this test process
//! (or more children) on the other.

mod util;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use procwire::name::{NameClass, Namespace};
use procwire::pipe::{ClientOptions, PipeConnection, PipeError, PipeOptions};
use procwire::security::Access;
use procwire::wire::{self, PipeMode, Request, Response, Status};
use util::{
    helper, helper_role, procwire, procwire_for_others, run, say, serve, unique_name, Proc,
    Watchdog,
};

/// The variable that names a helper's pipe.
const PIPE: &str = "PROCWIRE_TEST_PIPE";

fn message_client(name: &str) -> PipeConnection {
    ClientOptions::new()
        .read_mode(PipeMode::Message)
        .open(name)
        .expect("open the pipe")
}

#[test]
fn client_and_server_in_separate_processes_exchange_the_seed_messages() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("seed");
    let mut server = serve(
        &name,
        &["--reply", "Default response from server", "--clients", "1"],
    );
    let mut pipe = message_client(&name);
    pipe.send(b"Default request from client").unwrap();
    assert_eq!(pipe.recv().unwrap(), b"Default response from server");
    let peer = pipe
        .peer_credentials()
        .expect("a local pipe knows its peer");
    assert_eq!(peer.pid, server.pid(), "the client sees the server's pid");
    // The server saw this process as its client, by kernel-verified pid.
    let connected = server.wait_for("connected");
    assert!(
        connected.contains(&format!("client pid {} ", std::process::id())),
        "{connected}"
    );
    server.wait_for(r#"received "Default request from client""#);
}

#[test]
fn two_hundred_concurrent_clients_each_get_exactly_their_answers() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let name = Arc::new(unique_name("many"));
    let _server = serve(&name, &["--echo"]);
    let clients: Vec<_> = (0..200)
        .map(|i| {
            let name = Arc::clone(&name);
            std::thread::spawn(move || {
                let mut pipe = ClientOptions::new()
                    .read_mode(PipeMode::Message)
                    .timeout(Duration::from_secs(30))
                    .open(name.as_str())
                    .unwrap();
                for round in 0..5 {
                    let message = format!("client {i} round {round}");
                    pipe.send(message.as_bytes()).unwrap();
                    assert_eq!(pipe.recv().unwrap(), message.as_bytes());
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client failed");
    }
}

#[test]
fn messages_of_every_size_keep_their_boundaries() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("sizes");
    let _server = serve(&name, &["--echo"]);
    let mut pipe = message_client(&name);
    let sizes = [0usize, 1, 64 * 1024, 8 << 20, 0, 3];
    let messages: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| (i * 31 + j * 7) as u8).collect())
        .collect();
    // All sent before any is read back: boundaries must survive queuing in both directions.
    let mut writer = pipe.try_clone().unwrap();
    let expected = messages.clone();
    let sender = std::thread::spawn(move || {
        for m in &expected {
            writer.send(m).unwrap();
        }
    });
    for m in &messages {
        let got = pipe.recv().unwrap();
        assert_eq!(got.len(), m.len());
        assert!(
            got == *m,
            "a message of {} bytes came back changed",
            m.len()
        );
    }
    sender.join().unwrap();
}

#[test]
fn a_message_longer_than_the_buffer_arrives_in_parts_without_loss() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("more-data");
    let _server = serve(&name, &["--echo"]);
    let mut pipe = message_client(&name);
    let message: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    pipe.send(&message).unwrap();
    pipe.send(b"next").unwrap();
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    let mut parts = 0;
    loop {
        let part = pipe.recv_into(&mut buf).unwrap();
        got.extend_from_slice(&buf[..part.len]);
        parts += 1;
        if part.complete {
            break;
        }
    }
    assert_eq!(parts, 3);
    assert_eq!(got, message);
    assert_eq!(pipe.recv().unwrap(), b"next", "the next message is intact");
}

#[test]
fn byte_mode_is_a_plain_stream_through_the_cli() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("bytes");
    let _server = serve(&name, &["--echo", "--mode", "byte"]);
    let input = b"line one\nline two\n".repeat(1000);
    let mut cmd = procwire();
    cmd.args(["pipe", "connect", &name, "--mode", "byte"]);
    let out = run(cmd, &input, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, input);

    // Message read mode on a byte-type pipe is refused with a clear error.
    let e = ClientOptions::new()
        .read_mode(PipeMode::Message)
        .open(name.as_str())
        .unwrap_err();
    assert!(matches!(e, PipeError::ModeMismatch { .. }), "{e}");
}

#[test]
fn message_mode_cli_client_works_in_a_shell_pipeline() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("cli");
    let _server = serve(&name, &["--echo"]);
    let mut cmd = procwire();
    cmd.args(["pipe", "connect", &name]);
    let out = run(cmd, b"alpha\nbeta\n\ngamma\n", Duration::from_secs(20));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "alpha\nbeta\n\ngamma\n"
    );
}

#[test]
fn busy_pipe_makes_a_client_wait_then_lets_it_in() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("busy");
    let _server = serve(&name, &["--echo", "--max-instances", "1"]);
    let first = message_client(&name);

    let started = Instant::now();
    let e = ClientOptions::new()
        .timeout(Duration::from_millis(300))
        .open(name.as_str())
        .unwrap_err();
    assert!(
        matches!(
            e,
            PipeError::Busy {
                in_use: 1,
                max: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "gave up early"
    );
    assert!(e.to_string().contains("1 of 1 instances in use"), "{e}");

    let waiter = {
        let name = name.clone();
        std::thread::spawn(move || {
            let mut pipe = ClientOptions::new()
                .read_mode(PipeMode::Message)
                .timeout(Duration::from_secs(10))
                .open(name.as_str())
                .unwrap();
            pipe.send(b"finally").unwrap();
            pipe.recv().unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    drop(first);
    assert_eq!(waiter.join().unwrap(), b"finally");
}

#[test]
fn a_live_name_cannot_be_taken_and_a_dead_one_is_reclaimed() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("owner");
    let mut first = serve(&name, &["--echo"]);
    let mut cmd = procwire();
    cmd.args(["pipe", "serve", &name]);
    let out = run(cmd, b"", Duration::from_secs(10));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already exists"), "{err}");

    // SIGKILL leaves the socket file behind; the next server reclaims it.
    first.kill();
    let path = Namespace::Local
        .directory(NameClass::Pipe)
        .unwrap()
        .join(&name);
    assert!(path.exists(), "a killed server leaves its socket file");
    let e = ClientOptions::new().open(name.as_str()).unwrap_err();
    assert!(
        matches!(&e, PipeError::NotFound { detail, .. } if detail.contains("server is gone")),
        "{e}"
    );
    let _second = serve(&name, &["--echo"]);
    let mut pipe = message_client(&name);
    pipe.send(b"after restart").unwrap();
    assert_eq!(pipe.recv().unwrap(), b"after restart");
}

/// Connects a raw socket and completes a handshake by hand.
fn raw_client(name: &str) -> UnixStream {
    let path = Namespace::Local
        .directory(NameClass::Pipe)
        .unwrap()
        .join(name);
    let mut s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = Request {
        access: Access::ReadWrite,
        mode: PipeMode::Message,
        pipe: name.to_owned(),
        shared_memory: false,
    };
    s.write_all(&request.encode()).unwrap();
    let response = read_response(&mut s);
    assert_eq!(response.status, Status::Ok, "{}", response.detail);
    s
}

fn read_response(s: &mut UnixStream) -> Response {
    let mut buf = vec![0u8; 18];
    s.read_exact(&mut buf).unwrap();
    let len = Response::wanted_len(&buf);
    buf.resize(len, 0);
    s.read_exact(&mut buf[18..]).unwrap();
    Response::decode(&buf).unwrap().unwrap().0
}

fn assert_still_serving(name: &str) {
    let mut pipe = message_client(name);
    pipe.send(b"still there?").unwrap();
    assert_eq!(pipe.recv().unwrap(), b"still there?");
}

#[test]
fn garbage_handshake_gets_a_bad_request_answer_and_others_go_on() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("garbage");
    let _server = serve(&name, &["--echo"]);
    let path = Namespace::Local
        .directory(NameClass::Pipe)
        .unwrap()
        .join(&name);
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let response = read_response(&mut s);
    assert_eq!(response.status, Status::BadRequest);
    assert!(response.detail.contains("magic"), "{}", response.detail);

    // A silent client does not hold up anyone else.
    let _silent = UnixStream::connect(&path).unwrap();
    assert_still_serving(&name);
}

#[test]
fn truncated_frame_ends_in_a_clear_error_and_others_go_on() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("truncated");
    let mut server = serve(&name, &["--echo"]);
    let mut s = raw_client(&name);
    s.write_all(&100u32.to_be_bytes()).unwrap();
    s.write_all(&[7u8; 10]).unwrap();
    drop(s);
    let line = server.wait_for("disconnected");
    assert!(
        line.contains("middle of a message (10 of 100 bytes"),
        "{line}"
    );
    assert_still_serving(&name);
}

#[test]
fn oversize_frame_is_refused_with_a_reason_and_others_go_on() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("oversize");
    let mut server = serve(&name, &["--echo", "--max-message", "1024"]);
    let mut s = raw_client(&name);
    s.write_all(&2000u32.to_be_bytes()).unwrap();
    let mut header = [0u8; 4];
    s.read_exact(&mut header).unwrap();
    let word = u32::from_be_bytes(header);
    assert_ne!(
        word & wire::CLOSE_BIT,
        0,
        "the server answers with a close frame"
    );
    let mut reason = vec![0u8; (word & !wire::CLOSE_BIT) as usize];
    s.read_exact(&mut reason).unwrap();
    let reason = String::from_utf8(reason).unwrap();
    assert!(
        reason.contains("2000 bytes") && reason.contains("1024"),
        "{reason}"
    );
    server.wait_for("larger than the maximum of 1024 bytes");

    // Our own client refuses to send it at all, and hands the error back at once.
    let mut pipe = message_client(&name);
    let e = pipe.send(&[0u8; 2000]).unwrap_err();
    assert!(
        matches!(
            e,
            PipeError::MessageTooLarge {
                len: 2000,
                max: 1024,
                ..
            }
        ),
        "{e}"
    );
    pipe.send(b"small").unwrap();
    assert_eq!(pipe.recv().unwrap(), b"small");
}

/// Not a test of its own: the body of the helper processes above. Without a role it does
/// nothing.
#[test]
fn helper_process() {
    let Some(role) = helper_role() else {
        return;
    };
    let name = std::env::var(PIPE).unwrap();
    match role.as_str() {
        "client-dies-mid-message" => {
            let mut s = raw_client(&name);
            s.write_all(&(1u32 << 20).to_be_bytes()).unwrap();
            s.write_all(&[1u8; 1000]).unwrap();
            say("READY");
            std::thread::sleep(Duration::from_secs(60));
        }
        "server-dies-mid-message" => {
            let server = PipeOptions::new().create(name.as_str()).unwrap();
            say("READY");
            let mut client = server.accept().unwrap();
            say("SENDING");
            // Blocks once the socket buffers are full: the test kills us here.
            client.send(&vec![3u8; 8 << 20]).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn a_server_killed_mid_message_gives_the_client_a_clear_error() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("server-dies");
    let mut server = helper("server-dies-mid-message", &[(PIPE, &name)]);
    server.wait_for("READY");
    let mut pipe = message_client(&name);
    server.wait_for("SENDING");
    std::thread::sleep(Duration::from_millis(300));
    server.kill();
    let e = pipe.recv().unwrap_err();
    assert!(
        matches!(&e, PipeError::Disconnected { detail, .. }
            if detail.contains("middle of a message") && detail.contains("of 8388608 bytes")),
        "{e}"
    );
    // The dead server's name is free again.
    let _next = serve(&name, &["--echo"]);
    assert_still_serving(&name);
}

#[test]
fn a_client_killed_mid_message_leaves_the_server_serving() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("client-dies");
    let mut server = serve(&name, &["--echo"]);
    let mut client = helper("client-dies-mid-message", &[(PIPE, &name)]);
    client.wait_for("READY");
    client.kill();
    let line = server.wait_for("disconnected");
    assert!(
        line.contains("middle of a message (1000 of 1048576 bytes"),
        "{line}"
    );
    assert_still_serving(&name);
}

#[test]
#[ignore = "needs root: drops to `nobody`"]
fn access_is_checked_against_a_client_of_another_user() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let as_nobody = |name: &str, access: &str| {
        use std::os::unix::process::CommandExt;
        let mut cmd = procwire_for_others();
        cmd.args([
            "pipe",
            "connect",
            name,
            "--access",
            access,
            "--timeout",
            "5s",
        ])
        .uid(65534)
        .gid(65534);
        let started = Instant::now();
        let out = run(cmd, b"hello from nobody\n", Duration::from_secs(20));
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "it must not hang"
        );
        out
    };
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();

    // Owner only (the default): refused.
    let name = format!(r"Global\{}", unique_name("acl-default"));
    let _s1 = serve(&name, &["--echo"]);
    let out = as_nobody(&name, "duplex");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("access to pipe"), "{}", stderr(&out));
    assert!(stderr(&out).contains("uid 65534"), "{}", stderr(&out));

    // Everyone read-write: let in, and served.
    let name = format!(r"Global\{}", unique_name("acl-rw"));
    let mut s2 = serve(&name, &["--echo", "--everyone", "readwrite"]);
    let out = as_nobody(&name, "duplex");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from nobody\n");
    s2.wait_for("uid 65534 connected");

    // Everyone read: write access refused, read access let in.
    let name = format!(r"Global\{}", unique_name("acl-read"));
    let _s3 = serve(&name, &["--send", "news", "--everyone", "read"]);
    let out = as_nobody(&name, "duplex");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("asked for read-write access but is granted only read"),
        "{}",
        stderr(&out)
    );
    let out = as_nobody(&name, "read");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "news\n");
}

#[test]
fn pipes_reach_across_tcp_on_loopback() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("tcp");
    let mut cmd = procwire();
    cmd.args(["pipe", "serve", &name, "--echo", "--tcp", "127.0.0.1:0"]);
    let mut server = Proc::spawn(cmd);
    let line = server.wait_for("listening on");
    let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
    let remote = format!(r"\\{addr}\pipe\{name}");
    let mut pipe = message_client(&remote);
    assert_eq!(
        pipe.peer_credentials(),
        None,
        "TCP peers have no credentials"
    );
    pipe.send(b"over tcp").unwrap();
    assert_eq!(pipe.recv().unwrap(), b"over tcp");
    let big = vec![5u8; 3 << 20];
    pipe.send(&big).unwrap();
    assert!(pipe.recv().unwrap() == big);

    let wrong = format!(r"\\{addr}\pipe\no-such-{name}");
    let e = ClientOptions::new().open(wrong.as_str()).unwrap_err();
    assert!(matches!(e, PipeError::NotFound { .. }), "{e}");

    let mut cmd = procwire();
    cmd.args(["pipe", "serve", &unique_name("open"), "--tcp", "0.0.0.0:0"]);
    let out = run(cmd, b"", Duration::from_secs(10));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("allow_plaintext_network"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pipes_reach_across_tcp_over_tls_and_plaintext_is_refused() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(unique_name("pipe-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, private) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, key.cert.pem()).unwrap();
    std::fs::write(&private, key.signing_key.serialize_pem()).unwrap();
    let name = unique_name("tls");
    let mut cmd = procwire();
    // With TLS, a listener may use any address without the plaintext opt-out.
    cmd.args(["pipe", "serve", &name, "--echo", "--tcp", "0.0.0.0:0"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&private);
    let mut server = Proc::spawn(cmd);
    let line = server.wait_for("listening on");
    let port = line.trim().rsplit(':').next().unwrap().to_owned();
    let remote = format!(r"\\localhost:{port}\pipe\{name}");

    // The library client, trusting the test's certificate.
    let mut roots = procwire::rustls::RootCertStore::empty();
    roots.add(key.cert.der().clone()).unwrap();
    let config = procwire::rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        procwire::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut pipe = ClientOptions::new()
        .read_mode(PipeMode::Message)
        .tls(std::sync::Arc::new(config))
        .open(remote.as_str())
        .unwrap();
    pipe.send(b"over tls").unwrap();
    assert_eq!(pipe.recv().unwrap(), b"over tls");
    // Both directions at once, through two handles of one connection.
    let big: Vec<u8> = (0..(3usize << 20)).map(|i| (i % 253) as u8).collect();
    let mut writer = pipe.try_clone().unwrap();
    let sent = big.clone();
    let sender = std::thread::spawn(move || {
        for _ in 0..3 {
            writer.send(&sent).unwrap();
        }
    });
    for _ in 0..3 {
        assert!(
            pipe.recv().unwrap() == big,
            "a 3 MiB message came back changed"
        );
    }
    sender.join().unwrap();

    // The CLI client with --ca.
    let mut cmd = procwire();
    cmd.args(["pipe", "connect", &remote, "--ca"]).arg(&cert);
    let out = run(cmd, b"through the cli\n", Duration::from_secs(20));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through the cli\n");

    // A plaintext client gets a clear error, never a hang, and the server goes on.
    let e = ClientOptions::new()
        .timeout(Duration::from_secs(3))
        .open(remote.as_str())
        .unwrap_err();
    assert!(
        matches!(
            e,
            PipeError::Protocol { .. } | PipeError::Disconnected { .. } | PipeError::Timeout { .. }
        ),
        "{e}"
    );
    let mut again = ClientOptions::new()
        .read_mode(PipeMode::Message)
        .tls(std::sync::Arc::new(
            procwire::rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                procwire::rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates({
                let mut roots = procwire::rustls::RootCertStore::empty();
                roots.add(key.cert.der().clone()).unwrap();
                roots
            })
            .with_no_client_auth(),
        ))
        .open(remote.as_str())
        .unwrap();
    again.send(b"still serving").unwrap();
    assert_eq!(again.recv().unwrap(), b"still serving");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 9, item 5: `procwire pipe connect` whose server dies while the client's standard
/// input is still open (`(echo hi; sleep 600) | procwire pipe connect S`) exits, with an
/// error that says so, instead of waiting for ever on standard input.
#[test]
fn regression_9_connect_exits_when_its_server_is_killed_while_stdin_is_open() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    for mode in ["message", "byte"] {
        let name = unique_name("connect-server-dies");
        let mut server = serve(&name, &["--echo", "--mode", mode]);
        let mut cmd = procwire();
        cmd.args(["pipe", "connect", &name, "--mode", mode]);
        let mut client = Proc::spawn_with_stdin(cmd);
        client.stdin.as_mut().unwrap().write_all(b"hi\n").unwrap();
        client.wait_for_within("hi", Duration::from_secs(10));
        server.kill();
        let status = client
            .exit_within(Duration::from_secs(5))
            .unwrap_or_else(|| {
                panic!("{mode}: the client is still running 5 s after its server died")
            });
        let err = client.stderr();
        assert_eq!(status.code(), Some(1), "{mode}: {err}");
        assert!(
            err.contains("disconnected") && err.contains("the server closed the connection"),
            "{mode}: {err}"
        );
    }
}

/// The other side of the regression above: when standard input ends first, the client
/// half-closes, the server closes in turn, and the client exits 0 with every answer.
#[test]
fn connect_whose_input_ends_first_exits_cleanly_with_every_answer() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("connect-input-ends");
    let _server = serve(&name, &["--echo"]);
    for _ in 0..20 {
        let mut cmd = procwire();
        cmd.args(["pipe", "connect", &name]);
        let out = run(cmd, b"one\ntwo\n", Duration::from_secs(10));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"one\ntwo\n");
    }
}

#[test]
fn pipe_call_prints_the_answer_on_the_socket_and_on_shared_memory() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("cli-call");
    let _server = serve(&name, &["--echo", "--shm"]);
    let big = "x".repeat(64 << 10);
    for message in ["hello", "", big.as_str()] {
        for shm in [false, true] {
            let mut cmd = procwire();
            cmd.args(["pipe", "call", &name, message, "--timeout", "20s"]);
            if shm {
                cmd.arg("--shm");
            }
            let out = run(cmd, b"", Duration::from_secs(30));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.stdout, format!("{message}\n").as_bytes(), "shm {shm}");
        }
    }
}

#[test]
fn pipe_call_to_nobody_fails_with_a_message_and_an_exit_code() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("cli-call-nobody");
    let mut cmd = procwire();
    cmd.args(["pipe", "call", &name, "hello", "--timeout", "100ms"]);
    let out = run(cmd, b"", Duration::from_secs(10));
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no pipe named"), "{err}");
}
