//! Every HTTP example in section 11 of docs/protocol.md, sent to the sample server as it
//! stands on the page: the answer must be the one the page shows under it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use procwire_remoting::{sample, Lease, RemotingServer, TcpChannel};
use serde_json::Value;

const PAGE: &str = include_str!("../../../docs/protocol.md");

/// The fenced `http` blocks of section 11, in order.
fn http_blocks() -> Vec<String> {
    let start = PAGE
        .find("\n## 11.")
        .expect("docs/protocol.md has a section 11");
    let section = &PAGE[start + 1..];
    let section = match section[1..].find("\n## ") {
        Some(end) => &section[..end + 1],
        None => section,
    };
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(i) = rest.find("```http\n") {
        let body = &rest[i + 8..];
        let end = body.find("```").expect("a closed block");
        blocks.push(body[..end].to_owned());
        rest = &body[end + 3..];
    }
    blocks
}

/// Whether `got` matches `want`, where `…` in `want` stands for any text.
fn text_matches(want: &str, got: &str) -> bool {
    let parts: Vec<&str> = want.split('…').collect();
    if parts.len() == 1 {
        return want == got;
    }
    let mut at = 0;
    for (n, part) in parts.iter().enumerate() {
        if n == 0 {
            if !got.starts_with(part) {
                return false;
            }
            at = part.len();
        } else if n == parts.len() - 1 {
            return got.len() >= at + part.len() && got[at..].ends_with(part);
        } else {
            match got[at..].find(part) {
                Some(i) => at += i + part.len(),
                None => return false,
            }
        }
    }
    true
}

fn json_matches(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::String(w), Value::String(g)) => text_matches(w, g),
        (Value::Object(w), Value::Object(g)) => {
            w.len() == g.len()
                && w.iter()
                    .all(|(k, v)| g.get(k).is_some_and(|gv| json_matches(v, gv)))
        }
        (Value::Array(w), Value::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(a, b)| json_matches(a, b))
        }
        _ => want == got,
    }
}

struct Answer {
    status_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn exchange(addr: &str, request: &str) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (head, body) = request
        .split_once("\n\n")
        .expect("a blank line after the head");
    let body = body.strip_suffix('\n').unwrap_or(body);
    let wire = format!("{}\r\n\r\n{body}", head.replace('\n', "\r\n"));
    s.write_all(wire.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap();
    Answer {
        status_line: status_line.trim_end().to_owned(),
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

#[test]
fn every_http_example_of_section_11_is_what_the_server_answers() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = RemotingServer::new(sample::registry(Lease::default()));
    let listener = rt
        .block_on(async { server.listen_http(TcpChannel::loopback(0)) })
        .unwrap();
    let addr = listener.local().trim_start_matches("http://").to_owned();
    let blocks = http_blocks();
    assert!(blocks.len() >= 12, "the examples are on the page");
    assert_eq!(blocks.len() % 2, 0, "each request has its answer");
    for pair in blocks.chunks(2) {
        let (request, want) = (&pair[0], &pair[1]);
        let got = exchange(&addr, request);
        let (want_head, want_body) = want.split_once("\n\n").unwrap_or((want, ""));
        let want_body = want_body.trim_end();
        let mut lines = want_head.lines();
        let want_status = lines.next().unwrap();
        assert_eq!(got.status_line, want_status, "for\n{request}");
        for line in lines {
            let (k, v) = line.split_once(':').unwrap();
            let k = k.trim().to_ascii_lowercase();
            assert!(
                got.headers
                    .iter()
                    .any(|(gk, gv)| *gk == k && gv == v.trim()),
                "no `{line}` in {:?} for\n{request}",
                got.headers
            );
        }
        let matches = match (
            serde_json::from_str::<Value>(want_body),
            serde_json::from_str::<Value>(&got.body),
        ) {
            (Ok(w), Ok(g)) => json_matches(&w, &g),
            _ => text_matches(want_body, &got.body),
        };
        assert!(
            matches,
            "answer `{}`, page says `{want_body}`, for\n{request}",
            got.body
        );
    }
}

#[test]
fn wildcards_match_as_the_page_means() {
    assert!(text_matches("Hello …, from …", "Hello Ann, from X"));
    assert!(!text_matches("Hello …!", "Hello Ann"));
    assert!(text_matches("exact", "exact"));
}
