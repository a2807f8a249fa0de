//! The pipe and mailslot examples of docs/protocol.md (sections 2, 8, 9 and 10), taken from
//! the page as it stands and played against the real `procwire` binary: each block of
//! bytes the page shows a client sending is sent, and each block it shows the server
//! answering must be what comes back. (Section 11 is checked by the remoting crate's
//! `protocol_doc.rs`, section 12 by the wire module's unit tests.)

mod util;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use util::{procwire, unique_name, Proc, Watchdog};

const PAGE: &str = include_str!("../../../docs/protocol.md");

/// The text of the section whose heading starts with `heading` (such as `## 8.`), up to the
/// next heading of the same level or above.
fn section(heading: &str) -> &'static str {
    let start = PAGE
        .find(&format!("\n{heading}"))
        .unwrap_or_else(|| panic!("docs/protocol.md has no section {heading}"))
        + 1;
    let level = heading.split(' ').next().unwrap().len();
    let mut at = start;
    for (i, line) in PAGE[start..].split_inclusive('\n').enumerate() {
        let hashes = line.bytes().take_while(|&b| b == b'#').count();
        let heading = (1..=level).contains(&hashes) && line.as_bytes().get(hashes) == Some(&b' ');
        if i > 0 && heading {
            return &PAGE[start..at];
        }
        at += line.len();
    }
    &PAGE[start..]
}

/// The fenced blocks of `text` with no language, in order.
fn plain_blocks(text: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("```") {
        let after = &rest[i + 3..];
        let newline = after.find('\n').expect("a fence ends its line");
        let (lang, body) = (&after[..newline], &after[newline + 1..]);
        let end = body.find("```").expect("a closed block");
        if lang.is_empty() {
            blocks.push(&body[..end]);
        }
        rest = &body[end + 3..];
    }
    blocks
}

/// The bytes a block shows: on each line the leading two-digit hex numbers (what follows
/// them is commentary), or, for a line that starts with `"`, the text of that JSON string.
fn block_bytes(block: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for line in block.lines() {
        let line = line.trim();
        if line.starts_with('"') {
            let text: String = serde_json::from_str(line).expect("a quoted line is a string");
            bytes.extend_from_slice(text.as_bytes());
            continue;
        }
        for token in line.split_whitespace() {
            match (token.len(), u8::from_str_radix(token, 16)) {
                (2, Ok(b)) => bytes.push(b),
                _ => break,
            }
        }
    }
    bytes
}

/// Bytes the page shows inline, in a code span such as `` `00 00 00 00` ``, checked to be
/// on the page.
fn inline_bytes(text: &str, span: &str) -> Vec<u8> {
    assert!(
        text.contains(&format!("`{span}`")),
        "the page no longer shows `{span}`"
    );
    block_bytes(span)
}

/// A directory of our own to serve as `XDG_RUNTIME_DIR` of a server, so that the page's
/// own names (`HelloWorld`) can be used as they stand. Removed when dropped.
struct RuntimeDir(PathBuf);

impl RuntimeDir {
    fn new() -> RuntimeDir {
        let dir = std::env::temp_dir().join(unique_name("protocol-doc"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        RuntimeDir(dir)
    }

    /// `ROOT` of section 2.2 for the Local namespace.
    fn root(&self) -> PathBuf {
        self.0.join("procwire")
    }

    /// `procwire ARGS`, in this runtime directory, waited for until it prints a line with
    /// `ready`; returns it too.
    fn start(&self, args: &[&str], ready: &str) -> (Proc, String) {
        let mut cmd = procwire();
        cmd.args(args).env("XDG_RUNTIME_DIR", &self.0);
        let mut p = Proc::spawn(cmd);
        let line = p.wait_for_within(ready, Duration::from_secs(20));
        (p, line)
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn connect(path: &Path) -> UnixStream {
    let s = UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {path:?}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn read_exactly(s: &mut UnixStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).expect("the bytes the page shows");
    buf
}

fn read_to_end(s: &mut UnixStream) -> Vec<u8> {
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .expect("read until the server closes");
    buf
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{path:?}: {e}"))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn every_example_of_section_8_is_what_the_server_sends_and_takes() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let text = section("## 8.");
    let blocks: Vec<Vec<u8>> = plain_blocks(text).into_iter().map(block_bytes).collect();
    let [request, ok, hello, garbage_answer, nope_request, nope_answer, busy_answer, too_large_answer] =
        &blocks[..]
    else {
        panic!("section 8 has {} blocks of bytes, not 8", blocks.len());
    };
    assert_eq!(request.len(), 20, "the page says: request, 20 bytes");
    assert_eq!(ok.len(), 18, "the page says: ok response, 18 bytes");

    let dir = RuntimeDir::new();
    let (_server, _) = dir.start(&["pipe", "serve", "HelloWorld", "--echo"], "listening on");
    // Section 2.2 and 2.3: where the socket and the entry are, and their modes.
    let root = dir.root();
    let socket = root.join("pipe/HelloWorld");
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join("pipe")), 0o700);
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(&root.join("registry/pipe/HelloWorld")), 0o600);

    // The request, the ok response, a message and its echo, an empty one, a close frame.
    let mut s = connect(&socket);
    s.write_all(request).unwrap();
    assert_eq!(&read_exactly(&mut s, ok.len()), ok);
    s.write_all(hello).unwrap();
    assert_eq!(&read_exactly(&mut s, hello.len()), hello);
    let empty = inline_bytes(text, "00 00 00 00");
    s.write_all(&empty).unwrap();
    assert_eq!(read_exactly(&mut s, empty.len()), empty);
    s.write_all(&inline_bytes(text, "80 00 00 03 62 79 65"))
        .unwrap();
    assert_eq!(
        read_to_end(&mut s),
        b"",
        "after a close frame the server closes"
    );

    // Garbage.
    let get = "GET / HTTP/1.1\\r\\n\\r\\n";
    assert!(text.contains(&format!("`{get}`")));
    let mut s = connect(&socket);
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(&read_to_end(&mut s), garbage_answer);

    // A pipe the server does not have.
    let mut s = connect(&socket);
    s.write_all(nope_request).unwrap();
    assert_eq!(&read_to_end(&mut s), nope_answer);

    // A message over the maximum. The page's ok response counts one instance in use; the
    // connections above stay in use until the server's side has seen them close, so
    // connect again until they are released (only the count may differ meanwhile).
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        let mut s = connect(&socket);
        s.write_all(request).unwrap();
        let answer = read_exactly(&mut s, ok.len());
        if &answer == ok {
            break s;
        }
        let (mut seen, mut want) = (answer.clone(), ok.clone());
        seen[12..14].fill(0);
        want[12..14].fill(0);
        assert_eq!(seen, want, "only the instance count may differ");
        assert!(
            std::time::Instant::now() < give_up,
            "instances never released: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    s.write_all(&inline_bytes(text, "01 31 2d 00")).unwrap();
    assert_eq!(&read_to_end(&mut s), too_large_answer);

    // Busy: a pipe of one instance, in use.
    let busy_dir = RuntimeDir::new();
    let (_busy, _) = busy_dir.start(
        &[
            "pipe",
            "serve",
            "HelloWorld",
            "--echo",
            "--max-instances",
            "1",
        ],
        "listening on",
    );
    let socket = busy_dir.root().join("pipe/HelloWorld");
    let mut first = connect(&socket);
    first.write_all(request).unwrap();
    let mut one_of_one = ok.clone();
    one_of_one[14..16].copy_from_slice(&1u16.to_be_bytes());
    assert_eq!(read_exactly(&mut first, ok.len()), one_of_one);
    let mut second = connect(&socket);
    second.write_all(request).unwrap();
    assert_eq!(&read_to_end(&mut second), busy_answer);
}

#[test]
fn the_constants_of_section_9_are_the_code_s() {
    use procwire::wire;
    let text = section("## 9.");
    let row = |name: &str| -> &str {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("section 9 has no row for {name}"));
        line.split('|').nth(2).unwrap().trim()
    };
    let number = |name: &str| -> u64 {
        let cell = row(name);
        let digits: String = cell
            .split_whitespace()
            .next()
            .unwrap()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        if cell.starts_with("2^31") {
            return (1 << 31) - 1;
        }
        if cell.starts_with("16 MiB") {
            return 16 << 20;
        }
        if let Some(hex) = cell.strip_prefix("`0x") {
            return u64::from_str_radix(hex.trim_end_matches('`'), 16).unwrap();
        }
        digits.parse().unwrap()
    };
    assert!(row("MAGIC").starts_with("`PWIR`"));
    assert_eq!(&wire::MAGIC, b"PWIR");
    assert_eq!(number("VERSION"), u64::from(wire::VERSION));
    assert_eq!(
        number("REQUEST_HEADER_LEN"),
        wire::REQUEST_HEADER_LEN as u64
    );
    assert_eq!(
        number("RESPONSE_HEADER_LEN"),
        wire::RESPONSE_HEADER_LEN as u64
    );
    assert_eq!(number("MAX_PIPE_NAME_LEN"), wire::MAX_PIPE_NAME_LEN as u64);
    assert_eq!(number("MAX_DETAIL_LEN"), wire::MAX_DETAIL_LEN as u64);
    assert_eq!(number("FRAME_HEADER_LEN"), wire::FRAME_HEADER_LEN as u64);
    assert_eq!(number("CLOSE_BIT"), u64::from(wire::CLOSE_BIT));
    assert_eq!(number("MAX_FRAME_LEN"), u64::from(wire::MAX_FRAME_LEN));
    assert_eq!(
        number("MAX_CLOSE_REASON"),
        u64::from(wire::MAX_CLOSE_REASON)
    );
    assert_eq!(
        number("DEFAULT_MAX_MESSAGE"),
        u64::from(procwire::pipe::DEFAULT_MAX_MESSAGE)
    );
    assert_eq!(
        number("DEFAULT_TCP_PORT"),
        u64::from(procwire::pipe::DEFAULT_TCP_PORT)
    );
    assert!(
        row("MAX_PIPE_NAME_LEN").contains(&format!("at most {}", procwire::name::MAX_OBJECT_LEN))
    );
}

#[test]
fn the_python_example_of_section_10_1_delivers_its_message() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let text = section("### 10.1");
    let start = text.find("```python\n").expect("a Python example") + 10;
    let script = &text[start..start + text[start..].find("```").unwrap()];
    let dir = RuntimeDir::new();
    let (mut server, _) = dir.start(
        &[
            "mailslot",
            "serve",
            "HelloWorld",
            "--every",
            "50ms",
            "--messages",
            "1",
        ],
        "listening on",
    );
    let path = dir.root().join("mailslot/HelloWorld");
    assert_eq!(mode(&path), 0o600, "section 10.1: the socket is 0600");
    let script = script.replace(
        "/run/user/1000/procwire/mailslot/HelloWorld",
        path.to_str().unwrap(),
    );
    assert!(script.contains(path.to_str().unwrap()), "the page's path");
    let out = util::run(
        {
            let mut cmd = std::process::Command::new("python3");
            cmd.args(["-c", &script]);
            cmd
        },
        b"",
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.wait_for_within("message #1: Hello, slot", Duration::from_secs(20));
}

#[test]
fn the_udp_datagram_of_section_10_2_is_delivered() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let text = section("### 10.2");
    let blocks = plain_blocks(text);
    let [datagram] = &blocks[..] else {
        panic!("section 10.2 has {} blocks, not 1", blocks.len());
    };
    let datagram = block_bytes(datagram);
    assert_eq!(&datagram[..4], &procwire::wire::MAILSLOT_MAGIC);
    let dir = RuntimeDir::new();
    let (mut server, listening) = dir.start(
        &[
            "mailslot",
            "serve",
            "HelloWorld",
            "--udp",
            "127.0.0.1:0",
            "--every",
            "50ms",
            "--messages",
            "1",
        ],
        "listening on",
    );
    let addr = listening
        .trim()
        .rsplit(' ')
        .next()
        .expect("`listening on NAME and udp ADDR`");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(&datagram, addr).unwrap();
    server.wait_for_within("message #1: Hi", Duration::from_secs(20));
}
