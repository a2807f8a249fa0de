//! The HTTP channel, spoken to by curl (a tool nobody here wrote) and by raw sockets.

use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use procwire_remoting::{remote, RegistryBuilder, RemoteError, RemotingServer, TcpChannel};

#[remote]
trait Calc {
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn next(&self) -> u64;
    async fn divide(&self, a: i64, b: i64) -> Result<i64, RemoteError>;
}

#[derive(Default)]
struct Impl(AtomicU64);

impl Calc for Impl {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
    async fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    async fn divide(&self, a: i64, b: i64) -> Result<i64, RemoteError> {
        a.checked_div(b)
            .ok_or_else(|| RemoteError::application("division by zero"))
    }
}

struct Running {
    _rt: tokio::runtime::Runtime,
    _listener: procwire_remoting::Listener,
    base: String,
}

fn start() -> Running {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let registry = RegistryBuilder::new("RemotingService")
        .client_activated(
            "ClientActivatedObject",
            procwire_remoting::Lease::default(),
            |(start,): (u64,)| Ok(CalcServer::new(Impl(AtomicU64::new(start)))),
        )
        .singleton("SingletonService", || CalcServer::new(Impl::default()))
        .single_call("SingleCallService", || CalcServer::new(Impl::default()))
        .build();
    let server = RemotingServer::new(registry);
    let listener = rt
        .block_on(async { server.listen_http(TcpChannel::loopback(0)) })
        .unwrap();
    let base = listener.local().to_owned();
    Running {
        _rt: rt,
        _listener: listener,
        base,
    }
}

/// Runs curl; returns (status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl must be installed (apt-get install curl)");
    assert!(out.status.success(), "curl failed: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_owned())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn curl_calls_a_method_and_gets_json() {
    let r = start();
    let url = format!("{}/RemotingService/SingletonService/add", r.base);
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"a": 40, "b": 2}"#,
        &url,
    ]);
    assert_eq!((status, json(&body)), (200, serde_json::json!(42)));
    let next = format!("{}/RemotingService/SingletonService/next", r.base);
    let (_, one) = curl(&["-X", "POST", &next]);
    let (_, two) = curl(&["-X", "POST", "-d", "{}", &next]);
    assert_eq!(
        (json(&one), json(&two)),
        (serde_json::json!(1), serde_json::json!(2))
    );
    let single = format!("{}/RemotingService/SingleCallService/next", r.base);
    let (_, a) = curl(&["-X", "POST", &single]);
    let (_, b) = curl(&["-X", "POST", &single]);
    assert_eq!(
        (json(&a), json(&b)),
        (serde_json::json!(1), serde_json::json!(1))
    );
}

#[test]
fn curl_lists_the_application() {
    let r = start();
    let (status, body) = curl(&[&format!("{}/RemotingService", r.base)]);
    assert_eq!(status, 200);
    let v = json(&body);
    assert_eq!(v["application"], "RemotingService");
    let services = v["services"].as_array().unwrap();
    let singleton = services
        .iter()
        .find(|s| s["uri"] == "SingletonService")
        .unwrap();
    assert_eq!(singleton["mode"], "Singleton");
    let add = singleton["interface"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "add")
        .unwrap();
    assert_eq!(
        add["args"][0],
        serde_json::json!({"name": "a", "type": "i64"})
    );
    assert_eq!(add["returns"], "i64");
}

#[test]
fn curl_gets_4xx_with_a_json_error_body() {
    let r = start();
    let cases = [
        (
            "RemotingService/NoSuchService/add",
            r#"{"a":1,"b":2}"#,
            404,
            "unknown_service",
        ),
        (
            "NoSuchApp/SingletonService/add",
            r#"{"a":1,"b":2}"#,
            404,
            "unknown_service",
        ),
        (
            "RemotingService/SingletonService/nosuch",
            "{}",
            404,
            "unknown_method",
        ),
        (
            "RemotingService/SingletonService/add",
            r#"{"a":1,"#,
            400,
            "bad_arguments",
        ),
        (
            "RemotingService/SingletonService/add",
            r#"{"a":"x","b":2}"#,
            400,
            "bad_arguments",
        ),
        (
            "RemotingService/SingletonService/add",
            r#"{"a":1,"b":2,"c":3}"#,
            400,
            "bad_arguments",
        ),
        (
            "RemotingService/SingletonService/add",
            r#"{"a":1}"#,
            400,
            "bad_arguments",
        ),
        (
            "RemotingService/SingletonService/divide",
            r#"{"a":1,"b":0}"#,
            500,
            "application",
        ),
    ];
    for (path, data, want, kind) in cases {
        let (status, body) = curl(&["-X", "POST", "-d", data, &format!("{}/{path}", r.base)]);
        assert_eq!(status, want, "{path} {data}: {body}");
        let v = json(&body);
        assert_eq!(v["error"]["kind"], kind, "{body}");
        assert!(v["error"]["message"].as_str().unwrap().len() > 3);
    }
    let (status, body) = curl(&["-X", "DELETE", &format!("{}/RemotingService", r.base)]);
    assert_eq!(status, 405);
    json(&body);
}

#[test]
fn raw_garbage_gets_400_and_the_server_goes_on() {
    let r = start();
    let addr = r.base.trim_start_matches("http://").to_owned();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"\x00\x01garbage\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // A huge body is refused before it is read.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(
        b"POST /RemotingService/SingletonService/add HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Keep-alive: two requests on one connection.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    let req = "POST /RemotingService/SingletonService/add HTTP/1.1\r\nContent-Length: 13\r\n\r\n{\"a\":1,\"b\":2}";
    s.write_all(format!("{req}{req}").as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while got.windows(2).filter(|w| w == b"\n3").count() < 2 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let (status, _) = curl(&[
        "-X",
        "POST",
        "-d",
        r#"{"a":2,"b":2}"#,
        &format!("{}/RemotingService/SingletonService/add", r.base),
    ]);
    assert_eq!(status, 200);
}

#[test]
fn curl_activates_and_calls_a_client_activated_object() {
    let r = start();
    let url = format!("{}/RemotingService/ClientActivatedObject", r.base);
    let (status, body) = curl(&["-X", "POST", "-d", "[0]", &url]);
    assert_eq!(status, 200, "{body}");
    let id = json(&body)["object"].as_str().unwrap().to_owned();
    let (status, body) = curl(&["-X", "POST", &url]);
    assert_eq!(status, 400, "a missing constructor argument: {body}");
    let (_, other) = curl(&["-X", "POST", "-d", "[10]", &url]);
    let other = json(&other)["object"].as_str().unwrap().to_owned();
    let next = |id: &str| {
        let (status, body) = curl(&["-X", "POST", &format!("{url}/next?object={id}")]);
        assert_eq!(status, 200, "{body}");
        json(&body)
    };
    assert_eq!(next(&id), serde_json::json!(1));
    assert_eq!(next(&id), serde_json::json!(2));
    assert_eq!(
        next(&other),
        serde_json::json!(11),
        "each instance has its own state"
    );
    let (status, body) = curl(&["-X", "POST", &format!("{url}/next?object=1234")]);
    assert_eq!(
        (status, json(&body)["error"]["kind"].as_str()),
        (410, Some("object_disconnected"))
    );
}

/// Sends `request` on a fresh connection and reads the whole answer (the server closes).
fn raw(base: &str, request: &[u8]) -> String {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

const ADD: &str =
    "POST /RemotingService/SingletonService/add HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";

/// Issue 9, item 3: ambiguous or malformed `Content-Length` is a request-smuggling risk
/// behind a proxy; RFC 9112 requires 400.
#[test]
fn issue_9_ambiguous_content_length_is_400() {
    let r = start();
    let body = r#"{"a":1,"b":2}"#;
    for head in [
        "Content-Length: 13\r\nContent-Length: 14\r\n".to_owned(),
        "Content-Length : 13\r\n".to_owned(),
        "Content-Length: +13\r\n".to_owned(),
        "Content-Length: 13\r\nTransfer-Encoding: chunked\r\n".to_owned(),
    ] {
        let answer = raw(&r.base, format!("{ADD}{head}\r\n{body}").as_bytes());
        assert!(answer.starts_with("HTTP/1.1 400"), "{head:?}: {answer}");
    }
    let answer = raw(
        &r.base,
        format!("{ADD}Content-Length: 13\r\n\r\n{body}").as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Issue 9, item 3: a head over 16 KiB sent in one write is answered 431; one under it is
/// served.
#[test]
fn issue_9_heads_over_16_kib_get_431() {
    let r = start();
    let body = r#"{"a":1,"b":2}"#;
    let big = format!("X-Filler: {}\r\n", "a".repeat(20 * 1024));
    let answer = raw(
        &r.base,
        format!("{ADD}{big}Content-Length: 13\r\n\r\n{body}").as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let fits = format!("X-Filler: {}\r\n", "a".repeat(12 * 1024));
    let answer = raw(
        &r.base,
        format!("{ADD}{fits}Content-Length: 13\r\n\r\n{body}").as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Issue 9, item 3: `Expect: 100-continue` is answered before the body is sent, so curl
/// does not wait; chunked bodies are read.
#[test]
fn issue_9_expect_continue_and_chunked_bodies() {
    let r = start();
    let addr = r.base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let body = r#"{"a":40,"b":2}"#;
    s.write_all(format!("{ADD}Expect: 100-continue\r\nContent-Length: 14\r\n\r\n").as_bytes())
        .unwrap();
    let mut first = [0u8; 25];
    s.read_exact(&mut first).unwrap();
    assert!(
        first.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&first)
    );
    s.write_all(body.as_bytes()).unwrap();
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    assert!(rest.contains("200 OK") && rest.ends_with("42"), "{rest}");

    // curl sends Expect: 100-continue for bodies over 1 KiB.
    let padded = format!(r#"{{"a":1,"b":2{}}}"#, " ".repeat(2048));
    let url = format!("{}/RemotingService/SingletonService/add", r.base);
    let (status, body) = curl(&["-X", "POST", "-d", &padded, &url]);
    assert_eq!((status, body.as_str()), (200, "3"));
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-H",
        "Transfer-Encoding: chunked",
        "-d",
        r#"{"a":5,"b":5}"#,
        &url,
    ]);
    assert_eq!((status, body.as_str()), (200, "10"));
    // HTTP/2 comes with hyper.
    let (status, body) = curl(&[
        "--http2-prior-knowledge",
        "-X",
        "POST",
        "-d",
        r#"{"a":2,"b":3}"#,
        &url,
    ]);
    assert_eq!((status, body.as_str()), (200, "5"));
}

/// Issue 9, item 3: GET on a method path is 405 with an `Allow` header, as documented.
#[test]
fn issue_9_wrong_method_is_405_with_allow() {
    let r = start();
    let answer = raw(
        &r.base,
        b"GET /RemotingService/SingletonService/add HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("allow: post"),
        "{answer}"
    );
    let answer = raw(
        &r.base,
        b"POST /RemotingService HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("allow: get"),
        "{answer}"
    );
    let (status, body) = curl(&[&format!("{}/RemotingService/Nope/a/b", r.base)]);
    assert_eq!(status, 404, "{body}");
}

/// Issue 9, item 2 on http: a head or a body that stops half-way is given up after the
/// frame timeout, and others are served meanwhile.
#[test]
fn issue_9_slow_heads_and_bodies_time_out() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let registry = RegistryBuilder::new("RemotingService")
        .singleton("SingletonService", || CalcServer::new(Impl::default()))
        .build();
    let limits = procwire_remoting::server::Limits::new()
        .frame_timeout(std::time::Duration::from_millis(500));
    let server = RemotingServer::with_options(registry, limits);
    let listener = rt
        .block_on(async { server.listen_http(TcpChannel::loopback(0)) })
        .unwrap();
    let base = listener.local().to_owned();
    let addr = base.trim_start_matches("http://").to_owned();
    let start = std::time::Instant::now();
    let mut head = std::net::TcpStream::connect(&addr).unwrap();
    head.write_all(b"POST /RemotingService/SingletonService/add HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut body = std::net::TcpStream::connect(&addr).unwrap();
    body.write_all(format!("{ADD}Content-Length: 13\r\n\r\n{{\"a\":").as_bytes())
        .unwrap();
    let (status, _) = curl(&[
        "-X",
        "POST",
        "-d",
        r#"{"a":1,"b":2}"#,
        &format!("{base}/RemotingService/SingletonService/add"),
    ]);
    assert_eq!(status, 200, "served while two requests stall");
    for (what, mut s) in [("head", head), ("body", body)] {
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut answer = String::new();
        let read = s.read_to_string(&mut answer);
        assert!(
            read.is_ok(),
            "the server closed the stalled {what}: {read:?}"
        );
        if what == "body" {
            assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        }
    }
    assert!(start.elapsed() >= std::time::Duration::from_millis(500));
}

/// Issue 9, item 2 on http: large bodies share the server's budget of partial messages.
/// One that stalls holds its room only until its frame timeout; a small call never waits.
#[test]
fn issue_9_large_bodies_share_a_budget() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let registry = RegistryBuilder::new("RemotingService")
        .singleton("SingletonService", || CalcServer::new(Impl::default()))
        .build();
    let limits = procwire_remoting::server::Limits::new()
        .max_message(1 << 20)
        .buffered_bytes(1 << 20)
        .frame_timeout(std::time::Duration::from_millis(1500));
    let server = RemotingServer::with_options(registry, limits);
    let listener = rt
        .block_on(async { server.listen_http(TcpChannel::loopback(0)) })
        .unwrap();
    let base = listener.local().to_owned();
    let addr = base.trim_start_matches("http://").to_owned();
    let url = format!("{base}/RemotingService/SingletonService/add");
    // The whole budget, taken by a body that stops half-way.
    let mut stall = std::net::TcpStream::connect(&addr).unwrap();
    stall
        .write_all(format!("{ADD}Content-Length: {}\r\n\r\n{{", 1 << 20).as_bytes())
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let small = std::time::Instant::now();
    let (status, _) = curl(&["-X", "POST", "-d", r#"{"a":1,"b":2}"#, &url]);
    assert_eq!(status, 200);
    eprintln!("a small call during the stall took {:?}", small.elapsed());
    // A large body waits for the room.
    let big = format!(r#"{{"a":1,"b":2{}}}"#, " ".repeat(200 * 1024));
    let file = std::env::temp_dir().join(format!("procwire-big-body-{}", std::process::id()));
    std::fs::write(&file, big).unwrap();
    let waited = std::time::Instant::now();
    let data = format!("@{}", file.display());
    let (status, body) = curl(&["-X", "POST", "--data-binary", &data, &url]);
    let _ = std::fs::remove_file(&file);
    assert_eq!((status, body.as_str()), (200, "3"));
    assert!(waited.elapsed() >= std::time::Duration::from_millis(500));
    drop(stall);
}
