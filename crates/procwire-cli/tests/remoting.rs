//! Remoting with real separate processes: the `procwire remoting serve` server and
//! `procwire remoting call` clients, on the tcp and pipe channels (and http with curl).

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use procwire::name::{NameClass, Namespace};
use procwire::pipe::ClientOptions;
use procwire::security::Access;
use procwire::wire::{self, PipeMode, Request, Response, Status};
use procwire_remoting::sample::SampleObjectClient;
use procwire_remoting::Proxy;
use util::{procwire, raise_open_file_limit, run, unique_name, Proc, Watchdog};

struct Server {
    proc: Proc,
    tcp: String,
    pipe: String,
    pipe_name: String,
    http: String,
}

/// Starts `procwire remoting serve` on tcp, pipe and http; returns the app URLs.
fn serve(extra: &[&str]) -> Server {
    serve_with(procwire(), extra)
}

/// As [`serve`], with `cmd` as the start of the command line (`procwire`, or a wrapper
/// such as `prlimit … procwire`).
fn serve_with(mut cmd: std::process::Command, extra: &[&str]) -> Server {
    let pipe_name = unique_name("remoting");
    cmd.args([
        "remoting", "serve", "--tcp", "0", "--http", "0", "--pipe", &pipe_name,
    ])
    .args(extra);
    let mut proc = Proc::spawn(cmd);
    let (mut tcp, mut pipe, mut http) = (String::new(), String::new(), String::new());
    loop {
        let line = proc.wait_for("");
        if line.starts_with("ready") {
            break;
        }
        let url = line
            .split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_owned();
        match url.split_once("://").map(|(s, _)| s) {
            Some("tcp") => tcp = url,
            Some("pipe") => pipe = url,
            Some("http" | "https") => http = url,
            _ => {}
        }
    }
    Server {
        proc,
        tcp,
        pipe,
        pipe_name,
        http,
    }
}

impl Server {
    fn channels(&self) -> [&str; 2] {
        [&self.tcp, &self.pipe]
    }
}

/// Runs `procwire remoting call URL METHOD ARGS EXTRA…` to the end: (success, lines).
fn call(url: &str, method: &str, args: &str, extra: &[&str]) -> (bool, Vec<String>) {
    let mut cmd = procwire();
    cmd.args(["remoting", "call", url, method, args])
        .args(extra);
    let out = run(cmd, b"", Duration::from_secs(30));
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("activated object"))
        .map(str::to_owned)
        .collect();
    (out.status.success(), lines)
}

fn spawn_call(
    url: &str,
    method: &str,
    args: &str,
    extra: &[&str],
) -> std::thread::JoinHandle<(bool, Vec<String>)> {
    let (url, method, args) = (url.to_owned(), method.to_owned(), args.to_owned());
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    std::thread::spawn(move || {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        call(&url, &method, &args, &extra)
    })
}

fn numbers(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .map(|l| l.parse().unwrap_or_else(|_| panic!("not a number: {l}")))
        .collect()
}

#[test]
fn single_call_state_never_survives_a_call() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let s = serve(&[]);
    for base in s.channels() {
        let url = format!("{base}/SingleCallService");
        let (ok, lines) = call(&url, "count", "{}", &["--repeat", "3"]);
        assert!(ok, "{lines:?}");
        assert_eq!(numbers(&lines), [1, 1, 1], "{base}");
        let (_, lines) = call(&url, "count", "{}", &[]);
        assert_eq!(numbers(&lines), [1], "{base}");
    }
}

#[test]
fn singleton_state_is_shared_by_two_client_processes() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let s = serve(&[]);
    let a = spawn_call(
        &format!("{}/SingletonService", s.tcp),
        "count",
        "{}",
        &["--repeat", "50"],
    );
    let b = spawn_call(
        &format!("{}/SingletonService", s.pipe),
        "count",
        "{}",
        &["--repeat", "50"],
    );
    let (ok_a, a) = a.join().unwrap();
    let (ok_b, b) = b.join().unwrap();
    assert!(ok_a && ok_b);
    let mut all = numbers(&a);
    all.extend(numbers(&b));
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=100).collect::<Vec<u64>>(),
        "no update lost or repeated"
    );
    for base in s.channels() {
        let (_, first) = call(&format!("{base}/SingletonService"), "count", "{}", &[]);
        let (_, second) = call(&format!("{base}/SingletonService"), "count", "{}", &[]);
        assert_eq!(numbers(&second)[0], numbers(&first)[0] + 1, "{base}");
    }
}

#[test]
fn each_client_activated_proxy_has_its_own_state() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let s = serve(&[]);
    let mut runs = Vec::new();
    for base in s.channels() {
        for name in ["a", "b"] {
            let url = format!("{base}/ClientActivatedObject");
            let ctor = format!("[\"{name}\"]");
            runs.push(spawn_call(
                &url,
                "count",
                "{}",
                &["--activate", &ctor, "--repeat", "5", "--sleep", "20ms"],
            ));
        }
    }
    for r in runs {
        let (ok, lines) = r.join().unwrap();
        assert!(ok, "{lines:?}");
        assert_eq!(numbers(&lines), [1, 2, 3, 4, 5]);
    }
    let (ok, lines) = call(
        &format!("{}/ClientActivatedObject", s.pipe),
        "hello",
        r#"{"name":"me"}"#,
        &["--activate", "[\"mine\"]"],
    );
    assert!(ok);
    assert!(
        lines[0].contains("ClientActivatedObject `mine`"),
        "{lines:?}"
    );
}

#[test]
fn unused_instances_are_dropped_while_sponsored_ones_live() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let s = serve(&["--lease", "300ms", "--renew", "300ms"]);
    let mut idle = Vec::new();
    let mut sponsored = Vec::new();
    for base in s.channels() {
        let url = format!("{base}/ClientActivatedObject");
        idle.push(spawn_call(
            &url,
            "count",
            "{}",
            &["--activate", "[\"idle\"]", "--repeat", "2", "--sleep", "1s"],
        ));
        sponsored.push(spawn_call(
            &url,
            "count",
            "{}",
            &[
                "--activate",
                "[\"kept\"]",
                "--repeat",
                "3",
                "--sleep",
                "1s",
                "--sponsor",
                "50ms",
            ],
        ));
    }
    for r in idle {
        let (ok, lines) = r.join().unwrap();
        assert!(!ok);
        assert_eq!(lines[0], "1");
        assert!(
            lines[1].starts_with("error object_disconnected:"),
            "{lines:?}"
        );
    }
    for r in sponsored {
        let (ok, lines) = r.join().unwrap();
        assert!(ok, "{lines:?}");
        assert_eq!(numbers(&lines), [1, 2, 3]);
    }
}

fn still_serves(s: &Server) {
    for base in s.channels() {
        let (ok, lines) = call(
            &format!("{base}/SingleCallService"),
            "hello",
            r#"{"name":"ok"}"#,
            &[],
        );
        assert!(ok && lines[0].contains("Hello ok"), "{base}: {lines:?}");
    }
}

/// Whether the server closed `stream` (it reads end-of-stream or an error) within 5 s.
fn closed_by_server(mut stream: TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut
            }
        }
    }
}

#[test]
fn bad_input_on_tcp_and_pipe_leaves_the_server_serving() {
    let _wd = Watchdog::new(Duration::from_secs(90));
    let s = serve(&["--max-message", "65536"]);
    let addr = s
        .tcp
        .trim_start_matches("tcp://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let preamble = *b"PWRM\x01";

    // TCP: garbage instead of the preamble.
    let mut t = TcpStream::connect(&addr).unwrap();
    t.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(closed_by_server(t));
    // TCP: an oversize frame announced.
    let mut t = TcpStream::connect(&addr).unwrap();
    t.write_all(&preamble).unwrap();
    t.write_all(&u32::MAX.to_be_bytes()).unwrap();
    assert!(closed_by_server(t));
    // TCP: a frame of garbage.
    let mut t = TcpStream::connect(&addr).unwrap();
    t.write_all(&preamble).unwrap();
    t.write_all(&8u32.to_be_bytes()).unwrap();
    t.write_all(b"\x01garbage").unwrap();
    assert!(closed_by_server(t));
    // TCP: a truncated frame, then the client goes away.
    let mut t = TcpStream::connect(&addr).unwrap();
    t.write_all(&preamble).unwrap();
    t.write_all(&100u32.to_be_bytes()).unwrap();
    t.write_all(b"\x01\x02\x03").unwrap();
    drop(t);
    still_serves(&s);

    // Pipe: a garbage message, a truncated one, and an oversize one.
    for bad in [
        b"\x01garbage".to_vec(),
        vec![1, 7, 0, 1],
        vec![0u8; 100_000],
    ] {
        let mut p = ClientOptions::new()
            .read_mode(PipeMode::Message)
            .timeout(Duration::from_secs(5))
            .open(s.pipe_name.as_str())
            .unwrap();
        let sent = p.send(&bad);
        if sent.is_ok() {
            // The server closes the connection: the next receive fails.
            assert!(p.recv().is_err(), "server kept a connection after garbage");
        }
    }
    still_serves(&s);

    // A client killed in the middle of a call, on each channel.
    for base in s.channels() {
        let mut cmd = procwire();
        cmd.args([
            "remoting",
            "call",
            &format!("{base}/SingletonService"),
            "slow",
            r#"{"ms":10000}"#,
        ]);
        let mut victim = Proc::spawn(cmd);
        std::thread::sleep(Duration::from_millis(300));
        victim.kill();
    }
    still_serves(&s);
    let (ok, lines) = call(
        &format!("{}/SingletonService", s.tcp),
        "count",
        "{}",
        &["--repeat", "2"],
    );
    assert!(ok);
    assert_eq!(numbers(&lines), [1, 2]);
    drop(s.proc);
}

#[test]
fn a_hundred_clients_make_a_hundred_calls_each() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let s = serve(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let total = rt.block_on(async {
        let mut tasks = Vec::new();
        for client in 0..100 {
            let base = if client % 2 == 0 {
                s.tcp.clone()
            } else {
                s.pipe.clone()
            };
            tasks.push(tokio::spawn(async move {
                let proxy = Proxy::connect(&format!("{base}/SingletonService"))
                    .await
                    .unwrap();
                let c = SampleObjectClient::new(proxy);
                let mut counts = Vec::new();
                for call in 0..100 {
                    if call % 2 == 0 {
                        let name = format!("c{client}-{call}");
                        let hello = c.hello(name.clone()).await.unwrap();
                        assert!(hello.starts_with(&format!("Hello {name},")), "{hello}");
                    } else {
                        counts.push(c.count().await.unwrap());
                    }
                }
                counts
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let mut sorted = total.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=5000).collect::<Vec<u64>>(),
        "every count answered once"
    );
}

#[test]
fn curl_calls_the_server_process_over_http() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let s = serve(&[]);
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-X",
            "POST",
            "-d",
            r#"{"name":"curl"}"#,
        ])
        .arg(format!("{}/SingletonService/hello", s.http))
        .output()
        .expect("curl must be installed");
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        body.as_str()
            .unwrap()
            .starts_with("Hello curl, from SingletonObject"),
        "{body}"
    );
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
            "-d",
            "{nope",
        ])
        .arg(format!("{}/SingletonService/hello", s.http))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\n400"), "{text}");
    assert!(text.contains("\"kind\":\"bad_arguments\""), "{text}");
    // `procwire remoting call http://…` goes through the same channel.
    let url = format!("{}/SingletonService", s.http);
    let (ok, lines) = call(&url, "hello", r#"{"name":"cli"}"#, &[]);
    assert!(ok && lines[0].contains("Hello cli"), "{lines:?}");
    let (ok, lines) = call(&url, "nosuch", "{}", &[]);
    assert!(!ok && lines[0].contains("unknown_method"), "{lines:?}");
}

#[test]
fn pipe_services_see_the_calling_process() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let s = serve(&[]);
    let mut cmd = procwire();
    cmd.args([
        "remoting",
        "call",
        &format!("{}/SingletonService", s.pipe),
        "caller_pid",
        "{}",
    ]);
    let mut client = Proc::spawn(cmd);
    let pid = client.pid();
    assert_eq!(
        client.line().trim(),
        pid.to_string(),
        "the kernel-verified pid of the caller"
    );
    let (ok, lines) = call(
        &format!("{}/SingletonService", s.tcp),
        "caller_pid",
        "{}",
        &[],
    );
    assert!(ok);
    assert_eq!(lines, ["null"], "tcp does not know the caller");
}

#[test]
fn tls_on_tcp_and_https_between_processes() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(unique_name("tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let private = dir.join("key.pem");
    std::fs::write(&cert, key.cert.pem()).unwrap();
    std::fs::write(&private, key.signing_key.serialize_pem()).unwrap();
    let (cert_s, key_s) = (cert.to_str().unwrap(), private.to_str().unwrap());
    let s = serve(&["--tls-cert", cert_s, "--tls-key", key_s]);
    assert!(s.http.starts_with("https://"), "{}", s.http);
    let tcp = s.tcp.replace("127.0.0.1", "localhost");
    let url = format!("{tcp}/SingletonService");
    let (ok, lines) = call(&url, "count", "{}", &["--ca", cert_s, "--repeat", "2"]);
    assert!(ok, "{lines:?}");
    assert_eq!(numbers(&lines), [1, 2]);
    // Without TLS the server only closes the connection.
    let (ok, _) = call(&url, "count", "{}", &["--deadline", "2s"]);
    assert!(!ok);
    let https = s.http.replace("127.0.0.1", "localhost");
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert", cert_s, "-X", "POST"])
        .arg(format!("{https}/SingletonService/count"))
        .output()
        .expect("curl must be installed");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
    // `procwire remoting call` speaks https too, trusting --ca.
    let url = format!("{https}/SingletonService");
    let (ok, lines) = call(&url, "count", "{}", &["--ca", cert_s]);
    assert!(ok, "{lines:?}");
    assert_eq!(numbers(&lines), [4]);
    let (ok, _) = call(&url, "count", "{}", &[]);
    assert!(!ok, "https without --ca");
    // And plain http, with the server's error as the output and a failure.
    let (ok, lines) = call(
        &format!("{}/SingletonService", s.http.replace("https", "http")),
        "count",
        "{}",
        &[],
    );
    assert!(!ok, "{lines:?}");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The address (`host:port`) of a `scheme://host:port/App` URL.
fn addr_of(url: &str) -> String {
    url.split_once("://")
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

/// The resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// One legitimate call on tcp and one with curl on http; returns how long both took.
fn legit_calls(s: &Server) -> Duration {
    let start = Instant::now();
    let (ok, lines) = call(
        &format!("{}/SingleCallService", s.tcp),
        "hello",
        r#"{"name":"ok"}"#,
        &["--deadline", "20s"],
    );
    assert!(ok && lines[0].contains("Hello ok"), "{lines:?}");
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "-d", r#"{"name":"ok"}"#])
        .arg(format!("{}/SingleCallService/hello", s.http))
        .output()
        .expect("curl must be installed");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Hello ok"),
        "{out:?}"
    );
    start.elapsed()
}

/// Issue 9, item 2: 64 clients each send 4 MiB minus 100 bytes of a 4 MiB frame and
/// stop. The server holds at most its budget of partial frames, closes them all once
/// their frame timeout ends, and serves others meanwhile.
#[test]
fn issue_9_partial_frames_are_bounded_and_time_out() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let s = serve(&["--frame-timeout", "3s", "--buffered-bytes", "16777216"]);
    let pid = s.proc.pid();
    let before = rss(pid);
    let addr = addr_of(&s.tcp);
    let frame = 4usize << 20;
    let attackers: Vec<_> = (0..64)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut t = TcpStream::connect(&addr).unwrap();
                t.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut data = b"PWRM\x01".to_vec();
                data.extend_from_slice(&(frame as u32).to_be_bytes());
                data.resize(5 + 4 + frame - 100, 1);
                // The server may stop reading (its budget is full): a write that cannot
                // finish ends when the server closes the connection.
                let _ = t.write_all(&data);
                t
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // The attack is on: a legitimate client is still served.
    let took = legit_calls(&s);
    assert!(took < Duration::from_secs(5), "served after {took:?}");
    let during = rss(pid);
    let streams: Vec<TcpStream> = attackers.into_iter().map(|a| a.join().unwrap()).collect();
    let grown = rss(pid).max(during).saturating_sub(before);
    eprintln!(
        "server grew by {} KiB during the attack; legit calls took {took:?}",
        grown / 1024
    );
    // The live partial frames stay within the 16 MiB budget (and 64 KiB per connection
    // before a frame's length is known); the allocator may keep freed pages of several
    // threads' arenas resident, so the bound asserted is looser: without the budget the
    // server grew by 256 MiB.
    assert!(grown < 128 << 20, "the server grew by {grown} bytes");
    let start = Instant::now();
    for t in streams {
        assert!(closed_by_server(t), "a partial frame kept its connection");
    }
    eprintln!("all 64 closed {:?} after the writes ended", start.elapsed());
    still_serves(&s);
}

/// Issue 9, item 2: a server limited to 512 descriptors, given 600 connections that send
/// the preamble and nothing more, backs off on EMFILE, closes idle connections to make
/// room, and serves tcp and http calls while the attack goes on and after it.
#[test]
fn issue_9_out_of_descriptors_the_server_recovers() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    // 800 connections from this process, beside the other tests' own.
    raise_open_file_limit();
    let mut cmd = std::process::Command::new("prlimit");
    cmd.args(["--nofile=512:512", env!("CARGO_BIN_EXE_procwire")]);
    let s = serve_with(cmd, &[]);
    let (tcp, http) = (addr_of(&s.tcp), addr_of(&s.http));
    let mut attack = Vec::new();
    for i in 0..600 {
        let mut t = TcpStream::connect(if i % 2 == 0 { &tcp } else { &http }).unwrap();
        if i % 2 == 0 {
            t.write_all(b"PWRM\x01").unwrap();
        }
        attack.push(t);
    }
    std::thread::sleep(Duration::from_millis(1500));
    let took = legit_calls(&s);
    eprintln!("served during the attack after {took:?}");
    assert!(took < Duration::from_secs(5), "served after {took:?}");
    // More of the same while the first wave is still open.
    for _ in 0..200 {
        if let Ok(mut t) = TcpStream::connect(&tcp) {
            let _ = t.write_all(b"PWRM\x01");
            attack.push(t);
        }
    }
    let took = legit_calls(&s);
    assert!(took < Duration::from_secs(5), "served after {took:?}");
    drop(attack);
    std::thread::sleep(Duration::from_millis(500));
    let took = legit_calls(&s);
    assert!(took < Duration::from_secs(5), "served after {took:?}");
    still_serves(&s);
}

/// Issue 9, item 4: a frame header over the maximum on the remoting pipe channel ends the
/// connection with the pipe protocol's close frame, carrying the reason.
#[test]
fn issue_9_oversize_pipe_frame_gets_a_close_frame() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let s = serve(&[]);
    let path = Namespace::Local
        .directory(NameClass::Pipe)
        .unwrap()
        .join(&s.pipe_name);
    let mut p = std::os::unix::net::UnixStream::connect(path).unwrap();
    p.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = Request {
        access: Access::ReadWrite,
        mode: PipeMode::Message,
        pipe: s.pipe_name.clone(),
        shared_memory: false,
    };
    p.write_all(&request.encode()).unwrap();
    let mut buf = vec![0u8; 18];
    p.read_exact(&mut buf).unwrap();
    buf.resize(Response::wanted_len(&buf), 0);
    p.read_exact(&mut buf[18..]).unwrap();
    let response = Response::decode(&buf).unwrap().unwrap().0;
    assert_eq!(response.status, Status::Ok, "{}", response.detail);
    p.write_all(&4194305u32.to_be_bytes()).unwrap();
    let mut header = [0u8; 4];
    p.read_exact(&mut header).unwrap();
    let word = u32::from_be_bytes(header);
    assert_ne!(
        word & wire::CLOSE_BIT,
        0,
        "the server answers with a close frame"
    );
    let mut reason = vec![0u8; (word & !wire::CLOSE_BIT) as usize];
    p.read_exact(&mut reason).unwrap();
    let reason = String::from_utf8(reason).unwrap();
    assert!(reason.contains("4194305 bytes"), "{reason}");
    still_serves(&s);
}

/// `procwire remoting serve --nats` in two processes, `procwire remoting ls nats://…`
/// sees both, and `procwire remoting call nats://…` reaches them.
#[test]
fn serve_ls_and_call_on_nats() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let nats = procwire_testkit::nats::NatsServer::start();
    let mut servers: Vec<Proc> = (0..2)
        .map(|_| {
            let mut cmd = procwire();
            cmd.args(["remoting", "serve", "--no-tcp", "--nats", &nats.url()]);
            Proc::spawn(cmd)
        })
        .collect();
    for s in &mut servers {
        s.wait_for("ready");
    }
    let mut cmd = procwire();
    cmd.args(["remoting", "ls", &nats.url()]);
    let out = run(cmd, b"", Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for service in [
        "SingleCallService",
        "SingletonService",
        "ClientActivatedObject",
    ] {
        let head = text
            .lines()
            .find(|l| l.starts_with(&format!("RemotingService/{service}\t")))
            .unwrap_or_else(|| panic!("{service} in {text}"));
        assert!(head.contains("2 instance(s)"), "{head}");
    }
    for s in &servers {
        assert!(text.contains(&format!("pid {}\t", s.pid())), "{text}");
    }
    let url = format!("{}/RemotingService/SingletonService", nats.url());
    let (ok, lines) = call(&url, "hello", r#"{"name":"nats"}"#, &[]);
    assert!(ok, "{lines:?}");
    assert!(lines[0].contains("Hello nats"), "{lines:?}");
    let url = format!("{}/RemotingService/ClientActivatedObject", nats.url());
    let (ok, lines) = call(
        &url,
        "count",
        "{}",
        &["--activate", r#"["mine"]"#, "--repeat", "3"],
    );
    assert!(ok, "{lines:?}");
    assert_eq!(&lines[lines.len() - 3..], ["1", "2", "3"], "{lines:?}");
}
