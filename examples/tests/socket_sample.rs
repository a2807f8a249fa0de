//! The socket samples (`socket_server` / `socket_client` and their `_async` twins), run as
//! separate processes on loopback: TCP over IPv4, IPv6 and dual-stack, UDP, many clients at
//! once, clients that break off, timeouts, a graceful shutdown, and socat as a client nobody
//! here wrote. Every server listens on port 0 and prints the port it got, so the tests run
//! in parallel.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use procwire_examples::sockets::{self, Request, MAX_LINE};
use procwire_testkit::{example, Proc, Watchdog};

/// How long any one test may take before its watchdog fails it.
const LIMIT: Duration = Duration::from_secs(30);

/// How long a step (a server starting, a client finishing) may take.
const STEP: Duration = Duration::from_secs(20);

/// Starts a server sample with `args` (plus `--port 0`) and returns it with the address it
/// printed.
fn start_server(name: &str, args: &[&str]) -> (Proc, SocketAddr) {
    let mut cmd = Command::new(example(name));
    cmd.args(["--port", "0"]).args(args);
    let mut proc = Proc::spawn(cmd);
    let line = proc.wait_for_within("Listening on ", STEP);
    let addr = line
        .split("Listening on ")
        .nth(1)
        .and_then(|rest| rest.split(" (").next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (proc, addr)
}

/// Runs a client sample to the end (killed after [`STEP`]).
fn client(name: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(example(name));
    cmd.args(args);
    procwire_testkit::run(cmd, b"", STEP)
}

/// A client's stdout, after asserting that it succeeded.
fn succeeded(out: &Output) -> String {
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "client failed: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    said
}

/// A client's stderr, after asserting that it failed.
fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "client succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `--host` and `--port` arguments for `addr`.
fn target(addr: SocketAddr) -> [String; 4] {
    [
        "--host".into(),
        addr.ip().to_string(),
        "--port".into(),
        addr.port().to_string(),
    ]
}

/// Runs `name` against `addr` with `extra` arguments.
fn client_to(name: &str, addr: SocketAddr, extra: &[&str]) -> Output {
    let target = target(addr);
    let mut args: Vec<&str> = target.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    client(name, &args)
}

/// Waits for the server to exit on its own and returns the rest of its output.
fn finishes(server: &mut Proc) -> String {
    let status = server
        .exit_within(STEP)
        .expect("the server exits by itself");
    let mut lines = String::new();
    while let Some(line) = server.line_timeout(Duration::from_secs(5)) {
        if line.is_empty() {
            break;
        }
        lines += &line;
    }
    assert!(
        status.success(),
        "server: {status}: {lines}{}",
        server.stderr()
    );
    lines
}

/// Sends SIGTERM to a server.
fn terminate(server: &Proc) {
    let pid = rustix::process::Pid::from_raw(server.pid() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
}

/// A raw connection of the test's own, with a read timeout so that it cannot hang.
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, STEP).unwrap();
    stream.set_read_timeout(Some(STEP)).unwrap();
    stream
}

/// Sends one request line and reads its answer line.
fn ask(stream: &mut BufReader<TcpStream>, request: &str) -> String {
    stream
        .get_mut()
        .write_all(format!("{request}\n").as_bytes())
        .unwrap();
    let mut answer = String::new();
    stream.read_line(&mut answer).unwrap();
    answer
}

/// `socat`, which the tests use as a client nobody here wrote.
fn socat() -> Command {
    let found = Command::new("socat")
        .arg("-V")
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(found, "socat must be installed (apt-get install socat)");
    Command::new("socat")
}

/// Checks, before an IPv6 test, that this machine has an IPv6 loopback at all.
fn require_ipv6_loopback() {
    if let Err(e) = std::net::TcpListener::bind("[::1]:0") {
        panic!("this machine has no IPv6 loopback (binding [::1]:0 failed: {e})");
    }
}

#[test]
fn the_line_protocol_splits_requests_by_newline() {
    assert_eq!(Request::parse(b""), Request::End);
    assert_eq!(Request::parse(b"hi\n"), Request::Line(b"hi"));
    assert_eq!(Request::parse(b"hi\r\n"), Request::Line(b"hi"));
    assert_eq!(Request::parse(b"hal"), Request::Unfinished(3));
    assert_eq!(Request::parse(&vec![b'x'; MAX_LINE + 1]), Request::TooLong);
    let mut longest = vec![b'x'; MAX_LINE];
    longest.extend_from_slice(b"\r\n");
    assert_eq!(
        Request::parse(&longest),
        Request::Line(&longest[..MAX_LINE])
    );
    assert_eq!(sockets::answer(b"hi"), b"echo: hi\n");
    assert_eq!(sockets::datagram_text(b"hi\r\n"), b"hi");
}

#[test]
fn a_tcp_client_is_answered_over_ipv4() {
    let _wd = Watchdog::new(LIMIT);
    let (mut server, addr) = start_server("socket_server", &["--clients", "1"]);
    assert!(addr.is_ipv4(), "{addr}");
    let said = succeeded(&client_to(
        "socket_client",
        addr,
        &["hello over IPv4", "and a second line"],
    ));
    assert!(said.contains(&format!("Connected to {addr}")), "{said}");
    assert!(
        said.contains("Send 16 bytes to server: \"hello over IPv4\""),
        "{said}"
    );
    assert!(
        said.contains("Receive 22 bytes from server: \"echo: hello over IPv4\""),
        "{said}"
    );
    assert!(
        said.contains("Receive 24 bytes from server: \"echo: and a second line\""),
        "{said}"
    );
    assert!(
        said.contains("The server closed the connection after 2 answer(s)."),
        "{said}"
    );
    let lines = finishes(&mut server);
    assert!(
        lines.contains("Client 1: receive 16 bytes: \"hello over IPv4\""),
        "{lines}"
    );
    assert!(
        lines.contains("Client 1 shut down its sending side after 2 request(s)."),
        "{lines}"
    );
    assert!(
        lines.contains("Server stopped after 1 client(s)."),
        "{lines}"
    );
}

#[test]
fn a_tcp_client_is_answered_over_ipv6() {
    let _wd = Watchdog::new(LIMIT);
    require_ipv6_loopback();
    let (mut server, addr) = start_server("socket_server", &["--bind", "::1", "--clients", "1"]);
    assert_eq!(addr.ip().to_string(), "::1");
    let said = succeeded(&client_to("socket_client", addr, &["hello over IPv6"]));
    assert!(said.contains(&format!("Connected to {addr}")), "{said}");
    assert!(
        said.contains("Receive 22 bytes from server: \"echo: hello over IPv6\""),
        "{said}"
    );
    let lines = finishes(&mut server);
    assert!(lines.contains("Client 1 connected from [::1]:"), "{lines}");
}

#[test]
fn a_dual_stack_server_on_the_ipv6_wildcard_takes_ipv4_clients_too() {
    let _wd = Watchdog::new(LIMIT);
    require_ipv6_loopback();
    let (mut server, addr) = start_server("socket_server", &["--bind", "::", "--clients", "2"]);
    let listening = addr.port().to_string();
    let v4 = format!("127.0.0.1:{listening}").parse().unwrap();
    let v6 = format!("[::1]:{listening}").parse().unwrap();
    let said = succeeded(&client_to("socket_client", v4, &["from IPv4"]));
    assert!(said.contains("\"echo: from IPv4\""), "{said}");
    let said = succeeded(&client_to("socket_client", v6, &["from IPv6"]));
    assert!(said.contains("\"echo: from IPv6\""), "{said}");
    let lines = finishes(&mut server);
    // An IPv4 client on a dual-stack socket shows as an IPv4-mapped IPv6 address.
    assert!(
        lines.contains("Client 1 connected from [::ffff:127.0.0.1]:"),
        "{lines}"
    );
    assert!(lines.contains("Client 2 connected from [::1]:"), "{lines}");

    // IPV6_V6ONLY (the Windows default) keeps IPv4 out.
    let (_server, addr) = start_server("socket_server", &["--bind", "::", "--ipv6-only"]);
    let v4 = format!("127.0.0.1:{}", addr.port()).parse().unwrap();
    let err = failed(&client_to("socket_client", v4, &["refused"]));
    assert!(err.contains("cannot connect to 127.0.0.1:"), "{err}");
}

#[test]
fn the_server_prints_whether_it_is_dual_stack() {
    let _wd = Watchdog::new(LIMIT);
    require_ipv6_loopback();
    let mut cmd = Command::new(example("socket_server"));
    cmd.args(["--port", "0", "--bind", "::"]);
    let mut dual = Proc::spawn(cmd);
    dual.wait_for_within("(TCP, dual-stack: IPv4 clients too)", STEP);
    dual.wait_for_within("Not on loopback: anyone who can reach this port", STEP);
    let mut cmd = Command::new(example("socket_server"));
    cmd.args(["--port", "0", "--bind", "::", "--ipv6-only", "--udp"]);
    let mut v6 = Proc::spawn(cmd);
    v6.wait_for_within("(UDP, IPv6 only)", STEP);
}

#[test]
fn the_samples_explain_their_options() {
    let _wd = Watchdog::new(LIMIT);
    for (name, option) in [
        ("socket_server", "--clients"),
        ("socket_server_async", "--ipv6-only"),
        ("socket_client", "--connect-timeout"),
        ("socket_client_async", "--udp"),
    ] {
        let said = succeeded(&client(name, &["--help"]));
        assert!(said.contains(option), "{name}: {said}");
    }
    // A duration is spelled as on the procwire command line.
    let err = failed(&client("socket_client", &["--timeout", "5"]));
    assert!(err.contains("write it as 250ms, 5s or 1m"), "{err}");
}

#[test]
fn udp_requests_are_answered_over_ipv4_and_ipv6() {
    let _wd = Watchdog::new(LIMIT);
    require_ipv6_loopback();
    for bind in ["127.0.0.1", "::1"] {
        let (mut server, addr) = start_server(
            "socket_server",
            &["--udp", "--bind", bind, "--clients", "2"],
        );
        let said = succeeded(&client_to(
            "socket_client",
            addr,
            &["--udp", "first datagram", "second datagram"],
        ));
        assert!(said.contains(&format!("Sending to {addr}")), "{said}");
        assert!(
            said.contains("Receive 21 bytes from server: \"echo: first datagram\""),
            "{said}"
        );
        assert!(
            said.contains("Receive 22 bytes from server: \"echo: second datagram\""),
            "{said}"
        );
        let lines = finishes(&mut server);
        assert!(lines.contains("\"first datagram\""), "{lines}");
        assert!(
            lines.contains("Server stopped after 2 request(s)."),
            "{lines}"
        );
    }
}

#[test]
fn a_udp_client_with_no_server_says_so() {
    let _wd = Watchdog::new(LIMIT);
    // A port that was just free: nothing listens on it.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let out = client(
        "socket_client",
        &[
            "--udp",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--timeout",
            "2s",
        ],
    );
    let err = failed(&out);
    assert!(
        err.contains("no UDP server at 127.0.0.1:") || err.contains("no answer from the server"),
        "{err}"
    );
}

#[test]
fn twenty_clients_are_served_at_once() {
    let _wd = Watchdog::new(LIMIT);
    let (mut server, addr) = start_server("socket_server", &["--clients", "40"]);
    // Twenty connections held open at the same time, each answered while the others wait:
    // a server that served one client at a time would never answer the second.
    let mut held: Vec<BufReader<TcpStream>> =
        (0..20).map(|_| BufReader::new(connect(addr))).collect();
    for (i, stream) in held.iter_mut().enumerate() {
        assert_eq!(
            ask(stream, &format!("held {i}")),
            format!("echo: held {i}\n")
        );
    }
    for stream in &mut held {
        stream.get_ref().shutdown(Shutdown::Write).unwrap();
        let mut rest = String::new();
        stream.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "");
    }
    // Twenty client processes at once, each with its own request and its own answer.
    let clients: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                (
                    i,
                    client_to(
                        "socket_client",
                        addr,
                        &[&format!("request from client {i}")],
                    ),
                )
            })
        })
        .collect();
    for handle in clients {
        let (i, out) = handle.join().unwrap();
        let said = succeeded(&out);
        assert!(
            said.contains(&format!("\"echo: request from client {i}\"")),
            "client {i}: {said}"
        );
        assert!(said.contains("after 1 answer(s)"), "client {i}: {said}");
    }
    let lines = finishes(&mut server);
    assert!(
        lines.contains("Server stopped after 40 client(s)."),
        "{lines}"
    );
}

#[test]
fn a_client_that_leaves_mid_request_does_not_stop_the_others() {
    let _wd = Watchdog::new(LIMIT);
    let (mut server, addr) = start_server("socket_server", &[]);
    // Half a line, then gone.
    let mut half = connect(addr);
    half.write_all(b"half a requ").unwrap();
    drop(half);
    server.wait_for_within("left mid-request (11 byte(s) without end of line)", STEP);
    // A full line, then gone before the answer arrives.
    let mut rude = connect(addr);
    rude.write_all(b"do not answer me\n").unwrap();
    drop(rude);
    server.wait_for_within("receive 17 bytes: \"do not answer me\"", STEP);
    // A line far longer than the protocol allows: an error line, then closed.
    let mut long = BufReader::new(connect(addr));
    long.get_mut()
        .write_all(&vec![b'x'; MAX_LINE + 100])
        .unwrap();
    let mut error = String::new();
    long.read_line(&mut error).unwrap();
    assert_eq!(
        error,
        format!("error: request line longer than {MAX_LINE} bytes\n")
    );
    server.wait_for_within("request line too long; closing.", STEP);
    // The server drains what is left until we close (it would otherwise reset the
    // connection under its error line).
    drop(long);
    // A client process killed in the middle of a line.
    let mut cmd = socat();
    cmd.args(["-", &format!("TCP:{addr}")]);
    let mut killed = Proc::spawn_with_stdin(cmd);
    server.wait_for_within("Client 4 connected from", STEP);
    let stdin = killed.stdin.as_mut().unwrap();
    stdin.write_all(b"never finish").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    killed.kill();
    server.wait_for_within("Client 4 disconnected.", STEP);
    // The server still serves.
    let said = succeeded(&client_to("socket_client", addr, &["still there?"]));
    assert!(said.contains("\"echo: still there?\""), "{said}");
    terminate(&server);
    let lines = finishes(&mut server);
    assert!(lines.contains("SIGTERM received; stopping."), "{lines}");
    assert!(
        lines.contains("Server stopped after 5 client(s)."),
        "{lines}"
    );
}

#[test]
fn sigterm_closes_the_listener_and_waits_for_the_clients_in_flight() {
    let _wd = Watchdog::new(LIMIT);
    for name in ["socket_server", "socket_server_async"] {
        let (mut server, addr) = start_server(name, &[]);
        let mut in_flight = BufReader::new(connect(addr));
        assert_eq!(ask(&mut in_flight, "first"), "echo: first\n");
        terminate(&server);
        server.wait_for_within("SIGTERM received; stopping.", STEP);
        server.wait_for_within(
            "The listener is closed; waiting for 1 client(s) in flight.",
            STEP,
        );
        // No new clients...
        let refused = TcpStream::connect_timeout(&addr, STEP);
        assert!(refused.is_err(), "{name}: the listener still accepts");
        // ...but the one in flight is still served, to its end.
        assert_eq!(ask(&mut in_flight, "second"), "echo: second\n");
        in_flight.get_ref().shutdown(Shutdown::Write).unwrap();
        let mut rest = String::new();
        in_flight.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "", "{name}");
        let lines = finishes(&mut server);
        assert!(
            lines.contains("Client 1 shut down its sending side after 2 request(s)."),
            "{name}: {lines}"
        );
        assert!(
            lines.contains("Server stopped after 1 client(s)."),
            "{name}: {lines}"
        );
    }
}

#[test]
fn the_server_drops_a_client_that_stays_silent() {
    let _wd = Watchdog::new(LIMIT);
    for name in ["socket_server", "socket_server_async"] {
        let (mut server, addr) = start_server(name, &["--timeout", "300ms", "--clients", "1"]);
        let started = Instant::now();
        let mut silent = connect(addr);
        let mut rest = Vec::new();
        silent.read_to_end(&mut rest).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300), "{name}");
        assert!(rest.is_empty(), "{name}");
        let lines = finishes(&mut server);
        assert!(
            lines.contains("Client 1: no request within 300ms; closing."),
            "{name}: {lines}"
        );
    }
}

#[test]
fn the_server_drops_a_client_that_does_not_read_its_answers() {
    let _wd = Watchdog::new(LIMIT);
    for name in ["socket_server", "socket_server_async"] {
        let (mut server, addr) = start_server(name, &["--timeout", "300ms", "--clients", "1"]);
        let stream = connect(addr);
        stream.set_write_timeout(Some(STEP)).unwrap();
        // Requests until the answers fill both socket buffers and the server's send
        // blocks; then the server gives up on us and closes.
        let mut writer = stream.try_clone().unwrap();
        let line = format!("{}\n", "x".repeat(MAX_LINE));
        let flood = std::thread::spawn(move || {
            for _ in 0..2000 {
                if writer.write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
        });
        let lines = finishes(&mut server);
        assert!(
            lines.contains("Client 1: send blocked for 300ms; closing."),
            "{name}: {lines}"
        );
        drop(stream);
        flood.join().unwrap();
    }
}

#[test]
fn a_connect_to_a_server_that_never_accepts_times_out() {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let _wd = Watchdog::new(LIMIT);
    // A listener with a backlog of 0 that nobody accepts from: once its queue holds a
    // connection, the kernel drops further SYNs and a connect waits until it gives up.
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    rustix::net::bind(&fd, &"127.0.0.1:0".parse::<SocketAddr>().unwrap()).unwrap();
    rustix::net::listen(&fd, 0).unwrap();
    let listener = std::net::TcpListener::from(fd);
    let addr = listener.local_addr().unwrap();
    let _queued: Vec<TcpStream> = (0..3)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok())
        .collect();
    for name in ["socket_client", "socket_client_async"] {
        let started = Instant::now();
        let out = client_to(
            name,
            addr,
            &["--connect-timeout", "500ms", "--timeout", "500ms"],
        );
        let err = failed(&out);
        assert!(
            err.contains(&format!("no connection to {addr} within 500ms")),
            "{name}: {err}"
        );
        assert!(started.elapsed() >= Duration::from_millis(500), "{name}");
    }
}

#[test]
fn a_client_waits_for_an_answer_no_longer_than_its_timeout() {
    let _wd = Watchdog::new(LIMIT);
    // Accepts (in the kernel's queue) but never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    for name in ["socket_client", "socket_client_async"] {
        let started = Instant::now();
        let out = client_to(name, addr, &["--timeout", "500ms", "anyone?"]);
        let err = failed(&out);
        assert!(
            err.contains("no answer from the server within 500ms (0 of 1 received)"),
            "{name}: {err}"
        );
        assert!(started.elapsed() >= Duration::from_millis(500), "{name}");
    }
}

#[test]
fn the_async_pair_serves_many_clients_over_tcp_and_udp() {
    let _wd = Watchdog::new(LIMIT);
    require_ipv6_loopback();
    let (mut server, addr) =
        start_server("socket_server_async", &["--bind", "::", "--clients", "10"]);
    let v4: SocketAddr = format!("127.0.0.1:{}", addr.port()).parse().unwrap();
    let v6: SocketAddr = format!("[::1]:{}", addr.port()).parse().unwrap();
    let clients: Vec<_> = (0..10)
        .map(|i| {
            // The async client and the blocking one, over both families.
            let name = if i % 2 == 0 {
                "socket_client_async"
            } else {
                "socket_client"
            };
            let to = if i % 3 == 0 { v4 } else { v6 };
            std::thread::spawn(move || (i, client_to(name, to, &[&format!("async {i}"), "bye"])))
        })
        .collect();
    for handle in clients {
        let (i, out) = handle.join().unwrap();
        let said = succeeded(&out);
        assert!(
            said.contains(&format!("\"echo: async {i}\"")),
            "{i}: {said}"
        );
        assert!(said.contains("after 2 answer(s)"), "{i}: {said}");
    }
    let lines = finishes(&mut server);
    assert!(
        lines.contains("Server stopped after 10 client(s)."),
        "{lines}"
    );

    let (mut server, addr) = start_server("socket_server_async", &["--udp", "--clients", "2"]);
    let said = succeeded(&client_to(
        "socket_client_async",
        addr,
        &["--udp", "one", "two"],
    ));
    assert!(
        said.contains("Receive 10 bytes from server: \"echo: two\""),
        "{said}"
    );
    let lines = finishes(&mut server);
    assert!(
        lines.contains("Server stopped after 2 request(s)."),
        "{lines}"
    );
}

#[test]
fn socat_talks_to_the_servers() {
    let _wd = Watchdog::new(LIMIT);
    for name in ["socket_server", "socket_server_async"] {
        let (mut server, addr) = start_server(name, &["--clients", "1"]);
        let mut cmd = socat();
        cmd.args(["-", &format!("TCP:{addr}")]);
        let out = procwire_testkit::run(cmd, b"from socat\nline two\r\n", STEP);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "echo: from socat\necho: line two\n",
            "{name}"
        );
        let lines = finishes(&mut server);
        assert!(
            lines.contains("shut down its sending side after 2 request(s)"),
            "{name}: {lines}"
        );

        let (mut server, addr) = start_server(name, &["--udp", "--clients", "1"]);
        let mut cmd = socat();
        // -t: how long socat waits for the answer after its input ended.
        cmd.args(["-t", "2", "-", &format!("UDP:{addr}")]);
        let out = procwire_testkit::run(cmd, b"datagram from socat\n", STEP);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "echo: datagram from socat\n",
            "{name}"
        );
        finishes(&mut server);
    }
}

#[test]
fn every_test_docs_sockets_names_exists() {
    // As crates/procwire/tests/porting_doc.rs does for docs/porting.md: the page proves what
    // it says with tests it names as `` `examples/tests/socket_sample.rs`: `a`, `b` ``.
    const PAGE: &str = include_str!("../../docs/sockets.md");
    const SOURCE: &str = include_str!("socket_sample.rs");
    let mut named = 0;
    let mut in_list = false;
    // A list may wrap onto the next line: join the page into one text first.
    let text = PAGE.replace('\n', " ");
    for (i, piece) in text.split('`').enumerate() {
        if i % 2 == 0 {
            in_list = in_list && matches!(piece.trim(), ":" | "," | "");
            continue;
        }
        if piece == "examples/tests/socket_sample.rs" {
            in_list = true;
        } else if in_list {
            assert!(
                SOURCE.contains(&format!("fn {piece}(")),
                "docs/sockets.md names `{piece}`, which socket_sample.rs does not have"
            );
            named += 1;
        }
    }
    assert!(named >= 8, "the page names {named} tests");
}
